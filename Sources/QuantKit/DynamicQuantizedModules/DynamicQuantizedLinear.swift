/// A linear layer with int8 or fp16 weights and float activations: fp32 in, fp32 out. With int8 weights each call
/// quantizes the input to quint8 with parameters from its own min/max (7-bit with `reduceRange`, as PyTorch on x86)
/// and runs the int8 GEMM (`dynamicQuantizedLinear`); with fp16 weights the arithmetic stays fp32
/// (`halfPrecisionLinear`). No calibration is needed.
///
/// State (buffers, so `stateDict`, `loadStateDict` and quantized model files carry it): `weight` (int8 values with
/// dtype `.int8`, or the fp16 values with dtype `.float16`), for int8 `weight_scale` (`[1]` or one per output) and
/// `weight_zero_point` (`.int64`), and `bias` (fp32) when the layer has one. `loadStateDict` repacks the weights.
///
/// PyTorch: `torch.ao.nn.quantized.dynamic.Linear` (`nnqd.Linear`), whose state dict holds the packed parameters
/// instead of these tensors.
public class DynamicQuantizedLinear: Module, ArchivableModule {
    /// The packed weights of either precision.
    enum Packed {
        case int8(PackedLinearWeight)
        case float16(PackedHalfLinearWeight)
    }

    /// PyTorch: `in_features`.
    public let inFeatures: Int
    /// PyTorch: `out_features`.
    public let outFeatures: Int
    /// The weights' format. PyTorch: `_packed_params.dtype` (`torch.qint8` or `torch.float16`).
    public let dtype: DynamicQuantizationType
    /// Whether int8 activations use `[0, 127]` (true, what `nnqd.Linear` always passes on x86) or `[0, 255]`.
    /// Unused with fp16 weights. PyTorch: the `reduce_range=True` of `nnqd.Linear.forward`.
    public let reduceRange: Bool
    /// Whether a ReLU follows (`DynamicQuantizedLinearReLU`).
    let appliesReLU: Bool
    private(set) var packed: Packed

    /// `"DynamicQuantizedLinear"` (PyTorch's `_get_name()` of `nnqd.Linear`).
    public class var archiveTypeName: String { "DynamicQuantizedLinear" }

    init(packed: Packed, reduceRange: Bool, relu: Bool) throws {
        self.packed = packed
        self.reduceRange = reduceRange
        appliesReLU = relu
        switch packed {
        case .int8(let w):
            guard w.weight.axis == nil || w.weight.axis == 0 else {
                throw QuantizationError.invalidOperand(operation: Self.archiveTypeName,
                                                       reason: "per-channel weights must use axis 0")
            }
            (inFeatures, outFeatures, dtype) = (w.inFeatures, w.outFeatures, .qint8)
        case .float16(let w):
            guard w.precision == .float16 else {
                throw QuantizationError.invalidOperand(
                    operation: Self.archiveTypeName, reason: "dynamic fp16 layers need float16 weights, got "
                        + "\(w.precision) (use PackedHalfLinearWeight and halfPrecisionLinear for bf16)")
            }
            (inFeatures, outFeatures, dtype) = (w.inFeatures, w.outFeatures, .float16)
        }
        super.init()
        switch packed {
        case .int8(let w):
            let values = w.weight.intRepr().map { Float($0) }
            try registerBuffer("weight", Tensor(shape: w.weight.shape, scalars: values), dtype: .int8)
            try registerBuffer("weight_scale", Tensor(w.weight.scales))
            try registerBuffer("weight_zero_point", Tensor(w.weight.zeroPoints.map { Float($0) }), dtype: .int64)
            try registerBuffer("bias", w.bias)
        case .float16(let w):
            try registerBuffer("weight", w.weight(), dtype: .float16)
            try registerBuffer("bias", w.bias)
        }
    }

    /// A layer with int8 weights (`[outFeatures, inFeatures]` qint8, per tensor or per channel along axis 0) and
    /// an fp32 bias.
    ///
    /// PyTorch: `nnqd.Linear(in_features, out_features)` then `set_weight_bias(qweight, bias)`.
    /// - Throws: `QuantizationError.invalidOperand` for a weight that is not qint8 2-D (axis 0) or a bias that is not
    ///   `[outFeatures]`; `.outOfMemory`.
    public convenience init(weight: QuantizedTensor, bias: Tensor<Float>?, reduceRange: Bool = true) throws {
        try self.init(packed: .int8(PackedLinearWeight(weight: weight, bias: bias)), reduceRange: reduceRange,
                      relu: false)
    }

