//! `libzmq` and `libzmq-meta`: `scripts/compare-libzmq.sh`'s tables, ztick against raw
//! libzmq from C.
//!
//! Each line of `results.jsonl` is one run, [`LibzmqLine`]: the stack (`floor`,
//! `c-vendored`, `c-debian`, `ztick`), the bench (`lat`, `thr`), the row's transport
//! (`inproc`, `inproc-busy`, `ipc`, `tcp`), size and round, and the program's own line as
//! `result` ([`LatJson`] or [`ThrJson`]: ztick and the C programs print the same records),
//! or an `error` instead. Latency cells are the median over rounds of p50 (or p99) round
//! trip / 2 in µs; throughput cells the median of `msgs_per_s`. Ratios are ztick /
//! C-vendored: under 1 means ztick is faster for latency, over 1 that it moves more
//! messages per second.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::host::{kernel_release, output_of, UtcMinute};
use crate::jsonl::{read_json, read_lines};
use crate::schema::{LatJson, ThrJson};
use crate::stats::{median, ratio, Quantile};
use crate::units::{micros, rate, times, NONE};

/// The stacks, in the order the columns list them, with their headings.
const STACKS: [(&str, &str); 4] = [
    ("floor", "floor (no libzmq)"),
    ("c-vendored", "C, vendored libzmq"),
    ("c-debian", "C, Debian libzmq"),
    ("ztick", "ztick"),
];

/// Failed runs listed under the tables (all are counted).
const ERRORS_SHOWN: usize = 20;

/// One run as `compare-libzmq.sh` appends it to `results.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct LibzmqLine {
    /// `floor`, `c-vendored`, `c-debian` or `ztick`.
    pub(crate) stack: String,
    /// `lat` or `thr`.
    pub(crate) bench: String,
    /// The row: `inproc`, `inproc-busy`, `ipc` or `tcp`.
    pub(crate) transport: String,
    /// Message size in bytes.
    pub(crate) size: u64,
    /// 1, 2, ...
    pub(crate) round: u64,
    /// The program's JSON line: a [`LatJson`] or a [`ThrJson`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) result: Option<serde_json::Value>,
    /// Why the run failed, instead of `result`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
}

/// The settings of one `compare-libzmq.sh` pass (its `meta.json`), printed in this order
/// above the tables: written by `libzmq-meta`, read by `libzmq`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct LibzmqMeta {
    /// When the pass started, `2026-11-25T13:43Z`.
    pub(crate) date: String,
    /// `2 CPUs, <kernel release>`.
    pub(crate) host: String,
    /// Rounds per cell.
    pub(crate) rounds: u64,
    /// Timed round trips per latency run.
    #[serde(rename = "round trips")]
    pub(crate) round_trips: u64,
    /// Messages per throughput run.
    #[serde(rename = "thr count")]
    pub(crate) thr_count: String,
    /// The vendored libzmq the C programs link.
    #[serde(rename = "C vendored")]
    pub(crate) c_vendored: String,
    /// Debian's libzmq.
    #[serde(rename = "C debian")]
    pub(crate) c_debian: String,
    /// The ztick commit, or `not run`.
    pub(crate) ztick: String,
    /// The CPUs every program ran on, when pinned.
    #[serde(rename = "pinned to CPUs", default, skip_serializing_if = "Option::is_none")]
    pub(crate) pinned: Option<String>,
}

impl LibzmqMeta {
    /// `key: value; ...` in the file's order, as the tables' preamble shows it.
    fn summary(&self) -> String {
        let mut parts = vec![
            format!("date: {}", self.date),
            format!("host: {}", self.host),
            format!("rounds: {}", self.rounds),
            format!("round trips: {}", self.round_trips),
            format!("thr count: {}", self.thr_count),
            format!("C vendored: {}", self.c_vendored),
            format!("C debian: {}", self.c_debian),
            format!("ztick: {}", self.ztick),
        ];
        if let Some(p) = &self.pinned {
            parts.push(format!("pinned to CPUs: {p}"));
        }
        format!("{}.", parts.join("; "))
    }
}

