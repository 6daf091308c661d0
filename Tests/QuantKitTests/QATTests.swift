import QuantKit
import XCTest

/// Quantization-aware training: QAT modules and their module trees after `fuseModulesQAT` + `prepareQAT` and after
/// `convert`, BatchNorm folding while training (matching the unfused layers) and at convert (running statistics),
/// frozen BatchNorm statistics, and accuracy on the digits data.
final class QATTests: XCTestCase {
    private func outputs(_ model: Module, _ input: Tensor<Float>) throws -> [Float] {
        try Autograd.withNoGrad { try model(input).floatTensor(for: "test").scalars }
    }

    private func types(_ model: Module) -> [String: String] {
        Dictionary(uniqueKeysWithValues: model.namedChildren.map { ($0.name, $0.module.typeName) })
    }

    /// Every QAT unit of the small model below, with its float layer.
    private func network(seed: UInt64) throws -> Sequential {
        var g = RandomGenerator(seed: seed)
        return try Sequential(named: [
            ("quant", QuantStub()),
            ("conv", Conv2d(1, 4, kernelSize: 3, padding: 1, generator: &g)), ("bn", BatchNorm2d(4)), ("relu", ReLU()),
            ("conv2", Conv2d(4, 4, kernelSize: 3, padding: 1, groups: 4, generator: &g)), ("bn2", BatchNorm2d(4)),
            ("conv3", Conv2d(4, 2, kernelSize: 1, generator: &g)), ("relu3", ReLU()),
            ("conv4", Conv2d(2, 2, kernelSize: 3, padding: 1, bias: false, generator: &g)),
            ("flatten", Flatten()),
            ("fc", Linear(72, 8, generator: &g)), ("bn1", BatchNorm1d(8)),
            ("fc2", Linear(8, 8, generator: &g)), ("relu4", ReLU()),
            ("fc3", Linear(8, 3, generator: &g)),
            ("dequant", DeQuantStub()),
        ])
    }

    private let groups = [["conv", "bn", "relu"], ["conv2", "bn2"], ["conv3", "relu3"], ["fc", "bn1"],
                          ["fc2", "relu4"]]

    /// A few SGD steps on random data (so batch norms and fake quantization have statistics).
    private func train(_ model: Module, steps: Int, seed: UInt64) throws {
        let optimizer = try SGD(model.parameters(), learningRate: 0.05)
        for step in 0..<steps {
            optimizer.zeroGrad()
            let x = GradientCheck.random([8, 1, 6, 6], in: 0..<1, seed: seed + UInt64(step))
            let loss = try Functional.crossEntropy(model(x), targets: (0..<8).map { ($0 + step) % 3 })
            try loss.backward()
            try optimizer.step()
        }
    }

    func testPrepareQATSwapsUnitsAndAddsFakeQuantization() throws {
        let model = try network(seed: 1)
        let floatConvWeight = try model.child("conv", as: Conv2d.self).weight
        try fuseModulesQAT(model, groups)
        try prepareQAT(model)
        XCTAssertEqual(types(model), [
            "quant": "QuantStub", "conv": "QATConvBnReLU2d", "bn": "Identity", "relu": "Identity",
            "conv2": "QATConvBn2d", "bn2": "Identity", "conv3": "QATConvReLU2d", "relu3": "Identity", "conv4": "QATConv2d",
            "flatten": "Flatten", "fc": "QATLinearBn1d", "bn1": "Identity", "fc2": "QATLinearReLU",
            "relu4": "Identity", "fc3": "QATLinear", "dequant": "DeQuantStub",
        ])
        for name in ["conv", "conv2", "conv3", "conv4", "fc", "fc2", "fc3"] {
            let unit = try model.child(name)
            let qat = try XCTUnwrap(unit as? any QATModule, name)
            guard case .fakeQuantize(let weightFQ) = try qat.weightFakeQuant.observerOrFakeQuantize else {
                return XCTFail("\(name): the weight must be fake-quantized")
            }
            XCTAssertTrue(weightFQ is FusedMovingAvgObsFakeQuantize, name)   // the x86 QAT preset (version 1)
            guard case .fakeQuantize? = try (unit.child("activation_post_process") as? ObserverModule)?
                .observerOrFakeQuantize else { return XCTFail("\(name): missing output fake quantization") }
            XCTAssertNotNil(unit.qconfig, name)
        }
        XCTAssertNotNil(try model.child("quant").child("activation_post_process"))
        for name in ["flatten", "dequant", "bn", "relu"] {
            XCTAssertThrowsError(try model.child(name).child("activation_post_process"), name)
        }
        // The QAT modules share the float parameters: an optimizer built before prepareQAT still trains them.
        XCTAssertTrue(try model.child("conv", as: QATConvBnReLU2d.self).weight === floatConvWeight)
        XCTAssertEqual(try model.child("conv2", as: QATConvBn2d.self).groups, 4)
        let names = model.stateDict().names
        XCTAssertTrue(names.contains("conv.weight") && names.contains("conv.bn.running_mean")
                      && names.contains("fc.bn.weight"), "\(names)")

        // Training runs through the fake quantization with gradients reaching every layer.
        try train(model, steps: 2, seed: 10)
        for (path, parameter) in model.namedParameters() {
            XCTAssertNotNil(parameter.grad, "no gradient for \(path)")
        }
    }

