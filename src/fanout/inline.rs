//! [`InlineTickPublisher`]: the tick publisher with its sockets on the application's own
//! thread. A tick goes from the caller's `publish` straight onto the XPUB, with no channel,
//! no wake-up and no worker thread between them: the hop [`TickPublisher`] pays. The price
//! is that the stream is served only while the caller is in one of its methods, so the
//! caller must come back (with [`serve`](InlineTickPublisher::serve) or
//! [`serve_until_ns`](InlineTickPublisher::serve_until_ns)) at least every heartbeat.

use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use super::config::PublisherConfig;
use super::publisher::{prepare, Parts, Prepared, PublisherHandler};
use super::report::PublisherReport;
#[cfg(doc)]
use super::TickPublisher;
use crate::endpoint::Endpoint;
use crate::engine::{Engine, InlineWorker};
use crate::error::{Error, Result};
use crate::sys::now_ns;

/// A tick publisher run by the caller's thread: the same stream as [`TickPublisher`]
/// (sequences, coalescing, heartbeats, snapshots, repairs, end markers), its sockets on an
/// [`InlineWorker`].
///
/// Every method serves the stream as it goes; between calls nothing does. Publish with
/// [`publish_at`](Self::publish_at), then call [`serve`](Self::serve) (which sends the
/// batches, answers subscriptions and side requests, and sends heartbeats); wait for the
/// next tick with [`serve_until_ns`](Self::serve_until_ns) rather than a sleep, so
/// subscriptions and repairs are answered meanwhile. It is `Send`, not `Sync`: one thread
/// at a time.
///
/// ```
/// use std::time::Duration;
/// use ztick::fanout::{InlineTickPublisher, OwnedEvent, PublisherConfig, SubscriberConfig, TickSubscriber};
/// use ztick::{now_ns, Endpoint, Engine};
///
/// let engine = Engine::new()?;
/// let cfg = PublisherConfig { topics: vec!["eur".into()], ..Default::default() };
/// let mut publisher = InlineTickPublisher::bind(&engine, Endpoint::unique_inproc("doc-inline-pub"), None, cfg)?;
/// let sub_cfg = SubscriberConfig::for_topics(&["eur"]);
/// let subscriber = TickSubscriber::with_channel(&engine, publisher.endpoint().clone(), None, sub_cfg, 64)?;
/// assert!(publisher.wait_subscribers(1, Duration::from_secs(10))?);
///
/// publisher.publish_at(0, now_ns(), b"1.0842")?;
/// publisher.serve()?; // the batch leaves now
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
pub struct InlineTickPublisher {
    worker: InlineWorker<PublisherHandler>,
    endpoint: Endpoint,
    side_endpoint: Option<Endpoint>,
    topics: Vec<String>,
    parts: Parts,
}

impl std::fmt::Debug for InlineTickPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InlineTickPublisher")
            .field("endpoint", &self.endpoint)
            .field("topics", &self.topics.len())
            .finish()
    }
}

/// The `Instant` of a CLOCK_MONOTONIC time in ns.
fn instant_of(at_ns: u64) -> Instant {
    Instant::now() + Duration::from_nanos(at_ns.saturating_sub(now_ns()))
}

