/// The window geometry of a 2-D pooling, PyTorch's `pooling_output_shape` and `pool2d_shape_check`.
struct PoolingPlan {
    let planes, ih, iw, oh, ow: Int
    let kh, kw, sh, sw, ph, pw, dh, dw: Int

    init(operation: String, shape: [Int], kernel: Size2d, stride: Size2d, padding: Size2d, dilation: Size2d,
         ceilMode: Bool) throws(QuantizationError) {
        func fail(_ reason: String) -> QuantizationError { .invalidOperand(operation: operation, reason: reason) }
        guard shape.count == 3 || shape.count == 4 else {
            throw fail("the input must be 3-D [C, H, W] or 4-D [N, C, H, W], got shape \(shape)")
        }
        guard kernel.height > 0, kernel.width > 0 else {
            throw fail("kernel_size must be greater than zero, got \(kernel)")
        }
        guard stride.height > 0, stride.width > 0 else { throw fail("stride must be greater than zero, got \(stride)") }
        guard dilation.height > 0, dilation.width > 0 else {
            throw fail("dilation must be greater than zero, got \(dilation)")
        }
        guard padding.height >= 0, padding.width >= 0, padding.height <= kernel.height / 2,
              padding.width <= kernel.width / 2 else {
            throw fail("pad should be at most half of effective kernel size, but got pad=\(padding), "
                       + "kernel_size=\(kernel)")
        }
        ih = shape[shape.count - 2]
        iw = shape[shape.count - 1]
        planes = shape.dropLast(2).reduce(1, *)
        kh = kernel.height; kw = kernel.width; sh = stride.height; sw = stride.width
        ph = padding.height; pw = padding.width; dh = dilation.height; dw = dilation.width
        func outputSize(_ input: Int, _ k: Int, _ p: Int, _ s: Int, _ d: Int) -> Int {
            let numerator = input + 2 * p - d * (k - 1) - 1 + (ceilMode ? s - 1 : 0)
            // Division rounding towards negative infinity (div_rtn).
            var size = (numerator >= 0 ? numerator / s : -((-numerator + s - 1) / s)) + 1
            if ceilMode, (size - 1) * s >= input + p { size -= 1 }
            return size
        }
        oh = outputSize(ih, kh, ph, sh, dh)
        ow = outputSize(iw, kw, pw, sw, dw)
        guard oh >= 1, ow >= 1, ih >= 1, iw >= 1 else {
            throw fail("Given input size: (\(shape.dropLast(2).last ?? 1)x\(ih)x\(iw)). Calculated output size: "
                       + "(\(shape.dropLast(2).last ?? 1)x\(oh)x\(ow)). Output size is too small")
        }
    }

    func outputShape(_ input: [Int]) -> [Int] { Array(input.dropLast(2)) + [oh, ow] }

    /// The input rows (or columns) `[first, end)` of a max-pooling window starting at `start` (possibly in the
    /// padding), first moved onto the input by whole dilation steps, as PyTorch's kernel.
    @inline(__always)
    func window(_ output: Int, start: Int, kernel: Int, dilation: Int, size: Int) -> (Int, Int) {
        let end = min(start + (kernel - 1) * dilation + 1, size)
        var first = start
        if first < 0 { first += ((-first + dilation - 1) / dilation) * dilation }
        return (first, max(first, end))
    }
}