    func testConvertAfterQATGivesQuantizedModulesWithBatchNormFoldedByRunningStatistics() throws {
        let model = try network(seed: 2)
        try fuseModulesQAT(model, groups)
        try prepareQAT(model)
        try train(model, steps: 6, seed: 20)
        model.eval()
        let input = GradientCheck.random([4, 1, 6, 6], in: 0..<1, seed: 99)
        let fakeQuantized = try outputs(model, input)

        let convBn = try model.child("conv2", as: QATConvBn2d.self)
        let (foldedWeight, foldedBias) = try convBn.foldedWeightAndBias()
        let bn = try convBn.batchNorm
        let (mean, variance) = (try XCTUnwrap(bn.runningMean), try XCTUnwrap(bn.runningVar))
        let expected = try fuseConvBatchNormWeights(
            weight: convBn.weight.data, bias: convBn.bias?.data, runningMean: mean, runningVar: variance, eps: bn.eps,
            batchNormWeight: bn.weight?.data, batchNormBias: bn.bias?.data)
        XCTAssertEqual(foldedBias.scalars, expected.bias.scalars)
        let weightFQ = try convBn.weightFakeQuant.observerOrFakeQuantize
        let linearBn = try model.child("fc", as: QATLinearBn1d.self)
        let (foldedLinearWeight, foldedLinearBias) = try linearBn.foldedWeightAndBias()
        let outputParameters = try model.child("fc3").outputQuantizationParameters()

        try convert(model)
        XCTAssertEqual(types(model), [
            "quant": "Quantize", "conv": "QuantizedConvReLU2d", "bn": "Identity", "relu": "Identity",
            "conv2": "QuantizedConv2d", "bn2": "Identity", "conv3": "QuantizedConvReLU2d", "relu3": "Identity", "conv4": "QuantizedConv2d",
            "flatten": "Flatten", "fc": "QuantizedLinear", "bn1": "Identity", "fc2": "QuantizedLinearReLU",
            "relu4": "Identity", "fc3": "QuantizedLinear", "dequant": "DeQuantize",
        ])
        XCTAssertFalse(model.modules().contains { $0 is ObserverModule || $0 is BatchNorm || $0.qconfig != nil })

        // conv2: the running-statistics fold, quantized with the weight fake quantization's parameters (it ran once
        // more on the folded weight at convert, as PyTorch).
        let qconv = try model.child("conv2", as: QuantizedConv2d.self)
        XCTAssertEqual(qconv.bias?.scalars, foldedBias.scalars)
        XCTAssertEqual(qconv.groups, 4)
        let weightParameters = try weightFQ.calculateQParams()
        XCTAssertEqual(qconv.weight.scales, weightParameters.scales)
        XCTAssertEqual(qconv.weight.qscheme, .perChannelAffine)
        // The moving-average weight range (averaging constant 0.01) may not cover the folded weight yet after a few
        // steps; values outside it clamp, as in PyTorch.
        let perChannel = foldedWeight.count / 4
        let expectedInts = foldedWeight.scalars.enumerated().map { i, f in
            Int32(Reference.quantize(f, scale: weightParameters.scales[i / perChannel],
                                     zeroPoint: weightParameters.zeroPoints[i / perChannel], dtype: .qint8))
        }
        XCTAssertEqual(qconv.weight.intRepr(), expectedInts)
        let qlinear = try model.child("fc", as: QuantizedLinear.self)
        XCTAssertEqual(qlinear.bias?.scalars, foldedLinearBias.scalars)
        XCTAssertEqual(qlinear.weight.shape, foldedLinearWeight.shape)
        let last = try model.child("fc3", as: QuantizedLinear.self)
        XCTAssertEqual(last.scale, outputParameters.scale)
        XCTAssertEqual(last.zeroPoint, outputParameters.zeroPoint)

        // The int8 model computes what the fake-quantized model did, up to roundings of the integer requantization
        // that fake quantization does not model (measured: at most one output step); allow two.
        let quantized = try outputs(model, input)
        XCTAssertEqual(quantized.count, fakeQuantized.count)
        let worst = zip(quantized, fakeQuantized).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(worst, 2.01 * last.scale, "largest difference \(worst), output scale \(last.scale)")
    }

