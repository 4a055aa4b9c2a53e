//! A worker: one pinned OS thread that owns its libzmq sockets and runs a synchronous loop.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, TryRecvError};

use super::handle::{Command, Counters, Handle, Shared, WorkerStats};
use super::idle::{IdleAction, IdleStrategy, Idler};
use super::{budget, Engine, SocketId};
use crate::config::{FullPolicy, SocketKind, SocketOptions};
use crate::endpoint::Endpoint;
use crate::error::{Error, Operation, Result, ZmqErrno};
use crate::message::{FrameRepr, Inbound, Outbound};
use crate::sys::{self, Msg, PollItem, RawContext, RawSocket, Wakeup};

/// A peer cannot make a worker grow without bound: messages with more frames are discarded
/// and counted as handler errors.
const MAX_FRAMES: usize = 1024;

/// How long a send from a handler waits for room under `FullPolicy::Block` before failing:
/// a handler cannot wait forever, or its worker would stop serving everything else.
const BLOCK_SEND_LIMIT: Duration = Duration::from_secs(5);

/// One socket a worker will own: its kind, where it binds or connects, and its options.
#[derive(Debug, Clone)]
pub struct SocketSpec {
    /// The socket kind.
    pub kind: SocketKind,
    /// Where to bind or connect.
    pub endpoint: Endpoint,
    /// Bind (true) or connect (false).
    pub bind: bool,
    /// Options applied before bind/connect.
    pub options: SocketOptions,
    /// What a send does at the HWM.
    pub on_full: FullPolicy,
    /// Topic prefixes for a SUB socket (none: the socket receives nothing until told).
    pub subscriptions: Vec<Vec<u8>>,
    /// For PUB/XPUB: return EAGAIN at the HWM instead of dropping (`ZMQ_XPUB_NODROP`), so
    /// `on_full` decides; costs the publisher's pace when a subscriber is slow.
    pub xpub_nodrop: bool,
    /// For XPUB: pass on every subscription, duplicates included (`ZMQ_XPUB_VERBOSE`), so
    /// each subscriber's arrival is seen even when another subscribed to the same prefix.
    pub xpub_verbose: bool,
}

impl SocketSpec {
    /// A socket that binds `endpoint`.
    pub fn bind(kind: SocketKind, endpoint: Endpoint) -> Self {
        SocketSpec::new(kind, endpoint, true)
    }

    /// A socket that connects to `endpoint`.
    pub fn connect(kind: SocketKind, endpoint: Endpoint) -> Self {
        SocketSpec::new(kind, endpoint, false)
    }

    fn new(kind: SocketKind, endpoint: Endpoint, bind: bool) -> Self {
        SocketSpec {
            kind,
            endpoint,
            bind,
            options: SocketOptions::default(),
            on_full: FullPolicy::default(),
            subscriptions: Vec::new(),
            xpub_nodrop: false,
            xpub_verbose: false,
        }
    }

    /// Replaces the options.
    pub fn options(mut self, options: SocketOptions) -> Self {
        self.options = options;
        self
    }

    /// Sets the HWM policy.
    pub fn on_full(mut self, policy: FullPolicy) -> Self {
        self.on_full = policy;
        self
    }

    /// Adds a topic-prefix subscription (SUB sockets).
    pub fn subscribe(mut self, prefix: impl Into<Vec<u8>>) -> Self {
        self.subscriptions.push(prefix.into());
        self
    }

    /// Turns `ZMQ_XPUB_VERBOSE` on (XPUB sockets).
    pub fn xpub_verbose(mut self, on: bool) -> Self {
        self.xpub_verbose = on;
        self
    }

    /// Turns `ZMQ_XPUB_NODROP` on (PUB/XPUB sockets).
    pub fn xpub_nodrop(mut self, on: bool) -> Self {
        self.xpub_nodrop = on;
        self
    }
}

/// The code a worker runs, on its own thread: one object, so its callbacks share state
/// without locks.
pub trait Handler: Send {
    /// Runs once, after the sockets are bound or connected, before the loop starts.
    fn on_start(&mut self, _ctx: &mut WorkerCtx<'_>) -> Result<()> {
        Ok(())
    }

    /// Runs for every received message. An error is counted and traced, and the loop goes
    /// on: bad input from one peer must not stop service to the others.
    fn on_message(&mut self, ctx: &mut WorkerCtx<'_>, socket: SocketId, msg: &Inbound<'_>) -> Result<()>;

    /// Runs on every pass of the loop (for timers and paced sends); returns whether it did
    /// work, which keeps a backing-off worker awake.
    fn on_tick(&mut self, _ctx: &mut WorkerCtx<'_>) -> Result<bool> {
        Ok(false)
    }

    /// Runs once when the loop has ended (stopped, or failed), while the sockets are still
    /// open: the place to hand results back.
    fn on_stop(&mut self, _ctx: &mut WorkerCtx<'_>) {}
}

/// A received message, copied out of the worker (see [`WorkerBuilder::forward_to`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The socket it arrived on.
    pub socket: SocketId,
    /// Its frames, in order.
    pub frames: Vec<Vec<u8>>,
}

