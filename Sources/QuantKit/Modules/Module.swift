/// The base class of every layer and model: a node of a module tree with ordered named children, parameters and
/// buffers, a training flag, and a `forward` pass.
///
/// PyTorch: `torch.nn.Module`. Subclasses register what they own in `init` and implement `forward(_:)`:
///
/// ```swift
/// final class Net: Module {
///     init(generator: inout RandomGenerator) throws {
///         super.init()
///         try registerModule("fc1", Linear(784, 256, generator: &generator))
///         try registerModule("relu", ReLU())
///         try registerModule("fc2", Linear(256, 10, generator: &generator))
///     }
///     override func forward(_ x: Variable) throws -> Variable {
///         // Children are looked up by name, so replaceChild(at:with:) (eager-mode convert) takes effect.
///         try child("fc2")(child("relu")(child("fc1")(x)))
///     }
/// }
/// ```
///
/// `forward` must reach children through the registry (`child(_:)`, or `Sequential`'s order), never through a stored
/// reference, so that a child replaced in place (`replaceChild(at:with:)`, what eager-mode `convert` and
/// `fuse_modules` do) is the one that runs. Parameters may be kept in stored properties as well: the registry holds
/// the same `Parameter` objects, and loading a state dict updates them in place.
open class Module {
    private var childEntries: [(name: String, module: Module)] = []
    private var parameterEntries: [(name: String, parameter: Parameter?)] = []
    private var bufferEntries: [BufferEntry] = []
    private var preHooks: [(id: Int, hook: (Module, Variable) throws -> Variable?)] = []
    private var postHooks: [(id: Int, hook: (Module, Variable, Variable) throws -> Variable?)] = []
    private var nextHookID = 0
    /// Hooks that eager-mode `prepare` installed (they run the `activation_post_process` child); `convert` drops them.
    private var observerHookIDs: Set<Int> = []
    /// `.none`: no qconfig assigned (inherit from the parent at propagation); `.some(nil)`: opted out.
    private var qconfigSlot: QConfig?? = .none

    /// The module this one was last registered in, and its name there (for error messages naming `features.0`).
    private weak var parent: Module?
    private var nameInParent: String?

    struct BufferEntry {
        var name: String
        var tensor: Tensor<Float>?
        var persistent: Bool
        var dtype: SafeTensors.DType
    }

    /// Whether the module is in training mode (dropout active, batch norm using and updating batch statistics).
    /// Modules start in training mode. PyTorch: `module.training`.
    public private(set) var training = true

    /// An empty module. PyTorch: `nn.Module.__init__()`.
    public init() {}

    /// How eager-mode quantization treats this module and, through propagation, its descendants: a `QConfig`, or
    /// `nil` to keep the subtree in float. Reading an unassigned qconfig gives nil; assigning nil is an explicit opt
    /// out that propagation respects (see `hasAssignedQConfig`).
    ///
    /// PyTorch: the `module.qconfig` attribute (`model.qconfig = get_default_qconfig("x86")`,
    /// `model.head.qconfig = None`).
    public var qconfig: QConfig? {
        get { qconfigSlot ?? nil }
        set { qconfigSlot = .some(newValue) }
    }

    /// Whether `qconfig` was assigned (a config or an explicit nil) rather than left to inherit.
    /// PyTorch: `hasattr(module, "qconfig")`.
    public var hasAssignedQConfig: Bool { qconfigSlot != nil }

    /// Forgets the assigned qconfig, so that propagation gives this module its parent's.
    /// PyTorch: `del module.qconfig` (what `convert` does with `remove_qconfig=True`).
    public func removeQConfig() { qconfigSlot = .none }

    // MARK: Forward

