/// The weight fake-quantize child of a QAT module, from its qconfig.
private func makeWeightFakeQuant(_ qconfig: QConfig) throws -> ObserverModule {
    ObserverModule(try qconfig.weight())
}

/// The qconfig a QAT module is built with: the float (or fused) module's own. PyTorch: `assert mod.qconfig`.
private func requireQConfig(_ module: Module) throws -> QConfig {
    guard let qconfig = module.qconfig else {
        throw QuantizationWorkflowError.missingQConfig(module: module.displayName)
    }
    return qconfig
}

/// The paths of a fused unit's members (`"features.0.0"`, ...), for error messages.
private func memberPaths(_ path: String, _ count: Int) -> [String] {
    (0..<count).map { path.isEmpty ? String($0) : "\(path).\($0)" }
}

/// `a / b` with broadcasting, recorded for backward (`da = dy / b`, `db = -dy * a / b^2`, summed to each shape).
/// PyTorch: `torch.div(a, b)`, used by the QAT batch-norm folding (`conv / scale_factor`).
func qatDivide(_ a: Variable, _ b: Variable) throws -> Variable {
    let x = try a.floatTensor(for: "div"), y = try b.floatTensor(for: "div")
    guard let shape = TensorMath.broadcastShape(x.shape, y.shape) else {
        throw QuantizationError.invalidOperand(
            operation: "div", reason: "the shapes \(x.shape) and \(y.shape) do not broadcast")
    }
    let result = TensorMath.broadcast(x, y, to: shape, /)
    return Autograd.record("DivBackward", output: result, inputs: [a, b]) { dy in
        let ga = a.requiresGrad ? TensorMath.sum(TensorMath.broadcast(dy, y, to: shape, /), toShape: x.shape) : nil
        var gb: Tensor<Float>? = nil
        if b.requiresGrad {
            let product = TensorMath.broadcast(dy, x, to: shape, *)
            gb = TensorMath.sum(TensorMath.broadcast(product, y, to: shape) { -$0 / ($1 * $1) }, toShape: y.shape)
        }
        return [ga, gb]
    }
}

// MARK: - Linear

/// A linear layer for quantization-aware training: `y = x fq(W)^T + b`, with the weight fake-quantized by its
/// `weight_fake_quant` child (gradients pass straight through). Built from a float `Linear` with a qconfig, sharing
/// its `weight` and `bias` parameters (so an optimizer over either model trains both). `convert` makes it a
/// `QuantizedLinear`.
///
/// PyTorch: `torch.ao.nn.qat.Linear` (`nnqat.Linear.from_float(linear)`).
public class QATLinear: Module, QATModule {
    /// PyTorch: `in_features`.
    public let inFeatures: Int
    /// PyTorch: `out_features`.
    public let outFeatures: Int
    /// `[outFeatures, inFeatures]`, shared with the float layer it was built from. PyTorch: `weight`.
    public let weight: Parameter
    /// `[outFeatures]` or nil, shared with the float layer. PyTorch: `bias`.
    public let bias: Parameter?

    /// From a float `Linear` with a qconfig (its `weight()` makes the weight fake quantization); the parameters are
    /// shared, the training mode copied.
    /// PyTorch: `nnqat.Linear.from_float(mod)`.
    /// - Throws: `QuantizationWorkflowError.missingQConfig` when the layer has no qconfig; what the qconfig throws.
    public convenience init(from linear: Linear) throws {
        try self.init(linear, qconfig: requireQConfig(linear))
    }

    init(_ linear: Linear, qconfig: QConfig) throws {
        inFeatures = linear.inFeatures
        outFeatures = linear.outFeatures
        weight = linear.weight
        bias = linear.bias
        super.init()
        try registerParameter("weight", weight)
        try registerParameter("bias", bias)
        try registerModule("weight_fake_quant", makeWeightFakeQuant(qconfig))
        self.qconfig = qconfig
        train(linear.training)
    }

    /// The weight's fake quantization. PyTorch: `weight_fake_quant`.
    public var weightFakeQuant: ObserverModule {
        get throws { try child("weight_fake_quant", as: ObserverModule.self) }
    }

    /// `linear(x, weight_fake_quant(weight), bias)`. PyTorch: `nnqat.Linear.forward(x)`.
    /// - Throws: `QuantizationError.invalidOperand` naming this module for a quantized input or a wrong shape.
    public override func forward(_ input: Variable) throws -> Variable {
        try attributingErrors {
            try Functional.linear(input, weight: weightFakeQuant(weight), bias: bias)
        }
    }

