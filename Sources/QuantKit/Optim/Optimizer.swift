/// Updates parameters from their gradients.
///
/// PyTorch: `torch.optim.Optimizer` (`step()`, `zero_grad()`, one parameter group). Hyperparameters are `Double`,
/// as Python floats are; like PyTorch, the scalar formulas run in double precision and the per-element updates in
/// float32.
public protocol Optimizer: AnyObject {
    /// The parameters being optimized, in order. PyTorch: `optimizer.param_groups[0]["params"]`.
    var parameters: [Parameter] { get }
    /// The step size; a scheduler may change it between steps. PyTorch: `optimizer.param_groups[0]["lr"]`.
    var learningRate: Double { get set }
    /// Updates every parameter that has a gradient (those without one are skipped, as in PyTorch).
    /// PyTorch: `optimizer.step()`.
    func step() throws
}

extension Optimizer {
    /// Sets every parameter's gradient to nil. PyTorch: `optimizer.zero_grad(set_to_none=True)`.
    public func zeroGrad() {
        for parameter in parameters { parameter.grad = nil }
    }
}

/// Shared checks and the per-parameter state of the optimizers.
enum OptimizerSupport {
    static func check(_ condition: Bool, _ optimizer: String, _ reason: @autoclosure () -> String) throws {
        guard condition else { throw QuantizationError.invalidOperand(operation: optimizer, reason: reason()) }
    }

    /// The gradient of `parameter`, checked against its shape (nil when it has none).
    static func gradient(of parameter: Parameter, index: Int, optimizer: String) throws -> Tensor<Float>? {
        guard let grad = parameter.grad else { return nil }
        guard grad.shape == parameter.data.shape else {
            throw QuantizationError.invalidOperand(
                operation: optimizer, reason: "parameter \(index) has shape \(parameter.data.shape) but its gradient "
                    + "has shape \(grad.shape)")
        }
        return grad
    }
}

/// Stochastic gradient descent with momentum, dampening, Nesterov momentum and L2 weight decay, with PyTorch's
/// update rule exactly:
/// ```
/// g = grad + weightDecay * p                      (if weightDecay != 0; -grad first with maximize)
/// b = g (first step)  or  momentum * b + (1 - dampening) * g      (if momentum != 0)
/// g = g + momentum * b (nesterov)  or  b
/// p = p - lr * g
/// ```
///
/// PyTorch: `torch.optim.SGD(params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False,
/// maximize=False)` (the single-tensor implementation).
public final class SGD: Optimizer {
    /// PyTorch: `params`.
    public let parameters: [Parameter]
    /// PyTorch: `lr`.
    public var learningRate: Double
    /// PyTorch: `momentum`.
    public let momentum: Double
    /// PyTorch: `dampening`.
    public let dampening: Double
    /// L2 penalty added to the gradient. PyTorch: `weight_decay`.
    public let weightDecay: Double
    /// PyTorch: `nesterov`.
    public let nesterov: Bool
    /// Ascend instead of descend. PyTorch: `maximize`.
    public let maximize: Bool
    /// The momentum buffer of each parameter (nil before its first step). PyTorch: `state[p]["momentum_buffer"]`.
    public private(set) var momentumBuffers: [Tensor<Float>?]

    /// PyTorch: `torch.optim.SGD(parameters, lr, momentum, dampening, weight_decay, nesterov, maximize)`.
    /// - Throws: `QuantizationError.invalidOperand` for a negative learning rate, momentum or weight decay, or
    ///   Nesterov momentum without momentum or with dampening (PyTorch's `ValueError`s).
    public init(_ parameters: [Parameter], learningRate: Double = 1e-3, momentum: Double = 0, dampening: Double = 0,
                weightDecay: Double = 0, nesterov: Bool = false, maximize: Bool = false) throws {
        try OptimizerSupport.check(learningRate >= 0, "SGD", "Invalid learning rate: \(learningRate)")
        try OptimizerSupport.check(momentum >= 0, "SGD", "Invalid momentum value: \(momentum)")
        try OptimizerSupport.check(weightDecay >= 0, "SGD", "Invalid weight_decay value: \(weightDecay)")
        try OptimizerSupport.check(!nesterov || (momentum > 0 && dampening == 0), "SGD",
                                   "Nesterov momentum requires a momentum and zero dampening")
        self.parameters = parameters
        self.learningRate = learningRate
        self.momentum = momentum
        self.dampening = dampening
        self.weightDecay = weightDecay
        self.nesterov = nesterov
        self.maximize = maximize
        momentumBuffers = Array(repeating: nil, count: parameters.count)
    }

