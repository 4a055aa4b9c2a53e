//! Round-trip latency: a REQ worker times each echo from a REP worker (`local-lat`: a
//! ROUTER, which can leave a stranger's request unanswered).

use std::time::{Duration, Instant};

use ztick::curve::Curve;
use ztick::metrics::{IntervalCounts, IntervalReporter, IntervalSender, LatencyRecorder};
use ztick::{
    now_ns, CoreId, Endpoint, Engine, Error, Handler, IdleStrategy, Inbound, Operation, Result, SocketId,
    SocketKind, SocketOptions, SocketSpec, Transport, WorkerCtx,
};

use super::{frame_limit, trace_refused};
use crate::schema::{to_line, LatJson};

/// Settings shared by the latency tools.
#[derive(Debug, Clone)]
pub(crate) struct LatSide {
    /// Message size in bytes.
    pub(crate) size: usize,
    /// Timed round trips.
    pub(crate) count: u64,
    /// Untimed round trips before timing starts.
    pub(crate) warmup: u64,
    /// The worker's idle strategy.
    pub(crate) idle: IdleStrategy,
    /// Core to pin the worker to.
    pub(crate) pin: Option<CoreId>,
    /// Give up when no reply arrives for this long (`None`: wait forever, as libzmq's tools do).
    pub(crate) timeout: Option<Duration>,
    /// This side's CURVE role (the system libzmq build only).
    pub(crate) curve: Option<Curve>,
    /// A CURVE server's ZAP domain, set with an allow-list so that it fails closed.
    pub(crate) zap_domain: Option<&'static str>,
    /// Where the timing side's one-second round-trip histograms go (`--hlog`, `--otlp`).
    pub(crate) intervals: Option<IntervalSender>,
}

impl LatSide {
    /// `count` round trips of `size` bytes, 1000 warm-up, blocking idle, no pinning.
    pub(crate) fn new(size: usize, count: u64) -> Self {
        LatSide {
            size,
            count,
            warmup: 1000,
            idle: IdleStrategy::BLOCK,
            pin: None,
            timeout: None,
            curve: None,
            zap_domain: None,
            intervals: None,
        }
    }
}

/// Settings for `ztick lat`: both ends in one process.
#[derive(Debug, Clone)]
pub(crate) struct LatOptions {
    /// The transport between the two workers.
    pub(crate) transport: Transport,
    /// Size, count, idle strategy and the REQ worker's core.
    pub(crate) side: LatSide,
    /// Core for the REP (echo) worker.
    pub(crate) echo_pin: Option<CoreId>,
    /// Let spinning workers exceed the core budget.
    pub(crate) force: bool,
    /// Cores for libzmq's I/O thread (`ZMQ_THREAD_AFFINITY_CPU_ADD`); empty: unpinned.
    pub(crate) io_cores: Vec<CoreId>,
    /// The REP (echo) worker's CURVE role; `side.curve` is the REQ worker's.
    pub(crate) echo_curve: Option<Curve>,
}

/// The result of a latency run: libzmq's figures plus the full distribution.
#[derive(Debug, Clone)]
pub(crate) struct LatReport {
    /// Message size in bytes.
    pub(crate) size: usize,
    /// Timed round trips.
    pub(crate) count: u64,
    /// Wall time of the timed round trips, in nanoseconds.
    pub(crate) elapsed_ns: u64,
    /// Every round trip, in nanoseconds.
    pub(crate) round_trips: LatencyRecorder,
}

impl LatReport {
    /// libzmq's figure: elapsed / (round trips x 2), in microseconds (one way).
    pub(crate) fn avg_latency_us(&self) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        self.elapsed_ns as f64 / (self.count as f64 * 2.0) / 1000.0
    }

    /// The lines libzmq's `remote_lat` prints, then HDR percentiles of the round trip.
    pub(crate) fn to_text(&self) -> String {
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
    pub(crate) fn to_json(&self) -> String {
        let j = LatJson {
            size: self.size as u64,
            count: self.count,
            avg_latency_us: self.avg_latency_us(),
            latency_ns: self.round_trips.summary(),
        };
        to_line(&j)
    }
}

/// The REQ side: sends a request, times its reply, sends the next; on its worker thread.
struct Timer {
    req: SocketId,
    payload: Vec<u8>,
    /// Replies received so far, warm-up included.
    done_rounds: u64,
    warmup: u64,
    total: u64,
    sent_at: u64,
    /// When the first timed request left.
    start: u64,
    /// Every timed round trip of the run; with `intervals`, of the intervals closed so far.
    rec: LatencyRecorder,
    /// The round trips of the current second, for `--hlog`/`--otlp`. When set, each round
    /// trip is recorded here only (one histogram record per message, as without export) and
    /// the interval is merged into `rec` once when it closes.
    intervals: Option<IntervalReporter>,
    done: crossbeam_channel::Sender<(u64, LatencyRecorder)>,
}

