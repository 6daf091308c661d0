import Foundation
import QuantKit
import XCTest

/// Plain-Swift statements of the quantized linear formulas (PyTorch x86 / FBGEMM), independent of the C kernels.
enum LinearReference {
    /// `raw[m][n] = sum_k (x - xzp) * (w[n][k] - wzp[n])`, wrapping mod 2^32.
    static func raw(x: [Int], xZeroPoint: Int, w: [Int], wZeroPoints: [Int], m: Int, n: Int, k: Int) -> [Int32] {
        var out = [Int32](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var acc: Int32 = 0
                for p in 0..<k {
                    let a = Int32(x[i * k + p] - xZeroPoint), b = Int32(w[j * k + p] - wZeroPoints[j])
                    acc = acc &+ a &* b
                }
                out[i * n + j] = acc
            }
        }
        return out
    }

    /// `clamp(nearbyint((Float(raw) + bias_term) * multiplier) + zp, lo, hi)`; separate float operations (Swift
    /// never contracts them into an FMA).
    static func requantize(raw: Int32, xScale: Float, wScale: Float, bias: Float?, perChannel: Bool, outScale: Float,
                           outZeroPoint: Int, relu: Bool, dtype: QuantizedDType) -> Int {
        let actW: Float = xScale * wScale
        let multiplier: Float = actW / outScale
        var biasTerm: Float = 0
        if let bias { biasTerm = perChannel ? bias / actW : bias * Float(1.0 / Double(actW)) }
        let sum: Float = Float(raw) + biasTerm
        let v: Float = sum * multiplier
        let lo = relu ? outZeroPoint : dtype.range.lowerBound, hi = dtype.range.upperBound
        let clamped = min(max(v, Float(lo - outZeroPoint)), Float(hi - outZeroPoint))
        return Int(clamped.rounded(.toNearestOrEven)) + outZeroPoint
    }

    /// ATen `ChooseQuantizationParams(min, max, 0, 255, false, false, reduceRange)`.
    static func dynamicQParams(min minValue: Float, max maxValue: Float, reduceRange: Bool) -> (Float, Int) {
        var qmin = 0, qmax = 255
        if reduceRange { qmin /= 2; qmax /= 2 }
        var lo: Float = 0 < minValue ? 0 : minValue
        var hi: Float = maxValue < 0 ? 0 : maxValue
        var scale = (Double(hi) - Double(lo)) / Double(qmax - qmin)
        if Float(scale) == 0 || (1 / Float(scale)).isInfinite { scale = 0.1 }
        let threshold: Float = 6.1e-5
        if scale < Double(threshold) {
            let original = Float(scale)
            scale = Double(threshold)
            if lo == 0 {
                hi = threshold * Float(qmax - qmin)
            } else if hi == 0 {
                lo = -threshold * Float(qmax - qmin)
            } else {
                let amplifier: Float = threshold / original
                lo *= amplifier
                hi *= amplifier
            }
        }
        let fromMin = Double(qmin) - Double(lo) / scale, fromMax = Double(qmax) - Double(hi) / scale
        let minError = Double(abs(qmin)) - abs(Double(lo) / scale)
        let maxError = Double(abs(qmax)) - abs(Double(hi) / scale)
        let initial = minError < maxError ? fromMin : fromMax
        let zp = initial < Double(qmin) ? qmin : initial > Double(qmax) ? qmax : Int(initial.rounded(.toNearestOrEven))
        return (Float(scale), zp)
    }

    /// Dynamic linear: qparams per tensor (or per row), quantize, `fmaf(Float(raw), xs * ws[n], bias[n])`, ReLU.
    static func dynamic(x: [Float], m: Int, k: Int, w: [Int], wScales: [Float], wZeroPoints: [Int], n: Int,
                        bias: [Float]?, reduceRange: Bool, perRow: Bool, relu: Bool) -> [Float] {
        var params: [(Float, Int)] = []
        if perRow {
            for i in 0..<m {
                let (lo, hi) = Reference.minMax(Array(x[(i * k)..<((i + 1) * k)]), finiteOnly: false)
                params.append(dynamicQParams(min: lo, max: hi, reduceRange: reduceRange))
            }
        } else {
            let (lo, hi) = Reference.minMax(x, finiteOnly: false)
            params = Array(repeating: dynamicQParams(min: lo, max: hi, reduceRange: reduceRange), count: m)
        }
        var y = [Float](repeating: 0, count: m * n)
        for i in 0..<m {
            let (xs, xz) = params[i]
            let q = x[(i * k)..<((i + 1) * k)].map { Reference.quantize($0, scale: xs, zeroPoint: xz, dtype: .quint8) }
            let raw = Self.raw(x: q, xZeroPoint: xz, w: w, wZeroPoints: wZeroPoints, m: 1, n: n, k: k)
            for j in 0..<n {
                let s: Float = xs * wScales[j]
                var v = (bias?[j] ?? 0).addingProduct(Float(raw[j]), s)   // one fused multiply-add
                if relu { v = v > 0 ? v : 0 }
                y[i * n + j] = v
            }
        }
        return y
    }
}