    /// PyTorch: `optimizer.step()`.
    /// - Throws: `QuantizationError.invalidOperand` for a gradient whose shape is not its parameter's.
    public func step() throws {
        let lr = Float(learningRate), wd = Float(weightDecay), mu = Float(momentum)
        let keep = Float(1 - dampening)
        for (index, parameter) in parameters.enumerated() {
            guard let grad = try OptimizerSupport.gradient(of: parameter, index: index, optimizer: "SGD") else {
                continue
            }
            var buffer = momentumBuffers[index]
            momentumBuffers[index] = nil   // keep the buffer unique so it updates in place
            let first = buffer == nil
            if momentum != 0, first { buffer = TensorMath.zeros(grad.shape) }
            parameter.updateData { data in
                data.withUnsafeMutableBufferPointer { p in
                    grad.withUnsafeBufferPointer { g in
                        withOptionalMutableBuffer(&buffer) { b in
                            for i in 0..<p.count {
                                var d = maximize ? -g[i] : g[i]
                                if weightDecay != 0 { d = d + wd * p[i] }
                                if let b {
                                    b[i] = first ? d : b[i] * mu + keep * d
                                    d = nesterov ? d + mu * b[i] : b[i]
                                }
                                p[i] = p[i] + (-lr) * d
                            }
                        }
                    }
                }
            }
            momentumBuffers[index] = buffer
        }
    }
}

/// Adam with PyTorch's update exactly (L2 weight decay added to the gradient; AdamW decouples it):
/// ```
/// g = grad + weightDecay * p
/// m = lerp(m, g, 1 - beta1);   v = beta2 * v + (1 - beta2) * g * g
/// p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
/// ```
/// with the bias corrections in double precision and `eps` added after the bias-corrected square root, as PyTorch.
/// With `amsgrad`, `v` in the denominator is the running maximum of `v`.
///
/// PyTorch: `torch.optim.Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False,
/// maximize=False)` (the single-tensor implementation).
public class Adam: Optimizer {
    /// PyTorch: `params`.
    public let parameters: [Parameter]
    /// PyTorch: `lr`.
    public var learningRate: Double
    /// PyTorch: `betas[0]`.
    public let beta1: Double
    /// PyTorch: `betas[1]`.
    public let beta2: Double
    /// PyTorch: `eps`.
    public let eps: Double
    /// PyTorch: `weight_decay`.
    public let weightDecay: Double
    /// PyTorch: `amsgrad`.
    public let amsgrad: Bool
    /// PyTorch: `maximize`.
    public let maximize: Bool
    /// Steps taken per parameter. PyTorch: `state[p]["step"]`.
    public private(set) var steps: [Int]
    /// First moments. PyTorch: `state[p]["exp_avg"]`.
    public private(set) var firstMoments: [Tensor<Float>?]
    /// Second moments. PyTorch: `state[p]["exp_avg_sq"]`.
    public private(set) var secondMoments: [Tensor<Float>?]
    /// Running maxima of the second moments (amsgrad). PyTorch: `state[p]["max_exp_avg_sq"]`.
    public private(set) var maxSecondMoments: [Tensor<Float>?]

    /// Whether the weight decay is decoupled (AdamW).
    var decoupledWeightDecay: Bool { false }
    var name: String { "Adam" }

    /// PyTorch: `torch.optim.Adam(parameters, lr, betas=(beta1, beta2), eps, weight_decay, amsgrad, maximize)`.
    /// - Throws: `QuantizationError.invalidOperand` for a negative learning rate, eps or weight decay, or betas
    ///   outside [0, 1) (PyTorch's `ValueError`s).
    public init(_ parameters: [Parameter], learningRate: Double = 1e-3, beta1: Double = 0.9, beta2: Double = 0.999,
                eps: Double = 1e-8, weightDecay: Double = 0, amsgrad: Bool = false, maximize: Bool = false) throws {
        let name = Self.self == Adam.self ? "Adam" : "AdamW"
        try OptimizerSupport.check(learningRate >= 0, name, "Invalid learning rate: \(learningRate)")
        try OptimizerSupport.check(eps >= 0, name, "Invalid epsilon value: \(eps)")
        try OptimizerSupport.check(beta1 >= 0 && beta1 < 1, name, "Invalid beta parameter at index 0: \(beta1)")
        try OptimizerSupport.check(beta2 >= 0 && beta2 < 1, name, "Invalid beta parameter at index 1: \(beta2)")
        try OptimizerSupport.check(weightDecay >= 0, name, "Invalid weight_decay value: \(weightDecay)")
        self.parameters = parameters
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weightDecay = weightDecay
        self.amsgrad = amsgrad
        self.maximize = maximize
        steps = Array(repeating: 0, count: parameters.count)
        firstMoments = Array(repeating: nil, count: parameters.count)
        secondMoments = Array(repeating: nil, count: parameters.count)
        maxSecondMoments = Array(repeating: nil, count: parameters.count)
    }

