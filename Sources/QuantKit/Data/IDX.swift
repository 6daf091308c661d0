#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// An n-dimensional array read from an IDX file, the format of MNIST and Fashion-MNIST: magic bytes `00 00`, a dtype
/// code, the rank, the dimensions as big-endian `UInt32`, then the elements, big-endian, row-major.
///
/// PyTorch: `torchvision.datasets.mnist.read_sn3_pascalvincent_tensor(path)`.
public struct IDXArray: Sendable, Equatable {
    /// The element type, from the third byte of the file.
    ///
    /// PyTorch: the `SN3_PASCALVINCENT_TYPEMAP` of `torchvision.datasets.mnist`.
    public enum DType: UInt8, Sendable, CaseIterable {
        /// Code `0x08`, unsigned byte. PyTorch: `torch.uint8`.
        case uint8 = 0x08
        /// Code `0x09`, signed byte. PyTorch: `torch.int8`.
        case int8 = 0x09
        /// Code `0x0B`, big-endian 16-bit integer. PyTorch: `torch.int16`.
        case int16 = 0x0B
        /// Code `0x0C`, big-endian 32-bit integer. PyTorch: `torch.int32`.
        case int32 = 0x0C
        /// Code `0x0D`, big-endian binary32. PyTorch: `torch.float32`.
        case float32 = 0x0D
        /// Code `0x0E`, big-endian binary64. PyTorch: `torch.float64`.
        case float64 = 0x0E

        /// Bytes per element. PyTorch: `dtype.itemsize`.
        public var byteCount: Int {
            switch self {
            case .uint8, .int8: return 1
            case .int16: return 2
            case .int32, .float32: return 4
            case .float64: return 8
            }
        }
    }

    /// The element type. PyTorch: `tensor.dtype`.
    public let dtype: DType
    /// The dimensions, outermost first. PyTorch: `tensor.shape`.
    public let shape: [Int]
    /// The elements as stored: `count * dtype.byteCount` bytes, big-endian, row-major.
    public let payload: [UInt8]

    /// Parses an IDX file held in memory; gzip-compressed input (starting with `1f 8b`) is inflated first.
    ///
    /// PyTorch: `read_sn3_pascalvincent_tensor` (which opens `.gz` files transparently).
    /// - Throws: `DataError.invalidIDX` (bad magic, unknown dtype code, sizes that overflow or do not match the
    ///   data), or the gzip errors of `Gzip.decompress`.
    public init(bytes: [UInt8], maximumSize: Int = Gzip.defaultMaximumSize) throws(DataError) {
        let raw = Gzip.isGzip(bytes) ? try Gzip.decompress(bytes, maximumSize: maximumSize) : bytes
        try self.init(uncompressed: raw)
    }

    /// Reads an IDX file (raw or gzipped).
    ///
    /// PyTorch: `read_sn3_pascalvincent_tensor(path)`.
    /// - Throws: `DataError.fileNotFound` / `.readFailed`, `.invalidIDX`, or the gzip errors of `Gzip.decompress`.
    public init(contentsOf url: URL, maximumSize: Int = Gzip.defaultMaximumSize) throws(DataError) {
        try self.init(uncompressed: DataFiles.readMaybeGzipped(url, maximumSize: maximumSize))
    }