/// Called on the worker thread for every received message.
pub type MessageHandler = Box<dyn FnMut(&mut WorkerCtx<'_>, SocketId, &Inbound<'_>) -> Result<()> + Send>;
/// Called on the worker thread on every pass of its loop; returns whether it did work.
pub type TickHandler = Box<dyn FnMut(&mut WorkerCtx<'_>) -> Result<bool> + Send>;

/// The closures of `on_message`/`on_tick`, as a [`Handler`].
struct Closures {
    message: Option<MessageHandler>,
    tick: Option<TickHandler>,
}

impl Handler for Closures {
    fn on_message(&mut self, ctx: &mut WorkerCtx<'_>, socket: SocketId, msg: &Inbound<'_>) -> Result<()> {
        match self.message.as_mut() {
            Some(f) => f(ctx, socket, msg),
            None => Ok(()),
        }
    }

    fn on_tick(&mut self, ctx: &mut WorkerCtx<'_>) -> Result<bool> {
        match self.tick.as_mut() {
            Some(f) => f(ctx),
            None => Ok(false),
        }
    }
}

/// Configures and starts a worker; from [`Engine::worker`].
pub struct WorkerBuilder<'e> {
    engine: &'e Engine,
    name: String,
    core: Option<usize>,
    idle: IdleStrategy,
    batch_max: usize,
    inbox_capacity: usize,
    drain_timeout: Duration,
    sockets: Vec<SocketSpec>,
    closures: Closures,
    handler: Option<Box<dyn Handler>>,
}

impl std::fmt::Debug for WorkerBuilder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerBuilder")
            .field("name", &self.name)
            .field("core", &self.core)
            .field("idle", &self.idle)
            .field("batch_max", &self.batch_max)
            .field("sockets", &self.sockets)
            .finish()
    }
}

impl<'e> WorkerBuilder<'e> {
    pub(crate) fn new(engine: &'e Engine, name: &str) -> Self {
        WorkerBuilder {
            engine,
            name: name.to_owned(),
            core: None,
            idle: IdleStrategy::default(),
            batch_max: 64,
            inbox_capacity: 4096,
            drain_timeout: Duration::from_secs(5),
            sockets: Vec::new(),
            closures: Closures { message: None, tick: None },
            handler: None,
        }
    }

    /// Pins the worker thread to `core` (an id from [`Engine::cores`]). Default: not pinned.
    pub fn pin(mut self, core: Option<usize>) -> Self {
        self.core = core;
        self
    }

    /// How the worker waits when idle. Default: [`IdleStrategy::BLOCK`].
    pub fn idle(mut self, idle: IdleStrategy) -> Self {
        self.idle = idle;
        self
    }

    /// Most hand-offs sent, and most messages received per socket, per pass. Default 64.
    pub fn batch_max(mut self, n: usize) -> Self {
        self.batch_max = n.max(1);
        self
    }

    /// Capacity of the hand-off channel, in messages. Default 4096.
    pub fn inbox_capacity(mut self, n: usize) -> Self {
        self.inbox_capacity = n.max(1);
        self
    }

    /// How long a stopping worker waits without progress (a peer that stopped reading) before
    /// counting what is still queued as dropped. Default 5 s.
    pub fn drain_timeout(mut self, d: Duration) -> Self {
        self.drain_timeout = d;
        self
    }

    /// Adds a socket; the returned id names it in sends and in the handler.
    pub fn socket(&mut self, spec: SocketSpec) -> SocketId {
        self.sockets.push(spec);
        SocketId(self.sockets.len() - 1)
    }

    /// Sets the handler for received messages (default: discard and count).
    pub fn on_message(
        mut self,
        f: impl FnMut(&mut WorkerCtx<'_>, SocketId, &Inbound<'_>) -> Result<()> + Send + 'static,
    ) -> Self {
        self.closures.message = Some(Box::new(f));
        self
    }

    /// Sends a copy of every received message to `tx` instead of running a handler on the
    /// worker: the simplest way to consume on an application thread. A full channel makes
    /// the worker wait, which pushes back on the sockets' HWMs.
    pub fn forward_to(self, tx: crossbeam_channel::Sender<Received>) -> Self {
        self.on_message(move |_, socket, msg| {
            tx.send(Received { socket, frames: msg.to_vec() }).map_err(|_| {
                Error::Stopped("the channel received messages are forwarded to is closed".into())
            })
        })
    }

