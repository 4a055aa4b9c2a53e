//! The fan-out report of `ztick fanout`: per subscriber and merged, as text and as one
//! JSON object.

use ztick::fanout::{ClockSync, EpochReport, Outcome, PublisherReport, SubscriberReport};
use ztick::metrics::{LatencyRecorder, LatencySummary};
use ztick::Transport;

use super::feed::STALL_THRESHOLD;
use crate::schema::fanout::{
    ClockJson, EpochJson, FanoutJson, GapJson, IdleGapJson, MergedJson, PublisherJson, SubscriberJson,
};
use crate::schema::{hex_epoch, to_line};

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
    /// With `--idle-gaps-us`: per subscriber (in order), its latency per gap and its
    /// unmatched ticks; empty otherwise.
    pub(crate) idle: Vec<(Vec<IdleGapJson>, u64)>,
}

/// An idle gap as the text report labels it: `100us`, `10ms`, `1s`.
fn gap_words(ns: u64) -> String {
    match ns {
        n if n >= 1_000_000_000 && n % 1_000_000_000 == 0 => format!("{}s", n / 1_000_000_000),
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}ms", n / 1_000_000),
        n => format!("{}us", n / 1_000),
    }
}

/// Gap ranges listed per subscriber in reports (all are counted).
const GAPS_SHOWN: usize = 20;

