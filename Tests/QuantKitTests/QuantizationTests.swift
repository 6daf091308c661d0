import QuantKit
import XCTest

final class QuantizationTests: XCTestCase {
    /// Checks `quantized` against the reference rule, element by element, and dequantization bit for bit.
    func assertPerTensor(_ x: [Float], scale: Float, zeroPoint: Int, dtype: QuantizedDType,
                         file: StaticString = #filePath, line: UInt = #line) throws {
        let q = try Tensor(x).quantized(scale: scale, zeroPoint: zeroPoint, dtype: dtype)
        XCTAssertEqual(q.dtype, dtype, file: file, line: line)
        XCTAssertEqual(q.qscheme, .perTensorAffine, file: file, line: line)
        XCTAssertEqual(q.scale, scale, file: file, line: line)
        XCTAssertEqual(q.zeroPoint, zeroPoint, file: file, line: line)
        XCTAssertNil(q.axis, file: file, line: line)
        let ints = q.intRepr()
        let expected = x.map { Reference.quantize($0, scale: scale, zeroPoint: zeroPoint, dtype: dtype) }
        if let i = ints.indices.first(where: { Int(ints[$0]) != expected[$0] }) {
            XCTFail("\(dtype) scale \(scale) zp \(zeroPoint): x[\(i)] = \(x[i]) (0x\(String(x[i].bitPattern, radix: 16))) "
                    + "-> \(ints[i]), expected \(expected[i])", file: file, line: line)
        }
        let dq = q.dequantized().scalars
        let expectedDQ = expected.map { Reference.dequantize($0, scale: scale, zeroPoint: zeroPoint) }
        if let i = firstBitDifference(dq, expectedDQ) {
            XCTFail("\(dtype): dequantized q = \(expected[i]) -> \(dq[i]), expected \(expectedDQ[i])",
                    file: file, line: line)
        }
    }

    func testTiesRoundHalfToEven() throws {
        let x: [Float] = [0.5, 1.5, 2.5, 3.5, -0.5, -1.5, -2.5, -3.5]
        let q = try Tensor(x).quantized(scale: 1, zeroPoint: 0, dtype: .qint8)
        XCTAssertEqual(q.intRepr(), [0, 2, 2, 4, 0, -2, -2, -4])
        // The zero point is added after rounding: with zp 3, 2.5 -> 2 + 3 = 5, not round(5.5) = 6.
        let shifted = try Tensor(x).quantized(scale: 1, zeroPoint: 3, dtype: .qint8)
        XCTAssertEqual(shifted.intRepr(), [3, 5, 5, 7, 3, 1, 1, -1])
        let qint32 = try Tensor(x).quantized(scale: 0.5, zeroPoint: -7, dtype: .qint32)
        XCTAssertEqual(qint32.intRepr(), [-6, -4, -2, 0, -8, -10, -12, -14])
        // PyTorch multiplies by the float32 reciprocal: x / s = 127.49999 but x * (1 / s) = 127.5 -> 128.
        let s: Float = 0.00214854861, v: Float = 0.273939937
        XCTAssertLessThan(v / s, 127.5)
        XCTAssertEqual(try Tensor([v]).quantized(scale: s, zeroPoint: 0, dtype: .quint8).intRepr(), [128])
    }

    func testClampNaNAndInfinities() throws {
        let x: [Float] = [.nan, -.nan, .infinity, -.infinity, 1e30, -1e30, 300, -300]
        XCTAssertEqual(try Tensor(x).quantized(scale: 1, zeroPoint: 10, dtype: .quint8).intRepr(),
                       [0, 0, 255, 0, 255, 0, 255, 0])
        XCTAssertEqual(try Tensor(x).quantized(scale: 1, zeroPoint: -10, dtype: .qint8).intRepr(),
                       [-128, -128, 127, -128, 127, -128, 127, -128])
        let big = try Tensor(x + [0x1p31, -0x1p31, 2_147_483_520]).quantized(scale: 1, zeroPoint: 5, dtype: .qint32)
        XCTAssertEqual(big.intRepr(), [Int32.min, Int32.min, Int32.max, Int32.min, Int32.max, Int32.min, 305, -295,
                                       Int32.max, Int32.min + 5, 2_147_483_525])
    }

