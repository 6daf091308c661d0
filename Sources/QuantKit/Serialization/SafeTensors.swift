#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A type whose values a safetensors file can store, little-endian, under one dtype.
///
/// PyTorch: the `torch.dtype`s that `safetensors.torch` maps to safetensors dtypes (`torch.float32` -> `F32`, ...).
public protocol SafeTensorsScalar: BitwiseCopyable, Sendable {
    /// The safetensors dtype of this type. PyTorch: `safetensors.torch._TYPES[dtype]`.
    static var safeTensorsDType: SafeTensors.DType { get }
}

extension Float: SafeTensorsScalar {
    /// `F32`. PyTorch: `torch.float32`.
    public static var safeTensorsDType: SafeTensors.DType { .float32 }
}
extension Double: SafeTensorsScalar {
    /// `F64`. PyTorch: `torch.float64`.
    public static var safeTensorsDType: SafeTensors.DType { .float64 }
}
#if !(os(macOS) && arch(x86_64))
extension Float16: SafeTensorsScalar {
    /// `F16`. PyTorch: `torch.float16`.
    public static var safeTensorsDType: SafeTensors.DType { .float16 }
}
#endif
extension Int8: SafeTensorsScalar {
    /// `I8`. PyTorch: `torch.int8`.
    public static var safeTensorsDType: SafeTensors.DType { .int8 }
}
extension UInt8: SafeTensorsScalar {
    /// `U8`. PyTorch: `torch.uint8`.
    public static var safeTensorsDType: SafeTensors.DType { .uint8 }
}
extension Int16: SafeTensorsScalar {
    /// `I16`. PyTorch: `torch.int16`.
    public static var safeTensorsDType: SafeTensors.DType { .int16 }
}
extension UInt16: SafeTensorsScalar {
    /// `U16`. PyTorch: `torch.uint16`.
    public static var safeTensorsDType: SafeTensors.DType { .uint16 }
}
extension Int32: SafeTensorsScalar {
    /// `I32`. PyTorch: `torch.int32`.
    public static var safeTensorsDType: SafeTensors.DType { .int32 }
}
extension UInt32: SafeTensorsScalar {
    /// `U32`. PyTorch: `torch.uint32`.
    public static var safeTensorsDType: SafeTensors.DType { .uint32 }
}
extension Int64: SafeTensorsScalar {
    /// `I64`. PyTorch: `torch.int64` (e.g. BatchNorm's `num_batches_tracked`).
    public static var safeTensorsDType: SafeTensors.DType { .int64 }
}
extension UInt64: SafeTensorsScalar {
    /// `U64`. PyTorch: `torch.uint64`.
    public static var safeTensorsDType: SafeTensors.DType { .uint64 }
}

