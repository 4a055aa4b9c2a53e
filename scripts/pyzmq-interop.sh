#!/usr/bin/env bash
# Runs ztick's scripting verbs against pyzmq (another ZMTP implementation's bindings, its
# own libzmq build) on loopback: REQ/REP, PUB/SUB, PUSH/PULL and ROUTER/DEALER, with ztick
# on each side in turn, then CURVE both ways (and a wrong-key client, refused). Prints PASS
# or FAIL per case and exits non-zero if any failed.
#
#   scripts/pyzmq-interop.sh            # the default build (libzmq 4.3.5 with CURVE)
#   scripts/pyzmq-interop.sh --system   # the system-libzmq build (Debian's, with CURVE)
#
# Needs python3 with the venv module (Debian: apt-get install -y python3-venv); installs
# pyzmq from PyPI into target/pyzmq-venv the first time.
set -uo pipefail
cd "$(dirname "$0")/.."

TARGET=${CARGO_TARGET_DIR:-target}
VENV="$TARGET/pyzmq-venv"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV" || {
        echo "pyzmq-interop: python3 -m venv failed; install the venv module (apt-get install -y python3-venv)" >&2
        exit 2
    }
fi
if ! "$VENV/bin/python" -c 'import zmq' 2>/dev/null; then
    echo "pyzmq-interop: installing pyzmq from PyPI into $VENV"
    "$VENV/bin/python" -m pip install --quiet pyzmq || {
        echo "pyzmq-interop: pip install pyzmq failed (is PyPI reachable?)" >&2
        exit 2
    }
fi
if [ "${1:-}" = "--system" ]; then
    scripts/system-libzmq.sh cargo build --quiet --bin ztick || exit 2
    ZTICK="$TARGET/system/debug/ztick"
else
    cargo build --quiet --bin ztick || exit 2
    ZTICK="$TARGET/debug/ztick"
fi
PY=("$VENV/bin/python" scripts/pyzmq_peer.py)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ztick-pyzmq.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
# Every process is bounded twice: by its own --timeout-ms, and by `timeout` as a last resort.
LIMIT=(timeout 30)
T=20000

echo "pyzmq $("$VENV/bin/python" -c 'import zmq; print(zmq.pyzmq_version(), "on libzmq", zmq.zmq_version())') against ztick on libzmq $("$ZTICK" info | sed -n 's/^libzmq version: *//p')"

