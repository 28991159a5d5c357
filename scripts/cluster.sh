#!/usr/bin/env bash
# A taskmill cluster on this machine, in Linux network namespaces joined by
# veth links: the broker in tmcl-b, hosts in tmcl-h1 and tmcl-h2, a client
# namespace tmcl-c. Needs root (ip netns).
#   scripts/cluster.sh up            create the namespaces, start broker and hosts
#   scripts/cluster.sh client ARGS   run the taskmill CLI in the client namespace
#   scripts/cluster.sh cut h1|h2     take a host's link down (the broker requeues
#                                    its tasks after the liveness window)
#   scripts/cluster.sh heal h1|h2    bring the link back (the host rejoins)
#   scripts/cluster.sh status        namespaces, processes, workers
#   scripts/cluster.sh down          stop the processes, delete the namespaces
#   scripts/cluster.sh demo          up, a few tasks, a cut and a heal, down
# Environment: TASKMILL_BUILD_DIR (default build; must hold bin/ and plugins/),
# TASKMILL_CLUSTER_DIR (logs, data, pids; default /tmp/taskmill-cluster),
# TASKMILL_CLUSTER_NET (first two octets of the 10.x private range; default 10.213).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
build="${TASKMILL_BUILD_DIR:-build}"
[[ "$build" = /* ]] || build="$root/$build"
bin="$build/bin"
work="${TASKMILL_CLUSTER_DIR:-/tmp/taskmill-cluster}"
net="${TASKMILL_CLUSTER_NET:-10.213}"
p=tmcl
IP=$(command -v ip || echo /usr/sbin/ip)

die() { echo "cluster.sh: $*" >&2; exit 1; }
need_root() {
  [ "$(id -u)" = 0 ] || die "needs root to create network namespaces"
  "$IP" netns list >/dev/null 2>&1 || die "ip netns is not usable here"
}
link_of() { case "$1" in h1) echo 1 ;; h2) echo 2 ;; c) echo 3 ;; *) die "unknown node '$1' (h1, h2 or c)" ;; esac; }
broker_ip() { echo "$net.$(link_of "$1").1"; }

start() {  # name ns argv...
  local name=$1 ns=$2; shift 2
  "$IP" netns exec "$ns" "$@" >"$work/$name.log" 2>&1 &
  echo $! >"$work/$name.pid"
}

up() {
  need_root
  [ -x "$bin/taskmill-broker" ] || die "no $bin/taskmill-broker (set TASKMILL_BUILD_DIR)"
  "$IP" netns list | grep -q "^$p-b" && die "already up (scripts/cluster.sh down first)"
  mkdir -p "$work"
  for role in b h1 h2 c; do
    "$IP" netns add "$p-$role"
    "$IP" -n "$p-$role" link set lo up
  done
  for role in h1 h2 c; do
    local n; n=$(link_of "$role")
    "$IP" link add "$p-b$n" netns "$p-b" type veth peer name "$p-$role" netns "$p-$role"
    "$IP" -n "$p-b" addr add "$net.$n.1/24" dev "$p-b$n"
    "$IP" -n "$p-$role" addr add "$net.$n.2/24" dev "$p-$role"
    "$IP" -n "$p-b" link set "$p-b$n" up
    "$IP" -n "$p-$role" link set "$p-$role" up
  done
  start broker "$p-b" "$bin/taskmill-broker" --data-dir "$work/data" --frontend 'tcp://*:5555' \
    --backend 'tcp://*:5556' --events 'tcp://*:5557' --heartbeat-ms 500 --liveness-ms 3000
  for role in h1 h2; do
    mkdir -p "$work/$role.run"
    start "$role" "$p-$role" "$bin/taskmill-host" --broker "tcp://$(broker_ip "$role"):5556" \
      --plugins "$build/plugins" --processes 1 --concurrency 2 --run-dir "$work/$role.run"
  done
  echo "cluster up: broker in $p-b ($net.{1,2,3}.1), hosts in $p-h1 and $p-h2, client in $p-c; logs in $work"
}

client() {
  "$IP" netns exec "$p-c" "$bin/taskmill" --broker "tcp://$(broker_ip c):5555" "$@"
}

cut()  { "$IP" -n "$p-$1" link set "$p-$1" down; echo "link of $1 down"; }
heal() { "$IP" -n "$p-$1" link set "$p-$1" up; echo "link of $1 up"; }

down() {
  for name in h1 h2 broker; do
    if [ -f "$work/$name.pid" ]; then
      kill -TERM "$(cat "$work/$name.pid")" 2>/dev/null || true
    fi
  done
  for name in h1 h2 broker; do
    if [ -f "$work/$name.pid" ]; then
      pid=$(cat "$work/$name.pid")
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
      rm -f "$work/$name.pid"
    fi
  done
  for role in b h1 h2 c; do "$IP" netns del "$p-$role" 2>/dev/null || true; done
  echo "cluster down (logs kept in $work)"
}

status() {
  "$IP" netns list | grep "^$p-" || echo "no namespaces"
  for name in broker h1 h2; do
    if [ -f "$work/$name.pid" ] && kill -0 "$(cat "$work/$name.pid")" 2>/dev/null; then
      echo "$name: running (pid $(cat "$work/$name.pid"))"
    else
      echo "$name: not running"
    fi
  done
  client --timeout 2 workers || true
}

wait_workers() {  # count timeout_s
  for _ in $(seq $(( $2 * 5 ))); do
    [ "$(client --timeout 1 --json workers 2>/dev/null | tr ',' '\n' | grep -c '"pid"')" = "$1" ] && return 0
    sleep 0.2
  done
  return 1
}

demo() {
  up
  trap down EXIT
  wait_workers 2 30 || die "hosts did not join"
  echo "two hosts joined; running tasks from the client namespace"
  for i in 1 2 3 4; do client submit echo.echo --payload "{\"n\":$i}" --wait; done
  cut h1
  wait_workers 1 20 || die "the broker did not drop h1"
  echo "h1 dropped after the liveness window"
  client submit echo.echo --payload '{"during":"cut"}' --wait
  heal h1
  wait_workers 2 60 || die "h1 did not rejoin"
  echo "h1 rejoined"
  client workers
}

cmd="${1:-}"; shift || true
case "$cmd" in
  up) up ;;
  down) down ;;
  client) client "$@" ;;
  cut) need_root; link_of "${1:-}" >/dev/null; cut "$1" ;;
  heal) need_root; link_of "${1:-}" >/dev/null; heal "$1" ;;
  status) status ;;
  demo) demo ;;
  -h|--help|help|"") sed -n '2,17p' "$0" ;;
  *) die "unknown command '$cmd' (see --help)" ;;
esac
