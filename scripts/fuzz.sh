#!/usr/bin/env bash
# Coverage-guided fuzzing with clang's libFuzzer, under ASan and UBSan:
#   scripts/fuzz.sh [SECONDS] [TARGET]   (default 60 s each; TARGET: decode | broker | all)
# decode: the wire body decoders. broker: whole messages (any frame count,
# every frontend and backend command) sent over ZeroMQ into a real broker
# loop; an input that crashes or stalls the loop is a finding.
# FUZZ_DEPTH sets the nesting of the deep seed cases (default 200000).
# One core: the build runs with -j1 and the fuzzers one at a time, niced.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
if ! command -v clang++ >/dev/null || ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang libclang-rt-14-dev
fi
seconds="${1:-60}"
which="${2:-all}"
out=build-fuzz
CC=clang CXX=clang++ cmake -S . -B "$out" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTASKMILL_LIBFUZZER=ON \
  -DTASKMILL_SANITIZE=address,undefined -DTASKMILL_BUILD_BENCH=OFF >/dev/null
nice -n 10 cmake --build "$out" -j1 --target decode_fuzz broker_fuzz fuzz_seeds
mkdir -p "$out/corpus/decode" "$out/corpus/broker"
"$out/bin/fuzz_seeds" "$out/seeds/broker" "${FUZZ_DEPTH:-200000}"
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
if [[ "$which" == decode || "$which" == all ]]; then
  nice -n 10 "$out/bin/decode_fuzz" -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 \
    "$out/corpus/decode"
fi
if [[ "$which" == broker || "$which" == all ]]; then
  # Each seed once at full size (the deep ones are longer than -max_len).
  nice -n 10 "$out/bin/broker_fuzz" "$out"/seeds/broker/*
  nice -n 10 "$out/bin/broker_fuzz" -max_total_time="$seconds" -max_len=8192 -rss_limit_mb=4096 \
    -print_final_stats=1 "$out/corpus/broker" "$out/seeds/broker"
fi
