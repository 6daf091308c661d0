/// Anything that watches the tensors flowing through a point of a model: the quantization observers, and the
/// placeholders that only carry a target dtype (`PlaceholderObserver`, `NoopObserver`).
///
/// PyTorch: `torch.ao.quantization.observer.ObserverBase`, the base of every observer (an `nn.Module` whose
/// `forward(x)` records statistics and returns `x` unchanged).
public protocol ObserverBase: AnyObject {
    /// Whether the parameters are chosen at run time (dynamic quantization) rather than by calibration.
    /// PyTorch: `observer.is_dynamic`.
    var isDynamic: Bool { get }
    /// Records the statistics of `x`. PyTorch: `observer(x)` (`forward`), whose return value is `x`.
    func observe(_ x: Tensor<Float>) throws
    /// Forgets everything observed. PyTorch: `observer.reset_min_max_vals()` (`reset_histogram` for histograms).
    func reset()
}

extension ObserverBase {
    /// Static quantization unless an observer says otherwise. PyTorch: `is_dynamic=False`.
    public var isDynamic: Bool { false }
}

/// Watches the tensors that flow through a point of a model and chooses quantization parameters from their
/// statistics. Observers are classes: a prepared model holds them and calibration mutates them in place.
///
/// PyTorch: `torch.ao.quantization.observer.UniformQuantizationObserverBase` and the observers built on it
/// (`MinMaxObserver`, `HistogramObserver`, ...), plus `FixedQParamsObserver`.
public protocol Observer: ObserverBase {
    /// The integer type the parameters are for. PyTorch: `observer.dtype`.
    var dtype: QuantizedDType { get }
    /// Per tensor or per channel, affine or symmetric. PyTorch: `observer.qscheme`.
    var qscheme: QScheme { get }
    /// The smallest quantized value the parameters map to (the dtype's minimum unless a custom or reduced range
    /// was asked for). PyTorch: `observer.quant_min`.
    var quantMin: Int { get }
    /// The largest quantized value the parameters map to. PyTorch: `observer.quant_max`.
    var quantMax: Int { get }
    /// The parameters chosen from everything observed since the last `reset()`.
    /// PyTorch: `observer.calculate_qparams()`.
    func calculateQParams() throws -> QuantizationParameters
}

extension Observer {
    /// The dtype's minimum, for observers without a custom range. PyTorch: `observer.quant_min`.
    public var quantMin: Int { dtype.range.lowerBound }
    /// The dtype's maximum, for observers without a custom range. PyTorch: `observer.quant_max`.
    public var quantMax: Int { dtype.range.upperBound }
}

/// An observer whose statistics can be combined with another's of the same configuration, so that calibration can
/// be split across threads or machines and merged deterministically (beyond PyTorch).
///
/// Min/max statistics merge exactly: merging observers that saw parts of the data gives what one observer that saw
/// all of it has. Histograms merge through the re-binning PyTorch's `HistogramObserver` applies when its range
/// grows (see `HistogramObserver.merge(contentsOf:)`). Moving averages depend on the order of the batches and do not
/// merge.
public protocol MergeableObserver: Observer {
    /// Folds the statistics of `others` (configured like this observer) into this one, in array order.
    /// - Throws: `QuantizationError.invalidOperand` when an observer's configuration differs.
    func merge(contentsOf others: [Self]) throws
}

extension MergeableObserver {
    /// Folds the statistics of `other` (configured like this observer) into this one.
    /// - Throws: `QuantizationError.invalidOperand` when the configurations differ.
    public func merge(_ other: Self) throws {
        try merge(contentsOf: [other])
    }
}

// MARK: - Shared configuration and qparams

/// The options every uniform-quantization observer takes, validated as PyTorch validates them, with the
/// quantization range they give. PyTorch: `UniformQuantizationObserverBase.__init__` and `calculate_qmin_qmax`.
struct UniformQuantization: Equatable, Sendable, Codable {
    var dtype: QuantizedDType
    var qscheme: QScheme
    var reduceRange: Bool
    /// The `quant_min` / `quant_max` the user gave (before `reduce_range` halves them), if any.
    var customQuantMin: Int?
    var customQuantMax: Int?
    var eps: Float
    /// The range the parameters map to.
    private(set) var quantMin: Int
    private(set) var quantMax: Int

    enum Granularity { case perTensor, perChannel }

    private enum CodingKeys: String, CodingKey {
        case dtype, qscheme, reduceRange, customQuantMin = "quantMin", customQuantMax = "quantMax", eps
    }

