//! [`TickPublisher`]: the application's ticks, sequenced, coalesced, stamped and announced
//! on a worker of an engine; fed from any thread ([`TickPublisher::publish`]) or by a
//! [`TickSource`] running on the worker itself.
//!
//! The hand-off is a bounded channel of (topic, payload, hand-off time) plus a wake-up: the
//! application pushes the tick, then, only if no wake-up is outstanding, puts a no-op into
//! the worker's own inbox (a boxed zero-sized closure: no allocation). The worker clears the
//! flag before it drains the channel, so a tick pushed after the drain always finds the flag
//! clear and wakes it; a busy worker costs the publishing thread one channel push and one
//! atomic swap per tick. Payload buffers go back to the application through a second
//! channel, so a steady stream allocates nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use super::config::{PublisherConfig, MAX_PAYLOAD};
use super::report::PublisherReport;
use super::schedule::{Due, Schedule};
use super::stream::{Outlet, PublisherLive, Stream};
use super::wire::Kind;
use crate::config::{SocketKind, SocketOptions};
use crate::endpoint::Endpoint;
use crate::engine::{Engine, Handle, Handler, SocketId, SocketSpec, Worker, WorkerBuilder, WorkerCtx};
use crate::error::{Error, Result};
use crate::message::Inbound;
use crate::sys::now_ns;

/// Most hand-offs taken from the channel per pass, so a flooded worker still serves its
/// sockets (subscriptions, snapshot requests) and its heartbeats.
const MAX_DRAIN: usize = 4096;

/// Why a tick was not handed over. The caller keeps its payload: it was only borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublishError {
    /// `capacity` ticks are already waiting for the worker (only from `try_publish`).
    Full,
    /// The publisher has finished or its worker has stopped.
    Stopped,
    /// There is no topic with this index.
    NoSuchTopic {
        /// The index given.
        topic: usize,
        /// How many topics the publisher has.
        topics: usize,
    },
    /// The payload is longer than [`MAX_PAYLOAD`] bytes.
    TooLarge {
        /// Its length.
        len: usize,
    },
}

impl std::fmt::Display for PublishError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PublishError::Full => {
                f.write_str("the publisher's hand-off channel is full; retry, or raise capacity")
            }
            PublishError::Stopped => f.write_str("the publisher has finished or stopped"),
            PublishError::NoSuchTopic { topic, topics } => {
                write!(f, "no topic {topic}: the publisher has topics 0 to {}", topics.saturating_sub(1))
            }
            PublishError::TooLarge { len } => {
                write!(f, "payload of {len} bytes is larger than the {MAX_PAYLOAD} bytes a tick carries")
            }
        }
    }
}

impl std::error::Error for PublishError {}

/// The options every fan-out connection shares: its CURVE role, and the kernel's check for
/// a dead tcp peer (keepalive probes a third of `dead_peer` apart after a third of it idle,
/// two unanswered end it; unacknowledged data ends it after `dead_peer`), so its queue is
/// freed and a subscriber reconnects. No ZMTP heartbeats: with them a peer that resets the
/// connection of a reader that fell behind aborts libzmq (see `SocketOptions::heartbeat`).
pub(crate) fn connection_options(
    curve: Option<crate::curve::Curve>,
    dead_peer: Option<Duration>,
) -> SocketOptions {
    let o = SocketOptions::default().curve(curve);
    match dead_peer {
        Some(t) if !t.is_zero() => {
            let step = (t / 3).max(Duration::from_secs(1));
            o.tcp_keepalive(step, step, 2).tcp_max_retransmit(t)
        }
        _ => o,
    }
}

/// Checks a tick's topic index and payload against the publisher's limits.
fn check_tick(topic: usize, topics: usize, payload: &[u8]) -> std::result::Result<u16, PublishError> {
    let k = u16::try_from(topic).ok().filter(|_| topic < topics);
    let Some(k) = k else { return Err(PublishError::NoSuchTopic { topic, topics }) };
    if payload.len() > MAX_PAYLOAD {
        return Err(PublishError::TooLarge { len: payload.len() });
    }
    Ok(k)
}

/// [`check_tick`] for a tick published on the worker's own thread, as an [`Error`].
fn check_tick_here(topic: usize, topics: usize, payload: &[u8]) -> Result<()> {
    check_tick(topic, topics, payload)
        .map(|_| ())
        .map_err(|e| Error::config("tick", format!("topic {topic}, {} bytes", payload.len()), e.to_string()))
}

