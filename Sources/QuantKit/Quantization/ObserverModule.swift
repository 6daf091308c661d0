/// An observer or fake-quantize module placed in a model: the `activation_post_process` child that `prepare` adds
/// to each module it observes (run by a forward hook on the module's output), and the `weight_fake_quant` child of
/// quantization-aware-training modules.
///
/// With an observer, `forward` records the statistics of a float input and returns it unchanged. With a
/// fake-quantize module, it returns the input fake-quantized and records the straight-through gradient on the
/// autograd tape (so `backward()` reaches the layers before it).
///
/// PyTorch: the observer / `FakeQuantize` instance stored as `module.activation_post_process` (observers and fake
/// quants are `nn.Module`s there).
public final class ObserverModule: Module {
    /// The observer or fake-quantize module it runs.
    public let observerOrFakeQuantize: ObserverOrFakeQuantize
    /// How many non-empty tensors it has seen since creation: 0 means it was never calibrated.
    public private(set) var observedCount = 0

    /// Wraps `observerOrFakeQuantize`. PyTorch: `qconfig.activation()` added as `activation_post_process`.
    public init(_ observerOrFakeQuantize: ObserverOrFakeQuantize) {
        self.observerOrFakeQuantize = observerOrFakeQuantize
        super.init()
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
            let y = try attributingErrors { try fakeQuantize.forward(x) }
            return Autograd.record("FakeQuantizeBackward", output: y, inputs: [input]) { gradient in
                [try fakeQuantize.backward(gradient)]
            }
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
