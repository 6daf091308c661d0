import QuantKit
import XCTest

/// Golden runner for conv.json: `quantized_conv2d` (NCHW, x quint8, w qint8 per tensor or per channel with zero
/// point 0, fp32 bias), y_q exact, as the golden README asks.
extension GoldenConformanceTests {
    /// The case as a reference problem (NCHW x, `[C_out, C_in / groups, k, k]` w).
    static func convProblem(_ goldenCase: GoldenCase) throws -> ConvReference.Quantized {
        let layout = try goldenCase.field("layout").stringValue
        guard layout == "NCHW" else { throw Mismatch(description: "unsupported layout \(layout ?? "?")") }
        let (n, c, o) = (try goldenCase.field("N").int(), try goldenCase.field("C_in").int(),
                         try goldenCase.field("C_out").int())
        let (h, w) = (try goldenCase.field("H").int(), try goldenCase.field("W").int())
        let groups = try goldenCase.field("groups").int()
        let kernel = try goldenCase.field("kernel").int()
        let wShape = try goldenCase.field("w_shape").ints()
        guard wShape == [o, c / groups, kernel, kernel] else {
            throw Mismatch(description: "w_shape \(wShape) does not match C_out \(o), C_in \(c), groups \(groups), "
                           + "kernel \(kernel)")
        }
        let perChannel = try bool(goldenCase, "w_per_channel")
        let scales = try goldenCase.field("w_scales").floats()
        return ConvReference.Quantized(
            n: n, c: c, h: h, w: w, outChannels: o, groups: groups, kernel: Size2d(kernel),
            stride: Size2d(try goldenCase.field("stride").int()),
            padding: Size2d(try goldenCase.field("padding").int()),
            dilation: 1, x: try goldenCase.field("x_q").ints(), xScale: try goldenCase.field("x_scale").float(),
            xZeroPoint: try goldenCase.field("x_zero_point").int(), weights: try goldenCase.field("w_q").ints(),
            wScales: scales, wZeroPoints: Array(repeating: 0, count: scales.count), perChannel: perChannel,
            bias: try bias(goldenCase)?.scalars)
    }

    @Sendable static func runQuantizedConv2d(_ goldenCase: GoldenCase) throws {
        try runQuantizedConv2d(goldenCase, layout: .nchw)
    }

    /// Runs a case through `quantizedConv2d` in `layout` (NHWC permutes the case's NCHW tensors with the library's
    /// permutes) and compares y_q, element for element, in NCHW order.
    static func runQuantizedConv2d(_ goldenCase: GoldenCase, layout: ConvolutionLayout) throws {
        let p = try convProblem(goldenCase)
        let packed = try p.packed()
        let x = try p.input()
        let y = try quantizedConv2d(layout == .nchw ? x : try x.permutedToNHWC(), packed, stride: p.stride,
                                    padding: p.padding, scale: try goldenCase.field("out_scale").float(),
                                    zeroPoint: try goldenCase.field("out_zero_point").int(), layout: layout)
        let result = layout == .nchw ? y : try y.permutedToNCHW()
        let shape = try goldenCase.field("y_shape").ints()
        guard result.shape == shape else {
            throw Mismatch(description: "output shape \(result.shape), PyTorch \(shape)")
        }
        let expected = try goldenCase.field("y_q").ints()
        let actual = result.intRepr().map(Int.init)
        guard actual == expected else {
            let bad = actual.indices.filter { actual[$0] != expected[$0] }
            throw Mismatch(description: "y_q differs at \(bad.count) of \(actual.count) outputs (\(layout)), first at "
                           + "\(bad[0]): got \(actual[bad[0]]), PyTorch \(expected[bad[0]]) (kernel "
                           + "\(packed.kernelName))")
        }
    }

    /// Every conv case on every ISA level this CPU runs, with 1 and 2 threads, in NCHW and NHWC.
    func testQuantizedConv2dGoldenOnEverySupportedISA() throws {
        let cases = try Self.cases().filter { $0.kind == "quantized_conv2d" }
        guard !cases.isEmpty else { throw XCTSkip("no quantized_conv2d cases") }
        defer {
            XCTAssertNoThrow(try Runtime.setNumberOfThreads(nil))
            XCTAssertNoThrow(try ISAState.restore())
        }
        for isa in Runtime.supportedISAs {
            try Runtime.setISA(isa)
            var passed = 0
            for threads in [1, 2] {
                try Runtime.setNumberOfThreads(threads)
                for goldenCase in cases {
                    for layout in ConvolutionLayout.allCases {
                        do {
                            try Self.runQuantizedConv2d(goldenCase, layout: layout)
                            passed += 1
                        } catch {
                            XCTFail("\(isa), \(threads) threads, \(layout): \(goldenCase.name): \(error)")
                        }
                    }
                }
            }
            print("golden: quantized_conv2d on \(isa): \(passed) of \(cases.count * 4) runs exact "
                  + "(\(cases.count) cases x 1/2 threads x NCHW/NHWC)")
        }
    }
}
