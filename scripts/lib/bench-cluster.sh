# shellcheck shell=bash disable=SC2154,SC2034 # sourced by bench.sh, which sets these
# scripts/bench.sh --cluster: a 3-member broker cluster (docs/CLUSTER.md)
# beside a single broker, then the failover time after SIGKILLs of the
# leader. Sourced by bench.sh after its helpers (start_broker, start_host,
# bench, record, cpu_ticks, ...) and `bin`, `work`, `pids`, `runs`,
# `trials`, `tp_n`, `lat_k`, `quick`, `json_out` are set; run cluster_bench.
#
# Throughput: each trial runs, one after the other, a single broker
# (`sync`, then `none`) and a fresh cluster of three members on loopback
# (a member's store is written without fsync, its Raft log is fsynced: it
# promises what `sync` promises), each with one host on the broker that
# serves and the same taskmill-bench `latency` and `throughput` runs.
# Failover: one more cluster; FAILOVER_KILLS times, SIGKILL the leader and
# time until a survivor acknowledges a SUBMIT, then restart the killed
# member on its data folder and wait until it follows and has caught up.

# free_ports N: N distinct free TCP ports on 127.0.0.1 for the Raft
# transports, which need explicit ports. Taken below the kernel's ephemeral
# range, from which the members' own port-0 endpoints are drawn: a port
# taken from that range could be handed to one of them before the member it
# was meant for binds it.
free_ports() {
  /usr/bin/python3 - "$1" <<'PY'
import random, socket, sys
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
found = []
for port in random.sample(range(10000, low), low - 10000):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    found.append(port)
    if len(found) == int(sys.argv[1]):
        break
print(" ".join(map(str, found)))
PY
}

# cluster_new DIR: three members' data folders in DIR and a peers list on
# free ports; every member starts on ports 0 for its ZeroMQ endpoints.
cluster_new() {
  cl_dir=$1
  mkdir -p "$cl_dir"
  cl_peers=""
  local i ports
  read -r -a ports <<<"$(free_ports 3)"
  for i in 1 2 3; do
    cl_peers+="${cl_peers:+,}$i=127.0.0.1:${ports[i - 1]}"
    cl_fe[i]="" cl_be[i]="" cl_ev[i]="" cl_pid[i]=""
  done
}

# member_start I: starts member I (again on the endpoints it had, if any)
# and waits for its endpoints.json.
member_start() {
  local i=$1 d="$cl_dir/m$1" deadline
  mkdir -p "$d"
  rm -f "$d/endpoints.json"
  # shellcheck disable=SC2086 # ELECTION_ARGS is a list of options
  "$bin/taskmill-broker" --data-dir "$d" --node-id "$i" --peers "$cl_peers" \
    --frontend "${cl_fe[i]:-tcp://127.0.0.1:0}" --backend "${cl_be[i]:-tcp://127.0.0.1:0}" \
    --events "${cl_ev[i]:-tcp://127.0.0.1:0}" $ELECTION_ARGS 2>>"$cl_logs/$(basename "$cl_dir")-m$i.log" &
  cl_pid[i]=$!
  pids+=("${cl_pid[i]}")
  deadline=$(( $(now_ms) + 30000 ))
  until [ -s "$d/endpoints.json" ]; do
    kill -0 "${cl_pid[i]}" 2>/dev/null ||
      { echo "member $i exited; see log:" >&2; tail -20 "$cl_logs/$(basename "$cl_dir")-m$i.log" >&2; exit 1; }
    [ "$(now_ms)" -lt "$deadline" ] || { echo "member $i wrote no endpoints.json" >&2; exit 1; }
    sleep 0.02
  done
  cl_fe[i]=$(jq -r .frontend "$d/endpoints.json")
  cl_be[i]=$(jq -r .backend "$d/endpoints.json")
  cl_ev[i]=$(jq -r .events "$d/endpoints.json")
}
member_alive() {
  kill -0 "${cl_pid[$1]}" 2>/dev/null ||
    { echo "bench.sh: member $1 exited; see log:" >&2; tail -5 "$cl_logs/$(basename "$cl_dir")-m$1.log" >&2; exit 1; }
}
member_stop() { stop_pid "${cl_pid[$1]}"; forget_pid "${cl_pid[$1]}"; cl_pid[$1]=""; }
cluster_stop() { local i; for i in 1 2 3; do [ -z "${cl_pid[i]}" ] || member_stop "$i"; done; }

# member_status I: member I's `cluster status --json`, or nothing.
member_status() { "$bin/taskmill" --broker "${cl_fe[$1]}" --timeout 1 --json cluster status 2>/dev/null || true; }

