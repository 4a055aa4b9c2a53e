//! `builds`: `scripts/compare-builds.sh`'s tables, the same `ztick` commands on two builds
//! (e.g. libzmq 4.3.4 against 4.3.5) side by side.
//!
//! Each line is a [`BuildsLine`]: the build's label, the bench (`lat`, `thr`, `fanout`),
//! transport, size, round, and the command's own JSON record as `result` ([`LatJson`],
//! [`ThrJson`] or [`FanoutJson`]), or an `error`. Cells are medians over rounds; the
//! ratio is the second build over the first (under 1: the second is faster for latency;
//! over 1: it moves more).
//!
//! [`LatJson`]: crate::schema::LatJson
//! [`ThrJson`]: crate::schema::ThrJson

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::jsonl::read_lines;
use crate::libzmq::{row_order, Cell, Run};
use crate::schema::fanout::FanoutJson;
use crate::stats::{median, ratio, Quantile};
use crate::units::{micros, rate, times, NONE};

/// One run as `compare-builds.sh` appends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct BuildsLine {
    /// The build's label, e.g. `libzmq 4.3.4 (main)`.
    pub(crate) build: String,
    /// `lat`, `thr` or `fanout`.
    pub(crate) bench: String,
    /// `inproc`, `ipc` or `tcp`.
    pub(crate) transport: String,
    /// Message (or tick payload) size in bytes.
    pub(crate) size: u64,
    /// 1, 2, ...
    pub(crate) round: u64,
    /// The command's JSON record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) result: Option<serde_json::Value>,
    /// Why the run failed, instead of `result`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
}

/// A fan-out run's figure.
type FanoutFigure = fn(&FanoutJson) -> f64;

/// The fan-out table's rows: merged subscriber latency (corrected, then raw) and the ticks
/// that went missing.
const FANOUT_ROWS: [(&str, FanoutFigure); 7] = [
    ("corrected p50 (µs)", |r| Quantile::P50.of(&r.merged.latency_ns) / 1000.0),
    ("corrected p99 (µs)", |r| Quantile::P99.of(&r.merged.latency_ns) / 1000.0),
    ("corrected p99.9 (µs)", |r| Quantile::P99_9.of(&r.merged.latency_ns) / 1000.0),
    ("raw p50 (µs)", |r| Quantile::P50.of(&r.merged.latency_raw_ns) / 1000.0),
    ("raw p99 (µs)", |r| Quantile::P99.of(&r.merged.latency_raw_ns) / 1000.0),
    ("ticks/s published", |r| r.rate_per_s),
    ("missing ticks", |r| r.merged.missing as f64),
];

