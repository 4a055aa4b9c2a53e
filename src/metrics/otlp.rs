//! OpenTelemetry export (feature `otlp`): the latency intervals ztick already keeps, its
//! message counters and its `tracing` spans, over OTLP/HTTP with protobuf.
//!
//! Nothing is recorded per message on a worker. A worker hands each finished interval's
//! HdrHistogram over ([`interval_channel`](super::interval_channel)); the exporting thread
//! replays it into the [`OPERATION_DURATION`] histogram (microsecond buckets,
//! [`DURATION_BUCKETS_S`]) through a bound instrument, adds its counts to the counters, and
//! the SDK's own threads batch and send. Spans (the `latency` span of every interval, with
//! its [messaging attributes](super::semconv)) reach the exporter through
//! [`OtlpExporter::tracing_layer`].
//!
//! Configuration follows the standard variables, which the OTLP exporter reads itself:
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (default `http://localhost:4318`, to which `/v1/traces` and
//! `/v1/metrics` are added), the per-signal `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` and
//! `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` (used as they are), `OTEL_EXPORTER_OTLP_HEADERS`,
//! `OTEL_EXPORTER_OTLP_TIMEOUT` (ms), `OTEL_EXPORTER_OTLP_PROTOCOL` (only `http/protobuf`
//! here), `OTEL_METRIC_EXPORT_INTERVAL` (ms, default 60 s; ztick's command line uses 1 s) and
//! `OTEL_SERVICE_NAME`. An endpoint given in [`OtlpConfig::endpoint`] overrides the first two.
//!
//! The HTTP client is `ureq`, blocking, on the SDK's export threads: no async runtime.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry::metrics::{BoundCounter, BoundHistogram, Counter, Histogram, MeterProvider as _};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider, SpanExporter};
use opentelemetry_sdk::Resource;

use super::handoff::Interval;
use super::semconv::{self, MessagingAttributes, DURATION_BUCKETS_S, OPERATION_DURATION};
use crate::error::{Error, Result};

/// How the exporter is set up; everything not here comes from the `OTEL_*` variables.
#[derive(Debug, Clone)]
pub struct OtlpConfig {
    /// The collector's base URL (`http://host:4318`), to which `/v1/traces` and
    /// `/v1/metrics` are added. Default `None`: `OTEL_EXPORTER_OTLP_*_ENDPOINT` or
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`, else `http://localhost:4318`.
    pub endpoint: Option<String>,
    /// `service.name` of the resource, unless `OTEL_SERVICE_NAME` is set. Default `ztick`.
    pub service_name: String,
    /// How often metrics are pushed. Default `None`: `OTEL_METRIC_EXPORT_INTERVAL`, else 60 s.
    pub export_interval: Option<Duration>,
}

impl Default for OtlpConfig {
    fn default() -> Self {
        OtlpConfig { endpoint: None, service_name: "ztick".into(), export_interval: None }
    }
}

/// A measured stream: its source name and attributes.
type StreamKey = (Arc<str>, Arc<MessagingAttributes>);

/// The instruments of one measured stream, bound to its attributes once.
struct Bound {
    duration: BoundHistogram<f64>,
    sent: BoundCounter<u64>,
    consumed: BoundCounter<u64>,
    gaps: BoundCounter<u64>,
    repaired: BoundCounter<u64>,
    dropped: BoundCounter<u64>,
}

/// The SDK's tracer and meter providers with ztick's instruments, exporting over OTLP.
///
/// # Examples
///
/// What a metrics thread does with each interval a worker handed over (here with the SDK's
/// in-memory exporters; [`from_env`](Self::from_env) exports over OTLP/HTTP instead):
///
/// ```
/// use opentelemetry_sdk::metrics::InMemoryMetricExporter;
/// use opentelemetry_sdk::trace::InMemorySpanExporter;
/// use ztick::metrics::otlp::{OtlpConfig, OtlpExporter};
/// use ztick::metrics::{interval_channel, semconv, IntervalCounts, LatencyRecorder, MessagingAttributes};
///
/// let metrics = InMemoryMetricExporter::default();
/// let exporter = OtlpExporter::with_exporters(InMemorySpanExporter::default(), metrics.clone(), &OtlpConfig::default());
/// let (tx, rx) = interval_channel(8);
/// let tx = tx.labelled("sub0", MessagingAttributes::default());
///
/// // On the worker, once a second: hand the window over (no copy, never waits).
/// let mut window = LatencyRecorder::new();
/// window.record(42_000);
/// tx.send(0, 1_000_000_000, &mut window, IntervalCounts { messages: 1, ..Default::default() });
///
/// // On the metrics thread: record it, give the recorder back.
/// while let Some(interval) = rx.try_recv() {
///     exporter.record_interval(&interval);
///     rx.recycle(interval);
/// }
/// exporter.shutdown()?;
/// let names: Vec<String> = metrics.get_finished_metrics().expect("exported").iter()
///     .flat_map(|rm| rm.scope_metrics()).flat_map(|sm| sm.metrics()).map(|m| m.name().to_owned()).collect();
/// assert!(names.iter().any(|n| n == semconv::OPERATION_DURATION), "{names:?}");
/// # Ok::<(), ztick::Error>(())
/// ```
pub struct OtlpExporter {
    tracer_provider: SdkTracerProvider,
    meter_provider: SdkMeterProvider,
    duration: Histogram<f64>,
    sent: Counter<u64>,
    consumed: Counter<u64>,
    gaps: Counter<u64>,
    repaired: Counter<u64>,
    unrecoverable: Counter<u64>,
    dropped: Counter<u64>,
    intervals_lost: Counter<u64>,
    /// Instruments bound per stream, keyed by the stream's source name and attributes.
    bound: Mutex<HashMap<StreamKey, Arc<Bound>>>,
}

impl std::fmt::Debug for OtlpExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpExporter").finish_non_exhaustive()
    }
}

