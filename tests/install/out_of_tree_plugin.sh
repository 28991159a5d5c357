#!/bin/sh
# usage: out_of_tree_plugin.sh CMAKE BUILD_DIR TEMPLATE_DIR
# Installs BUILD_DIR into a temporary prefix, builds TEMPLATE_DIR (a copy of
# it, as a user would) against that prefix, and checks the plugin with the
# installed taskmill-check-plugin-abi and taskmill-host. Exits non-zero,
# saying why, on any failure.
set -eu
cmake_bin=$1
build_dir=$2
template_dir=$3

work=$(mktemp -d "${TMPDIR:-/tmp}/taskmill-install-XXXXXX")
if [ -z "${TASKMILL_KEEP_TMP:-}" ]; then
  trap 'rm -rf "$work"' EXIT
else
  echo "kept $work"
fi
prefix=$work/prefix

step() { echo "== $*"; }

step "install $build_dir into $prefix"
"$cmake_bin" --install "$build_dir" --prefix "$prefix"

for f in bin/taskmill-host bin/taskmill-check-plugin-abi include/taskmill/plugin.h include/taskmill/plugin.hpp \
  include/taskmill/plugin_mp.h include/taskmill/plugin/context.hpp; do
  [ -e "$prefix/$f" ] || { echo "missing from the install: $f"; exit 1; }
done

step "build the template plugin out of tree"
cp -r "$template_dir" "$work/my_plugin"
"$cmake_bin" -S "$work/my_plugin" -B "$work/my_plugin/build" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_BUILD_TYPE=Debug
"$cmake_bin" --build "$work/my_plugin/build" -j2

plugin=$work/my_plugin/build/my_plugin.so
[ -f "$plugin" ] || { echo "the build made no $plugin"; ls -l "$work/my_plugin/build"; exit 1; }

step "taskmill-check-plugin-abi $plugin"
"$prefix/bin/taskmill-check-plugin-abi" "$plugin"

step "taskmill-host --check $plugin"
"$prefix/bin/taskmill-host" --check "$plugin" --run-dir "$work/run"
echo "== ok"
