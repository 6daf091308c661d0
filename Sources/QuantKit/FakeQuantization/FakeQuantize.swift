/// A module that fake-quantizes the tensors flowing through a point of a model during quantization-aware training:
/// it observes them (to choose quantization parameters) and rounds them to the quantized grid in float, so that
/// training sees the quantization error. `forward` computes the output and keeps what `backward` needs, so an
/// autograd engine calls `forward(x)` and later `backward(gradOutput)` for the same step.
///
/// PyTorch: `torch.ao.quantization.FakeQuantizeBase` (its `fake_quant_enabled` and `observer_enabled` buffers and the
/// `enable_*` / `disable_*` methods).
public protocol FakeQuantizeBase: AnyObject {
    /// Whether `forward` fake-quantizes (else it returns its input). PyTorch: `fake_quant_enabled[0] == 1`.
    var fakeQuantEnabled: Bool { get set }
    /// Whether `forward` updates the statistics and the parameters. PyTorch: `observer_enabled[0] == 1`.
    var observerEnabled: Bool { get set }
    /// Observes `x` (when enabled) and returns it fake-quantized (when enabled). PyTorch: `forward(X)`.
    func forward(_ x: Tensor<Float>) throws -> Tensor<Float>
    /// The gradient with respect to the input of the last `forward`, from the gradient of its output.
    /// PyTorch: the autograd backward of `forward`.
    func backward(_ gradOutput: Tensor<Float>) throws -> Tensor<Float>
    /// The quantization parameters for conversion. PyTorch: `calculate_qparams()`.
    func calculateQParams() throws -> QuantizationParameters
}

extension FakeQuantizeBase {
    /// PyTorch: `enable_fake_quant(enabled=True)`.
    public func enableFakeQuant(_ enabled: Bool = true) { fakeQuantEnabled = enabled }
    /// PyTorch: `disable_fake_quant()`.
    public func disableFakeQuant() { fakeQuantEnabled = false }
    /// PyTorch: `enable_observer(enabled=True)`.
    public func enableObserver(_ enabled: Bool = true) { observerEnabled = enabled }
    /// PyTorch: `disable_observer()`.
    public func disableObserver() { observerEnabled = false }
}

/// What a fixed-parameter forward kept for its backward.
enum StraightThroughState {
    case identity(shape: [Int])              // fake quantization was off: the gradient passes unchanged
    case mask(Tensor<UInt8>)                 // the straight-through mask

    func backward(_ gradOutput: Tensor<Float>, operation: String) throws -> Tensor<Float> {
        switch self {
        case let .identity(shape):
            try FakeQuantChecks.checkSameShape(operation, gradOutput.shape, shape, "the last forward's input")
            return gradOutput
        case let .mask(mask):
            try FakeQuantChecks.checkSameShape(operation, gradOutput.shape, mask.shape, "the last forward's input")
            return try fakeQuantizeCachemaskBackward(gradOutput, mask: mask)
        }
    }
}

/// Fake quantization with parameters from an observer: every `forward` (with the observer enabled) observes the
/// input, asks the observer for its parameters and stores them in `scale` / `zeroPoint`; then (with fake
/// quantization enabled) it applies `fakeQuantizePerTensorAffine` or `fakeQuantizePerChannelAffine` with them and
/// keeps the straight-through mask for `backward`.
///
/// The quantization range is the observer's `quantMin...quantMax` (so a `reduceRange` observer gives `0...127`, as
/// PyTorch's `default_fake_quant`).
///
/// PyTorch: `torch.ao.quantization.FakeQuantize(observer, quant_min, quant_max, **observer_kwargs)`, whose range
/// arguments go to the observer (here: build the observer with them).
public final class FakeQuantize: FakeQuantizeBase {
    /// The observer. PyTorch: `activation_post_process`.
    public let observer: any Observer
    /// The smallest quantized value. PyTorch: `activation_post_process.quant_min`.
    public let quantMin: Int
    /// The largest quantized value. PyTorch: `activation_post_process.quant_max`.
    public let quantMax: Int
    /// PyTorch: `fake_quant_enabled`.
    public var fakeQuantEnabled = true
    /// PyTorch: `observer_enabled`.
    public var observerEnabled = true
    /// The scales in use: one per tensor, or one per channel once a per-channel observer has produced them.
    /// PyTorch: the `scale` buffer (initially `[1.0]`).
    public private(set) var scale: [Float] = [1]
    /// The zero points in use. PyTorch: the `zero_point` buffer (initially `[0]`).
    public private(set) var zeroPoint: [Int] = [0]
    /// The channel axis of per-channel parameters (from the observer's parameters). PyTorch: `ch_axis`.
    public private(set) var axis: Int?

