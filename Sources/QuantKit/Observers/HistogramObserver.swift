/// Chooses per-tensor parameters from a running histogram: the range that minimises the expected L2 quantization
/// error, which trims outliers that min/max would keep.
///
/// PyTorch: `torch.ao.quantization.HistogramObserver(bins=2048, dtype, qscheme, reduce_range, quant_min,
/// quant_max, eps)` of PyTorch 2.15, step for step (its golden cases agree to 1e-4, in practice exactly):
/// - the first batch sets the range [min, max] and is binned as `torch.histc` bins (fp32);
/// - later batches are binned over the union of the ranges; when the range grew, the old histogram is re-binned
///   into it (each bin split into `upsampleRate` = 16 sub-bins whose midpoints go to the new bins);
/// - `calculateQParams()` searches the bin range by trimming 1e-5 quantiles from either end while the L2 error of
///   quantizing to 2^bits levels (256 also with `reduceRange`) decreases, then applies MinMaxObserver's formula.
///
/// Infinities are dropped, as PyTorch drops them; NaN is skipped too (PyTorch fails on NaN). The statistics run in
/// C (`qk_histogram_observe_f32`, SIMD binning); results are the same on every ISA and thread count.
public final class HistogramObserver: MergeableObserver, Codable, CustomStringConvertible {
    var configuration: UniformQuantization
    var state: HistogramState

    /// PyTorch: `observer.dtype`.
    public var dtype: QuantizedDType { configuration.dtype }
    /// `.perTensorAffine` or `.perTensorSymmetric`. PyTorch: `observer.qscheme`.
    public var qscheme: QScheme { configuration.qscheme }
    /// PyTorch: `reduce_range`.
    public var reduceRange: Bool { configuration.reduceRange }
    /// PyTorch: `observer.quant_min`.
    public var quantMin: Int { configuration.quantMin }
    /// PyTorch: `observer.quant_max`.
    public var quantMax: Int { configuration.quantMax }
    /// PyTorch: `observer.eps`.
    public var eps: Float { configuration.eps }
    /// The number of bins. PyTorch: `observer.bins`.
    public var bins: Int { state.histogram.count }
    /// Sub-bins per bin when the histogram is re-binned into a wider range. PyTorch: `observer.upsample_rate`.
    public let upsampleRate: Int
    /// The bin masses over [minVal, maxVal]. PyTorch: `observer.histogram`.
    public var histogram: [Float] { state.histogram }
    /// The lower end of the histogram's range; `+infinity` before any batch. PyTorch: `observer.min_val`.
    public var minVal: Float { state.min }
    /// The upper end of the histogram's range; `-infinity` before any batch. PyTorch: `observer.max_val`.
    public var maxVal: Float { state.max }
    /// The levels the error search quantizes to: 2^bits of the dtype. PyTorch: `observer.dst_nbins`.
    public var dstBins: Double { Double(1 << dtype.bitWidth) }

    /// - Parameters:
    ///   - bins: histogram bins, in 1...2^24 (PyTorch's default 2048).
    ///   - upsampleRate: sub-bins per bin when re-binning, in 1...1024 (PyTorch 2.15: 16).
    /// - Throws: `QuantizationError.qschemeMismatch` for a per-channel scheme; `.invalidOperand` for a symmetric
    ///   quint8 scheme with `reduceRange` (which PyTorch's HistogramObserver accepts and then returns zero point
    ///   128 outside 0...127), an invalid custom range, eps, bins or upsample rate.
    public init(bins: Int = 2048, upsampleRate: Int = 16, dtype: QuantizedDType = .quint8,
                qscheme: QScheme = .perTensorAffine, reduceRange: Bool = false, quantMin: Int? = nil,
                quantMax: Int? = nil, eps: Float = .ulpOfOne) throws {
        configuration = try UniformQuantization(observer: "HistogramObserver", granularity: .perTensor, dtype: dtype,
                                                qscheme: qscheme, reduceRange: reduceRange, quantMin: quantMin,
                                                quantMax: quantMax, eps: eps)
        try HistogramState.check(bins: bins, upsampleRate: upsampleRate, observer: "HistogramObserver")
        self.upsampleRate = upsampleRate
        state = HistogramState(bins: bins)
    }

