import CKernels

/// int8 depthwise convolution (issue 5) against QuantKit's own fp32 depthwise convolution on the same layer, same
/// thread count, same run.
///
/// Every case is one MobileNetV2 depthwise layer: batch 1, NHWC, 3x3 kernel, padding 1, depth multiplier 1, stride 1
/// or 2. The int8 kernel is PyTorch's quantized::conv2d with groups == channels: quint8 activations, per-channel
/// symmetric int8 weights, fp32 bias, requantization to quint8 with ReLU. The baseline is the fp32 layer it replaces:
/// qk_f32_dwconv on the fp32 activations and weights, with the same bias and ReLU. Weights are packed once, outside
/// the timing. Throughput counts 2 * C * out_h * out_w * 9 operations (int8: GOP/s; fp32: GFLOP/s); speedup = fp32
/// time / int8 time. The figure of merit is the time per layer in microseconds (the table's notes, the JSON's
/// median_us, and the footer against issue 5's targets).
enum ConvCases {
    static let kernelName = "qu8_dwconv"

    /// The layers, in its order, with its single-thread targets: PyTorch's FBGEMM quantized depthwise conv
    /// measured through PyTorch on this CPU (the goal is 0.6x those times). `quick` marks the subset of `--quick`
    /// (run there on 1 thread only).
    static let layers: [(dims: ConvDims, targetMicroseconds: Double, quick: Bool)] = [
        (ConvDims(channels: 32, size: 112, stride: 1), 122, true),
        (ConvDims(channels: 96, size: 112, stride: 2), 77, false),
        (ConvDims(channels: 144, size: 56, stride: 1), 111, false),
        (ConvDims(channels: 144, size: 56, stride: 2), 39, false),
        (ConvDims(channels: 192, size: 28, stride: 1), 41, false),
        (ConvDims(channels: 384, size: 14, stride: 1), 26, false),
        (ConvDims(channels: 576, size: 14, stride: 1), 32, false),
        (ConvDims(channels: 960, size: 7, stride: 1), 19.5, true),
    ]

    /// Issue 5's single-thread goal, as a fraction of the target time.
    static let goalFraction = 0.6

    static func shapeName(_ d: ConvDims) -> String { "C=\(d.channels) \(d.size)x\(d.size) s\(d.stride)" }

    static func target(for d: ConvDims) -> Double? { layers.first { $0.dims == d }?.targetMicroseconds }

    static var all: [BenchmarkCase] {
        layers.map { layer in
            BenchmarkCase(kernel: kernelName, shape: shapeName(layer.dims), unit: .gigaopsPerSecond,
                          quick: layer.quick ? .singleThread : .skip) { _ in
                try instance(ConvData(layer.dims))
            }
        }
    }

    static func instance(_ d: ConvData) throws -> Instance {
        let w = try PackedDwconvWeights(channels: d.dims.channels, weights: d.wq.pointer, scales: d.wScales.pointer,
                                        bias: d.bias.pointer)
        var geometry = d.geometry
        let y = AlignedBuffer<UInt8>(count: d.outputElements)
        y.fill { _ in 0 }
        let x = d.xq
        let yScale = d.yScale
        let run: () throws -> Void = {
            try check(qk_qs8_dwconv_q8(w.handle, &geometry, x.pointer, ConvData.xScale, ConvData.xZeroPoint,
                                       y.pointer, yScale, ConvData.yZeroPoint, UInt32(QK_CONV_RELU)),
                      "qk_qs8_dwconv_q8")
        }
        let baseline = try f32Baseline(d)
        return Instance(shape: shapeName(d.dims), work: d.ops, run: run, baseline: baseline.baseline,
                        conv: d.dims, notes: "per-channel w, bias, ReLU; \(w.kernel) vs \(baseline.kernel)")
    }

    /// The same layer in fp32 through qk_f32_dwconv (same weights before quantization, bias, ReLU).
    static func f32Baseline(_ d: ConvData) throws -> (baseline: Baseline, kernel: String) {
        let w = try PackedF32DwconvWeights(channels: d.dims.channels, weights: d.w32.pointer, bias: d.bias.pointer)
        var geometry = d.geometry
        let x = d.x32
        let y = AlignedBuffer<Float>(count: d.outputElements)
        y.fill { _ in 0 }
        let baseline = Baseline(name: "f32_dwconv", work: d.ops, unit: .gigaflopsPerSecond) { _ in
            // Threads: QuantKit's own count, set by setThreads.
            try check(qk_f32_dwconv(w.handle, &geometry, x.pointer, y.pointer, UInt32(QK_CONV_RELU)),
                      "qk_f32_dwconv")
        }
        return (baseline, w.kernel)
    }
}

/// A depthwise layer: channels, square input size, stride (3x3, padding 1, batch 1 in every case here).
struct ConvDims: Equatable, Hashable {
    let channels: Int, size: Int, stride: Int
}

/// One depthwise layer: fp32 activations and weights (the fp32 baseline) and their int8 quantizations.
final class ConvData {
    static let kernelSize = 3, padding = 1

    let dims: ConvDims
    let geometry: qk_conv2d_geometry
    let outH: Int, outW: Int
    let x32: AlignedBuffer<Float>      // [1, H, W, C], uniform in [-1, 1)
    let w32: AlignedBuffer<Float>      // [C, 1, 3, 3], uniform in [-1, 1)
    let bias: AlignedBuffer<Float>     // [C]
    let wq: AlignedBuffer<Int8>        // w32 quantized per channel, symmetric
    let wScales: AlignedBuffer<Float>  // [C]
    let xq: AlignedBuffer<UInt8>       // x32 as quint8 over the full range
    let yScale: Float

