//! `ztick_publisher`: the application's ticks, sequenced and fanned out (`TickPublisher`).

use std::ffi::{c_char, CString};
use std::time::Duration;

use super::engine::ztick_engine;
use super::{arg, arg_mut, arg_str, arg_strs, c_string, guard, guard_or, ztick_result, Failure};
use crate::endpoint::Endpoint;
use crate::fanout::{PublishError, PublisherConfig, TickPublisher};

/// A tick publisher: an XPUB on its own worker, fed by the application.
pub struct ztick_publisher {
    /// `None` once finished.
    inner: Option<TickPublisher>,
    endpoint: CString,
    snapshot_endpoint: Option<CString>,
}

/// Settings of a publisher. Fill with `ztick_publisher_options_init`, then change fields.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ztick_publisher_options {
    /// Groups the topics are spread over (topic `i` in group `g<i % groups>.`). Default 1.
    pub groups: u32,
    /// Most ticks coalesced into one message, 1 to 65535. Default 64.
    pub max_batch: u32,
    /// How long a tick may wait for others to share its message, in microseconds.
    /// Default 0: each pass of the worker sends what has arrived.
    pub max_delay_us: u64,
    /// Interval of the heartbeats carrying each topic's last sequence, ms. Default 100.
    pub heartbeat_ms: u64,
    /// How long `ztick_publisher_finish` repeats the end markers at most, ms (less once
    /// every subscriber has acknowledged). Default 1000.
    pub eos_linger_ms: u64,
    /// Send HWM in messages; 0 keeps libzmq's (1000). Default 0.
    pub hwm: u32,
    /// Ticks that may wait between the application and the worker. Default 4096.
    pub capacity: u32,
    /// Where to bind the snapshot/acknowledgement ROUTER (`ztick fanout --role sub
    /// --snapshot` connects there); NULL for none. Default NULL.
    pub snapshot_endpoint: *const c_char,
}

/// What a publisher did, filled by `ztick_publisher_finish`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct ztick_publisher_stats {
    /// Ticks published.
    pub published: u64,
    /// Messages (batches of ticks) sent.
    pub batches: u64,
    /// Subscribers that acknowledged the end of the stream.
    pub acks: u64,
    /// From the first tick handed over to the last sent, ns.
    pub elapsed_ns: u64,
}

fn defaults() -> ztick_publisher_options {
    let d = PublisherConfig::default();
    ztick_publisher_options {
        groups: 1,
        max_batch: d.max_batch as u32,
        max_delay_us: d.max_delay.as_micros() as u64,
        heartbeat_ms: d.heartbeat.as_millis() as u64,
        eos_linger_ms: d.eos_linger.as_millis() as u64,
        hwm: 0,
        capacity: d.capacity as u32,
        snapshot_endpoint: std::ptr::null(),
    }
}

/// Fills `options` with the defaults.
///
/// # Safety
///
/// `options` must be NULL or valid for writing a `ztick_publisher_options`.
#[no_mangle]
pub unsafe extern "C" fn ztick_publisher_options_init(options: *mut ztick_publisher_options) -> ztick_result {
    guard(|| {
        // SAFETY: NULL or writable, by the caller's contract.
        *unsafe { arg_mut(options, "options") }? = defaults();
        Ok(())
    })
}

