/// The integer type that stores quantized values.
///
/// PyTorch: `torch.quint8`, `torch.qint8`, `torch.qint32`.
public enum QuantizedDType: String, Sendable, Codable, CaseIterable, CustomStringConvertible {
    /// Unsigned 8-bit, `0...255`, stored as `UInt8`. PyTorch: `torch.quint8` (activations).
    case quint8
    /// Signed 8-bit, `-128...127`, stored as `Int8`. PyTorch: `torch.qint8` (weights).
    case qint8
    /// Signed 32-bit, stored as `Int32`. PyTorch: `torch.qint32` (biases, accumulators).
    case qint32

    /// The values this dtype can hold; quantization clamps to it.
    ///
    /// PyTorch: `torch.iinfo(t.int_repr().dtype)` min and max.
    public var range: ClosedRange<Int> {
        switch self {
        case .quint8: return 0...255
        case .qint8: return -128...127
        case .qint32: return Int(Int32.min)...Int(Int32.max)
        }
    }

    /// Bits per value. PyTorch: `torch.iinfo(dtype).bits`.
    public var bitWidth: Int { self == .qint32 ? 32 : 8 }

    /// The zero point a symmetric scheme uses: 128 for `quint8`, else 0.
    ///
    /// PyTorch: what `MinMaxObserver(qscheme=torch.per_tensor_symmetric)` picks.
    public var symmetricZeroPoint: Int { self == .quint8 ? 128 : 0 }

    /// The name, as PyTorch prints it without the `torch.` prefix.
    public var description: String { rawValue }

    var integerTypeName: String {
        switch self {
        case .quint8: return "UInt8"
        case .qint8: return "Int8"
        case .qint32: return "Int32"
        }
    }
}

/// How the scale and zero point of a quantized tensor are organised.
///
/// PyTorch: `torch.per_tensor_affine`, `torch.per_tensor_symmetric`, `torch.per_channel_affine`,
/// `torch.per_channel_symmetric` (the values of `t.qscheme()`). As in PyTorch, tensors produced by quantization are
/// *affine*; the symmetric schemes describe how qparams were chosen and require the dtype's symmetric zero point.
public enum QScheme: String, Sendable, Equatable, Codable, CaseIterable, CustomStringConvertible {
    /// One scale and zero point for the whole tensor. PyTorch: `torch.per_tensor_affine`.
    case perTensorAffine = "per_tensor_affine"
    /// One scale, zero point fixed to the symmetric one. PyTorch: `torch.per_tensor_symmetric`.
    case perTensorSymmetric = "per_tensor_symmetric"
    /// One scale and zero point per slice along an axis. PyTorch: `torch.per_channel_affine`.
    case perChannelAffine = "per_channel_affine"
    /// Per channel, zero points fixed to the symmetric one. PyTorch: `torch.per_channel_symmetric`.
    case perChannelSymmetric = "per_channel_symmetric"

    /// Whether the scheme has one set of parameters per channel.
    /// PyTorch: `qscheme in (torch.per_channel_affine, torch.per_channel_symmetric)`.
    public var isPerChannel: Bool { self == .perChannelAffine || self == .perChannelSymmetric }

    /// Whether the scheme requires the dtype's symmetric zero point.
    /// PyTorch: `qscheme in (torch.per_tensor_symmetric, torch.per_channel_symmetric)`.
    public var isSymmetric: Bool { self == .perTensorSymmetric || self == .perChannelSymmetric }

    /// The PyTorch name without the `torch.` prefix, e.g. `per_tensor_affine`.
    public var description: String { rawValue }
}
