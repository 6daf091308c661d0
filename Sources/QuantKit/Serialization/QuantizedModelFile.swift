#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

// A quantized model file is a safetensors file: the model's state dict (int8 weights as I8, zero points as I64, fp16
// weights as F16, the rest F32) plus, in `__metadata__`:
//   "quantkit.format": "quantized-model", "quantkit.format_version": "1",
//   "quantkit.modules":   JSON [{"path": "fc1", "type": "DynamicQuantizedLinear", "configuration": {...}}, ...]
//                         (each registered archivable module, outermost only: it rebuilds its own children),
//   "quantkit.structure": JSON [["", "Sequential"], ["fc1", "DynamicQuantizedLinear"], ...] (every module),
//   "quantkit.training":  "False".
// Loading rebuilds the recorded modules into a freshly built float architecture, checks that the tree then matches
// the structure, and loads the state dict strictly.

/// The archivable module types a quantized model file may name: a table from `archiveTypeName` to the type whose
/// `makeForArchive` rebuilds it. A module is recorded in a file only when its exact type is registered here (a
/// subclass that inherits a conformance is kept from the architecture instead).
///
/// PyTorch: no equivalent (eager-mode quantized models cannot be pickled, pytorch/pytorch#69426).
///
/// ```swift
/// var registry = ModuleArchiveRegistry.default
/// registry.register(MyQuantizedLayer.self)
/// try saveQuantizedModel(model, to: url, registry: registry)
/// let loaded = try loadQuantizedModel(into: MyNet(), from: url, registry: registry)
/// ```
public struct ModuleArchiveRegistry: @unchecked Sendable {
    private var types: [String: any ArchivableModule.Type] = [:]

    /// An empty registry.
    public init() {}

    /// Registers `type` under its `archiveTypeName`, replacing an earlier type of that name.
    public mutating func register(_ type: any ArchivableModule.Type) {
        types[type.archiveTypeName] = type
    }

    /// The registered type names, sorted.
    public var typeNames: [String] { types.keys.sorted() }

    /// The type registered under `name`.
    public func type(named name: String) -> (any ArchivableModule.Type)? { types[name] }

    /// Whether `module` is recorded in files: its exact type is the one registered under its archive name.
    func archivable(_ module: Module) -> (any ArchivableModule)? {
        guard let archivable = module as? any ArchivableModule,
              let registered = types[Swift.type(of: archivable).archiveTypeName],
              ObjectIdentifier(registered) == ObjectIdentifier(Swift.type(of: module)) else { return nil }
        return archivable
    }

    /// QuantKit's archivable modules: the dynamic and static quantized layers, `Quantize` / `DeQuantize`, and the
    /// float modules that run on quantized tensors or are left by fusion (`Identity`, activations, pooling,
    /// `Flatten`, `Dropout`).
    public static var `default`: ModuleArchiveRegistry {
        var registry = ModuleArchiveRegistry()
        let types: [any ArchivableModule.Type] = [
            DynamicQuantizedLinear.self, DynamicQuantizedLinearReLU.self, Quantize.self, DeQuantize.self,
            Identity.self, ReLU.self, ReLU6.self, Hardswish.self, Hardsigmoid.self, Sigmoid.self, Tanh.self,
            GELU.self, Softmax.self, LogSoftmax.self, Flatten.self, Dropout.self, MaxPool2d.self, AvgPool2d.self,
            AdaptiveAvgPool2d.self,
            QuantizedLinear.self, QuantizedLinearReLU.self, QuantizedConv2d.self, QuantizedConvReLU2d.self,
            QuantizedBatchNorm2d.self, QuantizedBNReLU2d.self, QuantizedReLU6.self, QuantizedHardswish.self,
            QFunctional.self,
        ]
        for type in types { registry.register(type) }
        return registry
    }
}

// MARK: - Save and load

/// One archived module of a file.
private struct ModuleRecord: Codable {
    var path: String
    var type: String
    var configuration: [String: String]
}

