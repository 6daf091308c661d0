import QuantKit
import XCTest

/// Golden runners for fake_quantize.json, within the golden README's tolerances: y and grad_x exact (bit for bit),
/// grad_scale and grad_zero_point within 1e-4 relative.
extension GoldenConformanceTests {
    static func fakeQuantizeTensors(_ goldenCase: GoldenCase) throws
        -> (x: Tensor<Float>, gradY: Tensor<Float>, y: [Float], gradX: [Float])
    {
        let shape = try goldenCase.field("shape").ints()
        return (try Tensor(shape: shape, scalars: try goldenCase.field("x").floats()),
                try Tensor(shape: shape, scalars: try goldenCase.field("grad_y").floats()),
                try goldenCase.field("y").floats(), try goldenCase.field("grad_x").floats())
    }

    static func checkBits(_ actual: [Float], _ expected: [Float], _ what: String) throws {
        guard actual.count == expected.count else {
            throw Mismatch(description: "\(what): \(actual.count) values, PyTorch \(expected.count)")
        }
        if let i = firstBitDifference(actual, expected) {
            throw Mismatch(description: "\(what) differs at element \(i): got \(actual[i]) "
                           + "(0x\(String(actual[i].bitPattern, radix: 16))), PyTorch \(expected[i]) "
                           + "(0x\(String(expected[i].bitPattern, radix: 16)))")
        }
    }

    static func checkRelative(_ actual: Float, _ expected: Float, _ what: String) throws {
        guard abs(actual - expected) <= 1e-4 * abs(expected) else {
            throw Mismatch(description: "\(what) = \(actual), PyTorch \(expected) (tolerance 1e-4 relative)")
        }
    }

    @Sendable static func runFakeQuantizePerTensor(_ goldenCase: GoldenCase) throws {
        let (x, gradY, y, gradX) = try fakeQuantizeTensors(goldenCase)
        let scale = try goldenCase.field("scale").float(), zeroPoint = try goldenCase.field("zero_point").int()
        let (qMin, qMax) = (try goldenCase.field("quant_min").int(), try goldenCase.field("quant_max").int())
        let (output, mask) = try fakeQuantizePerTensorAffineCachemask(x, scale: scale, zeroPoint: zeroPoint,
                                                                      quantMin: qMin, quantMax: qMax)
        try checkBits(output.scalars, y, "y")
        try checkBits(try fakeQuantizeCachemaskBackward(gradY, mask: mask).scalars, gradX, "grad_x")
        // The entry points without a cached mask agree.
        try checkBits(try fakeQuantizePerTensorAffine(x, scale: scale, zeroPoint: zeroPoint, quantMin: qMin,
                                                      quantMax: qMax).scalars, y, "y (no mask)")
        try checkBits(try fakeQuantizePerTensorAffineBackward(gradY, x, scale: scale, zeroPoint: zeroPoint,
                                                              quantMin: qMin, quantMax: qMax).scalars,
                      gradX, "grad_x (mask recomputed)")
    }

    @Sendable static func runFakeQuantizePerChannel(_ goldenCase: GoldenCase) throws {
        let (x, gradY, y, gradX) = try fakeQuantizeTensors(goldenCase)
        let scales = try goldenCase.field("scales").floats(), zeroPoints = try goldenCase.field("zero_points").ints()
        let axis = try goldenCase.field("axis").int()
        let (qMin, qMax) = (try goldenCase.field("quant_min").int(), try goldenCase.field("quant_max").int())
        let (output, mask) = try fakeQuantizePerChannelAffineCachemask(x, scales: scales, zeroPoints: zeroPoints,
                                                                       axis: axis, quantMin: qMin, quantMax: qMax)
        try checkBits(output.scalars, y, "y")
        try checkBits(try fakeQuantizeCachemaskBackward(gradY, mask: mask).scalars, gradX, "grad_x")
        try checkBits(try fakeQuantizePerChannelAffineBackward(gradY, x, scales: scales, zeroPoints: zeroPoints,
                                                               axis: axis - x.rank, quantMin: qMin,
                                                               quantMax: qMax).scalars,
                      gradX, "grad_x (negative axis, mask recomputed)")
    }

    @Sendable static func runFakeQuantizeLearnablePerTensor(_ goldenCase: GoldenCase) throws {
        let (x, gradY, y, gradX) = try fakeQuantizeTensors(goldenCase)
        let scale = try goldenCase.field("scale").float(), zeroPoint = try goldenCase.field("zero_point").float()
        let gradFactor = try goldenCase.field("grad_factor").float()
        let (qMin, qMax) = (try goldenCase.field("quant_min").int(), try goldenCase.field("quant_max").int())
        let output = try fakeQuantizeLearnablePerTensorAffine(x, scale: scale, zeroPoint: zeroPoint, quantMin: qMin,
                                                              quantMax: qMax, gradFactor: gradFactor)
        try checkBits(output.scalars, y, "y")
        let grads = try fakeQuantizeLearnablePerTensorAffineBackward(gradY, x, scale: scale, zeroPoint: zeroPoint,
                                                                     quantMin: qMin, quantMax: qMax,
                                                                     gradFactor: gradFactor)
        try checkBits(grads.input.scalars, gradX, "grad_x")
        try checkRelative(grads.scale[0], try goldenCase.field("grad_scale").float(), "grad_scale")
        try checkRelative(grads.zeroPoint[0], try goldenCase.field("grad_zero_point").float(), "grad_zero_point")
    }
}
