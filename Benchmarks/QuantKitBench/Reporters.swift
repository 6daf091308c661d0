import Foundation

/// Output formats. Each reads the finished `BenchResult`s and the machine; none measures anything (the SVG chart of
/// the GEMM speedups is in SVGReporter.swift).
protocol Reporter {
    func report(machine: MachineInfo, results: [BenchResult]) throws
}

// ------------------------------------------------------------------------------------------------ table

/// The console table; rows are printed as they finish so that a long run shows progress.
struct TableReporter {
    let columns: [(title: String, width: Int)] = [
        ("kernel", 23), ("shape", 20), ("thr", 3), ("isa", 10), ("median ms", 10), ("throughput", 15),
        ("baseline", 15), ("baseline ms", 11), ("vs memcpy", 9), ("speedup", 7), ("notes", 0),
    ]

    func header(machine: MachineInfo, config: BenchConfig, quick: Bool) {
        print("QuantKit \(machine.quantkitVersion) benchmark\(quick ? " (--quick)" : "")  \(machine.date)")
        print("CPU: \(machine.cpu)")
        print("ISA: \(machine.isa)   features: \(machine.cpuFeatures.joined(separator: " "))")
        print("threads: backend \(machine.threadBackend), max \(machine.maxThreads)")
        print("OpenBLAS core: \(machine.openblasCore)   OPENBLAS_CORETYPE=\(machine.openblasCoretypeEnv ?? "(unset)")"
              + "   OPENBLAS_L2_SIZE=\(machine.openblasL2SizeEnv ?? "(unset)")")
        print("timing: median of \(config.repetitions) samples (each >= \(Int(config.minSampleSeconds * 1000)) ms, "
              + "after \(config.warmupCalls) warm-up calls); baseline interleaved, same thread count")
        print("GEMM: y[M,N] = x[M,K] w[N,K]^T, throughput 2MNK/time (int8 GOP/s; fp16, bf16 and cblas_sgemm "
              + "GFLOP/s), speedup = sgemm time / ours, weights packed once outside the timing")
        print("qu8_dwconv: MobileNetV2 depthwise 3x3, pad 1, batch 1, NHWC, per-channel int8 w, bias, ReLU; baseline "
              + "QuantKit's fp32 depthwise (f32_dwconv) on the same layer; time per layer in µs in the notes")
        print("")
        print(line(columns.map(\.title)))
        print(line(columns.map { String(repeating: "-", count: max($0.width, $0.title.count)) }))
    }

    func row(_ r: BenchResult) {
        func f(_ v: Double?, _ digits: Int) -> String { v.map { String(format: "%.\(digits)f", $0) } ?? "-" }
        let baseline = r.baselineThroughput.map {
            "\(String(format: "%.2f", $0)) \((r.baselineUnit ?? r.unit).rawValue)"
        }
        print(line([
            r.kernel, r.shape, "\(r.threads)", r.isa, f(r.medianSeconds * 1e3, 3),
            "\(String(format: "%.2f", r.throughput)) \(r.unit.rawValue)",
            baseline.map { "\($0)" } ?? "-", f(r.baselineMeasurement.map { $0.median * 1e3 }, 3),
            f(r.bandwidthVsMemcpy, 2), f(r.speedup, 2), notes(r),
        ]))
    }

    /// The notes column; depthwise convolution rows start with the time per layer in microseconds.
    private func notes(_ r: BenchResult) -> String {
        guard r.conv != nil else { return r.notes ?? "" }
        let times = String(format: "%.1f µs", r.medianSeconds * 1e6)
            + (r.baselineMeasurement.map { String(format: " (fp32 %.1f µs)", $0.median * 1e6) } ?? "")
        return r.notes.map { times + "; " + $0 } ?? times
    }

    func footer(machine: MachineInfo, results: [BenchResult]) {
        let single = results.filter { $0.threads == 1 }.compactMap(\.bandwidthVsMemcpy)
        if let worst = single.min() {
            print("")
            print("single-thread bandwidth_vs_memcpy: min \(String(format: "%.2f", worst)) (target >= 0.80)"
                  + "; baseline: memcpy of the kernel's larger stream (input, or output if larger),"
                  + " counted as read + write, same thread count")
        }
        gemmSummary(machine: machine, results: results)
        convSummary(results: results)
        ObserverCases.footer(results: results)
        Conv2dCases.summary(results).forEach { print($0) }
    }

