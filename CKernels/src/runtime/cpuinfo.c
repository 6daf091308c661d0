/* CPU feature detection: cpuid + XGETBV on x86 (the OS must save the wider registers), getauxval on Linux/aarch64,
 * sysctl on Apple platforms. Computed once; cheap afterwards. */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "qk_internal.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#if defined(__APPLE__)
#include <sys/sysctl.h>
#endif

static uint64_t read_xcr0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static uint32_t detect(void) {
    uint32_t a, b, c, d, features = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    const int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, f16c = (c >> 29) & 1;
    if (!osxsave || !avx) return 0;
    const uint64_t xcr0 = read_xcr0();
    const int ymm_state = (xcr0 & 0x6) == 0x6;
    int zmm_state = (xcr0 & 0xE6) == 0xE6;
#if defined(__APPLE__)
    /* macOS enables AVX-512 state lazily, on first use: ask the kernel instead of XCR0. */
    int has = 0;
    size_t size = sizeof has;
    if (sysctlbyname("hw.optional.avx512f", &has, &size, NULL, 0) == 0) zmm_state = ymm_state && has;
#endif
    if (!ymm_state) return 0;
    uint32_t max_leaf = __get_cpuid_max(0, NULL);
    if (max_leaf < 7) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    const int avx2 = (b >> 5) & 1, avx512f = (b >> 16) & 1, avx512dq = (b >> 17) & 1, avx512bw = (b >> 30) & 1,
              avx512vl = (b >> 31) & 1, avx512vnni = (c >> 11) & 1;
    uint32_t leaf7_1_eax = 0;
    if (a >= 1) {
        uint32_t a1, b1, c1, d1;
        __cpuid_count(7, 1, a1, b1, c1, d1);
        leaf7_1_eax = a1;
    }
    const int avxvnni = (leaf7_1_eax >> 4) & 1, avx512bf16 = (leaf7_1_eax >> 5) & 1;
    if (avx2 && fma && f16c) features |= QK_FEATURE_AVX2;
    if ((features & QK_FEATURE_AVX2) && avxvnni) features |= QK_FEATURE_AVXVNNI;
    if ((features & QK_FEATURE_AVX2) && zmm_state && avx512f && avx512dq && avx512bw && avx512vl) {
        features |= QK_FEATURE_AVX512;
        if (avx512vnni) features |= QK_FEATURE_AVX512VNNI;
        if (avx512bf16) features |= QK_FEATURE_AVX512BF16;
    }
    return features;
}

#elif defined(__aarch64__)
#if defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDHP
#define HWCAP_ASIMDHP (1UL << 10)
#endif
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1UL << 20)
#endif
#ifndef HWCAP2_I8MM
#define HWCAP2_I8MM (1UL << 13)
#endif
#ifndef HWCAP2_BF16
#define HWCAP2_BF16 (1UL << 14)
#endif
static uint32_t detect(void) {
    const unsigned long hw = getauxval(AT_HWCAP), hw2 = getauxval(AT_HWCAP2);
    uint32_t f = QK_FEATURE_NEON;   /* Advanced SIMD is mandatory on AArch64 Linux */
    if (hw & HWCAP_ASIMDDP) f |= QK_FEATURE_NEON_DOTPROD;
    if (hw & HWCAP_ASIMDHP) f |= QK_FEATURE_NEON_FP16;
    if (hw2 & HWCAP2_I8MM) f |= QK_FEATURE_NEON_I8MM;
    if (hw2 & HWCAP2_BF16) f |= QK_FEATURE_NEON_BF16;
    return f;
}
#elif defined(__APPLE__)
#include <sys/sysctl.h>
static int sysctl_flag(const char *name) {
    int v = 0;
    size_t size = sizeof v;
    return sysctlbyname(name, &v, &size, NULL, 0) == 0 && v;
}
static uint32_t detect(void) {
    uint32_t f = QK_FEATURE_NEON;
    if (sysctl_flag("hw.optional.arm.FEAT_DotProd")) f |= QK_FEATURE_NEON_DOTPROD;
    if (sysctl_flag("hw.optional.arm.FEAT_FP16")) f |= QK_FEATURE_NEON_FP16;
    if (sysctl_flag("hw.optional.arm.FEAT_I8MM")) f |= QK_FEATURE_NEON_I8MM;
    if (sysctl_flag("hw.optional.arm.FEAT_BF16")) f |= QK_FEATURE_NEON_BF16;
    return f;
}
#else
static uint32_t detect(void) { return QK_FEATURE_NEON; }
#endif

