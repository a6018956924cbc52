#!/usr/bin/env bash
# Prints the public-API symbols that shared libraries export, one per line as
# "<mangled> <demangled>": nixlAgent, nixlEnumStrings, the descriptor classes, the
# nixlDescList<T> instantiations of the public descriptor types (members, vtables, typeinfo),
# their operators, nixlSerDes and the exported constants. NIXL's internals (nixlAgentData,
# sections, metadata backends, plugins, telemetry, nixlDescList of internal types, bundled
# abseil/asio/toml) are not public API and are filtered out.
#   cpp/abi/public-symbols.sh LIB.so [LIB.so ...]
set -euo pipefail
desc='nixl(Basic|Blob|Remote|Stride)Desc'
pattern="^(nixlAgent::|nixlEnumStrings::(memTypeStr|xferOpStr|statusStr)|${desc}::|nixlSerDes::"
pattern+="|nixlDescList<${desc}>::|(vtable|typeinfo|typeinfo name) for nixlDescList<${desc}>"
pattern+="|operator(==|!=)\\(${desc} const&|bool operator==<${desc}>"
pattern+="|default_metadata_label|nixl_null_agent)"
for lib in "$@"; do
    nm -D --defined-only "$lib" | awk '{print $NF}'
done | sort -u | while read -r mangled; do
    printf '%s %s\n' "$mangled" "$(printf '%s' "$mangled" | c++filt)"
done | awk -v pat="$pattern" '{ d = $0; sub(/^[^ ]+ /, "", d); if (d ~ pat) print }'
