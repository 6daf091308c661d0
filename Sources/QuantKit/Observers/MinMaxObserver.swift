/// Chooses per-tensor parameters from the running minimum and maximum of everything observed.
///
/// PyTorch: `torch.ao.quantization.MinMaxObserver(dtype, qscheme, reduce_range, quant_min, quant_max, eps,
/// is_dynamic)`, whose `calculate_qparams` it reproduces bit for bit. Empty tensors are ignored. Beyond PyTorch,
/// NaN and infinities are skipped (PyTorch's running min/max would become NaN or infinite and give unusable
/// parameters).
///
///     let observer = try MinMaxObserver(dtype: .quint8, reduceRange: true)
///     try observer.observe(activations)
///     let parameters = try observer.calculateQParams()     // scale and zero point for quint8 in 0...127
public final class MinMaxObserver: MergeableObserver, Codable, CustomStringConvertible {
    var configuration: UniformQuantization

    /// The integer type. PyTorch: `observer.dtype`.
    public var dtype: QuantizedDType { configuration.dtype }
    /// `.perTensorAffine` or `.perTensorSymmetric`. PyTorch: `observer.qscheme`.
    public var qscheme: QScheme { configuration.qscheme }
    /// Whether the range is one bit narrower (0...127 for quint8, -64...63 for qint8). PyTorch: `reduce_range`.
    public var reduceRange: Bool { configuration.reduceRange }
    /// PyTorch: `observer.quant_min`.
    public var quantMin: Int { configuration.quantMin }
    /// PyTorch: `observer.quant_max`.
    public var quantMax: Int { configuration.quantMax }
    /// The smallest scale chosen. PyTorch: `observer.eps`.
    public var eps: Float { configuration.eps }
    /// PyTorch: `observer.is_dynamic`.
    public let isDynamic: Bool
    /// The smallest value observed; `+infinity` before any. PyTorch: `observer.min_val`.
    public private(set) var minVal: Float = .infinity
    /// The largest value observed; `-infinity` before any. PyTorch: `observer.max_val`.
    public private(set) var maxVal: Float = -.infinity

    /// - Parameters:
    ///   - quantMin, quantMax: a custom quantization range (both or neither); it must contain 0 and lie inside the
    ///     dtype's range, and `reduceRange` halves it.
    ///   - eps: the smallest scale; PyTorch's default is `torch.finfo(torch.float32).eps`.
    /// - Throws: `QuantizationError.qschemeMismatch` for a per-channel scheme; `.invalidOperand` for a symmetric
    ///   quint8 scheme with `reduceRange`, an invalid custom range or eps.
    public init(dtype: QuantizedDType = .quint8, qscheme: QScheme = .perTensorAffine, reduceRange: Bool = false,
                quantMin: Int? = nil, quantMax: Int? = nil, eps: Float = .ulpOfOne, isDynamic: Bool = false) throws {
        configuration = try UniformQuantization(observer: "MinMaxObserver", granularity: .perTensor, dtype: dtype,
                                                qscheme: qscheme, reduceRange: reduceRange, quantMin: quantMin,
                                                quantMax: quantMax, eps: eps)
        self.isDynamic = isDynamic
    }

    /// Folds the finite minimum and maximum of `x` into the running ones. PyTorch: `observer(x)`.
    public func observe(_ x: Tensor<Float>) throws {
        guard let (lo, hi) = try ObserverStatistics.finiteMinMax(x) else { return }
        minVal = Swift.min(lo, minVal)
        maxVal = Swift.max(hi, maxVal)
    }

    /// PyTorch: `observer.calculate_qparams()`; `(1.0, 0)` before anything was observed (PyTorch warns then).
    public func calculateQParams() throws -> QuantizationParameters {
        configuration.parameters(min: minVal, max: maxVal)
    }

    /// PyTorch: `observer.reset_min_max_vals()`.
    public func reset() {
        minVal = .infinity
        maxVal = -.infinity
    }