/// Starts a publisher on `engine`: binds an XPUB at `endpoint` (`tcp://127.0.0.1:*` picks a
/// port: see `ztick_publisher_endpoint`) for `topic_count` topics, numbered in the order
/// given. `options` may be NULL for the defaults. Free it with `ztick_publisher_free`.
///
/// # Safety
///
/// `engine` must be a live engine; `endpoint` a NUL-terminated string; `topics` an array
/// of `topic_count` NUL-terminated strings; `options` NULL or initialised (its
/// `snapshot_endpoint` NULL or a NUL-terminated string); `publisher_out` valid for writing
/// a pointer. The strings are copied.
#[no_mangle]
pub unsafe extern "C" fn ztick_publisher_new(
    engine: *const ztick_engine,
    endpoint: *const c_char,
    topics: *const *const c_char,
    topic_count: usize,
    options: *const ztick_publisher_options,
    publisher_out: *mut *mut ztick_publisher,
) -> ztick_result {
    guard(|| {
        if publisher_out.is_null() {
            return Err(Failure::null("publisher_out"));
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
        let snapshot: Option<Endpoint> = match opts.snapshot_endpoint.is_null() {
            true => None,
            // SAFETY: not NULL: a C string by the caller's contract.
            false => Some(unsafe { arg_str(opts.snapshot_endpoint, "options.snapshot_endpoint") }?.parse()?),
        };
        let cfg = PublisherConfig {
            topics,
            groups: opts.groups as usize,
            max_batch: opts.max_batch as usize,
            max_delay: Duration::from_micros(opts.max_delay_us),
            heartbeat: Duration::from_millis(opts.heartbeat_ms),
            eos_linger: Duration::from_millis(opts.eos_linger_ms),
            hwm_msgs: (opts.hwm > 0).then_some(opts.hwm),
            capacity: opts.capacity as usize,
            ..PublisherConfig::default()
        };
        let p = TickPublisher::start(&engine.inner, endpoint.parse()?, snapshot, cfg)?;
        let handle = Box::new(ztick_publisher {
            endpoint: c_string(&p.endpoint().to_string()),
            snapshot_endpoint: p.side_endpoint().map(|e| c_string(&e.to_string())),
            inner: Some(p),
        });
        // SAFETY: checked not NULL; writable by the caller's contract.
        unsafe { *publisher_out = Box::into_raw(handle) };
        Ok(())
    })
}

/// The endpoint subscribers connect to, with the port libzmq chose; NULL for NULL. Valid
/// until the publisher is freed.
///
/// # Safety
///
/// `publisher` must be NULL or a live publisher.
#[no_mangle]
pub unsafe extern "C" fn ztick_publisher_endpoint(publisher: *const ztick_publisher) -> *const c_char {
    guard_or(std::ptr::null(), || {
        // SAFETY: NULL or live, by the caller's contract.
        unsafe { arg(publisher, "publisher") }.map_or(std::ptr::null(), |p| p.endpoint.as_ptr())
    })
}

/// The snapshot/acknowledgement endpoint; NULL when none was asked for. Valid until the
/// publisher is freed.
///
/// # Safety
///
/// `publisher` must be NULL or a live publisher.
#[no_mangle]
pub unsafe extern "C" fn ztick_publisher_snapshot_endpoint(
    publisher: *const ztick_publisher,
) -> *const c_char {
    guard_or(std::ptr::null(), || {
        // SAFETY: NULL or live, by the caller's contract.
        unsafe { arg(publisher, "publisher") }
            .ok()
            .and_then(|p| p.snapshot_endpoint.as_ref())
            .map_or(std::ptr::null(), |e| e.as_ptr())
    })
}

fn live(p: &ztick_publisher) -> Result<&TickPublisher, Failure> {
    p.inner.as_ref().ok_or_else(|| Failure::new(ztick_result::Stopped, "the publisher has finished"))
}

/// Waits until at least `count` subscribers are connected, at most `timeout_ms`:
/// `ZTICK_RESULT_OK`, or `ZTICK_RESULT_TIMEOUT`. Ticks published before a subscriber is
/// connected do not reach it.
///
/// # Safety
///
/// `publisher` must be NULL or a live publisher.
#[no_mangle]
pub unsafe extern "C" fn ztick_publisher_wait_subscribers(
    publisher: *const ztick_publisher,
    count: usize,
    timeout_ms: u32,
) -> ztick_result {
    guard(|| {
        // SAFETY: NULL or live, by the caller's contract.
        let p = live(unsafe { arg(publisher, "publisher") }?)?;
        if p.wait_subscribers(count, Duration::from_millis(u64::from(timeout_ms))) {
            return Ok(());
        }
        Err(Failure::new(
            ztick_result::Timeout,
            format!("{} of {count} subscribers connected after {timeout_ms} ms", p.subscribers()),
        ))
    })
}

/// Subscribers connected now; 0 for NULL or a finished publisher.
///
/// # Safety
///
/// `publisher` must be NULL or a live publisher.
#[no_mangle]
pub unsafe extern "C" fn ztick_publisher_subscribers(publisher: *const ztick_publisher) -> usize {
    guard_or(0, || {
        // SAFETY: NULL or live, by the caller's contract.
        unsafe { arg(publisher, "publisher") }
            .ok()
            .and_then(|p| p.inner.as_ref())
            .map_or(0, |p| p.subscribers())
    })
}

/// Ticks the publisher's worker has sequenced so far (it lags the publish calls by the
/// ticks still waiting in the hand-off); 0 for NULL or a finished publisher.
///
/// # Safety
///
/// `publisher` must be NULL or a live publisher.
#[no_mangle]
pub unsafe extern "C" fn ztick_publisher_published(publisher: *const ztick_publisher) -> u64 {
    guard_or(0, || {
        // SAFETY: NULL or live, by the caller's contract.
        unsafe { arg(publisher, "publisher") }
            .ok()
            .and_then(|p| p.inner.as_ref())
            .map_or(0, |p| p.published())
    })
}

fn publish_failure(e: PublishError) -> Failure {
    let code = match e {
        PublishError::Full => ztick_result::Full,
        PublishError::Stopped => ztick_result::Stopped,
        _ => ztick_result::InvalidArgument,
    };
    Failure::new(code, e.to_string())
}

/// The payload argument as a slice (NULL is allowed for an empty payload).
///
/// # Safety
///
/// `payload` NULL with `len` 0, or readable for `len` bytes during the call.
unsafe fn payload_arg<'a>(payload: *const u8, len: usize) -> Result<&'a [u8], Failure> {
    match (payload.is_null(), len) {
        (true, 0) => Ok(&[]),
        (true, _) => Err(Failure::null("payload")),
        // SAFETY: not NULL and readable for `len` bytes, by the caller's contract.
        (false, _) => Ok(unsafe { std::slice::from_raw_parts(payload, len) }),
    }
}

/// Publishes a copy of `payload` (`len` bytes, at most 65535; NULL if 0) as the next tick
/// of topic `topic` (its index in the array given to `ztick_publisher_new`), waiting while
/// `capacity` ticks are already waiting for the worker. Safe to call from several threads.
///
/// # Safety
///
/// `publisher` must be NULL or a live publisher; `payload` readable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn ztick_publisher_publish(
    publisher: *const ztick_publisher,
    topic: usize,
    payload: *const u8,
    len: usize,
) -> ztick_result {
    guard(|| {
        // SAFETY: NULL or live, by the caller's contract.
        let p = live(unsafe { arg(publisher, "publisher") }?)?;
        // SAFETY: readable for `len` bytes, by the caller's contract.
        let bytes = unsafe { payload_arg(payload, len) }?;
        p.publish(topic, bytes).map_err(publish_failure)
    })
}

