/// Prepares a float model for quantization-aware training, in place, with the x86 QAT preset
/// (`QConfig.defaultQATQConfig(backend: .x86)`) as the global qconfig: modules with a qconfig of their own (or under
/// a parent's) keep it, every other module gets the preset. To quantize only some modules, pass
/// `config: QConfigMapping()` and assign their qconfigs.
///
/// PyTorch: `model.qconfig = get_default_qat_qconfig("x86"); prepare_qat(model, inplace=True)`.
/// - Throws: as `prepareQAT(_:config:)`.
@discardableResult
public func prepareQAT(_ model: Module) throws -> Module {
    try prepareQAT(model, config: QConfigMapping(global: QConfig.defaultQATQConfig(backend: .x86)))
}

/// Prepares a float model for quantization-aware training, in place: propagates qconfigs, swaps `Linear`, `Conv2d`
/// and the fused units (`LinearReLU`, `ConvReLU2d`, `ConvBn2d`, `ConvBnReLU2d`, `LinearBn1d`) for their QAT versions
/// (weights fake-quantized by a `weight_fake_quant` child, parameters shared with the float modules), and adds an
/// output fake quantization (`activation_post_process`) to every quantized unit, as `prepare` adds observers.
///
/// Then train (the optimizer may be built before or after: the parameters are the same objects), optionally
/// `model.apply(freezeBNStats)` / `model.apply(disableObserver)` late in training, and `convert` in evaluation mode.
///
/// The model is changed in place and returned.
///
/// `mapping` chooses the QAT modules (`ModuleMapping.defaultQAT`, to which custom entries can be added); a custom
/// QAT module should conform to `QATModule`, so that it gets one output fake quantization as a unit.
///
/// PyTorch: `torch.ao.quantization.prepare_qat(model, mapping=None, inplace=True)`.
/// - Throws: `QuantizationWorkflowError.wrongMode` when the model is in evaluation mode; `.noQConfig` when no module
///   has a qconfig; `.unfusablePattern` for a fused BatchNorm unit that cannot be folded while training;
///   `ModuleError.notFound` for a name in `config` that is not in the model; what the qconfig factories throw.
@discardableResult
public func prepareQAT(_ model: Module, config: QConfigMapping, mapping: ModuleMapping = .defaultQAT) throws
    -> Module
{
    guard model.training else {
        throw QuantizationWorkflowError.wrongMode(
            operation: "prepareQAT", expected: "training mode (call model.train() first)")
    }
    try propagateQConfig(model, config)
    try requireSomeQConfig(model)
    // PyTorch: convert(model, mapping=get_default_qat_module_mappings(), inplace=True, remove_qconfig=False).
    try swapModules(model, mapping: mapping)
    // PyTorch: prepare(model, observer_non_leaf_module_list=set(mapping.values()), inplace=True); QAT modules are
    // units for addObservers already.
    try addObservers(model, nonLeafTypes: [])
    return model
}

/// `prepareQAT(_:config:)` with `qconfig` as the global qconfig.
/// PyTorch: `model.qconfig = qconfig; prepare_qat(model, inplace=True)`.
/// - Throws: as `prepareQAT(_:config:)`.
@discardableResult
public func prepareQAT(_ model: Module, config qconfig: QConfig, mapping: ModuleMapping = .defaultQAT) throws
    -> Module
{
    try prepareQAT(model, config: QConfigMapping(global: qconfig), mapping: mapping)
}

/// Quantization-aware training in one call: training mode, `prepareQAT`, `train(model)` (the training loop), then
/// evaluation mode and `convert`. The model is changed in place and returned.
///
/// PyTorch: `torch.ao.quantization.quantize_qat(model, run_fn, run_args, inplace=True)`, which converts without
/// switching to evaluation mode; here the converted model is in evaluation mode (a quantized model in training mode
/// would reject quantized inputs to `Dropout`).
/// - Throws: what `prepareQAT(_:config:mapping:)`, `train` and `convert(_:mapping:removeQConfig:)` throw.
@discardableResult
public func quantizeQAT(_ model: Module, config: QConfigMapping, train: (Module) throws -> Void) throws -> Module {
    model.train()
    try prepareQAT(model, config: config)
    try train(model)
    model.eval()
    return try convert(model)
}
