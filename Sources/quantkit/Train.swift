import ArgumentParser
import Foundation
import QuantKit

/// `quantkit train`: trains one of the reference float models on digits or Fashion-MNIST and reports per-epoch time
/// and test accuracy.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a float reference model (MLP or CNN) on digits or Fashion-MNIST.",
        discussion: """
            Fashion-MNIST is read from /usr/share/datasets/fashion-mnist (Debian package dataset-fashion-mnist) \
            unless --data points elsewhere; digits from --data (a digits.csv[.gz] file; test split: rows with \
            index % 5 == 0). Fashion-MNIST images are normalised with mean 0.2860 and std 0.3530. The optimizer is \
            Adam. Progress goes to standard error (a bar on a terminal, lines otherwise); results to standard output.
            """)

    enum Dataset: String, ExpressibleByArgument, CaseIterable {
        case fashionMNIST = "fashion-mnist"
        case digits
    }

    enum Model: String, ExpressibleByArgument, CaseIterable {
        case mlp
        case cnn
    }

    enum Progress: String, ExpressibleByArgument, CaseIterable {
        case auto, bar, lines, none
    }

    @Option(help: "The dataset: fashion-mnist or digits.")
    var dataset: Dataset = .fashionMNIST

    @Option(help: "The model: mlp (hidden layers 256, 128) or cnn (conv16-BN-ReLU-pool, conv32-BN-ReLU-pool, fc64).")
    var model: Model = .mlp

    @Option(help: "Training epochs.")
    var epochs: Int = 5

    @Option(help: "Samples per batch.")
    var batchSize: Int = 128

    @Option(help: "Adam learning rate.")
    var lr: Double = 1e-3

    @Option(help: "Seed of the weight initialisation and of the shuffling.")
    var seed: UInt64 = 0

    @Option(help: "The Fashion-MNIST directory or the digits CSV file.")
    var data: String?

    @Option(help: "Write the trained state dict to this safetensors file.")
    var save: String?

    @Option(help: "Threads of the BLAS (OpenBLAS) GEMMs; default: its own setting.")
    var blasThreads: Int?

    @Option(help: "Progress display: auto, bar, lines or none.")
    var progress: Progress = .auto

    func validate() throws {
        guard epochs >= 1 else { throw ValidationError("--epochs must be at least 1, got \(epochs)") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
        guard lr > 0, lr.isFinite else { throw ValidationError("--lr must be positive, got \(lr)") }
        if let blasThreads, blasThreads < 1 { throw ValidationError("--blas-threads must be at least 1") }
    }

    func run() throws {
        if let blasThreads { Runtime.setBLASThreads(blasThreads) }
        let (train, test, imageSize) = try loadData()
        var generator = RandomGenerator(seed: seed)
        let network: Module
        switch model {
        case .mlp:
            network = try ReferenceModels.mlp(inputFeatures: imageSize * imageSize, generator: &generator)
        case .cnn:
            network = try ReferenceModels.cnn(imageSize: Size2d(imageSize), generator: &generator)
        }
        let loader = try DataLoader(train, batchSize: batchSize, shuffle: true,
                                    generator: RandomGenerator(seed: generator.next()))
        let testLoader = try DataLoader(test, batchSize: 1000)
        let optimizer = try Adam(network.parameters(), learningRate: lr)
        let style: ProgressStyle
        switch progress {
        case .auto: style = .automatic
        case .bar: style = .bar
        case .lines: style = .lines
        case .none: style = .silent
        }
        let trainer = Trainer(model: network, optimizer: optimizer, progress: style)

        print("quantkit train: \(dataset.rawValue) \(model.rawValue), \(train.count) train / \(test.count) test "
              + "samples, \(epochs) epochs, batch \(batchSize), Adam lr \(lr), seed \(seed)")
        print("BLAS: \(Runtime.blasName), \(Runtime.blasThreads.map(String.init) ?? "?") threads; "
              + "parameters: \(network.parameters().reduce(0) { $0 + $1.data.count })")
        var epochSeconds: [Double] = []
        var last: Evaluation?
        for epoch in 1...epochs {
            let metrics = try trainer.trainEpoch(loader, epoch: epoch, of: epochs, batchCount: loader.count)
            let evaluation = try evaluate(network, on: testLoader)
            epochSeconds.append(metrics.seconds)
            last = evaluation
            print("epoch \(epoch)/\(epochs): train loss \(fixed(metrics.loss, 4)), train acc "
                  + "\(fixed(metrics.accuracy * 100, 2))%, test loss \(fixed(evaluation.loss, 4)), test acc "
                  + "\(fixed(evaluation.accuracy * 100, 2))%, epoch time \(fixed(metrics.seconds, 2)) s "
                  + "(\(Int(metrics.samplesPerSecond.rounded())) samples/s), eval \(fixed(evaluation.seconds, 2)) s")
        }
        let mean = epochSeconds.reduce(0, +) / Double(epochSeconds.count)
        print("final test accuracy \(fixed((last?.accuracy ?? 0) * 100, 2))%; mean epoch time \(fixed(mean, 2)) s")
        if let save {
            try network.saveStateDict(to: URL(fileURLWithPath: save),
                                      metadata: ["dataset": dataset.rawValue, "model": model.rawValue])
            print("saved the state dict to \(save)")
        }
    }

    private func loadData() throws -> (TensorDataset, TensorDataset, Int) {
        switch dataset {
        case .fashionMNIST:
            let directory = data.map { URL(fileURLWithPath: $0, isDirectory: true) } ?? FashionMNIST.defaultDirectory
            return (try FashionMNIST.load(.train, from: directory, normalization: .fashionMNIST),
                    try FashionMNIST.load(.test, from: directory, normalization: .fashionMNIST),
                    FashionMNIST.imageSize)
        case .digits:
            guard let data else {
                throw ValidationError("--data must name the digits CSV file (e.g. /work/shared/data/digits.csv.gz)")
            }
            let all = try Digits.load(contentsOf: URL(fileURLWithPath: data))
            let (train, test) = Digits.trainTestSplit(all)
            return (train, test, Digits.imageSize)
        }
    }

    private func fixed(_ value: Double, _ digits: Int) -> String {
        String(format: "%.\(digits)f", value)
    }
}
