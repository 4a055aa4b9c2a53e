//! The publisher's retransmit ring: the most recent ticks, bounded in bytes, looked up by
//! topic and sequence to repair a subscriber's gap.
//!
//! Records are written one after another into one byte buffer used circularly; the
//! oldest record is evicted to make room. A topic's sequences are consecutive, so each
//! topic keeps only the offset of every record it still holds (a queue) and the sequence of
//! the first: a lookup is one subtraction and one index. The budget counts the records
//! (28 bytes each plus the payload); the index adds 8 bytes per tick held beside it. Pure
//! logic, no clock.

use std::collections::VecDeque;

/// Bytes of a record before its payload: topic index, sequence, send time, intended time,
/// payload length.
const RECORD_HEADER: usize = 2 + 8 + 8 + 8 + 2;
/// A topic index that marks the unused tail of the buffer before it wraps.
const PAD: u16 = u16::MAX;

/// A retransmitted tick, borrowed from the ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Held<'a> {
    pub(crate) seq: u64,
    pub(crate) sent_ns: u64,
    pub(crate) intended_ns: u64,
    pub(crate) payload: &'a [u8],
}

/// One topic's place in the ring.
#[derive(Debug, Default, Clone)]
struct TopicIndex {
    /// The sequence of the oldest tick still held.
    first_seq: u64,
    /// Virtual offsets of the held ticks, oldest first.
    offsets: VecDeque<u64>,
}

/// The ring. Offsets are virtual (they only grow); `offset % capacity` is the place in
/// the buffer.
#[derive(Debug)]
pub(crate) struct Ring {
    /// The records, `budget` bytes.
    buf: Vec<u8>,
    /// Virtual offset of the oldest record (or padding) still in the buffer.
    head: u64,
    /// Virtual offset where the next record goes.
    tail: u64,
    topics: Vec<TopicIndex>,
    held: usize,
    evicted: u64,
}

impl Ring {
    /// A ring of `budget_bytes` of records for `topics` topics; a budget too small for one
    /// record holds nothing.
    pub(crate) fn new(budget_bytes: usize, topics: usize) -> Self {
        Ring {
            buf: vec![0; budget_bytes],
            head: 0,
            tail: 0,
            topics: vec![TopicIndex::default(); topics],
            held: 0,
            evicted: 0,
        }
    }

    /// Ticks held now.
    pub(crate) fn held(&self) -> usize {
        self.held
    }

    /// Ticks evicted so far to make room.
    pub(crate) fn evicted(&self) -> u64 {
        self.evicted
    }

    fn cap(&self) -> u64 {
        self.buf.len() as u64
    }

    fn used(&self) -> usize {
        (self.tail - self.head) as usize
    }

    /// Evicts the oldest record (or the padding at the buffer's end). A record whose topic
    /// has started over since (see `push`) is no longer indexed and just leaves.
    fn evict_one(&mut self) {
        let at = (self.head % self.cap()) as usize;
        if at + RECORD_HEADER > self.buf.len() || u16::from_le_bytes([self.buf[at], self.buf[at + 1]]) == PAD
        {
            self.head += self.cap() - at as u64;
            return;
        }
        let k = usize::from(u16::from_le_bytes([self.buf[at], self.buf[at + 1]]));
        let len =
            u16::from_le_bytes([self.buf[at + RECORD_HEADER - 2], self.buf[at + RECORD_HEADER - 1]]) as usize;
        if let Some(t) = self.topics.get_mut(k) {
            if t.offsets.front() == Some(&self.head) {
                t.offsets.pop_front();
                t.first_seq += 1;
                self.held -= 1;
                self.evicted += 1;
            }
        }
        self.head += (RECORD_HEADER + len) as u64;
    }

    /// Keeps tick `seq` of topic `k` (the next sequence of that topic), evicting the
    /// oldest ticks as needed. A tick larger than the whole buffer is not kept (nor is
    /// anything older of its topic, so lookups stay consecutive).
    pub(crate) fn push(&mut self, k: usize, seq: u64, sent_ns: u64, intended_ns: u64, payload: &[u8]) {
        let need = RECORD_HEADER + payload.len();
        if need as u64 + 2 > self.cap() || k >= self.topics.len() || k >= usize::from(PAD) {
            if let Some(t) = self.topics.get_mut(k) {
                // Forget this topic's older ticks: a gap in its queue would misplace lookups.
                while t.offsets.pop_front().is_some() {
                    self.held -= 1;
                }
                t.first_seq = seq + 1;
            }
            return;
        }
        let t = &self.topics[k];
        if !t.offsets.is_empty() && t.first_seq + t.offsets.len() as u64 != seq {
            // Not the next sequence (a restart of numbering): start this topic over.
            let dropped = t.offsets.len();
            self.topics[k].offsets.clear();
            self.held -= dropped;
        }
        // Wrap when the record would cross the buffer's end.
        let at = (self.tail % self.cap()) as usize;
        let pad = if at + need > self.buf.len() { self.buf.len() - at } else { 0 };
        while self.used() + pad + need > self.buf.len() {
            if self.head == self.tail {
                break;
            }
            self.evict_one();
        }
        if pad > 0 {
            if self.head == self.tail {
                // Empty: start at the buffer's beginning, nothing to mark.
                self.tail += pad as u64;
                self.head = self.tail;
            } else {
                if pad >= 2 {
                    self.buf[at..at + 2].copy_from_slice(&PAD.to_le_bytes());
                }
                self.tail += pad as u64;
            }
        }
        let at = (self.tail % self.cap()) as usize;
        let rec = &mut self.buf[at..at + need];
        rec[0..2].copy_from_slice(&(k as u16).to_le_bytes());
        rec[2..10].copy_from_slice(&seq.to_le_bytes());
        rec[10..18].copy_from_slice(&sent_ns.to_le_bytes());
        rec[18..26].copy_from_slice(&intended_ns.to_le_bytes());
        rec[26..28].copy_from_slice(&(payload.len() as u16).to_le_bytes());
        rec[28..].copy_from_slice(payload);
        let t = &mut self.topics[k];
        if t.offsets.is_empty() {
            t.first_seq = seq;
        }
        t.offsets.push_back(self.tail);
        self.held += 1;
        self.tail += need as u64;
    }