impl Timer {
    /// Closes the current interval (handing its histogram over) when a second has passed,
    /// or at once when `last`.
    fn roll_interval(&mut self, now: u64, last: bool) {
        if let Some(r) = self.intervals.as_mut() {
            if last || r.is_due(now) {
                // Uncorrected values only, so the histogram's count is the round trips'.
                let messages = r.current().len();
                self.rec.merge(r.current());
                r.report_with(now, IntervalCounts { messages, ..IntervalCounts::default() });
            }
        }
    }
}

impl Timer {
    fn send_next(&mut self, ctx: &mut WorkerCtx<'_>) -> Result<()> {
        self.sent_at = now_ns();
        if self.done_rounds == self.warmup {
            self.start = self.sent_at;
        }
        ctx.send(self.req, &self.payload)
    }
}

impl Handler for Timer {
    fn on_start(&mut self, ctx: &mut WorkerCtx<'_>) -> Result<()> {
        if self.total == 0 {
            let _ = self.done.send((0, LatencyRecorder::new()));
            ctx.stop();
            return Ok(());
        }
        self.send_next(ctx)
    }

    fn on_message(&mut self, ctx: &mut WorkerCtx<'_>, _: SocketId, msg: &Inbound<'_>) -> Result<()> {
        let now = now_ns();
        if msg.size_bytes() != self.payload.len() {
            // Out of step with the echo: stop rather than time garbage.
            ctx.stop();
            return Err(Error::Decode {
                context: "REQ latency socket".into(),
                reason: format!("reply of {} bytes to a request of {}", msg.size_bytes(), self.payload.len()),
            });
        }
        if self.done_rounds >= self.warmup {
            match self.intervals.as_mut() {
                Some(r) => r.record(now - self.sent_at),
                None => self.rec.record(now - self.sent_at),
            }
        }
        self.done_rounds += 1;
        self.roll_interval(now, self.done_rounds == self.total);
        if self.done_rounds == self.total {
            let _ = self.done.send((now - self.start, std::mem::take(&mut self.rec)));
            ctx.stop();
            return Ok(());
        }
        self.send_next(ctx)
    }
}

/// Runs the REQ side against a REP at `endpoint` (bound elsewhere): `remote-lat`, and the
/// timing half of `lat`. Sends `warmup + count` requests, timing the last `count`.
pub(crate) fn measure_round_trips(engine: &Engine, endpoint: Endpoint, side: &LatSide) -> Result<LatReport> {
    let (done_tx, done_rx) = crossbeam_channel::bounded(1);
    let mut b = engine.worker("req").idle(side.idle).pin(side.pin);
    let ep_text = endpoint.to_string();
    let opts = SocketOptions::default().max_msg_bytes(frame_limit(side.size));
    let req =
        b.socket(SocketSpec::connect(SocketKind::Req, endpoint).options(with_curve(opts, &side.curve, None)));
    let timer = Timer {
        req,
        payload: vec![0u8; side.size],
        done_rounds: 0,
        warmup: side.warmup,
        total: side.warmup + side.count,
        sent_at: 0,
        start: 0,
        rec: LatencyRecorder::new(),
        intervals: side
            .intervals
            .clone()
            .map(|tx| IntervalReporter::new("round trip", Duration::from_secs(1), now_ns()).with_sender(tx)),
        done: done_tx,
    };
    let worker = b.handler(timer).spawn()?;
    let result = wait(&done_rx, side.timeout, &ep_text, Operation::Recv);
    let report = worker.stop()?;
    if report.stats.handler_errors > 0 {
        return Err(Error::Decode {
            context: format!("REQ socket at {ep_text}"),
            reason: "a reply's size differed from its request's; is the peer an echo (local-lat) with the same size?".into(),
        });
    }
    let (elapsed_ns, round_trips) = result?;
    Ok(LatReport { size: side.size, count: side.count, elapsed_ns, round_trips })
}