extension Functional {
    /// 2-D max pooling over the last two dimensions of `[N, C, H, W]` (or `[C, H, W]`). Padding counts as
    /// `-infinity`. Of equal maxima the first in row-major window order wins, and NaN propagates, as in PyTorch;
    /// the gradient goes to the winning element only.
    ///
    /// PyTorch: `F.max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode)`; `stride` nil means the
    /// kernel size.
    /// - Throws: `QuantizationError.invalidOperand` for a quantized payload, a rank other than 3 or 4, or an invalid
    ///   geometry (PyTorch's messages).
    public static func maxPool2d(
        _ input: Variable, kernelSize: Size2d, stride: Size2d? = nil, padding: Size2d = 0, dilation: Size2d = 1,
        ceilMode: Bool = false
    ) throws -> Variable {
        let operation = "max_pool2d"
        let x = try input.floatTensor(for: operation)
        let plan = try PoolingPlan(operation: operation, shape: x.shape, kernel: kernelSize,
                                   stride: stride ?? kernelSize, padding: padding, dilation: dilation,
                                   ceilMode: ceilMode)
        let record = Autograd.needsRecording(input)
        var indices = record ? [Int32](repeating: 0, count: plan.planes * plan.oh * plan.ow) : []
        let y = x.withUnsafeBufferPointer { px in
            TensorMath.make(plan.outputShape(x.shape)) { py, _ in
                indices.withUnsafeMutableBufferPointer { idx in
                    maxPoolPlanes(plan, px.baseAddress!, py, record ? idx.baseAddress : nil)
                }
            }
        }
        guard record else { return Variable(y) }
        return Autograd.record("MaxPool2DWithIndicesBackward", output: y, inputs: [input]) { dy in
            var dx = TensorMath.zeros(x.shape)
            dy.withUnsafeBufferPointer { g in
                dx.withUnsafeMutableBufferPointer { d in
                    let inPlane = plan.ih * plan.iw, outPlane = plan.oh * plan.ow
                    indices.withUnsafeBufferPointer { idx in
                        Parallel.forEach(plan.planes, workPerItem: outPlane) { planes in
                            for plane in planes {
                                let target = d.baseAddress! + plane * inPlane
                                for i in 0..<outPlane {
                                    target[Int(idx[plane * outPlane + i])] += g[plane * outPlane + i]
                                }
                            }
                        }
                    }
                }
            }
            return [dx]
        }
    }

    /// Max pooling of every plane; writes the arg-max (index within the plane) when `indices` is given. Of equal
    /// maxima the first wins; NaN wins and propagates (PyTorch's `val > maxval || isnan(val)`).
    static func maxPoolPlanes(_ plan: PoolingPlan, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                              _ indices: UnsafeMutablePointer<Int32>?) {
        let inPlane = plan.ih * plan.iw, outPlane = plan.oh * plan.ow
        if plan.kh == 2, plan.kw == 2, plan.sh == 2, plan.sw == 2, plan.ph == 0, plan.pw == 0, plan.dh == 1,
           plan.dw == 1, 2 * plan.oh <= plan.ih, 2 * plan.ow <= plan.iw {
            // The common 2x2 / stride 2 window, unrolled: the same comparisons in the same order.
            Parallel.forEach(plan.planes, workPerItem: inPlane) { planes in
                for plane in planes {
                    for oy in 0..<plan.oh {
                        let r0 = x + plane * inPlane + 2 * oy * plan.iw, r1 = r0 + plan.iw
                        let o = plane * outPlane + oy * plan.ow
                        let rowIndex = 2 * oy * plan.iw
                        var ox = 0
                        // Eight outputs at a time, branch-free (random data would mispredict every comparison).
                        while ox + 8 <= plan.ow {
                            let top = UnsafeRawPointer(r0 + 2 * ox).loadUnaligned(as: SIMD16<Float>.self)
                            let bottom = UnsafeRawPointer(r1 + 2 * ox).loadUnaligned(as: SIMD16<Float>.self)
                            var best = top.evenHalf
                            var choice = SIMD8<Int32>(repeating: 0)
                            let b = top.oddHalf, c = bottom.evenHalf, d = bottom.oddHalf
                            var wins = (b .> best) .| (b .!= b)
                            best.replace(with: b, where: wins)
                            choice.replace(with: 1, where: wins)
                            wins = (c .> best) .| (c .!= c)
                            best.replace(with: c, where: wins)
                            choice.replace(with: 2, where: wins)
                            wins = (d .> best) .| (d .!= d)
                            best.replace(with: d, where: wins)
                            choice.replace(with: 3, where: wins)
                            UnsafeMutableRawPointer(y + o + ox).storeBytes(of: best, as: SIMD8<Float>.self)
                            if let indices {
                                let lanes = SIMD8<Int32>(0, 2, 4, 6, 8, 10, 12, 14)
                                let base = SIMD8<Int32>(repeating: Int32(truncatingIfNeeded: rowIndex + 2 * ox)) &+ lanes
                                let index = base &+ (choice & 1) &+ (choice &>> 1) &* Int32(truncatingIfNeeded: plan.iw)
                                UnsafeMutableRawPointer(indices + o + ox).storeBytes(of: index, as: SIMD8<Int32>.self)
                            }
                            ox += 8
                        }
                        while ox < plan.ow {
                            var best = r0[2 * ox], index = rowIndex + 2 * ox
                            let b = r0[2 * ox + 1], c = r1[2 * ox], d = r1[2 * ox + 1]
                            if b > best || b != b { best = b; index = rowIndex + 2 * ox + 1 }
                            if c > best || c != c { best = c; index = rowIndex + plan.iw + 2 * ox }
                            if d > best || d != d { best = d; index = rowIndex + plan.iw + 2 * ox + 1 }
                            y[o + ox] = best
                            indices?[o + ox] = Int32(truncatingIfNeeded: index)
                            ox += 1
                        }
                    }
                }
            }
            return
        }
        Parallel.forEach(plan.planes, workPerItem: inPlane) { planes in
            for plane in planes {
                let source = x + plane * inPlane
                for oy in 0..<plan.oh {
                    let (hStart, hEnd) = plan.window(oy, start: plan.sh * oy - plan.ph, kernel: plan.kh,
                                                     dilation: plan.dh, size: plan.ih)
                    for ox in 0..<plan.ow {
                        let (wStart, wEnd) = plan.window(ox, start: plan.sw * ox - plan.pw, kernel: plan.kw,
                                                         dilation: plan.dw, size: plan.iw)
                        var best = -Float.infinity
                        var bestIndex = hStart * plan.iw + wStart
                        for iy in stride(from: hStart, to: hEnd, by: plan.dh) {
                            let row = iy * plan.iw
                            for ix in stride(from: wStart, to: wEnd, by: plan.dw) {
                                let v = source[row + ix]
                                if v > best || v != v {
                                    best = v
                                    bestIndex = row + ix
                                }
                            }
                        }
                        let o = plane * outPlane + oy * plan.ow + ox
                        y[o] = best
                        indices?[o] = Int32(truncatingIfNeeded: bestIndex)
                    }
                }
            }
        }
    }

