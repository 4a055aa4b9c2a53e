//! The messaging patterns of the ZeroMQ guide, on the engine and on caller-thread sockets:
//! request/reply, publish/subscribe, pipeline, DEALER/ROUTER, PAIR, and the reliable
//! request/reply of the guide's chapter 4 (Lazy, Simple and Paranoid Pirate).
//!
//! Servers (replier, router, subscriber, puller) run on engine workers and never stop for a
//! peer's bad input: each malformed message is counted in [`InputStats`] and traced with
//! the peer's context, and the next one is served. Clients that wait for an answer use a
//! [`Socket`] on the calling thread, which saves a hop; its [`PeerMonitor`] tells when its
//! peers arrive and leave.

mod envelope;
mod input;
mod ledger;
mod monitor;
mod pair;
mod pipeline;
mod pirate;
mod pubsub;
mod reqrep;
mod router;
mod socket;

pub use input::{InputCounters, InputStats, Malformed};
pub use monitor::{PeerEvent, PeerMonitor};
pub use pair::{pair, PairEnd};
pub use pipeline::{
    Done, PipelineWorker, Sink, SinkReport, StageConfig, Task, ToSink, Ventilator, MAX_WORKER_NAME_BYTES,
};
pub use pirate::{
    Heartbeat, PirateQueue, PirateQueueBuilder, PirateWorker, PirateWorkerBuilder, PirateWorkerStats,
    QueueStats, HEARTBEAT, READY,
};
pub use pubsub::{
    Publication, Publisher, PublisherBuilder, PublisherStats, SlowSubscriber, Subscriber, SubscriberBuilder,
    Subscriptions, DEFAULT_MAX_MSG_BYTES,
};
pub use reqrep::{Replier, ReplierBuilder, Requester, RequesterBuilder, RequesterStats};
pub use router::{Peer, Replies, Router, RouterBuilder, RouterSender};
pub use socket::Socket;
// The envelope parsers, for the fuzz targets (see `crate::fuzz_hooks`).
#[cfg(fuzzing)]
pub(crate) use {
    envelope::{body_start, reply_parts, PeerId},
    input::check_body,
};
