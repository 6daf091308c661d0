#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The dense fp32 loops behind the differentiable operations: allocation, element-wise maps, broadcasting and
/// reductions over raw buffers. Shapes are validated by the callers.
enum TensorMath {
    /// A new tensor of a valid `shape` whose `count` elements `body` writes.
    static func make(_ shape: [Int], _ body: (UnsafeMutablePointer<Float>, Int) throws -> Void) rethrows
        -> Tensor<Float>
    {
        let count = shape.reduce(1, *)
        return try Tensor(uninitializedShape: shape, count: count) { try body($0, count) }
    }

    static func zeros(_ shape: [Int]) -> Tensor<Float> {
        Tensor(storage: TensorStorage(repeating: 0, count: shape.reduce(1, *)), shape: shape)
    }

    static func filled(_ value: Float, _ shape: [Int]) -> Tensor<Float> {
        Tensor(storage: TensorStorage(repeating: value, count: shape.reduce(1, *)), shape: shape)
    }

    /// `f` applied to every element.
    @inline(__always)
    static func map(_ x: Tensor<Float>, _ f: (Float) -> Float) -> Tensor<Float> {
        x.withUnsafeBufferPointer { a in
            make(x.shape) { y, count in
                for i in 0..<count { y[i] = f(a[i]) }
            }
        }
    }

    /// `f` applied to the elements of two tensors of the same element count; the result has `a`'s shape.
    @inline(__always)
    static func zip(_ a: Tensor<Float>, _ b: Tensor<Float>, _ f: (Float, Float) -> Float) -> Tensor<Float> {
        precondition(a.count == b.count, "TensorMath.zip: element counts differ")
        return a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                make(a.shape) { y, count in
                    for i in 0..<count { y[i] = f(pa[i], pb[i]) }
                }
            }
        }
    }

    /// `a += b` (same element count), in place when `a`'s storage is not shared.
    static func accumulate(_ a: inout Tensor<Float>, _ b: Tensor<Float>) {
        precondition(a.count == b.count, "TensorMath.accumulate: element counts differ")
        b.withUnsafeBufferPointer { pb in
            a.withUnsafeMutableBufferPointer { pa in
                for i in 0..<pa.count { pa[i] += pb[i] }
            }
        }
    }

    /// `x * s`.
    static func scaled(_ x: Tensor<Float>, _ s: Float) -> Tensor<Float> {
        map(x) { $0 * s }
    }

    /// The sum of all elements, accumulated in Double.
    static func sum(_ x: Tensor<Float>) -> Double {
        x.withUnsafeBufferPointer { a in
            var total = 0.0
            for v in a { total += Double(v) }
            return total
        }
    }

    // MARK: Broadcasting

    /// The shape two shapes broadcast to (NumPy/PyTorch rules: align at the right, sizes equal or 1), or nil.
    static func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int]? {
        let rank = max(a.count, b.count)
        var result = [Int](repeating: 1, count: rank)
        for i in 0..<rank {
            let da = i < rank - a.count ? 1 : a[i - (rank - a.count)]
            let db = i < rank - b.count ? 1 : b[i - (rank - b.count)]
            guard da == db || da == 1 || db == 1 else { return nil }
            result[i] = da == 1 ? db : da
        }
        return result
    }

    /// Strides (in elements) of a row-major `shape` seen as `outShape` (right-aligned; broadcast dimensions get 0).
    static func broadcastStrides(_ shape: [Int], to outShape: [Int]) -> [Int] {
        let rank = outShape.count
        var strides = [Int](repeating: 0, count: rank)
        var step = 1
        for i in (0..<shape.count).reversed() {
            let o = i + rank - shape.count
            strides[o] = shape[i] == 1 ? 0 : step
            step *= shape[i]
        }
        return strides
    }

    /// Calls `body(offsetA, offsetB, outputOffset, strideA, strideB, length)` for every row of the last dimension
    /// of `outShape`, with offsets into row-major `a` and `b` broadcast to `outShape`.
    static func forEachBroadcastRow(
        _ outShape: [Int], _ aStrides: [Int], _ bStrides: [Int],
        _ body: (Int, Int, Int, Int, Int, Int) -> Void
    ) {
        let rank = outShape.count
        guard rank > 0 else { body(0, 0, 0, 0, 0, 1); return }
        let length = outShape[rank - 1]
        let rows = outShape.dropLast().reduce(1, *)
        guard length > 0, rows > 0 else { return }
        var index = [Int](repeating: 0, count: rank - 1)
        var offsetA = 0, offsetB = 0
        for row in 0..<rows {
            body(offsetA, offsetB, row * length, aStrides[rank - 1], bStrides[rank - 1], length)
            // Advance the odometer over the leading dimensions.
            var d = rank - 2
            while d >= 0 {
                index[d] += 1
                offsetA += aStrides[d]
                offsetB += bStrides[d]
                if index[d] < outShape[d] { break }
                offsetA -= aStrides[d] * outShape[d]
                offsetB -= bStrides[d] * outShape[d]
                index[d] = 0
                d -= 1
            }
        }
    }

    /// `f(a, b)` element-wise with broadcasting to `outShape` (which must be `broadcastShape(a.shape, b.shape)`).
    static func broadcast(_ a: Tensor<Float>, _ b: Tensor<Float>, to outShape: [Int],
                          _ f: (Float, Float) -> Float) -> Tensor<Float>
    {
        if a.shape == b.shape { return zip(a, b, f) }
        let sa = broadcastStrides(a.shape, to: outShape), sb = broadcastStrides(b.shape, to: outShape)
        return a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                make(outShape) { y, _ in
                    forEachBroadcastRow(outShape, sa, sb) { oa, ob, oy, ia, ib, length in
                        for i in 0..<length { y[oy + i] = f(pa[oa + i * ia], pb[ob + i * ib]) }
                    }
                }
            }
        }
    }

    /// Sums `g` (of a broadcast shape) down to `shape`, the reverse of broadcasting `shape` up to `g.shape`.
    static func sum(_ g: Tensor<Float>, toShape shape: [Int]) -> Tensor<Float> {
        if g.shape == shape { return g }
        let strides = broadcastStrides(shape, to: g.shape)
        let zero = [Int](repeating: 0, count: g.shape.count)
        return g.withUnsafeBufferPointer { pg in
            var result = zeros(shape)
            result.withUnsafeMutableBufferPointer { y in
                forEachBroadcastRow(g.shape, strides, zero) { oy, _, og, iy, _, length in
                    if iy == 0 {
                        var total: Float = 0
                        for i in 0..<length { total += pg[og + i] }
                        y[oy] += total
                    } else {
                        for i in 0..<length { y[oy + i] += pg[og + i] }
                    }
                }
            }
            return result
        }
    }
}

