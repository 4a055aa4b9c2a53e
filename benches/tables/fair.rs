//! `fair`: `scripts/fair-fanout.sh`'s table, every stack's fan-out side by side in one
//! interleaved run, from the [`FairRun`] lines `ztick-tables run` ([`mod@crate::run`]) appends
//! to `results.jsonl`.
//!
//! A cell is a transport, a subscriber count and a rate; a row is one variant (a stack, its
//! placement and an optional strategy label). Each figure is the median over the rounds of
//! the cell; each round's latency quantile is already the worst subscriber's.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};
use ztick::metrics::LatencySummary;

use crate::jsonl::read_lines;
use crate::stats::{median, ratio};
use crate::units::{duration_or_none, micros_of_ns, rate, times, NONE};

/// The variants in row order; a labelled variant (`ztick-x@warm`) follows its stack.
pub(crate) const VARIANTS: [&str; 6] = ["c-x", "c-coalesced-x", "zmqrs-x", "ztick-x", "zmqrs-in", "ztick-in"];

/// One process of a run, reaped with its resource usage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ProcessUsage {
    /// `pub`, `sub`, or `embedded` (publisher and subscribers in one process).
    pub(crate) role: String,
    /// The command line, program first.
    pub(crate) command: Vec<String>,
    /// Its exit code (128 + the signal when a signal ended it); `None` if it was never reaped.
    pub(crate) exit: Option<i32>,
    /// Whether the runner killed it (the run outlived its timeout).
    pub(crate) killed: bool,
    /// Wall-clock seconds from start to exit.
    pub(crate) wall_s: f64,
    /// CPU seconds in user mode.
    pub(crate) user_s: f64,
    /// CPU seconds in the kernel.
    pub(crate) sys_s: f64,
    /// Voluntary context switches (the process blocked or slept).
    pub(crate) vcsw: u64,
    /// Involuntary context switches (the process was preempted).
    pub(crate) ivcsw: u64,
    /// Peak resident set, in KiB.
    pub(crate) max_rss_kb: u64,
}

/// One thread's share of a core between two samples taken mid-run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ThreadShare {
    /// The role of its process (`pub`, `sub1`, ... , `embedded`).
    pub(crate) process: String,
    /// The thread's name (`comm`).
    pub(crate) name: String,
    /// CPU time over wall time between the samples: 1.0 is a whole core.
    pub(crate) cpu_share: f64,
}

/// The CPU the run cost, every process of it summed (from `wait4`'s rusage).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub(crate) struct CpuCost {
    /// User-mode CPU seconds.
    pub(crate) user_s: f64,
    /// Kernel CPU seconds.
    pub(crate) sys_s: f64,
    /// Voluntary context switches.
    pub(crate) vcsw: u64,
    /// Involuntary context switches.
    pub(crate) ivcsw: u64,
    /// (user + sys) seconds per million ticks published.
    pub(crate) cpu_s_per_mtick: Option<f64>,
    /// Voluntary context switches per tick published.
    pub(crate) vcsw_per_tick: Option<f64>,
    /// Involuntary context switches per tick published.
    pub(crate) ivcsw_per_tick: Option<f64>,
}

impl CpuCost {
    /// The sum over `processes`, per `published` ticks.
    pub(crate) fn of(processes: &[ProcessUsage], published: u64) -> CpuCost {
        let user_s = processes.iter().map(|p| p.user_s).sum::<f64>();
        let sys_s = processes.iter().map(|p| p.sys_s).sum::<f64>();
        let vcsw = processes.iter().map(|p| p.vcsw).sum::<u64>();
        let ivcsw = processes.iter().map(|p| p.ivcsw).sum::<u64>();
        let per = |v: f64| (published > 0).then(|| v / published as f64);
        CpuCost {
            user_s,
            sys_s,
            vcsw,
            ivcsw,
            cpu_s_per_mtick: per((user_s + sys_s) * 1e6),
            vcsw_per_tick: per(vcsw as f64),
            ivcsw_per_tick: per(ivcsw as f64),
        }
    }
}

/// The ticks that followed one idle gap (the worst subscriber's in a [`FairRun`]): the
/// record `ztick fanout --idle-gaps-us` prints, which every stack's rows take.
pub(crate) use crate::schema::fanout::IdleGapJson as IdleGapRow;