    /// PyTorch: `optimizer.step()`.
    /// - Throws: `QuantizationError.invalidOperand` for a gradient whose shape is not its parameter's.
    public func step() throws {
        let decoupled = decoupledWeightDecay
        for (index, parameter) in parameters.enumerated() {
            guard let grad = try OptimizerSupport.gradient(of: parameter, index: index, optimizer: name) else {
                continue
            }
            steps[index] += 1
            let t = Double(steps[index])
            var m = firstMoments[index] ?? TensorMath.zeros(grad.shape)
            var v = secondMoments[index] ?? TensorMath.zeros(grad.shape)
            var vMax: Tensor<Float>? = amsgrad ? (maxSecondMoments[index] ?? TensorMath.zeros(grad.shape)) : nil
            firstMoments[index] = nil
            secondMoments[index] = nil
            maxSecondMoments[index] = nil

            let biasCorrection1 = 1 - ElementaryFunctions.pow(beta1, t)
            let biasCorrection2Sqrt = (1 - ElementaryFunctions.pow(beta2, t)).squareRoot()
            let stepSize = Float(learningRate / biasCorrection1)
            let correction2 = Float(biasCorrection2Sqrt)
            let weight1 = Float(1 - beta1), b2 = Float(beta2), weight2 = Float(1 - beta2)
            let wd = Float(weightDecay), e = Float(eps)
            let decay = Float(1 - learningRate * weightDecay)

            parameter.updateData { data in
                data.withUnsafeMutableBufferPointer { p in
                    grad.withUnsafeBufferPointer { g in
                        m.withUnsafeMutableBufferPointer { pm in
                            v.withUnsafeMutableBufferPointer { pv in
                                withOptionalMutableBuffer(&vMax) { pmax in
                                    for i in 0..<p.count {
                                        var d = maximize ? -g[i] : g[i]
                                        if weightDecay != 0 {
                                            if decoupled { p[i] = p[i] * decay } else { d = d + wd * p[i] }
                                        }
                                        // torch.lerp(m, d, w): the formula depends on which side w is.
                                        pm[i] = weight1 < 0.5 ? pm[i] + weight1 * (d - pm[i])
                                                              : d - (d - pm[i]) * (1 - weight1)
                                        pv[i] = pv[i] * b2 + weight2 * d * d
                                        var second = pv[i]
                                        if let pmax {
                                            pmax[i] = max(pmax[i], pv[i])
                                            second = pmax[i]
                                        }
                                        let denominator = second.squareRoot() / correction2 + e
                                        p[i] = p[i] + (-stepSize) * (pm[i] / denominator)
                                    }
                                }
                            }
                        }
                    }
                }
            }
            firstMoments[index] = m
            secondMoments[index] = v
            maxSecondMoments[index] = vMax
        }
    }
}

/// Adam with decoupled weight decay: each step first scales the parameters by `1 - lr * weightDecay`, then
/// applies Adam without L2 on the gradient.
///
/// PyTorch: `torch.optim.AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False)`.
public final class AdamW: Adam {
    /// PyTorch: `torch.optim.AdamW(parameters, lr, betas=(beta1, beta2), eps, weight_decay, amsgrad, maximize)`.
    /// - Throws: as `Adam.init`.
    public override init(_ parameters: [Parameter], learningRate: Double = 1e-3, beta1: Double = 0.9,
                         beta2: Double = 0.999, eps: Double = 1e-8, weightDecay: Double = 1e-2,
                         amsgrad: Bool = false, maximize: Bool = false) throws {
        try super.init(parameters, learningRate: learningRate, beta1: beta1, beta2: beta2, eps: eps,
                       weightDecay: weightDecay, amsgrad: amsgrad, maximize: maximize)
    }

    override var decoupledWeightDecay: Bool { true }
    override var name: String { "AdamW" }
}
