/// The order of the four dimensions of an image batch, as the convolution operators take and return it.
///
/// PyTorch: the two memory formats of a 4-D tensor, `torch.contiguous_format` (NCHW, the default) and
/// `torch.channels_last` (NHWC). PyTorch keeps the logical shape `[N, C, H, W]` and changes the strides; QuantKit's
/// tensors are always dense and row-major, so an NHWC tensor has the shape `[N, H, W, C]`.
public enum ConvolutionLayout: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// `[batch, channels, height, width]`. PyTorch: `torch.contiguous_format`, what `nn.Conv2d` takes.
    case nchw
    /// `[batch, height, width, channels]`, the layout the convolution kernels compute in (no permute needed).
    /// PyTorch: `torch.channels_last`.
    case nhwc

    /// `"nchw"` or `"nhwc"`. PyTorch: no equivalent (`str(torch.channels_last)` is `"torch.channels_last"`).
    public var description: String { rawValue }
}

extension Tensor {
    /// The same elements in NHWC order: `[N, C, H, W]` becomes `[N, H, W, C]`.
    ///
    /// PyTorch: `x.permute(0, 2, 3, 1).contiguous()` (the data of `x.contiguous(memory_format=torch.channels_last)`).
    /// - Throws: `QuantizationError.invalidOperand` when the tensor is not 4-D.
    public func permutedToNHWC() throws -> Tensor {
        let (n, c, h, w) = try LayoutPermute.dimensions(shape, of: .nchw, operation: "permute(0, 2, 3, 1)")
        return LayoutPermute.permuted(self, to: [n, h, w, c], batches: n, rows: c, columns: h * w)
    }

    /// The same elements in NCHW order: `[N, H, W, C]` becomes `[N, C, H, W]`.
    ///
    /// PyTorch: `x.permute(0, 3, 1, 2).contiguous()`.
    /// - Throws: `QuantizationError.invalidOperand` when the tensor is not 4-D.
    public func permutedToNCHW() throws -> Tensor {
        let (n, h, w, c) = try LayoutPermute.dimensions(shape, of: .nhwc, operation: "permute(0, 3, 1, 2)")
        return LayoutPermute.permuted(self, to: [n, c, h, w], batches: n, rows: h * w, columns: c)
    }
}

extension QuantizedTensor {
    /// The same values and quantization parameters in NHWC order: `[N, C, H, W]` becomes `[N, H, W, C]`. A
    /// per-channel tensor keeps its scales and zero points and follows its axis: 1 (channels) becomes 3, 2 becomes
    /// 1, 3 becomes 2.
    ///
    /// PyTorch: `x.permute(0, 2, 3, 1).contiguous()` on a quantized tensor (which also remaps
    /// `q_per_channel_axis()`).
    /// - Throws: `QuantizationError.invalidOperand` when the tensor is not 4-D.
    public func permutedToNHWC() throws -> QuantizedTensor {
        try permuted { try $0.permutedToNHWC() } axis: { [0, 3, 1, 2][$0] }
    }

    /// The same values and quantization parameters in NCHW order: `[N, H, W, C]` becomes `[N, C, H, W]`. A
    /// per-channel tensor follows its axis: 3 (channels) becomes 1, 1 becomes 2, 2 becomes 3.
    ///
    /// PyTorch: `x.permute(0, 3, 1, 2).contiguous()` on a quantized tensor.
    /// - Throws: `QuantizationError.invalidOperand` when the tensor is not 4-D.
    public func permutedToNCHW() throws -> QuantizedTensor {
        try permuted { try $0.permutedToNCHW() } axis: { [0, 2, 3, 1][$0] }
    }

    /// `permute` rearranges the values; `axis` maps an old axis to its new position.
    private func permuted(_ permute: (Values) throws -> Values, axis newAxis: (Int) -> Int) throws -> QuantizedTensor {
        QuantizedTensor(values: try permute(values), qscheme: qscheme, scales: scales, zeroPoints: zeroPoints,
                        axis: axis.map(newAxis))
    }
}

extension QuantizedTensor.Values {
    func permutedToNHWC() throws -> Self {
        switch self {
        case .quint8(let t): return .quint8(try t.permutedToNHWC())
        case .qint8(let t): return .qint8(try t.permutedToNHWC())
        case .qint32(let t): return .qint32(try t.permutedToNHWC())
        }
    }

