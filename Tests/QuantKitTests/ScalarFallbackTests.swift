import Foundation
@testable import QuantKit
import XCTest

/// The portable Swift implementations that the non-throwing operations fall back to when the C runtime is unusable
/// (an invalid QUANTKIT_ISA) must give the C kernels' results bit for bit. The unusable state cannot be reached in
/// this process (a failed setISA keeps the current table), so here the fallbacks are compared with the kernels of
/// every supported ISA level directly; RuntimeTests.testInvalidEnvironmentISAChild runs the public operations on an
/// unusable runtime in a child process.
final class ScalarFallbackTests: XCTestCase {
    override func setUp() {
        super.setUp()
        addTeardownBlock { try ISAState.restore() }
    }

    /// Runs `body` once per supported ISA level, with that level selected.
    private func forEachISA(_ body: (String) throws -> Void) throws {
        for name in Runtime.supportedISAs {
            try Runtime.setISA(name)
            try body(name)
        }
    }

    func testRuntimeIsUsableHere() {
        XCTAssertFalse(Kernels.runtimeIsUnusable)
    }

    // MARK: fp16 / bf16

    func testFloat32ToHalfMatchesKernels() throws {
        let x = Self.conversionInputs()
        let count = x.count
        var fallback = [UInt16](repeating: 0, count: count), fallbackSaturated = fallback
        var fallbackBF16 = fallback
        var fallbackCount = 0
        x.withUnsafeBufferPointer { xp in
            fallback.withUnsafeMutableBytes {
                ScalarFallback.convertToFloat16(count: count, input: xp.baseAddress!, output: $0.baseAddress!)
            }
            fallbackSaturated.withUnsafeMutableBytes {
                fallbackCount = ScalarFallback.convertToFloat16Saturating(count: count, input: xp.baseAddress!,
                                                                          output: $0.baseAddress!)
            }
            fallbackBF16.withUnsafeMutableBytes {
                ScalarFallback.convert(count: count, input: xp.baseAddress!, to: .bfloat16, output: $0.baseAddress!)
            }
        }
        XCTAssertGreaterThan(fallbackCount, 1000)
        try forEachISA { isa in
            var c = [UInt16](repeating: 0, count: count), cSaturated = c, cBF16 = c
            var cCount = 0
            try x.withUnsafeBufferPointer { xp in
                try c.withUnsafeMutableBytes {
                    try Kernels.convertToFloat16(count: count, input: xp.baseAddress!, output: $0.baseAddress!)
                }
                try cSaturated.withUnsafeMutableBytes {
                    cCount = try Kernels.convertToFloat16Saturating(count: count, input: xp.baseAddress!,
                                                                   output: $0.baseAddress!)
                }
                try cBF16.withUnsafeMutableBytes {
                    try Kernels.convert(count: count, input: xp.baseAddress!, to: .bfloat16, output: $0.baseAddress!)
                }
            }
            Self.expectSame(fallback, c, x, "\(isa) fp32 -> fp16")
            Self.expectSame(fallbackSaturated, cSaturated, x, "\(isa) fp32 -> fp16 saturating")
            Self.expectSame(fallbackBF16, cBF16, x, "\(isa) fp32 -> bf16")
            XCTAssertEqual(fallbackCount, cCount, "\(isa) saturated count")
        }
    }

