/// The fused observer and fake quantization of PyTorch's x86 QAT default (`get_default_qat_qconfig("x86")`): one
/// step updates a moving-average min/max observer, chooses the parameters with FBGEMM's `ChooseQuantizationParams`
/// and fake-quantizes.
///
/// Per step (`forward`), as `torch.fused_moving_avg_obs_fake_quant`:
/// 1. observer enabled: the observer (`MovingAverageMinMaxObserver` or `MovingAveragePerChannelMinMaxObserver`) moves
///    its running min/max towards the input's (its own rules for NaN and infinities apply).
/// 2. fake quantization enabled: `scale` / `zeroPoint` from the running min/max by FBGEMM's rule, which for symmetric
///    schemes differs from the observers' formula (int8: `max(|min| / 128, max / 127)` instead of
///    `max(|min|, max) / 127.5`; `quint8` zero point 128 instead of 127), then the fake quantization with its
///    straight-through mask. Disabled: the output is the input and `scale` / `zeroPoint` are left as they are.
///
/// `calculateQParams()` is the observer's (the observers' formula), so it can differ from the parameters `forward`
/// used, exactly as in PyTorch. Per channel PyTorch requires `ch_axis == 0`; QuantKit accepts the observer's axis,
/// whatever it is.
///
/// PyTorch: `torch.ao.quantization.FusedMovingAvgObsFakeQuantize(observer=MovingAverageMinMaxObserver, quant_min=0,
/// quant_max=255, **observer_kwargs)`.
public final class FusedMovingAvgObsFakeQuantize: FakeQuantizeBase {
    /// The moving-average observer whose statistics the fused step updates. PyTorch: `activation_post_process`.
    public let observer: any Observer
    /// PyTorch: `fake_quant_enabled`.
    public var fakeQuantEnabled = true
    /// PyTorch: `observer_enabled`.
    public var observerEnabled = true
    /// The scales of the last fake quantization. PyTorch: the `scale` buffer.
    public private(set) var scale: [Float] = [1]
    /// The zero points of the last fake quantization. PyTorch: the `zero_point` buffer.
    public private(set) var zeroPoint: [Int] = [0]

    private var state: StraightThroughState?

    /// Wraps an existing moving-average observer (its range, scheme and averaging constant are the module's).
    /// - Throws: `QuantizationError.invalidOperand` for any other observer (PyTorch asserts the same), or a range
    ///   beyond ±2^23.
    public init(observer: any Observer) throws {
        guard observer is MovingAverageMinMaxObserver || observer is MovingAveragePerChannelMinMaxObserver else {
            throw QuantizationError.invalidOperand(
                operation: "FusedMovingAvgObsFakeQuantize", reason: "the fused observer and fake quantization works "
                + "with MovingAverageMinMaxObserver or MovingAveragePerChannelMinMaxObserver, got \(type(of: observer))")
        }
        try FakeQuantChecks.checkRange("FusedMovingAvgObsFakeQuantize", quantMin: observer.quantMin,
                                       quantMax: observer.quantMax)
        self.observer = observer
    }

    /// Builds the observer as PyTorch's constructor does: `MovingAverageMinMaxObserver` for per-tensor schemes,
    /// `MovingAveragePerChannelMinMaxObserver` (axis `chAxis`) for per-channel ones, with the given range (halved by
    /// `reduceRange`: 0...127 for x86 activations).
    ///
    /// PyTorch: `FusedMovingAvgObsFakeQuantize(quant_min=0, quant_max=255, dtype=torch.quint8,
    /// qscheme=torch.per_tensor_affine, reduce_range=False, averaging_constant=0.01, ch_axis=0)`;
    /// `default_fused_wt_fake_quant` is `quantMin: -128, quantMax: 127, dtype: .qint8, qscheme: .perTensorSymmetric`.
    /// - Throws: what the observers' initialisers throw (e.g. a range without 0, or `reduceRange` with a symmetric
    ///   `quint8` scheme).
    public convenience init(quantMin: Int = 0, quantMax: Int = 255, dtype: QuantizedDType = .quint8,
                            qscheme: QScheme = .perTensorAffine, reduceRange: Bool = false,
                            averagingConstant: Float = 0.01, chAxis: Int = 0) throws {
        let observer: any Observer = qscheme.isPerChannel
            ? try MovingAveragePerChannelMinMaxObserver(averagingConstant: averagingConstant, chAxis: chAxis,
                                                        dtype: dtype, qscheme: qscheme, reduceRange: reduceRange,
                                                        quantMin: quantMin, quantMax: quantMax)
            : try MovingAverageMinMaxObserver(averagingConstant: averagingConstant, dtype: dtype, qscheme: qscheme,
                                              reduceRange: reduceRange, quantMin: quantMin, quantMax: quantMax)
        try self.init(observer: observer)
    }

