import CKernels

/// The streaming kernels of the foundation issue. Each is DRAM-bound at 64 MB, so the baseline is memcpy of the
/// kernel's larger stream (its input, or its output when that is larger: see memcpyBaseline) and the figure of
/// merit is `bandwidth_vs_memcpy` (target >= 0.80 on one thread).
enum MemoryBoundCases {
    /// Per-channel cases use [rows, 4096] with the channel axis last (axis 1), as a weight matrix is quantized.
    static let channels = 4096

    static var all: [BenchmarkCase] {
        [
            quantize("quantize_qu8", dtype: QK_DTYPE_QUINT8, zeroPoint: 128),
            quantize("quantize_qs8", dtype: QK_DTYPE_QINT8, zeroPoint: 0),
            quantizePerChannel("quantize_pc_qu8"),
            dequantize("dequantize_qu8"),
            requantize("requantize_qu8"),
            requantizePerChannel("requantize_pc_qu8"),
            f32ToF16("f32_to_f16"),
            f16ToF32("f16_to_f32"),
            minmax("minmax"),
        ]
    }

    // Activations roughly in [-4, 4): with scale 1/32 most values land inside the 8-bit range and some saturate,
    // as real data does.
    static func activations(_ n: Int, seed: UInt64) -> AlignedBuffer<Float> {
        let x = AlignedBuffer<Float>(count: n)
        var rng = SplitMix64(state: seed)
        x.fill { _ in rng.float(-4.5, 4.5) }
        return x
    }

    static func accumulators(_ n: Int) -> AlignedBuffer<Int32> {
        let x = AlignedBuffer<Int32>(count: n)
        var rng = SplitMix64(state: 3)
        x.fill { _ in rng.int32(-1 << 20, 1 << 20) }
        return x
    }

    static func output<T>(_ type: T.Type, _ n: Int, zero: T) -> AlignedBuffer<T> {
        let y = AlignedBuffer<T>(count: n)
        y.fill { _ in zero }
        return y
    }

    static func perChannelShape(_ n: Int) -> (rows: Int, shape: String) {
        let rows = max(1, n / channels)
        return (rows, "[\(rows), \(channels)] axis 1")
    }

    static func quantize(_ name: String, dtype: qk_dtype, zeroPoint: Int32) -> BenchmarkCase {
        BenchmarkCase(kernel: name, unit: .gigabytesPerSecond) { config in
            let n = config.elements
            let x = activations(n, seed: 1)
            let y = output(UInt8.self, n, zero: 0)
            return Instance(shape: "[\(n)]", work: Double(n * 4 + n), run: {
                try check(qk_quantize_per_tensor(dtype, n, x.pointer, y.raw, 1.0 / 32, zeroPoint), name)
            }, baseline: memcpyBaseline(inputBytes: n * 4, outputBytes: n))
        }
    }

    static func quantizePerChannel(_ name: String) -> BenchmarkCase {
        BenchmarkCase(kernel: name, unit: .gigabytesPerSecond) { config in
            let (rows, shape) = perChannelShape(config.elements)
            let n = rows * channels
            let x = activations(n, seed: 2)
            let y = output(UInt8.self, n, zero: 0)
            let scales = AlignedBuffer<Float>(count: channels)
            let zps = AlignedBuffer<Int32>(count: channels)
            scales.fill { Float(1 + $0 % 7) / 64 }
            zps.fill { Int32(120 + $0 % 17) }
            return Instance(shape: shape, work: Double(n * 4 + n), run: {
                try check(qk_quantize_per_channel(QK_DTYPE_QUINT8, rows, channels, 1, x.pointer, y.raw,
                                                  scales.pointer, zps.pointer), name)
            }, baseline: memcpyBaseline(inputBytes: n * 4, outputBytes: n))
        }
    }

