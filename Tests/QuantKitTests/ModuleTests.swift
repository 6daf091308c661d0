import Foundation
import QuantKit
import XCTest

/// The module tree: names and paths, registration, replacement in place, train/eval, state dicts, hooks, layer
/// construction, and payload checks.
final class ModuleTests: XCTestCase {
    private func referenceCNN(seed: UInt64 = 0) throws -> Sequential {
        var generator = RandomGenerator(seed: seed)
        return try ReferenceModels.cnn(imageSize: 28, generator: &generator)
    }

    /// A custom module that reaches its children through the registry.
    private final class Block: Module {
        init(generator: inout RandomGenerator) throws {
            super.init()
            try registerModule("conv", Conv2d(2, 2, kernelSize: 3, padding: 1, generator: &generator))
            try registerModule("bn", BatchNorm2d(2))
            try registerModule("relu", ReLU())
            try registerModule("skip", FloatFunctional())
        }

        override func forward(_ x: Variable) throws -> Variable {
            let y = try child("bn")(child("conv")(x))
            return try child("skip", as: FloatFunctional.self).add(try child("relu")(y), x)
        }
    }

    func testTreePathsAndPyTorchNames() throws {
        let model = try referenceCNN()
        XCTAssertEqual(model.namedModules().map(\.path),
                       ["", "features", "features.0", "features.1", "features.2", "features.3", "features.4",
                        "features.5", "features.6", "features.7", "flatten", "classifier", "classifier.0",
                        "classifier.1", "classifier.2"])
        XCTAssertEqual(model.namedParameters().map(\.path),
                       ["features.0.weight", "features.0.bias", "features.1.weight", "features.1.bias",
                        "features.4.weight", "features.4.bias", "features.5.weight", "features.5.bias",
                        "classifier.0.weight", "classifier.0.bias", "classifier.2.weight", "classifier.2.bias"])
        XCTAssertEqual(model.namedBuffers().map(\.path),
                       ["features.1.running_mean", "features.1.running_var", "features.1.num_batches_tracked",
                        "features.5.running_mean", "features.5.running_var", "features.5.num_batches_tracked"])
        XCTAssertEqual(try model.module(at: "features.4").path, "features.4")
        XCTAssertTrue(try model.module(at: "classifier.0") is Linear)
        XCTAssertEqual(try model.module(at: "classifier.0").typeName, "Linear")
        XCTAssertEqual((try model.module(at: "classifier.0") as? Linear)?.weight.data.shape, [64, 32 * 7 * 7])
        let missing = thrown(ModuleError.self) { try model.module(at: "features.9.weight") }
        XCTAssertEqual(missing, .notFound(path: "features.9", kind: "submodule",
                                          available: (0..<8).map(String.init)))
        // The parameter count of the Fashion-MNIST CNN.
        XCTAssertEqual(model.parameters().reduce(0) { $0 + $1.data.count },
                       (16 * 9 + 16) + 32 + (32 * 16 * 9 + 32) + 64 + (1568 * 64 + 64) + (64 * 10 + 10))
    }

    func testStateDictHasPyTorchNamesOrderAndDTypes() throws {
        let model = try referenceCNN()
        let state = model.stateDict()
        XCTAssertEqual(Array(state.names.prefix(7)),
                       ["features.0.weight", "features.0.bias", "features.1.weight", "features.1.bias",
                        "features.1.running_mean", "features.1.running_var", "features.1.num_batches_tracked"])
        XCTAssertEqual(state.count, 12 + 6)
        XCTAssertEqual(state.entries.first { $0.name == "features.1.num_batches_tracked" }?.dtype, .int64)
        XCTAssertEqual(state["features.1.running_var"], try Tensor(repeating: 1, shape: [16]))
        XCTAssertEqual(state["features.1.num_batches_tracked"]?.shape, [])
    }