    func testConvBnFoldingWhileTrainingMatchesConvThenBatchNorm() throws {
        var g = RandomGenerator(seed: 3)
        let conv = try Conv2d(3, 4, kernelSize: 3, padding: 1, generator: &g), bn = try BatchNorm2d(4)
        bn.weight?.data = try g.uniform(shape: [4], in: 0.5..<2)
        bn.bias?.data = try g.uniform(shape: [4], in: -1..<1)
        try bn.setBuffer("running_var", g.uniform(shape: [4], in: 0.5..<3))
        try bn.setBuffer("running_mean", g.uniform(shape: [4], in: -1..<1))
        let reference = try Sequential(conv, bn)
        let twinConv = try Conv2d(weight: conv.weight.data, bias: conv.bias?.data, padding: 1)
        let twinBN = try BatchNorm2d(4)
        try twinBN.loadStateDict(bn.stateDict())
        let fused = try ConvBn2d(twinConv, twinBN)
        fused.qconfig = try QConfig.defaultQATQConfig()
        let qat = try QATConvBn2d(from: fused)
        qat.apply(disableFakeQuant)

        // Training: batch statistics; outputs, gradients and running statistics as conv then batch norm.
        let x = GradientCheck.random([3, 3, 5, 5], seed: 4)
        let upstream = GradientCheck.random([3, 4, 5, 5], seed: 5)
        let y = try reference(x), yq = try qat(x)
        assertElementsClose(try yq.floatTensor(for: "t").scalars, try y.floatTensor(for: "t").scalars,
                            tolerance: 1e-4)
        try y.backward(upstream)
        try yq.backward(upstream)
        assertElementsClose(try XCTUnwrap(twinConv.weight.grad).scalars, try XCTUnwrap(conv.weight.grad).scalars,
                            tolerance: 1e-3, "conv weight")
        assertElementsClose(try XCTUnwrap(twinConv.bias?.grad).scalars, try XCTUnwrap(conv.bias?.grad).scalars,
                            tolerance: 1e-3, "conv bias")
        assertElementsClose(try XCTUnwrap(twinBN.weight?.grad).scalars, try XCTUnwrap(bn.weight?.grad).scalars,
                            tolerance: 1e-3, "bn weight")
        assertElementsClose(try XCTUnwrap(twinBN.runningMean).scalars, try XCTUnwrap(bn.runningMean).scalars,
                            tolerance: 1e-5, "running mean")
        XCTAssertEqual(twinBN.numBatchesTracked, 1)

        // Evaluation: the running statistics, i.e. the folded convolution.
        reference.eval()
        qat.eval()
        let folded = try fuseConvBatchNormEval(conv, bn)
        assertElementsClose(try outputs(qat, x), try outputs(folded, x), tolerance: 1e-4)
        assertElementsClose(try outputs(qat, x), try outputs(reference, x), tolerance: 1e-4)
    }

    func testLinearBnFoldingWhileTrainingMatchesLinearThenBatchNorm() throws {
        var g = RandomGenerator(seed: 6)
        let linear = try Linear(5, 3, generator: &g), bn = try BatchNorm1d(3)
        bn.weight?.data = try g.uniform(shape: [3], in: 0.5..<2)
        try bn.setBuffer("running_var", g.uniform(shape: [3], in: 0.5..<3))
        let reference = try Sequential(linear, bn)
        let twinLinear = try Linear(weight: linear.weight.data, bias: linear.bias?.data), twinBN = try BatchNorm1d(3)
        try twinBN.loadStateDict(bn.stateDict())
        let fused = try LinearBn1d(twinLinear, twinBN)
        fused.qconfig = .defaultQAT
        let qat = try QATLinearBn1d(from: fused)
        qat.apply(disableFakeQuant)
        let x = GradientCheck.random([6, 5], seed: 7)
        let y = try reference(x), yq = try qat(x)
        assertElementsClose(try yq.floatTensor(for: "t").scalars, try y.floatTensor(for: "t").scalars,
                            tolerance: 1e-4)
        let upstream = GradientCheck.random([6, 3], seed: 8)
        try y.backward(upstream)
        try yq.backward(upstream)
        assertElementsClose(try XCTUnwrap(twinLinear.weight.grad).scalars, try XCTUnwrap(linear.weight.grad).scalars,
                            tolerance: 1e-3)
        assertElementsClose(try XCTUnwrap(twinBN.weight?.grad).scalars, try XCTUnwrap(bn.weight?.grad).scalars,
                            tolerance: 1e-3)
        // With fake quantization on, the forward differs from float by the weight rounding only.
        qat.apply(enableFakeQuant)
        let rounded = try outputs(qat, x)
        XCTAssertNotEqual(rounded, try y.floatTensor(for: "t").scalars)
        assertElementsClose(rounded, try y.floatTensor(for: "t").scalars, tolerance: 0.1)
    }

