#!/usr/bin/env python3
"""Turn one `scripts/bench.sh` run into the Markdown of BENCHMARKS.md's generated section.

    python3 scripts/bench_tables.py --criterion target/criterion --hdr target/ztick-bench \
        --since EPOCH_SECONDS --meta target/ztick-bench/meta.json [--compare target/compare/table.md]

Inputs:
  - criterion's results: every target/criterion/**/new/benchmark.json (its "full_id") with
    the estimates.json beside it (mean point estimate and 95 % interval, ns per iteration;
    one iteration = one round trip, one message, or one record). Only results written
    since --since count: a case skipped or filtered out this run keeps its old files, and
    they must not pass for new figures.
  - the benches' HDR lines: target/ztick-bench/*.jsonl, one object per benchmark and
    quantity ({"id", "what", "p50", "p99", "p99_9", "max", ... in ns}) or per skipped case
    ({"id", "skipped": reason}).
  - compare-libzmq.sh's table (Markdown), included as it is.

Every figure printed comes from these files; nothing is typed in. Standard library only.
"""
import argparse
import json
import os
import sys

TRANSPORTS = ["inproc", "ipc", "tcp"]
SIZES = ["msg_1B", "msg_64B", "msg_1KiB", "msg_64KiB"]
ZC_SIZES = ["msg_64B", "msg_256B", "msg_1KiB", "msg_4KiB", "msg_16KiB", "msg_64KiB"]
IDLES = [("block", "Block"), ("backoff", "Backoff"), ("spin", "BusySpin")]
THROUGHPUT_GOAL = 3.0


def pretty_size(label):
    s = label[len("msg_"):]
    if s.endswith("KiB"):
        return s[:-3] + " KiB"
    return s[:-1] + " B"


def load_criterion(root, since):
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        if os.path.basename(dirpath) != "new" or "benchmark.json" not in files:
            continue
        est_path = os.path.join(dirpath, "estimates.json")
        if not os.path.exists(est_path) or os.path.getmtime(est_path) < since:
            continue
        try:
            with open(os.path.join(dirpath, "benchmark.json"), encoding="utf-8") as f:
                bench = json.load(f)
            with open(est_path, encoding="utf-8") as f:
                est = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            print(f"bench_tables: skipping {dirpath}: {e}", file=sys.stderr)
            continue
        mean = est.get("mean", {})
        ci = mean.get("confidence_interval", {})
        out[bench["full_id"]] = {
            "mean": mean.get("point_estimate"),
            "lo": ci.get("lower_bound"),
            "hi": ci.get("upper_bound"),
        }
    return out


