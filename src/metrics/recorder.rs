//! [`LatencyRecorder`]: one thread's HdrHistogram of latencies in nanoseconds.

use std::fmt;
use std::io;

use hdrhistogram::Histogram;

use super::hgrm;
use super::summary::LatencySummary;

/// A histogram of latencies in nanoseconds, owned by one thread.
///
/// It covers [`LOWEST_NS`](Self::LOWEST_NS) to [`HIGHEST_NS`](Self::HIGHEST_NS) (1 ns to 60 s)
/// with [`SIGNIFICANT_DIGITS`](Self::SIGNIFICANT_DIGITS) (3) significant digits: any value is
/// kept within 0.1 %. Recording is a few instructions on a preallocated array (about 220 KiB
/// per recorder): no allocation, no lock, no panic, whatever the value. Combine the recorders
/// of several threads with [`merge`](Self::merge) or a [`SharedRecorder`](super::SharedRecorder).
///
/// # Examples
///
/// ```
/// use ztick::metrics::LatencyRecorder;
///
/// // Each thread records into its own recorder; a total merges them.
/// let (mut a, mut b) = (LatencyRecorder::new(), LatencyRecorder::new());
/// for latency_ns in [9_000, 10_000, 11_000] {
///     a.record(latency_ns);
/// }
/// b.record(250_000);
/// let mut total = LatencyRecorder::new();
/// total.merge(&a);
/// total.merge(&b);
/// let s = total.summary();
/// assert_eq!(s.count, 4);
/// assert!((9_990..=10_010).contains(&s.p50), "within 0.1 %: {}", s.p50);
/// assert!(s.max >= 250_000);
/// ```
#[derive(Clone)]
pub struct LatencyRecorder {
    /// Bounds fixed at construction (`LOWEST_NS..=HIGHEST_NS`, no auto-resize), so every
    /// clamped value has a slot.
    hist: Histogram<u64>,
}

impl LatencyRecorder {
    /// The smallest latency kept apart from others: 1 ns. Smaller values (0) count as 1 ns.
    pub const LOWEST_NS: u64 = 1;

    /// The largest latency recorded as itself: 60 s. Larger values count as 60 s.
    pub const HIGHEST_NS: u64 = 60_000_000_000;

    /// Decimal digits of precision kept for every value: 3, i.e. within 0.1 %.
    pub const SIGNIFICANT_DIGITS: u8 = 3;

    /// An empty recorder covering 1 ns to 60 s with 3 significant digits.
    #[must_use]
    pub fn new() -> Self {
        let hist =
            match Histogram::new_with_bounds(Self::LOWEST_NS, Self::HIGHEST_NS, Self::SIGNIFICANT_DIGITS) {
                Ok(hist) => hist,
                // new_with_bounds fails only for low == 0, high < 2 * low, more than 5 significant
                // digits, or a counts array that does not fit a usize; none holds for these
                // constants on a 32- or 64-bit target, and the tests construct one. No input from
                // a user or a peer reaches this call.
                Err(e) => unreachable!("constant HdrHistogram bounds rejected: {e}"),
            };
        Self { hist }
    }

    /// Records one latency. 0 counts as 1 ns and anything above 60 s as 60 s (saturating),
    /// so a bogus timestamp from a peer distorts one sample instead of panicking.
    #[inline]
    pub fn record(&mut self, latency_ns: u64) {
        self.hist.saturating_record(clamp(latency_ns));
    }

