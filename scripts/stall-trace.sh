#!/usr/bin/env bash
# Traces the kernel's scheduler under one `ztick fanout` run and attributes every delay of
# its threads (issue 14, part 2): for the publisher's worker, each subscriber's worker and
# libzmq's I/O thread, how late each ran after it wanted to, split into its timer firing
# late, waiting in the run queue (and who held the CPU) and being preempted.
# scripts/stall_trace.py does the attribution; its head comment defines the terms.
#
# The trace is the kernel's own (tracefs, /sys/kernel/tracing, on the CLOCK_MONOTONIC
# trace clock): `perf record` of the same tracepoints (Debian's linux-perf 6.1) drops most
# switches out of the idle task on this 6.18 kernel, which hides exactly the wake-ups that
# matter; stall_trace.py reads `perf script` output too.
#
# Usage: scripts/stall-trace.sh [--out DIR] [--no-build] [--cross N] [-- FANOUT-ARGS...]
#   --out DIR     where fanout.json, trace.txt.gz, report.txt and report.json go
#                 (default target/stall-trace)
#   --cross N     across processes: one `--role pub` process and N `--role sub` ones over
#                 ipc (CROSS_TRANSPORT=tcp: loopback), each given FANOUT-ARGS
#   --no-build    use target/release/ztick as it is
#   FANOUT-ARGS   flags of `ztick fanout` (default: its defaults, 3 s: one process, ipc,
#                 2 subscribers, 100,000 ticks/s); --json is added
# Environment: ZTICK (the binary), THRESHOLD_US [1000], THREADS [^(ztick|ZMQbg)],
# BUFFER_KB [65536] (trace buffer per CPU; the report says if it overflowed).
# Needs root (tracefs). The trace is system-wide: every process's threads are in it.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=target/stall-trace
BUILD=1
CROSS=0
ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --out) OUT=$2; shift ;;
        --no-build) BUILD=0 ;;
        --cross) CROSS=$2; shift ;;
        --) shift; ARGS=("$@"); break ;;
        -h|--help) sed -n "2,23p" "$0"; exit 0 ;;
        *) echo "stall-trace: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done
