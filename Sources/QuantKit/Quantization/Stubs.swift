/// Marks where a float tensor enters the quantized part of a model: the identity until `convert`, which swaps it for
/// `Quantize` with the parameters its observer chose.
///
/// PyTorch: `torch.ao.quantization.QuantStub(qconfig=None)`.
public final class QuantStub: Module {
    /// PyTorch: `QuantStub(qconfig)`; nil leaves the qconfig to propagation.
    public init(qconfig: QConfig? = nil) {
        super.init()
        if let qconfig { self.qconfig = qconfig }
    }

    /// Returns the input. PyTorch: `QuantStub.forward(x)`.
    public override func forward(_ input: Variable) throws -> Variable { input }
}

/// Marks where a quantized tensor leaves the quantized part of a model: the identity until `convert`, which swaps it
/// for `DeQuantize`. It never gets an observer.
///
/// PyTorch: `torch.ao.quantization.DeQuantStub(qconfig=None)`.
public final class DeQuantStub: Module {
    /// PyTorch: `DeQuantStub(qconfig)`; nil leaves the qconfig to propagation.
    public init(qconfig: QConfig? = nil) {
        super.init()
        if let qconfig { self.qconfig = qconfig }
    }

    /// Returns the input. PyTorch: `DeQuantStub.forward(x)`.
    public override func forward(_ input: Variable) throws -> Variable { input }
}

/// Wraps a module between a `QuantStub` and a `DeQuantStub` (children `quant`, `module`, `dequant`), so that a float
/// model can be quantized without editing its `forward`. The wrapper takes the module's qconfig when it has one.
///
/// PyTorch: `torch.ao.quantization.QuantWrapper(module)`.
public final class QuantWrapper: Module {
    /// PyTorch: `QuantWrapper(module)`.
    public init(_ module: Module) throws {
        super.init()
        if module.hasAssignedQConfig { qconfig = module.qconfig }
        try registerModule("quant", QuantStub(qconfig: module.qconfig))
        try registerModule("dequant", DeQuantStub(qconfig: module.qconfig))
        try registerModule("module", module)
    }

    /// `dequant(module(quant(x)))`. PyTorch: `QuantWrapper.forward(x)`.
    public override func forward(_ input: Variable) throws -> Variable {
        try child("dequant")(child("module")(child("quant")(input)))
    }
}
