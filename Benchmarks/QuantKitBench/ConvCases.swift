import CKernels
import COpenBLAS
import Dispatch

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

    /// The issue's layers, in its order, with its single-thread targets: PyTorch's FBGEMM quantized depthwise conv
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

    /// The depthwise rows, then the regular convolution rows (Conv2dCases).
    static var all: [BenchmarkCase] {
        layers.map { layer in
            BenchmarkCase(kernel: kernelName, shape: shapeName(layer.dims), unit: .gigaopsPerSecond,
                          quick: layer.quick ? .singleThread : .skip) { _ in
                try instance(ConvData(layer.dims))
            }
        } + Conv2dCases.all
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

// ------------------------------------------------------------------------------------------------ regular conv

/// int8 convolution (issue 5, qk_qs8_conv2d_q8) against im2col + cblas_sgemm in fp32 on the same layer, same thread
/// count, same run.
///
/// Every case is one ResNet-18 3x3 layer: batch 1, NHWC, C_in = C_out, stride 1, padding 1. The int8 kernel is
/// PyTorch's quantized::conv2d (groups 1): quint8 activations, per-channel symmetric int8 weights, fp32 bias,
/// requantization to quint8 with ReLU; `qu8_conv` has activations over the full 8-bit range, `qu8_conv_7bit` codes
/// <= 127 as PyTorch's x86 default qconfig gives them (reduce_range), which lets AVX2 run its vpmaddubsw kernel. The
/// baseline is the fp32 layer: im2col of the NHWC input into [out_h * out_w, 9 * C] (split over the threads) and
/// cblas_sgemm(RowMajor, NoTrans, Trans) with the weights stored as [C_out, 9 * C] in the same (ky, kx, c) order,
/// no bias (beta = 0); the im2col is inside the timing. Weights are packed or re-ordered once, outside the timing,
/// for both. Throughput counts 2 * out_h * out_w * C_out * 9 * C_in operations; the figure of merit is the time per
/// layer (notes, JSON median_us) and the speedup, against issue 5's target of 3x.
enum Conv2dCases {
    static let kernelName = "qu8_conv", sevenBitKernelName = "qu8_conv_7bit"

    /// ResNet-18's 3x3 layers of each stage (the first of a stage with stride 2 aside).
    static let layers: [ConvDims] = [
        ConvDims(channels: 64, size: 56, stride: 1),
        ConvDims(channels: 128, size: 28, stride: 1),
        ConvDims(channels: 256, size: 14, stride: 1),
        ConvDims(channels: 512, size: 7, stride: 1),
    ]

    /// Issue 5: int8 convolution at least this many times faster than im2col + sgemm.
    static let targetSpeedup = 3.0

    static var all: [BenchmarkCase] {
        let cache = Conv2dDataCache()
        return layers.flatMap { dims in
            [false, true].map { sevenBit in
                BenchmarkCase(kernel: sevenBit ? sevenBitKernelName : kernelName, shape: ConvCases.shapeName(dims),
                              unit: .gigaopsPerSecond, quick: .skip) { _ in
                    try instance(cache.data(for: dims), sevenBit: sevenBit)
                }
            }
        }
    }

    static func instance(_ d: Conv2dData, sevenBit: Bool) throws -> Instance {
        let w = try PackedConv2dWeights(d)
        var geometry = d.geometry
        let y = AlignedBuffer<UInt8>(count: d.outputElements)
        y.fill { _ in 0 }
        let (x, xScale, xZeroPoint) = sevenBit ? (d.xq7, Conv2dData.x7Scale, Conv2dData.x7ZeroPoint)
                                               : (d.xq, Conv2dData.xScale, Conv2dData.xZeroPoint)
        let yScale = d.yScale
        let run: () throws -> Void = {
            try check(qk_qs8_conv2d_q8(w.handle, &geometry, x.pointer, xScale, xZeroPoint, y.pointer, yScale,
                                       Conv2dData.yZeroPoint, UInt32(QK_CONV_RELU)),
                      "qk_qs8_conv2d_q8")
        }
        // The handle names the GEMM kernel for 8-bit activations; with 7-bit ones the GEMM's fast kernel runs.
        let kernel = sevenBit ? try w.path + " " + sevenBitGemmKernel() : w.kernel
        return Instance(shape: ConvCases.shapeName(d.dims), work: d.ops, run: run, baseline: sgemmBaseline(d),
                        conv: d.dims, notes: "per-channel w, bias, ReLU\(sevenBit ? ", 7-bit x" : ""); \(kernel) vs "
                            + "im2col+cblas_sgemm")
    }

    /// The GEMM microkernel for 7-bit activations at the current ISA level (what the convolution's GEMM runs then).
    static func sevenBitGemmKernel() throws -> String {
        let w = AlignedBuffer<Int8>(count: 8 * 4)
        w.fill { _ in 1 }
        var scale: Float = 1
        return try PackedWeights(n: 8, k: 4, weights: w.pointer, qscheme: QK_QSCHEME_PER_TENSOR, scales: &scale,
                                 bias: nil).kernel(sevenBit: true)
    }

    /// im2col (threads contiguous row ranges) then C[M, C_out] = col[M, K] * W[C_out, K]^T.
    static func sgemmBaseline(_ d: Conv2dData) -> Baseline {
        let (m, n, k) = (d.outH * d.outW, d.dims.channels, 9 * d.dims.channels)
        let col = AlignedBuffer<Float>(count: m * k)
        col.fill { _ in 0 }
        let c32 = AlignedBuffer<Float>(count: m * n)
        c32.fill { _ in 0 }
        let x = d.x32, w = d.wGemm32
        return Baseline(name: "im2col+sgemm", work: d.ops, unit: .gigaflopsPerSecond,
                        settleSeconds: openBLASSpinSeconds) { threads in
            im2col(d, x.pointer, col.pointer, threads: threads)
            // Threads: openblas_set_num_threads, called by setThreads with QuantKit's count.
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(k), 1, col.pointer,
                        Int32(k), w.pointer, Int32(k), 0, c32.pointer, Int32(n))
        }
    }

    /// Rows of the fp32 im2col matrix: for each output pixel the 3x3 taps' C channels, zeros in the padding; the taps
    /// of one kernel row that fall inside the image are one contiguous copy.
    static func im2col(_ d: Conv2dData, _ x: UnsafePointer<Float>, _ col: UnsafeMutablePointer<Float>, threads: Int) {
        let (c, size, outW, rows) = (d.dims.channels, d.dims.size, d.outW, d.outH * d.outW)
        let (kernel, pad) = (Conv2dData.kernelSize, Conv2dData.padding)
        let k = kernel * kernel * c
        let xBits = UInt(bitPattern: x), colBits = UInt(bitPattern: col)
        @Sendable func fill(_ begin: Int, _ end: Int) {
            let x = UnsafePointer<Float>(bitPattern: xBits)!, col = UnsafeMutablePointer<Float>(bitPattern: colBits)!
            for r in begin..<end {
                let (oy, ox) = (r / outW, r % outW)
                let row = col + r * k
                let kx0 = max(0, pad - ox), kx1 = min(kernel, size + pad - ox)
                for ky in 0..<kernel {
                    let dst = row + ky * kernel * c
                    let iy = oy + ky - pad
                    guard iy >= 0 && iy < size else {
                        dst.update(repeating: 0, count: kernel * c)
                        continue
                    }
                    if kx0 > 0 { dst.update(repeating: 0, count: kx0 * c) }
                    if kx1 < kernel { (dst + kx1 * c).update(repeating: 0, count: (kernel - kx1) * c) }
                    (dst + kx0 * c).update(from: x + (iy * size + ox + kx0 - pad) * c, count: (kx1 - kx0) * c)
                }
            }
        }
        if threads <= 1 {
            fill(0, rows)
            return
        }
        let chunk = (rows + threads - 1) / threads
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            fill(min(rows, t * chunk), min(rows, (t + 1) * chunk))
        }
    }

    /// Issue 5's target, per layer and thread count: the footer lines (TableReporter.footer prints them).
    static func summary(_ results: [BenchResult]) -> [String] {
        let rows = results.filter { [kernelName, sevenBitKernelName].contains($0.kernel) && $0.speedup != nil }
        guard !rows.isEmpty else { return [] }
        var lines = ["", "\(kernelName): ResNet-18 3x3 layers (C_in = C_out, stride 1, pad 1, batch 1), time per layer; "
                     + "fp32 = im2col + cblas_sgemm on the same layer in the same run (im2col timed); "
                     + "speedup = fp32 time / int8 time",
                     "targets of issue 5 that this run measures (int8 conv >= "
                     + String(format: "%.0fx faster than im2col + sgemm):", targetSpeedup)]
        for r in rows {
            guard let d = r.conv, let s = r.speedup, let b = r.baselineMeasurement else { continue }
            let label = "\(r.kernel) \(ConvCases.shapeName(d)), \(r.threads) thread\(r.threads == 1 ? "" : "s")"
            lines.append("  " + label.padding(toLength: 40, withPad: " ", startingAt: 0)
                         + String(format: "%8.1f µs  fp32 %8.1f µs  %5.2fx  (target >= %.2fx: ", r.medianSeconds * 1e6,
                                  b.median * 1e6, s, targetSpeedup)
                         + (s >= targetSpeedup ? "met" : "NOT met") + ")")
        }
        return lines
    }
}