    /// Records one latency with coordinated-omission correction, as HdrHistogram's
    /// `record_correct` does.
    ///
    /// Under a fixed-rate load that sends one message every `expected_interval_ns`, a stall
    /// of `latency_ns` also delayed the messages that should have been sent during it; this
    /// records them too, as `latency_ns - k * expected_interval_ns` for every `k >= 1` that
    /// keeps the value at or above `expected_interval_ns`. `expected_interval_ns == 0` turns
    /// the correction off. Values are clamped as in [`record`](Self::record).
    ///
    /// The result is exactly that of `record_correct`, but the synthetic samples are added
    /// one histogram slot at a time rather than one by one, so the cost is bounded by the
    /// number of slots (about 27 000) even for a 60 s stall at a 1 ns interval.
    pub fn record_corrected(&mut self, latency_ns: u64, expected_interval_ns: u64) {
        let value = clamp(latency_ns);
        self.hist.saturating_record(value);
        let interval = expected_interval_ns;
        if interval == 0 || value <= interval {
            return;
        }
        // The missing samples are value - k * interval for k = 1..=missing, all >= interval.
        let missing = value / interval - 1;
        // Smallest missing sample: value % interval + interval, so >= interval and no underflow.
        let mut next = value - missing * interval;
        let mut remaining = missing;
        while remaining > 0 {
            // How many samples of the progression share `next`'s slot.
            let slot_top = self.hist.highest_equivalent(next);
            let in_slot = ((slot_top - next) / interval + 1).min(remaining);
            // `next` <= value <= HIGHEST_NS, so it is in range and the count is exact.
            self.hist.saturating_record_n(next, in_slot);
            remaining -= in_slot;
            // Stays <= value while samples remain: next + remaining * interval == value.
            next += in_slot * interval;
        }
    }

    /// Adds `other`'s counts to this recorder, e.g. to total per-thread recorders.
    pub fn merge(&mut self, other: &LatencyRecorder) {
        if self.hist.add(&other.hist).is_err() {
            // Both histograms have the same bounds, so `add` cannot refuse other's values.
            // Should that ever change, re-record them (clamped) rather than lose them.
            for v in other.hist.iter_recorded() {
                self.hist.saturating_record_n(v.value_iterated_to(), v.count_at_value());
            }
        }
    }

    /// Forgets every recorded value, keeping the allocation (e.g. at the end of an interval).
    pub fn reset(&mut self) {
        self.hist.reset();
    }

    /// The number of values recorded, including synthetic corrected ones.
    pub fn len(&self) -> u64 {
        self.hist.len()
    }

    /// True when nothing has been recorded since creation or the last [`reset`](Self::reset).
    pub fn is_empty(&self) -> bool {
        self.hist.is_empty()
    }

    /// Count, min, p50, p90, p99, p99.9, p99.99, max and mean, in nanoseconds; all zero when
    /// empty.
    #[must_use]
    pub fn summary(&self) -> LatencySummary {
        LatencySummary {
            count: self.hist.len(),
            min: self.hist.min(),
            p50: self.value_at_quantile(0.5),
            p90: self.value_at_quantile(0.9),
            p99: self.value_at_quantile(0.99),
            p99_9: self.value_at_quantile(0.999),
            p99_99: self.value_at_quantile(0.9999),
            max: self.hist.max(),
            mean: mean_and_stdev(&self.hist).0,
        }
    }

    /// The latency (ns) at quantile `q` in `0.0..=1.0`: `q` of the recorded values are at or
    /// below it, within the histogram's precision. Above 1.0 means 1.0; 0 when empty.
    pub fn value_at_quantile(&self, q: f64) -> u64 {
        self.hist.value_at_quantile(q)
    }

    /// Writes HdrHistogram's standard percentile distribution (the `.hgrm` text that Java's
    /// `outputPercentileDistribution` prints, 5 ticks per half distance), values divided by
    /// `output_scale`: 1.0 prints nanoseconds, 1000.0 microseconds.
    ///
    /// # Errors
    ///
    /// Those of `out`, and [`io::ErrorKind::InvalidInput`] when `output_scale` is not a
    /// positive finite number.
    pub fn write_hgrm<W: io::Write>(&self, out: &mut W, output_scale: f64) -> io::Result<()> {
        hgrm::write_percentiles(&self.hist, out, output_scale)
    }

