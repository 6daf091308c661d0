import Dispatch

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A 64-byte aligned buffer (Swift arrays are only 16-byte aligned, which would make results depend on where the
/// allocator put them). Freed when the last closure holding it goes away.
final class AlignedBuffer<Element>: @unchecked Sendable {
    let count: Int
    let pointer: UnsafeMutablePointer<Element>

    init(count: Int) {
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(1, count * MemoryLayout<Element>.stride),
                                                   alignment: 64)
        pointer = raw.bindMemory(to: Element.self, capacity: count)
    }

    var byteCount: Int { count * MemoryLayout<Element>.stride }
    var raw: UnsafeMutableRawPointer { UnsafeMutableRawPointer(pointer) }

    /// Fills with `value(i)`; every page is written, so later timing sees no first-touch faults.
    func fill(_ value: (Int) -> Element) {
        for i in 0..<count { pointer[i] = value(i) }
    }

    deinit { UnsafeMutableRawPointer(pointer).deallocate() }
}

/// Deterministic, cheap pseudo-random numbers (splitmix64): the data is the same in every run.
struct SplitMix64 {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [lo, hi).
    mutating func float(_ lo: Float, _ hi: Float) -> Float {
        lo + (hi - lo) * Float(next() >> 40) * 0x1p-24
    }
    mutating func int32(_ lo: Int32, _ hi: Int32) -> Int32 {
        lo &+ Int32(truncatingIfNeeded: next() % UInt64(Int64(hi) - Int64(lo) + 1))
    }
}

/// memcpy split into `threads` contiguous 64-byte aligned chunks, one per thread: the same work split as
/// QuantKit's streaming operators, so that the multi-thread baseline is the machine's parallel copy bandwidth.
func parallelCopy(_ dst: UnsafeMutableRawPointer, _ src: UnsafeRawPointer, _ bytes: Int, threads: Int) {
    if threads <= 1 {
        memcpy(dst, src, bytes)
        return
    }
    let chunk = ((bytes + threads - 1) / threads + 63) & ~63
    let d = UInt(bitPattern: dst), s = UInt(bitPattern: src)
    DispatchQueue.concurrentPerform(iterations: threads) { t in
        let begin = t * chunk
        guard begin < bytes else { return }
        let n = min(chunk, bytes - begin)
        memcpy(UnsafeMutableRawPointer(bitPattern: d + UInt(begin))!,
               UnsafeRawPointer(bitPattern: s + UInt(begin))!, n)
    }
}

/// The memcpy baseline of a memory-bound case: copies a buffer the size of the kernel's input, or of its output
/// when that is larger. Why not always the input: the widening kernels read little (dequantize_qu8 reads 16 MB and
/// writes 64 MB), and a 16 MB copy (32 MB touched, L3 = 32 MB) is partly served from cache: measured here at
/// 18-20 GB/s against 12.5-15 GB/s for 64 MB and more. The larger stream keeps the baseline DRAM-bound like the
/// kernel, so bandwidth_vs_memcpy compares DRAM bandwidth with DRAM bandwidth. (For the narrowing kernels the
/// input is the larger stream, so this is exactly "memcpy of the input".)
func memcpyBaseline(inputBytes: Int, outputBytes: Int) -> Baseline {
    let bytes = max(inputBytes, outputBytes)
    let src = AlignedBuffer<UInt8>(count: bytes)
    let dst = AlignedBuffer<UInt8>(count: bytes)
    src.fill { UInt8(truncatingIfNeeded: $0 &* 131) }
    dst.fill { _ in 0 }
    return Baseline(name: "memcpy", work: 2 * Double(bytes)) { threads in
        parallelCopy(dst.raw, src.raw, bytes, threads: threads)
    }
}
