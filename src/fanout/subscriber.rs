//! [`TickSubscriber`]: a fan-out subscriber on a worker of an engine, which finds every gap,
//! times every tick, and hands ticks, gaps and ends to the application by callback or
//! channel, or keeps only the report.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};

use super::config::SubscriberConfig;
use super::event::{Event, OwnedEvent};
use super::ledger::{Ledger, Sink, SubscriberLive};
use super::publisher::connection_options;
use super::report::{Outcome, SubscriberReport};
use super::wire;
use crate::config::SocketKind;
use crate::endpoint::Endpoint;
use crate::engine::{Engine, Handler, Outbox, SocketId, SocketSpec, Worker, WorkerCtx};
use crate::error::{Error, Result};
use crate::message::Inbound;
use crate::sys::now_ns;

/// How long a subscriber's side-channel socket may hold its last messages (the end
/// acknowledgement) when it closes.
const SIDE_LINGER: Duration = Duration::from_millis(200);

/// A fan-out subscriber.
///
/// It subscribes to its groups and to a unique hello prefix (so the publisher sees it
/// arrive), joins through a snapshot when asked, keeps per-topic accounting (received,
/// exact missing ranges, latency) returned by [`finish`](Self::finish), and acknowledges
/// the end through the side channel when it has one. It stops by itself once every topic
/// has ended. Three ways to consume, one accounting:
/// [`start`](Self::start) keeps only the report, [`with_callback`](Self::with_callback)
/// calls a function on the worker thread with every [`Event`], and
/// [`with_channel`](Self::with_channel) queues owned events for the application.
pub struct TickSubscriber {
    /// Taken (dropped) before the worker is stopped, so a worker waiting for room in a full
    /// channel is released.
    events: Option<Receiver<OwnedEvent>>,
    free: Option<Sender<Vec<u8>>>,
    worker: Option<Worker>,
    live: Arc<SubscriberLive>,
    report: Receiver<SubscriberReport>,
    /// The report, once the worker ended by itself and [`wait_ended`](Self::wait_ended) saw it.
    ended: Option<SubscriberReport>,
    /// Set when the application stops: a worker waiting for room in the channel gives up.
    stopping: Arc<AtomicBool>,
}

impl std::fmt::Debug for TickSubscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TickSubscriber")
            .field("worker", &self.worker.as_ref().map(Worker::name))
            .field("channel", &self.events.is_some())
            .finish()
    }
}

impl TickSubscriber {
    /// Starts a subscriber of the publisher at `connect` (and its side channel `side`,
    /// for snapshot joins and end acknowledgements) that keeps only its report.
    ///
    /// # Errors
    /// A configuration [`SubscriberConfig::validate`] refuses, or a socket that could not
    /// connect.
    pub fn start(
        engine: &Engine,
        connect: Endpoint,
        side: Option<Endpoint>,
        cfg: SubscriberConfig,
    ) -> Result<Self> {
        Self::spawn(engine, connect, side, cfg, None, None, None)
    }

