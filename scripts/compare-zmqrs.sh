#!/usr/bin/env bash
# compare-zmqrs.sh: the tick fan-out on ztick against the same fan-out written the seed
# guide's way on zmq.rs (the pure-Rust `zeromq` crate, tokio, one message per tick), side
# by side.
#
# Builds ztick (cargo build --release) and peers/zmqrs-fanout (its own package and target
# dir), then for every transport (ipc tcp) and subscriber count (1 2 4) runs, interleaved,
#   peers/zmqrs-fanout/target/release/zmqrs-fanout --transport T --subscribers N --rate R \
#       --duration D --size 64 --topics 8 --json
#   target/release/ztick fanout                    --transport T --subscribers N --rate R \
#       --duration D --size 64 --topics 8 --json
# at R = 100000 ticks/s, collects every JSON line into target/compare-zmqrs/results.jsonl
# and prints a Markdown table (also written to target/compare-zmqrs/table.md): corrected
# latency p50 / p99 / p99.9 (recv - intended send time, in us) and missing ticks, per stack
# and cell. `ztick-tables` (benches/tables/, built with ztick) records each run
# (zmqrs-record), picks the bisection's next rate (midpoint) and renders the tables (zmqrs).
#
# Usage: scripts/compare-zmqrs.sh [--max-rate] [--only-zmqrs] [--quick] [--no-build]
#                                 [--table-only]
#   --max-rate    instead of the latency runs, binary-search each stack's highest rate
#                 with zero missing ticks (geometric bisection between MAX_LO and MAX_HI,
#                 MAX_STEPS runs of MAX_DURATION s per stack and cell, the two stacks'
#                 steps interleaved) and table it with the ratio ztick / zmq.rs. A step
#                 passes when every subscriber missed nothing AND the publisher achieved
#                 at least 97 % of the rate asked (a publisher that cannot keep the pace
#                 has not sustained it). The table shows the worst subscriber's
#                 corrected p99 at the rate found.
#   --only-zmqrs  run zmq.rs only (also what happens, with a message, when
#                 `ztick fanout` does not exist or does not build)
#   --quick       1 round of 2 s (latency); 5 steps of 1 s (max-rate): a smoke run
#   --no-build    do not run cargo (use the binaries already built)
#   --table-only  re-render the tables from an existing results.jsonl
# Environment:
#   ROUNDS (3)  RATE (100000)  DURATION (5)  TRANSPORTS ("ipc tcp")  SUBS ("1 2 4")
#   TOPICS (8)  SIZE (64)  MAX_LO (10000)  MAX_HI (5000000)  MAX_STEPS (8)
#   MAX_DURATION (2)  MAX_P99_US (0 = off): in --max-rate, a step also fails when the
#   worst subscriber's corrected p99 exceeds this many us (zmq.rs queues up to 100,000
#   ticks per subscriber instead of dropping, so "zero loss" alone can mean seconds of lag)
#   RUN_TIMEOUT (60 s per run)  OUT_DIR (target/compare-zmqrs)
#   ZTICK (target/release/ztick)  ZMQRS (peers/zmqrs-fanout/target/release/zmqrs-fanout)
#   TABLES (target/release/ztick-tables)
#   ZMQRS_ARGS (""): extra flags for zmqrs-fanout, e.g. "--runtime multi"
#   ZTICK_ARGS (""): extra flags for ztick fanout
#   PIN_CPUS (unset): run every program under `taskset -c $PIN_CPUS`
#   QUIET_WAIT (300): before each run wait up to this many seconds while a compiler,
#   linker or another benchmark (rustc, cargo, cc1, ld, ztick*, zlat, zthr, zmqrs-fanout)
#   runs, or the machine is more than 15 % busy; 0 = do not wait
#
# The machine has 2 cores: runs go one at a time; run nothing heavy alongside. Noise
# between runs is large (x2-x10 on tails when anything else wakes up): read the
# interleaved ratios, not the absolutes. Endpoints: 127.0.0.1 and ipc under /tmp only.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

MAX_MODE=0 ONLY_ZMQRS=0 QUICK=0 NO_BUILD=0 TABLE_ONLY=0
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
for arg in "$@"; do
    case "$arg" in
        --max-rate) MAX_MODE=1 ;;
        --only-zmqrs) ONLY_ZMQRS=1 ;;
        --quick) QUICK=1 ;;
        --no-build) NO_BUILD=1 ;;
        --table-only) TABLE_ONLY=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "compare-zmqrs: unknown option '$arg'" >&2; usage >&2; exit 2 ;;
    esac
done

if [ "$QUICK" = 1 ]; then
    ROUNDS=${ROUNDS:-1} DURATION=${DURATION:-2} MAX_STEPS=${MAX_STEPS:-5} MAX_DURATION=${MAX_DURATION:-1}
