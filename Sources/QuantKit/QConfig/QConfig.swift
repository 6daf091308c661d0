/// What a qconfig slot makes for one point of a model: an observer (post-training calibration, dynamic and fp16
/// quantization) or a fake-quantize module (quantization-aware training).
///
/// PyTorch: `torch.ao.quantization.utils.ObserverOrFakeQuantize`, the type of `activation_post_process`.
public enum ObserverOrFakeQuantize {
    /// An observer or a placeholder. PyTorch: an `ObserverBase` instance.
    case observer(any ObserverBase)
    /// A fake-quantize module. PyTorch: a `FakeQuantizeBase` instance.
    case fakeQuantize(any FakeQuantizeBase)

    /// The observer, or the fake-quantize module's observer when it has one.
    public var observer: (any ObserverBase)? {
        switch self {
        case let .observer(observer): return observer
        case let .fakeQuantize(fakeQuantize):
            switch fakeQuantize {
            case let f as FakeQuantize: return f.observer
            case let f as FusedMovingAvgObsFakeQuantize: return f.observer
            case let f as LearnableFakeQuantize: return f.observer
            default: return nil
            }
        }
    }

    /// The quantization parameters it has chosen. PyTorch: `activation_post_process.calculate_qparams()`.
    /// - Throws: `QuantizationError.invalidOperand` for a placeholder, which has no parameters (PyTorch raises too).
    public func calculateQParams() throws -> QuantizationParameters {
        switch self {
        case let .fakeQuantize(fakeQuantize): return try fakeQuantize.calculateQParams()
        case let .observer(observer):
            guard let observer = observer as? any Observer else {
                throw QuantizationError.invalidOperand(
                    operation: "calculateQParams", reason: "\(type(of: observer)) has no quantization parameters "
                    + "(PyTorch: PlaceholderObserver.calculate_qparams raises)")
            }
            return try observer.calculateQParams()
        }
    }
}

/// The eager-mode backends whose default configurations QuantKit reproduces. PyTorch: the `backend` argument of
/// `get_default_qconfig` / `get_default_qat_qconfig` (`torch.backends.quantized.engine` names).
public enum QuantizationBackend: String, Sendable, CaseIterable, CustomStringConvertible {
    /// PyTorch's default since 2.0 (FBGEMM kernels plus oneDNN). PyTorch: `"x86"`.
    case x86
    /// PyTorch: `"fbgemm"` (same defaults as x86).
    case fbgemm
    /// Mobile ARM. PyTorch: `"qnnpack"`.
    case qnnpack
    /// PyTorch: `"onednn"`.
    case onednn

    public var description: String { rawValue }
}

/// How to quantize one module: a factory for the activation observer (or fake-quant) and one for the weight's.
/// Each `prepare` calls the factories, so every module gets its own fresh instances.
///
/// PyTorch: `torch.ao.quantization.QConfig(activation, weight)`, a pair of constructors (`Observer.with_args(...)`).
/// The presets are the PyTorch 2.15 ones; each names its PyTorch value.
public struct QConfig: @unchecked Sendable, CustomStringConvertible {
    /// Makes the activation's observer or fake-quant. PyTorch: `qconfig.activation()`.
    public let activation: () throws -> ObserverOrFakeQuantize
    /// Makes the weight's observer or fake-quant. PyTorch: `qconfig.weight()`.
    public let weight: () throws -> ObserverOrFakeQuantize
    /// A short name for printing (a preset's PyTorch name, or "custom").
    public let name: String

    /// PyTorch: `QConfig(activation=..., weight=...)`.
    public init(name: String = "custom", activation: @escaping () throws -> ObserverOrFakeQuantize,
                weight: @escaping () throws -> ObserverOrFakeQuantize) {
        self.name = name
        self.activation = activation
        self.weight = weight
    }

    public var description: String { "QConfig(\(name))" }
}

// MARK: - Observer presets (PyTorch's module-level constructors in observer.py / fake_quantize.py)

extension QConfig {
    /// MinMax quint8 in 0...127. PyTorch: `default_observer`.
    static func defaultObserver() throws -> ObserverOrFakeQuantize {
        .observer(try MinMaxObserver(quantMin: 0, quantMax: 127))
    }

    /// MinMax qint8 per-tensor symmetric. PyTorch: `default_weight_observer`.
    static func defaultWeightObserver() throws -> ObserverOrFakeQuantize {
        .observer(try MinMaxObserver(dtype: .qint8, qscheme: .perTensorSymmetric))
    }

