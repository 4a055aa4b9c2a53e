//! Property test of the subscriber's accounting (`fanout::ledger`, stable Rust, in
//! `cargo test`): a model publisher publishes sequences `1..=n` per topic in each of up to
//! three epochs, and the ledger receives them in an arbitrary order, with duplicates,
//! losses, heartbeats, stragglers of closed epochs, repairs and "gone" answers on the side
//! channel, and forged sequence jumps (far ahead, or near `u64::MAX`). Each epoch ends with
//! its end marker.
//!
//! After every step each topic's books close (`from_snapshot + received + repaired +
//! pending + missing == accounted_up_to`, in u128 so a wrap cannot hide). At finish every
//! epoch is reported, and per topic: nothing pending, the highest sequence accounted for is
//! exactly what the model published (a forged jump is refused, never believed), and
//! `received + repaired + missing + from_snapshot` equals it; `received + repaired` is at
//! most the distinct sequences really sent. The fuzz target `fanout_subscriber` (fuzz/)
//! checks the same books against arbitrary bytes; this test checks them against the truth.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use proptest::prelude::*;

use crate::fanout::wire::{BodyWriter, Kind};
use crate::fanout::{Event, Ledger, Outcome, SubscriberConfig, MAX_PENDING};

const MS: u64 = 1_000_000;
const GROUP: &[u8] = b"g0.";
const TOPICS: [&str; 3] = ["t0", "t1", "t2"];

/// One thing the network hands the subscriber, relative to the model's state.
#[derive(Debug, Clone)]
enum Op {
    /// A data body of these (topic, index into the epoch's publications) ticks.
    Ticks(Vec<(usize, usize)>),
    /// A heartbeat claiming that the `i`-th publication of the topic happened.
    Heartbeat(usize, usize),
    /// A forged tick far past anything published: `2^40 + x`, or `u64::MAX - x`.
    Jump(usize, bool, u16),
    /// A tick of an epoch already closed (`back` epochs ago).
    Straggler(usize, usize, usize),
    /// The side channel repairs these (topic, index) ticks.
    Repair(Vec<(usize, usize)>),
    /// The side channel says these (topic, from index, to index) are gone.
    Gone(usize, usize, usize),
    /// Time passes, by this many ms; timers run.
    Wait(u8),
}

fn op() -> impl Strategy<Value = Op> {
    let pick = (0..TOPICS.len(), 0usize..64);
    prop_oneof![
        6 => prop::collection::vec(pick.clone(), 1..6).prop_map(Op::Ticks),
        1 => pick.clone().prop_map(|(k, i)| Op::Heartbeat(k, i)),
        1 => (0..TOPICS.len(), any::<bool>(), any::<u16>()).prop_map(|(k, m, x)| Op::Jump(k, m, x)),
        1 => (1usize..3, 0..TOPICS.len(), 0usize..64).prop_map(|(b, k, i)| Op::Straggler(b, k, i)),
        1 => prop::collection::vec(pick.clone(), 1..4).prop_map(Op::Repair),
        1 => (0..TOPICS.len(), 0usize..64, 0usize..64).prop_map(|(k, a, b)| Op::Gone(k, a, b)),
        1 => (0u8..40).prop_map(Op::Wait),
    ]
}

/// One epoch of the model: how many ticks each topic publishes, and what the network does.
#[derive(Debug, Clone)]
struct Epoch {
    published: Vec<u64>,
    ops: Vec<Op>,
    /// Whether the end marker comes twice (a repeat must change nothing).
    ends_twice: bool,
}

fn epoch(topics: usize) -> impl Strategy<Value = Epoch> {
    (prop::collection::vec(0u64..40, topics), prop::collection::vec(op(), 0..60), any::<bool>())
        .prop_map(|(published, ops, ends_twice)| Epoch { published, ops, ends_twice })
}

struct Run {
    ledger: Ledger,
    now: u64,
    topics: usize,
    /// The ledger's counters (decode errors, implausible claims, naks) at the last check.
    counters: [u64; 3],
}

impl Run {
    fn feed(&mut self, kind: Kind, epoch: u64, recs: &[(usize, u64)]) {
        let mut w = BodyWriter::new(kind, epoch);
        for &(k, seq) in recs {
            if kind == Kind::Data {
                w.push_sent(TOPICS[k].as_bytes(), seq, self.now, self.now, b"p");
            } else {
                w.push_last(TOPICS[k].as_bytes(), seq, b"");
            }
        }
        // Garbage is refused with an error and counted; the books must close either way.
        let _ = self.ledger.on_feed(&[GROUP, w.as_bytes()], self.now);
        self.follow_up();
    }

