extension Functional {
    /// Runs an element-wise function and records its derivative. Generic over the function's type so that the
    /// optimizer specializes (inlines) `value` and `derivative` into the loops, forward and backward.
    static func elementwise<F: ElementwiseFunction>(_ input: Variable, _ function: F) throws -> Variable {
        let x = try input.floatTensor(for: F.name)
        let y = x.withUnsafeBufferPointer { px in
            TensorMath.make(x.shape) { py, count in
                Parallel.forEach(count, workPerItem: 1) { range in
                    for i in range { py[i] = function.value(px[i]) }
                }
            }
        }
        guard Autograd.needsRecording(input) else { return Variable(y) }
        return Autograd.record(F.backwardName, output: y, inputs: [input]) { dy in
            let dx = x.withUnsafeBufferPointer { px in
                y.withUnsafeBufferPointer { py in
                    dy.withUnsafeBufferPointer { g in
                        TensorMath.make(x.shape) { d, count in
                            Parallel.forEach(count, workPerItem: 1) { range in
                                for i in range { d[i] = g[i] * function.derivative(x: px[i], y: py[i]) }
                            }
                        }
                    }
                }
            }
            return [dx]
        }
    }

    /// `max(x, 0)`; NaN stays NaN. The gradient is 1 where `y > 0`, else 0 (also at 0).
    /// PyTorch: `F.relu(x)` (`torch.relu`, whose backward is `grad * (result > 0)`).
    public static func relu(_ x: Variable) throws -> Variable {
        try elementwise(x, ElementwiseFunctions.ReLU())
    }

    /// `min(max(x, 0), 6)`; NaN stays NaN. The gradient is 1 strictly inside (0, 6).
    /// PyTorch: `F.relu6(x)` (`hardtanh(x, 0, 6)`, whose backward masks `min < x < max`).
    public static func relu6(_ x: Variable) throws -> Variable {
        try elementwise(x, ElementwiseFunctions.ReLU6())
    }

    /// `x * relu6(x + 3) / 6`. The gradient is 0 below -3, `x / 3 + 0.5` on [-3, 3], 1 above.
    /// PyTorch: `F.hardswish(x)` (and its `hardswish_backward`).
    public static func hardswish(_ x: Variable) throws -> Variable {
        try elementwise(x, ElementwiseFunctions.Hardswish())
    }

    /// `relu6(x + 3) / 6`. The gradient is 1/6 strictly inside (-3, 3), else 0.
    /// PyTorch: `F.hardsigmoid(x)` (and its `hardsigmoid_backward`).
    public static func hardsigmoid(_ x: Variable) throws -> Variable {
        try elementwise(x, ElementwiseFunctions.Hardsigmoid())
    }

    /// `1 / (1 + exp(-x))`; the gradient is `y (1 - y)`. PyTorch: `torch.sigmoid(x)`.
    public static func sigmoid(_ x: Variable) throws -> Variable {
        try elementwise(x, ElementwiseFunctions.Sigmoid())
    }

    /// `tanh(x)`; the gradient is `1 - y^2`. PyTorch: `torch.tanh(x)`.
    public static func tanh(_ x: Variable) throws -> Variable {
        try elementwise(x, ElementwiseFunctions.Tanh())
    }

    /// How `gelu` evaluates the Gaussian CDF. PyTorch: the `approximate` argument of `F.gelu`.
    public enum GELUApproximation: String, Sendable {
        /// The exact `x * Phi(x) = x / 2 * (1 + erf(x / sqrt(2)))`. PyTorch: `approximate='none'`.
        case none
        /// `x / 2 * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 x^3)))`. PyTorch: `approximate='tanh'`.
        case tanh
    }

    /// The Gaussian error linear unit, exact or with the tanh approximation, with the matching gradient.
    /// PyTorch: `F.gelu(x, approximate=...)`.
    public static func gelu(_ x: Variable, approximate: GELUApproximation = .none) throws -> Variable {
        switch approximate {
        case .none: return try elementwise(x, ElementwiseFunctions.GELU())
        case .tanh: return try elementwise(x, ElementwiseFunctions.GELUTanh())
        }
    }
}

/// A differentiable element-wise function: its value and its derivative (from the input `x` and/or the output `y`).
protocol ElementwiseFunction {
    static var name: String { get }
    static var backwardName: String { get }
    func value(_ x: Float) -> Float
    func derivative(x: Float, y: Float) -> Float
}

