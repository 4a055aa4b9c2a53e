//! The fan-out report of `ztick fanout`: per subscriber and merged, as text and as one
//! JSON object.

use serde_json::{json, Value};
use ztick::fanout::{EpochReport, Outcome, PublisherReport, SubscriberReport};
use ztick::metrics::{LatencyRecorder, LatencySummary};
use ztick::Transport;

use super::feed::STALL_THRESHOLD;

/// What the feed was asked to publish, for the report's heading.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FeedShape {
    /// Topics published.
    pub(crate) topics: usize,
    /// Payload bytes per tick.
    pub(crate) payload_bytes: usize,
    /// Target ticks per second (0: as fast as possible).
    pub(crate) rate_per_s: u64,
}

/// Everything a fan-out run measured.
#[derive(Debug, Clone)]
pub(crate) struct FanoutReport {
    /// The transport used.
    pub(crate) transport: Transport,
    /// The feed as configured.
    pub(crate) feed: FeedShape,
    /// The publisher's side: its own report in one process (`authoritative`), else what
    /// the subscriber learnt from the end markers.
    pub(crate) publisher: PublisherReport,
    /// Whether `publisher` is the publisher's own report.
    pub(crate) authoritative: bool,
    /// Passes the feed found itself more than [`STALL_THRESHOLD`] behind schedule.
    pub(crate) stalls: u64,
    /// The furthest behind schedule the feed fell, in nanoseconds.
    pub(crate) max_lag_ns: u64,
    /// Each subscriber's side, accounting closed with the publisher's final sequences.
    pub(crate) subscribers: Vec<SubscriberReport>,
}

/// Gap ranges listed per subscriber in reports (all are counted).
const GAPS_SHOWN: usize = 20;

fn summary_json(s: &LatencySummary) -> Value {
    json!({"p50": s.p50, "p90": s.p90, "p99": s.p99, "p99_9": s.p99_9, "p99_99": s.p99_99,
           "max": s.max, "mean": (s.mean * 10.0).round() / 10.0, "min": s.min, "count": s.count})
}

impl FanoutReport {
    /// Every subscriber's latency merged (from intended send times when paced).
    pub(crate) fn merged_latency(&self) -> LatencyRecorder {
        let mut m = LatencyRecorder::new();
        for s in &self.subscribers {
            m.merge(&s.latency);
        }
        m
    }

    /// Every subscriber's raw latency (from send times) merged.
    pub(crate) fn merged_latency_raw(&self) -> LatencyRecorder {
        let mut m = LatencyRecorder::new();
        for s in &self.subscribers {
            m.merge(&s.latency_raw);
        }
        m
    }

    /// Ticks known published on the topics subscriber `s` follows, over every epoch it saw
    /// (with the publisher's own report, its epoch counts what it says it published).
    pub(crate) fn expected_for(&self, s: &SubscriberReport) -> u64 {
        s.epochs
            .iter()
            .fold(s.unlisted_totals.iter().sum::<u64>(), |a, e| a.saturating_add(self.published_in(e)))
    }

    fn published_in(&self, e: &EpochReport) -> u64 {
        if !self.authoritative || e.epoch != self.publisher.epoch {
            return e.published();
        }
        e.topics
            .iter()
            .filter_map(|(name, _)| self.publisher.last_seq.iter().find(|(n, _)| n == name).map(|(_, q)| *q))
            .sum()
    }

    /// True when, for every subscriber and epoch, received + repaired + missing +
    /// snapshot-covered equals what was published on its topics, and its listed gaps add up
    /// to its missing count.
    pub(crate) fn accounting_closes(&self) -> bool {
        self.subscribers.iter().all(|s| {
            s.epochs.iter().all(|e| {
                e.closes()
                    && e.received() + e.repaired() + e.missing() + e.from_snapshot() == self.published_in(e)
            })
        })
    }

    /// The epochs of subscriber `s`, for the JSON report.
    fn epochs_json(&self, s: &SubscriberReport) -> Vec<Value> {
        s.epochs
            .iter()
            .map(|e| {
                json!({
                    "epoch": format!("{:016x}", e.epoch),
                    "published": self.published_in(e),
                    "received": e.received(),
                    "repaired": e.repaired(),
                    "missing": e.missing(),
                    "from_snapshot": e.from_snapshot(),
                    "gaps": e.gap_ranges(),
                    "outcome": e.outcome.as_str(),
                })
            })
            .collect()
    }