    /// The computation of the module. Subclasses override it; the base implementation throws.
    ///
    /// PyTorch: `module.forward(x)`. Call the module itself (`module(x)`), which also runs the hooks.
    /// - Throws: `ModuleError.forwardNotImplemented` in the base class; whatever the subclass throws.
    open func forward(_ input: Variable) throws -> Variable {
        throw ModuleError.forwardNotImplemented(
            module: typeName, hint: "subclasses of Module must override forward(_:)")
    }

    /// Runs the forward pre-hooks, `forward(_:)` and the forward hooks. PyTorch: `module(x)` (`__call__`).
    public final func callAsFunction(_ input: Variable) throws -> Variable {
        var x = input
        for (_, hook) in preHooks {
            if let replaced = try hook(self, x) { x = replaced }
        }
        var y = try forward(x)
        for (_, hook) in postHooks {
            if let replaced = try hook(self, x, y) { y = replaced }
        }
        return y
    }

    /// Runs the module on a float tensor (a leaf that does not require a gradient). PyTorch: `module(x)`.
    public final func callAsFunction(_ input: Tensor<Float>) throws -> Variable {
        try self(Variable(input))
    }

    /// Identifies a registered hook, for removal. PyTorch: `torch.utils.hooks.RemovableHandle`.
    public struct HookHandle: Hashable, Sendable {
        let id: Int
    }

    /// Registers `hook(module, input)`, run before `forward`; a non-nil result replaces the input.
    /// PyTorch: `module.register_forward_pre_hook(hook)`.
    @discardableResult
    public func registerForwardPreHook(_ hook: @escaping (Module, Variable) throws -> Variable?) -> HookHandle {
        nextHookID += 1
        preHooks.append((nextHookID, hook))
        return HookHandle(id: nextHookID)
    }

    /// Registers `hook(module, input, output)`, run after `forward`; a non-nil result replaces the output.
    /// PyTorch: `module.register_forward_hook(hook)` (how eager-mode `prepare` attaches output observers).
    @discardableResult
    public func registerForwardHook(_ hook: @escaping (Module, Variable, Variable) throws -> Variable?) -> HookHandle {
        nextHookID += 1
        postHooks.append((nextHookID, hook))
        return HookHandle(id: nextHookID)
    }

    /// Removes a hook registered on this module (no-op for an unknown handle). PyTorch: `handle.remove()`.
    public func removeHook(_ handle: HookHandle) {
        preHooks.removeAll { $0.id == handle.id }
        postHooks.removeAll { $0.id == handle.id }
        observerHookIDs.remove(handle.id)
    }

    /// Registers the hook that eager-mode `prepare` uses to run the `activation_post_process` child on the output
    /// (or, with `onInput`, on the input). `convert` removes it; copying hooks to a swapped module skips it.
    /// PyTorch: `_register_activation_post_process_hook(module, pre_hook)`.
    @discardableResult
    func registerObserverHook(onInput: Bool) -> HookHandle {
        let handle: HookHandle
        if onInput {
            handle = registerForwardPreHook { module, x in try module.child("activation_post_process")(x) }
        } else {
            handle = registerForwardHook { module, _, y in try module.child("activation_post_process")(y) }
        }
        observerHookIDs.insert(handle.id)
        return handle
    }

    /// Removes the hooks `registerObserverHook` installed. PyTorch: part of `_remove_activation_post_process`.
    func removeObserverHooks() {
        preHooks.removeAll { observerHookIDs.contains($0.id) }
        postHooks.removeAll { observerHookIDs.contains($0.id) }
        observerHookIDs.removeAll()
    }

    /// Registers this module's user hooks (not the observer hooks) on `other`, pre-hooks and forward hooks in order:
    /// what `convert` and `fuseModules` do so hooks survive a swap. PyTorch: the hook copying of `swap_module`.
    func copyUserHooks(to other: Module, preHooks copyPre: Bool = true, forwardHooks copyPost: Bool = true) {
        if copyPre { for entry in preHooks where !observerHookIDs.contains(entry.id) { other.registerForwardPreHook(entry.hook) } }
        if copyPost { for entry in postHooks where !observerHookIDs.contains(entry.id) { other.registerForwardHook(entry.hook) } }
    }