/// What a [`TickSource`] asks for after a poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourcePoll {
    /// Poll again no later than this CLOCK_MONOTONIC time in ns (sooner if a socket or a
    /// hand-off wakes the worker).
    WakeAt(u64),
    /// The source is exhausted: the stream ends (its end markers go out).
    Done,
}

/// Ticks produced on the publisher's own worker thread, with no hand-off between threads:
/// a replay of recorded ticks at their pace, or a generator (`ztick fanout`'s synthetic
/// feed is one). Given to [`TickPublisher::start_with_source`].
pub trait TickSource: Send + 'static {
    /// Called on every pass of the worker with the time now (CLOCK_MONOTONIC ns): publish
    /// what is due through `out` and say when to be called next. Every tick published is
    /// sent by the end of the pass.
    ///
    /// # Errors
    /// Any error is counted and traced as a handler error; the stream goes on.
    fn poll(&mut self, now_ns: u64, out: &mut SourceOut<'_>) -> Result<SourcePoll>;
}

/// A [`TickSource`]'s way to publish, lent for one poll.
pub struct SourceOut<'a> {
    stream: &'a mut Stream,
    outlet: &'a mut dyn Outlet,
    now: u64,
    published: usize,
}

impl std::fmt::Debug for SourceOut<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceOut").field("published", &self.published).finish()
    }
}

impl SourceOut<'_> {
    /// Publishes a tick of topic `topic` (an index into the publisher's topics) that was
    /// meant to leave at `intended_ns` (CLOCK_MONOTONIC; subscribers measure latency from it,
    /// so a late pass shows as latency, not hidden by coordinated omission; 0 for unknown).
    ///
    /// # Errors
    /// [`Error::Config`] for a topic or payload out of range; a send that failed.
    pub fn publish(&mut self, topic: usize, intended_ns: u64, payload: &[u8]) -> Result<()> {
        check_tick_here(topic, self.stream.topic_count(), payload)?;
        self.stream.push(self.outlet, topic, intended_ns, payload, self.now)?;
        self.published += 1;
        Ok(())
    }

    /// Subscribers connected now (by their hello subscriptions; in a single-frame feed, by
    /// their group subscriptions): a source can wait for them before it starts.
    pub fn subscribers(&self) -> usize {
        self.stream.subscribers()
    }

    /// The number of topics.
    pub fn topics(&self) -> usize {
        self.stream.topic_count()
    }
}

/// What the application hands the worker.
enum Cmd {
    Tick {
        topic: u16,
        intended_ns: u64,
        payload: Vec<u8>,
    },
    /// Send the end markers: the stream ends after every tick handed over before it.
    End,
}

/// A tick publisher on its own worker of an engine.
///
/// Each tick gets its topic's next sequence (from 1), the time it was handed over (as the
/// wire format's `intended_ns`, so subscribers measure latency from the application's
/// call) and its send time; heartbeats carry each topic's last sequence; the end-of-stream
/// markers close the stream ([`finish`](Self::finish)). The side channel, when bound,
/// answers late joiners' snapshots and takes the subscribers' end acknowledgements.
///
/// ```
/// use std::time::Duration;
/// use ztick::fanout::{OwnedEvent, PublisherConfig, SubscriberConfig, TickPublisher, TickSubscriber};
/// use ztick::{Endpoint, Engine};
///
/// let engine = Engine::new()?;
/// let cfg = PublisherConfig { topics: vec!["eur".into()], ..Default::default() };
/// let publisher = TickPublisher::start(&engine, Endpoint::unique_inproc("doc-pub"), None, cfg)?;
/// let sub_cfg = SubscriberConfig::for_topics(&["eur"]);
/// let subscriber = TickSubscriber::with_channel(&engine, publisher.endpoint().clone(), None, sub_cfg, 64)?;
/// assert!(publisher.wait_subscribers(1, Duration::from_secs(10)));
///
/// publisher.publish(0, b"1.0842").unwrap();
/// // The publisher's epoch begins first, then its ticks.
/// let tick = loop {
///     if let OwnedEvent::Tick(t) = subscriber.recv_timeout(Duration::from_secs(10)).expect("an event") {
///         break t;
///     }
/// };
/// assert_eq!(tick.payload, b"1.0842");
/// publisher.finish(Duration::from_secs(1))?;
/// assert_eq!(subscriber.finish(Duration::from_secs(10))?.received(), 1);
/// # Ok::<(), ztick::Error>(())
/// ```
pub struct TickPublisher {
    worker: Worker,
    handle: Handle,
    endpoint: Endpoint,
    side_endpoint: Option<Endpoint>,
    topics: Vec<String>,
    inbox: Sender<Cmd>,
    /// Payload buffers the worker is done with.
    free: Receiver<Vec<u8>>,
    /// True while a wake-up is on its way to the worker (see the module doc).
    wake_pending: Arc<AtomicBool>,
    /// Set by `finish`: a worker stopped before it saw the end command still sends the end.
    end_requested: Arc<AtomicBool>,
    live: Arc<PublisherLive>,
    report: Receiver<PublisherReport>,
    epoch: u64,
}

