import QuantKit
import XCTest

/// Every invalid argument throws a QuantizationError that names the problem and the expectation; nothing crashes.
final class ValidationTests: XCTestCase {
    let x = try! Tensor<Float>(shape: [2, 3], scalars: [0, 1, 2, 3, 4, 5])

    func testInvalidScales() {
        let subnormalTooSmall = Float(bitPattern: 0x0008_0000)   // 2^-130: 1 / scale overflows to infinity
        let cases: [Float] = [0, -0.0, -1, .nan, .infinity, -.infinity, subnormalTooSmall, .leastNonzeroMagnitude,
                              -.leastNormalMagnitude]
        for scale in cases {
            for dtype in QuantizedDType.allCases {
                guard let error = quantizationError({ try x.quantized(scale: scale, zeroPoint: 0, dtype: dtype) })
                else { continue }
                guard case .invalidScale(let reported, let channel) = error else {
                    XCTFail("\(scale): \(error)")
                    continue
                }
                XCTAssertEqual(reported.bitPattern, scale.bitPattern)
                XCTAssertNil(channel)
                error.assertInformative(mentions: ["scale", "\(scale)", "finite", "> 0"])
                XCTAssertNotNil(quantizationError({
                    try QuantizedTensor(intRepr: Tensor<Int8>([1]), scale: scale, zeroPoint: 0)
                }))
            }
        }
        // The smallest accepted scales: subnormals whose reciprocal is still finite.
        XCTAssertNoThrow(try x.quantized(scale: Float(bitPattern: 0x0024_0000), zeroPoint: 0, dtype: .qint8))
        XCTAssertNoThrow(try x.quantized(scale: .leastNormalMagnitude, zeroPoint: 0, dtype: .qint32))
        XCTAssertNoThrow(try x.quantized(scale: .greatestFiniteMagnitude, zeroPoint: 0, dtype: .quint8))

        if let error = quantizationError({
            try x.quantized(scales: [1, 0.5, -2], zeroPoints: [0, 0, 0], axis: 1, dtype: .qint8)
        }) {
            XCTAssertEqual(error, .invalidScale(-2, channel: 2))
            error.assertInformative(mentions: ["channel 2", "-2.0", "> 0"])
        }
        if let error = quantizationError({
            try x.quantized(scales: [.nan, 1], zeroPoints: [0, 0], axis: 0, dtype: .quint8)
        }) {
            guard case .invalidScale(let s, channel: 0) = error, s.isNaN else { return XCTFail("\(error)") }
            error.assertInformative(mentions: ["channel 0", "nan"])
        }
    }

    func testZeroPointOutOfRange() {
        let cases: [(QuantizedDType, Int)] = [
            (.quint8, -1), (.quint8, 256), (.qint8, -129), (.qint8, 128), (.qint8, 255),
            (.qint32, Int(Int32.max) + 1), (.qint32, Int(Int32.min) - 1), (.qint32, .max),
        ]
        for (dtype, zeroPoint) in cases {
            guard let error = quantizationError({ try x.quantized(scale: 1, zeroPoint: zeroPoint, dtype: dtype) })
            else { continue }
            XCTAssertEqual(error, .zeroPointOutOfRange(zeroPoint, dtype: dtype, channel: nil))
            error.assertInformative(mentions: ["\(zeroPoint)", "\(dtype)", "\(dtype.range.lowerBound)...\(dtype.range.upperBound)"])
        }
        for (dtype, zeroPoint) in [(QuantizedDType.quint8, 0), (.quint8, 255), (.qint8, -128), (.qint8, 127),
                                   (.qint32, Int(Int32.min)), (.qint32, Int(Int32.max))] {
            XCTAssertNoThrow(try x.quantized(scale: 1, zeroPoint: zeroPoint, dtype: dtype))
        }
        if let error = quantizationError({
            try x.quantized(scales: [1, 1, 1], zeroPoints: [0, 300, 0], axis: 1, dtype: .quint8)
        }) {
            XCTAssertEqual(error, .zeroPointOutOfRange(300, dtype: .quint8, channel: 1))
            error.assertInformative(mentions: ["channel 1", "300", "0...255"])
        }
        XCTAssertEqual(quantizationError({
            try QuantizedTensor(intRepr: Tensor<UInt8>([1]), scale: 1, zeroPoint: -1)
        }), .zeroPointOutOfRange(-1, dtype: .quint8, channel: nil))
        XCTAssertEqual(quantizationError({
            try QuantizedTensor(intRepr: Tensor<Int8>([1, 2]), scales: [1, 1], zeroPoints: [0, 200], axis: 0)
        }), .zeroPointOutOfRange(200, dtype: .qint8, channel: 1))
    }

