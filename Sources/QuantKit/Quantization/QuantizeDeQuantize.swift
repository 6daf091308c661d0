/// Quantizes its float input to quint8 (or another dtype) with fixed parameters: what a `QuantStub` becomes.
///
/// PyTorch: `torch.ao.nn.quantized.Quantize(scale, zero_point, dtype)`, built by `from_float(quant_stub)`.
public final class Quantize: Module {
    /// The output scale. PyTorch: `Quantize.scale`.
    public private(set) var scale: Float
    /// The output zero point. PyTorch: `Quantize.zero_point`.
    public private(set) var zeroPoint: Int
    /// The output dtype. PyTorch: `Quantize.dtype`.
    public let dtype: QuantizedDType

    /// PyTorch: `nnq.Quantize(scale, zero_point, dtype)`.
    /// - Throws: `QuantizationError.invalidScale`, `.zeroPointOutOfRange`.
    public init(scale: Float, zeroPoint: Int, dtype: QuantizedDType = .quint8) throws {
        try QParamChecks.checkPerTensor(scale: scale, zeroPoint: zeroPoint, dtype: dtype, qscheme: .perTensorAffine)
        self.scale = scale
        self.zeroPoint = zeroPoint
        self.dtype = dtype
        super.init()
        try registerBuffer("scale", Tensor(shape: [1], scalars: [scale]))
        try registerBuffer("zero_point", Tensor(shape: [1], scalars: [Float(zeroPoint)]), dtype: .int64)
    }

    /// From a prepared and calibrated `QuantStub`, with its observer's parameters.
    /// PyTorch: `nnq.Quantize.from_float(stub)`.
    /// - Throws: `QuantizationWorkflowError.notPrepared`, `.notCalibrated`, `.unsupportedQConfig`.
    public convenience init(from stub: QuantStub) throws {
        let parameters = try stub.outputQuantizationParameters()
        try self.init(scale: parameters.scale, zeroPoint: parameters.zeroPoint, dtype: parameters.dtype)
    }

    /// `quantize_per_tensor(x, scale, zero_point, dtype)`. PyTorch: `Quantize.forward(x)`.
    /// - Throws: `QuantizationError.invalidOperand` for a quantized input (it must come from a float part).
    public override func forward(_ input: Variable) throws -> Variable {
        let x = try floatInput(input)
        return Variable(try attributingErrors { try x.quantized(scale: scale, zeroPoint: zeroPoint, dtype: dtype) })
    }

    /// Takes the loaded `scale` and `zero_point` buffers as the parameters. PyTorch: `Quantize._load_from_state_dict`.
    /// - Throws: `SerializationError.invalidTensor`, `QuantizationError` for invalid parameters.
    public override func didLoadStateDict() throws {
        let output = try QuantizedModuleState.output(of: self, dtype: dtype)
        scale = output.scale
        zeroPoint = output.zeroPoint
    }

    public override var extraDescription: String { "scale=\(scale), zero_point=\(zeroPoint), dtype=torch.\(dtype)" }
}

/// Dequantizes its quantized input to float: what a `DeQuantStub` becomes.
///
/// PyTorch: `torch.ao.nn.quantized.DeQuantize()`.
public final class DeQuantize: Module {
    /// PyTorch: `nnq.DeQuantize()`.
    public override init() { super.init() }

    /// `x.dequantize()`. PyTorch: `DeQuantize.forward(x)`.
    /// - Throws: `QuantizationError.invalidOperand` for a float input (a `DeQuantStub` after a float part).
    public override func forward(_ input: Variable) throws -> Variable {
        Variable(try quantizedInput(input).dequantized())
    }
}
