//! The tick wire format, version 1. Plain ZMTP frames, so any ZeroMQ peer can read it.
//!
//! A message is `[group][body]` (two frames), or, for conflated feeds (libzmq's
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
//! body   := version:u8 (=1) | kind:u8 | count:u16 | count x record
//! topic  := len:u8 | bytes[len]
//! kind 0 (data):       record := topic | seq:u64 | sent_ns:u64 | intended_ns:u64 | len:u16 | payload[len]
//! kind 1 (heartbeat):  record := topic | last_seq:u64 | len:u16 | last_value[len]
//! kind 2 (end):        record := topic | last_seq:u64 | len:u16 | last_value[len]
//! ```
//!
//! Sequences start at 1 per topic; `last_seq` 0 means nothing was published yet. Control
//! records repeat the topic's last payload, so a conflating subscriber, whose socket keeps
//! only the newest message, still ends holding the latest value when an end marker is the
//! newest message.
//! `intended_ns` is the time the schedule meant the tick to leave (0 when unpaced), so a
//! receiver can measure latency without coordinated omission; ticks from a
//! [`TickPublisher`](super::TickPublisher) carry the time the application handed them over. `sent_ns` and `intended_ns`
//! are CLOCK_MONOTONIC, comparable across processes of one host.

use crate::error::{Error, Result};

/// A decoding failure of the wire format; the caller replaces the context with where the
/// bytes came from.
fn malformed(reason: impl Into<String>) -> Error {
    Error::Decode { context: "a fan-out message".into(), reason: reason.into() }
}

/// The format version this code writes and reads.
pub const VERSION: u8 = 1;
/// Bytes of a body header.
pub const BODY_HEADER: usize = 4;
/// Bytes of a data record after its topic and before its payload.
const TICK_FIXED: usize = 26;

/// What a body carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Ticks.
    Data,
    /// Each topic's last sequence sent so far.
    Heartbeat,
    /// Each topic's final sequence: those topics end.
    End,
}

impl Kind {
    fn to_u8(self) -> u8 {
        match self {
            Kind::Data => 0,
            Kind::Heartbeat => 1,
            Kind::End => 2,
        }
    }
}

/// One record as decoded, borrowing from the received frame. For heartbeat and end
/// records, `seq` and `payload` are the topic's last sequence and value, the times zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick<'a> {
    /// The tick's topic.
    pub topic: &'a [u8],
    /// Per-topic sequence, from 1 (the last sequence, in control records).
    pub seq: u64,
    /// CLOCK_MONOTONIC ns when the publisher sent it.
    pub sent_ns: u64,
    /// CLOCK_MONOTONIC ns when the schedule meant it to leave; 0 when unpaced.
    pub intended_ns: u64,
    /// The application's bytes.
    pub payload: &'a [u8],
}

/// Builds one body in a reusable buffer.
#[derive(Debug)]
pub struct BodyWriter {
    buf: Vec<u8>,
    count: u16,
    kind: Kind,
    /// Offsets of each data record's `sent_ns`, so stamping at send time is direct.
    sent_at: Vec<usize>,
}

impl BodyWriter {
    /// An empty body of `kind`.
    pub fn new(kind: Kind) -> Self {
        let mut w =
            BodyWriter { buf: Vec::with_capacity(8192), count: 0, kind, sent_at: Vec::with_capacity(256) };
        w.clear();
        w
    }