/// A library error from the OpenTelemetry SDK, naming what was being done.
fn otel_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::config("OpenTelemetry export", what, format!("{e}"))
}

impl OtlpExporter {
    /// An exporter to the OTLP/HTTP collector `cfg` and the `OTEL_*` variables name.
    ///
    /// # Errors
    /// [`Error::Config`] for an endpoint that does not parse, a protocol other than
    /// `http/protobuf`, or an exporter the SDK could not build.
    pub fn from_env(cfg: &OtlpConfig) -> Result<OtlpExporter> {
        for var in [
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
        ] {
            if let Ok(p) = std::env::var(var) {
                if !p.trim().is_empty() && p.trim() != "http/protobuf" {
                    return Err(Error::config(
                        var,
                        p,
                        "http/protobuf (ztick exports OTLP over HTTP with protobuf)",
                    ));
                }
            }
        }
        let client = UreqClient::new(env_timeout());
        let signal =
            |path: &str| cfg.endpoint.as_ref().map(|e| format!("{}/{path}", e.trim_end_matches('/')));
        let mut spans =
            opentelemetry_otlp::SpanExporter::builder().with_http().with_http_client(client.clone());
        if let Some(url) = signal("v1/traces") {
            spans = spans.with_endpoint(url);
        }
        let spans = spans.build().map_err(|e| otel_err("span exporter", e))?;
        let mut metrics = opentelemetry_otlp::MetricExporter::builder().with_http().with_http_client(client);
        if let Some(url) = signal("v1/metrics") {
            metrics = metrics.with_endpoint(url);
        }
        let metrics = metrics.build().map_err(|e| otel_err("metric exporter", e))?;
        Ok(OtlpExporter::with_exporters(spans, metrics, cfg))
    }

