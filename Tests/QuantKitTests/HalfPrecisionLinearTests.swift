import Foundation
import QuantKit
import XCTest

/// Plain-Swift statements of the half-precision linear numerics, independent of the C kernels (and of `Float16`,
/// which macOS on x86_64 lacks).
enum HalfReference {
    /// fp32 -> fp16 -> fp32, round half to even, subnormals kept, beyond the range infinity, NaN kept.
    static func float16(_ x: Float) -> Float {
        if x.isNaN || x == 0 { return x }
        if abs(x) >= 65520 { return x < 0 ? -.infinity : .infinity }   // 65504 + half an ulp (32) ties to 65536
        let exponent = max(Int(abs(x).exponent), -14)                   // fp16 subnormals share 2^-14's ulp
        let ulp = Float(sign: .plus, exponent: exponent - 10, significand: 1)
        return (x / ulp).rounded(.toNearestOrEven) * ulp                // both steps exact: scaling by 2^e
    }

    /// PyTorch's fp16 weight rule: `|x| > 65504` (infinities included) saturates to ±65504, then rounds.
    static func float16Saturated(_ x: Float) -> Float {
        if abs(x) > 65504 { return x < 0 ? -65504 : 65504 }
        return float16(x)
    }

    /// fp32 -> bf16 -> fp32, round half to even on the bit pattern; NaN stays NaN with the quiet bit set.
    static func bfloat16(_ x: Float) -> Float {
        let bits = x.bitPattern
        if x.isNaN { return Float(bitPattern: (bits | 0x0040_0000) & 0xFFFF_0000) }
        let rounded = bits &+ 0x7FFF &+ ((bits >> 16) & 1)
        return Float(bitPattern: rounded & 0xFFFF_0000)
    }

    /// The weight rounding of a precision.
    static func roundWeight(_ x: Float, _ precision: HalfPrecision) -> Float {
        precision == .float16 ? float16Saturated(x) : bfloat16(x)
    }

    /// Exact (double) `y = x wᵀ + bias` from the rounded values (activations rounded to bf16 for `.bfloat16`), and
    /// the bound the kernels promise: `(K + 2) * 2^-23 * (sum |x w| + |bias|)` (ReLU keeps it: it is 1-Lipschitz).
    static func linear(x: [Float], m: Int, k: Int, w: [Float], n: Int, bias: [Float]?, precision: HalfPrecision,
                       relu: Bool) -> (y: [Double], bound: [Double]) {
        let a = precision == .bfloat16 ? x.map(bfloat16) : x
        let wr = w.map { roundWeight($0, precision) }
        var y = [Double](repeating: 0, count: m * n), bound = y
        for i in 0..<m {
            for j in 0..<n {
                var sum = Double(bias?[j] ?? 0), magnitude = abs(sum)
                for p in 0..<k {
                    let product = Double(a[i * k + p]) * Double(wr[j * k + p])
                    sum += product
                    magnitude += abs(product)
                }
                y[i * n + j] = relu && sum < 0 ? 0 : sum
                bound[i * n + j] = Double(k + 2) * 0x1p-23 * magnitude
            }
        }
        return (y, bound)
    }

    /// The first output outside `bound * slack` of the reference, described; nil when all are within.
    static func firstViolation(_ actual: [Float], _ reference: (y: [Double], bound: [Double]), slack: Double = 1)
        -> String?
    {
        guard actual.count == reference.y.count else { return "\(actual.count) outputs, expected \(reference.y.count)" }
        for i in actual.indices where !(abs(Double(actual[i]) - reference.y[i]) <= reference.bound[i] * slack) {
            return "output \(i): \(actual[i]), exact \(reference.y[i]), bound \(reference.bound[i] * slack)"
        }
        return nil
    }
}

final class HalfPrecisionLinearTests: XCTestCase {
    override func setUp() {
        super.setUp()
        addTeardownBlock {
            try Runtime.setNumberOfThreads(nil)
            try ISAState.restore()
        }
    }

