//! The subscriber's sans-IO core: per-epoch, per-topic sequence accounting, the snapshot
//! join, gap repair (which ranges to ask for, when to ask again, when to give up), the
//! publisher's liveness, the plausibility of what the feed claims, latency, the
//! slow-consumer window, and the events handed to the application.
//!
//! It owns no socket and reads no clock: the worker passes in each message's frames and
//! the time, sends the requests the ledger composes (snapshot, repair), and stops when it
//! says so.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::config::SubscriberConfig;
use super::event::{Delivered, Event};
use super::report::{ClockSync, EpochOutcome, EpochReport, Outcome, SubscriberReport};
use super::seq::{Gap, SeqOutcome, SeqTracker};
use super::wire::{self, BodyWriter, Kind};
use crate::error::{Error, Result};
use crate::metrics::{IntervalCounts, IntervalSender, LatencyRecorder, MessagingAttributes, OperationType};

/// Missing ticks per received-or-missing tick, over one second, above which a subscriber
/// reports itself too slow (loudly, in the log and in its report).
pub const SLOW_GAP_RATE: f64 = 0.001;
/// The most epochs a subscriber's report lists; older ones are summed, not listed.
pub const MAX_EPOCHS: usize = 16;

/// How long one slow-consumer (and live latency) window lasts.
const WINDOW_NS: u64 = 1_000_000_000;
/// Most updates held while waiting for a snapshot before the subscriber gives up on it.
const MAX_HELD: usize = 1 << 20;
/// Most payload bytes held while waiting for a snapshot.
const MAX_HELD_BYTES: usize = 64 << 20;
/// Most ranges asked for at once; a gap beyond them is lost at once.
const MAX_NAK_RANGES: usize = 1024;
/// Most ranges in one repair request.
const NAK_RANGES_PER_MESSAGE: usize = 64;
/// Epoch ids remembered as closed (their stragglers are ignored, never counted again).
const MAX_CLOSED_IDS: usize = 1024;
/// Clock round trips measured per publisher epoch, and the wait between them.
const CLOCK_SAMPLES: u32 = 5;
const CLOCK_SPACING_NS: u64 = 20_000_000;

