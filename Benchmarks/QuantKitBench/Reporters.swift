import Foundation

/// Output formats. Each reads the finished `BenchResult`s and the machine; none measures anything. (A chart, e.g.
/// an SVG bar chart of throughput and bandwidth_vs_memcpy per kernel and thread count, is one more of these.)
protocol Reporter {
    func report(machine: MachineInfo, results: [BenchResult]) throws
}

// ------------------------------------------------------------------------------------------------ table

/// The console table; rows are printed as they finish so that a long run shows progress.
struct TableReporter {
    let columns: [(title: String, width: Int)] = [
        ("kernel", 18), ("shape", 24), ("thr", 3), ("isa", 10), ("median ms", 10), ("throughput", 15),
        ("baseline", 15), ("vs memcpy", 9), ("speedup", 7),
    ]

    func header(machine: MachineInfo, config: BenchConfig, quick: Bool) {
        print("QuantKit \(machine.quantkitVersion) benchmark\(quick ? " (--quick)" : "")  \(machine.date)")
        print("CPU: \(machine.cpu)")
        print("ISA: \(machine.isa)   features: \(machine.cpuFeatures.joined(separator: " "))")
        print("threads: backend \(machine.threadBackend), max \(machine.maxThreads)")
        print("OpenBLAS core: \(machine.openblasCore)   OPENBLAS_CORETYPE=\(machine.openblasCoretypeEnv ?? "(unset)")")
        print("timing: median of \(config.repetitions) samples (each >= \(Int(config.minSampleSeconds * 1000)) ms, "
              + "after \(config.warmupCalls) warm-up calls); baseline interleaved, same thread count")
        print("")
        print(line(columns.map(\.title)))
        print(line(columns.map { String(repeating: "-", count: $0.width) }))
    }

    func row(_ r: BenchResult) {
        func f(_ v: Double?, _ digits: Int) -> String { v.map { String(format: "%.\(digits)f", $0) } ?? "-" }
        let baseline = r.baselineThroughput.map { "\(String(format: "%.2f", $0)) \(r.unit.rawValue)" }
        print(line([
            r.kernel, r.shape, "\(r.threads)", r.isa, f(r.medianSeconds * 1e3, 3),
            "\(String(format: "%.2f", r.throughput)) \(r.unit.rawValue)",
            baseline.map { "\($0)" } ?? "-", f(r.bandwidthVsMemcpy, 2), f(r.speedup, 2),
        ]))
    }

    func footer(results: [BenchResult]) {
        let single = results.filter { $0.threads == 1 }.compactMap(\.bandwidthVsMemcpy)
        if let worst = single.min() {
            print("")
            print("single-thread bandwidth_vs_memcpy: min \(String(format: "%.2f", worst)) (target >= 0.80)"
                  + "; baseline: memcpy of the kernel's larger stream (input, or output if larger),"
                  + " counted as read + write, same thread count")
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
            ("threads", .number(Double(r.threads))),
            ("isa", .string(r.isa)),
            ("median_s", .number(r.medianSeconds)),
            ("throughput", .number(r.throughput)),
            ("unit", .string(r.unit.rawValue)),
            ("work", .number(r.work)),
            ("repetitions", .number(Double(r.measurement.samples.count))),
            ("calls_per_sample", .number(Double(r.measurement.callsPerSample))),
        ]
        if let name = r.baselineName, let bm = r.baselineMeasurement {
            fields.append(("baseline", .string(name)))
            fields.append(("baseline_median_s", .number(bm.median)))
            if let w = r.baselineWork { fields.append(("baseline_work", .number(w))) }
            if let t = r.baselineThroughput { fields.append(("baseline_throughput", .number(t))) }
            if let s = r.speedup { fields.append(("speedup", .number(s))) }
            if let b = r.bandwidthVsMemcpy { fields.append(("bandwidth_vs_memcpy", .number(b))) }
        }
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