/// The host as the preamble names it: `<nproc> CPUs, <kernel release>`.
pub(crate) fn host() -> String {
    format!("{} CPUs, {}", output_of("nproc", &[]), kernel_release())
}

/// The date as the preamble gives it, now.
pub(crate) fn now() -> String {
    UtcMinute::now().iso()
}

/// One cell's row key: bench, transport, size.
pub(crate) type Cell = (String, String, u64);

/// The row order: inproc, its busy row, ipc, tcp, anything else; then by name and size.
pub(crate) fn row_order(k: &Cell) -> (u8, String, u64) {
    let rank = match k.1.as_str() {
        "inproc" => 0,
        "inproc-busy" => 1,
        "ipc" => 2,
        "tcp" => 3,
        _ => 9,
    };
    (rank, k.1.clone(), k.2)
}

/// A run's program line, typed by its bench.
pub(crate) enum Run {
    /// `zlat`, `floor` or `ztick lat`.
    Lat(LatJson),
    /// `zthr` or `ztick thr`.
    Thr(ThrJson),
}

impl Run {
    /// `line`'s result as its bench's record.
    fn parse(line: &LibzmqLine) -> Result<Run, String> {
        Run::from_result(&line.bench, line.result.as_ref())
    }

    /// A `lat` or `thr` program line as its record.
    pub(crate) fn from_result(bench: &str, result: Option<&serde_json::Value>) -> Result<Run, String> {
        let result = result.cloned().ok_or("neither `result` nor `error`")?;
        match bench {
            "lat" => serde_json::from_value(result).map(Run::Lat),
            "thr" => serde_json::from_value(result).map(Run::Thr),
            other => return Err(format!("unknown bench `{other}`")),
        }
        .map_err(|e| e.to_string())
    }

    /// One-way latency in µs from the round trip's quantile `q`.
    pub(crate) fn one_way_us(&self, q: Quantile) -> Option<f64> {
        match self {
            Run::Lat(l) => Some(q.of(&l.latency_ns) / 2.0 / 1000.0),
            Run::Thr(_) => None,
        }
    }

    /// Messages per second.
    pub(crate) fn msgs_per_s(&self) -> Option<f64> {
        match self {
            Run::Thr(t) => Some(t.msgs_per_s as f64),
            Run::Lat(_) => None,
        }
    }
}

/// A run's figure for a cell.
type Figure = fn(&Run) -> Option<f64>;

/// Every result, by cell and stack.
struct Cells(BTreeMap<Cell, BTreeMap<String, Vec<Run>>>);

impl Cells {
    /// The cells of `bench` in row order.
    fn rows(&self, bench: &str) -> Vec<&Cell> {
        let mut keys: Vec<&Cell> = self.0.keys().filter(|k| k.0 == bench).collect();
        keys.sort_by_key(|k| row_order(k));
        keys
    }

    /// The stacks with a run in any cell of `bench`, in column order.
    fn stacks(&self, bench: &str) -> Vec<(&'static str, &'static str)> {
        let rows = self.rows(bench);
        STACKS.into_iter().filter(|(s, _)| rows.iter().any(|k| self.0[*k].contains_key(*s))).collect()
    }

