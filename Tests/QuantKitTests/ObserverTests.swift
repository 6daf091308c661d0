import Dispatch
import Foundation
import QuantKit
import XCTest

/// The observers' options and edge cases as PyTorch 2.15 has them (verified values from the PyTorch notes), the
/// documented departures (NaN and infinities skipped), merging, Codable state and invalid combinations.
final class ObserverTests: XCTestCase {
    override func setUp() {
        super.setUp()
        addTeardownBlock {
            try Runtime.setISA(nil)
            try Runtime.setNumberOfThreads(nil)
        }
    }

    /// Deterministic N(mean, sigma) samples (Box-Muller on SplitMix64).
    static func normal(_ count: Int, mean: Float = 0, sigma: Float = 1, seed: UInt64) -> [Float] {
        var generator = SplitMix64(seed: seed)
        var values: [Float] = []
        values.reserveCapacity(count + 1)
        while values.count < count {
            let u1 = (Double(generator.next() >> 11) + 1) * 0x1p-53, u2 = Double(generator.next() >> 11) * 0x1p-53
            let radius = (-2 * Foundation.log(u1)).squareRoot()
            values.append(mean + sigma * Float(radius * Foundation.cos(2 * Double.pi * u2)))
            values.append(mean + sigma * Float(radius * Foundation.sin(2 * Double.pi * u2)))
        }
        return Array(values.prefix(count))
    }

    static func tensor(_ values: [Float]) -> Tensor<Float> { Tensor(values) }

    /// Every per-tensor observer kind, configured alike.
    static func perTensorObservers(dtype: QuantizedDType = .quint8, qscheme: QScheme = .perTensorAffine,
                                   reduceRange: Bool = false) throws -> [any Observer] {
        [try MinMaxObserver(dtype: dtype, qscheme: qscheme, reduceRange: reduceRange),
         try MovingAverageMinMaxObserver(dtype: dtype, qscheme: qscheme, reduceRange: reduceRange),
         try HistogramObserver(dtype: dtype, qscheme: qscheme, reduceRange: reduceRange),
         try PercentileObserver(dtype: dtype, qscheme: qscheme, reduceRange: reduceRange),
         try EntropyObserver(dtype: dtype, qscheme: qscheme, reduceRange: reduceRange)]
    }

    func assertThrowsQuantizationError(_ body: @autoclosure () throws -> Any, _ message: String = "",
                                       file: StaticString = #filePath, line: UInt = #line,
                                       _ check: (QuantizationError) -> Bool = { _ in true }) {
        XCTAssertThrowsError(try body(), message, file: file, line: line) { error in
            guard let error = error as? QuantizationError else {
                return XCTFail("expected a QuantizationError, got \(error)", file: file, line: line)
            }
            XCTAssertTrue(check(error), "unexpected error \(error)", file: file, line: line)
            XCTAssertFalse(error.description.isEmpty, file: file, line: line)
        }
    }

    // MARK: Options

    func testQuantizationRanges() throws {
        XCTAssertEqual(try MinMaxObserver().quantMin, 0)
        XCTAssertEqual(try MinMaxObserver().quantMax, 255)
        XCTAssertEqual(try MinMaxObserver(reduceRange: true).quantMax, 127)
        let qint8 = try MinMaxObserver(dtype: .qint8, reduceRange: true)
        XCTAssertEqual([qint8.quantMin, qint8.quantMax], [-64, 63])
        let qint32 = try MinMaxObserver(dtype: .qint32, reduceRange: true)   // PyTorch ignores it for qint32
        XCTAssertEqual([qint32.quantMin, qint32.quantMax], [Int(Int32.min), Int(Int32.max)])
        // Custom ranges, halved by reduceRange with Python's floor division: (0, 255) -> (0, 127) [V].
        let custom = try MinMaxObserver(reduceRange: true, quantMin: 0, quantMax: 255)
        XCTAssertEqual([custom.quantMin, custom.quantMax], [0, 127])
        let odd = try MinMaxObserver(dtype: .qint8, reduceRange: true, quantMin: -127, quantMax: 127)
        XCTAssertEqual([odd.quantMin, odd.quantMax], [-64, 63])
        // weight_observer_range_neg_127_to_127
        let weights = try MinMaxObserver(dtype: .qint8, qscheme: .perTensorSymmetric, quantMin: -127, quantMax: 127,
                                         eps: 0x1p-12)
        try weights.observe(Self.tensor([-1, 0.5]))
        XCTAssertEqual(try weights.calculateQParams().scale, 1 / Float(127))
        XCTAssertEqual(try weights.calculateQParams().zeroPoint, 0)
        // The observer protocol reports the range (FakeQuantize reads it).
        let asObserver: any Observer = custom
        XCTAssertEqual(asObserver.quantMax, 127)
        XCTAssertEqual((try FixedQParamsObserver.range0To1() as any Observer).quantMax, 255)
    }

