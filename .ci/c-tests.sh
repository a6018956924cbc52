#!/usr/bin/env bash
# nixl-ffi conformance without the nixl-sys suite: the crate's tests (header drift, C and C++
# tests against the shared and static library, header drop-in check against upstream's
# wrapper.h), and an install + pkg-config build of a C++ program.
# Needs: cc, c++, pkg-config.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
crate_dir=$("$root/.ci/fetch-nixl-sys.sh")
export NIXL_SYS_SRC="$crate_dir" NIXL_RS_REQUIRE="${NIXL_RS_REQUIRE:+$NIXL_RS_REQUIRE,}nixl-sys,cc,c++"
cd "$root"
# .ci/run has already run every crate's tests (with NIXL_SYS_SRC set); it passes
# C_TESTS_INSTALL_ONLY=1 to do only the install check below.
if [[ -z "${C_TESTS_INSTALL_ONLY:-}" ]]; then
    cargo test -p nixl-ffi -p nixl-core --lib
    cargo test -p nixl-ffi
fi

prefix="$CARGO_TARGET_DIR/nixl-capi-prefix"
rm -rf "$prefix"
nixl-ffi/install.sh --prefix "$prefix" --profile dev
for f in lib/libnixl_capi.so lib/libnixl_capi.a include/nixl_capi.h include/nixl.hpp lib/pkgconfig/nixl_capi.pc; do
    test -f "$prefix/$f" || { echo "install is missing $f" >&2; exit 1; }
done
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
bin="$CARGO_TARGET_DIR/pkgconfig-raii"
# shellcheck disable=SC2046
c++ -std=c++17 -Wall -Werror nixl-ffi/tests/c/test_raii.cpp -o "$bin" $(pkg-config --cflags --libs nixl_capi)
# No LD_LIBRARY_PATH: the .pc file's rpath must be enough.
"$bin"
echo "c-tests: ok"
