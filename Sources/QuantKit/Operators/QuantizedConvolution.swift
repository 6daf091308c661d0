/// Int8 weights of a 2-D convolution with any number of groups, packed once for the convolution kernels, with an
/// optional fp32 bias. Depthwise layers (`groups == inChannels`) run the depthwise kernels, the others an int8 GEMM
/// per group (directly on the input for 1x1 kernels with stride 1 and no padding, else on im2col rows).
///
/// PyTorch: the `Conv2dPackedParams` that `torch.ops.quantized.conv2d_prepack(weight, bias, stride, padding,
/// dilation, groups)` returns (what `nnq.Conv2d` and `nniq.ConvReLU2d` hold). Here stride, padding and dilation are
/// arguments of each call (`quantizedConv2d`) instead of being packed with the weights.
///
/// `@unchecked Sendable`: the C handle is immutable after creation and the run function only reads it (every call
/// keeps its scratch state to itself), so one instance may be used from any number of threads at once.
public final class PackedConv2dWeight: @unchecked Sendable {
    let handle: QuantizedConv2dHandle

    /// The quantized weight `[outChannels, inChannels / groups, kernelHeight, kernelWidth]` (qint8, per tensor or
    /// per channel along axis 0). PyTorch: `torch.ops.quantized.conv2d_unpack(packed)[0]`, `nnq.Conv2d.weight()`.
    public let weight: QuantizedTensor

    /// The fp32 bias `[outChannels]`, if any. PyTorch: `torch.ops.quantized.conv2d_unpack(packed)[1]`.
    public let bias: Tensor<Float>?

    /// The number of groups: input and output channels are split into `groups` equal parts and output group `g` sees
    /// only input group `g`. PyTorch: `nnq.Conv2d.groups`.
    public let groups: Int

    /// Packs `weight` (qint8 `[outChannels, inChannels / groups, kh, kw]`, PyTorch's order, per tensor or per channel
    /// along axis 0, affine or symmetric) and `bias` (`[outChannels]`) for the ISA level in use.
    ///
    /// PyTorch: `torch.ops.quantized.conv2d_prepack(weight, bias, stride, padding, dilation, groups)`.
    /// - Throws: `QuantizationError.invalidOperand` when the weight is not qint8, not 4-D, has a zero dimension, is
    ///   per channel along another axis than 0, `groups` is below 1 or does not divide `outChannels`, or the bias is
    ///   not `[outChannels]`; `.outOfMemory`.
    public init(weight: QuantizedTensor, bias: Tensor<Float>? = nil, groups: Int = 1) throws {
        func fail(_ reason: String) -> QuantizationError {
            .invalidOperand(operation: "quantized::conv2d_prepack", reason: reason)
        }
        guard weight.dtype == .qint8 else { throw fail("the weight must be qint8, got \(weight.dtype)") }
        let shape = weight.shape
        guard shape.count == 4 else {
            throw fail("the weight must be 4-D [outChannels, inChannels / groups, kernelHeight, kernelWidth], got "
                       + "shape \(shape)")
        }
        guard shape.allSatisfy({ $0 >= 1 }) else {
            throw fail("every dimension of the weight must be at least 1, got shape \(shape)")
        }
        let outChannels = shape[0]
        guard groups >= 1 else { throw fail("groups must be at least 1, got \(groups)") }
        guard outChannels % groups == 0 else {
            throw fail("outChannels \(outChannels) (weight shape \(shape)) must be divisible by groups \(groups)")
        }
        let (inChannels, overflow) = shape[1].multipliedReportingOverflow(by: groups)
        guard !overflow else { throw fail("inChannels = \(shape[1]) x \(groups) groups overflows Int") }
        if let axis = weight.axis, axis != 0 {
            throw fail("a per-channel weight must be quantized along axis 0 (outChannels), got axis \(axis)")
        }
        if let bias, bias.shape != [outChannels] {
            throw fail("the bias must have shape [\(outChannels)] (outChannels), got \(bias.shape)")
        }
        let zeroPoints = weight.zeroPoints.map { Int32($0) }
        let values = try weight.intRepr(as: Int8.self)
        handle = try values.withUnsafeBufferPointer { w in
            try weight.scales.withUnsafeBufferPointer { s in
                try zeroPoints.withUnsafeBufferPointer { z in
                    try withOptionalBuffer(bias) { b in
                        try QuantizedConv2dHandle(
                            inChannels: inChannels, outChannels: outChannels, groups: groups,
                            kernel: Size2d(height: shape[2], width: shape[3]), weights: w.baseAddress!,
                            perChannel: weight.axis != nil, scales: s.baseAddress!, zeroPoints: z.baseAddress!,
                            bias: b)
                    }
                }
            }
        }
        self.weight = weight
        self.bias = bias
        self.groups = groups
    }

