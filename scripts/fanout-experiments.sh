#!/usr/bin/env bash
# What narrows ztick's fan-out latency on this machine: each variant at 100,000 ticks/s,
# 64 B, 8 topics, 2 subscribers over ipc unless it says otherwise, ROUNDS interleaved runs of
# DURATION s. Keeps one JSON line per run in OUT and prints, at the end, the medians per
# variant (merged corrected latency in us, missing ticks, mean batch), rendered by
# `ztick-tables experiments` (benches/tables/, built with ztick).
#   ROUNDS=3 DURATION=3 scripts/fanout-experiments.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-3}
ZTICK=${ZTICK:-target/release/ztick}
TABLES=${TABLES:-target/release/ztick-tables}
[ -x "$ZTICK" ] && [ -x "$TABLES" ] || cargo build --release
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
"$TABLES" experiments "$OUT"
