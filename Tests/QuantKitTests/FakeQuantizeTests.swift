import QuantKit
import XCTest

/// An observer for the module tests: records what it saw and returns parameters the test chose.
private final class ScriptedObserver: Observer {
    let dtype: QuantizedDType
    let qscheme: QScheme
    let quantMin: Int
    let quantMax: Int
    var parameters: QuantizationParameters
    private(set) var observed: [[Float]] = []

    init(_ parameters: QuantizationParameters, range: ClosedRange<Int>? = nil) {
        self.dtype = parameters.dtype
        self.qscheme = parameters.qscheme
        self.quantMin = range?.lowerBound ?? parameters.dtype.range.lowerBound
        self.quantMax = range?.upperBound ?? parameters.dtype.range.upperBound
        self.parameters = parameters
    }

    func observe(_ x: Tensor<Float>) throws { observed.append(x.scalars) }
    func calculateQParams() throws -> QuantizationParameters { parameters }
    func reset() { observed = [] }
}

/// PyTorch's fake_quantize_tensor_cachemask for one element, with its own types (int64 zero point, double clamp).
private func referenceFakeQuantize(_ x: Float, scale: Float, zeroPoint: Int, quantMin: Int, quantMax: Int)
    -> (y: Float, mask: UInt8)
{
    let inverse: Float = 1 / scale
    let product: Float = x * inverse
    let qf: Float = Float(zeroPoint) + product.rounded(.toNearestOrEven)
    let mask: UInt8 = Float(quantMin) <= qf && qf <= Float(quantMax) ? 1 : 0
    let clamped = qf.isNaN ? Double(quantMin) : min(max(Double(qf), Double(quantMin)), Double(quantMax))
    let difference = Float(Int(clamped) - zeroPoint)
    return (difference * scale, mask)
}

final class FakeQuantizeTests: XCTestCase {
    override func tearDown() {
        XCTAssertNoThrow(try ISAState.restore())
        XCTAssertNoThrow(try Runtime.setNumberOfThreads(nil))
        super.tearDown()
    }

    // MARK: Functional

    /// PyTorch's documented straight-through boundaries: the mask is taken on the rounded value.
    func testStraightThroughMaskAtTheClampEdges() throws {
        let x = Tensor<Float>([-0.5, -0.6, 255.4, 255.5, 254.5, 0.5, -1.5, .nan, .infinity, -.infinity])
        let (y, mask) = try fakeQuantizePerTensorAffineCachemask(x, scale: 1, zeroPoint: 0, quantMin: 0, quantMax: 255)
        XCTAssertEqual(mask.scalars, [1, 0, 1, 0, 1, 1, 0, 0, 0, 0])
        XCTAssertEqual(y.scalars, [0, 0, 255, 255, 254, 0, 0, 0, 255, 0])   // -0.5 -> -0 -> 0; 255.5 -> 256 -> 255
        let grad = try fakeQuantizeCachemaskBackward(Tensor<Float>([Float](repeating: -2, count: 10)), mask: mask)
        XCTAssertEqual(grad.scalars.map(\.bitPattern),
                       mask.scalars.map { $0 == 1 ? (-2 as Float).bitPattern : (-0.0 as Float).bitPattern })
        // Values that round onto an edge are inside; a tie next to an edge rounds to even, onto it or past it.
        let (y3, m3) = try fakeQuantizePerTensorAffineCachemask(Tensor<Float>([-3.4, -3.5, -2.5, 9.4, 9.5, 8.5]),
                                                                scale: 1, zeroPoint: 3, quantMin: 0, quantMax: 12)
        XCTAssertEqual(m3.scalars, [1, 0, 1, 1, 0, 1])   // q = 0, -1, 1, 12, 13, 11
        XCTAssertEqual(y3.scalars, [-3, -3, -2, 9, 9, 8])
    }

