/// Chooses per-tensor parameters by entropy calibration: the clipping threshold whose quantized distribution is
/// closest to the observed one in KL divergence (beyond PyTorch; TensorRT's entropy calibrator).
///
/// TensorRT: `IInt8EntropyCalibrator2`, as NVIDIA's pytorch-quantization implements it
/// (`calib.HistogramCalibrator`, `_compute_amax_entropy(num_bits=8, stride=1, start_bin=128)`): a histogram of |x|
/// (2048 bins over [0, max |x|]); for every i from `startBin` to `bins`, the first i bins with the rest added to
/// the last one, against the same bins merged into `levels` levels and spread back evenly over their non-zero bins;
/// the threshold is the right edge of the i with the smallest divergence (the last one on ties). Bin 0 is replaced by
/// bin 1 first (pytorch-quantization's guard against a spike of zeros). The levels are half the quantization range
/// for signed data ((quantMax - quantMin + 1) / 2: 128 for 8 bits) and the whole range when every observed value
/// is >= 0 and the scheme is affine (256: TensorRT's unsigned case); the range is then [-t, t] or [0, t], and
/// MinMaxObserver's formula gives scale and zero point. The histogram is QuantKit's (PyTorch's binning and
/// re-binning when the range grows, rather than pytorch-quantization's bins that grow by whole bins).
public final class EntropyObserver: MergeableObserver, Codable, CustomStringConvertible {
    var configuration: UniformQuantization
    var state: HistogramState

    /// PyTorch: `observer.dtype`.
    public var dtype: QuantizedDType { configuration.dtype }
    /// `.perTensorAffine` or `.perTensorSymmetric`.
    public var qscheme: QScheme { configuration.qscheme }
    /// PyTorch: `reduce_range`.
    public var reduceRange: Bool { configuration.reduceRange }
    /// PyTorch: `observer.quant_min`.
    public var quantMin: Int { configuration.quantMin }
    /// PyTorch: `observer.quant_max`.
    public var quantMax: Int { configuration.quantMax }
    /// PyTorch: `observer.eps`.
    public var eps: Float { configuration.eps }
    /// Histogram bins of |x|. pytorch-quantization: `num_bins`.
    public var bins: Int { state.histogram.count }
    /// The smallest number of bins a candidate keeps. pytorch-quantization: `start_bin`.
    public let startBin: Int
    /// Sub-bins per bin when the histogram is re-binned into a wider range.
    public let upsampleRate: Int
    /// The bin masses of |x| over [0, max |x|].
    public var histogram: [Float] { state.histogram }
    /// The smallest finite value observed; `+infinity` before any.
    public var minVal: Float { state.dataMin }
    /// The largest finite value observed; `-infinity` before any.
    public var maxVal: Float { state.dataMax }

    /// - Parameters:
    ///   - bins: histogram bins, at least 2.
    ///   - startBin: the smallest candidate, in 1...bins.
    /// - Throws: what `HistogramObserver.init` throws; `.invalidOperand` for fewer than 2 bins or a start bin
    ///   outside 1...bins.
    public init(bins: Int = 2048, startBin: Int = 128, upsampleRate: Int = 16, dtype: QuantizedDType = .qint8,
                qscheme: QScheme = .perTensorSymmetric, reduceRange: Bool = false, quantMin: Int? = nil,
                quantMax: Int? = nil, eps: Float = .ulpOfOne) throws {
        configuration = try UniformQuantization(observer: "EntropyObserver", granularity: .perTensor, dtype: dtype,
                                                qscheme: qscheme, reduceRange: reduceRange, quantMin: quantMin,
                                                quantMax: quantMax, eps: eps)
        try HistogramState.check(bins: bins, upsampleRate: upsampleRate, observer: "EntropyObserver")
        try Self.check(bins: bins, startBin: startBin)
        self.startBin = startBin
        self.upsampleRate = upsampleRate
        state = HistogramState(bins: bins)
    }