    /// An exporter on the given SDK exporters (the SDK's in-memory ones in tests), batching
    /// spans and pushing metrics every `cfg.export_interval`.
    pub fn with_exporters(
        spans: impl SpanExporter + 'static,
        metrics: impl PushMetricExporter,
        cfg: &OtlpConfig,
    ) -> OtlpExporter {
        let resource = Resource::builder().with_service_name(cfg.service_name.clone()).build();
        // OTEL_SERVICE_NAME, when set, wins over the configured name.
        let resource = match std::env::var("OTEL_SERVICE_NAME") {
            Ok(name) if !name.trim().is_empty() => Resource::builder().with_service_name(name).build(),
            _ => resource,
        };
        let tracer_provider =
            SdkTracerProvider::builder().with_batch_exporter(spans).with_resource(resource.clone()).build();
        let mut reader = PeriodicReader::builder(metrics);
        if let Some(every) = cfg.export_interval {
            reader = reader.with_interval(every);
        }
        let meter_provider =
            SdkMeterProvider::builder().with_reader(reader.build()).with_resource(resource).build();
        let meter = meter_provider.meter("ztick");
        let counter = |name: &'static str, description: &'static str| {
            meter.u64_counter(name).with_unit("{message}").with_description(description).build()
        };
        OtlpExporter {
            duration: meter
                .f64_histogram(OPERATION_DURATION)
                .with_unit("s")
                .with_description("Latency of each message of a measured stream (send to receipt, or a request's round trip)")
                .with_boundaries(DURATION_BUCKETS_S.to_vec())
                .build(),
            sent: counter(semconv::SENT_MESSAGES, "Messages a producer sent"),
            consumed: counter(semconv::CONSUMED_MESSAGES, "Messages a consumer received"),
            gaps: counter(semconv::ZTICK_GAPS, "Messages found missing (sequence gaps), repaired or not"),
            repaired: counter(semconv::ZTICK_REPAIRED, "Messages delivered through repair"),
            unrecoverable: counter(semconv::ZTICK_UNRECOVERABLE, "Messages lost for good"),
            dropped: counter(semconv::ZTICK_DROPPED, "Messages dropped at a high-water mark or a stop"),
            intervals_lost: meter
                .u64_counter(semconv::ZTICK_INTERVALS_LOST)
                .with_unit("{interval}")
                .with_description("Latency intervals the exporter received too late to keep")
                .build(),
            tracer_provider,
            meter_provider,
            bound: Mutex::new(HashMap::new()),
        }
    }

    /// A `tracing` layer that turns spans (ztick's `latency` spans among them) into
    /// OpenTelemetry spans for this exporter. Give it a filter: unfiltered it would export
    /// every span of every crate.
    pub fn tracing_layer<S>(&self) -> tracing_opentelemetry::OpenTelemetryLayer<S, SdkTracer>
    where
        S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
    {
        tracing_opentelemetry::layer().with_tracer(self.tracer_provider.tracer("ztick"))
    }

    /// The attributes metrics of a stream carry: `messaging.system` and the stream's own.
    pub fn attributes(attributes: &MessagingAttributes) -> Vec<KeyValue> {
        let a = attributes;
        let mut kv = vec![
            KeyValue::new(semconv::MESSAGING_SYSTEM, semconv::SYSTEM_ZEROMQ),
            KeyValue::new(semconv::OPERATION_NAME, a.operation_name.clone()),
            KeyValue::new(semconv::OPERATION_TYPE, a.operation_type.as_str()),
            KeyValue::new(semconv::DESTINATION_NAME, a.destination.clone()),
        ];
        if let Some(t) = a.network_transport() {
            kv.push(KeyValue::new(semconv::NETWORK_TRANSPORT, t));
        }
        if let Some(h) = &a.server_address {
            kv.push(KeyValue::new(semconv::SERVER_ADDRESS, h.clone()));
        }
        if let Some(p) = a.server_port {
            kv.push(KeyValue::new(semconv::SERVER_PORT, i64::from(p)));
        }
        kv
    }

    fn bound(&self, interval: &Interval) -> Arc<Bound> {
        let mut map = self.bound.lock().unwrap_or_else(|e| e.into_inner());
        let key = (Arc::clone(&interval.source), Arc::clone(&interval.attributes));
        Arc::clone(map.entry(key).or_insert_with(|| {
            let kv = OtlpExporter::attributes(&interval.attributes);
            Arc::new(Bound {
                duration: self.duration.bind(&kv),
                sent: self.sent.bind(&kv),
                consumed: self.consumed.bind(&kv),
                gaps: self.gaps.bind(&kv),
                repaired: self.repaired.bind(&kv),
                dropped: self.dropped.bind(&kv),
            })
        }))
    }

