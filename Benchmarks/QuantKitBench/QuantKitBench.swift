import ArgumentParser
import CKernels
import Foundation

/// quantkit-bench: times QuantKit's kernels against baselines run in the same process.
///
///     swift run -c release quantkit-bench [--filter REGEX] [--threads N] [--quick] [--json PATH] [--svg PATH]
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

            The GEMM rows run on the best ISA level unless QUANTKIT_ISA says otherwise (QUANTKIT_ISA=avx2 gives \
            the forced-AVX2 path; compare it with OpenBLAS's Haswell kernel: OPENBLAS_CORETYPE=Haswell).
            """)

    /// Every benchmark, in output order: the streaming kernels against memcpy, then GEMM against cblas_sgemm, then
    /// int8 depthwise convolution against QuantKit's fp32 depthwise convolution, then the histogram observer.
    static var registry: [BenchmarkCase] {
        MemoryBoundCases.all + GemmCases.all + ConvCases.all + ObserverCases.all
    }

    @Option(name: .long, help: ArgumentHelp(
        "Only run cases whose kernel name, or \"kernel shape\" as --list prints it, matches this regular expression.",
        discussion: """
            Examples: --filter gemm, --filter '^qu8_gemm M=1024 ', --filter 'M=1 N=8192'. \
            dynamic_linear_per_row and dynamic_linear_composed run only when --filter selects them.
            """))
    var filter: String?

    @Option(name: .long, help: "Run with exactly N threads (default: 1 thread and all threads).")
    var threads: Int?

    @Flag(name: .long, help: """
        Fewer repetitions and shorter samples (same DRAM-sized arrays); GEMM: 4 of the 10 shapes, qu8_dwconv: 2 of the 8 layers, 1 thread only.
        """)
    var quick = false

    @Option(name: .long, help: "Also write the results as JSON to this file.")
    var json: String?

    @Option(name: .long,
            help: "Also write an SVG bar chart of the GEMM speedups over cblas_sgemm (1 thread) to this file.")
    var svg: String?

    @Flag(name: .long, help: "List the cases (kernel, and shape for GEMM) and exit; --filter and --quick apply.")
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
        let registry = Self.registry
        let cases = registry.filter { c in
            (regex.map { c.kernel.contains($0) || c.id.contains($0) } ?? !c.onlyWhenFiltered)
                && !(quick && c.quick == .skip)
        }
        if list {
            cases.forEach { print($0.id) }
            return
        }
        guard !cases.isEmpty else {
            var kernels: [String] = []
            for c in registry where !kernels.contains(c.kernel) { kernels.append(c.kernel) }
            throw ValidationError("--filter \(filter ?? "") matches no case\(quick ? " of --quick" : ""); kernels: "
                                  + kernels.joined(separator: ", ") + " (--list shows the shapes)")
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
            let counts = quick && benchmark.quick == .singleThread ? Array(threadCounts.prefix(1)) : threadCounts
            for n in counts {
                try setThreads(n)
                let (m, bm) = try measure(instance, threads: n, config: config)
                let r = BenchResult(
                    kernel: benchmark.kernel, shape: instance.shape, threads: n,
                    isa: String(cString: qk_isa_name()), unit: benchmark.unit, work: instance.work,
                    measurement: m, baselineName: instance.baseline?.name, baselineWork: instance.baseline?.work,
                    baselineMeasurement: bm, baselineUnit: instance.baseline?.unit, gemm: instance.gemm,
                    conv: instance.conv, notes: instance.notes)
                table.row(r)
                fflush(nil)   // all streams: progress shows even when piped
                results.append(r)
            }
        }
        try setThreads(0)
        table.footer(machine: machine, results: results)

        var reporters: [any Reporter] = []
        if let json { reporters.append(JSONReporter(path: json)) }
        if let svg { reporters.append(SVGReporter(path: svg)) }
        for reporter in reporters { try reporter.report(machine: machine, results: results) }
        if let json { print("wrote \(json)") }
        if let svg { print("wrote \(svg)") }
    }
}
