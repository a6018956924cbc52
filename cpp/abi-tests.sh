#!/usr/bin/env bash
# Binary compatibility with NIXL 1.5.1's C++ libraries, proven by binaries:
#   1. installs nixl-rs (nixl-ffi/install.sh: libnixl_capi, then libnixl.so, libnixl_build.so,
#      libserdes.so and include/nixl/) into a scratch prefix;
#   2. symbol coverage: every public-API symbol of NIXL 1.5.1's libnixl.so / libnixl_build.so /
#      libserdes.so is exported by ours or listed in cpp/abi/excluded-symbols.txt;
#   3. builds cpp/abi/consumer.cpp ONCE per variant (C++17 -O0 and C++20 -O2 linked against
#      ours, C++17 -O2 linked against NIXL's) against the installed include/nixl/, linked
#      -lnixl -lnixl_build -lserdes and no rpath, and runs each
#      binary unchanged on ours and on NIXL's (LD_LIBRARY_PATH, UCX_MODULES='^ib*'): both runs
#      must exit 0, resolve libnixl.so from the intended folder, and print identical transcripts.
#
#   cpp/abi-tests.sh
#   NIXL_REAL_LIB_DIR=<.nixl_cu12.mesonpy.libs> cpp/abi-tests.sh   # skip the venv set-up
#
# Real NIXL comes from .ci/real-nixl.sh (PyPI, once). Without it (no network, no python3 venv)
# this prints "skipped: ..." and exits 0, unless NIXL_RS_REQUIRE lists nixl-real; without cmake
# or a C++ compiler likewise (requirement name: cc).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
required() { [[ ",${NIXL_RS_REQUIRE:-}," == *",$1,"* ]]; }
skip() {
    echo "skipped: $2"
    if required "$1"; then echo "NIXL_RS_REQUIRE lists $1: failing" >&2; exit 1; fi
    exit 0
}

command -v cmake >/dev/null 2>&1 && command -v c++ >/dev/null 2>&1 || skip cc "cmake or c++ not found"
real="${NIXL_REAL_LIB_DIR:-}"
if [[ -z "$real" ]]; then
    real="$(bash "$root/.ci/real-nixl.sh")" || skip nixl-real "real NIXL 1.5.1 could not be installed (.ci/real-nixl.sh)"
fi
[[ -f "$real/libnixl.so" && -f "$real/libnixl_build.so" ]] || skip nixl-real "no libnixl.so in $real"

work="$(mktemp -d "${TMPDIR:-/tmp}/nixl-rs-abi.XXXXXX")"
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"

echo "== install nixl-rs into a scratch prefix"
"$root/nixl-ffi/install.sh" --prefix "$prefix" >/dev/null
for f in libnixl.so libnixl_build.so libserdes.so libnixl_capi.so; do
    [[ -f "$prefix/lib/$f" ]] || { echo "abi-tests: install is missing lib/$f" >&2; exit 1; }
done

echo "== symbol coverage against $real"
"$here/abi/check-symbols.sh" "$real" "$prefix/lib"
# The check must be able to fail: without our libnixl_build.so (libserdes.so in its place) the
# descriptor symbols are missing.
mkdir "$work/broken"
cp "$prefix/lib/libnixl.so" "$prefix/lib/libserdes.so" "$work/broken/"
cp "$prefix/lib/libserdes.so" "$work/broken/libnixl_build.so"
if "$here/abi/check-symbols.sh" "$real" "$work/broken" >"$work/broken.txt"; then
    echo "abi-tests: check-symbols.sh passed a library set without libnixl_build.so" >&2
    exit 1
fi
grep -q '^MISSING: nixlBasicDesc::serialize' "$work/broken.txt"

# Runs a consumer binary on one library folder; prints its transcript on stdout.
run_on() {
    local bin="$1" libdir="$2" resolved
    resolved="$(LD_LIBRARY_PATH="$libdir" ldd "$bin" | awk '$1 == "libnixl.so" {print $3}')"
    if [[ "$(dirname "$resolved")" != "$libdir" ]]; then
        echo "abi-tests: libnixl.so resolved to '$resolved', not from $libdir" >&2
        return 1
    fi
    LD_LIBRARY_PATH="$libdir" UCX_MODULES='^ib*' timeout 120 "$bin" 2>"$bin.$(basename "$libdir").err" || {
        echo "abi-tests: $bin failed on $libdir; its stderr:" >&2
        tail -20 "$bin.$(basename "$libdir").err" >&2
        return 1
    }
}

# The third variant is linked against NIXL's own libraries, as a prebuilt engine is.
for variant in "17 -O0 $prefix/lib" "20 -O2 $prefix/lib" "17 -O2 $real"; do
    read -r std opt linkdir <<<"$variant"
    bin="$work/consumer-cxx$std$opt-$(basename "$linkdir")"
    echo "== consumer, C++$std $opt: built once against include/nixl, linked -lnixl -lnixl_build -lserdes in $linkdir"
    c++ -std="c++$std" "$opt" -Wall -Wextra -Werror -I"$prefix/include/nixl" "$here/abi/consumer.cpp" \
        -o "$bin" -L"$linkdir" -Wl,-rpath-link,"$linkdir" -Wl,--no-as-needed -lnixl -lnixl_build -lserdes -pthread
    needed="$(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | grep -E '^lib(nixl|nixl_build|serdes)\.so$' | sort | tr '\n' ' ')"
    [[ "$needed" == "libnixl.so libnixl_build.so libserdes.so " ]] || {
        echo "abi-tests: unexpected NEEDED entries: $needed" >&2
        exit 1
    }
    sum_before="$(sha256sum <"$bin")"
    run_on "$bin" "$prefix/lib" >"$bin.ours.txt"
    run_on "$bin" "$real" >"$bin.real.txt"
    [[ "$(sha256sum <"$bin")" == "$sum_before" ]]
    if ! diff -u "$bin.real.txt" "$bin.ours.txt"; then
        echo "abi-tests: the consumer's transcripts differ (- NIXL 1.5.1, + nixl-rs)" >&2
        exit 1
    fi
    [[ "$(tail -n1 "$bin.ours.txt")" == "done" ]] || { echo "abi-tests: consumer did not finish" >&2; exit 1; }
    echo "   same transcript on both ($(wc -l <"$bin.ours.txt") lines)"
done
echo "cpp/abi-tests.sh: all passed"
