/// 2-D max pooling of a quantized tensor `[N, C, H, W]` (or `[C, H, W]`): pools the integer values and keeps the
/// quantization parameters, exact (the order of the integers is the order of the real values). Padding counts as the
/// dtype's minimum. `stride` nil means the kernel size.
///
/// PyTorch: `torch.nn.functional.max_pool2d(qx, kernel_size, stride, padding, dilation, ceil_mode)` on a quantized
/// tensor (`quantized_max_pool2d`), what `nn.MaxPool2d` runs after `convert`.
/// - Throws: `QuantizationError.invalidOperand` for a rank other than 3 or 4 or an invalid geometry (PyTorch's
///   messages).
public func quantizedMaxPool2d(
    _ x: QuantizedTensor, kernelSize: Size2d, stride: Size2d? = nil, padding: Size2d = 0, dilation: Size2d = 1,
    ceilMode: Bool = false
) throws -> QuantizedTensor {
    let plan = try PoolingPlan(operation: "max_pool2d", shape: x.shape, kernel: kernelSize,
                               stride: stride ?? kernelSize, padding: padding, dilation: dilation,
                               ceilMode: ceilMode)
    let shape = plan.outputShape(x.shape)
    func pool<T: QuantizedScalar>(_ t: Tensor<T>) -> Tensor<T> {
        t.withUnsafeBufferPointer { source in
            Tensor<T>(uninitializedShape: shape, count: shape.reduce(1, *)) { target in
                QuantizedPooling.maxPool(plan, source.baseAddress!, target)
            }
        }
    }
    let pooled: QuantizedTensor.Values
    switch x.values {
    case .quint8(let t): pooled = .quint8(pool(t))
    case .qint8(let t): pooled = .qint8(pool(t))
    case .qint32(let t): pooled = .qint32(pool(t))
    }
    return QuantizedTensor(values: pooled, qscheme: x.qscheme, scales: x.scales, zeroPoints: x.zeroPoints,
                           axis: x.axis)
}

enum QuantizedPooling {
    /// Max pooling of every plane. The 2x2 / stride 2 window of 8-bit values (the CNNs' pooling) takes 16 outputs at
    /// a time: max of the two rows, then of each even/odd pair; other windows run the general loop.
    static func maxPool<T: FixedWidthInteger>(_ plan: PoolingPlan, _ x: UnsafePointer<T>,
                                               _ y: UnsafeMutablePointer<T>) {
        if MemoryLayout<T>.size == 1, plan.kh == 2, plan.kw == 2, plan.sh == 2, plan.sw == 2, plan.ph == 0,
           plan.pw == 0, plan.dh == 1, plan.dw == 1, 2 * plan.oh <= plan.ih, 2 * plan.ow <= plan.iw {
            let raw = UnsafeRawPointer(x), out = UnsafeMutableRawPointer(y)
            if T.isSigned {
                maxPool2x2(plan, raw.assumingMemoryBound(to: Int8.self), out.assumingMemoryBound(to: Int8.self))
            } else {
                maxPool2x2(plan, raw.assumingMemoryBound(to: UInt8.self), out.assumingMemoryBound(to: UInt8.self))
            }
            return
        }
        let inPlane = plan.ih * plan.iw, outPlane = plan.oh * plan.ow
        Parallel.forEach(plan.planes, workPerItem: inPlane) { planes in
            for plane in planes {
                let source = x + plane * inPlane
                for oy in 0..<plan.oh {
                    let (hStart, hEnd) = plan.window(oy, start: plan.sh * oy - plan.ph, kernel: plan.kh,
                                                     dilation: plan.dh, size: plan.ih)
                    for ox in 0..<plan.ow {
                        let (wStart, wEnd) = plan.window(ox, start: plan.sw * ox - plan.pw, kernel: plan.kw,
                                                         dilation: plan.dw, size: plan.iw)
                        var best = T.min
                        for iy in Swift.stride(from: hStart, to: hEnd, by: plan.dh) {
                            let row = source + iy * plan.iw
                            for ix in Swift.stride(from: wStart, to: wEnd, by: plan.dw) { best = max(best, row[ix]) }
                        }
                        y[plane * outPlane + oy * plan.ow + ox] = best
                    }
                }
            }
        }
    }

    @inline(__always)
    private static func maxPool2x2<T: FixedWidthInteger & SIMDScalar>(
        _ plan: PoolingPlan, _ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>
    ) {
        let inPlane = plan.ih * plan.iw, outPlane = plan.oh * plan.ow, iw = plan.iw, ow = plan.ow
        Parallel.forEach(plan.planes, workPerItem: inPlane) { planes in
            for plane in planes {
                for oy in 0..<plan.oh {
                    let r0 = x + plane * inPlane + 2 * oy * iw, r1 = r0 + iw
                    let o = y + plane * outPlane + oy * ow
                    var ox = 0
                    while ox + 16 <= ow {
                        let top = UnsafeRawPointer(r0 + 2 * ox).loadUnaligned(as: SIMD32<T>.self)
                        let bottom = UnsafeRawPointer(r1 + 2 * ox).loadUnaligned(as: SIMD32<T>.self)
                        let m = pointwiseMax(top, bottom)
                        UnsafeMutableRawPointer(o + ox).storeBytes(of: pointwiseMax(m.evenHalf, m.oddHalf),
                                                                   as: SIMD16<T>.self)
                        ox += 16
                    }
                    // Eight at a time; a last block of eight overlaps the previous one (rows of 28 give 14).
                    while ox < ow, ow >= 8 {
                        let start = min(ox, ow - 8)
                        let top = UnsafeRawPointer(r0 + 2 * start).loadUnaligned(as: SIMD16<T>.self)
                        let bottom = UnsafeRawPointer(r1 + 2 * start).loadUnaligned(as: SIMD16<T>.self)
                        let m = pointwiseMax(top, bottom)
                        UnsafeMutableRawPointer(o + start).storeBytes(of: pointwiseMax(m.evenHalf, m.oddHalf),
                                                                      as: SIMD8<T>.self)
                        ox = start + 8
                    }
                    while ox < ow {
                        o[ox] = max(max(r0[2 * ox], r0[2 * ox + 1]), max(r1[2 * ox], r1[2 * ox + 1]))
                        ox += 1
                    }
                }
            }
        }
    }
}