/// Named tensors in the safetensors format, e.g. a PyTorch `state_dict` (`fc1.weight`, `features.0.bias`,
/// `bn.running_mean`, `bn.num_batches_tracked`, ...), read from and written to files or memory.
///
/// PyTorch: the dict of `safetensors.torch.load_file(path)` / `load(bytes)` and the argument of
/// `safetensors.torch.save_file(tensors, path, metadata)` / `save(tensors, metadata)`.
///
/// The format: an 8-byte little-endian header length `N`, `N` bytes of JSON
/// `{"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ..., "__metadata__": {"k": "v"}}`,
/// then the data buffer; offsets are relative to the buffer, and the tensors cover it exactly, without overlap or
/// gaps. Reading validates all of it and throws `SerializationError` on any malformed input (it never traps or reads
/// out of bounds); it is stricter than the reference in two ways: duplicate names and unknown per-tensor fields are
/// errors (the reference keeps the last duplicate and ignores unknown fields). Writing produces the canonical bytes of `safetensors.torch.save_file`: tensors ordered by
/// descending dtype alignment then name, compact JSON, header padded with spaces to a multiple of 8.
///
/// Names keep their order (the header's order when read, insertion order when built); `==` ignores it, as Python
/// dicts do. Names are Swift strings, so two byte sequences that are canonically equivalent Unicode count as the same
/// name.
public struct SafeTensors: Sendable, Equatable {
    /// A safetensors dtype, declared in the reference implementation's order (its alignment rank).
    ///
    /// PyTorch: the `torch.dtype` in `torchName`.
    public enum DType: String, Sendable, CaseIterable {
        /// `BOOL`, one byte per element. PyTorch: `torch.bool`.
        case bool = "BOOL"
        /// `U8`. PyTorch: `torch.uint8`.
        case uint8 = "U8"
        /// `I8`. PyTorch: `torch.int8`.
        case int8 = "I8"
        /// `F8_E5M2`. PyTorch: `torch.float8_e5m2`.
        case float8E5M2 = "F8_E5M2"
        /// `F8_E4M3`. PyTorch: `torch.float8_e4m3fn`.
        case float8E4M3 = "F8_E4M3"
        /// `F8_E8M0`. PyTorch: `torch.float8_e8m0fnu`.
        case float8E8M0 = "F8_E8M0"
        /// `I16`. PyTorch: `torch.int16`.
        case int16 = "I16"
        /// `U16`. PyTorch: `torch.uint16`.
        case uint16 = "U16"
        /// `F16`. PyTorch: `torch.float16`.
        case float16 = "F16"
        /// `BF16`. PyTorch: `torch.bfloat16`.
        case bfloat16 = "BF16"
        /// `I32`. PyTorch: `torch.int32`.
        case int32 = "I32"
        /// `U32`. PyTorch: `torch.uint32`.
        case uint32 = "U32"
        /// `F32`. PyTorch: `torch.float32`.
        case float32 = "F32"
        /// `C64` (two `F32`). PyTorch: `torch.complex64`.
        case complex64 = "C64"
        /// `F64`. PyTorch: `torch.float64`.
        case float64 = "F64"
        /// `I64`. PyTorch: `torch.int64`.
        case int64 = "I64"
        /// `U64`. PyTorch: `torch.uint64`.
        case uint64 = "U64"

        /// Bytes per element. PyTorch: `dtype.itemsize`.
        public var byteCount: Int {
            switch self {
            case .bool, .uint8, .int8, .float8E5M2, .float8E4M3, .float8E8M0: return 1
            case .int16, .uint16, .float16, .bfloat16: return 2
            case .int32, .uint32, .float32: return 4
            case .complex64, .float64, .int64, .uint64: return 8
            }
        }

        /// The PyTorch dtype, e.g. `torch.float32`.
        public var torchName: String {
            switch self {
            case .bool: return "torch.bool"
            case .uint8: return "torch.uint8"
            case .int8: return "torch.int8"
            case .float8E5M2: return "torch.float8_e5m2"
            case .float8E4M3: return "torch.float8_e4m3fn"
            case .float8E8M0: return "torch.float8_e8m0fnu"
            case .int16: return "torch.int16"
            case .uint16: return "torch.uint16"
            case .float16: return "torch.float16"
            case .bfloat16: return "torch.bfloat16"
            case .int32: return "torch.int32"
            case .uint32: return "torch.uint32"
            case .float32: return "torch.float32"
            case .complex64: return "torch.complex64"
            case .float64: return "torch.float64"
            case .int64: return "torch.int64"
            case .uint64: return "torch.uint64"
            }
        }

        /// Position in the reference's dtype order; the writer puts higher ranks first.
        var rank: Int { Self.allCases.firstIndex(of: self)! }
    }

