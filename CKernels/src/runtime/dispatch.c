/*
 * Run-time dispatch: ISA levels, and the kernel table of each, filled once from the variant list (qk_kernels.h).
 * QUANTKIT_ISA (or qk_set_isa) selects a level; asking for a level the CPU lacks, or an unknown name, is an error,
 * never a silent fallback.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "qk_internal.h"
#include "qk_kernels.h"

#define QK_X86_ALL (QK_FEATURE_AVX2 | QK_FEATURE_AVX512 | QK_FEATURE_AVX512VNNI | QK_FEATURE_AVXVNNI | QK_FEATURE_AVX512BF16)
#define QK_ARM_ALL (QK_FEATURE_NEON | QK_FEATURE_NEON_DOTPROD | QK_FEATURE_NEON_FP16 | QK_FEATURE_NEON_I8MM | QK_FEATURE_NEON_BF16)

typedef struct qk_level {
    const char *name;
    uint32_t required;   /* the CPU must have all of these */
    uint32_t allowed;    /* kernels may use these (intersected with the CPU's features) */
} qk_level;

/* Lowest first. The auto choice is the last level whose requirements the CPU meets, with every feature allowed. */
static const qk_level levels[] = {
    {"scalar", 0, 0},
    {"avx2", QK_FEATURE_AVX2, QK_FEATURE_AVX2},
    {"avxvnni", QK_FEATURE_AVX2 | QK_FEATURE_AVXVNNI, QK_FEATURE_AVX2 | QK_FEATURE_AVXVNNI},
    {"avx512", QK_FEATURE_AVX2 | QK_FEATURE_AVX512, QK_FEATURE_AVX2 | QK_FEATURE_AVX512},
    {"avx512vnni", QK_FEATURE_AVX2 | QK_FEATURE_AVX512 | QK_FEATURE_AVX512VNNI, QK_X86_ALL},
    {"neon", QK_FEATURE_NEON, QK_FEATURE_NEON},
    {"neondot", QK_FEATURE_NEON | QK_FEATURE_NEON_DOTPROD, QK_FEATURE_NEON | QK_FEATURE_NEON_DOTPROD | QK_FEATURE_NEON_FP16},
    {"neoni8mm", QK_FEATURE_NEON | QK_FEATURE_NEON_DOTPROD | QK_FEATURE_NEON_I8MM, QK_ARM_ALL},
};
#define QK_NUM_LEVELS (sizeof levels / sizeof levels[0])
#define QK_AUTO QK_NUM_LEVELS   /* index of the "auto" table */

static qk_kernel_table tables[QK_NUM_LEVELS + 1];
static const char *table_names[QK_NUM_LEVELS + 1];
static int table_ready[QK_NUM_LEVELS + 1];
static pthread_mutex_t tables_lock = PTHREAD_MUTEX_INITIALIZER;

/* index + 1 of the table in use; 0 before a successful initialisation. One word, so table and name never tear. */
static atomic_size_t active = 0;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static qk_status init_status = QK_OK;
static char init_message[256];

const qk_gemm_config qk_gemm_configs[] = {
#define QK__GEMM_CONFIG(fn, mr, nr, kr, req, flags) {#fn, fn, mr, nr, kr, req, flags},
    QK_GEMM_VARIANTS(QK__GEMM_CONFIG)
#undef QK__GEMM_CONFIG
};
const size_t qk_gemm_config_count = sizeof qk_gemm_configs / sizeof qk_gemm_configs[0];

const qk_half_gemm_config qk_half_gemm_configs[] = {
#define QK__HALF_GEMM_CONFIG(fn, type, mr, nr, kr, req, flags) {#fn, fn, type, mr, nr, kr, req, flags},
    QK_HALF_GEMM_VARIANTS(QK__HALF_GEMM_CONFIG)
#undef QK__HALF_GEMM_CONFIG
};
const size_t qk_half_gemm_config_count = sizeof qk_half_gemm_configs / sizeof qk_half_gemm_configs[0];

