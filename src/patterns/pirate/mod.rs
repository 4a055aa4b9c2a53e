//! Reliable request/reply through a queue (the guide's chapter 4): a [`PirateQueue`] that
//! hands each request to the least recently used ready worker, and [`PirateWorker`]s that
//! announce themselves. With heartbeats on (the default) this is the Paranoid Pirate:
//! queue and workers heartbeat both ways, a silent worker is dropped from the queue after
//! `liveness` missed beats, and a worker that stops hearing the queue reconnects with a
//! back-off that doubles up to a cap. With heartbeats off it is the Simple Pirate.
//!
//! Clients are [`Requester`](super::Requester)s with retries (Lazy Pirate): a request lost
//! with a dying worker is sent again, and a late answer to an earlier try is discarded, so
//! every request gets exactly one answer or a clear failure.
//!
//! Wire protocol (the guide's PPP): a worker sends `[0x01]` (ready) once per connection and
//! `[0x02]` (heartbeat); the queue sends `[0x02]`; requests travel as
//! `[client envelope...][""][body...]` and replies the same way back.
//!
//! Every decision about time (heartbeats due, a worker expired, the queue taken for dead,
//! the back-off) is made by the pure state machines of `liveness.rs`, which take `now`
//! as a parameter and are unit-tested with a fake clock; the code here drives the sockets.

mod liveness;
mod waiting;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use self::liveness::{QueueBeat, QueueLiveness, ReadyWorkers};
use self::waiting::{Pushed, Waiting, WaitingLimits};
use super::envelope::{body_start, reply_parts, PeerContext};
use super::input::{InputCounters, InputStats, Malformed};
use super::socket::Socket;
use crate::config::{SocketKind, SocketOptions};
use crate::endpoint::Endpoint;
use crate::engine::{Engine, Handler, SocketId, SocketSpec, Worker, WorkerCtx};
use crate::error::{Error, Result};
use crate::message::Inbound;

/// A worker's "ready" signal, sent once per connection.
pub const READY: &[u8] = b"\x01";
/// A heartbeat, both ways.
pub const HEARTBEAT: &[u8] = b"\x02";

/// Heartbeat settings shared by queue and workers: both sides must agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    /// Time between heartbeats (default 1 s, the guide's).
    pub interval: Duration,
    /// Missed heartbeats before the peer is taken for dead (default 3).
    pub liveness: u32,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Heartbeat { interval: Duration::from_secs(1), liveness: 3 }
    }
}

impl Heartbeat {
    fn expiry(&self) -> Duration {
        self.interval * self.liveness.max(1)
    }
}

/// What a [`PirateQueue`] has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Requests handed to a worker.
    pub dispatched: u64,
    /// Replies passed back to clients.
    pub replied: u64,
    /// Workers dropped for missing their heartbeats.
    pub expired: u64,
    /// Requests dropped because the waiting list was full, in count or in bytes.
    pub overflowed: u64,
    /// Requests dropped for waiting longer than the waiting expiry.
    pub stale: u64,
    /// Ready workers forgotten because the list of them was full
    /// ([`PirateQueueBuilder::max_workers`]).
    pub evicted_workers: u64,
    /// Workers ready now.
    pub ready_workers: u64,
    /// Requests waiting for a worker now.
    pub waiting: u64,
    /// Their bytes, frames and envelopes counted.
    pub waiting_bytes: u64,
}

#[derive(Debug, Default)]
struct QueueCounters {
    dispatched: AtomicU64,
    replied: AtomicU64,
    expired: AtomicU64,
    overflowed: AtomicU64,
    stale: AtomicU64,
    evicted_workers: AtomicU64,
    ready_workers: AtomicU64,
    waiting: AtomicU64,
    waiting_bytes: AtomicU64,
}

impl QueueCounters {
    fn snapshot(&self) -> QueueStats {
        QueueStats {
            dispatched: self.dispatched.load(Ordering::Relaxed),
            replied: self.replied.load(Ordering::Relaxed),
            expired: self.expired.load(Ordering::Relaxed),
            overflowed: self.overflowed.load(Ordering::Relaxed),
            stale: self.stale.load(Ordering::Relaxed),
            evicted_workers: self.evicted_workers.load(Ordering::Relaxed),
            ready_workers: self.ready_workers.load(Ordering::Relaxed),
            waiting: self.waiting.load(Ordering::Relaxed),
            waiting_bytes: self.waiting_bytes.load(Ordering::Relaxed),
        }
    }
}

