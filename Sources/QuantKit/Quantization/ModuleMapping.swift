/// Which module type `convert` (or `prepareQAT`, `quantizeDynamic`) swaps for which, and how: a table from an exact
/// float (or QAT) module type to a function that builds the replacement from the prepared module.
///
/// PyTorch: the `mapping` argument of `convert` / `prepare_qat` / `quantize_dynamic`, a dict from a float class to
/// the class whose `from_float` builds the replacement (`get_default_static_quant_module_mappings()` and friends).
///
/// ```swift
/// var mapping = ModuleMapping.defaultStatic
/// mapping.set(MyLayer.self) { layer in try MyQuantizedLayer(from: layer) }   // a custom quantized module
/// try convert(model, mapping: mapping)
/// ```
public struct ModuleMapping: @unchecked Sendable {
    /// Builds the replacement of a module. PyTorch: `QuantizedClass.from_float(module)`.
    public typealias Converter = (Module) throws -> Module

    private var entries: [ObjectIdentifier: (typeName: String, convert: Converter)] = [:]

    /// An empty mapping.
    public init() {}

    /// Swaps modules of exactly type `M` with what `convert` returns (replacing an earlier entry for `M`).
    /// PyTorch: `mapping[M] = QuantizedClass`.
    public mutating func set<M: Module>(_ type: M.Type, _ convert: @escaping (M) throws -> Module) {
        entries[ObjectIdentifier(type)] = (String(describing: type), { module in
            // The table is keyed by exact type, so the cast cannot fail.
            try convert(module as! M)
        })
    }

    /// Removes the entry for `type`. PyTorch: `del mapping[type]`.
    public mutating func remove(_ type: Module.Type) {
        entries[ObjectIdentifier(type)] = nil
    }

    /// Whether modules of exactly this type are swapped. PyTorch: `type in mapping`.
    public func contains(_ type: Module.Type) -> Bool {
        entries[ObjectIdentifier(type)] != nil
    }

    /// The names of the mapped types, sorted (for messages and tests).
    public var typeNames: [String] { entries.values.map(\.typeName).sorted() }

    /// The converter for a module's exact type.
    func converter(for module: Module) -> Converter? {
        entries[ObjectIdentifier(type(of: module))]?.convert
    }

    /// The entries of both, `other`'s winning on a clash.
    func merging(_ other: ModuleMapping) -> ModuleMapping {
        var result = self
        result.entries.merge(other.entries) { _, new in new }
        return result
    }

    /// Static (post-training and QAT) conversion: stubs, quantized Linear / Conv2d / fused modules / activations /
    /// `FloatFunctional`, and the QAT modules folded into their quantized versions.
    /// PyTorch: `get_default_static_quant_module_mappings()`.
    public static var defaultStatic: ModuleMapping {
        var mapping = ModuleMapping()
        mapping.set(QuantStub.self) { stub in try Quantize(from: stub) }
        mapping.set(DeQuantStub.self) { _ in DeQuantize() }
        mapping.addStaticQuantizedModules()
        mapping.addQATConversions()
        return mapping
    }

    /// Dynamic conversion: `Linear` and `LinearReLU` to dynamically quantized (int8 or fp16 weights) modules.
    /// PyTorch: `get_default_dynamic_quant_module_mappings()`.
    public static var defaultDynamic: ModuleMapping {
        var mapping = ModuleMapping()
        mapping.addDynamicQuantizedModules()
        return mapping
    }

    /// Float to quantization-aware-training modules (what `prepareQAT` swaps in): `Linear`, `Conv2d` and the fused
    /// modules to their QAT versions with weight fake quantization.
    /// PyTorch: `get_default_qat_module_mappings()`.
    public static var defaultQAT: ModuleMapping {
        var mapping = ModuleMapping()
        mapping.addQATModules()
        return mapping
    }

    /// The types whose modules take a qconfig and an observer: every type of the three default mappings.
    /// PyTorch: `get_default_qconfig_propagation_list()`.
    static var propagationList: ModuleMapping {
        defaultStatic.merging(defaultDynamic).merging(defaultQAT)
    }
}

/// A quantization-aware-training module: a float layer that fake-quantizes its weight (child `weight_fake_quant`)
/// in `forward`. `prepare` observes its output as one unit, as it does a `FusedModule`.
///
/// PyTorch: the `torch.ao.nn.qat` and `torch.ao.nn.intrinsic.qat` modules (`nnqat.Linear`, `nniqat.ConvBn2d`, ...).
public protocol QATModule: Module {
    /// The fake-quantize module applied to the weight. PyTorch: `module.weight_fake_quant`.
    var weightFakeQuant: ObserverModule { get throws }
}
