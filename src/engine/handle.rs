//! The application side of a worker: a bounded hand-off channel plus a wake-up.

use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Sender;

use super::worker::WorkerCtx;
use super::SocketId;
use crate::message::Outbound;
use crate::sys::Wakeup;

/// Work handed to a worker.
pub(crate) enum Command {
    Send(SocketId, Outbound),
    Run(Box<dyn FnOnce(&mut WorkerCtx<'_>) + Send>),
    Stop,
}

/// Live counters of a worker, readable from any thread.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) sent: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) batches: AtomicU64,
    pub(crate) received: AtomicU64,
    pub(crate) handler_errors: AtomicU64,
}

/// A snapshot of a worker's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WorkerStats {
    /// Messages handed to libzmq.
    pub sent: u64,
    /// Messages discarded: by the `Drop`/`Error` policies at the HWM, or still queued when a
    /// stop's drain deadline passed. Never silent: also traced.
    pub dropped: u64,
    /// Wake-ups that drained at least one hand-off (sent / batches is the mean batch size).
    pub batches: u64,
    /// Messages received and passed to the handler.
    pub received: u64,
    /// Handler calls that returned an error (bad input from a peer, for instance).
    pub handler_errors: u64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> WorkerStats {
        WorkerStats {
            sent: self.sent.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            received: self.received.load(Ordering::Relaxed),
            handler_errors: self.handler_errors.load(Ordering::Relaxed),
        }
    }
}

/// State shared by a worker and its handles.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) wakeup: Wakeup,
    /// True while the worker is (about to be) parked in `zmq_poll`; a sender that swaps it
    /// from true to false owes the worker one wake-up signal.
    pub(crate) parked: AtomicBool,
    pub(crate) counters: Counters,
    pub(crate) name: String,
    /// Set by `Handle::stop` before its Stop command, so a handler waiting for room at the
    /// HWM gives up at once instead of holding the stop back.
    pub(crate) stop_requested: AtomicBool,
    /// Set by the worker once it is stopping: from then on a hand-off is refused (handed
    /// back to its sender), never queued behind the worker's last look at its inbox.
    pub(crate) closed: AtomicBool,
    /// Senders between their look at `closed` and the end of their channel send. The
    /// worker, once `closed` is set, takes its inbox until this is zero: a hand-off whose
    /// sender saw `closed` false is then in the inbox, so it is sent or counted, never lost.
    /// (Both sides use SeqCst: either the sender sees `closed`, or the worker sees it here.)
    pub(crate) in_flight: AtomicUsize,
}

impl Shared {
    /// A state for a worker named `name`, taking hand-offs.
    pub(crate) fn new(name: String, wakeup: Wakeup) -> Self {
        Shared {
            wakeup,
            parked: AtomicBool::new(false),
            counters: Counters::default(),
            name,
            stop_requested: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
        }
    }

    /// Enters a hand-off; `None` when the worker no longer takes any (then nothing was
    /// queued and the caller hands the message back).
    #[inline]
    fn enter(&self) -> Option<InFlight<'_>> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let guard = InFlight(self);
        if self.closed.load(Ordering::SeqCst) {
            return None; // the guard's drop leaves again
        }
        Some(guard)
    }

    /// Stops taking hand-offs and empties the inbox for good: waits until no sender is in
    /// the middle of one, taking (and passing to `each`) whatever they queued meanwhile.
    /// Called by the worker only; after it, every hand-off is refused.
    pub(crate) fn close(&self, rx: &crossbeam_channel::Receiver<Command>, mut each: impl FnMut(Command)) {
        self.closed.store(true, Ordering::SeqCst);
        loop {
            // Taking makes room for a sender blocked on a full channel, so it can finish.
            while let Ok(cmd) = rx.try_recv() {
                each(cmd);
            }
            if self.in_flight.load(Ordering::SeqCst) == 0 {
                // Every sender that entered has queued and left: take what they queued.
                while let Ok(cmd) = rx.try_recv() {
                    each(cmd);
                }
                return;
            }
            std::thread::yield_now();
        }
    }

    /// True while a sender is in the middle of a hand-off.
    pub(crate) fn hand_off_in_flight(&self) -> bool {
        self.in_flight.load(Ordering::SeqCst) != 0
    }

    /// Wakes the worker if it is parked. The fence pairs with the worker's fence between
    /// setting `parked` and checking its inbox, so either it sees our message or we see it parked.
    #[inline]
    pub(crate) fn notify(&self) {
        fence(Ordering::SeqCst);
        if self.parked.load(Ordering::Relaxed) && self.parked.swap(false, Ordering::AcqRel) {
            self.wakeup.signal();
        }
    }
}

