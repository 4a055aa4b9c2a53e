//! The `.hgrm` percentile-distribution text: written exactly as Java HdrHistogram's
//! `outputPercentileDistribution` writes it (the form its plotter and most scripts read;
//! HdrHistogram_c's `hdr_percentiles_print` only differs in column widths), and parsed back.
//!
//! ```text
//!        Value     Percentile TotalCount 1/(1-Percentile)
//!
//!        1.000 0.000000000000          1           1.00
//!        ...
//!        4.000 1.000000000000          4
//! #[Mean    =        2.500, StdDeviation   =        1.118]
//! #[Max     =        4.000, Total count    =            4]
//! #[Buckets =           26, SubBuckets     =         2048]
//! ```

use std::f64::consts::LN_2;
use std::io;

use hdrhistogram::Histogram;

use super::recorder::mean_and_stdev;
use crate::{Error, Result};

/// Percentile rows per half of the remaining distance to 100 %, HdrHistogram's usual 5.
const TICKS_PER_HALF_DISTANCE: u32 = 5;

/// One row of a `.hgrm` percentile distribution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HgrmRow {
    /// The value at this percentile, in the file's unit (the writer divided nanoseconds by
    /// its output scale).
    pub value: f64,
    /// The percentile as a fraction, `0.0..=1.0`; the last row is 1.0.
    pub percentile: f64,
    /// How many recorded values are at or below `value`.
    pub total_count: u64,
}

/// Writes `hist`'s percentile distribution, values divided by `output_scale`.
///
/// Mirrors Java HdrHistogram's `outputPercentileDistribution` step for step (percent
/// arithmetic, tick sizes, a single row for the last recorded slot, then the 100 % row), so
/// that the text is the same digit for digit, not merely the same layout.
pub(crate) fn write_percentiles<W: io::Write>(
    hist: &Histogram<u64>,
    out: &mut W,
    output_scale: f64,
) -> io::Result<()> {
    if !(output_scale.is_finite() && output_scale > 0.0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "invalid .hgrm output scale {output_scale}: expected a positive finite divisor, \
                 e.g. 1.0 for nanoseconds or 1000.0 for microseconds"
            ),
        ));
    }
    // Java prints values with as many decimals as the histogram has significant digits.
    let decimals = usize::from(hist.sigfig());

    writeln!(out, "{:>12} {:>14} {:>10} {:>14}\n", "Value", "Percentile", "TotalCount", "1/(1-Percentile)")?;

    let total = hist.len();
    if total > 0 {
        let mut level = 0.0_f64; // the percentile (0..=100) the next row is for
        let mut running = 0_u64;
        let mut last_value = 0_u64;
        for slot in hist.iter_recorded() {
            running = running.saturating_add(slot.count_at_value());
            last_value = slot.value_iterated_to();
            let value = last_value as f64 / output_scale;
            let is_last = running >= total;
            // Every tick this slot reaches gets a row; the last slot gets only one, and the
            // 100 % row follows.
            while 100.0 * running as f64 / total as f64 >= level {
                write_row(out, decimals, value, level, running)?;
                level = next_level(level);
                if is_last {
                    break;
                }
            }
            if is_last {
                break;
            }
        }
        write_row(out, decimals, last_value as f64 / output_scale, 100.0, running)?;
    }

    let (mean, stdev) = mean_and_stdev(hist);
    writeln!(
        out,
        "#[Mean    = {:>12}, StdDeviation   = {:>12}]",
        java_fixed(mean / output_scale, decimals),
        java_fixed(stdev / output_scale, decimals)
    )?;
    writeln!(
        out,
        "#[Max     = {:>12}, Total count    = {:12}]",
        java_fixed(hist.max() as f64 / output_scale, decimals),
        total
    )?;
    writeln!(out, "#[Buckets = {:12}, SubBuckets     = {:12}]", hist.buckets(), sub_bucket_count(hist))
}

/// One row; at 100 % without the `1/(1-Percentile)` column, which would be infinite.
fn write_row<W: io::Write>(
    out: &mut W,
    decimals: usize,
    value: f64,
    level: f64,
    running: u64,
) -> io::Result<()> {
    let percentile = level / 100.0;
    let value = java_fixed(value, decimals);
    let shown = java_fixed(percentile, 12);
    #[allow(clippy::float_cmp)] // Java's exact test: only the final row is exactly 100.0
    if level != 100.0 {
        let inverse = java_fixed(1.0 / (1.0 - percentile), 2);
        writeln!(out, "{value:>12} {shown:>2} {running:10} {inverse:>14}")
    } else {
        writeln!(out, "{value:>12} {shown:>2} {running:10}")
    }
}