    func testPerTensorMatchesPyTorchFormulaAndRecomputedBackward() throws {
        var generator = SplitMix64(seed: 11)
        for (scale, zeroPoint, qMin, qMax) in [(Float(0.0173), 7, 0, 255), (0.25, -3, -128, 127), (0.5, 0, 0, 127),
                                               (1e-3, 100, -32768, 32767)] {
            let values = (0..<1037).map { i -> Float in
                i % 7 == 0 ? (Float(Int(generator.next() % 400)) - 200 + 0.5) * scale
                    : Float(Int64(bitPattern: generator.next() % 2_000_001) - 1_000_000) * 1e-6
                        * Float(qMax - qMin) * scale
            }
            let x = Tensor(values)
            let (y, mask) = try fakeQuantizePerTensorAffineCachemask(x, scale: scale, zeroPoint: zeroPoint,
                                                                     quantMin: qMin, quantMax: qMax)
            for (i, v) in values.enumerated() {
                let r = referenceFakeQuantize(v, scale: scale, zeroPoint: zeroPoint, quantMin: qMin, quantMax: qMax)
                XCTAssertEqual(y.scalars[i].bitPattern, r.y.bitPattern, "x = \(v)")
                XCTAssertEqual(mask.scalars[i], r.mask, "x = \(v)")
            }
            let gradY = Tensor(values.map { _ in Float(Int(generator.next() % 200)) / 50 - 2 })
            let viaMask = try fakeQuantizeCachemaskBackward(gradY, mask: mask)
            let recomputed = try fakeQuantizePerTensorAffineBackward(gradY, x, scale: scale, zeroPoint: zeroPoint,
                                                                     quantMin: qMin, quantMax: qMax)
            XCTAssertTrue(bitwiseEqual(viaMask, recomputed))
            XCTAssertTrue(bitwiseEqual(y, try fakeQuantizePerTensorAffine(x, scale: scale, zeroPoint: zeroPoint,
                                                                         quantMin: qMin, quantMax: qMax)))
        }
    }

    func testPerChannelAxes() throws {
        let shape = [3, 4, 5]
        var generator = SplitMix64(seed: 3)
        let values = (0..<60).map { _ in Float(Int64(bitPattern: generator.next() % 4001) - 2000) / 500 }
        let x = try Tensor(shape: shape, scalars: values)
        for axis in [0, 1, 2, -1, -3] {
            let normalized = axis < 0 ? axis + 3 : axis
            let channels = shape[normalized]
            let scales = (0..<channels).map { Float($0 + 1) * 0.03 }
            let zeroPoints = (0..<channels).map { $0 * 5 - 4 }
            let (y, mask) = try fakeQuantizePerChannelAffineCachemask(x, scales: scales, zeroPoints: zeroPoints,
                                                                      axis: axis, quantMin: -20, quantMax: 20)
            for i in values.indices {
                let c = Reference.channel(ofElement: i, shape: shape, axis: normalized)
                let r = referenceFakeQuantize(values[i], scale: scales[c], zeroPoint: zeroPoints[c], quantMin: -20,
                                              quantMax: 20)
                XCTAssertEqual(y.scalars[i].bitPattern, r.y.bitPattern, "axis \(axis) element \(i)")
                XCTAssertEqual(mask.scalars[i], r.mask, "axis \(axis) element \(i)")
            }
            XCTAssertEqual(y.shape, shape)
            let gradY = try Tensor(shape: shape, scalars: values.map { $0 * 0.5 + 0.25 })
            XCTAssertTrue(bitwiseEqual(try fakeQuantizePerChannelAffineBackward(
                gradY, x, scales: scales, zeroPoints: zeroPoints, axis: axis, quantMin: -20, quantMax: 20),
                                       try fakeQuantizeCachemaskBackward(gradY, mask: mask)))
        }
    }

