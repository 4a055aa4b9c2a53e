//! The tick wire format, version 1. Plain ZMTP frames, so any ZeroMQ peer can read it.
//!
//! A message is `[topic][body]` (two frames), or, for conflated feeds (libzmq's
//! `ZMQ_CONFLATE` drops multipart messages), one frame `topic 0x00 body`. Topics are
//! non-empty and contain no NUL byte. All integers are little-endian.
//!
//! ```text
//! body   := version:u8 (=1) | kind:u8 | count:u16 | ...
//! kind 0 (data):       count x record
//! record := seq:u64 | sent_ns:u64 | intended_ns:u64 | len:u16 | payload[len]
//! kind 1 (heartbeat):  last_seq:u64     the topic's last sequence published so far
//! kind 2 (end):        last_seq:u64     the topic's final sequence; nothing follows
//! ```
//!
//! Sequences start at 1 per topic; `last_seq` 0 means nothing was published yet.
//! `intended_ns` is the time the schedule meant the tick to leave (0 when unpaced), so a
//! receiver can measure latency without coordinated omission. `sent_ns` and `intended_ns`
//! are CLOCK_MONOTONIC, comparable across processes of one host.

/// The format version this code writes and reads.
pub const VERSION: u8 = 1;
/// Bytes of a body header.
pub const BODY_HEADER: usize = 4;
/// Bytes of a record header (before the payload).
pub const RECORD_HEADER: usize = 26;

/// What a body carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Ticks.
    Data,
    /// The last sequence published so far.
    Heartbeat,
    /// The final sequence: the topic ends.
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

/// One tick as decoded, borrowing its payload from the received frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick<'a> {
    /// Per-topic sequence, from 1.
    pub seq: u64,
    /// CLOCK_MONOTONIC ns when the publisher sent it.
    pub sent_ns: u64,
    /// CLOCK_MONOTONIC ns when the schedule meant it to leave; 0 when unpaced.
    pub intended_ns: u64,
    /// The application's bytes.
    pub payload: &'a [u8],
}

/// Builds one data body in a reusable buffer.
#[derive(Debug, Default)]
pub struct BodyWriter {
    buf: Vec<u8>,
    count: u16,
}

impl BodyWriter {
    /// An empty data body.
    pub fn new() -> Self {
        let mut w = BodyWriter { buf: Vec::with_capacity(8192), count: 0 };
        w.clear();
        w
    }

    /// Starts over, keeping the allocation.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.buf.extend_from_slice(&[VERSION, Kind::Data.to_u8(), 0, 0]);
        self.count = 0;
    }

    /// Appends a tick. The caller keeps `count` under `u16::MAX` (the batcher's limit) and
    /// the payload under 64 KiB (checked when the feed is configured).
    pub fn push(&mut self, seq: u64, sent_ns: u64, intended_ns: u64, payload: &[u8]) {
        debug_assert!(self.count < u16::MAX && payload.len() <= u16::MAX as usize);
        self.buf.extend_from_slice(&seq.to_le_bytes());
        self.buf.extend_from_slice(&sent_ns.to_le_bytes());
        self.buf.extend_from_slice(&intended_ns.to_le_bytes());
        self.buf.extend_from_slice(&(payload.len() as u16).to_le_bytes());
        self.buf.extend_from_slice(payload);
        self.count += 1;
        self.buf[2..4].copy_from_slice(&self.count.to_le_bytes());
    }

    /// Ticks in the body.
    pub fn count(&self) -> u16 {
        self.count
    }

    /// The encoded body.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Rewrites the send time of every record to `sent_ns` (stamped just before sending).
    pub fn stamp_sent(&mut self, sent_ns: u64) {
        let mut at = BODY_HEADER;
        for _ in 0..self.count {
            self.buf[at + 8..at + 16].copy_from_slice(&sent_ns.to_le_bytes());
            let len = u16::from_le_bytes([self.buf[at + 24], self.buf[at + 25]]) as usize;
            at += RECORD_HEADER + len;
        }
    }
}

