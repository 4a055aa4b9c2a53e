//! Per-topic sequence accounting: what arrived, what is missing, exactly which ranges.

use serde::Serialize;

/// The most gap ranges kept per topic; beyond, gaps are still counted, not listed.
pub const MAX_GAPS_KEPT: usize = 64;

/// A run of missing sequences, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Gap {
    /// First missing sequence.
    pub first: u64,
    /// Last missing sequence.
    pub last: u64,
}

impl Gap {
    /// Sequences in the range.
    pub fn len(&self) -> u64 {
        self.last - self.first + 1
    }

    /// Always false: a gap holds at least one sequence.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// What a tick did to the accounting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqOutcome {
    /// The next expected sequence.
    InOrder,
    /// Ticks were skipped before this one.
    Gap(Gap),
    /// Already received or covered by a snapshot: ignored.
    Stale,
    /// Sequence 0 or `u64::MAX`, which no publisher sends: refused, nothing changed.
    Invalid,
}

/// Tracks one topic's sequences. Pure logic, unit-tested.
#[derive(Debug, Clone, Default)]
pub struct SeqTracker {
    /// The next sequence expected (sequences start at 1).
    next: u64,
    /// Sequences up to and including this came from a snapshot, not the stream.
    base: u64,
    received: u64,
    missing: u64,
    stale: u64,
    gaps: Vec<Gap>,
    /// Gaps beyond `MAX_GAPS_KEPT` (counted in `missing`, not listed).
    gaps_unlisted: u64,
    /// The final sequence, once an end marker arrived.
    ended_at: Option<u64>,
}

impl SeqTracker {
    /// A tracker expecting sequence 1.
    pub fn new() -> Self {
        SeqTracker { next: 1, ..Default::default() }
    }

    /// Starts after a snapshot that covered sequences up to `seq`.
    pub fn start_after_snapshot(&mut self, seq: u64) {
        let seq = seq.min(u64::MAX - 1);
        self.base = seq;
        if self.next <= seq {
            self.next = seq + 1;
        }
    }

    /// Accounts for one received tick.
    pub fn on_tick(&mut self, seq: u64) -> SeqOutcome {
        if seq == 0 || seq == u64::MAX {
            return SeqOutcome::Invalid;
        }
        if seq < self.next {
            self.stale += 1;
            return SeqOutcome::Stale;
        }
        self.received += 1;
        if seq == self.next {
            self.next += 1;
            return SeqOutcome::InOrder;
        }
        let gap = Gap { first: self.next, last: seq - 1 };
        self.add_gap(gap);
        self.next = seq + 1;
        SeqOutcome::Gap(gap)
    }

    /// Accounts for the publisher's word that `last_seq` was published (heartbeat or end):
    /// anything expected up to there and not received is missing. Returns the new gap.
    pub fn on_last(&mut self, last_seq: u64) -> Option<Gap> {
        // u64::MAX would overflow `next`; no publisher gets there, so a peer sent garbage.
        if last_seq < self.next || last_seq == u64::MAX {
            return None;
        }
        let gap = Gap { first: self.next, last: last_seq };
        self.add_gap(gap);
        self.next = last_seq + 1;
        Some(gap)
    }

    /// Records the end marker's final sequence (and the tail it makes missing).
    pub fn on_end(&mut self, last_seq: u64) -> Option<Gap> {
        self.ended_at = Some(last_seq);
        self.on_last(last_seq)
    }

    fn add_gap(&mut self, gap: Gap) {
        self.missing = self.missing.saturating_add(gap.len());
        if self.gaps.len() < MAX_GAPS_KEPT {
            self.gaps.push(gap);
        } else {
            self.gaps_unlisted += 1;
        }
    }

    /// Ticks received from the stream (not stale).
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Ticks known missing.
    pub fn missing(&self) -> u64 {
        self.missing
    }

    /// Ticks ignored as already seen or covered by the snapshot.
    pub fn stale(&self) -> u64 {
        self.stale
    }

