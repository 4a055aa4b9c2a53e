//! The JSON lines the suites append to `target/ztick-bench/<suite>.jsonl` for
//! `scripts/bench.sh`, one type for both kinds. `ztick-tables` (benches/tables/) compiles
//! this file too, with `#[path]`, to read them back, so the suites and the tables cannot
//! drift. Quantities are ztick's [`LatencySummary`] fields, in nanoseconds.

use serde::{Deserialize, Serialize};
use ztick::metrics::LatencySummary;

/// One line: a case's HDR figures for one quantity, or why a case was not run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BenchRecord {
    /// A case not run (`{"id", "skipped"}`).
    Skipped {
        /// The criterion id of the case.
        id: String,
        /// Why it did not run.
        skipped: String,
    },
    /// The HDR figures of one quantity of a case (`{"id", "what", "count", "min", "p50", ...}`).
    Measured {
        /// The criterion id of the case.
        id: String,
        /// The quantity: `round_trip`, `one_way`, `to_last`, ...
        what: String,
        /// Its figures.
        #[serde(flatten)]
        latency: LatencySummary,
    },
}
