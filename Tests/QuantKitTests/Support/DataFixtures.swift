import Foundation
import XCTest

/// Test data for the dataset, gzip and safetensors tests.
enum DataFixtures {
    /// Tests/QuantKitTests/Fixtures (the test target excludes it; files are read by path).
    static var directory: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures", isDirectory: true)
    }

    static var digits: URL { directory.appendingPathComponent("digits.csv.gz") }

    /// CRC-32 (IEEE, reflected, as gzip's trailer), bit by bit: an oracle independent of zlib.
    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }

    /// A gzip member whose deflate stream is made of stored (uncompressed) blocks, built by hand from RFC 1951/1952,
    /// so the tests need no compressor.
    static func gzipStored(_ payload: [UInt8], blockSize: Int = 65535) -> [UInt8] {
        var out: [UInt8] = [0x1F, 0x8B, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xFF]  // no flags, mtime 0, OS unknown
        var start = 0
        repeat {
            let end = min(start + blockSize, payload.count)
            let length = UInt16(end - start)
            out.append(end == payload.count ? 1 : 0)  // BFINAL, BTYPE 00
            out += [UInt8(length & 0xFF), UInt8(length >> 8), UInt8(~length & 0xFF), UInt8(~length >> 8)]
            out += payload[start..<end]
            start = end
        } while start < payload.count
        out += littleEndian32(crc32(payload))
        out += littleEndian32(UInt32(truncatingIfNeeded: payload.count))
        return out
    }

    static func littleEndian32(_ value: UInt32) -> [UInt8] {
        (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
    }

    static func littleEndian64(_ value: UInt64) -> [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
    }

    static func bigEndian32(_ value: UInt32) -> [UInt8] {
        (0..<4).map { UInt8(truncatingIfNeeded: value >> (24 - 8 * $0)) }
    }
}

/// The error of type `E` that `body` throws; fails the test when it throws nothing or another error.
func thrown<E: Error, R>(_ type: E.Type, file: StaticString = #filePath, line: UInt = #line,
                         _ body: () throws -> R) -> E? {
    do {
        _ = try body()
        XCTFail("expected a \(E.self), nothing was thrown", file: file, line: line)
    } catch let error as E {
        return error
    } catch {
        XCTFail("expected a \(E.self), got \(error)", file: file, line: line)
    }
    return nil
}
