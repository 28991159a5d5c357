#!/usr/bin/env bash
# Retention at steady state: a fresh broker (durability none) and one host
# (1 worker process, 8 slots), loaded at full speed with no-op tasks by
# taskmill-bench throughput runs back to back.
#   scripts/soak-retention.sh [--minutes N] [--off-minutes M] [--retention DURATION]
#   --minutes N          how long the load runs with retention on (default 10)
#   --off-minutes M      how long the same load runs first with retention off
#                        (default N): the store then grows all the while
#   --retention D        retention-succeeded for the run (default 5s)
# Prints, every 10 s of the run with retention: elapsed time, data.mdb size
# (MiB), broker RSS (MiB), tasks finished and deleted so far; then a
# summary: the file and RSS after warm-up, and the throughput with
# retention on and off (medians of the runs that began after the first
# minute of each), and the first runs with retention off on a fresh store.
# Environment: TASKMILL_BUILD_DIR (default build-release; built if
# missing), RUN_N (tasks per throughput run, default 100000).
# Starts its own broker and host processes and ends only those, by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

minutes=10
off_minutes=
retention=5s
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) minutes="${2:?--minutes needs a number}"; shift ;;
    --retention) retention="${2:?--retention needs a duration}"; shift ;;
    --off-minutes) off_minutes="${2:?--off-minutes needs a number}"; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "soak-retention.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done
run_n=${RUN_N:-100000}
off_minutes=${off_minutes:-$minutes}

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

# load_for MINUTES: throughput runs back to back for MINUTES; sets `first`
# (the first 3 runs) and `steady` (the runs that began after the first
# minute, when the store has grown to its steady size).
load_for() {
  local end started tps
  first=()
  steady=()
  end=$(($(date +%s) + $1 * 60))
  started=$(date +%s)
  while [ "$(date +%s)" -lt "$end" ] || [ ${#first[@]} -lt 3 ]; do
    local began=$(($(date +%s) - started))
    tps=$(json_get "$(throughput)" throughput_tps)
    [ ${#first[@]} -lt 3 ] && first+=("$tps")
    [ "$began" -ge 60 ] && steady+=("$tps")
  done
}

# ---- retention off: the reference, the same load for as long ----
start "$work/data-off" 0
load_for "$off_minutes"
off_first=("${first[@]}")
off=("${steady[@]}")
off_mb=$(file_mb "$work/data-off/data.mdb")
stop_all
echo "retention off: first runs ${off_first[*]} tasks/s; ${#off[@]} runs after the first minute; data.mdb ${off_mb} MiB" >&2

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
load_for "$minutes"
on=("${steady[@]}")
stop_pid "$sampler"
stop_all

python3 - "$samples" "${off[*]}" "${on[*]}" "${off_first[*]}" <<'PY'
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
off = [float(x) for x in sys.argv[2].split()] or [0.0]
on = [float(x) for x in sys.argv[3].split()] or [0.0]
fresh = [float(x) for x in sys.argv[4].split()]
warm = [r for r in rows if r[0] >= 60] or rows
print("samples after warm-up (t >= 60 s): %d" % len(warm))
print("data.mdb MiB: min %.1f max %.1f last %.1f" % (min(r[1] for r in warm), max(r[1] for r in warm), warm[-1][1]))
print("broker RSS MiB: min %.1f max %.1f last %.1f" % (min(r[2] for r in warm), max(r[2] for r in warm), warm[-1][2]))
print("finished %d, deleted %d" % (rows[-1][3], rows[-1][4]))
m_off, m_on, m_fresh = statistics.median(off), statistics.median(on), statistics.median(fresh)
print("throughput tasks/s, medians of the runs after the first minute: retention off %.0f (%d runs), "
      "on %.0f (%d runs), on/off %.3f" % (m_off, len(off), m_on, len(on), m_on / m_off if m_off else 0))
print("retention off, first 3 runs on a fresh store: median %.0f %s; on / that %.3f"
      % (m_fresh, fresh, m_on / m_fresh if m_fresh else 0))
PY
