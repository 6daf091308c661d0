/// Learnable fake quantization (LSQ, "Learned Step Size Quantization"; with the zero point learned too, TQT): the
/// scale(s) and zero point(s) are trained by gradient descent alongside the weights. `backward` returns the input
/// gradient and accumulates `scaleGradient` / `zeroPointGradient` (while `learningEnabled`), which an optimizer
/// applies to `scale` / `zeroPoint` and clears with `zeroGrad()`.
///
/// Modes, as PyTorch's: static estimate (the observer sets the parameters every step, no learning), parameter
/// learning (observer off, gradients on), static observation (observe only, the output is the input).
///
/// PyTorch: `torch.ao.quantization._learnable_fake_quantize._LearnableFakeQuantize(observer, quant_min, quant_max,
/// scale, zero_point, channel_len, use_grad_scaling)`.
public final class LearnableFakeQuantize: FakeQuantizeBase {
    /// The observer of the static modes. PyTorch: `activation_post_process`.
    public let observer: any Observer
    /// The observer's `quantMin`. PyTorch: `quant_min`.
    public let quantMin: Int
    /// The observer's `quantMax`. PyTorch: `quant_max`.
    public let quantMax: Int
    /// Whether the gradients are scaled by `1 / sqrt(numel * quantMax)` (LSQ's gradient scaling).
    /// PyTorch: `use_grad_scaling`.
    public let useGradScaling: Bool
    /// The channel axis of per-channel schemes (taken from the observer's parameters when it provides them).
    /// PyTorch: `ch_axis`.
    public private(set) var axis: Int

    /// The learnable scales (one, or one per channel). PyTorch: the `scale` `nn.Parameter`.
    public var scale: [Float]
    /// The learnable zero points, as floats. PyTorch: the `zero_point` `nn.Parameter`.
    public var zeroPoint: [Float]
    /// The accumulated gradient of `scale`, nil until a backward pass with learning enabled. PyTorch: `scale.grad`.
    public private(set) var scaleGradient: [Float]?
    /// The accumulated gradient of `zeroPoint`. PyTorch: `zero_point.grad`.
    public private(set) var zeroPointGradient: [Float]?

    /// Whether `forward` fake-quantizes. PyTorch: `fake_quant_enabled`.
    public var fakeQuantEnabled = true
    /// Whether `forward` observes and copies the observer's parameters into `scale` / `zeroPoint`.
    /// PyTorch: `static_enabled` (what `enable_observer` / `toggle_observer_update` set).
    public var observerEnabled = true
    /// Whether `backward` accumulates the parameter gradients. PyTorch: `learning_enabled` (with `requires_grad`).
    public var learningEnabled = false

    /// The smallest scale `forward` (in the learning modes) and `calculateQParams` allow.
    /// PyTorch: `eps = torch.finfo(torch.float32).eps`.
    public let eps = Float.ulpOfOne

    private enum Saved {
        case identity(shape: [Int])
        case learnable(x: Tensor<Float>, scale: [Float], zeroPoint: [Float], gradFactor: Float)
    }
    private var saved: Saved?