/// Keeps the data of the last layer asked for (its two kernels share it).
final class Conv2dDataCache {
    private var current: Conv2dData?

    func data(for dims: ConvDims) throws -> Conv2dData {
        if let c = current, c.dims == dims { return c }
        current = nil   // free the previous layer first
        let d = try Conv2dData(dims)
        current = d
        return d
    }
}

/// One ResNet layer: fp32 activations and weights (the baseline) and their int8 quantizations.
final class Conv2dData {
    static let kernelSize = 3, padding = 1

    let dims: ConvDims
    let geometry: qk_conv2d_geometry
    let outH: Int, outW: Int
    let x32: AlignedBuffer<Float>       // [1, H, W, C], uniform in [-1, 1)
    let w32: AlignedBuffer<Float>       // [C_out, C_in, 3, 3] (PyTorch's order), uniform in [-1, 1)
    let wGemm32: AlignedBuffer<Float>   // [C_out, 3, 3, C_in]: the sgemm baseline's weights, in im2col order
    let bias: AlignedBuffer<Float>      // [C_out]
    let wq: AlignedBuffer<Int8>         // w32 quantized per output channel, symmetric
    let wScales: AlignedBuffer<Float>   // [C_out]
    let xq: AlignedBuffer<UInt8>        // x32 as quint8 over the full range
    let xq7: AlignedBuffer<UInt8>       // x32 as quint8 in [0, 127] (reduce_range)
    let yScale: Float

