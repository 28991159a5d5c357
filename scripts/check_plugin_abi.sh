#!/usr/bin/env bash
# Checks that each plugin exports exactly the taskmill entry point and
# carries no STB_GNU_UNIQUE symbols (they pin a library in memory). Prints
# "PLUGIN.so: ok" for each good one and what is wrong with each bad one;
# exits 0 only if all are good. Needs nm and readelf (binutils). Installed
# as <prefix>/bin/taskmill-check-plugin-abi.
#   scripts/check_plugin_abi.sh PLUGIN.so...
set -euo pipefail
if [ $# -eq 0 ]; then
  echo "usage: $(basename "$0") PLUGIN.so..." >&2
  exit 2
fi

check() {
  local so=$1 exported
  exported=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TDBRVWiu]$/ {print $3}' | sort) || return 1
  if [ "$exported" != "taskmill_plugin_v1" ]; then
    echo "$so: exports must be exactly taskmill_plugin_v1, found:" >&2
    echo "$exported" >&2
    return 1
  fi
  if readelf --dyn-syms -W "$so" | grep -q ' UNIQUE '; then
    echo "$so: has STB_GNU_UNIQUE symbols (build with -fno-gnu-unique / hidden visibility):" >&2
    readelf --dyn-syms -W "$so" | grep ' UNIQUE ' >&2
    return 1
  fi
  echo "$so: ok"
}

rc=0
for so in "$@"; do
  check "$so" || rc=1
done
exit $rc