/// `x` with `decimals` digits after the point, as Java's `Formatter` (`%.Nf`) prints it:
/// the shortest decimal that reads back as `x`, rounded half up. Rust's `{:.N}` rounds the
/// exact binary value instead, which differs at ties: 0.9997802734375 (a tick at 5 per half
/// distance) is 0.999780273438 in Java's `.hgrm` and 0.999780273437 with `{:.12}`.
fn java_fixed(x: f64, decimals: usize) -> String {
    if !x.is_finite() {
        return format!("{x:.decimals$}");
    }
    // Display never uses an exponent for f64: "0.0000001", "1000000000000000000000".
    let shortest = format!("{}", x.abs());
    let (int_part, frac_part) = shortest.split_once('.').unwrap_or((&shortest, ""));
    let mut digits: Vec<u8> = int_part.bytes().collect();
    digits.extend(frac_part.bytes().chain(std::iter::repeat(b'0')).take(decimals));
    if frac_part.as_bytes().get(decimals).is_some_and(|d| *d >= b'5') {
        // Add one unit in the last kept place, carrying through nines.
        let mut carry = true;
        for d in digits.iter_mut().rev() {
            if *d == b'9' {
                *d = b'0';
            } else {
                *d += 1;
                carry = false;
                break;
            }
        }
        if carry {
            digits.insert(0, b'1');
        }
    }
    let int_len = digits.len() - decimals;
    let mut text = String::with_capacity(digits.len() + 2);
    if x.is_sign_negative() {
        text.push('-');
    }
    // Only ASCII digits were pushed, so every byte is a char.
    text.extend(digits[..int_len].iter().map(|&d| char::from(d)));
    if decimals > 0 {
        text.push('.');
        text.extend(digits[int_len..].iter().map(|&d| char::from(d)));
    }
    text
}

/// The percentile after `level`: ticks of a fixed size within each half of the remaining
/// distance to 100 % (10 % steps up to 50 %, then 5 % up to 75 %, 2.5 % up to 87.5 %, …).
/// Same arithmetic as Java's `PercentileIterator.incrementIterationLevel`.
fn next_level(level: f64) -> f64 {
    // Whole halvings of the distance to 100 % so far; capped so 2^(n+1) stays a finite f64.
    let halvings = ((100.0 / (100.0 - level)).ln() / LN_2).clamp(0.0, 1_000.0) as i32;
    let ticks = f64::from(TICKS_PER_HALF_DISTANCE) * 2.0_f64.powi(halvings + 1);
    let next = level + 100.0 / ticks;
    // Once the step no longer changes a level just under 100 (past 2^50 samples), jump to
    // 100: Java would loop forever here.
    if next > level {
        next
    } else {
        100.0
    }
}

/// HdrHistogram's sub-bucket count: 2 × 10^digits rounded up to a power of two (2048 for 3).
fn sub_bucket_count(hist: &Histogram<u64>) -> u64 {
    (2 * 10_u64.pow(u32::from(hist.sigfig()))).next_power_of_two()
}

