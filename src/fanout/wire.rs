//! The tick wire format, version 2. Plain ZMTP frames, so any ZeroMQ peer can read it.
//!
//! A feed message is `[group][body]` (two frames), or, for conflated feeds (libzmq's
//! `ZMQ_CONFLATE` drops multipart messages), one frame `group 0x00 body`. The group frame is
//! what SUB sockets filter on; each record names its own topic, so one message carries the
//! ticks of every topic in its group. Coalescing across topics is what makes batching pay:
//! with 8 topics at 100,000 ticks/s, per-topic batches held about 1.5 ticks each and every
//! subscriber woke for each of ~130,000 messages a second, which two cores could not keep
//! up with (p50 0.5 ms); one group per feed turns the same load into one message per
//! publisher pass. Topics and groups are non-empty, at most 255 bytes, and have no NUL.
//! Integers are little-endian.
//!
//! ```text
//! body   := version:u8 (=2) | kind:u8 | count:u16 | epoch:u64 | count x record
//! topic  := len:u8 | bytes[len]
//! tick   := topic | seq:u64 | sent_ns:u64 | intended_ns:u64 | len:u16 | payload[len]
//! last   := topic | last_seq:u64 | len:u16 | last_value[len]
//! range  := topic | first:u64 | last:u64
//! kind 0 (data):       count x tick      the stream
//! kind 1 (heartbeat):  count x last      each topic's last sequence sent so far
//! kind 2 (end):        count x last      each topic's final sequence: those topics end
//! kind 3 (repair):     count x tick      ticks sent again from the retransmit ring
//! kind 4 (gone):       count x range     asked for, but no longer in the ring
//! kind 5 (snapshot):   count x last      each topic's state, for a late joiner
//! kind 6 (nak):        count x range     a subscriber's request for missing ticks
//! kind 7 (clock):      count 0, then t1:u64 | t2:u64 | id_len:u8 | clock id[id_len]
//! ```
//!
//! A clock body answers a subscriber's `[CLOCK][hello id][t1]`: its own send time `t1`,
//! the publisher's CLOCK_MONOTONIC `t2` when it answered, and the publisher's clock id (the
//! kernel's boot id: the same id is the same clock). From it a subscriber on another host
//! estimates the clocks' offset, `t2 - (t1 + t3) / 2`, within half the round trip.
//!
//! The **epoch** is a random number a publisher picks when it starts and carries in every
//! body, so a publisher restarted on the same endpoint is seen as a new stream, never as
//! old ticks. Sequences start at 1 per topic and epoch; `last_seq` 0 means nothing was
//! published yet. Control records repeat the topic's last payload, so a conflating
//! subscriber, whose socket keeps only the newest message, still ends holding the latest
//! value when an end marker is the newest message.
//!
//! `intended_ns` is the time the schedule meant the tick to leave (0 when unknown), so a
//! receiver can measure latency without coordinated omission; ticks from a
//! [`TickPublisher`](super::TickPublisher) carry the time the application handed them
//! over. `sent_ns` and `intended_ns` are CLOCK_MONOTONIC, comparable across processes of
//! one host; a repaired tick keeps its first send time.
//!
//! The side channel (the publisher's ROUTER, a subscriber's DEALER) carries requests
//! `[verb][hello id]` (`HELLO`, `SNAPSHOT`, `DONE`) and `[NAK][hello id][nak body]`; its
//! replies are single-frame bodies (snapshot, repair, gone). The hello id, random, also
//! travels in the subscriber's hello subscription: saying it on the side channel binds the
//! connection to the subscriber (`fanout::peers`).

use crate::error::{Error, Result};

/// A decoding failure of the wire format; the caller replaces the context with where the
/// bytes came from.
fn malformed(reason: impl Into<String>) -> Error {
    Error::Decode { context: "a fan-out message".into(), reason: reason.into() }
}

/// The format version this code writes and reads.
pub const VERSION: u8 = 2;
/// Bytes of a body header.
pub const BODY_HEADER: usize = 12;
/// Bytes of a tick record after its topic and before its payload.
const TICK_FIXED: usize = 26;

