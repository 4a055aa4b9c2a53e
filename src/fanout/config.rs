//! The fan-out's two configurations, one per side, with every default in one place.

use std::time::Duration;

use crate::config::{CoreId, SchedPolicy};
use crate::curve::Curve;
use crate::engine::IdleStrategy;
use crate::error::{Error, Result};
use crate::metrics::IntervalSender;

/// Largest payload one tick can carry: the wire format's length field is 16 bits.
pub const MAX_PAYLOAD: usize = u16::MAX as usize;

/// The first name that appears twice in `names`.
fn duplicate(names: &[String]) -> Option<&str> {
    let mut seen = std::collections::HashSet::new();
    names.iter().find(|n| !seen.insert(n.as_str())).map(String::as_str)
}

/// The default topics of both sides: `t0` … `t7`, what `ztick fanout` publishes and follows.
fn default_topics() -> Vec<String> {
    (0..8).map(|i| format!("t{i}")).collect()
}

/// Settings of a [`TickPublisher`](super::TickPublisher). Every field has a documented
/// default ([`Default`]); [`validate`](Self::validate) names the field at fault.
#[derive(Debug, Clone)]
pub struct PublisherConfig {
    /// Topic names, in the order [`TickPublisher::publish`](super::TickPublisher::publish)
    /// numbers them: 1 to 65,535 names of 1 to 255 bytes without a NUL. Default `t0` … `t7`.
    pub topics: Vec<String>,
    /// Groups the topics are spread over: topic `i` is in group `i % groups`, named by
    /// [`group_name`](super::group_name). A message carries ticks of one group and SUB
    /// sockets filter on the group. Default 1: every topic coalesces into one stream; as
    /// many groups as topics filters per topic inside libzmq, at the price of smaller batches.
    pub groups: usize,
    /// Most ticks coalesced into one message (1 to 65,535). Default 64.
    pub max_batch: usize,
    /// How long a tick may wait in an open batch for others to share its message.
    /// Default 0: each pass of the worker sends what arrived since the last one, so batches
    /// grow only when ticks arrive faster than one message per pass. A [`TickSource`]
    /// that paces itself (the synthetic feed of `ztick fanout`) coalesces by sleeping
    /// instead, and keeps this 0.
    ///
    /// [`TickSource`]: super::TickSource
    pub max_delay: Duration,
    /// Interval of the heartbeats that carry each topic's last sequence, so subscribers
    /// see a lost tail before the end. Default 100 ms.
    pub heartbeat: Duration,
    /// Send each tick as one single-frame message (`group 0x00 body`), for conflating
    /// subscribers (`ZMQ_CONFLATE` refuses multipart). Default false.
    pub single_frame: bool,
    /// How often the end-of-stream markers are repeated once the stream ends. Default 10 ms.
    pub eos_repeat: Duration,
    /// How long they are repeated at most; less once every connected subscriber has
    /// acknowledged (subscribers acknowledge through the side channel). Default 1 s.
    pub eos_linger: Duration,
    /// Send HWM of the feed socket, in messages. Default `None`: libzmq's 1000.
    pub hwm_msgs: Option<u32>,
    /// Ticks that may wait between the application and the worker before
    /// [`publish`](super::TickPublisher::publish) waits (and `try_publish` refuses).
    /// Default 4096.
    pub capacity: usize,
    /// The worker's idle strategy. Default [`IdleStrategy::BLOCK`].
    /// [`IdleStrategy::SpinToDeadline`] spins the last stretch to each time a paced
    /// [`TickSource`](super::TickSource) asks for (or, inline, to each
    /// [`serve_until_ns`](super::InlineTickPublisher::serve_until_ns) deadline) instead of
    /// waking a timer late.
    pub idle: IdleStrategy,
    /// The worker's core. Default: not pinned.
    pub pin: Option<CoreId>,
    /// The worker thread's scheduling policy (see [`WorkerBuilder::sched`]: refused by the
    /// OS, it falls back to the default with a warning). Default [`SchedPolicy::Other`].
    ///
    /// [`WorkerBuilder::sched`]: crate::WorkerBuilder::sched
    pub sched: SchedPolicy,
    /// The CURVE server role of the feed and side-channel sockets. Default none. Who may
    /// connect is decided by a [`ZapHandler`](crate::zap::ZapHandler) on the same engine,
    /// started before the publisher.
    pub curve: Option<Curve>,
    /// The ZAP domain the CURVE server sockets ask that handler about (give the handler's
    /// policy the same [`ZapPolicy::domain`](crate::zap::ZapPolicy::domain)). Set, the
    /// publisher fails closed: while no handler runs nobody is admitted
    /// (`ZMQ_ZAP_ENFORCE_DOMAIN`). Default none (libzmq's: a publisher whose handler has
    /// stopped admits any client that knows its key).
    pub zap_domain: Option<String>,
    /// Bytes of the retransmit ring that answers subscribers' repair requests (NAKs) with
    /// the ticks it still holds: each takes 28 B plus its payload (and 8 B of index beside
    /// the ring), so the default 64 MiB holds the last 729,444 ticks of 64 B. 0 turns repair
    /// off (requests are answered "gone"). Needs the side channel.
    pub retransmit_ring_bytes: usize,
    /// How soon the kernel drops a feed or side-channel tcp connection whose peer is gone
    /// (host dead, network away), freeing its queue: TCP keepalive probes an idle one and
    /// `TCP_USER_TIMEOUT` ends one whose sent data goes unacknowledged for this long.
    /// Default 3 s; `None`: off. Not ZMTP heartbeats, with which a peer that resets the
    /// connection of a reader that fell behind aborts libzmq 4.3.4 and 4.3.5
    /// ([`SocketOptions::heartbeat`](crate::SocketOptions::heartbeat)).
    pub dead_peer_timeout: Option<Duration>,
}

