#!/usr/bin/env bash
# What narrows ztick's fan-out latency on this machine: each variant at 100,000 ticks/s,
# 64 B, 8 topics, 2 subscribers over ipc unless it says otherwise, ROUNDS interleaved runs of
# DURATION s. Prints one line per run (variant, then the merged corrected latency summary in
# us and the missing count) and, at the end, the medians per variant.
#   ROUNDS=3 DURATION=3 scripts/fanout-experiments.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-3}
ZTICK=${ZTICK:-target/release/ztick}
[ -x "$ZTICK" ] || cargo build --release
OUT=${OUT:-target/fanout-experiments.jsonl}
mkdir -p "$(dirname "$OUT")"
: > "$OUT"
variants=(
  "default|"
  "window 0 us|--max-delay-us 0"
  "window 100 us|--max-delay-us 100"
  "group per topic|--groups 8"
  "all on core 0|--pin 0,0,0 --io-cores 0"
  "pub+io core 0, subs core 1|--pin 0,1,1 --io-cores 0"
  "subs backoff|--sub-idle backoff"
  "subs yield (forced)|--sub-idle yield --force"
  "pub yield (forced)|--pub-idle yield --force"
  "inproc|--transport inproc"
  "tcp|--transport tcp"
  "1 subscriber|--subscribers 1"
)
for round in $(seq "$ROUNDS"); do
  for v in "${variants[@]}"; do
    name=${v%%|*}; args=${v#*|}
    # shellcheck disable=SC2086
    if json=$(timeout 120 "$ZTICK" fanout --duration "$DURATION" --json $args 2>/dev/null); then
      printf '{"variant":"%s","round":%d,"report":%s}\n' "$name" "$round" "$json" >> "$OUT"
    else
      printf '{"variant":"%s","round":%d,"failed":true}\n' "$name" "$round" >> "$OUT"
    fi
  done
done
python3 - "$OUT" <<'PY'
import json, statistics, sys
from collections import defaultdict
runs = defaultdict(list)
order = []
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["variant"] not in order:
        order.append(r["variant"])
    runs[r["variant"]].append(r)
print("| variant | p50 | p90 | p99 | p99.9 | max | missing | mean batch | failed |")
print("|---|---|---|---|---|---|---|---|---|")
for v in order:
    ok = [r["report"] for r in runs[v] if "report" in r]
    failed = len(runs[v]) - len(ok)
    if not ok:
        print(f"| {v} | | | | | | | | {failed} |")
        continue
    med = lambda k: statistics.median(r["merged"]["latency_ns"][k] for r in ok) / 1000
    miss = sum(r["merged"]["missing"] for r in ok)
    batch = statistics.median(r["publisher"]["mean_batch"] for r in ok)
    print(f"| {v} | {med('p50'):.1f} | {med('p90'):.1f} | {med('p99'):.1f} | {med('p99_9'):.1f} | {med('max'):.1f} | {miss} | {batch:.1f} | {failed} |")
PY
