//! An SVG chart of latency percentile distributions, drawn as HdrHistogram's plotter
//! (`plotFiles.html`) draws `.hgrm` files: `1/(1-percentile)` on a log10 x axis labelled
//! 0 %, 90 %, 99 %, 99.9 % …, latency in microseconds on a linear y axis, one line per
//! recorder.
//!
//! `ztick fanout --plot FILE.svg` draws one; nothing else does, so it lives in the binary.
//! The SVG text is written by hand: a chart is a few hundred lines of markup, not worth a
//! dependency.

use std::fmt::Write as _;

use ztick::metrics::{parse_hgrm, HgrmRow, LatencyRecorder};

/// Document size in pixels.
const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 540.0;
/// The plot area; the margins hold the title, tick labels and axis titles. The left edge
/// moves right of `LEFT` when the y labels are long (`60000000`).
const LEFT: f64 = 80.0;
const RIGHT: f64 = 870.0;
const TOP: f64 = 56.0;
const BOTTOM: f64 = 468.0;

/// Decades of `1/(1-percentile)` shown when no series has samples (0 % to 99.999 %).
const DEFAULT_DECADES: u32 = 5;
/// At most 99.9999999999999 %, enough for any count a test or benchmark records.
const MAX_DECADES: u32 = 15;

/// Tableau 10: distinct, and readable on white. Later series get golden-angle hues.
const PALETTE: [&str; 10] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
    "#17becf",
];

/// One curve: a name and its recorder.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PlotSeries<'a> {
    /// Shown in the legend; escaped for SVG, so any text is fine.
    pub(crate) name: &'a str,
    /// The latencies (recorded in nanoseconds, plotted in microseconds).
    pub(crate) recorder: &'a LatencyRecorder,
}

/// An SVG document (width 900, height 540) plotting each series' percentile distribution.
///
/// The points are the rows of the `.hgrm` text ([`LatencyRecorder::write_hgrm`]): x is
/// `1/(1-percentile)` on a log scale whose right end is the power of ten at or above the
/// largest count, where the max (the 100 % row) is drawn; y is the value in
/// microseconds, from 0 to a rounded maximum a bit above the largest max. Recorders without
/// samples draw no line and are marked "(no samples)" in the legend. Never panics.
#[must_use]
pub(crate) fn percentile_svg(title: &str, series: &[PlotSeries<'_>]) -> String {
    let curves: Vec<Vec<HgrmRow>> = series.iter().map(|s| percentile_rows(s.recorder)).collect();

    // Right end: the power of ten at or past the largest count n. Rows beyond 1/(1-p) = n
    // have p > 1 - 1/n, so they are in the last slot and hold the max: clamped to the right
    // edge with the 100 % row, they lose nothing.
    let mut largest_count = 0_u64;
    let mut max_us = 0.0_f64;
    for (rows, s) in curves.iter().zip(series) {
        if let Some(last) = rows.last() {
            largest_count = largest_count.max(s.recorder.len());
            max_us = max_us.max(last.value);
        }
    }
    let decades = if largest_count > 0 {
        // Float noise must not turn log10(1000) = 3 into 4 decades.
        (((largest_count as f64).log10() - 1e-9).ceil() as u32).clamp(1, MAX_DECADES)
    } else {
        DEFAULT_DECADES
    };
    let frame = Frame::new(decades, max_us);

    let mut svg = String::with_capacity(16 * 1024);
    // Writing to a String cannot fail; the results are ignored for that reason.
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="Helvetica, Arial, sans-serif" font-size="12">"#
    );
    let title = escape(title);
    let _ = writeln!(svg, "<title>{title}</title>");
    let _ = writeln!(svg, r#"<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="32" text-anchor="middle" font-size="18" font-weight="bold">{title}</text>"#,
        frame.centre()
    );

    write_x_axis(&mut svg, &frame, decades);
    write_y_axis(&mut svg, &frame);

    for (index, rows) in curves.iter().enumerate() {
        if rows.is_empty() {
            continue;
        }
        let points: Vec<String> =
            polyline_points(rows, &frame).iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
        let _ = writeln!(
            svg,
            r#"<polyline fill="none" stroke="{}" stroke-width="2" stroke-linejoin="round" points="{}"/>"#,
            colour(index),
            points.join(" ")
        );
    }
    if curves.iter().all(Vec::is_empty) {
        let _ = writeln!(
            svg,
            r##"<text x="{}" y="{}" text-anchor="middle" font-size="16" fill="#888">no samples</text>"##,
            frame.centre(),
            (TOP + BOTTOM) / 2.0
        );
    }
    // The frame over the lines, so a flat line at 0 does not hide the axis.
    let _ = writeln!(
        svg,
        r##"<rect x="{}" y="{TOP}" width="{}" height="{}" fill="none" stroke="#333"/>"##,
        frame.left,
        RIGHT - frame.left,
        BOTTOM - TOP
    );
    write_legend(&mut svg, &frame, series, &curves);
    svg.push_str("</svg>\n");
    svg
}

