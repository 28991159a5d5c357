#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole suite through ctest.
#   scripts/test.sh                 Debug build in build/
#   TASKMILL_SANITIZE=address,undefined scripts/test.sh   sanitized build in build-asan/
# Extra arguments go to ctest (e.g. -R integration).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

sanitize="${TASKMILL_SANITIZE:-}"
build_dir="${BUILD_DIR:-build}"
if [ -n "$sanitize" ]; then
  build_dir="${BUILD_DIR:-build-asan}"
fi
jobs="${JOBS:-$(nproc)}"

cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-Debug}" \
  -DTASKMILL_SANITIZE="$sanitize" -DTASKMILL_WARNINGS_AS_ERRORS=ON >/dev/null
cmake --build "$build_dir" -j "$jobs"

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
cd "$build_dir"
ctest --output-on-failure -j "$jobs" --timeout 300 "$@"