    /// Sets a handler run on every pass of the loop (for timers and paced publishing).
    pub fn on_tick(mut self, f: impl FnMut(&mut WorkerCtx<'_>) -> Result<bool> + Send + 'static) -> Self {
        self.closures.tick = Some(Box::new(f));
        self
    }

    /// Sets the worker's code as one [`Handler`] object (replaces `on_message`/`on_tick`).
    pub fn handler(mut self, h: impl Handler + 'static) -> Self {
        self.handler = Some(Box::new(h));
        self
    }

    /// Starts the worker; returns once its sockets are bound or connected.
    ///
    /// # Errors
    /// A core that does not exist, a core budget exceeded by a spinning strategy, or any
    /// socket that could not be created, configured, bound or connected.
    pub fn spawn(self) -> Result<Worker> {
        let engine = self.engine;
        if let Some(core) = self.core {
            if !engine.cores.contains(&core) {
                return Err(Error::Core { core, available: engine.cores.clone() });
            }
        }
        let spin_guard = if self.idle.spins() {
            let now = engine.spinning.fetch_add(1, Ordering::SeqCst) + 1;
            let guard = SpinGuard(Arc::clone(&engine.spinning));
            match budget::check(now, engine.io_threads, engine.cores.len(), engine.force)? {
                budget::Budget::Fits => {}
                budget::Budget::Forced(msg) => {
                    tracing::warn!(worker = %self.name, "{msg} (forced)")
                }
            }
            Some(guard)
        } else {
            None
        };
        let wakeup = Wakeup::new()
            .map_err(|e| Error::Io { context: "creating the worker's eventfd".into(), source: e })?;
        let shared = Arc::new(Shared {
            wakeup,
            parked: AtomicBool::new(false),
            counters: Counters::default(),
            name: self.name.clone(),
            stop_requested: AtomicBool::new(false),
        });
        let (tx, rx) = crossbeam_channel::bounded(self.inbox_capacity);
        let (ready_tx, ready_rx) = crossbeam_channel::bounded::<Result<Vec<String>>>(1);
        let ctx = Arc::clone(&engine.ctx);
        let shared2 = Arc::clone(&shared);
        let name = self.name.clone();
        let cfg =
            LoopConfig { idle: self.idle, batch_max: self.batch_max, drain_timeout: self.drain_timeout };
        let specs = self.sockets;
        let core = self.core;
        let mut handler: Box<dyn Handler> = match self.handler {
            Some(h) => h,
            None => Box::new(self.closures),
        };
        let thread = std::thread::Builder::new()
            .name(format!("ztick-{name}"))
            .spawn(move || {
                let _spin_guard = spin_guard;
                // Timed parks (paced publishers) want microseconds, not Linux's 50 µs slack.
                sys::set_timer_slack_ns(1_000);
                let worker_name = shared2.name.clone();
                let mut result = catch_unwind(AssertUnwindSafe(|| {
                    run_worker(&ctx, core, &specs, &shared2, &rx, cfg, &ready_tx, handler.as_mut())
                }));
                // Whatever is still in the channel was handed over and never sent: count it.
                let mut left = 0u64;
                while let Ok(cmd) = rx.try_recv() {
                    left += u64::from(matches!(cmd, Command::Send(..)));
                }
                if left > 0 {
                    shared2.counters.dropped.fetch_add(left, Ordering::Relaxed);
                    if let Ok(Ok(report)) = &mut result {
                        report.stats.dropped += left;
                    }
                    tracing::warn!(worker = %worker_name, left, "messages still queued at exit counted as dropped");
                }
                drop(rx);
                match result {
                    Ok(r) => r,
                    Err(payload) => {
                        let message = panic_message(&payload);
                        let _ = ready_tx.try_send(Err(Error::WorkerPanicked { worker: worker_name.clone(), message: message.clone() }));
                        Err(Error::WorkerPanicked { worker: worker_name, message })
                    }
                }
            })
            .map_err(|e| Error::Io { context: format!("spawning worker thread {}", self.name), source: e })?;
        let endpoints = match ready_rx.recv() {
            Ok(Ok(eps)) => eps,
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                let res = thread.join();
                return Err(match res {
                    Ok(Err(e)) => e,
                    _ => Error::Stopped(format!("worker {} exited during start-up", self.name)),
                });
            }
        };
        Ok(Worker { name: self.name, handle: Handle { tx, shared }, thread: Some(thread), endpoints })
    }
}

/// Decrements the engine's count of spinning workers when a spinning worker ends.
struct SpinGuard(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for SpinGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn panic_message(payload: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

/// A running worker. Dropping it stops it and waits for it (see [`Worker::stop`]).
pub struct Worker {
    name: String,
    handle: Handle,
    thread: Option<JoinHandle<Result<WorkerReport>>>,
    endpoints: Vec<String>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").field("name", &self.name).field("endpoints", &self.endpoints).finish()
    }
}

/// What a worker did, returned when it stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerReport {
    /// The worker's name.
    pub name: String,
    /// Its final counters; `dropped` includes anything left unsent at stop.
    pub stats: WorkerStats,
    /// The first send refused under [`FullPolicy::Error`], if any.
    pub first_error: Option<String>,
}

impl Worker {
    /// A handle for application threads.
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// The endpoint a socket actually bound or connected to (`tcp://127.0.0.1:*` becomes the
    /// chosen port), to give to peers.
    pub fn endpoint(&self, socket: SocketId) -> Option<&str> {
        self.endpoints.get(socket.0).map(String::as_str)
    }

    /// The worker's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Live counters.
    pub fn stats(&self) -> WorkerStats {
        self.handle.stats()
    }

    /// Stops the worker: it sends everything already handed over (up to its drain timeout,
    /// after which the rest is counted dropped), closes its sockets, and ends.
    ///
    /// # Errors
    /// [`Error::WorkerPanicked`] if the worker panicked; a socket error that ended its loop.
    pub fn stop(mut self) -> Result<WorkerReport> {
        self.stop_inner()
    }

    /// Waits for the worker to end by itself (a handler called [`WorkerCtx::stop`], or it
    /// failed) without asking it to stop.
    ///
    /// # Errors
    /// As [`Worker::stop`].
    pub fn join(mut self) -> Result<WorkerReport> {
        self.join_inner()
    }

    fn stop_inner(&mut self) -> Result<WorkerReport> {
        self.handle.stop();
        self.join_inner()
    }

