#!/bin/bash
# Runs the GPU bundle built by gpu-bundle.sh (target-gpu/ at the repository root) on a machine
# with a CUDA device, and keeps every log under $OUT (the device tool's output folder) or
# /tmp/gpu-out. The three test binaries run side by side (each on its own CUDA context), then the
# bandwidth table alone, so that nothing else competes with its timings. Every step runs even
# when an earlier one failed; the exit status says whether any failed.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${OUT:-/tmp/gpu-out}
mkdir -p "$out"
cd "$root/target-gpu"
export RUST_BACKTRACE=1
# The GPU tests are `#[ignore = "needs a GPU"]` (a CPU run must not count them as passed): run
# them here, and make a missing device a failure rather than a skip.
export NIXL_RS_REQUIRE=gpu

{
    nvidia-smi -L
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
    uname -r
    ldd --version | head -1
    command -v cc || echo "no cc"
} >"$out/env.log" 2>&1
cat "$out/env.log"

# step NAME SECONDS COMMAND...: runs COMMAND with a time limit, logging to $out/NAME.log.
step() {
    local name=$1 limit=$2
    shift 2
    timeout "$limit" "$@" >"$out/$name.log" 2>&1
    echo "$?" >"$out/$name.rc"
}

step cuda_gpu 240 ./cuda_gpu --include-ignored --nocapture --test-threads=1 &
step cuda_ipc 120 ./cuda_ipc --include-ignored --nocapture --test-threads=1 &
step cuda_no_device 120 ./cuda_no_device --nocapture &
wait
step cuda-bw 150 ./cuda-bw 64k 1 16 64 256 1024

failed=0
for name in cuda_gpu cuda_ipc cuda_no_device cuda-bw; do
    rc=$(cat "$out/$name.rc")
    echo "=== $name: exit $rc"
    grep -E "^test |test result|panicked|skipped|Error|error|\|" "$out/$name.log" | head -60
    [ "$rc" = 0 ] || failed=1
done
exit $failed
