//! The JSON record `zmqrs-fanout --json` prints, typed. ztick's table renderer
//! (`ztick-tables`, benches/tables/ in the parent package) compiles this file too, with
//! `#[path]`, to read the record, so the peer and its reader cannot drift. Latency objects
//! carry the keys of ztick's `LatencySummary` (`count`, `min`, `p50` ... `p99_9`, `p99_99`,
//! `max`, `mean`), as `ztick fanout --json` does; a unit test there checks the two agree.

use serde::{Deserialize, Serialize};

/// One zmq.rs fan-out run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZmqrsRun {
    /// Always `zmq.rs`.
    pub stack: String,
    /// The `zeromq` crate's version.
    pub zeromq_crate: String,
    /// tokio's runtime flavour.
    pub runtime: String,
    /// `ipc` or `tcp`.
    pub transport: String,
    /// Target ticks per second (0: as fast as possible).
    pub rate: u64,
    /// Payload bytes per tick.
    pub size: u64,
    /// Topics published.
    pub topics: u64,
    /// Seconds of publishing asked for.
    pub duration_s: f64,
    /// The `--hwm` asked for (zmq.rs ignores it).
    pub hwm: Option<u64>,
    /// zmq.rs's fixed queue per peer, in messages.
    pub hwm_effective: u64,
    /// Ticks published.
    pub published: u64,
    /// Ticks per second achieved, rounded.
    pub rate_per_s: u64,
    /// The furthest behind schedule the publisher fell, in nanoseconds.
    pub publisher_behind_max_ns: u64,
    /// Times the publisher fell more than 1 ms behind schedule (episodes; absent in records
    /// from before it was counted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stalls: Option<u64>,
    /// Ticks sent more than 1 ms after their intended time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late_ticks: Option<u64>,
    /// Each subscriber's side.
    pub subscribers: Vec<ZmqrsSubscriber>,
}

/// The publisher process of a cross-process run (`--role pub`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZmqrsPubRun {
    /// Always `zmq.rs`.
    pub stack: String,
    /// Always `pub`.
    pub role: String,
    /// The `zeromq` crate's version.
    pub zeromq_crate: String,
    /// tokio's runtime flavour.
    pub runtime: String,
    /// `ipc` or `tcp`.
    pub transport: String,
    /// Target ticks per second (0: as fast as possible, or the idle feed).
    pub rate: u64,
    /// Payload bytes per tick.
    pub size: u64,
    /// Topics published.
    pub topics: u64,
    /// Seconds of publishing asked for.
    pub duration_s: f64,
    /// Subscribers waited for before the first tick.
    pub subscribers: u64,
    /// Ticks published.
    pub published: u64,
    /// Ticks per second achieved, rounded.
    pub rate_per_s: u64,
    /// From the first tick to the last, in nanoseconds.
    pub elapsed_ns: u64,
    /// The furthest behind schedule the publisher fell, in nanoseconds.
    pub publisher_behind_max_ns: u64,
    /// Times the publisher fell more than 1 ms behind schedule (episodes).
    pub stalls: u64,
    /// Ticks sent more than 1 ms after their intended time.
    pub late_ticks: u64,
    /// Subscribers that said they were done before the publisher closed.
    pub done: u64,
}

/// A subscriber process of a cross-process run (`--role sub`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZmqrsSubRun {
    /// Always `zmq.rs`.
    pub stack: String,
    /// Always `sub`.
    pub role: String,
    /// The `zeromq` crate's version.
    pub zeromq_crate: String,
    /// tokio's runtime flavour.
    pub runtime: String,
    /// `ipc` or `tcp`.
    pub transport: String,
    /// Topics subscribed.
    pub topics: u64,
    /// Ticks published, from the end-of-stream ticks (topics whose end never came count 0).
    pub published: u64,
    /// Whether every topic's end-of-stream tick arrived.
    pub complete: bool,
    /// What it saw.
    pub subscriber: ZmqrsSubscriber,
}

/// The ticks that followed one idle gap (`--idle-gaps-us`), as every stack's records carry
/// them: the gap is the intended-time delta to the previous tick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdleGap {
    /// The gap before each of these ticks, in nanoseconds.
    pub gap_ns: u64,
    /// Ticks after this gap.
    pub count: u64,
    /// From each tick's intended send time.
    pub latency_ns: Latency,
    /// From each tick's send time.
    pub latency_raw_ns: Latency,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// What one subscriber saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZmqrsSubscriber {
    /// Ticks received.
    pub received: u64,
    /// Ticks missing (gaps inside the stream plus the tail).
    pub missing: u64,
    /// Missing ranges, listed or not.
    pub gap_count: u64,
    /// The first missing ranges.
    pub gaps: Vec<ZmqrsGap>,
    /// Topics whose end-of-stream tick arrived.
    pub eos_topics: u64,
    /// Topics whose end-of-stream count differed from the publisher's.
    pub eos_mismatch: u64,
    /// Whether it stopped after the grace period instead of on every end-of-stream tick.
    pub stopped_by_grace: bool,
    /// Ticks below the expected sequence (never seen on one connection; counted).
    pub out_of_order: u64,
    /// Messages that were not well-formed ticks.
    pub malformed: u64,
    /// From each tick's intended send time (corrected).
    pub latency_ns: Latency,
    /// From each tick's send time.
    pub latency_raw_ns: Latency,
    /// With `--idle-gaps-us`: latency per gap before the tick.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub idle_gaps: Vec<IdleGap>,
    /// With `--idle-gaps-us`: in-order ticks whose gap matched none listed (the lead-in one).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub idle_unmatched: u64,
}

/// A missing range of sequences on one topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZmqrsGap {
    /// The topic, `t0`, `t1`, ...
    pub topic: String,
    /// First missing sequence.
    pub first: u64,
    /// Last missing sequence.
    pub last: u64,
}

/// A latency histogram's headline numbers in nanoseconds, with the keys of ztick's
/// `LatencySummary`; all zero when nothing was recorded (then `count` is 0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Values recorded.
    pub count: u64,
    /// Smallest value.
    pub min: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p99_9: u64,
    /// 99.99th percentile.
    pub p99_99: u64,
    /// Largest value.
    pub max: u64,
    /// Mean.
    pub mean: f64,
}
