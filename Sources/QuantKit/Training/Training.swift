#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The results of one training epoch.
public struct EpochMetrics: Sendable, Equatable {
    /// 1-based epoch number.
    public var epoch: Int
    /// The mean training loss over the epoch's samples.
    public var loss: Double
    /// The fraction of training samples classified correctly (the model's predictions during training).
    public var accuracy: Double
    /// Samples seen.
    public var samples: Int
    /// Wall-clock seconds of the epoch (forward, backward and optimizer steps, data batching included).
    public var seconds: Double
    /// `samples / seconds`.
    public var samplesPerSecond: Double { seconds > 0 ? Double(samples) / seconds : 0 }
}

/// The results of evaluating a classifier.
public struct Evaluation: Sendable, Equatable {
    /// The fraction of samples whose predicted class (arg-max of the logits) is the label.
    public var accuracy: Double
    /// The mean cross-entropy loss.
    public var loss: Double
    /// The predicted class of every sample, in order.
    public var predictions: [Int]
    /// Samples evaluated.
    public var samples: Int { predictions.count }
    /// Wall-clock seconds.
    public var seconds: Double
}

/// Where training progress goes: a redrawn progress bar with loss and throughput on a terminal, plain lines
/// otherwise (logs, CI), or nothing.
///
/// PyTorch: no equivalent in torch itself; what `tqdm` does around a training loop.
public enum ProgressStyle: Sendable {
    /// A bar when standard error is a terminal (`isatty`), else lines.
    case automatic
    /// A bar redrawn in place (`\r`).
    case bar
    /// One line about every 10% of an epoch, and one per epoch.
    case lines
    /// Nothing.
    case silent
}

/// Reports training progress to standard error (or to `write`, for tests and custom logging).
public final class ProgressReporter {
    /// The resolved style: `.bar`, `.lines` or `.silent`.
    public let style: ProgressStyle
    private let write: (String) -> Void
    private var lastLength = 0

    /// `write` receives whole lines (`.lines`) or bar redraws starting with `\r` (`.bar`); by default, standard
    /// error.
    public init(style: ProgressStyle = .automatic, write: ((String) -> Void)? = nil) {
        switch style {
        case .automatic: self.style = isatty(2) != 0 ? .bar : .lines
        default: self.style = style
        }
        self.write = write ?? writeToStandardError
    }

    /// Called after every batch of an epoch with the running mean loss and throughput.
    func batch(epoch: Int, epochs: Int, batch: Int, batches: Int?, loss: Double, accuracy: Double,
               samplesPerSecond: Double) {
        switch style {
        case .bar:
            let head = "epoch \(epoch)/\(epochs) "
            var bar = ""
            if let batches, batches > 0 {
                let width = 30
                let filled = min(width, batch * width / batches)
                bar = "[" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
                    + "] \(batch)/\(batches) "
            } else {
                bar = "\(batch) batches "
            }
            let text = head + bar + "loss \(Self.format(loss, 4)) acc \(Self.format(accuracy * 100, 1))% "
                + "\(Int(samplesPerSecond.rounded())) samples/s"
            let padding = String(repeating: " ", count: max(0, lastLength - text.count))
            lastLength = text.count
            write("\r" + text + padding)
        case .lines:
            let every = batches.map { max(1, $0 / 10) } ?? 100
            guard batch % every == 0, batch != batches else { return }
            let of = batches.map { "/\($0)" } ?? ""
            write("epoch \(epoch)/\(epochs) batch \(batch)\(of) loss \(Self.format(loss, 4)) "
                  + "acc \(Self.format(accuracy * 100, 1))% \(Int(samplesPerSecond.rounded())) samples/s\n")
        case .automatic, .silent:
            break
        }
    }

    /// Called once per epoch with its totals.
    func epochEnded(_ metrics: EpochMetrics, epochs: Int) {
        let text = "epoch \(metrics.epoch)/\(epochs) done: loss \(Self.format(metrics.loss, 4)) "
            + "acc \(Self.format(metrics.accuracy * 100, 2))% \(Self.format(metrics.seconds, 1)) s "
            + "\(Int(metrics.samplesPerSecond.rounded())) samples/s"
        switch style {
        case .bar:
            let padding = String(repeating: " ", count: max(0, lastLength - text.count))
            lastLength = 0
            write("\r" + text + padding + "\n")
        case .lines:
            write(text + "\n")
        case .automatic, .silent:
            break
        }
    }

    /// `value` with `digits` decimals (no Foundation needed).
    static func format(_ value: Double, _ digits: Int) -> String {
        guard value.isFinite else { return "\(value)" }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let scaled = (abs(value) * scale).rounded()
        let whole = Int(scaled / scale)
        let fraction = Int(scaled - Double(whole) * scale)
        let sign = value < 0 && scaled != 0 ? "-" : ""
        guard digits > 0 else { return sign + "\(whole)" }
        let fractionText = String(fraction)
        return sign + "\(whole)." + String(repeating: "0", count: max(0, digits - fractionText.count)) + fractionText
    }
}

/// Writes `text` to file descriptor 2 unbuffered (progress must show before the next batch finishes).
func writeToStandardError(_ text: String) {
    var text = text
    text.withUTF8 { bytes in
        var offset = 0
        while offset < bytes.count {
            let written = write(2, bytes.baseAddress! + offset, bytes.count - offset)
            if written <= 0 { return }
            offset += written
        }
    }
}

/// Monotonic wall-clock seconds.
func monotonicSeconds() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
}

