//! The synthetic feed of `ztick fanout`: a paced (or as-fast-as-possible) round-robin
//! generator, run as a [`TickSource`] on the publisher's own worker, so a tick leaves with
//! no hand-off between threads. It counts how far behind its schedule it falls. The idle
//! feed (`--idle-gaps-us`) is the same generator on an explicit schedule of gaps.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ztick::fanout::{InlineTickPublisher, PublishError, SourceOut, SourcePoll, TickPublisher, TickSource};

/// How far behind its schedule the feed may fall before a pass counts as a stall.
pub(crate) const STALL_THRESHOLD: Duration = Duration::from_millis(1);
/// Most ticks generated in one pass, so a feed far behind still lets its worker serve its
/// sockets.
const MAX_TICKS_PER_PASS: u64 = 4096;
/// How often a feed waiting for its subscribers looks again (their subscriptions also wake
/// the worker).
const WAIT_POLL_NS: u64 = 1_000_000;
/// The longest sleep of a handed-off feed between looks at its stop condition.
const STOP_CHECK_NS: u64 = 100_000_000;

/// What the feed publishes.
#[derive(Debug, Clone)]
pub(crate) struct FeedSpec {
    /// Ticks per second over all topics (round-robin); 0 = as fast as possible.
    pub(crate) rate_per_s: u64,
    /// The idle feed instead: tick `i` is due `schedule[i]` ns after the start, and the
    /// feed ends after the last one (rate, duration and `max_ticks` are then unused).
    pub(crate) schedule: Option<Arc<[u64]>>,
    /// How long to publish.
    pub(crate) duration: Duration,
    /// Publish exactly this many ticks instead.
    pub(crate) max_ticks: Option<u64>,
    /// Payload bytes per tick.
    pub(crate) payload_bytes: usize,
    /// Most ticks per message: an unpaced feed generates this many per topic per pass.
    pub(crate) max_batch: usize,
    /// The coalescing window of a paced feed: it sleeps until a tick is due plus this
    /// long, then publishes everything due, so a tick leaves at most this late. Measured
    /// here at 100,000 ticks/s, 8 topics, 2 subscribers over ipc: 20 µs cut p99 from
    /// 1.2 ms to 0.3 ms for 20 µs more at p50, because the subscribers then wake for a
    /// third as many messages.
    pub(crate) max_delay: Duration,
    /// Subscribers to wait for before the first tick.
    pub(crate) wait_subscribers: usize,
}

/// The feed's own figures, read by the command while and after it runs.
#[derive(Debug, Default)]
pub(crate) struct FeedStats {
    /// Passes that found the feed more than [`STALL_THRESHOLD`] behind schedule.
    pub(crate) stalls: AtomicU64,
    /// The furthest behind schedule it fell, in nanoseconds.
    pub(crate) max_lag_ns: AtomicU64,
}

/// Where the feed's ticks go: the publisher's own worker ([`SourceOut`], no hand-off) or a
/// [`TickPublisher`] from the application's thread ([`HandOff`], one hand-off per tick).
pub(crate) trait FeedOut {
    /// Publishes tick `topic` meant to leave at `intended_ns`.
    fn publish(&mut self, topic: usize, intended_ns: u64, payload: &[u8]) -> ztick::Result<()>;
    /// Subscribers connected now.
    fn subscribers(&self) -> usize;
    /// Topics.
    fn topics(&self) -> usize;
}

impl FeedOut for SourceOut<'_> {
    fn publish(&mut self, topic: usize, intended_ns: u64, payload: &[u8]) -> ztick::Result<()> {
        SourceOut::publish(self, topic, intended_ns, payload)
    }
    fn subscribers(&self) -> usize {
        SourceOut::subscribers(self)
    }
    fn topics(&self) -> usize {
        SourceOut::topics(self)
    }
}

/// The feed on the application's thread, handing each tick to the publisher's worker.
pub(crate) struct HandOff<'a>(pub(crate) &'a TickPublisher);

