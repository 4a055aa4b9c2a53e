//! The arithmetic the tables share: the median over rounds, ratios, the quantiles a cell
//! picks from a latency summary, and the bisection step of `compare-zmqrs.sh --max-rate`.

use ztick::metrics::LatencySummary;

/// The median of `values`: the middle one, or the mean of the middle two for an even
/// count; `None` for no values. NaN sorts last (it never comes from the tools).
pub(crate) fn median(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = values.into_iter().collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 { v[mid] } else { (v[mid - 1] + v[mid]) / 2.0 })
}

/// `a / b`, or `None` when either is missing or `b` is zero.
pub(crate) fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b != 0.0 => Some(a / b),
        _ => None,
    }
}

/// A quantile of a [`LatencySummary`], as the tables name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Quantile {
    /// The median.
    P50,
    /// The 90th percentile.
    P90,
    /// The 99th percentile.
    P99,
    /// The 99.9th percentile.
    P99_9,
    /// The largest value.
    Max,
}

impl Quantile {
    /// p50, p99 and p99.9: a latency cell's three figures.
    pub(crate) const CELL: [Quantile; 3] = [Quantile::P50, Quantile::P99, Quantile::P99_9];

    /// Its value in `s`, in nanoseconds.
    pub(crate) fn of(self, s: &LatencySummary) -> f64 {
        let ns = match self {
            Quantile::P50 => s.p50,
            Quantile::P90 => s.p90,
            Quantile::P99 => s.p99,
            Quantile::P99_9 => s.p99_9,
            Quantile::Max => s.max,
        };
        ns as f64
    }
}

/// The next rate to try between a passing `lo` and a failing `hi`: their geometric mean
/// rounded to a thousand (ties to even), above `lo`. The caller stops once it reaches `hi`.
pub(crate) fn geometric_midpoint(lo: u64, hi: u64) -> u64 {
    // The product in integers first, as it is exact there; one rounding into f64.
    let mean = ((u128::from(lo) * u128::from(hi)) as f64).sqrt();
    let rounded = ((mean / 1000.0).round_ties_even() as u64).saturating_mul(1000);
    rounded.max(lo.saturating_add(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_no_values() {
        assert_eq!(median([3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median([4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median([7.0]), Some(7.0));
        assert_eq!(median(std::iter::empty()), None);
    }

    #[test]
    fn ratio_needs_both_and_a_nonzero_divisor() {
        assert_eq!(ratio(Some(3.0), Some(2.0)), Some(1.5));
        assert_eq!(ratio(Some(3.0), Some(0.0)), None);
        assert_eq!(ratio(None, Some(2.0)), None);
        assert_eq!(ratio(Some(3.0), None), None);
    }

    #[test]
    fn quantiles_pick_their_field() {
        let s = LatencySummary {
            count: 9,
            min: 1,
            p50: 2,
            p90: 3,
            p99: 4,
            p99_9: 5,
            p99_99: 6,
            max: 7,
            mean: 2.5,
        };
        let got: Vec<f64> = [Quantile::P50, Quantile::P90, Quantile::P99, Quantile::P99_9, Quantile::Max]
            .iter()
            .map(|q| q.of(&s))
            .collect();
        assert_eq!(got, [2.0, 3.0, 4.0, 5.0, 7.0]);
    }

    #[test]
    fn midpoint_is_the_geometric_mean_to_a_thousand() {
        // Values from `python3 -c "max(lo+1, int(round(math.sqrt(lo*hi)/1000.0))*1000)"`,
        // the step compare-zmqrs.sh took before.
        assert_eq!(geometric_midpoint(10_000, 5_000_000), 224_000);
        assert_eq!(geometric_midpoint(10_000, 16_000_000), 400_000);
        assert_eq!(geometric_midpoint(224_000, 5_000_000), 1_058_000);
        assert_eq!(geometric_midpoint(1_000, 1_001), 1_001);
        assert_eq!(geometric_midpoint(2_500, 2_500), 2_501);
        // sqrt = 2,500 exactly: a tie, rounded to even (Python's round), not up.
        assert_eq!(geometric_midpoint(1_250, 5_000), 2_000);
    }
}
