#!/usr/bin/env bash
# Checks that a plugin exports exactly the taskmill entry point and carries
# no STB_GNU_UNIQUE symbols (they pin a library in memory).
#   scripts/check_plugin_abi.sh PLUGIN.so
set -euo pipefail
so="$1"
exported=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TDBRVWiu]$/ {print $3}' | sort)
if [ "$exported" != "taskmill_plugin_v1" ]; then
  echo "$so: exports must be exactly taskmill_plugin_v1, found:" >&2
  echo "$exported" >&2
  exit 1
fi
if readelf --dyn-syms -W "$so" | grep -q ' UNIQUE '; then
  echo "$so: has STB_GNU_UNIQUE symbols (build with -fno-gnu-unique / hidden visibility):" >&2
  readelf --dyn-syms -W "$so" | grep ' UNIQUE ' >&2
  exit 1
fi
echo "$so: ok"
