//! [`LatencySummary`]: the handful of numbers a latency report shows, and their `tracing` export.

use serde::{Deserialize, Serialize};

use super::semconv::MessagingAttributes;

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

    /// Exports the summary as [`emit`](Self::emit) does, the span also carrying the stream's
    /// OpenTelemetry messaging attributes ([`semconv`](super::semconv)): `messaging.system =
    /// "zeromq"`, `messaging.operation.name` and `.type`, `messaging.destination.name`,
    /// `messaging.batch.message_count` (the interval's count), and where known
    /// `messaging.message.body.size`, `network.transport`, `server.address`, `server.port`,
    /// and `error.type` (`gap` when `error` says the interval lost messages).
    pub fn emit_messaging(&self, name: &str, attributes: &MessagingAttributes, error: Option<&'static str>) {
        let a = attributes;
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
            messaging.system = super::semconv::SYSTEM_ZEROMQ,
            messaging.operation.name = a.operation_name.as_str(),
            messaging.operation.type = a.operation_type.as_str(),
            messaging.destination.name = a.destination.as_str(),
            messaging.batch.message_count = self.count,
            messaging.message.body.size = a.body_size_bytes,
            network.transport = a.network_transport(),
            server.address = a.server_address.as_deref(),
            server.port = a.server_port,
            error.type = error,
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
    fn emit_messaging_adds_the_semantic_convention_attributes() {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let subscriber = tracing_subscriber::registry().with(Capture(Arc::clone(&seen)));
        let summary = LatencySummary { count: 7, ..LatencySummary::default() };
        let attrs = MessagingAttributes::new("receive", crate::metrics::OperationType::Receive, "ticks")
            .endpoint(&"tcp://127.0.0.1:5556".parse().unwrap())
            .body_size_bytes(64);
        tracing::subscriber::with_default(subscriber, || summary.emit_messaging("sub0", &attrs, Some("gap")));
        let seen = seen.lock().unwrap();
        let (_, fields) = &seen.spans[0];
        let expected = [
            ("name", "sub0"),
            ("count", "7"),
            ("messaging.system", "zeromq"),
            ("messaging.operation.name", "receive"),
            ("messaging.operation.type", "receive"),
            ("messaging.destination.name", "ticks"),
            ("messaging.batch.message_count", "7"),
            ("messaging.message.body.size", "64"),
            ("network.transport", "tcp"),
            ("server.address", "127.0.0.1"),
            ("server.port", "5556"),
            ("error.type", "gap"),
        ];
        for (field, value) in expected {
            assert_eq!(fields.get(field).map(String::as_str), Some(value), "{field}");
        }
        // Unknown attributes are left out, not written empty.
        let seen2 = Arc::new(Mutex::new(Seen::default()));
        let subscriber = tracing_subscriber::registry().with(Capture(Arc::clone(&seen2)));
        tracing::subscriber::with_default(subscriber, || {
            summary.emit_messaging("x", &MessagingAttributes::default(), None)
        });
        let fields = &seen2.lock().unwrap().spans[0].1;
        for absent in ["network.transport", "server.port", "error.type", "messaging.message.body.size"] {
            assert!(!fields.contains_key(absent), "{absent}: {fields:?}");
        }
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
