// Functional fake quantization: PyTorch's torch.fake_quantize_per_{tensor,channel}_affine and the learnable (LSQ)
// torch._fake_quantize_learnable_per_{tensor,channel}_affine, each with its backward. The numerics are PyTorch's CPU
// kernels bit for bit (quantkit.h, "fake quantization"); validation happens here so errors name Swift arguments.

/// The gradients of a learnable fake quantization: with respect to the input, the scale(s) and the zero point(s).
///
/// PyTorch: the `(dX, dScale, dZeroPoint)` tuple of `torch._fake_quantize_learnable_per_tensor_affine_backward` (and
/// the per-channel form); per tensor, `scale` and `zeroPoint` hold one element, as PyTorch's `[1]`-shaped tensors.
public struct LearnableFakeQuantizeGradients: Sendable {
    /// The gradient with respect to the input (the straight-through estimator). PyTorch: `dX`.
    public var input: Tensor<Float>
    /// The gradient with respect to each scale. PyTorch: `dScale`.
    public var scale: [Float]
    /// The gradient with respect to each zero point. PyTorch: `dZeroPoint`.
    public var zeroPoint: [Float]
}

/// Argument checks shared by the functional ops and the modules.
enum FakeQuantChecks {
    /// The C kernels' bound on |quant_min|, |quant_max| (float arithmetic stays exact).
    static let rangeLimit = 1 << 23

    static func checkRange(_ operation: String, quantMin: Int, quantMax: Int, containsZero: Bool = false)
        throws(QuantizationError)
    {
        guard quantMin <= quantMax, quantMin >= -rangeLimit, quantMax <= rangeLimit else {
            throw .invalidOperand(operation: operation, reason: "quant range [\(quantMin), \(quantMax)] must be "
                                  + "ordered (quant_min <= quant_max) and within +-\(rangeLimit)")
        }
        if containsZero && (quantMin > 0 || quantMax < 0) {
            throw .invalidOperand(operation: operation, reason: "quant range [\(quantMin), \(quantMax)] must contain "
                                  + "0 (quant_min <= 0 <= quant_max) for the learnable backward")
        }
    }

    static func checkZeroPoint(_ operation: String, _ zeroPoint: Int, quantMin: Int, quantMax: Int, channel: Int?)
        throws(QuantizationError)
    {
        guard zeroPoint >= quantMin, zeroPoint <= quantMax else {
            let what = channel.map { "zero point of channel \($0)" } ?? "zero point"
            throw .invalidOperand(operation: operation, reason: "\(what) \(zeroPoint) must be between quant_min "
                                  + "\(quantMin) and quant_max \(quantMax)")
        }
    }

    static func checkLearnableZeroPoint(_ operation: String, _ zeroPoint: Float, channel: Int?)
        throws(QuantizationError)
    {
        guard zeroPoint.isFinite else {
            let what = channel.map { "zero point of channel \($0)" } ?? "zero point"
            throw .invalidOperand(operation: operation, reason: "\(what) must be finite, got \(zeroPoint)")
        }
    }

    static func checkGradFactor(_ operation: String, _ gradFactor: Float) throws(QuantizationError) {
        guard gradFactor.isFinite else {
            throw .invalidOperand(operation: operation, reason: "grad_factor must be finite, got \(gradFactor)")
        }
    }

    static func checkSameShape(_ operation: String, _ gradOutput: [Int], _ other: [Int], _ what: String)
        throws(QuantizationError)
    {
        guard gradOutput == other else {
            throw .invalidOperand(operation: operation, reason: "the gradient has shape \(gradOutput) but \(what) has "
                                  + "shape \(other); expected the same shape")
        }
    }

    /// Per-channel parameter counts and the normalised axis.
    static func checkChannels(_ operation: String, scales: Int, zeroPoints: Int, axis: Int, shape: [Int])
        throws(QuantizationError) -> Int
    {
        let axis = try QParamChecks.normalize(axis: axis, rank: shape.count)
        guard scales == shape[axis], zeroPoints == shape[axis] else {
            throw .channelCountMismatch(scales: scales, zeroPoints: zeroPoints, channels: shape[axis], axis: axis)
        }
        return axis
    }

