//! When to flush a batch: pure logic on counts, bytes and a caller-supplied clock.
//!
//! Coalescing several small records into one ZeroMQ message pays libzmq's per-message cost
//! once per batch; the deadline bounds the latency that waiting for a full batch adds.

/// Why a batch should be flushed now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushReason {
    /// It holds `max_items` records or `max_bytes` bytes.
    Full,
    /// Its oldest record has waited `max_delay_ns`.
    Deadline,
}

/// Tracks one open batch. Takes `now_ns` as a parameter so it can be tested with a fake clock.
///
/// ```
/// use ztick::{Batcher, FlushReason};
/// let mut b = Batcher::new(3, 1 << 20, 1_000);
/// assert_eq!(b.push(0, 10), None);
/// assert_eq!(b.poll(999), None);
/// assert_eq!(b.poll(1_000), Some(FlushReason::Deadline));
/// ```
#[derive(Debug, Clone)]
pub struct Batcher {
    max_items: usize,
    max_bytes: usize,
    max_delay_ns: u64,
    items: usize,
    bytes: usize,
    /// When the oldest record of the open batch was added; `None` while empty.
    first_at_ns: Option<u64>,
}

impl Batcher {
    /// A batcher that flushes at `max_items` records, `max_bytes` bytes, or when the oldest
    /// record is `max_delay_ns` old. `max_items` of 0 or 1 means no coalescing.
    pub fn new(max_items: usize, max_bytes: usize, max_delay_ns: u64) -> Self {
        Batcher {
            max_items: max_items.max(1),
            max_bytes: max_bytes.max(1),
            max_delay_ns,
            items: 0,
            bytes: 0,
            first_at_ns: None,
        }
    }

    /// Whether one more record of `bytes` still fits in the open batch.
    pub fn fits(&self, bytes: usize) -> bool {
        self.items == 0 || (self.items < self.max_items && self.bytes + bytes <= self.max_bytes)
    }

    /// Adds a record; returns `Full` when the batch should go now.
    pub fn push(&mut self, now_ns: u64, bytes: usize) -> Option<FlushReason> {
        self.first_at_ns.get_or_insert(now_ns);
        self.items += 1;
        self.bytes += bytes;
        (self.items >= self.max_items || self.bytes >= self.max_bytes).then_some(FlushReason::Full)
    }

    /// Returns `Deadline` when a non-empty batch has waited long enough.
    pub fn poll(&self, now_ns: u64) -> Option<FlushReason> {
        let first = self.first_at_ns?;
        (now_ns.saturating_sub(first) >= self.max_delay_ns).then_some(FlushReason::Deadline)
    }

    /// When the open batch must be flushed at the latest; `None` while empty.
    pub fn deadline_ns(&self) -> Option<u64> {
        self.first_at_ns.map(|t| t.saturating_add(self.max_delay_ns))
    }

    /// Records in the open batch.
    pub fn len(&self) -> usize {
        self.items
    }

    /// True when no batch is open.
    pub fn is_empty(&self) -> bool {
        self.items == 0
    }

    /// Closes the batch (after sending it).
    pub fn reset(&mut self) {
        self.items = 0;
        self.bytes = 0;
        self.first_at_ns = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flushes_when_full_by_count_or_bytes() {
        let mut b = Batcher::new(2, 100, u64::MAX);
        assert_eq!(b.push(5, 10), None);
        assert_eq!(b.push(6, 10), Some(FlushReason::Full));
        b.reset();
        assert!(b.is_empty());
        let mut b = Batcher::new(10, 15, u64::MAX);
        assert_eq!(b.push(0, 10), None);
        assert!(!b.fits(10));
        assert_eq!(b.push(0, 10), Some(FlushReason::Full));
    }

    #[test]
    fn deadline_counts_from_the_oldest_record() {
        let mut b = Batcher::new(100, 1 << 20, 50);
        assert_eq!(b.poll(1_000), None, "empty batches never expire");
        b.push(100, 1);
        b.push(140, 1);
        assert_eq!(b.deadline_ns(), Some(150));
        assert_eq!(b.poll(149), None);
        assert_eq!(b.poll(150), Some(FlushReason::Deadline));
    }

    #[test]
    fn one_item_batches_flush_at_once() {
        let mut b = Batcher::new(0, 1 << 20, 1_000);
        assert_eq!(b.push(0, 1), Some(FlushReason::Full));
    }
}
