#!/usr/bin/env python3
"""Attributes every scheduling delay of a run's threads to its cause (issue 14, part 2).

Reads a kernel trace of sched_switch, sched_wakeup, hrtimer_start and hrtimer_expire_entry
on the CLOCK_MONOTONIC trace clock: tracefs's `trace` file (scripts/stall-trace.sh records
it) or `perf script --ns -F comm,tid,cpu,time,event,trace` output of a `perf record -a -k
CLOCK_MONOTONIC` (but perf 6.1 on this 6.18 kernel drops most switches out of the idle
task: 3,410 of 23,183 in one run, where tracefs had them all). For each thread whose name
matches --threads, splits the time from each moment it wanted to run to the moment it ran
into:

  timer late   its timer (a poll or sleep timeout) fired this long after it was due: the
               kernel or, with the CPU idle, the hypervisor woke the vCPU late;
  runqueue     woken, but another thread held the CPU: who held it, and for how long;
  preempted    switched out while runnable (its time slice taken by another thread);
  vCPU absent  of the two above, the part when the CPU itself was not running: any timer
               due on that CPU then fired this late (the hypervisor had taken the vCPU
               away; the thread that "held" the CPU was not really running either).

A thread "wanted to run" at its timer's expiry when a timer woke it, and at its wake-up
when another thread or an interrupt did (waiting for data is not a delay). Prints one table
per thread and the delays over --threshold-us with their causes, and with --json one JSON
object with the same figures. `stall_trace.py --table DIR...` tabulates the outputs of
several scripts/stall-trace.sh runs (markdown, for BENCHMARKS.md).
"""

import argparse
import bisect
import json
import re
import signal
import sys
from collections import defaultdict

# perf script: `comm tid [cpu] secs.ns: sys:event: fields`
PERF_LINE = re.compile(r"^\s*(.+?)\s+(\d+)\s+\[(\d+)\]\s+(\d+)\.(\d+):\s+(\S+):\s+(.*)$")
# tracefs: `comm-tid [cpu] flags secs.us: event: fields`
TRACEFS_LINE = re.compile(r"^\s*(.+)-(\d+)\s+\[(\d+)\]\s+\S+\s+(\d+)\.(\d+):\s+(\S+):\s+(.*)$")
SWITCH = re.compile(
    r"prev_comm=(.+?) prev_pid=(\d+) prev_prio=(-?\d+) prev_state=(\S+) ==> "
    r"next_comm=(.+?) next_pid=(\d+) next_prio=(-?\d+)"
)
WAKEUP = re.compile(r"comm=(.+?) pid=(\d+) prio=(-?\d+) target_cpu=(\d+)")
HR_START = re.compile(r"hrtimer=(\S+) function=(\S+) expires=(\d+) softexpires=(\d+)")
HR_EXPIRE = re.compile(r"hrtimer=(\S+) function=(\S+) now=(\d+)")


def quantile(sorted_values, q):
    if not sorted_values:
        return 0
    i = min(len(sorted_values) - 1, int(q * len(sorted_values)))
    return sorted_values[i]


class Thread:
    def __init__(self, tid, comm):
        self.tid = tid
        self.comm = comm
        self.out_at = None  # (time, state) of the last switch-out
        self.woken_at = None  # wake-up since then
        self.timer = None  # (hrtimer, softexpires) armed by this thread, pending
        self.timer_fired = None  # (fire time, softexpires) since the switch-out
        self.on_since = None
        self.delays = []  # (want, ran, timer_late, rq, kind, cpu)
        self.timer_late = []
        self.long_runs = []  # (start, length)


def switch_in(th, t, cpu):
    """`th` runs from `t` on `cpu`: closes its time off the CPU as one delay."""
    th.on_since = t
    if th.out_at is not None:
        out_t, state = th.out_at
        if state.startswith("R"):
            th.delays.append((out_t, t, 0, t - out_t, "preempted", cpu))
        elif th.timer_fired is not None and (th.woken_at is None or th.timer_fired[0] <= th.woken_at[0]):
            fired, soft = th.timer_fired
            want = min(soft, fired)
            woke = th.woken_at[0] if th.woken_at else fired
            th.delays.append((want, t, fired - want, max(0, t - woke), "timer", cpu))
        elif th.woken_at is not None:
            woke, waker = th.woken_at
            th.delays.append((woke, t, 0, t - woke, "woken by " + waker, cpu))
    th.out_at = None


