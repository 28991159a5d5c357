#!/bin/sh
# usage: documented_build_lines.sh CMAKE BUILD_DIR SOURCE_DIR
# Runs the "Without CMake" compiler lines of docs/PLUGINS.md section 3 as
# they are written, in a copy of plugins/template with section 1's hello.c
# beside it and PREFIX set to a temporary install of BUILD_DIR, then checks
# both libraries with the installed taskmill-check-plugin-abi and
# taskmill-host --check. Exits non-zero, saying why, on any failure.
set -eu
cmake_bin=$1
build_dir=$2
source_dir=$3
doc=$source_dir/docs/PLUGINS.md

work=$(mktemp -d "${TMPDIR:-/tmp}/taskmill-doclines-XXXXXX")
if [ -z "${TASKMILL_KEEP_TMP:-}" ]; then
  trap 'rm -rf "$work"' EXIT
else
  echo "kept $work"
fi

step() { echo "== $*"; }

# The body of the first fenced block opened by `fence` after the first line
# that contains `marker` (a fixed string).
fenced_block() {
  awk -v marker="$1" -v fence="$2" '
    !seen && index($0, marker) { seen = 1; next }
    seen && !open && $0 == fence { open = 1; next }
    open && /^```/ { exit }
    open { print }' "$doc"
}

step "install $build_dir into $work/prefix"
"$cmake_bin" --install "$build_dir" --prefix "$work/prefix" >/dev/null

step "the documented lines"
cp -r "$source_dir/plugins/template" "$work/plugin"
fenced_block "## 1. A handler in C" '```c' >"$work/plugin/hello.c"
fenced_block "Without CMake" '```sh' >"$work/lines.sh"
[ -s "$work/plugin/hello.c" ] || { echo "no C example found in $doc"; exit 1; }
[ -s "$work/lines.sh" ] || { echo "no \"Without CMake\" sh block found in $doc"; exit 1; }
cat "$work/lines.sh"
(cd "$work/plugin" && PREFIX="$work/prefix" sh -eux "$work/lines.sh")

for so in my_plugin.so hello.so; do
  step "check $so"
  [ -f "$work/plugin/$so" ] || { echo "the documented lines made no $so"; exit 1; }
  "$work/prefix/bin/taskmill-check-plugin-abi" "$work/plugin/$so"
  "$work/prefix/bin/taskmill-host" --check "$work/plugin/$so" --run-dir "$work/run"
done
echo "== ok"
