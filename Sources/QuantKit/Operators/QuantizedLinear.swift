/// Int8 weights of a linear layer, packed once for the GEMM kernels, with an optional fp32 bias.
///
/// PyTorch: the `LinearPackedParams` that `torch.ops.quantized.linear_prepack(weight, bias)` returns (what
/// `nnq.Linear` and `nnqd.Linear` hold). The weight is PyTorch's `[outFeatures, inFeatures]` layout.
///
/// `@unchecked Sendable`: the C handle is immutable after creation, and the C run functions only read it (every
/// call keeps its scratch state on its own stack or heap; concurrent calls share the thread pool under its lock), so
/// one instance may be used from any number of threads at once. `deinit` frees the handle.
public final class PackedLinearWeight: @unchecked Sendable {
    let handle: OpaquePointer

    /// The quantized weight `[outFeatures, inFeatures]` (qint8, per tensor or per channel along axis 0).
    /// PyTorch: `torch.ops.quantized.linear_unpack(packed)[0]`.
    public let weight: QuantizedTensor

    /// The fp32 bias `[outFeatures]`, if any. PyTorch: `torch.ops.quantized.linear_unpack(packed)[1]`.
    public let bias: Tensor<Float>?

    /// Packs `weight` (qint8 `[outFeatures, inFeatures]`, per-tensor or per-channel along axis 0, affine or
    /// symmetric) and `bias` (`[outFeatures]`) for the ISA level in use.
    ///
    /// PyTorch: `torch.ops.quantized.linear_prepack(weight, bias)`.
    /// - Throws: `QuantizationError.invalidOperand` when the weight is not qint8, not 2-D, per channel along another
    ///   axis than 0, or the bias is not `[outFeatures]`; `.outOfMemory`.
    public init(weight: QuantizedTensor, bias: Tensor<Float>? = nil) throws {
        let operation = "linear_prepack"
        guard weight.dtype == .qint8 else {
            throw QuantizationError.invalidOperand(operation: operation, reason: "the weight must be qint8, got "
                                                   + "\(weight.dtype)")
        }
        guard weight.rank == 2 else {
            throw QuantizationError.invalidOperand(operation: operation, reason: "the weight must be 2-D "
                                                   + "[outFeatures, inFeatures], got shape \(weight.shape)")
        }
        let (n, k) = (weight.shape[0], weight.shape[1])
        if let axis = weight.axis, axis != 0 {
            throw QuantizationError.invalidOperand(operation: operation, reason: "a per-channel weight must be "
                                                   + "quantized along axis 0 (outFeatures), got axis \(axis)")
        }
        if let bias, bias.shape != [n] {
            throw QuantizationError.invalidOperand(operation: operation, reason: "the bias must have shape [\(n)] "
                                                   + "(outFeatures), got \(bias.shape)")
        }
        let perChannel = weight.axis != nil
        // Per channel with no channels: the C API still wants one valid scale to point at.
        let scales = weight.scales.isEmpty ? [Float(1)] : weight.scales
        let zeroPoints = weight.zeroPoints.isEmpty ? [Int32(0)] : weight.zeroPoints.map { Int32($0) }
        let values = try weight.intRepr(as: Int8.self)
        handle = try values.withUnsafeBufferPointer { w in
            try scales.withUnsafeBufferPointer { s in
                try zeroPoints.withUnsafeBufferPointer { z in
                    if let bias {
                        return try bias.withUnsafeBufferPointer { b in
                            try Kernels.createGEMMWeights(n: n, k: k, weights: w.baseAddress, perChannel: perChannel,
                                                          scales: s.baseAddress!, zeroPoints: z.baseAddress!,
                                                          bias: b.baseAddress)
                        }
                    }
                    return try Kernels.createGEMMWeights(n: n, k: k, weights: w.baseAddress, perChannel: perChannel,
                                                         scales: s.baseAddress!, zeroPoints: z.baseAddress!, bias: nil)
                }
            }
        }
        self.weight = weight
        self.bias = bias
    }

    deinit {
        Kernels.destroyGEMMWeights(handle)
    }

    /// N, the number of outputs. PyTorch: `nnq.Linear.out_features`.
    public var outFeatures: Int { weight.shape[0] }

    /// K, the number of inputs. PyTorch: `nnq.Linear.in_features`.
    public var inFeatures: Int { weight.shape[1] }

    /// The microkernel a static run with full 8-bit activations uses now, e.g.
    /// `"qk_qu8_gemm_ukernel_8x48c4__avx512vnni"`. PyTorch: no equivalent (the FBGEMM kernel is not reported).
    public var kernelName: String { Kernels.gemmKernelName(handle, sevenBit: false) }

