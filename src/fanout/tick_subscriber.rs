//! The app-driven subscriber: the fan-out subscriber's accounting (sequences, gaps, ends,
//! latency), with every tick handed to the application, by callback on the worker thread or
//! through a bounded channel the application polls.

use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};

use super::subscriber::Sink;
use super::{start_subscriber_with, SubscriberConfig, SubscriberReport, SubscriberRun};
use crate::engine::Engine;
use crate::error::{Error, Result};

/// A tick as delivered, borrowing the received message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered<'a> {
    /// Its topic.
    pub topic: &'a str,
    /// The topic's position in [`SubscriberConfig::topics`].
    pub topic_index: usize,
    /// Its per-topic sequence, from 1.
    pub seq: u64,
    /// CLOCK_MONOTONIC ns when the publisher sent its message.
    pub sent_ns: u64,
    /// CLOCK_MONOTONIC ns when the tick was handed to a [`TickPublisher`](super::TickPublisher)
    /// (or was due, in a paced synthetic feed); 0 when unknown.
    pub intended_ns: u64,
    /// CLOCK_MONOTONIC ns when its message was received.
    pub received_ns: u64,
    /// The publisher's bytes.
    pub payload: &'a [u8],
}

/// What an app-driven subscriber hands the application, in stream order. A tick is
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
        /// Its position in [`SubscriberConfig::topics`].
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
        /// Its position in [`SubscriberConfig::topics`].
        topic_index: usize,
        /// The topic's final sequence (0: it published nothing).
        last_seq: u64,
    },
}

/// An owned [`Event`], as the channel of [`TickSubscriber::with_channel`] carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnedEvent {
    /// A tick.
    Tick(OwnedTick),
    /// Lost sequences, as [`Event::Gap`].
    Gap {
        /// The topic.
        topic: Arc<str>,
        /// Its position in [`SubscriberConfig::topics`].
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
        /// Its position in [`SubscriberConfig::topics`].
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
    /// The topic's position in [`SubscriberConfig::topics`].
    pub topic_index: usize,
    /// Its per-topic sequence.
    pub seq: u64,
    /// CLOCK_MONOTONIC ns when the publisher sent it.
    pub sent_ns: u64,
    /// CLOCK_MONOTONIC ns when it was handed to the publisher; 0 when unknown.
    pub intended_ns: u64,
    /// CLOCK_MONOTONIC ns when it was received.
    pub received_ns: u64,
    /// The publisher's bytes (a recycled buffer: see [`TickSubscriber::recycle`]).
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

/// A fan-out subscriber that hands what it receives to the application.
///
/// It connects like [`SubscriberRun`] (hello subscription, groups, end acknowledgement when
/// it has the snapshot endpoint) and keeps the same accounting, returned by
/// [`finish`](Self::finish); in addition every in-order tick, every gap and every topic's
/// end is delivered as an [`Event`]. It stops by itself once every topic has ended.
/// Joining through a snapshot is not offered here (use [`SubscriberRun`]).
pub struct TickSubscriber {
    /// Taken (dropped) before the worker is stopped, so a worker waiting for room in a full
    /// channel is released.
    events: Option<Receiver<OwnedEvent>>,
    free: Option<Sender<Vec<u8>>>,
    run: Option<SubscriberRun>,
}

impl std::fmt::Debug for TickSubscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TickSubscriber")
            .field("run", &self.run)
            .field("channel", &self.events.is_some())
            .finish()
    }
}

fn check(cfg: &SubscriberConfig) -> Result<()> {
    if cfg.snapshot {
        return Err(Error::config(
            "snapshot",
            "on",
            "no snapshot join for an app-driven subscriber (its held updates keep no payloads); use SubscriberRun",
        ));
    }
    Ok(())
}

