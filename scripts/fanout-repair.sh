#!/usr/bin/env bash
# What gap repair costs the live stream and what it recovers, ROUNDS interleaved rounds:
#   - "repair on" / "repair off": the default in-process run (100,000 ticks/s, 64 B,
#     8 topics, 2 subscribers over ipc, DURATION s) with the retransmit ring and NAKs,
#     and with both off (--ring-bytes 0 --no-repair): the live latency side by side;
#   - "stall 2 s": a publisher and a subscriber process over ipc; the subscriber is stopped
#     (SIGSTOP) for 2 s mid-stream, so its queue fills and the publisher drops for it, then
#     continued: what it repaired from the ring, what it lost, the repair latency;
#   - "ring full": an in-process run of 10 s (1,000,000 ticks, more than the default ring's
#     729,444 at 64 B): how many ticks the 64 MiB ring holds.
# One JSON line per run in OUT, rendered by `ztick-tables repair` (benches/tables/).
#   ROUNDS=3 DURATION=3 scripts/fanout-repair.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-3}
ZTICK=${ZTICK:-target/release/ztick}
TABLES=${TABLES:-target/release/ztick-tables}
[ -x "$ZTICK" ] && [ -x "$TABLES" ] || cargo build --release --bins
OUT=${OUT:-target/fanout-repair.jsonl}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$(dirname "$OUT")"
: > "$OUT"

record() { # variant round json-or-empty
    if [ -n "$3" ]; then
        printf '{"variant":"%s","round":%d,"report":%s}\n' "$1" "$2" "$3" >> "$OUT"
    else
        printf '{"variant":"%s","round":%d,"failed":true}\n' "$1" "$2" >> "$OUT"
    fi
}

embedded() { # variant round args...
    local v=$1 r=$2 json
    shift 2
    json=$(timeout 120 "$ZTICK" fanout --json "$@" 2>/dev/null) || json=""
    record "$v" "$r" "$json"
}

stall() { # round
    local r=$1 feed="ipc://$dir/feed-$1.ipc" side="ipc://$dir/side-$1.ipc"
    "$ZTICK" fanout --role pub --bind "$feed" --snapshot-bind "$side" --subscribers 1 --duration 5 \
        >/dev/null 2>"$dir/pub.err" &
    local pub=$!
    "$ZTICK" fanout --role sub --connect "$feed" --snapshot "$side" --json >"$dir/sub.json" 2>"$dir/sub.err" &
    local sub=$!
    # The subscriber says when the stream is under way (at most 20 s).
    for _ in $(seq 200); do grep -q begins "$dir/sub.err" && break; sleep 0.1; done
    sleep 1 # a second of live stream first
    kill -STOP "$sub"
    sleep 2 # the stall
    kill -CONT "$sub"
    local ok=1
    wait "$sub" || ok=0
    wait "$pub" || ok=0
    if [ "$ok" = 1 ]; then record "stall 2 s" "$r" "$(cat "$dir/sub.json")"; else record "stall 2 s" "$r" ""; fi
}

for round in $(seq "$ROUNDS"); do
    embedded "repair on" "$round" --duration "$DURATION"
    embedded "repair off" "$round" --duration "$DURATION" --ring-bytes 0 --no-repair
    stall "$round"
done
embedded "ring full" 1 --duration 10
"$TABLES" repair "$OUT"