    static func dequantize(_ name: String) -> BenchmarkCase {
        BenchmarkCase(kernel: name, unit: .gigabytesPerSecond) { config in
            let n = config.elements
            let q = AlignedBuffer<UInt8>(count: n)
            var rng = SplitMix64(state: 4)
            q.fill { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let y = output(Float.self, n, zero: 0)
            return Instance(shape: "[\(n)]", work: Double(n + n * 4), run: {
                try check(qk_dequantize_per_tensor(QK_DTYPE_QUINT8, n, q.raw, y.pointer, 1.0 / 32, 128), name)
            }, baseline: memcpyBaseline(inputBytes: n, outputBytes: n * 4))
        }
    }

    static func requantize(_ name: String) -> BenchmarkCase {
        BenchmarkCase(kernel: name, unit: .gigabytesPerSecond) { config in
            let n = config.elements
            let acc = accumulators(n)
            let y = output(UInt8.self, n, zero: 0)
            return Instance(shape: "[\(n)]", work: Double(n * 4 + n), run: {
                try check(qk_requantize(QK_DTYPE_QUINT8, n, acc.pointer, y.raw, 1.0 / 8192, 128, 0, 255), name)
            }, baseline: memcpyBaseline(inputBytes: n * 4, outputBytes: n))
        }
    }

    static func requantizePerChannel(_ name: String) -> BenchmarkCase {
        BenchmarkCase(kernel: name, unit: .gigabytesPerSecond) { config in
            let (rows, shape) = perChannelShape(config.elements)
            let n = rows * channels
            let acc = accumulators(n)
            let y = output(UInt8.self, n, zero: 0)
            let multipliers = AlignedBuffer<Float>(count: channels)
            multipliers.fill { Float(1 + $0 % 5) / 16384 }
            return Instance(shape: shape, work: Double(n * 4 + n), run: {
                try check(qk_requantize_per_channel(QK_DTYPE_QUINT8, rows, channels, 1, acc.pointer, y.raw,
                                                    multipliers.pointer, 128, 0, 255), name)
            }, baseline: memcpyBaseline(inputBytes: n * 4, outputBytes: n))
        }
    }

    static func f32ToF16(_ name: String) -> BenchmarkCase {
        BenchmarkCase(kernel: name, unit: .gigabytesPerSecond) { config in
            let n = config.elements
            let x = activations(n, seed: 5)
            let y = output(UInt16.self, n, zero: 0)
            return Instance(shape: "[\(n)]", work: Double(n * 4 + n * 2), run: {
                try check(qk_f32_to_f16(n, x.pointer, y.pointer), name)
            }, baseline: memcpyBaseline(inputBytes: n * 4, outputBytes: n * 2))
        }
    }

    static func f16ToF32(_ name: String) -> BenchmarkCase {
        BenchmarkCase(kernel: name, unit: .gigabytesPerSecond) { config in
            let n = config.elements
            let x = AlignedBuffer<UInt16>(count: n)
            var rng = SplitMix64(state: 6)
            // Finite halves of both signs (exponent field < 31).
            x.fill { _ in UInt16(truncatingIfNeeded: rng.next()) & 0xBBFF }
            let y = output(Float.self, n, zero: 0)
            return Instance(shape: "[\(n)]", work: Double(n * 2 + n * 4), run: {
                try check(qk_f16_to_f32(n, x.pointer, y.pointer), name)
            }, baseline: memcpyBaseline(inputBytes: n * 2, outputBytes: n * 4))
        }
    }

    static func minmax(_ name: String) -> BenchmarkCase {
        BenchmarkCase(kernel: name, unit: .gigabytesPerSecond) { config in
            let n = config.elements
            let x = activations(n, seed: 7)
            return Instance(shape: "[\(n)]", work: Double(n * 4), run: {
                var lo: Float = 0, hi: Float = 0
                try check(qk_minmax_f32(n, x.pointer, 0, &lo, &hi), name)
            }, baseline: memcpyBaseline(inputBytes: n * 4, outputBytes: 0))
        }
    }
}
