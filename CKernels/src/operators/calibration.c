/*
 * Calibration statistics: per-channel min/max, torch.histc, and the histogram observers of PyTorch 2.15
 * (HistogramObserver's running histogram and its L2 range search) plus ONNX Runtime's percentile and TensorRT's
 * entropy (KL divergence) range choices, all on the same histogram.
 *
 * PyTorch computes these with fp32 tensor operations; every fp32 step below is one of its operations, in its order,
 * so that the bins, the re-binned masses and the error terms are its values. Only sums it takes with a vectorised
 * fp32 reduction are taken here in double (results differ from PyTorch only where two candidate errors are equal
 * to about 1e-7).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qk_internal.h"
#include "qk_kernels.h"

/* The fp32 steps must stay separate operations (clang contracts a * b + c into FMA by default). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define QK_HIST_MIN_TILE ((size_t)1 << 16)   /* per-channel min/max */
#define QK_HIST_PASS_TILE ((size_t)1 << 17)  /* histogram passes: each tile also zeroes and sums its counters */
#define QK_HIST_MAX_TILE ((size_t)1 << 30)   /* keeps each way's uint32 counters from overflowing */
#define QK_HIST_TILES 16
#define QK_MAX_UPSAMPLE ((size_t)1 << 10)

static int is_uninitialized(float mn, float mx) { return mn == INFINITY && mx == -INFINITY; }

/* A histogram state is uninitialised (+inf, -inf) or a finite range min <= max. */
static qk_status check_state(float mn, float mx, const char *what) {
    if (is_uninitialized(mn, mx) || (isfinite(mn) && isfinite(mx) && mn <= mx)) return QK_OK;
    return qk_fail(QK_ERROR_INVALID_ARGUMENT, "%s: min_val %g and max_val %g are neither +inf and -inf (nothing "
                   "observed) nor a finite range with min_val <= max_val", what, (double)mn, (double)mx);
}

static qk_status check_bins(size_t bins, const char *what) {
    if (bins >= 1 && bins <= QK_HISTOGRAM_MAX_BINS) return QK_OK;
    return qk_fail(QK_ERROR_INVALID_ARGUMENT, "%s: bins must be in 1...%zu, got %zu", what, QK_HISTOGRAM_MAX_BINS,
                   bins);
}

static qk_status check_histogram(size_t bins, const float *h, const char *what) {
    for (size_t i = 0; i < bins; i++)
        if (!(h[i] >= 0 && h[i] < INFINITY))
            return qk_fail(QK_ERROR_INVALID_ARGUMENT, "%s: histogram[%zu] = %g; expected finite counts >= 0", what, i,
                           (double)h[i]);
    return QK_OK;
}

/* torch.histc's outer edges: equal ends widen to [lo - 1, hi + 1] (in double, then fp32). Where fp32 cannot tell
 * lo - 1 from lo (|lo| >= 2^24; PyTorch then divides by zero) the neighbouring floats are used instead. */
static void histc_edges(float lo, float hi, float *left, float *right) {
    if (lo != hi) {
        *left = lo;
        *right = hi;
        return;
    }
    float l = (float)((double)lo - 1.0), r = (float)((double)hi + 1.0);
    if (!(l < r)) {
        l = nextafterf(lo, -INFINITY);
        r = nextafterf(hi, INFINITY);
        if (isinf(l)) l = lo;
        if (isinf(r)) r = hi;
    }
    *left = l;
    *right = r;
}

/* The bin of one value, as the kernels compute it (v inside [left, right]). */
static size_t histc_bin(float v, float left, float right, size_t bins) {
    const float nb = (float)bins;
    const float t = ((v - left) * nb) / (right - left);
    return t < nb ? (size_t)t : bins - 1;
}

/* Edge i of torch.linspace(start, end, steps) in fp32 (RangeFactoriesKernel.cpp, element by element): the first
 * half counts up from start, the second half down from end, so both ends are exact. */
static float linspace_at(float start, float end, float step, size_t steps, size_t i) {
    return i < steps / 2 ? start + step * (float)i : end - step * (float)(steps - i - 1);
}

/* ------------------------------------------------------------------------------------------ histogram pass */

typedef struct hist_pass {
    const qk_kernel_table *k;
    const float *x;
    size_t tile;
    float lo, hi;
    uint32_t bins;
    int absolute, minmax;
    uint32_t *counts;     /* per tile: QK_HISTOGRAM_WAYS * (bins + 1) */
    float *mins, *maxs;   /* per tile */
} hist_pass;