    /// The depthwise convolution targets of issue 5 (single thread): each layer's int8 time at most PyTorch's FBGEMM
    /// time measured on this CPU; the goal is 0.6x that.
    private func convSummary(results: [BenchResult]) {
        let rows = results.filter { $0.kernel == ConvCases.kernelName && $0.threads == 1 }
        guard !rows.isEmpty else { return }
        print("")
        print("qu8_dwconv: time per layer; fp32 = QuantKit's f32_dwconv on the same layer in the same run; "
              + "speedup = fp32 time / int8 time")
        print("targets of issue 5 that this run measures:")
        for r in rows {
            guard let d = r.conv, let target = ConvCases.target(for: d) else { continue }
            let us = r.medianSeconds * 1e6
            let goal = target * ConvCases.goalFraction
            let fp32 = r.baselineMeasurement.map { String(format: "fp32 %7.1f µs", $0.median * 1e6) } ?? ""
            let label = "qu8_dwconv " + ConvCases.shapeName(d) + ", 1 thread"
            let targetVerdict: String = us <= target ? "met" : "NOT met"
            let goalVerdict: String = us <= goal ? "met" : "NOT met"
            var text = "  " + label.padding(toLength: 40, withPad: " ", startingAt: 0)
            text += String(format: "%7.1f µs  ", us) + fp32
            text += String(format: "  (target <= %.1f µs: ", target) + targetVerdict
            text += String(format: "; goal 0.6x <= %.1f µs: ", goal) + goalVerdict + ")"
            print(text)
        }
    }

