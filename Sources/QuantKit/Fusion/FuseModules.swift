/// Fuses groups of consecutive modules for inference, in place: each group (dotted paths, in execution order)
/// becomes one module at the first path and `Identity` at the others. BatchNorm is folded into the weights with its
/// running statistics, so the model must be in evaluation mode for those patterns.
///
/// | Group | Becomes |
/// |---|---|
/// | `Conv2d, BatchNorm2d` | `Conv2d` (folded) |
/// | `Conv2d, BatchNorm2d, ReLU` | `ConvReLU2d` (folded conv, relu) |
/// | `Conv2d, ReLU` | `ConvReLU2d` |
/// | `Linear, BatchNorm1d` | `Linear` (folded) |
/// | `Linear, ReLU` | `LinearReLU` |
/// | `BatchNorm2d, ReLU` | `BNReLU2d` |
///
/// Types match exactly (a subclass of `Conv2d` is not fused). The first module's forward pre-hooks and the last
/// module's forward hooks move to the fused module; a qconfig assigned on the first module is assigned to the fused
/// module too (PyTorch drops it from the wrapper, which surprises users). Every group is checked before anything is
/// changed.
///
/// The model is changed in place and returned.
///
/// PyTorch: `torch.ao.quantization.fuse_modules(model, modules_to_fuse, inplace=True)`.
/// - Throws: `QuantizationWorkflowError.unfusablePattern` for a group that is not one of the patterns above, has
///   members in different modes, a batch norm without running statistics or with another channel count;
///   `.wrongMode` for a BatchNorm pattern in training mode; `ModuleError.notFound` for a path that does not exist.
@discardableResult
public func fuseModules(_ model: Module, _ groups: [[String]]) throws -> Module {
    try fuse(model, groups, qat: false)
}

/// `fuseModules(_:_:)` with one group, e.g. `["conv", "bn", "relu"]`.
/// PyTorch: `fuse_modules(model, ["conv", "bn", "relu"], inplace=True)`.
/// - Throws: as `fuseModules(_:_:)`.
@discardableResult
public func fuseModules(_ model: Module, _ group: [String]) throws -> Module {
    try fuse(model, [group], qat: false)
}

/// Fuses groups of modules for quantization-aware training, in place: BatchNorm is kept (not folded) in a fused
/// unit that `prepareQAT` turns into a QAT module folding it with the batch statistics while training. The model must
/// be in training mode.
///
/// | Group | Becomes |
/// |---|---|
/// | `Conv2d, BatchNorm2d` | `ConvBn2d` |
/// | `Conv2d, BatchNorm2d, ReLU` | `ConvBnReLU2d` |
/// | `Linear, BatchNorm1d` | `LinearBn1d` |
/// | `Conv2d, ReLU` / `Linear, ReLU` / `BatchNorm2d, ReLU` | `ConvReLU2d` / `LinearReLU` / `BNReLU2d` |
///
/// Hooks and qconfigs move as in `fuseModules(_:_:)`. The model is changed in place and returned.
///
/// PyTorch: `torch.ao.quantization.fuse_modules_qat(model, modules_to_fuse, inplace=True)`.
/// - Throws: `QuantizationWorkflowError.unfusablePattern` for an unknown pattern, members in different modes, or a
///   batch norm that is not affine, does not track running statistics or has another channel count; `.wrongMode`
///   for modules in evaluation mode; `ModuleError.notFound` for a path that does not exist.
@discardableResult
public func fuseModulesQAT(_ model: Module, _ groups: [[String]]) throws -> Module {
    try fuse(model, groups, qat: true)
}

/// `fuseModulesQAT(_:_:)` with one group. PyTorch: `fuse_modules_qat(model, ["conv", "bn"], inplace=True)`.
/// - Throws: as `fuseModulesQAT(_:_:)`.
@discardableResult
public func fuseModulesQAT(_ model: Module, _ group: [String]) throws -> Module {
    try fuse(model, [group], qat: true)
}

// MARK: - Implementation (PyTorch: `_fuse_modules`, `fuse_known_modules`, `fuser_method_mappings`)

private func fuse(_ model: Module, _ groups: [[String]], qat: Bool) throws -> Module {
    // Resolve and check every group first, so that a bad group leaves the model unchanged.
    var plans: [(names: [String], members: [Module], build: () throws -> Module)] = []
    var seen: Set<ObjectIdentifier> = []
    for names in groups {
        let members = try names.map { try model.module(at: $0) }
        for (name, member) in zip(names, members) where !seen.insert(ObjectIdentifier(member)).inserted {
            throw QuantizationWorkflowError.unfusablePattern(
                modules: names, types: members.map(\.typeName),
                reason: "\(name) appears twice in the fusion groups (or is registered twice); each module can be "
                    + "fused once")
        }
        plans.append((names, members, try fuser(for: members, names: names, qat: qat)))
    }
    for (names, members, build) in plans {
        let fused = try build()
        let (first, last) = (members[0], members[members.count - 1])
        if first.hasAssignedQConfig, !fused.hasAssignedQConfig { fused.qconfig = first.qconfig }
        if fused.training != first.training { fused.train(first.training) }
        first.copyUserHooks(to: fused, preHooks: true, forwardHooks: false)
        first.removeUserHooks(preHooks: true, forwardHooks: false)
        last.copyUserHooks(to: fused, preHooks: false, forwardHooks: true)
        last.removeUserHooks(preHooks: false, forwardHooks: true)
        try model.replaceChild(at: names[0], with: fused)
        for name in names.dropFirst() {
            let identity = Identity()
            identity.train(first.training)
            try model.replaceChild(at: name, with: identity)
        }
    }
    return model
}

