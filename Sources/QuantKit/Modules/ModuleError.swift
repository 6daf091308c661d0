/// An error about the structure of a module tree: a name that does not exist or cannot be used. Every description
/// says what was wrong and what was expected. (Payload mismatches and bad shapes in `forward` are
/// `QuantizationError.invalidOperand`; state-dict key and shape mismatches are `SerializationError.keyMismatch` /
/// `.shapeMismatch`.)
///
/// PyTorch: the `AttributeError` / `KeyError` / `TypeError` of `Module.get_submodule`, `add_module`,
/// `register_parameter`, `register_buffer` and `set_submodule`, and the `NotImplementedError` of a module without
/// `forward`.
public enum ModuleError: Error, Equatable, Sendable, CustomStringConvertible {
    /// No child, parameter or buffer of that name. `path` is the dotted path asked for, `available` the names that
    /// exist at the level where the lookup failed.
    ///
    /// PyTorch: `AttributeError: Net has no attribute 'fc3'`.
    case notFound(path: String, kind: String, available: [String])

    /// A name that is empty, contains a dot, or is already used by a child, parameter or buffer of the module.
    ///
    /// PyTorch: `KeyError: "module name can't contain \".\""` / `KeyError: "attribute 'weight' already exists"`.
    case invalidName(String, reason: String)

    /// `forward` was called on a module that does not implement it (a container without a defined order, or a
    /// module whose operations are other methods, like `FloatFunctional`).
    ///
    /// PyTorch: `NotImplementedError: Module [Net] is missing the required "forward" function`.
    case forwardNotImplemented(module: String, hint: String)

    /// What went wrong and what was expected, in one sentence. PyTorch: `str(error)`.
    public var description: String {
        switch self {
        case let .notFound(path, kind, available):
            let names = available.isEmpty ? "none" : available.joined(separator: ", ")
            return "no \(kind) named '\(path)'; available at that level: \(names)"
        case let .invalidName(name, reason):
            return "invalid name '\(name)': \(reason)"
        case let .forwardNotImplemented(module, hint):
            return "module \(module) is missing the required forward function; \(hint)"
        }
    }
}