static void hist_tile(void *ctx, size_t b, size_t e) {
    const hist_pass *o = ctx;
    const size_t t = b / o->tile, per_tile = QK_HISTOGRAM_WAYS * ((size_t)o->bins + 1);
    uint32_t *c = o->counts + t * per_tile;
    memset(c, 0, per_tile * sizeof *c);
    o->mins[t] = INFINITY;
    o->maxs[t] = -INFINITY;
    o->k->f32_histogram(e - b, o->x + b, o->lo, o->hi, o->bins, o->absolute, c, o->minmax ? &o->mins[t] : NULL,
                        o->minmax ? &o->maxs[t] : NULL);
}

/*
 * Bins x over [lo, hi] (lo < hi, finite) into counts[bins] (exact), counts the elements left out (NaN, infinities,
 * values outside) into *skipped, and, when mn is not NULL, folds x's finite min/max into *mn / *mx. Tiles are sized
 * from n alone and counts are integers, so the result does not depend on the thread count.
 */
static qk_status histogram_pass(const qk_kernel_table *k, size_t n, const float *x, float lo, float hi, size_t bins,
                                int absolute, uint64_t *counts, uint64_t *skipped, float *mn, float *mx) {
    size_t tiles = (n + QK_HIST_PASS_TILE - 1) / QK_HIST_PASS_TILE;
    if (tiles > QK_HIST_TILES) tiles = QK_HIST_TILES;
    if (tiles == 0) tiles = 1;
    size_t tile = (n + tiles - 1) / tiles;
    tile = (tile + 63) & ~(size_t)63;
    if (tile > QK_HIST_MAX_TILE) tile = QK_HIST_MAX_TILE;
    if (tile == 0) tile = 64;
    tiles = (n + tile - 1) / tile;
    if (tiles == 0) tiles = 1;
    const size_t per_tile = QK_HISTOGRAM_WAYS * (bins + 1);
    size_t words;
    if (!qk_mul_size(tiles, per_tile, &words))
        return qk_fail(QK_ERROR_OVERFLOW, "histogram scratch of %zu tiles overflows", tiles);
    uint32_t *scratch = malloc(words * sizeof *scratch);
    float *mm = malloc(2 * tiles * sizeof *mm);
    if (!scratch || !mm) {
        free(scratch);
        free(mm);
        return qk_fail(QK_ERROR_OUT_OF_MEMORY, "no memory for %zu histogram counters", words);
    }
    hist_pass o = {k, x, tile, lo, hi, (uint32_t)bins, absolute, mn != NULL, scratch, mm, mm + tiles};
    if (n == 0) {
        memset(scratch, 0, per_tile * sizeof *scratch);
        mm[0] = INFINITY;
        mm[tiles] = -INFINITY;
    } else if (tiles == 1) {
        hist_tile(&o, 0, n);
    } else {
        qk_parallel_for_1d(n, tile, hist_tile, &o);
    }
    for (size_t b = 0; b < bins; b++) counts[b] = 0;
    *skipped = 0;
    for (size_t t = 0; t < tiles; t++) {
        /* A tile's ways add up to at most its size (< 2^30): summed in uint32 first, which vectorises. */
        uint32_t *c0 = scratch + t * per_tile;
        for (size_t w = 1; w < QK_HISTOGRAM_WAYS; w++) {
            const uint32_t *c = c0 + w * (bins + 1);
            for (size_t b = 0; b <= bins; b++) c0[b] += c[b];
        }
        for (size_t b = 0; b < bins; b++) counts[b] += c0[b];
        *skipped += c0[bins];
        if (mn) {
            *mn = mm[t] < *mn ? mm[t] : *mn;
            *mx = mm[tiles + t] > *mx ? mm[tiles + t] : *mx;
        }
    }
    free(scratch);
    free(mm);
    return QK_OK;
}

qk_status qk_histogram_f32(size_t n, const float *x, float lo, float hi, size_t bins, uint32_t flags, float *hist) {
    const qk_kernel_table *k = qk_kernels();
    if (!k) return qk_runtime_init();
    if (!hist || (n && !x)) return qk_fail(QK_ERROR_INVALID_ARGUMENT, "null pointer passed to qk_histogram_f32");
    if (flags & ~(uint32_t)QK_HISTOGRAM_ABSOLUTE)
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "unknown histogram flags 0x%x", (unsigned)flags);
    qk_status s = check_bins(bins, "qk_histogram_f32");
    if (s != QK_OK) return s;
    if (!(isfinite(lo) && isfinite(hi) && lo <= hi))
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "qk_histogram_f32: the range [%g, %g] must be finite with lo <= hi",
                       (double)lo, (double)hi);
    float left, right;
    uint64_t skipped;
    histc_edges(lo, hi, &left, &right);
    uint64_t *counts = malloc(bins * sizeof *counts);
    if (!counts) return qk_fail(QK_ERROR_OUT_OF_MEMORY, "no memory for %zu bins", bins);
    s = histogram_pass(k, n, x, left, right, bins, (flags & QK_HISTOGRAM_ABSOLUTE) != 0, counts, &skipped, NULL,
                       NULL);
    if (s == QK_OK)
        for (size_t b = 0; b < bins; b++) hist[b] += (float)(int64_t)counts[b];
    free(counts);
    return s;
}