    fn side(&mut self, body: &[u8]) {
        let _ = self.ledger.on_side(body, self.now);
        self.follow_up();
    }

    /// What the worker does after every message; then the books must close.
    fn follow_up(&mut self) {
        self.ledger.on_timer(self.now);
        self.ledger.take_new_epoch();
        let _ = self.ledger.take_nak(self.now);
        let _ = self.ledger.take_clock_request(self.now);
        self.check();
    }

    fn check(&mut self) {
        for (what, len, cap) in self.ledger.holdings() {
            assert!(len <= cap, "{what}: {len} > cap {cap}");
        }
        let counters = self.ledger.counters();
        assert!(
            counters.iter().zip(self.counters).all(|(now, before)| *now >= before),
            "a counter went back"
        );
        self.counters = counters;
        let Some((_, books)) = self.ledger.current_books() else { return };
        assert_eq!(books.len(), self.topics);
        for t in books {
            let sum = u128::from(t.from_snapshot())
                + u128::from(t.received())
                + u128::from(t.repaired())
                + u128::from(t.pending())
                + u128::from(t.missing());
            assert_eq!(sum, u128::from(t.accounted_up_to()), "the books of one topic do not close: {t:?}");
        }
    }
}

/// Sequence `i` (wrapped into range) of a topic that published `n`, if it published any.
fn seq_of(n: u64, i: usize) -> Option<u64> {
    (n > 0).then(|| i as u64 % n + 1)
}

fn run(topics: usize, repair: bool, epochs: &[Epoch]) {
    let names = &TOPICS[..topics];
    let cfg = SubscriberConfig {
        name: "props".into(),
        follow: true,
        repair,
        liveness: std::time::Duration::from_secs(3600),
        ..SubscriberConfig::for_topics(names)
    };
    cfg.validate(repair).expect("a valid configuration");
    let mut r = Run {
        ledger: Ledger::new(&cfg, repair, Arc::default(), None),
        now: 1_000 * MS,
        topics,
        counters: [0; 3],
    };
    // Distinct sequences really delivered, per epoch and topic.
    let mut sent: Vec<Vec<HashSet<u64>>> = Vec::new();
    for (e, ep) in epochs.iter().enumerate() {
        let id = 0xE0 + e as u64;
        sent.push(vec![HashSet::new(); topics]);
        // A forged jump is only tried once the topic's start is set by a real claim.
        let mut claimed = vec![false; topics];
        for op in &ep.ops {
            r.now += MS;
            match op {
                Op::Ticks(picks) => {
                    let recs: Vec<(usize, u64)> = picks
                        .iter()
                        .filter_map(|&(k, i)| Some((k % topics, seq_of(ep.published[k % topics], i)?)))
                        .collect();
                    if recs.is_empty() {
                        continue;
                    }
                    for &(k, s) in &recs {
                        sent[e][k].insert(s);
                        claimed[k] = true;
                    }
                    r.feed(Kind::Data, id, &recs);
                }
                &Op::Heartbeat(k, i) => {
                    let k = k % topics;
                    let Some(s) = seq_of(ep.published[k], i) else { continue };
                    claimed[k] = true;
                    r.feed(Kind::Heartbeat, id, &[(k, s)]);
                }
                &Op::Jump(k, near_max, x) => {
                    let k = k % topics;
                    if !claimed[k] {
                        continue;
                    }
                    let s = if near_max { u64::MAX - u64::from(x) } else { (1 << 40) + u64::from(x) };
                    r.feed(Kind::Data, id, &[(k, s)]);
                    r.feed(Kind::Heartbeat, id, &[(k, s)]);
                }
                &Op::Straggler(back, k, i) => {
                    let k = k % topics;
                    let Some(old) = e.checked_sub(back) else { continue };
                    let Some(s) = seq_of(epochs[old].published[k], i) else { continue };
                    r.feed(Kind::Data, 0xE0 + old as u64, &[(k, s)]);
                }
                Op::Repair(picks) => {
                    let mut w = BodyWriter::new(Kind::Repair, id);
                    for &(k, i) in picks {
                        let k = k % topics;
                        if let Some(s) = seq_of(ep.published[k], i) {
                            sent[e][k].insert(s);
                            w.push_sent(TOPICS[k].as_bytes(), s, r.now, r.now, b"r");
                        }
                    }
                    if !w.is_empty() {
                        r.side(w.as_bytes());
                    }
                }
                &Op::Gone(k, a, b) => {
                    let k = k % topics;
                    let (Some(a), Some(b)) = (seq_of(ep.published[k], a), seq_of(ep.published[k], b)) else {
                        continue;
                    };
                    let mut w = BodyWriter::new(Kind::Gone, id);
                    w.push_range(TOPICS[k].as_bytes(), a.min(b), a.max(b));
                    r.side(w.as_bytes());
                }
                &Op::Wait(ms) => {
                    r.now += u64::from(ms) * MS;
                    r.follow_up();
                }
            }
        }
        // The epoch ends: its end marker, once or twice.
        let ends: Vec<(usize, u64)> = ep.published[..topics].iter().copied().enumerate().collect();
        for _ in 0..1 + usize::from(ep.ends_twice) {
            r.now += MS;
            r.feed(Kind::End, id, &ends);
        }
    }

    let report = r.ledger.finish(r.now + MS, Outcome::Stopped);
    let listed: Vec<u64> = report.epochs.iter().map(|e| e.epoch).collect();
    let expected: Vec<u64> = (0..epochs.len() as u64).map(|e| 0xE0 + e).collect();
    assert_eq!(listed, expected, "every epoch reported, in order");
    for (e, (ep, rep)) in epochs.iter().zip(&report.epochs).enumerate() {
        assert!(rep.closes(), "epoch {:x} does not close", rep.epoch);
        for (k, (name, t)) in rep.topics.iter().enumerate() {
            let truth = ep.published[k];
            assert_eq!(t.pending(), 0, "{name} in epoch {e}: pending at finish");
            assert_eq!(t.accounted_up_to(), truth, "{name} in epoch {e}: published {truth}, accounted {t:?}");
            let sum = u128::from(t.from_snapshot())
                + u128::from(t.received())
                + u128::from(t.repaired())
                + u128::from(t.missing());
            assert_eq!(sum, u128::from(truth), "{name} in epoch {e}: {t:?}");
            let delivered = sent[e][k].len() as u64;
            assert!(
                t.received() + t.repaired() <= delivered,
                "{name} in epoch {e}: more than was sent: {t:?}"
            );
        }
        let published: u64 = ep.published[..topics].iter().sum();
        assert_eq!(rep.published(), published, "epoch {e}");
        assert_eq!(rep.received() + rep.repaired() + rep.missing() + rep.from_snapshot(), published);
    }
}