    struct Problem {
        var m: Int, n: Int, k: Int
        var x: [Float], w: [Float], bias: [Float]?

        init(m: Int, n: Int, k: Int, x: [Float], w: [Float], bias: [Float]?) {
            (self.m, self.n, self.k, self.x, self.w, self.bias) = (m, n, k, x, w, bias)
        }

        init(m: Int, n: Int, k: Int, bias: Bool = true, seed: UInt64) {
            (self.m, self.n, self.k) = (m, n, k)
            x = TestData.uniform(count: m * k, magnitude: 4, seed: seed)
            w = TestData.uniform(count: n * k, magnitude: 1, seed: seed &+ 1)
            self.bias = bias ? TestData.uniform(count: n, magnitude: 2, seed: seed &+ 2) : nil
        }

        func packed(_ precision: HalfPrecision) throws -> PackedHalfLinearWeight {
            try PackedHalfLinearWeight(weight: try Tensor(shape: [n, k], scalars: w), bias: bias.map { Tensor($0) },
                                       precision: precision)
        }

        var input: Tensor<Float> { get throws { try Tensor(shape: [m, k], scalars: x) } }

        func reference(_ precision: HalfPrecision, relu: Bool = false) -> (y: [Double], bound: [Double]) {
            HalfReference.linear(x: x, m: m, k: k, w: w, n: n, bias: bias, precision: precision, relu: relu)
        }
    }

    // MARK: Packed weights

    func testPackedHalfLinearWeightProperties() throws {
        let p = Problem(m: 2, n: 5, k: 7, seed: 1)
        for precision in HalfPrecision.allCases {
            let packed = try p.packed(precision)
            XCTAssertEqual(packed.precision, precision)
            XCTAssertEqual(packed.outFeatures, 5)
            XCTAssertEqual(packed.inFeatures, 7)
            XCTAssertEqual(packed.saturatedCount, 0)
            XCTAssertEqual(packed.bias?.scalars, p.bias)
            let prefix = precision == .float16 ? "qk_f16_gemm_ukernel_" : "qk_bf16_gemm_ukernel_"
            XCTAssertTrue(packed.kernelName.hasPrefix(prefix), packed.kernelName)
            XCTAssertTrue(packed.fp16ArithmeticKernelName.hasPrefix(prefix), packed.fp16ArithmeticKernelName)
            XCTAssertGreaterThanOrEqual(packed.packedByteCount, 5 * 7 * 2)
            let weight = packed.weight()
            XCTAssertEqual(weight.shape, [5, 7])
            XCTAssertEqual(weight.scalars, p.w.map { HalfReference.roundWeight($0, precision) })
            XCTAssertNotEqual(weight.scalars, p.w)   // rounding did happen
        }
        XCTAssertEqual(HalfPrecision.float16.description, "float16")
        XCTAssertEqual(HalfPrecision(rawValue: "bfloat16"), .bfloat16)
        XCTAssertNil(try PackedHalfLinearWeight(weight: try Tensor(zeros: [2, 3])).bias)
        XCTAssertEqual(try PackedHalfLinearWeight(weight: try Tensor(zeros: [2, 3])).precision, .float16)
    }