    func testAxisOutOfRange() {
        for axis in [2, 3, -3, -100, .max, .min] {
            guard let error = quantizationError({
                try x.quantized(scales: [1, 1], zeroPoints: [0, 0], axis: axis, dtype: .qint8)
            }) else { continue }
            XCTAssertEqual(error, .axisOutOfRange(axis, rank: 2))
            error.assertInformative(mentions: ["\(axis)", "rank-2", "-2...1"])
        }
        let scalar = try! Tensor<Float>(shape: [], scalars: [1])
        if let error = quantizationError({ try scalar.quantized(scales: [1], zeroPoints: [0], axis: 0, dtype: .qint8) }) {
            XCTAssertEqual(error, .axisOutOfRange(0, rank: 0))
            error.assertInformative(mentions: ["rank-0", "rank >= 1"])
        }
        XCTAssertEqual(quantizationError({
            try QuantizedTensor(intRepr: Tensor<Int8>([1, 2]), scales: [1, 1], zeroPoints: [0, 0], axis: 1)
        }), .axisOutOfRange(1, rank: 1))
    }

    func testChannelCountMismatch() {
        let cases: [([Float], [Int], Int)] = [([1, 1], [0, 0], 1), ([1, 1, 1], [0, 0], 1), ([1, 1], [0, 0, 0], 0),
                                              ([], [], 0), ([1, 1, 1, 1], [0, 0, 0, 0], -1)]
        for (scales, zeroPoints, axis) in cases {
            guard let error = quantizationError({
                try x.quantized(scales: scales, zeroPoints: zeroPoints, axis: axis, dtype: .quint8)
            }) else { continue }
            let normalized = axis < 0 ? axis + 2 : axis
            XCTAssertEqual(error, .channelCountMismatch(scales: scales.count, zeroPoints: zeroPoints.count,
                                                        channels: x.shape[normalized], axis: normalized))
            error.assertInformative(mentions: ["\(x.shape[normalized]) channels", "\(scales.count) scales",
                                               "\(zeroPoints.count) zero points", "expected"])
        }
    }

    func testShapeMismatch() {
        XCTAssertEqual(quantizationError({ try Tensor<UInt8>(shape: [3, 3], scalars: [1, 2]) }),
                       .shapeMismatch(shape: [3, 3], count: 2))
        XCTAssertEqual(quantizationError({ try x.reshaped(to: [7]) }), .shapeMismatch(shape: [7], count: 6))
        XCTAssertEqual(quantizationError({ try Tensor<Float>(shape: [], scalars: []) }),
                       .shapeMismatch(shape: [], count: 0))
    }

    func testSymmetricZeroPointAndSchemeMismatch() {
        if let error = quantizationError({
            try x.quantized(scale: 1, zeroPoint: 3, dtype: .qint8, qscheme: .perTensorSymmetric)
        }) {
            XCTAssertEqual(error, .symmetricZeroPoint(3, expected: 0, dtype: .qint8, channel: nil))
            error.assertInformative(mentions: ["symmetric", "must be 0", "got 3"])
        }
        XCTAssertEqual(quantizationError({
            try x.quantized(scale: 1, zeroPoint: 0, dtype: .quint8, qscheme: .perTensorSymmetric)
        }), .symmetricZeroPoint(0, expected: 128, dtype: .quint8, channel: nil))
        XCTAssertEqual(quantizationError({
            try x.quantized(scales: [1, 1], zeroPoints: [0, 1], axis: 0, dtype: .qint32, qscheme: .perChannelSymmetric)
        }), .symmetricZeroPoint(1, expected: 0, dtype: .qint32, channel: 1))
        if let error = quantizationError({
            try x.quantized(scale: 1, zeroPoint: 0, dtype: .qint8, qscheme: .perChannelAffine)
        }) {
            guard case .qschemeMismatch(.perChannelAffine, _) = error else { return XCTFail("\(error)") }
            error.assertInformative(mentions: ["per_channel_affine", "expected per_tensor"])
        }
        if let error = quantizationError({
            try x.quantized(scales: [1, 1], zeroPoints: [0, 0], axis: 0, dtype: .qint8, qscheme: .perTensorAffine)
        }) {
            guard case .qschemeMismatch(.perTensorAffine, _) = error else { return XCTFail("\(error)") }
            error.assertInformative(mentions: ["per_tensor_affine", "expected per_channel"])
        }
    }

    func testRuntimeArgumentErrors() {
        for count in [0, -1, Runtime.maxNumberOfThreads + 1, .max] {
            guard let error = quantizationError({ try Runtime.setNumberOfThreads(count) }) else { continue }
            XCTAssertEqual(error, .invalidThreadCount(count, maximum: Runtime.maxNumberOfThreads))
            error.assertInformative(mentions: ["\(count)", "1...\(Runtime.maxNumberOfThreads)"])
        }
        if let error = quantizationError({ try Runtime.setISA("nonsense") }) {
            XCTAssertEqual(error, .unknownISA("nonsense", known: Runtime.knownISAs))
            error.assertInformative(mentions: ["nonsense", "scalar", "avx2", "neon"])
        }
    }
}