    /// Takes the smallest minimum and the largest maximum: exactly the statistics of all the data together.
    /// - Throws: `QuantizationError.invalidOperand` when an observer is configured differently.
    public func merge(contentsOf others: [MinMaxObserver]) throws {
        for other in others {
            try configuration.checkMergeable(with: other.configuration, observer: "MinMaxObserver")
        }
        for other in others {
            minVal = Swift.min(other.minVal, minVal)
            maxVal = Swift.max(other.maxVal, maxVal)
        }
    }

    public var description: String {
        "MinMaxObserver(\(configuration.describe()), min_val: \(minVal), max_val: \(maxVal))"
    }

    // MARK: Codable

    private enum CodingKeys: String, CodingKey { case configuration, isDynamic, minVal, maxVal }

    /// Restores a saved observer, options and statistics.
    /// - Throws: `DecodingError.dataCorrupted` for invalid options or statistics.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        configuration = try c.decode(UniformQuantization.self, forKey: .configuration)
        isDynamic = try c.decode(Bool.self, forKey: .isDynamic)
        (minVal, maxVal) = try ObserverCoding.decodeRange(c, min: .minVal, max: .maxVal)
        guard !configuration.qscheme.isPerChannel else {
            throw ObserverCoding.corrupted(decoder, "MinMaxObserver needs a per-tensor scheme")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(configuration, forKey: .configuration)
        try c.encode(isDynamic, forKey: .isDynamic)
        try c.encodeIfPresent(ObserverStatistics.encoded(minVal), forKey: .minVal)
        try c.encodeIfPresent(ObserverStatistics.encoded(maxVal), forKey: .maxVal)
    }
}

/// Chooses per-tensor parameters from exponential moving averages of each batch's minimum and maximum.
///
/// PyTorch: `torch.ao.quantization.MovingAverageMinMaxObserver(averaging_constant=0.01, ...)`: the first batch
/// sets the range, later ones move it by `averagingConstant * (batch - running)` (fp32, as PyTorch computes it).
/// Batches with no finite value are skipped (PyTorch would make the averages NaN or infinite). Its statistics depend
/// on the order of the batches, so it does not merge.
public final class MovingAverageMinMaxObserver: Observer, Codable, CustomStringConvertible {
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
    /// PyTorch: `observer.is_dynamic` (requires an averaging constant of 1).
    public let isDynamic: Bool
    /// The running minimum; `+infinity` before any batch. PyTorch: `observer.min_val`.
    public private(set) var minVal: Float = .infinity
    /// The running maximum; `-infinity` before any batch. PyTorch: `observer.max_val`.
    public private(set) var maxVal: Float = -.infinity

    /// - Throws: what `MinMaxObserver.init` throws; `.invalidOperand` for an averaging constant outside 0...1, or
    ///   `isDynamic` with a constant other than 1 (PyTorch: NotImplementedError).
    public init(averagingConstant: Float = 0.01, dtype: QuantizedDType = .quint8,
                qscheme: QScheme = .perTensorAffine, reduceRange: Bool = false, quantMin: Int? = nil,
                quantMax: Int? = nil, eps: Float = .ulpOfOne, isDynamic: Bool = false) throws {
        try ObserverCoding.checkAveragingConstant(averagingConstant, isDynamic: isDynamic,
                                                  observer: "MovingAverageMinMaxObserver")
        configuration = try UniformQuantization(observer: "MovingAverageMinMaxObserver", granularity: .perTensor,
                                                dtype: dtype, qscheme: qscheme, reduceRange: reduceRange,
                                                quantMin: quantMin, quantMax: quantMax, eps: eps)
        self.averagingConstant = averagingConstant
        self.isDynamic = isDynamic
    }

    /// Moves the running minimum and maximum toward those of `x`. PyTorch: `observer(x)`.
    public func observe(_ x: Tensor<Float>) throws {
        guard let (lo, hi) = try ObserverStatistics.finiteMinMax(x) else { return }
        if minVal == .infinity && maxVal == -.infinity {
            (minVal, maxVal) = (lo, hi)
        } else {
            minVal = ObserverStatistics.movingAverage(minVal, lo, averagingConstant)
            maxVal = ObserverStatistics.movingAverage(maxVal, hi, averagingConstant)
        }
    }

