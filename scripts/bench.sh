#!/usr/bin/env bash
# Measures taskmill on this machine over loopback: a fresh broker and one
# host (1 worker process, 8 slots, default prefetch) per run, for both
# durability modes.
#   scripts/bench.sh [--quick] [--json FILE] [--peers] [--rate-limit]
#   scripts/bench.sh --cluster [--quick] [--json FILE]
#   scripts/bench.sh --index [DIR] [TASKS]
#   scripts/bench.sh --dashboard [DIR] [TASKS] [SECONDS]
#   --quick      smaller counts and 1 trial (under 2 minutes)
#   --rate-limit only this: a queue limited to 100/s (burst RATE_BURST,
#                default 1; 0 = the rate) with 10 idle slots, RATE_N tasks
#                (default 6100, a minute); prints the
#                rate of the starts the broker recorded (about 70 s)
#   --cluster    only this: a 3-member cluster on loopback beside a single
#                broker (throughput, each trial; ratio of the medians), then
#                FAILOVER_KILLS (default 20, --quick 5) SIGKILLs of the
#                leader, timed to the first SUBMIT a survivor acknowledges
#                (scripts/lib/bench-cluster.sh); ELECTION_MS sets the
#                members' election timeout (default theirs, 300); their logs
#                stay in CLUSTER_LOGS (default /tmp/taskmill-bench-cluster-logs)
#   --json FILE  write every figure as one JSON object to FILE
#   --peers      also run the peer benchmark (../shared/peers: BullMQ and
#                Celery) and print taskmill/peer ratios; slow, needs root
#   --python     only the Python client benchmark (scripts/bench_python.py):
#                taskmill's Python client beside Celery's and RQ's, this run
#   --index      only the listing benchmark: fill a store in DIR (default
#                /tmp/taskmill-index-bench, kept for the next run) with TASKS
#                tasks (default 10000000, ~6 GB) and time TASKS pages in the
#                broker (taskmill-index-bench)
#   --dashboard  only the dashboard's cost: the broker's CPU per second with
#                the dashboard open in headless Chromium on a store of TASKS
#                tasks (scripts/dashboard-bench.sh)
# Environment: TASKMILL_BUILD_DIR (default build-release; built if missing),
# TRIALS (default 3, --quick 1), TP_N, LAT_K, BACKLOG_N to override counts,
# HOST_ARGS (default "--concurrency 8") for the host's slots and prefetch,
# PY_N, PY_K (--python: tasks submitted, round trips; default 5000, 500).
# Starts its own broker and host processes and ends only those, by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

quick=0
rate_only=0
cluster_only=0
json_out=""
peers=0
if [ "${1:-}" = "--dashboard" ]; then
  shift
  exec "$root/scripts/dashboard-bench.sh" "$@"
