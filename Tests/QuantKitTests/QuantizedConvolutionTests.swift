import Foundation
import QuantKit
import XCTest

/// Plain-Swift statements of the convolutions (PyTorch x86 / FBGEMM numerics for the quantized one), written
/// independently of the C kernels and of the library's permutes: they index NCHW tensors directly.
enum ConvReference {
    /// A quantized convolution problem in PyTorch's layouts: x NCHW quint8, w `[O, C / groups, kh, kw]` qint8.
    struct Quantized {
        var n: Int, c: Int, h: Int, w: Int
        var outChannels: Int, groups: Int, kernel: Size2d
        var stride: Size2d = 1, padding: Size2d = 0, dilation: Size2d = 1
        var x: [Int], xScale: Float, xZeroPoint: Int
        var weights: [Int], wScales: [Float], wZeroPoints: [Int], perChannel: Bool
        var bias: [Float]?

        var inPerGroup: Int { c / groups }
        var outPerGroup: Int { outChannels / groups }
        var outHeight: Int { (h + 2 * padding.height - dilation.height * (kernel.height - 1) - 1) / stride.height + 1 }
        var outWidth: Int { (w + 2 * padding.width - dilation.width * (kernel.width - 1) - 1) / stride.width + 1 }
        var weightShape: [Int] { [outChannels, inPerGroup, kernel.height, kernel.width] }

        func input() throws -> QuantizedTensor {
            try QuantizedTensor(intRepr: Tensor(shape: [n, c, h, w], scalars: x.map { UInt8($0) }), scale: xScale,
                                zeroPoint: xZeroPoint)
        }

        func weight() throws -> QuantizedTensor {
            let values = try Tensor(shape: weightShape, scalars: weights.map { Int8($0) })
            return perChannel
                ? try QuantizedTensor(intRepr: values, scales: wScales, zeroPoints: wZeroPoints, axis: 0)
                : try QuantizedTensor(intRepr: values, scale: wScales[0], zeroPoint: wZeroPoints[0])
        }

        func packed() throws -> PackedConv2dWeight {
            try PackedConv2dWeight(weight: weight(), bias: bias.map { Tensor($0) }, groups: groups)
        }

        /// The exact int32 accumulators, NCHW; taps in the padding read the input zero point (contribute 0).
        func raw() -> [Int32] {
            let (oh, ow) = (outHeight, outWidth)
            var out = [Int32](repeating: 0, count: n * outChannels * oh * ow)
            for b in 0..<n {
                for o in 0..<outChannels {
                    let group = o / outPerGroup, zw = wZeroPoints[perChannel ? o : 0]
                    for oy in 0..<oh {
                        for ox in 0..<ow {
                            var acc: Int32 = 0
                            for ci in 0..<inPerGroup {
                                let channel = group * inPerGroup + ci
                                for ky in 0..<kernel.height {
                                    let iy = oy * stride.height - padding.height + ky * dilation.height
                                    guard iy >= 0, iy < h else { continue }
                                    for kx in 0..<kernel.width {
                                        let ix = ox * stride.width - padding.width + kx * dilation.width
                                        guard ix >= 0, ix < w else { continue }
                                        let xv = x[((b * c + channel) * h + iy) * w + ix] - xZeroPoint
                                        let wv = weights[((o * inPerGroup + ci) * kernel.height + ky) * kernel.width
                                                         + kx] - zw
                                        acc = acc &+ Int32(xv * wv)
                                    }
                                }
                            }
                            out[((b * outChannels + o) * oh + oy) * ow + ox] = acc
                        }
                    }
                }
            }
            return out
        }

        /// PyTorch's output, NCHW.
        func expected(outScale: Float, outZeroPoint: Int, relu: Bool) -> [Int] {
            let plane = outHeight * outWidth
            return raw().enumerated().map { index, acc in
                let o = (index / plane) % outChannels
                return LinearReference.requantize(
                    raw: acc, xScale: xScale, wScale: wScales[perChannel ? o : 0], bias: bias?[o],
                    perChannel: perChannel, outScale: outScale, outZeroPoint: outZeroPoint, relu: relu,
                    dtype: .quint8)
            }
        }

        var summary: String {
            "n\(n) c\(c) \(h)x\(w) o\(outChannels) g\(groups) k\(kernel) s\(stride) p\(padding) d\(dilation) "
                + (perChannel ? "per-channel" : "per-tensor") + (bias == nil ? " no bias" : "")
        }
    }

}

extension ConvReference.Quantized {
    /// Random data; weight zero points are nonzero (affine) when `affineWeights`.
    init(n: Int, c: Int, h: Int, w: Int, outChannels: Int, groups: Int, kernel: Size2d, stride: Size2d = 1,
         padding: Size2d = 0, dilation: Size2d = 1, perChannel: Bool, affineWeights: Bool = false,
         bias: Bool = true, seed: UInt64) {
        var g = SplitMix64(seed: seed)
        (self.n, self.c, self.h, self.w) = (n, c, h, w)
        (self.outChannels, self.groups, self.kernel) = (outChannels, groups, kernel)
        (self.stride, self.padding, self.dilation) = (stride, padding, dilation)
        x = (0..<(n * c * h * w)).map { _ in Int(g.next() % 256) }
        xScale = Float.random(in: 0.01...0.05, using: &g)
        xZeroPoint = Int(g.next() % 256)
        let count = outChannels * (c / groups) * kernel.height * kernel.width
        weights = (0..<count).map { _ in Int(g.next() % 256) - 128 }
        self.perChannel = perChannel
        let params = perChannel ? outChannels : 1
        wScales = (0..<params).map { _ in Float.random(in: 0.002...0.01, using: &g) }
        wZeroPoints = (0..<params).map { _ in affineWeights ? Int(g.next() % 21) - 10 : 0 }
        self.bias = bias ? (0..<outChannels).map { _ in Float.random(in: -2...2, using: &g) } : nil
    }
}