fi
ROUNDS=${ROUNDS:-3}
RATE=${RATE:-100000}
DURATION=${DURATION:-5}
TRANSPORTS=${TRANSPORTS:-"ipc tcp"}
SUBS=${SUBS:-"1 2 4"}
TOPICS=${TOPICS:-8}
SIZE=${SIZE:-64}
MAX_LO=${MAX_LO:-10000}
MAX_HI=${MAX_HI:-5000000}
MAX_STEPS=${MAX_STEPS:-8}
MAX_DURATION=${MAX_DURATION:-2}
MAX_P99_US=${MAX_P99_US:-0}
RUN_TIMEOUT=${RUN_TIMEOUT:-60}
OUT_DIR=${OUT_DIR:-target/compare-zmqrs}
ZTICK=${ZTICK:-target/release/ztick}
ZMQRS=${ZMQRS:-peers/zmqrs-fanout/target/release/zmqrs-fanout}
TABLES=${TABLES:-target/release/ztick-tables}
ZMQRS_ARGS=${ZMQRS_ARGS:-}
ZTICK_ARGS=${ZTICK_ARGS:-}
QUIET_WAIT=${QUIET_WAIT:-300}
RESULTS="$OUT_DIR/results.jsonl"
TABLE="$OUT_DIR/table.md"

log() { printf '%s\n' "$*" >&2; }

need_tables() { # the renderer, built unless --no-build (a no-op when it is up to date)
    [ "$NO_BUILD" = 1 ] || cargo build --release --bin ztick-tables >&2
    [ -x "$TABLES" ] || { log "compare-zmqrs: no $TABLES (cargo build --release --bin ztick-tables)"; exit 1; }
}

# ------------------------------------------------------------------ table
render_table() {
    "$TABLES" zmqrs "$RESULTS" | tee "$TABLE"
    log "(table also in $TABLE; raw runs in $RESULTS)"
}

if [ "$TABLE_ONLY" = 1 ]; then
    [ -f "$RESULTS" ] || { log "compare-zmqrs: no $RESULTS to render"; exit 1; }
    need_tables
    render_table
    exit 0
fi

# ------------------------------------------------------------------ build
busy_pct() { # CPU busy % of the whole machine over 0.5 s
    local a b
    a=$(awk '/^cpu /{print $2+$3+$4+$6+$7+$8, $5}' /proc/stat)
    sleep 0.5
    b=$(awk '/^cpu /{print $2+$3+$4+$6+$7+$8, $5}' /proc/stat)
    printf '%s %s\n' "$a" "$b" | awk '{ d = ($3 - $1) + ($4 - $2); print (d > 0 ? int(100 * ($3 - $1) / d) : 0) }'
}
quiet() { # wait while a build or another benchmark runs (this machine's 2 cores are shared)
    [ "$QUIET_WAIT" -gt 0 ] 2>/dev/null || return 0
    local waited=0 said=0
    while ps -eo comm= | grep -qE '^(rustc|cargo|cc1|cc1plus|ld|ld\.lld|clippy-driver|rustdoc|ztick|zlat|zthr|zmqrs-fanout)' \
        || [ "$(busy_pct)" -gt 15 ]; do
        [ "$said" = 1 ] || { log "  (waiting for the machine to be idle: a build or another benchmark is running)"; said=1; }
        sleep 2
        waited=$((waited + 3))
        [ "$waited" -lt "$QUIET_WAIT" ] || { log "  (still busy after ${QUIET_WAIT}s; running anyway)"; break; }
    done
}

ZTICK_OK=1
[ "$ONLY_ZMQRS" = 1 ] && ZTICK_OK=0
if [ "$NO_BUILD" = 1 ]; then
    log "== --no-build: not running cargo"
else
    log "== cargo build --release --manifest-path peers/zmqrs-fanout/Cargo.toml"
    cargo build --release --manifest-path peers/zmqrs-fanout/Cargo.toml >&2
    if [ "$ZTICK_OK" = 1 ]; then
        log "== cargo build --release (ztick)"
        if ! cargo build --release >&2; then
            log "compare-zmqrs: ztick did not build; going on with zmq.rs only"
            ZTICK_OK=0
        fi
    fi
fi
need_tables
[ -x "$ZMQRS" ] || { log "compare-zmqrs: $ZMQRS not found (build it, or drop --no-build)"; exit 1; }
if [ "$ZTICK_OK" = 1 ]; then
    if [ ! -x "$ZTICK" ]; then
        log "compare-zmqrs: $ZTICK not found; running zmq.rs only"
        ZTICK_OK=0
    elif ! "$ZTICK" fanout --help 2>&1 | grep -q -- '--json'; then
        log "compare-zmqrs: this ztick has no 'fanout' verb (with --json) yet; running zmq.rs only"
        log "              (use --only-zmqrs to skip this check)"
        ZTICK_OK=0
    fi
fi
STACK_LIST="zmq.rs"
[ "$ZTICK_OK" = 1 ] && STACK_LIST="zmq.rs ztick"

# ------------------------------------------------------------------ runs
mkdir -p "$OUT_DIR"
: > "$RESULTS"
ERRF=$(mktemp)
trap 'rm -f "$ERRF"' EXIT

