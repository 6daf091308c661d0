#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// gzip decompression (RFC 1952) through the system zlib.
///
/// Python: `gzip.decompress(data)`, which torchvision uses for the `*.gz` MNIST-style files.
public enum Gzip {
    /// The default limit of `decompress(_:maximumSize:)`: 1 GiB (Fashion-MNIST's largest file inflates to 47 MB).
    /// Python: none (`gzip.decompress` has no limit).
    public static let defaultMaximumSize = 1 << 30

    /// Whether `bytes` starts with the gzip magic bytes `1f 8b`.
    ///
    /// Python: `data[:2] == b"\x1f\x8b"`, the check `gzip` makes first.
    public static func isGzip<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> Bool {
        var iterator = bytes.makeIterator()
        return iterator.next() == 0x1F && iterator.next() == 0x8B
    }

    /// Inflates a gzip stream; concatenated members are joined, as `gzip -d` does.
    ///
    /// Python: `gzip.decompress(data)`.
    /// - Throws: `DataError.invalidGzip` (bad magic, corrupt data, CRC or length mismatch, trailing garbage),
    ///   `.truncatedGzip`, `.decompressedSizeLimit` when the output would exceed `maximumSize` bytes.
    public static func decompress(_ bytes: [UInt8], maximumSize: Int = defaultMaximumSize) throws(DataError)
        -> [UInt8]
    {
        try bytes.withUnsafeBytes { raw in
            Result { () throws(DataError) in try Zlib.gunzip(raw, maximumSize: maximumSize) }
        }.get()
    }

    /// Inflates a gzip stream held in `Data`. Python: `gzip.decompress(data)`.
    /// - Throws: as `decompress(_:maximumSize:)` for `[UInt8]`.
    public static func decompress(_ data: Data, maximumSize: Int = defaultMaximumSize) throws(DataError) -> [UInt8] {
        try data.withUnsafeBytes { raw in
            Result { () throws(DataError) in try Zlib.gunzip(raw, maximumSize: maximumSize) }
        }.get()
    }
}

/// File reading shared by the dataset loaders.
enum DataFiles {
    /// The bytes of a file, `DataError.fileNotFound` (with `hint`) when it is missing.
    static func read(_ url: URL, hint: String? = nil) throws(DataError) -> [UInt8] {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw .fileNotFound(path: url.path, hint: hint)
        }
        do {
            return [UInt8](try Data(contentsOf: url))
        } catch {
            throw .readFailed(path: url.path, reason: "\(error)")
        }
    }

    /// The file's bytes, inflated when they start with the gzip magic bytes.
    static func readMaybeGzipped(_ url: URL, hint: String? = nil, maximumSize: Int = Gzip.defaultMaximumSize)
        throws(DataError) -> [UInt8]
    {
        let bytes = try read(url, hint: hint)
        return Gzip.isGzip(bytes) ? try Gzip.decompress(bytes, maximumSize: maximumSize) : bytes
    }
}
