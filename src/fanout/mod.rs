//! Tick fan-out: one paced, sequenced, coalescing publisher; subscribers that find every
//! gap and time every tick; a snapshot service so late joiners start with no gap.
//!
//! libzmq's PUB drops silently at its HWM and a late subscriber misses what came before;
//! here both are made visible (per-topic sequence gaps, with exact ranges, closed by
//! heartbeats and end-of-stream markers that carry each topic's last sequence) and
//! recoverable (the snapshot, after the guide's "Clone" pattern). The wire format is in
//! [`wire`].
//!
//! The publisher socket is an XPUB, so the publisher sees subscriptions arrive: each
//! subscriber also subscribes to a unique hello prefix, which tells the publisher that
//! subscriber's pipe is attached. Publishing starts once the expected subscribers are
//! there (no slow-joiner loss), and a snapshot is only answered once the asker's
//! subscription is in, so no update can fall between snapshot and stream.

mod publisher;
mod report;
mod seq;
mod subscriber;
mod tick_publisher;
mod tick_subscriber;
pub mod wire;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use publisher::{PublisherLive, PublisherReport, STALL_THRESHOLD};
pub use report::FanoutReport;
pub use seq::{Gap, SeqOutcome, SeqTracker, MAX_GAPS_KEPT};
pub use subscriber::{SubscriberLive, SubscriberReport, TopicGap, SLOW_GAP_RATE};
pub use tick_publisher::{PublishError, TickPublisher, TickPublisherConfig, MAX_PAYLOAD};
pub use tick_subscriber::{Delivered, Event, OwnedEvent, OwnedTick, TickSubscriber};

use crate::config::{CoreId, SocketKind, SocketOptions};
use crate::curve::Curve;
use crate::endpoint::{Endpoint, Transport};
use crate::engine::{Engine, IdleStrategy, SocketSpec, Worker};
use crate::error::{Error, Result};
use crate::zap::{ZapHandler, ZapPolicy};

/// What the publisher publishes and how. Every field has a documented default.
#[derive(Debug, Clone)]
pub struct FeedConfig {
    /// Topic names: 1 to 255 bytes, no NUL. Default: `t0` … `t7`.
    pub topics: Vec<String>,
    /// Ticks per second over all topics (round-robin); 0 = as fast as possible. Default 100,000.
    pub rate_per_s: u64,
    /// How long to publish. Default 5 s.
    pub duration: Duration,
    /// Publish exactly this many ticks instead (overrides the duration's count).
    pub max_ticks: Option<u64>,
    /// Payload bytes per tick (at most 65,535). Default 64.
    pub payload_size: usize,
    /// Groups the topics are spread over (topic `i` in group `i % groups`, named `g0.`,
    /// `g1.`, … by [`group_name`]). A message carries ticks of one group; SUB sockets filter on the group, and a
    /// subscriber keeps only its topics. Default 1: every topic coalesces into one stream.
    /// As many groups as topics gives per-topic filtering in libzmq, at the price of
    /// smaller batches.
    pub groups: usize,
    /// Most ticks coalesced into one message (1 to 65,535). Default 64.
    pub max_batch: usize,
    /// The coalescing window of a paced feed: the publisher sleeps until a tick is due plus
    /// this long, then sends everything due in one batch per group, so a tick leaves at most
    /// this late. Default 20 µs (0: wake for every tick). Measured here at 100,000 ticks/s,
    /// 8 topics, 2 subscribers over ipc: 20 µs cut p99 from 1.2 ms to 0.3 ms for 20 µs more
    /// at p50, because the subscribers then wake for a third as many messages.
    pub max_delay: Duration,
    /// Interval of the heartbeats that carry each topic's last sequence. Default 100 ms.
    pub heartbeat: Duration,
    /// Send each tick as one single-frame message (`topic 0x00 body`), for conflating
    /// subscribers (`ZMQ_CONFLATE` refuses multipart). Default false.
    pub single_frame: bool,
    /// Subscribers to wait for before publishing. Default 0. Counted by their hello
    /// subscriptions, or, in a single-frame (conflated) feed, by their group subscriptions.
    pub wait_subscribers: usize,
    /// How long to wait for them. Default 10 s.
    pub wait_timeout: Duration,
    /// How often the end-of-stream markers are repeated. Default 10 ms.
    pub eos_repeat: Duration,
    /// How long they are repeated (less if every awaited subscriber acknowledges). Default 1 s.
    pub eos_linger: Duration,
    /// The publisher's CURVE server role, for its feed and snapshot sockets (the system
    /// libzmq build only). Default none.
    pub curve: Option<Curve>,
    /// With CURVE: the clients [`run_publisher`] lets in (a ZAP handler on its engine).
    /// Default none: any client that knows the server's public key.
    pub zap: Option<ZapPolicy>,
}

