//! What each side of a fan-out reports when it ends.

use serde::Serialize;

use super::seq::{Gap, SeqTracker};
use crate::metrics::LatencyRecorder;

/// What a publisher did, reported when it stops.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PublisherReport {
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
}

/// A gap on a named topic, as reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopicGap {
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
    /// Per topic: its tracker (received, missing, gaps), in the subscriber's topic order.
    pub topics: Vec<(String, SeqTracker)>,
    /// Latency from each tick's intended send time (coordinated-omission free) when the
    /// publisher gives one, else from its send time.
    pub latency: LatencyRecorder,
    /// Latency from each tick's send time to its receipt.
    pub latency_raw: LatencyRecorder,
    /// From the first tick received to the last, in nanoseconds.
    pub elapsed_ns: u64,
    /// Messages that could not be decoded (counted, traced, skipped).
    pub decode_errors: u64,
    /// Whether the gap rate ever passed [`SLOW_GAP_RATE`](super::SLOW_GAP_RATE) over a second.
    pub slow: bool,
    /// Whether every topic's end marker arrived.
    pub complete: bool,
    /// Per topic: the last sequence and value received, when
    /// [`SubscriberConfig::keep_last_values`](super::SubscriberConfig::keep_last_values) is on.
    pub last_values: Vec<(String, u64, Vec<u8>)>,
}

impl SubscriberReport {
    /// Ticks received across topics.
    pub fn received(&self) -> u64 {
        self.topics.iter().map(|(_, t)| t.received()).sum()
    }

    /// Ticks known missing across topics.
    pub fn missing(&self) -> u64 {
        self.topics.iter().map(|(_, t)| t.missing()).sum()
    }

    /// Ticks covered by the snapshot this subscriber joined with.
    pub fn from_snapshot(&self) -> u64 {
        self.topics.iter().map(|(_, t)| t.from_snapshot()).sum()
    }

    /// The listed gaps, topic by topic.
    pub fn gaps(&self) -> Vec<TopicGap> {
        self.topics
            .iter()
            .flat_map(|(name, t)| {
                t.gaps().iter().map(move |g: &Gap| TopicGap {
                    topic: name.clone(),
                    first: g.first,
                    last: g.last,
                })
            })
            .collect()
    }
}