    /// Every ISA level and thread count gives the same bits, learnable gradients included.
    func testISALevelsAndThreadsAgree() throws {
        var generator = SplitMix64(seed: 5)
        let n = 200_003
        let values = (0..<n).map { _ in Float(Int64(bitPattern: generator.next() % 2_000_001) - 1_000_000) * 3e-6 }
        let x = Tensor(values), gradY = Tensor(values.map { 1 - $0 })
        let w = try Tensor(shape: [301, 7], scalars: Array(values[0..<2107]))
        let gw = try Tensor(shape: [301, 7], scalars: Array(values[5..<2112]))
        var reference: [[UInt32]]?
        for isa in ["scalar", "avx2", "avx512", "neon"] where Runtime.isSupported(isa: isa) {
            try Runtime.setISA(isa)
            for threads in [1, 2, 3] {
                try Runtime.setNumberOfThreads(threads)
                let (y, mask) = try fakeQuantizePerTensorAffineCachemask(x, scale: 0.0125, zeroPoint: 3, quantMin: -128,
                                                                         quantMax: 127)
                let learnable = try fakeQuantizeLearnablePerTensorAffineBackward(
                    gradY, x, scale: 0.0125, zeroPoint: 2.5, quantMin: -128, quantMax: 127, gradFactor: 0.01)
                let channel = try fakeQuantizeLearnablePerChannelAffineBackward(
                    gw, w, scales: (0..<7).map { 0.01 + Float($0) * 0.002 }, zeroPoints: (0..<7).map { Float($0) - 3.5 },
                    axis: 1, quantMin: -8, quantMax: 7)
                let bits = [y.scalars.map(\.bitPattern), mask.scalars.map(UInt32.init),
                            learnable.input.scalars.map(\.bitPattern),
                            (learnable.scale + learnable.zeroPoint + channel.scale + channel.zeroPoint).map(\.bitPattern),
                            channel.input.scalars.map(\.bitPattern)]
                if let reference {
                    XCTAssertEqual(bits, reference, "\(isa), \(threads) threads")
                } else {
                    reference = bits
                }
            }
        }
    }

    // MARK: Learnable (LSQ)

    /// Where the function is differentiable the LSQ gradients are derivatives: outside the range
    /// d/dscale (bound - z) * scale = bound - z and a unit step of the (integer) zero point changes y by -scale;
    /// inside, LSQ adds the straight-through term -x / scale to the derivative of the rounding-frozen function.
    func testLearnableGradientsAgainstFiniteDifferences() throws {
        var generator = SplitMix64(seed: 17)
        let scale: Float = 0.1, zeroPoint: Float = 3, qMin = 0, qMax = 15
        var values = [Float](), gradients = [Float]()
        while values.count < 400 {
            let v = Float(Int64(bitPattern: generator.next() % 3_500_001) - 1_000_000) * 1e-6   // -1 ... 2.5
            let u = v / scale + zeroPoint
            // away from rounding ties and from the clamp edges, so a small step changes no rounding
            let frac = u - u.rounded(.down)
            // ... and at least 1.5 from the clamp edges, so a unit step of the zero point moves nothing across them
            guard abs(frac - 0.5) > 0.1, abs(u - (Float(qMin) - 0.5)) > 1.5, abs(u - (Float(qMax) + 0.5)) > 1.5
            else { continue }
            values.append(v)
            gradients.append(Float(Int(generator.next() % 100)) / 50 - 1)
        }
        let x = Tensor(values), gradY = Tensor(gradients)
        func loss(scale s: Float, zeroPoint z: Float) throws -> Double {
            let y = try fakeQuantizeLearnablePerTensorAffine(x, scale: s, zeroPoint: z, quantMin: qMin, quantMax: qMax)
            return zip(y.scalars, gradients).reduce(0) { $0 + Double($1.0) * Double($1.1) }
        }
        let grads = try fakeQuantizeLearnablePerTensorAffineBackward(gradY, x, scale: scale, zeroPoint: zeroPoint,
                                                                     quantMin: qMin, quantMax: qMax)
        let h: Float = 1e-4
        let finiteScale = (try loss(scale: scale + h, zeroPoint: zeroPoint) - loss(scale: scale - h, zeroPoint: zeroPoint))
            / Double((scale + h) - (scale - h))
        var straightThrough = 0.0, inside = 0
        for (v, g) in zip(values, gradients) {
            let u = (v / scale + zeroPoint).rounded(.toNearestOrEven)
            if u >= Float(qMin) && u <= Float(qMax) {
                straightThrough += Double(g) * Double(-v / scale)
                inside += 1
            }
        }
        XCTAssertGreaterThan(inside, 50)
        XCTAssertLessThan(inside, 350)
        XCTAssertEqual(Double(grads.scale[0]), finiteScale + straightThrough,
                       accuracy: 2e-3 * (abs(finiteScale) + abs(straightThrough)))
        // The zero point moves in integer steps (it is rounded): a unit step is the exact derivative outside.
        let finiteZeroPoint = try loss(scale: scale, zeroPoint: zeroPoint + 1) - loss(scale: scale, zeroPoint: zeroPoint)
        XCTAssertEqual(Double(grads.zeroPoint[0]), finiteZeroPoint, accuracy: 1e-4 * abs(finiteZeroPoint) + 1e-5)
        // grad_x: the straight-through estimator, 0 exactly where the clamp makes y constant.
        for (i, v) in values.enumerated() {
            let u = (v / scale + zeroPoint).rounded(.toNearestOrEven)
            XCTAssertEqual(grads.input.scalars[i], u >= Float(qMin) && u <= Float(qMax) ? gradients[i] : 0)
        }
    }

