/// Prepares a float model for post-training static quantization, in place: propagates qconfigs (`QConfigMapping`,
/// then each module's own `qconfig`), and gives every module that will be quantized an observer of its output (an
/// `activation_post_process` child run by a forward hook). Calibrate by running the model on representative
/// inputs, then call `convert(_:mapping:)`.
///
/// Observed: `QuantStub`, the leaf layers of the default mappings (`Linear`, `Conv2d`, `BatchNorm2d`, ...), fused
/// modules and QAT modules as units (their output only), and each `FloatFunctional` (its `activation_post_process`
/// is replaced). Not observed: `DeQuantStub`, `Dropout`, modules whose quantized form keeps the input's parameters
/// (`ReLU`, pooling, `Flatten`), and subtrees whose qconfig is nil. In training mode, `Sigmoid`, `Hardsigmoid`,
/// `Softmax` and `Tanh` get fixed-parameter fake quantization (QAT), as PyTorch.
///
/// The model is changed in place and returned (PyTorch's default `inplace=False` copies first; to keep a float copy,
/// build a second model and `loadStateDict` it).
///
/// PyTorch: `torch.ao.quantization.prepare(model, inplace=True)`.
/// - Throws: `QuantizationWorkflowError.noQConfig` when no module has a qconfig; `ModuleError.notFound` for a name
///   in `config` that is not in the model; what a qconfig's factories throw.
@discardableResult
public func prepare(_ model: Module, config: QConfigMapping = QConfigMapping()) throws -> Module {
    try propagateQConfig(model, config)
    try requireSomeQConfig(model)
    try addObservers(model, nonLeafTypes: [])
    return model
}

/// `prepare(_:config:)` with `qconfig` as the global qconfig. PyTorch: `model.qconfig = qconfig; prepare(model)`.
@discardableResult
public func prepare(_ model: Module, config qconfig: QConfig) throws -> Module {
    try prepare(model, config: QConfigMapping(global: qconfig))
}

func requireSomeQConfig(_ model: Module) throws {
    guard model.modules().contains(where: { $0.qconfig != nil }) else {
        throw QuantizationWorkflowError.noQConfig(model: model.path.isEmpty ? model.typeName : model.path)
    }
}

/// PyTorch's `_add_observer_`: observers on the leaves of the propagation list and on the units (fused, QAT).
func addObservers(_ module: Module, nonLeafTypes: Set<ObjectIdentifier>) throws {
    let propagation = ModuleMapping.propagationList
    func insertObserver(_ m: Module, special: ObserverOrFakeQuantize? = nil) throws {
        guard let qconfig = m.qconfig, !(m is DeQuantStub) else { return }
        guard (try? m.child("activation_post_process")) == nil else { return }
        let observer = ObserverModule(try special ?? qconfig.activation())
        try m.registerModule("activation_post_process", observer)
        m.registerObserverHook(onInput: observer.isDynamic)
    }
    func visit(_ m: Module) throws {
        for (_, child) in m.namedChildren {
            if child is Dropout || child is ObserverModule { continue }
            if let functional = child as? FloatFunctional {
                if let qconfig = functional.qconfig {
                    try functional.replaceChild(at: "activation_post_process",
                                                with: ObserverModule(try qconfig.activation()))
                }
            } else if child is FusedModule || child is any QATModule
                        || nonLeafTypes.contains(ObjectIdentifier(type(of: child))) {
                try insertObserver(child)
            } else if child.training, let special = try fixedQParamsFakeQuantize(for: child) {
                if child.qconfig != nil { try insertObserver(child, special: special) }
            } else {
                try visit(child)
            }
        }
        if m.namedChildren.isEmpty, !(m is Sequential), propagation.contains(type(of: m)) {
            try insertObserver(m)
        }
    }
    try visit(module)
}

/// The fixed-parameter fake quantization of activations with a known output range, in training (QAT) only.
/// PyTorch: `_get_special_act_post_process` (`default_fixed_qparams_range_0to1_fake_quant` for Sigmoid,
/// Hardsigmoid and Softmax, `..._neg1to1_...` for Tanh).
func fixedQParamsFakeQuantize(for module: Module) throws -> ObserverOrFakeQuantize? {
    switch module {
    case is Sigmoid, is Hardsigmoid, is Softmax:
        return .fakeQuantize(try FakeQuantize(observer: FixedQParamsObserver(scale: 1.0 / 256.0, zeroPoint: 0)))
    case is Tanh:
        return .fakeQuantize(try FakeQuantize(observer: FixedQParamsObserver(scale: 2.0 / 256.0, zeroPoint: 128)))
    default:
        return nil
    }
}