/// Maps data to pixels.
struct Frame {
    /// The left edge of the plot area, `LEFT` or more: room for the y labels and title.
    left: f64,
    /// Decades of `1/(1-percentile)` across the plot, at least 1.
    decades: f64,
    /// Microseconds at the top of the plot, positive.
    y_max: f64,
    /// Microseconds between horizontal grid lines, dividing `y_max` into 1 to 8 steps.
    y_step: f64,
}

impl Frame {
    /// The frame for `decades` of percentiles and latencies up to `max_us`.
    fn new(decades: u32, max_us: f64) -> Self {
        let (y_max, y_step) = y_scale(max_us);
        let widest = y_ticks(y_max, y_step).iter().map(|(_, label)| label_width(label)).fold(0.0, f64::max);
        // Labels end 8 px left of the plot; the rotated y title needs x up to ~30.
        let left = (widest + 44.0).ceil().clamp(LEFT, WIDTH / 2.0);
        Self { left, decades: f64::from(decades), y_max, y_step }
    }

    /// The pixel x of `log10(1/(1-p))`, clamped to the right edge.
    fn x(&self, log_inverse: f64) -> f64 {
        self.left + (RIGHT - self.left) * log_inverse.clamp(0.0, self.decades) / self.decades
    }

    /// The pixel x of the middle of the plot area, where titles are centred.
    fn centre(&self) -> f64 {
        (self.left + RIGHT) / 2.0
    }

    /// The pixel y of `value_us`.
    fn y(&self, value_us: f64) -> f64 {
        BOTTOM - (BOTTOM - TOP) * value_us.clamp(0.0, self.y_max) / self.y_max
    }
}

/// The (value in µs, percentile) rows of `recorder`'s `.hgrm` distribution; empty without
/// samples.
fn percentile_rows(recorder: &LatencyRecorder) -> Vec<HgrmRow> {
    if recorder.is_empty() {
        return Vec::new();
    }
    // The `.hgrm` writer owns HdrHistogram's percentile iteration; reading its rows back
    // keeps one copy of it. Three decimals of microseconds keep nanosecond resolution.
    let mut text = Vec::new();
    if recorder.write_hgrm(&mut text, 1000.0).is_err() {
        return Vec::new();
    }
    std::str::from_utf8(&text).ok().and_then(|text| parse_hgrm(text).ok()).unwrap_or_default()
}

/// Pixel points of one curve, x strictly increasing: rows that land on the same pixel
/// column (to 0.1 px, as printed) keep the later, higher value.
fn polyline_points(rows: &[HgrmRow], frame: &Frame) -> Vec<(f64, f64)> {
    let mut points: Vec<(f64, f64)> = Vec::with_capacity(rows.len());
    for row in rows {
        let log_inverse =
            if row.percentile < 1.0 { (1.0 / (1.0 - row.percentile)).log10() } else { frame.decades };
        let x = round_tenth(frame.x(log_inverse));
        let y = round_tenth(frame.y(row.value));
        match points.last_mut() {
            Some(last) if x <= last.0 => last.1 = last.1.min(y),
            _ => points.push((x, y)),
        }
    }
    points
}