extension ConvReference {
    /// fp32 depthwise convolution in Double: the exact value of the fp32 inputs, and the C API's error bound
    /// `(taps + 2) * 2^-23 * (sum |x w| + |bias|)` for each output. NCHW.
    static func depthwise(x: [Float], n: Int, c: Int, h: Int, w: Int, weights: [Float], multiplier: Int,
                          kernel: Size2d, bias: [Float]?, stride: Size2d, padding: Size2d, dilation: Size2d,
                          relu: Bool) -> (y: [Double], bound: [Double]) {
        let o = c * multiplier
        let oh = (h + 2 * padding.height - dilation.height * (kernel.height - 1) - 1) / stride.height + 1
        let ow = (w + 2 * padding.width - dilation.width * (kernel.width - 1) - 1) / stride.width + 1
        var y = [Double](repeating: 0, count: n * o * oh * ow), bound = y
        let taps = Double(kernel.height * kernel.width)
        for b in 0..<n {
            for oc in 0..<o {
                let channel = oc / multiplier
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        var sum = Double(bias?[oc] ?? 0), magnitude = abs(sum)
                        for ky in 0..<kernel.height {
                            let iy = oy * stride.height - padding.height + ky * dilation.height
                            guard iy >= 0, iy < h else { continue }
                            for kx in 0..<kernel.width {
                                let ix = ox * stride.width - padding.width + kx * dilation.width
                                guard ix >= 0, ix < w else { continue }
                                let p = Double(x[((b * c + channel) * h + iy) * w + ix])
                                    * Double(weights[(oc * kernel.height + ky) * kernel.width + kx])
                                sum += p
                                magnitude += abs(p)
                            }
                        }
                        let index = ((b * o + oc) * oh + oy) * ow + ox
                        y[index] = relu ? max(sum, 0) : sum
                        bound[index] = (taps + 2) * 0x1p-23 * magnitude + Double(Float.leastNonzeroMagnitude)
                    }
                }
            }
        }
        return (y, bound)
    }

    /// NCHW -> NHWC by index arithmetic (the oracle for the library's blocked permutes).
    static func nhwc<T>(_ x: [T], n: Int, c: Int, h: Int, w: Int) -> [T] {
        var out = x
        for b in 0..<n { for ch in 0..<c { for y in 0..<h { for col in 0..<w {
            out[((b * h + y) * w + col) * c + ch] = x[((b * c + ch) * h + y) * w + col]
        } } } }
        return out
    }
}

final class QuantizedConvolutionTests: XCTestCase {
    override func setUp() {
        super.setUp()
        addTeardownBlock {
            try Runtime.setNumberOfThreads(nil)
            try ISAState.restore()
        }
    }

    // MARK: Layout

    func testSize2dLiteralsAndDescription() {
        let both: Size2d = 3
        XCTAssertEqual(both, Size2d(height: 3, width: 3))
        XCTAssertEqual(Size2d(2), Size2d(height: 2, width: 2))
        XCTAssertEqual(Size2d(height: 2, width: 1).description, "(2, 1)")
        XCTAssertNotEqual(Size2d(height: 2, width: 1), Size2d(height: 1, width: 2))
        XCTAssertEqual(ConvolutionLayout.allCases.map(\.description), ["nchw", "nhwc"])
    }

    func testPermutesMatchIndexArithmeticAndRoundTrip() throws {
        // Sizes below, at and above the blocks (8 bytes) and tiles (32 / 64 elements), fewer channels or pixels than
        // a block, planes whose rows are a multiple of 2 KB apart (the other loop order), degenerate planes, and
        // empty tensors.
        let shapes: [[Int]] = [[1, 1, 1, 1], [2, 3, 4, 5], [1, 37, 9, 7], [2, 64, 6, 6], [1, 3, 33, 35], [3, 1, 5, 4],
                               [2, 5, 1, 1], [1, 40, 1, 40], [1, 130, 3, 67], [1, 512, 3, 5], [1, 10, 32, 16],
                               [1, 2048, 1, 9], [2, 7, 9, 9], [0, 3, 4, 4], [2, 3, 0, 5], [2, 0, 3, 3]]
        var generator = SplitMix64(seed: 5)
        for shape in shapes {
            let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
            let count = shape.reduce(1, *)
            let floats = (0..<count).map { _ in Float(bitPattern: UInt32(truncatingIfNeeded: generator.next())) }
            let bytes = (0..<count).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            let ints = (0..<count).map { _ in Int32(truncatingIfNeeded: generator.next()) }

            let x = try Tensor(shape: shape, scalars: floats)
            let y = try x.permutedToNHWC()
            XCTAssertEqual(y.shape, [n, h, w, c])
            let expected = try Tensor(shape: [n, h, w, c], scalars: ConvReference.nhwc(floats, n: n, c: c, h: h, w: w))
            XCTAssertTrue(bitwiseEqual(y, expected), "\(shape)")
            XCTAssertTrue(bitwiseEqual(try y.permutedToNCHW(), x), "\(shape) round trip")

            let xb = try Tensor(shape: shape, scalars: bytes)
            XCTAssertEqual(try xb.permutedToNHWC().scalars, ConvReference.nhwc(bytes, n: n, c: c, h: h, w: w))
            XCTAssertEqual(try xb.permutedToNHWC().permutedToNCHW(), xb)
            let xi = try Tensor(shape: shape, scalars: ints)
            XCTAssertEqual(try xi.permutedToNHWC().scalars, ConvReference.nhwc(ints, n: n, c: c, h: h, w: w))
            XCTAssertEqual(try xi.permutedToNHWC().permutedToNCHW(), xi)
            #if !(os(macOS) && arch(x86_64))
            let xh = x.converted(to: Float16.self)
            XCTAssertTrue(bitwiseEqual(try xh.permutedToNHWC(), expected.converted(to: Float16.self)), "\(shape) fp16")
            #endif
        }
    }