    /// PyTorch rounds the learnable zero point differently in its two passes: forward nearbyint (2.5 -> 2), backward
    /// trunc(z + 0.5) (2.5 -> 3, -69 -> -68); per channel both passes round half to even.
    func testLearnableZeroPointRounding() throws {
        let x = Tensor<Float>([-3])
        XCTAssertEqual(try fakeQuantizeLearnablePerTensorAffine(x, scale: 1, zeroPoint: 2.5, quantMin: 0,
                                                                quantMax: 255).scalars, [-2])
        let backward = try fakeQuantizeLearnablePerTensorAffineBackward(Tensor<Float>([1]), x, scale: 1,
                                                                        zeroPoint: 2.5, quantMin: 0, quantMax: 255)
        XCTAssertEqual(backward.input.scalars, [1])        // -3 + 3 = 0: inside with the backward's zero point
        XCTAssertEqual(backward.zeroPoint, [0])
        let channel = try fakeQuantizeLearnablePerChannelAffineBackward(Tensor<Float>([1]), x, scales: [1],
                                                                        zeroPoints: [2.5], axis: 0, quantMin: 0,
                                                                        quantMax: 255)
        XCTAssertEqual(channel.input.scalars, [0])         // -3 + 2 = -1: outside
        XCTAssertEqual(channel.scale, [-2])                // (0 - 2) * 1
        XCTAssertEqual(channel.zeroPoint, [-1])
        let negative = try fakeQuantizeLearnablePerTensorAffineBackward(Tensor<Float>([1]), Tensor<Float>([-30]),
                                                                        scale: 0.5, zeroPoint: -69, quantMin: -128,
                                                                        quantMax: 127)
        XCTAssertEqual(negative.input.scalars, [1])        // -60 - 68 = -128 inside (with -69 it would be outside)
    }

    func testLearnableModuleModes() throws {
        let observer = ScriptedObserver(QuantizationParameters(scale: 0.5, zeroPoint: 3, dtype: .quint8))
        let module = try LearnableFakeQuantize(observer: observer)
        let x = Tensor<Float>([-4, 0.3, 1.26, 200])
        // Static estimate (the default): the observer's parameters are copied in.
        let y = try module.forward(x)
        XCTAssertEqual(module.scale, [0.5])
        XCTAssertEqual(module.zeroPoint, [3])
        XCTAssertEqual(observer.observed.count, 1)
        XCTAssertEqual(y.scalars, try fakeQuantizePerTensorAffine(x, scale: 0.5, zeroPoint: 3, quantMin: 0,
                                                                  quantMax: 255).scalars)
        _ = try module.backward(Tensor<Float>([1, 1, 1, 1]))
        XCTAssertNil(module.scaleGradient, "no learning in the static estimate mode")
        // Parameter learning: the observer is off, gradients accumulate until zeroGrad.
        module.enableParamLearning()
        observer.parameters = QuantizationParameters(scale: 9, zeroPoint: 9, dtype: .quint8)
        module.scale = [-1]   // clamped to eps by forward
        _ = try module.forward(x)
        XCTAssertEqual(module.scale, [Float.ulpOfOne])
        module.scale = [0.5]
        _ = try module.forward(x)
        let gradY = Tensor<Float>([1, -1, 0.5, 2])
        let dx = try module.backward(gradY)
        let expected = try fakeQuantizeLearnablePerTensorAffineBackward(gradY, x, scale: 0.5, zeroPoint: 3,
                                                                        quantMin: 0, quantMax: 255)
        XCTAssertTrue(bitwiseEqual(dx, expected.input))
        XCTAssertEqual(module.scaleGradient, expected.scale)
        XCTAssertEqual(module.zeroPointGradient, expected.zeroPoint)
        _ = try module.forward(x)
        _ = try module.backward(gradY)
        XCTAssertEqual(module.scaleGradient, expected.scale.map { $0 * 2 })
        module.zeroGrad()
        XCTAssertNil(module.scaleGradient)
        XCTAssertEqual(observer.observed.count, 1)
        // Static observation: observe only, the output is the input, the gradient passes unchanged.
        module.enableStaticObservation()
        XCTAssertEqual(try module.forward(x).scalars, x.scalars)
        XCTAssertEqual(observer.observed.count, 2)
        XCTAssertEqual(try module.backward(gradY).scalars, gradY.scalars)
        // calculateQParams: scale >= eps, zero point rounded half to even and clamped.
        module.zeroPoint = [300.5]
        XCTAssertEqual(try module.calculateQParams(), QuantizationParameters(scale: 9, zeroPoint: 255, dtype: .quint8))
        module.zeroPoint = [2.5]
        XCTAssertEqual(try module.calculateQParams().zeroPoint, 2)
    }

