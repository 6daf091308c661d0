import CKernels
import COpenBLAS

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// int8 and half-precision (fp16 / bf16 weight) GEMM (linear layers) against cblas_sgemm on the same shapes, same
/// thread count, same run.
///
/// Every case is one kernel at one shape, y[M, N] = x[M, K] * w[N, K]^T with w stored as PyTorch stores a Linear
/// weight. The baseline is the fp32 layer the int8 / half one replaces: cblas_sgemm(RowMajor, NoTrans, Trans) on the
/// fp32 activations and weights, beta = 0. Weights are packed once, outside the timing, as a model packs them at load.
/// Throughput counts 2 * M * N * K operations (int8: GOP/s; half and sgemm: GFLOP/s); speedup = sgemm time / ours.
enum GemmCases {
    /// The issue's shapes. `quick` marks the subset of `--quick` (run there on 1 thread only).
    static let shapes: [(dims: GemmDims, quick: Bool)] = [
        (GemmDims(m: 256, n: 256, k: 256), true),
        (GemmDims(m: 512, n: 512, k: 512), false),
        (GemmDims(m: 1024, n: 1024, k: 1024), true),
        (GemmDims(m: 2048, n: 2048, k: 2048), false),
        (GemmDims(m: 1, n: 4096, k: 4096), true),
        (GemmDims(m: 1, n: 8192, k: 8192), false),   // the 8192 weights exceed the 32 MB L3 even in int8
        (GemmDims(m: 8, n: 4096, k: 4096), false),
        (GemmDims(m: 8, n: 8192, k: 8192), false),
        (GemmDims(m: 128, n: 3072, k: 768), true),   // transformer FFN up-projection (BERT-base)
        (GemmDims(m: 128, n: 768, k: 3072), false),  // and down-projection
    ]

    /// The kernels, in output order within a shape.
    enum Kernel: String, CaseIterable {
        case qu8 = "qu8_gemm"                   // uint8 activations (full 8-bit range) -> uint8 requantized
        case qu8SevenBit = "qu8_gemm_7bit"      // activations <= 127 (reduce_range), QK_GEMM_ACTIVATIONS_7BIT
        case qs8 = "qs8_gemm"                   // int8 activations -> int8 requantized
        case dynamicLinear = "dynamic_linear"   // fp32 -> fp32, activations quantized per call (reduce_range)
        case f16 = "f16_gemm"                   // fp16 weights, fp32 activations, products and sums
        case bf16 = "bf16_gemm"                 // bf16 weights and activations (rounded per call), fp32 sums
        // Run only when --filter names them:
        case dynamicLinearPerRow = "dynamic_linear_per_row"     // per-row (per-token) activation qparams
        case dynamicLinearComposed = "dynamic_linear_composed"  // the same from the separate C calls

        /// In the default run (and the chart); the others run only when --filter selects them.
        var byDefault: Bool { self != .dynamicLinearPerRow && self != .dynamicLinearComposed }

        /// Integer kernels count GOP/s, floating-point ones GFLOP/s (as sgemm).
        var unit: Unit { self == .f16 || self == .bf16 ? .gigaflopsPerSecond : .gigaopsPerSecond }
    }

    static func shapeName(_ d: GemmDims) -> String { "M=\(d.m) N=\(d.n) K=\(d.k)" }

    static var all: [BenchmarkCase] {
        // The data of one shape is shared by its kernels (filling 8192 x 8192 fp32 weights takes a while) and
        // dropped when the next shape starts, so at most one shape's buffers are alive.
        let cache = GemmDataCache()
        return shapes.flatMap { shape in
            Kernel.allCases.map { kernel in
                BenchmarkCase(kernel: kernel.rawValue, shape: shapeName(shape.dims), unit: kernel.unit,
                              quick: shape.quick ? .singleThread : .skip, onlyWhenFiltered: !kernel.byDefault) { _ in
                    try instance(kernel, cache.data(for: shape.dims))
                }
            }
        }
    }