[ ${#ARGS[@]} -gt 0 ] || ARGS=(--duration 3)
ZTICK=${ZTICK:-target/release/ztick}
T=/sys/kernel/tracing
# A fresh machine may not have tracefs mounted yet: root can mount it.
if [ ! -e "$T/tracing_on" ] && [ "$(id -u)" = 0 ]; then
    mount -t tracefs nodev "$T" 2>/dev/null || true
fi
[ -w "$T/tracing_on" ] || { echo "stall-trace: $T is not writable: run as root (mount -t tracefs nodev $T)" >&2; exit 2; }
if [ "$BUILD" = 1 ]; then
    ${LOCK_BUILD:-} cargo build --release --quiet --bin ztick
fi
mkdir -p "$OUT"

EVENTS="sched/sched_switch sched/sched_wakeup timer/hrtimer_start timer/hrtimer_expire_entry"
old_clock=$(sed 's/.*\[\(.*\)\].*/\1/' "$T/trace_clock")
# "7 (expanded: 1408)" on a tracefs never resized: the number is what it takes back.
old_kb=$(awk '{ print $1 }' "$T/buffer_size_kb")
restore() {
    echo 0 > "$T/tracing_on"
    for e in $EVENTS; do echo 0 > "$T/events/$e/enable"; done
    echo "$old_clock" > "$T/trace_clock"
    echo "$old_kb" > "$T/buffer_size_kb"
}
trap restore EXIT
echo 0 > "$T/tracing_on"
echo mono > "$T/trace_clock"
echo "${BUFFER_KB:-65536}" > "$T/buffer_size_kb"
echo > "$T/trace"
for e in $EVENTS; do echo 1 > "$T/events/$e/enable"; done

steal() { awk '/^cpu / { print $9 }' /proc/stat; }   # USER_HZ ticks the hypervisor took
steal0=$(steal)
echo 1 > "$T/tracing_on"
status=0
if [ "$CROSS" -gt 0 ]; then
    run_dir=$(mktemp -d)
    if [ "${CROSS_TRANSPORT:-ipc}" = tcp ]; then
        port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
        feed="tcp://127.0.0.1:$(port)" side="tcp://127.0.0.1:$(port)"
    else
        feed="ipc://$run_dir/feed" side="ipc://$run_dir/side"
    fi
    pids=()
    "$ZTICK" fanout --role pub --bind "$feed" --snapshot-bind "$side" --subscribers "$CROSS" "${ARGS[@]}" --json \
        > "$OUT/pub.json" 2> "$OUT/pub.err" & pids+=($!)
    for i in $(seq "$CROSS"); do
        "$ZTICK" fanout --role sub --connect "$feed" --snapshot "$side" --timeout-ms 60000 "${ARGS[@]}" --json \
            > "$OUT/sub$i.json" 2> "$OUT/sub$i.err" & pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || status=$?; done
    rm -rf "$run_dir"
    # One record as the embedded run prints it: the publisher's figures, every subscriber.
    python3 - "$OUT" "$CROSS" > "$OUT/fanout.json" <<'EOF' || status=1
import json, sys
out, n = sys.argv[1], int(sys.argv[2])
p = json.load(open(f"{out}/pub.json"))
subs = []
for i in range(1, n + 1):
    s = json.load(open(f"{out}/sub{i}.json"))["subscribers"][0]
    s["name"] = f"sub{i}"
    subs.append(s)
print(json.dumps({"published": p["published"], "publisher": p["publisher"], "subscribers": subs}))
EOF
else
    "$ZTICK" fanout "${ARGS[@]}" --json > "$OUT/fanout.json" 2> "$OUT/fanout.err" || status=$?
fi
echo 0 > "$T/tracing_on"
steal1=$(steal)
[ "$status" = 0 ] || { echo "stall-trace: the run failed (exit $status):" >&2; cat "$OUT"/*.err >&2; exit 1; }
overrun=$(cat "$T"/per_cpu/cpu*/stats | awk '/^overrun:/ { n += $2 } END { print n + 0 }')
cp "$T/trace" "$OUT/trace.txt"
restore
trap - EXIT
py=(python3 scripts/stall_trace.py --threads "${THREADS:-^(ztick|ZMQbg)}" --threshold-us "${THRESHOLD_US:-1000}")
{
    echo "ztick fanout ${ARGS[*]}$([ "$CROSS" -gt 0 ] && echo " across processes: a publisher and $CROSS subscribers over ${CROSS_TRANSPORT:-ipc}") (commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(date -u +%FT%TZ))"
    python3 - "$OUT/fanout.json" <<'EOF'
import json, sys
v = json.load(open(sys.argv[1]))
p = v["publisher"]
print(f"publisher: {v['published']} ticks, {p['stalls']} stalls over 1 ms, max lag {p['max_lag_ns']/1e3:.0f} us")
for s in v["subscribers"]:
    l = s["latency_ns"]
    print(f"{s['name']}: corrected p50 {l['p50']/1e3:.0f} us, p99 {l['p99']/1e3:.0f} us, p99.9 {l['p99_9']/1e3:.0f} us, max {l['max']/1e3:.0f} us, missing {s['missing']}")
EOF
    echo "steal (CPU time the hypervisor took, all vCPUs): $(( (steal1 - steal0) * 10 )) ms; trace events lost to a full buffer: $overrun"
    "${py[@]}" "$OUT/trace.txt"
} | tee "$OUT/report.txt"
"${py[@]}" --json "$OUT/trace.txt" > "$OUT/report.json"
gzip -f "$OUT/trace.txt"
echo "stall-trace: $OUT/report.txt, report.json, trace.txt.gz" >&2
