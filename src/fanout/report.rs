//! What each side of a fan-out reports when it ends.

use serde::Serialize;

use super::seq::{Gap, SeqTracker};
use crate::metrics::LatencyRecorder;

/// What a publisher did, reported when it stops.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PublisherReport {
    /// The epoch it published under (random, picked at start). In JSON: 16 hex digits, as
    /// JSON numbers lose precision past 2^53.
    #[serde(serialize_with = "hex_epoch")]
    pub epoch: u64,
    /// Ticks published (sequenced and sent).
    pub published: u64,
    /// Each topic's final sequence.
    pub last_seq: Vec<(String, u64)>,
    /// From the first tick to the last, in nanoseconds.
    pub elapsed_ns: u64,
    /// Ticks per second achieved over `elapsed_ns`.
    pub rate_per_s: f64,
    /// Messages (batches) sent.
    pub batches: u64,
    /// Batch sizes: `batch_sizes[k]` counts batches of 2^k to 2^(k+1)-1 ticks.
    pub batch_sizes: Vec<u64>,
    /// Subscribers that acknowledged the end of the stream.
    pub acks: usize,
    /// Subscribers seen to leave (their hello subscription withdrawn: a clean close, a
    /// crash, or a connection libzmq declared dead).
    pub departures: u64,
    /// Repair requests (NAKs) received on the side channel.
    pub naks: u64,
    /// Ticks sent again from the retransmit ring.
    pub retransmitted: u64,
    /// Ticks asked for that the ring no longer held (answered as gone).
    pub gone: u64,
    /// Ticks evicted from the ring to make room.
    pub ring_evicted: u64,
    /// Ticks the ring held at the end (once it has filled: how many its budget holds).
    pub ring_held: u64,
    /// Repair requests dropped at the repair queue's caps (the subscriber asks again).
    pub naks_dropped: u64,
    /// Per-peer state refused, dropped at a cap, or expired (hellos, introductions).
    pub peers_evicted: u64,
    /// Subscriber connections whose ZMTP handshake completed on the feed socket (its
    /// monitor; tcp and ipc only, inproc has no connections to watch).
    pub connections: u64,
    /// Connections to the feed socket that closed, including any whose handshake failed.
    pub disconnections: u64,
    /// Connections whose handshake failed (a CURVE client with the wrong keys, say).
    pub handshake_failures: u64,
}

fn hex_epoch<S: serde::Serializer>(epoch: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{epoch:016x}"))
}

/// How a subscriber's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every topic's end marker arrived and every repair was settled.
    Complete,
    /// The publisher went silent past the liveness timeout and the subscriber did not
    /// follow it.
    PublisherLost,
    /// The subscriber was asked to finish and waited out its timeout first.
    Timeout,
    /// The application stopped the subscriber before the stream ended.
    #[default]
    Stopped,
}

impl Outcome {
    /// The name reports use: `complete`, `publisher_lost`, `timeout`, `stopped`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Complete => "complete",
            Outcome::PublisherLost => "publisher_lost",
            Outcome::Timeout => "timeout",
            Outcome::Stopped => "stopped",
        }
    }
}

/// How a subscriber's clock relates to its publisher's, which decides what its one-way
/// latency figures mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClockSync {
    /// Not known (no side channel to ask, or no answer): latency assumes the two share
    /// CLOCK_MONOTONIC, which holds on one host only.
    #[default]
    Unknown,
    /// The same CLOCK_MONOTONIC (one kernel; network namespaces included): latency is exact.
    SameHost,
    /// Another host: one-way latency is corrected by an offset estimated over the side
    /// channel (the publisher's clock minus this one's), within ± `uncertainty_ns` (half the
    /// best of `samples` round trips): never exact.
    Estimated {
        /// The publisher's clock minus the subscriber's, in ns.
        offset_ns: i64,
        /// Half the shortest round trip, in ns.
        uncertainty_ns: u64,
        /// Round trips measured.
        samples: u32,
    },
}

impl ClockSync {
    /// The name reports use: `unknown`, `same_host`, `estimated`.
    pub fn as_str(self) -> &'static str {
        match self {
            ClockSync::Unknown => "unknown",
            ClockSync::SameHost => "same_host",
            ClockSync::Estimated { .. } => "estimated",
        }
    }
}

/// How one publisher epoch ended, as a subscriber saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EpochOutcome {
    /// Every topic's end marker arrived.
    Complete,
    /// The publisher went silent, or a new epoch replaced it, before its end: its known
    /// published count is what its last heartbeat announced (or the highest sequence
    /// received, if later); anything it published after that is unknown.
    PublisherLost,
    /// Still running when the subscriber stopped.
    Open,
}

impl EpochOutcome {
    /// The name reports use: `complete`, `publisher_lost`, `open`.
    pub fn as_str(self) -> &'static str {
        match self {
            EpochOutcome::Complete => "complete",
            EpochOutcome::PublisherLost => "publisher_lost",
            EpochOutcome::Open => "open",
        }
    }
}

/// One publisher epoch as a subscriber saw it: per topic, its accounting.
#[derive(Debug, Clone)]
pub struct EpochReport {
    /// The epoch.
    pub epoch: u64,
    /// Per topic: its tracker, in the subscriber's topic order. For each,
    /// `from_snapshot + received + repaired + missing` is its known published count
    /// ([`SeqTracker::accounted_up_to`]).
    pub topics: Vec<(String, SeqTracker)>,
    /// How it ended.
    pub outcome: EpochOutcome,
}

impl EpochReport {
    fn sum(&self, f: impl Fn(&SeqTracker) -> u64) -> u64 {
        self.topics.iter().fold(0u64, |a, (_, t)| a.saturating_add(f(t)))
    }

