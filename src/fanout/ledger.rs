//! The subscriber's sans-IO core: per-topic sequence accounting, the snapshot join, latency,
//! the slow-consumer window, and the events handed to the application.
//!
//! It owns no socket and reads no clock: the worker passes in each message's frames and
//! the time, and sends what the ledger asks for (the end acknowledgement).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::config::SubscriberConfig;
use super::event::{Delivered, Event};
use super::report::SubscriberReport;
use super::seq::{SeqOutcome, SeqTracker};
use super::wire::{self, Kind};
use crate::error::{Error, Result};
use crate::metrics::LatencyRecorder;

/// Missing ticks per received-or-missing tick, over one second, above which a subscriber
/// reports itself too slow (loudly, in the log and in its report).
pub const SLOW_GAP_RATE: f64 = 0.001;

/// How long one slow-consumer (and live latency) window lasts.
const WINDOW_NS: u64 = 1_000_000_000;

/// Most updates held while waiting for a snapshot before the subscriber gives up on it.
const MAX_HELD: usize = 1 << 20;
/// Most payload bytes held while waiting for a snapshot.
const MAX_HELD_BYTES: usize = 64 << 20;

/// Called on the worker thread with every event a subscriber delivers.
pub(crate) type Sink = Box<dyn FnMut(&Event<'_>) + Send>;

/// Counters a subscriber updates as it goes, for threads that watch it.
#[derive(Debug, Default)]
pub(crate) struct SubscriberLive {
    /// Ticks received so far.
    pub(crate) received: AtomicU64,
    /// Ticks known missing so far.
    pub(crate) missing: AtomicU64,
    /// p99 latency of the last window, in nanoseconds.
    pub(crate) p99_ns: AtomicU64,
}

/// An update received before the snapshot it must follow.
struct HeldTick {
    topic: usize,
    seq: u64,
    sent_ns: u64,
    intended_ns: u64,
    /// Where its payload sits in `Held::payloads` (empty when payloads are not kept).
    payload: std::ops::Range<usize>,
}

/// Updates held during a snapshot join, payloads in one buffer.
#[derive(Default)]
struct Held {
    ticks: Vec<HeldTick>,
    payloads: Vec<u8>,
}

/// Where a joining subscriber is in the snapshot exchange.
enum Join {
    /// No snapshot wanted, or it came: apply updates as they come.
    Live,
    /// Snapshot requested; updates are held until it arrives.
    Waiting(Held),
}

/// The subscriber's accounting, owned by its worker.
pub(crate) struct Ledger {
    name: String,
    /// Topic name to index into `trackers`.
    index: HashMap<Vec<u8>, usize>,
    names: Vec<String>,
    trackers: Vec<SeqTracker>,
    ended: usize,
    last_values: Vec<(u64, Vec<u8>)>,
    keep_values: bool,
    latency: LatencyRecorder,
    latency_raw: LatencyRecorder,
    /// Latency of the current window, for live progress.
    window: LatencyRecorder,
    window_start: u64,
    window_received: u64,
    window_missing: u64,
    first_ns: u64,
    last_ns: u64,
    decode_errors: u64,
    slow: bool,
    join: Join,
    live: Arc<SubscriberLive>,
    /// Where ticks, gaps and ends go; `None`: only the report is kept.
    sink: Option<Sink>,
}

impl Ledger {
    /// A ledger for `cfg`'s topics; `sink` receives every event.
    pub(crate) fn new(cfg: &SubscriberConfig, live: Arc<SubscriberLive>, sink: Option<Sink>) -> Self {
        let topics = &cfg.topics;
        Ledger {
            name: cfg.name.clone(),
            index: topics.iter().enumerate().map(|(i, t)| (t.as_bytes().to_vec(), i)).collect(),
            names: topics.to_vec(),
            trackers: topics.iter().map(|_| SeqTracker::new()).collect(),
            ended: 0,
            last_values: topics.iter().map(|_| (0, Vec::new())).collect(),
            keep_values: cfg.keep_last_values,
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
            join: if cfg.snapshot_join { Join::Waiting(Held::default()) } else { Join::Live },
            live,
            sink,
        }
    }

    /// True once every topic's end marker has arrived and no snapshot is awaited: time to
    /// acknowledge and stop.
    pub(crate) fn all_ended(&self) -> bool {
        self.ended == self.trackers.len() && matches!(self.join, Join::Live)
    }

    /// Counts a message refused before it reached the ledger (a wrong frame count) and
    /// returns the error to trace.
    pub(crate) fn refuse(&mut self, reason: String) -> Error {
        self.decode_errors += 1;
        Error::Decode { context: format!("{}: SUB socket", self.name), reason }
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

    /// Applies a tick and hands it (and the gap before it) to the sink.
    #[allow(clippy::too_many_arguments)]
    fn apply_and_deliver(
        &mut self,
        k: usize,
        seq: u64,
        sent_ns: u64,
        intended_ns: u64,
        payload: &[u8],
        received_ns: u64,
        now: u64,
    ) {
        let outcome = self.apply(k, seq, sent_ns, intended_ns, now);
        let Some(sink) = self.sink.as_mut() else { return };
        let topic = self.names[k].as_str();
        match outcome {
            SeqOutcome::Stale | SeqOutcome::Invalid => return,
            SeqOutcome::Gap(g) => sink(&Event::Gap { topic, topic_index: k, first: g.first, last: g.last }),
            SeqOutcome::InOrder => {}
        }
        sink(&Event::Tick(Delivered {
            topic,
            topic_index: k,
            seq,
            sent_ns,
            intended_ns,
            received_ns,
            payload,
        }));
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

    /// Takes one tick message (`[group][body]` or `group 0x00 body`) received at `now`.
    ///
    /// # Errors
    /// [`Error::Decode`] for a malformed message (counted in the report); records decoded
    /// before the bad one still count.
    pub(crate) fn on_message(&mut self, frames: &[&[u8]], now: u64) -> Result<()> {
        let res = self.on_message_inner(frames, now);
        if let Err(e) = res {
            self.decode_errors += 1;
            return Err(match e {
                Error::Decode { reason, .. } => {
                    Error::Decode { context: format!("{}: SUB socket", self.name), reason }
                }
                other => other,
            });
        }
        Ok(())
    }

    fn on_message_inner(&mut self, frames: &[&[u8]], now: u64) -> Result<()> {
        let (_group, body) = wire::split_frames(frames)?;
        let d = wire::decode(body)?;
        if self.first_ns == 0 {
            self.first_ns = now;
        }
        self.last_ns = now;
        for rec in d.records() {
            let rec = rec?;
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
            if self.keep_values {
                let v = &mut self.last_values[k];
                v.0 = rec.seq;
                v.1.clear();
                v.1.extend_from_slice(rec.payload);
            }
            let keep_payload = self.sink.is_some();
            match &mut self.join {
                Join::Live => {
                    self.apply_and_deliver(k, rec.seq, rec.sent_ns, rec.intended_ns, rec.payload, now, now)
                }
                Join::Waiting(held)
                    if held.ticks.len() < MAX_HELD
                        && (!keep_payload || held.payloads.len() + rec.payload.len() <= MAX_HELD_BYTES) =>
                {
                    let at = held.payloads.len();
                    if keep_payload {
                        held.payloads.extend_from_slice(rec.payload);
                    }
                    held.ticks.push(HeldTick {
                        topic: k,
                        seq: rec.seq,
                        sent_ns: rec.sent_ns,
                        intended_ns: rec.intended_ns,
                        payload: at..held.payloads.len(),
                    });
                }
                Join::Waiting(_) => {
                    return Err(Error::Decode {
                        context: String::new(),
                        reason: format!(
                            "no snapshot after {} held updates ({} payload bytes); is the side channel answering?",
                            MAX_HELD, MAX_HELD_BYTES
                        ),
                    })
                }
            }
        }
        self.roll_window(now);
        if self.window_received % 1024 == 0 {
            self.publish_live();
        }
        Ok(())
    }

    /// Applies everything held for the snapshot, as received now.
    fn release_held(&mut self, now: u64) {
        let Join::Waiting(held) = std::mem::replace(&mut self.join, Join::Live) else { return };
        for t in &held.ticks {
            let payload = &held.payloads[t.payload.clone()];
            self.apply_and_deliver(t.topic, t.seq, t.sent_ns, t.intended_ns, payload, now, now);
        }
    }

    /// Takes the snapshot reply: each topic starts after its last sequence, then the held
    /// updates apply.
    ///
    /// # Errors
    /// [`Error::Decode`] for a malformed snapshot (the join keeps waiting).
    pub(crate) fn on_snapshot(&mut self, body: &[u8], now: u64) -> Result<()> {
        let entries = wire::decode_snapshot(body).map_err(|e| match e {
            Error::Decode { reason, .. } => {
                Error::Decode { context: format!("{}: snapshot reply", self.name), reason }
            }
            other => other,
        })?;
        for e in entries {
            if let Some(&k) = self.index.get(&e.topic) {
                self.trackers[k].start_after_snapshot(e.last_seq);
                self.last_values[k] = (e.last_seq, e.last_value);
            }
        }
        self.release_held(now);
        self.publish_live();
        Ok(())
    }

    /// The timer: rolls the slow-consumer window once it is a second old.
    pub(crate) fn on_timer(&mut self, now: u64) {
        if self.window_start != 0 && now.saturating_sub(self.window_start) >= WINDOW_NS {
            self.roll_window(now);
            self.publish_live();
        }
    }

    fn roll_window(&mut self, now: u64) {
        if self.window_start == 0 {
            self.window_start = now;
            return;
        }
        if now.saturating_sub(self.window_start) < WINDOW_NS {
            return;
        }
        self.judge_window(now);
    }

    /// Reports loudly when the current window lost more than [`SLOW_GAP_RATE`] of its ticks,
    /// then starts a new window.
    fn judge_window(&mut self, now: u64) {
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

    fn publish_live(&self) {
        let received: u64 = self.trackers.iter().map(SeqTracker::received).sum();
        let missing: u64 = self.trackers.iter().fold(0, |a, t| a.saturating_add(t.missing()));
        self.live.received.store(received, Ordering::Relaxed);
        self.live.missing.store(missing, Ordering::Relaxed);
    }

    /// Closes the books at `now`: updates held for a snapshot that never came still count
    /// as received, the last window is judged, and the report is built.
    pub(crate) fn finish(&mut self, now: u64) -> SubscriberReport {
        if let Join::Waiting(held) = &self.join {
            if !held.ticks.is_empty() {
                tracing::warn!(subscriber = %self.name, held = held.ticks.len(), "no snapshot arrived; applying the updates held for it");
            }
        }
        self.release_held(now);
        // The last, partial window counts too: a short run can be too slow.
        self.judge_window(now);
        self.publish_live();
        SubscriberReport {
            name: self.name.clone(),
            topics: self.names.iter().cloned().zip(self.trackers.iter().cloned()).collect(),
            latency: std::mem::take(&mut self.latency),
            latency_raw: std::mem::take(&mut self.latency_raw),
            elapsed_ns: self.last_ns.saturating_sub(self.first_ns),
            decode_errors: self.decode_errors,
            slow: self.slow,
            complete: self.ended == self.trackers.len(),
            last_values: if self.keep_values {
                self.names
                    .iter()
                    .zip(&self.last_values)
                    .map(|(n, (seq, v))| (n.clone(), *seq, v.clone()))
                    .collect()
            } else {
                Vec::new()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::fanout::wire::BodyWriter;

    fn data(ticks: &[(&str, u64)]) -> Vec<u8> {
        let mut w = BodyWriter::new(Kind::Data);
        for (t, s) in ticks {
            w.push(t.as_bytes(), *s, 10, format!("{t}{s}").as_bytes());
        }
        w.stamp_sent(20);
        w.as_bytes().to_vec()
    }

    fn control(kind: Kind, last: &[(&str, u64)]) -> Vec<u8> {
        let mut w = BodyWriter::new(kind);
        for (t, s) in last {
            w.push_last(t.as_bytes(), *s, b"");
        }
        w.as_bytes().to_vec()
    }

    fn ledger(snapshot_join: bool) -> (Ledger, Arc<Mutex<Vec<String>>>) {
        let cfg = SubscriberConfig { snapshot_join, ..SubscriberConfig::for_topics(&["a", "b"]) };
        let events = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&events);
        let sink: Sink = Box::new(move |e: &Event<'_>| {
            seen.lock().unwrap().push(match *e {
                Event::Tick(t) => {
                    format!("tick {} {} {}", t.topic, t.seq, String::from_utf8_lossy(t.payload))
                }
                Event::Gap { topic, first, last, .. } => format!("gap {topic} {first}..={last}"),
                Event::End { topic, last_seq, .. } => format!("end {topic} {last_seq}"),
            });
        });
        (Ledger::new(&cfg, Arc::default(), Some(sink)), events)
    }

    fn texts(events: &Mutex<Vec<String>>) -> Vec<String> {
        events.lock().unwrap().clone()
    }

    #[test]
    fn ticks_gaps_and_ends_are_delivered_in_stream_order() {
        let (mut l, events) = ledger(false);
        l.on_message(&[b"g0.", &data(&[("a", 1), ("b", 1), ("a", 3), ("x", 9)])], 100).unwrap();
        l.on_message(&[b"g0.", &control(Kind::Heartbeat, &[("a", 3), ("b", 2)])], 200).unwrap();
        assert!(!l.all_ended());
        l.on_message(&[b"g0.", &control(Kind::End, &[("a", 4), ("b", 2)])], 300).unwrap();
        assert!(l.all_ended());
        assert_eq!(
            texts(&events),
            [
                "tick a 1 a1",
                "tick b 1 b1",
                "gap a 2..=2",
                "tick a 3 a3",
                "gap b 2..=2",
                "gap a 4..=4",
                "end a 4",
                "end b 2"
            ]
        );
        let r = l.finish(400);
        assert_eq!((r.received(), r.missing(), r.decode_errors), (3, 3, 0));
        assert!(r.complete);
        assert_eq!(r.latency.summary().count, 3);
        assert_eq!(r.elapsed_ns, 200);
    }

    #[test]
    fn a_join_holds_updates_with_their_payloads_until_the_snapshot() {
        let (mut l, events) = ledger(true);
        l.on_message(&[b"g0.", &data(&[("a", 5), ("a", 6), ("b", 2)])], 100).unwrap();
        assert!(texts(&events).is_empty(), "held");
        let mut snap = Vec::new();
        wire::encode_snapshot(
            &[
                wire::SnapshotEntry { topic: b"a".to_vec(), last_seq: 5, last_value: b"v".to_vec() },
                wire::SnapshotEntry { topic: b"b".to_vec(), last_seq: 1, last_value: vec![] },
            ],
            &mut snap,
        );
        l.on_snapshot(&snap, 150).unwrap();
        assert_eq!(texts(&events), ["tick a 6 a6", "tick b 2 b2"], "the stale one dropped, payloads kept");
        let r = l.finish(200);
        assert_eq!((r.received(), r.missing(), r.from_snapshot()), (2, 0, 6));
    }

    #[test]
    fn garbage_is_counted_with_the_subscribers_name() {
        let (mut l, _) = ledger(false);
        let e = l.on_message(&[b"g0.", &[9, 0, 0, 0]], 1).unwrap_err();
        assert!(e.to_string().contains("sub: SUB socket") && e.to_string().contains("version 9"), "{e}");
        assert!(l.on_message(&[b"no nul"], 1).is_err());
        assert!(l.on_snapshot(b"\x01", 1).unwrap_err().to_string().contains("snapshot reply"));
        let e = l.refuse("3 frames".into());
        assert!(e.to_string().contains("3 frames"));
        assert_eq!(l.finish(2).decode_errors, 3, "the snapshot reply is not a feed message");
    }

    #[test]
    fn the_slow_window_is_judged_on_the_callers_clock() {
        let (mut l, _) = ledger(false);
        l.on_message(&[b"g0.", &data(&[("a", 1)])], 1).unwrap();
        l.on_message(&[b"g0.", &data(&[("a", 100)])], 2).unwrap();
        l.on_timer(WINDOW_NS / 2);
        assert!(!l.slow, "the window is not over yet");
        l.on_timer(WINDOW_NS + 1);
        assert!(l.slow, "98 of 100 lost in the window");
    }
}