    func testPerTensorAgainstReference() throws {
        let settings: [(QuantizedDType, Float, Int)] = [
            (.quint8, 0.0173, 193), (.quint8, 0.25, 0), (.quint8, 1, 255), (.quint8, 0.002, 128),
            (.qint8, 1, -17), (.qint8, 0.125, 0), (.qint8, 0.0173, 127), (.qint8, 3.7e-5, -128),
            (.qint32, 0.0173, -2), (.qint32, 0.5, 0), (.qint32, 1e-6, 1_000_000), (.qint32, 1, Int(Int32.min)),
            (.qint32, 0.25, Int(Int32.max)), (.quint8, 1e30, 7), (.qint8, Float(bitPattern: 0x0024_0000), 0),   // 3.3e-39: subnormal, 1/scale finite
        ]
        for (index, (dtype, scale, zeroPoint)) in settings.enumerated() {
            for count in [0, 1, 7, 16, 31, 32, 33, 64, 65, 250, 1031] {
                let x = TestData.tricky(count: count, scale: scale, zeroPoint: zeroPoint, dtype: dtype,
                                        seed: UInt64(index * 1000 + count))
                try assertPerTensor(x, scale: scale, zeroPoint: zeroPoint, dtype: dtype)
            }
        }
    }

    func testShapeAndEmptyTensors() throws {
        let x = try Tensor<Float>(shape: [2, 3, 1], scalars: [0, 1, 2, 3, 4, 5])
        let q = try x.quantized(scale: 1, zeroPoint: 0, dtype: .quint8)
        XCTAssertEqual(q.shape, [2, 3, 1])
        XCTAssertEqual(q.rank, 3)
        XCTAssertEqual(q.count, 6)
        XCTAssertEqual(q.dequantized().shape, [2, 3, 1])
        XCTAssertEqual(try q.intRepr(as: UInt8.self).shape, [2, 3, 1])

        let empty = try Tensor<Float>(zeros: [0, 4]).quantized(scale: 0.5, zeroPoint: 1, dtype: .qint8)
        XCTAssertEqual(empty.shape, [0, 4])
        XCTAssertEqual(empty.intRepr(), [])
        XCTAssertEqual(empty.dequantized().shape, [0, 4])
        let emptyChannels = try Tensor<Float>(zeros: [3, 0]).quantized(scales: [], zeroPoints: [], axis: 1, dtype: .quint8)
        XCTAssertEqual(emptyChannels.shape, [3, 0])
        XCTAssertEqual(emptyChannels.dequantized().count, 0)
        let emptyOuter = try Tensor<Float>(zeros: [0, 2]).quantized(scales: [1, 2], zeroPoints: [0, 0], axis: 1,
                                                                     dtype: .qint32)
        XCTAssertEqual(emptyOuter.dequantized().shape, [0, 2])
        let scalar = try Tensor<Float>(shape: [], scalars: [2.5]).quantized(scale: 1, zeroPoint: 0, dtype: .qint8)
        XCTAssertEqual(scalar.shape, [])
        XCTAssertEqual(scalar.intRepr(), [2])
    }