    func permutedToNCHW() throws -> Self {
        switch self {
        case .quint8(let t): return .quint8(try t.permutedToNCHW())
        case .qint8(let t): return .qint8(try t.permutedToNCHW())
        case .qint32(let t): return .qint32(try t.permutedToNCHW())
        }
    }
}

/// NCHW <-> NHWC as a batch of 2-D transposes: per image, NCHW is a `[C, H*W]` matrix and NHWC its transpose.
enum LayoutPermute {
    /// The four dimensions of a 4-D shape in `layout`'s order.
    static func dimensions(_ shape: [Int], of layout: ConvolutionLayout, operation: String)
        throws(QuantizationError) -> (Int, Int, Int, Int)
    {
        guard shape.count == 4 else {
            let names = layout == .nchw ? "[N, C, H, W]" : "[N, H, W, C]"
            throw .invalidOperand(operation: operation, reason: "the tensor must be 4-D \(names) (\(layout)), got "
                                  + "shape \(shape)")
        }
        return (shape[0], shape[1], shape[2], shape[3])
    }

    static func permuted<T: TensorScalar>(_ source: Tensor<T>, to shape: [Int], batches: Int, rows: Int,
                                          columns: Int) -> Tensor<T> {
        source.withUnsafeBufferPointer { x in
            Tensor<T>(uninitializedShape: shape, count: x.count) { y in
                transpose(x.baseAddress!, y, batches: batches, rows: rows, columns: columns)
            }
        }
    }

    /// `y[b][j][i] = x[b][i][j]` for `batches` row-major `rows x columns` matrices. Elements move as same-sized
    /// unsigned integers, so the loops are specialised once per size rather than per scalar type.
    static func transpose<T>(_ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, batches: Int, rows: Int,
                             columns: Int) {
        let raw = UnsafeRawPointer(x), out = UnsafeMutableRawPointer(y)
        switch MemoryLayout<T>.stride {
        case 1: transposeTiled(raw.assumingMemoryBound(to: UInt8.self), out.assumingMemoryBound(to: UInt8.self),
                               batches: batches, rows: rows, columns: columns)
        case 2: transposeTiled(raw.assumingMemoryBound(to: UInt16.self), out.assumingMemoryBound(to: UInt16.self),
                               batches: batches, rows: rows, columns: columns)
        case 4: transposeTiled(raw.assumingMemoryBound(to: UInt32.self), out.assumingMemoryBound(to: UInt32.self),
                               batches: batches, rows: rows, columns: columns)
        default:
            for b in 0..<batches {
                let plane = rows * columns
                transposeScalar(x + b * plane, y + b * plane, rows: rows, columns: columns, 0..<rows, 0..<columns)
            }
        }
    }

    /// Tiles of `tile x tile` elements (4 KB of bytes, 2-4 KB otherwise), so a tile's source and destination rows
    /// stay in L1 while it is moved; inside a tile, `k x k` blocks (`k` elements make 8 bytes) are transposed in
    /// registers, one 64-bit load and store per block row.
    private static func transposeTiled<T: UnsignedInteger & FixedWidthInteger>(
        _ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, batches: Int, rows: Int, columns: Int
    ) {
        let plane = rows * columns
        guard plane > 0 else { return }
        if rows == 1 || columns == 1 {   // a vector is its own transpose
            y.initialize(from: x, count: batches * plane)
            return
        }
        let k = 8 / MemoryLayout<T>.size, tile = MemoryLayout<T>.size == 1 ? 64 : 32
        // A tile keeps `tile` source rows and `tile` destination rows in L1. Rows a multiple of 2 KB apart share
        // cache sets and evict each other, so the loop order makes that side's accesses sequential instead.
        let aliases = { (stride: Int) in stride * MemoryLayout<T>.size % 2048 == 0 }
        let columnsFirst = aliases(rows) && !aliases(columns)
        for b in 0..<batches {
            let source = x + b * plane, destination = y + b * plane
            if rows < k || columns < k {
                // Too few rows or columns for a block (e.g. RGB images): one long loop per short side.
                if rows < columns {
                    for i in 0..<rows { for j in 0..<columns { destination[j * rows + i] = source[i * columns + j] } }
                } else {
                    transposeScalar(source, destination, rows: rows, columns: columns, 0..<rows, 0..<columns)
                }
                continue
            }
            var i0 = 0
            while i0 < rows {
                let i1 = min(i0 + tile, rows), fullRows = i0 + (i1 - i0) / k * k
                var j0 = 0
                while j0 < columns {
                    let j1 = min(j0 + tile, columns), fullColumns = j0 + (j1 - j0) / k * k
                    #if _endian(little)
                    if columnsFirst {
                        var j = j0
                        while j < fullColumns {
                            var i = i0
                            while i < fullRows {
                                transposeBlock(source + i * columns + j, columns, destination + j * rows + i, rows)
                                i += k
                            }
                            j += k
                        }
                    } else {
                        var i = i0
                        while i < fullRows {
                            var j = j0
                            while j < fullColumns {
                                transposeBlock(source + i * columns + j, columns, destination + j * rows + i, rows)
                                j += k
                            }
                            i += k
                        }
                    }
                    // The ragged right and bottom edges of the tile.
                    transposeScalar(source, destination, rows: rows, columns: columns, i0..<fullRows,
                                    fullColumns..<j1)
                    transposeScalar(source, destination, rows: rows, columns: columns, fullRows..<i1, j0..<j1)
                    #else
                    transposeScalar(source, destination, rows: rows, columns: columns, i0..<i1, j0..<j1)
                    #endif
                    j0 = j1
                }
                i0 = i1
            }
        }
    }

