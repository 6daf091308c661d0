/// An error thrown while reading, writing or querying a safetensors file. Every description says what was wrong and
/// what was expected.
///
/// PyTorch: the `SafetensorError` of `safetensors.torch.load_file` / `save_file` (`HeaderTooSmall`,
/// `HeaderTooLarge`, `InvalidHeaderDeserialization`, `InvalidOffset`, `TensorInvalidInfo`,
/// `MetadataIncompleteBuffer`, ...) and the `RuntimeError` of `Module.load_state_dict` (missing / unexpected keys,
/// size mismatch).
public enum SerializationError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file is shorter than the 8-byte header length. safetensors: `HeaderTooSmall`.
    case fileTooSmall(byteCount: Int)

    /// The header length exceeds the limit (100,000,000 bytes by default, as the reference implementation).
    /// safetensors: `HeaderTooLarge`.
    case headerTooLarge(length: UInt64, limit: Int)

    /// The header length points past the end of the file. safetensors: `InvalidHeaderLength`.
    case headerOutOfBounds(length: UInt64, fileSize: Int)

    /// The JSON header is not valid UTF-8, not valid JSON, or not the expected structure. `offset` is the byte
    /// offset inside the header. safetensors: `InvalidHeader`, `InvalidHeaderStart`, `InvalidHeaderDeserialization`.
    case invalidHeader(offset: Int, reason: String)

    /// The same tensor name (or `__metadata__`) appears twice in the header.
    /// safetensors: none (the reference keeps the last entry); QuantKit refuses the ambiguity.
    case duplicateName(String)

    /// A dtype string that is unknown or that QuantKit cannot store (the sub-byte `F4`, `F6_*`).
    /// safetensors: `InvalidHeaderDeserialization` for unknown variants.
    case unsupportedDType(tensor: String, dtype: String)

    /// A tensor's shape and dtype need another byte count than its offsets give, or overflow.
    /// safetensors: `TensorInvalidInfo`, `ValidationOverflow`.
    case invalidTensorInfo(tensor: String, reason: String)

    /// A tensor's offsets are reversed, outside the data buffer, or overlap or leave a gap before another tensor.
    /// safetensors: `InvalidOffset`.
    case invalidOffsets(tensor: String, reason: String)

    /// The tensors do not cover the data buffer up to its end (trailing bytes).
    /// safetensors: `MetadataIncompleteBuffer`.
    case incompleteBuffer(covered: Int, bufferSize: Int)

    /// No tensor has this name. PyTorch: `KeyError` / the `missing_keys` of `load_state_dict`.
    case tensorNotFound(name: String, available: [String])

    /// A tensor holds another dtype than the one asked for (names as in safetensors, e.g. `F16` vs `F32`).
    /// PyTorch: `RuntimeError: expected scalar type Float but found Half`.
    case dtypeMismatch(tensor: String, expected: String, actual: String)

    /// A tensor has another shape than the one expected.
    /// PyTorch: `size mismatch for fc1.weight: copying a param with shape torch.Size([64, 784]) from checkpoint, the
    /// shape in current model is torch.Size([128, 784])`.
    case shapeMismatch(tensor: String, expected: [Int], actual: [Int])

    /// The names do not match the expected set exactly.
    /// PyTorch: `load_state_dict(strict=True)`'s `Missing key(s) in state_dict` / `Unexpected key(s) in state_dict`.
    case keyMismatch(missing: [String], unexpected: [String])

    /// A tensor cannot be stored: its byte count does not match its shape and dtype, a dimension is negative, or
    /// its name is the reserved `__metadata__`. safetensors: `InvalidTensorView`.
    case invalidTensor(name: String, reason: String)

    /// Reading or writing the file failed. PyTorch: `OSError` / `FileNotFoundError`.
    case io(path: String, reason: String)

    /// A quantized model file (`saveQuantizedModel` / `loadQuantizedModel`) whose module records are malformed or do
    /// not fit: bad JSON, an unknown module type, a missing or invalid setting, a tree that differs from the
    /// architecture. `module` is the dotted path concerned (`""`: the file or the root).
    /// PyTorch: none (a converted eager-mode model cannot be pickled, pytorch/pytorch#69426).
    case invalidModelArchive(module: String, reason: String)

    /// What went wrong and what was expected, in one sentence. PyTorch: `str(error)`.
    public var description: String {
        switch self {
        case let .fileTooSmall(byteCount):
            return "safetensors data of \(byteCount) bytes is shorter than the 8-byte header length"
        case let .headerTooLarge(length, limit):
            return "safetensors header length \(length) exceeds the limit of \(limit) bytes"
        case let .headerOutOfBounds(length, fileSize):
            return "safetensors header length \(length) points past the end of the \(fileSize)-byte file "
                + "(truncated file?)"
        case let .invalidHeader(offset, reason):
            return "invalid safetensors header at byte \(offset) of the JSON: \(reason)"
        case let .duplicateName(name):
            return "safetensors header names \"\(name)\" twice; expected unique names"
        case let .unsupportedDType(tensor, dtype):
            return "tensor \"\(tensor)\" has dtype \"\(dtype)\", which is unknown or unsupported; expected one of "
                + SafeTensors.DType.allCases.map(\.rawValue).joined(separator: ", ")
        case let .invalidTensorInfo(tensor, reason):
            return "tensor \"\(tensor)\": \(reason)"
        case let .invalidOffsets(tensor, reason):
            return "tensor \"\(tensor)\" has invalid data_offsets: \(reason)"
        case let .incompleteBuffer(covered, bufferSize):
            return "the tensors cover \(covered) bytes of the \(bufferSize)-byte data buffer; expected them to cover "
                + "it exactly"
        case let .tensorNotFound(name, available):
            let shown = available.prefix(10).map { "\"\($0)\"" }.joined(separator: ", ")
            let more = available.count > 10 ? ", ... (\(available.count) in all)" : ""
            return "no tensor named \"\(name)\"; available: " + (available.isEmpty ? "none" : shown + more)
        case let .dtypeMismatch(tensor, expected, actual):
            return "tensor \"\(tensor)\" holds \(actual) values; expected \(expected)"
        case let .shapeMismatch(tensor, expected, actual):
            return "tensor \"\(tensor)\" has shape \(actual); expected \(expected)"
        case let .keyMismatch(missing, unexpected):
            var parts: [String] = []
            if !missing.isEmpty { parts.append("missing key(s): " + missing.joined(separator: ", ")) }
            if !unexpected.isEmpty { parts.append("unexpected key(s): " + unexpected.joined(separator: ", ")) }
            return "tensor names do not match the expected ones; " + parts.joined(separator: "; ")
        case let .invalidTensor(name, reason):
            return "cannot store tensor \"\(name)\": \(reason)"
        case let .io(path, reason):
            return "cannot access \(path): \(reason)"
        case let .invalidModelArchive(module, reason):
            return "invalid quantized model file: " + (module.isEmpty ? "" : "module \"\(module)\": ") + reason
        }
    }
}
