//! What a measuring verb exports besides its report: `--hlog FILE` (HdrHistogram's interval
//! log, one histogram per reporting interval) and `--otlp[=URL]` (OpenTelemetry over
//! OTLP/HTTP, feature `otlp`).
//!
//! The workers hand each finished interval over ([`ztick::metrics::interval_channel`]); one
//! thread here, the metrics thread, writes it to the log and records it for the exporter,
//! then gives the recorder back. Nothing of this runs per message on a worker.

use std::io::BufWriter;
use std::path::{Path, PathBuf};
#[cfg(feature = "otlp")]
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use crossbeam_channel::RecvTimeoutError;
use ztick::metrics::{interval_channel, HlogWriter, IntervalReceiver, IntervalSender, MessagingAttributes};
use ztick::{now_ns, Error};

/// Intervals that may wait for the metrics thread: a few seconds of every stream.
const QUEUE_INTERVALS: usize = 1024;

/// `--otlp[=URL]` as given: `None` when absent, `Some("")` for the `OTEL_*` variables'
/// endpoint, `Some(url)` for a collector's base URL.
pub(crate) type OtlpFlag = Option<String>;

/// The OpenTelemetry exporter of this run, when `--otlp` asked for one (feature `otlp`).
#[derive(Clone, Default)]
pub(crate) struct Telemetry {
    #[cfg(feature = "otlp")]
    pub(crate) exporter: Option<Arc<ztick::metrics::otlp::OtlpExporter>>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry").field("on", &self.is_on()).finish()
    }
}

impl Telemetry {
    /// The exporter `flag` asks for; none without the flag.
    ///
    /// # Errors
    /// [`Error::Config`] when this build has no `otlp` feature, or the exporter cannot be
    /// set up from the flag and the `OTEL_*` variables.
    pub(crate) fn from_flag(flag: &OtlpFlag) -> Result<Telemetry, Error> {
        let Some(url) = flag else { return Ok(Telemetry::default()) };
        #[cfg(feature = "otlp")]
        {
            use ztick::metrics::otlp::{OtlpConfig, OtlpExporter};
            // One second, like the intervals, unless the environment says otherwise.
            let from_env = std::env::var("OTEL_METRIC_EXPORT_INTERVAL").is_ok_and(|v| !v.trim().is_empty());
            let cfg = OtlpConfig {
                endpoint: (!url.is_empty()).then(|| url.clone()),
                export_interval: (!from_env).then_some(Duration::from_secs(1)),
                ..OtlpConfig::default()
            };
            Ok(Telemetry { exporter: Some(Arc::new(OtlpExporter::from_env(&cfg)?)) })
        }
        #[cfg(not(feature = "otlp"))]
        {
            Err(Error::config(
                "--otlp",
                if url.is_empty() { "(on)" } else { url.as_str() },
                "a ztick built with the otlp feature: cargo build --release --features otlp",
            ))
        }
    }

    /// Whether an exporter is set up.
    pub(crate) fn is_on(&self) -> bool {
        #[cfg(feature = "otlp")]
        {
            self.exporter.is_some()
        }
        #[cfg(not(feature = "otlp"))]
        {
            false
        }
    }

    /// Adds a run's end totals (messages sent or consumed, repairs, losses, drops) to the
    /// counters, for `attributes`' stream; nothing without an exporter.
    pub(crate) fn add_totals(&self, attributes: &MessagingAttributes, totals: Totals) {
        #[cfg(feature = "otlp")]
        if let Some(e) = &self.exporter {
            let t = ztick::metrics::otlp::RunTotals {
                sent: totals.sent,
                consumed: totals.consumed,
                gaps: 0,
                repaired: totals.repaired,
                unrecoverable: totals.unrecoverable,
                dropped: 0,
            };
            e.add_totals(attributes, &t);
        }
        #[cfg(not(feature = "otlp"))]
        let _ = (attributes, totals);
    }

    /// Pushes what is left and stops the exporter (once the last clone is dropped too).
    pub(crate) fn shutdown(self) {
        #[cfg(feature = "otlp")]
        if let Some(e) = self.exporter {
            match Arc::try_unwrap(e) {
                Ok(e) => {
                    if let Err(err) = e.shutdown() {
                        tracing::warn!(error = %err, "OTLP export at shutdown failed");
                        eprintln!("ztick: --otlp: the last export failed: {err}");
                    }
                }
                Err(e) => {
                    let _ = e.flush();
                }
            }
        }
    }
}

