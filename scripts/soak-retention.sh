#!/usr/bin/env bash
# Retention at steady state: a fresh broker (durability none) and one host
# (1 worker process, 8 slots), loaded at full speed with no-op tasks by
# taskmill-bench throughput runs back to back.
#   scripts/soak-retention.sh [--minutes N] [--retention DURATION]
#   --minutes N          how long the load runs with retention on (default 10)
#   --retention D        retention-succeeded for the run (default 5s)
# Prints, every 10 s: elapsed time, data.mdb size (MiB), broker RSS (MiB),
# tasks finished and deleted so far, and the throughput of the last run;
# then a summary with the throughput of the same load with retention off
# (measured first, on its own fresh broker) and on (the runs after the first
# minute). Environment: TASKMILL_BUILD_DIR (default build-release; built if
# missing), RUN_N (tasks per throughput run, default 100000).
# Starts its own broker and host processes and ends only those, by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

minutes=10
retention=5s
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) minutes="${2:?--minutes needs a number}"; shift ;;
    --retention) retention="${2:?--retention needs a duration}"; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "soak-retention.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done
run_n=${RUN_N:-100000}

source "$root/scripts/lib/release.sh"
release_build soak-retention.sh taskmill-broker taskmill-host taskmill-bench taskmill echo
work_folder taskmill-soak

json_get() { python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get(sys.argv[2], 0))' "$1" "$2"; }
rss_mb() { awk '$1=="VmRSS:" {printf "%.1f", $2/1024}' "/proc/$1/status" 2>/dev/null || echo 0; }
file_mb() { awk -v b="$(stat -c %s "$1" 2>/dev/null || echo 0)" 'BEGIN {printf "%.1f", b/1048576}'; }

# start DATA RETENTION: sets broker_pid, host_pid, frontend.
start() {
  local data=$1 keep=$2
  mkdir -p "$data"
  "$bin/taskmill-broker" --data-dir "$data" --frontend tcp://127.0.0.1:0 --backend tcp://127.0.0.1:0 \
    --events "" --durability none --retention-succeeded "$keep" 2>>"$work/broker.log" &
  broker_pid=$!
  pids+=("$broker_pid")
  for _ in $(seq 1 600); do
    [ -s "$data/endpoints.json" ] && break
    kill -0 "$broker_pid" 2>/dev/null || { tail -20 "$work/broker.log" >&2; exit 1; }
    sleep 0.05
  done
  frontend=$(json_get "$(cat "$data/endpoints.json")" frontend)
  local backend
  backend=$(json_get "$(cat "$data/endpoints.json")" backend)
  "$bin/taskmill-host" --broker "$backend" --plugins "$build/plugins" --processes 1 --concurrency 8 \
    --run-dir "$(mktemp -d "$work/run-XXXXXX")" 2>>"$work/host.log" &
  host_pid=$!
  pids+=("$host_pid")
}
stop_all() {
  stop_pid "$host_pid"
  stop_pid "$broker_pid"
  pids=()
}
throughput() {
  "$bin/taskmill-bench" throughput --count "$run_n" --batch 500 --window 8 --warmup 20 --deadline 600 \
    --broker "$frontend" 2>/dev/null || echo '{}'
}
counter() {  # counter NAME: a STATS counter of the broker
  "$bin/taskmill" --broker "$frontend" --json stats 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["counters"].get(sys.argv[1], 0))' "$1" 2>/dev/null || echo 0
}

echo "soak: retention-succeeded=$retention, ${minutes} min, runs of $run_n tasks ($(nproc) cores)" >&2

# ---- retention off: the reference throughput ----
start "$work/data-off" 0
off=()
for _ in 1 2 3; do off+=("$(json_get "$(throughput)" throughput_tps)"); done
stop_all
echo "retention off: ${off[*]} tasks/s" >&2

# ---- retention on, for --minutes, sampled every 10 s ----
data="$work/data-on"
start "$data" "$retention"
samples="$work/samples"
: > "$samples"
(
  t0=$(date +%s)
  while kill -0 "$broker_pid" 2>/dev/null; do
    printf '%s %s %s %s %s\n' "$(($(date +%s) - t0))" "$(file_mb "$data/data.mdb")" "$(rss_mb "$broker_pid")" \
      "$(counter succeeded)" "$(counter deleted)" >> "$samples"
    tail -1 "$samples" | awk '{printf "  t=%4ss data.mdb=%7s MiB rss=%6s MiB succeeded=%s deleted=%s\n", $1, $2, $3, $4, $5}' >&2
    sleep 10
  done
) &
sampler=$!
pids+=("$sampler")
on=()
end=$(($(date +%s) + minutes * 60))
started=$(date +%s)
while [ "$(date +%s)" -lt "$end" ]; do
  tps=$(json_get "$(throughput)" throughput_tps)
  # The first minute is warm-up: the store fills to its steady size.
  [ $(($(date +%s) - started)) -gt 60 ] && on+=("$tps")
done
stop_pid "$sampler"
stop_all

python3 - "$samples" "${off[*]}" "${on[*]}" <<'PY'
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
off = [float(x) for x in sys.argv[2].split()]
on = [float(x) for x in sys.argv[3].split()] or [0.0]
warm = [r for r in rows if r[0] >= 60] or rows
print("samples after warm-up (t >= 60 s): %d" % len(warm))
print("data.mdb MiB: min %.1f max %.1f last %.1f" % (min(r[1] for r in warm), max(r[1] for r in warm), warm[-1][1]))
print("broker RSS MiB: min %.1f max %.1f last %.1f" % (min(r[2] for r in warm), max(r[2] for r in warm), warm[-1][2]))
print("finished %d, deleted %d" % (rows[-1][3], rows[-1][4]))
m_off, m_on = statistics.median(off), statistics.median(on)
print("throughput tasks/s: retention off median %.0f %s, on median %.0f (%d runs), on/off %.3f"
      % (m_off, off, m_on, len(on), m_on / m_off if m_off else 0))
PY
