//! The subscriber's sans-IO core (`src/fanout/ledger.rs`, reached through
//! `ztick::fuzz_hooks::Subscriber`) driven as its worker drives it, by an arbitrary
//! configuration and an arbitrary sequence of feed messages, side-channel replies and clock
//! advances. Most messages are well-formed wire v2 bodies (data, heartbeat, end, snapshot,
//! repair, gone, clock, nak) built with `BodyWriter` from sequences chosen relative to what
//! the ledger holds (next, stale, pending, near `u64::MAX`), some mangled, some raw bytes;
//! a harness publisher answers the ledger's repair requests on demand.
//!
//! Beyond "no panic" it asserts, after every step: every structure a peer can grow is within
//! its cap (the ledger's holdings; per topic, the pending and listed ranges); in the current
//! epoch no counter wraps or goes back, and `from_snapshot + received + repaired + pending
//! + missing` equals the highest sequence accounted for (in u128, so a wrap cannot hide);
//! pending ranges are ordered, disjoint and within it; a repair request asks only for what
//! awaits repair, in the current epoch. At finish: every epoch's accounting closes exactly
//! as the report and `ztick fanout` decide it (`EpochReport::closes`, and received +
//! repaired + missing + from_snapshot = published), nothing is pending, the events handed
//! to the application add up to the report (ticks, repaired ticks, lost ranges, epochs),
//! and a complete run's last epoch is complete.
#![no_main]

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use ztick::fanout::wire::{self, BodyWriter, Kind};
use ztick::fanout::{
    EpochOutcome, Event, Outcome, SeqTracker, SubscriberConfig, SubscriberReport, MAX_EPOCHS, MAX_GAPS_KEPT,
    MAX_PENDING,
};
use ztick::fuzz_hooks::Subscriber;

const EPOCHS: [u64; 3] = [0xE1, 0xE2, 0xE3];
const MS: u64 = 1_000_000;
const GROUP: &[u8] = b"g0.";

#[derive(Arbitrary, Debug)]
struct Input {
    setup: Setup,
    steps: Vec<Step>,
}

#[derive(Arbitrary, Debug)]
struct Setup {
    topics: u8,
    side: bool,
    repair: bool,
    snapshot_join: bool,
    follow: bool,
    conflate: bool,
    keep_last_values: bool,
    sink: bool,
    repair_attempts: u8,
    liveness_ms: u16,
    repair_timeout_ms: u8,
    jump: Jump,
}

#[derive(Arbitrary, Debug)]
enum Jump {
    Small,
    Default,
    Off,
}

#[derive(Arbitrary, Debug)]
enum Step {
    Feed {
        message: Feed,
        mangle: Option<Mangle>,
    },
    Side {
        body: Body,
        mangle: Option<Mangle>,
    },
    Wait(Wait),
    /// Many ticks of one topic in one data body, `stride` apart: gaps by the hundred.
    Storm {
        epoch: EpochSel,
        topic: u8,
        from: Seq,
        count: u8,
        stride: u8,
    },
    /// The publisher answers the last repair request: every `every`-th tick asked for
    /// comes back, and the rest is gone when `gone`.
    AnswerNak {
        every: u8,
        gone: bool,
        epoch_shift: bool,
    },
}

#[derive(Arbitrary, Debug)]
enum Feed {
    Two(Body),
    Single(Body),
    Frames(Vec<Vec<u8>>),
}

#[derive(Arbitrary, Debug)]
struct Mangle {
    at: u16,
    xor: u8,
    cut: Option<u16>,
}

#[derive(Arbitrary, Debug)]
enum Body {
    Raw(Vec<u8>),
    Ticks { repair: bool, epoch: EpochSel, ticks: Vec<Rec> },
    Lasts { kind: LastKind, epoch: EpochSel, lasts: Vec<(TopicSel, Seq)> },
    Ranges { nak: bool, epoch: EpochSel, ranges: Vec<(TopicSel, Seq, Seq)> },
    Clock { epoch: EpochSel, t1: Ago, t2: u64, same_host: bool },
}

#[derive(Arbitrary, Debug)]
enum LastKind {
    Heartbeat,
    End,
    Snapshot,
}

