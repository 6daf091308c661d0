import Foundation
import QuantKit
import XCTest

/// End-to-end training on the digits data, the evaluation helper and progress reporting.
final class TrainingTests: XCTestCase {
    private func digits() throws -> (train: TensorDataset, test: TensorDataset) {
        Digits.trainTestSplit(try Digits.load(contentsOf: DataFixtures.digits))
    }

    func testSmallMLPLearnsDigitsToAtLeast95Percent() throws {
        let (train, test) = try digits()
        XCTAssertEqual(test.count, 360)   // every fifth row (index % 5 == 0)
        var generator = RandomGenerator(seed: 0)
        let model = try ReferenceModels.mlp(inputFeatures: 64, hidden: [64], generator: &generator)
        let loader = try DataLoader(train, batchSize: 32, shuffle: true, generator: RandomGenerator(seed: 1))
        let trainer = Trainer(model: model, optimizer: try Adam(model.parameters(), learningRate: 3e-3),
                              progress: .silent)
        let history = try trainer.fit(loader, epochs: 12, batchCount: loader.count)
        XCTAssertEqual(history.count, 12)
        XCTAssertLessThan(history.last!.loss, history.first!.loss)
        XCTAssertEqual(history.last!.samples, 1437)
        let evaluation = try evaluate(model, on: try DataLoader(test, batchSize: 100))
        XCTAssertGreaterThanOrEqual(evaluation.accuracy, 0.95, "digits test accuracy \(evaluation.accuracy)")
        XCTAssertEqual(evaluation.predictions.count, 360)
        XCTAssertTrue(model.training)   // evaluate restores the mode

        // The same seeds reproduce the run exactly.
        var again = RandomGenerator(seed: 0)
        let twin = try ReferenceModels.mlp(inputFeatures: 64, hidden: [64], generator: &again)
        let twinLoader = try DataLoader(train, batchSize: 32, shuffle: true, generator: RandomGenerator(seed: 1))
        let twinHistory = try Trainer(model: twin, optimizer: try Adam(twin.parameters(), learningRate: 3e-3),
                                      progress: .silent).fit(twinLoader, epochs: 12)
        XCTAssertEqual(twinHistory.map(\.loss), history.map(\.loss))
        XCTAssertEqual(twin.stateDict(), model.stateDict())
    }

    func testSmallCNNTrainsOnDigits() throws {
        // One epoch of the conv-BN-ReLU-pool CNN (small channels, to stay quick in debug builds): the loss falls and
        // the accuracy is well above chance.
        let (train, test) = try digits()
        var generator = RandomGenerator(seed: 2)
        let model = try ReferenceModels.cnn(imageSize: 8, channels: (8, 16), hidden: 32, generator: &generator)
        let loader = try DataLoader(train, batchSize: 32, shuffle: true, generator: RandomGenerator(seed: 3))
        let trainer = Trainer(model: model, optimizer: try Adam(model.parameters(), learningRate: 3e-3),
                              progress: .silent)
        let history = try trainer.fit(loader, epochs: 2)
        XCTAssertLessThan(history[1].loss, history[0].loss)
        let evaluation = try evaluate(model, on: try DataLoader(test, batchSize: 360))
        XCTAssertGreaterThan(evaluation.accuracy, 0.8, "accuracy \(evaluation.accuracy)")
    }

    func testProgressReporting() throws {
        let (train, _) = try digits()
        let loader = try DataLoader(try train.subset(Array(0..<200)), batchSize: 10)
        var generator = RandomGenerator(seed: 0)
        let model = try ReferenceModels.mlp(inputFeatures: 64, hidden: [16], generator: &generator)

        var lines: [String] = []
        let lineTrainer = Trainer(model: model, optimizer: try SGD(model.parameters(), learningRate: 0.1),
                                  reporter: ProgressReporter(style: .lines) { lines.append($0) })
        _ = try lineTrainer.trainEpoch(loader, epoch: 1, of: 1, batchCount: loader.count)
        XCTAssertEqual(lines.count, 9 + 1)   // every 10% (2 batches) except the last, and the summary
        XCTAssertTrue(lines.allSatisfy { $0.hasSuffix("\n") && !$0.contains("\r") })
        XCTAssertTrue(lines[0].hasPrefix("epoch 1/1 batch 2/20 loss "), lines[0])
        XCTAssertTrue(lines[0].contains("samples/s"))
        XCTAssertTrue(lines.last!.hasPrefix("epoch 1/1 done: loss "), lines.last!)

        var redraws: [String] = []
        let barTrainer = Trainer(model: model, optimizer: try SGD(model.parameters(), learningRate: 0.1),
                                 reporter: ProgressReporter(style: .bar) { redraws.append($0) })
        _ = try barTrainer.trainEpoch(loader, epoch: 2, of: 3, batchCount: loader.count)
        XCTAssertEqual(redraws.count, 20 + 1)
        XCTAssertTrue(redraws.allSatisfy { $0.hasPrefix("\r") })
        XCTAssertTrue(redraws[9].contains("[###############---------------] 10/20"), redraws[9])
        XCTAssertTrue(redraws.last!.hasSuffix("\n"))

        var silent: [String] = []
        _ = try Trainer(model: model, optimizer: try SGD(model.parameters(), learningRate: 0.1),
                        reporter: ProgressReporter(style: .silent) { silent.append($0) }).trainEpoch(loader)
        XCTAssertTrue(silent.isEmpty)
    }

    func testEvaluateComputesAccuracyLossAndPredictions() throws {
        // A fixed linear classifier: predicts the larger of the two inputs.
        let model = try Linear(weight: Tensor<Float>(shape: [2, 2], scalars: [1, 0, 0, 1]), bias: nil)
        let inputs = try Tensor<Float>(shape: [4, 2], scalars: [1, 0, 0, 1, 2, 1, 0, 3])
        let evaluation = try evaluate(model, on: [(inputs: inputs, labels: [0, 1, 1, 1])])
        XCTAssertEqual(evaluation.predictions, [0, 1, 0, 1])
        XCTAssertEqual(evaluation.accuracy, 0.75)
        let expected = try Functional.crossEntropy(Variable(inputs), targets: [0, 1, 1, 1]).item()
        XCTAssertEqual(evaluation.loss, Double(expected), accuracy: 1e-6)
    }
}