    /// One stored tensor: dtype, shape and its little-endian, row-major bytes.
    ///
    /// PyTorch: the `safetensors` `TensorView` (`dtype`, `shape`, `data`) of one entry.
    public struct RawTensor: Sendable, Equatable {
        /// The element type. PyTorch: `tensor.dtype`.
        public let dtype: DType
        /// The dimensions, outermost first; `[]` for a scalar. PyTorch: `tensor.shape`.
        public let shape: [Int]
        /// `count * dtype.byteCount` bytes, little-endian, row-major. PyTorch: `tensor.numpy().tobytes()`.
        public let bytes: [UInt8]

        /// The number of elements. PyTorch: `tensor.numel()`.
        public var count: Int { bytes.count / dtype.byteCount }

        init(unchecked dtype: DType, shape: [Int], bytes: [UInt8]) {
            self.dtype = dtype
            self.shape = shape
            self.bytes = bytes
        }

        /// The byte count of `shape` and `dtype`, nil for a negative dimension or an overflow. The non-zero
        /// dimensions must not overflow either (so `[0, 2^62, 2^62]` is refused too, unlike in the reference): such
        /// a shape would break every later size computation.
        static func byteCount(shape: [Int], dtype: DType) -> Int? {
            var count = dtype.byteCount
            var empty = false
            for dimension in shape {
                guard dimension >= 0 else { return nil }
                if dimension == 0 {
                    empty = true
                    continue
                }
                let (next, overflow) = count.multipliedReportingOverflow(by: dimension)
                if overflow { return nil }
                count = next
            }
            return empty ? 0 : count
        }
    }

    /// The reference implementation's header size limit: 100,000,000 bytes. safetensors: `MAX_HEADER_SIZE`.
    public static let defaultHeaderLimit = 100_000_000

    /// The tensor names in order. PyTorch: `list(state_dict.keys())`.
    public private(set) var names: [String] = []
    private var entries: [String: RawTensor] = [:]
    /// Free-form string metadata (`__metadata__`), e.g. `["format": "pt"]`; written only when not empty.
    /// PyTorch: the `metadata` argument of `save_file`, `safe_open(path, "pt").metadata()`.
    public var metadata: [String: String]

    /// An empty collection. PyTorch: `{}` (a new `state_dict`).
    public init(metadata: [String: String] = [:]) {
        self.metadata = metadata
    }

    // MARK: Reading

    /// Parses safetensors bytes.
    ///
    /// PyTorch: `safetensors.torch.load(data)`.
    /// - Throws: `SerializationError` for any malformed input: `.fileTooSmall`, `.headerTooLarge` (above
    ///   `headerLimit`), `.headerOutOfBounds`, `.invalidHeader` (UTF-8, JSON or structure), `.duplicateName`,
    ///   `.unsupportedDType`, `.invalidTensorInfo` (shape and dtype vs offsets), `.invalidOffsets` (outside the buffer,
    ///   overlapping, gaps), `.incompleteBuffer` (trailing bytes).
    public init(bytes: [UInt8], headerLimit: Int = defaultHeaderLimit) throws(SerializationError) {
        self = try bytes.withUnsafeBytes { raw in
            Result { () throws(SerializationError) in try Self.parse(raw, headerLimit: headerLimit) }
        }.get()
    }

    /// Parses safetensors bytes held in `Data`. PyTorch: `safetensors.torch.load(data)`.
    /// - Throws: as `init(bytes:headerLimit:)`.
    public init(data: Data, headerLimit: Int = defaultHeaderLimit) throws(SerializationError) {
        self = try data.withUnsafeBytes { raw in
            Result { () throws(SerializationError) in try Self.parse(raw, headerLimit: headerLimit) }
        }.get()
    }

