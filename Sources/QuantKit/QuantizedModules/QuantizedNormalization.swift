import Foundation

/// Batch normalization of quantized `[N, C, H, W]` batches with the running statistics: per channel
/// `alpha = invSigma * weight * (inScale / scale)`, `beta = (bias - mean * invSigma * weight) / scale`
/// (`invSigma = 1 / sqrt(var + eps)`), `y = clamp(zeroPoint + nearbyint(fma(alpha, q - inZeroPoint, beta)))`, which is
/// `quantize(batchNorm(dequantize(x)))` computed the way PyTorch's kernel does. What `convert` makes of a calibrated
/// `BatchNorm2d` (one not folded into a convolution).
///
/// State (buffers): `weight`, `bias` (with `affine`), `running_mean`, `running_var`, `scale`, `zero_point`.
///
/// PyTorch: `torch.ao.nn.quantized.BatchNorm2d` (`nnq.BatchNorm2d`, printed `QuantizedBatchNorm2d`), running
/// `torch.ops.quantized.batch_norm2d` (FBGEMM's `compute_fused_params` and `q_batch_norm_kernel`).
public class QuantizedBatchNorm2d: Module, ArchivableModule {
    /// PyTorch: `bn.num_features`.
    public let numFeatures: Int
    /// Added to the variance. PyTorch: `bn.eps`.
    public let eps: Float
    /// The output scale. PyTorch: `bn.scale`.
    public private(set) var scale: Float
    /// The output zero point. PyTorch: `bn.zero_point`.
    public private(set) var zeroPoint: Int

    /// Whether the output is clamped at the zero point (the fused ReLU of `QuantizedBNReLU2d`).
    class var fusesReLU: Bool { false }

    /// A layer with the given statistics `[C]`, optional affine `weight` and `bias` `[C]`, and the quint8 output
    /// parameters.
    ///
    /// PyTorch: `nnq.BatchNorm2d(num_features, eps)` with `weight`, `bias`, `running_mean`, `running_var`,
    /// `scale` and `zero_point` assigned.
    /// - Throws: `QuantizationError.invalidOperand` for statistics that are not `[C]` (C >= 1), only one of
    ///   `weight` and `bias`, or a negative or non-finite `eps`; `.invalidScale`, `.zeroPointOutOfRange` (quint8 output).
    public required init(runningMean: Tensor<Float>, runningVar: Tensor<Float>, weight: Tensor<Float>?,
                         bias: Tensor<Float>?, eps: Float = 1e-5, scale: Float, zeroPoint: Int) throws {
        numFeatures = try QuantizedBatchNorm2d.validate(runningMean, runningVar, weight, bias, eps: eps)
        try QParamChecks.checkPerTensor(scale: scale, zeroPoint: zeroPoint, dtype: .quint8, qscheme: .perTensorAffine)
        self.eps = eps
        self.scale = scale
        self.zeroPoint = zeroPoint
        super.init()
        try registerState(runningMean, runningVar, weight, bias)
    }

    /// From a prepared and calibrated `BatchNorm2d` (its running statistics, affine parameters and `eps`; the
    /// output parameters from its activation observer).
    ///
    /// PyTorch: `nnq.BatchNorm2d.from_float(bn)`.
    /// - Throws: `QuantizationWorkflowError.notPrepared`, `.notCalibrated`, `.unsupportedQConfig` (a batch norm
    ///   without running statistics).
    public init(from batchNorm: BatchNorm2d) throws {
        let state = try QuantizedBatchNorm2d.convertedState(batchNorm, unit: batchNorm)
        numFeatures = try QuantizedBatchNorm2d.validate(state.mean, state.variance, state.weight, state.bias,
                                                        eps: batchNorm.eps)
        eps = batchNorm.eps
        scale = state.output.scale
        zeroPoint = state.output.zeroPoint
        super.init()
        try registerState(state.mean, state.variance, state.weight, state.bias)
    }

    static func convertedState(_ batchNorm: BatchNorm2d, unit: Module) throws
        -> (mean: Tensor<Float>, variance: Tensor<Float>, weight: Tensor<Float>?, bias: Tensor<Float>?,
            output: QuantizationParameters)
    {
        let output = try unit.outputQuantizationParameters()
        guard let mean = batchNorm.runningMean, let variance = batchNorm.runningVar else {
            throw QuantizationWorkflowError.unsupportedQConfig(
                module: unit.displayName, reason: "a batch norm without running statistics (trackRunningStats: "
                    + "false) has no quantized version; keep it float (qconfig nil) or fuse it into a convolution")
        }
        return (mean, variance, batchNorm.weight?.data, batchNorm.bias?.data, output)
    }

