//! `bench`, `bench-meta` and `splice`: BENCHMARKS.md section 9 from one `scripts/bench.sh`
//! run.
//!
//! Inputs: criterion's results (every `<criterion>/**/new/benchmark.json` for its
//! `full_id`, with the `estimates.json` beside it: mean and 95 % interval, ns per
//! iteration), counted only when written since `--since` (a case skipped or filtered out
//! keeps its old files, which must not pass for new figures); the suites' HDR lines
//! (`<hdr>/*.jsonl`, [`BenchRecord`]s); the run's [`BenchMeta`]; and compare-libzmq.sh's
//! table, included as it is. Every figure printed comes from these files.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};
use ztick::metrics::LatencySummary;

use crate::host::{kernel_release, output_of, UtcMinute};
use crate::jsonl::{read_json, read_lines, read_text};
use crate::record::BenchRecord;
use crate::stats::{ratio, Quantile};
use crate::units::{duration, duration_or_none, micros_of_ns, rate, times, NONE};

const TRANSPORTS: [&str; 3] = ["inproc", "ipc", "tcp"];
const SIZES: [&str; 4] = ["msg_1B", "msg_64B", "msg_1KiB", "msg_64KiB"];
const ZC_SIZES: [&str; 6] = ["msg_64B", "msg_256B", "msg_1KiB", "msg_4KiB", "msg_16KiB", "msg_64KiB"];
const IDLES: [(&str, &str); 3] = [("block", "Block"), ("backoff", "Backoff"), ("spin", "BusySpin")];
const SOURCES: [(&str, &str); 2] = [("worker", "worker"), ("handoff", "hand-off")];
/// ztick's throughput goal against zmq.rs, as a factor.
const THROUGHPUT_GOAL: f64 = 3.0;
/// The markers around the generated section in BENCHMARKS.md.
pub(crate) const BEGIN: &str = "<!-- bench.sh:begin -->";
/// See [`BEGIN`].
pub(crate) const END: &str = "<!-- bench.sh:end -->";

/// What `bench.sh` records about its run in `meta.json`: written by `bench-meta`, read by
/// `bench`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct BenchMeta {
    /// When the run started, `2026-11-25 16:12 UTC`.
    pub(crate) date: String,
    /// The CPU model, and the hypervisor when there is one.
    pub(crate) cpu: String,
    /// Cores this process may use (`nproc`).
    pub(crate) cores: String,
    /// The kernel release.
    pub(crate) kernel: String,
    /// `rustc --version`.
    pub(crate) rustc: String,
    /// The short commit, ` (dirty)` when tracked files differ from it.
    pub(crate) git: String,
    /// Whether `--quick` shortened the run.
    pub(crate) quick: bool,
    /// The 1 and 5 minute load averages when it started.
    pub(crate) load: String,
    /// `on`, or why bench threads were not pinned.
    pub(crate) pinning: String,
    /// The command line, and the commands it ran.
    pub(crate) commands: Vec<String>,
}

impl BenchMeta {
    /// This machine, now: `quick` and `load` as bench.sh saw them, `commands` it will run.
    pub(crate) fn collect(quick: bool, load: String, commands: Vec<String>) -> Self {
        let mut cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, name)| name.trim().to_owned())
            })
            .unwrap_or_else(|| "?".to_owned());
        let virt = output_of("systemd-detect-virt", &[]);
        if !matches!(virt.as_str(), "?" | "none" | "") {
            cpu.push_str(&format!(" ({virt} guest)"));
        }
        let dirty = !matches!(
            output_of("git", &["status", "--porcelain", "--untracked-files=no"]).as_str(),
            "" | "?"
        );
        let pinned = std::env::var("ZTICK_BENCH_PIN").map_or(true, |v| v != "0");
        let mut all =
            vec![format!("scripts/bench.sh{}", if quick { " --quick" } else { "" }), "# which runs:".into()];
        all.extend(commands);
        BenchMeta {
            date: UtcMinute::now().spaced(),
            cpu,
            cores: output_of("nproc", &[]),
            kernel: kernel_release(),
            rustc: output_of("rustc", &["--version"]),
            git: output_of("git", &["rev-parse", "--short", "HEAD"]) + if dirty { " (dirty)" } else { "" },
            quick,
            load,
            pinning: if pinned { "on".into() } else { "off (ZTICK_BENCH_PIN=0)".into() },
            commands: all,
        }
    }
}

