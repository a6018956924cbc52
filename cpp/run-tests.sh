#!/usr/bin/env bash
# Builds and runs nixl-rs's C++ side: configures cpp/ with CMake against libnixl_capi.so,
# builds libnixl.so / libnixl_build.so / libserdes.so, the tests and the example plugin with
# -Wall -Wextra -Werror, runs them (ctest), then
# installs the package into a scratch prefix and builds an engine-style consumer against it
# twice: through find_package(NIXL CONFIG) and through pkg-config (nixl.pc).
#
#   cpp/run-tests.sh            # builds libnixl_capi with cargo first
#   NIXL_RS_LIB_DIR=<dir> cpp/run-tests.sh   # uses an already built libnixl_capi.so
#   NIXL_RS_SANITIZE=1 cpp/run-tests.sh      # C++ code under AddressSanitizer + UBSan
#
# ctest runs twice: with our net backend ("UCX"), then with LIBFABRIC on libfabric's tcp
# provider moving the data (the tests' agents and the transfer agent take the backend from
# NIXL_RS_TEST_BACKEND / KVX_NIXL_BACKEND). Without libfabric1 the second pass prints
# "skipped: ..." and fails when NIXL_RS_REQUIRE lists libfabric.
#
# Exits non-zero on any failure; prints "skipped: <why>" and exits 0 if cmake is missing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"

if ! command -v cmake >/dev/null 2>&1; then
    echo "skipped: cmake not found (apt-get install cmake)"
    exit 0
fi
if ! command -v c++ >/dev/null 2>&1; then
    echo "skipped: no C++ compiler (c++) on PATH"
    exit 0
fi

if [[ -z "${NIXL_RS_LIB_DIR:-}" ]]; then
    target="${CARGO_TARGET_DIR:-$root/target}"
    (cd "$root" && cargo build --release -p nixl-ffi)
    NIXL_RS_LIB_DIR="$target/release"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/nixl-rs-cpp.XXXXXX")"
trap 'rm -rf "$work"' EXIT
jobs="$(nproc 2>/dev/null || echo 2)"

echo "== configure, build and test cpp/ (libnixl_capi from $NIXL_RS_LIB_DIR)"
sanitize=()
san_flags=""
if [[ "${NIXL_RS_SANITIZE:-0}" == 1 ]]; then
    # The libraries are instrumented too, so every program linking them must be.
    san_flags="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
    sanitize=("-DCMAKE_CXX_FLAGS=$san_flags")
fi
cmake -S "$here" -B "$work/build" -DNIXL_RS_LIB_DIR="$NIXL_RS_LIB_DIR" \
    -DCMAKE_INSTALL_PREFIX="$work/prefix" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${sanitize[@]}" >/dev/null
cmake --build "$work/build" -j "$jobs"
# A peer that hangs must fail the run, not block it.
NIXL_RS_PEER_TIMEOUT_MS="${NIXL_RS_PEER_TIMEOUT_MS:-1500}" \
    ctest --test-dir "$work/build" --output-on-failure

echo "== the same tests with LIBFABRIC (provider tcp) as the network backend"
if ldconfig -p 2>/dev/null | grep -q 'libfabric\.so\.1 '; then
    NIXL_RS_TEST_BACKEND=LIBFABRIC KVX_NIXL_BACKEND=LIBFABRIC FI_PROVIDER=tcp \
        NIXL_RS_PEER_TIMEOUT_MS="${NIXL_RS_PEER_TIMEOUT_MS:-1500}" \
        ctest --test-dir "$work/build" --output-on-failure
else
    echo "skipped: C++ tests on LIBFABRIC (libfabric.so.1 not found: apt-get install libfabric1)"
    if [[ ",${NIXL_RS_REQUIRE:-}," == *",libfabric,"* ]]; then
        echo "NIXL_RS_REQUIRE lists libfabric: failing" >&2
        exit 1
    fi
fi

echo "== install, then build a consumer with find_package(NIXL CONFIG)"
cmake --install "$work/build" >/dev/null
cmake -S "$here/consumer" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$work/prefix" "${sanitize[@]}" >/dev/null
cmake --build "$work/consumer" -j "$jobs"
LD_LIBRARY_PATH="$work/prefix/lib" "$work/consumer/consumer"

if command -v pkg-config >/dev/null 2>&1; then
    echo "== build the consumer with pkg-config (nixl.pc)"
    pcdir="$(dirname "$(find "$work/prefix" -name nixl.pc | head -n1)")"
    # shellcheck disable=SC2046,SC2086
    c++ -std=c++17 -Wall -Wextra -Werror $san_flags "$here/consumer/main.cpp" -o "$work/consumer-pc" \
        $(PKG_CONFIG_PATH="$pcdir" pkg-config --cflags --libs nixl)
    "$work/consumer-pc"
else
    echo "pkg-config check skipped: pkg-config not found"
fi
echo "cpp/run-tests.sh: all passed"
