//! Publish/subscribe on the engine: a [`Publisher`] worker owning an XPUB socket, and
//! [`Subscriber`] workers owning SUB sockets, exchanging `[topic][payload]` messages.
//!
//! **Slow joiners.** A subscription travels to the publisher over the connection, and
//! libzmq's PUB/XPUB sends a message only to the subscriptions it already holds: whatever is
//! published before a subscription arrives is lost *for that subscriber*, silently. The
//! publisher here runs its XPUB with `ZMQ_XPUB_VERBOSE`, so it sees every subscription
//! arrive, and [`Publisher::wait_topic`] / [`Publisher::wait_subscribers`] wait for them:
//! synchronise on those, never on a sleep.
//!
//! **Slow subscribers.** What happens when a subscriber's queue is full is a choice, made
//! per publisher with [`SlowSubscriber`]: each choice costs something, see its variants.
//!
//! ```
//! use std::time::Duration;
//! use ztick::{Endpoint, Engine};
//! use ztick::patterns::{Publisher, Subscriber};
//!
//! let engine = Engine::new()?;
//! let publisher = Publisher::bind(Endpoint::unique_inproc("pubsub-doc")).spawn(&engine)?;
//! let quotes = Subscriber::builder()
//!     .connect(publisher.endpoint().clone())
//!     .topic("quote.")
//!     .spawn(&engine)?;
//! publisher.wait_topic(b"quote.EURUSD", 1, Duration::from_secs(5))?; // no slow joiner
//!
//! publisher.publish(b"trade.EURUSD", b"not for this subscriber".to_vec())?;
//! publisher.publish(b"quote.EURUSD", b"1.0842".to_vec())?;
//! let p = quotes.recv_timeout(Duration::from_secs(5))?;
//! assert_eq!((p.topic.as_slice(), p.value.as_slice()), (&b"quote.EURUSD"[..], &b"1.0842"[..]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::input::{wire_limit, InputCounters, InputStats, Malformed};
use crate::config::{FullPolicy, SocketKind, SocketOptions};
use crate::endpoint::Endpoint;
use crate::engine::{
    Delivery, Engine, Handle, Handler, Outbox, SendError, SocketId, SocketSpec, TrySendError, Watch, Worker,
    WorkerCtx,
};
use crate::error::{Error, Operation, Result};
use crate::message::{codec, Frame, Inbound, Outbound, Subscription};

/// The largest message a serving pattern ([`Subscriber`], pipeline worker, sink) accepts
/// unless told otherwise: 1 MiB.
pub const DEFAULT_MAX_MSG_BYTES: usize = 1 << 20;

/// How long a control round trip to a worker (subscribe, flush) may take before it fails.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(5);

/// What a publisher does when a subscriber's queue is at its high-water mark.
///
/// The HWM counts messages per subscriber connection: `send_hwm_msgs` on the publisher plus,
/// over tcp and ipc, the kernel's socket buffers and the subscriber's `recv_hwm_msgs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SlowSubscriber {
    /// libzmq's PUB behaviour: the message is dropped *for that subscriber only*, the others
    /// get it, and the publisher never waits. Costs: the loss is silent, the publisher
    /// cannot count it (only a sequence number in the payload can reveal it, as the
    /// `fanout` module's does). The choice for market data, where fresh beats complete.
    #[default]
    Drop,
    /// `ZMQ_XPUB_NODROP` with the engine's `FullPolicy::Block`: the publisher keeps the
    /// message and retries until every matching subscriber has room. Nothing is lost.
    /// Costs: everyone now runs at the pace of the slowest subscriber; the hand-off channel
    /// fills behind the blocked message and [`Publisher::publish`] then blocks too; and
    /// libzmq raises no "writable" event for XPUB (its `ZMQ_POLLOUT` is always set), so
    /// the blocked worker retries every 200 µs: measured on a 2-core machine, 0.13 CPU
    /// seconds per second while blocked (a polling loop took a whole core), and up to
    /// 200 µs before it notices room again.
    Block,
    /// `ZMQ_XPUB_NODROP` with `FullPolicy::Drop`: a message that some matching subscriber
    /// cannot take is refused for *all* of them and counted in
    /// [`PublisherStats::refused`]. The publisher never waits and every loss is counted.
    /// Costs: one slow subscriber makes the fast ones miss the same messages.
    Refuse,
}

/// Configures a [`Publisher`]; from [`Publisher::bind`] or [`Publisher::connect`].
#[derive(Debug, Clone)]
pub struct PublisherBuilder {
    name: String,
    endpoint: Endpoint,
    bind: bool,
    options: SocketOptions,
    slow: SlowSubscriber,
    batch_max: usize,
    inbox_capacity: usize,
}

