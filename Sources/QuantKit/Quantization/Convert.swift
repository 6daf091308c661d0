/// Converts a prepared and calibrated model to a quantized one, in place: every module with a qconfig whose exact
/// type is in `mapping` is replaced by its quantized version (fused and QAT modules as one unit), weights quantized
/// with the weight observer of their qconfig (or, for QAT modules, their `weight_fake_quant`), outputs with the
/// parameters their activation observer chose. Then observers, observer hooks and (with `removeQConfig`) qconfigs are
/// removed. User hooks of a swapped module move to its replacement.
///
/// The model is changed in place and returned.
///
/// PyTorch: `torch.ao.quantization.convert(model, mapping=None, inplace=True, remove_qconfig=True)`.
/// - Throws: `QuantizationWorkflowError.notPrepared` (a module to swap has no observer),
///   `.notCalibrated` (its observer saw no data), `.unsupportedQConfig`; what a conversion throws. The model may be
///   partly converted when an error is thrown.
@discardableResult
public func convert(_ model: Module, mapping: ModuleMapping = .defaultStatic, removeQConfig: Bool = true) throws
    -> Module
{
    try swapModules(model, mapping: mapping)
    removeObservers(model, removeQConfig: removeQConfig)
    return model
}

/// PyTorch's `_convert`: children first, then the child itself; fused and QAT modules are swapped whole (their
/// members, such as a QAT ConvBn's batch norm, are part of the unit).
func swapModules(_ module: Module, mapping: ModuleMapping) throws {
    for (name, child) in module.namedChildren {
        if !(child is FusedModule || child is any QATModule) { try swapModules(child, mapping: mapping) }
        let swapped = try swapModule(child, mapping: mapping)
        if swapped !== child { try module.replaceChild(at: name, with: swapped) }
    }
}

/// PyTorch's `swap_module`: replaces a module that has a qconfig and a mapped type, moving its user hooks.
func swapModule(_ module: Module, mapping: ModuleMapping) throws -> Module {
    guard module.qconfig != nil, let convert = mapping.converter(for: module) else { return module }
    let replacement = try convert(module)
    guard replacement !== module else { return module }
    module.copyUserHooks(to: replacement)
    if replacement.training != module.training { replacement.train(module.training) }
    return replacement
}

/// PyTorch's `_remove_qconfig` and `_remove_activation_post_process`.
func removeObservers(_ model: Module, removeQConfig: Bool) {
    model.apply { module in
        if removeQConfig { module.removeQConfig() }
        guard let observer = try? module.child("activation_post_process"), observer is ObserverModule else { return }
        module.removeObserverHooks()
        if module is FloatFunctional {
            try? module.replaceChild(at: "activation_post_process", with: Identity())
        } else {
            module.removeChild("activation_post_process")
        }
    }
}

// MARK: - Helpers for conversions (PyTorch: the shared parts of the `from_float` class methods)

extension Module {
    /// The observer `prepare` attached to this module's output (or input, for a dynamic placeholder).
    /// PyTorch: `module.activation_post_process`.
    /// - Throws: `QuantizationWorkflowError.notPrepared` when there is none.
    public var activationPostProcess: ObserverModule {
        get throws {
            guard let observer = (try? child("activation_post_process")) as? ObserverModule else {
                throw QuantizationWorkflowError.notPrepared(module: displayName)
            }
            return observer
        }
    }

    /// The per-tensor output parameters chosen by this module's activation observer.
    /// PyTorch: `activation_post_process.calculate_qparams()` in `from_float` (`float(scale)`, `int(zero_point)`).
    /// - Throws: `QuantizationWorkflowError.notPrepared`, `.notCalibrated` (naming this module), `.unsupportedQConfig`
    ///   for a per-channel or non-quint8 activation observer.
    public func outputQuantizationParameters() throws -> QuantizationParameters {
        let observer = try activationPostProcess
        guard observer.observedCount > 0 else { throw QuantizationWorkflowError.notCalibrated(module: displayName) }
        let parameters = try observer.calculateQParams()
        guard parameters.axis == nil, parameters.dtype == .quint8 else {
            throw QuantizationWorkflowError.unsupportedQConfig(
                module: displayName, reason: "activations must be quint8 per tensor for static quantization, got "
                    + "\(parameters.dtype) \(parameters.qscheme)")
        }
        return parameters
    }
}

/// Quantizes a weight for a quantized module: observes it with `observer` (a fresh weight observer of the qconfig, or
/// a QAT module's `weight_fake_quant`), quantizes it with the chosen parameters (stored affine, as PyTorch stores
/// symmetric weights) and clamps to the observer's `quantMin...quantMax`.
///
/// PyTorch: `weight_post_process(weight)` then `_quantize_weight(weight, weight_post_process)` (with
/// `_clamp_weights`), as in every `from_float`.
/// - Throws: `QuantizationWorkflowError.unsupportedQConfig` (naming `module`) when the weight observer is a
///   placeholder or not qint8; what the observer and quantization throw.
public func quantizeWeight(_ weight: Tensor<Float>, observer: ObserverOrFakeQuantize, module: String) throws
    -> QuantizedTensor
{
    let parameters: QuantizationParameters
    let range: ClosedRange<Int>
    switch observer {
    case let .observer(base):
        guard let uniform = base as? any Observer else {
            throw QuantizationWorkflowError.unsupportedQConfig(
                module: module, reason: "the weight observer \(type(of: base)) chooses no quantization parameters")
        }
        try uniform.observe(weight)
        parameters = try uniform.calculateQParams()
        range = uniform.quantMin...uniform.quantMax
    case let .fakeQuantize(fakeQuantize):
        // PyTorch runs weight_fake_quant on the (folded) weight once more at convert, updating its statistics.
        _ = try fakeQuantize.forward(weight)
        parameters = try fakeQuantize.calculateQParams()
        guard let uniform = observer.observer as? any Observer else {
            throw QuantizationWorkflowError.unsupportedQConfig(
                module: module, reason: "the weight fake quantization \(type(of: fakeQuantize)) has no observer")
        }
        range = uniform.quantMin...uniform.quantMax
    }
    guard parameters.dtype == .qint8 else {
        throw QuantizationWorkflowError.unsupportedQConfig(
            module: module, reason: "weights must be qint8, the weight observer chose \(parameters.dtype)")
    }
    var affine = parameters
    switch parameters.qscheme {
    case .perTensorSymmetric: affine.qscheme = .perTensorAffine
    case .perChannelSymmetric: affine.qscheme = .perChannelAffine
    default: break
    }
    let quantized = try weight.quantized(with: affine)
    guard range != QuantizedDType.qint8.range else { return quantized }
    let clamped = try Tensor<Int8>(shape: quantized.shape, scalars: quantized.intRepr().map {
        Int8(Swift.min(Swift.max(Int($0), range.lowerBound), range.upperBound))
    })
    if let axis = affine.axis {
        return try QuantizedTensor(intRepr: clamped, scales: affine.scales, zeroPoints: affine.zeroPoints, axis: axis,
                                   qscheme: affine.qscheme)
    }
    return try QuantizedTensor(intRepr: clamped, scale: affine.scale, zeroPoint: affine.zeroPoint,
                               qscheme: affine.qscheme)
}