private func isExactly(_ module: Module, _ type: Module.Type) -> Bool {
    ObjectIdentifier(Swift.type(of: module)) == ObjectIdentifier(type)
}

/// Checks a group against the known patterns and returns how to build its fused module.
/// PyTorch: `get_fuser_method(types)` and the `fuse_*` functions of `fuser_method_mappings.py`.
private func fuser(for members: [Module], names: [String], qat: Bool) throws -> () throws -> Module {
    let types = members.map(\.typeName)
    func fail(_ reason: String) -> QuantizationWorkflowError {
        .unfusablePattern(modules: names, types: types, reason: reason)
    }
    let known = "the known patterns are (Conv2d, BatchNorm2d), (Conv2d, BatchNorm2d, ReLU), (Conv2d, ReLU), "
        + "(Linear, BatchNorm1d), (Linear, ReLU) and (BatchNorm2d, ReLU), with exactly these types"
    guard members.count >= 2 else { throw fail("a fusion group needs 2 or 3 modules; \(known)") }
    let training = members[0].training
    guard members.allSatisfy({ $0.training == training }) else {
        throw fail("the modules must all be in the same mode (train or eval), got "
                   + members.map { $0.training ? "train" : "eval" }.joined(separator: ", "))
    }
    if qat, !training {
        throw QuantizationWorkflowError.wrongMode(
            operation: "fuseModulesQAT", expected: "training mode (call model.train() first; for inference use "
                + "fuseModules, which folds BatchNorm)")
    }
    /// Inference fusion folds the batch norm with its running statistics: PyTorch's `fuse_conv_bn_eval` assert.
    func requireEvaluation() throws {
        guard !training else {
            throw QuantizationWorkflowError.wrongMode(
                operation: "fuseModules (folding BatchNorm into \(names[0]))",
                expected: "evaluation mode (call model.eval() first; for quantization-aware training use "
                    + "fuseModulesQAT)")
        }
    }
    /// QAT keeps the batch norm and folds it while training: PyTorch's asserts of `fuse_conv_bn(is_qat=True)`.
    func checkQATBatchNorm(_ batchNorm: BatchNorm, outputs: Int) throws {
        guard batchNorm.numFeatures == outputs else {
            throw fail("the batch norm has \(batchNorm.numFeatures) features but \(names[0]) has \(outputs) outputs; "
                       + "they must be equal")
        }
        guard batchNorm.affine else { throw fail("only an affine batch norm (affine: true) can be fused for QAT") }
        guard batchNorm.trackRunningStats else {
            throw fail("only a batch norm with running statistics (trackRunningStats: true) can be fused for QAT")
        }
    }
    /// A batch-norm pattern: kept (checked) for QAT, folded with its running statistics (checked now) otherwise.
    func batchNormFuser(_ bn: BatchNorm, after first: Module, outputs: Int, qat qatBuild: @escaping () throws -> Module,
                        eval evalBuild: @escaping () throws -> Module) throws -> () throws -> Module {
        if qat {
            try checkQATBatchNorm(bn, outputs: outputs)
            return qatBuild
        }
        try requireEvaluation()
        _ = try runningStatistics(bn, outputs: outputs, first: first)
        return evalBuild
    }

    switch members.count {
    case 2:
        let (a, b) = (members[0], members[1])
        if isExactly(a, Conv2d.self), isExactly(b, BatchNorm2d.self) {
            let (conv, bn) = (a as! Conv2d, b as! BatchNorm2d)
            return try batchNormFuser(bn, after: conv, outputs: conv.outChannels, qat: { try ConvBn2d(conv, bn) },
                                      eval: { try fuseConvBatchNormEval(conv, bn) })
        }
        if isExactly(a, Conv2d.self), isExactly(b, ReLU.self) {
            return { try ConvReLU2d(a as! Conv2d, b as! ReLU) }
        }
        if isExactly(a, Linear.self), isExactly(b, BatchNorm1d.self) {
            let (linear, bn) = (a as! Linear, b as! BatchNorm1d)
            return try batchNormFuser(bn, after: linear, outputs: linear.outFeatures,
                                      qat: { try LinearBn1d(linear, bn) },
                                      eval: { try fuseLinearBatchNormEval(linear, bn) })
        }
        if isExactly(a, Linear.self), isExactly(b, ReLU.self) {
            return { try LinearReLU(a as! Linear, b as! ReLU) }
        }
        if isExactly(a, BatchNorm2d.self), isExactly(b, ReLU.self) {
            return { try BNReLU2d(a as! BatchNorm2d, b as! ReLU) }
        }
    case 3:
        let (a, b, c) = (members[0], members[1], members[2])
        if isExactly(a, Conv2d.self), isExactly(b, BatchNorm2d.self), isExactly(c, ReLU.self) {
            let (conv, bn, relu) = (a as! Conv2d, b as! BatchNorm2d, c as! ReLU)
            return try batchNormFuser(bn, after: conv, outputs: conv.outChannels,
                                      qat: { try ConvBnReLU2d(conv, bn, relu) },
                                      eval: { try ConvReLU2d(fuseConvBatchNormEval(conv, bn), relu) })
        }
        if isExactly(a, Linear.self), isExactly(b, BatchNorm1d.self), isExactly(c, ReLU.self) {
            throw fail("Linear + BatchNorm1d + ReLU is not fusable in eager mode (as PyTorch); fuse [Linear, "
                       + "BatchNorm1d] and keep the ReLU")
        }
    default:
        break
    }
    throw fail("no fusion pattern for these types; \(known)")
}
