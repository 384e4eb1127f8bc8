#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds and runs the dataplane benchmarks (root: network namespaces) and
# writes docs/bench-dataplane.md. About 4 minutes. Args pass through to
# bench_dataplane, e.g. --rounds 50 --window-ms 300 --only b1.
set -euo pipefail
cd "$(dirname "$0")/../.."
top=$PWD
build=${BUILD:-$top/build-bench}
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j "$(nproc)" --target bench_dataplane pfagent >/dev/null
out=$(mktemp)
"$build/bench/dataplane/bench_dataplane" "$build/tests/tools/pfagent" "$@" > "$out"
{
  sed -n '1,/^<!-- results -->$/p' docs/bench-dataplane.md
  echo
  echo "Measured $(date -u +%Y-%m-%dT%H:%MZ) on $(uname -r), $(nproc) CPUs:"
  echo
  cat "$out"
} > "$out.md"
mv "$out.md" docs/bench-dataplane.md
rm -f "$out"
echo "wrote docs/bench-dataplane.md"
