import Foundation

/// The state shared by the quantized modules, kept as buffers so that `stateDict`, `loadStateDict` and safetensors
/// files carry it: `weight` (the int8 values, saved as I8), `weight_scale` (one per channel, or one),
/// `weight_zero_point` (saved as I64), `bias` (fp32, when present), `scale` and `zero_point` (the output's, `[1]`).
enum QuantizedModuleState {
    /// Registers the buffers of a quantized weight, its bias and the output parameters, in that order.
    static func register(_ module: Module, weight: QuantizedTensor, bias: Tensor<Float>?, scale: Float,
                         zeroPoint: Int) throws {
        try module.registerBuffer("weight", Tensor(shape: weight.shape, scalars: weight.intRepr().map { Float($0) }),
                                  dtype: .int8)
        try module.registerBuffer("weight_scale", Tensor(shape: [weight.scales.count], scalars: weight.scales))
        try module.registerBuffer("weight_zero_point",
                                  Tensor(shape: [weight.zeroPoints.count], scalars: weight.zeroPoints.map { Float($0) }),
                                  dtype: .int64)
        try module.registerBuffer("bias", bias)
        try registerOutput(module, scale: scale, zeroPoint: zeroPoint)
    }

    /// Registers `scale` and `zero_point` (`[1]`; the zero point saved as I64). PyTorch: the `scale` and
    /// `zero_point` entries of a quantized module's state dict.
    static func registerOutput(_ module: Module, scale: Float, zeroPoint: Int) throws {
        try module.registerBuffer("scale", Tensor(shape: [1], scalars: [scale]))
        try module.registerBuffer("zero_point", Tensor(shape: [1], scalars: [Float(zeroPoint)]), dtype: .int64)
    }

    /// The output parameters held in the `scale` and `zero_point` buffers, checked for `dtype`.
    /// - Throws: `SerializationError.invalidTensor` for a zero point that is not a whole number;
    ///   `QuantizationError.invalidScale`, `.zeroPointOutOfRange`.
    static func output(of module: Module, dtype: QuantizedDType = .quint8) throws -> (scale: Float, zeroPoint: Int) {
        let scale = try required(module, "scale").scalars.first ?? 0
        let zeroPoint = try integers(module, "zero_point", in: dtype.range).first ?? 0
        try QParamChecks.checkPerTensor(scale: scale, zeroPoint: zeroPoint, dtype: dtype, qscheme: .perTensorAffine)
        return (scale, zeroPoint)
    }

    /// The quantized weight and bias rebuilt from the buffers (after `loadStateDict`), with the scheme and axis that
    /// the module was built with.
    /// - Throws: `SerializationError.invalidTensor` for weights or zero points that are not whole numbers in range;
    ///   what `QuantizedTensor`'s initializers throw for invalid scales or zero points.
    static func weight(of module: Module, qscheme: QScheme, axis: Int?) throws -> (QuantizedTensor, Tensor<Float>?) {
        let values = try required(module, "weight")
        let intRepr = try Tensor<Int8>(shape: values.shape,
                                       scalars: try integers(module, "weight", in: -128...127).map { Int8($0) })
        let scales = try required(module, "weight_scale").scalars
        let zeroPoints = try integers(module, "weight_zero_point", in: QuantizedDType.qint8.range)
        let weight: QuantizedTensor
        if let axis {
            weight = try QuantizedTensor(intRepr: intRepr, scales: scales, zeroPoints: zeroPoints, axis: axis,
                                         qscheme: qscheme)
        } else {
            guard scales.count == 1, zeroPoints.count == 1 else {
                throw SerializationError.invalidTensor(
                    name: qualified(module, "weight_scale"),
                    reason: "a per-tensor weight needs one scale and one zero point, got \(scales.count) and "
                        + "\(zeroPoints.count)")
            }
            weight = try QuantizedTensor(intRepr: intRepr, scale: scales[0], zeroPoint: zeroPoints[0],
                                         qscheme: qscheme)
        }
        return (weight, try module.buffer("bias"))
    }

    private static func required(_ module: Module, _ name: String) throws -> Tensor<Float> {
        guard let tensor = try module.buffer(name) else {
            throw SerializationError.invalidTensor(name: qualified(module, name), reason: "the buffer is missing")
        }
        return tensor
    }

    /// The values of a buffer that holds integers (saved as an integer dtype), checked to be whole and in `range`.
    private static func integers(_ module: Module, _ name: String, in range: ClosedRange<Int>) throws -> [Int] {
        try required(module, name).scalars.map { value in
            guard value.rounded() == value, Float(range.lowerBound) <= value, value <= Float(range.upperBound) else {
                throw SerializationError.invalidTensor(
                    name: qualified(module, name),
                    reason: "expected whole numbers in \(range.lowerBound)...\(range.upperBound), got \(value)")
            }
            return Int(value)
        }
    }

    private static func qualified(_ module: Module, _ name: String) -> String {
        module.path.isEmpty ? name : module.path + "." + name
    }
}

// Archive settings of the quantized layers' weights (read with `ArchiveConfigurationReader`).
extension QuantizedModuleState {
    /// The per-channel axis and scheme of a weight, as settings.
    static func weightSchemeSettings(_ weight: QuantizedTensor) -> [String: String] {
        var result = ["qscheme": weight.qscheme.rawValue]
        if let axis = weight.axis { result["axis"] = String(axis) }
        return result
    }

