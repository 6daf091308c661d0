/// The heap buffer behind a `Tensor`: `count` elements, 64-byte aligned (Swift arrays only guarantee 16 bytes, and
/// the SIMD kernels prefer whole cache lines).
///
/// `@unchecked Sendable` is safe because a storage is written only (a) while a new tensor is being initialised,
/// before the storage is published, and (b) through `Tensor`'s mutating members after `isKnownUniquelyReferenced`
/// proved that the tensor holds the only reference (copy-on-write). A storage that another tensor, and so possibly
/// another thread, can see is therefore never written.
final class TensorStorage<Scalar: TensorScalar>: @unchecked Sendable {
    static var alignment: Int { 64 }

    let base: UnsafeMutablePointer<Scalar>
    let count: Int

    /// The memory is allocated but not initialised; `Scalar` is `BitwiseCopyable`, so the caller may simply write it
    /// (also from C) before reading. `count * stride` must not overflow (shapes are validated before).
    init(uninitializedCount count: Int) {
        precondition(count >= 0, "negative element count")
        let (bytes, overflow) = count.multipliedReportingOverflow(by: MemoryLayout<Scalar>.stride)
        precondition(!overflow, "tensor byte size overflows Int")
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 1), alignment: Self.alignment)
        base = raw.bindMemory(to: Scalar.self, capacity: count)
        self.count = count
    }

    convenience init(copying source: UnsafeBufferPointer<Scalar>) {
        self.init(uninitializedCount: source.count)
        if let address = source.baseAddress { base.initialize(from: address, count: source.count) }
    }

    convenience init(repeating value: Scalar, count: Int) {
        self.init(uninitializedCount: count)
        base.initialize(repeating: value, count: count)
    }

    func copy() -> TensorStorage {
        TensorStorage(copying: UnsafeBufferPointer(start: base, count: count))
    }

    deinit {
        // Elements are BitwiseCopyable: nothing to deinitialise.
        UnsafeMutableRawPointer(base).deallocate()
    }
}
