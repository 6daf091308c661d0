/// Chooses per-channel parameters from the running minimum and maximum of each slice along `chAxis`.
///
/// PyTorch: `torch.ao.quantization.PerChannelMinMaxObserver(ch_axis=0, dtype, qscheme=per_channel_affine,
/// reduce_range, quant_min, quant_max, eps)`, bit for bit. Every batch must have the same number of channels.
/// NaN and infinities are skipped; a channel that never saw a finite value gets the parameters of the range
/// [0, 0] (PyTorch fails an assertion).
public final class PerChannelMinMaxObserver: MergeableObserver, Codable, CustomStringConvertible {
    var configuration: UniformQuantization

    /// PyTorch: `observer.dtype`.
    public var dtype: QuantizedDType { configuration.dtype }
    /// `.perChannelAffine` or `.perChannelSymmetric`. PyTorch: `observer.qscheme`.
    public var qscheme: QScheme { configuration.qscheme }
    /// PyTorch: `reduce_range`.
    public var reduceRange: Bool { configuration.reduceRange }
    /// PyTorch: `observer.quant_min`.
    public var quantMin: Int { configuration.quantMin }
    /// PyTorch: `observer.quant_max`.
    public var quantMax: Int { configuration.quantMax }
    /// PyTorch: `observer.eps`.
    public var eps: Float { configuration.eps }
    /// The channel axis (negative counts from the end). PyTorch: `observer.ch_axis`.
    public let chAxis: Int
    /// Each channel's minimum (`+infinity` for a channel with no finite value); empty before any batch.
    /// PyTorch: `observer.min_val`.
    public private(set) var minVal: [Float] = []
    /// Each channel's maximum. PyTorch: `observer.max_val`.
    public private(set) var maxVal: [Float] = []
    /// The axis the observed tensors' channels were on, non-negative (`chAxis` until a tensor was observed).
    private(set) var resolvedAxis: Int?

    /// - Throws: `QuantizationError.qschemeMismatch` for a per-tensor scheme; `.invalidOperand` for a symmetric
    ///   quint8 scheme with `reduceRange`, an invalid custom range or eps.
    public init(chAxis: Int = 0, dtype: QuantizedDType = .quint8, qscheme: QScheme = .perChannelAffine,
                reduceRange: Bool = false, quantMin: Int? = nil, quantMax: Int? = nil, eps: Float = .ulpOfOne) throws {
        configuration = try UniformQuantization(observer: "PerChannelMinMaxObserver", granularity: .perChannel,
                                                dtype: dtype, qscheme: qscheme, reduceRange: reduceRange,
                                                quantMin: quantMin, quantMax: quantMax, eps: eps)
        self.chAxis = chAxis
    }

    /// Folds each channel's finite minimum and maximum of `x` into the running ones. PyTorch: `observer(x)`.
    /// - Throws: `QuantizationError.axisOutOfRange` when `chAxis` does not fit `x`'s rank; `.invalidOperand` when
    ///   `x` has a different number of channels than the tensors before.
    public func observe(_ x: Tensor<Float>) throws {
        guard let (lo, hi) = try PerChannelStatistics.batch(x, chAxis: chAxis, expected: minVal.count,
                                                            observer: "PerChannelMinMaxObserver") else { return }
        if minVal.isEmpty {
            (minVal, maxVal) = (lo, hi)
        } else {
            for c in minVal.indices {
                minVal[c] = Swift.min(lo[c], minVal[c])
                maxVal[c] = Swift.max(hi[c], maxVal[c])
            }
        }
        resolvedAxis = try QParamChecks.normalize(axis: chAxis, rank: x.rank)
    }

    /// PyTorch: `observer.calculate_qparams()`; a single `(1.0, 0)` before anything was observed.
    public func calculateQParams() throws -> QuantizationParameters {
        configuration.parameters(mins: minVal, maxs: maxVal, axis: resolvedAxis ?? chAxis)
    }

    /// PyTorch: `observer.reset_min_max_vals()`.
    public func reset() {
        minVal = []
        maxVal = []
        resolvedAxis = nil
    }

    /// Each channel's smallest minimum and largest maximum: exactly the statistics of all the data together.
    /// - Throws: `QuantizationError.invalidOperand` when an observer is configured differently or has another
    ///   number of channels.
    public func merge(contentsOf others: [PerChannelMinMaxObserver]) throws {
        var channels = minVal.count
        for other in others {
            try configuration.checkMergeable(with: other.configuration, observer: "PerChannelMinMaxObserver")
            guard other.chAxis == chAxis else {
                throw QuantizationError.invalidOperand(operation: "PerChannelMinMaxObserver", reason: "cannot merge "
                                                       + "observers of channel axes \(chAxis) and \(other.chAxis)")
            }
            guard other.minVal.isEmpty || channels == 0 || other.minVal.count == channels else {
                throw QuantizationError.invalidOperand(operation: "PerChannelMinMaxObserver", reason: "cannot merge "
                                                       + "\(channels) channels with \(other.minVal.count)")
            }
            if channels == 0 { channels = other.minVal.count }
        }
        for other in others where !other.minVal.isEmpty {
            if minVal.isEmpty {
                (minVal, maxVal, resolvedAxis) = (other.minVal, other.maxVal, other.resolvedAxis)
                continue
            }
            for c in minVal.indices {
                minVal[c] = Swift.min(other.minVal[c], minVal[c])
                maxVal[c] = Swift.max(other.maxVal[c], maxVal[c])
            }
        }
    }