    /// A placeholder weight of `shape` (zeros, scale 1) with the given scheme, for `makeForArchive`: the state dict
    /// loaded next replaces it.
    /// - Throws: `SerializationError.invalidModelArchive` for a shape larger than 2^31 elements.
    static func placeholderWeight(shape: [Int], qscheme: QScheme, axis: Int?,
                                  reader: ArchiveConfigurationReader) throws -> QuantizedTensor {
        try reader.checkElementCount(shape)
        let zeros = try Tensor<Int8>(zeros: shape)
        if let axis {
            return try QuantizedTensor(intRepr: zeros, scales: Array(repeating: 1, count: shape[axis]),
                                       zeroPoints: Array(repeating: 0, count: shape[axis]), axis: axis,
                                       qscheme: qscheme)
        }
        return try QuantizedTensor(intRepr: zeros, scale: 1, zeroPoint: 0, qscheme: qscheme)
    }

    /// A placeholder bias of `count` zeros, or nil.
    static func placeholderBias(_ present: Bool, count: Int) -> Tensor<Float>? {
        present ? TensorMath.zeros([count]) : nil
    }
}

extension ArchiveConfigurationReader {
    /// The weight's scheme (`qscheme`) and, per channel, its axis (`axis`, which must be 0); nil per tensor.
    /// - Throws: `SerializationError.invalidModelArchive` for a missing or unknown scheme or another axis.
    func weightScheme() throws -> (qscheme: QScheme, axis: Int?) {
        guard let qscheme = QScheme(rawValue: try string("qscheme")) else {
            throw invalid("qscheme", expected: "one of " + QScheme.allCases.map(\.rawValue).joined(separator: ", "))
        }
        guard qscheme.isPerChannel else { return (qscheme, nil) }
        _ = try int("axis", in: 0...0)
        return (qscheme, 0)
    }
}

extension QuantizedModuleState {
    /// What `convert` makes of a layer's weight and bias: the weight quantized with a fresh weight observer of
    /// `unit`'s qconfig, the bias, and the output parameters of `unit`'s activation observer. `unit` is the layer
    /// itself or the fused module that holds it.
    /// - Throws: `QuantizationWorkflowError.missingQConfig`, `.notPrepared`, `.notCalibrated`, `.unsupportedQConfig`
    ///   (naming `unit`); what the observers throw.
    static func converted(weight: Tensor<Float>, bias: Tensor<Float>?, unit: Module) throws
        -> (weight: QuantizedTensor, bias: Tensor<Float>?, output: QuantizationParameters)
    {
        let qconfig = try qconfigForConversion(unit)
        let output = try unit.outputQuantizationParameters()
        let observer = try qconfig.weight()
        return (try quantizeWeight(weight, observer: observer, module: unit.displayName), bias, output)
    }
}

/// The qconfig of a module being converted, or `missingQConfig` naming it.
func qconfigForConversion(_ module: Module) throws -> QConfig {
    guard let qconfig = module.qconfig else {
        throw QuantizationWorkflowError.missingQConfig(module: module.displayName)
    }
    return qconfig
}

extension QuantizedTensor {
    /// A per-tensor tensor of the same dtype and shape whose integers are `transform(index, value)`, clamped to the
    /// dtype's range, with the given parameters (not validated: callers pass checked ones).
    func mappingIntegers(scale: Float, zeroPoint: Int, _ transform: (Int, Int) -> Int) -> QuantizedTensor {
        let (low, high) = (dtype.range.lowerBound, dtype.range.upperBound)
        func map<T: QuantizedScalar>(_ t: Tensor<T>) -> Tensor<T> {
            t.withUnsafeBufferPointer { source in
                Tensor<T>(uninitializedShape: t.shape, count: t.count) { target in
                    for i in 0..<source.count {
                        target[i] = T(truncatingIfNeeded: Swift.min(Swift.max(transform(i, Int(source[i])), low), high))
                    }
                }
            }
        }
        let mapped: Values
        switch values {
        case .quint8(let t): mapped = .quint8(map(t))
        case .qint8(let t): mapped = .qint8(map(t))
        case .qint32(let t): mapped = .qint32(map(t))
        }
        return QuantizedTensor(values: mapped, qscheme: .perTensorAffine, scales: [scale], zeroPoints: [zeroPoint],
                               axis: nil)
    }

    /// The same integers with new per-tensor parameters (not validated: callers pass checked ones).
    func withParameters(scale: Float, zeroPoint: Int) -> QuantizedTensor {
        QuantizedTensor(values: values, qscheme: .perTensorAffine, scales: [scale], zeroPoints: [zeroPoint], axis: nil)
    }

    /// Checks that the tensor is quantized per tensor (what the element-wise quantized operators accept).
    /// - Throws: `QuantizationError.invalidOperand` naming `operation`.
    func requirePerTensor(_ operation: String) throws {
        guard axis == nil else {
            throw QuantizationError.invalidOperand(
                operation: operation, reason: "expected a per-tensor quantized input, got \(qscheme) along axis "
                    + "\(axis!)")
        }
    }
}

/// `clamp(zeroPoint + nearbyint(x * (1 / scale)), dtype range)`: one value quantized as `quantize_per_tensor` does
/// (NaN to the dtype minimum). PyTorch: `at::native::quantize_val`.
func quantizedValue(of x: Float, scale: Float, zeroPoint: Int, dtype: QuantizedDType) -> Int {
    let range = dtype.range
    guard !x.isNaN else { return range.lowerBound }
    let rounded = Swift.min(Swift.max((x * (1 / scale)).rounded(.toNearestOrEven), -1e12), 1e12)
    return Swift.min(Swift.max(zeroPoint + Int(rounded), range.lowerBound), range.upperBound)
}
