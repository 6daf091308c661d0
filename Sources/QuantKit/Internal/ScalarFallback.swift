// Plain Swift ports of the C scalar reference kernels (CKernels/src/kernels/*/*-scalar.c, qk_scalar_math.h) for the
// operations whose public API does not throw. They run only when the C runtime is unusable (an invalid QUANTKIT_ISA
// makes every kernel call fail until Runtime.setISA succeeds), so that such an API never stops the process. They must
// give the C results bit for bit; keep them in step with the C files. No CKernels import here, on purpose.

/// Portable versions of the non-throwing operations, with the signatures of the matching `Kernels` wrappers.
enum ScalarFallback {
    // MARK: Bit conversions (qk_scalar_math.h)

    /// fp32 -> fp16 bits, round half to even; subnormals kept; NaN keeps sign and top payload bits, quiet bit set.
    /// Port of `qk_f32_to_f16_bits`, on bit patterns so that it needs no `Float16` type.
    static func float16Bits(_ f: Float) -> UInt16 {
        let x = f.bitPattern
        let sign = UInt16(truncatingIfNeeded: (x >> 16) & 0x8000)
        let ax = x & 0x7FFF_FFFF
        if ax > 0x7F80_0000 { return sign | 0x7E00 | UInt16(truncatingIfNeeded: (ax >> 13) & 0x3FF) }   // NaN
        if ax >= 0x477F_F000 { return sign | 0x7C00 }   // >= 65520 rounds to infinity (and inf)
        if ax >= 0x3880_0000 {                          // normal half: |f| >= 2^-14
            let rounded = ax &+ 0x0FFF &+ ((ax >> 13) & 1)
            return sign | UInt16(truncatingIfNeeded: (rounded &- 0x3800_0000) >> 13)
        }
        if ax < 0x3300_0000 { return sign }             // < 2^-25 (half of the smallest subnormal)
        // Subnormal half: m * 2^-24 with m = round(|f| * 2^24).
        let e = ax >> 23                                 // 102...112
        let m = (ax & 0x7F_FFFF) | 0x80_0000
        let shift = 126 - e                              // 14...24
        var h = m >> shift
        let rem = m & ((1 << shift) - 1), halfway: UInt32 = 1 << (shift - 1)
        if rem > halfway || (rem == halfway && h & 1 != 0) { h += 1 }
        return sign | UInt16(truncatingIfNeeded: h)
    }

    /// fp16 bits -> fp32, exact; NaN gets the quiet bit. Port of `qk_f16_bits_to_f32`.
    static func float(float16Bits h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let e = UInt32(h >> 10) & 0x1F, m = UInt32(h & 0x3FF)
        let bits: UInt32
        if e == 0x1F {
            bits = sign | 0x7F80_0000 | (m != 0 ? 0x40_0000 | (m << 13) : 0)
        } else if e != 0 {
            bits = sign | ((e + 112) << 23) | (m << 13)
        } else if m == 0 {
            bits = sign
        } else {                                         // subnormal: normalise
            var ee: UInt32 = 113, mm = m
            while mm & 0x400 == 0 { mm <<= 1; ee -= 1 }
            bits = sign | (ee << 23) | ((mm & 0x3FF) << 13)
        }
        return Float(bitPattern: bits)
    }

    /// fp32 -> bf16 bits, round half to even (subnormals kept, overflow to infinity); NaN keeps its sign and top
    /// payload bits with the quiet bit set. Port of `qk_f32_to_bf16_bits`.
    static func bfloat16Bits(_ f: Float) -> UInt16 {
        let x = f.bitPattern
        if x & 0x7FFF_FFFF > 0x7F80_0000 { return UInt16(truncatingIfNeeded: x >> 16) | 0x0040 }
        return UInt16(truncatingIfNeeded: (x &+ 0x7FFF &+ ((x >> 16) & 1)) >> 16)
    }

    /// bf16 bits -> fp32, exact. Port of `qk_bf16_bits_to_f32`.
    static func float(bfloat16Bits h: UInt16) -> Float { Float(bitPattern: UInt32(h) << 16) }

    // MARK: fp16 / bf16 (f16-convert-scalar.c, operators/convert.c)

    /// `output` receives `count` IEEE binary16 bit patterns.
    static func convertToFloat16(count: Int, input: UnsafePointer<Float>, output: UnsafeMutableRawPointer) {
        let y = output.assumingMemoryBound(to: UInt16.self)
        for i in 0..<count { y[i] = float16Bits(input[i]) }
    }

