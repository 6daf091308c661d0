// The only place that talks to the C kernels. Everything here takes Swift types (QuantizedDType, raw pointers,
// Int counts) so that no C type leaks into the rest of the module, let alone its public interface.
internal import CKernels

/// Thin, throwing wrappers over `quantkit.h`. Callers validate arguments first (so users get Swift-shaped messages);
/// a non-OK status that still comes back is turned into a `QuantizationError` carrying the C message.
enum Kernels {
    // MARK: Status mapping

    /// Converts a C status into a `QuantizationError`, reading the calling thread's last C error message.
    static func check(_ status: qk_status) throws(QuantizationError) {
        guard status != QK_OK else { return }
        let message = String(cString: qk_last_error_message())
        switch status {
        case QK_ERROR_INVALID_ARGUMENT:
            throw .invalidArgument(message)
        case QK_ERROR_OUT_OF_MEMORY:
            throw .outOfMemory(message)
        default:
            // UNKNOWN_ISA / UNSUPPORTED_ISA here mean the runtime failed to initialise (bad QUANTKIT_ISA);
            // OVERFLOW cannot happen after Swift's own size checks but is reported faithfully if it does.
            let kind = String(cString: qk_status_string(status))
            throw .runtime(message.isEmpty ? kind : "\(kind): \(message)")
        }
    }

    /// Runs a kernel call for an operation whose public API does not throw, falling back to `fallback` (a
    /// `ScalarFallback` function with identical results) when the C runtime is unusable (an invalid `QUANTKIT_ISA`,
    /// which `Runtime.initialize()` reports as an error). Any other failure is a bug and stops with a precondition.
    static func mustSucceed<R>(_ operation: StaticString, _ body: () throws -> R, fallback: () -> R) -> R {
        do {
            return try body()
        } catch {
            // The runtime never turns unusable once usable (a failed qk_set_isa keeps the current table), so if it
            // is unusable now it was during the call. If usable now, another thread may just have repaired it with
            // Runtime.setISA: run the kernel again (a real failure then stops below).
            if runtimeIsUnusable { return fallback() }
            return mustSucceed(operation, body)
        }
    }

    /// Runs a kernel call that cannot fail, not even on an unusable runtime (e.g. on a packed-weights handle, which
    /// exists only if the runtime was usable when it was made, and the C side never checks the runtime there).
    static func mustSucceed<R>(_ operation: StaticString, _ body: () throws -> R) -> R {
        do {
            return try body()
        } catch {
            preconditionFailure("QuantKit \(operation) failed: \(error)")
        }
    }

    /// Whether the C kernels refuse to run: `QUANTKIT_ISA` named an unknown or unsupported level and no
    /// `Runtime.setISA` has succeeded since (`Kernels.check` turns those statuses into `.runtime`).
    static var runtimeIsUnusable: Bool {
        let status = qk_runtime_init()
        return status == QK_ERROR_UNKNOWN_ISA || status == QK_ERROR_UNSUPPORTED_ISA
    }

    fileprivate static func cDType(_ dtype: QuantizedDType) -> qk_dtype {
        switch dtype {
        case .quint8: return QK_DTYPE_QUINT8
        case .qint8: return QK_DTYPE_QINT8
        case .qint32: return QK_DTYPE_QINT32
        }
    }

    // MARK: Runtime

    static var versionString: String { String(cString: qk_version_string()) }
    static var isaName: String { String(cString: qk_isa_name()) }
    static var threadBackend: String { String(cString: qk_thread_backend()) }
    static var numberOfThreads: Int { Int(qk_get_num_threads()) }
    static var maxThreads: Int { Int(QK_MAX_THREADS) }

    static var cpuFeatureNames: [String] {
        cString(qk_cpu_feature_names).split(separator: " ").map(String.init)
    }

    static var cpuName: String { cString(qk_cpu_name) }

