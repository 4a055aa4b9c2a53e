//! The event loop a worker thread runs: drain the inbox (hand-offs, closures, stop), receive
//! from every socket into reused frames, tick the handler, and park by the idle strategy;
//! plus the [`Tally`] of counts it keeps between flushes to the shared counters.

use std::cell::Cell;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, TryRecvError};

use super::ctx::{send_outbound, PUB_BLOCKED_RETRY};
use super::spec::{zmq_err, Sock};
use super::{Handler, WorkerCtx};
use crate::config::{FullPolicy, SocketKind, SocketOptions};
use crate::engine::handle::{Command, Counters, Shared};
use crate::engine::idle::{IdleAction, IdleStrategy, Idler};
use crate::engine::SocketId;
use crate::error::{Error, Operation, Result};
use crate::message::{Inbound, Outbound};
use crate::sys::{self, FdPollSet, Msg, PollItem};

/// A peer cannot make a worker grow without bound: messages with more frames are discarded
/// and counted as handler errors.
const MAX_FRAMES: usize = SocketOptions::MAX_FRAMES;

/// Most monitor events read per socket per pass (a burst of connections is read over a few
/// passes; the monitor's HWM holds far more).
const MONITOR_DRAIN: usize = 64;

/// The loop's settings, from the [`WorkerBuilder`](super::WorkerBuilder).
#[derive(Debug, Clone, Copy)]
pub(super) struct LoopConfig {
    pub(super) idle: IdleStrategy,
    pub(super) batch_max: usize,
    pub(super) drain_timeout: Duration,
}

/// Counts kept on the worker thread and added to the shared atomics once per pass, so the
/// per-message path makes no locked read-modify-write on a line other threads read.
#[derive(Debug, Default)]
pub(super) struct Tally {
    pub(super) sent: Cell<u64>,
    pub(super) dropped: Cell<u64>,
    pub(super) batches: Cell<u64>,
    pub(super) received: Cell<u64>,
    pub(super) handler_errors: Cell<u64>,
}

impl Tally {
    #[inline]
    pub(super) fn add(c: &Cell<u64>, n: u64) {
        c.set(c.get() + n);
    }

    /// Moves the counts into `shared`.
    pub(super) fn flush(&self, shared: &Counters) {
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

/// A worker's event loop over its sockets and inbox, on the worker thread.
pub(super) struct Loop<'a> {
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
    poll_fds: FdPollSet,
}

impl<'a> Loop<'a> {
    pub(super) fn new(
        socks: &'a [Sock],
        shared: &'a Shared,
        rx: &'a Receiver<Command>,
        cfg: LoopConfig,
    ) -> Self {
        Loop {
            socks,
            shared,
            rx,
            cfg,
            frames: (0..socks.len()).map(|_| vec![Msg::new()]).collect(),
            pending: None,
            stop: Cell::new(false),
            wake_at: Cell::new(None),
            first_error: Cell::new(None),
            tally: Tally::default(),
            poll_items: Vec::with_capacity(2 * socks.len() + 1),
            poll_fds: FdPollSet::with_capacity(2 * socks.len() + 1),
        }
    }

    /// Runs `handler` from `on_start` through the loop to `on_stop`, then moves the last
    /// counts into the shared counters; returns the first send refused under
    /// `FullPolicy::Error`, if any.
    pub(super) fn serve(mut self, handler: &mut dyn Handler) -> Result<Option<String>> {
        let mut ctx = self.ctx();
        if let Err(e) = handler.on_start(&mut ctx) {
            self.handler_error(&e);
        }
        let res = self.run(handler);
        let mut ctx = self.ctx();
        handler.on_stop(&mut ctx);
        self.tally.flush(&self.shared.counters);
        res?;
        Ok(self.first_error.take())
    }

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
            if self.stop.get() && !self.shared.closed.load(Ordering::Relaxed) {
                // Stopping: later hand-offs are refused; the ones already made are drained.
                self.shared.closed.store(true, Ordering::SeqCst);
            }
            let mut did_work = self.flush_pending()?;
            if self.pending.is_none() {
                did_work |= self.drain_inbox()?;
            }
            for i in 0..self.socks.len() {
                did_work |= self.receive(i, handler)?;
            }
            // Monitors are read every pass, so libzmq's I/O thread never waits on a full one.
            for s in self.socks {
                if let Some(m) = &s.monitor {
                    did_work |= m.drain(MONITOR_DRAIN) > 0;
                }
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
                if self.pending.is_none() && self.rx.is_empty() && !self.shared.hand_off_in_flight() {
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
                    let _ = sock.raw.discard_rest(&mut slots[n - 1]);
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
        if n < 10 || n.is_multiple_of(1000) {
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
        for m in self.socks.iter().filter_map(|s| s.monitor.as_ref()) {
            items.push(m.raw.poll_item(true, false));
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

    /// A park shorter than `zmq_poll`'s millisecond: `ppoll` on the sockets' `ZMQ_FD`s and
    /// the wake-up eventfd, after checking `ZMQ_EVENTS` (which `zmq_poll` does too: the fds
    /// only signal changes, so work already pending must be seen before sleeping).
    fn park_fine(&mut self, timeout: Duration, blocked: Option<usize>) -> Result<()> {
        let fds = &mut self.poll_fds;
        fds.clear();
        let wakeup = fds.push_readable(self.shared.wakeup.fd());
        for (i, s) in self.socks.iter().enumerate() {
            let (readable, writable) = s.raw.events().map_err(|e| zmq_err(Operation::Poll, s, e))?;
            if (readable && s.raw.kind().can_receive()) || (writable && blocked == Some(i)) {
                return Ok(());
            }
            fds.push_readable(s.fd);
        }
        for m in self.socks.iter().filter_map(|s| s.monitor.as_ref()) {
            if m.raw.events().map(|(readable, _)| readable).unwrap_or(false) {
                return Ok(());
            }
            fds.push_readable(m.fd);
        }
        fds.wait(timeout)
            .map_err(|e| Error::Io { context: format!("worker {}: ppoll", self.shared.name), source: e })?;
        if fds.fired(wakeup) {
            self.shared.wakeup.drain();
        }
        Ok(())
    }
}
