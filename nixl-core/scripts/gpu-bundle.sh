#!/bin/sh
# Builds the CUDA GPU tests and benchmark in release mode and copies them, under stable names,
# into target-gpu/ at the repository root (ignored by git, small enough to carry to the device
# machine: debug info is stripped, about 8 MB in all). Run from anywhere; honours
# CARGO_TARGET_DIR. Needs jq and strip.
set -eu
root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
cd "$root"
out=target-gpu
mkdir -p "$out"
cargo test -p nixl-core --release --test cuda_gpu --test cuda_ipc --test cuda_no_device --no-run \
    --message-format=json 2>/dev/null |
    jq -r 'select(.reason == "compiler-artifact" and .target.kind == ["test"]) | "\(.target.name) \(.executable)"' |
    while read -r name exe; do cp "$exe" "$out/$name"; done
cargo build -q -p nixl-core --release --example cuda-bw
cp "${CARGO_TARGET_DIR:-target}/release/examples/cuda-bw" "$out/"
strip --strip-debug "$out"/*
ls -l "$out"
