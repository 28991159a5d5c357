# Shared by the measuring scripts (bench.sh, soak-retention.sh): the
# Release build they measure, a work folder, and ending the processes they
# started, by PID. Source it after setting `root` (the source tree).

# release_build NAME TARGET...: configures TASKMILL_BUILD_DIR (default
# build-release) as Release if it is not yet, builds TARGETs incrementally
# (a no-op when up to date) and sets `build` and `bin`. A failed build keeps
# the binaries already there if there are some.
release_build() {
  local name=$1
  shift
  build="${TASKMILL_BUILD_DIR:-build-release}"
  [[ "$build" = /* ]] || build="$root/$build"
  if [ ! -f "$build/CMakeCache.txt" ]; then
    echo "configuring Release in $build ..." >&2
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DTASKMILL_BUILD_TESTS=OFF \
      -DTASKMILL_BUILD_BENCH=ON >/dev/null
  fi
  if ! cmake --build "$build" -j "$(nproc)" --target "$@" >"$build/$name-build.log" 2>&1; then
    echo "$name: building $* in $build failed (see $build/$name-build.log)" >&2
    [ -x "$build/bin/taskmill-bench" ] || exit 1
    echo "$name: measuring the binaries already there" >&2
  fi
  bin="$build/bin"
}

# Ends one process we started: TERM, then KILL after 10 s.
stop_pid() {
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 200); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    sleep 0.05
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# work_folder PREFIX: sets `work` to a new temporary folder, and arranges
# that every PID in `pids` is ended and the folder removed at exit.
work_folder() {
  work=$(mktemp -d "/tmp/$1-XXXXXX")
  pids=()
  trap release_cleanup EXIT
  trap 'exit 130' INT TERM
}
release_cleanup() {
  for pid in "${pids[@]}"; do stop_pid "$pid"; done
  rm -rf "$work"
}
