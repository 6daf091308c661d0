/// A module that a quantized model file can rebuild: a stable type name and the settings that, with the module's
/// state dict, define it. Loading makes the module from its settings, then loads its state (and
/// `didLoadStateDict()` repacks derived data such as packed weights).
///
/// PyTorch: no equivalent; a converted eager-mode model cannot be pickled whole (pytorch/pytorch#69426) and must be
/// rebuilt with prepare / convert before `load_state_dict`. Here the file says which quantized module sits where.
public protocol ArchivableModule: Module {
    /// The module type's name in a model file, e.g. `"QuantizedConv2d"`. Unique among archivable types.
    static var archiveTypeName: String { get }
    /// The settings (shapes, stride, dtype, ...) as strings; the tensors are in the state dict.
    var archiveConfiguration: [String: String] { get }
    /// A module with these settings, whose state is loaded next.
    /// - Throws: `SerializationError` for missing or malformed settings.
    static func makeForArchive(configuration: [String: String]) throws -> Module
}