/// A summary as the record carries it: the mean to a tenth of a nanosecond.
fn record_summary(s: &LatencySummary) -> LatencySummary {
    LatencySummary { mean: (s.mean * 10.0).round() / 10.0, ..*s }
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
            .fold(sat_sum(s.unlisted_totals.iter().copied()), |a, e| a.saturating_add(self.published_in(e)))
    }

    fn published_in(&self, e: &EpochReport) -> u64 {
        if !self.authoritative || e.epoch != self.publisher.epoch {
            return e.published();
        }
        sat_sum(
            e.topics.iter().filter_map(|(name, _)| {
                self.publisher.last_seq.iter().find(|(n, _)| n == name).map(|(_, q)| *q)
            }),
        )
    }

    /// True when, for every subscriber and epoch, received + repaired + missing +
    /// snapshot-covered equals what was published on its topics, and its listed gaps add up
    /// to its missing count.
    pub(crate) fn accounting_closes(&self) -> bool {
        self.subscribers.iter().all(|s| {
            s.epochs.iter().all(|e| {
                e.closes()
                    && sat_sum([e.received(), e.repaired(), e.missing(), e.from_snapshot()].into_iter())
                        == self.published_in(e)
            })
        })
    }

    /// The epochs of subscriber `s`, as the record lists them.
    fn epochs_record(&self, s: &SubscriberReport) -> Vec<EpochJson> {
        s.epochs
            .iter()
            .map(|e| EpochJson {
                epoch: hex_epoch(e.epoch),
                published: self.published_in(e),
                received: e.received(),
                repaired: e.repaired(),
                missing: e.missing(),
                from_snapshot: e.from_snapshot(),
                gaps: e.gap_ranges(),
                outcome: e.outcome.as_str().to_owned(),
            })
            .collect()
    }

    /// The run as its JSON record: the feed, `publisher`, `subscribers` (each with
    /// `received`, `repaired`, `missing`, `outcome`, `epochs`, `gaps`, `latency_ns`,
    /// `latency_raw_ns`, `repair_latency_ns`), `merged`.
    pub(crate) fn to_record(&self) -> FanoutJson {
        let p = &self.publisher;
        let subscribers = self
            .subscribers
            .iter()
            .enumerate()
            .map(|(i, s)| SubscriberJson {
                name: s.name.clone(),
                expected: self.expected_for(s),
                received: s.received(),
                missing: s.missing(),
                from_snapshot: s.from_snapshot(),
                gaps: s
                    .gaps()
                    .into_iter()
                    .take(GAPS_SHOWN)
                    .map(|g| GapJson {
                        epoch: hex_epoch(g.epoch),
                        topic: g.topic,
                        first: g.first,
                        last: g.last,
                    })
                    .collect(),
                gap_ranges: sat_sum(s.epochs.iter().map(EpochReport::gap_ranges)),
                throughput_per_s: rate(s.received(), s.elapsed_ns),
                latency_ns: record_summary(&s.latency.summary()),
                latency_raw_ns: record_summary(&s.latency_raw.summary()),
                decode_errors: s.decode_errors,
                implausible: s.implausible,
                slow: s.slow,
                complete: s.complete(),
                outcome: s.outcome.as_str().to_owned(),
                repaired: s.repaired(),
                unrecoverable: s.missing(),
                naks_sent: s.naks_sent,
                repair_latency_ns: record_summary(&s.repair_latency.summary()),
                epochs: self.epochs_record(s),
                epochs_unlisted: s.epochs_unlisted,
                clock: clock_record(s.clock),
                idle_gaps: self.idle.get(i).map(|(g, _)| g.clone()).unwrap_or_default(),
                idle_unmatched: self.idle.get(i).map_or(0, |(_, u)| *u),
            })
            .collect();
        FanoutJson {
            transport: self.transport.as_str().to_owned(),
            topics: self.feed.topics as u64,
            size: self.feed.payload_bytes as u64,
            rate: self.feed.rate_per_s,
            published: if self.authoritative {
                p.published
            } else {
                self.subscribers.iter().map(|s| self.expected_for(s)).max().unwrap_or(0)
            },
            rate_per_s: p.rate_per_s.round(),
            publisher: PublisherJson {
                batches: p.batches,
                mean_batch: if p.batches > 0 { p.published as f64 / p.batches as f64 } else { 0.0 },
                batch_sizes_log2: p.batch_sizes.clone(),
                stalls: self.stalls,
                max_lag_ns: self.max_lag_ns,
                acks: p.acks as u64,
                epoch: hex_epoch(p.epoch),
                departures: p.departures,
                naks: p.naks,
                retransmitted: p.retransmitted,
                gone: p.gone,
                ring_held: p.ring_held,
                ring_evicted: p.ring_evicted,
            },
            subscribers,
            merged: MergedJson {
                received: sat_sum(self.subscribers.iter().map(SubscriberReport::received)),
                repaired: sat_sum(self.subscribers.iter().map(SubscriberReport::repaired)),
                missing: sat_sum(self.subscribers.iter().map(SubscriberReport::missing)),
                latency_ns: record_summary(&self.merged_latency().summary()),
                latency_raw_ns: record_summary(&self.merged_latency_raw().summary()),
            },
            accounting_closes: self.accounting_closes(),
        }
    }

    /// [`to_record`](Self::to_record) as one line of JSON.
    pub(crate) fn to_json(&self) -> String {
        to_line(&self.to_record())
    }

    /// A human-readable report.
    pub(crate) fn to_text(&self) -> String {
        use std::fmt::Write;
        let mut o = String::new();
        let p = &self.publisher;
        let paced = self.feed.rate_per_s > 0 || !self.idle.is_empty();
        let _ = writeln!(
            o,
            "fan-out over {}: {} topics, {} B payloads, target {}",
            self.transport,
            self.feed.topics,
            self.feed.payload_bytes,
            match self.idle.first() {
                Some((gaps, _)) => format!(
                    "ticks after idle gaps of {}",
                    gaps.iter().map(|g| gap_words(g.gap_ns)).collect::<Vec<_>>().join(", ")
                ),
                None if paced => format!("{} ticks/s", self.feed.rate_per_s),
                None => "as fast as possible".into(),
            }
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
                "  {label:<11} p50 {:>9.1}  p90 {:>9.1}  p99 {:>9.1}  p99.9 {:>9.1}  p99.99 {:>9.1}  max {:>9.1}  mean {:>9.1}  [us]",
                us(s.p50), us(s.p90), us(s.p99), us(s.p99_9), us(s.p99_99), us(s.max), s.mean / 1000.0
            );
        };
        let corrected = if paced { "corrected" } else { "latency" };
        for (i, s) in self.subscribers.iter().enumerate() {
            let _ = writeln!(
                o,
                "{}: {}; received {} of {}, repaired {}, missing {}{}, {:.0} ticks/s{}{}{}",
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
                if s.implausible > 0 {
                    format!(", {} implausible sequences refused", s.implausible)
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
            if let Some(words) = clock_words(s.clock) {
                let _ = writeln!(o, "  {words}");
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
            for g in self.idle.get(i).map_or(&[][..], |(g, _)| g) {
                line(&mut o, &format!("after {}", gap_words(g.gap_ns)), &g.latency_ns);
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

fn clock_record(c: ClockSync) -> ClockJson {
    match c {
        ClockSync::Estimated { offset_ns, uncertainty_ns, samples } => {
            ClockJson { kind: c.as_str().into(), offset_ns, uncertainty_ns, samples }
        }
        _ => ClockJson { kind: c.as_str().into(), ..ClockJson::default() },
    }
}

/// What a subscriber's latency figures mean, in words, when they are not exact.
fn clock_words(c: ClockSync) -> Option<String> {
    match c {
        ClockSync::SameHost => None,
        ClockSync::Unknown => Some(
            "clock: unknown (no side channel to ask): one-way latency assumes the publisher shares this \
             host's CLOCK_MONOTONIC"
                .into(),
        ),
        ClockSync::Estimated { offset_ns, uncertainty_ns, samples } => Some(format!(
            "clock: the publisher runs on another host; one-way latency is corrected by an offset of {:.1} us \
             estimated over {samples} round trips, so each figure is within +-{:.1} us, not exact",
            offset_ns as f64 / 1000.0,
            uncertainty_ns as f64 / 1000.0
        )),
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

/// A sum that stops at `u64::MAX` instead of wrapping (counts from peers can be huge).
fn sat_sum(values: impl Iterator<Item = u64>) -> u64 {
    values.fold(0, u64::saturating_add)
}

fn rate(n: u64, ns: u64) -> f64 {
    if ns == 0 {
        0.0
    } else {
        (n as f64 * 1e9 / ns as f64).round()
    }
}
