/// Runs its children in registration order, each on the previous one's output. Children added by position are
/// named `"0"`, `"1"`, ... (so their parameters are `"0.weight"`, as in PyTorch); `replaceChild(at:with:)` swaps one
/// in place.
///
/// PyTorch: `torch.nn.Sequential(*modules)` / `nn.Sequential(OrderedDict(...))`.
open class Sequential: Module {
    /// Children named `"0"`, `"1"`, ... PyTorch: `nn.Sequential(m0, m1, ...)`.
    public init(_ modules: [Module]) throws {
        super.init()
        for (index, module) in modules.enumerated() { try registerModule(String(index), module) }
    }

    /// Children named `"0"`, `"1"`, ... PyTorch: `nn.Sequential(m0, m1, ...)`.
    public convenience init(_ modules: Module...) throws {
        try self.init(modules)
    }

    /// Children with the given names. PyTorch: `nn.Sequential(OrderedDict([(name, module), ...]))`.
    /// - Throws: `ModuleError.invalidName` for empty, dotted or duplicate names.
    public init(named modules: [(String, Module)]) throws {
        super.init()
        for (name, module) in modules { try registerModule(name, module) }
    }

    /// Adds a module at the end under the next index. PyTorch: `sequential.append(module)`.
    /// - Throws: `ModuleError.invalidName` when that index is already a name.
    public func append(_ module: Module) throws {
        try registerModule(String(namedChildren.count), module)
    }

    /// The number of children. PyTorch: `len(sequential)`.
    public var count: Int { namedChildren.count }

    /// The child at a position. PyTorch: `sequential[index]`.
    /// - Throws: `ModuleError.notFound` for an index out of range.
    public func child(at index: Int) throws -> Module {
        let entries = namedChildren
        guard entries.indices.contains(index) else {
            throw ModuleError.notFound(path: String(index), kind: "child at that position of \(displayName)",
                                       available: entries.map(\.name))
        }
        return entries[index].module
    }

    /// Each child in order (looked up at every call, so replaced children run). PyTorch: `sequential(x)`.
    open override func forward(_ input: Variable) throws -> Variable {
        var x = input
        for (_, module) in namedChildren { x = try module(x) }
        return x
    }
}

/// Returns its input (float or quantized). PyTorch: `torch.nn.Identity()` (what `fuse_modules` leaves behind).
open class Identity: Module {
    /// PyTorch: `nn.Identity()`.
    public override init() { super.init() }
    /// PyTorch: `identity(x)`.
    open override func forward(_ input: Variable) throws -> Variable { input }
}

/// Merges dimensions `startDimension...endDimension` into one in row-major (PyTorch's) order, so a model's state
/// dict and layer sizes carry over from PyTorch. Quantized inputs are reshaped with their parameters.
///
/// PyTorch: `torch.nn.Flatten(start_dim=1, end_dim=-1)`.
open class Flatten: Module {
    /// PyTorch: `flatten.start_dim`.
    public let startDimension: Int
    /// PyTorch: `flatten.end_dim`.
    public let endDimension: Int

    /// PyTorch: `nn.Flatten(start_dim=1, end_dim=-1)`.
    public init(startDimension: Int = 1, endDimension: Int = -1) {
        self.startDimension = startDimension
        self.endDimension = endDimension
        super.init()
    }

    /// PyTorch: `flatten(x)`.
    /// - Throws: `QuantizationError.axisOutOfRange` / `.invalidOperand` for dimensions that do not fit the input.
    open override func forward(_ input: Variable) throws -> Variable {
        try attributingErrors {
            try Functional.flatten(input, startDimension: startDimension, endDimension: endDimension)
        }
    }

    /// PyTorch: `start_dim=1, end_dim=-1`.
    open override var extraDescription: String { "start_dim=\(startDimension), end_dim=\(endDimension)" }
}

/// Zeroes each element with probability `p` (scaling the rest by `1 / (1 - p)`) in training mode; the identity in
/// evaluation mode (also for quantized inputs). The mask comes from the module's own seeded generator, so runs
/// reproduce.
///
/// PyTorch: `torch.nn.Dropout(p=0.5)` (whose mask comes from the global generator).
open class Dropout: Module {
    /// PyTorch: `dropout.p`.
    public let p: Float
    /// The generator of the masks, advanced by every training-mode call.
    public var generator: RandomGenerator

    /// A dropout layer whose generator is seeded from `generator` (which advances by one draw).
    /// PyTorch: `nn.Dropout(p)`.
    /// - Throws: `QuantizationError.invalidOperand` for `p` outside [0, 1].
    public init(p: Float = 0.5, generator: inout RandomGenerator) throws {
        guard p >= 0, p <= 1 else {
            throw QuantizationError.invalidOperand(
                operation: "Dropout", reason: "dropout probability has to be between 0 and 1, but got \(p)")
        }
        self.p = p
        self.generator = RandomGenerator(seed: generator.next())
        super.init()
    }

    /// PyTorch: `dropout(x)`.
    /// - Throws: `QuantizationError.invalidOperand` naming this module for a quantized input in training mode.
    open override func forward(_ input: Variable) throws -> Variable {
        guard training, p > 0 else { return input }
        return try attributingErrors { try Functional.dropout(input, p: p, training: true, using: &generator) }
    }

    /// PyTorch: `p=0.5, inplace=False`.
    open override var extraDescription: String { "p=\(p), inplace=False" }
}