/// Trains a classifier: epochs of forward, loss, backward and optimizer steps over mini-batches, with progress
/// reporting.
///
/// PyTorch: the usual hand-written loop,
/// ```python
/// model.train()
/// for x, y in loader:
///     optimizer.zero_grad(); loss = criterion(model(x), y); loss.backward(); optimizer.step()
/// ```
public final class Trainer {
    /// The model being trained.
    public let model: Module
    /// The optimizer (built over `model.parameters()`).
    public let optimizer: any Optimizer
    /// The loss of a batch from its logits and labels; cross-entropy by default.
    public var loss: (Variable, [Int]) throws -> Variable
    /// Where progress goes.
    public let reporter: ProgressReporter

    /// PyTorch: the objects of a training loop (`model`, `optimizer`, `criterion`).
    public init(model: Module, optimizer: any Optimizer,
                loss: @escaping (Variable, [Int]) throws -> Variable = { try Functional.crossEntropy($0, targets: $1) },
                progress: ProgressStyle = .automatic) {
        self.model = model
        self.optimizer = optimizer
        self.loss = loss
        reporter = ProgressReporter(style: progress)
    }

    /// PyTorch: as above, with a custom progress reporter.
    public init(model: Module, optimizer: any Optimizer,
                loss: @escaping (Variable, [Int]) throws -> Variable = { try Functional.crossEntropy($0, targets: $1) },
                reporter: ProgressReporter) {
        self.model = model
        self.optimizer = optimizer
        self.loss = loss
        self.reporter = reporter
    }

    /// One epoch in training mode over `batches` (e.g. a `DataLoader`), `batchCount` batches if known (for the
    /// progress bar). Returns the epoch's mean loss, accuracy and time.
    ///
    /// PyTorch: one pass of the loop above.
    /// - Throws: whatever the model, the loss, backward or the optimizer throws.
    public func trainEpoch<S: Sequence>(
        _ batches: S, epoch: Int = 1, of epochs: Int = 1, batchCount: Int? = nil
    ) throws -> EpochMetrics where S.Element == (inputs: Tensor<Float>, labels: [Int]) {
        model.train()
        let start = monotonicSeconds()
        var lossSum = 0.0, correct = 0, samples = 0, batch = 0
        for (inputs, labels) in batches {
            optimizer.zeroGrad()
            let logits = try model(Variable(inputs))
            let value = try loss(logits, labels)
            try value.backward()
            try optimizer.step()
            let batchLoss = Double(try value.item())
            lossSum += batchLoss * Double(labels.count)
            if let scores = logits.tensor {
                correct += zip(argmaxRows(scores), labels).filter { $0 == $1 }.count
            }
            samples += labels.count
            batch += 1
            let elapsed = monotonicSeconds() - start
            reporter.batch(epoch: epoch, epochs: epochs, batch: batch, batches: batchCount,
                           loss: lossSum / Double(max(samples, 1)), accuracy: Double(correct) / Double(max(samples, 1)),
                           samplesPerSecond: elapsed > 0 ? Double(samples) / elapsed : 0)
        }
        let metrics = EpochMetrics(epoch: epoch, loss: lossSum / Double(max(samples, 1)),
                                   accuracy: Double(correct) / Double(max(samples, 1)), samples: samples,
                                   seconds: monotonicSeconds() - start)
        reporter.epochEnded(metrics, epochs: epochs)
        return metrics
    }

    /// `epochs` epochs over `batches` (a `DataLoader` reshuffles at every pass). Returns every epoch's metrics.
    /// - Throws: as `trainEpoch`.
    public func fit<S: Sequence>(_ batches: S, epochs: Int, batchCount: Int? = nil) throws -> [EpochMetrics]
        where S.Element == (inputs: Tensor<Float>, labels: [Int])
    {
        try (1...max(1, epochs)).map { try trainEpoch(batches, epoch: $0, of: epochs, batchCount: batchCount) }
    }
}

/// Evaluates a classifier in evaluation mode without recording gradients: accuracy, mean cross-entropy and the
/// predicted class of every sample. The model's training flag is restored afterwards.
///
/// PyTorch: `model.eval(); with torch.no_grad(): ...` over a test loader, `logits.argmax(1)`.
/// - Throws: whatever the model or the loss throws.
public func evaluate<S: Sequence>(_ model: Module, on batches: S) throws -> Evaluation
    where S.Element == (inputs: Tensor<Float>, labels: [Int])
{
    let wasTraining = model.training
    model.eval()
    defer { model.train(wasTraining) }
    let start = monotonicSeconds()
    return try Autograd.withNoGrad {
        var predictions: [Int] = []
        var correct = 0, lossSum = 0.0
        for (inputs, labels) in batches {
            let logits = try model(Variable(inputs))
            let scores = try logits.floatTensor(for: "evaluate")
            let predicted = argmaxRows(scores)
            correct += zip(predicted, labels).filter { $0 == $1 }.count
            lossSum += Double(try Functional.crossEntropy(logits, targets: labels, reduction: .sum).item())
            predictions += predicted
        }
        let n = Double(max(predictions.count, 1))
        return Evaluation(accuracy: Double(correct) / n, loss: lossSum / n, predictions: predictions,
                          seconds: monotonicSeconds() - start)
    }
}

/// The index of the largest element of each row of `[N, C]` scores (the first of equal maxima, as `argmax`).
func argmaxRows(_ scores: Tensor<Float>) -> [Int] {
    guard scores.rank == 2, scores.shape[1] > 0 else { return [] }
    let (n, c) = (scores.shape[0], scores.shape[1])
    return scores.withUnsafeBufferPointer { s in
        (0..<n).map { row in
            var best = 0
            for j in 1..<c where s[row * c + j] > s[row * c + best] { best = j }
            return best
        }
    }
}
