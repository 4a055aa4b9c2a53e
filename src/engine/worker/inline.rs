//! A worker without a thread: the [`InlineWorker`] whose sockets live on the thread that
//! opened them, running the same loop as a spawned worker a pass at a time when that thread
//! calls it. What it saves is the hop: a send from the caller goes straight onto the socket,
//! with no channel, no wake-up and no second thread to schedule.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::builder::WorkerReport;
use super::event_loop::{close_inbox, Loop};
use super::{Handler, WorkerCtx};
use crate::engine::handle::{Handle, WorkerStats};
use crate::engine::monitor::SocketMonitor;
use crate::engine::SocketId;
use crate::error::Result;
use crate::sys::RawContext;

/// The longest single park of [`InlineWorker::run_until`] and of the drain at stop, so a
/// stop asked through a [`Handle`] is seen within this long.
const MAX_PARK: Duration = Duration::from_millis(100);

/// A worker run on the caller's thread: its sockets, its handler and the loop of a spawned
/// [`Worker`](crate::Worker), from [`WorkerBuilder::inline`](crate::WorkerBuilder::inline).
///
/// Nothing happens between calls: each [`pass`](Self::pass) receives what has arrived, sends
/// what handles handed over and runs the handler's `on_tick`;
/// [`run_until`](Self::run_until) passes and parks until a deadline; [`with`](Self::with)
/// lends the handler and the sockets to the caller, which is how it sends with no hand-off.
/// Dropping it (or [`stop`](Self::stop)) drains what was handed over, runs `on_stop` and
/// closes the sockets.
///
/// ```
/// use std::time::{Duration, Instant};
/// use ztick::{Endpoint, Engine, Handler, Inbound, Result, SocketId, SocketKind, SocketSpec, WorkerCtx};
///
/// /// Counts what arrives.
/// struct Count(usize);
/// impl Handler for Count {
///     fn on_message(&mut self, _: &mut WorkerCtx<'_>, _: SocketId, _: &Inbound<'_>) -> Result<()> {
///         self.0 += 1;
///         Ok(())
///     }
/// }
///
/// let engine = Engine::new()?;
/// let ep = Endpoint::unique_inproc("doc-inline");
/// let mut b = engine.worker("sink");
/// b.socket(SocketSpec::bind(SocketKind::Pull, ep.clone()));
/// let mut sink = b.inline(Count(0))?;
///
/// let mut b = engine.worker("source");
/// let push = b.socket(SocketSpec::connect(SocketKind::Push, ep));
/// let mut source = b.inline(Count(0))?;
/// // The caller's own send: straight onto the PUSH socket.
/// source.with(|_, ctx| ctx.send(push, b"tick"))?;
///
/// let deadline = Instant::now() + Duration::from_secs(10);
/// while sink.handler().0 < 1 && Instant::now() < deadline {
///     sink.run_until(Instant::now() + Duration::from_millis(10))?;
/// }
/// assert_eq!(sink.stop()?.stats.received, 1);
/// # Ok::<(), ztick::Error>(())
/// ```
pub struct InlineWorker<H: Handler> {
    // Field order is drop order: the sockets close before the context's last reference goes.
    lp: Loop,
    handler: H,
    handle: Handle,
    /// Set once the loop has ended (`stop`, or the drop): it is not ended twice.
    ended: bool,
    _ctx: Arc<RawContext>,
}

impl<H: Handler> std::fmt::Debug for InlineWorker<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InlineWorker").field("name", &self.name()).finish()
    }
}

impl<H: Handler> InlineWorker<H> {
    /// A worker over `lp`'s open sockets; runs the handler's `on_start`.
    pub(super) fn new(mut lp: Loop, mut handler: H, handle: Handle, ctx: Arc<RawContext>) -> Self {
        lp.start(&mut handler);
        InlineWorker { lp, handler, handle, ended: false, _ctx: ctx }
    }

    /// One pass of the loop, without waiting: the inbox (what handles handed over), every
    /// socket (into the handler's `on_message`), every monitor, then `on_tick`. Returns
    /// whether any of it did work.
    ///
    /// # Errors
    /// A socket error that would end a spawned worker's loop.
    pub fn pass(&mut self) -> Result<bool> {
        self.lp.pass(&mut self.handler)
    }

