extension Functional {
    /// Batch normalization over dimension 1 of `input [N, C, *]` (`[N, C]`, `[N, C, L]` or `[N, C, H, W]`):
    /// `y = (x - mean) / sqrt(var + eps) * weight + bias` per channel.
    ///
    /// With `training`, `mean` and `var` are the batch's (biased variance) and the running statistics, when given,
    /// move towards them: `running = (1 - momentum) * running + momentum * batch`, with the unbiased variance
    /// `var * M / (M - 1)` for `runningVar` (`M = N * prod(*)`). Without `training`, the running statistics
    /// normalize (they are then required). `weight` / `bias` nil means 1 / 0 (`affine=False`).
    ///
    /// PyTorch: `F.batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)`.
    /// - Throws: `QuantizationError.invalidOperand` for a quantized payload, a rank below 2, parameters or
    ///   statistics that are not `[C]`, missing running statistics in evaluation, or a single value per channel in
    ///   training (PyTorch: "Expected more than 1 value per channel when training").
    public static func batchNorm(
        _ input: Variable, runningMean: inout Tensor<Float>?, runningVar: inout Tensor<Float>?,
        weight: Variable? = nil, bias: Variable? = nil, training: Bool, momentum: Float = 0.1, eps: Float = 1e-5
    ) throws -> Variable {
        let operation = "batch_norm"
        func fail(_ reason: String) -> QuantizationError { .invalidOperand(operation: operation, reason: reason) }
        let x = try input.floatTensor(for: operation)
        guard x.rank >= 2 else { throw fail("the input must be at least 2-D [N, C, *], got shape \(x.shape)") }
        let (n, c) = (x.shape[0], x.shape[1])
        let inner = x.shape.dropFirst(2).reduce(1, *)
        let m = n * inner
        let gamma = try weight.map { try $0.floatTensor(for: operation + " (weight)") }
        let beta = try bias.map { try $0.floatTensor(for: operation + " (bias)") }
        for (name, t) in [("weight", gamma), ("bias", beta), ("running_mean", runningMean), ("running_var", runningVar)] {
            if let t, t.shape != [c] {
                throw fail("\(name) must have shape [\(c)] (the input's channels, shape \(x.shape)), got \(t.shape)")
            }
        }

        var mean = [Float](repeating: 0, count: c)
        var invstd = [Float](repeating: 0, count: c)
        if training {
            guard m > 1 else {
                throw fail("Expected more than 1 value per channel when training, got input size \(x.shape)")
            }
            var unbiased = [Float](repeating: 0, count: c)
            x.withUnsafeBufferPointer { px in
                mean.withUnsafeMutableBufferPointer { meanOut in
                    invstd.withUnsafeMutableBufferPointer { invstdOut in
                        unbiased.withUnsafeMutableBufferPointer { unbiasedOut in
                            // Two passes (mean, then squared deviations): float sums per plane, double across
                            // planes; channels in parallel.
                            Parallel.forEach(c, workPerItem: 2 * m) { channels in
                                for channel in channels {
                                    var sum = 0.0
                                    for image in 0..<n {
                                        sum += Double(Reduction.sum(px.baseAddress! + (image * c + channel) * inner,
                                                                    inner))
                                    }
                                    let mu = Float(sum / Double(m))
                                    var squares = 0.0
                                    for image in 0..<n {
                                        squares += Double(Reduction.squaredDeviations(
                                            px.baseAddress! + (image * c + channel) * inner, inner, mean: mu))
                                    }
                                    meanOut[channel] = mu
                                    invstdOut[channel] = Float(1 / (squares / Double(m) + Double(eps)).squareRoot())
                                    unbiasedOut[channel] = Float(squares / Double(m - 1))
                                }
                            }
                        }
                    }
                }
            }
            if var rm = runningMean {
                runningMean = nil
                rm.withUnsafeMutableBufferPointer { r in
                    for i in 0..<c { r[i] = (1 - momentum) * r[i] + momentum * mean[i] }
                }
                runningMean = rm
            }
            if var rv = runningVar {
                runningVar = nil
                rv.withUnsafeMutableBufferPointer { r in
                    for i in 0..<c { r[i] = (1 - momentum) * r[i] + momentum * unbiased[i] }
                }
                runningVar = rv
            }
        } else {
            guard let rm = runningMean, let rv = runningVar else {
                throw fail("running_mean and running_var are required in evaluation (training: false)")
            }
            mean = rm.scalars
            invstd = rv.scalars.map { 1 / ($0 + eps).squareRoot() }
        }

        let gammaValues = gamma?.scalars ?? [Float](repeating: 1, count: c)
        let betaValues = beta?.scalars ?? [Float](repeating: 0, count: c)
        let y = x.withUnsafeBufferPointer { px in
            TensorMath.make(x.shape) { py, _ in
                Parallel.forEach(c, workPerItem: m) { channels in
                    for channel in channels {
                        let scale = invstd[channel] * gammaValues[channel]
                        let shift = betaValues[channel] - mean[channel] * scale
                        for image in 0..<n {
                            let offset = (image * c + channel) * inner
                            for i in 0..<inner { py[offset + i] = px[offset + i] * scale + shift }
                        }
                    }
                }
            }
        }

        var inputs = [input]
        if let weight { inputs.append(weight) }
        if let bias { inputs.append(bias) }
        return Autograd.record("BatchNormBackward", output: y, inputs: inputs) { dy in
            var sumDy = [Float](repeating: 0, count: c)
            var sumDyXhat = [Float](repeating: 0, count: c)
            dy.withUnsafeBufferPointer { g in
                x.withUnsafeBufferPointer { px in
                    sumDy.withUnsafeMutableBufferPointer { sumDyOut in
                        sumDyXhat.withUnsafeMutableBufferPointer { sumDyXhatOut in
                            Parallel.forEach(c, workPerItem: 2 * m) { channels in
                                for channel in channels {
                                    var s = 0.0, sx = 0.0
                                    let mu = mean[channel]
                                    for image in 0..<n {
                                        let offset = (image * c + channel) * inner
                                        let (ps, psx) = Reduction.sumAndDeviationProduct(
                                            g.baseAddress! + offset, px.baseAddress! + offset, inner, mean: mu)
                                        s += Double(ps)
                                        sx += Double(psx)
                                    }
                                    sumDyOut[channel] = Float(s)
                                    sumDyXhatOut[channel] = Float(sx) * invstd[channel]
                                }
                            }
                        }
                    }
                }
            }
            var dx: Tensor<Float>? = nil
            if input.requiresGrad {
                dx = dy.withUnsafeBufferPointer { g in
                    x.withUnsafeBufferPointer { px in
                        TensorMath.make(x.shape) { pdx, _ in
                            Parallel.forEach(c, workPerItem: m) { channels in
                                for channel in channels {
                                    let k = gammaValues[channel] * invstd[channel]
                                    if training {
                                        // dx = k * (g - mean(g) - xhat * mean(g * xhat)), xhat = (x - mu) * invstd.
                                        let meanDy = sumDy[channel] / Float(m)
                                        let slope = sumDyXhat[channel] / Float(m) * invstd[channel]
                                        let mu = mean[channel]
                                        for image in 0..<n {
                                            let offset = (image * c + channel) * inner
                                            let gPlane = g.baseAddress! + offset, xPlane = px.baseAddress! + offset
                                            let dPlane = pdx + offset
                                            for i in 0..<inner {
                                                dPlane[i] = k * (gPlane[i] - meanDy - (xPlane[i] - mu) * slope)
                                            }
                                        }
                                    } else {
                                        for image in 0..<n {
                                            let offset = (image * c + channel) * inner
                                            for i in 0..<inner { pdx[offset + i] = k * g[offset + i] }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            var result: [Tensor<Float>?] = [dx]
            if let weight { result.append(weight.requiresGrad ? Tensor(sumDyXhat) : nil) }
            if let bias { result.append(bias.requiresGrad ? Tensor(sumDy) : nil) }
            return result
        }
    }
}
