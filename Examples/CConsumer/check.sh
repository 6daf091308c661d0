#!/usr/bin/env bash
# Builds and runs Examples/CConsumer against an INSTALLED QuantKit (cmake --install prefix), three ways:
# pkg-config (shared), CMake find_package with QuantKit::quantkit, and with QuantKit::quantkit_static.
#   Examples/CConsumer/check.sh <install prefix> [work dir]
set -euo pipefail

prefix=$(cd "${1:?usage: check.sh <install prefix> [work dir]}" && pwd)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=${2:-$(mktemp -d "${TMPDIR:-/tmp}/quantkit-cconsumer.XXXXXX")}
mkdir -p "$work"
pc=$(find "$prefix" -path '*/pkgconfig/quantkit.pc' | head -1)
[[ -n "$pc" ]] || { echo "check.sh: no pkgconfig/quantkit.pc under $prefix" >&2; exit 1; }
libdir=$(dirname "$(dirname "$pc")")

echo "== pkg-config: $(PKG_CONFIG_PATH="$libdir/pkgconfig" pkg-config --cflags --libs quantkit)"
export PKG_CONFIG_PATH="$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
# shellcheck disable=SC2046
${CC:-cc} -std=c11 -Wall -Wextra -Werror -o "$work/consumer-pkgconfig" "$here/main.c" \
    $(pkg-config --cflags --libs quantkit) -Wl,-rpath,"$libdir"
"$work/consumer-pkgconfig"

for mode in shared static; do
    echo "== CMake find_package(QuantKit), $mode"
    static=OFF; [[ $mode == static ]] && static=ON
    cmake -S "$here" -B "$work/cmake-$mode" -DCMAKE_PREFIX_PATH="$prefix" -DQK_CONSUMER_STATIC=$static \
        -DCMAKE_BUILD_RPATH="$libdir" >/dev/null
    cmake --build "$work/cmake-$mode" >/dev/null
    ctest --test-dir "$work/cmake-$mode" --output-on-failure
done
