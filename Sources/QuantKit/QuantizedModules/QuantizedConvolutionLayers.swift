/// A static quantized 2-D convolution over quint8 NCHW batches with fixed output parameters: int8 weights packed
/// once (depthwise layers, `groups == inChannels`, run the depthwise kernels through the same handle), fp32 bias,
/// PyTorch's x86 (FBGEMM) numerics bit for bit (`quantizedConv2d`). What `convert` makes of a calibrated `Conv2d`.
///
/// State (buffers): `weight` (int8 values), `weight_scale`, `weight_zero_point`, `bias`, `scale`, `zero_point`;
/// `loadStateDict` repacks the weight.
///
/// PyTorch: `torch.ao.nn.quantized.Conv2d` (`nnq.Conv2d`, printed `QuantizedConv2d`), `padding_mode='zeros'`.
public class QuantizedConv2d: Module, ArchivableModule {
    /// The packed int8 weight, bias and groups. PyTorch: `conv._packed_params`.
    public private(set) var packedWeight: PackedConv2dWeight
    /// PyTorch: `conv.stride`.
    public let stride: Size2d
    /// Zeros (the input's zero point) added on each side. PyTorch: `conv.padding`.
    public let padding: Size2d
    /// PyTorch: `conv.dilation`.
    public let dilation: Size2d
    /// The output scale. PyTorch: `conv.scale`.
    public private(set) var scale: Float
    /// The output zero point. PyTorch: `conv.zero_point`.
    public private(set) var zeroPoint: Int

    /// Whether the output is clamped at the zero point (the fused ReLU of `QuantizedConvReLU2d`).
    class var fusesReLU: Bool { false }

    /// A layer with a quantized weight (qint8 `[outChannels, inChannels / groups, kh, kw]`, per tensor or per
    /// channel along axis 0), an optional fp32 bias `[outChannels]`, the geometry and the quint8 output parameters.
    ///
    /// PyTorch: `nnq.Conv2d(in, out, kernel_size, stride, padding, dilation, groups)` then
    /// `set_weight_bias(weight, bias)`, `scale`, `zero_point`.
    /// - Throws: `QuantizationError.invalidOperand` for a stride or dilation below 1, negative padding, or a weight,
    ///   bias or groups that `PackedConv2dWeight` refuses; `.invalidScale`, `.zeroPointOutOfRange` (quint8 output).
    public required init(weight: QuantizedTensor, bias: Tensor<Float>?, stride: Size2d = 1, padding: Size2d = 0,
                         dilation: Size2d = 1, groups: Int = 1, scale: Float, zeroPoint: Int) throws {
        try QuantizedConv2d.validate(stride: stride, padding: padding, dilation: dilation)
        try QParamChecks.checkPerTensor(scale: scale, zeroPoint: zeroPoint, dtype: .quint8, qscheme: .perTensorAffine)
        packedWeight = try PackedConv2dWeight(weight: weight, bias: bias, groups: groups)
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.scale = scale
        self.zeroPoint = zeroPoint
        super.init()
        try QuantizedModuleState.register(self, weight: weight, bias: bias, scale: scale, zeroPoint: zeroPoint)
    }

    /// From a prepared and calibrated `Conv2d`: the weight quantized with a fresh weight observer of its qconfig,
    /// the output parameters from its activation observer.
    ///
    /// PyTorch: `nnq.Conv2d.from_float(conv)`.
    /// - Throws: `QuantizationWorkflowError.notPrepared`, `.notCalibrated`, `.unsupportedQConfig` (naming the
    ///   module); what the observers throw.
    public init(from conv: Conv2d) throws {
        let (weight, bias, output) = try QuantizedModuleState.converted(weight: conv.weight.data,
                                                                        bias: conv.bias?.data, unit: conv)
        packedWeight = try PackedConv2dWeight(weight: weight, bias: bias, groups: conv.groups)
        stride = conv.stride
        padding = conv.padding
        dilation = conv.dilation
        scale = output.scale
        zeroPoint = output.zeroPoint
        super.init()
        try QuantizedModuleState.register(self, weight: weight, bias: bias, scale: scale, zeroPoint: zeroPoint)
    }