/// Grid lines (decades, and lighter 2..9 within each), percentile labels and the x title.
fn write_x_axis(svg: &mut String, frame: &Frame, decades: u32) {
    for decade in 0..decades {
        for multiple in 2..=9 {
            let x = frame.x(f64::from(decade) + f64::from(multiple).log10());
            let _ = writeln!(
                svg,
                r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{BOTTOM}" stroke="#eeeeee"/>"##
            );
        }
    }
    // Many decades have long labels (99.9999999 %): then only every `stride`-th is labelled.
    let spacing = (RIGHT - frame.left) / frame.decades;
    let stride = ((label_width(&percentile_label(decades)) + 12.0) / spacing).ceil().max(1.0) as u32;
    for decade in 0..=decades {
        let x = frame.x(f64::from(decade));
        let _ =
            writeln!(svg, r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{BOTTOM}" stroke="#cccccc"/>"##);
        if decade % stride != 0 {
            continue;
        }
        let label = percentile_label(decade);
        // Shifted left if it would run off the right side of the document.
        let x = x.min(WIDTH - 4.0 - label_width(&label) / 2.0);
        let _ =
            writeln!(svg, r#"<text x="{x:.1}" y="{}" text-anchor="middle">{label}</text>"#, BOTTOM + 18.0);
    }
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle" font-size="14">Percentile</text>"#,
        frame.centre(),
        BOTTOM + 48.0
    );
}

/// Horizontal grid lines every `frame.y_step` µs, their labels and the y title.
fn write_y_axis(svg: &mut String, frame: &Frame) {
    for (value, label) in y_ticks(frame.y_max, frame.y_step) {
        let y = frame.y(value);
        let _ = writeln!(
            svg,
            r##"<line x1="{}" y1="{y:.1}" x2="{RIGHT}" y2="{y:.1}" stroke="#cccccc"/>"##,
            frame.left
        );
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{label}</text>"#,
            frame.left - 8.0,
            y + 4.0
        );
    }
    let middle = (TOP + BOTTOM) / 2.0;
    let _ = writeln!(
        svg,
        r#"<text x="22" y="{middle}" text-anchor="middle" font-size="14" transform="rotate(-90 22 {middle})">Latency (µs)</text>"#
    );
}

/// A box in the top-left corner (where latency curves stay low): a swatch and the name of
/// each series, "(no samples)" after the empty ones.
fn write_legend(svg: &mut String, frame: &Frame, series: &[PlotSeries<'_>], curves: &[Vec<HgrmRow>]) {
    if series.is_empty() {
        return;
    }
    const LINE_HEIGHT: f64 = 18.0;
    let labels: Vec<(String, bool)> = series
        .iter()
        .zip(curves)
        .map(|(s, rows)| {
            if rows.is_empty() {
                (format!("{} (no samples)", s.name), false)
            } else {
                (s.name.to_owned(), true)
            }
        })
        .collect();
    // About 7 px per character at 12 px: wide enough without measuring text.
    let longest = labels.iter().map(|(label, _)| label.chars().count()).max().unwrap_or(0);
    let width = (longest as f64 * 7.0 + 44.0).min(RIGHT - frame.left - 24.0);
    let height = labels.len() as f64 * LINE_HEIGHT + 10.0;
    let (x0, y0) = (frame.left + 12.0, TOP + 12.0);
    let _ = writeln!(
        svg,
        r##"<rect x="{x0}" y="{y0}" width="{width:.1}" height="{height}" fill="white" fill-opacity="0.9" stroke="#999999"/>"##
    );
    for (index, (label, has_samples)) in labels.iter().enumerate() {
        let y = y0 + 5.0 + LINE_HEIGHT * (index as f64 + 0.5);
        if *has_samples {
            let _ = writeln!(
                svg,
                r#"<line x1="{}" y1="{y}" x2="{}" y2="{y}" stroke="{}" stroke-width="3"/>"#,
                x0 + 8.0,
                x0 + 30.0,
                colour(index)
            );
        }
        let fill = if *has_samples { "#222222" } else { "#888888" };
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{:.1}" fill="{fill}">{}</text>"#,
            x0 + 36.0,
            y + 4.0,
            escape(label)
        );
    }
}

