#!/usr/bin/env bash
# Builds taskmill (Release) and runs a local broker and one host with the
# example plugins until Ctrl-C.
#   scripts/run.sh          serve on tcp://127.0.0.1:5555 (clients), :5556 (hosts)
#   scripts/run.sh --demo   also submit a small mixed workload, print what
#                           happened, stop everything and exit 0 if it went right
# Environment: TASKMILL_BUILD_DIR (default build-release; an existing build
# there is reused), TASKMILL_DATA_DIR (default .taskmill/data; --demo uses a
# fresh temporary folder and free ports).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

demo=0
for arg in "$@"; do
  case "$arg" in
    --demo) demo=1 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

build="${TASKMILL_BUILD_DIR:-build-release}"
if [ ! -x "$build/bin/taskmill-broker" ] || [ -z "${TASKMILL_BUILD_DIR:-}" ]; then
  scripts/install-deps.sh
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DTASKMILL_BUILD_TESTS=OFF >/dev/null
  cmake --build "$build" -j "$(nproc)" --target taskmill-broker taskmill-host taskmill echo demo >/dev/null
fi
bin="$root/$build/bin"
[[ "$build" = /* ]] && bin="$build/bin"
plugins="$(dirname "$bin")/plugins"

pids=()
workdir=""
cleanup() {
  # Ends only the processes this script started, by PID.
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ -n "$workdir" ]; then rm -rf "$workdir"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$demo" = 1 ]; then
  workdir=$(mktemp -d /tmp/taskmill-demo-XXXXXX)
  data="$workdir/data"
  ports=(--frontend tcp://127.0.0.1:0 --backend tcp://127.0.0.1:0 --events tcp://127.0.0.1:0)
  logs="$workdir"
else
  data="${TASKMILL_DATA_DIR:-$root/.taskmill/data}"
  ports=(--frontend tcp://127.0.0.1:5555 --backend tcp://127.0.0.1:5556 --events tcp://127.0.0.1:5557)
  logs="$(dirname "$data")"
fi
mkdir -p "$data"
rm -f "$data/endpoints.json"

"$bin/taskmill-broker" --data-dir "$data" "${ports[@]}" 2>>"$logs/broker.log" &
pids+=($!)
for _ in $(seq 1 400); do
  [ -s "$data/endpoints.json" ] && break
  kill -0 "${pids[0]}" 2>/dev/null || { echo "broker failed to start:"; cat "$logs/broker.log"; exit 1; }
  sleep 0.05
done
[ -s "$data/endpoints.json" ] || { echo "broker did not come up"; exit 1; }
endpoint() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$data/endpoints.json" "$1"; }
frontend=$(endpoint frontend)
backend=$(endpoint backend)

mkdir -p "$logs/run"
"$bin/taskmill-host" --broker "$backend" --plugins "$plugins" --run-dir "$logs/run" \
  --processes 2 --concurrency 4 2>>"$logs/host.log" &
pids+=($!)

tm() { "$bin/taskmill" --broker "$frontend" "$@"; }
for _ in $(seq 1 400); do
  if tm --json workers 2>/dev/null | grep -q '"echo.echo"'; then break; fi
  sleep 0.05
done

if [ "$demo" = 0 ]; then
  echo "taskmill is running: clients $frontend, hosts $backend"
  echo "logs in $logs; try: $bin/taskmill submit echo.echo --payload '{\"hi\":1}' --wait"
  echo "Ctrl-C to stop."
  wait "${pids[0]}"
  exit 0
fi

echo "== taskmill demo (broker $frontend) =="
fail=0
check() { # check DESCRIPTION EXPECTED_EXIT COMMAND...
  local what=$1 want=$2; shift 2
  local out code=0
  out=$(tm --json "$@" 2>/dev/null) || code=$?
  local summary
  summary=$(printf '%s' "$out" | python3 -c '
import json,sys
try:
    j=json.load(sys.stdin)
    print("state=%s attempts=%s result=%s error=%s" % (j.get("state"), j.get("attempts"),
          json.dumps(j.get("result")), j.get("error")))
except Exception:
    print("unparsed output")' 2>/dev/null)
  printf '%-44s exit=%d %s\n' "$what" "$code" "$summary"
  if [ "$code" != "$want" ]; then echo "   unexpected exit code (wanted $want): $out"; fail=1; fi
}
for i in 1 2 3 4 5; do
  tm submit echo.echo --payload "{\"n\": $i}" >/dev/null
done
check "echo.echo {\"greeting\": \"hello\"}" 0 submit echo.echo --payload '{"greeting":"hello"}' --wait
check "demo.sleep 200 ms" 0 submit demo.sleep --payload '{"ms":200}' --wait
check "demo.fail retryable twice (retried)" 0 submit demo.fail --payload '{"mode":"retryable","times":2}' --retries 3 --wait
check "demo.fail permanent (fails, no retry)" 1 submit demo.fail --payload '{"mode":"permanent"}' --retries 3 --wait
check "demo.progress 5 steps" 0 submit demo.progress --payload '{"steps":5,"ms":20}' --wait
echo "-- stats"
tm stats || fail=1
if [ "$fail" = 0 ]; then echo "demo: OK"; else echo "demo: FAILED"; fi
exit "$fail"
