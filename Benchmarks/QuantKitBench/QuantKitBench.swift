import ArgumentParser
import CKernels
import Foundation

/// quantkit-bench: times QuantKit's kernels against baselines run in the same process.
///
///     swift run -c release quantkit-bench [--filter REGEX] [--threads N] [--quick] [--json PATH]
///
/// The cases are a registry (`registry` below): each prepares its buffers, a kernel closure and an optional
/// baseline closure. The harness sets the thread count, warms up, and takes the median of interleaved samples.
@main
struct QuantKitBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quantkit-bench",
        abstract: "Benchmark QuantKit's kernels against memcpy (and, for GEMM, OpenBLAS).",
        discussion: """
            Run it in release mode. For OpenBLAS baselines, unset the machine's OpenBLAS overrides for this command \
            only: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE swift run -c release quantkit-bench
            """)

    /// Every benchmark, in output order. Later issues append their cases (e.g. GEMM against cblas_sgemm) here.
    static var registry: [BenchmarkCase] { MemoryBoundCases.all }

    @Option(name: .long, help: "Only run kernels whose name matches this regular expression.")
    var filter: String?

    @Option(name: .long, help: "Run with exactly N threads (default: 1 thread and all threads).")
    var threads: Int?

    @Flag(name: .long, help: "Fewer repetitions and shorter samples (same DRAM-sized arrays).")
    var quick = false

    @Option(name: .long, help: "Also write the results as JSON to this file.")
    var json: String?

    @Flag(name: .long, help: "List the kernels and exit.")
    var list = false

    func validate() throws {
        if let t = threads, !(1...Int(QK_MAX_THREADS)).contains(t) {
            throw ValidationError("--threads must be in 1...\(QK_MAX_THREADS), got \(t)")
        }
        if let f = filter {
            do { _ = try Regex(f) } catch { throw ValidationError("--filter is not a valid regular expression: \(error)") }
        }
    }

    func run() throws {
        let regex = try filter.map { try Regex($0) }
        let cases = Self.registry.filter { c in regex.map { c.kernel.contains($0) } ?? true }
        if list {
            Self.registry.forEach { print($0.kernel) }
            return
        }
        guard !cases.isEmpty else {
            throw ValidationError("--filter \(filter ?? "") matches no kernel; kernels: "
                                  + Self.registry.map(\.kernel).joined(separator: ", "))
        }

        // With OpenMP builds, idle workers would otherwise spin (libomp: 200 ms) and steal the cores from the
        // interleaved memcpy baseline. Must be set before the OpenMP runtime starts; a user's setting wins.
        setenv("OMP_WAIT_POLICY", "passive", 0)

        let status = qk_runtime_init()
        guard status == QK_OK else {
            FileHandle.standardError.write(Data(
                "quantkit-bench: error: \(String(cString: qk_last_error_message()))\n".utf8))
            throw ExitCode(2)
        }
        try check(qk_set_num_threads(0), "qk_set_num_threads(0)")
        let machine = MachineInfo.current()
        let threadCounts = threads.map { [$0] } ?? (machine.maxThreads > 1 ? [1, machine.maxThreads] : [1])
        let config = quick ? BenchConfig.quick : BenchConfig.full

        let table = TableReporter()
        table.header(machine: machine, config: config, quick: quick)
        var results: [BenchResult] = []
        for benchmark in cases {
            // Prepared once per case (allocation and filling dominate otherwise); freed before the next case.
            let instance = try benchmark.prepare(config)
            for n in threadCounts {
                try setThreads(n)
                let (m, bm) = try measure(instance, threads: n, config: config)
                let r = BenchResult(
                    kernel: benchmark.kernel, shape: instance.shape, threads: n,
                    isa: String(cString: qk_isa_name()), unit: benchmark.unit, work: instance.work,
                    measurement: m, baselineName: instance.baseline?.name, baselineWork: instance.baseline?.work,
                    baselineMeasurement: bm)
                table.row(r)
                fflush(nil)   // all streams: progress shows even when piped
                results.append(r)
            }
        }
        try setThreads(0)
        table.footer(results: results)

        var reporters: [any Reporter] = []
        if let json { reporters.append(JSONReporter(path: json)) }
        for reporter in reporters { try reporter.report(machine: machine, results: results) }
        if let json { print("wrote \(json)") }
    }
}
