//! Round trips, REQ timing against REP echoing, on two pinned threads: through the engine
//! (two workers) or through bare `patterns::Socket`s on plain threads (the same libzmq, no
//! engine). The bench thread only hands out jobs of N round trips and collects the sum and
//! the histogram; every round trip is timed on the timing thread itself.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::BenchmarkGroup;
use crossbeam_channel::{Receiver, Sender};
use ztick::metrics::LatencyRecorder;
use ztick::patterns::Socket;
use ztick::{
    now_ns, Endpoint, Engine, Handle, Handler, IdleStrategy, Inbound, SocketId, SocketKind, SocketOptions,
    SocketSpec, Transport, Worker, WorkerCtx,
};

use super::{engine, pair_cores, pin_current, remove_ipc, report_hdr, spin_until, warm, STALL};

/// The sum of N round trips (ns) and each of them.
pub type Outcome = Result<(u64, LatencyRecorder), String>;

/// Something that times round trips on its own threads.
pub trait RoundTrip {
    /// Runs `iters` timed round trips.
    fn run(&mut self, iters: u64) -> (u64, LatencyRecorder);
}

/// Untimed round trips after start-up: connections made, caches and allocators warm.
pub fn warmup(size: usize) -> u64 {
    warm(if size >= 16 * 1024 { 20 } else { 200 })
}

/// Registers one round-trip benchmark `name` in `group`. The pair is started on the first
/// call (so a filtered-out case costs nothing), every round trip is also recorded in an
/// HdrHistogram (criterion's warm-up included), and the percentiles are printed after it.
pub fn bench_round_trip<P: RoundTrip>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    suite: &str,
    group: &str,
    name: &str,
    start: impl FnOnce() -> P,
) {
    let mut start = Some(start);
    let mut pair: Option<P> = None;
    let mut hdr = LatencyRecorder::new();
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            if pair.is_none() {
                pair = Some(start.take().expect("a pair is started once")());
            }
            let p = pair.as_mut().expect("started above");
            let (total, rec) = p.run(iters);
            hdr.merge(&rec);
            Duration::from_nanos(total)
        })
    });
    drop(pair);
    report_hdr(suite, &format!("{group}/{name}"), "round_trip", &hdr);
}

/// Waits for a job's outcome; a stalled or failed pair fails the bench loudly.
fn collect(results: &Receiver<Outcome>, what: &str) -> (u64, LatencyRecorder) {
    match results.recv_timeout(STALL) {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => panic!("{what}: {e}"),
        Err(_) => panic!("{what}: no result within {STALL:?}"),
    }
}

// ------------------------------------------------------------------------------ engine

/// Two engine workers: REQ timing in its handler (each reply sends the next request, with no
/// hand-off on the path), REP echoing in its handler. Both use the case's idle strategy.
pub struct EnginePair {
    jobs: Sender<u64>,
    results: Receiver<Outcome>,
    wake: Handle,
    timer: Option<Worker>,
    echo: Option<Worker>,
    endpoint: String,
    _engine: Engine,
}

struct Timer {
    req: SocketId,
    payload: Vec<u8>,
    jobs: Receiver<u64>,
    /// Round trips still to run in the current job; 0 when idle.
    left: u64,
    total: u64,
    sent_at: u64,
    rec: LatencyRecorder,
    results: Sender<Outcome>,
}

impl Timer {
    fn send(&mut self, ctx: &mut WorkerCtx<'_>) -> ztick::Result<()> {
        self.sent_at = now_ns();
        ctx.send(self.req, &self.payload)
    }
}

impl Handler for Timer {
    fn on_message(&mut self, ctx: &mut WorkerCtx<'_>, _: SocketId, msg: &Inbound<'_>) -> ztick::Result<()> {
        let now = now_ns();
        if self.left == 0 {
            return Ok(());
        }
        if msg.size_bytes() != self.payload.len() {
            self.left = 0;
            let _ = self.results.send(Err(format!(
                "reply of {} bytes to {}",
                msg.size_bytes(),
                self.payload.len()
            )));
            return Ok(());
        }
        let rtt = now - self.sent_at;
        self.rec.record(rtt);
        self.total += rtt;
        self.left -= 1;
        if self.left == 0 {
            let rec = std::mem::take(&mut self.rec);
            let _ = self.results.send(Ok((self.total, rec)));
            return Ok(());
        }
        self.send(ctx)
    }