    private var state: StraightThroughState?

    /// - Parameter observer: chooses the parameters; its `qscheme` selects per-tensor or per-channel fake quantization
    ///   and its `quantMin...quantMax` is the quantization range.
    /// - Throws: `QuantizationError.invalidOperand` when the observer's range exceeds ±2^23 (a `qint32` observer's
    ///   full range: the fake-quantization kernels compute exactly in float up to 16-bit ranges and beyond).
    public init(observer: any Observer) throws {
        try FakeQuantChecks.checkRange("FakeQuantize", quantMin: observer.quantMin, quantMax: observer.quantMax)
        self.observer = observer
        self.quantMin = observer.quantMin
        self.quantMax = observer.quantMax
    }

    /// The observer's dtype. PyTorch: `dtype`.
    public var dtype: QuantizedDType { observer.dtype }
    /// The observer's scheme. PyTorch: `qscheme`.
    public var qscheme: QScheme { observer.qscheme }

    /// Observes `x` and updates `scale` / `zeroPoint` (observer enabled), then fake-quantizes it (fake quantization
    /// enabled) keeping the straight-through mask, or returns it unchanged.
    ///
    /// PyTorch: `FakeQuantize.forward(X)`.
    /// - Throws: what the observer throws; what the fake quantization throws for its parameters (e.g. a zero point
    ///   outside `quantMin...quantMax`, or per-channel fake quantization before any per-channel parameters exist).
    public func forward(_ x: Tensor<Float>) throws -> Tensor<Float> {
        state = nil
        if observerEnabled {
            try observer.observe(x)
            let parameters = try observer.calculateQParams()
            scale = parameters.scales
            zeroPoint = parameters.zeroPoints
            axis = parameters.qscheme.isPerChannel ? parameters.axis : nil
        }
        guard fakeQuantEnabled else {
            state = .identity(shape: x.shape)
            return x
        }
        let output: Tensor<Float>, mask: Tensor<UInt8>
        if qscheme.isPerChannel {
            guard let axis else {
                throw QuantizationError.invalidOperand(
                    operation: "FakeQuantize", reason: "per-channel fake quantization needs per-channel parameters; "
                    + "run a forward pass with the observer enabled first")
            }
            (output, mask) = try fakeQuantizePerChannelAffineCachemask(x, scales: scale, zeroPoints: zeroPoint,
                                                                        axis: axis, quantMin: quantMin,
                                                                        quantMax: quantMax)
        } else {
            guard scale.count == 1, zeroPoint.count == 1 else {
                throw QuantizationError.channelCountMismatch(scales: scale.count, zeroPoints: zeroPoint.count,
                                                             channels: 1, axis: 0)
            }
            (output, mask) = try fakeQuantizePerTensorAffineCachemask(x, scale: scale[0], zeroPoint: zeroPoint[0],
                                                                       quantMin: quantMin, quantMax: quantMax)
        }
        state = .mask(mask)
        return output
    }

    /// `gradOutput` times the mask of the last `forward` (unchanged when that forward did not fake-quantize).
    ///
    /// PyTorch: the autograd backward of `FakeQuantize.forward` (`fake_quantize_*_cachemask_backward`).
    /// - Throws: `QuantizationError.invalidOperand` before any forward pass or when the shape differs from its input.
    public func backward(_ gradOutput: Tensor<Float>) throws -> Tensor<Float> {
        guard let state else {
            throw QuantizationError.invalidOperand(operation: "FakeQuantize.backward",
                                                   reason: "no forward pass to differentiate; call forward first")
        }
        return try state.backward(gradOutput, operation: "FakeQuantize.backward")
    }

    /// The observer's parameters. PyTorch: `FakeQuantize.calculate_qparams()`.
    public func calculateQParams() throws -> QuantizationParameters {
        try observer.calculateQParams()
    }
}
