#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The README's test command: installs what is missing, builds with warnings as
# errors, runs every test (unit, kernel-in-namespaces, end to end), then the
# same tests again in an ASan+UBSan build.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

scripts/deps.sh
jobs=$(nproc)

run_suite() {
  local dir=$1; shift
  cmake -S "$top" -B "$dir" -DPODFENCE_WERROR=ON "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
  (cd "$dir" && ctest --output-on-failure -j "$jobs" --timeout 900)
}

echo "== build and test (release) =="
run_suite build
if [ "${PODFENCE_SKIP_ASAN:-0}" != 1 ]; then
  echo "== build and test (ASan+UBSan) =="
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_suite build-asan -DPODFENCE_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang
fi
if [ "${PODFENCE_SKIP_FUZZ:-0}" != 1 ]; then
  echo "== fuzz every outside-input parser for a bounded time (libFuzzer, ASan+UBSan) =="
  scripts/fuzz.sh
fi