    fn on_tick(&mut self, ctx: &mut WorkerCtx<'_>) -> ztick::Result<bool> {
        if self.left > 0 {
            return Ok(false);
        }
        let Ok(n) = self.jobs.try_recv() else { return Ok(false) };
        if n == 0 {
            let _ = self.results.send(Ok((0, LatencyRecorder::new())));
            return Ok(true);
        }
        self.left = n;
        self.total = 0;
        self.send(ctx)?;
        Ok(true)
    }
}

impl EnginePair {
    /// Starts the pair over `transport` with `size`-byte messages and runs the warm-up.
    pub fn start(transport: Transport, size: usize, idle: IdleStrategy) -> ztick::Result<EnginePair> {
        let engine = engine(transport);
        let (timer_core, echo_core) = pair_cores();
        let mut b = engine.worker("rtt-echo").idle(idle).pin(echo_core);
        let rep = b.socket(SocketSpec::bind(SocketKind::Rep, Endpoint::local(transport, "ztick-bench-rtt")));
        let echo = b.on_message(move |ctx, id, msg| ctx.send(id, msg.last())).spawn()?;
        let endpoint = echo.endpoint(rep).unwrap_or_default().to_owned();
        let (jobs_tx, jobs) = crossbeam_channel::bounded(1);
        let (results_tx, results) = crossbeam_channel::bounded(1);
        let mut b = engine.worker("rtt-timer").idle(idle).pin(timer_core);
        let req = b.socket(SocketSpec::connect(SocketKind::Req, endpoint.parse()?));
        let timer = Timer {
            req,
            payload: vec![0xA5; size],
            jobs,
            left: 0,
            total: 0,
            sent_at: 0,
            rec: LatencyRecorder::new(),
            results: results_tx,
        };
        let timer = b.handler(timer).spawn()?;
        let mut pair = EnginePair {
            jobs: jobs_tx,
            results,
            wake: timer.handle(),
            timer: Some(timer),
            echo: Some(echo),
            endpoint,
            _engine: engine,
        };
        pair.run(warmup(size));
        Ok(pair)
    }
}

impl RoundTrip for EnginePair {
    fn run(&mut self, iters: u64) -> (u64, LatencyRecorder) {
        self.jobs.send(iters).expect("timer worker running");
        // An empty closure wakes a parked worker; its loop then finds the job in `on_tick`.
        self.wake.run(|_| {});
        collect(&self.results, "engine round trips")
    }
}

impl Drop for EnginePair {
    fn drop(&mut self) {
        for w in [self.timer.take(), self.echo.take()].into_iter().flatten() {
            if let Err(e) = w.stop() {
                eprintln!("warning: stopping a round-trip worker: {e}");
            }
        }
        remove_ipc(&self.endpoint);
    }
}

// -------------------------------------------------------------------------------- bare

/// The same round trips on bare `patterns::Socket`s, each on a plain pinned thread: the
/// timing thread sends and waits in `zmq_poll` (or, spinning, polls with `ZMQ_DONTWAIT`),
/// the echo thread does the same. No engine, no worker loop, no handler.
///
/// `patterns::Socket` copies each received message out of libzmq (it has no borrowed
/// receive; the engine's handlers read libzmq's buffer in place): at 64 KiB that copy is a
/// few µs per round trip in the engine's favour.
pub struct BarePair {
    jobs: Sender<u64>,
    results: Receiver<Outcome>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    endpoint: String,
    _engine: Engine,
}

/// Waits for one whole message, blocking in `zmq_poll` or spinning (bounded by [`STALL`]).
fn recv_reply(sock: &mut Socket, frames: &mut Vec<Vec<u8>>, spin: bool) -> ztick::Result<()> {
    if spin {
        let mut failed = None;
        spin_until(|| match sock.recv_into(frames, Duration::ZERO) {
            Ok(true) => Some(()),
            Ok(false) => None,
            Err(e) => {
                failed = Some(e);
                Some(())
            }
        });
        return failed.map_or(Ok(()), Err);
    }
    if sock.recv_into(frames, STALL)? {
        Ok(())
    } else {
        Err(ztick::Error::Stopped(format!("no reply within {STALL:?}")))
    }
}

