//! [`IntervalReporter`]: a latency summary every interval, on a clock the caller supplies.

use std::time::Duration;

use super::handoff::{IntervalCounts, IntervalSender};
use super::{LatencyRecorder, LatencySummary};

/// Records latencies and emits their [`LatencySummary`] once per interval, then starts over.
///
/// Sans-IO: it reads no clock. The caller passes the current time in nanoseconds (the same
/// `CLOCK_MONOTONIC` reading it stamps messages with) to [`new`](Self::new) and
/// [`maybe_report`](Self::maybe_report), typically once per batch on a worker thread, so
/// tests drive it with a fake clock.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ztick::metrics::IntervalReporter;
///
/// let mut reporter = IntervalReporter::new("feed", Duration::from_secs(1), 0);
/// reporter.record(12_000);
/// assert!(reporter.maybe_report(500_000_000).is_none()); // half a second: not yet
/// let summary = reporter.maybe_report(1_000_000_000).expect("one second elapsed");
/// assert_eq!(summary.count, 1);
/// ```
#[derive(Debug)]
pub struct IntervalReporter {
    /// Passed to [`LatencySummary::emit`]: what is measured.
    name: &'static str,
    /// Length of one interval; 0 reports at every call.
    interval_ns: u64,
    /// Caller's clock when the current interval began. Only moves forward.
    started_ns: u64,
    /// Values recorded since `started_ns`.
    current: LatencyRecorder,
    /// Where each finished interval goes, if anywhere (an interval log, the OTLP export).
    sender: Option<IntervalSender>,
}

impl IntervalReporter {
    /// A reporter named `name` whose first interval starts at `now_ns` and lasts `interval`
    /// (saturated at about 584 years).
    #[must_use]
    pub fn new(name: &'static str, interval: Duration, now_ns: u64) -> Self {
        Self {
            name,
            interval_ns: u64::try_from(interval.as_nanos()).unwrap_or(u64::MAX),
            started_ns: now_ns,
            current: LatencyRecorder::new(),
            sender: None,
        }
    }

    /// Hands every finished interval's histogram to `sender` (without copying it: the
    /// recorder is swapped for an empty one), and emits its span with the sender's
    /// messaging attributes ([`LatencySummary::emit_messaging`]).
    #[must_use]
    pub fn with_sender(mut self, sender: IntervalSender) -> Self {
        self.sender = Some(sender);
        self
    }

    /// True once at least one interval has passed since the current one began.
    pub fn is_due(&self, now_ns: u64) -> bool {
        now_ns.saturating_sub(self.started_ns) >= self.interval_ns
    }

    /// Records one latency into the current interval. See [`LatencyRecorder::record`].
    #[inline]
    pub fn record(&mut self, latency_ns: u64) {
        self.current.record(latency_ns);
    }

    /// Records one latency with coordinated-omission correction into the current interval.
    /// See [`LatencyRecorder::record_corrected`].
    #[inline]
    pub fn record_corrected(&mut self, latency_ns: u64, expected_interval_ns: u64) {
        self.current.record_corrected(latency_ns, expected_interval_ns);
    }

    /// When at least one interval has passed since the current one began, emits the
    /// summary of the values recorded in it (through [`LatencySummary::emit`]), empties the
    /// recorder, starts the next interval at `now_ns` and returns the summary. Otherwise
    /// returns `None`.
    ///
    /// An interval with no values is reported too (count 0), so a silent feed shows up.
    /// A `now_ns` earlier than the interval's start counts as no time elapsed.
    pub fn maybe_report(&mut self, now_ns: u64) -> Option<LatencySummary> {
        if !self.is_due(now_ns) {
            return None;
        }
        Some(self.report_now(now_ns))
    }

    /// Reports the current interval now, however short (e.g. the last one at shutdown):
    /// emits its summary, empties the recorder and starts the next interval at `now_ns`.
    pub fn report_now(&mut self, now_ns: u64) -> LatencySummary {
        self.report_with(now_ns, IntervalCounts::default())
    }

    /// As [`report_now`](Self::report_now), handing `counts` over with the interval.
    pub fn report_with(&mut self, now_ns: u64, counts: IntervalCounts) -> LatencySummary {
        let summary = self.current.summary();
        let end = self.started_ns.max(now_ns);
        match &self.sender {
            Some(tx) => {
                let error = (counts.gaps > 0 || counts.dropped > 0).then_some("gap");
                summary.emit_messaging(self.name, tx.attributes(), error);
                // Empties `current` (on success and on a full queue alike).
                tx.send(self.started_ns, end, &mut self.current, counts);
            }
            None => {
                summary.emit(self.name);
                self.current.reset();
            }
        }
        self.started_ns = end;
        summary
    }