    /// Calls a C function that fills a buffer and returns the length it needs (qk_cpu_name and its kind).
    private static func cString(_ fill: (UnsafeMutablePointer<CChar>?, Int) -> Int) -> String {
        let needed = fill(nil, 0)
        var buffer = [CChar](repeating: 0, count: needed + 1)
        _ = buffer.withUnsafeMutableBufferPointer { fill($0.baseAddress, $0.count) }
        return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    static func initialize() throws(QuantizationError) {
        let status = qk_runtime_init()
        guard status == QK_OK else {
            throw .runtime(String(cString: qk_last_error_message()))
        }
    }

    static func setISA(_ name: String?) throws(QuantizationError) {
        let status: qk_status
        if let name {
            status = name.withCString { qk_set_isa($0) }
        } else {
            status = qk_set_isa(nil)
        }
        try check(status)
    }

    static func isSupported(isa name: String) -> Bool {
        name.withCString { qk_isa_supported($0) } != 0
    }

    static func setNumberOfThreads(_ count: Int) throws(QuantizationError) {
        try check(qk_set_num_threads(Int32(clamping: count)))
    }

    // MARK: Quantize / dequantize

    static func quantizePerTensor(
        _ dtype: QuantizedDType, count: Int, input: UnsafePointer<Float>, output: UnsafeMutableRawPointer,
        scale: Float, zeroPoint: Int32
    ) throws(QuantizationError) {
        try check(qk_quantize_per_tensor(cDType(dtype), count, input, output, scale, zeroPoint))
    }

    static func dequantizePerTensor(
        _ dtype: QuantizedDType, count: Int, input: UnsafeRawPointer, output: UnsafeMutablePointer<Float>,
        scale: Float, zeroPoint: Int32
    ) throws(QuantizationError) {
        try check(qk_dequantize_per_tensor(cDType(dtype), count, input, output, scale, zeroPoint))
    }

    /// `view` is the `[outer, channels, inner]` view of the tensor around the quantization axis. The parameter
    /// pointers may be nil only when there are no channels (empty Swift arrays may have no base address).
    static func quantizePerChannel(
        _ dtype: QuantizedDType, view: ChannelView, input: UnsafePointer<Float>, output: UnsafeMutableRawPointer,
        scales: UnsafePointer<Float>?, zeroPoints: UnsafePointer<Int32>?
    ) throws(QuantizationError) {
        try check(qk_quantize_per_channel(cDType(dtype), view.outer, view.channels, view.inner, input, output,
                                          scales, zeroPoints))
    }

    static func dequantizePerChannel(
        _ dtype: QuantizedDType, view: ChannelView, input: UnsafeRawPointer, output: UnsafeMutablePointer<Float>,
        scales: UnsafePointer<Float>?, zeroPoints: UnsafePointer<Int32>?
    ) throws(QuantizationError) {
        try check(qk_dequantize_per_channel(cDType(dtype), view.outer, view.channels, view.inner, input, output,
                                            scales, zeroPoints))
    }

    // MARK: fp16

    /// `output` holds `count` IEEE binary16 bit patterns.
    static func convertToFloat16(count: Int, input: UnsafePointer<Float>, output: UnsafeMutableRawPointer)
        throws(QuantizationError)
    {
        try check(qk_f32_to_f16(count, input, output.assumingMemoryBound(to: UInt16.self)))
    }

    /// Returns how many values were saturated to +-65504.
    static func convertToFloat16Saturating(count: Int, input: UnsafePointer<Float>, output: UnsafeMutableRawPointer)
        throws(QuantizationError) -> Int
    {
        var saturated = 0
        try check(qk_f32_to_f16_saturate(count, input, output.assumingMemoryBound(to: UInt16.self), &saturated))
        return saturated
    }

    static func convertToFloat(count: Int, input: UnsafeRawPointer, output: UnsafeMutablePointer<Float>)
        throws(QuantizationError)
    {
        try check(qk_f16_to_f32(count, input.assumingMemoryBound(to: UInt16.self), output))
    }

    // MARK: Statistics

    static func minMax(count: Int, input: UnsafePointer<Float>, finiteOnly: Bool)
        throws(QuantizationError) -> (min: Float, max: Float)
    {
        var low = Float.infinity, high = -Float.infinity
        let flags = finiteOnly ? UInt32(QK_MINMAX_FINITE_ONLY) : 0
        try check(qk_minmax_f32(count, input, flags, &low, &high))
        return (low, high)
    }
}

// MARK: - int8 GEMM and quantized linear

extension Kernels {
    /// Packs int8 weights `[n, k]` (row-major). `scales` has 1 entry (per tensor) or `n` (per channel); `zeroPoints`
    /// as many. Returns the opaque C handle, owned by the caller (`destroyGEMMWeights`).
    static func createGEMMWeights(
        n: Int, k: Int, weights: UnsafePointer<Int8>?, perChannel: Bool, scales: UnsafePointer<Float>,
        zeroPoints: UnsafePointer<Int32>, bias: UnsafePointer<Float>?
    ) throws(QuantizationError) -> OpaquePointer {
        var handle: OpaquePointer?
        try check(qk_qs8_gemm_weights_create(n, k, weights, perChannel ? QK_QSCHEME_PER_CHANNEL : QK_QSCHEME_PER_TENSOR,
                                             scales, zeroPoints, bias, &handle))
        guard let handle else { throw .runtime("qk_qs8_gemm_weights_create returned no handle") }
        return handle
    }

