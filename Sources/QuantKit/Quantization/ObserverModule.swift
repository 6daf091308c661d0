/// An observer or fake-quantize module placed in a model: the `activation_post_process` child that `prepare` adds
/// to each module it observes (run by a forward hook on the module's output), and the `weight_fake_quant` child of
/// quantization-aware-training modules.
///
/// With an observer, `forward` records the statistics of a float input and returns it unchanged. With a
/// fake-quantize module, it returns the input fake-quantized and records the straight-through gradient on the
/// autograd tape (so `backward()` reaches the layers before it).
///
/// A `LearnableFakeQuantize` (LSQ) gets its scale and zero point as the parameters `scale` and `zero_point`, so
/// `parameters()` hands them to the optimizer and `backward()` fills their gradients (in its parameter-learning mode).
///
/// PyTorch: the observer / `FakeQuantize` instance stored as `module.activation_post_process` (observers and fake
/// quants are `nn.Module`s there; `_LearnableFakeQuantize.scale` / `zero_point` are `nn.Parameter`s).
public final class ObserverModule: Module {
    /// The observer or fake-quantize module it runs.
    public let observerOrFakeQuantize: ObserverOrFakeQuantize
    /// How many non-empty tensors it has seen since creation: 0 means it was never calibrated.
    public private(set) var observedCount = 0
    /// The learnable fake quantizer and the parameters that mirror its scale and zero point.
    private let learnable: (fakeQuantize: LearnableFakeQuantize, scale: Parameter, zeroPoint: Parameter)?

    /// Wraps `observerOrFakeQuantize`. PyTorch: `qconfig.activation()` added as `activation_post_process`.
    public init(_ observerOrFakeQuantize: ObserverOrFakeQuantize) {
        self.observerOrFakeQuantize = observerOrFakeQuantize
        if case let .fakeQuantize(fakeQuantize) = observerOrFakeQuantize,
           let lsq = fakeQuantize as? LearnableFakeQuantize {
            learnable = (lsq, Parameter(Tensor<Float>(lsq.scale)), Parameter(Tensor<Float>(lsq.zeroPoint)))
        } else {
            learnable = nil
        }
        super.init()
        if let learnable {
            appendParameter("scale", learnable.scale)
            appendParameter("zero_point", learnable.zeroPoint)
        }
    }

    /// Whether parameters are chosen at run time (a dynamic placeholder): then `prepare` observes the input of its
    /// module, not the output. PyTorch: `_activation_is_memoryless(qconfig)` / `is_dynamic`.
    public var isDynamic: Bool { observerOrFakeQuantize.observer?.isDynamic ?? false }

    /// Observes (and with a fake-quantize module, fake-quantizes) a float input.
    /// PyTorch: `activation_post_process(x)`.
    /// - Throws: `QuantizationError.invalidOperand` for a quantized input (an observer sits on float tensors);
    ///   what the observer or fake-quantize module throws.
    public override func forward(_ input: Variable) throws -> Variable {
        let x = try floatInput(input)
        if x.count > 0 { observedCount += 1 }
        switch observerOrFakeQuantize {
        case let .observer(observer):
            try attributingErrors { try observer.observe(x) }
            return input
        case let .fakeQuantize(fakeQuantize):
            if let learnable { return try learnableForward(input, x, learnable) }
            let y = try attributingErrors { try fakeQuantize.forward(x) }
            return Autograd.record("FakeQuantizeBackward", output: y, inputs: [input]) { gradient in
                [try fakeQuantize.backward(gradient)]
            }
        }
    }

    /// LSQ: the parameters (as the optimizer left them) go in, the fake quantizer's own updates (observer estimates,
    /// the eps clamp) come back out, and the recorded backward returns the scale and zero-point gradients.
    private func learnableForward(
        _ input: Variable, _ x: Tensor<Float>,
        _ learnable: (fakeQuantize: LearnableFakeQuantize, scale: Parameter, zeroPoint: Parameter)
    ) throws -> Variable {
        let lsq = learnable.fakeQuantize
        if lsq.learningEnabled {
            lsq.scale = learnable.scale.data.scalars
            lsq.zeroPoint = learnable.zeroPoint.data.scalars
        }
        let y = try attributingErrors { try lsq.forward(x) }
        learnable.scale.data = Tensor<Float>(lsq.scale)
        learnable.zeroPoint.data = Tensor<Float>(lsq.zeroPoint)
        return Autograd.record("LearnableFakeQuantizeBackward", output: y,
                               inputs: [input, learnable.scale, learnable.zeroPoint]) { gradient in
            lsq.zeroGrad()
            let inputGradient = try lsq.backward(gradient)
            guard let scaleGradient = lsq.scaleGradient, let zeroPointGradient = lsq.zeroPointGradient else {
                return [inputGradient, nil, nil]
            }
            return [inputGradient, Tensor<Float>(scaleGradient), Tensor<Float>(zeroPointGradient)]
        }
    }

    /// The quantization parameters chosen from what it has seen.
    /// PyTorch: `activation_post_process.calculate_qparams()`.
    /// - Throws: `QuantizationWorkflowError.notCalibrated` when it has seen nothing; what the observer throws.
    public func calculateQParams() throws -> QuantizationParameters {
        guard observedCount > 0 else { throw QuantizationWorkflowError.notCalibrated(module: ownerDescription) }
        return try observerOrFakeQuantize.calculateQParams()
    }

    /// The module this observer belongs to, for error messages (`"features.0 (Conv2d)"`).
    var ownerDescription: String {
        let p = path
        guard let dot = p.lastIndex(of: ".") else { return p.isEmpty ? "the model" : p }
        return String(p[..<dot])
    }

    public override var extraDescription: String {
        switch observerOrFakeQuantize {
        case let .observer(observer): return String(describing: type(of: observer))
        case let .fakeQuantize(fakeQuantize): return String(describing: type(of: fakeQuantize))
        }
    }
}
