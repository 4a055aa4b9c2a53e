//! [`HlogWriter`]: HdrHistogram's interval log (`.hlog`), one compressed histogram per
//! reporting interval, the format of Java's `HistogramLogWriter` that its
//! `HistogramLogProcessor` (and the `hdrhistogram` crate's `IntervalLogIterator`) read.

use std::io::{self, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hdrhistogram::serialization::interval_log::{
    IntervalLogIterator, IntervalLogWriterBuilder, LogEntry, Tag,
};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};
use hdrhistogram::Histogram;

use super::handoff::Interval;

/// Writes an interval log: the header once, then one line per interval,
/// `Tag=SOURCE,START,LENGTH,MAX,HISTOGRAM` (seconds since the log's BaseTime, the interval's
/// length in seconds, its max, the histogram compressed and base64-encoded). Values (and the
/// max) are nanoseconds, as ztick records them; [`parse_hlog`] reads a log back.
///
/// ```
/// use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
/// use ztick::metrics::{interval_channel, HlogWriter, IntervalCounts, LatencyRecorder};
///
/// let (tx, rx) = interval_channel(4);
/// let mut rec = LatencyRecorder::new();
/// rec.record(25_000);
/// tx.labelled("req", Default::default()).send(0, 1_000_000_000, &mut rec, IntervalCounts::default());
/// let mut log = HlogWriter::new(Vec::new(), 0, std::time::SystemTime::now(), "ztick lat")?;
/// log.write_interval(&rx.try_recv().unwrap())?;
/// let text = log.into_inner();
/// let intervals = IntervalLogIterator::new(&text)
///     .filter(|e| matches!(e, Ok(LogEntry::Interval(_))))
///     .count();
/// assert_eq!(intervals, 1);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct HlogWriter<W: Write> {
    out: W,
    serializer: V2DeflateSerializer,
    /// CLOCK_MONOTONIC ns at the log's BaseTime: interval timestamps are offsets from it.
    base_ns: u64,
}

impl<W: Write> std::fmt::Debug for HlogWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HlogWriter").field("base_ns", &self.base_ns).finish_non_exhaustive()
    }
}

impl<W: Write> HlogWriter<W> {
    /// Starts a log on `out` whose time zero is `base_ns` (CLOCK_MONOTONIC), which was the
    /// wall-clock time `base_time`; `comment` goes on the first line (what wrote the log).
    ///
    /// # Errors
    /// Those of `out`.
    pub fn new(mut out: W, base_ns: u64, base_time: SystemTime, comment: &str) -> io::Result<Self> {
        let secs = base_time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs_f64();
        for line in comment.lines() {
            writeln!(out, "#{line}")?;
        }
        writeln!(out, "#[Histogram log format version 1.3]")?;
        writeln!(out, "#[StartTime: {secs:.3} (seconds since epoch)]")?;
        writeln!(out, "#[BaseTime: {secs:.3} (seconds since epoch)]")?;
        writeln!(out, "#[Values in nanoseconds]")?;
        writeln!(
            out,
            "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\""
        )?;
        Ok(HlogWriter { out, serializer: V2DeflateSerializer::new(), base_ns })
    }

    /// Appends one interval, tagged with its source (a tag the format cannot hold, with a
    /// comma or a space, goes untagged).
    ///
    /// # Errors
    /// Those of the writer; [`io::ErrorKind::InvalidData`] if the histogram does not serialize.
    pub fn write_interval(&mut self, interval: &Interval) -> io::Result<()> {
        let start = Duration::from_nanos(interval.start_ns.saturating_sub(self.base_ns));
        let length = Duration::from_nanos(interval.end_ns.saturating_sub(interval.start_ns));
        let tag = Tag::new(&interval.source).filter(|_| !interval.source.is_empty());
        // The header was written once in `new`: a builder without comments or times adds none.
        let mut w = IntervalLogWriterBuilder::new().begin_log_with(&mut self.out, &mut self.serializer)?;
        w.write_histogram(interval.latency.as_histogram(), start, length, tag)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{e:?}")))
    }

