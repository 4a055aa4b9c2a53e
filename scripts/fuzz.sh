#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ (or those named) from its committed corpus, bounded.
#
#   scripts/fuzz.sh                       # each target, FUZZ_RUNS executions (default 20000)
#   FUZZ_RUNS=2000 scripts/fuzz.sh        # what CI runs (.ci/run)
#   FUZZ_TIME=600 scripts/fuzz.sh fanout_wire   # a long run: 10 minutes, no run bound
#
# Needs the nightly toolchain (cargo-fuzz builds with sanitizer flags only nightly takes);
# without it this says so and exits 0. Installs cargo-fuzz from crates.io when nightly is
# there and cargo-fuzz is not (and skips, saying why, if that fails). Builds with debug
# assertions and overflow checks on (-a), so arithmetic on peer input that could wrap fails.
# New inputs go to a temporary directory, never into fuzz/corpus (which
# `cargo +nightly fuzz cmin` keeps minimal); a crash exits non-zero and prints the input's
# path and the command that reproduces it. On a shared machine, run it as the rules say:
#   flock /work/coord/measure.lock nice -n 19 scripts/fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${FUZZ_RUNS:-20000}
time_s=${FUZZ_TIME:-}

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz: skipped: no nightly toolchain (cargo +nightly); install it with rustup toolchain install nightly"
    exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz: cargo-fuzz missing; installing it (cargo +nightly install cargo-fuzz --locked)"
    if ! cargo +nightly install cargo-fuzz --locked; then
        echo "fuzz: skipped: cargo-fuzz could not be installed (no network to crates.io?)"
        exit 0
    fi
fi

if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

echo "== cargo +nightly fuzz build -O -a (${#targets[@]} targets)"
cargo +nightly fuzz build -O -a

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
bound=(-runs="$runs")
if [ -n "$time_s" ]; then
    bound=(-max_total_time="$time_s")
fi
for t in "${targets[@]}"; do
    mkdir -p "$scratch/$t" "fuzz/corpus/$t"
    echo "== fuzz $t (${bound[*]})"
    start=$(date +%s)
    # The first corpus directory is written to; the committed one is only read.
    if ! cargo +nightly fuzz run -O -a "$t" "$scratch/$t" "fuzz/corpus/$t" -- \
        "${bound[@]}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$scratch/$t.log" 2>&1; then
        tail -n 60 "$scratch/$t.log"
        echo "fuzz: $t FAILED; the input is under fuzz/artifacts/$t/ (see above)." >&2
        echo "      reproduce: cargo +nightly fuzz run -O -a $t fuzz/artifacts/$t/<crash-file>" >&2
        echo "      show it:   cargo +nightly fuzz fmt $t fuzz/artifacts/$t/<crash-file>" >&2
        exit 1
    fi
    # libFuzzer's last status line (cov, ft, corpus, exec/s) and its final stats.
    grep -E '^#[0-9]+.*(DONE|pulse|NEW|REDUCE)' "$scratch/$t.log" | tail -n 1 || true
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$scratch/$t.log" || true
    echo "-- $t: ok in $(($(date +%s) - start)) s"
done