    public var description: String {
        "PerChannelMinMaxObserver(\(configuration.describe()), ch_axis: \(chAxis), min_val: \(minVal), "
            + "max_val: \(maxVal))"
    }

    // MARK: Codable

    private enum CodingKeys: String, CodingKey { case configuration, chAxis, resolvedAxis, minVal, maxVal }

    /// Restores a saved observer, options and statistics.
    /// - Throws: `DecodingError.dataCorrupted` for invalid options or statistics.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        configuration = try c.decode(UniformQuantization.self, forKey: .configuration)
        chAxis = try c.decode(Int.self, forKey: .chAxis)
        resolvedAxis = try c.decodeIfPresent(Int.self, forKey: .resolvedAxis)
        (minVal, maxVal) = try PerChannelStatistics.decode(c, min: .minVal, max: .maxVal)
        guard configuration.qscheme.isPerChannel else {
            throw ObserverCoding.corrupted(decoder, "a per-channel observer needs a per-channel scheme")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(configuration, forKey: .configuration)
        try c.encode(chAxis, forKey: .chAxis)
        try c.encodeIfPresent(resolvedAxis, forKey: .resolvedAxis)
        try c.encode(minVal.map(ObserverStatistics.encoded), forKey: .minVal)
        try c.encode(maxVal.map(ObserverStatistics.encoded), forKey: .maxVal)
    }
}

/// Chooses per-channel parameters from exponential moving averages of each channel's batch minimum and maximum.
///
/// PyTorch: `torch.ao.quantization.MovingAveragePerChannelMinMaxObserver(averaging_constant=0.01, ch_axis=0, ...)`
/// (fp32, as PyTorch computes it). A channel's first batch with a finite value sets its range; batches in which a
/// channel has none leave it as it was. It does not merge (its statistics depend on the order of the batches).
public final class MovingAveragePerChannelMinMaxObserver: Observer, Codable, CustomStringConvertible {
    var configuration: UniformQuantization

    /// PyTorch: `observer.dtype`.
    public var dtype: QuantizedDType { configuration.dtype }
    /// PyTorch: `observer.qscheme`.
    public var qscheme: QScheme { configuration.qscheme }
    /// PyTorch: `reduce_range`.
    public var reduceRange: Bool { configuration.reduceRange }
    /// PyTorch: `observer.quant_min`.
    public var quantMin: Int { configuration.quantMin }
    /// PyTorch: `observer.quant_max`.
    public var quantMax: Int { configuration.quantMax }
    /// PyTorch: `observer.eps`.
    public var eps: Float { configuration.eps }
    /// The weight of each new batch, in 0...1. PyTorch: `observer.averaging_constant`.
    public let averagingConstant: Float
    /// PyTorch: `observer.ch_axis`.
    public let chAxis: Int
    /// The running minimum of each channel; empty before any batch. PyTorch: `observer.min_val`.
    public private(set) var minVal: [Float] = []
    /// The running maximum of each channel. PyTorch: `observer.max_val`.
    public private(set) var maxVal: [Float] = []
    private(set) var resolvedAxis: Int?

    /// - Throws: what `PerChannelMinMaxObserver.init` throws; `.invalidOperand` for an averaging constant outside
    ///   0...1.
    public init(averagingConstant: Float = 0.01, chAxis: Int = 0, dtype: QuantizedDType = .quint8,
                qscheme: QScheme = .perChannelAffine, reduceRange: Bool = false, quantMin: Int? = nil,
                quantMax: Int? = nil, eps: Float = .ulpOfOne) throws {
        try ObserverCoding.checkAveragingConstant(averagingConstant, isDynamic: false,
                                                  observer: "MovingAveragePerChannelMinMaxObserver")
        configuration = try UniformQuantization(observer: "MovingAveragePerChannelMinMaxObserver",
                                                granularity: .perChannel, dtype: dtype, qscheme: qscheme,
                                                reduceRange: reduceRange, quantMin: quantMin, quantMax: quantMax,
                                                eps: eps)
        self.averagingConstant = averagingConstant
        self.chAxis = chAxis
    }

    /// Moves each channel's running minimum and maximum toward those of `x`. PyTorch: `observer(x)`.
    /// - Throws: what `PerChannelMinMaxObserver.observe` throws.
    public func observe(_ x: Tensor<Float>) throws {
        guard let (lo, hi) = try PerChannelStatistics.batch(x, chAxis: chAxis, expected: minVal.count,
                                                            observer: "MovingAveragePerChannelMinMaxObserver")
        else { return }
        if minVal.isEmpty {
            (minVal, maxVal) = (lo, hi)
        } else {
            for c in minVal.indices where lo[c] <= hi[c] {
                if minVal[c] == .infinity && maxVal[c] == -.infinity {
                    (minVal[c], maxVal[c]) = (lo[c], hi[c])
                } else {
                    minVal[c] = ObserverStatistics.movingAverage(minVal[c], lo[c], averagingConstant)
                    maxVal[c] = ObserverStatistics.movingAverage(maxVal[c], hi[c], averagingConstant)
                }
            }
        }
        resolvedAxis = try QParamChecks.normalize(axis: chAxis, rank: x.rank)
    }