    /// One table: a row per cell of `bench`, a column per stack, and the ratio ztick /
    /// C-vendored when ztick ran; `value` picks a run's figure, `show` formats the median.
    fn table(&self, title: &str, bench: &str, value: Figure, show: fn(f64) -> String, out: &mut Vec<String>) {
        let stacks = self.stacks(bench);
        out.push(title.to_owned());
        out.push(String::new());
        let with_ratio = stacks.iter().any(|(s, _)| *s == "ztick");
        let mut head: Vec<String> = vec!["transport".into(), "size".into()];
        head.extend(stacks.iter().map(|(_, label)| (*label).to_owned()));
        if with_ratio {
            head.push("ztick / C vendored".into());
        }
        out.push(format!("| {} |", head.join(" | ")));
        out.push(format!("|{}", "---|".repeat(head.len())));
        for k in self.rows(bench) {
            let runs = &self.0[k];
            let mid = |stack: &str| {
                let figures = runs.get(stack).into_iter().flatten().filter_map(value);
                median(figures.collect::<Vec<_>>())
            };
            let mut row = vec![k.1.clone(), format!("{} B", k.2)];
            row.extend(stacks.iter().map(|(s, _)| mid(s).map_or_else(|| NONE.to_owned(), show)));
            if with_ratio {
                row.push(times(ratio(mid("ztick"), mid("c-vendored")), 2));
            }
            out.push(format!("| {} |", row.join(" | ")));
        }
        out.push(String::new());
    }
}

/// The tables for `lines`, with `meta`'s settings above them.
pub(crate) fn render(lines: &[LibzmqLine], meta: Option<&LibzmqMeta>) -> String {
    let (errors, runs): (Vec<&LibzmqLine>, Vec<&LibzmqLine>) = lines.iter().partition(|l| l.error.is_some());
    let mut cells = Cells(BTreeMap::new());
    for r in &runs {
        match Run::parse(r) {
            Ok(run) => {
                let cell = (r.bench.clone(), r.transport.clone(), r.size);
                cells.0.entry(cell).or_default().entry(r.stack.clone()).or_default().push(run);
            }
            Err(e) => eprintln!(
                "ztick-tables: {} {} {} {} B round {}: skipped: {e}",
                r.stack, r.bench, r.transport, r.size, r.round
            ),
        }
    }

    let mut out = vec!["# ztick against libzmq from C".to_owned(), String::new()];
    if let Some(m) = meta {
        out.push(m.summary());
        out.push(String::new());
    }
    if !cells.rows("lat").is_empty() {
        let p50: Figure = |r| r.one_way_us(Quantile::P50);
        let p99: Figure = |r| r.one_way_us(Quantile::P99);
        for (title, value) in [("p50", p50), ("p99", p99)] {
            let title = format!("## Latency, one-way {title} (µs, round trip / 2; median over rounds)");
            cells.table(&title, "lat", value, micros, &mut out);
        }
    }
    if !cells.rows("thr").is_empty() {
        let title = "## Throughput (msgs/s, PUSH to PULL in one process; median over rounds)";
        cells.table(title, "thr", Run::msgs_per_s, rate, &mut out);
    }
    if runs.is_empty() {
        out.push("(no successful runs)".into());
        out.push(String::new());
    }
    if !errors.is_empty() {
        out.push(format!("Failed runs: {}", errors.len()));
        out.push(String::new());
        for e in errors.iter().take(ERRORS_SHOWN) {
            out.push(format!(
                "- {} {} {} {} B round {}: {}",
                e.stack,
                e.bench,
                e.transport,
                e.size,
                e.round,
                e.error.as_deref().unwrap_or_default()
            ));
        }
        if errors.len() > ERRORS_SHOWN {
            out.push(format!("- … and {} more", errors.len() - ERRORS_SHOWN));
        }
        out.push(String::new());
    }
    out.join("\n")
}

/// The `libzmq` subcommand.
pub(crate) fn run(results: &Path, meta: Option<&Path>) -> Result<String, String> {
    let lines: Vec<LibzmqLine> = read_lines(results)?;
    let meta = match meta.map(read_json::<LibzmqMeta>).transpose() {
        Ok(m) => m,
        Err(e) => {
            eprintln!("ztick-tables: {e}; the tables go without the settings");
            None
        }
    };
    Ok(render(&lines, meta.as_ref()))
}

#[cfg(test)]
mod tests;
