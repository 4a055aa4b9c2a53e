//! `zmqrs` and `zmqrs-record`: `scripts/compare-zmqrs.sh`'s tables, ztick's fan-out
//! against the same fan-out on zmq.rs.
//!
//! `zmqrs-record` turns one program's JSON record (`ztick fanout --json`, a
//! [`FanoutJson`]; `zmqrs-fanout --json`, a [`ZmqrsRun`]) into one [`ZmqrsLine`] of
//! `results.jsonl`, deciding whether the run passed; `zmqrs` renders the lines: the
//! latency table (`lat` runs) and the highest zero-loss rate table (`max` runs).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};
use ztick::metrics::LatencySummary;

use crate::jsonl::read_lines;
use crate::schema::fanout::FanoutJson;
use crate::stats::{median, ratio, Quantile};
use crate::units::{duration_or_none, micros, micros_of_ns, rate, times, NONE};
use crate::zmqrs_report::{Latency, ZmqrsRun};

/// The stacks, in column order, with their headings.
const STACKS: [(&str, &str); 2] = [("zmq.rs", "zmq.rs (zeromq 0.7, tokio)"), ("ztick", "ztick")];

/// A run passes only when the publisher achieved this share of the rate asked.
const PACE_KEPT: f64 = 0.97;

/// One run as `compare-zmqrs.sh` appends it to `results.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ZmqrsLine {
    /// `zmq.rs` or `ztick`.
    pub(crate) stack: String,
    /// `lat` (latency at a fixed rate) or `max` (a step of the rate search).
    pub(crate) bench: String,
    /// `ipc` or `tcp`.
    pub(crate) transport: String,
    /// Subscribers.
    pub(crate) subscribers: u64,
    /// The round (`lat`) or the search step (`max`, 0 for the floor).
    pub(crate) round: u64,
    /// The rate asked, ticks per second.
    pub(crate) rate: u64,
    /// Whether no subscriber missed a tick, the publisher kept the pace and (`max`, with a
    /// bound) the worst p99 stayed within it.
    #[serde(default)]
    pub(crate) pass: bool,
    /// The program's JSON record: a [`FanoutJson`] (ztick) or a [`ZmqrsRun`] (zmq.rs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) result: Option<serde_json::Value>,
    /// The p99 bound of a `max` step, in µs, when one was set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) p99_bound_us: Option<f64>,
    /// Why the run failed, instead of `result`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
}

impl From<Latency> for LatencySummary {
    fn from(l: Latency) -> Self {
        let Latency { count, min, p50, p90, p99, p99_9, p99_99, max, mean } = l;
        LatencySummary { count, min, p50, p90, p99, p99_9, p99_99, max, mean }
    }
}

/// What the tables use of a run, from either stack's record.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Fanout {
    /// The rate the program was asked for.
    pub(crate) rate: u64,
    /// Ticks published.
    pub(crate) published: u64,
    /// Ticks per second the publisher achieved.
    pub(crate) rate_per_s: f64,
    /// Per subscriber: ticks missing, and the corrected latency (`None`: nothing received).
    pub(crate) subscribers: Vec<(u64, Option<LatencySummary>)>,
}

impl Fanout {
    /// `record` as `stack`'s JSON record.
    pub(crate) fn parse(stack: &str, record: serde_json::Value) -> Result<Fanout, String> {
        let seen = |s: LatencySummary| (s.count > 0).then_some(s);
        match stack {
            "ztick" => {
                let r: FanoutJson =
                    serde_json::from_value(record).map_err(|e| format!("not ztick's record: {e}"))?;
                Ok(Fanout {
                    rate: r.rate,
                    published: r.published,
                    rate_per_s: r.rate_per_s,
                    subscribers: r.subscribers.iter().map(|s| (s.missing, seen(s.latency_ns))).collect(),
                })
            }
            "zmq.rs" => {
                let r: ZmqrsRun =
                    serde_json::from_value(record).map_err(|e| format!("not zmq.rs's record: {e}"))?;
                Ok(Fanout {
                    rate: r.rate,
                    published: r.published,
                    rate_per_s: r.rate_per_s as f64,
                    subscribers: r
                        .subscribers
                        .iter()
                        .map(|s| (s.missing, seen(s.latency_ns.into())))
                        .collect(),
                })
            }
            other => Err(format!("unknown stack `{other}` (zmq.rs or ztick)")),
        }
    }