/// "0%", "90%", "99%", "99.9%", … for 10^decade.
fn percentile_label(decade: u32) -> String {
    match decade {
        0 => "0%".to_owned(),
        1 => "90%".to_owned(),
        2 => "99%".to_owned(),
        n => format!("99.{}%", "9".repeat(n as usize - 2)),
    }
}

/// The values and labels of the horizontal grid lines, 0 to `y_max` every `step`.
fn y_ticks(y_max: f64, step: f64) -> Vec<(f64, String)> {
    let decimals = decimals_for(step);
    // y_scale gives 1 to 8 steps; the cap only guards the allocation.
    let steps = (y_max / step).round().clamp(1.0, 100.0) as u32;
    (0..=steps)
        .map(|i| {
            let value = f64::from(i) * step;
            (value, format!("{value:.decimals$}"))
        })
        .collect()
}

/// The width of a number or percentile label at 12 px in a wide sans-serif font (DejaVu Sans), in
/// pixels; an estimate, to keep labels apart without measuring text.
fn label_width(label: &str) -> f64 {
    label
        .chars()
        .map(|c| match c {
            '.' => 3.8,
            '%' => 11.4,
            _ => 7.6,
        })
        .sum()
}

/// The top of the y axis and its grid step: 5 % above `max_us`, rounded up to a whole
/// number of 1, 2, 2.5 or 5 × 10^k steps (4 to 8 of them). 1 µs when there is no data.
fn y_scale(max_us: f64) -> (f64, f64) {
    let top = if max_us.is_finite() && max_us > 0.0 { max_us * 1.05 } else { 1.0 };
    let rough = top / 8.0;
    let magnitude = 10_f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|step| *step >= rough * (1.0 - 1e-9))
        .unwrap_or(10.0 * magnitude);
    let steps = (top / step - 1e-9).ceil().max(1.0);
    (steps * step, step)
}

/// The fewest decimals (up to 6) that print every multiple of `step` exactly.
fn decimals_for(step: f64) -> usize {
    (0..6)
        .find(|&d| {
            let scaled = step * 10_f64.powi(d as i32);
            (scaled - scaled.round()).abs() < 1e-6 * scaled.max(1.0)
        })
        .unwrap_or(6)
}

/// The colour of series `index`: the palette, then hues 137.5° apart.
fn colour(index: usize) -> String {
    match PALETTE.get(index) {
        Some(colour) => (*colour).to_owned(),
        None => hsl_hex((index as f64 * 137.508) % 360.0, 0.65, 0.45),
    }
}

/// `#rrggbb` of a hue in degrees, saturation and lightness in `0..=1`.
fn hsl_hex(hue: f64, saturation: f64, lightness: f64) -> String {
    let chroma = (1.0 - (2.0 * lightness - 1.0).abs()) * saturation;
    let sector = hue / 60.0;
    let second = chroma * (1.0 - (sector % 2.0 - 1.0).abs());
    let (r, g, b) = match sector as u32 {
        0 => (chroma, second, 0.0),
        1 => (second, chroma, 0.0),
        2 => (0.0, chroma, second),
        3 => (0.0, second, chroma),
        4 => (second, 0.0, chroma),
        _ => (chroma, 0.0, second),
    };
    let offset = lightness - chroma / 2.0;
    let byte = |c: f64| ((c + offset).clamp(0.0, 1.0) * 255.0).round() as u8;
    format!("#{:02x}{:02x}{:02x}", byte(r), byte(g), byte(b))
}