/// What a body carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Ticks of the stream.
    Data,
    /// Each topic's last sequence sent so far.
    Heartbeat,
    /// Each topic's final sequence: those topics end.
    End,
    /// Ticks sent again from the retransmit ring, on the side channel.
    Repair,
    /// Ranges asked for that the ring no longer holds, on the side channel.
    Gone,
    /// Each topic's last sequence and value, for a late joiner, on the side channel.
    Snapshot,
    /// A subscriber's request for missing ranges, on the side channel.
    Nak,
    /// The publisher's clock, answering a subscriber's clock request, on the side channel.
    Clock,
}

/// How a kind's records are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    Tick,
    Last,
    Range,
}

impl Kind {
    fn to_u8(self) -> u8 {
        match self {
            Kind::Data => 0,
            Kind::Heartbeat => 1,
            Kind::End => 2,
            Kind::Repair => 3,
            Kind::Gone => 4,
            Kind::Snapshot => 5,
            Kind::Nak => 6,
            Kind::Clock => 7,
        }
    }

    fn from_u8(k: u8) -> Option<Kind> {
        Some(match k {
            0 => Kind::Data,
            1 => Kind::Heartbeat,
            2 => Kind::End,
            3 => Kind::Repair,
            4 => Kind::Gone,
            5 => Kind::Snapshot,
            6 => Kind::Nak,
            7 => Kind::Clock,
            _ => return None,
        })
    }

    fn layout(self) -> Layout {
        match self {
            Kind::Data | Kind::Repair => Layout::Tick,
            Kind::Heartbeat | Kind::End | Kind::Snapshot => Layout::Last,
            Kind::Gone | Kind::Nak | Kind::Clock => Layout::Range,
        }
    }
}

/// One tick or last-sequence record as decoded, borrowing from the received frame. For
/// heartbeat, end and snapshot records, `seq` and `payload` are the topic's last sequence
/// and value, the times zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick<'a> {
    /// The tick's topic.
    pub topic: &'a [u8],
    /// Per-topic sequence, from 1 (the last sequence, in control records).
    pub seq: u64,
    /// CLOCK_MONOTONIC ns when the publisher first sent it.
    pub sent_ns: u64,
    /// CLOCK_MONOTONIC ns when the schedule meant it to leave; 0 when unknown.
    pub intended_ns: u64,
    /// The application's bytes.
    pub payload: &'a [u8],
}

/// A range of sequences of one topic, inclusive (gone and nak records).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range<'a> {
    /// The topic.
    pub topic: &'a [u8],
    /// First sequence.
    pub first: u64,
    /// Last sequence.
    pub last: u64,
}

/// A clock body's contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock<'a> {
    /// The subscriber's CLOCK_MONOTONIC ns when it asked.
    pub t1: u64,
    /// The publisher's CLOCK_MONOTONIC ns when it answered.
    pub t2: u64,
    /// The publisher's clock id (its kernel's boot id).
    pub clock_id: &'a [u8],
}

/// Encodes a clock body in `epoch` into `out`.
pub fn encode_clock(epoch: u64, clock: &Clock<'_>, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&[VERSION, Kind::Clock.to_u8(), 0, 0]);
    out.extend_from_slice(&epoch.to_le_bytes());
    out.extend_from_slice(&clock.t1.to_le_bytes());
    out.extend_from_slice(&clock.t2.to_le_bytes());
    let id = &clock.clock_id[..clock.clock_id.len().min(255)];
    out.push(id.len() as u8);
    out.extend_from_slice(id);
}

/// Builds one body in a reusable buffer.
#[derive(Debug)]
pub struct BodyWriter {
    buf: Vec<u8>,
    count: u16,
    kind: Kind,
    epoch: u64,
    /// Offsets of each data record's `sent_ns`, so stamping at send time is direct.
    sent_at: Vec<usize>,
}

impl BodyWriter {
    /// An empty body of `kind` in `epoch`.
    pub fn new(kind: Kind, epoch: u64) -> Self {
        let mut w = BodyWriter {
            buf: Vec::with_capacity(8192),
            count: 0,
            kind,
            epoch,
            sent_at: Vec::with_capacity(256),
        };
        w.clear();
        w
    }