    /// Records one interval: every latency it holds into [`OPERATION_DURATION`] (seconds),
    /// its message count into [`SENT_MESSAGES`](semconv::SENT_MESSAGES) or
    /// [`CONSUMED_MESSAGES`](semconv::CONSUMED_MESSAGES) by its operation type, and its gaps,
    /// repairs and drops into ztick's counters. Runs on the exporting thread, once per
    /// interval; the cost is one bound-instrument call per value recorded.
    pub fn record_interval(&self, interval: &Interval) {
        let b = self.bound(interval);
        let hist = interval.latency.as_histogram();
        for v in hist.iter_recorded() {
            // Each slot's values at its median, in seconds: within the histogram's 0.1 %.
            let secs = hist.median_equivalent(v.value_iterated_to()) as f64 / 1e9;
            for _ in 0..v.count_at_value() {
                b.duration.record(secs);
            }
        }
        let c = &interval.counts;
        match interval.attributes.operation_type {
            semconv::OperationType::Send => b.sent.add(c.messages),
            _ => b.consumed.add(c.messages),
        }
        b.gaps.add(c.gaps);
        b.repaired.add(c.repaired);
        b.dropped.add(c.dropped);
    }

    /// Adds end-of-run totals that no interval carried (a publisher's sends, a subscriber's
    /// repairs and unrecoverable losses, a worker's drops) to the counters, with `attributes`.
    pub fn add_totals(&self, attributes: &MessagingAttributes, totals: &RunTotals) {
        let kv = OtlpExporter::attributes(attributes);
        let add = |c: &Counter<u64>, n: u64| {
            if n > 0 {
                c.add(n, &kv);
            }
        };
        add(&self.sent, totals.sent);
        add(&self.consumed, totals.consumed);
        add(&self.gaps, totals.gaps);
        add(&self.repaired, totals.repaired);
        add(&self.unrecoverable, totals.unrecoverable);
        add(&self.dropped, totals.dropped);
    }

    /// Counts intervals that were dropped before they reached this exporter.
    pub fn add_intervals_lost(&self, n: u64) {
        if n > 0 {
            self.intervals_lost.add(n, &[KeyValue::new(semconv::MESSAGING_SYSTEM, semconv::SYSTEM_ZEROMQ)]);
        }
    }

    /// Pushes everything recorded so far, now.
    ///
    /// # Errors
    /// [`Error::Config`] when an export failed (the collector unreachable, say).
    pub fn flush(&self) -> Result<()> {
        self.meter_provider.force_flush().map_err(|e| otel_err("flushing metrics", e))?;
        self.tracer_provider.force_flush().map_err(|e| otel_err("flushing spans", e))
    }

    /// Flushes and stops the export threads.
    ///
    /// # Errors
    /// As [`flush`](Self::flush).
    pub fn shutdown(self) -> Result<()> {
        let flushed = self.flush();
        let m = self.meter_provider.shutdown().map_err(|e| otel_err("stopping the metric exporter", e));
        let t = self.tracer_provider.shutdown().map_err(|e| otel_err("stopping the span exporter", e));
        flushed.and(m).and(t)
    }
}

/// Totals a run adds to the counters at its end ([`OtlpExporter::add_totals`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunTotals {
    /// Messages sent.
    pub sent: u64,
    /// Messages received (beyond those the intervals counted).
    pub consumed: u64,
    /// Messages found missing (beyond those the intervals counted).
    pub gaps: u64,
    /// Messages repaired.
    pub repaired: u64,
    /// Messages lost for good.
    pub unrecoverable: u64,
    /// Messages dropped.
    pub dropped: u64,
}

/// `OTEL_EXPORTER_OTLP_TIMEOUT` (ms), else the specification's 10 s.
fn env_timeout() -> Duration {
    std::env::var("OTEL_EXPORTER_OTLP_TIMEOUT")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(Duration::from_secs(10), Duration::from_millis)
}

/// The exporter's HTTP client: `ureq`, blocking inside the SDK's export threads.
#[derive(Debug, Clone)]
struct UreqClient {
    agent: ureq::Agent,
}

impl UreqClient {
    fn new(timeout: Duration) -> UreqClient {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            // The exporter reads the status itself (and retries where the spec says to).
            .http_status_as_error(false)
            .build()
            .new_agent();
        UreqClient { agent }
    }
}

/// The largest response body read from a collector.
const MAX_RESPONSE_BYTES: u64 = 4 << 20;

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for UreqClient {
    async fn send_bytes(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> std::result::Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        // The SDK drives this future on its own export thread (block_on): blocking is fine.
        let request = request.map(|b| b.to_vec());
        let mut response = self.agent.run(request)?;
        let body = response.body_mut().with_config().limit(MAX_RESPONSE_BYTES).read_to_vec()?;
        let (parts, _) = response.into_parts();
        Ok(http::Response::from_parts(parts, bytes::Bytes::from(body)))
    }
}
