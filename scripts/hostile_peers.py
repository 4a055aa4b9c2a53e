#!/usr/bin/env python3
"""Hostile peers against a `ztick` binary: each case starts ztick, attacks it with pyzmq or
raw TCP on loopback, and prints one line of figures (resident memory before and after the
attack from /proc/PID/status, the peak, the exit code, the time), so that two binaries
(before and after a change) can be compared side by side.

    target/pyzmq-venv/bin/python scripts/hostile_peers.py ZTICK [CASE...]

Cases: pull-bigmsg, localthr-bigmsg, pull-frames, rep-churn, locallat-stranger,
localthr-hangup, localthr-wrongsize (all by default), and the key-file cases, which need a
ztick with CURVE (the system libzmq build): key-mode-0644, key-other-owner (as root),
allow-dir-writable, allow-dir-symlink, zcert-mismatch. Needs pyzmq (scripts/pyzmq-interop.sh
installs it into target/pyzmq-venv). Every process is bounded: a case that would wait
forever is killed after its limit and reported as such.
"""

import socket
import subprocess
import tempfile
import sys
import time

import zmq

MB = 1 << 20


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def rss_kb(pid, field="VmRSS"):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except FileNotFoundError:
        return None
    return None


def wait_listening(port, limit=10.0):
    deadline = time.time() + limit
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.02)
    return False


class Ztick:
    def __init__(self, ztick, args):
        self.started = time.time()
        # Files, not pipes: a child that writes much can never block on a full pipe.
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([ztick] + args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self.err)

    def rss_mb(self):
        kb = rss_kb(self.proc.pid)
        return None if kb is None else kb / 1024

    def peak_mb(self):
        kb = rss_kb(self.proc.pid, "VmHWM")
        return None if kb is None else kb / 1024

    def wait(self, limit):
        """The exit code, or 'killed' after `limit` seconds; and the seconds it ran."""
        try:
            rc = self.proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = "killed"
        return rc, time.time() - self.started

    def stderr(self):
        self.err.seek(0)
        return self.err.read().decode(errors="replace").strip().splitlines()[-3:]


def settle(z, seconds=1.5):
    """Waits for the memory of `z` to stop moving (at most `seconds`)."""
    last, deadline = None, time.time() + seconds
    while time.time() < deadline:
        now = z.rss_mb()
        if now is not None and last is not None and abs(now - last) < 0.5:
            break
        last = now
        time.sleep(0.3)


def row(case, before, after, peak, rc, secs, note, z):
    fmt = lambda v: "-" if v is None else f"{v:.1f}"
    print(f"{case:20} rss_before_mb={fmt(before):>7} rss_after_mb={fmt(after):>7} "
          f"peak_mb={fmt(peak):>7} exit={rc} secs={secs:.1f} {note}")
    for line in z.stderr():
        print(f"{'':20}   stderr: {line}")
    sys.stdout.flush()


def attack_then_legit(ztick, case, args, port, hostile, legit_frames, limit=20):
    z = Ztick(ztick, args)
    wait_listening(port)
    time.sleep(0.3)
    before = z.rss_mb()
    ctx = zmq.Context()
    hostile(ctx, f"tcp://127.0.0.1:{port}")
    settle(z, 3.0)
    after, peak = z.rss_mb(), z.peak_mb()
    # A well-behaved peer next: the tool should still serve it and finish.
    good = ctx.socket(zmq.PUSH)
    good.setsockopt(zmq.LINGER, 2000)
    good.connect(f"tcp://127.0.0.1:{port}")
    for frames in legit_frames:
        good.send_multipart(frames)
    rc, secs = z.wait(limit)
    good.close()
    ctx.term()
    row(case, before, after, peak, rc, secs, "", z)


def push_one(frames):
    def hostile(ctx, ep):
        s = ctx.socket(zmq.PUSH)
        s.setsockopt(zmq.LINGER, 3000)
        s.setsockopt(zmq.SNDHWM, 0)
        s.connect(ep)
        s.send_multipart(frames, copy=False)
        time.sleep(1.0)
        s.close()
    return hostile