    func testLearnableGradScalingAndSymmetricZeroPoint() throws {
        let observer = ScriptedObserver(QuantizationParameters(scale: 0.1, zeroPoint: 0, dtype: .qint8,
                                                               qscheme: .perTensorSymmetric))
        let module = try LearnableFakeQuantize(observer: observer, scale: 0.1, zeroPoint: 5, useGradScaling: true)
        module.enableParamLearning()
        let x = Tensor<Float>([-20, 0.33, 5, 13.1])
        _ = try module.forward(x)
        XCTAssertEqual(module.zeroPoint, [0], "symmetric schemes zero the zero point")
        _ = try module.backward(Tensor<Float>([1, 1, 1, 1]))
        let factor = Float(1.0 / (4.0 * 127.0).squareRoot())
        let expected = try fakeQuantizeLearnablePerTensorAffineBackward(Tensor<Float>([1, 1, 1, 1]), x, scale: 0.1,
                                                                        zeroPoint: 0, quantMin: -128, quantMax: 127,
                                                                        gradFactor: factor)
        XCTAssertEqual(module.scaleGradient, expected.scale)
        XCTAssertNotEqual(expected.scale, try fakeQuantizeLearnablePerTensorAffineBackward(
            Tensor<Float>([1, 1, 1, 1]), x, scale: 0.1, zeroPoint: 0, quantMin: -128, quantMax: 127).scale)
    }

    func testLearnablePerChannelModule() throws {
        let observer = ScriptedObserver(QuantizationParameters(scales: [0.1, 0.2], zeroPoints: [0, 0], axis: 1,
                                                               dtype: .qint8, qscheme: .perChannelSymmetric))
        let module = try LearnableFakeQuantize(observer: observer, channelLength: 2)
        let x = try Tensor<Float>(shape: [3, 2], scalars: [0.05, 0.31, -13, 40, 1, -1])
        let y = try module.forward(x)
        XCTAssertEqual(module.axis, 1)
        XCTAssertTrue(bitwiseEqual(y, try fakeQuantizePerChannelAffine(x, scales: [0.1, 0.2], zeroPoints: [0, 0],
                                                                       axis: 1, quantMin: -128, quantMax: 127)))
        module.enableParamLearning()
        _ = try module.forward(x)
        let gradY = try Tensor<Float>(shape: [3, 2], scalars: [1, 2, 3, 4, 5, 6])
        _ = try module.backward(gradY)
        let expected = try fakeQuantizeLearnablePerChannelAffineBackward(gradY, x, scales: [0.1, 0.2],
                                                                         zeroPoints: [0, 0], axis: 1, quantMin: -128,
                                                                         quantMax: 127)
        XCTAssertEqual(module.scaleGradient, expected.scale)
        XCTAssertEqual(expected.zeroPoint, [-0.1 * 3, -0.2 * 4])   // only -13 and 40 are clamped
    }

    // MARK: FakeQuantize module

