/// `min(max(x, 0), 6)` on a quantized input, on the integers: clamped to `[zeroPoint, quantize(6)]` with the input's
/// parameters (exact). What `convert` makes of a `ReLU6` (which it maps even though the float `ReLU6` also accepts
/// quantized inputs).
///
/// PyTorch: `torch.ao.nn.quantized.ReLU6` (`nnq.ReLU6`, printed `QuantizedReLU6`; `torch.ops.quantized.relu6`,
/// i.e. `hardtanh(x, 0, 6)` on the integers).
public final class QuantizedReLU6: Module, ArchivableModule {
    /// PyTorch: `nnq.ReLU6()`.
    public override init() { super.init() }

    /// From a `ReLU6` (its observer, if any, is not needed: the output keeps the input's parameters).
    /// PyTorch: `nnq.ReLU6.from_float(relu6)`.
    public convenience init(from relu6: ReLU6) { self.init() }

    /// PyTorch: `relu6(x)` (`torch.ops.quantized.relu6`).
    /// - Throws: `QuantizationError.invalidOperand` naming this module for a float or per-channel input.
    public override func forward(_ input: Variable) throws -> Variable {
        let x = try quantizedInput(input)
        return Variable(try attributingErrors { try x.clampedReLU6(operation: "quantized::relu6") })
    }

    /// `"QuantizedReLU6"`.
    public static var archiveTypeName: String { "QuantizedReLU6" }
    /// No settings.
    public var archiveConfiguration: [String: String] { [:] }
    /// A `QuantizedReLU6`.
    public static func makeForArchive(configuration: [String: String]) throws -> Module { QuantizedReLU6() }
}

/// `x * relu6(x + 3) / 6` on a quantized input: dequantized, computed in fp32 and quantized with the output
/// parameters the observer chose. What `convert` makes of a calibrated `Hardswish`.
///
/// State (buffers): `scale`, `zero_point`.
///
/// PyTorch: `torch.ao.nn.quantized.Hardswish(scale, zero_point)` (`nnq.Hardswish`, printed
/// `QuantizedHardswish`; `torch.ops.quantized.hardswish`).
public final class QuantizedHardswish: Module, ArchivableModule {
    /// The output scale. PyTorch: `hardswish.scale`.
    public private(set) var scale: Float
    /// The output zero point. PyTorch: `hardswish.zero_point`.
    public private(set) var zeroPoint: Int

    /// PyTorch: `nnq.Hardswish(scale, zero_point)`.
    /// - Throws: `QuantizationError.invalidScale`, `.zeroPointOutOfRange` (quint8).
    public init(scale: Float, zeroPoint: Int) throws {
        try QParamChecks.checkPerTensor(scale: scale, zeroPoint: zeroPoint, dtype: .quint8, qscheme: .perTensorAffine)
        self.scale = scale
        self.zeroPoint = zeroPoint
        super.init()
        try QuantizedModuleState.registerOutput(self, scale: scale, zeroPoint: zeroPoint)
    }

    /// From a prepared and calibrated `Hardswish`, with its observer's parameters.
    /// PyTorch: `nnq.Hardswish.from_float(hardswish)`.
    /// - Throws: `QuantizationWorkflowError.notPrepared`, `.notCalibrated`, `.unsupportedQConfig`.
    public convenience init(from hardswish: Hardswish) throws {
        let output = try hardswish.outputQuantizationParameters()
        try self.init(scale: output.scale, zeroPoint: output.zeroPoint)
    }

    /// PyTorch: `hardswish(x)` (`torch.ops.quantized.hardswish(x, scale, zero_point)`).
    /// - Throws: `QuantizationError.invalidOperand` naming this module for a float or per-channel input.
    public override func forward(_ input: Variable) throws -> Variable {
        let x = try quantizedInput(input)
        return Variable(try attributingErrors {
            try x.requirePerTensor("quantized::hardswish")
            return try Functional.hardswish(Variable(x.dequantized())).floatTensor(for: "quantized::hardswish")
                .quantized(scale: scale, zeroPoint: zeroPoint, dtype: x.dtype)
        })
    }

    /// Reads the output parameters from the loaded buffers.
    /// - Throws: `SerializationError.invalidTensor`, `QuantizationError` for invalid output parameters.
    public override func didLoadStateDict() throws {
        let output = try QuantizedModuleState.output(of: self)
        scale = output.scale
        zeroPoint = output.zeroPoint
    }

    /// `scale=0.05, zero_point=10` (PyTorch prints nothing).
    public override var extraDescription: String { "scale=\(scale), zero_point=\(zeroPoint)" }

    /// `"QuantizedHardswish"`.
    public static var archiveTypeName: String { "QuantizedHardswish" }
    /// No settings: the parameters are in the state dict.
    public var archiveConfiguration: [String: String] { [:] }
    /// A `QuantizedHardswish` with scale 1 and zero point 0, for `loadStateDict` to fill.
    public static func makeForArchive(configuration: [String: String]) throws -> Module {
        try QuantizedHardswish(scale: 1, zeroPoint: 0)
    }
}
