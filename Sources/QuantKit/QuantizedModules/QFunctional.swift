/// Element-wise add / multiply and concatenation of quantized tensors, with the output parameters that the
/// `FloatFunctional`'s observer chose: what `convert` makes of a calibrated `FloatFunctional`. It is a
/// `FloatFunctional`, so model code that looks its functional up as one (`child("skipAdd", as:
/// FloatFunctional.self).add(a, b)`) runs unchanged after `convert`.
///
/// `add`, `mul`, `cat` and `addReLU` dequantize their inputs (`(q - zp) * scale`), compute in fp32 and quantize
/// with `scale` and `zeroPoint` (reciprocal multiply, round half to even), as PyTorch's kernels. `addScalar` and
/// `mulScalar` keep the integers and derive the output parameters from the input's, as PyTorch's
/// `quantized::add_scalar` / `mul_scalar` do (not observed).
///
/// State (buffers): `scale`, `zero_point`.
///
/// PyTorch: `torch.ao.nn.quantized.QFunctional` (`add`, `add_scalar`, `mul`, `mul_scalar`, `cat`, `add_relu`).
public final class QFunctional: FloatFunctional, ArchivableModule {
    /// The output scale of `add`, `mul`, `cat` and `addReLU`. PyTorch: `qfunctional.scale`.
    public private(set) var scale: Float
    /// Their output zero point. PyTorch: `qfunctional.zero_point`.
    public private(set) var zeroPoint: Int

    /// PyTorch: `QFunctional()` with `scale` and `zero_point` assigned.
    /// - Throws: `QuantizationError.invalidScale`, `.zeroPointOutOfRange` (quint8).
    public init(scale: Float, zeroPoint: Int) throws {
        try QParamChecks.checkPerTensor(scale: scale, zeroPoint: zeroPoint, dtype: .quint8, qscheme: .perTensorAffine)
        self.scale = scale
        self.zeroPoint = zeroPoint
        super.init()
        try QuantizedModuleState.registerOutput(self, scale: scale, zeroPoint: zeroPoint)
    }

    /// From a prepared and calibrated `FloatFunctional`, with its observer's parameters.
    /// PyTorch: `QFunctional.from_float(float_functional)`.
    /// - Throws: `QuantizationWorkflowError.notPrepared`, `.notCalibrated` (none of its observed operations ran
    ///   during calibration), `.unsupportedQConfig`.
    public convenience init(from functional: FloatFunctional) throws {
        let output = try functional.outputQuantizationParameters()
        try self.init(scale: output.scale, zeroPoint: output.zeroPoint)
    }

    /// Throws: the operations are the methods. PyTorch: `QFunctional.forward` raises.
    public override func forward(_ input: Variable) throws -> Variable {
        throw ModuleError.forwardNotImplemented(
            module: displayName, hint: "QFunctional is not intended to use forward; call add, mul, cat, addScalar, "
                + "mulScalar or addReLU")
    }

    /// The quantized payloads of `inputs`, per tensor and of one dtype, or an error naming this module.
    private func operands(_ inputs: [Variable], _ operation: String) throws -> [QuantizedTensor] {
        let tensors = try inputs.map { try quantizedInput($0) }
        for q in tensors {
            try q.requirePerTensor(operation)
            guard q.dtype == tensors[0].dtype else {
                throw QuantizationError.invalidOperand(
                    operation: operation, reason: "the inputs must have one dtype, got \(tensors[0].dtype) and "
                        + "\(q.dtype)")
            }
        }
        return tensors
    }

    /// Quantizes an fp32 result with the output parameters and runs `activation_post_process` (an `Identity`), as
    /// PyTorch's `QFunctional` methods do.
    private func finish(_ result: Variable, dtype: QuantizedDType) throws -> Variable {
        let y = try result.floatTensor(for: displayName).quantized(scale: scale, zeroPoint: zeroPoint, dtype: dtype)
        return try child("activation_post_process")(Variable(y))
    }