impl PublisherBuilder {
    /// The worker's name, for traces. Default `publisher`.
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.to_owned();
        self
    }

    /// The XPUB socket's options (HWMs, linger…), applied before it binds or connects.
    /// Default: libzmq's, with ztick's 1 s linger.
    pub fn options(mut self, options: SocketOptions) -> Self {
        self.options = options;
        self
    }

    /// Sets only the send high-water mark, in messages per subscriber (libzmq: 1000).
    pub fn send_hwm_msgs(mut self, msgs: u32) -> Self {
        self.options.send_hwm_msgs = Some(msgs);
        self
    }

    /// What to do when a subscriber is slow. Default [`SlowSubscriber::Drop`].
    pub fn on_slow_subscriber(mut self, choice: SlowSubscriber) -> Self {
        self.slow = choice;
        self
    }

    /// Most publications sent per wake-up of the worker (see `WorkerBuilder::batch_max`). Default 64.
    pub fn batch_max(mut self, n: usize) -> Self {
        self.batch_max = n.max(1);
        self
    }

    /// Capacity of the hand-off channel, in publications. Default 4096.
    pub fn inbox_capacity(mut self, n: usize) -> Self {
        self.inbox_capacity = n.max(1);
        self
    }

    /// Starts the publisher's worker; returns once its socket is bound or connected.
    ///
    /// # Errors
    /// The socket could not be created, configured, bound or connected.
    pub fn spawn(self, engine: &Engine) -> Result<Publisher> {
        let (nodrop, policy) = match self.slow {
            SlowSubscriber::Drop => (false, FullPolicy::Block),
            SlowSubscriber::Block => (true, FullPolicy::Block),
            SlowSubscriber::Refuse => (true, FullPolicy::Drop),
        };
        let spec = SocketSpec {
            bind: self.bind,
            options: self.options,
            on_full: policy,
            xpub_nodrop: nodrop,
            // Every subscription, duplicates included, so each subscriber's arrival is seen.
            xpub_verbose: true,
            ..SocketSpec::bind(SocketKind::XPub, self.endpoint)
        };
        let table = Arc::new(Watch::<Subscriptions>::default());
        let input = Arc::new(InputCounters::default());
        let mut b = engine.worker(&self.name).batch_max(self.batch_max).inbox_capacity(self.inbox_capacity);
        let sock = b.socket(spec);
        let handler = PublisherHandler { table: Arc::clone(&table), input: Arc::clone(&input) };
        let worker = b.handler(handler).spawn()?;
        let endpoint = resolved(&worker, sock)?;
        Ok(Publisher { handle: worker.handle(), worker, sock, endpoint, table, input, slow: self.slow })
    }
}

/// The endpoint a worker's socket bound or connected to, as an [`Endpoint`].
pub(super) fn resolved(worker: &Worker, sock: SocketId) -> Result<Endpoint> {
    let text = worker.endpoint(sock).unwrap_or_default();
    text.parse()
}

/// The subscriptions a publisher has seen, for [`Publisher::wait_subscriptions`].
///
/// Each SUB socket sends a prefix once however often it subscribes to it, so with
/// `ZMQ_XPUB_VERBOSE` a count is the number of subscriber sockets holding that prefix.
/// libzmq reports an unsubscription only when the *last* holder of a prefix leaves (or
/// disconnects), so counts drop straight to zero then; while several hold a prefix, one
/// leaving goes unseen. The counts are for synchronising start-up, not a membership list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subscriptions {
    /// Holders per prefix; no zero entries.
    prefixes: HashMap<Vec<u8>, usize>,
    /// The sum of `prefixes`' counts.
    total: usize,
}

impl Subscriptions {
    /// Every subscription seen and not withdrawn (a subscriber with three topics counts three).
    pub fn total(&self) -> usize {
        self.total
    }

    /// Subscriptions whose prefix matches `topic`: how many subscribers a message published
    /// on `topic` now reaches (a subscriber holding two matching prefixes counts twice).
    pub fn matching(&self, topic: &[u8]) -> usize {
        self.prefixes.iter().filter(|(p, _)| topic.starts_with(p)).map(|(_, n)| n).sum()
    }

    /// Holders of exactly `prefix`.
    pub fn holders(&self, prefix: &[u8]) -> usize {
        self.prefixes.get(prefix).copied().unwrap_or(0)
    }

