//! The one place a figure becomes text: microseconds, rates, durations, ratios, and the
//! mark for a figure that is missing. Every table of every subcommand formats through
//! these, so a value reads the same wherever it appears.

/// What a cell shows when its figure was not measured.
pub(crate) const NONE: &str = "—";

/// Microseconds with the precision their size warrants: `0.123`, `1.23`, `12.3`, `123.4`,
/// `1,234`.
pub(crate) fn micros(us: f64) -> String {
    if us < 1.0 {
        format!("{us:.3}")
    } else if us < 10.0 {
        format!("{us:.2}")
    } else if us < 1000.0 {
        format!("{us:.1}")
    } else {
        thousands(us)
    }
}

/// [`micros`] of nanoseconds, or [`NONE`].
pub(crate) fn micros_of_ns(ns: Option<f64>) -> String {
    ns.map_or_else(|| NONE.to_owned(), |ns| micros(ns / 1000.0))
}

/// Events per second: `1.23 M`, `456 k`, `789`.
pub(crate) fn rate(per_s: f64) -> String {
    if per_s >= 1e6 {
        format!("{:.2} M", per_s / 1e6)
    } else if per_s >= 1e3 {
        format!("{:.0} k", per_s / 1e3)
    } else {
        format!("{per_s:.0}")
    }
}

/// A duration in nanoseconds with its unit: `12.3 ns`, `1.23 µs`, `4.56 ms`, `1.29 s`.
pub(crate) fn duration(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.1} ns")
    } else if ns < 1e6 {
        format!("{:.2} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

/// [`duration`], or [`NONE`].
pub(crate) fn duration_or_none(ns: Option<f64>) -> String {
    ns.map_or_else(|| NONE.to_owned(), duration)
}

/// A ratio as a factor with `digits` decimals, `1.23x`, or [`NONE`].
pub(crate) fn times(ratio: Option<f64>, digits: usize) -> String {
    ratio.map_or_else(|| NONE.to_owned(), |r| format!("{r:.digits$}x"))
}

/// A whole number with thousands separators: `12,345`.
fn thousands(v: f64) -> String {
    let digits = format!("{:.0}", v.abs());
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if v.is_sign_negative() && digits != "0" {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_keep_three_significant_digits_or_group_thousands() {
        let cases = [
            (0.0, "0.000"),
            (0.1234, "0.123"),
            (1.234, "1.23"),
            (9.999, "10.00"),
            (12.34, "12.3"),
            (999.94, "999.9"),
            (1000.0, "1,000"),
            (1234.5, "1,234"),
            (1_234_567.0, "1,234,567"),
        ];
        for (v, text) in cases {
            assert_eq!(micros(v), text, "{v}");
        }
        assert_eq!(micros_of_ns(Some(31_500.0)), "31.5");
        assert_eq!(micros_of_ns(None), NONE);
    }

    #[test]
    fn rates_durations_and_ratios() {
        assert_eq!(rate(13_080_000.0), "13.08 M");
        assert_eq!(rate(776_400.0), "776 k");
        assert_eq!(rate(999.0), "999");
        assert_eq!(duration(15.44), "15.4 ns");
        assert_eq!(duration(6_350.0), "6.35 µs");
        assert_eq!(duration(66_104_000.0), "66.10 ms");
        assert_eq!(duration(1_290_000_000.0), "1.29 s");
        assert_eq!(duration_or_none(None), NONE);
        assert_eq!(times(Some(4.781), 2), "4.78x");
        assert_eq!(times(Some(4.56), 1), "4.6x");
        assert_eq!(times(None, 2), NONE);
    }
}