impl FeedOut for HandOff<'_> {
    fn publish(&mut self, topic: usize, intended_ns: u64, payload: &[u8]) -> ztick::Result<()> {
        self.0.publish_at(topic, intended_ns, payload).map_err(|e| match e {
            PublishError::Stopped => ztick::Error::Stopped("the publisher's worker ended".into()),
            other => ztick::Error::config("tick", topic, other.to_string()),
        })
    }
    fn subscribers(&self) -> usize {
        self.0.subscribers()
    }
    fn topics(&self) -> usize {
        self.0.topics().len()
    }
}

/// The feed on the application's thread, which owns the publisher's sockets.
impl FeedOut for InlineTickPublisher {
    fn publish(&mut self, topic: usize, intended_ns: u64, payload: &[u8]) -> ztick::Result<()> {
        self.publish_at(topic, intended_ns, payload)
    }
    fn subscribers(&self) -> usize {
        InlineTickPublisher::subscribers(self)
    }
    fn topics(&self) -> usize {
        InlineTickPublisher::topics(self).len()
    }
}

/// The generator's state, owned by the publisher's worker.
pub(crate) struct SyntheticFeed {
    spec: FeedSpec,
    payload: Vec<u8>,
    started: bool,
    start_ns: u64,
    /// Ticks generated so far; tick `i` is intended to leave at `start + i / rate`.
    generated: u64,
    /// Ticks to publish in all (paced, or `max_ticks`); `None`: until the duration ends.
    total: Option<u64>,
    end_ns: u64,
    stats: Arc<FeedStats>,
}

impl SyntheticFeed {
    pub(crate) fn new(spec: FeedSpec, stats: Arc<FeedStats>) -> Self {
        SyntheticFeed {
            payload: vec![0xA5; spec.payload_bytes],
            spec,
            started: false,
            start_ns: 0,
            generated: 0,
            total: None,
            end_ns: 0,
            stats,
        }
    }

    fn start(&mut self, now: u64) {
        self.started = true;
        self.start_ns = now;
        let dur = u64::try_from(self.spec.duration.as_nanos()).unwrap_or(u64::MAX);
        self.end_ns = now.saturating_add(dur);
        self.total = match (self.spec.max_ticks, self.spec.rate_per_s) {
            _ if self.spec.schedule.is_some() => self.spec.schedule.as_ref().map(|s| s.len() as u64),
            (Some(n), _) => Some(n),
            (None, 0) => None,
            (None, r) => Some((u128::from(r) * u128::from(dur) / 1_000_000_000) as u64),
        };
    }

    /// Whether ticks have times to leave at (a rate or a schedule).
    fn paced(&self) -> bool {
        self.spec.rate_per_s > 0 || self.spec.schedule.is_some()
    }

    /// When tick `i` should leave under the schedule; 0 when unpaced.
    fn intended_ns(&self, i: u64) -> u64 {
        if let Some(s) = &self.spec.schedule {
            let at = usize::try_from(i).ok().and_then(|i| s.get(i)).or(s.last()).copied().unwrap_or(0);
            return self.start_ns.saturating_add(at);
        }
        match self.spec.rate_per_s {
            0 => 0,
            r => self.start_ns + (u128::from(i) * 1_000_000_000 / u128::from(r)) as u64,
        }
    }

    /// Ticks due by `now` under the pacing (counting from the first).
    fn due_by(&self, now: u64) -> u64 {
        let elapsed = now.saturating_sub(self.start_ns);
        match &self.spec.schedule {
            Some(s) => s.partition_point(|&at| at <= elapsed) as u64,
            None => (u128::from(elapsed) * u128::from(self.spec.rate_per_s) / 1_000_000_000) as u64 + 1,
        }
    }

    fn window_ns(&self) -> u64 {
        u64::try_from(self.spec.max_delay.as_nanos()).unwrap_or(u64::MAX)
    }