    /// A layer with int8 weights packed already. PyTorch: `nnqd.Linear` holding `linear_prepack(w, b)`.
    /// - Throws: `QuantizationError.invalidOperand` for per-channel weights along another axis than 0.
    public convenience init(packedWeight: PackedLinearWeight, reduceRange: Bool = true) throws {
        try self.init(packed: .int8(packedWeight), reduceRange: reduceRange, relu: false)
    }

    /// A layer with fp16 weights: `PackedHalfLinearWeight(weight:bias:)` rounds (and saturates) fp32 weights.
    /// PyTorch: `nnqd.Linear(in, out, dtype=torch.float16)` holding `linear_prepack_fp16(w, b)`.
    /// - Throws: `QuantizationError.invalidOperand` for bf16 weights.
    public convenience init(packedWeight: PackedHalfLinearWeight) throws {
        try self.init(packed: .float16(packedWeight), reduceRange: true, relu: false)
    }

    /// From a float `Linear` and its qconfig (PyTorch's `default_dynamic_qconfig` when it has none): the weight
    /// observer's dtype decides. qint8 observers (`.defaultDynamic`, `.perChannelDynamic`) observe the weight and
    /// quantize it (clamped to the observer's range); a float16 placeholder (`.float16Dynamic`) packs fp16 weights.
    ///
    /// PyTorch: `nnqd.Linear.from_float(linear)`.
    /// - Throws: `QuantizationWorkflowError.unsupportedQConfig` for another weight dtype; what the observer throws.
    public convenience init(from linear: Linear) throws {
        try self.init(packed: Self.pack(linear, module: linear.displayName), reduceRange: true, relu: false)
    }

    /// Packs a float linear's weights as its qconfig's weight observer says. PyTorch: the body of `from_float`.
    static func pack(_ linear: Linear, qconfig: QConfig? = nil, module: String) throws -> Packed {
        let observer = try (qconfig ?? linear.qconfig ?? .defaultDynamic).weight()
        let bias = linear.bias?.data
        if let placeholder = observer.observer as? PlaceholderObserver {
            guard placeholder.dtype == .float16 else {
                throw QuantizationWorkflowError.unsupportedQConfig(
                    module: module, reason: "dynamic quantization needs qint8 or float16 weights, the weight "
                        + "observer is a placeholder for \(placeholder.dtype) (use .defaultDynamic, "
                        + ".perChannelDynamic or .float16Dynamic)")
            }
            return .float16(try PackedHalfLinearWeight(weight: linear.weight.data, bias: bias))
        }
        let weight = try quantizeWeight(linear.weight.data, observer: observer, module: module)
        guard weight.axis == nil || weight.axis == 0 else {
            throw QuantizationWorkflowError.unsupportedQConfig(
                module: module, reason: "per-channel weights must be quantized along axis 0 (output features)")
        }
        return .int8(try PackedLinearWeight(weight: weight, bias: bias))
    }

    // MARK: Accessors

    /// The int8 weight, or nil for fp16 weights. PyTorch: `nnqd.Linear.weight()`.
    public var quantizedWeight: QuantizedTensor? {
        if case .int8(let w) = packed { return w.weight }
        return nil
    }

    /// The weights as fp32: dequantized int8, or the fp16 values widened exactly.
    /// PyTorch: `weight().dequantize()` / `weight()` for fp16.
    public var floatWeight: Tensor<Float> {
        switch packed {
        case .int8(let w): return w.weight.dequantized()
        case .float16(let w): return w.weight()
        }
    }

    /// The fp32 bias, if any. PyTorch: `nnqd.Linear.bias()`.
    public var bias: Tensor<Float>? {
        switch packed {
        case .int8(let w): return w.bias
        case .float16(let w): return w.bias
        }
    }

    /// The int8 packed weights (nil for fp16), to call `dynamicQuantizedLinear` directly.
    public var packedWeight: PackedLinearWeight? {
        if case .int8(let w) = packed { return w }
        return nil
    }

    /// The fp16 packed weights (nil for int8), to call `halfPrecisionLinear` directly.
    public var packedHalfWeight: PackedHalfLinearWeight? {
        if case .float16(let w) = packed { return w }
        return nil
    }

    // MARK: Forward

