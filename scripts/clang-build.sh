#!/usr/bin/env bash
# Builds the libraries, binaries and example plugins once with clang
# (clang-14, warnings as errors) in build-clang/, so that code
# only GCC accepts is caught. The tests are left out to keep CI time down:
# the GCC build runs them. Extra arguments go to the build (e.g. -j1).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${BUILD_DIR:-build-clang}"
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
CC="${CC:-clang-14}" CXX="${CXX:-clang++-14}" cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Debug \
  -DTASKMILL_WARNINGS_AS_ERRORS=ON -DTASKMILL_BUILD_TESTS=OFF -DTASKMILL_BUILD_BENCH=ON \
  "${launcher[@]}" >/dev/null
cmake --build "$build_dir" -j "${JOBS:-$(nproc)}" "$@"
