/// A height and a width: the kernel size, stride, padding or dilation of a 2-D convolution. An integer literal sets
/// both (`stride: 2`); `Size2d(height: 2, width: 1)` sets them apart.
///
/// PyTorch: the `int | tuple[int, int]` arguments of `torch.nn.functional.conv2d` and `nn.Conv2d` (`_size_2_t`,
/// which `_pair` expands to `(height, width)`).
public struct Size2d: Sendable, Hashable, Codable, ExpressibleByIntegerLiteral, CustomStringConvertible {
    /// The size along the height (rows). PyTorch: element 0 of the pair.
    public var height: Int
    /// The size along the width (columns). PyTorch: element 1 of the pair.
    public var width: Int

    /// PyTorch: the tuple `(height, width)`.
    public init(height: Int, width: Int) {
        self.height = height
        self.width = width
    }

    /// The same size for both dimensions. PyTorch: an `int` argument, `_pair(size)`.
    public init(_ size: Int) {
        self.init(height: size, width: size)
    }

    /// The same size for both dimensions, e.g. `stride: 2`. PyTorch: an `int` argument.
    public init(integerLiteral value: Int) {
        self.init(value)
    }

    /// `"(height, width)"`, as PyTorch prints the pair.
    public var description: String { "(\(height), \(width))" }
}

/// A validated 2-D convolution geometry: input, kernel, stride, symmetric padding, dilation and the output size.
struct Conv2dGeometry: Equatable {
    var batch: Int
    var inHeight: Int
    var inWidth: Int
    var kernel: Size2d
    var stride: Size2d
    var padding: Size2d
    var dilation: Size2d
    var outHeight: Int
    var outWidth: Int

    /// Checks the parameters as PyTorch's `conv2d` does and computes
    /// `out = (in + 2 * padding - dilation * (kernel - 1) - 1) / stride + 1` per dimension.
    init(operation: String, batch: Int, inHeight: Int, inWidth: Int, kernel: Size2d, stride: Size2d, padding: Size2d,
         dilation: Size2d) throws(QuantizationError) {
        func fail(_ reason: String) -> QuantizationError { .invalidOperand(operation: operation, reason: reason) }
        guard stride.height >= 1, stride.width >= 1 else {
            throw fail("stride must be at least 1 in both dimensions, got \(stride)")
        }
        guard dilation.height >= 1, dilation.width >= 1 else {
            throw fail("dilation must be at least 1 in both dimensions, got \(dilation)")
        }
        guard padding.height >= 0, padding.width >= 0 else {
            throw fail("padding must be >= 0 in both dimensions, got \(padding)")
        }
        guard inHeight >= 1, inWidth >= 1 else {
            throw fail("the input's height and width must be at least 1, got \(inHeight) x \(inWidth)")
        }
        func outSize(_ name: String, _ input: Int, _ k: Int, _ s: Int, _ p: Int, _ d: Int)
            throws(QuantizationError) -> Int
        {
            let (twice, o1) = p.multipliedReportingOverflow(by: 2)
            let (padded, o2) = input.addingReportingOverflow(twice)
            let (reach, o3) = d.multipliedReportingOverflow(by: k - 1)
            guard !o1, !o2, !o3, reach < Int.max else {
                throw fail("the convolution \(name) overflows Int (input \(input), kernel \(k), padding \(p), "
                           + "dilation \(d))")
            }
            let span = reach + 1
            guard span <= padded else {
                throw fail("the kernel \(name) \(k) with dilation \(d) spans \(span), larger than the padded input "
                           + "\(name) \(padded) (input \(input), padding \(p) on each side); expected a kernel that "
                           + "fits the padded input")
            }
            return (padded - span) / s + 1
        }
        self.batch = batch
        self.inHeight = inHeight
        self.inWidth = inWidth
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        outHeight = try outSize("height", inHeight, kernel.height, stride.height, padding.height, dilation.height)
        outWidth = try outSize("width", inWidth, kernel.width, stride.width, padding.width, dilation.width)
    }
}

/// The input/output plumbing shared by the convolution operators: shape checks in either layout, and the permutes
/// around a kernel that computes NHWC.
enum ConvolutionIO {
    /// `(batch, channels, height, width)` of a 4-D input in `layout`.
    static func inputDimensions(_ shape: [Int], layout: ConvolutionLayout, channels: Int, operation: String)
        throws(QuantizationError) -> (n: Int, c: Int, h: Int, w: Int)
    {
        let names = layout == .nchw ? "[N, C, H, W]" : "[N, H, W, C]"
        guard shape.count == 4 else {
            throw .invalidOperand(operation: operation, reason: "the input must be 4-D \(names) (layout \(layout)), "
                                  + "got shape \(shape)")
        }
        let (n, c, h, w) = layout == .nchw ? (shape[0], shape[1], shape[2], shape[3])
                                           : (shape[0], shape[3], shape[1], shape[2])
        guard c == channels else {
            throw .invalidOperand(operation: operation, reason: "the input has \(c) channels (shape \(shape), "
                                  + "layout \(layout) \(names)) but the weight expects \(channels) (in_channels)")
        }
        return (n, c, h, w)
    }

    static func outputShape(_ g: Conv2dGeometry, channels: Int, layout: ConvolutionLayout) -> [Int] {
        layout == .nchw ? [g.batch, channels, g.outHeight, g.outWidth] : [g.batch, g.outHeight, g.outWidth, channels]
    }

    /// Runs `body(xNHWC, yNHWC)` for an input in `layout` and returns the output in `layout`: NCHW data is permuted
    /// into and out of scratch NHWC buffers, NHWC data is handed to `body` directly.
    static func run<T: TensorScalar, U: TensorScalar>(
        _ x: Tensor<T>, layout: ConvolutionLayout, geometry g: Conv2dGeometry, inChannels: Int, outChannels: Int,
        _ body: (UnsafePointer<T>, UnsafeMutablePointer<U>) throws -> Void
    ) throws -> Tensor<U> {
        let shape = outputShape(g, channels: outChannels, layout: layout)
        let count = try Tensor<U>.elementCount(of: shape)
        return try x.withUnsafeBufferPointer { input in
            try Tensor<U>(uninitializedShape: shape, count: count) { y in
                switch layout {
                case .nhwc:
                    try body(input.baseAddress!, y)
                case .nchw:
                    // One channel is the same bytes in NCHW and NHWC: no permute (and no copy) on that side.
                    let xt = inChannels > 1 ? TensorStorage<T>(uninitializedCount: input.count) : nil
                    if let xt {
                        LayoutPermute.transpose(input.baseAddress!, xt.base, batches: g.batch, rows: inChannels,
                                                columns: g.inHeight * g.inWidth)
                    }
                    let yt = outChannels > 1 ? TensorStorage<U>(uninitializedCount: count) : nil
                    try withExtendedLifetime((xt, yt)) {
                        try body(xt.map { UnsafePointer($0.base) } ?? input.baseAddress!, yt?.base ?? y)
                        if let yt {
                            LayoutPermute.transpose(UnsafePointer(yt.base), y, batches: g.batch,
                                                    rows: g.outHeight * g.outWidth, columns: outChannels)
                        }
                    }
                }
            }
        }
    }
}