/* ------------------------------------------------------------------------------------------ per-channel min/max */

typedef struct pc_runs {
    const qk_kernel_table *k;
    const float *x;
    size_t outer, channels, inner;
    int finite_only;
    float *mins, *maxs;
} pc_runs;

/* Channels [b, e): each channel's outer runs of `inner` contiguous values. */
static void pc_runs_task(void *ctx, size_t b, size_t e) {
    const pc_runs *o = ctx;
    for (size_t c = b; c < e; c++) {
        float lo = INFINITY, hi = -INFINITY;
        for (size_t r = 0; r < o->outer; r++)
            o->k->f32_minmax(o->inner, o->x + (r * o->channels + c) * o->inner, o->finite_only, &lo, &hi);
        o->mins[c] = lo;
        o->maxs[c] = hi;
    }
}

typedef struct pc_rows {
    const qk_kernel_table *k;
    const float *x;
    size_t row, rows_per_tile;   /* row = channels * inner elements */
    int finite_only;
    float *acc;                  /* per tile: row mins then row maxs */
} pc_rows;

/* Rows [b, e) folded element-wise into the tile's accumulators. */
static void pc_rows_task(void *ctx, size_t b, size_t e) {
    const pc_rows *o = ctx;
    float *lo = o->acc + (b / o->rows_per_tile) * 2 * o->row, *hi = lo + o->row;
    for (size_t i = 0; i < o->row; i++) {
        lo[i] = INFINITY;
        hi[i] = -INFINITY;
    }
    for (size_t r = b; r < e; r++) o->k->f32_vminmax(o->row, o->x + r * o->row, o->finite_only, lo, hi);
}

qk_status qk_minmax_per_channel_f32(size_t outer, size_t channels, size_t inner, const float *x, uint32_t flags,
                                    float *mins, float *maxs) {
    const qk_kernel_table *k = qk_kernels();
    if (!k) return qk_runtime_init();
    size_t row, n;
    if (!qk_mul_size(channels, inner, &row) || !qk_mul_size(row, outer, &n))
        return qk_fail(QK_ERROR_OVERFLOW, "[%zu, %zu, %zu] overflows size_t", outer, channels, inner);
    if ((channels && (!mins || !maxs)) || (n && !x))
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "null pointer passed to qk_minmax_per_channel_f32");
    if (flags & ~(uint32_t)QK_MINMAX_FINITE_ONLY)
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "unknown minmax flags 0x%x", (unsigned)flags);
    const int finite_only = (flags & QK_MINMAX_FINITE_ONLY) != 0;
    for (size_t c = 0; c < channels; c++) {
        mins[c] = INFINITY;
        maxs[c] = -INFINITY;
    }
    if (n == 0) return QK_OK;
    if (inner >= 16 || row > QK_HIST_MIN_TILE) {
        /* Long contiguous runs: the reduction kernel per run, channels in parallel. */
        size_t per_channel = outer * inner, tile = QK_HIST_MIN_TILE / per_channel;
        if (tile == 0) tile = 1;
        pc_runs o = {k, x, outer, channels, inner, finite_only, mins, maxs};
        qk_parallel_for_1d(channels, tile, pc_runs_task, &o);
        return QK_OK;
    }
    /* Short runs (e.g. the channel axis last): element-wise over whole rows, per tile of rows, then across tiles
     * (in tile order) and across each channel's inner positions. */
    size_t rows_per_tile = (QK_HIST_MIN_TILE + row - 1) / row;
    size_t tiles = (outer + rows_per_tile - 1) / rows_per_tile;
    if (tiles > QK_HIST_TILES) {
        tiles = QK_HIST_TILES;
        rows_per_tile = (outer + tiles - 1) / tiles;
        tiles = (outer + rows_per_tile - 1) / rows_per_tile;
    }
    float *acc = malloc(tiles * 2 * row * sizeof *acc);
    if (!acc) return qk_fail(QK_ERROR_OUT_OF_MEMORY, "no memory for %zu per-channel partial results", tiles * row);
    pc_rows o = {k, x, row, rows_per_tile, finite_only, acc};
    qk_parallel_for_1d(outer, rows_per_tile, pc_rows_task, &o);
    for (size_t t = 0; t < tiles; t++) {
        const float *lo = acc + t * 2 * row, *hi = lo + row;
        for (size_t c = 0; c < channels; c++)
            for (size_t i = 0; i < inner; i++) {
                const float l = lo[c * inner + i], h = hi[c * inner + i];
                mins[c] = l < mins[c] ? l : mins[c];
                maxs[c] = h > maxs[c] ? h : maxs[c];
            }
    }
    free(acc);
    return QK_OK;
}