    func testQuantizedPermutesKeepParametersAndRemapTheAxis() throws {
        let shape = [2, 3, 4, 5]
        let x = try Tensor(shape: shape, scalars: TestData.uniform(count: 120, magnitude: 3, seed: 8))
        let perTensor = try x.quantized(scale: 0.05, zeroPoint: 7, dtype: .qint8)
        let nhwc = try perTensor.permutedToNHWC()
        XCTAssertEqual(nhwc.shape, [2, 4, 5, 3])
        XCTAssertEqual(nhwc.dtype, .qint8)
        XCTAssertEqual(nhwc.qscheme, .perTensorAffine)
        XCTAssertEqual(nhwc.scales, [0.05])
        XCTAssertEqual(nhwc.zeroPoints, [7])
        XCTAssertNil(nhwc.axis)
        XCTAssertEqual(nhwc.intRepr(), ConvReference.nhwc(perTensor.intRepr(), n: 2, c: 3, h: 4, w: 5))
        XCTAssertEqual(try nhwc.permutedToNCHW(), perTensor)

        // Per channel along every NCHW axis: the axis follows its dimension, and dequantizing commutes with permuting.
        let nchwToNHWC = [0: 0, 1: 3, 2: 1, 3: 2]
        for (axis, newAxis) in nchwToNHWC {
            let channels = shape[axis]
            let scales = (0..<channels).map { Float($0 + 1) * 0.01 }
            let zeroPoints = (0..<channels).map { $0 * 3 }
            for dtype in [QuantizedDType.quint8, .qint8, .qint32] {
                let q = try x.quantized(scales: scales, zeroPoints: zeroPoints, axis: axis, dtype: dtype,
                                        qscheme: .perChannelAffine)
                let p = try q.permutedToNHWC()
                XCTAssertEqual(p.axis, newAxis, "axis \(axis)")
                XCTAssertEqual(p.scales, scales)
                XCTAssertEqual(p.zeroPoints, zeroPoints)
                XCTAssertEqual(p.qscheme, .perChannelAffine)
                XCTAssertTrue(bitwiseEqual(p.dequantized(), try q.dequantized().permutedToNHWC()), "axis \(axis)")
                let back = try p.permutedToNCHW()
                XCTAssertEqual(back, q, "axis \(axis) \(dtype) round trip")
                XCTAssertEqual(back.axis, axis)
            }
        }
        // Symmetric schemes survive too.
        let symmetric = try x.quantized(scales: [0.1, 0.2, 0.3], zeroPoints: [0, 0, 0], axis: 1, dtype: .qint8,
                                        qscheme: .perChannelSymmetric)
        XCTAssertEqual(try symmetric.permutedToNHWC().qscheme, .perChannelSymmetric)
    }

    func testPermutesRejectOtherRanks() throws {
        for shape in [[], [4], [2, 3], [2, 3, 4], [1, 2, 3, 4, 5]] {
            let count = shape.reduce(1, *)
            let x = try Tensor(shape: shape, scalars: [Float](repeating: 1, count: count))
            for body in [{ try x.permutedToNHWC() }, { try x.permutedToNCHW() }] {
                guard let error = quantizationError(body) else { continue }
                guard case .invalidOperand = error else { return XCTFail("\(shape): \(error)") }
                error.assertInformative(mentions: ["4-D", "\(shape)"])
            }
            let q = try x.quantized(scale: 1, zeroPoint: 0, dtype: .quint8)
            XCTAssertNotNil(quantizationError { try q.permutedToNHWC() })
            XCTAssertNotNil(quantizationError { try q.permutedToNCHW() })
        }
    }

    // MARK: Quantized convolution