# cluster_leader: sets cl_leader to the member that leads and serves
# (polled every 20 ms, 30 s at most).
cluster_leader() {
  local deadline i
  deadline=$(( $(now_ms) + 30000 ))
  while [ "$(now_ms)" -lt "$deadline" ]; do
    for i in 1 2 3; do
      [ -n "${cl_pid[i]}" ] || continue
      if [ "$(member_status "$i" | jq -r 'select(.role == "leader" and .serving) | .node_id')" = "$i" ]; then
        cl_leader=$i
        return 0
      fi
    done
    sleep 0.02
  done
  echo "bench.sh: no member of $cl_dir leads after 30 s" >&2
  exit 1
}

# member_caught_up I: waits (30 s at most) until member I follows the
# leader and has applied everything the leader had committed when asked.
member_caught_up() {
  local i=$1 target deadline s
  target=$(member_status "$cl_leader" | jq -r '.commit_index // 0')
  deadline=$(( $(now_ms) + 30000 ))
  while [ "$(now_ms)" -lt "$deadline" ]; do
    member_alive "$i"
    s=$(member_status "$i")
    if [ -n "$s" ] && jq -e --argjson l "$cl_leader" --argjson t "${target:-0}" \
        '.role == "follower" and .leader_id == $l and .applied_index >= $t' <<<"$s" >/dev/null; then
      return 0
    fi
    sleep 0.02
  done
  echo "bench.sh: member $i does not follow member $cl_leader after 30 s: $s" >&2
  exit 1
}

# cluster_up DIR: a fresh cluster, a leader, both others caught up.
cluster_up() {
  local i
  cluster_new "$1"
  for i in 1 2 3; do member_start "$i"; done
  cluster_leader
  for i in 1 2 3; do [ "$i" = "$cl_leader" ] || member_caught_up "$i"; done
}

cluster_ticks() { local i t=0; for i in 1 2 3; do t=$((t + $(cpu_ticks "${cl_pid[i]}"))); done; echo "$t"; }

