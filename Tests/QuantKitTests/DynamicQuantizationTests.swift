import Foundation
import QuantKit
import XCTest

/// `quantizeDynamic` and the dynamic quantized linear modules: module trees after conversion (int8 per tensor, per
/// channel, fp16, fused LinearReLU), outputs equal to the operator-level `dynamicQuantizedLinear` /
/// `halfPrecisionLinear` on hand-quantized weights exactly, accuracy close to fp32, opt-outs, state dicts, errors.
final class DynamicQuantizationTests: XCTestCase {
    private func mlp(seed: UInt64 = 3) throws -> Sequential {
        var generator = RandomGenerator(seed: seed)
        return try Sequential(named: [
            ("fc1", Linear(16, 32, generator: &generator)), ("relu", ReLU()),
            ("fc2", Linear(32, 8, generator: &generator)),
        ])
    }

    private func input(rows: Int = 5, features: Int = 16, seed: UInt64 = 9) throws -> Tensor<Float> {
        var generator = RandomGenerator(seed: seed)
        return try generator.uniform(shape: [rows, features], in: -2..<2)
    }

    private func linear(_ model: Module, _ path: String) throws -> Linear {
        try XCTUnwrap(try model.module(at: path) as? Linear)
    }

    /// The weight as `from_float` quantizes it: observed by `observer`, quantized with the chosen parameters, the
    /// symmetric scheme stored as affine (PyTorch's `_quantize_weight`).
    private func handQuantized(_ weight: Tensor<Float>, perChannel: Bool) throws -> QuantizedTensor {
        var parameters: QuantizationParameters
        if perChannel {
            let observer = try PerChannelMinMaxObserver(chAxis: 0, dtype: .qint8, qscheme: .perChannelSymmetric)
            try observer.observe(weight)
            parameters = try observer.calculateQParams()
            parameters.qscheme = .perChannelAffine
        } else {
            let observer = try MinMaxObserver(dtype: .qint8, qscheme: .perTensorSymmetric)
            try observer.observe(weight)
            parameters = try observer.calculateQParams()
            parameters.qscheme = .perTensorAffine
        }
        return try weight.quantized(with: parameters)
    }

    private func relu(_ x: Tensor<Float>) throws -> Tensor<Float> {
        try Tensor(shape: x.shape, scalars: x.scalars.map { $0 < 0 ? 0 : $0 })
    }

    /// ||a - b|| / ||b||.
    private func relativeError(_ a: Tensor<Float>, _ b: Tensor<Float>) -> Float {
        var diff: Float = 0, norm: Float = 0
        for (x, y) in zip(a.scalars, b.scalars) { diff += (x - y) * (x - y); norm += y * y }
        return (diff / max(norm, 1e-30)).squareRoot()
    }

    private func output(_ model: Module, _ x: Tensor<Float>) throws -> Tensor<Float> {
        try XCTUnwrap(try model(x).tensor)
    }

    // MARK: Conversion and exact outputs

    func testInt8PerTensorSwapsLinearsAndMatchesTheOperatorExactly() throws {
        let reference = try mlp()
        let model = try mlp()
        let x = try input()
        let expectedFloat = try output(reference, x)

        XCTAssertTrue(try quantizeDynamic(model) === model)
        XCTAssertFalse(model.training)
        let fc1 = try XCTUnwrap(try model.module(at: "fc1") as? DynamicQuantizedLinear)
        let fc2 = try XCTUnwrap(try model.module(at: "fc2") as? DynamicQuantizedLinear)
        XCTAssertTrue(type(of: fc1) == DynamicQuantizedLinear.self)
        XCTAssertTrue(try model.module(at: "relu") is ReLU)
        XCTAssertEqual(fc1.dtype, .qint8)
        XCTAssertTrue(fc1.reduceRange)
        XCTAssertFalse(model.modules().contains { $0.hasAssignedQConfig })   // convert removes qconfigs
        XCTAssertEqual(fc1.extraDescription,
                       "in_features=16, out_features=32, dtype=torch.qint8, qscheme=torch.per_tensor_affine")
        XCTAssertTrue(model.description.contains("(fc2): DynamicQuantizedLinear(in_features=32, out_features=8"))

        // Hand-built: MinMax per-tensor symmetric weights, the operator with reduce_range as nnqd.Linear.
        let l1 = try linear(reference, "fc1"), l2 = try linear(reference, "fc2")
        let w1 = try handQuantized(l1.weight.data, perChannel: false)
        let w2 = try handQuantized(l2.weight.data, perChannel: false)
        XCTAssertEqual(fc1.quantizedWeight, w1)
        XCTAssertEqual(fc2.quantizedWeight, w2)
        XCTAssertEqual(fc1.bias, l1.bias?.data)
        let p1 = try PackedLinearWeight(weight: w1, bias: l1.bias?.data)
        let p2 = try PackedLinearWeight(weight: w2, bias: l2.bias?.data)
        let h = try relu(dynamicQuantizedLinear(x, p1, reduceRange: true))
        let expected = try dynamicQuantizedLinear(h, p2, reduceRange: true)
        let y = try output(model, x)
        XCTAssertEqual(y.shape, [5, 8])
        XCTAssertEqual(y.scalars, expected.scalars)
        XCTAssertLessThan(relativeError(y, expectedFloat), 0.03)
    }