    /// Starts over, keeping the allocations.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.buf.extend_from_slice(&[VERSION, self.kind.to_u8(), 0, 0]);
        self.count = 0;
        self.sent_at.clear();
    }

    /// Starts over as a body of `kind`, keeping the allocations.
    pub fn start(&mut self, kind: Kind) {
        self.kind = kind;
        self.clear();
    }

    fn topic(&mut self, topic: &[u8]) {
        debug_assert!(!topic.is_empty() && topic.len() <= 255 && self.count < u16::MAX);
        self.buf.push(topic.len() as u8);
        self.buf.extend_from_slice(topic);
        self.count += 1;
        self.buf[2..4].copy_from_slice(&self.count.to_le_bytes());
    }

    /// Appends a tick (data bodies). The caller keeps the count under 65,535 (the batch
    /// limit) and payloads and topics within their limits (checked at configuration).
    pub fn push(&mut self, topic: &[u8], seq: u64, intended_ns: u64, payload: &[u8]) {
        self.topic(topic);
        self.buf.extend_from_slice(&seq.to_le_bytes());
        self.sent_at.push(self.buf.len());
        self.buf.extend_from_slice(&0u64.to_le_bytes());
        self.buf.extend_from_slice(&intended_ns.to_le_bytes());
        self.buf.extend_from_slice(&(payload.len() as u16).to_le_bytes());
        self.buf.extend_from_slice(payload);
    }

    /// Appends a topic's last sequence and value (heartbeat and end bodies).
    pub fn push_last(&mut self, topic: &[u8], last_seq: u64, last_value: &[u8]) {
        self.topic(topic);
        self.buf.extend_from_slice(&last_seq.to_le_bytes());
        self.buf.extend_from_slice(&(last_value.len() as u16).to_le_bytes());
        self.buf.extend_from_slice(last_value);
    }

    /// Records in the body.
    pub fn count(&self) -> u16 {
        self.count
    }

    /// The encoded body.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Sets the send time of every tick to `sent_ns` (stamped just before sending).
    pub fn stamp_sent(&mut self, sent_ns: u64) {
        let b = sent_ns.to_le_bytes();
        for &at in &self.sent_at {
            self.buf[at..at + 8].copy_from_slice(&b);
        }
    }
}

/// A decoded body.
#[derive(Debug, Clone, Copy)]
pub struct Decoded<'a> {
    /// What the body carries.
    pub kind: Kind,
    /// Records in it, as the header claims (the iterator checks each).
    pub count: u16,
    records: &'a [u8],
}

impl<'a> Decoded<'a> {
    /// The records, checked as they are read: a truncated or overlong record is an error,
    /// never a panic, and ends the iteration.
    pub fn records(&self) -> Records<'a> {
        Records { rest: self.records, left: self.count, kind: self.kind }
    }
}

/// Iterator over the records of a body.
#[derive(Debug, Clone)]
pub struct Records<'a> {
    rest: &'a [u8],
    left: u16,
    kind: Kind,
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

impl<'a> Records<'a> {
    fn read(&mut self) -> Result<Tick<'a>> {
        let r = &mut self.rest;
        let tl = take(r, 1, "topic length")?[0] as usize;
        if tl == 0 {
            return Err(malformed("empty topic"));
        }
        let topic = take(r, tl, "topic")?;
        if self.kind != Kind::Data {
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

/// Splits a received message into group and body: two frames, or one `group 0x00 body` frame.
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
    if body[0] != VERSION {
        return Err(malformed(format!("wire version {} (this build reads {VERSION})", body[0])));
    }
    let kind = match body[1] {
        0 => Kind::Data,
        1 => Kind::Heartbeat,
        2 => Kind::End,
        k => return Err(malformed(format!("unknown body kind {k}"))),
    };
    Ok(Decoded { kind, count: u16::from_le_bytes([body[2], body[3]]), records: &body[BODY_HEADER..] })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_round_trips() {
        let mut w = BodyWriter::new(Kind::Data);
        w.push(b"t0", 1, 5, b"abc");
        w.push(b"t1", 2, 6, b"");
        w.stamp_sent(99);
        let d = decode(w.as_bytes()).unwrap();
        assert_eq!((d.kind, d.count), (Kind::Data, 2));
        let ticks: Vec<_> = d.records().map(Result::unwrap).collect();
        assert_eq!(ticks[0], Tick { topic: b"t0", seq: 1, sent_ns: 99, intended_ns: 5, payload: b"abc" });
        assert_eq!(ticks[1], Tick { topic: b"t1", seq: 2, sent_ns: 99, intended_ns: 6, payload: b"" });
        w.clear();
        assert_eq!(w.as_bytes().len(), BODY_HEADER);
    }

    #[test]
    fn control_bodies_round_trip() {
        let mut w = BodyWriter::new(Kind::End);
        w.push_last(b"a", 42, b"v42");
        w.push_last(b"b", 0, b"");
        let d = decode(w.as_bytes()).unwrap();
        let r: Vec<_> = d.records().map(Result::unwrap).map(|t| (t.topic, t.seq, t.payload)).collect();
        assert_eq!((d.kind, r), (Kind::End, vec![(&b"a"[..], 42, &b"v42"[..]), (&b"b"[..], 0, &b""[..])]));
    }

    #[test]
    fn single_frame_form_splits_at_the_first_nul() {
        let (g, b) = split_frames(&[b"grp\0body"]).unwrap();
        assert_eq!((g, b), (&b"grp"[..], &b"body"[..]));
        assert!(split_frames(&[b"no-nul"]).is_err());
        assert!(split_frames(&[b"a", b"b", b"c"]).is_err());
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        assert!(decode(b"").is_err());
        assert!(decode(&[9, 0, 0, 0]).unwrap_err().to_string().contains("version 9"));
        assert!(decode(&[1, 7, 0, 0]).is_err());
        let mut w = BodyWriter::new(Kind::Data);
        w.push(b"topic", 1, 1, &[0; 10]);
        let full = w.as_bytes().to_vec();
        // A header claiming more records than the body holds.
        let mut more = full.clone();
        more[2] = 3;
        let r: Vec<_> = decode(&more).unwrap().records().collect();
        assert!(r[0].is_ok() && r[1].is_err() && r.len() == 2);
        // Every prefix, and every single-byte corruption, decodes or errs without panicking.
        for n in 0..full.len() {
            if let Ok(d) = decode(&full[..n]) {
                d.records().for_each(drop);
            }
        }
        for i in 0..full.len() {
            let mut bad = full.clone();
            bad[i] = bad[i].wrapping_add(0x55);
            if let Ok(d) = decode(&bad) {
                d.records().for_each(drop);
            }
        }
    }
}

/// The subscription prefix a subscriber adds so the publisher (an XPUB) sees it arrive:
/// `HELLO_PREFIX` + a unique id. No tick topic can match it (topics have no NUL).
pub const HELLO_PREFIX: &[u8] = b"\0ztick-hello/";

/// A snapshot request on the snapshot ROUTER: `[SNAPSHOT_REQUEST][hello id]`.
pub const SNAPSHOT_REQUEST: &[u8] = b"SNAPSHOT";
/// A subscriber's acknowledgement that it saw every end marker: `[DONE_ACK][hello id]`.
pub const DONE_ACK: &[u8] = b"DONE";

/// One topic's state in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotEntry {
    /// The topic.
    pub topic: Vec<u8>,
    /// Its last sequence published (0: none yet).
    pub last_seq: u64,
    /// The payload of that tick (empty when none).
    pub last_value: Vec<u8>,
}

