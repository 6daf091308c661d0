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
            if case .quantized(let q) = input.value { return Variable(try quantizedForward(q)) }
            return try Functional.maxPool2d(input, kernelSize: kernelSize, stride: stride, padding: padding,
                                            dilation: dilation, ceilMode: ceilMode)
        }
    }

    private func quantizedForward(_ q: QuantizedTensor) throws -> QuantizedTensor {
        let plan = try PoolingPlan(operation: "max_pool2d", shape: q.shape, kernel: kernelSize, stride: stride,
                                   padding: padding, dilation: dilation, ceilMode: ceilMode)
        let shape = plan.outputShape(q.shape)
        func pool<T: QuantizedScalar>(_ t: Tensor<T>) -> Tensor<T> {
            t.withUnsafeBufferPointer { source in
                Tensor<T>(uninitializedShape: shape, count: shape.reduce(1, *)) { target in
                    Functional.maxPoolPlanes(plan, source.baseAddress!, target)
                }
            }
        }
        let pooled: QuantizedTensor.Values
        switch q.values {
        case .quint8(let t): pooled = .quint8(pool(t))
        case .qint8(let t): pooled = .qint8(pool(t))
        case .qint32(let t): pooled = .qint32(pool(t))
        }
        return QuantizedTensor(values: pooled, qscheme: q.qscheme, scales: q.scales, zeroPoints: q.zeroPoints,
                               axis: q.axis)
    }

    /// PyTorch: `kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False`.
    open override var extraDescription: String {
        "kernel_size=\(poolSize(kernelSize)), stride=\(poolSize(stride)), padding=\(poolSize(padding)), "
            + "dilation=\(poolSize(dilation)), ceil_mode=\(pythonBool(ceilMode))"
    }
}

/// 2-D average pooling. PyTorch: `torch.nn.AvgPool2d(kernel_size, stride=None, padding=0, ceil_mode=False,
/// count_include_pad=True, divisor_override=None)`.
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
    /// - Throws: `QuantizationError.invalidOperand` naming this module for a quantized input, a wrong rank or an
    ///   invalid geometry.
    open override func forward(_ input: Variable) throws -> Variable {
        try attributingErrors {
            try Functional.avgPool2d(input, kernelSize: kernelSize, stride: stride, padding: padding,
                                     ceilMode: ceilMode, countIncludePad: countIncludePad,
                                     divisorOverride: divisorOverride)
        }
    }

    /// PyTorch: `kernel_size=2, stride=2, padding=0`.
    open override var extraDescription: String {
        "kernel_size=\(poolSize(kernelSize)), stride=\(poolSize(stride)), padding=\(poolSize(padding))"
    }
}

/// 2-D adaptive average pooling to a fixed output size. PyTorch: `torch.nn.AdaptiveAvgPool2d(output_size)`.
open class AdaptiveAvgPool2d: Module {
    /// PyTorch: `pool.output_size`.
    public let outputSize: Size2d

    /// PyTorch: `nn.AdaptiveAvgPool2d(output_size)`; `1` gives global average pooling.
    public init(outputSize: Size2d) {
        self.outputSize = outputSize
        super.init()
    }

    /// PyTorch: `pool(x)`.
    /// - Throws: `QuantizationError.invalidOperand` naming this module for a quantized input or a wrong rank.
    open override func forward(_ input: Variable) throws -> Variable {
        try attributingErrors { try Functional.adaptiveAvgPool2d(input, outputSize: outputSize) }
    }

    /// PyTorch: `output_size=1` or `output_size=(2, 3)`.
    open override var extraDescription: String { "output_size=\(poolSize(outputSize))" }
}

/// A size as PyTorch prints pooling arguments: `2` for a square size, `(2, 3)` otherwise.
private func poolSize(_ size: Size2d) -> String {
    size.height == size.width ? "\(size.height)" : "\(size)"
}
