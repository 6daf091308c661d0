import ArgumentParser
import Foundation
import QuantKit

/// `quantkit demo`: the end-to-end report on Fashion-MNIST. Trains (or loads) the reference MLP and CNN, then
/// compares fp32 with dynamic int8, dynamic fp16, static int8 (post-training) and QAT: accuracy, agreement with the
/// fp32 predictions, file size and latency.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train (or load) the MLP and the CNN on Fashion-MNIST and compare fp32 with its quantized variants.",
        discussion: """
            Fashion-MNIST comes from /usr/share/datasets/fashion-mnist (Debian package dataset-fashion-mnist) unless \
            --data points elsewhere. Trained fp32 weights are kept in --models (safetensors) and reused by later \
            runs with the same number of epochs. Each variant is built from a fresh model loaded with the fp32 \
            weights: dynamic int8 and fp16 (quantizeDynamic on the Linear layers), static int8 (fuse conv-bn-relu \
            and linear-relu, QuantWrapper, the x86 default qconfig, calibration on training images, convert) and \
            QAT (fuse for QAT, the x86 QAT qconfig, a short fine-tune, convert). Sizes are the files \
            saveQuantizedModel writes; latencies are medians over interleaved runs, on --threads threads (kernels \
            and OpenBLAS). Progress goes to standard error, the report to standard output.
            """)

    @Flag(help: "Fewer epochs, calibration batches and timing runs: a fast check.")
    var quick = false

    @Option(help: "Threads of the kernels and of OpenBLAS for the latency columns (training uses all cores).")
    var threads: Int = 1

    @Option(help: "The Fashion-MNIST directory (default: /usr/share/datasets/fashion-mnist).")
    var data: String?

    @Option(help: "Where trained models and the variants' files are written (and trained models looked for).")
    var models: String = ".quantkit-demo"

    @Option(help: "Only these models: mlp, cnn or both (comma-separated).")
    var only: String = "mlp,cnn"

    @Option(help: "Training images the static int8 model is calibrated on (default: 2048, --quick 512).")
    var calibrationImages: Int?

    @Flag(help: "Print each variant's module tree.")
    var showModels = false

    @Flag(help: "Only time the CNN's float model and its int8 operator chain stage by stage (batch 128) and exit.")
    var profileCNN = false

    @Option(help: "Timed runs per latency measurement (default: 15, --quick 7).")
    var repeats: Int?

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1, got \(threads)") }
        if let repeats, repeats < 1 { throw ValidationError("--repeats must be at least 1, got \(repeats)") }
        if let calibrationImages, calibrationImages < 1 {
            throw ValidationError("--calibration-images must be at least 1, got \(calibrationImages)")
        }
        for name in only.split(separator: ",") where DemoModel(rawValue: String(name)) == nil {
            throw ValidationError("--only takes mlp and/or cnn, got \(name)")
        }
    }

    func run() throws {
        try Runtime.initialize()
        let directory = data.map { URL(fileURLWithPath: $0, isDirectory: true) } ?? FashionMNIST.defaultDirectory
        let files = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                     "t10k-labels-idx1-ubyte.gz"]
        let missing = files.filter {
            !FileManager.default.fileExists(atPath: directory.appendingPathComponent($0).path)
        }
        guard missing.isEmpty else {
            var message = "error: Fashion-MNIST not found: \(directory.path) lacks \(missing.joined(separator: ", "))."
            message += data == nil
                ? " Install the Debian package: sudo apt-get install \(FashionMNIST.debianPackage) (or `make deps` "
                    + "as root), or pass --data DIR."
                : " --data must name a directory with the four gzipped IDX files."
            FileHandle.standardError.write(Data((message + "\n").utf8))
            throw ExitCode(2)
        }
        let train = try FashionMNIST.load(.train, from: directory, normalization: .fashionMNIST)
        let test = try FashionMNIST.load(.test, from: directory, normalization: .fashionMNIST)
        let repeats = self.repeats ?? (quick ? 7 : 15)
        if profileCNN {
            try Runtime.setNumberOfThreads(threads)
            Runtime.setBLASThreads(threads)
            var generator = RandomGenerator(seed: 0)
            let model = try ReferenceModels.cnn(imageSize: Size2d(FashionMNIST.imageSize), generator: &generator)
            var iterator = try DataLoader(test, batchSize: 128).makeIterator()
            try runCNNProfile(model: model, batch: iterator.next()!.inputs, repeats: repeats)
            return
        }
        let folder = URL(fileURLWithPath: models, isDirectory: true)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let settings = DemoSettings(quick: quick, threads: threads, repeats: repeats, folder: folder,
                                    showModels: showModels,
                                    calibrationImages: calibrationImages ?? (quick ? 512 : 2048))
        say("quantkit demo\(quick ? " --quick" : ""): Fashion-MNIST \(train.count) train / \(test.count) test; "
              + "QuantKit \(Runtime.version), ISA \(Runtime.isa), \(Runtime.cpuName); BLAS \(Runtime.blasName); "
              + "latency on \(threads) thread\(threads == 1 ? "" : "s"); load average \(loadAverage())")
        var reports: [DemoReport] = []
        for name in only.split(separator: ",") {
            let kind = DemoModel(rawValue: String(name))!
            reports.append(try DemoRun(kind: kind, settings: settings, train: train, test: test).run())
        }
        say("")
        say("Targets (issue 8):")
        for report in reports { for line in report.targets { say("  " + line) } }
    }
}

