/// Post-training static quantization in one call: evaluation mode, `prepare`, `calibrate(model)` (run the model on
/// representative inputs), `convert`. The model is changed in place and returned.
///
/// PyTorch: `torch.ao.quantization.quantize(model, run_fn, run_args, mapping, inplace=True)`.
/// - Throws: what `prepare(_:config:)`, `calibrate` and `convert(_:mapping:removeQConfig:)` throw.
@discardableResult
public func quantize(_ model: Module, config: QConfigMapping = QConfigMapping(),
                     mapping: ModuleMapping = .defaultStatic, calibrate: (Module) throws -> Void) throws -> Module {
    model.eval()
    try prepare(model, config: config)
    try calibrate(model)
    return try convert(model, mapping: mapping)
}

/// Wraps every leaf module that has a qconfig (after propagation) in a `QuantWrapper`, so that each is quantized on
/// its own with float tensors between them. The model is changed in place and returned.
///
/// PyTorch: `torch.ao.quantization.add_quant_dequant(module)`.
/// - Throws: `ModuleError` from replacing children.
@discardableResult
public func addQuantDeQuant(_ model: Module) throws -> Module {
    for (name, child) in model.namedChildren {
        if child.namedChildren.isEmpty, child.qconfig != nil {
            try model.replaceChild(at: name, with: QuantWrapper(child))
        } else {
            try addQuantDeQuant(child)
        }
    }
    return model
}
