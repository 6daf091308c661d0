import Foundation
import QuantKit
import XCTest

/// Post-training static quantization end to end: where `prepare` puts observers, what `convert` swaps in, a converted
/// model against a hand-built one from the same observers (bit for bit), the quantized modules' numerics
/// (QFunctional, batch norm, activations, pools), qconfig precedence, the error cases, and state-dict round trips.
final class StaticQuantizationTests: XCTestCase {
    // MARK: Models and helpers

    /// QuantStub -> Conv2d+ReLU (fused) -> depthwise Conv2d -> MaxPool2d -> Flatten -> Linear -> DeQuantStub.
    private func convNet(seed: UInt64) throws -> Sequential {
        var generator = RandomGenerator(seed: seed)
        return try Sequential(named: [
            ("quant", QuantStub()),
            ("conv", ConvReLU2d(Conv2d(2, 4, kernelSize: 3, padding: 1, generator: &generator), ReLU())),
            ("dw", Conv2d(4, 4, kernelSize: 3, stride: 1, padding: 1, groups: 4, generator: &generator)),
            ("pool", MaxPool2d(kernelSize: 2)),
            ("flatten", Flatten()),
            ("fc", Linear(36, 5, generator: &generator)),
            ("dequant", DeQuantStub()),
        ])
    }

    private func batch(_ seed: UInt64, shape: [Int] = [2, 2, 6, 6], range: Range<Float> = -1.5..<2) throws
        -> Tensor<Float>
    {
        var generator = RandomGenerator(seed: seed)
        return try generator.uniform(shape: shape, in: range)
    }

    private func activationObserver(_ qconfig: QConfig) throws -> any Observer {
        guard case let .observer(base) = try qconfig.activation(), let observer = base as? any Observer else {
            throw XCTSkip("the qconfig's activation is not a uniform observer")
        }
        return observer
    }

    private func typeNames(_ model: Module) -> [String: String] {
        Dictionary(uniqueKeysWithValues: model.namedModules().map { ($0.path, $0.module.typeName) })
    }

    /// Asserts the type name at each path, in order.
    private func assertTypes(_ model: Module, _ expected: KeyValuePairs<String, String>, line: UInt = #line) {
        let types = typeNames(model)
        for (path, type) in expected { XCTAssertEqual(types[path], type, path, line: line) }
    }

    private func observed(_ model: Module) -> [String] {
        model.namedModules().filter { $0.module is ObserverModule }.map(\.path)
    }

    // MARK: prepare / convert trees

    func testPrepareObservesStubLayersAndFusedUnitsOnly() throws {
        let model = try convNet(seed: 1)
        try prepare(model, config: .default)
        XCTAssertEqual(observed(model), ["quant.activation_post_process", "conv.activation_post_process",
                                         "dw.activation_post_process", "fc.activation_post_process"])
        // The members of the fused unit, pooling, Flatten and DeQuantStub get none.
        for path in ["conv.0", "conv.1", "pool", "flatten", "dequant"] {
            XCTAssertNil(try? model.module(at: path).child("activation_post_process"), path)
        }
        _ = try model(try batch(2))
        try convert(model, mapping: .defaultStatic)
        XCTAssertTrue(observed(model).isEmpty)
        assertTypes(model, [
            "quant": "Quantize", "conv": "QuantizedConvReLU2d", "dw": "QuantizedConv2d", "pool": "MaxPool2d",
            "flatten": "Flatten", "fc": "QuantizedLinear", "dequant": "DeQuantize",
        ])
    }

    // MARK: A converted model equals a hand-built quantized model