    /// - Throws: `QuantizationError.qschemeMismatch` for a scheme of the other granularity, `.invalidOperand` (named
    ///   after `observer`) for the combinations PyTorch rejects and for ranges no dtype value can hold.
    init(observer: String, granularity: Granularity, dtype: QuantizedDType, qscheme: QScheme, reduceRange: Bool,
         quantMin: Int?, quantMax: Int?, eps: Float) throws(QuantizationError)
    {
        switch granularity {
        case .perTensor where qscheme.isPerChannel:
            throw .qschemeMismatch(qscheme, expected: "per_tensor_affine or per_tensor_symmetric (\(observer))")
        case .perChannel where !qscheme.isPerChannel:
            throw .qschemeMismatch(qscheme, expected: "per_channel_affine or per_channel_symmetric (\(observer))")
        default: break
        }
        if qscheme.isSymmetric && reduceRange && dtype == .quint8 {
            throw .invalidOperand(operation: observer, reason: "cannot reduce the range of symmetric quantization "
                                  + "for quint8 (PyTorch: NotImplementedError); use qint8, an affine scheme, or "
                                  + "quantMin/quantMax")
        }
        guard QParamChecks.isValidScale(eps) else {
            throw .invalidOperand(operation: observer, reason: "eps must be finite and > 0 (at least 2.9e-39), got "
                                  + "\(eps)")
        }
        var low: Int, high: Int
        switch (quantMin, quantMax) {
        case let (low?, high?):
            // PyTorch's validate_qmin_qmax and calculate_qmin_qmax checks, then the dtype's range (which PyTorch
            // only checks for the width, and not at all for quint8).
            guard low <= 0 && 0 <= high else {
                throw .invalidOperand(operation: observer, reason: "the quantization range [\(low), \(high)] must "
                                      + "include 0")
            }
            guard low < high else {
                throw .invalidOperand(operation: observer, reason: "quantMin \(low) must be less than quantMax "
                                      + "\(high)")
            }
            guard dtype.range.contains(low) && dtype.range.contains(high) else {
                throw .invalidOperand(operation: observer, reason: "the quantization range [\(low), \(high)] must "
                                      + "lie inside the \(dtype) range \(dtype.range.lowerBound)..."
                                      + "\(dtype.range.upperBound)")
            }
        case (nil, nil):
            break
        default:
            throw .invalidOperand(operation: observer, reason: "give both quantMin and quantMax or neither "
                                  + "(PyTorch silently ignores a lone one)")
        }
        if let customLow = quantMin, let customHigh = quantMax {
            (low, high) = (customLow, customHigh)
            if reduceRange {
                (low, high) = (Self.floorHalf(low), Self.floorHalf(high))
            }
        } else {
            switch dtype {
            case .qint8: (low, high) = reduceRange ? (-64, 63) : (-128, 127)
            case .quint8: (low, high) = reduceRange ? (0, 127) : (0, 255)
            case .qint32: (low, high) = (Int(Int32.min), Int(Int32.max))
            }
        }
        self.dtype = dtype
        self.qscheme = qscheme
        self.reduceRange = reduceRange
        self.customQuantMin = quantMin
        self.customQuantMax = quantMax
        self.eps = eps
        self.quantMin = low
        self.quantMax = high
    }

