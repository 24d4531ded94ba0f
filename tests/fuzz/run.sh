#!/usr/bin/env bash
# Run every libFuzzer harness (tests/fuzz/fuzz_*.c) for SECONDS each; build them first if needed.
#   tests/fuzz/run.sh SECONDS [NAME...]      e.g. tests/fuzz/run.sh 300 soap http
# Environment: FUZZ_BUILD (build dir, default <repo>/build-fuzz), FUZZ_JOBS (harnesses run at
# once, default 1), FUZZ_WORK (grown corpora and logs, default $FUZZ_BUILD/fuzz-work).
# The seed corpora in tests/fuzz/corpus/<name>/ are read, never written; new inputs go to the
# work dir. A crash, leak or timeout exits non-zero and keeps the input in
# tests/fuzz/artifacts/<name>/ (git-ignored); replay it with bin/fuzz_<name> FILE and add it to
# tests/fuzz/regressions/<name>/. Prints executions, coverage (cov) and features (ft) per harness.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
secs=${1:?usage: run.sh SECONDS [NAME...]}
shift
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(http soap rules ldif ini)
build=${FUZZ_BUILD:-$repo/build-fuzz}
work=${FUZZ_WORK:-$build/fuzz-work}
jobs=${FUZZ_JOBS:-1}

if [ ! -f "$build/CMakeCache.txt" ]; then
        CC=clang cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
                -DINTYGSGW_FUZZ=ON -DINTYGSGW_SANITIZE=ON -DINTYGSGW_TESTS=OFF \
                -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link >"$build.cmake.log" 2>&1 ||
                { cat "$build.cmake.log"; exit 2; }
fi
targets=()
for n in "${names[@]}"; do targets+=("fuzz_$n"); done
cmake --build "$build" -j2 --target "${targets[@]}" >"$build.build.log" 2>&1 ||
        { tail -50 "$build.build.log"; exit 2; }

export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1:${ASAN_OPTIONS:-}
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}

maxlen() {
        case $1 in
        ldif) echo 65536 ;;
        ini) echo 8192 ;;
        *) echo 16384 ;;
        esac
}

run_one() {
        local n=$1 dict=() log="$work/$n.log"
        mkdir -p "$work/corpus/$n" "$here/artifacts/$n"
        [ -f "$here/$n.dict" ] && dict=(-dict="$here/$n.dict")
        [ "$n" = soap ] || [ "$n" = rules ] && dict=(-dict="$here/xml.dict")
        "$build/bin/fuzz_$n" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
                -max_len="$(maxlen "$n")" -print_final_stats=1 "${dict[@]}" \
                -artifact_prefix="$here/artifacts/$n/" \
                "$work/corpus/$n" "$here/corpus/$n" >"$log" 2>&1
        echo $? >"$work/$n.rc"
}

mkdir -p "$work"
running=0
for n in "${names[@]}"; do
        run_one "$n" &
        running=$((running + 1))
        if [ "$running" -ge "$jobs" ]; then
                wait -n
                running=$((running - 1))
        fi
done
wait

fail=0
printf '%-6s %12s %8s %8s %8s  %s\n' harness execs exec/s cov ft result
for n in "${names[@]}"; do
        log="$work/$n.log"
        rc=$(cat "$work/$n.rc" 2>/dev/null || echo 99)
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
        rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
        last=$(grep -E '^#[0-9]+' "$log" | grep -E 'cov: ' | tail -1)
        cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
        ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
        if [ "$rc" = 0 ]; then
                res=ok
        else
                res="FAILED (rc $rc): $(grep -m1 -E 'ERROR: (AddressSanitizer|libFuzzer|LeakSanitizer)|runtime error|invariant broken' "$log")"
                art=$(grep -o "Test unit written to .*" "$log" | tail -1)
                [ -n "$art" ] && res="$res; $art"
                fail=1
        fi
        printf '%-6s %12s %8s %8s %8s  %s\n' "$n" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "$res"
done
[ "$fail" = 0 ] || echo "logs: $work/<name>.log"
exit "$fail"