    private func assertConvertedMatchesHandBuilt(_ qconfig: QConfig, file: StaticString = #filePath,
                                                 line: UInt = #line) throws {
        let model = try convNet(seed: 7)
        let convFloat = try model.child("conv", as: ConvReLU2d.self).conv
        let dwFloat = try model.child("dw", as: Conv2d.self)
        let fcFloat = try model.child("fc", as: Linear.self)
        let calibration = [try batch(11), try batch(12, range: -2..<1.5)]

        // By hand: the same observers on the same float activations.
        let observers = try (0..<4).map { _ in try activationObserver(qconfig) }
        for x in calibration {
            let y1 = try Functional.relu(convFloat(x))
            let y2 = try dwFloat(y1)
            let y3 = try Functional.flatten(MaxPool2d(kernelSize: 2)(y2), startDimension: 1)
            let y4 = try fcFloat(y3)
            for (observer, value) in zip(observers, [Variable(x), y1, y2, y4]) { try observer.observe(value.tensor!) }
        }
        let p = try observers.map { try $0.calculateQParams() }
        let w1 = try quantizeWeight(convFloat.weight.data, observer: qconfig.weight(), module: "conv")
        let w2 = try quantizeWeight(dwFloat.weight.data, observer: qconfig.weight(), module: "dw")
        let w4 = try quantizeWeight(fcFloat.weight.data, observer: qconfig.weight(), module: "fc")
        let packed1 = try PackedConv2dWeight(weight: w1, bias: convFloat.bias?.data)
        let packed2 = try PackedConv2dWeight(weight: w2, bias: dwFloat.bias?.data, groups: 4)
        let packed4 = try PackedLinearWeight(weight: w4, bias: fcFloat.bias?.data)
        XCTAssertTrue(packed2.kernelName.hasPrefix("depthwise"), packed2.kernelName, file: file, line: line)

        // The workflow.
        try prepare(model, config: qconfig)
        for x in calibration { _ = try model(x) }
        try convert(model)

        let test = try batch(13, shape: [3, 2, 6, 6], range: -2.5..<2.5)
        let qx = try test.quantized(with: p[0])
        let q1 = try quantizedConv2d(qx, packed1, stride: 1, padding: 1, scale: p[1].scale, zeroPoint: p[1].zeroPoint,
                                     relu: true)
        let q2 = try quantizedConv2d(q1, packed2, stride: 1, padding: 1, scale: p[2].scale, zeroPoint: p[2].zeroPoint)
        let q3 = try Functional.flatten(MaxPool2d(kernelSize: 2)(Variable(q2)), startDimension: 1).quantizedTensor!
        let q4 = try quantizedLinear(q3, packed4, scale: p[3].scale, zeroPoint: p[3].zeroPoint)

        let conv = try model.child("conv", as: QuantizedConvReLU2d.self)
        let dw = try model.child("dw", as: QuantizedConv2d.self)
        let fc = try model.child("fc", as: QuantizedLinear.self)
        XCTAssertEqual(try model.child("quant", as: Quantize.self).scale, p[0].scale, file: file, line: line)
        XCTAssertEqual(conv.weight, w1, file: file, line: line)
        XCTAssertEqual(dw.weight, w2, file: file, line: line)
        XCTAssertEqual(dw.groups, 4, file: file, line: line)
        XCTAssertEqual(fc.weight, w4, file: file, line: line)
        XCTAssertEqual([conv.scale, dw.scale, fc.scale], [p[1].scale, p[2].scale, p[3].scale], file: file, line: line)
        XCTAssertEqual([conv.zeroPoint, dw.zeroPoint, fc.zeroPoint], [p[1].zeroPoint, p[2].zeroPoint, p[3].zeroPoint],
                       file: file, line: line)

        let y = try model(test)
        XCTAssertEqual(y.tensor, q4.dequantized(), file: file, line: line)
        // Up to the DeQuantStub the payloads are quantized and identical too.
        let partial = try Sequential(named: ["quant", "conv", "dw"].map { ($0, try model.child($0)) })
        XCTAssertEqual(try partial(test).quantizedTensor, q2, file: file, line: line)
        // And close to the float model.
        let reference = try fcFloat(Functional.flatten(MaxPool2d(kernelSize: 2)(dwFloat(Functional.relu(convFloat(test)))),
                                                       startDimension: 1)).tensor!
        let error = zip(y.tensor!.scalars, reference.scalars).map { abs($0 - $1) }.max() ?? 0
        let span = (reference.scalars.max() ?? 0) - (reference.scalars.min() ?? 0)
        XCTAssertLessThan(error, 0.1 * span, file: file, line: line)
    }

    func testConvertedModelMatchesHandBuiltModelExactlyPerTensor() throws {
        try assertConvertedMatchesHandBuilt(.default)
    }

    func testConvertedModelMatchesHandBuiltModelExactlyPerChannelHistogram() throws {
        try assertConvertedMatchesHandBuilt(.defaultQConfig(backend: .x86))
    }

    // MARK: Batch norm, FloatFunctional, activations in one model