    /// Ticks missing, over every subscriber.
    fn missing(&self) -> u64 {
        self.subscribers.iter().map(|(m, _)| m).sum()
    }

    /// The worst subscriber's `q`, in ns; `None` when no subscriber received anything.
    fn worst(&self, q: Quantile) -> Option<f64> {
        self.subscribers.iter().filter_map(|(_, l)| l.as_ref().map(|l| q.of(l))).max_by(f64::total_cmp)
    }
}

/// The run a program's `record` describes, as a line of `results.jsonl`, with a summary
/// for the log; an unreadable record makes a failed line.
pub(crate) fn record(mut line: ZmqrsLine, record: &str, p99_bound_us: f64) -> (ZmqrsLine, String) {
    let parsed = serde_json::from_str::<serde_json::Value>(record)
        .map_err(|e| format!("no JSON record on stdout: {e}"))
        .and_then(|v| Fanout::parse(&line.stack, v.clone()).map(|f| (v, f)));
    let (value, f) = match parsed {
        Ok(p) => p,
        Err(e) => {
            let note = format!("  FAILED {}: {e}", line.stack);
            line.error = Some(e);
            return (line, note);
        }
    };
    let missing = f.missing();
    let paced = line.rate == 0 || f.rate_per_s >= PACE_KEPT * line.rate as f64;
    let mut pass = !f.subscribers.is_empty() && missing == 0 && paced;
    let bounded = line.bench == "max" && p99_bound_us > 0.0;
    if bounded && f.worst(Quantile::P99).unwrap_or(0.0) > p99_bound_us * 1000.0 {
        pass = false;
    }
    let worst = |q| micros(f.worst(q).unwrap_or(0.0) / 1000.0);
    let note = format!(
        "  {:<6} {} x{} rate {:>8}: achieved {:>9.0}/s, missing {missing}, worst p50 {} p99 {} p99.9 {} us{}",
        line.stack,
        line.transport,
        line.subscribers,
        line.rate,
        f.rate_per_s,
        worst(Quantile::P50),
        worst(Quantile::P99),
        worst(Quantile::P99_9),
        if pass { "" } else { "  [FAIL]" }
    );
    line.pass = pass;
    line.result = Some(value);
    line.p99_bound_us = bounded.then_some(p99_bound_us);
    (line, note)
}

/// A line of `results.jsonl` with its record read (`None`: the run failed, or its record
/// cannot be read, which is said on stderr).
struct Run<'a> {
    line: &'a ZmqrsLine,
    fanout: Option<Fanout>,
}

/// A cell's runs of one bench and stack, by (transport, subscribers, stack).
type Cells<'a> = BTreeMap<(&'a str, u64, &'a str), Vec<&'a Run<'a>>>;