private enum ArchiveKeys {
    static let format = "quantkit.format"
    static let formatValue = "quantized-model"
    static let version = "quantkit.format_version"
    static let versionValue = "1"
    static let modules = "quantkit.modules"
    static let structure = "quantkit.structure"
    static let training = "quantkit.training"
}

/// The safetensors contents of a quantized model file for `model` (see `saveQuantizedModel(_:to:registry:)`).
/// PyTorch: `model.state_dict()` plus the module types that `torch.save(model)` cannot record.
/// - Throws: `SerializationError.invalidModelArchive` for a model that still holds observers (convert it first);
///   `SerializationError` for tensors that cannot be stored.
public func quantizedModelArchive(_ model: Module, registry: ModuleArchiveRegistry = .default) throws
    -> SafeTensors
{
    var records: [ModuleRecord] = []
    var structure: [[String]] = []
    var archivedPrefixes: [String] = []
    for (path, module) in model.namedModules() {
        if module is ObserverModule {
            throw SerializationError.invalidModelArchive(
                module: path, reason: "the model still holds an observer (\(module.typeName)); call convert(_:) "
                    + "(after calibration) before saving a quantized model")
        }
        structure.append([path, module.typeName])
        let inside = archivedPrefixes.contains { prefix in prefix.isEmpty || path.hasPrefix(prefix + ".") }
        if !inside, let archivable = registry.archivable(module) {
            records.append(ModuleRecord(path: path, type: type(of: archivable).archiveTypeName,
                                        configuration: archivable.archiveConfiguration))
            archivedPrefixes.append(path)
        }
    }
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    func json<T: Encodable>(_ value: T) throws -> String {
        String(decoding: try encoder.encode(value), as: UTF8.self)
    }
    let metadata = [
        ArchiveKeys.format: ArchiveKeys.formatValue, ArchiveKeys.version: ArchiveKeys.versionValue,
        ArchiveKeys.modules: try json(records), ArchiveKeys.structure: try json(structure),
        ArchiveKeys.training: pythonBool(model.training),
    ]
    return try SafeTensors(model.stateDict(), metadata: metadata)
}

/// Saves a quantized (or float, or partly quantized) model: its state dict as safetensors tensors with their dtypes
/// (int8 weights as I8, so an int8 model file is about a quarter of the fp32 one) and, in the metadata, the type
/// and settings of each module that `ModuleArchiveRegistry` knows, at its path, plus the module tree.
/// `loadQuantizedModel(into:from:registry:)` rebuilds it from a fresh float architecture.
///
/// PyTorch: `torch.save(quantized_model.state_dict(), path)`, which needs the model re-prepared and re-converted
/// before `load_state_dict`; here the file says which quantized module sits where.
/// - Throws: `SerializationError.invalidModelArchive` for a model that still holds observers; `SerializationError`
///   when the file cannot be written.
public func saveQuantizedModel(_ model: Module, to url: URL, registry: ModuleArchiveRegistry = .default) throws {
    try quantizedModelArchive(model, registry: registry).write(to: url)
}

/// Rebuilds a quantized model saved by `saveQuantizedModel(_:to:registry:)`: in `architecture` (a freshly built
/// float model of the same class, e.g. fused as before, or not: fusion's leftovers are recorded too), replaces each
/// recorded path with a module made by its type's `makeForArchive`, checks that the module tree matches the saved
/// one, loads the state dict strictly (weights are repacked) and restores the training mode. The result gives the
/// same outputs as the saved model.
///
/// `architecture` is changed in place; the result is it, or the rebuilt root when the root itself was recorded.
///
/// PyTorch: building the float model, `prepare` / `convert` again, then `model.load_state_dict(torch.load(path))`.
/// - Throws: `SerializationError` for an unreadable file; `.invalidModelArchive` for malformed or unknown records, a
///   path missing from the architecture, or a tree that differs; `.keyMismatch` / `.shapeMismatch` for tensors
///   that do not fit. Never traps on a malformed file.
@discardableResult
public func loadQuantizedModel(into architecture: Module, from url: URL,
                               registry: ModuleArchiveRegistry = .default) throws -> Module {
    try loadQuantizedModel(into: architecture, from: SafeTensors(contentsOf: url), registry: registry)
}

