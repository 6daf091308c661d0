/// How a loss combines the per-sample losses. PyTorch: the `reduction` argument (`'mean'`, `'sum'`, `'none'`).
public enum LossReduction: String, Sendable {
    /// The mean over the samples (PyTorch's default).
    case mean
    /// The sum over the samples.
    case sum
    /// One loss per sample.
    case none
}

extension Functional {
    /// The logits viewed as `[outer, size, inner]` around a dimension.
    private static func around(_ shape: [Int], _ dimension: Int, _ operation: String) throws
        -> (outer: Int, size: Int, inner: Int)
    {
        let rank = shape.count
        guard rank >= 1 else {
            throw QuantizationError.invalidOperand(operation: operation, reason: "expected at least 1 dimension")
        }
        guard (-rank..<rank).contains(dimension) else { throw QuantizationError.axisOutOfRange(dimension, rank: rank) }
        let d = dimension < 0 ? dimension + rank : dimension
        return (shape[..<d].reduce(1, *), shape[d], shape[(d + 1)...].reduce(1, *))
    }

    /// `exp(x - max) / sum(exp(x - max))` along `dimension`; the gradient is `y * (dy - sum(dy * y))`.
    /// PyTorch: `F.softmax(x, dim)`.
    /// - Throws: `QuantizationError.invalidOperand` / `.axisOutOfRange`.
    public static func softmax(_ input: Variable, dimension: Int = -1) throws -> Variable {
        let x = try input.floatTensor(for: "softmax")
        let (outer, size, inner) = try around(x.shape, dimension, "softmax")
        let y = x.withUnsafeBufferPointer { px in
            TensorMath.make(x.shape) { py, _ in
                for o in 0..<outer {
                    for i in 0..<inner {
                        let base = o * size * inner + i
                        var m = -Float.infinity
                        for j in 0..<size { m = max(m, px[base + j * inner]) }
                        var total: Float = 0
                        for j in 0..<size {
                            let e = ElementaryFunctions.exp(px[base + j * inner] - m)
                            py[base + j * inner] = e
                            total += e
                        }
                        for j in 0..<size { py[base + j * inner] /= total }
                    }
                }
            }
        }
        return Autograd.record("SoftmaxBackward", output: y, inputs: [input]) { dy in
            let dx = y.withUnsafeBufferPointer { py in
                dy.withUnsafeBufferPointer { g in
                    TensorMath.make(x.shape) { d, _ in
                        for o in 0..<outer {
                            for i in 0..<inner {
                                let base = o * size * inner + i
                                var dot: Float = 0
                                for j in 0..<size { dot += g[base + j * inner] * py[base + j * inner] }
                                for j in 0..<size {
                                    d[base + j * inner] = py[base + j * inner] * (g[base + j * inner] - dot)
                                }
                            }
                        }
                    }
                }
            }
            return [dx]
        }
    }

    /// `x - max - log(sum(exp(x - max)))` along `dimension`; the gradient is `dy - softmax(x) * sum(dy)`.
    /// PyTorch: `F.log_softmax(x, dim)`.
    /// - Throws: `QuantizationError.invalidOperand` / `.axisOutOfRange`.
    public static func logSoftmax(_ input: Variable, dimension: Int = -1) throws -> Variable {
        let x = try input.floatTensor(for: "log_softmax")
        let (outer, size, inner) = try around(x.shape, dimension, "log_softmax")
        let y = x.withUnsafeBufferPointer { px in
            TensorMath.make(x.shape) { py, _ in
                for o in 0..<outer {
                    for i in 0..<inner {
                        let base = o * size * inner + i
                        var m = -Float.infinity
                        for j in 0..<size { m = max(m, px[base + j * inner]) }
                        var total: Float = 0
                        for j in 0..<size { total += ElementaryFunctions.exp(px[base + j * inner] - m) }
                        let logSum = m + ElementaryFunctions.log(total)
                        for j in 0..<size { py[base + j * inner] = px[base + j * inner] - logSum }
                    }
                }
            }
        }
        return Autograd.record("LogSoftmaxBackward", output: y, inputs: [input]) { dy in
            let dx = y.withUnsafeBufferPointer { py in
                dy.withUnsafeBufferPointer { g in
                    TensorMath.make(x.shape) { d, _ in
                        for o in 0..<outer {
                            for i in 0..<inner {
                                let base = o * size * inner + i
                                var total: Float = 0
                                for j in 0..<size { total += g[base + j * inner] }
                                for j in 0..<size {
                                    let k = base + j * inner
                                    d[k] = g[k] - ElementaryFunctions.exp(py[k]) * total
                                }
                            }
                        }
                    }
                }
            }
            return [dx]
        }
    }