impl TickSubscriber {
    /// Starts a subscriber on its own worker of `engine` that calls `f` with every event,
    /// on the worker thread (no hop: keep it short, or the socket's HWM fills and the
    /// publisher drops, which then shows as gaps).
    ///
    /// # Errors
    /// A configuration [`SubscriberRun::start`] refuses, a snapshot join, or a socket
    /// that could not connect.
    pub fn with_callback(
        engine: &Engine,
        cfg: &SubscriberConfig,
        f: impl FnMut(&Event<'_>) + Send + 'static,
    ) -> Result<TickSubscriber> {
        check(cfg)?;
        let run = start_subscriber_with(engine, cfg, Some(Box::new(f)))?;
        Ok(TickSubscriber { events: None, free: None, run: Some(run) })
    }

    /// Starts a subscriber whose events wait in a channel of `capacity` for
    /// [`recv_timeout`](Self::recv_timeout) and [`try_recv`](Self::try_recv). A full
    /// channel makes the worker wait, which pushes back on the socket's HWM (a publisher
    /// then drops, and the drops arrive as gaps).
    ///
    /// # Errors
    /// As [`with_callback`](Self::with_callback); a `capacity` of 0.
    pub fn with_channel(engine: &Engine, cfg: &SubscriberConfig, capacity: usize) -> Result<TickSubscriber> {
        check(cfg)?;
        if capacity == 0 {
            return Err(Error::config("capacity", 0, "at least 1 event"));
        }
        let (tx, rx) = crossbeam_channel::bounded(capacity);
        let (free_tx, free_rx) = crossbeam_channel::bounded::<Vec<u8>>(capacity.min(1024));
        let topics: Vec<Arc<str>> = cfg.topics.iter().map(|t| Arc::from(t.as_str())).collect();
        let sink: Sink = Box::new(move |ev: &Event<'_>| {
            let owned = match *ev {
                Event::Tick(t) => {
                    let mut payload = free_rx.try_recv().unwrap_or_default();
                    payload.clear();
                    payload.extend_from_slice(t.payload);
                    OwnedEvent::Tick(OwnedTick {
                        topic: Arc::clone(&topics[t.topic_index]),
                        topic_index: t.topic_index,
                        seq: t.seq,
                        sent_ns: t.sent_ns,
                        intended_ns: t.intended_ns,
                        received_ns: t.received_ns,
                        payload,
                    })
                }
                Event::Gap { topic_index, first, last, .. } => {
                    OwnedEvent::Gap { topic: Arc::clone(&topics[topic_index]), topic_index, first, last }
                }
                Event::End { topic_index, last_seq, .. } => {
                    OwnedEvent::End { topic: Arc::clone(&topics[topic_index]), topic_index, last_seq }
                }
            };
            // Fails only once the application has let go of the channel (finish, drop):
            // the accounting goes on without it.
            let _ = tx.send(owned);
        });
        let run = start_subscriber_with(engine, cfg, Some(sink))?;
        Ok(TickSubscriber { events: Some(rx), free: Some(free_tx), run: Some(run) })
    }

    /// The next event, waiting at most `timeout`.
    ///
    /// # Errors
    /// `Timeout` when none came; `Disconnected` once the subscriber has stopped (every
    /// topic ended) and every event was received, and always for a callback subscriber.
    pub fn recv_timeout(&self, timeout: Duration) -> std::result::Result<OwnedEvent, RecvTimeoutError> {
        match &self.events {
            Some(rx) => rx.recv_timeout(timeout),
            None => Err(RecvTimeoutError::Disconnected),
        }
    }

    /// The next event if one is waiting.
    ///
    /// # Errors
    /// `Empty`, or `Disconnected` as for [`recv_timeout`](Self::recv_timeout).
    pub fn try_recv(&self) -> std::result::Result<OwnedEvent, TryRecvError> {
        match &self.events {
            Some(rx) => rx.try_recv(),
            None => Err(TryRecvError::Disconnected),
        }
    }

    /// Gives a tick's payload buffer back for a later tick, so a steady stream allocates
    /// nothing (optional: a dropped event is simply freed).
    pub fn recycle(&self, event: OwnedEvent) {
        if let (OwnedEvent::Tick(t), Some(free)) = (event, &self.free) {
            let _ = free.try_send(t.payload);
        }
    }

    /// Ticks received so far (updated every 1024 ticks and every second).
    pub fn received(&self) -> u64 {
        self.run.as_ref().map_or(0, SubscriberRun::received)
    }

    /// Stops delivering events (those not yet received are discarded: receive until
    /// `Disconnected` first to have them all), waits up to `timeout` for the end of every
    /// topic, stops the subscriber and returns its accounting.
    ///
    /// # Errors
    /// A worker that panicked or failed; [`Error::Stopped`] when it ended without a report.
    pub fn finish(mut self, timeout: Duration) -> Result<SubscriberReport> {
        drop(self.events.take());
        match self.run.take() {
            Some(run) => run.finish(timeout),
            None => Err(Error::Stopped("the tick subscriber already finished".into())),
        }
    }
}

impl Drop for TickSubscriber {
    fn drop(&mut self) {
        // The channel first: a worker blocked on a full channel then sees its stop.
        drop(self.events.take());
        drop(self.run.take());
    }
}
