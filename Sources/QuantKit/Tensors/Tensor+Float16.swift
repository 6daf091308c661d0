#if !(os(macOS) && arch(x86_64))
extension Tensor where Scalar == Float {
    /// Rounds every element to half precision: round half to even, subnormals kept, values beyond the half range
    /// become infinity, NaN stays NaN (sign kept, quiet bit set).
    ///
    /// PyTorch: `x.half()` / `x.to(torch.float16)`.
    ///
    /// If the runtime is unusable (an invalid `QUANTKIT_ISA`; see `Runtime.initialize()`), this falls back to a
    /// portable implementation with identical results instead of failing.
    public func converted(to type: Float16.Type) -> Tensor<Float16> {
        withUnsafeBufferPointer { x in
            Tensor<Float16>(uninitializedShape: shape, count: count) { y in
                Kernels.mustSucceed("fp32 to fp16 conversion") {
                    try Kernels.convertToFloat16(count: x.count, input: x.baseAddress!, output: y)
                } fallback: {
                    ScalarFallback.convertToFloat16(count: x.count, input: x.baseAddress!, output: y)
                }
            }
        }
    }

    /// Rounds to half precision after clamping to the finite half range: every `|x| > 65504` (infinities included)
    /// becomes `±65504` and is counted in `saturatedCount`; NaN stays NaN and is not counted.
    ///
    /// PyTorch: the weight conversion of `torch.ao.nn.quantized.dynamic.Linear` with `dtype=torch.float16`
    /// (fbgemm `PackedGemmMatrixFP16`, which warns about saturated values).
    ///
    /// If the runtime is unusable (an invalid `QUANTKIT_ISA`; see `Runtime.initialize()`), this falls back to a
    /// portable implementation with identical results instead of failing.
    public func convertedToFloat16Saturating() -> (tensor: Tensor<Float16>, saturatedCount: Int) {
        var saturated = 0
        let tensor = withUnsafeBufferPointer { x in
            Tensor<Float16>(uninitializedShape: shape, count: count) { y in
                saturated = Kernels.mustSucceed("saturating fp32 to fp16 conversion") {
                    try Kernels.convertToFloat16Saturating(count: x.count, input: x.baseAddress!, output: y)
                } fallback: {
                    ScalarFallback.convertToFloat16Saturating(count: x.count, input: x.baseAddress!, output: y)
                }
            }
        }
        return (tensor, saturated)
    }
}

extension Tensor where Scalar == Float16 {
    /// Widens every element to single precision exactly (NaN gets the quiet bit).
    ///
    /// PyTorch: `x.float()` / `x.to(torch.float32)`.
    ///
    /// If the runtime is unusable (an invalid `QUANTKIT_ISA`; see `Runtime.initialize()`), this falls back to a
    /// portable implementation with identical results instead of failing.
    public func converted(to type: Float.Type) -> Tensor<Float> {
        withUnsafeBufferPointer { x in
            Tensor<Float>(uninitializedShape: shape, count: count) { y in
                Kernels.mustSucceed("fp16 to fp32 conversion") {
                    try Kernels.convertToFloat(count: x.count, input: x.baseAddress!, output: y)
                } fallback: {
                    ScalarFallback.convertToFloat(count: x.count, input: x.baseAddress!, output: y)
                }
            }
        }
    }
}
#endif
