/// A static quantized linear layer: quint8 `[..., inFeatures]` in, quint8 `[..., outFeatures]` out with fixed
/// output parameters, int8 weights packed once, fp32 bias, PyTorch's x86 (FBGEMM) numerics bit for bit
/// (`quantizedLinear`). What `convert` makes of a calibrated `Linear`.
///
/// State (buffers, so `stateDict` / safetensors carry it): `weight` (int8 values), `weight_scale`,
/// `weight_zero_point`, `bias`, `scale`, `zero_point`; `loadStateDict` repacks the weight.
///
/// PyTorch: `torch.ao.nn.quantized.Linear` (`nnq.Linear`, printed `QuantizedLinear`).
public class QuantizedLinear: Module, ArchivableModule {
    /// The packed int8 weight and fp32 bias. PyTorch: `linear._packed_params`.
    public private(set) var packedWeight: PackedLinearWeight
    /// The output scale. PyTorch: `linear.scale`.
    public private(set) var scale: Float
    /// The output zero point. PyTorch: `linear.zero_point`.
    public private(set) var zeroPoint: Int

    /// Whether the output is clamped at the zero point (the fused ReLU of `QuantizedLinearReLU`).
    class var fusesReLU: Bool { false }

    /// A layer with a quantized weight (qint8 `[outFeatures, inFeatures]`, per tensor or per channel along axis 0),
    /// an optional fp32 bias `[outFeatures]` and the quint8 output parameters.
    ///
    /// PyTorch: `nnq.Linear(in_features, out_features)` then `set_weight_bias(weight, bias)`, `scale`,
    /// `zero_point`.
    /// - Throws: `QuantizationError.invalidOperand` for a weight or bias `PackedLinearWeight` refuses,
    ///   `.invalidScale`, `.zeroPointOutOfRange` (quint8 output).
    public required init(weight: QuantizedTensor, bias: Tensor<Float>?, scale: Float, zeroPoint: Int) throws {
        try QParamChecks.checkPerTensor(scale: scale, zeroPoint: zeroPoint, dtype: .quint8, qscheme: .perTensorAffine)
        packedWeight = try PackedLinearWeight(weight: weight, bias: bias)
        self.scale = scale
        self.zeroPoint = zeroPoint
        super.init()
        try QuantizedModuleState.register(self, weight: weight, bias: bias, scale: scale, zeroPoint: zeroPoint)
    }

    /// From a prepared and calibrated `Linear`: the weight quantized with a fresh weight observer of its qconfig,
    /// the output parameters from its activation observer.
    ///
    /// PyTorch: `nnq.Linear.from_float(linear)`.
    /// - Throws: `QuantizationWorkflowError.notPrepared`, `.notCalibrated`, `.unsupportedQConfig` (naming the
    ///   module); what the observers throw.
    public init(from linear: Linear) throws {
        let (weight, bias, output) = try QuantizedModuleState.converted(weight: linear.weight.data,
                                                                        bias: linear.bias?.data, unit: linear)
        packedWeight = try PackedLinearWeight(weight: weight, bias: bias)
        scale = output.scale
        zeroPoint = output.zeroPoint
        super.init()
        try QuantizedModuleState.register(self, weight: weight, bias: bias, scale: scale, zeroPoint: zeroPoint)
    }

    /// The quantized weight `[outFeatures, inFeatures]`. PyTorch: `linear.weight()`.
    public var weight: QuantizedTensor { packedWeight.weight }
    /// The fp32 bias, if any. PyTorch: `linear.bias()`.
    public var bias: Tensor<Float>? { packedWeight.bias }
    /// PyTorch: `linear.in_features`.
    public var inFeatures: Int { packedWeight.inFeatures }
    /// PyTorch: `linear.out_features`.
    public var outFeatures: Int { packedWeight.outFeatures }

    /// `quantizedLinear(x, packedWeight, scale, zeroPoint)`. PyTorch: `linear(x)`
    /// (`torch.ops.quantized.linear`, `linear_relu` for `QuantizedLinearReLU`).
    /// - Throws: `QuantizationError.invalidOperand` naming this module for a float input (quantize it first: a
    ///   `QuantStub` before), a per-channel or qint32 input, or a wrong last dimension.
    public override func forward(_ input: Variable) throws -> Variable {
        let x = try quantizedInput(input)
        return Variable(try attributingErrors {
            try quantizedLinear(x, packedWeight, scale: scale, zeroPoint: zeroPoint, relu: type(of: self).fusesReLU)
        })
    }

