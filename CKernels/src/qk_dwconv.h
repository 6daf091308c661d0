/* Depthwise convolution internals shared by the operator (src/operators/dwconv.c) and the C tests. Not installed. */
#ifndef QK_DWCONV_H
#define QK_DWCONV_H

#include <stddef.h>
#include <stdint.h>

#include "qk_kernels.h"
#include "quantkit.h"

/* Packed int8 weight layouts a handle may hold: layout C, and PAIRS with a 32 or 64 channel tile. */
enum { QK_DW_PACK_C = 0, QK_DW_PACK_PAIRS32 = 1, QK_DW_PACK_PAIRS64 = 2, QK_DW_PACK_COUNT = 3 };

struct qk_qs8_dwconv_weights {
    size_t channels, multiplier, out_channels;   /* out_channels = channels * multiplier */
    size_t kh, kw, taps, cpad;                   /* taps = kh * kw; cpad = round_up(out_channels, QK_DW_CPAD) */
    int per_channel;
    float *w_scales;        /* [cpad] (per tensor: the one scale repeated; 1 past out_channels) */
    float *bias;            /* [cpad] (0 past out_channels) or NULL */
    int32_t *wsum;          /* [cpad] sum_t (w - zw) mod 2^32 (0 past out_channels), for comp = -zx * wsum */
    void *packed[QK_DW_PACK_COUNT];   /* per layout, for every layout a variant this CPU can run uses; else NULL */
    size_t packed_bytes;
    const qk_qu8_dwconv_config *pinned;   /* tests: always this variant */
};

struct qk_f32_dwconv_weights {
    size_t channels, multiplier, out_channels, kh, kw, taps, cpad;
    float *packed;          /* bias[cpad] then w[t][cpad] (layout C), taps column-major */
    size_t packed_bytes;
    const qk_f32_dwconv_config *pinned;
};

/* The pack slot of a variant. */
static inline int qk_dw_pack_slot(uint32_t layout, uint32_t ct) {
    if (layout == QK_DW_LAYOUT_C) return QK_DW_PACK_C;
    return ct == 64 ? QK_DW_PACK_PAIRS64 : QK_DW_PACK_PAIRS32;
}

/* The channel that position i of a variant's per-channel arrays belongs to (qk_kernels.h, QK_DW_LAYOUT_PAIRS). */
static inline size_t qk_dw_position_channel(uint32_t layout, uint32_t ct, size_t i) {
    if (layout == QK_DW_LAYOUT_C) return i;
    const size_t tile = i / ct, r = i % ct, q = ct / 4, v = r / q, e = r % q;
    return tile * ct + 16 * (e / 4) + 4 * v + e % 4;
}

/* Bytes of packed int8 weights of one layout for cpad channels and `taps` taps. */
size_t qk_dw_packed_size(uint32_t layout, uint32_t ct, size_t cpad, size_t taps);

/* Packs w' [out_channels][taps] (int16, taps column-major) into `dst` (qk_dw_packed_size bytes, zero padded). */
void qk_dw_pack(uint32_t layout, uint32_t ct, size_t out_channels, size_t cpad, size_t taps, const int16_t *wp,
                void *dst);

#endif /* QK_DWCONV_H */
