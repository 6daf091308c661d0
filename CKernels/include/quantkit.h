/*
 * quantkit.h: the C API of QuantKit's kernels.
 *
 * Only pointers, scalars, opaque handles and status codes cross this boundary: no intrinsic types, no macros that
 * depend on the ISA. Every entry point validates its arguments and returns a status; none aborts, prints or exits.
 * The fastest kernel the CPU supports is chosen once at first use (QUANTKIT_ISA may force a lower path).
 *
 * Numerics follow PyTorch 2.15 eager-mode quantization (x86/FBGEMM engine):
 *   quantize    q = clamp(zp + nearbyint(x * (1.0f / scale)), dtype min, dtype max), round half to even
 *   dequantize  y = (float(q) - float(zp)) * scale, no FMA
 *   requantize  y = clamp(nearbyint(float(acc) * multiplier) + zp, qmin, qmax), round half to even
 */
#ifndef QUANTKIT_H
#define QUANTKIT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QK_VERSION_MAJOR 0
#define QK_VERSION_MINOR 1
#define QK_VERSION_PATCH 0

/* ---------------------------------------------------------------------------------------------- status */

typedef enum qk_status {
    QK_OK = 0,
    QK_ERROR_INVALID_ARGUMENT = 1,   /* null pointer, bad size, scale, zero point, dtype or range */
    QK_ERROR_UNSUPPORTED_ISA = 2,    /* an ISA was requested that this CPU (or build) lacks */
    QK_ERROR_UNKNOWN_ISA = 3,        /* an ISA name that QuantKit does not know */
    QK_ERROR_OUT_OF_MEMORY = 4,
    QK_ERROR_OVERFLOW = 5,           /* a size computation would overflow */
} qk_status;

/* A static string naming the status ("invalid argument", ...). */
const char *qk_status_string(qk_status status);

/* The message of the last failure on the calling thread (thread-local; "" when none). It says what was wrong and
 * what was expected, e.g. "scale must be finite and > 0, got -1". Valid until the next failing call on the thread. */
const char *qk_last_error_message(void);

const char *qk_version_string(void);

/* ---------------------------------------------------------------------------------------------- runtime */

/* CPU features (bit mask). */
enum {
    QK_FEATURE_AVX2 = 1u << 0,        /* AVX2 + FMA + F16C, with OS support for ymm state */
    QK_FEATURE_AVX512 = 1u << 1,      /* AVX-512 F/BW/DQ/VL, with OS support for zmm and opmask state */
    QK_FEATURE_AVX512VNNI = 1u << 2,
    QK_FEATURE_AVXVNNI = 1u << 3,     /* VEX-encoded vpdpbusd on ymm */
    QK_FEATURE_AVX512BF16 = 1u << 4,
    QK_FEATURE_NEON = 1u << 8,
    QK_FEATURE_NEON_DOTPROD = 1u << 9,
    QK_FEATURE_NEON_FP16 = 1u << 10,  /* half-precision arithmetic (FEAT_FP16) */
    QK_FEATURE_NEON_I8MM = 1u << 11,
    QK_FEATURE_NEON_BF16 = 1u << 12,
};

/* Features of the CPU (and OS) this process runs on. */
uint32_t qk_cpu_features(void);

/* Writes a space-separated list of the CPU's feature names ("avx2+fma+f16c avx512f/bw/dq/vl avx512vnni",
 * "neon dotprod fp16", ...) into buf (always NUL-terminated when size > 0). Returns the length the full string needs,
 * without the NUL. */
size_t qk_cpu_feature_names(char *buf, size_t size);

/* Writes the CPU's name ("AMD EPYC 9R45", "Apple M2", ...; "unknown" when the system does not say) into buf, as
 * qk_cpu_feature_names does. */
size_t qk_cpu_name(char *buf, size_t size);

/* Initialises the kernel table (also done implicitly by the first kernel call), honouring QUANTKIT_ISA. Returns
 * QK_ERROR_UNKNOWN_ISA / QK_ERROR_UNSUPPORTED_ISA when QUANTKIT_ISA asks for something impossible; kernel calls then
 * fail with the same status until qk_set_isa succeeds. Thread-safe and idempotent. */
qk_status qk_runtime_init(void);

/* Selects the ISA level: "scalar", "avx2", "avxvnni", "avx512", "avx512vnni", "neon", "neondot", "neoni8mm", or
 * NULL / "" / "auto" for the best one. Fails (leaving the current choice) if the name is unknown or the CPU lacks it.
 * Not meant to race with running kernels: calls in flight finish on the table they started with. */
qk_status qk_set_isa(const char *name);

/* Name of the ISA level in use ("avx512vnni", "avx2", ...); "none" if initialisation failed. */
const char *qk_isa_name(void);

/* 1 if this CPU and build can run the named ISA level, else 0 (unknown names give 0). */
int qk_isa_supported(const char *name);

/* Threads. The backend is "openmp" when the library was compiled with -fopenmp, else "pthread" (a persistent pool).
 * The default count is QUANTKIT_NUM_THREADS, else (OpenMP) omp_get_max_threads() which honours OMP_NUM_THREADS,
 * else the number of online CPUs. Results are bit-identical for every thread count. */
const char *qk_thread_backend(void);
qk_status qk_set_num_threads(int num_threads);   /* 1..QK_MAX_THREADS; 0 restores the default */
int qk_get_num_threads(void);
#define QK_MAX_THREADS 256

/* ---------------------------------------------------------------------------------------------- quantize */