/// Elementary functions on Float through the C library (one import here instead of in every file).
enum ElementaryFunctions {
    @inline(__always) static func exp(_ x: Float) -> Float { expf(x) }
    @inline(__always) static func log(_ x: Float) -> Float { logf(x) }
    @inline(__always) static func tanh(_ x: Float) -> Float { tanhf(x) }
    @inline(__always) static func erf(_ x: Float) -> Float { erff(x) }
    @inline(__always) static func sqrt(_ x: Float) -> Float { x.squareRoot() }
    @inline(__always) static func log1p(_ x: Float) -> Float { log1pf(x) }
    @inline(__always) static func pow(_ x: Double, _ y: Double) -> Double { cPow(x, y) }
}

@inline(__always) private func cPow(_ x: Double, _ y: Double) -> Double { pow(x, y) }

/// Reductions over contiguous floats with several independent SIMD accumulators: LLVM does not reassociate float
/// additions on its own, so a plain loop would run one add per element at the latency of the adder.
enum Reduction {
    /// `sum x[i]`.
    @inline(__always)
    static func sum(_ x: UnsafePointer<Float>, _ count: Int) -> Float {
        var a = SIMD8<Float>(), b = SIMD8<Float>()
        var i = 0
        let raw = UnsafeRawPointer(x)
        while i + 16 <= count {
            a += raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            b += raw.loadUnaligned(fromByteOffset: (i + 8) * 4, as: SIMD8<Float>.self)
            i += 16
        }
        var total = (a + b).sum()
        while i < count {
            total += x[i]
            i += 1
        }
        return total
    }

    /// `sum (x[i] - mean)^2`.
    @inline(__always)
    static func squaredDeviations(_ x: UnsafePointer<Float>, _ count: Int, mean: Float) -> Float {
        var a = SIMD8<Float>(), b = SIMD8<Float>()
        let m = SIMD8<Float>(repeating: mean)
        var i = 0
        let raw = UnsafeRawPointer(x)
        while i + 16 <= count {
            let d0 = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) - m
            let d1 = raw.loadUnaligned(fromByteOffset: (i + 8) * 4, as: SIMD8<Float>.self) - m
            a += d0 * d0
            b += d1 * d1
            i += 16
        }
        var total = (a + b).sum()
        while i < count {
            let d = x[i] - mean
            total += d * d
            i += 1
        }
        return total
    }

    /// `(sum g[i], sum g[i] * (x[i] - mean))`.
    @inline(__always)
    static func sumAndDeviationProduct(_ g: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ count: Int,
                                       mean: Float) -> (Float, Float) {
        var s = SIMD8<Float>(), p = SIMD8<Float>()
        let m = SIMD8<Float>(repeating: mean)
        var i = 0
        let rg = UnsafeRawPointer(g), rx = UnsafeRawPointer(x)
        while i + 8 <= count {
            let gv = rg.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            let xv = rx.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            s += gv
            p += gv * (xv - m)
            i += 8
        }
        var total = s.sum(), product = p.sum()
        while i < count {
            total += g[i]
            product += g[i] * (x[i] - mean)
            i += 1
        }
        return (total, product)
    }

    /// `sum a[i] * b[i]`.
    @inline(__always)
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ count: Int) -> Float {
        var s0 = SIMD8<Float>(), s1 = SIMD8<Float>()
        var i = 0
        let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
        while i + 16 <= count {
            s0 += ra.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
                * rb.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            s1 += ra.loadUnaligned(fromByteOffset: (i + 8) * 4, as: SIMD8<Float>.self)
                * rb.loadUnaligned(fromByteOffset: (i + 8) * 4, as: SIMD8<Float>.self)
            i += 16
        }
        var total = (s0 + s1).sum()
        while i < count {
            total += a[i] * b[i]
            i += 1
        }
        return total
    }
}