    /// One JSON object: `published`, `rate_per_s`, `subscribers` (each with `received`,
    /// `missing`, `gaps`, `latency_ns`, `latency_raw_ns`), `merged`, `publisher`.
    pub(crate) fn to_json(&self) -> String {
        let subs: Vec<Value> = self
            .subscribers
            .iter()
            .map(|s| {
                let gaps: Vec<Value> = s
                    .gaps()
                    .iter()
                    .take(GAPS_SHOWN)
                    .map(|g| json!({"epoch": format!("{:016x}", g.epoch), "topic": g.topic, "first": g.first, "last": g.last}))
                    .collect();
                json!({
                    "name": s.name,
                    "expected": self.expected_for(s),
                    "received": s.received(),
                    "missing": s.missing(),
                    "from_snapshot": s.from_snapshot(),
                    "gaps": gaps,
                    "gap_ranges": s.epochs.iter().map(EpochReport::gap_ranges).sum::<u64>(),
                    "repaired": s.repaired(),
                    "unrecoverable": s.missing(),
                    "naks_sent": s.naks_sent,
                    "repair_latency_ns": summary_json(&s.repair_latency.summary()),
                    "outcome": s.outcome.as_str(),
                    "epochs": self.epochs_json(s),
                    "epochs_unlisted": s.epochs_unlisted,
                    "throughput_per_s": rate(s.received(), s.elapsed_ns),
                    "latency_ns": summary_json(&s.latency.summary()),
                    "latency_raw_ns": summary_json(&s.latency_raw.summary()),
                    "decode_errors": s.decode_errors,
                    "slow": s.slow,
                    "complete": s.complete(),
                })
            })
            .collect();
        let p = &self.publisher;
        let v = json!({
            "transport": self.transport.as_str(),
            "topics": self.feed.topics,
            "size": self.feed.payload_bytes,
            "rate": self.feed.rate_per_s,
            "published": if self.authoritative { p.published } else {
                self.subscribers.iter().map(|s| self.expected_for(s)).max().unwrap_or(0)
            },
            "rate_per_s": p.rate_per_s.round(),
            "publisher": {
                "batches": p.batches,
                "mean_batch": if p.batches > 0 { p.published as f64 / p.batches as f64 } else { 0.0 },
                "batch_sizes_log2": p.batch_sizes,
                "stalls": self.stalls,
                "max_lag_ns": self.max_lag_ns,
                "acks": p.acks,
                "epoch": format!("{:016x}", p.epoch),
                "departures": p.departures,
                "naks": p.naks,
                "retransmitted": p.retransmitted,
                "gone": p.gone,
                "ring_held": p.ring_held,
                "ring_evicted": p.ring_evicted,
            },
            "subscribers": subs,
            "merged": {
                "received": self.subscribers.iter().map(SubscriberReport::received).sum::<u64>(),
                "repaired": self.subscribers.iter().map(SubscriberReport::repaired).sum::<u64>(),
                "missing": self.subscribers.iter().map(SubscriberReport::missing).sum::<u64>(),
                "latency_ns": summary_json(&self.merged_latency().summary()),
                "latency_raw_ns": summary_json(&self.merged_latency_raw().summary()),
            },
            "accounting_closes": self.accounting_closes(),
        });
        v.to_string()
    }

