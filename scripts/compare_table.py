#!/usr/bin/env python3
"""Render scripts/compare-libzmq.sh results as Markdown tables.

    python3 scripts/compare_table.py target/compare/results.jsonl [--meta META.json]

Each input line is one run:
    {"stack": "c-vendored" | "c-debian" | "ztick" | "floor",
     "bench": "lat" | "thr", "transport": "inproc" | "ipc" | "tcp" | "inproc-busy",
     "size": N, "round": R, "result": {...the program's JSON line...}}
Lines with an "error" key instead of "result" are counted as failures.

Latency cells are the median over rounds of p50 (or p99) round trip / 2, in
microseconds; throughput cells the median of msgs_per_s. Ratios are
ztick / C-vendored: under 1 means ztick is faster for latency, over 1 means it
moves more messages per second. Standard library only.
"""
import argparse
import json
import statistics
import sys
from collections import defaultdict

STACKS = [
    ("floor", "floor (no libzmq)"),
    ("c-vendored", "C, vendored libzmq"),
    ("c-debian", "C, Debian libzmq"),
    ("ztick", "ztick"),
]
TRANSPORT_ORDER = {"inproc": 0, "inproc-busy": 1, "ipc": 2, "tcp": 3}


def fmt_us(v):
    if v is None:
        return "—"
    if v < 1:
        return f"{v:.3f}"
    if v < 10:
        return f"{v:.2f}"
    return f"{v:.1f}"


def fmt_rate(v):
    if v is None:
        return "—"
    if v >= 1e6:
        return f"{v / 1e6:.2f} M"
    if v >= 1e3:
        return f"{v / 1e3:.0f} k"
    return f"{v:.0f}"


def fmt_ratio(num, den):
    if num is None or den is None or den == 0:
        return "—"
    return f"{num / den:.2f}x"


def median(values):
    return statistics.median(values) if values else None


def load(path):
    runs, errors = [], []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                print(f"{path}:{n}: skipping bad JSON ({e})", file=sys.stderr)
                continue
            (errors if "error" in rec else runs).append(rec)
    return runs, errors


def lat_value(result, key):
    lat = result.get("latency_ns") or {}
    v = lat.get(key)
    return None if v is None else float(v) / 2.0 / 1000.0  # one-way, µs


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results")
    ap.add_argument("--meta", help="JSON object with the run's settings")
    args = ap.parse_args()

    runs, errors = load(args.results)
    meta = {}
    if args.meta:
        try:
            with open(args.meta, encoding="utf-8") as f:
                meta = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            print(f"cannot read meta {args.meta}: {e}", file=sys.stderr)

    # (bench, transport, size) -> stack -> list of results
    cells = defaultdict(lambda: defaultdict(list))
    for r in runs:
        cells[(r["bench"], r["transport"], int(r["size"]))][r["stack"]].append(r["result"])

    out = []
    out.append("# ztick against libzmq from C")
    out.append("")
    if meta:
        bits = [f"{k}: {v}" for k, v in meta.items()]
        out.append("; ".join(bits) + ".")
        out.append("")

    def keys_for(bench):
        return sorted(
            (k for k in cells if k[0] == bench),
            key=lambda k: (TRANSPORT_ORDER.get(k[1], 9), k[1], k[2]),
        )

    def present(bench):
        return [s for s in STACKS if any(s[0] in cells[k] for k in keys_for(bench))]

    for title, key in (("p50", "p50"), ("p99", "p99")):
        keys = keys_for("lat")
        if not keys:
            break
        stacks = present("lat")
        out.append(f"## Latency, one-way {title} (µs, round trip / 2; median over rounds)")
        out.append("")
        ratio = any(s == "ztick" for s, _ in stacks)
        head = ["transport", "size"] + [label for _, label in stacks]
        head += ["ztick / C vendored"] if ratio else []
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "---|" * len(head))
        for k in keys:
            vals = {}
            for s, _ in stacks:
                vs = [lat_value(res, key) for res in cells[k].get(s, [])]
                vals[s] = median([v for v in vs if v is not None])
            row = [k[1], f"{k[2]} B"] + [fmt_us(vals[s]) for s, _ in stacks]
            if ratio:
                row.append(fmt_ratio(vals.get("ztick"), vals.get("c-vendored")))
            out.append("| " + " | ".join(row) + " |")
        out.append("")

    keys = keys_for("thr")
    if keys:
        stacks = [s for s in present("thr")]
        out.append("## Throughput (msgs/s, PUSH to PULL in one process; median over rounds)")
        out.append("")
        ratio = any(s == "ztick" for s, _ in stacks)
        head = ["transport", "size"] + [label for _, label in stacks]
        head += ["ztick / C vendored"] if ratio else []
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "---|" * len(head))
        for k in keys:
            vals = {}
            for s, _ in stacks:
                vs = [res.get("msgs_per_s") for res in cells[k].get(s, [])]
                vals[s] = median([float(v) for v in vs if v is not None])
            row = [k[1], f"{k[2]} B"] + [fmt_rate(vals[s]) for s, _ in stacks]
            if ratio:
                row.append(fmt_ratio(vals.get("ztick"), vals.get("c-vendored")))
            out.append("| " + " | ".join(row) + " |")
        out.append("")

    if not runs:
        out.append("(no successful runs)")
        out.append("")
    if errors:
        out.append(f"Failed runs: {len(errors)}")
        out.append("")
        for e in errors[:20]:
            out.append(
                f"- {e.get('stack')} {e.get('bench')} {e.get('transport')} "
                f"{e.get('size')} B round {e.get('round')}: {e.get('error')}"
            )
        if len(errors) > 20:
            out.append(f"- … and {len(errors) - 20} more")
        out.append("")

    sys.stdout.write("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
