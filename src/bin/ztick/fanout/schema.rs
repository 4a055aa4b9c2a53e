//! The JSON record of an embedded `ztick fanout --json` run, built by
//! `FanoutReport::to_json` (report.rs) and read back by `ztick-tables` (scripts/compare-zmqrs.sh,
//! scripts/fanout-experiments.sh). A new figure is one more field in one of these structs.

use serde::{Deserialize, Serialize};
use ztick::metrics::LatencySummary;

/// One fan-out run: the feed as configured, the publisher's side, every subscriber's, and
/// all subscribers merged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct FanoutJson {
    /// `inproc`, `ipc` or `tcp`.
    pub(crate) transport: String,
    /// Topics published.
    pub(crate) topics: u64,
    /// Payload bytes per tick.
    pub(crate) size: u64,
    /// Target ticks per second (0: as fast as possible).
    pub(crate) rate: u64,
    /// Ticks published.
    pub(crate) published: u64,
    /// Ticks per second achieved, rounded.
    pub(crate) rate_per_s: f64,
    /// The publisher's figures.
    pub(crate) publisher: PublisherJson,
    /// Each subscriber's side.
    pub(crate) subscribers: Vec<SubscriberJson>,
    /// Every subscriber merged.
    pub(crate) merged: MergedJson,
    /// Whether every subscriber's received + missing + from the snapshot equals what was
    /// published on its topics, with its listed gaps adding up to its missing count.
    pub(crate) accounting_closes: bool,
}

/// The publisher's side of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct PublisherJson {
    /// Messages (batches) sent.
    pub(crate) batches: u64,
    /// Ticks per message.
    pub(crate) mean_batch: f64,
    /// `batch_sizes_log2[k]` counts batches of 2^k to 2^(k+1)-1 ticks.
    pub(crate) batch_sizes_log2: Vec<u64>,
    /// Passes the feed found itself behind schedule by more than its stall threshold.
    pub(crate) stalls: u64,
    /// The furthest behind schedule the feed fell, in nanoseconds.
    pub(crate) max_lag_ns: u64,
    /// Subscribers that acknowledged the end of the stream.
    pub(crate) acks: u64,
    /// The publisher's epoch, 16 hex digits.
    #[serde(default)]
    pub(crate) epoch: String,
    /// Subscribers seen to leave.
    #[serde(default)]
    pub(crate) departures: u64,
    /// Repair requests received.
    #[serde(default)]
    pub(crate) naks: u64,
    /// Ticks sent again from the retransmit ring.
    #[serde(default)]
    pub(crate) retransmitted: u64,
    /// Ticks asked for that the ring no longer held.
    #[serde(default)]
    pub(crate) gone: u64,
    /// Ticks the ring held at the end.
    #[serde(default)]
    pub(crate) ring_held: u64,
    /// Ticks evicted from the ring to make room.
    #[serde(default)]
    pub(crate) ring_evicted: u64,
}