impl InlineTickPublisher {
    /// Binds the XPUB at `bind` and, when given, the side channel (a ROUTER) at `side`, on
    /// this thread, as [`TickPublisher::start`] does on a worker's. `cfg`'s pinning,
    /// scheduling policy, idle strategy and `capacity` do not apply: the thread is the
    /// caller's and nothing is handed over.
    ///
    /// # Errors
    /// A field of `cfg` out of range ([`PublisherConfig::validate`]), or a socket that
    /// could not be bound.
    pub fn bind(
        engine: &Engine,
        bind: Endpoint,
        side: Option<Endpoint>,
        cfg: PublisherConfig,
    ) -> Result<Self> {
        let Prepared { builder, handler, parts } = prepare(engine, bind, side, &cfg, None)?;
        let worker = builder.inline(handler)?;
        let endpoint = worker.endpoint(parts.feed).unwrap_or_default().parse()?;
        let side_endpoint = match parts.side {
            Some(r) => Some(worker.endpoint(r).unwrap_or_default().parse()?),
            None => None,
        };
        Ok(InlineTickPublisher { worker, endpoint, side_endpoint, topics: cfg.topics, parts })
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

    /// The index of topic `name`, for [`publish_at`](Self::publish_at).
    pub fn topic_index(&self, name: &str) -> Option<usize> {
        self.topics.iter().position(|t| t == name)
    }

    /// Subscribers connected, as of the last time the stream was served.
    pub fn subscribers(&self) -> usize {
        self.parts.live.subscribers()
    }

    /// The epoch this publisher publishes under (see [`TickPublisher::epoch`]).
    pub fn epoch(&self) -> u64 {
        self.parts.epoch
    }

    /// Ticks sequenced so far, as of the last pass.
    pub fn published(&self) -> u64 {
        self.parts.live.published.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Adds a tick of topic `topic` (an index into [`topics`](Self::topics)) meant to leave
    /// at `intended_ns` (CLOCK_MONOTONIC; subscribers measure latency from it; 0: unknown)
    /// to its group's batch. The batch leaves when it is full, or at the next
    /// [`serve`](Self::serve) (after `max_delay`, when the config coalesces).
    ///
    /// # Errors
    /// [`Error::Stopped`] once the stream has ended; [`Error::Config`] for a topic or a
    /// payload out of range; a send that failed.
    pub fn publish_at(&mut self, topic: usize, intended_ns: u64, payload: &[u8]) -> Result<()> {
        self.worker.with(|h, ctx| h.push_here(ctx, topic, intended_ns, payload))
    }

    /// One pass of the stream, without waiting: sends the batches that are due, answers
    /// subscriptions and side requests (snapshots, repairs, end acknowledgements), and
    /// sends a heartbeat when one is due.
    ///
    /// # Errors
    /// A socket error.
    pub fn serve(&mut self) -> Result<()> {
        self.worker.pass().map(|_| ())
    }

    /// Serves the stream until `deadline_ns` (CLOCK_MONOTONIC), parking on the sockets
    /// between passes: the wait between ticks. A wait under a millisecond is a `ppoll`,
    /// precise to the thread's timer slack.
    ///
    /// # Errors
    /// A socket error.
    pub fn serve_until_ns(&mut self, deadline_ns: u64) -> Result<()> {
        self.worker.run_until(instant_of(deadline_ns))
    }

    /// Serves the stream until at least `n` subscribers are connected, at most `timeout`;
    /// true if they are. Ticks published before a subscriber is connected do not reach it.
    ///
    /// # Errors
    /// A socket error.
    pub fn wait_subscribers(&mut self, n: usize, timeout: Duration) -> Result<bool> {
        let deadline = Instant::now() + timeout;
        loop {
            // Each slice begins with a pass, so the hellos already queued are read first.
            self.worker.run_until(deadline.min(Instant::now() + Duration::from_millis(1)))?;
            if self.subscribers() >= n {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
        }
    }

    /// Ends the stream now: what is open, then the first end markers. Later ticks are
    /// refused; [`finish`](Self::finish) waits for the acknowledgements.
    ///
    /// # Errors
    /// A send that failed.
    pub fn end_stream(&mut self) -> Result<()> {
        self.worker.with(|h, ctx| h.end_here(ctx))
    }

    /// Ends the stream (if not yet ended), then serves it, repeating the end markers every
    /// `eos_repeat`, until each connected subscriber has acknowledged or `eos_linger` has
    /// passed, at most `timeout`; closes the sockets and returns what it published.
    ///
    /// # Errors
    /// A socket error; [`Error::Stopped`] when it ended without a report.
    pub fn finish(mut self, timeout: Duration) -> Result<PublisherReport> {
        let deadline = Instant::now() + timeout;
        let ended = self.end_stream();
        let served = match ended {
            Ok(()) => self.worker.run_until(deadline),
            Err(e) => Err(e),
        };
        let InlineTickPublisher { worker, endpoint, side_endpoint, parts, .. } = self;
        let stopped = worker.stop();
        endpoint.remove_ipc_file();
        if let Some(ep) = &side_endpoint {
            ep.remove_ipc_file();
        }
        served?;
        stopped?;
        report(&parts.report)
    }
}

fn report(rx: &Receiver<PublisherReport>) -> Result<PublisherReport> {
    rx.try_recv().map_err(|_| Error::Stopped("the inline tick publisher ended without its report".into()))
}