    private static func validate(stride: Size2d, padding: Size2d, dilation: Size2d) throws {
        func fail(_ reason: String) -> QuantizationError { .invalidOperand(operation: "QuantizedConv2d", reason: reason) }
        guard stride.height >= 1, stride.width >= 1 else { throw fail("stride must be >= 1, got \(stride)") }
        guard dilation.height >= 1, dilation.width >= 1 else { throw fail("dilation must be >= 1, got \(dilation)") }
        guard padding.height >= 0, padding.width >= 0 else { throw fail("padding must be >= 0, got \(padding)") }
    }

    /// The quantized weight `[outChannels, inChannels / groups, kh, kw]`. PyTorch: `conv.weight()`.
    public var weight: QuantizedTensor { packedWeight.weight }
    /// The fp32 bias, if any. PyTorch: `conv.bias()`.
    public var bias: Tensor<Float>? { packedWeight.bias }
    /// PyTorch: `conv.groups`.
    public var groups: Int { packedWeight.groups }
    /// PyTorch: `conv.in_channels`.
    public var inChannels: Int { packedWeight.inChannels }
    /// PyTorch: `conv.out_channels`.
    public var outChannels: Int { packedWeight.outChannels }
    /// PyTorch: `conv.kernel_size`.
    public var kernelSize: Size2d { packedWeight.kernelSize }

    /// `quantizedConv2d(x, packedWeight, ...)` on `[N, inChannels, H, W]`. PyTorch: `conv(x)`
    /// (`torch.ops.quantized.conv2d`, `conv2d_relu` for `QuantizedConvReLU2d`).
    /// - Throws: `QuantizationError.invalidOperand` naming this module for a float input (quantize it first: a
    ///   `QuantStub` before), a non-quint8 or per-channel input, a wrong shape or a kernel larger than the padded
    ///   input.
    public override func forward(_ input: Variable) throws -> Variable {
        let x = try quantizedInput(input)
        return Variable(try attributingErrors {
            try quantizedConv2d(x, packedWeight, stride: stride, padding: padding, dilation: dilation, scale: scale,
                                zeroPoint: zeroPoint, relu: type(of: self).fusesReLU)
        })
    }

    /// Repacks the weight from the loaded buffers. PyTorch: `nnq.Conv2d._load_from_state_dict`.
    /// - Throws: `SerializationError.invalidTensor`, `QuantizationError` for values that are not a valid
    ///   quantized weight or output parameters.
    public override func didLoadStateDict() throws {
        let current = packedWeight.weight
        let (weight, bias) = try QuantizedModuleState.weight(of: self, qscheme: current.qscheme, axis: current.axis)
        let output = try QuantizedModuleState.output(of: self)
        packedWeight = try PackedConv2dWeight(weight: weight, bias: bias, groups: packedWeight.groups)
        scale = output.scale
        zeroPoint = output.zeroPoint
    }

    /// PyTorch: `1, 16, kernel_size=(3, 3), stride=(1, 1), scale=0.05, zero_point=0, padding=(1, 1)` (defaults of
    /// padding, dilation, groups and bias omitted, as PyTorch does).
    public override var extraDescription: String {
        var parts = ["\(inChannels), \(outChannels), kernel_size=\(kernelSize), stride=\(stride), scale=\(scale), "
                     + "zero_point=\(zeroPoint)"]
        if padding != 0 { parts.append("padding=\(padding)") }
        if dilation != 1 { parts.append("dilation=\(dilation)") }
        if groups != 1 { parts.append("groups=\(groups)") }
        if bias == nil { parts.append("bias=False") }
        return parts.joined(separator: ", ")
    }

    /// `"QuantizedConv2d"` (`"QuantizedConvReLU2d"` for the fused version).
    public class var archiveTypeName: String { "QuantizedConv2d" }