    func testFakeQuantizeSwitches() throws {
        let observer = ScriptedObserver(QuantizationParameters(scale: 0.25, zeroPoint: 10, dtype: .quint8),
                                        range: 0...127)
        let module = try FakeQuantize(observer: observer)
        XCTAssertEqual(module.quantMax, 127)
        XCTAssertEqual(module.scale, [1])
        XCTAssertEqual(module.zeroPoint, [0])
        let x = Tensor<Float>([-3, 0.1, 20, 40])
        let y = try module.forward(x)
        XCTAssertEqual(observer.observed, [x.scalars])
        XCTAssertEqual(module.scale, [0.25])
        XCTAssertEqual(module.zeroPoint, [10])
        XCTAssertEqual(y.scalars, [-2.5, 0, 20, 29.25])   // 40 / 0.25 + 10 = 170 -> 127
        XCTAssertEqual(try module.backward(Tensor<Float>([1, 1, 1, 1])).scalars, [0, 1, 1, 0])
        // Observer off: the parameters stay.
        module.disableObserver()
        observer.parameters = QuantizationParameters(scale: 1, zeroPoint: 0, dtype: .quint8)
        XCTAssertEqual(try module.forward(x).scalars, y.scalars)
        XCTAssertEqual(observer.observed.count, 1)
        XCTAssertEqual(module.scale, [0.25])
        // Fake quantization off: identity forward and backward; the observer still runs when enabled.
        module.disableFakeQuant()
        module.enableObserver()
        XCTAssertEqual(try module.forward(x).scalars, x.scalars)
        XCTAssertEqual(observer.observed.count, 2)
        XCTAssertEqual(module.scale, [1])
        XCTAssertEqual(try module.backward(Tensor<Float>([1, 2, 3, 4])).scalars, [1, 2, 3, 4])
        module.enableFakeQuant()
        XCTAssertTrue(module.fakeQuantEnabled && module.observerEnabled)
        XCTAssertEqual(try module.calculateQParams(), observer.parameters)
        // Errors: a backward of another shape, a zero point outside the range.
        XCTAssertNotNil(quantizationError { try module.backward(Tensor<Float>([1])) })
        observer.parameters = QuantizationParameters(scale: 1, zeroPoint: 200, dtype: .quint8)
        quantizationError { try module.forward(x) }?.assertInformative(mentions: ["200", "127"])
        let wide = ScriptedObserver(QuantizationParameters(scale: 1, zeroPoint: 0, dtype: .qint32))
        quantizationError { try FakeQuantize(observer: wide) }?.assertInformative(mentions: ["8388608"])
        let fresh = try FakeQuantize(observer: ScriptedObserver(observer.parameters))
        XCTAssertNotNil(quantizationError { try fresh.backward(x) })
        XCTAssertEqual(fresh.quantMax, 255)
    }

    func testFakeQuantizePerChannel() throws {
        let observer = ScriptedObserver(QuantizationParameters(scales: [0.5, 0.25], zeroPoints: [1, -2], axis: 0,
                                                               dtype: .qint8))
        let module = try FakeQuantize(observer: observer)
        let x = try Tensor<Float>(shape: [2, 3], scalars: [1, -70, 70, 1, -40, 40])
        module.disableObserver()
        XCTAssertNotNil(quantizationError { try module.forward(x) }, "no per-channel parameters yet")
        module.enableObserver()
        let y = try module.forward(x)
        XCTAssertEqual(module.axis, 0)
        XCTAssertTrue(bitwiseEqual(y, try fakeQuantizePerChannelAffine(x, scales: [0.5, 0.25], zeroPoints: [1, -2],
                                                                       axis: 0, quantMin: -128, quantMax: 127)))
        XCTAssertEqual(try module.backward(try Tensor(shape: [2, 3], scalars: [1, 1, 1, 1, 1, 1])).scalars,
                       [1, 0, 0, 1, 0, 0])
    }

    // MARK: FusedMovingAvgObsFakeQuantize

