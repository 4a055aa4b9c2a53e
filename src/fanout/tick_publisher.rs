//! The app-driven publisher: the application hands over its own ticks, the worker sequences,
//! coalesces, stamps and announces them exactly as the synthetic feed does.
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

use super::publisher::{Stream, SubscriberWatch};
use super::wire::Kind;
use super::{check_stream, cleanup_ipc, hwm_options, PublisherLive, PublisherReport};
use crate::config::{CoreId, SocketKind};
use crate::endpoint::Endpoint;
use crate::engine::{Engine, Handle, Handler, IdleStrategy, SocketId, SocketSpec, Worker, WorkerCtx};
use crate::error::{Error, Result};
use crate::message::Inbound;
use crate::sys::now_ns;

/// Largest payload one tick can carry: the wire format's length field is 16 bits.
pub const MAX_PAYLOAD: usize = u16::MAX as usize;

/// Most hand-offs taken from the channel per pass, so a flooded worker still serves its
/// sockets (subscriptions, snapshot requests) and its heartbeats.
const MAX_DRAIN: usize = 4096;

/// Settings of an app-driven publisher. Every field has a documented default.
#[derive(Debug, Clone)]
pub struct TickPublisherConfig {
    /// Topic names, in the order [`TickPublisher::publish`] numbers them: 1 to 65,535 names
    /// of 1 to 255 bytes without a NUL. Default: `t0` … `t7`, what `ztick fanout --role sub`
    /// expects by default.
    pub topics: Vec<String>,
    /// Groups the topics are spread over, as in [`FeedConfig::groups`](super::FeedConfig::groups)
    /// (topic `i` in group `g{i % groups}.`). Default 1.
    pub groups: usize,
    /// Most ticks coalesced into one message (1 to 65,535). Default 64.
    pub max_batch: usize,
    /// How long a tick may wait for others to share its message. Default 0: each pass of
    /// the worker sends what has arrived since the last one, so batches grow only when the
    /// application publishes faster than one message per pass.
    pub max_delay: Duration,
    /// Interval of the heartbeats that carry each topic's last sequence, so subscribers see
    /// a lost tail before the end. Default 100 ms.
    pub heartbeat: Duration,
    /// Send each tick as one single-frame message, for conflating subscribers. Default false.
    pub single_frame: bool,
    /// How often the end-of-stream markers are repeated by [`TickPublisher::finish`].
    /// Default 10 ms.
    pub eos_repeat: Duration,
    /// How long they are repeated at most; less once every connected subscriber has
    /// acknowledged (subscribers acknowledge through the snapshot endpoint). Default 1 s.
    pub eos_linger: Duration,
    /// Send HWM of the XPUB, in messages. Default: libzmq's 1000.
    pub hwm: Option<u32>,
    /// Ticks that may wait between the application and the worker before `publish` waits
    /// (and `try_publish` refuses). Default 4096.
    pub capacity: usize,
    /// The worker's idle strategy. Default [`IdleStrategy::BLOCK`].
    pub idle: IdleStrategy,
    /// The worker's core. Default: not pinned.
    pub pin: Option<CoreId>,
}

impl Default for TickPublisherConfig {
    fn default() -> Self {
        TickPublisherConfig {
            topics: (0..8).map(|i| format!("t{i}")).collect(),
            groups: 1,
            max_batch: 64,
            max_delay: Duration::ZERO,
            heartbeat: Duration::from_millis(100),
            single_frame: false,
            eos_repeat: Duration::from_millis(10),
            eos_linger: Duration::from_secs(1),
            hwm: None,
            capacity: 4096,
            idle: IdleStrategy::BLOCK,
            pin: None,
        }
    }
}

impl TickPublisherConfig {
    /// Checks every field; the error names the field, the value and what is accepted.
    pub fn validate(&self) -> Result<()> {
        check_stream(&self.topics, self.max_batch, self.groups, self.heartbeat)?;
        if self.capacity == 0 {
            return Err(Error::config("capacity", 0, "at least 1 tick"));
        }
        Ok(())
    }
}

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
            PublishError::Full => f.write_str("the publisher's hand-off channel is full"),
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

/// What the application hands the worker.
enum Cmd {
    Tick {
        topic: u16,
        handed_ns: u64,
        payload: Vec<u8>,
    },
    /// Send the end markers: the stream ends after every tick handed over before it.
    End,
}

