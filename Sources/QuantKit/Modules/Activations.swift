/// `max(x, 0)`. On a per-tensor quantized input it clamps the integer values at the zero point and keeps the
/// quantization parameters, as PyTorch's quantized relu (exact: no rounding involved).
///
/// PyTorch: `torch.nn.ReLU()` (which runs natively on quantized tensors too).
open class ReLU: Module {
    /// PyTorch: `nn.ReLU()`.
    public override init() { super.init() }

    /// PyTorch: `relu(x)`.
    /// - Throws: `QuantizationError.invalidOperand` naming this module for a per-channel quantized input.
    open override func forward(_ input: Variable) throws -> Variable {
        try attributingErrors {
            if case .quantized(let q) = input.value { return Variable(try q.reluClamped(operation: "relu")) }
            return try Functional.relu(input)
        }
    }
}

/// `min(max(x, 0), 6)`. PyTorch: `torch.nn.ReLU6()`.
open class ReLU6: Module {
    /// PyTorch: `nn.ReLU6()`.
    public override init() { super.init() }
    /// PyTorch: `relu6(x)`.
    open override func forward(_ input: Variable) throws -> Variable {
        try attributingErrors { try Functional.relu6(input) }
    }
}

/// `x * relu6(x + 3) / 6`. PyTorch: `torch.nn.Hardswish()`.
open class Hardswish: Module {
    /// PyTorch: `nn.Hardswish()`.
    public override init() { super.init() }
    /// PyTorch: `hardswish(x)`.
    open override func forward(_ input: Variable) throws -> Variable {
        try attributingErrors { try Functional.hardswish(input) }
    }
}

/// `relu6(x + 3) / 6`. PyTorch: `torch.nn.Hardsigmoid()`.
open class Hardsigmoid: Module {
    /// PyTorch: `nn.Hardsigmoid()`.
    public override init() { super.init() }
    /// PyTorch: `hardsigmoid(x)`.
    open override func forward(_ input: Variable) throws -> Variable {
        try attributingErrors { try Functional.hardsigmoid(input) }
    }
}

/// `1 / (1 + exp(-x))`. PyTorch: `torch.nn.Sigmoid()`.
open class Sigmoid: Module {
    /// PyTorch: `nn.Sigmoid()`.
    public override init() { super.init() }
    /// PyTorch: `sigmoid(x)`.
    open override func forward(_ input: Variable) throws -> Variable {
        try attributingErrors { try Functional.sigmoid(input) }
    }
}

/// `tanh(x)`. PyTorch: `torch.nn.Tanh()`.
open class Tanh: Module {
    /// PyTorch: `nn.Tanh()`.
    public override init() { super.init() }
    /// PyTorch: `tanh(x)`.
    open override func forward(_ input: Variable) throws -> Variable {
        try attributingErrors { try Functional.tanh(input) }
    }
}

/// The Gaussian error linear unit, exact or with the tanh approximation. PyTorch: `torch.nn.GELU(approximate)`.
open class GELU: Module {
    /// PyTorch: `gelu.approximate`.
    public let approximate: Functional.GELUApproximation

    /// PyTorch: `nn.GELU(approximate='none')`.
    public init(approximate: Functional.GELUApproximation = .none) {
        self.approximate = approximate
        super.init()
    }

    /// PyTorch: `gelu(x)`.
    open override func forward(_ input: Variable) throws -> Variable {
        try attributingErrors { try Functional.gelu(input, approximate: approximate) }
    }

    /// PyTorch: `approximate='none'`.
    open override var extraDescription: String { "approximate='\(approximate.rawValue)'" }
}

/// Softmax along a dimension. PyTorch: `torch.nn.Softmax(dim)`.
open class Softmax: Module {
    /// PyTorch: `softmax.dim`.
    public let dimension: Int

    /// PyTorch: `nn.Softmax(dim=dimension)`.
    public init(dimension: Int = -1) {
        self.dimension = dimension
        super.init()
    }

    /// PyTorch: `softmax(x)`.
    open override func forward(_ input: Variable) throws -> Variable {
        try attributingErrors { try Functional.softmax(input, dimension: dimension) }
    }

    /// PyTorch: `dim=1`.
    open override var extraDescription: String { "dim=\(dimension)" }
}

/// Log-softmax along a dimension. PyTorch: `torch.nn.LogSoftmax(dim)`.
open class LogSoftmax: Module {
    /// PyTorch: `log_softmax.dim`.
    public let dimension: Int

    /// PyTorch: `nn.LogSoftmax(dim=dimension)`.
    public init(dimension: Int = -1) {
        self.dimension = dimension
        super.init()
    }

    /// PyTorch: `log_softmax(x)`.
    open override func forward(_ input: Variable) throws -> Variable {
        try attributingErrors { try Functional.logSoftmax(input, dimension: dimension) }
    }

    /// PyTorch: `dim=1`.
    open override var extraDescription: String { "dim=\(dimension)" }
}

extension QuantizedTensor {
    /// `max(q, zeroPoint)` with the same parameters: relu on the real values, exactly. Per-tensor only.
    func reluClamped(operation: String) throws -> QuantizedTensor {
        guard axis == nil else {
            throw QuantizationError.invalidOperand(
                operation: operation, reason: "expected a per-tensor quantized input, got \(qscheme) along axis "
                    + "\(axis!)")
        }
        func clamp<T: QuantizedScalar>(_ t: Tensor<T>) -> Tensor<T> {
            let zero = T(truncatingIfNeeded: zeroPoints[0])
            return t.withUnsafeBufferPointer { source in
                Tensor<T>(uninitializedShape: t.shape, count: t.count) { target in
                    for i in 0..<source.count { target[i] = source[i] < zero ? zero : source[i] }
                }
            }
        }
        let clamped: Values
        switch values {
        case .quint8(let t): clamped = .quint8(clamp(t))
        case .qint8(let t): clamped = .qint8(clamp(t))
        case .qint32(let t): clamped = .qint32(clamp(t))
        }
        return QuantizedTensor(values: clamped, qscheme: qscheme, scales: scales, zeroPoints: zeroPoints, axis: axis)
    }
}