    /// Starts over, keeping the allocations, the kind and the epoch.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.buf.extend_from_slice(&[VERSION, self.kind.to_u8(), 0, 0]);
        self.buf.extend_from_slice(&self.epoch.to_le_bytes());
        self.count = 0;
        self.sent_at.clear();
    }

    /// Starts over as a body of `kind`, keeping the allocations and the epoch.
    pub fn start(&mut self, kind: Kind) {
        self.kind = kind;
        self.clear();
    }

    /// Starts over as a body of `kind` in `epoch`, keeping the allocations.
    pub fn start_in(&mut self, kind: Kind, epoch: u64) {
        self.epoch = epoch;
        self.start(kind);
    }

    fn topic(&mut self, topic: &[u8]) {
        debug_assert!(!topic.is_empty() && topic.len() <= 255 && self.count < u16::MAX);
        self.buf.push(topic.len() as u8);
        self.buf.extend_from_slice(topic);
        self.count += 1;
        self.buf[2..4].copy_from_slice(&self.count.to_le_bytes());
    }

    /// Appends a tick to a data body; its send time is stamped by
    /// [`stamp_sent`](Self::stamp_sent). The caller keeps the count under 65,535 (the
    /// batch limit) and payloads and topics within their limits (checked at configuration).
    pub fn push(&mut self, topic: &[u8], seq: u64, intended_ns: u64, payload: &[u8]) {
        self.push_sent(topic, seq, 0, intended_ns, payload);
        let at = self.buf.len() - payload.len() - 2 - 16;
        self.sent_at.push(at);
    }

    /// Appends a tick whose send time is already known (repair bodies).
    pub fn push_sent(&mut self, topic: &[u8], seq: u64, sent_ns: u64, intended_ns: u64, payload: &[u8]) {
        self.topic(topic);
        self.buf.extend_from_slice(&seq.to_le_bytes());
        self.buf.extend_from_slice(&sent_ns.to_le_bytes());
        self.buf.extend_from_slice(&intended_ns.to_le_bytes());
        self.buf.extend_from_slice(&(payload.len() as u16).to_le_bytes());
        self.buf.extend_from_slice(payload);
    }

    /// Appends a topic's last sequence and value (heartbeat, end and snapshot bodies).
    pub fn push_last(&mut self, topic: &[u8], last_seq: u64, last_value: &[u8]) {
        self.topic(topic);
        self.buf.extend_from_slice(&last_seq.to_le_bytes());
        self.buf.extend_from_slice(&(last_value.len() as u16).to_le_bytes());
        self.buf.extend_from_slice(last_value);
    }

    /// Appends a range of a topic (gone and nak bodies).
    pub fn push_range(&mut self, topic: &[u8], first: u64, last: u64) {
        self.topic(topic);
        self.buf.extend_from_slice(&first.to_le_bytes());
        self.buf.extend_from_slice(&last.to_le_bytes());
    }

    /// Records in the body.
    pub fn count(&self) -> u16 {
        self.count
    }

    /// Bytes of the body so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether the body holds no record.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The encoded body.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Sets the send time of every tick pushed with [`push`](Self::push) to `sent_ns`
    /// (stamped just before sending).
    pub fn stamp_sent(&mut self, sent_ns: u64) {
        let b = sent_ns.to_le_bytes();
        for &at in &self.sent_at {
            self.buf[at..at + 8].copy_from_slice(&b);
        }
    }
}

/// A decoded body header.
#[derive(Debug, Clone, Copy)]
pub struct Decoded<'a> {
    /// What the body carries.
    pub kind: Kind,
    /// Records in it, as the header claims (the iterators check each).
    pub count: u16,
    /// The publisher's epoch.
    pub epoch: u64,
    records: &'a [u8],
}

