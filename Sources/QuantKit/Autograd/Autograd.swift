/// One recorded operation of the graph: its inputs and how to turn the gradient of its output into gradients of its
/// inputs.
///
/// PyTorch: `torch.autograd.graph.Node`, the object behind `x.grad_fn` (e.g. `<AddmmBackward0>`).
public final class GradientFunction {
    /// The operation's name, e.g. `"LinearBackward"`. PyTorch: `x.grad_fn.name()`.
    public let name: String

    /// The inputs of the operation, in the order the backward closure returns their gradients.
    /// PyTorch: `x.grad_fn.next_functions` (which holds their nodes).
    public let inputs: [Variable]

    /// Released (set to nil) after a backward pass that does not retain the graph.
    var backward: ((Tensor<Float>) throws -> [Tensor<Float>?])?

    init(name: String, inputs: [Variable], backward: @escaping (Tensor<Float>) throws -> [Tensor<Float>?]) {
        self.name = name
        self.inputs = inputs
        self.backward = backward
    }
}

/// Reverse-mode automatic differentiation: the switch that turns recording off, and the entry point for new
/// differentiable operations.
///
/// PyTorch: `torch.autograd` (`torch.no_grad`, `torch.set_grad_enabled`, `torch.is_grad_enabled`,
/// `torch.autograd.Function`).
public enum Autograd {
    /// Whether recording is on for the current task (thread-local outside tasks).
    static var gradEnabled: Bool {
        if #available(macOS 10.15, iOS 13, tvOS 13, watchOS 6, *) { return GradMode.enabled }
        return true   // no Swift concurrency runtime (macOS < 10.15): withGradEnabled runs body unchanged there
    }

    /// Whether operations record themselves for backward on the current task/thread (true unless inside
    /// `withNoGrad`). PyTorch: `torch.is_grad_enabled()`.
    public static var isGradEnabled: Bool { gradEnabled }

    /// Runs `body` without recording: results of operations are leaves that do not require gradients, so inference
    /// builds no graph and keeps no intermediate tensors alive. The setting is task-local (and thread-local outside
    /// tasks), so other threads keep recording.
    ///
    /// PyTorch: `with torch.no_grad():`.
    public static func withNoGrad<R>(_ body: () throws -> R) rethrows -> R {
        try withGradEnabled(false, body)
    }

    /// `withNoGrad` for async code. PyTorch: `with torch.no_grad():`.
    @available(macOS 10.15, iOS 13, tvOS 13, watchOS 6, *)
    public static func withNoGrad<R>(_ body: () async throws -> R) async rethrows -> R {
        try await GradMode.$enabled.withValue(false) { try await body() }
    }

    /// Runs `body` with recording on or off. PyTorch: `with torch.set_grad_enabled(enabled):`.
    public static func withGradEnabled<R>(_ enabled: Bool, _ body: () throws -> R) rethrows -> R {
        if #available(macOS 10.15, iOS 13, tvOS 13, watchOS 6, *) {
            return try GradMode.$enabled.withValue(enabled) { try body() }
        }
        return try body()
    }

    /// Records a differentiable operation and returns its result: the entry point for operations QuantKit does not
    /// have, e.g. a fake-quantization module with a straight-through estimator.
    ///
    /// `output` is the already computed result. `backward` receives the gradient of the loss with respect to
    /// `output` (same shape) and returns one entry per element of `inputs`: the gradient with respect to that input
    /// (its shape), or nil when the input needs none (check `inputs[i].requiresGrad` to skip work). The closure runs
    /// once per backward pass, after every use of `output` has contributed its gradient; it may capture tensors of
    /// the forward pass (they live as long as the graph). Gradients of inputs used several times (residual
    /// connections) are summed by the engine.
    ///
    /// When recording is off (`withNoGrad`) or no input requires a gradient, nothing is recorded and the result is
    /// a plain leaf; `backward` is dropped without being called.
    ///
    /// PyTorch: a custom `torch.autograd.Function` (`forward` computes `output`; `backward(ctx, grad_output)`
    /// returns one gradient or None per input; `ctx.needs_input_grad` is `inputs.map(\.requiresGrad)`).
    ///
    /// ```swift
    /// // Straight-through fake quantization: y = fq(x), dy/dx = 1 where x was inside the range, else 0.
    /// let y = Autograd.record("FakeQuantizeBackward", output: fakeQuantized, inputs: [x]) { grad in
    ///     [try Tensor(shape: grad.shape, scalars: zip(grad.scalars, inRange).map { $1 ? $0 : 0 })]
    /// }
    /// ```
    public static func record(
        _ name: String, output: Tensor<Float>, inputs: [Variable],
        backward: @escaping (_ outputGradient: Tensor<Float>) throws -> [Tensor<Float>?]
    ) -> Variable {
        guard gradEnabled, inputs.contains(where: \.requiresGrad) else { return Variable(output) }
        let function = GradientFunction(name: name, inputs: inputs, backward: backward)
        return Variable(value: .float(output), requiresGrad: true, gradientFunction: function)
    }

    /// Whether an operation on `inputs` would be recorded now (recording on and some input requires a gradient).
    /// Operations may use it to skip saving tensors for backward.
    public static func needsRecording(_ inputs: Variable...) -> Bool {
        gradEnabled && inputs.contains(where: \.requiresGrad)
    }
}