impl std::fmt::Debug for TickPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TickPublisher")
            .field("endpoint", &self.endpoint)
            .field("topics", &self.topics.len())
            .finish()
    }
}

impl TickPublisher {
    /// Starts a publisher on its own worker of `engine`: an XPUB bound at `bind` and, when
    /// given, the side channel (a ROUTER) at `side`: late joiners' snapshots and the end
    /// acknowledgements that let [`finish`](Self::finish) return early.
    ///
    /// # Errors
    /// A field of `cfg` out of range ([`PublisherConfig::validate`]), or a socket that
    /// could not be bound.
    pub fn start(
        engine: &Engine,
        bind: Endpoint,
        side: Option<Endpoint>,
        cfg: PublisherConfig,
    ) -> Result<Self> {
        Self::spawn(engine, bind, side, cfg, None)
    }

    /// As [`start`](Self::start), with `source` polled on the worker on every pass until it
    /// is [`Done`](SourcePoll::Done), which ends the stream. Ticks handed over with
    /// [`publish`](Self::publish) are taken as well.
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub fn start_with_source(
        engine: &Engine,
        bind: Endpoint,
        side: Option<Endpoint>,
        cfg: PublisherConfig,
        source: impl TickSource,
    ) -> Result<Self> {
        Self::spawn(engine, bind, side, cfg, Some(Box::new(source)))
    }

    fn spawn(
        engine: &Engine,
        bind: Endpoint,
        side: Option<Endpoint>,
        cfg: PublisherConfig,
        source: Option<Box<dyn TickSource>>,
    ) -> Result<Self> {
        let Prepared { builder, handler, parts } = prepare(engine, bind, side, &cfg, source)?;
        let worker = builder.handler(handler).spawn()?;
        let endpoint = worker.endpoint(parts.feed).unwrap_or_default().parse()?;
        let side_endpoint = match parts.side {
            Some(r) => Some(worker.endpoint(r).unwrap_or_default().parse()?),
            None => None,
        };
        Ok(TickPublisher {
            handle: worker.handle(),
            worker,
            endpoint,
            side_endpoint,
            topics: cfg.topics,
            inbox: parts.inbox,
            free: parts.free,
            wake_pending: parts.wake_pending,
            end_requested: parts.end_requested,
            live: parts.live,
            report: parts.report,
            epoch: parts.epoch,
        })
    }

    /// The endpoint subscribers connect to (with the port chosen, for `tcp://…:*`).
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The side channel's endpoint, when one was bound.
    pub fn side_endpoint(&self) -> Option<&Endpoint> {
        self.side_endpoint.as_ref()
    }

    /// The topics, in index order.
    pub fn topics(&self) -> &[String] {
        &self.topics
    }

    /// The index of topic `name`, for [`publish`](Self::publish).
    pub fn topic_index(&self, name: &str) -> Option<usize> {
        self.topics.iter().position(|t| t == name)
    }

    /// Subscribers connected now (by their hello subscriptions; in a single-frame feed, by
    /// their group subscriptions).
    pub fn subscribers(&self) -> usize {
        self.live.subscribers()
    }

    /// Waits until at least `n` subscribers are connected, at most `timeout`; true if they
    /// are. Ticks published before a subscriber is connected do not reach it.
    pub fn wait_subscribers(&self, n: usize, timeout: Duration) -> bool {
        self.live.wait_subscribers(n, timeout)
    }

    /// The epoch this publisher publishes under: random, picked when it started, carried
    /// in every message so subscribers tell a restarted publisher from the old one.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Ticks the worker has sequenced so far.
    pub fn published(&self) -> u64 {
        self.live.published.load(Ordering::Relaxed)
    }