final class QuantizedLinearTests: XCTestCase {
    override func setUp() {
        super.setUp()
        addTeardownBlock {
            try Runtime.setNumberOfThreads(nil)
            try ISAState.restore()
        }
    }

    struct Problem {
        var m: Int, n: Int, k: Int
        var x: [Int], xScale: Float, xZeroPoint: Int, xDType: QuantizedDType
        var w: [Int], wScales: [Float], wZeroPoints: [Int], perChannel: Bool
        var bias: [Float]?

        /// Per-column weight parameters.
        var columnScales: [Float] { perChannel ? wScales : Array(repeating: wScales[0], count: n) }
        var columnZeroPoints: [Int] { perChannel ? wZeroPoints : Array(repeating: wZeroPoints[0], count: n) }

        func packed() throws -> PackedLinearWeight {
            let values = try Tensor(shape: [n, k], scalars: w.map { Int8($0) })
            let weight = perChannel
                ? try QuantizedTensor(intRepr: values, scales: wScales, zeroPoints: wZeroPoints, axis: 0)
                : try QuantizedTensor(intRepr: values, scale: wScales[0], zeroPoint: wZeroPoints[0])
            return try PackedLinearWeight(weight: weight, bias: bias.map { Tensor($0) })
        }

        func input(shape: [Int]? = nil) throws -> QuantizedTensor {
            let shape = shape ?? [m, k]
            switch xDType {
            case .quint8:
                return try QuantizedTensor(intRepr: try Tensor(shape: shape, scalars: x.map { UInt8($0) }),
                                           scale: xScale, zeroPoint: xZeroPoint)
            default:
                return try QuantizedTensor(intRepr: try Tensor(shape: shape, scalars: x.map { Int8($0) }),
                                           scale: xScale, zeroPoint: xZeroPoint)
            }
        }

        func expected(outScale: Float, outZeroPoint: Int, relu: Bool) -> [Int] {
            let raw = LinearReference.raw(x: x, xZeroPoint: xZeroPoint, w: w, wZeroPoints: columnZeroPoints,
                                          m: m, n: n, k: k)
            return raw.indices.map { index in
                let j = index % n
                return LinearReference.requantize(raw: raw[index], xScale: xScale, wScale: columnScales[j],
                                                  bias: bias?[j], perChannel: perChannel, outScale: outScale,
                                                  outZeroPoint: outZeroPoint, relu: relu, dtype: xDType)
            }
        }
    }