/// criterion's `benchmark.json`: the part the tables use.
#[derive(Debug, Deserialize)]
struct CriterionBenchmark {
    full_id: String,
}

/// criterion's `estimates.json`: the part the tables use.
#[derive(Debug, Deserialize)]
struct CriterionEstimates {
    mean: CriterionEstimate,
}

#[derive(Debug, Deserialize)]
struct CriterionEstimate {
    point_estimate: f64,
    confidence_interval: CriterionInterval,
}

#[derive(Debug, Deserialize)]
struct CriterionInterval {
    lower_bound: f64,
    upper_bound: f64,
}

/// criterion's mean of one case and its 95 % interval, ns per iteration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Mean {
    /// The point estimate.
    pub(crate) mean: f64,
    /// The interval's lower bound.
    pub(crate) lo: f64,
    /// The interval's upper bound.
    pub(crate) hi: f64,
}

/// Everything one run measured, by criterion id.
#[derive(Debug, Default)]
pub(crate) struct Data {
    /// criterion's means.
    pub(crate) means: HashMap<String, Mean>,
    /// HDR figures by (id, quantity).
    pub(crate) hdr: HashMap<(String, String), LatencySummary>,
    /// Cases not run, with why.
    pub(crate) skipped: HashMap<String, String>,
}

impl Data {
    /// Reads criterion's results under `criterion` written at or after `since` (Unix
    /// seconds), and the HDR lines in `hdr`.
    pub(crate) fn load(criterion: &Path, hdr: &Path, since: f64) -> Result<Data, String> {
        let mut d = Data::default();
        let mut dirs = Vec::new();
        find_new_dirs(criterion, &mut dirs);
        for dir in dirs {
            let est = dir.join("estimates.json");
            let fresh = std::fs::metadata(&est)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .is_some_and(|t| t.as_secs_f64() >= since);
            if !fresh {
                continue;
            }
            let parsed = read_json::<CriterionBenchmark>(&dir.join("benchmark.json"))
                .and_then(|b| read_json::<CriterionEstimates>(&est).map(|e| (b, e)));
            match parsed {
                Ok((b, e)) => {
                    let m = e.mean;
                    let mean = Mean {
                        mean: m.point_estimate,
                        lo: m.confidence_interval.lower_bound,
                        hi: m.confidence_interval.upper_bound,
                    };
                    d.means.insert(b.full_id, mean);
                }
                Err(e) => eprintln!("ztick-tables: skipping {}: {e}", dir.display()),
            }
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(hdr)
            .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|x| x == "jsonl"));
        files.sort();
        for f in files {
            for rec in read_lines::<BenchRecord>(&f)? {
                match rec {
                    BenchRecord::Skipped { id, skipped } => {
                        d.skipped.insert(id, skipped);
                    }
                    // A later line for the same case (a rerun) replaces an earlier one.
                    BenchRecord::Measured { id, what, latency } => {
                        d.hdr.insert((id, what), latency);
                    }
                }
            }
        }
        Ok(d)
    }

    fn mean(&self, id: &str) -> Option<f64> {
        self.means.get(id).map(|m| m.mean)
    }

    fn pct(&self, id: &str, what: &str, q: Quantile) -> Option<f64> {
        self.hdr.get(&(id.to_owned(), what.to_owned())).map(|s| q.of(s))
    }

    /// `p50 / p99 / p99.9` in µs; `None` when the case was skipped.
    fn triple(&self, id: &str, what: &str) -> Option<String> {
        if self.skipped.contains_key(id) {
            return None;
        }
        let vals = Quantile::CELL.map(|q| self.pct(id, what, q));
        Some(joined(&vals))
    }
}