    /// Checks `quantizedConv2d` against the reference in NCHW and NHWC, with and without ReLU.
    private func check(_ p: ConvReference.Quantized, outScale: Float = 0.07, outZeroPoint: Int = 100,
                       file: StaticString = #filePath, line: UInt = #line) throws {
        let packed = try p.packed()
        XCTAssertEqual(packed.inChannels, p.c, file: file, line: line)
        XCTAssertEqual(packed.outChannels, p.outChannels, file: file, line: line)
        XCTAssertEqual(packed.kernelSize, p.kernel, file: file, line: line)
        let x = try p.input(), xNHWC = try x.permutedToNHWC()
        for relu in [false, true] {
            let expected = p.expected(outScale: outScale, outZeroPoint: outZeroPoint, relu: relu)
            let y = try quantizedConv2d(x, packed, stride: p.stride, padding: p.padding, dilation: p.dilation,
                                        scale: outScale, zeroPoint: outZeroPoint, relu: relu)
            XCTAssertEqual(y.shape, [p.n, p.outChannels, p.outHeight, p.outWidth], file: file, line: line)
            XCTAssertEqual(y.dtype, .quint8, file: file, line: line)
            XCTAssertEqual(y.scales, [outScale], file: file, line: line)
            XCTAssertEqual(y.zeroPoints, [outZeroPoint], file: file, line: line)
            let got = y.intRepr().map(Int.init)
            if got != expected {
                let bad = got.indices.filter { got[$0] != expected[$0] }
                XCTFail("\(p.summary) relu \(relu): \(bad.count) of \(got.count) outputs differ, first at \(bad[0]): "
                        + "got \(got[bad[0]]), expected \(expected[bad[0]]) (kernel \(packed.kernelName))",
                        file: file, line: line)
            }
            let yNHWC = try quantizedConv2d(xNHWC, packed, stride: p.stride, padding: p.padding, dilation: p.dilation,
                                            scale: outScale, zeroPoint: outZeroPoint, relu: relu, layout: .nhwc)
            XCTAssertEqual(yNHWC.shape, [p.n, p.outHeight, p.outWidth, p.outChannels], file: file, line: line)
            XCTAssertEqual(try yNHWC.permutedToNCHW(), y, "\(p.summary): NHWC differs from NCHW", file: file,
                           line: line)
        }
    }

    func testQuantizedConvSweep() throws {
        var seed: UInt64 = 100
        func next() -> UInt64 { seed += 1; return seed }
        // Groups: plain, grouped, depthwise, depthwise with a depth multiplier; kernels incl. 1x1 and non-square.
        let layers: [(c: Int, o: Int, groups: Int)] = [(3, 5, 1), (8, 4, 2), (6, 6, 3), (8, 8, 8), (4, 8, 4)]
        let kernels: [Size2d] = [1, 3, Size2d(height: 1, width: 3), Size2d(height: 3, width: 2), 5]
        let strides: [Size2d] = [1, 2, Size2d(height: 2, width: 1)]
        let paddings: [Size2d] = [0, 1, Size2d(height: 2, width: 0)]
        let dilations: [Size2d] = [1, 2, Size2d(height: 1, width: 3)]
        var checked = 0
        for (index, layer) in layers.enumerated() {
            for (k, kernel) in kernels.enumerated() {
                // A rotating choice of the other parameters keeps the sweep small but covers every value per layer.
                let stride = strides[(index + k) % strides.count]
                let padding = paddings[(index + 2 * k) % paddings.count]
                let dilation = dilations[(2 * index + k) % dilations.count]
                for perChannel in [false, true] {
                    let p = ConvReference.Quantized(
                        n: 2, c: layer.c, h: 9, w: 11, outChannels: layer.o, groups: layer.groups, kernel: kernel,
                        stride: stride, padding: padding, dilation: dilation, perChannel: perChannel,
                        affineWeights: perChannel && k % 2 == 1, bias: k != 2, seed: next())
                    try check(p)
                    checked += 1
                }
            }
        }
        // Every stride, padding and dilation with a 3x3 kernel, per layer kind.
        for layer in [layers[0], layers[3]] {
            for stride in strides {
                for padding in paddings {
                    for dilation in dilations {
                        let p = ConvReference.Quantized(
                            n: 1, c: layer.c, h: 8, w: 10, outChannels: layer.o, groups: layer.groups, kernel: 3,
                            stride: stride, padding: padding, dilation: dilation, perChannel: true, seed: next())
                        try check(p, outScale: 0.05, outZeroPoint: 30)
                    }
                }
            }
            checked += 27
        }
        XCTAssertEqual(checked, 104)
    }

    func testOneByOneAndPaths() throws {
        // 1x1 stride 1 no padding (the direct GEMM path), 1x1 strided and padded (im2col), depthwise.
        let direct = ConvReference.Quantized(n: 2, c: 6, h: 5, w: 7, outChannels: 12, groups: 1, kernel: 1,
                                             perChannel: false, seed: 1)
        try check(direct)
        let directKernel = try direct.packed().kernelName
        XCTAssertTrue(directKernel.hasPrefix("1x1"), directKernel)
        let strided = ConvReference.Quantized(n: 1, c: 6, h: 5, w: 7, outChannels: 12, groups: 1, kernel: 1,
                                              stride: 2, padding: 1, perChannel: true, seed: 2)
        try check(strided)
        let im2col = ConvReference.Quantized(n: 1, c: 6, h: 5, w: 7, outChannels: 4, groups: 2, kernel: 3,
                                             perChannel: true, seed: 3)
        try check(im2col)
        let im2colKernel = try im2col.packed().kernelName
        XCTAssertTrue(im2colKernel.hasPrefix("im2col"), im2colKernel)
        let depthwise = ConvReference.Quantized(n: 1, c: 16, h: 7, w: 7, outChannels: 16, groups: 16, kernel: 3,
                                                padding: 1, perChannel: true, seed: 4)
        try check(depthwise)
        let depthwiseKernel = try depthwise.packed().kernelName
        XCTAssertTrue(depthwiseKernel.hasPrefix("depthwise"), depthwiseKernel)
        XCTAssertGreaterThan(try depthwise.packed().packedByteCount, 0)
    }