/// A heartbeat or end body.
pub fn control_body(kind: Kind, last_seq: u64) -> [u8; 12] {
    let mut b = [0u8; 12];
    b[0] = VERSION;
    b[1] = kind.to_u8();
    b[4..12].copy_from_slice(&last_seq.to_le_bytes());
    b
}

/// A decoded message.
#[derive(Debug, Clone, Copy)]
pub struct Decoded<'a> {
    /// The topic.
    pub topic: &'a [u8],
    /// What the body carries.
    pub kind: Kind,
    /// Ticks in a data body; 0 otherwise.
    pub count: u16,
    /// For heartbeat and end bodies, the topic's last sequence.
    pub last_seq: u64,
    records: &'a [u8],
}

impl<'a> Decoded<'a> {
    /// The ticks of a data body, checked as they are read: a truncated or overlong record is
    /// an error, never a panic.
    pub fn ticks(&self) -> Ticks<'a> {
        Ticks { rest: self.records, left: self.count }
    }
}

/// Iterator over the ticks of a data body.
#[derive(Debug, Clone)]
pub struct Ticks<'a> {
    rest: &'a [u8],
    left: u16,
}

impl<'a> Iterator for Ticks<'a> {
    type Item = Result<Tick<'a>, String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let r = self.rest;
        if r.len() < RECORD_HEADER {
            self.left = 0;
            return Some(Err(format!("record header truncated: {} of {RECORD_HEADER} bytes", r.len())));
        }
        let u64_at = |i: usize| u64::from_le_bytes([r[i], r[i + 1], r[i + 2], r[i + 3], r[i + 4], r[i + 5], r[i + 6], r[i + 7]]);
        let len = u16::from_le_bytes([r[24], r[25]]) as usize;
        let end = RECORD_HEADER + len;
        if r.len() < end {
            self.left = 0;
            return Some(Err(format!("payload truncated: {} of {len} bytes", r.len() - RECORD_HEADER)));
        }
        self.rest = &r[end..];
        Some(Ok(Tick { seq: u64_at(0), sent_ns: u64_at(8), intended_ns: u64_at(16), payload: &r[RECORD_HEADER..end] }))
    }
}

/// Splits a received message into topic and body: two frames, or one `topic 0x00 body` frame.
pub fn split_frames<'a>(frames: &[&'a [u8]]) -> Result<(&'a [u8], &'a [u8]), String> {
    match frames {
        [topic, body] => Ok((topic, body)),
        [single] => {
            let nul = single.iter().position(|&b| b == 0).ok_or("single-frame tick without a NUL after the topic")?;
            Ok((&single[..nul], &single[nul + 1..]))
        }
        other => Err(format!("{} frames; a tick message has 1 or 2", other.len())),
    }
}

