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
use crate::engine::{
    Engine, Handler, HandlerGroup, Outbox, SocketId, SocketSpec, Worker, WorkerBuilder, WorkerCtx,
};
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
    worker: Option<Seat>,
    live: Arc<SubscriberLive>,
    report: Receiver<SubscriberReport>,
    /// The report, once the worker ended by itself and [`wait_ended`](Self::wait_ended) saw it.
    ended: Option<SubscriberReport>,
    /// Set when the application stops: a worker waiting for room in the channel gives up.
    stopping: Arc<AtomicBool>,
    /// Set to end this subscriber alone on a worker it shares (its handler stops itself).
    cancel: Arc<AtomicBool>,
}

/// Where a subscriber runs.
enum Seat {
    /// On a worker of its own.
    Alone(Worker),
    /// On a worker shared with others ([`TickSubscriber::start_shared`]); the last one to
    /// end stops it.
    Shared(Arc<Worker>),
}

impl Seat {
    fn worker(&self) -> &Worker {
        match self {
            Seat::Alone(w) => w,
            Seat::Shared(w) => w,
        }
    }
}

/// How long ending one subscriber of a shared worker waits for its handler to stop and
/// report: a pass of the worker, which is woken for it (a pass that another member's full
/// channel holds up takes longer).
const MEMBER_STOP_WAIT: Duration = Duration::from_secs(5);

/// How a subscriber's events reach the application.
enum Consumer {
    /// They do not: only the report.
    Report,
    /// A function on the worker thread.
    Callback(Sink),
    /// A channel of this capacity.
    Channel(usize),
}

/// One subscriber of a worker shared by several ([`TickSubscriber::start_shared`]): where
/// it connects, its configuration, and how its events reach the application (by default
/// they do not: only the report, as [`TickSubscriber::start`]).
pub struct SubscriberSpec {
    connect: Endpoint,
    side: Option<Endpoint>,
    cfg: SubscriberConfig,
    consumer: Consumer,
}

impl std::fmt::Debug for SubscriberSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscriberSpec")
            .field("name", &self.cfg.name)
            .field("connect", &self.connect.to_string())
            .finish()
    }
}

impl SubscriberSpec {
    /// A subscriber of the publisher at `connect` (side channel `side`) that keeps only
    /// its report.
    pub fn new(connect: Endpoint, side: Option<Endpoint>, cfg: SubscriberConfig) -> Self {
        SubscriberSpec { connect, side, cfg, consumer: Consumer::Report }
    }