typedef enum qk_dtype {
    QK_DTYPE_QUINT8 = 0,   /* uint8_t,  [0, 255] */
    QK_DTYPE_QINT8 = 1,    /* int8_t,   [-128, 127] */
    QK_DTYPE_QINT32 = 2,   /* int32_t,  [-2^31, 2^31 - 1] */
} qk_dtype;

/* fp32 -> quantized, per tensor. y has n elements of dtype. scale finite and > 0, zero_point inside the dtype range.
 * NaN quantizes to the dtype minimum; +-inf saturate. */
qk_status qk_quantize_per_tensor(qk_dtype dtype, size_t n, const float *x, void *y, float scale, int32_t zero_point);

/* fp32 -> quantized, per channel. The tensor is viewed as [outer, channels, inner] (row-major) with the quantization
 * axis in the middle: for a tensor of shape s and axis a, outer = prod(s[0..<a]), channels = s[a],
 * inner = prod(s[a+1...]). scales and zero_points have `channels` entries. */
qk_status qk_quantize_per_channel(qk_dtype dtype, size_t outer, size_t channels, size_t inner, const float *x, void *y,
                                  const float *scales, const int32_t *zero_points);

qk_status qk_dequantize_per_tensor(qk_dtype dtype, size_t n, const void *q, float *y, float scale, int32_t zero_point);

qk_status qk_dequantize_per_channel(qk_dtype dtype, size_t outer, size_t channels, size_t inner, const void *q,
                                    float *y, const float *scales, const int32_t *zero_points);

/* int32 -> quint8 / qint8 with an fp32 multiplier (finite, > 0): y = clamp(nearbyint(acc * multiplier) + zero_point,
 * qmin, qmax). qmin <= qmax inside the output dtype's range (qmin = zero_point gives a fused ReLU). */
qk_status qk_requantize(qk_dtype out_dtype, size_t n, const int32_t *acc, void *y, float multiplier,
                        int32_t zero_point, int32_t qmin, int32_t qmax);

/* The same with one multiplier per channel; acc is viewed as [outer, channels, inner] as above. */
qk_status qk_requantize_per_channel(qk_dtype out_dtype, size_t outer, size_t channels, size_t inner,
                                    const int32_t *acc, void *y, const float *multipliers, int32_t zero_point,
                                    int32_t qmin, int32_t qmax);

/* ---------------------------------------------------------------------------------------------- fp16 */

/* IEEE binary16 values travel as their uint16_t bit patterns. Conversions round half to even, keep subnormals,
 * infinities and NaN (NaN stays NaN with its sign; the quiet bit is set). */
qk_status qk_f32_to_f16(size_t n, const float *x, uint16_t *y);
qk_status qk_f16_to_f32(size_t n, const uint16_t *x, float *y);

/* fp32 -> fp16 saturating to +-65504 as PyTorch does for fp16 weights: |x| > 65504 (infinities included) becomes
 * +-65504 and is counted in *saturated_count (may be NULL); NaN stays NaN. */
qk_status qk_f32_to_f16_saturate(size_t n, const float *x, uint16_t *y, size_t *saturated_count);

/* ---------------------------------------------------------------------------------------------- statistics */

enum {
    QK_MINMAX_FINITE_ONLY = 1u << 0,   /* skip +-inf as well as NaN */
};

/* Minimum and maximum of x. NaN is always skipped; with QK_MINMAX_FINITE_ONLY infinities are skipped too. When
 * nothing is left (n == 0 or every value skipped) *min_out = +inf and *max_out = -inf. */
qk_status qk_minmax_f32(size_t n, const float *x, uint32_t flags, float *min_out, float *max_out);

/* ---------------------------------------------------------------------------------- calibration statistics */

/*
 * The statistics behind PyTorch 2.15's observers (torch.ao.quantization.observer), so that calibration can run in C:
 * per-channel min/max, torch.histc, HistogramObserver's running histogram (re-binned when the range grows) and its
 * L2 range search, and two other ways to pick a range from the same histogram: ONNX Runtime's percentile and
 * TensorRT's entropy (KL divergence). A histogram state is `bins` fp32 masses over [min_val, max_val], or
 * (+inf, -inf) before anything was observed. Every function gives the same results on every ISA level and for
 * every thread count.
 */

/* Per-channel min/max (PerChannelMinMaxObserver's aminmax over all but the channel axis): x is viewed as
 * [outer, channels, inner] as for qk_quantize_per_channel; mins / maxs (channels entries) are overwritten. NaN is
 * skipped, infinities too with QK_MINMAX_FINITE_ONLY; a channel with nothing left gets +inf / -inf. */
qk_status qk_minmax_per_channel_f32(size_t outer, size_t channels, size_t inner, const float *x, uint32_t flags,
                                    float *mins, float *maxs);

enum {
    /* Bin |x| instead of x (ONNX Runtime's symmetric percentile, TensorRT's entropy); the range is [0, max |x|]. */
    QK_HISTOGRAM_ABSOLUTE = 1u << 0,
};

/*
 * torch.histc(x, bins, lo, hi) added to hist (bins floats), binned exactly as PyTorch's CPU kernel bins: x with
 * lo <= x <= hi goes to bin (int)(((x - lo) * (float)bins) / (hi - lo)) (fp32, in this order), x == hi to the last
 * bin; NaN and values outside [lo, hi] are not counted. lo == hi widens the range to [lo - 1, hi + 1] as torch.histc
 * does. Counts are exact and converted to fp32 once. lo, hi finite, lo <= hi, 1 <= bins <= 2^24.
 * flags: QK_HISTOGRAM_ABSOLUTE.
 */
qk_status qk_histogram_f32(size_t n, const float *x, float lo, float hi, size_t bins, uint32_t flags, float *hist);

