/// 2-D max pooling. On a quantized input it pools the integer values and keeps the quantization parameters, as
/// PyTorch's quantized max pooling (exact: the order of the integers is the order of the real values).
///
/// PyTorch: `torch.nn.MaxPool2d(kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False)` (which runs
/// natively on quantized tensors too).
open class MaxPool2d: Module {
    /// PyTorch: `pool.kernel_size`.
    public let kernelSize: Size2d
    /// PyTorch: `pool.stride` (the kernel size unless given).
    public let stride: Size2d
    /// Implicit `-infinity` padding on each side. PyTorch: `pool.padding`.
    public let padding: Size2d
    /// PyTorch: `pool.dilation`.
    public let dilation: Size2d
    /// Whether the output size rounds up. PyTorch: `pool.ceil_mode`.
    public let ceilMode: Bool

    /// PyTorch: `nn.MaxPool2d(kernel_size, stride, padding, dilation, ceil_mode=ceilMode)`.
    public init(kernelSize: Size2d, stride: Size2d? = nil, padding: Size2d = 0, dilation: Size2d = 1,
                ceilMode: Bool = false) {
        self.kernelSize = kernelSize
        self.stride = stride ?? kernelSize
        self.padding = padding
        self.dilation = dilation
        self.ceilMode = ceilMode
        super.init()
    }

    /// PyTorch: `pool(x)`.
    /// - Throws: `QuantizationError.invalidOperand` naming this module for a wrong rank or an invalid geometry.
    open override func forward(_ input: Variable) throws -> Variable {
        try attributingErrors {
            if case .quantized(let q) = input.value {
                return Variable(try quantizedMaxPool2d(q, kernelSize: kernelSize, stride: stride, padding: padding,
                                                       dilation: dilation, ceilMode: ceilMode))
            }
            return try Functional.maxPool2d(input, kernelSize: kernelSize, stride: stride, padding: padding,
                                            dilation: dilation, ceilMode: ceilMode)
        }
    }

    /// PyTorch: `kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False`.
    open override var extraDescription: String {
        "kernel_size=\(poolSize(kernelSize)), stride=\(poolSize(stride)), padding=\(poolSize(padding)), "
            + "dilation=\(poolSize(dilation)), ceil_mode=\(pythonBool(ceilMode))"
    }
}

/// 2-D average pooling. On a per-tensor quantized input it averages the integers and keeps the quantization
/// parameters: `y = clamp(nearbyint(float(sum(q) - n * zp) * (1 / divisor)) + zp)` (round half to even, the zero
/// point added after rounding, as PyTorch's x86 kernel on the channels-last tensors that quantized convolutions
/// produce).
///
/// PyTorch: `torch.nn.AvgPool2d(kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
/// divisor_override=None)` (which runs natively on quantized tensors too).
open class AvgPool2d: Module {
    /// PyTorch: `pool.kernel_size`.
    public let kernelSize: Size2d
    /// PyTorch: `pool.stride` (the kernel size unless given).
    public let stride: Size2d
    /// Implicit zero padding on each side. PyTorch: `pool.padding`.
    public let padding: Size2d
    /// PyTorch: `pool.ceil_mode`.
    public let ceilMode: Bool
    /// Whether padding counts in the divisor. PyTorch: `pool.count_include_pad`.
    public let countIncludePad: Bool
    /// A fixed divisor. PyTorch: `pool.divisor_override`.
    public let divisorOverride: Int?

    /// PyTorch: `nn.AvgPool2d(kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)`.
    public init(kernelSize: Size2d, stride: Size2d? = nil, padding: Size2d = 0, ceilMode: Bool = false,
                countIncludePad: Bool = true, divisorOverride: Int? = nil) {
        self.kernelSize = kernelSize
        self.stride = stride ?? kernelSize
        self.padding = padding
        self.ceilMode = ceilMode
        self.countIncludePad = countIncludePad
        self.divisorOverride = divisorOverride
        super.init()
    }