proptest! {
    // Bounded: 256 cases of up to 3 epochs of 60 steps run in well under a second each.
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_books_close_at_what_was_published(
        topics in 1..=TOPICS.len(),
        repair in any::<bool>(),
        epochs in prop::collection::vec(epoch(TOPICS.len()), 1..=3),
    ) {
        run(topics, repair, &epochs);
    }
}

/// Found by the fuzz target `fanout_subscriber`: repairs arriving out of order split a
/// pending range until the tracker's list is full, then the tracker loses the rest of the
/// range instead; that loss was counted in the report but never announced to the
/// application (no `Event::Gap`) nor counted in the slow window. Every loss is announced.
#[test]
fn losses_from_a_full_pending_list_are_announced() {
    let cfg = SubscriberConfig { name: "props".into(), ..SubscriberConfig::for_topics(&["a"]) };
    let lost = Arc::new(Mutex::new(0u64));
    let seen = Arc::clone(&lost);
    let sink = Box::new(move |e: &Event<'_>| {
        if let Event::Gap { first, last, .. } = *e {
            *seen.lock().unwrap() += last - first + 1;
        }
    });
    let mut ledger = Ledger::new(&cfg, true, Arc::default(), Some(sink));
    let mut feed = BodyWriter::new(Kind::Data, 0xE1);
    feed.push_sent(b"a", 1, 1, 1, b"");
    feed.push_sent(b"a", 3_000, 1, 1, b"");
    ledger.on_feed(&[GROUP, feed.as_bytes()], 10).unwrap();
    // 2..=2999 awaits repair; every other tick of it repaired splits it once more.
    for s in (3..).step_by(2).take(2 * MAX_PENDING + 5) {
        let mut w = BodyWriter::new(Kind::Repair, 0xE1);
        w.push_sent(b"a", s, 1, 1, b"");
        ledger.on_side(w.as_bytes(), 20).unwrap();
    }
    let books = ledger.current_books().expect("an epoch").1[0].clone();
    assert!(books.missing() > 0, "the tracker lost the tail of a range: {books:?}");
    assert_eq!(*lost.lock().unwrap(), books.missing(), "every loss announced as it happens");
    let r = ledger.finish(30, Outcome::Stopped);
    assert_eq!(*lost.lock().unwrap(), r.missing(), "lost ranges announced vs the report");
    assert_eq!(r.received() + r.repaired() + r.missing(), r.latest().unwrap().published());
}
