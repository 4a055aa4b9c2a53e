//! The embedded run of `ztick fanout`: the synthetic feed and its subscribers in this
//! process, each on its own worker of one engine, with live progress.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ztick::fanout::{
    groups_of, Event, InlineTickPublisher, PublisherConfig, PublisherReport, SubscriberConfig,
    SubscriberReport, SubscriberSpec, TickPublisher, TickSubscriber,
};
use ztick::{now_ns, CoreId, Endpoint, Engine, EngineBuilder, Error, Operation, SchedPolicy, Transport};

use super::feed::{self, FeedSpec, FeedStats, SyntheticFeed};
use super::idle::IdleGaps;
use super::report::{FanoutReport, FeedShape};
use crate::signals::Signals;
use crate::FeedPath;

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
    /// Every subscriber's settings; each is named `sub<i>`, follows `subscriber_topics`
    /// (default: all) and pins to its core of `pins`. Conflation makes the feed send
    /// single frames.
    pub(crate) subscriber: SubscriberConfig,
    /// Topics each subscriber follows (default: all).
    pub(crate) subscriber_topics: Option<Vec<String>>,
    /// Cores: the publisher's first, then one per subscriber (missing ones: unpinned).
    pub(crate) pins: Vec<CoreId>,
    /// Busy work per tick in each subscriber, to play a slow consumer.
    pub(crate) consumer_work: Duration,
    /// Let spinning workers exceed the core budget.
    pub(crate) force: bool,
    /// Cores for libzmq's I/O thread; empty: unpinned.
    pub(crate) io_cores: Vec<CoreId>,
    /// How long to wait for the subscribers to connect.
    pub(crate) wait_timeout: Duration,
    /// The idle feed's gaps (ns), by which each subscriber groups its latency; empty for a
    /// paced or unpaced feed. The feed's own schedule is `feed.schedule`.
    pub(crate) idle_gaps_ns: Vec<u64>,
    /// Where the feed runs: on the publisher's worker, on the calling thread handing each
    /// tick to that worker, or on the calling thread owning the publisher's sockets.
    pub(crate) feed_path: FeedPath,
    /// libzmq's I/O threads' policy (`None`: the OS's default).
    pub(crate) io_sched: Option<SchedPolicy>,
    /// Every subscriber on one worker thread (`TickSubscriber::start_shared`) instead of
    /// one each.
    pub(crate) share_worker: bool,
}