impl Default for FeedConfig {
    fn default() -> Self {
        FeedConfig {
            topics: (0..8).map(|i| format!("t{i}")).collect(),
            rate_per_s: 100_000,
            duration: Duration::from_secs(5),
            max_ticks: None,
            payload_size: 64,
            groups: 1,
            max_batch: 64,
            max_delay: Duration::from_micros(20),
            heartbeat: Duration::from_millis(100),
            single_frame: false,
            wait_subscribers: 0,
            wait_timeout: Duration::from_secs(10),
            eos_repeat: Duration::from_millis(10),
            eos_linger: Duration::from_secs(1),
            curve: None,
            zap: None,
        }
    }
}

impl FeedConfig {
    /// Checks every field; the error names the field, the value and what is accepted.
    pub fn validate(&self) -> Result<()> {
        check_stream(&self.topics, self.max_batch, self.groups, self.heartbeat)?;
        if self.payload_size > usize::from(u16::MAX) {
            return Err(Error::config("size", self.payload_size, "at most 65535 bytes"));
        }
        Ok(())
    }
}

/// The checks every publisher's stream settings share (the synthetic feed's and the
/// application's): topics the wire format can carry, batch size, groups, heartbeat.
fn check_stream(topics: &[String], max_batch: usize, groups: usize, heartbeat: Duration) -> Result<()> {
    if topics.is_empty() || topics.len() > usize::from(u16::MAX) {
        return Err(Error::config("topics", topics.len(), "1 to 65535 topics"));
    }
    for t in topics {
        if t.is_empty() || t.len() > 255 || t.contains('\0') {
            return Err(Error::config("topic", t, "1 to 255 bytes without a NUL"));
        }
    }
    if max_batch == 0 || max_batch > usize::from(u16::MAX) {
        return Err(Error::config("max_batch", max_batch, "1 to 65535 ticks"));
    }
    if groups == 0 || groups > topics.len() {
        return Err(Error::config("groups", groups, format!("1 to the number of topics ({})", topics.len())));
    }
    if heartbeat.is_zero() {
        return Err(Error::config("heartbeat", "0", "a positive interval"));
    }
    Ok(())
}

/// One in-process fan-out run: a publisher and `subscribers` subscribers on their own workers.
#[derive(Debug, Clone)]
pub struct FanoutConfig {
    /// The feed.
    pub feed: FeedConfig,
    /// Transport between publisher and subscribers. Default ipc.
    pub transport: Transport,
    /// Number of subscribers. Default 2.
    pub subscribers: usize,
    /// Topics each subscriber subscribes to (default: all).
    pub subscriber_topics: Option<Vec<String>>,
    /// Send/receive HWM on both sides, in messages (default: libzmq's 1000).
    pub hwm: Option<u32>,
    /// The publisher's idle strategy.
    pub publisher_idle: IdleStrategy,
    /// The subscribers' idle strategy.
    pub subscriber_idle: IdleStrategy,
    /// Cores: the publisher's first, then one per subscriber (missing ones: unpinned).
    pub pins: Vec<CoreId>,
    /// Subscribers keep only the latest message (`ZMQ_CONFLATE`; implies single frames).
    pub conflate: bool,
    /// Busy work per tick in each subscriber, to play a slow consumer.
    pub consumer_work: Duration,
    /// Subscribers join through the snapshot service.
    pub snapshot: bool,
    /// Let spinning workers exceed the core budget.
    pub force: bool,
    /// Cores for libzmq's I/O thread; empty: unpinned.
    pub io_cores: Vec<CoreId>,
    /// The subscribers' CURVE client role (the publisher's is `feed.curve`).
    pub subscriber_curve: Option<Curve>,
}

impl Default for FanoutConfig {
    fn default() -> Self {
        FanoutConfig {
            feed: FeedConfig::default(),
            transport: Transport::Ipc,
            subscribers: 2,
            subscriber_topics: None,
            hwm: None,
            publisher_idle: IdleStrategy::BLOCK,
            subscriber_idle: IdleStrategy::BLOCK,
            pins: Vec::new(),
            conflate: false,
            consumer_work: Duration::ZERO,
            snapshot: false,
            force: false,
            subscriber_curve: None,
            io_cores: Vec::new(),
        }
    }
}

