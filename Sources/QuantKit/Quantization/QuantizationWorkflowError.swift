/// A mistake in an eager-mode quantization workflow (`prepare`, `convert`, `fuseModules`, `quantizeDynamic`,
/// `prepareQAT`): what went wrong, at which module, and what to do instead.
///
/// PyTorch: the warnings, `AssertionError`s and runtime failures of `torch.ao.quantization` that users hit late
/// (e.g. "None of the submodule got qconfig applied", converting an uncalibrated model, a fusion pattern that is not
/// in `_DEFAULT_OP_LIST_TO_FUSER_METHOD`). A float tensor reaching a quantized module, or the reverse, is
/// `QuantizationError.invalidOperand` naming the module.
public enum QuantizationWorkflowError: Error, Equatable, Sendable, CustomStringConvertible {
    /// No module of the model ended up with a qconfig, so `prepare` / `prepareQAT` would change nothing.
    /// PyTorch: the warning "None of the submodule got qconfig applied. Make sure you passed correct configuration
    /// through `qconfig_dict` or by assigning the `.qconfig` attribute directly on submodules".
    case noQConfig(model: String)

    /// A module is being converted (its quantized version built `from:` it) but has no qconfig: neither assigned
    /// nor propagated, or opted out with nil.
    /// PyTorch: `AssertionError: Input float module must have qconfig defined`.
    case missingQConfig(module: String)

    /// A module that `convert` would swap has a qconfig but no observer: `prepare` was not run on it.
    /// PyTorch: `AttributeError: 'Linear' object has no attribute 'activation_post_process'`.
    case notPrepared(module: String)

    /// The observer of a module has seen no data: `convert` ran before calibration (before the model was run on
    /// representative inputs after `prepare`).
    /// PyTorch: the warning "must run observer before calling calculate_qparams. Returning default values" and
    /// a model quantized with scale 1.0.
    case notCalibrated(module: String)

    /// `fuseModules` was given modules that do not form a known pattern, or that cannot be fused in this mode.
    /// PyTorch: `NotImplementedError: Cannot fuse modules: (<class 'Linear'>, <class 'Tanh'>)`.
    case unfusablePattern(modules: [String], types: [String], reason: String)

    /// The model is in the wrong mode for the call (e.g. `prepareQAT` on a model in evaluation mode, or
    /// inference fusion of a model in training mode).
    /// PyTorch: `AssertionError: prepare_qat only works on models in training mode`.
    case wrongMode(operation: String, expected: String)

    /// A qconfig that the module cannot use (e.g. a dtype or scheme its quantized version does not support).
    /// PyTorch: the `AssertionError`s of `from_float`, e.g. "Weight observer must have dtype torch.qint8".
    case unsupportedQConfig(module: String, reason: String)

    /// What went wrong and what to do, in one or two sentences. PyTorch: `str(error)`.
    public var description: String {
        switch self {
        case let .noQConfig(model):
            return "no module of \(model) has a qconfig, so nothing would be quantized; assign one "
                + "(model.qconfig = QConfig.defaultQConfig(backend: .x86)) or pass a QConfigMapping"
        case let .missingQConfig(module):
            return "\(module) has no qconfig: assign one (module.qconfig = ...) or propagate one with "
                + "propagateQConfig(_:_:) / prepare(_:config:) before converting it"
        case let .notPrepared(module):
            return "\(module) has a qconfig but no observer: call prepare(_:) (or prepareQAT(_:config:)) and "
                + "calibrate before convert(_:)"
        case let .notCalibrated(module):
            return "the observer of \(module) has seen no data: run the prepared model on representative inputs "
                + "(calibration) before convert(_:)"
        case let .unfusablePattern(modules, types, reason):
            return "cannot fuse modules [\(modules.joined(separator: ", "))] of types "
                + "(\(types.joined(separator: ", "))): \(reason)"
        case let .wrongMode(operation, expected):
            return "\(operation) only works on models in \(expected)"
        case let .unsupportedQConfig(module, reason):
            return "the qconfig of \(module) cannot be used: \(reason)"
        }
    }
}