    static func int32(_ values: [Int]) -> [Int32] { values.map { Int32(truncatingIfNeeded: $0) } }
}

// MARK: - Fixed scale and zero point

/// Forward pass with the straight-through mask. `withMask` false skips writing the mask.
func fakeQuantizeForward(
    _ x: Tensor<Float>, scales: [Float], zeroPoints: [Int], axis: Int?, quantMin: Int, quantMax: Int, withMask: Bool,
    operation: String
) throws -> (output: Tensor<Float>, mask: Tensor<UInt8>?) {
    try FakeQuantChecks.checkRange(operation, quantMin: quantMin, quantMax: quantMax)
    var view: ChannelView?
    if let axis {
        let normalized = try FakeQuantChecks.checkChannels(operation, scales: scales.count,
                                                           zeroPoints: zeroPoints.count, axis: axis, shape: x.shape)
        view = ChannelView(shape: x.shape, axis: normalized)
    } else {
        guard scales.count == 1, zeroPoints.count == 1 else {
            throw QuantizationError.channelCountMismatch(scales: scales.count, zeroPoints: zeroPoints.count,
                                                         channels: 1, axis: 0)
        }
    }
    for (channel, (scale, zeroPoint)) in zip(scales, zeroPoints).enumerated() {
        let label = axis == nil ? nil : channel
        try QParamChecks.checkScale(scale, channel: label)
        try FakeQuantChecks.checkZeroPoint(operation, zeroPoint, quantMin: quantMin, quantMax: quantMax, channel: label)
    }
    var mask: Tensor<UInt8>? = withMask ? try Tensor<UInt8>(zeros: x.shape) : nil
    let zeroPoints32 = FakeQuantChecks.int32(zeroPoints)
    let output = try x.withUnsafeBufferPointer { input in
        try Tensor<Float>(unsafeUninitializedShape: x.shape) { output in
            try withOptionalMutablePointer(&mask) { maskPointer in
                if let view {
                    try scales.withUnsafeBufferPointer { s in
                        try zeroPoints32.withUnsafeBufferPointer { z in
                            try Kernels.fakeQuantizePerChannel(
                                view: view, input: input.baseAddress!, output: output.baseAddress!, mask: maskPointer,
                                scales: s.baseAddress, zeroPoints: z.baseAddress, quantMin: Int32(quantMin),
                                quantMax: Int32(quantMax))
                        }
                    }
                } else {
                    try Kernels.fakeQuantizePerTensor(
                        count: input.count, input: input.baseAddress!, output: output.baseAddress!, mask: maskPointer,
                        scale: scales[0], zeroPoint: zeroPoints32[0], quantMin: Int32(quantMin),
                        quantMax: Int32(quantMax))
                }
            }
        }
    }
    return (output, mask)
}

/// Calls `body` with the tensor's base address, or nil when there is no tensor.
fileprivate func withOptionalMutablePointer<R>(_ tensor: inout Tensor<UInt8>?, _ body: (UnsafeMutablePointer<UInt8>?) throws -> R)
    rethrows -> R
{
    guard var t = tensor else { return try body(nil) }
    tensor = nil   // keep the storage uniquely referenced, so the write below does not copy
    defer { tensor = t }
    return try t.withUnsafeMutableBufferPointer { try body($0.baseAddress) }
}

/// Fake-quantizes with one scale and zero point:
/// `y = (clamp(zeroPoint + nearbyint(x * (1 / scale)), quantMin, quantMax) - zeroPoint) * scale`, rounding half to
/// even and multiplying by the float32 reciprocal, as PyTorch's CPU kernel. NaN gives
/// `(quantMin - zeroPoint) * scale`; infinities clamp to the bounds.
///
/// PyTorch: `torch.fake_quantize_per_tensor_affine(x, scale, zero_point, quant_min, quant_max)`.
/// - Throws: `QuantizationError.invalidScale`; `.invalidOperand` for a quant range that is not ordered or exceeds
///   ±2^23 (every integer range up to 16 bits fits), or a zero point outside it.
public func fakeQuantizePerTensorAffine(
    _ x: Tensor<Float>, scale: Float, zeroPoint: Int, quantMin: Int, quantMax: Int
) throws -> Tensor<Float> {
    try fakeQuantizeForward(x, scales: [scale], zeroPoints: [zeroPoint], axis: nil, quantMin: quantMin,
                            quantMax: quantMax, withMask: false, operation: "fake_quantize_per_tensor_affine").output
}