/// Figures in µs joined by ` / `, or one [`NONE`] when there are none at all.
fn joined(ns: &[Option<f64>]) -> String {
    if ns.iter().all(Option::is_none) {
        return NONE.to_owned();
    }
    ns.iter().map(|v| micros_of_ns(*v)).collect::<Vec<_>>().join(" / ")
}

/// Every directory named `new` below `root` that holds a `benchmark.json`.
fn find_new_dirs(root: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(root) else { return };
    for entry in rd.flatten() {
        let p = entry.path();
        if !p.is_dir() {
            continue;
        }
        if p.file_name().is_some_and(|n| n == "new") && p.join("benchmark.json").is_file() {
            out.push(p.clone());
        }
        find_new_dirs(&p, out);
    }
}

/// `msg_1KiB` -> `1 KiB`, `msg_64B` -> `64 B`.
fn pretty_size(label: &str) -> String {
    let s = label.strip_prefix("msg_").unwrap_or(label);
    match s.strip_suffix("KiB") {
        Some(n) => format!("{n} KiB"),
        None => format!("{} B", s.strip_suffix('B').unwrap_or(s)),
    }
}

fn short_reason(reason: &str) -> &'static str {
    if reason.contains("core budget") {
        "skipped: core budget"
    } else {
        "skipped"
    }
}

fn latency_tables(d: &Data, out: &mut Vec<String>) {
    out.push("### Round-trip latency: the engine against a bare socket on the same libzmq\n".into());
    out.push(
        "`benches/latency.rs`. REQ/REP round trip in µs, p50 / p99 / p99.9 of every round trip \
         (HdrHistogram), and criterion's mean. *engine*: two pinned workers, the timing one \
         sending each request from its handler; *bare*: `patterns::Socket`s on two pinned \
         plain threads. The ratio is engine / bare: the engine's own cost (above 1 = slower).\n"
            .into(),
    );
    for (idle, idle_name) in IDLES {
        let mut rows = Vec::new();
        for t in TRANSPORTS {
            for s in SIZES {
                let g = format!("latency/{t}/{idle}/{s}");
                let (e_id, b_id) = (format!("{g}/engine"), format!("{g}/bare"));
                if let Some(reason) = d.skipped.get(&e_id) {
                    rows.push(format!("| {t} | {} | {} | | | | |", pretty_size(s), short_reason(reason)));
                    continue;
                }
                let e = d.triple(&e_id, "round_trip").unwrap_or_else(|| NONE.to_owned());
                let b =
                    if idle == "backoff" { Some("n/a".to_owned()) } else { d.triple(&b_id, "round_trip") };
                if e == NONE && b.as_deref().is_some_and(|b| b == NONE || b == "n/a") {
                    continue;
                }
                let at = |id: &str, q| d.pct(id, "round_trip", q);
                let (em, bm) = (d.mean(&e_id), d.mean(&b_id));
                rows.push(format!(
                    "| {t} | {} | {} | {e} | {} / {} | {} | {} |",
                    pretty_size(s),
                    b.as_deref().unwrap_or(NONE),
                    duration_or_none(bm),
                    duration_or_none(em),
                    times(ratio(at(&e_id, Quantile::P50), at(&b_id, Quantile::P50)), 2),
                    times(ratio(at(&e_id, Quantile::P99), at(&b_id, Quantile::P99)), 2),
                ));
            }
        }
        if rows.is_empty() {
            continue;
        }
        out.push(format!("#### {idle_name}\n"));
        out.push("| transport | size | bare p50 / p99 / p99.9 | engine p50 / p99 / p99.9 | mean bare / engine | engine / bare p50 | engine / bare p99 |".into());
        out.push("|---|---|---|---|---|---|---|".into());
        out.extend(rows);
        out.push(String::new());
    }
    // The bare ends are skipped for the engine's reason, quoted after a prefix.
    let reasons: BTreeSet<&str> = d
        .skipped
        .iter()
        .filter(|(id, _)| id.starts_with("latency/"))
        .map(|(_, r)| match r.strip_prefix("the engine's core budget") {
            Some(_) => r.split_once(": ").map_or(r.as_str(), |(_, why)| why),
            None => r.as_str(),
        })
        .collect();
    for r in reasons {
        out.push(format!("Skipped (engine and bare alike): {r}\n"));
    }
}