fi
python_only=0
if [ "${1:-}" = "--index" ]; then
  build="${TASKMILL_BUILD_DIR:-build-release}"
  [[ "$build" = /* ]] || build="$root/$build"
  if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DTASKMILL_BUILD_TESTS=OFF -DTASKMILL_BUILD_BENCH=ON >/dev/null
  fi
  cmake --build "$build" -j "$(nproc)" --target taskmill-index-bench >"$build/bench-build.log" 2>&1 ||
    { echo "bench.sh: building taskmill-index-bench failed (see $build/bench-build.log)" >&2; exit 1; }
  exec "$build/bin/taskmill-index-bench" "${2:-/tmp/taskmill-index-bench}" "${3:-10000000}"
fi
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --json) json_out="${2:?--json needs a file}"; shift ;;
    --peers) peers=1 ;;
    --rate-limit) rate_only=1 ;;
    --cluster) cluster_only=1 ;;
    --python) python_only=1 ;;
    -h|--help) sed -n '2,37p' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done
if [ -n "$json_out" ] && [[ "$json_out" != /* ]]; then json_out="$root/$json_out"; fi

if [ "$quick" = 1 ]; then
  trials=${TRIALS:-1}; tp_n=${TP_N:-20000}; lat_k=${LAT_K:-300}; backlog_n=${BACKLOG_N:-100000}
else
  trials=${TRIALS:-3}; tp_n=${TP_N:-100000}; lat_k=${LAT_K:-2000}; backlog_n=${BACKLOG_N:-1000000}
fi

source "$root/scripts/lib/release.sh"
# Incremental: measures the current tree; a no-op when it is up to date.
release_build bench.sh taskmill-broker taskmill-host taskmill-bench taskmill echo
plugins="$build/plugins"

work_folder taskmill-bench

# ---- --python: the Python clients (taskmill, Celery, RQ) ----
if [ "$python_only" = 1 ]; then
  if [ "$quick" = 1 ]; then py_n=${PY_N:-1000}; py_k=${PY_K:-100}; else py_n=${PY_N:-5000}; py_k=${PY_K:-500}; fi
  /usr/bin/python3 "$root/scripts/bench_python.py" --bin "$bin" --plugins "$plugins" --work "$work" \
    --count "$py_n" --rtt "$py_k" ${json_out:+--json "$json_out"}
  exit 0
fi
runs="$work/runs.jsonl"
: > "$runs"

# /proc/PID/status field in MiB (kB / 1024), 0 if the process is gone.
status_mb() {
  awk -v k="$2:" '$1==k {printf "%.1f", $2/1024; found=1} END {if (!found) print 0}' "/proc/$1/status" 2>/dev/null || echo 0
}
# Sum of a field over a process and its children (the host and its workers).
tree_mb() {
  local total
  total=$(status_mb "$1" "$2")
  for child in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
    total=$(awk -v a="$total" -v b="$(status_mb "$child" "$2")" 'BEGIN {printf "%.1f", a+b}')
  done
  echo "$total"
}
# CPU time (user + system, clock ticks) of a process, or of it and its children.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
tree_ticks() {
  local total
  total=$(cpu_ticks "$1")
  for child in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
    total=$((total + $(cpu_ticks "$child")))
  done
  echo "$total"
}
# Microseconds of CPU per task: ticks_delta * 1e6 / CLK_TCK / tasks.
us_per_task() { awk -v t="$1" -v hz="$(getconf CLK_TCK)" -v n="$2" 'BEGIN {printf "%.1f", t * 1e6 / hz / n}'; }
json_get() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
now_ms() { date +%s%3N; }

# start_broker DATA DURABILITY [PORTS...]: sets broker_pid, frontend, backend.
start_broker() {
  local data=$1 durability=$2 fe=${3:-tcp://127.0.0.1:0} be=${4:-tcp://127.0.0.1:0} ev=${5:-tcp://127.0.0.1:0}
  mkdir -p "$data"
  rm -f "$data/endpoints.json"
  "$bin/taskmill-broker" --data-dir "$data" --frontend "$fe" --backend "$be" --events "$ev" \
    --durability "$durability" 2>>"$work/broker.log" &
  broker_pid=$!
  pids+=("$broker_pid")
  for _ in $(seq 1 600); do
    [ -s "$data/endpoints.json" ] && break
    kill -0 "$broker_pid" 2>/dev/null || { echo "broker exited; see log:" >&2; tail -20 "$work/broker.log" >&2; exit 1; }
    sleep 0.05
  done
  [ -s "$data/endpoints.json" ] || { echo "broker did not write endpoints.json" >&2; exit 1; }
  frontend=$(json_get "$(cat "$data/endpoints.json")" frontend)
  backend=$(json_get "$(cat "$data/endpoints.json")" backend)
  events=$(json_get "$(cat "$data/endpoints.json")" events)
}
# start_host QUEUE: sets host_pid.
start_host() {
  local run_dir
  run_dir=$(mktemp -d "$work/run-XXXXXX")
  # shellcheck disable=SC2086 # HOST_ARGS is a list of options
  "$bin/taskmill-host" --broker "$backend" --plugins "$plugins" --processes 1 ${HOST_ARGS:---concurrency 8} \
    --run-dir "$run_dir" --queues "$1" 2>>"$work/host.log" &
  host_pid=$!
  pids+=("$host_pid")
}
forget_pid() {
  local keep=() p
  for p in "${pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  pids=("${keep[@]}")
}
# record JSON KEY=VALUE...: appends the bench's object plus our fields.
record() {
  python3 - "$runs" "$@" <<'PY'
import json, sys
path, obj, extra = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3:]
for kv in extra:
    k, v = kv.split("=", 1)
    try: v = json.loads(v)
    except ValueError: pass
    obj[k] = v
open(path, "a").write(json.dumps(obj) + "\n")
PY
}
bench() { "$bin/taskmill-bench" "$@" --broker "$frontend" || true; }

# ---- --cluster: a 3-member cluster beside a single broker, and failover ----
if [ "$cluster_only" = 1 ]; then
  # shellcheck source=scripts/lib/bench-cluster.sh
  source "$root/scripts/lib/bench-cluster.sh"
  cluster_bench
  exit 0
fi

# ---- --rate-limit: a rate limit of 100/s held over a minute ----
if [ "$rate_only" = 1 ]; then
  rate_n=${RATE_N:-6100}
  start_broker "$work/data-rate" sync
  rate_burst=${RATE_BURST:-1}
  "$bin/taskmill" --broker "$frontend" queue limit paced --rate 100/s --burst "$rate_burst" >/dev/null
  record "$(bench backlog --count "$rate_n" --queue paced --batch 1000 --window 8 --deadline 300)"
  HOST_ARGS="--concurrency 10" start_host paced
  deadline=$(( $(now_ms) + 600000 ))
  until "$bin/taskmill" --broker "$frontend" --json stats |
      python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["states"].get("SUCCEEDED",0) >= int(sys.argv[1]) else 1)' "$rate_n"; do
    [ "$(now_ms)" -lt "$deadline" ] || { echo "bench.sh: the paced tasks did not finish" >&2; exit 1; }
    sleep 1
  done
  "$bin/taskmill" --broker "$frontend" --json tasks --queue paced --limit "$rate_n" > "$work/paced.json"
  python3 - "$work/paced.json" "$json_out" "$rate_burst" <<'PY'
import bisect, json, sys
tasks = json.load(open(sys.argv[1]))
starts = sorted(t["started_ms"] for t in tasks)
span = (starts[-1] - starts[0]) / 1000.0
rate = (len(starts) - 1) / span  # the first start is the burst of 1
most = max(bisect.bisect_right(starts, s + 999) - i for i, s in enumerate(starts))
out = {"burst": int(sys.argv[3]), "tasks": len(starts), "span_s": span, "rate_per_s": rate, "error_pct": 100 * (rate - 100) / 100,
       "most_in_any_1s": most}
print(f"rate limit 100/s, burst {sys.argv[3]} (0 = the rate), 10 idle slots: {len(starts)} starts over {span:.2f} s = {rate:.2f}/s "
      f"({out['error_pct']:+.2f}%); at most {most} in any 1 s window")
if sys.argv[2]:
    json.dump({"rate_limit": out}, open(sys.argv[2], "w"), indent=1)
PY
  exit 0
fi

echo "taskmill bench: trials=$trials throughput N=$tp_n latency K=$lat_k backlog M=$backlog_n ($(nproc) cores)" \
  "host: ${HOST_ARGS:---concurrency 8}" >&2

# ---- what one thread wake-up costs here (bounds every latency below) ----
record "$("$bin/taskmill-bench" wake --count 5000 || true)"

# ---- throughput and latency, both durability modes ----
for trial in $(seq 1 "$trials"); do
  for durability in sync none; do
    start_broker "$work/data-$durability-$trial" "$durability"
    start_host default
    out=$(bench latency --count "$lat_k" --warmup 50 --deadline 300)
    record "$out" durability="\"$durability\"" trial="$trial"
    out=$(bench wire --count "$lat_k" --warmup 50 --deadline 300)
    record "$out" durability="\"$durability\"" trial="$trial"
    b0=$(cpu_ticks "$broker_pid"); h0=$(tree_ticks "$host_pid")
    out=$(bench throughput --count "$tp_n" --batch 500 --window 8 --warmup 20 --deadline 600)
    b1=$(cpu_ticks "$broker_pid"); h1=$(tree_ticks "$host_pid")
    record "$out" durability="\"$durability\"" trial="$trial" \
      broker_cpu_us_per_task="$(us_per_task $((b1 - b0)) "$tp_n")" host_cpu_us_per_task="$(us_per_task $((h1 - h0)) "$tp_n")" \
      broker_rss_mb="$(status_mb "$broker_pid" VmHWM)" broker_anon_mb="$(status_mb "$broker_pid" RssAnon)" \
      host_rss_mb="$(tree_mb "$host_pid" VmHWM)" host_anon_mb="$(tree_mb "$host_pid" RssAnon)"
    echo "  trial $trial $durability: $(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(round(d.get("throughput_tps",0)), "tasks/s", d.get("error",""))' "$out")" >&2
    stop_pid "$host_pid"; forget_pid "$host_pid"
    stop_pid "$broker_pid"; forget_pid "$broker_pid"
  done
done

# ---- backlog: M tasks on a queue no host serves, restart, drain ----
data="$work/data-backlog"
start_broker "$data" sync
out=$(bench backlog --count "$backlog_n" --queue backlog --batch 1000 --window 8 --deadline 900)
fe=$frontend be=$backend ev=$events
record "$out" durability='"sync"' broker_rss_mb="$(status_mb "$broker_pid" VmHWM)" \
  broker_anon_mb="$(status_mb "$broker_pid" RssAnon)" data_mb="$(du -sm "$data" | cut -f1)"
echo "  backlog: $(json_get "$out" submit_tps) tasks/s submitted" >&2
stop_pid "$broker_pid"; forget_pid "$broker_pid"

# Same ports as before, so the prober can start with the broker instead of
# waiting for endpoints.json (the script's own polling would add ~0.3 s).
rm -f "$data/endpoints.json"
t0=$(now_ms)
"$bin/taskmill-broker" --data-dir "$data" --frontend "$fe" --backend "$be" --events "$ev" \
  --durability sync 2>>"$work/broker.log" &
broker_pid=$!
pids+=("$broker_pid")
out=$("$bin/taskmill-bench" ready --broker "$fe" --queue backlog --deadline 60 || true)
record "$out" started_epoch_ms="$t0" broker_anon_mb="$(status_mb "$broker_pid" RssAnon)"
for _ in $(seq 1 600); do [ -s "$data/endpoints.json" ] && break; sleep 0.05; done
frontend=$fe backend=$be events=$ev

"$bin/taskmill-bench" drain --broker "$frontend" --queue backlog --deadline 900 > "$work/drain.json" &
drain_pid=$!
pids+=("$drain_pid")
start_host backlog
wait "$drain_pid" || true
forget_pid "$drain_pid"
record "$(cat "$work/drain.json")" broker_rss_mb="$(status_mb "$broker_pid" VmHWM)" \
  broker_anon_mb="$(status_mb "$broker_pid" RssAnon)"
stop_pid "$host_pid"; forget_pid "$host_pid"
stop_pid "$broker_pid"; forget_pid "$broker_pid"

# ---- peers (optional, last) ----
peer_json="{}"
if [ "$peers" = 1 ]; then
  if [ -d "$root/../shared/peers" ]; then
    echo "running the peer benchmark (BullMQ and Celery, 1 trial) ..." >&2
    rm -rf /tmp/taskmill-peers && cp -r "$root/../shared/peers" /tmp/taskmill-peers
    # Its package-lock.json is out of step with npm 11, so `npm ci` (what
    # run_all.sh would do) refuses; `npm install` resolves the same versions.
    if [ ! -f /tmp/taskmill-peers/node_modules/bullmq/package.json ]; then
      (cd /tmp/taskmill-peers && npm install --no-audit --no-fund >/dev/null 2>&1) || true
    fi
    if SKIP_KILL=1 SKIP_100K=1 /tmp/taskmill-peers/run_all.sh --trials 1 --configs bullmq-c50-x1,celery-prefork-c2 \
         --modes durable,nondurable > "$work/peers.log" 2>&1; then
      peer_json=$(python3 - /tmp/taskmill-peers/results/raw <<'PY'
import glob, json, os, sys
runs = []
for f in sorted(glob.glob(os.path.join(sys.argv[1], "*.json"))):
    try: d = json.load(open(f))
    except ValueError: continue
    r = {k: d.get(k) for k in ("mode", "config", "test", "trial", "e2e_rate", "enqueue_rate", "ok", "error")}
    lat = sorted(d.get("lat_ms") or [])
    if lat:
        r["p50_ms"], r["p99_ms"] = lat[len(lat) // 2], lat[max(int(len(lat) * 0.99) - 1, 0)]
    runs.append(r)
print(json.dumps({"runs": runs}))
PY
)
    else
      echo "the peer benchmark failed; see the log kept in /tmp/taskmill-peers" >&2
      cp "$work/peers.log" /tmp/taskmill-peers/bench-sh.log 2>/dev/null || true
    fi
  else
    echo "--peers: ../shared/peers not found, skipped" >&2
  fi
fi

# ---- summary ----
python3 - "$runs" "$json_out" "$peer_json" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
json_out, peers = sys.argv[2], json.loads(sys.argv[3])
def med(xs): return statistics.median(xs) if xs else None
result = {}
for d in ("sync", "none"):
    tp = [r for r in runs if r.get("mode") == "throughput" and r.get("durability") == d]
    lat = [r for r in runs if r.get("mode") == "latency" and r.get("durability") == d]
    wire = [r for r in runs if r.get("mode") == "wire" and r.get("durability") == d]
    g = lambda rs, k: med([r[k] for r in rs if r.get("ok") and k in r])
    result[d] = {
        "trials": len(tp), "ok": all(r.get("ok") for r in tp + lat) and bool(tp),
        "errors": [r["error"] for r in tp + lat if r.get("error")],
        "throughput_tps": g(tp, "throughput_tps"), "enqueue_tps": g(tp, "enqueue_tps"),
        "p50_ms": g(lat, "p50_ms"), "p90_ms": g(lat, "p90_ms"), "p99_ms": g(lat, "p99_ms"),
        "max_ms": g(lat, "max_ms"),
        "wire_ping_p50_us": g(wire, "wire_ping_p50_us"), "wire_ack_p50_us": g(wire, "wire_ack_p50_us"),
        "wire_done_p50_us": g(wire, "wire_done_p50_us"), "wire_done_p99_us": g(wire, "wire_done_p99_us"),
        "broker_rss_mb": med([r["broker_rss_mb"] for r in tp]), "broker_anon_mb": med([r["broker_anon_mb"] for r in tp]),
        "host_rss_mb": med([r["host_rss_mb"] for r in tp]), "host_anon_mb": med([r["host_anon_mb"] for r in tp]),
        "broker_cpu_us_per_task": med([r["broker_cpu_us_per_task"] for r in tp]),
        "host_cpu_us_per_task": med([r["host_cpu_us_per_task"] for r in tp]),
        "client_cpu_us_per_task": med([r["client_cpu_us_per_task"] for r in tp if "client_cpu_us_per_task" in r]),
        "runs": tp + lat + wire,
    }
one = lambda m: next((r for r in runs if r.get("mode") == m), {})
wk = one("wake")
result["wake"] = {"other_cpu_us": wk.get("wake_other_cpu_us"), "same_cpu_us": wk.get("wake_same_cpu_us")}
b, rd, dr = one("backlog"), one("ready"), one("drain")
restart_ms = rd["ping_epoch_ms"] - rd["started_epoch_ms"] if "ping_epoch_ms" in rd else None
stats_ms = rd["stats_epoch_ms"] - rd["started_epoch_ms"] if "stats_epoch_ms" in rd else None
empty = result["sync"]["throughput_tps"]
result["backlog"] = {
    "count": b.get("count"), "ok": bool(b.get("ok") and rd.get("ok") and dr.get("ok")),
    "submit_tps": b.get("submit_tps"), "broker_rss_mb": b.get("broker_rss_mb"),
    "broker_anon_mb": b.get("broker_anon_mb"), "data_mb": b.get("data_mb"),
    "restart_ping_ms": restart_ms, "restart_stats_ms": stats_ms, "restart_queued": rd.get("queued"),
    "restart_anon_mb": rd.get("broker_anon_mb"), "drain_tps": dr.get("drain_tps"),
    "drain_anon_mb": dr.get("broker_anon_mb"), "drain_rss_mb": dr.get("broker_rss_mb"),
    "drain_vs_empty": (dr["drain_tps"] / empty) if dr.get("drain_tps") and empty else None,
    "errors": [r["error"] for r in (b, rd, dr) if r.get("error")],
}
if peers:
    result["peers"] = peers
def f(v, nd=0):
    return "-" if v is None else (f"{v:,.{nd}f}")
print()
print(f"{'durability':<11}{'e2e tasks/s':>13}{'enqueue/s':>12}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'broker MB':>11}{'anon MB':>9}"
      f"{'host MB':>9}{'broker us/task':>16}{'host us/task':>14}{'client us/task':>16}")
for d in ("sync", "none"):
    r = result[d]
    print(f"{d:<11}{f(r['throughput_tps']):>13}{f(r['enqueue_tps']):>12}{f(r['p50_ms'],3):>9}{f(r['p99_ms'],3):>9}"
          f"{f(r['max_ms'],2):>9}{f(r['broker_rss_mb'],1):>11}{f(r['broker_anon_mb'],1):>9}{f(r['host_rss_mb'],1):>9}"
          f"{f(r['broker_cpu_us_per_task'],1):>16}{f(r['host_cpu_us_per_task'],1):>14}{f(r['client_cpu_us_per_task'],1):>16}")
    for e in r["errors"]: print(f"  error: {e}")
print()
print("latency split (p50 us): bare socket PING / SUBMIT ack / SUBMIT until DONE, then the same through the client library")
for d in ("sync", "none"):
    r = result[d]
    print(f"  {d:<5} wire {f(r['wire_ping_p50_us'])} / {f(r['wire_ack_p50_us'])} / {f(r['wire_done_p50_us'])};"
          f" client library round trip {f(r['p50_ms'] and 1000 * r['p50_ms'])}")
print(f"  one thread wake-up here: {f(result['wake']['other_cpu_us'],1)} us to another CPU,"
      f" {f(result['wake']['same_cpu_us'],1)} us on the same CPU")
bl = result["backlog"]
print()
print(f"backlog of {bl['count']} (sync): submit {f(bl['submit_tps'])} tasks/s; broker peak RSS {f(bl['broker_rss_mb'],1)} MB,"
      f" anon {f(bl['broker_anon_mb'],1)} MB; LMDB {bl['data_mb']} MB")
print(f"  restart: answers PING after {f(bl['restart_ping_ms'])} ms, STATS ({bl['restart_queued']} queued) after"
      f" {f(bl['restart_stats_ms'])} ms; anon RSS after restart {f(bl['restart_anon_mb'],1)} MB")
print(f"  drain: {f(bl['drain_tps'])} tasks/s = {f(bl['drain_vs_empty'] and 100*bl['drain_vs_empty'])}% of the empty-queue e2e rate (sync)")
for e in bl["errors"]: print(f"  error: {e}")
# Peers: this run's figures if --peers ran them, else the recorded ones
# (../shared/peers/RESULTS.md, 2026-11-22, medians of 3, same machine).
recorded = [
    {"config": "bullmq-c50-x1", "mode": "durable", "test": "throughput", "e2e_rate": 9223},
    {"config": "bullmq-c50-x1", "mode": "nondurable", "test": "throughput", "e2e_rate": 7934},
    {"config": "celery-prefork-c2", "mode": "durable", "test": "throughput", "e2e_rate": 790},
    {"config": "rq-simple-x2", "mode": "durable", "test": "throughput", "e2e_rate": 850},
    {"config": "bullmq-c50-x1", "mode": "durable", "test": "latency", "p50_ms": 0.96, "p99_ms": 5.86},
    {"config": "bullmq-c50-x1", "mode": "nondurable", "test": "latency", "p50_ms": 1.09, "p99_ms": 6.09},
]
peer_runs, source = (peers["runs"], "measured now") if peers.get("runs") else (recorded, "recorded in RESULTS.md")
ratios = []
for pr in peer_runs:
    d = "sync" if pr.get("mode") == "durable" else "none"
    ours = result[d]
    if pr.get("test") == "throughput" and pr.get("e2e_rate") and ours["throughput_tps"]:
        ratios.append({"peer": pr["config"], "peer_mode": pr["mode"], "taskmill_mode": d, "what": "e2e tasks/s",
                       "peer_value": pr["e2e_rate"], "taskmill_value": ours["throughput_tps"],
                       "ratio": ours["throughput_tps"] / pr["e2e_rate"]})
    if pr.get("test") == "latency" and pr.get("p50_ms") and ours["p50_ms"]:
        ratios.append({"peer": pr["config"], "peer_mode": pr["mode"], "taskmill_mode": d, "what": "p50 ms (peer/taskmill)",
                       "peer_value": pr["p50_ms"], "taskmill_value": ours["p50_ms"], "ratio": pr["p50_ms"] / ours["p50_ms"]})
result["peer_ratios"] = {"source": source, "ratios": ratios}
print()
print(f"taskmill / peer ({source}):")
for r in ratios:
    print(f"  {r['peer']:<20}{r['peer_mode']:<11} {r['what']:<24} peer {f(r['peer_value'],2):>9}  taskmill {r['taskmill_mode']:<5}"
          f"{f(r['taskmill_value'],2):>11}  ratio {f(r['ratio'],2)}x")
if json_out:
    with open(json_out, "w") as fh:
        json.dump(result, fh, indent=1)
    print(f"\nfigures written to {json_out}")
PY
