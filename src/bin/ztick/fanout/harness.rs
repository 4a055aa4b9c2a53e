//! The embedded run of `ztick fanout`: the synthetic feed and its subscribers in this
//! process, each on its own worker of one engine, with live progress.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ztick::curve::Curve;
use ztick::fanout::{
    groups_of, Event, PublisherConfig, SubscriberConfig, SubscriberReport, TickPublisher, TickSubscriber,
};
use ztick::{now_ns, CoreId, Endpoint, Engine, Error, IdleStrategy, Operation, Transport};

use super::feed::{FeedSpec, FeedStats, SyntheticFeed};
use super::report::{FanoutReport, FeedShape};

/// One in-process fan-out run: the feed and `subscribers` subscribers on their own workers.
#[derive(Debug, Clone)]
pub(crate) struct EmbeddedRun {
    /// What the feed publishes (its `wait_subscribers` is set to `subscribers`).
    pub(crate) feed: FeedSpec,
    /// The publisher's stream settings.
    pub(crate) publisher: PublisherConfig,
    /// Transport between publisher and subscribers.
    pub(crate) transport: Transport,
    /// Number of subscribers.
    pub(crate) subscribers: usize,
    /// Topics each subscriber follows (default: all).
    pub(crate) subscriber_topics: Option<Vec<String>>,
    /// The subscribers' receive HWM, in messages.
    pub(crate) subscriber_hwm_msgs: Option<u32>,
    /// The subscribers' idle strategy.
    pub(crate) subscriber_idle: IdleStrategy,
    /// Cores: the publisher's first, then one per subscriber (missing ones: unpinned).
    pub(crate) pins: Vec<CoreId>,
    /// Subscribers keep only the latest message (`ZMQ_CONFLATE`; implies single frames).
    pub(crate) conflate: bool,
    /// Busy work per tick in each subscriber, to play a slow consumer.
    pub(crate) consumer_work: Duration,
    /// Subscribers join through the snapshot service.
    pub(crate) snapshot_join: bool,
    /// Let spinning workers exceed the core budget.
    pub(crate) force: bool,
    /// Cores for libzmq's I/O thread; empty: unpinned.
    pub(crate) io_cores: Vec<CoreId>,
    /// The subscribers' CURVE client role (the publisher's is `publisher.curve`).
    pub(crate) subscriber_curve: Option<Curve>,
    /// How long to wait for the subscribers to connect.
    pub(crate) wait_timeout: Duration,
}

impl Default for EmbeddedRun {
    fn default() -> Self {
        EmbeddedRun {
            feed: FeedSpec {
                rate_per_s: 100_000,
                duration: Duration::from_secs(5),
                max_ticks: None,
                payload_bytes: 64,
                max_batch: 64,
                max_delay: Duration::from_micros(20),
                wait_subscribers: 0,
            },
            publisher: PublisherConfig::default(),
            transport: Transport::Ipc,
            subscribers: 2,
            subscriber_topics: None,
            subscriber_hwm_msgs: None,
            subscriber_idle: IdleStrategy::BLOCK,
            pins: Vec::new(),
            conflate: false,
            consumer_work: Duration::ZERO,
            snapshot_join: false,
            force: false,
            io_cores: Vec::new(),
            subscriber_curve: None,
            wait_timeout: Duration::from_secs(10),
        }
    }
}

/// Live figures for the progress line, read while a run goes on.
#[derive(Debug, Clone, Default)]
pub(crate) struct Progress {
    /// Time since publishing started.
    pub(crate) elapsed: Duration,
    /// Ticks published.
    pub(crate) published: u64,
    /// Per subscriber: (received, missing, p99 of the last second in ns).
    pub(crate) subscribers: Vec<(u64, u64, u64)>,
}

/// Spins for `ns` on the subscriber's worker: a slow consumer.
fn busy_work(ns: u64) {
    let until = now_ns() + ns;
    while now_ns() < until {
        std::hint::spin_loop();
    }
}