    func testInvalidCombinationsThrow() throws {
        // Symmetric quint8 with reduce_range: PyTorch's NotImplementedError (every observer here).
        assertThrowsQuantizationError(try MinMaxObserver(qscheme: .perTensorSymmetric, reduceRange: true)) {
            if case .invalidOperand(let op, _) = $0 { return op == "MinMaxObserver" } else { return false }
        }
        assertThrowsQuantizationError(try MovingAverageMinMaxObserver(qscheme: .perTensorSymmetric, reduceRange: true))
        assertThrowsQuantizationError(try PerChannelMinMaxObserver(qscheme: .perChannelSymmetric, reduceRange: true))
        assertThrowsQuantizationError(try MovingAveragePerChannelMinMaxObserver(qscheme: .perChannelSymmetric,
                                                                                reduceRange: true))
        assertThrowsQuantizationError(try HistogramObserver(qscheme: .perTensorSymmetric, reduceRange: true))
        XCTAssertNoThrow(try MinMaxObserver(dtype: .qint8, qscheme: .perTensorSymmetric, reduceRange: true))
        // Schemes of the other granularity.
        assertThrowsQuantizationError(try MinMaxObserver(qscheme: .perChannelAffine)) {
            if case .qschemeMismatch(.perChannelAffine, _) = $0 { return true } else { return false }
        }
        assertThrowsQuantizationError(try HistogramObserver(qscheme: .perChannelSymmetric))
        assertThrowsQuantizationError(try PerChannelMinMaxObserver(qscheme: .perTensorAffine)) {
            if case .qschemeMismatch(.perTensorAffine, _) = $0 { return true } else { return false }
        }
        // Custom ranges as PyTorch validates them (must include 0, qmin < qmax), plus the dtype's range.
        assertThrowsQuantizationError(try MinMaxObserver(quantMin: 1, quantMax: 10))
        assertThrowsQuantizationError(try MinMaxObserver(dtype: .qint8, quantMin: -5, quantMax: -1))
        assertThrowsQuantizationError(try MinMaxObserver(quantMin: 0, quantMax: 0))
        assertThrowsQuantizationError(try MinMaxObserver(quantMin: 0, quantMax: 300))
        assertThrowsQuantizationError(try MinMaxObserver(dtype: .qint8, quantMin: -129, quantMax: 127))
        assertThrowsQuantizationError(try MinMaxObserver(quantMin: 0))
        assertThrowsQuantizationError(try MinMaxObserver(quantMax: 127))
        // eps, averaging constant, dynamic.
        for eps in [Float(0), -1, .nan, .infinity, 1e-40] {
            assertThrowsQuantizationError(try MinMaxObserver(eps: eps), "eps \(eps)")
        }
        assertThrowsQuantizationError(try MovingAverageMinMaxObserver(averagingConstant: 1.5))
        assertThrowsQuantizationError(try MovingAverageMinMaxObserver(averagingConstant: -0.1))
        assertThrowsQuantizationError(try MovingAveragePerChannelMinMaxObserver(averagingConstant: .nan))
        assertThrowsQuantizationError(try MovingAverageMinMaxObserver(averagingConstant: 0.5, isDynamic: true))
        XCTAssertTrue(try MovingAverageMinMaxObserver(averagingConstant: 1, isDynamic: true).isDynamic)
        // Histogram sizes and calibrator options.
        assertThrowsQuantizationError(try HistogramObserver(bins: 0))
        assertThrowsQuantizationError(try HistogramObserver(upsampleRate: 0))
        assertThrowsQuantizationError(try PercentileObserver(percentile: 100.5))
        assertThrowsQuantizationError(try PercentileObserver(percentile: -1))
        assertThrowsQuantizationError(try EntropyObserver(bins: 1))
        assertThrowsQuantizationError(try EntropyObserver(bins: 256, startBin: 300))
        // Fixed parameters.
        assertThrowsQuantizationError(try FixedQParamsObserver(scale: 0, zeroPoint: 0)) {
            if case .invalidScale = $0 { return true } else { return false }
        }
        assertThrowsQuantizationError(try FixedQParamsObserver(scale: 0.1, zeroPoint: 300))
        assertThrowsQuantizationError(try FixedQParamsObserver(scale: 0.1, zeroPoint: 3, qscheme: .perTensorSymmetric))
        assertThrowsQuantizationError(try FixedQParamsObserver(scale: 0.1, zeroPoint: 0, qscheme: .perChannelAffine))
    }

    // MARK: Edge cases