extension Variable {
    /// Computes the gradient of this variable with respect to every leaf that requires a gradient and adds it to
    /// the leaf's `grad`. The graph is walked once, in reverse topological order, so a variable used several times
    /// (a residual connection) receives the sum of the gradients of all its uses before its own operation runs.
    ///
    /// `gradient` is the gradient of the final objective with respect to this variable (its shape); it may be
    /// omitted only for a one-element variable, e.g. a loss, where it is 1. Without `retainGraph` the saved tensors
    /// are released as the pass goes, and a second backward pass through the same operations throws.
    ///
    /// PyTorch: `loss.backward(gradient=None, retain_graph=False)`.
    /// - Throws: `QuantizationError.invalidOperand` when this variable does not require a gradient, has more than
    ///   one element and no `gradient` is given, `gradient` has the wrong shape, the graph was already released, or
    ///   a custom backward returns the wrong number or shapes of gradients; whatever a backward closure throws.
    public func backward(_ gradient: Tensor<Float>? = nil, retainGraph: Bool = false) throws {
        func fail(_ reason: String) -> QuantizationError { .invalidOperand(operation: "backward", reason: reason) }
        guard requiresGrad else {
            throw fail("element 0 of tensors does not require grad and does not have a grad_fn; call backward on a "
                       + "result computed from parameters or variables that require a gradient, outside withNoGrad")
        }
        let seed: Tensor<Float>
        if let gradient {
            guard gradient.shape == shape else {
                throw fail("the gradient has shape \(gradient.shape) but the variable has shape \(shape)")
            }
            seed = gradient
        } else {
            guard case .float(let t) = value, t.count == 1 else {
                throw fail("grad can be implicitly created only for scalar outputs (shape \(shape)); pass the "
                           + "gradient of the objective with respect to this variable")
            }
            seed = Tensor(storage: TensorStorage(repeating: 1, count: 1), shape: t.shape)
        }

        let order = topologicalOrder()
        var gradients: [ObjectIdentifier: Tensor<Float>] = [ObjectIdentifier(self): seed]
        for variable in order.reversed() {
            guard let gradient = gradients.removeValue(forKey: ObjectIdentifier(variable)) else { continue }
            guard let function = variable.gradientFunction else {
                // A leaf: accumulate into .grad (PyTorch's AccumulateGrad).
                if var existing = variable.grad {
                    variable.grad = nil   // keep `existing` unique so the sum is in place
                    TensorMath.accumulate(&existing, gradient)
                    variable.grad = existing
                } else {
                    variable.grad = gradient
                }
                continue
            }
            guard let backward = function.backward else {
                throw fail("trying to backward through the graph a second time (or directly access saved tensors "
                           + "after they have already been freed); pass retainGraph: true to the first backward")
            }
            let inputGradients = try backward(gradient)
            if !retainGraph { function.backward = nil }
            guard inputGradients.count == function.inputs.count else {
                throw fail("\(function.name) returned \(inputGradients.count) gradients for "
                           + "\(function.inputs.count) inputs; expected one (or nil) per input")
            }
            for (index, (input, inputGradient)) in zip(function.inputs, inputGradients).enumerated() {
                guard input.requiresGrad, let inputGradient else { continue }
                guard inputGradient.shape == input.shape else {
                    throw fail("\(function.name) returned a gradient of shape \(inputGradient.shape) for input "
                               + "\(index) of shape \(input.shape); expected the input's shape")
                }
                let key = ObjectIdentifier(input)
                if var existing = gradients.removeValue(forKey: key) {
                    TensorMath.accumulate(&existing, inputGradient)
                    gradients[key] = existing
                } else {
                    gradients[key] = inputGradient
                }
            }
        }
    }

    /// Every variable reachable from this one through gradient functions (inputs that require gradients only),
    /// each after all of its inputs (post-order of a depth-first search, iterative so deep graphs cannot overflow
    /// the stack).
    private func topologicalOrder() -> [Variable] {
        var order: [Variable] = []
        var visited: Set<ObjectIdentifier> = [ObjectIdentifier(self)]
        var stack: [(variable: Variable, next: Int)] = [(self, 0)]
        while let top = stack.last {
            let inputs = top.variable.gradientFunction?.inputs ?? []
            if top.next < inputs.count {
                stack[stack.count - 1].next += 1
                let input = inputs[top.next]
                if input.requiresGrad, visited.insert(ObjectIdentifier(input)).inserted {
                    stack.append((input, 0))
                }
            } else {
                order.append(top.variable)
                stack.removeLast()
            }
        }
        return order
    }
}

/// The task-local recording switch behind `Autograd.withNoGrad`.
@available(macOS 10.15, iOS 13, tvOS 13, watchOS 6, *)
enum GradMode {
    @TaskLocal static var enabled = true
}