/// A publisher the application feeds with its own ticks, on its own worker of an engine.
///
/// Subscribers are the same as for the synthetic feed ([`SubscriberRun`](super::SubscriberRun),
/// [`TickSubscriber`](super::TickSubscriber), `ztick fanout --role sub`): each tick gets
/// its topic's next sequence (from 1), its hand-off time (as the wire format's
/// `intended_ns`, so subscribers measure latency from the application's call) and its send
/// time; heartbeats carry each topic's last sequence; [`finish`](Self::finish) sends the
/// end-of-stream markers.
///
/// ```
/// use std::time::Duration;
/// use ztick::fanout::{SubscriberConfig, TickPublisher, TickPublisherConfig, TickSubscriber};
/// use ztick::{Endpoint, Engine};
///
/// let engine = Engine::new()?;
/// let cfg = TickPublisherConfig { topics: vec!["eur".into()], ..Default::default() };
/// let publisher = TickPublisher::start(&engine, Endpoint::unique_inproc("doc-pub"), None, cfg)?;
/// let sub_cfg = SubscriberConfig::new(publisher.endpoint().clone(), &["eur"]);
/// let subscriber = TickSubscriber::with_channel(&engine, &sub_cfg, 64)?;
/// assert!(publisher.wait_subscribers(1, Duration::from_secs(10)));
///
/// publisher.publish(0, b"1.0842").unwrap();
/// let event = subscriber.recv_timeout(Duration::from_secs(10)).expect("a tick");
/// assert_eq!(event.payload(), b"1.0842");
/// publisher.finish(Duration::from_secs(1))?;
/// assert_eq!(subscriber.finish(Duration::from_secs(10))?.received(), 1);
/// # Ok::<(), ztick::Error>(())
/// ```
pub struct TickPublisher {
    worker: Worker,
    handle: Handle,
    endpoint: Endpoint,
    snapshot_endpoint: Option<Endpoint>,
    topics: Vec<String>,
    inbox: Sender<Cmd>,
    /// Payload buffers the worker is done with.
    free: Receiver<Vec<u8>>,
    /// True while a wake-up is on its way to the worker (see the module doc).
    wake_pending: Arc<AtomicBool>,
    /// Set by `finish`: a worker stopped before it saw the end command still sends the end.
    end_requested: Arc<AtomicBool>,
    watch: Arc<SubscriberWatch>,
    live: Arc<PublisherLive>,
    report: Receiver<PublisherReport>,
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
    /// given, the snapshot/acknowledgement ROUTER at `snapshot_bind` (late joiners' snapshots
    /// and the end acknowledgements that let [`finish`](Self::finish) return early).
    ///
    /// # Errors
    /// A field of `cfg` out of range ([`TickPublisherConfig::validate`]), or a socket that
    /// could not be bound.
    pub fn start(
        engine: &Engine,
        bind: Endpoint,
        snapshot_bind: Option<Endpoint>,
        cfg: TickPublisherConfig,
    ) -> Result<TickPublisher> {
        cfg.validate()?;
        let (inbox, inbox_rx) = crossbeam_channel::bounded(cfg.capacity);
        let (free_tx, free) = crossbeam_channel::bounded(cfg.capacity.min(1024));
        let (report_tx, report) = crossbeam_channel::bounded(1);
        let wake_pending = Arc::new(AtomicBool::new(false));
        let end_requested = Arc::new(AtomicBool::new(false));
        let watch = Arc::new(SubscriberWatch::default());
        let live = Arc::new(PublisherLive::default());
        let mut b = engine.worker("tick-publisher").idle(cfg.idle).pin(cfg.pin).batch_max(256);
        let xpub = b.socket(
            SocketSpec::bind(SocketKind::XPub, bind)
                .options(hwm_options(cfg.hwm))
                .xpub_verbose(cfg.single_frame),
        );
        let router = snapshot_bind.map(|ep| b.socket(SocketSpec::bind(SocketKind::Router, ep)));
        let max_delay_ns = u64::try_from(cfg.max_delay.as_nanos()).unwrap_or(u64::MAX);
        let stream = Stream::new(
            &cfg.topics,
            cfg.groups,
            cfg.max_batch,
            max_delay_ns,
            cfg.single_frame,
            xpub,
            router,
            Arc::clone(&live),
        )
        .watched_by(Arc::clone(&watch));
        let handler = AppPublisher {
            stream,
            inbox: inbox_rx,
            free: free_tx,
            wake_pending: Arc::clone(&wake_pending),
            end_requested: Arc::clone(&end_requested),
            coalesce: !cfg.max_delay.is_zero(),
            heartbeat_ns: u64::try_from(cfg.heartbeat.as_nanos()).unwrap_or(u64::MAX),
            eos_repeat: cfg.eos_repeat,
            eos_linger: cfg.eos_linger,
            last_heartbeat: now_ns(),
            first_ns: 0,
            last_ns: 0,
            ending: None,
            reports: report_tx,
        };
        let worker = b.handler(handler).spawn()?;
        let endpoint = worker.endpoint(xpub).unwrap_or_default().parse()?;
        let snapshot_endpoint = match router {
            Some(r) => Some(worker.endpoint(r).unwrap_or_default().parse()?),
            None => None,
        };
        Ok(TickPublisher {
            handle: worker.handle(),
            worker,
            endpoint,
            snapshot_endpoint,
            topics: cfg.topics,
            inbox,
            free,
            wake_pending,
            end_requested,
            watch,
            live,
            report,
        })
    }