    /// 2-D average pooling over the last two dimensions of `[N, C, H, W]` (or `[C, H, W]`): each output is the sum
    /// of its window divided by the window size including padding (`countIncludePad`, PyTorch's default) or by the
    /// number of input elements in it, or by `divisorOverride`; windows that `ceilMode` lets run past the padding
    /// are cut there, as in PyTorch. The gradient spreads each output's gradient evenly over its window.
    ///
    /// PyTorch: `F.avg_pool2d(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)`.
    /// - Throws: `QuantizationError.invalidOperand` for a quantized payload, a rank other than 3 or 4, an invalid
    ///   geometry, or a `divisorOverride` of 0.
    public static func avgPool2d(
        _ input: Variable, kernelSize: Size2d, stride: Size2d? = nil, padding: Size2d = 0, ceilMode: Bool = false,
        countIncludePad: Bool = true, divisorOverride: Int? = nil
    ) throws -> Variable {
        let operation = "avg_pool2d"
        let x = try input.floatTensor(for: operation)
        if let divisorOverride, divisorOverride == 0 {
            throw QuantizationError.invalidOperand(operation: operation, reason: "divisor must be not zero")
        }
        let plan = try PoolingPlan(operation: operation, shape: x.shape, kernel: kernelSize,
                                   stride: stride ?? kernelSize, padding: padding, dilation: 1, ceilMode: ceilMode)
        // Each output's clamped window and divisor.
        struct Window { var h0, h1, w0, w1: Int; var scale: Float }
        var windows: [Window] = []
        windows.reserveCapacity(plan.oh * plan.ow)
        for oy in 0..<plan.oh {
            for ox in 0..<plan.ow {
                var h0 = oy * plan.sh - plan.ph, w0 = ox * plan.sw - plan.pw
                var h1 = min(h0 + plan.kh, plan.ih + plan.ph), w1 = min(w0 + plan.kw, plan.iw + plan.pw)
                let poolSize = (h1 - h0) * (w1 - w0)
                h0 = max(h0, 0); w0 = max(w0, 0); h1 = min(h1, plan.ih); w1 = min(w1, plan.iw)
                let divisor = divisorOverride ?? (countIncludePad ? poolSize : (h1 - h0) * (w1 - w0))
                let empty = h0 >= h1 || w0 >= w1
                windows.append(Window(h0: h0, h1: h1, w0: w0, w1: w1, scale: empty ? 0 : 1 / Float(divisor)))
            }
        }
        let inPlane = plan.ih * plan.iw, outPlane = plan.oh * plan.ow
        let y = x.withUnsafeBufferPointer { px in
            TensorMath.make(plan.outputShape(x.shape)) { py, _ in
                for plane in 0..<plan.planes {
                    let source = px.baseAddress! + plane * inPlane
                    for (i, window) in windows.enumerated() {
                        var sum: Float = 0
                        for iy in window.h0..<max(window.h0, window.h1) {
                            for ix in window.w0..<max(window.w0, window.w1) { sum += source[iy * plan.iw + ix] }
                        }
                        py[plane * outPlane + i] = sum * window.scale
                    }
                }
            }
        }
        return Autograd.record("AvgPool2DBackward", output: y, inputs: [input]) { dy in
            var dx = TensorMath.zeros(x.shape)
            dy.withUnsafeBufferPointer { g in
                dx.withUnsafeMutableBufferPointer { d in
                    for plane in 0..<plan.planes {
                        let target = d.baseAddress! + plane * inPlane
                        for (i, window) in windows.enumerated() {
                            let share = g[plane * outPlane + i] * window.scale
                            for iy in window.h0..<max(window.h0, window.h1) {
                                for ix in window.w0..<max(window.w0, window.w1) { target[iy * plan.iw + ix] += share }
                            }
                        }
                    }
                }
            }
            return [dx]
        }
    }