/// [`Handle::send`] failed: the worker has stopped, or has begun to (once it stops it takes
/// no more hand-offs). The message comes back, so nothing is lost without the caller
/// knowing: every hand-off is either refused this way, or sent, or counted as dropped.
#[derive(Debug)]
pub struct SendError(pub Outbound);

/// [`Handle::try_send`] failed; the message comes back in either case.
#[derive(Debug)]
pub enum TrySendError {
    /// The hand-off channel has no room now.
    Full(Outbound),
    /// The worker has stopped.
    Stopped(Outbound),
}

/// [`Handle::send_timeout`] failed; the message comes back in either case.
#[derive(Debug)]
pub enum SendTimeoutError {
    /// The hand-off channel had no room for the whole timeout.
    Timeout(Outbound),
    /// The worker has stopped.
    Stopped(Outbound),
}

impl SendError {
    /// The message that was not handed over.
    pub fn into_inner(self) -> Outbound {
        self.0
    }
}

impl TrySendError {
    /// The message that was not handed over.
    pub fn into_inner(self) -> Outbound {
        match self {
            TrySendError::Full(m) | TrySendError::Stopped(m) => m,
        }
    }

    /// True when the channel was full (the worker still runs: retrying may succeed).
    pub fn is_full(&self) -> bool {
        matches!(self, TrySendError::Full(_))
    }

    /// True when the worker has stopped (retrying cannot succeed).
    pub fn is_stopped(&self) -> bool {
        matches!(self, TrySendError::Stopped(_))
    }
}

impl SendTimeoutError {
    /// The message that was not handed over.
    pub fn into_inner(self) -> Outbound {
        match self {
            SendTimeoutError::Timeout(m) | SendTimeoutError::Stopped(m) => m,
        }
    }

    /// True when the wait timed out (the worker still runs: retrying may succeed).
    pub fn is_timeout(&self) -> bool {
        matches!(self, SendTimeoutError::Timeout(_))
    }

    /// True when the worker has stopped (retrying cannot succeed).
    pub fn is_stopped(&self) -> bool {
        matches!(self, SendTimeoutError::Stopped(_))
    }
}

impl From<SendError> for TrySendError {
    fn from(e: SendError) -> Self {
        TrySendError::Stopped(e.0)
    }
}

impl From<SendError> for SendTimeoutError {
    fn from(e: SendError) -> Self {
        SendTimeoutError::Stopped(e.0)
    }
}

/// What to say when the worker is gone, in every error type.
const STOPPED: &str = "the worker has stopped, so the message was not handed over (it comes back \
                       in this error); see the worker's report (Worker::stop or Worker::join) for why it ended";

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(STOPPED)
    }
}

impl std::fmt::Display for TrySendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str(
                "the worker's hand-off channel is full (the message comes back in this error); \
                 retry later, wait with Handle::send or Handle::send_timeout, or raise \
                 WorkerBuilder::inbox_capacity",
            ),
            TrySendError::Stopped(_) => f.write_str(STOPPED),
        }
    }
}

impl std::fmt::Display for SendTimeoutError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendTimeoutError::Timeout(_) => f.write_str(
                "timed out waiting for room in the worker's hand-off channel (the message comes \
                 back in this error); the worker is behind, perhaps blocked at a peer's HWM: \
                 retry, wait longer, or raise WorkerBuilder::inbox_capacity",
            ),
            SendTimeoutError::Stopped(_) => f.write_str(STOPPED),
        }
    }
}

impl std::error::Error for SendError {}
impl std::error::Error for TrySendError {}
impl std::error::Error for SendTimeoutError {}