    private final class BranchNet: Module {
        init(generator: inout RandomGenerator) throws {
            super.init()
            try registerModule("quant", QuantStub())
            try registerModule("conv", Conv2d(2, 3, kernelSize: 1, generator: &generator))
            try registerModule("bnrelu", BNReLU2d(BatchNorm2d(3), ReLU()))
            try registerModule("bn", BatchNorm2d(3))
            try registerModule("skip", FloatFunctional())
            try registerModule("relu6", ReLU6())
            try registerModule("hswish", Hardswish())
            try registerModule("pool", AdaptiveAvgPool2d(outputSize: 1))
            try registerModule("flatten", Flatten())
            try registerModule("fc", LinearReLU(Linear(3, 4, generator: &generator), ReLU()))
            try registerModule("dropout", Dropout(p: 0.5, generator: &generator))
            try registerModule("dequant", DeQuantStub())
        }

        override func forward(_ input: Variable) throws -> Variable {
            let x = try child("conv")(child("quant")(input))
            // The functional is looked up as a FloatFunctional: QFunctional is one, so this runs after convert.
            let sum = try child("skip", as: FloatFunctional.self).add(child("bnrelu")(x), child("bn")(x))
            let y = try child("pool")(child("hswish")(child("relu6")(sum)))
            return try child("dequant")(child("dropout")(child("fc")(child("flatten")(y))))
        }
    }

    private func setStatistics(_ bn: BatchNorm2d, mean: [Float], variance: [Float], weight: [Float], bias: [Float])
        throws
    {
        try bn.setBuffer("running_mean", Tensor(shape: [3], scalars: mean))
        try bn.setBuffer("running_var", Tensor(shape: [3], scalars: variance))
        bn.weight!.data = try Tensor(shape: [3], scalars: weight)
        bn.bias!.data = try Tensor(shape: [3], scalars: bias)
    }

    func testBranchNetObserversConvertedTypesAndAccuracy() throws {
        var generator = RandomGenerator(seed: 21)
        let model = try BranchNet(generator: &generator)
        try setStatistics(model.child("bnrelu", as: BNReLU2d.self).batchNorm, mean: [0.1, -0.2, 0.3],
                          variance: [0.5, 1.5, 0.8], weight: [1.2, 0.7, -0.9], bias: [0.1, 0.2, -0.1])
        try setStatistics(model.child("bn", as: BatchNorm2d.self), mean: [-0.1, 0.05, 0.2], variance: [0.9, 0.4, 1.1],
                          weight: [0.8, 1.1, 1.3], bias: [0, -0.3, 0.2])
        model.eval()
        try prepare(model, config: .default)
        XCTAssertEqual(observed(model), [
            "quant.activation_post_process", "conv.activation_post_process", "bnrelu.activation_post_process",
            "bn.activation_post_process", "skip.activation_post_process", "relu6.activation_post_process",
            "hswish.activation_post_process", "fc.activation_post_process",
        ])
        for path in ["bnrelu.0", "bnrelu.1", "fc.0", "pool", "flatten", "dropout", "dequant"] {
            XCTAssertNil(try? model.module(at: path).child("activation_post_process"), path)
        }
        let test = try batch(31, shape: [2, 2, 4, 4])
        let reference = try model(test).tensor!
        for seed in 32..<35 { _ = try model(try batch(UInt64(seed), shape: [2, 2, 4, 4])) }
        _ = try model(test)
        try convert(model)

        assertTypes(model, [
            "quant": "Quantize", "conv": "QuantizedConv2d", "bnrelu": "QuantizedBNReLU2d",
            "bn": "QuantizedBatchNorm2d", "skip": "QFunctional", "skip.activation_post_process": "Identity",
            "relu6": "QuantizedReLU6", "hswish": "QuantizedHardswish", "pool": "AdaptiveAvgPool2d",
            "fc": "QuantizedLinearReLU", "dropout": "Dropout", "dequant": "DeQuantize",
        ])
        XCTAssertTrue(observed(model).isEmpty)

        let y = try model(test).tensor!
        XCTAssertEqual(y.shape, reference.shape)
        let error = zip(y.scalars, reference.scalars).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThan(error, 0.05 * max(1, reference.scalars.map(abs).max() ?? 0), "\(y) vs \(reference)")
        XCTAssertTrue(y.scalars.allSatisfy { $0 >= 0 })   // the fused ReLU
        XCTAssertTrue(model.description.contains("(skip): QFunctional(\n    scale="), model.description)
        XCTAssertTrue(model.description.contains("(fc): QuantizedLinearReLU(in_features=3, out_features=4, scale="),
                      model.description)
    }