    /// Every axis (positive and negative) of 1-D to 4-D tensors, every dtype, checked against the reference;
    /// covers the contiguous-channel ("rows") and strided ("slices") kernel paths and size-1 dimensions.
    func testPerChannelEveryAxisAgainstReference() throws {
        let shapes: [[Int]] = [[7], [1], [3, 5], [5, 1], [1, 33], [2, 3, 4], [4, 1, 3], [3, 17, 2], [2, 3, 2, 5],
                               [1, 2, 1, 3], [2, 2, 3, 9]]
        var generator = SplitMix64(seed: 7)
        for (shapeIndex, shape) in shapes.enumerated() {
            let count = shape.reduce(1, *)
            for dtype in QuantizedDType.allCases {
                for axis in -shape.count..<shape.count {
                    let normalized = axis < 0 ? axis + shape.count : axis
                    let channels = shape[normalized]
                    let scales = (0..<channels).map { _ in
                        [0.25, 0.0173, 1, 0.5, 3.1e-3][Int(generator.next() % 5)] as Float
                    }
                    let range = dtype == .qint32 ? -1000...1000 : dtype.range
                    let zeroPoints = (0..<channels).map { _ in Int.random(in: range, using: &generator) }
                    let x = TestData.tricky(count: count, scale: 0.25, zeroPoint: 0, dtype: dtype,
                                            seed: UInt64(shapeIndex * 100 + normalized))
                    let q = try Tensor(shape: shape, scalars: x).quantized(scales: scales, zeroPoints: zeroPoints,
                                                                          axis: axis, dtype: dtype)
                    XCTAssertEqual(q.axis, normalized)
                    XCTAssertEqual(q.qscheme, .perChannelAffine)
                    XCTAssertEqual(q.scales, scales)
                    XCTAssertEqual(q.zeroPoints, zeroPoints)
                    let ints = q.intRepr(), dq = q.dequantized().scalars
                    for i in 0..<count {
                        let c = Reference.channel(ofElement: i, shape: shape, axis: normalized)
                        let expected = Reference.quantize(x[i], scale: scales[c], zeroPoint: zeroPoints[c], dtype: dtype)
                        let expectedDQ = Reference.dequantize(expected, scale: scales[c], zeroPoint: zeroPoints[c])
                        if Int(ints[i]) != expected || dq[i].bitPattern != expectedDQ.bitPattern {
                            XCTFail("shape \(shape) axis \(axis) \(dtype) element \(i) channel \(c): x \(x[i]) -> "
                                    + "\(ints[i]) / \(dq[i]), expected \(expected) / \(expectedDQ)")
                            break
                        }
                    }
                }
            }
        }
    }

    func testPerChannelMatchesPerTensorSlices() throws {
        // Quantizing per channel equals quantizing each slice per tensor with that channel's parameters.
        let shape = [3, 4, 5]
        let x = TestData.uniform(count: 60, magnitude: 3, seed: 11)
        let t = try Tensor(shape: shape, scalars: x)
        let scales: [Float] = [0.01, 0.02, 0.03, 0.05]
        let zeroPoints = [0, 10, -5, 127]
        let q = try t.quantized(scales: scales, zeroPoints: zeroPoints, axis: 1, dtype: .qint8).intRepr()
        for c in 0..<4 {
            var slice: [Float] = [], indices: [Int] = []
            for o in 0..<3 { for i in 0..<5 { indices.append(o * 20 + c * 5 + i); slice.append(x[o * 20 + c * 5 + i]) } }
            let expected = try Tensor(slice).quantized(scale: scales[c], zeroPoint: zeroPoints[c], dtype: .qint8)
            XCTAssertEqual(indices.map { q[$0] }, expected.intRepr())
        }
    }