/// The element-wise functions of `Functional`, with PyTorch's conventions at their kinks.
enum ElementwiseFunctions {
    struct ReLU: ElementwiseFunction {
        static let name = "relu", backwardName = "ReluBackward"
        @inline(__always) func value(_ x: Float) -> Float { x < 0 ? 0 : x }
        @inline(__always) func derivative(x: Float, y: Float) -> Float { y > 0 ? 1 : 0 }
    }

    struct ReLU6: ElementwiseFunction {
        static let name = "relu6", backwardName = "HardtanhBackward"
        @inline(__always) func value(_ x: Float) -> Float { x < 0 ? 0 : (x > 6 ? 6 : x) }
        @inline(__always) func derivative(x: Float, y: Float) -> Float { x > 0 && x < 6 ? 1 : 0 }
    }

    struct Hardswish: ElementwiseFunction {
        static let name = "hardswish", backwardName = "HardswishBackward"
        @inline(__always) func value(_ x: Float) -> Float {
            let r = x + 3
            return x * (r < 0 ? 0 : (r > 6 ? 6 : r)) / 6
        }
        @inline(__always) func derivative(x: Float, y: Float) -> Float { x < -3 ? 0 : (x <= 3 ? x / 3 + 0.5 : 1) }
    }

    struct Hardsigmoid: ElementwiseFunction {
        static let name = "hardsigmoid", backwardName = "HardsigmoidBackward"
        @inline(__always) func value(_ x: Float) -> Float {
            let r = x + 3
            return (r < 0 ? 0 : (r > 6 ? 6 : r)) / 6
        }
        @inline(__always) func derivative(x: Float, y: Float) -> Float { x > -3 && x < 3 ? 1.0 / 6 : 0 }
    }

    struct Sigmoid: ElementwiseFunction {
        static let name = "sigmoid", backwardName = "SigmoidBackward"
        @inline(__always) func value(_ x: Float) -> Float { 1 / (1 + ElementaryFunctions.exp(-x)) }
        @inline(__always) func derivative(x: Float, y: Float) -> Float { y * (1 - y) }
    }

    struct Tanh: ElementwiseFunction {
        static let name = "tanh", backwardName = "TanhBackward"
        @inline(__always) func value(_ x: Float) -> Float { ElementaryFunctions.tanh(x) }
        @inline(__always) func derivative(x: Float, y: Float) -> Float { 1 - y * y }
    }

    struct GELU: ElementwiseFunction {
        static let name = "gelu", backwardName = "GeluBackward"
        static let invSqrt2: Float = 0.70710678118654752
        static let invSqrt2Pi: Float = 0.39894228040143268
        @inline(__always) func value(_ x: Float) -> Float { 0.5 * x * (1 + ElementaryFunctions.erf(x * Self.invSqrt2)) }
        @inline(__always) func derivative(x: Float, y: Float) -> Float {
            let cdf = 0.5 * (1 + ElementaryFunctions.erf(x * Self.invSqrt2))
            return cdf + x * Self.invSqrt2Pi * ElementaryFunctions.exp(-0.5 * x * x)
        }
    }

    struct GELUTanh: ElementwiseFunction {
        static let name = "gelu", backwardName = "GeluBackward"
        static let sqrt2OverPi: Float = 0.79788456080286536
        static let c: Float = 0.044715
        @inline(__always) func value(_ x: Float) -> Float {
            0.5 * x * (1 + ElementaryFunctions.tanh(Self.sqrt2OverPi * (x + Self.c * x * x * x)))
        }
        @inline(__always) func derivative(x: Float, y: Float) -> Float {
            let t = ElementaryFunctions.tanh(Self.sqrt2OverPi * (x + Self.c * x * x * x))
            let dInner = Self.sqrt2OverPi * (1 + 3 * Self.c * x * x)
            return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * dInner
        }
    }

    /// `x + scalar`.
    struct AddScalar: ElementwiseFunction {
        static let name = "add", backwardName = "AddBackward"
        let scalar: Float
        @inline(__always) func value(_ x: Float) -> Float { x + scalar }
        @inline(__always) func derivative(x: Float, y: Float) -> Float { 1 }
    }

    /// `x * scalar`.
    struct MulScalar: ElementwiseFunction {
        static let name = "mul", backwardName = "MulBackward"
        let scalar: Float
        @inline(__always) func value(_ x: Float) -> Float { x * scalar }
        @inline(__always) func derivative(x: Float, y: Float) -> Float { scalar }
    }
}