/*
 * HistogramObserver.forward (PyTorch 2.15, upsample_rate 16 there) on the state (histogram[bins], *min_val,
 * *max_val): NaN and +-inf are dropped (PyTorch drops infinities and fails on NaN); nothing finite: no change. The
 * first batch sets the range to its own min/max; later batches are binned over the union of the ranges, and when it
 * grew the old histogram is re-binned into it: each bin split into upsample_rate sub-bins of equal mass whose
 * midpoints go to the new bins (a state holding a single value moves its whole mass to that value's bin). With
 * QK_HISTOGRAM_ABSOLUTE, |x| is binned over [0, max |x|]. *batch_min / *batch_max (may be NULL) receive the
 * batch's finite min/max of x (+inf / -inf when there is none); with both NULL, a batch inside the current range
 * (the usual case once calibration has seen a few batches) is binned in a single pass over x.
 */
qk_status qk_histogram_observe_f32(size_t n, const float *x, size_t bins, size_t upsample_rate, uint32_t flags,
                                   float *histogram, float *min_val, float *max_val, float *batch_min,
                                   float *batch_max);

/*
 * Merges `count` histogram states (same bins) into one over the union of their ranges (beyond PyTorch: calibration
 * split across threads or machines). Each state is re-binned into that range as qk_histogram_observe_f32 re-bins
 * (states already over it are taken as they are; empty ones are skipped) and the masses are added in array order,
 * so the result is deterministic; merging [a, b] gives what observing a's data and then b's does when b's range
 * contains a's. The output may alias an input.
 */
qk_status qk_histogram_merge_f32(size_t count, size_t bins, size_t upsample_rate, const float *const *histograms,
                                 const float *min_vals, const float *max_vals, float *histogram, float *min_val,
                                 float *max_val);

/*
 * HistogramObserver._non_linear_param_search: the range [*lo, *hi] (on bin edges) that minimises the expected L2
 * error of quantizing the histogram to dst_bins levels (2^bits of the dtype: 256 for 8 bits, also with reduce_range),
 * searched by trimming quantiles of 1e-5 from either end until the error grows. min_val <= max_val finite.
 */
qk_status qk_histogram_l2_range_f32(size_t bins, const float *histogram, float min_val, float max_val,
                                    double dst_bins, float *lo, float *hi);

/*
 * ONNX Runtime's percentile calibration (HistogramCollector.compute_percentile) on a histogram over
 * [min_val, max_val]: with QK_HISTOGRAM_ABSOLUTE (a histogram of |x|, ORT's symmetric mode) the range is
 * [-t, t] with t the left edge of the bin where the cdf reaches percentile / 100; without, the edges where it
 * reaches (100 - percentile) / 200 and 1 - (100 - percentile) / 200. The range is then clamped to the data's
 * [data_min, data_max], as ORT does. percentile in [0, 100].
 */
qk_status qk_histogram_percentile_range_f32(size_t bins, const float *histogram, float min_val, float max_val,
                                           double percentile, uint32_t flags, float data_min, float data_max,
                                           float *lo, float *hi);

/*
 * TensorRT's entropy calibration (as NVIDIA's pytorch-quantization implements it) on a histogram of |x| over
 * [0, max_val]: for every i >= start_bin (128 there) the first i bins, the rest added to the last one, against the
 * same bins merged into `levels` levels (128 for int8, 256 for unsigned data) and spread back evenly over their
 * non-zero bins; *amax is the right edge of the i with the smallest KL divergence (the last such i). Bin 0 is
 * replaced by bin 1 first (pytorch-quantization's guard against a spike of zeros). bins >= 2.
 */
qk_status qk_histogram_entropy_amax_f32(size_t bins, const float *histogram, float max_val, size_t levels,
                                        size_t start_bin, float *amax);

/* ---------------------------------------------------------------------------------------------- int8 GEMM */

/*
 * Quantized linear layers: y[m][n] from activations a [M, K] and int8 weights w [N, K] (PyTorch's Linear layout),
 *   raw[m][n] = sum_k (a[m][k] - za) * (w[n][k] - zw[n])          exact, in int32 (wrapping, as PyTorch)
 * then one of three output stages, bit for bit PyTorch's x86 (FBGEMM) numerics:
 *   int8 out   act_w_scale = a_scale * w_scale[n];  multiplier = act_w_scale / y_scale  (float)
 *              bias_term   = per tensor: bias[n] * (float)(1.0 / (double)act_w_scale); per channel:
 *                            bias[n] / act_w_scale (float division); no bias: 0
 *              y = clamp(nearbyint(((float)raw + bias_term) * multiplier) + y_zero_point, lo, hi), no FMA, where
 *              [lo, hi] is the output dtype's range, lo = y_zero_point with QK_GEMM_RELU
 *   fp32 out   y = fmaf((float)raw, a_scale * w_scale[n], bias[n])  (one fused multiply-add; bias 0 when absent),
 *              then max(y, 0) with QK_GEMM_RELU                        (dynamic quantization)
 *   int32 out  y = raw
 * Activations are quint8 (uint8_t) or qint8 (int8_t, the symmetric scheme of TFLite/XNNPACK); a has M rows of
 * a_stride >= K elements, y has M rows of y_stride >= N elements (any alignment). Results are the same on every
 * ISA level and for every thread count.
 */
typedef struct qk_qs8_gemm_weights qk_qs8_gemm_weights;

typedef enum qk_qscheme {
    QK_QSCHEME_PER_TENSOR = 0,    /* one scale and zero point for the whole weight matrix */
    QK_QSCHEME_PER_CHANNEL = 1,   /* one per output channel n (axis 0 of [N, K]) */
} qk_qscheme;