    fn join_inner(&mut self) -> Result<WorkerReport> {
        match self.thread.take() {
            Some(t) => t.join().unwrap_or_else(|payload| {
                Err(Error::WorkerPanicked { worker: self.name.clone(), message: panic_message(&payload) })
            }),
            None => Err(Error::Stopped(format!("worker {} already stopped", self.name))),
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if self.thread.is_some() {
            if let Err(e) = self.stop_inner() {
                tracing::warn!(worker = %self.name, error = %e, "worker ended with an error");
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct LoopConfig {
    idle: IdleStrategy,
    batch_max: usize,
    drain_timeout: Duration,
}

/// Counts kept on the worker thread and added to the shared atomics once per pass, so the
/// per-message path makes no locked read-modify-write on a line other threads read.
#[derive(Debug, Default)]
struct Tally {
    sent: Cell<u64>,
    dropped: Cell<u64>,
    batches: Cell<u64>,
    received: Cell<u64>,
    handler_errors: Cell<u64>,
}

impl Tally {
    #[inline]
    fn add(c: &Cell<u64>, n: u64) {
        c.set(c.get() + n);
    }

    /// Moves the counts into `shared`.
    fn flush(&self, shared: &Counters) {
        for (local, atomic) in [
            (&self.sent, &shared.sent),
            (&self.dropped, &shared.dropped),
            (&self.batches, &shared.batches),
            (&self.received, &shared.received),
            (&self.handler_errors, &shared.handler_errors),
        ] {
            let n = local.take();
            if n > 0 {
                atomic.fetch_add(n, Ordering::Relaxed);
            }
        }
    }
}

/// A socket as its worker holds it.
struct Sock {
    raw: RawSocket,
    /// `ZMQ_FD`, for sub-millisecond parks.
    fd: std::os::fd::RawFd,
    endpoint: String,
    on_full: FullPolicy,
}

/// The worker's sockets and counters, lent to handlers on the worker thread.
pub struct WorkerCtx<'a> {
    socks: &'a [Sock],
    shared: &'a Shared,
    tally: &'a Tally,
    stop: &'a Cell<bool>,
    wake_at: &'a Cell<Option<Instant>>,
    first_error: &'a Cell<Option<String>>,
}

impl std::fmt::Debug for WorkerCtx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerCtx").field("worker", &self.shared.name).finish()
    }
}

impl WorkerCtx<'_> {
    fn sock(&self, id: SocketId) -> Result<&Sock> {
        self.socks.get(id.0).ok_or_else(|| {
            Error::config(
                "socket id",
                id.0,
                format!("an id returned by WorkerBuilder::socket (this worker has {})", self.socks.len()),
            )
        })
    }

    /// Sends one frame (a copy of `data`) on `socket` now, under the socket's HWM policy.
    pub fn send(&mut self, socket: SocketId, data: &[u8]) -> Result<()> {
        self.send_parts(socket, &[data])
    }

    /// Sends a multipart message (copies of `parts`) as one atomic unit.
    pub fn send_parts(&mut self, socket: SocketId, parts: &[&[u8]]) -> Result<()> {
        let sock = self.sock(socket)?;
        let Some((last, init)) = parts.split_last() else {
            return Ok(());
        };
        let first = init.first().copied().unwrap_or(last);
        let more = !init.is_empty();
        self.with_policy(sock, || sock.raw.send_bytes(first, more, true))?;
        // Once the first frame is queued libzmq takes the rest of the message whatever the HWM.
        if more {
            for part in init.iter().skip(1) {
                sock.raw.send_bytes(part, true, false).map_err(|e| zmq_err(Operation::Send, sock, e))?;
            }
            sock.raw.send_bytes(last, false, false).map_err(|e| zmq_err(Operation::Send, sock, e))?;
        }
        Tally::add(&self.tally.sent, 1);
        Ok(())
    }

    /// Sends an [`Outbound`] (pooled frames without copying) now, under the socket's HWM policy.
    pub fn send_outbound(&mut self, socket: SocketId, mut msg: Outbound) -> Result<()> {
        let sock = self.sock(socket)?;
        self.with_policy(sock, || send_outbound(&sock.raw, &mut msg))?;
        Tally::add(&self.tally.sent, 1);
        Ok(())
    }

    /// Runs a non-blocking send attempt; at the HWM applies the socket's policy: `Block`
    /// waits for room (up to 5 s, then fails), `Drop` counts and succeeds, `Error` counts and fails.
    fn with_policy(
        &self,
        sock: &Sock,
        mut attempt: impl FnMut() -> std::result::Result<(), ZmqErrno>,
    ) -> Result<()> {
        let mut deadline = None;
        loop {
            match attempt() {
                Ok(()) => return Ok(()),
                Err(e) if e.is_again() => {
                    if sock.on_full == FullPolicy::Block {
                        let d = *deadline.get_or_insert_with(|| Instant::now() + BLOCK_SEND_LIMIT);
                        if Instant::now() < d && !self.shared.stop_requested.load(Ordering::Acquire) {
                            sock.raw
                                .wait_room(Duration::from_millis(100), PUB_BLOCKED_RETRY)
                                .map_err(|e| zmq_err(Operation::Poll, sock, e))?;
                            continue;
                        }
                    }
                    return self.refuse(sock, sock.on_full, e);
                }
                Err(e) => return Err(zmq_err(Operation::Send, sock, e)),
            }
        }
    }

    fn refuse(&self, sock: &Sock, policy: FullPolicy, e: ZmqErrno) -> Result<()> {
        Tally::add(&self.tally.dropped, 1);
        if policy == FullPolicy::Drop {
            tracing::trace!(worker = %self.shared.name, endpoint = %sock.endpoint, "dropped at HWM");
            return Ok(());
        }
        let err = zmq_err(Operation::Send, sock, e);
        let first = self.first_error.take().or_else(|| Some(err.to_string()));
        self.first_error.set(first);
        Err(err)
    }

    /// Starts reporting `socket`'s peer disconnections on the inproc PAIR `endpoint`: connect
    /// a PAIR socket of this worker there (`SocketSpec::connect`) and each disconnection
    /// arrives as a message for which [`WorkerCtx::is_disconnect_event`] is true.
    pub fn monitor_disconnects(&mut self, socket: SocketId, endpoint: &Endpoint) -> Result<()> {
        let sock = self.sock(socket)?;
        sock.raw
            .monitor(&endpoint.to_string(), sys::EVENT_DISCONNECTED)
            .map_err(|e| zmq_err(Operation::SetOption, sock, e))
    }

    /// True when `msg`, received on a monitor PAIR socket, reports a peer disconnection.
    pub fn is_disconnect_event(msg: &Inbound<'_>) -> bool {
        msg.frame(0).and_then(sys::monitor_event) == Some(sys::EVENT_DISCONNECTED as u16)
    }

    /// Subscribes a SUB socket to another topic prefix.
    pub fn subscribe(&mut self, socket: SocketId, prefix: &[u8]) -> Result<()> {
        let sock = self.sock(socket)?;
        sock.raw.subscribe(prefix).map_err(|e| zmq_err(Operation::SetOption, sock, e))
    }

    /// Removes a subscription.
    pub fn unsubscribe(&mut self, socket: SocketId, prefix: &[u8]) -> Result<()> {
        let sock = self.sock(socket)?;
        sock.raw.unsubscribe(prefix).map_err(|e| zmq_err(Operation::SetOption, sock, e))
    }

    /// Asks the loop to end after this pass (queued hand-offs are still drained).
    pub fn stop(&mut self) {
        self.stop.set(true);
    }

    /// Asks an idle worker to wake no later than `at` (for timers and paced sends).
    pub fn wake_at(&mut self, at: Instant) {
        let next = match self.wake_at.get() {
            Some(t) if t < at => t,
            _ => at,
        };
        self.wake_at.set(Some(next));
    }

    /// This worker's counters now (including this pass's).
    pub fn stats(&self) -> WorkerStats {
        self.tally.flush(&self.shared.counters);
        self.shared.counters.snapshot()
    }

    /// The endpoint a socket bound or connected to.
    pub fn endpoint(&self, socket: SocketId) -> Option<&str> {
        self.socks.get(socket.0).map(|s| s.endpoint.as_str())
    }
}

fn zmq_err(op: Operation, sock: &Sock, source: ZmqErrno) -> Error {
    Error::Zmq { op, kind: sock.raw.kind().as_str(), endpoint: Some(sock.endpoint.clone()), source }
}

/// Creates, configures and binds/connects every socket, in order.
fn open_sockets(ctx: &RawContext, specs: &[SocketSpec]) -> Result<Vec<Sock>> {
    let mut socks = Vec::with_capacity(specs.len());
    for spec in specs {
        let (raw, endpoint) = open_socket(ctx, spec)?;
        let fd = raw.fd().map_err(|e| Error::Zmq {
            op: Operation::GetOption,
            kind: spec.kind.as_str(),
            endpoint: Some(endpoint.clone()),
            source: e,
        })?;
        socks.push(Sock { raw, fd, endpoint, on_full: spec.on_full });
    }
    Ok(socks)
}

/// Creates one socket as `spec` says: options first (libzmq applies most of them only to
/// connections made afterwards), ztick's default linger, then bind or connect. Returns the
/// socket and its endpoint (for a bind, the one libzmq resolved, with the real tcp port).
pub(crate) fn open_socket(ctx: &RawContext, spec: &SocketSpec) -> Result<(RawSocket, String)> {
    let kind = spec.kind.as_str();
    let ep = spec.endpoint.to_string();
    let err = |op, source| Error::Zmq { op, kind, endpoint: Some(ep.clone()), source };
    if spec.options.curve.is_some() {
        crate::curve::require()?;
    }
    let raw = RawSocket::new(ctx, spec.kind).map_err(|e| err(Operation::Socket, e))?;
    let mut opts = spec.options.clone();
    if opts.linger.is_none() {
        opts.linger = Some(Some(SocketOptions::DEFAULT_LINGER));
    }
    raw.apply(&opts).map_err(|(name, e)| Error::Zmq {
        op: Operation::SetOption,
        kind,
        endpoint: Some(format!("{ep} (option {name})")),
        source: e,
    })?;
    if spec.xpub_verbose {
        raw.set_xpub_verbose(true).map_err(|e| err(Operation::SetOption, e))?;
    }
    if spec.xpub_nodrop {
        raw.set_xpub_nodrop(true).map_err(|e| err(Operation::SetOption, e))?;
    }
    for prefix in &spec.subscriptions {
        raw.subscribe(prefix).map_err(|e| err(Operation::SetOption, e))?;
    }
    let endpoint = if spec.bind {
        raw.bind(&ep).map_err(|e| err(Operation::Bind, e))?
    } else {
        raw.connect(&ep).map_err(|e| err(Operation::Connect, e))?;
        ep.clone()
    };
    Ok((raw, endpoint))
}

#[allow(clippy::too_many_arguments)]
fn run_worker(
    ctx: &RawContext,
    core: Option<usize>,
    specs: &[SocketSpec],
    shared: &Shared,
    rx: &Receiver<Command>,
    cfg: LoopConfig,
    ready: &crossbeam_channel::Sender<Result<Vec<String>>>,
    handler: &mut dyn Handler,
) -> Result<WorkerReport> {
    if let Some(c) = core {
        if !sys::pin_current_thread(c) {
            let e = Error::Core { core: c, available: sys::available_cores() };
            let _ = ready.send(Err(Error::Core { core: c, available: sys::available_cores() }));
            return Err(e);
        }
    }
    let socks = match open_sockets(ctx, specs) {
        Ok(s) => s,
        Err(e) => {
            let text = e.to_string();
            let _ = ready.send(Err(e));
            return Err(Error::Stopped(text));
        }
    };
    let _ = ready.send(Ok(socks.iter().map(|s| s.endpoint.clone()).collect()));
    let mut lp = Loop {
        socks: &socks,
        shared,
        rx,
        cfg,
        frames: (0..socks.len()).map(|_| vec![Msg::new()]).collect(),
        pending: None,
        stop: Cell::new(false),
        wake_at: Cell::new(None),
        first_error: Cell::new(None),
        tally: Tally::default(),
        poll_items: Vec::with_capacity(socks.len() + 1),
        poll_fds: Vec::with_capacity(socks.len() + 1),
    };
    let mut ctx = lp.ctx();
    if let Err(e) = handler.on_start(&mut ctx) {
        lp.handler_error(&e);
    }
    let res = lp.run(handler);
    let mut ctx = lp.ctx();
    handler.on_stop(&mut ctx);
    lp.tally.flush(&shared.counters);
    res?;
    Ok(WorkerReport {
        name: shared.name.clone(),
        stats: shared.counters.snapshot(),
        first_error: lp.first_error.take(),
    })
}

struct Loop<'a> {
    socks: &'a [Sock],
    shared: &'a Shared,
    rx: &'a Receiver<Command>,
    cfg: LoopConfig,
    /// Reusable receive slots, one list per socket; grows to the largest frame count seen.
    frames: Vec<Vec<Msg>>,
    /// The hand-off that met a full HWM under `FullPolicy::Block`. At most one: the inbox
    /// is not drained while it waits, which is the back-pressure.
    pending: Option<(SocketId, Outbound)>,
    stop: Cell<bool>,
    wake_at: Cell<Option<Instant>>,
    first_error: Cell<Option<String>>,
    tally: Tally,
    /// The poll set, rebuilt in place on every park so parking never allocates.
    poll_items: Vec<PollItem>,
    /// The same for sub-millisecond parks (`ppoll` on raw fds).
    poll_fds: Vec<libc::pollfd>,
}