    static func destroyGEMMWeights(_ handle: OpaquePointer) {
        qk_qs8_gemm_weights_destroy(handle)
    }

    static func gemmKernelName(_ handle: OpaquePointer, sevenBit: Bool) -> String {
        String(cString: qk_qs8_gemm_weights_kernel(handle, sevenBit ? 1 : 0))
    }

    static func gemmPackedBytes(_ handle: OpaquePointer) -> Int {
        qk_qs8_gemm_weights_packed_bytes(handle)
    }

    /// Requantized output; `aDType`/`yDType` are `.quint8` or `.qint8`. Rows are contiguous (stride K / N).
    static func gemmQuantized(
        _ handle: OpaquePointer, m: Int, aDType: QuantizedDType, a: UnsafeRawPointer, aScale: Float, aZeroPoint: Int32,
        yDType: QuantizedDType, y: UnsafeMutableRawPointer, yScale: Float, yZeroPoint: Int32, k: Int, n: Int,
        relu: Bool
    ) throws(QuantizationError) {
        try check(qk_qs8_gemm_q8(handle, m, cDType(aDType), a, k, aScale, aZeroPoint, cDType(yDType), y, n, yScale,
                                 yZeroPoint, relu ? UInt32(QK_GEMM_RELU) : 0))
    }

    /// Raw int32 accumulators `sum (a - za) * (w - zw)`.
    static func gemmAccumulators(
        _ handle: OpaquePointer, m: Int, aDType: QuantizedDType, a: UnsafeRawPointer, aZeroPoint: Int32,
        y: UnsafeMutablePointer<Int32>, k: Int, n: Int
    ) throws(QuantizationError) {
        try check(qk_qs8_gemm_s32(handle, m, cDType(aDType), a, k, aZeroPoint, y, n, 0))
    }

    static func dynamicLinear(
        _ handle: OpaquePointer, m: Int, x: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>, k: Int, n: Int,
        reduceRange: Bool, perRow: Bool, relu: Bool
    ) throws(QuantizationError) {
        var flags: UInt32 = 0
        if reduceRange { flags |= UInt32(QK_DYNAMIC_REDUCE_RANGE) }
        if perRow { flags |= UInt32(QK_DYNAMIC_PER_ROW) }
        if relu { flags |= UInt32(QK_GEMM_RELU) }
        try check(qk_dynamic_linear_f32(handle, m, x, k, y, n, flags))
    }

    static func dynamicQuantizationParameters(min: Float, max: Float, reduceRange: Bool)
        throws(QuantizationError) -> (scale: Float, zeroPoint: Int32)
    {
        var scale: Float = 0
        var zeroPoint: Int32 = 0
        try check(qk_dynamic_qparams(min, max, reduceRange ? UInt32(QK_DYNAMIC_REDUCE_RANGE) : 0, &scale, &zeroPoint))
        return (scale, zeroPoint)
    }
}

/// A tensor viewed as `[outer, channels, inner]` (row-major) around a quantization axis, as the C API wants it.
struct ChannelView: Equatable {
    var outer: Int
    var channels: Int
    var inner: Int

    /// `axis` must already be normalised into `0..<shape.count`, and the shape's element count must not overflow.
    init(shape: [Int], axis: Int) {
        outer = shape[..<axis].reduce(1, *)
        channels = shape[axis]
        inner = shape[(axis + 1)...].reduce(1, *)
    }
}

// MARK: - half-precision GEMM

extension Kernels {
    private static func cHalfType(_ precision: HalfPrecision) -> qk_half_type {
        switch precision {
        case .float16: return QK_HALF_FP16
        case .bfloat16: return QK_HALF_BF16
        }
    }

