//! Round-trip latency: a REQ worker times each echo from a REP worker.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::{SocketKind, SocketOptions};
use crate::endpoint::{Endpoint, Transport};
use crate::engine::{Engine, IdleStrategy, SocketSpec};
use crate::error::{Error, Operation, Result};
use crate::metrics::{LatencyRecorder, LatencySummary};
use crate::sys::now_ns;

/// Settings shared by the latency tools.
#[derive(Debug, Clone)]
pub struct LatSide {
    /// Message size in bytes.
    pub size: usize,
    /// Timed round trips.
    pub count: u64,
    /// Untimed round trips before timing starts (at least 1: it carries the first send).
    pub warmup: u64,
    /// The worker's idle strategy.
    pub idle: IdleStrategy,
    /// Core to pin the worker to.
    pub pin: Option<usize>,
    /// Give up when no reply arrives for this long (`None`: wait forever, as libzmq's tools do).
    pub timeout: Option<Duration>,
}

impl LatSide {
    /// `count` round trips of `size` bytes, 1000 warm-up, blocking idle, no pinning.
    pub fn new(size: usize, count: u64) -> Self {
        LatSide {
            size,
            count,
            warmup: 1000,
            idle: IdleStrategy::BLOCK,
            pin: None,
            timeout: None,
        }
    }
}

/// Settings for `ztick lat`: both ends in one process.
#[derive(Debug, Clone)]
pub struct LatOptions {
    /// The transport between the two workers.
    pub transport: Transport,
    /// Size, count, idle strategy and the REQ worker's core.
    pub side: LatSide,
    /// Core for the REP (echo) worker.
    pub echo_pin: Option<usize>,
    /// Let spinning workers exceed the core budget.
    pub force: bool,
}

/// The result of a latency run: libzmq's figures plus the full distribution.
#[derive(Debug, Clone)]
pub struct LatReport {
    /// Message size in bytes.
    pub size: usize,
    /// Timed round trips.
    pub count: u64,
    /// Wall time of the timed round trips, in nanoseconds.
    pub elapsed_ns: u64,
    /// Every round trip, in nanoseconds.
    pub round_trips: LatencyRecorder,
}

#[derive(Serialize)]
struct LatJson<'a> {
    size: usize,
    count: u64,
    avg_latency_us: f64,
    latency_ns: &'a LatencySummary,
}