/// The same, also returning the straight-through mask (1 where `quantMin <= zeroPoint + nearbyint(x / scale) <=
/// quantMax`, computed on the rounded value, else 0) that the backward pass multiplies the gradient by.
///
/// PyTorch: `torch.fake_quantize_per_tensor_affine_cachemask(x, scale, zero_point, quant_min, quant_max)` (its bool
/// mask as 0 / 1 bytes).
/// - Throws: what `fakeQuantizePerTensorAffine` throws.
public func fakeQuantizePerTensorAffineCachemask(
    _ x: Tensor<Float>, scale: Float, zeroPoint: Int, quantMin: Int, quantMax: Int
) throws -> (output: Tensor<Float>, mask: Tensor<UInt8>) {
    let (output, mask) = try fakeQuantizeForward(x, scales: [scale], zeroPoints: [zeroPoint], axis: nil,
                                                 quantMin: quantMin, quantMax: quantMax, withMask: true,
                                                 operation: "fake_quantize_per_tensor_affine_cachemask")
    return (output, mask!)
}

/// Fake-quantizes each slice along `axis` with its own scale and zero point (the per-tensor rule per slice). `axis`
/// may be negative.
///
/// PyTorch: `torch.fake_quantize_per_channel_affine(x, scales, zero_points, axis, quant_min, quant_max)`.
/// - Throws: `QuantizationError.axisOutOfRange`, `.channelCountMismatch`, `.invalidScale` naming the channel,
///   `.invalidOperand` for the quant range or a zero point outside it.
public func fakeQuantizePerChannelAffine(
    _ x: Tensor<Float>, scales: [Float], zeroPoints: [Int], axis: Int, quantMin: Int, quantMax: Int
) throws -> Tensor<Float> {
    try fakeQuantizeForward(x, scales: scales, zeroPoints: zeroPoints, axis: axis, quantMin: quantMin,
                            quantMax: quantMax, withMask: false, operation: "fake_quantize_per_channel_affine").output
}

/// The per-channel form with its straight-through mask.
///
/// PyTorch: `torch.fake_quantize_per_channel_affine_cachemask(x, scales, zero_points, axis, quant_min, quant_max)`.
/// - Throws: what `fakeQuantizePerChannelAffine` throws.
public func fakeQuantizePerChannelAffineCachemask(
    _ x: Tensor<Float>, scales: [Float], zeroPoints: [Int], axis: Int, quantMin: Int, quantMax: Int
) throws -> (output: Tensor<Float>, mask: Tensor<UInt8>) {
    let (output, mask) = try fakeQuantizeForward(x, scales: scales, zeroPoints: zeroPoints, axis: axis,
                                                 quantMin: quantMin, quantMax: quantMax, withMask: true,
                                                 operation: "fake_quantize_per_channel_affine_cachemask")
    return (output, mask!)
}

/// The straight-through backward: `gradOutput * mask`, elementwise (a negative gradient outside the range becomes
/// `-0.0`, as PyTorch's `dY * mask`).
///
/// PyTorch: `torch.ops.aten.fake_quantize_per_tensor_affine_cachemask_backward(dY, mask)` (and the per-channel one,
/// which is the same).
/// - Throws: `QuantizationError.invalidOperand` when the shapes differ.
public func fakeQuantizeCachemaskBackward(_ gradOutput: Tensor<Float>, mask: Tensor<UInt8>) throws -> Tensor<Float> {
    try FakeQuantChecks.checkSameShape("fake_quantize_cachemask_backward", gradOutput.shape, mask.shape, "the mask")
    return try gradOutput.withUnsafeBufferPointer { dy in
        try mask.withUnsafeBufferPointer { m in
            try Tensor<Float>(unsafeUninitializedShape: gradOutput.shape) { dx in
                try Kernels.fakeQuantizeBackward(count: dy.count, gradOutput: dy.baseAddress!, mask: m.baseAddress!,
                                                 gradInput: dx.baseAddress!)
            }
        }
    }
}