    /// PyTorch: `observer.calculate_qparams()`; a single `(1.0, 0)` before anything was observed.
    public func calculateQParams() throws -> QuantizationParameters {
        configuration.parameters(mins: minVal, maxs: maxVal, axis: resolvedAxis ?? chAxis)
    }

    /// PyTorch: `observer.reset_min_max_vals()`.
    public func reset() {
        minVal = []
        maxVal = []
        resolvedAxis = nil
    }

    public var description: String {
        "MovingAveragePerChannelMinMaxObserver(\(configuration.describe()), averaging_constant: "
            + "\(averagingConstant), ch_axis: \(chAxis), min_val: \(minVal), max_val: \(maxVal))"
    }

    // MARK: Codable

    private enum CodingKeys: String, CodingKey {
        case configuration, averagingConstant, chAxis, resolvedAxis, minVal, maxVal
    }

    /// Restores a saved observer, options and statistics.
    /// - Throws: `DecodingError.dataCorrupted` for invalid options or statistics.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let constant = try c.decode(Float.self, forKey: .averagingConstant)
        try ObserverCoding.wrap(decoder) {
            try ObserverCoding.checkAveragingConstant(constant, isDynamic: false,
                                                      observer: "MovingAveragePerChannelMinMaxObserver")
        }
        configuration = try c.decode(UniformQuantization.self, forKey: .configuration)
        averagingConstant = constant
        chAxis = try c.decode(Int.self, forKey: .chAxis)
        resolvedAxis = try c.decodeIfPresent(Int.self, forKey: .resolvedAxis)
        (minVal, maxVal) = try PerChannelStatistics.decode(c, min: .minVal, max: .maxVal)
        guard configuration.qscheme.isPerChannel else {
            throw ObserverCoding.corrupted(decoder, "a per-channel observer needs a per-channel scheme")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(configuration, forKey: .configuration)
        try c.encode(averagingConstant, forKey: .averagingConstant)
        try c.encode(chAxis, forKey: .chAxis)
        try c.encodeIfPresent(resolvedAxis, forKey: .resolvedAxis)
        try c.encode(minVal.map(ObserverStatistics.encoded), forKey: .minVal)
        try c.encode(maxVal.map(ObserverStatistics.encoded), forKey: .maxVal)
    }
}

/// Shared by the per-channel observers.
enum PerChannelStatistics {
    /// Each channel's finite min/max of `x` (`(+inf, -inf)` for a channel with none, -0.0 read as 0.0), or `nil`
    /// for an empty tensor. `expected` is the channel count of earlier batches (0: none yet).
    static func batch(_ x: Tensor<Float>, chAxis: Int, expected: Int, observer: String) throws
        -> (mins: [Float], maxs: [Float])?
    {
        let axis = try QParamChecks.normalize(axis: chAxis, rank: x.rank)
        guard x.count > 0 else { return nil }
        let view = ChannelView(shape: x.shape, axis: axis)
        guard expected == 0 || view.channels == expected else {
            throw QuantizationError.invalidOperand(operation: observer, reason: "axis \(axis) of shape \(x.shape) "
                                                   + "has \(view.channels) channels; the observer has seen "
                                                   + "\(expected)")
        }
        let (lo, hi) = try x.withUnsafeBufferPointer { buffer in
            try Kernels.minMaxPerChannel(view: view, input: buffer.baseAddress, finiteOnly: true)
        }
        return (lo.map { $0 + 0 }, hi.map { $0 + 0 })
    }

    /// Per-channel statistics: equal counts, each channel absent on both sides (no finite value: +inf, -inf) or
    /// finite with min <= max.
    static func decode<K: CodingKey>(_ c: KeyedDecodingContainer<K>, min: K, max: K) throws -> ([Float], [Float]) {
        let lo = try c.decode([Float?].self, forKey: min), hi = try c.decode([Float?].self, forKey: max)
        guard lo.count == hi.count else {
            throw DecodingError.dataCorruptedError(forKey: min, in: c, debugDescription: "\(lo.count) minima but "
                                                   + "\(hi.count) maxima")
        }
        var mins: [Float] = [], maxs: [Float] = []
        for (l, h) in zip(lo, hi) {
            switch (l, h) {
            case (nil, nil):
                mins.append(.infinity)
                maxs.append(-.infinity)
            case let (l?, h?) where l.isFinite && h.isFinite && l <= h:
                mins.append(l)
                maxs.append(h)
            default:
                throw DecodingError.dataCorruptedError(forKey: min, in: c, debugDescription: "a channel's min/max "
                                                       + "must both be absent or finite with min <= max")
            }
        }
        return (mins, maxs)
    }
}