/// `loadQuantizedModel(into:from:registry:)` from safetensors contents in memory (`quantizedModelArchive(_:)`).
/// - Throws: as `loadQuantizedModel(into:from:registry:)`.
@discardableResult
public func loadQuantizedModel(into architecture: Module, from archive: SafeTensors,
                               registry: ModuleArchiveRegistry = .default) throws -> Module {
    let metadata = archive.metadata
    guard metadata[ArchiveKeys.format] == ArchiveKeys.formatValue else {
        throw SerializationError.invalidModelArchive(
            module: "", reason: "the file has no \"\(ArchiveKeys.format)\": \"\(ArchiveKeys.formatValue)\" "
                + "metadata; it is not a quantized model file (write one with saveQuantizedModel(_:to:); a plain "
                + "state dict loads with loadStateDict(contentsOf:))")
    }
    guard metadata[ArchiveKeys.version] == ArchiveKeys.versionValue else {
        throw SerializationError.invalidModelArchive(
            module: "", reason: "format version \(metadata[ArchiveKeys.version] ?? "missing") is not supported; "
                + "expected \(ArchiveKeys.versionValue)")
    }
    func decode<T: Decodable>(_ type: T.Type, _ key: String) throws -> T {
        guard let text = metadata[key] else {
            throw SerializationError.invalidModelArchive(module: "", reason: "the metadata lacks \"\(key)\"")
        }
        do {
            return try JSONDecoder().decode(T.self, from: Data(text.utf8))
        } catch {
            throw SerializationError.invalidModelArchive(
                module: "", reason: "the metadata \"\(key)\" is not valid JSON of the expected form: \(error)")
        }
    }
    let records = try decode([ModuleRecord].self, ArchiveKeys.modules)
    let structure = try decode([[String]].self, ArchiveKeys.structure)
    guard structure.allSatisfy({ $0.count == 2 }) else {
        throw SerializationError.invalidModelArchive(
            module: "", reason: "\"\(ArchiveKeys.structure)\" must list [path, type] pairs")
    }
    let training: Bool
    switch metadata[ArchiveKeys.training] {
    case "True": training = true
    case "False": training = false
    default:
        throw SerializationError.invalidModelArchive(
            module: "", reason: "\"\(ArchiveKeys.training)\" must be \"True\" or \"False\"")
    }

    var root = architecture
    var replaced: [String] = []
    for record in records {
        if replaced.contains(where: { $0 == record.path || $0.isEmpty || record.path.hasPrefix($0 + ".")
                                        || $0.hasPrefix(record.path + ".") || record.path.isEmpty }) {
            throw SerializationError.invalidModelArchive(
                module: record.path, reason: "recorded twice, or inside another recorded module")
        }
        guard let type = registry.type(named: record.type) else {
            throw SerializationError.invalidModelArchive(
                module: record.path, reason: "unknown module type \"\(record.type)\"; known types: "
                    + registry.typeNames.joined(separator: ", ")
                    + " (register custom types in a ModuleArchiveRegistry)")
        }
        let module: Module
        do {
            module = try type.makeForArchive(configuration: record.configuration)
        } catch SerializationError.invalidModelArchive(_, let reason) {
            throw SerializationError.invalidModelArchive(module: record.path, reason: reason)
        } catch {
            throw SerializationError.invalidModelArchive(module: record.path, reason: "\(record.type): \(error)")
        }
        if record.path.isEmpty {
            root = module
        } else {
            do {
                try root.replaceChild(at: record.path, with: module)
            } catch {
                throw SerializationError.invalidModelArchive(
                    module: record.path, reason: "the architecture has no module at this path (\(error)); build "
                        + "the same model class the file was saved from")
            }
        }
        replaced.append(record.path)
    }

    let loaded = root.namedModules()
    for (index, entry) in structure.enumerated() {
        guard index < loaded.count else {
            throw SerializationError.invalidModelArchive(
                module: entry[0], reason: "the file has a \(entry[1]) here, the architecture has no module")
        }
        let (path, module) = loaded[index]
        guard path == entry[0], module.typeName == entry[1] else {
            throw SerializationError.invalidModelArchive(
                module: entry[0], reason: "the file has a \(entry[1]) here, the architecture has "
                    + (path == entry[0] ? "a \(module.typeName)" : "\(path.isEmpty ? "the root" : path) "
                        + "(\(module.typeName)) in its place")
                    + "; build the same model class the file was saved from (modules whose type is not in the "
                    + "ModuleArchiveRegistry used to save are taken from the architecture: register custom types)")
        }
    }
    if loaded.count > structure.count {
        let (path, module) = loaded[structure.count]
        throw SerializationError.invalidModelArchive(
            module: path, reason: "the architecture has a \(module.typeName) here that the file does not have")
    }

    let stateDict = try StateDict(archive)
    do {
        try root.loadStateDict(stateDict, strict: true)
    } catch let error as SerializationError {
        throw error
    } catch {
        throw SerializationError.invalidModelArchive(module: "", reason: "loading the tensors failed: \(error)")
    }
    // Quantize keeps its parameters in properties (from the configuration) and buffers (from the tensors).
    for (path, module) in loaded {
        if let quantize = module as? Quantize {
            let scale = try quantize.buffer("scale")?.scalars
            let zeroPoint = try quantize.buffer("zero_point")?.scalars
            guard scale == [quantize.scale], zeroPoint == [Float(quantize.zeroPoint)] else {
                throw SerializationError.invalidModelArchive(
                    module: path, reason: "the scale and zero_point tensors (\(scale ?? []), \(zeroPoint ?? [])) "
                        + "differ from the configuration (\(quantize.scale), \(quantize.zeroPoint))")
            }
        }
    }
    root.train(training)
    return root
}

