import Foundation
import QuantKit
import XCTest

/// Reverse-mode gradients of every differentiable operation against finite differences, forward values against
/// direct references, and the autograd engine itself (accumulation, no-grad, custom functions, errors).
final class AutogradTests: XCTestCase {
    typealias G = GradientCheck

    // MARK: Engine

    func testResidualConnectionAccumulatesBothPaths() throws {
        // y = x * w + x: dy/dx = w + 1 (two paths into x), dy/dw = x.
        let x = Variable(Tensor([1, -2, 3]), requiresGrad: true)
        let w = Variable(Tensor([0.5, 0.5, 2]), requiresGrad: true)
        let y = try Functional.sum(x * w + x)
        try y.backward()
        XCTAssertEqual(x.grad?.scalars, [1.5, 1.5, 3])
        XCTAssertEqual(w.grad?.scalars, [1, -2, 3])
        // x + x: the same variable twice in one operation.
        let z = Variable(Tensor([1, 2]), requiresGrad: true)
        try Functional.sum(z + z).backward()
        XCTAssertEqual(z.grad?.scalars, [2, 2])
    }

    func testDiamondGraphRunsEachNodeOnceAfterAllItsUses() throws {
        // h = relu(x); y = h * h + h -> dy/dx = 2h + 1 where x > 0.
        let x = Variable(Tensor([2, -1, 0.5]), requiresGrad: true)
        let h = try Functional.relu(x)
        let y = try Functional.sum(h * h + h)
        try y.backward()
        XCTAssertEqual(x.grad?.scalars, [5, 0, 2])
    }

    func testGradientsAccumulateAcrossBackwardPassesUntilCleared() throws {
        let w = Parameter(Tensor([1, 2]))
        for _ in 0..<2 { try Functional.sum(w * Variable(Tensor([3, 4]))).backward() }
        XCTAssertEqual(w.grad?.scalars, [6, 8])
        let optimizer = try SGD([w], learningRate: 0.1)
        optimizer.zeroGrad()
        XCTAssertNil(w.grad)
    }

    func testNoGradRecordsNothing() throws {
        let w = Parameter(Tensor([1, 2]))
        let y = try Autograd.withNoGrad { () throws -> Variable in
            XCTAssertFalse(Autograd.isGradEnabled)
            return try w * Variable(Tensor([3, 4]))
        }
        XCTAssertTrue(Autograd.isGradEnabled)
        XCTAssertNil(y.gradientFunction)
        XCTAssertFalse(y.requiresGrad)
        XCTAssertThrowsError(try y.backward(Tensor([1, 1])))
        // Operations on leaves that need no gradient record nothing either.
        let z = try Variable(Tensor([1])) + Variable(Tensor([2]))
        XCTAssertTrue(z.isLeaf)
    }

    func testBackwardReleasesTheGraphUnlessRetained() throws {
        let x = Variable(Tensor([1, 2]), requiresGrad: true)
        let y = try Functional.sum(x * x)
        try y.backward(retainGraph: true)
        try y.backward()
        XCTAssertEqual(x.grad?.scalars, [4, 8])
        let error = thrown(QuantizationError.self) { try y.backward() }
        XCTAssertTrue("\(error.map { "\($0)" } ?? "")".contains("second time"))
    }

    func testBackwardChecksItsArguments() throws {
        let x = Variable(Tensor([1, 2]), requiresGrad: true)
        let y = try x * 2
        XCTAssertNotNil(thrown(QuantizationError.self) { try y.backward() })            // not a scalar
        XCTAssertNotNil(thrown(QuantizationError.self) { try y.backward(Tensor([1])) }) // wrong shape
        XCTAssertNotNil(thrown(QuantizationError.self) { try Variable(Tensor([1])).backward() })  // no grad
        try y.backward(Tensor([1, 10]))
        XCTAssertEqual(x.grad?.scalars, [2, 20])
    }

