#!/usr/bin/env bash
# What `--otlp` costs, export off and on, in interleaved rounds, against a sink on loopback
# that answers every OTLP/HTTP POST with 200:
#   fanout: `ztick fanout` with its defaults (1 publisher, 2 subscribers over ipc,
#           100,000 ticks/s for 5 s, 64 B, 8 topics): the merged corrected latency;
#   lat:    `ztick lat --transport tcp --count 50000` (64 B REQ/REP round trips on
#           loopback, one-second intervals handed to the metrics thread): the round trip.
# Prints one row per run: latency p50 / p99 / p99.9 (µs), the process's user and system
# CPU seconds, its voluntary and involuntary context switches, and the bytes exported.
#
#   cargo build --release --features otlp
#   scripts/otlp-cost.sh [ROUNDS]      # default 3 rounds of fanout off + on, lat off + on
#
# Run it on an idle machine (no build beside it), under the measuring lock where others
# share the machine: the figures are side by side in one run, and only their ratio means
# anything (BENCHMARKS.md says how noisy this VM is). Before each run it waits up to
# QUIET_WAIT seconds (default 300; 0: never) while a compiler, linker or another benchmark
# runs or the machine is more than 15 % busy, and says so on stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
ZTICK=${ZTICK:-target/release/ztick}
[ -x "$ZTICK" ] || { echo "otlp-cost: build first: cargo build --release --features otlp" >&2; exit 1; }
work=$(mktemp -d)
sink_pid=""
cleanup() {
    [ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# The sink: HTTP/1.1 with keep-alive on an ephemeral loopback port; counts the bytes it got.
python3 - "$work" <<'PY' &
import http.server, os, sys
work = sys.argv[1]
class Sink(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        n = int(self.headers.get("content-length", 0))
        self.rfile.read(n)
        with open(os.path.join(work, "bytes"), "a") as f:
            f.write(f"{n}\n")
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
with open(os.path.join(work, "port.tmp"), "w") as f:
    f.write(str(server.server_address[1]))
os.rename(os.path.join(work, "port.tmp"), os.path.join(work, "port"))
server.serve_forever()
PY
sink_pid=$!
for _ in $(seq 100); do
    [ -f "$work/port" ] && break
    sleep 0.05
done
[ -f "$work/port" ] || { echo "otlp-cost: the sink did not start" >&2; exit 1; }
url="http://127.0.0.1:$(cat "$work/port")"

QUIET_WAIT=${QUIET_WAIT:-300}
busy_pct() { # CPU busy % of the whole machine over 0.5 s
    local a b
    a=$(awk '/^cpu /{print $2+$3+$4+$6+$7+$8, $5}' /proc/stat)
    sleep 0.5
    b=$(awk '/^cpu /{print $2+$3+$4+$6+$7+$8, $5}' /proc/stat)
    printf '%s %s\n' "$a" "$b" | awk '{ d = ($3 - $1) + ($4 - $2); print (d > 0 ? int(100 * ($3 - $1) / d) : 0) }'
}
quiet() {
    [ "$QUIET_WAIT" -gt 0 ] 2>/dev/null || return 0
    local waited=0
    while ps -eo comm= | grep -qE '^(rustc|cargo|cc1|cc1plus|ld|ld\.lld|clippy-driver|rustdoc|ztick|zlat|zthr|zmqrs-fanout)' \
        || [ "$(busy_pct)" -gt 15 ]; do
        [ "$waited" = 0 ] && echo "otlp-cost: waiting for the machine to be idle" >&2
        sleep 2
        waited=$((waited + 3))
        [ "$waited" -lt "$QUIET_WAIT" ] || { echo "otlp-cost: still busy after ${QUIET_WAIT}s; running anyway" >&2; break; }
    done
}

echo "otlp-cost: $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $("$ZTICK" info 2>/dev/null | head -1)" >&2

# field FILE OBJECT KEY: a number of the first JSON object named OBJECT in FILE.
field() { grep -o "\"$2\":{[^}]*}" "$1" | head -1 | grep -o "\"$3\":[0-9.]*" | cut -d: -f2; }
us() { awk -v ns="$1" 'BEGIN { printf "%.0f", ns / 1000 }'; }

printf '| round | verb | export | p50 µs | p99 µs | p99.9 µs | user s | sys s | voluntary cs | involuntary cs | bytes exported |\n'
printf '|---|---|---|---|---|---|---|---|---|---|---|\n'
for r in $(seq "$rounds"); do
    for verb in fanout lat; do
        case $verb in
        fanout) base=(fanout --json) object=merged ;;
        lat) base=(lat --transport tcp --count 50000 --json) object=latency_ns ;;
        esac
        for mode in off on; do
            : >"$work/bytes"
            args=("${base[@]}")
            [ "$mode" = on ] && args+=("--otlp=$url")
            quiet
            /usr/bin/time -f '%U %S %w %c' -o "$work/time" "$ZTICK" "${args[@]}" >"$work/out.json"
            read -r user sys vcs ics <"$work/time"
            bytes=$(awk '{ s += $1 } END { print s + 0 }' "$work/bytes")
            printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$r" "$verb" "$mode" \
                "$(us "$(field "$work/out.json" "$object" p50)")" "$(us "$(field "$work/out.json" "$object" p99)")" \
                "$(us "$(field "$work/out.json" "$object" p99_9)")" "$user" "$sys" "$vcs" "$ics" "$bytes"
        done
    done
done