def parse(stream, pattern):
    threads = {}
    runs = defaultdict(list)  # cpu -> [(start, end, tid, comm, prio)]
    running = {}  # cpu -> (since, tid, comm, prio)
    timers = {}  # hrtimer pointer -> tid
    armed = {}  # hrtimer pointer -> softexpires, every timer
    cpu_late = defaultdict(list)  # cpu -> [(due, lateness)] of every timer that fired
    first = last = None
    for line in stream:
        m = TRACEFS_LINE.match(line) or PERF_LINE.match(line)
        if not m:
            continue
        comm, tid, cpu, sec, frac, event, rest = m.groups()
        event = event.rsplit(":", 1)[-1]
        t = int(sec) * 1_000_000_000 + int(frac.ljust(9, "0")[:9])
        tid, cpu = int(tid), int(cpu)
        first = t if first is None else first
        last = t
        # Every event runs in the context of the thread on that CPU. The kernel does not
        # always trace the switch from the idle task to a woken one (seen here on 6.18), so
        # an event of a thread off the CPU is taken as its switch-in.
        on = running.get(cpu)
        if on is None or on[1] != tid:
            if on is not None:
                runs[cpu].append((on[0], t, on[1], on[2], on[3]))
            running[cpu] = (t, tid, comm, 120)
        th = threads.get(tid)
        if th is not None and th.out_at is not None:
            switch_in(th, t, cpu)
        if event == "sched_switch":
            s = SWITCH.match(rest)
            if not s:
                continue
            pcomm, ppid, pprio, pstate, ncomm, npid, nprio = s.groups()
            ppid, npid = int(ppid), int(npid)
            since = running.get(cpu)
            if since is not None:
                runs[cpu].append((since[0], t, since[1], since[2], since[3]))
            running[cpu] = (t, npid, ncomm, int(nprio))
            if pattern.search(pcomm):
                th = threads.setdefault(ppid, Thread(ppid, pcomm))
                th.comm = pcomm  # a thread is named after it starts: keep the latest
                if th.on_since is not None and t - th.on_since > 0:
                    th.long_runs.append((th.on_since, t - th.on_since))
                th.out_at = (t, pstate)
                th.woken_at = None
                th.timer_fired = None
                th.on_since = None
            if pattern.search(ncomm):
                th = threads.setdefault(npid, Thread(npid, ncomm))
                th.comm = ncomm
                switch_in(th, t, cpu)
        elif event == "sched_wakeup":
            w = WAKEUP.match(rest)
            if not w:
                continue
            wpid = int(w.group(2))
            th = threads.get(wpid)
            if th is not None and th.out_at is not None and th.woken_at is None:
                th.woken_at = (t, comm)
        elif event == "hrtimer_start":
            h = HR_START.match(rest)
            if h:
                armed[h.group(1)] = int(h.group(4))
            if h and h.group(2) == "hrtimer_wakeup" and tid in threads:
                timers[h.group(1)] = tid
                threads[tid].timer = (h.group(1), int(h.group(4)))
        elif event == "hrtimer_expire_entry":
            h = HR_EXPIRE.match(rest)
            if not h:
                continue
            soft = armed.pop(h.group(1), None)
            if soft is not None:
                cpu_late[cpu].append((soft, max(0, int(h.group(3)) - soft)))
            owner = timers.pop(h.group(1), None)
            th = threads.get(owner)
            if th is not None and th.timer is not None and th.timer[0] == h.group(1):
                now, soft = int(h.group(3)), th.timer[1]
                th.timer_late.append(max(0, now - soft))
                if th.out_at is not None:
                    th.timer_fired = (now, soft)
                th.timer = None
    return threads, runs, cpu_late, first or 0, last or 0


def absent(cpu_late, cpu, start, end):
    """How long `cpu` was away in [start, end]: the latest firing of a timer due then."""
    lates = cpu_late.get(cpu, [])
    i = bisect.bisect_left(lates, (start,))
    worst = 0
    while i < len(lates) and lates[i][0] <= end:
        worst = max(worst, min(lates[i][1], end - lates[i][0]))
        i += 1
    return worst