enum {
    QK_GEMM_RELU = 1u << 0,
    /* The caller guarantees every quint8 activation is <= 127 (7-bit, e.g. dynamic quantization with reduce_range):
     * AVX2 may then use its vpmaddubsw kernel, with identical results. Without the flag QuantKit checks the
     * activations itself when the problem is large enough to pay for it. A false guarantee gives unspecified
     * outputs (never out-of-bounds access). Ignored for qint8 activations. */
    QK_GEMM_ACTIVATIONS_7BIT = 1u << 1,
};

/*
 * Packs int8 weights [n, k] (row-major, row stride k) once. scales (finite, > 0) and zero_points (in [-128, 127];
 * NULL means all 0, symmetric) have 1 entry per tensor or n per channel; bias (fp32, n entries) may be NULL.
 * The handle is immutable and may be shared by threads. It is packed for the kernels of the ISA level in use; after
 * qk_set_isa it runs the new level's kernels when they share its packing layout, else the ones it was packed for.
 */
qk_status qk_qs8_gemm_weights_create(size_t n, size_t k, const int8_t *weights, qk_qscheme qscheme,
                                     const float *scales, const int32_t *zero_points, const float *bias,
                                     qk_qs8_gemm_weights **out);
void qk_qs8_gemm_weights_destroy(qk_qs8_gemm_weights *weights);   /* NULL is a no-op */

size_t qk_qs8_gemm_weights_n(const qk_qs8_gemm_weights *weights);              /* 0 for NULL */
size_t qk_qs8_gemm_weights_k(const qk_qs8_gemm_weights *weights);
size_t qk_qs8_gemm_weights_packed_bytes(const qk_qs8_gemm_weights *weights);
/* Name of the microkernel a run would use now ("qk_qu8_gemm_ukernel_6x8c4__avx2", ...), for activations known to
 * be 7-bit (seven_bit != 0) or not; "none" for NULL or when the runtime failed to initialise. */
const char *qk_qs8_gemm_weights_kernel(const qk_qs8_gemm_weights *weights, int seven_bit);

/* Requantized output: y_dtype QK_DTYPE_QUINT8 or QK_DTYPE_QINT8; flags: QK_GEMM_RELU, QK_GEMM_ACTIVATIONS_7BIT. */
qk_status qk_qs8_gemm_q8(const qk_qs8_gemm_weights *weights, size_t m, qk_dtype a_dtype, const void *a,
                         size_t a_stride, float a_scale, int32_t a_zero_point, qk_dtype y_dtype, void *y,
                         size_t y_stride, float y_scale, int32_t y_zero_point, uint32_t flags);

/* fp32 output (bias from the handle); flags: QK_GEMM_RELU, QK_GEMM_ACTIVATIONS_7BIT. */
qk_status qk_qs8_gemm_f32(const qk_qs8_gemm_weights *weights, size_t m, qk_dtype a_dtype, const void *a,
                          size_t a_stride, float a_scale, int32_t a_zero_point, float *y, size_t y_stride,
                          uint32_t flags);

/* int32 accumulators (no scales, no bias); flags: QK_GEMM_ACTIVATIONS_7BIT. */
qk_status qk_qs8_gemm_s32(const qk_qs8_gemm_weights *weights, size_t m, qk_dtype a_dtype, const void *a,
                          size_t a_stride, int32_t a_zero_point, int32_t *y, size_t y_stride, uint32_t flags);

/* ---------------------------------------------------------------------------------------------- dynamic quantization */

enum {
    /* Activation range [0, 127] instead of [0, 255] (PyTorch's reduce_range, the x86 default): 7-bit codes let AVX2
     * use its vpmaddubsw kernel. */
    QK_DYNAMIC_REDUCE_RANGE = 1u << 8,
    /* One scale and zero point per row of x (per token) instead of one for the whole input. Beyond PyTorch: keeps
     * the other rows accurate when one row holds outliers. Costs one extra pass over y (M x N). */
    QK_DYNAMIC_PER_ROW = 1u << 9,
};

/*
 * PyTorch's dynamic activation qparams (ATen quant_utils::ChooseQuantizationParams(min, max, 0, 255,
 * preserve_sparsity = false, force_scale_power_of_two = false, reduce_range)): the range is extended to contain 0,
 * scale = (float)(((double)max - min) / (qmax - qmin)) (0.1 when that is 0 or has an infinite reciprocal; raised to
 * 6.1e-5 with min/max rescaled when smaller), the zero point from min or max (ATen's error comparison, in double),
 * nearbyint, clamped to [qmin, qmax]. flags: QK_DYNAMIC_REDUCE_RANGE ([0, 127]). min = +inf, max = -inf (an empty
 * or all-NaN input) gives (0.1, 0); NaN or a non-finite extended range is an error.
 */
qk_status qk_dynamic_qparams(float min, float max, uint32_t flags, float *scale, int32_t *zero_point);

/*
 * Dynamic quantized linear, torch.ops.quantized.linear_dynamic on x86: x fp32 [m, K] (row stride x_stride >= K) ->
 * activation qparams from x's min/max (qk_dynamic_qparams; NaN skipped, an infinity is an error) -> quint8 (as
 * qk_quantize_per_tensor) -> y fp32 [m, N] (row stride y_stride >= N) = fmaf((float)raw, x_scale * w_scale[n],
 * bias[n]), then max(y, 0) with QK_GEMM_RELU. flags: QK_GEMM_RELU, QK_DYNAMIC_REDUCE_RANGE, QK_DYNAMIC_PER_ROW
 * (x_scale[m], za[m] per row). Uses a per-call buffer of m * K bytes. Same results on every ISA level and thread count.
 */