def pull_bigmsg(ztick):
    port = free_port()
    attack_then_legit(ztick, "pull-bigmsg",
                      ["pull", "--bind", f"tcp://127.0.0.1:{port}", "--count", "2", "--timeout-ms", "20000"],
                      port, push_one([bytes(256 * MB)]), [[b"ok"], [b"ok"]])


def localthr_bigmsg(ztick):
    port = free_port()
    attack_then_legit(ztick, "localthr-bigmsg",
                      ["local-thr", f"tcp://127.0.0.1:{port}", "64", "100", "--timeout-ms", "20000"],
                      port, push_one([bytes(256 * MB)]), [[bytes(64)]] * 100)


def pull_frames(ztick):
    port = free_port()
    attack_then_legit(ztick, "pull-frames",
                      ["pull", "--bind", f"tcp://127.0.0.1:{port}", "--count", "2", "--timeout-ms", "20000"],
                      port, push_one([b"x"] * 500_000), [[b"ok"], [b"ok"]])


def rep_churn(ztick, cycles_wanted=90_000, limit=30.0):
    port = free_port()
    z = Ztick(ztick, ["rep", "--bind", f"tcp://127.0.0.1:{port}", "--count", "1", "--timeout-ms", "60000"])
    wait_listening(port)
    time.sleep(0.3)
    before = z.rss_mb()
    cycles, started, deadline = 0, time.time(), time.time() + limit
    while cycles < cycles_wanted and time.time() < deadline:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=1)
            s.close()
            cycles += 1
        except OSError:
            time.sleep(0.001)
    churn_secs = time.time() - started
    settle(z, 3.0)
    after, peak = z.rss_mb(), z.peak_mb()
    ctx = zmq.Context()
    req = ctx.socket(zmq.REQ)
    req.setsockopt(zmq.RCVTIMEO, 5000)
    req.setsockopt(zmq.LINGER, 0)
    req.connect(f"tcp://127.0.0.1:{port}")
    req.send(b"still there?")
    try:
        answered = req.recv() == b"still there?"
    except zmq.Again:
        answered = False
    req.close()
    ctx.term()
    rc, secs = z.wait(10)
    row("rep-churn", before, after, peak, rc, secs, f"cycles={cycles} in {churn_secs:.1f}s answered={answered}", z)