    func testFreezeBNStatsStopsRunningStatisticUpdates() throws {
        let model = try network(seed: 4)
        try fuseModulesQAT(model, groups)
        try prepareQAT(model)
        try train(model, steps: 1, seed: 30)
        let convBn = try model.child("conv", as: QATConvBnReLU2d.self), bn = try convBn.batchNorm
        let linearBn = try model.child("fc", as: QATLinearBn1d.self)
        XCTAssertEqual(bn.numBatchesTracked, 1)

        model.apply(freezeBNStats)
        XCTAssertTrue(convBn.isBatchNormFrozen && linearBn.isBatchNormFrozen)
        model.train()                               // a frozen batch norm stays in evaluation mode
        XCTAssertTrue(convBn.training)
        XCTAssertFalse(bn.training)
        XCTAssertFalse(try linearBn.batchNorm.training)
        let (mean, variance) = (bn.runningMean, bn.runningVar)
        let linearMean = try linearBn.batchNorm.runningMean
        try train(model, steps: 2, seed: 40)
        XCTAssertEqual(bn.runningMean, mean)
        XCTAssertEqual(bn.runningVar, variance)
        XCTAssertEqual(try linearBn.batchNorm.runningMean, linearMean)
        XCTAssertEqual(bn.numBatchesTracked, 1)

        model.apply(updateBNStats)
        XCTAssertTrue(bn.training)
        try train(model, steps: 1, seed: 50)
        XCTAssertNotEqual(bn.runningMean, mean)
        XCTAssertEqual(bn.numBatchesTracked, 2)
    }

    func testPrepareQATErrors() throws {
        let model = try network(seed: 5)
        model.eval()
        let mode = thrown(QuantizationWorkflowError.self) { try prepareQAT(model) }
        XCTAssertEqual(mode, .wrongMode(operation: "prepareQAT", expected: "training mode (call model.train() first)"))
        let unconfigured = try network(seed: 5)
        let none = thrown(QuantizationWorkflowError.self) { try prepareQAT(unconfigured, config: QConfigMapping()) }
        guard case .noQConfig? = none else { return XCTFail("expected noQConfig, got \(String(describing: none))") }
        XCTAssertEqual(types(unconfigured)["fc3"], "Linear")   // nothing was swapped
        model.train()

        var g = RandomGenerator(seed: 1)
        let bare = try Linear(2, 2, generator: &g)
        XCTAssertNotNil(thrown(QuantizationWorkflowError.self) { try QATLinear(from: bare) })

        // Converting a QAT model that never ran: the output fake quantization saw nothing.
        try prepareQAT(model, config: .defaultQAT)
        let early = thrown(QuantizationWorkflowError.self) { try convert(model) }
        guard case .notCalibrated? = early else {
            return XCTFail("expected notCalibrated, got \(String(describing: early))")
        }
    }

    func testQuantizeQATRunsTheWholeWorkflow() throws {
        let model = try network(seed: 7)
        try fuseModulesQAT(model, groups)
        var steps = 0
        try quantizeQAT(model, config: QConfigMapping(global: .defaultQAT)) { prepared in
            XCTAssertTrue(prepared.training)
            XCTAssertEqual(self.types(prepared)["fc3"], "QATLinear")
            try self.train(prepared, steps: 2, seed: 60)
            steps += 2
        }
        XCTAssertEqual(steps, 2)
        XCTAssertFalse(model.training)
        XCTAssertEqual(types(model)["conv"], "QuantizedConvReLU2d")
        XCTAssertEqual(types(model)["fc3"], "QuantizedLinear")
        let y = try model(GradientCheck.random([2, 1, 6, 6], in: 0..<1, seed: 1))
        XCTAssertEqual(y.shape, [2, 3])
        XCTAssertFalse(y.isQuantized)
    }