    private init(uncompressed bytes: [UInt8]) throws(DataError) {
        guard bytes.count >= 4 else {
            throw .invalidIDX(reason: "\(bytes.count) bytes is shorter than the 4-byte magic number")
        }
        guard bytes[0] == 0, bytes[1] == 0 else {
            throw .invalidIDX(reason: "the magic number must start with two zero bytes, got "
                              + String(hexByte: bytes[0]) + " " + String(hexByte: bytes[1]))
        }
        guard let dtype = DType(rawValue: bytes[2]) else {
            throw .invalidIDX(reason: "unknown dtype code 0x\(String(hexByte: bytes[2])); expected 0x08 (ubyte), "
                              + "0x09, 0x0b, 0x0c, 0x0d or 0x0e")
        }
        let rank = Int(bytes[3])
        let headerSize = 4 + 4 * rank
        guard bytes.count >= headerSize else {
            throw .invalidIDX(reason: "the header of a rank-\(rank) array needs \(headerSize) bytes, the file has "
                              + "\(bytes.count)")
        }
        var shape: [Int] = []
        var count = 1
        var overflow = false
        var empty = false
        for d in 0..<rank {
            let at = 4 + 4 * d
            let size = Int(bytes[at]) << 24 | Int(bytes[at + 1]) << 16 | Int(bytes[at + 2]) << 8 | Int(bytes[at + 3])
            shape.append(size)
            // The non-zero dimensions must not overflow either, or later size computations on the shape would.
            if size == 0 { empty = true } else {
                let (next, o) = count.multipliedReportingOverflow(by: size)
                count = next
                overflow = overflow || o
            }
        }
        if empty { count = 0 }
        let (byteCount, o) = count.multipliedReportingOverflow(by: dtype.byteCount)
        let available = bytes.count - headerSize
        guard !overflow, !o, byteCount == available else {
            let expected = overflow || o ? "more than Int.max" : "\(byteCount)"
            throw .invalidIDX(reason: "dimensions \(shape) of \(dtype) need \(expected) data bytes, the file has "
                              + "\(available) after its \(headerSize)-byte header")
        }
        self.dtype = dtype
        self.shape = shape
        self.payload = Array(bytes[headerSize...])
    }

    /// The number of elements. PyTorch: `tensor.numel()`.
    public var count: Int { payload.count / dtype.byteCount }

    /// The elements of a `uint8` array.
    ///
    /// PyTorch: `tensor.tolist()` of a `torch.uint8` result.
    /// - Throws: `DataError.invalidIDX` when the dtype is not `uint8`.
    public func uint8Scalars() throws(DataError) -> [UInt8] {
        guard dtype == .uint8 else { throw .invalidIDX(reason: "expected uint8 (0x08) data, the file holds \(dtype)") }
        return payload
    }

    /// The elements of an integer array (`uint8`, `int8`, `int16`, `int32`).
    ///
    /// PyTorch: `tensor.long().tolist()`.
    /// - Throws: `DataError.invalidIDX` for a floating-point dtype.
    public func intScalars() throws(DataError) -> [Int] {
        let n = count
        switch dtype {
        case .uint8: return payload.map { Int($0) }
        case .int8: return payload.map { Int(Int8(bitPattern: $0)) }
        case .int16: return (0..<n).map { Int(Int16(bitPattern: UInt16(bigEndianAt: 2 * $0, in: payload))) }
        case .int32: return (0..<n).map { Int(Int32(bitPattern: UInt32(bigEndianAt: 4 * $0, in: payload))) }
        case .float32, .float64:
            throw .invalidIDX(reason: "expected integer data, the file holds \(dtype)")
        }
    }

    /// The elements converted to `Float` (float64 rounds to nearest).
    ///
    /// PyTorch: `tensor.float().tolist()`.
    public func floatScalars() -> [Float] {
        let n = count
        switch dtype {
        case .uint8: return payload.map { Float($0) }
        case .int8: return payload.map { Float(Int8(bitPattern: $0)) }
        case .int16: return (0..<n).map { Float(Int16(bitPattern: UInt16(bigEndianAt: 2 * $0, in: payload))) }
        case .int32: return (0..<n).map { Float(Int32(bitPattern: UInt32(bigEndianAt: 4 * $0, in: payload))) }
        case .float32: return (0..<n).map { Float(bitPattern: UInt32(bigEndianAt: 4 * $0, in: payload)) }
        case .float64: return (0..<n).map { Float(Double(bitPattern: UInt64(bigEndianAt: 8 * $0, in: payload))) }
        }
    }
}

extension FixedWidthInteger where Self: UnsignedInteger {
    /// Reads a big-endian value at `offset` (in range, checked by the caller).
    init(bigEndianAt offset: Int, in bytes: [UInt8]) {
        var value: Self = 0
        for i in 0..<(Self.bitWidth / 8) { value = value << 8 | Self(bytes[offset + i]) }
        self = value
    }
}

extension String {
    /// Two lowercase hex digits.
    init(hexByte byte: UInt8) {
        let digits = Array("0123456789abcdef")
        self = String([digits[Int(byte >> 4)], digits[Int(byte & 15)]])
    }
}
