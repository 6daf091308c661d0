/// A dense, row-major, n-dimensional array with value semantics (copy-on-write).
///
/// PyTorch: a contiguous CPU `torch.Tensor` of dtype `Scalar.dtypeName`. Copies share storage until one of them is
/// mutated, like Swift's `Array`. The storage is 64-byte aligned. Rank 0 (shape `[]`) is a scalar tensor with one
/// element, as in PyTorch.
public struct Tensor<Scalar: TensorScalar>: Sendable {
    /// The size of every dimension, outermost first. PyTorch: `t.shape` / `t.size()`.
    public private(set) var shape: [Int]
    var storage: TensorStorage<Scalar>

    /// Wraps an existing storage; `shape` must already be valid for `storage.count`.
    init(storage: TensorStorage<Scalar>, shape: [Int]) {
        self.storage = storage
        self.shape = shape
    }

    /// A tensor of the given shape whose elements `body` initialises through a pointer to `count` elements.
    /// `shape` must already be validated.
    init(uninitializedShape shape: [Int], count: Int, initializingWith body: (UnsafeMutablePointer<Scalar>) throws -> Void)
        rethrows
    {
        let storage = TensorStorage<Scalar>(uninitializedCount: count)
        try body(storage.base)
        self.init(storage: storage, shape: shape)
    }

    /// Creates a tensor of the given shape from row-major scalars.
    ///
    /// PyTorch: `torch.tensor(scalars).reshape(shape)`.
    /// - Throws: `QuantizationError.invalidShape` for a negative dimension, `.shapeMismatch` when the shape does not
    ///   hold exactly `scalars.count` elements.
    public init(shape: [Int], scalars: [Scalar]) throws {
        let count = try Self.elementCount(of: shape)
        guard count == scalars.count else { throw QuantizationError.shapeMismatch(shape: shape, count: scalars.count) }
        self.init(storage: scalars.withUnsafeBufferPointer { TensorStorage(copying: $0) }, shape: shape)
    }

    /// Creates a 1-D tensor. PyTorch: `torch.tensor(scalars)`.
    public init(_ scalars: [Scalar]) {
        self.init(storage: scalars.withUnsafeBufferPointer { TensorStorage(copying: $0) }, shape: [scalars.count])
    }

    /// Creates a tensor filled with zeros. PyTorch: `torch.zeros(shape)`.
    /// - Throws: `QuantizationError.invalidShape` for a negative dimension or an element count that overflows.
    public init(zeros shape: [Int]) throws {
        try self.init(repeating: .zero, shape: shape)
    }

    /// Creates a tensor filled with one value. PyTorch: `torch.full(shape, value)`.
    /// - Throws: `QuantizationError.invalidShape` for a negative dimension or an element count that overflows.
    public init(repeating value: Scalar, shape: [Int]) throws {
        let count = try Self.elementCount(of: shape)
        self.init(storage: TensorStorage(repeating: value, count: count), shape: shape)
    }

    /// Creates a tensor whose elements `body` writes, like `Array(unsafeUninitializedCapacity:initializingWith:)`.
    /// `body` must initialise all `buffer.count` elements.
    ///
    /// PyTorch: `torch.empty(shape)` followed by filling it in place.
    /// - Throws: `QuantizationError.invalidShape` for an invalid shape, or whatever `body` throws.
    public init(
        unsafeUninitializedShape shape: [Int],
        initializingWith body: (UnsafeMutableBufferPointer<Scalar>) throws -> Void
    ) throws {
        let count = try Self.elementCount(of: shape)
        try self.init(uninitializedShape: shape, count: count) { base in
            try body(UnsafeMutableBufferPointer(start: base, count: count))
        }
    }

    /// The number of dimensions. PyTorch: `t.dim()`.
    public var rank: Int { shape.count }

    /// The number of elements. PyTorch: `t.numel()`.
    public var count: Int { storage.count }

    /// All elements in row-major order. PyTorch: `t.flatten().tolist()`.
    public var scalars: [Scalar] {
        withUnsafeBufferPointer { Array($0) }
    }

    /// The element at the given indices, one per dimension, each in `0..<shape[d]`.
    /// A wrong number of indices or an index out of range is a precondition failure, as for `Array`.
    ///
    /// PyTorch: `t[i, j, ...]` (without negative indices).
    public subscript(indices: Int...) -> Scalar {
        get {
            storage.base[offset(of: indices)]
        }
        set {
            let index = offset(of: indices)
            makeUnique()
            storage.base[index] = newValue
        }
    }

    /// The same elements with another shape of the same element count. One dimension may be `-1`; it is inferred.
    ///
    /// PyTorch: `t.reshape(shape)` (on a contiguous tensor, a view sharing the data; here the storage is shared until
    /// either tensor is mutated).
    /// - Throws: `QuantizationError.invalidShape` for negative dimensions other than one `-1`, or a `-1` that cannot
    ///   be inferred; `.shapeMismatch` when the element counts differ.
    public func reshaped(to newShape: [Int]) throws -> Tensor {
        let resolved = try Self.resolve(newShape, count: count)
        return Tensor(storage: storage, shape: resolved)
    }