/// Decodes a body; malformed input is an error saying what is wrong (the caller adds where
/// it came from), never a panic.
pub fn decode<'a>(topic: &'a [u8], body: &'a [u8]) -> Result<Decoded<'a>, String> {
    let bad = |reason: String| reason;
    if body.len() < BODY_HEADER {
        return Err(bad(format!("body of {} bytes is shorter than its {BODY_HEADER}-byte header", body.len())));
    }
    if body[0] != VERSION {
        return Err(bad(format!("wire version {} (this build reads {VERSION})", body[0])));
    }
    let count = u16::from_le_bytes([body[2], body[3]]);
    let rest = &body[BODY_HEADER..];
    let control = |kind| {
        let b: [u8; 8] = rest.get(..8).and_then(|s| s.try_into().ok()).ok_or_else(|| bad("control body without its last_seq".into()))?;
        Ok(Decoded { topic, kind, count: 0, last_seq: u64::from_le_bytes(b), records: &[] })
    };
    match body[1] {
        0 => Ok(Decoded { topic, kind: Kind::Data, count, last_seq: 0, records: rest }),
        1 => control(Kind::Heartbeat),
        2 => control(Kind::End),
        k => Err(bad(format!("unknown body kind {k}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_round_trips() {
        let mut w = BodyWriter::new();
        w.push(1, 10, 5, b"abc");
        w.push(2, 11, 6, b"");
        w.stamp_sent(99);
        let d = decode(b"t0", w.as_bytes()).unwrap();
        assert_eq!((d.kind, d.count), (Kind::Data, 2));
        let ticks: Vec<_> = d.ticks().map(Result::unwrap).collect();
        assert_eq!(ticks[0], Tick { seq: 1, sent_ns: 99, intended_ns: 5, payload: b"abc" });
        assert_eq!(ticks[1], Tick { seq: 2, sent_ns: 99, intended_ns: 6, payload: b"" });
        w.clear();
        assert_eq!(w.as_bytes().len(), BODY_HEADER);
    }

    #[test]
    fn control_bodies_round_trip() {
        let d = decode(b"t", &control_body(Kind::End, 42)).unwrap();
        assert_eq!((d.kind, d.last_seq), (Kind::End, 42));
        let d = decode(b"t", &control_body(Kind::Heartbeat, 7)).unwrap();
        assert_eq!((d.kind, d.last_seq), (Kind::Heartbeat, 7));
    }

    #[test]
    fn single_frame_form_splits_at_the_first_nul() {
        let mut m = b"topic\0".to_vec();
        m.extend_from_slice(&control_body(Kind::Heartbeat, 1));
        let (t, b) = split_frames(&[&m]).unwrap();
        assert_eq!(t, b"topic");
        assert_eq!(decode(t, b).unwrap().last_seq, 1);
        assert!(split_frames(&[b"no-nul"]).is_err());
        assert!(split_frames(&[b"a", b"b", b"c"]).is_err());
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        assert!(decode(b"t", b"").is_err());
        assert!(decode(b"t", &[9, 0, 0, 0], "x").unwrap_err().to_string().contains("version 9"));
        assert!(decode(b"t", &[1, 7, 0, 0], "x").is_err());
        assert!(decode(b"t", &[1, 2, 0, 0, 1], "x").is_err());
        // A data header claiming more ticks than the body holds.
        let mut w = BodyWriter::new();
        w.push(1, 1, 1, &[0; 10]);
        let mut bytes = w.as_bytes().to_vec();
        bytes[2] = 3;
        let d = decode(b"t", &bytes).unwrap();
        let r: Vec<_> = d.ticks().collect();
        assert!(r[0].is_ok() && r[1].is_err() && r.len() == 2);
        // Truncated payload.
        let cut = &w.as_bytes()[..w.as_bytes().len() - 1];
        assert!(decode(b"t", cut).unwrap().ticks().next().unwrap().is_err());
        // Every prefix of a valid body decodes or errs without panicking.
        let full = w.as_bytes();
        for n in 0..full.len() {
            if let Ok(d) = decode(b"t", &full[..n]) {
                d.ticks().for_each(drop);
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
pub fn decode_snapshot(mut b: &[u8]) -> Result<Vec<SnapshotEntry>, String> {
    fn take<'a>(b: &mut &'a [u8], n: usize, what: &str) -> Result<&'a [u8], String> {
        if b.len() < n {
            return Err(format!("snapshot truncated in {what}"));
        }
        let (head, tail) = b.split_at(n);
        *b = tail;
        Ok(head)
    }
    let n = u16::from_le_bytes(take(&mut b, 2, "count")?.try_into().map_err(|_| "count")?);
    let mut out = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let tl = take(&mut b, 1, "topic length")?[0] as usize;
        let topic = take(&mut b, tl, "topic")?.to_vec();
        let last_seq = u64::from_le_bytes(take(&mut b, 8, "last_seq")?.try_into().map_err(|_| "last_seq")?);
        let vl = u16::from_le_bytes(take(&mut b, 2, "value length")?.try_into().map_err(|_| "value length")?) as usize;
        let last_value = take(&mut b, vl, "value")?.to_vec();
        out.push(SnapshotEntry { topic, last_seq, last_value });
    }
    if !b.is_empty() {
        return Err(format!("{} trailing bytes after the snapshot", b.len()));
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
        assert!(decode_snapshot(&buf).unwrap_err().contains("trailing"));
    }
}
