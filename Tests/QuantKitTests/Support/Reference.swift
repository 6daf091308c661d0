import Foundation
import QuantKit
import XCTest

/// Plain-Swift statements of PyTorch's rules, written independently of the C kernels.
enum Reference {
    /// PyTorch (x86/FBGEMM) quantize: `clamp(zp + nearbyint(x * (1.0f / scale)), dtype min, dtype max)`.
    /// Rounding is half to even, on the float32 product; the zero point is added after rounding, in integers (so
    /// there is no float rounding of `Float(zp) + r` for qint32). NaN maps to the dtype minimum (QuantKit's
    /// documented choice, what the x86 kernels produce).
    static func quantize(_ x: Float, scale: Float, zeroPoint: Int, dtype: QuantizedDType) -> Int {
        let inverse: Float = 1 / scale
        let product: Float = x * inverse
        let range = dtype.range
        if product.isNaN { return range.lowerBound }
        let rounded = product.rounded(.toNearestOrEven)
        // Far outside every dtype range even after adding any zero point: saturate without converting to Int.
        if rounded >= 0x1p40 { return range.upperBound }
        if rounded <= -0x1p40 { return range.lowerBound }
        return min(max(Int(rounded) + zeroPoint, range.lowerBound), range.upperBound)
    }

    /// PyTorch dequantize: `(Float(q) - Float(zp)) * scale`, two roundings, no FMA.
    static func dequantize(_ q: Int, scale: Float, zeroPoint: Int) -> Float {
        let difference: Float = Float(q) - Float(zeroPoint)
        return difference * scale
    }

    /// Channel of row-major element `index` for a tensor of `shape` quantized along `axis` (normalised).
    static func channel(ofElement index: Int, shape: [Int], axis: Int) -> Int {
        let inner = shape[(axis + 1)...].reduce(1, *)
        return (index / inner) % shape[axis]
    }

    /// NaN-skipping min/max; `(inf, -inf)` when nothing is left.
    static func minMax(_ values: [Float], finiteOnly: Bool) -> (min: Float, max: Float) {
        var low = Float.infinity, high = -Float.infinity
        for v in values where !v.isNaN && (!finiteOnly || v.isFinite) {
            if v < low { low = v }
            if v > high { high = v }
        }
        return (low, high)
    }

    /// fp32 -> fp16 bits: Swift's own conversion (round half to even) for numbers, QuantKit's NaN rule
    /// (sign | 0x7E00 | top payload bits) for NaN.
    static func float16Bits(_ x: Float) -> UInt16 {
        if x.isNaN {
            let bits = x.bitPattern
            return UInt16(truncatingIfNeeded: (bits >> 16) & 0x8000) | 0x7E00
                | UInt16(truncatingIfNeeded: (bits >> 13) & 0x3FF)
        }
        #if !(os(macOS) && arch(x86_64))
        return Float16(x).bitPattern
        #else
        fatalError("Float16 unavailable")
        #endif
    }
}

/// A deterministic generator (SplitMix64), so failures reproduce.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

enum TestData {
    /// Values that stress rounding and clamping for `scale`/`zeroPoint`: exact ties (when `scale` is a power of
    /// two), the clamp boundaries, NaN with both signs and payloads, infinities, signed zeros, subnormals, huge
    /// values, values near 2^23/2^24/2^31 and random values across the dtype range.
    static func tricky(count: Int, scale: Float, zeroPoint: Int, dtype: QuantizedDType, seed: UInt64) -> [Float] {
        var generator = SplitMix64(seed: seed)
        let lo = Float(dtype.range.lowerBound - zeroPoint), hi = Float(dtype.range.upperBound - zeroPoint)
        var special: [Float] = [
            .nan, -.nan, Float(bitPattern: 0x7FA0_0001), Float(bitPattern: 0xFFC0_1234), .infinity, -.infinity,
            0, -0.0, .leastNonzeroMagnitude, -.leastNonzeroMagnitude, .leastNormalMagnitude,
            .greatestFiniteMagnitude, -.greatestFiniteMagnitude, 1e30, -1e30, 0x1p23, 0x1p24, -0x1p24,
            0x1p31, -0x1p31, 2_147_483_520, -2_147_483_520, 0x1p24 + 2,
        ]
        for tie in [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5, 126.5, 127.5, -127.5, -128.5, 254.5, 255.5] as [Float] {
            special.append(tie * scale)
        }
        for bound in [lo, hi] {
            for delta in [-1, -0.5, -0.49, 0, 0.49, 0.5, 1] as [Float] {
                special.append((bound + delta) * scale)
            }
        }
        var values: [Float] = []
        values.reserveCapacity(count)
        let width = Double(min(hi - lo, 600)), middle = (Double(lo) + Double(hi)) / 2
        while values.count < count {
            switch generator.next() % 4 {
            case 0:
                values.append(special[Int(generator.next() % UInt64(special.count))])
            case 1:   // an exact half-way point k + 0.5 (exact ties when scale is a power of two)
                let k = Float(Int(generator.next() % 600) - 300)
                values.append((k + 0.5) * scale)
            default:
                let unit = Double(generator.next() >> 11) / Double(1 << 53)
                values.append(Float((middle + (unit - 0.5) * 1.2 * width) * Double(scale)))
            }
        }
        return values
    }

