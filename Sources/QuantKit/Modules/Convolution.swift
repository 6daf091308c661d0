/// A 2-D convolution over NCHW batches (zero padding): dense and grouped convolutions on im2col + CBLAS `sgemm`,
/// depthwise ones (`groups == inChannels`) on direct loops.
///
/// PyTorch: `torch.nn.Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
/// bias=True)` with `padding_mode='zeros'`, the same parameter names (`weight` `[out, in / groups, kh, kw]`, `bias`
/// `[out]`) and default initialisation (`U(-1/sqrt(fanIn), 1/sqrt(fanIn))`, `fanIn = in / groups * kh * kw`, for both),
/// drawn from a seeded `RandomGenerator`.
open class Conv2d: Module {
    /// PyTorch: `conv.in_channels`.
    public let inChannels: Int
    /// PyTorch: `conv.out_channels`.
    public let outChannels: Int
    /// PyTorch: `conv.kernel_size`.
    public let kernelSize: Size2d
    /// PyTorch: `conv.stride`.
    public let stride: Size2d
    /// Zeros added on each side. PyTorch: `conv.padding`.
    public let padding: Size2d
    /// PyTorch: `conv.dilation`.
    public let dilation: Size2d
    /// PyTorch: `conv.groups`.
    public let groups: Int
    /// `[outChannels, inChannels / groups, kh, kw]`. PyTorch: `conv.weight`.
    public let weight: Parameter
    /// `[outChannels]`, or nil without bias. PyTorch: `conv.bias`.
    public let bias: Parameter?

    /// A layer with PyTorch's default initialisation from `generator`.
    ///
    /// PyTorch: `nn.Conv2d(inChannels, outChannels, kernelSize, stride, padding, dilation, groups, bias)`.
    /// - Throws: `QuantizationError.invalidOperand` for sizes below 1, negative padding, or channel counts that
    ///   `groups` does not divide.
    public init(
        _ inChannels: Int, _ outChannels: Int, kernelSize: Size2d, stride: Size2d = 1, padding: Size2d = 0,
        dilation: Size2d = 1, groups: Int = 1, bias: Bool = true, generator: inout RandomGenerator
    ) throws {
        try Self.validate(inChannels, outChannels, kernelSize, stride, padding, dilation, groups)
        let shape = [outChannels, inChannels / groups, kernelSize.height, kernelSize.width]
        let fanIn = inChannels / groups * kernelSize.height * kernelSize.width
        let weight = Parameter(try DefaultInitialization.uniform(shape, fanIn: fanIn, generator: &generator))
        let biasParameter = bias ? Parameter(try DefaultInitialization.uniform([outChannels], fanIn: fanIn,
                                                                                generator: &generator)) : nil
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
        self.weight = weight
        self.bias = biasParameter
        super.init()
        try registerParameter("weight", weight)
        try registerParameter("bias", biasParameter)
    }

    /// A layer holding the given weight `[out, in / groups, kh, kw]` and bias `[out]`.
    ///
    /// PyTorch: `nn.Conv2d(...)` followed by assigning `conv.weight.data` and `conv.bias.data`.
    /// - Throws: `QuantizationError.invalidOperand` as the other initialiser, or for a weight that is not 4-D or a
    ///   bias that is not `[out]`.
    public init(
        weight: Tensor<Float>, bias: Tensor<Float>?, stride: Size2d = 1, padding: Size2d = 0, dilation: Size2d = 1,
        groups: Int = 1
    ) throws {
        guard weight.rank == 4 else {
            throw QuantizationError.invalidOperand(
                operation: "Conv2d", reason: "the weight must be 4-D [out, in / groups, kh, kw], got \(weight.shape)")
        }
        let kernel = Size2d(height: weight.shape[2], width: weight.shape[3])
        try Self.validate(weight.shape[1] * groups, weight.shape[0], kernel, stride, padding, dilation, groups)
        if let bias, bias.shape != [weight.shape[0]] {
            throw QuantizationError.invalidOperand(
                operation: "Conv2d", reason: "the bias must have shape [\(weight.shape[0])], got \(bias.shape)")
        }
        inChannels = weight.shape[1] * groups
        outChannels = weight.shape[0]
        kernelSize = kernel
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
        self.weight = Parameter(weight)
        self.bias = bias.map { Parameter($0) }
        super.init()
        try registerParameter("weight", self.weight)
        try registerParameter("bias", self.bias)
    }

    private static func validate(_ inChannels: Int, _ outChannels: Int, _ kernel: Size2d, _ stride: Size2d,
                                 _ padding: Size2d, _ dilation: Size2d, _ groups: Int) throws {
        func fail(_ reason: String) -> QuantizationError { .invalidOperand(operation: "Conv2d", reason: reason) }
        guard groups >= 1 else { throw fail("groups must be a positive integer, got \(groups)") }
        guard inChannels >= 1, outChannels >= 1 else {
            throw fail("in_channels and out_channels must be positive, got \(inChannels) and \(outChannels)")
        }
        guard inChannels % groups == 0 else { throw fail("in_channels must be divisible by groups") }
        guard outChannels % groups == 0 else { throw fail("out_channels must be divisible by groups") }
        guard kernel.height >= 1, kernel.width >= 1 else { throw fail("kernel_size must be >= 1, got \(kernel)") }
        guard stride.height >= 1, stride.width >= 1 else { throw fail("stride must be >= 1, got \(stride)") }
        guard dilation.height >= 1, dilation.width >= 1 else { throw fail("dilation must be >= 1, got \(dilation)") }
        guard padding.height >= 0, padding.width >= 0 else { throw fail("padding must be >= 0, got \(padding)") }
    }

    /// `x [N, inChannels, H, W]` to `[N, outChannels, outH, outW]`. PyTorch: `conv(x)`.
    /// - Throws: `QuantizationError.invalidOperand` naming this module for a quantized input, a wrong shape or a
    ///   kernel larger than the padded input.
    open override func forward(_ input: Variable) throws -> Variable {
        try attributingErrors {
            try Functional.conv2d(input, weight: weight, bias: bias, stride: stride, padding: padding,
                                  dilation: dilation, groups: groups)
        }
    }

    /// PyTorch: `1, 16, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1)` (defaults of dilation, groups and bias
    /// omitted, as PyTorch does).
    open override var extraDescription: String {
        var parts = ["\(inChannels), \(outChannels), kernel_size=\(kernelSize), stride=\(stride)"]
        if padding != 0 { parts.append("padding=\(padding)") }
        if dilation != 1 { parts.append("dilation=\(dilation)") }
        if groups != 1 { parts.append("groups=\(groups)") }
        if bias == nil { parts.append("bias=False") }
        return parts.joined(separator: ", ")
    }
}
