import QuantKit
import XCTest

/// `fuseModules` / `fuseModulesQAT`: every pattern gives the unfused model's outputs, BatchNorm folding follows
/// PyTorch's fp32 formula, hooks and qconfigs move, and unfusable groups or wrong modes throw before any change.
final class FusionTests: XCTestCase {
    /// A batch norm with non-trivial affine parameters and running statistics (from a few training batches).
    private func trainedBatchNorm<B: BatchNorm>(_ batchNorm: B, inputShape: [Int], seed: UInt64) throws -> B {
        var generator = RandomGenerator(seed: seed)
        batchNorm.weight?.data = try generator.uniform(shape: [batchNorm.numFeatures], in: 0.5..<2)
        batchNorm.bias?.data = try generator.uniform(shape: [batchNorm.numFeatures], in: -1..<1)
        batchNorm.train()
        for _ in 0..<3 { _ = try batchNorm(generator.uniform(shape: inputShape, in: -2..<3)) }
        return batchNorm
    }

    private func outputs(_ model: Module, _ input: Tensor<Float>) throws -> [Float] {
        try Autograd.withNoGrad { try model(input).floatTensor(for: "test").scalars }
    }

    private func types(_ model: Module) -> [String] { model.children.map(\.typeName) }

    private func convModel(_ members: [String], seed: UInt64) throws -> Sequential {
        var generator = RandomGenerator(seed: seed)
        var modules: [Module] = []
        for member in members {
            switch member {
            case "conv": modules.append(try Conv2d(3, 4, kernelSize: 3, padding: 1, generator: &generator))
            case "bn": modules.append(try trainedBatchNorm(BatchNorm2d(4), inputShape: [4, 4, 5, 5], seed: seed + 1))
            case "relu": modules.append(ReLU())
            default: XCTFail("unknown member \(member)")
            }
        }
        return try Sequential(modules)
    }

    func testConvPatternsMatchTheUnfusedEvalModel() throws {
        let input = GradientCheck.random([2, 3, 5, 5], in: -2..<2, seed: 7)
        let cases: [([String], [String])] = [
            (["conv", "bn"], ["Conv2d", "Identity"]),
            (["conv", "bn", "relu"], ["ConvReLU2d", "Identity", "Identity"]),
            (["conv", "relu"], ["ConvReLU2d", "Identity"]),
        ]
        for (members, expectedTypes) in cases {
            let model = try convModel(members, seed: 11)
            model.eval()
            let expected = try outputs(model, input)
            try fuseModules(model, members.indices.map(String.init))
            XCTAssertEqual(types(model), expectedTypes, "\(members)")
            XCTAssertFalse(try model.child("0").training, "\(members)")
            assertElementsClose(try outputs(model, input), expected, tolerance: 1e-5, "\(members)")
        }
        // The folded conv inside ConvReLU2d is a new Conv2d; the BatchNorm is gone from the tree.
        let model = try convModel(["conv", "bn", "relu"], seed: 3)
        model.eval()
        try fuseModules(model, ["0", "1", "2"])
        let fused = try model.child("0", as: ConvReLU2d.self)
        XCTAssertEqual(try fused.conv.bias?.data.count, 4)
        XCTAssertFalse(model.modules().contains { $0 is BatchNorm })
    }

    func testLinearAndBatchNormReLUPatternsMatchTheUnfusedEvalModel() throws {
        var generator = RandomGenerator(seed: 5)
        let input = GradientCheck.random([6, 5], in: -2..<2, seed: 8)
        let linearBN = try Sequential(Linear(5, 4, generator: &generator),
                                      trainedBatchNorm(BatchNorm1d(4), inputShape: [8, 4], seed: 9))
        let linearReLU = try Sequential(Linear(5, 4, generator: &generator), ReLU())
        let image = GradientCheck.random([2, 4, 3, 3], in: -2..<2, seed: 10)
        let bnReLU = try Sequential(trainedBatchNorm(BatchNorm2d(4), inputShape: [3, 4, 3, 3], seed: 12), ReLU())
        for (model, x, expectedTypes) in [(linearBN, input, ["Linear", "Identity"]),
                                          (linearReLU, input, ["LinearReLU", "Identity"]),
                                          (bnReLU, image, ["BNReLU2d", "Identity"])] {
            model.eval()
            let expected = try outputs(model, x)
            try fuseModules(model, [["0", "1"]])
            XCTAssertEqual(types(model), expectedTypes)
            assertElementsClose(try outputs(model, x), expected, tolerance: 1e-5, "\(expectedTypes)")
        }
    }

