/// Which qconfig each module of a model gets: a global one, one per module type, one per dotted module name. A
/// module's own `qconfig` (assigned on the module) overrides all three, and `nil` (assigned, or given here) keeps a
/// subtree in float.
///
/// Precedence, as PyTorch's eager mode: the module's own `qconfig` > its name here > its type here > its parent's
/// qconfig (the global one at the root). Types match exactly (a subclass of `Linear` is not a `Linear`).
///
/// PyTorch: the `qconfig_dict` of `propagate_qconfig_(model, qconfig_dict)` (keys: module types or dotted names),
/// with `QConfigMapping`'s method names (`set_global`, `set_object_type`, `set_module_name`).
///
/// ```swift
/// var mapping = QConfigMapping(global: .defaultQConfig(backend: .x86))
/// mapping.setObjectType(Linear.self, .defaultPerChannel)
/// mapping.setModuleName("classifier.2", nil)     // the last layer stays float
/// try prepare(model, config: mapping)
/// ```
public struct QConfigMapping: @unchecked Sendable {
    /// The qconfig of the root's parent: what every module gets unless something more specific applies.
    /// PyTorch: `QConfigMapping.set_global(qconfig)` / assigning `model.qconfig` on the root.
    public var global: QConfig?
    private var byType: [(type: ObjectIdentifier, name: String, qconfig: QConfig?)] = []
    private var byName: [(name: String, qconfig: QConfig?)] = []

    /// A mapping with a global qconfig (nil: none) and no type or name entries. PyTorch: `QConfigMapping()`.
    public init(global: QConfig? = nil) {
        self.global = global
    }

    /// Sets the global qconfig. PyTorch: `QConfigMapping.set_global(qconfig)`.
    public mutating func setGlobal(_ qconfig: QConfig?) {
        global = qconfig
    }

    /// Gives every module of exactly this type `qconfig` (nil: keep them float), replacing an earlier entry.
    /// PyTorch: `QConfigMapping.set_object_type(nn.Linear, qconfig)` / `qconfig_dict[nn.Linear]`.
    public mutating func setObjectType(_ type: Module.Type, _ qconfig: QConfig?) {
        let id = ObjectIdentifier(type)
        byType.removeAll { $0.type == id }
        byType.append((id, String(describing: type), qconfig))
    }

    /// Gives the module at this dotted path (`"features.0"`) `qconfig` (nil: keep it float), replacing an earlier
    /// entry. PyTorch: `QConfigMapping.set_module_name("features.0", qconfig)` / `qconfig_dict["features.0"]`.
    public mutating func setModuleName(_ name: String, _ qconfig: QConfig?) {
        byName.removeAll { $0.name == name }
        byName.append((name, qconfig))
    }

    /// The entry for a type: `.some(qconfig-or-nil)` when there is one, `.none` otherwise.
    func entry(forType type: Module.Type) -> QConfig?? {
        let id = ObjectIdentifier(type)
        guard let entry = byType.first(where: { $0.type == id }) else { return .none }
        return .some(entry.qconfig)
    }

    /// The entry for a dotted name: `.some(qconfig-or-nil)` when there is one, `.none` otherwise.
    func entry(forName name: String) -> QConfig?? {
        guard let entry = byName.first(where: { $0.name == name }) else { return .none }
        return .some(entry.qconfig)
    }

    /// The dotted names of the name entries, for checking that they exist.
    var moduleNames: [String] { byName.map(\.name) }
}

/// Assigns every module of `model` its qconfig (see `QConfigMapping` for the precedence), so that `prepare` and
/// `convert` know what to quantize. Modules left with nil stay float.
///
/// PyTorch: `torch.ao.quantization.propagate_qconfig_(model, qconfig_dict)`.
/// - Throws: `ModuleError.notFound` when a name entry of `mapping` names no module of `model` (PyTorch ignores it
///   silently, a common source of "why was nothing quantized").
public func propagateQConfig(_ model: Module, _ mapping: QConfigMapping = QConfigMapping()) throws {
    for name in mapping.moduleNames { _ = try model.module(at: name) }
    func visit(_ module: Module, path: String, parent: QConfig?) {
        var qconfig = parent
        if case let .some(entry) = mapping.entry(forType: type(of: module)) { qconfig = entry }
        if case let .some(entry) = mapping.entry(forName: path) { qconfig = entry }
        if module.hasAssignedQConfig { qconfig = module.qconfig }
        module.qconfig = qconfig
        for (name, child) in module.namedChildren {
            visit(child, path: path.isEmpty ? name : path + "." + name, parent: qconfig)
        }
    }
    visit(model, path: "", parent: mapping.global)
}