    func testCustomFunctionSlotsIntoTheGraph() throws {
        // A straight-through fake quantization: round to integers forward, pass the gradient inside [-2, 2].
        func fakeQuantize(_ x: Variable) throws -> Variable {
            let t = try x.floatTensor(for: "fake_quantize")
            let output = try Tensor(shape: t.shape, scalars: t.scalars.map { min(max($0.rounded(), -2), 2) })
            let inside = t.scalars.map { $0 >= -2.5 && $0 <= 2.5 }
            return Autograd.record("FakeQuantizeBackward", output: output, inputs: [x]) { grad in
                [try Tensor(shape: grad.shape, scalars: zip(grad.scalars, inside).map { $1 ? $0 : 0 })]
            }
        }
        let x = Variable(Tensor([0.4, 1.6, -3.2, 2.4]), requiresGrad: true)
        let y = try fakeQuantize(x)
        XCTAssertEqual(y.tensor?.scalars, [0, 2, -2, 2])
        XCTAssertEqual(y.gradientFunction?.name, "FakeQuantizeBackward")
        try Functional.sum(y * Variable(Tensor([1, 2, 3, 4]))).backward()
        XCTAssertEqual(x.grad?.scalars, [1, 2, 0, 4])

        // A closure that returns the wrong shape or count is reported, naming the function.
        let bad = Autograd.record("BadBackward", output: Tensor([1]), inputs: [x]) { _ in [Tensor([1])] }
        let error = thrown(QuantizationError.self) { try bad.backward() }
        XCTAssertTrue("\(error.map { "\($0)" } ?? "")".contains("BadBackward"))
        XCTAssertNil(Autograd.withNoGrad { Autograd.record("X", output: Tensor([1]), inputs: [x]) { _ in [nil] } }
            .gradientFunction)
    }

    func testQuantizedPayloadInAFloatOperationNamesTheFix() throws {
        let q = try Tensor<Float>(shape: [1, 2], scalars: [0.5, 1]).quantized(scale: 0.1, zeroPoint: 0, dtype: .quint8)
        let error = thrown(QuantizationError.self) {
            try Functional.linear(Variable(q), weight: Variable(Tensor<Float>(shape: [1, 2], scalars: [1, 1])))
        }
        let text = error.map { "\($0)" } ?? ""
        XCTAssertTrue(text.contains("quantized quint8"), text)
        XCTAssertTrue(text.contains("DeQuantStub"), text)
    }

    func testGradientCheckCatchesAWrongBackward() throws {
        // The checker itself: a backward that is off by 10% must be caught.
        let failures = try G.check([G.random([10], seed: 1)], report: false) { v in
            let x = v[0]
            let t = try x.floatTensor(for: "square")
            let y = try Tensor(shape: t.shape, scalars: t.scalars.map { $0 * $0 })
            return Autograd.record("WrongBackward", output: y, inputs: [x]) { g in
                [try Tensor(shape: t.shape, scalars: zip(g.scalars, t.scalars).map { 2.2 * $0 * $1 })]
            }
        }
        XCTAssertGreaterThan(failures, 5)
    }

    // MARK: Linear and convolution

    func testLinearForwardAndGradients() throws {
        let x = G.random([3, 4], seed: 1), w = G.random([5, 4], seed: 2), b = G.random([5], seed: 3)
        let y = try Functional.linear(Variable(x), weight: Variable(w), bias: Variable(b))
        var expected = [Float]()
        for r in 0..<3 {
            for o in 0..<5 {
                var s = Double(b[o])
                for k in 0..<4 { s += Double(x[r, k]) * Double(w[o, k]) }
                expected.append(Float(s))
            }
        }
        assertElementsClose(y.tensor!.scalars, expected)
        try G.check([x, w, b]) { try Functional.linear($0[0], weight: $0[1], bias: $0[2]) }
        // Leading batch dimensions, and no bias.
        try G.check([G.random([2, 3, 4], seed: 4), w]) { try Functional.linear($0[0], weight: $0[1]) }
    }