    func testFloat16WeightsSaturateAndAreCounted() throws {
        let big: [Float] = [70000, -1e6, .infinity, -.infinity, 65504, -65504, 65519, 65520, .greatestFiniteMagnitude,
                            .nan, 1, -0.0]
        let packed = try PackedHalfLinearWeight(weight: try Tensor(shape: [3, 4], scalars: big))
        XCTAssertEqual(packed.saturatedCount, 7)   // all |w| > 65504; NaN and ±65504 are not counted
        let weight = packed.weight().scalars
        XCTAssertEqual(Array(weight[0..<9]), [65504, -65504, 65504, -65504, 65504, -65504, 65504, 65504, 65504])
        XCTAssertTrue(weight[9].isNaN)
        XCTAssertEqual(weight[10], 1)
        XCTAssertEqual(weight[11].bitPattern, (-0.0 as Float).bitPattern)
        // bfloat16 has fp32's range: nothing saturates, the largest floats round up to infinity.
        let bf16 = try PackedHalfLinearWeight(weight: try Tensor(shape: [3, 4], scalars: big), precision: .bfloat16)
        XCTAssertEqual(bf16.saturatedCount, 0)
        XCTAssertEqual(bf16.weight().scalars[1], -999_424)
        XCTAssertEqual(bf16.weight().scalars[8], .infinity)
        // A saturated fp16 layer still computes with ±65504.
        let finite = try PackedHalfLinearWeight(weight: try Tensor(shape: [2, 2], scalars: [1e6, 1, -1e9, 2]))
        XCTAssertEqual(finite.saturatedCount, 2)
        let y = try halfPrecisionLinear(try Tensor(shape: [1, 2], scalars: [1, 0.5]), finite)
        XCTAssertEqual(y.scalars, [65504.5, -65503])
    }

    #if !(os(macOS) && arch(x86_64))
    func testFloat16TensorWeights() throws {
        let p = Problem(m: 9, n: 21, k: 19, seed: 11)
        let halves = try Tensor(shape: [p.n, p.k], scalars: p.w).converted(to: Float16.self)
        let packed = try PackedHalfLinearWeight(float16Weight: halves, bias: p.bias.map { Tensor($0) })
        XCTAssertEqual(packed.precision, .float16)
        XCTAssertEqual(packed.saturatedCount, 0)
        XCTAssertTrue(bitwiseEqual(try packed.float16Weight(), halves))
        XCTAssertEqual(packed.weight(), halves.converted(to: Float.self))
        // The same packed values as from fp32, so the same kernel gives the same bits.
        let fromFloat = try p.packed(.float16)
        XCTAssertTrue(bitwiseEqual(try fromFloat.float16Weight(), halves))
        let x = try p.input
        XCTAssertTrue(bitwiseEqual(try halfPrecisionLinear(x, packed), try halfPrecisionLinear(x, fromFloat)))
        // fp16 weights are taken as they are: infinities are kept, not saturated.
        let infinite = try PackedHalfLinearWeight(float16Weight: Tensor<Float16>([.infinity, 2]).reshaped(to: [1, 2]))
        XCTAssertEqual(infinite.saturatedCount, 0)
        XCTAssertEqual(infinite.weight().scalars, [.infinity, 2])
        // The Swift rounding reference agrees with Swift's own Float16 on the test data.
        for v in p.w + p.x + [65519, 65520, 1e-7, -3e-8, 6.1e-5] {
            XCTAssertEqual(HalfReference.float16(v), Float(Float16(v)), "\(v)")
        }
        // bfloat16 weights have no Float16 form.
        quantizationError { try p.packed(.bfloat16).float16Weight() }?
            .assertInformative(mentions: ["bfloat16", "weight()"])
    }
    #endif

    func testPackedHalfLinearWeightErrors() throws {
        for precision in HalfPrecision.allCases {
            quantizationError { try PackedHalfLinearWeight(weight: Tensor<Float>([1, 2, 3]), precision: precision) }?
                .assertInformative(mentions: ["2-D", "[3]", precision == .float16 ? "fp16" : "bf16"])
            quantizationError {
                try PackedHalfLinearWeight(weight: try Tensor(zeros: [2, 3, 4]), precision: precision)
            }?.assertInformative(mentions: ["2-D", "[2, 3, 4]"])
            quantizationError {
                try PackedHalfLinearWeight(weight: try Tensor(shape: [], scalars: [1]), precision: precision)
            }?.assertInformative(mentions: ["2-D", "[]"])
            quantizationError {
                try PackedHalfLinearWeight(weight: try Tensor(zeros: [2, 3]), bias: Tensor<Float>([1, 2, 3]),
                                           precision: precision)
            }?.assertInformative(mentions: ["bias", "[2]", "[3]"])
            XCTAssertNoThrow(try PackedHalfLinearWeight(weight: try Tensor(zeros: [2, 3]), bias: Tensor<Float>([1, 2]),
                                                        precision: precision))
        }
    }

