/// fp32 weights (and optional bias) of a depthwise 2-D convolution, packed once for the depthwise kernels: one group
/// per input channel, each producing `depthMultiplier` output channels.
///
/// PyTorch: the `weight` `[outChannels, 1, kh, kw]` and `bias` of an `nn.Conv2d(C, C * m, k, groups=C)` (float
/// models, and the float side of QAT); PyTorch packs nothing for fp32 convolutions.
///
/// `@unchecked Sendable`: the C handle is immutable after creation and the run function only reads it, so one
/// instance may be used from any number of threads at once.
public final class PackedDepthwiseConv2dWeight: @unchecked Sendable {
    let handle: F32DepthwiseConvHandle

    /// The weight `[outChannels, 1, kernelHeight, kernelWidth]` as given. PyTorch: `conv.weight`.
    public let weight: Tensor<Float>

    /// The bias `[outChannels]`, if any. PyTorch: `conv.bias`.
    public let bias: Tensor<Float>?

    /// The number of groups, which is the number of input channels. PyTorch: `conv.groups` (`== conv.in_channels`).
    public let groups: Int

    /// Packs `weight` (`[outChannels, 1, kh, kw]`, PyTorch's order: output channel `o` reads input channel
    /// `o / depthMultiplier`) and `bias` (`[outChannels]`) for the ISA level in use. `groups` is the number of input
    /// channels; nil means one per output channel (depth multiplier 1, the usual depthwise layer).
    ///
    /// PyTorch: `nn.Conv2d(groups, outChannels, (kh, kw), groups=groups)` holding `weight` and `bias`.
    /// - Throws: `QuantizationError.invalidOperand` when the weight is not 4-D with one input channel per group,
    ///   has a zero dimension, `outChannels` is not a multiple of `groups`, or the bias is not `[outChannels]`;
    ///   `.outOfMemory`.
    public init(weight: Tensor<Float>, bias: Tensor<Float>? = nil, groups: Int? = nil) throws {
        let operation = "conv2d (depthwise)"
        func fail(_ reason: String) -> QuantizationError { .invalidOperand(operation: operation, reason: reason) }
        let shape = weight.shape
        guard shape.count == 4 else {
            throw fail("the weight must be 4-D [outChannels, 1, kernelHeight, kernelWidth], got shape \(shape)")
        }
        guard shape.allSatisfy({ $0 >= 1 }) else {
            throw fail("every dimension of the weight must be at least 1, got shape \(shape)")
        }
        let outChannels = shape[0]
        let groups = groups ?? outChannels
        guard groups >= 1, outChannels % groups == 0 else {
            throw fail("outChannels \(outChannels) must be a positive multiple of groups \(groups)")
        }
        guard shape[1] == 1 else {
            throw fail("a depthwise weight has one input channel per group ([outChannels, 1, kh, kw]), got shape "
                       + "\(shape); use groups == in_channels")
        }
        if let bias, bias.shape != [outChannels] {
            throw fail("the bias must have shape [\(outChannels)] (outChannels), got \(bias.shape)")
        }
        let kernel = Size2d(height: shape[2], width: shape[3])
        handle = try weight.withUnsafeBufferPointer { w in
            try withOptionalBuffer(bias) { b in
                try F32DepthwiseConvHandle(channels: groups, depthMultiplier: outChannels / groups, kernel: kernel,
                                           weights: w.baseAddress!, bias: b)
            }
        }
        self.weight = weight
        self.bias = bias
        self.groups = groups
    }

    /// Input channels (`== groups`). PyTorch: `conv.in_channels`.
    public var inChannels: Int { groups }

    /// Output channels. PyTorch: `conv.out_channels`.
    public var outChannels: Int { weight.shape[0] }

    /// Output channels per input channel. PyTorch: `conv.out_channels // conv.groups`.
    public var depthMultiplier: Int { outChannels / groups }

    /// `(kernelHeight, kernelWidth)`. PyTorch: `conv.kernel_size`.
    public var kernelSize: Size2d { Size2d(height: weight.shape[2], width: weight.shape[3]) }

    /// The microkernel a run uses now, e.g. `"qk_f32_dwconv_ukernel_9p16c__avx2"`. PyTorch: no equivalent.
    public var kernelName: String { handle.kernelName }

    /// Bytes of the packed weights. PyTorch: no equivalent.
    public var packedByteCount: Int { handle.packedByteCount }
}

/// fp32 depthwise 2-D convolution: `y[n][o][oy][ox] = bias[o] + sum_{ky, kx} x[n][c][iy][ix] * w[o][0][ky][kx]`
/// with `c = o / depthMultiplier`, `iy = oy * stride.height - padding.height + ky * dilation.height` (columns
/// likewise) and zeros in the padding, then `y < 0 ? 0 : y` with `relu` (NaN stays NaN).
///
/// `x` is `[N, C, H, W]` (`layout: .nchw`, the default) or `[N, H, W, C]` (`.nhwc`, which saves the two permutes
/// the kernels otherwise need), `C == w.inChannels`; the output has the same layout, with
/// `outHeight = (H + 2 * padding.height - dilation.height * (kh - 1) - 1) / stride.height + 1` (width likewise).
/// Products and sums are fp32 in the kernel's order (with FMA where the ISA has it), so ISA levels agree to
/// rounding, `|y - exact| <= (kh * kw + 2) * 2^-23 * (sum |x w| + |bias|)`, not bit for bit; one ISA level gives the
/// same bits for any thread count. An empty batch gives an empty output.
///
/// PyTorch: `F.conv2d(x, weight, bias, stride, padding, dilation, groups=C)` (then `F.relu` with `relu`), on
/// `x.contiguous(memory_format=torch.channels_last)` for `.nhwc`.
/// - Throws: `QuantizationError.invalidOperand` when `x` is not 4-D, its channels are not `w.inChannels`, its
///   height or width is 0, stride or dilation is below 1, padding is negative, or the dilated kernel is larger than
///   the padded input.
public func depthwiseConv2d(
    _ x: Tensor<Float>, _ w: PackedDepthwiseConv2dWeight, stride: Size2d = 1, padding: Size2d = 0,
    dilation: Size2d = 1, relu: Bool = false, layout: ConvolutionLayout = .nchw
) throws -> Tensor<Float> {
    let operation = relu ? "conv2d + relu (depthwise)" : "conv2d (depthwise)"
    let (n, _, h, width) = try ConvolutionIO.inputDimensions(x.shape, layout: layout, channels: w.inChannels,
                                                             operation: operation)
    let geometry = try Conv2dGeometry(operation: operation, batch: n, inHeight: h, inWidth: width,
                                      kernel: w.kernelSize, stride: stride, padding: padding, dilation: dilation)
    return try withExtendedLifetime(w) {
        try ConvolutionIO.run(x, layout: layout, geometry: geometry, inChannels: w.inChannels,
                              outChannels: w.outChannels) { (input: UnsafePointer<Float>, output) in
            try w.handle.run(geometry, x: input, y: output, relu: relu)
        }
    }
}

/// Calls `body` with the tensor's base address, or nil without a tensor.
func withOptionalBuffer<T: TensorScalar, R>(_ tensor: Tensor<T>?, _ body: (UnsafePointer<T>?) throws -> R) rethrows
    -> R
{
    guard let tensor else { return try body(nil) }
    return try tensor.withUnsafeBufferPointer { try body($0.baseAddress) }
}