    /// Removes this module's user hooks (not the observer hooks): `fuseModules` moves them to the fused module, and a
    /// member that stays inside it must not run them again. PyTorch: `_forward_pre_hooks.clear()` in `fuse_known_modules`.
    func removeUserHooks(preHooks removePre: Bool = true, forwardHooks removePost: Bool = true) {
        if removePre { preHooks.removeAll { !observerHookIDs.contains($0.id) } }
        if removePost { postHooks.removeAll { !observerHookIDs.contains($0.id) } }
    }

    /// Removes the direct child `name` (no-op when absent). PyTorch: `delattr(module, name)`.
    func removeChild(_ name: String) {
        childEntries.removeAll { $0.name == name }
    }

    // MARK: Payload checks for subclasses

    /// The float payload of `input`, or an error naming this module (its path in the tree and its type) when the
    /// payload is quantized. Float modules call it first in `forward`.
    ///
    /// PyTorch: the "Could not run 'aten::...' with arguments from the 'QuantizedCPU' backend" failure, here naming
    /// the module and the fix.
    /// - Throws: `QuantizationError.invalidOperand`.
    public func floatInput(_ input: Variable) throws -> Tensor<Float> {
        try input.floatTensor(for: displayName)
    }

    /// The quantized payload of `input`, or an error naming this module when the payload is float. Quantized
    /// modules call it first in `forward`.
    /// - Throws: `QuantizationError.invalidOperand`.
    public func quantizedInput(_ input: Variable) throws -> QuantizedTensor {
        try input.quantizedTensor(for: displayName)
    }

    /// Runs `body`, attributing its `QuantizationError.invalidOperand` errors to this module: the operation becomes
    /// this module's path and type (`"features.0 (Conv2d)"`) and the reason starts with the failing function, so a
    /// shape or payload mistake deep in a model says where it happened.
    ///
    /// PyTorch: no equivalent (its errors name the operator only).
    /// - Throws: whatever `body` throws, rewritten as described.
    public func attributingErrors<R>(_ body: () throws -> R) throws -> R {
        do {
            return try body()
        } catch QuantizationError.invalidOperand(let operation, let reason) {
            let name = displayName
            if operation == name || operation.hasPrefix(name + ":") { throw QuantizationError.invalidOperand(operation: operation, reason: reason) }
            throw QuantizationError.invalidOperand(operation: name, reason: "\(operation): \(reason)")
        }
    }

    /// The module's class name, e.g. `"Linear"`. PyTorch: `type(module).__name__`.
    public var typeName: String { String(describing: type(of: self)) }

    /// The dotted path of this module from the root it was registered under (`"features.0"`), or `""` for a root.
    /// A module registered in several places reports the last one. PyTorch: the names of `named_modules()`.
    public var path: String {
        var names: [String] = []
        var node: Module? = self
        while let current = node, let name = current.nameInParent, let parent = current.parent {
            names.append(name)
            node = parent
        }
        return names.reversed().joined(separator: ".")
    }

    /// `"features.0 (Conv2d)"`, or the type alone for a root.
    var displayName: String {
        let p = path
        return p.isEmpty ? typeName : "\(p) (\(typeName))"
    }

    // MARK: Registration

    private func checkNewName(_ name: String) throws {
        guard !name.isEmpty else { throw ModuleError.invalidName(name, reason: "names must not be empty") }
        guard !name.contains(".") else {
            throw ModuleError.invalidName(name, reason: "names can't contain \".\" (it separates path components)")
        }
        let taken = childEntries.contains { $0.name == name } || parameterEntries.contains { $0.name == name }
            || bufferEntries.contains { $0.name == name }
        guard !taken else {
            throw ModuleError.invalidName(name, reason: "attribute '\(name)' already exists in \(typeName); use "
                                          + "replaceChild(at:with:) to replace a child")
        }
    }