qk_status qk_dynamic_linear_f32(const qk_qs8_gemm_weights *weights, size_t m, const float *x, size_t x_stride,
                                float *y, size_t y_stride, uint32_t flags);

/* ---------------------------------------------------------------------------------------------- convolution */

/*
 * 2D convolution geometry. Tensors are NHWC (channels last) and dense: element (n, h, w, c) of an [N, H, W, C]
 * tensor is at ((n * H + h) * W + w) * C + c. Each output dimension is
 *   out = (in + pad_before + pad_after - dilation * (kernel - 1) - 1) / stride + 1
 * and output (oy, ox) reads input rows iy = oy * stride_h - pad_top + ky * dilation_h (columns likewise); taps that
 * fall in the padding read the input zero point (quantized) or 0 (fp32). kernel, stride and dilation must be >= 1,
 * in_h and in_w >= 1, and the dilated kernel must fit in the padded input; batch may be 0 (nothing to do).
 */
typedef struct qk_conv2d_geometry {
    size_t batch, in_h, in_w;
    size_t kernel_h, kernel_w;
    size_t stride_h, stride_w;
    size_t dilation_h, dilation_w;
    size_t pad_top, pad_left, pad_bottom, pad_right;
} qk_conv2d_geometry;

/* Output height and width of a geometry; fails (QK_ERROR_INVALID_ARGUMENT / QK_ERROR_OVERFLOW) when it is invalid. */
qk_status qk_conv2d_output_size(const qk_conv2d_geometry *geometry, size_t *out_h, size_t *out_w);

enum {
    QK_CONV_RELU = QK_GEMM_RELU,   /* the same bit: either name may be passed */
};

/*
 * Depthwise quantized convolution, PyTorch's quantized::conv2d with groups == in_channels on x86 (FBGEMM):
 * x [batch, in_h, in_w, channels] quint8 -> y [batch, out_h, out_w, channels * depth_multiplier] quint8, where
 * output channel o = c * depth_multiplier + j reads input channel c (PyTorch's group order), and
 *   raw[o] = sum_{ky, kx} (x[n][iy][ix][c] - x_zero_point) * (w[o][ky][kx] - zw[o])     exact, in int32
 * followed by the output stage of qk_qs8_gemm_q8 bit for bit: act_w_scale = x_scale * w_scale[o], multiplier =
 * act_w_scale / y_scale, bias term per tensor bias[o] * (float)(1.0 / (double)act_w_scale) or per channel
 * bias[o] / act_w_scale (float), y = clamp(nearbyint(((float)raw + bias_term) * multiplier) + y_zero_point, lo, 255),
 * lo = 0 or y_zero_point with QK_CONV_RELU, no FMA. Results are the same on every ISA level and thread count.
 * A depth multiplier > 1 costs a per-call copy of the input widened to channels * depth_multiplier.
 */
typedef struct qk_qs8_dwconv_weights qk_qs8_dwconv_weights;

/*
 * Packs int8 weights in PyTorch's order [channels * depth_multiplier, 1, kernel_h, kernel_w] (row-major) once, for
 * every kernel this CPU can run. scales (finite, > 0) and zero_points (in [-128, 127]; NULL means all 0, symmetric)
 * have 1 entry per tensor or channels * depth_multiplier per channel; bias (fp32, one per output channel) may be
 * NULL. The handle is immutable and may be shared by threads.
 */
qk_status qk_qs8_dwconv_weights_create(size_t channels, size_t depth_multiplier, size_t kernel_h, size_t kernel_w,
                                       const int8_t *weights, qk_qscheme qscheme, const float *scales,
                                       const int32_t *zero_points, const float *bias, qk_qs8_dwconv_weights **out);
void qk_qs8_dwconv_weights_destroy(qk_qs8_dwconv_weights *weights);   /* NULL is a no-op */

size_t qk_qs8_dwconv_weights_channels(const qk_qs8_dwconv_weights *weights);           /* input channels; 0 for NULL */
size_t qk_qs8_dwconv_weights_depth_multiplier(const qk_qs8_dwconv_weights *weights);
size_t qk_qs8_dwconv_weights_kernel_h(const qk_qs8_dwconv_weights *weights);
size_t qk_qs8_dwconv_weights_kernel_w(const qk_qs8_dwconv_weights *weights);
size_t qk_qs8_dwconv_weights_packed_bytes(const qk_qs8_dwconv_weights *weights);
/* Name of the microkernel a run would use now ("qk_qu8_dwconv_ukernel_9p32c__avx2", ...); "none" for NULL or when
 * the runtime failed to initialise. */
const char *qk_qs8_dwconv_weights_kernel(const qk_qs8_dwconv_weights *weights);

/* x and y NHWC as above (any alignment); geometry's kernel size must be the handle's. x_scale, y_scale finite > 0,
 * zero points in [0, 255]. flags: QK_CONV_RELU. */
qk_status qk_qs8_dwconv_q8(const qk_qs8_dwconv_weights *weights, const qk_conv2d_geometry *geometry,
                           const uint8_t *x, float x_scale, int32_t x_zero_point, uint8_t *y, float y_scale,
                           int32_t y_zero_point, uint32_t flags);

/*
 * fp32 depthwise convolution (float models, QAT): the same layout and channel order,
 *   y[o] = bias[o] + sum_{ky, kx} x[n][iy][ix][c] * w[o][ky][kx]      (padded taps add 0 * w)
 * then y < 0 ? 0 : y with QK_CONV_RELU (NaN stays NaN). fp32 products and accumulation; the order of the additions
 * and the use of FMA are the kernel's, so ISA levels agree to rounding, |y - exact| <= (taps + 2) * 2^-23 *
 * (sum |x w| + |bias|), not bit for bit; for one kernel the results do not depend on the thread count.
 */