    /// Waits until the stream has ended (its first end markers are out: the source is
    /// done, or [`finish`](Self::finish) asked; or the worker stopped), at most `timeout`;
    /// true if it has.
    pub fn wait_ended(&self, timeout: Duration) -> bool {
        self.live.wait_ended(timeout)
    }

    fn tick(&self, topic: usize, intended_ns: u64, payload: &[u8]) -> std::result::Result<Cmd, PublishError> {
        if self.end_requested.load(Ordering::Acquire) {
            // The stream has ended: a tick now would never be sent.
            return Err(PublishError::Stopped);
        }
        let topic = check_tick(topic, self.topics.len(), payload)?;
        let mut buf = self.free.try_recv().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(payload);
        Ok(Cmd::Tick { topic, intended_ns, payload: buf })
    }

    /// Wakes the worker unless a wake-up is already on its way.
    fn wake(&self) -> std::result::Result<(), PublishError> {
        if !self.wake_pending.swap(true, Ordering::AcqRel) && !self.handle.run(|_| {}) {
            return Err(PublishError::Stopped);
        }
        Ok(())
    }

    /// Hands a copy of `payload` to the worker as the next tick of topic `topic` (an index
    /// into [`topics`](Self::topics)), waiting while `capacity` ticks are already waiting.
    ///
    /// # Errors
    /// [`PublishError::Stopped`] after [`finish`](Self::finish) or when the worker ended;
    /// [`PublishError::NoSuchTopic`], [`PublishError::TooLarge`] for bad arguments.
    pub fn publish(&self, topic: usize, payload: &[u8]) -> std::result::Result<(), PublishError> {
        self.publish_at(topic, now_ns(), payload)
    }

    /// As [`publish`](Self::publish), for a tick meant to leave at `intended_ns`
    /// (CLOCK_MONOTONIC; a schedule's or a recorded feed's time): subscribers measure its
    /// latency from then, so a caller that wakes late, or a hand-off that waits, shows in
    /// the figures instead of hiding in them (coordinated omission). 0: unknown.
    ///
    /// # Errors
    /// As `publish`.
    pub fn publish_at(
        &self,
        topic: usize,
        intended_ns: u64,
        payload: &[u8],
    ) -> std::result::Result<(), PublishError> {
        let cmd = self.tick(topic, intended_ns, payload)?;
        self.inbox.send(cmd).map_err(|_| PublishError::Stopped)?;
        self.wake()
    }

    /// As [`publish`](Self::publish), but refuses with [`PublishError::Full`] instead of
    /// waiting.
    ///
    /// # Errors
    /// As `publish`, and `Full`.
    pub fn try_publish(&self, topic: usize, payload: &[u8]) -> std::result::Result<(), PublishError> {
        let cmd = self.tick(topic, now_ns(), payload)?;
        self.inbox.try_send(cmd).map_err(|e| match e {
            TrySendError::Full(_) => PublishError::Full,
            TrySendError::Disconnected(_) => PublishError::Stopped,
        })?;
        self.wake()
    }

    /// Asks the worker to end the stream now (every tick handed over so far, then the end
    /// markers; a source is polled no more); [`finish`](Self::finish) later waits for the
    /// acknowledgements and returns the report. Waits only while the hand-off channel is
    /// full. Ticks published after it are refused.
    ///
    /// # Errors
    /// [`PublishError::Stopped`] when the worker has ended.
    pub fn end_stream(&self) -> std::result::Result<(), PublishError> {
        self.end_requested.store(true, Ordering::Release);
        self.inbox.send(Cmd::End).map_err(|_| PublishError::Stopped)?;
        self.wake()
    }

    /// Ends the stream: every tick handed over so far is sent, then the end-of-stream
    /// markers, repeated every `eos_repeat` until each connected subscriber has
    /// acknowledged or `eos_linger` has passed. Waits at most `timeout` for that, stops the
    /// worker, and returns what it published.
    ///
    /// # Errors
    /// A worker that panicked or failed; [`Error::Stopped`] when it ended without a report.
    pub fn finish(self, timeout: Duration) -> Result<PublisherReport> {
        let deadline = Instant::now() + timeout;
        self.end_requested.store(true, Ordering::Release);
        let sent = self.inbox.send_timeout(Cmd::End, timeout).is_ok() && self.wake().is_ok();
        let early = match sent {
            true => self.report.recv_timeout(deadline.saturating_duration_since(Instant::now())).ok(),
            false => None,
        };
        let TickPublisher { worker, endpoint, side_endpoint, report, .. } = self;
        let stopped = worker.stop();
        let got = early.or_else(|| report.try_recv().ok());
        endpoint.remove_ipc_file();
        if let Some(ep) = &side_endpoint {
            ep.remove_ipc_file();
        }
        stopped?;
        got.ok_or_else(|| Error::Stopped("the tick publisher ended without its report".into()))
    }
}

