#!/usr/bin/env bash
# The dashboard's own cost: a Release broker on a store of TASKS tasks
# (filled once by taskmill-index-bench, as `scripts/bench.sh --index`),
# measured SECONDS with no browser, then SECONDS with the dashboard open in
# headless Chromium on each page of PAGES, then SECONDS with no browser
# again; prints the broker's CPU (user + system, from /proc/PID/stat) per
# second of each run.
#   scripts/dashboard-bench.sh [DIR] [TASKS] [SECONDS]
#   (also `scripts/bench.sh --dashboard [DIR] [TASKS] [SECONDS]`)
# DIR default /tmp/taskmill-index-bench-TASKS; TASKS default 10000000;
# SECONDS default 60. Environment: TASKMILL_BUILD_DIR (default
# build-release), PAGES (default "#/ #/tasks #/tasks?state=FAILED #/queues"),
# RATE (tasks/s submitted meanwhile to a queue no host serves, so the page
# gets events; default 20).
# Starts its own broker and browser and ends only those, by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
tasks="${2:-10000000}"
dir="${1:-/tmp/taskmill-index-bench-$tasks}"
seconds="${3:-60}"
pages="${PAGES:-#/ #/tasks #/tasks?state=FAILED #/queues}"
rate="${RATE:-20}"
build="${TASKMILL_BUILD_DIR:-build-release}"
[[ "$build" = /* ]] || build="$root/$build"
[ -x /usr/bin/chromium ] || { echo "dashboard-bench: /usr/bin/chromium is missing (scripts/install-deps.sh)" >&2; exit 1; }

if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DTASKMILL_BUILD_TESTS=OFF -DTASKMILL_BUILD_BENCH=ON >/dev/null
fi
cmake --build "$build" -j "$(nproc)" --target taskmill-index-bench taskmill-broker taskmill >"$build/bench-build.log" 2>&1 ||
  { echo "dashboard-bench: build failed (see $build/bench-build.log)" >&2; exit 1; }
bin="$build/bin"
if [ ! -f "$dir/data.mdb" ]; then
  echo "filling $dir with $tasks tasks (once; kept for the next run)..." >&2
  "$bin/taskmill-index-bench" "$dir" "$tasks" >&2
fi

work=$(mktemp -d /tmp/taskmill-dash-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

token="bench-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
# Retention off: the filled tasks finished long ago and must stay stored.
"$bin/taskmill-broker" --data-dir "$dir" --frontend tcp://127.0.0.1:0 --backend tcp://127.0.0.1:0 --events "" \
  --http 127.0.0.1:0 --http-token "bench:write:$token" --durability none --map-size-mb 65536 \
  --retention-succeeded 0 --retention-failed 0 --retention-cancelled 0 --retention-expired 0 \
  2>"$work/broker.log" &
broker=$!
pids+=("$broker")
# The folder is reused: wait for the endpoints this broker wrote (its pid),
# not those a broker of an earlier run left behind.
written_by_broker() {
  python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if j.get("pid")==int(sys.argv[2]) and "http" in j else 1)' \
    "$dir/endpoints.json" "$broker" 2>/dev/null
}
for _ in $(seq 1 600); do
  [ -f "$dir/endpoints.json" ] && written_by_broker && kill -0 "$broker" 2>/dev/null && break
  kill -0 "$broker" 2>/dev/null || { cat "$work/broker.log" >&2; exit 1; }
  sleep 0.5
done
url=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["http"])' "$dir/endpoints.json")
frontend=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["frontend"])' "$dir/endpoints.json")

cpu_ticks() { awk '{print $14 + $15}' "/proc/$broker/stat"; }
hz=$(getconf CLK_TCK)

# A trickle of new tasks (no host serves their queue), so pages get events.
trickle() {
  while true; do
    "$bin/taskmill" --broker "$frontend" submit bench.idle --queue dash-bench-idle >/dev/null 2>&1 || true
    sleep "$(awk -v r="$rate" 'BEGIN { print 1 / r }')"
  done
}
if [ "$rate" != "0" ]; then
  trickle &
  pids+=("$!")
fi

measure() {  # label
  local before after
  before=$(cpu_ticks)
  sleep "$seconds"
  after=$(cpu_ticks)
  awk -v l="$1" -v t="$((after - before))" -v hz="$hz" -v s="$seconds" \
    'BEGIN { printf "%-34s %8.2f ms of broker CPU per second (%.3f%% of a core)\n", l, 1000 * t / hz / s, 100 * t / hz / s }'
}

echo "$tasks tasks stored in $dir; $rate tasks/s submitted meanwhile; ${seconds} s per run"
sleep 5  # let recovery's aftermath settle before the baseline
measure "no browser (baseline)"
for page in $pages; do
  sep='?'
  [[ "$page" == *\?* ]] && sep='&'
  # The token in the link logs the page in once and leaves the address.
  /usr/bin/chromium --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$work/profile-$RANDOM" --remote-debugging-port=0 "$url/$page${sep}token=$token" \
    >"$work/chromium.log" 2>&1 &
  chrome=$!
  pids+=("$chrome")
  sleep 5  # the browser starts and the page loads
  measure "dashboard open on $page"
  kill "$chrome" 2>/dev/null || true
  wait "$chrome" 2>/dev/null || true
done
# The same again with no browser: what the pages left behind (streams,
# connections) shows here.
measure "no browser (after the pages)"
