//! What a [`TickSubscriber`](super::TickSubscriber) hands the application: the publisher's
//! epochs, ticks in sequence, repaired ticks, the gaps found, each topic's end, and a
//! publisher gone silent.

use std::sync::Arc;

/// A tick as delivered, borrowing the received message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered<'a> {
    /// Its topic.
    pub topic: &'a str,
    /// The topic's position in [`SubscriberConfig::topics`](super::SubscriberConfig::topics).
    pub topic_index: usize,
    /// The publisher epoch it belongs to.
    pub epoch: u64,
    /// Its per-topic sequence within the epoch, from 1.
    pub seq: u64,
    /// CLOCK_MONOTONIC ns when the publisher first sent it.
    pub sent_ns: u64,
    /// CLOCK_MONOTONIC ns when the tick was handed to a [`TickPublisher`](super::TickPublisher)
    /// (or the time a [`TickSource`](super::TickSource) meant it to leave); 0 when unknown.
    pub intended_ns: u64,
    /// CLOCK_MONOTONIC ns when its message was received.
    pub received_ns: u64,
    /// True for a tick that arrived late, through repair, after a [`Event::Repairing`]
    /// announced its range: it comes after later ticks of its topic.
    pub repaired: bool,
    /// The publisher's bytes.
    pub payload: &'a [u8],
}

/// What a subscriber hands the application. Ticks of a topic come in sequence; a tick is
/// delivered once (duplicates and sequences already passed are not), repaired ticks
/// after the later ones they missed. Every sequence a publisher announced ends up as
/// exactly one `Tick`, inside exactly one `Gap`, or covered by the snapshot a late joiner
/// started from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event<'a> {
    /// A publisher epoch begins: a publisher started (or restarted) on the endpoint. The
    /// previous epoch, if any, is closed: its losses are all reported before this.
    Epoch {
        /// The new epoch.
        epoch: u64,
    },
    /// A tick.
    Tick(Delivered<'a>),
    /// Sequences `first..=last` of a topic did not arrive in order and were asked for
    /// again: each comes as a repaired `Tick`, or inside a later `Gap`.
    Repairing {
        /// The topic.
        topic: &'a str,
        /// Its position in [`SubscriberConfig::topics`](super::SubscriberConfig::topics).
        topic_index: usize,
        /// The publisher epoch.
        epoch: u64,
        /// First missing sequence.
        first: u64,
        /// Last missing sequence.
        last: u64,
    },
    /// Sequences `first..=last` of a topic are lost for good: skipped in the stream or
    /// announced by a heartbeat or end marker, and not (or no longer) repairable.
    Gap {
        /// The topic.
        topic: &'a str,
        /// Its position in [`SubscriberConfig::topics`](super::SubscriberConfig::topics).
        topic_index: usize,
        /// The publisher epoch.
        epoch: u64,
        /// First lost sequence.
        first: u64,
        /// Last lost sequence.
        last: u64,
    },
    /// The topic's end-of-stream marker: no tick follows `last_seq`.
    End {
        /// The topic.
        topic: &'a str,
        /// Its position in [`SubscriberConfig::topics`](super::SubscriberConfig::topics).
        topic_index: usize,
        /// The publisher epoch.
        epoch: u64,
        /// The topic's final sequence (0: it published nothing).
        last_seq: u64,
    },
    /// The publisher has been silent for longer than
    /// [`SubscriberConfig::liveness`](super::SubscriberConfig::liveness): everything it
    /// announced up to its last heartbeat is accounted for. Unless the subscriber follows,
    /// it stops.
    PublisherLost {
        /// The epoch that went silent.
        epoch: u64,
    },
}

/// An owned [`Event`], as the channel of
/// [`TickSubscriber::with_channel`](super::TickSubscriber::with_channel) carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OwnedEvent {
    /// A new epoch, as [`Event::Epoch`].
    Epoch {
        /// The new epoch.
        epoch: u64,
    },
    /// A tick.
    Tick(OwnedTick),
    /// A range being repaired, as [`Event::Repairing`].
    Repairing {
        /// The topic.
        topic: Arc<str>,
        /// Its position in [`SubscriberConfig::topics`](super::SubscriberConfig::topics).
        topic_index: usize,
        /// The publisher epoch.
        epoch: u64,
        /// First missing sequence.
        first: u64,
        /// Last missing sequence.
        last: u64,
    },
    /// Lost sequences, as [`Event::Gap`].
    Gap {
        /// The topic.
        topic: Arc<str>,
        /// Its position in [`SubscriberConfig::topics`](super::SubscriberConfig::topics).
        topic_index: usize,
        /// The publisher epoch.
        epoch: u64,
        /// First lost sequence.
        first: u64,
        /// Last lost sequence.
        last: u64,
    },
    /// A topic's end, as [`Event::End`].
    End {
        /// The topic.
        topic: Arc<str>,
        /// Its position in [`SubscriberConfig::topics`](super::SubscriberConfig::topics).
        topic_index: usize,
        /// The publisher epoch.
        epoch: u64,
        /// The topic's final sequence.
        last_seq: u64,
    },
    /// A silent publisher, as [`Event::PublisherLost`].
    PublisherLost {
        /// The epoch that went silent.
        epoch: u64,
    },
}