#[derive(Arbitrary, Debug)]
struct Rec {
    topic: TopicSel,
    seq: Seq,
    sent: Ago,
    intended: Ago,
    payload: u8,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum EpochSel {
    Known(u8),
    Raw(u64),
}

#[derive(Arbitrary, Debug)]
enum TopicSel {
    Known(u8),
    Unknown(u8),
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Seq {
    /// After the highest sequence the ledger accounted for: `+ 1 + n`.
    Next(u8),
    /// At or below it: `- n` (stale, a repeat).
    Back(u8),
    /// Within the topic's `n`-th pending range.
    Pending(u8, u8),
    Abs(u64),
    NearMax(u8),
    Zero,
}

#[derive(Arbitrary, Debug)]
enum Ago {
    Now,
    Zero,
    Back(u32),
    Abs(u64),
}

#[derive(Arbitrary, Debug)]
enum Wait {
    Ns(u16),
    Ms(u16),
    Secs(u8),
    ToDeadline,
}

fn clock_id() -> &'static [u8] {
    static ID: OnceLock<Vec<u8>> = OnceLock::new();
    ID.get_or_init(|| {
        let mut b = std::fs::read("/proc/sys/kernel/random/boot_id").unwrap_or_default();
        b.retain(|c| !c.is_ascii_whitespace());
        b.truncate(64);
        b
    })
}

/// What the events handed to the application add up to.
#[derive(Debug, Default)]
struct Tally {
    ticks: u128,
    repaired: u128,
    lost: u128,
    epochs: u64,
}

/// One topic's counters in the current epoch, to see that none goes back.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Counts([u64; 6]);

impl Counts {
    fn of(t: &SeqTracker) -> Counts {
        Counts([
            t.received(),
            t.repaired(),
            t.missing(),
            t.from_snapshot(),
            t.accounted_up_to(),
            t.gaps_unlisted(),
        ])
    }
}

struct Harness {
    sub: Subscriber,
    topics: Vec<String>,
    now: u64,
    last_nak: Option<Vec<u8>>,
    prev: Option<(u64, Vec<Counts>)>,
    prev_counters: [u64; 3],
    tally: Option<Arc<Mutex<Tally>>>,
}

fn sat(v: u128) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

impl Harness {
    fn epoch(&self, e: EpochSel) -> u64 {
        match e {
            EpochSel::Known(i) => EPOCHS[usize::from(i) % EPOCHS.len()],
            EpochSel::Raw(e) => e,
        }
    }

    fn topic(&self, t: &TopicSel) -> (Vec<u8>, Option<usize>) {
        match t {
            TopicSel::Known(i) => {
                let k = usize::from(*i) % self.topics.len();
                (self.topics[k].as_bytes().to_vec(), Some(k))
            }
            TopicSel::Unknown(i) => (format!("x{i}").into_bytes(), None),
            TopicSel::Raw(b) => {
                let mut b = b.clone();
                b.truncate(255);
                if b.is_empty() {
                    b.push(b'?');
                }
                let k = self.topics.iter().position(|t| t.as_bytes() == b.as_slice());
                (b, k)
            }
        }
    }

    /// Topic `k`'s tracker, when `epoch` is the current one.
    fn tracker(&self, epoch: u64, k: Option<usize>) -> Option<&SeqTracker> {
        let (e, books) = self.sub.current_books()?;
        (e == epoch).then(|| k.and_then(|k| books.get(k))).flatten()
    }

    fn seq(&self, epoch: u64, k: Option<usize>, s: Seq) -> u64 {
        let t = self.tracker(epoch, k);
        let known = t.map_or(0, SeqTracker::accounted_up_to);
        match s {
            Seq::Next(n) => known.saturating_add(1 + u64::from(n)),
            Seq::Back(n) => known.saturating_sub(u64::from(n)),
            Seq::Pending(i, off) => {
                let p = t.map(SeqTracker::pending_ranges).unwrap_or(&[]);
                match p.get(usize::from(i) % p.len().max(1)) {
                    Some(g) => g
                        .first
                        .saturating_add(u64::from(off) % (g.last.saturating_sub(g.first)).saturating_add(1)),
                    None => known.saturating_add(1),
                }
            }
            Seq::Abs(v) => v,
            Seq::NearMax(n) => u64::MAX - u64::from(n),
            Seq::Zero => 0,
        }
    }

    fn ago(&self, a: &Ago) -> u64 {
        match a {
            Ago::Now => self.now,
            Ago::Zero => 0,
            Ago::Back(n) => self.now.saturating_sub(u64::from(*n)),
            Ago::Abs(v) => *v,
        }
    }