/// `text` safe inside SVG text and attributes: `& < > "` escaped, and the control
/// characters XML 1.0 forbids dropped (they would make the document unreadable).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\t' | '\n' | '\r' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Rounds to the 0.1 px the points are printed with.
fn round_tenth(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorder(values: impl IntoIterator<Item = u64>) -> LatencyRecorder {
        let mut r = LatencyRecorder::new();
        for v in values {
            r.record(v);
        }
        r
    }

    /// The (x, y) pairs of every polyline, in order.
    fn polylines(svg: &str) -> Vec<Vec<(f64, f64)>> {
        svg.lines()
            .filter(|l| l.starts_with("<polyline"))
            .map(|l| {
                let points = l.split("points=\"").nth(1).unwrap().split('"').next().unwrap();
                points
                    .split(' ')
                    .map(|p| {
                        let (x, y) = p.split_once(',').unwrap();
                        (x.parse().unwrap(), y.parse().unwrap())
                    })
                    .collect()
            })
            .collect()
    }

    fn assert_well_formed(svg: &str) {
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.ends_with("</svg>\n"), "{svg}");
        assert_eq!(svg.matches("<svg").count(), 1);
    }

    #[test]
    fn one_line_per_series_with_escaped_names_and_labels() {
        let fast = recorder((1..=10_000).map(|v| 10_000 + v));
        let slow = recorder((1..=100_000).map(|v| 20_000 + v * 3));
        let empty = LatencyRecorder::new();
        let svg = percentile_svg(
            "inproc <push> & \"pull\"",
            &[
                PlotSeries { name: "fast <64B>", recorder: &fast },
                PlotSeries { name: "slow & \"big\"", recorder: &slow },
                PlotSeries { name: "idle", recorder: &empty },
            ],
        );
        assert_well_formed(&svg);
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("inproc &lt;push&gt; &amp; &quot;pull&quot;"));
        assert!(svg.contains("fast &lt;64B&gt;"));
        assert!(svg.contains("slow &amp; &quot;big&quot;"));
        assert!(svg.contains("idle (no samples)"));
        assert!(!svg.contains("<push>") && !svg.contains("<64B>"));
        // 100 000 samples reach 1/(1-p) ≈ 10^5: the axis runs to 99.999 %.
        for label in [">0%<", ">90%<", ">99%<", ">99.9%<", ">99.99%<", ">99.999%<"] {
            assert!(svg.contains(label), "{label} missing");
        }
        assert!(!svg.contains(">99.9999%<"));
        // Distinct colours.
        assert!(svg.contains(PALETTE[0]) && svg.contains(PALETTE[1]));
    }

    #[test]
    fn points_move_right_and_up_and_the_max_is_at_the_right_edge() {
        let r = recorder((1..=50_000).map(|v| v * 7));
        let svg = percentile_svg("t", &[PlotSeries { name: "a", recorder: &r }]);
        let lines = polylines(&svg);
        assert_eq!(lines.len(), 1);
        let points = &lines[0];
        assert!(points.len() > 50, "{} points", points.len());
        for pair in points.windows(2) {
            assert!(pair[1].0 > pair[0].0, "x not increasing: {pair:?}");
            assert!(pair[1].1 <= pair[0].1, "latency decreasing: {pair:?}");
        }
        assert_eq!(points.first().unwrap().0, LEFT);
        assert_eq!(points.last().unwrap().0, RIGHT);
        // The max (350 µs) is below the top of the axis, and the axis is not much higher.
        let top = points.last().unwrap().1;
        assert!(top > TOP && top < TOP + 0.25 * (BOTTOM - TOP), "max drawn at y = {top}");
    }

    #[test]
    fn every_series_is_monotonic_in_x() {
        let a = recorder([5, 5, 5, 1_000_000]);
        let mut b = LatencyRecorder::new();
        b.record_corrected(10_000_000, 1_000);
        b.record(1);
        let c = recorder((0..1_000_000).map(|v| v % 9_973 + 1));
        let svg = percentile_svg(
            "mixed",
            &[
                PlotSeries { name: "a", recorder: &a },
                PlotSeries { name: "b", recorder: &b },
                PlotSeries { name: "c", recorder: &c },
            ],
        );
        assert_well_formed(&svg);
        let lines = polylines(&svg);
        assert_eq!(lines.len(), 3);
        for points in &lines {
            assert!(points.windows(2).all(|p| p[1].0 > p[0].0), "{points:?}");
            assert!(points.iter().all(|&(x, y)| (LEFT..=RIGHT).contains(&x) && (TOP..=BOTTOM).contains(&y)));
        }
    }

    #[test]
    fn degenerate_inputs_do_not_panic() {
        let svg = percentile_svg("", &[]);
        assert_well_formed(&svg);
        assert_eq!(svg.matches("<polyline").count(), 0);
        assert!(svg.contains("no samples"));

        let empty = LatencyRecorder::new();
        let svg = percentile_svg("only empty", &[PlotSeries { name: "none", recorder: &empty }]);
        assert_well_formed(&svg);
        assert_eq!(svg.matches("<polyline").count(), 0);
        assert!(svg.contains("none (no samples)"));

        // One sample: a flat line from 0 % to the right edge.
        let one = recorder([42_000]);
        let zero = recorder([0, 0, 0]);
        let huge = recorder([u64::MAX]);
        let svg = percentile_svg(
            "\u{0}odd\u{7}\ttitle",
            &[
                PlotSeries { name: "one", recorder: &one },
                PlotSeries { name: "zero", recorder: &zero },
                PlotSeries { name: "", recorder: &huge },
            ],
        );
        assert_well_formed(&svg);
        assert!(svg.contains("<title>odd title</title>"));
        let lines = polylines(&svg);
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].len(), 2);
        assert_eq!(lines[0][0].1, lines[0][1].1);
        // 60 s is "60000000" µs: the plot moves right to make room for the y labels.
        let left = lines[0][0].0;
        assert!(left > LEFT, "{left}");
        assert_eq!(lines[0][1].0, RIGHT);
        assert!(lines.iter().all(|points| points[0].0 == left));
        assert!(svg.contains(&format!(r##"<rect x="{left}" y="{TOP}""##)));
        assert!(svg.contains(">60000000<") && svg.contains(">90%<"));
    }

    #[test]
    fn many_series_get_distinct_colours() {
        let colours: Vec<String> = (0..40).map(colour).collect();
        for (i, a) in colours.iter().enumerate() {
            assert_eq!(a.len(), 7, "{a}");
            assert!(colours[i + 1..].iter().all(|b| b != a), "{a} repeats");
        }
    }

    #[test]
    fn y_scale_is_round_and_a_bit_above_the_max() {
        for max in [0.001, 0.9, 1.0, 7.3, 42.0, 99.0, 100.0, 250.3, 12_345.0, 60_000_000.0] {
            let (top, step) = y_scale(max);
            assert!(top > max && top <= max * 1.05 + 2.0 * step, "{max}: {top} {step}");
            let steps = top / step;
            assert!((steps - steps.round()).abs() < 1e-6 && (1.0..=8.0).contains(&steps.round()), "{max}");
        }
        assert_eq!(y_scale(0.0), (1.0, 0.2));
        assert_eq!(y_scale(f64::NAN), (1.0, 0.2));
        assert_eq!(decimals_for(0.25), 2);
        assert_eq!(decimals_for(50.0), 0);
        assert_eq!(decimals_for(0.0002), 4);
    }

    #[test]
    fn x_labels_stay_apart_and_inside_the_document() {
        for decades in 1..=MAX_DECADES {
            let frame = Frame::new(decades, 1.0);
            let mut svg = String::new();
            write_x_axis(&mut svg, &frame, decades);
            let labels: Vec<(f64, &str)> = svg
                .lines()
                .filter(|l| l.contains(r#"text-anchor="middle">"#) && !l.contains("Percentile"))
                .map(|l| {
                    let x = l.split("x=\"").nth(1).unwrap().split('"').next().unwrap();
                    let label = l.split('>').nth(1).unwrap().split('<').next().unwrap();
                    (x.parse().unwrap(), label)
                })
                .collect();
            assert_eq!(labels[0], (LEFT, "0%"), "{decades} decades");
            assert!(labels.len() >= 3.min(decades as usize + 1), "{decades} decades: {labels:?}");
            for pair in labels.windows(2) {
                let gap = pair[1].0 - pair[0].0;
                let needed = (label_width(pair[0].1) + label_width(pair[1].1)) / 2.0;
                assert!(gap > needed, "{decades} decades: {pair:?} overlap");
            }
            let (x, label) = *labels.last().unwrap();
            assert!(x + label_width(label) / 2.0 <= WIDTH, "{decades} decades: {label} at {x}");
        }
    }

    #[test]
    fn percentile_labels() {
        let labels: Vec<String> = (0..6).map(percentile_label).collect();
        assert_eq!(labels, ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"]);
    }
}
