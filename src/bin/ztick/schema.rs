//! The JSON records `ztick` prints with `--json`, one typed struct each. The emitters build
//! these and serialize them; `ztick-tables` (benches/tables/, which compiles this file
//! with `#[path]`) deserializes the same structs, so a record and its reader cannot drift.
//!
//! Quantities are [`LatencySummary`]s in nanoseconds, keys spelled as the library spells
//! them (`p99_9`); the C programs (scripts/c/zcommon.h) print the same `latency_ns` keys.
//! To add a field: add it here and fill it in where the record is built; a reader that must
//! also read files written before the field existed marks it `#[serde(default)]`.

use serde::{Deserialize, Serialize};
use ztick::metrics::LatencySummary;

#[path = "fanout/schema.rs"]
pub(crate) mod fanout;

/// A publisher epoch as records carry it: 16 hex digits (a JSON number would lose
/// precision past 2^53 in most readers).
pub(crate) fn hex_epoch(epoch: u64) -> String {
    format!("{epoch:016x}")
}

/// `record` as one line of JSON. These records hold no map and no non-string key, so
/// serializing cannot fail; if it ever did, the line says why instead of vanishing.
pub(crate) fn to_line<T: Serialize>(record: &T) -> String {
    serde_json::to_string(record)
        .unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }).to_string())
}

/// One latency run: `ztick lat --json`, `ztick remote-lat --json`, and the C programs'
/// `zlat` and `floor` lines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct LatJson {
    /// Message size in bytes.
    pub(crate) size: u64,
    /// Timed round trips.
    pub(crate) count: u64,
    /// libzmq's figure: elapsed / (round trips x 2), in microseconds (one way).
    pub(crate) avg_latency_us: f64,
    /// Every round trip, in nanoseconds.
    pub(crate) latency_ns: LatencySummary,
}

/// One throughput run: `ztick thr --json`, `ztick local-thr --json`, and the C program
/// `zthr`'s line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ThrJson {
    /// Message size in bytes.
    pub(crate) size: u64,
    /// Messages received.
    pub(crate) count: u64,
    /// Messages per second, rounded to a whole message.
    pub(crate) msgs_per_s: u64,
    /// Megabits of payload per second, rounded to 3 decimals.
    pub(crate) mbit_per_s: f64,
}