    /// Repacks the weight from the loaded buffers. PyTorch: `nnq.Linear._load_from_state_dict`.
    /// - Throws: `SerializationError.invalidTensor`, `QuantizationError` for values that are not a valid
    ///   quantized weight or output parameters.
    public override func didLoadStateDict() throws {
        let current = packedWeight.weight
        let (weight, bias) = try QuantizedModuleState.weight(of: self, qscheme: current.qscheme, axis: current.axis)
        let output = try QuantizedModuleState.output(of: self)
        packedWeight = try PackedLinearWeight(weight: weight, bias: bias)
        scale = output.scale
        zeroPoint = output.zeroPoint
    }

    /// PyTorch: `in_features=4, out_features=8, scale=0.05, zero_point=64, qscheme=torch.per_channel_affine`.
    public override var extraDescription: String {
        "in_features=\(inFeatures), out_features=\(outFeatures), scale=\(scale), zero_point=\(zeroPoint), "
            + "qscheme=torch.\(weight.qscheme)"
    }

    /// `"QuantizedLinear"` (`"QuantizedLinearReLU"` for the fused version).
    public class var archiveTypeName: String { "QuantizedLinear" }

    /// `in_features`, `out_features`, `bias`, the weight's `qscheme` and (per channel) `axis`.
    public var archiveConfiguration: [String: String] {
        var settings = QuantizedModuleState.weightSchemeSettings(weight)
        settings["in_features"] = String(inFeatures)
        settings["out_features"] = String(outFeatures)
        settings["bias"] = pythonBool(bias != nil)
        return settings
    }

    /// A layer of the configured shapes with a zero weight, for `loadStateDict` to fill.
    /// - Throws: `SerializationError.invalidModelArchive` for missing or malformed settings.
    public class func makeForArchive(configuration: [String: String]) throws -> Module {
        let reader = ArchiveConfigurationReader(configuration, type: archiveTypeName)
        let inFeatures = try reader.int("in_features", in: 0...Int(Int32.max))
        let outFeatures = try reader.int("out_features", in: 0...Int(Int32.max))
        let (qscheme, axis) = try reader.weightScheme()
        return try self.init(
            weight: QuantizedModuleState.placeholderWeight(shape: [outFeatures, inFeatures], qscheme: qscheme,
                                                           axis: axis, reader: reader),
            bias: QuantizedModuleState.placeholderBias(try reader.bool("bias"), count: outFeatures), scale: 1,
            zeroPoint: 0)
    }
}

/// `QuantizedLinear` with a fused ReLU (outputs clamped at the zero point). What `convert` makes of a calibrated
/// `LinearReLU`.
///
/// PyTorch: `torch.ao.nn.intrinsic.quantized.LinearReLU` (`nniq.LinearReLU`, printed `QuantizedLinearReLU`).
public final class QuantizedLinearReLU: QuantizedLinear {
    override class var fusesReLU: Bool { true }

    /// PyTorch: `nniq.LinearReLU(in_features, out_features)` then `set_weight_bias`, `scale`, `zero_point`.
    /// - Throws: as `QuantizedLinear.init(weight:bias:scale:zeroPoint:)`.
    public required init(weight: QuantizedTensor, bias: Tensor<Float>?, scale: Float, zeroPoint: Int) throws {
        try super.init(weight: weight, bias: bias, scale: scale, zeroPoint: zeroPoint)
    }

    /// From a prepared and calibrated `LinearReLU` (observed as one unit).
    /// PyTorch: `nniq.LinearReLU.from_float(linear_relu)`.
    /// - Throws: `QuantizationWorkflowError.notPrepared`, `.notCalibrated`, `.unsupportedQConfig`.
    public convenience init(from fused: LinearReLU) throws {
        let linear = try fused.linear
        let (weight, bias, output) = try QuantizedModuleState.converted(weight: linear.weight.data,
                                                                        bias: linear.bias?.data, unit: fused)
        try self.init(weight: weight, bias: bias, scale: output.scale, zeroPoint: output.zeroPoint)
    }

    public override class var archiveTypeName: String { "QuantizedLinearReLU" }
}