    /// The prefixes held, with their holder counts, in no particular order.
    pub fn prefixes(&self) -> impl Iterator<Item = (&[u8], usize)> {
        self.prefixes.iter().map(|(p, n)| (p.as_slice(), *n))
    }

    /// Counts one subscription message an XPUB received (with `ZMQ_XPUB_VERBOSE`, as
    /// [`Publisher`] runs it): a subscribe adds a holder of its prefix, an unsubscribe
    /// (libzmq's word that the last holder left) drops the prefix.
    ///
    /// ```
    /// use ztick::Subscription;
    /// use ztick::patterns::Subscriptions;
    /// let mut subs = Subscriptions::default();
    /// subs.apply(Subscription::Subscribe(b"quote."));
    /// subs.apply(Subscription::Subscribe(b"quote."));
    /// subs.apply(Subscription::Subscribe(b""));
    /// assert_eq!((subs.total(), subs.matching(b"quote.EURUSD"), subs.matching(b"trade")), (3, 3, 1));
    /// subs.apply(Subscription::Unsubscribe(b"quote."));
    /// assert_eq!(subs.total(), 1);
    /// ```
    pub fn apply(&mut self, subscription: Subscription<'_>) {
        match subscription {
            Subscription::Subscribe(prefix) => {
                *self.prefixes.entry(prefix.to_vec()).or_insert(0) += 1;
                self.total += 1;
            }
            Subscription::Unsubscribe(prefix) => {
                if let Some(n) = self.prefixes.remove(prefix) {
                    self.total -= n;
                }
            }
        }
    }
}

/// The publisher's worker: reads subscriptions off the XPUB socket.
struct PublisherHandler {
    /// The subscriptions, written here and waited on by application threads.
    table: Arc<Watch<Subscriptions>>,
    input: Arc<InputCounters>,
}

impl Handler for PublisherHandler {
    fn on_message(&mut self, ctx: &mut WorkerCtx<'_>, socket: SocketId, msg: &Inbound<'_>) -> Result<()> {
        // XPUB delivers subscriptions as one frame: 1 + prefix to subscribe, 0 + prefix to
        // leave. Anything else comes from a misbehaving XSUB peer: count it, serve on.
        let refuse = |why, detail: String| {
            let peer = format!("XPUB {}", ctx.endpoint(socket).unwrap_or("?"));
            self.input.refuse(why, &peer, &detail);
        };
        if msg.len() != 1 {
            refuse(Malformed::Frames, format!("{} frames; a subscription has 1", msg.len()));
            return Ok(());
        }
        let f = msg.last();
        let Some(subscription) = Subscription::parse(f) else {
            match f.first() {
                None => refuse(Malformed::Empty, "empty frame where a subscription was expected".into()),
                Some(op) => refuse(
                    Malformed::Undecodable,
                    format!("first byte {op:#04x}; a subscription starts with 0 or 1"),
                ),
            }
            return Ok(());
        };
        self.input.handled(); // before the table moves: a waiter then sees it counted
        self.table.update(|subs| subs.apply(subscription));
        Ok(())
    }
}

/// A publisher's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PublisherStats {
    /// Publications handed to libzmq (under [`SlowSubscriber::Drop`], libzmq may still
    /// drop them for some subscribers, uncounted).
    pub published: u64,
    /// Publications refused at the HWM under [`SlowSubscriber::Refuse`], plus any still
    /// queued when a stop gave up draining.
    pub refused: u64,
    /// Publication batches: wake-ups that sent at least one (`published / batches` is the mean batch).
    pub batches: u64,
    /// Subscriptions held now (see [`Subscriptions::total`]).
    pub subscriptions: usize,
    /// What the XPUB socket received: subscriptions handled, and malformed control messages.
    pub input: InputStats,
}

