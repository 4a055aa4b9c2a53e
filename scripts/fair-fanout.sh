#!/usr/bin/env bash
# fair-fanout.sh: the tick fan-out on every stack, side by side in one interleaved run
# (issue 14, part 1; part 4 with --idle). Each run is started, bounded, timed and reaped by
# `ztick-tables run` (benches/tables/run.rs): one publisher and N subscribers (one process
# each, cross-process) or one process holding both (in-process); every process reaped with
# its rusage (wait4, through GNU time), each thread's CPU share sampled mid-run from /proc;
# one FairRun JSON line per run into $OUT_DIR/results.jsonl, rendered by
# `ztick-tables fair` into $OUT_DIR/table.md.
#
# Variants (STACKS items; `stack@label` runs a stack with the extra flags of env
# ZTICK_ARGS_label / ZTICK_PUB_ARGS_label / ZTICK_SUB_ARGS_label, tabled as its own row):
#   ztick-in       ztick fanout (publisher + N subscribers in one process)
#   ztick-x        ztick fanout --role pub  +  N x ztick fanout --role sub
#   c-x            scripts/c fanout_pub (raw libzmq, one tick per message) + N x fanout_sub
#   c-coalesced-x  the same, --coalesce-us $COALESCE_US (one message per window, as ztick)
#   zmqrs-x        zmqrs-fanout --role pub + N x zmqrs-fanout --role sub (a tokio
#                  current-thread runtime per process)
#   zmqrs-in       zmqrs-fanout (publisher and subscribers on one tokio thread)
# Cells: TRANSPORTS x SUBS x RATES; every variant of a cell runs back to back, the order
# rotating each round. Figures per cell (medians over ROUNDS): corrected p50 / p99 /
# p99.9 / p99.99 / max (each the worst subscriber's), missing ticks, publisher stalls
# (passes > 1 ms behind schedule), max lag, CPU seconds per million ticks and context
# switches per tick (all processes of the run, from wait4), p99 ratios vs c-x and vs zmq.rs
# of the same placement.
#
# Usage: scripts/fair-fanout.sh [--quick] [--idle] [--no-build] [--table-only]
#   --quick       a smoke run: 1 round of 1 s, ipc and tcp, 1 and 2 subscribers, 10 k and
#                 100 k ticks/s (about 2 minutes)
#   --idle        the idle-latency bench instead: after one lead-in tick, IDLE_SAMPLES
#                 ticks after each gap of IDLE_GAPS_US; variants IDLE_STACKS
#   --no-build    do not run cargo or make (use the binaries already built)
#   --table-only  re-render the tables from an existing results.jsonl
# Environment (defaults in brackets):
#   STACKS ["c-x c-coalesced-x zmqrs-x ztick-x zmqrs-in ztick-in"]  TRANSPORTS ["ipc tcp"]
#   SUBS ["1 2 4"]  RATES ["10000 100000 1000000"]  ROUNDS [3]  DURATION [1.5] (s per run)
#   TOPICS [8]  SIZE [64] (payload bytes; each stack adds its own header)  COALESCE_US [20]
#   RUN_TIMEOUT [45] (s; every process of a run is killed after it)
#   IDLE_GAPS_US ["100,1000,10000,100000,1000000"]  IDLE_SAMPLES [5]
#   IDLE_STACKS ["c-x zmqrs-x ztick-x zmqrs-in ztick-in"; without the ztick rows for a ztick
#   older than its --idle-gaps-us]
#   IDLE_SUBS ["1"]
#   ZTICK_ARGS / ZTICK_PUB_ARGS / ZTICK_SUB_ARGS: extra flags for ztick (every role /
#   the publisher or embedded run / each subscriber); ZMQRS_ARGS (every zmqrs-fanout
#   process); C_PUB_ARGS / C_SUB_ARGS
#   QUIET_WAIT [300] (s, for the whole pass; 20 with --quick): before each run, wait while
#   a compiler, linker or another benchmark runs or the machine is > 15 % busy, until this
#   budget is spent (then the runs go on and meta.txt says the figures are noisy)
#   LOCK_BUILD: a prefix for cargo and make, e.g. "flock /work/coord/cargo.lock"
#   OUT_DIR [target/fair-fanout]  ZTICK  ZMQRS  TABLES  C_DIR (the binaries)
#
# The full run (defaults) is 6 variants x 18 cells x 3 rounds = 324 runs of 1.5 s,
# about 16 minutes on a 2-core machine (the 1 M ticks/s cells take 3-6 s a run: stacks
# that cannot keep up publish late). Run nothing else meanwhile; take the
# measuring lock: flock /work/coord/measure.lock scripts/fair-fanout.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