    private static func validate(_ mean: Tensor<Float>, _ variance: Tensor<Float>, _ weight: Tensor<Float>?,
                                 _ bias: Tensor<Float>?, eps: Float) throws -> Int {
        func fail(_ reason: String) -> QuantizationError {
            .invalidOperand(operation: "QuantizedBatchNorm2d", reason: reason)
        }
        guard mean.rank == 1, mean.count >= 1 else {
            throw fail("running_mean must be 1-D [C] with C >= 1, got shape \(mean.shape)")
        }
        let channels = mean.count
        for (name, tensor) in [("running_var", variance), ("weight", weight), ("bias", bias)] {
            if let tensor, tensor.shape != [channels] {
                throw fail("\(name) must have shape [\(channels)], got \(tensor.shape)")
            }
        }
        guard (weight == nil) == (bias == nil) else {
            throw fail("weight and bias must both be given (affine) or both be nil")
        }
        guard eps >= 0, eps.isFinite else { throw fail("eps must be finite and >= 0, got \(eps)") }
        return channels
    }

    private func registerState(_ mean: Tensor<Float>, _ variance: Tensor<Float>, _ weight: Tensor<Float>?,
                               _ bias: Tensor<Float>?) throws {
        try registerBuffer("weight", weight)
        try registerBuffer("bias", bias)
        try registerBuffer("running_mean", mean)
        try registerBuffer("running_var", variance)
        try QuantizedModuleState.registerOutput(self, scale: scale, zeroPoint: zeroPoint)
    }

    /// Whether `weight` and `bias` exist. PyTorch: `bn.affine`.
    public var affine: Bool { ((try? buffer("weight")) ?? nil) != nil }

    /// The per-channel `alpha` and `beta` of PyTorch's `compute_fused_params` for an input scale, in its precision
    /// (float statistics, double scale ratios).
    func fusedParameters(inputScale: Float) throws -> (alpha: [Float], beta: [Float]) {
        let mean = try buffer("running_mean")?.scalars ?? [], variance = try buffer("running_var")?.scalars ?? []
        let weight = try buffer("weight")?.scalars, bias = try buffer("bias")?.scalars
        var alpha = [Float](repeating: 0, count: numFeatures), beta = alpha
        let ratio = Double(inputScale) / Double(scale)
        for c in 0..<numFeatures {
            let invSigma = Float(1.0 / Double((variance[c] + eps).squareRoot()))
            let w = weight?[c] ?? 1, b = bias?[c] ?? 0
            alpha[c] = Float(Double(invSigma * w) * ratio)
            beta[c] = Float(Double(b - mean[c] * invSigma * w) / Double(scale))
        }
        return (alpha, beta)
    }

    /// `quantize(bn(dequantize(x)))` with the output's parameters, as PyTorch's kernel computes it.
    /// PyTorch: `bn(x)` (`torch.ops.quantized.batch_norm2d`, `batch_norm2d_relu` for `QuantizedBNReLU2d`).
    /// - Throws: `QuantizationError.invalidOperand` naming this module for a float input (quantize it first), a
    ///   per-channel input, a shape other than `[N, numFeatures, H, W]`, or an output zero point outside the
    ///   input dtype's range.
    public override func forward(_ input: Variable) throws -> Variable {
        let x = try quantizedInput(input)
        let relu = type(of: self).fusesReLU
        let operation = relu ? "quantized::batch_norm2d_relu" : "quantized::batch_norm2d"
        return Variable(try attributingErrors { () throws -> QuantizedTensor in
            try x.requirePerTensor(operation)
            guard x.rank == 4, x.shape[1] == numFeatures else {
                throw QuantizationError.invalidOperand(
                    operation: operation, reason: "expected a 4-D input [N, \(numFeatures), H, W], got shape "
                        + "\(x.shape)")
            }
            do {
                try QParamChecks.checkPerTensor(scale: scale, zeroPoint: zeroPoint, dtype: x.dtype,
                                                qscheme: .perTensorAffine)
            } catch {
                throw QuantizationError.invalidOperand(
                    operation: operation, reason: "the output parameters do not fit the \(x.dtype) input: \(error)")
            }
            let (alpha, beta) = try fusedParameters(inputScale: x.scale)
            let planeSize = x.shape[2] * x.shape[3], channels = numFeatures
            let (inZeroPoint, outZeroPoint) = (x.zeroPoint, zeroPoint)
            let lower = relu ? outZeroPoint : Int.min
            return x.mappingIntegers(scale: scale, zeroPoint: outZeroPoint) { index, q in
                let c = (index / planeSize) % channels
                // PyTorch: fmadd(alpha, q - zp, beta), then nearbyint, zero point added after rounding.
                let v = beta[c].addingProduct(alpha[c], Float(q - inZeroPoint))
                guard !v.isNaN else { return Int.min }
                let rounded = Swift.min(Swift.max(v.rounded(.toNearestOrEven), -1e12), 1e12)
                return Swift.max(outZeroPoint + Int(rounded), lower)
            }
        })
    }

