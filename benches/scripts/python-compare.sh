#!/usr/bin/env bash
# Runs benches/scripts/python_bench.py on real NIXL 1.5.1's Python package and on ours, in the
# same run, and prints both JSON lines.
#   benches/scripts/python-compare.sh [OUR_PYTHON]
# OUR_PYTHON: a python with `nixl` from ./nixl-py installed (default: a venv under target/ that
# this script creates with a release build). Real NIXL comes from .ci/real-nixl.sh's venv.
set -euo pipefail
cd "$(dirname "$0")/../.."
ours=${1:-}
if [ -z "$ours" ]; then
  venv="${CARGO_TARGET_DIR:-target}/pyvenv-bench"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install -q maturin numpy
  "$venv/bin/pip" install -q ./nixl-py
  ours="$venv/bin/python"
fi
real_lib=$(bash .ci/real-nixl.sh | tail -1)
real_py=""
for cand in "$real_lib/../../../../bin/python" "$(dirname "$real_lib")/../../../bin/python" /tmp/rn/bin/python; do
  if [ -x "$cand" ] && "$cand" -c 'import nixl' 2>/dev/null; then real_py=$cand; break; fi
done
[ -n "$real_py" ] || { echo "real NIXL's python not found (from .ci/real-nixl.sh: $real_lib)" >&2; exit 1; }
echo "real NIXL: $real_py"
echo "ours: $ours"
for tcp in 0 1; do
  tls=()
  [ "$tcp" = 1 ] && tls=(UCX_TLS=tcp)
  env "${tls[@]}" BENCH_TCP=$tcp UCX_MODULES='^ib*' NIXL_LOG_LEVEL=ERROR \
    "$real_py" benches/scripts/python_bench.py nixl-1.5.1 | grep '^{'
  BENCH_TCP=$tcp NIXL_LOG_LEVEL=ERROR "$ours" benches/scripts/python_bench.py nixl-rs | grep '^{'
done