    /// `quantize(dequantize(a) + dequantize(b))` (broadcasting). PyTorch: `qfunctional.add(a, b)`
    /// (`torch.ops.quantized.add`).
    /// - Throws: `QuantizationError.invalidOperand` naming this module for float or per-channel inputs, mixed
    ///   dtypes or shapes that do not broadcast.
    public override func add(_ a: Variable, _ b: Variable) throws -> Variable {
        try attributingErrors {
            let q = try operands([a, b], "quantized::add")
            return try finish(try Functional.add(Variable(q[0].dequantized()), Variable(q[1].dequantized())),
                              dtype: q[0].dtype)
        }
    }

    /// `quantize(relu(dequantize(a) + dequantize(b)))`. PyTorch: `qfunctional.add_relu(a, b)`
    /// (`torch.ops.quantized.add_relu`).
    /// - Throws: as `add`.
    public override func addReLU(_ a: Variable, _ b: Variable) throws -> Variable {
        try attributingErrors {
            let q = try operands([a, b], "quantized::add_relu")
            let sum = try Functional.add(Variable(q[0].dequantized()), Variable(q[1].dequantized()))
            return try finish(try Functional.relu(sum), dtype: q[0].dtype)
        }
    }

    /// `quantize(dequantize(a) * dequantize(b))` (broadcasting). PyTorch: `qfunctional.mul(a, b)`
    /// (`torch.ops.quantized.mul`).
    /// - Throws: as `add`.
    public override func mul(_ a: Variable, _ b: Variable) throws -> Variable {
        try attributingErrors {
            let q = try operands([a, b], "quantized::mul")
            return try finish(try Functional.mul(Variable(q[0].dequantized()), Variable(q[1].dequantized())),
                              dtype: q[0].dtype)
        }
    }

    /// `quantize(cat(dequantize(x) for x in inputs))` along `dimension`. PyTorch: `qfunctional.cat(xs, dim)`
    /// (`torch.ops.quantized.cat` with this module's scale and zero point).
    /// - Throws: `QuantizationError.invalidOperand` naming this module for an empty list, float or per-channel
    ///   inputs, mixed dtypes, or shapes that do not concatenate.
    public override func cat(_ inputs: [Variable], dimension: Int = 0) throws -> Variable {
        try attributingErrors {
            let q = try operands(inputs, "quantized::cat")
            guard let first = q.first else {
                throw QuantizationError.invalidOperand(operation: "quantized::cat",
                                                       reason: "expected a non-empty list of tensors")
            }
            return try finish(try Functional.cat(q.map { Variable($0.dequantized()) }, dimension: dimension),
                              dtype: first.dtype)
        }
    }

    /// `x + scalar` on the integers' parameters: with `s`, `z` the input's and `c_q = nearbyint(scalar / s)`, the
    /// output is the same integers with zero point `z - c_q` when that fits the dtype, else the integers requantized
    /// to a scale stretched so that the zero point sits at the end of the range. Not observed.
    ///
    /// PyTorch: `qfunctional.add_scalar(x, scalar)` (`torch.ops.quantized.add_scalar`, `_add_scalar_out`).
    /// - Throws: `QuantizationError.invalidOperand` naming this module for a float or per-channel input, or a
    ///   scalar that gives no valid output scale.
    public override func addScalar(_ x: Variable, _ scalar: Float) throws -> Variable {
        let operation = "quantized::add_scalar"
        return Variable(try attributingErrors { () throws -> QuantizedTensor in
            let q = try operands([x], operation)[0]
            let (s, z) = (Double(q.scale), q.zeroPoint)
            let (qmin, qmax) = (q.dtype.range.lowerBound, q.dtype.range.upperBound)
            let ratio = (Double(scalar) / s).rounded(.toNearestOrEven)
            guard ratio.isFinite, abs(ratio) < 1e15 else {
                throw QuantizationError.invalidOperand(
                    operation: operation, reason: "the scalar \(scalar) is not representable with scale \(q.scale)")
            }
            let shifted = z - Int(ratio)
            let outScale: Double
            let outZeroPoint: Int
            if qmin > shifted {
                outScale = (Double(qmax) - Double(shifted)) / (Double(qmax) - Double(qmin)) * s
                outZeroPoint = qmin
            } else if qmax < shifted {
                outScale = (Double(shifted) - Double(qmin)) / (Double(qmax) - Double(qmin)) * s
                outZeroPoint = qmax
            } else {
                return q.withParameters(scale: q.scale, zeroPoint: shifted)
            }
            let scale = Float(outScale)
            guard QParamChecks.isValidScale(scale) else {
                throw QuantizationError.invalidOperand(
                    operation: operation, reason: "adding \(scalar) gives the invalid output scale \(outScale)")
            }
            // requantize_from_int: zp' + lrintf(float(q - z + c_q) * (s * (1 / s'))).
            let multiplier = q.scale * (1 / scale)
            let offset = Int(ratio) - z
            return q.mappingIntegers(scale: scale, zeroPoint: outZeroPoint) { _, value in
                outZeroPoint + Int((Float(value + offset) * multiplier).rounded(.toNearestOrEven))
            }
        })
    }