    fn body(&self, b: &Body) -> Vec<u8> {
        match b {
            Body::Raw(v) => v.clone(),
            Body::Ticks { repair, epoch, ticks } => {
                let e = self.epoch(*epoch);
                let mut w = BodyWriter::new(if *repair { Kind::Repair } else { Kind::Data }, e);
                for r in ticks.iter().take(usize::from(u16::MAX) - 1) {
                    let (name, k) = self.topic(&r.topic);
                    let payload = vec![r.payload; usize::from(r.payload % 16)];
                    let seq = self.seq(e, k, r.seq);
                    w.push_sent(&name, seq, self.ago(&r.sent), self.ago(&r.intended), &payload);
                }
                w.as_bytes().to_vec()
            }
            Body::Lasts { kind, epoch, lasts } => {
                let e = self.epoch(*epoch);
                let kind = match kind {
                    LastKind::Heartbeat => Kind::Heartbeat,
                    LastKind::End => Kind::End,
                    LastKind::Snapshot => Kind::Snapshot,
                };
                let mut w = BodyWriter::new(kind, e);
                for (t, s) in lasts.iter().take(usize::from(u16::MAX) - 1) {
                    let (name, k) = self.topic(t);
                    w.push_last(&name, self.seq(e, k, *s), b"v");
                }
                w.as_bytes().to_vec()
            }
            Body::Ranges { nak, epoch, ranges } => {
                let e = self.epoch(*epoch);
                let mut w = BodyWriter::new(if *nak { Kind::Nak } else { Kind::Gone }, e);
                for (t, a, b) in ranges.iter().take(usize::from(u16::MAX) - 1) {
                    let (name, k) = self.topic(t);
                    w.push_range(&name, self.seq(e, k, *a), self.seq(e, k, *b));
                }
                w.as_bytes().to_vec()
            }
            Body::Clock { epoch, t1, t2, same_host } => {
                let id: &[u8] = if *same_host { clock_id() } else { b"another host" };
                let mut out = Vec::new();
                let c = wire::Clock { t1: self.ago(t1), t2: *t2, clock_id: id };
                wire::encode_clock(self.epoch(*epoch), &c, &mut out);
                out
            }
        }
    }

    /// The publisher's answer to the last repair request.
    fn answer_nak(&self, every: u8, gone: bool, epoch_shift: bool) -> Vec<Vec<u8>> {
        let Some(nak) = &self.last_nak else { return Vec::new() };
        let Ok(d) = wire::decode(nak) else { return Vec::new() };
        let epoch = if epoch_shift { d.epoch ^ 1 } else { d.epoch };
        let mut repair = BodyWriter::new(Kind::Repair, epoch);
        let mut lost = BodyWriter::new(Kind::Gone, epoch);
        let every = u64::from(every.max(1));
        for r in d.ranges().flatten() {
            let mut s = r.first;
            while s <= r.last && repair.count() < 512 {
                repair.push_sent(r.topic, s, self.now, 0, b"r");
                s = s.saturating_add(every);
                if s == u64::MAX {
                    break;
                }
            }
            if gone {
                lost.push_range(r.topic, r.first, r.last);
            }
        }
        [repair, lost].into_iter().filter(|w| !w.is_empty()).map(|w| w.as_bytes().to_vec()).collect()
    }

    /// What the worker does after every message and timer; returns whether it stops.
    fn follow_up(&mut self) -> bool {
        let now = self.now;
        self.sub.take_new_epoch();
        self.sub.take_snapshot_request(now);
        if let Some(t1) = self.sub.take_clock_request(now) {
            assert_eq!(t1, now);
        }
        if let Some(nak) = self.sub.take_nak(now) {
            self.check_nak(&nak);
            self.last_nak = Some(nak);
        }
        self.check();
        self.sub.stop_reason().is_some()
    }

    /// A repair request asks, in the current epoch, only for what awaits repair.
    fn check_nak(&self, nak: &[u8]) {
        let d = wire::decode(nak).expect("the ledger's own nak decodes");
        assert_eq!(d.kind, Kind::Nak);
        assert!(d.count >= 1 && d.count <= 64, "{} ranges in one nak", d.count);
        let (epoch, books) = self.sub.current_books().expect("a nak with no epoch");
        assert_eq!(d.epoch, epoch);
        for r in d.ranges() {
            let r = r.expect("the ledger's own nak decodes");
            let k = self.topics.iter().position(|t| t.as_bytes() == r.topic).expect("a topic it follows");
            let inside = books[k].pending_ranges().iter().any(|p| p.first <= r.first && r.last <= p.last);
            assert!(inside, "asked for {}..={} of {}, not pending", r.first, r.last, self.topics[k]);
        }
    }

