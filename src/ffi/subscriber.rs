//! `ztick_subscriber`: ticks handed to C, by callback or by polling (`TickSubscriber`).

use std::ffi::{c_char, c_void, CString};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::RecvTimeoutError;

use super::engine::ztick_engine;
use super::recorder::ztick_recorder;
use super::{arg, arg_mut, arg_str, arg_strs, c_string, guard, ztick_result, Failure};
use crate::endpoint::Endpoint;
use crate::fanout::{Event, Outcome, OwnedEvent, SubscriberConfig, TickSubscriber};

/// A tick subscriber on its own worker.
pub struct ztick_subscriber {
    /// `None` once finished.
    inner: Option<TickSubscriber>,
    /// The topics as C strings, for `ztick_event.topic`.
    topics: Arc<Vec<CString>>,
    /// The event last returned by `ztick_subscriber_poll`, which its pointers borrow.
    current: Option<OwnedEvent>,
}

/// What a `ztick_event` reports.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ztick_event_kind {
    /// A tick, in sequence: `seq`, times and payload are set.
    Tick = 0,
    /// Sequences `seq` to `last` of the topic were lost.
    Gap = 1,
    /// The topic ended: `seq` was its final sequence (0: it published nothing).
    End = 2,
    /// Sequences `seq` to `last` did not arrive in order and were asked for again: each
    /// comes later as a tick with `repaired` set, or inside a gap.
    Repairing = 3,
    /// A publisher epoch begins (`epoch`): a publisher started or restarted.
    Epoch = 4,
    /// The publisher of `epoch` went silent past the liveness timeout; unless the
    /// subscriber follows, it stops.
    PublisherLost = 5,
}

/// How a subscriber's run ended (`ztick_subscriber_stats.outcome`).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ztick_outcome {
    /// Every topic's end marker arrived and every repair was settled.
    Complete = 0,
    /// The publisher went silent past the liveness timeout.
    PublisherLost = 1,
    /// `ztick_subscriber_finish` waited out its timeout first.
    Timeout = 2,
    /// Stopped before the stream ended.
    #[default]
    Stopped = 3,
}

/// One event of a subscriber. The pointers are valid during the callback, or until the
/// next `ztick_subscriber_poll`, `_finish` or `_free` of the subscriber that filled it.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ztick_event {
    /// Tick, gap or end.
    pub kind: ztick_event_kind,
    /// The topic, NUL-terminated; NULL for the events of no topic (epoch, publisher lost).
    pub topic: *const c_char,
    /// The topic's index in the array given to `ztick_subscriber_new`.
    pub topic_index: usize,
    /// Tick: its sequence (from 1). Gap: the first lost sequence. End: the last sequence.
    pub seq: u64,
    /// Gap: the last lost sequence. Otherwise equal to `seq`.
    pub last: u64,
    /// Tick: CLOCK_MONOTONIC ns when the publisher sent it; otherwise 0.
    pub sent_ns: u64,
    /// Tick: CLOCK_MONOTONIC ns when it was handed to the publisher (0 if unknown).
    pub intended_ns: u64,
    /// Tick: CLOCK_MONOTONIC ns when it was received; otherwise 0.
    pub received_ns: u64,
    /// Tick: the payload (NULL when empty); otherwise NULL.
    pub payload: *const u8,
    /// Tick: payload bytes; otherwise 0.
    pub payload_len: usize,
    /// The publisher epoch the event belongs to.
    pub epoch: u64,
    /// Tick: whether it arrived through repair (late, after later ticks of its topic).
    pub repaired: bool,
}

/// Called on the subscriber's worker thread with each event (see `ztick_event` for how
/// long its pointers live). Keep it short: while it runs, nothing is received.
pub type ztick_event_callback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, event: *const ztick_event)>;

