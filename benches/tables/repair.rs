//! `repair`: `scripts/fanout-repair.sh`'s table: what gap repair costs the live stream and
//! what it recovers. The lines are [`ExperimentLine`]s, the same as `experiments` reads.

use std::path::Path;

use crate::experiments::ExperimentLine;
use crate::jsonl::read_lines;
use crate::schema::fanout::FanoutJson;
use crate::stats::{median, Quantile};
use crate::units::{micros_of_ns, NONE};

/// The worst subscriber's figure `f` in a run (the one a reader of the table cares about).
fn worst(r: &FanoutJson, f: impl Fn(&crate::schema::fanout::SubscriberJson) -> f64) -> f64 {
    r.subscribers.iter().map(f).fold(0.0, f64::max)
}

/// A row per variant in the order they first ran: the live stream's corrected latency
/// (p50, p99 of all subscribers merged), ticks repaired and lost (medians of the runs'
/// totals), the worst subscriber's repair latency (from the first request to the tick's
/// arrival; medians over runs), and the ticks the publisher's ring held at the end.
pub(crate) fn render(lines: &[ExperimentLine]) -> String {
    let mut variants: Vec<(&str, Vec<&ExperimentLine>)> = Vec::new();
    for l in lines {
        match variants.iter_mut().find(|(v, _)| *v == l.variant) {
            Some((_, runs)) => runs.push(l),
            None => variants.push((&l.variant, vec![l])),
        }
    }
    let mut out = vec![
        "| variant | runs | live p50 | live p99 | repaired | lost | repair p50 | repair p99 | repair max | ring held | failed |"
            .to_owned(),
        "|---|---|---|---|---|---|---|---|---|---|---|".to_owned(),
    ];
    for (v, runs) in variants {
        let ok: Vec<&FanoutJson> = runs.iter().filter_map(|r| r.report.as_ref()).collect();
        let failed = runs.len() - ok.len();
        let med = |f: &dyn Fn(&FanoutJson) -> f64| median(ok.iter().map(|r| f(r)));
        let count = |x: Option<f64>| x.map_or_else(|| NONE.to_owned(), |x| format!("{x:.0}"));
        let repaired = med(&|r| r.merged.repaired as f64);
        let lost = med(&|r| r.merged.missing as f64);
        let repair = |q: Quantile| {
            let any = ok.iter().any(|r| r.merged.repaired > 0);
            if any {
                micros_of_ns(med(&|r| worst(r, |s| q.of(&s.repair_latency_ns))))
            } else {
                NONE.to_owned()
            }
        };
        let held = med(&|r| r.publisher.ring_held as f64);
        out.push(format!(
            "| {v} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {failed} |",
            ok.len(),
            micros_of_ns(med(&|r| Quantile::P50.of(&r.merged.latency_ns))),
            micros_of_ns(med(&|r| Quantile::P99.of(&r.merged.latency_ns))),
            count(repaired),
            count(lost),
            repair(Quantile::P50),
            repair(Quantile::P99),
            repair(Quantile::Max),
            count(held),
        ));
    }
    out.push(String::new());
    out.join("\n")
}

/// The `repair` subcommand.
pub(crate) fn run(path: &Path) -> Result<String, String> {
    Ok(render(&read_lines::<ExperimentLine>(path)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_per_variant_with_the_repair_figures_of_the_worst_subscriber() {
        let base: FanoutJson = serde_json::from_str(crate::tests::FANOUT_V2_JSON).unwrap();
        let run = |variant: &str, repaired: u64, p99: u64| {
            let mut r = base.clone();
            r.merged.repaired = repaired;
            r.merged.latency_ns.p99 = 300_000;
            r.subscribers[1].repair_latency_ns.p99 = p99;
            r.publisher.ring_held = 729_444;
            ExperimentLine { variant: variant.into(), round: 1, report: Some(r), failed: false }
        };
        let table = render(&[
            run("stall", 100, 2_000_000),
            run("stall", 300, 4_000_000),
            ExperimentLine { variant: "off".into(), round: 1, report: None, failed: true },
        ]);
        let rows: Vec<&str> = table.lines().collect();
        assert_eq!(rows.len(), 4, "{table}");
        assert!(rows[2].starts_with("| stall | 2 |"), "{table}");
        assert!(
            rows[2].contains("| 300.0 |") && rows[2].contains("| 200 |"),
            "live p99 and the median repaired: {table}"
        );
        assert!(rows[2].contains("| 3,000 |"), "the median of the worst subscriber's repair p99: {table}");
        assert!(rows[2].contains("| 729444 |"), "{table}");
        assert!(rows[3].starts_with("| off | 0 |") && rows[3].ends_with("| 1 |"), "{table}");
    }
}