    public override var extraDescription: String {
        "in_features=\(inFeatures), out_features=\(outFeatures), bias=\(pythonBool(bias != nil))"
    }
}

/// `QATLinear` then ReLU: what `prepareQAT` makes of a `LinearReLU`. `convert` makes it a `QuantizedLinearReLU`.
/// PyTorch: `torch.ao.nn.intrinsic.qat.LinearReLU`.
public final class QATLinearReLU: QATLinear {
    /// From a fused `LinearReLU` with a qconfig (the fused module's), sharing the linear layer's parameters.
    /// PyTorch: `nniqat.LinearReLU.from_float(mod)`.
    /// - Throws: `QuantizationWorkflowError.missingQConfig`; what the qconfig throws.
    public init(from fused: LinearReLU) throws {
        try super.init(fused.linear, qconfig: requireQConfig(fused))
        train(fused.training)
    }

    /// `relu(linear(x, weight_fake_quant(weight), bias))`. PyTorch: `nniqat.LinearReLU.forward(x)`.
    public override func forward(_ input: Variable) throws -> Variable {
        try attributingErrors { try Functional.relu(super.forward(input)) }
    }
}

// MARK: - Conv2d

/// A 2-D convolution for quantization-aware training: `conv2d(x, fq(W), b)` with the weight fake-quantized by its
/// `weight_fake_quant` child. Built from a float `Conv2d` with a qconfig, sharing its parameters. `convert` makes it
/// a `QuantizedConv2d`.
///
/// PyTorch: `torch.ao.nn.qat.Conv2d` (`nnqat.Conv2d.from_float(conv)`).
public class QATConv2d: Module, QATModule {
    /// PyTorch: `in_channels`.
    public let inChannels: Int
    /// PyTorch: `out_channels`.
    public let outChannels: Int
    /// PyTorch: `kernel_size`.
    public let kernelSize: Size2d
    /// PyTorch: `stride`.
    public let stride: Size2d
    /// PyTorch: `padding`.
    public let padding: Size2d
    /// PyTorch: `dilation`.
    public let dilation: Size2d
    /// PyTorch: `groups`.
    public let groups: Int
    /// `[outChannels, inChannels / groups, kh, kw]`, shared with the float layer. PyTorch: `weight`.
    public let weight: Parameter
    /// `[outChannels]` or nil, shared with the float layer. PyTorch: `bias`.
    public let bias: Parameter?

    /// From a float `Conv2d` with a qconfig; the parameters are shared, the training mode copied.
    /// PyTorch: `nnqat.Conv2d.from_float(mod)`.
    /// - Throws: `QuantizationWorkflowError.missingQConfig` when the layer has no qconfig; what the qconfig throws.
    public convenience init(from conv: Conv2d) throws {
        try self.init(conv, qconfig: requireQConfig(conv), training: conv.training)
    }

    init(_ conv: Conv2d, qconfig: QConfig, training: Bool, children: [(String, Module)] = []) throws {
        inChannels = conv.inChannels
        outChannels = conv.outChannels
        kernelSize = conv.kernelSize
        stride = conv.stride
        padding = conv.padding
        dilation = conv.dilation
        groups = conv.groups
        weight = conv.weight
        bias = conv.bias
        super.init()
        try registerParameter("weight", weight)
        try registerParameter("bias", bias)
        for (name, child) in children { try registerModule(name, child) }
        try registerModule("weight_fake_quant", makeWeightFakeQuant(qconfig))
        self.qconfig = qconfig
        train(training)
    }

    /// The weight's fake quantization. PyTorch: `weight_fake_quant`.
    public var weightFakeQuant: ObserverModule {
        get throws { try child("weight_fake_quant", as: ObserverModule.self) }
    }

    func convolution(_ input: Variable, weight: Variable, bias: Variable?) throws -> Variable {
        try Functional.conv2d(input, weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation,
                              groups: groups)
    }

    /// `conv2d(x, weight_fake_quant(weight), bias)`. PyTorch: `nnqat.Conv2d.forward(x)`.
    /// - Throws: `QuantizationError.invalidOperand` naming this module for a quantized input or a wrong shape.
    public override func forward(_ input: Variable) throws -> Variable {
        try attributingErrors { try convolution(input, weight: weightFakeQuant(weight), bias: bias) }
    }

