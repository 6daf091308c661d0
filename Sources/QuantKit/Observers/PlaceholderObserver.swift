/// The data types a placeholder can stand for: the quantized ones, and the float types that mean "keep this
/// tensor in floating point".
///
/// PyTorch: the `dtype` argument of `PlaceholderObserver` and `NoopObserver` (`torch.quint8`, `torch.qint8`,
/// `torch.qint32`, `torch.float16`, `torch.float32`).
public enum PlaceholderDType: String, Sendable, Codable, CaseIterable, CustomStringConvertible {
    /// PyTorch: `torch.quint8`.
    case quint8
    /// PyTorch: `torch.qint8`.
    case qint8
    /// PyTorch: `torch.qint32`.
    case qint32
    /// PyTorch: `torch.float16` (fp16 dynamic quantization, `float16_dynamic_qconfig`).
    case float16
    /// PyTorch: `torch.float32` (not quantized).
    case float32

    /// The quantized dtype, or `nil` for the float types.
    public var quantized: QuantizedDType? { QuantizedDType(rawValue: rawValue) }

    /// Stands for a quantized dtype.
    public init(_ dtype: QuantizedDType) {
        self.init(rawValue: dtype.rawValue)!
    }

    public var description: String { rawValue }
}

/// Carries a target dtype (and whether quantization is dynamic) without recording anything: the observer of
/// dynamic quantization, whose parameters are chosen at run time, and of fp16 quantization. It has no parameters to
/// calculate, so it is an `ObserverBase` and not an `Observer`.
///
/// PyTorch: `torch.ao.quantization.PlaceholderObserver(dtype=float32, custom_op_name="", quant_min=None,
/// quant_max=None, qscheme=None, eps=None, is_dynamic=False)`, whose `calculate_qparams` raises; the presets
/// `default_placeholder_observer` (`PlaceholderObserver()`) and `default_dynamic_quant_observer`
/// (`PlaceholderObserver.dynamicQuantization()`).
public final class PlaceholderObserver: ObserverBase, Codable, CustomStringConvertible {
    /// PyTorch: `observer.dtype`.
    public let dtype: PlaceholderDType
    /// PyTorch: `observer.is_dynamic`.
    public let isDynamic: Bool
    /// PyTorch: `observer.qscheme`.
    public let qscheme: QScheme
    /// PyTorch: `observer.quant_min` (`None` when not given).
    public let quantMin: Int?
    /// PyTorch: `observer.quant_max`.
    public let quantMax: Int?
    /// PyTorch: `observer.eps`.
    public let eps: Float
    /// The operator the dtype is meant for (custom module flows). PyTorch: `observer.custom_op`.
    public let customOpName: String

    /// PyTorch: `PlaceholderObserver(dtype, custom_op_name, quant_min, quant_max, qscheme, eps, is_dynamic)`; the
    /// options are carried, not validated (as in PyTorch).
    public init(dtype: PlaceholderDType = .float32, isDynamic: Bool = false, qscheme: QScheme = .perTensorAffine,
                quantMin: Int? = nil, quantMax: Int? = nil, eps: Float = .ulpOfOne, customOpName: String = "") {
        self.dtype = dtype
        self.isDynamic = isDynamic
        self.qscheme = qscheme
        self.quantMin = quantMin
        self.quantMax = quantMax
        self.eps = eps
        self.customOpName = customOpName
    }

    /// quint8 in 0...255, dynamic. PyTorch: `default_dynamic_quant_observer`.
    public static func dynamicQuantization() -> PlaceholderObserver {
        PlaceholderObserver(dtype: .quint8, isDynamic: true, quantMin: 0, quantMax: 255)
    }

    /// Does nothing. PyTorch: `observer(x)`.
    public func observe(_ x: Tensor<Float>) throws {}

    /// Does nothing: nothing is recorded.
    public func reset() {}

    public var description: String {
        "PlaceholderObserver(dtype: \(dtype), is_dynamic: \(isDynamic))"
    }
}

/// Passes tensors through and records nothing; marks a tensor to be cast (to fp16 by default) rather than
/// quantized. Like `PlaceholderObserver`, it has no parameters to calculate.
///
/// PyTorch: `torch.ao.quantization.NoopObserver(dtype=torch.float16, custom_op_name="")`, whose
/// `calculate_qparams` raises.
public final class NoopObserver: ObserverBase, Codable, CustomStringConvertible {
    /// PyTorch: `observer.dtype`.
    public let dtype: PlaceholderDType
    /// PyTorch: `observer.custom_op`.
    public let customOpName: String

    /// PyTorch: `NoopObserver(dtype=torch.float16, custom_op_name="")`.
    public init(dtype: PlaceholderDType = .float16, customOpName: String = "") {
        self.dtype = dtype
        self.customOpName = customOpName
    }

    /// Does nothing. PyTorch: `observer(x)`.
    public func observe(_ x: Tensor<Float>) throws {}

    /// Does nothing: nothing is recorded.
    public func reset() {}

    public var description: String { "NoopObserver(dtype: \(dtype))" }
}