/// Settings of a subscriber. Fill with `ztick_subscriber_options_init`, then change fields.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ztick_subscriber_options {
    /// Group prefixes to subscribe to (`"g0."` …), `group_count` of them; NULL or 0 for
    /// every group. Default NULL.
    pub groups: *const *const c_char,
    /// Number of `groups`. Default 0.
    pub group_count: usize,
    /// The publisher's snapshot/acknowledgement endpoint, to acknowledge the end (so the
    /// publisher stops repeating it); NULL for none. Default NULL.
    pub snapshot_endpoint: *const c_char,
    /// Receive HWM in messages; 0 keeps libzmq's (1000). Default 0.
    pub hwm: u32,
    /// Polling only: events that may wait for `ztick_subscriber_poll`; a full queue makes
    /// the subscriber stop reading (its publisher then drops, and the drops arrive as
    /// gaps). Default 1024.
    pub capacity: u32,
    /// Milliseconds of publisher silence before it is declared lost; 0 keeps the default,
    /// 1000.
    pub liveness_ms: u32,
    /// After a lost publisher, wait for it (or its restart) instead of stopping. Default
    /// false.
    pub follow: bool,
    /// Ask the side channel (`snapshot_endpoint`) for missing ticks. Default true.
    pub repair: bool,
}

/// What a subscriber saw, filled by `ztick_subscriber_finish`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct ztick_subscriber_stats {
    /// Ticks received in sequence.
    pub received: u64,
    /// Ticks known lost.
    pub missing: u64,
    /// Runs of lost ticks.
    pub gaps: u64,
    /// Messages that could not be decoded.
    pub decode_errors: u64,
    /// Whether every topic's end marker arrived.
    pub complete: bool,
    /// Ticks that arrived through repair.
    pub repaired: u64,
    /// How the run ended.
    pub outcome: ztick_outcome,
    /// Publisher epochs seen.
    pub epochs: u64,
}

fn defaults() -> ztick_subscriber_options {
    ztick_subscriber_options {
        groups: std::ptr::null(),
        group_count: 0,
        snapshot_endpoint: std::ptr::null(),
        hwm: 0,
        capacity: 1024,
        liveness_ms: 1000,
        follow: false,
        repair: true,
    }
}

/// Fills `options` with the defaults.
///
/// # Safety
///
/// `options` must be NULL or valid for writing a `ztick_subscriber_options`.
#[no_mangle]
pub unsafe extern "C" fn ztick_subscriber_options_init(
    options: *mut ztick_subscriber_options,
) -> ztick_result {
    guard(|| {
        // SAFETY: NULL or writable, by the caller's contract.
        *unsafe { arg_mut(options, "options") }? = defaults();
        Ok(())
    })
}

/// The C caller's `user_data`, carried to the worker thread.
struct UserData(*mut c_void);

// SAFETY: the header's contract for `ztick_subscriber_new`: `user_data` may be used from the
// subscriber's worker thread, and only the callback uses it there.
unsafe impl Send for UserData {}

fn c_event(ev: &Event<'_>, topics: &[CString]) -> ztick_event {
    let topic = |k: usize| topics.get(k).map_or(std::ptr::null(), |t| t.as_ptr());
    let blank = |kind, k, seq, last| ztick_event {
        kind,
        topic: topic(k),
        topic_index: k,
        seq,
        last,
        sent_ns: 0,
        intended_ns: 0,
        received_ns: 0,
        payload: std::ptr::null(),
        payload_len: 0,
        epoch: 0,
        repaired: false,
    };
    let no_topic = |kind, epoch| ztick_event { topic: std::ptr::null(), epoch, ..blank(kind, 0, 0, 0) };
    match *ev {
        Event::Tick(t) => ztick_event {
            sent_ns: t.sent_ns,
            intended_ns: t.intended_ns,
            received_ns: t.received_ns,
            payload: if t.payload.is_empty() { std::ptr::null() } else { t.payload.as_ptr() },
            payload_len: t.payload.len(),
            epoch: t.epoch,
            repaired: t.repaired,
            ..blank(ztick_event_kind::Tick, t.topic_index, t.seq, t.seq)
        },
        Event::Gap { topic_index, epoch, first, last, .. } => {
            ztick_event { epoch, ..blank(ztick_event_kind::Gap, topic_index, first, last) }
        }
        Event::Repairing { topic_index, epoch, first, last, .. } => {
            ztick_event { epoch, ..blank(ztick_event_kind::Repairing, topic_index, first, last) }
        }
        Event::End { topic_index, epoch, last_seq, .. } => {
            ztick_event { epoch, ..blank(ztick_event_kind::End, topic_index, last_seq, last_seq) }
        }
        Event::Epoch { epoch } => no_topic(ztick_event_kind::Epoch, epoch),
        Event::PublisherLost { epoch } => no_topic(ztick_event_kind::PublisherLost, epoch),
    }
}