/// The gradient of `fakeQuantizePerTensorAffine` with respect to `x`, recomputing the mask from `x`: `gradOutput`
/// where `quantMin <= zeroPoint + nearbyint(x / scale) <= quantMax`, else 0.
///
/// PyTorch: what autograd runs for `torch.fake_quantize_per_tensor_affine` (`x.grad` after `y.backward(grad_y)`).
/// - Throws: what `fakeQuantizePerTensorAffine` throws; `.invalidOperand` when the shapes differ.
public func fakeQuantizePerTensorAffineBackward(
    _ gradOutput: Tensor<Float>, _ x: Tensor<Float>, scale: Float, zeroPoint: Int, quantMin: Int, quantMax: Int
) throws -> Tensor<Float> {
    try FakeQuantChecks.checkSameShape("fake_quantize_per_tensor_affine_backward", gradOutput.shape, x.shape, "x")
    let mask = try fakeQuantizePerTensorAffineCachemask(x, scale: scale, zeroPoint: zeroPoint, quantMin: quantMin,
                                                        quantMax: quantMax).mask
    return try fakeQuantizeCachemaskBackward(gradOutput, mask: mask)
}

/// The gradient of `fakeQuantizePerChannelAffine` with respect to `x` (the mask recomputed from `x`).
///
/// PyTorch: what autograd runs for `torch.fake_quantize_per_channel_affine`.
/// - Throws: what `fakeQuantizePerChannelAffine` throws; `.invalidOperand` when the shapes differ.
public func fakeQuantizePerChannelAffineBackward(
    _ gradOutput: Tensor<Float>, _ x: Tensor<Float>, scales: [Float], zeroPoints: [Int], axis: Int, quantMin: Int,
    quantMax: Int
) throws -> Tensor<Float> {
    try FakeQuantChecks.checkSameShape("fake_quantize_per_channel_affine_backward", gradOutput.shape, x.shape, "x")
    let mask = try fakeQuantizePerChannelAffineCachemask(x, scales: scales, zeroPoints: zeroPoints, axis: axis,
                                                         quantMin: quantMin, quantMax: quantMax).mask
    return try fakeQuantizeCachemaskBackward(gradOutput, mask: mask)
}

// MARK: - Learnable scale and zero point (LSQ)

/// Learnable fake quantization: the per-tensor forward with a trainable float zero point, rounded as PyTorch's
/// forward does (`clamp(nearbyint(zeroPoint), quantMin, quantMax)`). `gradFactor` only matters for the backward; it
/// is accepted here to mirror PyTorch's signature.
///
/// PyTorch: `torch._fake_quantize_learnable_per_tensor_affine(x, scale, zero_point, quant_min, quant_max,
/// grad_factor)`.
/// - Throws: `QuantizationError.invalidScale`; `.invalidOperand` for the quant range, a non-finite zero point or
///   grad factor.
public func fakeQuantizeLearnablePerTensorAffine(
    _ x: Tensor<Float>, scale: Float, zeroPoint: Float, quantMin: Int, quantMax: Int, gradFactor: Float = 1
) throws -> Tensor<Float> {
    let operation = "_fake_quantize_learnable_per_tensor_affine"
    try FakeQuantChecks.checkRange(operation, quantMin: quantMin, quantMax: quantMax)
    try QParamChecks.checkScale(scale, channel: nil)
    try FakeQuantChecks.checkLearnableZeroPoint(operation, zeroPoint, channel: nil)
    try FakeQuantChecks.checkGradFactor(operation, gradFactor)
    return try x.withUnsafeBufferPointer { input in
        try Tensor<Float>(unsafeUninitializedShape: x.shape) { output in
            try Kernels.fakeQuantizeLearnablePerTensor(
                count: input.count, input: input.baseAddress!, output: output.baseAddress!, mask: nil, scale: scale,
                zeroPoint: zeroPoint, quantMin: Int32(quantMin), quantMax: Int32(quantMax))
        }
    }
}

