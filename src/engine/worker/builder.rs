//! Starting a worker: the [`WorkerBuilder`] that collects its sockets and handler, the
//! spawn that checks the core budget and starts the thread (pinned, panics caught), and the
//! running [`Worker`] with the [`WorkerReport`] it ends with.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Receiver;

use super::event_loop::{close_inbox, Loop, LoopConfig};
use super::handler::{self, Closures};
use super::inline::InlineWorker;
use super::spec::open_sockets;
use super::{Handler, Received, SocketSpec, WorkerCtx};
use crate::config::{CoreId, SchedPolicy};
use crate::engine::handle::{Command, Handle, Shared, WorkerStats};
use crate::engine::idle::IdleStrategy;
use crate::engine::monitor::SocketMonitor;
use crate::engine::{budget, Engine, SocketId};
use crate::error::{Error, Result};
use crate::message::Inbound;
use crate::sys::{self, RawContext, Wakeup};

/// Configures and starts a worker; from [`Engine::worker`].
///
/// # Examples
///
/// A worker that counts what it receives, fed by a second worker through its [`Handle`]:
///
/// ```
/// use std::time::{Duration, Instant};
/// use ztick::{Endpoint, Engine, IdleStrategy, SocketKind, SocketSpec};
///
/// let engine = Engine::new()?;
/// let ep = Endpoint::unique_inproc("doc-worker");
/// let mut b = engine.worker("sink").idle(IdleStrategy::BLOCK);
/// b.socket(SocketSpec::bind(SocketKind::Pull, ep.clone()));
/// let sink = b.on_message(|_ctx, _socket, _msg| Ok(())).spawn()?;
///
/// let mut b = engine.worker("source");
/// let push = b.socket(SocketSpec::connect(SocketKind::Push, ep));
/// let source = b.spawn()?;
/// for _ in 0..3 {
///     source.handle().send(push, b"tick".to_vec()).expect("the worker runs");
/// }
/// let deadline = Instant::now() + Duration::from_secs(10);
/// while sink.stats().received < 3 && Instant::now() < deadline {
///     std::thread::sleep(Duration::from_millis(1));
/// }
/// source.stop()?;
/// assert_eq!(sink.stop()?.stats.received, 3);
/// # Ok::<(), ztick::Error>(())
/// ```
///
/// [`Handle`]: crate::Handle
pub struct WorkerBuilder<'e> {
    engine: &'e Engine,
    name: String,
    core: Option<CoreId>,
    sched: SchedPolicy,
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
            sched: SchedPolicy::Other,
            idle: IdleStrategy::default(),
            batch_max: 64,
            inbox_capacity: 4096,
            drain_timeout: Duration::from_secs(5),
            sockets: Vec::new(),
            closures: Closures::default(),
            handler: None,
        }
    }

    /// Pins the worker thread to `core` (an id from [`Engine::cores`]). Default: not pinned.
    pub fn pin(mut self, core: Option<CoreId>) -> Self {
        self.core = core;
        self
    }

    /// The worker thread's scheduling policy. Default [`SchedPolicy::Other`]. A real-time
    /// policy lets a worker that sleeps (a blocking idle strategy) take its core back as
    /// soon as it wakes, ahead of time-shared threads. Where the OS refuses it (no
    /// `CAP_SYS_NICE`, `RLIMIT_RTPRIO` too low) the worker runs under `SCHED_OTHER` with a
    /// warning, and [`Worker::sched`] says so. Do not combine it with a spinning strategy
    /// on a core that libzmq's I/O thread needs.
    pub fn sched(mut self, policy: SchedPolicy) -> Self {
        self.sched = policy;
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
        self.on_message(handler::forward(tx))
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

    /// Opens the worker's sockets on the calling thread and returns them, with `handler`, as
    /// an [`InlineWorker`]: the same loop, run a pass at a time by the caller, so what the
    /// caller sends leaves with no hand-off to another thread. The thread is the caller's:
    /// [`pin`](Self::pin) and [`sched`](Self::sched) do not apply, nor does the core budget;
    /// of the [`idle`](Self::idle) strategies only
    /// [`SpinToDeadline`](IdleStrategy::SpinToDeadline) changes anything (the caller decides
    /// when to wait, and with it [`InlineWorker::run_until`] spins to its deadline). Handlers
    /// set with `on_message`/`on_tick` are not used.
    ///
    /// # Errors
    /// Any socket that could not be created, configured, bound or connected.
    pub fn inline<H: Handler>(self, handler: H) -> Result<InlineWorker<H>> {
        let wakeup = Wakeup::new().map_err(|e| Error::Io {
            context: format!("creating the eventfd of inline worker {}", self.name),
            source: e,
        })?;
        let shared = Arc::new(Shared::new(self.name, wakeup));
        let (tx, rx) = crossbeam_channel::bounded(self.inbox_capacity);
        let ctx = Arc::clone(&self.engine.ctx);
        let socks = open_sockets(&ctx, &self.sockets)?;
        let cfg =
            LoopConfig { idle: self.idle, batch_max: self.batch_max, drain_timeout: self.drain_timeout };
        let lp = Loop::new(socks, Arc::clone(&shared), rx, cfg);
        Ok(InlineWorker::new(lp, handler, Handle { tx, shared }, ctx))
    }

    /// Starts the worker; returns once its sockets are bound or connected.
    ///
    /// # Errors
    /// A core that does not exist, a real-time priority the OS does not know, a core
    /// budget exceeded by a spinning strategy, or any socket that could not be created,
    /// configured, bound or connected.
    pub fn spawn(self) -> Result<Worker> {
        let engine = self.engine;
        if let Some(priority) = self.sched.priority() {
            let range = sys::sched_priority_range(sys::sched_params(self.sched).0);
            if !range.contains(&i32::from(priority)) {
                let valid = format!("{}..={} for {:?}", range.start(), range.end(), self.sched);
                return Err(Error::config("worker scheduling priority", priority, valid));
            }
        }
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
        let shared = Arc::new(Shared::new(self.name.clone(), wakeup));
        let (tx, rx) = crossbeam_channel::bounded(self.inbox_capacity);
        let (ready_tx, ready_rx) = crossbeam_channel::bounded::<Result<Opened>>(1);
        let ctx = Arc::clone(&engine.ctx);
        let shared2 = Arc::clone(&shared);
        let name = self.name.clone();
        let cfg =
            LoopConfig { idle: self.idle, batch_max: self.batch_max, drain_timeout: self.drain_timeout };
        let specs = self.sockets;
        let core = self.core;
        let (asked, sched) = (self.sched, Arc::new(OnceLock::new()));
        let sched2 = Arc::clone(&sched);
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
                let _ = sched2.set(apply_sched(asked, &worker_name));
                let mut result = catch_unwind(AssertUnwindSafe(|| {
                    run_worker(&ctx, core, &specs, &shared2, &rx, cfg, &ready_tx, handler.as_mut())
                }));
                // Whatever is still in the channel was handed over and never sent: count it,
                // with what senders in the middle of a hand-off queue before they see the
                // worker closed (every later one is refused).
                let left = close_inbox(&shared2, &rx);
                if let Ok(Ok(report)) = &mut result {
                    report.stats.dropped += left;
                }
                drop(rx);
                match result {
                    Ok(r) => r,
                    Err(payload) => {
                        let message = panic_message(&payload);
                        let _ = ready_tx.try_send(Err(Error::WorkerPanicked {
                            worker: worker_name.clone(),
                            message: message.clone(),
                        }));
                        Err(Error::WorkerPanicked { worker: worker_name, message })
                    }
                }
            })
            .map_err(|e| Error::Io { context: format!("spawning worker thread {}", self.name), source: e })?;
        let Opened { endpoints, monitors } = match ready_rx.recv() {
            Ok(Ok(opened)) => opened,
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
        Ok(Worker {
            name: self.name,
            handle: Handle { tx, shared },
            thread: Some(thread),
            endpoints,
            monitors,
            sched,
        })
    }
}

