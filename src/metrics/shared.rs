//! [`SharedRecorder`] and [`LocalRecorder`]: per-thread recording merged into one total.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::LatencyRecorder;

/// A latency total that several threads feed, each through its own [`LocalRecorder`].
///
/// Recording goes to the thread's local histogram with no lock and no shared cache line; the
/// local values are merged into the total (under a mutex) only when the handle is flushed or
/// dropped, which belongs off the hot path: at the end of a batch, an interval or the run.
/// This is the `sync::Recorder` pattern of the hdrhistogram crate, without its channel.
///
/// Cloning is cheap and every clone refers to the same total.
///
/// # Examples
///
/// ```
/// use ztick::metrics::SharedRecorder;
///
/// let shared = SharedRecorder::new();
/// std::thread::scope(|s| {
///     for _ in 0..2 {
///         let mut local = shared.local();
///         s.spawn(move || {
///             for latency_ns in 1..=1_000 {
///                 local.record(latency_ns);
///             }
///         }); // `local` is dropped at the end of the thread, which merges it
///     }
/// });
/// assert_eq!(shared.snapshot().len(), 2_000);
/// ```
#[derive(Debug, Clone, Default)]
pub struct SharedRecorder {
    /// The merged total of every flushed [`LocalRecorder`].
    total: Arc<Mutex<LatencyRecorder>>,
}

impl SharedRecorder {
    /// An empty total.
    pub fn new() -> Self {
        Self::default()
    }

    /// A new recording handle for the calling thread, with its own empty histogram
    /// (about 220 KiB, allocated here rather than on the hot path).
    #[must_use = "values recorded into a dropped handle are lost; keep it on the recording thread"]
    pub fn local(&self) -> LocalRecorder {
        LocalRecorder { shared: self.clone(), pending: LatencyRecorder::new() }
    }

    /// A copy of the total merged so far; values still pending in unflushed handles are not
    /// in it.
    #[must_use]
    pub fn snapshot(&self) -> LatencyRecorder {
        self.lock().clone()
    }

    /// Adds a recorder the caller owns (e.g. one finished interval) to the total.
    pub fn merge(&self, recorder: &LatencyRecorder) {
        if !recorder.is_empty() {
            self.lock().merge(recorder);
        }
    }

    /// Empties the total (pending values in handles are kept and arrive at their next flush).
    pub fn reset(&self) {
        self.lock().reset();
    }

    fn lock(&self) -> MutexGuard<'_, LatencyRecorder> {
        // A thread can only panic while holding this lock inside hdrhistogram's add, clone or
        // reset; the counts stay well-formed, so a poisoned lock is still worth using rather
        // than turning one panic into a panic in every later flush (and in `Drop`).
        self.total.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One thread's handle on a [`SharedRecorder`]: records locally, merges on
/// [`flush`](Self::flush) and on drop.
///
/// `Send`, so it can be created on one thread and moved into the worker that records.
#[derive(Debug)]
pub struct LocalRecorder {
    shared: SharedRecorder,
    /// Values recorded since the last flush; empty right after one.
    pending: LatencyRecorder,
}

impl LocalRecorder {
    /// Records one latency locally: no lock. See [`LatencyRecorder::record`].
    #[inline]
    pub fn record(&mut self, latency_ns: u64) {
        self.pending.record(latency_ns);
    }

    /// Records one latency with coordinated-omission correction, locally.
    /// See [`LatencyRecorder::record_corrected`].
    #[inline]
    pub fn record_corrected(&mut self, latency_ns: u64, expected_interval_ns: u64) {
        self.pending.record_corrected(latency_ns, expected_interval_ns);
    }

    /// Merges the values recorded since the last flush into the shared total and clears them.
    /// Takes the shared lock for one histogram merge (tens of microseconds); does nothing when
    /// there is nothing pending.
    pub fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        self.shared.merge(&self.pending);
        self.pending.reset();
    }

    /// The values recorded since the last flush.
    pub fn pending(&self) -> &LatencyRecorder {
        &self.pending
    }

    /// The total this handle flushes into.
    pub fn shared(&self) -> &SharedRecorder {
        &self.shared
    }
}

impl Drop for LocalRecorder {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn handles_are_send_and_the_total_is_sync() {
        assert_send_sync::<SharedRecorder>();
        assert_send_sync::<LocalRecorder>();
    }

    #[test]
    fn flush_merges_once() {
        let shared = SharedRecorder::new();
        let mut local = shared.local();
        local.record(10);
        local.record_corrected(10_000, 1_000);
        assert_eq!(local.pending().len(), 11);
        assert!(shared.snapshot().is_empty(), "nothing merged before a flush");

        local.flush();
        assert!(local.pending().is_empty());
        assert_eq!(shared.snapshot().len(), 11);
        local.flush();
        assert_eq!(shared.snapshot().len(), 11, "a second flush adds nothing");

        local.record(20);
        drop(local);
        assert_eq!(shared.snapshot().len(), 12, "drop flushes");

        shared.reset();
        assert!(shared.snapshot().is_empty());
    }

    #[test]
    fn four_threads_merge_into_the_total() {
        let shared = SharedRecorder::new();
        std::thread::scope(|s| {
            for t in 0..4_u64 {
                let mut local = shared.local();
                s.spawn(move || {
                    for v in 1..=1_000 {
                        local.record(t * 1_000 + v);
                        if v % 250 == 0 {
                            local.flush();
                        }
                    }
                    local.record(1);
                    // Dropped here: the last value arrives through Drop.
                });
            }
        });
        let total = shared.snapshot();
        assert_eq!(total.len(), 4 * 1_001);
        assert_eq!(total.as_histogram().count_at(1), 5);
        assert_eq!(total.summary().min, 1);
        assert!(total.summary().max >= 4_000);
        for v in 1..=2_000 {
            // Below 2048 every value has its own slot.
            let expected = if v == 1 { 5 } else { 1 };
            assert_eq!(total.as_histogram().count_at(v), expected, "value {v}");
        }
    }

    #[test]
    fn merge_of_an_owned_recorder_and_clones_share_the_total() {
        let shared = SharedRecorder::new();
        let clone = shared.clone();
        let mut mine = LatencyRecorder::new();
        mine.record(5);
        clone.merge(&mine);
        clone.merge(&LatencyRecorder::new());
        assert_eq!(shared.snapshot().len(), 1);
        assert_eq!(clone.local().shared().snapshot().len(), 1);
    }

    #[test]
    fn a_poisoned_lock_still_works() {
        let shared = SharedRecorder::new();
        let poisoner = shared.clone();
        let _ = std::thread::spawn(move || {
            let _guard = poisoner.total.lock().unwrap();
            panic!("poison the lock");
        })
        .join();
        assert!(shared.total.is_poisoned());
        let mut local = shared.local();
        local.record(7);
        drop(local);
        assert_eq!(shared.snapshot().len(), 1);
    }
}
