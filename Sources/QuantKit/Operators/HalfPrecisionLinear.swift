/// The 16-bit floating-point format in which a half-precision linear layer stores its weights.
///
/// PyTorch: the weight dtype, `torch.float16` (`float16_dynamic_qconfig`, `torch.ops.quantized.linear_dynamic_fp16`)
/// or `torch.bfloat16`. The raw value is PyTorch's dtype name without the `torch.` prefix.
public enum HalfPrecision: String, Sendable, CaseIterable, CustomStringConvertible {
    /// IEEE 754 binary16: 5 exponent bits, 10 fraction bits (finite range ±65504, about 3 decimal digits). Weights
    /// beyond ±65504 saturate when packed from fp32; the activations stay fp32.
    ///
    /// PyTorch: `torch.float16`, as `nnqd.Linear(..., dtype=torch.float16)` stores its weights.
    case float16

    /// bfloat16: fp32's 8 exponent bits with 7 fraction bits (fp32's range, about 2 decimal digits). The activations
    /// are rounded to bfloat16 too, so every product is exact in fp32 and only the accumulation rounds.
    ///
    /// PyTorch: `torch.bfloat16`.
    case bfloat16

    /// `"float16"` or `"bfloat16"`. PyTorch: `str(dtype)` without the `torch.` prefix.
    public var description: String { rawValue }
}

/// The weights (and optional fp32 bias) of a linear layer, rounded to fp16 or bf16 and packed once for the
/// half-precision GEMM kernels. The layer computes in fp32: fp32 activations (rounded to bf16 for `.bfloat16`),
/// fp32 products, fp32 accumulation, fp32 outputs.
///
/// PyTorch: the `LinearPackedParamsBase` that `torch.ops.quantized.linear_prepack_fp16(weight, bias)` returns (what
/// `nnqd.Linear` with `dtype=torch.float16` holds; FBGEMM's `PackedGemmMatrixFP16`). The weight is PyTorch's
/// `[outFeatures, inFeatures]` layout. PyTorch has no bf16 counterpart in `torch.ao.quantization`; `.bfloat16` is
/// what `F.linear` computes on bfloat16 weights and activations, but with an fp32 output.
///
/// `@unchecked Sendable`: the C handle is immutable after creation and the C run function only reads it, so one
/// instance may be used from any number of threads at once. `deinit` frees the handle.
public final class PackedHalfLinearWeight: @unchecked Sendable {
    let handle: OpaquePointer

    /// The format the weights are stored in. PyTorch: the packed weight's dtype.
    public let precision: HalfPrecision

    /// N, the number of outputs. PyTorch: `nnqd.Linear.out_features`.
    public let outFeatures: Int

    /// K, the number of inputs. PyTorch: `nnqd.Linear.in_features`.
    public let inFeatures: Int

    /// The fp32 bias `[outFeatures]`, if any. PyTorch: `torch.ops.quantized.linear_unpack_fp16(packed)[1]`.
    public let bias: Tensor<Float>?

    /// How many fp32 weights lay beyond the fp16 range (`|w| > 65504`, infinities included) and were saturated to
    /// ±65504 when packing; NaN is kept and not counted. Always 0 for `.bfloat16` (whose range is fp32's) and for
    /// weights given as `Float16`.
    ///
    /// PyTorch: the count behind the warning "FOUND weight out of range" that `linear_prepack_fp16` prints.
    public let saturatedCount: Int

    /// Rounds `weight` (fp32 `[outFeatures, inFeatures]`) to `precision` with round half to even and packs it, with
    /// `bias` (`[outFeatures]`), for the ISA level in use. For `.float16`, values beyond ±65504 (infinities included)
    /// saturate to ±65504 first, as PyTorch does, and are counted in `saturatedCount`. NaN stays NaN.
    ///
    /// PyTorch: `torch.ops.quantized.linear_prepack_fp16(weight, bias)` for `.float16`;
    /// `weight.to(torch.bfloat16)` for `.bfloat16`.
    /// - Throws: `QuantizationError.invalidOperand` when the weight is not 2-D or the bias is not `[outFeatures]`;
    ///   `.outOfMemory`.
    public init(weight: Tensor<Float>, bias: Tensor<Float>? = nil, precision: HalfPrecision = .float16) throws {
        let (n, k) = try Self.check(weightShape: weight.shape, bias: bias, precision: precision)
        let packed = try weight.withUnsafeBufferPointer { w in
            try Self.withBias(bias) { b in
                try Kernels.createHalfGEMMWeights(precision, n: n, k: k, weights: w.baseAddress!, bias: b)
            }
        }
        handle = packed.handle
        saturatedCount = packed.saturated
        self.precision = precision
        (outFeatures, inFeatures) = (n, k)
        self.bias = bias
    }