    func testStateDictRoundTripReproducesOutputs() throws {
        let a = try referenceCNN(seed: 1), b = try referenceCNN(seed: 2)
        // Train a step so the batch-norm buffers move.
        let x = GradientCheck.random([4, 1, 28, 28], seed: 3)
        _ = try a(x)
        a.eval(); b.eval()
        XCTAssertNotEqual(try a(x).tensor, try b(x).tensor)
        let result = try b.loadStateDict(a.stateDict())
        XCTAssertTrue(result.missingKeys.isEmpty && result.unexpectedKeys.isEmpty)
        XCTAssertEqual(try a(x).tensor, try b(x).tensor)
        XCTAssertEqual((try b.module(at: "features.1") as? BatchNorm2d)?.numBatchesTracked, 1)

        // Through a safetensors file: num_batches_tracked is stored as I64, as PyTorch saves it.
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("qk-nn-\(getpid()).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try a.saveStateDict(to: url)
        let file = try SafeTensors(contentsOf: url)
        XCTAssertEqual(file["features.1.num_batches_tracked"]?.dtype, .int64)
        XCTAssertEqual(try file.scalars("features.1.num_batches_tracked", as: Int64.self), [1])
        let c = try referenceCNN(seed: 4)
        c.eval()
        try c.loadStateDict(contentsOf: url)
        XCTAssertEqual(try a(x).tensor, try c(x).tensor)
    }

    func testLoadStateDictChecksKeysAndShapesWithoutPartialUpdates() throws {
        let model = try referenceCNN()
        let before = model.stateDict()
        var state = before
        state["features.0.weight"] = GradientCheck.random([16, 1, 3, 3], seed: 1)
        state["classifier.2.bias"] = TensorOf.zeros([11])
        let shape = thrown(SerializationError.self) { try model.loadStateDict(state) }
        XCTAssertEqual(shape, .shapeMismatch(tensor: "classifier.2.bias", expected: [10], actual: [11]))
        XCTAssertEqual(model.stateDict(), before)   // nothing was changed

        var partial = before
        partial["features.0.bias"] = nil
        partial["extra.weight"] = TensorOf.zeros([1])
        let keys = thrown(SerializationError.self) { try model.loadStateDict(partial) }
        XCTAssertEqual(keys, .keyMismatch(missing: ["features.0.bias"], unexpected: ["extra.weight"]))
        partial["features.0.weight"] = GradientCheck.random([16, 1, 3, 3], seed: 2)
        let result = try model.loadStateDict(partial, strict: false)
        XCTAssertEqual(result.missingKeys, ["features.0.bias"])
        XCTAssertEqual(result.unexpectedKeys, ["extra.weight"])
        XCTAssertEqual((try model.module(at: "features.0") as? Conv2d)?.weight.data, partial["features.0.weight"])
    }

    func testLoadingUpdatesParametersInPlaceForOptimizers() throws {
        var generator = RandomGenerator(seed: 0)
        let linear = try Linear(2, 1, generator: &generator)
        let weight = linear.weight
        try linear.loadStateDict(StateDict([("weight", Tensor<Float>(shape: [1, 2], scalars: [3, 4])),
                                            ("bias", Tensor([5]))]))
        XCTAssertTrue(weight === linear.weight)
        XCTAssertEqual(weight.data.scalars, [3, 4])
        XCTAssertEqual(try linear(Tensor<Float>(shape: [1, 2], scalars: [1, 1])).tensor?.scalars, [12])
    }

    func testReplaceChildInPlaceIsUsedByForward() throws {
        var generator = RandomGenerator(seed: 0)
        let model = try Sequential(named: [("block", Block(generator: &generator)), ("head", Flatten())])
        let x = GradientCheck.random([1, 2, 3, 3], seed: 1)
        model.eval()
        let before = try model(x).tensor!
        // Replace a leaf deep inside a custom module, the way convert swaps layers.
        try model.replaceChild(at: "block.relu", with: Identity())
        XCTAssertTrue(try model.module(at: "block.relu") is Identity)
        XCTAssertEqual(try model.module(at: "block.relu").path, "block.relu")
        let after = try model(x).tensor!
        XCTAssertNotEqual(before, after)
        XCTAssertEqual(model.namedChildren.map(\.name), ["block", "head"])   // order kept
        XCTAssertEqual(try model.module(at: "block").namedChildren.map(\.name), ["conv", "bn", "relu", "skip"])
        // Sequential children replaced by index.
        let sequential = try Sequential(ReLU(), Flatten())
        try sequential.replaceChild(at: "0", with: Identity())
        XCTAssertEqual(try sequential(Tensor<Float>(shape: [1, 2], scalars: [-1, 2])).tensor?.scalars, [-1, 2])
        // Missing paths throw instead of trapping.
        XCTAssertNotNil(thrown(ModuleError.self) { try model.replaceChild(at: "block.gelu", with: Identity()) })
        XCTAssertNotNil(thrown(ModuleError.self) { try model.replaceChild(at: "nothing.relu", with: Identity()) })
        XCTAssertNotNil(thrown(ModuleError.self) { try model.replaceChild(at: "", with: Identity()) })
        XCTAssertNotNil(thrown(ModuleError.self) { try model.child("missing") })
        XCTAssertNotNil(thrown(ModuleError.self) { try model.child("block", as: Linear.self) })
    }

    func testRegistrationRejectsBadAndDuplicateNames() throws {
        let module = Module()
        try module.registerModule("a", ReLU())
        XCTAssertEqual(thrown(ModuleError.self) { try module.registerModule("a", ReLU()) }.map { "\($0)" }?
            .contains("already exists"), true)
        XCTAssertNotNil(thrown(ModuleError.self) { try module.registerParameter("a", nil) })
        XCTAssertNotNil(thrown(ModuleError.self) { try module.registerBuffer("x.y", nil) })
        XCTAssertNotNil(thrown(ModuleError.self) { try module.registerModule("", ReLU()) })
        XCTAssertNotNil(thrown(ModuleError.self) { try module(Tensor([1])) })   // no forward
        XCTAssertNotNil(thrown(ModuleError.self) { try module.parameter("w") })
        XCTAssertNotNil(thrown(ModuleError.self) { try module.setBuffer("b", nil) })
    }

    func testTrainAndEvalRecurseAndChangeBehaviour() throws {
        var generator = RandomGenerator(seed: 0)
        let dropout = try Dropout(p: 0.5, generator: &generator)
        let model = try Sequential(Sequential(dropout), BatchNorm1d(3))
        XCTAssertTrue(model.modules().allSatisfy(\.training))
        model.eval()
        XCTAssertTrue(model.modules().allSatisfy { !$0.training })
        let x = GradientCheck.random([4, 3], seed: 1)
        // Evaluation: dropout is the identity and batch norm uses the initial running statistics (0, 1).
        assertElementsClose(try model(x).tensor!.scalars, x.scalars.map { $0 / (1 + 1e-5).squareRoot() })
        model.train()
        XCTAssertTrue(model.modules().allSatisfy(\.training))
        _ = try model(x)
        let dropped = try dropout(x).tensor!.scalars
        XCTAssertTrue(dropped.contains(0))
        XCTAssertTrue(zip(dropped, x.scalars).allSatisfy { $0 == 0 || abs($0 - 2 * $1) < 1e-6 })
        XCTAssertEqual((try model.module(at: "1") as? BatchNorm1d)?.numBatchesTracked, 1)
    }

    func testBatchNormMomentumNoneIsACumulativeAverage() throws {
        let bn = try BatchNorm1d(1, momentum: nil)
        for batch in [[1, 3], [5, 7], [0, 2]] as [[Float]] {
            _ = try bn(try Tensor(shape: [2, 1], scalars: batch))
        }
        XCTAssertEqual(bn.runningMean?.scalars[0] ?? 0, (2 + 6 + 1) / 3, accuracy: 1e-6)
        XCTAssertEqual(bn.runningVar?.scalars[0] ?? 0, 2, accuracy: 1e-6)   // unbiased variance 2 each time
        XCTAssertEqual(bn.numBatchesTracked, 3)
        let noStats = try BatchNorm2d(2, affine: false, trackRunningStats: false)
        XCTAssertTrue(noStats.stateDict().names.isEmpty)
        noStats.eval()
        let y = try noStats(GradientCheck.random([2, 2, 2, 2], seed: 1)).tensor!   // batch statistics in eval
        XCTAssertEqual(y.scalars.reduce(0, +), 0, accuracy: 1e-4)
    }

    func testDefaultInitializationIsPyTorchsAndSeeded() throws {
        var a = RandomGenerator(seed: 42), b = RandomGenerator(seed: 42)
        let l1 = try Linear(100, 20, generator: &a), l2 = try Linear(100, 20, generator: &b)
        XCTAssertEqual(l1.weight.data, l2.weight.data)
        XCTAssertEqual(l1.bias?.data, l2.bias?.data)
        let bound: Float = 1 / 10
        XCTAssertTrue(l1.weight.data.scalars.allSatisfy { abs($0) <= bound })
        XCTAssertTrue(l1.bias!.data.scalars.allSatisfy { abs($0) <= bound })
        XCTAssertGreaterThan(l1.weight.data.scalars.map(abs).max()!, 0.09)   // the full range is used
        let conv = try Conv2d(4, 8, kernelSize: 3, groups: 2, bias: false, generator: &a)
        XCTAssertEqual(conv.weight.data.shape, [8, 2, 3, 3])
        XCTAssertNil(conv.bias)
        XCTAssertTrue(conv.weight.data.scalars.allSatisfy { abs($0) <= 1 / Float(18).squareRoot() })
        XCTAssertEqual(conv.stateDict().names, ["weight"])
        XCTAssertNotNil(thrown(QuantizationError.self) { try Conv2d(3, 4, kernelSize: 3, groups: 2, generator: &a) })
    }

    func testDescriptionPrintsTheTreeLikePyTorch() throws {
        var generator = RandomGenerator(seed: 0)
        let model = try Sequential(Linear(784, 256, generator: &generator), ReLU(),
                                   Conv2d(1, 16, kernelSize: 3, padding: 1, generator: &generator), BatchNorm2d(16),
                                   MaxPool2d(kernelSize: 2))
        XCTAssertEqual(model.description, """
            Sequential(
              (0): Linear(in_features=784, out_features=256, bias=True)
              (1): ReLU()
              (2): Conv2d(1, 16, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
              (3): BatchNorm2d(16, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
              (4): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
            )
            """)
    }

    func testHooksSeeAndReplaceValues() throws {
        let relu = ReLU()
        var seen: [[Float]] = []
        let handle = relu.registerForwardHook { _, _, output in
            seen.append(output.tensor!.scalars)
            return nil
        }
        let pre = relu.registerForwardPreHook { _, input in try input * 2 }
        XCTAssertEqual(try relu(Tensor([-1, 3])).tensor?.scalars, [0, 6])
        XCTAssertEqual(seen, [[0, 6]])
        relu.removeHook(handle)
        relu.removeHook(pre)
        XCTAssertEqual(try relu(Tensor([-1, 3])).tensor?.scalars, [0, 3])
        XCTAssertEqual(seen.count, 1)
    }

    func testFloatFunctionalObservesThroughItsReplaceableChild() throws {
        let functional = FloatFunctional()
        final class Recorder: Module {
            var values: [[Float]] = []
            override func forward(_ input: Variable) throws -> Variable {
                values.append(input.tensor!.scalars)
                return input
            }
        }
        let recorder = Recorder()
        try functional.replaceChild(at: "activation_post_process", with: recorder)
        let a = Variable(Tensor([1, -2])), b = Variable(Tensor([3, 1]))
        XCTAssertEqual(try functional.add(a, b).tensor?.scalars, [4, -1])
        XCTAssertEqual(try functional.mul(a, b).tensor?.scalars, [3, -2])
        XCTAssertEqual(try functional.addReLU(a, b).tensor?.scalars, [4, 0])
        XCTAssertEqual(try functional.cat([a, b]).tensor?.scalars, [1, -2, 3, 1])
        XCTAssertEqual(try functional.addScalar(a, 1).tensor?.scalars, [2, -1])
        XCTAssertEqual(try functional.mulScalar(a, 2).tensor?.scalars, [2, -4])
        XCTAssertEqual(recorder.values, [[4, -1], [3, -2], [4, 0], [1, -2, 3, 1]])   // scalar ops not observed
        XCTAssertNotNil(thrown(ModuleError.self) { try functional(a) })
    }

    func testQuantizedPayloadErrorsNameTheModule() throws {
        var generator = RandomGenerator(seed: 0)
        let model = try Sequential(named: [("features", Sequential(ReLU(), Linear(4, 2, generator: &generator)))])
        let q = try GradientCheck.random([1, 4], seed: 1).quantized(scale: 0.01, zeroPoint: 128, dtype: .quint8)
        let error = thrown(QuantizationError.self) { try model(Variable(q)) }
        guard case let .invalidOperand(operation, reason)? = error else { return XCTFail("\(String(describing: error))") }
        XCTAssertEqual(operation, "features.1 (Linear)")
        XCTAssertTrue(reason.contains("quantized quint8"), reason)
        XCTAssertTrue(reason.contains("DeQuantStub"), reason)
        // Shape errors name the module too.
        let shape = thrown(QuantizationError.self) { try model(Tensor<Float>(shape: [1, 3], scalars: [1, 2, 3])) }
        XCTAssertEqual(shape.flatMap { if case let .invalidOperand(op, _) = $0 { return op } else { return nil } },
                       "features.1 (Linear)")
    }

    func testQuantizedPassThroughModulesKeepParameters() throws {
        let x = try Tensor<Float>(shape: [1, 1, 2, 4], scalars: [-0.5, 0.25, 1, -1, 0.75, 0.5, -0.25, 2])
        let q = try x.quantized(scale: 0.25, zeroPoint: 4, dtype: .quint8)
        let relu = try ReLU()(Variable(q)).quantizedTensor!
        XCTAssertEqual(relu.dequantized().scalars, x.scalars.map { max($0, 0) })
        XCTAssertEqual(relu.scale, 0.25)
        XCTAssertEqual(relu.zeroPoint, 4)
        let pooled = try MaxPool2d(kernelSize: 2)(Variable(q)).quantizedTensor!
        XCTAssertEqual(pooled.dequantized().scalars, [0.75, 2])
        let flat = try Flatten()(Variable(pooled)).quantizedTensor!
        XCTAssertEqual(flat.shape, [1, 2])
        XCTAssertTrue(try Identity()(Variable(q)).isQuantized)
        let dropout = try { var g = RandomGenerator(seed: 0); return try Dropout(generator: &g) }()
        dropout.eval()
        XCTAssertTrue(try dropout(Variable(q)).isQuantized)
        // Sigmoid runs on quantized tensors with PyTorch's fixed output parameters; Softmax stays float only.
        XCTAssertEqual(try Sigmoid()(Variable(q)).quantizedTensor?.scale, 1.0 / 256)
        XCTAssertNotNil(thrown(QuantizationError.self) { try Softmax()(Variable(q)) })
    }

    func testParametersAreDeduplicatedButStateDictListsSharedNames() throws {
        var generator = RandomGenerator(seed: 0)
        let shared = try Linear(2, 2, generator: &generator)
        let model = try Sequential(shared, ReLU(), shared)
        XCTAssertEqual(model.parameters().count, 2)
        XCTAssertEqual(model.namedModules().count, 3)
        XCTAssertEqual(model.stateDict().names, ["0.weight", "0.bias", "2.weight", "2.bias"])
        model.zeroGrad()
        XCTAssertNil(shared.weight.grad)
    }
}