/// A publisher: an engine worker owning an XPUB socket. Cheap to share by reference
/// between threads (`publish` takes `&self`).
///
/// Publications are `[topic][payload]` messages; subscribers filter on the topic frame's
/// prefix. Application threads hand them over through a bounded channel and the worker
/// sends them in batches (see [`PublisherBuilder::batch_max`]).
///
/// # Examples
///
/// The publisher waits for the subscription instead of losing the first publications to
/// a slow joiner:
///
/// ```
/// use std::time::Duration;
/// use ztick::patterns::{Publisher, Subscriber};
/// use ztick::{Endpoint, Engine};
///
/// let engine = Engine::new()?;
/// let publisher = Publisher::bind(Endpoint::unique_inproc("doc-quotes")).spawn(&engine)?;
/// let quotes = Subscriber::builder().connect(publisher.endpoint().clone()).topic("quote.").spawn(&engine)?;
/// publisher.wait_topic(b"quote.EURUSD", 1, Duration::from_secs(5))?;
/// publisher.publish(b"quote.EURUSD", b"1.0842".to_vec()).expect("the publisher runs");
/// publisher.publish(b"news.fed", b"not subscribed: filtered".to_vec()).expect("the publisher runs");
/// let p = quotes.recv_timeout(Duration::from_secs(5))?;
/// assert_eq!((p.topic.as_slice(), p.value.as_slice()), (&b"quote.EURUSD"[..], &b"1.0842"[..]));
/// publisher.stop()?;
/// # Ok::<(), ztick::Error>(())
/// ```
pub struct Publisher {
    handle: Handle,
    sock: SocketId,
    endpoint: Endpoint,
    table: Arc<Watch<Subscriptions>>,
    input: Arc<InputCounters>,
    slow: SlowSubscriber,
    /// Last: dropping a publisher stops its worker after the rest is gone.
    worker: Worker,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("endpoint", &self.endpoint.to_string())
            .field("slow", &self.slow)
            .finish()
    }
}

impl Publisher {
    /// A publisher that binds `endpoint` (the usual case: subscribers come and go).
    pub fn bind(endpoint: Endpoint) -> PublisherBuilder {
        PublisherBuilder::new(endpoint, true)
    }

    /// A publisher that connects to `endpoint`, where a [`Subscriber`] (or a proxy) binds.
    pub fn connect(endpoint: Endpoint) -> PublisherBuilder {
        PublisherBuilder::new(endpoint, false)
    }

    /// The endpoint to give subscribers: for a bind, the one libzmq resolved (the real tcp port).
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The choice made for slow subscribers.
    pub fn slow_subscriber(&self) -> SlowSubscriber {
        self.slow
    }

    /// Publishes `payload` on `topic`, waiting while the hand-off channel is full.
    ///
    /// # Errors
    /// [`SendError`] (with the message) when the worker has stopped.
    pub fn publish(&self, topic: &[u8], payload: impl Into<Vec<u8>>) -> std::result::Result<(), SendError> {
        self.publish_frame(topic, Frame::bytes(payload))
    }

    /// Publishes a payload frame as it is: a pooled [`Frame`] goes to libzmq without a copy.
    ///
    /// # Errors
    /// As [`Publisher::publish`].
    pub fn publish_frame(&self, topic: &[u8], payload: Frame) -> std::result::Result<(), SendError> {
        let msg = Outbound { first: Frame::bytes(topic), rest: vec![payload] };
        self.handle.send(self.sock, msg)
    }

    /// Publishes `value` on `topic`, encoded with [`codec::encode`] (bincode 2).
    ///
    /// # Errors
    /// [`Error::Decode`] if serde refuses the value; [`Error::Stopped`] if the worker has stopped.
    pub fn publish_value<T: Serialize + ?Sized>(&self, topic: &[u8], value: &T) -> Result<()> {
        let bytes = codec::encode(value)?;
        self.publish(topic, bytes).map_err(|e| Error::Stopped(format!("publisher: {e}")))
    }

    /// Publishes a message of any shape (the first frame is what subscribers filter on).
    /// ztick's [`Subscriber`] accepts only `[topic][payload]`; raw SUB sockets take anything.
    ///
    /// # Errors
    /// As [`Publisher::publish`].
    pub fn publish_outbound(&self, msg: Outbound) -> std::result::Result<(), SendError> {
        self.handle.send(self.sock, msg)
    }

    /// Publishes if the hand-off channel has room now.
    ///
    /// # Errors
    /// [`TrySendError::Full`] (with the message) when it has none; [`TrySendError::Stopped`]
    /// when the worker has stopped.
    pub fn try_publish(
        &self,
        topic: &[u8],
        payload: impl Into<Vec<u8>>,
    ) -> std::result::Result<(), TrySendError> {
        let msg = Outbound { first: Frame::bytes(topic), rest: vec![Frame::bytes(payload)] };
        self.handle.try_send(self.sock, msg)
    }

    /// Waits until `ready` holds for the subscriptions seen, at most `timeout`.
    ///
    /// # Errors
    /// [`Error::Timeout`], naming the subscriptions seen so far.
    pub fn wait_subscriptions(
        &self,
        timeout: Duration,
        ready: impl FnMut(&Subscriptions) -> bool,
    ) -> Result<()> {
        let (subs, done) = self.table.wait_until(timeout, ready);
        if done {
            return Ok(());
        }
        let mut seen: Vec<String> =
            subs.prefixes().map(|(p, n)| format!("{:?}x{n}", String::from_utf8_lossy(p))).collect();
        seen.sort();
        Err(Error::Timeout {
            op: Operation::Recv,
            endpoint: format!(
                "XPUB {} waiting for subscriptions (seen: [{}])",
                self.endpoint,
                seen.join(", ")
            ),
            ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        })
    }