    func testSpecialHalfValues() {
        let cases: [(Float, UInt16)] = [
            (65504, 0x7BFF), (65519, 0x7BFF), (65519.996, 0x7BFF), (65520, 0x7C00), (-65520, 0xFC00),
            (.infinity, 0x7C00), (-0.0, 0x8000), (0x1p-24, 0x0001), (0x1p-25, 0x0000), (0x1.000002p-25, 0x0001),
            (0x1.8p-24, 0x0002), (1 + 0x1p-11, 0x3C00), (1 + 0x1.8p-10, 0x3C02), (.nan, 0x7E00),
            (-Float.nan, 0xFE00), (Float(bitPattern: 0x7F80_2000), 0x7E01), (Float(bitPattern: 0xFFFF_E000), 0xFFFF),
        ]
        for (x, bits) in cases {
            XCTAssertEqual(ScalarFallback.float16Bits(x), bits, "\(x) (0x\(String(x.bitPattern, radix: 16)))")
        }
        XCTAssertEqual(ScalarFallback.bfloat16Bits(Float(bitPattern: 0x3F80_8000)), 0x3F80)   // tie to even
        XCTAssertEqual(ScalarFallback.bfloat16Bits(Float(bitPattern: 0x3F81_8000)), 0x3F82)
        XCTAssertEqual(ScalarFallback.bfloat16Bits(Float(bitPattern: 0x7F7F_8000)), 0x7F80)   // overflow to inf
        XCTAssertEqual(ScalarFallback.bfloat16Bits(Float(bitPattern: 0xFF80_0001)), 0xFFC0)   // NaN made quiet
        var saturated = [UInt16](repeating: 0, count: 6)
        let x: [Float] = [65504, 65504.5, -65520, .infinity, -.infinity, .nan]
        let count = x.withUnsafeBufferPointer { xp in
            saturated.withUnsafeMutableBytes {
                ScalarFallback.convertToFloat16Saturating(count: 6, input: xp.baseAddress!, output: $0.baseAddress!)
            }
        }
        XCTAssertEqual(count, 4)
        XCTAssertEqual(saturated, [0x7BFF, 0x7BFF, 0xFBFF, 0x7BFF, 0xFBFF, 0x7E00])
    }

    /// Every fp16 and every bf16 bit pattern widens to the same fp32 bits as the kernels.
    func testHalfToFloat32MatchesKernelsOnEveryPattern() throws {
        let bits = (0...UInt16.max).map { $0 }
        let count = bits.count
        var fallback16 = [Float](repeating: 0, count: count), fallbackBF16 = fallback16
        bits.withUnsafeBytes { b in
            fallback16.withUnsafeMutableBufferPointer {
                ScalarFallback.convertToFloat(count: count, input: b.baseAddress!, output: $0.baseAddress!)
            }
            fallbackBF16.withUnsafeMutableBufferPointer {
                ScalarFallback.convert(count: count, bits: b.baseAddress!, from: .bfloat16, output: $0.baseAddress!)
            }
        }
        var viaPrecision = [Float](repeating: 0, count: count)
        bits.withUnsafeBytes { b in
            viaPrecision.withUnsafeMutableBufferPointer {
                ScalarFallback.convert(count: count, bits: b.baseAddress!, from: .float16, output: $0.baseAddress!)
            }
        }
        XCTAssertTrue(Self.sameBits(fallback16, viaPrecision))
        try forEachISA { isa in
            var c16 = [Float](repeating: 0, count: count), cBF16 = c16
            try bits.withUnsafeBytes { b in
                try c16.withUnsafeMutableBufferPointer {
                    try Kernels.convertToFloat(count: count, input: b.baseAddress!, output: $0.baseAddress!)
                }
                try cBF16.withUnsafeMutableBufferPointer {
                    try Kernels.convert(count: count, bits: b.baseAddress!, from: .bfloat16, output: $0.baseAddress!)
                }
            }
            Self.expectSame(fallback16.map(\.bitPattern), c16.map(\.bitPattern), bits, "\(isa) fp16 -> fp32")
            Self.expectSame(fallbackBF16.map(\.bitPattern), cBF16.map(\.bitPattern), bits, "\(isa) bf16 -> fp32")
        }
    }

    // MARK: minmax

    func testMinMaxMatchesKernels() throws {
        var generator = SplitMix64(seed: 77)
        let specials: [Float] = [.nan, -.nan, Float(bitPattern: 0x7FA0_0001), .infinity, -.infinity, 0, -0.0,
                                 .leastNonzeroMagnitude, -.greatestFiniteMagnitude, .greatestFiniteMagnitude]
        var inputs: [[Float]] = [[], [.nan], [.nan, .infinity], [.infinity, -.infinity], [-.infinity, .nan, 3],
                                 [-0.0, 0], [0, -0.0], specials]
        for count in [1, 2, 3, 7, 8, 15, 16, 17, 31, 33, 64, 100, 1000, 4099, (1 << 18) + 5] {
            for mode in 0..<3 {
                inputs.append((0..<count).map { _ -> Float in
                    let r = generator.next()
                    switch mode {
                    case 0: return Float(bitPattern: UInt32(truncatingIfNeeded: r))   // any pattern, NaN included
                    case 1: return r % 5 == 0 ? specials[Int(r >> 32) % specials.count] : Float(Int64(r >> 40) - 1 << 23)
                    default: return r % 2 == 0 ? .nan : (r % 3 == 0 ? .infinity : -.infinity)
                    }
                })
            }
        }
        try forEachISA { isa in
            for x in inputs {
                for finiteOnly in [false, true] {
                    let (expected, got) = try x.withUnsafeBufferPointer { xp in
                        let base = xp.baseAddress ?? UnsafePointer(bitPattern: 16)!
                        return (try Kernels.minMax(count: x.count, input: base, finiteOnly: finiteOnly),
                                ScalarFallback.minMax(count: x.count, input: base, finiteOnly: finiteOnly))
                    }
                    // -0.0 and +0.0 may come out either way (documented), hence == rather than bits.
                    XCTAssertTrue(got.min == expected.min && got.max == expected.max,
                                  "\(isa) n=\(x.count) finiteOnly=\(finiteOnly): \(got) vs \(expected)")
                }
            }
        }
        XCTAssertTrue(ScalarFallback.minMax(count: 0, input: UnsafePointer(bitPattern: 16)!, finiteOnly: false)
                      == (Float.infinity, -Float.infinity))
    }