impl Default for PublisherConfig {
    fn default() -> Self {
        PublisherConfig {
            topics: default_topics(),
            groups: 1,
            max_batch: 64,
            max_delay: Duration::ZERO,
            heartbeat: Duration::from_millis(100),
            single_frame: false,
            eos_repeat: Duration::from_millis(10),
            eos_linger: Duration::from_secs(1),
            hwm_msgs: None,
            capacity: 4096,
            idle: IdleStrategy::BLOCK,
            pin: None,
            sched: SchedPolicy::Other,
            curve: None,
            zap_domain: None,
            retransmit_ring_bytes: 64 << 20,
            dead_peer_timeout: Some(Duration::from_secs(3)),
        }
    }
}

impl PublisherConfig {
    /// Checks every field; the error names the field, the value and what is accepted.
    ///
    /// # Errors
    /// [`Error::Config`] for the first field out of range.
    pub fn validate(&self) -> Result<()> {
        let topics = &self.topics;
        if topics.is_empty() || topics.len() > usize::from(u16::MAX) {
            return Err(Error::config("topics", topics.len(), "1 to 65535 topics"));
        }
        for t in topics {
            if t.is_empty() || t.len() > 255 || t.contains('\0') {
                return Err(Error::config("topic", t, "1 to 255 bytes without a NUL"));
            }
        }
        if let Some(d) = duplicate(topics) {
            return Err(Error::config("topics", d, "each topic once"));
        }
        if self.max_batch == 0 || self.max_batch > usize::from(u16::MAX) {
            return Err(Error::config("max_batch", self.max_batch, "1 to 65535 ticks"));
        }
        if self.groups == 0 || self.groups > topics.len() {
            return Err(Error::config(
                "groups",
                self.groups,
                format!("1 to the number of topics ({})", topics.len()),
            ));
        }
        if self.heartbeat.is_zero() {
            return Err(Error::config("heartbeat", "0", "a positive interval"));
        }
        if self.capacity == 0 {
            return Err(Error::config("capacity", 0, "at least 1 tick"));
        }
        Ok(())
    }
}

/// Settings of a [`TickSubscriber`](super::TickSubscriber). Every field has a documented
/// default ([`Default`]).
#[derive(Debug, Clone)]
pub struct SubscriberConfig {
    /// A name for reports and logs. Default `sub`.
    pub name: String,
    /// Topics to follow; ticks of other topics in the same group are skipped. Default
    /// `t0` … `t7`, the publisher's default.
    pub topics: Vec<String>,
    /// Group prefixes to subscribe to (see [`PublisherConfig::groups`]); they must cover
    /// `topics` ([`groups_of`](super::groups_of) computes them). Default: the empty prefix,
    /// every group.
    pub groups: Vec<String>,
    /// Join through a snapshot of each topic's last sequence and value (a late joiner then
    /// starts without a gap). Needs the publisher's side channel. Default false.
    pub snapshot_join: bool,
    /// Receive HWM of the feed socket, in messages. Default `None`: libzmq's 1000.
    pub hwm_msgs: Option<u32>,
    /// Keep only the latest message (`ZMQ_CONFLATE`; the publisher must send single
    /// frames, one group, no snapshot join). Default false.
    pub conflate: bool,
    /// Keep each topic's last value in the report ([`SubscriberReport::last_values`]):
    /// a copy per tick. Default false.
    ///
    /// [`SubscriberReport::last_values`]: super::SubscriberReport::last_values
    pub keep_last_values: bool,
    /// The worker's idle strategy. Default [`IdleStrategy::BLOCK`].
    pub idle: IdleStrategy,
    /// The worker's core. Default: not pinned.
    pub pin: Option<CoreId>,
    /// The worker thread's scheduling policy (see [`WorkerBuilder::sched`]: refused by the
    /// OS, it falls back to the default with a warning). Default [`SchedPolicy::Other`].
    ///
    /// [`WorkerBuilder::sched`]: crate::WorkerBuilder::sched
    pub sched: SchedPolicy,
    /// The CURVE client role for the feed and side-channel sockets. Default none.
    pub curve: Option<Curve>,
    /// How long the publisher may be silent (no tick, no heartbeat) before it is declared
    /// lost: the report then says `publisher_lost`, with everything known up to the last
    /// heartbeat. Counts from the first message. Default 1 s (ten heartbeats).
    pub liveness: Duration,
    /// After a lost publisher, wait for it (the same epoch coming back, or a new one on the
    /// same endpoint after a restart) instead of stopping. Default false.
    pub follow: bool,
    /// Ask the publisher's side channel for missing ticks (NAKs) and deliver them marked
    /// as repaired. Default true (without a side channel there is no one to ask).
    pub repair: bool,
    /// How long to wait for an answer to a repair request before asking again. Default
    /// 50 ms; requests while the publisher is silent do not count against the attempts.
    pub repair_timeout: Duration,
    /// How many times to ask for a missing range before it is lost for good. Default 5.
    pub repair_attempts: u32,
    /// How soon a dead publisher's tcp connection is dropped (and reconnected), as
    /// [`PublisherConfig::dead_peer_timeout`]. Default 3 s; `None`: off.
    pub dead_peer_timeout: Option<Duration>,
    /// How far past what a topic has shown its next sequence may jump before it is
    /// refused as implausible (counted, not believed): this many, plus four times the
    /// topic's own rate over the time since it last moved, so a publisher that went on
    /// through a partition is believed and one tick claiming sequence 2^64-2 is not.
    /// Default 2^20.
    pub max_seq_jump: u64,
    /// Where each one-second latency window goes when it closes (an interval log, the OTLP
    /// export), labelled with this stream's messaging attributes, which its `latency` span
    /// carries too. Default none: the window is only traced.
    pub intervals: Option<IntervalSender>,
}