    func testFoldingFollowsPyTorchsFloatFormula() throws {
        // running_var + eps = 4 and 0.25: invstd 0.5 and 2, exact in fp32, so the folded values are exact.
        let weight = try Tensor<Float>(shape: [2, 1, 1, 2], scalars: [1, -2, 0.5, 3])
        let (w, b) = try fuseConvBatchNormWeights(
            weight: weight, bias: Tensor([1, -1]), runningMean: Tensor([3, 0.5]), runningVar: Tensor([3, -0.75]),
            eps: 1, batchNormWeight: Tensor([2, 0.5]), batchNormBias: Tensor([0.25, -4]))
        XCTAssertEqual(w.shape, [2, 1, 1, 2])
        XCTAssertEqual(w.scalars, [1, -2, 0.5, 3])                  // scales 2 * 0.5 and 0.5 * 2
        XCTAssertEqual(b.scalars, [-1.75, -5.5])                    // (1 - 3) * 0.5 * 2 + 0.25, (-1 - 0.5) * 2 * 0.5 - 4
        // Linear: scale = gamma * invstd, b' = (b - mean) * scale + beta; no bias counts as zeros.
        let (lw, lb) = try fuseLinearBatchNormWeights(
            weight: Tensor(shape: [2, 2], scalars: [1, 2, 3, 4]), bias: nil, runningMean: Tensor([1, 2]),
            runningVar: Tensor([0.75, 3.75]), eps: 0.25, batchNormWeight: Tensor([3, 2]), batchNormBias: nil)
        XCTAssertEqual(lw.scalars, [3, 6, 3, 4])
        XCTAssertEqual(lb.scalars, [-3, -2])
        // Random values: within an ulp or two of a double-precision evaluation.
        let rv = GradientCheck.random([3], in: 0.1..<2, seed: 1), rm = GradientCheck.random([3], seed: 2)
        let gamma = GradientCheck.random([3], in: 0.5..<2, seed: 3), beta = GradientCheck.random([3], seed: 4)
        let cw = GradientCheck.random([3, 2, 2, 2], seed: 5), cb = GradientCheck.random([3], seed: 6)
        let (fw, fb) = try fuseConvBatchNormWeights(weight: cw, bias: cb, runningMean: rm, runningVar: rv, eps: 1e-5,
                                                    batchNormWeight: gamma, batchNormBias: beta)
        for c in 0..<3 {
            let invstd = 1 / (Double(rv.scalars[c]) + 1e-5).squareRoot()
            let expectedBias = (Double(cb.scalars[c]) - Double(rm.scalars[c])) * invstd * Double(gamma.scalars[c])
                + Double(beta.scalars[c])
            XCTAssertEqual(Double(fb.scalars[c]), expectedBias, accuracy: 1e-6 * (1 + abs(expectedBias)))
            for i in 0..<8 {
                let expected = Double(cw.scalars[c * 8 + i]) * Double(gamma.scalars[c]) * invstd
                XCTAssertEqual(Double(fw.scalars[c * 8 + i]), expected, accuracy: 1e-6 * (1 + abs(expected)))
            }
        }
        XCTAssertThrowsError(try fuseConvBatchNormWeights(
            weight: cw, bias: nil, runningMean: Tensor([0, 0]), runningVar: rv, eps: 1e-5, batchNormWeight: nil,
            batchNormBias: nil))
    }

    func testHooksMoveToTheFusedModuleAndQConfigFollows() throws {
        let model = try convModel(["conv", "bn", "relu"], seed: 4)
        model.eval()
        var log: [String] = []
        let conv = try model.child("0"), relu = try model.child("2")
        conv.registerForwardPreHook { _, _ in log.append("pre"); return nil }
        relu.registerForwardHook { _, _, _ in log.append("post"); return nil }
        conv.qconfig = .default
        try fuseModules(model, ["0", "1", "2"])
        let fused = try model.child("0")
        XCTAssertEqual(fused.qconfig?.name, "default_qconfig")
        _ = try outputs(model, GradientCheck.random([1, 3, 5, 5], seed: 2))
        XCTAssertEqual(log, ["pre", "post"])

        // QAT fusion keeps the conv as a member: its pre-hook runs once, on the fused module.
        let qat = try convModel(["conv", "bn", "relu"], seed: 4)
        log = []
        try qat.child("0").registerForwardPreHook { _, _ in log.append("pre"); return nil }
        try fuseModulesQAT(qat, ["0", "1", "2"])
        XCTAssertEqual(types(qat), ["ConvBnReLU2d", "Identity", "Identity"])
        _ = try outputs(qat, GradientCheck.random([2, 3, 5, 5], seed: 2))
        XCTAssertEqual(log, ["pre"])
        XCTAssertTrue(try qat.child("1").training)
    }