    /// `x [*, inFeatures]` (fp32) to `[*, outFeatures]` (fp32).
    /// PyTorch: `nnqd.Linear.forward(x)` (`quantized::linear_dynamic(x, packed, reduce_range=True)` or
    /// `linear_dynamic_fp16`; `linear_relu_dynamic[_fp16]` for the fused ReLU).
    /// - Throws: `QuantizationError.invalidOperand` naming this module for a quantized input or a wrong last
    ///   dimension; `.invalidArgument` for an infinite input (int8).
    public override func forward(_ input: Variable) throws -> Variable {
        let x = try floatInput(input)
        let y = try attributingErrors { () throws -> Tensor<Float> in
            switch packed {
            case .int8(let w): return try dynamicQuantizedLinear(x, w, reduceRange: reduceRange, relu: appliesReLU)
            case .float16(let w): return try halfPrecisionLinear(x, w, relu: appliesReLU)
            }
        }
        return Variable(y)
    }

    /// PyTorch: `in_features=4, out_features=3, dtype=torch.qint8, qscheme=torch.per_tensor_affine`.
    public override var extraDescription: String {
        var text = "in_features=\(inFeatures), out_features=\(outFeatures), dtype=torch.\(dtype)"
        if case .int8(let w) = packed { text += ", qscheme=torch.\(w.weight.qscheme.rawValue)" }
        return text
    }

    // MARK: State and archive

    /// Repacks the weights from the loaded buffers.
    /// PyTorch: `nnqd.Linear._load_from_state_dict` (which unpickles packed parameters instead).
    /// - Throws: `SerializationError.invalidModelArchive` for values that are not valid int8 / fp16 weights or
    ///   quantization parameters.
    public override func didLoadStateDict() throws {
        do {
            let weight = try buffer("weight") ?? TensorMath.zeros([outFeatures, inFeatures])
            let bias = try buffer("bias")
            switch packed {
            case .int8(let old):
                let values = try weight.scalars.map { v -> Int8 in
                    guard let exact = Int8(exactly: v) else {
                        throw SerializationError.invalidModelArchive(
                            module: path, reason: "weight value \(v) is not an int8 integer")
                    }
                    return exact
                }
                let ints = try Tensor<Int8>(shape: weight.shape, scalars: values)
                let scales = try buffer("weight_scale")?.scalars ?? []
                let zeroPoints = try (buffer("weight_zero_point")?.scalars ?? []).map { v -> Int in
                    guard let exact = Int(exactly: v) else {
                        throw SerializationError.invalidModelArchive(
                            module: path, reason: "weight_zero_point value \(v) is not an integer")
                    }
                    return exact
                }
                let q: QuantizedTensor
                if let axis = old.weight.axis {
                    q = try QuantizedTensor(intRepr: ints, scales: scales, zeroPoints: zeroPoints, axis: axis,
                                            qscheme: old.weight.qscheme)
                } else {
                    guard scales.count == 1, zeroPoints.count == 1 else {
                        throw SerializationError.invalidModelArchive(
                            module: path, reason: "a per-tensor weight needs one scale and one zero point")
                    }
                    q = try QuantizedTensor(intRepr: ints, scale: scales[0], zeroPoint: zeroPoints[0],
                                            qscheme: old.weight.qscheme)
                }
                packed = .int8(try PackedLinearWeight(weight: q, bias: bias))
            case .float16:
                packed = .float16(try PackedHalfLinearWeight(weight: weight, bias: bias))
            }
        } catch let error as SerializationError {
            throw error
        } catch {
            throw SerializationError.invalidModelArchive(module: path, reason: "\(error)")
        }
    }

    /// `in_features`, `out_features`, `bias`, `dtype`, and for int8 `qscheme` and `reduce_range`.
    public var archiveConfiguration: [String: String] {
        var configuration = ["in_features": String(inFeatures), "out_features": String(outFeatures),
                             "bias": pythonBool(bias != nil), "dtype": dtype.rawValue]
        if case .int8(let w) = packed {
            configuration["qscheme"] = w.weight.qscheme.rawValue
            configuration["reduce_range"] = pythonBool(reduceRange)
        }
        return configuration
    }

    /// A layer of the recorded shape with zero weights, whose state is loaded next.
    /// - Throws: `SerializationError.invalidModelArchive` for missing or invalid settings.
    public class func makeForArchive(configuration: [String: String]) throws -> Module {
        try makeLayer(configuration: configuration, relu: false)
    }

