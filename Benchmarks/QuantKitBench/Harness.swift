import CKernels
import COpenBLAS

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What a case's `work` counts, and so what its throughput means.
enum Unit: String, Sendable {
    case gigabytesPerSecond = "GB/s"      // bytes read + bytes written per second / 1e9
    case gigaflopsPerSecond = "GFLOP/s"   // fp32 multiply-adds counted as 2 flops (cblas_sgemm)
    case gigaopsPerSecond = "GOP/s"       // integer multiply-adds counted as 2 ops (2 * M * N * K for a GEMM)

    var scale: Double { 1e9 }
}

/// A reference implementation run in the same process, on the same thread count, interleaved with the case.
struct Baseline {
    /// "memcpy" for the memory-bound kernels, "cblas_sgemm" for GEMM.
    let name: String
    /// The baseline's own work in `unit` (memcpy of b bytes moves 2b: it reads and writes b).
    let work: Double
    /// Unit of `work` when it differs from the case's (cblas_sgemm counts GFLOP/s where QuantKit counts GOP/s).
    var unit: Unit? = nil
    /// Idle time after each multi-threaded baseline sample, for a baseline whose worker threads keep spinning after
    /// a call: they would otherwise share the cores with QuantKit's threads in the next sample.
    var settleSeconds: Double = 0
    /// Runs the baseline once with `threads` threads.
    let run: (_ threads: Int) throws -> Void
}

/// A case prepared at one size: buffers are allocated and filled, and live as long as the closures do.
struct Instance {
    /// Human-readable shape, e.g. "[16777216]" or "[4096, 4096] axis 1".
    let shape: String
    /// Work of one call in the case's unit (bytes read + written for GB/s, flops for GFLOP/s).
    let work: Double
    /// One call of the kernel under test; QuantKit's own thread count is set by the harness beforehand.
    let run: () throws -> Void
    let baseline: Baseline?
    /// GEMM problem size, for the GEMM summary and the SVG chart.
    var gemm: GemmDims? = nil
    /// Depthwise convolution layer, for the issue-5 footer and the JSON (ConvCases.swift).
    var conv: ConvDims? = nil
    /// Free text for the table's last column and the JSON (e.g. the microkernel a GEMM runs).
    var notes: String? = nil
}

struct GemmDims: Equatable, Hashable {
    let m: Int, n: Int, k: Int
}

/// How a case takes part in `--quick`.
enum QuickMode {
    case allThreads      // 1 thread and all threads, as in a full run
    case singleThread    // 1 thread only
    case skip            // full runs only
}

/// An entry of the registry: adding a benchmark is adding one of these (see MemoryBoundCases.swift).
struct BenchmarkCase {
    /// The name in results and in `--filter`, e.g. "quantize_qu8".
    let kernel: String
    /// The shape, when known before `prepare` (GEMM cases: one case per shape); `--filter` also matches
    /// "kernel shape", so that single rows can be re-run.
    var shape: String? = nil
    let unit: Unit
    var quick: QuickMode = .allThreads
    /// Variants kept out of the default run: they run only when --filter selects them.
    var onlyWhenFiltered = false
    let prepare: (_ config: BenchConfig) throws -> Instance

    /// What `--filter` and `--list` see: "kernel" or "kernel shape".
    var id: String { shape.map { "\(kernel) \($0)" } ?? kernel }
}

struct BenchConfig {
    /// Elements of the streaming cases (16M fp32 = 64 MB: well past the 32 MB L3, so DRAM-bound).
    var elements: Int
    var warmupCalls: Int
    var repetitions: Int
    /// Calls are batched so that one timed sample lasts at least this long.
    var minSampleSeconds: Double

    static let full = BenchConfig(elements: 1 << 24, warmupCalls: 2, repetitions: 15, minSampleSeconds: 0.025)
    // Quick keeps the 64 MB arrays: anything under ~2x the L3 would measure the cache, not DRAM.
    static let quick = BenchConfig(elements: 1 << 24, warmupCalls: 1, repetitions: 5, minSampleSeconds: 0.005)
}

struct Measurement {
    let median: Double            // seconds per call
    let samples: [Double]         // seconds per call of each sample
    let callsPerSample: Int
}