    func testExtremeParametersSaturate() throws {
        // Tiny output scale: most outputs clamp at 0 or 255; zero points at the ends of the range.
        var p = ConvReference.Quantized(n: 1, c: 4, h: 6, w: 6, outChannels: 4, groups: 1, kernel: 3, padding: 1,
                                        perChannel: true, seed: 9)
        try check(p, outScale: 1e-4, outZeroPoint: 0)
        try check(p, outScale: 1e-4, outZeroPoint: 255)
        p.x = p.x.map { _ in 255 }
        p.xZeroPoint = 0
        p.weights = p.weights.map { _ in -128 }
        try check(p, outScale: 10, outZeroPoint: 128)
    }

    func testLargerLayerOnEveryISAAndThreadCount() throws {
        let p = ConvReference.Quantized(n: 1, c: 16, h: 20, w: 18, outChannels: 24, groups: 1, kernel: 3, padding: 1,
                                        perChannel: true, seed: 77)
        let expected = p.expected(outScale: 0.2, outZeroPoint: 64, relu: false)
        let dw = ConvReference.Quantized(n: 2, c: 48, h: 15, w: 15, outChannels: 48, groups: 48, kernel: 3,
                                         stride: 2, padding: 1, perChannel: false, seed: 78)
        let expectedDW = dw.expected(outScale: 0.1, outZeroPoint: 3, relu: true)
        for isa in Runtime.supportedISAs {
            try Runtime.setISA(isa)
            for threads in [1, 2] {
                try Runtime.setNumberOfThreads(threads)
                let y = try quantizedConv2d(p.input(), p.packed(), padding: 1, scale: 0.2, zeroPoint: 64)
                XCTAssertEqual(y.intRepr().map(Int.init), expected, "\(isa), \(threads) threads")
                let z = try quantizedConv2d(dw.input(), dw.packed(), stride: 2, padding: 1, scale: 0.1, zeroPoint: 3,
                                            relu: true)
                XCTAssertEqual(z.intRepr().map(Int.init), expectedDW, "depthwise, \(isa), \(threads) threads")
            }
        }
    }

    func testUnpackedWeightOverloadMatchesPacked() throws {
        let p = ConvReference.Quantized(n: 1, c: 4, h: 7, w: 6, outChannels: 6, groups: 2, kernel: 3, stride: 2,
                                        padding: 1, dilation: 1, perChannel: true, seed: 12)
        let packed = try quantizedConv2d(p.input(), p.packed(), stride: 2, padding: 1, scale: 0.1, zeroPoint: 5,
                                         relu: true)
        let unpacked = try quantizedConv2d(p.input(), weight: p.weight(), bias: Tensor(p.bias!), stride: 2,
                                           padding: 1, groups: 2, scale: 0.1, zeroPoint: 5, relu: true)
        XCTAssertEqual(unpacked, packed)
        XCTAssertEqual(unpacked.intRepr().map(Int.init), p.expected(outScale: 0.1, outZeroPoint: 5, relu: true))
        let weight = try p.packed()
        XCTAssertEqual(weight.weight, try p.weight())
        XCTAssertEqual(weight.bias, Tensor(p.bias!))
        XCTAssertEqual(weight.groups, 2)
    }

    func testEmptyBatch() throws {
        let p = ConvReference.Quantized(n: 0, c: 4, h: 5, w: 5, outChannels: 8, groups: 1, kernel: 3, perChannel: false,
                                        seed: 3)
        for layout in ConvolutionLayout.allCases {
            let x = layout == .nchw ? try p.input() : try p.input().permutedToNHWC()
            let y = try quantizedConv2d(x, p.packed(), stride: 2, scale: 0.1, zeroPoint: 0, layout: layout)
            XCTAssertEqual(y.shape, layout == .nchw ? [0, 8, 2, 2] : [0, 2, 2, 8])
            XCTAssertEqual(y.count, 0)
        }
        // The geometry is still checked for an empty batch.
        XCTAssertNotNil(quantizationError { try quantizedConv2d(p.input(), p.packed(), dilation: 3, scale: 0.1,
                                                                zeroPoint: 0) })
        let w = try PackedDepthwiseConv2dWeight(weight: Tensor(repeating: 1, shape: [4, 1, 3, 3]))
        let y = try depthwiseConv2d(Tensor(zeros: [0, 4, 6, 6]), w, padding: 1, layout: .nchw)
        XCTAssertEqual(y.shape, [0, 4, 6, 6])
    }

    // MARK: Quantized errors