    /// `|x| > 65504` (infinities included) becomes `±65504` and is counted; NaN is kept and not counted.
    static func convertToFloat16Saturating(count: Int, input: UnsafePointer<Float>, output: UnsafeMutableRawPointer)
        -> Int
    {
        let y = output.assumingMemoryBound(to: UInt16.self)
        var saturated = 0
        for i in 0..<count {
            var v = input[i]
            if v > 65504 {
                v = 65504
                saturated += 1
            } else if v < -65504 {
                v = -65504
                saturated += 1
            }
            y[i] = float16Bits(v)
        }
        return saturated
    }

    /// `input` holds `count` IEEE binary16 bit patterns.
    static func convertToFloat(count: Int, input: UnsafeRawPointer, output: UnsafeMutablePointer<Float>) {
        let x = input.assumingMemoryBound(to: UInt16.self)
        for i in 0..<count { output[i] = float(float16Bits: x[i]) }
    }

    static func convert(count: Int, input: UnsafePointer<Float>, to precision: HalfPrecision,
                        output: UnsafeMutableRawPointer)
    {
        let y = output.assumingMemoryBound(to: UInt16.self)
        switch precision {
        case .float16: for i in 0..<count { y[i] = float16Bits(input[i]) }
        case .bfloat16: for i in 0..<count { y[i] = bfloat16Bits(input[i]) }
        }
    }

    static func convert(count: Int, bits input: UnsafeRawPointer, from precision: HalfPrecision,
                        output: UnsafeMutablePointer<Float>)
    {
        let x = input.assumingMemoryBound(to: UInt16.self)
        switch precision {
        case .float16: for i in 0..<count { output[i] = float(float16Bits: x[i]) }
        case .bfloat16: for i in 0..<count { output[i] = float(bfloat16Bits: x[i]) }
        }
    }

    // MARK: Statistics (minmax-scalar.c, operators/statistics.c)

    /// NaN skipped, and infinities with `finiteOnly`; `(+inf, -inf)` when nothing is left.
    static func minMax(count: Int, input: UnsafePointer<Float>, finiteOnly: Bool) -> (min: Float, max: Float) {
        var low = Float.infinity, high = -Float.infinity
        for i in 0..<count {
            let v = input[i]
            if v.isNaN || (finiteOnly && v.isInfinite) { continue }
            low = v < low ? v : low
            high = v > high ? v : high
        }
        return (low, high)
    }

    // MARK: Dequantize (dequantize-scalar.c, operators/quantize.c)

    /// `y = (Float(q) - Float(zeroPoint)) * scale`: two roundings (Swift never fuses them into an FMA).
    static func dequantizePerTensor(
        _ dtype: QuantizedDType, count: Int, input: UnsafeRawPointer, output: UnsafeMutablePointer<Float>,
        scale: Float, zeroPoint: Int32
    ) {
        let zp = Float(zeroPoint)
        switch dtype {
        case .quint8:
            let q = input.assumingMemoryBound(to: UInt8.self)
            for i in 0..<count { output[i] = (Float(q[i]) - zp) * scale }
        case .qint8:
            let q = input.assumingMemoryBound(to: Int8.self)
            for i in 0..<count { output[i] = (Float(q[i]) - zp) * scale }
        case .qint32:
            let q = input.assumingMemoryBound(to: Int32.self)
            for i in 0..<count { output[i] = (Float(q[i]) - zp) * scale }   // Float(q) rounds beyond 2^24, as in C
        }
    }

    /// The same per slice of the `[outer, channels, inner]` view, with channel `c`'s scale and zero point.
    static func dequantizePerChannel(
        _ dtype: QuantizedDType, view: ChannelView, input: UnsafeRawPointer, output: UnsafeMutablePointer<Float>,
        scales: UnsafePointer<Float>?, zeroPoints: UnsafePointer<Int32>?
    ) {
        guard let scales, let zeroPoints, view.outer > 0, view.channels > 0, view.inner > 0 else { return }
        let elementSize = switch dtype {
        case .quint8, .qint8: 1
        case .qint32: 4
        }
        for o in 0..<view.outer {
            for c in 0..<view.channels {
                let start = (o * view.channels + c) * view.inner
                dequantizePerTensor(dtype, count: view.inner, input: input + start * elementSize,
                                    output: output + start, scale: scales[c], zeroPoint: zeroPoints[c])
            }
        }
    }
}