    func testInt8PerChannelWeights() throws {
        let reference = try mlp()
        let model = try mlp()
        try quantizeDynamic(model, perChannel: true)
        let fc1 = try XCTUnwrap(try model.module(at: "fc1") as? DynamicQuantizedLinear)
        let fc2 = try XCTUnwrap(try model.module(at: "fc2") as? DynamicQuantizedLinear)
        let l1 = try linear(reference, "fc1"), l2 = try linear(reference, "fc2")
        let w1 = try handQuantized(l1.weight.data, perChannel: true)
        let w2 = try handQuantized(l2.weight.data, perChannel: true)
        XCTAssertEqual(fc1.quantizedWeight, w1)
        XCTAssertEqual(fc1.quantizedWeight?.qscheme, .perChannelAffine)
        XCTAssertEqual(fc1.quantizedWeight?.axis, 0)
        XCTAssertEqual(fc1.quantizedWeight?.scales.count, 32)
        XCTAssertEqual(fc2.quantizedWeight, w2)
        XCTAssertTrue(fc1.extraDescription.hasSuffix("qscheme=torch.per_channel_affine"))

        let x = try input(rows: 7, seed: 11)
        let h = try relu(dynamicQuantizedLinear(x, PackedLinearWeight(weight: w1, bias: l1.bias?.data)))
        let expected = try dynamicQuantizedLinear(h, PackedLinearWeight(weight: w2, bias: l2.bias?.data))
        let y = try output(model, x)
        XCTAssertEqual(y.scalars, expected.scalars)
        XCTAssertLessThan(relativeError(y, try output(reference, x)), 0.03)
    }

