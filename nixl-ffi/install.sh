#!/usr/bin/env bash
# Builds libnixl_capi and installs it:
#   PREFIX/lib/libnixl_capi.so (its debug info split into PREFIX/lib/.debug/),
#   PREFIX/lib/libnixl_capi.a, PREFIX/lib/pkgconfig/nixl_capi.pc,
#   PREFIX/include/nixl_capi.h, PREFIX/include/nixl.hpp, PREFIX/include/nixl/ (NIXL's C++ API:
#   engines add -IPREFIX/include/nixl and `#include <nixl.h>`)
# and, with cmake and a C++ compiler, NIXL 1.5's C++ libraries over it (cpp/lib, see
# cpp/README.md): PREFIX/lib/libnixl.so, libnixl_build.so, libserdes.so, lib/pkgconfig/nixl.pc,
# lib/cmake/NIXL/NIXLConfig.cmake.
# Usage: nixl-ffi/install.sh --prefix /usr/local [--profile release|dev]
set -euo pipefail
prefix=/usr/local
profile=release
while [[ $# -gt 0 ]]; do
    case "$1" in
        --prefix) prefix="$2"; shift 2 ;;
        --profile) profile="$2"; shift 2 ;;
        *) echo "usage: $0 --prefix DIR [--profile release|dev]" >&2; exit 2 ;;
    esac
done
root="$(cd "$(dirname "$0")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
(cd "$root" && cargo build -p nixl-ffi --profile "$profile")
out="$target/$([[ "$profile" == dev ]] && echo debug || echo "$profile")"
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n1)
mkdir -p "$prefix/lib/pkgconfig" "$prefix/include"
install -m 0755 "$out/libnixl_capi.so" "$prefix/lib/libnixl_capi.so"
# Debug info split off into lib/.debug/ (where gdb looks, through the .gnu_debuglink it adds):
# the library itself shrinks to its code, and backtraces still resolve.
if command -v objcopy >/dev/null 2>&1; then
    mkdir -p "$prefix/lib/.debug"
    objcopy --only-keep-debug "$prefix/lib/libnixl_capi.so" "$prefix/lib/.debug/libnixl_capi.so.debug"
    chmod 0644 "$prefix/lib/.debug/libnixl_capi.so.debug"
    objcopy --strip-debug --add-gnu-debuglink="$prefix/lib/.debug/libnixl_capi.so.debug" \
        "$prefix/lib/libnixl_capi.so"
    chmod 0755 "$prefix/lib/libnixl_capi.so"
else
    echo "objcopy not found: libnixl_capi.so installed with its debug info" >&2
fi
install -m 0644 "$out/libnixl_capi.a" "$prefix/lib/libnixl_capi.a"
install -m 0644 "$root/include/nixl_capi.h" "$root/include/nixl.hpp" "$prefix/include/"
(cd "$root/include" && find nixl -type f -name '*.h' -exec install -D -m 0644 {} "$prefix/include/{}" \;)
sed -e "s|@PREFIX@|$prefix|" -e "s|@VERSION@|$version|" "$root/nixl-ffi/nixl_capi.pc.in" \
    > "$prefix/lib/pkgconfig/nixl_capi.pc"
echo "installed libnixl_capi into $prefix"
# The C++ libraries: include/nixl/ declares NIXL's API, and these define it.
if command -v cmake >/dev/null 2>&1 && command -v c++ >/dev/null 2>&1; then
    build="$target/cpp-install-build"
    cmake -S "$root/cpp" -B "$build" -DNIXL_RS_LIB_DIR="$out" -DNIXL_RS_BUILD_TESTS=OFF \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX="$prefix" >/dev/null
    cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" >/dev/null
    cmake --install "$build" >/dev/null
    echo "installed libnixl.so, libnixl_build.so, libserdes.so (NIXL 1.5's C++ API) into $prefix"
else
    echo "not built: libnixl.so (NIXL's C++ API, needed by include/nixl/) needs cmake and a C++ compiler" >&2
fi
