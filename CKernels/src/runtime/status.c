/* Status strings and the thread-local message of the last failure. */
#include <stdarg.h>
#include <stdio.h>

#include "qk_internal.h"

static _Thread_local char last_message[512];

const char *qk_status_string(qk_status status) {
    switch (status) {
    case QK_OK: return "ok";
    case QK_ERROR_INVALID_ARGUMENT: return "invalid argument";
    case QK_ERROR_UNSUPPORTED_ISA: return "unsupported ISA";
    case QK_ERROR_UNKNOWN_ISA: return "unknown ISA";
    case QK_ERROR_OUT_OF_MEMORY: return "out of memory";
    case QK_ERROR_OVERFLOW: return "size overflow";
    }
    return "unknown status";
}

const char *qk_last_error_message(void) { return last_message; }

void qk_clear_error(void) { last_message[0] = '\0'; }

qk_status qk_fail(qk_status status, const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    vsnprintf(last_message, sizeof last_message, fmt, args);
    va_end(args);
    return status;
}

#define QK_STR2(x) #x
#define QK_STR(x) QK_STR2(x)
const char *qk_version_string(void) {
    return QK_STR(QK_VERSION_MAJOR) "." QK_STR(QK_VERSION_MINOR) "." QK_STR(QK_VERSION_PATCH);
}
