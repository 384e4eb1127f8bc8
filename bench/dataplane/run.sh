#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds and runs the dataplane benchmarks (root: network namespaces) and
# writes docs/bench-dataplane.md. About 4 minutes. Args pass through to
# bench_dataplane, e.g. --rounds 50 --window-ms 300 --only b1.
# With --only b1log (B1 with the flow log, through the real podfenced, about
# 3 minutes) the results go to docs/bench-flowlog.md instead.
set -euo pipefail
cd "$(dirname "$0")/../.."
top=$PWD
build=${BUILD:-$top/build-bench}
doc=docs/bench-dataplane.md
case " $* " in *" b1log "*) doc=docs/bench-flowlog.md ;; esac
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j "$(nproc)" --target bench_dataplane pfagent podfenced >/dev/null
out=$(mktemp)
"$build/bench/dataplane/bench_dataplane" "$build/tests/tools/pfagent" \
  --podfenced "$build/controller/daemon/podfenced" "$@" > "$out"
{
  sed -n '1,/^<!-- results -->$/p' "$doc"
  echo
  echo "Measured $(date -u +%Y-%m-%dT%H:%MZ) on $(uname -r), $(nproc) CPUs:"
  echo
  cat "$out"
} > "$out.md"
mv "$out.md" "$doc"
rm -f "$out"
echo "wrote $doc"