/// A cloneable, `Send + Sync` handle that application threads use to reach one worker.
#[derive(Clone)]
pub struct Handle {
    pub(crate) tx: Sender<Command>,
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle").field("worker", &self.shared.name).finish()
    }
}

impl Handle {
    /// Hands `msg` to the worker for sending on `socket`, waiting while the channel is full.
    ///
    /// # Errors
    /// [`SendError`], with the message, when the worker has stopped or begun to.
    pub fn send(&self, socket: SocketId, msg: impl Into<Outbound>) -> Result<(), SendError> {
        let msg = msg.into();
        let Some(_entered) = self.shared.enter() else { return Err(SendError(msg)) };
        self.tx.send(Command::Send(socket, msg)).map_err(|e| match e.into_inner() {
            Command::Send(_, m) => SendError(m),
            _ => unreachable_command(),
        })?;
        self.shared.notify();
        Ok(())
    }

    /// Hands `msg` over if the channel has room now.
    ///
    /// # Errors
    /// [`TrySendError::Full`] when it has none, [`TrySendError::Stopped`] when the worker
    /// has stopped; both with the message.
    pub fn try_send(&self, socket: SocketId, msg: impl Into<Outbound>) -> Result<(), TrySendError> {
        use crossbeam_channel::TrySendError as E;
        let msg = msg.into();
        let Some(_entered) = self.shared.enter() else { return Err(TrySendError::Stopped(msg)) };
        self.tx.try_send(Command::Send(socket, msg)).map_err(|e| match e {
            E::Full(Command::Send(_, m)) => TrySendError::Full(m),
            E::Disconnected(Command::Send(_, m)) => TrySendError::Stopped(m),
            _ => unreachable_command(),
        })?;
        self.shared.notify();
        Ok(())
    }

    /// Hands `msg` over, waiting at most `timeout` for room.
    ///
    /// # Errors
    /// [`SendTimeoutError::Timeout`] when no room came in time, [`SendTimeoutError::Stopped`]
    /// when the worker has stopped; both with the message.
    pub fn send_timeout(
        &self,
        socket: SocketId,
        msg: impl Into<Outbound>,
        timeout: Duration,
    ) -> Result<(), SendTimeoutError> {
        use crossbeam_channel::SendTimeoutError as E;
        let msg = msg.into();
        let Some(_entered) = self.shared.enter() else { return Err(SendTimeoutError::Stopped(msg)) };
        self.tx.send_timeout(Command::Send(socket, msg), timeout).map_err(|e| match e {
            E::Timeout(Command::Send(_, m)) => SendTimeoutError::Timeout(m),
            E::Disconnected(Command::Send(_, m)) => SendTimeoutError::Stopped(m),
            _ => unreachable_command(),
        })?;
        self.shared.notify();
        Ok(())
    }

    /// Runs `f` on the worker thread, with access to its sockets. Returns false if the
    /// worker has stopped.
    pub fn run(&self, f: impl FnOnce(&mut WorkerCtx<'_>) + Send + 'static) -> bool {
        let Some(_entered) = self.shared.enter() else { return false };
        let ok = self.tx.send(Command::Run(Box::new(f))).is_ok();
        self.shared.notify();
        ok
    }

    /// Asks the worker to stop: it drains what was handed over, then closes its sockets.
    /// Hand-offs from then on are refused (handed back).
    pub fn stop(&self) {
        self.shared.stop_requested.store(true, Ordering::Release);
        if let Some(_entered) = self.shared.enter() {
            let _ = self.tx.send(Command::Stop);
        }
        self.shared.notify();
    }

    /// The worker's counters now.
    pub fn stats(&self) -> WorkerStats {
        self.shared.counters.snapshot()
    }
}

/// A sender inside a hand-off (see `Shared::in_flight`); leaving is the drop.
struct InFlight<'a>(&'a Shared);

impl Drop for InFlight<'_> {
    #[inline]
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The channel gives back exactly the command it was given; a `Send` always returns as one.
#[cold]
fn unreachable_command() -> ! {
    unreachable!("a failed send returns the command it was given")
}
