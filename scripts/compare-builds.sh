#!/usr/bin/env bash
# compare-builds.sh: the same `ztick` commands on two builds, side by side, e.g. ztick on
# libzmq 4.3.4 (main's build) against ztick on libzmq 4.3.5 (this one):
#
#   CARGO_TARGET_DIR=target/v434 cargo build --release --bin ztick   # in the old tree
#   cargo build --release --bin ztick --bin ztick-tables
#   scripts/compare-builds.sh "libzmq 4.3.4" target/v434/release/ztick \
#                             "libzmq 4.3.5" target/release/ztick
#
# Runs ROUNDS interleaved rounds (A then B, then B then A, ...) of
#   ztick lat --transport T --size S --count RT --json     for T in TRANSPORTS, S in SIZES
#   ztick thr --transport T --size S --count COUNT --json
#   ztick fanout --json                                     (the default run, FANOUT_DURATION s)
# keeps every JSON line in OUT_DIR/results.jsonl and prints the medians per build with the
# ratio B / A, rendered by `ztick-tables builds` (also written to OUT_DIR/table.md).
# It runs no cargo: build first, and keep other builds off the machine while it runs
# (e.g. hold the shared cargo lock: flock /work/coord/cargo.lock scripts/compare-builds.sh ...).
#
# Environment: ROUNDS (5)  RT (20000)  COUNT (1000000)  TRANSPORTS ("inproc ipc tcp")
#   SIZES ("1 64 1024")  FANOUT_DURATION (5)  RUN_TIMEOUT (120 s)  OUT_DIR (target/compare-builds)
#   TABLES (target/release/ztick-tables)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -ne 4 ]; then
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
fi
labels=("$1" "$3")
bins=("$2" "$4")
for b in "${bins[@]}"; do
    [ -x "$b" ] || { echo "compare-builds: $b is not an executable: build it first" >&2; exit 1; }
done
ROUNDS=${ROUNDS:-5}
RT=${RT:-20000}
COUNT=${COUNT:-1000000}
TRANSPORTS=${TRANSPORTS:-"inproc ipc tcp"}
SIZES=${SIZES:-"1 64 1024"}
FANOUT_DURATION=${FANOUT_DURATION:-5}
RUN_TIMEOUT=${RUN_TIMEOUT:-120}
OUT_DIR=${OUT_DIR:-target/compare-builds}
TABLES=${TABLES:-target/release/ztick-tables}
[ -x "$TABLES" ] || { echo "compare-builds: $TABLES missing: cargo build --release --bin ztick-tables" >&2; exit 1; }
mkdir -p "$OUT_DIR"
RESULTS="$OUT_DIR/results.jsonl"
: >"$RESULTS"

echo "== $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
for i in 0 1; do
    echo "== ${labels[$i]}: ${bins[$i]}: $("${bins[$i]}" info | sed -n 's/^libzmq version: *//p'), $("${bins[$i]}" info | sed -n 's/^vendored flags: *//p')"
done

# run BUILD BENCH TRANSPORT SIZE ROUND CMD...: one run, its last JSON line appended.
run() {
    local build=$1 bench=$2 transport=$3 size=$4 round=$5 out json rc=0
    shift 5
    out=$(timeout "$RUN_TIMEOUT" "$@" 2>/dev/null) || rc=$?
    json=$(printf '%s\n' "$out" | grep -E '^\{' | tail -n 1 || true)
    if [ "$rc" != 0 ] || [ -z "$json" ]; then
        printf '{"build":"%s","bench":"%s","transport":"%s","size":%s,"round":%s,"error":"exit %s"}\n' \
            "$build" "$bench" "$transport" "$size" "$round" "$rc" >>"$RESULTS"
        echo "  FAILED $build $bench $transport $size B (exit $rc)"
        return 0
    fi
    printf '{"build":"%s","bench":"%s","transport":"%s","size":%s,"round":%s,"result":%s}\n' \
        "$build" "$bench" "$transport" "$size" "$round" "$json" >>"$RESULTS"
}

for round in $(seq "$ROUNDS"); do
    echo "== round $round of $ROUNDS"
    # Alternate which build goes first, so neither always runs on a warmer machine.
    order=(0 1)
    [ $((round % 2)) = 0 ] && order=(1 0)
    for t in $TRANSPORTS; do
        for s in $SIZES; do
            for i in "${order[@]}"; do
                run "${labels[$i]}" lat "$t" "$s" "$round" "${bins[$i]}" lat --transport "$t" --size "$s" --count "$RT" --json
                run "${labels[$i]}" thr "$t" "$s" "$round" "${bins[$i]}" thr --transport "$t" --size "$s" --count "$COUNT" --json
            done
        done
    done
    for i in "${order[@]}"; do
        run "${labels[$i]}" fanout ipc 64 "$round" "${bins[$i]}" fanout --duration "$FANOUT_DURATION" --json
    done
done
"$TABLES" builds "$RESULTS" | tee "$OUT_DIR/table.md"