    /// Cross-entropy between `logits [N, C]` (unnormalized scores) and class indices `targets` (N values in
    /// `0..<C`): `-log_softmax(logits)[n][targets[n]]`, reduced by `reduction`. Computed in one fused, stable pass;
    /// the gradient is `(softmax(logits) - onehot(targets)) * dy` (divided by N for the mean).
    ///
    /// PyTorch: `F.cross_entropy(logits, targets, reduction=...)` with class-index targets.
    /// - Throws: `QuantizationError.invalidOperand` for a quantized payload, logits that are not 2-D, a target count
    ///   other than N, or a target out of range (PyTorch: "Target 10 is out of bounds").
    public static func crossEntropy(_ logits: Variable, targets: [Int], reduction: LossReduction = .mean) throws
        -> Variable
    {
        let operation = "cross_entropy"
        func fail(_ reason: String) -> QuantizationError { .invalidOperand(operation: operation, reason: reason) }
        let x = try logits.floatTensor(for: operation)
        guard x.rank == 2 else { throw fail("expected logits of shape [N, C], got \(x.shape)") }
        let (n, c) = (x.shape[0], x.shape[1])
        guard targets.count == n else {
            throw fail("Expected input batch_size (\(n)) to match target batch_size (\(targets.count))")
        }
        if let bad = targets.first(where: { !(0..<c).contains($0) }) {
            throw fail("Target \(bad) is out of bounds; expected class indices in 0..<\(c)")
        }
        // Per-sample losses and the softmax (kept for backward).
        var losses = [Float](repeating: 0, count: n)
        let probabilities = x.withUnsafeBufferPointer { px in
            TensorMath.make(x.shape) { p, _ in
                for row in 0..<n {
                    let r = px.baseAddress! + row * c
                    var m = -Float.infinity
                    for j in 0..<c { m = max(m, r[j]) }
                    var total: Float = 0
                    for j in 0..<c {
                        let e = ElementaryFunctions.exp(r[j] - m)
                        p[row * c + j] = e
                        total += e
                    }
                    for j in 0..<c { p[row * c + j] /= total }
                    losses[row] = m + ElementaryFunctions.log(total) - r[targets[row]]
                }
            }
        }
        let y: Tensor<Float>
        switch reduction {
        case .none: y = Tensor(losses)
        case .sum: y = TensorMath.filled(Float(losses.reduce(0.0) { $0 + Double($1) }), [])
        case .mean: y = TensorMath.filled(Float(losses.reduce(0.0) { $0 + Double($1) } / Double(n)), [])
        }
        return Autograd.record("CrossEntropyBackward", output: y, inputs: [logits]) { dy in
            let g = dy.scalars
            let dx = probabilities.withUnsafeBufferPointer { p in
                TensorMath.make(x.shape) { d, _ in
                    for row in 0..<n {
                        let scale: Float
                        switch reduction {
                        case .none: scale = g[row]
                        case .sum: scale = g[0]
                        case .mean: scale = g[0] / Float(n)
                        }
                        for j in 0..<c { d[row * c + j] = p[row * c + j] * scale }
                        d[row * c + targets[row]] -= scale
                    }
                }
            }
            return [dx]
        }
    }

    /// Negative log-likelihood of class indices given log-probabilities `[N, C]`: `-input[n][targets[n]]`, reduced.
    /// PyTorch: `F.nll_loss(input, targets, reduction=...)`.
    /// - Throws: as `crossEntropy`.
    public static func nllLoss(_ input: Variable, targets: [Int], reduction: LossReduction = .mean) throws
        -> Variable
    {
        let operation = "nll_loss"
        func fail(_ reason: String) -> QuantizationError { .invalidOperand(operation: operation, reason: reason) }
        let x = try input.floatTensor(for: operation)
        guard x.rank == 2 else { throw fail("expected input of shape [N, C], got \(x.shape)") }
        let (n, c) = (x.shape[0], x.shape[1])
        guard targets.count == n else {
            throw fail("Expected input batch_size (\(n)) to match target batch_size (\(targets.count))")
        }
        if let bad = targets.first(where: { !(0..<c).contains($0) }) {
            throw fail("Target \(bad) is out of bounds; expected class indices in 0..<\(c)")
        }
        let picked = x.withUnsafeBufferPointer { px in (0..<n).map { -px[$0 * c + targets[$0]] } }
        let y: Tensor<Float>
        switch reduction {
        case .none: y = Tensor(picked)
        case .sum: y = TensorMath.filled(picked.reduce(0, +), [])
        case .mean: y = TensorMath.filled(picked.reduce(0, +) / Float(n), [])
        }
        return Autograd.record("NllLossBackward", output: y, inputs: [input]) { dy in
            let g = dy.scalars
            var dx = TensorMath.zeros(x.shape)
            dx.withUnsafeMutableBufferPointer { d in
                for row in 0..<n {
                    switch reduction {
                    case .none: d[row * c + targets[row]] = -g[row]
                    case .sum: d[row * c + targets[row]] = -g[0]
                    case .mean: d[row * c + targets[row]] = -g[0] / Float(n)
                    }
                }
            }
            return [dx]
        }
    }

    /// Mean squared error `(input - target)^2`, reduced. PyTorch: `F.mse_loss(input, target, reduction=...)`.
    /// - Throws: `QuantizationError.invalidOperand` for quantized payloads or different shapes.
    public static func mseLoss(_ input: Variable, target: Variable, reduction: LossReduction = .mean) throws
        -> Variable
    {
        let a = try input.floatTensor(for: "mse_loss"), b = try target.floatTensor(for: "mse_loss")
        guard a.shape == b.shape else {
            throw QuantizationError.invalidOperand(
                operation: "mse_loss", reason: "input shape \(a.shape) and target shape \(b.shape) differ")
        }
        let difference = try input - target
        let squared = try difference * difference
        switch reduction {
        case .none: return squared
        case .sum: return try sum(squared)
        case .mean: return try mean(squared)
        }
    }
}