    /// Starts a subscriber that calls `f` with every event, on the worker thread (no hop:
    /// keep it short, or the socket's HWM fills and the publisher drops, which then shows
    /// as gaps).
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub fn with_callback(
        engine: &Engine,
        connect: Endpoint,
        side: Option<Endpoint>,
        cfg: SubscriberConfig,
        f: impl FnMut(&Event<'_>) + Send + 'static,
    ) -> Result<Self> {
        Self::spawn(engine, connect, side, cfg, Some(Box::new(f)), None, None)
    }

    /// Starts a subscriber whose events wait in a channel of `capacity` for
    /// [`recv_timeout`](Self::recv_timeout) and [`try_recv`](Self::try_recv). A full
    /// channel makes the worker wait, which pushes back on the socket's HWM (a publisher
    /// then drops, and the drops arrive as gaps).
    ///
    /// # Errors
    /// As [`start`](Self::start); a `capacity` of 0.
    pub fn with_channel(
        engine: &Engine,
        connect: Endpoint,
        side: Option<Endpoint>,
        cfg: SubscriberConfig,
        capacity: usize,
    ) -> Result<Self> {
        if capacity == 0 {
            return Err(Error::config("capacity", 0, "at least 1 event"));
        }
        let (tx, rx) = crossbeam_channel::bounded(capacity);
        let (free_tx, free_rx) = crossbeam_channel::bounded::<Vec<u8>>(capacity.min(1024));
        let topics: Vec<Arc<str>> = cfg.topics.iter().map(|t| Arc::from(t.as_str())).collect();
        let stopping = Arc::new(AtomicBool::new(false));
        let outbox = Outbox::new(tx, Arc::clone(&stopping));
        let sink: Sink = Box::new(move |ev: &Event<'_>| {
            let payload = match ev {
                Event::Tick(_) => free_rx.try_recv().unwrap_or_default(),
                _ => Vec::new(),
            };
            // Fails only once the application has let go of the channel or stops: the
            // accounting goes on without it.
            outbox.send(OwnedEvent::from_event(ev, &topics, payload));
        });
        let mut sub = Self::spawn(engine, connect, side, cfg, Some(sink), Some(rx), Some(free_tx))?;
        sub.stopping = stopping;
        Ok(sub)
    }