    /// Bins `x` into the running histogram, growing its range (and re-binning) when `x` reaches beyond it.
    /// PyTorch: `observer(x)`.
    public func observe(_ x: Tensor<Float>) throws {
        try state.observe(x, upsampleRate: upsampleRate, absolute: false)
    }

    /// The L2-optimal range, then MinMaxObserver's formula; `(1.0, 0)` before anything was observed.
    /// PyTorch: `observer.calculate_qparams()` (`_non_linear_param_search`).
    public func calculateQParams() throws -> QuantizationParameters {
        guard state.isCalibrated else { return configuration.parameters(min: .infinity, max: -.infinity) }
        let (lo, hi) = try Kernels.histogramL2Range(histogram: state.histogram, min: state.min, max: state.max,
                                                    dstBins: dstBins)
        return configuration.parameters(min: lo, max: hi)
    }

    /// Empties the histogram. PyTorch: `observer.reset_min_max_vals()` (a new observer).
    public func reset() {
        state = HistogramState(bins: bins)
    }

    /// Merges the histograms of `others` into this one (beyond PyTorch): every histogram is re-binned once into
    /// the union of the ranges, as `observe` re-bins when the range grows, and the masses are added in order (this
    /// observer's first). So the result is deterministic; histograms over the same range add exactly (then the
    /// merged observer equals one that observed all the data), and merging an observer whose range contains this
    /// one's gives what observing its data after this one's gives.
    /// - Throws: `QuantizationError.invalidOperand` when an observer is configured differently.
    public func merge(contentsOf others: [HistogramObserver]) throws {
        for other in others {
            try configuration.checkMergeable(with: other.configuration, observer: "HistogramObserver")
            try HistogramState.checkMergeable(bins, upsampleRate, other.bins, other.upsampleRate,
                                              observer: "HistogramObserver")
        }
        state = try HistogramState.merged([state] + others.map(\.state), upsampleRate: upsampleRate)
    }

    public var description: String {
        "HistogramObserver(\(configuration.describe()), bins: \(bins), min_val: \(minVal), max_val: \(maxVal))"
    }

    // MARK: Codable

    private enum CodingKeys: String, CodingKey { case configuration, upsampleRate, state }

    /// Restores a saved observer, options and histogram.
    /// - Throws: `DecodingError.dataCorrupted` for invalid options or statistics.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        configuration = try c.decode(UniformQuantization.self, forKey: .configuration)
        upsampleRate = try c.decode(Int.self, forKey: .upsampleRate)
        state = try c.decode(HistogramState.self, forKey: .state)
        let (bins, rate) = (state.histogram.count, upsampleRate)
        try ObserverCoding.wrap(decoder) {
            try HistogramState.check(bins: bins, upsampleRate: rate, observer: "HistogramObserver")
        }
        guard !configuration.qscheme.isPerChannel else {
            throw ObserverCoding.corrupted(decoder, "HistogramObserver needs a per-tensor scheme")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(configuration, forKey: .configuration)
        try c.encode(upsampleRate, forKey: .upsampleRate)
        try c.encode(state, forKey: .state)
    }
}

/// A running histogram (of x, or of |x| over [0, max |x|]) with the finite min/max of the raw data, as the
/// histogram observers keep it.
struct HistogramState: Equatable, Sendable, Codable {
    /// Bin masses over [min, max]; all zero before any batch.
    var histogram: [Float]
    /// The histogram's range; (+inf, -inf) before any batch.
    var min: Float = .infinity
    var max: Float = -.infinity
    /// The finite min/max of the raw values: the histogram's range for a histogram of x, kept apart for one of |x|
    /// (whose range is [0, max |x|]).
    var dataMin: Float = .infinity
    var dataMax: Float = -.infinity