# throughput_run SETUP LABEL: latency and throughput against `frontend`
# with a host on `backend`; CPU of BROKER_PIDS (the broker, or the three
# members, the leader first) per task. Ends the host.
throughput_run() {
  local setup=$1 label=$2 out b0 b1 l0 l1 h0 h1 p
  start_host default
  out=$(bench latency --count "$lat_k" --warmup 50 --deadline 300)
  record "$out" setup="\"$setup\"" trial="$trial"
  b0=0; for p in "${broker_pids[@]}"; do b0=$((b0 + $(cpu_ticks "$p"))); done
  l0=$(cpu_ticks "${broker_pids[0]}"); h0=$(tree_ticks "$host_pid")
  out=$(bench throughput --count "$tp_n" --batch 500 --window 8 --warmup 20 --deadline 600)
  b1=0; for p in "${broker_pids[@]}"; do b1=$((b1 + $(cpu_ticks "$p"))); done
  l1=$(cpu_ticks "${broker_pids[0]}"); h1=$(tree_ticks "$host_pid")
  record "$out" setup="\"$setup\"" trial="$trial" \
    broker_cpu_us_per_task="$(us_per_task $((b1 - b0)) "$tp_n")" \
    leader_cpu_us_per_task="$(us_per_task $((l1 - l0)) "$tp_n")" \
    host_cpu_us_per_task="$(us_per_task $((h1 - h0)) "$tp_n")" \
    load_avg="$(cut -d' ' -f1 /proc/loadavg)"
  echo "  trial $trial $label: $(jq -r '"\(.throughput_tps // 0 | round) tasks/s \(.error // "")"' <<<"$out")," \
    "broker CPU $(us_per_task $((b1 - b0)) "$tp_n") µs/task" >&2
  stop_pid "$host_pid"; forget_pid "$host_pid"
}

# The SIGKILLs: one Python process per kill keeps a DEALER on each member
# (connected and answered once before the kill), acknowledges a batch of
# 20 keyed tasks on the leader, sends a second batch and SIGKILLs the
# leader at once, then sends every 10-20 ms (a 10 ms poll between
# sends at least 10 ms apart) a SUBMIT of one tiny task to
# each survivor that has no request outstanding, until one acknowledges.
# Prints one JSON line; appends every acknowledged id to ACKED.
failover_probe() {
  /usr/bin/python3 - "$@" <<'PY'
import json, os, signal, sys, time
import msgpack, zmq

kill_no, pid, leader_ep, survivors, acked_path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4].split(","), sys.argv[5]
SIG, POLL_S, GIVE_UP_S = b"TASKMILL1", 0.010, 30.0
ctx = zmq.Context()
req = 0

def sock(ep):
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(ep)
    return s

def send(s, cmd, body):
    global req
    req += 1
    body["req"] = req
    s.send_multipart([SIG, cmd, msgpack.packb(body, use_bin_type=True)])
    return req

def reply(s, timeout_s):
    if not s.poll(int(timeout_s * 1000)):
        return None
    f = s.recv_multipart()
    return msgpack.unpackb(f[2], raw=False, strict_map_key=False)

def tasks(prefix, n):
    return [{"handler": "echo.echo", "queue": "failover", "payload": msgpack.packb(1), "key": f"{prefix}-{i}"} for i in range(n)]

acked = []
lead = sock(leader_ep)
surv = [sock(ep) for ep in survivors]
for s in [lead] + surv:  # connected before the clock starts
    send(s, b"PING", {})
    if reply(s, 5) is None:
        sys.exit(f"no answer to PING before kill {kill_no}")
send(lead, b"SUBMIT", {"tasks": tasks(f"k{kill_no}-a", 20)})
r = reply(lead, 10)
if not r or not r.get("ok"):
    sys.exit(f"the leader refused the batch before kill {kill_no}: {r}")
acked += r["ids"]
send(lead, b"SUBMIT", {"tasks": tasks(f"k{kill_no}-b", 20)})  # in flight at the kill
t0 = time.monotonic()
os.kill(pid, signal.SIGKILL)
pending = [None] * len(surv)  # (req, sent_at)
attempts = refused = 0
won = None
poller = zmq.Poller()
for s in [lead] + surv:
    poller.register(s, zmq.POLLIN)
last_send = [0.0] * len(surv)
while won is None:
    now = time.monotonic()
    if now - t0 > GIVE_UP_S:
        break
    for i, s in enumerate(surv):
        stale = pending[i] and now - pending[i][1] > 1.0  # lost: ask again
        if (pending[i] is None or stale) and now - last_send[i] >= POLL_S:
            attempts += 1
            pending[i] = (send(s, b"SUBMIT", {"tasks": tasks(f"k{kill_no}-p{attempts}", 1)}), now)
            last_send[i] = now
    for s, _ in poller.poll(int(POLL_S * 1000)):
        body = msgpack.unpackb(s.recv_multipart()[2], raw=False, strict_map_key=False)
        if s is lead:
            if body.get("ok"):
                acked += body["ids"]
            continue
        i = surv.index(s)
        if not pending[i] or body.get("req") != pending[i][0]:
            if body.get("ok"):
                acked += body["ids"]
            continue
        pending[i] = None
        if body.get("ok"):
            acked += body["ids"]
            won = (time.monotonic() - t0) * 1000, survivors[i]
        else:
            refused += 1
with open(acked_path, "a") as fh:
    fh.writelines(i + "\n" for i in acked)
print(json.dumps({"mode": "failover", "kill": kill_no, "ok": won is not None,
                  "failover_ms": round(won[0], 1) if won else None, "served_by": won[1] if won else None,
                  "submits_sent": attempts, "refused": refused}))
PY
}

# lost_check EP ACKED: STATUS of every acknowledged id on the leader (20 in
# flight); one JSON line with how many are missing, and STATS' counts.
lost_check() {
  /usr/bin/python3 - "$@" <<'PY'
import json, sys
import msgpack, zmq
ep, ids = sys.argv[1], sorted(set(l.strip() for l in open(sys.argv[2]) if l.strip()))
s = zmq.Context().socket(zmq.DEALER)
s.setsockopt(zmq.LINGER, 0)
s.connect(ep)
def send(cmd, body, req):
    body["req"] = req
    s.send_multipart([b"TASKMILL1", cmd, msgpack.packb(body, use_bin_type=True)])
def recv():
    if not s.poll(10000):
        sys.exit("no answer from the leader")
    return msgpack.unpackb(s.recv_multipart()[2], raw=False, strict_map_key=False)
missing, states, sent, got = [], {}, 0, 0
while got < len(ids):
    while sent < len(ids) and sent - got < 20:
        send(b"STATUS", {"id": ids[sent]}, sent)
        sent += 1
    r = recv()
    got += 1
    if r.get("ok"):
        st = r["task"]["state"]
        states[st] = states.get(st, 0) + 1
    else:
        missing.append(ids[r["req"]])
send(b"STATS", {}, len(ids))
stats = recv()
print(json.dumps({"mode": "lost", "acknowledged": len(ids), "missing": len(missing), "missing_ids": missing[:20],
                  "acknowledged_states": states, "stored_states": (stats.get("stats") or stats).get("states")}))
PY
}