    /// Tick `seq` of topic `k`, if still held.
    pub(crate) fn get(&self, k: usize, seq: u64) -> Option<Held<'_>> {
        let t = self.topics.get(k)?;
        let i = seq.checked_sub(t.first_seq)?;
        let off = *t.offsets.get(usize::try_from(i).ok()?)?;
        let at = (off % self.cap()) as usize;
        let r = &self.buf[at..];
        let u64_at = |i: usize| {
            u64::from_le_bytes([r[i], r[i + 1], r[i + 2], r[i + 3], r[i + 4], r[i + 5], r[i + 6], r[i + 7]])
        };
        let len = u16::from_le_bytes([r[26], r[27]]) as usize;
        Some(Held { seq: u64_at(2), sent_ns: u64_at(10), intended_ns: u64_at(18), payload: &r[28..28 + len] })
    }

    /// The oldest sequence of topic `k` still held (`None`: nothing held).
    pub(crate) fn oldest(&self, k: usize) -> Option<u64> {
        let t = self.topics.get(k)?;
        (!t.offsets.is_empty()).then_some(t.first_seq)
    }

    /// Ticks a ring of `budget_bytes` holds at `payload_bytes` each.
    #[cfg(test)]
    pub(crate) fn capacity_for(budget_bytes: usize, payload_bytes: usize) -> usize {
        budget_bytes / (RECORD_HEADER + payload_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_come_back_by_topic_and_sequence() {
        let mut r = Ring::new(1 << 16, 2);
        for s in 1..=10u64 {
            r.push(0, s, s * 10, s * 9, format!("a{s}").as_bytes());
            r.push(1, s, s * 10 + 1, 0, format!("b{s}").as_bytes());
        }
        let t = r.get(1, 7).unwrap();
        assert_eq!((t.seq, t.sent_ns, t.intended_ns, t.payload), (7, 71, 0, &b"b7"[..]));
        assert_eq!(r.get(0, 10).unwrap().payload, b"a10");
        assert!(r.get(0, 11).is_none() && r.get(0, 0).is_none() && r.get(2, 1).is_none());
        assert_eq!((r.held(), r.oldest(0)), (20, Some(1)));
    }

    #[test]
    fn the_oldest_are_evicted_and_the_budget_holds() {
        // Room for 8 records of 64 B payload.
        let budget = 8 * (RECORD_HEADER + 64);
        let mut r = Ring::new(budget, 3);
        let payload = [7u8; 64];
        for s in 1..=1000u64 {
            r.push((s % 3) as usize, s / 3 + 1, s, s, &payload);
            assert!(r.used() <= budget, "budget exceeded at {s}: {}", r.used());
        }
        assert!(r.held() >= 5 && r.held() <= 8, "held {}", r.held());
        assert_eq!(r.evicted() + r.held() as u64, 1000);
        // The newest are there, each exactly once; the oldest are gone.
        assert_eq!(r.get(1, 1000 / 3 + 1).unwrap().seq, 1000 / 3 + 1);
        assert!(r.get(1, 1).is_none());
        for k in 0..3 {
            let first = r.oldest(k).unwrap();
            for s in first..first + 2 {
                assert_eq!(r.get(k, s).unwrap().payload, &payload[..]);
            }
        }
    }

    #[test]
    fn payloads_of_every_size_wrap_without_corruption() {
        let mut r = Ring::new(4096, 1);
        for s in 1..=500u64 {
            let p = vec![(s % 251) as u8; (s as usize * 37) % 300];
            r.push(0, s, s, s, &p);
            let back = r.get(0, s).unwrap();
            assert_eq!(back.payload, &p[..], "seq {s}");
            if let Some(first) = r.oldest(0) {
                for q in first..=s {
                    let h = r.get(0, q).unwrap();
                    assert_eq!(h.seq, q);
                    assert!(h.payload.iter().all(|&b| b == (q % 251) as u8));
                }
            }
        }
    }

    #[test]
    fn a_zero_budget_or_oversized_tick_holds_nothing() {
        let mut r = Ring::new(0, 1);
        r.push(0, 1, 0, 0, b"x");
        assert!(r.get(0, 1).is_none());
        let mut r = Ring::new(100, 1);
        r.push(0, 1, 0, 0, b"x");
        r.push(0, 2, 0, 0, &[0; 200]);
        assert!(r.get(0, 1).is_none() && r.get(0, 2).is_none());
        r.push(0, 3, 0, 0, b"y");
        assert_eq!(r.get(0, 3).unwrap().payload, b"y");
        assert_eq!(Ring::capacity_for(64 << 20, 64), 729_444, "what the default holds at 64 B");
    }
}