def locallat_stranger(ztick):
    port = free_port()
    z = Ztick(ztick, ["local-lat", f"tcp://127.0.0.1:{port}", "64", "50", "--timeout-ms", "20000"])
    wait_listening(port)
    ctx = zmq.Context()
    s = ctx.socket(zmq.REQ)
    s.setsockopt(zmq.RCVTIMEO, 2000)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(f"tcp://127.0.0.1:{port}")
    echoed = 0
    for _ in range(50):
        s.send(bytes(64 * 1024))
        try:
            s.recv()
            echoed += 1
        except zmq.Again:
            break
    s.close()
    ctx.term()
    # The real remote-lat next: a local-lat the stranger satisfied has gone, so it hangs.
    real = subprocess.run([ztick, "remote-lat", f"tcp://127.0.0.1:{port}", "64", "50", "--timeout-ms", "5000"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rc, secs = z.wait(10)
    row("locallat-stranger", None, None, None, rc, secs,
        f"stranger_round_trips_echoed={echoed}/50 real_remote_lat_exit={real.returncode}", z)


def localthr_hangup(ztick):
    port = free_port()
    z = Ztick(ztick, ["local-thr", f"tcp://127.0.0.1:{port}", "64", "1000"])
    wait_listening(port)
    ctx = zmq.Context()
    s = ctx.socket(zmq.PUSH)
    s.setsockopt(zmq.LINGER, 2000)
    s.connect(f"tcp://127.0.0.1:{port}")
    for _ in range(500):
        s.send(bytes(64))
    s.close()
    ctx.term()
    rc, secs = z.wait(15)
    row("localthr-hangup", None, None, None, rc, secs, "sent 500 of 1000 then hung up", z)


def localthr_wrongsize(ztick):
    port = free_port()
    z = Ztick(ztick, ["local-thr", f"tcp://127.0.0.1:{port}", "64", "100", "--timeout-ms", "20000"])
    wait_listening(port)
    ctx = zmq.Context()
    s = ctx.socket(zmq.PUSH)
    s.setsockopt(zmq.LINGER, 2000)
    s.connect(f"tcp://127.0.0.1:{port}")
    for _ in range(100):
        s.send(bytes(65))
    for _ in range(100):
        s.send(bytes(64))
    rc, secs = z.wait(20)
    s.close()
    ctx.term()
    row("localthr-wrongsize", None, None, None, rc, secs, "100 of 65 B, then 100 of 64 B", z)


def curve_server(ztick, case, setup):
    """A CURVE `rep` server whose key files `setup(dir)` prepares (it returns the extra
    flags); reports whether it started listening with them, its exit and its error."""
    import os
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o700)

        def keygen(name, fmt="z85"):
            out = subprocess.run([ztick, "keygen", "--secret-out", os.path.join(d, name), "--format", fmt],
                                 capture_output=True, text=True, check=True)
            return out.stdout.strip()

        extra = setup(d, keygen)
        port = free_port()
        z = Ztick(ztick, ["rep", "--bind", f"tcp://127.0.0.1:{port}", "--count", "1", "--timeout-ms", "2000"]
                  + extra)
        listening, deadline = False, time.time() + 1.5
        while not listening and time.time() < deadline and z.proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                listening = True
            except OSError:
                time.sleep(0.02)
        rc, secs = z.wait(10)
        row(case, None, None, None, rc, secs, f"listening={listening}", z)


def key_mode_0644(ztick):
    import os

    def setup(d, keygen):
        keygen("server")
        os.chmod(os.path.join(d, "server"), 0o644)
        return ["--curve-server-secret", os.path.join(d, "server")]
    curve_server(ztick, "key-mode-0644", setup)


def key_other_owner(ztick):
    import os

    def setup(d, keygen):
        keygen("server")
        os.chown(os.path.join(d, "server"), 65534, 65534)
        return ["--curve-server-secret", os.path.join(d, "server")]
    curve_server(ztick, "key-other-owner", setup)


def allow_dir(ztick, case, symlink):
    import os

    def setup(d, keygen):
        keygen("server")
        certs = os.path.join(d, "certs")
        os.mkdir(certs)
        keygen("certs/alice", "zcert")
        os.remove(os.path.join(certs, "alice_secret"))
        if symlink:
            os.chmod(certs, 0o755)
            os.symlink(certs, os.path.join(d, "link"))
            certs = os.path.join(d, "link")
        else:
            os.chmod(certs, 0o777)
        return ["--curve-server-secret", os.path.join(d, "server"), "--zap-allow", certs]
    curve_server(ztick, case, setup)


def zcert_mismatch(ztick):
    import os

    def setup(d, keygen):
        a = keygen("a", "zcert")
        b = keygen("b", "zcert")
        path = os.path.join(d, "a_secret")
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(text.replace(a, b))
        return ["--curve-server-secret", path]
    curve_server(ztick, "zcert-mismatch", setup)


CASES = {
    "pull-bigmsg": pull_bigmsg,
    "localthr-bigmsg": localthr_bigmsg,
    "pull-frames": pull_frames,
    "rep-churn": rep_churn,
    "locallat-stranger": locallat_stranger,
    "localthr-hangup": localthr_hangup,
    "localthr-wrongsize": localthr_wrongsize,
}

CURVE_CASES = {
    "key-mode-0644": key_mode_0644,
    "key-other-owner": key_other_owner,
    "allow-dir-writable": lambda z: allow_dir(z, "allow-dir-writable", False),
    "allow-dir-symlink": lambda z: allow_dir(z, "allow-dir-symlink", True),
    "zcert-mismatch": zcert_mismatch,
}

if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for name in sys.argv[2:] or CASES:
        {**CASES, **CURVE_CASES}[name](sys.argv[1])