/// One run of `scripts/fair-fanout.sh`: one line of its `results.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct FairRun {
    /// `rate` (a paced feed) or `idle` (ticks after idle gaps).
    pub(crate) bench: String,
    /// The variant: `ztick-in`, `ztick-x`, `c-x`, `c-coalesced-x`, `zmqrs-x`, `zmqrs-in`.
    pub(crate) stack: String,
    /// The strategy label (`ztick-x@warm` has `warm`), or `None`.
    pub(crate) label: Option<String>,
    /// `in-process` or `cross-process`.
    pub(crate) placement: String,
    /// `ipc` or `tcp`.
    pub(crate) transport: String,
    /// Subscribers.
    pub(crate) subscribers: u64,
    /// The round, from 1.
    pub(crate) round: u64,
    /// Ticks per second asked for.
    pub(crate) rate: u64,
    /// Payload bytes per tick (each stack adds its own header).
    pub(crate) size: u64,
    /// Topics, published round-robin.
    pub(crate) topics: u64,
    /// Seconds of publishing asked for.
    pub(crate) duration_s: f64,
    /// Ticks published.
    pub(crate) published: u64,
    /// Ticks per second achieved.
    pub(crate) rate_per_s: f64,
    /// Ticks owed to all subscribers together.
    pub(crate) expected: u64,
    /// Ticks owed and not received, all subscribers together.
    pub(crate) missing: u64,
    /// Corrected latency (from the intended send time): each quantile the worst
    /// subscriber's; `None` when no subscriber reported.
    pub(crate) latency_ns: Option<LatencySummary>,
    /// Raw latency (from the send time), each quantile the worst subscriber's.
    pub(crate) latency_raw_ns: Option<LatencySummary>,
    /// Each subscriber's corrected latency.
    pub(crate) subscriber_latency_ns: Vec<LatencySummary>,
    /// Publisher passes more than 1 ms behind schedule.
    pub(crate) stalls: Option<u64>,
    /// Ticks sent more than 1 ms late (`None` where the stack does not count them).
    pub(crate) late_ticks: Option<u64>,
    /// The furthest behind schedule the publisher fell, in nanoseconds.
    pub(crate) max_lag_ns: Option<u64>,
    /// Every process's CPU, summed, and per tick.
    pub(crate) cpu: CpuCost,
    /// Each process, reaped.
    pub(crate) processes: Vec<ProcessUsage>,
    /// Each thread's share of a core, sampled mid-run.
    pub(crate) threads: Vec<ThreadShare>,
    /// Which threads sleep and which spin in this stack.
    pub(crate) threads_note: String,
    /// `idle` runs: latency after each gap.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) idle_gaps: Vec<IdleGapRow>,
    /// Wall-clock seconds of the whole run, start of the first process to the last exit.
    pub(crate) wall_s: f64,
    /// The libzmq version the stack ran on (`None`: zmq.rs, or not reported).
    pub(crate) libzmq: Option<String>,
    /// Why the run failed, if it did (its figures may then be partial).
    pub(crate) error: Option<String>,
}

impl FairRun {
    /// The row name: the stack, and `@label` when labelled.
    pub(crate) fn variant(&self) -> String {
        match &self.label {
            Some(l) => format!("{}@{l}", self.stack),
            None => self.stack.clone(),
        }
    }
}

/// The worst subscriber's figure per quantile (the largest), counts summed; `None` for none.
pub(crate) fn worst_of(all: &[LatencySummary]) -> Option<LatencySummary> {
    let first = *all.first()?;
    Some(all[1..].iter().fold(first, |w, s| LatencySummary {
        count: w.count + s.count,
        min: w.min.max(s.min),
        p50: w.p50.max(s.p50),
        p90: w.p90.max(s.p90),
        p99: w.p99.max(s.p99),
        p99_9: w.p99_9.max(s.p99_9),
        p99_99: w.p99_99.max(s.p99_99),
        max: w.max.max(s.max),
        mean: w.mean.max(s.mean),
    }))
}

