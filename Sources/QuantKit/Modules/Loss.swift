/// Cross-entropy between logits `[N, C]` and class indices, reduced by `reduction`. A module without state; call
/// it with the logits and the targets.
///
/// PyTorch: `torch.nn.CrossEntropyLoss(reduction='mean')` with class-index targets.
open class CrossEntropyLoss: Module {
    /// PyTorch: `loss.reduction`.
    public let reduction: LossReduction

    /// PyTorch: `nn.CrossEntropyLoss(reduction=...)`.
    public init(reduction: LossReduction = .mean) {
        self.reduction = reduction
        super.init()
    }

    /// The loss of `logits` for `targets`. PyTorch: `criterion(logits, targets)`.
    /// - Throws: `QuantizationError.invalidOperand` naming this module for wrong shapes or targets out of range.
    public func callAsFunction(_ logits: Variable, _ targets: [Int]) throws -> Variable {
        try attributingErrors { try Functional.crossEntropy(logits, targets: targets, reduction: reduction) }
    }

    /// Throws: the loss needs targets; call `loss(logits, targets)`.
    open override func forward(_ input: Variable) throws -> Variable {
        throw ModuleError.forwardNotImplemented(module: displayName, hint: "call it with the logits and the targets")
    }
}

/// Negative log-likelihood of class indices given log-probabilities `[N, C]`. PyTorch: `torch.nn.NLLLoss()`.
open class NLLLoss: Module {
    /// PyTorch: `loss.reduction`.
    public let reduction: LossReduction

    /// PyTorch: `nn.NLLLoss(reduction=...)`.
    public init(reduction: LossReduction = .mean) {
        self.reduction = reduction
        super.init()
    }

    /// PyTorch: `criterion(log_probabilities, targets)`.
    /// - Throws: `QuantizationError.invalidOperand` naming this module for wrong shapes or targets out of range.
    public func callAsFunction(_ logProbabilities: Variable, _ targets: [Int]) throws -> Variable {
        try attributingErrors { try Functional.nllLoss(logProbabilities, targets: targets, reduction: reduction) }
    }

    /// Throws: the loss needs targets; call `loss(logProbabilities, targets)`.
    open override func forward(_ input: Variable) throws -> Variable {
        throw ModuleError.forwardNotImplemented(module: displayName, hint: "call it with the input and the targets")
    }
}

/// Mean squared error. PyTorch: `torch.nn.MSELoss(reduction='mean')`.
open class MSELoss: Module {
    /// PyTorch: `loss.reduction`.
    public let reduction: LossReduction

    /// PyTorch: `nn.MSELoss(reduction=...)`.
    public init(reduction: LossReduction = .mean) {
        self.reduction = reduction
        super.init()
    }

    /// PyTorch: `criterion(input, target)`.
    /// - Throws: `QuantizationError.invalidOperand` naming this module for different shapes.
    public func callAsFunction(_ input: Variable, _ target: Variable) throws -> Variable {
        try attributingErrors { try Functional.mseLoss(input, target: target, reduction: reduction) }
    }

    /// Throws: the loss needs a target; call `loss(input, target)`.
    open override func forward(_ input: Variable) throws -> Variable {
        throw ModuleError.forwardNotImplemented(module: displayName, hint: "call it with the input and the target")
    }
}