// MARK: - Reading configurations

/// Reads the settings of an `ArchivableModule`'s configuration in `makeForArchive`, throwing
/// `SerializationError.invalidModelArchive` that names the type, the key and what was expected.
///
/// PyTorch: no equivalent.
public struct ArchiveConfigurationReader {
    /// The settings read.
    public let configuration: [String: String]
    /// The archive type name, for messages.
    public let type: String

    /// A reader of `configuration` for the archive type `type`.
    public init(_ configuration: [String: String], type: String) {
        self.configuration = configuration
        self.type = type
    }

    /// The error for a setting that is missing or invalid.
    public func invalid(_ key: String, expected: String) -> SerializationError {
        let found = configuration[key].map { "\"\($0)\"" } ?? "nothing"
        return .invalidModelArchive(module: "", reason: "\(type) setting \"\(key)\" must be \(expected), found "
                                    + found)
    }

    /// The setting as text.
    /// - Throws: `SerializationError.invalidModelArchive` when it is missing.
    public func string(_ key: String) throws -> String {
        guard let value = configuration[key] else { throw invalid(key, expected: "present") }
        return value
    }

    /// The setting as an integer, optionally within `range`.
    /// - Throws: `SerializationError.invalidModelArchive` when it is missing, not an integer or out of range.
    public func int(_ key: String, in range: ClosedRange<Int>? = nil) throws -> Int {
        guard let value = Int(try string(key)), range?.contains(value) ?? true else {
            throw invalid(key, expected: "an integer" + (range.map { " in \($0.lowerBound)...\($0.upperBound)" } ?? ""))
        }
        return value
    }

    /// The setting as a finite Float (written with `String(describing:)`, which round-trips exactly).
    /// - Throws: `SerializationError.invalidModelArchive` when it is missing or not a finite number.
    public func float(_ key: String) throws -> Float {
        guard let value = Float(try string(key)), value.isFinite else {
            throw invalid(key, expected: "a finite number")
        }
        return value
    }

    /// The setting as a Bool, written `True` / `False` (PyTorch's spelling, `ArchiveConfigurationReader.string(_:)`
    /// of a Bool); `true` / `false` are accepted too.
    /// - Throws: `SerializationError.invalidModelArchive` when it is missing or another word.
    public func bool(_ key: String) throws -> Bool {
        switch try string(key) {
        case "True", "true": return true
        case "False", "false": return false
        default: throw invalid(key, expected: "True or False")
        }
    }

