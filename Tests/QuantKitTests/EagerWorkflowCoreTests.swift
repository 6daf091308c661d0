import QuantKit
import XCTest

/// The eager-mode core: qconfig propagation and its precedence, stubs and `QuantWrapper`, where `prepare` puts
/// observers, observer modules with fake quantization on the autograd tape, and the workflow errors.
final class EagerWorkflowCoreTests: XCTestCase {
    private func mlp(seed: UInt64 = 1) throws -> Sequential {
        var generator = RandomGenerator(seed: seed)
        return try Sequential(named: [
            ("quant", QuantStub()), ("fc1", Linear(4, 8, generator: &generator)), ("relu", ReLU()),
            ("fc2", Linear(8, 3, generator: &generator)), ("dequant", DeQuantStub()),
        ])
    }

    private func names(_ model: Module) -> [String: String?] {
        Dictionary(uniqueKeysWithValues: model.namedModules().map { ($0.path, $0.module.qconfig?.name) })
    }

    func testPropagationPrecedenceOwnOverNameOverTypeOverParent() throws {
        let model = try mlp()
        var mapping = QConfigMapping(global: .default)
        mapping.setObjectType(Linear.self, .defaultPerChannel)
        mapping.setModuleName("fc2", .defaultQConfig(backend: .qnnpack))
        try (model.module(at: "fc1")).qconfig = .defaultDynamic       // own beats the type entry
        try propagateQConfig(model, mapping)
        let got = names(model)
        XCTAssertEqual(got[""], "default_qconfig")
        XCTAssertEqual(got["quant"], "default_qconfig")
        XCTAssertEqual(got["relu"], "default_qconfig")
        XCTAssertEqual(got["fc1"], "default_dynamic_qconfig")
        XCTAssertEqual(got["fc2"], "get_default_qconfig('qnnpack')")
        XCTAssertEqual(got["dequant"], "default_qconfig")
    }

    func testNilOptsASubtreeOutUnlessAChildHasItsOwn() throws {
        var generator = RandomGenerator(seed: 2)
        let head = try Sequential(named: [("fc", Linear(3, 3, generator: &generator)), ("act", ReLU())])
        let model = try Sequential(named: [("body", Linear(3, 3, generator: &generator)), ("head", head)])
        model.qconfig = .default
        head.qconfig = nil
        try (head.child("act")).qconfig = .defaultPerChannel
        try propagateQConfig(model)
        let got = names(model)
        XCTAssertEqual(got["body"], "default_qconfig")
        XCTAssertEqual(got["head"], .some(nil))
        XCTAssertEqual(got["head.fc"], .some(nil))
        XCTAssertEqual(got["head.act"], "default_per_channel_qconfig")
        XCTAssertTrue(head.hasAssignedQConfig)
        head.removeQConfig()
        XCTAssertFalse(head.hasAssignedQConfig)
    }

    func testNameEntryForAMissingModuleThrows() throws {
        let model = try mlp()
        var mapping = QConfigMapping(global: .default)
        mapping.setModuleName("fc3", nil)
        let error = thrown(ModuleError.self) { try propagateQConfig(model, mapping) }
        XCTAssertEqual(error.map { "\($0)" }?.contains("fc3"), true)
    }

    func testPrepareObservesStubsAndLayersButNotReLUOrDeQuantStub() throws {
        let model = try mlp()
        try prepare(model, config: .default)
        let observed = model.namedModules().filter { $0.module is ObserverModule }.map(\.path)
        XCTAssertEqual(observed, ["quant.activation_post_process", "fc1.activation_post_process",
                                  "fc2.activation_post_process"])
        // Calibration: observers see the outputs.
        let x = try Tensor<Float>(shape: [5, 4], scalars: (0..<20).map { Float($0) / 10 - 1 })
        let y = try model(x)
        XCTAssertFalse(y.isQuantized)
        let quantObserver = try model.module(at: "quant").activationPostProcess
        XCTAssertEqual(quantObserver.observedCount, 1)
        let parameters = try quantObserver.calculateQParams()
        // MinMax quint8 0...127 on [-1, 0.9]: scale = 1.9 / 127, zero point = round(1 / scale).
        XCTAssertEqual(parameters.scale, Float(1.9) / 127, accuracy: 1e-6)
        XCTAssertEqual(parameters.zeroPoint, 67)
    }