/* ------------------------------------------------------------------------------------------ re-binning */

/*
 * HistogramObserver._upscale_histogram: every old bin is split into `up` sub-bins of mass hist / up, whose midpoints
 * linspace(old_min, old_max, bins * up + 1)[:-1] + bin_size / 2 go to the new bins
 * bucketize(mid, linspace(new_min, new_max, bins + 1), right=True) - 1, clamped to [0, bins - 1]; the masses are
 * added in sub-bin order (torch.bincount with fp32 weights). out (bins floats) is overwritten. edges: bins + 1.
 */
static void rebin(size_t bins, size_t up, const float *hist, float old_min, float old_max, float new_min,
                  float new_max, float *edges, float *out) {
    const size_t subs = bins * up;
    const float step = (old_max - old_min) / (float)subs;   /* linspace's step and bin_size are the same value */
    const float half = 0.5f * step;
    const float edge_step = (new_max - new_min) / (float)bins;
    for (size_t i = 0; i <= bins; i++) edges[i] = linspace_at(new_min, new_max, edge_step, bins + 1, i);
    for (size_t b = 0; b < bins; b++) out[b] = 0.0f;
    size_t k = 0;   /* edges[0 ..< k] <= mid: bucketize(right=True), kept by a walk since mid only grows */
    for (size_t j = 0; j < subs; j++) {
        const float mid = linspace_at(old_min, old_max, step, subs + 1, j) + half;
        while (k <= bins && edges[k] <= mid) k++;
        while (k > 0 && edges[k - 1] > mid) k--;
        const size_t b = k == 0 ? 0 : (k - 1 >= bins ? bins - 1 : k - 1);
        out[b] += hist[j / up] / (float)up;
    }
}

/* One observer state's histogram as mass over [new_min, new_max] (HistogramObserver._combine_histograms without the
 * update): the same bins when the range is the same, a one-bin spike of the total when the old range was a single
 * value, else re-binned. */
static void transform(size_t bins, size_t up, const float *hist, float mn, float mx, float new_min, float new_max,
                      float *edges, float *out) {
    if (mn == new_min && mx == new_max) {
        memcpy(out, hist, bins * sizeof *out);
    } else if (mn == mx) {
        double total = 0;
        for (size_t b = 0; b < bins; b++) total += hist[b];
        float left, right;
        histc_edges(new_min, new_max, &left, &right);
        const size_t at = histc_bin(mn, left, right, bins);
        for (size_t b = 0; b < bins; b++) out[b] = b == at ? (float)total : 0.0f;
    } else {
        rebin(bins, up, hist, mn, mx, new_min, new_max, edges, out);
    }
}

/* ------------------------------------------------------------------------------------------ observer update */