    /// Adds a child under `name` (after the existing ones). PyTorch: `module.add_module(name, child)` /
    /// `register_module`, or assigning a module attribute.
    /// - Throws: `ModuleError.invalidName` for an empty or dotted name, or one already used.
    public func registerModule(_ name: String, _ module: Module) throws {
        try checkNewName(name)
        appendChild(name, module)
    }

    /// `registerModule` for names known to be valid and free.
    func appendChild(_ name: String, _ module: Module) {
        childEntries.append((name, module))
        module.parent = self
        module.nameInParent = name
    }

    /// Adds a parameter under `name`; nil registers the name without a tensor (e.g. `bias` of a layer without
    /// bias), which `namedParameters()` and the state dict skip.
    ///
    /// PyTorch: `module.register_parameter(name, param)`.
    /// - Throws: `ModuleError.invalidName` for an empty or dotted name, or one already used.
    public func registerParameter(_ name: String, _ parameter: Parameter?) throws {
        try checkNewName(name)
        parameterEntries.append((name, parameter))
    }

    /// `registerParameter` for names known to be valid and free.
    func appendParameter(_ name: String, _ parameter: Parameter) {
        parameterEntries.append((name, parameter))
    }

    /// Adds a buffer: state that is not trained (running statistics, observer ranges). `persistent` buffers are part
    /// of the state dict; `dtype` is the PyTorch dtype the state dict reports for it (`.int64` for BatchNorm's
    /// `num_batches_tracked`; the value is kept as Float, exact up to 2^24). nil registers the name without a tensor.
    ///
    /// PyTorch: `module.register_buffer(name, tensor, persistent=True)`.
    /// - Throws: `ModuleError.invalidName` for an empty or dotted name, or one already used.
    public func registerBuffer(_ name: String, _ tensor: Tensor<Float>?, persistent: Bool = true,
                               dtype: SafeTensors.DType = .float32) throws {
        try checkNewName(name)
        bufferEntries.append(BufferEntry(name: name, tensor: tensor, persistent: persistent, dtype: dtype))
    }

    // MARK: Lookup

    /// The direct child `name`. PyTorch: `getattr(module, name)` / `module._modules[name]`.
    /// - Throws: `ModuleError.notFound` listing the children.
    public func child(_ name: String) throws -> Module {
        guard let entry = childEntries.first(where: { $0.name == name }) else {
            throw ModuleError.notFound(path: name, kind: "child module of \(displayName)",
                                       available: childEntries.map(\.name))
        }
        return entry.module
    }

    /// The direct child `name` as a given type.
    /// - Throws: `ModuleError.notFound` when there is no such child or it has another type.
    public func child<M: Module>(_ name: String, as type: M.Type) throws -> M {
        let module = try child(name)
        guard let typed = module as? M else {
            throw ModuleError.notFound(path: name, kind: "\(M.self) (the child is a \(module.typeName))",
                                       available: childEntries.map(\.name))
        }
        return typed
    }

    /// The descendant at a dotted path (`"features.0.conv"`); `""` is this module.
    /// PyTorch: `module.get_submodule(target)`.
    /// - Throws: `ModuleError.notFound` naming the first missing component.
    public func module(at path: String) throws -> Module {
        guard !path.isEmpty else { return self }
        var node: Module = self
        var walked: [String] = []
        for component in path.split(separator: ".", omittingEmptySubsequences: false).map(String.init) {
            guard let next = node.childEntries.first(where: { $0.name == component })?.module else {
                throw ModuleError.notFound(path: (walked + [component]).joined(separator: "."), kind: "submodule",
                                           available: node.childEntries.map(\.name))
            }
            walked.append(component)
            node = next
        }
        return node
    }