cluster_failover() {
  local kills=$1 k i dead survivors t_restart rejoin out
  local acked="$work/acked.txt"
  : >"$acked"
  cluster_up "$work/failover"
  echo "failover: $kills SIGKILLs of the leader (election timeout ${ELECTION_MS:-300} ms)" >&2
  for k in $(seq 1 "$kills"); do
    dead=$cl_leader
    survivors=""
    for i in 1 2 3; do [ "$i" = "$dead" ] || survivors+="${survivors:+,}${cl_fe[i]}"; done
    out=$(failover_probe "$k" "${cl_pid[dead]}" "${cl_fe[dead]}" "$survivors" "$acked") ||
      { echo "bench.sh: failover probe failed at kill $k" >&2; exit 1; }
    wait "${cl_pid[dead]}" 2>/dev/null || true
    forget_pid "${cl_pid[dead]}"; cl_pid[dead]=""
    cluster_leader
    t_restart=$(now_ms)
    member_start "$dead"
    member_caught_up "$dead"
    rejoin=$(( $(now_ms) - t_restart ))
    record "$out" killed="$dead" new_leader="$cl_leader" rejoin_ms="$rejoin"
    echo "  kill $k (member $dead): $(jq -r '"\(.failover_ms) ms to an acknowledged SUBMIT (\(.refused) refused before)"' <<<"$out");" \
      "member $cl_leader leads; member $dead back and caught up in $rejoin ms" >&2
  done
  record "$(lost_check "${cl_fe[cl_leader]}" "$acked")"
  cluster_stop
}