QUICK=0 IDLE=0 NO_BUILD=0 TABLE_ONLY=0
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
for arg in "$@"; do
    case "$arg" in
        --quick) QUICK=1 ;;
        --idle) IDLE=1 ;;
        --no-build) NO_BUILD=1 ;;
        --table-only) TABLE_ONLY=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "fair-fanout: unknown option '$arg'" >&2; usage >&2; exit 2 ;;
    esac
done

if [ "$QUICK" = 1 ]; then
    ROUNDS=${ROUNDS:-1} DURATION=${DURATION:-1} SUBS=${SUBS:-"1 2"} RATES=${RATES:-"10000 100000"}
    QUIET_WAIT=${QUIET_WAIT:-20} IDLE_GAPS_US=${IDLE_GAPS_US:-"100,1000,10000,100000"}
    IDLE_SAMPLES=${IDLE_SAMPLES:-3}
fi
STACKS=${STACKS:-"c-x c-coalesced-x zmqrs-x ztick-x zmqrs-in ztick-in"}
TRANSPORTS=${TRANSPORTS:-"ipc tcp"}
SUBS=${SUBS:-"1 2 4"}
RATES=${RATES:-"10000 100000 1000000"}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-1.5}
TOPICS=${TOPICS:-8}
SIZE=${SIZE:-64}
COALESCE_US=${COALESCE_US:-20}
RUN_TIMEOUT=${RUN_TIMEOUT:-45}
IDLE_GAPS_US=${IDLE_GAPS_US:-"100,1000,10000,100000,1000000"}
IDLE_SAMPLES=${IDLE_SAMPLES:-5}
IDLE_SUBS=${IDLE_SUBS:-"1"}
ZTICK_ARGS=${ZTICK_ARGS:-} ZTICK_PUB_ARGS=${ZTICK_PUB_ARGS:-} ZTICK_SUB_ARGS=${ZTICK_SUB_ARGS:-}
ZMQRS_ARGS=${ZMQRS_ARGS:-} C_PUB_ARGS=${C_PUB_ARGS:-} C_SUB_ARGS=${C_SUB_ARGS:-}
QUIET_WAIT=${QUIET_WAIT:-300}
LOCK_BUILD=${LOCK_BUILD:-}
OUT_DIR=${OUT_DIR:-target/fair-fanout}
ZTICK=${ZTICK:-target/release/ztick}
ZMQRS=${ZMQRS:-peers/zmqrs-fanout/target/release/zmqrs-fanout}
TABLES=${TABLES:-target/release/ztick-tables}
C_DIR=${C_DIR:-scripts/c/build/vendored}
RESULTS="$OUT_DIR/results.jsonl"
TABLE="$OUT_DIR/table.md"
META="$OUT_DIR/meta.txt"

log() { printf '%s\n' "$*" >&2; }

render() {
    { if [ -f "$META" ]; then cat "$META"; echo; fi; "$TABLES" fair "$RESULTS"; } | tee "$TABLE"
    if grep -q '"bench":"idle"' "$RESULTS"; then
        { echo; "$TABLES" idle "$RESULTS"; } | tee -a "$TABLE"
    fi
    log "(table in $TABLE; runs in $RESULTS; each run's output under $OUT_DIR/runs/)"
}

if [ "$TABLE_ONLY" = 1 ]; then
    [ -f "$RESULTS" ] || { log "fair-fanout: no $RESULTS to render"; exit 1; }
    render
    exit 0
fi

# ------------------------------------------------------------------ build
if [ "$NO_BUILD" = 1 ]; then
    log "== --no-build: not running cargo or make"
else
    log "== building ztick, ztick-tables, zmqrs-fanout and scripts/c's fan-out pair"
    # shellcheck disable=SC2086
    $LOCK_BUILD cargo build --release --bins >&2
    # shellcheck disable=SC2086
    $LOCK_BUILD cargo build --release --manifest-path peers/zmqrs-fanout/Cargo.toml >&2
    # shellcheck disable=SC2086
    $LOCK_BUILD make -s -C scripts/c fanout >&2
fi
for b in "$ZTICK" "$ZMQRS" "$TABLES" "$C_DIR/fanout_pub" "$C_DIR/fanout_sub"; do
    [ -x "$b" ] || { log "fair-fanout: $b not found (build it, or drop --no-build)"; exit 1; }
