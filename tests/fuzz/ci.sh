#!/usr/bin/env bash
# CI fuzz stage (called by ops/test.sh): build the libFuzzer harnesses with clang and run each
# for FUZZ_SECONDS (default 20) on both cores. Whole stage: ~2 minutes on 2 cores including
# a clean build. Exits non-zero on any crash, leak or timeout (input kept under
# tests/fuzz/artifacts/<name>/).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -f ops/deps.sh ]; then
        # clang alone lacks the fuzzer runtime when installed without recommends.
        . ops/deps.sh
        intygsgw_deps libclang-rt-14-dev
fi
echo "== fuzz (${FUZZ_SECONDS:-20} s per harness)"
FUZZ_JOBS=${FUZZ_JOBS:-2} FUZZ_BUILD=${FUZZ_BUILD:-$PWD/build-fuzz} \
        exec tests/fuzz/run.sh "${FUZZ_SECONDS:-20}"