    /// FBGEMM's qparams (forward) against the observers' formula (calculateQParams) for symmetric schemes.
    func testFusedUsesFBGEMMQParamsNotThePythonFormula() throws {
        let module = try FusedMovingAvgObsFakeQuantize(quantMin: -128, quantMax: 127, dtype: .qint8,
                                                       qscheme: .perTensorSymmetric)
        let x = Tensor<Float>([-1, 0.5, 3])
        _ = try module.forward(x)
        XCTAssertEqual(module.runningMin, [-1])
        XCTAssertEqual(module.runningMax, [3])
        // FBGEMM: the range becomes m * [-128, 127] with m = max(1 / 128, 3 / 127)
        let m = Double(max(Float(1) / 128, Float(3) / 127))
        let low = Float(m * -128), high = Float(m * 127)
        XCTAssertEqual(module.scale, [Float((Double(high) - Double(low)) / 255)])
        XCTAssertEqual(module.zeroPoint, [0])
        let python = try module.calculateQParams()
        XCTAssertEqual(python.scale, Float(3) / 127.5)
        XCTAssertNotEqual(python.scale, module.scale[0])
        XCTAssertEqual(python.scale / module.scale[0], 127 / 127.5, accuracy: 1e-6)
        // quint8 symmetric: FBGEMM's zero point nearbyint(127.5) = 128, the observers' (0 + 255) // 2 = 127.
        let unsigned = try FusedMovingAvgObsFakeQuantize(quantMin: 0, quantMax: 255, dtype: .quint8,
                                                         qscheme: .perTensorSymmetric)
        _ = try unsigned.forward(x)
        XCTAssertEqual(unsigned.zeroPoint, [128])
        XCTAssertEqual(try unsigned.calculateQParams().zeroPoint, 127)
        // The output is the fake quantization with the FBGEMM parameters.
        XCTAssertTrue(bitwiseEqual(try module.forward(x), try fakeQuantizePerTensorAffine(
            x, scale: module.scale[0], zeroPoint: 0, quantMin: -128, quantMax: 127)))
    }

    func testFusedMovingAverageAndSwitches() throws {
        let module = try FusedMovingAvgObsFakeQuantize(reduceRange: true, averagingConstant: 0.25)
        XCTAssertEqual(module.quantMax, 127)
        XCTAssertEqual(try module.calculateQParams(), QuantizationParameters(scale: 1, zeroPoint: 0, dtype: .quint8))
        _ = try module.forward(Tensor<Float>([-2, 4, .nan]))
        XCTAssertEqual(module.runningMin, [-2])   // the first batch is taken as it is; NaN skipped (the observer's rule)
        XCTAssertEqual(module.runningMax, [4])
        _ = try module.forward(Tensor<Float>([2, 8]))
        XCTAssertEqual(module.runningMin, [-2 + 0.25 * (2 - -2)])
        XCTAssertEqual(module.runningMax, [4 + 0.25 * (8 - 4)])
        let expected = try fakeQuantChooseScale(min: -1, max: 5, quantMin: 0, quantMax: 127)
        XCTAssertEqual(module.scale[0], expected)
        // Observer off: the running range stays. Fake quantization off: the output is the input, scale unchanged.
        module.disableObserver()
        _ = try module.forward(Tensor<Float>([100]))
        XCTAssertEqual(module.runningMax, [5])
        module.enableObserver()
        module.disableFakeQuant()
        let x = Tensor<Float>([-50, 60])
        XCTAssertEqual(try module.forward(x).scalars, x.scalars)
        XCTAssertEqual(module.runningMax[0], 5 + 0.25 * (60 - 5))
        XCTAssertEqual(module.scale[0], expected)
        XCTAssertEqual(try module.backward(Tensor<Float>([3, 4])).scalars, [3, 4])
        // Empty inputs are returned without being observed.
        XCTAssertEqual(try module.forward(try Tensor<Float>(zeros: [0, 3])).shape, [0, 3])
        XCTAssertNotNil(quantizationError {
            try FusedMovingAvgObsFakeQuantize(dtype: .quint8, qscheme: .perTensorSymmetric, reduceRange: true)
        })
        XCTAssertNotNil(quantizationError { try FusedMovingAvgObsFakeQuantize(quantMin: 1, quantMax: 255) })
        XCTAssertNotNil(quantizationError { try FusedMovingAvgObsFakeQuantize(observer: MinMaxObserver()) })
    }

    /// The affine FBGEMM scale and zero point (quint8 [0, qmax]) for a range containing 0, as a cross-check.
    private func fakeQuantChooseScale(min: Float, max: Float, quantMin: Int, quantMax: Int) throws -> Float {
        Float((Double(max) - Double(min)) / Double(quantMax - quantMin))
    }