/// Where a variant sorts: its stack's place in [`VARIANTS`], then its label.
fn variant_key(v: &str) -> (usize, String) {
    let stack = v.split('@').next().unwrap_or(v);
    (VARIANTS.iter().position(|s| *s == stack).unwrap_or(VARIANTS.len()), v.to_owned())
}

/// The medians of one variant in one cell.
#[derive(Debug, Default)]
struct Row {
    runs: usize,
    failed: usize,
    p50: Option<f64>,
    p99: Option<f64>,
    p99_9: Option<f64>,
    p99_99: Option<f64>,
    max: Option<f64>,
    missing: Option<f64>,
    stalls: Option<f64>,
    max_lag_ns: Option<f64>,
    cpu_s_per_mtick: Option<f64>,
    cs_per_tick: Option<f64>,
    rate_per_s: Option<f64>,
}

impl Row {
    fn of(runs: &[&FairRun]) -> Row {
        let lat = |f: fn(&LatencySummary) -> u64| {
            median(runs.iter().filter_map(|r| r.latency_ns.as_ref()).map(|s| f(s) as f64))
        };
        Row {
            runs: runs.len(),
            failed: runs.iter().filter(|r| r.error.is_some()).count(),
            p50: lat(|s| s.p50),
            p99: lat(|s| s.p99),
            p99_9: lat(|s| s.p99_9),
            p99_99: lat(|s| s.p99_99),
            max: lat(|s| s.max),
            missing: median(runs.iter().map(|r| r.missing as f64)),
            stalls: median(runs.iter().filter_map(|r| r.stalls).map(|v| v as f64)),
            max_lag_ns: median(runs.iter().filter_map(|r| r.max_lag_ns).map(|v| v as f64)),
            cpu_s_per_mtick: median(runs.iter().filter_map(|r| r.cpu.cpu_s_per_mtick)),
            cs_per_tick: median(
                runs.iter().filter_map(|r| Some(r.cpu.vcsw_per_tick? + r.cpu.ivcsw_per_tick?)),
            ),
            rate_per_s: median(runs.iter().map(|r| r.rate_per_s)),
        }
    }
}

/// A count or a median of counts: `12`, `2.5`, or [`NONE`].
fn count(v: Option<f64>) -> String {
    match v {
        Some(v) if v.fract() == 0.0 => format!("{v:.0}"),
        Some(v) => format!("{v:.1}"),
        None => NONE.to_owned(),
    }
}

/// A small figure with three significant digits, or [`NONE`].
fn small(v: Option<f64>) -> String {
    match v {
        Some(v) if v >= 100.0 => format!("{v:.0}"),
        Some(v) if v >= 10.0 => format!("{v:.1}"),
        Some(v) if v >= 0.01 => format!("{v:.2}"),
        Some(v) => format!("{v:.4}"),
        None => NONE.to_owned(),
    }
}

/// The zmq.rs variant a row's p99 is compared with: the one of the same placement.
fn zmqrs_peer(variant: &str) -> &'static str {
    if variant.split('@').next().unwrap_or(variant).ends_with("-in") {
        "zmqrs-in"
    } else {
        "zmqrs-x"
    }
}

/// A cell's runs by variant, in row order.
type Variants<'a> = BTreeMap<(usize, String), Vec<&'a FairRun>>;

/// One idle row's key: transport, subscribers, variant, gap.
type IdleKey = (String, u64, (usize, String), u64);