    /// One `k x k` block (8 bytes per row) as `k` 64-bit words, transposed by exchanging ever larger units between
    /// word pairs (elements, then pairs, then quads), little-endian lanes.
    @inline(__always)
    private static func transposeBlock<T: UnsignedInteger & FixedWidthInteger>(
        _ x: UnsafePointer<T>, _ xStride: Int, _ y: UnsafeMutablePointer<T>, _ yStride: Int
    ) {
        @inline(__always) func load(_ r: Int) -> UInt64 {
            UnsafeRawPointer(x + r * xStride).loadUnaligned(as: UInt64.self)
        }
        @inline(__always) func store(_ value: UInt64, _ r: Int) {
            UnsafeMutableRawPointer(y + r * yStride).storeBytes(of: value, as: UInt64.self)
        }
        @inline(__always) func exchange(_ a: inout UInt64, _ b: inout UInt64, _ bits: UInt64, _ mask: UInt64) {
            let t = ((a >> bits) ^ b) & mask
            b ^= t
            a ^= t << bits
        }
        let m8: UInt64 = 0x00FF_00FF_00FF_00FF, m16: UInt64 = 0x0000_FFFF_0000_FFFF, m32: UInt64 = 0x0000_0000_FFFF_FFFF
        switch MemoryLayout<T>.size {
        case 1:
            var (r0, r1, r2, r3, r4, r5, r6, r7) = (load(0), load(1), load(2), load(3), load(4), load(5), load(6),
                                                    load(7))
            exchange(&r0, &r1, 8, m8); exchange(&r2, &r3, 8, m8); exchange(&r4, &r5, 8, m8); exchange(&r6, &r7, 8, m8)
            exchange(&r0, &r2, 16, m16); exchange(&r1, &r3, 16, m16)
            exchange(&r4, &r6, 16, m16); exchange(&r5, &r7, 16, m16)
            exchange(&r0, &r4, 32, m32); exchange(&r1, &r5, 32, m32)
            exchange(&r2, &r6, 32, m32); exchange(&r3, &r7, 32, m32)
            store(r0, 0); store(r1, 1); store(r2, 2); store(r3, 3); store(r4, 4); store(r5, 5); store(r6, 6)
            store(r7, 7)
        case 2:
            var (r0, r1, r2, r3) = (load(0), load(1), load(2), load(3))
            exchange(&r0, &r1, 16, m16); exchange(&r2, &r3, 16, m16)
            exchange(&r0, &r2, 32, m32); exchange(&r1, &r3, 32, m32)
            store(r0, 0); store(r1, 1); store(r2, 2); store(r3, 3)
        default:
            var (r0, r1) = (load(0), load(1))
            exchange(&r0, &r1, 32, m32)
            store(r0, 0); store(r1, 1)
        }
    }

    /// Element by element over `rowRange x columnRange` of one matrix.
    private static func transposeScalar<T>(_ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, rows: Int,
                                           columns: Int, _ rowRange: Range<Int>, _ columnRange: Range<Int>) {
        for j in columnRange {
            let d = y + j * rows
            for i in rowRange { d[i] = x[i * columns + j] }
        }
    }
}