    /// Calls `body` with a pointer to the elements (row-major, 64-byte aligned, `count` elements).
    ///
    /// PyTorch: `t.data_ptr()` on a contiguous tensor.
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Scalar>) throws -> R) rethrows -> R {
        try withExtendedLifetime(storage) {
            try body(UnsafeBufferPointer(start: storage.base, count: storage.count))
        }
    }

    /// Calls `body` with a mutable pointer to the elements, first copying them if the storage is shared
    /// (copy-on-write). `body` must not replace the buffer.
    ///
    /// PyTorch: writing through `t.data_ptr()`.
    public mutating func withUnsafeMutableBufferPointer<R>(
        _ body: (inout UnsafeMutableBufferPointer<Scalar>) throws -> R
    ) rethrows -> R {
        makeUnique()
        let storage = self.storage
        return try withExtendedLifetime(storage) {
            var buffer = UnsafeMutableBufferPointer(start: storage.base, count: storage.count)
            defer {
                precondition(buffer.baseAddress == storage.base && buffer.count == storage.count,
                             "Tensor.withUnsafeMutableBufferPointer: replacing the buffer is not allowed")
            }
            return try body(&buffer)
        }
    }

    // MARK: Internals

    private mutating func makeUnique() {
        if !isKnownUniquelyReferenced(&storage) {
            storage = storage.copy()
        }
    }

    private func offset(of indices: [Int]) -> Int {
        precondition(indices.count == shape.count,
                     "Tensor subscript needs \(shape.count) indices for shape \(shape), got \(indices.count)")
        var offset = 0
        for (dimension, index) in indices.enumerated() {
            let size = shape[dimension]
            precondition(index >= 0 && index < size,
                         "Tensor index \(index) out of range 0..<\(size) in dimension \(dimension) of shape \(shape)")
            offset = offset * size + index
        }
        return offset
    }

    /// The element count of a shape with no negative dimensions; its byte size must fit in `Int` too.
    static func elementCount(of shape: [Int]) throws(QuantizationError) -> Int {
        if let negative = shape.first(where: { $0 < 0 }) {
            throw .invalidShape(shape: shape, reason: "dimension \(negative) is negative; expected sizes >= 0")
        }
        let (count, overflow) = QuantizationError.product(shape)
        guard !overflow, !count.multipliedReportingOverflow(by: MemoryLayout<Scalar>.stride).overflow else {
            throw .invalidShape(shape: shape, reason: "the element count overflows Int")
        }
        return count
    }

    /// Resolves one `-1` in `shape` so that it holds `count` elements.
    static func resolve(_ shape: [Int], count: Int) throws(QuantizationError) -> [Int] {
        let inferred = shape.indices.filter { shape[$0] == -1 }
        guard inferred.count <= 1 else {
            throw .invalidShape(shape: shape, reason: "only one dimension can be inferred (-1), found \(inferred.count)")
        }
        guard let position = inferred.first else {
            let known = try elementCount(of: shape)
            guard known == count else { throw .shapeMismatch(shape: shape, count: count) }
            return shape
        }
        var others = shape
        others.remove(at: position)
        let known = try elementCount(of: others)
        guard known != 0 else {
            throw .invalidShape(shape: shape, reason: "the -1 dimension cannot be inferred when the other dimensions "
                                + "hold 0 elements; give every size explicitly")
        }
        guard count % known == 0 else { throw .shapeMismatch(shape: shape, count: count) }
        var resolved = shape
        resolved[position] = count / known
        return resolved
    }
}

extension Tensor: Equatable {
    /// Same shape and elementwise `==` (so, as for `Array`, a tensor holding NaN differs from its copy unless both
    /// share storage). PyTorch: `torch.equal(a, b)`.
    public static func == (lhs: Tensor, rhs: Tensor) -> Bool {
        guard lhs.shape == rhs.shape else { return false }
        if lhs.storage === rhs.storage { return true }
        return lhs.withUnsafeBufferPointer { a in rhs.withUnsafeBufferPointer { b in a.elementsEqual(b) } }
    }
}

extension Tensor: ExpressibleByArrayLiteral {
    /// A 1-D tensor from a literal. PyTorch: `torch.tensor([...])`.
    public init(arrayLiteral elements: Scalar...) {
        self.init(elements)
    }
}

extension Tensor: CustomStringConvertible {
    /// PyTorch-style nested printing, summarised (first and last 3 entries per dimension) above 1000 elements, e.g.
    /// `tensor([[1.0, 2.0], [3.0, 4.0]], shape: [2, 2], dtype: float32)`. PyTorch: `repr(t)`.
    public var description: String {
        let body = withUnsafeBufferPointer { buffer in formatNested(shape: shape) { "\(buffer[$0])" } }
        return "tensor(\(body), shape: \(shape), dtype: \(Scalar.dtypeName))"
    }
}

/// Formats row-major elements as nested lists, PyTorch's summarisation (edge items 3, threshold 1000) included.
func formatNested(shape: [Int], element: (Int) -> String) -> String {
    let (count, overflow) = QuantizationError.product(shape)
    let summarize = overflow || count > 1000
    var strides = [Int](repeating: 1, count: shape.count)
    for d in shape.indices.reversed().dropFirst() { strides[d] = strides[d + 1] * shape[d + 1] }

    func format(_ dimension: Int, _ offset: Int) -> String {
        guard dimension < shape.count else { return element(offset) }
        let size = shape[dimension]
        let positions: [Int?] = summarize && size > 6
            ? Array(0..<3) + [nil] + Array((size - 3)..<size)
            : Array(0..<size)
        let parts = positions.map { position in
            position.map { format(dimension + 1, offset + $0 * strides[dimension]) } ?? "..."
        }
        return "[" + parts.joined(separator: ", ") + "]"
    }
    return format(0, 0)
}
