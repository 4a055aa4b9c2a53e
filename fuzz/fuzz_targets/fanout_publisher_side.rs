//! The publisher's sans-IO stream (`src/fanout/stream.rs` and `peers.rs`, reached through
//! `ztick::fuzz_hooks::Publisher`) driven by arbitrary peers: XPUB subscription messages
//! (hellos coming and going, any bytes), side-channel requests (`HELLO`, `SNAPSHOT`,
//! `DONE`, `NAK` with well-formed or raw bodies of any epoch, `CLOCK`, unknown verbs, any
//! frame count, from any routing id for any hello), and the publisher's own ticks,
//! heartbeats, end markers and repair passes; `JoinMany` and `NakFloodAll` bring many
//! subscribers and full repair queues within a few steps.
//!
//! Beyond "no panic" it asserts, after every step: every per-peer structure is within its
//! cap (hellos, bound connections, waiting introductions, acknowledgements, id lengths,
//! repair jobs in all and per subscriber), no repair job reaches past what was published;
//! every message sent is what a publisher may send: the feed's ticks of each topic in
//! sequence without a gap, heartbeats and end markers announcing exactly what was
//! published, snapshots likewise, repairs carrying exactly the payload first published
//! under that sequence, "gone" ranges of this epoch within what was published, every side
//! reply addressed to a connection that spoke; and at the end the report's counts (ticks
//! published, retransmitted, gone) match what the messages carried.
#![no_main]

use std::collections::HashSet;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use ztick::fanout::wire::{self, BodyWriter, Kind};
use ztick::fanout::PublisherConfig;
use ztick::fuzz_hooks::{Publisher, Sent};

#[derive(Arbitrary, Debug)]
struct Input {
    setup: Setup,
    steps: Vec<Step>,
}

#[derive(Arbitrary, Debug)]
struct Setup {
    topics: u8,
    groups: u8,
    side: bool,
    single_frame: bool,
    ring: Ring,
    max_batch: u8,
}

#[derive(Arbitrary, Debug)]
enum Ring {
    Off,
    Tiny,
    Small,
    Large,
}

#[derive(Arbitrary, Debug)]
enum Step {
    Publish {
        topic: u8,
        count: u8,
    },
    Flush,
    Heartbeat,
    End,
    /// A hello subscription arriving (`on`) or withdrawn.
    Hello {
        id: Id,
        on: bool,
    },
    /// Any XPUB message.
    Subscription(Vec<u8>),
    /// A side-channel request: `[rid][verb][hello]` and, for some verbs, a fourth frame.
    Request {
        rid: Id,
        verb: Verb,
        hello: Id,
        extra: Extra,
    },
    /// Any frames on the side channel (the worker passes at most four).
    Frames(Vec<Vec<u8>>),
    Nak {
        rid: Id,
        hello: Id,
        epoch: Epoch,
        ranges: Vec<(Topic, u16, u16)>,
    },
    /// `n` subscribers subscribe and introduce themselves (`JoinMany`'s ids).
    JoinMany {
        n: u8,
        base: u16,
    },
    /// Every subscriber `JoinMany` brought asks for `count` single ticks, two apart.
    NakFloodAll {
        count: u8,
    },
    Serve {
        passes: u8,
    },
    Wait {
        secs: u8,
    },
}

