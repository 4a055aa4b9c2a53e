//! The tick subscriber: a worker handler that unpacks batches, finds every gap, times every tick.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::seq::{Gap, SeqOutcome, SeqTracker};
use super::tick_subscriber::{Delivered, Event};
use super::wire::{self, Kind};
use crate::engine::{Handler, SocketId, WorkerCtx};
use crate::error::{Error, Result};
use crate::message::Inbound;
use crate::metrics::LatencyRecorder;
use crate::sys::now_ns;

/// Missing ticks per received-or-missing tick, over one second, above which a subscriber
/// reports itself too slow (loudly, in the log and in its report).
pub const SLOW_GAP_RATE: f64 = 0.001;

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
    /// feed is paced, else from its send time.
    pub latency: LatencyRecorder,
    /// Latency from each tick's send time to its receipt.
    pub latency_raw: LatencyRecorder,
    /// From the first tick received to the last, in nanoseconds.
    pub elapsed_ns: u64,
    /// Messages that could not be decoded (counted, traced, skipped).
    pub decode_errors: u64,
    /// Whether the gap rate ever passed [`SLOW_GAP_RATE`] over a second.
    pub slow: bool,
    /// Whether every topic's end marker arrived.
    pub complete: bool,
    /// The last payload received per topic (conflated consumers want only this).
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

    /// Closes the accounting with the publisher's final sequences, for topics whose end
    /// marker never arrived (the publisher's report is the authority in one process).
    pub fn close_with(&mut self, last_seq: &[(String, u64)]) {
        for (name, t) in &mut self.topics {
            if t.ended_at().is_none() {
                if let Some((_, last)) = last_seq.iter().find(|(n, _)| n == name) {
                    t.on_end(*last);
                }
            }
        }
    }
}

/// Counters a subscriber updates as it goes, for live progress.
#[derive(Debug, Default)]
pub struct SubscriberLive {
    /// Ticks received so far.
    pub received: AtomicU64,
    /// Ticks known missing so far.
    pub missing: AtomicU64,
    /// p99 latency of the last second, in nanoseconds.
    pub p99_ns: AtomicU64,
}

/// Where a late joiner is in the snapshot exchange.
enum Join {
    /// No snapshot wanted: apply updates as they come.
    Live,
    /// Snapshot requested; updates are held until it arrives.
    Waiting { held: Vec<(usize, u64, u64, u64)> },
}

/// Most updates held while waiting for a snapshot before the subscriber gives up on it.
const MAX_HELD: usize = 1 << 20;

/// The subscriber's state, owned by its worker.
pub(super) struct Subscriber {
    name: String,
    /// DEALER to the publisher's snapshot ROUTER (snapshot requests, end acknowledgements).
    dealer: Option<SocketId>,
    hello: Vec<u8>,
    /// Topic name to index into `trackers`.
    index: HashMap<Vec<u8>, usize>,
    names: Vec<String>,
    trackers: Vec<SeqTracker>,
    ended: usize,
    last_values: Vec<(u64, Vec<u8>)>,
    keep_values: bool,
    latency: LatencyRecorder,
    latency_raw: LatencyRecorder,
    /// Latency of the current second, for live progress.
    window: LatencyRecorder,
    window_start: u64,
    window_received: u64,
    window_missing: u64,
    first_ns: u64,
    last_ns: u64,
    decode_errors: u64,
    slow: bool,
    consumer_work_ns: u64,
    join: Join,
    live: Arc<SubscriberLive>,
    reports: crossbeam_channel::Sender<SubscriberReport>,
    /// Where an app-driven subscriber hands ticks, gaps and ends (see `TickSubscriber`).
    sink: Option<Sink>,
}