    func testQuantWrapperWrapsAndCopiesTheQConfig() throws {
        var generator = RandomGenerator(seed: 3)
        let inner = try Linear(2, 2, generator: &generator)
        inner.qconfig = .default
        let wrapper = try QuantWrapper(inner)
        XCTAssertEqual(wrapper.namedChildren.map(\.name), ["quant", "dequant", "module"])
        XCTAssertEqual(wrapper.qconfig?.name, "default_qconfig")
        XCTAssertTrue(try wrapper.child("quant") is QuantStub)
        XCTAssertTrue(try wrapper.child("dequant") is DeQuantStub)
        let x = try Tensor<Float>(shape: [1, 2], scalars: [1, 2])
        XCTAssertEqual(try wrapper(x).tensor, try inner(x).tensor)
    }

    func testPrepareWithoutAnyQConfigThrows() throws {
        let error = thrown(QuantizationWorkflowError.self) { try prepare(try mlp()) }
        XCTAssertEqual(error, .noQConfig(model: "Sequential"))
        XCTAssertTrue(error.map { "\($0)" }?.contains("qconfig") ?? false)
    }

    func testConvertBeforeCalibrationThrows() throws {
        let model = try mlp()
        try prepare(model, config: .default)
        let error = thrown(QuantizationWorkflowError.self) { try convert(model) }
        guard case .notCalibrated(let module)? = error else { return XCTFail("got \(String(describing: error))") }
        XCTAssertTrue(module.contains("quant"), module)
    }

    func testStubsConvertToQuantizeAndDeQuantize() throws {
        let model = try Sequential(named: [("quant", QuantStub()), ("dequant", DeQuantStub())])
        try prepare(model, config: .default)
        let x = try Tensor<Float>(shape: [4], scalars: [-1, 0, 0.5, 2])
        _ = try model(x)
        try convert(model)
        let quantize = try model.child("quant", as: Quantize.self)
        XCTAssertTrue(try model.child("dequant") is DeQuantize)
        XCTAssertEqual(quantize.scale, 3 / 127, accuracy: 1e-7)
        XCTAssertEqual(quantize.zeroPoint, 42)
        XCTAssertNil(try? quantize.child("activation_post_process"))
        XCTAssertFalse(model.modules().contains { $0.hasAssignedQConfig })
        let expected = try x.quantized(scale: quantize.scale, zeroPoint: 42, dtype: .quint8).dequantized()
        XCTAssertEqual(try model(x).tensor, expected)
        // A float model part after DeQuantize rejects nothing; a quantized tensor into Quantize is refused.
        let error = thrown(QuantizationError.self) {
            try quantize(Variable(try x.quantized(scale: 0.1, zeroPoint: 0, dtype: .quint8)))
        }
        XCTAssertNotNil(error)
    }

    func testUserHooksSurviveConvertAndObserverHooksDoNot() throws {
        let model = try Sequential(named: [("quant", QuantStub()), ("dequant", DeQuantStub())])
        var calls = 0
        try model.child("quant").registerForwardHook { _, _, _ in calls += 1; return nil }
        try prepare(model, config: .default)
        _ = try model(try Tensor<Float>(shape: [2], scalars: [0, 1]))
        XCTAssertEqual(calls, 1)
        try convert(model)
        _ = try model(try Tensor<Float>(shape: [2], scalars: [0, 1]))
        XCTAssertEqual(calls, 2)
        XCTAssertTrue(try model.child("quant") is Quantize)
    }

