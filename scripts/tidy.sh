#!/usr/bin/env bash
# usage: scripts/tidy.sh [BUILD_DIR] [REGEX]
# Runs clang-tidy-14 with the tree's .clang-tidy over the sources of
# BUILD_DIR/compile_commands.json (default build/; configure it first)
# whose path matches REGEX (default: all), two at a time (JOBS=n to
# change). Exits non-zero if any check fires: .clang-tidy makes them errors.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${1:-build}"
regex="${2:-.*}"
[ -f "$build_dir/compile_commands.json" ] || { echo "no $build_dir/compile_commands.json: configure first" >&2; exit 2; }
# The commands are GCC's: clang does not know some of its warning flags.
exec run-clang-tidy-14 -p "$build_dir" -quiet -j "${JOBS:-2}" \
  -extra-arg=-Wno-unknown-warning-option -clang-tidy-binary clang-tidy-14 "$regex"