    /// Input channels, `weight.shape[1] * groups`. PyTorch: `nnq.Conv2d.in_channels`.
    public var inChannels: Int { weight.shape[1] * groups }

    /// Output channels, `weight.shape[0]`. PyTorch: `nnq.Conv2d.out_channels`.
    public var outChannels: Int { weight.shape[0] }

    /// `(kernelHeight, kernelWidth)`. PyTorch: `nnq.Conv2d.kernel_size`.
    public var kernelSize: Size2d { Size2d(height: weight.shape[2], width: weight.shape[3]) }

    /// The path and microkernel a run with full 8-bit activations uses now, e.g.
    /// `"depthwise qk_qu8_dwconv_ukernel_9p32c__avx2"`, `"1x1 gemm ..."` or `"im2col gemm ..."`. PyTorch: no
    /// equivalent (the FBGEMM kernel is not reported).
    public var kernelName: String { handle.kernelName }

    /// Bytes of the packed weights. PyTorch: no equivalent.
    public var packedByteCount: Int { handle.packedByteCount }
}

/// Static quantized 2-D convolution with PyTorch's x86 (FBGEMM) numerics, bit for bit. Output channel `o` of group
/// `g = o / (outChannels / groups)` accumulates exactly in int32
/// `raw = sum_{c, ky, kx} (x[n][g * icg + c][iy][ix] - x_zp) * (w[o][c][ky][kx] - w_zp[o])` with
/// `iy = oy * stride.height - padding.height + ky * dilation.height` (columns likewise; taps in the padding read
/// `x_zp`), then requantizes as `quantizedLinear` does: `act_w_scale = x_scale * w_scale[o]`,
/// `multiplier = act_w_scale / scale`, bias term `bias * (float)(1 / (double)act_w_scale)` per tensor or
/// `bias / act_w_scale` per channel, `y = clamp(nearbyint((raw + bias_term) * multiplier) + zeroPoint,
/// relu ? zeroPoint : 0, 255)`. The same bits on every ISA level and thread count.
///
/// `x` is quint8 per tensor, `[N, C, H, W]` (`layout: .nchw`, the default) or `[N, H, W, C]` (`.nhwc`, the kernels'
/// own layout, which saves two permutes), `C == w.inChannels`. The output is quint8 per tensor with `scale` and
/// `zeroPoint`, in the same layout, `outHeight = (H + 2 * padding.height - dilation.height * (kh - 1) - 1) /
/// stride.height + 1` (width likewise). Padding is symmetric, as PyTorch's. An empty batch gives an empty output.
///
/// PyTorch: `torch.ops.quantized.conv2d(x, packed, scale, zero_point)` / `torch.ops.quantized.conv2d_relu` (what
/// `nnq.Conv2d` / `nniq.ConvReLU2d` run), with `stride`, `padding` and `dilation` as given to `conv2d_prepack`.
/// - Throws: `QuantizationError.invalidOperand` when `x` is not quint8, not per tensor, not 4-D, its channels are not
///   `w.inChannels`, its height or width is 0, stride or dilation is below 1, padding is negative, or the dilated
///   kernel is larger than the padded input; `.invalidScale`, `.zeroPointOutOfRange` (output, quint8).
public func quantizedConv2d(
    _ x: QuantizedTensor, _ w: PackedConv2dWeight, stride: Size2d = 1, padding: Size2d = 0, dilation: Size2d = 1,
    scale: Float, zeroPoint: Int, relu: Bool = false, layout: ConvolutionLayout = .nchw
) throws -> QuantizedTensor {
    let operation = relu ? "quantized::conv2d_relu" : "quantized::conv2d"
    guard x.dtype == .quint8 else {
        throw QuantizationError.invalidOperand(operation: operation, reason: "the input must be quint8, got "
                                               + "\(x.dtype)")
    }
    guard x.axis == nil else {
        throw QuantizationError.invalidOperand(operation: operation, reason: "the input must be quantized per "
                                               + "tensor, got \(x.qscheme)")
    }
    let (n, _, h, width) = try ConvolutionIO.inputDimensions(x.shape, layout: layout, channels: w.inChannels,
                                                             operation: operation)
    let geometry = try Conv2dGeometry(operation: operation, batch: n, inHeight: h, inWidth: width,
                                      kernel: w.kernelSize, stride: stride, padding: padding, dilation: dilation)
    try QParamChecks.checkPerTensor(scale: scale, zeroPoint: zeroPoint, dtype: .quint8, qscheme: .perTensorAffine)
    let (xScale, xZeroPoint) = (x.scales[0], Int32(x.zeroPoints[0]))
    let input = try x.intRepr(as: UInt8.self)
    let y: Tensor<UInt8> = try withExtendedLifetime(w) {
        try ConvolutionIO.run(input, layout: layout, geometry: geometry, inChannels: w.inChannels,
                              outChannels: w.outChannels) { (a: UnsafePointer<UInt8>, b: UnsafeMutablePointer<UInt8>) in
            try w.handle.run(geometry, x: a, xScale: xScale, xZeroPoint: xZeroPoint, y: b, yScale: scale,
                             yZeroPoint: Int32(zeroPoint), relu: relu)
        }
    }
    return QuantizedTensor(values: .quint8(y), qscheme: .perTensorAffine, scales: [scale], zeroPoints: [zeroPoint],
                           axis: nil)
}