/// One row of the output.
struct BenchResult {
    let kernel: String
    let shape: String
    let threads: Int
    let isa: String
    let unit: Unit
    let work: Double
    let measurement: Measurement
    let baselineName: String?
    let baselineWork: Double?
    let baselineMeasurement: Measurement?
    var baselineUnit: Unit? = nil
    var gemm: GemmDims? = nil
    var conv: ConvDims? = nil
    var notes: String? = nil

    var medianSeconds: Double { measurement.median }
    var throughput: Double { work / measurement.median / unit.scale }
    var baselineThroughput: Double? {
        guard let w = baselineWork, let m = baselineMeasurement else { return nil }
        return w / m.median / (baselineUnit ?? unit).scale
    }
    /// Baseline time / ours: > 1 means we are faster than the baseline.
    var speedup: Double? { baselineMeasurement.map { $0.median / measurement.median } }
    /// Our GB/s over memcpy's GB/s (memcpy counted as reading and writing its size): how close to copy bandwidth.
    var bandwidthVsMemcpy: Double? {
        guard baselineName == "memcpy", unit == .gigabytesPerSecond, let b = baselineThroughput else { return nil }
        return throughput / b
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
}

/// Throws with QuantKit's own message when a C call fails.
@inline(__always)
func check(_ status: qk_status, _ what: @autoclosure () -> String) throws {
    if status != QK_OK {
        throw BenchError(description: "\(what()) failed: \(String(cString: qk_status_string(status))): "
                         + String(cString: qk_last_error_message()))
    }
}

/// CLOCK_MONOTONIC in seconds.
@inline(__always)
func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

func median(_ values: [Double]) -> Double {
    let s = values.sorted()
    let n = s.count
    return n % 2 == 1 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2])
}

/// Sets every library's thread count: QuantKit's (qk_set_num_threads) and OpenBLAS's, for baselines that use it.
func setThreads(_ n: Int) throws {
    try check(qk_set_num_threads(Int32(n)), "qk_set_num_threads(\(n))")
    openblas_set_num_threads(Int32(n))
}

/// Runs `body` in samples of `calls` calls and returns seconds per call of one sample.
@inline(never)
func timeSample(calls: Int, _ body: () throws -> Void) rethrows -> Double {
    let t0 = now()
    for _ in 0..<calls { try body() }
    return (now() - t0) / Double(calls)
}

/// Calls per sample so that a sample lasts at least `minSeconds`, from one timed call.
func callsPerSample(estimate: Double, minSeconds: Double) -> Int {
    guard estimate > 0 else { return 1000 }
    return max(1, min(1_000_000, Int((minSeconds / estimate).rounded(.up))))
}

/// Warm-up, then `repetitions` samples of the kernel and of its baseline, interleaved so that both see the same
/// machine state (frequency, other load); the result is the median of the samples.
func measure(_ instance: Instance, threads: Int, config: BenchConfig) throws -> (Measurement, Measurement?) {
    for _ in 0..<max(1, config.warmupCalls) { try instance.run() }   // first touch, page faults, pool start-up
    let kernelCalls = callsPerSample(estimate: try timeSample(calls: 1, instance.run),
                                     minSeconds: config.minSampleSeconds)
    var baselineCalls = 0
    if let b = instance.baseline {
        for _ in 0..<max(1, config.warmupCalls) { try b.run(threads) }
        baselineCalls = callsPerSample(estimate: try timeSample(calls: 1) { try b.run(threads) },
                                       minSeconds: config.minSampleSeconds)
    }
    var ours: [Double] = [], theirs: [Double] = []
    for _ in 0..<max(1, config.repetitions) {
        ours.append(try timeSample(calls: kernelCalls, instance.run))
        if let b = instance.baseline {
            theirs.append(try timeSample(calls: baselineCalls) { try b.run(threads) })
            if threads > 1 && b.settleSeconds > 0 { usleep(UInt32(b.settleSeconds * 1e6)) }
        }
    }
    let m = Measurement(median: median(ours), samples: ours, callsPerSample: kernelCalls)
    let bm = instance.baseline == nil ? nil
        : Measurement(median: median(theirs), samples: theirs, callsPerSample: baselineCalls)
    return (m, bm)
}
