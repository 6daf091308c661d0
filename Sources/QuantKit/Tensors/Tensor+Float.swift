extension Tensor where Scalar == Float {
    /// The smallest and largest element. NaN is always skipped; with `finiteOnly` infinities are skipped too.
    /// When nothing is left (an empty tensor, or every element skipped) the result is `(+infinity, -infinity)`.
    /// When both `-0.0` and `+0.0` are extremes, either may be returned.
    ///
    /// PyTorch: `torch.aminmax(x)` as the observers use it, except that PyTorch propagates NaN and rejects empty
    /// tensors.
    ///
    /// If the runtime is unusable (an invalid `QUANTKIT_ISA`; see `Runtime.initialize()`), this falls back to a
    /// portable implementation with identical results instead of failing.
    public func minMax(finiteOnly: Bool = false) -> (min: Float, max: Float) {
        withUnsafeBufferPointer { x in
            Kernels.mustSucceed("min/max") {
                try Kernels.minMax(count: x.count, input: x.baseAddress!, finiteOnly: finiteOnly)
            } fallback: {
                ScalarFallback.minMax(count: x.count, input: x.baseAddress!, finiteOnly: finiteOnly)
            }
        }
    }

    /// Rounds every element to the nearest bfloat16 value (round half to even, subnormals kept, NaN stays NaN with
    /// the quiet bit set) and returns it widened back to fp32, exactly: what `PackedHalfLinearWeight` with
    /// `.bfloat16` stores, and what its linear layer does to the activations. Values beyond the bfloat16 range
    /// (above about 3.39e38) become infinity, as in PyTorch.
    ///
    /// PyTorch: `x.to(torch.bfloat16).float()` (`x.bfloat16().float()`).
    ///
    /// If the runtime is unusable (an invalid `QUANTKIT_ISA`; see `Runtime.initialize()`), this falls back to a
    /// portable implementation with identical results instead of failing.
    public func roundedToBFloat16() -> Tensor<Float> {
        let bits = withUnsafeBufferPointer { x in
            [UInt16](unsafeUninitializedCapacity: x.count) { buffer, initialized in
                Kernels.mustSucceed("fp32 to bf16 conversion") {
                    if x.count > 0 {
                        try Kernels.convert(count: x.count, input: x.baseAddress!, to: .bfloat16,
                                            output: buffer.baseAddress!)
                    }
                } fallback: {
                    if x.count > 0 {
                        ScalarFallback.convert(count: x.count, input: x.baseAddress!, to: .bfloat16,
                                               output: buffer.baseAddress!)
                    }
                }
                initialized = x.count
            }
        }
        return Tensor(uninitializedShape: shape, count: count) { y in
            bits.withUnsafeBytes { raw in
                Kernels.mustSucceed("bf16 to fp32 conversion") {
                    if raw.count > 0 {
                        try Kernels.convert(count: bits.count, bits: raw.baseAddress!, from: .bfloat16, output: y)
                    }
                } fallback: {
                    if raw.count > 0 {
                        ScalarFallback.convert(count: bits.count, bits: raw.baseAddress!, from: .bfloat16, output: y)
                    }
                }
            }
        }
    }

    /// Quantizes with one scale and zero point:
    /// `q = clamp(zeroPoint + nearbyint(x * (1 / scale)), dtype.range)`, rounding half to even, multiplying by the
    /// float32 reciprocal (not dividing) and adding the zero point after rounding, exactly as PyTorch's x86 engine.
    /// NaN becomes the dtype minimum; infinities saturate.
    ///
    /// PyTorch: `torch.quantize_per_tensor(x, scale, zero_point, dtype)`. The result's `qscheme` is `qscheme`
    /// (default `.perTensorAffine`, which is what PyTorch reports for every such tensor); `.perTensorSymmetric`
    /// additionally requires `zeroPoint == dtype.symmetricZeroPoint`.
    /// - Throws: `QuantizationError.invalidScale` (not finite, not > 0, or a subnormal whose reciprocal is infinite),
    ///   `.zeroPointOutOfRange`, `.symmetricZeroPoint`, `.qschemeMismatch` (a per-channel scheme).
    public func quantized(
        scale: Float, zeroPoint: Int, dtype: QuantizedDType, qscheme: QScheme = .perTensorAffine
    ) throws -> QuantizedTensor {
        try QParamChecks.checkPerTensor(scale: scale, zeroPoint: zeroPoint, dtype: dtype, qscheme: qscheme)
        let values = try withUnsafeBufferPointer { x in
            try QuantizedTensor.Values.make(dtype: dtype, shape: shape, count: count) { y in
                try Kernels.quantizePerTensor(dtype, count: x.count, input: x.baseAddress!, output: y, scale: scale,
                                              zeroPoint: Int32(zeroPoint))
            }
        }
        return QuantizedTensor(values: values, qscheme: qscheme, scales: [scale], zeroPoints: [zeroPoint], axis: nil)
    }

    /// Quantizes each slice along `axis` with its own scale and zero point (same rule as the per-tensor
    /// `quantized(scale:zeroPoint:dtype:qscheme:)`). `axis` may be negative (`-1` is the last dimension).
    ///
    /// PyTorch: `torch.quantize_per_channel(x, scales, zero_points, axis, dtype)`. The result's `qscheme` is
    /// `qscheme` (default `.perChannelAffine`, as PyTorch reports); `.perChannelSymmetric` additionally requires
    /// every zero point to be `dtype.symmetricZeroPoint`. PyTorch takes float64 scales and converts them to float32;
    /// here they are float32 already.
    /// - Throws: `QuantizationError.axisOutOfRange`, `.channelCountMismatch`, `.invalidScale` / `.zeroPointOutOfRange`
    ///   / `.symmetricZeroPoint` naming the channel, `.qschemeMismatch` (a per-tensor scheme).
    public func quantized(
        scales: [Float], zeroPoints: [Int], axis: Int, dtype: QuantizedDType, qscheme: QScheme = .perChannelAffine
    ) throws -> QuantizedTensor {
        let axis = try QParamChecks.checkPerChannel(
            scales: scales, zeroPoints: zeroPoints, axis: axis, shape: shape, dtype: dtype, qscheme: qscheme)
        let view = ChannelView(shape: shape, axis: axis)
        let zeroPoints32 = zeroPoints.map { Int32($0) }
        let values = try withUnsafeBufferPointer { x in
            try scales.withUnsafeBufferPointer { s in
                try zeroPoints32.withUnsafeBufferPointer { z in
                    try QuantizedTensor.Values.make(dtype: dtype, shape: shape, count: count) { y in
                        try Kernels.quantizePerChannel(dtype, view: view, input: x.baseAddress!, output: y,
                                                       scales: s.baseAddress, zeroPoints: z.baseAddress)
                    }
                }
            }
        }
        return QuantizedTensor(values: values, qscheme: qscheme, scales: scales, zeroPoints: zeroPoints, axis: axis)
    }
}
