/* Internal helpers shared by the runtime, the operators and the kernels. Not installed. */
#ifndef QK_INTERNAL_H
#define QK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "quantkit.h"

/* Per-function ISA targets: the library builds with no global -m flags, so a plain `swift build` compiles every
 * path and dispatch picks one at run time. GCC 12 needs the arch= spelling on aarch64; clang accepts it too. */
#if defined(__x86_64__) || defined(_M_X64)
#define QK_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#define QK_TARGET_AVX512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl")))
#define QK_TARGET_AVX512VNNI __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")))
#define QK_TARGET_AVXVNNI __attribute__((target("avx2,fma,f16c,avxvnni")))
#define QK_TARGET_AVX512BF16 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512bf16")))
#endif
#if defined(__aarch64__)
#define QK_TARGET_NEON_DOTPROD __attribute__((target("arch=armv8.2-a+dotprod")))
#define QK_TARGET_NEON_FP16 __attribute__((target("arch=armv8.2-a+fp16")))
#define QK_TARGET_NEON_I8MM __attribute__((target("arch=armv8.2-a+i8mm")))
#define QK_TARGET_NEON_BF16 __attribute__((target("arch=armv8.2-a+bf16")))
#endif

/* Records a failure for qk_last_error_message() and returns its status. printf-style. */
qk_status qk_fail(qk_status status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void qk_clear_error(void);

/* ------------------------------------------------------------------------------------------ parallel-for */

/*
 * One parallel-for used by every operator. The caller cuts the work into tiles whose size does not depend on the
 * thread count, and each tile writes only its own outputs, so results are bit-identical for any number of threads.
 * Tiles run on the OpenMP team (when compiled with -fopenmp) or on the persistent pthread pool. A call made from
 * inside a parallel region, or with a single tile, runs serially on the calling thread.
 */
typedef void (*qk_task_1d)(void *context, size_t begin, size_t end);
void qk_parallel_for_1d(size_t range, size_t tile, qk_task_1d task, void *context);

typedef void (*qk_task_2d)(void *context, size_t i, size_t j, size_t tile_i, size_t tile_j);
void qk_parallel_for_2d(size_t range_i, size_t tile_i, size_t range_j, size_t tile_j, qk_task_2d task,
                        void *context);

/* Elements per tile for streaming (memory-bound) kernels: large enough to amortise scheduling, small enough for
 * two threads to balance. */
#define QK_STREAM_TILE ((size_t)1 << 16)

/* Parameter checks shared by the operators (operators/validate.c); QK_OK, or the error recorded. */
qk_status qk_check_scale(float s, const char *what);                       /* finite and > 0 */
qk_status qk_check_zero_point(qk_dtype d, int32_t zp, const char *what);   /* inside quint8 or qint8 */
qk_status qk_check_weight_qscheme(qk_qscheme qscheme);                    /* per tensor or per channel */
/* count weight scales (non-null, finite, > 0) and zero points (NULL, or inside qint8) */
qk_status qk_check_weight_qparams(size_t count, const float *scales, const int32_t *zero_points);

/* Overflow-checked a * b; returns 0 on overflow. */
static inline int qk_mul_size(size_t a, size_t b, size_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}

#endif /* QK_INTERNAL_H */