    /// PyTorch: `pool(x)`.
    /// - Throws: `QuantizationError.invalidOperand` naming this module for a per-channel quantized input, a wrong
    ///   rank or an invalid geometry.
    open override func forward(_ input: Variable) throws -> Variable {
        try attributingErrors {
            if case .quantized(let q) = input.value { return Variable(try quantizedForward(q)) }
            return try Functional.avgPool2d(input, kernelSize: kernelSize, stride: stride, padding: padding,
                                     ceilMode: ceilMode, countIncludePad: countIncludePad,
                                     divisorOverride: divisorOverride)
        }
    }

    private func quantizedForward(_ q: QuantizedTensor) throws -> QuantizedTensor {
        let operation = "quantized::avg_pool2d"
        try q.requirePerTensor(operation)
        if let divisorOverride, divisorOverride == 0 {
            throw QuantizationError.invalidOperand(operation: operation, reason: "divisor must be not zero")
        }
        let plan = try PoolingPlan(operation: operation, shape: q.shape, kernel: kernelSize, stride: stride,
                                   padding: padding, dilation: 1, ceilMode: ceilMode)
        var windows: [QuantizedPoolWindow] = []
        windows.reserveCapacity(plan.oh * plan.ow)
        for oy in 0..<plan.oh {
            for ox in 0..<plan.ow {
                var h0 = oy * plan.sh - plan.ph, w0 = ox * plan.sw - plan.pw
                var h1 = min(h0 + plan.kh, plan.ih + plan.ph), w1 = min(w0 + plan.kw, plan.iw + plan.pw)
                let poolSize = (h1 - h0) * (w1 - w0)
                h0 = max(h0, 0); w0 = max(w0, 0); h1 = min(h1, plan.ih); w1 = min(w1, plan.iw)
                let divisor = divisorOverride ?? (countIncludePad ? poolSize : (h1 - h0) * (w1 - w0))
                windows.append(QuantizedPoolWindow(h0: h0, h1: h1, w0: w0, w1: w1, divisor: divisor))
            }
        }
        return q.averagePooled(windows, inputHeight: plan.ih, inputWidth: plan.iw,
                               outputShape: plan.outputShape(q.shape))
    }

    /// PyTorch: `kernel_size=2, stride=2, padding=0`.
    open override var extraDescription: String {
        "kernel_size=\(poolSize(kernelSize)), stride=\(poolSize(stride)), padding=\(poolSize(padding))"
    }
}

/// 2-D adaptive average pooling to a fixed output size. On a per-tensor quantized input it averages the integers
/// and keeps the quantization parameters, rounding as `AvgPool2d` does.
///
/// PyTorch: `torch.nn.AdaptiveAvgPool2d(output_size)` (which runs natively on quantized tensors too).
open class AdaptiveAvgPool2d: Module {
    /// PyTorch: `pool.output_size`.
    public let outputSize: Size2d

    /// PyTorch: `nn.AdaptiveAvgPool2d(output_size)`; `1` gives global average pooling.
    public init(outputSize: Size2d) {
        self.outputSize = outputSize
        super.init()
    }

    /// PyTorch: `pool(x)`.
    /// - Throws: `QuantizationError.invalidOperand` naming this module for a per-channel quantized input, a wrong
    ///   rank or an empty input.
    open override func forward(_ input: Variable) throws -> Variable {
        try attributingErrors {
            if case .quantized(let q) = input.value { return Variable(try quantizedForward(q)) }
            return try Functional.adaptiveAvgPool2d(input, outputSize: outputSize)
        }
    }