    /// Trains `model` in fp32 on the digits (Adam, 3e-3) and checks its test accuracy: the training loader
    /// (shuffled with `shuffleSeed`), the test loader and the fp32 accuracy.
    private func trainedOnDigits(_ model: Module, shuffleSeed: UInt64, epochs: Int, minimumAccuracy: Double,
                                 line: UInt = #line) throws -> (loader: DataLoader, test: DataLoader, fp32: Double) {
        let (train, test) = Digits.trainTestSplit(try Digits.load(contentsOf: DataFixtures.digits))
        let loader = try DataLoader(train, batchSize: 32, shuffle: true, generator: RandomGenerator(seed: shuffleSeed))
        let testLoader = try DataLoader(test, batchSize: 360)
        _ = try Trainer(model: model, optimizer: try Adam(model.parameters(), learningRate: 3e-3), progress: .silent)
            .fit(loader, epochs: epochs)
        let fp32 = try evaluate(model, on: testLoader).accuracy
        XCTAssertGreaterThanOrEqual(fp32, minimumAccuracy, "fp32 accuracy \(fp32)", line: line)
        return (loader, testLoader, fp32)
    }

    func testQATOnDigitsKeepsTheFloatAccuracy() throws {
        var g = RandomGenerator(seed: 0)
        let model = try Sequential(named: [
            ("quant", QuantStub()), ("flatten", Flatten()),
            ("fc1", Linear(64, 32, generator: &g)), ("bn1", BatchNorm1d(32)), ("relu1", ReLU()),
            ("fc2", Linear(32, 32, generator: &g)), ("relu2", ReLU()),
            ("fc3", Linear(32, 10, generator: &g)), ("dequant", DeQuantStub()),
        ])
        let (loader, testLoader, fp32) = try trainedOnDigits(model, shuffleSeed: 1, epochs: 8, minimumAccuracy: 0.93)

        model.train()
        try fuseModulesQAT(model, [["fc1", "bn1"], ["fc2", "relu2"]])
        try prepareQAT(model)
        let fineTune = Trainer(model: model, optimizer: try Adam(model.parameters(), learningRate: 5e-4),
                               progress: .silent)
        _ = try fineTune.trainEpoch(loader)
        model.apply(freezeBNStats)
        _ = try fineTune.trainEpoch(loader)
        let qat = try evaluate(model, on: testLoader).accuracy

        model.eval()
        try convert(model)
        XCTAssertEqual(try model.child("fc1").typeName, "QuantizedLinear")        // LinearBn1d folded
        XCTAssertEqual(try model.child("fc2").typeName, "QuantizedLinearReLU")
        let int8 = try evaluate(model, on: testLoader).accuracy
        XCTAssertGreaterThanOrEqual(int8, fp32 - 0.02, "int8 \(int8) vs fp32 \(fp32) (QAT eval \(qat))")
        XCTAssertEqual(int8, qat, accuracy: 0.01, "the int8 model computes what QAT simulated")
    }

    func testQATConvNetOnDigitsKeepsTheFloatAccuracy() throws {
        var g = RandomGenerator(seed: 2)
        let model = try Sequential(named: [
            ("quant", QuantStub()),
            ("conv", Conv2d(1, 8, kernelSize: 3, padding: 1, generator: &g)), ("bn", BatchNorm2d(8)), ("relu", ReLU()),
            ("pool", MaxPool2d(kernelSize: 2)), ("flatten", Flatten()),
            ("fc", Linear(128, 10, generator: &g)), ("dequant", DeQuantStub()),
        ])
        let (loader, testLoader, fp32) = try trainedOnDigits(model, shuffleSeed: 3, epochs: 3, minimumAccuracy: 0.9)

        try fuseModulesQAT(model, ["conv", "bn", "relu"])
        try prepareQAT(model)
        _ = try Trainer(model: model, optimizer: try Adam(model.parameters(), learningRate: 5e-4), progress: .silent)
            .trainEpoch(loader)
        model.eval()
        try convert(model)
        XCTAssertEqual(try model.child("conv").typeName, "QuantizedConvReLU2d")
        let int8 = try evaluate(model, on: testLoader).accuracy
        XCTAssertGreaterThanOrEqual(int8, fp32 - 0.02, "int8 \(int8) vs fp32 \(fp32)")
    }
}
