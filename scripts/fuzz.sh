#!/usr/bin/env bash
# Coverage-guided fuzzing of the wire decoders with clang's libFuzzer.
#   scripts/fuzz.sh [SECONDS]   (default 60)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
if ! command -v clang++ >/dev/null || ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang libclang-rt-14-dev
fi
seconds="${1:-60}"
out=build-fuzz
mkdir -p "$out/corpus"
clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -DMSGPACK_NO_BOOST \
  -Iprotocol/include tests/fuzz/decode_fuzz.cpp protocol/src/messages.cpp protocol/src/result.cpp \
  -o "$out/decode_fuzz"
"$out/decode_fuzz" -max_total_time="$seconds" -max_len=4096 "$out/corpus"
