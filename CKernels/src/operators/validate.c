/* Parameter checks shared by the GEMM and convolution operators, so their messages and rules cannot drift. */
#include <math.h>

#include "qk_internal.h"

qk_status qk_check_scale(float s, const char *what) {
    if (isfinite(s) && s > 0.0f) return QK_OK;
    return qk_fail(QK_ERROR_INVALID_ARGUMENT, "%s must be finite and > 0, got %g", what, (double)s);
}

qk_status qk_check_zero_point(qk_dtype d, int32_t zp, const char *what) {
    const int32_t lo = d == QK_DTYPE_QUINT8 ? 0 : -128, hi = d == QK_DTYPE_QUINT8 ? 255 : 127;
    if (zp >= lo && zp <= hi) return QK_OK;
    return qk_fail(QK_ERROR_INVALID_ARGUMENT, "%s %d is outside the %s range [%d, %d]", what, zp,
                   d == QK_DTYPE_QUINT8 ? "quint8" : "qint8", lo, hi);
}

qk_status qk_check_weight_qscheme(qk_qscheme qscheme) {
    if (qscheme == QK_QSCHEME_PER_TENSOR || qscheme == QK_QSCHEME_PER_CHANNEL) return QK_OK;
    return qk_fail(QK_ERROR_INVALID_ARGUMENT, "qscheme %d is not supported; expected QK_QSCHEME_PER_TENSOR (0) or "
                   "QK_QSCHEME_PER_CHANNEL (1)", (int)qscheme);
}

qk_status qk_check_weight_qparams(size_t count, const float *scales, const int32_t *zero_points) {
    if (!scales) return qk_fail(QK_ERROR_INVALID_ARGUMENT, "null weight scales");
    for (size_t i = 0; i < count; i++) {
        if (!(isfinite(scales[i]) && scales[i] > 0.0f))
            return qk_fail(QK_ERROR_INVALID_ARGUMENT, "weight scales[%zu] must be finite and > 0, got %g", i,
                           (double)scales[i]);
        if (zero_points && (zero_points[i] < -128 || zero_points[i] > 127))
            return qk_fail(QK_ERROR_INVALID_ARGUMENT, "weight zero_points[%zu] = %d is outside the qint8 range "
                           "[-128, 127]", i, zero_points[i]);
    }
    return QK_OK;
}