typedef struct qk_f32_dwconv_weights qk_f32_dwconv_weights;

/* weights [channels * depth_multiplier, 1, kernel_h, kernel_w] fp32 (PyTorch's order); bias one per output channel
 * or NULL. */
qk_status qk_f32_dwconv_weights_create(size_t channels, size_t depth_multiplier, size_t kernel_h, size_t kernel_w,
                                       const float *weights, const float *bias, qk_f32_dwconv_weights **out);
void qk_f32_dwconv_weights_destroy(qk_f32_dwconv_weights *weights);   /* NULL is a no-op */

size_t qk_f32_dwconv_weights_channels(const qk_f32_dwconv_weights *weights);           /* input channels; 0 for NULL */
size_t qk_f32_dwconv_weights_depth_multiplier(const qk_f32_dwconv_weights *weights);
size_t qk_f32_dwconv_weights_kernel_h(const qk_f32_dwconv_weights *weights);
size_t qk_f32_dwconv_weights_kernel_w(const qk_f32_dwconv_weights *weights);
size_t qk_f32_dwconv_weights_packed_bytes(const qk_f32_dwconv_weights *weights);
const char *qk_f32_dwconv_weights_kernel(const qk_f32_dwconv_weights *weights);

/* flags: QK_CONV_RELU. */
qk_status qk_f32_dwconv(const qk_f32_dwconv_weights *weights, const qk_conv2d_geometry *geometry, const float *x,
                        float *y, uint32_t flags);

/*
 * Quantized convolution with any groups, PyTorch's quantized::conv2d on x86 (FBGEMM): x [batch, in_h, in_w,
 * in_channels] quint8 -> y [batch, out_h, out_w, out_channels] quint8 (NHWC as above). With icg = in_channels /
 * groups and ocg = out_channels / groups, output channel o belongs to group g = o / ocg and reads input channels
 * [g * icg, (g + 1) * icg):
 *   raw[o] = sum_{c < icg, ky, kx} (x[n][iy][ix][g * icg + c] - x_zero_point) * (w[o][c][ky][kx] - zw[o])  (int32)
 * followed by the output stage of qk_qs8_dwconv_q8 (that of qk_qs8_gemm_q8) bit for bit. groups == in_channels > 1
 * runs the depthwise kernels (qk_qs8_dwconv_*); other convolutions (one input channel included) run the int8 GEMM
 * once per group: on x itself for 1x1
 * kernels with stride 1 and no padding, else on im2col rows made chunk by chunk in a per-call buffer of a few MB.
 * Results are the same on every ISA level and thread count.
 */
typedef struct qk_qs8_conv2d_weights qk_qs8_conv2d_weights;

/*
 * Packs int8 weights in PyTorch's order [out_channels, in_channels / groups, kernel_h, kernel_w] (row-major) once.
 * groups (>= 1) must divide in_channels and out_channels. scales (finite, > 0) and zero_points (in [-128, 127]; NULL
 * means all 0, symmetric) have 1 entry per tensor or out_channels per channel (PyTorch's axis 0); bias (fp32,
 * out_channels entries) may be NULL. The handle is immutable and may be shared by threads; like the GEMM handle it
 * runs the kernels of the ISA level in use when they share its packing layout.
 */
qk_status qk_qs8_conv2d_weights_create(size_t in_channels, size_t out_channels, size_t groups, size_t kernel_h,
                                       size_t kernel_w, const int8_t *weights, qk_qscheme qscheme,
                                       const float *scales, const int32_t *zero_points, const float *bias,
                                       qk_qs8_conv2d_weights **out);
void qk_qs8_conv2d_weights_destroy(qk_qs8_conv2d_weights *weights);   /* NULL is a no-op */

size_t qk_qs8_conv2d_weights_in_channels(const qk_qs8_conv2d_weights *weights);    /* 0 for NULL */
size_t qk_qs8_conv2d_weights_out_channels(const qk_qs8_conv2d_weights *weights);
size_t qk_qs8_conv2d_weights_groups(const qk_qs8_conv2d_weights *weights);
size_t qk_qs8_conv2d_weights_kernel_h(const qk_qs8_conv2d_weights *weights);
size_t qk_qs8_conv2d_weights_kernel_w(const qk_qs8_conv2d_weights *weights);
size_t qk_qs8_conv2d_weights_packed_bytes(const qk_qs8_conv2d_weights *weights);
/* The path and microkernel a run would use now: "depthwise qk_qu8_dwconv_ukernel_9p32c__avx2", "1x1 gemm qk_..."
 * (1x1 kernels: x read in place, or its pixels gathered when strided or padded), "im2col gemm qk_..." (the GEMM
 * kernel for 8-bit activations; when every input and x_zero_point are <= 127 AVX2 runs its 7-bit kernel instead,
 * with identical results); "none" for NULL or when the runtime failed to initialise. */
const char *qk_qs8_conv2d_weights_kernel(const qk_qs8_conv2d_weights *weights);

/* x and y NHWC as above (any alignment); geometry's kernel size must be the handle's. x_scale, y_scale finite > 0,
 * zero points in [0, 255]. flags: QK_CONV_RELU. */
qk_status qk_qs8_conv2d_q8(const qk_qs8_conv2d_weights *weights, const qk_conv2d_geometry *geometry,
                           const uint8_t *x, float x_scale, int32_t x_zero_point, uint8_t *y, float y_scale,
                           int32_t y_zero_point, uint32_t flags);