qk_status qk_histogram_observe_f32(size_t n, const float *x, size_t bins, size_t upsample_rate, uint32_t flags,
                                   float *histogram, float *min_val, float *max_val, float *batch_min,
                                   float *batch_max) {
    const qk_kernel_table *k = qk_kernels();
    if (!k) return qk_runtime_init();
    if (!histogram || !min_val || !max_val || (n && !x))
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "null pointer passed to qk_histogram_observe_f32");
    if (flags & ~(uint32_t)QK_HISTOGRAM_ABSOLUTE)
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "unknown histogram flags 0x%x", (unsigned)flags);
    qk_status s = check_bins(bins, "qk_histogram_observe_f32");
    if (s != QK_OK) return s;
    if (upsample_rate < 1 || upsample_rate > QK_MAX_UPSAMPLE)
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "upsample_rate must be in 1...%zu, got %zu", QK_MAX_UPSAMPLE,
                       upsample_rate);
    const float mn = *min_val, mx = *max_val;
    if ((s = check_state(mn, mx, "qk_histogram_observe_f32")) != QK_OK) return s;
    if (batch_min) *batch_min = INFINITY;
    if (batch_max) *batch_max = -INFINITY;
    if (n == 0) return QK_OK;

    const int absolute = (flags & QK_HISTOGRAM_ABSOLUTE) != 0, fresh = is_uninitialized(mn, mx);
    uint64_t *counts = malloc(bins * sizeof *counts), skipped = 0;
    if (!counts) return qk_fail(QK_ERROR_OUT_OF_MEMORY, "no memory for %zu bins", bins);
    float bmin = INFINITY, bmax = -INFINITY, left, right;
    int have_range = 0;
    if (!fresh) {
        /* Binned over the current range first: when the batch stays inside it (the usual case once calibration has
         * seen a few batches) this one pass is the whole update. Whether it did shows in the skipped count, unless
         * the range is a single value (torch.histc then widens it) or the caller wants the batch's range. */
        const int need_range = batch_min || batch_max || mn == mx;
        histc_edges(mn, mx, &left, &right);
        s = histogram_pass(k, n, x, left, right, bins, absolute, counts, &skipped, need_range ? &bmin : NULL,
                           need_range ? &bmax : NULL);
        if (s != QK_OK) goto done;
        if (!need_range && skipped == 0) {
            for (size_t b = 0; b < bins; b++) histogram[b] += (float)(int64_t)counts[b];
            goto done;
        }
        have_range = need_range;
    }
    if (!have_range && (s = qk_minmax_f32(n, x, QK_MINMAX_FINITE_ONLY, &bmin, &bmax)) != QK_OK) goto done;
    if (batch_min) *batch_min = bmin;
    if (batch_max) *batch_max = bmax;
    if (bmin > bmax) goto done;   /* nothing finite: PyTorch drops infinities; NaN is skipped */

    /* The batch's range in the histogram's domain; -0.0 becomes +0.0, so the state has one zero. */
    float dmin = absolute ? 0.0f : bmin + 0.0f;
    float dmax = absolute ? (-bmin > bmax ? -bmin : bmax) + 0.0f : bmax + 0.0f;
    if (!fresh && dmin >= mn && dmax <= mx) {
        for (size_t b = 0; b < bins; b++) histogram[b] += (float)(int64_t)counts[b];
        goto done;
    }
    const float new_min = fresh ? dmin : (dmin < mn ? dmin : mn);
    const float new_max = fresh ? dmax : (dmax > mx ? dmax : mx);
    histc_edges(new_min, new_max, &left, &right);
    if ((s = histogram_pass(k, n, x, left, right, bins, absolute, counts, &skipped, NULL, NULL)) != QK_OK) goto done;
    if (fresh) {
        for (size_t b = 0; b < bins; b++) histogram[b] = (float)(int64_t)counts[b];
    } else {
        float *old = malloc((2 * bins + 1) * sizeof *old);
        if (!old) {
            s = qk_fail(QK_ERROR_OUT_OF_MEMORY, "no memory to re-bin %zu bins", bins);
            goto done;
        }
        transform(bins, upsample_rate, histogram, mn, mx, new_min, new_max, old + bins, old);
        /* update_hist + transformed_orig_hist */
        for (size_t b = 0; b < bins; b++) histogram[b] = (float)(int64_t)counts[b] + old[b];
        free(old);
    }
    *min_val = new_min;
    *max_val = new_max;
done:
    free(counts);
    return s;
}

qk_status qk_histogram_merge_f32(size_t count, size_t bins, size_t upsample_rate, const float *const *histograms,
                                 const float *min_vals, const float *max_vals, float *histogram, float *min_val,
                                 float *max_val) {
    if (!histogram || !min_val || !max_val || (count && (!histograms || !min_vals || !max_vals)))
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "null pointer passed to qk_histogram_merge_f32");
    qk_status s = check_bins(bins, "qk_histogram_merge_f32");
    if (s != QK_OK) return s;
    if (upsample_rate < 1 || upsample_rate > QK_MAX_UPSAMPLE)
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "upsample_rate must be in 1...%zu, got %zu", QK_MAX_UPSAMPLE,
                       upsample_rate);
    float lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < count; i++) {
        if (!histograms[i]) return qk_fail(QK_ERROR_INVALID_ARGUMENT, "histogram %zu is a null pointer", i);
        if ((s = check_state(min_vals[i], max_vals[i], "qk_histogram_merge_f32")) != QK_OK) return s;
        if (is_uninitialized(min_vals[i], max_vals[i])) continue;
        lo = min_vals[i] < lo ? min_vals[i] : lo;
        hi = max_vals[i] > hi ? max_vals[i] : hi;
    }
    float *acc = malloc((3 * bins + 1) * sizeof *acc);
    if (!acc) return qk_fail(QK_ERROR_OUT_OF_MEMORY, "no memory to merge %zu bins", bins);
    float *part = acc + bins, *edges = part + bins;
    int first = 1;
    for (size_t b = 0; b < bins; b++) acc[b] = 0.0f;
    for (size_t i = 0; i < count; i++) {
        if (is_uninitialized(min_vals[i], max_vals[i])) continue;
        transform(bins, upsample_rate, histograms[i], min_vals[i], max_vals[i], lo, hi, edges, part);
        /* In shard order; for two shards this is the update + transformed sum of observing one after the other. */
        for (size_t b = 0; b < bins; b++) acc[b] = first ? part[b] : acc[b] + part[b];
        first = 0;
    }
    memcpy(histogram, acc, bins * sizeof *acc);
    *min_val = lo;
    *max_val = hi;
    free(acc);
    return QK_OK;
}

