#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ (or those named) from its committed corpus, bounded.
#
#   scripts/fuzz.sh                       # each target, FUZZ_RUNS executions (default 20000)
#   FUZZ_RUNS=2000 scripts/fuzz.sh        # what CI runs (.ci/run)
#   FUZZ_TIME=600 scripts/fuzz.sh fanout_wire   # a long run: 10 minutes, no run bound
#
# Needs the nightly toolchain (cargo-fuzz builds with sanitizer flags only nightly takes)
# and the system's libzmq and libsodium (linked instead of compiled: fuzz/.cargo/config.toml);
# without them this says so and exits 0. Installs cargo-fuzz from crates.io when nightly is
# there and cargo-fuzz is not (and skips, saying why, if that fails). Builds with debug
# assertions and overflow checks on (-a), so arithmetic on peer input that could wrap fails.
# New inputs go to a temporary directory, never into fuzz/corpus (which
# `cargo +nightly fuzz cmin` keeps minimal); a crash exits non-zero and prints the input's
# path and the command that reproduces it. On a shared machine, run it as the rules say:
#   flock /work/coord/measure.lock nice -n 19 scripts/fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

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

# The targets link the system's libzmq and libsodium (fuzz/.cargo/config.toml, which
# cargo reads only when it runs in fuzz/): they test ztick's parsers, not libzmq, and
# compiling both from source with sanitizer flags took three of the build's four minutes.
if ! pkg-config --exists libzmq libsodium 2>/dev/null; then
    echo "fuzz: skipped: no system libzmq/libsodium to link (scripts/system-libzmq.sh install)"
    exit 0
fi
# cargo fuzz, run in fuzz/ so that its .cargo/config.toml applies.
fz() {
    local sub=$1
    shift
    (cd "$root/fuzz" && cargo +nightly fuzz "$sub" --fuzz-dir . "$@")
}

if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(fz list)
fi

echo "== cargo +nightly fuzz build -O -a (${#targets[@]} targets)"
fz build -O -a

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
    if ! fz run -O -a "$t" "$scratch/$t" "$root/fuzz/corpus/$t" -- \
        "${bound[@]}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$scratch/$t.log" 2>&1; then
        tail -n 60 "$scratch/$t.log"
        echo "fuzz: $t FAILED; the input is under fuzz/artifacts/$t/ (see above)." >&2
        echo "      reproduce: (cd fuzz && cargo +nightly fuzz run --fuzz-dir . -O -a $t artifacts/$t/<crash-file>)" >&2
        echo "      show it:   (cd fuzz && cargo +nightly fuzz fmt --fuzz-dir . $t artifacts/$t/<crash-file>)" >&2
        exit 1
    fi
    # libFuzzer's last status line (cov, ft, corpus, exec/s) and its final stats.
    grep -E '^#[0-9]+.*(DONE|pulse|NEW|REDUCE)' "$scratch/$t.log" | tail -n 1 || true
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$scratch/$t.log" || true
    echo "-- $t: ok in $(($(date +%s) - start)) s"
done