#[derive(Arbitrary, Debug, Clone)]
enum Id {
    Known(u8),
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum Verb {
    Hello,
    Snapshot,
    Done,
    Nak,
    Clock,
    Other(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum Extra {
    None,
    Bytes(Vec<u8>),
    T1(u64),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Epoch {
    Ours,
    Other(u64),
}

#[derive(Arbitrary, Debug)]
enum Topic {
    Known(u8),
    Raw(Vec<u8>),
}

fn id_bytes(id: &Id, what: &str) -> Vec<u8> {
    match id {
        Id::Known(n) => format!("{what}{}", n % 8).into_bytes(),
        Id::Raw(b) => b.clone(),
    }
}

/// The payload published as sequence `seq` of topic `k`.
fn payload(k: usize, seq: u64) -> Vec<u8> {
    vec![(seq as u8) ^ (k as u8); ((seq * 7 + k as u64) % 24) as usize]
}

struct Harness {
    p: Publisher,
    out: Sent,
    topics: Vec<String>,
    groups: usize,
    single_frame: bool,
    /// Sequences published, per topic.
    published: Vec<u64>,
    /// Sequences seen on the feed, per topic.
    on_feed: Vec<u64>,
    rids: HashSet<Vec<u8>>,
    many: Vec<(Vec<u8>, Vec<u8>)>,
    retransmitted: u64,
    gone: u128,
    now: u64,
}

impl Harness {
    fn topic_index(&self, name: &[u8]) -> Option<usize> {
        self.topics.iter().position(|t| t.as_bytes() == name)
    }

    fn request(&mut self, frames: &[&[u8]]) {
        if let Some(rid) = frames.first() {
            self.rids.insert(rid.to_vec());
        }
        let _ = self.p.on_side_request(&mut self.out, &frames[..frames.len().min(4)], self.now);
    }

    /// What the stream sent since the last step is what a publisher may send.
    fn check_sent(&mut self) {
        let epoch = self.p.epoch();
        for m in std::mem::take(&mut self.out.feed) {
            let (group, body) = match (self.single_frame, m.as_slice()) {
                (false, [g, b]) => (g.clone(), b.clone()),
                (true, [one]) => {
                    let nul = one.iter().position(|&b| b == 0).expect("group 0x00 body");
                    (one[..nul].to_vec(), one[nul + 1..].to_vec())
                }
                _ => panic!("a feed message of {} frames", m.len()),
            };
            let d = wire::decode(&body).expect("the feed decodes");
            assert_eq!(d.epoch, epoch);
            let g = std::str::from_utf8(&group)
                .ok()
                .and_then(|g| g.strip_prefix('g')?.strip_suffix('.')?.parse().ok());
            let g: usize = g.expect("a group name");
            assert!(g < self.groups);
            for r in d.records() {
                let t = r.expect("the feed's records decode");
                let k = self.topic_index(t.topic).expect("a topic published");
                assert_eq!(k % self.groups, g, "topic in its group");
                match d.kind {
                    Kind::Data => {
                        assert_eq!(t.seq, self.on_feed[k] + 1, "{}: ticks in sequence", self.topics[k]);
                        assert_eq!(t.payload, payload(k, t.seq));
                        self.on_feed[k] = t.seq;
                    }
                    Kind::Heartbeat | Kind::End => {
                        assert_eq!(t.seq, self.published[k], "a control record announces what was published");
                        assert_eq!(t.seq, self.on_feed[k], "and nothing not yet sent");
                        let last = if t.seq == 0 { Vec::new() } else { payload(k, t.seq) };
                        assert_eq!(t.payload, last);
                    }
                    k => panic!("a {k:?} body on the feed"),
                }
            }
        }
        for m in std::mem::take(&mut self.out.side) {
            let [rid, body] = m.as_slice() else { panic!("a side reply of {} frames", m.len()) };
            assert!(self.rids.contains(rid), "a reply to a connection that never spoke");
            let d = wire::decode(body).expect("the side reply decodes");
            match d.kind {
                Kind::Snapshot => {
                    assert_eq!(d.epoch, epoch);
                    for r in d.records() {
                        let t = r.expect("the snapshot decodes");
                        let k = self.topic_index(t.topic).expect("a topic published");
                        assert_eq!((t.seq, t.seq), (self.published[k], self.on_feed[k]));
                    }
                }
                Kind::Repair => {
                    assert_eq!(d.epoch, epoch);
                    for r in d.records() {
                        let t = r.expect("a repair decodes");
                        let k = self.topic_index(t.topic).expect("a topic published");
                        assert!(
                            t.seq >= 1 && t.seq <= self.published[k],
                            "repaired {} of {}",
                            t.seq,
                            self.published[k]
                        );
                        assert_eq!(t.payload, payload(k, t.seq), "the payload first published");
                        self.retransmitted += 1;
                    }
                }
                Kind::Gone => {
                    for r in d.ranges() {
                        let r = r.expect("a gone body decodes");
                        if d.epoch == epoch {
                            let k = self.topic_index(r.topic).expect("a topic published");
                            assert!(
                                r.last <= self.published[k],
                                "gone {}..={} of {}",
                                r.first,
                                r.last,
                                self.published[k]
                            );
                            self.gone += u128::from(r.last - r.first) + 1;
                        }
                    }
                }
                Kind::Clock => {
                    assert_eq!(d.epoch, epoch);
                    assert_eq!(d.clock().expect("a clock reply decodes").t2, self.out.now_ns);
                }
                k => panic!("a {k:?} body on the side channel"),
            }
        }
        for (what, len, cap) in self.p.holdings() {
            assert!(len <= cap, "{what}: {len} > cap {cap}");
        }
    }
}

fn nak(epoch: u64, ranges: impl IntoIterator<Item = (Vec<u8>, u64, u64)>) -> Vec<u8> {
    let mut w = BodyWriter::new(Kind::Nak, epoch);
    for (t, a, b) in ranges.into_iter().take(usize::from(u16::MAX) - 1) {
        let mut t = t;
        t.truncate(255);
        if t.is_empty() {
            t.push(b'?');
        }
        w.push_range(&t, a, b);
    }
    w.as_bytes().to_vec()
}

fuzz_target!(|input: Input| {
    let s = &input.setup;
    let topics: Vec<String> = (0..=s.topics % 4).map(|i| format!("t{i}")).collect();
    let groups = usize::from(s.groups) % topics.len() + 1;
    let cfg = PublisherConfig {
        topics: topics.clone(),
        groups,
        max_batch: usize::from(s.max_batch.max(1)),
        single_frame: s.single_frame,
        retransmit_ring_bytes: match s.ring {
            Ring::Off => 0,
            Ring::Tiny => 100,
            Ring::Small => 2_000,
            Ring::Large => 1 << 20,
        },
        ..PublisherConfig::default()
    };
    cfg.validate().expect("a valid configuration");
    let mut h = Harness {
        p: Publisher::new(&cfg, s.side),
        out: Sent { now_ns: 1_000, ..Sent::default() },
        published: vec![0; topics.len()],
        on_feed: vec![0; topics.len()],
        topics,
        groups,
        single_frame: s.single_frame,
        rids: HashSet::new(),
        many: Vec::new(),
        retransmitted: 0,
        gone: 0,
        now: 1_000_000_000,
    };
    let epoch = h.p.epoch();
    for step in input.steps.iter().take(256) {
        match step {
            Step::Publish { topic, count } => {
                let k = usize::from(*topic) % h.topics.len();
                for _ in 0..*count {
                    h.published[k] += 1;
                    let _ = h.p.push(&mut h.out, k, h.now, &payload(k, h.published[k]), h.now);
                }
            }
            Step::Flush => {
                let _ = h.p.flush_all(&mut h.out);
            }
            Step::Heartbeat => {
                let _ = h.p.send_control(&mut h.out, Kind::Heartbeat);
            }
            Step::End => {
                let _ = h.p.send_control(&mut h.out, Kind::End);
            }
            Step::Hello { id, on } => {
                let mut f = vec![u8::from(*on)];
                f.extend_from_slice(wire::HELLO_PREFIX);
                f.extend_from_slice(&id_bytes(id, "h"));
                let _ = h.p.on_subscription(&mut h.out, &f, h.now);
            }
            Step::Subscription(frame) => {
                let _ = h.p.on_subscription(&mut h.out, frame, h.now);
            }
            Step::Request { rid, verb, hello, extra } => {
                let (rid, hello) = (id_bytes(rid, "r"), id_bytes(hello, "h"));
                let verb: &[u8] = match verb {
                    Verb::Hello => wire::HELLO_REQUEST,
                    Verb::Snapshot => wire::SNAPSHOT_REQUEST,
                    Verb::Done => wire::DONE_ACK,
                    Verb::Nak => wire::NAK_REQUEST,
                    Verb::Clock => wire::CLOCK_REQUEST,
                    Verb::Other(v) => v,
                };
                let extra = match extra {
                    Extra::None => None,
                    Extra::Bytes(b) => Some(b.clone()),
                    Extra::T1(t) => Some(t.to_le_bytes().to_vec()),
                };
                let mut frames: Vec<&[u8]> = vec![&rid, verb, &hello];
                frames.extend(extra.as_deref());
                h.request(&frames);
            }
            Step::Frames(frames) => {
                let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
                h.request(&refs);
            }
            Step::Nak { rid, hello, epoch: e, ranges } => {
                let e = match e {
                    Epoch::Ours => epoch,
                    Epoch::Other(x) => *x,
                };
                let ranges = ranges.iter().map(|(t, a, b)| {
                    let t = match t {
                        Topic::Known(i) => h.topics[usize::from(*i) % h.topics.len()].as_bytes().to_vec(),
                        Topic::Raw(b) => b.clone(),
                    };
                    (t, u64::from(*a), u64::from(*a) + u64::from(*b))
                });
                let body = nak(e, ranges);
                let (rid, hello) = (id_bytes(rid, "r"), id_bytes(hello, "h"));
                h.request(&[&rid, wire::NAK_REQUEST, &hello, &body]);
            }
            Step::JoinMany { n, base } => {
                for i in 0..u32::from(*n) {
                    let id = format!("many{}", u32::from(*base) + i).into_bytes();
                    let rid = format!("rmany{}", u32::from(*base) + i).into_bytes();
                    let mut f = vec![1];
                    f.extend_from_slice(wire::HELLO_PREFIX);
                    f.extend_from_slice(&id);
                    let _ = h.p.on_subscription(&mut h.out, &f, h.now);
                    h.request(&[&rid, wire::HELLO_REQUEST, &id]);
                    h.many.push((rid, id));
                }
            }
            Step::NakFloodAll { count } => {
                let t0 = h.topics[0].as_bytes().to_vec();
                let body = nak(epoch, (0..u64::from(*count)).map(|i| (t0.clone(), 2 * i + 1, 2 * i + 1)));
                for (rid, id) in h.many.clone() {
                    h.request(&[&rid, wire::NAK_REQUEST, &id, &body]);
                }
            }
            Step::Serve { passes } => {
                for _ in 0..=*passes % 8 {
                    if !matches!(h.p.serve_repairs(&mut h.out), Ok(n) if n > 0) {
                        break;
                    }
                }
            }
            Step::Wait { secs } => {
                h.now += u64::from(*secs) * 1_000_000_000;
                h.out.now_ns += u64::from(*secs) * 1_000_000_000;
            }
        }
        assert!(h.p.subscribers() <= 4096);
        let _ = h.p.all_acknowledged();
        h.check_sent();
    }
    let _ = h.p.flush_all(&mut h.out);
    h.check_sent();
    let r = h.p.take_report();
    assert_eq!(r.published, h.published.iter().sum::<u64>());
    assert_eq!(r.retransmitted, h.retransmitted, "the ticks the repair messages carried");
    assert_eq!(r.gone, u64::try_from(h.gone).unwrap_or(u64::MAX), "the ticks the gone messages named");
    let last: Vec<u64> = r.last_seq.iter().map(|(_, q)| *q).collect();
    assert_eq!(last, h.published);
});