fn peers_tables(d: &Data, out: &mut Vec<String>) {
    out.push("### ztick against zmq.rs\n".into());
    out.push(format!(
        "`benches/peers.rs`, each cell's stacks measured one after the other in one group. \
         Round trip in µs (p50 / p99 / p99.9): *ztick* two engine workers blocking when idle; \
         *zmq.rs* both sockets on one tokio current-thread runtime (one thread, the seed's way); \
         *zmq.rs 2rt* each socket on its own current-thread runtime and pinned thread, the same \
         placement as ztick's workers. Throughput: PUSH to PULL at batch 256, the messages produced \
         in the sending worker's handler (*worker*, copied or pooled sends) or handed over by the \
         application thread (*hand-off*); the ratio takes ztick's best. zmq.rs sends and receives on one current-thread \
         runtime. Goals: throughput at least {THROUGHPUT_GOAL}x \
         zmq.rs's, p99 at or below zmq.rs's (the one-thread variant).\n"
    ));
    out.push(
        "| transport | size | ztick | zmq.rs | zmq.rs 2rt | p99 ztick / zmq.rs | p99 ztick / zmq.rs 2rt |"
            .into(),
    );
    out.push("|---|---|---|---|---|---|---|".into());
    let (mut lat_miss, mut lat_cells, mut lat_2rt_miss) = (Vec::new(), 0, Vec::new());
    for t in ["ipc", "tcp"] {
        for s in SIZES {
            let g = format!("peers/round_trip/{t}/{s}");
            let (z, r, r2) = (format!("{g}/ztick"), format!("{g}/zmqrs"), format!("{g}/zmqrs_2rt"));
            let cell = |id: &str| d.triple(id, "round_trip").unwrap_or_else(|| NONE.to_owned());
            if cell(&z) == NONE && cell(&r) == NONE {
                continue;
            }
            let p99 = |id: &str| d.pct(id, "round_trip", Quantile::P99);
            let (z99, r99, r299) = (p99(&z), p99(&r), p99(&r2));
            out.push(format!(
                "| {t} | {} | {} | {} | {} | {} | {} |",
                pretty_size(s),
                cell(&z),
                cell(&r),
                cell(&r2),
                times(ratio(z99, r99), 2),
                times(ratio(z99, r299), 2),
            ));
            if let (Some(z99), Some(r99)) = (z99, r99) {
                lat_cells += 1;
                if z99 > r99 {
                    lat_miss.push(format!(
                        "{t} {} ({})",
                        pretty_size(s),
                        times(ratio(Some(z99), Some(r99)), 2)
                    ));
                }
                if r299.is_some_and(|r299| z99 > r299) {
                    lat_2rt_miss.push(format!("{t} {}", pretty_size(s)));
                }
            }
        }
    }
    out.push(String::new());
    out.push("| transport | size | ztick worker, copy | ztick worker, pooled | ztick hand-off, copy | zmq.rs | best ztick / zmq.rs |".into());
    out.push("|---|---|---|---|---|---|---|".into());
    let (mut thr_miss, mut thr_cells) = (Vec::new(), 0);
    for t in ["ipc", "tcp"] {
        for s in SIZES {
            let g = format!("peers/push_pull/{t}/{s}");
            let zs = ["ztick", "ztick_pooled", "ztick_handoff"].map(|n| d.mean(&format!("{g}/{n}")));
            let rm = d.mean(&format!("{g}/zmqrs"));
            if zs.iter().all(Option::is_none) && rm.is_none() {
                continue;
            }
            let best = zs.iter().flatten().copied().filter(|v| *v != 0.0).min_by(f64::total_cmp);
            // Per-message times: the rate ratio is the inverse.
            let r = ratio(rm, best);
            out.push(format!(
                "| {t} | {} | {} | {} | {} |",
                pretty_size(s),
                zs.map(per_message_rate).join(" | "),
                per_message_rate(rm),
                times(r, 2)
            ));
            if let Some(r) = r {
                thr_cells += 1;
                if r < THROUGHPUT_GOAL {
                    thr_miss.push(format!("{t} {} ({})", pretty_size(s), times(Some(r), 2)));
                }
            }
        }
    }
    out.push(String::new());
    if thr_cells > 0 {
        if thr_miss.is_empty() {
            out.push(format!("Throughput goal ({THROUGHPUT_GOAL}x zmq.rs) met in all {thr_cells} cells.\n"));
        } else {
            out.push(format!(
                "**Throughput goal ({THROUGHPUT_GOAL}x zmq.rs) not met in {} of {thr_cells} cells:** {}. \
                 What differs (structure, not a profile): zmq.rs's sender, receiver and I/O run as \
                 tasks on one thread; through libzmq a message goes from the sending thread to the \
                 I/O thread (tcp, ipc) to the receiving thread, three threads on two cores here. \
                 Whether the gap is libzmq's or the engine's shows in the C table at the end of this \
                 section (the engine against raw libzmq from C, same library).\n",
                thr_miss.len(),
                thr_miss.join(", ")
            ));
        }
    }
    if lat_cells > 0 {
        if lat_miss.is_empty() {
            out.push(format!("p99 goal (at or below zmq.rs's) met in all {lat_cells} cells.\n"));
        } else {
            let listed = if lat_2rt_miss.is_empty() {
                String::new()
            } else {
                format!(": {}", lat_2rt_miss.join(", "))
            };
            out.push(format!(
                "**p99 goal (at or below zmq.rs's) not met in {} of {lat_cells} cells:** {}. \
                 Against zmq.rs with each end on its own thread (2rt), ztick's p99 is higher in \
                 {} of {lat_cells} cells{listed}. \
                 Why: zmq.rs on a current-thread runtime runs both ends and all their I/O on one \
                 thread, so a round trip crosses no thread and wakes nobody; a libzmq round trip \
                 crosses the application thread, libzmq's I/O thread (tcp, ipc) and the peer's \
                 thread in each direction, and every crossing is a wake-up on this VM. The 2rt \
                 column puts zmq.rs's ends on two threads like ztick's.\n",
                lat_miss.len(),
                lat_miss.join(", "),
                lat_2rt_miss.len(),
            ));
        }
    }
}