/// `print` and flush, so that the report's lines keep their place among the progress lines on standard error when
/// both go to one file.
func say(_ text: String) {
    print(text)
    fflush(nil)
}

/// `uptime`'s three load averages, or "?".
func loadAverage() -> String {
    var loads = [Double](repeating: 0, count: 3)
    guard getloadavg(&loads, 3) == 3 else { return "?" }
    return loads.map { String(format: "%.2f", $0) }.joined(separator: " ")
}

enum DemoModel: String, CaseIterable {
    case mlp, cnn

    var title: String { self == .mlp ? "MLP 784-256-128-10" : "CNN conv16-conv32-fc64" }

    func make() throws -> Sequential {
        var generator = RandomGenerator(seed: 0)
        switch self {
        case .mlp:
            return try ReferenceModels.mlp(inputFeatures: FashionMNIST.imageSize * FashionMNIST.imageSize,
                                           generator: &generator)
        case .cnn:
            return try ReferenceModels.cnn(imageSize: Size2d(FashionMNIST.imageSize), generator: &generator)
        }
    }

    /// The module groups that fuse (conv-bn-relu, linear-relu).
    var fusionGroups: [[String]] {
        switch self {
        case .mlp: return [["1", "2"], ["3", "4"]]
        case .cnn:
            return [["features.0", "features.1", "features.2"], ["features.4", "features.5", "features.6"],
                    ["classifier.0", "classifier.1"]]
        }
    }
}

struct DemoSettings {
    var quick: Bool
    var threads: Int
    var repeats: Int
    var folder: URL
    var showModels: Bool
    var calibrationImages: Int

    var epochs: Int { quick ? 1 : 5 }
    var qatEpochs: Int { quick ? 1 : 2 }
    /// Calibration batches of 64 training images.
    var calibrationBatches: Int { (calibrationImages + 63) / 64 }
    /// Training samples a QAT epoch sees (all of them; --quick 12000).
    var qatSamples: Int? { quick ? 12_000 : nil }
}

struct DemoReport {
    var targets: [String]
}

/// One model's variants: build, evaluate, save, time, print.
struct DemoRun {
    let kind: DemoModel
    let settings: DemoSettings
    let train: TensorDataset
    let test: TensorDataset

    struct Variant {
        var name: String
        var model: Module
        var accuracy = 0.0
        var predictions: [Int] = []
        var bytes = 0
        var single: [Double] = []
        var batch: [Double] = []
    }