/// Runs the feed and its subscribers in this process and reports what each saw;
/// `progress` is called about once a second while the feed runs.
pub(crate) fn run(
    cfg: &EmbeddedRun,
    mut progress: Option<&mut dyn FnMut(&Progress)>,
) -> Result<FanoutReport, Error> {
    if cfg.subscribers == 0 {
        return Err(Error::config("subscribers", 0, "at least 1"));
    }
    let mut spec = cfg.feed.clone();
    spec.wait_subscribers = cfg.subscribers;
    let mut pcfg = cfg.publisher.clone();
    pcfg.single_frame |= cfg.conflate;
    pcfg.pin = cfg.pins.first().copied();
    pcfg.validate()?;
    let engine = Engine::builder()
        .io_threads(if cfg.transport == Transport::Inproc { 0 } else { 1 })
        .force_core_budget(cfg.force)
        .io_cores(&cfg.io_cores)
        .build()?;
    let stats = Arc::new(FeedStats::default());
    let publisher = TickPublisher::start_with_source(
        &engine,
        Endpoint::local(cfg.transport, "ztick-fanout"),
        Some(Endpoint::local(cfg.transport, "ztick-fanout-snap")),
        pcfg.clone(),
        SyntheticFeed::new(spec, Arc::clone(&stats)),
    )?;
    let topics = cfg.subscriber_topics.clone().unwrap_or_else(|| pcfg.topics.clone());
    let mut subs = Vec::with_capacity(cfg.subscribers);
    for i in 0..cfg.subscribers {
        let sc = SubscriberConfig {
            name: format!("sub{i}"),
            groups: groups_of(&topics, &pcfg.topics, pcfg.groups),
            topics: topics.clone(),
            snapshot_join: cfg.snapshot_join,
            hwm_msgs: cfg.subscriber_hwm_msgs,
            conflate: cfg.conflate,
            keep_last_values: cfg.conflate,
            idle: cfg.subscriber_idle,
            pin: cfg.pins.get(1 + i).copied(),
            curve: cfg.subscriber_curve.clone(),
        };
        let connect = publisher.endpoint().clone();
        let side = publisher.side_endpoint().cloned();
        subs.push(match cfg.consumer_work.as_nanos() as u64 {
            0 => TickSubscriber::start(&engine, connect, side, sc)?,
            ns => TickSubscriber::with_callback(&engine, connect, side, sc, move |ev| {
                if let Event::Tick(_) = ev {
                    busy_work(ns);
                }
            })?,
        });
    }
    let outcome = drive(&publisher, &subs, cfg, &mut progress);
    // Subscribers end by themselves at the end markers; stragglers are stopped, and every
    // one reports as its worker stops.
    let grace = Instant::now() + pcfg.eos_linger + Duration::from_secs(2);
    let mut reports = Vec::with_capacity(subs.len());
    for s in subs {
        reports.push(s.finish(grace.saturating_duration_since(Instant::now()))?);
    }
    // Every subscriber has acknowledged (or been stopped): the publisher need not linger.
    let pub_report = publisher.finish(Duration::ZERO);
    outcome?;
    let pub_report = pub_report?;
    for r in &mut reports {
        close_with(r, &pub_report.last_seq);
    }
    Ok(FanoutReport {
        transport: cfg.transport,
        feed: FeedShape {
            topics: pcfg.topics.len(),
            payload_bytes: cfg.feed.payload_bytes,
            rate_per_s: cfg.feed.rate_per_s,
        },
        publisher: pub_report,
        stalls: stats.stalls.load(Ordering::Relaxed),
        max_lag_ns: stats.max_lag_ns.load(Ordering::Relaxed),
        subscribers: reports,
    })
}

/// Closes a subscriber's accounting with the publisher's final sequences, for topics whose
/// end marker never arrived (in one process, the publisher's report is the authority).
fn close_with(r: &mut SubscriberReport, last_seq: &[(String, u64)]) {
    for (name, t) in &mut r.topics {
        if t.ended_at().is_none() {
            if let Some((_, last)) = last_seq.iter().find(|(n, _)| n == name) {
                t.on_end(*last);
            }
        }
    }
}

/// Waits for the feed to start and end, calling `progress` once a second.
pub(crate) fn drive(
    publisher: &TickPublisher,
    subs: &[TickSubscriber],
    cfg: &EmbeddedRun,
    progress: &mut Option<&mut dyn FnMut(&Progress)>,
) -> Result<(), Error> {
    let wait = cfg.wait_timeout + Duration::from_secs(1);
    if !publisher.wait_subscribers(cfg.subscribers, wait) {
        return Err(Error::Timeout {
            op: Operation::Recv,
            endpoint: format!(
                "{} ({} of {} subscribers connected)",
                publisher.endpoint(),
                publisher.subscribers(),
                cfg.subscribers
            ),
            ms: wait.as_millis() as u64,
        });
    }
    let t0 = Instant::now();
    // Publishing ends by the duration or tick count; bound the wait well past it.
    let limit = t0 + cfg.feed.duration.max(Duration::from_secs(1)) * 4 + Duration::from_secs(30);
    loop {
        if publisher.wait_ended(Duration::from_secs(1)) {
            return Ok(());
        }
        if Instant::now() > limit {
            return Err(Error::Stopped(format!("the publisher did not finish within {:?}", limit - t0)));
        }
        if let Some(p) = progress.as_mut() {
            p(&Progress {
                elapsed: t0.elapsed(),
                published: publisher.published(),
                subscribers: subs.iter().map(|s| (s.received(), s.missing(), s.recent_p99_ns())).collect(),
            });
        }
    }
}
