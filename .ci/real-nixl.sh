#!/usr/bin/env bash
# Installs real NIXL 1.5.1 (the PyPI wheels, CPU-only here) into a private venv, once, and prints
# the folder holding its C and C++ libraries (libnixl.so, libnixl_capi.so, libnixl_build.so,
# libserdes.so, plugins/) on stdout; everything else goes to stderr. Run programs on those
# libraries with UCX_MODULES='^ib*' (the bundled UCX crashes at exit on machines without IB).
#
#   NIXL_REAL_VENV   where the venv lives (default $CARGO_TARGET_DIR or target, /real-nixl-venv)
#   NIXL_REAL_VERSION  (default 1.5.1)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${NIXL_REAL_VENV:-${CARGO_TARGET_DIR:-$root/target}/real-nixl-venv}"
version="${NIXL_REAL_VERSION:-1.5.1}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" >&2
fi
if ! "$venv/bin/python" -c "import nixl_cu12" 2>/dev/null; then
  "$venv/bin/pip" install -q numpy >&2
  "$venv/bin/pip" install -q --no-deps "nixl==$version" "nixl-cu12==$version" >&2
fi
libs=$("$venv/bin/python" - <<'PY'
import os, sysconfig
print(os.path.join(sysconfig.get_paths()["purelib"], ".nixl_cu12.mesonpy.libs"))
PY
)
[ -f "$libs/libnixl_capi.so" ] || { echo "real-nixl: no libnixl_capi.so in $libs" >&2; exit 1; }
echo "$libs"