/// Live figures for progress displays, read while a run goes on.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// Time since publishing started.
    pub elapsed: Duration,
    /// Ticks published.
    pub published: u64,
    /// Per subscriber: (received, missing, p99 of the last second in ns).
    pub subscribers: Vec<(u64, u64, u64)>,
}

/// A running publisher: its worker and the channels its handler reports through.
///
/// From [`PublisherRun::start`]; [`run`], [`run_publisher`] and the tests drive it.
pub struct PublisherRun {
    worker: Worker,
    endpoint: Endpoint,
    snapshot_endpoint: Endpoint,
    live: Arc<PublisherLive>,
    started: crossbeam_channel::Receiver<()>,
    finished: crossbeam_channel::Receiver<()>,
    report: crossbeam_channel::Receiver<PublisherReport>,
}

/// The name of group `g`: the ZeroMQ topic frame its messages carry. The trailing dot
/// keeps names prefix-free (SUB filters match prefixes: `g1` would also match `g10`).
pub fn group_name(g: usize) -> String {
    format!("g{g}.")
}

/// The groups `topics` fall in, for a feed of `all` topics in `groups` groups.
pub fn groups_of(topics: &[String], all: &[String], groups: usize) -> Vec<String> {
    let groups = groups.clamp(1, all.len().max(1));
    let mut gs: Vec<usize> =
        topics.iter().filter_map(|t| all.iter().position(|a| a == t)).map(|i| i % groups).collect();
    gs.sort_unstable();
    gs.dedup();
    gs.into_iter().map(group_name).collect()
}

fn hwm_options(hwm: Option<u32>) -> SocketOptions {
    let o = SocketOptions::default();
    match hwm {
        Some(h) => o.hwm_msgs(h),
        None => o,
    }
}

impl std::fmt::Debug for PublisherRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublisherRun").field("endpoint", &self.endpoint).finish()
    }
}

impl PublisherRun {
    /// Starts a publisher on its own worker of `engine`: an XPUB bound at `bind` and the
    /// snapshot/acknowledgement ROUTER at `snapshot_bind`. It publishes once
    /// `feed.wait_subscribers` subscribers are connected.
    pub fn start(
        engine: &Engine,
        bind: Endpoint,
        snapshot_bind: Endpoint,
        feed: FeedConfig,
        hwm: Option<u32>,
        idle: IdleStrategy,
        pin: Option<CoreId>,
    ) -> Result<PublisherRun> {
        start_publisher(engine, bind, snapshot_bind, feed, hwm, idle, pin)
    }

    /// The endpoint subscribers connect to (with the port chosen, for `tcp://…:*`).
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The snapshot/acknowledgement endpoint.
    pub fn snapshot_endpoint(&self) -> &Endpoint {
        &self.snapshot_endpoint
    }

    /// Ticks published so far.
    pub fn published(&self) -> u64 {
        self.live.published.load(Ordering::Relaxed)
    }

    /// Waits until publishing has begun (the awaited subscribers are connected).
    pub fn wait_started(&self, timeout: Duration) -> bool {
        self.started.recv_timeout(timeout).is_ok()
    }

    /// Waits until the last tick and the first end markers are sent.
    pub fn wait_finished(&self, timeout: Duration) -> bool {
        self.finished.recv_timeout(timeout).is_ok()
    }

    /// Waits for the publisher to end by itself (end markers repeated, or acknowledged),
    /// at most `timeout`, stops it, and returns its report.
    pub fn finish(self, timeout: Duration) -> Result<PublisherReport> {
        let early = self.report.recv_timeout(timeout).ok();
        let stopped = self.worker.stop();
        let report = early.or_else(|| self.report.try_recv().ok());
        stopped?;
        cleanup_ipc(&[&self.endpoint, &self.snapshot_endpoint]);
        report.ok_or_else(|| Error::Stopped("the publisher ended without its report".into()))
    }
}