/// As `ztick_publisher_publish`, but returns `ZTICK_RESULT_FULL` instead of waiting.
///
/// # Safety
///
/// As `ztick_publisher_publish`.
#[no_mangle]
pub unsafe extern "C" fn ztick_publisher_try_publish(
    publisher: *const ztick_publisher,
    topic: usize,
    payload: *const u8,
    len: usize,
) -> ztick_result {
    guard(|| {
        // SAFETY: NULL or live, by the caller's contract.
        let p = live(unsafe { arg(publisher, "publisher") }?)?;
        // SAFETY: readable for `len` bytes, by the caller's contract.
        let bytes = unsafe { payload_arg(payload, len) }?;
        p.try_publish(topic, bytes).map_err(publish_failure)
    })
}

/// Ends the stream: sends every tick handed over, then the end-of-stream markers, repeated
/// until every subscriber acknowledged or `eos_linger_ms` passed; waits at most
/// `timeout_ms`, stops the worker, and fills `stats_out` (may be NULL). Later publishes
/// return `ZTICK_RESULT_STOPPED`; the handle still needs `ztick_publisher_free`.
///
/// # Safety
///
/// `publisher` must be NULL or a live publisher that no other thread uses during the call;
/// `stats_out` NULL or valid for writing a `ztick_publisher_stats`.
#[no_mangle]
pub unsafe extern "C" fn ztick_publisher_finish(
    publisher: *mut ztick_publisher,
    timeout_ms: u32,
    stats_out: *mut ztick_publisher_stats,
) -> ztick_result {
    guard(|| {
        // SAFETY: NULL or live and used by this call only, by the caller's contract.
        let p = unsafe { arg_mut(publisher, "publisher") }?;
        let inner = p
            .inner
            .take()
            .ok_or_else(|| Failure::new(ztick_result::Stopped, "the publisher already finished"))?;
        let r = inner.finish(Duration::from_millis(u64::from(timeout_ms)))?;
        // SAFETY: NULL or writable, by the caller's contract.
        if let Some(out) = unsafe { stats_out.as_mut() } {
            *out = ztick_publisher_stats {
                published: r.published,
                batches: r.batches,
                acks: r.acks as u64,
                elapsed_ns: r.elapsed_ns,
            };
        }
        Ok(())
    })
}

/// Stops the publisher (without end markers, unless finished) and frees it. NULL is ignored.
///
/// # Safety
///
/// `publisher` must be NULL or a publisher from `ztick_publisher_new` not yet freed, unused
/// by any other call during or after this one.
#[no_mangle]
pub unsafe extern "C" fn ztick_publisher_free(publisher: *mut ztick_publisher) {
    guard_or((), || {
        if !publisher.is_null() {
            // SAFETY: from Box::into_raw in ztick_publisher_new, freed once, by the contract.
            drop(unsafe { Box::from_raw(publisher) });
        }
    })
}