    public override var extraDescription: String {
        var parts = ["\(inChannels), \(outChannels), kernel_size=\(kernelSize), stride=\(stride)"]
        if padding != 0 { parts.append("padding=\(padding)") }
        if dilation != 1 { parts.append("dilation=\(dilation)") }
        if groups != 1 { parts.append("groups=\(groups)") }
        if bias == nil { parts.append("bias=False") }
        return parts.joined(separator: ", ")
    }
}

/// `QATConv2d` then ReLU: what `prepareQAT` makes of a `ConvReLU2d`. `convert` makes it a `QuantizedConvReLU2d`.
/// PyTorch: `torch.ao.nn.intrinsic.qat.ConvReLU2d`.
public final class QATConvReLU2d: QATConv2d {
    /// From a fused `ConvReLU2d` with a qconfig (the fused module's), sharing the convolution's parameters.
    /// PyTorch: `nniqat.ConvReLU2d.from_float(mod)`.
    /// - Throws: `QuantizationWorkflowError.missingQConfig`; what the qconfig throws.
    public init(from fused: ConvReLU2d) throws {
        try super.init(fused.conv, qconfig: requireQConfig(fused), training: fused.training)
    }

    /// `relu(conv2d(x, weight_fake_quant(weight), bias))`. PyTorch: `nniqat.ConvReLU2d.forward(x)`.
    public override func forward(_ input: Variable) throws -> Variable {
        try attributingErrors { try Functional.relu(super.forward(input)) }
    }
}

// MARK: - BatchNorm folding while training

/// The checks and the scale factor shared by the QAT modules that fold a batch norm.
private func qatBatchNormChecks(_ batchNorm: BatchNorm, outputs: Int, names: [String], types: [String]) throws {
    func fail(_ reason: String) -> QuantizationWorkflowError {
        .unfusablePattern(modules: names, types: types, reason: reason)
    }
    guard batchNorm.numFeatures == outputs else {
        throw fail("the batch norm has \(batchNorm.numFeatures) features for \(outputs) outputs")
    }
    guard batchNorm.affine, batchNorm.trackRunningStats else {
        throw fail("quantization-aware training folds only an affine batch norm with running statistics")
    }
}

/// `gamma / sqrt(running_var + eps)` as a variable (gradient to gamma). PyTorch: `scale_factor` in
/// `_forward_approximate`.
private func scaleFactor(_ batchNorm: BatchNorm, owner: String) throws -> Variable {
    guard let runningVar = batchNorm.runningVar, let gamma = batchNorm.weight else {
        throw QuantizationError.invalidOperand(
            operation: owner, reason: "the batch norm lost its running variance or weight; QAT folding needs both")
    }
    let eps = batchNorm.eps
    let runningStd = TensorMath.map(runningVar) { ($0 + eps).squareRoot() }
    return try qatDivide(gamma, Variable(runningStd))
}

/// What `QATConvBn2d` and `QATLinearBn1d` share: a `bn` child folded into the fake-quantized weight while
/// training, and the freezing of its statistics.
protocol QATBatchNormFolding: QATModule {
    var weight: Parameter { get }
    var bias: Parameter? { get }
    var isBatchNormFrozen: Bool { get set }
}

extension QATBatchNormFolding {
    /// The `bn` child, as the base class (its typed accessor is the subclass's).
    private var foldedBatchNorm: BatchNorm { get throws { try child("bn", as: BatchNorm.self) } }

    /// Keeps a frozen batch norm in evaluation mode after the module's mode changed.
    func keepFrozenBatchNormInEvaluation() {
        if isBatchNormFrozen, let bn = try? foldedBatchNorm { bn.train(false) }
    }

    /// Freezes (evaluation mode) or resumes (the module's mode) the batch-norm statistics.
    func setBatchNormFrozen(_ frozen: Bool) {
        isBatchNormFrozen = frozen
        if let bn = try? foldedBatchNorm { bn.train(frozen ? false : training) }
    }