/// Encodes a snapshot: `count:u16 | (topic_len:u8 | topic | last_seq:u64 | len:u16 | value)*`.
pub fn encode_snapshot(entries: &[SnapshotEntry], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for e in entries {
        out.push(e.topic.len() as u8);
        out.extend_from_slice(&e.topic);
        out.extend_from_slice(&e.last_seq.to_le_bytes());
        out.extend_from_slice(&(e.last_value.len() as u16).to_le_bytes());
        out.extend_from_slice(&e.last_value);
    }
}

/// Decodes a snapshot; malformed input is an error naming the problem.
///
/// # Errors
/// [`Error::Decode`] for a truncated snapshot or trailing bytes.
pub fn decode_snapshot(mut b: &[u8]) -> Result<Vec<SnapshotEntry>> {
    let b = &mut b;
    let count = take(b, 2, "snapshot count")?;
    let n = u16::from_le_bytes([count[0], count[1]]);
    let mut out = Vec::with_capacity(usize::from(n));
    for _ in 0..n {
        let tl = usize::from(take(b, 1, "snapshot topic length")?[0]);
        let topic = take(b, tl, "snapshot topic")?.to_vec();
        let last_seq = u64_le(take(b, 8, "snapshot last_seq")?);
        let vl = take(b, 2, "snapshot value length")?;
        let last_value = take(b, usize::from(u16::from_le_bytes([vl[0], vl[1]])), "snapshot value")?.to_vec();
        out.push(SnapshotEntry { topic, last_seq, last_value });
    }
    if !b.is_empty() {
        return Err(malformed(format!("{} trailing bytes after the snapshot", b.len())));
    }
    Ok(out)
}

#[cfg(test)]
mod snapshot_tests {
    use super::*;

    #[test]
    fn snapshot_round_trips_and_rejects_garbage() {
        let entries = vec![
            SnapshotEntry { topic: b"t0".to_vec(), last_seq: 5, last_value: b"v".to_vec() },
            SnapshotEntry { topic: b"t1".to_vec(), last_seq: 0, last_value: vec![] },
        ];
        let mut buf = Vec::new();
        encode_snapshot(&entries, &mut buf);
        assert_eq!(decode_snapshot(&buf).unwrap(), entries);
        for n in 0..buf.len() {
            assert!(decode_snapshot(&buf[..n]).is_err(), "prefix {n}");
        }
        buf.push(0);
        assert!(decode_snapshot(&buf).unwrap_err().to_string().contains("trailing"));
    }
}