    func testIntReprAndMakeQuantizedTensor() throws {
        let x = try Tensor<Float>(shape: [2, 2], scalars: [-1, 0, 0.5, 1])
        let q8 = try x.quantized(scale: 0.5, zeroPoint: 2, dtype: .qint8)
        XCTAssertEqual(try q8.intRepr(as: Int8.self).scalars, [0, 2, 3, 4])
        if let error = quantizationError({ try q8.intRepr(as: UInt8.self) }) {
            XCTAssertEqual(error, .dtypeMismatch(expected: .quint8, actual: .qint8))
            error.assertInformative(mentions: ["qint8", "quint8", "Int8"])
        }
        XCTAssertNotNil(quantizationError({ try q8.intRepr(as: Int32.self) }))

        let made = try QuantizedTensor(intRepr: try Tensor<UInt8>(shape: [3], scalars: [0, 128, 255]),
                                       scale: 0.5, zeroPoint: 128)
        XCTAssertEqual(made.dtype, .quint8)
        XCTAssertEqual(made.dequantized().scalars, [-64, 0, 63.5])
        let madeSymmetric = try QuantizedTensor(intRepr: Tensor<UInt8>([1]), scale: 1, zeroPoint: 128,
                                                qscheme: .perTensorSymmetric)
        XCTAssertEqual(madeSymmetric.qscheme, .perTensorSymmetric)
        let made32 = try QuantizedTensor(intRepr: Tensor<Int32>([Int32.max, Int32.min]), scale: 1, zeroPoint: 0)
        XCTAssertEqual(made32.dtype, .qint32)
        XCTAssertEqual(made32.dequantized().scalars, [0x1p31, -0x1p31])   // Float(q) rounds, as in PyTorch

        let perChannel = try QuantizedTensor(intRepr: try Tensor<Int8>(shape: [2, 3], scalars: [1, 2, 3, -1, -2, -3]),
                                             scales: [0.5, 2], zeroPoints: [1, -1], axis: -2)
        XCTAssertEqual(perChannel.axis, 0)
        XCTAssertEqual(perChannel.qscheme, .perChannelAffine)
        XCTAssertEqual(perChannel.dequantized().scalars, [0, 0.5, 1, 0, -2, -4])
        XCTAssertEqual(perChannel.description, "QuantizedTensor(intRepr: [[1, 2, 3], [-1, -2, -3]], shape: [2, 3], "
                       + "dtype: qint8, qscheme: per_channel_affine, scales: [0.5, 2.0], zeroPoints: [1, -1], axis: 0)")

        // Equality covers values and every quantization parameter.
        XCTAssertEqual(q8, try x.quantized(scale: 0.5, zeroPoint: 2, dtype: .qint8))
        XCTAssertNotEqual(q8, try x.quantized(scale: 0.5, zeroPoint: 3, dtype: .qint8))
        XCTAssertNotEqual(q8, try x.quantized(scale: 0.25, zeroPoint: 2, dtype: .qint8))
        XCTAssertNotEqual(q8, try x.quantized(scale: 0.5, zeroPoint: 2, dtype: .qint32))
        XCTAssertNotEqual(q8, try x.quantized(scales: [0.5, 0.5], zeroPoints: [2, 2], axis: 0, dtype: .qint8))
    }

    func testSymmetricSchemes() throws {
        let x = Tensor<Float>([-1, 0, 1])
        let qs = try x.quantized(scale: 0.01, zeroPoint: 0, dtype: .qint8, qscheme: .perTensorSymmetric)
        XCTAssertEqual(qs.qscheme, .perTensorSymmetric)
        XCTAssertEqual(qs.intRepr(), [-100, 0, 100])
        let qu = try x.quantized(scale: 0.01, zeroPoint: 128, dtype: .quint8, qscheme: .perTensorSymmetric)
        XCTAssertEqual(qu.intRepr(), [28, 128, 228])
        let pc = try Tensor<Float>(shape: [3, 1], scalars: [-1, 0, 1])
            .quantized(scales: [0.1, 0.2, 0.4], zeroPoints: [0, 0, 0], axis: 0, dtype: .qint32,
                       qscheme: .perChannelSymmetric)
        XCTAssertEqual(pc.qscheme, .perChannelSymmetric)
        XCTAssertEqual(pc.intRepr(), [-10, 0, 2])   // 1 * (1 / 0.4f) rounds to 2.5 in float32, a tie -> 2
    }

    func testDTypeAndSchemeMetadata() {
        XCTAssertEqual(QuantizedDType.quint8.range, 0...255)
        XCTAssertEqual(QuantizedDType.qint8.range, -128...127)
        XCTAssertEqual(QuantizedDType.qint32.range, Int(Int32.min)...Int(Int32.max))
        XCTAssertEqual(QuantizedDType.allCases.map(\.symmetricZeroPoint), [128, 0, 0])
        XCTAssertEqual(QuantizedDType.allCases.map(\.bitWidth), [8, 8, 32])
        XCTAssertEqual(QuantizedDType(rawValue: "qint8"), .qint8)
        XCTAssertEqual(UInt8.quantizedDType, .quint8)
        XCTAssertEqual(Int8.quantizedDType, .qint8)
        XCTAssertEqual(Int32.quantizedDType, .qint32)
        XCTAssertEqual(QScheme.perChannelSymmetric.description, "per_channel_symmetric")
        XCTAssertTrue(QScheme.perChannelAffine.isPerChannel)
        XCTAssertFalse(QScheme.perTensorSymmetric.isPerChannel)
        XCTAssertTrue(QScheme.perTensorSymmetric.isSymmetric)
        XCTAssertEqual([Float.dtypeName, Int32.dtypeName, UInt8.dtypeName, Int8.dtypeName],
                       ["float32", "int32", "uint8", "int8"])
    }
}
