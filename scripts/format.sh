#!/usr/bin/env bash
# usage: scripts/format.sh [--check] [FILE...]
# Formats the C and C++ files git knows (or the FILEs given) with
# clang-format-14 and the tree's .clang-format.
#   --check  changes nothing: lists the files that differ from the format
#            and exits 1 if there is any (CI runs this, .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
clang_format=${CLANG_FORMAT:-clang-format-14}
check=0
if [ "${1:-}" = "--check" ]; then
  check=1
  shift
fi
if [ $# -gt 0 ]; then
  files=("$@")
else
  mapfile -t files < <(git ls-files '*.c' '*.h' '*.cpp' '*.hpp')
fi
if [ "$check" -eq 0 ]; then
  "$clang_format" -i --style=file "${files[@]}"
  exit 0
fi
differ=0
for f in "${files[@]}"; do
  if ! "$clang_format" --style=file "$f" | cmp -s - "$f"; then
    echo "not formatted: $f"
    differ=$((differ + 1))
  fi
done
echo "format: $differ of ${#files[@]} files differ from .clang-format (scripts/format.sh formats them)"
[ "$differ" -eq 0 ]