/// An owned [`Delivered`] tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedTick {
    /// Its topic.
    pub topic: Arc<str>,
    /// The topic's position in [`SubscriberConfig::topics`](super::SubscriberConfig::topics).
    pub topic_index: usize,
    /// Its publisher epoch.
    pub epoch: u64,
    /// Its per-topic sequence.
    pub seq: u64,
    /// CLOCK_MONOTONIC ns when the publisher first sent it.
    pub sent_ns: u64,
    /// CLOCK_MONOTONIC ns when it was handed to the publisher; 0 when unknown.
    pub intended_ns: u64,
    /// CLOCK_MONOTONIC ns when it was received.
    pub received_ns: u64,
    /// Whether it arrived through repair.
    pub repaired: bool,
    /// The publisher's bytes (a recycled buffer: see
    /// [`TickSubscriber::recycle`](super::TickSubscriber::recycle)).
    pub payload: Vec<u8>,
}

impl OwnedEvent {
    /// `event`, owned: the topic from `topics` (the subscriber's topic names, shared), a
    /// tick's payload copied into `payload` (a recycled buffer, cleared first).
    pub(crate) fn from_event(event: &Event<'_>, topics: &[Arc<str>], mut payload: Vec<u8>) -> OwnedEvent {
        let name = |i: usize| Arc::clone(&topics[i]);
        match *event {
            Event::Epoch { epoch } => OwnedEvent::Epoch { epoch },
            Event::Tick(t) => {
                payload.clear();
                payload.extend_from_slice(t.payload);
                OwnedEvent::Tick(OwnedTick {
                    topic: name(t.topic_index),
                    topic_index: t.topic_index,
                    epoch: t.epoch,
                    seq: t.seq,
                    sent_ns: t.sent_ns,
                    intended_ns: t.intended_ns,
                    received_ns: t.received_ns,
                    repaired: t.repaired,
                    payload,
                })
            }
            Event::Repairing { topic_index, epoch, first, last, .. } => {
                OwnedEvent::Repairing { topic: name(topic_index), topic_index, epoch, first, last }
            }
            Event::Gap { topic_index, epoch, first, last, .. } => {
                OwnedEvent::Gap { topic: name(topic_index), topic_index, epoch, first, last }
            }
            Event::End { topic_index, epoch, last_seq, .. } => {
                OwnedEvent::End { topic: name(topic_index), topic_index, epoch, last_seq }
            }
            Event::PublisherLost { epoch } => OwnedEvent::PublisherLost { epoch },
        }
    }

    /// The event, borrowed.
    pub fn as_event(&self) -> Event<'_> {
        match self {
            OwnedEvent::Epoch { epoch } => Event::Epoch { epoch: *epoch },
            OwnedEvent::Tick(t) => Event::Tick(Delivered {
                topic: &t.topic,
                topic_index: t.topic_index,
                epoch: t.epoch,
                seq: t.seq,
                sent_ns: t.sent_ns,
                intended_ns: t.intended_ns,
                received_ns: t.received_ns,
                repaired: t.repaired,
                payload: &t.payload,
            }),
            OwnedEvent::Repairing { topic, topic_index, epoch, first, last } => Event::Repairing {
                topic,
                topic_index: *topic_index,
                epoch: *epoch,
                first: *first,
                last: *last,
            },
            OwnedEvent::Gap { topic, topic_index, epoch, first, last } => {
                Event::Gap { topic, topic_index: *topic_index, epoch: *epoch, first: *first, last: *last }
            }
            OwnedEvent::End { topic, topic_index, epoch, last_seq } => {
                Event::End { topic, topic_index: *topic_index, epoch: *epoch, last_seq: *last_seq }
            }
            OwnedEvent::PublisherLost { epoch } => Event::PublisherLost { epoch: *epoch },
        }
    }

    /// A tick's payload; empty for the other events.
    pub fn payload(&self) -> &[u8] {
        match self {
            OwnedEvent::Tick(t) => &t.payload,
            _ => &[],
        }
    }
}
