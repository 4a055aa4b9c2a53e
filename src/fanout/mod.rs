//! Tick fan-out: one publisher that sequences, coalesces and announces ticks; subscribers
//! that find every gap and time every tick; a side channel for late joiners' snapshots and
//! end acknowledgements.
//!
//! libzmq's PUB drops silently at its HWM and a late subscriber misses what came before;
//! here both are made visible (per-topic sequence gaps, with exact ranges, closed by
//! heartbeats and end-of-stream markers that carry each topic's last sequence) and
//! recoverable (the snapshot, after the guide's "Clone" pattern). The wire format is in
//! [`wire`].
//!
//! The publisher's socket is an XPUB, so it sees subscriptions arrive: each subscriber also
//! subscribes to a unique hello prefix, which tells the publisher that subscriber's pipe is
//! attached ([`TickPublisher::wait_subscribers`]: no slow-joiner loss), and a snapshot is
//! only answered once the asker's subscription is in, so no update can fall between
//! snapshot and stream.
//!
//! One publisher stream in two shells: [`TickPublisher`], on its own worker, fed from any
//! thread or by a [`TickSource`] on that worker; and [`InlineTickPublisher`], its sockets on
//! the application's thread, which saves the hand-off between threads when the application
//! can serve the stream itself. One subscriber type, [`TickSubscriber`], delivering by
//! callback, by channel, or keeping only its report, on a worker of its own or several on
//! one worker ([`TickSubscriber::start_shared`] with a [`SubscriberSpec`] each). Both sides
//! are thin shells around sans-IO cores (the publisher's stream and timers, the
//! subscriber's ledger) that take the time as a parameter and are unit-tested without
//! sockets.
//!
//! ```
//! use std::time::Duration;
//! use ztick::fanout::{PublisherConfig, SubscriberConfig, TickPublisher, TickSubscriber};
//! use ztick::{Endpoint, Engine};
//!
//! let engine = Engine::new()?;
//! let publisher = TickPublisher::start(
//!     &engine,
//!     Endpoint::unique_inproc("feed"),
//!     Some(Endpoint::unique_inproc("feed-side")),
//!     PublisherConfig::default(),
//! )?;
//! let subscriber = TickSubscriber::start(
//!     &engine,
//!     publisher.endpoint().clone(),
//!     publisher.side_endpoint().cloned(),
//!     SubscriberConfig::default(),
//! )?;
//! assert!(publisher.wait_subscribers(1, Duration::from_secs(10)));
//! for i in 0..1000 {
//!     publisher.publish(i % 8, b"px").unwrap();
//! }
//! let published = publisher.finish(Duration::from_secs(5))?;
//! let seen = subscriber.finish(Duration::from_secs(5))?;
//! assert_eq!(seen.received() + seen.missing(), published.published);
//! # Ok::<(), ztick::Error>(())
//! ```

mod config;
mod event;
mod inline;
mod ledger;
mod peers;
mod publisher;
mod report;
mod ring;
mod schedule;
mod seq;
mod stream;
mod subscriber;
pub mod wire;

pub use config::{PublisherConfig, SubscriberConfig, MAX_PAYLOAD};
pub use event::{Delivered, Event, OwnedEvent, OwnedTick};
pub use inline::InlineTickPublisher;
pub use ledger::{MAX_EPOCHS, SLOW_GAP_RATE};
pub use publisher::{PublishError, SourceOut, SourcePoll, TickPublisher, TickSource};
pub use report::{
    ClockSync, EpochOutcome, EpochReport, Outcome, PublisherReport, SubscriberReport, TopicGap,
};
pub use seq::{Gap, SeqOutcome, SeqTracker, MAX_GAPS_KEPT, MAX_PENDING};
pub use subscriber::{SubscriberSpec, TickSubscriber};
// The sans-IO cores, for the fuzz targets (`crate::fuzz_hooks`) and the property test
// (`crate::accounting_props`).
#[cfg(any(test, fuzzing))]
pub(crate) use ledger::Ledger;
#[cfg(fuzzing)]
#[doc(hidden)]
pub use stream::Sent;
#[cfg(fuzzing)]
pub(crate) use stream::Stream;

/// The name of group `g`: the ZeroMQ topic frame its messages carry. The trailing dot
/// keeps names prefix-free (SUB filters match prefixes: `g1` would also match `g10`).
pub fn group_name(g: usize) -> String {
    format!("g{g}.")
}

/// The group prefixes a subscriber following `topics` subscribes to, for a feed of `all`
/// topics in `groups` groups ([`PublisherConfig::groups`]).
pub fn groups_of(topics: &[String], all: &[String], groups: usize) -> Vec<String> {
    let groups = groups.clamp(1, all.len().max(1));
    let mut gs: Vec<usize> =
        topics.iter().filter_map(|t| all.iter().position(|a| a == t)).map(|i| i % groups).collect();
    gs.sort_unstable();
    gs.dedup();
    gs.into_iter().map(group_name).collect()
}