    static let xScale: Float = 2.0 / 255, xZeroPoint: Int32 = 128
    static let x7Scale: Float = 2.0 / 127, x7ZeroPoint: Int32 = 64
    static let yZeroPoint: Int32 = 128

    var outputElements: Int { outH * outW * dims.channels }
    /// 2 operations per multiply-add: out_h * out_w * C_out outputs of 9 * C_in taps.
    var ops: Double { 2 * Double(outputElements) * Double(Self.kernelSize * Self.kernelSize * dims.channels) }

    init(_ dims: ConvDims) throws {
        self.dims = dims
        let (c, size, taps) = (dims.channels, dims.size, Self.kernelSize * Self.kernelSize)
        let k = taps * c
        geometry = qk_conv2d_geometry(batch: 1, in_h: size, in_w: size, kernel_h: Self.kernelSize,
                                      kernel_w: Self.kernelSize, stride_h: dims.stride, stride_w: dims.stride,
                                      dilation_h: 1, dilation_w: 1, pad_top: Self.padding, pad_left: Self.padding,
                                      pad_bottom: Self.padding, pad_right: Self.padding)
        var g = geometry
        var oh = 0, ow = 0
        try check(qk_conv2d_output_size(&g, &oh, &ow), "qk_conv2d_output_size")
        (outH, outW) = (oh, ow)

        var rng = SplitMix64(state: UInt64(c * 7_000_003 + size * 1013 + dims.stride))
        x32 = AlignedBuffer(count: size * size * c)
        x32.fill { _ in rng.float(-1, 1) }
        w32 = AlignedBuffer(count: c * k)
        w32.fill { _ in rng.float(-1, 1) }
        bias = AlignedBuffer(count: c)
        bias.fill { _ in rng.float(-0.5, 0.5) }
        wGemm32 = AlignedBuffer(count: c * k)
        for o in 0..<c {
            for i in 0..<c {
                for t in 0..<taps { wGemm32.pointer[o * k + t * c + i] = w32.pointer[(o * c + i) * taps + t] }
            }
        }

        // Symmetric per-channel weights as PyTorch's MinMax observers give them: scale = max|w| / 127.5, zero point 0.
        wScales = AlignedBuffer(count: c)
        for o in 0..<c {
            var mx: Float = 0
            for j in 0..<k { mx = max(mx, abs(w32.pointer[o * k + j])) }
            wScales.pointer[o] = max(mx / 127.5, Float.ulpOfOne)
        }
        let zeros = AlignedBuffer<Int32>(count: c)
        zeros.fill { _ in 0 }
        wq = AlignedBuffer(count: c * k)
        try check(qk_quantize_per_channel(QK_DTYPE_QINT8, 1, c, k, w32.pointer, wq.raw, wScales.pointer,
                                          zeros.pointer), "qk_quantize_per_channel (conv weights)")
        xq = AlignedBuffer(count: size * size * c)
        try check(qk_quantize_per_tensor(QK_DTYPE_QUINT8, size * size * c, x32.pointer, xq.raw, Self.xScale,
                                         Self.xZeroPoint), "qk_quantize_per_tensor (conv activations)")
        xq7 = AlignedBuffer(count: size * size * c)
        try check(qk_quantize_per_tensor(QK_DTYPE_QUINT8, size * size * c, x32.pointer, xq7.raw, Self.x7Scale,
                                         Self.x7ZeroPoint), "qk_quantize_per_tensor (conv activations, 7-bit)")
        for i in 0..<xq7.count { xq7.pointer[i] = min(xq7.pointer[i], 127) }   // what reduce_range guarantees
        // As in the GEMM cases: an output has standard deviation about sqrt(K) / 3; +-4 sigma spans the 8-bit range.
        yScale = Float((Double(k).squareRoot() / 3) * 4 / 128)
    }
}

