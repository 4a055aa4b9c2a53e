//! The OpenTelemetry export (feature `otlp`) without a network: the SDK's in-memory
//! exporters receive what `OtlpExporter` records, and the test checks the names, units,
//! buckets, attributes and values (`cargo test --features otlp --test otlp`).

use std::time::Duration;

use opentelemetry::Value;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, Metric, MetricData};
use opentelemetry_sdk::metrics::InMemoryMetricExporter;
use opentelemetry_sdk::trace::InMemorySpanExporter;
use tracing_subscriber::layer::SubscriberExt;
use ztick::metrics::otlp::{OtlpConfig, OtlpExporter, RunTotals};
use ztick::metrics::{
    interval_channel, semconv, IntervalCounts, IntervalReporter, MessagingAttributes, OperationType,
};

fn attrs() -> MessagingAttributes {
    MessagingAttributes::new("receive", OperationType::Receive, "g0.")
        .endpoint(&"tcp://127.0.0.1:5556".parse().unwrap())
        .body_size_bytes(64)
}

fn counter_total(m: &Metric) -> u64 {
    match m.data() {
        AggregatedMetrics::U64(MetricData::Sum(s)) => s.data_points().map(|p| p.value()).sum(),
        other => panic!("{} is not a u64 sum: {other:?}", m.name()),
    }
}

#[test]
fn intervals_counters_and_spans_carry_the_messaging_names_and_values() {
    let spans = InMemorySpanExporter::default();
    let metrics = InMemoryMetricExporter::default();
    // No periodic push during the test: flush() exports.
    let cfg = OtlpConfig { export_interval: Some(Duration::from_secs(3600)), ..OtlpConfig::default() };
    let exporter = OtlpExporter::with_exporters(spans.clone(), metrics.clone(), &cfg);

    let (tx, rx) = interval_channel(8);
    let tx = tx.labelled("sub0", attrs());
    let subscriber = tracing_subscriber::registry().with(exporter.tracing_layer());
    tracing::subscriber::with_default(subscriber, || {
        // What a worker does once a second: its reporter emits the span and hands the
        // histogram over.
        let mut r = IntervalReporter::new("fanout subscriber", Duration::from_secs(1), 0).with_sender(tx);
        for v in [3_000, 40_000, 40_000, 2_000_000] {
            r.record(v);
        }
        r.report_with(1_000_000_000, IntervalCounts { messages: 4, gaps: 1, ..IntervalCounts::default() });
    });
    let interval = rx.try_recv().expect("the interval was handed over");
    exporter.record_interval(&interval);
    rx.recycle(interval);
    exporter.add_totals(&attrs(), &RunTotals { repaired: 2, unrecoverable: 1, ..RunTotals::default() });
    let publisher = MessagingAttributes::new("publish", OperationType::Send, "g0.");
    exporter.add_totals(&publisher, &RunTotals { sent: 5, ..RunTotals::default() });
    exporter.flush().unwrap();

    let exported = metrics.get_finished_metrics().unwrap();
    let scope_metrics: Vec<&Metric> =
        exported.iter().flat_map(|rm| rm.scope_metrics()).flat_map(|sm| sm.metrics()).collect();
    let names: Vec<&str> = scope_metrics.iter().map(|m| m.name()).collect();
    let find = |name: &str| -> &Metric {
        scope_metrics
            .iter()
            .copied()
            .find(|m| m.name() == name)
            .unwrap_or_else(|| panic!("no {name}: {names:?}"))
    };

    // The histogram: seconds, microsecond buckets, the interval's four values.
    let duration = find(semconv::OPERATION_DURATION);
    assert_eq!(duration.unit(), "s");
    let AggregatedMetrics::F64(MetricData::Histogram(h)) = duration.data() else {
        panic!("{} is not an f64 histogram", duration.name())
    };
    let point = h.data_points().next().expect("one stream");
    assert_eq!(point.count(), 4);
    let bounds: Vec<f64> = point.bounds().collect();
    assert_eq!(bounds, semconv::DURATION_BUCKETS_S.to_vec());
    let counts: Vec<u64> = point.bucket_counts().collect();
    // 3 µs in (2, 5] µs; 40 µs twice in (20, 50] µs; 2 ms in (1, 2] ms (+0.1 % precision: (2, 5]).
    assert_eq!(counts[2], 1, "{counts:?}");
    assert_eq!(counts[5], 2, "{counts:?}");
    assert_eq!(counts[10] + counts[11], 1, "{counts:?}");
    assert!((point.sum() - 2.083e-3).abs() < 5e-6, "sum {}", point.sum());
    let kv: Vec<(String, Value)> =
        point.attributes().map(|kv| (kv.key.to_string(), kv.value.clone())).collect();
    let get = |k: &str| kv.iter().find(|(key, _)| key == k).map(|(_, v)| v.to_string());
    assert_eq!(get(semconv::MESSAGING_SYSTEM).as_deref(), Some("zeromq"));
    assert_eq!(get(semconv::OPERATION_NAME).as_deref(), Some("receive"));
    assert_eq!(get(semconv::OPERATION_TYPE).as_deref(), Some("receive"));
    assert_eq!(get(semconv::DESTINATION_NAME).as_deref(), Some("g0."));
    assert_eq!(get(semconv::NETWORK_TRANSPORT).as_deref(), Some("tcp"));
    assert_eq!(get(semconv::SERVER_ADDRESS).as_deref(), Some("127.0.0.1"));
    assert_eq!(get(semconv::SERVER_PORT).as_deref(), Some("5556"));

    // The counters.
    assert_eq!(counter_total(find(semconv::CONSUMED_MESSAGES)), 4);
    assert_eq!(counter_total(find(semconv::SENT_MESSAGES)), 5);
    assert_eq!(counter_total(find(semconv::ZTICK_GAPS)), 1);
    assert_eq!(counter_total(find(semconv::ZTICK_REPAIRED)), 2);
    assert_eq!(counter_total(find(semconv::ZTICK_UNRECOVERABLE)), 1);

    // The span: ztick's `latency` span with the conventions' attributes.
    let finished = spans.get_finished_spans().unwrap();
    let span = finished.iter().find(|s| s.name == "latency").expect("the interval's span was exported");
    let sattr =
        |k: &str| span.attributes.iter().find(|kv| kv.key.as_str() == k).map(|kv| kv.value.to_string());
    assert_eq!(sattr("messaging.system").as_deref(), Some("zeromq"));
    assert_eq!(sattr("messaging.destination.name").as_deref(), Some("g0."));
    assert_eq!(sattr("messaging.batch.message_count").as_deref(), Some("4"));
    assert_eq!(sattr("messaging.message.body.size").as_deref(), Some("64"));
    assert_eq!(sattr("network.transport").as_deref(), Some("tcp"));
    assert_eq!(sattr("error.type").as_deref(), Some("gap"));
    assert_eq!(sattr("name").as_deref(), Some("fanout subscriber"));
    exporter.shutdown().unwrap();
}