    func testQuantizedBatchNormFollowsPyTorchsFusedParameters() throws {
        let mean: [Float] = [0.25, -0.5], variance: [Float] = [0.3, 2.0]
        let weight: [Float] = [1.5, -0.75], bias: [Float] = [0.1, 0.4]
        let (scale, zeroPoint, eps): (Float, Int, Float) = (0.03, 100, 1e-5)
        let bn = try QuantizedBatchNorm2d(
            runningMean: Tensor(shape: [2], scalars: mean), runningVar: Tensor(shape: [2], scalars: variance),
            weight: Tensor(shape: [2], scalars: weight), bias: Tensor(shape: [2], scalars: bias), eps: eps,
            scale: scale, zeroPoint: zeroPoint)
        let bnrelu = try QuantizedBNReLU2d(
            runningMean: Tensor(shape: [2], scalars: mean), runningVar: Tensor(shape: [2], scalars: variance),
            weight: Tensor(shape: [2], scalars: weight), bias: Tensor(shape: [2], scalars: bias), eps: eps,
            scale: scale, zeroPoint: zeroPoint)
        let x = try batch(41, shape: [2, 2, 3, 3], range: -2..<2).quantized(scale: 0.02, zeroPoint: 120, dtype: .quint8)
        let y = try bn(Variable(x)).quantizedTensor!
        let yr = try bnrelu(Variable(x)).quantizedTensor!
        XCTAssertEqual(y.scale, scale)
        XCTAssertEqual(y.zeroPoint, zeroPoint)
        let q = x.intRepr()
        var expected: [Int32] = [], expectedReLU: [Int32] = []
        for (i, value) in q.enumerated() {
            let c = (i / 9) % 2
            let invSigma = Float(1.0 / Double((variance[c] + eps).squareRoot()))
            let alpha = Float(Double(invSigma * weight[c]) * (Double(Float(0.02)) / Double(scale)))
            let beta = Float(Double(bias[c] - mean[c] * invSigma * weight[c]) / Double(scale))
            let v = Int(fmaf(alpha, Float(Int(value) - 120), beta).rounded(.toNearestOrEven)) + zeroPoint
            expected.append(Int32(min(max(v, 0), 255)))
            expectedReLU.append(Int32(min(max(v, zeroPoint), 255)))
        }
        XCTAssertEqual(y.intRepr(), expected)
        XCTAssertEqual(yr.intRepr(), expectedReLU)
        // Within one step of quantize(bn(dequantize(x))).
        let dx = x.dequantized().scalars
        for (i, value) in dx.enumerated() {
            let c = (i / 9) % 2
            let real = (value - mean[c]) / (variance[c] + eps).squareRoot() * weight[c] + bias[c]
            XCTAssertLessThanOrEqual(abs(y.dequantized().scalars[i] - min(max(real, -3), 4.65)), scale * 1.01)
        }
    }

    // MARK: QFunctional

    private func reference(_ values: [Float], scale: Float, zeroPoint: Int) -> [Int32] {
        values.map { Int32(min(max(zeroPoint + Int(($0 * (1 / scale)).rounded(.toNearestOrEven)), 0), 255)) }
    }

    func testQFunctionalAddMulCatAddReLUFollowTheFormula() throws {
        let functional = try QFunctional(scale: 0.05, zeroPoint: 64)
        let a = try batch(51, shape: [2, 3], range: -2..<2).quantized(scale: 0.03, zeroPoint: 70, dtype: .quint8)
        let b = try batch(52, shape: [2, 3], range: -1..<3).quantized(scale: 0.02, zeroPoint: 40, dtype: .quint8)
        let (da, db) = (a.dequantized().scalars, b.dequantized().scalars)

        let sum = try functional.add(Variable(a), Variable(b)).quantizedTensor!
        XCTAssertEqual(sum.intRepr(), reference(zip(da, db).map { $0 + $1 }, scale: 0.05, zeroPoint: 64))
        XCTAssertEqual(sum.scale, 0.05)
        XCTAssertEqual(sum.zeroPoint, 64)
        let sumReLU = try functional.addReLU(Variable(a), Variable(b)).quantizedTensor!
        XCTAssertEqual(sumReLU.intRepr(), reference(zip(da, db).map { max($0 + $1, 0) }, scale: 0.05, zeroPoint: 64))
        XCTAssertTrue(sumReLU.intRepr().allSatisfy { $0 >= 64 })
        let product = try functional.mul(Variable(a), Variable(b)).quantizedTensor!
        XCTAssertEqual(product.intRepr(), reference(zip(da, db).map { $0 * $1 }, scale: 0.05, zeroPoint: 64))
        let joined = try functional.cat([Variable(a), Variable(b)], dimension: 1).quantizedTensor!
        XCTAssertEqual(joined.shape, [2, 6])
        let catValues = [Array(da[0..<3]), Array(db[0..<3]), Array(da[3..<6]), Array(db[3..<6])].flatMap { $0 }
        XCTAssertEqual(joined.intRepr(), reference(catValues, scale: 0.05, zeroPoint: 64))

        // A float operand is refused, naming the module.
        let error = thrown(QuantizationError.self) {
            try functional.add(Variable(a), Variable(try Tensor<Float>(shape: [2, 3], scalars: [0, 0, 0, 0, 0, 0])))
        }
        XCTAssertTrue("\(error.map { "\($0)" } ?? "")".contains("QuantStub"))
        XCTAssertThrowsError(try functional.forward(Variable(a)))
    }

