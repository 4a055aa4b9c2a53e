#!/usr/bin/env bash
# bench.sh: runs the `cargo bench` suites and the raw-libzmq C baseline in one pass, then
# regenerates the tables between the `<!-- bench.sh:begin -->` and `<!-- bench.sh:end -->`
# markers in BENCHMARKS.md (section 9), with the machine, the date and the commands. The
# tables are rendered by `ztick-tables` (benches/tables/: bench-meta, bench, splice).
#
# Suites: latency throughput fanout codec metrics peers (benches/*.rs), then
# scripts/compare-libzmq.sh --busy. Criterion also compares every case with the previous run
# on this machine; the cases it finds slower are listed at the end ("regressed").
#
# Usage: scripts/bench.sh [--quick] [--no-compare] [--no-write] [--tables-only] [-- ARGS...]
#   --quick        criterion with --warm-up-time 0.1 --measurement-time 0.3 --sample-size 10,
#                  and compare-libzmq.sh --quick: checks the whole pipeline in minutes; the
#                  generated section then says its figures are noisy
#   --no-compare   skip compare-libzmq.sh (it builds ztick in release and the C programs)
#   --no-write     print the generated section instead of writing BENCHMARKS.md
#   --tables-only  regenerate the section from the last run's files, running nothing
#   ARGS           passed to criterion: a filter ('tcp/', 'msg_64B'), --save-baseline NAME,
#                  --baseline NAME (compare against a saved baseline instead of the last run)
# Environment:
#   BENCHES ("latency throughput fanout codec metrics peers")  OUT (target/ztick-bench)
#   TABLES (target/release/ztick-tables): the renderer, built here in release
#   ZTICK_BENCH_PIN=0: do not pin the benches' threads (default: the two ends of a pair on
#   the first and the last core, fan-out workers round-robin)
#
# The machine should be quiet: one run at a time, nothing heavy beside it.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

QUICK=0 COMPARE=1 WRITE=1 TABLES_ONLY=0
CRIT_ARGS=()
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --no-compare) COMPARE=0 ;;
        --no-write) WRITE=0 ;;
        --tables-only) TABLES_ONLY=1 ;;
        --) shift; CRIT_ARGS+=("$@"); break ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

BENCHES=${BENCHES:-"latency throughput fanout codec metrics peers"}
OUT=${OUT:-target/ztick-bench}
META="$OUT/meta.json"
LOG="$OUT/cargo-bench.log"
SINCE_FILE="$OUT/since"
COMPARE_TABLE=target/compare/table.md
MD=BENCHMARKS.md
TABLES=${TABLES:-target/release/ztick-tables}

log() { printf '%s\n' "$*" >&2; }

cargo build --release --bin ztick-tables >&2

if [ "$QUICK" = 1 ]; then
    CRIT_ARGS=(--warm-up-time 0.1 --measurement-time 0.3 --sample-size 10 "${CRIT_ARGS[@]}")
fi

if [ "$TABLES_ONLY" = 0 ]; then
    mkdir -p "$OUT"
    rm -f "$OUT"/*.jsonl
    date +%s > "$SINCE_FILE"
    read -r LOAD1 LOAD5 _ < /proc/loadavg
    if awk -v l="$LOAD1" 'BEGIN { exit !(l > 0.8) }'; then
        log "warning: load average is $LOAD1: something else is running; figures will be noisy"
    fi
    bench_flags=()
    for b in $BENCHES; do bench_flags+=(--bench "$b"); done
    CARGO_CMD="cargo bench ${bench_flags[*]} -- ${CRIT_ARGS[*]}"
    COMPARE_CMD="scripts/compare-libzmq.sh --busy$( [ "$QUICK" = 1 ] && echo ' --quick' || true)"
    commands=("$CARGO_CMD")
    [ "$COMPARE" = 1 ] && commands+=("$COMPARE_CMD")
    quick_flag=()
    [ "$QUICK" = 1 ] && quick_flag=(--quick)
    "$TABLES" bench-meta --out "$META" "${quick_flag[@]}" --load "$LOAD1 $LOAD5" -- "${commands[@]}"

    log "== $CARGO_CMD"
    set +e
    cargo bench "${bench_flags[@]}" -- "${CRIT_ARGS[@]}" 2>&1 | tee "$LOG"
    BENCH_RC=${PIPESTATUS[0]}
    set -e
    if [ "$BENCH_RC" != 0 ]; then
        log "bench.sh: cargo bench failed (exit $BENCH_RC); the tables show what was measured"
    fi

    COMPARE_RC=0
    if [ "$COMPARE" = 1 ]; then
        log "== $COMPARE_CMD"
        rm -f "$COMPARE_TABLE"
        set +e
        if [ "$QUICK" = 1 ]; then
            scripts/compare-libzmq.sh --busy --quick
        else
            scripts/compare-libzmq.sh --busy
        fi
        COMPARE_RC=$?
        set -e
        [ "$COMPARE_RC" = 0 ] || log "bench.sh: compare-libzmq.sh exited $COMPARE_RC (failed runs are listed under its table)"
    fi
else
    [ -f "$META" ] && [ -f "$SINCE_FILE" ] || { log "bench.sh: no previous run in $OUT"; exit 1; }
    BENCH_RC=0 COMPARE_RC=0
fi

compare_arg=()
if [ "$COMPARE" = 1 ]; then compare_arg=(--compare "$COMPARE_TABLE"); fi
SECTION="$OUT/section.md"
"$TABLES" bench --criterion target/criterion --hdr "$OUT" \
    --since "$(cat "$SINCE_FILE")" --meta "$META" "${compare_arg[@]}" > "$SECTION"

if [ "$WRITE" = 1 ]; then
    "$TABLES" splice "$MD" "$SECTION"
    log "== $MD: section 9 regenerated (from $SECTION)"
else
    cat "$SECTION"
fi

if [ -f "$LOG" ] && [ "$TABLES_ONLY" = 0 ]; then
    regressed=$(awk '/^[a-z_]+\/[^ ]+/ { id = $1; sub(/:$/, "", id) } /Performance has regressed/ { print "  " id }' "$LOG")
    if [ -n "$regressed" ]; then
        n=$(printf '%s\n' "$regressed" | wc -l)
        log "criterion found $n case(s) slower than the previous run (or the --baseline)$( [ "$QUICK" = 1 ] && echo '; quick runs are too short to trust this' || true):"
        log "$(printf '%s\n' "$regressed" | head -n 20)"
        [ "$n" -le 20 ] || log "  ... (all of them: grep -B3 'regressed' $LOG)"
    fi
fi
[ "$BENCH_RC" = 0 ] && [ "$COMPARE_RC" = 0 ]