/// Called on the worker thread with every event a subscriber delivers.
pub(crate) type Sink = Box<dyn FnMut(&Event<'_>) + Send>;

/// Counters a subscriber updates as it goes, for threads that watch it.
#[derive(Debug, Default)]
pub(crate) struct SubscriberLive {
    /// Ticks received so far (stream and repair).
    pub(crate) received: AtomicU64,
    /// Ticks known missing so far (lost for good, or awaiting repair).
    pub(crate) missing: AtomicU64,
    /// p99 latency of the last window, in nanoseconds.
    pub(crate) p99_ns: AtomicU64,
}

/// An update received before the snapshot it must follow.
struct HeldTick {
    epoch: u64,
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
    /// No snapshot wanted, or it came (or was given up): apply updates as they come.
    Live,
    /// A snapshot is wanted; updates are held until it arrives.
    Waiting {
        held: Held,
        /// When the join began (the first request), and when to ask (again).
        since: u64,
        due: u64,
        attempts: u32,
    },
}

/// How far one topic of an epoch has got, for judging what the feed claims next.
#[derive(Debug, Clone, Copy, Default)]
struct Progress {
    /// The first sequence accepted, and when.
    first_seq: u64,
    first_ns: u64,
    /// When the topic last moved forward.
    last_ns: u64,
}

/// One epoch's books.
struct Book {
    epoch: u64,
    topics: Vec<SeqTracker>,
    progress: Vec<Option<Progress>>,
    ended: usize,
    /// When the last message of this epoch arrived.
    last_heard: u64,
    /// Declared lost (silent past the liveness timeout) and not heard from since.
    lost: bool,
}

/// A range asked for again.
#[derive(Debug, Clone, Copy)]
struct Ask {
    topic: usize,
    gap: Gap,
    /// When it was first asked for (repair latency counts from here).
    first_asked: u64,
    /// When to ask (again); 0: at the next chance.
    due: u64,
    attempts: u32,
}

/// The subscriber's accounting, owned by its worker.
pub(crate) struct Ledger {
    name: String,
    /// Topic name to index into the trackers.
    index: HashMap<Vec<u8>, usize>,
    names: Vec<String>,
    repairs: bool,
    repair_timeout_ns: u64,
    repair_attempts: u32,
    liveness_ns: u64,
    follow: bool,
    max_seq_jump: u64,
    current: Option<Book>,
    closed: Vec<EpochReport>,
    /// Every epoch closed, listed or not, most recent last.
    closed_ids: VecDeque<u64>,
    epochs_unlisted: u64,
    unlisted_totals: [u64; 4],
    asks: Vec<Ask>,
    /// The earliest `due` of the asks (`u64::MAX`: none), so a message with nothing due
    /// costs no scan.
    next_ask: u64,
    /// A request composed for the worker to send.
    request: BodyWriter,
    naks_sent: u64,
    last_values: Vec<(u64, Vec<u8>)>,
    keep_values: bool,
    latency: LatencyRecorder,
    latency_raw: LatencyRecorder,
    repair_latency: LatencyRecorder,
    /// Latency of the current window, for live progress.
    window: LatencyRecorder,
    /// Where closed windows go ([`SubscriberConfig::intervals`]).
    intervals: Option<IntervalSender>,
    /// The window span's messaging attributes: the sender's, or `receive` on the groups.
    attributes: MessagingAttributes,
    window_start: u64,
    window_received: u64,
    window_missing: u64,
    first_ns: u64,
    last_ns: u64,
    decode_errors: u64,
    implausible: u64,
    slow: bool,
    join: Join,
    /// Why the worker should stop, once it should.
    stop: Option<Outcome>,
    /// A new epoch began since the worker last asked: introduce this subscriber to its
    /// publisher (a restarted one does not know it).
    new_epoch: bool,
    /// Whether the side channel can be asked (snapshots, repairs, the clock).
    has_side: bool,
    /// This host's clock id, what is known of the publisher's clock, the clock requests
    /// sent this epoch, and when the next is due.
    clock_id: Vec<u8>,
    clock: ClockSync,
    clock_asked: u32,
    clock_due: u64,
    /// When the timer last ran: a long gap means this subscriber was not running (a pause,
    /// a stop signal, a starved core), and silence it did not listen to proves nothing.
    last_timer: u64,
    live: Arc<SubscriberLive>,
    /// Where events go; `None`: only the report is kept.
    sink: Option<Sink>,
}

fn ns(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Replaces a decoding error's context with where the bytes came from.
fn in_context(e: Error, context: impl FnOnce() -> String) -> Error {
    match e {
        Error::Decode { reason, .. } => Error::Decode { context: context(), reason },
        other => other,
    }
}

fn malformed(reason: impl Into<String>) -> Error {
    Error::Decode { context: String::new(), reason: reason.into() }
}

impl Ledger {
    /// A ledger for `cfg`'s topics; `has_side_channel` says whether repairs and snapshots
    /// can be asked for; `sink` receives every event.
    pub(crate) fn new(
        cfg: &SubscriberConfig,
        has_side_channel: bool,
        live: Arc<SubscriberLive>,
        sink: Option<Sink>,
    ) -> Self {
        let topics = &cfg.topics;
        let join = if cfg.snapshot_join && has_side_channel {
            Join::Waiting { held: Held::default(), since: 0, due: 0, attempts: 0 }
        } else {
            Join::Live
        };
        Ledger {
            name: cfg.name.clone(),
            index: topics.iter().enumerate().map(|(i, t)| (t.as_bytes().to_vec(), i)).collect(),
            names: topics.to_vec(),
            repairs: cfg.repair && has_side_channel && !cfg.conflate,
            repair_timeout_ns: ns(cfg.repair_timeout).max(1),
            repair_attempts: cfg.repair_attempts.max(1),
            liveness_ns: ns(cfg.liveness).max(4),
            follow: cfg.follow,
            max_seq_jump: cfg.max_seq_jump,
            current: None,
            closed: Vec::new(),
            closed_ids: VecDeque::new(),
            epochs_unlisted: 0,
            unlisted_totals: [0; 4],
            asks: Vec::new(),
            next_ask: u64::MAX,
            request: BodyWriter::new(Kind::Nak, 0),
            naks_sent: 0,
            last_values: topics.iter().map(|_| (0, Vec::new())).collect(),
            keep_values: cfg.keep_last_values,
            latency: LatencyRecorder::new(),
            latency_raw: LatencyRecorder::new(),
            repair_latency: LatencyRecorder::new(),
            window: LatencyRecorder::new(),
            intervals: cfg.intervals.clone(),
            attributes: cfg.intervals.as_ref().map_or_else(
                || MessagingAttributes::new("receive", OperationType::Receive, &cfg.groups.join(",")),
                |tx| tx.attributes().clone(),
            ),
            window_start: 0,
            window_received: 0,
            window_missing: 0,
            first_ns: 0,
            last_ns: 0,
            decode_errors: 0,
            implausible: 0,
            slow: false,
            join,
            stop: None,
            new_epoch: false,
            has_side: has_side_channel,
            clock_id: crate::sys::monotonic_clock_id(),
            clock: ClockSync::Unknown,
            clock_asked: 0,
            clock_due: 0,
            last_timer: 0,
            live,
            sink,
        }
    }

    /// Why the worker should stop now (acknowledging the end first when complete), if it
    /// should.
    pub(crate) fn stop_reason(&self) -> Option<Outcome> {
        self.stop
    }

    /// Whether a new epoch began since the last call: the subscriber should introduce
    /// itself on the side channel again.
    pub(crate) fn take_new_epoch(&mut self) -> bool {
        std::mem::take(&mut self.new_epoch)
    }

    /// Counts a message refused before it reached the ledger (a wrong frame count) and
    /// returns the error to trace.
    pub(crate) fn refuse(&mut self, reason: String) -> Error {
        self.decode_errors += 1;
        Error::Decode { context: format!("{}: SUB socket", self.name), reason }
    }

    fn emit(&mut self, event: Event<'_>) {
        if let Some(sink) = self.sink.as_mut() {
            sink(&event);
        }
    }

    fn new_book(&self, epoch: u64, now: u64) -> Book {
        let tracker = if self.repairs { SeqTracker::repairing } else { SeqTracker::new };
        Book {
            epoch,
            topics: self.names.iter().map(|_| tracker()).collect(),
            progress: vec![None; self.names.len()],
            ended: 0,
            last_heard: now,
            lost: false,
        }
    }

    /// Whether a message of `epoch` may be taken: the current epoch, or a new one (which
    /// [`enter_epoch`](Self::enter_epoch) then opens); false for an epoch already closed.
    fn epoch_open_or_new(&self, epoch: u64) -> bool {
        self.current.as_ref().is_some_and(|b| b.epoch == epoch) || !self.closed_ids.contains(&epoch)
    }

    /// Makes `epoch` (open or new, see [`epoch_open_or_new`](Self::epoch_open_or_new))
    /// the current one, closing the one before.
    fn enter_epoch(&mut self, epoch: u64, now: u64) {
        if self.current.as_ref().is_some_and(|b| b.epoch == epoch) {
            return;
        }
        if self.current.is_some() {
            self.close_current(EpochOutcome::PublisherLost);
        }
        self.current = Some(self.new_book(epoch, now));
        self.new_epoch = true;
        // A restarted publisher may run on another host: its clock is measured again.
        self.clock_asked = 0;
        self.clock_due = now;
        // A new publisher's sequences start again: the last values' start with them.
        for v in &mut self.last_values {
            v.0 = 0;
        }
        self.emit(Event::Epoch { epoch });
    }

    /// Closes the current epoch: what is still awaiting repair is lost, its report kept.
    fn close_current(&mut self, outcome_if_unended: EpochOutcome) {
        let Some(mut book) = self.current.take() else { return };
        for k in 0..book.topics.len() {
            for g in book.topics[k].give_up_all() {
                self.emit_gap(book.epoch, k, g);
            }
        }
        self.asks.clear();
        self.next_ask = u64::MAX;
        let outcome = match (book.ended == book.topics.len(), book.lost) {
            (true, _) => EpochOutcome::Complete,
            (false, true) => EpochOutcome::PublisherLost,
            (false, false) => outcome_if_unended,
        };
        let report = EpochReport {
            epoch: book.epoch,
            topics: self.names.iter().cloned().zip(std::mem::take(&mut book.topics)).collect(),
            outcome,
        };
        if self.closed_ids.len() == MAX_CLOSED_IDS {
            self.closed_ids.pop_front();
        }
        self.closed_ids.push_back(book.epoch);
        if self.closed.len() == MAX_EPOCHS {
            let old = self.closed.remove(0);
            self.epochs_unlisted += 1;
            for (slot, v) in self.unlisted_totals.iter_mut().zip([
                old.received(),
                old.repaired(),
                old.missing(),
                old.from_snapshot(),
            ]) {
                *slot = slot.saturating_add(v);
            }
        }
        self.closed.push(report);
    }

    /// Lost ticks: counted in the window, handed to the sink.
    fn emit_gap(&mut self, epoch: u64, k: usize, g: Gap) {
        self.window_missing = self.window_missing.saturating_add(g.len());
        if let Some(sink) = self.sink.as_mut() {
            sink(&Event::Gap { topic: &self.names[k], topic_index: k, epoch, first: g.first, last: g.last });
        }
    }

    /// A gap the tracker found: lost at once, or asked for again.
    fn on_gap(&mut self, k: usize, g: Gap, now: u64) {
        let Some(book) = self.current.as_mut() else { return };
        let epoch = book.epoch;
        let awaiting = book.topics[k].pending_ranges().last().is_some_and(|p| p.last == g.last);
        if !awaiting {
            self.emit_gap(epoch, k, g);
            return;
        }
        if self.asks.len() >= MAX_NAK_RANGES {
            // Too many requests in flight: this one is lost at once.
            book.topics[k].give_up(g.first, g.last);
            self.emit_gap(epoch, k, g);
            return;
        }
        self.asks.push(Ask { topic: k, gap: g, first_asked: now, due: 0, attempts: 0 });
        self.next_ask = 0;
        if let Some(sink) = self.sink.as_mut() {
            sink(&Event::Repairing {
                topic: &self.names[k],
                topic_index: k,
                epoch,
                first: g.first,
                last: g.last,
            });
        }
    }

    /// Whether topic `k`'s next claim `seq` is plausible at `now`: within `max_seq_jump` of
    /// what the epoch has shown, plus four times the rate the topic has moved at over the
    /// time since it last moved (a publisher that went on during a partition is believed;
    /// one tick claiming sequence 2^64-2 is not). The first claim of a topic sets its start.
    fn plausible(&mut self, k: usize, seq: u64, now: u64) -> bool {
        let Some(book) = self.current.as_mut() else { return false };
        let known = book.topics[k].accounted_up_to();
        let Some(p) = book.progress[k] else {
            book.progress[k] = Some(Progress { first_seq: seq, first_ns: now, last_ns: now });
            return true;
        };
        if seq <= known {
            return true; // stale or a repeat: the tracker tells which
        }
        let moved = known.saturating_sub(p.first_seq);
        let span = p.last_ns.saturating_sub(p.first_ns).max(1);
        let since = now.saturating_sub(p.last_ns);
        let burst =
            u64::try_from(u128::from(moved) * u128::from(since) * 4 / u128::from(span)).unwrap_or(u64::MAX);
        let ok = seq - known <= self.max_seq_jump.saturating_add(burst);
        if ok {
            if let Some(p) = book.progress[k].as_mut() {
                p.last_ns = now;
            }
        } else {
            self.implausible += 1;
            if self.implausible <= 10 || self.implausible.is_multiple_of(1000) {
                tracing::warn!(
                    subscriber = %self.name,
                    topic = %self.names[k],
                    seq,
                    known,
                    count = self.implausible,
                    "implausible sequence refused: far past what the publisher has shown (a peer lying?)"
                );
            }
        }
        ok
    }

    /// A publisher timestamp on this subscriber's clock (0 stays 0: unknown).
    fn local(&self, ts: u64) -> u64 {
        match self.clock {
            ClockSync::Estimated { offset_ns, .. } if ts != 0 => {
                u64::try_from((i128::from(ts) - i128::from(offset_ns)).max(0)).unwrap_or(u64::MAX)
            }
            _ => ts,
        }
    }

    /// The clock request to send now, if one is due: its `t1`, this subscriber's time.
    pub(crate) fn take_clock_request(&mut self, now: u64) -> Option<u64> {
        if !self.has_side
            || self.current.is_none()
            || self.clock_asked >= CLOCK_SAMPLES
            || now < self.clock_due
        {
            return None;
        }
        self.clock_asked += 1;
        self.clock_due = now.saturating_add(CLOCK_SPACING_NS);
        Some(now)
    }

    /// Takes a clock reply received at `now`: the same clock, or a better offset estimate
    /// (the shortest round trip wins). The first estimate of another host drops the latency
    /// recorded so far, which assumed one clock.
    fn on_clock(&mut self, clock: &wire::Clock<'_>, now: u64) {
        if clock.t1 > now {
            self.implausible += 1;
            return;
        }
        if !self.clock_id.is_empty() && clock.clock_id == self.clock_id.as_slice() {
            self.clock = ClockSync::SameHost;
            return;
        }
        let rtt = now - clock.t1;
        let mid = i128::from(clock.t1) + i128::from(rtt / 2);
        let offset = i64::try_from(i128::from(clock.t2) - mid).unwrap_or(0);
        self.clock = match self.clock {
            ClockSync::Estimated { uncertainty_ns, samples, offset_ns } if uncertainty_ns <= rtt / 2 => {
                ClockSync::Estimated { offset_ns, uncertainty_ns, samples: samples + 1 }
            }
            ClockSync::Estimated { samples, .. } => {
                ClockSync::Estimated { offset_ns: offset, uncertainty_ns: rtt / 2, samples: samples + 1 }
            }
            _ => {
                tracing::info!(
                    subscriber = %self.name,
                    offset_ns = offset,
                    uncertainty_ns = rtt / 2,
                    "publisher on another host: one-way latency from an estimated clock offset"
                );
                self.latency.reset();
                self.latency_raw.reset();
                self.window.reset();
                ClockSync::Estimated { offset_ns: offset, uncertainty_ns: rtt / 2, samples: 1 }
            }
        };
    }

    /// Applies one tick of the current epoch: plausibility, sequence accounting, latency.
    fn apply(&mut self, k: usize, seq: u64, sent_ns: u64, intended_ns: u64, payload: &[u8], now: u64) {
        if !self.plausible(k, seq, now) {
            return;
        }
        let Some(book) = self.current.as_mut() else { return };
        let epoch = book.epoch;
        let outcome = book.topics[k].on_tick(seq);
        match outcome {
            SeqOutcome::Stale => return,
            SeqOutcome::Invalid => {
                self.decode_errors += 1;
                return;
            }
            SeqOutcome::Gap(g) => self.on_gap(k, g, now),
            SeqOutcome::InOrder => {}
        }
        self.window_received += 1;
        let (sent_local, intended_local) = (self.local(sent_ns), self.local(intended_ns));
        let raw = now.saturating_sub(sent_local);
        let from = if intended_ns != 0 { intended_local } else { sent_local };
        let corrected = now.saturating_sub(from);
        self.latency_raw.record(raw);
        self.latency.record(corrected);
        self.window.record(corrected);
        if let Some(sink) = self.sink.as_mut() {
            sink(&Event::Tick(Delivered {
                topic: &self.names[k],
                topic_index: k,
                epoch,
                seq,
                sent_ns,
                intended_ns,
                received_ns: now,
                repaired: false,
                payload,
            }));
        }
    }

    fn on_control(&mut self, k: usize, kind: Kind, last_seq: u64, now: u64) {
        if !self.plausible(k, last_seq, now) {
            return;
        }
        let Some(book) = self.current.as_mut() else { return };
        let epoch = book.epoch;
        let t = &mut book.topics[k];
        let (gap, ended) = match kind {
            Kind::End if t.ended_at().is_none() && last_seq != u64::MAX => {
                book.ended += 1;
                (t.on_end(last_seq), true)
            }
            Kind::End => (None, false),
            _ => (t.on_last(last_seq), false),
        };
        if let Some(g) = gap {
            self.on_gap(k, g, now);
        }
        if ended {
            if let Some(sink) = self.sink.as_mut() {
                sink(&Event::End { topic: &self.names[k], topic_index: k, epoch, last_seq });
            }
        }
    }

    /// Takes one feed message (`[group][body]` or `group 0x00 body`) received at `now`.
    ///
    /// # Errors
    /// [`Error::Decode`] for a malformed message (counted in the report); records decoded
    /// before the bad one still count.
    pub(crate) fn on_feed(&mut self, frames: &[&[u8]], now: u64) -> Result<()> {
        let res = self.on_feed_inner(frames, now);
        self.check_done();
        res.map_err(|e| {
            self.decode_errors += 1;
            in_context(e, || format!("{}: SUB socket", self.name))
        })
    }

    fn on_feed_inner(&mut self, frames: &[&[u8]], now: u64) -> Result<()> {
        let (_group, body) = wire::split_frames(frames)?;
        let d = wire::decode(body)?;
        if !matches!(d.kind, Kind::Data | Kind::Heartbeat | Kind::End) {
            return Err(malformed(format!("a {:?} body on the feed", d.kind)));
        }
        if self.first_ns == 0 {
            self.first_ns = now;
        }
        self.last_ns = now;
        if !self.epoch_open_or_new(d.epoch) {
            return Ok(()); // a straggler of an epoch closed already
        }
        let waiting = matches!(self.join, Join::Waiting { .. });
        let is_current = self.current.as_ref().is_some_and(|b| b.epoch == d.epoch);
        if !waiting && !is_current {
            // One message must not close an epoch unless all of it is sound and it says
            // something: a new epoch opens on a whole, non-empty body only.
            if d.count == 0 || d.records().any(|r| r.is_err()) {
                return Err(malformed("a body of a new epoch that is empty or does not decode whole"));
            }
            self.enter_epoch(d.epoch, now);
        }
        if !waiting {
            self.heard(now);
        }
        for rec in d.records() {
            let rec = rec?;
            // A group carries topics this subscriber does not follow: skip them.
            let Some(&k) = self.index.get(rec.topic) else { continue };
            if self.keep_values && !waiting && rec.seq >= self.last_values[k].0 {
                let v = &mut self.last_values[k];
                v.0 = rec.seq;
                v.1.clear();
                v.1.extend_from_slice(rec.payload);
            }
            if d.kind != Kind::Data {
                if !waiting {
                    self.on_control(k, d.kind, rec.seq, now);
                }
                continue;
            }
            let keep_payload = self.sink.is_some();
            match &mut self.join {
                Join::Live => self.apply(k, rec.seq, rec.sent_ns, rec.intended_ns, rec.payload, now),
                Join::Waiting { held, .. }
                    if held.ticks.len() < MAX_HELD
                        && (!keep_payload || held.payloads.len() + rec.payload.len() <= MAX_HELD_BYTES) =>
                {
                    let at = held.payloads.len();
                    if keep_payload {
                        held.payloads.extend_from_slice(rec.payload);
                    }
                    held.ticks.push(HeldTick {
                        epoch: d.epoch,
                        topic: k,
                        seq: rec.seq,
                        sent_ns: rec.sent_ns,
                        intended_ns: rec.intended_ns,
                        payload: at..held.payloads.len(),
                    });
                }
                Join::Waiting { .. } => {
                    return Err(malformed(format!(
                        "no snapshot after {MAX_HELD} held updates ({MAX_HELD_BYTES} payload bytes); is the side channel answering?"
                    )))
                }
            }
        }
        self.roll_window(now);
        if self.window_received.is_multiple_of(1024) {
            self.publish_live();
        }
        Ok(())
    }

    /// Applies the updates held for the join, as received now: with a snapshot of
    /// `epoch`, those of that epoch (older ones are stale: the snapshot covers them);
    /// without one (it never came), all of them, in order, each topic counted from its
    /// first sequence (what came before is missing: no snapshot covered it).
    fn release_held(&mut self, now: u64, epoch: Option<u64>) {
        let Join::Waiting { held, .. } = std::mem::replace(&mut self.join, Join::Live) else { return };
        for t in &held.ticks {
            match epoch {
                Some(e) if t.epoch != e => continue,
                _ if !self.epoch_open_or_new(t.epoch) => continue,
                _ => {}
            }
            self.enter_epoch(t.epoch, now);
            let payload = &held.payloads[t.payload.clone()];
            self.apply(t.topic, t.seq, t.sent_ns, t.intended_ns, payload, now);
        }
    }

    /// The snapshot request to send now, if one is due: first at once, then again with
    /// doubling waits; after the liveness timeout the join is given up (the held updates
    /// apply as they are, the report says so).
    pub(crate) fn take_snapshot_request(&mut self, now: u64) -> bool {
        let (timeout, liveness) = (self.repair_timeout_ns, self.liveness_ns);
        let Join::Waiting { since, due, attempts, .. } = &mut self.join else { return false };
        if *attempts == 0 {
            *since = now;
        } else if now.saturating_sub(*since) > liveness {
            tracing::warn!(subscriber = %self.name, "no snapshot within the liveness timeout: joining without one");
            self.release_held(now, None);
            self.publish_live();
            return false;
        }
        if now < *due {
            return false;
        }
        *attempts += 1;
        *due = now.saturating_add(timeout.saturating_mul(1 << (*attempts - 1).min(16)));
        true
    }

    /// Takes one reply on the side channel: a snapshot, repaired ticks, or ranges gone.
    ///
    /// # Errors
    /// [`Error::Decode`] for a malformed reply, or one nobody asked for.
    pub(crate) fn on_side(&mut self, body: &[u8], now: u64) -> Result<()> {
        let res = self.on_side_inner(body, now);
        self.check_done();
        res.map_err(|e| {
            self.decode_errors += 1;
            in_context(e, || format!("{}: side channel (DEALER)", self.name))
        })
    }

    fn on_side_inner(&mut self, body: &[u8], now: u64) -> Result<()> {
        let d = wire::decode(body)?;
        let unasked = |what: &str| malformed(format!("{what} nobody asked for"));
        match d.kind {
            Kind::Snapshot => {
                let Join::Waiting { held, .. } = &self.join else { return Err(unasked("a snapshot")) };
                if !self.epoch_open_or_new(d.epoch) {
                    return Err(unasked("a snapshot of a closed epoch"));
                }
                // All of it decodes before anything changes; each topic's sequence must be
                // plausible against the updates held for it (it was taken while they flowed).
                let mut entries = Vec::new();
                for rec in d.records() {
                    let rec = rec?;
                    let Some(&k) = self.index.get(rec.topic) else { continue };
                    let newest =
                        held.ticks.iter().filter(|t| t.topic == k && t.epoch == d.epoch).map(|t| t.seq).max();
                    if newest.is_some_and(|n| rec.seq > n.saturating_add(self.max_seq_jump)) {
                        self.implausible += 1;
                        continue;
                    }
                    entries.push((k, rec.seq, rec.payload.to_vec()));
                }
                self.enter_epoch(d.epoch, now);
                self.heard(now);
                if let Some(b) = self.current.as_mut() {
                    for (k, seq, value) in entries {
                        b.topics[k].start_after_snapshot(seq);
                        b.progress[k] = Some(Progress { first_seq: seq, first_ns: now, last_ns: now });
                        if self.keep_values {
                            self.last_values[k] = (seq, value);
                        }
                    }
                }
                self.release_held(now, Some(d.epoch));
                self.publish_live();
                Ok(())
            }
            Kind::Repair => {
                if self.current.as_ref().is_none_or(|b| b.epoch != d.epoch) {
                    return Ok(()); // for an epoch closed since: nothing to repair
                }
                self.heard(now);
                for rec in d.records() {
                    let rec = rec?;
                    let Some(&k) = self.index.get(rec.topic) else { continue };
                    self.on_repaired(k, &rec, now);
                }
                Ok(())
            }
            Kind::Gone => {
                if self.current.as_ref().is_none_or(|b| b.epoch != d.epoch) {
                    return Ok(());
                }
                self.heard(now);
                for r in d.ranges() {
                    let r = r?;
                    let Some(&k) = self.index.get(r.topic) else { continue };
                    let lost = match self.current.as_mut() {
                        Some(b) => b.topics[k].give_up(r.first, r.last),
                        None => Vec::new(),
                    };
                    for g in lost {
                        self.emit_gap(d.epoch, k, g);
                    }
                }
                self.prune_asks();
                Ok(())
            }
            Kind::Clock => {
                if self.current.as_ref().is_none_or(|b| b.epoch != d.epoch) {
                    return Ok(());
                }
                let clock = d.clock()?;
                self.on_clock(&clock, now);
                Ok(())
            }
            other => Err(malformed(format!("a {other:?} body on the side channel"))),
        }
    }

    /// The current epoch's publisher is alive: a feed message, or a reply on the side
    /// channel, which a busy subscriber may be reading while its feed queue waits.
    fn heard(&mut self, now: u64) {
        if let Some(b) = self.current.as_mut() {
            b.last_heard = now;
            b.lost = false;
        }
    }

    fn on_repaired(&mut self, k: usize, rec: &wire::Tick<'_>, now: u64) {
        let Some(book) = self.current.as_mut() else { return };
        let t = &mut book.topics[k];
        let (range, missing) = (
            t.pending_ranges().iter().find(|g| g.first <= rec.seq && rec.seq <= g.last).copied(),
            t.missing(),
        );
        if !t.on_repaired(rec.seq) {
            return; // a duplicate, or never missing
        }
        // With the pending list full, the tracker loses the rest of the range instead of
        // splitting it: that loss is announced and counted like any other.
        let cut = range.filter(|_| t.missing() != missing).map(|g| Gap { first: rec.seq + 1, last: g.last });
        let epoch = book.epoch;
        let done = book.topics[k].pending_ranges().is_empty();
        // Progress is an answer: the request is being served, its clock starts again.
        let timeout = self.repair_timeout_ns;
        let ask =
            self.asks.iter_mut().find(|a| a.topic == k && a.gap.first <= rec.seq && rec.seq <= a.gap.last);
        let asked = match ask {
            Some(a) => {
                a.attempts = 0;
                a.due = now.saturating_add(timeout);
                a.first_asked
            }
            None => now,
        };
        self.repair_latency.record(now.saturating_sub(asked));
        if let Some(sink) = self.sink.as_mut() {
            sink(&Event::Tick(Delivered {
                topic: &self.names[k],
                topic_index: k,
                epoch,
                seq: rec.seq,
                sent_ns: rec.sent_ns,
                intended_ns: rec.intended_ns,
                received_ns: now,
                repaired: true,
                payload: rec.payload,
            }));
        }
        if let Some(g) = cut {
            self.emit_gap(epoch, k, g);
        }
        if done {
            self.prune_asks();
        }
    }

    /// Drops the requests whose ranges hold nothing awaiting repair any more.
    fn prune_asks(&mut self) {
        let Some(book) = self.current.as_ref() else {
            self.asks.clear();
            self.next_ask = u64::MAX;
            return;
        };
        self.asks.retain(|a| {
            book.topics[a.topic]
                .pending_ranges()
                .iter()
                .any(|p| p.first <= a.gap.last && a.gap.first <= p.last)
        });
        self.next_ask = self.asks.iter().map(|a| a.due).min().unwrap_or(u64::MAX);
    }

    /// The repair request to send now, if one is due: a nak body. Ranges asked for
    /// `repair_attempts` times without an answer are given up (lost) first; while the
    /// publisher is silent, nothing is asked and no attempt is spent.
    pub(crate) fn take_nak(&mut self, now: u64) -> Option<&[u8]> {
        let book = self.current.as_ref()?;
        if book.lost || now < self.next_ask {
            return None;
        }
        let epoch = book.epoch;
        self.prune_asks();
        let spent = |a: &Ask| a.due <= now && a.attempts >= self.repair_attempts;
        let exhausted: Vec<Ask> = self.asks.iter().filter(|a| spent(a)).copied().collect();
        self.asks.retain(|a| !spent(a));
        for a in exhausted {
            let lost = match self.current.as_mut() {
                Some(b) => b.topics[a.topic].give_up(a.gap.first, a.gap.last),
                None => Vec::new(),
            };
            for g in lost {
                self.emit_gap(epoch, a.topic, g);
            }
        }
        let book = self.current.as_ref()?;
        let req = &mut self.request;
        req.start_in(Kind::Nak, epoch);
        let mut ranges = 0;
        'asks: for a in self.asks.iter_mut().filter(|a| a.due <= now) {
            // Only what still awaits repair within the range asked for.
            for p in book.topics[a.topic].pending_ranges() {
                if ranges >= NAK_RANGES_PER_MESSAGE {
                    break 'asks;
                }
                let (lo, hi) = (p.first.max(a.gap.first), p.last.min(a.gap.last));
                if lo <= hi {
                    req.push_range(self.names[a.topic].as_bytes(), lo, hi);
                    ranges += 1;
                }
            }
            a.attempts += 1;
            // Each attempt waits twice as long as the one before.
            a.due = now.saturating_add(self.repair_timeout_ns.saturating_mul(1 << (a.attempts - 1).min(16)));
        }
        let empty = req.is_empty();
        self.next_ask = self.asks.iter().map(|a| a.due).min().unwrap_or(u64::MAX);
        self.check_done();
        if empty {
            return None;
        }
        self.naks_sent += 1;
        Some(self.request.as_bytes())
    }

    /// Whether the current epoch is over: every topic ended and nothing awaits repair.
    fn check_done(&mut self) {
        if self.stop.is_some() || !matches!(self.join, Join::Live) {
            return;
        }
        if let Some(b) = &self.current {
            if b.ended == b.topics.len() && b.topics.iter().all(|t| t.pending() == 0) {
                self.stop = Some(Outcome::Complete);
            }
        }
    }

    /// The timer: the publisher's liveness, the slow-consumer window.
    pub(crate) fn on_timer(&mut self, now: u64) {
        let paused = self.last_timer != 0 && now.saturating_sub(self.last_timer) > self.liveness_ns / 2;
        self.last_timer = now;
        if let (true, Some(b)) = (paused, self.current.as_mut()) {
            // This subscriber did not run for a while: what the publisher sent meanwhile is
            // still queued, unread. Count the silence from now.
            b.last_heard = b.last_heard.max(now);
        }
        if let Some(b) = self.current.as_mut() {
            let silent = now.saturating_sub(b.last_heard) > self.liveness_ns;
            if silent && !b.lost && b.ended < b.topics.len() {
                b.lost = true;
                let epoch = b.epoch;
                tracing::warn!(
                    subscriber = %self.name,
                    epoch = %format_args!("{epoch:016x}"),
                    silent_ms = now.saturating_sub(b.last_heard) / 1_000_000,
                    "publisher lost: no tick or heartbeat within the liveness timeout"
                );
                self.emit(Event::PublisherLost { epoch });
                if !self.follow {
                    self.close_current(EpochOutcome::PublisherLost);
                    self.stop = Some(Outcome::PublisherLost);
                }
            }
        }
        if self.window_start != 0 && now.saturating_sub(self.window_start) >= WINDOW_NS {
            self.roll_window(now);
            self.publish_live();
        }
    }

    /// When the ledger next wants the timer or a request sent (CLOCK_MONOTONIC ns;
    /// `u64::MAX`: no deadline).
    pub(crate) fn next_deadline(&self) -> u64 {
        let mut at = u64::MAX;
        if let Join::Waiting { due, since, .. } = &self.join {
            at = at.min(*due).min(since.saturating_add(self.liveness_ns).saturating_add(1));
        }
        if let Some(b) = &self.current {
            if !b.lost && b.ended < b.topics.len() {
                // At least four timer runs per liveness timeout, so a longer gap between
                // them means a pause (see `on_timer`).
                let check = self.last_timer.saturating_add(self.liveness_ns / 4);
                at = at.min(b.last_heard.saturating_add(self.liveness_ns).saturating_add(1)).min(check);
            }
            if !b.lost {
                at = at.min(self.next_ask);
            }
            if self.has_side && self.clock_asked < CLOCK_SAMPLES {
                at = at.min(self.clock_due);
            }
        }
        at
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
        let total = self.window_received.saturating_add(self.window_missing);
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
            let error = (self.window_missing > 0).then_some("gap");
            summary.emit_messaging("fanout subscriber", &self.attributes, error);
        }
        if let Some(tx) = &self.intervals {
            // Hands the window over without copying (it comes back empty).
            let counts = IntervalCounts {
                messages: self.window_received,
                gaps: self.window_missing,
                ..Default::default()
            };
            tx.send(self.window_start, now, &mut self.window, counts);
        }
        self.window.reset();
        self.window_start = now;
        self.window_received = 0;
        self.window_missing = 0;
    }

    fn publish_live(&self) {
        let (mut received, mut missing) = (0u64, 0u64);
        let epochs = self.closed.iter().flat_map(|e| e.topics.iter().map(|(_, t)| t));
        let current = self.current.iter().flat_map(|b| b.topics.iter());
        for t in epochs.chain(current) {
            received = received.saturating_add(t.received().saturating_add(t.repaired()));
            missing = missing.saturating_add(t.missing().saturating_add(t.pending()));
        }
        self.live.received.store(received, Ordering::Relaxed);
        self.live.missing.store(missing, Ordering::Relaxed);
    }

    /// Closes the books at `now`: updates held for a snapshot that never came apply as
    /// they are, repairs still outstanding are lost, the last window is judged, and the
    /// report is built. `outcome` says why the worker stopped when the ledger did not ask.
    pub(crate) fn finish(&mut self, now: u64, outcome: Outcome) -> SubscriberReport {
        if let Join::Waiting { held, .. } = &self.join {
            if !held.ticks.is_empty() {
                tracing::warn!(subscriber = %self.name, held = held.ticks.len(), "no snapshot arrived; applying the updates held for it");
            }
        }
        self.release_held(now, None);
        self.check_done();
        let outcome = self.stop.unwrap_or(outcome);
        self.close_current(EpochOutcome::Open);
        // The last, partial window counts too: a short run can be too slow.
        self.judge_window(now);
        self.publish_live();
        SubscriberReport {
            name: self.name.clone(),
            outcome,
            epochs: std::mem::take(&mut self.closed),
            epochs_unlisted: self.epochs_unlisted,
            unlisted_totals: self.unlisted_totals,
            latency: std::mem::take(&mut self.latency),
            latency_raw: std::mem::take(&mut self.latency_raw),
            repair_latency: std::mem::take(&mut self.repair_latency),
            clock: self.clock,
            naks_sent: self.naks_sent,
            elapsed_ns: self.last_ns.saturating_sub(self.first_ns),
            decode_errors: self.decode_errors,
            implausible: self.implausible,
            slow: self.slow,
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

/// What the property test (`accounting_props`) and the fuzz target check after every step.
#[cfg(any(test, fuzzing))]
impl Ledger {
    /// The current epoch and its books.
    pub(crate) fn current_books(&self) -> Option<(u64, &[SeqTracker])> {
        self.current.as_ref().map(|b| (b.epoch, b.topics.as_slice()))
    }

    /// Everything a peer can make this ledger hold, as (what, length now, cap).
    pub(crate) fn holdings(&self) -> [(&'static str, usize, usize); 6] {
        let (held, bytes) = match &self.join {
            Join::Waiting { held, .. } => (held.ticks.len(), held.payloads.len()),
            Join::Live => (0, 0),
        };
        [
            ("epochs listed", self.closed.len(), MAX_EPOCHS),
            ("closed epoch ids", self.closed_ids.len(), MAX_CLOSED_IDS),
            ("ranges asked for", self.asks.len(), MAX_NAK_RANGES),
            ("updates held for the snapshot", held, MAX_HELD),
            ("payload bytes held for the snapshot", bytes, MAX_HELD_BYTES),
            ("ranges in one repair request", usize::from(self.request.count()), NAK_RANGES_PER_MESSAGE),
        ]
    }

    /// The counters a peer drives: decode errors, implausible claims, repair requests sent.
    pub(crate) fn counters(&self) -> [u64; 3] {
        [self.decode_errors, self.implausible, self.naks_sent]
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;

    const MS: u64 = 1_000_000;
    const E1: u64 = 0xE1;
    const E2: u64 = 0xE2;

    fn data(epoch: u64, ticks: &[(&str, u64)]) -> Vec<u8> {
        let mut w = BodyWriter::new(Kind::Data, epoch);
        for (t, s) in ticks {
            w.push(t.as_bytes(), *s, 10, format!("{t}{s}").as_bytes());
        }
        w.stamp_sent(20);
        w.as_bytes().to_vec()
    }

    fn body(kind: Kind, epoch: u64, last: &[(&str, u64)]) -> Vec<u8> {
        let mut w = BodyWriter::new(kind, epoch);
        for (t, s) in last {
            w.push_last(t.as_bytes(), *s, b"");
        }
        w.as_bytes().to_vec()
    }

    fn repair(epoch: u64, ticks: &[(&str, u64)]) -> Vec<u8> {
        let mut w = BodyWriter::new(Kind::Repair, epoch);
        for (t, s) in ticks {
            w.push_sent(t.as_bytes(), *s, 20, 10, format!("{t}{s}").as_bytes());
        }
        w.as_bytes().to_vec()
    }

    fn gone(epoch: u64, ranges: &[(&str, u64, u64)]) -> Vec<u8> {
        let mut w = BodyWriter::new(Kind::Gone, epoch);
        for (t, a, b) in ranges {
            w.push_range(t.as_bytes(), *a, *b);
        }
        w.as_bytes().to_vec()
    }

    struct Fixture {
        ledger: Ledger,
        events: Arc<Mutex<Vec<String>>>,
    }

    impl Fixture {
        fn new(cfg: SubscriberConfig, side: bool) -> Fixture {
            let events = Arc::new(Mutex::new(Vec::new()));
            let seen = Arc::clone(&events);
            let sink: Sink = Box::new(move |e: &Event<'_>| {
                seen.lock().unwrap().push(match *e {
                    Event::Tick(t) if t.repaired => format!("repaired {} {}", t.topic, t.seq),
                    Event::Tick(t) => {
                        format!("tick {} {} {}", t.topic, t.seq, String::from_utf8_lossy(t.payload))
                    }
                    Event::Gap { topic, first, last, .. } => format!("gap {topic} {first}..={last}"),
                    Event::Repairing { topic, first, last, .. } => {
                        format!("repairing {topic} {first}..={last}")
                    }
                    Event::End { topic, last_seq, .. } => format!("end {topic} {last_seq}"),
                    Event::Epoch { epoch } => format!("epoch {epoch:x}"),
                    Event::PublisherLost { epoch } => format!("lost {epoch:x}"),
                });
            });
            Fixture { ledger: Ledger::new(&cfg, side, Arc::default(), Some(sink)), events }
        }

        fn plain(topics: &[&str]) -> Fixture {
            Fixture::new(SubscriberConfig { repair: false, ..SubscriberConfig::for_topics(topics) }, false)
        }

        fn repairing(topics: &[&str]) -> Fixture {
            Fixture::new(SubscriberConfig::for_topics(topics), true)
        }

        fn feed(&mut self, body: &[u8], now: u64) {
            self.ledger.on_feed(&[b"g0.", body], now).unwrap();
        }

        fn take(&self) -> Vec<String> {
            std::mem::take(&mut *self.events.lock().unwrap())
        }

        /// The nak composed now, as (topic, first, last) ranges.
        fn nak(&mut self, now: u64) -> Option<Vec<(String, u64, u64)>> {
            let b = self.ledger.take_nak(now)?.to_vec();
            let d = wire::decode(&b).unwrap();
            assert_eq!(d.kind, Kind::Nak);
            Some(
                d.ranges()
                    .map(|r| r.unwrap())
                    .map(|r| (String::from_utf8_lossy(r.topic).into_owned(), r.first, r.last))
                    .collect(),
            )
        }
    }

    #[test]
    fn ticks_gaps_and_ends_are_delivered_in_stream_order() {
        let mut f = Fixture::plain(&["a", "b"]);
        f.feed(&data(E1, &[("a", 1), ("b", 1), ("a", 3), ("x", 9)]), 100);
        f.feed(&body(Kind::Heartbeat, E1, &[("a", 3), ("b", 2)]), 200);
        assert_eq!(f.ledger.stop_reason(), None);
        f.feed(&body(Kind::End, E1, &[("a", 4), ("b", 2)]), 300);
        assert_eq!(f.ledger.stop_reason(), Some(Outcome::Complete));
        assert_eq!(
            f.take(),
            [
                "epoch e1",
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
        let r = f.ledger.finish(400, Outcome::Stopped);
        assert_eq!((r.received(), r.missing(), r.decode_errors, r.outcome), (3, 3, 0, Outcome::Complete));
        assert_eq!(r.latency.summary().count, 3);
        assert_eq!((r.elapsed_ns, r.epochs.len()), (200, 1));
        assert!(r.epochs[0].closes() && r.epochs[0].outcome == EpochOutcome::Complete);
    }

    #[test]
    fn a_join_holds_updates_with_their_payloads_until_the_snapshot() {
        let mut f = Fixture::new(
            SubscriberConfig { snapshot_join: true, ..SubscriberConfig::for_topics(&["a", "b"]) },
            true,
        );
        f.feed(&data(E1, &[("a", 5), ("a", 6), ("b", 2)]), 100);
        assert!(f.take().is_empty(), "held");
        f.ledger.on_side(&body(Kind::Snapshot, E1, &[("a", 5), ("b", 1)]), 150).unwrap();
        assert_eq!(
            f.take(),
            ["epoch e1", "tick a 6 a6", "tick b 2 b2"],
            "the stale one dropped, payloads kept"
        );
        assert!(
            f.ledger.on_side(&body(Kind::Snapshot, E1, &[("a", 9)]), 160).is_err(),
            "a second snapshot is not asked for"
        );
        let r = f.ledger.finish(200, Outcome::Stopped);
        assert_eq!((r.received(), r.missing(), r.from_snapshot(), r.decode_errors), (2, 0, 6, 1));
    }

    #[test]
    fn garbage_is_counted_with_the_subscribers_name() {
        let mut f = Fixture::plain(&["a"]);
        let e = f.ledger.on_feed(&[b"g0.", &[9; 12]], 1).unwrap_err();
        assert!(e.to_string().contains("sub: SUB socket") && e.to_string().contains("version 9"), "{e}");
        assert!(f.ledger.on_feed(&[b"no nul"], 1).is_err());
        assert!(f.ledger.on_feed(&[b"g0.", &body(Kind::Nak, E1, &[])], 1).is_err(), "a nak on the feed");
        assert!(f.ledger.on_side(b"\x02", 1).unwrap_err().to_string().contains("side channel"));
        let e = f.ledger.refuse("3 frames".into());
        assert!(e.to_string().contains("3 frames"));
        assert_eq!(f.ledger.finish(2, Outcome::Stopped).decode_errors, 5);
    }

    #[test]
    fn the_slow_window_is_judged_on_the_callers_clock() {
        let mut f = Fixture::plain(&["a"]);
        f.feed(&data(E1, &[("a", 1)]), 1);
        f.feed(&data(E1, &[("a", 100)]), 2);
        f.ledger.on_timer(WINDOW_NS / 2);
        assert!(!f.ledger.slow, "the window is not over yet");
        f.ledger.on_timer(WINDOW_NS + 1);
        assert!(f.ledger.slow, "98 of 100 lost in the window");
    }

    #[test]
    fn a_silent_publisher_is_lost_after_the_liveness_timeout() {
        let cfg = SubscriberConfig {
            repair: false,
            liveness: Duration::from_millis(100),
            ..SubscriberConfig::for_topics(&["a"])
        };
        let mut f = Fixture::new(cfg, false);
        f.ledger.on_timer(0);
        assert_eq!(f.ledger.next_deadline(), u64::MAX, "no publisher yet: nothing to lose");
        f.feed(&data(E1, &[("a", 1)]), 10 * MS);
        f.feed(&body(Kind::Heartbeat, E1, &[("a", 3)]), 20 * MS);
        // The timer runs often enough to tell a pause from silence.
        assert!(f.ledger.next_deadline() <= 20 * MS + 100 * MS + 1);
        for t in (30..=120).step_by(20) {
            f.ledger.on_timer(t * MS);
            assert_eq!(f.ledger.stop_reason(), None, "at {t} ms");
        }
        f.ledger.on_timer(121 * MS);
        assert_eq!(f.ledger.stop_reason(), Some(Outcome::PublisherLost));
        assert_eq!(f.take(), ["epoch e1", "tick a 1 a1", "gap a 2..=3", "lost e1"]);
        let r = f.ledger.finish(130 * MS, Outcome::Stopped);
        assert_eq!(r.outcome, Outcome::PublisherLost);
        assert_eq!(
            (r.epochs[0].published(), r.received(), r.missing()),
            (3, 1, 2),
            "exact up to the last heartbeat"
        );
        assert_eq!(r.epochs[0].outcome, EpochOutcome::PublisherLost);
    }

    #[test]
    fn a_pause_of_the_subscriber_itself_is_not_the_publishers_silence() {
        let cfg = SubscriberConfig {
            repair: false,
            liveness: Duration::from_millis(100),
            ..SubscriberConfig::for_topics(&["a"])
        };
        let mut f = Fixture::new(cfg, false);
        f.feed(&data(E1, &[("a", 1)]), 0);
        f.ledger.on_timer(MS);
        // Stopped for 2 s (SIGSTOP, a starved core): on waking, the queue is still unread.
        f.ledger.on_timer(2_000 * MS);
        assert_eq!(f.ledger.stop_reason(), None);
        f.feed(&data(E1, &[("a", 2)]), 2_001 * MS);
        // Real silence after that still counts.
        for t in (2_020..=2_100).step_by(20) {
            f.ledger.on_timer(t * MS);
        }
        assert_eq!(f.ledger.stop_reason(), None);
        f.ledger.on_timer(2_120 * MS);
        assert_eq!(f.ledger.stop_reason(), Some(Outcome::PublisherLost));
    }

    #[test]
    fn a_new_epoch_closes_the_old_one_at_what_it_announced() {
        let cfg = SubscriberConfig { repair: false, follow: true, ..SubscriberConfig::for_topics(&["a"]) };
        let mut f = Fixture::new(cfg, false);
        f.feed(&data(E1, &[("a", 1), ("a", 2)]), 1);
        f.feed(&body(Kind::Heartbeat, E1, &[("a", 4)]), 2);
        // The publisher restarts: sequence 1 again, in a new epoch; never stale.
        f.feed(&data(E2, &[("a", 1), ("a", 2)]), 3);
        f.feed(&data(E1, &[("a", 3)]), 4); // a straggler of the closed epoch: ignored
        f.feed(&body(Kind::End, E2, &[("a", 2)]), 5);
        assert_eq!(
            f.take(),
            [
                "epoch e1",
                "tick a 1 a1",
                "tick a 2 a2",
                "gap a 3..=4",
                "epoch e2",
                "tick a 1 a1",
                "tick a 2 a2",
                "end a 2"
            ]
        );
        let r = f.ledger.finish(6, Outcome::Stopped);
        assert_eq!(r.outcome, Outcome::Complete);
        let e: Vec<_> =
            r.epochs.iter().map(|e| (e.epoch, e.published(), e.received(), e.missing(), e.outcome)).collect();
        assert_eq!(e, [(E1, 4, 2, 2, EpochOutcome::PublisherLost), (E2, 2, 2, 0, EpochOutcome::Complete)]);
        assert!(r.epochs.iter().all(EpochReport::closes));
    }

    #[test]
    fn gaps_are_asked_for_repaired_or_given_up_exactly() {
        let mut f = Fixture::repairing(&["a"]);
        f.feed(&data(E1, &[("a", 1), ("a", 6)]), 0);
        assert_eq!(f.take(), ["epoch e1", "tick a 1 a1", "repairing a 2..=5", "tick a 6 a6"]);
        assert_eq!(f.nak(MS), Some(vec![("a".into(), 2, 5)]));
        assert_eq!(f.nak(MS), None, "not again before the timeout");
        // 2 and 3 come back; 5 is gone from the ring; 4 is still asked for.
        f.ledger.on_side(&repair(E1, &[("a", 2), ("a", 3), ("a", 3)]), 2 * MS).unwrap();
        f.ledger.on_side(&gone(E1, &[("a", 5, 5)]), 2 * MS).unwrap();
        assert_eq!(
            f.take(),
            ["repaired a 2", "repaired a 3", "gap a 5..=5"],
            "a duplicate repair counts once"
        );
        assert_eq!(f.nak(60 * MS), Some(vec![("a".into(), 4, 4)]), "only what still awaits repair");
        f.feed(&body(Kind::End, E1, &[("a", 6)]), 61 * MS);
        assert_eq!(f.ledger.stop_reason(), None, "the end waits for the repair");
        f.ledger.on_side(&repair(E1, &[("a", 4)]), 62 * MS).unwrap();
        assert_eq!(f.ledger.stop_reason(), Some(Outcome::Complete));
        let r = f.ledger.finish(63 * MS, Outcome::Stopped);
        assert_eq!((r.received(), r.repaired(), r.missing(), r.naks_sent), (2, 3, 1, 2));
        assert_eq!(r.repair_latency.len(), 3);
        let max = r.repair_latency.summary().max;
        assert!(max.abs_diff(62 * MS) < 62 * MS / 500, "from the first request: {max}");
        assert!(r.epochs[0].closes());
    }

    #[test]
    fn unanswered_requests_are_lost_after_their_attempts_but_not_while_the_publisher_is_silent() {
        let cfg = SubscriberConfig {
            repair_attempts: 2,
            liveness: Duration::from_secs(10),
            follow: true,
            ..SubscriberConfig::for_topics(&["a"])
        };
        let mut f = Fixture::new(cfg, true);
        f.feed(&data(E1, &[("a", 3)]), 0);
        assert!(f.nak(0).is_some());
        assert!(f.nak(50 * MS).is_some(), "the second attempt, after 50 ms");
        // Silent past the liveness timeout (followed): no attempt is spent meanwhile.
        for s in 1..=11 {
            f.ledger.on_timer(s * 1_000 * MS);
        }
        assert_eq!(f.take(), ["epoch e1", "repairing a 1..=2", "tick a 3 a3", "lost e1"]);
        assert_eq!(f.nak(11 * 1_000 * MS), None, "nobody to ask");
        f.feed(&body(Kind::Heartbeat, E1, &[("a", 3)]), 12 * 1_000 * MS);
        assert_eq!(f.nak(12 * 1_000 * MS), None, "back, but the attempts are spent: it is lost");
        assert_eq!(f.take(), ["gap a 1..=2"]);
        let r = f.ledger.finish(13 * 1_000 * MS, Outcome::Stopped);
        assert_eq!((r.received(), r.repaired(), r.missing()), (1, 0, 2));
    }

    #[test]
    fn a_snapshot_join_across_a_restart_keeps_the_snapshots_epoch() {
        let cfg =
            SubscriberConfig { snapshot_join: true, repair: false, ..SubscriberConfig::for_topics(&["a"]) };
        let mut f = Fixture::new(cfg, true);
        assert!(f.ledger.take_snapshot_request(0), "asked at once");
        // Held: the old publisher's last ticks, then the new one's; its snapshot answers.
        f.feed(&data(E1, &[("a", 7)]), 1);
        f.feed(&data(E2, &[("a", 2), ("a", 3)]), 2);
        f.ledger.on_side(&body(Kind::Snapshot, E2, &[("a", 2)]), 3).unwrap();
        assert_eq!(
            f.take(),
            ["epoch e2", "tick a 3 a3"],
            "the old epoch's held tick is stale, not a new epoch"
        );
        f.feed(&body(Kind::End, E2, &[("a", 3)]), 4);
        assert_eq!(f.ledger.stop_reason(), Some(Outcome::Complete));
        let r = f.ledger.finish(5, Outcome::Stopped);
        assert_eq!((r.epochs.len(), r.received(), r.from_snapshot(), r.missing()), (1, 1, 2, 0));
    }

    #[test]
    fn a_snapshot_is_asked_for_again_and_given_up_after_the_liveness_timeout() {
        let cfg = SubscriberConfig {
            snapshot_join: true,
            repair: false,
            liveness: Duration::from_millis(200),
            ..SubscriberConfig::for_topics(&["a"])
        };
        let mut f = Fixture::new(cfg, true);
        assert!(f.ledger.take_snapshot_request(0));
        assert!(!f.ledger.take_snapshot_request(10 * MS), "not before the timeout");
        assert!(f.ledger.take_snapshot_request(50 * MS), "again after 50 ms");
        assert!(f.ledger.take_snapshot_request(150 * MS), "then after 100 ms more");
        assert!(f.ledger.next_deadline() <= 201 * MS);
        f.feed(&data(E1, &[("a", 41), ("a", 42)]), 190 * MS);
        assert!(f.take().is_empty(), "held");
        assert!(!f.ledger.take_snapshot_request(201 * MS), "given up: joining without it");
        assert_eq!(f.take(), ["epoch e1", "gap a 1..=40", "tick a 41 a41", "tick a 42 a42"]);
        assert!(
            f.ledger.on_side(&body(Kind::Snapshot, E1, &[("a", 40)]), 202 * MS).is_err(),
            "too late: not asked for"
        );
    }

    #[test]
    fn a_new_epoch_opens_only_on_a_whole_body() {
        let mut f = Fixture::plain(&["a"]);
        f.feed(&data(E1, &[("a", 1)]), 1);
        // An empty body, or a broken one, of another epoch does not close this one.
        assert!(f.ledger.on_feed(&[b"g0.", &body(Kind::Heartbeat, E2, &[])], 2).is_err());
        let mut broken = data(E2, &[("a", 1)]);
        broken[2] = 2; // claims two records
        assert!(f.ledger.on_feed(&[b"g0.", &broken], 3).is_err());
        f.feed(&data(E1, &[("a", 2)]), 4);
        assert_eq!(f.take(), ["epoch e1", "tick a 1 a1", "tick a 2 a2"]);
        // Epochs closed long ago (past the listed ones) are still recognised.
        for e in 0..(MAX_EPOCHS as u64 + 3) {
            f.feed(&data(0x100 + e, &[("a", 1)]), 10 + e);
        }
        f.take();
        f.feed(&data(0x100, &[("a", 2)]), 100);
        assert!(f.take().is_empty(), "a straggler of a closed epoch is not counted again");
        let r = f.ledger.finish(101, Outcome::Stopped);
        assert_eq!((r.epochs.len() as u64, r.epochs_unlisted), (MAX_EPOCHS as u64, 4));
        assert_eq!(
            r.received(),
            2 + MAX_EPOCHS as u64 + 3,
            "every epoch's tick counted once, unlisted ones too"
        );
    }

    #[test]
    fn a_sequence_far_past_what_the_topic_has_shown_is_refused() {
        let cfg = SubscriberConfig {
            repair: false,
            max_seq_jump: 1_000,
            ..SubscriberConfig::for_topics(&["a", "b"])
        };
        let mut f = Fixture::new(cfg, false);
        // A late joiner starts wherever the stream is.
        f.feed(&data(E1, &[("a", 5_000_000), ("b", 1)]), 0);
        for i in 1..=100u64 {
            f.feed(&data(E1, &[("a", 5_000_000 + i)]), i * MS);
        }
        f.take();
        // One tick (or an end marker) claiming 2^64-2: refused, counted, nothing else changes.
        f.feed(&data(E1, &[("a", u64::MAX - 1)]), 101 * MS);
        f.feed(&body(Kind::End, E1, &[("b", u64::MAX - 1)]), 101 * MS);
        assert!(f.take().is_empty());
        // After a 10 s partition the publisher is 10,000 ticks further on a topic that moved
        // 100 per 100 ms: believed.
        f.feed(&data(E1, &[("a", 5_000_000 + 100 + 10_000)]), 10_101 * MS);
        assert_eq!(f.take(), ["gap a 5000101..=5010099", "tick a 5010100 a5010100"]);
        let r = f.ledger.finish(10_102 * MS, Outcome::Stopped);
        assert_eq!(r.implausible, 2);
        assert!(r.epochs[0].closes());
    }

    #[test]
    fn garbage_sequences_from_a_peer_never_overflow_a_counter() {
        let mut f = Fixture::plain(&["a", "b", "c"]);
        f.feed(&data(E1, &[("a", 1 << 63), ("b", 1 << 63), ("c", 1 << 63)]), 1);
        f.ledger.on_timer(WINDOW_NS + 2);
        let r = f.ledger.finish(WINDOW_NS + 3, Outcome::Stopped);
        assert_eq!(r.received(), 3);
        assert_eq!(r.missing(), u64::MAX, "saturated, not wrapped");
    }

    #[test]
    fn repairs_in_progress_are_an_answer() {
        let cfg = SubscriberConfig { repair_attempts: 2, ..SubscriberConfig::for_topics(&["a"]) };
        let mut f = Fixture::new(cfg, true);
        f.feed(&data(E1, &[("a", 1), ("a", 100)]), 0);
        assert!(f.nak(0).is_some());
        assert!(f.nak(50 * MS).is_some(), "the last attempt");
        // The publisher is serving it, slowly: each tick that comes back restarts the clock.
        for (i, t) in (2..=98).step_by(8).enumerate() {
            let now = 60 * MS + i as u64 * 40 * MS;
            f.ledger.on_side(&repair(E1, &[("a", t)]), now).unwrap();
            assert_eq!(f.nak(now), None, "not asked again, not given up");
        }
        assert!(!f.take().iter().any(|e| e.starts_with("gap")), "nothing lost while repairs flow");
    }

    fn clock(epoch: u64, t1: u64, t2: u64, id: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        wire::encode_clock(epoch, &wire::Clock { t1, t2, clock_id: id }, &mut b);
        b
    }

    #[test]
    fn the_publishers_clock_is_the_same_or_estimated_never_assumed() {
        // Same host: the clock ids match, latency stays as measured.
        let mut f = Fixture::repairing(&["a"]);
        f.feed(&data(E1, &[("a", 1)]), 100);
        assert_eq!(f.ledger.take_clock_request(100), Some(100));
        assert_eq!(f.ledger.take_clock_request(101), None, "spaced out");
        let mine = f.ledger.clock_id.clone();
        f.ledger.on_side(&clock(E1, 100, 5_000, &mine), 300).unwrap();
        assert_eq!(f.ledger.clock, ClockSync::SameHost);

        // Another host whose clock reads 1 s ahead: the offset comes from the shortest
        // round trip, latency recorded before it (which assumed one clock) is dropped, and
        // later ticks' latency is on this host's clock.
        let mut f = Fixture::repairing(&["a"]);
        f.feed(&data(E1, &[("a", 1)]), 100); // sent at 20 on the publisher's clock
        f.ledger.on_side(&clock(E1, 1_000, 1_000_001_500, b"other"), 3_000).unwrap(); // rtt 2000
        f.ledger.on_side(&clock(E1, 5_000, 1_000_005_200, b"other"), 5_400).unwrap(); // rtt 400: better
        f.ledger.on_side(&clock(E1, 6_000, 9, b"other"), 9_000).unwrap(); // rtt 3000: ignored
        assert_eq!(
            f.ledger.clock,
            ClockSync::Estimated { offset_ns: 1_000_000_000, uncertainty_ns: 200, samples: 3 }
        );
        let mut w = BodyWriter::new(Kind::Data, E1);
        w.push(b"a", 2, 1_000_010_000, b"x"); // meant to leave at 10,000 here
        w.stamp_sent(1_000_010_500);
        f.feed(w.as_bytes(), 12_000);
        f.ledger.on_side(&clock(E1, 99_999, 0, b"other"), 12_500).unwrap(); // asked in the future?
        let r = f.ledger.finish(13_000, Outcome::Stopped);
        assert_eq!(r.implausible, 1, "a reply to a request from the future is counted, not used");
        assert_eq!(r.latency.len(), 1, "the tick before the estimate is not in the latency");
        let l = r.latency.summary().max;
        assert!(l.abs_diff(2_000) < 10, "12,000 - 10,000 on this host's clock: {l}");
        assert!(
            f.ledger.on_side(&clock(E1, 99_999, 0, b"x"), 5).is_ok(),
            "a reply from the future is counted, not used"
        );
    }
}
