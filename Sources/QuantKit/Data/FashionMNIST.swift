#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Fashion-MNIST: 60,000 training and 10,000 test grey 28x28 images of clothing in 10 classes, read from the four
/// gzipped IDX files. Nothing is downloaded: on Debian the files come from the package `dataset-fashion-mnist`.
///
/// PyTorch: `torchvision.datasets.FashionMNIST(root, train=..., transform=ToTensor())`.
public enum FashionMNIST {
    /// Where Debian's `dataset-fashion-mnist` installs the files: `/usr/share/datasets/fashion-mnist`.
    ///
    /// PyTorch: the `root` argument (torchvision looks in `root/FashionMNIST/raw`).
    public static let defaultDirectory = URL(fileURLWithPath: "/usr/share/datasets/fashion-mnist", isDirectory: true)

    /// The Debian package that provides the files. PyTorch: none (torchvision downloads them with `download=True`).
    public static let debianPackage = "dataset-fashion-mnist"

    /// The class names, indexed by label. PyTorch: `FashionMNIST.classes`.
    public static let classNames = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                                    "Sneaker", "Bag", "Ankle boot"]

    /// Image height and width. PyTorch: `dataset.data.shape[1:]`.
    public static let imageSize = 28

    /// Loads one split as images `[N, 1, 28, 28]` (pixels `byte / 255`, then `normalization`) and labels `0..<10`.
    ///
    /// PyTorch: `FashionMNIST(root, train=(split == .train), transform=Compose([ToTensor(), Normalize(...)]))`,
    /// stacked; `normalization: .fashionMNIST` is `Normalize((0.2860,), (0.3530,))`. Pixel values are bit-identical
    /// with torchvision's (`ToTensor` divides by 255 in float32, `Normalize` subtracts then divides).
    /// - Throws: `DataError.fileNotFound` naming the Debian package when the files are missing, `.invalidIDX` /
    ///   gzip errors for damaged files, `.inconsistentDataset` when images and labels do not fit together (counts,
    ///   28x28 size, labels >= 10), `.invalidArgument` for a normalisation with a zero or non-finite std.
    public static func load(
        _ split: DatasetSplit, from directory: URL = defaultDirectory, normalization: ImageNormalization = .none
    ) throws(DataError) -> TensorDataset {
        try normalization.validate(function: "FashionMNIST.load")
        let hint = "install the Debian package \(debianPackage) (apt-get install \(debianPackage)) or pass the "
            + "directory that holds the four Fashion-MNIST IDX files"
        guard FileManager.default.fileExists(atPath: directory.path) else {
            throw .fileNotFound(path: directory.path, hint: hint)
        }
        let prefix = split == .train ? "train" : "t10k"
        let images = try IDXArray(contentsOf: file(directory, "\(prefix)-images-idx3-ubyte", hint: hint))
        let labels = try IDXArray(contentsOf: file(directory, "\(prefix)-labels-idx1-ubyte", hint: hint))
        return try dataset(images: images, labels: labels, normalization: normalization)
    }

    /// Builds the dataset from parsed IDX arrays (images `[N, 28, 28]` uint8, labels `[N]` uint8 below 10).
    ///
    /// PyTorch: `FashionMNIST._load_data()` followed by `ToTensor()` (and `Normalize`).
    /// - Throws: `DataError.inconsistentDataset` for other dtypes or shapes, differing counts or labels >= 10;
    ///   `.invalidArgument` for a normalisation with a zero or non-finite std.
    public static func dataset(images: IDXArray, labels: IDXArray, normalization: ImageNormalization = .none)
        throws(DataError) -> TensorDataset
    {
        try normalization.validate(function: "FashionMNIST.dataset")
        let size = imageSize
        guard images.dtype == .uint8, images.shape.count == 3, images.shape[1] == size, images.shape[2] == size else {
            throw .inconsistentDataset(reason: "Fashion-MNIST images must be uint8 [N, \(size), \(size)], got "
                                       + "\(images.dtype) \(images.shape)")
        }
        guard labels.dtype == .uint8, labels.shape.count == 1, labels.shape[0] == images.shape[0] else {
            throw .inconsistentDataset(reason: "Fashion-MNIST labels must be uint8 [\(images.shape[0])] to match the "
                                       + "images, got \(labels.dtype) \(labels.shape)")
        }
        let labelValues = labels.payload.map { Int($0) }
        if let bad = labelValues.firstIndex(where: { $0 >= classNames.count }) {
            throw .inconsistentDataset(reason: "label \(labelValues[bad]) of sample \(bad) is outside 0..<10")
        }
        let inputs = pixels(images.payload, shape: [images.shape[0], 1, size, size], normalization: normalization)
        return TensorDataset(validated: inputs, labels: labelValues)
    }

    /// `name.gz` if present, else the uncompressed `name` if present, else `name.gz` (for the error message).
    private static func file(_ directory: URL, _ name: String, hint: String) -> URL {
        let gzipped = directory.appendingPathComponent(name + ".gz")
        let plain = directory.appendingPathComponent(name)
        if !FileManager.default.fileExists(atPath: gzipped.path) && FileManager.default.fileExists(atPath: plain.path) {
            return plain
        }
        return gzipped
    }

    /// Bytes to `byte / 255` then `normalization`, through a 256-entry table (same bits as converting each one).
    static func pixels(_ bytes: [UInt8], shape: [Int], normalization: ImageNormalization) -> Tensor<Float> {
        let table = (0..<256).map { normalization.apply(Float($0) / 255) }
        return Tensor(uninitializedShape: shape, count: bytes.count) { target in
            for i in bytes.indices { target[i] = table[Int(bytes[i])] }
        }
    }
}