    /// `bn(layer(x, fq(W * s)) / s + b)`, `s` broadcast along the output dimension (first of the weight, second of
    /// the output). PyTorch: `_ConvBnNd._forward_approximate(x)`, `LinearBn1d.forward(x)`.
    func batchNormFoldedForward(_ layer: (_ fakeQuantizedWeight: Variable) throws -> Variable) throws -> Variable {
        try attributingErrors {
            let bn = try foldedBatchNorm
            let scale = try scaleFactor(bn, owner: displayName)
            let outputs = weight.data.shape[0]
            let ones = Array(repeating: 1, count: weight.data.rank - 2)
            let scaledWeight = try Functional.mul(weight, Functional.reshape(scale, [outputs, 1] + ones))
            let y = try layer(weightFakeQuant(scaledWeight))
            var unscaled = try qatDivide(y, Functional.reshape(scale, [1, outputs] + ones))
            if let bias { unscaled = try Functional.add(unscaled, Functional.reshape(bias, [1, outputs] + ones)) }
            return try bn(unscaled)
        }
    }

    /// The weight and bias with the batch norm folded in by `folding` with its running statistics.
    func foldedWithRunningStatistics(by folding: BatchNormWeightFolding) throws
        -> (weight: Tensor<Float>, bias: Tensor<Float>)
    {
        let bn = try foldedBatchNorm
        guard let mean = bn.runningMean, let variance = bn.runningVar else {
            throw QuantizationError.invalidOperand(operation: displayName, reason: "the batch norm has no running "
                                                   + "statistics to fold")
        }
        return try foldBatchNorm(bn, mean: mean, variance: variance, into: weight.data, bias: bias?.data, with: folding)
    }
}

/// A convolution followed by a batch norm, trained with the batch norm folded into the fake-quantized weight:
/// `bn(conv(x, fq(W * s)) / s + b)` with `s = gamma / sqrt(running_var + eps)` (the running statistics of the
/// previous steps scale the weight; the batch norm itself still normalizes with the batch statistics and updates its
/// running ones in training). `freezeBNStats()` puts the batch norm in evaluation mode, so training continues with
/// the frozen running statistics, as the folded model will compute. `convert` folds the batch norm with its running
/// statistics and makes a `QuantizedConv2d`.
///
/// Children `bn` (the fused module's `BatchNorm2d`, its parameters and statistics shared) and `weight_fake_quant`.
///
/// PyTorch: `torch.ao.nn.intrinsic.qat.ConvBn2d` (`_ConvBnNd._forward_approximate`).
public class QATConvBn2d: QATConv2d, QATBatchNormFolding {
    /// Whether the batch norm statistics are frozen (the batch norm stays in evaluation mode even when the model
    /// trains). PyTorch: `freeze_bn`.
    public internal(set) var isBatchNormFrozen = false

    /// From a fused `ConvBn2d` with a qconfig (the fused module's); the convolution's and batch norm's parameters and
    /// statistics are shared.
    /// PyTorch: `nniqat.ConvBn2d.from_float(mod)`.
    /// - Throws: `QuantizationWorkflowError.missingQConfig`; `.unfusablePattern` for a batch norm that is not affine, has
    ///   no running statistics or another channel count; what the qconfig throws.
    public convenience init(from fused: ConvBn2d) throws {
        try self.init(fused.conv, fused.batchNorm, qconfig: requireQConfig(fused), training: fused.training,
                      path: fused.path)
    }

    init(_ conv: Conv2d, _ batchNorm: BatchNorm2d, qconfig: QConfig, training: Bool, path: String) throws {
        try qatBatchNormChecks(batchNorm, outputs: conv.outChannels, names: memberPaths(path, 2),
                               types: [conv.typeName, batchNorm.typeName])
        // The batch norm lives inside this unit: no qconfig of its own, so convert does not swap it separately.
        batchNorm.qconfig = nil
        try super.init(conv, qconfig: qconfig, training: training, children: [("bn", batchNorm)])
    }

    /// The batch norm. PyTorch: `bn`.
    public var batchNorm: BatchNorm2d { get throws { try child("bn", as: BatchNorm2d.self) } }

    /// Sets the mode; a frozen batch norm stays in evaluation mode. PyTorch: `_ConvBnNd.train(mode)`.
    public override func train(_ mode: Bool = true) {
        super.train(mode)
        keepFrozenBatchNormInEvaluation()
    }

    /// Stops updating (and using) batch statistics: the batch norm runs in evaluation mode from now on.
    /// PyTorch: `freeze_bn_stats()`.
    public func freezeBNStats() { setBatchNormFrozen(true) }

    /// Resumes batch statistics: the batch norm follows this module's mode again.
    /// PyTorch: `update_bn_stats()` (which sets the batch norm to training mode unconditionally).
    public func updateBNStats() { setBatchNormFrozen(false) }