/// End-of-run totals for [`Telemetry::add_totals`] (read only by the `otlp` build).
#[derive(Debug, Clone, Copy, Default)]
#[cfg_attr(not(feature = "otlp"), allow(dead_code))]
pub(crate) struct Totals {
    /// Messages sent.
    pub(crate) sent: u64,
    /// Messages received, beyond those the intervals counted.
    pub(crate) consumed: u64,
    /// Messages delivered through repair.
    pub(crate) repaired: u64,
    /// Messages lost for good.
    pub(crate) unrecoverable: u64,
}

/// The metrics thread of one run: receives intervals, writes `--hlog`, feeds `--otlp`.
pub(crate) struct Observer {
    tx: IntervalSender,
    stop: crossbeam_channel::Sender<()>,
    thread: Option<JoinHandle<Result<(), Error>>>,
    hlog: Option<PathBuf>,
}

impl Observer {
    /// Starts the metrics thread when the run asked for `--hlog` or `--otlp`; `comment`
    /// (the command line) heads the log.
    ///
    /// # Errors
    /// [`Error::Io`] when the log file cannot be created.
    pub(crate) fn start(
        hlog: Option<&Path>,
        telemetry: &Telemetry,
        comment: &str,
    ) -> Result<Option<Observer>, Error> {
        if hlog.is_none() && !telemetry.is_on() {
            return Ok(None);
        }
        let log = match hlog {
            Some(path) => {
                let file = std::fs::File::create(path).map_err(|e| Error::Io {
                    context: format!("creating --hlog {}", path.display()),
                    source: e,
                })?;
                let w = HlogWriter::new(BufWriter::new(file), now_ns(), SystemTime::now(), comment).map_err(
                    |e| Error::Io { context: format!("writing --hlog {}", path.display()), source: e },
                )?;
                Some((w, path.to_owned()))
            }
            None => None,
        };
        let (tx, rx) = interval_channel(QUEUE_INTERVALS);
        let (stop, stopped) = crossbeam_channel::bounded(1);
        let telemetry = telemetry.clone();
        let thread = std::thread::Builder::new()
            .name("ztick-metrics".into())
            .spawn(move || serve(rx, stopped, log, telemetry))
            .map_err(|e| Error::Io { context: "starting the metrics thread".into(), source: e })?;
        Ok(Some(Observer { tx, stop, thread: Some(thread), hlog: hlog.map(Path::to_owned) }))
    }

    /// A sender for the stream `source` with `attributes`, for a worker to hand its
    /// intervals to.
    pub(crate) fn sender(&self, source: &str, attributes: MessagingAttributes) -> IntervalSender {
        self.tx.clone().labelled(source, attributes)
    }

    /// Takes every interval still queued, flushes the log and returns its first failure.
    ///
    /// # Errors
    /// [`Error::Io`] when writing the log failed.
    pub(crate) fn finish(mut self) -> Result<(), Error> {
        let _ = self.stop.send(());
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(Error::Stopped(format!(
                "the metrics thread panicked{}",
                self.hlog.as_ref().map(|p| format!(" (writing {})", p.display())).unwrap_or_default()
            ))),
            None => Ok(()),
        }
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        let _ = self.stop.send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The metrics thread's loop: every interval to the log and the exporter, until stopped
/// and drained.
fn serve(
    rx: IntervalReceiver,
    stopped: crossbeam_channel::Receiver<()>,
    mut log: Option<(HlogWriter<BufWriter<std::fs::File>>, PathBuf)>,
    telemetry: Telemetry,
) -> Result<(), Error> {
    let mut first_error: Option<Error> = None;
    let mut stopping = false;
    loop {
        let interval = match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(i) => i,
            Err(RecvTimeoutError::Timeout) if !stopping => {
                stopping = stopped.try_recv().is_ok();
                continue;
            }
            // Stopped and nothing left, or every sender gone.
            Err(_) => break,
        };
        if let Some((w, path)) = log.as_mut() {
            if let Err(e) = w.write_interval(&interval) {
                if first_error.is_none() {
                    first_error =
                        Some(Error::Io { context: format!("writing --hlog {}", path.display()), source: e });
                }
            }
        }
        #[cfg(feature = "otlp")]
        if let Some(e) = &telemetry.exporter {
            e.record_interval(&interval);
        }
        rx.recycle(interval);
    }
    #[cfg(feature = "otlp")]
    if let Some(e) = &telemetry.exporter {
        e.add_intervals_lost(rx.lost());
    }
    #[cfg(not(feature = "otlp"))]
    let _ = &telemetry;
    if rx.lost() > 0 {
        eprintln!(
            "ztick: {} latency intervals were not exported in time (the metrics thread fell behind)",
            rx.lost()
        );
    }
    if let Some((mut w, path)) = log {
        if let Err(e) = w.flush() {
            first_error.get_or_insert(Error::Io {
                context: format!("writing --hlog {}", path.display()),
                source: e,
            });
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