    /// Replaces the descendant at a dotted path with `module`, keeping its name and position, so that the parent's
    /// `forward` runs the new one. The path must exist.
    ///
    /// PyTorch: `module.set_submodule(target, module)` (what `convert` and `fuse_modules` do through `setattr`).
    /// - Throws: `ModuleError.notFound` when the path does not exist, `.invalidName` for an empty path.
    public func replaceChild(at path: String, with module: Module) throws {
        guard !path.isEmpty else { throw ModuleError.invalidName(path, reason: "the root cannot be replaced") }
        var components = path.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        let name = components.removeLast()
        let owner = try self.module(at: components.joined(separator: "."))
        guard let index = owner.childEntries.firstIndex(where: { $0.name == name }) else {
            throw ModuleError.notFound(path: path, kind: "submodule", available: owner.childEntries.map(\.name))
        }
        owner.childEntries[index].module = module
        module.parent = owner
        module.nameInParent = name
    }

    /// The parameter `name` of this module (nil when registered without a tensor).
    /// PyTorch: `module._parameters[name]`.
    /// - Throws: `ModuleError.notFound` when no parameter has that name.
    public func parameter(_ name: String) throws -> Parameter? {
        guard let entry = parameterEntries.first(where: { $0.name == name }) else {
            throw ModuleError.notFound(path: name, kind: "parameter of \(displayName)",
                                       available: parameterEntries.map(\.name))
        }
        return entry.parameter
    }

    /// The buffer `name` of this module (nil when registered without a tensor). PyTorch: `module._buffers[name]`.
    /// - Throws: `ModuleError.notFound` when no buffer has that name.
    public func buffer(_ name: String) throws -> Tensor<Float>? {
        guard let entry = bufferEntries.first(where: { $0.name == name }) else {
            throw ModuleError.notFound(path: name, kind: "buffer of \(displayName)", available: bufferEntries.map(\.name))
        }
        return entry.tensor
    }

    /// Replaces the value of the buffer `name` (any shape; `loadStateDict` checks shapes).
    /// PyTorch: assigning `module.running_mean = tensor`.
    /// - Throws: `ModuleError.notFound` when no buffer has that name.
    public func setBuffer(_ name: String, _ tensor: Tensor<Float>?) throws {
        guard let index = bufferEntries.firstIndex(where: { $0.name == name }) else {
            throw ModuleError.notFound(path: name, kind: "buffer of \(displayName)", available: bufferEntries.map(\.name))
        }
        bufferEntries[index].tensor = tensor
    }

    /// Applies `body` to a buffer in place (no copy when nothing else shares it); a nil buffer is passed as nil.
    func updateBuffer<R>(_ name: String, _ body: (inout Tensor<Float>?) throws -> R) throws -> R {
        guard let index = bufferEntries.firstIndex(where: { $0.name == name }) else {
            throw ModuleError.notFound(path: name, kind: "buffer of \(displayName)", available: bufferEntries.map(\.name))
        }
        var tensor = bufferEntries[index].tensor
        bufferEntries[index].tensor = nil
        defer { bufferEntries[index].tensor = tensor }
        return try body(&tensor)
    }

    // MARK: Traversal

    /// The direct children in registration order. PyTorch: `module.named_children()`.
    public var namedChildren: [(name: String, module: Module)] { childEntries }

    /// The direct children. PyTorch: `module.children()`.
    public var children: [Module] { childEntries.map(\.module) }

    /// This module (path `""`) and every descendant, depth first in registration order, each once even if
    /// registered in several places. PyTorch: `module.named_modules()`.
    public func namedModules() -> [(path: String, module: Module)] {
        var result: [(String, Module)] = []
        var seen: Set<ObjectIdentifier> = []
        func visit(_ module: Module, _ prefix: String) {
            guard seen.insert(ObjectIdentifier(module)).inserted else { return }
            result.append((prefix, module))
            for (name, child) in module.childEntries {
                visit(child, prefix.isEmpty ? name : prefix + "." + name)
            }
        }
        visit(self, "")
        return result
    }

