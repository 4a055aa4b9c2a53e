//! The set of task ids a pipeline sink has received, as ranges of consecutive ids: a
//! ventilator numbers tasks 0, 1, 2…, so a complete run is one range however long, while
//! ids a peer makes up each cost a range, of which there is a cap. Pure: no sockets.

use std::collections::BTreeMap;

/// Received ids as disjoint, non-adjacent inclusive ranges `start -> end`, at most `max`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct IdLedger {
    ranges: BTreeMap<u64, u64>,
    max: usize,
    /// Ids in the ranges.
    len: u64,
}

/// What recording an id did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Recorded {
    /// A new id, now in the ledger.
    New,
    /// Already there.
    Duplicate,
    /// New, but it would have needed a range beyond the cap: not recorded.
    Full,
}

impl IdLedger {
    /// An empty ledger of at most `max` ranges (at least 1).
    pub(super) fn new(max: usize) -> Self {
        IdLedger { ranges: BTreeMap::new(), max: max.max(1), len: 0 }
    }

    /// Records `id`.
    pub(super) fn insert(&mut self, id: u64) -> Recorded {
        let below = self.ranges.range(..=id).next_back().map(|(&s, &e)| (s, e));
        if let Some((_, end)) = below {
            if id <= end {
                return Recorded::Duplicate;
            }
        }
        let joins_below = below.filter(|&(_, end)| end.checked_add(1) == Some(id));
        let above = id.checked_add(1).and_then(|next| self.ranges.get(&next).map(|&e| (next, e)));
        match (joins_below, above) {
            (Some((start, _)), Some((next, end))) => {
                self.ranges.remove(&next);
                self.ranges.insert(start, end);
            }
            (Some((start, _)), None) => {
                self.ranges.insert(start, id);
            }
            (None, Some((next, end))) => {
                self.ranges.remove(&next);
                self.ranges.insert(id, end);
            }
            (None, None) => {
                if self.ranges.len() >= self.max {
                    return Recorded::Full;
                }
                self.ranges.insert(id, id);
            }
        }
        self.len += 1;
        Recorded::New
    }

    /// Ids recorded.
    pub(super) fn len(&self) -> u64 {
        self.len
    }

    /// Ids recorded below `limit`.
    pub(super) fn count_below(&self, limit: u64) -> u64 {
        self.ranges.range(..limit).map(|(&s, &e)| e.min(limit - 1) - s + 1).sum()
    }

    /// The first `n` ids below `limit` not recorded, in order.
    pub(super) fn missing_below(&self, limit: u64, n: usize) -> Vec<u64> {
        let mut out = Vec::new();
        let mut next = 0u64;
        for (&s, &e) in self.ranges.range(..limit) {
            out.extend((next..s).take(n - out.len()));
            if out.len() == n {
                return out;
            }
            next = e.saturating_add(1);
        }
        out.extend((next..limit).take(n - out.len()));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_ids_in_any_order_make_one_range() {
        let mut l = IdLedger::new(4);
        for id in [3, 1, 0, 2, 5, 4] {
            assert_eq!(l.insert(id), Recorded::New, "{id}");
        }
        assert_eq!(l.ranges.len(), 1);
        assert_eq!((l.len(), l.count_below(6), l.count_below(3)), (6, 6, 3));
        assert_eq!(l.insert(4), Recorded::Duplicate);
        assert_eq!(l.missing_below(8, 10), vec![6, 7]);
    }

    #[test]
    fn made_up_ids_stop_at_the_cap_and_the_real_run_still_fits() {
        let mut l = IdLedger::new(3);
        assert_eq!(l.insert(1_000_000), Recorded::New);
        assert_eq!(l.insert(u64::MAX), Recorded::New);
        assert_eq!(l.insert(0), Recorded::New);
        assert_eq!(l.insert(500), Recorded::Full, "a fourth range");
        // The real run grows its own range, which needs no new one.
        for id in 1..100 {
            assert_eq!(l.insert(id), Recorded::New);
        }
        assert_eq!(l.count_below(100), 100);
        assert_eq!(l.len(), 102);
        assert_eq!(l.missing_below(102, 5), vec![100, 101]);
        assert_eq!(l.missing_below(0, 5), Vec::<u64>::new());
    }
}
