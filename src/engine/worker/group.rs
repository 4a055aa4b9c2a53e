//! Several handlers on one worker: a [`HandlerGroup`] gives each member the messages of its
//! own sockets, ends a member on its own `stop`, and ends the worker once every member has.

use std::cell::Cell;

#[cfg(doc)]
use super::WorkerBuilder;
use super::{Handler, WorkerCtx};
use crate::engine::SocketId;
use crate::error::{Error, Result};
use crate::message::Inbound;

/// Several [`Handler`]s on one worker thread, each owning the sockets it was added with.
///
/// One thread instead of one per handler: on a machine with few cores, fewer threads queue
/// for them. Each member gets `on_message` for its own sockets only, `on_tick` on every
/// pass, and a `stop` of its own: [`WorkerCtx::stop`] from a member ends that member (its
/// `on_stop` runs at once, while the sockets are still open, and the member is dropped;
/// later messages on its sockets are discarded), and the worker stops once every member
/// has. A member's sockets stay open until the worker ends, so a member whose peers must
/// see it leave says so in its `on_stop` (the fan-out's subscribers unsubscribe there). Timers are shared: the
/// worker wakes for the earliest any member asked for. A stop of the whole worker runs the
/// `on_stop` of every member still running.
///
/// ```
/// use ztick::{Engine, Handler, HandlerGroup, Inbound, SocketId, WorkerCtx};
///
/// /// Stops itself after its count of passes of the loop.
/// struct Countdown(u32, &'static str);
///
/// impl Handler for Countdown {
///     fn on_message(&mut self, _: &mut WorkerCtx<'_>, _: SocketId, _: &Inbound<'_>) -> ztick::Result<()> {
///         Ok(())
///     }
///     fn on_tick(&mut self, ctx: &mut WorkerCtx<'_>) -> ztick::Result<bool> {
///         self.0 -= 1;
///         if self.0 == 0 {
///             ctx.stop(); // this member only
///         }
///         Ok(true)
///     }
///     fn on_stop(&mut self, _: &mut WorkerCtx<'_>) {
///         println!("{} done", self.1);
///     }
/// }
///
/// let engine = Engine::new()?;
/// let group = HandlerGroup::new().member(&[], Countdown(3, "short"))?.member(&[], Countdown(50, "long"))?;
/// // The worker ends by itself once both members have stopped.
/// let report = engine.worker("two-in-one").handler(group).spawn()?.join()?;
/// assert_eq!(report.name, "two-in-one");
/// # Ok::<(), ztick::Error>(())
/// ```
#[derive(Default)]
pub struct HandlerGroup {
    members: Vec<Member>,
    /// The member that owns each socket, by socket index.
    owner: Vec<Option<usize>>,
}

/// One handler of a group; `None` once it stopped (and was dropped).
type Member = Option<Box<dyn Handler>>;

impl std::fmt::Debug for HandlerGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let running = self.members.iter().filter(|m| m.is_some()).count();
        f.debug_struct("HandlerGroup")
            .field("members", &self.members.len())
            .field("running", &running)
            .finish()
    }
}

impl HandlerGroup {
    /// An empty group (a worker with no member stops at once).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `handler`, which owns `sockets` (ids from this worker's
    /// [`WorkerBuilder::socket`]).
    ///
    /// # Errors
    /// A socket another member owns already: each message goes to one member.
    pub fn member(mut self, sockets: &[SocketId], handler: impl Handler + 'static) -> Result<Self> {
        if let Some(s) = sockets.iter().find(|s| self.owner.get(s.0).is_some_and(Option::is_some)) {
            return Err(Error::config(
                "socket id",
                s.0,
                "a socket no other member of the handler group owns (each message goes to one)",
            ));
        }
        let index = self.members.len();
        for s in sockets {
            if self.owner.len() <= s.0 {
                self.owner.resize(s.0 + 1, None);
            }
            self.owner[s.0] = Some(index);
        }
        self.members.push(Some(Box::new(handler)));
        Ok(self)
    }

    /// Runs `f` on member `i` with a context whose `stop` ends only that member; ends it
    /// when it asked to.
    fn on_member<T>(
        &mut self,
        ctx: &mut WorkerCtx<'_>,
        i: usize,
        f: impl FnOnce(&mut dyn Handler, &mut WorkerCtx<'_>) -> T,
    ) -> Option<T> {
        let slot = self.members.get_mut(i)?;
        let handler = slot.as_mut()?;
        let stop = Cell::new(false);
        let mut mine = ctx.member(&stop);
        let out = f(handler.as_mut(), &mut mine);
        if stop.get() {
            handler.on_stop(&mut mine);
            // Dropped now: what it holds (a channel to the application, say) is let go.
            *slot = None;
            if self.members.iter().all(Option::is_none) {
                ctx.stop();
            }
        }
        Some(out)
    }
}

impl Handler for HandlerGroup {
    fn on_start(&mut self, ctx: &mut WorkerCtx<'_>) -> Result<()> {
        if self.members.iter().all(Option::is_none) {
            ctx.stop();
        }
        // Every member starts, even after another's error (which the loop counts and goes
        // on from, as it does for a lone handler).
        let mut first_error = None;
        for i in 0..self.members.len() {
            if let Some(Err(e)) = self.on_member(ctx, i, |h, c| h.on_start(c)) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn on_message(&mut self, ctx: &mut WorkerCtx<'_>, socket: SocketId, msg: &Inbound<'_>) -> Result<()> {
        match self.owner.get(socket.0).copied().flatten() {
            // A member that ended, or a socket nobody owns: nobody wants it.
            Some(i) => self.on_member(ctx, i, |h, c| h.on_message(c, socket, msg)).unwrap_or(Ok(())),
            None => Ok(()),
        }
    }

    fn on_tick(&mut self, ctx: &mut WorkerCtx<'_>) -> Result<bool> {
        let mut did_work = false;
        let mut first_error = None;
        for i in 0..self.members.len() {
            match self.on_member(ctx, i, |h, c| h.on_tick(c)) {
                Some(Ok(w)) => did_work |= w,
                Some(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                None => {}
            }
        }
        // One member's error does not keep the others from their tick.
        first_error.map_or(Ok(did_work), Err)
    }

    fn on_stop(&mut self, ctx: &mut WorkerCtx<'_>) {
        for mut h in self.members.iter_mut().filter_map(Option::take) {
            h.on_stop(ctx);
        }
    }
}
