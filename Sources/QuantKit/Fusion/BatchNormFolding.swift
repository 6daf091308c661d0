/// Folds a batch norm's statistics and affine parameters into the convolution before it, in fp32 with PyTorch's
/// operation order (bit for bit): `invstd = 1 / sqrt(running_var + eps)`,
/// `w' = w * (gamma * invstd)[:, None, None, None]`, `b' = (b - running_mean) * invstd * gamma + beta`. A missing
/// conv bias counts as zeros, a missing `gamma` / `beta` (a non-affine batch norm) as ones / zeros.
///
/// The weight's first dimension is the output channel (`[O, I / groups, kh, kw]`, or any rank).
///
/// PyTorch: `torch.nn.utils.fusion.fuse_conv_bn_weights(conv_w, conv_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b)`.
/// - Throws: `QuantizationError.invalidOperand` when a statistic or parameter does not have one value per output
///   channel, or the bias does not.
public func fuseConvBatchNormWeights(
    weight: Tensor<Float>, bias: Tensor<Float>?, runningMean: Tensor<Float>, runningVar: Tensor<Float>, eps: Float,
    batchNormWeight: Tensor<Float>?, batchNormBias: Tensor<Float>?
) throws -> (weight: Tensor<Float>, bias: Tensor<Float>) {
    try fold("fuseConvBatchNormWeights", weight: weight, bias: bias, runningMean: runningMean, runningVar: runningVar,
             eps: eps, batchNormWeight: batchNormWeight, batchNormBias: batchNormBias) { b, mean, invstd, gamma, _ in
        // ((b - mean) * invstd) * gamma (+ beta): four rounded fp32 operations, as PyTorch's separate kernels.
        let centered = b - mean
        let normalized = centered * invstd
        return normalized * gamma
    }
}

/// Folds a `BatchNorm1d` after a linear layer into its weight and bias, in fp32 with PyTorch's operation order:
/// `scale = gamma * (1 / sqrt(running_var + eps))`, `w' = w * scale[:, None]`, `b' = (b - running_mean) * scale + beta`
/// (note the different bias order from the convolution version, as PyTorch).
///
/// PyTorch: `torch.nn.utils.fusion.fuse_linear_bn_weights(linear_w, linear_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b)`.
/// - Throws: `QuantizationError.invalidOperand` when a statistic or parameter does not have one value per output
///   feature, or the weight is not 2-D.
public func fuseLinearBatchNormWeights(
    weight: Tensor<Float>, bias: Tensor<Float>?, runningMean: Tensor<Float>, runningVar: Tensor<Float>, eps: Float,
    batchNormWeight: Tensor<Float>?, batchNormBias: Tensor<Float>?
) throws -> (weight: Tensor<Float>, bias: Tensor<Float>) {
    guard weight.rank == 2 else {
        throw QuantizationError.invalidOperand(
            operation: "fuseLinearBatchNormWeights", reason: "the weight must be 2-D [out, in], got \(weight.shape)")
    }
    return try fold("fuseLinearBatchNormWeights", weight: weight, bias: bias, runningMean: runningMean,
                    runningVar: runningVar, eps: eps, batchNormWeight: batchNormWeight,
                    batchNormBias: batchNormBias) { b, mean, _, _, scale in
        let centered = b - mean
        return centered * scale
    }
}

/// A new `Conv2d` (evaluation mode, same geometry and qconfig) whose weight and bias have `batchNorm` folded in with
/// its running statistics: in evaluation, `folded(x) == batchNorm(conv(x))` up to rounding.
///
/// PyTorch: `torch.nn.utils.fusion.fuse_conv_bn_eval(conv, bn)`.
/// - Throws: `QuantizationWorkflowError.wrongMode` when either module is in training mode;
///   `.unfusablePattern` when the batch norm has no running statistics or its channel count differs from the
///   convolution's output channels.
public func fuseConvBatchNormEval(_ conv: Conv2d, _ batchNorm: BatchNorm2d) throws -> Conv2d {
    try foldedForEvaluation(
        conv, batchNorm, outputs: conv.outChannels,
        operation: "folding a BatchNorm into a convolution (fuseConvBatchNormEval, fuseModules)"
    ) {
        let (weight, bias) = try foldBatchNorm(batchNorm, mean: $0, variance: $1, into: conv.weight.data,
                                               bias: conv.bias?.data, with: fuseConvBatchNormWeights)
        return try Conv2d(weight: weight, bias: bias, stride: conv.stride, padding: conv.padding,
                          dilation: conv.dilation, groups: conv.groups)
    }
}

/// A new `Linear` (evaluation mode, same qconfig) with `batchNorm` folded in with its running statistics.
///
/// PyTorch: `torch.nn.utils.fusion.fuse_linear_bn_eval(linear, bn)`.
/// - Throws: `QuantizationWorkflowError.wrongMode` when either module is in training mode;
///   `.unfusablePattern` when the batch norm has no running statistics or its feature count differs from the
///   layer's output features.
public func fuseLinearBatchNormEval(_ linear: Linear, _ batchNorm: BatchNorm1d) throws -> Linear {
    try foldedForEvaluation(
        linear, batchNorm, outputs: linear.outFeatures,
        operation: "folding a BatchNorm into a linear layer (fuseLinearBatchNormEval, fuseModules)"
    ) {
        let (weight, bias) = try foldBatchNorm(batchNorm, mean: $0, variance: $1, into: linear.weight.data,
                                               bias: linear.bias?.data, with: fuseLinearBatchNormWeights)
        return try Linear(weight: weight, bias: bias)
    }
}

// MARK: - Helpers