    /// Waits until at least `n` subscriptions, on any topics, have reached the publisher.
    ///
    /// # Errors
    /// [`Error::Timeout`].
    pub fn wait_subscribers(&self, n: usize, timeout: Duration) -> Result<()> {
        self.wait_subscriptions(timeout, |s| s.total() >= n)
    }

    /// Waits until a message published on `topic` would reach at least `n` subscriptions:
    /// after this returns, a publication on `topic` is not lost to a slow joiner.
    ///
    /// # Errors
    /// [`Error::Timeout`].
    pub fn wait_topic(&self, topic: &[u8], n: usize, timeout: Duration) -> Result<()> {
        self.wait_subscriptions(timeout, |s| s.matching(topic) >= n)
    }

    /// The subscriptions seen so far.
    pub fn subscriptions(&self) -> Subscriptions {
        self.table.read(Subscriptions::clone)
    }

    /// Waits until everything published so far has been handed to libzmq (sent, or refused
    /// under [`SlowSubscriber::Refuse`]); then [`Publisher::stats`] accounts for all of it.
    /// Under [`SlowSubscriber::Block`] this waits for the slowest subscriber.
    ///
    /// # Errors
    /// [`Error::Timeout`]; [`Error::Stopped`] if the worker has stopped.
    pub fn flush(&self, timeout: Duration) -> Result<()> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        // The hand-off channel is FIFO: this runs after every publication handed over before it.
        if !self.handle.run(move |ctx| {
            let _ = ctx.stats(); // moves this pass's counts into the shared counters
            let _ = tx.send(());
        }) {
            return Err(Error::Stopped("publisher worker has stopped".into()));
        }
        rx.recv_timeout(timeout).map_err(|e| match e {
            RecvTimeoutError::Timeout => Error::Timeout {
                op: Operation::Send,
                endpoint: format!("XPUB {} flushing publications", self.endpoint),
                ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            },
            RecvTimeoutError::Disconnected => Error::Stopped("publisher worker has stopped".into()),
        })
    }

    /// The counters now.
    pub fn stats(&self) -> PublisherStats {
        let w = self.handle.stats();
        PublisherStats {
            published: w.sent,
            refused: w.dropped,
            batches: w.batches,
            subscriptions: self.table.read(Subscriptions::total),
            input: self.input.snapshot(),
        }
    }

    /// Stops the worker after it has sent what was handed over (up to its drain timeout);
    /// returns the final counters.
    ///
    /// # Errors
    /// The worker panicked, or a socket error ended its loop.
    pub fn stop(self) -> Result<PublisherStats> {
        let Publisher { worker, table, input, .. } = self;
        let report = worker.stop()?;
        let subscriptions = table.read(Subscriptions::total);
        Ok(PublisherStats {
            published: report.stats.sent,
            refused: report.stats.dropped,
            batches: report.stats.batches,
            subscriptions,
            input: input.snapshot(),
        })
    }
}

impl PublisherBuilder {
    fn new(endpoint: Endpoint, bind: bool) -> Self {
        PublisherBuilder {
            name: "publisher".to_owned(),
            endpoint,
            bind,
            options: SocketOptions::default(),
            slow: SlowSubscriber::default(),
            batch_max: 64,
            inbox_capacity: 4096,
        }
    }
}

/// One publication as a [`Subscriber`] delivers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication<T> {
    /// The topic frame.
    pub topic: Vec<u8>,
    /// The payload: raw bytes, or a decoded value for [`SubscriberBuilder::spawn_typed`].
    pub value: T,
}

/// Configures a [`Subscriber`]; from [`Subscriber::builder`].
#[derive(Debug, Clone)]
pub struct SubscriberBuilder {
    name: String,
    endpoints: Vec<(Endpoint, bool)>,
    topics: Vec<Vec<u8>>,
    options: SocketOptions,
    max_msg_bytes: usize,
    capacity: usize,
}

impl Default for SubscriberBuilder {
    fn default() -> Self {
        SubscriberBuilder {
            name: "subscriber".to_owned(),
            endpoints: Vec::new(),
            topics: Vec::new(),
            options: SocketOptions::default(),
            max_msg_bytes: DEFAULT_MAX_MSG_BYTES,
            capacity: 4096,
        }
    }
}

