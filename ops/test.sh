#!/usr/bin/env bash
# Builds intygsgw from scratch with ASan+UBSan and runs the whole test suite with ctest.
# Also fails on code that clang-format would change. Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
. ops/deps.sh
intygsgw_deps

echo "== clang-format"
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find gateway adapters tests -name '*.[ch]')
[ -z "$files" ] || clang-format --dry-run -Werror $files

echo "== build (ASan + UBSan) in build-asan/"
rm -rf build-asan
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DINTYGSGW_SANITIZE=ON -DINTYGSGW_TESTS=ON >/dev/null
cmake --build build-asan -j"$(nproc)"

echo "== tests"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:${ASAN_OPTIONS:-}
export LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:${LSAN_OPTIONS:-}
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd build-asan && ctest --output-on-failure --timeout 900 -j2)

echo "== fuzz harnesses, briefly (tests/fuzz/ci.sh; long runs: tests/fuzz/run.sh SECONDS)"
bash tests/fuzz/ci.sh