    /// The endpoint subscribers connect to (with the port chosen, for `tcp://…:*`).
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The snapshot/acknowledgement endpoint, when one was bound.
    pub fn snapshot_endpoint(&self) -> Option<&Endpoint> {
        self.snapshot_endpoint.as_ref()
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
        self.watch.get()
    }

    /// Waits until at least `n` subscribers are connected, at most `timeout`; true if they
    /// are. Ticks published before a subscriber is connected do not reach it.
    pub fn wait_subscribers(&self, n: usize, timeout: Duration) -> bool {
        self.watch.wait_for(n, timeout)
    }

    /// Ticks the worker has sequenced so far.
    pub fn published(&self) -> u64 {
        self.live.published.load(Ordering::Relaxed)
    }

    fn tick(&self, topic: usize, payload: &[u8]) -> std::result::Result<Cmd, PublishError> {
        let Ok(topic16) = u16::try_from(topic) else {
            return Err(PublishError::NoSuchTopic { topic, topics: self.topics.len() });
        };
        if topic >= self.topics.len() {
            return Err(PublishError::NoSuchTopic { topic, topics: self.topics.len() });
        }
        if payload.len() > MAX_PAYLOAD {
            return Err(PublishError::TooLarge { len: payload.len() });
        }
        let mut buf = self.free.try_recv().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(payload);
        Ok(Cmd::Tick { topic: topic16, handed_ns: now_ns(), payload: buf })
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
        let cmd = self.tick(topic, payload)?;
        self.inbox.send(cmd).map_err(|_| PublishError::Stopped)?;
        self.wake()
    }

    /// As [`publish`](Self::publish), but refuses with [`PublishError::Full`] instead of
    /// waiting.
    ///
    /// # Errors
    /// As `publish`, and `Full`.
    pub fn try_publish(&self, topic: usize, payload: &[u8]) -> std::result::Result<(), PublishError> {
        let cmd = self.tick(topic, payload)?;
        self.inbox.try_send(cmd).map_err(|e| match e {
            TrySendError::Full(_) => PublishError::Full,
            TrySendError::Disconnected(_) => PublishError::Stopped,
        })?;
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
        let TickPublisher { worker, endpoint, snapshot_endpoint, report, .. } = self;
        let stopped = worker.stop();
        let got = early.or_else(|| report.try_recv().ok());
        let mut eps = vec![&endpoint];
        eps.extend(snapshot_endpoint.as_ref());
        cleanup_ipc(&eps);
        stopped?;
        got.ok_or_else(|| Error::Stopped("the tick publisher ended without its report".into()))
    }
}

/// The app-driven publisher's handler, on its worker.
struct AppPublisher {
    stream: Stream,
    inbox: Receiver<Cmd>,
    free: Sender<Vec<u8>>,
    wake_pending: Arc<AtomicBool>,
    end_requested: Arc<AtomicBool>,
    /// Hold batches for `max_delay` (else send everything at the end of each pass).
    coalesce: bool,
    heartbeat_ns: u64,
    eos_repeat: Duration,
    eos_linger: Duration,
    last_heartbeat: u64,
    first_ns: u64,
    last_ns: u64,
    /// Once the end was asked for: when to repeat the markers, and until when.
    ending: Option<(Instant, Instant)>,
    reports: Sender<PublisherReport>,
}

