/// An error thrown by QuantKit. Every description says what was wrong and what was expected.
///
/// PyTorch: the `RuntimeError` / `ValueError` messages raised by `torch.quantize_per_tensor`,
/// `torch.quantize_per_channel`, `Tensor.view` and friends.
public enum QuantizationError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A shape has a negative dimension (other than one inferred `-1` in `reshaped(to:)`), more than one `-1`,
    /// a `-1` that cannot be inferred, or an element count that overflows `Int`.
    ///
    /// PyTorch: `RuntimeError: invalid shape dimension -2`.
    case invalidShape(shape: [Int], reason: String)

    /// A shape describes `shape.reduce(1, *)` elements but `count` elements were given.
    ///
    /// PyTorch: `RuntimeError: shape '[4, 2]' is invalid for input of size 6`.
    case shapeMismatch(shape: [Int], count: Int)

    /// A scale is not finite, not positive, or so small (subnormal below about 2.9e-39) that its reciprocal is
    /// infinite. `channel` is set for per-channel scales.
    ///
    /// PyTorch: quantizing with such a scale produces garbage or raises; QuantKit always rejects it.
    case invalidScale(Float, channel: Int?)

    /// A zero point lies outside the range of the quantized dtype. `channel` is set for per-channel zero points.
    ///
    /// PyTorch: `RuntimeError: quantize_tensor_per_tensor_affine zero_point 300 is out of range`.
    case zeroPointOutOfRange(Int, dtype: QuantizedDType, channel: Int?)

    /// A symmetric quantization scheme was requested with a zero point other than the dtype's symmetric one
    /// (0 for `qint8`/`qint32`, 128 for `quint8`).
    ///
    /// PyTorch: no equivalent check (PyTorch stores symmetric tensors as affine); it mirrors the zero points that
    /// `torch.ao.quantization` observers pick for `per_tensor_symmetric` / `per_channel_symmetric`.
    case symmetricZeroPoint(Int, expected: Int, dtype: QuantizedDType, channel: Int?)

    /// A quantization scheme that does not fit the call, e.g. a per-channel scheme passed to a per-tensor function.
    ///
    /// PyTorch: `RuntimeError: Expected quantizer->qscheme() == kPerTensorAffine to be true`.
    case qschemeMismatch(QScheme, expected: String)

    /// An axis outside `-rank..<rank`.
    ///
    /// PyTorch: `IndexError: Dimension out of range (expected to be in range of [-2, 1], but got 2)`.
    case axisOutOfRange(Int, rank: Int)

    /// The per-channel parameter arrays do not have one entry per channel of the quantization axis.
    ///
    /// PyTorch: `RuntimeError: length of scales must equal to channel`.
    case channelCountMismatch(scales: Int, zeroPoints: Int, channels: Int, axis: Int)

    /// A quantized tensor holds a different dtype than the one asked for.
    ///
    /// PyTorch: `RuntimeError: expected scalar type ... but found ...`.
    case dtypeMismatch(expected: QuantizedDType, actual: QuantizedDType)

    /// A thread count outside `1...maximum`.
    ///
    /// PyTorch: `torch.set_num_threads` with a count < 1 raises `RuntimeError: Number of threads must be positive`.
    case invalidThreadCount(Int, maximum: Int)

    /// An ISA name QuantKit does not know.
    ///
    /// PyTorch: an unknown `ATEN_CPU_CAPABILITY` value (which PyTorch ignores with a warning).
    case unknownISA(String, known: [String])

    /// An ISA level this CPU (or build) cannot run.
    ///
    /// PyTorch: `ATEN_CPU_CAPABILITY` above the CPU's capability (which PyTorch silently lowers).
    case unsupportedISA(String, supported: [String])

    /// An operand of an operator has a dtype, scheme or shape the operator does not accept, e.g. a linear weight that
    /// is not `qint8`, a per-channel weight quantized along another axis than 0, or an input whose last dimension is
    /// not the weight's `inFeatures`. `operation` is the PyTorch-style operator name.
    ///
    /// PyTorch: the `RuntimeError`s of `torch.ops.quantized.linear_prepack` / `linear` / `linear_dynamic`, e.g.
    /// `RuntimeError: quantized::linear_prepack (fbgemm): Weight tensor must be qint8`.
    case invalidOperand(operation: String, reason: String)

    /// The kernel runtime could not be used, e.g. because `QUANTKIT_ISA` names an unknown or unsupported ISA.
    ///
    /// PyTorch: no equivalent (PyTorch falls back silently; QuantKit never runs on an ISA nobody asked for).
    case runtime(String)

    /// The kernels rejected an argument that Swift-side validation let through (a bug in QuantKit if it happens).
    ///
    /// PyTorch: the generic `RuntimeError` of a failed `TORCH_CHECK`.
    case invalidArgument(String)

    /// The kernels could not allocate scratch memory.
    ///
    /// PyTorch: `RuntimeError: DefaultCPUAllocator: can't allocate memory`.
    case outOfMemory(String)

    /// What went wrong and what was expected, in one sentence. PyTorch: `str(error)`.
    public var description: String {
        switch self {
        case let .invalidShape(shape, reason):
            return "invalid shape \(shape): \(reason)"
        case let .shapeMismatch(shape, count):
            let (product, overflow) = Self.product(shape)
            let holds = overflow ? "more than Int.max" : "\(product)"
            return "shape \(shape) holds \(holds) elements but \(count) were given; expected a shape whose "
                + "dimensions multiply to \(count)"
        case let .invalidScale(scale, channel):
            return "\(Self.label("scale", channel)) must be finite and > 0 (at least 2.9e-39, so that 1/scale is "
                + "finite), got \(scale)"
        case let .zeroPointOutOfRange(zeroPoint, dtype, channel):
            return "\(Self.label("zero point", channel)) \(zeroPoint) is outside the \(dtype) range "
                + "\(dtype.range.lowerBound)...\(dtype.range.upperBound)"
        case let .symmetricZeroPoint(zeroPoint, expected, dtype, channel):
            return "\(Self.label("zero point", channel)) of a symmetric \(dtype) scheme must be \(expected), "
                + "got \(zeroPoint)"
        case let .qschemeMismatch(scheme, expected):
            return "quantization scheme \(scheme) does not fit here; expected \(expected)"
        case let .axisOutOfRange(axis, rank):
            if rank == 0 {
                return "axis \(axis) is out of range for a rank-0 tensor; per-channel quantization needs rank >= 1"
            }
            return "axis \(axis) is out of range for a rank-\(rank) tensor; expected \(-rank)...\(rank - 1)"
        case let .channelCountMismatch(scales, zeroPoints, channels, axis):
            return "axis \(axis) has \(channels) channels, so \(channels) scales and \(channels) zero points are "
                + "expected; got \(scales) scales and \(zeroPoints) zero points"
        case let .dtypeMismatch(expected, actual):
            return "the quantized tensor holds \(actual) values, not \(expected); ask for the matching integer "
                + "type (\(actual.integerTypeName))"
        case let .invalidThreadCount(count, maximum):
            return "thread count must be in 1...\(maximum) (or nil for the default), got \(count)"
        case let .unknownISA(name, known):
            return "unknown ISA '\(name)'; expected one of \(known.joined(separator: ", ")) or \"auto\""
        case let .unsupportedISA(name, supported):
            return "ISA '\(name)' is not supported by this CPU or build; supported here: "
                + supported.joined(separator: ", ")
        case let .invalidOperand(operation, reason):
            return "\(operation): \(reason)"
        case let .runtime(message):
            return "QuantKit runtime error: \(message)"
        case let .invalidArgument(message):
            return "invalid argument: \(message)"
        case let .outOfMemory(message):
            return "out of memory: \(message)"
        }
    }

    private static func label(_ what: String, _ channel: Int?) -> String {
        channel.map { "\(what) of channel \($0)" } ?? what
    }

    static func product(_ shape: [Int]) -> (Int, overflow: Bool) {
        var result = 1
        for dimension in shape {
            let (next, overflow) = result.multipliedReportingOverflow(by: dimension)
            if overflow { return (0, true) }
            result = next
        }
        return (result, false)
    }
}