    func testQFunctionalScalarOperationsDeriveTheirParametersAsPyTorch() throws {
        let functional = try QFunctional(scale: 0.05, zeroPoint: 64)
        let x = try Tensor<Float>(shape: [4], scalars: [-1, 0, 0.5, 2.3]).quantized(scale: 0.1, zeroPoint: 10,
                                                                                      dtype: .quint8)
        XCTAssertEqual(x.intRepr(), [0, 10, 15, 33])
        // c_q = 5, z - c_q = 5 fits: same integers, zero point 5.
        let shifted = try functional.addScalar(Variable(x), 0.5).quantizedTensor!
        XCTAssertEqual(shifted.intRepr(), x.intRepr())
        XCTAssertEqual(shifted.zeroPoint, 5)
        XCTAssertEqual(shifted.scale, 0.1)
        // c_q = 20, z - c_q = -10 < 0: s' = (255 + 10) / 255 * s, z' = 0, q' = lrintf((q + 10) * s / s').
        let stretched = try functional.addScalar(Variable(x), 2).quantizedTensor!
        let sPrime = Float(265.0 / 255.0 * Double(Float(0.1)))
        XCTAssertEqual(stretched.scale, sPrime)
        XCTAssertEqual(stretched.zeroPoint, 0)
        let multiplier = Float(0.1) * (1 / sPrime)
        XCTAssertEqual(stretched.intRepr(), [0, 10, 15, 33].map { Int32((Float($0 + 10) * multiplier).rounded(.toNearestOrEven)) })
        for (value, original) in zip(stretched.dequantized().scalars, x.dequantized().scalars) {
            XCTAssertEqual(value, original + 2, accuracy: sPrime)
        }
        // Positive, zero and negative multipliers.
        let doubled = try functional.mulScalar(Variable(x), 2).quantizedTensor!
        XCTAssertEqual(doubled.intRepr(), x.intRepr())
        XCTAssertEqual(doubled.scale, Float(2 * Double(Float(0.1))))
        XCTAssertEqual(doubled.zeroPoint, 10)
        let zeroed = try functional.mulScalar(Variable(x), 0).quantizedTensor!
        XCTAssertEqual(zeroed.intRepr(), [0, 0, 0, 0])
        XCTAssertEqual(zeroed.scale, 1)
        XCTAssertEqual(zeroed.zeroPoint, 0)
        let negated = try functional.mulScalar(Variable(x), -2).quantizedTensor!
        XCTAssertEqual(negated.intRepr(), [255, 245, 240, 222])
        XCTAssertEqual(negated.zeroPoint, 245)
        for (value, original) in zip(negated.dequantized().scalars, x.dequantized().scalars) {
            XCTAssertEqual(value, -2 * original, accuracy: 1e-5)
        }
        XCTAssertThrowsError(try functional.mulScalar(Variable(x), .nan))
    }

    // MARK: Activations and pools on quantized tensors