/* ------------------------------------------------------------------------------------------ L2 range search */

/* torch.div(a, b, rounding_mode='floor') on fp32 (c10::div_floor_floating), then torch.clamp(., 0, last) (NaN stays
 * NaN). For |a / b| < 2^22 the floor division is the exact floor of the real quotient, which the double quotient
 * gives (and a cast, as it is >= 0 there); beyond that, c10's own steps. */
static float div_floor_clamped(float a, float b, float last) {
    float f;
    const double q = (double)a / (double)b;
    if (b != 0 && q >= 0 && q < 4194304.0) {
        f = (float)(int64_t)q;
    } else if (b != 0 && q < 0 && q > -4194304.0) {
        return 0.0f;
    } else if (b == 0) {
        f = a / b;
    } else {
        const float mod = fmodf(a, b);
        float div = (a - mod) / b;
        if (mod != 0 && (b < 0) != (mod < 0)) div -= 1.0f;
        if (div == 0) {
            f = copysignf(0.0f, a / b);
        } else {
            f = floorf(div);
            if (div - f > 0.5f) f += 1.0f;
        }
    }
    return f < 0.0f ? 0.0f : (f > last ? last : f);
}

/*
 * HistogramObserver._compute_quantization_error(start, end): the expected L2 error of quantizing the histogram
 * (uniform density inside each bin) to dst_bins levels spanning bins [start, end]; bins outside go to the edge
 * levels, so clipping counts too. fp32 terms per bin as PyTorch forms them, summed in double.
 */
static double l2_error(size_t bins, const float *hist, double bin_width, double dst_bins, size_t start, size_t end) {
    const double dst_width = bin_width * (double)(end - start + 1) / dst_bins;
    if (dst_width == 0.0) return 0.0;
    const float bw = (float)bin_width, d = (float)dst_width, h = (float)(dst_width / 2), last = (float)(dst_bins - 1);
    const float nh = -h;
    const float h3 = h * h * h, nh3 = nh * nh * nh;
    const float middle = (h3 - nh3) / 3.0f;
    /* floor(a / d) clamped to [0, last] is the number of k in 1...last with k * d <= a, and k * d is exact in
     * double while last < 2^22 (as for 8 bits): two monotone walks over the bins then replace the divisions. */
    const int walk = dst_bins <= 4194304.0 && d > 0;
    const double dd = d;
    double next_b = dd, next_e = dd;   /* (db + 1) * d, (de + 1) * d */
    float db = 0.0f, de = 0.0f;
    double sum = 0;
    for (size_t i = 0; i < bins; i++) {
        const float begin = (float)((double)i - (double)start) * bw;
        const float stop = begin + bw;
        if (walk) {
            while (db < last && next_b <= (double)begin) { db += 1.0f; next_b += dd; }
            while (de < last && next_e <= (double)stop) { de += 1.0f; next_e += dd; }
        } else {
            db = div_floor_clamped(begin, d, last);
            de = div_floor_clamped(stop, d, last);
        }
        if (hist[i] == 0) continue;   /* zero density: every term is 0 */
        const float density = hist[i] / bw;
        const float delta_begin = begin - (db + 0.5f) * d;
        float norm = 0.0f;
        norm += density * ((h3 - delta_begin * delta_begin * delta_begin) / 3.0f);
        norm += (de - db - 1.0f) * (density * middle);
        const float delta_end = stop - (de * d + h);
        norm += density * ((delta_end * delta_end * delta_end - nh3) / 3.0f);
        sum += norm;
    }
    return sum;
}