    func run() throws -> DemoReport {
        say("")
        say("== \(kind.title) ==")
        let fp32 = try trainedModel()
        let state = fp32.stateDict()
        func fresh() throws -> Sequential {
            let model = try kind.make()
            try model.loadStateDict(state)
            return model
        }
        var variants: [Variant] = [Variant(name: "fp32", model: fp32)]

        let dynamicInt8 = try fresh()
        dynamicInt8.eval()
        try quantizeDynamic(dynamicInt8, dtype: .qint8)
        variants.append(Variant(name: "dynamic int8", model: dynamicInt8))

        let dynamicHalf = try fresh()
        dynamicHalf.eval()
        try quantizeDynamic(dynamicHalf, dtype: .float16)
        variants.append(Variant(name: "dynamic fp16", model: dynamicHalf))

        variants.append(Variant(name: "static int8", model: try staticInt8(try fresh())))
        variants.append(Variant(name: "QAT int8", model: try qat(try fresh())))

        if settings.showModels {
            for v in variants { say("\(v.name):\n\(v.model)") }
        }
        let testLoader = try DataLoader(test, batchSize: 1000)
        for i in variants.indices {
            let evaluation = try evaluate(variants[i].model, on: testLoader)
            variants[i].accuracy = evaluation.accuracy
            variants[i].predictions = evaluation.predictions
            let file = settings.folder.appendingPathComponent(
                "\(kind.rawValue)-\(variants[i].name.replacingOccurrences(of: " ", with: "-")).safetensors")
            try saveQuantizedModel(variants[i].model, to: file)
            variants[i].bytes = try fileSize(file)
        }
        try measureLatency(&variants)
        printTable(variants)
        return DemoReport(targets: targets(variants))
    }

    /// The fp32 model: loaded from the models folder when this many epochs were trained before, else trained and
    /// saved.
    private func trainedModel() throws -> Sequential {
        let model = try kind.make()
        let file = settings.folder.appendingPathComponent("\(kind.rawValue)-fp32-\(settings.epochs)ep.safetensors")
        if FileManager.default.fileExists(atPath: file.path) {
            try model.loadStateDict(contentsOf: file)
            say("fp32: loaded \(file.path) (delete it to train again)")
            return model
        }
        say("fp32: training \(settings.epochs) epoch\(settings.epochs == 1 ? "" : "s") (Adam lr 1e-3, batch 128)")
        let loader = try DataLoader(train, batchSize: 128, shuffle: true, generator: RandomGenerator(seed: 1))
        let trainer = Trainer(model: model, optimizer: try Adam(model.parameters(), learningRate: 1e-3))
        _ = try trainer.fit(loader, epochs: settings.epochs, batchCount: loader.count)
        try model.saveStateDict(to: file, metadata: ["dataset": "fashion-mnist", "model": kind.rawValue,
                                                     "epochs": "\(settings.epochs)"])
        return model
    }

    /// Post-training static quantization: fuse, wrap, x86 qconfig, calibrate, convert.
    private func staticInt8(_ model: Sequential) throws -> Module {
        model.eval()
        try fuseModules(model, kind.fusionGroups)
        model.qconfig = QConfig.defaultQConfig(backend: .x86)
        let wrapper = try QuantWrapper(model)
        wrapper.eval()
        try prepare(wrapper)
        let loader = try DataLoader(train, batchSize: 64, shuffle: true, generator: RandomGenerator(seed: 2))
        let bar = DemoProgress(title: "static int8: calibrating", total: settings.calibrationBatches)
        try Autograd.withNoGrad {
            var batches = 0
            for (inputs, _) in loader {
                _ = try wrapper(Variable(inputs))
                batches += 1
                bar.update(batches, detail: "\(batches * 64) images")
                if batches == settings.calibrationBatches { break }
            }
        }
        bar.finish()
        try convert(wrapper)
        return wrapper
    }