fn start_publisher(
    engine: &Engine,
    bind: Endpoint,
    snapshot_bind: Endpoint,
    feed: FeedConfig,
    hwm: Option<u32>,
    idle: IdleStrategy,
    pin: Option<CoreId>,
) -> Result<PublisherRun> {
    feed.validate()?;
    let (started_tx, started) = crossbeam_channel::bounded(1);
    let (finished_tx, finished) = crossbeam_channel::bounded(1);
    let (report_tx, report) = crossbeam_channel::bounded(1);
    let live = Arc::new(PublisherLive::default());
    let mut b = engine.worker("publisher").idle(idle).pin(pin).batch_max(256);
    // Conflating subscribers can hold one subscription only (libzmq's conflate pipe keeps
    // the last message, subscriptions included), so they send no hello: a single-frame feed
    // counts each group subscription instead, which needs every one passed on (verbose).
    let verbose = feed.single_frame;
    let mut xpub_opts = hwm_options(hwm);
    xpub_opts.curve.clone_from(&feed.curve);
    let xpub = b.socket(SocketSpec::bind(SocketKind::XPub, bind).options(xpub_opts).xpub_verbose(verbose));
    let mut router_opts = SocketOptions::default();
    router_opts.curve.clone_from(&feed.curve);
    let router = b.socket(SocketSpec::bind(SocketKind::Router, snapshot_bind).options(router_opts));
    let handler = publisher::Publisher::new(
        feed,
        xpub,
        Some(router),
        Arc::clone(&live),
        started_tx,
        finished_tx,
        report_tx,
    );
    let worker = b.handler(handler).spawn()?;
    let endpoint = worker.endpoint(xpub).unwrap_or_default().parse()?;
    let snapshot_endpoint = worker.endpoint(router).unwrap_or_default().parse()?;
    Ok(PublisherRun { worker, endpoint, snapshot_endpoint, live, started, finished, report })
}

/// Settings of one subscriber.
#[derive(Debug, Clone)]
pub struct SubscriberConfig {
    /// A name for reports and logs.
    pub name: String,
    /// The publisher's endpoint.
    pub connect: Endpoint,
    /// The publisher's snapshot/acknowledgement endpoint, if any.
    pub snapshot_endpoint: Option<Endpoint>,
    /// Join through a snapshot (needs `snapshot_endpoint`).
    pub snapshot: bool,
    /// Topics to follow.
    pub topics: Vec<String>,
    /// Groups to subscribe to (see [`FeedConfig::groups`]); must cover `topics`.
    pub groups: Vec<String>,
    /// Receive HWM.
    pub hwm: Option<u32>,
    /// Keep only the latest message.
    pub conflate: bool,
    /// Busy work per tick.
    pub consumer_work: Duration,
    /// Idle strategy.
    pub idle: IdleStrategy,
    /// Core.
    pub pin: Option<CoreId>,
    /// CURVE client role, for the feed and snapshot sockets (the system libzmq build only).
    pub curve: Option<Curve>,
}

impl SubscriberConfig {
    /// A subscriber named `sub` of `connect` following `topics`, subscribed to every group
    /// (the empty prefix), without snapshot endpoint, with the defaults elsewhere: libzmq's
    /// HWM, no conflation, [`IdleStrategy::BLOCK`], not pinned.
    pub fn new(connect: Endpoint, topics: &[&str]) -> SubscriberConfig {
        SubscriberConfig {
            name: "sub".into(),
            connect,
            snapshot_endpoint: None,
            snapshot: false,
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
            groups: vec![String::new()],
            hwm: None,
            conflate: false,
            consumer_work: Duration::ZERO,
            idle: IdleStrategy::BLOCK,
            pin: None,
            curve: None,
        }
    }
}

/// A running subscriber, from [`SubscriberRun::start`].
pub struct SubscriberRun {
    worker: Worker,
    live: Arc<SubscriberLive>,
    report: crossbeam_channel::Receiver<SubscriberReport>,
}

impl std::fmt::Debug for SubscriberRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscriberRun").field("worker", &self.worker.name()).finish()
    }
}

impl SubscriberRun {
    /// Starts a subscriber on its own worker of `engine`.
    pub fn start(engine: &Engine, cfg: &SubscriberConfig) -> Result<SubscriberRun> {
        start_subscriber_with(engine, cfg, None)
    }

    /// Ticks received so far (updated every 1024 ticks and every second).
    pub fn received(&self) -> u64 {
        self.live.received.load(Ordering::Relaxed)
    }

    /// Waits up to `timeout` for the end of every topic, stops the subscriber, and returns
    /// what it saw (`complete` says whether every end marker arrived).
    pub fn finish(self, timeout: Duration) -> Result<SubscriberReport> {
        let early = self.report.recv_timeout(timeout).ok();
        let stopped = self.worker.stop();
        let report = early.or_else(|| self.report.try_recv().ok());
        stopped?;
        report.ok_or_else(|| Error::Stopped("the subscriber ended without its report".into()))
    }
}