/// Messages per second from criterion's nanoseconds per message.
fn per_message_rate(ns: Option<f64>) -> String {
    match ns {
        Some(ns) if ns != 0.0 => rate(1e9 / ns),
        _ => NONE.to_owned(),
    }
}

fn batching_tables(d: &Data, out: &mut Vec<String>) {
    out.push("### Batching: messages per second by batch size\n".into());
    out.push(
        "`benches/throughput.rs`, copying sends, both workers blocking when idle. *worker*: the \
         sending worker's handler sends *batch* messages per pass of its loop; *hand-off*: the \
         application thread hands each message over (`Handle::send`) and the worker drains at \
         most *batch* per pass. The receiver takes at most *batch* per pass. Gain = batch 256 / batch 1. \
         PUB/SUB runs with `ZMQ_XPUB_NODROP` so every message is counted; libzmq 4.3.4 reports a PUB \
         socket as always writable, so a worker waiting for room at the HWM cannot sleep until \
         there is room: it retries every 200 µs, which these figures include.\n"
            .into(),
    );
    let mut rows = Vec::new();
    for p in ["push_pull", "pub_sub"] {
        for t in TRANSPORTS {
            for s in SIZES {
                for (src, src_name) in SOURCES {
                    let g = format!("throughput/{p}/{t}/{s}/{src}");
                    let m = [1, 16, 256].map(|b| d.mean(&format!("{g}/batch_{b}")));
                    if m.iter().all(Option::is_none) {
                        continue;
                    }
                    rows.push(format!(
                        "| {p} | {t} | {} | {src_name} | {} | {} | {} | {} |",
                        pretty_size(s),
                        per_message_rate(m[0]),
                        per_message_rate(m[1]),
                        per_message_rate(m[2]),
                        times(ratio(m[0], m[2]), 2)
                    ));
                }
            }
        }
    }
    if rows.is_empty() {
        out.push("Not measured in this run.\n".into());
        return;
    }
    out.push(
        "| pattern | transport | size | source | batch 1 | batch 16 | batch 256 | gain 256 / 1 |".into(),
    );
    out.push("|---|---|---|---|---|---|---|---|".into());
    out.extend(rows);
    out.push(String::new());
}