    /// `bn(conv(x, fq(W * s)) / s + b)`. PyTorch: `_ConvBnNd._forward_approximate(x)`.
    /// - Throws: `QuantizationError.invalidOperand` naming this module for a quantized input or a wrong shape.
    public override func forward(_ input: Variable) throws -> Variable {
        try batchNormFoldedForward { try convolution(input, weight: $0, bias: nil) }
    }

    /// The weight and bias with the batch norm folded in with its running statistics (what `convert` quantizes).
    /// PyTorch: `fuse_conv_bn_weights(mod.weight, mod.bias, mod.bn.running_mean, mod.bn.running_var, ...)`.
    /// - Throws: `QuantizationError.invalidOperand` when the statistics are missing or have wrong shapes.
    public func foldedWeightAndBias() throws -> (weight: Tensor<Float>, bias: Tensor<Float>) {
        try foldedWithRunningStatistics(by: fuseConvBatchNormWeights)
    }
}

/// `QATConvBn2d` then ReLU: what `prepareQAT` makes of a `ConvBnReLU2d`. `convert` makes it a
/// `QuantizedConvReLU2d` with the batch norm folded in with its running statistics.
/// PyTorch: `torch.ao.nn.intrinsic.qat.ConvBnReLU2d`.
public final class QATConvBnReLU2d: QATConvBn2d {
    /// From a fused `ConvBnReLU2d` with a qconfig (the fused module's), sharing parameters and statistics.
    /// PyTorch: `nniqat.ConvBnReLU2d.from_float(mod)`.
    /// - Throws: as `QATConvBn2d(from:)`.
    public init(from fused: ConvBnReLU2d) throws {
        try super.init(fused.conv, fused.batchNorm, qconfig: requireQConfig(fused), training: fused.training,
                       path: fused.path)
    }

    /// `relu(bn(conv(x, fq(W * s)) / s + b))`. PyTorch: `nniqat.ConvBnReLU2d.forward(x)`.
    public override func forward(_ input: Variable) throws -> Variable {
        try attributingErrors { try Functional.relu(super.forward(input)) }
    }
}

/// A linear layer followed by a `BatchNorm1d`, trained with the batch norm folded into the fake-quantized weight as
/// `QATConvBn2d` does: `bn(linear(x, fq(W * s)) / s + b)`. `convert` folds the batch norm with its running
/// statistics and makes a `QuantizedLinear`.
///
/// Children `bn` (shared with the fused module) and `weight_fake_quant`.
///
/// PyTorch: `torch.ao.nn.intrinsic.qat.LinearBn1d`.
public final class QATLinearBn1d: Module, QATBatchNormFolding {
    /// PyTorch: `in_features`.
    public let inFeatures: Int
    /// PyTorch: `out_features`.
    public let outFeatures: Int
    /// `[outFeatures, inFeatures]`, shared with the float layer. PyTorch: `weight`.
    public let weight: Parameter
    /// `[outFeatures]` or nil, shared with the float layer. PyTorch: `bias`.
    public let bias: Parameter?
    /// Whether the batch norm statistics are frozen. PyTorch: `freeze_bn`.
    public internal(set) var isBatchNormFrozen = false

    /// From a fused `LinearBn1d` with a qconfig (the fused module's), sharing parameters and statistics.
    /// PyTorch: `nniqat.LinearBn1d.from_float(mod)`.
    /// - Throws: `QuantizationWorkflowError.missingQConfig`; `.unfusablePattern` for a batch norm that is not affine, has
    ///   no running statistics or another feature count; what the qconfig throws.
    public init(from fused: LinearBn1d) throws {
        let qconfig = try requireQConfig(fused)
        let linear = try fused.linear, batchNorm = try fused.batchNorm
        try qatBatchNormChecks(batchNorm, outputs: linear.outFeatures,
                               names: memberPaths(fused.path, 2),
                               types: [linear.typeName, batchNorm.typeName])
        inFeatures = linear.inFeatures
        outFeatures = linear.outFeatures
        weight = linear.weight
        bias = linear.bias
        super.init()
        try registerParameter("weight", weight)
        try registerParameter("bias", bias)
        batchNorm.qconfig = nil
        try registerModule("bn", batchNorm)
        try registerModule("weight_fake_quant", makeWeightFakeQuant(qconfig))
        self.qconfig = qconfig
        train(fused.training)
    }