def holders(runs, cpu, start, end, own_tid):
    """Who ran on `cpu` between start and end, longest first: [(comm, ns)]."""
    rs = runs.get(cpu, [])
    i = bisect.bisect_left(rs, (start - 50_000_000,))
    held = defaultdict(int)
    while i < len(rs) and rs[i][0] < end:
        s, e, tid, comm, prio = rs[i]
        overlap = min(e, end) - max(s, start)
        if overlap > 0 and tid != own_tid:
            name = "idle" if tid == 0 else re.sub(r"\d+$", "N", comm.strip())
            if prio < 100 and tid != 0:
                name += " (rt)"
            held[name] += overlap
        i += 1
    return sorted(held.items(), key=lambda kv: -kv[1])


OWN = re.compile(r"^(ztick|ZMQbg)")
# The process's main thread is named after it: with --feed handoff or caller it runs the feed.
GROUPS = (("publisher", r"^ztick-tick"), ("main thread", r"^ztick$"), ("subscribers", r"^ztick-sub"),
          ("I/O thread(s)", r"^ZMQbg"))
RENAMED = {"tokio-rt-worker": "agent", "kdamond.N": "kdamond"}


def table(dirs):
    """One markdown block per scripts/stall-trace.sh output directory: the run's steal,
    stalls and worst subscriber, then for its publisher, subscribers and I/O threads the
    delays over the threshold and where their milliseconds went (BENCHMARKS.md, 17.1)."""
    print("| run | steal ms | stalls | worst p99 / p99.9 µs | thread(s) | delays > thr | timer late ms "
          "| vCPU absent ms | ztick's threads ms | idle CPU ms | others ms |")
    print("|---|---:|---:|---|---|---:|---:|---:|---:|---:|---|")
    for d in dirs:
        try:
            rep = json.load(open(f"{d}/report.json"))
            run = json.load(open(f"{d}/fanout.json"))
            steal = re.search(r"all vCPUs\): (\d+) ms", open(f"{d}/report.txt").read())
        except (OSError, ValueError) as e:
            print(f"| {d} | (unreadable: {e}) |")
            continue
        subs = run["subscribers"]
        p99 = max(x["latency_ns"]["p99"] for x in subs) / 1e3
        p999 = max(x["latency_ns"]["p99_9"] for x in subs) / 1e3
        head = f"| {d.rstrip('/').split('/')[-1]} | {steal.group(1) if steal else '?'} | " \
               f"{run['publisher']['stalls']} | {p99:,.0f} / {p999:,.0f} |"
        for group, prefix in GROUPS:
            ts = [t for t in rep["threads"] if re.search(prefix, t["thread"])]
            if not ts:
                continue
            cause = lambda k: sum(t["over_threshold_ms"].get(k, 0) for t in ts)
            held = defaultdict(float)
            for t in ts:
                for k, v in t["cpu_held_by_ms"].items():
                    held[RENAMED.get(k, k)] += v
            own = sum(v for k, v in held.items() if OWN.search(k))
            others = ", ".join(f"{k} {v:.1f}" for k, v in sorted(held.items(), key=lambda kv: -kv[1])
                               if not OWN.search(k) and k != "idle" and v >= 0.1) or "-"
            print(f"{head} {group} | {sum(t['over_threshold'] for t in ts)} | {cause('timer late'):.1f} | "
                  f"{cause('vCPU absent'):.1f} | {own:.1f} | {held.get('idle', 0):.1f} | {others} |")
            head = "| | | | |"