    /// PyTorch: `dtype`.
    public var dtype: QuantizedDType { observer.dtype }
    /// PyTorch: `qscheme`.
    public var qscheme: QScheme { observer.qscheme }
    /// PyTorch: `activation_post_process.quant_min`.
    public var quantMin: Int { observer.quantMin }
    /// PyTorch: `activation_post_process.quant_max`.
    public var quantMax: Int { observer.quantMax }

    /// The observer's running minimum (one per tensor, or per channel; `+infinity` / empty before any batch).
    /// PyTorch: `activation_post_process.min_val`.
    public var runningMin: [Float] {
        if let perTensor = observer as? MovingAverageMinMaxObserver { return [perTensor.minVal] }
        return (observer as? MovingAveragePerChannelMinMaxObserver)?.minVal ?? []
    }

    /// The observer's running maximum. PyTorch: `activation_post_process.max_val`.
    public var runningMax: [Float] {
        if let perTensor = observer as? MovingAverageMinMaxObserver { return [perTensor.maxVal] }
        return (observer as? MovingAveragePerChannelMinMaxObserver)?.maxVal ?? []
    }

    /// One fused step: the observer's moving average (observer enabled), FBGEMM parameters and fake quantization with
    /// its mask (fake quantization enabled). An empty input is returned as it is, observing nothing (as PyTorch).
    ///
    /// PyTorch: `FusedMovingAvgObsFakeQuantize.forward(X)` (`torch.fused_moving_avg_obs_fake_quant`).
    /// - Throws: what the observer throws (e.g. a channel count that changes between steps);
    ///   `QuantizationError.axisOutOfRange`.
    public func forward(_ x: Tensor<Float>) throws -> Tensor<Float> {
        state = nil
        guard x.count > 0 else {
            state = .identity(shape: x.shape)
            return x
        }
        if observerEnabled { try observer.observe(x) }
        guard fakeQuantEnabled else {
            state = .identity(shape: x.shape)
            return x
        }
        var mins = runningMin, maxs = runningMax
        var axis: Int?
        if let perChannel = observer as? MovingAveragePerChannelMinMaxObserver {
            let normalized = try QParamChecks.normalize(axis: perChannel.chAxis, rank: x.rank)
            if mins.isEmpty {   // nothing observed yet: PyTorch's fresh buffers (+inf / -inf per channel)
                mins = Array(repeating: .infinity, count: x.shape[normalized])
                maxs = Array(repeating: -.infinity, count: x.shape[normalized])
            }
            axis = normalized
        }
        var scales = [Float](), zeroPoints = [Int]()
        for (low, high) in zip(mins, maxs) {
            let q = try Kernels.fusedFakeQuantQParams(min: low, max: high, quantMin: Int32(quantMin),
                                                      quantMax: Int32(quantMax), symmetric: qscheme.isSymmetric)
            scales.append(q.scale)
            zeroPoints.append(Int(q.zeroPoint))
        }
        let output: Tensor<Float>, mask: Tensor<UInt8>
        if let axis {
            (output, mask) = try fakeQuantizePerChannelAffineCachemask(x, scales: scales, zeroPoints: zeroPoints,
                                                                        axis: axis, quantMin: quantMin,
                                                                        quantMax: quantMax)
        } else {
            (output, mask) = try fakeQuantizePerTensorAffineCachemask(x, scale: scales[0], zeroPoint: zeroPoints[0],
                                                                       quantMin: quantMin, quantMax: quantMax)
        }
        scale = scales
        zeroPoint = zeroPoints
        state = .mask(mask)
        return output
    }

    /// `gradOutput` times the mask of the last `forward` (unchanged when it did not fake-quantize).
    ///
    /// PyTorch: the autograd backward of `torch.fused_moving_avg_obs_fake_quant`.
    /// - Throws: `QuantizationError.invalidOperand` before any forward pass or when the shape differs from its input.
    public func backward(_ gradOutput: Tensor<Float>) throws -> Tensor<Float> {
        guard let state else {
            throw QuantizationError.invalidOperand(operation: "FusedMovingAvgObsFakeQuantize.backward",
                                                   reason: "no forward pass to differentiate; call forward first")
        }
        return try state.backward(gradOutput, operation: "FusedMovingAvgObsFakeQuantize.backward")
    }

    /// The observer's parameters (the observers' formula, not FBGEMM's).
    /// PyTorch: `FusedMovingAvgObsFakeQuantize.calculate_qparams()`.
    public func calculateQParams() throws -> QuantizationParameters {
        try observer.calculateQParams()
    }
}