    /// - Parameters:
    ///   - observer: the observer of the static modes; its `qscheme` selects per-tensor or per-channel and its
    ///     `quantMin...quantMax` (PyTorch's defaults 0 and 255, which it passes to the observer) is the range.
    ///   - scale, zeroPoint: the initial values. PyTorch: `scale=1.0`, `zero_point=0.0`.
    ///   - channelLength: the number of channels of a per-channel scheme (nil per tensor). PyTorch: `channel_len`.
    ///   - axis: the channel axis until the observer's parameters provide one. PyTorch: the observer's `ch_axis`
    ///     (default 0).
    ///   - useGradScaling: PyTorch: `use_grad_scaling`.
    /// - Throws: `QuantizationError.invalidOperand` when the observer's range is not `quantMin < quantMax` within
    ///   ±2^23, or for a channel length < 1; `.invalidScale`.
    public init(observer: any Observer, scale: Float = 1, zeroPoint: Float = 0, channelLength: Int? = nil,
                axis: Int = 0, useGradScaling: Bool = false) throws {
        let (quantMin, quantMax) = (observer.quantMin, observer.quantMax)
        try FakeQuantChecks.checkRange("LearnableFakeQuantize", quantMin: quantMin, quantMax: quantMax)
        guard quantMin < quantMax else {
            throw QuantizationError.invalidOperand(operation: "LearnableFakeQuantize", reason: "quant range "
                                                   + "[\(quantMin), \(quantMax)] must have quant_min < quant_max")
        }
        if let channelLength, channelLength <= 0 {
            throw QuantizationError.invalidOperand(operation: "LearnableFakeQuantize",
                                                   reason: "channel length must be positive, got \(channelLength)")
        }
        try QParamChecks.checkScale(scale, channel: nil)
        self.observer = observer
        self.quantMin = quantMin
        self.quantMax = quantMax
        self.useGradScaling = useGradScaling
        self.axis = axis
        self.scale = Array(repeating: scale, count: channelLength ?? 1)
        self.zeroPoint = Array(repeating: zeroPoint, count: channelLength ?? 1)
    }

    /// The observer's dtype. PyTorch: `dtype`.
    public var dtype: QuantizedDType { observer.dtype }
    /// The observer's scheme. PyTorch: `qscheme`.
    public var qscheme: QScheme { observer.qscheme }

    /// Learning on, fake quantization on, observer off. PyTorch: `enable_param_learning()`.
    public func enableParamLearning() {
        learningEnabled = true
        fakeQuantEnabled = true
        observerEnabled = false
    }

    /// Observer on, fake quantization on, learning off. PyTorch: `enable_static_estimate()`.
    public func enableStaticEstimate() {
        learningEnabled = false
        fakeQuantEnabled = true
        observerEnabled = true
    }

    /// Observer on, fake quantization off (the output is the input), learning off.
    /// PyTorch: `enable_static_observation()`.
    public func enableStaticObservation() {
        learningEnabled = false
        fakeQuantEnabled = false
        observerEnabled = true
    }

    /// Clears the accumulated parameter gradients. PyTorch: `optimizer.zero_grad()` (`scale.grad = None`).
    public func zeroGrad() {
        scaleGradient = nil
        zeroPointGradient = nil
    }

    /// PyTorch: `_LearnableFakeQuantize.forward(X)`: the observer's parameters copied in (observer enabled) or the
    /// scales clamped to at least `eps`; then, with fake quantization enabled, symmetric schemes zero their zero points
    /// and the learnable fake quantization runs with `gradFactor = 1 / sqrt(x.count * quantMax)` (gradient scaling)
    /// or 1.
    /// - Throws: what the observer throws; what the learnable fake quantization throws for its parameters.
    public func forward(_ x: Tensor<Float>) throws -> Tensor<Float> {
        saved = nil
        if observerEnabled {
            try observer.observe(x)
            let parameters = try observer.calculateQParams()
            scale = parameters.scales
            zeroPoint = parameters.zeroPoints.map { Float($0) }
            if let observed = parameters.axis { axis = observed }
        } else {
            scale = scale.map { $0 < eps ? eps : $0 }   // clamp_(min=eps); NaN stays NaN (and is rejected below)
        }
        guard fakeQuantEnabled else {
            saved = .identity(shape: x.shape)
            return x
        }
        if qscheme.isSymmetric { zeroPoint = zeroPoint.map { _ in 0 } }
        let gradFactor = useGradScaling ? Float(1.0 / (Double(x.count) * Double(quantMax)).squareRoot()) : 1
        let output: Tensor<Float>
        if qscheme.isPerChannel {
            output = try fakeQuantizeLearnablePerChannelAffine(x, scales: scale, zeroPoints: zeroPoint, axis: axis,
                                                               quantMin: quantMin, quantMax: quantMax,
                                                               gradFactor: gradFactor)
        } else {
            guard scale.count == 1, zeroPoint.count == 1 else {
                throw QuantizationError.channelCountMismatch(scales: scale.count, zeroPoints: zeroPoint.count,
                                                             channels: 1, axis: 0)
            }
            output = try fakeQuantizeLearnablePerTensorAffine(x, scale: scale[0], zeroPoint: zeroPoint[0],
                                                              quantMin: quantMin, quantMax: quantMax,
                                                              gradFactor: gradFactor)
        }
        saved = .learnable(x: x, scale: scale, zeroPoint: zeroPoint, gradFactor: gradFactor)
        return output
    }