    func testActivationsAndPoolsOnQuantizedTensors() throws {
        let x = try Tensor<Float>(shape: [1, 1, 2, 4], scalars: [-3, -1, 0, 0.5, 1, 2, 6.5, 8])
            .quantized(scale: 0.5, zeroPoint: 8, dtype: .quint8)
        XCTAssertEqual(x.intRepr(), [2, 6, 8, 9, 10, 12, 21, 24])

        let sigmoid = try Sigmoid()(Variable(x)).quantizedTensor!
        XCTAssertEqual([sigmoid.scale, Float(sigmoid.zeroPoint)], [1.0 / 256, 0])
        XCTAssertEqual(sigmoid.intRepr(), reference(x.dequantized().scalars.map { 1 / (1 + exp(-$0)) },
                                                    scale: 1.0 / 256, zeroPoint: 0))
        let tanhOutput = try Tanh()(Variable(x)).quantizedTensor!
        XCTAssertEqual([tanhOutput.scale, Float(tanhOutput.zeroPoint)], [2.0 / 256, 128])
        XCTAssertEqual(tanhOutput.intRepr(), reference(x.dequantized().scalars.map { Foundation.tanh($0) },
                                                       scale: 2.0 / 256, zeroPoint: 128))
        let hardsigmoid = try Hardsigmoid()(Variable(x)).quantizedTensor!
        XCTAssertEqual(hardsigmoid.scale, 1.0 / 256)
        XCTAssertEqual(hardsigmoid.intRepr(), reference(x.dequantized().scalars.map { min(max($0 + 3, 0), 6) / 6 },
                                                        scale: 1.0 / 256, zeroPoint: 0))
        // ReLU6 (float module and quantized module) clamps the integers to [zp, quantize(6)] = [8, 20].
        XCTAssertEqual(try ReLU6()(Variable(x)).quantizedTensor!.intRepr(), [8, 8, 8, 9, 10, 12, 20, 20])
        XCTAssertEqual(try QuantizedReLU6()(Variable(x)).quantizedTensor, try ReLU6()(Variable(x)).quantizedTensor)
        XCTAssertEqual(try ReLU()(Variable(x)).quantizedTensor!.intRepr(), [8, 8, 8, 9, 10, 12, 21, 24])
        let hardswish = try QuantizedHardswish(scale: 0.25, zeroPoint: 3)(Variable(x)).quantizedTensor!
        XCTAssertEqual(hardswish.intRepr(), reference(x.dequantized().scalars.map { $0 * min(max($0 + 3, 0), 6) / 6 },
                                                      scale: 0.25, zeroPoint: 3))
        let gelu = try GELU()(Variable(x)).quantizedTensor!
        XCTAssertEqual([gelu.scale, Float(gelu.zeroPoint)], [0.5, 8])

        // Average pooling keeps the parameters and rounds the mean of (q - zp) half to even: windows [2, 6, 10, 12]
        // -> (-6 + -2 + 2 + 4) / 4 = -0.5 -> 0 (-> 8); [8, 9, 21, 24] -> (0 + 1 + 13 + 16) / 4 = 7.5 -> 8 (-> 16).
        let pooled = try AvgPool2d(kernelSize: 2)(Variable(x)).quantizedTensor!
        XCTAssertEqual(pooled.shape, [1, 1, 1, 2])
        XCTAssertEqual(pooled.intRepr(), [8, 16])
        XCTAssertEqual(pooled.scale, 0.5)
        XCTAssertEqual(pooled.zeroPoint, 8)
        // Means of 1.5 and 2.5 both give 2.
        let ties = try QuantizedTensor(intRepr: Tensor<UInt8>(shape: [1, 1, 1, 4], scalars: [1, 2, 2, 3]), scale: 1,
                                       zeroPoint: 0)
        XCTAssertEqual(try AvgPool2d(kernelSize: Size2d(height: 1, width: 2))(Variable(ties)).quantizedTensor!.intRepr(),
                       [2, 2])
        let global = try AdaptiveAvgPool2d(outputSize: 1)(Variable(x)).quantizedTensor!
        XCTAssertEqual(global.shape, [1, 1, 1, 1])
        // (-6 - 2 + 0 + 1 + 2 + 4 + 13 + 16) / 8 = 3.5 -> 4 (-> 12).
        XCTAssertEqual(global.intRepr(), [12])
        XCTAssertEqual(try MaxPool2d(kernelSize: 2)(Variable(x)).quantizedTensor!.intRepr(), [12, 24])
        XCTAssertEqual(try Flatten()(Variable(x)).quantizedTensor!.shape, [1, 8])
        XCTAssertEqual(try Identity()(Variable(x)).quantizedTensor, x)
        var generator = RandomGenerator(seed: 1)
        let dropout = try Dropout(p: 0.5, generator: &generator)
        dropout.eval()
        XCTAssertEqual(try dropout(Variable(x)).quantizedTensor, x)

        // Softmax stays float only, with a message that says what to do.
        let error = thrown(QuantizationError.self) { try Softmax(dimension: 1)(Variable(x)) }
        let message = error.map { "\($0)" } ?? ""
        XCTAssertTrue(message.contains("Softmax") && message.contains("DeQuantStub"), message)
    }