/// Called on the worker thread with every event an app-driven subscriber delivers.
pub(super) type Sink = Box<dyn FnMut(&Event<'_>) + Send>;

impl Subscriber {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        name: String,
        dealer: Option<SocketId>,
        hello: Vec<u8>,
        topics: &[String],
        snapshot: bool,
        keep_values: bool,
        consumer_work: Duration,
        live: Arc<SubscriberLive>,
        reports: crossbeam_channel::Sender<SubscriberReport>,
    ) -> Self {
        Subscriber {
            name,
            dealer,
            hello,
            index: topics.iter().enumerate().map(|(i, t)| (t.as_bytes().to_vec(), i)).collect(),
            names: topics.to_vec(),
            trackers: topics.iter().map(|_| SeqTracker::new()).collect(),
            ended: 0,
            last_values: topics.iter().map(|_| (0, Vec::new())).collect(),
            keep_values,
            latency: LatencyRecorder::new(),
            latency_raw: LatencyRecorder::new(),
            window: LatencyRecorder::new(),
            window_start: 0,
            window_received: 0,
            window_missing: 0,
            first_ns: 0,
            last_ns: 0,
            decode_errors: 0,
            slow: false,
            consumer_work_ns: consumer_work.as_nanos() as u64,
            join: if snapshot { Join::Waiting { held: Vec::new() } } else { Join::Live },
            live,
            reports,
            sink: None,
        }
    }

    /// Hands every in-order tick, every gap found and every topic's end to `sink`, on the
    /// worker thread (snapshot joins hold updates without their payloads, so they are not
    /// combined with a sink: the caller refuses that).
    pub(super) fn with_sink(mut self, sink: Sink) -> Self {
        self.sink = Some(sink);
        self
    }

    /// Applies one tick: sequence accounting and latency.
    fn apply(&mut self, k: usize, seq: u64, sent_ns: u64, intended_ns: u64, now: u64) -> SeqOutcome {
        let before = self.trackers[k].missing();
        let outcome = self.trackers[k].on_tick(seq);
        match outcome {
            SeqOutcome::Stale => return outcome,
            SeqOutcome::Invalid => {
                self.decode_errors += 1;
                return outcome;
            }
            _ => {}
        }
        self.window_missing += self.trackers[k].missing() - before;
        self.window_received += 1;
        let raw = now.saturating_sub(sent_ns);
        let from = if intended_ns != 0 { intended_ns } else { sent_ns };
        let corrected = now.saturating_sub(from);
        self.latency_raw.record(raw);
        self.latency.record(corrected);
        self.window.record(corrected);
        outcome
    }

    fn on_control(&mut self, k: usize, kind: Kind, last_seq: u64) {
        let t = &mut self.trackers[k];
        let before = t.missing();
        let (gap, ended) = match kind {
            Kind::End if t.ended_at().is_none() => {
                self.ended += 1;
                (t.on_end(last_seq), true)
            }
            Kind::End => (None, false),
            _ => (t.on_last(last_seq), false),
        };
        self.window_missing += self.trackers[k].missing() - before;
        if let Some(sink) = self.sink.as_mut() {
            let topic = self.names[k].as_str();
            if let Some(g) = gap {
                sink(&Event::Gap { topic, topic_index: k, first: g.first, last: g.last });
            }
            if ended {
                sink(&Event::End { topic, topic_index: k, last_seq });
            }
        }
    }

    fn roll_window(&mut self, now: u64) {
        if self.window_start == 0 {
            self.window_start = now;
            return;
        }
        if now.saturating_sub(self.window_start) < 1_000_000_000 {
            return;
        }
        self.judge_window();
    }

    /// Reports loudly when the current window lost more than [`SLOW_GAP_RATE`] of its ticks,
    /// then starts a new window.
    fn judge_window(&mut self) {
        let now = now_ns();
        let total = self.window_received + self.window_missing;
        if total > 0 && self.window_missing as f64 / total as f64 > SLOW_GAP_RATE {
            self.slow = true;
            tracing::warn!(
                subscriber = %self.name,
                missing = self.window_missing,
                received = self.window_received,
                "subscriber too slow: {:.2}% of ticks lost in the last window (up to 1 s)",
                100.0 * self.window_missing as f64 / total as f64
            );
        }
        if !self.window.is_empty() {
            // One `tracing` span per interval (fields in ns); shown with RUST_LOG=info.
            let summary = self.window.summary();
            self.live.p99_ns.store(summary.p99, Ordering::Relaxed);
            summary.emit("fanout subscriber");
        }
        self.window.reset();
        self.window_start = now;
        self.window_received = 0;
        self.window_missing = 0;
    }

    fn on_snapshot(&mut self, ctx: &mut WorkerCtx<'_>, body: &[u8]) -> Result<()> {
        let entries = wire::decode_snapshot(body)
            .map_err(|reason| Error::Decode { context: format!("{}: snapshot reply", self.name), reason })?;
        for e in entries {
            if let Some(&k) = self.index.get(&e.topic) {
                self.trackers[k].start_after_snapshot(e.last_seq);
                self.last_values[k] = (e.last_seq, e.last_value);
            }
        }
        let held = match std::mem::replace(&mut self.join, Join::Live) {
            Join::Waiting { held } => held,
            Join::Live => Vec::new(),
        };
        let now = now_ns();
        for (k, seq, sent, intended) in held {
            self.apply(k, seq, sent, intended, now);
        }
        self.publish_live();
        let _ = ctx;
        Ok(())
    }

    fn publish_live(&self) {
        let received: u64 = self.trackers.iter().map(SeqTracker::received).sum();
        let missing: u64 = self.trackers.iter().map(SeqTracker::missing).sum();
        self.live.received.store(received, Ordering::Relaxed);
        self.live.missing.store(missing, Ordering::Relaxed);
    }

    fn on_tick_message(&mut self, ctx: &mut WorkerCtx<'_>, msg: &Inbound<'_>) -> Result<()> {
        // Built only on the error path: the hot path allocates nothing.
        fn bad(name: &str, reason: String) -> Error {
            Error::Decode { context: format!("{name}: SUB socket"), reason }
        }
        let n = msg.len();
        if n > 2 {
            return Err(bad(&self.name, format!("{n} frames; a tick message has 1 or 2")));
        }
        let mut frames = [&[][..]; 2];
        for (slot, f) in frames.iter_mut().zip(msg.iter()) {
            *slot = f;
        }
        let (_group, body) = wire::split_frames(&frames[..n]).map_err(|r| bad(&self.name, r))?;
        let d = wire::decode(body).map_err(|r| bad(&self.name, r))?;
        let now = now_ns();
        if self.first_ns == 0 {
            self.first_ns = now;
        }
        self.last_ns = now;
        for rec in d.records() {
            let rec = rec.map_err(|r| bad(&self.name, r))?;
            // A group carries topics this subscriber does not follow: skip them.
            let Some(&k) = self.index.get(rec.topic) else { continue };
            if d.kind != Kind::Data {
                if self.keep_values && rec.seq > self.last_values[k].0 {
                    let v = &mut self.last_values[k];
                    v.0 = rec.seq;
                    v.1.clear();
                    v.1.extend_from_slice(rec.payload);
                }
                if matches!(self.join, Join::Live) {
                    self.on_control(k, d.kind, rec.seq);
                }
                continue;
            }
            if self.consumer_work_ns > 0 {
                let until = now_ns() + self.consumer_work_ns;
                while now_ns() < until {
                    std::hint::spin_loop();
                }
            }
            if self.keep_values {
                let v = &mut self.last_values[k];
                v.0 = rec.seq;
                v.1.clear();
                v.1.extend_from_slice(rec.payload);
            }
            match &mut self.join {
                Join::Live => {
                    let outcome = self.apply(k, rec.seq, rec.sent_ns, rec.intended_ns, now);
                    if let Some(sink) = self.sink.as_mut() {
                        deliver(sink, &self.names[k], k, outcome, &rec, now);
                    }
                }
                Join::Waiting { held } if held.len() < MAX_HELD => {
                    held.push((k, rec.seq, rec.sent_ns, rec.intended_ns))
                }
                Join::Waiting { .. } => {
                    return Err(bad(&self.name, format!("no snapshot after {MAX_HELD} held updates")))
                }
            }
        }
        self.roll_window(now);
        if self.ended == self.trackers.len() && matches!(self.join, Join::Live) {
            if let Some(dealer) = self.dealer {
                let _ = ctx.send_parts(dealer, &[wire::DONE_ACK, &self.hello]);
            }
            ctx.stop();
        }
        if self.window_received % 1024 == 0 {
            self.publish_live();
        }
        Ok(())
    }
}

