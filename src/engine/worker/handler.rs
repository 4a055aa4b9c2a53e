//! The code a worker runs: the [`Handler`] trait, and the adapters that make one from the
//! closures given to [`WorkerBuilder::on_message`]/[`WorkerBuilder::on_tick`] or from a
//! channel ([`WorkerBuilder::forward_to`]).

#[cfg(doc)]
use super::WorkerBuilder;
use super::WorkerCtx;
use crate::engine::SocketId;
use crate::error::{Error, Result};
use crate::message::Inbound;

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
#[derive(Default)]
pub(super) struct Closures {
    pub(super) message: Option<MessageHandler>,
    pub(super) tick: Option<TickHandler>,
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

/// The message handler of [`WorkerBuilder::forward_to`]: a copy of every message to `tx`.
/// A full channel makes the worker wait; a closed one is a handler error.
pub(super) fn forward(
    tx: crossbeam_channel::Sender<Received>,
) -> impl FnMut(&mut WorkerCtx<'_>, SocketId, &Inbound<'_>) -> Result<()> + Send + 'static {
    move |_, socket, msg| {
        tx.send(Received { socket, frames: msg.to_vec() })
            .map_err(|_| Error::Stopped("the channel received messages are forwarded to is closed".into()))
    }
}
