extension ModuleMapping {
    /// The quantized modules of static quantization: `Linear`, `LinearReLU`, `Conv2d` (depthwise included),
    /// `ConvReLU2d`, `BatchNorm2d`, `BNReLU2d`, `FloatFunctional`, `ReLU6` and `Hardswish` (the float activations
    /// and pools that run on quantized tensors as they are, `ReLU`, `MaxPool2d`, `Sigmoid`, ..., are not mapped).
    /// PyTorch: the `nn`, `nni` and `FloatFunctional` entries of `get_default_static_quant_module_mappings()`.
    mutating func addStaticQuantizedModules() {
        set(Linear.self) { try QuantizedLinear(from: $0) }
        set(LinearReLU.self) { try QuantizedLinearReLU(from: $0) }
        set(Conv2d.self) { try QuantizedConv2d(from: $0) }
        set(ConvReLU2d.self) { try QuantizedConvReLU2d(from: $0) }
        set(BatchNorm2d.self) { try QuantizedBatchNorm2d(from: $0) }
        set(BNReLU2d.self) { try QuantizedBNReLU2d(from: $0) }
        set(FloatFunctional.self) { try QFunctional(from: $0) }
        set(ReLU6.self) { QuantizedReLU6(from: $0) }
        set(Hardswish.self) { try QuantizedHardswish(from: $0) }
    }
}