    // MARK: qconfig precedence and the error cases

    func testQConfigPrecedenceDecidesWhatIsSwapped() throws {
        var generator = RandomGenerator(seed: 61)
        let head = try Sequential(named: [("fc", Linear(3, 3, generator: &generator))])
        let model = try Sequential(named: [
            ("quant", QuantStub()), ("fc1", Linear(4, 4, generator: &generator)),
            ("fc2", Linear(4, 4, generator: &generator)), ("fc3", Linear(4, 3, generator: &generator)),
            ("head", head), ("dequant", DeQuantStub()),
        ])
        try model.child("fc3").qconfig = .defaultPerChannel                // own: beats the type entry
        head.qconfig = nil                                                // a subtree opted out
        var mapping = QConfigMapping(global: .default)
        mapping.setObjectType(Linear.self, nil)                           // type: Linear stays float...
        mapping.setModuleName("fc2", .default)                            // ...unless named
        try prepare(model, config: mapping)
        XCTAssertEqual(observed(model), ["quant.activation_post_process", "fc2.activation_post_process",
                                         "fc3.activation_post_process"])
        _ = try model(try batch(62, shape: [2, 4]))
        try convert(model)
        assertTypes(model, ["fc1": "Linear", "fc2": "QuantizedLinear", "fc3": "QuantizedLinear", "head.fc": "Linear"])
        XCTAssertEqual(try model.child("fc2", as: QuantizedLinear.self).weight.qscheme, .perTensorAffine)
        XCTAssertEqual(try model.child("fc3", as: QuantizedLinear.self).weight.qscheme, .perChannelAffine)
        XCTAssertTrue(try model.child("fc3").description.contains("qscheme=torch.per_channel_affine"))

        // The float fc1 now receives the quantized output of Quantize: a clear error naming it.
        let error = thrown(QuantizationError.self) { try model(try batch(63, shape: [2, 4])) }
        let message = error.map { "\($0)" } ?? ""
        XCTAssertTrue(message.contains("fc1 (Linear)") && message.contains("dequantize"), message)
    }

    func testFloatTensorIntoQuantizedLinearThrowsNamingTheModule() throws {
        let model = try convNet(seed: 3)
        try prepare(model, config: .default)
        _ = try model(try batch(71))
        try convert(model)
        let error = thrown(QuantizationError.self) { try model.child("fc")(try batch(72, shape: [1, 36])) }
        let message = error.map { "\($0)" } ?? ""
        XCTAssertTrue(message.contains("fc (QuantizedLinear)") && message.contains("QuantStub"), message)
        // A quantized tensor of the wrong width names the module and the operator.
        let wrong = try batch(73, shape: [1, 35]).quantized(scale: 0.1, zeroPoint: 0, dtype: .quint8)
        let shapeError = thrown(QuantizationError.self) { try model.child("fc")(Variable(wrong)) }
        XCTAssertTrue((shapeError.map { "\($0)" } ?? "").contains("quantized::linear"))
    }

    func testPrepareWithoutQConfigConvertUncalibratedAndConvertUnpreparedThrow() throws {
        XCTAssertEqual(thrown(QuantizationWorkflowError.self) { try prepare(try convNet(seed: 4)) },
                       .noQConfig(model: "Sequential"))

        let uncalibrated = try convNet(seed: 5)
        try prepare(uncalibrated, config: .default)
        guard case .notCalibrated? = thrown(QuantizationWorkflowError.self, { try convert(uncalibrated) }) else {
            return XCTFail("expected notCalibrated")
        }

        let unprepared = try convNet(seed: 6)
        try propagateQConfig(unprepared, QConfigMapping(global: .default))
        let error = thrown(QuantizationWorkflowError.self) { try convert(unprepared) }
        guard case .notPrepared(let module)? = error else { return XCTFail("got \(String(describing: error))") }
        XCTAssertTrue(module.contains("quant"), module)
        XCTAssertTrue("\(error!)".contains("prepare"))
        // The converters themselves refuse an unprepared layer.
        var generator = RandomGenerator(seed: 8)
        let linear = try Linear(2, 2, generator: &generator)
        linear.qconfig = .default
        XCTAssertEqual(thrown(QuantizationWorkflowError.self) { try QuantizedLinear(from: linear) },
                       .notPrepared(module: "Linear"))
        // ... and a layer without a qconfig.
        let bare = try Linear(2, 2, generator: &generator)
        let missing = thrown(QuantizationWorkflowError.self) { try QuantizedLinear(from: bare) }
        XCTAssertEqual(missing, .missingQConfig(module: "Linear"))
        XCTAssertTrue(missing.map { "\($0)" }?.contains("has no qconfig") ?? false)
    }

