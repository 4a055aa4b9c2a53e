//! Latency metrics: HdrHistogram recording, merging across threads, and reports.
//!
//! Pure code: no sockets, no clocks. Callers pass latencies in nanoseconds (CLOCK_MONOTONIC
//! differences, see DESIGN.md decision 6) and, where time matters, the current time as a
//! parameter, so everything here is unit-tested with a fake clock.
//!
//! - [`LatencyRecorder`]: one HdrHistogram (1 ns to 60 s, 3 significant digits) per thread;
//!   recording never allocates, never locks and never panics.
//! - [`SharedRecorder`] / [`LocalRecorder`]: several threads record into their own histogram
//!   and merge into one shared total when they flush, off the hot path.
//! - [`LatencySummary`]: count, min, p50 … p99.99, max and mean, exported as a `tracing` span.
//! - [`IntervalReporter`]: emits a summary every interval, given `now`, and hands the
//!   interval's histogram over ([`interval_channel`]) to whoever exports it.
//! - `.hgrm`: [`LatencyRecorder::write_hgrm`] writes HdrHistogram's standard percentile
//!   distribution text; [`parse_hgrm`] reads it back.
//! - `.hlog`: [`HlogWriter`] writes HdrHistogram's interval log, one histogram per
//!   interval; [`parse_hlog`] reads it back.
//! - [`semconv`]: the OpenTelemetry messaging names every export uses, and
//!   [`MessagingAttributes`].
//! - `otlp` (feature `otlp`): the OpenTelemetry export of the intervals, counters and spans.
//!
//! # Examples
//!
//! ```
//! use ztick::metrics::{parse_hgrm, LatencyRecorder};
//!
//! let mut recorder = LatencyRecorder::new();
//! for latency_ns in [12_000, 13_500, 11_200, 250_000] {
//!     recorder.record(latency_ns);
//! }
//! let summary = recorder.summary();
//! assert_eq!(summary.count, 4);
//! assert!(summary.max >= 250_000);
//!
//! // The percentile distribution in microseconds, as HdrHistogram prints it.
//! let mut text = Vec::new();
//! recorder.write_hgrm(&mut text, 1000.0)?;
//! let rows = parse_hgrm(std::str::from_utf8(&text).unwrap())?;
//! assert_eq!(rows.last().map(|row| row.total_count), Some(4));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod handoff;
mod hgrm;
mod hlog;
mod interval;
#[cfg(feature = "otlp")]
pub mod otlp;
mod recorder;
pub mod semconv;
mod shared;
mod summary;

pub use handoff::{interval_channel, Interval, IntervalCounts, IntervalReceiver, IntervalSender};
pub use hgrm::{parse_hgrm, HgrmRow};
pub use hlog::{parse_hlog, HlogInterval, HlogWriter};
pub use interval::IntervalReporter;
pub use recorder::LatencyRecorder;
pub use semconv::{MessagingAttributes, OperationType};
pub use shared::{LocalRecorder, SharedRecorder};
pub use summary::LatencySummary;