impl AppPublisher {
    /// Takes what the application handed over; true if anything.
    fn drain(&mut self, ctx: &mut WorkerCtx<'_>, now: u64) -> Result<usize> {
        // Cleared before the drain: a tick pushed after it finds the flag clear and wakes us.
        self.wake_pending.swap(false, Ordering::AcqRel);
        let mut n = 0;
        while n < MAX_DRAIN {
            let Ok(cmd) = self.inbox.try_recv() else { break };
            n += 1;
            match cmd {
                Cmd::Tick { topic, handed_ns, payload } => {
                    if self.first_ns == 0 {
                        self.first_ns = handed_ns;
                    }
                    self.last_ns = now;
                    let res = self.stream.push(ctx, usize::from(topic), handed_ns, &payload, now);
                    // Back to the application for its next tick; when its pool is full, freed.
                    let _ = self.free.try_send(payload);
                    res?;
                }
                Cmd::End => {
                    self.stream.flush_all(ctx)?;
                    self.stream.set_elapsed(self.last_ns.saturating_sub(self.first_ns));
                    self.stream.send_control(ctx, Kind::End)?;
                    let at = Instant::now();
                    self.ending = Some((at + self.eos_repeat, at + self.eos_linger));
                    break;
                }
            }
        }
        Ok(n)
    }
}

impl Handler for AppPublisher {
    fn on_message(&mut self, ctx: &mut WorkerCtx<'_>, socket: SocketId, msg: &Inbound<'_>) -> Result<()> {
        self.stream.on_message(ctx, socket, msg)
    }

    fn on_tick(&mut self, ctx: &mut WorkerCtx<'_>) -> Result<bool> {
        if let Some((next_eos, until)) = self.ending {
            let at = Instant::now();
            if at >= until || self.stream.all_acknowledged() {
                ctx.stop();
                return Ok(false);
            }
            if at >= next_eos {
                self.stream.send_control(ctx, Kind::End)?;
                self.ending = Some((at + self.eos_repeat, until));
            }
            ctx.wake_at(next_eos.min(until));
            return Ok(false);
        }
        let now = now_ns();
        let n = self.drain(ctx, now)?;
        if self.ending.is_some() {
            return Ok(true);
        }
        if self.coalesce {
            if let Some(due) = self.stream.flush_due(ctx, now_ns())? {
                ctx.wake_at(Instant::now() + Duration::from_nanos(due.saturating_sub(now_ns())));
            }
        } else {
            self.stream.flush_all(ctx)?;
        }
        if now.saturating_sub(self.last_heartbeat) >= self.heartbeat_ns {
            self.last_heartbeat = now;
            self.stream.send_control(ctx, Kind::Heartbeat)?;
        }
        let next_hb = self.last_heartbeat.saturating_add(self.heartbeat_ns);
        ctx.wake_at(Instant::now() + Duration::from_nanos(next_hb.saturating_sub(now_ns())));
        if n > 0 {
            self.stream.publish_live();
        }
        Ok(n > 0)
    }

    fn on_stop(&mut self, ctx: &mut WorkerCtx<'_>) {
        // Stopped before the end was sent (dropped, or a `finish` that did not wait): what
        // was handed over still goes out, and the end markers once if they were asked for.
        if self.ending.is_none() {
            let mut end = false;
            while let Ok(cmd) = self.inbox.try_recv() {
                match cmd {
                    Cmd::Tick { topic, handed_ns, payload } => {
                        if self.stream.push(ctx, usize::from(topic), handed_ns, &payload, now_ns()).is_err() {
                            break;
                        }
                        self.last_ns = now_ns();
                    }
                    Cmd::End => {
                        end = true;
                        break;
                    }
                }
            }
            let _ = self.stream.flush_all(ctx);
            self.stream.set_elapsed(self.last_ns.saturating_sub(self.first_ns));
            // `finish` may have given up handing the end command over (a full channel).
            if end || self.end_requested.load(Ordering::Acquire) {
                let _ = self.stream.send_control(ctx, Kind::End);
            }
        }
        self.stream.publish_live();
        let _ = self.reports.send(self.stream.take_report());
    }
}
