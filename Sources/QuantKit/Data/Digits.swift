#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The UCI optical-recognition digits as scikit-learn ships them: 1797 rows of 64 pixel values `0...16` (an 8x8
/// image) followed by the label `0...9`, comma-separated, no header; plain or gzipped CSV.
///
/// PyTorch: `sklearn.datasets.load_digits()` turned into `TensorDataset(torch.tensor(X / 16).view(-1, 1, 8, 8), y)`.
public enum Digits {
    /// Image height and width. scikit-learn: `load_digits().images.shape[1:]`.
    public static let imageSize = 8
    /// Values per row: 64 pixels and the label. scikit-learn: `load_digits().data.shape[1] + 1`.
    public static let columnCount = 65
    /// The largest pixel value; images are divided by it. scikit-learn: `load_digits().data.max()`.
    public static let maximumPixel = 16

    /// Loads every row as images `[N, 1, 8, 8]` (pixels `value / 16`, exact) and labels `0...9`.
    ///
    /// PyTorch: `load_digits()` as above.
    /// - Throws: `DataError.fileNotFound` / `.readFailed`, gzip errors, `.invalidCSV` naming the line of a row
    ///   that has not 65 integers, or a pixel outside `0...16`, or a label outside `0...9`.
    public static func load(contentsOf url: URL) throws(DataError) -> TensorDataset {
        try parse(DataFiles.readMaybeGzipped(url))
    }

    /// Loads one split: rows whose index is a multiple of 5 (`index % 5 == 0`) are the test set (360 of 1797), the
    /// others the training set (1437).
    ///
    /// PyTorch: `X[i % 5 == 0]` / `X[i % 5 != 0]`, the split of QuantKit's reference accuracies.
    /// - Throws: as `load(contentsOf:)`.
    public static func load(_ split: DatasetSplit, contentsOf url: URL) throws(DataError) -> TensorDataset {
        let (train, test) = trainTestSplit(try load(contentsOf: url))
        return split == .train ? train : test
    }

    /// Splits a dataset: index `% 5 == 0` -> test, others -> train, order kept.
    ///
    /// PyTorch: `Subset(dataset, [i for i in range(n) if i % 5 != 0])` and the complement.
    public static func trainTestSplit(_ dataset: TensorDataset) -> (train: TensorDataset, test: TensorDataset) {
        let indices = Array(0..<dataset.count)
        let train = dataset.gather(indices.filter { $0 % 5 != 0 })
        let test = dataset.gather(indices.filter { $0 % 5 == 0 })
        return (TensorDataset(validated: train.inputs, labels: train.labels),
                TensorDataset(validated: test.inputs, labels: test.labels))
    }

    /// Parses the CSV text (plain or gzipped bytes). Lines may end in `\n` or `\r\n`; blank lines are skipped.
    ///
    /// PyTorch: `numpy.loadtxt(path, delimiter=",")` followed by the conversion of `load(contentsOf:)`.
    /// - Throws: `DataError.invalidCSV` naming the line, gzip errors for gzipped input.
    public static func parse(_ bytes: [UInt8]) throws(DataError) -> TensorDataset {
        let text = Gzip.isGzip(bytes) ? try Gzip.decompress(bytes) : bytes
        var pixels: [UInt8] = []
        var labels: [Int] = []
        var row: [Int] = []
        row.reserveCapacity(columnCount)
        var line = 1
        var value = 0
        var digits = 0

        func endField() throws(DataError) {
            guard digits > 0 else {
                throw .invalidCSV(line: line, reason: "field \(row.count + 1) is empty or not a non-negative integer")
            }
            guard row.count < columnCount else {
                throw .invalidCSV(line: line, reason: "more than \(columnCount) fields (64 pixels and a label)")
            }
            row.append(value)
            value = 0
            digits = 0
        }
        func endRow() throws(DataError) {
            if row.isEmpty && digits == 0 { return }  // blank line
            try endField()
            guard row.count == columnCount else {
                throw .invalidCSV(line: line, reason: "\(row.count) fields; expected \(columnCount) (64 pixels and a "
                                  + "label)")
            }
            if let bad = row.prefix(64).firstIndex(where: { $0 > maximumPixel }) {
                throw .invalidCSV(line: line, reason: "pixel \(bad) is \(row[bad]); expected 0...\(maximumPixel)")
            }
            guard row[64] <= 9 else { throw .invalidCSV(line: line, reason: "label \(row[64]); expected 0...9") }
            pixels.append(contentsOf: row.prefix(64).map { UInt8($0) })
            labels.append(row[64])
            row.removeAll(keepingCapacity: true)
        }

        var index = 0
        while index < text.count {
            let byte = text[index]
            index += 1
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                // Values above 9999 are out of range anyway; stop accumulating before Int could overflow.
                guard digits < 5 else {
                    throw .invalidCSV(line: line, reason: "number too long in field \(row.count + 1)")
                }
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
                digits += 1
            case UInt8(ascii: ","):
                try endField()
            case UInt8(ascii: "\n"):
                try endRow()
                line += 1
            case UInt8(ascii: "\r") where index < text.count && text[index] == UInt8(ascii: "\n"):
                continue
            default:
                throw .invalidCSV(line: line, reason: "unexpected byte 0x\(String(hexByte: byte)) in field "
                                  + "\(row.count + 1); expected digits and commas")
            }
        }
        try endRow()
        let shape = [labels.count, 1, imageSize, imageSize]
        let inputs = Tensor<Float>(uninitializedShape: shape, count: pixels.count) { target in
            for i in pixels.indices { target[i] = Float(pixels[i]) / Float(maximumPixel) }
        }
        return TensorDataset(validated: inputs, labels: labels)
    }
}