    /// Ticks the publisher is known to have published in this epoch on these topics.
    pub fn published(&self) -> u64 {
        self.sum(SeqTracker::accounted_up_to)
    }

    /// Ticks received in the stream.
    pub fn received(&self) -> u64 {
        self.sum(SeqTracker::received)
    }

    /// Ticks that arrived through repair.
    pub fn repaired(&self) -> u64 {
        self.sum(SeqTracker::repaired)
    }

    /// Ticks lost for good (unrecoverable).
    pub fn missing(&self) -> u64 {
        self.sum(SeqTracker::missing)
    }

    /// Ticks covered by a snapshot.
    pub fn from_snapshot(&self) -> u64 {
        self.sum(SeqTracker::from_snapshot)
    }

    /// Lost ranges found, listed or not.
    pub fn gap_ranges(&self) -> u64 {
        self.sum(|t| t.gaps().len() as u64 + t.gaps_unlisted())
    }

    /// The listed lost ranges, topic by topic.
    pub fn gaps(&self) -> Vec<TopicGap> {
        self.topics
            .iter()
            .flat_map(|(name, t)| {
                t.gaps().iter().map(move |g: &Gap| TopicGap {
                    epoch: self.epoch,
                    topic: name.clone(),
                    first: g.first,
                    last: g.last,
                })
            })
            .collect()
    }

    /// Whether `from_snapshot + received + repaired + missing` equals the known published
    /// count on every topic, and the listed ranges add up to the missing count wherever
    /// none went unlisted.
    pub fn closes(&self) -> bool {
        self.topics.iter().all(|(_, t)| {
            let listed: u64 = t.gaps().iter().map(Gap::len).sum();
            t.from_snapshot() + t.received() + t.repaired() + t.missing() + t.pending() == t.accounted_up_to()
                && t.pending() == 0
                && (t.gaps_unlisted() > 0 || listed == t.missing())
        })
    }
}

/// A lost range on a named topic, as reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopicGap {
    /// The publisher epoch.
    pub epoch: u64,
    /// The topic.
    pub topic: String,
    /// First missing sequence.
    pub first: u64,
    /// Last missing sequence.
    pub last: u64,
}

/// What a subscriber saw, reported when it stops.
#[derive(Debug, Clone, Default)]
pub struct SubscriberReport {
    /// The subscriber's name.
    pub name: String,
    /// How the run ended.
    pub outcome: Outcome,
    /// One entry per publisher epoch seen, oldest first (at most
    /// [`MAX_EPOCHS`](super::MAX_EPOCHS); older ones are counted in `epochs_unlisted` and
    /// their totals kept in the sums below).
    pub epochs: Vec<EpochReport>,
    /// Epochs seen beyond those listed.
    pub epochs_unlisted: u64,
    /// Totals of the unlisted epochs: received, repaired, missing, from the snapshot.
    pub unlisted_totals: [u64; 4],
    /// Latency from each tick's intended send time (coordinated-omission free) when the
    /// publisher gives one, else from its send time; repaired ticks are not in it.
    pub latency: LatencyRecorder,
    /// Latency from each tick's send time to its receipt; repaired ticks are not in it.
    pub latency_raw: LatencyRecorder,
    /// For each repaired tick, from its first repair request to its arrival.
    pub repair_latency: LatencyRecorder,
    /// Whose clock the latency figures are on (the latest epoch's publisher).
    pub clock: ClockSync,
    /// Repair requests (NAK messages) sent.
    pub naks_sent: u64,
    /// From the first tick received to the last, in nanoseconds.
    pub elapsed_ns: u64,
    /// Messages that could not be decoded, or broke the protocol (counted, traced, skipped).
    pub decode_errors: u64,
    /// Sequences refused as implausible: far past what the publisher had shown
    /// ([`SubscriberConfig::max_seq_jump`](super::SubscriberConfig::max_seq_jump)).
    pub implausible: u64,
    /// Whether the loss rate ever passed [`SLOW_GAP_RATE`](super::SLOW_GAP_RATE) over a second.
    pub slow: bool,
    /// Per topic: the last sequence and value received, when
    /// [`SubscriberConfig::keep_last_values`](super::SubscriberConfig::keep_last_values) is on.
    pub last_values: Vec<(String, u64, Vec<u8>)>,
}

impl SubscriberReport {
    fn sum(&self, f: impl Fn(&EpochReport) -> u64, unlisted: usize) -> u64 {
        self.epochs.iter().fold(self.unlisted_totals[unlisted], |a, e| a.saturating_add(f(e)))
    }

    /// Ticks received in the stream, over every epoch.
    pub fn received(&self) -> u64 {
        self.sum(EpochReport::received, 0)
    }

    /// Ticks that arrived through repair, over every epoch.
    pub fn repaired(&self) -> u64 {
        self.sum(EpochReport::repaired, 1)
    }

    /// Ticks lost for good, over every epoch.
    pub fn missing(&self) -> u64 {
        self.sum(EpochReport::missing, 2)
    }

    /// Ticks covered by the snapshot this subscriber joined with.
    pub fn from_snapshot(&self) -> u64 {
        self.sum(EpochReport::from_snapshot, 3)
    }

    /// Whether the run ended complete: every end marker of the last epoch, every repair
    /// settled.
    pub fn complete(&self) -> bool {
        self.outcome == Outcome::Complete
    }

    /// The latest epoch, if any was seen.
    pub fn latest(&self) -> Option<&EpochReport> {
        self.epochs.last()
    }

    /// The listed lost ranges, epoch by epoch, topic by topic.
    pub fn gaps(&self) -> Vec<TopicGap> {
        self.epochs.iter().flat_map(EpochReport::gaps).collect()
    }
}