qk_status qk_histogram_l2_range_f32(size_t bins, const float *histogram, float min_val, float max_val,
                                    double dst_bins, float *lo, float *hi) {
    if (!histogram || !lo || !hi)
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "null pointer passed to qk_histogram_l2_range_f32");
    qk_status s = check_bins(bins, "qk_histogram_l2_range_f32");
    if (s != QK_OK) return s;
    if (!(isfinite(min_val) && isfinite(max_val) && min_val <= max_val))
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "qk_histogram_l2_range_f32: the range [%g, %g] must be finite with "
                       "min_val <= max_val", (double)min_val, (double)max_val);
    if (!(dst_bins >= 2 && dst_bins <= 4294967296.0))
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "dst_bins must be in 2...2^32, got %g", dst_bins);
    if ((s = check_histogram(bins, histogram, "qk_histogram_l2_range_f32")) != QK_OK) return s;
    float *csum = malloc(bins * sizeof *csum);
    if (!csum) return qk_fail(QK_ERROR_OUT_OF_MEMORY, "no memory for %zu bins", bins);
    /* torch.cumsum accumulates fp32 in double and stores fp32; torch.sum's fp32 total, exact for counts. */
    double run = 0;
    for (size_t i = 0; i < bins; i++) {
        run += histogram[i];
        csum[i] = (float)run;
    }
    const double total = (double)(float)run;
    const double bin_width = ((double)max_val - (double)min_val) / (double)bins;

    /* _non_linear_param_search, step for step. */
    const double step = 1e-5;
    double alpha = 0.0, beta = 1.0, norm_min = INFINITY;
    size_t start = 0, end = bins - 1;
    while (alpha < beta && start < end) {   /* start == end: nothing can move any more */
        const double next_alpha = alpha + step, next_beta = beta - step;
        size_t l = start, r = end;
        while (l < end && csum[l] < next_alpha * total) l++;
        while (r > start && csum[r] > next_beta * total) r--;
        size_t next_start = start, next_end = end;
        if (l - start > end - r) {
            next_start = l;
            alpha = next_alpha;
        } else {
            next_end = r;
            beta = next_beta;
        }
        if (next_start == start && next_end == end) continue;
        const double norm = l2_error(bins, histogram, bin_width, dst_bins, next_start, next_end);
        if (norm > norm_min) break;
        norm_min = norm;
        start = next_start;
        end = next_end;
    }
    free(csum);
    const float bw = (max_val - min_val) / (float)bins;
    *lo = min_val + bw * (float)start;
    *hi = min_val + bw * (float)(end + 1);
    return QK_OK;
}

/* ------------------------------------------------------------------------------------------ percentile, entropy */

qk_status qk_histogram_percentile_range_f32(size_t bins, const float *histogram, float min_val, float max_val,
                                           double percentile, uint32_t flags, float data_min, float data_max,
                                           float *lo, float *hi) {
    if (!histogram || !lo || !hi)
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "null pointer passed to qk_histogram_percentile_range_f32");
    if (flags & ~(uint32_t)QK_HISTOGRAM_ABSOLUTE)
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "unknown histogram flags 0x%x", (unsigned)flags);
    qk_status s = check_bins(bins, "qk_histogram_percentile_range_f32");
    if (s != QK_OK) return s;
    if (!(percentile >= 0 && percentile <= 100))
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "percentile must be in 0...100, got %g", percentile);
    if (!(isfinite(min_val) && isfinite(max_val) && min_val <= max_val && isfinite(data_min) && isfinite(data_max) &&
          data_min <= data_max))
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "qk_histogram_percentile_range_f32: the histogram range [%g, %g] and "
                       "the data range [%g, %g] must be finite with min <= max", (double)min_val, (double)max_val,
                       (double)data_min, (double)data_max);
    if ((s = check_histogram(bins, histogram, "qk_histogram_percentile_range_f32")) != QK_OK) return s;
    double total = 0;
    for (size_t i = 0; i < bins; i++) total += histogram[i];
    if (!(total > 0)) return qk_fail(QK_ERROR_INVALID_ARGUMENT, "qk_histogram_percentile_range_f32: empty histogram");
    float left, right;
    histc_edges(min_val, max_val, &left, &right);
    const float edge_step = (right - left) / (float)bins;
    /* ORT's compute_percentile: cdf = cumsum(hist / total); searchsorted(cdf, q) (the first bin whose cdf reaches
     * q, bins when none does) picks the bin's left edge. */
    const int absolute = (flags & QK_HISTOGRAM_ABSOLUTE) != 0;
    const double cut = (100.0 - percentile) / 200.0;
    const double q_right = absolute ? percentile / 100.0 : 1.0 - cut, q_left = cut;
    size_t i_left = bins, i_right = bins;
    double cdf = 0;
    for (size_t i = 0; i < bins; i++) {
        cdf += histogram[i] / total;
        if (i_left == bins && cdf >= q_left) i_left = i;
        if (i_right == bins && cdf >= q_right) i_right = i;
    }
    const float t_right = linspace_at(left, right, edge_step, bins + 1, i_right);
    float l = absolute ? -t_right : linspace_at(left, right, edge_step, bins + 1, i_left), r = t_right;
    if (l < data_min) l = data_min;
    if (r > data_max) r = data_max;
    *lo = l;
    *hi = r;
    return QK_OK;
}

