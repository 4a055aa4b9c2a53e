//! Per-topic sequence accounting within one publisher epoch: what arrived in order, what
//! was repaired, what is still being repaired, what is lost for good, exactly which ranges.

use serde::Serialize;

/// The most lost ranges listed per topic; beyond, losses are still counted, not listed.
pub const MAX_GAPS_KEPT: usize = 64;
/// The most ranges per topic awaiting repair; a gap beyond them is lost at once.
pub const MAX_PENDING: usize = 256;

/// A run of sequences, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Gap {
    /// First sequence.
    pub first: u64,
    /// Last sequence.
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
    /// Ticks were skipped before this one: lost, or awaiting repair when the tracker
    /// repairs.
    Gap(Gap),
    /// Already received, or covered by a snapshot: ignored.
    Stale,
    /// Sequence 0 or `u64::MAX`, which no publisher sends: refused, nothing changed.
    Invalid,
}

/// Tracks one topic's sequences in one epoch. Pure logic, unit-tested.
///
/// Invariant: `from_snapshot + received + repaired + pending + missing` equals
/// [`accounted_up_to`](Self::accounted_up_to), the highest sequence known to exist.
#[derive(Debug, Clone, Default)]
pub struct SeqTracker {
    /// The next sequence expected (sequences start at 1).
    next: u64,
    /// Sequences up to and including this came from a snapshot, not the stream.
    base: u64,
    received: u64,
    repaired: u64,
    /// Lost for good.
    missing: u64,
    stale: u64,
    /// Ranges awaiting repair, in order, disjoint.
    pending: Vec<Gap>,
    pending_ticks: u64,
    /// Whether new gaps await repair (else they are lost at once).
    repairs: bool,
    /// The first [`MAX_GAPS_KEPT`] lost ranges.
    gaps: Vec<Gap>,
    /// Lost ranges beyond those listed (counted in `missing`).
    gaps_unlisted: u64,
    /// The final sequence, once an end marker arrived.
    ended_at: Option<u64>,
}

impl SeqTracker {
    /// A tracker expecting sequence 1, whose gaps are lost at once.
    pub fn new() -> Self {
        SeqTracker { next: 1, ..Default::default() }
    }

    /// A tracker expecting sequence 1 whose gaps await repair
    /// ([`on_repaired`](Self::on_repaired), [`give_up`](Self::give_up)).
    pub fn repairing() -> Self {
        SeqTracker { next: 1, repairs: true, ..Default::default() }
    }

    /// Starts after a snapshot that covered sequences up to `seq`. Only a fresh tracker
    /// takes a snapshot, and only a later one (a topic listed twice keeps its highest), so
    /// the books still close.
    pub fn start_after_snapshot(&mut self, seq: u64) {
        let seq = seq.min(u64::MAX - 1);
        let fresh = self.received == 0 && self.repaired == 0 && self.missing == 0 && self.pending.is_empty();
        if !fresh || seq <= self.base || self.next > self.base + 1 {
            return;
        }
        self.base = seq;
        self.next = seq + 1;
    }

    /// Accounts for one tick received in the stream.
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
    /// anything expected up to there and not received is a gap. Returns it.
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

    /// Records the end marker's final sequence (and the tail it makes a gap).
    pub fn on_end(&mut self, last_seq: u64) -> Option<Gap> {
        self.ended_at = Some(last_seq);
        self.on_last(last_seq)
    }

    fn add_gap(&mut self, gap: Gap) {
        if self.repairs && self.pending.len() < MAX_PENDING {
            self.pending.push(gap);
            self.pending_ticks += gap.len();
        } else {
            self.lose(gap);
        }
    }

    fn lose(&mut self, gap: Gap) {
        self.missing = self.missing.saturating_add(gap.len());
        if self.gaps.len() < MAX_GAPS_KEPT {
            self.gaps.push(gap);
        } else {
            self.gaps_unlisted += 1;
        }
    }