    /// PerChannelMinMax qint8 per-channel symmetric, axis 0. PyTorch: `default_per_channel_weight_observer`.
    static func defaultPerChannelWeightObserver() throws -> ObserverOrFakeQuantize {
        .observer(try PerChannelMinMaxObserver(chAxis: 0, dtype: .qint8, qscheme: .perChannelSymmetric))
    }

    /// PyTorch: `HistogramObserver.with_args(reduce_range=...)` (x86 / qnnpack default activations).
    static func histogramObserver(reduceRange: Bool) throws -> ObserverOrFakeQuantize {
        .observer(try HistogramObserver(reduceRange: reduceRange))
    }

    /// Moving-average min/max, 0...255 quint8 (halved by `reduceRange`). PyTorch: `default_fake_quant`
    /// (`reduce_range=True`) and the v0 QAT activations.
    static func activationFakeQuant(reduceRange: Bool) throws -> ObserverOrFakeQuantize {
        .fakeQuantize(try FakeQuantize(observer: MovingAverageMinMaxObserver(
            dtype: .quint8, reduceRange: reduceRange, quantMin: 0, quantMax: 255)))
    }

    /// PyTorch: `default_weight_fake_quant` (moving-average min/max, qint8 -128...127, per-tensor symmetric).
    static func weightFakeQuant() throws -> ObserverOrFakeQuantize {
        .fakeQuantize(try FakeQuantize(observer: MovingAverageMinMaxObserver(
            dtype: .qint8, qscheme: .perTensorSymmetric, quantMin: -128, quantMax: 127)))
    }

    /// PyTorch: `default_per_channel_weight_fake_quant` (per-channel symmetric qint8, axis 0).
    static func perChannelWeightFakeQuant() throws -> ObserverOrFakeQuantize {
        .fakeQuantize(try FakeQuantize(observer: MovingAveragePerChannelMinMaxObserver(
            chAxis: 0, dtype: .qint8, qscheme: .perChannelSymmetric, quantMin: -128, quantMax: 127)))
    }

    /// PyTorch: `FusedMovingAvgObsFakeQuantize.with_args(observer=MovingAverageMinMaxObserver, quant_min=0,
    /// quant_max=255, reduce_range=...)` (`default_fused_act_fake_quant` without reduce_range).
    static func fusedActivationFakeQuant(reduceRange: Bool) throws -> ObserverOrFakeQuantize {
        .fakeQuantize(try FusedMovingAvgObsFakeQuantize(quantMin: 0, quantMax: 255, dtype: .quint8,
                                                        reduceRange: reduceRange))
    }

    /// PyTorch: `default_fused_wt_fake_quant` (qint8 -128...127, per-tensor symmetric).
    static func fusedWeightFakeQuant() throws -> ObserverOrFakeQuantize {
        .fakeQuantize(try FusedMovingAvgObsFakeQuantize(quantMin: -128, quantMax: 127, dtype: .qint8,
                                                        qscheme: .perTensorSymmetric))
    }

    /// PyTorch: `default_fused_per_channel_wt_fake_quant` (qint8 -128...127, per-channel symmetric, axis 0).
    static func fusedPerChannelWeightFakeQuant() throws -> ObserverOrFakeQuantize {
        .fakeQuantize(try FusedMovingAvgObsFakeQuantize(quantMin: -128, quantMax: 127, dtype: .qint8,
                                                        qscheme: .perChannelSymmetric, chAxis: 0))
    }
}

// MARK: - QConfig presets

extension QConfig {
    /// MinMax activations in 0...127, per-tensor symmetric qint8 weights. PyTorch: `default_qconfig`.
    public static var `default`: QConfig {
        QConfig(name: "default_qconfig", activation: defaultObserver, weight: defaultWeightObserver)
    }

    /// MinMax activations in 0...127, per-channel symmetric qint8 weights. PyTorch: `default_per_channel_qconfig`.
    public static var defaultPerChannel: QConfig {
        QConfig(name: "default_per_channel_qconfig", activation: defaultObserver,
                weight: defaultPerChannelWeightObserver)
    }

    /// Dynamic quantization: activations quantized at run time (quint8 0...255), per-tensor symmetric qint8
    /// weights. PyTorch: `default_dynamic_qconfig`.
    public static var defaultDynamic: QConfig {
        QConfig(name: "default_dynamic_qconfig", activation: { .observer(PlaceholderObserver.dynamicQuantization()) },
                weight: defaultWeightObserver)
    }

