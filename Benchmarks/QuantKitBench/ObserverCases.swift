import Foundation
import QuantKit

/// HistogramObserver (PyTorch 2.15's algorithm: 2048 bins, re-binning on range growth, L2 range search) on one
/// activation tensor of 1x64x56x56 fp32, through the Swift API.
///
/// `histogram_observe` is one `observe(x)` on an observer that has already seen x, so the range stays and the update
/// is one binning pass (the steady state of calibration); `histogram_qparams` is one `calculateQParams()` on that
/// histogram (the L2 search). The data is N(0, 1). Throughput counts the bytes read (x for observe, the histogram
/// for qparams); the figure of merit is the time per call, checked in the footer against the issue's targets, next
/// to PyTorch 2.15's times on this machine.
enum ObserverCases {
    static let shape = [1, 64, 56, 56]
    static let shapeName = "1x64x56x56"

    /// Kernel name -> (target µs, PyTorch 2.15 µs measured on this CPU).
    static let targets: [String: (target: Double, pytorch: Double)] = [
        "histogram_observe": (100, 400),
        "histogram_qparams": (500, 1800),
    ]

    static var all: [BenchmarkCase] {
        [
            BenchmarkCase(kernel: "histogram_observe", shape: shapeName, unit: .gigabytesPerSecond) { _ in
                let (observer, x) = try calibrated()
                return Instance(shape: shapeName, work: Double(x.count * 4), run: { try observer.observe(x) },
                                baseline: nil, notes: "HistogramObserver.observe, range unchanged")
            },
            BenchmarkCase(kernel: "histogram_qparams", shape: shapeName, unit: .gigabytesPerSecond) { _ in
                let (observer, _) = try calibrated()
                return Instance(shape: shapeName, work: Double(observer.bins * 4),
                                run: { _ = try observer.calculateQParams() }, baseline: nil,
                                notes: "HistogramObserver.calculateQParams, 2048 bins")
            },
        ]
    }

    /// A HistogramObserver that has seen x once, and x: N(0, 1) samples (Box-Muller on SplitMix64).
    static func calibrated() throws -> (HistogramObserver, Tensor<Float>) {
        let count = shape.reduce(1, *)
        var rng = SplitMix64(state: 0x5EED)
        var values = [Float]()
        values.reserveCapacity(count)
        while values.count < count {
            let u1 = Float(rng.next() >> 40) * 0x1p-24 + 0x1p-25, u2 = Float(rng.next() >> 40) * 0x1p-24
            let radius = (-2 * log(u1)).squareRoot()
            values.append(radius * cos(2 * Float.pi * u2))
            values.append(radius * sin(2 * Float.pi * u2))
        }
        let x = try Tensor(shape: shape, scalars: Array(values.prefix(count)))
        let observer = try HistogramObserver()
        try observer.observe(x)
        return (observer, x)
    }

    /// The footer lines: each row's time per call against the target and PyTorch's time.
    static func footer(results: [BenchResult]) {
        let rows = results.filter { targets[$0.kernel] != nil }
        guard !rows.isEmpty else { return }
        print("")
        print("HistogramObserver on \(shapeName) fp32 (N(0, 1)): time per call; PyTorch 2.15 on this machine: "
              + "observe 400 µs, calculate_qparams 1800 µs")
        for r in rows {
            guard let t = targets[r.kernel] else { continue }
            let us = r.medianSeconds * 1e6
            let label = "\(r.kernel) \(shapeName), \(r.threads) thread\(r.threads == 1 ? "" : "s")"
            var text = "  " + label.padding(toLength: 44, withPad: " ", startingAt: 0)
            text += String(format: "%8.1f µs  (target <= %.0f µs: ", us, t.target)
            text += (us <= t.target ? "met" : "NOT met") + String(format: "; %.1fx PyTorch's speed)", t.pytorch / us)
            print(text)
        }
    }
}
