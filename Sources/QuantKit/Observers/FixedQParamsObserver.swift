/// Returns parameters fixed in advance whatever it observes: for operators whose output range is known, such as
/// sigmoid (0...1) and tanh (-1...1).
///
/// PyTorch: `torch.ao.quantization.FixedQParamsObserver(scale, zero_point, dtype=quint8,
/// qscheme=per_tensor_affine, quant_min=0, quant_max=255)`, with the presets
/// `default_fixed_qparams_range_0to1_observer` (`range0To1()`) and `default_fixed_qparams_range_neg1to1_observer`
/// (`rangeNeg1To1()`).
public final class FixedQParamsObserver: Observer, Codable, CustomStringConvertible {
    /// PyTorch: `observer.scale`.
    public let scale: Float
    /// PyTorch: `observer.zero_point`.
    public let zeroPoint: Int
    /// PyTorch: `observer.dtype`.
    public let dtype: QuantizedDType
    /// PyTorch: `observer.qscheme`.
    public let qscheme: QScheme
    /// PyTorch: `observer.quant_min`.
    public let quantMin: Int
    /// PyTorch: `observer.quant_max`.
    public let quantMax: Int

    /// - Throws: `QuantizationError.invalidScale` for a scale that is not finite and > 0; `.qschemeMismatch` for a
    ///   per-channel scheme; `.invalidOperand` for a quantization range outside the dtype's or a zero point outside
    ///   the range (both unchecked by PyTorch); `.symmetricZeroPoint` for a symmetric scheme with another zero point
    ///   than the dtype's.
    public init(scale: Float, zeroPoint: Int, dtype: QuantizedDType = .quint8, qscheme: QScheme = .perTensorAffine,
                quantMin: Int = 0, quantMax: Int = 255) throws {
        try Self.validate(scale: scale, zeroPoint: zeroPoint, dtype: dtype, qscheme: qscheme, quantMin: quantMin,
                          quantMax: quantMax)
        self.scale = scale
        self.zeroPoint = zeroPoint
        self.dtype = dtype
        self.qscheme = qscheme
        self.quantMin = quantMin
        self.quantMax = quantMax
    }

    private static func validate(scale: Float, zeroPoint: Int, dtype: QuantizedDType, qscheme: QScheme,
                                 quantMin: Int, quantMax: Int) throws(QuantizationError) {
        guard !qscheme.isPerChannel else {
            throw .qschemeMismatch(qscheme,
                                   expected: "per_tensor_affine or per_tensor_symmetric (FixedQParamsObserver)")
        }
        guard quantMin <= quantMax && dtype.range.contains(quantMin) && dtype.range.contains(quantMax) else {
            throw .invalidOperand(operation: "FixedQParamsObserver", reason: "the quantization range [\(quantMin), "
                                  + "\(quantMax)] must be ordered and lie inside the \(dtype) range "
                                  + "\(dtype.range.lowerBound)...\(dtype.range.upperBound)")
        }
        guard (quantMin...quantMax).contains(zeroPoint) else {
            throw .invalidOperand(operation: "FixedQParamsObserver", reason: "zero point \(zeroPoint) lies outside "
                                  + "the quantization range [\(quantMin), \(quantMax)]")
        }
        try QParamChecks.checkPerTensor(scale: scale, zeroPoint: zeroPoint, dtype: dtype, qscheme: qscheme)
    }

    /// Outputs in 0...1 (sigmoid, hardsigmoid, softmax): scale 1/256, zero point 0, quint8.
    /// PyTorch: `default_fixed_qparams_range_0to1_observer`.
    public static func range0To1() -> FixedQParamsObserver {
        try! FixedQParamsObserver(scale: 1.0 / 256.0, zeroPoint: 0)
    }

    /// Outputs in -1...1 (tanh): scale 2/256, zero point 128, quint8.
    /// PyTorch: `default_fixed_qparams_range_neg1to1_observer` (`default_symmetric_fixed_qparams_observer`).
    public static func rangeNeg1To1() -> FixedQParamsObserver {
        try! FixedQParamsObserver(scale: 2.0 / 256.0, zeroPoint: 128)
    }

    /// Does nothing: the parameters are fixed. PyTorch: `observer(x)`.
    public func observe(_ x: Tensor<Float>) throws {}

    /// The fixed scale and zero point. PyTorch: `observer.calculate_qparams()`.
    public func calculateQParams() throws -> QuantizationParameters {
        QuantizationParameters(scale: scale, zeroPoint: zeroPoint, dtype: dtype, qscheme: qscheme)
    }

    /// Does nothing: there are no statistics.
    public func reset() {}

    public var description: String {
        "FixedQParamsObserver(scale: \(scale), zero_point: \(zeroPoint), \(dtype), \(qscheme), quant range "
            + "\(quantMin)...\(quantMax))"
    }

    // MARK: Codable

    private enum CodingKeys: String, CodingKey { case scale, zeroPoint, dtype, qscheme, quantMin, quantMax }

    /// Restores a saved observer.
    /// - Throws: `DecodingError.dataCorrupted` for invalid parameters.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        scale = try c.decode(Float.self, forKey: .scale)
        zeroPoint = try c.decode(Int.self, forKey: .zeroPoint)
        dtype = try c.decode(QuantizedDType.self, forKey: .dtype)
        qscheme = try c.decode(QScheme.self, forKey: .qscheme)
        quantMin = try c.decode(Int.self, forKey: .quantMin)
        quantMax = try c.decode(Int.self, forKey: .quantMax)
        let (s, z, d, q, lo, hi) = (scale, zeroPoint, dtype, qscheme, quantMin, quantMax)
        try ObserverCoding.wrap(decoder) {
            try Self.validate(scale: s, zeroPoint: z, dtype: d, qscheme: q, quantMin: lo, quantMax: hi)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(scale, forKey: .scale)
        try c.encode(zeroPoint, forKey: .zeroPoint)
        try c.encode(dtype, forKey: .dtype)
        try c.encode(qscheme, forKey: .qscheme)
        try c.encode(quantMin, forKey: .quantMin)
        try c.encode(quantMax, forKey: .quantMax)
    }
}
