/// What flows between modules: a float or a quantized tensor, with what reverse-mode differentiation needs (whether
/// it requires a gradient, the gradient of a leaf, and the function that made it).
///
/// PyTorch: `torch.Tensor` as autograd sees it (`requires_grad`, `grad`, `grad_fn`, `is_leaf`, `backward()`,
/// `detach()`). Float modules take and return float payloads; the quantized modules of QuantKit's eager workflow take
/// and return quantized payloads, which never carry gradients. Handing one kind to a module that expects the other
/// throws a `QuantizationError.invalidOperand` naming the module, where PyTorch fails with "Could not run
/// 'quantized::...' with arguments from the 'CPU' backend" (or the reverse).
///
/// A `Variable` is a reference: the graph and the optimizers refer to the same object. Its `value` is a tensor
/// (a value type), so reading it never aliases memory that an optimizer later updates.
public class Variable {
    /// The payload of a `Variable`. PyTorch: a float tensor, or a tensor of a quantized dtype.
    public enum Value: Sendable {
        /// A float32 tensor (float modules, QAT).
        case float(Tensor<Float>)
        /// A quantized tensor (quantized modules after `convert`). PyTorch: `x.is_quantized`.
        case quantized(QuantizedTensor)
    }

    /// The payload. PyTorch: the tensor's data (`x.data`).
    public internal(set) var value: Value

    /// The accumulated gradient of a leaf that requires a gradient, after `backward()`; nil before the first
    /// backward pass and after `zeroGrad()`. Non-leaf variables keep no gradient.
    ///
    /// PyTorch: `x.grad` (None until backward; `optimizer.zero_grad()` sets it back to None).
    public var grad: Tensor<Float>?

    /// Whether gradients flow to (a leaf) or through (a result) this variable. PyTorch: `x.requires_grad`.
    public private(set) var requiresGrad: Bool

    /// The operation that produced this variable, or nil for a leaf (created by the user, a parameter, or any result
    /// computed without recording, e.g. under `Autograd.withNoGrad`). PyTorch: `x.grad_fn`.
    public let gradientFunction: GradientFunction?

    init(value: Value, requiresGrad: Bool, gradientFunction: GradientFunction?) {
        self.value = value
        self.requiresGrad = requiresGrad
        self.gradientFunction = gradientFunction
    }

    /// A leaf holding a float tensor. PyTorch: `torch.tensor(..., requires_grad=requiresGrad)`.
    public convenience init(_ tensor: Tensor<Float>, requiresGrad: Bool = false) {
        self.init(value: .float(tensor), requiresGrad: requiresGrad, gradientFunction: nil)
    }

    /// A leaf holding a quantized tensor (no gradient). PyTorch: a quantized tensor.
    public convenience init(_ tensor: QuantizedTensor) {
        self.init(value: .quantized(tensor), requiresGrad: false, gradientFunction: nil)
    }

    /// Whether this variable was created by the user rather than recorded as the result of an operation.
    /// PyTorch: `x.is_leaf`.
    public var isLeaf: Bool { gradientFunction == nil }

    /// Whether the payload is quantized. PyTorch: `x.is_quantized`.
    public var isQuantized: Bool {
        if case .quantized = value { return true }
        return false
    }

    /// The shape of the payload. PyTorch: `x.shape`.
    public var shape: [Int] {
        switch value {
        case .float(let t): return t.shape
        case .quantized(let q): return q.shape
        }
    }

    /// The float payload, or nil for a quantized one. PyTorch: `x` itself / `x.data` for a float tensor.
    public var tensor: Tensor<Float>? {
        if case .float(let t) = value { return t }
        return nil
    }

    /// The quantized payload, or nil for a float one. PyTorch: `x` itself for a quantized tensor.
    public var quantizedTensor: QuantizedTensor? {
        if case .quantized(let q) = value { return q }
        return nil
    }

    /// The float payload, or an error naming `operation` (a module or function) when the payload is quantized.
    ///
    /// PyTorch: the dispatcher's `NotImplementedError: Could not run 'aten::...' with arguments from the
    /// 'QuantizedCPU' backend`, here with the fix: dequantize first.
    /// - Throws: `QuantizationError.invalidOperand`.
    public func floatTensor(for operation: @autoclosure () -> String) throws -> Tensor<Float> {
        switch value {
        case .float(let t):
            return t
        case .quantized(let q):
            throw QuantizationError.invalidOperand(
                operation: operation(),
                reason: "expected a float tensor but got a quantized \(q.dtype) tensor of shape \(q.shape); this is "
                    + "a float module or function: dequantize its input first (a DeQuantStub before it, PyTorch: "
                    + "torch.ao.quantization.DeQuantStub, or x.dequantized())")
        }
    }