    static let xScale: Float = 2.0 / 255, xZeroPoint: Int32 = 128
    static let yZeroPoint: Int32 = 128

    var outputElements: Int { outH * outW * dims.channels }
    /// 2 operations per multiply-add, 9 taps per output.
    var ops: Double { 2 * Double(outputElements) * Double(Self.kernelSize * Self.kernelSize) }

    init(_ dims: ConvDims) throws {
        self.dims = dims
        let (c, size, taps) = (dims.channels, dims.size, Self.kernelSize * Self.kernelSize)
        geometry = qk_conv2d_geometry(batch: 1, in_h: size, in_w: size, kernel_h: Self.kernelSize,
                                      kernel_w: Self.kernelSize, stride_h: dims.stride, stride_w: dims.stride,
                                      dilation_h: 1, dilation_w: 1, pad_top: Self.padding, pad_left: Self.padding,
                                      pad_bottom: Self.padding, pad_right: Self.padding)
        var g = geometry
        var oh = 0, ow = 0
        try check(qk_conv2d_output_size(&g, &oh, &ow), "qk_conv2d_output_size")
        (outH, outW) = (oh, ow)

        var rng = SplitMix64(state: UInt64(c * 1_000_003 + size * 1009 + dims.stride))
        x32 = AlignedBuffer(count: size * size * c)
        x32.fill { _ in rng.float(-1, 1) }
        w32 = AlignedBuffer(count: c * taps)
        w32.fill { _ in rng.float(-1, 1) }
        bias = AlignedBuffer(count: c)
        bias.fill { _ in rng.float(-0.5, 0.5) }

        // Symmetric per-channel weights as PyTorch's MinMax observers give them: scale = max|w| / 127.5, zero point 0.
        wScales = AlignedBuffer(count: c)
        for ch in 0..<c {
            var mx: Float = 0
            for j in 0..<taps { mx = max(mx, abs(w32.pointer[ch * taps + j])) }
            wScales.pointer[ch] = max(mx / 127.5, Float.ulpOfOne)
        }
        let zeros = AlignedBuffer<Int32>(count: c)
        zeros.fill { _ in 0 }
        wq = AlignedBuffer(count: c * taps)
        try check(qk_quantize_per_channel(QK_DTYPE_QINT8, 1, c, taps, w32.pointer, wq.raw, wScales.pointer,
                                          zeros.pointer), "qk_quantize_per_channel (dwconv weights)")
        xq = AlignedBuffer(count: size * size * c)
        try check(qk_quantize_per_tensor(QK_DTYPE_QUINT8, size * size * c, x32.pointer, xq.raw, Self.xScale,
                                         Self.xZeroPoint), "qk_quantize_per_tensor (dwconv activations)")
        // |x| < 1 and |w| < 1 uniform: an output has standard deviation about sqrt(9) / 3 = 1; +-4 sigma spans the
        // 8-bit range (as in the GEMM cases).
        yScale = Float((Double(taps).squareRoot() / 3) * 4 / 128)
    }
}

/// An owning qk_qs8_dwconv_weights handle (3x3, depth multiplier 1, per-channel symmetric).
final class PackedDwconvWeights {
    let handle: OpaquePointer

    init(channels: Int, weights: UnsafePointer<Int8>, scales: UnsafePointer<Float>, bias: UnsafePointer<Float>?)
        throws {
        var out: OpaquePointer?
        try check(qk_qs8_dwconv_weights_create(channels, 1, ConvData.kernelSize, ConvData.kernelSize, weights,
                                               QK_QSCHEME_PER_CHANNEL, scales, nil, bias, &out),
                  "qk_qs8_dwconv_weights_create(\(channels))")
        guard let out else { throw BenchError(description: "qk_qs8_dwconv_weights_create returned no handle") }
        handle = out
    }

    /// The microkernel a run uses, without the "qk_" prefix.
    var kernel: String {
        let name = String(cString: qk_qs8_dwconv_weights_kernel(handle))
        return name.hasPrefix("qk_") ? String(name.dropFirst(3)) : name
    }

    deinit { qk_qs8_dwconv_weights_destroy(handle) }
}

/// An owning qk_f32_dwconv_weights handle (3x3, depth multiplier 1).
final class PackedF32DwconvWeights {
    let handle: OpaquePointer

    init(channels: Int, weights: UnsafePointer<Float>, bias: UnsafePointer<Float>?) throws {
        var out: OpaquePointer?
        try check(qk_f32_dwconv_weights_create(channels, 1, ConvData.kernelSize, ConvData.kernelSize, weights, bias,
                                               &out),
                  "qk_f32_dwconv_weights_create(\(channels))")
        guard let out else { throw BenchError(description: "qk_f32_dwconv_weights_create returned no handle") }
        handle = out
    }

    /// The microkernel a run uses, without the "qk_" prefix.
    var kernel: String {
        let name = String(cString: qk_f32_dwconv_weights_kernel(handle))
        return name.hasPrefix("qk_") ? String(name.dropFirst(3)) : name
    }

    deinit { qk_f32_dwconv_weights_destroy(handle) }
}