    // MARK: dequantize

    func testDequantizeMatchesKernels() throws {
        var generator = SplitMix64(seed: 99)
        let scales: [Float] = [1, 0.5, 0.1, Float(bitPattern: 0x0022_0000), 1e-30, 0.0078125, 1.7e38, 123.456, .leastNormalMagnitude]
        try forEachISA { isa in
            for dtype in QuantizedDType.allCases {
                let q = Self.integers(dtype, count: 1037, generator: &generator)
                for scale in scales {
                    for zeroPoint in Self.zeroPoints(dtype) {
                        try q.withUnsafeBytes { raw in
                            var c = [Float](repeating: 0, count: 1037), fallback = c
                            try c.withUnsafeMutableBufferPointer {
                                try Kernels.dequantizePerTensor(dtype, count: 1037, input: raw.baseAddress!,
                                                                output: $0.baseAddress!, scale: scale,
                                                                zeroPoint: zeroPoint)
                            }
                            fallback.withUnsafeMutableBufferPointer {
                                ScalarFallback.dequantizePerTensor(dtype, count: 1037, input: raw.baseAddress!,
                                                                   output: $0.baseAddress!, scale: scale,
                                                                   zeroPoint: zeroPoint)
                            }
                            Self.expectSame(fallback.map(\.bitPattern), c.map(\.bitPattern), Array(0..<1037),
                                            "\(isa) dequantize \(dtype) scale \(scale) zp \(zeroPoint)")
                        }
                    }
                }
                // Per channel, including the contiguous-channel (inner == 1) path and empty views.
                for shape in [[3, 4, 5], [2, 7], [1, 1, 1], [4, 0, 3], [33, 17]] {
                    for axis in shape.indices {
                        let count = shape.reduce(1, *)
                        let view = ChannelView(shape: shape, axis: axis)
                        let channelScales = (0..<view.channels).map { scales[$0 % scales.count] }
                        let channelZeroPoints = (0..<view.channels).map { c in
                            Self.zeroPoints(dtype)[c % Self.zeroPoints(dtype).count]
                        }
                        let q = Self.integers(dtype, count: count, generator: &generator)
                        var c = [Float](repeating: 0, count: count), fallback = c
                        try q.withUnsafeBytes { raw in
                            try channelScales.withUnsafeBufferPointer { s in
                                try channelZeroPoints.withUnsafeBufferPointer { z in
                                    let input = raw.baseAddress ?? UnsafeRawPointer(bitPattern: 16)!
                                    try c.withUnsafeMutableBufferPointer {
                                        try Kernels.dequantizePerChannel(
                                            dtype, view: view, input: input,
                                            output: $0.baseAddress ?? UnsafeMutablePointer(bitPattern: 16)!,
                                            scales: s.baseAddress, zeroPoints: z.baseAddress)
                                    }
                                    fallback.withUnsafeMutableBufferPointer {
                                        ScalarFallback.dequantizePerChannel(
                                            dtype, view: view, input: input,
                                            output: $0.baseAddress ?? UnsafeMutablePointer(bitPattern: 16)!,
                                            scales: s.baseAddress, zeroPoints: z.baseAddress)
                                    }
                                }
                            }
                        }
                        Self.expectSame(fallback.map(\.bitPattern), c.map(\.bitPattern), Array(0..<count),
                                        "\(isa) per-channel dequantize \(dtype) shape \(shape) axis \(axis)")
                    }
                }
            }
        }
    }