    /// The GEMM targets of issues 3 (int8) and 4 (fp16 / bf16) that this run's rows can check.
    private func gemmSummary(machine: MachineInfo, results: [BenchResult]) {
        let gemm = results.filter { $0.gemm != nil && $0.speedup != nil }
        guard !gemm.isEmpty else { return }
        func find(_ kernel: String, _ m: Int, _ n: Int, _ k: Int, threads: Int = 1) -> BenchResult? {
            gemm.first { $0.kernel == kernel && $0.gemm == GemmDims(m: m, n: n, k: k) && $0.threads == threads }
        }
        let core = machine.openblasCore
        var lines: [String] = []
        func target(_ what: String, _ value: Double?, _ goal: Double, _ comment: String = "") {
            guard let value else { return }
            let verdict = value >= goal ? "met" : "NOT met"
            lines.append("  " + what.padding(toLength: 62, withPad: " ", startingAt: 0)
                         + String(format: "%6.2fx  (target >= %.2fx: ", value, goal) + verdict + ")"
                         + (comment.isEmpty ? "" : "  " + comment))
        }
        let forcedCore = machine.openblasCoretypeEnv.map { "(target is against OpenBLAS at its best; core forced to "
                                                          + "\($0) here)" } ?? ""
        let vsCore = "vs OpenBLAS \(core)"
        // The 4.2x and 3.6x targets were set on a VNNI CPU (vpdpbusd: 4x the MACs of an fp32 FMA); without VNNI,
        // AVX2's vpmaddubsw + vpmaddwd gives at most about 2x.
        func vnniNote(_ r: BenchResult?) -> String {
            guard let r, !r.isa.contains("vnni") else { return "" }
            return "(a VNNI-class target; ISA level here: \(r.isa))"
        }
        let q1024 = find("qu8_gemm", 1024, 1024, 1024), q256 = find("qu8_gemm", 256, 256, 256)
        target("qu8_gemm 1024^3, 1 thread, \(vsCore)", q1024?.speedup, 4.2,
               [vnniNote(q1024), core == "Haswell" ? "(against OpenBLAS at its best; core forced to Haswell here)" : ""]
                .filter { !$0.isEmpty }.joined(separator: " "))
        target("qu8_gemm 256^3, 1 thread, \(vsCore)", q256?.speedup, 3.6, vnniNote(q256))
        if let r = find("qu8_gemm_7bit", 1024, 1024, 1024), r.isa == "avx2" {
            target("AVX2 qu8_gemm_7bit 1024^3, 1 thread, \(vsCore)", r.speedup, 2.0,
                   core == "Haswell" ? "" : "(target is against the Haswell kernel)")
        }
        if let r = find("qu8_gemm", 1024, 1024, 1024), r.isa == "avx2" {
            target("AVX2 qu8_gemm (8-bit) 1024^3, 1 thread, \(vsCore)", r.speedup, 1.5,
                   core == "Haswell" ? "" : "(target is against the Haswell kernel)")
        }
        target("qu8_gemm M=1 N=K=8192, 1 thread, \(vsCore)", find("qu8_gemm", 1, 8192, 8192)?.speedup, 5.0)
        if let one = find("qu8_gemm", 2048, 2048, 2048),
           let two = gemm.filter({ $0.kernel == "qu8_gemm" && $0.gemm == one.gemm && $0.threads == 2 }).first {
            target("qu8_gemm 2048^3, 2 threads vs 1 (time ratio)", one.medianSeconds / two.medianSeconds, 1.85)
        }
        print("")
        print("GEMM: speedup = cblas_sgemm time / QuantKit time, same shape and thread count; OpenBLAS core \(core)"
              + (machine.openblasCoretypeEnv.map { " (OPENBLAS_CORETYPE=\($0))" } ?? ""))
        if !lines.isEmpty {
            print("targets of issue 3 that this run measures:")
            lines.forEach { print($0) }
        }

        // Issue 4: set on a Zen 5 (AVX-512 with AVX512-BF16), single thread. f16_gemm 1024^3 at 1.05x means the fp32
        // FMA peak (the same FMAs as sgemm, half the weight bytes); bf16's 1.6x needs vdpbf16ps (2 products per lane
        // and instruction). Elsewhere the AVX2 kernels run (fp16: vcvtph2ps + vfmadd231ps; bf16: widened to fp32).
        lines = []
        func kernelNote(_ r: BenchResult?, needs: String, label: String) -> String {
            guard let r, !(r.notes ?? "").contains(needs) else { return "" }
            return "(\(label) target; kernel here: \(r.notes?.split(separator: " ").last.map(String.init) ?? r.isa))"
        }
        let f1024 = find("f16_gemm", 1024, 1024, 1024), b1024 = find("bf16_gemm", 1024, 1024, 1024)
        target("f16_gemm 1024^3, 1 thread, \(vsCore)", f1024?.speedup, 1.05,
               [kernelNote(f1024, needs: "avx512", label: "an AVX-512"), forcedCore].filter { !$0.isEmpty }
                .joined(separator: " "))
        target("f16_gemm M=1 N=K=8192, 1 thread, \(vsCore)", find("f16_gemm", 1, 8192, 8192)?.speedup, 2.0)
        target("bf16_gemm 1024^3, 1 thread, \(vsCore)", b1024?.speedup, 1.6,
               [kernelNote(b1024, needs: "avx512bf16", label: "an AVX512-BF16"), forcedCore].filter { !$0.isEmpty }
                .joined(separator: " "))
        if !lines.isEmpty {
            print("targets of issue 4 that this run measures:")
            lines.forEach { print($0) }
        }
        let int8 = gemm.filter { !$0.kernel.hasPrefix("f16") && !$0.kernel.hasPrefix("bf16") }
        if !int8.isEmpty && Set(int8.map(\.isa)) == ["avx2"] {
            print("note: ISA level avx2 for every int8 GEMM row: on this CPU that is also the forced-AVX2 path "
                  + "(QUANTKIT_ISA=avx2); issue 3 compares it with OpenBLAS's Haswell kernel: run with "
                  + "OPENBLAS_CORETYPE=Haswell.")
        }
    }

    private func line(_ cells: [String]) -> String {
        zip(cells, columns).map { cell, column in
            let pad = max(0, column.width - cell.count)
            // Text left-aligned, numbers right-aligned.
            return cell.first.map { $0.isNumber || $0 == "-" } == true && column.title != "kernel"
                && column.title != "shape" ? String(repeating: " ", count: pad) + cell
                : cell + String(repeating: " ", count: pad)
        }.joined(separator: "  ")
    }
}

// ------------------------------------------------------------------------------------------------ JSON

/// {"machine": {...}, "results": [...]}, keys in a fixed order, null for absent machine values.
struct JSONReporter: Reporter {
    let path: String