impl Loop<'_> {
    fn ctx(&self) -> WorkerCtx<'_> {
        WorkerCtx {
            socks: self.socks,
            shared: self.shared,
            tally: &self.tally,
            stop: &self.stop,
            wake_at: &self.wake_at,
            first_error: &self.first_error,
        }
    }

    fn run(&mut self, handler: &mut dyn Handler) -> Result<()> {
        let mut idler = Idler::new(self.cfg.idle);
        let mut stop_deadline: Option<Instant> = None;
        loop {
            // A stop request must be seen even while a blocked send keeps the inbox (and the
            // Stop command in it) unread.
            if !self.stop.get() && self.shared.stop_requested.load(Ordering::Acquire) {
                self.stop.set(true);
            }
            let mut did_work = self.flush_pending()?;
            if self.pending.is_none() {
                did_work |= self.drain_inbox()?;
            }
            for i in 0..self.socks.len() {
                did_work |= self.receive(i, handler)?;
            }
            let mut ctx = self.ctx();
            match handler.on_tick(&mut ctx) {
                Ok(w) => did_work |= w,
                Err(e) => self.handler_error(&e),
            }
            if self.stop.get() {
                // The drain may take as long as it keeps making progress; it is cut off only
                // after `drain_timeout` without any (a peer that stopped reading).
                if did_work || stop_deadline.is_none() {
                    stop_deadline = Some(Instant::now() + self.cfg.drain_timeout);
                }
                let deadline = stop_deadline.unwrap_or_else(Instant::now);
                if self.pending.is_none() && self.rx.is_empty() {
                    return Ok(());
                }
                if Instant::now() >= deadline {
                    let left = u64::from(self.pending.take().is_some());
                    Tally::add(&self.tally.dropped, left);
                    tracing::warn!(worker = %self.shared.name, left, "drain timeout: unsent messages counted as dropped");
                    return Ok(());
                }
            }
            self.tally.flush(&self.shared.counters);
            match idler.next(did_work) {
                IdleAction::Spin => std::hint::spin_loop(),
                IdleAction::Yield => std::thread::yield_now(),
                IdleAction::Park(max) => self.park(max)?,
            }
        }
    }

    /// Sends up to `batch_max` hand-offs; true if any.
    fn drain_inbox(&mut self) -> Result<bool> {
        let mut n = 0;
        while n < self.cfg.batch_max {
            match self.rx.try_recv() {
                Ok(Command::Send(id, msg)) => {
                    n += 1;
                    self.send_handed(id, msg);
                    if self.pending.is_some() {
                        break;
                    }
                }
                Ok(Command::Run(f)) => {
                    n += 1;
                    let mut ctx = self.ctx();
                    f(&mut ctx);
                }
                Ok(Command::Stop) => {
                    self.stop.set(true);
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    // Every handle is gone: nobody can hand anything over or ask to stop.
                    self.stop.set(true);
                    break;
                }
            }
        }
        if n > 0 {
            Tally::add(&self.tally.batches, 1);
        }
        Ok(n > 0)
    }

    /// Sends a hand-off under its socket's policy; a blocked one goes to `pending`.
    fn send_handed(&mut self, id: SocketId, mut msg: Outbound) {
        let Some(sock) = self.socks.get(id.0) else {
            Tally::add(&self.tally.dropped, 1);
            tracing::warn!(worker = %self.shared.name, socket = id.0, "hand-off to an unknown socket id dropped");
            return;
        };
        match send_outbound(&sock.raw, &mut msg) {
            Ok(()) => {
                Tally::add(&self.tally.sent, 1);
            }
            Err(e) if e.is_again() && sock.on_full == FullPolicy::Block => self.pending = Some((id, msg)),
            Err(e) => {
                Tally::add(&self.tally.dropped, 1);
                if sock.on_full == FullPolicy::Error || !e.is_again() {
                    let err = zmq_err(Operation::Send, sock, e);
                    tracing::warn!(worker = %self.shared.name, error = %err, "send failed; message dropped");
                    let first = self.first_error.take().or_else(|| Some(err.to_string()));
                    self.first_error.set(first);
                }
            }
        }
    }

    /// Retries the blocked hand-off; true if it left (or failed for good).
    fn flush_pending(&mut self) -> Result<bool> {
        let Some((id, mut msg)) = self.pending.take() else { return Ok(false) };
        let sock = &self.socks[id.0];
        match send_outbound(&sock.raw, &mut msg) {
            Ok(()) => Tally::add(&self.tally.sent, 1),
            Err(e) if e.is_again() => {
                self.pending = Some((id, msg));
                return Ok(false);
            }
            Err(e) => {
                Tally::add(&self.tally.dropped, 1);
                tracing::warn!(worker = %self.shared.name, error = %zmq_err(Operation::Send, sock, e), "send failed; message dropped");
            }
        }
        Ok(true)
    }

    /// Receives up to `batch_max` messages from socket `i`; true if any.
    fn receive(&mut self, i: usize, handler: &mut dyn Handler) -> Result<bool> {
        let sock = &self.socks[i];
        if !sock.raw.kind().can_receive() {
            return Ok(false);
        }
        let mut got = 0;
        while got < self.cfg.batch_max {
            let slots = &mut self.frames[i];
            let mut n = 0;
            loop {
                if n == slots.len() {
                    slots.push(Msg::new());
                }
                // Frames after the first are already here: libzmq delivers messages whole.
                match sock.raw.recv_msg(&mut slots[n], n == 0) {
                    Ok(()) => {}
                    // EFSM: a REQ with no request out has nothing to receive yet.
                    Err(e) if n == 0 && (e.is_again() || e.is_fsm()) => return Ok(got > 0),
                    Err(e) if e.is_term() => {
                        self.stop.set(true);
                        return Ok(got > 0);
                    }
                    Err(e) => return Err(zmq_err(Operation::Recv, sock, e)),
                }
                let more = slots[n].more();
                n += 1;
                if !more {
                    break;
                }
                if n >= MAX_FRAMES {
                    // Discard the rest of this oversized message, reusing the last slot.
                    while slots[n - 1].more() {
                        if sock.raw.recv_msg(&mut slots[n - 1], false).is_err() {
                            break;
                        }
                    }
                    n = 0;
                    break;
                }
            }
            got += 1;
            Tally::add(&self.tally.received, 1);
            if n == 0 {
                self.handler_error(&Error::Decode {
                    context: format!("{} socket at {}", sock.raw.kind(), sock.endpoint),
                    reason: format!("message of more than {MAX_FRAMES} frames discarded"),
                });
                continue;
            }
            let mut ctx = self.ctx();
            let inbound = Inbound { frames: &self.frames[i][..n] };
            if let Err(e) = handler.on_message(&mut ctx, SocketId(i), &inbound) {
                self.handler_error(&e);
            }
        }
        Ok(true)
    }

    fn handler_error(&self, e: &Error) {
        let n = self.shared.counters.handler_errors.load(Ordering::Relaxed) + self.tally.handler_errors.get();
        Tally::add(&self.tally.handler_errors, 1);
        // The first few in full, then one in a thousand, so a hostile peer cannot flood the log.
        if n < 10 || n % 1000 == 0 {
            tracing::warn!(worker = %self.shared.name, error = %e, count = n + 1, "handler error");
        }
    }

    /// Parks in `zmq_poll` on every socket and the wake-up eventfd for at most `max`.
    fn park(&mut self, max: Duration) -> Result<()> {
        let shared = self.shared;
        shared.parked.store(true, Ordering::Relaxed);
        std::sync::atomic::fence(Ordering::SeqCst);
        // With a send blocked at the HWM the inbox is left unread on purpose: then wait for
        // the socket to become writable instead of spinning on the full inbox.
        let inbox_ready = self.pending.is_none() && !self.rx.is_empty();
        if inbox_ready || (self.stop.get() && self.pending.is_none()) {
            shared.parked.store(false, Ordering::Relaxed);
            return Ok(());
        }
        let mut timeout = max;
        if let Some(at) = self.wake_at.take() {
            timeout = timeout.min(at.saturating_duration_since(Instant::now()));
        }
        let mut blocked = self.pending.as_ref().map(|(id, _)| id.0);
        if let Some(i) = blocked {
            if matches!(self.socks[i].raw.kind(), SocketKind::Pub | SocketKind::XPub) {
                // libzmq reports PUB/XPUB as always writable, even when ZMQ_XPUB_NODROP
                // refuses the send, so polling for writability would return at once and
                // spin: retry on a short timer instead (about 5,000 wake-ups a second while
                // a slow subscriber holds the publisher back).
                blocked = None;
                timeout = timeout.min(PUB_BLOCKED_RETRY);
            }
        }
        if timeout < Duration::from_millis(1) && !timeout.is_zero() {
            let res = self.park_fine(timeout, blocked);
            shared.parked.store(false, Ordering::Relaxed);
            return res;
        }
        let items = &mut self.poll_items;
        items.clear();
        items.push(shared.wakeup.poll_item());
        for (i, s) in self.socks.iter().enumerate() {
            items.push(s.raw.poll_item(s.raw.kind().can_receive(), blocked == Some(i)));
        }
        let res = sys::poll(
            items,
            i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX).max(if timeout.is_zero() { 0 } else { 1 }),
        );
        shared.parked.store(false, Ordering::Relaxed);
        if items[0].is_readable() {
            shared.wakeup.drain();
        }
        match res {
            Ok(_) => Ok(()),
            Err(e) if e.is_term() => {
                self.stop.set(true);
                Ok(())
            }
            Err(e) => Err(Error::Zmq { op: Operation::Poll, kind: "worker", endpoint: None, source: e }),
        }
    }
}