    /// The values recorded in the current interval so far, e.g. to merge them into a run
    /// total before [`maybe_report`](Self::maybe_report) empties them.
    pub fn current(&self) -> &LatencyRecorder {
        &self.current
    }

    /// The name passed to [`LatencySummary::emit`].
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The interval length in nanoseconds.
    pub fn interval_ns(&self) -> u64 {
        self.interval_ns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    #[test]
    fn reports_once_per_interval_on_a_fake_clock() {
        let start = 7 * SECOND;
        let mut r = IntervalReporter::new("test", Duration::from_secs(1), start);
        assert_eq!(r.interval_ns(), SECOND);
        assert_eq!(r.name(), "test");
        for v in 1..=100 {
            r.record(v * 1_000);
        }
        assert_eq!(r.maybe_report(start), None);
        assert_eq!(r.maybe_report(start + SECOND - 1), None);
        assert_eq!(r.current().len(), 100);

        let first = r.maybe_report(start + SECOND).expect("a second has passed");
        assert_eq!(first.count, 100);
        assert_eq!(first.min, 1_000);
        assert!(first.max >= 100_000);
        assert!(r.current().is_empty(), "reset after a report");

        // The next interval starts at the report, not at the previous boundary.
        r.record_corrected(10_000, 1_000);
        assert_eq!(r.maybe_report(start + 2 * SECOND - 1), None);
        let second = r.maybe_report(start + 2 * SECOND).expect("second interval");
        assert_eq!(second.count, 10);
    }

    #[test]
    fn late_calls_report_once_and_empty_intervals_report_zero() {
        let mut r = IntervalReporter::new("test", Duration::from_millis(100), 0);
        r.record(5);
        // Ten intervals late: one report, then a fresh interval from now.
        let late = 10 * 100_000_000;
        assert_eq!(r.maybe_report(late).map(|s| s.count), Some(1));
        assert_eq!(r.maybe_report(late + 1), None);
        let empty = r.maybe_report(late + 100_000_000).expect("interval elapsed");
        assert_eq!(empty.count, 0);
        assert_eq!(empty.max, 0);
    }

    #[test]
    fn a_clock_going_backwards_reports_nothing() {
        let mut r = IntervalReporter::new("test", Duration::from_secs(1), 5 * SECOND);
        r.record(1);
        assert_eq!(r.maybe_report(0), None);
        assert_eq!(r.maybe_report(SECOND), None);
        // report_now with an earlier time keeps the start where it was.
        assert_eq!(r.report_now(0).count, 1);
        assert_eq!(r.maybe_report(6 * SECOND - 1), None);
        assert!(r.maybe_report(6 * SECOND).is_some());
    }

    #[test]
    fn a_sender_gets_every_interval_whose_counts_add_up() {
        let (tx, rx) = crate::metrics::interval_channel(8);
        let tx = tx.labelled("req", crate::metrics::MessagingAttributes::default());
        let mut r = IntervalReporter::new("test", Duration::from_secs(1), 0).with_sender(tx);
        for v in 1..=10 {
            r.record(v);
        }
        assert!(!r.is_due(SECOND - 1) && r.is_due(SECOND));
        assert_eq!(r.maybe_report(SECOND).map(|s| s.count), Some(10));
        r.record(5);
        r.report_with(SECOND + 5, IntervalCounts { messages: 1, ..Default::default() });
        let first = rx.try_recv().unwrap();
        let second = rx.try_recv().unwrap();
        assert_eq!((first.start_ns, first.end_ns, first.latency.len()), (0, SECOND, 10));
        assert_eq!((second.start_ns, second.end_ns, second.latency.len()), (SECOND, SECOND + 5, 1));
        assert_eq!(second.counts.messages, 1);
        assert!(r.current().is_empty());
    }

    #[test]
    fn zero_interval_reports_every_call_and_huge_interval_saturates() {
        let mut r = IntervalReporter::new("test", Duration::ZERO, 0);
        assert!(r.maybe_report(0).is_some());
        assert!(r.maybe_report(0).is_some());
        let r = IntervalReporter::new("test", Duration::MAX, 0);
        assert_eq!(r.interval_ns(), u64::MAX);
    }
}