/// A publisher's worker, configured but not started, with its handler and what the
/// application side keeps.
pub(super) struct Prepared<'e> {
    pub(super) builder: WorkerBuilder<'e>,
    pub(super) handler: PublisherHandler,
    pub(super) parts: Parts,
}

/// What the application side of a publisher keeps of its worker.
pub(super) struct Parts {
    pub(super) feed: SocketId,
    pub(super) side: Option<SocketId>,
    inbox: Sender<Cmd>,
    free: Receiver<Vec<u8>>,
    wake_pending: Arc<AtomicBool>,
    end_requested: Arc<AtomicBool>,
    pub(super) live: Arc<PublisherLive>,
    pub(super) report: Receiver<PublisherReport>,
    pub(super) epoch: u64,
}

/// Configures a publisher's worker: an XPUB bound at `bind` and, when given, the side
/// channel's ROUTER at `side`, under `cfg`, with `source` polled on every pass.
///
/// # Errors
/// A field of `cfg` out of range ([`PublisherConfig::validate`]).
pub(super) fn prepare<'e>(
    engine: &'e Engine,
    bind: Endpoint,
    side: Option<Endpoint>,
    cfg: &PublisherConfig,
    source: Option<Box<dyn TickSource>>,
) -> Result<Prepared<'e>> {
    cfg.validate()?;
    let (inbox, inbox_rx) = crossbeam_channel::bounded(cfg.capacity);
    let (free_tx, free) = crossbeam_channel::bounded(cfg.capacity.min(1024));
    let (report_tx, report) = crossbeam_channel::bounded(1);
    let wake_pending = Arc::new(AtomicBool::new(false));
    let end_requested = Arc::new(AtomicBool::new(false));
    let live = Arc::new(PublisherLive::default());
    let mut b = engine.worker("tick-publisher").idle(cfg.idle).pin(cfg.pin).sched(cfg.sched).batch_max(256);
    let base = connection_options(cfg.curve.clone(), cfg.dead_peer_timeout);
    let base = match &cfg.zap_domain {
        Some(domain) if cfg.curve.is_some() => base.zap_domain(domain),
        _ => base,
    };
    let mut feed_opts = base.clone();
    if let Some(h) = cfg.hwm_msgs {
        feed_opts = feed_opts.hwm_msgs(h);
    }
    // Conflating subscribers can hold one subscription only, so they send no hello: a
    // single-frame feed counts group subscriptions instead, which needs every one passed
    // on (verbose).
    let feed = b.socket(
        SocketSpec::bind(SocketKind::XPub, bind)
            .options(feed_opts)
            .xpub_verbose(cfg.single_frame)
            // Subscribers' connections and departures are logged and counted in the report.
            .monitor(true),
    );
    let side_sock = side.map(|ep| b.socket(SocketSpec::bind(SocketKind::Router, ep).options(base)));
    let stream = Stream::new(cfg, side_sock.is_some(), Arc::clone(&live));
    let epoch = stream.epoch();
    let handler = PublisherHandler {
        stream,
        schedule: Schedule::new(cfg.heartbeat, cfg.eos_repeat, cfg.eos_linger, now_ns()),
        feed,
        side: side_sock,
        inbox: inbox_rx,
        free: free_tx,
        wake_pending: Arc::clone(&wake_pending),
        end_requested: Arc::clone(&end_requested),
        coalesce: !cfg.max_delay.is_zero(),
        source,
        live: Arc::clone(&live),
        reports: report_tx,
    };
    let parts =
        Parts { feed, side: side_sock, inbox, free, wake_pending, end_requested, live, report, epoch };
    Ok(Prepared { builder: b, handler, parts })
}

/// The worker's sockets as the stream's [`Outlet`].
struct WorkerOutlet<'c, 'w> {
    ctx: &'c mut WorkerCtx<'w>,
    feed: SocketId,
    side: Option<SocketId>,
}

