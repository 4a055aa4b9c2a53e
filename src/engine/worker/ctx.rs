//! What a handler can do on its worker thread: the [`WorkerCtx`] that sends now under the
//! socket's HWM policy ([`FullPolicy`]: wait for room, drop and count, or fail), changes
//! subscriptions, watches peer disconnections, and asks the loop to wake or stop.

use std::cell::Cell;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::event_loop::Tally;
use super::spec::{zmq_err, Sock};
use crate::config::FullPolicy;
use crate::endpoint::Endpoint;
use crate::engine::handle::{Shared, WorkerStats};
use crate::engine::monitor::MonitorStats;
use crate::engine::SocketId;
use crate::error::{Error, Operation, Result, ZmqErrno};
use crate::message::{FrameRepr, Inbound, Outbound};
use crate::sys::{self, RawSocket};

/// How long a send from a handler waits for room under `FullPolicy::Block` before failing:
/// a handler cannot wait forever, or its worker would stop serving everything else.
const BLOCK_SEND_LIMIT: Duration = Duration::from_secs(5);

/// The worker's sockets and counters, lent to handlers on the worker thread.
///
/// The sockets stay on that thread: a `WorkerCtx` is neither `Send` nor `Sync`, so a
/// handler cannot hand it to another thread (this would compile if it were `Send`):
///
/// ```compile_fail,E0277
/// use ztick::{Engine, Endpoint, SocketKind, SocketSpec};
///
/// let engine = Engine::new()?;
/// let mut b = engine.worker("stays-home");
/// b.socket(SocketSpec::bind(SocketKind::Pull, Endpoint::unique_inproc("ctx-doc")));
/// let _ = b.on_message(|ctx, socket, _| {
///     std::thread::scope(|s| {
///         // Another thread would send on the worker's socket: that needs `WorkerCtx: Send`.
///         s.spawn(|| ctx.send(socket, b"from elsewhere"));
///     });
///     Ok(())
/// });
/// # Ok::<(), ztick::Error>(())
/// ```
pub struct WorkerCtx<'a> {
    pub(super) socks: &'a [Sock],
    pub(super) shared: &'a Shared,
    pub(super) tally: &'a Tally,
    pub(super) stop: &'a Cell<bool>,
    pub(super) wake_at: &'a Cell<Option<Instant>>,
    pub(super) first_error: &'a Cell<Option<String>>,
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
        if parts.is_empty() {
            return Ok(());
        }
        // On EAGAIN nothing was sent (only the first frame can meet the HWM): the policy
        // may retry the whole message.
        self.with_policy(sock, || sock.raw.send_parts(parts, true))?;
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
    /// waits for room (up to 5 s, then fails with [`Error::Timeout`]; at once with
    /// [`Error::Stopped`] when the worker is asked to stop), `Drop` counts and succeeds,
    /// `Error` counts and fails with libzmq's EAGAIN.
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
                    let stopping = self.shared.stop_requested.load(Ordering::Acquire);
                    if sock.on_full == FullPolicy::Block {
                        let d = *deadline.get_or_insert_with(|| Instant::now() + BLOCK_SEND_LIMIT);
                        if Instant::now() < d && !stopping {
                            sock.raw
                                .wait_room(Duration::from_millis(100), PUB_BLOCKED_RETRY)
                                .map_err(|e| zmq_err(Operation::Poll, sock, e))?;
                            continue;
                        }
                    }
                    return self.refuse(sock, e, stopping);
                }
                Err(e) => return Err(zmq_err(Operation::Send, sock, e)),
            }
        }
    }

    /// Counts a send refused at the HWM and says why: the `Drop` policy succeeds, `Error`
    /// is libzmq's EAGAIN, and a `Block` that gave up is a timeout, or a stop when one was
    /// asked for. A failure is kept as the worker's first error if it is the first.
    fn refuse(&self, sock: &Sock, e: ZmqErrno, stopping: bool) -> Result<()> {
        Tally::add(&self.tally.dropped, 1);
        let err = match sock.on_full {
            FullPolicy::Drop => {
                tracing::trace!(worker = %self.shared.name, endpoint = %sock.endpoint, "dropped at HWM");
                return Ok(());
            }
            FullPolicy::Error => zmq_err(Operation::Send, sock, e),
            FullPolicy::Block if stopping => Error::Stopped(format!(
                "worker {} is stopping: a send on the {} socket at {} found no room at the HWM and was dropped",
                self.shared.name,
                sock.raw.kind(),
                sock.endpoint
            )),
            FullPolicy::Block => Error::Timeout {
                op: Operation::Send,
                endpoint: format!("{} {}", sock.raw.kind(), sock.endpoint),
                ms: u64::try_from(BLOCK_SEND_LIMIT.as_millis()).unwrap_or(u64::MAX),
            },
        };
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
            .monitor(&endpoint.to_string(), sys::monitor_codes::DISCONNECTED)
            .map_err(|e| zmq_err(Operation::SetOption, sock, e))
    }

    /// Starts reporting `socket`'s peer arrivals (ZMTP handshake done) and departures on
    /// the inproc PAIR `endpoint`, as [`WorkerCtx::monitor_disconnects`] does departures:
    /// feed each message's first frame to a [`ConnectedPeers`](crate::ConnectedPeers).
    pub fn monitor_peers(&mut self, socket: SocketId, endpoint: &Endpoint) -> Result<()> {
        let sock = self.sock(socket)?;
        sock.raw
            .monitor(&endpoint.to_string(), sys::monitor_codes::PEER_EVENTS)
            .map_err(|e| zmq_err(Operation::SetOption, sock, e))
    }

    /// True when `msg`, received on a monitor PAIR socket, reports a peer disconnection.
    pub fn is_disconnect_event(msg: &Inbound<'_>) -> bool {
        msg.frame(0).and_then(sys::monitor_event) == Some(sys::monitor_codes::DISCONNECTED as u16)
    }

    /// The counts of `socket`'s monitor ([`SocketSpec::monitor`](crate::SocketSpec::monitor)),
    /// including this pass's events; `None` for a socket without one.
    pub fn monitor_stats(&self, socket: SocketId) -> Option<MonitorStats> {
        self.socks.get(socket.0)?.monitor.as_ref().map(|m| m.stats())
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

    /// The same context with its own stop flag: what a [`HandlerGroup`](super::HandlerGroup)
    /// lends a member, whose `stop` ends only that member.
    pub(super) fn member<'b>(&'b self, stop: &'b Cell<bool>) -> WorkerCtx<'b> {
        WorkerCtx {
            socks: self.socks,
            shared: self.shared,
            tally: self.tally,
            stop,
            wake_at: self.wake_at,
            first_error: self.first_error,
        }
    }

    /// Asks the loop to end after this pass (queued hand-offs are still drained). In a
    /// [`HandlerGroup`](super::HandlerGroup) it ends only the member that asked.
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

/// How long a worker whose PUB/XPUB send is refused at the HWM waits before retrying.
pub(super) const PUB_BLOCKED_RETRY: Duration = Duration::from_micros(200);

/// Sends every frame of `msg`; on EAGAIN for the first frame nothing was sent and `msg` is intact.
pub(super) fn send_outbound(raw: &RawSocket, msg: &mut Outbound) -> std::result::Result<(), ZmqErrno> {
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
