//! The application side of a worker: a bounded hand-off channel plus a wake-up.

use std::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Sender, TrySendError};

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
}

impl Shared {
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

/// Why a hand-off failed; the message comes back so nothing is lost.
#[derive(Debug)]
pub enum SendError {
    /// The hand-off channel is full (only from `try_send` and `send_timeout`).
    Full(Outbound),
    /// The worker has stopped.
    Stopped(Outbound),
}

impl SendError {
    /// The message that was not handed over.
    pub fn into_inner(self) -> Outbound {
        match self {
            SendError::Full(m) | SendError::Stopped(m) => m,
        }
    }
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Full(_) => f.write_str("worker's hand-off channel is full"),
            SendError::Stopped(_) => f.write_str("worker has stopped"),
        }
    }
}

impl std::error::Error for SendError {}

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
    pub fn send(&self, socket: SocketId, msg: impl Into<Outbound>) -> Result<(), SendError> {
        self.tx.send(Command::Send(socket, msg.into())).map_err(|e| match e.into_inner() {
            Command::Send(_, m) => SendError::Stopped(m),
            _ => unreachable_command(),
        })?;
        self.shared.notify();
        Ok(())
    }

    /// Hands `msg` over if the channel has room now.
    pub fn try_send(&self, socket: SocketId, msg: impl Into<Outbound>) -> Result<(), SendError> {
        self.tx.try_send(Command::Send(socket, msg.into())).map_err(|e| match e {
            TrySendError::Full(Command::Send(_, m)) => SendError::Full(m),
            TrySendError::Disconnected(Command::Send(_, m)) => SendError::Stopped(m),
            _ => unreachable_command(),
        })?;
        self.shared.notify();
        Ok(())
    }

    /// Hands `msg` over, waiting at most `timeout` for room.
    pub fn send_timeout(
        &self,
        socket: SocketId,
        msg: impl Into<Outbound>,
        timeout: Duration,
    ) -> Result<(), SendError> {
        use crossbeam_channel::SendTimeoutError as E;
        self.tx.send_timeout(Command::Send(socket, msg.into()), timeout).map_err(|e| match e {
            E::Timeout(Command::Send(_, m)) => SendError::Full(m),
            E::Disconnected(Command::Send(_, m)) => SendError::Stopped(m),
            _ => unreachable_command(),
        })?;
        self.shared.notify();
        Ok(())
    }

    /// Runs `f` on the worker thread, with access to its sockets. Returns false if the
    /// worker has stopped.
    pub fn run(&self, f: impl FnOnce(&mut WorkerCtx<'_>) + Send + 'static) -> bool {
        let ok = self.tx.send(Command::Run(Box::new(f))).is_ok();
        self.shared.notify();
        ok
    }

    /// Asks the worker to stop: it drains what was handed over, then closes its sockets.
    pub fn stop(&self) {
        self.shared.stop_requested.store(true, Ordering::Release);
        let _ = self.tx.send(Command::Stop);
        self.shared.notify();
    }

    /// The worker's counters now.
    pub fn stats(&self) -> WorkerStats {
        self.shared.counters.snapshot()
    }
}

/// The channel gives back exactly the command it was given; a `Send` always returns as one.
#[cold]
fn unreachable_command() -> ! {
    unreachable!("a failed send returns the command it was given")
}