/// `fuseConvBatchNormWeights` or `fuseLinearBatchNormWeights`.
typealias BatchNormWeightFolding = (
    _ weight: Tensor<Float>, _ bias: Tensor<Float>?, _ runningMean: Tensor<Float>, _ runningVar: Tensor<Float>,
    _ eps: Float, _ batchNormWeight: Tensor<Float>?, _ batchNormBias: Tensor<Float>?
) throws -> (weight: Tensor<Float>, bias: Tensor<Float>)

/// `weight` and `bias` with `batchNorm` (its `mean` / `variance` statistics, eps and affine parameters) folded in
/// by `folding`.
func foldBatchNorm(_ batchNorm: BatchNorm, mean: Tensor<Float>, variance: Tensor<Float>, into weight: Tensor<Float>,
                   bias: Tensor<Float>?, with folding: BatchNormWeightFolding) throws
    -> (weight: Tensor<Float>, bias: Tensor<Float>)
{
    try folding(weight, bias, mean, variance, batchNorm.eps, batchNorm.weight?.data, batchNorm.bias?.data)
}

/// The new layer `build(mean, variance)` makes with `batchNorm` folded into `layer`, in evaluation mode with the
/// layer's assigned qconfig, after checking the modes and the statistics.
private func foldedForEvaluation<Layer: Module>(
    _ layer: Layer, _ batchNorm: BatchNorm, outputs: Int, operation: String,
    _ build: (_ mean: Tensor<Float>, _ variance: Tensor<Float>) throws -> Layer
) throws -> Layer {
    guard !layer.training, !batchNorm.training else {
        throw QuantizationWorkflowError.wrongMode(
            operation: operation,
            expected: "evaluation mode (call model.eval() first; for training use fuseModulesQAT)")
    }
    let (mean, variance) = try runningStatistics(batchNorm, outputs: outputs, first: layer)
    let folded = try build(mean, variance)
    folded.eval()
    if layer.hasAssignedQConfig { folded.qconfig = layer.qconfig }
    return folded
}

/// The running statistics of a batch norm that is folded into `first`, checked against its output count.
func runningStatistics(_ batchNorm: BatchNorm, outputs: Int, first: Module) throws
    -> (mean: Tensor<Float>, variance: Tensor<Float>)
{
    func fail(_ reason: String) -> QuantizationWorkflowError {
        .unfusablePattern(modules: [first.path, batchNorm.path], types: [first.typeName, batchNorm.typeName],
                          reason: reason)
    }
    guard batchNorm.numFeatures == outputs else {
        throw fail("the batch norm has \(batchNorm.numFeatures) features but the layer before it has \(outputs) "
                   + "outputs; they must be equal")
    }
    guard let mean = batchNorm.runningMean, let variance = batchNorm.runningVar else {
        throw fail("the batch norm has no running statistics (trackRunningStats: false), so there is nothing to "
                   + "fold; keep it unfused")
    }
    return (mean, variance)
}

/// The folded weight (rows scaled by `gamma * invstd`) and bias `foldedBias(b, mean, invstd, gamma, gamma * invstd)
/// + beta` per output channel, after checking that every operand holds one value per output channel.
private func fold(
    _ operation: String, weight: Tensor<Float>, bias: Tensor<Float>?, runningMean: Tensor<Float>,
    runningVar: Tensor<Float>, eps: Float, batchNormWeight: Tensor<Float>?, batchNormBias: Tensor<Float>?,
    foldedBias: (_ bias: Float, _ mean: Float, _ invstd: Float, _ gamma: Float, _ scale: Float) -> Float
) throws -> (weight: Tensor<Float>, bias: Tensor<Float>) {
    guard weight.rank >= 1, weight.shape[0] > 0 else {
        throw QuantizationError.invalidOperand(
            operation: operation, reason: "the weight must have an output dimension first, got shape \(weight.shape)")
    }
    let channels = weight.shape[0]
    let operands: [(String, Tensor<Float>?)] = [("running_mean", runningMean), ("running_var", runningVar),
                                                ("the batch norm weight", batchNormWeight),
                                                ("the batch norm bias", batchNormBias), ("the bias", bias)]
    for (name, tensor) in operands {
        if let tensor, tensor.shape != [channels] {
            throw QuantizationError.invalidOperand(
                operation: operation, reason: "\(name) must have shape [\(channels)] (one value per output channel "
                    + "of the weight \(weight.shape)), got \(tensor.shape)")
        }
    }
    // PyTorch: torch.rsqrt(bn_rv + bn_eps), i.e. 1 / sqrtf(v + eps) on CPU.
    let invstd = runningVar.scalars.map { 1 / ($0 + eps).squareRoot() }
    let gamma = batchNormWeight?.scalars ?? Array(repeating: 1, count: channels)
    let beta = batchNormBias?.scalars ?? Array(repeating: 0, count: channels)
    let b = bias?.scalars ?? Array(repeating: 0, count: channels)
    let mean = runningMean.scalars
    let scale = (0..<channels).map { gamma[$0] * invstd[$0] }
    let folded = (0..<channels).map { i -> Float in
        let unshifted = foldedBias(b[i], mean[i], invstd[i], gamma[i], scale[i])
        return unshifted + beta[i]
    }
    return (try scaledRows(weight, scale), Tensor(folded))
}

/// `weight` with each slice along dimension 0 multiplied by `scale[slice]`.
private func scaledRows(_ weight: Tensor<Float>, _ scale: [Float]) throws -> Tensor<Float> {
    let inner = weight.count / max(scale.count, 1)
    var values = weight.scalars
    for channel in 0..<scale.count {
        let s = scale[channel]
        for i in channel * inner..<(channel + 1) * inner { values[i] *= s }
    }
    return try Tensor(shape: weight.shape, scalars: values)
}
