/// Iterates over a dataset in mini-batches, optionally reshuffled every epoch by a seeded generator.
///
/// PyTorch: `torch.utils.data.DataLoader(dataset, batch_size, shuffle, drop_last=..., generator=g)` with the
/// default collate function (single process). Like PyTorch's, a loader is a reference type: every `for` loop over
/// it (every `makeIterator()`) is a new epoch that draws a new order from the loader's generator, so epoch `k` of
/// two loaders built with the same seed visits the samples in the same order.
///
/// ```swift
/// let loader = try DataLoader(train, batchSize: 64, shuffle: true, generator: RandomGenerator(seed: 0))
/// for epoch in 0..<3 {
///     for (images, labels) in loader { ... }   // images: [64, 1, 28, 28] (the last batch may be smaller)
/// }
/// ```
public final class DataLoader: Sequence {
    /// One batch: the stacked samples (`[batchSize, ...]`) and their labels.
    /// PyTorch: the `(inputs, labels)` pair `default_collate` returns.
    public typealias Batch = (inputs: Tensor<Float>, labels: [Int])

    /// The dataset the batches come from. PyTorch: `loader.dataset`.
    public let dataset: TensorDataset
    /// Samples per batch. PyTorch: `loader.batch_size`.
    public let batchSize: Int
    /// Whether every epoch visits the samples in a new random order. PyTorch: `shuffle=True`.
    public let shuffle: Bool
    /// Whether a last batch smaller than `batchSize` is dropped. PyTorch: `drop_last`.
    public let dropLast: Bool
    /// The generator the next epoch's order is drawn from (advanced once per shuffled epoch).
    /// PyTorch: `loader.generator`.
    public private(set) var generator: RandomGenerator

    /// A loader over `dataset`.
    ///
    /// PyTorch: `DataLoader(dataset, batch_size=batchSize, shuffle=shuffle, drop_last=dropLast, generator=g)`.
    /// - Throws: `DataError.invalidArgument` when `batchSize < 1` (PyTorch: `ValueError: batch_size should be a
    ///   positive integer value`).
    public init(
        _ dataset: TensorDataset, batchSize: Int = 1, shuffle: Bool = false, dropLast: Bool = false,
        generator: RandomGenerator = RandomGenerator(seed: 0)
    ) throws(DataError) {
        guard batchSize >= 1 else {
            throw .invalidArgument(function: "DataLoader.init", reason: "batch size must be >= 1, got \(batchSize)")
        }
        self.dataset = dataset
        self.batchSize = batchSize
        self.shuffle = shuffle
        self.dropLast = dropLast
        self.generator = generator
    }

    /// The number of batches per epoch. PyTorch: `len(loader)`.
    public var count: Int {
        dataset.count / batchSize + (!dropLast && dataset.count % batchSize > 0 ? 1 : 0)
    }

    /// Starts an epoch: draws the sample order (when shuffling) and returns an iterator over its batches.
    ///
    /// PyTorch: `iter(loader)`.
    public func makeIterator() -> Iterator {
        var order = Array(0..<dataset.count)
        if shuffle { generator.shuffle(&order) }
        return Iterator(dataset: dataset, order: order, batchSize: batchSize, dropLast: dropLast)
    }

    /// The batches of one epoch.
    ///
    /// PyTorch: the `_SingleProcessDataLoaderIter` that `iter(loader)` returns.
    public struct Iterator: IteratorProtocol, Sendable {
        let dataset: TensorDataset
        /// The sample indices of this epoch in visiting order. PyTorch: the sampler's indices.
        public let order: [Int]
        let batchSize: Int
        let dropLast: Bool
        var position = 0

        /// The next batch, or nil at the end of the epoch. PyTorch: `next(iterator)`.
        public mutating func next() -> Batch? {
            let remaining = order.count - position
            guard remaining > 0, !(dropLast && remaining < batchSize) else { return nil }
            let size = Swift.min(batchSize, remaining)
            let indices = Array(order[position..<(position + size)])
            position += size
            return dataset.gather(indices)
        }
    }
}
