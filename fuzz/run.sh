#!/usr/bin/env bash
# Run every fuzz target (or the ones named after SECONDS) for SECONDS each
# (default 60), from fresh seeds (make-seeds.py) plus the corpus kept in
# fuzz/corpus/TARGET from earlier runs. Needs a nightly toolchain and
# cargo-fuzz. Prints one line per target: executions, coverage (cov, ft)
# and the result; exits 1 when a target found a crash (its input is in
# fuzz/artifacts/TARGET/, its log in fuzz/logs/TARGET.log).
#
# Environment: FUZZ_TOOLCHAIN (default nightly), FUZZ_NICE (niceness of the
# fuzzing processes, default 0), IPWASH_CORPUS (shared corpus for the seeds),
# FUZZ_MAX_LEN (largest input of capture_reader and cdns_block, default
# 65536; smaller inputs run faster).
set -euo pipefail
cd "$(dirname "$0")"

secs="${1:-60}"
shift || true
all=(capture_reader locate plain_vs_general cdns_block bloom_file state_csv key_file map_line text_scan)
if [ $# -gt 0 ]; then targets=("$@"); else targets=("${all[@]}"); fi
tc="+${FUZZ_TOOLCHAIN:-nightly}"
nice_n="${FUZZ_NICE:-0}"
# The targets are safe Rust (the crates forbid unsafe code): no sanitizer,
# but debug assertions and overflow checks on, so an overflow is a finding.
flags=(-s none -a)

python3 make-seeds.py >/dev/null
nice -n "$nice_n" cargo "$tc" fuzz build "${flags[@]}"

mkdir -p logs
failed=0
printf '%-18s %12s %8s %8s  %s\n' target executions cov ft result
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "seeds/$t"
    extra=()
    case "$t" in
        capture_reader | cdns_block) extra=(-max_len="${FUZZ_MAX_LEN:-65536}") ;;
    esac
    rc=0
    nice -n "$nice_n" cargo "$tc" fuzz run "${flags[@]}" "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$secs" -timeout=30 -print_final_stats=1 "${extra[@]}" \
        >"logs/$t.log" 2>&1 || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "logs/$t.log" | tail -1)
    status=$(grep -E '^#[0-9]+' "logs/$t.log" | tail -1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$status")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$status")
    if [ "$rc" -eq 0 ]; then
        result=ok
    else
        result="FAILED (exit $rc, see fuzz/logs/$t.log)"
        failed=1
    fi
    printf '%-18s %12s %8s %8s  %s\n' "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$result"
done
exit "$failed"
