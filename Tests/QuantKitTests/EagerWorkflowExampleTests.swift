import Foundation
import QuantKit
import XCTest

/// The README's eager-mode example end to end on the digits data: a trained conv-BN-ReLU CNN through static PTQ
/// (fuse, wrap, prepare, calibrate, convert), a quantized model file round trip, dynamic int8 and fp16, and QAT.
final class EagerWorkflowExampleTests: XCTestCase {
    private func model(seed: UInt64 = 7) throws -> Sequential {
        var generator = RandomGenerator(seed: seed)
        return try ReferenceModels.cnn(imageSize: 8, channels: (8, 16), hidden: 32, generator: &generator)
    }

    private let fusionGroups = [["features.0", "features.1", "features.2"], ["features.4", "features.5", "features.6"],
                                ["classifier.0", "classifier.1"]]

    private func agreement(_ a: [Int], _ b: [Int]) -> Double {
        Double(zip(a, b).filter { $0 == $1 }.count) / Double(a.count)
    }

    func testStaticDynamicAndQATWorkflowsOnDigits() throws {
        let (train, test) = Digits.trainTestSplit(try Digits.load(contentsOf: DataFixtures.digits))
        let testLoader = try DataLoader(test, batchSize: 360)
        let float = try model()
        let loader = try DataLoader(train, batchSize: 32, shuffle: true, generator: RandomGenerator(seed: 3))
        _ = try Trainer(model: float, optimizer: try Adam(float.parameters(), learningRate: 3e-3), progress: .silent)
            .fit(loader, epochs: 3)
        let trained = float.stateDict()
        let fp32 = try evaluate(float, on: testLoader)
        XCTAssertGreaterThan(fp32.accuracy, 0.85)

        // Static post-training quantization.
        let cnn = try model(seed: 99)
        try cnn.loadStateDict(trained)
        cnn.eval()
        try fuseModules(cnn, fusionGroups)
        let quantized = try QuantWrapper(cnn)
        quantized.qconfig = QConfig.defaultQConfig(backend: .x86)
        try prepare(quantized)
        for (index, batch) in try DataLoader(train, batchSize: 100).enumerated() where index < 5 {
            _ = try quantized(batch.inputs)
        }
        try convert(quantized)
        XCTAssertTrue(try quantized.module(at: "quant") is Quantize)
        XCTAssertTrue(try quantized.module(at: "module.features.0") is QuantizedConvReLU2d)
        XCTAssertTrue(try quantized.module(at: "module.features.1") is Identity)
        XCTAssertTrue(try quantized.module(at: "module.features.3") is MaxPool2d)
        XCTAssertTrue(try quantized.module(at: "module.classifier.0") is QuantizedLinearReLU)
        XCTAssertTrue(try quantized.module(at: "module.classifier.2") is QuantizedLinear)
        XCTAssertTrue(try quantized.module(at: "dequant") is DeQuantize)
        let ptq = try evaluate(quantized, on: testLoader)
        XCTAssertGreaterThanOrEqual(ptq.accuracy, fp32.accuracy - 0.02, "PTQ \(ptq.accuracy) fp32 \(fp32.accuracy)")
        XCTAssertGreaterThanOrEqual(agreement(ptq.predictions, fp32.predictions), 0.95)

        // The file holds int8 weights; a fresh float architecture loads it and gives identical outputs.
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("eager-example-\(getpid()).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try saveQuantizedModel(quantized, to: url)
        let reloaded = try loadQuantizedModel(into: QuantWrapper(model(seed: 5)), from: url)
        var batches = try DataLoader(test, batchSize: 50).makeIterator()
        let images = try XCTUnwrap(batches.next()).inputs
        XCTAssertEqual(try reloaded(images).tensor, try quantized(images).tensor)

        // Dynamic quantization of the classifier's Linear layers: int8 and fp16 weights.
        for dtype in DynamicQuantizationType.allCases {
            let dynamic = try model(seed: 11)
            try dynamic.loadStateDict(trained)
            try quantizeDynamic(dynamic, dtype: dtype)
            XCTAssertTrue(try dynamic.module(at: "classifier.0") is DynamicQuantizedLinear)
            let result = try evaluate(dynamic, on: testLoader)
            XCTAssertGreaterThanOrEqual(agreement(result.predictions, fp32.predictions), 0.97, "\(dtype)")
        }

        // Quantization-aware training from the trained weights, then convert (BN folded with running statistics).
        let qatCNN = try model(seed: 13)
        try qatCNN.loadStateDict(trained)
        qatCNN.train()
        try fuseModulesQAT(qatCNN, fusionGroups)
        let qat = try QuantWrapper(qatCNN)
        try prepareQAT(qat)
        XCTAssertTrue(try qat.module(at: "module.features.0") is QATConvBnReLU2d)
        _ = try Trainer(model: qat, optimizer: try SGD(qat.parameters(), learningRate: 0.01, momentum: 0.9),
                        progress: .silent).fit(loader, epochs: 1)
        qat.eval()
        try convert(qat)
        XCTAssertTrue(try qat.module(at: "module.features.0") is QuantizedConvReLU2d)
        let qatResult = try evaluate(qat, on: testLoader)
        XCTAssertGreaterThanOrEqual(qatResult.accuracy, fp32.accuracy - 0.02, "QAT \(qatResult.accuracy)")
    }
}