    /// Generates the ticks due by `now`.
    fn publish_due(&mut self, now: u64, out: &mut dyn FeedOut) -> ztick::Result<()> {
        let ntopics = out.topics() as u64;
        let due = match (self.paced(), self.total) {
            (false, total) => {
                let burst = self.generated + self.spec.max_batch as u64 * ntopics;
                total.map_or(burst, |t| t.min(burst))
            }
            // The oldest due tick has not yet waited out the coalescing window: let more
            // ticks fall due so they leave together.
            (_, _) if now < self.intended_ns(self.generated).saturating_add(self.window_ns()) => {
                return Ok(())
            }
            (true, total) => {
                let by_clock = self.due_by(now);
                total.map_or(by_clock, |t| t.min(by_clock))
            }
        };
        let due = due.min(self.generated + MAX_TICKS_PER_PASS);
        if self.paced() && due > self.generated {
            let lag = now.saturating_sub(self.intended_ns(self.generated));
            self.stats.max_lag_ns.fetch_max(lag, Ordering::Relaxed);
            if lag > STALL_THRESHOLD.as_nanos() as u64 {
                self.stats.stalls.fetch_add(1, Ordering::Relaxed);
            }
        }
        while self.generated < due {
            let i = self.generated;
            out.publish((i % ntopics) as usize, self.intended_ns(i), &self.payload)?;
            self.generated += 1;
        }
        Ok(())
    }
}

impl SyntheticFeed {
    /// Publishes what is due at `now` through `out` and says when to come back.
    pub(crate) fn step(&mut self, now: u64, out: &mut dyn FeedOut) -> ztick::Result<SourcePoll> {
        if !self.started {
            if out.subscribers() < self.spec.wait_subscribers {
                return Ok(SourcePoll::WakeAt(now + WAIT_POLL_NS));
            }
            self.start(now);
        }
        self.publish_due(now, out)?;
        let done = match self.total {
            Some(t) => self.generated >= t,
            None => now >= self.end_ns,
        };
        if done {
            return Ok(SourcePoll::Done);
        }
        // Everything due now leaves at the end of this pass. A paced feed sleeps until the
        // next tick is due plus the coalescing window: the ticks that fall due meanwhile
        // leave together, each at most `max_delay` late (which the latency from intended
        // send times shows). An unpaced one comes straight back.
        Ok(SourcePoll::WakeAt(match self.paced() {
            false => now,
            true => self.intended_ns(self.generated).saturating_add(self.window_ns()),
        }))
    }
}

impl TickSource for SyntheticFeed {
    fn poll(&mut self, now: u64, out: &mut SourceOut<'_>) -> ztick::Result<SourcePoll> {
        self.step(now, out)
    }
}

/// Runs `feed` on this thread, pacing with absolute sleeps and handing every tick to
/// `publisher`'s worker, until the feed is done or `stop` says so; then ends the stream.
pub(crate) fn run_handed_off(
    mut feed: SyntheticFeed,
    publisher: &TickPublisher,
    stop: impl Fn() -> bool,
) -> ztick::Result<()> {
    // The worker's timer slack, so the hop is all that differs from the worker's feed.
    ztick::set_timer_slack_ns(1_000);
    let mut out = HandOff(publisher);
    while !stop() {
        let now = ztick::now_ns();
        match feed.step(now, &mut out)? {
            // At most STOP_CHECK_NS at a time, so a signal ends even a long idle gap soon.
            SourcePoll::WakeAt(at) => ztick::sleep_until_ns(at.min(now.saturating_add(STOP_CHECK_NS))),
            SourcePoll::Done => break,
        }
    }
    publisher.end_stream().map_err(|_| ztick::Error::Stopped("the publisher's worker ended".into()))
}

/// Runs `feed` on this thread, which owns `publisher`'s sockets: each pass publishes what is
/// due, sends it and serves the stream, then serves it until the next tick is due, until the
/// feed is done or `stop` says so; then ends the stream.
pub(crate) fn run_inline(
    mut feed: SyntheticFeed,
    publisher: &mut InlineTickPublisher,
    stop: impl Fn() -> bool,
) -> ztick::Result<()> {
    ztick::set_timer_slack_ns(1_000);
    while !stop() {
        let now = ztick::now_ns();
        let poll = feed.step(now, publisher)?;
        publisher.serve()?;
        match poll {
            SourcePoll::WakeAt(at) => publisher.serve_until_ns(at.min(now.saturating_add(STOP_CHECK_NS)))?,
            SourcePoll::Done => break,
        }
    }
    publisher.end_stream()
}