    /// The invariants that hold after every step.
    fn check(&mut self) {
        for (what, len, cap) in self.sub.holdings() {
            assert!(len <= cap, "{what}: {len} > cap {cap}");
        }
        let counters = self.sub.counters();
        for (now, before) in counters.iter().zip(self.prev_counters) {
            assert!(*now >= before, "a ledger counter went back: {before} -> {now}");
        }
        self.prev_counters = counters;
        let Some((epoch, books)) = self.sub.current_books() else {
            self.prev = None;
            return;
        };
        let counts: Vec<Counts> = books.iter().map(Counts::of).collect();
        for t in books {
            let sum = u128::from(t.from_snapshot())
                + u128::from(t.received())
                + u128::from(t.repaired())
                + u128::from(t.pending())
                + u128::from(t.missing());
            assert_eq!(sum, u128::from(t.accounted_up_to()), "the books of one topic do not close: {t:?}");
            assert!(t.accounted_up_to() < u64::MAX);
            let p = t.pending_ranges();
            assert!(p.len() <= 2 * MAX_PENDING, "{} pending ranges", p.len());
            assert!(p.windows(2).all(|w| w[0].last < w[1].first), "pending ranges out of order: {p:?}");
            assert!(p.iter().all(|g| 1 <= g.first && g.first <= g.last && g.last <= t.accounted_up_to()));
            let pending: u128 = p.iter().map(|g| u128::from(g.len())).sum();
            assert_eq!(pending, u128::from(t.pending()));
            assert!(t.gaps().len() <= MAX_GAPS_KEPT);
            let listed: u128 = t.gaps().iter().map(|g| u128::from(g.len())).sum();
            assert!(listed <= u128::from(t.missing()));
            if t.gaps_unlisted() == 0 {
                assert_eq!(listed, u128::from(t.missing()), "every lost range listed");
            }
            if let Some(end) = t.ended_at() {
                assert!(end <= t.accounted_up_to());
            }
        }
        if let Some((e, before)) = &self.prev {
            if *e == epoch {
                for (b, a) in before.iter().zip(&counts) {
                    assert!(b.0.iter().zip(a.0).all(|(b, a)| a >= *b), "a counter went back: {b:?} -> {a:?}");
                }
            }
        }
        self.prev = Some((epoch, counts));
    }