    /// The microkernel used when every activation is <= 127 (7-bit, e.g. dynamic quantization with
    /// `reduceRange`); the same as `kernelName` on ISA levels without a separate fast kernel.
    public var sevenBitKernelName: String { Kernels.gemmKernelName(handle, sevenBit: true) }

    /// Bytes of the packed weights (int8 panels plus per-column compensation terms).
    public var packedByteCount: Int { Kernels.gemmPackedBytes(handle) }
}

/// The `[M, K]` view of an input `[..., K]`: M = product of the leading dimensions.
func linearRows(_ shape: [Int], inFeatures: Int, operation: String) throws -> Int {
    guard let last = shape.last else {
        throw QuantizationError.invalidOperand(operation: operation, reason: "the input must have at least one "
                                               + "dimension [..., \(inFeatures)], got a rank-0 tensor")
    }
    guard last == inFeatures else {
        throw QuantizationError.invalidOperand(operation: operation, reason: "the input's last dimension must be "
                                               + "the weight's inFeatures \(inFeatures), got shape \(shape)")
    }
    return shape.dropLast().reduce(1, *)
}

private func checkActivation(_ x: QuantizedTensor, operation: String) throws {
    guard x.dtype == .quint8 || x.dtype == .qint8 else {
        throw QuantizationError.invalidOperand(operation: operation, reason: "the input must be quint8 (or qint8), "
                                               + "got \(x.dtype)")
    }
    guard x.axis == nil else {
        throw QuantizationError.invalidOperand(operation: operation, reason: "the input must be quantized per "
                                               + "tensor, got \(x.qscheme)")
    }
}

/// Static quantized linear: `y = requantize(sum_k (x - x_zp) * (w - w_zp) + bias)` with PyTorch's x86 (FBGEMM)
/// numerics, bit for bit: `act_w_scale = x_scale * w_scale[n]`, `multiplier = act_w_scale / scale`, bias term
/// `bias * (float)(1 / (double)act_w_scale)` per tensor or `bias / act_w_scale` per channel,
/// `y = clamp(nearbyint((raw + bias_term) * multiplier) + zeroPoint, relu ? zeroPoint : min, max)`.
///
/// `x` is quint8 `[..., K]` per tensor (any number of leading dimensions) and the output quint8 `[..., N]`; a qint8
/// input (the symmetric activations of TFLite / XNNPACK) gives a qint8 output.
///
/// PyTorch: `torch.ops.quantized.linear(x, packed, scale, zero_point)` / `torch.ops.quantized.linear_relu`
/// (`nnq.Linear`, `nniq.LinearReLU`).
/// - Throws: `QuantizationError.invalidOperand` (input dtype, scheme or last dimension), `.invalidScale`,
///   `.zeroPointOutOfRange` (for the output dtype).
public func quantizedLinear(
    _ x: QuantizedTensor, _ w: PackedLinearWeight, scale: Float, zeroPoint: Int, relu: Bool = false
) throws -> QuantizedTensor {
    let operation = relu ? "quantized::linear_relu" : "quantized::linear"
    try checkActivation(x, operation: operation)
    let (k, n) = (w.inFeatures, w.outFeatures)
    let m = try linearRows(x.shape, inFeatures: k, operation: operation)
    let dtype = x.dtype
    try QParamChecks.checkPerTensor(scale: scale, zeroPoint: zeroPoint, dtype: dtype,
                                              qscheme: .perTensorAffine)
    let shape = Array(x.shape.dropLast()) + [n]
    _ = try Tensor<Int32>.elementCount(of: shape)
    let (xScale, xZeroPoint) = (x.scales[0], Int32(x.zeroPoints[0]))
    let values = try x.values.withUnsafeRawPointer { a, _ in
        try QuantizedTensor.Values.make(dtype: dtype, shape: shape, count: m * n) { y in
            try Kernels.gemmQuantized(w.handle, m: m, aDType: dtype, a: a, aScale: xScale, aZeroPoint: xZeroPoint,
                                      yDType: dtype, y: y, yScale: scale, yZeroPoint: Int32(zeroPoint), k: k, n: n,
                                      relu: relu)
        }
    }
    return withExtendedLifetime(w) {
        QuantizedTensor(values: values, qscheme: .perTensorAffine, scales: [scale], zeroPoints: [zeroPoint], axis: nil)
    }
}