impl LatReport {
    /// libzmq's figure: elapsed / (round trips x 2), in microseconds (one way).
    pub fn avg_latency_us(&self) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        self.elapsed_ns as f64 / (self.count as f64 * 2.0) / 1000.0
    }

    /// The lines libzmq's `remote_lat` prints, then HDR percentiles of the round trip.
    pub fn to_text(&self) -> String {
        let s = self.round_trips.summary();
        let us = |ns: u64| ns as f64 / 1000.0;
        format!(
            "message size: {} [B]\nroundtrip count: {}\naverage latency: {:.3} [us]\n\
             round trip [us]: p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  p99.99 {:.3}  max {:.3}  mean {:.3}\n",
            self.size,
            self.count,
            self.avg_latency_us(),
            us(s.p50),
            us(s.p90),
            us(s.p99),
            us(s.p99_9),
            us(s.p99_99),
            us(s.max),
            s.mean / 1000.0
        )
    }

    /// One JSON object: `size`, `count`, `avg_latency_us`, and `latency_ns` per round trip.
    pub fn to_json(&self) -> String {
        let summary = self.round_trips.summary();
        let j = LatJson {
            size: self.size,
            count: self.count,
            avg_latency_us: self.avg_latency_us(),
            latency_ns: &summary,
        };
        serde_json::to_string(&j).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

/// The REQ side's state, owned by its message handler on the worker thread.
struct Timer {
    payload: Vec<u8>,
    done_rounds: u64,
    warmup: u64,
    total: u64,
    sent_at: u64,
    start: u64,
    rec: LatencyRecorder,
}

impl Timer {
    /// Handles one reply; returns the report when the last one is in.
    fn on_reply(&mut self, size: usize) -> Result<Option<(u64, LatencyRecorder)>> {
        let now = now_ns();
        if size != self.payload.len() {
            return Err(Error::Decode {
                context: "REQ latency socket".into(),
                reason: format!(
                    "reply of {size} bytes to a request of {}",
                    self.payload.len()
                ),
            });
        }
        if self.done_rounds == self.warmup {
            self.start = self.sent_at;
        }
        if self.done_rounds >= self.warmup {
            self.rec.record(now - self.sent_at);
        }
        self.done_rounds += 1;
        if self.done_rounds == self.total {
            let rec = std::mem::take(&mut self.rec);
            return Ok(Some((now - self.start, rec)));
        }
        Ok(None)
    }
}

/// Runs the REQ side against a REP at `endpoint` (bound elsewhere): `remote-lat`, and the
/// timing half of `lat`.
pub fn measure_round_trips(
    engine: &Engine,
    endpoint: Endpoint,
    side: &LatSide,
) -> Result<LatReport> {
    let warmup = side.warmup.max(1);
    let mut timer = Timer {
        payload: vec![0u8; side.size],
        done_rounds: 0,
        warmup,
        total: warmup + side.count,
        sent_at: 0,
        start: 0,
        rec: LatencyRecorder::new(),
    };
    let (done_tx, done_rx) = crossbeam_channel::bounded(1);
    let mut b = engine.worker("req").idle(side.idle).pin(side.pin);
    let ep_text = endpoint.to_string();
    let req = b.socket(SocketSpec::connect(SocketKind::Req, endpoint));
    let worker = b
        .on_message(move |ctx, id, msg| {
            match timer.on_reply(msg.size())? {
                Some(done) => {
                    let _ = done_tx.send(done);
                    ctx.stop();
                }
                None => {
                    timer.sent_at = now_ns();
                    ctx.send(id, &timer.payload)?;
                }
            }
            Ok(())
        })
        .spawn()?;
    let first = vec![0u8; side.size];
    // The first request goes out from the worker itself; its round trip is warm-up.
    worker.handle().run(move |ctx| {
        let _ = ctx.send(req, &first);
    });
    let result = match side.timeout {
        Some(t) => done_rx.recv_timeout(t).map_err(|_| Error::Timeout {
            op: Operation::Recv,
            endpoint: ep_text.clone(),
            ms: t.as_millis() as u64,
        }),
        None => done_rx
            .recv()
            .map_err(|_| Error::Stopped("latency worker ended before the last reply".into())),
    };
    let report = worker.stop()?;
    let (elapsed_ns, round_trips) = result?;
    if report.stats.handler_errors > 0 {
        return Err(Error::Decode {
            context: format!("REQ socket at {ep_text}"),
            reason: format!("{} replies had the wrong size", report.stats.handler_errors),
        });
    }
    Ok(LatReport {
        size: side.size,
        count: side.count,
        elapsed_ns,
        round_trips,
    })
}

/// Runs a REP echo server for `count` round trips (`local-lat`); with `bind` false it connects.
pub fn serve_echo(engine: &Engine, endpoint: Endpoint, bind: bool, side: &LatSide) -> Result<()> {
    let total = side.warmup + side.count;
    let (done_tx, done_rx) = crossbeam_channel::bounded(1);
    let mut echoed = 0u64;
    let spec = if bind {
        SocketSpec::bind(SocketKind::Rep, endpoint.clone())
    } else {
        SocketSpec::connect(SocketKind::Rep, endpoint.clone())
    };
    let mut b = engine.worker("rep").idle(side.idle).pin(side.pin);
    b.socket(spec.options(lingering()));
    let worker = b
        .on_message(move |ctx, id, msg| {
            ctx.send(id, msg.last())?;
            echoed += 1;
            if echoed == total {
                let _ = done_tx.send(());
                ctx.stop();
            }
            Ok(())
        })
        .spawn()?;
    let res = wait(&done_rx, side.timeout, &endpoint);
    worker.stop()?;
    res
}

/// libzmq's tools close with an infinite linger so the last message leaves; so do ours.
pub(super) fn lingering() -> SocketOptions {
    let mut o = SocketOptions::default();
    o.linger(None);
    o
}

pub(super) fn wait(
    rx: &crossbeam_channel::Receiver<()>,
    timeout: Option<Duration>,
    ep: &Endpoint,
) -> Result<()> {
    let r = match timeout {
        Some(t) => rx.recv_timeout(t).map_err(|_| Error::Timeout {
            op: Operation::Recv,
            endpoint: ep.to_string(),
            ms: t.as_millis() as u64,
        }),
        None => rx
            .recv()
            .map_err(|_| Error::Stopped("worker ended early".into())),
    };
    r.map(drop)
}

/// `ztick lat`: REP echo and REQ timer on two workers of one engine.
pub fn run_lat(opts: &LatOptions) -> Result<LatReport> {
    let mut eb = Engine::builder();
    // inproc needs no I/O thread; with none, two spinning workers fit on two cores.
    eb.io_threads(if opts.transport == Transport::Inproc {
        0
    } else {
        1
    })
    .force_core_budget(opts.force);
    let engine = eb.build()?;
    let ep = Endpoint::local(opts.transport, "ztick-lat");
    let side = &opts.side;
    let total = side.warmup.max(1) + side.count;
    let mut echo = engine
        .worker("rep")
        .idle(side.idle)
        .pin(opts.echo_pin)
        .batch_max(1);
    let rep = echo.socket(SocketSpec::bind(SocketKind::Rep, ep.clone()));
    let mut echoed = 0u64;
    let echo = echo
        .on_message(move |ctx, id, msg| {
            ctx.send(id, msg.last())?;
            echoed += 1;
            if echoed == total {
                ctx.stop();
            }
            Ok(())
        })
        .spawn()?;
    let bound: Endpoint = echo.endpoint(rep).unwrap_or_default().parse()?;
    let started = Instant::now();
    let mut timed = side.clone();
    timed.warmup = side.warmup.max(1);
    if timed.timeout.is_none() {
        // Both ends are ours: a run that stalls this long is broken, not slow.
        timed.timeout = Some(Duration::from_secs(600));
    }
    let report = measure_round_trips(&engine, bound, &timed);
    let echo_report = echo.stop();
    if let Some(p) = ep.ipc_path() {
        let _ = std::fs::remove_file(p);
    }
    tracing::debug!(elapsed = ?started.elapsed(), "lat run finished");
    echo_report?;
    report
}
