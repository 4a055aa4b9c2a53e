#!/usr/bin/env bash
# The interval logs `--hlog` writes, read by HdrHistogram's own log analyser: the Java
# library's HistogramLogProcessor (Debian's libhdrhistogram-java). For `ztick lat` and for
# each subscriber of `ztick fanout`, the total count and the maximum it reads from the log,
# tag by tag, must equal the run's own --json report.
#
#   scripts/hlog-interop.sh            # CI runs it (.ci/run); installs the jar as root
#   ZTICK=target/release/ztick scripts/hlog-interop.sh
#
# Without java, or without the jar and no way to install it, it prints a SKIPPED line and
# exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."

skip() {
    echo "hlog-interop: SKIPPED: $*"
    exit 0
}
fail() {
    echo "hlog-interop: FAILED: $*" >&2
    exit 1
}

command -v java >/dev/null 2>&1 || skip "no java (Debian: default-jre-headless)"
jar=/usr/share/java/hdrhistogram.jar
if [ ! -f "$jar" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "hlog-interop: installing Debian's libhdrhistogram-java (HdrHistogram's Java library)"
    apt-get install -y -qq libhdrhistogram-java >/dev/null 2>&1 ||
        { apt-get update -qq && apt-get install -y -qq libhdrhistogram-java >/dev/null; }
fi
[ -f "$jar" ] || skip "no $jar (apt-get install libhdrhistogram-java)"

ZTICK=${ZTICK:-target/debug/ztick}
if [ ! -x "$ZTICK" ]; then
    cargo build --quiet --bin ztick
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# processor LOG TAG: "COUNT MAX_NS" as HistogramLogProcessor reads the tag's intervals.
processor() {
    java -cp "$jar" org.HdrHistogram.HistogramLogProcessor -i "$1" -tag "$2" -outputValueUnitRatio 1 |
        sed -n 's/^#\[Max *= *\([0-9.]*\), Total count *= *\([0-9]*\)\]$/\2 \1/p' |
        awk '{ printf "%d %d\n", $1, $2 }'
}
# report JSON PATH: "COUNT MAX_NS" of the latency object at PATH (lat: "", fanout: a name).
report() {
    python3 - "$1" "$2" <<'PY'
import json, sys
run = json.load(open(sys.argv[1]))
if sys.argv[2]:
    run = next(s for s in run["subscribers"] if s["name"] == sys.argv[2])
print(run["latency_ns"]["count"], run["latency_ns"]["max"])
PY
}
check() { # check WHAT LOG TAG JSON PATH
    local got want
    got=$(processor "$2" "$3")
    want=$(report "$4" "$5")
    # The log and the report come from the same histograms: equal, not merely close.
    [ -n "$got" ] && [ "$got" = "$want" ] || fail "$1: HistogramLogProcessor read \"$got\" (count max), the report says \"$want\""
    echo "hlog-interop: $1: HistogramLogProcessor reads count ${got% *}, max ${got#* } ns, as the report"
}

"$ZTICK" lat --count 20000 --json --hlog "$work/lat.hlog" >"$work/lat.json"
check "ztick lat (tag req)" "$work/lat.hlog" req "$work/lat.json" ""
"$ZTICK" fanout --duration 2 --rate 20000 --json --hlog "$work/fanout.hlog" >"$work/fanout.json"
for sub in sub0 sub1; do
    check "ztick fanout (tag $sub)" "$work/fanout.hlog" "$sub" "$work/fanout.json" "$sub"
done
echo "hlog-interop: OK"
