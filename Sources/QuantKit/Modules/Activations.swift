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

/// `min(max(x, 0), 6)`. On a per-tensor quantized input it clamps the integers to `[zeroPoint, quantize(6)]` and
/// keeps the quantization parameters, as PyTorch's quantized relu6 (`convert` still swaps it for `QuantizedReLU6`, as
/// PyTorch's static mapping does).
///
/// PyTorch: `torch.nn.ReLU6()` (which runs natively on quantized tensors too).
open class ReLU6: Module {
    /// PyTorch: `nn.ReLU6()`.
    public override init() { super.init() }
    /// PyTorch: `relu6(x)`.
    /// - Throws: `QuantizationError.invalidOperand` naming this module for a per-channel quantized input.
    open override func forward(_ input: Variable) throws -> Variable {
        try attributingErrors {
            if case .quantized(let q) = input.value { return Variable(try q.clampedReLU6(operation: "relu6")) }
            return try Functional.relu6(input)
        }
    }
}

/// `x * relu6(x + 3) / 6`. Float only, as in PyTorch: `convert` swaps it for `QuantizedHardswish`.
/// PyTorch: `torch.nn.Hardswish()`.
open class Hardswish: Module {
    /// PyTorch: `nn.Hardswish()`.
    public override init() { super.init() }
    /// PyTorch: `hardswish(x)`.
    open override func forward(_ input: Variable) throws -> Variable {
        try attributingErrors { try Functional.hardswish(input) }
    }
}

/// `relu6(x + 3) / 6`. On a per-tensor quantized input (quint8 or qint8) it dequantizes, computes in fp32 and
/// quantizes with PyTorch's fixed output parameters for [0, 1]: scale 1/256, zero point 0 (quint8) or -128 (qint8).
///
/// PyTorch: `torch.nn.Hardsigmoid()` (which runs natively on quantized tensors too).
open class Hardsigmoid: Module {
    /// PyTorch: `nn.Hardsigmoid()`.
    public override init() { super.init() }
    /// PyTorch: `hardsigmoid(x)`.
    /// - Throws: `QuantizationError.invalidOperand` naming this module for a per-channel or qint32 input.
    open override func forward(_ input: Variable) throws -> Variable {
        try attributingErrors {
            if case .quantized(let q) = input.value {
                return Variable(try q.throughFloat(operation: "hardsigmoid", fixedRange: .unit, Functional.hardsigmoid))
            }
            return try Functional.hardsigmoid(input)
        }
    }
}

/// `1 / (1 + exp(-x))`. On a per-tensor quantized input (quint8 or qint8) it dequantizes, computes in fp32 and
/// quantizes with PyTorch's fixed output parameters for [0, 1]: scale 1/256, zero point 0 (quint8) or -128 (qint8).
///
/// PyTorch: `torch.nn.Sigmoid()` (which runs natively on quantized tensors too).
open class Sigmoid: Module {
    /// PyTorch: `nn.Sigmoid()`.
    public override init() { super.init() }
    /// PyTorch: `sigmoid(x)`.
    /// - Throws: `QuantizationError.invalidOperand` naming this module for a per-channel or qint32 input.
    open override func forward(_ input: Variable) throws -> Variable {
        try attributingErrors {
            if case .quantized(let q) = input.value {
                return Variable(try q.throughFloat(operation: "sigmoid", fixedRange: .unit, Functional.sigmoid))
            }
            return try Functional.sigmoid(input)
        }
    }
}

/// `tanh(x)`. On a per-tensor quantized input (quint8 or qint8) it dequantizes, computes in fp32 and quantizes with
/// PyTorch's fixed output parameters for [-1, 1]: scale 2/256, zero point 128 (quint8) or 0 (qint8).
///
/// PyTorch: `torch.nn.Tanh()` (which runs natively on quantized tensors too).
open class Tanh: Module {
    /// PyTorch: `nn.Tanh()`.
    public override init() { super.init() }
    /// PyTorch: `tanh(x)`.
    /// - Throws: `QuantizationError.invalidOperand` naming this module for a per-channel or qint32 input.
    open override func forward(_ input: Variable) throws -> Variable {
        try attributingErrors {
            if case .quantized(let q) = input.value {
                return Variable(try q.throughFloat(operation: "tanh", fixedRange: .symmetricUnit, Functional.tanh))
            }
            return try Functional.tanh(input)
        }
    }
}