    /// Sequences covered by the snapshot this tracker started from.
    pub fn from_snapshot(&self) -> u64 {
        self.base
    }

    /// The first [`MAX_GAPS_KEPT`] missing ranges, in order.
    pub fn gaps(&self) -> &[Gap] {
        &self.gaps
    }

    /// Ranges missing beyond those listed.
    pub fn gaps_unlisted(&self) -> u64 {
        self.gaps_unlisted
    }

    /// The final sequence, once the end marker arrived.
    pub fn ended_at(&self) -> Option<u64> {
        self.ended_at
    }

    /// The highest sequence accounted for (received, missing or from the snapshot).
    pub fn accounted_up_to(&self) -> u64 {
        self.next - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_gaps_and_stale_ticks() {
        let mut t = SeqTracker::new();
        assert_eq!(t.on_tick(1), SeqOutcome::InOrder);
        assert_eq!(t.on_tick(2), SeqOutcome::InOrder);
        assert_eq!(t.on_tick(5), SeqOutcome::Gap(Gap { first: 3, last: 4 }));
        assert_eq!(t.on_tick(4), SeqOutcome::Stale);
        assert_eq!((t.received(), t.missing(), t.stale()), (3, 2, 1));
    }

    #[test]
    fn the_tail_counts_once_the_last_sequence_is_known() {
        let mut t = SeqTracker::new();
        t.on_tick(1);
        assert_eq!(t.on_last(0), None);
        assert_eq!(t.on_last(1), None);
        assert_eq!(t.on_end(4), Some(Gap { first: 2, last: 4 }));
        assert_eq!(t.ended_at(), Some(4));
        assert_eq!(t.received() + t.missing(), 4);
        let listed: u64 = t.gaps().iter().map(Gap::len).sum();
        assert_eq!(listed, t.missing());
    }

    #[test]
    fn nothing_received_at_all_is_all_missing() {
        let mut t = SeqTracker::new();
        t.on_end(10);
        assert_eq!((t.received(), t.missing()), (0, 10));
        assert_eq!(t.gaps(), &[Gap { first: 1, last: 10 }]);
    }

    #[test]
    fn a_snapshot_covers_what_came_before_it() {
        let mut t = SeqTracker::new();
        t.start_after_snapshot(100);
        assert_eq!(t.on_tick(99), SeqOutcome::Stale);
        assert_eq!(t.on_tick(100), SeqOutcome::Stale);
        assert_eq!(t.on_tick(101), SeqOutcome::InOrder);
        t.on_end(101);
        assert_eq!((t.from_snapshot(), t.received(), t.missing()), (100, 1, 0));
    }

    #[test]
    fn extreme_sequences_from_a_peer_never_overflow() {
        let mut t = SeqTracker::new();
        assert_eq!(t.on_tick(0), SeqOutcome::Invalid);
        assert_eq!(t.on_tick(u64::MAX), SeqOutcome::Invalid);
        assert_eq!(t.on_last(u64::MAX), None);
        t.start_after_snapshot(u64::MAX);
        assert_eq!(t.on_tick(u64::MAX - 1), SeqOutcome::Stale);
        let mut t = SeqTracker::new();
        t.on_tick(u64::MAX - 1);
        assert_eq!(t.missing(), u64::MAX - 2);
        t.on_last(u64::MAX - 1);
        assert_eq!(t.accounted_up_to(), u64::MAX - 1);
    }

    #[test]
    fn gap_list_is_capped_but_counting_is_not() {
        let mut t = SeqTracker::new();
        for i in 0..(MAX_GAPS_KEPT as u64 + 10) {
            t.on_tick(2 * i + 2);
        }
        assert_eq!(t.gaps().len(), MAX_GAPS_KEPT);
        assert_eq!(t.gaps_unlisted(), 10);
        assert_eq!(t.missing(), MAX_GAPS_KEPT as u64 + 10);
    }
}
