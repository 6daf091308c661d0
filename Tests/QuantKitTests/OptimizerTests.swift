import Foundation
import QuantKit
import XCTest

/// Optimizer steps against values computed by hand (and, for longer runs, by an independent double-precision
/// implementation of PyTorch's update rules).
final class OptimizerTests: XCTestCase {
    private func parameter(_ values: [Float], grad: [Float]) -> Parameter {
        let p = Parameter(Tensor(values))
        p.grad = Tensor(grad)
        return p
    }

    func testSGDPlainStep() throws {
        let p = parameter([1, -2], grad: [0.5, 4])
        try SGD([p], learningRate: 0.1).step()
        assertElementsClose(p.data.scalars, [0.95, -2.4])
    }

    func testSGDMomentumDampeningNesterovAndWeightDecayByHand() throws {
        // momentum 0.9, first step: b = g = 1, p = 1 - 0.1 * 1 = 0.9.
        // second step with g = 2: b = 0.9 * 1 + 2 = 2.9, p = 0.9 - 0.29 = 0.61.
        let p = parameter([1], grad: [1])
        let sgd = try SGD([p], learningRate: 0.1, momentum: 0.9)
        try sgd.step()
        assertElementsClose(p.data.scalars, [0.9])
        p.grad = Tensor([2])
        try sgd.step()
        assertElementsClose(p.data.scalars, [0.61])
        assertElementsClose(sgd.momentumBuffers[0]!.scalars, [2.9])

        // Dampening 0.5: the first step keeps b = g (PyTorch clones the gradient), the second b = 0.9 b + 0.5 g.
        let d = parameter([0], grad: [1])
        let damped = try SGD([d], learningRate: 1, momentum: 0.9, dampening: 0.5)
        try damped.step()
        d.grad = Tensor([1])
        try damped.step()
        assertElementsClose(d.data.scalars, [-1 - 1.4])

        // Nesterov: g + momentum * b. First step: b = 1, update 1 + 0.9 = 1.9.
        let n = parameter([0], grad: [1])
        try SGD([n], learningRate: 0.1, momentum: 0.9, nesterov: true).step()
        assertElementsClose(n.data.scalars, [-0.19])

        // Weight decay adds wd * p to the gradient: g = 1 + 0.1 * 2 = 1.2, p = 2 - 0.5 * 1.2 = 1.4.
        let w = parameter([2], grad: [1])
        try SGD([w], learningRate: 0.5, weightDecay: 0.1).step()
        assertElementsClose(w.data.scalars, [1.4])

        // Maximize ascends.
        let m = parameter([0], grad: [1])
        try SGD([m], learningRate: 0.1, maximize: true).step()
        assertElementsClose(m.data.scalars, [0.1])
    }

    func testAdamFirstStepsByHand() throws {
        // Step 1: m = 0.1 g, v = 0.001 g^2, m / (1 - 0.9) = g, sqrt(v / (1 - 0.999)) = |g|:
        // p = p - lr * g / (|g| + eps) = 1 - 0.1 * 2 / (2 + 1e-8).
        let p = parameter([1, 1], grad: [2, -0.5])
        let adam = try Adam([p], learningRate: 0.1)
        try adam.step()
        assertElementsClose(p.data.scalars, [0.9, 1.1], tolerance: 1e-7)
        assertElementsClose(adam.firstMoments[0]!.scalars, [0.2, -0.05])
        assertElementsClose(adam.secondMoments[0]!.scalars, [0.004, 0.00025])
        // Step 2 with g = 1: m = 0.9 * 0.2 + 0.1 = 0.28, v = 0.999 * 0.004 + 0.001 = 0.004996,
        // p = 0.9 - 0.1 / (1 - 0.81) * 0.28 / (sqrt(0.004996) / sqrt(1 - 0.998001) + 1e-8).
        p.grad = Tensor([1, 1])
        try adam.step()
        let expected = 0.9 - 0.1 / 0.19 * 0.28 / ((0.004996).squareRoot() / (1 - 0.998001).squareRoot() + 1e-8)
        XCTAssertEqual(Double(p.data.scalars[0]), expected, accuracy: 1e-6)
        XCTAssertEqual(adam.steps, [2])
    }