/// How long a worker whose PUB/XPUB send is refused at the HWM waits before retrying.
const PUB_BLOCKED_RETRY: Duration = Duration::from_micros(200);

impl Loop<'_> {
    /// A park shorter than `zmq_poll`'s millisecond: `ppoll` on the sockets' `ZMQ_FD`s and
    /// the wake-up eventfd, after checking `ZMQ_EVENTS` (which `zmq_poll` does too: the fds
    /// only signal changes, so work already pending must be seen before sleeping).
    fn park_fine(&mut self, timeout: Duration, blocked: Option<usize>) -> Result<()> {
        let fds = &mut self.poll_fds;
        fds.clear();
        fds.push(libc::pollfd { fd: self.shared.wakeup.fd(), events: libc::POLLIN, revents: 0 });
        for (i, s) in self.socks.iter().enumerate() {
            let (readable, writable) = s.raw.events().map_err(|e| zmq_err(Operation::Poll, s, e))?;
            if (readable && s.raw.kind().can_receive()) || (writable && blocked == Some(i)) {
                return Ok(());
            }
            fds.push(libc::pollfd { fd: s.fd, events: libc::POLLIN, revents: 0 });
        }
        sys::poll_fds(fds, timeout)
            .map_err(|e| Error::Io { context: format!("worker {}: ppoll", self.shared.name), source: e })?;
        if fds[0].revents != 0 {
            self.shared.wakeup.drain();
        }
        Ok(())
    }
}