    private func quantizedForward(_ q: QuantizedTensor) throws -> QuantizedTensor {
        let operation = "quantized::adaptive_avg_pool2d"
        func fail(_ reason: String) -> QuantizationError { .invalidOperand(operation: operation, reason: reason) }
        try q.requirePerTensor(operation)
        guard q.rank == 3 || q.rank == 4 else {
            throw fail("the input must be 3-D [C, H, W] or 4-D [N, C, H, W], got shape \(q.shape)")
        }
        let (ih, iw) = (q.shape[q.rank - 2], q.shape[q.rank - 1])
        guard ih > 0, iw > 0 else { throw fail("the input's height and width must be non-zero, got \(q.shape)") }
        let (oh, ow) = (outputSize.height, outputSize.width)
        guard oh >= 1, ow >= 1 else { throw fail("output_size must be at least 1 in both dimensions, got \(outputSize)") }
        var windows: [QuantizedPoolWindow] = []
        for oy in 0..<oh {
            let (h0, h1) = ((oy * ih) / oh, ((oy + 1) * ih + oh - 1) / oh)
            for ox in 0..<ow {
                let (w0, w1) = ((ox * iw) / ow, ((ox + 1) * iw + ow - 1) / ow)
                windows.append(QuantizedPoolWindow(h0: h0, h1: h1, w0: w0, w1: w1, divisor: (h1 - h0) * (w1 - w0)))
            }
        }
        return q.averagePooled(windows, inputHeight: ih, inputWidth: iw,
                               outputShape: Array(q.shape.dropLast(2)) + [oh, ow])
    }

    /// PyTorch: `output_size=1` or `output_size=(2, 3)`.
    open override var extraDescription: String { "output_size=\(poolSize(outputSize))" }
}

/// A size as PyTorch prints pooling arguments: `2` for a square size, `(2, 3)` otherwise.
private func poolSize(_ size: Size2d) -> String {
    size.height == size.width ? "\(size.height)" : "\(size)"
}

/// An average-pooling window on the input (clamped to it) and its divisor.
struct QuantizedPoolWindow {
    var h0, h1, w0, w1: Int
    var divisor: Int
}

extension QuantizedTensor {
    /// Average pooling of every plane of the integers over `windows` (one per output position, row-major), same
    /// parameters: `clamp(nearbyint(float(sum - count * zp) * (1 / divisor)) + zp)`; an empty window gives `zp`.
    /// PyTorch: the AVX2 loop of `qavg_pool2d_nhwc_kernel` / `qadaptive_avg_pool2d_nhwc_kernel`.
    func averagePooled(_ windows: [QuantizedPoolWindow], inputHeight ih: Int, inputWidth iw: Int,
                       outputShape: [Int]) -> QuantizedTensor {
        let zeroPoint = zeroPoints[0]
        let (low, high) = (dtype.range.lowerBound, dtype.range.upperBound)
        let planes = shape.dropLast(2).reduce(1, *)
        let inPlane = ih * iw, outPlane = windows.count
        func pool<T: QuantizedScalar>(_ t: Tensor<T>) -> Tensor<T> {
            t.withUnsafeBufferPointer { source in
                Tensor<T>(uninitializedShape: outputShape, count: planes * outPlane) { target in
                    for plane in 0..<planes {
                        let x = source.baseAddress! + plane * inPlane
                        for (i, window) in windows.enumerated() {
                            var value = zeroPoint
                            if window.h0 < window.h1, window.w0 < window.w1, window.divisor != 0 {
                                var sum = 0
                                for iy in window.h0..<window.h1 {
                                    for ix in window.w0..<window.w1 { sum += Int(x[iy * iw + ix]) }
                                }
                                sum -= (window.h1 - window.h0) * (window.w1 - window.w0) * zeroPoint
                                let multiplier = 1 / Float(window.divisor)
                                value = zeroPoint + Int((Float(sum) * multiplier).rounded(.toNearestOrEven))
                            }
                            target[plane * outPlane + i] = T(truncatingIfNeeded: Swift.min(Swift.max(value, low), high))
                        }
                    }
                }
            }
        }
        let pooled: Values
        switch values {
        case .quint8(let t): pooled = .quint8(pool(t))
        case .qint8(let t): pooled = .qint8(pool(t))
        case .qint32(let t): pooled = .qint32(pool(t))
        }
        return QuantizedTensor(values: pooled, qscheme: qscheme, scales: scales, zeroPoints: zeroPoints, axis: nil)
    }
}
