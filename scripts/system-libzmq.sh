#!/usr/bin/env bash
# Builds and tests ztick against the system's libzmq (Debian's libzmq3-dev) instead of the
# vendored copy: one shared libzmq.so for the whole process, with CURVE (libsodium).
#
#   scripts/system-libzmq.sh install     # apt-get install libzmq3-dev (as root), if missing
#   scripts/system-libzmq.sh test [ARGS] # cargo test in the system build (CI runs this)
#   scripts/system-libzmq.sh cargo CMD.. # any cargo command in the system build
#
# How: Cargo's build-script override for the `zmq` links key, given on the command line:
# zmq-sys's build script (which compiles libzmq 4.3.5, vendor/zmq-sys) does not run and
# the binary links -lzmq. A second override, for the `sodium` key, skips building the
# libsodium that only the vendored libzmq uses (Debian's libzmq brings its own). The same
# can live in .cargo/config.toml:
#   [target.x86_64-unknown-linux-gnu.zmq]
#   rustc-link-lib = ["zmq"]
#   [target.x86_64-unknown-linux-gnu.sodium]
#   rustc-link-lib = []
# The system build keeps its own target directory (target/system), so switching between
# the two builds never rebuilds the other.
set -euo pipefail
cd "$(dirname "$0")/.."

triple=$(rustc -vV | sed -n 's/^host: //p')
override="target.${triple}.zmq.rustc-link-lib=[\"zmq\"]"
no_sodium="target.${triple}.sodium.rustc-link-lib=[]"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target/system}"

install() {
    if pkg-config --exists libzmq 2>/dev/null && [ -e /usr/include/zmq.h ]; then
        return
    fi
    if [ "$(id -u)" != 0 ]; then
        echo "system-libzmq: libzmq3-dev is missing; run as root or: sudo apt-get install libzmq3-dev pkg-config" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libzmq3-dev pkg-config >/dev/null
}

case "${1:-test}" in
    install) install ;;
    test)
        shift || true
        install
        cargo test --config "$override" --config "$no_sodium" "$@"
        ;;
    cargo)
        shift
        install
        sub=$1
        shift
        cargo "$sub" --config "$override" --config "$no_sodium" "$@"
        ;;
    *)
        echo "usage: $0 install | test [cargo test args] | cargo CMD [args]" >&2
        exit 2
        ;;
esac