    static func randomProblem(m: Int, n: Int, k: Int, perChannel: Bool, affineWeights: Bool, xDType: QuantizedDType,
                              bias: Bool, seed: UInt64) -> Problem {
        var g = SplitMix64(seed: seed)
        func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &g) }
        let xRange = xDType.range
        let x = (0..<(m * k)).map { _ in int(xRange) }
        let w = (0..<(n * k)).map { _ in int(-128...127) }
        let channels = perChannel ? n : 1
        let wScales = (0..<channels).map { _ in Float.random(in: 0.001...0.02, using: &g) }
        let wZeroPoints = (0..<channels).map { _ in affineWeights ? int(-20...20) : 0 }
        let biasValues = bias ? (0..<n).map { _ in Float.random(in: -3...3, using: &g) } : nil
        return Problem(m: m, n: n, k: k, x: x, xScale: Float.random(in: 0.01...0.05, using: &g),
                       xZeroPoint: int(xDType == .quint8 ? 0...255 : -20...20), xDType: xDType, w: w,
                       wScales: wScales, wZeroPoints: wZeroPoints, perChannel: perChannel, bias: biasValues)
    }

    // MARK: Packed weights

    func testPackedLinearWeightProperties() throws {
        let p = Self.randomProblem(m: 2, n: 5, k: 7, perChannel: true, affineWeights: true, xDType: .quint8,
                                   bias: true, seed: 1)
        let packed = try p.packed()
        XCTAssertEqual(packed.outFeatures, 5)
        XCTAssertEqual(packed.inFeatures, 7)
        XCTAssertEqual(packed.weight.shape, [5, 7])
        XCTAssertEqual(packed.weight.intRepr().map(Int.init), p.w)
        XCTAssertEqual(packed.bias?.scalars, p.bias)
        XCTAssertTrue(packed.kernelName.hasPrefix("qk_qu8_gemm_ukernel_"), packed.kernelName)
        XCTAssertTrue(packed.sevenBitKernelName.hasPrefix("qk_qu8_gemm_ukernel_"), packed.sevenBitKernelName)
        XCTAssertGreaterThanOrEqual(packed.packedByteCount, 5 * 7)

        // Symmetric per-tensor weight, no bias; an empty weight is fine too.
        let symmetric = try QuantizedTensor(intRepr: try Tensor(shape: [3, 4], scalars: [Int8](repeating: 1, count: 12)),
                                            scale: 0.5, zeroPoint: 0, qscheme: .perTensorSymmetric)
        let packedSymmetric = try PackedLinearWeight(weight: symmetric)
        XCTAssertNil(packedSymmetric.bias)
        let empty = try PackedLinearWeight(weight: try QuantizedTensor(
            intRepr: try Tensor<Int8>(shape: [0, 4], scalars: []), scales: [], zeroPoints: [], axis: 0))
        XCTAssertEqual(empty.outFeatures, 0)
        let x = try QuantizedTensor(intRepr: try Tensor(shape: [2, 4], scalars: [UInt8](repeating: 3, count: 8)),
                                    scale: 0.25, zeroPoint: 1)
        let y = try quantizedLinear(x, packedSymmetric, scale: 1, zeroPoint: 0)
        XCTAssertEqual(y.shape, [2, 3])
        XCTAssertEqual(y.intRepr(), [Int32](repeating: 1, count: 6))   // 4 * 2 * 1 * 0.25 * 0.5 = 1
        XCTAssertEqual(try quantizedLinear(x, empty.withK(4), scale: 1, zeroPoint: 0).shape, [2, 0])
    }

    func testPackedLinearWeightErrors() throws {
        let u8 = try QuantizedTensor(intRepr: try Tensor(shape: [2, 3], scalars: [UInt8](repeating: 1, count: 6)),
                                     scale: 0.1, zeroPoint: 0)
        quantizationError { try PackedLinearWeight(weight: u8) }?.assertInformative(mentions: ["qint8", "quint8"])
        let oneD = try QuantizedTensor(intRepr: Tensor<Int8>([1, 2, 3]), scale: 0.1, zeroPoint: 0)
        quantizationError { try PackedLinearWeight(weight: oneD) }?.assertInformative(mentions: ["2-D", "[3]"])
        let values = try Tensor(shape: [2, 3], scalars: [Int8](repeating: 1, count: 6))
        let axis1 = try QuantizedTensor(intRepr: values, scales: [0.1, 0.2, 0.3], zeroPoints: [0, 0, 0], axis: 1)
        quantizationError { try PackedLinearWeight(weight: axis1) }?.assertInformative(mentions: ["axis 0", "axis 1"])
        let weight = try QuantizedTensor(intRepr: values, scale: 0.1, zeroPoint: 0)
        quantizationError { try PackedLinearWeight(weight: weight, bias: Tensor<Float>([1, 2, 3])) }?
            .assertInformative(mentions: ["bias", "[2]", "[3]"])
        XCTAssertNoThrow(try PackedLinearWeight(weight: weight, bias: Tensor<Float>([1, 2])))
    }

    // MARK: Static linear

    func testStaticLinearMatchesReference() throws {
        var seed: UInt64 = 100
        for m in [1, 2, 5, 13, 20] {
            for (n, k) in [(1, 1), (3, 5), (9, 17), (17, 33), (31, 7)] {
                for perChannel in [false, true] {
                    for xDType in [QuantizedDType.quint8, .qint8] {
                        seed += 1
                        let p = Self.randomProblem(m: m, n: n, k: k, perChannel: perChannel,
                                                   affineWeights: seed % 3 == 0, xDType: xDType,
                                                   bias: seed % 4 != 0, seed: seed)
                        let packed = try p.packed()
                        let x = try p.input()
                        for relu in [false, true] {
                            let outScale: Float = 0.05 + Float(seed % 7) * 0.03
                            let outZeroPoint = xDType == .quint8 ? Int(seed % 200) : Int(seed % 40) - 20
                            let y = try quantizedLinear(x, packed, scale: outScale, zeroPoint: outZeroPoint,
                                                        relu: relu)
                            XCTAssertEqual(y.dtype, xDType)
                            XCTAssertEqual(y.shape, [m, n])
                            XCTAssertEqual(y.scale, outScale)
                            XCTAssertEqual(y.zeroPoint, outZeroPoint)
                            XCTAssertEqual(y.intRepr().map(Int.init),
                                           p.expected(outScale: outScale, outZeroPoint: outZeroPoint, relu: relu),
                                           "m \(m) n \(n) k \(k) perChannel \(perChannel) \(xDType) relu \(relu)")
                        }
                        let raw = try quantizedLinearAccumulators(x, packed)
                        XCTAssertEqual(raw.scalars, LinearReference.raw(
                            x: p.x, xZeroPoint: p.xZeroPoint, w: p.w, wZeroPoints: p.columnZeroPoints, m: m, n: n,
                            k: k))
                    }
                }
            }
        }
    }

    func testStaticLinearLeadingDimensions() throws {
        let p = Self.randomProblem(m: 6, n: 5, k: 9, perChannel: true, affineWeights: false, xDType: .quint8,
                                   bias: true, seed: 7)
        let packed = try p.packed()
        let flat = try quantizedLinear(try p.input(), packed, scale: 0.1, zeroPoint: 3)
        let batched = try quantizedLinear(try p.input(shape: [2, 3, 9]), packed, scale: 0.1, zeroPoint: 3)
        XCTAssertEqual(batched.shape, [2, 3, 5])
        XCTAssertEqual(batched.intRepr(), flat.intRepr())
        let vector = try quantizedLinear(try p.input().reshapedRow(0, k: 9), packed,
                                         scale: 0.1, zeroPoint: 3)
        XCTAssertEqual(vector.shape, [5])
        XCTAssertEqual(vector.intRepr(), Array(flat.intRepr()[0..<5]))
    }

    func testStaticLinearErrors() throws {
        let p = Self.randomProblem(m: 2, n: 3, k: 4, perChannel: false, affineWeights: false, xDType: .quint8,
                                   bias: false, seed: 9)
        let packed = try p.packed()
        let x = try p.input()
        let wrongK = try QuantizedTensor(intRepr: try Tensor(shape: [2, 5], scalars: [UInt8](repeating: 0, count: 10)),
                                         scale: 0.1, zeroPoint: 0)
        quantizationError { try quantizedLinear(wrongK, packed, scale: 0.1, zeroPoint: 0) }?
            .assertInformative(mentions: ["inFeatures 4", "[2, 5]"])
        let scalar = try QuantizedTensor(intRepr: try Tensor(shape: [], scalars: [UInt8(1)]), scale: 0.1, zeroPoint: 0)
        quantizationError { try quantizedLinear(scalar, packed, scale: 0.1, zeroPoint: 0) }?
            .assertInformative(mentions: ["rank-0"])
        let s32 = try QuantizedTensor(intRepr: try Tensor(shape: [2, 4], scalars: [Int32](repeating: 0, count: 8)),
                                      scale: 0.1, zeroPoint: 0)
        quantizationError { try quantizedLinear(s32, packed, scale: 0.1, zeroPoint: 0) }?
            .assertInformative(mentions: ["qint32"])
        let perChannel = try Tensor<Float>(shape: [2, 4], scalars: [Float](repeating: 0.5, count: 8))
            .quantized(scales: [0.1, 0.2], zeroPoints: [0, 0], axis: 0, dtype: .quint8)
        quantizationError { try quantizedLinear(perChannel, packed, scale: 0.1, zeroPoint: 0) }?
            .assertInformative(mentions: ["per tensor", "per_channel_affine"])
        XCTAssertEqual(quantizationError { try quantizedLinear(x, packed, scale: 0, zeroPoint: 0) },
                       .invalidScale(0, channel: nil))
        XCTAssertEqual(quantizationError { try quantizedLinear(x, packed, scale: 0.1, zeroPoint: 256) },
                       .zeroPointOutOfRange(256, dtype: .quint8, channel: nil))
        XCTAssertThrowsError(try quantizedLinearAccumulators(wrongK, packed))
        XCTAssertThrowsError(try dynamicQuantizedLinear(try Tensor(zeros: [2, 5]), packed))
    }

    // MARK: Dynamic linear

    static func randomFloats(_ count: Int, magnitude: Float, seed: UInt64) -> [Float] {
        var g = SplitMix64(seed: seed)
        return (0..<count).map { _ in Float.random(in: -magnitude...magnitude, using: &g) }
    }

    func testDynamicLinearMatchesReference() throws {
        var seed: UInt64 = 500
        for (m, n, k) in [(1, 1, 1), (3, 5, 17), (7, 16, 33), (20, 9, 31), (4, 33, 64)] {
            for perChannel in [false, true] {
                seed += 1
                let p = Self.randomProblem(m: m, n: n, k: k, perChannel: perChannel, affineWeights: seed % 2 == 0,
                                           xDType: .quint8, bias: seed % 3 != 0, seed: seed)
                let packed = try p.packed()
                var values = Self.randomFloats(m * k, magnitude: 4, seed: seed)
                if m > 2 { for i in 0..<k { values[2 * k + i] *= 30 } }   // an outlier row
                let x = try Tensor(shape: [m, k], scalars: values)
                for reduceRange in [true, false] {
                    for perRow in [false, true] {
                        for relu in [false, true] {
                            let y = try dynamicQuantizedLinear(x, packed, reduceRange: reduceRange,
                                                               perRowActivations: perRow, relu: relu)
                            XCTAssertEqual(y.shape, [m, n])
                            let expected = LinearReference.dynamic(
                                x: values, m: m, k: k, w: p.w, wScales: p.columnScales,
                                wZeroPoints: p.columnZeroPoints, n: n, bias: p.bias, reduceRange: reduceRange,
                                perRow: perRow, relu: relu)
                            XCTAssertNil(firstBitDifference(y.scalars, expected),
                                         "m \(m) n \(n) k \(k) reduceRange \(reduceRange) perRow \(perRow) "
                                         + "relu \(relu): \(y.scalars.prefix(4)) vs \(expected.prefix(4))")
                        }
                    }
                }
            }
        }
    }

    func testDynamicQuantizationParameters() throws {
        func params(_ values: [Float], _ reduceRange: Bool = true) throws -> (Float, Int) {
            let r = try Tensor(values).dynamicQuantizationParameters(reduceRange: reduceRange)
            return (r.scale, r.zeroPoint)
        }
        XCTAssertTrue(try params([0, 0, 0]) == (0.1, 0))                 // all zeros: PyTorch's (0.1, 0)
        XCTAssertTrue(try params([]) == (0.1, 0))
        XCTAssertTrue(try params([.nan]) == (0.1, 0))
        XCTAssertEqual(try params([0, 1e-6]).0, 6.1e-5)                  // tiny ranges: scale 6.1e-5
        XCTAssertEqual(try params([-1e-6, 0]).1, 127)
        for (values, reduceRange) in [([Float(-1), 3], true), ([-1, 3], false), ([2, 5], true), ([-7, -2], false),
                                      ([-0.3, 1e-7], true), ([-21.074352, 2.8644698], true)] {
            let (lo, hi) = Reference.minMax(values, finiteOnly: false)
            let expected = LinearReference.dynamicQParams(min: lo, max: hi, reduceRange: reduceRange)
            let actual = try params(values, reduceRange)
            XCTAssertTrue(actual == expected, "\(values): \(actual) vs \(expected)")
            XCTAssertLessThanOrEqual(actual.1, reduceRange ? 127 : 255)
        }
        XCTAssertThrowsError(try params([1, .infinity]))
        let p = Self.randomProblem(m: 1, n: 2, k: 2, perChannel: false, affineWeights: false, xDType: .quint8,
                                   bias: false, seed: 3)
        for perRow in [false, true] {
            let error = quantizationError {
                try dynamicQuantizedLinear(try Tensor(shape: [1, 2], scalars: [1, -.infinity]), try p.packed(),
                                           perRowActivations: perRow)
            }
            error?.assertInformative(mentions: ["infinity"])
        }
    }

    /// Per-row scales keep the ordinary rows accurate when one row is 1000x larger; one per-tensor scale does not.
    func testPerRowActivationsKeepOutlierRowsAccurate() throws {
        let (m, n, k) = (8, 16, 64)
        let p = Self.randomProblem(m: m, n: n, k: k, perChannel: true, affineWeights: false, xDType: .quint8,
                                   bias: false, seed: 77)
        let packed = try p.packed()
        var values = Self.randomFloats(m * k, magnitude: 1, seed: 78)
        for i in 0..<k { values[3 * k + i] *= 1000 }
        let x = try Tensor(shape: [m, k], scalars: values)
        let weights = packed.weight.dequantized().scalars
        func exact(_ i: Int, _ j: Int) -> Double {
            (0..<k).reduce(0.0) { $0 + Double(values[i * k + $1]) * Double(weights[j * k + $1]) }
        }
        func relativeError(_ y: Tensor<Float>, rows: [Int]) -> Double {
            var error = 0.0, norm = 0.0
            for i in rows {
                for j in 0..<n {
                    let e = exact(i, j)
                    error += (Double(y[i, j]) - e) * (Double(y[i, j]) - e)
                    norm += e * e
                }
            }
            return (error / norm).squareRoot()
        }
        let ordinary = [0, 1, 2, 4, 5, 6, 7]
        let perTensor = try dynamicQuantizedLinear(x, packed)
        let perRow = try dynamicQuantizedLinear(x, packed, perRowActivations: true)
        let tensorError = relativeError(perTensor, rows: ordinary), rowError = relativeError(perRow, rows: ordinary)
        print("outlier row x1000: relative error of the other rows, per tensor \(tensorError), per row \(rowError)")
        XCTAssertLessThan(rowError, 0.02)
        XCTAssertGreaterThan(tensorError, 0.3)
        XCTAssertLessThan(relativeError(perRow, rows: [3]), 0.02)   // the outlier row itself stays accurate
    }

    // MARK: Threads and ISA levels

    /// Big enough for the GEMM to tile (M * N * K > 2^20) and for the dynamic passes to use several row tiles.
    static func runAll(_ p: Problem, _ packed: PackedLinearWeight, floats: Tensor<Float>) throws -> [[UInt8]] {
        func bytes<T>(_ t: Tensor<T>) -> [UInt8] { t.withUnsafeBufferPointer { Array(UnsafeRawBufferPointer($0)) } }
        var results: [[UInt8]] = []
        let x = try p.input()
        for relu in [false, true] {
            let y = try quantizedLinear(x, packed, scale: 0.37, zeroPoint: 100, relu: relu)
            results.append(try intReprBytes(y))
        }
        results.append(bytes(try quantizedLinearAccumulators(x, packed)))
        let seven = try QuantizedTensor(intRepr: try Tensor(shape: [p.m, p.k], scalars: p.x.map { UInt8($0 / 2) }),
                                        scale: p.xScale, zeroPoint: 64)
        results.append(try intReprBytes(try quantizedLinear(seven, packed, scale: 0.2, zeroPoint: 7)))
        for reduceRange in [true, false] {
            for perRow in [false, true] {
                results.append(bytes(try dynamicQuantizedLinear(floats, packed, reduceRange: reduceRange,
                                                                perRowActivations: perRow, relu: perRow)))
            }
        }
        return results
    }

    static let bigProblem = randomProblem(m: 70, n: 97, k: 203, perChannel: true, affineWeights: true, xDType: .quint8,
                                          bias: true, seed: 4242)
    static let bigFloats = try! Tensor(shape: [70, 203], scalars: randomFloats(70 * 203, magnitude: 3, seed: 4243))

    func testOneAndTwoThreadsAreBitIdentical() throws {
        let packed = try Self.bigProblem.packed()
        try Runtime.setNumberOfThreads(1)
        let one = try Self.runAll(Self.bigProblem, packed, floats: Self.bigFloats)
        try Runtime.setNumberOfThreads(2)
        let two = try Self.runAll(Self.bigProblem, packed, floats: Self.bigFloats)
        XCTAssertEqual(one.count, two.count)
        for (index, (a, b)) in zip(one, two).enumerated() { XCTAssertTrue(a == b, "result \(index) differs") }
    }

    func testEverySupportedISAMatchesScalar() throws {
        let p = Self.bigProblem
        try Runtime.setISA("scalar")
        let scalarPacked = try p.packed()
        XCTAssertTrue(scalarPacked.kernelName.contains("scalar"), scalarPacked.kernelName)
        let reference = try Self.runAll(p, scalarPacked, floats: Self.bigFloats)
        // The static results also equal the plain-Swift formula.
        XCTAssertEqual(try intReprBytes(try quantizedLinear(try p.input(), scalarPacked, scale: 0.37, zeroPoint: 100)),
                       p.expected(outScale: 0.37, outZeroPoint: 100, relu: false).map { UInt8($0) })
        for isa in Runtime.supportedISAs where isa != "scalar" {
            try Runtime.setISA(isa)
            let packed = try p.packed()
            let results = try Self.runAll(p, packed, floats: Self.bigFloats)
            for (index, (a, b)) in zip(results, reference).enumerated() {
                XCTAssertTrue(a == b, "\(isa) (\(packed.kernelName) / \(packed.sevenBitKernelName)): result \(index) "
                              + "differs from scalar")
            }
            // Weights packed for another level still run correctly (on the kernels they were packed for).
            let crossed = try Self.runAll(p, scalarPacked, floats: Self.bigFloats)
            XCTAssertTrue(crossed == reference, "\(isa): scalar-packed weights differ")
        }
    }

    /// Concurrent callers sharing one PackedLinearWeight (it is Sendable) get the single-caller results.
    func testConcurrentUseOfOnePackedWeight() throws {
        let p = Self.randomProblem(m: 9, n: 21, k: 40, perChannel: false, affineWeights: true, xDType: .quint8,
                                   bias: true, seed: 31)
        let packed = try p.packed()
        let x = try p.input()
        let expected = try quantizedLinear(x, packed, scale: 0.3, zeroPoint: 5)
        final class Counter: @unchecked Sendable {   // guarded by `lock`
            private let lock = NSLock()
            private var count = 0
            func add() { lock.lock(); count += 1; lock.unlock() }
            var value: Int { lock.lock(); defer { lock.unlock() }; return count }
        }
        let failures = Counter()
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            for _ in 0..<20 where (try? quantizedLinear(x, packed, scale: 0.3, zeroPoint: 5)) != expected {
                failures.add()
            }
        }
        XCTAssertEqual(failures.value, 0)
    }
}

// Small helpers to keep the tests readable.
extension QuantizedTensor {
    /// Row `row` of the `[-1, k]` view as a 1-D tensor.
    fileprivate func reshapedRow(_ row: Int, k: Int) throws -> QuantizedTensor {
        let values = Array(try intRepr(as: UInt8.self).scalars[(row * k)..<((row + 1) * k)])
        return try QuantizedTensor(intRepr: Tensor(values), scale: scale, zeroPoint: zeroPoint)
    }
}

extension PackedLinearWeight {
    /// Test helper: asserts the weight's inFeatures and returns it.
    fileprivate func withK(_ k: Int) -> PackedLinearWeight {
        XCTAssertEqual(inFeatures, k)
        return self
    }
}