fn zero_copy_tables(d: &Data, out: &mut Vec<String>) {
    out.push("### Zero-copy: pooled sends against copying sends\n".into());
    out.push(
        "`benches/throughput.rs`, PUSH/PULL at batch 256. *copy*: libzmq copies the message (from \
         a `Vec<u8>` per hand-off, or from the handler's buffer on the worker); *pooled*: a \
         `PooledBuf` is filled and lent to libzmq, which gives it back to the pool when done. \
         Pooled / copy above 1 = zero-copy pays.\n"
            .into(),
    );
    let mut rows = Vec::new();
    let mut crossovers = Vec::new();
    for t in TRANSPORTS {
        for (src, src_name) in SOURCES {
            let mut measured = Vec::new();
            for s in ZC_SIZES {
                let g = format!("throughput/zero_copy/{t}/{s}/{src}");
                let (c, p) = (d.mean(&format!("{g}/copy")), d.mean(&format!("{g}/pooled")));
                if c.is_none() && p.is_none() {
                    continue;
                }
                let r = ratio(c, p);
                if let Some(r) = r {
                    measured.push((s, r));
                }
                rows.push(format!(
                    "| {t} | {} | {src_name} | {} | {} | {} |",
                    pretty_size(s),
                    per_message_rate(c),
                    per_message_rate(p),
                    times(r, 2)
                ));
            }
            if let Some(&(smallest, _)) = measured.first() {
                // The smallest size from which pooled is faster at every larger size measured.
                let from = (0..measured.len()).find(|&i| measured[i..].iter().all(|(_, r)| *r > 1.0));
                crossovers.push((format!("{t}, {src_name}"), from.map(|i| measured[i].0), smallest));
            }
        }
    }
    if rows.is_empty() {
        out.push("Not measured in this run.\n".into());
        return;
    }
    out.push("| transport | size | source | copy msgs/s | pooled msgs/s | pooled / copy |".into());
    out.push("|---|---|---|---|---|---|".into());
    out.extend(rows);
    out.push(String::new());
    for (place, from, smallest) in &crossovers {
        out.push(match from {
            None => format!(
                "- {place}: pooled sends are not faster at the largest size measured; no crossover in this run."
            ),
            Some(s) if s == smallest => {
                format!("- {place}: pooled sends are faster at every size measured, from {} up.", pretty_size(s))
            }
            Some(s) => {
                format!("- {place}: pooled sends are faster from {} up (the crossover in this run).", pretty_size(s))
            }
        });
    }
    if !crossovers.is_empty() {
        out.push(String::new());
    }
}