#else
static uint32_t detect(void) { return 0; }
#endif

uint32_t qk_cpu_features(void) {
    static _Atomic uint32_t cached = 0;   /* bit 31 marks "computed" */
    uint32_t v = atomic_load_explicit(&cached, memory_order_acquire);
    if (!v) {
        v = detect() | 0x80000000u;
        atomic_store_explicit(&cached, v, memory_order_release);
    }
    return v & 0x7FFFFFFFu;
}

/* The CPU's marketing name: the cpuid brand string on x86, sysctl on Apple platforms, /proc/cpuinfo elsewhere. */
static void cpu_name(char *out, size_t size) {
    snprintf(out, size, "unknown");
#if (defined(__x86_64__) || defined(_M_X64))
    uint32_t regs[12];
    if (__get_cpuid_max(0x80000000u, NULL) >= 0x80000004u) {
        for (uint32_t i = 0; i < 3; i++)
            __cpuid(0x80000002u + i, regs[4 * i], regs[4 * i + 1], regs[4 * i + 2], regs[4 * i + 3]);
        char brand[49];
        memcpy(brand, regs, 48);
        brand[48] = '\0';
        const char *b = brand;
        while (*b == ' ') b++;
        size_t len = strlen(b);
        while (len && b[len - 1] == ' ') len--;
        if (len) snprintf(out, size, "%.*s", (int)len, b);
    }
#elif defined(__APPLE__)
    size_t len = size;
    if (sysctlbyname("machdep.cpu.brand_string", out, &len, NULL, 0) != 0) snprintf(out, size, "unknown");
#elif defined(__linux__)
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[256], implementer[32] = "", part[32] = "";
    while (fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (!colon) continue;
        char *value = colon + 1;
        while (*value == ' ' || *value == '\t') value++;
        value[strcspn(value, "\n")] = '\0';
        if (!*value) continue;
        if (!strncmp(line, "model name", 10) || !strncmp(line, "Hardware", 8)) {
            snprintf(out, size, "%s", value);
            fclose(f);
            return;
        }
        if (!strncmp(line, "CPU implementer", 15) && !*implementer) snprintf(implementer, sizeof implementer, "%s", value);
        if (!strncmp(line, "CPU part", 8) && !*part) snprintf(part, sizeof part, "%s", value);
    }
    fclose(f);
    if (*implementer && *part) snprintf(out, size, "implementer %s, part %s", implementer, part);
#endif
}

size_t qk_cpu_name(char *buf, size_t size) {
    char name[128];
    cpu_name(name, sizeof name);
    if (buf && size) snprintf(buf, size, "%s", name);
    return strlen(name);
}

size_t qk_cpu_feature_names(char *buf, size_t size) {
    static const struct { uint32_t bit; const char *name; } names[] = {
        {QK_FEATURE_AVX2, "avx2+fma+f16c"}, {QK_FEATURE_AVXVNNI, "avxvnni"}, {QK_FEATURE_AVX512, "avx512f/bw/dq/vl"},
        {QK_FEATURE_AVX512VNNI, "avx512vnni"}, {QK_FEATURE_AVX512BF16, "avx512bf16"}, {QK_FEATURE_NEON, "neon"},
        {QK_FEATURE_NEON_DOTPROD, "dotprod"}, {QK_FEATURE_NEON_FP16, "fp16"}, {QK_FEATURE_NEON_I8MM, "i8mm"},
        {QK_FEATURE_NEON_BF16, "bf16"},
    };
    const uint32_t f = qk_cpu_features();
    char tmp[256] = "";
    size_t len = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!(f & names[i].bit)) continue;
        len += (size_t)snprintf(tmp + len, sizeof tmp - len, "%s%s", len ? " " : "", names[i].name);
    }
    if (buf && size) snprintf(buf, size, "%s", tmp);
    return len;
}