def load_hdr(folder):
    hdr, skipped = {}, {}
    if not os.path.isdir(folder):
        return hdr, skipped
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".jsonl"):
            continue
        with open(os.path.join(folder, name), encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as e:
                    print(f"bench_tables: {name}:{n}: bad JSON ({e})", file=sys.stderr)
                    continue
                if "skipped" in rec:
                    skipped[rec["id"]] = rec["skipped"]
                else:
                    # A later line for the same case (a rerun) replaces an earlier one.
                    hdr[(rec["id"], rec.get("what", ""))] = rec
    return hdr, skipped


def us(ns):
    if ns is None:
        return "—"
    v = ns / 1000.0
    if v < 1:
        return f"{v:.3f}"
    if v < 10:
        return f"{v:.2f}"
    if v < 1000:
        return f"{v:.1f}"
    return f"{v:,.0f}"


def rate(per_msg_ns):
    if not per_msg_ns:
        return "—"
    r = 1e9 / per_msg_ns
    if r >= 1e6:
        return f"{r / 1e6:.2f} M"
    if r >= 1e3:
        return f"{r / 1e3:.0f} k"
    return f"{r:.0f}"


def ratio(a, b, digits=2):
    if a is None or b is None or b == 0:
        return "—"
    return f"{a / b:.{digits}f}x"


def ns_text(v):
    if v is None:
        return "—"
    if v < 1000:
        return f"{v:.1f} ns"
    return f"{v / 1000:.2f} µs"


class Data:
    def __init__(self, crit, hdr, skipped):
        self.crit, self.hdr, self.skipped = crit, hdr, skipped

    def mean(self, full_id):
        c = self.crit.get(full_id)
        return c["mean"] if c else None

    def pct(self, full_id, what, key):
        rec = self.hdr.get((full_id, what))
        return rec.get(key) if rec else None

    def triple(self, full_id, what="round_trip"):
        """p50 / p99 / p99.9 in µs, or why the case did not run."""
        if full_id in self.skipped:
            return None
        vals = [self.pct(full_id, what, k) for k in ("p50", "p99", "p99_9")]
        if all(v is None for v in vals):
            return "—"
        return " / ".join(us(v) for v in vals)


def short_reason(reason):
    if "core budget" in reason:
        return "skipped: core budget"
    return "skipped"


def latency_tables(d, out):
    out.append("### Round-trip latency: the engine against a bare socket on the same libzmq\n")
    out.append(
        "`benches/latency.rs`. REQ/REP round trip in µs, p50 / p99 / p99.9 of every round trip "
        "(HdrHistogram), and criterion's mean. *engine*: two pinned workers, the timing one "
        "sending each request from its handler; *bare*: `patterns::Socket`s on two pinned "
        "plain threads. The ratio is engine / bare: the engine's own cost (above 1 = slower).\n"
    )
    for idle, idle_name in IDLES:
        rows = []
        for t in TRANSPORTS:
            for s in SIZES:
                g = f"latency/{t}/{idle}/{s}"
                e_id, b_id = f"{g}/engine", f"{g}/bare"
                if e_id in d.skipped:
                    rows.append(f"| {t} | {pretty_size(s)} | {short_reason(d.skipped[e_id])} | | | | |")
                    continue
                e = d.triple(e_id)
                b = d.triple(b_id) if idle != "backoff" else "n/a"
                if e == "—" and b in ("—", "n/a"):
                    continue
                e50, b50 = d.pct(e_id, "round_trip", "p50"), d.pct(b_id, "round_trip", "p50")
                e99, b99 = d.pct(e_id, "round_trip", "p99"), d.pct(b_id, "round_trip", "p99")
                em, bm = d.mean(e_id), d.mean(b_id)
                rows.append(
                    f"| {t} | {pretty_size(s)} | {b or '—'} | {e} | {ns_text(bm) if bm else '—'} / {ns_text(em)} "
                    f"| {ratio(e50, b50)} | {ratio(e99, b99)} |"
                )
        if not rows:
            continue
        out.append(f"#### {idle_name}\n")
        out.append("| transport | size | bare p50 / p99 / p99.9 | engine p50 / p99 / p99.9 | mean bare / engine | engine / bare p50 | engine / bare p99 |")
        out.append("|---|---|---|---|---|---|---|")
        out.extend(rows)
        out.append("")
    # The bare ends are skipped for the engine's reason, quoted after a prefix.
    reasons = sorted({r.split(": ", 1)[1] if r.startswith("the engine's core budget") else r
                      for i, r in d.skipped.items() if i.startswith("latency/")})
    for r in reasons:
        out.append(f"Skipped (engine and bare alike): {r}\n")


def peers_tables(d, out):
    out.append("### ztick against zmq.rs\n")
    out.append(
        "`benches/peers.rs`, each cell's stacks measured one after the other in one group. "
        "Round trip in µs (p50 / p99 / p99.9): *ztick* two engine workers blocking when idle; "
        "*zmq.rs* both sockets on one tokio current-thread runtime (one thread, the seed's way); "
        "*zmq.rs 2rt* each socket on its own current-thread runtime and pinned thread, the same "
        "placement as ztick's workers. Throughput: PUSH to PULL at batch 256, the messages produced "
        "in the sending worker's handler (*worker*, copied or pooled sends) or handed over by the "
        "application thread (*hand-off*); the ratio takes ztick's best. zmq.rs sends and receives on one current-thread "
        f"runtime. Goals: throughput at least {THROUGHPUT_GOAL:g}x "
        "zmq.rs's, p99 at or below zmq.rs's (the one-thread variant).\n"
    )
    out.append("| transport | size | ztick | zmq.rs | zmq.rs 2rt | p99 ztick / zmq.rs | p99 ztick / zmq.rs 2rt |")
    out.append("|---|---|---|---|---|---|---|")
    lat_miss, lat_cells, lat_2rt_miss = [], 0, []
    for t in ["ipc", "tcp"]:
        for s in SIZES:
            g = f"peers/round_trip/{t}/{s}"
            z, r, r2 = f"{g}/ztick", f"{g}/zmqrs", f"{g}/zmqrs_2rt"
            if d.triple(z) == "—" and d.triple(r) == "—":
                continue
            z99, r99, r299 = (d.pct(i, "round_trip", "p99") for i in (z, r, r2))
            out.append(
                f"| {t} | {pretty_size(s)} | {d.triple(z)} | {d.triple(r)} | {d.triple(r2)} "
                f"| {ratio(z99, r99)} | {ratio(z99, r299)} |"
            )
            if z99 is not None and r99 is not None:
                lat_cells += 1
                if z99 > r99:
                    lat_miss.append(f"{t} {pretty_size(s)} ({ratio(z99, r99)})")
                if r299 is not None and z99 > r299:
                    lat_2rt_miss.append(f"{t} {pretty_size(s)}")
    out.append("")
    out.append("| transport | size | ztick worker, copy | ztick worker, pooled | ztick hand-off, copy | zmq.rs | best ztick / zmq.rs |")
    out.append("|---|---|---|---|---|---|---|")
    thr_miss, thr_cells = [], 0
    for t in ["ipc", "tcp"]:
        for s in SIZES:
            g = f"peers/push_pull/{t}/{s}"
            zs = [d.mean(f"{g}/{n}") for n in ("ztick", "ztick_pooled", "ztick_handoff")]
            rm = d.mean(f"{g}/zmqrs")
            if all(v is None for v in zs) and rm is None:
                continue
            best = min((v for v in zs if v), default=None)
            # Per-message times: the rate ratio is the inverse.
            r = (rm / best) if best and rm else None
            out.append(
                f"| {t} | {pretty_size(s)} | {' | '.join(rate(v) for v in zs)} | {rate(rm)} | {f'{r:.2f}x' if r else '—'} |"
            )
            if r is not None:
                thr_cells += 1
                if r < THROUGHPUT_GOAL:
                    thr_miss.append(f"{t} {pretty_size(s)} ({r:.2f}x)")
    out.append("")
    if thr_cells:
        if thr_miss:
            out.append(
                f"**Throughput goal ({THROUGHPUT_GOAL:g}x zmq.rs) not met in {len(thr_miss)} of {thr_cells} cells:** "
                + ", ".join(thr_miss) + ". "
                "What differs (structure, not a profile): zmq.rs's sender, receiver and I/O run as "
                "tasks on one thread; through libzmq a message goes from the sending thread to the "
                "I/O thread (tcp, ipc) to the receiving thread, three threads on two cores here. "
                "Whether the gap is libzmq's or the engine's shows in the C table at the end of this "
                "section (the engine against raw libzmq from C, same library).\n"
            )
        else:
            out.append(f"Throughput goal ({THROUGHPUT_GOAL:g}x zmq.rs) met in all {thr_cells} cells.\n")
    if lat_cells:
        if lat_miss:
            out.append(
                f"**p99 goal (at or below zmq.rs's) not met in {len(lat_miss)} of {lat_cells} cells:** "
                + ", ".join(lat_miss) + ". "
                + (
                    f"Against zmq.rs with each end on its own thread (2rt), ztick's p99 is higher in "
                    f"{len(lat_2rt_miss)} of {lat_cells} cells"
                    + (": " + ", ".join(lat_2rt_miss) if lat_2rt_miss else "")
                    + ". "
                )
                + "Why: zmq.rs on a current-thread runtime runs both ends and all their I/O on one "
                "thread, so a round trip crosses no thread and wakes nobody; a libzmq round trip "
                "crosses the application thread, libzmq's I/O thread (tcp, ipc) and the peer's "
                "thread in each direction, and every crossing is a wake-up on this VM. The 2rt "
                "column puts zmq.rs's ends on two threads like ztick's.\n"
            )
        else:
            out.append(f"p99 goal (at or below zmq.rs's) met in all {lat_cells} cells.\n")


SOURCES = [("worker", "worker"), ("handoff", "hand-off")]


def batching_tables(d, out):
    out.append("### Batching: messages per second by batch size\n")
    out.append(
        "`benches/throughput.rs`, copying sends, both workers blocking when idle. *worker*: the "
        "sending worker's handler sends *batch* messages per pass of its loop; *hand-off*: the "
        "application thread hands each message over (`Handle::send`) and the worker drains at "
        "most *batch* per pass. The receiver takes at most *batch* per pass. Gain = batch 256 / batch 1. "
        "PUB/SUB runs with `ZMQ_XPUB_NODROP` so every message is counted; libzmq 4.3.4 reports a PUB "
        "socket as always writable, so a worker waiting for room at the HWM cannot sleep until "
        "there is room: it retries every 200 µs, which these figures include.\n"
    )
    rows = []
    for p in ["push_pull", "pub_sub"]:
        for t in TRANSPORTS:
            for s in SIZES:
                for src, src_name in SOURCES:
                    g = f"throughput/{p}/{t}/{s}/{src}"
                    m = [d.mean(f"{g}/batch_{b}") for b in (1, 16, 256)]
                    if all(v is None for v in m):
                        continue
                    gain = ratio(m[0], m[2]) if m[0] and m[2] else "—"
                    rows.append(
                        f"| {p} | {t} | {pretty_size(s)} | {src_name} | {rate(m[0])} | {rate(m[1])} | {rate(m[2])} | {gain} |"
                    )
    if not rows:
        out.append("Not measured in this run.\n")
        return
    out.append("| pattern | transport | size | source | batch 1 | batch 16 | batch 256 | gain 256 / 1 |")
    out.append("|---|---|---|---|---|---|---|---|")
    out.extend(rows)
    out.append("")


def zero_copy_tables(d, out):
    out.append("### Zero-copy: pooled sends against copying sends\n")
    out.append(
        "`benches/throughput.rs`, PUSH/PULL at batch 256. *copy*: libzmq copies the message (from "
        "a `Vec<u8>` per hand-off, or from the handler's buffer on the worker); *pooled*: a "
        "`PooledBuf` is filled and lent to libzmq, which gives it back to the pool when done. "
        "Pooled / copy above 1 = zero-copy pays.\n"
    )
    rows = []
    crossover = {}
    for t in TRANSPORTS:
        for src, src_name in SOURCES:
            measured = []
            for s in ZC_SIZES:
                g = f"throughput/zero_copy/{t}/{s}/{src}"
                c, p = d.mean(f"{g}/copy"), d.mean(f"{g}/pooled")
                if c is None and p is None:
                    continue
                r = (c / p) if c and p else None
                if r is not None:
                    measured.append((s, r))
                rows.append(f"| {t} | {pretty_size(s)} | {src_name} | {rate(c)} | {rate(p)} | {f'{r:.2f}x' if r else '—'} |")
            if measured:
                # The smallest size from which pooled is faster at every larger size measured.
                first = None
                for i, (s, _r) in enumerate(measured):
                    if all(r > 1.0 for _s, r in measured[i:]):
                        first = s
                        break
                crossover[(t, src_name)] = (first, measured[0][0])
    if not rows:
        out.append("Not measured in this run.\n")
        return
    out.append("| transport | size | source | copy msgs/s | pooled msgs/s | pooled / copy |")
    out.append("|---|---|---|---|---|---|")
    out.extend(rows)
    out.append("")
    for (t, src_name), (s, smallest) in crossover.items():
        where = f"{t}, {src_name}"
        if s is None:
            out.append(f"- {where}: pooled sends are not faster at the largest size measured; no crossover in this run.")
        elif s == smallest:
            out.append(f"- {where}: pooled sends are faster at every size measured, from {pretty_size(s)} up.")
        else:
            out.append(f"- {where}: pooled sends are faster from {pretty_size(s)} up (the crossover in this run).")
    if crossover:
        out.append("")


def fanout_tables(d, out):
    out.append("### Fan-out latency\n")
    out.append(
        "`benches/fanout.rs`: one publisher, 1/2/4 subscribers, all engine workers blocking when "
        "idle; closed loop (the next 64 B message goes out when every subscriber has "
        "acknowledged). One-way latency in µs, p50 / p99 / p99.9 / max: *each delivery*, and *to the "
        "last* subscriber per message (criterion's mean is of the latter).\n"
    )
    out.append("| transport | subscribers | each delivery | to the last | mean to the last |")
    out.append("|---|---|---|---|---|")
    for t in TRANSPORTS:
        for n in (1, 2, 4):
            i = f"fanout/{t}/msg_64B/subs_{n}"
            each = [d.pct(i, "one_way", k) for k in ("p50", "p99", "p99_9", "max")]
            last = [d.pct(i, "to_last", k) for k in ("p50", "p99", "p99_9", "max")]
            if all(v is None for v in each):
                continue
            out.append(
                f"| {t} | {n} | {' / '.join(us(v) for v in each)} | {' / '.join(us(v) for v in last)} "
                f"| {ns_text(d.mean(i))} |"
            )
    out.append("")


def cost_tables(d, out):
    rows = [
        ("metrics/record", "`LatencyRecorder::record` (one histogram record)"),
        ("metrics/record_corrected_10us", "`record_corrected`, 10 µs interval"),
        ("metrics/merge", "new recorder + `merge` of 4,096 values"),
        ("codec/tick_64B/wire/encode", "64 B tick, `fanout::wire` encode"),
        ("codec/tick_64B/wire/decode", "64 B tick, `fanout::wire` decode"),
        ("codec/tick_64B/bincode/encode", "64 B tick, serde + bincode 2 encode"),
        ("codec/tick_64B/bincode/decode", "64 B tick, serde + bincode 2 decode"),
    ]
    body = []
    for i, what in rows:
        c = d.crit.get(i)
        if not c or c["mean"] is None:
            continue
        body.append(f"| {what} | {ns_text(c['mean'])} ({ns_text(c['lo'])} - {ns_text(c['hi'])}) |")
    if not body:
        return
    out.append("### Recording and encoding costs\n")
    out.append("`benches/metrics.rs`, `benches/codec.rs`: criterion's mean and its 95 % interval.\n")
    out.append("| what | time |")
    out.append("|---|---|")
    out.extend(body)
    w, b = d.mean("codec/tick_64B/wire/encode"), d.mean("codec/tick_64B/bincode/encode")
    wd, bd = d.mean("codec/tick_64B/wire/decode"), d.mean("codec/tick_64B/bincode/decode")
    rec = d.mean("metrics/record")
    out.append("")
    if rec:
        out.append(f"One histogram record costs {ns_text(rec)} per message.")
    if w and b and wd and bd:
        out.append(f"The fixed tick header is {b / w:.1f}x cheaper to encode and {bd / wd:.1f}x cheaper to decode than bincode.")
    out.append("")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--criterion", default="target/criterion")
    ap.add_argument("--hdr", default="target/ztick-bench")
    ap.add_argument("--since", type=float, default=0.0)
    ap.add_argument("--meta")
    ap.add_argument("--compare")
    a = ap.parse_args()

    d = Data(load_criterion(a.criterion, a.since), *load_hdr(a.hdr))
    meta = {}
    if a.meta and os.path.exists(a.meta):
        with open(a.meta, encoding="utf-8") as f:
            meta = json.load(f)
    out = []
    out.append("## 9. The `cargo bench` suites (generated by `scripts/bench.sh`)\n")
    if meta.get("quick"):
        out.append(
            "> **Quick mode** (`scripts/bench.sh --quick`): very short criterion runs and one "
            "round of the C comparison, to check the pipeline. These figures are noisy; do not "
            "cite them. Run `scripts/bench.sh` on a quiet machine for the real tables.\n"
        )
    out.append(
        f"Measured {meta.get('date', '?')} on {meta.get('cpu', '?')}, {meta.get('cores', '?')} cores, "
        f"Linux {meta.get('kernel', '?')}; {meta.get('rustc', '?')}; ztick git {meta.get('git', '?')}. "
        "Everything below comes from one run of:\n"
    )
    out.append("```sh")
    for cmd in meta.get("commands", []):
        out.append(cmd)
    out.append("```\n")
    notes = []
    if meta.get("load"):
        notes.append(f"load average when the run started: {meta['load']} (1 and 5 min)")
    if meta.get("pinning") == "on":
        notes.append("bench threads pinned (the two ends of a pair on the first and last core)")
    elif meta.get("pinning"):
        notes.append(f"bench threads not pinned ({meta['pinning']})")
    if notes:
        out.append("Conditions: " + "; ".join(notes) + ".\n")
    latency_tables(d, out)
    peers_tables(d, out)
    batching_tables(d, out)
    zero_copy_tables(d, out)
    fanout_tables(d, out)
    cost_tables(d, out)
    if a.compare and os.path.exists(a.compare):
        out.append("### Raw libzmq from C, same run (`scripts/compare-libzmq.sh`)\n")
        with open(a.compare, encoding="utf-8") as f:
            # Its title is replaced by the heading above; its headings sit below this section's.
            lines = [ln for ln in f.read().strip().splitlines() if not ln.startswith("# ")]
        for line in "\n".join(lines).strip().splitlines():
            out.append("#### " + line.lstrip("#").strip() if line.startswith("#") else line)
        out.append("")
    elif a.compare:
        out.append("### Raw libzmq from C\n\nNot run in this pass (`--no-compare`, or it failed: see its log).\n")
    print("\n".join(out).rstrip() + "\n")


if __name__ == "__main__":
    main()