qk_status qk_histogram_entropy_amax_f32(size_t bins, const float *histogram, float max_val, size_t levels,
                                        size_t start_bin, float *amax) {
    if (!histogram || !amax)
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "null pointer passed to qk_histogram_entropy_amax_f32");
    qk_status s = check_bins(bins, "qk_histogram_entropy_amax_f32");
    if (s != QK_OK) return s;
    if (bins < 2 || levels < 1 || start_bin < 1)
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "qk_histogram_entropy_amax_f32: needs bins >= 2, levels >= 1 and "
                       "start_bin >= 1; got %zu, %zu, %zu", bins, levels, start_bin);
    if (!(isfinite(max_val) && max_val >= 0))
        return qk_fail(QK_ERROR_INVALID_ARGUMENT, "qk_histogram_entropy_amax_f32: max_val must be finite and >= 0, "
                       "got %g", (double)max_val);
    if ((s = check_histogram(bins, histogram, "qk_histogram_entropy_amax_f32")) != QK_OK) return s;
    if (max_val == 0) {
        *amax = 0;
        return QK_OK;
    }
    double *b = malloc((4 * bins + 3) * sizeof *b);
    size_t *nonzero = malloc((bins + 1) * sizeof *nonzero);
    if (!b || !nonzero) {
        free(b);
        free(nonzero);
        return qk_fail(QK_ERROR_OUT_OF_MEMORY, "no memory for %zu bins", bins);
    }
    double *sum = b + bins, *plogp = sum + bins + 1, *tail = plogp + bins + 1;   /* prefix sums; tail: suffix */
    for (size_t i = 0; i < bins; i++) b[i] = histogram[i];
    b[0] = b[1];   /* pytorch-quantization drops the spike of zeros (ReLU) this way */
    sum[0] = plogp[0] = 0;
    nonzero[0] = 0;
    for (size_t i = 0; i < bins; i++) {
        sum[i + 1] = sum[i] + b[i];
        plogp[i + 1] = plogp[i] + (b[i] > 0 ? b[i] * log(b[i]) : 0.0);
        nonzero[i + 1] = nonzero[i] + (b[i] > 0);
    }
    tail[bins] = 0;
    for (size_t i = bins; i-- > 0;) tail[i] = tail[i + 1] + b[i];

    /*
     * For each candidate i (bins kept): P = bins[0..<i] with the tail added to the last one; Q = the kept bins
     * merged into `levels` groups (np.digitize on linspace(0, i, levels + 1)) and spread evenly over each group's
     * non-zero bins. KL(P || Q) of the normalised distributions (scipy.stats.entropy) is
     * (1 / P) * sum p (log p - log q) - log P + log Q, taken group by group from the prefix sums.
     */
    double best = INFINITY;
    size_t best_i = bins;
    for (size_t i = start_bin; i <= bins; i++) {
        const double total_p = sum[i] + tail[i], total_q = sum[i];
        if (!(total_q > 0)) continue;
        const double group = (double)i / (double)levels;
        double kl = 0, q_last = 0;
        size_t ja = 0;
        for (size_t g = 0; g < levels; g++) {
            const size_t jb = g + 1 == levels ? i : (size_t)ceil((double)(g + 1) * group);
            if (jb <= ja) continue;
            const size_t nz = nonzero[jb] - nonzero[ja];
            if (nz > 0) {
                const double q = (sum[jb] - sum[ja]) / (double)nz, log_q = log(q);
                const size_t stop = jb < i ? jb : i - 1;   /* bin i - 1 carries the tail: added below */
                if (stop > ja) kl += (plogp[stop] - plogp[ja]) - (sum[stop] - sum[ja]) * log_q;
                if (jb == i) q_last = q;
            }
            ja = jb;
        }
        const double p_last = b[i - 1] + tail[i];
        if (p_last > 0) {
            if (b[i - 1] == 0) continue;   /* the tail falls where Q has no mass: infinite divergence */
            kl += p_last * (log(p_last) - log(q_last));
        }
        const double divergence = kl / total_p - log(total_p) + log(total_q);
        if (divergence <= best) {   /* the last minimum, as pytorch-quantization picks it */
            best = divergence;
            best_i = i;
        }
    }
    free(b);
    free(nonzero);
    const float step = max_val / (float)bins;
    *amax = linspace_at(0.0f, max_val, step, bins + 1, best_i);
    return QK_OK;
}