    fn spawn(
        engine: &Engine,
        connect: Endpoint,
        side: Option<Endpoint>,
        cfg: SubscriberConfig,
        sink: Option<Sink>,
        events: Option<Receiver<OwnedEvent>>,
        free: Option<Sender<Vec<u8>>>,
    ) -> Result<Self> {
        cfg.validate(side.is_some())?;
        // Random, so no other peer can guess it and acknowledge in this subscriber's name.
        let hello =
            format!("{}-{:016x}{:016x}", cfg.name, crate::sys::random_u64(), crate::sys::random_u64())
                .into_bytes();
        let base = connection_options(cfg.curve.clone(), cfg.dead_peer_timeout);
        // Nothing a SUB queues is worth waiting for at close (after a lost publisher, libzmq
        // holds its subscriptions for a reconnection that will not come, and closing would
        // wait out the whole linger for them).
        let mut opts = base.clone().conflate(cfg.conflate).linger(Some(Duration::ZERO));
        if let Some(h) = cfg.hwm_msgs {
            opts = opts.hwm_msgs(h);
        }
        // Monitored: connections are logged, and a refused CURVE handshake says so.
        let mut spec = SocketSpec::connect(SocketKind::Sub, connect).options(opts).monitor(true);
        for g in &cfg.groups {
            spec = spec.subscribe(g.as_bytes());
        }
        if !cfg.conflate {
            // Last: when the publisher sees this, the subscriptions before it are in too.
            let mut hello_sub = wire::HELLO_PREFIX.to_vec();
            hello_sub.extend_from_slice(&hello);
            spec = spec.subscribe(hello_sub);
        }
        let live = Arc::new(SubscriberLive::default());
        let (report_tx, report) = crossbeam_channel::bounded(1);
        let mut b = engine.worker(&cfg.name).idle(cfg.idle).pin(cfg.pin).sched(cfg.sched).batch_max(256);
        b.socket(spec);
        // A conflating subscriber sends no hello, so the publisher could not tell its
        // acknowledgement from a stray one: it neither asks nor acknowledges.
        let dealer = side
            .filter(|_| !cfg.conflate)
            // Long enough for the end acknowledgement to leave, short for a dead publisher.
            .map(|ep| {
                b.socket(SocketSpec::connect(SocketKind::Dealer, ep).options(base.linger(Some(SIDE_LINGER))))
            });
        let handler = SubscriberHandler {
            ledger: Ledger::new(&cfg, dealer.is_some(), Arc::clone(&live), sink),
            dealer,
            hello,
            reports: report_tx,
        };
        let worker = b.handler(handler).spawn()?;
        Ok(TickSubscriber {
            events,
            free,
            worker: Some(worker),
            live,
            report,
            ended: None,
            stopping: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The next event, waiting at most `timeout`.
    ///
    /// # Errors
    /// `Timeout` when none came; `Disconnected` once the subscriber has stopped (every
    /// topic ended) and every event was received, and always for a subscriber without a
    /// channel.
    pub fn recv_timeout(&self, timeout: Duration) -> std::result::Result<OwnedEvent, RecvTimeoutError> {
        match &self.events {
            Some(rx) => rx.recv_timeout(timeout),
            None => Err(RecvTimeoutError::Disconnected),
        }
    }

    /// The next event if one is waiting.
    ///
    /// # Errors
    /// `Empty`, or `Disconnected` as for [`recv_timeout`](Self::recv_timeout).
    pub fn try_recv(&self) -> std::result::Result<OwnedEvent, TryRecvError> {
        match &self.events {
            Some(rx) => rx.try_recv(),
            None => Err(TryRecvError::Disconnected),
        }
    }

    /// Gives a tick's payload buffer back for a later tick, so a steady stream allocates
    /// nothing (optional: a dropped event is simply freed).
    pub fn recycle(&self, event: OwnedEvent) {
        if let (OwnedEvent::Tick(t), Some(free)) = (event, &self.free) {
            let _ = free.try_send(t.payload);
        }
    }

    /// Ticks received so far (updated every 1024 ticks and every second).
    pub fn received(&self) -> u64 {
        self.live.received.load(Ordering::Relaxed)
    }

    /// Ticks known missing so far (updated as [`received`](Self::received)).
    pub fn missing(&self) -> u64 {
        self.live.missing.load(Ordering::Relaxed)
    }

    /// The p99 latency of the last one-second window, in nanoseconds (0 before the first).
    pub fn recent_p99_ns(&self) -> u64 {
        self.live.p99_ns.load(Ordering::Relaxed)
    }

    /// Waits at most `timeout` for the subscriber to end by itself (every topic ended, or the
    /// publisher lost); true once it has. [`finish`](Self::finish) then returns at once.
    pub fn wait_ended(&mut self, timeout: Duration) -> bool {
        if self.ended.is_none() {
            self.ended = self.report.recv_timeout(timeout).ok();
        }
        self.ended.is_some()
    }

    /// Stops delivering events (those not yet received are discarded: receive until
    /// `Disconnected` first to have them all), waits up to `timeout` for the subscriber to
    /// end by itself (every topic ended, or the publisher lost), stops it and returns its
    /// accounting; its `outcome` is [`Outcome::Timeout`] when it had to be stopped.
    ///
    /// # Errors
    /// A worker that panicked or failed; [`Error::Stopped`] when it ended without a report.
    pub fn finish(self, timeout: Duration) -> Result<SubscriberReport> {
        self.end(timeout, Outcome::Timeout)
    }

    /// Stops the subscriber now (the application is done, or was told to stop) and returns
    /// its accounting so far; its `outcome` is [`Outcome::Stopped`] unless it had ended by
    /// itself.
    ///
    /// # Errors
    /// As [`finish`](Self::finish).
    pub fn stop(self) -> Result<SubscriberReport> {
        self.end(Duration::ZERO, Outcome::Stopped)
    }

    fn end(mut self, timeout: Duration, cut_short: Outcome) -> Result<SubscriberReport> {
        self.stopping.store(true, Ordering::Release);
        drop(self.events.take());
        let early = self.ended.take().or_else(|| self.report.recv_timeout(timeout).ok());
        let stopped = match self.worker.take() {
            Some(w) => w.stop(),
            None => return Err(Error::Stopped("the tick subscriber already finished".into())),
        };
        let report = match early {
            Some(r) => Some(r),
            None => self.report.try_recv().ok().map(|mut r| {
                if r.outcome == Outcome::Stopped {
                    r.outcome = cut_short;
                }
                r
            }),
        };
        stopped?;
        report.ok_or_else(|| Error::Stopped("the subscriber ended without its report".into()))
    }
}

impl Drop for TickSubscriber {
    fn drop(&mut self) {
        // The channel first: a worker blocked on a full channel then sees its stop.
        self.stopping.store(true, Ordering::Release);
        drop(self.events.take());
        drop(self.worker.take());
    }
}

/// The subscriber's handler, on its worker: sockets around the [`Ledger`].
struct SubscriberHandler {
    ledger: Ledger,
    /// DEALER to the publisher's side channel (snapshot requests, end acknowledgements).
    dealer: Option<SocketId>,
    hello: Vec<u8>,
    reports: Sender<SubscriberReport>,
}

impl SubscriberHandler {
    /// After every message and timer: sends a due repair request, acknowledges a complete
    /// stream, stops when the ledger says so, and asks to be woken for the next deadline.
    fn follow_up(&mut self, ctx: &mut WorkerCtx<'_>, now: u64) {
        if let Some(dealer) = self.dealer {
            if self.ledger.take_new_epoch() {
                // A restarted publisher knows nothing of this subscriber yet.
                if let Err(e) = ctx.send_parts(dealer, &[wire::HELLO_REQUEST, &self.hello]) {
                    tracing::warn!(error = %e, "introduction not sent");
                }
            }
            if self.ledger.take_snapshot_request(now) {
                if let Err(e) = ctx.send_parts(dealer, &[wire::SNAPSHOT_REQUEST, &self.hello]) {
                    tracing::warn!(error = %e, "snapshot request not sent");
                }
            }
            if let Some(t1) = self.ledger.take_clock_request(now) {
                if let Err(e) = ctx.send_parts(dealer, &[wire::CLOCK_REQUEST, &self.hello, &t1.to_le_bytes()])
                {
                    tracing::warn!(error = %e, "clock request not sent");
                }
            }
            if let Some(nak) = self.ledger.take_nak(now) {
                if let Err(e) = ctx.send_parts(dealer, &[wire::NAK_REQUEST, &self.hello, nak]) {
                    tracing::warn!(error = %e, "repair request not sent");
                }
            }
        }
        match self.ledger.stop_reason() {
            Some(Outcome::Complete) => {
                if let Some(dealer) = self.dealer {
                    let _ = ctx.send_parts(dealer, &[wire::DONE_ACK, &self.hello]);
                }
                ctx.stop();
            }
            Some(_) => ctx.stop(),
            None => {
                let at = self.ledger.next_deadline();
                if at != u64::MAX {
                    ctx.wake_at(Instant::now() + Duration::from_nanos(at.saturating_sub(now_ns())));
                }
            }
        }
    }
}

impl Handler for SubscriberHandler {
    fn on_start(&mut self, ctx: &mut WorkerCtx<'_>) -> Result<()> {
        // The side channel learns who subscribed with this hello (see fanout::peers).
        if let Some(dealer) = self.dealer {
            ctx.send_parts(dealer, &[wire::HELLO_REQUEST, &self.hello])?;
        }
        self.follow_up(ctx, now_ns());
        Ok(())
    }

    fn on_message(&mut self, ctx: &mut WorkerCtx<'_>, socket: SocketId, msg: &Inbound<'_>) -> Result<()> {
        let now = now_ns();
        let res = if Some(socket) == self.dealer {
            self.ledger.on_side(msg.last(), now)
        } else if msg.len() > 2 {
            Err(self.ledger.refuse(format!("{} frames; a tick message has 1 or 2", msg.len())))
        } else {
            let mut frames = [&[][..]; 2];
            for (slot, f) in frames.iter_mut().zip(msg.iter()) {
                *slot = f;
            }
            self.ledger.on_feed(&frames[..msg.len()], now)
        };
        self.follow_up(ctx, now);
        res
    }

    fn on_tick(&mut self, ctx: &mut WorkerCtx<'_>) -> Result<bool> {
        let now = now_ns();
        self.ledger.on_timer(now);
        self.follow_up(ctx, now);
        Ok(false)
    }

    fn on_stop(&mut self, _ctx: &mut WorkerCtx<'_>) {
        let _ = self.reports.send(self.ledger.finish(now_ns(), Outcome::Stopped));
    }
}