impl Outlet for WorkerOutlet<'_, '_> {
    fn feed(&mut self, parts: &[&[u8]]) -> Result<()> {
        self.ctx.send_parts(self.feed, parts)
    }

    fn side(&mut self, parts: &[&[u8]]) -> Result<()> {
        match self.side {
            Some(s) => self.ctx.send_parts(s, parts),
            None => Ok(()),
        }
    }

    fn now_ns(&self) -> u64 {
        now_ns()
    }
}

/// The publisher's handler, on its worker.
pub(super) struct PublisherHandler {
    stream: Stream,
    schedule: Schedule,
    feed: SocketId,
    side: Option<SocketId>,
    inbox: Receiver<Cmd>,
    free: Sender<Vec<u8>>,
    wake_pending: Arc<AtomicBool>,
    end_requested: Arc<AtomicBool>,
    /// Hold batches for `max_delay` (else send everything at the end of each pass).
    coalesce: bool,
    source: Option<Box<dyn TickSource>>,
    live: Arc<PublisherLive>,
    reports: Sender<PublisherReport>,
}

/// Asks the worker to wake at `at_ns` (CLOCK_MONOTONIC).
fn wake_at_ns(ctx: &mut WorkerCtx<'_>, at_ns: u64) {
    if at_ns != u64::MAX {
        ctx.wake_at(Instant::now() + Duration::from_nanos(at_ns.saturating_sub(now_ns())));
    }
}

impl PublisherHandler {
    /// Adds a tick published on the worker's own thread (the inline publisher's path): it
    /// leaves with its batch, at the latest on the next pass.
    ///
    /// # Errors
    /// [`Error::Stopped`] once the stream has ended; [`Error::Config`] for a topic or a
    /// payload out of range; a send that failed.
    pub(super) fn push_here(
        &mut self,
        ctx: &mut WorkerCtx<'_>,
        topic: usize,
        intended_ns: u64,
        payload: &[u8],
    ) -> Result<()> {
        if self.schedule.is_ending() {
            return Err(Error::Stopped("the tick stream has ended: a tick now would never be sent".into()));
        }
        check_tick_here(topic, self.stream.topic_count(), payload)?;
        let mut out = self.outlet(ctx);
        self.stream.push(&mut out, topic, intended_ns, payload, now_ns())
    }

    /// Ends the stream from the worker's own thread (once): what is open, then the first
    /// end markers.
    ///
    /// # Errors
    /// A send that failed.
    pub(super) fn end_here(&mut self, ctx: &mut WorkerCtx<'_>) -> Result<()> {
        self.end_requested.store(true, Ordering::Release);
        if self.schedule.is_ending() {
            return Ok(());
        }
        let mut out = self.outlet(ctx);
        self.end(&mut out, now_ns())
    }

    fn outlet<'c, 'w>(&self, ctx: &'c mut WorkerCtx<'w>) -> WorkerOutlet<'c, 'w> {
        WorkerOutlet { ctx, feed: self.feed, side: self.side }
    }

    /// Sends what is open, then the first end markers, and starts their repetition.
    fn end(&mut self, out: &mut dyn Outlet, now: u64) -> Result<()> {
        self.stream.flush_all(out)?;
        self.stream.send_control(out, Kind::End)?;
        self.schedule.end(now);
        self.live.set_ended();
        Ok(())
    }

    /// Takes what the application handed over; returns how many commands.
    fn drain(&mut self, out: &mut dyn Outlet, now: u64) -> Result<usize> {
        // Cleared before the drain: a tick pushed after it finds the flag clear and wakes us.
        self.wake_pending.swap(false, Ordering::AcqRel);
        let mut n = 0;
        while n < MAX_DRAIN {
            let Ok(cmd) = self.inbox.try_recv() else { break };
            n += 1;
            match cmd {
                Cmd::Tick { topic, intended_ns, payload } => {
                    let res = self.stream.push(out, usize::from(topic), intended_ns, &payload, now);
                    // Back to the application for its next tick; when its pool is full, freed.
                    let _ = self.free.try_send(payload);
                    res?;
                }
                Cmd::End => {
                    self.end(out, now)?;
                    break;
                }
            }
        }
        Ok(n)
    }