    func report(machine: MachineInfo, results: [BenchResult]) throws {
        let document: JSON = .object([
            ("machine", .object([
                ("cpu", .string(machine.cpu)),
                ("isa", .string(machine.isa)),
                ("cpu_features", .array(machine.cpuFeatures.map(JSON.string))),
                ("thread_backend", .string(machine.threadBackend)),
                ("max_threads", .number(Double(machine.maxThreads))),
                ("openblas_core", .string(machine.openblasCore)),
                ("openblas_coretype_env", machine.openblasCoretypeEnv.map(JSON.string) ?? .null),
                ("openblas_l2_size_env", machine.openblasL2SizeEnv.map(JSON.string) ?? .null),
                ("quantkit_version", .string(machine.quantkitVersion)),
                ("date", .string(machine.date)),
            ])),
            ("results", .array(results.map(Self.result))),
        ])
        let url = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try (document.render() + "\n").write(to: url, atomically: true, encoding: .utf8)
    }

    static func result(_ r: BenchResult) -> JSON {
        var fields: [(String, JSON)] = [
            ("kernel", .string(r.kernel)),
            ("shape", .string(r.shape)),
        ]
        if let g = r.gemm {
            fields += [("m", .number(Double(g.m))), ("n", .number(Double(g.n))), ("k", .number(Double(g.k)))]
        }
        if let c = r.conv {
            let geometry: [(String, Int)] = [("channels", c.channels), ("in_h", c.size), ("in_w", c.size),
                                             ("kernel_size", ConvData.kernelSize), ("stride", c.stride),
                                             ("padding", ConvData.padding)]
            fields += geometry.map { ($0.0, JSON.number(Double($0.1))) }
        }
        fields += [
            ("threads", .number(Double(r.threads))),
            ("isa", .string(r.isa)),
            ("median_s", .number(r.medianSeconds)),
            ("throughput", .number(r.throughput)),
            ("unit", .string(r.unit.rawValue)),
            ("work", .number(r.work)),
            ("repetitions", .number(Double(r.measurement.samples.count))),
            ("calls_per_sample", .number(Double(r.measurement.callsPerSample))),
            ("samples_s", .array(r.measurement.samples.map(JSON.number))),
        ]
        if r.conv != nil {
            fields.append(("median_us", .number(r.medianSeconds * 1e6)))
            if let bm = r.baselineMeasurement { fields.append(("baseline_median_us", .number(bm.median * 1e6))) }
        }
        if let name = r.baselineName, let bm = r.baselineMeasurement {
            fields.append(("baseline", .string(name)))
            fields.append(("baseline_median_s", .number(bm.median)))
            fields.append(("baseline_samples_s", .array(bm.samples.map(JSON.number))))
            if let w = r.baselineWork { fields.append(("baseline_work", .number(w))) }
            if let t = r.baselineThroughput { fields.append(("baseline_throughput", .number(t))) }
            fields.append(("baseline_unit", .string((r.baselineUnit ?? r.unit).rawValue)))
            if let s = r.speedup { fields.append(("speedup", .number(s))) }
            if let b = r.bandwidthVsMemcpy { fields.append(("bandwidth_vs_memcpy", .number(b))) }
        }
        if let notes = r.notes { fields.append(("notes", .string(notes))) }
        return .object(fields)
    }
}

/// A minimal JSON value with ordered keys (JSONEncoder would sort them or drop nulls).
indirect enum JSON {
    case null
    case string(String)
    case number(Double)
    case array([JSON])
    case object([(String, JSON)])

    func render(indent: String = "") -> String {
        let inner = indent + "  "
        switch self {
        case .null: return "null"
        case .string(let s): return Self.quote(s)
        case .number(let v):
            guard v.isFinite else { return "null" }
            if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
            return "\(v)"
        case .array(let items):
            if items.isEmpty { return "[]" }
            // Arrays of scalars stay on one line.
            if items.allSatisfy({ if case .object = $0 { return false }; if case .array = $0 { return false }; return true }) {
                return "[" + items.map { $0.render() }.joined(separator: ", ") + "]"
            }
            return "[\n" + items.map { inner + $0.render(indent: inner) }.joined(separator: ",\n") + "\n\(indent)]"
        case .object(let fields):
            if fields.isEmpty { return "{}" }
            return "{\n" + fields.map { "\(inner)\(Self.quote($0.0)): \($0.1.render(indent: inner))" }
                .joined(separator: ",\n") + "\n\(indent)}"
        }
    }

    static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20: out += String(format: "\\u%04x", u.value)
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }
}