    static func makeLayer(configuration: [String: String], relu: Bool) throws -> DynamicQuantizedLinear {
        let reader = ArchiveConfigurationReader(configuration, type: archiveTypeName)
        let inFeatures = try reader.int("in_features", in: 0...Int(Int32.max))
        let outFeatures = try reader.int("out_features", in: 0...Int(Int32.max))
        try reader.checkElementCount([outFeatures, inFeatures])
        let hasBias = try reader.bool("bias")
        let bias = hasBias ? TensorMath.zeros([outFeatures]) : nil
        let zeros = TensorMath.zeros([outFeatures, inFeatures])
        guard let dtype = DynamicQuantizationType(rawValue: try reader.string("dtype")) else {
            throw reader.invalid("dtype", expected: "one of " + DynamicQuantizationType.allCases.map(\.rawValue)
                                    .joined(separator: ", "))
        }
        func make(_ packed: Packed, reduceRange: Bool) throws -> DynamicQuantizedLinear {
            relu ? try DynamicQuantizedLinearReLU(packed: packed, reduceRange: reduceRange, relu: true)
                : try DynamicQuantizedLinear(packed: packed, reduceRange: reduceRange, relu: false)
        }
        do {
            switch dtype {
            case .float16:
                return try make(.float16(PackedHalfLinearWeight(weight: zeros, bias: bias)), reduceRange: true)
            case .qint8:
                guard let qscheme = QScheme(rawValue: try reader.string("qscheme")) else {
                    throw reader.invalid("qscheme", expected: "a PyTorch qscheme such as per_tensor_affine")
                }
                let perTensor = qscheme == .perTensorAffine || qscheme == .perTensorSymmetric
                let weight = try QuantizedModuleState.placeholderWeight(
                    shape: [outFeatures, inFeatures], qscheme: qscheme, axis: perTensor ? nil : 0, reader: reader)
                return try make(.int8(PackedLinearWeight(weight: weight, bias: bias)),
                                reduceRange: try reader.bool("reduce_range"))
            }
        } catch let error as SerializationError {
            throw error
        } catch {
            throw SerializationError.invalidModelArchive(module: "", reason: "\(archiveTypeName): \(error)")
        }
    }
}

/// `DynamicQuantizedLinear` followed by ReLU, in one call (`max(y, 0)` on the fp32 output).
///
/// PyTorch: `torch.ao.nn.intrinsic.quantized.dynamic.LinearReLU` (`nniqd.LinearReLU`).
public final class DynamicQuantizedLinearReLU: DynamicQuantizedLinear {
    /// `"DynamicQuantizedLinearReLU"` (PyTorch's `_get_name()` of `nniqd.LinearReLU`).
    public override class var archiveTypeName: String { "DynamicQuantizedLinearReLU" }

    override init(packed: Packed, reduceRange: Bool, relu: Bool) throws {
        try super.init(packed: packed, reduceRange: reduceRange, relu: true)
    }

    /// A layer with int8 weights (see `DynamicQuantizedLinear.init(weight:bias:reduceRange:)`).
    /// PyTorch: `nniqd.LinearReLU(in, out)` then `set_weight_bias(qweight, bias)`.
    /// - Throws: `QuantizationError.invalidOperand`, `.outOfMemory`.
    public convenience init(weight: QuantizedTensor, bias: Tensor<Float>?, reduceRange: Bool = true) throws {
        try self.init(packed: .int8(PackedLinearWeight(weight: weight, bias: bias)), reduceRange: reduceRange,
                      relu: true)
    }

    /// A layer with fp16 weights packed already. PyTorch: `nniqd.LinearReLU(in, out, dtype=torch.float16)`.
    /// - Throws: `QuantizationError.invalidOperand` for bf16 weights.
    public convenience init(packedWeight: PackedHalfLinearWeight) throws {
        try self.init(packed: .float16(packedWeight), reduceRange: true, relu: true)
    }

    /// From a fused `LinearReLU` and its qconfig (see `DynamicQuantizedLinear.init(from:)`; the unit's qconfig,
    /// else its linear member's).
    ///
    /// PyTorch: `nniqd.LinearReLU.from_float(linear_relu)`.
    /// - Throws: `QuantizationWorkflowError.unsupportedQConfig`; what the observer throws.
    public convenience init(from fused: LinearReLU) throws {
        let linear = try fused.linear
        try self.init(packed: Self.pack(linear, qconfig: fused.qconfig, module: fused.displayName),
                      reduceRange: true, relu: true)
    }

    /// A layer of the recorded shape with zero weights, whose state is loaded next.
    /// - Throws: `SerializationError.invalidModelArchive` for missing or invalid settings.
    public override class func makeForArchive(configuration: [String: String]) throws -> Module {
        try makeLayer(configuration: configuration, relu: true)
    }
}