impl Default for SubscriberConfig {
    fn default() -> Self {
        SubscriberConfig {
            name: "sub".into(),
            topics: default_topics(),
            groups: vec![String::new()],
            snapshot_join: false,
            hwm_msgs: None,
            conflate: false,
            keep_last_values: false,
            idle: IdleStrategy::BLOCK,
            pin: None,
            sched: SchedPolicy::Other,
            curve: None,
            liveness: Duration::from_secs(1),
            follow: false,
            repair: true,
            repair_timeout: Duration::from_millis(50),
            repair_attempts: 5,
            dead_peer_timeout: Some(Duration::from_secs(3)),
            max_seq_jump: 1 << 20,
            intervals: None,
        }
    }
}

impl SubscriberConfig {
    /// The defaults, following `topics`.
    pub fn for_topics<S: AsRef<str>>(topics: &[S]) -> SubscriberConfig {
        SubscriberConfig {
            topics: topics.iter().map(|t| t.as_ref().to_owned()).collect(),
            ..SubscriberConfig::default()
        }
    }

    /// Checks the fields against each other and against whether a side channel is given.
    ///
    /// # Errors
    /// [`Error::Config`] naming the field at fault.
    pub fn validate(&self, has_side_channel: bool) -> Result<()> {
        if self.topics.is_empty() {
            return Err(Error::config("subscriber topics", 0, "at least one topic"));
        }
        if self.conflate && (self.snapshot_join || self.groups.len() != 1) {
            return Err(Error::config(
                "conflate",
                "on",
                "exactly one group and no snapshot join (a conflating socket keeps one subscription)",
            ));
        }
        if self.liveness < Duration::from_millis(1) {
            return Err(Error::config("liveness", format!("{:?}", self.liveness), "at least 1 ms, e.g. 1 s"));
        }
        if self.repair && (self.repair_attempts == 0 || self.repair_timeout < Duration::from_millis(1)) {
            return Err(Error::config(
                "repair_attempts / repair_timeout",
                format!("{} / {:?}", self.repair_attempts, self.repair_timeout),
                "at least 1 attempt of at least 1 ms (or repair off)",
            ));
        }
        if let Some(d) = duplicate(&self.topics) {
            return Err(Error::config("subscriber topics", d, "each topic once"));
        }
        if self.snapshot_join && !has_side_channel {
            return Err(Error::config(
                "snapshot_join",
                "on",
                "the publisher's side-channel endpoint to ask (--snapshot ENDPOINT)",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_bad_fields_are_named() {
        assert!(PublisherConfig::default().validate().is_ok());
        let bad = |c: PublisherConfig| c.validate().unwrap_err().to_string();
        assert!(bad(PublisherConfig { topics: vec![], ..Default::default() }).contains("topics"));
        assert!(bad(PublisherConfig { topics: vec!["a\0".into()], ..Default::default() }).contains("NUL"));
        assert!(bad(PublisherConfig { max_batch: 0, ..Default::default() }).contains("max_batch"));
        assert!(bad(PublisherConfig { groups: 9, ..Default::default() }).contains("groups"));
        assert!(
            bad(PublisherConfig { heartbeat: Duration::ZERO, ..Default::default() }).contains("heartbeat")
        );
        assert!(bad(PublisherConfig { capacity: 0, ..Default::default() }).contains("capacity"));

        assert!(SubscriberConfig::default().validate(false).is_ok());
        let join = SubscriberConfig { snapshot_join: true, ..Default::default() };
        assert!(join.validate(false).unwrap_err().to_string().contains("side-channel"));
        assert!(join.validate(true).is_ok());
        let conflate =
            SubscriberConfig { conflate: true, groups: vec!["a".into(), "b".into()], ..Default::default() };
        assert!(conflate.validate(true).is_err());
    }
}
