/// Batch normalization over the channels (dimension 1): the shared implementation of `BatchNorm1d` and
/// `BatchNorm2d`.
///
/// In training mode it normalizes with the batch's statistics and moves the running statistics towards them
/// (`running = (1 - momentum) * running + momentum * batch`, the unbiased batch variance for `running_var`; with
/// `momentum` nil, the cumulative average `1 / num_batches_tracked`); in evaluation mode it normalizes with the
/// running statistics. Parameters `weight` (ones) and `bias` (zeros) with `affine`; buffers `running_mean` (zeros),
/// `running_var` (ones) and `num_batches_tracked` (0, saved as int64) with `trackRunningStats`.
///
/// PyTorch: `torch.nn.modules.batchnorm._BatchNorm`.
open class BatchNorm: Module {
    /// PyTorch: `bn.num_features`.
    public let numFeatures: Int
    /// Added to the variance. PyTorch: `bn.eps`.
    public let eps: Float
    /// The running-average factor, or nil for a cumulative average. PyTorch: `bn.momentum`.
    public let momentum: Float?
    /// Whether `weight` and `bias` exist. PyTorch: `bn.affine`.
    public let affine: Bool
    /// Whether running statistics exist (else batch statistics are used in evaluation too).
    /// PyTorch: `bn.track_running_stats`.
    public let trackRunningStats: Bool
    /// `[numFeatures]`, ones at start; nil without `affine`. PyTorch: `bn.weight`.
    public let weight: Parameter?
    /// `[numFeatures]`, zeros at start; nil without `affine`. PyTorch: `bn.bias`.
    public let bias: Parameter?

    /// PyTorch: `nn.BatchNorm2d(num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True)`.
    /// - Throws: `QuantizationError.invalidOperand` for `numFeatures < 1`, a negative or non-finite `eps`, or a
    ///   `momentum` outside [0, 1].
    public init(_ numFeatures: Int, eps: Float = 1e-5, momentum: Float? = 0.1, affine: Bool = true,
                trackRunningStats: Bool = true) throws {
        let name = String(describing: Self.self)
        guard numFeatures >= 1 else {
            throw QuantizationError.invalidOperand(operation: name, reason: "num_features must be >= 1, got \(numFeatures)")
        }
        guard eps >= 0, eps.isFinite else {
            throw QuantizationError.invalidOperand(operation: name, reason: "eps must be finite and >= 0, got \(eps)")
        }
        if let momentum, !(momentum >= 0 && momentum <= 1) {
            throw QuantizationError.invalidOperand(operation: name, reason: "momentum must be in [0, 1], got \(momentum)")
        }
        self.numFeatures = numFeatures
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.trackRunningStats = trackRunningStats
        weight = affine ? Parameter(TensorMath.filled(1, [numFeatures])) : nil
        bias = affine ? Parameter(TensorMath.zeros([numFeatures])) : nil
        super.init()
        try registerParameter("weight", weight)
        try registerParameter("bias", bias)
        try registerBuffer("running_mean", trackRunningStats ? TensorMath.zeros([numFeatures]) : nil)
        try registerBuffer("running_var", trackRunningStats ? TensorMath.filled(1, [numFeatures]) : nil)
        try registerBuffer("num_batches_tracked", trackRunningStats ? TensorMath.zeros([]) : nil, dtype: .int64)
    }

    /// The running mean `[numFeatures]` (nil without `trackRunningStats`). PyTorch: `bn.running_mean`.
    public var runningMean: Tensor<Float>? { (try? buffer("running_mean")) ?? nil }
    /// The running variance `[numFeatures]` (nil without `trackRunningStats`). PyTorch: `bn.running_var`.
    public var runningVar: Tensor<Float>? { (try? buffer("running_var")) ?? nil }
    /// Training batches seen (nil without `trackRunningStats`). PyTorch: `bn.num_batches_tracked`.
    public var numBatchesTracked: Int? {
        ((try? buffer("num_batches_tracked")) ?? nil).map { Int($0.scalars[0]) }
    }

    /// Checks the input's rank; subclasses accept their own ranks. PyTorch: `_check_input_dim`.
    open func checkInputRank(_ shape: [Int]) throws {}

    /// PyTorch: `bn(x)` (`_BatchNorm.forward`).
    /// - Throws: `QuantizationError.invalidOperand` naming this module for a quantized input, a wrong rank or
    ///   channel count, or a single value per channel in training.
    open override func forward(_ input: Variable) throws -> Variable {
        try attributingErrors {
            try checkInputRank(input.shape)
            var factor = momentum ?? 0
            if training, trackRunningStats {
                let tracked = try updateBuffer("num_batches_tracked") { (t: inout Tensor<Float>?) -> Float in
                    let next = (t?.scalars.first ?? 0) + 1
                    t = TensorMath.filled(next, [])
                    return next
                }
                if momentum == nil { factor = 1 / tracked }
            }
            // Batch statistics in training, and in evaluation when no running statistics exist.
            let useBatchStatistics = training || !trackRunningStats
            var mean = try buffer("running_mean"), variance = try buffer("running_var")
            if useBatchStatistics && !trackRunningStats { mean = nil; variance = nil }
            let y = try Functional.batchNorm(input, runningMean: &mean, runningVar: &variance, weight: weight,
                                             bias: bias, training: useBatchStatistics, momentum: factor, eps: eps)
            if training, trackRunningStats {
                try setBuffer("running_mean", mean)
                try setBuffer("running_var", variance)
            }
            return y
        }
    }

    /// PyTorch: `16, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True`.
    open override var extraDescription: String {
        "\(numFeatures), eps=\(eps), momentum=\(momentum.map { "\($0)" } ?? "None"), affine=\(pythonBool(affine)), "
            + "track_running_stats=\(pythonBool(trackRunningStats))"
    }
}

/// Batch normalization of `[N, C]` or `[N, C, L]` inputs. PyTorch: `torch.nn.BatchNorm1d`.
open class BatchNorm1d: BatchNorm {
    /// PyTorch: `BatchNorm1d._check_input_dim` ("expected 2D or 3D input").
    open override func checkInputRank(_ shape: [Int]) throws {
        guard shape.count == 2 || shape.count == 3 else {
            throw QuantizationError.invalidOperand(
                operation: "batch_norm", reason: "expected 2D or 3D input (got \(shape.count)D input, shape \(shape))")
        }
    }
}

/// Batch normalization of `[N, C, H, W]` inputs. PyTorch: `torch.nn.BatchNorm2d`.
open class BatchNorm2d: BatchNorm {
    /// PyTorch: `BatchNorm2d._check_input_dim` ("expected 4D input").
    open override func checkInputRank(_ shape: [Int]) throws {
        guard shape.count == 4 else {
            throw QuantizationError.invalidOperand(
                operation: "batch_norm", reason: "expected 4D input (got \(shape.count)D input, shape \(shape))")
        }
    }
}
