import QuantKit
import XCTest

final class Float16ConversionTests: XCTestCase {
    #if !(os(macOS) && arch(x86_64))
    /// Every one of the 65536 half bit patterns widens exactly and narrows back to itself (NaN: quiet bit set).
    func testEveryHalfPatternRoundTrips() {
        let halves = Tensor((0...UInt16.max).map { Float16(bitPattern: $0) })
        let widened = halves.converted(to: Float.self)
        let narrowed = widened.converted(to: Float16.self)
        let wide = widened.scalars, back = narrowed.scalars
        var failures = 0
        for bits in 0...Int(UInt16.max) where failures < 10 {
            let h = UInt16(bits), w = wide[bits]
            let exponent = (h >> 10) & 0x1F, mantissa = UInt32(h & 0x3FF)
            if exponent == 0x1F && mantissa != 0 {   // NaN: sign kept, payload shifted, quiet bit set
                let expected = (UInt32(h & 0x8000) << 16) | 0x7FC0_0000 | (mantissa << 13)
                if w.bitPattern != expected || back[bits].bitPattern != h | 0x0200 {
                    failures += 1
                    XCTFail("NaN 0x\(String(h, radix: 16)): widened 0x\(String(w.bitPattern, radix: 16)), "
                            + "back 0x\(String(back[bits].bitPattern, radix: 16))")
                }
            } else {
                let expected = Float(Float16(bitPattern: h))
                if w.bitPattern != expected.bitPattern || back[bits].bitPattern != h {
                    failures += 1
                    XCTFail("0x\(String(h, radix: 16)): widened \(w) (expected \(expected)), "
                            + "back 0x\(String(back[bits].bitPattern, radix: 16))")
                }
            }
        }
    }

    func testSpecialValues() {
        let cases: [(Float, UInt16)] = [
            (0, 0x0000), (-0.0, 0x8000), (1, 0x3C00), (-2, 0xC000), (.infinity, 0x7C00), (-.infinity, 0xFC00),
            (65504, 0x7BFF), (65519.996, 0x7BFF), (65520, 0x7C00), (-65520, 0xFC00), (1e10, 0x7C00),
            (0x1p-14, 0x0400), (0x1p-24, 0x0001), (-0x1p-24, 0x8001), (0x1p-25, 0x0000), (0x1.000002p-25, 0x0001),
            (0x1.8p-24, 0x0002), (0x1.4p-23, 0x0002), (.leastNonzeroMagnitude, 0x0000), (1e-8, 0x0000),
            (1 + 0x1p-11, 0x3C00), (1 + 0x1.8p-10, 0x3C02), (1 + 0x1p-10 + 0x1p-11, 0x3C02), (2049, 0x6800),
            (2051, 0x6802), (.nan, 0x7E00), (-Float.nan, 0xFE00), (Float(bitPattern: 0x7F80_2000), 0x7E01),
            (Float(bitPattern: 0xFFFF_E000), 0xFFFF),
        ]
        let converted = Tensor(cases.map(\.0)).converted(to: Float16.self).scalars
        for (i, (x, bits)) in cases.enumerated() {
            XCTAssertEqual(converted[i].bitPattern, bits,
                           "\(x) (0x\(String(x.bitPattern, radix: 16))) -> 0x\(String(converted[i].bitPattern, radix: 16))")
        }
    }

    /// Random float32 bit patterns (all exponents) narrow exactly like Swift's own Float16(Float).
    func testRandomPatternsMatchSwiftConversion() {
        var generator = SplitMix64(seed: 16)
        let x = (0..<100_003).map { _ in Float(bitPattern: UInt32(truncatingIfNeeded: generator.next())) }
        let converted = Tensor(x).converted(to: Float16.self).scalars
        let bad = x.indices.filter { converted[$0].bitPattern != Reference.float16Bits(x[$0]) }
        XCTAssertTrue(bad.isEmpty, "\(bad.count) mismatches, first \(bad.first.map { "\(x[$0])" } ?? "")")
    }

