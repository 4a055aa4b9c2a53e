//! `experiments`: `scripts/fanout-experiments.sh`'s table, the medians per variant of
//! `ztick fanout` runs.
//!
//! Each line is an [`ExperimentLine`]: the variant's name, the round, and the run's
//! [`FanoutJson`] as `report`, or `failed`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::jsonl::read_lines;
use crate::schema::fanout::FanoutJson;
use crate::stats::{median, Quantile};
use crate::units::{micros_of_ns, NONE};

/// One run of one variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ExperimentLine {
    /// What the variant changes, e.g. `window 0 us`.
    pub(crate) variant: String,
    /// 1, 2, ...
    pub(crate) round: u64,
    /// The run's record, when it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) report: Option<FanoutJson>,
    /// Whether the run failed or timed out.
    #[serde(default)]
    pub(crate) failed: bool,
}

/// The columns after the variant: merged corrected latency.
const COLUMNS: [Quantile; 5] = [Quantile::P50, Quantile::P90, Quantile::P99, Quantile::P99_9, Quantile::Max];

/// The table: a row per variant in the order they first ran; latency in µs, medians over
/// the variant's finished runs; missing ticks summed; failed runs counted.
pub(crate) fn render(lines: &[ExperimentLine]) -> String {
    let mut variants: Vec<(&str, Vec<&ExperimentLine>)> = Vec::new();
    for l in lines {
        match variants.iter_mut().find(|(v, _)| *v == l.variant) {
            Some((_, runs)) => runs.push(l),
            None => variants.push((&l.variant, vec![l])),
        }
    }
    let mut out = vec![
        "| variant | p50 | p90 | p99 | p99.9 | max | missing | mean batch | failed |".to_owned(),
        "|---|---|---|---|---|---|---|---|---|".to_owned(),
    ];
    for (v, runs) in variants {
        let ok: Vec<&FanoutJson> = runs.iter().filter_map(|r| r.report.as_ref()).collect();
        let failed = runs.len() - ok.len();
        if ok.is_empty() {
            out.push(format!("| {v} | | | | | | | | {failed} |"));
            continue;
        }
        let cells: Vec<String> = COLUMNS
            .iter()
            .map(|q| micros_of_ns(median(ok.iter().map(|r| q.of(&r.merged.latency_ns)))))
            .collect();
        let missing: u64 = ok.iter().map(|r| r.merged.missing).sum();
        let batch = median(ok.iter().map(|r| r.publisher.mean_batch))
            .map_or_else(|| NONE.to_owned(), |b| format!("{b:.1}"));
        out.push(format!("| {v} | {} | {missing} | {batch} | {failed} |", cells.join(" | ")));
    }
    out.push(String::new());
    out.join("\n")
}

/// The `experiments` subcommand.
pub(crate) fn run(path: &Path) -> Result<String, String> {
    Ok(render(&read_lines::<ExperimentLine>(path)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_per_variant_in_first_run_order() {
        let report = |p50: u64, missing: u64, batch: f64| {
            let mut r: FanoutJson = serde_json::from_str(crate::tests::FANOUT_JSON).unwrap();
            r.merged.latency_ns.p50 = p50;
            r.merged.missing = missing;
            r.publisher.mean_batch = batch;
            Some(r)
        };
        let line = |variant: &str, round, report: Option<FanoutJson>| ExperimentLine {
            variant: variant.into(),
            round,
            failed: report.is_none(),
            report,
        };
        let lines = [
            line("default", 1, report(80_000, 0, 3.0)),
            line("tcp", 1, None),
            line("default", 2, report(90_000, 2, 4.0)),
            line("tcp", 2, None),
        ];
        let got = render(&lines);
        let rows: Vec<&str> = got.lines().skip(2).collect();
        assert_eq!(rows[0], "| default | 85.0 | 2,808 | 4,039 | 4,465 | 4,612 | 2 | 3.5 | 0 |");
        assert_eq!(rows[1], "| tcp | | | | | | | | 2 |");
    }
}
