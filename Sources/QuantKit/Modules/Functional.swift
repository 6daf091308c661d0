/// Element-wise add / multiply and concatenation as a module, for residual connections and branches in models that
/// will be quantized: each call site gets its own instance, whose `activation_post_process` child (an `Identity`
/// until eager-mode `prepare` replaces it with an observer) sees every result. The scalar variants are not
/// observed, as in PyTorch.
///
/// PyTorch: `torch.ao.nn.quantized.FloatFunctional` (`add`, `add_scalar`, `mul`, `mul_scalar`, `cat`,
/// `add_relu`); `convert` swaps it for `QFunctional`. Its `forward` is not meant to be called.
///
/// ```swift
/// // A residual block: y = relu(x + block(x)).
/// let sum = try child("skipAdd", as: FloatFunctional.self).addReLU(x, try child("block")(x))
/// ```
open class FloatFunctional: Module {
    /// PyTorch: `FloatFunctional()` (with an `Identity` `activation_post_process`).
    public override init() {
        super.init()
        appendChild("activation_post_process", Identity())
    }

    /// Runs the `activation_post_process` child on a result (looked up at every call, so an observer put there by
    /// `replaceChild(at:with:)` sees it).
    private func observe(_ result: Variable) throws -> Variable {
        try child("activation_post_process")(result)
    }

    /// Throws: this module's operations are its methods. PyTorch: `FloatFunctional.forward` raises
    /// `RuntimeError("FloatFunctional is not intended to use the 'forward'. Please use the underlying operation")`.
    open override func forward(_ input: Variable) throws -> Variable {
        throw ModuleError.forwardNotImplemented(
            module: displayName, hint: "FloatFunctional is not intended to use forward; call add, mul, cat, "
                + "addScalar, mulScalar or addReLU")
    }

    /// `a + b` (broadcasting), observed. PyTorch: `ff.add(a, b)`.
    open func add(_ a: Variable, _ b: Variable) throws -> Variable {
        try observe(try attributingErrors { try Functional.add(a, b) })
    }

    /// `x + scalar`, not observed. PyTorch: `ff.add_scalar(x, scalar)`.
    open func addScalar(_ x: Variable, _ scalar: Float) throws -> Variable {
        try attributingErrors { try Functional.add(x, scalar: scalar) }
    }

    /// `a * b` (broadcasting), observed. PyTorch: `ff.mul(a, b)`.
    open func mul(_ a: Variable, _ b: Variable) throws -> Variable {
        try observe(try attributingErrors { try Functional.mul(a, b) })
    }

    /// `x * scalar`, not observed. PyTorch: `ff.mul_scalar(x, scalar)`.
    open func mulScalar(_ x: Variable, _ scalar: Float) throws -> Variable {
        try attributingErrors { try Functional.mul(x, scalar: scalar) }
    }

    /// Concatenation along `dimension`, observed. PyTorch: `ff.cat(tensors, dim)`.
    open func cat(_ inputs: [Variable], dimension: Int = 0) throws -> Variable {
        try observe(try attributingErrors { try Functional.cat(inputs, dimension: dimension) })
    }

    /// `relu(a + b)`, observed. PyTorch: `ff.add_relu(a, b)`.
    open func addReLU(_ a: Variable, _ b: Variable) throws -> Variable {
        try observe(try attributingErrors { try Functional.relu(Functional.add(a, b)) })
    }
}