    /// Reads a `.safetensors` file.
    ///
    /// PyTorch: `safetensors.torch.load_file(path)`.
    /// - Throws: `SerializationError.io` when the file cannot be read, else as `init(bytes:headerLimit:)`.
    public init(contentsOf url: URL, headerLimit: Int = defaultHeaderLimit) throws(SerializationError) {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            let missing = !FileManager.default.fileExists(atPath: url.path)
            throw .io(path: url.path, reason: missing ? "no such file" : "\(error)")
        }
        try self.init(data: data, headerLimit: headerLimit)
    }

    private static func parse(_ raw: UnsafeRawBufferPointer, headerLimit: Int) throws(SerializationError)
        -> SafeTensors
    {
        guard raw.count >= 8 else { throw .fileTooSmall(byteCount: raw.count) }
        var length: UInt64 = 0
        for i in (0..<8).reversed() { length = length << 8 | UInt64(raw[i]) }
        guard length <= UInt64(max(headerLimit, 0)) else { throw .headerTooLarge(length: length, limit: headerLimit) }
        guard length <= UInt64(raw.count - 8) else { throw .headerOutOfBounds(length: length, fileSize: raw.count) }
        let headerEnd = 8 + Int(length)
        let header = try SafeTensorsHeader.parse(UnsafeRawBufferPointer(rebasing: raw[8..<headerEnd]))
        let buffer = UnsafeRawBufferPointer(rebasing: raw[headerEnd...])

        for info in header.tensors {
            guard info.begin <= info.end else {
                throw .invalidOffsets(tensor: info.name, reason: "begin \(info.begin) is after end \(info.end)")
            }
            guard info.end <= buffer.count else {
                throw .invalidOffsets(tensor: info.name, reason: "[\(info.begin), \(info.end)] reaches past the end "
                                      + "of the \(buffer.count)-byte data buffer (truncated file?)")
            }
            guard let byteCount = RawTensor.byteCount(shape: info.shape, dtype: info.dtype) else {
                throw .invalidTensorInfo(tensor: info.name, reason: "the byte size of shape \(info.shape) of "
                                         + "\(info.dtype.rawValue) overflows")
            }
            guard byteCount == info.end - info.begin else {
                throw .invalidTensorInfo(tensor: info.name, reason: "shape \(info.shape) of \(info.dtype.rawValue) "
                                         + "needs \(byteCount) bytes, but data_offsets [\(info.begin), \(info.end)] "
                                         + "hold \(info.end - info.begin)")
            }
        }
        // Sorted by offsets (ties in header order), each tensor must start where the previous one ends.
        let sorted = header.tensors.indices.sorted { i, j in
            let a = header.tensors[i], b = header.tensors[j]
            return (a.begin, a.end, i) < (b.begin, b.end, j)
        }
        var covered = 0
        var previous: String?
        for info in sorted.map({ header.tensors[$0] }) {
            if info.begin < covered {
                throw .invalidOffsets(tensor: info.name, reason: "[\(info.begin), \(info.end)] overlaps tensor "
                                      + "\"\(previous ?? "")\", which ends at \(covered)")
            }
            if info.begin > covered {
                let after = previous.map { "tensor \"\($0)\" ends" } ?? "the buffer starts"
                throw .invalidOffsets(tensor: info.name, reason: "[\(info.begin), \(info.end)] leaves a gap: \(after) "
                                      + "at \(covered)")
            }
            covered = info.end
            previous = info.name
        }
        guard covered == buffer.count else { throw .incompleteBuffer(covered: covered, bufferSize: buffer.count) }

        var result = SafeTensors(metadata: header.metadata ?? [:])
        for info in header.tensors {
            let bytes = Array(buffer[info.begin..<info.end])
            result.insert(RawTensor(unchecked: info.dtype, shape: info.shape, bytes: bytes), for: info.name)
        }
        return result
    }

    // MARK: Writing

    /// The file's bytes in canonical form (see the type's description).
    ///
    /// PyTorch: `safetensors.torch.save(tensors, metadata)`.
    public func serialized() -> [UInt8] {
        let order = names.map { (name: $0, tensor: entries[$0]!) }.sorted { a, b in
            if a.tensor.dtype.rank != b.tensor.dtype.rank { return a.tensor.dtype.rank > b.tensor.dtype.rank }
            return Array(a.name.utf8).lexicographicallyPrecedes(b.name.utf8)
        }
        let header = SafeTensorsHeader.serialize(order, metadata: metadata)
        var result: [UInt8] = []
        result.reserveCapacity(8 + header.count + order.reduce(0) { $0 + $1.tensor.bytes.count })
        var length = UInt64(header.count)
        for _ in 0..<8 {
            result.append(UInt8(truncatingIfNeeded: length))
            length >>= 8
        }
        result.append(contentsOf: header)
        for entry in order { result.append(contentsOf: entry.tensor.bytes) }
        return result
    }

    /// The file's bytes in canonical form, as `Data`. PyTorch: `safetensors.torch.save(tensors, metadata)`.
    public func serializedData() -> Data {
        Data(serialized())
    }

    /// Writes a `.safetensors` file (atomically: a temporary file renamed into place).
    ///
    /// PyTorch: `safetensors.torch.save_file(tensors, path, metadata)`.
    /// - Throws: `SerializationError.io` when the file cannot be written.
    public func write(to url: URL) throws(SerializationError) {
        do {
            try serializedData().write(to: url, options: .atomic)
        } catch {
            throw .io(path: url.path, reason: "\(error)")
        }
    }

    // MARK: Entries

    /// The number of tensors. PyTorch: `len(state_dict)`.
    public var count: Int { names.count }

    /// Whether there are no tensors. PyTorch: `not state_dict`.
    public var isEmpty: Bool { names.isEmpty }

    /// The stored tensor with this name, or nil. PyTorch: `state_dict.get(name)`.
    public subscript(name: String) -> RawTensor? {
        entries[name]
    }

    /// Whether a tensor has this name. PyTorch: `name in state_dict`.
    public func contains(_ name: String) -> Bool {
        entries[name] != nil
    }

    /// Removes and returns the tensor with this name (nil if there is none). PyTorch: `state_dict.pop(name, None)`.
    @discardableResult
    public mutating func removeTensor(named name: String) -> RawTensor? {
        guard let removed = entries.removeValue(forKey: name) else { return nil }
        names.removeAll { $0 == name }
        return removed
    }

    /// Stores raw little-endian bytes under `name` (replacing a tensor of that name in place, else appending).
    ///
    /// PyTorch: `state_dict[name] = torch.frombuffer(bytes, dtype=...).reshape(shape)`.
    /// - Throws: `SerializationError.invalidTensor` for a negative dimension, a byte count that does not match
    ///   `shape` and `dtype`, or the reserved name `__metadata__`.
    public mutating func setRawTensor(dtype: DType, shape: [Int], bytes: [UInt8], for name: String)
        throws(SerializationError)
    {
        try Self.checkName(name)
        guard let expected = RawTensor.byteCount(shape: shape, dtype: dtype) else {
            throw .invalidTensor(name: name, reason: "shape \(shape) has a negative dimension or overflows")
        }
        guard expected == bytes.count else {
            throw .invalidTensor(name: name, reason: "shape \(shape) of \(dtype.rawValue) needs \(expected) bytes, got "
                                 + "\(bytes.count)")
        }
        insert(RawTensor(unchecked: dtype, shape: shape, bytes: bytes), for: name)
    }

    /// Stores a tensor under `name` (replacing a tensor of that name in place, else appending).
    ///
    /// PyTorch: `state_dict[name] = tensor`.
    /// - Throws: `SerializationError.invalidTensor` for the reserved name `__metadata__`.
    public mutating func setTensor<T: TensorScalar & SafeTensorsScalar>(_ tensor: Tensor<T>, for name: String)
        throws(SerializationError)
    {
        try Self.checkName(name)
        let bytes = tensor.withUnsafeBufferPointer { Self.littleEndianBytes($0) }
        insert(RawTensor(unchecked: T.safeTensorsDType, shape: tensor.shape, bytes: bytes), for: name)
    }

    /// Stores row-major values of any safetensors-capable type (e.g. `Int64` for `num_batches_tracked`,
    /// `Double`) under `name`.
    ///
    /// PyTorch: `state_dict[name] = torch.tensor(scalars, dtype=...).reshape(shape)`.
    /// - Throws: `SerializationError.invalidTensor` for a negative dimension, a count that does not match `shape`,
    ///   or the reserved name `__metadata__`.
    public mutating func setScalars<T: SafeTensorsScalar>(_ scalars: [T], shape: [Int], for name: String)
        throws(SerializationError)
    {
        let bytes = scalars.withUnsafeBufferPointer { Self.littleEndianBytes($0) }
        try setRawTensor(dtype: T.safeTensorsDType, shape: shape, bytes: bytes, for: name)
    }

    /// Stores a float tensor as `BF16`, rounding each element to nearest even (NaN stays NaN, quiet).
    ///
    /// PyTorch: `state_dict[name] = tensor.bfloat16()`.
    /// - Throws: `SerializationError.invalidTensor` for the reserved name `__metadata__`.
    public mutating func setBFloat16Tensor(_ tensor: Tensor<Float>, for name: String) throws(SerializationError) {
        try Self.checkName(name)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(tensor.count * 2)
        tensor.withUnsafeBufferPointer { values in
            for value in values {
                let bits = Self.bfloat16Bits(value)
                bytes.append(UInt8(truncatingIfNeeded: bits))
                bytes.append(UInt8(truncatingIfNeeded: bits >> 8))
            }
        }
        insert(RawTensor(unchecked: .bfloat16, shape: tensor.shape, bytes: bytes), for: name)
    }

    // MARK: Typed reading

    /// The tensor `name` as `Tensor<T>`; its dtype must be `T`'s exactly, and its shape `shape` when given.
    ///
    /// PyTorch: `state_dict[name]` with the dtype and size checks of `load_state_dict`.
    /// - Throws: `SerializationError.tensorNotFound`, `.dtypeMismatch`, `.shapeMismatch`.
    public func tensor<T: TensorScalar & SafeTensorsScalar>(
        _ name: String, as type: T.Type = T.self, shape: [Int]? = nil
    ) throws(SerializationError) -> Tensor<T> {
        let raw = try checkedEntry(name, dtypes: [T.safeTensorsDType], expected: T.safeTensorsDType.rawValue,
                                   shape: shape)
        return makeTensor(raw.shape, count: raw.count) { target in
            raw.bytes.withUnsafeBytes { Self.copyLittleEndian($0, to: UnsafeMutableBufferPointer(start: target,
                                                                                               count: raw.count)) }
        }
    }

    /// The values of tensor `name`, row-major; its dtype must be `T`'s exactly, and its shape `shape` when given.
    ///
    /// PyTorch: `state_dict[name].flatten().tolist()` (e.g. `int(state_dict["bn.num_batches_tracked"])`).
    /// - Throws: `SerializationError.tensorNotFound`, `.dtypeMismatch`, `.shapeMismatch`.
    public func scalars<T: SafeTensorsScalar>(_ name: String, as type: T.Type = T.self, shape: [Int]? = nil)
        throws(SerializationError) -> [T]
    {
        let raw = try checkedEntry(name, dtypes: [T.safeTensorsDType], expected: T.safeTensorsDType.rawValue,
                                   shape: shape)
        return [T](unsafeUninitializedCapacity: raw.count) { buffer, initialized in
            raw.bytes.withUnsafeBytes { Self.copyLittleEndian($0, to: buffer) }
            initialized = raw.count
        }
    }

    /// The tensor `name` converted to `Float` from `F32`, `F16`, `BF16` or `F64` (exact, except `F64`, which rounds
    /// to nearest); its shape must be `shape` when given.
    ///
    /// PyTorch: `state_dict[name].float()`.
    /// - Throws: `SerializationError.tensorNotFound`, `.dtypeMismatch` (another dtype), `.shapeMismatch`.
    public func floatTensor(_ name: String, shape: [Int]? = nil) throws(SerializationError) -> Tensor<Float> {
        let raw = try checkedEntry(name, dtypes: [.float32, .float16, .bfloat16, .float64],
                                   expected: "F32, F16, BF16 or F64", shape: shape)
        return makeTensor(raw.shape, count: raw.count) { target in
            raw.bytes.withUnsafeBytes { source in
                for i in 0..<raw.count {
                    switch raw.dtype {
                    case .float16:
                        target[i] = Self.floatFromHalfBits(source.loadLittleEndian(UInt16.self, at: i))
                    case .bfloat16:
                        target[i] = Float(bitPattern: UInt32(source.loadLittleEndian(UInt16.self, at: i)) << 16)
                    case .float64:
                        target[i] = Float(Double(bitPattern: source.loadLittleEndian(UInt64.self, at: i)))
                    default:
                        target[i] = Float(bitPattern: source.loadLittleEndian(UInt32.self, at: i))
                    }
                }
            }
        }
    }

    // MARK: state_dict helpers

    /// The tensors whose names start with `prefix`, with the prefix removed (metadata kept), in order: the part of a
    /// `state_dict` that belongs to one submodule.
    ///
    /// PyTorch: the `prefix` handling of `Module._load_from_state_dict` (`{k[len(prefix):]: v for k, v in
    /// state_dict.items() if k.startswith(prefix)}`).
    public func scoped(to prefix: String) -> SafeTensors {
        var result = SafeTensors(metadata: metadata)
        for name in names where name.utf8.starts(with: prefix.utf8) {
            let rest = String(decoding: name.utf8.dropFirst(prefix.utf8.count), as: UTF8.self)
            if result.entries[rest] == nil { result.insert(entries[name]!, for: rest) }
        }
        return result
    }

    /// Adds every tensor of `other` under `prefix + name` (and its metadata), e.g. a submodule's `state_dict`
    /// under `"features.0."`.
    ///
    /// PyTorch: `Module.state_dict(destination, prefix)` collecting the children's entries.
    /// - Throws: `SerializationError.duplicateName` when a resulting name already exists (nothing is added then),
    ///   `.invalidTensor` for the reserved name `__metadata__`.
    public mutating func merge(_ other: SafeTensors, prefix: String = "") throws(SerializationError) {
        let renamed = other.names.map { prefix + $0 }
        var seen = Set<String>()
        for name in renamed {
            try Self.checkName(name)
            // Canonically equivalent Unicode can make two prefixed names equal.
            guard entries[name] == nil, seen.insert(name).inserted else { throw .duplicateName(name) }
        }
        for (name, original) in zip(renamed, other.names) { insert(other.entries[original]!, for: name) }
        metadata.merge(other.metadata) { _, new in new }
    }

    /// Checks that the names are exactly `expected` (in any order).
    ///
    /// PyTorch: `Module.load_state_dict(state_dict, strict=True)`'s missing / unexpected keys check.
    /// - Throws: `SerializationError.keyMismatch` listing the missing and the unexpected names.
    public func checkNames<S: Sequence<String>>(expected: S) throws(SerializationError) {
        let expectedNames = Array(expected)
        let expectedSet = Set(expectedNames)
        let missing = expectedNames.filter { entries[$0] == nil }
        let unexpected = names.filter { !expectedSet.contains($0) }
        guard missing.isEmpty && unexpected.isEmpty else {
            throw .keyMismatch(missing: missing, unexpected: unexpected)
        }
    }

    /// Same names mapped to equal tensors, and equal metadata; order is ignored, as for Python dicts.
    /// PyTorch: comparing two `state_dict`s key by key with `torch.equal`.
    public static func == (lhs: SafeTensors, rhs: SafeTensors) -> Bool {
        lhs.entries == rhs.entries && lhs.metadata == rhs.metadata
    }

    // MARK: Internals

    private mutating func insert(_ tensor: RawTensor, for name: String) {
        if entries.updateValue(tensor, forKey: name) == nil { names.append(name) }
    }

    private static func checkName(_ name: String) throws(SerializationError) {
        if name == "__metadata__" {
            throw .invalidTensor(name: name, reason: "\"__metadata__\" is reserved for the metadata")
        }
    }

    private func checkedEntry(_ name: String, dtypes: [DType], expected: String, shape: [Int]?)
        throws(SerializationError) -> RawTensor
    {
        guard let raw = entries[name] else { throw .tensorNotFound(name: name, available: names) }
        guard dtypes.contains(raw.dtype) else {
            throw .dtypeMismatch(tensor: name, expected: expected, actual: raw.dtype.rawValue)
        }
        if let shape, shape != raw.shape { throw .shapeMismatch(tensor: name, expected: shape, actual: raw.shape) }
        return raw
    }

    /// A tensor of a stored shape (validated when stored, so its byte size fits in `Int`).
    private func makeTensor<T: TensorScalar>(_ shape: [Int], count: Int, _ body: (UnsafeMutablePointer<T>) -> Void)
        -> Tensor<T>
    {
        Tensor<T>(uninitializedShape: shape, count: count, initializingWith: body)
    }

    private static func littleEndianBytes<T: BitwiseCopyable>(_ values: UnsafeBufferPointer<T>) -> [UInt8] {
        var bytes = Array(UnsafeRawBufferPointer(values))
        #if _endian(big)
        let size = MemoryLayout<T>.size
        for start in stride(from: 0, to: bytes.count, by: size) { bytes[start..<(start + size)].reverse() }
        #endif
        return bytes
    }

    private static func copyLittleEndian<T: BitwiseCopyable>(_ source: UnsafeRawBufferPointer,
                                                             to target: UnsafeMutableBufferPointer<T>) {
        let raw = UnsafeMutableRawBufferPointer(target)
        raw.copyMemory(from: UnsafeRawBufferPointer(rebasing: source.prefix(raw.count)))
        #if _endian(big)
        let size = MemoryLayout<T>.size
        for start in stride(from: 0, to: raw.count, by: size) {
            var i = start, j = start + size - 1
            while i < j { raw.swapAt(i, j); i += 1; j -= 1 }
        }
        #endif
    }

    /// IEEE binary16 to binary32, exactly (NaN keeps its payload and gets the quiet bit).
    static func floatFromHalfBits(_ h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exponent = UInt32(h >> 10) & 0x1F
        let mantissa = UInt32(h & 0x3FF)
        switch exponent {
        case 0:
            let magnitude = Float(mantissa) * 0x1p-24  // zero or subnormal, exact
            return Float(bitPattern: sign | magnitude.bitPattern)
        case 31:
            return Float(bitPattern: sign | 0x7F80_0000 | mantissa << 13 | (mantissa != 0 ? 0x40_0000 : 0))
        default:
            return Float(bitPattern: sign | (exponent + 112) << 23 | mantissa << 13)
        }
    }

    /// binary32 to bfloat16 bits, round to nearest even; NaN stays NaN with the quiet bit (c10::BFloat16).
    static func bfloat16Bits(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        if value.isNaN { return UInt16(truncatingIfNeeded: bits >> 16) | 0x0040 }
        let rounded = bits &+ 0x7FFF &+ ((bits >> 16) & 1)
        return UInt16(truncatingIfNeeded: rounded >> 16)
    }
}

extension UnsafeRawBufferPointer {
    /// The little-endian `T` at element index `index` (in range, checked by the caller).
    func loadLittleEndian<T: FixedWidthInteger>(_ type: T.Type, at index: Int) -> T {
        T(littleEndian: loadUnaligned(fromByteOffset: index * MemoryLayout<T>.size, as: T.self))
    }
}