    // MARK: State dict and archive round trips

    func testStateDictRoundTripOfAConvertedModelGivesIdenticalOutputs() throws {
        func converted(seed: UInt64, qconfig: QConfig) throws -> Sequential {
            let model = try convNet(seed: seed)
            try prepare(model, config: qconfig)
            _ = try model(try batch(seed + 100))
            try convert(model)
            return model
        }
        let original = try converted(seed: 81, qconfig: .defaultQConfig(backend: .x86))
        let test = try batch(90, shape: [2, 2, 6, 6])
        let expected = try original(test).tensor
        let state = original.stateDict()
        XCTAssertEqual(state.entries.first { $0.name == "conv.weight" }?.dtype, .int8)
        XCTAssertEqual(state.entries.first { $0.name == "fc.weight_zero_point" }?.dtype, .int64)
        XCTAssertEqual(state["fc.weight_scale"]?.shape, [5])

        // Into another converted model of the same architecture (other weights, other calibration).
        let other = try converted(seed: 82, qconfig: .defaultQConfig(backend: .x86))
        XCTAssertNotEqual(try other(test).tensor, expected)
        try other.loadStateDict(state)
        XCTAssertEqual(try other(test).tensor, expected)

        // Through a safetensors file.
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("qk-static-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try original.saveStateDict(to: url)
        let third = try converted(seed: 83, qconfig: .defaultQConfig(backend: .x86))
        try third.loadStateDict(contentsOf: url)
        XCTAssertEqual(try third(test).tensor, expected)

        // Each archivable module rebuilt from its configuration, then loaded, runs identically.
        for name in ["conv", "dw", "fc"] {
            let module = try original.child(name)
            guard let archivable = module as? any ArchivableModule else { return XCTFail("\(name) is not archivable") }
            let kind = type(of: archivable)
            let rebuilt = try kind.makeForArchive(configuration: archivable.archiveConfiguration)
            XCTAssertEqual(rebuilt.typeName, module.typeName)
            try rebuilt.loadStateDict(module.stateDict())
            try original.replaceChild(at: name, with: rebuilt)
        }
        XCTAssertEqual(try original(test).tensor, expected)
        XCTAssertEqual(QuantizedConvReLU2d.archiveTypeName, "QuantizedConvReLU2d")
        XCTAssertEqual(QuantizedConv2d.archiveTypeName, "QuantizedConv2d")
    }

    func testBranchNetModulesRoundTripThroughTheirArchives() throws {
        let bn = try QuantizedBNReLU2d(
            runningMean: Tensor(shape: [2], scalars: [0.1, 0.2]), runningVar: Tensor(shape: [2], scalars: [1, 2]),
            weight: Tensor(shape: [2], scalars: [0.5, 2]), bias: Tensor(shape: [2], scalars: [0, -0.1]), eps: 1e-3, scale: 0.04, zeroPoint: 7)
        let functional = try QFunctional(scale: 0.07, zeroPoint: 33)
        let hardswish = try QuantizedHardswish(scale: 0.02, zeroPoint: 90)
        let x = try batch(95, shape: [1, 2, 2, 2]).quantized(scale: 0.03, zeroPoint: 60, dtype: .quint8)
        for module in [bn, functional, hardswish] as [Module] {
            let archivable = module as! any ArchivableModule
            let rebuilt = try type(of: archivable).makeForArchive(configuration: archivable.archiveConfiguration)
            try rebuilt.loadStateDict(module.stateDict())
            XCTAssertEqual(rebuilt.description, module.description)
            if let qf = rebuilt as? QFunctional {
                XCTAssertEqual(try qf.add(Variable(x), Variable(x)).quantizedTensor,
                               try functional.add(Variable(x), Variable(x)).quantizedTensor)
            } else {
                XCTAssertEqual(try rebuilt(Variable(x)).quantizedTensor, try module(Variable(x)).quantizedTensor)
            }
        }
        // A malformed configuration is a clear serialization error.
        let error = thrown(SerializationError.self) {
            try QuantizedLinear.makeForArchive(configuration: ["in_features": "4", "bias": "True"])
        }
        XCTAssertTrue((error.map { "\($0)" } ?? "").contains("out_features"))
    }
}