    /// Re-validates decoded options (so that a tampered archive cannot build an invalid observer).
    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let dtype = try c.decode(QuantizedDType.self, forKey: .dtype)
        let qscheme = try c.decode(QScheme.self, forKey: .qscheme)
        let granularity: Granularity = qscheme.isPerChannel ? .perChannel : .perTensor
        let reduceRange = try c.decode(Bool.self, forKey: .reduceRange), eps = try c.decode(Float.self, forKey: .eps)
        let quantMin = try c.decodeIfPresent(Int.self, forKey: .customQuantMin)
        let quantMax = try c.decodeIfPresent(Int.self, forKey: .customQuantMax)
        do {
            self = try UniformQuantization(observer: "decoded observer", granularity: granularity, dtype: dtype,
                                           qscheme: qscheme, reduceRange: reduceRange, quantMin: quantMin,
                                           quantMax: quantMax, eps: eps)
        } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                                                    debugDescription: error.description, underlyingError: error))
        }
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(dtype, forKey: .dtype)
        try c.encode(qscheme, forKey: .qscheme)
        try c.encode(reduceRange, forKey: .reduceRange)
        try c.encodeIfPresent(customQuantMin, forKey: .customQuantMin)
        try c.encodeIfPresent(customQuantMax, forKey: .customQuantMax)
        try c.encode(eps, forKey: .eps)
    }

    /// Python's `n // 2`.
    private static func floorHalf(_ n: Int) -> Int { n >= 0 ? n / 2 : -((-n + 1) / 2) }

    /// The zero point of the symmetric schemes: 128 for quint8 (the middle of a custom range), else 0.
    var symmetricZeroPoint: Int {
        guard dtype == .quint8 else { return 0 }
        return customQuantMin != nil ? Self.floorHalf(quantMin + quantMax) : 128
    }

    /// `_calculate_qparams` of one (min, max) pair, in PyTorch's fp32 operations. The range is extended to contain
    /// 0; symmetric: `scale = max(-min, max) / ((qmax - qmin) / 2)`; affine: `scale = (max - min) / (qmax - qmin)`,
    /// `zero_point = clamp(qmin - round(min / scale), qmin, qmax)`; the scale is at least `eps`.
    func qparams(min: Float, max: Float) -> (scale: Float, zeroPoint: Int) {
        let minNeg = Swift.min(min, 0), maxPos = Swift.max(max, 0)
        if qscheme.isSymmetric {
            let bound = Swift.max(-minNeg, maxPos)
            let scale = Swift.max(bound / Float(Double(quantMax - quantMin) / 2), eps)
            return (scale, symmetricZeroPoint)
        }
        let scale = Swift.max((maxPos - minNeg) / Float(quantMax - quantMin), eps)
        let steps = Double((minNeg / scale).rounded(.toNearestOrEven))
        let zeroPoint = steps.isFinite ? Double(quantMin) - steps : Double(quantMin)
        return (scale, Int(Swift.min(Swift.max(zeroPoint, Double(quantMin)), Double(quantMax))))
    }

    /// The parameters of per-tensor statistics, or PyTorch's `(1.0, 0)` when nothing was observed.
    func parameters(min: Float, max: Float) -> QuantizationParameters {
        guard min <= max else { return QuantizationParameters(scale: 1, zeroPoint: 0, dtype: dtype,
                                                               qscheme: reportedScheme(zeroPoints: [0])) }
        let (scale, zeroPoint) = qparams(min: min, max: max)
        return QuantizationParameters(scale: scale, zeroPoint: zeroPoint, dtype: dtype,
                                      qscheme: reportedScheme(zeroPoints: [zeroPoint]))
    }

    /// The parameters of per-channel statistics (`axis` as the tensors had it), or PyTorch's single `(1.0, 0)` when
    /// nothing was observed. A channel that never saw a finite value is treated as the range [0, 0].
    func parameters(mins: [Float], maxs: [Float], axis: Int) -> QuantizationParameters {
        guard !mins.isEmpty else {
            return QuantizationParameters(scales: [1], zeroPoints: [0], axis: axis, dtype: dtype,
                                          qscheme: reportedScheme(zeroPoints: [0]))
        }
        var scales: [Float] = [], zeroPoints: [Int] = []
        for (lo, hi) in zip(mins, maxs) {
            let (s, z) = lo <= hi ? qparams(min: lo, max: hi) : qparams(min: 0, max: 0)
            scales.append(s)
            zeroPoints.append(z)
        }
        return QuantizationParameters(scales: scales, zeroPoints: zeroPoints, axis: axis, dtype: dtype,
                                      qscheme: reportedScheme(zeroPoints: zeroPoints))
    }

    /// The observer's scheme, or its affine counterpart when a zero point is not the dtype's symmetric one (a
    /// custom quint8 range, or the uncalibrated `(1.0, 0)`), so that `Tensor.quantized(with:)` accepts the result;
    /// PyTorch quantizes with such parameters as affine too.
    private func reportedScheme(zeroPoints: [Int]) -> QScheme {
        guard qscheme.isSymmetric, zeroPoints.contains(where: { $0 != dtype.symmetricZeroPoint }) else {
            return qscheme
        }
        return qscheme.isPerChannel ? .perChannelAffine : .perTensorAffine
    }

    /// - Throws: `QuantizationError.invalidOperand` naming `observer` when `other` is configured differently.
    func checkMergeable(with other: UniformQuantization, observer: String) throws(QuantizationError) {
        guard self == other else {
            throw .invalidOperand(operation: observer, reason: "cannot merge observers configured differently "
                                  + "(\(describe()) and \(other.describe()))")
        }
    }

    func describe() -> String {
        var text = "\(dtype) \(qscheme) quant range \(quantMin)...\(quantMax) eps \(eps)"
        if reduceRange { text += " reduce_range" }
        return text
    }
}

/// Shared by the observers that keep a running min and max.
enum ObserverStatistics {
    /// The finite min/max of `x` (NaN and infinities skipped; `nil` when nothing is left), with -0.0 read as 0.0 so
    /// that every ISA path gives the same bits.
    static func finiteMinMax(_ x: Tensor<Float>) throws -> (min: Float, max: Float)? {
        guard x.count > 0 else { return nil }
        let (lo, hi) = try x.withUnsafeBufferPointer { buffer in
            try Kernels.minMax(count: buffer.count, input: buffer.baseAddress!, finiteOnly: true)
        }
        guard lo <= hi else { return nil }
        return (lo + 0, hi + 0)
    }

    /// `running + c * (batch - running)` in fp32, as PyTorch's moving averages compute it.
    static func movingAverage(_ running: Float, _ batch: Float, _ c: Float) -> Float {
        let difference = batch - running
        let step = c * difference
        return running + step
    }

    /// Codable form of a statistic that is +-infinity while nothing was observed (JSON has no infinities).
    static func encoded(_ value: Float) -> Float? { value.isFinite ? value : nil }
}