    static func instance(_ kernel: Kernel, _ d: GemmData) throws -> Instance {
        let (m, n, k) = (d.dims.m, d.dims.n, d.dims.k)
        let ops = 2 * Double(m) * Double(n) * Double(k)
        // Output scale: |x| < 1 and |w| < 1 uniform, so an output has standard deviation about sqrt(K) / 3;
        // +-4 sigma spans the 8-bit range (few outputs saturate, as in a calibrated model).
        let yScale = Float((Double(k).squareRoot() / 3) * 4 / 128)
        let run: () throws -> Void
        var notes: String
        switch kernel {
        case .qu8:
            let w = try d.perChannel()
            let y = AlignedBuffer<UInt8>(count: m * n)
            y.fill { _ in 0 }
            let a = d.activationsU8
            run = {
                try check(qk_qs8_gemm_q8(w.handle, m, QK_DTYPE_QUINT8, a.raw, k, GemmData.u8Scale,
                                         GemmData.u8ZeroPoint, QK_DTYPE_QUINT8, y.raw, n, yScale, 128, 0),
                          "qk_qs8_gemm_q8 (quint8)")
            }
            notes = "per-channel w; " + w.kernel(sevenBit: false)
        case .qu8SevenBit:
            let w = try d.perChannel()
            let y = AlignedBuffer<UInt8>(count: m * n)
            y.fill { _ in 0 }
            let a = d.activationsU7
            run = {
                try check(qk_qs8_gemm_q8(w.handle, m, QK_DTYPE_QUINT8, a.raw, k, GemmData.u7Scale,
                                         GemmData.u7ZeroPoint, QK_DTYPE_QUINT8, y.raw, n, yScale, 128,
                                         UInt32(QK_GEMM_ACTIVATIONS_7BIT)),
                          "qk_qs8_gemm_q8 (quint8, 7-bit)")
            }
            notes = "per-channel w; " + w.kernel(sevenBit: true)
        case .qs8:
            let w = try d.perChannel()
            let y = AlignedBuffer<Int8>(count: m * n)
            y.fill { _ in 0 }
            let a = d.activationsS8
            run = {
                try check(qk_qs8_gemm_q8(w.handle, m, QK_DTYPE_QINT8, a.raw, k, GemmData.s8Scale, 0,
                                         QK_DTYPE_QINT8, y.raw, n, yScale, 0, 0),
                          "qk_qs8_gemm_q8 (qint8)")
            }
            notes = "per-channel w; " + w.kernel(sevenBit: false)
        case .dynamicLinear, .dynamicLinearPerRow:
            // PyTorch's nnqd.Linear with its default qconfig: per-tensor symmetric weights, reduce_range (the x86
            // default, 7-bit activation codes).
            let w = try d.perTensor()
            let y = AlignedBuffer<Float>(count: m * n)
            y.fill { _ in 0 }
            let x = d.a32
            let perRow = kernel == .dynamicLinearPerRow
            let flags = UInt32(QK_DYNAMIC_REDUCE_RANGE) | (perRow ? UInt32(QK_DYNAMIC_PER_ROW) : 0)
            run = {
                try check(qk_dynamic_linear_f32(w.handle, m, x.pointer, k, y.pointer, n, flags),
                          "qk_dynamic_linear_f32")
            }
            notes = "qk_dynamic_linear_f32\(perRow ? " per-row" : ""), reduce_range; per-tensor w; "
                + w.kernel(sevenBit: true)
        case .dynamicLinearComposed:
            // What dynamic_linear does, from the separate public calls: shows what the fused operator saves.
            let w = try d.perTensor()
            let y = AlignedBuffer<Float>(count: m * n)
            y.fill { _ in 0 }
            let aq = AlignedBuffer<UInt8>(count: m * k)   // the quantized activations: scratch, allocated once
            aq.fill { _ in 0 }
            let x = d.a32
            run = {
                var lo: Float = 0, hi: Float = 0, scale: Float = 0
                var zp: Int32 = 0
                try check(qk_minmax_f32(m * k, x.pointer, 0, &lo, &hi), "qk_minmax_f32")
                try check(qk_dynamic_qparams(lo, hi, UInt32(QK_DYNAMIC_REDUCE_RANGE), &scale, &zp),
                          "qk_dynamic_qparams")
                try check(qk_quantize_per_tensor(QK_DTYPE_QUINT8, m * k, x.pointer, aq.raw, scale, zp),
                          "qk_quantize_per_tensor")
                try check(qk_qs8_gemm_f32(w.handle, m, QK_DTYPE_QUINT8, aq.raw, k, scale, zp, y.pointer, n,
                                          UInt32(QK_GEMM_ACTIVATIONS_7BIT)),
                          "qk_qs8_gemm_f32")
            }
            notes = "composed: minmax+qparams+quantize+gemm_f32; per-tensor w; " + w.kernel(sevenBit: true)
        case .f16, .bf16:
            // PyTorch's nnqd.Linear with float16_dynamic_qconfig (linear_dynamic_fp16), and its bf16 analogue. The
            // bias is applied (sgemm's beta = 0 has none): one add per output, noise next to 2K flops.
            let w = try d.half(kernel == .f16 ? QK_HALF_FP16 : QK_HALF_BF16)
            let y = AlignedBuffer<Float>(count: m * n)
            y.fill { _ in 0 }
            let x = d.a32
            run = {
                try check(qk_half_gemm_f32(w.handle, m, x.pointer, k, y.pointer, n, 0), "qk_half_gemm_f32")
            }
            notes = (kernel == .f16 ? "fp16 w, fp32 x; " : "bf16 w and x; ") + w.kernel
        }
        return Instance(shape: shapeName(d.dims), work: ops, run: run,
                        baseline: sgemmBaseline(d), gemm: d.dims, notes: notes)
    }

