#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The named tensors of a model in order: what `Module.stateDict()` returns and `loadStateDict(_:strict:)` takes.
/// Values are float tensors; each entry also carries the PyTorch dtype it is saved as (`float32` for parameters and
/// most buffers, `int64` for `num_batches_tracked`).
///
/// PyTorch: the `OrderedDict[str, Tensor]` of `module.state_dict()`. Convert with `SafeTensors(_:)` /
/// `StateDict(_:)` to save and load files PyTorch reads with `safetensors.torch.load_file` and
/// `model.load_state_dict`.
public struct StateDict: Sequence, Equatable, Sendable {
    /// One named tensor.
    public struct Entry: Equatable, Sendable {
        /// The dotted name, e.g. `"features.0.weight"`.
        public var name: String
        /// The values.
        public var tensor: Tensor<Float>
        /// The dtype PyTorch stores this entry as. PyTorch: `state_dict[name].dtype`.
        public var dtype: SafeTensors.DType

        /// An entry. PyTorch: one item of the state dict.
        public init(name: String, tensor: Tensor<Float>, dtype: SafeTensors.DType = .float32) {
            self.name = name
            self.tensor = tensor
            self.dtype = dtype
        }
    }

    /// The entries in order. PyTorch: `state_dict.items()`.
    public private(set) var entries: [Entry]

    /// A state dict with the given entries (later duplicates replace earlier ones in place).
    public init(entries: [Entry] = []) {
        self.entries = []
        for entry in entries { self[entry.name] = entry.tensor; self.entries[index(of: entry.name)!].dtype = entry.dtype }
    }

    /// A state dict of float32 entries. PyTorch: `OrderedDict([(name, tensor), ...])`.
    public init(_ pairs: [(String, Tensor<Float>)]) {
        self.init(entries: pairs.map { Entry(name: $0.0, tensor: $0.1) })
    }

    /// The names in order. PyTorch: `list(state_dict.keys())`.
    public var names: [String] { entries.map(\.name) }

    /// The number of entries. PyTorch: `len(state_dict)`.
    public var count: Int { entries.count }

    private func index(of name: String) -> Int? { entries.firstIndex { $0.name == name } }

    /// The tensor of `name`; setting adds a float32 entry at the end or replaces the values of an existing one, and
    /// nil removes it. PyTorch: `state_dict[name]`.
    public subscript(name: String) -> Tensor<Float>? {
        get { index(of: name).map { entries[$0].tensor } }
        set {
            if let i = index(of: name) {
                if let newValue { entries[i].tensor = newValue } else { entries.remove(at: i) }
            } else if let newValue {
                entries.append(Entry(name: name, tensor: newValue))
            }
        }
    }

    /// Iterates over the entries in order.
    public func makeIterator() -> IndexingIterator<[Entry]> { entries.makeIterator() }
}

extension SafeTensors {
    /// The state dict's tensors under their names and dtypes (`int64` entries as `I64`, exact for whole values),
    /// ready to `write(to:)`.
    ///
    /// PyTorch: the dict passed to `safetensors.torch.save_file(model.state_dict(), path)`.
    /// - Throws: `SerializationError.invalidTensor` for the reserved name `__metadata__` or a value that the entry's
    ///   integer dtype cannot hold; `.unsupportedDType` for dtypes other than F32, F16, BF16, F64 and the integers.
    public init(_ stateDict: StateDict, metadata: [String: String] = [:]) throws(SerializationError) {
        self.init(metadata: metadata)
        for entry in stateDict {
            func integers<T: SafeTensorsScalar & FixedWidthInteger>(_: T.Type) throws(SerializationError) -> [T] {
                var values: [T] = []
                values.reserveCapacity(entry.tensor.count)
                for v in entry.tensor.scalars {
                    guard let exact = T(exactly: v) else {
                        throw .invalidTensor(name: entry.name, reason: "value \(v) is not representable as "
                                             + "\(entry.dtype.rawValue)")
                    }
                    values.append(exact)
                }
                return values
            }
            let shape = entry.tensor.shape
            switch entry.dtype {
            case .float32: try setTensor(entry.tensor, for: entry.name)
            case .bfloat16: try setBFloat16Tensor(entry.tensor, for: entry.name)
            case .float64: try setScalars(entry.tensor.scalars.map(Double.init), shape: shape, for: entry.name)
            case .int64: try setScalars(integers(Int64.self), shape: shape, for: entry.name)
            case .int32: try setScalars(integers(Int32.self), shape: shape, for: entry.name)
            case .int16: try setScalars(integers(Int16.self), shape: shape, for: entry.name)
            case .int8: try setScalars(integers(Int8.self), shape: shape, for: entry.name)
            case .uint8: try setScalars(integers(UInt8.self), shape: shape, for: entry.name)
            case .uint16: try setScalars(integers(UInt16.self), shape: shape, for: entry.name)
            case .uint32: try setScalars(integers(UInt32.self), shape: shape, for: entry.name)
            case .uint64: try setScalars(integers(UInt64.self), shape: shape, for: entry.name)
            default:
                #if !(os(macOS) && arch(x86_64))
                if entry.dtype == .float16 {
                    try setTensor(entry.tensor.converted(to: Float16.self), for: entry.name)
                    continue
                }
                #endif
                throw .unsupportedDType(tensor: entry.name, dtype: entry.dtype.rawValue)
            }
        }
    }
}