    private static func check(bins: Int, startBin: Int) throws(QuantizationError) {
        guard bins >= 2 && startBin >= 1 && startBin <= bins else {
            throw .invalidOperand(operation: "EntropyObserver", reason: "needs bins >= 2 and startBin in 1...bins; "
                                  + "got bins \(bins), startBin \(startBin)")
        }
    }

    /// The quantization levels of one side: the whole range for non-negative data under an affine scheme, else
    /// half of it.
    var levels: Int {
        let width = quantMax - quantMin + 1
        return !qscheme.isSymmetric && state.dataMin >= 0 ? width : Swift.max(width / 2, 1)
    }

    /// Bins |x| into the running histogram. NaN and infinities are skipped.
    public func observe(_ x: Tensor<Float>) throws {
        try state.observe(x, upsampleRate: upsampleRate, absolute: true)
    }

    /// The entropy threshold t, the range [-t, t] (or [0, t] for non-negative data under an affine scheme), then
    /// MinMaxObserver's formula; `(1.0, 0)` before anything was observed.
    public func calculateQParams() throws -> QuantizationParameters {
        guard state.isCalibrated else { return configuration.parameters(min: .infinity, max: -.infinity) }
        let amax = try Kernels.histogramEntropyAmax(histogram: state.histogram, max: state.max, levels: levels,
                                                    startBin: startBin)
        let unsigned = !qscheme.isSymmetric && state.dataMin >= 0
        return configuration.parameters(min: unsigned ? 0 : -amax, max: amax)
    }

    /// Empties the histogram.
    public func reset() {
        state = HistogramState(bins: bins)
    }

    /// Merges the histograms of `others` as `HistogramObserver.merge(contentsOf:)` does.
    /// - Throws: `QuantizationError.invalidOperand` when an observer is configured differently.
    public func merge(contentsOf others: [EntropyObserver]) throws {
        for other in others {
            try configuration.checkMergeable(with: other.configuration, observer: "EntropyObserver")
            try HistogramState.checkMergeable(bins, upsampleRate, other.bins, other.upsampleRate,
                                              observer: "EntropyObserver")
            guard other.startBin == startBin else {
                throw QuantizationError.invalidOperand(operation: "EntropyObserver", reason: "cannot merge start "
                                                       + "bins \(startBin) and \(other.startBin)")
            }
        }
        state = try HistogramState.merged([state] + others.map(\.state), upsampleRate: upsampleRate)
    }

    public var description: String {
        "EntropyObserver(\(configuration.describe()), bins: \(bins), start_bin: \(startBin), min_val: \(minVal), "
            + "max_val: \(maxVal))"
    }

    // MARK: Codable

    private enum CodingKeys: String, CodingKey { case configuration, startBin, upsampleRate, state }

    /// Restores a saved observer, options and histogram.
    /// - Throws: `DecodingError.dataCorrupted` for invalid options or statistics.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        configuration = try c.decode(UniformQuantization.self, forKey: .configuration)
        startBin = try c.decode(Int.self, forKey: .startBin)
        upsampleRate = try c.decode(Int.self, forKey: .upsampleRate)
        state = try c.decode(HistogramState.self, forKey: .state)
        let (bins, rate, start) = (state.histogram.count, upsampleRate, startBin)
        try ObserverCoding.wrap(decoder) {
            try HistogramState.check(bins: bins, upsampleRate: rate, observer: "EntropyObserver")
            try Self.check(bins: bins, startBin: start)
        }
        guard !configuration.qscheme.isPerChannel else {
            throw ObserverCoding.corrupted(decoder, "EntropyObserver needs a per-tensor scheme")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(configuration, forKey: .configuration)
        try c.encode(startBin, forKey: .startBin)
        try c.encode(upsampleRate, forKey: .upsampleRate)
        try c.encode(state, forKey: .state)
    }
}