    /// C[M, N] = A[M, K] * W[N, K]^T in fp32, as torch.nn.Linear computes it (bias left out: beta = 0).
    static func sgemmBaseline(_ d: GemmData) -> Baseline {
        let (m, n, k) = (Int32(d.dims.m), Int32(d.dims.n), Int32(d.dims.k))
        let a = d.a32, w = d.w32, c = d.c32
        return Baseline(name: "cblas_sgemm", work: 2 * Double(m) * Double(n) * Double(k),
                        unit: .gigaflopsPerSecond, settleSeconds: openBLASSpinSeconds) { _ in
            // Threads: openblas_set_num_threads, called by setThreads with QuantKit's count.
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1, a.pointer, k, w.pointer, k, 0,
                        c.pointer, n)
        }
    }
}

/// How long OpenBLAS's pthread workers spin after a call before they sleep: 2^OPENBLAS_THREAD_TIMEOUT cycles
/// (default 2^28, 0.11 s at 2.4 GHz; measured here: 85-90 ms of CPU time burnt after each 2-thread sgemm), taken at
/// 2 GHz plus a margin. The harness idles that long after each multi-threaded sgemm sample.
let openBLASSpinSeconds: Double = {
    let env = getenv("OPENBLAS_THREAD_TIMEOUT").flatMap { Int(String(cString: $0)) } ?? 28
    let log2Cycles = min(max(env, 4), 30)   // OpenBLAS clamps it to [4, 30]
    return min(0.6, Double(1 << log2Cycles) / 2e9 + 0.02)
}()

// ------------------------------------------------------------------------------------------------ data

/// Keeps the data of the last shape asked for.
final class GemmDataCache {
    private var current: GemmData?

    func data(for dims: GemmDims) throws -> GemmData {
        if let c = current, c.dims == dims { return c }
        current = nil   // free the previous shape first
        let d = try GemmData(dims)
        current = d
        return d
    }
}

