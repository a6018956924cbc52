#!/usr/bin/env bash
# Conformance: builds the nixl-sys 1.5.2 test suite (from crates.io, unmodified apart from its
# toolchain pin and an empty [workspace] table) with `--features stub-api` and runs it against our libnixl_capi.so, once
# single-threaded and once with the default parallel test threads. Both runs must pass every
# test and the test processes must exit cleanly (status 0, no signal).
#
# Needs: cargo, a C++ compiler, libclang (Debian: libclang-dev) for bindgen.
# mem_view.rs needs CUDA and is not built.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
profile_dir="$CARGO_TARGET_DIR/debug"

# With NIXL_ETCD_ENDPOINTS set, build the library with its etcd store so that the suite's etcd
# test runs for real (it skips itself when the variable is unset).
features=()
[[ -n "${NIXL_ETCD_ENDPOINTS:-}" ]] && features=(--features etcd)
t0=$(date +%s)
(cd "$root" && cargo build -p nixl-ffi "${features[@]}")
t1=$(date +%s)
crate_dir=$("$root/.ci/fetch-nixl-sys.sh")
suite_target="$CARGO_TARGET_DIR/nixl-sys-suite/target"
t2=$(date +%s)
(cd "$crate_dir" && CARGO_TARGET_DIR="$suite_target" cargo test --features stub-api \
    --test tests --test test_sync_manager --no-run)
t3=$(date +%s)
echo "nixl-sys-suite: build nixl-ffi $((t1 - t0))s, fetch $((t2 - t1))s, build suite $((t3 - t2))s"

export LD_LIBRARY_PATH="$profile_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
status=0
for threads in 1 default; do
    args=()
    [[ "$threads" == 1 ]] && args=(--test-threads=1)
    for t in tests test_sync_manager; do
        s=$(date +%s)
        set +e
        (cd "$crate_dir" && CARGO_TARGET_DIR="$suite_target" cargo test --features stub-api \
            --test "$t" -- "${args[@]}")
        rc=$?
        set -e
        echo "nixl-sys-suite: $t (threads=$threads) exit status $rc in $(( $(date +%s) - s ))s"
        [[ $rc -ne 0 ]] && status=1
    done
done
exit $status