/* ---------------------------------------------------------------------------------------------- half-precision GEMM */

/*
 * Mixed-precision linear layers (PyTorch's float16_dynamic_qconfig, FBGEMM's FbgemmFP16): weights w [N, K] stored in
 * a 16-bit float type, activations and outputs fp32,
 *   y[m][n] = sum_k x[m][k] * w[n][k] + bias[n]     fp32 products and fp32 accumulation
 * then y < 0 ? 0 : y with QK_GEMM_RELU (NaN stays NaN, as torch.relu). The order of the fp32 additions depends on
 * the kernel, so ISA levels agree to rounding (a few ulp of sum |x w|), not bit for bit; for one kernel the results
 * do not depend on the thread count.
 *   QK_HALF_FP16  IEEE binary16 weights; activations stay fp32.
 *   QK_HALF_BF16  bfloat16 weights and activations (x rounded to bf16, round half to even, NaN kept quiet); products
 *                 of two bf16 values are exact in fp32, so only the accumulation rounds. AVX512-BF16 (vdpbf16ps) and
 *                 ARM BF16 (BFDOT) treat bf16 subnormals as zero; other paths keep them.
 */
typedef struct qk_half_gemm_weights qk_half_gemm_weights;

typedef enum qk_half_type {
    QK_HALF_FP16 = 0,
    QK_HALF_BF16 = 1,
} qk_half_type;

enum {
    /* Opt-in fast fp16 mode for QK_HALF_FP16 on CPUs with half-precision arithmetic (ARMv8.2 FP16): activations
     * rounded to fp16 and fp16 multiply-accumulate (XNNPACK's f16 GEMM). Relative error grows to about K * 2^-11 of
     * sum |x w|, and sums beyond 65504 overflow to infinity. Ignored where the CPU lacks fp16 arithmetic and for bf16
     * weights. */
    QK_HALF_GEMM_FP16_ARITHMETIC = 1u << 4,
};

/*
 * Packs fp32 weights [n, k] (row-major, row stride k) once, rounded to the half type with round half to even. For
 * fp16 values beyond the range (|w| > 65504, infinities included) saturate to +-65504, as PyTorch's fp16 prepack
 * does, and are counted in *saturated_count (may be NULL; always 0 for bf16, whose range is fp32's). NaN stays NaN.
 * bias (fp32, n entries) may be NULL. The handle is immutable and may be shared by threads; like the int8 handle it
 * runs the kernels of the ISA level in use when they share its packing layout, else the ones it was packed for.
 */
qk_status qk_half_gemm_weights_create(qk_half_type type, size_t n, size_t k, const float *weights, const float *bias,
                                      size_t *saturated_count, qk_half_gemm_weights **out);
/* The same from weights already in the half type (uint16_t bit patterns, [n, k] row-major), e.g. read from a file. */
qk_status qk_half_gemm_weights_create_from_half(qk_half_type type, size_t n, size_t k, const uint16_t *weights,
                                                const float *bias, qk_half_gemm_weights **out);
void qk_half_gemm_weights_destroy(qk_half_gemm_weights *weights);   /* NULL is a no-op */

qk_half_type qk_half_gemm_weights_type(const qk_half_gemm_weights *weights);   /* QK_HALF_FP16 for NULL */
size_t qk_half_gemm_weights_n(const qk_half_gemm_weights *weights);           /* 0 for NULL */
size_t qk_half_gemm_weights_k(const qk_half_gemm_weights *weights);
size_t qk_half_gemm_weights_packed_bytes(const qk_half_gemm_weights *weights);
/* The rounded weights back as bit patterns [n, k] (n * k values), for saving a model. */
qk_status qk_half_gemm_weights_copy_half(const qk_half_gemm_weights *weights, uint16_t *out);
/* The bias (n floats) into out; returns 0 when the handle has none (out untouched), 1 otherwise. */
int qk_half_gemm_weights_copy_bias(const qk_half_gemm_weights *weights, float *out);
/* Name of the microkernel a run with these flags would use now; "none" for NULL or a failed runtime. */
const char *qk_half_gemm_weights_kernel(const qk_half_gemm_weights *weights, uint32_t flags);

/* y [m, N] (row stride y_stride >= N) from x [m, K] (row stride x_stride >= K), any alignment.
 * flags: QK_GEMM_RELU, QK_HALF_GEMM_FP16_ARITHMETIC. */
qk_status qk_half_gemm_f32(const qk_half_gemm_weights *weights, size_t m, const float *x, size_t x_stride, float *y,
                           size_t y_stride, uint32_t flags);

/* bfloat16 <-> fp32 (bit patterns): round half to even, subnormals kept, NaN stays NaN with the quiet bit set;
 * bf16 -> fp32 is exact. */
qk_status qk_f32_to_bf16(size_t n, const float *x, uint16_t *y);
qk_status qk_bf16_to_f32(size_t n, const uint16_t *x, float *y);

/* ---------------------------------------------------------------------------------------------- fake quantization */

/*
 * Fake quantization for quantization-aware training: PyTorch 2.15's CPU kernels bit for bit, fp32 in and out.
 *   forward   qf   = zero_point + nearbyint(x * (1.0f / scale))        (round half to even)
 *             y    = (clamp(qf, quant_min, quant_max) - zero_point) * scale
 *             mask = quant_min <= qf <= quant_max                      (one byte, 0 or 1, per element)
 *             NaN gives y = (quant_min - zero_point) * scale and mask 0; +-inf clamp to the bounds with mask 0.
 *             (PyTorch's per-channel kernel converts qf to int64 first, so on x86 it sends |qf| >= 2^63, infinities
 *             included, to quant_min; its per-tensor kernel and QuantKit clamp them to their own side.)
 *   backward  grad_x = grad_y * mask (the straight-through estimator: the mask is taken on the rounded value; a
 *             negative grad_y outside the range gives -0.0, as PyTorch's dY * mask).
 * quant_min <= zero_point <= quant_max, all within +-2^23 (every integer range up to 16 bits; the float arithmetic is
 * then exact); scale finite and > 0 with a finite reciprocal. mask may be NULL when no backward follows. Results are
 * the same on every ISA level and for every thread count. Per channel, tensors are viewed as [outer, channels, inner]
 * as for qk_quantize_per_channel.
 */