impl<'a> Decoded<'a> {
    /// The tick or last-sequence records (every kind but gone and nak), checked as they are
    /// read: a truncated or overlong record is an error, never a panic, and ends the
    /// iteration.
    pub fn records(&self) -> Records<'a> {
        let left = if self.kind.layout() == Layout::Range { 0 } else { self.count };
        Records { rest: self.records, left, kind: self.kind }
    }

    /// A clock body's contents.
    ///
    /// # Errors
    /// [`Error::Decode`] for another kind or a truncated body.
    pub fn clock(&self) -> Result<Clock<'a>> {
        if self.kind != Kind::Clock {
            return Err(malformed(format!("a {:?} body where a clock was expected", self.kind)));
        }
        let r = &mut { self.records };
        let t1 = u64_le(take(r, 8, "clock t1")?);
        let t2 = u64_le(take(r, 8, "clock t2")?);
        let n = usize::from(take(r, 1, "clock id length")?[0]);
        let clock_id = take(r, n, "clock id")?;
        Ok(Clock { t1, t2, clock_id })
    }

    /// The range records of a gone or nak body, checked as they are read.
    pub fn ranges(&self) -> Ranges<'a> {
        let left = if matches!(self.kind, Kind::Gone | Kind::Nak) { self.count } else { 0 };
        Ranges { rest: self.records, left }
    }
}

fn take<'a>(r: &mut &'a [u8], n: usize, what: &str) -> Result<&'a [u8]> {
    if r.len() < n {
        return Err(malformed(format!("{what} truncated: {} of {n} bytes", r.len())));
    }
    let (head, tail) = r.split_at(n);
    *r = tail;
    Ok(head)
}

fn u64_le(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

fn read_topic<'a>(r: &mut &'a [u8]) -> Result<&'a [u8]> {
    let tl = take(r, 1, "topic length")?[0] as usize;
    if tl == 0 {
        return Err(malformed("empty topic"));
    }
    take(r, tl, "topic")
}

/// Iterator over the tick or last-sequence records of a body.
#[derive(Debug, Clone)]
pub struct Records<'a> {
    rest: &'a [u8],
    left: u16,
    kind: Kind,
}

impl<'a> Records<'a> {
    fn read(&mut self) -> Result<Tick<'a>> {
        let r = &mut self.rest;
        let topic = read_topic(r)?;
        if self.kind.layout() == Layout::Last {
            let seq = u64_le(take(r, 8, "last_seq")?);
            let len = take(r, 2, "last value length")?;
            let payload = take(r, u16::from_le_bytes([len[0], len[1]]) as usize, "last value")?;
            return Ok(Tick { topic, seq, sent_ns: 0, intended_ns: 0, payload });
        }
        let fixed = take(r, TICK_FIXED, "record header")?;
        let len = u16::from_le_bytes([fixed[24], fixed[25]]) as usize;
        let payload = take(r, len, "payload")?;
        Ok(Tick {
            topic,
            seq: u64_le(&fixed[0..]),
            sent_ns: u64_le(&fixed[8..]),
            intended_ns: u64_le(&fixed[16..]),
            payload,
        })
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<Tick<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let r = self.read();
        if r.is_err() {
            self.left = 0;
        }
        Some(r)
    }
}

/// Iterator over the range records of a gone or nak body.
#[derive(Debug, Clone)]
pub struct Ranges<'a> {
    rest: &'a [u8],
    left: u16,
}

impl<'a> Iterator for Ranges<'a> {
    type Item = Result<Range<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let r = &mut self.rest;
        let mut read = || -> Result<Range<'a>> {
            let topic = read_topic(r)?;
            let b = take(r, 16, "range")?;
            let (first, last) = (u64_le(&b[0..]), u64_le(&b[8..]));
            if first == 0 || first > last {
                return Err(malformed(format!("range {first}..={last} is empty or starts at 0")));
            }
            Ok(Range { topic, first, last })
        };
        let res = read();
        if res.is_err() {
            self.left = 0;
        }
        Some(res)
    }
}