    /// Uniform random floats in `-magnitude...magnitude`.
    static func uniform(count: Int, magnitude: Float, seed: UInt64) -> [Float] {
        var generator = SplitMix64(seed: seed)
        return (0..<count).map { _ in Float.random(in: -magnitude...magnitude, using: &generator) }
    }
}

/// Byte-wise equality of two tensors' storage (bit-exact, NaN-safe, fast even in debug builds).
func bitwiseEqual<T>(_ a: Tensor<T>, _ b: Tensor<T>) -> Bool {
    guard a.shape == b.shape else { return false }
    return a.withUnsafeBufferPointer { x in
        b.withUnsafeBufferPointer { y in
            x.count == 0 || memcmp(x.baseAddress!, y.baseAddress!, x.count * MemoryLayout<T>.stride) == 0
        }
    }
}

/// Byte-wise equality of two byte arrays via memcmp (Array's == is slow in debug builds).
func sameBytes(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    a.count == b.count && a.withUnsafeBytes { x in b.withUnsafeBytes { y in
        x.count == 0 || memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0
    } }
}

/// The integer values of a quantized tensor as raw bytes, without widening.
func intReprBytes(_ q: QuantizedTensor) throws -> [UInt8] {
    func bytes<T: QuantizedScalar>(_ t: Tensor<T>) -> [UInt8] {
        t.withUnsafeBufferPointer { Array(UnsafeRawBufferPointer($0)) }
    }
    switch q.dtype {
    case .quint8: return bytes(try q.intRepr(as: UInt8.self))
    case .qint8: return bytes(try q.intRepr(as: Int8.self))
    case .qint32: return bytes(try q.intRepr(as: Int32.self))
    }
}

/// Index of the first bit-level difference between two float arrays, or nil.
func firstBitDifference(_ a: [Float], _ b: [Float]) -> Int? {
    guard a.count == b.count else { return min(a.count, b.count) }
    return a.indices.first { a[$0].bitPattern != b[$0].bitPattern }
}

extension QuantizationError {
    /// Asserts the description names the offending value and what was expected.
    func assertInformative(mentions fragments: [String], file: StaticString = #filePath, line: UInt = #line) {
        let text = description
        XCTAssertGreaterThan(text.count, 20, "description too short: \(text)", file: file, line: line)
        for fragment in fragments {
            XCTAssertTrue(text.contains(fragment), "description \"\(text)\" should mention \"\(fragment)\"",
                          file: file, line: line)
        }
    }
}

/// Runs `body` and returns the QuantizationError it throws, failing the test if it throws nothing or another error.
func quantizationError<R>(
    _ body: () throws -> R, file: StaticString = #filePath, line: UInt = #line
) -> QuantizationError? {
    do {
        _ = try body()
        XCTFail("expected a QuantizationError, nothing was thrown", file: file, line: line)
    } catch let error as QuantizationError {
        return error
    } catch {
        XCTFail("expected a QuantizationError, got \(error)", file: file, line: line)
    }
    return nil
}

/// The ISA level the process started with: QUANTKIT_ISA if set (and valid), else the automatic choice.
enum ISAState {
    static var environmentISA: String? {
        guard let value = ProcessInfo.processInfo.environment["QUANTKIT_ISA"], !value.isEmpty, value != "auto" else {
            return nil
        }
        return value
    }

    /// Restores the start-up ISA level (tests that switch levels call this in their teardown); the automatic
    /// choice when QUANTKIT_ISA is invalid (only in the child process of the invalid-QUANTKIT_ISA test).
    static func restore() throws {
        let requested = environmentISA.flatMap { Runtime.isSupported(isa: $0) ? $0 : nil }
        try Runtime.setISA(requested)
    }
}