    /// This module and every descendant. PyTorch: `module.modules()`.
    public func modules() -> [Module] { namedModules().map(\.module) }

    /// Every parameter of the tree with its dotted path (`"features.0.weight"`), each object once (a parameter
    /// shared by two modules is listed at its first path). PyTorch: `module.named_parameters()`.
    public func namedParameters() -> [(path: String, parameter: Parameter)] {
        var result: [(String, Parameter)] = []
        var seen: Set<ObjectIdentifier> = []
        for (prefix, module) in namedModules() {
            for (name, parameter) in module.parameterEntries {
                guard let parameter, seen.insert(ObjectIdentifier(parameter)).inserted else { continue }
                result.append((prefix.isEmpty ? name : prefix + "." + name, parameter))
            }
        }
        return result
    }

    /// Every parameter of the tree, each once: what an optimizer gets. PyTorch: `module.parameters()`.
    public func parameters() -> [Parameter] { namedParameters().map(\.parameter) }

    /// Every buffer of the tree (non-nil) with its dotted path. PyTorch: `module.named_buffers()`.
    public func namedBuffers() -> [(path: String, buffer: Tensor<Float>)] {
        var result: [(String, Tensor<Float>)] = []
        for (prefix, module) in namedModules() {
            for entry in module.bufferEntries {
                guard let tensor = entry.tensor else { continue }
                result.append((prefix.isEmpty ? entry.name : prefix + "." + entry.name, tensor))
            }
        }
        return result
    }

    /// Calls `body` on every module of the tree (children first, then this one, as PyTorch).
    /// PyTorch: `module.apply(fn)`.
    public func apply(_ body: (Module) throws -> Void) rethrows {
        for (_, child) in childEntries { try child.apply(body) }
        try body(self)
    }

    // MARK: Modes and gradients

    /// Sets training mode (`true`) or evaluation mode on this module and every descendant. Subclasses that
    /// override it must call `super.train(mode)`.
    ///
    /// PyTorch: `module.train(mode)`.
    open func train(_ mode: Bool = true) {
        training = mode
        for (_, child) in childEntries { child.train(mode) }
    }

    /// Evaluation mode: `train(false)`. PyTorch: `module.eval()`.
    public final func eval() { train(false) }

    /// Clears the gradients of every parameter (sets them to nil). PyTorch: `module.zero_grad(set_to_none=True)`.
    public func zeroGrad() {
        for parameter in parameters() { parameter.grad = nil }
    }

    // MARK: State dict

    /// Where each state-dict entry lives: a parameter object or a buffer slot of a module.
    private enum Slot {
        case parameter(Parameter)
        case buffer(Module, String)
    }

    private func stateSlots() -> [(name: String, slot: Slot, tensor: Tensor<Float>, dtype: SafeTensors.DType)] {
        var result: [(String, Slot, Tensor<Float>, SafeTensors.DType)] = []
        // Not deduplicated: a shared parameter appears under every name, as in PyTorch's state_dict.
        func visit(_ module: Module, _ prefix: String) {
            for (name, parameter) in module.parameterEntries {
                guard let parameter else { continue }
                result.append((prefix + name, .parameter(parameter), parameter.data, .float32))
            }
            for entry in module.bufferEntries where entry.persistent {
                guard let tensor = entry.tensor else { continue }
                result.append((prefix + entry.name, .buffer(module, entry.name), tensor, entry.dtype))
            }
            for (name, child) in module.childEntries { visit(child, prefix + name + ".") }
        }
        visit(self, "")
        return result
    }

