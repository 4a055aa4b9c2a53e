#!/usr/bin/env bash
# compare-libzmq.sh: ztick against raw libzmq driven from C, side by side.
#
# Builds ztick (cargo build --release) and the C programs in scripts/c twice:
# against the static libzmq (4.3.5 with CURVE) that ztick's zmq-sys built
# (isolates ztick's own cost) and against Debian's libzmq (what C users run),
# plus a bare-socket "floor" without libzmq. Then, for every transport
# (inproc ipc tcp) and size (1 64 1024 B), it runs interleaved rounds of
#   scripts/c/build/{vendored,debian}/zlat T S RT     vs  ztick lat --transport T --size S --count RT --json
#   scripts/c/build/{vendored,debian}/zthr T S COUNT  vs  ztick thr --transport T --size S --count COUNT --json
# collects every JSON line into target/compare/results.jsonl and prints a
# Markdown table (also written to target/compare/table.md), rendered by
# `ztick-tables libzmq` (benches/tables/, built with ztick).
#
# Usage: scripts/compare-libzmq.sh [--quick] [--only-c] [--busy] [--no-floor]
#                                  [--lat-only | --thr-only] [--no-build] [--table-only]
#   --quick       1 round, RT=2000, COUNT=100000 (a CI smoke run)
#   --only-c      skip ztick (C stacks and the floor only)
#   --busy        add the inproc busy-poll row:
#                 zlat inproc S RT --busy  vs  ztick lat --transport inproc --idle busy-spin
#   --no-floor    skip the bare-socket floor stack
#   --lat-only / --thr-only   run one of the two benchmarks
#   --no-build    do not run cargo (use the ztick binary and libzmq.a already built)
#   --table-only  re-render the table from an existing results.jsonl
# Environment:
#   ROUNDS (3)  RT (20000 round trips)  COUNT (1000000 for 1 B and 64 B,
#   200000 for 1 KiB; one value for all sizes when set)  TRANSPORTS ("inproc ipc tcp")
#   SIZES ("1 64 1024")  RUN_TIMEOUT (120 s per run)  OUT_DIR (target/compare)
#   ZTICK (target/release/ztick): the ztick binary to run
#   TABLES (target/release/ztick-tables): the table renderer
#   PIN_CPUS (unset): run every program under `taskset -c $PIN_CPUS`, e.g. PIN_CPUS=0
#   puts both ends (and libzmq's I/O threads) on one CPU. On this VM a thread
#   woken on the other, idle vCPU costs ~20 us more than one woken on the same
#   vCPU, so unpinned blocking latencies are bimodal from run to run. With a
#   single CPU the --busy row still runs unpinned (spinners on one CPU wait
#   for each other's scheduler tick).
#
# The machine has 2 cores: runs go one at a time; do not run anything else
# heavy alongside. Noise between runs is large: read ratios, not absolutes.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

QUICK=0 ONLY_C=0 BUSY=0 FLOOR=1 DO_LAT=1 DO_THR=1 TABLE_ONLY=0 NO_BUILD=0
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
for arg in "$@"; do
    case "$arg" in
        --quick) QUICK=1 ;;
        --only-c) ONLY_C=1 ;;
        --busy) BUSY=1 ;;
        --no-floor) FLOOR=0 ;;
        --lat-only) DO_THR=0 ;;
        --thr-only) DO_LAT=0 ;;
        --table-only) TABLE_ONLY=1 ;;
        --no-build) NO_BUILD=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "compare-libzmq: unknown option '$arg'" >&2; usage >&2; exit 2 ;;
    esac
done

if [ "$QUICK" = 1 ]; then
    ROUNDS=${ROUNDS:-1}
    RT=${RT:-2000}
    COUNT=${COUNT:-100000}
else
    ROUNDS=${ROUNDS:-3}
    RT=${RT:-20000}