    /// The quantized payload, or an error naming `operation` when the payload is float.
    ///
    /// PyTorch: `NotImplementedError: Could not run 'quantized::...' with arguments from the 'CPU' backend`, here
    /// with the fix: quantize first.
    /// - Throws: `QuantizationError.invalidOperand`.
    public func quantizedTensor(for operation: @autoclosure () -> String) throws -> QuantizedTensor {
        switch value {
        case .quantized(let q):
            return q
        case .float(let t):
            throw QuantizationError.invalidOperand(
                operation: operation(),
                reason: "expected a quantized tensor but got a float tensor of shape \(t.shape); this is a "
                    + "quantized module: quantize its input first (a QuantStub before it, PyTorch: "
                    + "torch.ao.quantization.QuantStub)")
        }
    }

    /// The single element of a one-element float variable, e.g. a loss. PyTorch: `x.item()`.
    /// - Throws: `QuantizationError.invalidOperand` for a quantized payload or more than one element.
    public func item() throws -> Float {
        let t = try floatTensor(for: "item()")
        guard t.count == 1 else {
            throw QuantizationError.invalidOperand(
                operation: "item()", reason: "a Tensor with \(t.count) elements cannot be converted to a scalar; "
                    + "expected exactly one element (shape \(t.shape))")
        }
        return t.withUnsafeBufferPointer { $0[0] }
    }

    /// A leaf with the same payload that does not require a gradient and is cut off from the graph.
    /// PyTorch: `x.detach()`.
    public func detached() -> Variable {
        Variable(value: value, requiresGrad: false, gradientFunction: nil)
    }

    /// Turns gradient tracking of a leaf on or off (freezing a parameter). PyTorch: `x.requires_grad_(flag)`.
    /// - Throws: `QuantizationError.invalidOperand` for a non-leaf (PyTorch: "you can only change requires_grad
    ///   flags of leaf variables") or for a quantized payload asked to require a gradient.
    public func setRequiresGrad(_ flag: Bool) throws {
        guard isLeaf else {
            throw QuantizationError.invalidOperand(
                operation: "requires_grad_", reason: "you can only change requires_grad flags of leaf variables; "
                    + "this one was produced by \(gradientFunction!.name); use detached() first")
        }
        if flag, isQuantized {
            throw QuantizationError.invalidOperand(
                operation: "requires_grad_", reason: "a quantized tensor cannot require a gradient; dequantize it")
        }
        requiresGrad = flag
    }
}

extension Variable: CustomStringConvertible {
    /// The payload, then `requiresGrad` or the gradient function, as PyTorch prints
    /// `tensor([...], grad_fn=<AddBackward0>)`.
    public var description: String {
        let payload: String
        switch value {
        case .float(let t): payload = t.description
        case .quantized(let q): payload = q.description
        }
        if let gradientFunction { return "Variable(\(payload), gradientFunction: \(gradientFunction.name))" }
        return requiresGrad ? "Variable(\(payload), requiresGrad: true)" : "Variable(\(payload))"
    }
}

/// A trainable tensor of a module: a leaf `Variable` that requires a gradient (unless frozen) and always holds a
/// float tensor. Optimizers update `data` in place of the old value.
///
/// PyTorch: `torch.nn.Parameter`.
public final class Parameter: Variable {
    /// A parameter holding `tensor`. PyTorch: `nn.Parameter(tensor, requires_grad=requiresGrad)`.
    public init(_ tensor: Tensor<Float>, requiresGrad: Bool = true) {
        super.init(value: .float(tensor), requiresGrad: requiresGrad, gradientFunction: nil)
    }

    /// The parameter's values. Setting it replaces them (any shape; `Module.loadStateDict` checks shapes).
    /// PyTorch: `p.data`.
    public var data: Tensor<Float> {
        get {
            if case .float(let t) = value { return t }
            preconditionFailure("a Parameter always holds a float tensor")
        }
        set { value = .float(newValue) }
    }

    /// Applies `body` to the values in place (no copy when nothing else shares them). Optimizers use it.
    /// PyTorch: in-place updates of `p.data` under `torch.no_grad()`.
    public func updateData(_ body: (inout Tensor<Float>) throws -> Void) rethrows {
        guard case .float(var t) = value else { preconditionFailure("a Parameter always holds a float tensor") }
        value = .float(.emptyPlaceholder)   // drop our reference so that `t` is unique
        defer { value = .float(t) }
        try body(&t)
    }
}

extension Tensor {
    /// An empty 1-D tensor, to hold in a slot while the real value is being mutated elsewhere.
    static var emptyPlaceholder: Tensor { Tensor(storage: TensorStorage(uninitializedCount: 0), shape: [0]) }
}