/// Starts a subscriber on `engine`: connects a SUB socket to `endpoint` and follows the
/// `topic_count` topics given (ticks of other topics are skipped). With a `callback`, each
/// event is passed to it on the worker thread with `user_data`; with NULL, events queue for
/// `ztick_subscriber_poll`. The subscriber stops by itself once every topic has ended.
/// `options` may be NULL for the defaults. Free it with `ztick_subscriber_free`.
///
/// # Safety
///
/// `engine` must be a live engine; `endpoint` a NUL-terminated string; `topics` an array of
/// `topic_count` NUL-terminated strings; `options` NULL or initialised (its pointers NULL
/// or valid as documented); `subscriber_out` valid for writing a pointer. `user_data` must
/// be usable by `callback` on another thread until the subscriber is freed. The strings
/// are copied.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn ztick_subscriber_new(
    engine: *const ztick_engine,
    endpoint: *const c_char,
    topics: *const *const c_char,
    topic_count: usize,
    options: *const ztick_subscriber_options,
    callback: ztick_event_callback,
    user_data: *mut c_void,
    subscriber_out: *mut *mut ztick_subscriber,
) -> ztick_result {
    guard(|| {
        if subscriber_out.is_null() {
            return Err(Failure::null("subscriber_out"));
        }
        // SAFETY: each argument is NULL or valid as documented, by the caller's contract.
        let (engine, endpoint, topics) = unsafe {
            (arg(engine, "engine")?, arg_str(endpoint, "endpoint")?, arg_strs(topics, topic_count, "topics")?)
        };
        // SAFETY: NULL or an initialised options struct, by the caller's contract.
        let opts = match unsafe { options.as_ref() } {
            Some(o) => *o,
            None => defaults(),
        };
        // SAFETY: NULL/0 or `group_count` C strings, by the caller's contract.
        let groups = unsafe { arg_strs(opts.groups, opts.group_count, "options.groups") }?;
        let snapshot: Option<Endpoint> = match opts.snapshot_endpoint.is_null() {
            true => None,
            // SAFETY: not NULL: a C string by the caller's contract.
            false => Some(unsafe { arg_str(opts.snapshot_endpoint, "options.snapshot_endpoint") }?.parse()?),
        };
        let connect: Endpoint = endpoint.parse()?;
        let mut cfg = SubscriberConfig::for_topics(&topics);
        if !groups.is_empty() {
            cfg.groups = groups;
        }
        cfg.hwm_msgs = (opts.hwm > 0).then_some(opts.hwm);
        if opts.liveness_ms > 0 {
            cfg.liveness = Duration::from_millis(u64::from(opts.liveness_ms));
        }
        cfg.follow = opts.follow;
        cfg.repair = opts.repair;
        let c_topics = Arc::new(topics.iter().map(|t| c_string(t)).collect::<Vec<_>>());
        let inner = match callback {
            Some(f) => {
                let topics = Arc::clone(&c_topics);
                let user = UserData(user_data);
                TickSubscriber::with_callback(&engine.inner, connect, snapshot, cfg, move |ev| {
                    let user = &user;
                    let e = c_event(ev, &topics);
                    // SAFETY: the caller's callback, given its own user_data and an event
                    // whose pointers live through the call (the header's contract).
                    unsafe { f(user.0, &e) };
                })?
            }
            None => {
                TickSubscriber::with_channel(&engine.inner, connect, snapshot, cfg, opts.capacity as usize)?
            }
        };
        let handle = Box::new(ztick_subscriber { inner: Some(inner), topics: c_topics, current: None });
        // SAFETY: checked not NULL; writable by the caller's contract.
        unsafe { *subscriber_out = Box::into_raw(handle) };
        Ok(())
    })
}

