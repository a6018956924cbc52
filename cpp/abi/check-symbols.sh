#!/usr/bin/env bash
# Symbol coverage: every public-API symbol that NIXL's libnixl.so, libnixl_build.so and
# libserdes.so export (cpp/abi/public-symbols.sh) must be exported by nixl-rs's libnixl.so or
# libnixl_build.so, or be matched by a line of cpp/abi/excluded-symbols.txt with its reason.
# An exclusion that matches a symbol nixl-rs does export is stale and fails too.
#   cpp/abi/check-symbols.sh REAL_NIXL_LIB_DIR OUR_LIB_DIR
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
real="$1"
ours="$2"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$here/public-symbols.sh" "$real/libnixl.so" "$real/libnixl_build.so" "$real/libserdes.so" >"$work/real"
"$here/public-symbols.sh" "$ours/libnixl.so" "$ours/libnixl_build.so" "$ours/libserdes.so" >"$work/ours"
grep -v '^#' "$here/excluded-symbols.txt" | grep -v '^$' | cut -f1 >"$work/patterns"
[[ -s "$work/real" ]] || { echo "check-symbols: no public symbols found in $real" >&2; exit 1; }

fail=0
covered=0
excluded=0
while read -r mangled demangled; do
    if grep -qxF "$mangled" <(cut -d' ' -f1 "$work/ours"); then
        covered=$((covered + 1))
    elif printf '%s\n' "$mangled" | grep -qEf "$work/patterns"; then
        excluded=$((excluded + 1))
    else
        echo "MISSING: $demangled ($mangled)"
        fail=1
    fi
done <"$work/real"
while read -r pat; do
    if cut -d' ' -f1 "$work/ours" | grep -qE "$pat"; then
        echo "STALE EXCLUSION (nixl-rs exports it): $pat"
        fail=1
    fi
done <"$work/patterns"
echo "check-symbols: $(wc -l <"$work/real") public symbols in NIXL: $covered exported by nixl-rs, $excluded excluded with a reason"
exit "$fail"