    /// Every parameter and persistent buffer under its dotted PyTorch name, in PyTorch's order (a module's
    /// parameters, then its buffers, then its children's entries): `fc1.weight`, `fc1.bias`, `bn.running_mean`,
    /// `bn.running_var`, `bn.num_batches_tracked`, ... The tensors are copies (values); changing them does not
    /// change the module.
    ///
    /// PyTorch: `module.state_dict()`.
    public func stateDict() -> StateDict {
        StateDict(entries: stateSlots().map { StateDict.Entry(name: $0.name, tensor: $0.tensor, dtype: $0.dtype) })
    }

    /// Copies the tensors of `stateDict` into the parameters (in place: optimizers keep working) and buffers of
    /// the same names. Every shape must match; with `strict`, the names must match exactly. Nothing is changed
    /// when an error is thrown.
    ///
    /// PyTorch: `module.load_state_dict(state_dict, strict=True)`, which returns the missing and unexpected keys.
    /// - Returns: the names the module has but `stateDict` lacks, and the names `stateDict` has but the module
    ///   lacks (both empty after a strict load).
    /// - Throws: `SerializationError.keyMismatch` (strict only), `.shapeMismatch` naming the first mismatch.
    @discardableResult
    public func loadStateDict(_ stateDict: StateDict, strict: Bool = true) throws
        -> (missingKeys: [String], unexpectedKeys: [String])
    {
        let slots = stateSlots()
        let expected = Set(slots.map(\.name))
        let missing = slots.map(\.name).filter { stateDict[$0] == nil }
        let unexpected = stateDict.names.filter { !expected.contains($0) }
        if strict, !missing.isEmpty || !unexpected.isEmpty {
            throw SerializationError.keyMismatch(missing: missing, unexpected: unexpected)
        }
        for (name, _, current, _) in slots {
            if let new = stateDict[name], new.shape != current.shape {
                throw SerializationError.shapeMismatch(tensor: name, expected: current.shape, actual: new.shape)
            }
        }
        for (name, slot, _, _) in slots {
            guard let new = stateDict[name] else { continue }
            switch slot {
            case .parameter(let parameter):
                parameter.data = new
            case .buffer(let module, let bufferName):
                if let index = module.bufferEntries.firstIndex(where: { $0.name == bufferName }) {
                    module.bufferEntries[index].tensor = new
                }
            }
        }
        try apply { try $0.didLoadStateDict() }
        return (missing, unexpected)
    }

    /// Called on every module of the tree after `loadStateDict` copied the tensors in, so a module that keeps a
    /// derived form of its state (a quantized layer's packed weight) can rebuild it. The base does nothing.
    ///
    /// PyTorch: the role of `_load_from_state_dict` overrides (e.g. `nnq.Linear` re-packing its weight).
    /// - Throws: what the override throws (the new tensors stay loaded).
    open func didLoadStateDict() throws {}

    // MARK: Description

    /// The module's own settings for its one-line description, e.g. `"in_features=784, out_features=256,
    /// bias=True"`. PyTorch: `module.extra_repr()`.
    open var extraDescription: String { "" }
}

extension Module: CustomStringConvertible {
    /// The tree as PyTorch prints it:
    /// ```
    /// Sequential(
    ///   (0): Linear(in_features=784, out_features=256, bias=True)
    ///   (1): ReLU()
    /// )
    /// ```
    /// PyTorch: `repr(module)`.
    public var description: String {
        let extra = extraDescription
        guard !childEntries.isEmpty else { return "\(typeName)(\(extra))" }
        var lines = ["\(typeName)("]
        if !extra.isEmpty { lines.append("  " + extra) }
        for (name, child) in childEntries {
            let childLines = child.description.split(separator: "\n", omittingEmptySubsequences: false)
            lines.append("  (\(name)): " + childLines[0])
            lines.append(contentsOf: childLines.dropFirst().map { "  " + $0 })
        }
        lines.append(")")
        return lines.joined(separator: "\n")
    }
}

/// Python's spelling of a Bool in descriptions (`bias=True`).
func pythonBool(_ value: Bool) -> String { value ? "True" : "False" }