    // MARK: Linear

    func testMatchesDoubleReference() throws {
        var seed: UInt64 = 200
        for (m, n, k) in [(1, 1, 1), (3, 5, 17), (7, 16, 33), (13, 31, 64), (20, 33, 100), (6, 48, 256), (1, 70, 129),
                          (15, 17, 3)] {
            for precision in HalfPrecision.allCases {
                seed += 3
                let p = Problem(m: m, n: n, k: k, bias: seed % 2 == 0, seed: seed)
                let packed = try p.packed(precision)
                for relu in [false, true] {
                    let y = try halfPrecisionLinear(try p.input, packed, relu: relu)
                    XCTAssertEqual(y.shape, [m, n])
                    if relu { XCTAssertTrue(y.scalars.allSatisfy { $0 >= 0 }) }
                    XCTAssertNil(HalfReference.firstViolation(y.scalars, p.reference(precision, relu: relu)),
                                 "\(precision) m \(m) n \(n) k \(k) relu \(relu) (\(packed.kernelName))")
                }
            }
        }
    }

    /// bf16 rounds the activations too; fp16 keeps them fp32. Values chosen so that the difference shows.
    func testActivationRounding() throws {
        let x = try Tensor<Float>(shape: [1, 2], scalars: [1 + 0x1p-10, 3])   // not a bf16 value; an fp16 one
        let w = try Tensor<Float>(shape: [1, 2], scalars: [1, 0])
        XCTAssertEqual(try halfPrecisionLinear(x, try PackedHalfLinearWeight(weight: w)).scalars, [1 + 0x1p-10])
        XCTAssertEqual(try halfPrecisionLinear(x, try PackedHalfLinearWeight(weight: w, precision: .bfloat16)).scalars,
                       [1])
        let y = try Tensor<Float>(shape: [1, 2], scalars: [1 + 0x1p-20, 3])   // below fp16's precision: kept in fp32
        XCTAssertEqual(try halfPrecisionLinear(y, try PackedHalfLinearWeight(weight: w)).scalars, [1 + 0x1p-20])
    }

    func testLeadingDimensionsAreFlattened() throws {
        let p = Problem(m: 6, n: 5, k: 9, seed: 7)
        for precision in HalfPrecision.allCases {
            let packed = try p.packed(precision)
            let flat = try halfPrecisionLinear(try p.input, packed)
            let batched = try halfPrecisionLinear(try p.input.reshaped(to: [2, 3, 9]), packed)
            XCTAssertEqual(batched.shape, [2, 3, 5])
            XCTAssertTrue(bitwiseEqual(try batched.reshaped(to: [6, 5]), flat))
            let deep = try halfPrecisionLinear(try p.input.reshaped(to: [1, 2, 1, 3, 9]), packed)
            XCTAssertEqual(deep.shape, [1, 2, 1, 3, 5])
            // One row alone may take another path than in a batch (M = 1 kernels split K): equal to rounding.
            let vector = try halfPrecisionLinear(Tensor(Array(p.x[0..<9])), packed)
            XCTAssertEqual(vector.shape, [5])
            let single = Problem(m: 1, n: 5, k: 9, x: Array(p.x[0..<9]), w: p.w, bias: p.bias)
            XCTAssertNil(HalfReference.firstViolation(vector.scalars, single.reference(precision)))
            XCTAssertNil(HalfReference.firstViolation(Array(flat.scalars[0..<5]), single.reference(precision)))
        }
    }