impl Handler for Subscriber {
    fn on_start(&mut self, ctx: &mut WorkerCtx<'_>) -> Result<()> {
        if let (Join::Waiting { .. }, Some(dealer)) = (&self.join, self.dealer) {
            ctx.send_parts(dealer, &[wire::SNAPSHOT_REQUEST, &self.hello])?;
        }
        Ok(())
    }

    fn on_message(&mut self, ctx: &mut WorkerCtx<'_>, socket: SocketId, msg: &Inbound<'_>) -> Result<()> {
        if Some(socket) == self.dealer {
            return self.on_snapshot(ctx, msg.last());
        }
        let r = self.on_tick_message(ctx, msg);
        if r.is_err() {
            self.decode_errors += 1;
        }
        r
    }

    fn on_tick(&mut self, _ctx: &mut WorkerCtx<'_>) -> Result<bool> {
        let now = now_ns();
        if self.window_start != 0 && now.saturating_sub(self.window_start) >= 1_000_000_000 {
            self.roll_window(now);
            self.publish_live();
        }
        Ok(false)
    }

    fn on_stop(&mut self, _ctx: &mut WorkerCtx<'_>) {
        // Stopped before the snapshot came: what was received still counts as received.
        if let Join::Waiting { held } = std::mem::replace(&mut self.join, Join::Live) {
            if !held.is_empty() {
                tracing::warn!(subscriber = %self.name, held = held.len(), "no snapshot arrived; applying the updates held for it");
            }
            let now = now_ns();
            for (k, seq, sent, intended) in held {
                self.apply(k, seq, sent, intended, now);
            }
        }
        // The last, partial window counts too: a short run can be too slow.
        self.judge_window();
        self.publish_live();
        let report = SubscriberReport {
            name: self.name.clone(),
            topics: self.names.iter().cloned().zip(self.trackers.iter().cloned()).collect(),
            latency: std::mem::take(&mut self.latency),
            latency_raw: std::mem::take(&mut self.latency_raw),
            elapsed_ns: self.last_ns.saturating_sub(self.first_ns),
            decode_errors: self.decode_errors,
            slow: self.slow,
            complete: self.ended == self.trackers.len(),
            last_values: self
                .names
                .iter()
                .zip(&self.last_values)
                .map(|(n, (seq, v))| (n.clone(), *seq, v.clone()))
                .collect(),
        };
        let _ = self.reports.send(report);
    }
}

/// Hands a received tick to the application: the gap before it first, if any; nothing for
/// a stale or invalid sequence.
fn deliver(sink: &mut Sink, topic: &str, k: usize, outcome: SeqOutcome, rec: &wire::Tick<'_>, now: u64) {
    match outcome {
        SeqOutcome::Stale | SeqOutcome::Invalid => return,
        SeqOutcome::Gap(g) => sink(&Event::Gap { topic, topic_index: k, first: g.first, last: g.last }),
        SeqOutcome::InOrder => {}
    }
    sink(&Event::Tick(Delivered {
        topic,
        topic_index: k,
        seq: rec.seq,
        sent_ns: rec.sent_ns,
        intended_ns: rec.intended_ns,
        received_ns: now,
        payload: rec.payload,
    }));
}