/// Parses a `.hgrm` percentile distribution (ours or HdrHistogram's) into its rows.
///
/// Blank lines, the `Value Percentile …` header and `#` footer lines are skipped. Every
/// other line must be a row: value, percentile (0 to 1), total count, and the optional
/// `1/(1-Percentile)` column; percentiles and counts must not decrease. Text with no rows
/// gives an empty list (an empty histogram is written that way).
///
/// # Errors
///
/// [`Error::Config`] naming the first bad line (1-based) and quoting it.
pub fn parse_hgrm(text: &str) -> Result<Vec<HgrmRow>> {
    let mut rows: Vec<HgrmRow> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("Value") {
            continue;
        }
        let bad = |expected: &str| Error::config(format!(".hgrm line {}", index + 1), line, expected);
        let fields: Vec<&str> = trimmed.split_whitespace().collect();
        if !(3..=4).contains(&fields.len()) {
            return Err(bad(
                "a row `VALUE PERCENTILE TOTAL_COUNT [1/(1-PERCENTILE)]`, a `#` comment or the header",
            ));
        }
        let value: f64 = fields[0]
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| bad("a value that is a non-negative number in the first column"))?;
        let percentile: f64 = fields[1]
            .parse()
            .ok()
            .filter(|p: &f64| (0.0..=1.0).contains(p))
            .ok_or_else(|| bad("a percentile between 0 and 1 in the second column"))?;
        let total_count: u64 = fields[2]
            .parse()
            .map_err(|_| bad("a total count that is a non-negative integer in the third column"))?;
        if let Some(inverse) = fields.get(3) {
            inverse.parse::<f64>().map_err(|_| bad("a number for 1/(1-Percentile) in the fourth column"))?;
        }
        if let Some(previous) = rows.last() {
            if percentile < previous.percentile || total_count < previous.total_count {
                return Err(bad(
                    "percentiles and total counts that do not decrease (one histogram per file)",
                ));
            }
        }
        rows.push(HgrmRow { value, percentile, total_count });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::LatencyRecorder;

    fn hgrm(recorder: &LatencyRecorder, scale: f64) -> String {
        let mut out = Vec::new();
        recorder.write_hgrm(&mut out, scale).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// Java HdrHistogram 2.1.11's `outputPercentileDistribution(out, 5, 1.0)` for 1, 2, 3, 4
    /// in a `Histogram(1, 60_000_000_000L, 3)`.
    const FOUR_VALUES: &str = "       Value     Percentile TotalCount 1/(1-Percentile)

       1.000 0.000000000000          1           1.00
       1.000 0.100000000000          1           1.11
       1.000 0.200000000000          1           1.25
       2.000 0.300000000000          2           1.43
       2.000 0.400000000000          2           1.67
       2.000 0.500000000000          2           2.00
       3.000 0.550000000000          3           2.22
       3.000 0.600000000000          3           2.50
       3.000 0.650000000000          3           2.86
       3.000 0.700000000000          3           3.33
       3.000 0.750000000000          3           4.00
       4.000 0.775000000000          4           4.44
       4.000 1.000000000000          4
#[Mean    =        2.500, StdDeviation   =        1.118]
#[Max     =        4.000, Total count    =            4]
#[Buckets =           26, SubBuckets     =         2048]
";

    #[test]
    fn matches_hdrhistogram_output_exactly() {
        let mut r = LatencyRecorder::new();
        for v in 1..=4 {
            r.record(v);
        }
        assert_eq!(hgrm(&r, 1.0), FOUR_VALUES);
    }

    /// Same text as Java HdrHistogram 2.1.11 (the files in `testdata/` are its output for
    /// the same values, scale 1000.0), including the ties where Java rounds half up.
    #[test]
    fn matches_java_hdrhistogram_on_larger_data() {
        let mut r = LatencyRecorder::new();
        for v in 1..=10_000 {
            r.record(v);
        }
        assert_eq!(hgrm(&r, 1000.0), include_str!("testdata/java_1_to_10000_us.hgrm"));

        // Java's recordValueWithExpectedInterval(10_000_000, 1_000) after 1..=1000.
        let mut r = LatencyRecorder::new();
        for v in 1..=1_000 {
            r.record(v);
        }
        r.record_corrected(10_000_000, 1_000);
        assert_eq!(hgrm(&r, 1000.0), include_str!("testdata/java_corrected_us.hgrm"));
    }

    #[test]
    fn scale_divides_values_and_footer() {
        let mut r = LatencyRecorder::new();
        // Below 2048 ns every value has its own slot, so the scaled values are exact.
        for v in 1..=4 {
            r.record(v * 100);
        }
        let text = hgrm(&r, 100.0);
        assert!(text.contains("\n       1.000 0.000000000000          1           1.00\n"));
        assert!(text.contains("\n       4.000 1.000000000000          4\n"));
        assert!(text.contains("#[Mean    =        2.500, StdDeviation   =        1.118]\n"));
        assert!(text.contains("#[Max     =        4.000, Total count    =            4]\n"));
    }

    #[test]
    fn written_then_parsed_back() {
        let mut r = LatencyRecorder::new();
        for v in 1..=10_000 {
            r.record(v);
        }
        let text = hgrm(&r, 1000.0);
        let rows = parse_hgrm(&text).unwrap();
        // Every row line of the text is a parsed row.
        let row_lines = text
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#') && !l.trim().starts_with("Value"))
            .count();
        assert_eq!(rows.len(), row_lines);
        assert!(rows.len() > 50, "{} rows", rows.len());
        let first = rows[0];
        assert_eq!(first.percentile, 0.0);
        assert_eq!(first.total_count, 1);
        assert_eq!(first.value, 0.001);
        let last = *rows.last().unwrap();
        assert_eq!(last.percentile, 1.0);
        assert_eq!(last.total_count, 10_000);
        assert!((last.value - 10.0).abs() <= 0.011, "last value {}", last.value);
        // The 50 % row carries the median.
        let median = rows.iter().find(|row| row.percentile == 0.5).unwrap();
        assert!((median.value - 5.0).abs() <= 0.006, "median {}", median.value);
        // Exactly one row per non-final tick, and the 100 % row has no inverse column.
        assert_eq!(text.lines().filter(|l| l.contains(" 1.000000000000 ")).count(), 1);
        let last_row = text.lines().rfind(|l| !l.starts_with('#')).unwrap();
        assert_eq!(last_row.split_whitespace().count(), 3);
    }

    #[test]
    fn one_value_gives_two_rows() {
        let mut r = LatencyRecorder::new();
        r.record(42);
        let rows = parse_hgrm(&hgrm(&r, 1.0)).unwrap();
        assert_eq!(
            rows,
            vec![
                HgrmRow { value: 42.0, percentile: 0.0, total_count: 1 },
                HgrmRow { value: 42.0, percentile: 1.0, total_count: 1 },
            ]
        );
    }

    #[test]
    fn empty_histogram_has_header_and_footer_only() {
        let text = hgrm(&LatencyRecorder::new(), 1.0);
        assert_eq!(
            text,
            "       Value     Percentile TotalCount 1/(1-Percentile)\n\n\
             #[Mean    =        0.000, StdDeviation   =        0.000]\n\
             #[Max     =        0.000, Total count    =            0]\n\
             #[Buckets =           26, SubBuckets     =         2048]\n"
        );
        assert_eq!(parse_hgrm(&text).unwrap(), vec![]);
    }

    #[test]
    fn skewed_data_reaches_100_percent() {
        let mut r = LatencyRecorder::new();
        r.record_corrected(LatencyRecorder::HIGHEST_NS, 1_000);
        r.record(1);
        let rows = parse_hgrm(&hgrm(&r, 1.0)).unwrap();
        let last = rows.last().unwrap();
        assert_eq!(last.percentile, 1.0);
        assert_eq!(last.total_count, r.len());
    }

    #[test]
    fn bad_output_scale_is_an_error() {
        let r = LatencyRecorder::new();
        for scale in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let err = r.write_hgrm(&mut Vec::new(), scale).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        }
    }

    #[test]
    fn java_fixed_rounds_the_shortest_decimal_half_up() {
        assert_eq!(java_fixed(0.9997802734375, 12), "0.999780273438");
        assert_eq!(format!("{:.12}", 0.9997802734375), "0.999780273437");
        assert_eq!(java_fixed(0.99992675781250, 12), "0.999926757813");
        assert_eq!(java_fixed(2.5005, 3), "2.501");
        assert_eq!(java_fixed(9.9996, 3), "10.000");
        assert_eq!(java_fixed(999.9995, 3), "1000.000");
        assert_eq!(java_fixed(0.0, 12), "0.000000000000");
        assert_eq!(java_fixed(1e-7, 3), "0.000");
        assert_eq!(java_fixed(42.0, 3), "42.000");
        assert_eq!(java_fixed(4551.111111, 2), "4551.11");
        assert_eq!(java_fixed(1.0 / 0.7, 2), "1.43");
        assert_eq!(java_fixed(12.5, 0), "13");
        assert_eq!(java_fixed(-1.25, 1), "-1.3");
        assert_eq!(java_fixed(6.0e10, 3), "60000000000.000");
    }

    #[test]
    fn next_level_follows_the_half_distance_ticks() {
        let mut level = 0.0;
        let mut levels = Vec::new();
        for _ in 0..13 {
            levels.push(level);
            level = next_level(level);
        }
        assert_eq!(levels, [0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 55.0, 60.0, 65.0, 70.0, 75.0, 77.5, 80.0]);
        // Near 100 it still moves, and ends at 100 rather than stalling.
        let mut level = 99.0;
        for _ in 0..10_000 {
            let next = next_level(level);
            assert!(next > level || next == 100.0);
            level = next;
        }
        assert_eq!(level, 100.0);
    }

    #[test]
    fn parse_accepts_foreign_spacing_and_rejects_garbage_by_line() {
        let rows = parse_hgrm("Value Percentile TotalCount 1/(1-Percentile)\n\n 0.5 0.0 1 1.00\n0.9 1.0 2\n")
            .unwrap();
        assert_eq!(rows.len(), 2);

        let cases = [
            ("       1.000 0.5 1 2.00\nhello\n", "line 2"),
            ("1.0 0.5\n", "line 1"),
            ("1.0 0.5 1 2.0 extra\n", "line 1"),
            ("x 0.5 1\n", "line 1"),
            ("1.0 1.5 1\n", "line 1"),
            ("1.0 NaN 1\n", "line 1"),
            ("-1.0 0.5 1\n", "line 1"),
            ("1.0 0.5 -1\n", "line 1"),
            ("1.0 0.5 1 x\n", "line 1"),
            ("1.0 0.5 2\n2.0 0.4 3\n", "line 2"),
            ("1.0 0.5 2\n\n2.0 0.6 1\n", "line 3"),
        ];
        for (text, line) in cases {
            let err = parse_hgrm(text).unwrap_err();
            assert!(matches!(err, Error::Config { .. }), "{text:?}: {err:?}");
            let message = err.to_string();
            assert!(message.contains(line), "{text:?}: {message}");
        }
    }
}
