//! The hand-off of latency intervals from the thread that measured them (a worker) to the
//! one that exports them (an interval-log writer, the OTLP exporter): [`interval_channel`].
//!
//! Nothing here runs per message. Once per interval the measuring thread swaps its full
//! recorder for an empty one that the exporter gave back ([`IntervalReceiver::recycle`]), so
//! a steady stream of intervals moves no histogram bytes and allocates nothing; when the
//! exporter falls behind the interval is dropped and counted, never waited for.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};

use super::semconv::MessagingAttributes;
use super::LatencyRecorder;

/// Counts of one interval besides its latencies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IntervalCounts {
    /// Messages sent (a producer) or received (a consumer) in the interval.
    pub messages: u64,
    /// Messages found missing in the interval (sequence gaps; some may be repaired later).
    pub gaps: u64,
    /// Messages delivered through repair.
    pub repaired: u64,
    /// Messages dropped (at a high-water mark).
    pub dropped: u64,
}

/// One reporting interval of one measured stream.
#[derive(Debug)]
pub struct Interval {
    /// Who measured it, e.g. the subscriber's name: an interval log's tag.
    pub source: Arc<str>,
    /// What the stream is, by the messaging conventions.
    pub attributes: Arc<MessagingAttributes>,
    /// When the interval began and ended (CLOCK_MONOTONIC ns, as [`crate::now_ns`]).
    pub start_ns: u64,
    /// When the interval ended.
    pub end_ns: u64,
    /// The latencies recorded in it, in nanoseconds.
    pub latency: LatencyRecorder,
    /// Its counts.
    pub counts: IntervalCounts,
}

/// The measuring side of [`interval_channel`]: hands intervals over without waiting. Cheap
/// to clone; each clone can be [`labelled`](Self::labelled) for its own stream.
#[derive(Debug, Clone)]
pub struct IntervalSender {
    tx: Sender<Interval>,
    free: Receiver<LatencyRecorder>,
    source: Arc<str>,
    attributes: Arc<MessagingAttributes>,
    /// Intervals dropped because the channel was full, over every clone.
    lost: Arc<AtomicU64>,
}

/// The exporting side of [`interval_channel`].
#[derive(Debug)]
pub struct IntervalReceiver {
    rx: Receiver<Interval>,
    free: Sender<LatencyRecorder>,
    lost: Arc<AtomicU64>,
}

/// A channel for up to `capacity` intervals (at least 1) between measuring threads and an
/// exporter, with as many recorders recycled back.
///
/// ```
/// use ztick::metrics::{interval_channel, IntervalCounts, LatencyRecorder, MessagingAttributes};
///
/// let (tx, rx) = interval_channel(8);
/// let tx = tx.labelled("sub0", MessagingAttributes::default());
/// let mut window = LatencyRecorder::new();
/// window.record(12_000);
/// assert!(tx.send(0, 1_000_000_000, &mut window, IntervalCounts { messages: 1, ..Default::default() }));
/// assert!(window.is_empty(), "the values went with the interval");
/// let got = rx.try_recv().expect("one interval");
/// assert_eq!((&*got.source, got.latency.len(), got.counts.messages), ("sub0", 1, 1));
/// rx.recycle(got);
/// ```
pub fn interval_channel(capacity: usize) -> (IntervalSender, IntervalReceiver) {
    let capacity = capacity.max(1);
    let (tx, rx) = crossbeam_channel::bounded(capacity);
    let (free_tx, free_rx) = crossbeam_channel::bounded(capacity);
    let lost = Arc::new(AtomicU64::new(0));
    (
        IntervalSender {
            tx,
            free: free_rx,
            source: Arc::from(""),
            attributes: Arc::default(),
            lost: Arc::clone(&lost),
        },
        IntervalReceiver { rx, free: free_tx, lost },
    )
}

impl IntervalSender {
    /// This sender for the stream `source` (the interval log's tag) with `attributes`.
    #[must_use]
    pub fn labelled(mut self, source: &str, attributes: MessagingAttributes) -> Self {
        self.source = Arc::from(source);
        self.attributes = Arc::new(attributes);
        self
    }

    /// The stream's attributes.
    pub fn attributes(&self) -> &MessagingAttributes {
        &self.attributes
    }

    /// The stream's name.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Hands the values in `latency` over as the interval `start_ns..end_ns` and leaves
    /// `latency` empty (a recycled recorder takes its place, or a new one while none has
    /// come back). Never waits: when the exporter's queue is full the interval is dropped,
    /// counted in [`IntervalReceiver::lost`], and false returned.
    pub fn send(
        &self,
        start_ns: u64,
        end_ns: u64,
        latency: &mut LatencyRecorder,
        counts: IntervalCounts,
    ) -> bool {
        let fresh = self.free.try_recv().unwrap_or_default();
        let interval = Interval {
            source: Arc::clone(&self.source),
            attributes: Arc::clone(&self.attributes),
            start_ns,
            end_ns,
            latency: std::mem::replace(latency, fresh),
            counts,
        };
        match self.tx.try_send(interval) {
            Ok(()) => true,
            Err(TrySendError::Full(back) | TrySendError::Disconnected(back)) => {
                // Keep the full recorder (emptied) rather than the fresh one: no allocation lost.
                *latency = back.latency;
                latency.reset();
                self.lost.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }
}

impl IntervalReceiver {
    /// The next interval, waiting at most `timeout`.
    ///
    /// # Errors
    /// `Timeout` when none came; `Disconnected` once every sender is gone and the queue is empty.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Interval, RecvTimeoutError> {
        self.rx.recv_timeout(timeout)
    }

    /// The next interval if one is waiting.
    pub fn try_recv(&self) -> Option<Interval> {
        self.rx.try_recv().ok()
    }

    /// Gives an interval's recorder back (emptied) for a later interval.
    pub fn recycle(&self, interval: Interval) {
        let mut latency = interval.latency;
        latency.reset();
        let _ = self.free.try_send(latency);
    }

    /// Intervals dropped so far because this receiver fell behind.
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_and_counts_and_recorders_are_recycled() {
        let (tx, rx) = interval_channel(1);
        let mut rec = LatencyRecorder::new();
        rec.record(5);
        assert!(tx.send(0, 1, &mut rec, IntervalCounts::default()));
        rec.record(7);
        assert!(!tx.send(1, 2, &mut rec, IntervalCounts::default()), "the queue holds one");
        assert!(rec.is_empty(), "a dropped interval's values are gone, its recorder kept");
        assert_eq!(rx.lost(), 1);
        let first = rx.try_recv().unwrap();
        assert_eq!((first.start_ns, first.end_ns, first.latency.len()), (0, 1, 1));
        rx.recycle(first);
        rec.record(9);
        assert!(tx.send(2, 3, &mut rec, IntervalCounts { dropped: 4, ..Default::default() }));
        let second = rx.try_recv().unwrap();
        assert_eq!((second.latency.len(), second.counts.dropped), (1, 4));
        drop(tx);
        assert!(matches!(rx.recv_timeout(Duration::ZERO), Err(RecvTimeoutError::Disconnected)));
    }
}