    /// 2-D adaptive average pooling to `outputSize` over the last two dimensions of `[N, C, H, W]` (or
    /// `[C, H, W]`): output `(i, j)` averages rows `floor(i * H / outH) ..< ceil((i + 1) * H / outH)` and the
    /// columns likewise, as PyTorch.
    ///
    /// PyTorch: `F.adaptive_avg_pool2d(x, output_size)`.
    /// - Throws: `QuantizationError.invalidOperand` for a quantized payload, a rank other than 3 or 4, an empty
    ///   spatial input, or an output size below 1.
    public static func adaptiveAvgPool2d(_ input: Variable, outputSize: Size2d) throws -> Variable {
        let operation = "adaptive_avg_pool2d"
        func fail(_ reason: String) -> QuantizationError { .invalidOperand(operation: operation, reason: reason) }
        let x = try input.floatTensor(for: operation)
        guard x.rank == 3 || x.rank == 4 else {
            throw fail("the input must be 3-D [C, H, W] or 4-D [N, C, H, W], got shape \(x.shape)")
        }
        let (ih, iw) = (x.shape[x.rank - 2], x.shape[x.rank - 1])
        guard ih > 0, iw > 0 else { throw fail("the input's height and width must be non-zero, got \(x.shape)") }
        let (oh, ow) = (outputSize.height, outputSize.width)
        guard oh >= 1, ow >= 1 else { throw fail("output_size must be at least 1 in both dimensions, got \(outputSize)") }
        let planes = x.shape.dropLast(2).reduce(1, *)
        func start(_ o: Int, _ input: Int, _ output: Int) -> Int { (o * input) / output }
        func end(_ o: Int, _ input: Int, _ output: Int) -> Int { ((o + 1) * input + output - 1) / output }
        let outShape = Array(x.shape.dropLast(2)) + [oh, ow]
        let y = x.withUnsafeBufferPointer { px in
            TensorMath.make(outShape) { py, _ in
                for plane in 0..<planes {
                    let source = px.baseAddress! + plane * ih * iw
                    for oy in 0..<oh {
                        let (h0, h1) = (start(oy, ih, oh), end(oy, ih, oh))
                        for ox in 0..<ow {
                            let (w0, w1) = (start(ox, iw, ow), end(ox, iw, ow))
                            var sum: Float = 0
                            for iy in h0..<h1 { for ix in w0..<w1 { sum += source[iy * iw + ix] } }
                            py[(plane * oh + oy) * ow + ox] = sum / Float((h1 - h0) * (w1 - w0))
                        }
                    }
                }
            }
        }
        return Autograd.record("AdaptiveAvgPool2DBackward", output: y, inputs: [input]) { dy in
            var dx = TensorMath.zeros(x.shape)
            dy.withUnsafeBufferPointer { g in
                dx.withUnsafeMutableBufferPointer { d in
                    for plane in 0..<planes {
                        let target = d.baseAddress! + plane * ih * iw
                        for oy in 0..<oh {
                            let (h0, h1) = (start(oy, ih, oh), end(oy, ih, oh))
                            for ox in 0..<ow {
                                let (w0, w1) = (start(ox, iw, ow), end(ox, iw, ow))
                                let share = g[(plane * oh + oy) * ow + ox] / Float((h1 - h0) * (w1 - w0))
                                for iy in h0..<h1 { for ix in w0..<w1 { target[iy * iw + ix] += share } }
                            }
                        }
                    }
                }
            }
            return [dx]
        }
    }
}
