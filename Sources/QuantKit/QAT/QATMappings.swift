extension ModuleMapping {
    /// QAT modules to their quantized versions after training: weights quantized with their `weight_fake_quant`
    /// (run once more on the weight, BatchNorm folded in with its running statistics first), outputs with their
    /// activation fake quantization. PyTorch: the `nniqat` / `nnqat` entries of
    /// `get_default_static_quant_module_mappings()`.
    mutating func addQATConversions() {
        set(QATLinear.self) { m in
            try quantizedFromQAT(m, weight: m.weight.data, bias: m.bias?.data, as: QuantizedLinear.self)
        }
        set(QATLinearReLU.self) { m in
            try quantizedFromQAT(m, weight: m.weight.data, bias: m.bias?.data, as: QuantizedLinearReLU.self)
        }
        set(QATLinearBn1d.self) { m in
            let (weight, bias) = try m.foldedWeightAndBias()
            return try quantizedFromQAT(m, weight: weight, bias: bias, as: QuantizedLinear.self)
        }
        set(QATConv2d.self) { m in
            try quantizedFromQAT(m, weight: m.weight.data, bias: m.bias?.data, as: QuantizedConv2d.self)
        }
        set(QATConvReLU2d.self) { m in
            try quantizedFromQAT(m, weight: m.weight.data, bias: m.bias?.data, as: QuantizedConvReLU2d.self)
        }
        set(QATConvBn2d.self) { m in
            let (weight, bias) = try m.foldedWeightAndBias()
            return try quantizedFromQAT(m, weight: weight, bias: bias, as: QuantizedConv2d.self)
        }
        set(QATConvBnReLU2d.self) { m in
            let (weight, bias) = try m.foldedWeightAndBias()
            return try quantizedFromQAT(m, weight: weight, bias: bias, as: QuantizedConvReLU2d.self)
        }
    }

    /// Float modules to QAT modules. PyTorch: `get_default_qat_module_mappings()` (2-D and linear entries).
    mutating func addQATModules() {
        set(Linear.self) { try QATLinear(from: $0) }
        set(Conv2d.self) { try QATConv2d(from: $0) }
        set(LinearReLU.self) { try QATLinearReLU(from: $0) }
        set(ConvReLU2d.self) { try QATConvReLU2d(from: $0) }
        set(ConvBn2d.self) { try QATConvBn2d(from: $0) }
        set(ConvBnReLU2d.self) { try QATConvBnReLU2d(from: $0) }
        set(LinearBn1d.self) { try QATLinearBn1d(from: $0) }
    }
}

/// A quantized linear layer from a trained QAT module: the output parameters of its activation fake quantization,
/// the (folded) weight quantized by its `weight_fake_quant`. PyTorch: `nnq.Linear.from_float(qat_module)`.
private func quantizedFromQAT<Q: QuantizedLinear>(
    _ module: some QATModule, weight: Tensor<Float>, bias: Tensor<Float>?, as type: Q.Type
) throws -> Module {
    let output = try module.outputQuantizationParameters()
    let quantized = try quantizeWeight(weight, observer: module.weightFakeQuant.observerOrFakeQuantize,
                                       module: module.displayName)
    return try type.init(weight: quantized, bias: bias, scale: output.scale, zeroPoint: output.zeroPoint)
}

/// A quantized convolution from a trained QAT convolution (see above). PyTorch: `nnq.Conv2d.from_float(qat_module)`
/// (`get_qconv`).
private func quantizedFromQAT<Q: QuantizedConv2d>(
    _ module: QATConv2d, weight: Tensor<Float>, bias: Tensor<Float>?, as type: Q.Type
) throws -> Module {
    let output = try module.outputQuantizationParameters()
    let quantized = try quantizeWeight(weight, observer: module.weightFakeQuant.observerOrFakeQuantize,
                                       module: module.displayName)
    return try type.init(weight: quantized, bias: bias, stride: module.stride, padding: module.padding,
                         dilation: module.dilation, groups: module.groups, scale: output.scale,
                         zeroPoint: output.zeroPoint)
}