/// One subscriber's side of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SubscriberJson {
    /// The subscriber's name.
    pub(crate) name: String,
    /// Ticks published on the topics it follows.
    pub(crate) expected: u64,
    /// Ticks received in the stream.
    pub(crate) received: u64,
    /// Ticks lost for good (as `unrecoverable`).
    pub(crate) missing: u64,
    /// Ticks covered by the snapshot it joined with.
    pub(crate) from_snapshot: u64,
    /// The first missing ranges (at most 20 listed; all are counted in `gap_ranges`).
    pub(crate) gaps: Vec<GapJson>,
    /// Missing ranges, listed or not.
    pub(crate) gap_ranges: u64,
    /// Ticks per second received, from its first tick to its last, rounded.
    pub(crate) throughput_per_s: f64,
    /// From each tick's intended send time when paced, else from its send time.
    pub(crate) latency_ns: LatencySummary,
    /// From each tick's send time.
    pub(crate) latency_raw_ns: LatencySummary,
    /// Messages that could not be decoded.
    pub(crate) decode_errors: u64,
    /// Sequences refused as implausible (far past what the publisher had shown: a peer
    /// lying, or a corrupt feed).
    #[serde(default)]
    pub(crate) implausible: u64,
    /// Whether its gap rate ever passed the slow-consumer threshold.
    pub(crate) slow: bool,
    /// Whether every topic's end marker arrived.
    pub(crate) complete: bool,
    /// How the run ended: `complete`, `publisher_lost`, `timeout`, `stopped`.
    #[serde(default)]
    pub(crate) outcome: String,
    /// Ticks that arrived through repair.
    #[serde(default)]
    pub(crate) repaired: u64,
    /// Ticks lost for good: `received + repaired + unrecoverable = expected`.
    #[serde(default)]
    pub(crate) unrecoverable: u64,
    /// Repair requests sent.
    #[serde(default)]
    pub(crate) naks_sent: u64,
    /// From each repaired tick's first request to its arrival.
    #[serde(default)]
    pub(crate) repair_latency_ns: LatencySummary,
    /// One entry per publisher epoch seen.
    #[serde(default)]
    pub(crate) epochs: Vec<EpochJson>,
    /// Epochs seen beyond those listed.
    #[serde(default)]
    pub(crate) epochs_unlisted: u64,
    /// Whose clock the latency is on.
    #[serde(default)]
    pub(crate) clock: ClockJson,
    /// With `--idle-gaps-us`: latency per gap before the tick, in the order given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) idle_gaps: Vec<IdleGapJson>,
    /// With `--idle-gaps-us`: in-order ticks whose gap matched none listed (the lead-in
    /// tick, and the first after a loss).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub(crate) idle_unmatched: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// The ticks that followed one idle gap, as every stack of the fair benchmark records them:
/// the gap is the intended-time difference to the previous in-order tick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct IdleGapJson {
    /// The gap before each of these ticks, in nanoseconds.
    pub(crate) gap_ns: u64,
    /// Ticks after this gap.
    pub(crate) count: u64,
    /// From each tick's intended send time.
    pub(crate) latency_ns: LatencySummary,
    /// From each tick's send time.
    pub(crate) latency_raw_ns: LatencySummary,
}

/// How the subscriber's clock relates to its publisher's.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub(crate) struct ClockJson {
    /// `same_host` (latency exact), `estimated` (another host: latency corrected by
    /// `offset_ns`, within ± `uncertainty_ns`), or `unknown` (latency assumes one host).
    pub(crate) kind: String,
    /// The publisher's clock minus the subscriber's, in ns (estimated only).
    pub(crate) offset_ns: i64,
    /// Half the shortest clock round trip, in ns (estimated only).
    pub(crate) uncertainty_ns: u64,
    /// Clock round trips measured (estimated only).
    pub(crate) samples: u32,
}

/// One publisher epoch as a subscriber saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct EpochJson {
    /// The epoch, 16 hex digits.
    pub(crate) epoch: String,
    /// Ticks known published on the subscriber's topics.
    pub(crate) published: u64,
    /// Ticks received in the stream.
    pub(crate) received: u64,
    /// Ticks that arrived through repair.
    pub(crate) repaired: u64,
    /// Ticks lost for good.
    pub(crate) missing: u64,
    /// Ticks covered by a snapshot.
    pub(crate) from_snapshot: u64,
    /// Lost ranges, listed or not.
    pub(crate) gaps: u64,
    /// `complete`, `publisher_lost` or `open`.
    pub(crate) outcome: String,
}

/// A missing range of sequences on one topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct GapJson {
    /// The publisher epoch, 16 hex digits.
    #[serde(default)]
    pub(crate) epoch: String,
    /// The topic.
    pub(crate) topic: String,
    /// First missing sequence.
    pub(crate) first: u64,
    /// Last missing sequence.
    pub(crate) last: u64,
}

/// Every subscriber of a run together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct MergedJson {
    /// Ticks received, summed.
    pub(crate) received: u64,
    /// Ticks repaired, summed.
    #[serde(default)]
    pub(crate) repaired: u64,
    /// Ticks missing, summed.
    pub(crate) missing: u64,
    /// Every subscriber's latency merged.
    pub(crate) latency_ns: LatencySummary,
    /// Every subscriber's raw latency merged.
    pub(crate) latency_raw_ns: LatencySummary,
}