/// Configures a [`PirateQueue`]; from [`PirateQueue::builder`].
#[derive(Debug, Clone)]
pub struct PirateQueueBuilder {
    frontend: SocketSpec,
    backend: SocketSpec,
    heartbeat: Option<Heartbeat>,
    waiting: WaitingLimits,
    max_workers: usize,
}

/// A load-balancing queue between clients (frontend ROUTER) and workers (backend ROUTER),
/// on an engine worker.
///
/// ```
/// use std::time::Duration;
/// use ztick::{Engine, Endpoint};
/// use ztick::patterns::{Heartbeat, PirateQueue, PirateWorker, Requester};
///
/// let engine = Engine::new()?;
/// let hb = Heartbeat { interval: Duration::from_millis(100), liveness: 3 };
/// let queue = PirateQueue::builder(Endpoint::unique_inproc("pq-front"), Endpoint::unique_inproc("pq-back"))
///     .heartbeat(Some(hb))
///     .spawn(&engine)?;
/// let worker = PirateWorker::builder(queue.backend().parse()?)
///     .heartbeat(Some(hb))
///     .spawn(&engine, |body| vec![body[0].to_ascii_uppercase()])?;
/// let mut client = Requester::builder(queue.frontend().parse()?).retries(3).connect(&engine)?;
/// assert_eq!(client.request(&[b"tick"])?, vec![b"TICK".to_vec()]);
/// worker.stop()?;
/// queue.stop()?;
/// # Ok::<(), ztick::Error>(())
/// ```
#[derive(Debug)]
pub struct PirateQueue {
    worker: Worker,
    frontend: String,
    backend: String,
    counters: Arc<QueueCounters>,
    input: Arc<InputCounters>,
}

impl PirateQueue {
    /// A queue binding `frontend` for clients and `backend` for workers.
    pub fn builder(frontend: Endpoint, backend: Endpoint) -> PirateQueueBuilder {
        PirateQueueBuilder {
            frontend: SocketSpec::bind(SocketKind::Router, frontend),
            backend: SocketSpec::bind(SocketKind::Router, backend),
            heartbeat: Some(Heartbeat::default()),
            waiting: WaitingLimits { max_msgs: 10_000, max_bytes: 64 << 20, expiry: Duration::from_secs(10) },
            max_workers: 1024,
        }
    }

    /// Where clients connect (resolved).
    pub fn frontend(&self) -> &str {
        &self.frontend
    }

    /// Where workers connect (resolved).
    pub fn backend(&self) -> &str {
        &self.backend
    }

    /// What it has done so far.
    pub fn stats(&self) -> QueueStats {
        self.counters.snapshot()
    }

    /// Malformed messages refused, from clients or workers.
    pub fn input_stats(&self) -> InputStats {
        self.input.snapshot()
    }

    /// Stops the queue; returns its final counts.
    pub fn stop(self) -> Result<QueueStats> {
        self.worker.stop()?;
        Ok(self.counters.snapshot())
    }
}

impl PirateQueueBuilder {
    /// Heartbeats with the workers (Paranoid Pirate), or `None` for the Simple Pirate.
    pub fn heartbeat(mut self, heartbeat: Option<Heartbeat>) -> Self {
        self.heartbeat = heartbeat;
        self
    }

    /// Requests held while no worker is ready (default 10,000); more are dropped, counted
    /// ([`QueueStats::overflowed`]), and left to the clients' retries.
    pub fn max_waiting(mut self, n: usize) -> Self {
        self.waiting.max_msgs = n;
        self
    }

    /// Bytes of requests held while no worker is ready, envelopes included (default
    /// 64 MiB); a request that does not fit is dropped and counted like one over
    /// [`max_waiting`](Self::max_waiting).
    pub fn max_waiting_bytes(mut self, bytes: usize) -> Self {
        self.waiting.max_bytes = bytes;
        self
    }

