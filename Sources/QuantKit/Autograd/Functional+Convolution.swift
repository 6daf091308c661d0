extension Functional {
    /// 2-D convolution (cross-correlation, as PyTorch) of an NCHW batch:
    /// `y[n][o][oy][ox] = bias[o] + sum_{c, ky, kx} x[n][g * Cg + c][iy][ix] * w[o][c][ky][kx]` with `g = o / Og`,
    /// `iy = oy * stride.height - padding.height + ky * dilation.height` (columns likewise) and zeros outside.
    ///
    /// `input [N, C, H, W]`, `weight [O, C / groups, kh, kw]`, `bias [O]`, output `[N, O, outH, outW]` with
    /// `outH = (H + 2 * padding.height - dilation.height * (kh - 1) - 1) / stride.height + 1`. Dense and grouped
    /// convolutions run as im2col + CBLAS `sgemm` (the forward pass and both gradients); depthwise ones
    /// (`groups == C`, one input channel per group) as direct loops.
    ///
    /// PyTorch: `F.conv2d(input, weight, bias, stride, padding, dilation, groups)`.
    /// - Throws: `QuantizationError.invalidOperand` for quantized payloads, shapes that do not fit, or an invalid
    ///   geometry (stride or dilation below 1, negative padding, a kernel larger than the padded input).
    public static func conv2d(
        _ input: Variable, weight: Variable, bias: Variable? = nil, stride: Size2d = 1, padding: Size2d = 0,
        dilation: Size2d = 1, groups: Int = 1
    ) throws -> Variable {
        let operation = "conv2d"
        func fail(_ reason: String) -> QuantizationError { .invalidOperand(operation: operation, reason: reason) }
        let x = try input.floatTensor(for: operation)
        let w = try weight.floatTensor(for: operation + " (weight)")
        let b = try bias.map { try $0.floatTensor(for: operation + " (bias)") }
        guard x.rank == 4 else { throw fail("the input must be 4-D [N, C, H, W], got shape \(x.shape)") }
        guard w.rank == 4 else { throw fail("the weight must be 4-D [O, C / groups, kh, kw], got shape \(w.shape)") }
        guard groups >= 1 else { throw fail("groups must be at least 1, got \(groups)") }
        let (channels, outChannels) = (x.shape[1], w.shape[0])
        guard channels % groups == 0, outChannels % groups == 0 else {
            throw fail("in_channels \(channels) and out_channels \(outChannels) must both be divisible by groups "
                       + "\(groups)")
        }
        guard w.shape[1] == channels / groups else {
            throw fail("expected weight of shape [\(outChannels), \(channels / groups), kh, kw] for input with "
                       + "\(channels) channels and groups=\(groups), got weight of shape \(w.shape)")
        }
        guard w.shape[2] >= 1, w.shape[3] >= 1 else { throw fail("the kernel size must be at least 1x1") }
        if let b, b.shape != [outChannels] {
            throw fail("the bias must have shape [\(outChannels)], got \(b.shape)")
        }
        let geometry = try Conv2dGeometry(
            operation: operation, batch: x.shape[0], inHeight: x.shape[2], inWidth: x.shape[3],
            kernel: Size2d(height: w.shape[2], width: w.shape[3]), stride: stride, padding: padding,
            dilation: dilation)
        let plan = ConvolutionPlan(geometry, channels: channels, outChannels: outChannels, groups: groups)

        let y = plan.forward(x, w, b)
        let inputs = bias.map { [input, weight, $0] } ?? [input, weight]
        return Autograd.record("ConvolutionBackward", output: y, inputs: inputs) { dy in
            let (dx, dw) = plan.backward(dy, x, w, inputGradient: input.requiresGrad,
                                         weightGradient: weight.requiresGrad)
            var result = [dx, dw]
            if let bias { result.append(bias.requiresGrad ? plan.biasGradient(dy) : nil) }
            return result
        }
    }
}

/// The sizes of one convolution and its loops: im2col + sgemm for dense and grouped convolutions, direct loops for
/// depthwise ones.
struct ConvolutionPlan {
    let n, c, h, w: Int
    let o, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow: Int
    let groups: Int

    var cg: Int { c / groups }            // input channels per group
    var og: Int { o / groups }            // output channels per group
    var k: Int { cg * kh * kw }           // rows of the im2col matrix
    var l: Int { oh * ow }                // output pixels per image
    var isDepthwise: Bool { cg == 1 && groups == c && groups > 1 }