fi
TRANSPORTS=${TRANSPORTS:-"inproc ipc tcp"}
SIZES=${SIZES:-"1 64 1024"}
RUN_TIMEOUT=${RUN_TIMEOUT:-120}
OUT_DIR=${OUT_DIR:-target/compare}
RESULTS="$OUT_DIR/results.jsonl"
META="$OUT_DIR/meta.json"
TABLE="$OUT_DIR/table.md"
CDIR=scripts/c
BUILD="$CDIR/build"
ZTICK=${ZTICK:-target/release/ztick}
TABLES=${TABLES:-target/release/ztick-tables}

log() { printf '%s\n' "$*" >&2; }

need_tables() { # the renderer, built unless --no-build (a no-op when it is up to date)
    [ "$NO_BUILD" = 1 ] || cargo build --release --bin ztick-tables >&2
    [ -x "$TABLES" ] || { log "compare-libzmq: no $TABLES (cargo build --release --bin ztick-tables)"; exit 1; }
}

thr_count() { # size -> message count
    if [ -n "${COUNT:-}" ]; then echo "$COUNT"
    elif [ "$1" -ge 1024 ]; then echo 200000
    else echo 1000000; fi
}

render_table() {
    mkdir -p "$OUT_DIR"
    "$TABLES" libzmq "$RESULTS" --meta "$META" | tee "$TABLE"
    echo
    log "(table also in $TABLE; raw runs in $RESULTS)"
}

if [ "$TABLE_ONLY" = 1 ]; then
    [ -f "$RESULTS" ] || { log "no $RESULTS to render"; exit 1; }
    need_tables
    render_table
    exit 0
fi

# ------------------------------------------------------------------ build
vendored_libzmq() {
    ls -t target/release/build/zmq-sys-*/out/lib/libzmq.a 2>/dev/null | head -n 1 || true
}

ZTICK_OK=1
[ "$ONLY_C" = 1 ] && ZTICK_OK=0
if [ "$NO_BUILD" = 1 ]; then
    log "== --no-build: not running cargo"
    [ -n "$(vendored_libzmq)" ] || { log "compare-libzmq: no vendored libzmq.a: run cargo build --release"; exit 1; }
elif [ "$ONLY_C" = 1 ] && [ -n "$(vendored_libzmq)" ]; then
    log "== --only-c: using the existing vendored libzmq ($(vendored_libzmq)); not rebuilding ztick"
else
    log "== cargo build --release"
    if ! cargo build --release >&2; then
        if [ -n "$(vendored_libzmq)" ]; then
            log "compare-libzmq: ztick did not build; going on with the C stacks only"
            ZTICK_OK=0
        else
            log "compare-libzmq: cargo build failed and no vendored libzmq.a exists"
            exit 1
        fi
    fi
fi
need_tables

if ! pkg-config --exists libzmq 2>/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        log "== installing Debian's libzmq3-dev"
        apt-get install -y libzmq3-dev pkg-config >&2 \
            || { apt-get update >&2 && apt-get install -y libzmq3-dev pkg-config >&2; }
    else
        log "compare-libzmq: Debian's libzmq is missing: sudo apt-get install -y libzmq3-dev pkg-config"
        exit 1
    fi
fi

log "== building the C programs (scripts/c/build/{vendored,debian,floor})"
make -C "$CDIR" --no-print-directory vendored debian >&2
if [ "$FLOOR" = 1 ] && ! make -C "$CDIR" --no-print-directory floor >&2; then
    log "compare-libzmq: the floor program did not build; skipping the floor stack"
    FLOOR=0
fi

# Does ztick have this verb, with --json? (The Rust side may not have it yet.)
ZTICK_LAT=0 ZTICK_THR=0
if [ "$ZTICK_OK" = 1 ]; then
    if [ ! -x "$ZTICK" ]; then
        log "compare-libzmq: $ZTICK not found; running the C stacks only"
    else
        for verb in lat thr; do
            if "$ZTICK" "$verb" --help 2>&1 | grep -q -- '--json'; then
                eval "ZTICK_${verb^^}=1"
            else
                log "compare-libzmq: 'ztick $verb' is missing (or has no --json) in this build; skipping ztick $verb runs"
            fi
        done
    fi
fi

# ------------------------------------------------------------------ runs
mkdir -p "$OUT_DIR"
: > "$RESULTS"
ERRF=$(mktemp)
trap 'rm -f "$ERRF"' EXIT