    func testObserverModuleFakeQuantizesWithAStraightThroughGradient() throws {
        let fakeQuantize = try FakeQuantize(observer: FixedQParamsObserver(scale: 0.5, zeroPoint: 0))
        let module = ObserverModule(.fakeQuantize(fakeQuantize))
        let x = Variable(try Tensor(shape: [4], scalars: [0.2, 0.3, 200, -1]), requiresGrad: true)
        let y = try module(x)
        XCTAssertEqual(y.tensor?.scalars, [0, 0.5, 127.5, 0])
        try Functional.sum(y).backward()
        // In range for 0.2, 0.3 (rounded values 0 and 1); 200 -> 400 and -1 -> -2 are clamped.
        XCTAssertEqual(x.grad?.scalars, [1, 1, 0, 0])
        XCTAssertEqual(module.observedCount, 1)
        XCTAssertEqual(try module.calculateQParams().scale, 0.5)
        // A quantized tensor cannot be observed.
        XCTAssertNotNil(thrown(QuantizationError.self) {
            try module(Variable(try Tensor<Float>(shape: [1], scalars: [1]).quantized(scale: 1, zeroPoint: 0,
                                                                                     dtype: .quint8)))
        })
    }

    func testUncalibratedObserverModuleNamesItsOwner() throws {
        let model = try mlp()
        try prepare(model, config: .default)
        let error = thrown(QuantizationWorkflowError.self) {
            try model.module(at: "fc1.activation_post_process", ).activationPostProcessParameters()
        }
        XCTAssertEqual(error, .notCalibrated(module: "fc1"))
    }
}

private extension Module {
    func activationPostProcessParameters() throws -> QuantizationParameters {
        guard let observer = self as? ObserverModule else { throw ModuleError.notFound(path: "", kind: "", available: []) }
        return try observer.calculateQParams()
    }
}

extension EagerWorkflowCoreTests {
    func testQATModuleWithoutQConfigNamesTheLayer() throws {
        var generator = RandomGenerator(seed: 4)
        let model = try Sequential(named: [("fc", Linear(2, 2, generator: &generator))])
        let error = thrown(QuantizationWorkflowError.self) { try QATLinear(from: try model.child("fc", as: Linear.self)) }
        XCTAssertEqual(error, .missingQConfig(module: "fc (Linear)"))
    }
}

extension EagerWorkflowCoreTests {
    func testLearnableFakeQuantizeTrainsItsScaleAsAParameter() throws {
        let lsq = try LearnableFakeQuantize(observer: MinMaxObserver(dtype: .quint8), scale: 0.1, zeroPoint: 3)
        lsq.enableParamLearning()
        let module = ObserverModule(.fakeQuantize(lsq))
        XCTAssertEqual(module.namedParameters().map(\.path), ["scale", "zero_point"])
        let values = try Tensor<Float>(shape: [6], scalars: [-0.5, 0.04, 0.26, 1.3, 30, 0.11])
        let x = Variable(values, requiresGrad: true)
        try Functional.sum(try module(x)).backward()
        let expected = try fakeQuantizeLearnablePerTensorAffineBackward(
            Tensor(shape: [6], scalars: Array(repeating: 1, count: 6)), values, scale: 0.1, zeroPoint: 3,
            quantMin: 0, quantMax: 255, gradFactor: 1)
        let parameters = module.parameters()
        XCTAssertEqual(parameters[0].grad?.scalars, expected.scale)
        XCTAssertEqual(parameters[1].grad?.scalars, expected.zeroPoint)
        XCTAssertEqual(x.grad?.scalars, expected.input.scalars)
        // An optimizer step moves the scale, and the next forward uses it.
        try SGD(parameters, learningRate: 1e-5).step()
        let stepped = try XCTUnwrap(parameters[0].data.scalars.first)
        XCTAssertEqual(stepped, 0.1 - 1e-5 * expected.scale[0], accuracy: 1e-7)
        XCTAssertGreaterThan(stepped, 0)
        _ = try module(Variable(values))
        XCTAssertEqual(lsq.scale, [stepped])
    }
}