    private func assertOperandError(_ fragments: [String], file: StaticString = #filePath, line: UInt = #line,
                                    _ body: () throws -> Any) {
        guard let error = quantizationError(body, file: file, line: line) else { return }
        guard case .invalidOperand = error else {
            return XCTFail("expected invalidOperand, got \(error)", file: file, line: line)
        }
        error.assertInformative(mentions: fragments, file: file, line: line)
    }

    func testPackingErrors() throws {
        let values = try Tensor(shape: [4, 2, 3, 3], scalars: [Int8](repeating: 1, count: 72))
        let weight = try QuantizedTensor(intRepr: values, scale: 0.1, zeroPoint: 0)
        let prepack = "quantized::conv2d_prepack"
        // dtype
        let unsigned = try QuantizedTensor(intRepr: Tensor<UInt8>(repeating: 1, shape: [4, 2, 3, 3]), scale: 0.1,
                                           zeroPoint: 0)
        assertOperandError([prepack, "qint8", "quint8"]) { try PackedConv2dWeight(weight: unsigned) }
        let wide = try QuantizedTensor(intRepr: Tensor(shape: [4, 2, 3, 3], scalars: [Int32](repeating: 1, count: 72)),
                                       scale: 0.1, zeroPoint: 0)
        assertOperandError(["qint32"]) { try PackedConv2dWeight(weight: wide) }
        // rank
        let flat = try QuantizedTensor(intRepr: values.reshaped(to: [4, 18]), scale: 0.1, zeroPoint: 0)
        assertOperandError(["4-D", "[4, 18]"]) { try PackedConv2dWeight(weight: flat) }
        // zero-sized dimension
        let empty = try QuantizedTensor(intRepr: Tensor<Int8>(zeros: [4, 0, 3, 3]), scale: 0.1, zeroPoint: 0)
        assertOperandError(["at least 1", "[4, 0, 3, 3]"]) { try PackedConv2dWeight(weight: empty) }
        // groups
        assertOperandError(["groups", "0"]) { try PackedConv2dWeight(weight: weight, groups: 0) }
        assertOperandError(["divisible by groups 3"]) { try PackedConv2dWeight(weight: weight, groups: 3) }
        // per-channel axis
        let axis1 = try QuantizedTensor(intRepr: values, scales: [0.1, 0.2], zeroPoints: [0, 0], axis: 1)
        assertOperandError(["axis 0", "axis 1"]) { try PackedConv2dWeight(weight: axis1) }
        // bias
        assertOperandError(["bias", "[4]", "[3]"]) {
            try PackedConv2dWeight(weight: weight, bias: Tensor([1, 2, 3]))
        }
        // The valid weight packs, with 2 groups too.
        XCTAssertEqual(try PackedConv2dWeight(weight: weight, groups: 2).inChannels, 4)
    }

    func testConvolutionErrors() throws {
        let p = ConvReference.Quantized(n: 1, c: 4, h: 5, w: 6, outChannels: 4, groups: 2, kernel: 3,
                                        perChannel: true, seed: 21)
        let w = try p.packed(), x = try p.input()
        let op = "quantized::conv2d"
        func run(_ x: QuantizedTensor, stride: Size2d = 1, padding: Size2d = 0, dilation: Size2d = 1,
                 scale: Float = 0.1, zeroPoint: Int = 0, relu: Bool = false,
                 layout: ConvolutionLayout = .nchw) throws -> QuantizedTensor {
            try quantizedConv2d(x, w, stride: stride, padding: padding, dilation: dilation, scale: scale,
                                zeroPoint: zeroPoint, relu: relu, layout: layout)
        }
        // dtype and scheme of the input
        let signed = try QuantizedTensor(intRepr: Tensor<Int8>(zeros: [1, 4, 5, 6]), scale: 0.1, zeroPoint: 0)
        assertOperandError([op, "quint8", "qint8"]) { try run(signed) }
        let perChannel = try QuantizedTensor(intRepr: try x.intRepr(as: UInt8.self), scales: [0.1, 0.1, 0.1, 0.1],
                                             zeroPoints: [0, 0, 0, 0], axis: 1)
        assertOperandError(["per tensor", "per_channel_affine"]) { try run(perChannel) }
        // rank and channels, in both layouts
        let rank3 = try QuantizedTensor(intRepr: try x.intRepr(as: UInt8.self).reshaped(to: [4, 5, 6]), scale: 0.1,
                                        zeroPoint: 0)
        assertOperandError(["4-D", "[4, 5, 6]"]) { try run(rank3) }
        let three = try QuantizedTensor(intRepr: Tensor(shape: [1, 3, 5, 6], scalars: [UInt8](repeating: 0, count: 90)),
                                        scale: 0.1, zeroPoint: 0)
        assertOperandError(["3 channels", "expects 4"]) { try run(three) }
        assertOperandError(["6 channels", "nhwc"]) { try run(x, layout: .nhwc) }   // NCHW data read as NHWC
        assertOperandError(["relu"]) { try run(three, relu: true) }
        // stride, dilation, padding
        assertOperandError(["stride", "(0, 1)"]) { try run(x, stride: Size2d(height: 0, width: 1)) }
        assertOperandError(["stride", "(1, -2)"]) { try run(x, stride: Size2d(height: 1, width: -2)) }
        assertOperandError(["dilation", "(1, 0)"]) { try run(x, dilation: Size2d(height: 1, width: 0)) }
        assertOperandError(["padding", "-1"]) { try run(x, padding: -1) }
        // kernel larger than the padded input (height 5: dilation 3 spans 7; width 6 + 2 * 0 < 7)
        assertOperandError(["larger than the padded input", "height"]) { try run(x, dilation: 3) }
        assertOperandError(["larger than the padded input", "width"]) {
            try run(x, padding: Size2d(height: 1, width: 0), dilation: Size2d(height: 2, width: 3))
        }
        XCTAssertNoThrow(try run(x, padding: 1, dilation: 3))   // 5 + 2 = 7 fits exactly
        // zero-sized spatial input
        let flat = try QuantizedTensor(intRepr: Tensor<UInt8>(zeros: [1, 4, 0, 6]), scale: 0.1, zeroPoint: 0)
        assertOperandError(["at least 1", "0 x 6"]) { try run(flat, padding: 2) }
        // output parameters
        guard case .invalidScale = quantizationError({ try run(x, scale: 0) }) else { return XCTFail("scale 0") }
        guard case .invalidScale = quantizationError({ try run(x, scale: .nan) }) else { return XCTFail("NaN scale") }
        guard case .zeroPointOutOfRange(256, .quint8, nil) = quantizationError({ try run(x, zeroPoint: 256) }) else {
            return XCTFail("zero point 256")
        }
        guard case .zeroPointOutOfRange = quantizationError({ try run(x, zeroPoint: -1) }) else {
            return XCTFail("zero point -1")
        }
    }