    /// Calls `f` with every event on the worker thread, as
    /// [`TickSubscriber::with_callback`] (a slow callback delays every subscriber of the
    /// worker).
    pub fn callback(mut self, f: impl FnMut(&Event<'_>) + Send + 'static) -> Self {
        self.consumer = Consumer::Callback(Box::new(f));
        self
    }

    /// Queues events in a channel of `capacity`, as [`TickSubscriber::with_channel`] (a
    /// full channel makes the shared worker wait: every subscriber of it waits, and one
    /// stopped meanwhile fails with [`Error::Stopped`] after its wait, its report lost).
    pub fn channel(mut self, capacity: usize) -> Self {
        self.consumer = Consumer::Channel(capacity);
        self
    }
}

impl std::fmt::Debug for TickSubscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TickSubscriber")
            .field("worker", &self.worker.as_ref().map(|s| s.worker().name()))
            .field("shared", &matches!(self.worker, Some(Seat::Shared(_))))
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
        Self::start_with(engine, SubscriberSpec::new(connect, side, cfg))
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
        Self::start_with(engine, SubscriberSpec::new(connect, side, cfg).callback(f))
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
        Self::start_with(engine, SubscriberSpec::new(connect, side, cfg).channel(capacity))
    }

    /// Starts several subscribers on one worker thread named `name`, in the order given:
    /// each keeps its own sockets, accounting and report, and ends by itself as it would
    /// alone, but one thread serves them all (a [`HandlerGroup`](crate::HandlerGroup)), so
    /// fewer threads queue for the cores. The worker's idle strategy, pin and scheduling
    /// policy are the first member's; [`finish`](Self::finish) or [`stop`](Self::stop) of
    /// one ends only that one, and the last to end stops the worker.
    ///
    /// ```
    /// use ztick::fanout::{PublisherConfig, SubscriberConfig, SubscriberSpec, TickPublisher, TickSubscriber};
    /// use ztick::{Endpoint, Engine};
    /// use std::time::Duration;
    ///
    /// let engine = Engine::builder().io_threads(0).build()?; // inproc only
    /// let feed = Endpoint::unique_inproc("shared-doc");
    /// let side = Endpoint::unique_inproc("shared-doc-side");
    /// let cfg = PublisherConfig::default();
    /// let publisher = TickPublisher::start(&engine, feed.clone(), Some(side.clone()), cfg)?;
    /// let specs = ["a", "b", "c"].map(|name| {
    ///     let cfg = SubscriberConfig { name: name.into(), ..SubscriberConfig::default() };
    ///     SubscriberSpec::new(feed.clone(), Some(side.clone()), cfg)
    /// });
    /// let subs = TickSubscriber::start_shared(&engine, "subs", specs.into())?;
    /// assert!(publisher.wait_subscribers(3, Duration::from_secs(10)));
    /// for i in 0..300 {
    ///     publisher.publish(i % 8, b"px").unwrap();
    /// }
    /// let published = publisher.finish(Duration::from_secs(10))?.published;
    /// for s in subs {
    ///     let r = s.finish(Duration::from_secs(10))?;
    ///     assert_eq!((r.received(), r.missing()), (published, 0));
    /// }
    /// # Ok::<(), ztick::Error>(())
    /// ```
    ///
    /// # Errors
    /// No member; a configuration [`SubscriberConfig::validate`] refuses (a channel's
    /// `capacity` of 0), or a socket that could not connect.
    pub fn start_shared(engine: &Engine, name: &str, members: Vec<SubscriberSpec>) -> Result<Vec<Self>> {
        let first = members.first().ok_or_else(|| Error::config("members", 0, "at least one subscriber"))?;
        let c = &first.cfg;
        let mut b = engine.worker(name).idle(c.idle).pin(c.pin).sched(c.sched).batch_max(256);
        let mut group = HandlerGroup::new();
        let mut seated = Vec::with_capacity(members.len());
        for spec in members {
            let (sockets, handler, sub) = Self::prepare(&mut b, spec)?;
            group = group.member(&sockets, handler)?;
            seated.push(sub);
        }
        let worker = Arc::new(b.handler(group).spawn()?);
        for sub in &mut seated {
            sub.worker = Some(Seat::Shared(Arc::clone(&worker)));
        }
        Ok(seated)
    }

    /// Starts the subscriber `spec` describes, on a worker of its own named after it.
    ///
    /// # Errors
    /// As [`start`](Self::start); a channel's `capacity` of 0.
    pub fn start_with(engine: &Engine, spec: SubscriberSpec) -> Result<Self> {
        let c = &spec.cfg;
        let mut b = engine.worker(&c.name).idle(c.idle).pin(c.pin).sched(c.sched).batch_max(256);
        let (_, handler, mut sub) = Self::prepare(&mut b, spec)?;
        sub.worker = Some(Seat::Alone(b.handler(handler).spawn()?));
        Ok(sub)
    }

    /// Adds the subscriber's sockets to `b`: returns them, its handler, and the subscriber
    /// without its worker.
    fn prepare(
        b: &mut WorkerBuilder<'_>,
        spec: SubscriberSpec,
    ) -> Result<(Vec<SocketId>, SubscriberHandler, Self)> {
        let SubscriberSpec { connect, side, cfg, consumer } = spec;
        cfg.validate(side.is_some())?;
        let stopping = Arc::new(AtomicBool::new(false));
        let (sink, events, free) = match consumer {
            Consumer::Report => (None, None, None),
            Consumer::Callback(f) => (Some(f), None, None),
            Consumer::Channel(0) => return Err(Error::config("capacity", 0, "at least 1 event")),
            Consumer::Channel(capacity) => {
                let (tx, rx) = crossbeam_channel::bounded(capacity);
                let (free_tx, free_rx) = crossbeam_channel::bounded::<Vec<u8>>(capacity.min(1024));
                let topics: Vec<Arc<str>> = cfg.topics.iter().map(|t| Arc::from(t.as_str())).collect();
                let outbox = Outbox::new(tx, Arc::clone(&stopping));
                let sink: Sink = Box::new(move |ev: &Event<'_>| {
                    let payload = match ev {
                        Event::Tick(_) => free_rx.try_recv().unwrap_or_default(),
                        _ => Vec::new(),
                    };
                    // Fails only once the application has let go of the channel or stops:
                    // the accounting goes on without it.
                    outbox.send(OwnedEvent::from_event(ev, &topics, payload));
                });
                (Some(sink), Some(rx), Some(free_tx))
            }
        };
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
        let mut subscriptions: Vec<Vec<u8>> = cfg.groups.iter().map(|g| g.as_bytes().to_vec()).collect();
        if !cfg.conflate {
            // Last: when the publisher sees this, the subscriptions before it are in too.
            let mut hello_sub = wire::HELLO_PREFIX.to_vec();
            hello_sub.extend_from_slice(&hello);
            subscriptions.push(hello_sub);
        }
        let mut spec = SocketSpec::connect(SocketKind::Sub, connect).options(opts).monitor(true);
        for prefix in &subscriptions {
            spec = spec.subscribe(prefix.clone());
        }
        let live = Arc::new(SubscriberLive::default());
        let (report_tx, report) = crossbeam_channel::bounded(1);
        let sub_socket = b.socket(spec);
        // A conflating subscriber sends no hello, so the publisher could not tell its
        // acknowledgement from a stray one: it neither asks nor acknowledges.
        let dealer = side
            .filter(|_| !cfg.conflate)
            // Long enough for the end acknowledgement to leave, short for a dead publisher.
            .map(|ep| {
                b.socket(SocketSpec::connect(SocketKind::Dealer, ep).options(base.linger(Some(SIDE_LINGER))))
            });
        let cancel = Arc::new(AtomicBool::new(false));
        let handler = SubscriberHandler {
            ledger: Ledger::new(&cfg, dealer.is_some(), Arc::clone(&live), sink),
            feed: sub_socket,
            subscriptions,
            dealer,
            hello,
            reports: report_tx,
            cancel: Arc::clone(&cancel),
        };
        let sockets = [Some(sub_socket), dealer].into_iter().flatten().collect();
        let sub = TickSubscriber { events, free, worker: None, live, report, ended: None, stopping, cancel };
        Ok((sockets, handler, sub))
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
        let mut late = None;
        let mut shared_timeout = None;
        let stopped = match self.worker.take() {
            Some(Seat::Alone(w)) => w.stop().map(drop),
            Some(Seat::Shared(w)) => {
                if early.is_none() {
                    // Only this member stops: it is woken to see that, and reports. A worker
                    // that has ended already sent every member's report.
                    self.cancel.store(true, Ordering::Release);
                    if w.handle().run(|_| {}) {
                        late = self.report.recv_timeout(MEMBER_STOP_WAIT).ok();
                        if late.is_none() {
                            shared_timeout = Some(w.name().to_owned());
                        }
                    }
                }
                Arc::into_inner(w).map_or(Ok(()), |w| w.stop().map(drop))
            }
            None => return Err(Error::Stopped("the tick subscriber already finished".into())),
        };
        let report = match early {
            Some(r) => Some(r),
            None => late.or_else(|| self.report.try_recv().ok()).map(|mut r| {
                if r.outcome == Outcome::Stopped {
                    r.outcome = cut_short;
                }
                r
            }),
        };
        stopped?;
        report.ok_or_else(|| match shared_timeout {
            Some(worker) => Error::Stopped(format!(
                "a subscriber on shared worker {worker} did not stop in time: another subscriber of \
                 that worker holds it (a full channel nobody reads, or a slow callback); read or \
                 stop that one first"
            )),
            None => Error::Stopped("the subscriber ended without its report".into()),
        })
    }
}