free_port() {
    "$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

failed=0
# check NAME EXPECTED FILE: the receiver's output FILE must be EXPECTED, line for line.
check() {
    local name=$1 expected=$2 file=$3
    if [ "$(cat "$file")" = "$expected" ] && [ "$4" = 0 ] && [ "$5" = 0 ]; then
        echo "PASS  $name"
    else
        echo "FAIL  $name (exit codes $4 and $5)"
        echo "      expected: $(printf '%s' "$expected" | tr '\n' '|')"
        echo "      got:      $(tr '\n' '|' <"$file")"
        sed 's/^/      stderr: /' "$WORK"/*.err 2>/dev/null
        failed=1
    fi
    rm -f "$WORK"/*
}

# pair SERVER... -- CLIENT...: runs SERVER in the background and CLIENT in the foreground;
# their stdout go to $WORK/server.out and $WORK/client.out; sets rc_s and rc_c.
pair() {
    local server=()
    while [ "$1" != "--" ]; do server+=("$1"); shift; done
    shift
    "${LIMIT[@]}" "${server[@]}" >"$WORK/server.out" 2>"$WORK/server.err" </dev/null &
    local pid=$!
    "${LIMIT[@]}" "$@" >"$WORK/client.out" 2>"$WORK/client.err"
    rc_c=$?
    wait "$pid"
    rc_s=$?
}

ep() { echo "tcp://127.0.0.1:$(free_port)"; }

# --- REQ/REP
E=$(ep)
pair "$ZTICK" rep --bind "$E" --count 1 --timeout-ms $T -- "${PY[@]}" req connect "$E" hello pyzmq </dev/null
check "ztick rep  <- pyzmq REQ" "hello pyzmq" "$WORK/client.out" $rc_s $rc_c

E=$(ep)
pair "${PY[@]}" rep bind "$E" --count 1 -- "$ZTICK" req --connect "$E" --timeout-ms $T hello ztick </dev/null
check "ztick req  -> pyzmq REP" "hello ztick" "$WORK/client.out" $rc_s $rc_c

# --- PUB/SUB (each publisher waits for its subscriber: no slow-joiner loss)
E=$(ep)
pair "${PY[@]}" sub connect "$E" --topic tick --count 3 -- \
    "$ZTICK" pub --bind "$E" --topic tick --wait-subscribers 1 --timeout-ms $T < <(printf 'a\nb\nc\n')
check "ztick pub  -> pyzmq SUB" $'tick a\ntick b\ntick c' "$WORK/server.out" $rc_s $rc_c

E=$(ep)
pair "$ZTICK" sub --connect "$E" --topic tick --count 3 --timeout-ms $T -- \
    "${PY[@]}" pub bind "$E" --topic tick --wait-subscribers 1 a b c </dev/null
check "ztick sub  <- pyzmq PUB" $'tick a\ntick b\ntick c' "$WORK/server.out" $rc_s $rc_c

# --- PUSH/PULL, each side binding in turn
E=$(ep)
pair "${PY[@]}" pull bind "$E" --count 3 -- "$ZTICK" push --connect "$E" --timeout-ms $T < <(printf '1\n2\n3\n')
check "ztick push -> pyzmq PULL" $'1\n2\n3' "$WORK/server.out" $rc_s $rc_c

E=$(ep)
pair "$ZTICK" pull --bind "$E" --count 3 --timeout-ms $T -- "${PY[@]}" push connect "$E" 1 2 3 </dev/null
check "ztick pull <- pyzmq PUSH" $'1\n2\n3' "$WORK/server.out" $rc_s $rc_c

E=$(ep)
pair "${PY[@]}" pull connect "$E" --count 2 -- "$ZTICK" push --bind "$E" --timeout-ms $T < <(printf 'x\ny\n')
check "ztick push (bind) -> pyzmq PULL (connect)" $'x\ny' "$WORK/server.out" $rc_s $rc_c

# --- ROUTER/DEALER
E=$(ep)
pair "$ZTICK" router --bind "$E" --echo --count 1 --timeout-ms $T -- "${PY[@]}" dealer connect "$E" hi router </dev/null
check "ztick router <- pyzmq DEALER" "hi router" "$WORK/client.out" $rc_s $rc_c

E=$(ep)
pair "${PY[@]}" router bind "$E" --count 1 -- "$ZTICK" dealer --connect "$E" --timeout-ms $T hi dealer </dev/null
check "ztick dealer -> pyzmq ROUTER" "hi dealer" "$WORK/client.out" $rc_s $rc_c

# --- CURVE, both ways (both builds have it; a build without it fails here)
if "$ZTICK" info | grep -q 'curve=true'; then
    KEYS="$TARGET/pyzmq-curve-keys"
    rm -rf "$KEYS" && mkdir -p "$KEYS"
    SERVER_PUB=$("$ZTICK" keygen --secret-out "$KEYS/server")
    CLIENT_PUB=$("$ZTICK" keygen --secret-out "$KEYS/client")

    E=$(ep)
    pair "$ZTICK" rep --bind "$E" --count 1 --timeout-ms $T --curve-server-secret "$KEYS/server" -- \
        "${PY[@]}" req connect "$E" --curve-server-public "$SERVER_PUB" hello curve </dev/null
    check "ztick rep (CURVE server) <- pyzmq REQ (CURVE client)" "hello curve" "$WORK/client.out" $rc_s $rc_c

    E=$(ep)
    pair "${PY[@]}" rep bind "$E" --count 1 --curve-server-secret "$(cat "$KEYS/server")" -- \
        "$ZTICK" req --connect "$E" --timeout-ms $T --curve-client-secret "$KEYS/client" \
        --curve-server-public "$SERVER_PUB" hello curve </dev/null
    check "ztick req (CURVE client) -> pyzmq REP (CURVE server)" "hello curve" "$WORK/client.out" $rc_s $rc_c

    # A pyzmq client without the right server key gets nothing from ztick's CURVE server.
    E=$(ep)
    pair "$ZTICK" rep --bind "$E" --count 1 --timeout-ms 2000 --curve-server-secret "$KEYS/server" -- \
        "${PY[@]}" req connect "$E" --timeout-ms 1000 --curve-server-public "$CLIENT_PUB" wrong key </dev/null
    if [ "$rc_c" != 0 ] && [ "$rc_s" != 0 ] && [ ! -s "$WORK/server.out" ]; then
        echo "PASS  pyzmq REQ with the wrong server key gets nothing from ztick's CURVE server"
    else
        echo "FAIL  a wrong-key client was answered (exit codes $rc_s and $rc_c)"
        failed=1
    fi
    rm -f "$WORK"/*
else
    echo "FAIL  CURVE cases: this ztick's libzmq has no CURVE ($("$ZTICK" info | sed -n 's/^built with: *//p'))"
    failed=1
fi

if [ "$failed" = 0 ]; then
    echo "pyzmq interop: all cases passed"
else
    echo "pyzmq interop: some cases FAILED"
fi
exit "$failed"