fn fanout_tables(d: &Data, out: &mut Vec<String>) {
    out.push("### Fan-out latency\n".into());
    out.push(
        "`benches/fanout.rs`: one publisher, 1/2/4 subscribers, all engine workers blocking when \
         idle; closed loop (the next 64 B message goes out when every subscriber has \
         acknowledged). One-way latency in µs, p50 / p99 / p99.9 / max: *each delivery*, and *to the \
         last* subscriber per message (criterion's mean is of the latter).\n"
            .into(),
    );
    out.push("| transport | subscribers | each delivery | to the last | mean to the last |".into());
    out.push("|---|---|---|---|---|".into());
    const FOUR: [Quantile; 4] = [Quantile::P50, Quantile::P99, Quantile::P99_9, Quantile::Max];
    for t in TRANSPORTS {
        for n in [1, 2, 4] {
            let i = format!("fanout/{t}/msg_64B/subs_{n}");
            let each = FOUR.map(|q| d.pct(&i, "one_way", q));
            let last = FOUR.map(|q| d.pct(&i, "to_last", q));
            if each.iter().all(Option::is_none) {
                continue;
            }
            let slashed =
                |v: &[Option<f64>]| v.iter().map(|v| micros_of_ns(*v)).collect::<Vec<_>>().join(" / ");
            out.push(format!(
                "| {t} | {n} | {} | {} | {} |",
                slashed(&each),
                slashed(&last),
                duration_or_none(d.mean(&i))
            ));
        }
    }
    out.push(String::new());
}

fn cost_tables(d: &Data, out: &mut Vec<String>) {
    let rows = [
        ("metrics/record", "`LatencyRecorder::record` (one histogram record)"),
        ("metrics/record_corrected_10us", "`record_corrected`, 10 µs interval"),
        ("metrics/merge", "new recorder + `merge` of 4,096 values"),
        ("codec/tick_64B/wire/encode", "64 B tick, `fanout::wire` encode"),
        ("codec/tick_64B/wire/decode", "64 B tick, `fanout::wire` decode"),
        ("codec/tick_64B/bincode/encode", "64 B tick, serde + bincode 2 encode"),
        ("codec/tick_64B/bincode/decode", "64 B tick, serde + bincode 2 decode"),
    ];
    let body: Vec<String> = rows
        .iter()
        .filter_map(|(id, what)| {
            let m = d.means.get(*id)?;
            Some(format!("| {what} | {} ({} - {}) |", duration(m.mean), duration(m.lo), duration(m.hi)))
        })
        .collect();
    if body.is_empty() {
        return;
    }
    out.push("### Recording and encoding costs\n".into());
    out.push("`benches/metrics.rs`, `benches/codec.rs`: criterion's mean and its 95 % interval.\n".into());
    out.push("| what | time |".into());
    out.push("|---|---|".into());
    out.extend(body);
    let m = |id: &str| d.mean(id).filter(|v| *v != 0.0);
    let (w, b) = (m("codec/tick_64B/wire/encode"), m("codec/tick_64B/bincode/encode"));
    let (wd, bd) = (m("codec/tick_64B/wire/decode"), m("codec/tick_64B/bincode/decode"));
    out.push(String::new());
    if let Some(rec) = m("metrics/record") {
        out.push(format!("One histogram record costs {} per message.", duration(rec)));
    }
    if let (Some(_), Some(_), Some(_), Some(_)) = (w, b, wd, bd) {
        out.push(format!(
            "The fixed tick header is {} cheaper to encode and {} cheaper to decode than bincode.",
            times(ratio(b, w), 1),
            times(ratio(bd, wd), 1)
        ));
    }
    out.push(String::new());
}