const qk_qu8_dwconv_config qk_qu8_dwconv_configs[] = {
#define QK__QU8_DWCONV_CONFIG(fn, taps, layout, ct, req) {#fn, fn, taps, layout, ct, req},
    QK_QU8_DWCONV_VARIANTS(QK__QU8_DWCONV_CONFIG)
#undef QK__QU8_DWCONV_CONFIG
};
const size_t qk_qu8_dwconv_config_count = sizeof qk_qu8_dwconv_configs / sizeof qk_qu8_dwconv_configs[0];

const qk_f32_dwconv_config qk_f32_dwconv_configs[] = {
#define QK__F32_DWCONV_CONFIG(fn, taps, ct, req) {#fn, fn, taps, ct, req},
    QK_F32_DWCONV_VARIANTS(QK__F32_DWCONV_CONFIG)
#undef QK__F32_DWCONV_CONFIG
};
const size_t qk_f32_dwconv_config_count = sizeof qk_f32_dwconv_configs / sizeof qk_f32_dwconv_configs[0];

static void fill_table(qk_kernel_table *t, uint32_t allowed) {
    memset(t, 0, sizeof *t);
#define QK__PICK(slot, fn, req) \
    if (!t->slot && ((req) & ~allowed) == 0) t->slot = fn;
    QK_VARIANTS(QK__PICK)
    QK_FAKE_QUANT_VARIANTS(QK__PICK)
    QK_STATISTICS_VARIANTS(QK__PICK)
#undef QK__PICK
    /* GEMM: the first exact variant allowed, then the first fast one packing the same way. */
    for (size_t i = 0; i < qk_gemm_config_count && !t->gemm; i++)
        if (!(qk_gemm_configs[i].flags & QK_GEMM_FAST) && (qk_gemm_configs[i].required & ~allowed) == 0) t->gemm = &qk_gemm_configs[i];
    for (size_t i = 0; i < qk_gemm_config_count && t->gemm && !t->gemm_fast; i++) {
        const qk_gemm_config *c = &qk_gemm_configs[i];
        if ((c->flags & QK_GEMM_FAST) && (c->required & ~allowed) == 0 && c->nr == t->gemm->nr && c->kr == t->gemm->kr)
            t->gemm_fast = c;
    }
    /* Half-precision GEMM: per type the first variant allowed; the fp16-arithmetic one must share its layout. */
    for (size_t i = 0; i < qk_half_gemm_config_count; i++) {
        const qk_half_gemm_config *c = &qk_half_gemm_configs[i];
        if ((c->required & ~allowed) || (c->flags & QK_HALF_FP16_ARITH) || t->half_gemm[c->type]) continue;
        t->half_gemm[c->type] = c;
    }
    for (size_t i = 0; i < qk_half_gemm_config_count && !t->half_gemm_fp16arith; i++) {
        const qk_half_gemm_config *c = &qk_half_gemm_configs[i], *e = t->half_gemm[QK_HALF_FP16];
        if ((c->flags & QK_HALF_FP16_ARITH) && !(c->required & ~allowed) && e && c->nr == e->nr && c->kr == e->kr)
            t->half_gemm_fp16arith = c;
    }
    /* Depthwise: the first variant allowed for any tap count, and for 9 taps (a 9-tap one or a general one). */
    for (size_t i = 0; i < qk_qu8_dwconv_config_count; i++) {
        const qk_qu8_dwconv_config *c = &qk_qu8_dwconv_configs[i];
        if (c->required & ~allowed) continue;
        if (!t->qu8_dwconv[0] && c->taps == 0) t->qu8_dwconv[0] = c;
        if (!t->qu8_dwconv[1] && (c->taps == 0 || c->taps == 9)) t->qu8_dwconv[1] = c;
    }
    for (size_t i = 0; i < qk_f32_dwconv_config_count; i++) {
        const qk_f32_dwconv_config *c = &qk_f32_dwconv_configs[i];
        if (c->required & ~allowed) continue;
        if (!t->f32_dwconv[0] && c->taps == 0) t->f32_dwconv[0] = c;
        if (!t->f32_dwconv[1] && (c->taps == 0 || c->taps == 9)) t->f32_dwconv[1] = c;
    }
}

