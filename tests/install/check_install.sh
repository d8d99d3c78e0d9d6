#!/usr/bin/env bash
# Installs a built aha tree into a temporary prefix and builds, out of tree, against it:
#   1. examples/reward_plugin (copied away from the source tree), then loads it in the installed aha;
#   2. tests/install/consumer, a find_package(aha) project linking aha::rewards and aha::runlog;
#   3. the same consumer compiled by hand with `pkg-config --cflags --libs aha`.
# usage: check_install.sh BUILD_DIR SOURCE_DIR [CMAKE]
set -euo pipefail
build=$1
src=$2
cmake=${3:-cmake}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

timeout 120 "$cmake" --install "$build" --prefix "$prefix" >"$tmp/install.log"
test -x "$prefix/bin/aha"
test -f "$prefix/include/aha/rewards/plugin_abi.h"
test -f "$prefix/include/aha/runlog/report.h"
"$prefix/bin/aha" report --help >/dev/null

echo "== reward plugin"
cp -r "$src/examples/reward_plugin" "$tmp/plugin-src"
timeout 120 "$cmake" -S "$tmp/plugin-src" -B "$tmp/plugin" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
timeout 300 "$cmake" --build "$tmp/plugin" >/dev/null
echo '{"completion": "yes, because", "answer": "1"}' |
  timeout 60 "$prefix/bin/aha" reward --reward plugin --params \
    "{\"plugin\": {\"path\": \"$tmp/plugin/libaha_example_reward.so\", \"params\": {\"keywords\": [\"because\"]}}}" |
  tee "$tmp/plugin.out"
grep -q '"reward":1' "$tmp/plugin.out" || grep -q '"reward": 1' "$tmp/plugin.out"

echo "== find_package(aha)"
timeout 120 "$cmake" -S "$src/tests/install/consumer" -B "$tmp/consumer" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
timeout 300 "$cmake" --build "$tmp/consumer" >/dev/null
"$tmp/consumer/aha_consumer"

echo "== pkg-config aha"
export PKG_CONFIG_PATH=$(dirname "$(find "$prefix" -name aha.pc)")
flags=$(pkg-config --cflags --libs aha)
timeout 300 c++ -O0 "$src/tests/install/consumer/consumer.cpp" $flags -o "$tmp/pc_consumer"
"$tmp/pc_consumer"
echo "install: ok"