VENDORED_V=$("$BUILD/vendored/zlat" --version 2>/dev/null || echo '?')
DEBIAN_V=$("$BUILD/debian/zlat" --version 2>/dev/null || echo '?')
ZTICK_REV=$(git rev-parse --short HEAD 2>/dev/null || echo '?')
meta_args=(--out "$META" --rounds "$ROUNDS" --round-trips "$RT"
    --thr-count "$( [ -n "${COUNT:-}" ] && echo "$COUNT" || echo '1000000 (1 B, 64 B) / 200000 (1 KiB)')"
    --c-vendored "$VENDORED_V (zmq-sys static build)" --c-debian "$DEBIAN_V (libzmq3-dev)"
    --ztick "$( [ "$ZTICK_LAT$ZTICK_THR" = 00 ] && echo 'not run' || echo "git $ZTICK_REV")")
if [ -n "${PIN_CPUS:-}" ]; then
    pinned=$PIN_CPUS
    if [[ "$PIN_CPUS" =~ ^[0-9]+$ ]] && [ "$BUSY" = 1 ]; then pinned+=" (busy row unpinned)"; fi
    meta_args+=(--pinned "$pinned")
fi
"$TABLES" libzmq-meta "${meta_args[@]}"

read -r LOAD1 _ < /proc/loadavg
if awk -v l="$LOAD1" 'BEGIN { exit !(l > 0.8) }'; then
    log "warning: load average is $LOAD1: something else is running; figures will be noisy"
fi

declare -A FAILS=()
FAILED_RUNS=0

# run_one STACK BENCH TRANSPORT SIZE ROUND CMD...: run, keep the last JSON line.
run_one() {
    local stack=$1 bench=$2 transport=$3 size=$4 round=$5
    shift 5
    local out rc=0 json
    local -a pin=()
    if [ -n "${PIN_CPUS:-}" ]; then
        # Two busy-polling threads on one CPU take turns per scheduler tick
        # (4 ms a round trip): run the busy row unpinned then.
        if [ "$transport" != inproc-busy ] || [[ ! "$PIN_CPUS" =~ ^[0-9]+$ ]]; then
            pin=(taskset -c "$PIN_CPUS")
        fi
    fi
    out=$(timeout "$RUN_TIMEOUT" "${pin[@]}" "$@" 2>"$ERRF") || rc=$?
    json=$(printf '%s\n' "$out" | grep -E '^\{' | tail -n 1 || true)
    if [ "$rc" != 0 ] || [ -z "$json" ]; then
        local why
        if [ "$rc" = 124 ]; then why="timed out after ${RUN_TIMEOUT}s"
        elif [ "$rc" != 0 ]; then why="exit $rc"
        else why="no JSON line on stdout"; fi
        local detail
        detail=$(tail -n 2 "$ERRF" | tr '\n"\\' '  /' | cut -c1-200)
        log "  FAILED $stack: $why: $* ${detail:+-- $detail}"
        printf '{"stack":"%s","bench":"%s","transport":"%s","size":%s,"round":%s,"error":"%s"}\n' \
            "$stack" "$bench" "$transport" "$size" "$round" "$why ${detail//\"/}" >> "$RESULTS"
        FAILED_RUNS=$((FAILED_RUNS + 1))
        FAILS[$stack/$bench]=$(( ${FAILS[$stack/$bench]:-0} + 1 ))
        return 0
    fi
    FAILS[$stack/$bench]=0
    printf '{"stack":"%s","bench":"%s","transport":"%s","size":%s,"round":%s,"result":%s}\n' \
        "$stack" "$bench" "$transport" "$size" "$round" "$json" >> "$RESULTS"
    local summary
    if [ "$bench" = lat ]; then
        summary="p50 rtt $(printf '%s' "$json" | sed -E 's/.*"p50":([0-9.]+).*/\1/') ns"
    else
        summary="$(printf '%s' "$json" | sed -E 's/.*"msgs_per_s":([0-9.]+).*/\1/') msg/s"
    fi
    log "  $(printf '%-10s' "$stack") $summary"
}

