//! [`LatencySummary`]: the handful of numbers a latency report shows, and their `tracing` export.

use serde::{Deserialize, Serialize};

/// The headline numbers of a latency histogram, all in nanoseconds.
///
/// Built by [`LatencyRecorder::summary`](super::LatencyRecorder::summary); every field is 0
/// when nothing was recorded. Percentiles are the histogram's values (within 0.1 %), not
/// exact order statistics.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Number of values recorded, including coordinated-omission corrections.
    pub count: u64,
    /// Smallest value (ns).
    pub min: u64,
    /// Median (ns).
    pub p50: u64,
    /// 90th percentile (ns).
    pub p90: u64,
    /// 99th percentile (ns).
    pub p99: u64,
    /// 99.9th percentile (ns).
    pub p99_9: u64,
    /// 99.99th percentile (ns).
    pub p99_99: u64,
    /// Largest value (ns), rounded up to the histogram's precision.
    pub max: u64,
    /// Mean (ns).
    pub mean: f64,
}

impl LatencySummary {
    /// Exports the summary through `tracing`: one INFO span named `latency` whose fields are
    /// `name` and every field of this struct (nanoseconds), entered around one INFO event, so
    /// that a formatting subscriber prints the fields and an OpenTelemetry one gets them as
    /// span attributes. `name` says what was measured, e.g. the topic or the endpoint.
    pub fn emit(&self, name: &'static str) {
        let span = tracing::info_span!(
            "latency",
            name = name,
            count = self.count,
            min = self.min,
            p50 = self.p50,
            p90 = self.p90,
            p99 = self.p99,
            p99_9 = self.p99_9,
            p99_99 = self.p99_99,
            max = self.max,
            mean = self.mean,
        );
        let _entered = span.enter();
        tracing::info!("latency summary (ns)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::fmt;
    use std::sync::{Arc, Mutex};
    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id};
    use tracing::{Event, Subscriber};
    use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
    use tracing_subscriber::registry::LookupSpan;

    /// What the capturing layer saw: span names with their fields, and event count.
    #[derive(Default)]
    struct Seen {
        spans: Vec<(String, BTreeMap<String, String>)>,
        events_in_span: usize,
    }

    struct Capture(Arc<Mutex<Seen>>);

    struct Fields<'a>(&'a mut BTreeMap<String, String>);

    impl Visit for Fields<'_> {
        fn record_str(&mut self, field: &Field, value: &str) {
            self.0.insert(field.name().to_owned(), value.to_owned());
        }
        fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
            self.0.insert(field.name().to_owned(), format!("{value:?}"));
        }
    }

    impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
        fn on_new_span(&self, attrs: &Attributes<'_>, _id: &Id, _ctx: Context<'_, S>) {
            let mut fields = BTreeMap::new();
            attrs.record(&mut Fields(&mut fields));
            let mut seen = self.0.lock().unwrap();
            seen.spans.push((attrs.metadata().name().to_owned(), fields));
        }
        fn on_event(&self, _event: &Event<'_>, ctx: Context<'_, S>) {
            if ctx.lookup_current().is_some() {
                self.0.lock().unwrap().events_in_span += 1;
            }
        }
    }

    #[test]
    fn emit_exports_every_field_in_a_span() {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let subscriber = tracing_subscriber::registry().with(Capture(Arc::clone(&seen)));
        let summary = LatencySummary {
            count: 10,
            min: 1,
            p50: 5,
            p90: 9,
            p99: 10,
            p99_9: 11,
            p99_99: 12,
            max: 13,
            mean: 5.5,
        };
        tracing::subscriber::with_default(subscriber, || summary.emit("feed"));

        let seen = seen.lock().unwrap();
        assert_eq!(seen.spans.len(), 1);
        let (name, fields) = &seen.spans[0];
        assert_eq!(name, "latency");
        let expected = [
            ("name", "feed"),
            ("count", "10"),
            ("min", "1"),
            ("p50", "5"),
            ("p90", "9"),
            ("p99", "10"),
            ("p99_9", "11"),
            ("p99_99", "12"),
            ("max", "13"),
            ("mean", "5.5"),
        ];
        for (field, value) in expected {
            assert_eq!(fields.get(field).map(String::as_str), Some(value), "{field}");
        }
        assert_eq!(fields.len(), expected.len());
        assert_eq!(seen.events_in_span, 1);
    }

    #[test]
    fn serde_round_trip() {
        let summary = LatencySummary {
            count: 3,
            min: 1,
            p50: 2,
            p90: 3,
            p99: 3,
            p99_9: 3,
            p99_99: 3,
            max: 3,
            mean: 2.0,
        };
        let config = bincode::config::standard();
        let bytes = bincode::serde::encode_to_vec(summary, config).unwrap();
        let (back, _): (LatencySummary, usize) = bincode::serde::decode_from_slice(&bytes, config).unwrap();
        assert_eq!(back, summary);
    }
}