extension StateDict {
    /// The tensors of a safetensors file as a state dict, in the file's order: float dtypes converted to Float
    /// exactly (F64 rounded), integer dtypes converted to Float (exact up to 2^24), each entry keeping its dtype.
    ///
    /// PyTorch: `safetensors.torch.load_file(path)` before `model.load_state_dict(...)`.
    /// - Throws: `SerializationError.unsupportedDType` for dtypes without a Float conversion (booleans, fp8).
    public init(_ safeTensors: SafeTensors) throws(SerializationError) {
        var entries: [Entry] = []
        for name in safeTensors.names {
            guard let raw = safeTensors[name] else { continue }
            let tensor: Tensor<Float>
            func converted<T: SafeTensorsScalar & BinaryInteger>(_: T.Type) throws(SerializationError) -> Tensor<Float> {
                let values = try safeTensors.scalars(name, as: T.self)
                do {
                    return try Tensor(shape: raw.shape, scalars: values.map { Float($0) })
                } catch {
                    throw .invalidTensor(name: name, reason: "\(error)")
                }
            }
            switch raw.dtype {
            case .float32, .float16, .bfloat16, .float64: tensor = try safeTensors.floatTensor(name)
            case .int64: tensor = try converted(Int64.self)
            case .int32: tensor = try converted(Int32.self)
            case .int16: tensor = try converted(Int16.self)
            case .int8: tensor = try converted(Int8.self)
            case .uint8: tensor = try converted(UInt8.self)
            case .uint16: tensor = try converted(UInt16.self)
            case .uint32: tensor = try converted(UInt32.self)
            case .uint64: tensor = try converted(UInt64.self)
            default: throw .unsupportedDType(tensor: name, dtype: raw.dtype.rawValue)
            }
            entries.append(Entry(name: name, tensor: tensor, dtype: raw.dtype))
        }
        self.init(entries: entries)
    }
}

extension Module {
    /// Writes the state dict to a safetensors file (`num_batches_tracked` as I64, as PyTorch saves it).
    ///
    /// PyTorch: `safetensors.torch.save_file(model.state_dict(), path)`.
    /// - Throws: `SerializationError` when the file cannot be written.
    public func saveStateDict(to url: URL, metadata: [String: String] = [:]) throws {
        try SafeTensors(stateDict(), metadata: metadata).write(to: url)
    }

    /// Loads a safetensors file written by `saveStateDict(to:)` or by PyTorch into the module.
    ///
    /// PyTorch: `model.load_state_dict(safetensors.torch.load_file(path), strict=strict)`.
    /// - Throws: `SerializationError` for an unreadable file, key or shape mismatches.
    @discardableResult
    public func loadStateDict(contentsOf url: URL, strict: Bool = true) throws
        -> (missingKeys: [String], unexpectedKeys: [String])
    {
        try loadStateDict(StateDict(SafeTensors(contentsOf: url)), strict: strict)
    }
}
