#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs every libFuzzer harness for a bounded time (default 20 s each) under
# ASan+UBSan, seeded from the checked-in corpora. New inputs go to a scratch
# directory, never into the source tree. A crash fails the run and leaves the
# reproducer in build-fuzz/crashes/.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
secs=${PODFENCE_FUZZ_SECONDS:-20}

scripts/deps.sh
cmake -S "$top" -B build-fuzz -DPODFENCE_FUZZ=ON -DCMAKE_C_COMPILER=clang \
      -DCMAKE_BUILD_TYPE=Debug >/dev/null

# harness -> seed corpus directories (relative to the top)
declare -A seeds=(
  [fuzz_decode]="tests/decode/corpus"
  [fuzz_daemon_req]="tests/daemon/corpus/req tests/daemon/corpus/yaml"
  [fuzz_plugin_conf]="tests/plugin/corpus"
  [fuzz_kube_watch_stream]="tests/kube/corpus/watch_stream"
  [fuzz_kube_kubeconfig]="tests/kube/corpus/kubeconfig"
  [fuzz_flowlog_nflog]="tests/flowlog/corpus"
)
cmake --build build-fuzz -j "$(nproc)" --target "${!seeds[@]}"

mkdir -p build-fuzz/crashes
failed=0
for h in $(printf '%s\n' "${!seeds[@]}" | sort); do
  bin=$(find build-fuzz -type f -name "$h" -perm -u+x | head -n 1)
  if [ -z "$bin" ]; then
    echo "fuzz: harness $h was not built" >&2
    failed=1
    continue
  fi
  scratch=$(mktemp -d)
  dirs=()
  for d in ${seeds[$h]}; do dirs+=("$top/$d"); done
  echo "fuzz: $h for ${secs}s"
  if ! "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
         -artifact_prefix="build-fuzz/crashes/$h-" -print_final_stats=1 \
         "$scratch" "${dirs[@]}" >"build-fuzz/$h.log" 2>&1; then
    echo "fuzz: $h FAILED (log: build-fuzz/$h.log)" >&2
    tail -n 40 "build-fuzz/$h.log" >&2
    failed=1
  else
    grep -E 'stat::number_of_executed_units|Done [0-9]+ runs' "build-fuzz/$h.log" | tail -n 1
  fi
  rm -rf "$scratch"
done
exit $failed