impl SubscriberBuilder {
    /// The worker's name, for traces. Default `subscriber`.
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.to_owned();
        self
    }

    /// Connects to a publisher at `endpoint`. Call it once per publisher: each gets its own
    /// SUB socket, so a malformed message is traced with the endpoint it came from.
    pub fn connect(mut self, endpoint: Endpoint) -> Self {
        self.endpoints.push((endpoint, false));
        self
    }

    /// Binds `endpoint`, for publishers that connect (many publishers, one subscriber).
    pub fn bind(mut self, endpoint: Endpoint) -> Self {
        self.endpoints.push((endpoint, true));
        self
    }

    /// Subscribes to a topic prefix from the start (an empty prefix takes everything).
    /// Without any, the subscriber receives nothing until [`Subscriber::subscribe`].
    pub fn topic(mut self, prefix: impl Into<Vec<u8>>) -> Self {
        self.topics.push(prefix.into());
        self
    }

    /// The SUB sockets' options (HWMs, linger…), applied before they bind or connect.
    pub fn options(mut self, options: SocketOptions) -> Self {
        self.options = options;
        self
    }

    /// Sets only the receive high-water mark, in messages per publisher (libzmq: 1000).
    pub fn recv_hwm_msgs(mut self, msgs: u32) -> Self {
        self.options.recv_hwm_msgs = Some(msgs);
        self
    }

    /// The largest message (topic plus payload) accepted, in bytes; bigger ones are
    /// refused and counted as [`Malformed::TooLarge`]. Default [`DEFAULT_MAX_MSG_BYTES`].
    ///
    /// libzmq's own `ZMQ_MAXMSGSIZE`, which drops the publisher's connection (and everything
    /// after the bad message with it), is set to twice this, at least 64 KiB more, unless
    /// the socket options set one: only a frame that large costs the connection.
    pub fn max_msg_bytes(mut self, bytes: usize) -> Self {
        self.max_msg_bytes = bytes;
        self
    }

    /// Capacity of the channel to the application, in publications. Default 4096. When it
    /// is full the worker waits, the SUB socket's queue fills, and the publisher's
    /// [`SlowSubscriber`] choice applies.
    pub fn capacity(mut self, n: usize) -> Self {
        self.capacity = n.max(1);
        self
    }

    /// Starts a subscriber that delivers raw payloads to [`Subscriber::recv`].
    ///
    /// # Errors
    /// No endpoint was given, or a socket could not be created, bound or connected.
    pub fn spawn(self, engine: &Engine) -> Result<Subscriber<Vec<u8>>> {
        self.start(engine, raw_value, None)
    }

    /// Starts a subscriber that decodes each payload as a `T` ([`codec::decode`]);
    /// payloads that do not decode are refused and counted as [`Malformed::Undecodable`].
    ///
    /// # Errors
    /// As [`SubscriberBuilder::spawn`].
    pub fn spawn_typed<T: DeserializeOwned + Send + 'static>(self, engine: &Engine) -> Result<Subscriber<T>> {
        self.start(engine, codec::decode::<T>, None)
    }

    /// Starts a subscriber that calls `f(topic, payload)` on its worker thread for every
    /// valid publication: no hop to another thread, nothing copied. [`Subscriber::recv`]
    /// then reports that publications go to the callback.
    ///
    /// # Errors
    /// As [`SubscriberBuilder::spawn`].
    pub fn spawn_with(
        self,
        engine: &Engine,
        f: impl FnMut(&[u8], &[u8]) + Send + 'static,
    ) -> Result<Subscriber<Vec<u8>>> {
        self.start(engine, raw_value, Some(Box::new(f)))
    }

    /// Starts the worker: publications go to `callback` when given, else decoded by
    /// `decode` to the channel.
    fn start<T: Send + 'static>(
        self,
        engine: &Engine,
        decode: Decode<T>,
        callback: Option<Callback>,
    ) -> Result<Subscriber<T>> {
        if self.endpoints.is_empty() {
            return Err(Error::config(
                "subscriber endpoints",
                "none",
                "at least one SubscriberBuilder::connect or ::bind",
            ));
        }
        let (tx, rx) = crossbeam_channel::bounded(self.capacity);
        let stopping = Arc::new(AtomicBool::new(false));
        let input = Arc::new(InputCounters::default());
        let mut b = engine.worker(&self.name);
        let mut socks = Vec::with_capacity(self.endpoints.len());
        for (ep, bind) in self.endpoints {
            let options = self.options.clone().max_msg_bytes_or(wire_limit(self.max_msg_bytes));
            let mut spec = SocketSpec { bind, options, ..SocketSpec::bind(SocketKind::Sub, ep) };
            spec.subscriptions = self.topics.clone();
            socks.push(b.socket(spec));
        }
        let delivery = match callback {
            Some(f) => {
                drop(tx); // nothing goes to the channel: `recv` says so
                Delivery::Callback(f)
            }
            None => Delivery::Channel(Outbox::new(tx, Arc::clone(&stopping))),
        };
        let handler =
            SubscriberHandler { input: Arc::clone(&input), max_bytes: self.max_msg_bytes, decode, delivery };
        let worker = b.handler(handler).spawn()?;
        let endpoints = socks.iter().map(|&s| resolved(&worker, s)).collect::<Result<Vec<_>>>()?;
        Ok(Subscriber {
            handle: worker.handle(),
            socks,
            endpoints,
            rx,
            input,
            stopping,
            name: self.name,
            worker: Some(worker),
        })
    }
}

