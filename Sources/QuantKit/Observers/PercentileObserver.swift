/// Chooses per-tensor parameters from percentiles of a running histogram: the range that keeps `percentile`
/// percent of the values (beyond PyTorch; ONNX Runtime's percentile calibration).
///
/// ONNX Runtime: `onnxruntime.quantization.calibrate.HistogramCalibrater(method="percentile", num_bins=2048,
/// percentile=99.999, symmetric)`. Its rule is followed: with a symmetric `qscheme` the histogram is of |x| and the
/// range is [-t, t] with t the left edge of the bin where the cumulative distribution reaches `percentile` / 100;
/// otherwise the histogram is of x and each end cuts (100 - `percentile`) / 200; the range is then clamped to the
/// observed minimum and maximum. The histogram itself is QuantKit's (PyTorch's `HistogramObserver` binning and
/// re-binning when the range grows, rather than ORT's list of bins that grows by whole bins), so thresholds can
/// differ from ORT's by the binning. Scale and zero point come from MinMaxObserver's formula on the range.
public final class PercentileObserver: MergeableObserver, Codable, CustomStringConvertible {
    var configuration: UniformQuantization
    var state: HistogramState

    /// PyTorch: `observer.dtype`.
    public var dtype: QuantizedDType { configuration.dtype }
    /// `.perTensorAffine` or `.perTensorSymmetric` (the latter also makes the histogram one of |x|).
    public var qscheme: QScheme { configuration.qscheme }
    /// PyTorch: `reduce_range`.
    public var reduceRange: Bool { configuration.reduceRange }
    /// PyTorch: `observer.quant_min`.
    public var quantMin: Int { configuration.quantMin }
    /// PyTorch: `observer.quant_max`.
    public var quantMax: Int { configuration.quantMax }
    /// PyTorch: `observer.eps`.
    public var eps: Float { configuration.eps }
    /// The percentage of values the range keeps, in 0...100. ONNX Runtime: `percentile`.
    public let percentile: Double
    /// Histogram bins. ONNX Runtime: `num_bins`.
    public var bins: Int { state.histogram.count }
    /// Sub-bins per bin when the histogram is re-binned into a wider range.
    public let upsampleRate: Int
    /// The bin masses (of |x| with a symmetric scheme).
    public var histogram: [Float] { state.histogram }
    /// The smallest finite value observed; `+infinity` before any.
    public var minVal: Float { state.dataMin }
    /// The largest finite value observed; `-infinity` before any.
    public var maxVal: Float { state.dataMax }

    /// - Throws: what `HistogramObserver.init` throws; `.invalidOperand` for a percentile outside 0...100.
    public init(percentile: Double = 99.999, bins: Int = 2048, upsampleRate: Int = 16, dtype: QuantizedDType = .quint8,
                qscheme: QScheme = .perTensorAffine, reduceRange: Bool = false, quantMin: Int? = nil,
                quantMax: Int? = nil, eps: Float = .ulpOfOne) throws {
        configuration = try UniformQuantization(observer: "PercentileObserver", granularity: .perTensor, dtype: dtype,
                                                qscheme: qscheme, reduceRange: reduceRange, quantMin: quantMin,
                                                quantMax: quantMax, eps: eps)
        try HistogramState.check(bins: bins, upsampleRate: upsampleRate, observer: "PercentileObserver")
        try Self.check(percentile: percentile)
        self.percentile = percentile
        self.upsampleRate = upsampleRate
        state = HistogramState(bins: bins)
    }

    private static func check(percentile: Double) throws(QuantizationError) {
        guard percentile >= 0 && percentile <= 100 else {
            throw .invalidOperand(operation: "PercentileObserver", reason: "percentile must be in 0...100, got "
                                  + "\(percentile) (ONNX Runtime: ValueError)")
        }
    }

    /// Bins `x` (or |x|) into the running histogram. NaN and infinities are skipped.
    public func observe(_ x: Tensor<Float>) throws {
        try state.observe(x, upsampleRate: upsampleRate, absolute: qscheme.isSymmetric)
    }

    /// The percentile range, then MinMaxObserver's formula; `(1.0, 0)` before anything was observed.
    /// ONNX Runtime: `HistogramCollector.compute_percentile`.
    public func calculateQParams() throws -> QuantizationParameters {
        guard state.isCalibrated else { return configuration.parameters(min: .infinity, max: -.infinity) }
        let (lo, hi) = try Kernels.histogramPercentileRange(
            histogram: state.histogram, min: state.min, max: state.max, percentile: percentile,
            absolute: qscheme.isSymmetric, dataMin: state.dataMin, dataMax: state.dataMax)
        return configuration.parameters(min: lo, max: hi)
    }

    /// Empties the histogram.
    public func reset() {
        state = HistogramState(bins: bins)
    }

    /// Merges the histograms of `others` as `HistogramObserver.merge(contentsOf:)` does.
    /// - Throws: `QuantizationError.invalidOperand` when an observer is configured differently.
    public func merge(contentsOf others: [PercentileObserver]) throws {
        for other in others {
            try configuration.checkMergeable(with: other.configuration, observer: "PercentileObserver")
            try HistogramState.checkMergeable(bins, upsampleRate, other.bins, other.upsampleRate,
                                              observer: "PercentileObserver")
            guard other.percentile == percentile else {
                throw QuantizationError.invalidOperand(operation: "PercentileObserver", reason: "cannot merge "
                                                       + "percentiles \(percentile) and \(other.percentile)")
            }
        }
        state = try HistogramState.merged([state] + others.map(\.state), upsampleRate: upsampleRate)
    }

    public var description: String {
        "PercentileObserver(\(configuration.describe()), percentile: \(percentile), bins: \(bins), "
            + "min_val: \(minVal), max_val: \(maxVal))"
    }

    // MARK: Codable

    private enum CodingKeys: String, CodingKey { case configuration, percentile, upsampleRate, state }

    /// Restores a saved observer, options and histogram.
    /// - Throws: `DecodingError.dataCorrupted` for invalid options or statistics.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        configuration = try c.decode(UniformQuantization.self, forKey: .configuration)
        percentile = try c.decode(Double.self, forKey: .percentile)
        upsampleRate = try c.decode(Int.self, forKey: .upsampleRate)
        state = try c.decode(HistogramState.self, forKey: .state)
        let (bins, rate, p) = (state.histogram.count, upsampleRate, percentile)
        try ObserverCoding.wrap(decoder) {
            try HistogramState.check(bins: bins, upsampleRate: rate, observer: "PercentileObserver")
            try Self.check(percentile: p)
        }
        guard !configuration.qscheme.isPerChannel else {
            throw ObserverCoding.corrupted(decoder, "PercentileObserver needs a per-tensor scheme")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(configuration, forKey: .configuration)
        try c.encode(percentile, forKey: .percentile)
        try c.encode(upsampleRate, forKey: .upsampleRate)
        try c.encode(state, forKey: .state)
    }
}