qk_status qk_fake_quantize_per_tensor_f32(size_t n, const float *x, float *y, uint8_t *mask, float scale,
                                          int32_t zero_point, int32_t quant_min, int32_t quant_max);
qk_status qk_fake_quantize_per_channel_f32(size_t outer, size_t channels, size_t inner, const float *x, float *y,
                                           uint8_t *mask, const float *scales, const int32_t *zero_points,
                                           int32_t quant_min, int32_t quant_max);
qk_status qk_fake_quantize_backward_f32(size_t n, const float *grad_y, const uint8_t *mask, float *grad_x);

/*
 * Learnable fake quantization (LSQ; torch._fake_quantize_learnable_per_{tensor,channel}_affine): scale and zero point
 * are trained floats. The forward is the one above with the zero point rounded as PyTorch does: per tensor
 * clamp(nearbyint(zero_point)), per channel clamp(round(zero_point)). The backward rounds differently, as PyTorch:
 * per tensor trunc(clamp(zero_point + 0.5f)) (2.5 -> 3, -68.5 -> -68), per channel clamp(round(zero_point)). With
 * that zero point z and g = grad_factor, each element has
 *   xq = nearbyint(z + x * (1.0f / scale))
 *   qmin <= xq <= qmax:  grad_x = grad_y, grad_scale += ((grad_y * ((xq - z) * scale - x)) / scale) * g
 *                        (multiplied by the reciprocal), grad_zero_point += 0
 *   xq < qmin (or NaN):  grad_x = grad_y * 0, grad_scale += (grad_y * (qmin - z)) * g,
 *                        grad_zero_point += (-grad_y * scale) * g
 *   xq > qmax:           the same with qmax.
 * (PyTorch converts xq to int64, so on x86 it counts |xq| >= 2^63, infinities included, as below quant_min; QuantKit
 * counts them on their own side.) The learnable backward needs quant_min <= 0 <= quant_max and a finite grad_factor.
 * grad_scale and grad_zero_point are summed in double in an order fixed by the shape alone (see
 * operators/fake-quantize.c), so they are the same on every ISA level and thread count; PyTorch sums in float, so the
 * two agree to float rounding of the sum. An empty tensor gives zero gradients.
 */
qk_status qk_fake_quantize_learnable_per_tensor_f32(size_t n, const float *x, float *y, uint8_t *mask, float scale,
                                                    float zero_point, int32_t quant_min, int32_t quant_max);
qk_status qk_fake_quantize_learnable_per_tensor_backward_f32(size_t n, const float *x, const float *grad_y,
                                                             float *grad_x, float scale, float zero_point,
                                                             int32_t quant_min, int32_t quant_max, float grad_factor,
                                                             float *grad_scale, float *grad_zero_point);
qk_status qk_fake_quantize_learnable_per_channel_f32(size_t outer, size_t channels, size_t inner, const float *x,
                                                     float *y, uint8_t *mask, const float *scales,
                                                     const float *zero_points, int32_t quant_min, int32_t quant_max);
/* grad_scales and grad_zero_points have `channels` entries. */
qk_status qk_fake_quantize_learnable_per_channel_backward_f32(size_t outer, size_t channels, size_t inner,
                                                              const float *x, const float *grad_y, float *grad_x,
                                                              const float *scales, const float *zero_points,
                                                              int32_t quant_min, int32_t quant_max, float grad_factor,
                                                              float *grad_scales, float *grad_zero_points);

enum {
    QK_FAKE_QUANT_SYMMETRIC = 1u << 0,   /* preserve sparsity: a symmetric qscheme */
};

/*
 * The qparams of torch.fused_moving_avg_obs_fake_quant (FusedMovingAvgObsFakeQuantize, the x86 QAT default):
 * fbgemm::ChooseQuantizationParams(min, max, quant_min, quant_max, preserve_sparsity = QK_FAKE_QUANT_SYMMETRIC),
 * statement for statement. For a symmetric scheme with min < 0 < max the range becomes m * [-(w / 2 + 1), w / 2]
 * with w = quant_max - quant_min and m = max(|min| / (w / 2 + 1), max / (w / 2)), and the zero point
 * nearbyint((quant_min + quant_max) / 2.0); otherwise the range is extended to contain 0, scale =
 * (float)(((double)max - min) / w) (0.1 when 0; raised to 6.1e-5 with the range rescaled when smaller), and the zero
 * point is taken from min or max (FBGEMM's error comparison, in double), nearbyint, clamped. This differs from the
 * observers' formula (e.g. int8 symmetric: max(|min| / 128, max / 127) instead of max(|min|, max) / 127.5).
 * min = +inf, max = -inf (nothing observed) gives scale 0.1; NaN or a non-finite extended range is an error.
 */
qk_status qk_fake_quant_choose_qparams(float min, float max, int32_t quant_min, int32_t quant_max, uint32_t flags,
                                       float *scale, int32_t *zero_point);

#ifdef __cplusplus
}
#endif

#endif /* QUANTKIT_H */