/// The backward of `fakeQuantizeLearnablePerTensorAffine` (LSQ). With the zero point rounded as PyTorch's backward
/// does, `z = trunc(clamp(zeroPoint + 0.5))` (so 2.5 gives 3 here but 2 in the forward, and -69 gives -68), and
/// `xq = nearbyint(z + x / scale)`:
/// - inside `quantMin...quantMax`: `dX = dY`, `dScale += dY * ((xq - z) * scale - x) / scale * gradFactor`,
///   `dZeroPoint += 0`;
/// - outside (NaN counts as below): `dX = 0`, `dScale += dY * (bound - z) * gradFactor`,
///   `dZeroPoint += -dY * scale * gradFactor`.
///
/// The sums are accumulated in double in a fixed order, so they are identical on every ISA level and thread count;
/// PyTorch sums in float, so the two agree to float rounding of the sum.
///
/// PyTorch: `torch._fake_quantize_learnable_per_tensor_affine_backward(dY, x, scale, zero_point, quant_min,
/// quant_max, grad_factor)`, what autograd runs for the forward.
/// - Throws: what the forward throws; `.invalidOperand` when the shapes differ or the quant range does not contain 0.
public func fakeQuantizeLearnablePerTensorAffineBackward(
    _ gradOutput: Tensor<Float>, _ x: Tensor<Float>, scale: Float, zeroPoint: Float, quantMin: Int, quantMax: Int,
    gradFactor: Float = 1
) throws -> LearnableFakeQuantizeGradients {
    let operation = "_fake_quantize_learnable_per_tensor_affine_backward"
    try FakeQuantChecks.checkSameShape(operation, gradOutput.shape, x.shape, "x")
    try FakeQuantChecks.checkRange(operation, quantMin: quantMin, quantMax: quantMax, containsZero: true)
    try QParamChecks.checkScale(scale, channel: nil)
    try FakeQuantChecks.checkLearnableZeroPoint(operation, zeroPoint, channel: nil)
    try FakeQuantChecks.checkGradFactor(operation, gradFactor)
    var grads: (scale: Float, zeroPoint: Float) = (0, 0)
    let gradInput = try x.withUnsafeBufferPointer { input in
        try gradOutput.withUnsafeBufferPointer { dy in
            try Tensor<Float>(unsafeUninitializedShape: x.shape) { dx in
                grads = try Kernels.fakeQuantizeLearnablePerTensorBackward(
                    count: input.count, input: input.baseAddress!, gradOutput: dy.baseAddress!,
                    gradInput: dx.baseAddress!, scale: scale, zeroPoint: zeroPoint, quantMin: Int32(quantMin),
                    quantMax: Int32(quantMax), gradFactor: gradFactor)
            }
        }
    }
    return LearnableFakeQuantizeGradients(input: gradInput, scale: [grads.scale], zeroPoint: [grads.zeroPoint])
}

/// Learnable fake quantization per channel along `axis`; each zero point is rounded to
/// `clamp(round(zeroPoint), quantMin, quantMax)` (half to even), in the forward and the backward alike.
///
/// PyTorch: `torch._fake_quantize_learnable_per_channel_affine(x, scale, zero_point, axis, quant_min, quant_max,
/// grad_factor)`.
/// - Throws: `QuantizationError.axisOutOfRange`, `.channelCountMismatch`, `.invalidScale`, `.invalidOperand` for the
///   quant range, a non-finite zero point or grad factor.
public func fakeQuantizeLearnablePerChannelAffine(
    _ x: Tensor<Float>, scales: [Float], zeroPoints: [Float], axis: Int, quantMin: Int, quantMax: Int,
    gradFactor: Float = 1
) throws -> Tensor<Float> {
    let operation = "_fake_quantize_learnable_per_channel_affine"
    let view = try checkLearnableChannels(operation, x.shape, scales: scales, zeroPoints: zeroPoints, axis: axis,
                                          quantMin: quantMin, quantMax: quantMax, containsZero: false,
                                          gradFactor: gradFactor)
    return try x.withUnsafeBufferPointer { input in
        try scales.withUnsafeBufferPointer { s in
            try zeroPoints.withUnsafeBufferPointer { z in
                try Tensor<Float>(unsafeUninitializedShape: x.shape) { output in
                    try Kernels.fakeQuantizeLearnablePerChannel(
                        view: view, input: input.baseAddress!, output: output.baseAddress!, mask: nil,
                        scales: s.baseAddress, zeroPoints: z.baseAddress, quantMin: Int32(quantMin),
                        quantMax: Int32(quantMax))
                }
            }
        }
    }
}