    /// A human-readable report.
    pub(crate) fn to_text(&self) -> String {
        use std::fmt::Write;
        let mut o = String::new();
        let p = &self.publisher;
        let paced = self.feed.rate_per_s > 0;
        let _ = writeln!(
            o,
            "fan-out over {}: {} topics, {} B payloads, target {}",
            self.transport,
            self.feed.topics,
            self.feed.payload_bytes,
            if paced { format!("{} ticks/s", self.feed.rate_per_s) } else { "as fast as possible".into() }
        );
        if self.authoritative {
            let _ = writeln!(
                o,
                "publisher: {} ticks in {:.3} s = {:.0} ticks/s; {} messages (mean batch {:.1}); {} stalls over {:?}, max lag {:.1} us",
                p.published,
                p.elapsed_ns as f64 / 1e9,
                p.rate_per_s,
                p.batches,
                if p.batches > 0 { p.published as f64 / p.batches as f64 } else { 0.0 },
                self.stalls,
                STALL_THRESHOLD,
                self.max_lag_ns as f64 / 1000.0
            );
            if p.naks > 0 || p.departures > 0 {
                let _ = writeln!(
                    o,
                    "publisher: {} repair requests, {} ticks sent again, {} gone from the ring; {} subscribers left",
                    p.naks, p.retransmitted, p.gone, p.departures
                );
            }
        }
        let us = |ns: u64| ns as f64 / 1000.0;
        let line = |o: &mut String, label: &str, s: &LatencySummary| {
            let _ = writeln!(
                o,
                "  {label:<10} p50 {:>9.1}  p90 {:>9.1}  p99 {:>9.1}  p99.9 {:>9.1}  p99.99 {:>9.1}  max {:>9.1}  mean {:>9.1}  [us]",
                us(s.p50), us(s.p90), us(s.p99), us(s.p99_9), us(s.p99_99), us(s.max), s.mean / 1000.0
            );
        };
        let corrected = if paced { "corrected" } else { "latency" };
        for s in &self.subscribers {
            let _ = writeln!(
                o,
                "{}: {}; received {} of {}, repaired {}, missing {}{}, {:.0} ticks/s{}{}",
                s.name,
                outcome_words(s),
                s.received(),
                self.expected_for(s),
                s.repaired(),
                s.missing(),
                if s.from_snapshot() > 0 {
                    format!(", {} from the snapshot", s.from_snapshot())
                } else {
                    String::new()
                },
                rate(s.received(), s.elapsed_ns),
                if s.slow { "  ** TOO SLOW: lost ticks **" } else { "" },
                if s.decode_errors > 0 {
                    format!(", {} undecodable messages", s.decode_errors)
                } else {
                    String::new()
                },
            );
            if s.epochs.len() + s.epochs_unlisted as usize > 1 {
                for e in &s.epochs {
                    let _ = writeln!(
                        o,
                        "  epoch {:016x} ({}): published {}, received {}, repaired {}, missing {}",
                        e.epoch,
                        e.outcome.as_str(),
                        self.published_in(e),
                        e.received(),
                        e.repaired(),
                        e.missing()
                    );
                }
            }
            if s.repaired() > 0 {
                let r = s.repair_latency.summary();
                let _ = writeln!(
                    o,
                    "  repair: {} requests; latency from request to arrival p50 {:.1} p99 {:.1} max {:.1} [us]",
                    s.naks_sent,
                    us(r.p50),
                    us(r.p99),
                    us(r.max)
                );
            }
            let gaps = s.gaps();
            if !gaps.is_empty() {
                let shown: Vec<String> =
                    gaps.iter().take(5).map(|g| format!("{} {}..={}", g.topic, g.first, g.last)).collect();
                let _ = writeln!(
                    o,
                    "  gaps: {}{}",
                    shown.join(", "),
                    if gaps.len() > 5 { format!(" (+{} more)", gaps.len() - 5) } else { String::new() }
                );
            }
            line(&mut o, corrected, &s.latency.summary());
            if paced {
                line(&mut o, "raw", &s.latency_raw.summary());
            }
        }
        let _ = writeln!(o, "all subscribers:");
        line(&mut o, corrected, &self.merged_latency().summary());
        if paced {
            line(&mut o, "raw", &self.merged_latency_raw().summary());
        }
        if !self.accounting_closes() {
            let _ = writeln!(
                o,
                "WARNING: the accounting does not close (received + repaired + missing != published)"
            );
        }
        o
    }
}

/// How a subscriber's run ended, in words.
fn outcome_words(s: &SubscriberReport) -> &'static str {
    match s.outcome {
        Outcome::Complete => "complete",
        Outcome::PublisherLost => {
            "PUBLISHER LOST (silent past the liveness timeout; counts up to its last heartbeat)"
        }
        Outcome::Timeout => "TIMED OUT before the end of the stream",
        Outcome::Stopped => "stopped before the end of the stream",
    }
}

fn rate(n: u64, ns: u64) -> f64 {
    if ns == 0 {
        0.0
    } else {
        (n as f64 * 1e9 / ns as f64).round()
    }
}
