/// The weight format of dynamic quantization. PyTorch: the `dtype` argument of `quantize_dynamic`.
public enum DynamicQuantizationType: String, Sendable, CaseIterable, CustomStringConvertible {
    /// int8 weights, activations quantized to quint8 at every call. PyTorch: `torch.qint8`.
    case qint8
    /// fp16 weights, fp32 activations and arithmetic. PyTorch: `torch.float16`.
    case float16

    /// PyTorch's name without the `torch.` prefix.
    public var description: String { rawValue }

    /// The qconfig `quantizeDynamic` gives the listed types: `.defaultDynamic` (`.perChannelDynamic` with
    /// `perChannel`) or `.float16Dynamic`.
    /// PyTorch: the `default_dynamic_qconfig` / `per_channel_dynamic_qconfig` / `float16_dynamic_qconfig` that
    /// `quantize_dynamic` picks for a set `qconfig_spec`.
    public func defaultQConfig(perChannel: Bool = false) -> QConfig {
        switch self {
        case .qint8: return perChannel ? .perChannelDynamic : .defaultDynamic
        case .float16: return .float16Dynamic
        }
    }
}

/// Dynamically quantizes a model in place: every module of one of `types` (exact types) gets `dtype`'s default
/// qconfig (a module's own assigned `qconfig`, including nil, wins), the model goes to evaluation mode, and
/// `convert` with `mapping` swaps each such module for its dynamic version: `Linear` → `DynamicQuantizedLinear`,
/// fused `LinearReLU` → `DynamicQuantizedLinearReLU`, with int8 weights (per tensor, or per channel with
/// `perChannel`) or fp16 weights. Activations are quantized at run time, so no calibration is needed.
///
/// Unlike PyTorch, `LinearReLU` is in the default types (PyTorch's default set leaves fused units float), and a
/// type without a dynamic version (e.g. `Conv2d`, which PyTorch skips silently) is an error.
///
/// ```swift
/// try quantizeDynamic(model)                                  // int8, per-tensor weights
/// try quantizeDynamic(model, dtype: .float16)                 // fp16 weights
/// try quantizeDynamic(model, perChannel: true)                // int8, per-channel weights
/// ```
///
/// PyTorch: `torch.ao.quantization.quantize_dynamic(model, qconfig_spec={nn.Linear, ...}, dtype=dtype,
/// inplace=True)`.
/// - Throws: `QuantizationWorkflowError.unsupportedQConfig` for a type `mapping` cannot convert or `perChannel` with
///   `.float16`; what a conversion throws.
@discardableResult
public func quantizeDynamic(
    _ model: Module, types: [Module.Type] = [Linear.self, LinearReLU.self],
    dtype: DynamicQuantizationType = .qint8, perChannel: Bool = false, mapping: ModuleMapping = .defaultDynamic
) throws -> Module {
    guard !(perChannel && dtype == .float16) else {
        throw QuantizationWorkflowError.unsupportedQConfig(
            module: "quantizeDynamic", reason: "perChannel applies to qint8 weights, not float16")
    }
    var config = QConfigMapping()
    let qconfig = dtype.defaultQConfig(perChannel: perChannel)
    for type in types {
        guard mapping.contains(type) else {
            throw QuantizationWorkflowError.unsupportedQConfig(
                module: String(describing: type), reason: "there is no dynamically quantized version of "
                    + "\(type); the mapping converts " + mapping.typeNames.joined(separator: ", "))
        }
        config.setObjectType(type, qconfig)
    }
    return try quantizeDynamic(model, config: config, mapping: mapping)
}

/// Dynamically quantizes a model in place with the qconfigs of `config` (by type, by dotted name, a global one;
/// modules' own `qconfig` win): propagation, evaluation mode, then `convert` with `mapping`. Use `.defaultDynamic`,
/// `.perChannelDynamic` or `.float16Dynamic` as the qconfigs (the weight observer's dtype decides int8 or fp16).
///
/// ```swift
/// var config = QConfigMapping()
/// config.setObjectType(Linear.self, .perChannelDynamic)
/// config.setModuleName("classifier.2", .float16Dynamic)
/// try quantizeDynamic(model, config: config)
/// ```
///
/// PyTorch: `quantize_dynamic(model, qconfig_spec={nn.Linear: per_channel_dynamic_qconfig, "fc": ...},
/// inplace=True)` (a dict `qconfig_spec`).
/// - Throws: `ModuleError.notFound` for a name in `config` that is not in the model;
///   `QuantizationWorkflowError.unsupportedQConfig`; what a conversion throws.
@discardableResult
public func quantizeDynamic(_ model: Module, config: QConfigMapping, mapping: ModuleMapping = .defaultDynamic)
    throws -> Module
{
    try propagateQConfig(model, config)
    model.eval()
    return try convert(model, mapping: mapping)
}