    /// PyTorch: `observer.calculate_qparams()`; `(1.0, 0)` before anything was observed.
    public func calculateQParams() throws -> QuantizationParameters {
        configuration.parameters(min: minVal, max: maxVal)
    }

    /// PyTorch: `observer.reset_min_max_vals()`.
    public func reset() {
        minVal = .infinity
        maxVal = -.infinity
    }

    public var description: String {
        "MovingAverageMinMaxObserver(\(configuration.describe()), averaging_constant: \(averagingConstant), "
            + "min_val: \(minVal), max_val: \(maxVal))"
    }

    // MARK: Codable

    private enum CodingKeys: String, CodingKey { case configuration, averagingConstant, isDynamic, minVal, maxVal }

    /// Restores a saved observer, options and statistics.
    /// - Throws: `DecodingError.dataCorrupted` for invalid options or statistics.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        configuration = try c.decode(UniformQuantization.self, forKey: .configuration)
        let (constant, dynamic) = (try c.decode(Float.self, forKey: .averagingConstant),
                                   try c.decode(Bool.self, forKey: .isDynamic))
        try ObserverCoding.wrap(decoder) {
            try ObserverCoding.checkAveragingConstant(constant, isDynamic: dynamic,
                                                      observer: "MovingAverageMinMaxObserver")
        }
        (averagingConstant, isDynamic) = (constant, dynamic)
        (minVal, maxVal) = try ObserverCoding.decodeRange(c, min: .minVal, max: .maxVal)
        guard !configuration.qscheme.isPerChannel else {
            throw ObserverCoding.corrupted(decoder, "MovingAverageMinMaxObserver needs a per-tensor scheme")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(configuration, forKey: .configuration)
        try c.encode(averagingConstant, forKey: .averagingConstant)
        try c.encode(isDynamic, forKey: .isDynamic)
        try c.encodeIfPresent(ObserverStatistics.encoded(minVal), forKey: .minVal)
        try c.encodeIfPresent(ObserverStatistics.encoded(maxVal), forKey: .maxVal)
    }
}

/// Validation shared by the observers' initializers and decoders.
enum ObserverCoding {
    static func checkAveragingConstant(_ c: Float, isDynamic: Bool, observer: String) throws(QuantizationError) {
        guard c.isFinite && c >= 0 && c <= 1 else {
            throw .invalidOperand(operation: observer, reason: "averagingConstant must be in 0...1, got \(c)")
        }
        if isDynamic && c != 1 {
            throw .invalidOperand(operation: observer, reason: "dynamic quantization needs averagingConstant 1, got "
                                  + "\(c) (PyTorch: NotImplementedError)")
        }
    }

    /// Runs `body`, turning a `QuantizationError` into `DecodingError.dataCorrupted`.
    static func wrap(_ decoder: any Decoder, _ body: () throws -> Void) throws {
        do {
            try body()
        } catch let error as QuantizationError {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.description,
                                                    underlyingError: error))
        }
    }

    static func corrupted(_ decoder: any Decoder, _ message: String) -> DecodingError {
        DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: message))
    }

    /// A per-tensor (min, max): both absent (nothing observed: +inf, -inf) or finite with min <= max.
    static func decodeRange<K: CodingKey>(_ c: KeyedDecodingContainer<K>, min: K, max: K) throws
        -> (Float, Float)
    {
        let lo = try c.decodeIfPresent(Float.self, forKey: min), hi = try c.decodeIfPresent(Float.self, forKey: max)
        switch (lo, hi) {
        case (nil, nil):
            return (.infinity, -.infinity)
        case let (lo?, hi?) where lo.isFinite && hi.isFinite && lo <= hi:
            return (lo, hi)
        default:
            throw DecodingError.dataCorruptedError(forKey: min, in: c, debugDescription: "min/max must both be absent "
                                                   + "(nothing observed) or finite with min <= max; got "
                                                   + "\(String(describing: lo)), \(String(describing: hi))")
        }
    }
}
