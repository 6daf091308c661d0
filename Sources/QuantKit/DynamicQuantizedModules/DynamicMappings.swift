extension ModuleMapping {
    /// Float modules to dynamically quantized ones: `Linear` to `DynamicQuantizedLinear` and `LinearReLU` to
    /// `DynamicQuantizedLinearReLU` (int8 or fp16 weights, as the module's qconfig says).
    /// PyTorch: `DEFAULT_DYNAMIC_QUANT_MODULE_MAPPINGS` (`nn.Linear: nnqd.Linear`, `nni.LinearReLU: nniqd.LinearReLU`).
    mutating func addDynamicQuantizedModules() {
        set(Linear.self) { linear in try DynamicQuantizedLinear(from: linear) }
        set(LinearReLU.self) { fused in try DynamicQuantizedLinearReLU(from: fused) }
    }
}