    /// Waits until a socket or a monitor has something to read, a handle hands something
    /// over, or the handler's [`wake_at`](WorkerCtx::wake_at) time comes; at most `max`.
    /// Sub-millisecond waits use `ppoll`, so their precision is the thread's timer slack.
    ///
    /// # Errors
    /// A failed poll.
    pub fn park(&mut self, max: Duration) -> Result<()> {
        self.lp.park(max)
    }

    /// Passes, and parks while there is nothing to do, until `deadline` or until the worker
    /// is asked to stop ([`is_stopping`](Self::is_stopping)): a caller's wait that keeps the
    /// sockets served. Under [`IdleStrategy::SpinToDeadline`](crate::IdleStrategy) it spins
    /// the last stretch to `deadline` instead of sleeping.
    ///
    /// # Errors
    /// As [`pass`](Self::pass) and [`park`](Self::park).
    pub fn run_until(&mut self, deadline: Instant) -> Result<()> {
        loop {
            let worked = self.pass()?;
            let now = Instant::now();
            if now >= deadline || self.is_stopping() {
                return Ok(());
            }
            if !worked {
                // As a timer of the handler's: a `SpinToDeadline` strategy spins to it.
                self.lp.ctx().wake_at(deadline);
                self.park(MAX_PARK)?;
            }
        }
    }

    /// Lends the handler and the worker's context to `f`, on this thread: a send through the
    /// context leaves at once, under the socket's HWM policy.
    pub fn with<R>(&mut self, f: impl FnOnce(&mut H, &mut WorkerCtx<'_>) -> R) -> R {
        let mut ctx = self.lp.ctx();
        f(&mut self.handler, &mut ctx)
    }

    /// The handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// The handler, to change.
    pub fn handler_mut(&mut self) -> &mut H {
        &mut self.handler
    }

    /// True once the handler called [`WorkerCtx::stop`] or a handle asked it to stop.
    pub fn is_stopping(&self) -> bool {
        self.lp.stopping()
    }

    /// A handle, for other threads to hand messages over or to ask for a stop; what they
    /// hand over is sent on this thread's next pass.
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// The endpoint a socket bound or connected to (`tcp://127.0.0.1:*` becomes the chosen
    /// port).
    pub fn endpoint(&self, socket: SocketId) -> Option<&str> {
        self.lp.socks().get(socket.0).map(|s| s.endpoint.as_str())
    }

    /// The counters of a socket's monitor; `None` for a socket whose spec did not turn
    /// [`monitor`](crate::SocketSpec::monitor) on.
    pub fn monitor(&self, socket: SocketId) -> Option<SocketMonitor> {
        self.lp.socks().get(socket.0)?.monitor.as_ref().map(|m| m.handle())
    }

    /// The worker's name.
    pub fn name(&self) -> &str {
        &self.lp.shared().name
    }

    /// Its counters.
    pub fn stats(&self) -> WorkerStats {
        self.lp.shared().counters.snapshot()
    }

    /// Stops the worker as [`Worker::stop`](crate::Worker::stop) does: sends what was handed
    /// over (up to its drain timeout), runs `on_stop`, closes the sockets.
    ///
    /// # Errors
    /// A socket error during the drain.
    pub fn stop(mut self) -> Result<WorkerReport> {
        self.end()
    }

    fn end(&mut self) -> Result<WorkerReport> {
        self.ended = true;
        self.lp.ctx().stop();
        let res = self.drain();
        self.lp.end(&mut self.handler);
        close_inbox(self.lp.shared(), self.lp.rx());
        res?;
        let shared = self.lp.shared();
        Ok(WorkerReport {
            name: shared.name.clone(),
            stats: shared.counters.snapshot(),
            first_error: self.lp.take_first_error(),
        })
    }

    fn drain(&mut self) -> Result<()> {
        loop {
            let worked = self.lp.pass(&mut self.handler)?;
            if self.lp.finished(worked) {
                return Ok(());
            }
            if !worked {
                self.lp.park(MAX_PARK)?;
            }
        }
    }
}

impl<H: Handler> Drop for InlineWorker<H> {
    fn drop(&mut self) {
        if !self.ended {
            if let Err(e) = self.end() {
                tracing::warn!(worker = %self.name(), error = %e, "inline worker ended with an error");
            }
        }
    }
}