    #if !(os(macOS) && arch(x86_64))
    /// Packs weights that are fp16 already (`[outFeatures, inFeatures]`, e.g. read from a checkpoint): no rounding,
    /// no saturation (infinities are kept), `precision` is `.float16`. (A separate label from `init(weight:...)`, so
    /// that a tensor of literals is never silently built as `Float16`, which would turn 1e6 into infinity instead
    /// of saturating it.)
    ///
    /// PyTorch: `torch.ops.quantized.linear_prepack_fp16(weight.float(), bias)` on a `torch.float16` weight.
    /// - Throws: `QuantizationError.invalidOperand` when the weight is not 2-D or the bias is not `[outFeatures]`;
    ///   `.outOfMemory`.
    public init(float16Weight weight: Tensor<Float16>, bias: Tensor<Float>? = nil) throws {
        let (n, k) = try Self.check(weightShape: weight.shape, bias: bias, precision: .float16)
        handle = try weight.withUnsafeBufferPointer { w in
            try Self.withBias(bias) { b in
                try Kernels.createHalfGEMMWeights(.float16, n: n, k: k, bits: UnsafeRawPointer(w.baseAddress!),
                                                  bias: b)
            }
        }
        saturatedCount = 0
        precision = .float16
        (outFeatures, inFeatures) = (n, k)
        self.bias = bias
    }
    #endif

    deinit {
        Kernels.destroyHalfGEMMWeights(handle)
    }

    /// The microkernel `halfPrecisionLinear` uses now, e.g. `"qk_f16_gemm_ukernel_6x16__avx2"`.
    /// PyTorch: no equivalent (the FBGEMM kernel is not reported).
    public var kernelName: String { Kernels.halfGEMMKernelName(handle, fp16Arithmetic: false) }

    /// The microkernel used with `fp16Arithmetic: true`: an fp16 multiply-accumulate kernel on CPUs with
    /// half-precision arithmetic (ARMv8.2 FP16), otherwise the same as `kernelName`.
    /// PyTorch: no equivalent.
    public var fp16ArithmeticKernelName: String { Kernels.halfGEMMKernelName(handle, fp16Arithmetic: true) }

    /// Bytes of the packed weights (16-bit panels, zero padded to the kernel's tile). PyTorch: no equivalent.
    public var packedByteCount: Int { Kernels.halfGEMMPackedBytes(handle) }

    /// The packed weights `[outFeatures, inFeatures]`, widened exactly to fp32: every value is representable in
    /// `precision` (after saturation for fp16). This works for both precisions and on every platform; see
    /// `float16Weight()` for the fp16 values themselves.
    ///
    /// PyTorch: `torch.ops.quantized.linear_unpack_fp16(packed)[0]`, which also returns fp32.
    public func weight() -> Tensor<Float> {
        let count = outFeatures * inFeatures
        let bits = [UInt16](unsafeUninitializedCapacity: count) { buffer, initialized in
            Kernels.mustSucceed("copying the packed half-precision weights") {
                if count > 0 { try Kernels.copyHalfGEMMWeights(handle, to: buffer.baseAddress!) }
            }
            initialized = count
        }
        return Tensor<Float>(uninitializedShape: [outFeatures, inFeatures], count: count) { y in
            bits.withUnsafeBytes { raw in
                Kernels.mustSucceed("widening the packed half-precision weights") {
                    if count > 0 {
                        try Kernels.convert(count: count, bits: raw.baseAddress!, from: precision, output: y)
                    }
                } fallback: {
                    if count > 0 {
                        ScalarFallback.convert(count: count, bits: raw.baseAddress!, from: precision, output: y)
                    }
                }
            }
        }
    }

    #if !(os(macOS) && arch(x86_64))
    /// The packed fp16 weights `[outFeatures, inFeatures]` (after saturation), bit for bit.
    ///
    /// PyTorch: `torch.ops.quantized.linear_unpack_fp16(packed)[0].half()`.
    /// - Throws: `QuantizationError.invalidOperand` when `precision` is `.bfloat16` (use `weight()`).
    public func float16Weight() throws -> Tensor<Float16> {
        guard precision == .float16 else {
            throw QuantizationError.invalidOperand(operation: "linear_unpack_fp16", reason: "the weights are "
                                                   + "stored as bfloat16, not float16; weight() returns them "
                                                   + "widened to float32")
        }
        let count = outFeatures * inFeatures
        return Tensor<Float16>(uninitializedShape: [outFeatures, inFeatures], count: count) { y in
            Kernels.mustSucceed("copying the packed fp16 weights") {
                try Kernels.copyHalfGEMMWeights(handle, to: UnsafeMutableRawPointer(y))
            }
        }
    }
    #endif