    /// The input gradient of the last `forward` (PyTorch's learnable backward, with the parameters that forward
    /// used); with `learningEnabled` it also adds the scale and zero-point gradients to `scaleGradient` /
    /// `zeroPointGradient`.
    ///
    /// PyTorch: the autograd backward of `_LearnableFakeQuantize.forward`
    /// (`_fake_quantize_learnable_per_{tensor,channel}_affine_backward`).
    /// - Throws: `QuantizationError.invalidOperand` before any forward pass, for a shape that differs from its input,
    ///   or a quant range without 0.
    public func backward(_ gradOutput: Tensor<Float>) throws -> Tensor<Float> {
        let operation = "LearnableFakeQuantize.backward"
        switch saved {
        case nil:
            throw QuantizationError.invalidOperand(operation: operation,
                                                   reason: "no forward pass to differentiate; call forward first")
        case let .identity(shape)?:
            try FakeQuantChecks.checkSameShape(operation, gradOutput.shape, shape, "the last forward's input")
            return gradOutput
        case let .learnable(x, scale, zeroPoint, gradFactor)?:
            let grads = qscheme.isPerChannel
                ? try fakeQuantizeLearnablePerChannelAffineBackward(gradOutput, x, scales: scale, zeroPoints: zeroPoint,
                                                                    axis: axis, quantMin: quantMin,
                                                                    quantMax: quantMax, gradFactor: gradFactor)
                : try fakeQuantizeLearnablePerTensorAffineBackward(gradOutput, x, scale: scale[0],
                                                                   zeroPoint: zeroPoint[0], quantMin: quantMin,
                                                                   quantMax: quantMax, gradFactor: gradFactor)
            if learningEnabled {
                scaleGradient = Self.accumulate(scaleGradient, grads.scale)
                zeroPointGradient = Self.accumulate(zeroPointGradient, grads.zeroPoint)
            }
            return grads.input
        }
    }

    private static func accumulate(_ total: [Float]?, _ new: [Float]) -> [Float] {
        guard let total, total.count == new.count else { return new }
        return zip(total, new).map { $0 + $1 }
    }

    /// The scales clamped to at least `eps` (in place, as PyTorch) and the zero points rounded half to even and
    /// clamped to `quantMin...quantMax`.
    ///
    /// PyTorch: `_LearnableFakeQuantize.calculate_qparams()`.
    /// - Throws: `QuantizationError.invalidOperand` for a NaN zero point.
    public func calculateQParams() throws -> QuantizationParameters {
        scale = scale.map { $0 < eps ? eps : $0 }
        let zeroPoints = try zeroPoint.enumerated().map { channel, z in
            guard !z.isNaN else {
                throw QuantizationError.invalidOperand(operation: "LearnableFakeQuantize.calculateQParams",
                                                       reason: "zero point of channel \(channel) is NaN")
            }
            let rounded = z.rounded(.toNearestOrEven)
            return Int(min(max(rounded, Float(quantMin)), Float(quantMax)))
        }
        if qscheme.isPerChannel {
            return QuantizationParameters(scales: scale, zeroPoints: zeroPoints, axis: axis, dtype: dtype,
                                          qscheme: qscheme)
        }
        return QuantizationParameters(scale: scale[0], zeroPoint: zeroPoints[0], dtype: dtype, qscheme: qscheme)
    }
}