/// Runs the echo server for `count` round trips (`local-lat`); with `bind` false it
/// connects. Returns the requests refused.
///
/// The socket is a ROUTER, which REQ peers (ours, libzmq's `remote_lat`) cannot tell from
/// libzmq's REP: a REP must answer every request before it can read the next, whereas a
/// ROUTER can leave a request unanswered. So a request that is not one frame of exactly
/// `size` bytes is refused: counted and traced, never echoed, and no progress; a stranger
/// cannot finish the run for the real peer, nor make it echo other sizes.
pub(crate) fn serve_echo(engine: &Engine, endpoint: Endpoint, bind: bool, side: &LatSide) -> Result<u64> {
    let total = side.warmup + side.count;
    if total == 0 {
        return Ok(0);
    }
    let (done_tx, done_rx) = crossbeam_channel::bounded(1);
    let (mut echoed, mut refused) = (0u64, 0u64);
    let size = side.size;
    let spec = if bind {
        SocketSpec::bind(SocketKind::Router, endpoint.clone())
    } else {
        SocketSpec::connect(SocketKind::Router, endpoint.clone())
    };
    let mut b = engine.worker("rep").idle(side.idle).pin(side.pin);
    let opts = lingering(side.timeout).max_msg_bytes(frame_limit(size));
    b.socket(spec.options(with_curve(opts, &side.curve, side.zap_domain)));
    let worker = b
        .on_message(move |ctx, id, msg| {
            // A REQ's request: [routing id][empty delimiter][body].
            let frames: Vec<&[u8]> = msg.iter().collect();
            match frames.as_slice() {
                [peer, delimiter, body] if delimiter.is_empty() && body.len() == size => {
                    ctx.send_parts(id, &[peer, b"", body])?;
                    echoed += 1;
                }
                other => {
                    refused += 1;
                    let body = other.iter().skip(1).map(|f| f.len()).sum::<usize>();
                    let detail = format!("{} frame(s), {body} bytes after the routing id; expected a REQ request of {size} bytes", other.len());
                    trace_refused("local-lat", refused, &detail);
                }
            }
            if echoed == total {
                let _ = done_tx.send(refused);
                ctx.stop();
            }
            Ok(())
        })
        .spawn()?;
    let res = wait(&done_rx, side.timeout, &endpoint.to_string(), Operation::Recv);
    worker.stop()?;
    res
}

/// libzmq's tools close with an infinite linger so the last message leaves; so do ours,
/// unless a timeout bounds the run, which then bounds the linger too.
pub(super) fn lingering(timeout: Option<Duration>) -> SocketOptions {
    SocketOptions::default().linger(timeout)
}

/// `opts` with `curve` set when there is one, and the ZAP domain that makes a server with
/// an allow-list fail closed.
pub(super) fn with_curve(
    opts: SocketOptions,
    curve: &Option<Curve>,
    zap_domain: Option<&str>,
) -> SocketOptions {
    let opts = match curve {
        Some(_) => opts.curve(curve.clone()),
        None => opts,
    };
    match zap_domain {
        Some(d) => opts.zap_domain(d),
        None => opts,
    }
}

/// Waits for a worker's result: up to `timeout` (then a timeout error naming `endpoint`
/// and `op`), or for as long as it takes when `None`.
pub(super) fn wait<T>(
    rx: &crossbeam_channel::Receiver<T>,
    timeout: Option<Duration>,
    endpoint: &str,
    op: Operation,
) -> Result<T> {
    match timeout {
        Some(t) => rx.recv_timeout(t).map_err(|_| Error::Timeout {
            op,
            endpoint: endpoint.to_owned(),
            ms: t.as_millis() as u64,
        }),
        None => {
            rx.recv().map_err(|_| Error::Stopped(format!("the worker on {endpoint} ended before finishing")))
        }
    }
}

/// `ztick lat`: REP echo and REQ timer on two workers of one engine.
pub(crate) fn run_lat(opts: &LatOptions) -> Result<LatReport> {
    // inproc needs no I/O thread; with none, two spinning workers fit on two cores.
    let eb = Engine::builder()
        .io_threads(if opts.transport == Transport::Inproc { 0 } else { 1 })
        .force_core_budget(opts.force)
        .io_cores(&opts.io_cores);
    let engine = eb.build()?;
    let ep = Endpoint::local(opts.transport, "ztick-lat");
    let side = &opts.side;
    let total = side.warmup + side.count;
    let mut echo = engine.worker("rep").idle(side.idle).pin(opts.echo_pin).batch_max(1);
    let echo_opts =
        with_curve(SocketOptions::default().max_msg_bytes(frame_limit(side.size)), &opts.echo_curve, None);
    let rep = echo.socket(SocketSpec::bind(SocketKind::Rep, ep.clone()).options(echo_opts));
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
    if timed.timeout.is_none() {
        // Both ends are ours: a run that stalls this long is broken, not slow.
        timed.timeout = Some(Duration::from_secs(600));
    }
    let report = measure_round_trips(&engine, bound, &timed);
    let echo_report = echo.stop();
    ep.remove_ipc_file();
    tracing::debug!(elapsed = ?started.elapsed(), "lat run finished");
    echo_report?;
    report
}