    /// `in_channels`, `out_channels`, `kernel_size`, `stride`, `padding`, `dilation` (as `"h,w"`), `groups`,
    /// `bias`, the weight's `qscheme` and (per channel) `axis`.
    public var archiveConfiguration: [String: String] {
        var settings = QuantizedModuleState.weightSchemeSettings(weight)
        settings["in_channels"] = String(inChannels)
        settings["out_channels"] = String(outChannels)
        settings["kernel_size"] = kernelSize.archiveDescription
        settings["stride"] = stride.archiveDescription
        settings["padding"] = padding.archiveDescription
        settings["dilation"] = dilation.archiveDescription
        settings["groups"] = String(groups)
        settings["bias"] = pythonBool(bias != nil)
        return settings
    }

    /// A layer of the configured shapes with a zero weight, for `loadStateDict` to fill.
    /// - Throws: `SerializationError.invalidModelArchive` for missing or malformed settings.
    public class func makeForArchive(configuration: [String: String]) throws -> Module {
        let reader = ArchiveConfigurationReader(configuration, type: archiveTypeName)
        let positive = 1...Int(Int32.max)
        let inChannels = try reader.int("in_channels", in: positive)
        let outChannels = try reader.int("out_channels", in: positive)
        let groups = try reader.int("groups", in: positive)
        let kernel = try reader.size2d("kernel_size", in: positive)
        guard inChannels % groups == 0 else {
            throw SerializationError.invalidModelArchive(
                module: "", reason: "\(archiveTypeName): in_channels \(inChannels) is not divisible by groups \(groups)")
        }
        let (qscheme, axis) = try reader.weightScheme()
        let shape = [outChannels, inChannels / groups, kernel.height, kernel.width]
        return try self.init(
            weight: QuantizedModuleState.placeholderWeight(shape: shape, qscheme: qscheme, axis: axis, reader: reader),
            bias: QuantizedModuleState.placeholderBias(try reader.bool("bias"), count: outChannels),
            stride: try reader.size2d("stride", in: positive), padding: try reader.size2d("padding"),
            dilation: try reader.size2d("dilation", in: positive), groups: groups, scale: 1, zeroPoint: 0)
    }
}

/// `QuantizedConv2d` with a fused ReLU (outputs clamped at the zero point). What `convert` makes of a calibrated
/// `ConvReLU2d`.
///
/// PyTorch: `torch.ao.nn.intrinsic.quantized.ConvReLU2d` (`nniq.ConvReLU2d`, printed `QuantizedConvReLU2d`).
public final class QuantizedConvReLU2d: QuantizedConv2d {
    override class var fusesReLU: Bool { true }

    /// PyTorch: `nniq.ConvReLU2d(in, out, kernel_size, stride, padding, dilation, groups)` then `set_weight_bias`,
    /// `scale`, `zero_point`.
    /// - Throws: as `QuantizedConv2d.init(weight:bias:stride:padding:dilation:groups:scale:zeroPoint:)`.
    public required init(weight: QuantizedTensor, bias: Tensor<Float>?, stride: Size2d = 1, padding: Size2d = 0,
                         dilation: Size2d = 1, groups: Int = 1, scale: Float, zeroPoint: Int) throws {
        try super.init(weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation,
                       groups: groups, scale: scale, zeroPoint: zeroPoint)
    }

    /// From a prepared and calibrated `ConvReLU2d` (observed as one unit).
    /// PyTorch: `nniq.ConvReLU2d.from_float(conv_relu)`.
    /// - Throws: `QuantizationWorkflowError.notPrepared`, `.notCalibrated`, `.unsupportedQConfig`.
    public convenience init(from fused: ConvReLU2d) throws {
        let conv = try fused.conv
        let (weight, bias, output) = try QuantizedModuleState.converted(weight: conv.weight.data,
                                                                        bias: conv.bias?.data, unit: fused)
        try self.init(weight: weight, bias: bias, stride: conv.stride, padding: conv.padding, dilation: conv.dilation,
                      groups: conv.groups, scale: output.scale, zeroPoint: output.zeroPoint)
    }

    public override class var archiveTypeName: String { "QuantizedConvReLU2d" }
}