    /// A Bool as settings write it: `True` / `False`.
    public static func string(_ value: Bool) -> String { pythonBool(value) }

    /// A `Size2d` written as `"height,width"`.
    /// - Throws: `SerializationError.invalidModelArchive` when it is missing or not two integers in `range`.
    public func size2d(_ key: String, in range: ClosedRange<Int> = 0...Int(Int32.max)) throws -> Size2d {
        let parts = try string(key).split(separator: ",", omittingEmptySubsequences: false).map { Int($0) }
        guard parts.count == 2, let height = parts[0], let width = parts[1], range.contains(height),
              range.contains(width) else {
            throw invalid(key, expected: "\"height,width\" with integers in \(range.lowerBound)...\(range.upperBound)")
        }
        return Size2d(height: height, width: width)
    }

    /// Checks that a tensor of `shape` may be allocated for a placeholder (at most 2^31 elements), so a malformed
    /// configuration cannot exhaust memory before the tensors are checked.
    /// - Throws: `SerializationError.invalidModelArchive`.
    public func checkElementCount(_ shape: [Int]) throws {
        var count = 1
        for dimension in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
            guard dimension >= 0, !overflow, product <= 1 << 31 else {
                throw SerializationError.invalidModelArchive(
                    module: "", reason: "\(type) settings give a tensor of shape \(shape), larger than 2^31 elements")
            }
            count = product
        }
    }
}

extension Size2d {
    /// `"height,width"`, what `ArchiveConfigurationReader.size2d(_:)` reads.
    public var archiveDescription: String { "\(height),\(width)" }
}

// MARK: - Archive conformances of the float modules and the stubs' replacements

/// Recorded in quantized model files as `"Quantize"` with its settings (PyTorch: none, see `ArchivableModule`).
extension Quantize: ArchivableModule {
    public static var archiveTypeName: String { "Quantize" }
    /// `scale`, `zero_point`, `dtype`.
    public var archiveConfiguration: [String: String] {
        ["scale": String(describing: scale), "zero_point": String(zeroPoint), "dtype": dtype.rawValue]
    }
    public static func makeForArchive(configuration: [String: String]) throws -> Module {
        let reader = ArchiveConfigurationReader(configuration, type: archiveTypeName)
        guard let dtype = QuantizedDType(rawValue: try reader.string("dtype")) else {
            throw reader.invalid("dtype", expected: "quint8, qint8 or qint32")
        }
        do {
            return try Quantize(scale: reader.float("scale"), zeroPoint: reader.int("zero_point"), dtype: dtype)
        } catch let error as SerializationError {
            throw error
        } catch {
            throw SerializationError.invalidModelArchive(module: "", reason: "Quantize: \(error)")
        }
    }
}

/// Recorded in quantized model files as `"DeQuantize"` with its settings (PyTorch: none, see `ArchivableModule`).
extension DeQuantize: ArchivableModule {
    public static var archiveTypeName: String { "DeQuantize" }
    public var archiveConfiguration: [String: String] { [:] }
    public static func makeForArchive(configuration: [String: String]) throws -> Module { DeQuantize() }
}

/// Recorded in quantized model files as `"Identity"` with its settings (PyTorch: none, see `ArchivableModule`).
extension Identity: ArchivableModule {
    public static var archiveTypeName: String { "Identity" }
    public var archiveConfiguration: [String: String] { [:] }
    public static func makeForArchive(configuration: [String: String]) throws -> Module { Identity() }
}

/// Recorded in quantized model files as `"ReLU"` with its settings (PyTorch: none, see `ArchivableModule`).
extension ReLU: ArchivableModule {
    public static var archiveTypeName: String { "ReLU" }
    public var archiveConfiguration: [String: String] { [:] }
    public static func makeForArchive(configuration: [String: String]) throws -> Module { ReLU() }
}