    /// Reads the output parameters from the loaded buffers.
    /// - Throws: `SerializationError.invalidTensor`, `QuantizationError` for invalid output parameters.
    public override func didLoadStateDict() throws {
        let output = try QuantizedModuleState.output(of: self)
        scale = output.scale
        zeroPoint = output.zeroPoint
    }

    /// PyTorch: `16, eps=1e-05, ...`; here with the output parameters.
    public override var extraDescription: String {
        "\(numFeatures), eps=\(eps), affine=\(pythonBool(affine)), scale=\(scale), zero_point=\(zeroPoint)"
    }

    /// `"QuantizedBatchNorm2d"` (`"QuantizedBNReLU2d"` for the fused version).
    public class var archiveTypeName: String { "QuantizedBatchNorm2d" }

    /// `num_features`, `eps`, `affine`.
    public var archiveConfiguration: [String: String] {
        ["num_features": String(numFeatures), "eps": "\(eps)", "affine": pythonBool(affine)]
    }

    /// A layer of the configured size (zero mean, unit variance), for `loadStateDict` to fill.
    /// - Throws: `SerializationError.invalidModelArchive` for missing or malformed settings.
    public class func makeForArchive(configuration: [String: String]) throws -> Module {
        let reader = ArchiveConfigurationReader(configuration, type: archiveTypeName)
        let channels = try reader.int("num_features", in: 1...Int(Int32.max))
        let affine = try reader.bool("affine")
        let zeros = try Tensor<Float>(shape: [channels], scalars: Array(repeating: 0, count: channels))
        let ones = try Tensor<Float>(shape: [channels], scalars: Array(repeating: 1, count: channels))
        return try self.init(runningMean: zeros, runningVar: ones, weight: affine ? ones : nil,
                             bias: affine ? zeros : nil, eps: try reader.float("eps"), scale: 1, zeroPoint: 0)
    }
}

/// `QuantizedBatchNorm2d` with a fused ReLU (outputs clamped at the zero point). What `convert` makes of a
/// calibrated `BNReLU2d`.
///
/// PyTorch: `torch.ao.nn.intrinsic.quantized.BNReLU2d` (`nniq.BNReLU2d`, printed `QuantizedBNReLU2d`).
public final class QuantizedBNReLU2d: QuantizedBatchNorm2d {
    override class var fusesReLU: Bool { true }

    /// PyTorch: `nniq.BNReLU2d(num_features, eps)` with the statistics and output parameters assigned.
    /// - Throws: as `QuantizedBatchNorm2d.init(runningMean:runningVar:weight:bias:eps:scale:zeroPoint:)`.
    public required init(runningMean: Tensor<Float>, runningVar: Tensor<Float>, weight: Tensor<Float>?,
                         bias: Tensor<Float>?, eps: Float = 1e-5, scale: Float, zeroPoint: Int) throws {
        try super.init(runningMean: runningMean, runningVar: runningVar, weight: weight, bias: bias, eps: eps,
                       scale: scale, zeroPoint: zeroPoint)
    }

    /// From a prepared and calibrated `BNReLU2d` (observed as one unit). PyTorch: `nniq.BNReLU2d.from_float(m)`.
    /// - Throws: `QuantizationWorkflowError.notPrepared`, `.notCalibrated`, `.unsupportedQConfig`.
    public convenience init(from fused: BNReLU2d) throws {
        let batchNorm = try fused.batchNorm
        let state = try QuantizedBatchNorm2d.convertedState(batchNorm, unit: fused)
        try self.init(runningMean: state.mean, runningVar: state.variance, weight: state.weight, bias: state.bias,
                      eps: batchNorm.eps, scale: state.output.scale, zeroPoint: state.output.zeroPoint)
    }

    public override class var archiveTypeName: String { "QuantizedBNReLU2d" }
}