/// Sends every frame of `msg`; on EAGAIN for the first frame nothing was sent and `msg` is intact.
fn send_outbound(raw: &RawSocket, msg: &mut Outbound) -> std::result::Result<(), ZmqErrno> {
    let more = !msg.rest.is_empty();
    send_frame(raw, &mut msg.first.0, more, true)?;
    let n = msg.rest.len();
    for (i, f) in msg.rest.iter_mut().enumerate() {
        // Later frames cannot meet the HWM: libzmq counts whole messages.
        send_frame(raw, &mut f.0, i + 1 < n, false)?;
    }
    Ok(())
}

fn send_frame(
    raw: &RawSocket,
    f: &mut FrameRepr,
    more: bool,
    dont_wait: bool,
) -> std::result::Result<(), ZmqErrno> {
    match f {
        FrameRepr::Bytes(v) => raw.send_bytes(v, more, dont_wait),
        FrameRepr::Msg(m) => raw.send_msg(m, more, dont_wait),
        FrameRepr::Pooled(_) => {
            let FrameRepr::Pooled(buf) = std::mem::replace(f, FrameRepr::Bytes(Vec::new())) else {
                unreachable!("matched Pooled above")
            };
            *f = FrameRepr::Msg(buf.into_msg());
            let FrameRepr::Msg(m) = f else { unreachable!("just stored a Msg") };
            raw.send_msg(m, more, dont_wait)
        }
    }
}
