import XCTest
@testable import QuantKit

/// The fast paths behind the CNN's int8 inference: quantized max pooling (2x2 blocks of 16 and 8 outputs) and
/// convolutions with short kernel rows (one input channel: a GEMM with K = kh * kw, im2col rows made from padded
/// input rows), each against a plain reference.
final class QuantizedPoolingTests: XCTestCase {
    /// Max pooling by definition: padding is the dtype's minimum, windows clipped to the input, floor or ceil sizes.
    private func referenceMaxPool(_ x: [Int], n: Int, h: Int, w: Int, kernel: Size2d, stride: Size2d,
                                  padding: Size2d, dilation: Size2d, ceilMode: Bool, minimum: Int)
        -> (values: [Int], oh: Int, ow: Int)
    {
        func size(_ input: Int, _ k: Int, _ p: Int, _ s: Int, _ d: Int) -> Int {
            let span = input + 2 * p - d * (k - 1) - 1
            var out = (ceilMode ? (span + s - 1) / s : span / s) + 1
            if ceilMode, (out - 1) * s >= input + p { out -= 1 }
            return out
        }
        let oh = size(h, kernel.height, padding.height, stride.height, dilation.height)
        let ow = size(w, kernel.width, padding.width, stride.width, dilation.width)
        var y: [Int] = []
        for plane in 0..<n {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    var best = minimum
                    for ky in 0..<kernel.height {
                        for kx in 0..<kernel.width {
                            let iy = oy * stride.height - padding.height + ky * dilation.height
                            let ix = ox * stride.width - padding.width + kx * dilation.width
                            guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                            best = max(best, x[(plane * h + iy) * w + ix])
                        }
                    }
                    y.append(best)
                }
            }
        }
        return (y, oh, ow)
    }

    func testQuantizedMaxPoolMatchesReference() throws {
        var g = SplitMix64(seed: 7)
        // (n, c, h, w): rows of 28 (14 outputs: one block of 8 and an overlapping one), 7 (scalar only), 70 (16 + 16
        // + an overlapping 8), odd sizes (a dropped last row and column).
        let shapes: [[Int]] = [[2, 3, 28, 28], [1, 2, 14, 14], [1, 1, 7, 9], [1, 2, 5, 70], [3, 1, 9, 33]]
        let windows: [(k: Size2d, s: Size2d?, p: Size2d, d: Size2d, ceil: Bool)] = [
            (2, nil, 0, 1, false), (3, 2, 1, 1, false), (2, 1, 0, 1, false), (3, 2, 0, 1, true),
            (Size2d(height: 2, width: 3), Size2d(height: 2, width: 1), Size2d(height: 1, width: 1), 2, false),
        ]
        var checked = 0
        for shape in shapes {
            let count = shape.reduce(1, *)
            let raw = (0..<count).map { _ in Int(g.next() % 256) }
            let unsigned = try QuantizedTensor(intRepr: Tensor(shape: shape, scalars: raw.map { UInt8($0) }),
                                               scale: 0.1, zeroPoint: 3)
            let signed = try QuantizedTensor(intRepr: Tensor(shape: shape, scalars: raw.map { Int8($0 - 128) }),
                                             scale: 0.2, zeroPoint: -4)
            let wide = try QuantizedTensor(intRepr: Tensor(shape: shape, scalars: raw.map { Int32($0 * 1000 - 9) }),
                                           scale: 0.3, zeroPoint: 0)
            for window in windows {
                let (h, w) = (shape[2], shape[3])
                let stride = window.s ?? window.k
                let dilated = Size2d(height: window.d.height * (window.k.height - 1) + 1,
                                     width: window.d.width * (window.k.width - 1) + 1)
                guard dilated.height <= h + 2 * window.p.height, dilated.width <= w + 2 * window.p.width else {
                    continue
                }
                for (x, values, minimum) in [(unsigned, raw, 0), (signed, raw.map { $0 - 128 }, -128),
                                             (wide, raw.map { $0 * 1000 - 9 }, Int(Int32.min))] {
                    let y = try quantizedMaxPool2d(x, kernelSize: window.k, stride: window.s, padding: window.p,
                                                   dilation: window.d, ceilMode: window.ceil)
                    let expected = referenceMaxPool(values, n: shape[0] * shape[1], h: h, w: w, kernel: window.k,
                                                    stride: stride, padding: window.p, dilation: window.d,
                                                    ceilMode: window.ceil, minimum: minimum)
                    XCTAssertEqual(y.shape, [shape[0], shape[1], expected.oh, expected.ow], "\(shape) \(window)")
                    XCTAssertEqual(y.intRepr().map(Int.init), expected.values, "\(shape) \(window) \(x.dtype)")
                    XCTAssertEqual(y.dtype, x.dtype)
                    XCTAssertEqual(y.scales, x.scales)
                    XCTAssertEqual(y.zeroPoints, x.zeroPoints)
                    // The module runs the same operator on quantized inputs.
                    let pool = MaxPool2d(kernelSize: window.k, stride: window.s, padding: window.p,
                                         dilation: window.d, ceilMode: window.ceil)
                    XCTAssertEqual(try pool(Variable(x)).quantizedTensor, y)
                    checked += 1
                }
            }
        }
        XCTAssertGreaterThan(checked, 60)
    }

    func testQuantizedMaxPoolErrors() throws {
        let x = try QuantizedTensor(intRepr: Tensor<UInt8>(shape: [4, 4], scalars: Array(repeating: 1, count: 16)),
                                    scale: 1, zeroPoint: 0)
        XCTAssertThrowsError(try quantizedMaxPool2d(x, kernelSize: 2)) { error in
            XCTAssertTrue("\(error)".contains("3-D"), "\(error)")
        }
        let y = try QuantizedTensor(intRepr: Tensor<UInt8>(shape: [1, 1, 4, 4], scalars: Array(repeating: 1, count: 16)),
                                    scale: 1, zeroPoint: 0)
        XCTAssertThrowsError(try quantizedMaxPool2d(y, kernelSize: 2, padding: 2)) { error in
            XCTAssertTrue("\(error)".contains("pad should be at most half"), "\(error)")
        }
    }

    /// One input channel runs the im2col GEMM (not the depthwise kernels); kernel rows of at most 64 bytes with
    /// 7-bit inputs take the padded-row fill, 8-bit ones the general fill. Exact against the reference either way,
    /// in NCHW and NHWC.
    func testShortKernelRowConvolutionsMatchReference() throws {
        var seed: UInt64 = 900
        let cases: [(c: Int, o: Int, h: Int, w: Int, k: Size2d, s: Size2d, p: Size2d, d: Size2d)] = [
            (1, 16, 28, 28, 3, 1, 1, 1),    // the Fashion-MNIST CNN's first layer
            (1, 5, 9, 11, 3, 2, 1, 1),
            (1, 8, 7, 6, 5, 1, 2, 1),
            (1, 3, 6, 13, Size2d(height: 1, width: 8), 1, Size2d(height: 0, width: 3), 1),
            (2, 4, 8, 9, Size2d(height: 3, width: 4), Size2d(height: 1, width: 2), 1, Size2d(height: 2, width: 1)),
            (2, 6, 5, 5, 3, 1, 0, 1),
            (1, 4, 10, 10, 3, 1, 1, 2),     // dilation along x: the general fill
            (1, 1, 6, 7, 3, 1, 1, 1),       // one channel in and out: no permute on either side
            (16, 32, 14, 14, 3, 1, 1, 1),   // the CNN's second layer: kernel rows of 48 bytes
        ]
        for item in cases {
            for (sevenBit, affine) in [(true, false), (true, true), (false, false)] {
                seed += 1
                var p = ConvReference.Quantized(
                    n: 3, c: item.c, h: item.h, w: item.w, outChannels: item.o, groups: 1, kernel: item.k,
                    stride: item.s, padding: item.p, dilation: item.d, perChannel: true, affineWeights: affine,
                    seed: seed)
                if sevenBit {
                    p.x = p.x.map { $0 % 128 }
                    p.xZeroPoint %= 128
                }
                let packed = try p.packed()
                XCTAssertTrue(packed.kernelName.hasPrefix("im2col gemm"), packed.kernelName)
                let x = try p.input()
                for relu in [false, true] {
                    let expected = p.expected(outScale: 0.05, outZeroPoint: 20, relu: relu)
                    for threads in [1, 2] {
                        try Runtime.setNumberOfThreads(threads)
                        defer { try? Runtime.setNumberOfThreads(nil) }
                        let y = try quantizedConv2d(x, packed, stride: p.stride, padding: p.padding,
                                                    dilation: p.dilation, scale: 0.05, zeroPoint: 20, relu: relu)
                        XCTAssertEqual(y.intRepr().map(Int.init), expected,
                                       "\(p.summary) 7-bit \(sevenBit) relu \(relu) \(threads) threads")
                        let yNHWC = try quantizedConv2d(x.permutedToNHWC(), packed, stride: p.stride,
                                                        padding: p.padding, dilation: p.dilation, scale: 0.05,
                                                        zeroPoint: 20, relu: relu, layout: .nhwc)
                        XCTAssertEqual(try yNHWC.permutedToNCHW(), y, "\(p.summary): NHWC differs from NCHW")
                    }
                }
            }
        }
    }
}
