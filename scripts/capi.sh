#!/usr/bin/env bash
# ztick's C ABI: libraries, header, pkg-config file, the C examples, valgrind.
#
#   scripts/capi.sh build [--debug]   # libztick.so + libztick.a + pkgconfig/ztick.pc, system
#                                     # build (target/system/release, or debug)
#   scripts/capi.sh header            # regenerate include/ztick.h (commit it)
#   scripts/capi.sh check-header      # fail when include/ztick.h is not what src/ffi/ generates
#   scripts/capi.sh examples [--debug] # build and run the C examples (with a ztick subscriber)
#   scripts/capi.sh valgrind [--debug] # the C examples under valgrind: no leak, no bad access
#   scripts/capi.sh install PREFIX    # lib/, include/, lib/pkgconfig/ under PREFIX
#   scripts/capi.sh bench             # a call through the C ABI vs from Rust (BENCHMARKS.md)
#   scripts/capi.sh ci                # what CI runs: all of the above (debug) + the capi tests
#                                     # and clippy in both builds
#
# The libraries come from the system build (Debian's libzmq3-dev, as scripts/system-libzmq.sh):
# a C program that links libzmq itself must load one libzmq only, and only then can it hand
# its context to ztick. The documented cargo command underneath is
#   cargo rustc --release --lib --features capi --crate-type cdylib,staticlib \
#       --config 'target.x86_64-unknown-linux-gnu.zmq.rustc-link-lib=["zmq"]' \
#       --config 'target.x86_64-unknown-linux-gnu.sodium.rustc-link-lib=[]'
# (the second skips the libsodium build that only the vendored libzmq needs)
# with CARGO_TARGET_DIR=target/system (crate types given here, not in Cargo.toml, so ordinary
# builds do not pay for them).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

triple=$(rustc -vV | sed -n 's/^host: //p')
override="target.${triple}.zmq.rustc-link-lib=[\"zmq\"]"
no_sodium="target.${triple}.sodium.rustc-link-lib=[]"
system_dir="$root/target/system"

# Temporary directories, removed on exit.
tmp_dirs=()
trap 'rm -rf "${tmp_dirs[@]}"' EXIT

profile=release
profile_flag=(--release)
parse_profile() {
    if [ "${1:-}" = "--debug" ]; then
        profile=debug
        profile_flag=()
    fi
}
libdir() { echo "$system_dir/$profile"; }

system_cargo() {
    CARGO_TARGET_DIR="$system_dir" cargo "$1" --config "$override" --config "$no_sodium" "${@:2}"
}

# The libraries, and a pkg-config file pointing at them and at include/.
build() {
    scripts/system-libzmq.sh install
    echo "== libztick.so and libztick.a ($profile, system libzmq)"
    local out native
    if ! out=$(system_cargo rustc "${profile_flag[@]}" --lib --features capi --crate-type cdylib,staticlib \
        -- --print native-static-libs 2>&1); then
        echo "$out" >&2
        exit 1
    fi
    native=$(echo "$out" | sed -n 's/.*native-static-libs: //p' | tail -1)
    ls -l "$(libdir)/libztick.so" "$(libdir)/libztick.a"
    write_pc "$(libdir)" "$root/include" "$(libdir)/pkgconfig" "${native:--lzmq -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc}"
}