    func testUncalibratedObserversReturnPyTorchsDefault() throws {
        for observer in try Self.perTensorObservers() + Self.perTensorObservers(dtype: .qint8,
                                                                                qscheme: .perTensorSymmetric) {
            let p = try observer.calculateQParams()
            XCTAssertEqual(p.scales, [1], "\(observer)")
            XCTAssertEqual(p.zeroPoints, [0], "\(observer)")
            XCTAssertNil(p.axis)
        }
        // quint8 symmetric: PyTorch's (1.0, 0) is not symmetric for quint8, so the parameters are reported affine
        // and stay usable.
        let symmetric = try MinMaxObserver(qscheme: .perTensorSymmetric)
        XCTAssertEqual(try symmetric.calculateQParams().qscheme, .perTensorAffine)
        XCTAssertNoThrow(try Self.tensor([1, 2]).quantized(with: try symmetric.calculateQParams()))
        // Per channel: one (1.0, 0), as PyTorch returns it.
        for observer in [try PerChannelMinMaxObserver(chAxis: 1) as any Observer,
                         try MovingAveragePerChannelMinMaxObserver(chAxis: 1)] {
            let p = try observer.calculateQParams()
            XCTAssertEqual(p.scales, [1])
            XCTAssertEqual(p.zeroPoints, [0])
            XCTAssertEqual(p.axis, 1)
        }
    }

