/// A quantized tensor: integer values plus the scale(s) and zero point(s) that map them back to real numbers,
/// `real = (Float(q) - Float(zeroPoint)) * scale`.
///
/// PyTorch: a tensor with a quantized dtype (`torch.quint8`, `torch.qint8`, `torch.qint32`) and a per-tensor or
/// per-channel affine quantizer. Value type; the integer storage is shared copy-on-write.
public struct QuantizedTensor: Sendable {
    /// The integer values, typed by dtype.
    enum Values: Sendable, Equatable {
        case quint8(Tensor<UInt8>)
        case qint8(Tensor<Int8>)
        case qint32(Tensor<Int32>)

        /// Allocates values of `dtype` and lets `body` write them through a raw pointer to `count` elements.
        static func make(dtype: QuantizedDType, shape: [Int], count: Int,
                         _ body: (UnsafeMutableRawPointer) throws -> Void) rethrows -> Values {
            switch dtype {
            case .quint8:
                return .quint8(try Tensor(uninitializedShape: shape, count: count) { try body($0) })
            case .qint8:
                return .qint8(try Tensor(uninitializedShape: shape, count: count) { try body($0) })
            case .qint32:
                return .qint32(try Tensor(uninitializedShape: shape, count: count) { try body($0) })
            }
        }

        /// Wraps an integer tensor, choosing the dtype from its element type.
        init?<T: QuantizedScalar>(_ tensor: Tensor<T>) {
            if let t = tensor as? Tensor<UInt8> {
                self = .quint8(t)
            } else if let t = tensor as? Tensor<Int8> {
                self = .qint8(t)
            } else if let t = tensor as? Tensor<Int32> {
                self = .qint32(t)
            } else {
                return nil
            }
        }

        var dtype: QuantizedDType {
            switch self {
            case .quint8: return .quint8
            case .qint8: return .qint8
            case .qint32: return .qint32
            }
        }

        var shape: [Int] {
            switch self {
            case .quint8(let t): return t.shape
            case .qint8(let t): return t.shape
            case .qint32(let t): return t.shape
            }
        }

        func withUnsafeRawPointer<R>(_ body: (UnsafeRawPointer, Int) throws -> R) rethrows -> R {
            switch self {
            case .quint8(let t): return try t.withUnsafeBufferPointer { try body($0.baseAddress!, $0.count) }
            case .qint8(let t): return try t.withUnsafeBufferPointer { try body($0.baseAddress!, $0.count) }
            case .qint32(let t): return try t.withUnsafeBufferPointer { try body($0.baseAddress!, $0.count) }
            }
        }

        /// Element `i`, widened.
        func element(_ i: Int) -> Int32 {
            switch self {
            case .quint8(let t): return t.withUnsafeBufferPointer { Int32($0[i]) }
            case .qint8(let t): return t.withUnsafeBufferPointer { Int32($0[i]) }
            case .qint32(let t): return t.withUnsafeBufferPointer { $0[i] }
            }
        }
    }

    let values: Values

    /// The quantization scheme. Tensors made by `Tensor.quantized(...)` report the affine schemes unless a
    /// symmetric one was requested explicitly. PyTorch: `t.qscheme()`.
    public let qscheme: QScheme

    /// The scales: one for a per-tensor scheme, one per channel along `axis` for a per-channel scheme.
    ///
    /// PyTorch: `[t.q_scale()]` / `t.q_per_channel_scales()` (PyTorch reports float64; the values are float32).
    public let scales: [Float]

    /// The zero points, one per scale. PyTorch: `[t.q_zero_point()]` / `t.q_per_channel_zero_points()`.
    public let zeroPoints: [Int]

    /// The quantization axis (in `0..<rank`) of a per-channel tensor; nil for a per-tensor one.
    ///
    /// PyTorch: `t.q_per_channel_axis()`.
    public let axis: Int?

    init(values: Values, qscheme: QScheme, scales: [Float], zeroPoints: [Int], axis: Int?) {
        self.values = values
        self.qscheme = qscheme
        self.scales = scales
        self.zeroPoints = zeroPoints
        self.axis = axis
    }