fn raw_value(bytes: &[u8], _from: &str) -> Result<Vec<u8>> {
    Ok(bytes.to_vec())
}

/// A `spawn_with` callback: `(topic, payload)`, on the worker thread.
type Callback = Box<dyn FnMut(&[u8], &[u8]) + Send>;

/// Turns a payload into a delivered value; `from` names the peer for errors.
type Decode<T> = fn(&[u8], &str) -> Result<T>;

/// Checks a received message's shape: `frames` frames, not all empty, at most `max_bytes`.
/// On refusal, the reason and a detail for the trace.
pub(super) fn check_shape(
    msg: &Inbound<'_>,
    frames: usize,
    what: &str,
    max_bytes: usize,
) -> std::result::Result<(), (Malformed, String)> {
    if msg.iter().all(<[u8]>::is_empty) {
        return Err((Malformed::Empty, format!("{} empty frame(s)", msg.len())));
    }
    if msg.len() != frames {
        return Err((Malformed::Frames, format!("{} frames; {what} has {frames}", msg.len())));
    }
    let size = msg.size_bytes();
    if size > max_bytes {
        return Err((Malformed::TooLarge, format!("{size} bytes; the limit is {max_bytes}")));
    }
    Ok(())
}

struct SubscriberHandler<T> {
    input: Arc<InputCounters>,
    max_bytes: usize,
    /// Turns a payload into what the channel delivers (unused with a callback).
    decode: Decode<T>,
    /// The callback, or the channel, whose wait for room ends when the application stops
    /// the subscriber.
    delivery: Delivery<Callback, Publication<T>>,
}

impl<T: Send> Handler for SubscriberHandler<T> {
    fn on_message(&mut self, ctx: &mut WorkerCtx<'_>, socket: SocketId, msg: &Inbound<'_>) -> Result<()> {
        let peer = || format!("SUB {}", ctx.endpoint(socket).unwrap_or("?"));
        if let Err((why, detail)) = check_shape(msg, 2, "a publication ([topic][payload])", self.max_bytes) {
            self.input.refuse(why, &peer(), &detail);
            return Ok(());
        }
        let (topic, payload) = (msg.frame(0).unwrap_or_default(), msg.last());
        match &mut self.delivery {
            Delivery::Callback(f) => {
                self.input.handled();
                f(topic, payload)
            }
            Delivery::Channel(outbox) => {
                // The peer's name is built only for a refusal: nothing allocated per message.
                let value = match (self.decode)(payload, "a publication's payload") {
                    Ok(v) => v,
                    Err(e) => {
                        let detail = format!("topic {:?}: {e}", String::from_utf8_lossy(topic));
                        self.input.refuse(Malformed::Undecodable, &peer(), &detail);
                        return Ok(());
                    }
                };
                // Counted before delivery, so whoever receives it sees it counted.
                self.input.handled();
                if !outbox.send(Publication { topic: topic.to_vec(), value }) {
                    tracing::debug!(peer = %peer(), "subscriber stopping: publication discarded");
                }
            }
        }
        Ok(())
    }
}

/// A subscriber: an engine worker owning one SUB socket per endpoint, delivering valid
/// `[topic][payload]` publications and counting everything else.
///
/// It never stops for a publisher's bad input: empty messages, a frame count other than
/// two, messages over [`SubscriberBuilder::max_msg_bytes`] and (typed) payloads that do
/// not decode are refused, counted in [`Subscriber::input_stats`] and traced with the
/// endpoint of the socket they arrived on.
pub struct Subscriber<T> {
    handle: Handle,
    socks: Vec<SocketId>,
    endpoints: Vec<Endpoint>,
    rx: Receiver<Publication<T>>,
    input: Arc<InputCounters>,
    stopping: Arc<AtomicBool>,
    name: String,
    /// Always `Some` until `stop`; dropped after `Drop` has set `stopping`.
    worker: Option<Worker>,
}

