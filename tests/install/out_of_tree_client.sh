#!/bin/sh
# usage: out_of_tree_client.sh CMAKE BUILD_DIR SOURCE_DIR [SANITIZERS]
# Installs BUILD_DIR into a temporary prefix; takes every `// example: NAME.cpp`
# block out of SOURCE_DIR/docs/CLIENT.md and builds it, with
# tests/install/client_app/CMakeLists.txt (find_package(taskmill),
# taskmill::client), as a project outside the tree; starts the installed
# taskmill-broker and taskmill-host on loopback (port 0) with the example
# plugins of BUILD_DIR, and runs the examples against them, checking what
# they print. Exits non-zero, saying why, on any failure.
set -eu
cmake_bin=$1
build_dir=$2
source_dir=$3
# A sanitized build installs sanitized libraries: a program linking them
# must be built with the same -fsanitize.
sanitize=${4:-}

work=$(mktemp -d "${TMPDIR:-/tmp}/taskmill-client-XXXXXX")
broker_pid=""
host_pid=""
cleanup() {
  # Only the two processes this script started, by PID.
  for pid in $host_pid $broker_pid; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ -z "${TASKMILL_KEEP_TMP:-}" ]; then rm -rf "$work"; else echo "kept $work"; fi
}
trap cleanup EXIT
prefix=$work/prefix
app=$work/app

step() { echo "== $*"; }
fail() { echo "FAILED: $*"; for f in "$work"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -20 "$f"; }; done; exit 1; }

# wait_for SECONDS COMMAND...: runs COMMAND every 0.1 s until it succeeds.
wait_for() {
  tries=$(($1 * 10)); shift
  while ! "$@"; do
    tries=$((tries - 1))
    [ "$tries" -gt 0 ] || return 1
    sleep 0.1
  done
}

step "install $build_dir into $prefix"
"$cmake_bin" --install "$build_dir" --prefix "$prefix" >/dev/null
for f in bin/taskmill-broker bin/taskmill-host include/taskmill/client/client.hpp \
         include/taskmill/protocol/result.hpp lib/cmake/taskmill/taskmillClientTargets.cmake; do
  [ -e "$prefix/$f" ] || fail "missing from the install: $f"
done

step "take the examples out of docs/CLIENT.md"
mkdir -p "$app"
cp "$source_dir/tests/install/client_app/CMakeLists.txt" "$app/"
awk -v dir="$app" '
  /^```cpp$/ { inside = 1; file = ""; next }
  /^```$/    { if (file != "") close(file); inside = 0; file = ""; next }
  inside && file == "" && /^\/\/ example: / { file = dir "/" $3 }
  inside && file != "" { print > file }
' "$source_dir/docs/CLIENT.md"
examples=$(cd "$app" && ls *.cpp | sed 's/\.cpp$//' | tr '\n' ' ')
echo "examples: $examples"
for e in quickstart errors batch workflow events curve threading; do
  [ -f "$app/$e.cpp" ] || fail "docs/CLIENT.md has no example $e.cpp"
done

step "build them out of tree against $prefix"
"$cmake_bin" -S "$app" -B "$app/build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Debug \
  ${sanitize:+"-DCMAKE_CXX_FLAGS=-fsanitize=$sanitize" "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=$sanitize"} >/dev/null \
  || fail "configure"
"$cmake_bin" --build "$app/build" -j2 || fail "build"

step "start the installed broker and host on loopback"
data=$work/data
"$prefix/bin/taskmill-broker" --data-dir "$data" --durability none --frontend tcp://127.0.0.1:0 \
  --backend tcp://127.0.0.1:0 --events tcp://127.0.0.1:0 >"$work/broker.log" 2>&1 &
broker_pid=$!
wait_for 20 test -s "$data/endpoints.json" || fail "the broker wrote no endpoints.json"
endpoint() { sed -n "s/.*\"$1\": *\"\([^\"]*\)\".*/\1/p" "$data/endpoints.json"; }
frontend=$(endpoint frontend)
backend=$(endpoint backend)
events=$(endpoint events)
"$prefix/bin/taskmill-host" --broker "$backend" --plugins "$build_dir/plugins" --processes 1 \
  --concurrency 4 --run-dir "$work/run" >"$work/host.log" 2>&1 &
host_pid=$!
export TASKMILL_BROKER="$frontend"

# run NAME EXPECTED [ARGS...]: runs an example, which must exit 0 and print
# a line holding EXPECTED.
run() {
  name=$1 expected=$2; shift 2
  step "$name $*"
  rc=0
  "$app/build/$name" "$@" >"$work/$name.out" 2>&1 || rc=$?
  cat "$work/$name.out"
  [ "$rc" -eq 0 ] || fail "$name exited $rc"
  grep -qF -- "$expected" "$work/$name.out" || fail "$name did not print '$expected'"
}
run quickstart '{"hello":"world"}'
run errors 'wait: conflict'
run batch 'sum 19900'
run workflow 'SUCCEEDED'
run events 'task.succeeded echo.echo' "$events"
run threading '100 of 100 succeeded'
# curve.cpp needs a CURVE broker; building it is its test here.
echo "== ok"