/// Waits at most `timeout_ms` for the next event of a polling subscriber and fills
/// `event_out`: `ZTICK_RESULT_OK`; `ZTICK_RESULT_TIMEOUT` when none came;
/// `ZTICK_RESULT_STOPPED` once every topic has ended and every event was polled (and
/// always for a callback subscriber or a finished one).
///
/// # Safety
///
/// `subscriber` must be NULL or a live subscriber that no other thread uses during the
/// call; `event_out` valid for writing a `ztick_event`.
#[no_mangle]
pub unsafe extern "C" fn ztick_subscriber_poll(
    subscriber: *mut ztick_subscriber,
    timeout_ms: u32,
    event_out: *mut ztick_event,
) -> ztick_result {
    guard(|| {
        // SAFETY: NULL or live and used by this call only, by the caller's contract.
        let s = unsafe { arg_mut(subscriber, "subscriber") }?;
        // SAFETY: NULL or writable, by the caller's contract.
        let out = unsafe { arg_mut(event_out, "event_out") }?;
        let inner = s
            .inner
            .as_ref()
            .ok_or_else(|| Failure::new(ztick_result::Stopped, "the subscriber has finished"))?;
        // The previous event's buffer goes back for reuse: its pointers end here.
        if let Some(prev) = s.current.take() {
            inner.recycle(prev);
        }
        match inner.recv_timeout(Duration::from_millis(u64::from(timeout_ms))) {
            Ok(ev) => {
                *out = c_event(&ev.as_event(), &s.topics);
                s.current = Some(ev);
                Ok(())
            }
            Err(RecvTimeoutError::Timeout) => {
                Err(Failure::new(ztick_result::Timeout, format!("no event within {timeout_ms} ms")))
            }
            Err(RecvTimeoutError::Disconnected) => Err(Failure::new(
                ztick_result::Stopped,
                "the subscriber has stopped (every topic ended, or a callback subscriber)",
            )),
        }
    })
}

/// Stops delivering events (a polling subscriber's unpolled ones are dropped: poll until
/// `ZTICK_RESULT_STOPPED` first to have them all), waits at most `timeout_ms` for the end
/// of every topic, stops the subscriber and fills `stats_out` (may be NULL). With
/// `latency_out` not NULL, it receives a new recorder of the ticks' latencies from their
/// hand-off to the publisher (free it with `ztick_recorder_free`). The handle still needs
/// `ztick_subscriber_free`.
///
/// # Safety
///
/// `subscriber` must be NULL or a live subscriber that no other thread uses during the
/// call; `stats_out` NULL or writable; `latency_out` NULL or valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn ztick_subscriber_finish(
    subscriber: *mut ztick_subscriber,
    timeout_ms: u32,
    stats_out: *mut ztick_subscriber_stats,
    latency_out: *mut *mut ztick_recorder,
) -> ztick_result {
    guard(|| {
        // SAFETY: NULL or live and used by this call only, by the caller's contract.
        let s = unsafe { arg_mut(subscriber, "subscriber") }?;
        let inner = s
            .inner
            .take()
            .ok_or_else(|| Failure::new(ztick_result::Stopped, "the subscriber already finished"))?;
        s.current = None;
        let mut r = inner.finish(Duration::from_millis(u64::from(timeout_ms)))?;
        // SAFETY: NULL or writable, by the caller's contract.
        if let Some(out) = unsafe { stats_out.as_mut() } {
            *out = ztick_subscriber_stats {
                received: r.received(),
                missing: r.missing(),
                gaps: r.epochs.iter().fold(0, |a, e| a.saturating_add(e.gap_ranges())),
                decode_errors: r.decode_errors,
                complete: r.complete(),
                repaired: r.repaired(),
                outcome: match r.outcome {
                    Outcome::Complete => ztick_outcome::Complete,
                    Outcome::PublisherLost => ztick_outcome::PublisherLost,
                    Outcome::Timeout => ztick_outcome::Timeout,
                    Outcome::Stopped => ztick_outcome::Stopped,
                },
                epochs: r.epochs.len() as u64 + r.epochs_unlisted,
            };
        }
        // SAFETY: NULL or writable, by the caller's contract.
        if let Some(out) = unsafe { latency_out.as_mut() } {
            *out = ztick_recorder::boxed(std::mem::take(&mut r.latency));
        }
        Ok(())
    })
}

/// Stops the subscriber and frees it. NULL is ignored.
///
/// # Safety
///
/// `subscriber` must be NULL or a subscriber from `ztick_subscriber_new` not yet freed,
/// unused by any other call during or after this one.
#[no_mangle]
pub unsafe extern "C" fn ztick_subscriber_free(subscriber: *mut ztick_subscriber) {
    super::guard_or((), || {
        if !subscriber.is_null() {
            // SAFETY: from Box::into_raw in ztick_subscriber_new, freed once, by the contract.
            drop(unsafe { Box::from_raw(subscriber) });
        }
    })
}
