//! The event loop a worker runs: drain the inbox (hand-offs, closures, stop), receive from
//! every socket into reused frames, tick the handler, and park by the idle strategy; plus the
//! [`Tally`] of counts it keeps between flushes to the shared counters. A spawned worker runs
//! it to the end on its own thread; an [`InlineWorker`](super::InlineWorker) runs it a pass
//! at a time on its caller's.

use std::cell::Cell;
use std::sync::atomic::Ordering;
use std::sync::Arc;
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

/// Closes a worker's inbox for good ([`Shared::close`]) once its loop has ended, and counts
/// the hand-offs still in it as dropped; returns how many.
pub(super) fn close_inbox(shared: &Shared, rx: &Receiver<Command>) -> u64 {
    let mut left = 0u64;
    shared.close(rx, |cmd| left += u64::from(matches!(cmd, Command::Send(..))));
    if left > 0 {
        shared.counters.dropped.fetch_add(left, Ordering::Relaxed);
        tracing::warn!(worker = %shared.name, left, "messages still queued at exit counted as dropped");
    }
    left
}

/// A worker's event loop over its sockets and inbox; it owns the sockets, so they close
/// when it drops, on the thread that ran it.
pub(super) struct Loop {
    socks: Vec<Sock>,
    shared: Arc<Shared>,
    rx: Receiver<Command>,
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
    /// While stopping: when the drain gives up if it makes no more progress.
    stop_deadline: Option<Instant>,
}

impl Loop {
    pub(super) fn new(socks: Vec<Sock>, shared: Arc<Shared>, rx: Receiver<Command>, cfg: LoopConfig) -> Self {
        Loop {
            frames: (0..socks.len()).map(|_| vec![Msg::new()]).collect(),
            poll_items: Vec::with_capacity(2 * socks.len() + 1),
            poll_fds: FdPollSet::with_capacity(2 * socks.len() + 1),
            socks,
            shared,
            rx,
            cfg,
            pending: None,
            stop: Cell::new(false),
            wake_at: Cell::new(None),
            first_error: Cell::new(None),
            tally: Tally::default(),
            stop_deadline: None,
        }
    }

    /// The sockets, in the order of their ids.
    pub(super) fn socks(&self) -> &[Sock] {
        &self.socks
    }

    /// The state shared with the worker's handles.
    pub(super) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The inbox the handles send to.
    pub(super) fn rx(&self) -> &Receiver<Command> {
        &self.rx
    }

    /// Runs `handler` from `on_start` through the loop to `on_stop`, then moves the last
    /// counts into the shared counters; returns the first send refused under
    /// `FullPolicy::Error`, if any.
    pub(super) fn serve(mut self, handler: &mut dyn Handler) -> Result<Option<String>> {
        self.start(handler);
        let res = self.run(handler);
        self.end(handler);
        res?;
        Ok(self.first_error.take())
    }

    /// Runs the handler's `on_start`; an error is counted and traced.
    pub(super) fn start(&mut self, handler: &mut dyn Handler) {
        let mut ctx = self.ctx();
        if let Err(e) = handler.on_start(&mut ctx) {
            self.handler_error(&e);
        }
    }

    /// Runs the handler's `on_stop` and moves the last counts into the shared counters.
    pub(super) fn end(&mut self, handler: &mut dyn Handler) {
        let mut ctx = self.ctx();
        handler.on_stop(&mut ctx);
        self.tally.flush(&self.shared.counters);
    }

    /// The first send refused under `FullPolicy::Error`, if any, taken.
    pub(super) fn take_first_error(&self) -> Option<String> {
        self.first_error.take()
    }

    /// Lends the worker's context (its sockets, counters and flags) for one call.
    pub(super) fn ctx(&self) -> WorkerCtx<'_> {
        WorkerCtx {
            socks: &self.socks,
            shared: &self.shared,
            tally: &self.tally,
            stop: &self.stop,
            wake_at: &self.wake_at,
            first_error: &self.first_error,
        }
    }

    fn run(&mut self, handler: &mut dyn Handler) -> Result<()> {
        let mut idler = Idler::new(self.cfg.idle);
        loop {
            let did_work = self.pass(handler)?;
            if self.finished(did_work) {
                return Ok(());
            }
            match idler.next(did_work) {
                IdleAction::Spin => std::hint::spin_loop(),
                IdleAction::Yield => std::thread::yield_now(),
                IdleAction::Park(max) => self.park(max)?,
            }
        }
    }

    /// One pass: the blocked send, the inbox, every socket and monitor, the handler's
    /// `on_tick`; returns whether any of it did work.
    pub(super) fn pass(&mut self, handler: &mut dyn Handler) -> Result<bool> {
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
        for s in &self.socks {
            if let Some(m) = &s.monitor {
                did_work |= m.drain(MONITOR_DRAIN) > 0;
            }
        }
        let mut ctx = self.ctx();
        match handler.on_tick(&mut ctx) {
            Ok(w) => did_work |= w,
            Err(e) => self.handler_error(&e),
        }
        self.tally.flush(&self.shared.counters);
        Ok(did_work)
    }

    /// True once the loop should end: it is stopping, and what was handed over has been
    /// sent, or `drain_timeout` passed without progress (a peer that stopped reading: what
    /// is left is counted dropped).
    pub(super) fn finished(&mut self, did_work: bool) -> bool {
        if !self.stop.get() {
            return false;
        }
        // The drain may take as long as it keeps making progress.
        if did_work || self.stop_deadline.is_none() {
            self.stop_deadline = Some(Instant::now() + self.cfg.drain_timeout);
        }
        if self.pending.is_none() && self.rx.is_empty() && !self.shared.hand_off_in_flight() {
            return true;
        }
        if self.stop_deadline.is_some_and(|d| Instant::now() >= d) {
            let left = u64::from(self.pending.take().is_some());
            Tally::add(&self.tally.dropped, left);
            tracing::warn!(worker = %self.shared.name, left, "drain timeout: unsent messages counted as dropped");
            return true;
        }
        false
    }

    /// True once the loop is stopping (a handler or a handle asked).
    pub(super) fn stopping(&self) -> bool {
        self.stop.get() || self.shared.stop_requested.load(Ordering::Acquire)
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

    /// Parks in `zmq_poll` on every socket and the wake-up eventfd for at most `max` (less
    /// when a handler asked to be woken sooner).
    pub(super) fn park(&mut self, max: Duration) -> Result<()> {
        let shared = &*self.shared;
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
        let wake = self.wake_at.take();
        if let Some(at) = wake {
            let left = at.saturating_duration_since(Instant::now());
            timeout = timeout.min(left);
            if let (IdleStrategy::SpinToDeadline { spin, .. }, None) = (self.cfg.idle, &self.pending) {
                if left <= spin {
                    shared.parked.store(false, Ordering::Relaxed);
                    self.spin_until(at);
                    return Ok(());
                }
                // Sleep until the spin window opens; the next pass asks for the timer again.
                timeout = timeout.min(left - spin);
            }
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
            self.shared.parked.store(false, Ordering::Relaxed);
            return res;
        }
        let shared = &*self.shared;
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

    /// Spins until `at`, a hand-off or a stop request (bounded by the strategy's spin window:
    /// `at` is at most that far away).
    fn spin_until(&self, at: Instant) {
        while Instant::now() < at && self.rx.is_empty() && !self.shared.stop_requested.load(Ordering::Relaxed)
        {
            std::hint::spin_loop();
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