fn cells<'a>(runs: &'a [Run<'a>], bench: &str) -> Cells<'a> {
    let mut c: Cells<'a> = BTreeMap::new();
    for r in runs.iter().filter(|r| r.line.bench == bench) {
        let l = r.line;
        c.entry((l.transport.as_str(), l.subscribers, l.stack.as_str())).or_default().push(r);
    }
    c
}

/// The rows: every (transport, subscribers) with a run, ipc first, then tcp.
fn rows<'a>(runs: &'a [Run<'a>]) -> Vec<(&'a str, u64)> {
    let set: BTreeSet<(u8, &str, u64)> = runs
        .iter()
        .map(|r| {
            let rank = match r.line.transport.as_str() {
                "ipc" => 0,
                "tcp" => 1,
                _ => 2,
            };
            (rank, r.line.transport.as_str(), r.line.subscribers)
        })
        .collect();
    set.into_iter().map(|(_, t, n)| (t, n)).collect()
}

/// One bench's table: a row per (transport, subscribers) of any run, `columns(name)`
/// headings per stack, and, when both stacks ran, `ratio_head` over the ratio ztick /
/// zmq.rs of the figures `cell` returns with each cell's text (its runs may be none).
fn grid<'a>(
    runs: &'a [Run<'a>],
    bench: &str,
    stacks: &[(&str, &str)],
    columns: impl Fn(&str) -> String,
    ratio_head: &str,
    cell: impl Fn(&[&Run<'a>]) -> (String, Option<f64>),
    out: &mut Vec<String>,
) {
    let both = stacks.len() == STACKS.len();
    let cells = cells(runs, bench);
    let mut head = "| transport | subs |".to_owned();
    for (_, name) in stacks {
        head.push_str(&columns(name));
    }
    if both {
        head.push_str(&format!(" {ratio_head} |"));
    }
    out.push(format!("{head}\n|{}", "---|".repeat(head.matches('|').count() - 1)));
    for (t, n) in rows(runs) {
        let mut row = format!("| {t} | {n} |");
        let mut figures = BTreeMap::new();
        for (s, _) in stacks {
            let (text, figure) = cell(cells.get(&(t, n, *s)).map_or(&[][..], Vec::as_slice));
            row.push_str(&text);
            figures.insert(*s, figure);
        }
        if both {
            let r = ratio(figures.get("ztick").copied().flatten(), figures.get("zmq.rs").copied().flatten());
            row.push_str(&format!(" {} |", times(r, 2)));
        }
        out.push(row);
    }
    out.push(String::new());
}

/// A latency cell: the median over rounds of the worst subscriber's p50 / p99 / p99.9,
/// and the ticks missing; its p99 for the ratio.
fn latency_cell(rs: &[&Run<'_>]) -> (String, Option<f64>) {
    let ok: Vec<&Fanout> = rs.iter().filter_map(|r| r.fanout.as_ref()).collect();
    let bad = rs.len() - ok.len();
    let failed = if bad > 0 { format!(" (failed x{bad})") } else { String::new() };
    if ok.is_empty() {
        return (format!(" {} | {NONE} |", if bad > 0 { failed.trim_start() } else { NONE }), None);
    }
    let vals = Quantile::CELL.map(|q| median(ok.iter().filter_map(|f| f.worst(q)).collect::<Vec<_>>()));
    let missing: u64 = ok.iter().map(|f| f.missing()).sum();
    let published: u64 = ok.iter().map(|f| f.published).sum();
    let figures: Vec<String> = vals.iter().map(|v| micros_of_ns(*v)).collect();
    let of = if missing > 0 { format!(" of {published}") } else { String::new() };
    (format!(" {}{failed} | {missing}{of} |", figures.join(" / ")), vals[1])
}

/// A rate-search cell: the fastest passing step's rate and worst p99 (the first such step),
/// or `<` the lowest rate tried when none passed; the rate for the ratio.
fn max_rate_cell(rs: &[&Run<'_>]) -> (String, Option<f64>) {
    if rs.is_empty() {
        return (format!(" {NONE} |"), None);
    }
    let top = rs.iter().filter(|r| r.line.pass).filter_map(|r| Some((r.line.rate, r.fanout.as_ref()?))).fold(
        None,
        |top: Option<(u64, &Fanout)>, r| match top {
            Some(t) if t.0 >= r.0 => Some(t),
            _ => Some(r),
        },
    );
    match top {
        Some((found, f)) => {
            let p99 = f.subscribers.iter().map(|(_, l)| l.as_ref().map_or(0.0, |l| Quantile::P99.of(l)));
            let p99 = p99.max_by(f64::total_cmp);
            (format!(" {} (p99 {}) |", rate(found as f64), duration_or_none(p99)), Some(found as f64))
        }
        None => {
            let lowest = rs.iter().map(|r| r.line.rate).min().unwrap_or(0);
            (format!(" < {} |", rate(lowest as f64)), None)
        }
    }
}

fn latency_table(runs: &[Run<'_>], stacks: &[(&str, &str)], out: &mut Vec<String>) {
    if !runs.iter().any(|r| r.line.bench == "lat") {
        return;
    }
    let rates: BTreeSet<u64> = runs
        .iter()
        .filter(|r| r.line.bench == "lat")
        .filter_map(|r| r.fanout.as_ref().map(|f| f.rate))
        .collect();
    let rates: Vec<String> = rates.iter().map(u64::to_string).collect();
    out.push(format!(
        "### Fan-out latency at {} ticks/s (corrected: recv - intended send time, us)\n",
        rates.join(", ")
    ));
    out.push(
        "Each cell: median over rounds of the worst subscriber's p50 / p99 / p99.9; \
         missing = ticks missed, summed over rounds and subscribers; \
         failed runs are counted, not plotted.\n"
            .into(),
    );
    let columns = |name: &str| format!(" {name} p50 / p99 / p99.9 | missing |");
    grid(runs, "lat", stacks, columns, "p99 ztick / zmq.rs", latency_cell, out);
}

fn max_rate_table(runs: &[Run<'_>], stacks: &[(&str, &str)], out: &mut Vec<String>) {
    if !runs.iter().any(|r| r.line.bench == "max") {
        return;
    }
    out.push(
        "### Highest rate with zero missing ticks (ticks/s published; every subscriber gets every tick)\n"
            .into(),
    );
    let bound =
        runs.iter().filter(|r| r.line.bench == "max").find_map(|r| r.line.p99_bound_us.filter(|b| *b != 0.0));
    out.push(format!(
        "Geometric bisection over --rate; a step passes when no subscriber missed a tick \
         and the publisher achieved >= 97 % of the rate{}. In brackets: the worst subscriber's \
         corrected p99 at that rate. `<` = even the lowest rate failed.\n",
        bound.map_or_else(String::new, |b| format!(" and the worst corrected p99 stayed <= {b} us"))
    ));
    grid(runs, "max", stacks, |name| format!(" {name} |"), "ratio ztick / zmq.rs", max_rate_cell, out);
    let fails = runs.iter().filter(|r| r.line.bench == "max" && r.line.error.is_some()).count();
    if fails > 0 {
        out.push(format!("({fails} run(s) failed outright; counted as failed steps)\n"));
    }
}

/// Both tables for `lines`, those with runs.
pub(crate) fn render(lines: &[ZmqrsLine]) -> String {
    let runs: Vec<Run<'_>> = lines
        .iter()
        .map(|line| {
            let fanout = line.result.clone().and_then(|v| match Fanout::parse(&line.stack, v) {
                Ok(f) => Some(f),
                Err(e) => {
                    let l = line;
                    eprintln!(
                        "ztick-tables: {} {} {} x{} rate {}: counted as failed: {e}",
                        l.stack, l.bench, l.transport, l.subscribers, l.rate
                    );
                    None
                }
            });
            Run { line, fanout }
        })
        .collect();
    let stacks: Vec<(&str, &str)> =
        STACKS.into_iter().filter(|(s, _)| lines.iter().any(|l| l.stack == *s)).collect();
    let mut out = Vec::new();
    latency_table(&runs, &stacks, &mut out);
    max_rate_table(&runs, &stacks, &mut out);
    let mut text = out.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    text
}

/// The `zmqrs` subcommand.
pub(crate) fn run(results: &Path) -> Result<String, String> {
    Ok(render(&read_lines::<ZmqrsLine>(results)?))
}

#[cfg(test)]
mod tests;
