import QuantKit
import XCTest

/// Golden runners for linear.json: `quantized_linear` (exact), `dynamic_quantized_linear` (1e-5 relative +
/// 1e-6 absolute) and `fp16_linear` (1e-5 relative + 1e-5 absolute), the golden README's tolerances.
extension GoldenConformanceTests {
    static func bool(_ goldenCase: GoldenCase, _ key: String) throws -> Bool {
        guard case .bool(let value) = try goldenCase.field(key) else {
            throw Mismatch(description: "\(key) is not a boolean")
        }
        return value
    }

    static func bias(_ goldenCase: GoldenCase) throws -> Tensor<Float>? {
        guard let value = goldenCase.fields["bias"], value != .null else { return nil }
        return Tensor(try value.floats())
    }

    @Sendable static func runQuantizedLinear(_ goldenCase: GoldenCase) throws {
        let (m, k, n) = (try goldenCase.field("M").int(), try goldenCase.field("K").int(), try goldenCase.field("N").int())
        let relu = try bool(goldenCase, "relu")
        let x = try QuantizedTensor(
            intRepr: try Tensor(shape: [m, k], scalars: try goldenCase.field("x_q").ints().map { UInt8($0) }),
            scale: try goldenCase.field("x_scale").float(), zeroPoint: try goldenCase.field("x_zero_point").int())
        let w = try Tensor(shape: [n, k], scalars: try goldenCase.field("w_q").ints().map { Int8($0) })
        let scales = try goldenCase.field("w_scales").floats()
        let weight = try bool(goldenCase, "w_per_channel")
            ? try QuantizedTensor(intRepr: w, scales: scales, zeroPoints: Array(repeating: 0, count: n), axis: 0)
            : try QuantizedTensor(intRepr: w, scale: scales[0], zeroPoint: 0)
        let packed = try PackedLinearWeight(weight: weight, bias: try bias(goldenCase))
        let y = try quantizedLinear(x, packed, scale: try goldenCase.field("out_scale").float(),
                                    zeroPoint: try goldenCase.field("out_zero_point").int(), relu: relu)
        let expected = try goldenCase.field("y_q").ints()
        let actual = y.intRepr().map(Int.init)
        guard actual == expected else {
            let bad = actual.indices.filter { actual[$0] != expected[$0] }
            throw Mismatch(description: "y_q differs at \(bad.count) of \(actual.count) outputs, first at \(bad[0]): "
                           + "got \(actual[bad[0]]), PyTorch \(expected[bad[0]]) (kernel \(packed.kernelName))")
        }
    }

    @Sendable static func runDynamicQuantizedLinear(_ goldenCase: GoldenCase) throws {
        _ = try dynamicLinearResult(goldenCase)
    }

    /// Runs a dynamic case within tolerance; returns how many outputs are bit-identical to PyTorch's, and how many
    /// there are.
    static func dynamicLinearResult(_ goldenCase: GoldenCase) throws -> (exact: Int, total: Int) {
        let (m, k, n) = (try goldenCase.field("M").int(), try goldenCase.field("K").int(), try goldenCase.field("N").int())
        let x = try Tensor(shape: [m, k], scalars: try goldenCase.field("x").floats())
        let w = try Tensor(shape: [n, k], scalars: try goldenCase.field("w_q").ints().map { Int8($0) })
        let weight = try QuantizedTensor(intRepr: w, scale: try goldenCase.field("w_scale").float(), zeroPoint: 0)
        let packed = try PackedLinearWeight(weight: weight, bias: try bias(goldenCase))
        let y = try dynamicQuantizedLinear(x, packed, reduceRange: try bool(goldenCase, "reduce_range")).scalars
        let expected = try goldenCase.field("y").floats()
        guard y.count == expected.count else { throw Mismatch(description: "\(y.count) outputs, expected \(expected.count)") }
        for i in y.indices {
            let tolerance = 1e-5 * abs(expected[i]) + 1e-6
            guard abs(y[i] - expected[i]) <= tolerance else {
                throw Mismatch(description: "y[\(i)] = \(y[i]), PyTorch \(expected[i]) (tolerance \(tolerance))")
            }
        }
        return (y.indices.filter { y[$0].bitPattern == expected[$0].bitPattern }.count, y.count)
    }

    /// Beyond the tolerance: how many dynamic outputs are bit for bit PyTorch's (the FMA model predicts all).
    func testDynamicLinearGoldenBitExactness() throws {
        let cases = try Self.cases().filter { $0.kind == "dynamic_quantized_linear" }
        guard !cases.isEmpty else { throw XCTSkip("no dynamic_quantized_linear cases") }
        var exact = 0, total = 0
        for goldenCase in cases {
            let r = try Self.dynamicLinearResult(goldenCase)
            exact += r.exact
            total += r.total
        }
        print("golden: dynamic_quantized_linear bit-exact outputs: \(exact) of \(total)")
        XCTAssertEqual(exact, total)
    }

    /// `fp16_linear`: fp32 weights saturated to ±65504 and rounded to fp16, fp32 activations and accumulation
    /// (`torch.ops.quantized.linear_dynamic_fp16`). The summation order is the kernel's, so within tolerance only.
    @Sendable static func runFP16Linear(_ goldenCase: GoldenCase) throws {
        _ = try fp16LinearResult(goldenCase)
    }

    /// Runs an fp16 case within tolerance; returns the largest |y - PyTorch| / tolerance over its outputs.
    static func fp16LinearResult(_ goldenCase: GoldenCase) throws -> Double {
        let (m, k, n) = (try goldenCase.field("M").int(), try goldenCase.field("K").int(),
                         try goldenCase.field("N").int())
        let x = try Tensor(shape: [m, k], scalars: try goldenCase.field("x").floats())
        let w = try Tensor(shape: [n, k], scalars: try goldenCase.field("w").floats())
        let relu = goldenCase.fields["relu"] == nil ? false : try bool(goldenCase, "relu")
        let packed = try PackedHalfLinearWeight(weight: w, bias: try bias(goldenCase), precision: .float16)
        let y = try halfPrecisionLinear(x, packed, relu: relu).scalars
        let expected = try goldenCase.field("y").floats()
        guard y.count == expected.count else {
            throw Mismatch(description: "\(y.count) outputs, expected \(expected.count)")
        }
        var worst = 0.0
        for i in y.indices {
            let tolerance = 1e-5 * abs(expected[i]) + 1e-5
            guard abs(y[i] - expected[i]) <= tolerance else {
                throw Mismatch(description: "y[\(i)] = \(y[i]), PyTorch \(expected[i]) (tolerance \(tolerance), "
                               + "kernel \(packed.kernelName))")
            }
            worst = max(worst, Double(abs(y[i] - expected[i]) / tolerance))
        }
        return worst
    }

    /// The fp16 cases on every ISA level this CPU runs (summation orders differ between the levels' kernels).
    func testFP16LinearGoldenOnEverySupportedISA() throws {
        let cases = try Self.cases().filter { $0.kind == "fp16_linear" }
        guard !cases.isEmpty else { throw XCTSkip("no fp16_linear cases") }
        defer { XCTAssertNoThrow(try ISAState.restore()) }
        for isa in Runtime.supportedISAs {
            try Runtime.setISA(isa)
            var worst = 0.0
            for goldenCase in cases {
                XCTAssertNoThrow(worst = max(worst, try Self.fp16LinearResult(goldenCase)),
                                 "\(isa): \(goldenCase.name)")
            }
            print("golden: fp16_linear on \(isa): \(cases.count) cases, largest error \(String(format: "%.3f", worst)) "
                  + "of the tolerance")
        }
    }
}
