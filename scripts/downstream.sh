#!/usr/bin/env bash
# A crate outside this repository that depends on ztick by path, as a user's crate would:
#
#   scripts/downstream.sh            # build and run it (CI runs this)
#   scripts/downstream.sh --patched  # the same crate with ztick's [patch.crates-io] line
#
# What it shows:
# - ztick builds as a dependency (`default-features = false`: the library alone);
# - which libzmq such a crate gets. Cargo applies `[patch]` only in the workspace it is
#   written in, so without the line the crate gets crates.io's zmq-sys 0.12: libzmq 4.3.4,
#   static, without CURVE. With the line (--patched) it gets ztick's vendor/zmq-sys:
#   libzmq 4.3.5 with CURVE, as ztick's own build;
# - in the build without CURVE, that asking for CURVE is a clear error from the key
#   generator, a CURVE socket and a CURVE fan-out publisher (and, through the `ztick`
#   binary a dependent builds, `cargo build -p ztick --bin ztick`, from `ztick keygen`
#   and a CURVE verb);
# - that vendor/zmq-sys/src is crates.io's zmq-sys 0.12.0 source, byte for byte.
#
# Installs nothing. cargo fetches the crates from crates.io (zmq-sys 0.12.0, zeromq-src
# 0.2); the crate lives in a temporary directory, its build in target/downstream.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

patched=0
case "${1:-}" in
    --patched) patched=1 ;;
    "") ;;
    *) echo "usage: $0 [--patched]" >&2; exit 2 ;;
esac

crate=$(mktemp -d /tmp/ztick-downstream.XXXXXX)
trap 'rm -rf "$crate"' EXIT
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target/downstream}"

mkdir -p "$crate/src"
cat >"$crate/Cargo.toml" <<EOF
[package]
name = "ztick-downstream"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
ztick = { path = "$root", default-features = false }
EOF
if [ "$patched" = 1 ]; then
    printf '\n[patch.crates-io]\nzmq-sys = { path = "%s/vendor/zmq-sys" }\n' "$root" >>"$crate/Cargo.toml"
fi
# Start from ztick's lock so the crates are the versions ztick is tested with.
cp Cargo.lock "$crate/Cargo.lock"
cat >"$crate/src/main.rs" <<'EOF'
//! Prints what libzmq a crate that depends on ztick gets; where that libzmq has no CURVE,
//! checks that asking for it is a clear error.
use ztick::curve::{Curve, CurveKey, KeyPair};
use ztick::fanout::{PublisherConfig, TickPublisher};
use ztick::info::BuildInfo;
use ztick::patterns::Replier;
use ztick::{Endpoint, Engine, Error, SocketOptions};

fn main() {
    let info = BuildInfo::current();
    println!(
        "libzmq {} ({}), link mode {}, curve={}",
        info.libzmq_version, info.built_with, info.link_mode, info.curve
    );
    let expect_curve = std::env::args().any(|a| a == "--expect-curve");
    assert_eq!(info.curve, expect_curve, "CURVE in this build");
    if info.curve {
        let keys = KeyPair::generate().unwrap();
        println!("CURVE works: public key {}", keys.public);
        return;
    }
    // The refusals tests/curve.rs checked while the default build had no CURVE.
    let err = KeyPair::generate().unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
    assert!(err.to_string().contains("system libzmq"), "{err}");
    let engine = Engine::new().unwrap();
    let opts = SocketOptions::default().curve_server(CurveKey::from_bytes([7; 32]));
    let err =
        Replier::builder(Endpoint::tcp_loopback_any()).options(opts).spawn(&engine, |b| vec![b[0].to_vec()]);
    let err = err.unwrap_err();
    assert!(err.to_string().contains("CURVE") && err.to_string().contains("system libzmq"), "{err}");
    let bind = Endpoint::tcp_loopback_any;
    let mut pcfg = PublisherConfig { hwm_msgs: Some(1 << 20), ..PublisherConfig::default() };
    pcfg.curve = Some(Curve::Server { secret: CurveKey::from_bytes([7; 32]) });
    let err = TickPublisher::start(&engine, bind(), Some(bind()), pcfg).unwrap_err();
    assert!(err.to_string().contains("CURVE"), "{err}");
    println!("no CURVE: refused clearly ({err})");
}
EOF

echo "== a crate depending on ztick by path$([ "$patched" = 1 ] && echo ", with ztick's [patch.crates-io] line")"
expect=()
[ "$patched" = 1 ] && expect=(--expect-curve)
cargo run --quiet --manifest-path "$crate/Cargo.toml" -- "${expect[@]}"

if [ "$patched" = 0 ]; then
    echo "== vendor/zmq-sys/src is crates.io's zmq-sys 0.12.0"
    upstream=$(cargo metadata --quiet --format-version 1 --manifest-path "$crate/Cargo.toml" |
        tr ',' '\n' | sed -n 's|.*"manifest_path":"\(.*/zmq-sys-0\.12\.0\)/Cargo.toml"|\1|p' | head -n 1)
    if [ -z "$upstream" ] || ! diff -r "$upstream/src" vendor/zmq-sys/src; then
        echo "vendor/zmq-sys/src differs from crates.io's zmq-sys 0.12.0 (${upstream:-not found})" >&2
        exit 1
    fi
    echo "identical ($upstream/src)"

    # The `ztick` binary as a dependent builds it (the checks tests/curve_cli.rs made
    # without CURVE): a second crate on ztick with its default features (`cli`). Cargo
    # still builds zmq-sys a second time for it (its dependencies' features differ).
    echo "== the ztick binary without CURVE: keygen and a CURVE verb refuse clearly"
    mkdir -p "$crate/cli/src"
    sed -e 's/^name = "ztick-downstream"/name = "ztick-downstream-cli"/' -e 's/, default-features = false//' \
        "$crate/Cargo.toml" >"$crate/cli/Cargo.toml"
    echo 'fn main() {}' >"$crate/cli/src/main.rs"
    cp Cargo.lock "$crate/cli/Cargo.lock"
    cargo build --quiet --manifest-path "$crate/cli/Cargo.toml" -p ztick --bin ztick
    ztick="$CARGO_TARGET_DIR/debug/ztick"
    "$ztick" info | grep -q 'curve=false'
    check_refusal() {
        local out
        if out=$("$@" 2>&1); then
            echo "expected a failure: $*" >&2
            exit 1
        fi
        for word in CURVE "system libzmq"; do
            grep -q "$word" <<<"$out" || { echo "'$word' missing from: $out" >&2; exit 1; }
        done
    }
    check_refusal "$ztick" keygen --secret-out "$crate/server"
    [ ! -e "$crate/server" ] || { echo "keygen wrote a key file without CURVE" >&2; exit 1; }
    echo 'JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6' >"$crate/server"
    check_refusal "$ztick" rep --bind "ipc://$crate/rep.sock" --count 1 --curve-server-secret "$crate/server"
    echo "refused clearly"
fi