    func testQATFusionKeepsTheModulesAndTheirParameters() throws {
        var generator = RandomGenerator(seed: 6)
        let conv = try Conv2d(3, 4, kernelSize: 3, generator: &generator), bn = try BatchNorm2d(4)
        let linear = try Linear(4, 2, generator: &generator), bn1 = try BatchNorm1d(2)
        let model = try Sequential(named: [("conv", conv), ("bn", bn), ("relu", ReLU()), ("fc", linear),
                                           ("bn1", bn1), ("fc2", Linear(2, 2, generator: &generator)),
                                           ("relu2", ReLU())])
        try fuseModulesQAT(model, [["conv", "bn"], ["fc", "bn1"], ["fc2", "relu2"]])
        XCTAssertEqual(types(model), ["ConvBn2d", "Identity", "ReLU", "LinearBn1d", "Identity", "LinearReLU",
                                      "Identity"])
        let convBn = try model.child("conv", as: ConvBn2d.self)
        XCTAssertTrue(try convBn.conv === conv)
        XCTAssertTrue(try model.child("fc", as: LinearBn1d.self).batchNorm === bn1)
        XCTAssertTrue(model.parameters().contains { $0 === conv.weight })
    }

    func testUnfusablePatternsAndWrongModesThrowWithoutChangingTheModel() throws {
        var generator = RandomGenerator(seed: 8)
        let model = try Sequential(named: [
            ("fc", Linear(4, 4, generator: &generator)), ("tanh", Tanh()), ("bn", BatchNorm1d(4)), ("relu", ReLU()),
            ("conv", Conv2d(1, 2, kernelSize: 1, generator: &generator)), ("bn2", BatchNorm2d(3)),
        ])
        func assertUnfusable(_ groups: [[String]], qat: Bool = false, mentions: String,
                             line: UInt = #line) {
            let error = thrown(QuantizationWorkflowError.self, line: line) {
                qat ? try fuseModulesQAT(model, groups) : try fuseModules(model, groups)
            }
            guard case .unfusablePattern? = error else {
                return XCTFail("expected unfusablePattern, got \(String(describing: error))", line: line)
            }
            XCTAssertTrue("\(error!)".contains(mentions), "\(error!)", line: line)
        }
        assertUnfusable([["fc", "tanh"]], mentions: "no fusion pattern")
        assertUnfusable([["fc"]], mentions: "2 or 3 modules")
        assertUnfusable([["fc", "bn", "relu"]], mentions: "not fusable")
        assertUnfusable([["conv", "bn2"]], qat: true, mentions: "features")   // 3 features for 2 channels
        try model.child("relu").eval()
        assertUnfusable([["bn", "relu"]], mentions: "same mode")

        // Inference fusion folds BatchNorm, so it needs evaluation mode; QAT fusion needs training mode.
        model.train()
        let fold = thrown(QuantizationWorkflowError.self) { try fuseModules(model, ["fc", "bn"]) }
        guard case .wrongMode? = fold else { return XCTFail("expected wrongMode, got \(String(describing: fold))") }
        XCTAssertTrue("\(fold!)".contains("model.eval()"), "\(fold!)")
        model.eval()
        let qat = thrown(QuantizationWorkflowError.self) { try fuseModulesQAT(model, ["fc", "bn"]) }
        guard case .wrongMode? = qat else { return XCTFail("expected wrongMode, got \(String(describing: qat))") }

        // Non-affine or statistics-free batch norms cannot be fused for QAT.
        model.train()
        let plain = try Sequential(Linear(3, 3, generator: &generator), BatchNorm1d(3, affine: false))
        let error = thrown(QuantizationWorkflowError.self) { try fuseModulesQAT(plain, ["0", "1"]) }
        XCTAssertTrue(error.map { "\($0)" }?.contains("affine") == true, "\(String(describing: error))")
        let noStats = try Sequential(Linear(3, 3, generator: &generator), BatchNorm1d(3, trackRunningStats: false))
        noStats.eval()
        let stats = thrown(QuantizationWorkflowError.self) { try fuseModules(noStats, ["0", "1"]) }
        XCTAssertTrue(stats.map { "\($0)" }?.contains("running statistics") == true, "\(String(describing: stats))")

        // A bad later group leaves the earlier (valid) group unfused, and a missing path is a ModuleError.
        model.eval()
        XCTAssertThrowsError(try fuseModules(model, [["fc", "bn"], ["conv", "tanh"]]))
        XCTAssertEqual(types(model), ["Linear", "Tanh", "BatchNorm1d", "ReLU", "Conv2d", "BatchNorm2d"])
        XCTAssertNotNil(thrown(ModuleError.self) { try fuseModules(model, ["fc", "nope"]) })
    }
}