/// Static quantized 2-D convolution from an unpacked weight: packs `weight` and `bias` (see `PackedConv2dWeight`)
/// and runs `quantizedConv2d(_:_:stride:padding:dilation:scale:zeroPoint:relu:layout:)`. Packing costs about as
/// much as a small convolution; a layer that runs more than once should pack once.
///
/// PyTorch: `torch.ao.nn.quantized.functional.conv2d(x, weight, bias, stride, padding, dilation, groups,
/// scale=scale, zero_point=zero_point)` (which also prepacks on every call); `relu` fuses
/// `torch.ops.quantized.conv2d_relu`.
/// - Throws: what `PackedConv2dWeight.init(weight:bias:groups:)` and the packed `quantizedConv2d` throw.
public func quantizedConv2d(
    _ x: QuantizedTensor, weight: QuantizedTensor, bias: Tensor<Float>? = nil, stride: Size2d = 1,
    padding: Size2d = 0, dilation: Size2d = 1, groups: Int = 1, scale: Float, zeroPoint: Int, relu: Bool = false,
    layout: ConvolutionLayout = .nchw
) throws -> QuantizedTensor {
    let packed = try PackedConv2dWeight(weight: weight, bias: bias, groups: groups)
    return try quantizedConv2d(x, packed, stride: stride, padding: padding, dilation: dilation, scale: scale,
                               zeroPoint: zeroPoint, relu: relu, layout: layout)
}