    /// How long a request may wait for a worker (default 10 s, four of a
    /// [`Requester`](super::Requester)'s default tries): an older one is dropped, counted
    /// ([`QueueStats::stale`]), since its client has sent it again or given up.
    pub fn waiting_expiry(mut self, expiry: Duration) -> Self {
        self.waiting.expiry = expiry;
        self
    }

    /// The most ready workers the queue keeps (default 1024); a new one beyond evicts the
    /// least recently used, counted ([`QueueStats::evicted_workers`]) and traced. A real
    /// worker evicted is back at its next heartbeat or reply; READYs from connections a
    /// stranger opens and drops cannot grow the list.
    pub fn max_workers(mut self, n: usize) -> Self {
        self.max_workers = n;
        self
    }

    /// Options for both sockets (HWM, linger, ...).
    pub fn options(mut self, options: SocketOptions) -> Self {
        self.frontend.options = options.clone();
        self.backend.options = options;
        self
    }

    /// Starts the queue.
    pub fn spawn(self, engine: &Engine) -> Result<PirateQueue> {
        let counters = Arc::new(QueueCounters::default());
        let input = Arc::new(InputCounters::default());
        let mut b = engine.worker("pirate-queue");
        let front = b.socket(self.frontend);
        let back = b.socket(self.backend);
        let handler = Queue {
            front,
            back,
            workers: ReadyWorkers::new(self.heartbeat, self.max_workers, Instant::now()),
            waiting: Waiting::new(self.waiting),
            counters: Arc::clone(&counters),
            input: Arc::clone(&input),
            endpoints: [String::new(), String::new()],
        };
        let worker = b.handler(handler).spawn()?;
        let frontend = worker.endpoint(front).unwrap_or_default().to_owned();
        let backend = worker.endpoint(back).unwrap_or_default().to_owned();
        Ok(PirateQueue { worker, frontend, backend, counters, input })
    }
}

/// The queue's worker code.
struct Queue {
    front: SocketId,
    back: SocketId,
    /// Ready workers and the heartbeat timer: every decision about time is made there.
    workers: ReadyWorkers,
    /// Client requests waiting for a worker, bounded in count, bytes and age.
    waiting: Waiting,
    counters: Arc<QueueCounters>,
    input: Arc<InputCounters>,
    /// Frontend, backend; for traces.
    endpoints: [String; 2],
}

impl Queue {
    fn worker_ready(&mut self, id: &[u8]) {
        if let Some(gone) = self.workers.heard(id, Instant::now()) {
            let n = self.counters.evicted_workers.fetch_add(1, Ordering::Relaxed) + 1;
            if n <= 10 || n.is_multiple_of(1000) {
                tracing::warn!(worker = %super::envelope::PeerId(&gone), evicted = n, endpoint = %self.endpoints[1], "ready workers at their cap; the least recently used forgotten");
            }
        }
    }

    fn dispatch(&mut self, ctx: &mut WorkerCtx<'_>, request: &[&[u8]]) -> Result<bool> {
        let Some(worker) = self.workers.take() else { return Ok(false) };
        let mut parts: Vec<&[u8]> = Vec::with_capacity(request.len() + 1);
        parts.push(&worker);
        parts.extend_from_slice(request);
        ctx.send_parts(self.back, &parts)?;
        self.counters.dispatched.fetch_add(1, Ordering::Relaxed);
        Ok(true)
    }

    fn dispatch_waiting(&mut self, ctx: &mut WorkerCtx<'_>) -> Result<()> {
        while !self.workers.is_empty() {
            let Some(req) = self.waiting.pop(Instant::now()) else { break };
            let parts: Vec<&[u8]> = req.iter().map(Vec::as_slice).collect();
            self.dispatch(ctx, &parts)?;
        }
        Ok(())
    }

    /// Publishes the lists' sizes, and traces requests that went stale since the last
    /// call (the first few, then one in a thousand).
    fn publish_ready(&self) {
        let c = &self.counters;
        c.ready_workers.store(self.workers.len() as u64, Ordering::Relaxed);
        c.waiting.store(self.waiting.len() as u64, Ordering::Relaxed);
        c.waiting_bytes.store(self.waiting.bytes() as u64, Ordering::Relaxed);
        let stale = self.waiting.stale();
        let before = c.stale.swap(stale, Ordering::Relaxed);
        if stale > before && (before < 10 || stale / 1000 > before / 1000) {
            tracing::warn!(stale, endpoint = %self.endpoints[0], "requests waited longer than the waiting expiry for a worker; dropped (their clients retry)");
        }
    }
}