    func testFusedPerChannel() throws {
        let module = try FusedMovingAvgObsFakeQuantize(quantMin: -128, quantMax: 127, dtype: .qint8,
                                                       qscheme: .perChannelSymmetric, chAxis: 0)
        XCTAssertTrue(module.runningMin.isEmpty)
        let w = try Tensor<Float>(shape: [2, 3, 2], scalars: [-1, 2, 0.5, 0.25, -0.125, 1,
                                                               4, -8, 2, 1, 0, -3])
        let y = try module.forward(w)
        XCTAssertEqual(module.runningMin, [-1, -8])
        XCTAssertEqual(module.runningMax, [2, 4])
        XCTAssertEqual(module.zeroPoint, [0, 0])
        XCTAssertTrue(bitwiseEqual(y, try fakeQuantizePerChannelAffine(w, scales: module.scale, zeroPoints: [0, 0],
                                                                       axis: 0, quantMin: -128, quantMax: 127)))
        let last = try FusedMovingAvgObsFakeQuantize(quantMin: -128, quantMax: 127, dtype: .qint8,
                                                     qscheme: .perChannelAffine, chAxis: -1)
        _ = try last.forward(w)
        XCTAssertEqual(last.runningMin, [-1, -8])   // the last axis: even and odd elements
        XCTAssertEqual(last.runningMax, [4, 2])
        XCTAssertNotNil(quantizationError { try module.forward(try Tensor<Float>(zeros: [3, 2])) })
        let python = try module.calculateQParams()
        XCTAssertEqual(python.axis, 0)
        XCTAssertEqual(python.scales, [2 / 127.5, 8 / 127.5])
    }

    // MARK: Validation

    func testValidationErrors() throws {
        let x = Tensor<Float>([1, 2])
        quantizationError { try fakeQuantizePerTensorAffine(x, scale: 1, zeroPoint: 0, quantMin: 5, quantMax: 1) }?
            .assertInformative(mentions: ["[5, 1]"])
        quantizationError { try fakeQuantizePerTensorAffine(x, scale: 1, zeroPoint: 300, quantMin: 0, quantMax: 255) }?
            .assertInformative(mentions: ["300", "255"])
        XCTAssertEqual(quantizationError {
            try fakeQuantizePerTensorAffine(x, scale: 0, zeroPoint: 0, quantMin: 0, quantMax: 255)
        }, .invalidScale(0, channel: nil))
        XCTAssertNotNil(quantizationError {
            try fakeQuantizePerTensorAffine(x, scale: 1, zeroPoint: 0, quantMin: 0, quantMax: 1 << 24)
        })
        XCTAssertEqual(quantizationError {
            try fakeQuantizePerChannelAffine(x, scales: [1], zeroPoints: [0], axis: 0, quantMin: 0, quantMax: 255)
        }, .channelCountMismatch(scales: 1, zeroPoints: 1, channels: 2, axis: 0))
        XCTAssertEqual(quantizationError {
            try fakeQuantizePerChannelAffine(x, scales: [1, 1], zeroPoints: [0, 0], axis: 1, quantMin: 0, quantMax: 255)
        }, .axisOutOfRange(1, rank: 1))
        XCTAssertNotNil(quantizationError {
            try fakeQuantizeCachemaskBackward(Tensor<Float>([1, 2, 3]), mask: Tensor<UInt8>([1, 0]))
        })
        quantizationError {
            try fakeQuantizeLearnablePerTensorAffineBackward(x, x, scale: 1, zeroPoint: 3, quantMin: 1, quantMax: 255)
        }?.assertInformative(mentions: ["contain 0"])
        XCTAssertNotNil(quantizationError {
            try fakeQuantizeLearnablePerTensorAffine(x, scale: 1, zeroPoint: .nan, quantMin: 0, quantMax: 255)
        })
        XCTAssertNotNil(quantizationError {
            try fakeQuantizeLearnablePerTensorAffineBackward(x, x, scale: 1, zeroPoint: 0, quantMin: 0, quantMax: 255,
                                                             gradFactor: .infinity)
        })
        // Empty tensors work and give zero gradients.
        let empty = try Tensor<Float>(zeros: [0])
        let grads = try fakeQuantizeLearnablePerTensorAffineBackward(empty, empty, scale: 1, zeroPoint: 0, quantMin: 0,
                                                                     quantMax: 255)
        XCTAssertEqual(grads.scale, [0])
        XCTAssertEqual(try fakeQuantizePerTensorAffine(empty, scale: 1, zeroPoint: 0, quantMin: 0, quantMax: 255).count,
                       0)
    }
}