/// One linear layer: fp32 activations and weights (the sgemm baseline) and their int8 quantizations.
final class GemmData {
    let dims: GemmDims
    let a32: AlignedBuffer<Float>        // [M, K], uniform in [-1, 1)
    let w32: AlignedBuffer<Float>        // [N, K], uniform in [-1, 1)
    let c32: AlignedBuffer<Float>        // [M, N], sgemm's output
    let bias: AlignedBuffer<Float>       // [N]
    let wq: AlignedBuffer<Int8>          // [N, K], w32 quantized per channel, symmetric
    let wScales: AlignedBuffer<Float>    // [N]
    let wqTensor: AlignedBuffer<Int8>    // [N, K], w32 quantized per tensor, symmetric
    let wScaleTensor: Float
    let activationsU8: AlignedBuffer<UInt8>   // a32 as quint8 over the full range [0, 255]
    let activationsU7: AlignedBuffer<UInt8>   // a32 as quint8 in [0, 127] (reduce_range)
    let activationsS8: AlignedBuffer<Int8>    // a32 as qint8, symmetric
    private var packedPerChannel: PackedWeights?
    private var packedPerTensor: PackedWeights?
    private var packedHalf: [UInt32: PackedHalfWeights] = [:]

    static let u8Scale: Float = 2.0 / 255, u8ZeroPoint: Int32 = 128
    static let u7Scale: Float = 2.0 / 127, u7ZeroPoint: Int32 = 64
    static let s8Scale: Float = 1.0 / 127

    init(_ dims: GemmDims) throws {
        self.dims = dims
        let (m, n, k) = (dims.m, dims.n, dims.k)
        var rng = SplitMix64(state: UInt64(m * 1_000_003 + n * 1009 + k))
        a32 = AlignedBuffer(count: m * k)
        a32.fill { _ in rng.float(-1, 1) }
        w32 = AlignedBuffer(count: n * k)
        w32.fill { _ in rng.float(-1, 1) }
        c32 = AlignedBuffer(count: m * n)
        c32.fill { _ in 0 }
        bias = AlignedBuffer(count: n)
        bias.fill { _ in rng.float(-0.5, 0.5) }

        // Symmetric weights as PyTorch's MinMax observers give them: scale = max|w| / 127.5 over the row (per
        // channel) or the tensor, zero point 0.
        wScales = AlignedBuffer(count: n)
        var tensorMax: Float = 0
        for row in 0..<n {
            var mx: Float = 0
            let p = w32.pointer + row * k
            for j in 0..<k { mx = max(mx, abs(p[j])) }
            wScales.pointer[row] = max(mx / 127.5, Float.ulpOfOne)
            tensorMax = max(tensorMax, mx)
        }
        wScaleTensor = max(tensorMax / 127.5, Float.ulpOfOne)
        let zeros = AlignedBuffer<Int32>(count: n)
        zeros.fill { _ in 0 }
        wq = AlignedBuffer(count: n * k)
        try check(qk_quantize_per_channel(QK_DTYPE_QINT8, 1, n, k, w32.pointer, wq.raw, wScales.pointer,
                                          zeros.pointer), "qk_quantize_per_channel (weights)")
        wqTensor = AlignedBuffer(count: n * k)
        try check(qk_quantize_per_tensor(QK_DTYPE_QINT8, n * k, w32.pointer, wqTensor.raw, wScaleTensor, 0),
                  "qk_quantize_per_tensor (weights)")

        activationsU8 = AlignedBuffer(count: m * k)
        try check(qk_quantize_per_tensor(QK_DTYPE_QUINT8, m * k, a32.pointer, activationsU8.raw, Self.u8Scale,
                                         Self.u8ZeroPoint), "qk_quantize_per_tensor (quint8)")
        activationsU7 = AlignedBuffer(count: m * k)
        try check(qk_quantize_per_tensor(QK_DTYPE_QUINT8, m * k, a32.pointer, activationsU7.raw, Self.u7Scale,
                                         Self.u7ZeroPoint), "qk_quantize_per_tensor (quint8, 7-bit)")
        for i in 0..<m * k { activationsU7.pointer[i] = min(activationsU7.pointer[i], 127) }   // the flag's promise
        activationsS8 = AlignedBuffer(count: m * k)
        try check(qk_quantize_per_tensor(QK_DTYPE_QINT8, m * k, a32.pointer, activationsS8.raw, Self.s8Scale, 0),
                  "qk_quantize_per_tensor (qint8)")
    }