impl Handler for Queue {
    fn on_start(&mut self, ctx: &mut WorkerCtx<'_>) -> Result<()> {
        self.endpoints = [
            ctx.endpoint(self.front).unwrap_or_default().to_owned(),
            ctx.endpoint(self.back).unwrap_or_default().to_owned(),
        ];
        Ok(())
    }

    fn on_message(&mut self, ctx: &mut WorkerCtx<'_>, socket: SocketId, msg: &Inbound<'_>) -> Result<()> {
        let frames: Vec<&[u8]> = msg.iter().collect();
        if socket == self.front {
            if body_start(&frames).is_none_or(|s| frames[s..].iter().all(|f| f.is_empty())) {
                let peer =
                    PeerContext { kind: "ROUTER", endpoint: &self.endpoints[0], id: frames.first().copied() };
                self.input.refuse(Malformed::Frames, &peer, &"client request without envelope or body");
                return Ok(());
            }
            self.input.handled();
            if !self.dispatch(ctx, &frames)? {
                let held = frames.iter().map(|f| f.to_vec()).collect();
                if self.waiting.push(held, Instant::now()) == Pushed::Full {
                    let n = self.counters.overflowed.fetch_add(1, Ordering::Relaxed) + 1;
                    if n <= 10 || n.is_multiple_of(1000) {
                        tracing::warn!(waiting = self.waiting.len(), bytes = self.waiting.bytes(), overflowed = n, "no worker ready and the waiting list is full; request dropped (the client will retry)");
                    }
                }
            }
        } else {
            let peer =
                PeerContext { kind: "ROUTER", endpoint: &self.endpoints[1], id: frames.first().copied() };
            match frames.as_slice() {
                [id, signal] if *signal == READY || *signal == HEARTBEAT => self.worker_ready(id),
                [id, reply @ ..] if body_start(&frames).is_some() => {
                    ctx.send_parts(self.front, reply)?;
                    self.counters.replied.fetch_add(1, Ordering::Relaxed);
                    self.worker_ready(id);
                }
                _ => {
                    self.input.refuse(
                        Malformed::Frames,
                        &peer,
                        &format_args!("{} frames from a worker", frames.len()),
                    );
                    return Ok(());
                }
            }
            self.dispatch_waiting(ctx)?;
        }
        self.publish_ready();
        Ok(())
    }

    fn on_tick(&mut self, ctx: &mut WorkerCtx<'_>) -> Result<bool> {
        let (expired, next) = match self.workers.poll(Instant::now()) {
            QueueBeat::Off => return Ok(false),
            QueueBeat::Wait { until } => {
                ctx.wake_at(until);
                return Ok(false);
            }
            QueueBeat::Beat { expired, next } => (expired, next),
        };
        for id in &expired {
            tracing::warn!(worker = %super::envelope::PeerId(id), "worker missed its heartbeats; dropped from the queue");
        }
        self.counters.expired.fetch_add(expired.len() as u64, Ordering::Relaxed);
        for id in self.workers.ids() {
            ctx.send_parts(self.back, &[id, HEARTBEAT])?;
        }
        ctx.wake_at(next);
        self.waiting.expire(Instant::now());
        self.publish_ready();
        Ok(true)
    }
}

/// What a [`PirateWorker`] has done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PirateWorkerStats {
    /// Requests served.
    pub served: u64,
    /// Times it gave up on a silent queue and reconnected.
    pub reconnects: u64,
    /// Malformed messages refused.
    pub malformed: u64,
}

/// Configures a [`PirateWorker`]; from [`PirateWorker::builder`].
#[derive(Debug, Clone)]
pub struct PirateWorkerBuilder {
    spec: SocketSpec,
    heartbeat: Option<Heartbeat>,
    reconnect_first: Duration,
    reconnect_max: Duration,
    name: String,
}