    /// PyTorch's Adam / AdamW in double precision.
    private func referenceAdam(_ p0: [Double], gradients: [[Double]], lr: Double, beta1: Double = 0.9,
                               beta2: Double = 0.999, eps: Double = 1e-8, weightDecay: Double = 0,
                               decoupled: Bool = false, amsgrad: Bool = false) -> [Double] {
        var p = p0
        var m = [Double](repeating: 0, count: p.count), v = m, vMax = m
        for (t, g0) in gradients.enumerated() {
            let step = Double(t + 1)
            for i in p.indices {
                var g = g0[i]
                if weightDecay != 0 {
                    if decoupled { p[i] *= 1 - lr * weightDecay } else { g += weightDecay * p[i] }
                }
                m[i] = beta1 * m[i] + (1 - beta1) * g
                v[i] = beta2 * v[i] + (1 - beta2) * g * g
                vMax[i] = max(vMax[i], v[i])
                let second = amsgrad ? vMax[i] : v[i]
                let denominator = second.squareRoot() / (1 - pow(beta2, step)).squareRoot() + eps
                p[i] -= lr / (1 - pow(beta1, step)) * m[i] / denominator
            }
        }
        return p
    }

    func testAdamVariantsAgainstADoublePrecisionReference() throws {
        let gradients: [[Double]] = (0..<20).map { (t: Int) -> [Double] in
            let s = Double(t)
            return [sin(s), 3 * cos(0.7 * s), 0.01 * s]
        }
        let start: [Float] = [0.5, -1, 2]
        func run(_ make: ([Parameter]) throws -> any Optimizer) throws -> [Float] {
            let p = Parameter(Tensor(start))
            let optimizer = try make([p])
            for g in gradients {
                p.grad = Tensor(g.map { Float($0) })
                try optimizer.step()
            }
            return p.data.scalars
        }
        let p0 = start.map(Double.init)
        let floatGradients = gradients.map { $0.map { Double(Float($0)) } }
        assertElementsClose(try run { try Adam($0, learningRate: 0.01) },
                            referenceAdam(p0, gradients: floatGradients, lr: 0.01).map { Float($0) }, tolerance: 2e-6)
        assertElementsClose(try run { try Adam($0, learningRate: 0.01, weightDecay: 0.1) },
                            referenceAdam(p0, gradients: floatGradients, lr: 0.01, weightDecay: 0.1).map { Float($0) },
                            tolerance: 2e-6)
        assertElementsClose(try run { try Adam($0, learningRate: 0.01, amsgrad: true) },
                            referenceAdam(p0, gradients: floatGradients, lr: 0.01, amsgrad: true).map { Float($0) },
                            tolerance: 2e-6)
        assertElementsClose(try run { try AdamW($0, learningRate: 0.01, weightDecay: 0.1) },
                            referenceAdam(p0, gradients: floatGradients, lr: 0.01, weightDecay: 0.1,
                                          decoupled: true).map { Float($0) }, tolerance: 2e-6)
    }

    func testParametersWithoutGradientsAreSkipped() throws {
        let a = parameter([1], grad: [1])
        let b = Parameter(Tensor([5]))
        let adam = try Adam([a, b], learningRate: 0.1)
        try adam.step()
        XCTAssertEqual(b.data.scalars, [5])
        XCTAssertEqual(adam.steps, [1, 0])
        XCTAssertNil(adam.firstMoments[1])
        adam.zeroGrad()
        XCTAssertNil(a.grad)
    }

    func testInvalidHyperparametersAndGradientsThrow() {
        XCTAssertNotNil(thrown(QuantizationError.self) { try SGD([], learningRate: -1) })
        XCTAssertNotNil(thrown(QuantizationError.self) { try SGD([], momentum: 0, nesterov: true) })
        XCTAssertNotNil(thrown(QuantizationError.self) { try SGD([], momentum: 0.9, dampening: 0.1, nesterov: true) })
        XCTAssertNotNil(thrown(QuantizationError.self) { try Adam([], beta1: 1) })
        XCTAssertNotNil(thrown(QuantizationError.self) { try Adam([], eps: -1) })
        let p = parameter([1, 2], grad: [1])
        XCTAssertNotNil(thrown(QuantizationError.self) { try Adam([p]).step() })
    }

    func testOptimizerStepsUpdateModulesThroughTheirParameters() throws {
        // One SGD step on y = w x + b with the mean squared error, by hand: x = 2, target 0, w = 1, b = 0.5:
        // loss = (2.5)^2, dL/dw = 2 * 2.5 * 2 = 10, dL/db = 5; lr 0.01 -> w = 0.9, b = 0.45.
        let linear = try Linear(weight: Tensor<Float>(shape: [1, 1], scalars: [1]), bias: Tensor([0.5]))
        let sgd = try SGD(linear.parameters(), learningRate: 0.01)
        let loss = try Functional.mseLoss(linear(Tensor<Float>(shape: [1, 1], scalars: [2])),
                                          target: Variable(Tensor<Float>(shape: [1, 1], scalars: [0])))
        try loss.backward()
        try sgd.step()
        assertElementsClose(linear.weight.data.scalars, [0.9])
        assertElementsClose(linear.bias!.data.scalars, [0.45])
    }
}