def main():
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `| head` ends the output quietly
    if len(sys.argv) > 1 and sys.argv[1] == "--table":
        table(sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", default=r"^(ztick|ZMQbg)", help="regex on thread names (default: %(default)s)")
    ap.add_argument("--threshold-us", type=float, default=1000.0, help="delays listed above this (default 1000)")
    ap.add_argument("--skip-s", type=float, default=0.3, help="seconds left out at each end of the trace")
    ap.add_argument("--list", type=int, default=15, help="delays listed per thread (default 15)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    ap.add_argument("input", nargs="?", default="-", help="perf script output (default: stdin)")
    a = ap.parse_args()
    stream = sys.stdin if a.input == "-" else open(a.input, errors="replace")
    threads, runs, cpu_late, first, last = parse(stream, re.compile(a.threads))
    lo, hi = first + int(a.skip_s * 1e9), last - int(a.skip_s * 1e9)
    thr = int(a.threshold_us * 1000)
    out = {"window_s": round(max(0, hi - lo) / 1e9, 3), "threshold_us": a.threshold_us, "threads": []}
    for th in sorted(threads.values(), key=lambda t: t.comm):
        ds = [d for d in th.delays if lo <= d[0] <= hi]
        if not ds and not th.timer_late:
            continue
        total = sorted(d[1] - d[0] for d in ds)
        big = [d for d in ds if d[1] - d[0] > thr]
        cause_ns = defaultdict(int)
        held_all = defaultdict(int)
        listed = []
        for want, ran, late, rq, kind, cpu in big:
            away = min(rq, absent(cpu_late, cpu, ran - rq, ran))
            cause_ns["timer late"] += late
            cause_ns["vCPU absent"] += away
            cause_ns["runqueue" if kind != "preempted" else "preempted"] += rq - away
            held = holders(runs, cpu, ran - rq, ran, th.tid)
            for name, ns in held:
                held_all[name] += ns
            listed.append({
                "at_s": round((want - first) / 1e9, 6),
                "delay_us": round((ran - want) / 1e3, 1),
                "timer_late_us": round(late / 1e3, 1),
                "runqueue_us": round(rq / 1e3, 1),
                "vcpu_absent_us": round(away / 1e3, 1),
                "how": kind,
                "cpu": cpu,
                "cpu_held_by": [[n, round(ns / 1e3, 1)] for n, ns in held[:3]],
            })
        lates = sorted(th.timer_late)
        out["threads"].append({
            "thread": th.comm,
            "tid": th.tid,
            "wakeups": len(ds),
            "delay_us": {q: round(quantile(total, v) / 1e3, 1) for q, v in
                         (("p50", 0.5), ("p99", 0.99), ("p99.9", 0.999), ("max", 1.0))},
            "over_100us": sum(1 for x in total if x > 100_000),
            "over_threshold": len(big),
            "over_threshold_ms": {k: round(v / 1e6, 2) for k, v in cause_ns.items()},
            "cpu_held_by_ms": {k: round(v / 1e6, 2) for k, v in sorted(held_all.items(), key=lambda kv: -kv[1])[:6]},
            "timer_late_us": {q: round(quantile(lates, v) / 1e3, 1) for q, v in
                              (("p50", 0.5), ("p99", 0.99), ("max", 1.0))},
            "timer_late_over_threshold": sum(1 for x in lates if x > thr),
            "long_runs_over_threshold": sum(1 for s, n in th.long_runs if lo <= s <= hi and n > thr),
            "listed": sorted(listed, key=lambda d: -d["delay_us"])[: a.list],
        })
    if a.json:
        print(json.dumps(out))
        return
    print(f"window {out['window_s']} s (the trace less {a.skip_s} s at each end); delays over {a.threshold_us:.0f} us")
    print(f"{'thread':<16} {'wakeups':>8} {'p50':>7} {'p99':>8} {'p99.9':>8} {'max':>8} {'>100us':>7} {'>thr':>5}"
          f"  {'timer late p50/p99/max (us)':<28} causes of the delays over the threshold (ms)")
    for t in out["threads"]:
        d, tl = t["delay_us"], t["timer_late_us"]
        causes = ", ".join(f"{k} {v}" for k, v in t["over_threshold_ms"].items() if v > 0) or "-"
        held = ", ".join(f"{k} {v}" for k, v in t["cpu_held_by_ms"].items())
        print(f"{t['thread']:<16} {t['wakeups']:>8} {d['p50']:>7} {d['p99']:>8} {d['p99.9']:>8} {d['max']:>8}"
              f" {t['over_100us']:>7} {t['over_threshold']:>5}  {tl['p50']:>6}/{tl['p99']:>7}/{tl['max']:>9}    "
              f"  {causes}{'; CPU held by ' + held if held else ''}")
    for t in out["threads"]:
        if not t["listed"]:
            continue
        print(f"\n{t['thread']}: the longest delays")
        for x in t["listed"]:
            held = ", ".join(f"{n} {us} us" for n, us in x["cpu_held_by"]) or "nobody"
            print(f"  at {x['at_s']:>10.6f} s  {x['delay_us']:>8.1f} us: timer late {x['timer_late_us']:.1f}, "
                  f"runqueue {x['runqueue_us']:.1f} ({x['how']}; vCPU absent {x['vcpu_absent_us']:.1f}); "
                  f"cpu {x['cpu']} held by {held}")


if __name__ == "__main__":
    main()