/// A worker for a [`PirateQueue`], on its own thread with a DEALER socket.
#[derive(Debug)]
pub struct PirateWorker {
    stop: Sender<()>,
    counters: Arc<WorkerCounters>,
    thread: Option<JoinHandle<Result<PirateWorkerStats>>>,
    name: String,
}

impl PirateWorker {
    /// A worker for the queue backend at `endpoint`.
    pub fn builder(endpoint: Endpoint) -> PirateWorkerBuilder {
        // A dead or reconnecting worker must not deliver stale replies later: drop them.
        let options = SocketOptions::default().linger(Some(Duration::ZERO));
        PirateWorkerBuilder {
            spec: SocketSpec::connect(SocketKind::Dealer, endpoint).options(options),
            heartbeat: Some(Heartbeat::default()),
            reconnect_first: Duration::from_secs(1),
            reconnect_max: Duration::from_secs(32),
            name: "pirate-worker".into(),
        }
    }

    /// What it has done so far.
    pub fn stats(&self) -> PirateWorkerStats {
        self.counters.snapshot()
    }

    /// Stops the worker and returns what it did.
    ///
    /// # Errors
    /// [`Error::WorkerPanicked`] when the serving closure panicked (the worker had died).
    pub fn stop(mut self) -> Result<PirateWorkerStats> {
        let _ = self.stop.try_send(());
        self.join_inner()
    }

    /// Waits for the worker's thread to end (after a panic in the serving closure, say).
    pub fn join(mut self) -> Result<PirateWorkerStats> {
        self.join_inner()
    }

    fn join_inner(&mut self) -> Result<PirateWorkerStats> {
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => {
                Err(Error::WorkerPanicked { worker: self.name.clone(), message: "join failed".into() })
            }
            None => Err(Error::Stopped(format!("{} already joined", self.name))),
        }
    }
}

impl Drop for PirateWorker {
    fn drop(&mut self) {
        let _ = self.stop.try_send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl PirateWorkerBuilder {
    /// Heartbeats with the queue (Paranoid Pirate; must match the queue's), or `None`.
    pub fn heartbeat(mut self, heartbeat: Option<Heartbeat>) -> Self {
        self.heartbeat = heartbeat;
        self
    }

    /// The first reconnect delay and its cap; the delay doubles on each failed reconnect
    /// (defaults 1 s and 32 s, the guide's).
    pub fn reconnect(mut self, first: Duration, max: Duration) -> Self {
        self.reconnect_first = first;
        self.reconnect_max = max.max(first);
        self
    }

    /// Socket options; ztick sets linger 0 unless told otherwise.
    pub fn options(mut self, mut options: SocketOptions) -> Self {
        if options.linger.is_none() {
            options.linger = Some(Some(Duration::ZERO));
        }
        self.spec.options = options;
        self
    }

    /// A routing id, so the queue knows this worker again after a reconnect.
    pub fn routing_id(mut self, id: &[u8]) -> Result<Self> {
        self.spec.options = std::mem::take(&mut self.spec.options).routing_id(id)?;
        Ok(self)
    }

    /// The thread's name (`ztick-NAME`).
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.to_owned();
        self
    }

    /// Connects and starts serving: `serve` gets a request's body frames and returns the
    /// reply's. If it panics, the worker dies as a crashed process would (its socket closes
    /// without answering) and [`PirateWorker::join`] reports the panic.
    pub fn spawn<F>(self, engine: &Engine, serve: F) -> Result<PirateWorker>
    where
        F: FnMut(&[&[u8]]) -> Vec<Vec<u8>> + Send + 'static,
    {
        let socket = Socket::open(engine, &self.spec)?;
        let (stop, stop_rx) = crossbeam_channel::bounded(1);
        let counters = Arc::new(WorkerCounters::default());
        let name = self.name.clone();
        let mut run = WorkerLoop {
            socket,
            serve,
            heartbeat: self.heartbeat,
            reconnect_first: self.reconnect_first,
            reconnect_max: self.reconnect_max,
            stop: stop_rx,
            stats: Arc::clone(&counters),
            input: InputCounters::default(),
        };
        let thread = std::thread::Builder::new()
            .name(format!("ztick-{name}"))
            .spawn(move || {
                let name = std::thread::current().name().unwrap_or("pirate-worker").to_owned();
                catch_unwind(AssertUnwindSafe(|| run.run())).unwrap_or_else(|payload| {
                    let message = payload
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| payload.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "unknown panic".into());
                    Err(Error::WorkerPanicked { worker: name, message })
                })
            })
            .map_err(|e| Error::Io { context: format!("spawning {}", self.name), source: e })?;
        Ok(PirateWorker { stop, counters, thread: Some(thread), name: self.name })
    }
}