    init(bins: Int) {
        histogram = [Float](repeating: 0, count: bins)
    }

    var isCalibrated: Bool { min <= max }

    static func check(bins: Int, upsampleRate: Int, observer: String) throws(QuantizationError) {
        guard bins >= 1 && bins <= 1 << 24 else {
            throw .invalidOperand(operation: observer, reason: "bins must be in 1...16777216, got \(bins)")
        }
        guard upsampleRate >= 1 && upsampleRate <= 1024 else {
            throw .invalidOperand(operation: observer, reason: "upsampleRate must be in 1...1024, got \(upsampleRate)")
        }
    }

    static func checkMergeable(_ bins: Int, _ rate: Int, _ otherBins: Int, _ otherRate: Int, observer: String)
        throws(QuantizationError)
    {
        guard bins == otherBins && rate == otherRate else {
            throw .invalidOperand(operation: observer, reason: "cannot merge histograms of \(bins) bins (upsample "
                                  + "rate \(rate)) and \(otherBins) bins (upsample rate \(otherRate))")
        }
    }

    /// HistogramObserver.forward. A histogram of x spans the data's range, so only a histogram of |x| needs the
    /// batch's range to keep the data's.
    mutating func observe(_ x: Tensor<Float>, upsampleRate: Int, absolute: Bool) throws {
        guard x.count > 0 else { return }
        var (lo, hi) = (min, max)
        let batch = try x.withUnsafeBufferPointer { buffer in
            try Kernels.histogramObserve(count: buffer.count, input: buffer.baseAddress, upsampleRate: upsampleRate,
                                         absolute: absolute, batchRange: absolute, histogram: &histogram, min: &lo,
                                         max: &hi)
        }
        (min, max) = (lo, hi)
        if let batch {
            if batch.min <= batch.max {
                dataMin = Swift.min(batch.min + 0, dataMin)
                dataMax = Swift.max(batch.max + 0, dataMax)
            }
        } else {
            (dataMin, dataMax) = (min, max)
        }
    }

    /// The states re-binned into the union of their ranges and added in order.
    static func merged(_ states: [HistogramState], upsampleRate: Int) throws -> HistogramState {
        let bins = states[0].histogram.count
        let (histogram, lo, hi) = try Kernels.histogramMerge(
            bins: bins, upsampleRate: upsampleRate, states: states.map { ($0.histogram, $0.min, $0.max) })
        var result = HistogramState(bins: bins)
        (result.histogram, result.min, result.max) = (histogram, lo, hi)
        result.dataMin = states.map(\.dataMin).min()!
        result.dataMax = states.map(\.dataMax).max()!
        return result
    }

    // MARK: Codable

    private enum CodingKeys: String, CodingKey { case histogram, min, max, dataMin, dataMax }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        histogram = try c.decode([Float].self, forKey: .histogram)
        (min, max) = try ObserverCoding.decodeRange(c, min: .min, max: .max)
        (dataMin, dataMax) = try ObserverCoding.decodeRange(c, min: .dataMin, max: .dataMax)
        guard histogram.allSatisfy({ $0.isFinite && $0 >= 0 }) else {
            throw ObserverCoding.corrupted(decoder, "histogram masses must be finite and >= 0")
        }
        guard isCalibrated == (dataMin <= dataMax) else {
            throw ObserverCoding.corrupted(decoder, "the histogram range and the data range must both be present or "
                                           + "both absent")
        }
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(histogram, forKey: .histogram)
        try c.encodeIfPresent(ObserverStatistics.encoded(min), forKey: .min)
        try c.encodeIfPresent(ObserverStatistics.encoded(max), forKey: .max)
        try c.encodeIfPresent(ObserverStatistics.encoded(dataMin), forKey: .dataMin)
        try c.encodeIfPresent(ObserverStatistics.encoded(dataMax), forKey: .dataMax)
    }
}
