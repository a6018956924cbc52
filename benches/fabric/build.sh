#!/usr/bin/env bash
# Builds rma_bw (libfabric's own RMA bandwidth; needs cc and libfabric-dev).
#   benches/fabric/build.sh [OUT]   (default: $CARGO_TARGET_DIR or target, /release/rma_bw)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-${CARGO_TARGET_DIR:-target}/release/rma_bw}
mkdir -p "$(dirname "$out")"
cc -O2 -std=c11 -Wall -Wextra -Werror -o "$out" "$here/rma_bw.c" -lfabric -lpthread
echo "$out"
