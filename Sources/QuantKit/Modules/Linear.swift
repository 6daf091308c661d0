/// PyTorch's default initialisation of a weight with fan-in `fanIn` (`kaiming_uniform_(a=sqrt(5))`, which is
/// `U(-1/sqrt(fanIn), 1/sqrt(fanIn))`) and of its bias (the same bound), from `generator`.
enum DefaultInitialization {
    static func uniform(_ shape: [Int], fanIn: Int, generator: inout RandomGenerator) throws -> Tensor<Float> {
        guard fanIn > 0, shape.reduce(1, *) > 0 else { return TensorMath.zeros(shape) }
        let bound = 1 / Float(fanIn).squareRoot()
        return try generator.uniform(shape: shape, in: -bound..<bound)
    }
}

/// A fully connected layer: `y = x W^T + b` over the last dimension, on CBLAS `sgemm`.
///
/// PyTorch: `torch.nn.Linear(in_features, out_features, bias=True)`, with the same parameter names (`weight`
/// `[out, in]`, `bias` `[out]`) and default initialisation (`kaiming_uniform_(a=sqrt(5))` for the weight, i.e.
/// `U(-1/sqrt(in), 1/sqrt(in))`, and the same bound for the bias), drawn from a seeded `RandomGenerator`.
open class Linear: Module {
    /// PyTorch: `linear.in_features`.
    public let inFeatures: Int
    /// PyTorch: `linear.out_features`.
    public let outFeatures: Int
    /// `[outFeatures, inFeatures]`. PyTorch: `linear.weight`.
    public let weight: Parameter
    /// `[outFeatures]`, or nil without bias. PyTorch: `linear.bias`.
    public let bias: Parameter?

    /// A layer with PyTorch's default initialisation from `generator`.
    ///
    /// PyTorch: `nn.Linear(inFeatures, outFeatures, bias=bias)` after `torch.manual_seed(...)`.
    /// - Throws: `QuantizationError.invalidOperand` for negative sizes.
    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, generator: inout RandomGenerator) throws {
        guard inFeatures >= 0, outFeatures >= 0 else {
            throw QuantizationError.invalidOperand(
                operation: "Linear", reason: "in_features and out_features must be >= 0, got \(inFeatures) and "
                    + "\(outFeatures)")
        }
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        weight = Parameter(try DefaultInitialization.uniform([outFeatures, inFeatures], fanIn: inFeatures,
                                                             generator: &generator))
        self.bias = bias ? Parameter(try DefaultInitialization.uniform([outFeatures], fanIn: inFeatures,
                                                                        generator: &generator)) : nil
        super.init()
        try registerParameter("weight", weight)
        try registerParameter("bias", self.bias)
    }

    /// A layer holding the given weight `[out, in]` and bias `[out]`.
    ///
    /// PyTorch: `nn.Linear(in, out)` followed by `linear.weight.data = weight; linear.bias.data = bias`.
    /// - Throws: `QuantizationError.invalidOperand` when the weight is not 2-D or the bias is not `[out]`.
    public init(weight: Tensor<Float>, bias: Tensor<Float>?) throws {
        guard weight.rank == 2 else {
            throw QuantizationError.invalidOperand(
                operation: "Linear", reason: "the weight must be 2-D [out, in], got \(weight.shape)")
        }
        if let bias, bias.shape != [weight.shape[0]] {
            throw QuantizationError.invalidOperand(
                operation: "Linear", reason: "the bias must have shape [\(weight.shape[0])], got \(bias.shape)")
        }
        inFeatures = weight.shape[1]
        outFeatures = weight.shape[0]
        self.weight = Parameter(weight)
        self.bias = bias.map { Parameter($0) }
        super.init()
        try registerParameter("weight", self.weight)
        try registerParameter("bias", self.bias)
    }

    /// `x [*, inFeatures]` to `[*, outFeatures]`. PyTorch: `linear(x)`.
    /// - Throws: `QuantizationError.invalidOperand` naming this module for a quantized input or a wrong last
    ///   dimension.
    open override func forward(_ input: Variable) throws -> Variable {
        try attributingErrors { try Functional.linear(input, weight: weight, bias: bias) }
    }

    /// PyTorch: `in_features=784, out_features=256, bias=True`.
    open override var extraDescription: String {
        "in_features=\(inFeatures), out_features=\(outFeatures), bias=\(pythonBool(bias != nil))"
    }
}
