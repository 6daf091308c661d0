/// An error thrown while reading a dataset file (gzip, IDX, CSV), building a data loader, or drawing random tensors.
/// Every description says what was wrong and what was expected.
///
/// PyTorch: the `RuntimeError` / `ValueError` / `OSError` raised by `torchvision.datasets.FashionMNIST`,
/// `gzip.decompress`, `torch.utils.data.DataLoader` and `torch.Generator`-driven functions such as `torch.bernoulli`.
public enum DataError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A file or directory does not exist. `hint` says how to get it (e.g. the Debian package), if known.
    ///
    /// PyTorch: `RuntimeError: Dataset not found. You can use download=True to download it`.
    case fileNotFound(path: String, hint: String?)

    /// A file exists but could not be read (or written).
    ///
    /// PyTorch: `OSError` / `PermissionError`.
    case readFailed(path: String, reason: String)

    /// A gzip stream is corrupt: bad magic bytes, a bad deflate block, a CRC or length mismatch, or trailing bytes
    /// that are not another gzip member.
    ///
    /// Python: `gzip.BadGzipFile` / `zlib.error`.
    case invalidGzip(reason: String)

    /// A gzip stream ends before its last block and trailer.
    ///
    /// Python: `EOFError: Compressed file ended before the end-of-stream marker was reached`.
    case truncatedGzip

    /// A gzip stream decompresses to more than the allowed number of bytes (a guard against decompression bombs).
    ///
    /// Python: no equivalent (`gzip.decompress` has no limit).
    case decompressedSizeLimit(limit: Int)

    /// An IDX file (the MNIST / Fashion-MNIST format) is malformed: bad magic, unknown dtype code, or a data size
    /// that does not match the dimensions.
    ///
    /// PyTorch: the assertions of `torchvision.datasets.mnist.read_sn3_pascalvincent_tensor`.
    case invalidIDX(reason: String)

    /// A CSV row is malformed. `line` counts from 1.
    ///
    /// Python: `ValueError` from `numpy.loadtxt` / `csv`.
    case invalidCSV(line: Int, reason: String)

    /// The files of a dataset do not fit together, e.g. image and label counts differ or a label is out of range.
    ///
    /// PyTorch: the checks of `torchvision.datasets.MNIST._check_exists` / `TensorDataset`'s
    /// `Size mismatch between tensors`.
    case inconsistentDataset(reason: String)

    /// An argument is out of range, e.g. a batch size < 1, a probability outside `0...1`, an empty or non-finite
    /// interval, a negative shape dimension, or an index outside a dataset. `function` names the API.
    ///
    /// PyTorch: `ValueError: batch_size should be a positive integer value`,
    /// `RuntimeError: bernoulli_ expects p to be in [0, 1]`.
    case invalidArgument(function: String, reason: String)

    /// What went wrong and what was expected, in one sentence. PyTorch: `str(error)`.
    public var description: String {
        switch self {
        case let .fileNotFound(path, hint):
            return "no such file or directory: \(path)" + (hint.map { "; \($0)" } ?? "")
        case let .readFailed(path, reason):
            return "cannot read \(path): \(reason)"
        case let .invalidGzip(reason):
            return "invalid gzip data: \(reason)"
        case .truncatedGzip:
            return "gzip data is truncated: the stream ends before its end-of-stream marker and trailer"
        case let .decompressedSizeLimit(limit):
            return "gzip data decompresses to more than \(limit) bytes; raise maximumSize if the file is genuine"
        case let .invalidIDX(reason):
            return "invalid IDX file: \(reason)"
        case let .invalidCSV(line, reason):
            return "invalid CSV at line \(line): \(reason)"
        case let .inconsistentDataset(reason):
            return "inconsistent dataset: \(reason)"
        case let .invalidArgument(function, reason):
            return "\(function): \(reason)"
        }
    }
}