    func perChannel() throws -> PackedWeights {
        if let p = packedPerChannel { return p }
        let p = try PackedWeights(n: dims.n, k: dims.k, weights: wq.pointer, qscheme: QK_QSCHEME_PER_CHANNEL,
                                  scales: wScales.pointer, bias: bias.pointer)
        packedPerChannel = p
        return p
    }

    func perTensor() throws -> PackedWeights {
        if let p = packedPerTensor { return p }
        var scale = wScaleTensor
        let p = try PackedWeights(n: dims.n, k: dims.k, weights: wqTensor.pointer, qscheme: QK_QSCHEME_PER_TENSOR,
                                  scales: &scale, bias: bias.pointer)
        packedPerTensor = p
        return p
    }

    /// w32 and the bias packed as fp16 (saturating; nothing saturates in [-1, 1)) or bf16.
    func half(_ type: qk_half_type) throws -> PackedHalfWeights {
        if let p = packedHalf[type.rawValue] { return p }
        let p = try PackedHalfWeights(type: type, n: dims.n, k: dims.k, weights: w32.pointer, bias: bias.pointer)
        packedHalf[type.rawValue] = p
        return p
    }
}

/// An owning qk_qs8_gemm_weights handle.
final class PackedWeights {
    let handle: OpaquePointer

    init(n: Int, k: Int, weights: UnsafePointer<Int8>, qscheme: qk_qscheme, scales: UnsafePointer<Float>,
         bias: UnsafePointer<Float>?) throws {
        var out: OpaquePointer?
        try check(qk_qs8_gemm_weights_create(n, k, weights, qscheme, scales, nil, bias, &out),
                  "qk_qs8_gemm_weights_create(\(n), \(k))")
        guard let out else { throw BenchError(description: "qk_qs8_gemm_weights_create returned no handle") }
        handle = out
    }

    /// The microkernel a run uses, without the "qk_" prefix.
    func kernel(sevenBit: Bool) -> String {
        let name = String(cString: qk_qs8_gemm_weights_kernel(handle, sevenBit ? 1 : 0))
        return name.hasPrefix("qk_") ? String(name.dropFirst(3)) : name
    }

    deinit { qk_qs8_gemm_weights_destroy(handle) }
}

/// An owning qk_half_gemm_weights handle.
final class PackedHalfWeights {
    let handle: OpaquePointer

    init(type: qk_half_type, n: Int, k: Int, weights: UnsafePointer<Float>, bias: UnsafePointer<Float>?) throws {
        var out: OpaquePointer?
        try check(qk_half_gemm_weights_create(type, n, k, weights, bias, nil, &out),
                  "qk_half_gemm_weights_create(\(type == QK_HALF_FP16 ? "fp16" : "bf16"), \(n), \(k))")
        guard let out else { throw BenchError(description: "qk_half_gemm_weights_create returned no handle") }
        handle = out
    }

    /// The microkernel a run uses, without the "qk_" prefix.
    var kernel: String {
        let name = String(cString: qk_half_gemm_weights_kernel(handle, 0))
        return name.hasPrefix("qk_") ? String(name.dropFirst(3)) : name
    }

    deinit { qk_half_gemm_weights_destroy(handle) }
}