fn start_subscriber_with(
    engine: &Engine,
    cfg: &SubscriberConfig,
    sink: Option<subscriber::Sink>,
) -> Result<SubscriberRun> {
    if cfg.topics.is_empty() {
        return Err(Error::config("subscriber topics", 0, "at least one topic"));
    }
    let hello = format!("{}-{}-{}", cfg.name, std::process::id(), crate::sys::now_ns()).into_bytes();
    let mut hello_sub = wire::HELLO_PREFIX.to_vec();
    hello_sub.extend_from_slice(&hello);
    let mut opts = hwm_options(cfg.hwm);
    if cfg.conflate {
        opts = opts.conflate(true);
    }
    opts.curve.clone_from(&cfg.curve);
    let mut spec = SocketSpec::connect(SocketKind::Sub, cfg.connect.clone()).options(opts);
    for g in &cfg.groups {
        spec = spec.subscribe(g.as_bytes());
    }
    if cfg.conflate {
        if cfg.snapshot || cfg.groups.len() != 1 {
            return Err(Error::config(
                "conflate",
                "on",
                "exactly one group and no snapshot join (a conflating socket keeps one subscription)",
            ));
        }
    } else {
        // Last: when the publisher sees this, the subscriptions before it are in too.
        spec = spec.subscribe(hello_sub);
    }
    let live = Arc::new(SubscriberLive::default());
    let (report_tx, report) = crossbeam_channel::bounded(1);
    let mut b = engine.worker(&cfg.name).idle(cfg.idle).pin(cfg.pin).batch_max(256);
    b.socket(spec);
    let dealer = match &cfg.snapshot_endpoint {
        // A conflating subscriber sends no hello, so the publisher could not tell its
        // acknowledgement from a stray one: it neither asks nor acknowledges.
        Some(_) if cfg.conflate => None,
        Some(ep) => {
            let mut o = SocketOptions::default();
            o.curve.clone_from(&cfg.curve);
            Some(b.socket(SocketSpec::connect(SocketKind::Dealer, ep.clone()).options(o)))
        }
        None if cfg.snapshot => {
            return Err(Error::config("snapshot", "on", "a snapshot endpoint to ask (--snapshot ENDPOINT)"))
        }
        None => None,
    };
    let handler = subscriber::Subscriber::new(
        cfg.name.clone(),
        dealer,
        hello,
        &cfg.topics,
        cfg.snapshot,
        cfg.conflate,
        cfg.consumer_work,
        Arc::clone(&live),
        report_tx,
    );
    let handler = match sink {
        Some(sink) => handler.with_sink(sink),
        None => handler,
    };
    let worker = b.handler(handler).spawn()?;
    Ok(SubscriberRun { worker, live, report })
}

/// Runs a publisher and its subscribers in this process and reports what each saw.
///
/// `progress` is called about once a second while the feed runs.
pub fn run(cfg: &FanoutConfig, mut progress: Option<&mut dyn FnMut(&Progress)>) -> Result<FanoutReport> {
    if cfg.subscribers == 0 {
        return Err(Error::config("subscribers", 0, "at least 1"));
    }
    let mut feed = cfg.feed.clone();
    feed.wait_subscribers = cfg.subscribers;
    feed.single_frame |= cfg.conflate;
    feed.validate()?;
    let eb = Engine::builder()
        .io_threads(if cfg.transport == Transport::Inproc { 0 } else { 1 })
        .force_core_budget(cfg.force)
        .io_cores(&cfg.io_cores);
    let engine = eb.build()?;
    let publisher = start_publisher(
        &engine,
        Endpoint::local(cfg.transport, "ztick-fanout"),
        Endpoint::local(cfg.transport, "ztick-fanout-snap"),
        feed.clone(),
        cfg.hwm,
        cfg.publisher_idle,
        cfg.pins.first().copied(),
    )?;
    let topics = cfg.subscriber_topics.clone().unwrap_or_else(|| feed.topics.clone());
    let mut subs = Vec::with_capacity(cfg.subscribers);
    for i in 0..cfg.subscribers {
        let sc = SubscriberConfig {
            name: format!("sub{i}"),
            connect: publisher.endpoint.clone(),
            snapshot_endpoint: Some(publisher.snapshot_endpoint.clone()),
            snapshot: cfg.snapshot,
            groups: groups_of(&topics, &feed.topics, feed.groups),
            topics: topics.clone(),
            hwm: cfg.hwm,
            conflate: cfg.conflate,
            consumer_work: cfg.consumer_work,
            idle: cfg.subscriber_idle,
            pin: cfg.pins.get(1 + i).copied(),
            curve: cfg.subscriber_curve.clone(),
        };
        subs.push(start_subscriber_with(&engine, &sc, None)?);
    }
    let outcome = drive(&publisher, &subs, &feed, &mut progress);
    // Subscribers end by themselves at the end markers; stragglers are stopped, and every
    // one reports from its worker's on_stop.
    let grace = Instant::now() + feed.eos_linger + Duration::from_secs(2);
    let mut reports = Vec::with_capacity(subs.len());
    for s in subs {
        reports.push(s.finish(grace.saturating_duration_since(Instant::now()))?);
    }
    // Every subscriber has acknowledged (or been stopped): the publisher need not linger.
    let pub_report = publisher.finish(Duration::ZERO);
    outcome?;
    let pub_report = pub_report?;
    for r in &mut reports {
        r.close_with(&pub_report.last_seq);
    }
    Ok(FanoutReport::new(cfg.transport, feed, pub_report, reports))
}