    /// Wraps integer values with one scale and zero point; the dtype follows the element type (`UInt8` → `quint8`,
    /// `Int8` → `qint8`, `Int32` → `qint32`).
    ///
    /// PyTorch: `torch._make_per_tensor_quantized_tensor(int_repr, scale, zero_point)`.
    /// - Throws: `QuantizationError.invalidScale`, `.zeroPointOutOfRange`, `.symmetricZeroPoint` (with
    ///   `.perTensorSymmetric`), `.qschemeMismatch` (a per-channel scheme).
    public init<T: QuantizedScalar>(
        intRepr: Tensor<T>, scale: Float, zeroPoint: Int, qscheme: QScheme = .perTensorAffine
    ) throws {
        guard let values = Values(intRepr) else {
            throw QuantizationError.invalidArgument("\(T.self) is not a quantized storage type; expected UInt8, "
                                                    + "Int8 or Int32")
        }
        try QParamChecks.checkPerTensor(scale: scale, zeroPoint: zeroPoint, dtype: values.dtype,
                                                  qscheme: qscheme)
        self.init(values: values, qscheme: qscheme, scales: [scale], zeroPoints: [zeroPoint], axis: nil)
    }

    /// Wraps integer values with one scale and zero point per slice along `axis` (negative axes count from the end).
    ///
    /// PyTorch: `torch._make_per_channel_quantized_tensor(int_repr, scales, zero_points, axis)`.
    /// - Throws: `QuantizationError.axisOutOfRange`, `.channelCountMismatch`, `.invalidScale`,
    ///   `.zeroPointOutOfRange`, `.symmetricZeroPoint` (with `.perChannelSymmetric`), `.qschemeMismatch`.
    public init<T: QuantizedScalar>(
        intRepr: Tensor<T>, scales: [Float], zeroPoints: [Int], axis: Int, qscheme: QScheme = .perChannelAffine
    ) throws {
        guard let values = Values(intRepr) else {
            throw QuantizationError.invalidArgument("\(T.self) is not a quantized storage type; expected UInt8, "
                                                    + "Int8 or Int32")
        }
        let axis = try QParamChecks.checkPerChannel(
            scales: scales, zeroPoints: zeroPoints, axis: axis, shape: intRepr.shape, dtype: values.dtype,
            qscheme: qscheme)
        self.init(values: values, qscheme: qscheme, scales: scales, zeroPoints: zeroPoints, axis: axis)
    }

    /// The quantized dtype. PyTorch: `t.dtype`.
    public var dtype: QuantizedDType { values.dtype }

    /// The shape. PyTorch: `t.shape`.
    public var shape: [Int] { values.shape }

    /// The number of dimensions. PyTorch: `t.dim()`.
    public var rank: Int { shape.count }

    /// The number of elements. PyTorch: `t.numel()`.
    public var count: Int { values.withUnsafeRawPointer { $1 } }

    /// The scale of a per-tensor quantized tensor.
    ///
    /// PyTorch: `t.q_scale()`. As PyTorch raises for per-channel tensors, reading it on a per-channel tensor is a
    /// precondition failure; use `scales` there (or always).
    public var scale: Float {
        precondition(axis == nil, "scale is defined for per-tensor quantized tensors only; this one is "
                     + "\(qscheme) along axis \(axis ?? -1): use scales")
        return scales[0]
    }

    /// The zero point of a per-tensor quantized tensor.
    ///
    /// PyTorch: `t.q_zero_point()`. Reading it on a per-channel tensor is a precondition failure (PyTorch raises);
    /// use `zeroPoints` there.
    public var zeroPoint: Int {
        precondition(axis == nil, "zeroPoint is defined for per-tensor quantized tensors only; this one is "
                     + "\(qscheme) along axis \(axis ?? -1): use zeroPoints")
        return zeroPoints[0]
    }