/// Puts the calling worker thread under `asked`; returns the policy it runs under (the
/// default one, with a warning, when the OS refused).
fn apply_sched(asked: SchedPolicy, worker: &str) -> SchedPolicy {
    if asked == SchedPolicy::Other {
        return asked;
    }
    match sys::set_current_thread_sched(asked) {
        Ok(()) => asked,
        Err(e) => {
            tracing::warn!(
                worker,
                policy = ?asked,
                error = %e,
                "real-time scheduling refused: the worker runs under SCHED_OTHER (grant CAP_SYS_NICE, \
                 or raise RLIMIT_RTPRIO with ulimit -r)"
            );
            SchedPolicy::Other
        }
    }
}

/// What a worker thread says once its sockets are open: their endpoints (as resolved) and
/// their monitors' handles, in socket order.
struct Opened {
    endpoints: Vec<String>,
    monitors: Vec<Option<SocketMonitor>>,
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
    monitors: Vec<Option<SocketMonitor>>,
    sched: Arc<OnceLock<SchedPolicy>>,
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
    /// The first send refused at the HWM (under [`FullPolicy::Error`](crate::FullPolicy::Error),
    /// or a `Block` that gave up), if any.
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

    /// The counters of a socket's monitor, readable from any thread while the worker runs
    /// and after; `None` for a socket whose spec did not turn
    /// [`monitor`](crate::SocketSpec::monitor) on.
    pub fn monitor(&self, socket: SocketId) -> Option<SocketMonitor> {
        self.monitors.get(socket.0).cloned().flatten()
    }

    /// The worker's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The scheduling policy the worker thread runs under: the one asked for with
    /// [`WorkerBuilder::sched`], or [`SchedPolicy::Other`] where the OS refused it.
    pub fn sched(&self) -> SchedPolicy {
        self.sched.get().copied().unwrap_or(SchedPolicy::Other)
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

/// The worker thread's body up to its report: pins the thread, opens the sockets, says it is
/// ready (or why not) on `ready`, then runs the handler's loop.
#[allow(clippy::too_many_arguments)]
fn run_worker(
    ctx: &RawContext,
    core: Option<CoreId>,
    specs: &[SocketSpec],
    shared: &Arc<Shared>,
    rx: &Receiver<Command>,
    cfg: LoopConfig,
    ready: &crossbeam_channel::Sender<Result<Opened>>,
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
    let _ = ready.send(Ok(Opened {
        endpoints: socks.iter().map(|s| s.endpoint.clone()).collect(),
        monitors: socks.iter().map(|s| s.monitor.as_ref().map(|m| m.handle())).collect(),
    }));
    let first_error = Loop::new(socks, Arc::clone(shared), rx.clone(), cfg).serve(handler)?;
    Ok(WorkerReport { name: shared.name.clone(), stats: shared.counters.snapshot(), first_error })
}