    func testLinearErrors() throws {
        let p = Problem(m: 2, n: 3, k: 4, seed: 9)
        for precision in HalfPrecision.allCases {
            let packed = try p.packed(precision)
            let name = precision == .float16 ? "linear_dynamic_fp16" : "linear_bf16"
            quantizationError { try halfPrecisionLinear(try Tensor(zeros: [2, 5]), packed) }?
                .assertInformative(mentions: ["inFeatures 4", "[2, 5]", name])
            quantizationError { try halfPrecisionLinear(try Tensor(zeros: [4, 2]), packed) }?
                .assertInformative(mentions: ["inFeatures 4", "[4, 2]"])
            quantizationError { try halfPrecisionLinear(try Tensor(shape: [], scalars: [1]), packed, relu: true) }?
                .assertInformative(mentions: ["rank-0", precision == .float16 ? "linear_relu_dynamic_fp16"
                                              : "linear_relu_bf16"])
            quantizationError { try halfPrecisionLinear(try Tensor(zeros: [0]), packed) }?
                .assertInformative(mentions: ["inFeatures 4", "[0]"])
        }
    }

    func testEmptyShapes() throws {
        for precision in HalfPrecision.allCases {
            // No outputs.
            let noOutputs = try PackedHalfLinearWeight(weight: try Tensor(zeros: [0, 4]), precision: precision)
            XCTAssertEqual(noOutputs.weight().shape, [0, 4])
            XCTAssertEqual(try halfPrecisionLinear(try Tensor(zeros: [3, 4]), noOutputs).shape, [3, 0])
            // No rows.
            let p = Problem(m: 0, n: 3, k: 4, seed: 5)
            let y = try halfPrecisionLinear(try Tensor(zeros: [0, 4]), try p.packed(precision))
            XCTAssertEqual(y.shape, [0, 3])
            XCTAssertEqual(try halfPrecisionLinear(try Tensor(zeros: [2, 0, 4]), try p.packed(precision)).shape,
                           [2, 0, 3])
            // No inputs: y = bias (ReLU applied), or 0.
            let noInputs = try PackedHalfLinearWeight(weight: try Tensor(zeros: [3, 0]), bias: Tensor([1, -2, 0.5]),
                                                      precision: precision)
            XCTAssertEqual(noInputs.weight().shape, [3, 0])
            XCTAssertEqual(try halfPrecisionLinear(try Tensor(zeros: [2, 0]), noInputs).scalars,
                           [1, -2, 0.5, 1, -2, 0.5])
            XCTAssertEqual(try halfPrecisionLinear(try Tensor(zeros: [1, 0]), noInputs, relu: true).scalars,
                           [1, 0, 0.5])
            let bare = try PackedHalfLinearWeight(weight: try Tensor(zeros: [2, 0]), precision: precision)
            XCTAssertEqual(try halfPrecisionLinear(try Tensor(zeros: [0]), bare).scalars, [0, 0])
        }
    }

    func testReLUAndSpecialValues() throws {
        let (n, k) = (20, 11)
        var w = TestData.uniform(count: n * k, magnitude: 1, seed: 41)
        for j in 0..<n { w[j * k] = 0.5 + Float(j) / 64 }   // column 0 positive: an infinite input gives +inf
        var x = TestData.uniform(count: 4 * k, magnitude: 3, seed: 42)
        x[1 * k + 3] = .nan
        x[2 * k] = .infinity
        for precision in HalfPrecision.allCases {
            let packed = try PackedHalfLinearWeight(weight: try Tensor(shape: [n, k], scalars: w), precision: precision)
            for relu in [false, true] {
                let y = try halfPrecisionLinear(try Tensor(shape: [4, k], scalars: x), packed, relu: relu)
                for j in 0..<n {
                    XCTAssertTrue(y[1, j].isNaN, "NaN input must give NaN (\(precision), relu \(relu))")
                    XCTAssertEqual(y[2, j], .infinity)
                }
                let finiteRows = [0, 3]
                let rows = finiteRows.flatMap { Array(x[($0 * k)..<(($0 + 1) * k)]) }
                let reference = HalfReference.linear(x: rows, m: 2, k: k, w: w, n: n, bias: nil, precision: precision,
                                                     relu: relu)
                let actual = finiteRows.flatMap { i in (0..<n).map { y[i, $0] } }
                XCTAssertNil(HalfReference.firstViolation(actual, reference))
                if relu {
                    XCTAssertTrue(actual.allSatisfy { $0 >= 0 })
                    XCTAssertTrue(actual.contains(0))   // some outputs were negative
                }
            }
        }
    }