    /// Accounts for a repaired tick: true when `seq` was awaiting repair (it is now
    /// repaired), false when it was not (a duplicate, or never missing).
    pub fn on_repaired(&mut self, seq: u64) -> bool {
        let Some(i) = self.pending.iter().position(|g| g.first <= seq && seq <= g.last) else { return false };
        let g = self.pending[i];
        if g.first < seq && seq < g.last && self.pending.len() >= 2 * MAX_PENDING {
            // Splitting once more would let repairs out of order grow the list without
            // bound: what lies after this tick in the range is lost instead.
            self.pending[i].last = seq;
            self.pending_ticks -= g.last - seq;
            self.lose(Gap { first: seq + 1, last: g.last });
        }
        let g = self.pending[i];
        match (g.first == seq, g.last == seq) {
            (true, true) => {
                self.pending.remove(i);
            }
            (true, false) => self.pending[i].first = seq + 1,
            (false, true) => self.pending[i].last = seq - 1,
            (false, false) => {
                self.pending[i].last = seq - 1;
                self.pending.insert(i + 1, Gap { first: seq + 1, last: g.last });
            }
        }
        self.pending_ticks -= 1;
        self.repaired += 1;
        true
    }

    /// Gives up on the pending sequences within `first..=last` (the publisher no longer
    /// holds them, or it stopped answering): they are lost for good. Returns the ranges
    /// given up, in order.
    pub fn give_up(&mut self, first: u64, last: u64) -> Vec<Gap> {
        let mut lost = Vec::new();
        let mut kept = Vec::with_capacity(self.pending.len());
        for g in std::mem::take(&mut self.pending) {
            let (lo, hi) = (g.first.max(first), g.last.min(last));
            if lo > hi {
                kept.push(g);
                continue;
            }
            if g.first < lo {
                kept.push(Gap { first: g.first, last: lo - 1 });
            }
            if hi < g.last {
                kept.push(Gap { first: hi + 1, last: g.last });
            }
            lost.push(Gap { first: lo, last: hi });
        }
        self.pending = kept;
        for g in &lost {
            self.pending_ticks -= g.len();
            self.lose(*g);
        }
        lost
    }

    /// Gives up on everything still awaiting repair; returns the ranges.
    pub fn give_up_all(&mut self) -> Vec<Gap> {
        self.give_up(1, u64::MAX)
    }

    /// Ticks received from the stream, in order or after a gap (not stale, not repaired).
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Ticks that arrived through repair.
    pub fn repaired(&self) -> u64 {
        self.repaired
    }

    /// Ticks lost for good (unrecoverable).
    pub fn missing(&self) -> u64 {
        self.missing
    }

    /// Ticks awaiting repair now.
    pub fn pending(&self) -> u64 {
        self.pending_ticks
    }

    /// The ranges awaiting repair, in order.
    pub fn pending_ranges(&self) -> &[Gap] {
        &self.pending
    }

    /// Ticks ignored as already seen or covered by the snapshot.
    pub fn stale(&self) -> u64 {
        self.stale
    }

    /// Sequences covered by the snapshot this tracker started from.
    pub fn from_snapshot(&self) -> u64 {
        self.base
    }

    /// The first [`MAX_GAPS_KEPT`] lost ranges, in the order they were found.
    pub fn gaps(&self) -> &[Gap] {
        &self.gaps
    }

    /// Lost ranges beyond those listed.
    pub fn gaps_unlisted(&self) -> u64 {
        self.gaps_unlisted
    }

    /// The final sequence, once the end marker arrived.
    pub fn ended_at(&self) -> Option<u64> {
        self.ended_at
    }

