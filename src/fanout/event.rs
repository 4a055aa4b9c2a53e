//! What a [`TickSubscriber`](super::TickSubscriber) hands the application: ticks in
//! sequence, the gaps found, and each topic's end.

use std::sync::Arc;

/// A tick as delivered, borrowing the received message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered<'a> {
    /// Its topic.
    pub topic: &'a str,
    /// The topic's position in [`SubscriberConfig::topics`](super::SubscriberConfig::topics).
    pub topic_index: usize,
    /// Its per-topic sequence, from 1.
    pub seq: u64,
    /// CLOCK_MONOTONIC ns when the publisher sent its message.
    pub sent_ns: u64,
    /// CLOCK_MONOTONIC ns when the tick was handed to a [`TickPublisher`](super::TickPublisher)
    /// (or the time a [`TickSource`](super::TickSource) meant it to leave); 0 when unknown.
    pub intended_ns: u64,
    /// CLOCK_MONOTONIC ns when its message was received.
    pub received_ns: u64,
    /// The publisher's bytes.
    pub payload: &'a [u8],
}

/// What a subscriber hands the application, in stream order. A tick is
/// delivered once, in sequence: duplicates and sequences already passed are not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// A tick.
    Tick(Delivered<'a>),
    /// Sequences `first..=last` of a topic are lost: seen skipped by a later tick, or
    /// announced by a heartbeat or end marker and never received.
    Gap {
        /// The topic.
        topic: &'a str,
        /// Its position in [`SubscriberConfig::topics`](super::SubscriberConfig::topics).
        topic_index: usize,
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
        /// The topic's final sequence (0: it published nothing).
        last_seq: u64,
    },
}

/// An owned [`Event`], as the channel of [`TickSubscriber::with_channel`](super::TickSubscriber::with_channel) carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnedEvent {
    /// A tick.
    Tick(OwnedTick),
    /// Lost sequences, as [`Event::Gap`].
    Gap {
        /// The topic.
        topic: Arc<str>,
        /// Its position in [`SubscriberConfig::topics`](super::SubscriberConfig::topics).
        topic_index: usize,
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
        /// The topic's final sequence.
        last_seq: u64,
    },
}

/// An owned [`Delivered`] tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedTick {
    /// Its topic.
    pub topic: Arc<str>,
    /// The topic's position in [`SubscriberConfig::topics`](super::SubscriberConfig::topics).
    pub topic_index: usize,
    /// Its per-topic sequence.
    pub seq: u64,
    /// CLOCK_MONOTONIC ns when the publisher sent it.
    pub sent_ns: u64,
    /// CLOCK_MONOTONIC ns when it was handed to the publisher; 0 when unknown.
    pub intended_ns: u64,
    /// CLOCK_MONOTONIC ns when it was received.
    pub received_ns: u64,
    /// The publisher's bytes (a recycled buffer: see [`TickSubscriber::recycle`](super::TickSubscriber::recycle)).
    pub payload: Vec<u8>,
}

impl OwnedEvent {
    /// The event, borrowed.
    pub fn as_event(&self) -> Event<'_> {
        match self {
            OwnedEvent::Tick(t) => Event::Tick(Delivered {
                topic: &t.topic,
                topic_index: t.topic_index,
                seq: t.seq,
                sent_ns: t.sent_ns,
                intended_ns: t.intended_ns,
                received_ns: t.received_ns,
                payload: &t.payload,
            }),
            OwnedEvent::Gap { topic, topic_index, first, last } => {
                Event::Gap { topic, topic_index: *topic_index, first: *first, last: *last }
            }
            OwnedEvent::End { topic, topic_index, last_seq } => {
                Event::End { topic, topic_index: *topic_index, last_seq: *last_seq }
            }
        }
    }

    /// A tick's payload; empty for gaps and ends.
    pub fn payload(&self) -> &[u8] {
        match self {
            OwnedEvent::Tick(t) => &t.payload,
            _ => &[],
        }
    }
}