    /// The underlying histogram, for what this type does not offer (iterators, serialization).
    pub fn as_histogram(&self) -> &Histogram<u64> {
        &self.hist
    }
}

impl Default for LatencyRecorder {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for LatencyRecorder {
    // The derived form would print all 27 648 counters.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LatencyRecorder")
            .field("count", &self.hist.len())
            .field("min_ns", &self.hist.min())
            .field("max_ns", &self.hist.max())
            .finish_non_exhaustive()
    }
}

/// Brings a latency into the recorder's range: 0 -> 1 ns, above 60 s -> 60 s.
#[inline]
fn clamp(latency_ns: u64) -> u64 {
    latency_ns.clamp(LatencyRecorder::LOWEST_NS, LatencyRecorder::HIGHEST_NS)
}

/// Mean and standard deviation computed as HdrHistogram's Java `getMean` and
/// `getStdDeviation` do (each slot counted at its median value), so the `.hgrm` footer matches
/// theirs digit for digit. Both 0.0 when empty.
pub(crate) fn mean_and_stdev(hist: &Histogram<u64>) -> (f64, f64) {
    let total = hist.len();
    if total == 0 {
        return (0.0, 0.0);
    }
    let sum: f64 = hist
        .iter_recorded()
        .map(|v| hist.median_equivalent(v.value_iterated_to()) as f64 * v.count_at_value() as f64)
        .sum();
    let mean = sum / total as f64;
    let squares: f64 = hist
        .iter_recorded()
        .map(|v| {
            let deviation = hist.median_equivalent(v.value_iterated_to()) as f64 - mean;
            deviation * deviation * v.count_at_value() as f64
        })
        .sum();
    (mean, (squares / total as f64).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Within HdrHistogram's precision: 0.1 % of the value, plus one unit.
    fn close(actual: u64, expected: u64) -> bool {
        actual.abs_diff(expected) as f64 <= expected as f64 * 0.001 + 1.0
    }

    #[test]
    fn new_is_empty_and_summary_is_zero() {
        let r = LatencyRecorder::new();
        assert!(r.is_empty());
        assert_eq!(r.len(), 0);
        let s = r.summary();
        assert_eq!(
            s,
            LatencySummary {
                count: 0,
                min: 0,
                p50: 0,
                p90: 0,
                p99: 0,
                p99_9: 0,
                p99_99: 0,
                max: 0,
                mean: 0.0
            }
        );
        assert_eq!(r.as_histogram().sigfig(), LatencyRecorder::SIGNIFICANT_DIGITS);
        assert!(format!("{r:?}").starts_with("LatencyRecorder { count: 0"));
    }

    #[test]
    fn record_counts_and_reset() {
        let mut r = LatencyRecorder::default();
        r.record(100);
        r.record(200);
        r.record(200);
        assert_eq!(r.len(), 3);
        assert!(!r.is_empty());
        assert_eq!(r.as_histogram().count_at(200), 2);
        r.reset();
        assert!(r.is_empty());
        assert_eq!(r.summary().max, 0);
    }

    #[test]
    fn percentiles_on_known_data() {
        let mut r = LatencyRecorder::new();
        for v in 1..=10_000 {
            r.record(v);
        }
        let s = r.summary();
        assert_eq!(s.count, 10_000);
        assert_eq!(s.min, 1);
        assert!(close(s.p50, 5_000), "p50 {}", s.p50);
        assert!(close(s.p90, 9_000), "p90 {}", s.p90);
        assert!(close(s.p99, 9_900), "p99 {}", s.p99);
        assert!(close(s.p99_9, 9_990), "p99.9 {}", s.p99_9);
        assert!(close(s.p99_99, 9_999), "p99.99 {}", s.p99_99);
        assert!(close(s.max, 10_000), "max {}", s.max);
        assert!((s.mean - 5_000.5).abs() < 5.0, "mean {}", s.mean);
        assert_eq!(r.value_at_quantile(0.5), s.p50);
        // Out-of-range quantiles answer rather than panic.
        assert_eq!(r.value_at_quantile(2.0), s.max);
        let _ = r.value_at_quantile(f64::NAN);
        let _ = r.value_at_quantile(-1.0);
    }

    #[test]
    fn zero_and_huge_values_are_clamped() {
        let mut r = LatencyRecorder::new();
        r.record(0);
        assert_eq!(r.summary().min, 1);
        assert_eq!(r.as_histogram().count_at(0), 0);
        r.record(u64::MAX);
        r.record(LatencyRecorder::HIGHEST_NS + 1);
        assert_eq!(r.len(), 3);
        let max = r.summary().max;
        assert!(max >= LatencyRecorder::HIGHEST_NS, "max {max}");
        assert!(close(max, LatencyRecorder::HIGHEST_NS), "max {max}");
        assert_eq!(r.as_histogram().count_at(LatencyRecorder::HIGHEST_NS), 2);
    }

    #[test]
    fn corrected_recording_adds_the_missing_samples() {
        let mut r = LatencyRecorder::new();
        // One 10 µs stall at one message per µs hid 9 samples: 9 µs, 8 µs, ... 1 µs.
        r.record_corrected(10_000, 1_000);
        assert_eq!(r.len(), 10);
        for v in (1_000..=10_000).step_by(1_000) {
            assert_eq!(r.as_histogram().count_at(v), 1, "value {v}");
        }
        assert_eq!(r.summary().min, 1_000);

        // Below the interval, or with no interval: one sample.
        let mut r = LatencyRecorder::new();
        r.record_corrected(500, 1_000);
        r.record_corrected(1_000, 1_000);
        r.record_corrected(5_000, 0);
        assert_eq!(r.len(), 3);
    }

    #[test]
    fn corrected_recording_matches_hdrhistogram() {
        let cases = [
            (10_000, 1_000),
            (10_001, 1_000),
            (9_999, 1_000),
            (1_000_000, 7),
            (12_345_678, 1_000),
            (200_000_000, 97),
            (3_000_000_000, 1_000_000),
            (5, 10),
            (100, 0),
            (0, 3),
        ];
        for (value, interval) in cases {
            let mut ours = LatencyRecorder::new();
            ours.record_corrected(value, interval);
            let mut reference = LatencyRecorder::new().hist;
            reference.record_correct(clamp(value), interval).expect("in range");
            assert_eq!(ours.hist, reference, "value {value} interval {interval}");
            assert_eq!(ours.len(), reference.len());
        }
    }

    #[test]
    fn corrected_recording_of_a_huge_stall_is_bounded() {
        let mut r = LatencyRecorder::new();
        // 60 s at a 1 ns interval: 6e10 samples, added slot by slot.
        r.record_corrected(u64::MAX, 1);
        assert_eq!(r.len(), LatencyRecorder::HIGHEST_NS);
        assert_eq!(r.summary().min, 1);
    }

    #[test]
    fn merge_adds_counts() {
        let mut a = LatencyRecorder::new();
        let mut b = LatencyRecorder::new();
        for v in 1..=100 {
            a.record(v);
            b.record(v * 1_000);
        }
        b.record(100);
        a.merge(&b);
        assert_eq!(a.len(), 201);
        assert_eq!(a.as_histogram().count_at(100), 2);
        assert_eq!(a.summary().min, 1);
        assert!(close(a.summary().max, 100_000));
        assert_eq!(b.len(), 101, "merge leaves the source alone");
        a.merge(&LatencyRecorder::new());
        assert_eq!(a.len(), 201);
    }

    #[test]
    fn mean_and_stdev_follow_java() {
        let mut r = LatencyRecorder::new();
        for v in 1..=4 {
            r.record(v);
        }
        let (mean, stdev) = mean_and_stdev(r.as_histogram());
        assert_eq!(mean, 2.5);
        assert!((stdev - 1.25_f64.sqrt()).abs() < 1e-12);
    }
}