/// Splits a received feed message into group and body: two frames, or one
/// `group 0x00 body` frame.
///
/// # Errors
/// [`Error::Decode`] for another frame count or a single frame without a NUL.
pub fn split_frames<'a>(frames: &[&'a [u8]]) -> Result<(&'a [u8], &'a [u8])> {
    match frames {
        [group, body] => Ok((group, body)),
        [single] => {
            let nul = single
                .iter()
                .position(|&b| b == 0)
                .ok_or_else(|| malformed("single-frame message without a NUL after the group"))?;
            Ok((&single[..nul], &single[nul + 1..]))
        }
        other => Err(malformed(format!("{} frames; a tick message has 1 or 2", other.len()))),
    }
}

/// Decodes a body's header; malformed input is an error saying what is wrong (the caller
/// adds where it came from), never a panic.
///
/// # Errors
/// [`Error::Decode`] for a short body, another version or an unknown kind.
pub fn decode(body: &[u8]) -> Result<Decoded<'_>> {
    if body.len() < BODY_HEADER {
        return Err(malformed(format!(
            "body of {} bytes is shorter than its {BODY_HEADER}-byte header",
            body.len()
        )));
    }
    match body[0] {
        VERSION => {}
        1 => {
            return Err(malformed(
                "wire version 1, the format of ztick 0.1 (no publisher epochs): upgrade the publisher; \
                 this build reads version 2",
            ))
        }
        v => return Err(malformed(format!("wire version {v} (this build reads {VERSION})"))),
    }
    let kind = Kind::from_u8(body[1]).ok_or_else(|| malformed(format!("unknown body kind {}", body[1])))?;
    Ok(Decoded {
        kind,
        count: u16::from_le_bytes([body[2], body[3]]),
        epoch: u64_le(&body[4..12]),
        records: &body[BODY_HEADER..],
    })
}

