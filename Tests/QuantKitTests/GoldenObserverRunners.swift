import QuantKit
import XCTest

/// Golden runners for observers.json: each case builds the observer from `args`, feeds `batches` in order and
/// compares `calculateQParams()` with PyTorch's: zero points exactly, scales within 1e-6 relative (HistogramObserver:
/// 1e-4), the golden README's tolerances; and min_val / max_val exactly (the running statistics PyTorch keeps).
extension GoldenConformanceTests {
    static let observerKinds = ["MinMaxObserver", "MovingAverageMinMaxObserver", "PerChannelMinMaxObserver",
                                "MovingAveragePerChannelMinMaxObserver", "HistogramObserver"]

    static func makeObserver(_ goldenCase: GoldenCase) throws -> any Observer {
        let args = try goldenCase.field("args")
        func string(_ key: String) throws -> String {
            guard let text = args[key]?.stringValue else { throw Mismatch(description: "args.\(key) is missing") }
            return text
        }
        guard let dtype = QuantizedDType(rawValue: try string("dtype")) else {
            throw Mismatch(description: "unknown dtype \(try string("dtype"))")
        }
        guard let qscheme = QScheme(rawValue: try string("qscheme")) else {
            throw Mismatch(description: "unknown qscheme \(try string("qscheme"))")
        }
        var reduceRange = false
        if case .bool(let value)? = args["reduce_range"] { reduceRange = value }
        // Python floats: PyTorch multiplies fp32 tensors by them as fp32.
        let constant = try args["averaging_constant"].map { Float(try $0.float()) } ?? 0.01
        let axis = try args["ch_axis"]?.int() ?? 0
        switch goldenCase.kind {
        case "MinMaxObserver":
            return try MinMaxObserver(dtype: dtype, qscheme: qscheme, reduceRange: reduceRange)
        case "MovingAverageMinMaxObserver":
            return try MovingAverageMinMaxObserver(averagingConstant: constant, dtype: dtype, qscheme: qscheme,
                                                   reduceRange: reduceRange)
        case "PerChannelMinMaxObserver":
            return try PerChannelMinMaxObserver(chAxis: axis, dtype: dtype, qscheme: qscheme, reduceRange: reduceRange)
        case "MovingAveragePerChannelMinMaxObserver":
            return try MovingAveragePerChannelMinMaxObserver(averagingConstant: constant, chAxis: axis, dtype: dtype,
                                                             qscheme: qscheme, reduceRange: reduceRange)
        case "HistogramObserver":
            return try HistogramObserver(dtype: dtype, qscheme: qscheme, reduceRange: reduceRange)
        default:
            throw Mismatch(description: "no observer for \(goldenCase.kind)")
        }
    }

    /// The running statistics an observer keeps (PyTorch's min_val / max_val buffers).
    static func statistics(of observer: any Observer) -> (min: [Float], max: [Float])? {
        switch observer {
        case let o as MinMaxObserver: return ([o.minVal], [o.maxVal])
        case let o as MovingAverageMinMaxObserver: return ([o.minVal], [o.maxVal])
        case let o as PerChannelMinMaxObserver: return (o.minVal, o.maxVal)
        case let o as MovingAveragePerChannelMinMaxObserver: return (o.minVal, o.maxVal)
        case let o as HistogramObserver: return ([o.minVal], [o.maxVal])
        default: return nil
        }
    }

    /// Runs one case; returns the largest relative scale difference.
    @discardableResult
    static func observerResult(_ goldenCase: GoldenCase) throws -> Double {
        let observer = try makeObserver(goldenCase)
        guard let batches = try goldenCase.field("batches").arrayValue else {
            throw Mismatch(description: "batches is not an array")
        }
        for batch in batches {
            guard let shape = batch["shape"], let values = batch["x"] else {
                throw Mismatch(description: "a batch lacks shape or x")
            }
            try observer.observe(try Tensor(shape: try shape.ints(), scalars: try values.floats()))
        }
        let parameters = try observer.calculateQParams()
        let scales = try goldenCase.field("scale").floats(), zeroPoints = try goldenCase.field("zero_point").ints()
        guard parameters.zeroPoints == zeroPoints else {
            throw Mismatch(description: "zero points \(parameters.zeroPoints), PyTorch \(zeroPoints)")
        }
        guard parameters.scales.count == scales.count else {
            throw Mismatch(description: "\(parameters.scales.count) scales, PyTorch \(scales.count)")
        }
        let tolerance = goldenCase.kind == "HistogramObserver" ? 1e-4 : 1e-6
        var worst = 0.0
        for (ours, theirs) in zip(parameters.scales, scales) {
            let relative = abs(Double(ours) - Double(theirs)) / Double(theirs)
            worst = max(worst, relative)
            guard relative <= tolerance else {
                throw Mismatch(description: "scales \(parameters.scales), PyTorch \(scales) (tolerance \(tolerance))")
            }
        }
        if let stats = statistics(of: observer), let mins = goldenCase.fields["min_val"],
           let maxs = goldenCase.fields["max_val"] {
            let (expectedMin, expectedMax) = (try mins.floats(), try maxs.floats())
            guard stats.min == expectedMin && stats.max == expectedMax else {
                throw Mismatch(description: "min_val \(stats.min) max_val \(stats.max), PyTorch \(expectedMin) "
                               + "\(expectedMax)")
            }
        }
        if parameters.qscheme.isPerChannel {
            guard parameters.axis == (try goldenCase.field("args")["ch_axis"]?.int() ?? 0) else {
                throw Mismatch(description: "axis \(String(describing: parameters.axis))")
            }
        }
        return worst
    }

    @Sendable static func runObserver(_ goldenCase: GoldenCase) throws {
        try observerResult(goldenCase)
    }

    /// Beyond the tolerance: how many observer scales are bit for bit PyTorch's.
    func testObserverGoldenScalesExact() throws {
        let cases = try Self.cases().filter { Self.observerKinds.contains($0.kind) }
        guard !cases.isEmpty else { throw XCTSkip("no observer cases") }
        var exact = 0
        for goldenCase in cases where (try? Self.observerResult(goldenCase)) == 0 { exact += 1 }
        print("golden: observer cases with every scale bit-exact: \(exact) of \(cases.count)")
        XCTAssertEqual(exact, cases.count)
    }
}