    /// Quantization-aware training: fuse for QAT, wrap, x86 QAT qconfig, fine-tune with fake quantization, convert.
    private func qat(_ model: Sequential) throws -> Module {
        model.train()
        try fuseModulesQAT(model, kind.fusionGroups)
        let qconfig = try QConfig.defaultQATQConfig(backend: .x86)
        model.qconfig = qconfig
        let wrapper = try QuantWrapper(model)
        wrapper.train()
        try prepareQAT(wrapper, config: qconfig)
        var data = train
        if let samples = settings.qatSamples {
            var generator = RandomGenerator(seed: 3)
            var order = Array(0..<train.count)
            order.shuffle(using: &generator)
            data = try train.subset(Array(order.prefix(samples)))
        }
        let loader = try DataLoader(data, batchSize: 128, shuffle: true, generator: RandomGenerator(seed: 4))
        say("QAT: fine-tuning \(settings.qatEpochs) epoch\(settings.qatEpochs == 1 ? "" : "s") on \(data.count) "
              + "images (Adam lr 1e-4, batch 128, fake quantization)")
        let trainer = Trainer(model: wrapper, optimizer: try Adam(wrapper.parameters(), learningRate: 1e-4))
        _ = try trainer.fit(loader, epochs: settings.qatEpochs, batchCount: loader.count)
        wrapper.eval()
        try convert(wrapper)
        return wrapper
    }

    /// Latency of one image and of a batch of 128, every variant in turn in each round (so load changes hit all
    /// alike), on the requested threads.
    private func measureLatency(_ variants: inout [Variant]) throws {
        let previousThreads = Runtime.numberOfThreads
        try Runtime.setNumberOfThreads(settings.threads)
        Runtime.setBLASThreads(settings.threads)
        defer {
            try? Runtime.setNumberOfThreads(previousThreads)
            Runtime.setBLASThreads(ProcessInfo.processInfo.activeProcessorCount)
        }
        let one = try test.batch(at: [0]).inputs
        let batch = try test.batch(at: Array(0..<128)).inputs
        let singleRuns = settings.repeats * 4
        let bar = DemoProgress(title: "timing", total: settings.repeats + 1)
        try Autograd.withNoGrad {
            for round in 0...settings.repeats {   // round 0 warms up
                for i in variants.indices {
                    let model = variants[i].model
                    var start = now()
                    for _ in 0..<singleRuns { _ = try model(Variable(one)) }
                    let single = (now() - start) / Double(singleRuns)
                    start = now()
                    _ = try model(Variable(batch))
                    let batched = now() - start
                    if round > 0 {
                        variants[i].single.append(single)
                        variants[i].batch.append(batched)
                    }
                }
                bar.update(round + 1, detail: "round \(round + 1)/\(settings.repeats + 1)")
            }
        }
        bar.finish()
    }

    private func printTable(_ variants: [Variant]) {
        let reference = variants[0]
        say("test accuracy on \(test.count) images; agreement = same prediction as fp32; size = the file "
              + "saveQuantizedModel writes; latency medians over \(settings.repeats) rounds, \(settings.threads) "
              + "thread\(settings.threads == 1 ? "" : "s"); load average \(loadAverage())")
        let header = ["variant", "accuracy", "agreement", "size (bytes)", "vs fp32", "1 image", "batch 128",
                      "b128 speedup"]
        var rows: [[String]] = []
        for v in variants {
            let agree = zip(v.predictions, reference.predictions).filter { $0 == $1 }.count
            rows.append([
                v.name, String(format: "%.2f%%", v.accuracy * 100),
                String(format: "%.2f%%", Double(agree) / Double(max(1, reference.predictions.count)) * 100),
                "\(v.bytes)", String(format: "%.3fx", Double(v.bytes) / Double(max(1, reference.bytes))),
                String(format: "%.3f ms", median(v.single) * 1000), String(format: "%.2f ms", median(v.batch) * 1000),
                String(format: "%.2fx", median(reference.batch) / max(median(v.batch), 1e-12)),
            ])
        }
        let widths = header.indices.map { c in max(header[c].count, rows.map { $0[c].count }.max() ?? 0) }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { c, text in
                c == 0 ? text.padding(toLength: widths[c], withPad: " ", startingAt: 0)
                    : String(repeating: " ", count: widths[c] - text.count) + text
            }.joined(separator: "  ")
        }
        say(line(header))
        say(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  "))
        for row in rows { say(line(row)) }
    }