/// The tables for `lines`.
pub(crate) fn render(lines: &[BuildsLine]) -> String {
    let mut builds: Vec<&str> = Vec::new();
    for l in lines {
        if !builds.contains(&l.build.as_str()) {
            builds.push(&l.build);
        }
    }
    let mut cells: BTreeMap<Cell, BTreeMap<&str, Vec<Run>>> = BTreeMap::new();
    let mut fanout: BTreeMap<&str, Vec<FanoutJson>> = BTreeMap::new();
    let mut failed = Vec::new();
    for l in lines {
        if let Some(e) = &l.error {
            failed.push(format!(
                "- {} {} {} {} B round {}: {e}",
                l.build, l.bench, l.transport, l.size, l.round
            ));
            continue;
        }
        let parsed = match l.bench.as_str() {
            "fanout" => l
                .result
                .clone()
                .ok_or_else(|| "no result".to_owned())
                .and_then(|v| serde_json::from_value(v).map_err(|e| e.to_string()))
                .map(|r| fanout.entry(&l.build).or_default().push(r)),
            bench => Run::from_result(bench, l.result.as_ref()).map(|run| {
                let cell = (l.bench.clone(), l.transport.clone(), l.size);
                cells.entry(cell).or_default().entry(&l.build).or_default().push(run)
            }),
        };
        if let Err(e) = parsed {
            failed.push(format!(
                "- {} {} {} round {}: unreadable: {e}",
                l.build, l.bench, l.transport, l.round
            ));
        }
    }
    let mut rows: Vec<&Cell> = cells.keys().collect();
    rows.sort_by_key(|k| row_order(k));
    let two = builds.len() == 2;
    let ratio_head = if two { format!(" | {} / {}", builds[1], builds[0]) } else { String::new() };

    let mut out = Vec::new();
    let table = |out: &mut Vec<String>,
                 title: &str,
                 bench: &str,
                 value: fn(&Run) -> Option<f64>,
                 show: fn(f64) -> String| {
        let bench_rows: Vec<&&Cell> = rows.iter().filter(|k| k.0 == bench).collect();
        if bench_rows.is_empty() {
            return;
        }
        out.push(title.to_owned());
        out.push(String::new());
        out.push(format!("| transport | size | {}{ratio_head} |", builds.join(" | ")));
        out.push(format!("|{}", "---|".repeat(2 + builds.len() + usize::from(two))));
        for k in bench_rows {
            let mid = |b: &str| median(cells[*k].get(b).into_iter().flatten().filter_map(value));
            let mut row = vec![k.1.clone(), format!("{} B", k.2)];
            row.extend(builds.iter().map(|b| mid(b).map_or_else(|| NONE.to_owned(), show)));
            if two {
                row.push(times(ratio(mid(builds[1]), mid(builds[0])), 2));
            }
            out.push(format!("| {} |", row.join(" | ")));
        }
        out.push(String::new());
    };
    table(
        &mut out,
        "### Latency, one-way p50 (µs, round trip / 2; median over rounds)",
        "lat",
        |r| r.one_way_us(Quantile::P50),
        micros,
    );
    table(
        &mut out,
        "### Latency, one-way p99 (µs, round trip / 2; median over rounds)",
        "lat",
        |r| r.one_way_us(Quantile::P99),
        micros,
    );
    table(
        &mut out,
        "### Throughput (msgs/s, PUSH to PULL in one process; median over rounds)",
        "thr",
        Run::msgs_per_s,
        rate,
    );

    if !fanout.is_empty() {
        out.push("### Fan-out (`ztick fanout`, merged over subscribers; median over rounds)".to_owned());
        out.push(String::new());
        out.push(format!("| | {}{ratio_head} |", builds.join(" | ")));
        out.push(format!("|{}", "---|".repeat(1 + builds.len() + usize::from(two))));
        for (name, figure) in FANOUT_ROWS {
            let mid = |b: &str| median(fanout.get(b).into_iter().flatten().map(figure));
            let show = |v: f64| match name {
                "ticks/s published" => rate(v),
                "missing ticks" => format!("{v:.0}"),
                _ => micros(v),
            };
            let mut row = vec![name.to_owned()];
            row.extend(builds.iter().map(|b| mid(b).map_or_else(|| NONE.to_owned(), show)));
            if two {
                row.push(times(ratio(mid(builds[1]), mid(builds[0])), 2));
            }
            out.push(format!("| {} |", row.join(" | ")));
        }
        let runs: Vec<String> =
            builds.iter().map(|b| format!("{b}: {}", fanout.get(b).map_or(0, Vec::len))).collect();
        out.push(String::new());
        out.push(format!("Fan-out runs: {}.", runs.join(", ")));
        out.push(String::new());
    }
    if !failed.is_empty() {
        out.push(format!("Failed runs: {}", failed.len()));
        out.push(String::new());
        out.extend(failed);
        out.push(String::new());
    }
    out.join("\n")
}

/// The `builds` subcommand.
pub(crate) fn run(path: &Path) -> Result<String, String> {
    Ok(render(&read_lines::<BuildsLine>(path)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_builds_side_by_side_with_the_ratio_of_the_second_to_the_first() {
        let lat = |p50: u64| {
            serde_json::json!({"size": 64, "count": 10, "avg_latency_us": 1.0,
                "latency_ns": {"count": 10, "min": 1, "p50": p50, "p90": p50, "p99": 2 * p50,
                "p99_9": 2 * p50, "p99_99": 2 * p50, "max": 2 * p50, "mean": p50 as f64}})
        };
        let line = |build: &str, round, result: Option<serde_json::Value>| BuildsLine {
            build: build.into(),
            bench: "lat".into(),
            transport: "tcp".into(),
            size: 64,
            round,
            error: result.is_none().then(|| "timed out".to_owned()),
            result,
        };
        let mut fan: FanoutJson = serde_json::from_str(crate::tests::FANOUT_JSON).unwrap();
        fan.merged.missing = 3;
        let lines = vec![
            line("old", 1, Some(lat(80_000))),
            line("new", 1, Some(lat(60_000))),
            line("old", 2, Some(lat(100_000))),
            line("new", 2, None),
            BuildsLine {
                bench: "fanout".into(),
                transport: "ipc".into(),
                result: Some(serde_json::to_value(&fan).unwrap()),
                error: None,
                ..line("new", 1, None)
            },
        ];
        let got = render(&lines);
        assert!(got.contains("| transport | size | old | new | new / old |"), "{got}");
        // old: median of 40 and 50 µs one way; new: its one finished run, 30 µs.
        assert!(got.contains("| tcp | 64 B | 45.0 | 30.0 | 0.67x |"), "{got}");
        assert!(got.contains("| missing ticks | — | 3 | — |"), "{got}");
        assert!(got.contains("Fan-out runs: old: 0, new: 1."), "{got}");
        assert!(got.contains("Failed runs: 1"), "{got}");
    }
}