    /// The pass while the stream is live: hand-offs, the source, batches, heartbeats.
    fn live_pass(&mut self, ctx: &mut WorkerCtx<'_>, now: u64) -> Result<bool> {
        let mut out = WorkerOutlet { ctx, feed: self.feed, side: self.side };
        let mut work = self.drain(&mut out, now)?;
        let mut source_wake = u64::MAX;
        if !self.schedule.is_ending() {
            if let Some(source) = self.source.as_mut() {
                let mut so = SourceOut { stream: &mut self.stream, outlet: &mut out, now, published: 0 };
                let polled = source.poll(now, &mut so);
                work += so.published;
                match polled? {
                    SourcePoll::WakeAt(at) => source_wake = at,
                    SourcePoll::Done => {
                        self.source = None;
                        self.end(&mut out, now)?;
                    }
                }
            }
        }
        if self.schedule.is_ending() {
            return Ok(true);
        }
        if self.coalesce {
            if let Some(due) = self.stream.flush_due(&mut out, now)? {
                source_wake = source_wake.min(due);
            }
        } else {
            self.stream.flush_all(&mut out)?;
        }
        // The live ticks have left: now the repairs, a bounded number per pass.
        work += self.stream.serve_repairs(&mut out)?;
        if self.schedule.poll(now, false) == Due::Heartbeat {
            self.stream.send_control(&mut out, Kind::Heartbeat)?;
        }
        wake_at_ns(out.ctx, source_wake.min(self.schedule.next_deadline()));
        if work > 0 {
            self.stream.publish_live();
        }
        Ok(work > 0)
    }
}

impl Drop for PublisherHandler {
    fn drop(&mut self) {
        // Also after a panic, when `on_stop` never ran: nobody waits for an end forever.
        self.live.set_ended();
    }
}

impl Handler for PublisherHandler {
    fn on_message(&mut self, ctx: &mut WorkerCtx<'_>, socket: SocketId, msg: &Inbound<'_>) -> Result<()> {
        let mut out = self.outlet(ctx);
        if socket == self.feed {
            return self.stream.on_subscription(&mut out, msg.last(), msg.user_id(), now_ns());
        }
        let mut frames = [&[][..]; 4];
        let n = msg.len().min(frames.len());
        for (slot, f) in frames.iter_mut().zip(msg.iter()) {
            *slot = f;
        }
        self.stream.on_side_request(&mut out, &frames[..n], msg.user_id(), now_ns())
    }

    fn on_tick(&mut self, ctx: &mut WorkerCtx<'_>) -> Result<bool> {
        let now = now_ns();
        if !self.schedule.is_ending() {
            return self.live_pass(ctx, now);
        }
        match self.schedule.poll(now, self.stream.all_acknowledged()) {
            Due::Finished => {
                ctx.stop();
                return Ok(false);
            }
            Due::RepeatEnd => {
                let mut out = self.outlet(ctx);
                self.stream.send_control(&mut out, Kind::End)?;
            }
            Due::Nothing | Due::Heartbeat => {}
        }
        // Subscribers repair their tails while the end markers repeat.
        let mut out = self.outlet(ctx);
        let served = self.stream.serve_repairs(&mut out)?;
        wake_at_ns(ctx, self.schedule.next_deadline());
        Ok(served > 0)
    }

    fn on_stop(&mut self, ctx: &mut WorkerCtx<'_>) {
        // Stopped before the end was sent (dropped, or a `finish` that did not wait): what
        // was handed over still goes out, and the end markers once if they were asked for.
        if !self.schedule.is_ending() {
            let mut out = self.outlet(ctx);
            let mut end = false;
            while let Ok(cmd) = self.inbox.try_recv() {
                match cmd {
                    Cmd::Tick { topic, intended_ns, payload } => {
                        if self
                            .stream
                            .push(&mut out, usize::from(topic), intended_ns, &payload, now_ns())
                            .is_err()
                        {
                            break;
                        }
                    }
                    Cmd::End => {
                        end = true;
                        break;
                    }
                }
            }
            let _ = self.stream.flush_all(&mut out);
            // `finish` may have given up handing the end command over (a full channel).
            if end || self.end_requested.load(Ordering::Acquire) {
                let _ = self.stream.send_control(&mut out, Kind::End);
            }
        }
        self.stream.publish_live();
        self.live.set_ended();
        let mut report = self.stream.take_report();
        if let Some(m) = ctx.monitor_stats(self.feed) {
            report.connections = m.handshakes_succeeded;
            report.disconnections = m.disconnected;
            report.handshake_failures = m.handshakes_failed;
        }
        let _ = self.reports.send(report);
    }
}