    /// Flushes what was written.
    ///
    /// # Errors
    /// Those of the writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The writer, flushed by the caller.
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// One interval read back from an interval log by [`parse_hlog`].
#[derive(Debug, Clone)]
pub struct HlogInterval {
    /// Its tag (the source that measured it), if it has one.
    pub tag: Option<String>,
    /// Its start, from the log's BaseTime (or the epoch without one).
    pub start: Duration,
    /// Its length.
    pub length: Duration,
    /// Its histogram, with the bounds it was written with.
    pub histogram: Histogram<u64>,
}

/// Reads every interval of an interval log (as [`HlogWriter`] or Java's
/// `HistogramLogWriter` writes it) with the `hdrhistogram` crate's `IntervalLogIterator`,
/// decoding each histogram.
///
/// # Errors
/// [`io::ErrorKind::InvalidData`] naming the first line that does not parse, or the first
/// histogram that does not decode.
pub fn parse_hlog(log: &[u8]) -> io::Result<Vec<HlogInterval>> {
    let bad = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
    let mut out = Vec::new();
    let mut deserializer = Deserializer::new();
    for (i, entry) in IntervalLogIterator::new(log).enumerate() {
        let entry = entry.map_err(|e| bad(format!("interval log entry {}: {e:?}", i + 1)))?;
        let LogEntry::Interval(h) = entry else { continue };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(h.encoded_histogram())
            .map_err(|e| bad(format!("interval {}: histogram is not base64: {e}", out.len() + 1)))?;
        let histogram: Histogram<u64> = deserializer
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| bad(format!("interval {}: histogram does not decode: {e:?}", out.len() + 1)))?;
        out.push(HlogInterval {
            tag: h.tag().map(|t| t.as_str().to_owned()),
            start: h.start_timestamp(),
            length: h.duration(),
            histogram,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::metrics::{IntervalCounts, LatencyRecorder, MessagingAttributes};

    fn interval(source: &str, start_ns: u64, values: &[u64]) -> Interval {
        let mut latency = LatencyRecorder::new();
        for v in values {
            latency.record(*v);
        }
        Interval {
            source: Arc::from(source),
            attributes: Arc::new(MessagingAttributes::default()),
            start_ns,
            end_ns: start_ns + 1_000_000_000,
            latency,
            counts: IntervalCounts::default(),
        }
    }

    #[test]
    fn intervals_parse_back_with_their_tags_times_and_counts() {
        let base = 5_000_000_000;
        let start = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut log = HlogWriter::new(Vec::new(), base, start, "test").unwrap();
        log.write_interval(&interval("sub0", base, &[1_000, 2_000, 3_000])).unwrap();
        log.write_interval(&interval("sub1", base + 1_000_000_000, &[40_000_000])).unwrap();
        log.write_interval(&interval("bad tag,x", base + 2_000_000_000, &[])).unwrap();
        let text = log.into_inner();
        let s = std::str::from_utf8(&text).unwrap();
        assert!(
            s.starts_with("#test\n#[Histogram log format version 1.3]\n#[StartTime: 1700000000.000"),
            "{s}"
        );
        assert!(s.contains("\nTag=sub0,0.000,1.000,"), "{s}");
        let base_times = IntervalLogIterator::new(&text)
            .filter(|e| matches!(e, Ok(LogEntry::BaseTime(t)) if *t == Duration::from_secs(1_700_000_000)))
            .count();
        assert_eq!(base_times, 1);

        let seen = parse_hlog(&text).unwrap();
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[0].tag.as_deref(), Some("sub0"));
        assert_eq!(
            (seen[0].start, seen[0].length, seen[0].histogram.len()),
            (Duration::ZERO, Duration::from_secs(1), 3)
        );
        assert_eq!((seen[1].start, seen[1].histogram.len()), (Duration::from_secs(1), 1));
        assert!(seen[1].histogram.max() >= 40_000_000);
        assert_eq!(
            (seen[2].tag.as_deref(), seen[2].histogram.len()),
            (None, 0),
            "an untaggable source goes untagged"
        );
        assert!(parse_hlog(b"1.0,1.0,1.0,not*base64\n").is_err());
    }
}