read -r LOAD1 _ < /proc/loadavg
if awk -v l="$LOAD1" 'BEGIN { exit !(l > 0.8) }'; then
    log "warning: load average is $LOAD1: something else is running; figures will be noisy"
fi

LAST_JSON=""
# run_one STACK BENCH TRANSPORT SUBS ROUND RATE DURATION: run once, append a line to
# results.jsonl; LAST_JSON holds the program's JSON ("" on failure).
run_one() {
    local stack=$1 bench=$2 transport=$3 subs=$4 round=$5 rate=$6 dur=$7
    local -a cmd pin=()
    local flags=(--transport "$transport" --subscribers "$subs" --rate "$rate"
                 --duration "$dur" --size "$SIZE" --topics "$TOPICS" --json)
    if [ "$stack" = ztick ]; then
        # shellcheck disable=SC2206
        cmd=("$ZTICK" fanout "${flags[@]}" $ZTICK_ARGS)
    else
        # shellcheck disable=SC2206
        cmd=("$ZMQRS" "${flags[@]}" $ZMQRS_ARGS)
    fi
    [ -n "${PIN_CPUS:-}" ] && pin=(taskset -c "$PIN_CPUS")
    quiet
    local out rc=0
    out=$(timeout "$RUN_TIMEOUT" "${pin[@]}" "${cmd[@]}" 2>"$ERRF") || rc=$?
    LAST_JSON=$(printf '%s\n' "$out" | grep -E '^\{' | tail -n 1 || true)
    local record=("$TABLES" zmqrs-record --stack "$stack" --bench "$bench" --transport "$transport"
                  --subscribers "$subs" --round "$round" --rate "$rate")
    if [ "$rc" != 0 ] || [ -z "$LAST_JSON" ]; then
        local why detail
        if [ "$rc" = 124 ]; then why="timed out after ${RUN_TIMEOUT}s"
        elif [ "$rc" != 0 ]; then why="exit $rc"
        else why="no JSON line on stdout"; fi
        detail=$(tail -n 2 "$ERRF" | tr '\n' ' ' | cut -c1-200)
        log "  FAILED $stack: $why: ${cmd[*]} ${detail:+-- $detail}"
        "${record[@]}" --error="$why $detail" >> "$RESULTS"
        LAST_JSON=""
        return 0
    fi
    # The line on stdout, with pass or fail; the run's summary on stderr.
    printf '%s' "$LAST_JSON" | "${record[@]}" --p99-bound-us "$MAX_P99_US" >> "$RESULTS"
}

last_pass() { # did the last line of results.jsonl pass?
    tail -n 1 "$RESULTS" | grep -q '"pass":true'
}

log "== stacks: $STACK_LIST; transports: $TRANSPORTS; subscribers: $SUBS; $TOPICS topics, $SIZE B"
if [ "$MAX_MODE" = 0 ]; then
    log "== latency at $RATE ticks/s, $ROUNDS round(s) of $DURATION s per stack and cell"
    for round in $(seq 1 "$ROUNDS"); do
        for transport in $TRANSPORTS; do
            for subs in $SUBS; do
                # alternate which stack goes first from round to round
                order=$STACK_LIST
                [ $((round % 2)) = 0 ] && order=$(printf '%s\n' $STACK_LIST | tac | tr '\n' ' ')
                for stack in $order; do
                    run_one "$stack" lat "$transport" "$subs" "$round" "$RATE" "$DURATION"
                done
            done
        done
    done
else
    log "== highest zero-loss rate: $MAX_STEPS steps of $MAX_DURATION s between $MAX_LO and $MAX_HI ticks/s"
    for transport in $TRANSPORTS; do
        for subs in $SUBS; do
            declare -A LO=() HI=() DEAD=()
            for stack in $STACK_LIST; do
                # the floor must pass, or there is nothing to search (one retry: one
                # noisy run should not void the cell)
                run_one "$stack" max "$transport" "$subs" 0 "$MAX_LO" "$MAX_DURATION"
                last_pass || run_one "$stack" max "$transport" "$subs" 0 "$MAX_LO" "$MAX_DURATION"
                if last_pass; then LO[$stack]=$MAX_LO; HI[$stack]=$MAX_HI; DEAD[$stack]=0
                else DEAD[$stack]=1; log "  $stack fails at $MAX_LO ticks/s already"; fi
            done
            for step in $(seq 1 "$MAX_STEPS"); do
                for stack in $STACK_LIST; do
                    [ "${DEAD[$stack]}" = 0 ] || continue
                    mid=$("$TABLES" midpoint "${LO[$stack]}" "${HI[$stack]}")
                    [ "$mid" -lt "${HI[$stack]}" ] || continue
                    run_one "$stack" max "$transport" "$subs" "$step" "$mid" "$MAX_DURATION"
                    if last_pass; then LO[$stack]=$mid; else HI[$stack]=$mid; fi
                done
            done
            unset LO HI DEAD
        done
    done
fi

echo
render_table
