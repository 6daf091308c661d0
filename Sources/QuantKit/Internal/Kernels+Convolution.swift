// The C calls of the convolution operators (quantkit.h, "convolution"). As in Kernels.swift, only Swift types cross
// this file's boundary; the packed-weight handles are owned by the final classes below, which free them in deinit.
internal import CKernels

extension Conv2dGeometry {
    /// The NHWC geometry of the C API, with PyTorch's symmetric padding on both sides.
    fileprivate var c: qk_conv2d_geometry {
        qk_conv2d_geometry(
            batch: batch, in_h: inHeight, in_w: inWidth, kernel_h: kernel.height, kernel_w: kernel.width,
            stride_h: stride.height, stride_w: stride.width, dilation_h: dilation.height, dilation_w: dilation.width,
            pad_top: padding.height, pad_left: padding.width, pad_bottom: padding.height, pad_right: padding.width)
    }
}

// MARK: - fp32 depthwise convolution

/// Owns a `qk_f32_dwconv_weights` handle: immutable after creation and only read by the run function, so it may be
/// shared by threads.
final class F32DepthwiseConvHandle: @unchecked Sendable {
    private let pointer: OpaquePointer

    /// `weights` is `[channels * depthMultiplier, 1, kernel.height, kernel.width]` row-major (PyTorch's order);
    /// `bias` one per output channel or nil.
    init(channels: Int, depthMultiplier: Int, kernel: Size2d, weights: UnsafePointer<Float>,
         bias: UnsafePointer<Float>?) throws(QuantizationError) {
        var handle: OpaquePointer?
        try Kernels.check(qk_f32_dwconv_weights_create(channels, depthMultiplier, kernel.height, kernel.width,
                                                       weights, bias, &handle))
        guard let handle else { throw .runtime("qk_f32_dwconv_weights_create returned no handle") }
        pointer = handle
    }

    deinit {
        qk_f32_dwconv_weights_destroy(pointer)
    }

    var kernelName: String { String(cString: qk_f32_dwconv_weights_kernel(pointer)) }

    var packedByteCount: Int { qk_f32_dwconv_weights_packed_bytes(pointer) }

    /// `x` NHWC `[batch, inHeight, inWidth, channels]`, `y` NHWC `[batch, outHeight, outWidth, outChannels]`.
    func run(_ geometry: Conv2dGeometry, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, relu: Bool)
        throws(QuantizationError)
    {
        var g = geometry.c
        try Kernels.check(qk_f32_dwconv(pointer, &g, x, y, relu ? UInt32(QK_CONV_RELU) : 0))
    }
}

// MARK: - int8 convolution

/// Owns a `qk_qs8_conv2d_weights` handle (any groups; depthwise is routed to the depthwise kernels inside): immutable
/// after creation and only read by the run function, so it may be shared by threads.
final class QuantizedConv2dHandle: @unchecked Sendable {
    private let pointer: OpaquePointer

    /// `weights` is `[outChannels, inChannels / groups, kernel.height, kernel.width]` row-major (PyTorch's order).
    /// `scales` / `zeroPoints` hold 1 entry (per tensor) or `outChannels` (per channel); `bias` one per output
    /// channel or nil.
    init(inChannels: Int, outChannels: Int, groups: Int, kernel: Size2d, weights: UnsafePointer<Int8>,
         perChannel: Bool, scales: UnsafePointer<Float>, zeroPoints: UnsafePointer<Int32>,
         bias: UnsafePointer<Float>?) throws(QuantizationError) {
        var handle: OpaquePointer?
        try Kernels.check(qk_qs8_conv2d_weights_create(
            inChannels, outChannels, groups, kernel.height, kernel.width, weights,
            perChannel ? QK_QSCHEME_PER_CHANNEL : QK_QSCHEME_PER_TENSOR, scales, zeroPoints, bias, &handle))
        guard let handle else { throw .runtime("qk_qs8_conv2d_weights_create returned no handle") }
        pointer = handle
    }

    deinit {
        qk_qs8_conv2d_weights_destroy(pointer)
    }

    var kernelName: String { String(cString: qk_qs8_conv2d_weights_kernel(pointer)) }

    var packedByteCount: Int { qk_qs8_conv2d_weights_packed_bytes(pointer) }

    /// quint8 `x` NHWC `[batch, inHeight, inWidth, inChannels]` to quint8 `y` NHWC
    /// `[batch, outHeight, outWidth, outChannels]`.
    func run(_ geometry: Conv2dGeometry, x: UnsafePointer<UInt8>, xScale: Float, xZeroPoint: Int32,
             y: UnsafeMutablePointer<UInt8>, yScale: Float, yZeroPoint: Int32, relu: Bool) throws(QuantizationError)
    {
        var g = geometry.c
        try Kernels.check(qk_qs8_conv2d_q8(pointer, &g, x, xScale, xZeroPoint, y, yScale, yZeroPoint,
                                           relu ? UInt32(QK_CONV_RELU) : 0))
    }
}