/// The Gaussian error linear unit, exact or with the tanh approximation. On a per-tensor quantized input it
/// dequantizes, computes in fp32 and quantizes with the input's parameters, as PyTorch's quantized gelu.
///
/// PyTorch: `torch.nn.GELU(approximate)`.
open class GELU: Module {
    /// PyTorch: `gelu.approximate`.
    public let approximate: Functional.GELUApproximation

    /// PyTorch: `nn.GELU(approximate='none')`.
    public init(approximate: Functional.GELUApproximation = .none) {
        self.approximate = approximate
        super.init()
    }

    /// PyTorch: `gelu(x)`.
    /// - Throws: `QuantizationError.invalidOperand` naming this module for a per-channel or qint32 input.
    open override func forward(_ input: Variable) throws -> Variable {
        try attributingErrors {
            if case .quantized(let q) = input.value {
                return Variable(try q.throughFloat(operation: "gelu", fixedRange: nil) { x in
                    try Functional.gelu(x, approximate: approximate)
                })
            }
            return try Functional.gelu(input, approximate: approximate)
        }
    }

    /// PyTorch: `approximate='none'`.
    open override var extraDescription: String { "approximate='\(approximate.rawValue)'" }
}

/// Softmax along a dimension. Float only: a quantized input throws (PyTorch's static mapping does not map
/// `nn.Softmax` either); dequantize before it.
///
/// PyTorch: `torch.nn.Softmax(dim)`.
open class Softmax: Module {
    /// PyTorch: `softmax.dim`.
    public let dimension: Int

    /// PyTorch: `nn.Softmax(dim=dimension)`.
    public init(dimension: Int = -1) {
        self.dimension = dimension
        super.init()
    }

    /// PyTorch: `softmax(x)`.
    /// - Throws: `QuantizationError.invalidOperand` naming this module for a quantized input.
    open override func forward(_ input: Variable) throws -> Variable {
        if case .quantized(let q) = input.value {
            throw QuantizationError.invalidOperand(
                operation: displayName, reason: "Softmax has no quantized version (PyTorch's static quantization "
                    + "does not map nn.Softmax either) and got a quantized \(q.dtype) tensor of shape \(q.shape): "
                    + "dequantize before it (a DeQuantStub before the Softmax)")
        }
        return try attributingErrors { try Functional.softmax(input, dimension: dimension) }
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

extension QuantizedTensor {
    /// `hardtanh(x, 0, 6)` on the integers: clamped to `[zeroPoint, quantize(6)]`, same parameters. Per-tensor only.
    /// PyTorch: `torch.ops.quantized.relu6` (`quantized_clamp`).
    func clampedReLU6(operation: String) throws -> QuantizedTensor {
        try requirePerTensor(operation)
        let (scale, low) = (scales[0], zeroPoints[0])
        let high = quantizedValue(of: 6, scale: scale, zeroPoint: low, dtype: dtype)
        return mappingIntegers(scale: scale, zeroPoint: low) { _, value in Swift.min(Swift.max(value, low), high) }
    }

    /// The fixed output ranges of PyTorch's quantized sigmoid / hardsigmoid and tanh.
    enum FixedOutputRange {
        /// [0, 1]: scale 1/256, zero point 0 (quint8) or -128 (qint8).
        case unit
        /// [-1, 1]: scale 2/256, zero point 128 (quint8) or 0 (qint8).
        case symmetricUnit
    }

    /// Dequantizes, applies `function` in fp32 and quantizes to the same dtype with the fixed parameters of
    /// `fixedRange`, or the input's parameters when nil. Per-tensor quint8 or qint8 only.
    /// PyTorch: the `qsigmoid` / `qhardsigmoid` / `qtanh` / `qgelu` kernels.
    func throughFloat(operation: String, fixedRange: FixedOutputRange?,
                      _ function: (Variable) throws -> Variable) throws -> QuantizedTensor {
        try requirePerTensor(operation)
        guard dtype == .quint8 || dtype == .qint8 else {
            throw QuantizationError.invalidOperand(
                operation: operation, reason: "expected a quint8 or qint8 input, got \(dtype)")
        }
        let (scale, zeroPoint): (Float, Int)
        switch fixedRange {
        case .unit: (scale, zeroPoint) = (1.0 / 256, dtype == .quint8 ? 0 : -128)
        case .symmetricUnit: (scale, zeroPoint) = (2.0 / 256, dtype == .quint8 ? 128 : 0)
        case nil: (scale, zeroPoint) = (scales[0], zeroPoints[0])
        }
        return try function(Variable(dequantized())).floatTensor(for: operation)
            .quantized(scale: scale, zeroPoint: zeroPoint, dtype: dtype)
    }
}