/// The int32 accumulators of a quantized linear, `raw[m][n] = sum_k (x[m][k] - x_zp) * (w[n][k] - w_zp[n])`,
/// exact (wrapping mod 2^32 like PyTorch's int32 lanes), with no scales and no bias. Shape `[..., N]`.
///
/// PyTorch: the int32 output of FBGEMM's `fbgemmPacked` before output processing (`torch._int_mm` for the
/// symmetric case).
/// - Throws: `QuantizationError.invalidOperand` (input dtype, scheme or last dimension).
public func quantizedLinearAccumulators(_ x: QuantizedTensor, _ w: PackedLinearWeight) throws -> Tensor<Int32> {
    let operation = "quantized linear accumulators"
    try checkActivation(x, operation: operation)
    let (k, n) = (w.inFeatures, w.outFeatures)
    let m = try linearRows(x.shape, inFeatures: k, operation: operation)
    let shape = Array(x.shape.dropLast()) + [n]
    _ = try Tensor<Int32>.elementCount(of: shape)
    return try withExtendedLifetime(w) {
        try x.values.withUnsafeRawPointer { a, _ in
            try Tensor<Int32>(uninitializedShape: shape, count: m * n) { y in
                try Kernels.gemmAccumulators(w.handle, m: m, aDType: x.dtype, a: a, aZeroPoint: Int32(x.zeroPoints[0]),
                                             y: y, k: k, n: n)
            }
        }
    }
}

/// Dynamic quantized linear: fp32 in, fp32 out, int8 GEMM inside. The activations get a scale and zero point from
/// their own min/max (`dynamicQuantizationParameters(reduceRange:)`, PyTorch's rule), are quantized to quint8, and
/// `y = fmaf(Float(raw), x_scale * w_scale[n], bias[n])` (one fused multiply-add), then `max(y, 0)` with `relu`.
///
/// - `reduceRange` (default true, as `nnqd.Linear` on x86): activations use `[0, 127]`, which lets AVX2 use its
///   faster kernel; false uses `[0, 255]` (better precision).
/// - `perRowActivations` (beyond PyTorch): one scale and zero point per row (per token) of the `[M, K]` view of `x`.
///   A row with outliers then no longer coarsens every other row's quantization. Costs one extra pass over the
///   output.
///
/// NaN inputs are skipped by the min/max and quantize to 0; an infinite input throws.
///
/// PyTorch: `torch.ops.quantized.linear_dynamic(x, packed, reduce_range)` (`nnqd.Linear`), and
/// `torch.ops.quantized.linear_relu_dynamic`.
/// - Throws: `QuantizationError.invalidOperand` (last dimension), `.invalidArgument` (an infinite input).
public func dynamicQuantizedLinear(
    _ x: Tensor<Float>, _ w: PackedLinearWeight, reduceRange: Bool = true, perRowActivations: Bool = false,
    relu: Bool = false
) throws -> Tensor<Float> {
    let operation = relu ? "quantized::linear_relu_dynamic" : "quantized::linear_dynamic"
    let (k, n) = (w.inFeatures, w.outFeatures)
    let m = try linearRows(x.shape, inFeatures: k, operation: operation)
    let shape = Array(x.shape.dropLast()) + [n]
    _ = try Tensor<Float>.elementCount(of: shape)
    return try withExtendedLifetime(w) {
        try x.withUnsafeBufferPointer { input in
            try Tensor<Float>(uninitializedShape: shape, count: m * n) { y in
                try Kernels.dynamicLinear(w.handle, m: m, x: input.baseAddress, y: y, k: k, n: n,
                                          reduceRange: reduceRange, perRow: perRowActivations, relu: relu)
            }
        }
    }
}

extension Tensor where Scalar == Float {
    /// The quint8 scale and zero point dynamic quantization picks for this tensor: from its min/max (NaN skipped),
    /// extended to contain 0, over `[0, 127]` with `reduceRange` or `[0, 255]`, exactly PyTorch's
    /// `ChooseQuantizationParams` (scale 0.1 for an all-zero range, at least 6.1e-5).
    ///
    /// PyTorch: `torch._choose_qparams_per_tensor(x, reduce_range)`.
    /// - Throws: `QuantizationError.invalidArgument` when the tensor holds an infinity.
    public func dynamicQuantizationParameters(reduceRange: Bool = true) throws -> (scale: Float, zeroPoint: Int) {
        let (low, high) = minMax()
        let (scale, zeroPoint) = try Kernels.dynamicQuantizationParameters(min: low, max: high,
                                                                           reduceRange: reduceRange)
        return (scale, Int(zeroPoint))
    }
}