    // MARK: fp32 depthwise convolution

    func testDepthwiseSweep() throws {
        var seed: UInt64 = 500
        let cases: [(c: Int, multiplier: Int, kernel: Size2d, stride: Size2d, padding: Size2d, dilation: Size2d)] = [
            (8, 1, 3, 1, 1, 1), (16, 1, 3, 2, 1, 1), (5, 2, 3, 1, 0, 2), (12, 1, 5, 1, 2, 1), (3, 3, 1, 1, 0, 1),
            (7, 1, Size2d(height: 1, width: 3), Size2d(height: 2, width: 1), Size2d(height: 0, width: 1), 1),
            (9, 1, Size2d(height: 3, width: 2), 1, 1, Size2d(height: 1, width: 3)), (33, 1, 3, 1, 1, 1),
            (4, 2, 7, 3, 3, 1),
        ]
        for isa in Runtime.supportedISAs {
            try Runtime.setISA(isa)
            for item in cases {
                seed += 1
                let (n, h, w) = (2, 10, 9)
                let o = item.c * item.multiplier
                let x = TestData.uniform(count: n * item.c * h * w, magnitude: 4, seed: seed)
                let weights = TestData.uniform(count: o * item.kernel.height * item.kernel.width, magnitude: 1,
                                               seed: seed + 1000)
                let bias = seed % 2 == 0 ? TestData.uniform(count: o, magnitude: 1, seed: seed + 2000) : nil
                let packed = try PackedDepthwiseConv2dWeight(
                    weight: Tensor(shape: [o, 1, item.kernel.height, item.kernel.width], scalars: weights),
                    bias: bias.map { Tensor($0) }, groups: item.c)
                XCTAssertEqual(packed.inChannels, item.c)
                XCTAssertEqual(packed.outChannels, o)
                XCTAssertEqual(packed.depthMultiplier, item.multiplier)
                XCTAssertEqual(packed.kernelSize, item.kernel)
                XCTAssertFalse(packed.kernelName.isEmpty)
                XCTAssertGreaterThan(packed.packedByteCount, 0)
                let input = try Tensor(shape: [n, item.c, h, w], scalars: x)
                for relu in [false, true] {
                    let (expected, bound) = ConvReference.depthwise(
                        x: x, n: n, c: item.c, h: h, w: w, weights: weights, multiplier: item.multiplier,
                        kernel: item.kernel, bias: bias, stride: item.stride, padding: item.padding,
                        dilation: item.dilation, relu: relu)
                    let y = try depthwiseConv2d(input, packed, stride: item.stride, padding: item.padding,
                                                dilation: item.dilation, relu: relu)
                    let oh = (h + 2 * item.padding.height - item.dilation.height * (item.kernel.height - 1) - 1)
                        / item.stride.height + 1
                    let ow = (w + 2 * item.padding.width - item.dilation.width * (item.kernel.width - 1) - 1)
                        / item.stride.width + 1
                    XCTAssertEqual(y.shape, [n, o, oh, ow])
                    let got = y.scalars
                    let bad = got.indices.filter { abs(Double(got[$0]) - expected[$0]) > bound[$0] }
                    XCTAssertTrue(bad.isEmpty, "\(isa) \(item) relu \(relu): \(bad.count) outputs beyond the bound, "
                                  + "first \(bad.first.map { "\(got[$0]) vs \(expected[$0])" } ?? "")")
                    if relu { XCTAssertTrue(got.allSatisfy { $0 >= 0 }) }
                    let yNHWC = try depthwiseConv2d(input.permutedToNHWC(), packed, stride: item.stride,
                                                    padding: item.padding, dilation: item.dilation, relu: relu,
                                                    layout: .nhwc)
                    XCTAssertTrue(bitwiseEqual(try yNHWC.permutedToNCHW(), y), "\(isa) \(item): NHWC differs")
                }
            }
        }
    }

