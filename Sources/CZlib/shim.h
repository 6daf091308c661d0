#ifndef QUANTKIT_CZLIB_SHIM_H
#define QUANTKIT_CZLIB_SHIM_H

/* System zlib (Debian: zlib1g-dev; Apple SDKs ship it). QuantKit only inflates gzip files. */
#include <zlib.h>

/* inflateInit2 is a macro, which Swift cannot call: windowBits 15 + 16 accepts a gzip wrapper only. */
static inline int quantkit_inflate_init_gzip(z_streamp stream) {
    return inflateInit2(stream, 15 + 16);
}

#endif