/// The Markdown tables of `results` (the `rate` runs; `idle` runs in [`render_idle`]).
pub(crate) fn render(runs: &[FairRun]) -> String {
    let mut out = String::new();
    let rate_runs: Vec<&FairRun> = runs.iter().filter(|r| r.bench == "rate").collect();
    if rate_runs.is_empty() {
        return "No rate runs in the results.\n".to_owned();
    }
    let rounds = rate_runs.iter().map(|r| r.round).collect::<BTreeSet<_>>().len();
    let duration = median(rate_runs.iter().map(|r| r.duration_s)).unwrap_or(0.0);
    let _ = writeln!(
        out,
        "Fair fan-out: medians over {rounds} round(s) of {duration} s per cell, {} B payload, {} topics. \
         Latency is corrected (from each tick's intended send time), each quantile the worst \
         subscriber's, in µs. CPU and context switches are every process of the run (wait4), \
         per tick published. `p99 / c-x`: the row's p99 over raw libzmq's (one tick per \
         message, across processes); `p99 / zmq.rs`: over zmq.rs's of the same placement.\n",
        rate_runs[0].size, rate_runs[0].topics,
    );
    let mut cells: BTreeMap<(String, u64, u64), Variants<'_>> = BTreeMap::new();
    for r in &rate_runs {
        cells
            .entry((r.transport.clone(), r.subscribers, r.rate))
            .or_default()
            .entry(variant_key(&r.variant()))
            .or_default()
            .push(r);
    }
    let mut transport = String::new();
    for ((t, subs, asked), variants) in &cells {
        if *t != transport {
            transport = t.clone();
            let _ = writeln!(out, "\n#### {t}\n");
            let _ = writeln!(
                out,
                "| subs | rate | variant | achieved | p50 | p99 | p99.9 | p99.99 | max | missing | stalls | max lag | CPU s / M ticks | cs / tick | p99 / c-x | p99 / zmq.rs | runs |"
            );
            let _ = writeln!(
                out,
                "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
            );
        }
        let rows: Vec<(String, Row)> =
            variants.iter().map(|((_, name), runs)| (name.clone(), Row::of(runs))).collect();
        let p99_of = |name: &str| rows.iter().find(|(n, _)| n == name).and_then(|(_, r)| r.p99);
        for (name, row) in &rows {
            let vs_c = if name == "c-x" { None } else { ratio(row.p99, p99_of("c-x")) };
            let peer = zmqrs_peer(name);
            let vs_zmqrs = if name.starts_with("zmqrs") { None } else { ratio(row.p99, p99_of(peer)) };
            let runs = if row.failed > 0 {
                format!("{} ({} failed)", row.runs, row.failed)
            } else {
                row.runs.to_string()
            };
            let _ = writeln!(
                out,
                "| {subs} | {} | {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {runs} |",
                rate(*asked as f64),
                row.rate_per_s.map_or_else(|| NONE.to_owned(), rate),
                micros_of_ns(row.p50),
                micros_of_ns(row.p99),
                micros_of_ns(row.p99_9),
                micros_of_ns(row.p99_99),
                micros_of_ns(row.max),
                count(row.missing),
                count(row.stalls),
                duration_or_none(row.max_lag_ns),
                small(row.cpu_s_per_mtick),
                small(row.cs_per_tick),
                times(vs_c, 2),
                times(vs_zmqrs, 2),
            );
        }
    }
    let mut notes: BTreeMap<(usize, String), String> = BTreeMap::new();
    for r in &rate_runs {
        notes.entry(variant_key(&r.variant())).or_insert_with(|| r.threads_note.clone());
    }
    let _ = writeln!(out, "\nThreads (which sleep, which spin; as sampled in the first run of each variant, every run's shares in results.jsonl):\n");
    for ((_, v), note) in notes {
        let _ = writeln!(out, "- `{v}`: {note}");
    }
    let failed: Vec<&&FairRun> = rate_runs.iter().filter(|r| r.error.is_some()).collect();
    if !failed.is_empty() {
        let _ = writeln!(out, "\nFailed runs:\n");
        for r in failed {
            let _ = writeln!(
                out,
                "- {} {} {} subs {} round {}: {}",
                r.variant(),
                r.transport,
                r.subscribers,
                rate(r.rate as f64),
                r.round,
                r.error.as_deref().unwrap_or("")
            );
        }
    }
    out
}