done
[ -x /usr/bin/time ] || { log "fair-fanout: needs GNU time for each process's rusage: apt-get install -y time"; exit 1; }

# ------------------------------------------------------------------ quiet machine
busy_pct() { # CPU busy % of the whole machine over 0.5 s
    local a b
    a=$(awk '/^cpu /{print $2+$3+$4+$6+$7+$8, $5}' /proc/stat)
    sleep 0.5
    b=$(awk '/^cpu /{print $2+$3+$4+$6+$7+$8, $5}' /proc/stat)
    printf '%s %s\n' "$a" "$b" | awk '{ d = ($3 - $1) + ($4 - $2); print (d > 0 ? int(100 * ($3 - $1) / d) : 0) }'
}
QUIET_LEFT=$QUIET_WAIT NOISY=0
quiet() { # wait while a build or another benchmark runs, within the pass's budget
    [ "$QUIET_LEFT" -gt 0 ] 2>/dev/null || return 0
    local said=0
    while ps -eo comm= | grep -qE '^(rustc|cargo|cc1|cc1plus|ld|ld\.lld|clippy-driver|rustdoc|ztick$|zlat|zthr|zmqrs-fanout|fanout_pub|fanout_sub)' \
        || [ "$(busy_pct)" -gt 15 ]; do
        [ "$said" = 1 ] || { log "  (waiting for the machine to be idle: a build or another benchmark is running)"; said=1; }
        sleep 2
        QUIET_LEFT=$((QUIET_LEFT - 3))
        if [ "$QUIET_LEFT" -le 0 ]; then
            log "  (still busy; the ${QUIET_WAIT} s wait budget is spent: running on, figures noisy)"
            NOISY=1
            return 0
        fi
    done
}

# ------------------------------------------------------------------ runs
mkdir -p "$OUT_DIR"
rm -rf "$OUT_DIR/runs"
: > "$RESULTS"

# The labelled flags of a variant: the value of env NAME_label, or "".
labelled() { local v="${1}_${2}"; if [ -n "$2" ]; then printf '%s' "${!v:-}"; fi; }