/// Waits for the publisher to start and finish, calling `progress` once a second.
fn drive(
    publisher: &PublisherRun,
    subs: &[SubscriberRun],
    feed: &FeedConfig,
    progress: &mut Option<&mut dyn FnMut(&Progress)>,
) -> Result<()> {
    let wait = feed.wait_timeout + Duration::from_secs(1);
    if publisher.started.recv_timeout(wait).is_err() {
        return Err(Error::Timeout {
            op: crate::error::Operation::Recv,
            endpoint: format!(
                "{} ({} of {} subscribers connected)",
                publisher.endpoint,
                publisher.live.subscribers.load(Ordering::Relaxed),
                feed.wait_subscribers
            ),
            ms: wait.as_millis() as u64,
        });
    }
    let t0 = Instant::now();
    // Publishing ends by the duration or tick count; bound the wait well past it.
    let limit = t0 + feed.duration.max(Duration::from_secs(1)) * 4 + Duration::from_secs(30);
    loop {
        match publisher.finished.recv_timeout(Duration::from_secs(1)) {
            Ok(()) => return Ok(()),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                return Err(Error::Stopped("the publisher ended before finishing".into()))
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
        }
        if Instant::now() > limit {
            return Err(Error::Stopped(format!("the publisher did not finish within {:?}", limit - t0)));
        }
        if let Some(p) = progress.as_mut() {
            p(&Progress {
                elapsed: t0.elapsed(),
                published: publisher.live.published.load(Ordering::Relaxed),
                subscribers: subs
                    .iter()
                    .map(|s| {
                        (
                            s.live.received.load(Ordering::Relaxed),
                            s.live.missing.load(Ordering::Relaxed),
                            s.live.p99_ns.load(Ordering::Relaxed),
                        )
                    })
                    .collect(),
            });
        }
    }
}

fn cleanup_ipc(eps: &[&Endpoint]) {
    for ep in eps {
        if let Some(p) = ep.ipc_path() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// `ztick fanout --role pub`: publishes `feed` on `bind` (snapshots and acknowledgements on
/// `snapshot_bind`) once `feed.wait_subscribers` subscribers are connected.
pub fn run_publisher(
    bind: Endpoint,
    snapshot_bind: Endpoint,
    feed: FeedConfig,
    hwm: Option<u32>,
    idle: IdleStrategy,
    pin: Option<CoreId>,
) -> Result<PublisherReport> {
    let engine = Engine::new()?;
    // Before the sockets: libzmq asks the handler about every CURVE client from the start.
    let zap = feed.zap.clone().map(|policy| ZapHandler::spawn(&engine, policy)).transpose()?;
    let p = PublisherRun::start(&engine, bind, snapshot_bind, feed.clone(), hwm, idle, pin)?;
    let outcome = drive(&p, &[], &feed, &mut None);
    // After the end markers the worker stops by itself (all acknowledged, or the linger).
    let report = p.finish(feed.eos_linger + Duration::from_secs(2));
    if let Some(z) = zap {
        let s = z.stop()?;
        tracing::info!(allowed = s.allowed, refused = s.denied, "ZAP decisions of the publisher");
    }
    outcome?;
    report
}

/// `ztick fanout --role sub`: receives until every topic's end marker, or `timeout`.
pub fn run_subscriber(cfg: &SubscriberConfig, timeout: Duration) -> Result<SubscriberReport> {
    let engine = Engine::new()?;
    SubscriberRun::start(&engine, cfg)?.finish(timeout)
}