    /// The weight's fake quantization. PyTorch: `weight_fake_quant`.
    public var weightFakeQuant: ObserverModule {
        get throws { try child("weight_fake_quant", as: ObserverModule.self) }
    }

    /// The batch norm. PyTorch: `bn`.
    public var batchNorm: BatchNorm1d { get throws { try child("bn", as: BatchNorm1d.self) } }

    /// Sets the mode; a frozen batch norm stays in evaluation mode. PyTorch: `LinearBn1d.train(mode)`.
    public override func train(_ mode: Bool = true) {
        super.train(mode)
        keepFrozenBatchNormInEvaluation()
    }

    /// Stops updating (and using) batch statistics. PyTorch: `freeze_bn_stats()`.
    public func freezeBNStats() { setBatchNormFrozen(true) }

    /// Resumes batch statistics. PyTorch: `update_bn_stats()`.
    public func updateBNStats() { setBatchNormFrozen(false) }

    /// `bn(linear(x, fq(W * s)) / s + b)`. PyTorch: `nniqat.LinearBn1d.forward(x)`.
    /// - Throws: `QuantizationError.invalidOperand` naming this module for a quantized input or a wrong shape.
    public override func forward(_ input: Variable) throws -> Variable {
        try batchNormFoldedForward { try Functional.linear(input, weight: $0) }
    }

    /// The weight and bias with the batch norm folded in with its running statistics (what `convert` quantizes).
    /// PyTorch: `fuse_linear_bn_weights(mod.weight, mod.bias, mod.bn.running_mean, ...)`.
    /// - Throws: `QuantizationError.invalidOperand` when the statistics are missing or have wrong shapes.
    public func foldedWeightAndBias() throws -> (weight: Tensor<Float>, bias: Tensor<Float>) {
        try foldedWithRunningStatistics(by: fuseLinearBatchNormWeights)
    }

    public override var extraDescription: String {
        "in_features=\(inFeatures), out_features=\(outFeatures), bias=\(pythonBool(bias != nil))"
    }
}

// MARK: - Tree-wide controls (used with `model.apply`)

/// Freezes the batch-norm statistics of a QAT module that folds a batch norm (`QATConvBn2d`, `QATConvBnReLU2d`,
/// `QATLinearBn1d`); other modules are left alone. Apply it to a whole model: `model.apply(freezeBNStats)`.
///
/// PyTorch: `torch.ao.nn.intrinsic.qat.freeze_bn_stats(mod)` with `model.apply(...)` (which skips `LinearBn1d`;
/// here it is frozen too).
public func freezeBNStats(_ module: Module) {
    (module as? any QATBatchNormFolding)?.setBatchNormFrozen(true)
}

/// Resumes the batch-norm statistics of a QAT module that folds a batch norm; use `model.apply(updateBNStats)`.
/// PyTorch: `torch.ao.nn.intrinsic.qat.update_bn_stats(mod)`.
public func updateBNStats(_ module: Module) {
    (module as? any QATBatchNormFolding)?.setBatchNormFrozen(false)
}

/// Stops the statistics of a fake-quantize module (`ObserverModule` wrapping one): its quantization parameters stay
/// as they are. Use `model.apply(disableObserver)` late in QAT.
/// PyTorch: `torch.ao.quantization.disable_observer` with `model.apply(...)`.
public func disableObserver(_ module: Module) {
    if let observer = module as? ObserverModule, case let .fakeQuantize(fq) = observer.observerOrFakeQuantize {
        fq.disableObserver()
    }
}

/// Resumes the statistics of a fake-quantize module. PyTorch: `torch.ao.quantization.enable_observer`.
public func enableObserver(_ module: Module) {
    if let observer = module as? ObserverModule, case let .fakeQuantize(fq) = observer.observerOrFakeQuantize {
        fq.enableObserver()
    }
}

/// Turns off the rounding of a fake-quantize module (it passes float values through).
/// PyTorch: `torch.ao.quantization.disable_fake_quant`.
public func disableFakeQuant(_ module: Module) {
    if let observer = module as? ObserverModule, case let .fakeQuantize(fq) = observer.observerOrFakeQuantize {
        fq.disableFakeQuant()
    }
}

/// Turns the rounding of a fake-quantize module back on. PyTorch: `torch.ao.quantization.enable_fake_quant`.
public func enableFakeQuant(_ module: Module) {
    if let observer = module as? ObserverModule, case let .fakeQuantize(fq) = observer.observerOrFakeQuantize {
        fq.enableFakeQuant()
    }
}