    /// `x * scalar` on the integers' parameters: for `scalar > 0` the same integers with scale `scalar * s`; for 0,
    /// zeros with scale 1 and zero point 0; for `scalar < 0` the integers mirrored (`qmax + qmin - q`) with scale
    /// `|scalar| * s` and zero point `qmax - (z - qmin)`. Not observed.
    ///
    /// PyTorch: `qfunctional.mul_scalar(x, scalar)` (`torch.ops.quantized.mul_scalar`, `_mul_scalar_out`).
    /// - Throws: `QuantizationError.invalidOperand` naming this module for a float or per-channel input, or a
    ///   scalar that gives no valid output scale (NaN, infinite, or too large or small for float32).
    public override func mulScalar(_ x: Variable, _ scalar: Float) throws -> Variable {
        let operation = "quantized::mul_scalar"
        return Variable(try attributingErrors { () throws -> QuantizedTensor in
            let q = try operands([x], operation)[0]
            let (qmin, qmax) = (q.dtype.range.lowerBound, q.dtype.range.upperBound)
            if scalar == 0 {
                return q.mappingIntegers(scale: 1, zeroPoint: 0) { _, _ in 0 }
            }
            let scale = Float(Double(abs(scalar)) * Double(q.scale))
            guard QParamChecks.isValidScale(scale) else {
                throw QuantizationError.invalidOperand(
                    operation: operation, reason: "multiplying by \(scalar) gives the invalid output scale \(scale)")
            }
            if scalar > 0 { return q.withParameters(scale: scale, zeroPoint: q.zeroPoint) }
            return q.mappingIntegers(scale: scale, zeroPoint: qmax - (q.zeroPoint - qmin)) { _, value in
                qmax + qmin - value
            }
        })
    }

    /// PyTorch: `scale=0.05, zero_point=64`.
    public override var extraDescription: String { "scale=\(scale), zero_point=\(zeroPoint)" }

    /// Reads the output parameters from the loaded buffers.
    /// - Throws: `SerializationError.invalidTensor`, `QuantizationError` for invalid output parameters.
    public override func didLoadStateDict() throws {
        let output = try QuantizedModuleState.output(of: self)
        scale = output.scale
        zeroPoint = output.zeroPoint
    }

    /// `"QFunctional"`.
    public static var archiveTypeName: String { "QFunctional" }

    /// No settings: the parameters are in the state dict.
    public var archiveConfiguration: [String: String] { [:] }

    /// A `QFunctional` with scale 1 and zero point 0, for `loadStateDict` to fill.
    public static func makeForArchive(configuration: [String: String]) throws -> Module {
        try QFunctional(scale: 1, zeroPoint: 0)
    }
}
