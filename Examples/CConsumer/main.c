/* A C program using the installed QuantKit: quantize/dequantize round trip with status checks. Built by
 * check.sh through pkg-config and through CMake's find_package(QuantKit). */
#include <quantkit.h>

#include <stdio.h>
#include <string.h>

static int check(qk_status status, const char *what) {
    if (status == QK_OK) return 0;
    fprintf(stderr, "%s failed: %s: %s\n", what, qk_status_string(status), qk_last_error_message());
    return 1;
}

int main(void) {
    if (check(qk_runtime_init(), "qk_runtime_init")) return 1;
    printf("QuantKit %s, ISA %s, %d threads (%s)\n", qk_version_string(), qk_isa_name(), qk_get_num_threads(),
           qk_thread_backend());

    /* scale 0.5, zero point 10: ties round half to even (0.25 -> 0, 1.75 -> 4), out-of-range values saturate. */
    const float x[8] = {-1.0f, 0.0f, 0.25f, 1.75f, 3.0f, 100.0f, 200.0f, -10.0f};
    const uint8_t want_q[8] = {8, 10, 10, 14, 16, 210, 255, 0};
    const float want_y[8] = {-1.0f, 0.0f, 0.0f, 2.0f, 3.0f, 100.0f, 122.5f, -5.0f};
    uint8_t q[8];
    float y[8];
    if (check(qk_quantize_per_tensor(QK_DTYPE_QUINT8, 8, x, q, 0.5f, 10), "qk_quantize_per_tensor")) return 1;
    if (check(qk_dequantize_per_tensor(QK_DTYPE_QUINT8, 8, q, y, 0.5f, 10), "qk_dequantize_per_tensor")) return 1;
    for (int i = 0; i < 8; i++) {
        if (q[i] != want_q[i] || y[i] != want_y[i]) {
            fprintf(stderr, "element %d: q=%u y=%g, expected q=%u y=%g\n", i, q[i], y[i], want_q[i], want_y[i]);
            return 1;
        }
    }

    /* A bad argument must come back as a status, never an abort. */
    if (qk_quantize_per_tensor(QK_DTYPE_QUINT8, 8, x, q, -1.0f, 10) != QK_ERROR_INVALID_ARGUMENT) {
        fprintf(stderr, "a negative scale was not rejected\n");
        return 1;
    }
    if (strlen(qk_last_error_message()) == 0) {
        fprintf(stderr, "no error message for a negative scale\n");
        return 1;
    }

    printf("C consumer round trip OK\n");
    return 0;
}