/// Recorded in quantized model files as `"ReLU6"` with its settings (PyTorch: none, see `ArchivableModule`).
extension ReLU6: ArchivableModule {
    public static var archiveTypeName: String { "ReLU6" }
    public var archiveConfiguration: [String: String] { [:] }
    public static func makeForArchive(configuration: [String: String]) throws -> Module { ReLU6() }
}

/// Recorded in quantized model files as `"Hardswish"` with its settings (PyTorch: none, see `ArchivableModule`).
extension Hardswish: ArchivableModule {
    public static var archiveTypeName: String { "Hardswish" }
    public var archiveConfiguration: [String: String] { [:] }
    public static func makeForArchive(configuration: [String: String]) throws -> Module { Hardswish() }
}

/// Recorded in quantized model files as `"Hardsigmoid"` with its settings (PyTorch: none, see `ArchivableModule`).
extension Hardsigmoid: ArchivableModule {
    public static var archiveTypeName: String { "Hardsigmoid" }
    public var archiveConfiguration: [String: String] { [:] }
    public static func makeForArchive(configuration: [String: String]) throws -> Module { Hardsigmoid() }
}

/// Recorded in quantized model files as `"Sigmoid"` with its settings (PyTorch: none, see `ArchivableModule`).
extension Sigmoid: ArchivableModule {
    public static var archiveTypeName: String { "Sigmoid" }
    public var archiveConfiguration: [String: String] { [:] }
    public static func makeForArchive(configuration: [String: String]) throws -> Module { Sigmoid() }
}

/// Recorded in quantized model files as `"Tanh"` with its settings (PyTorch: none, see `ArchivableModule`).
extension Tanh: ArchivableModule {
    public static var archiveTypeName: String { "Tanh" }
    public var archiveConfiguration: [String: String] { [:] }
    public static func makeForArchive(configuration: [String: String]) throws -> Module { Tanh() }
}

/// Recorded in quantized model files as `"GELU"` with its settings (PyTorch: none, see `ArchivableModule`).
extension GELU: ArchivableModule {
    public static var archiveTypeName: String { "GELU" }
    /// `approximate` (`none` or `tanh`).
    public var archiveConfiguration: [String: String] { ["approximate": approximate.rawValue] }
    public static func makeForArchive(configuration: [String: String]) throws -> Module {
        let reader = ArchiveConfigurationReader(configuration, type: archiveTypeName)
        guard let approximate = Functional.GELUApproximation(rawValue: try reader.string("approximate")) else {
            throw reader.invalid("approximate", expected: "none or tanh")
        }
        return GELU(approximate: approximate)
    }
}

/// Recorded in quantized model files as `"Softmax"` with its settings (PyTorch: none, see `ArchivableModule`).
extension Softmax: ArchivableModule {
    public static var archiveTypeName: String { "Softmax" }
    /// `dim`.
    public var archiveConfiguration: [String: String] { ["dim": String(dimension)] }
    public static func makeForArchive(configuration: [String: String]) throws -> Module {
        Softmax(dimension: try ArchiveConfigurationReader(configuration, type: archiveTypeName).int("dim"))
    }
}

/// Recorded in quantized model files as `"LogSoftmax"` with its settings (PyTorch: none, see `ArchivableModule`).
extension LogSoftmax: ArchivableModule {
    public static var archiveTypeName: String { "LogSoftmax" }
    /// `dim`.
    public var archiveConfiguration: [String: String] { ["dim": String(dimension)] }
    public static func makeForArchive(configuration: [String: String]) throws -> Module {
        LogSoftmax(dimension: try ArchiveConfigurationReader(configuration, type: archiveTypeName).int("dim"))
    }
}

/// Recorded in quantized model files as `"Flatten"` with its settings (PyTorch: none, see `ArchivableModule`).
extension Flatten: ArchivableModule {
    public static var archiveTypeName: String { "Flatten" }
    /// `start_dim`, `end_dim`.
    public var archiveConfiguration: [String: String] {
        ["start_dim": String(startDimension), "end_dim": String(endDimension)]
    }
    public static func makeForArchive(configuration: [String: String]) throws -> Module {
        let reader = ArchiveConfigurationReader(configuration, type: archiveTypeName)
        return Flatten(startDimension: try reader.int("start_dim"), endDimension: try reader.int("end_dim"))
    }
}