impl<T> std::fmt::Debug for Subscriber<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber")
            .field("name", &self.name)
            .field("endpoints", &self.endpoints.iter().map(ToString::to_string).collect::<Vec<_>>())
            .finish()
    }
}

impl Subscriber<Vec<u8>> {
    /// Starts configuring a subscriber.
    pub fn builder() -> SubscriberBuilder {
        SubscriberBuilder::default()
    }
}

impl<T> Subscriber<T> {
    /// The endpoints its SUB sockets bound or connected to, in the builder's order.
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// The next publication, waiting for as long as it takes.
    ///
    /// # Errors
    /// [`Error::Stopped`] when the subscriber has stopped or delivers to a callback.
    pub fn recv(&self) -> Result<Publication<T>> {
        self.rx.recv().map_err(|_| self.gone())
    }

    /// The next publication, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`Error::Timeout`]; [`Error::Stopped`] as for [`Subscriber::recv`].
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Publication<T>> {
        self.rx.recv_timeout(timeout).map_err(|e| match e {
            RecvTimeoutError::Timeout => Error::Timeout {
                op: Operation::Recv,
                endpoint: format!("subscriber {}", self.name),
                ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            },
            RecvTimeoutError::Disconnected => self.gone(),
        })
    }

    /// A publication if one is waiting.
    pub fn try_recv(&self) -> Option<Publication<T>> {
        self.rx.try_recv().ok()
    }

    /// The channel itself, for `crossbeam_channel::select!` over several subscribers.
    pub fn receiver(&self) -> &Receiver<Publication<T>> {
        &self.rx
    }

    fn gone(&self) -> Error {
        Error::Stopped(format!(
            "subscriber {} has stopped, or delivers to its spawn_with callback",
            self.name
        ))
    }

    /// Adds a topic prefix on every SUB socket; returns once the worker has applied it.
    /// The publisher learns of it asynchronously: wait with [`Publisher::wait_topic`].
    ///
    /// # Errors
    /// [`Error::Stopped`]; [`Error::Timeout`] if the worker did not answer within 5 s.
    pub fn subscribe(&self, prefix: &[u8]) -> Result<()> {
        self.control(prefix, true)
    }

    /// Removes a topic prefix from every SUB socket; returns once the worker has applied it.
    /// Publications already queued for it still arrive.
    ///
    /// # Errors
    /// As [`Subscriber::subscribe`].
    pub fn unsubscribe(&self, prefix: &[u8]) -> Result<()> {
        self.control(prefix, false)
    }

    fn control(&self, prefix: &[u8], on: bool) -> Result<()> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let socks = self.socks.clone();
        let prefix = prefix.to_vec();
        let sent = self.handle.run(move |ctx| {
            let res = socks.iter().try_for_each(|&s| {
                if on {
                    ctx.subscribe(s, &prefix)
                } else {
                    ctx.unsubscribe(s, &prefix)
                }
            });
            let _ = tx.send(res);
        });
        if !sent {
            return Err(self.gone());
        }
        match rx.recv_timeout(CONTROL_TIMEOUT) {
            Ok(res) => res,
            Err(RecvTimeoutError::Disconnected) => Err(self.gone()),
            Err(RecvTimeoutError::Timeout) => Err(Error::Timeout {
                op: Operation::SetOption,
                endpoint: format!("subscriber {}", self.name),
                ms: u64::try_from(CONTROL_TIMEOUT.as_millis()).unwrap_or(u64::MAX),
            }),
        }
    }

    /// What it received so far: publications handled and each kind of malformed input.
    pub fn input_stats(&self) -> InputStats {
        self.input.snapshot()
    }

    /// Stops the worker; returns the final input counts. Publications still in the channel
    /// are discarded with it.
    ///
    /// # Errors
    /// The worker panicked, or a socket error ended its loop.
    pub fn stop(mut self) -> Result<InputStats> {
        self.stopping.store(true, Ordering::Release);
        if let Some(worker) = self.worker.take() {
            worker.stop()?;
        }
        Ok(self.input.snapshot())
    }
}

impl<T> Drop for Subscriber<T> {
    fn drop(&mut self) {
        // Lets a worker blocked on a full channel see the stop that dropping `worker` sends.
        self.stopping.store(true, Ordering::Release);
    }
}
