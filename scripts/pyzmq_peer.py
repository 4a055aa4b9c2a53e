#!/usr/bin/env python3
"""A pyzmq peer for scripts/pyzmq-interop.sh: one socket, the other end of a ztick verb.

    pyzmq_peer.py KIND bind|connect ENDPOINT [--count N] [--topic T] [--wait-subscribers N]
                  [--curve-server-secret Z85 | --curve-server-public Z85] [FRAME...]

Receivers print one line per message, frames as text joined by a space (as `ztick sub`
does for UTF-8 frames); senders send FRAME... as one message (req, dealer) or each FRAME
as one message (pub, push). Every wait is bounded by --timeout-ms; a timeout exits 1 with
one line on stderr.
"""

import argparse
import sys
import time

import zmq
from zmq.utils.monitor import recv_monitor_message

KINDS = {
    "req": zmq.REQ,
    "rep": zmq.REP,
    "pub": zmq.XPUB,  # an XPUB, so that it can wait for its subscribers
    "sub": zmq.SUB,
    "push": zmq.PUSH,
    "pull": zmq.PULL,
    "router": zmq.ROUTER,
    "dealer": zmq.DEALER,
}


def text(frames):
    return " ".join(f.decode("utf-8", "replace") for f in frames)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("kind", choices=sorted(KINDS))
    p.add_argument("side", choices=["bind", "connect"])
    p.add_argument("endpoint")
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--topic", default=None)
    p.add_argument("--wait-subscribers", type=int, default=0)
    p.add_argument("--timeout-ms", type=int, default=20000)
    p.add_argument("--curve-server-secret", default=None, help="be a CURVE server with this Z85 secret key")
    p.add_argument("--curve-server-public", default=None, help="be a CURVE client of this Z85 server key")
    p.add_argument("frames", nargs="*")
    a = p.parse_intermixed_args()

    ctx = zmq.Context()
    s = ctx.socket(KINDS[a.kind])
    s.linger = 1000
    s.rcvtimeo = a.timeout_ms
    s.sndtimeo = a.timeout_ms
    # Counts peers, so that a sender can stay open until they have hung up: libzmq can lose
    # a message sent right before close (libzmq issues #1264, #4660).
    mon = s.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED)
    if a.curve_server_secret:
        s.curve_secretkey = a.curve_server_secret.encode()
        s.curve_server = True
    if a.curve_server_public:
        public, secret = zmq.curve_keypair()
        s.curve_serverkey = a.curve_server_public.encode()
        s.curve_publickey = public
        s.curve_secretkey = secret
    if a.kind == "pub":
        s.setsockopt(zmq.XPUB_VERBOSE, 1)
    if a.kind == "sub":
        s.setsockopt(zmq.SUBSCRIBE, (a.topic or "").encode())
    if a.kind in ("req", "push", "dealer") and a.side == "connect":
        s.setsockopt(zmq.IMMEDIATE, 1)
    getattr(s, a.side)(a.endpoint)
    frames = [f.encode() for f in a.frames]

    try:
        if a.kind == "pub":
            seen = 0
            while seen < a.wait_subscribers:
                msg = s.recv()
                if msg[:1] == b"\x01":
                    seen += 1
            for f in frames:
                s.send_multipart([a.topic.encode(), f] if a.topic else [f])
        elif a.kind == "push":
            for f in frames:
                s.send(f)
        elif a.kind in ("req", "dealer"):
            s.send_multipart(frames)
            print(text(s.recv_multipart()), flush=True)
        elif a.kind == "rep":
            for _ in range(a.count):
                msg = s.recv_multipart()
                print(text(msg), flush=True)
                s.send_multipart(msg)
        elif a.kind == "router":
            for _ in range(a.count):
                msg = s.recv_multipart()
                print(text(msg[1:]), flush=True)
                s.send_multipart(msg)
        else:  # sub, pull
            for _ in range(a.count):
                print(text(s.recv_multipart()), flush=True)
    except zmq.Again:
        print(f"pyzmq_peer: {a.kind} timed out after {a.timeout_ms} ms on {a.endpoint}", file=sys.stderr)
        return 1

    if a.kind in ("pub", "push", "rep", "router"):
        # The last act was a send: stay until every peer has hung up, at most 5 s.
        peers, deadline = 0, time.monotonic() + 5
        while time.monotonic() < deadline:
            if mon.poll(50):
                ev = recv_monitor_message(mon)["event"]
                peers += 1 if ev == zmq.EVENT_HANDSHAKE_SUCCEEDED else -1
            elif peers <= 0:
                break
    s.disable_monitor()
    mon.close(0)
    s.close()
    ctx.term()
    return 0


if __name__ == "__main__":
    sys.exit(main())