    // MARK: The public operations (run by RuntimeTests.testInvalidEnvironmentISAChild on an unusable runtime)

    /// The results of every non-throwing kernel-backed operation on tricky inputs, as labelled bytes.
    static func nonThrowingResults() throws -> [(String, [UInt8])] {
        func bytes<T>(_ t: Tensor<T>) -> [UInt8] { t.withUnsafeBufferPointer { Array(UnsafeRawBufferPointer($0)) } }
        func bytes<T>(_ values: T...) -> [UInt8] { values.withUnsafeBytes { Array($0) } }
        var generator = SplitMix64(seed: 5)
        var values: [Float] = [.nan, -.nan, Float(bitPattern: 0x7FA0_0001), Float(bitPattern: 0xFFFF_E000), .infinity,
                               -.infinity, 0, -0.0, .leastNonzeroMagnitude, 65504, 65519, 65520, -65520, 1e10,
                               0x1p-24, 0x1.8p-24, 1 + 0x1p-11, Float(bitPattern: 0x3F80_8000), 2.5, -3.5]
        for _ in 0..<5000 { values.append(Float(bitPattern: UInt32(truncatingIfNeeded: generator.next()))) }
        let x = try Tensor(shape: [values.count / 4, 4], scalars: values)
        var results: [(String, [UInt8])] = []
        for finiteOnly in [false, true] {
            let (low, high) = x.minMax(finiteOnly: finiteOnly)
            results.append(("minMax finiteOnly=\(finiteOnly)", bytes(low, high)))
        }
        let (emptyLow, emptyHigh) = Tensor<Float>([]).minMax()
        results.append(("minMax empty", bytes(emptyLow, emptyHigh)))
        results.append(("roundedToBFloat16", bytes(x.roundedToBFloat16())))
        #if !(os(macOS) && arch(x86_64))
        let halves = x.converted(to: Float16.self)
        results.append(("fp32 -> fp16", bytes(halves)))
        let (saturated, saturatedCount) = x.convertedToFloat16Saturating()
        results.append(("fp32 -> fp16 saturating", bytes(saturated) + bytes(saturatedCount)))
        let every = Tensor((0...UInt16.max).map { Float16(bitPattern: $0) })
        results.append(("fp16 -> fp32", bytes(every.converted(to: Float.self))))
        #endif
        for dtype in QuantizedDType.allCases {
            let zeroPoint = Int(Self.zeroPoints(dtype)[3])
            let raw = Self.integers(dtype, count: 12 * 37, generator: &generator)
            let q: QuantizedTensor
            let perChannel: QuantizedTensor
            switch dtype {
            case .quint8:
                let t = try Tensor(shape: [12, 37], scalars: raw)
                q = try QuantizedTensor(intRepr: t, scale: 0.1, zeroPoint: zeroPoint)
                perChannel = try QuantizedTensor(intRepr: t, scales: (0..<37).map { Float($0 + 1) * 0.3 },
                                                 zeroPoints: (0..<37).map { $0 * 7 }, axis: 1)
            case .qint8:
                let t = try Tensor(shape: [12, 37], scalars: raw.map { Int8(bitPattern: $0) })
                q = try QuantizedTensor(intRepr: t, scale: 0.1, zeroPoint: zeroPoint)
                perChannel = try QuantizedTensor(intRepr: t, scales: (0..<12).map { Float($0 + 1) * 0.3 },
                                                 zeroPoints: (0..<12).map { $0 * 7 - 40 }, axis: 0)
            case .qint32:
                let ints = raw.withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) }
                let t = try Tensor(shape: [12, 37], scalars: ints)
                q = try QuantizedTensor(intRepr: t, scale: 0.1, zeroPoint: zeroPoint)
                perChannel = try QuantizedTensor(intRepr: t, scales: (0..<37).map { Float($0 + 1) * 1e-3 },
                                                 zeroPoints: (0..<37).map { $0 * 1_000_003 }, axis: -1)
            }
            results.append(("dequantize \(dtype)", bytes(q.dequantized())))
            results.append(("dequantize per channel \(dtype)", bytes(perChannel.dequantized())))
        }
        return results
    }

    // MARK: Inputs and helpers

    /// fp32 values for the narrowing conversions: NaN with payloads, infinities, signed zeros, subnormals, the fp16
    /// overflow boundary (65504 / 65519 / 65520) and the fp16 subnormal range with neighbours, every high half with
    /// the low halves that make fp16 and bf16 ties (all shifts) and their neighbours, and random bit patterns.
    static func conversionInputs() -> [Float] {
        var x: [Float] = [
            .nan, -.nan, Float(bitPattern: 0x7F80_0001), Float(bitPattern: 0x7FA0_0001), Float(bitPattern: 0x7FBF_FFFF),
            Float(bitPattern: 0xFFC0_1234), Float(bitPattern: 0x7F80_2000), Float(bitPattern: 0xFFFF_E000),
            Float(bitPattern: 0xFFFF_FFFF), .infinity, -.infinity, 0, -0.0, .leastNonzeroMagnitude,
            -.leastNonzeroMagnitude, .leastNormalMagnitude, .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
            65504, -65504, 65519, -65519, 65519.996, 65520, -65520, 65536, 1e10, 0x1p-14, 0x1p-24, 0x1p-25,
            0x1.000002p-25, 0x1.8p-24, 0x1.4p-23, 1 + 0x1p-11, 1 + 0x1.8p-10, 2049, 2051,
        ]
        for v in x where v.isFinite { x += [v.nextUp, v.nextDown] }
        let lowHalves: [UInt32] = [0x0000, 0x0001, 0x0FFF, 0x1000, 0x1001, 0x1FFF, 0x2000, 0x3000, 0x4000, 0x6000,
                                   0x7FFF, 0x8000, 0x8001, 0xA000, 0xC000, 0xE000, 0xFFFF]
        for high in 0...UInt32(0xFFFF) {
            for low in lowHalves { x.append(Float(bitPattern: high << 16 | low)) }
        }
        var generator = SplitMix64(seed: 2024)
        for _ in 0..<200_000 { x.append(Float(bitPattern: UInt32(truncatingIfNeeded: generator.next()))) }
        return x
    }

    /// Integers of `dtype`'s storage type (as raw bytes): extremes, the values around 2^24 (where Float(q) rounds
    /// for qint32) and random ones.
    static func integers(_ dtype: QuantizedDType, count: Int, generator: inout SplitMix64) -> [UInt8] {
        switch dtype {
        case .quint8:
            return (0..<count).map { i in i < 256 ? UInt8(i) : UInt8(truncatingIfNeeded: generator.next()) }
        case .qint8:
            return (0..<count).map { i in i < 256 ? UInt8(i) : UInt8(truncatingIfNeeded: generator.next()) }
        case .qint32:
            let specials: [Int32] = [.min, .max, .min + 1, .max - 1, 0, 1, -1, 1 << 24, (1 << 24) + 1, (1 << 24) + 3,
                                     -(1 << 24) - 1, -(1 << 24) - 3, (1 << 25) + 2, (1 << 25) + 6, 2_147_483_520]
            let values = (0..<count).map { i -> Int32 in
                i < specials.count ? specials[i] : Int32(truncatingIfNeeded: generator.next() >> (generator.next() % 40))
            }
            return values.withUnsafeBytes { Array($0) }
        }
    }

    static func zeroPoints(_ dtype: QuantizedDType) -> [Int32] {
        switch dtype {
        case .quint8: return [0, 128, 255, 3]
        case .qint8: return [0, -128, 127, -3]
        case .qint32: return [0, .min, .max, (1 << 24) + 1, -12345]
        }
    }

    static func sameBits(_ a: [Float], _ b: [Float]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern }
    }

    /// Fails with the first few differing elements (and their inputs).
    static func expectSame<T: Equatable & BinaryInteger, I>(_ got: [T], _ expected: [T], _ inputs: [I],
                                                            _ label: String, file: StaticString = #filePath,
                                                            line: UInt = #line)
    {
        XCTAssertEqual(got.count, expected.count, label, file: file, line: line)
        var failures = 0
        for i in got.indices where got[i] != expected[i] {
            failures += 1
            if failures <= 5 {
                XCTFail("\(label)[\(i)] (input \(inputs[i])): fallback 0x\(String(got[i], radix: 16)), kernels "
                        + "0x\(String(expected[i], radix: 16))", file: file, line: line)
            }
        }
        if failures > 5 { XCTFail("\(label): \(failures) mismatches in all", file: file, line: line) }
    }
}