    /// The real values, `(Float(q) - Float(zeroPoint)) * scale` with two float32 roundings (no fused multiply-add).
    /// For `qint32`, `Float(q)` itself rounds when `|q| > 2^24`, as in PyTorch.
    ///
    /// PyTorch: `t.dequantize()` / `torch.dequantize(t)`.
    ///
    /// If the runtime is unusable (an invalid `QUANTKIT_ISA`; see `Runtime.initialize()`), this falls back to a
    /// portable implementation with identical results instead of failing.
    public func dequantized() -> Tensor<Float> {
        let dtype = self.dtype, shape = self.shape
        return values.withUnsafeRawPointer { q, count in
            Tensor<Float>(uninitializedShape: shape, count: count) { y in
                guard let axis else {
                    let scale = scales[0], zeroPoint = Int32(zeroPoints[0])
                    return Kernels.mustSucceed("dequantize") {
                        try Kernels.dequantizePerTensor(dtype, count: count, input: q, output: y, scale: scale,
                                                        zeroPoint: zeroPoint)
                    } fallback: {
                        ScalarFallback.dequantizePerTensor(dtype, count: count, input: q, output: y, scale: scale,
                                                           zeroPoint: zeroPoint)
                    }
                }
                let view = ChannelView(shape: shape, axis: axis)
                let zeroPoints32 = zeroPoints.map { Int32($0) }
                scales.withUnsafeBufferPointer { s in
                    zeroPoints32.withUnsafeBufferPointer { z in
                        Kernels.mustSucceed("dequantize") {
                            try Kernels.dequantizePerChannel(dtype, view: view, input: q, output: y,
                                                             scales: s.baseAddress, zeroPoints: z.baseAddress)
                        } fallback: {
                            ScalarFallback.dequantizePerChannel(dtype, view: view, input: q, output: y,
                                                                scales: s.baseAddress, zeroPoints: z.baseAddress)
                        }
                    }
                }
            }
        }
    }

    /// The integer values, row-major, widened to `Int32` whatever the dtype.
    ///
    /// PyTorch: `t.int_repr().flatten().tolist()`.
    public func intRepr() -> [Int32] {
        switch values {
        case .quint8(let t): return Self.widened(t)
        case .qint8(let t): return Self.widened(t)
        case .qint32(let t): return t.scalars
        }
    }

    private static func widened<T: QuantizedScalar>(_ t: Tensor<T>) -> [Int32] {
        t.withUnsafeBufferPointer { source in
            [Int32](unsafeUninitializedCapacity: source.count) { destination, initialized in
                for i in 0..<source.count { destination[i] = Int32(truncatingIfNeeded: source[i]) }
                initialized = source.count
            }
        }
    }

    /// The integer values as a tensor of their storage type (`UInt8` for `quint8`, `Int8` for `qint8`, `Int32` for
    /// `qint32`), sharing storage with this tensor until either is mutated.
    ///
    /// PyTorch: `t.int_repr()`.
    /// - Throws: `QuantizationError.dtypeMismatch` when `type` is not this tensor's storage type.
    public func intRepr<T: QuantizedScalar>(as type: T.Type) throws -> Tensor<T> {
        let result: Tensor<T>?
        switch values {
        case .quint8(let t): result = t as? Tensor<T>
        case .qint8(let t): result = t as? Tensor<T>
        case .qint32(let t): result = t as? Tensor<T>
        }
        guard let result else { throw QuantizationError.dtypeMismatch(expected: T.quantizedDType, actual: dtype) }
        return result
    }
}

extension QuantizedTensor: Equatable {
    /// Same dtype, shape, scheme, axis, quantization parameters and integer values.
    ///
    /// PyTorch: `torch.equal(a, b)` on quantized tensors (which also compares qparams).
    public static func == (lhs: QuantizedTensor, rhs: QuantizedTensor) -> Bool {
        lhs.qscheme == rhs.qscheme && lhs.axis == rhs.axis && lhs.scales == rhs.scales
            && lhs.zeroPoints == rhs.zeroPoints && lhs.values == rhs.values
    }
}

extension QuantizedTensor: CustomStringConvertible {
    /// The integer values (PyTorch-style nested, summarised above 1000 elements) and the quantization parameters,
    /// e.g. `QuantizedTensor(intRepr: [1, 2], shape: [2], dtype: quint8, qscheme: per_tensor_affine, scale: 0.1,
    /// zeroPoint: 0)`. PyTorch: `repr(t)` (which prints dequantized values instead).
    public var description: String {
        let body = formatNested(shape: shape) { "\(values.element($0))" }
        let parameters = axis.map { "scales: \(scales), zeroPoints: \(zeroPoints), axis: \($0)" }
            ?? "scale: \(scales[0]), zeroPoint: \(zeroPoints[0])"
        return "QuantizedTensor(intRepr: \(body), shape: \(shape), dtype: \(dtype), qscheme: \(qscheme), "
            + "\(parameters))"
    }
}