#[derive(Debug, Default)]
struct WorkerCounters {
    served: AtomicU64,
    reconnects: AtomicU64,
    malformed: AtomicU64,
}

impl WorkerCounters {
    fn snapshot(&self) -> PirateWorkerStats {
        PirateWorkerStats {
            served: self.served.load(Ordering::Relaxed),
            reconnects: self.reconnects.load(Ordering::Relaxed),
            malformed: self.malformed.load(Ordering::Relaxed),
        }
    }
}

struct WorkerLoop<F> {
    socket: Socket,
    serve: F,
    heartbeat: Option<Heartbeat>,
    reconnect_first: Duration,
    reconnect_max: Duration,
    stop: Receiver<()>,
    stats: Arc<WorkerCounters>,
    input: InputCounters,
}

/// The longest a worker waits before checking for a stop request.
const STOP_CHECK: Duration = Duration::from_millis(50);

impl<F: FnMut(&[&[u8]]) -> Vec<Vec<u8>>> WorkerLoop<F> {
    fn run(&mut self) -> Result<PirateWorkerStats> {
        self.socket.send_timeout(&[READY], STOP_CHECK)?;
        // Every decision about time is made there; this loop only feeds it and obeys.
        let mut queue = self
            .heartbeat
            .map(|h| QueueLiveness::new(h, self.reconnect_first, self.reconnect_max, Instant::now()));
        let mut frames = Vec::new();
        loop {
            if self.stop.try_recv().is_ok() {
                return Ok(self.stats.snapshot());
            }
            if self.socket.recv_into(&mut frames, STOP_CHECK)? {
                if let Some(q) = queue.as_mut() {
                    q.on_traffic(Instant::now());
                }
                self.handle(&frames)?;
            }
            let Some(q) = queue.as_mut() else { continue };
            let now = Instant::now();
            if q.heartbeat_due(now) {
                // A full queue socket means the queue is gone; liveness will notice.
                let _ = self.socket.try_send(&[HEARTBEAT])?;
            }
            if let Some(backoff) = q.silence(now) {
                tracing::warn!(endpoint = %self.socket.endpoint(), backoff_ms = backoff.as_millis() as u64, "queue silent; reconnecting after back-off");
                // The back-off wait doubles as the stop check: a stop ends it at once.
                if self.stop.recv_timeout(backoff).is_ok() {
                    return Ok(self.stats.snapshot());
                }
                self.socket.reopen()?;
                self.stats.reconnects.fetch_add(1, Ordering::Relaxed);
                self.socket.send_timeout(&[READY], STOP_CHECK)?;
                q.reconnected(Instant::now());
            }
        }
    }

    fn handle(&mut self, frames: &[Vec<u8>]) -> Result<()> {
        let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
        if refs.as_slice() == [HEARTBEAT] {
            return Ok(());
        }
        // From the queue: [client envelope...][""][body...]; the envelope has no routing id
        // of ours in front, so look for the delimiter from frame 0.
        let delim = refs.iter().position(|f| f.is_empty());
        let body = delim.map(|d| &refs[d + 1..]).unwrap_or(&[]);
        let (Some(d), false) = (delim, body.iter().all(|f| f.is_empty())) else {
            self.stats.malformed.fetch_add(1, Ordering::Relaxed);
            let peer = PeerContext { kind: "DEALER", endpoint: self.socket.endpoint(), id: None };
            self.input.refuse(
                Malformed::Frames,
                &peer,
                &format_args!("{} frames from the queue", refs.len()),
            );
            return Ok(());
        };
        let reply = (self.serve)(body);
        self.socket.send(&reply_parts(&refs[..=d], &reply))?;
        self.stats.served.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}