/// The subscription prefix a subscriber adds so the publisher (an XPUB) sees it arrive:
/// `HELLO_PREFIX` + a unique id. No tick topic can match it (topics have no NUL).
pub const HELLO_PREFIX: &[u8] = b"\0ztick-hello/";
/// A subscriber's introduction on the side channel, so the publisher binds its hello to
/// this connection: `[HELLO_REQUEST][hello id]`.
pub const HELLO_REQUEST: &[u8] = b"HELLO";
/// A snapshot request on the side channel (an introduction too): `[SNAPSHOT_REQUEST][hello id]`.
pub const SNAPSHOT_REQUEST: &[u8] = b"SNAPSHOT";
/// A subscriber's acknowledgement that it saw every end marker: `[DONE_ACK][hello id]`.
pub const DONE_ACK: &[u8] = b"DONE";
/// A subscriber's request for missing ticks: `[NAK_REQUEST][hello id][nak body]`.
pub const NAK_REQUEST: &[u8] = b"NAK";
/// A subscriber's request for the publisher's clock: `[CLOCK_REQUEST][hello id][t1:u64]`.
pub const CLOCK_REQUEST: &[u8] = b"CLOCK";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_round_trips_with_its_epoch() {
        let mut w = BodyWriter::new(Kind::Data, 0xE9);
        w.push(b"t0", 1, 5, b"abc");
        w.push(b"t1", 2, 6, b"");
        w.stamp_sent(99);
        let d = decode(w.as_bytes()).unwrap();
        assert_eq!((d.kind, d.count, d.epoch), (Kind::Data, 2, 0xE9));
        let ticks: Vec<_> = d.records().map(Result::unwrap).collect();
        assert_eq!(ticks[0], Tick { topic: b"t0", seq: 1, sent_ns: 99, intended_ns: 5, payload: b"abc" });
        assert_eq!(ticks[1], Tick { topic: b"t1", seq: 2, sent_ns: 99, intended_ns: 6, payload: b"" });
        assert_eq!(d.ranges().count(), 0, "a data body has no ranges");
        w.clear();
        assert_eq!(w.as_bytes().len(), BODY_HEADER);
        assert_eq!(decode(w.as_bytes()).unwrap().epoch, 0xE9, "clear keeps the epoch");
    }

    #[test]
    fn control_repair_and_range_bodies_round_trip() {
        let mut w = BodyWriter::new(Kind::End, 7);
        w.push_last(b"a", 42, b"v42");
        w.push_last(b"b", 0, b"");
        let d = decode(w.as_bytes()).unwrap();
        let r: Vec<_> = d.records().map(Result::unwrap).map(|t| (t.topic, t.seq, t.payload)).collect();
        assert_eq!((d.kind, r), (Kind::End, vec![(&b"a"[..], 42, &b"v42"[..]), (&b"b"[..], 0, &b""[..])]));

        w.start(Kind::Repair);
        w.push_sent(b"a", 9, 1234, 1200, b"p");
        w.stamp_sent(1); // only ticks pushed with `push` are stamped
        let d = decode(w.as_bytes()).unwrap();
        let t = d.records().next().unwrap().unwrap();
        assert_eq!((d.kind, t.seq, t.sent_ns, t.intended_ns), (Kind::Repair, 9, 1234, 1200));

        for kind in [Kind::Gone, Kind::Nak] {
            w.start(kind);
            w.push_range(b"a", 3, 5);
            w.push_range(b"bb", 9, 9);
            let d = decode(w.as_bytes()).unwrap();
            let r: Vec<_> = d.ranges().map(Result::unwrap).collect();
            assert_eq!(
                r,
                vec![Range { topic: b"a", first: 3, last: 5 }, Range { topic: b"bb", first: 9, last: 9 }]
            );
            assert_eq!(d.records().count(), 0, "a range body has no ticks");
        }
    }

    #[test]
    fn clock_bodies_round_trip_and_refuse_truncation() {
        let mut b = Vec::new();
        encode_clock(9, &Clock { t1: 1, t2: 2, clock_id: b"boot" }, &mut b);
        let d = decode(&b).unwrap();
        assert_eq!((d.kind, d.epoch, d.records().count(), d.ranges().count()), (Kind::Clock, 9, 0, 0));
        assert_eq!(d.clock().unwrap(), Clock { t1: 1, t2: 2, clock_id: b"boot" });
        for n in BODY_HEADER..b.len() {
            assert!(decode(&b[..n]).unwrap().clock().is_err(), "prefix {n}");
        }
        assert!(decode(BodyWriter::new(Kind::Data, 1).as_bytes()).unwrap().clock().is_err());
    }

    #[test]
    fn single_frame_form_splits_at_the_first_nul() {
        let (g, b) = split_frames(&[b"grp\0body"]).unwrap();
        assert_eq!((g, b), (&b"grp"[..], &b"body"[..]));
        assert!(split_frames(&[b"no-nul"]).is_err());
        assert!(split_frames(&[b"a", b"b", b"c"]).is_err());
    }

    #[test]
    fn version_1_is_refused_with_what_to_do() {
        let e = decode(&[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap_err().to_string();
        assert!(e.contains("version 1") && e.contains("upgrade the publisher"), "{e}");
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        assert!(decode(b"").is_err());
        assert!(decode(&[9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap_err().to_string().contains("version 9"));
        assert!(decode(&[2, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_err(), "no kind 8");
        let mut w = BodyWriter::new(Kind::Data, 1);
        w.push(b"topic", 1, 1, &[0; 10]);
        let full = w.as_bytes().to_vec();
        // A header claiming more records than the body holds.
        let mut more = full.clone();
        more[2] = 3;
        let r: Vec<_> = decode(&more).unwrap().records().collect();
        assert!(r[0].is_ok() && r[1].is_err() && r.len() == 2);
        let mut w = BodyWriter::new(Kind::Nak, 1);
        w.push_range(b"t", 5, 4);
        assert!(decode(w.as_bytes()).unwrap().ranges().next().unwrap().is_err(), "an empty range");
        // Every prefix, and every single-byte corruption, decodes or errs without panicking.
        for n in 0..full.len() {
            if let Ok(d) = decode(&full[..n]) {
                d.records().for_each(drop);
                d.ranges().for_each(drop);
            }
        }
        for i in 0..full.len() {
            let mut bad = full.clone();
            bad[i] = bad[i].wrapping_add(0x55);
            if let Ok(d) = decode(&bad) {
                d.records().for_each(drop);
                d.ranges().for_each(drop);
            }
        }
    }
}
