import Foundation
import QuantKit
import XCTest

/// Quantized model files: round trips of dynamic and static models into a fresh float architecture with identical
/// outputs, fusion leftovers, file sizes, custom archivable types, and malformed files that must throw
/// `SerializationError` (never trap).
final class QuantizedModelFileTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("QuantizedModelFileTests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    private func url(_ name: String) -> URL { directory.appendingPathComponent(name) }

    private func mlp(seed: UInt64 = 5) throws -> Sequential {
        var generator = RandomGenerator(seed: seed)
        return try Sequential(named: [
            ("fc1", Linear(12, 24, generator: &generator)), ("relu", ReLU()),
            ("fc2", Linear(24, 6, generator: &generator)), ("drop", Dropout(p: 0.2, generator: &generator)),
        ])
    }

    private func input(_ shape: [Int], seed: UInt64 = 17) throws -> Tensor<Float> {
        var generator = RandomGenerator(seed: seed)
        return try generator.uniform(shape: shape, in: -2..<2)
    }

    private func output(_ model: Module, _ x: Tensor<Float>) throws -> Tensor<Float> {
        try XCTUnwrap(try model(x).tensor)
    }

    private func typeNames(_ model: Module) -> [String] { model.namedModules().map { "\($0.path):\($0.module.typeName)" } }

    /// `mlp()` dynamically quantized with per-channel int8 fc1 and fp16 fc2 weights.
    private func mixedDynamicMLP() throws -> Sequential {
        let model = try mlp()
        var config = QConfigMapping()
        config.setModuleName("fc1", .perChannelDynamic)
        config.setModuleName("fc2", .float16Dynamic)
        try quantizeDynamic(model, config: config)
        return model
    }

    // MARK: Round trips

    func testDynamicModelRoundTripGivesIdenticalOutputs() throws {
        let model = try mixedDynamicMLP()
        let file = url("dynamic.safetensors")
        try saveQuantizedModel(model, to: file)

        var generator = RandomGenerator(seed: 77)
        let architecture = try mlp(seed: 77)          // other weights: everything must come from the file
        let loaded = try loadQuantizedModel(into: architecture, from: file)
        XCTAssertTrue(loaded === architecture)
        XCTAssertEqual(typeNames(loaded), typeNames(model))
        XCTAssertFalse(loaded.training)
        let fc1 = try XCTUnwrap(try loaded.module(at: "fc1") as? DynamicQuantizedLinear)
        XCTAssertEqual(fc1.quantizedWeight?.qscheme, .perChannelAffine)
        XCTAssertEqual(try (loaded.module(at: "fc2") as? DynamicQuantizedLinear)?.dtype, .float16)
        XCTAssertEqual(try (loaded.module(at: "drop") as? Dropout)?.p, 0.2)
        XCTAssertEqual(loaded.stateDict(), model.stateDict())
        let x = try input([9, 12])
        XCTAssertEqual(try output(loaded, x).scalars, try output(model, x).scalars)

        // The metadata names each module's type at its path.
        let archive = try SafeTensors(contentsOf: file)
        XCTAssertEqual(archive.metadata["quantkit.format"], "quantized-model")
        let modules = try XCTUnwrap(archive.metadata["quantkit.modules"])
        XCTAssertTrue(modules.contains("\"path\":\"fc1\""), modules)
        XCTAssertTrue(modules.contains("\"type\":\"DynamicQuantizedLinear\""), modules)
        XCTAssertEqual(archive["fc1.weight"]?.dtype, .int8)
        XCTAssertEqual(archive["fc2.weight"]?.dtype, .float16)

        // A recorded root replaces the architecture's root: the result is the rebuilt module.
        let single = try XCTUnwrap(try model.module(at: "fc1") as? DynamicQuantizedLinear)
        let root = try loadQuantizedModel(into: Linear(12, 24, generator: &generator),
                                          from: quantizedModelArchive(single))
        XCTAssertTrue(type(of: root) == DynamicQuantizedLinear.self)
        XCTAssertEqual(try output(root, x).scalars, try output(single, x).scalars)
    }

    func testFusedMembersLeftAsIdentityAreRecorded() throws {
        let model = try mlp()
        let linear = try XCTUnwrap(try model.module(at: "fc1") as? Linear)
        try model.replaceChild(at: "fc1", with: LinearReLU(linear, ReLU()))
        try model.replaceChild(at: "relu", with: Identity())
        try quantizeDynamic(model)
        XCTAssertTrue(try model.module(at: "fc1") is DynamicQuantizedLinearReLU)
        let archive = try quantizedModelArchive(model)

        // Loaded into the unfused float architecture, as built by its initializer.
        let loaded = try loadQuantizedModel(into: mlp(seed: 1), from: archive)
        XCTAssertTrue(try loaded.module(at: "fc1") is DynamicQuantizedLinearReLU)
        XCTAssertTrue(try loaded.module(at: "relu") is Identity)
        let x = try input([4, 12])
        XCTAssertEqual(try output(loaded, x).scalars, try output(model, x).scalars)
    }

    func testQuantizeDeQuantizeAndPoolingRoundTrip() throws {
        // What a static conversion leaves around its quantized layers: Quantize, float modules that run on quantized
        // tensors (MaxPool2d, Flatten, ReLU), DeQuantize.
        func architecture() throws -> Sequential {
            try Sequential(named: [("quant", QuantStub()), ("pool", MaxPool2d(kernelSize: 2, stride: 2)),
                                   ("relu", ReLU()), ("flatten", Flatten()), ("dequant", DeQuantStub())])
        }
        let model = try architecture()
        try model.replaceChild(at: "quant", with: Quantize(scale: 0.0173, zeroPoint: 61, dtype: .quint8))
        try model.replaceChild(at: "dequant", with: DeQuantize())
        model.eval()
        let archive = try quantizedModelArchive(model)
        let loaded = try loadQuantizedModel(into: architecture(), from: archive)
        let quantize = try XCTUnwrap(try loaded.module(at: "quant") as? Quantize)
        XCTAssertEqual(quantize.scale, 0.0173)
        XCTAssertEqual(quantize.zeroPoint, 61)
        XCTAssertTrue(try loaded.module(at: "dequant") is DeQuantize)
        let x = try input([2, 3, 4, 4])
        let expected = try output(model, x)
        XCTAssertEqual(expected.shape, [2, 12])
        XCTAssertEqual(try output(loaded, x).scalars, expected.scalars)
    }

    func testInt8FileIsAtMostAQuarterOfTheFloatFile() throws {
        var generator = RandomGenerator(seed: 0)
        let float = try ReferenceModels.mlp(inputFeatures: 784, generator: &generator)
        let floatFile = url("fp32.safetensors")
        try float.saveStateDict(to: floatFile)
        let floatBytes = try Data(contentsOf: floatFile).count

        for (dtype, perChannel, limit) in [(DynamicQuantizationType.qint8, false, 0.27), (.qint8, true, 0.27),
                                           (.float16, false, 0.51)] {
            var again = RandomGenerator(seed: 0)
            let model = try ReferenceModels.mlp(inputFeatures: 784, generator: &again)
            try quantizeDynamic(model, dtype: dtype, perChannel: perChannel)
            let file = url("q-\(dtype)-\(perChannel).safetensors")
            try saveQuantizedModel(model, to: file)
            let ratio = Double(try Data(contentsOf: file).count) / Double(floatBytes)
            XCTAssertLessThanOrEqual(ratio, limit, "\(dtype) perChannel \(perChannel): \(ratio)")
            XCTAssertGreaterThan(ratio, 0.2)
        }
    }

    // MARK: Static models

    /// QuantStub → Conv2d → ReLU → Flatten → Linear → DeQuantStub.
    private func staticModel(seed: UInt64) throws -> Sequential {
        var generator = RandomGenerator(seed: seed)
        return try Sequential(named: [
            ("quant", QuantStub()), ("conv", Conv2d(2, 4, kernelSize: 3, padding: 1, generator: &generator)),
            ("relu", ReLU()), ("flatten", Flatten()), ("fc", Linear(4 * 5 * 5, 3, generator: &generator)),
            ("dequant", DeQuantStub()),
        ])
    }

    func testStaticModelRoundTripGivesIdenticalOutputs() throws {
        let model = try staticModel(seed: 21)
        model.eval()
        try prepare(model, config: .defaultQConfig(backend: .x86))
        for seed in 0..<4 { _ = try model(input([3, 2, 5, 5], seed: UInt64(seed))) }
        try convert(model)
        XCTAssertTrue(try model.module(at: "conv") is QuantizedConv2d)
        XCTAssertTrue(try model.module(at: "fc") is QuantizedLinear)
        XCTAssertTrue(try model.module(at: "quant") is Quantize)

        let file = url("static.safetensors")
        try saveQuantizedModel(model, to: file)
        let archive = try SafeTensors(contentsOf: file)
        XCTAssertEqual(archive["conv.weight"]?.dtype, .int8)
        XCTAssertEqual(archive["fc.weight_zero_point"]?.dtype, .int64)

        let loaded = try loadQuantizedModel(into: staticModel(seed: 22), from: file)
        XCTAssertEqual(typeNames(loaded), typeNames(model))
        XCTAssertEqual(loaded.stateDict(), model.stateDict())
        XCTAssertFalse(loaded.training)
        for seed in 10..<13 {
            let x = try input([2, 2, 5, 5], seed: UInt64(seed))
            XCTAssertEqual(try output(loaded, x).scalars, try output(model, x).scalars)
        }
    }

    /// A model class of its own (not a Sequential): fused conv-bn-relu, pooling, a FloatFunctional skip add.
    final class Net: Module {
        init(seed: UInt64) throws {
            var generator = RandomGenerator(seed: seed)
            super.init()
            try registerModule("quant", QuantStub())
            try registerModule("conv", Conv2d(1, 3, kernelSize: 3, padding: 1, generator: &generator))
            try registerModule("bn", BatchNorm2d(3))
            try registerModule("relu", ReLU())
            try registerModule("pool", MaxPool2d(kernelSize: 2))
            try registerModule("flatten", Flatten())
            try registerModule("fc1", Linear(12, 12, generator: &generator))
            try registerModule("skip", FloatFunctional())
            try registerModule("fc2", Linear(12, 4, generator: &generator))
            try registerModule("dequant", DeQuantStub())
        }

        override func forward(_ x: Variable) throws -> Variable {
            var y = try child("quant")(x)
            for name in ["conv", "bn", "relu", "pool", "flatten"] { y = try child(name)(y) }
            let skip = try child("skip", as: FloatFunctional.self)
            y = try skip.add(y, child("fc1")(y))
            return try child("dequant")(child("fc2")(y))
        }
    }

    func testFusedStaticModelOfACustomClassRoundTrips() throws {
        let model = try Net(seed: 31)
        // Running statistics that are not the defaults, so that folding matters.
        for seed in 0..<3 { _ = try model(input([4, 1, 4, 4], seed: UInt64(seed))) }
        model.eval()
        try fuseModules(model, ["conv", "bn", "relu"])
        try prepare(model, config: .defaultQConfig(backend: .x86))
        for seed in 0..<4 { _ = try model(input([4, 1, 4, 4], seed: UInt64(seed))) }
        try convert(model)
        XCTAssertTrue(try model.module(at: "conv") is QuantizedConvReLU2d)
        XCTAssertTrue(try model.module(at: "bn") is Identity)
        XCTAssertTrue(try model.module(at: "skip") is QFunctional)

        let archive = try quantizedModelArchive(model)
        let loaded = try loadQuantizedModel(into: Net(seed: 32), from: archive)
        XCTAssertTrue(try loaded.module(at: "conv") is QuantizedConvReLU2d)
        XCTAssertTrue(try loaded.module(at: "relu") is Identity)
        XCTAssertEqual(typeNames(loaded), typeNames(model))
        let x = try input([5, 1, 4, 4], seed: 40)
        XCTAssertEqual(try output(loaded, x).scalars, try output(model, x).scalars)
    }

    // MARK: Custom types and the registry

    /// A user's archivable module: scales its input by a configured factor.
    final class Scale: Module, ArchivableModule {
        let factor: Float
        init(factor: Float) { self.factor = factor; super.init() }
        static var archiveTypeName: String { "Test.Scale" }
        var archiveConfiguration: [String: String] { ["factor": String(describing: factor)] }
        static func makeForArchive(configuration: [String: String]) throws -> Module {
            Scale(factor: try ArchiveConfigurationReader(configuration, type: archiveTypeName).float("factor"))
        }
        override func forward(_ input: Variable) throws -> Variable {
            let x = try floatInput(input)
            return Variable(try Tensor(shape: x.shape, scalars: x.scalars.map { $0 * factor }))
        }
    }

    func testCustomArchivableTypesNeedRegistering() throws {
        let model = try mlp()
        try quantizeDynamic(model)
        try model.replaceChild(at: "relu", with: Scale(factor: 0.5))
        var registry = ModuleArchiveRegistry.default
        registry.register(Scale.self)
        XCTAssertTrue(registry.typeNames.contains("Test.Scale"))
        let archive = try quantizedModelArchive(model, registry: registry)
        let loaded = try loadQuantizedModel(into: mlp(seed: 2), from: archive, registry: registry)
        XCTAssertEqual(try (loaded.module(at: "relu") as? Scale)?.factor, 0.5)
        let x = try input([3, 12])
        XCTAssertEqual(try output(loaded, x).scalars, try output(model, x).scalars)

        // Loading with the default registry: the type is unknown.
        guard case .invalidModelArchive(let path, let reason)? = thrown(SerializationError.self, {
            try loadQuantizedModel(into: mlp(seed: 2), from: archive)
        }) else { return }
        XCTAssertEqual(path, "relu")
        XCTAssertTrue(reason.contains("unknown module type \"Test.Scale\""), reason)

        // Saved without registering: only the tree records it, and a float architecture does not match.
        let unregistered = try quantizedModelArchive(model)
        guard case .invalidModelArchive(let path2, let reason2)? = thrown(SerializationError.self, {
            try loadQuantizedModel(into: mlp(seed: 2), from: unregistered)
        }) else { return }
        XCTAssertEqual(path2, "relu")
        XCTAssertTrue(reason2.contains("Scale") && reason2.contains("ReLU"), reason2)
    }

    // MARK: Malformed files

    private func archive() throws -> SafeTensors {
        let model = try mlp()
        try quantizeDynamic(model)
        return try quantizedModelArchive(model)
    }

    private func expectArchiveError(_ archive: SafeTensors, module: String? = nil, containing text: String,
                                    into architecture: Module? = nil, line: UInt = #line) throws {
        let target = try architecture ?? mlp(seed: 3)
        guard case .invalidModelArchive(let path, let reason)? = thrown(SerializationError.self, line: line, {
            try loadQuantizedModel(into: target, from: archive)
        }) else { return }
        if let module { XCTAssertEqual(path, module, line: line) }
        XCTAssertTrue(reason.contains(text), "\(reason)", line: line)
    }

    private func editingModules(_ archive: SafeTensors, _ edit: (inout [[String: Any]]) -> Void) throws
        -> SafeTensors
    {
        var copy = archive
        let json = try XCTUnwrap(archive.metadata["quantkit.modules"])
        var records = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]])
        edit(&records)
        copy.metadata["quantkit.modules"] = String(decoding: try JSONSerialization.data(withJSONObject: records),
                                                   as: UTF8.self)
        return copy
    }

    /// `archive` with the first record's configuration edited.
    private func editingConfiguration(_ archive: SafeTensors, _ edit: @escaping (inout [String: String]) -> Void) throws
        -> SafeTensors
    {
        try editingModules(archive) {
            var configuration = $0[0]["configuration"] as! [String: String]
            edit(&configuration)
            $0[0]["configuration"] = configuration
        }
    }

    /// `archive` with the metadata entry `key` set to `value` (nil removes it).
    private func settingMetadata(_ archive: SafeTensors, _ key: String, _ value: String?) -> SafeTensors {
        var copy = archive
        copy.metadata[key] = value
        return copy
    }

    func testMalformedMetadataThrows() throws {
        let good = try archive()

        var plain = good
        plain.metadata = [:]
        try expectArchiveError(plain, module: "", containing: "not a quantized model file")

        try expectArchiveError(settingMetadata(good, "quantkit.format_version", "9"), containing: "format version 9")
        try expectArchiveError(settingMetadata(good, "quantkit.modules", "[{\"path\": \"fc1\", "), module: "",
                               containing: "not valid JSON")
        try expectArchiveError(settingMetadata(good, "quantkit.modules", "{\"path\": \"fc1\"}"),
                               containing: "quantkit.modules")
        try expectArchiveError(settingMetadata(good, "quantkit.structure", "[[\"\"]]"),
                               containing: "[path, type] pairs")

        try expectArchiveError(editingModules(good) { $0[0]["type"] = "QuantizedLSTM" }, module: "fc1",
                               containing: "unknown module type \"QuantizedLSTM\"")
        try expectArchiveError(editingConfiguration(good) { $0["in_features"] = "twelve" }, module: "fc1",
                               containing: "in_features")
        try expectArchiveError(editingConfiguration(good) {
            $0["in_features"] = "2000000000"
            $0["out_features"] = "2000000000"
        }, module: "fc1", containing: "2^31")
        try expectArchiveError(editingConfiguration(good) { $0["qscheme"] = "per_channel_affine_float_qparams" },
                               module: "fc1", containing: "qscheme")
        try expectArchiveError(editingModules(good) { $0[0]["path"] = "head.fc9" }, module: "head.fc9",
                               containing: "no module at this path")
        try expectArchiveError(editingModules(good) { $0.append($0[0]) }, module: "fc1", containing: "twice")
    }

    func testTensorsThatDoNotFitThrow() throws {
        let good = try archive()

        var missing = good
        _ = missing.removeTensor(named: "fc1.weight_scale")
        guard case .keyMismatch(let missingKeys, _)? = thrown(SerializationError.self, {
            try loadQuantizedModel(into: mlp(seed: 3), from: missing)
        }) else { return }
        XCTAssertEqual(missingKeys, ["fc1.weight_scale"])

        var wrongShape = good
        try wrongShape.setTensor(Tensor<Float>([1, 2, 3]), for: "fc1.bias")
        guard case .shapeMismatch(let name, let expected, let actual)? = thrown(SerializationError.self, {
            try loadQuantizedModel(into: mlp(seed: 3), from: wrongShape)
        }) else { return }
        XCTAssertEqual(name, "fc1.bias")
        XCTAssertEqual(expected, [24])
        XCTAssertEqual(actual, [3])

        var badScale = good
        try badScale.setTensor(Tensor<Float>([-1]), for: "fc2.weight_scale")
        try expectArchiveError(badScale, module: "fc2", containing: "scale")

        // Another architecture: a recorded path is missing.
        var generator = RandomGenerator(seed: 4)
        let other = try Sequential(named: [("fc1", Linear(12, 24, generator: &generator)), ("relu", ReLU())])
        try expectArchiveError(good, containing: "no module at this path", into: other)

        // A module kept from the architecture (fc2 left float) has another type there.
        let partly = try mlp()
        try (partly.module(at: "fc2")).qconfig = nil
        try quantizeDynamic(partly)
        let partlyArchive = try quantizedModelArchive(partly)
        XCTAssertTrue(try loadQuantizedModel(into: mlp(seed: 6), from: partlyArchive).module(at: "fc2") is Linear)
        let nested = try Sequential(named: [
            ("fc1", Linear(12, 24, generator: &generator)), ("relu", ReLU()),
            ("fc2", Sequential(Linear(24, 6, generator: &generator))), ("drop", Identity()),
        ])
        try expectArchiveError(partlyArchive, module: "fc2", containing: "the architecture has a Sequential",
                               into: nested)
    }

    func testSavingAnUnconvertedModelThrowsAndTruncatedFilesThrow() throws {
        let model = try mlp()
        try prepare(model, config: .default)
        guard case .invalidModelArchive(let path, let reason)? = thrown(SerializationError.self, {
            try saveQuantizedModel(model, to: url("prepared.safetensors"))
        }) else { return }
        XCTAssertEqual(path, "fc1.activation_post_process")
        XCTAssertTrue(reason.contains("convert"), reason)

        let file = url("truncated.safetensors")
        let bytes = try archive().serialized()
        try Data(bytes.prefix(bytes.count / 2)).write(to: file)
        XCTAssertNotNil(thrown(SerializationError.self) { try loadQuantizedModel(into: mlp(), from: file) })
        XCTAssertNotNil(thrown(SerializationError.self) {
            try loadQuantizedModel(into: mlp(), from: url("does-not-exist.safetensors"))
        })
    }

    func testRandomByteCorruptionNeverTraps() throws {
        let model = try mixedDynamicMLP()
        let bytes = try quantizedModelArchive(model).serialized()
        var generator = RandomGenerator(seed: 2026)
        var loadedCount = 0, errorCount = 0
        for _ in 0..<300 {
            var corrupted = bytes
            for _ in 0..<(1 + Int(generator.next() % 3)) {
                let index = Int(generator.next() % UInt64(bytes.count))
                corrupted[index] = UInt8(truncatingIfNeeded: generator.next())
            }
            do {
                let loaded = try loadQuantizedModel(into: mlp(seed: 8), from: SafeTensors(bytes: corrupted))
                _ = try? loaded(input([2, 12]))
                loadedCount += 1
            } catch is SerializationError {
                errorCount += 1
            } catch {
                XCTFail("expected a SerializationError, got \(error)")
            }
        }
        XCTAssertEqual(loadedCount + errorCount, 300)
        XCTAssertGreaterThan(errorCount, 0)
    }
}