cluster_summary() {
  python3 - "$runs" "$json_out" "$1" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
json_out, kills = sys.argv[2], int(sys.argv[3])
med = lambda xs: statistics.median(xs) if xs else None
res = {}
for setup in ("single-sync", "single-none", "cluster"):
    tp = [r for r in runs if r.get("mode") == "throughput" and r.get("setup") == setup]
    lat = [r for r in runs if r.get("mode") == "latency" and r.get("setup") == setup]
    g = lambda rs, k: med([r[k] for r in rs if r.get("ok") and k in r])
    res[setup] = {"trials": len(tp), "ok": bool(tp) and all(r.get("ok") for r in tp),
                  "errors": [r["error"] for r in tp + lat if r.get("error")],
                  "throughput_tps": g(tp, "throughput_tps"), "throughput_each": [r.get("throughput_tps") for r in tp],
                  "enqueue_tps": g(tp, "enqueue_tps"), "p50_ms": g(lat, "p50_ms"), "p99_ms": g(lat, "p99_ms"),
                  "broker_cpu_us_per_task": g(tp, "broker_cpu_us_per_task"),
                  "leader_cpu_us_per_task": g(tp, "leader_cpu_us_per_task"),
                  "host_cpu_us_per_task": g(tp, "host_cpu_us_per_task"),
                  "client_cpu_us_per_task": g(tp, "client_cpu_us_per_task")}
def ratio(a, b): return a / b if a and b else None
c, s, n = res["cluster"], res["single-sync"], res["single-none"]
trial_ratios = []
for t in sorted({r["trial"] for r in runs if r.get("mode") == "throughput"}):
    by = {r["setup"]: r.get("throughput_tps") for r in runs if r.get("mode") == "throughput" and r.get("trial") == t}
    if by.get("cluster") and by.get("single-sync"):
        trial_ratios.append(by["cluster"] / by["single-sync"])
res["ratio"] = {"cluster_vs_sync": ratio(c["throughput_tps"], s["throughput_tps"]),
                "cluster_vs_sync_each_trial": trial_ratios,
                "cluster_vs_none": ratio(c["throughput_tps"], n["throughput_tps"]),
                "broker_cpu_cluster_vs_sync": ratio(c["broker_cpu_us_per_task"], s["broker_cpu_us_per_task"]),
                "leader_cpu_cluster_vs_sync": ratio(c["leader_cpu_us_per_task"], s["broker_cpu_us_per_task"]),
                "target": 0.5}
fo = [r for r in runs if r.get("mode") == "failover"]
ms = sorted(r["failover_ms"] for r in fo if r.get("ok"))
def pct(p):  # nearest rank
    return ms[max(0, min(len(ms) - 1, -(-len(ms) * p // 100) - 1))] if ms else None
lost = next((r for r in runs if r.get("mode") == "lost"), {})
res["failover"] = {"kills": kills, "measured": len(ms), "failed": len(fo) - len(ms),
                   "p50_ms": pct(50), "p99_ms": pct(99), "max_ms": ms[-1] if ms else None, "min_ms": ms[0] if ms else None,
                   "each_ms": [r.get("failover_ms") for r in fo],
                   "rejoin_p50_ms": med([r["rejoin_ms"] for r in fo if "rejoin_ms" in r]),
                   "targets_ms": {"p50": 1000, "p99": 2000},
                   "acknowledged": lost.get("acknowledged"), "lost": lost.get("missing"),
                   "stored_states": lost.get("stored_states"),
                   "what": "from the SIGKILL of the leader to the first SUBMIT acknowledged by a survivor "
                           "(detection, election, the new leader's first commit, one fsynced SUBMIT); "
                           "a SUBMIT is sent to each survivor every 10-20 ms while none is outstanding"}
res["runs"] = runs
f = lambda v, d=0: "-" if v is None else f"{v:,.{d}f}"
print()
print("throughput (medians; N tasks submitted, 1 host of 8 slots, until every result is in):")
for k, label in (("single-sync", "single broker, sync"), ("single-none", "single broker, none"), ("cluster", "3-member cluster")):
    r = res[k]
    print(f"  {label:<22} {f(r['throughput_tps']):>8} tasks/s  p50 {f(r['p50_ms'], 2)} ms  "
          f"broker CPU {f(r['broker_cpu_us_per_task'], 1)} µs/task (leader {f(r['leader_cpu_us_per_task'], 1)})"
          f"  [{', '.join(f(x) for x in r['throughput_each'])}]  {' '.join(r['errors'])}")
rt = res["ratio"]
print(f"  cluster / single sync: {f(rt['cluster_vs_sync'] and 100 * rt['cluster_vs_sync'], 1)} % (target >= 50 %); "
      f"per trial {', '.join(f(100 * x, 1) for x in rt['cluster_vs_sync_each_trial'])} %; "
      f"cluster / single none: {f(rt['cluster_vs_none'] and 100 * rt['cluster_vs_none'], 1)} %")
fr = res["failover"]
print(f"failover over {fr['measured']} of {kills} SIGKILLs of the leader: p50 {f(fr['p50_ms'])} ms (target < 1000), "
      f"p99 {f(fr['p99_ms'])} ms (target < 2000), max {f(fr['max_ms'])} ms, min {f(fr['min_ms'])} ms")
print(f"  measured {fr['what']}")
print(f"  a restarted member followed and caught up in {f(fr['rejoin_p50_ms'])} ms (p50)")
print(f"  acknowledged tasks: {fr['acknowledged']}, lost: {fr['lost']} (stored: {fr['stored_states']})")
if json_out:
    with open(json_out, "w") as fh:
        json.dump({"cluster": res}, fh, indent=1)
    print(f"\nfigures written to {json_out}")
PY
}

cluster_bench() {
  local kills i
  if [ "$quick" = 1 ]; then kills=${FAILOVER_KILLS:-5}; else kills=${FAILOVER_KILLS:-20}; fi
  ELECTION_ARGS=${ELECTION_MS:+--election-timeout-ms $ELECTION_MS}
  # The members' logs outlive the work folder, for a look after the run.
  cl_logs=${CLUSTER_LOGS:-/tmp/taskmill-bench-cluster-logs}
  rm -rf "$cl_logs" && mkdir -p "$cl_logs"
  echo "taskmill bench --cluster: trials=$trials throughput N=$tp_n latency K=$lat_k kills=$kills ($(nproc) cores)" \
    "host: ${HOST_ARGS:---concurrency 8}" >&2
  for trial in $(seq 1 "$trials"); do
    for durability in sync none; do
      start_broker "$work/data-$durability-$trial" "$durability"
      broker_pids=("$broker_pid")
      throughput_run "single-$durability" "single broker $durability"
      stop_pid "$broker_pid"; forget_pid "$broker_pid"
    done
    cluster_up "$work/cluster-$trial"
    frontend=${cl_fe[cl_leader]} backend=${cl_be[cl_leader]}
    broker_pids=("${cl_pid[cl_leader]}")
    for i in 1 2 3; do [ "$i" = "$cl_leader" ] || broker_pids+=("${cl_pid[i]}"); done
    throughput_run cluster "cluster (member $cl_leader leads)"
    cluster_stop
  done
  cluster_failover "$kills"
  cluster_summary "$kills"
  echo "the members' logs: $cl_logs" >&2
}