static int level_supported(size_t i) {
    const uint32_t cpu = qk_cpu_features();
    return (levels[i].required & ~cpu) == 0;
}

static size_t best_level(void) {
    size_t best = 0;
    for (size_t i = 0; i < QK_NUM_LEVELS; i++)
        if (level_supported(i)) best = i;
    return best;
}

/* Resolves a name to a table index; QK_AUTO for the best. */
static qk_status resolve(const char *name, size_t *index) {
    if (!name || !*name || strcmp(name, "auto") == 0) { *index = QK_AUTO; return QK_OK; }
    for (size_t i = 0; i < QK_NUM_LEVELS; i++) {
        if (strcmp(name, levels[i].name) != 0) continue;
        if (!level_supported(i)) {
            char have[256];
            qk_cpu_feature_names(have, sizeof have);
            return qk_fail(QK_ERROR_UNSUPPORTED_ISA, "ISA '%s' is not supported by this CPU (it has: %s); use one of "
                           "the levels qk_isa_supported() accepts, or unset QUANTKIT_ISA", name, *have ? have : "no SIMD");
        }
        *index = i;
        return QK_OK;
    }
    return qk_fail(QK_ERROR_UNKNOWN_ISA, "unknown ISA '%s'; expected one of scalar, avx2, avxvnni, avx512, avx512vnni, "
                   "neon, neondot, neoni8mm, auto", name);
}

static const qk_kernel_table *table_for(size_t index) {
    pthread_mutex_lock(&tables_lock);
    if (!table_ready[index]) {
        const uint32_t cpu = qk_cpu_features();
        const size_t level = index == QK_AUTO ? best_level() : index;
        const uint32_t allowed = index == QK_AUTO ? cpu : (levels[level].allowed & cpu);
        fill_table(&tables[index], allowed);
        table_names[index] = levels[level].name;
        table_ready[index] = 1;
    }
    pthread_mutex_unlock(&tables_lock);
    return &tables[index];
}

static void init_from_environment(void) {
    const char *env = getenv("QUANTKIT_ISA");
    size_t index;
    qk_status s = resolve(env, &index);
    if (s != QK_OK) {
        init_status = s;
        snprintf(init_message, sizeof init_message, "QUANTKIT_ISA: %s", qk_last_error_message());
        return;
    }
    table_for(index);
    atomic_store_explicit(&active, index + 1, memory_order_release);
}

qk_status qk_runtime_init(void) {
    pthread_once(&init_once, init_from_environment);
    if (atomic_load_explicit(&active, memory_order_acquire)) return QK_OK;
    return qk_fail(init_status, "%s", init_message);
}

const qk_kernel_table *qk_kernels(void) {
    size_t a = atomic_load_explicit(&active, memory_order_acquire);
    if (!a) {
        if (qk_runtime_init() != QK_OK) return NULL;
        a = atomic_load_explicit(&active, memory_order_acquire);
    }
    return &tables[a - 1];
}

qk_status qk_set_isa(const char *name) {
    pthread_once(&init_once, init_from_environment);
    size_t index;
    qk_status s = resolve(name, &index);
    if (s != QK_OK) return s;
    table_for(index);
    atomic_store_explicit(&active, index + 1, memory_order_release);
    return QK_OK;
}

const char *qk_isa_name(void) {
    if (!qk_kernels()) return "none";
    return table_names[atomic_load_explicit(&active, memory_order_acquire) - 1];
}

int qk_isa_supported(const char *name) {
    if (!name) return 0;
    for (size_t i = 0; i < QK_NUM_LEVELS; i++)
        if (strcmp(name, levels[i].name) == 0) return level_supported(i);
    return 0;
}