    func testDepthwiseIsThreadCountInvariantAndPropagatesNaN() throws {
        let (c, h, w) = (32, 30, 30)
        let x = TestData.uniform(count: c * h * w, magnitude: 2, seed: 31)
        var input = try Tensor(shape: [1, c, h, w], scalars: x)
        input[0, 3, 10, 10] = .nan
        let packed = try PackedDepthwiseConv2dWeight(
            weight: Tensor(shape: [c, 1, 3, 3], scalars: TestData.uniform(count: c * 9, magnitude: 1, seed: 32)),
            bias: Tensor(TestData.uniform(count: c, magnitude: 1, seed: 33)))
        try Runtime.setNumberOfThreads(1)
        let one = try depthwiseConv2d(input, packed, padding: 1, relu: true)
        try Runtime.setNumberOfThreads(2)
        let two = try depthwiseConv2d(input, packed, padding: 1, relu: true)
        XCTAssertTrue(bitwiseEqual(one, two))
        XCTAssertTrue(one[0, 3, 10, 10].isNaN, "NaN stays NaN through ReLU")
        XCTAssertTrue(one[0, 3, 9, 9].isNaN)
        XCTAssertFalse(one[0, 3, 12, 12].isNaN)
        XCTAssertFalse(one[0, 4, 10, 10].isNaN, "other channels are not touched")
    }

    func testDepthwiseErrors() throws {
        let op = "conv2d (depthwise)"
        assertOperandError([op, "4-D", "[4, 9]"]) {
            try PackedDepthwiseConv2dWeight(weight: Tensor(zeros: [4, 9]))
        }
        assertOperandError(["one input channel per group", "[4, 2, 3, 3]"]) {
            try PackedDepthwiseConv2dWeight(weight: Tensor(zeros: [4, 2, 3, 3]))
        }
        assertOperandError(["multiple of groups 3"]) {
            try PackedDepthwiseConv2dWeight(weight: Tensor(zeros: [4, 1, 3, 3]), groups: 3)
        }
        assertOperandError(["groups 0"]) {
            try PackedDepthwiseConv2dWeight(weight: Tensor(zeros: [4, 1, 3, 3]), groups: 0)
        }
        assertOperandError(["at least 1", "[4, 1, 0, 3]"]) {
            try PackedDepthwiseConv2dWeight(weight: Tensor(zeros: [4, 1, 0, 3]))
        }
        assertOperandError(["bias", "[4]", "[2]"]) {
            try PackedDepthwiseConv2dWeight(weight: Tensor(zeros: [4, 1, 3, 3]), bias: Tensor([1, 2]))
        }
        let w = try PackedDepthwiseConv2dWeight(weight: Tensor(repeating: 0.5, shape: [4, 1, 3, 3]), groups: 2)
        XCTAssertEqual(w.depthMultiplier, 2)
        let x = try Tensor<Float>(repeating: 1, shape: [1, 2, 5, 5])
        assertOperandError(["4-D", "[2, 5, 5]"]) { try depthwiseConv2d(x.reshaped(to: [2, 5, 5]), w) }
        assertOperandError(["4 channels", "expects 2"]) { try depthwiseConv2d(Tensor(zeros: [1, 4, 5, 5]), w) }
        assertOperandError(["5 channels", "nhwc"]) { try depthwiseConv2d(x, w, layout: .nhwc) }
        assertOperandError(["stride", "(0, 0)"]) { try depthwiseConv2d(x, w, stride: 0) }
        assertOperandError(["dilation", "(0, 1)"]) { try depthwiseConv2d(x, w, dilation: Size2d(height: 0, width: 1)) }
        assertOperandError(["padding", "(-1, 0)"]) { try depthwiseConv2d(x, w, padding: Size2d(height: -1, width: 0)) }
        assertOperandError(["larger than the padded input"]) { try depthwiseConv2d(x, w, dilation: 3) }
        assertOperandError(["at least 1", "5 x 0"]) { try depthwiseConv2d(Tensor(zeros: [1, 2, 5, 0]), w, padding: 1) }
        // All ones in, 0.5 per tap: interior outputs 4.5, corners (4 taps) 2.
        let y = try depthwiseConv2d(x, w, padding: 1, relu: true)
        XCTAssertEqual(y.shape, [1, 4, 5, 5])
        XCTAssertEqual(y[0, 3, 2, 2], 4.5)
        XCTAssertEqual(y[0, 0, 0, 0], 2)
    }

    // MARK: Golden

    /// The reference above reproduces PyTorch's golden conv cases exactly (so the sweeps test against PyTorch's rule).
    func testReferenceMatchesGoldenCases() throws {
        let cases = try GoldenConformanceTests.cases().filter { $0.kind == "quantized_conv2d" }
        guard !cases.isEmpty else { throw XCTSkip("no quantized_conv2d cases") }
        for goldenCase in cases {
            let p = try GoldenConformanceTests.convProblem(goldenCase)
            let expected = try goldenCase.field("y_q").ints()
            XCTAssertEqual(p.expected(outScale: try goldenCase.field("out_scale").float(),
                                      outZeroPoint: try goldenCase.field("out_zero_point").int(), relu: false),
                           expected, goldenCase.name)
        }
    }
}