    // MARK: Internals

    private static func check(weightShape shape: [Int], bias: Tensor<Float>?, precision: HalfPrecision)
        throws -> (n: Int, k: Int)
    {
        let operation = precision == .float16 ? "linear_prepack_fp16" : "linear_prepack_bf16"
        guard shape.count == 2 else {
            throw QuantizationError.invalidOperand(operation: operation, reason: "the weight must be 2-D "
                                                   + "[outFeatures, inFeatures], got shape \(shape)")
        }
        let n = shape[0]
        if let bias, bias.shape != [n] {
            throw QuantizationError.invalidOperand(operation: operation, reason: "the bias must have shape [\(n)] "
                                                   + "(outFeatures), got \(bias.shape)")
        }
        return (n, shape[1])
    }

    private static func withBias<R>(_ bias: Tensor<Float>?, _ body: (UnsafePointer<Float>?) throws -> R) rethrows
        -> R
    {
        guard let bias else { return try body(nil) }
        return try bias.withUnsafeBufferPointer { try body($0.baseAddress) }
    }
}

/// Half-precision linear layer: `y = x wᵀ + bias` with the weights stored as fp16 or bf16 and fp32 arithmetic:
/// fp32 activations (rounded to bf16 for `.bfloat16` weights, so that every product is exact), fp32 products and
/// fp32 accumulation, fp32 output, then `y < 0 ? 0 : y` with `relu` (NaN stays NaN, as `torch.relu`).
///
/// `x` is fp32 `[..., inFeatures]` with any number of leading dimensions (flattened to rows, as `nn.Linear`), the
/// result `[..., outFeatures]`. The order of the fp32 additions is the kernel's own, so results agree with an exact
/// sum of the rounded values to a few units in the last place of `sum |x w|`: across ISA levels, and for one row
/// computed alone or in a batch (kernels for few rows split K differently), they agree to that tolerance, not bit
/// for bit. The same call on the same ISA level gives the same bits, whatever the thread count. NaN and infinities
/// propagate as IEEE arithmetic says.
///
/// - `fp16Arithmetic` (beyond PyTorch, `.float16` weights only): on CPUs with half-precision arithmetic (ARMv8.2
///   FP16) round the activations to fp16 and multiply-accumulate in fp16, as XNNPACK's f16 GEMM: faster, but the
///   error grows to about `K * 2^-11` of `sum |x w|` and sums beyond 65504 overflow to infinity. Ignored elsewhere
///   (`fp16ArithmeticKernelName` tells which kernel runs) and for `.bfloat16` weights.
///
/// PyTorch: `torch.ops.quantized.linear_dynamic_fp16(x, packed)` / `linear_relu_dynamic_fp16` (`nnqd.Linear` with
/// `dtype=torch.float16`) for `.float16`; `F.linear(x.bfloat16().float(), w.bfloat16().float(), bias)` for
/// `.bfloat16` (PyTorch's bf16 `F.linear` accumulates in fp32 too but rounds its output to bf16; here it stays fp32).
/// - Throws: `QuantizationError.invalidOperand` when `x` is rank 0 or its last dimension is not `inFeatures`.
public func halfPrecisionLinear(
    _ x: Tensor<Float>, _ w: PackedHalfLinearWeight, relu: Bool = false, fp16Arithmetic: Bool = false
) throws -> Tensor<Float> {
    let operation = switch w.precision {
    case .float16: relu ? "quantized::linear_relu_dynamic_fp16" : "quantized::linear_dynamic_fp16"
    case .bfloat16: relu ? "linear_relu_bf16" : "linear_bf16"
    }
    let (k, n) = (w.inFeatures, w.outFeatures)
    let m = try linearRows(x.shape, inFeatures: k, operation: operation)
    let shape = Array(x.shape.dropLast()) + [n]
    _ = try Tensor<Float>.elementCount(of: shape)
    return try withExtendedLifetime(w) {
        try x.withUnsafeBufferPointer { input in
            try Tensor<Float>(uninitializedShape: shape, count: m * n) { y in
                try Kernels.halfGEMM(w.handle, m: m, x: input.baseAddress, y: y, k: k, n: n, relu: relu,
                                     fp16Arithmetic: fp16Arithmetic)
            }
        }
    }
}
