/// Samples (the rows of `inputs` along dimension 0) with one integer class label each.
///
/// PyTorch: `torch.utils.data.TensorDataset(inputs, labels)`; `dataset[i]` is `sample(at: i)`.
public struct TensorDataset: Sendable, Equatable {
    /// All samples, shape `[count, ...]` (images: `[count, channels, height, width]`).
    /// PyTorch: `dataset.tensors[0]`.
    public let inputs: Tensor<Float>
    /// One class label per sample. PyTorch: `dataset.tensors[1].tolist()`.
    public let labels: [Int]

    /// Pairs samples with labels.
    ///
    /// PyTorch: `TensorDataset(inputs, labels)`.
    /// - Throws: `DataError.inconsistentDataset` when `inputs` is rank 0 or its first dimension differs from
    ///   `labels.count` (PyTorch: `Size mismatch between tensors`).
    public init(inputs: Tensor<Float>, labels: [Int]) throws(DataError) {
        guard inputs.rank >= 1, inputs.shape[0] == labels.count else {
            throw .inconsistentDataset(reason: "inputs of shape \(inputs.shape) need a first dimension equal to the "
                                       + "\(labels.count) labels")
        }
        self.inputs = inputs
        self.labels = labels
    }

    /// The number of samples. PyTorch: `len(dataset)`.
    public var count: Int { labels.count }

    /// The shape of one sample (the input shape without its first dimension), e.g. `[1, 28, 28]`.
    ///
    /// PyTorch: `dataset[0][0].shape`.
    public var sampleShape: [Int] { Array(inputs.shape.dropFirst()) }

    /// The samples at `indices`, stacked in that order, and their labels.
    ///
    /// PyTorch: `default_collate([dataset[i] for i in indices])` (`inputs[indices]`, `labels[indices]`).
    /// - Throws: `DataError.invalidArgument` for an index outside `0..<count`.
    public func batch(at indices: [Int]) throws(DataError) -> (inputs: Tensor<Float>, labels: [Int]) {
        if let bad = indices.first(where: { $0 < 0 || $0 >= count }) {
            throw .invalidArgument(function: "TensorDataset.batch(at:)",
                                   reason: "index \(bad) is outside 0..<\(count)")
        }
        return gather(indices)
    }

    /// One sample (shape `sampleShape`) and its label.
    ///
    /// PyTorch: `dataset[index]`.
    /// - Throws: `DataError.invalidArgument` for an index outside `0..<count`.
    public func sample(at index: Int) throws(DataError) -> (input: Tensor<Float>, label: Int) {
        let (batch, labels) = try batch(at: [index])
        return (Tensor(storage: batch.storage, shape: sampleShape), labels[0])
    }

    /// The dataset restricted to `indices`, in that order.
    ///
    /// PyTorch: `torch.utils.data.Subset(dataset, indices)` (materialised).
    /// - Throws: `DataError.invalidArgument` for an index outside `0..<count`.
    public func subset(_ indices: [Int]) throws(DataError) -> TensorDataset {
        let (inputs, labels) = try batch(at: indices)
        return TensorDataset(validated: inputs, labels: labels)
    }

    init(validated inputs: Tensor<Float>, labels: [Int]) {
        self.inputs = inputs
        self.labels = labels
    }

    /// Copies the rows at `indices` (already validated).
    func gather(_ indices: [Int]) -> (inputs: Tensor<Float>, labels: [Int]) {
        let rowSize = sampleShape.reduce(1, *)
        let shape = [indices.count] + sampleShape
        let batch = inputs.withUnsafeBufferPointer { source in
            Tensor<Float>(uninitializedShape: shape, count: indices.count * rowSize) { target in
                for (row, index) in indices.enumerated() {
                    (target + row * rowSize).initialize(from: source.baseAddress! + index * rowSize, count: rowSize)
                }
            }
        }
        return (batch, indices.map { labels[$0] })
    }
}

/// Which part of a dataset to load.
///
/// PyTorch: the `train=True` / `train=False` argument of `torchvision.datasets.FashionMNIST`.
public enum DatasetSplit: String, Sendable, CaseIterable {
    /// The training samples. PyTorch: `train=True`.
    case train
    /// The held-out test samples. PyTorch: `train=False`.
    case test
}

/// How pixel values in `0...1` are normalised after loading.
///
/// PyTorch: `torchvision.transforms.Normalize(mean, std)` after `ToTensor()`.
public enum ImageNormalization: Sendable, Equatable {
    /// Pixels stay in `0...1`. PyTorch: `ToTensor()` alone.
    case none
    /// `(x - mean) / std`, in `Float` (subtract, then divide, as `Normalize` does).
    /// PyTorch: `transforms.Normalize((mean,), (std,))`.
    case standardize(mean: Float, std: Float)

    /// The statistics of the Fashion-MNIST training images that torchvision examples use:
    /// `Normalize((0.2860,), (0.3530,))`.
    public static let fashionMNIST = ImageNormalization.standardize(mean: 0.2860, std: 0.3530)

    func apply(_ x: Float) -> Float {
        switch self {
        case .none: return x
        case let .standardize(mean, std): return (x - mean) / std
        }
    }

    func validate(function: String) throws(DataError) {
        if case let .standardize(mean, std) = self, !(mean.isFinite && std.isFinite && std != 0) {
            throw .invalidArgument(function: function, reason: "normalisation needs a finite mean and a finite, "
                                   + "non-zero std, got mean \(mean), std \(std)")
        }
    }
}