N=0 FAILED=0 START=$(date +%s)
# run_one ITEM TRANSPORT SUBS RATE ROUND [idle]
run_one() {
    local item=$1 transport=$2 subs=$3 rate=$4 round=$5 idle=${6:-}
    local stack=${item%%@*} label=""
    if [ "$item" != "$stack" ]; then label=${item#*@}; fi
    local pub_args="" sub_args=""
    case "$stack" in
        ztick-*)
            pub_args="$ZTICK_ARGS $ZTICK_PUB_ARGS $(labelled ZTICK_ARGS "$label") $(labelled ZTICK_PUB_ARGS "$label")"
            sub_args="$ZTICK_ARGS $ZTICK_SUB_ARGS $(labelled ZTICK_ARGS "$label") $(labelled ZTICK_SUB_ARGS "$label")" ;;
        zmqrs-*) pub_args="$ZMQRS_ARGS" sub_args="$ZMQRS_ARGS" ;;
        c-*) pub_args="$C_PUB_ARGS" sub_args="$C_SUB_ARGS" ;;
    esac
    N=$((N + 1))
    local dir
    dir="$OUT_DIR/runs/$(printf '%04d' "$N")-$item-$transport-$subs-$rate"
    local cmd=("$TABLES" run --stack "$stack" --label "$label" --transport "$transport"
               --subscribers "$subs" --round "$round" --rate "$rate" --size "$SIZE"
               --topics "$TOPICS" --duration "$DURATION" --coalesce-us "$COALESCE_US"
               --timeout-s "$RUN_TIMEOUT" --ztick "$ZTICK" --zmqrs "$ZMQRS" --c-dir "$C_DIR"
               --pub-args "$pub_args" --sub-args "$sub_args" --work-dir "$dir")
    if [ -n "$idle" ]; then cmd+=(--idle-gaps-us "$IDLE_GAPS_US" --idle-samples "$IDLE_SAMPLES"); fi
    quiet
    local line
    line=$("${cmd[@]}") || true
    if [ -z "$line" ]; then
        line="{\"bench\":\"${idle:+idle}${idle:-rate}\",\"stack\":\"$stack\",\"error\":\"ztick-tables run printed nothing\"}"
    fi
    printf '%s\n' "$line" >> "$RESULTS"
    local summary
    summary=$(printf '%s\n' "$line" | sed -n 's/.*"latency_ns":{[^}]*"p99":\([0-9]*\).*/p99 \1 ns/p' | head -n 1)
    if printf '%s' "$line" | grep -q '"error":"'; then
        FAILED=$((FAILED + 1))
        summary="FAILED: $(printf '%s' "$line" | sed -n 's/.*"error":"\([^"]*\)".*/\1/p' | cut -c1-160)"
    fi
    log "  [$N] r$round $transport subs=$subs rate=$rate $item: ${summary:-no latency}"
}

# Rotates the words of $1 left by $2 places (each round starts with another variant).
rotate() {
    local -a w
    read -r -a w <<< "$1"
    local n=${#w[@]} k=$(( $2 % ${#w[@]} )) i
    for ((i = 0; i < n; i++)); do printf '%s ' "${w[$(((i + k) % n))]}"; done
}

read -r LOAD1 LOAD5 _ < /proc/loadavg
{
    echo "Machine: $(nproc) cores, $(uname -r), load average at the start $LOAD1 / $LOAD5 (1 / 5 min)."
    echo "Binaries: $ZTICK (commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')), $ZMQRS, $C_DIR ($("$C_DIR/fanout_pub" --version 2>/dev/null || echo 'libzmq ?'), $(cat "$C_DIR/LIBZMQ" 2>/dev/null || echo '?'))."
    echo "Flags: ZTICK_ARGS='$ZTICK_ARGS' ZTICK_PUB_ARGS='$ZTICK_PUB_ARGS' ZTICK_SUB_ARGS='$ZTICK_SUB_ARGS' ZMQRS_ARGS='$ZMQRS_ARGS' C_PUB_ARGS='$C_PUB_ARGS' COALESCE_US=$COALESCE_US."
    # Each labelled variant's own flags, so its row says what it ran with.
    for item in $STACKS ${IDLE_STACKS:-}; do
        case "$item" in
            *@*) label=${item#*@}
                 echo "Variant \`$item\`: ZTICK_ARGS_$label='$(labelled ZTICK_ARGS "$label")' ZTICK_PUB_ARGS_$label='$(labelled ZTICK_PUB_ARGS "$label")' ZTICK_SUB_ARGS_$label='$(labelled ZTICK_SUB_ARGS "$label")'." ;;
        esac
    done
} > "$META"
if awk -v l="$LOAD1" 'BEGIN { exit !(l > 0.8) }'; then
    log "warning: load average is $LOAD1: something else is running; figures will be noisy"
fi

if [ "$IDLE" = 1 ]; then
    if [ -z "${IDLE_STACKS:-}" ]; then
        IDLE_STACKS="c-x zmqrs-x zmqrs-in"
        if "$ZTICK" fanout --help 2>&1 | grep -q -- '--idle-gaps-us'; then
            IDLE_STACKS="c-x zmqrs-x ztick-x zmqrs-in ztick-in"
        else
            log "note: this ztick has no 'fanout --idle-gaps-us': idle runs of c and zmq.rs only"
        fi
    fi
    log "== idle latency: gaps $IDLE_GAPS_US us, $IDLE_SAMPLES ticks each; $IDLE_STACKS; $ROUNDS round(s)"
    for round in $(seq 1 "$ROUNDS"); do
        for transport in $TRANSPORTS; do
            for subs in $IDLE_SUBS; do
                for item in $(rotate "$IDLE_STACKS" "$((round - 1))"); do
                    run_one "$item" "$transport" "$subs" 0 "$round" idle
                done
            done
        done
    done
else
    log "== fair fan-out: $STACKS; $TRANSPORTS x subs $SUBS x rates $RATES; $ROUNDS round(s) of $DURATION s"
    for round in $(seq 1 "$ROUNDS"); do
        for transport in $TRANSPORTS; do
            for subs in $SUBS; do
                for rate in $RATES; do
                    for item in $(rotate "$STACKS" "$((round - 1))"); do
                        run_one "$item" "$transport" "$subs" "$rate" "$round"
                    done
                done
            done
        done
    done
fi
ELAPSED=$(( $(date +%s) - START ))
{
    echo "$N runs in $ELAPSED s; $FAILED failed."
    if [ "$NOISY" = 1 ]; then
        echo "NOISY: the machine was still busy when the quiet-wait budget ran out; do not quote these figures."
    fi
} >> "$META"
log "== $N runs in $ELAPSED s ($FAILED failed)"
render
[ "$FAILED" = 0 ]