    func testSaturatingConversion() throws {
        let x: [Float] = [70000, -70000, .infinity, -.infinity, .nan, 65504, 65505, 65519, 65520, -65536, 1, -0.0]
        let (halves, saturated) = Tensor(x).convertedToFloat16Saturating()
        XCTAssertEqual(saturated, 8)   // 70000, -70000, inf, -inf, 65505, 65519, 65520, -65536
        let expected: [UInt16] = [0x7BFF, 0xFBFF, 0x7BFF, 0xFBFF, 0x7E00, 0x7BFF, 0x7BFF, 0x7BFF, 0x7BFF, 0xFBFF,
                                  0x3C00, 0x8000]
        XCTAssertEqual(halves.scalars.map(\.bitPattern), expected)
        XCTAssertEqual(halves.shape, [x.count])

        let shaped = try Tensor<Float>(shape: [2, 2], scalars: [1, 2, 3, 4]).convertedToFloat16Saturating()
        XCTAssertEqual(shaped.saturatedCount, 0)
        XCTAssertEqual(shaped.tensor.shape, [2, 2])
        XCTAssertEqual(Tensor<Float>([]).convertedToFloat16Saturating().saturatedCount, 0)

        // Counts add up across tiles and threads.
        var big = TestData.uniform(count: 300_001, magnitude: 1e5, seed: 5)
        big[7] = .nan
        let expectedCount = big.filter { !$0.isNaN && abs($0) > 65504 }.count
        let result = Tensor(big).convertedToFloat16Saturating()
        XCTAssertEqual(result.saturatedCount, expectedCount)
        let clamped = big.map { $0.isNaN ? $0 : min(max($0, -65504), 65504) }
        XCTAssertTrue(bitwiseEqual(result.tensor, Tensor(clamped).converted(to: Float16.self)))
    }

    func testShapePreservedAndEmpty() throws {
        let t = try Tensor<Float>(shape: [2, 1, 3], scalars: [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(t.converted(to: Float16.self).shape, [2, 1, 3])
        XCTAssertEqual(t.converted(to: Float16.self).converted(to: Float.self), t)
        XCTAssertEqual(Tensor<Float>([]).converted(to: Float16.self).count, 0)
        XCTAssertEqual(Tensor<Float16>([]).converted(to: Float.self).count, 0)
    }
    #endif
}

final class MinMaxTests: XCTestCase {
    func testNaNAndInfinities() {
        let x: [Float] = [.nan, 1, -2, .infinity, -.infinity, -.nan, 3]
        let all = Tensor(x).minMax()
        XCTAssertEqual(all.min, -.infinity)
        XCTAssertEqual(all.max, .infinity)
        let finite = Tensor(x).minMax(finiteOnly: true)
        XCTAssertEqual(finite.min, -2)
        XCTAssertEqual(finite.max, 3)

        let onlyNaN = Tensor<Float>([.nan, .nan]).minMax()
        XCTAssertEqual(onlyNaN.min, .infinity)
        XCTAssertEqual(onlyNaN.max, -.infinity)
        let onlyInf = Tensor<Float>([.infinity, -.infinity, .nan]).minMax(finiteOnly: true)
        XCTAssertEqual(onlyInf.min, .infinity)
        XCTAssertEqual(onlyInf.max, -.infinity)
        let empty = Tensor<Float>([]).minMax()
        XCTAssertEqual(empty.min, .infinity)
        XCTAssertEqual(empty.max, -.infinity)
        let zeros = Tensor<Float>([-0.0, 0.0]).minMax()
        XCTAssertTrue(zeros.min == 0 && zeros.max == 0)
        XCTAssertEqual(Tensor<Float>([.nan, 5]).minMax().min, 5)
        XCTAssertEqual(Tensor<Float>([-.greatestFiniteMagnitude, .leastNonzeroMagnitude]).minMax().max,
                       .leastNonzeroMagnitude)
    }

    /// Every length up to 70 (SIMD tails) and a multi-tile tensor, with NaN/inf placed at random.
    func testAgainstReference() throws {
        var generator = SplitMix64(seed: 99)
        for count in Array(0...70) + [1000, 262_144, 262_145, 600_007] {
            var x = TestData.uniform(count: count, magnitude: 1000, seed: UInt64(count) &+ 1)
            for _ in 0..<min(count, 5) {
                let specials: [Float] = [.nan, .infinity, -.infinity, -.nan]
                x[Int(generator.next() % UInt64(count))] = specials[Int(generator.next() % 4)]
            }
            for finiteOnly in [false, true] {
                let got = Tensor(x).minMax(finiteOnly: finiteOnly)
                let expected = Reference.minMax(x, finiteOnly: finiteOnly)
                XCTAssertEqual(got.min, expected.min, "n=\(count) finiteOnly=\(finiteOnly)")
                XCTAssertEqual(got.max, expected.max, "n=\(count) finiteOnly=\(finiteOnly)")
            }
        }
        let shaped = try Tensor<Float>(shape: [2, 2], scalars: [4, -1, 2, 3]).minMax()
        XCTAssertEqual(shaped.min, -1)
        XCTAssertEqual(shaped.max, 4)
    }
}