    private func targets(_ variants: [Variant]) -> [String] {
        func named(_ name: String) -> Variant { variants.first { $0.name == name }! }
        let fp32 = named("fp32"), ptq = named("static int8"), qat = named("QAT int8")
        func agreement(_ v: Variant) -> Double {
            Double(zip(v.predictions, fp32.predictions).filter { $0 == $1 }.count) / Double(max(1, fp32.predictions.count))
        }
        func met(_ ok: Bool) -> String { ok ? "met" : "NOT met" }
        let model = kind.rawValue.uppercased()
        let drop = (fp32.accuracy - ptq.accuracy) * 100
        var lines = [
            // 0.30 pt is 30 of 10000 images: compared with a tolerance for the binary fractions.
            String(format: "%@ static PTQ accuracy %.2f%% vs fp32 %.2f%% (drop %.2f pt, target <= 0.30): %@", model,
                   ptq.accuracy * 100, fp32.accuracy * 100, drop, met(drop <= 0.3 + 1e-9)),
            String(format: "%@ static PTQ agreement with fp32 %.2f%% (target >= 98%%): %@", model,
                   agreement(ptq) * 100, met(agreement(ptq) >= 0.98)),
            String(format: "%@ QAT accuracy %.2f%% vs static PTQ %.2f%% (target QAT >= PTQ): %@", model,
                   qat.accuracy * 100, ptq.accuracy * 100, met(qat.accuracy >= ptq.accuracy)),
        ]
        // The int8 models: static and QAT (dynamic quantization keeps the convolutions in fp32).
        for v in [ptq, qat] {
            let ratio = Double(v.bytes) / Double(max(1, fp32.bytes))
            lines.append(String(format: "%@ %@ file %d bytes = %.3fx fp32's %d (target <= 0.27x): %@", model,
                                v.name, v.bytes, ratio, fp32.bytes, met(ratio <= 0.27)))
        }
        if kind == .cnn {
            let speedup = median(fp32.batch) / max(median(ptq.batch), 1e-12)
            lines.append(String(format: "CNN batch-128 static int8 %.2f ms vs fp32 %.2f ms = %.2fx, %d thread%@ "
                                + "(target >= 2x): %@", median(ptq.batch) * 1000, median(fp32.batch) * 1000,
                                speedup, settings.threads, settings.threads == 1 ? "" : "s", met(speedup >= 2)))
        }
        return lines
    }

    private func fileSize(_ url: URL) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.intValue ?? 0
    }
}

/// A progress bar on standard error for loops that are not training epochs (calibration, timing): redrawn in place
/// on a terminal, one line at the end otherwise, as `ProgressReporter` does for training.
final class DemoProgress {
    let title: String
    let total: Int
    private let terminal = isatty(2) != 0
    private let start = now()
    private var lastLength = 0
    private var lastDetail = ""

    init(title: String, total: Int) {
        self.title = title
        self.total = max(1, total)
    }

    func update(_ done: Int, detail: String) {
        lastDetail = detail
        guard terminal else { return }
        let width = 30, filled = min(width, done * width / total)
        let text = "\(title) [" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
            + "] \(done)/\(total) \(detail)"
        let padding = String(repeating: " ", count: max(0, lastLength - text.count))
        lastLength = text.count
        FileHandle.standardError.write(Data(("\r" + text + padding).utf8))
    }

    func finish() {
        let text = "\(title) done: \(lastDetail), " + String(format: "%.1f s", now() - start)
        let padding = String(repeating: " ", count: max(0, lastLength - text.count))
        FileHandle.standardError.write(Data(((terminal ? "\r" : "") + text + padding + "\n").utf8))
    }
}