    init(_ g: Conv2dGeometry, channels: Int, outChannels: Int, groups: Int) {
        n = g.batch; c = channels; h = g.inHeight; w = g.inWidth
        o = outChannels; kh = g.kernel.height; kw = g.kernel.width
        sh = g.stride.height; sw = g.stride.width; ph = g.padding.height; pw = g.padding.width
        dh = g.dilation.height; dw = g.dilation.width; oh = g.outHeight; ow = g.outWidth
        self.groups = groups
    }

    var outputShape: [Int] { [n, o, oh, ow] }

    /// Images per im2col chunk: enough to make large GEMMs, few enough to bound the scratch memory (~16 MB).
    var chunk: Int { max(1, min(n, (1 << 22) / max(1, k * l))) }

    /// The output columns `[lo, hi)` whose input column `ox * sw + offset` lies inside `[0, w)`.
    @inline(__always)
    func validColumns(offset: Int) -> (Int, Int) {
        let lo = offset >= 0 ? 0 : (-offset + sw - 1) / sw
        let last = w - 1 - offset
        let hi = last < 0 ? 0 : min(ow, last / sw + 1)
        return (min(lo, hi), hi)
    }

    // MARK: im2col

    /// Writes the im2col matrix `[k, images * l]` of group `group` for images `first..<first + images` (in parallel
    /// over the images, whose columns are disjoint).
    func im2col(_ x: UnsafePointer<Float>, first: Int, images: Int, group: Int, into col: UnsafeMutablePointer<Float>) {
        let width = images * l
        Parallel.forEach(images, workPerItem: k * l) { imageRange in
            for ci in 0..<cg {
                let channel = group * cg + ci
                for ky in 0..<kh {
                    for kx in 0..<kw {
                        let row = col + ((ci * kh + ky) * kw + kx) * width
                        let xOffset = kx * dw - pw
                        let (lo, hi) = validColumns(offset: xOffset)
                        for image in imageRange {
                            let plane = x + ((first + image) * c + channel) * h * w
                            let out = row + image * l
                            for oy in 0..<oh {
                                let iy = oy * sh - ph + ky * dh
                                let d = out + oy * ow
                                guard iy >= 0, iy < h else {
                                    d.initialize(repeating: 0, count: ow)
                                    continue
                                }
                                let source = plane + iy * w + xOffset
                                if lo > 0 { d.initialize(repeating: 0, count: lo) }
                                if sw == 1 {
                                    (d + lo).initialize(from: source + lo, count: hi - lo)
                                } else {
                                    for ox in lo..<hi { d[ox] = source[ox * sw] }
                                }
                                if hi < ow { (d + hi).initialize(repeating: 0, count: ow - hi) }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Adds the im2col-shaped gradient `dcol [k, images * l]` of group `group` back into `dx` (the adjoint of
    /// `im2col`; in parallel over the images, whose input planes are disjoint).
    func col2im(_ dcol: UnsafePointer<Float>, first: Int, images: Int, group: Int, into dx: UnsafeMutablePointer<Float>) {
        let width = images * l
        Parallel.forEach(images, workPerItem: k * l) { imageRange in
            for ci in 0..<cg {
                let channel = group * cg + ci
                for ky in 0..<kh {
                    for kx in 0..<kw {
                        let row = dcol + ((ci * kh + ky) * kw + kx) * width
                        let xOffset = kx * dw - pw
                        let (lo, hi) = validColumns(offset: xOffset)
                        guard lo < hi else { continue }
                        for image in imageRange {
                            let plane = dx + ((first + image) * c + channel) * h * w
                            let source = row + image * l
                            for oy in 0..<oh {
                                let iy = oy * sh - ph + ky * dh
                                guard iy >= 0, iy < h else { continue }
                                let target = plane + iy * w + xOffset
                                let s = source + oy * ow
                                if sw == 1 {
                                    for ox in lo..<hi { target[ox] += s[ox] }
                                } else {
                                    for ox in lo..<hi { target[ox * sw] += s[ox] }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    // MARK: Forward

    func forward(_ x: Tensor<Float>, _ weight: Tensor<Float>, _ bias: Tensor<Float>?) -> Tensor<Float> {
        x.withUnsafeBufferPointer { px in
            weight.withUnsafeBufferPointer { pw in
                withBufferIfPresent(bias) { pb in
                    TensorMath.make(outputShape) { py, count in
                        guard count > 0 else { return }
                        if isDepthwise {
                            depthwiseForward(px.baseAddress!, pw.baseAddress!, pb, py)
                        } else {
                            gemmForward(px.baseAddress!, pw.baseAddress!, pb, py)
                        }
                    }
                }
            }
        }
    }

    private func gemmForward(_ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                             _ y: UnsafeMutablePointer<Float>) {
        let chunk = self.chunk
        let col = UnsafeMutablePointer<Float>.allocate(capacity: k * chunk * l)
        let product = UnsafeMutablePointer<Float>.allocate(capacity: o * chunk * l)
        defer { col.deallocate(); product.deallocate() }
        var first = 0
        while first < n {
            let images = min(chunk, n - first)
            let width = images * l
            for group in 0..<groups {
                if kh == 1, kw == 1, sh == 1, sw == 1, ph == 0, pw == 0, images == 1 {
                    // A 1x1 convolution of one image reads the input as its own im2col matrix.
                    BLAS.sgemm(.none, .none, m: og, n: l, k: k, a: weight + group * og * k, lda: k,
                               b: x + (first * c + group * cg) * h * w, ldb: l, c: product + group * og * width,
                               ldc: width)
                    continue
                }
                im2col(x, first: first, images: images, group: group, into: col)
                BLAS.sgemm(.none, .none, m: og, n: width, k: k, a: weight + group * og * k, lda: k, b: col,
                           ldb: width, c: product + group * og * width, ldc: width)
            }
            // product [o, images, l] -> y [images, o, l] (+ bias).
            Parallel.forEach(images, workPerItem: o * l) { imageRange in
                for image in imageRange {
                    for channel in 0..<o {
                        let source = product + channel * width + image * l
                        let target = y + ((first + image) * o + channel) * l
                        if let bias {
                            let b = bias[channel]
                            for i in 0..<l { target[i] = source[i] + b }
                        } else {
                            target.update(from: source, count: l)
                        }
                    }
                }
            }
            first += images
        }
    }

    private func depthwiseForward(_ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>,
                                  _ bias: UnsafePointer<Float>?, _ y: UnsafeMutablePointer<Float>) {
        let multiplier = og
        Parallel.forEach(n, workPerItem: o * l * kh * kw) { imageRange in
            for image in imageRange {
                for channel in 0..<o {
                    let plane = x + (image * c + channel / multiplier) * h * w
                    let out = y + (image * o + channel) * l
                    out.initialize(repeating: bias?[channel] ?? 0, count: l)
                    for ky in 0..<kh {
                        for kx in 0..<kw {
                            let tap = weight[(channel * kh + ky) * kw + kx]
                            let xOffset = kx * dw - pw
                            let (lo, hi) = validColumns(offset: xOffset)
                            guard lo < hi else { continue }
                            for oy in 0..<oh {
                                let iy = oy * sh - ph + ky * dh
                                guard iy >= 0, iy < h else { continue }
                                let source = plane + iy * w + xOffset
                                let d = out + oy * ow
                                if sw == 1 {
                                    for ox in lo..<hi { d[ox] += tap * source[ox] }
                                } else {
                                    for ox in lo..<hi { d[ox] += tap * source[ox * sw] }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    // MARK: Backward

    func biasGradient(_ dy: Tensor<Float>) -> Tensor<Float> {
        dy.withUnsafeBufferPointer { g in
            TensorMath.make([o]) { db, _ in
                Parallel.forEach(o, workPerItem: n * l) { channels in
                    for channel in channels {
                        var total: Float = 0
                        for image in 0..<n { total += Reduction.sum(g.baseAddress! + (image * o + channel) * l, l) }
                        db[channel] = total
                    }
                }
            }
        }
    }

    func backward(_ dy: Tensor<Float>, _ x: Tensor<Float>, _ weight: Tensor<Float>, inputGradient: Bool,
                  weightGradient: Bool) -> (Tensor<Float>?, Tensor<Float>?) {
        var dx = inputGradient ? TensorMath.zeros(x.shape) : nil
        var dwt = weightGradient ? TensorMath.zeros(weight.shape) : nil
        guard n > 0, l > 0, inputGradient || weightGradient else { return (dx, dwt) }
        dy.withUnsafeBufferPointer { pdy in
            x.withUnsafeBufferPointer { px in
                weight.withUnsafeBufferPointer { pw in
                    withOptionalMutableBuffer(&dx) { pdx in
                        withOptionalMutableBuffer(&dwt) { pdw in
                            if isDepthwise {
                                depthwiseBackward(pdy.baseAddress!, px.baseAddress!, pw.baseAddress!, pdx, pdw)
                            } else {
                                gemmBackward(pdy.baseAddress!, px.baseAddress!, pw.baseAddress!, pdx, pdw)
                            }
                        }
                    }
                }
            }
        }
        return (dx, dwt)
    }

    private func gemmBackward(_ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>,
                              _ dx: UnsafeMutablePointer<Float>?, _ dweight: UnsafeMutablePointer<Float>?) {
        let chunk = self.chunk
        let col = UnsafeMutablePointer<Float>.allocate(capacity: k * chunk * l)
        let dyT = UnsafeMutablePointer<Float>.allocate(capacity: o * chunk * l)
        defer { col.deallocate(); dyT.deallocate() }
        var first = 0
        while first < n {
            let images = min(chunk, n - first)
            let width = images * l
            // dy [images, o, l] -> dyT [o, images * l], the layout of the forward GEMM's output.
            Parallel.forEach(images, workPerItem: o * l) { imageRange in
                for image in imageRange {
                    for channel in 0..<o {
                        (dyT + channel * width + image * l).update(from: dy + ((first + image) * o + channel) * l,
                                                                   count: l)
                    }
                }
            }
            for group in 0..<groups {
                let dyGroup = dyT + group * og * width
                let wGroup = weight + group * og * k
                if let dweight {
                    im2col(x, first: first, images: images, group: group, into: col)
                    // dW_g [og, k] += dy_g [og, width] * col^T
                    BLAS.sgemm(.none, .transposed, m: og, n: k, k: width, a: dyGroup, lda: width, b: col,
                               ldb: width, beta: first == 0 ? 0 : 1, c: dweight + group * og * k, ldc: k)
                }
                if let dx {
                    // dcol [k, width] = W_g^T * dy_g, then scattered back into dx.
                    BLAS.sgemm(.transposed, .none, m: k, n: width, k: og, a: wGroup, lda: k, b: dyGroup, ldb: width,
                               c: col, ldc: width)
                    col2im(col, first: first, images: images, group: group, into: dx)
                }
            }
            first += images
        }
    }

    private func depthwiseBackward(_ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                                   _ weight: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>?,
                                   _ dweight: UnsafeMutablePointer<Float>?) {
        let multiplier = og
        for image in 0..<n {
            for channel in 0..<o {
                let inputOffset = (image * c + channel / multiplier) * h * w
                let g = dy + (image * o + channel) * l
                for ky in 0..<kh {
                    for kx in 0..<kw {
                        let tapIndex = (channel * kh + ky) * kw + kx
                        let tap = weight[tapIndex]
                        let xOffset = kx * dw - pw
                        let (lo, hi) = validColumns(offset: xOffset)
                        guard lo < hi else { continue }
                        var tapGradient: Float = 0
                        for oy in 0..<oh {
                            let iy = oy * sh - ph + ky * dh
                            guard iy >= 0, iy < h else { continue }
                            let rowOffset = inputOffset + iy * w + xOffset
                            let gRow = g + oy * ow
                            if dweight != nil {
                                let source = x + rowOffset
                                if sw == 1 {
                                    tapGradient += Reduction.dot(gRow + lo, source + lo, hi - lo)
                                } else {
                                    for ox in lo..<hi { tapGradient += gRow[ox] * source[ox * sw] }
                                }
                            }
                            if let dx {
                                let target = dx + rowOffset
                                for ox in lo..<hi { target[ox * sw] += tap * gRow[ox] }
                            }
                        }
                        dweight?[tapIndex] += tapGradient
                    }
                }
            }
        }
    }
}

/// Calls `body` with a mutable pointer to the tensor's elements, or nil without a tensor.
func withOptionalMutableBuffer<R>(_ tensor: inout Tensor<Float>?, _ body: (UnsafeMutablePointer<Float>?) throws -> R)
    rethrows -> R
{
    guard var t = tensor else { return try body(nil) }
    tensor = nil   // keep `t` unique so the write needs no copy
    defer { tensor = t }
    return try t.withUnsafeMutableBufferPointer { try body($0.baseAddress) }
}

/// Calls `body` with the tensor's base address, or nil without a tensor.
func withBufferIfPresent<R>(_ tensor: Tensor<Float>?, _ body: (UnsafePointer<Float>?) throws -> R) rethrows -> R {
    guard let tensor else { return try body(nil) }
    return try tensor.withUnsafeBufferPointer { try body($0.baseAddress) }
}