/// The backward of `fakeQuantizeLearnablePerChannelAffine`: the per-tensor formulas per channel (zero points rounded
/// half to even), `scale` and `zeroPoint` gradients summed over every dimension but `axis`.
///
/// PyTorch: `torch._fake_quantize_learnable_per_channel_affine_backward(dY, x, scale, zero_point, axis, quant_min,
/// quant_max, grad_factor)`.
/// - Throws: what the forward throws; `.invalidOperand` when the shapes differ or the quant range does not contain 0.
public func fakeQuantizeLearnablePerChannelAffineBackward(
    _ gradOutput: Tensor<Float>, _ x: Tensor<Float>, scales: [Float], zeroPoints: [Float], axis: Int, quantMin: Int,
    quantMax: Int, gradFactor: Float = 1
) throws -> LearnableFakeQuantizeGradients {
    let operation = "_fake_quantize_learnable_per_channel_affine_backward"
    try FakeQuantChecks.checkSameShape(operation, gradOutput.shape, x.shape, "x")
    let view = try checkLearnableChannels(operation, x.shape, scales: scales, zeroPoints: zeroPoints, axis: axis,
                                          quantMin: quantMin, quantMax: quantMax, containsZero: true,
                                          gradFactor: gradFactor)
    var gradScales = [Float](repeating: 0, count: scales.count)
    var gradZeroPoints = [Float](repeating: 0, count: scales.count)
    let gradInput = try x.withUnsafeBufferPointer { input in
        try gradOutput.withUnsafeBufferPointer { dy in
            try scales.withUnsafeBufferPointer { s in
                try zeroPoints.withUnsafeBufferPointer { z in
                    try gradScales.withUnsafeMutableBufferPointer { gs in
                        try gradZeroPoints.withUnsafeMutableBufferPointer { gz in
                            try Tensor<Float>(unsafeUninitializedShape: x.shape) { dx in
                                try Kernels.fakeQuantizeLearnablePerChannelBackward(
                                    view: view, input: input.baseAddress!, gradOutput: dy.baseAddress!,
                                    gradInput: dx.baseAddress!, scales: s.baseAddress, zeroPoints: z.baseAddress,
                                    quantMin: Int32(quantMin), quantMax: Int32(quantMax), gradFactor: gradFactor,
                                    gradScales: gs.baseAddress, gradZeroPoints: gz.baseAddress)
                            }
                        }
                    }
                }
            }
        }
    }
    return LearnableFakeQuantizeGradients(input: gradInput, scale: gradScales, zeroPoint: gradZeroPoints)
}

private func checkLearnableChannels(
    _ operation: String, _ shape: [Int], scales: [Float], zeroPoints: [Float], axis: Int, quantMin: Int,
    quantMax: Int, containsZero: Bool, gradFactor: Float
) throws -> ChannelView {
    try FakeQuantChecks.checkRange(operation, quantMin: quantMin, quantMax: quantMax, containsZero: containsZero)
    let axis = try FakeQuantChecks.checkChannels(operation, scales: scales.count, zeroPoints: zeroPoints.count,
                                                 axis: axis, shape: shape)
    for channel in scales.indices {
        try QParamChecks.checkScale(scales[channel], channel: channel)
        try FakeQuantChecks.checkLearnableZeroPoint(operation, zeroPoints[channel], channel: channel)
    }
    try FakeQuantChecks.checkGradFactor(operation, gradFactor)
    return ChannelView(shape: shape, axis: axis)
}