    private static func halfFlags(relu: Bool, fp16Arithmetic: Bool) -> UInt32 {
        (relu ? UInt32(QK_GEMM_RELU) : 0) | (fp16Arithmetic ? UInt32(QK_HALF_GEMM_FP16_ARITHMETIC) : 0)
    }

    /// Packs fp32 weights `[n, k]` (row-major), rounding them to `precision` (fp16: saturating to +-65504). Returns
    /// the opaque C handle, owned by the caller (`destroyHalfGEMMWeights`), and how many weights saturated.
    static func createHalfGEMMWeights(
        _ precision: HalfPrecision, n: Int, k: Int, weights: UnsafePointer<Float>, bias: UnsafePointer<Float>?
    ) throws(QuantizationError) -> (handle: OpaquePointer, saturated: Int) {
        var handle: OpaquePointer?
        var saturated = 0
        try check(qk_half_gemm_weights_create(cHalfType(precision), n, k, weights, bias, &saturated, &handle))
        guard let handle else { throw .runtime("qk_half_gemm_weights_create returned no handle") }
        return (handle, saturated)
    }

    /// The same from weights already rounded: `weights` holds `n * k` 16-bit patterns of `precision`.
    static func createHalfGEMMWeights(
        _ precision: HalfPrecision, n: Int, k: Int, bits weights: UnsafeRawPointer, bias: UnsafePointer<Float>?
    ) throws(QuantizationError) -> OpaquePointer {
        var handle: OpaquePointer?
        try check(qk_half_gemm_weights_create_from_half(cHalfType(precision), n, k,
                                                        weights.assumingMemoryBound(to: UInt16.self), bias,
                                                        &handle))
        guard let handle else { throw .runtime("qk_half_gemm_weights_create_from_half returned no handle") }
        return handle
    }

    static func destroyHalfGEMMWeights(_ handle: OpaquePointer) {
        qk_half_gemm_weights_destroy(handle)
    }

    static func halfGEMMKernelName(_ handle: OpaquePointer, fp16Arithmetic: Bool) -> String {
        String(cString: qk_half_gemm_weights_kernel(handle, halfFlags(relu: false, fp16Arithmetic: fp16Arithmetic)))
    }

    static func halfGEMMPackedBytes(_ handle: OpaquePointer) -> Int {
        qk_half_gemm_weights_packed_bytes(handle)
    }

    /// The rounded weights as `n * k` 16-bit patterns into `output`.
    static func copyHalfGEMMWeights(_ handle: OpaquePointer, to output: UnsafeMutableRawPointer)
        throws(QuantizationError)
    {
        try check(qk_half_gemm_weights_copy_half(handle, output.assumingMemoryBound(to: UInt16.self)))
    }

    /// `y [m, n] = x [m, k] w^T + bias`; rows are contiguous (stride k / n).
    static func halfGEMM(
        _ handle: OpaquePointer, m: Int, x: UnsafePointer<Float>?, y: UnsafeMutablePointer<Float>, k: Int, n: Int,
        relu: Bool, fp16Arithmetic: Bool
    ) throws(QuantizationError) {
        try check(qk_half_gemm_f32(handle, m, x, k, y, n, halfFlags(relu: relu, fp16Arithmetic: fp16Arithmetic)))
    }

    /// `count` fp32 values to 16-bit patterns of `precision` (round half to even; fp16 overflows to infinity).
    static func convert(count: Int, input: UnsafePointer<Float>, to precision: HalfPrecision,
                        output: UnsafeMutableRawPointer) throws(QuantizationError)
    {
        let bits = output.assumingMemoryBound(to: UInt16.self)
        switch precision {
        case .float16: try check(qk_f32_to_f16(count, input, bits))
        case .bfloat16: try check(qk_f32_to_bf16(count, input, bits))
        }
    }

    /// `count` 16-bit patterns of `precision` widened to fp32 (exact).
    static func convert(count: Int, bits input: UnsafeRawPointer, from precision: HalfPrecision,
                        output: UnsafeMutablePointer<Float>) throws(QuantizationError)
    {
        let bits = input.assumingMemoryBound(to: UInt16.self)
        switch precision {
        case .float16: try check(qk_f16_to_f32(count, bits, output))
        case .bfloat16: try check(qk_bf16_to_f32(count, bits, output))
        }
    }
}