    /// A direct convolution in double precision, the reference of the forward pass.
    private func referenceConv(_ x: Tensor<Float>, _ w: Tensor<Float>, _ b: Tensor<Float>?, stride: Size2d,
                               padding: Size2d, dilation: Size2d, groups: Int) -> [Float] {
        let (n, c, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (o, cg, kh, kw) = (w.shape[0], w.shape[1], w.shape[2], w.shape[3])
        let oh = (h + 2 * padding.height - dilation.height * (kh - 1) - 1) / stride.height + 1
        let ow = (wd + 2 * padding.width - dilation.width * (kw - 1) - 1) / stride.width + 1
        let og = o / groups
        var out: [Float] = []
        for image in 0..<n {
            for oc in 0..<o {
                let g = oc / og
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        var s = Double(b?[oc] ?? 0)
                        for ci in 0..<cg {
                            for ky in 0..<kh {
                                for kx in 0..<kw {
                                    let iy = oy * stride.height - padding.height + ky * dilation.height
                                    let ix = ox * stride.width - padding.width + kx * dilation.width
                                    guard iy >= 0, iy < h, ix >= 0, ix < wd else { continue }
                                    s += Double(x[image, g * cg + ci, iy, ix]) * Double(w[oc, ci, ky, kx])
                                }
                            }
                        }
                        out.append(Float(s))
                    }
                }
            }
        }
        return out
    }

    func testConv2dForwardMatchesADirectConvolution() throws {
        let cases: [(x: [Int], w: [Int], stride: Size2d, padding: Size2d, dilation: Size2d, groups: Int)] = [
            ([2, 3, 7, 6], [4, 3, 3, 3], 1, 1, 1, 1),
            ([2, 3, 9, 8], [5, 3, 3, 2], Size2d(height: 2, width: 1), Size2d(height: 0, width: 2), 2, 1),
            ([1, 4, 6, 6], [6, 2, 3, 3], 2, 1, 1, 2),           // grouped
            ([2, 4, 7, 7], [4, 1, 3, 3], 1, 1, 1, 4),           // depthwise
            ([2, 3, 8, 9], [6, 1, 3, 3], 2, 1, Size2d(height: 1, width: 2), 3),  // depthwise, multiplier 2
            ([3, 4, 5, 5], [2, 4, 1, 1], 1, 0, 1, 1),           // 1x1
            ([1, 2, 4, 4], [3, 2, 4, 4], 1, 0, 1, 1),           // kernel = input
        ]
        for (index, c) in cases.enumerated() {
            let x = G.random(c.x, seed: UInt64(10 + index)), w = G.random(c.w, seed: UInt64(20 + index))
            let b = G.random([c.w[0]], seed: UInt64(30 + index))
            let y = try Functional.conv2d(Variable(x), weight: Variable(w), bias: Variable(b), stride: c.stride,
                                          padding: c.padding, dilation: c.dilation, groups: c.groups)
            assertElementsClose(y.tensor!.scalars,
                                referenceConv(x, w, b, stride: c.stride, padding: c.padding, dilation: c.dilation,
                                              groups: c.groups), tolerance: 1e-5, "case \(index)")
        }
    }

    func testConv2dGradients() throws {
        // Dense with padding, stride and dilation; grouped; depthwise with a multiplier and stride.
        try G.check([G.random([2, 3, 6, 5], seed: 1), G.random([4, 3, 3, 3], seed: 2), G.random([4], seed: 3)]) {
            try Functional.conv2d($0[0], weight: $0[1], bias: $0[2], stride: 1, padding: 1)
        }
        try G.check([G.random([2, 2, 7, 7], seed: 4), G.random([3, 2, 3, 2], seed: 5)]) {
            try Functional.conv2d($0[0], weight: $0[1], stride: Size2d(height: 2, width: 1), padding: 1, dilation: 2)
        }
        try G.check([G.random([1, 4, 5, 5], seed: 6), G.random([6, 2, 3, 3], seed: 7), G.random([6], seed: 8)]) {
            try Functional.conv2d($0[0], weight: $0[1], bias: $0[2], padding: 1, groups: 2)
        }
        try G.check([G.random([2, 3, 6, 6], seed: 9), G.random([6, 1, 3, 3], seed: 10), G.random([6], seed: 11)]) {
            try Functional.conv2d($0[0], weight: $0[1], bias: $0[2], stride: 2, padding: 1, groups: 3)
        }
        // Only the weight requires a gradient (a first layer): the input gradient is skipped.
        try G.check([G.random([2, 1, 5, 5], seed: 12), G.random([2, 1, 3, 3], seed: 13)],
                    differentiable: [false, true]) { try Functional.conv2d($0[0], weight: $0[1], padding: 1) }
    }

    func testConv2dRejectsBadShapes() {
        let x = Variable(TensorOf.zeros([1, 3, 5, 5]))
        XCTAssertNotNil(thrown(QuantizationError.self) {
            try Functional.conv2d(x, weight: Variable(TensorOf.zeros([2, 2, 3, 3])))   // channels
        })
        XCTAssertNotNil(thrown(QuantizationError.self) {
            try Functional.conv2d(x, weight: Variable(TensorOf.zeros([2, 3, 7, 7])))   // kernel > input
        })
        XCTAssertNotNil(thrown(QuantizationError.self) {
            try Functional.conv2d(Variable(TensorOf.zeros([3, 5, 5])), weight: Variable(TensorOf.zeros([2, 3, 3, 3])))
        })
    }

    // MARK: Normalization

    func testBatchNormTrainingForwardAndGradients() throws {
        let x = G.random([4, 3, 2, 2], seed: 1)
        var mean: Tensor<Float>? = TensorOf.zeros([3])
        var variance: Tensor<Float>? = try Tensor(repeating: 1, shape: [3])
        let y = try Functional.batchNorm(Variable(x), runningMean: &mean, runningVar: &variance,
                                         weight: Variable(Tensor([1, 2, 0.5])), bias: Variable(Tensor([0, 1, -1])),
                                         training: true, momentum: 0.1, eps: 1e-5)
        // Channel 1 by hand: normalized with the biased variance, then 2 * xhat + 1.
        var values: [Double] = []
        for n in 0..<4 { for i in 0..<2 { for j in 0..<2 { values.append(Double(x[n, 1, i, j])) } } }
        let mu = values.reduce(0, +) / 16
        let biased = values.map { ($0 - mu) * ($0 - mu) }.reduce(0, +) / 16
        XCTAssertEqual(Double(y.tensor![0, 1, 0, 0]), 2 * (values[0] - mu) / (biased + 1e-5).squareRoot() + 1,
                       accuracy: 1e-5)
        // Running statistics: 0.9 * old + 0.1 * batch, with the unbiased variance.
        XCTAssertEqual(Double(mean![1]), 0.1 * mu, accuracy: 1e-6)
        XCTAssertEqual(Double(variance![1]), 0.9 + 0.1 * biased * 16 / 15, accuracy: 1e-6)

        try G.check([x, G.random([3], in: 0.5..<1.5, seed: 2), G.random([3], seed: 3)]) { v in
            var m: Tensor<Float>? = nil, s: Tensor<Float>? = nil
            return try Functional.batchNorm(v[0], runningMean: &m, runningVar: &s, weight: v[1], bias: v[2],
                                            training: true)
        }
        // BatchNorm1d shapes: [N, C] and [N, C, L].
        try G.check([G.random([5, 3], seed: 4), G.random([3], in: 0.5..<1.5, seed: 5), G.random([3], seed: 6)]) { v in
            var m: Tensor<Float>? = nil, s: Tensor<Float>? = nil
            return try Functional.batchNorm(v[0], runningMean: &m, runningVar: &s, weight: v[1], bias: v[2],
                                            training: true)
        }
        try G.check([G.random([3, 2, 4], seed: 7)]) { v in
            var m: Tensor<Float>? = nil, s: Tensor<Float>? = nil
            return try Functional.batchNorm(v[0], runningMean: &m, runningVar: &s, training: true)
        }
    }

    func testBatchNormEvaluationUsesRunningStatistics() throws {
        let x = G.random([2, 2, 3, 3], seed: 1)
        let runningMean = Tensor<Float>([0.5, -1]), runningVar = Tensor<Float>([4, 0.25])
        var mean: Tensor<Float>? = runningMean, variance: Tensor<Float>? = runningVar
        let y = try Functional.batchNorm(Variable(x), runningMean: &mean, runningVar: &variance,
                                         weight: Variable(Tensor([3, 1])), bias: Variable(Tensor([0, 2])),
                                         training: false, eps: 0)
        XCTAssertEqual(y.tensor![1, 0, 2, 1], (x[1, 0, 2, 1] - 0.5) / 2 * 3, accuracy: 1e-6)
        XCTAssertEqual(y.tensor![0, 1, 0, 0], (x[0, 1, 0, 0] + 1) / 0.5 + 2, accuracy: 1e-6)
        XCTAssertEqual(mean, runningMean)
        XCTAssertEqual(variance, runningVar)
        try G.check([x, G.random([2], in: 0.5..<1.5, seed: 2), G.random([2], seed: 3)]) { v in
            var m: Tensor<Float>? = runningMean, s: Tensor<Float>? = runningVar
            return try Functional.batchNorm(v[0], runningMean: &m, runningVar: &s, weight: v[1], bias: v[2],
                                            training: false)
        }
    }

    func testBatchNormNeedsMoreThanOneValuePerChannelInTraining() {
        var m: Tensor<Float>? = nil, s: Tensor<Float>? = nil
        let error = thrown(QuantizationError.self) {
            try Functional.batchNorm(Variable(TensorOf.zeros([1, 3])), runningMean: &m, runningVar: &s, training: true)
        }
        XCTAssertTrue("\(error.map { "\($0)" } ?? "")".contains("more than 1 value per channel"))
    }

    // MARK: Activations

    func testActivationValues() throws {
        let x = Variable(Tensor([-4, -3, -1, 0, 0.5, 3, 7]))
        assertElementsClose(try Functional.relu(x).tensor!.scalars, [0, 0, 0, 0, 0.5, 3, 7])
        assertElementsClose(try Functional.relu6(x).tensor!.scalars, [0, 0, 0, 0, 0.5, 3, 6])
        assertElementsClose(try Functional.hardswish(x).tensor!.scalars, [0, 0, -1.0 / 3, 0, 0.5 * 3.5 / 6, 3, 7])
        assertElementsClose(try Functional.hardsigmoid(x).tensor!.scalars, [0, 0, 2.0 / 6, 0.5, 3.5 / 6, 1, 1])
        assertElementsClose(try Functional.sigmoid(x).tensor!.scalars,
                            x.tensor!.scalars.map { Float(1 / (1 + exp(-Double($0)))) })
        assertElementsClose(try Functional.tanh(x).tensor!.scalars, x.tensor!.scalars.map { Float(tanh(Double($0))) })
        // GELU(1) = 0.8413447 (exact), 0.8411920 (tanh approximation), as PyTorch.
        let one = Variable(Tensor([1]))
        XCTAssertEqual(try Functional.gelu(one).tensor!.scalars[0], 0.8413447, accuracy: 1e-6)
        XCTAssertEqual(try Functional.gelu(one, approximate: .tanh).tensor!.scalars[0], 0.8411920, accuracy: 1e-6)
        // NaN propagates through relu, as torch.relu.
        XCTAssertTrue(try Functional.relu(Variable(Tensor([.nan]))).tensor!.scalars[0].isNaN)
    }

    func testActivationGradients() throws {
        let x = G.random([3, 5], in: -5..<8, seed: 1)
        try G.check([G.avoiding([0], x)]) { try Functional.relu($0[0]) }
        try G.check([G.avoiding([0, 6], x)]) { try Functional.relu6($0[0]) }
        try G.check([G.avoiding([-3, 3], x)]) { try Functional.hardswish($0[0]) }
        try G.check([G.avoiding([-3, 3], x)]) { try Functional.hardsigmoid($0[0]) }
        try G.check([x]) { try Functional.sigmoid($0[0]) }
        try G.check([x]) { try Functional.tanh($0[0]) }
        try G.check([x]) { try Functional.gelu($0[0]) }
        try G.check([x]) { try Functional.gelu($0[0], approximate: .tanh) }
        // PyTorch's conventions at the kinks: relu'(0) = 0, relu6'(6) = 0, hardswish'(3) = 1.5.
        let kinks = Variable(Tensor([0, 6, 3]), requiresGrad: true)
        try Functional.sum(Functional.relu(kinks)).backward()
        XCTAssertEqual(kinks.grad?.scalars, [0, 1, 1])
        kinks.grad = nil
        try Functional.sum(Functional.relu6(kinks)).backward()
        XCTAssertEqual(kinks.grad?.scalars, [0, 0, 1])
        kinks.grad = nil
        try Functional.sum(Functional.hardswish(kinks)).backward()
        XCTAssertEqual(kinks.grad?.scalars, [0.5, 1, 1.5])
    }

    // MARK: Pooling

    func testMaxPoolForwardGradientsAndTies() throws {
        let x = try Tensor<Float>(shape: [1, 1, 4, 4], scalars: (0..<16).map { Float($0 % 5) })
        let y = try Functional.maxPool2d(Variable(x), kernelSize: 2)
        XCTAssertEqual(y.tensor?.shape, [1, 1, 2, 2])
        XCTAssertEqual(y.tensor?.scalars, [4, 3, 4, 4])
        // Ties: the first maximum in row-major window order gets the gradient (PyTorch's CPU kernel).
        let ties = Variable(try Tensor(repeating: 1, shape: [1, 1, 2, 2]), requiresGrad: true)
        try Functional.sum(Functional.maxPool2d(ties, kernelSize: 2)).backward()
        XCTAssertEqual(ties.grad?.scalars, [1, 0, 0, 0])
        // Overlapping windows send gradient twice to a shared maximum.
        let shared = Variable(try Tensor(shape: [1, 1, 1, 3], scalars: [0, 5, 1]), requiresGrad: true)
        try Functional.sum(Functional.maxPool2d(shared, kernelSize: Size2d(height: 1, width: 2), stride: 1)).backward()
        XCTAssertEqual(shared.grad?.scalars, [0, 2, 0])

        try G.check([G.distinct([2, 3, 6, 6], seed: 1)]) { try Functional.maxPool2d($0[0], kernelSize: 2) }
        try G.check([G.distinct([2, 2, 7, 6], seed: 2)]) {
            try Functional.maxPool2d($0[0], kernelSize: 3, stride: 2, padding: 1, ceilMode: true)
        }
        try G.check([G.distinct([1, 2, 7, 7], seed: 3)]) {
            try Functional.maxPool2d($0[0], kernelSize: 2, stride: 1, dilation: 2)
        }
    }

    func testMaxPool2x2WithTiesAndNaNMatchesADirectReference() throws {
        // Rows wide enough for the vectorized 2x2 path; few distinct values make many ties; some NaN.
        var generator = RandomGenerator(seed: 11)
        let shape = [2, 3, 6, 21]
        var values = (0..<shape.reduce(1, *)).map { _ in Float(try! generator.nextInt(below: 3)) }
        for i in stride(from: 5, to: values.count, by: 97) { values[i] = .nan }
        let x = Variable(try Tensor(shape: shape, scalars: values), requiresGrad: true)
        let y = try Functional.maxPool2d(x, kernelSize: 2)
        try Functional.sum(y * Variable(try Tensor(repeating: 1, shape: y.shape))).backward()
        var expectedValues: [Float] = [], expectedGradient = [Float](repeating: 0, count: values.count)
        for plane in 0..<6 {
            for oy in 0..<3 {
                for ox in 0..<10 {
                    var best = -Float.infinity, index = plane * 126 + 2 * oy * 21 + 2 * ox
                    for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                        let i = plane * 126 + (2 * oy + dy) * 21 + 2 * ox + dx
                        if values[i] > best || values[i].isNaN { best = values[i]; index = i }
                    }
                    expectedValues.append(best)
                    expectedGradient[index] += 1
                }
            }
        }
        let actual = y.tensor!.scalars
        XCTAssertEqual(actual.count, expectedValues.count)
        for (a, e) in zip(actual, expectedValues) { XCTAssertTrue(a == e || (a.isNaN && e.isNaN), "\(a) vs \(e)") }
        XCTAssertEqual(x.grad?.scalars, expectedGradient)
    }

    func testPoolingOutputSizesFollowPyTorch() throws {
        // ceil_mode: 5 -> ceil((5 - 2) / 2) + 1 = 3; but a window starting in the padding only is dropped.
        XCTAssertEqual(try Functional.maxPool2d(Variable(TensorOf.zeros([1, 1, 5, 5])), kernelSize: 2,
                                                ceilMode: true).shape, [1, 1, 3, 3])
        XCTAssertEqual(try Functional.maxPool2d(Variable(TensorOf.zeros([1, 1, 6, 6])), kernelSize: 2, stride: 2,
                                                padding: 1, ceilMode: true).shape, [1, 1, 4, 4])
        XCTAssertEqual(try Functional.avgPool2d(Variable(TensorOf.zeros([2, 1, 7, 7])), kernelSize: 3, stride: 2)
            .shape, [2, 1, 3, 3])
        XCTAssertNotNil(thrown(QuantizationError.self) {
            try Functional.maxPool2d(Variable(TensorOf.zeros([1, 1, 4, 4])), kernelSize: 2, padding: 2)
        })
        XCTAssertNotNil(thrown(QuantizationError.self) {
            try Functional.maxPool2d(Variable(TensorOf.zeros([1, 1, 1, 1])), kernelSize: 2)
        })
    }

    func testAvgPoolDivisorsAndGradients() throws {
        let x = try Tensor<Float>(shape: [1, 1, 3, 3], scalars: (1...9).map(Float.init))
        // Padding counted: the corner window holds 1, 2, 4, 5 and five zeros of padding.
        let included = try Functional.avgPool2d(Variable(x), kernelSize: 3, stride: 2, padding: 1)
        XCTAssertEqual(included.tensor?.scalars[0] ?? 0, 12.0 / 9, accuracy: 1e-6)
        let excluded = try Functional.avgPool2d(Variable(x), kernelSize: 3, stride: 2, padding: 1,
                                                countIncludePad: false)
        XCTAssertEqual(excluded.tensor?.scalars[0] ?? 0, 3, accuracy: 1e-6)
        let overridden = try Functional.avgPool2d(Variable(x), kernelSize: 2, divisorOverride: 2)
        XCTAssertEqual(overridden.tensor?.scalars, [6])

        try G.check([G.random([2, 2, 6, 5], seed: 1)]) { try Functional.avgPool2d($0[0], kernelSize: 2) }
        try G.check([G.random([1, 2, 7, 7], seed: 2)]) {
            try Functional.avgPool2d($0[0], kernelSize: 3, stride: 2, padding: 1, ceilMode: true,
                                     countIncludePad: false)
        }
    }

    func testAdaptiveAvgPool() throws {
        // 5 -> 3: windows [0, 2), [1, 4), [3, 5), as PyTorch's start = floor(i * 5 / 3), end = ceil((i + 1) * 5 / 3).
        let x = try Tensor<Float>(shape: [1, 1, 1, 5], scalars: [1, 2, 3, 4, 5])
        let y = try Functional.adaptiveAvgPool2d(Variable(x), outputSize: Size2d(height: 1, width: 3))
        assertElementsClose(y.tensor!.scalars, [1.5, 3, 4.5])
        let global = try Functional.adaptiveAvgPool2d(Variable(G.random([2, 3, 4, 4], seed: 1)), outputSize: 1)
        XCTAssertEqual(global.shape, [2, 3, 1, 1])
        try G.check([G.random([2, 2, 5, 7], seed: 2)]) {
            try Functional.adaptiveAvgPool2d($0[0], outputSize: Size2d(height: 3, width: 2))
        }
    }

    // MARK: Element-wise, shape and reductions

    func testBroadcastingAddMulSubGradients() throws {
        try G.check([G.random([2, 3, 4], seed: 1), G.random([3, 1], seed: 2)]) { try $0[0] + $0[1] }
        try G.check([G.random([2, 1, 4], seed: 3), G.random([3, 4], seed: 4)]) { try $0[0] * $0[1] }
        try G.check([G.random([2, 3], seed: 5), G.random([3], seed: 6)]) { try $0[0] - $0[1] }
        try G.check([G.random([2, 3], seed: 7)]) { try ($0[0] * 3) + 1 }
        let sum = try Variable(Tensor<Float>(shape: [2, 1], scalars: [1, 2])) + Variable(Tensor([10, 20, 30]))
        XCTAssertEqual(sum.shape, [2, 3])
        XCTAssertEqual(sum.tensor?.scalars, [11, 21, 31, 12, 22, 32])
        XCTAssertNotNil(thrown(QuantizationError.self) { try Variable(Tensor([1, 2])) + Variable(Tensor([1, 2, 3])) })
    }

    func testCatSplitsTheGradient() throws {
        let a = G.random([2, 3, 2], seed: 1), b = G.random([2, 1, 2], seed: 2)
        let y = try Functional.cat([Variable(a), Variable(b)], dimension: 1)
        XCTAssertEqual(y.shape, [2, 4, 2])
        XCTAssertEqual(y.tensor![1, 3, 1], b[1, 0, 1])
        XCTAssertEqual(y.tensor![1, 2, 0], a[1, 2, 0])
        try G.check([a, b]) { try Functional.cat($0, dimension: 1) }
        try G.check([a, G.random([1, 3, 2], seed: 3)]) { try Functional.cat($0, dimension: 0) }
        try G.check([a, G.random([2, 3, 1], seed: 4)]) { try Functional.cat($0, dimension: -1) }
        XCTAssertNotNil(thrown(QuantizationError.self) { try Functional.cat([Variable(a), Variable(b)], dimension: 0) })
    }

    func testFlattenKeepsPyTorchOrder() throws {
        let x = try Tensor<Float>(shape: [2, 2, 2, 2], scalars: (0..<16).map(Float.init))
        let y = try Functional.flatten(Variable(x), startDimension: 1)
        XCTAssertEqual(y.shape, [2, 8])
        XCTAssertEqual(y.tensor?.scalars, x.scalars)   // row-major NCHW order, as torch.flatten
        XCTAssertEqual(try Functional.flatten(Variable(x), startDimension: 1, endDimension: 2).shape, [2, 4, 2])
        try G.check([G.random([2, 3, 2], seed: 1)]) { try Functional.flatten($0[0], startDimension: 1) }
        try G.check([G.random([2, 3, 2], seed: 2)]) { try Functional.reshape($0[0], [3, -1]) }
    }

    func testReductions() throws {
        try G.check([G.random([3, 4], seed: 1)]) { try Functional.sum($0[0]) }
        try G.check([G.random([3, 4], seed: 2)]) { try Functional.mean($0[0]) }
        XCTAssertEqual(try Functional.mean(Variable(Tensor([1, 2, 3, 6]))).item(), 3)
    }

    func testDropoutWithAFixedMask() throws {
        let x = G.random([4, 50], seed: 1)
        var generator = RandomGenerator(seed: 5)
        let y = try Functional.dropout(Variable(x), p: 0.3, training: true, using: &generator)
        let kept = y.tensor!.scalars.enumerated().filter { $0.element != 0 }
        XCTAssertTrue((120...160).contains(kept.count), "kept \(kept.count) of 200")
        for (i, v) in kept { XCTAssertEqual(v, x.scalars[i] / 0.7, accuracy: 1e-6) }
        // The same seed gives the same mask, so finite differences see a fixed function.
        try G.check([x]) { v in
            var g = RandomGenerator(seed: 5)
            return try Functional.dropout(v[0], p: 0.3, training: true, using: &g)
        }
        var g = RandomGenerator(seed: 5)
        let identity = Variable(x)
        XCTAssertTrue(try Functional.dropout(identity, p: 0.3, training: false, using: &g) === identity)
        XCTAssertNotNil(thrown(QuantizationError.self) { try Functional.dropout(identity, p: 1.5, using: &g) })
    }

    // MARK: Softmax and losses

    func testSoftmaxFamilyAndLosses() throws {
        let logits = G.random([4, 5], in: -3..<3, seed: 1)
        let softmax = try Functional.softmax(Variable(logits), dimension: 1).tensor!
        for row in 0..<4 { XCTAssertEqual((0..<5).reduce(Float(0)) { $0 + softmax[row, $1] }, 1, accuracy: 1e-6) }
        let log = try Functional.logSoftmax(Variable(logits)).tensor!
        assertElementsClose(log.scalars, softmax.scalars.map { Foundation.log($0) }, tolerance: 1e-5)
        try G.check([logits]) { try Functional.softmax($0[0], dimension: 1) }
        try G.check([G.random([2, 3, 4], seed: 2)]) { try Functional.softmax($0[0], dimension: 1) }
        try G.check([logits]) { try Functional.logSoftmax($0[0], dimension: -1) }

        let targets = [0, 4, 2, 2]
        let loss = try Functional.crossEntropy(Variable(logits), targets: targets).item()
        let expected = targets.enumerated().map { -Double(log[$0.offset, $0.element]) }.reduce(0, +) / 4
        XCTAssertEqual(Double(loss), expected, accuracy: 1e-5)
        try G.check([logits]) { try Functional.crossEntropy($0[0], targets: targets) }
        try G.check([logits]) { try Functional.crossEntropy($0[0], targets: targets, reduction: .sum) }
        try G.check([logits]) { try Functional.crossEntropy($0[0], targets: targets, reduction: .none) }
        try G.check([logits]) { try Functional.nllLoss(Functional.logSoftmax($0[0]), targets: targets) }
        try G.check([logits, G.random([4, 5], seed: 3)]) { try Functional.mseLoss($0[0], target: $0[1]) }
        XCTAssertNotNil(thrown(QuantizationError.self) { try Functional.crossEntropy(Variable(logits), targets: [0, 5, 1, 1]) })
        XCTAssertNotNil(thrown(QuantizationError.self) { try Functional.crossEntropy(Variable(logits), targets: [0]) })
    }

    func testCrossEntropyIsStableForLargeLogits() throws {
        let y = try Functional.crossEntropy(Variable(Tensor<Float>(shape: [1, 2], scalars: [1000, 0])), targets: [1])
        XCTAssertEqual(try y.item(), 1000, accuracy: 1e-3)
    }

    // MARK: Threads

    func testResultsDoNotDependOnTheThreadCount() throws {
        // Large enough that convolution, batch norm, pooling and ReLU run their parallel paths.
        func run() throws -> [[Float]] {
            var generator = RandomGenerator(seed: 8)
            let model = try ReferenceModels.cnn(imageSize: 16, channels: (8, 16), hidden: 16, generator: &generator)
            let x = Variable(GradientCheck.random([32, 1, 16, 16], seed: 9), requiresGrad: true)
            let loss = try Functional.crossEntropy(model(x), targets: (0..<32).map { $0 % 10 })
            try loss.backward()
            return [[try loss.item()], x.grad!.scalars] + model.parameters().map { $0.grad!.scalars }
        }
        let threads = Runtime.numberOfThreads
        defer { try? Runtime.setNumberOfThreads(threads) }
        try Runtime.setNumberOfThreads(1)
        let serial = try run()
        try Runtime.setNumberOfThreads(4)
        XCTAssertEqual(try run(), serial)
    }

    // MARK: A residual block through modules

    func testResidualBlockGradientThroughModules() throws {
        // y = relu(bn(conv(x)) + x) with FloatFunctional: the input gradient has two paths.
        var generator = RandomGenerator(seed: 3)
        let conv = try Conv2d(2, 2, kernelSize: 3, padding: 1, generator: &generator)
        let bn = try BatchNorm2d(2)
        let add = FloatFunctional()
        let x = G.random([2, 2, 4, 4], seed: 4)
        try G.check([x]) { v in try add.addReLU(try bn(conv(v[0])), v[0]) }
        // The weight gradient checked by perturbing the parameter in place.
        let xv = Variable(x)
        let r = G.random([2, 2, 4, 4], seed: 5)
        conv.zeroGrad()
        try Functional.sum(add.add(try bn(conv(xv)), xv) * Variable(r)).backward()
        let analytic = conv.weight.grad!
        for element in [0, 7, 20, 35] {
            func objective(_ delta: Float) throws -> Double {
                let saved = conv.weight.data
                defer { conv.weight.data = saved }
                conv.weight.data = GradientCheck.perturbed(saved, element, delta)
                let y = try Autograd.withNoGrad { try add.add(try bn(conv(xv)), xv) }
                return zip(y.tensor!.scalars, r.scalars).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            }
            let numeric = Float((try objective(1e-2) - objective(-1e-2)) / 2e-2)
            XCTAssertEqual(analytic.scalars[element], numeric, accuracy: 2e-3 + 1e-2 * abs(numeric))
        }
    }
}

/// Small tensor builders for tests.
enum TensorOf {
    static func zeros(_ shape: [Int]) -> Tensor<Float> { try! Tensor(zeros: shape) }
}