impl BarePair {
    /// Starts the pair; `spin` polls without sleeping on both ends (only where the core
    /// budget allows, as for the engine).
    pub fn start(transport: Transport, size: usize, spin: bool) -> ztick::Result<BarePair> {
        let engine = engine(transport);
        let opts = SocketOptions::default();
        let mut rep =
            Socket::bind(&engine, SocketKind::Rep, &Endpoint::local(transport, "ztick-bench-bare"), &opts)?;
        let endpoint = rep.endpoint().to_owned();
        let mut req = Socket::connect(&engine, SocketKind::Req, &endpoint.parse()?, &opts)?;
        let stop = Arc::new(AtomicBool::new(false));
        let (timer_core, echo_core) = pair_cores();

        let stop2 = Arc::clone(&stop);
        let echo = std::thread::Builder::new()
            .name("bare-echo".into())
            .spawn(move || {
                pin_current(echo_core);
                let mut frames = Vec::new();
                let wait = if spin { Duration::ZERO } else { Duration::from_millis(100) };
                // Even a spinning echo gives up after a stall (its timer gone without a stop).
                let mut last = Instant::now();
                let mut idle = 0u32;
                while !stop2.load(Ordering::Relaxed) {
                    match rep.recv_into(&mut frames, wait) {
                        Ok(true) => {
                            idle = 0;
                            last = Instant::now();
                            let parts: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
                            if let Err(e) = rep.send(&parts) {
                                eprintln!("bare echo: {e}");
                                return;
                            }
                        }
                        Ok(false) => {
                            idle = idle.wrapping_add(1);
                            if idle.is_multiple_of(1024) && last.elapsed() > STALL {
                                eprintln!("bare echo: nothing for {STALL:?}, giving up");
                                return;
                            }
                            std::hint::spin_loop();
                        }
                        Err(e) => {
                            eprintln!("bare echo: {e}");
                            return;
                        }
                    }
                }
            })
            .expect("spawn bare echo");

        let (jobs_tx, jobs) = crossbeam_channel::bounded::<u64>(1);
        let (results_tx, results) = crossbeam_channel::bounded(1);
        let timer = std::thread::Builder::new()
            .name("bare-timer".into())
            .spawn(move || {
                pin_current(timer_core);
                let payload = vec![0xA5u8; size];
                let mut frames = Vec::new();
                while let Ok(n) = jobs.recv() {
                    let mut rec = LatencyRecorder::new();
                    let mut total = 0u64;
                    let mut outcome = Ok(());
                    for _ in 0..n {
                        let t0 = now_ns();
                        outcome =
                            req.send(&[&payload]).and_then(|()| recv_reply(&mut req, &mut frames, spin));
                        let rtt = now_ns() - t0;
                        if outcome.is_err() {
                            break;
                        }
                        if frames.len() != 1 || frames[0].len() != size {
                            outcome = Err(ztick::Error::Stopped("echo of the wrong size".into()));
                            break;
                        }
                        rec.record(rtt);
                        total += rtt;
                    }
                    let _ = results_tx.send(outcome.map(|()| (total, rec)).map_err(|e| e.to_string()));
                }
            })
            .expect("spawn bare timer");

        let mut pair =
            BarePair { jobs: jobs_tx, results, stop, threads: vec![timer, echo], endpoint, _engine: engine };
        pair.run(warmup(size));
        Ok(pair)
    }
}

impl RoundTrip for BarePair {
    fn run(&mut self, iters: u64) -> (u64, LatencyRecorder) {
        self.jobs.send(iters).expect("bare timer running");
        collect(&self.results, "bare round trips")
    }
}

impl Drop for BarePair {
    fn drop(&mut self) {
        // Closing the job channel ends the timer; the flag ends the echo.
        let (closed, _) = crossbeam_channel::bounded(1);
        self.jobs = closed;
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        remove_ipc(&self.endpoint);
    }
}