# write_pc LIBDIR INCLUDEDIR OUTDIR NATIVE_LIBS
write_pc() {
    local version
    version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
    # libzmq comes through Requires.private; the rest is the Rust runtime's.
    local native=${4//-lzmq/}
    mkdir -p "$3"
    sed -e "s|@PREFIX@|$(dirname "$1")|" -e "s|@LIBDIR@|$1|" -e "s|@INCLUDEDIR@|$2|" \
        -e "s|@VERSION@|$version|" -e "s|@NATIVE_LIBS@|$(echo $native)|" ztick.pc.in >"$3/ztick.pc"
    echo "wrote $3/ztick.pc"
}

header() {
    echo "== include/ztick.h from src/ffi/ (cbindgen)"
    ZTICK_WRITE_HEADER=1 system_cargo check --lib --features capi --quiet
    echo "wrote include/ztick.h"
}

check_header() {
    echo "== include/ztick.h is the generated header"
    system_cargo test --features capi --quiet --test capi the_committed_header_is_the_generated_one
}

# Runs the C examples; with `valgrind` first, each under valgrind.
run_examples() {
    local wrap=()
    if [ "${1:-}" = valgrind ]; then
        command -v valgrind >/dev/null || {
            echo "capi.sh: valgrind is missing (apt-get install valgrind)" >&2
            exit 1
        }
        # No leak, no invalid access; the one suppression is justified in the file.
        wrap=(valgrind --quiet --leak-check=full --show-leak-kinds=definite,possible
            --errors-for-leak-kinds=definite,possible --error-exitcode=1
            --suppressions="$root/examples/c/valgrind.supp")
    fi
    local dir ztick
    dir=$(mktemp -d)
    tmp_dirs+=("$dir")
    ztick="$system_dir/$profile/ztick"
    [ -x "$ztick" ] || system_cargo build "${profile_flag[@]}" --quiet --bin ztick

    echo "-- shared_context: the program's own libzmq context, shared with ztick over inproc"
    timeout 120 "${wrap[@]}" examples/c/build/shared_context 1000 "$dir/orders.hgrm"
    grep -q 'Percentile' "$dir/orders.hgrm"

    for exe in publisher publisher-static; do
        [ -n "${wrap[*]}" ] && [ "$exe" = publisher-static ] && continue
        echo "-- $exe: a C publisher feeding \`ztick fanout --role sub\`"
        local ep="ipc://$dir/px-$exe.ipc" snap="ipc://$dir/px-$exe-snap.ipc" n=20000
        "$ztick" fanout --role sub --connect "$ep" --snapshot "$snap" --hwm 100000 --timeout-ms 60000 --json \
            >"$dir/sub.json" 2>"$dir/sub.err" &
        local sub=$!
        if ! timeout 120 "${wrap[@]}" "examples/c/build/$exe" "$ep" "$snap" "$n" "$dir/calls.hgrm"; then
            kill "$sub" 2>/dev/null || true
            cat "$dir/sub.err" >&2
            exit 1
        fi
        if ! wait "$sub"; then
            echo "capi.sh: ztick fanout --role sub failed:" >&2
            cat "$dir/sub.err" "$dir/sub.json" >&2
            exit 1
        fi
        if ! grep -q "\"received\":$n,\"missing\":0," "$dir/sub.json" \
            || ! grep -q '"outcome":"complete"' "$dir/sub.json"; then
            echo "capi.sh: the subscriber did not receive all $n ticks without gaps:" >&2
            cat "$dir/sub.json" >&2
            exit 1
        fi
        echo "ztick fanout --role sub: received $n of $n, missing 0"
    done
}

examples() {
    build # a no-op when the libraries are up to date
    echo "== the C examples ($profile libraries, compiled with pkg-config)"
    local pc="$(libdir)/pkgconfig"
    make -s -C examples/c clean
    make -s -C examples/c ZTICK_LIB_DIR="$(libdir)" \
        CPPFLAGS="$(PKG_CONFIG_PATH=$pc pkg-config --cflags ztick)" \
        LDLIBS="$(PKG_CONFIG_PATH=$pc pkg-config --libs ztick libzmq) -Wl,-rpath,$(libdir)"
    run_examples
}

valgrind_examples() {
    echo "== the C examples under valgrind"
    [ -x examples/c/build/shared_context ] || examples
    run_examples valgrind
}

install_to() {
    local prefix=${1:?usage: capi.sh install PREFIX}
    build
    mkdir -p "$prefix/lib" "$prefix/include"
    cp "$(libdir)/libztick.so" "$(libdir)/libztick.a" "$prefix/lib/"
    cp include/ztick.h "$prefix/include/"
    local native
    native=$(sed -n 's/^Libs.private: //p' "$(libdir)/pkgconfig/ztick.pc")
    write_pc "$prefix/lib" "$prefix/include" "$prefix/lib/pkgconfig" "$native"
}

# Everything in the system build: with the `capi` feature, the vendored build would compile
# libzmq once more (cbindgen's build dependencies change those of zmq-sys's build script),
# which costs CI minutes and tests nothing new. Its refusal to share a context is covered
# by the default test suite (engine unit test) and by `cargo test --features capi`.
# The cost of a call through the C ABI vs the same call from Rust (BENCHMARKS.md): the
# release libraries, examples/c/abi_cost.c against libztick.so and libztick.a, and the
# Rust side (tests/capi.rs, abi_cost) in the same release build.
bench() {
    parse_profile
    build
    make -s -C examples/c ZTICK_LIB_DIR="$(libdir)" build/abi_cost build/abi_cost-static
    echo "== machine: $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), load $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "-- C, libztick.so"
    examples/c/build/abi_cost
    echo "-- C, libztick.a"
    examples/c/build/abi_cost-static
    echo "-- Rust (release)"
    system_cargo test --release --features capi --quiet --test capi -- --ignored --nocapture abi_cost
}

ci() {
    parse_profile --debug
    scripts/system-libzmq.sh install
    # A fresh machine may lack make or valgrind; install them when we can (as root).
    for tool in make valgrind; do
        if ! command -v "$tool" >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
            apt-get install -y -qq "$tool" >/dev/null
        fi
    done
    echo "== clippy with the capi feature"
    system_cargo clippy --all-targets --features capi --quiet -- -D warnings
    echo "== the C ABI tests: panic boundary, header freshness, handles, the shared context"
    system_cargo test --features capi --quiet --lib ffi
    system_cargo test --features capi --quiet --test capi
    examples
    valgrind_examples
}

cmd=${1:-ci}
shift || true
case "$cmd" in
    build) parse_profile "${1:-}"; build ;;
    header) header ;;
    check-header) check_header ;;
    examples) parse_profile "${1:-}"; examples ;;
    valgrind) parse_profile "${1:-}"; valgrind_examples ;;
    install) install_to "${1:-}" ;;
    bench) bench ;;
    ci) ci ;;
    *)
        sed -n '2,17p' "$0" >&2
        exit 2
        ;;
esac