impl Drop for TickSubscriber {
    fn drop(&mut self) {
        // The channel first: a worker blocked on a full channel then sees its stop.
        self.stopping.store(true, Ordering::Release);
        drop(self.events.take());
        if let Some(Seat::Shared(w)) = &self.worker {
            // The others go on; this one stops at the worker's next pass.
            self.cancel.store(true, Ordering::Release);
            w.handle().run(|_| {});
        }
        drop(self.worker.take());
    }
}

/// The subscriber's handler, on its worker: sockets around the [`Ledger`].
struct SubscriberHandler {
    ledger: Ledger,
    /// The SUB, and what it subscribed to (the hello prefix last).
    feed: SocketId,
    subscriptions: Vec<Vec<u8>>,
    /// DEALER to the publisher's side channel (snapshot requests, end acknowledgements).
    dealer: Option<SocketId>,
    hello: Vec<u8>,
    reports: Sender<SubscriberReport>,
    /// Set by the application to end this subscriber alone (on a shared worker).
    cancel: Arc<AtomicBool>,
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
        if self.cancel.load(Ordering::Acquire) {
            ctx.stop();
            return Ok(false);
        }
        let now = now_ns();
        self.ledger.on_timer(now);
        self.follow_up(ctx, now);
        Ok(false)
    }

    fn on_stop(&mut self, ctx: &mut WorkerCtx<'_>) {
        // On a shared worker the SUB stays open after this member ends: unsubscribed, the
        // publisher sees the subscriber leave (its hello, last) and stops sending to it.
        for prefix in &self.subscriptions {
            if let Err(e) = ctx.unsubscribe(self.feed, prefix) {
                tracing::debug!(error = %e, "unsubscribe at stop failed");
            }
        }
        let _ = self.reports.send(self.ledger.finish(now_ns(), Outcome::Stopped));
    }
}
