/// A sequence of float modules that eager-mode quantization treats as one unit: `prepare` observes only its output
/// and `convert` swaps it whole for one quantized module (e.g. `LinearReLU` for `QuantizedLinearReLU`). The members
/// are children `"0"`, `"1"`, ... run in order.
///
/// PyTorch: `torch.ao.nn.intrinsic._FusedModule` (a `Sequential`); here `forward` runs only the members, so the
/// `activation_post_process` child that `prepare` adds is not run twice.
open class FusedModule: Module {
    /// The number of members.
    public let memberCount: Int

    /// Members named `"0"`, `"1"`, ... PyTorch: `_FusedModule(*modules)`.
    public init(_ members: [Module]) throws {
        memberCount = members.count
        super.init()
        for (index, member) in members.enumerated() { try registerModule(String(index), member) }
    }

    /// The member at a position. PyTorch: `fused[index]`.
    /// - Throws: `ModuleError.notFound` for an index out of range.
    public func member(at index: Int) throws -> Module {
        try child(String(index))
    }

    /// Each member in order. PyTorch: `Sequential.forward`.
    open override func forward(_ input: Variable) throws -> Variable {
        var x = input
        for index in 0..<memberCount { x = try child(String(index))(x) }
        return x
    }

    /// Checks that member `index` exists and has type `M` (fusion builds these, so a mismatch is a caller error).
    func typedMember<M: Module>(_ index: Int, _ type: M.Type) throws -> M {
        try child(String(index), as: type)
    }
}

/// `Linear` then `ReLU`, fused. `convert` makes it `QuantizedLinearReLU`. PyTorch: `torch.ao.nn.intrinsic.LinearReLU`.
public final class LinearReLU: FusedModule {
    /// PyTorch: `nni.LinearReLU(linear, relu)`.
    public init(_ linear: Linear, _ relu: ReLU) throws { try super.init([linear, relu]) }
    /// The linear layer (member 0). PyTorch: `fused[0]`.
    public var linear: Linear { get throws { try typedMember(0, Linear.self) } }
}

/// `Conv2d` then `ReLU`, fused. `convert` makes it `QuantizedConvReLU2d`. PyTorch: `torch.ao.nn.intrinsic.ConvReLU2d`.
public final class ConvReLU2d: FusedModule {
    /// PyTorch: `nni.ConvReLU2d(conv, relu)`.
    public init(_ conv: Conv2d, _ relu: ReLU) throws { try super.init([conv, relu]) }
    /// The convolution (member 0). PyTorch: `fused[0]`.
    public var conv: Conv2d { get throws { try typedMember(0, Conv2d.self) } }
}

/// `BatchNorm2d` then `ReLU`, fused. `convert` makes it `QuantizedBNReLU2d`. PyTorch: `torch.ao.nn.intrinsic.BNReLU2d`.
public final class BNReLU2d: FusedModule {
    /// PyTorch: `nni.BNReLU2d(batch_norm, relu)`.
    public init(_ batchNorm: BatchNorm2d, _ relu: ReLU) throws { try super.init([batchNorm, relu]) }
    /// The batch norm (member 0). PyTorch: `fused[0]`.
    public var batchNorm: BatchNorm2d { get throws { try typedMember(0, BatchNorm2d.self) } }
}

/// `Conv2d` then `BatchNorm2d`, kept apart for quantization-aware training (`prepareQAT` makes it `QATConvBn2d`).
/// PyTorch: `torch.ao.nn.intrinsic.ConvBn2d`.
public final class ConvBn2d: FusedModule {
    /// PyTorch: `nni.ConvBn2d(conv, bn)`.
    public init(_ conv: Conv2d, _ batchNorm: BatchNorm2d) throws { try super.init([conv, batchNorm]) }
    /// The convolution (member 0). PyTorch: `fused[0]`.
    public var conv: Conv2d { get throws { try typedMember(0, Conv2d.self) } }
    /// The batch norm (member 1). PyTorch: `fused[1]`.
    public var batchNorm: BatchNorm2d { get throws { try typedMember(1, BatchNorm2d.self) } }
}

/// `Conv2d`, `BatchNorm2d`, `ReLU`, kept apart for quantization-aware training (`prepareQAT` makes it
/// `QATConvBnReLU2d`). PyTorch: `torch.ao.nn.intrinsic.ConvBnReLU2d`.
public final class ConvBnReLU2d: FusedModule {
    /// PyTorch: `nni.ConvBnReLU2d(conv, bn, relu)`.
    public init(_ conv: Conv2d, _ batchNorm: BatchNorm2d, _ relu: ReLU) throws {
        try super.init([conv, batchNorm, relu])
    }
    /// The convolution (member 0). PyTorch: `fused[0]`.
    public var conv: Conv2d { get throws { try typedMember(0, Conv2d.self) } }
    /// The batch norm (member 1). PyTorch: `fused[1]`.
    public var batchNorm: BatchNorm2d { get throws { try typedMember(1, BatchNorm2d.self) } }
}

/// `Linear` then `BatchNorm1d`, kept apart for quantization-aware training (`prepareQAT` makes it `QATLinearBn1d`).
/// PyTorch: `torch.ao.nn.intrinsic.LinearBn1d`.
public final class LinearBn1d: FusedModule {
    /// PyTorch: `nni.LinearBn1d(linear, bn)`.
    public init(_ linear: Linear, _ batchNorm: BatchNorm1d) throws { try super.init([linear, batchNorm]) }
    /// The linear layer (member 0). PyTorch: `fused[0]`.
    public var linear: Linear { get throws { try typedMember(0, Linear.self) } }
    /// The batch norm (member 1). PyTorch: `fused[1]`.
    public var batchNorm: BatchNorm1d { get throws { try typedMember(1, BatchNorm1d.self) } }
}