    /// Dynamic quantization with per-channel symmetric qint8 weights. PyTorch: `per_channel_dynamic_qconfig`.
    public static var perChannelDynamic: QConfig {
        QConfig(name: "per_channel_dynamic_qconfig",
                activation: { .observer(PlaceholderObserver.dynamicQuantization()) },
                weight: defaultPerChannelWeightObserver)
    }

    /// fp16 weights, fp32 activations quantized nowhere (dynamic). PyTorch: `float16_dynamic_qconfig`.
    public static var float16Dynamic: QConfig {
        QConfig(name: "float16_dynamic_qconfig",
                activation: { .observer(PlaceholderObserver(dtype: .float16, isDynamic: true)) },
                weight: { .observer(PlaceholderObserver(dtype: .float16)) })
    }

    /// fp16 activations and weights. PyTorch: `float16_static_qconfig`.
    public static var float16Static: QConfig {
        QConfig(name: "float16_static_qconfig", activation: { .observer(PlaceholderObserver(dtype: .float16)) },
                weight: { .observer(PlaceholderObserver(dtype: .float16)) })
    }

    /// The post-training default of a backend: histogram activations (with `reduceRange` on x86 and fbgemm, giving
    /// 0...127) and per-channel symmetric weights (per-tensor on qnnpack).
    /// PyTorch: `get_default_qconfig(backend, version=0)`.
    public static func defaultQConfig(backend: QuantizationBackend = .x86) -> QConfig {
        switch backend {
        case .x86, .fbgemm:
            return QConfig(name: "get_default_qconfig('\(backend)')",
                           activation: { try histogramObserver(reduceRange: true) },
                           weight: defaultPerChannelWeightObserver)
        case .qnnpack:
            return QConfig(name: "get_default_qconfig('qnnpack')",
                           activation: { try histogramObserver(reduceRange: false) }, weight: defaultWeightObserver)
        case .onednn:
            return QConfig(name: "get_default_qconfig('onednn')",
                           activation: { try histogramObserver(reduceRange: false) },
                           weight: defaultPerChannelWeightObserver)
        }
    }

    /// FakeQuantize activations (moving-average min/max, 0...127) and per-tensor symmetric weights.
    /// PyTorch: `default_qat_qconfig`.
    public static var defaultQAT: QConfig {
        QConfig(name: "default_qat_qconfig", activation: { try activationFakeQuant(reduceRange: true) },
                weight: weightFakeQuant)
    }

    /// The fused observer + fake-quant modules (no reduce_range), per-tensor symmetric weights.
    /// PyTorch: `default_qat_qconfig_v2`.
    public static var defaultQATv2: QConfig {
        QConfig(name: "default_qat_qconfig_v2", activation: { try fusedActivationFakeQuant(reduceRange: false) },
                weight: fusedWeightFakeQuant)
    }

    /// The quantization-aware-training default of a backend. Version 1 (PyTorch's default) uses the fused
    /// `FusedMovingAvgObsFakeQuantize`, version 0 `FakeQuantize`; activations 0...255 halved by reduce_range on x86 /
    /// fbgemm; weights per-channel symmetric (per-tensor on qnnpack).
    /// PyTorch: `get_default_qat_qconfig(backend, version)`.
    /// - Throws: `QuantizationError.invalidOperand` for a version other than 0 or 1 (PyTorch: AssertionError).
    public static func defaultQATQConfig(backend: QuantizationBackend = .x86, version: Int = 1) throws -> QConfig {
        guard version == 0 || version == 1 else {
            throw QuantizationError.invalidOperand(operation: "defaultQATQConfig",
                                                   reason: "version must be 0 or 1, got \(version)")
        }
        let reduceRange = backend == .x86 || backend == .fbgemm
        let perChannel = backend != .qnnpack
        let name = "get_default_qat_qconfig('\(backend)', version=\(version))"
        let weight: () throws -> ObserverOrFakeQuantize
        if version == 1 {
            if perChannel { weight = { try QConfig.fusedPerChannelWeightFakeQuant() } }
            else { weight = { try QConfig.fusedWeightFakeQuant() } }
            return QConfig(name: name, activation: { try fusedActivationFakeQuant(reduceRange: reduceRange) },
                           weight: weight)
        }
        if perChannel { weight = { try QConfig.perChannelWeightFakeQuant() } }
        else { weight = { try QConfig.weightFakeQuant() } }
        return QConfig(name: name, activation: { try activationFakeQuant(reduceRange: reduceRange) }, weight: weight)
    }
}