/// The `idle` runs' table: per variant and gap, the medians of the worst subscriber's
/// corrected p50 / p99 / max after that gap, and the CPU of the whole run.
pub(crate) fn render_idle(runs: &[FairRun]) -> String {
    let idle: Vec<&FairRun> = runs.iter().filter(|r| r.bench == "idle").collect();
    if idle.is_empty() {
        return "No idle runs in the results.\n".to_owned();
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Latency of the ticks after an idle gap (corrected, worst subscriber, medians over rounds, µs).\n"
    );
    let _ = writeln!(
        out,
        "| transport | subs | variant | gap | ticks | p50 | p99 | max | raw p50 | CPU s per run |"
    );
    let _ = writeln!(out, "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut cells: BTreeMap<IdleKey, Vec<(&FairRun, &IdleGapRow)>> = BTreeMap::new();
    for r in &idle {
        for g in &r.idle_gaps {
            cells
                .entry((r.transport.clone(), r.subscribers, variant_key(&r.variant()), g.gap_ns))
                .or_default()
                .push((r, g));
        }
    }
    for ((t, subs, (_, v), gap), rows) in &cells {
        let m = |f: fn(&LatencySummary) -> u64| median(rows.iter().map(|(_, g)| f(&g.latency_ns) as f64));
        let _ = writeln!(
            out,
            "| {t} | {subs} | {v} | {} | {} | {} | {} | {} | {} | {} |",
            duration_or_none(Some(*gap as f64)),
            count(median(rows.iter().map(|(_, g)| g.count as f64))),
            micros_of_ns(m(|s| s.p50)),
            micros_of_ns(m(|s| s.p99)),
            micros_of_ns(m(|s| s.max)),
            micros_of_ns(median(rows.iter().map(|(_, g)| g.latency_raw_ns.p50 as f64))),
            // A few dozen ticks: per tick the CPU says nothing; the whole run's does.
            small(median(rows.iter().map(|(r, _)| r.cpu.user_s + r.cpu.sys_s))),
        );
    }
    out
}

/// `ztick-tables fair RESULTS`: the rate tables.
pub(crate) fn run(results: &Path) -> Result<String, String> {
    Ok(render(&read_lines::<FairRun>(results)?))
}

/// `ztick-tables idle RESULTS`: the idle table.
pub(crate) fn run_idle(results: &Path) -> Result<String, String> {
    Ok(render_idle(&read_lines::<FairRun>(results)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real `ztick-tables run --stack c-x --transport ipc --subscribers 2 --rate 10000
    /// --duration 1` line (a busy machine: the figures mean nothing, the shape does).
    const FAIR_RUN: &str = include_str!("testdata/fair-run.json");

    fn line() -> FairRun {
        serde_json::from_str(FAIR_RUN).unwrap()
    }

    #[test]
    fn a_run_line_reads_and_writes_back_unchanged() {
        let run = line();
        let again: serde_json::Value = serde_json::to_value(&run).unwrap();
        let original: serde_json::Value = serde_json::from_str(FAIR_RUN).unwrap();
        assert_eq!(again, original);
        assert_eq!(run.variant(), "c-x");
        assert_eq!(run.processes.len(), 3);
    }

    #[test]
    fn worst_subscriber_takes_each_quantile_from_whoever_is_worst() {
        let a = LatencySummary { count: 10, p50: 5, p99: 100, max: 200, ..Default::default() };
        let b = LatencySummary { count: 20, p50: 7, p99: 90, max: 300, ..Default::default() };
        let w = worst_of(&[a, b]).unwrap();
        assert_eq!((w.count, w.p50, w.p99, w.max), (30, 7, 100, 300));
        assert_eq!(worst_of(&[]), None);
    }

    #[test]
    fn the_table_has_a_row_per_variant_with_ratios_against_c() {
        let c = line();
        let mut z = line();
        z.stack = "ztick-x".into();
        z.latency_ns = c.latency_ns.map(|l| LatencySummary { p99: l.p99 * 2, ..l });
        let mut warm = z.clone();
        warm.label = Some("warm".into());
        let table = render(&[z, c, warm]);
        let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("| 2 |")).collect();
        assert_eq!(rows.len(), 3, "{table}");
        assert!(rows[0].contains("| c-x |"), "{table}");
        assert!(rows[1].contains("| ztick-x |") && rows[1].contains("| 2.00x |"), "{table}");
        assert!(rows[2].contains("| ztick-x@warm |"), "{table}");
        assert!(table.contains("#### ipc"));
    }

    #[test]
    fn cpu_per_tick_sums_every_process() {
        let run = line();
        let cpu = CpuCost::of(&run.processes, 1_000_000);
        let user: f64 = run.processes.iter().map(|p| p.user_s).sum();
        let sys: f64 = run.processes.iter().map(|p| p.sys_s).sum();
        assert!((cpu.cpu_s_per_mtick.unwrap() - (user + sys)).abs() < 1e-9);
        assert_eq!(CpuCost::of(&run.processes, 0).vcsw_per_tick, None);
    }
}