impl Default for EmbeddedRun {
    fn default() -> Self {
        EmbeddedRun {
            feed: FeedSpec {
                rate_per_s: 100_000,
                schedule: None,
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
            subscriber: SubscriberConfig::default(),
            subscriber_topics: None,
            pins: Vec::new(),
            consumer_work: Duration::ZERO,
            force: false,
            io_cores: Vec::new(),
            wait_timeout: Duration::from_secs(10),
            idle_gaps_ns: Vec::new(),
            feed_path: FeedPath::Source,
            io_sched: None,
            share_worker: false,
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
/// A signal ends the stream where it is; the report is still whole.
pub(crate) fn run(
    cfg: &EmbeddedRun,
    mut progress: Option<&mut dyn FnMut(&Progress)>,
    signals: &Signals,
) -> Result<FanoutReport, Error> {
    if cfg.subscribers == 0 {
        return Err(Error::config("subscribers", 0, "at least 1"));
    }
    let mut spec = cfg.feed.clone();
    spec.wait_subscribers = cfg.subscribers;
    let mut pcfg = cfg.publisher.clone();
    pcfg.single_frame |= cfg.subscriber.conflate;
    pcfg.pin = cfg.pins.first().copied();
    pcfg.validate()?;
    let engine = build_engine(
        Engine::builder()
            .io_threads(if cfg.transport == Transport::Inproc { 0 } else { 1 })
            .force_core_budget(cfg.force)
            .io_cores(&cfg.io_cores),
        cfg.io_sched,
    )?;
    let stats = Arc::new(FeedStats::default());
    let synthetic = SyntheticFeed::new(spec, Arc::clone(&stats));
    let (bind, side) = (
        Endpoint::local(cfg.transport, "ztick-fanout"),
        Some(Endpoint::local(cfg.transport, "ztick-fanout-snap")),
    );
    let publisher = match cfg.feed_path {
        FeedPath::Source => {
            Publisher::Worker(TickPublisher::start_with_source(&engine, bind, side, pcfg.clone(), synthetic)?)
        }
        FeedPath::Handoff => {
            Publisher::HandOff(TickPublisher::start(&engine, bind, side, pcfg.clone())?, synthetic)
        }
        FeedPath::Caller => Publisher::Inline(
            Box::new(InlineTickPublisher::bind(&engine, bind, side, pcfg.clone())?),
            synthetic,
        ),
    };
    let topics = cfg.subscriber_topics.clone().unwrap_or_else(|| pcfg.topics.clone());
    let mut specs = Vec::with_capacity(cfg.subscribers);
    let mut idle = Vec::with_capacity(cfg.subscribers);
    for i in 0..cfg.subscribers {
        let name = format!("sub{i}");
        // Each subscriber's windows under its own name (the interval log's tag).
        let intervals = cfg.subscriber.intervals.clone().map(|tx| {
            let attrs = tx.attributes().clone();
            tx.labelled(&name, attrs)
        });
        let sc = SubscriberConfig {
            name,
            intervals,
            groups: groups_of(&topics, &pcfg.topics, pcfg.groups),
            topics: topics.clone(),
            pin: cfg.pins.get(1 + i).copied(),
            ..cfg.subscriber.clone()
        };
        let (connect, side) = publisher.endpoints();
        let gaps = (!cfg.idle_gaps_ns.is_empty()).then(|| IdleGaps::shared(&cfg.idle_gaps_ns));
        let spec = SubscriberSpec::new(connect, side, sc);
        specs.push(match (cfg.consumer_work.as_nanos() as u64, gaps.clone()) {
            (0, None) => spec,
            (ns, gaps) => spec.callback(move |ev| {
                if let Event::Tick(t) = ev {
                    if let Some(g) = &gaps {
                        IdleGaps::record(g, t);
                    }
                    if ns > 0 {
                        busy_work(ns);
                    }
                }
            }),
        });
        idle.extend(gaps);
    }
    let subs = match cfg.share_worker {
        true => TickSubscriber::start_shared(&engine, "subs", specs)?,
        false => {
            specs.into_iter().map(|s| TickSubscriber::start_with(&engine, s)).collect::<Result<_, _>>()?
        }
    };
    let grace = pcfg.eos_linger + Duration::from_secs(2);
    let stop = || signals.caught().is_some();
    let (outcome, pub_report, reports) = match publisher {
        Publisher::Worker(p) => {
            let outcome = drive(&p, &subs, cfg, &mut progress, signals);
            finish_worker(p, subs, outcome, signals, grace)?
        }
        // The feed on this thread: it waits for the subscribers itself, then paces.
        Publisher::HandOff(p, f) => {
            let outcome = wait_connected(&p, cfg).and_then(|()| feed::run_handed_off(f, &p, stop));
            finish_worker(p, subs, outcome, signals, grace)?
        }
        Publisher::Inline(mut p, f) => {
            let waited = p.wait_subscribers(cfg.subscribers, cfg.wait_timeout + Duration::from_secs(1));
            let outcome = match waited {
                Ok(true) => feed::run_inline(f, &mut p, stop),
                Ok(false) => Err(not_connected(p.endpoint(), p.subscribers(), cfg)),
                Err(e) => Err(e),
            };
            // Nobody else serves the stream: it is served until every subscriber has
            // acknowledged its end (or the linger has passed), then the subscribers report.
            let pub_report = p.finish(grace);
            let deadline = Instant::now() + Duration::from_secs(2);
            let mut reports = Vec::with_capacity(subs.len());
            for s in subs {
                reports.push(s.finish(deadline.saturating_duration_since(Instant::now()))?);
            }
            (outcome, pub_report, reports)
        }
    };
    outcome?;
    let pub_report = pub_report?;
    let mut reports = reports;
    for r in &mut reports {
        close_with(r, pub_report.epoch, &pub_report.last_seq);
    }
    Ok(FanoutReport {
        transport: cfg.transport,
        feed: FeedShape {
            topics: pcfg.topics.len(),
            payload_bytes: cfg.feed.payload_bytes,
            rate_per_s: cfg.feed.rate_per_s,
        },
        publisher: pub_report,
        authoritative: true,
        stalls: stats.stalls.load(Ordering::Relaxed),
        max_lag_ns: stats.max_lag_ns.load(Ordering::Relaxed),
        subscribers: reports,
        idle: idle.iter().map(IdleGaps::snapshot).collect(),
    })
}

/// The run's publisher, by where its feed runs.
enum Publisher {
    /// The feed is a source on the publisher's worker.
    Worker(TickPublisher),
    /// The feed runs on this thread and hands every tick to the worker.
    HandOff(TickPublisher, SyntheticFeed),
    /// The feed runs on this thread, which owns the publisher's sockets.
    Inline(Box<InlineTickPublisher>, SyntheticFeed),
}

/// How a run ended: the feed's outcome, the publisher's report, the subscribers'.
type Ended = (Result<(), Error>, Result<PublisherReport, Error>, Vec<SubscriberReport>);

impl Publisher {
    /// Where subscribers connect: the feed, and the side channel.
    fn endpoints(&self) -> (Endpoint, Option<Endpoint>) {
        match self {
            Publisher::Worker(p) | Publisher::HandOff(p, _) => {
                (p.endpoint().clone(), p.side_endpoint().cloned())
            }
            Publisher::Inline(p, _) => (p.endpoint().clone(), p.side_endpoint().cloned()),
        }
    }
}

/// Ends a run whose publisher has its own worker: a signal ends the stream where it is; the
/// subscribers end by themselves at the end markers (stragglers are stopped within `grace`),
/// then the publisher, which need not linger for acknowledgements any more.
fn finish_worker(
    publisher: TickPublisher,
    subs: Vec<TickSubscriber>,
    outcome: Result<(), Error>,
    signals: &Signals,
    grace: Duration,
) -> Result<Ended, Error> {
    if signals.caught().is_some() {
        // The subscribers get their end markers and report.
        let _ = publisher.end_stream();
    }
    let deadline = Instant::now() + grace;
    let mut reports = Vec::with_capacity(subs.len());
    for s in subs {
        reports.push(s.finish(deadline.saturating_duration_since(Instant::now()))?);
    }
    Ok((outcome, publisher.finish(Duration::ZERO), reports))
}

/// Builds the engine with its I/O threads under `io_sched` when the OS allows it, else
/// (with a warning) under the OS's default policy.
pub(crate) fn build_engine(b: EngineBuilder, io_sched: Option<SchedPolicy>) -> Result<Engine, Error> {
    let Some(policy) = io_sched else { return b.build() };
    match b.clone().io_sched(policy).build() {
        Ok(engine) => Ok(engine),
        Err(e @ Error::Io { .. }) => {
            eprintln!("ztick: warning: {e}; libzmq's I/O threads stay time-shared");
            b.build()
        }
        Err(e) => Err(e),
    }
}

/// Closes a subscriber's accounting with the publisher's final sequences, for topics whose
/// end marker never arrived (in one process, the publisher's report is the authority).
fn close_with(r: &mut SubscriberReport, epoch: u64, last_seq: &[(String, u64)]) {
    let Some(e) = r.epochs.iter_mut().find(|e| e.epoch == epoch) else { return };
    for (name, t) in &mut e.topics {
        if t.ended_at().is_none() {
            if let Some((_, last)) = last_seq.iter().find(|(n, _)| n == name) {
                t.on_end(*last);
                // Nobody repairs a stream that is over.
                t.give_up_all();
            }
        }
    }
}

/// Waits for every subscriber to connect, or says how many did.
fn wait_connected(publisher: &TickPublisher, cfg: &EmbeddedRun) -> Result<(), Error> {
    if publisher.wait_subscribers(cfg.subscribers, cfg.wait_timeout + Duration::from_secs(1)) {
        return Ok(());
    }
    Err(not_connected(publisher.endpoint(), publisher.subscribers(), cfg))
}

/// The error of a run whose subscribers did not all connect in time.
fn not_connected(endpoint: &Endpoint, connected: usize, cfg: &EmbeddedRun) -> Error {
    let wait = cfg.wait_timeout + Duration::from_secs(1);
    Error::Timeout {
        op: Operation::Recv,
        endpoint: format!("{endpoint} ({connected} of {} subscribers connected)", cfg.subscribers),
        ms: wait.as_millis() as u64,
    }
}

/// Waits for the feed to start and end, calling `progress` once a second.
pub(crate) fn drive(
    publisher: &TickPublisher,
    subs: &[TickSubscriber],
    cfg: &EmbeddedRun,
    progress: &mut Option<&mut dyn FnMut(&Progress)>,
    signals: &Signals,
) -> Result<(), Error> {
    wait_connected(publisher, cfg)?;
    let t0 = Instant::now();
    // Publishing ends by the duration or tick count; bound the wait well past it.
    let limit = t0 + cfg.feed.duration.max(Duration::from_secs(1)) * 4 + Duration::from_secs(30);
    let mut next_progress = t0 + Duration::from_secs(1);
    loop {
        if publisher.wait_ended(Duration::from_millis(200)) || signals.caught().is_some() {
            return Ok(());
        }
        if Instant::now() > limit {
            return Err(Error::Stopped(format!("the publisher did not finish within {:?}", limit - t0)));
        }
        if Instant::now() < next_progress {
            continue;
        }
        next_progress += Duration::from_secs(1);
        if let Some(p) = progress.as_mut() {
            p(&Progress {
                elapsed: t0.elapsed(),
                published: publisher.published(),
                subscribers: subs.iter().map(|s| (s.received(), s.missing(), s.recent_p99_ns())).collect(),
            });
        }
    }
}
