// C calls of the fake-quantization section of quantkit.h. Callers validate first (Swift-shaped errors); a non-OK
// status that still comes back is turned into a QuantizationError carrying the C message.
internal import CKernels

extension Kernels {
    /// `mask` (one byte 0/1 per element) may be nil.
    static func fakeQuantizePerTensor(
        count: Int, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, mask: UnsafeMutablePointer<UInt8>?,
        scale: Float, zeroPoint: Int32, quantMin: Int32, quantMax: Int32
    ) throws(QuantizationError) {
        try check(qk_fake_quantize_per_tensor_f32(count, input, output, mask, scale, zeroPoint, quantMin, quantMax))
    }

    static func fakeQuantizePerChannel(
        view: ChannelView, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
        mask: UnsafeMutablePointer<UInt8>?, scales: UnsafePointer<Float>?, zeroPoints: UnsafePointer<Int32>?,
        quantMin: Int32, quantMax: Int32
    ) throws(QuantizationError) {
        try check(qk_fake_quantize_per_channel_f32(view.outer, view.channels, view.inner, input, output, mask, scales,
                                                   zeroPoints, quantMin, quantMax))
    }

    /// `gradInput = gradOutput * mask`.
    static func fakeQuantizeBackward(
        count: Int, gradOutput: UnsafePointer<Float>, mask: UnsafePointer<UInt8>, gradInput: UnsafeMutablePointer<Float>
    ) throws(QuantizationError) {
        try check(qk_fake_quantize_backward_f32(count, gradOutput, mask, gradInput))
    }

    static func fakeQuantizeLearnablePerTensor(
        count: Int, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, mask: UnsafeMutablePointer<UInt8>?,
        scale: Float, zeroPoint: Float, quantMin: Int32, quantMax: Int32
    ) throws(QuantizationError) {
        try check(qk_fake_quantize_learnable_per_tensor_f32(count, input, output, mask, scale, zeroPoint, quantMin,
                                                            quantMax))
    }

    static func fakeQuantizeLearnablePerChannel(
        view: ChannelView, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
        mask: UnsafeMutablePointer<UInt8>?, scales: UnsafePointer<Float>?, zeroPoints: UnsafePointer<Float>?,
        quantMin: Int32, quantMax: Int32
    ) throws(QuantizationError) {
        try check(qk_fake_quantize_learnable_per_channel_f32(view.outer, view.channels, view.inner, input, output, mask,
                                                             scales, zeroPoints, quantMin, quantMax))
    }

    /// Returns (grad_scale, grad_zero_point).
    static func fakeQuantizeLearnablePerTensorBackward(
        count: Int, input: UnsafePointer<Float>, gradOutput: UnsafePointer<Float>,
        gradInput: UnsafeMutablePointer<Float>, scale: Float, zeroPoint: Float, quantMin: Int32, quantMax: Int32,
        gradFactor: Float
    ) throws(QuantizationError) -> (scale: Float, zeroPoint: Float) {
        var gradScale: Float = 0
        var gradZeroPoint: Float = 0
        try check(qk_fake_quantize_learnable_per_tensor_backward_f32(count, input, gradOutput, gradInput, scale,
                                                                     zeroPoint, quantMin, quantMax, gradFactor,
                                                                     &gradScale, &gradZeroPoint))
        return (gradScale, gradZeroPoint)
    }

    static func fakeQuantizeLearnablePerChannelBackward(
        view: ChannelView, input: UnsafePointer<Float>, gradOutput: UnsafePointer<Float>,
        gradInput: UnsafeMutablePointer<Float>, scales: UnsafePointer<Float>?, zeroPoints: UnsafePointer<Float>?,
        quantMin: Int32, quantMax: Int32, gradFactor: Float,
        gradScales: UnsafeMutablePointer<Float>?, gradZeroPoints: UnsafeMutablePointer<Float>?
    ) throws(QuantizationError) {
        try check(qk_fake_quantize_learnable_per_channel_backward_f32(view.outer, view.channels, view.inner, input,
                                                                      gradOutput, gradInput, scales, zeroPoints,
                                                                      quantMin, quantMax, gradFactor, gradScales,
                                                                      gradZeroPoints))
    }

    /// FBGEMM's ChooseQuantizationParams (the fused observer's qparams).
    static func fusedFakeQuantQParams(min: Float, max: Float, quantMin: Int32, quantMax: Int32, symmetric: Bool)
        throws(QuantizationError) -> (scale: Float, zeroPoint: Int32)
    {
        var scale: Float = 0
        var zeroPoint: Int32 = 0
        try check(qk_fake_quant_choose_qparams(min, max, quantMin, quantMax,
                                               symmetric ? UInt32(QK_FAKE_QUANT_SYMMETRIC) : 0, &scale, &zeroPoint))
        return (scale, zeroPoint)
    }
}