    func testEmptyBatchesAreIgnored() throws {
        let empty = try Tensor<Float>(zeros: [0, 3])
        for observer in try Self.perTensorObservers() {
            try observer.observe(empty)
            XCTAssertEqual(try observer.calculateQParams().scales, [1], "\(observer)")
            try observer.observe(Self.tensor([-1, 2]))
            let before = try observer.calculateQParams()
            try observer.observe(empty)
            XCTAssertEqual(try observer.calculateQParams(), before, "\(observer)")
        }
        let perChannel = try PerChannelMinMaxObserver(chAxis: 1)
        try perChannel.observe(empty)
        XCTAssertTrue(perChannel.minVal.isEmpty)
        try perChannel.observe(try Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6]))
        try perChannel.observe(empty)
        XCTAssertEqual(perChannel.minVal, [1, 2, 3])
    }

    func testConstantAndZeroData() throws {
        // PyTorch [V]: all zeros -> scale eps, zero point qmin; constant 3 -> 3/255, 0; constant -3 -> zero point 255.
        for observer in try Self.perTensorObservers() where !(observer is EntropyObserver) {
            observer.reset()
            try observer.observe(try Tensor(repeating: 0, shape: [64]))
            XCTAssertEqual(try observer.calculateQParams().scale, .ulpOfOne, "\(observer)")
            XCTAssertEqual(try observer.calculateQParams().zeroPoint, 0, "\(observer)")
            observer.reset()
            try observer.observe(try Tensor(repeating: 3, shape: [64]))
            XCTAssertEqual(try observer.calculateQParams().scale, 3 / Float(255), "\(observer)")
            XCTAssertEqual(try observer.calculateQParams().zeroPoint, 0, "\(observer)")
            observer.reset()
            try observer.observe(try Tensor(repeating: -3, shape: [64]))
            XCTAssertEqual(try observer.calculateQParams().zeroPoint, 255, "\(observer)")
        }
        let qint8 = try MinMaxObserver(dtype: .qint8)
        try qint8.observe(try Tensor(repeating: 0, shape: [5]))
        XCTAssertEqual(try qint8.calculateQParams().zeroPoint, -128)
        // The entropy calibrator of all-zero data: threshold 0, so scale eps.
        let entropy = try EntropyObserver()
        try entropy.observe(try Tensor(repeating: 0, shape: [64]))
        XCTAssertEqual(try entropy.calculateQParams().scale, .ulpOfOne)
    }

    func testInfinitiesAreDroppedAndNaNSkipped() throws {
        let clean = Self.normal(5000, seed: 3)
        var dirty = clean
        dirty.insert(contentsOf: [.infinity, -.infinity, .nan, -.nan], at: 100)
        for (a, b) in zip(try Self.perTensorObservers(), try Self.perTensorObservers()) {
            try a.observe(Self.tensor(clean))
            try b.observe(Self.tensor(dirty))
            try b.observe(Self.tensor([.nan, .infinity]))   // nothing finite: no change
            XCTAssertEqual(try a.calculateQParams(), try b.calculateQParams(), "\(a)")
        }
        let minMax = try MinMaxObserver()
        try minMax.observe(Self.tensor([.nan, 1, .infinity, 2, -.infinity]))
        XCTAssertEqual([minMax.minVal, minMax.maxVal], [1, 2])
        // A channel with no finite value gets the range [0, 0]: scale eps, zero point qmin.
        let perChannel = try PerChannelMinMaxObserver(chAxis: 0, dtype: .qint8)
        try perChannel.observe(try Tensor(shape: [2, 2], scalars: [.nan, .infinity, -1, 1]))
        let p = try perChannel.calculateQParams()
        XCTAssertEqual(p.scales[0], .ulpOfOne)
        XCTAssertEqual(p.zeroPoints[0], -128)
        XCTAssertEqual(p.scales[1], 2 / Float(255))
    }

    func testSymmetricSchemes() throws {
        let x = Self.tensor([-2.5, 0.5, 1.75])
        let qint8 = try MinMaxObserver(dtype: .qint8, qscheme: .perTensorSymmetric)
        try qint8.observe(x)
        XCTAssertEqual(try qint8.calculateQParams(),
                       QuantizationParameters(scale: 2.5 / 127.5, zeroPoint: 0, dtype: .qint8,
                                              qscheme: .perTensorSymmetric))
        let quint8 = try MinMaxObserver(qscheme: .perTensorSymmetric)
        try quint8.observe(x)
        XCTAssertEqual(try quint8.calculateQParams().zeroPoint, 128)
        // A custom quint8 range: the midpoint (0..127 -> 63 [V]), reported affine for quantized(with:).
        let custom = try MinMaxObserver(qscheme: .perTensorSymmetric, quantMin: 0, quantMax: 127)
        try custom.observe(x)
        let p = try custom.calculateQParams()
        XCTAssertEqual(p.zeroPoint, 63)
        XCTAssertEqual(p.scale, 2.5 / 63.5)
        XCTAssertEqual(p.qscheme, .perTensorAffine)
        XCTAssertNoThrow(try x.quantized(with: p))
        // Affine zero point: qmin - round(min / scale), half to even, clamped.
        let affine = try MinMaxObserver(dtype: .qint8)
        try affine.observe(x)
        let scale = Float(4.25) / 255
        XCTAssertEqual(try affine.calculateQParams().scale, scale)
        let steps = Int((Float(-2.5) / scale).rounded(.toNearestOrEven))
        XCTAssertEqual(try affine.calculateQParams().zeroPoint, -128 - steps)
    }

    func testMovingAverages() throws {
        let observer = try MovingAverageMinMaxObserver(averagingConstant: 0.25)
        try observer.observe(Self.tensor([-1, 1]))
        XCTAssertEqual([observer.minVal, observer.maxVal], [-1, 1])   // the first batch sets the range
        try observer.observe(Self.tensor([-3, 5]))
        XCTAssertEqual([observer.minVal, observer.maxVal], [-1.5, 2])
        try observer.observe(Self.tensor([.nan]))                       // skipped
        XCTAssertEqual([observer.minVal, observer.maxVal], [-1.5, 2])
        observer.reset()
        XCTAssertEqual(try observer.calculateQParams().scales, [1])
        // Per channel: a channel without a finite value keeps its state; its first finite batch sets it.
        let perChannel = try MovingAveragePerChannelMinMaxObserver(averagingConstant: 0.5, chAxis: 1)
        try perChannel.observe(try Tensor(shape: [1, 2], scalars: [2, .nan]))
        try perChannel.observe(try Tensor(shape: [1, 2], scalars: [4, 7]))
        XCTAssertEqual(perChannel.minVal, [3, 7])
        XCTAssertEqual(perChannel.maxVal, [3, 7])
    }

    func testPerChannelAxesAndShapes() throws {
        let x = try Tensor(shape: [2, 3, 2], scalars: (0..<12).map { Float($0) - 5 })
        let last = try PerChannelMinMaxObserver(chAxis: -1, dtype: .qint8, qscheme: .perChannelSymmetric)
        try last.observe(x)
        XCTAssertEqual(last.minVal, [-5, -4])
        XCTAssertEqual(last.maxVal, [5, 6])
        let p = try last.calculateQParams()
        XCTAssertEqual(p.axis, 2)
        XCTAssertEqual(p.scales, [5 / 127.5, 6 / 127.5])
        XCTAssertNoThrow(try x.quantized(with: p))
        let middle = try PerChannelMinMaxObserver(chAxis: 1)
        try middle.observe(x)
        XCTAssertEqual(middle.minVal, [-5, -3, -1])
        XCTAssertEqual(middle.maxVal, [2, 4, 6])
        // A different channel count, an axis the tensor lacks, a scalar.
        let fourChannels = try Tensor(shape: [2, 4], scalars: Array(repeating: Float(1), count: 8))
        assertThrowsQuantizationError(try middle.observe(fourChannels)) {
            if case .invalidOperand = $0 { return true } else { return false }
        }
        assertThrowsQuantizationError(try PerChannelMinMaxObserver(chAxis: 3).observe(x)) {
            if case .axisOutOfRange(3, 3) = $0 { return true } else { return false }
        }
        assertThrowsQuantizationError(try PerChannelMinMaxObserver().observe(Tensor<Float>([5]).reshaped(to: [])))
    }

    func testHistogramRangeGrowthKeepsTheMass() throws {
        let observer = try HistogramObserver()
        try observer.observe(try Tensor(repeating: 1, shape: [10]))   // a single value first
        XCTAssertEqual([observer.minVal, observer.maxVal], [1, 1])
        try observer.observe(Self.tensor(Self.normal(1000, seed: 5)))
        try observer.observe(Self.tensor(Self.normal(1000, mean: 5, sigma: 3, seed: 6)))
        XCTAssertEqual(observer.histogram.reduce(0, +), 2010, accuracy: 1e-3)
        XCTAssertEqual(observer.bins, 2048)
        XCTAssertEqual(observer.dstBins, 256)
        let p = try observer.calculateQParams()
        XCTAssertGreaterThan(p.scale, 0)
        // The L2 search trims an outlier that min/max keeps (when clipping it costs less than the coarser steps).
        let minMax = try MinMaxObserver(), histogram = try HistogramObserver()
        var data = Self.normal(200_000, seed: 7)
        data[0] = 8
        try minMax.observe(Self.tensor(data))
        try histogram.observe(Self.tensor(data))
        XCTAssertLessThan(try histogram.calculateQParams().scale, try minMax.calculateQParams().scale * 0.9)
    }

    func testPercentileFollowsONNXRuntime() throws {
        // 10,000 evenly spread values in [-1, 1): the 99th percentile range cuts 0.5% at each end.
        let values = (0..<10_000).map { Float($0) / 5_000 - 1 }
        let observer = try PercentileObserver(percentile: 99, bins: 2048)
        try observer.observe(Self.tensor(values))
        let p = try observer.calculateQParams()
        XCTAssertEqual(p.scale * 255, 1.98, accuracy: 0.003)
        XCTAssertEqual(Float(p.zeroPoint), 127.5, accuracy: 1)
        // Symmetric: a histogram of |x| and the range [-t, t], clamped to the data (so [min, t] here).
        let symmetric = try PercentileObserver(percentile: 99, dtype: .qint8, qscheme: .perTensorSymmetric)
        try symmetric.observe(Self.tensor(values))
        XCTAssertEqual(try symmetric.calculateQParams().scale * 127.5, 0.99, accuracy: 0.002)
        XCTAssertEqual(try symmetric.calculateQParams().zeroPoint, 0)
        XCTAssertEqual(symmetric.minVal, -1)
        // 100: the whole range (up to the left edge of the last bin, clamped to the data).
        let all = try PercentileObserver(percentile: 100)
        try all.observe(Self.tensor(values.map { $0 + 1 }))
        XCTAssertEqual(try all.calculateQParams().scale * 255, 1.9998, accuracy: 0.002)
    }

    func testEntropyFollowsTensorRT() throws {
        var data = Self.normal(100_000, seed: 8)
        data[0] = 20
        let observer = try EntropyObserver()   // qint8 symmetric, 128 levels
        try observer.observe(Self.tensor(data))
        let p = try observer.calculateQParams()
        let threshold = p.scale * 127.5
        XCTAssertGreaterThan(threshold, 2.5)
        XCTAssertLessThan(threshold, 6)
        XCTAssertEqual(p.zeroPoint, 0)
        // Non-negative data under an affine scheme: TensorRT's unsigned case, the range [0, t].
        let relu = try EntropyObserver(dtype: .quint8, qscheme: .perTensorAffine)
        try relu.observe(Self.tensor(data.map { Swift.max($0, 0) }))
        let q = try relu.calculateQParams()
        XCTAssertEqual(q.zeroPoint, 0)
        XCTAssertLessThan(q.scale * 255, 6)
    }

    // MARK: Merging

    /// Shards of one data set: merging per-shard observers equals observing everything (min/max exactly).
    func testMinMaxMergeEqualsObservingTheWhole() throws {
        let data = Self.normal(30_000, seed: 9)
        let shards = stride(from: 0, to: data.count, by: 7_000).map {
            Array(data[$0..<Swift.min($0 + 7_000, data.count)])
        }
        for (dtype, qscheme) in [(QuantizedDType.quint8, QScheme.perTensorAffine), (.qint8, .perTensorSymmetric)] {
            let whole = try MinMaxObserver(dtype: dtype, qscheme: qscheme)
            try whole.observe(Self.tensor(data))
            // Calibrated on concurrent threads, merged in shard order.
            nonisolated(unsafe) let parts = try shards.map { _ in try MinMaxObserver(dtype: dtype, qscheme: qscheme) }
            DispatchQueue.concurrentPerform(iterations: shards.count) { i in
                try! parts[i].observe(Self.tensor(shards[i]))
            }
            let merged = try MinMaxObserver(dtype: dtype, qscheme: qscheme)
            try merged.merge(contentsOf: parts)
            XCTAssertEqual([merged.minVal, merged.maxVal], [whole.minVal, whole.maxVal])
            XCTAssertEqual(try merged.calculateQParams(), try whole.calculateQParams())
        }
        assertThrowsQuantizationError(try MinMaxObserver().merge(try MinMaxObserver(dtype: .qint8))) {
            if case .invalidOperand = $0 { return true } else { return false }
        }
    }

    func testPerChannelMergeEqualsObservingTheWhole() throws {
        let data = Self.normal(4 * 3 * 50, seed: 10)
        let whole = try PerChannelMinMaxObserver(chAxis: 1, dtype: .qint8, qscheme: .perChannelSymmetric)
        try whole.observe(try Tensor(shape: [4, 3, 50], scalars: data))
        var parts: [PerChannelMinMaxObserver] = []
        for b in 0..<4 {   // shards along the batch axis
            let part = try PerChannelMinMaxObserver(chAxis: 1, dtype: .qint8, qscheme: .perChannelSymmetric)
            try part.observe(try Tensor(shape: [1, 3, 50], scalars: Array(data[b * 150..<(b + 1) * 150])))
            parts.append(part)
        }
        let merged = try PerChannelMinMaxObserver(chAxis: 1, dtype: .qint8, qscheme: .perChannelSymmetric)
        try merged.merge(contentsOf: [try PerChannelMinMaxObserver(chAxis: 1, dtype: .qint8,
                                                                   qscheme: .perChannelSymmetric)] + parts)
        XCTAssertEqual(merged.minVal, whole.minVal)
        XCTAssertEqual(merged.maxVal, whole.maxVal)
        XCTAssertEqual(try merged.calculateQParams(), try whole.calculateQParams())
        let other = try PerChannelMinMaxObserver(chAxis: 1, dtype: .qint8, qscheme: .perChannelSymmetric)
        try other.observe(try Tensor(shape: [1, 4], scalars: [1, 2, 3, 4]))
        assertThrowsQuantizationError(try merged.merge(other))
        assertThrowsQuantizationError(try merged.merge(try PerChannelMinMaxObserver(chAxis: 0, dtype: .qint8,
                                                                                      qscheme: .perChannelSymmetric)))
    }

    /// Shards that share a range (each holds the global extremes): the histograms add exactly, so the merged
    /// observer is the one that saw all the data. Otherwise merging re-bins as observing a wider batch does.
    func testHistogramMergeEqualsObservingTheWhole() throws {
        var data = Self.normal(40_000, seed: 11)
        let (lo, hi) = (data.min()!, data.max()!)
        let shards = (0..<4).map { i -> [Float] in [lo, hi] + data[(i * 10_000)..<((i + 1) * 10_000)] }
        data = shards.flatMap { $0 }
        func make() throws -> [any MergeableObserver] {
            [try HistogramObserver(reduceRange: true), try PercentileObserver(percentile: 99.9),
             try EntropyObserver(), try HistogramObserver(dtype: .qint8, qscheme: .perTensorSymmetric)]
        }
        let wholes = try make()
        for w in wholes { try w.observe(Self.tensor(data)) }
        nonisolated(unsafe) let partSets = try shards.map { _ in try make() }
        DispatchQueue.concurrentPerform(iterations: shards.count) { i in
            for observer in partSets[i] { try! observer.observe(Self.tensor(shards[i])) }
        }
        for k in wholes.indices {
            let merged = try Self.merge(partSets.map { $0[k] })
            XCTAssertEqual(try merged.calculateQParams(), try wholes[k].calculateQParams(), "\(merged)")
            if let m = merged as? HistogramObserver, let w = wholes[k] as? HistogramObserver {
                XCTAssertEqual(m.histogram, w.histogram)
                XCTAssertEqual([m.minVal, m.maxVal], [w.minVal, w.maxVal])
            }
        }
    }

    /// Opens the existential to merge observers of one concrete type.
    static func merge(_ observers: [any MergeableObserver]) throws -> any MergeableObserver {
        func merged<O: MergeableObserver>(_ first: O) throws -> O {
            try first.merge(contentsOf: observers.dropFirst().map { $0 as! O })
            return first
        }
        return try merged(observers[0])
    }

    func testHistogramMergeRebinsAsObservingDoes() throws {
        let a = Self.normal(3000, seed: 12), b = Self.normal(5000, mean: 1, sigma: 3, seed: 13)
        let sequential = try HistogramObserver(), first = try HistogramObserver(), second = try HistogramObserver()
        try sequential.observe(Self.tensor(a))
        try sequential.observe(Self.tensor(b))
        try first.observe(Self.tensor(a))
        try second.observe(Self.tensor(b))
        XCTAssertTrue(second.minVal <= first.minVal && second.maxVal >= first.maxVal)
        try first.merge(second)
        XCTAssertEqual(first.histogram, sequential.histogram)
        XCTAssertEqual(try first.calculateQParams(), try sequential.calculateQParams())
        // Shards with different ranges: all the mass is kept, and the result depends only on the shard order.
        let shards = (0..<5).map { Self.normal(2000, mean: Float($0), seed: 20 + UInt64($0)) }
        func mergedShards() throws -> HistogramObserver {
            let parts = try shards.map { s -> HistogramObserver in
                let o = try HistogramObserver()
                try o.observe(Self.tensor(s))
                return o
            }
            let total = try HistogramObserver()
            try total.merge(contentsOf: parts)
            return total
        }
        let m1 = try mergedShards(), m2 = try mergedShards()
        XCTAssertEqual(m1.histogram, m2.histogram)
        XCTAssertEqual(m1.histogram.reduce(0, +), 10_000, accuracy: 1e-2)
        let whole = try HistogramObserver()
        try whole.observe(Self.tensor(shards.flatMap { $0 }))
        XCTAssertEqual([m1.minVal, m1.maxVal], [whole.minVal, whole.maxVal])
        let wholeScale = try whole.calculateQParams().scale
        XCTAssertEqual(try m1.calculateQParams().scale, wholeScale, accuracy: 0.02 * wholeScale)
        assertThrowsQuantizationError(try m1.merge(try HistogramObserver(bins: 1024)))
    }

    // MARK: Codable

    func testCodableRoundTripKeepsStateAndResults() throws {
        let data = Self.normal(3000, seed: 14)
        let x = try Tensor(shape: [3, 1000], scalars: data)
        let y = try Tensor(shape: [3, 1000], scalars: data.map { $0 * 2 + 1 })
        let observers: [any Observer & Codable] = [
            try MinMaxObserver(dtype: .qint8, qscheme: .perTensorSymmetric, quantMin: -127, quantMax: 127),
            try MovingAverageMinMaxObserver(averagingConstant: 0.3, reduceRange: true),
            try PerChannelMinMaxObserver(chAxis: 0, dtype: .qint8, qscheme: .perChannelSymmetric),
            try MovingAveragePerChannelMinMaxObserver(averagingConstant: 0.1, chAxis: -2),
            try HistogramObserver(bins: 512, reduceRange: true),
            try PercentileObserver(percentile: 99.5, qscheme: .perTensorSymmetric, eps: 1e-6),
            try EntropyObserver(bins: 1024, startBin: 64),
            try FixedQParamsObserver.rangeNeg1To1(),
        ]
        for observer in observers { try Self.checkRoundTrip(observer, x: x, y: y) }
        let placeholder = PlaceholderObserver.dynamicQuantization()
        let restored = try JSONDecoder().decode(PlaceholderObserver.self, from: try JSONEncoder().encode(placeholder))
        XCTAssertEqual(restored.dtype, .quint8)
        XCTAssertTrue(restored.isDynamic)
        let noop = try JSONDecoder().decode(NoopObserver.self, from: try JSONEncoder().encode(NoopObserver()))
        XCTAssertEqual(noop.dtype, .float16)
    }

    static func encode(_ value: some Encodable) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return try encoder.encode(value)
    }

    /// Uncalibrated, then calibrated: the restored observer answers the same and goes on the same.
    static func checkRoundTrip<T: Observer & Codable>(_ observer: T, x: Tensor<Float>, y: Tensor<Float>) throws {
        for calibrate in [false, true] {
            if calibrate { try observer.observe(x) }
            let data = try encode(observer)
            let restored = try JSONDecoder().decode(T.self, from: data)
            XCTAssertEqual(try restored.calculateQParams(), try observer.calculateQParams(), "\(observer)")
            XCTAssertEqual(String(describing: restored), String(describing: observer))
            XCTAssertEqual(try encode(restored), data, "\(observer)")
            try restored.observe(y)
            try observer.observe(y)
            XCTAssertEqual(try restored.calculateQParams(), try observer.calculateQParams(), "\(observer)")
            XCTAssertEqual(try encode(restored), try encode(observer), "\(observer)")
        }
    }

    func testCorruptArchivesAreRejected() throws {
        func json(_ observer: some Encodable) throws -> [String: Any] {
            try JSONSerialization.jsonObject(with: try JSONEncoder().encode(observer)) as! [String: Any]
        }
        func decodes<T: Decodable>(_ type: T.Type, _ object: [String: Any]) -> Bool {
            (try? JSONDecoder().decode(type, from: try JSONSerialization.data(withJSONObject: object))) != nil
        }
        let minMax = try MinMaxObserver()
        try minMax.observe(Self.tensor([1, 2]))
        var object = try json(minMax)
        XCTAssertTrue(decodes(MinMaxObserver.self, object))
        object["minVal"] = 3   // min > max
        XCTAssertFalse(decodes(MinMaxObserver.self, object))
        object = try json(minMax)
        object.removeValue(forKey: "maxVal")
        XCTAssertFalse(decodes(MinMaxObserver.self, object))
        object = try json(minMax)
        var configuration = object["configuration"] as! [String: Any]
        configuration["qscheme"] = "per_tensor_symmetric"
        configuration["reduceRange"] = true
        object["configuration"] = configuration
        XCTAssertFalse(decodes(MinMaxObserver.self, object))   // symmetric quint8 with reduce_range
        configuration["qscheme"] = "per_channel_affine"
        configuration["reduceRange"] = false
        object["configuration"] = configuration
        XCTAssertFalse(decodes(MinMaxObserver.self, object))
        let histogram = try HistogramObserver(bins: 4)
        try histogram.observe(Self.tensor([1, 2, 3]))
        object = try json(histogram)
        var state = object["state"] as! [String: Any]
        state["histogram"] = [1, -1, 0, 1]
        object["state"] = state
        XCTAssertFalse(decodes(HistogramObserver.self, object))
        state["histogram"] = [1, 1, 0, 1]
        object["state"] = state
        XCTAssertTrue(decodes(HistogramObserver.self, object))
        object["upsampleRate"] = 0
        XCTAssertFalse(decodes(HistogramObserver.self, object))
        let moving = try MovingAverageMinMaxObserver()
        object = try json(moving)
        object["averagingConstant"] = 2
        XCTAssertFalse(decodes(MovingAverageMinMaxObserver.self, object))
        let fixed = try json(FixedQParamsObserver.range0To1())
        var badFixed = fixed
        badFixed["scale"] = -1
        XCTAssertTrue(decodes(FixedQParamsObserver.self, fixed))
        XCTAssertFalse(decodes(FixedQParamsObserver.self, badFixed))
    }

    // MARK: The other observers

    func testFixedPlaceholderAndNoopObservers() throws {
        let zeroToOne = FixedQParamsObserver.range0To1(), minusOneToOne = FixedQParamsObserver.rangeNeg1To1()
        try zeroToOne.observe(Self.tensor([100, -100]))
        XCTAssertEqual(try zeroToOne.calculateQParams(), QuantizationParameters(scale: 1 / 256, zeroPoint: 0,
                                                                                dtype: .quint8))
        XCTAssertEqual(try minusOneToOne.calculateQParams(), QuantizationParameters(scale: 2 / 256, zeroPoint: 128,
                                                                                    dtype: .quint8))
        let placeholder = PlaceholderObserver()
        XCTAssertEqual(placeholder.dtype, .float32)
        XCTAssertNil(placeholder.dtype.quantized)
        XCTAssertFalse(placeholder.isDynamic)
        try placeholder.observe(Self.tensor([1]))
        let dynamic = PlaceholderObserver.dynamicQuantization()
        XCTAssertEqual(dynamic.dtype.quantized, .quint8)
        XCTAssertEqual([dynamic.quantMin, dynamic.quantMax], [0, 255])
        XCTAssertTrue(dynamic.isDynamic)
        let noop = NoopObserver()
        XCTAssertEqual(noop.dtype, .float16)
        XCTAssertFalse(noop.isDynamic)
        let base: [any ObserverBase] = [placeholder, noop, try MinMaxObserver()]
        for observer in base { try observer.observe(Self.tensor([1, 2])) }
        XCTAssertEqual(PlaceholderDType(.qint8), .qint8)
    }

    // MARK: Determinism

    /// The statistics kernels give the same bits on every ISA level and thread count.
    func testResultsAgreeAcrossISAsAndThreads() throws {
        var data = Self.normal(300_000, seed: 15)
        data[5] = .nan
        data[6] = -.infinity
        let x = try Tensor(shape: [3, 100_000], scalars: data)
        let y = try Tensor(shape: [3, 100_000], scalars: data.map { $0 * 3 - 1 })
        func run() throws -> [Data] {
            let observers: [any Observer & Codable] = [
                try MinMaxObserver(), try PerChannelMinMaxObserver(chAxis: 1), try PerChannelMinMaxObserver(chAxis: 0),
                try HistogramObserver(), try PercentileObserver(qscheme: .perTensorSymmetric), try EntropyObserver()]
            var out: [Data] = []
            for observer in observers {
                try observer.observe(x)
                try observer.observe(y)
                out.append(try Self.encode(observer))
                out.append(try Self.encode(try observer.calculateQParams()))
            }
            return out
        }
        try Runtime.setISA("scalar")
        try Runtime.setNumberOfThreads(1)
        let reference = try run()
        for isa in Runtime.supportedISAs {
            try Runtime.setISA(isa)
            for threads in [1, 3] {
                try Runtime.setNumberOfThreads(threads)
                XCTAssertEqual(try run(), reference, "\(isa) with \(threads) threads")
            }
        }
    }
}