/// An owning qk_qs8_conv2d_weights handle (3x3, groups 1, per-channel symmetric, bias).
final class PackedConv2dWeights {
    let handle: OpaquePointer

    init(_ d: Conv2dData) throws {
        var out: OpaquePointer?
        let c = d.dims.channels
        try check(qk_qs8_conv2d_weights_create(c, c, 1, Conv2dData.kernelSize, Conv2dData.kernelSize, d.wq.pointer,
                                               QK_QSCHEME_PER_CHANNEL, d.wScales.pointer, nil, d.bias.pointer, &out),
                  "qk_qs8_conv2d_weights_create(\(c), \(c))")
        guard let out else { throw BenchError(description: "qk_qs8_conv2d_weights_create returned no handle") }
        handle = out
    }

    /// The path and microkernel a run uses, without the "qk_" prefix ("im2col gemm qu8_gemm_ukernel_...").
    var kernel: String {
        String(cString: qk_qs8_conv2d_weights_kernel(handle)).split(separator: " ")
            .map { $0.hasPrefix("qk_") ? String($0.dropFirst(3)) : String($0) }.joined(separator: " ")
    }

    /// The path alone ("im2col gemm", "1x1 gemm", "depthwise").
    var path: String { kernel.split(separator: " ").dropLast().joined(separator: " ") }

    deinit { qk_qs8_conv2d_weights_destroy(handle) }
}