    func testFP16ArithmeticFlag() throws {
        let p = Problem(m: 9, n: 40, k: 70, seed: 21)
        for precision in HalfPrecision.allCases {
            let packed = try p.packed(precision)
            let x = try p.input
            let fast = try halfPrecisionLinear(x, packed, fp16Arithmetic: true)
            if packed.fp16ArithmeticKernelName == packed.kernelName {
                // No fp16 arithmetic here (x86, or bf16 weights): the flag changes nothing.
                XCTAssertTrue(bitwiseEqual(fast, try halfPrecisionLinear(x, packed)), precision.rawValue)
            } else {
                XCTAssertEqual(precision, .float16, "bf16 weights must ignore fp16 arithmetic")
                // fp16 products and sums: about K * 2^-11 of sum |x w| (the header's bound), plus the fp16 rounding
                // of the activations.
                let exact = p.reference(precision)
                let loose = (y: exact.y, bound: exact.bound.map { $0 / (0x1p-23) * 0x1p-10 })
                XCTAssertNil(HalfReference.firstViolation(fast.scalars, loose), packed.fp16ArithmeticKernelName)
            }
        }
    }

    // MARK: bf16 conversion

    func testRoundedToBFloat16() throws {
        var values = TestData.tricky(count: 4000, scale: 0x1p-3, zeroPoint: 0, dtype: .qint32, seed: 5)
        values += [1 + 0x1p-8, 1 + 0x1p-7 + 0x1p-8, 1 + 0x1p-8 + 0x1p-20, -(1 + 0x1p-8), 0x1p-130, 3.3961e38,
                   .greatestFiniteMagnitude, Float(bitPattern: 0x7F80_0001), Float(bitPattern: 0xFF81_2345)]
        var g = SplitMix64(seed: 9)
        values += (0..<4000).map { _ in Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &g)) }
        let t = try Tensor(shape: [values.count / 2, 2], scalars: Array(values.prefix(values.count / 2 * 2)))
        let rounded = t.roundedToBFloat16()
        XCTAssertEqual(rounded.shape, t.shape)
        for (v, r) in zip(t.scalars, rounded.scalars) {
            let expected = HalfReference.bfloat16(v)
            XCTAssertEqual(r.bitPattern, expected.bitPattern, "\(v) (0x\(String(v.bitPattern, radix: 16)))")
        }
        XCTAssertEqual(Tensor<Float>([1 + 0x1p-8, 1 + 0x1p-7 + 0x1p-8]).roundedToBFloat16().scalars,
                       [1, 1 + 0x1p-6])   // ties to even
        XCTAssertEqual(Tensor<Float>([]).roundedToBFloat16().count, 0)
        XCTAssertEqual(try Tensor<Float>(shape: [], scalars: [0.1]).roundedToBFloat16().scalars, [0.10009765625])
    }

    // MARK: Threads and ISA levels

    static let big = Problem(m: 70, n: 97, k: 203, seed: 4242)   // > 2^20 multiply-adds: the driver tiles it
    static let gemv = Problem(m: 1, n: 2048, k: 600, seed: 4343)  // M = 1: column tiles only

    static func runAll(_ p: Problem, _ packed: [HalfPrecision: PackedHalfLinearWeight]) throws -> [[Float]] {
        var results: [[Float]] = []
        for precision in HalfPrecision.allCases {
            for relu in [false, true] {
                results.append(try halfPrecisionLinear(try p.input, packed[precision]!, relu: relu).scalars)
            }
        }
        return results
    }

    static func packAll(_ p: Problem) throws -> [HalfPrecision: PackedHalfLinearWeight] {
        [.float16: try p.packed(.float16), .bfloat16: try p.packed(.bfloat16)]
    }

    func testOneAndTwoThreadsAreBitIdentical() throws {
        for p in [Self.big, Self.gemv] {
            let packed = try Self.packAll(p)
            try Runtime.setNumberOfThreads(1)
            let one = try Self.runAll(p, packed)
            try Runtime.setNumberOfThreads(2)
            let two = try Self.runAll(p, packed)
            for (index, (a, b)) in zip(one, two).enumerated() {
                XCTAssertNil(firstBitDifference(a, b), "m \(p.m): result \(index) differs between 1 and 2 threads")
            }
        }
    }

    /// Every ISA level is within the bound of the exact result (so within twice the bound of each other), also with
    /// weights packed on another level.
    func testEverySupportedISAIsWithinTolerance() throws {
        let problems = [Self.big, Self.gemv]
        var references: [[(y: [Double], bound: [Double])]] = []
        for p in problems {
            references.append(HalfPrecision.allCases.flatMap { precision in
                [false, true].map { p.reference(precision, relu: $0) }
            })
        }
        try Runtime.setISA("scalar")
        let scalarPacked = try problems.map(Self.packAll)
        for packed in scalarPacked[0].values {
            XCTAssertTrue(packed.kernelName.hasSuffix("__scalar"), packed.kernelName)
        }
        var scalarResults: [[[Float]]] = []
        for (pi, p) in problems.enumerated() {
            scalarResults.append(try Self.runAll(p, scalarPacked[pi]))
        }
        for isa in Runtime.supportedISAs {
            try Runtime.setISA(isa)
            for (pi, p) in problems.enumerated() {
                let packed = try Self.packAll(p)
                let kernels = "\(packed[.float16]!.kernelName) / \(packed[.bfloat16]!.kernelName)"
                let results = try Self.runAll(p, packed)
                for (index, result) in results.enumerated() {
                    XCTAssertNil(HalfReference.firstViolation(result, references[pi][index]),
                                 "\(isa) (\(kernels)) m \(p.m): result \(index)")
                    let toScalar = (y: scalarResults[pi][index].map(Double.init),
                                    bound: references[pi][index].bound.map { 2 * $0 })
                    XCTAssertNil(HalfReference.firstViolation(result, toScalar),
                                 "\(isa) (\(kernels)) m \(p.m): result \(index) vs the scalar kernel")
                }
                let crossed = try Self.runAll(p, scalarPacked[pi])
                for (index, result) in crossed.enumerated() {
                    XCTAssertNil(HalfReference.firstViolation(result, references[pi][index]),
                                 "\(isa): scalar-packed weights, m \(p.m): result \(index)")
                }
            }
        }
    }

    /// Concurrent callers sharing one PackedHalfLinearWeight (it is Sendable) get the single-caller results.
    func testConcurrentUseOfOnePackedWeight() throws {
        let p = Problem(m: 9, n: 21, k: 40, seed: 31)
        for precision in HalfPrecision.allCases {
            let packed = try p.packed(precision)
            let x = try p.input
            let expected = try halfPrecisionLinear(x, packed)
            final class Counter: @unchecked Sendable {   // guarded by `lock`
                private let lock = NSLock()
                private var count = 0
                func add() { lock.lock(); count += 1; lock.unlock() }
                var value: Int { lock.lock(); defer { lock.unlock() }; return count }
            }
            let failures = Counter()
            DispatchQueue.concurrentPerform(iterations: 8) { _ in
                for _ in 0..<20 {
                    guard let y = try? halfPrecisionLinear(x, packed), bitwiseEqual(y, expected) else {
                        failures.add()
                        continue
                    }
                }
            }
            XCTAssertEqual(failures.value, 0)
        }
    }
}