    /// The highest sequence accounted for (received, repaired, pending, missing or from the
    /// snapshot): the publisher's known published count.
    pub fn accounted_up_to(&self) -> u64 {
        self.next - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closes(t: &SeqTracker) -> bool {
        t.from_snapshot() + t.received() + t.repaired() + t.pending() + t.missing() == t.accounted_up_to()
    }

    #[test]
    fn in_order_gaps_and_stale_ticks() {
        let mut t = SeqTracker::new();
        assert_eq!(t.on_tick(1), SeqOutcome::InOrder);
        assert_eq!(t.on_tick(2), SeqOutcome::InOrder);
        assert_eq!(t.on_tick(5), SeqOutcome::Gap(Gap { first: 3, last: 4 }));
        assert_eq!(t.on_tick(4), SeqOutcome::Stale);
        assert_eq!((t.received(), t.missing(), t.stale()), (3, 2, 1));
        assert!(closes(&t));
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
    fn a_topic_listed_twice_in_a_snapshot_keeps_the_books_closed() {
        let mut t = SeqTracker::new();
        t.start_after_snapshot(100);
        t.start_after_snapshot(50);
        assert_eq!((t.from_snapshot(), t.accounted_up_to()), (100, 100));
        t.on_tick(101);
        t.start_after_snapshot(200);
        assert_eq!(t.from_snapshot(), 100, "no snapshot once ticks are counted");
        assert!(closes(&t));
    }

    #[test]
    fn out_of_order_repairs_cannot_split_the_pending_list_without_bound() {
        let mut t = SeqTracker::repairing();
        for i in 0..MAX_PENDING as u64 {
            t.on_tick(1_000 * i + 1_000);
        }
        // Repair every other tick of each range: each repair splits.
        for i in 0..MAX_PENDING as u64 {
            for k in (2..998).step_by(2) {
                t.on_repaired(1_000 * i + k);
            }
        }
        assert!(t.pending_ranges().len() <= 2 * MAX_PENDING + 1, "{}", t.pending_ranges().len());
        assert!(closes(&t));
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
        assert!(closes(&t));
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
        let mut t = SeqTracker::repairing();
        t.on_tick(u64::MAX - 1);
        assert_eq!(t.give_up_all(), vec![Gap { first: 1, last: u64::MAX - 2 }]);
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

    #[test]
    fn gaps_await_repair_then_are_repaired_or_given_up() {
        let mut t = SeqTracker::repairing();
        t.on_tick(1);
        assert_eq!(t.on_tick(10), SeqOutcome::Gap(Gap { first: 2, last: 9 }));
        assert_eq!((t.pending(), t.missing()), (8, 0));
        assert!(t.on_repaired(5), "the middle splits the range");
        assert!(!t.on_repaired(5), "a duplicate repair counts once");
        assert!(t.on_repaired(2) && t.on_repaired(9));
        assert_eq!(t.pending_ranges(), &[Gap { first: 3, last: 4 }, Gap { first: 6, last: 8 }]);
        assert!(!t.on_repaired(10) && !t.on_repaired(1), "never missing");
        assert_eq!(t.give_up(4, 7), vec![Gap { first: 4, last: 4 }, Gap { first: 6, last: 7 }]);
        assert_eq!(t.pending_ranges(), &[Gap { first: 3, last: 3 }, Gap { first: 8, last: 8 }]);
        assert_eq!(t.on_end(12), Some(Gap { first: 11, last: 12 }));
        assert!(closes(&t));
        assert_eq!(t.give_up_all().len(), 3);
        assert_eq!((t.received(), t.repaired(), t.pending(), t.missing()), (2, 3, 0, 7));
        assert_eq!(t.gaps().iter().map(Gap::len).sum::<u64>(), 7);
        assert!(closes(&t));
    }

    #[test]
    fn too_many_pending_ranges_are_lost_at_once() {
        let mut t = SeqTracker::repairing();
        for i in 0..(MAX_PENDING as u64 + 5) {
            t.on_tick(2 * i + 2);
        }
        assert_eq!(t.pending_ranges().len(), MAX_PENDING);
        assert_eq!(t.missing(), 5);
        assert!(closes(&t));
    }
}