/// Recorded in quantized model files as `"Dropout"` with its settings (PyTorch: none, see `ArchivableModule`).
extension Dropout: ArchivableModule {
    public static var archiveTypeName: String { "Dropout" }
    /// `p` (the generator is not saved; a loaded model is meant for inference, where dropout is the identity).
    public var archiveConfiguration: [String: String] { ["p": String(describing: p)] }
    public static func makeForArchive(configuration: [String: String]) throws -> Module {
        let reader = ArchiveConfigurationReader(configuration, type: archiveTypeName)
        var generator = RandomGenerator(seed: 0)
        do {
            return try Dropout(p: reader.float("p"), generator: &generator)
        } catch let error as SerializationError {
            throw error
        } catch {
            throw reader.invalid("p", expected: "a probability in [0, 1]")
        }
    }
}

/// Recorded in quantized model files as `"MaxPool2d"` with its settings (PyTorch: none, see `ArchivableModule`).
extension MaxPool2d: ArchivableModule {
    public static var archiveTypeName: String { "MaxPool2d" }
    /// `kernel_size`, `stride`, `padding`, `dilation` (`"h,w"`), `ceil_mode`.
    public var archiveConfiguration: [String: String] {
        ["kernel_size": kernelSize.archiveDescription, "stride": stride.archiveDescription,
         "padding": padding.archiveDescription, "dilation": dilation.archiveDescription,
         "ceil_mode": pythonBool(ceilMode)]
    }
    public static func makeForArchive(configuration: [String: String]) throws -> Module {
        let reader = ArchiveConfigurationReader(configuration, type: archiveTypeName)
        return MaxPool2d(kernelSize: try reader.size2d("kernel_size"), stride: try reader.size2d("stride"),
                         padding: try reader.size2d("padding"), dilation: try reader.size2d("dilation"),
                         ceilMode: try reader.bool("ceil_mode"))
    }
}

/// Recorded in quantized model files as `"AvgPool2d"` with its settings (PyTorch: none, see `ArchivableModule`).
extension AvgPool2d: ArchivableModule {
    public static var archiveTypeName: String { "AvgPool2d" }
    /// `kernel_size`, `stride`, `padding` (`"h,w"`), `ceil_mode`, `count_include_pad`, `divisor_override`
    /// (absent for none).
    public var archiveConfiguration: [String: String] {
        var configuration = ["kernel_size": kernelSize.archiveDescription, "stride": stride.archiveDescription,
                             "padding": padding.archiveDescription, "ceil_mode": pythonBool(ceilMode),
                             "count_include_pad": pythonBool(countIncludePad)]
        if let divisorOverride { configuration["divisor_override"] = String(divisorOverride) }
        return configuration
    }
    public static func makeForArchive(configuration: [String: String]) throws -> Module {
        let reader = ArchiveConfigurationReader(configuration, type: archiveTypeName)
        let divisor = configuration["divisor_override"] == nil ? nil
            : try reader.int("divisor_override", in: 1...Int(Int32.max))
        return AvgPool2d(kernelSize: try reader.size2d("kernel_size"), stride: try reader.size2d("stride"),
                         padding: try reader.size2d("padding"), ceilMode: try reader.bool("ceil_mode"),
                         countIncludePad: try reader.bool("count_include_pad"), divisorOverride: divisor)
    }
}

/// Recorded in quantized model files as `"AdaptiveAvgPool2d"` with its settings (PyTorch: none, see `ArchivableModule`).
extension AdaptiveAvgPool2d: ArchivableModule {
    public static var archiveTypeName: String { "AdaptiveAvgPool2d" }
    /// `output_size` (`"h,w"`).
    public var archiveConfiguration: [String: String] { ["output_size": outputSize.archiveDescription] }
    public static func makeForArchive(configuration: [String: String]) throws -> Module {
        AdaptiveAvgPool2d(outputSize: try ArchiveConfigurationReader(configuration, type: archiveTypeName)
            .size2d("output_size"))
    }
}