# A stack that failed twice in a row for a bench is not run again this time.
given_up() { [ "${FAILS[$1/$2]:-0}" -ge 2 ]; }

# stacks_for BENCH ROWTRANSPORT -> the stacks to run, in a fixed base order
stacks_for() {
    local bench=$1 row=$2 s=()
    if [ "$bench" = lat ] && [ "$FLOOR" = 1 ]; then s+=(floor); fi
    s+=(c-vendored c-debian)
    if [ "$bench" = lat ] && [ "$ZTICK_LAT" = 1 ]; then s+=(ztick); fi
    if [ "$bench" = thr ] && [ "$ZTICK_THR" = 1 ]; then s+=(ztick); fi
    printf '%s\n' "${s[@]}"
}

# cmd_for STACK BENCH ROWTRANSPORT SIZE N -> the command line, one word a line
cmd_for() {
    local stack=$1 bench=$2 row=$3 size=$4 n=$5 t=$3 busy=()
    if [ "$row" = inproc-busy ]; then t=inproc; busy=(--busy); fi
    case "$stack/$bench" in
        floor/lat) printf '%s\n' "$BUILD/floor/floor" "$t" "$size" "$n" "${busy[@]}" ;;
        c-vendored/lat) printf '%s\n' "$BUILD/vendored/zlat" "$t" "$size" "$n" "${busy[@]}" ;;
        c-debian/lat) printf '%s\n' "$BUILD/debian/zlat" "$t" "$size" "$n" "${busy[@]}" ;;
        c-vendored/thr) printf '%s\n' "$BUILD/vendored/zthr" "$t" "$size" "$n" ;;
        c-debian/thr) printf '%s\n' "$BUILD/debian/zthr" "$t" "$size" "$n" ;;
        ztick/lat)
            printf '%s\n' "$ZTICK" lat --transport "$t" --size "$size" --count "$n"
            if [ "$row" = inproc-busy ]; then printf '%s\n' --idle busy-spin; fi
            printf '%s\n' --json ;;
        ztick/thr) printf '%s\n' "$ZTICK" thr --transport "$t" --size "$size" --count "$n" --json ;;
    esac
}

run_cell() { # BENCH ROWTRANSPORT SIZE N
    local bench=$1 row=$2 size=$3 n=$4 r i k
    local -a stacks cmd
    mapfile -t stacks < <(stacks_for "$bench" "$row")
    local ns=${#stacks[@]}
    for ((r = 1; r <= ROUNDS; r++)); do
        log "[$bench $row ${size} B, round $r/$ROUNDS]"
        # Rotate the order every round so that no stack always runs first.
        for ((i = 0; i < ns; i++)); do
            k=$(( (i + r - 1) % ns ))
            local stack=${stacks[$k]}
            if given_up "$stack" "$bench"; then continue; fi
            mapfile -t cmd < <(cmd_for "$stack" "$bench" "$row" "$size" "$n")
            run_one "$stack" "$bench" "$row" "$size" "$r" "${cmd[@]}"
            if given_up "$stack" "$bench"; then
                log "  giving up on $stack $bench after two failures in a row"
            fi
        done
    done
}

ROWS=()
for t in $TRANSPORTS; do
    ROWS+=("$t")
    if [ "$t" = inproc ] && [ "$BUSY" = 1 ]; then ROWS+=(inproc-busy); fi
done
if [ "$BUSY" = 1 ] && [[ " ${ROWS[*]} " != *" inproc-busy "* ]]; then ROWS+=(inproc-busy); fi

if [ "$DO_LAT" = 1 ]; then
    for row in "${ROWS[@]}"; do
        for s in $SIZES; do run_cell lat "$row" "$s" "$RT"; done
    done
fi
if [ "$DO_THR" = 1 ]; then
    for row in "${ROWS[@]}"; do
        [ "$row" = inproc-busy ] && continue
        for s in $SIZES; do run_cell thr "$row" "$s" "$(thr_count "$s")"; done
    done
fi

echo >&2
render_table
if [ "$FAILED_RUNS" -gt 0 ]; then
    log "compare-libzmq: $FAILED_RUNS run(s) failed (listed under the table)"
    exit 1
fi