/// The run's heading: the machine, the date, the commands.
fn heading(meta: Option<&BenchMeta>, out: &mut Vec<String>) {
    out.push("## 9. The `cargo bench` suites (generated by `scripts/bench.sh`)\n".into());
    if meta.is_some_and(|m| m.quick) {
        out.push(
            "> **Quick mode** (`scripts/bench.sh --quick`): very short criterion runs and one \
             round of the C comparison, to check the pipeline. These figures are noisy; do not \
             cite them. Run `scripts/bench.sh` on a quiet machine for the real tables.\n"
                .into(),
        );
    }
    let f = |get: fn(&BenchMeta) -> &str| meta.map_or("?", get).to_owned();
    out.push(format!(
        "Measured {} on {}, {} cores, Linux {}; {}; ztick git {}. Everything below comes from one run of:\n",
        f(|m| &m.date),
        f(|m| &m.cpu),
        f(|m| &m.cores),
        f(|m| &m.kernel),
        f(|m| &m.rustc),
        f(|m| &m.git),
    ));
    out.push("```sh".into());
    out.extend(meta.into_iter().flat_map(|m| m.commands.iter().cloned()));
    out.push("```\n".into());
    let mut notes = Vec::new();
    if let Some(m) = meta {
        if !m.load.is_empty() {
            notes.push(format!("load average when the run started: {} (1 and 5 min)", m.load));
        }
        if m.pinning == "on" {
            notes.push("bench threads pinned (the two ends of a pair on the first and last core)".into());
        } else if !m.pinning.is_empty() {
            notes.push(format!("bench threads not pinned ({})", m.pinning));
        }
    }
    if !notes.is_empty() {
        out.push(format!("Conditions: {}.\n", notes.join("; ")));
    }
}

/// compare-libzmq.sh's table under this section's heading, its own headings one level
/// down; `None` when the comparison did not run.
fn compare_section(table: Option<&str>, out: &mut Vec<String>) {
    let Some(table) = table else {
        out.push(
            "### Raw libzmq from C\n\nNot run in this pass (`--no-compare`, or it failed: see its log).\n"
                .into(),
        );
        return;
    };
    out.push("### Raw libzmq from C, same run (`scripts/compare-libzmq.sh`)\n".into());
    // Its title is replaced by the heading above; its headings sit below this section's.
    let kept: Vec<&str> = table.trim().lines().filter(|l| !l.starts_with("# ")).collect();
    for line in kept.join("\n").trim().lines() {
        out.push(if line.starts_with('#') {
            format!("#### {}", line.trim_start_matches('#').trim())
        } else {
            line.to_owned()
        });
    }
    out.push(String::new());
}

/// Section 9 in Markdown. `compare`: `None` when the comparison was not asked for,
/// `Some(None)` when it was but left no table.
pub(crate) fn section(d: &Data, meta: Option<&BenchMeta>, compare: Option<Option<&str>>) -> String {
    let mut out = Vec::new();
    heading(meta, &mut out);
    latency_tables(d, &mut out);
    peers_tables(d, &mut out);
    batching_tables(d, &mut out);
    zero_copy_tables(d, &mut out);
    fanout_tables(d, &mut out);
    cost_tables(d, &mut out);
    if let Some(table) = compare {
        compare_section(table, &mut out);
    }
    format!("{}\n", out.join("\n").trim_end())
}

/// The `bench` subcommand: reads the run's files and prints section 9.
pub(crate) fn run(
    criterion: &Path,
    hdr: &Path,
    since: f64,
    meta: Option<&Path>,
    compare: Option<&Path>,
) -> Result<String, String> {
    let d = Data::load(criterion, hdr, since)?;
    let meta = match meta {
        Some(p) if p.exists() => Some(read_json::<BenchMeta>(p)?),
        _ => None,
    };
    let table = match compare {
        Some(p) if p.exists() => Some(Some(read_text(p)?)),
        Some(_) => Some(None),
        None => None,
    };
    Ok(section(&d, meta.as_ref(), table.as_ref().map(|t| t.as_deref())))
}

/// `md` with `section` between the [`BEGIN`] and [`END`] markers (appended, markers and
/// all, when `md` has none).
pub(crate) fn splice(md: &str, section: &str) -> Result<String, String> {
    let block = format!("{BEGIN}\n{}\n{END}", section.trim_end());
    match (md.split_once(BEGIN), md.contains(END)) {
        (Some((head, rest)), true) => {
            let (_, tail) = rest.split_once(END).ok_or_else(|| format!("`{END}` comes before `{BEGIN}`"))?;
            Ok(format!("{head}{block}{tail}"))
        }
        _ => Ok(format!("{}\n\n{block}\n", md.trim_end())),
    }
}

#[cfg(test)]
mod tests;