    fn finish(&mut self) {
        let r = self.sub.finish(self.now, Outcome::Stopped);
        check_report(&r);
        if let Some(tally) = &self.tally {
            let t = tally.lock().unwrap();
            assert_eq!(sat(t.ticks), r.received(), "tick events vs the report");
            assert_eq!(sat(t.repaired), r.repaired(), "repaired events vs the report");
            assert_eq!(sat(t.lost), r.missing(), "lost ranges announced vs the report");
            assert_eq!(t.epochs, r.epochs.len() as u64 + r.epochs_unlisted, "epoch events vs the report");
        }
        assert_eq!(r.repair_latency.len(), r.repaired(), "one repair latency per repaired tick");
        assert!(r.latency.len() <= r.received());
        if r.outcome == Outcome::Complete {
            assert_eq!(r.latest().map(|e| e.outcome), Some(EpochOutcome::Complete));
        }
    }
}

/// The report's accounting, as `EpochReport::closes` and `ztick fanout`'s
/// `accounting_closes` decide it.
fn check_report(r: &SubscriberReport) {
    assert!(r.epochs.len() <= MAX_EPOCHS);
    for e in &r.epochs {
        for (name, t) in &e.topics {
            assert_eq!(t.pending(), 0, "{name}: pending at finish");
            let sum = u128::from(t.from_snapshot())
                + u128::from(t.received())
                + u128::from(t.repaired())
                + u128::from(t.missing());
            assert_eq!(sum, u128::from(t.accounted_up_to()), "{name}: {t:?}");
        }
        assert!(e.closes(), "epoch {:x} does not close", e.epoch);
        let sum = [e.received(), e.repaired(), e.missing(), e.from_snapshot()]
            .into_iter()
            .fold(0u64, u64::saturating_add);
        assert_eq!(sum, e.published(), "epoch {:x}: received + repaired + missing + snapshot", e.epoch);
    }
}

fn mangle(mut b: Vec<u8>, m: &Option<Mangle>) -> Vec<u8> {
    if let Some(m) = m {
        if !b.is_empty() {
            let i = usize::from(m.at) % b.len();
            b[i] ^= m.xor;
        }
        if let Some(cut) = m.cut {
            b.truncate(usize::from(cut));
        }
    }
    b
}

fn config(s: &Setup) -> (SubscriberConfig, bool) {
    let topics: Vec<String> = (0..=s.topics % 4).map(|i| format!("t{i}")).collect();
    let cfg = SubscriberConfig {
        name: "fuzz".into(),
        snapshot_join: s.snapshot_join && s.side && !s.conflate,
        conflate: s.conflate,
        keep_last_values: s.keep_last_values,
        liveness: Duration::from_millis(u64::from(s.liveness_ms.max(1))),
        follow: s.follow,
        repair: s.repair,
        repair_timeout: Duration::from_millis(u64::from(s.repair_timeout_ms.max(1))),
        repair_attempts: u32::from(s.repair_attempts % 5).max(1),
        max_seq_jump: match s.jump {
            Jump::Small => 1_000,
            Jump::Default => 1 << 20,
            Jump::Off => u64::MAX,
        },
        ..SubscriberConfig::for_topics(&topics)
    };
    cfg.validate(s.side).expect("a valid configuration");
    (cfg, s.side)
}

fuzz_target!(|input: Input| {
    let (cfg, side) = config(&input.setup);
    let tally = input.setup.sink.then(|| Arc::new(Mutex::new(Tally::default())));
    let sink = tally.clone().map(|t| {
        let topics = cfg.topics.len();
        Box::new(move |e: &Event<'_>| {
            let mut t = t.lock().unwrap();
            match *e {
                Event::Tick(d) => {
                    assert!(d.seq >= 1 && d.seq < u64::MAX && d.topic_index < topics);
                    if d.repaired {
                        t.repaired += 1;
                    } else {
                        t.ticks += 1;
                    }
                }
                Event::Gap { first, last, topic_index, .. } => {
                    assert!(1 <= first && first <= last && topic_index < topics, "gap {first}..={last}");
                    t.lost += u128::from(last - first) + 1;
                }
                Event::Repairing { first, last, .. } => assert!(1 <= first && first <= last),
                Event::Epoch { .. } => t.epochs += 1,
                _ => {}
            }
        }) as Box<dyn FnMut(&Event<'_>) + Send>
    });
    let mut h = Harness {
        sub: Subscriber::new(&cfg, side, sink),
        topics: cfg.topics.clone(),
        now: 1_000 * MS,
        last_nak: None,
        prev: None,
        prev_counters: [0; 3],
        tally,
    };
    h.follow_up();
    for step in input.steps.iter().take(512) {
        let stop = match step {
            Step::Feed { message, mangle: m } => {
                let res = match message {
                    Feed::Two(b) => h.sub.on_feed(&[GROUP, &mangle(h.body(b), m)], h.now),
                    Feed::Single(b) => {
                        let mut one = GROUP.to_vec();
                        one.push(0);
                        one.extend_from_slice(&h.body(b));
                        h.sub.on_feed(&[&mangle(one, m)], h.now)
                    }
                    Feed::Frames(frames) if frames.len() > 2 => {
                        Err(h.sub.refuse(format!("{} frames", frames.len())))
                    }
                    Feed::Frames(frames) => {
                        let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
                        h.sub.on_feed(&refs, h.now)
                    }
                };
                if let Err(e) = res {
                    assert!(e.to_string().contains("fuzz"), "the error names the subscriber: {e}");
                }
                h.follow_up()
            }
            Step::Side { body, mangle: m } => {
                let _ = h.sub.on_side(&mangle(h.body(body), m), h.now);
                h.follow_up()
            }
            Step::Wait(w) => {
                h.now = match w {
                    Wait::Ns(n) => h.now + u64::from(*n),
                    Wait::Ms(n) => h.now + u64::from(*n) * MS,
                    Wait::Secs(n) => h.now + u64::from(*n) * 1_000 * MS,
                    Wait::ToDeadline => match h.sub.next_deadline() {
                        u64::MAX => h.now,
                        at => at.clamp(h.now, h.now + 3_600_000 * MS),
                    },
                };
                h.sub.on_timer(h.now);
                h.follow_up()
            }
            Step::Storm { epoch, topic, from, count, stride } => {
                let e = h.epoch(*epoch);
                let k = usize::from(*topic) % h.topics.len();
                let mut s = h.seq(e, Some(k), *from);
                let mut w = BodyWriter::new(Kind::Data, e);
                for _ in 0..*count {
                    w.push_sent(h.topics[k].as_bytes(), s, h.now, h.now, b"");
                    s = s.saturating_add(u64::from(*stride) + 1);
                }
                let _ = h.sub.on_feed(&[GROUP, w.as_bytes()], h.now);
                h.follow_up()
            }
            Step::AnswerNak { every, gone, epoch_shift } => {
                let mut stop = false;
                for body in h.answer_nak(*every, *gone, *epoch_shift) {
                    let _ = h.sub.on_side(&body, h.now);
                    stop = h.follow_up();
                    if stop {
                        break;
                    }
                }
                stop
            }
        };
        if stop {
            break;
        }
    }
    h.finish();
});