    func testFloat16WeightsMatchHalfPrecisionLinearExactly() throws {
        let reference = try mlp()
        let model = try mlp()
        try quantizeDynamic(model, dtype: .float16)
        let fc1 = try XCTUnwrap(try model.module(at: "fc1") as? DynamicQuantizedLinear)
        XCTAssertEqual(fc1.dtype, .float16)
        XCTAssertNil(fc1.quantizedWeight)
        XCTAssertNotNil(fc1.packedHalfWeight)
        XCTAssertEqual(fc1.extraDescription, "in_features=16, out_features=32, dtype=torch.float16")

        let l1 = try linear(reference, "fc1"), l2 = try linear(reference, "fc2")
        let p1 = try PackedHalfLinearWeight(weight: l1.weight.data, bias: l1.bias?.data)
        let p2 = try PackedHalfLinearWeight(weight: l2.weight.data, bias: l2.bias?.data)
        XCTAssertEqual(fc1.floatWeight, p1.weight())
        let x = try input(rows: 3, seed: 12)
        let expected = try halfPrecisionLinear(relu(halfPrecisionLinear(x, p1)), p2)
        let y = try output(model, x)
        XCTAssertEqual(y.scalars, expected.scalars)
        XCTAssertLessThan(relativeError(y, try output(reference, x)), 2e-3)

        // The state: weights stored as fp16, no scales.
        let state = model.stateDict()
        XCTAssertEqual(state.names, ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"])
        XCTAssertEqual(state.entries[0].dtype, .float16)
    }

    func testFusedLinearReLUBecomesDynamicQuantizedLinearReLU() throws {
        let reference = try mlp()
        let model = try mlp()
        let l1 = try linear(model, "fc1")
        try model.replaceChild(at: "fc1", with: LinearReLU(l1, ReLU()))
        try model.replaceChild(at: "relu", with: Identity())
        try quantizeDynamic(model)
        let fused = try XCTUnwrap(try model.module(at: "fc1") as? DynamicQuantizedLinearReLU)
        XCTAssertTrue(try model.module(at: "relu") is Identity)
        XCTAssertTrue(try model.module(at: "fc2") is DynamicQuantizedLinear)
        XCTAssertTrue(fused.namedChildren.isEmpty)

        let r1 = try linear(reference, "fc1"), r2 = try linear(reference, "fc2")
        let p1 = try PackedLinearWeight(weight: handQuantized(r1.weight.data, perChannel: false), bias: r1.bias?.data)
        let p2 = try PackedLinearWeight(weight: handQuantized(r2.weight.data, perChannel: false), bias: r2.bias?.data)
        let x = try input(rows: 4, seed: 13)
        let expected = try dynamicQuantizedLinear(dynamicQuantizedLinear(x, p1, relu: true), p2)
        XCTAssertEqual(try output(model, x).scalars, expected.scalars)

        // Also in fp16.
        let half = try mlp()
        try half.replaceChild(at: "fc1", with: LinearReLU(linear(half, "fc1"), ReLU()))
        try half.replaceChild(at: "relu", with: Identity())
        try quantizeDynamic(half, dtype: .float16)
        let halfFused = try XCTUnwrap(try half.module(at: "fc1") as? DynamicQuantizedLinearReLU)
        XCTAssertEqual(halfFused.dtype, .float16)
        let h1 = try PackedHalfLinearWeight(weight: r1.weight.data, bias: r1.bias?.data)
        let h2 = try PackedHalfLinearWeight(weight: r2.weight.data, bias: r2.bias?.data)
        XCTAssertEqual(try output(half, x).scalars,
                       try halfPrecisionLinear(halfPrecisionLinear(x, h1, relu: true), h2).scalars)
    }

    func testModulesWithoutQConfigStayFloatAndTheMappingOverloadMixesSchemes() throws {
        let reference = try mlp()
        let model = try mlp()
        try (model.module(at: "fc2")).qconfig = nil      // opted out: PyTorch's `model.fc2.qconfig = None`
        try quantizeDynamic(model)
        XCTAssertTrue(try model.module(at: "fc1") is DynamicQuantizedLinear)
        let fc2 = try model.module(at: "fc2")
        XCTAssertTrue(type(of: fc2) == Linear.self)
        XCTAssertEqual(try linear(model, "fc2").weight.data, try linear(reference, "fc2").weight.data)

        // Only the listed types: ReLU is never touched; a model without Linear is returned unchanged.
        let noLinear = try Sequential(ReLU(), Flatten())
        try quantizeDynamic(noLinear)
        XCTAssertTrue(try noLinear.child(at: 0) is ReLU)

        // A QConfigMapping (PyTorch's dict qconfig_spec): by type and by name.
        let mixed = try mlp()
        var config = QConfigMapping()
        config.setObjectType(Linear.self, .perChannelDynamic)
        config.setModuleName("fc2", .float16Dynamic)
        try quantizeDynamic(mixed, config: config)
        let m1 = try XCTUnwrap(try mixed.module(at: "fc1") as? DynamicQuantizedLinear)
        let m2 = try XCTUnwrap(try mixed.module(at: "fc2") as? DynamicQuantizedLinear)
        XCTAssertEqual(m1.quantizedWeight?.qscheme, .perChannelAffine)
        XCTAssertEqual(m2.dtype, .float16)

        // Direct construction from a Linear without qconfig uses PyTorch's default_dynamic_qconfig.
        let direct = try DynamicQuantizedLinear(from: linear(reference, "fc1"))
        XCTAssertEqual(direct.quantizedWeight,
                       try handQuantized(linear(reference, "fc1").weight.data, perChannel: false))
    }

    func testAccuracyOnDigitsStaysCloseToFloat() throws {
        let (train, test) = Digits.trainTestSplit(try Digits.load(contentsOf: DataFixtures.digits))
        var generator = RandomGenerator(seed: 0)
        let model = try ReferenceModels.mlp(inputFeatures: 64, hidden: [64], generator: &generator)
        let loader = try DataLoader(train, batchSize: 32, shuffle: true, generator: RandomGenerator(seed: 1))
        _ = try Trainer(model: model, optimizer: try Adam(model.parameters(), learningRate: 3e-3), progress: .silent)
            .fit(loader, epochs: 6)
        let testLoader = try DataLoader(test, batchSize: 360)
        let float = try evaluate(model, on: testLoader)
        XCTAssertGreaterThan(float.accuracy, 0.9)
        for (dtype, perChannel) in [(DynamicQuantizationType.qint8, false), (.qint8, true), (.float16, false)] {
            var again = RandomGenerator(seed: 0)
            let copy = try ReferenceModels.mlp(inputFeatures: 64, hidden: [64], generator: &again)
            try copy.loadStateDict(model.stateDict())
            try quantizeDynamic(copy, dtype: dtype, perChannel: perChannel)
            let quantized = try evaluate(copy, on: testLoader)
            let agreement = Double(zip(quantized.predictions, float.predictions).filter { $0 == $1 }.count) / 360
            XCTAssertGreaterThanOrEqual(quantized.accuracy, float.accuracy - 0.01, "\(dtype) \(perChannel)")
            XCTAssertGreaterThanOrEqual(agreement, 0.97, "\(dtype) perChannel \(perChannel)")
        }
    }

    // MARK: State dicts

    func testStateDictHoldsInt8WeightsAndLoadingRepacks() throws {
        let model = try mlp()
        try quantizeDynamic(model, perChannel: true)
        let state = model.stateDict()
        XCTAssertEqual(state.names, ["fc1.weight", "fc1.weight_scale", "fc1.weight_zero_point", "fc1.bias",
                                     "fc2.weight", "fc2.weight_scale", "fc2.weight_zero_point", "fc2.bias"])
        XCTAssertEqual(state.entries.map(\.dtype), [.int8, .float32, .int64, .float32, .int8, .float32, .int64,
                                                    .float32])
        XCTAssertEqual(state["fc1.weight_scale"]?.shape, [32])

        // Another model with other weights takes the state and then computes exactly the same.
        let other = try mlp(seed: 99)
        try quantizeDynamic(other, perChannel: true)
        let x = try input()
        XCTAssertNotEqual(try output(other, x).scalars, try output(model, x).scalars)
        try other.loadStateDict(state)
        XCTAssertEqual(try output(other, x).scalars, try output(model, x).scalars)
        XCTAssertEqual(other.stateDict(), state)

        // Through a safetensors file in memory: int8 stays I8.
        let file = try SafeTensors(state)
        XCTAssertEqual(file["fc1.weight"]?.dtype, .int8)
        XCTAssertEqual(file["fc1.weight_zero_point"]?.dtype, .int64)
        try other.loadStateDict(StateDict(file))
        XCTAssertEqual(try output(other, x).scalars, try output(model, x).scalars)

        // A value that is not an int8 integer is refused when repacking.
        var bad = state
        var weight = try XCTUnwrap(bad["fc1.weight"])
        weight = try Tensor(shape: weight.shape, scalars: [300] + weight.scalars.dropFirst())
        bad["fc1.weight"] = weight
        guard case .invalidModelArchive(let module, let reason)? = thrown(SerializationError.self, {
            try other.loadStateDict(bad)
        }) else { return }
        XCTAssertEqual(module, "fc1")
        XCTAssertTrue(reason.contains("300"), reason)
    }

    // MARK: Errors

    func testErrors() throws {
        let model = try mlp()
        guard case .unsupportedQConfig(_, let reason)? = thrown(QuantizationWorkflowError.self, {
            try quantizeDynamic(model, types: [Conv2d.self])
        }) else { return }
        XCTAssertTrue(reason.contains("Conv2d") && reason.contains("Linear"), reason)
        XCTAssertNotNil(thrown(QuantizationWorkflowError.self) {
            try quantizeDynamic(model, dtype: .float16, perChannel: true)
        })
        XCTAssertTrue(try model.module(at: "fc1") is Linear)   // nothing changed

        // A weight qconfig that is neither qint8 nor fp16.
        let l = try linear(model, "fc1")
        l.qconfig = QConfig(name: "fp32 weights", activation: { .observer(PlaceholderObserver.dynamicQuantization()) },
                            weight: { .observer(PlaceholderObserver(dtype: .float32)) })
        guard case .unsupportedQConfig(let module, _)? = thrown(QuantizationWorkflowError.self, {
            try quantizeDynamic(model)
        }) else { return }
        XCTAssertTrue(module.contains("fc1"), module)

        // Quantized input and wrong width name the module.
        let quantized = try mlp()
        try quantizeDynamic(quantized)
        let q = try input().quantized(scale: 0.1, zeroPoint: 128, dtype: .quint8)
        guard case .invalidOperand(let operation, _)? = thrown(QuantizationError.self, {
            try quantized(Variable(q))
        }) else { return }
        XCTAssertTrue(operation.contains("fc1"), operation)
        guard case .invalidOperand(let operation2, _)? = thrown(QuantizationError.self, {
            try quantized(input(features: 15))
        }) else { return }
        XCTAssertTrue(operation2.contains("fc1 (DynamicQuantizedLinear)"), operation2)
    }
}
