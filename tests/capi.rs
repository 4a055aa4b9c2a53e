//! The C ABI from the Rust side (`cargo test --features capi`): the committed header is the
//! generated one, NULLs and bad arguments come back as result codes with a message, the
//! recorder, publisher and subscriber work through their handles, and a caller's libzmq
//! context is shared in the system build and refused in the vendored one.
//!
//! The declarations below are the header's, written by hand: the test links the exported
//! symbols of the ztick rlib, as a C program links the library.
#![cfg(feature = "capi")]

mod common;

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::ptr::{null, null_mut};
use std::sync::Mutex;

use common::{with_timeout, WAIT};

type ZtickResult = u32;
const OK: ZtickResult = 0;
const NULL_PARAMETER: ZtickResult = 1;
const INVALID_ARGUMENT: ZtickResult = 2;
const UNSUPPORTED: ZtickResult = 3;
const TIMEOUT: ZtickResult = 5;
const STOPPED: ZtickResult = 7;

const CAP_SYSTEM_LIBZMQ: u32 = 1;
const CAP_SHARED_CONTEXT: u32 = 2;
const CAP_IPC: u32 = 8;

const KIND_TICK: u32 = 0;
const KIND_END: u32 = 2;
const KIND_EPOCH: u32 = 4;

#[repr(C)]
struct Engine(u8);
#[repr(C)]
struct Publisher(u8);
#[repr(C)]
struct Subscriber(u8);
#[repr(C)]
struct Recorder(u8);

#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct PublisherOptions {
    groups: u32,
    max_batch: u32,
    max_delay_us: u64,
    heartbeat_ms: u64,
    eos_linger_ms: u64,
    hwm: u32,
    capacity: u32,
    snapshot_endpoint: *const c_char,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct PublisherStats {
    published: u64,
    batches: u64,
    acks: u64,
    elapsed_ns: u64,
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct SubscriberOptions {
    groups: *const *const c_char,
    group_count: usize,
    snapshot_endpoint: *const c_char,
    hwm: u32,
    capacity: u32,
    liveness_ms: u32,
    follow: bool,
    repair: bool,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct SubscriberStats {
    received: u64,
    missing: u64,
    gaps: u64,
    decode_errors: u64,
    complete: bool,
    repaired: u64,
    outcome: u32,
    epochs: u64,
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct Event {
    kind: u32,
    topic: *const c_char,
    topic_index: usize,
    seq: u64,
    last: u64,
    sent_ns: u64,
    intended_ns: u64,
    received_ns: u64,
    payload: *const u8,
    payload_len: usize,
    epoch: u64,
    repaired: bool,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct Summary {
    count: u64,
    min_ns: u64,
    p50_ns: u64,
    p90_ns: u64,
    p99_ns: u64,
    p99_9_ns: u64,
    p99_99_ns: u64,
    max_ns: u64,
    mean_ns: f64,
}

type Callback = Option<unsafe extern "C" fn(*mut c_void, *const Event)>;

extern "C" {
    fn ztick_last_error() -> *const c_char;
    fn ztick_version() -> *const c_char;
    fn ztick_capabilities() -> u32;
    fn ztick_libzmq_version(major: *mut c_int, minor: *mut c_int, patch: *mut c_int);
    fn ztick_engine_new(io_threads: u32, out: *mut *mut Engine) -> ZtickResult;
    fn ztick_engine_new_shared(ctx: *mut c_void, out: *mut *mut Engine) -> ZtickResult;
    fn ztick_engine_io_threads(engine: *const Engine) -> u32;
    fn ztick_engine_free(engine: *mut Engine);
    fn ztick_publisher_options_init(o: *mut PublisherOptions) -> ZtickResult;
    fn ztick_publisher_new(
        engine: *const Engine,
        endpoint: *const c_char,
        topics: *const *const c_char,
        count: usize,
        options: *const PublisherOptions,
        out: *mut *mut Publisher,
    ) -> ZtickResult;
    fn ztick_publisher_endpoint(p: *const Publisher) -> *const c_char;
    fn ztick_publisher_snapshot_endpoint(p: *const Publisher) -> *const c_char;
    fn ztick_publisher_wait_subscribers(p: *const Publisher, n: usize, timeout_ms: u32) -> ZtickResult;
    fn ztick_publisher_subscribers(p: *const Publisher) -> usize;
    fn ztick_publisher_published(p: *const Publisher) -> u64;
    fn ztick_publisher_publish(
        p: *const Publisher,
        topic: usize,
        payload: *const u8,
        len: usize,
    ) -> ZtickResult;
    fn ztick_publisher_try_publish(
        p: *const Publisher,
        topic: usize,
        payload: *const u8,
        len: usize,
    ) -> ZtickResult;
    fn ztick_publisher_finish(p: *mut Publisher, timeout_ms: u32, stats: *mut PublisherStats) -> ZtickResult;
    fn ztick_publisher_free(p: *mut Publisher);
    fn ztick_subscriber_options_init(o: *mut SubscriberOptions) -> ZtickResult;
    #[allow(clippy::too_many_arguments)]
    fn ztick_subscriber_new(
        engine: *const Engine,
        endpoint: *const c_char,
        topics: *const *const c_char,
        count: usize,
        options: *const SubscriberOptions,
        callback: Callback,
        user_data: *mut c_void,
        out: *mut *mut Subscriber,
    ) -> ZtickResult;
    fn ztick_subscriber_poll(s: *mut Subscriber, timeout_ms: u32, event: *mut Event) -> ZtickResult;
    fn ztick_subscriber_finish(
        s: *mut Subscriber,
        timeout_ms: u32,
        stats: *mut SubscriberStats,
        latency: *mut *mut Recorder,
    ) -> ZtickResult;
    fn ztick_subscriber_free(s: *mut Subscriber);
    fn ztick_recorder_new(out: *mut *mut Recorder) -> ZtickResult;
    fn ztick_recorder_record(r: *mut Recorder, ns: u64) -> ZtickResult;
    fn ztick_recorder_record_corrected(r: *mut Recorder, ns: u64, interval_ns: u64) -> ZtickResult;
    fn ztick_recorder_count(r: *const Recorder) -> u64;
    fn ztick_recorder_percentile(r: *const Recorder, percentile: f64, out: *mut u64) -> ZtickResult;
    fn ztick_recorder_summary(r: *const Recorder, out: *mut Summary) -> ZtickResult;
    fn ztick_recorder_merge(into: *mut Recorder, from: *const Recorder) -> ZtickResult;
    fn ztick_recorder_reset(r: *mut Recorder) -> ZtickResult;
    fn ztick_recorder_write_hgrm(r: *const Recorder, path: *const c_char, scale: f64) -> ZtickResult;
    fn ztick_recorder_free(r: *mut Recorder);
}

fn last_error() -> String {
    // SAFETY: never NULL, a C string valid until the next ztick call on this thread.
    unsafe { CStr::from_ptr(ztick_last_error()) }.to_string_lossy().into_owned()
}

/// Asserts `rc` and, for a failure, that the message mentions each needle.
fn expect(rc: ZtickResult, want: ZtickResult, needles: &[&str]) {
    let msg = last_error();
    assert_eq!(rc, want, "result {rc} (want {want}): {msg}");
    for n in needles {
        assert!(msg.contains(n), "{msg:?} should mention {n:?}");
    }
}

fn ok(rc: ZtickResult) {
    expect(rc, OK, &[]);
}

fn system_build() -> bool {
    // SAFETY: no arguments.
    let caps = unsafe { ztick_capabilities() };
    caps & CAP_SYSTEM_LIBZMQ != 0
}

#[test]
fn the_committed_header_is_the_generated_one() {
    let generated = include_str!(concat!(env!("OUT_DIR"), "/ztick.h"));
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/include/ztick.h"))
        .expect("include/ztick.h is committed");
    if generated != committed {
        let (n, (g, c)) = generated
            .lines()
            .zip(committed.lines().chain(std::iter::repeat("<end of file>")))
            .enumerate()
            .find(|(_, (g, c))| g != c)
            .unwrap_or((committed.lines().count(), ("<end of file>", "<more lines>")));
        panic!(
            "include/ztick.h is stale: run scripts/capi.sh header and commit it.\n\
             first difference, line {}:\n  committed: {c}\n  generated: {g}",
            n + 1
        );
    }
}

#[test]
fn version_and_capabilities() {
    // SAFETY: a static C string.
    let v = unsafe { CStr::from_ptr(ztick_version()) };
    assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    let info = ztick::info::BuildInfo::current();
    // SAFETY: no arguments.
    let caps = unsafe { ztick_capabilities() };
    assert_eq!(caps & CAP_SYSTEM_LIBZMQ != 0, info.link_mode == "system");
    assert_eq!(caps & CAP_SHARED_CONTEXT != 0, info.link_mode == "system");
    assert_eq!(caps & CAP_IPC != 0, info.ipc);
    let (mut a, mut b, mut c) = (0, 0, 0);
    // SAFETY: writable ints; NULLs are allowed.
    unsafe {
        ztick_libzmq_version(&mut a, &mut b, &mut c);
        ztick_libzmq_version(null_mut(), null_mut(), null_mut());
    }
    assert_eq!(format!("{a}.{b}.{c}"), info.libzmq_version);
}

#[test]
fn nulls_and_bad_arguments_are_result_codes_with_a_message() {
    // SAFETY: every call below is made with NULLs or valid pointers, as the header allows.
    unsafe {
        expect(ztick_engine_new(1, null_mut()), NULL_PARAMETER, &["engine_out"]);
        expect(ztick_recorder_record(null_mut(), 5), NULL_PARAMETER, &["recorder"]);
        expect(ztick_publisher_publish(null(), 0, null(), 0), NULL_PARAMETER, &["publisher"]);
        expect(ztick_subscriber_poll(null_mut(), 0, null_mut()), NULL_PARAMETER, &["subscriber"]);
        assert_eq!(ztick_engine_io_threads(null()), 0);
        assert!(ztick_publisher_endpoint(null()).is_null());
        ztick_engine_free(null_mut());
        ztick_publisher_free(null_mut());
        ztick_subscriber_free(null_mut());
        ztick_recorder_free(null_mut());

        let mut engine = null_mut();
        ok(ztick_engine_new(0, &mut engine));
        assert_eq!(ztick_engine_io_threads(engine), 0);
        let topic = CString::new("t0").unwrap();
        let topics = [topic.as_ptr()];
        let mut p = null_mut();
        let bad = CString::new("udp://nowhere").unwrap();
        expect(
            ztick_publisher_new(engine, bad.as_ptr(), topics.as_ptr(), 1, null(), &mut p),
            INVALID_ARGUMENT,
            &["udp"],
        );
        let ep = CString::new(format!("inproc://capi-args-{}", std::process::id())).unwrap();
        expect(
            ztick_publisher_new(engine, ep.as_ptr(), topics.as_ptr(), 0, null(), &mut p),
            INVALID_ARGUMENT,
            &["topics"],
        );
        expect(
            ztick_publisher_new(engine, ep.as_ptr(), null(), 1, null(), &mut p),
            NULL_PARAMETER,
            &["topics"],
        );
        let not_utf8 = [0xffu8, 0];
        let bad_topics = [not_utf8.as_ptr().cast::<c_char>()];
        expect(
            ztick_publisher_new(engine, ep.as_ptr(), bad_topics.as_ptr(), 1, null(), &mut p),
            INVALID_ARGUMENT,
            &["topics[0]", "UTF-8"],
        );
        let mut opts = std::mem::zeroed::<PublisherOptions>();
        ok(ztick_publisher_options_init(&mut opts));
        assert_eq!((opts.groups, opts.max_batch, opts.capacity), (1, 64, 4096));
        opts.groups = 2;
        expect(
            ztick_publisher_new(engine, ep.as_ptr(), topics.as_ptr(), 1, &opts, &mut p),
            INVALID_ARGUMENT,
            &["groups"],
        );
        ok(ztick_publisher_new(engine, ep.as_ptr(), topics.as_ptr(), 1, null(), &mut p));
        assert!(ztick_publisher_snapshot_endpoint(p).is_null());
        expect(ztick_publisher_publish(p, 1, b"x".as_ptr(), 1), INVALID_ARGUMENT, &["no topic 1"]);
        expect(ztick_publisher_publish(p, 0, null(), 3), NULL_PARAMETER, &["payload"]);
        ok(ztick_publisher_publish(p, 0, null(), 0));
        expect(ztick_publisher_wait_subscribers(p, 1, 10), TIMEOUT, &["0 of 1"]);
        assert!(ztick_publisher_published(p) <= 1);
        let mut stats = PublisherStats::default();
        ok(ztick_publisher_finish(p, 0, &mut stats));
        assert_eq!(stats.published, 1);
        expect(ztick_publisher_publish(p, 0, b"x".as_ptr(), 1), STOPPED, &["finished"]);
        expect(ztick_publisher_finish(p, 0, null_mut()), STOPPED, &["already"]);
        assert_eq!((ztick_publisher_subscribers(p), ztick_publisher_published(p)), (0, 0));
        ztick_publisher_free(p);
        ztick_engine_free(engine);
    }
}

#[test]
fn recorder_percentiles_summary_merge_and_hgrm() {
    let dir = std::env::temp_dir().join(format!("ztick-capi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = CString::new(dir.join("r.hgrm").to_str().unwrap()).unwrap();
    // SAFETY: live recorders from ztick_recorder_new, used by this thread only.
    unsafe {
        let (mut r, mut other) = (null_mut(), null_mut());
        ok(ztick_recorder_new(&mut r));
        ok(ztick_recorder_new(&mut other));
        for us in 1..=1000u64 {
            ok(ztick_recorder_record(r, us * 1000));
        }
        let mut p50 = 0;
        ok(ztick_recorder_percentile(r, 50.0, &mut p50));
        assert!((499_000..=501_000).contains(&p50), "{p50}");
        expect(ztick_recorder_percentile(r, 100.5, &mut p50), INVALID_ARGUMENT, &["percentile"]);
        expect(ztick_recorder_percentile(r, f64::NAN, &mut p50), INVALID_ARGUMENT, &["percentile"]);
        ok(ztick_recorder_record_corrected(other, 10_000, 1_000));
        assert_eq!(ztick_recorder_count(other), 10, "9 synthetic samples for the stall");
        expect(ztick_recorder_merge(r, r), INVALID_ARGUMENT, &["itself"]);
        ok(ztick_recorder_merge(r, other));
        let mut s = Summary::default();
        ok(ztick_recorder_summary(r, &mut s));
        assert_eq!((s.count, s.min_ns), (1010, 1000));
        assert!(s.max_ns >= 1_000_000 && s.p99_ns <= s.max_ns && s.mean_ns > 0.0);
        ok(ztick_recorder_write_hgrm(r, path.as_ptr(), 1000.0));
        expect(ztick_recorder_write_hgrm(r, path.as_ptr(), 0.0), INVALID_ARGUMENT, &["output_scale"]);
        let nowhere = CString::new("/nonexistent-dir/x.hgrm").unwrap();
        expect(ztick_recorder_write_hgrm(r, nowhere.as_ptr(), 1.0), 8, &["/nonexistent-dir/x.hgrm"]);
        ok(ztick_recorder_reset(r));
        assert_eq!(ztick_recorder_count(r), 0);
        ztick_recorder_free(r);
        ztick_recorder_free(other);
    }
    let rows = ztick::metrics::parse_hgrm(&std::fs::read_to_string(dir.join("r.hgrm")).unwrap()).unwrap();
    assert_eq!(rows.last().unwrap().total_count, 1010);
    let _ = std::fs::remove_dir_all(dir);
}

/// Starts a publisher of `topics` at a unique inproc endpoint and a subscriber of it.
///
/// # Safety
/// `engine` is live; `callback` (if any) may be called with `user`.
unsafe fn pair(
    engine: *const Engine,
    name: &str,
    topics: &[&str],
    callback: Callback,
    user: *mut c_void,
) -> (*mut Publisher, *mut Subscriber) {
    let ep = CString::new(format!("inproc://capi-{name}-{}", std::process::id())).unwrap();
    let names: Vec<CString> = topics.iter().map(|t| CString::new(*t).unwrap()).collect();
    let ptrs: Vec<*const c_char> = names.iter().map(|t| t.as_ptr()).collect();
    let (mut p, mut s) = (null_mut(), null_mut());
    // SAFETY: live engine, C strings and arrays that outlive the calls (they are copied).
    unsafe {
        ok(ztick_publisher_new(engine, ep.as_ptr(), ptrs.as_ptr(), ptrs.len(), null(), &mut p));
        let mut so = std::mem::zeroed::<SubscriberOptions>();
        ok(ztick_subscriber_options_init(&mut so));
        assert_eq!((so.capacity, so.group_count), (1024, 0));
        ok(ztick_subscriber_new(
            engine,
            ztick_publisher_endpoint(p),
            ptrs.as_ptr(),
            ptrs.len(),
            &so,
            callback,
            user,
            &mut s,
        ));
        ok(ztick_publisher_wait_subscribers(p, 1, WAIT.as_millis() as u32));
        assert_eq!(ztick_publisher_subscribers(p), 1);
    }
    (p, s)
}

#[test]
fn polling_subscriber_gets_the_ticks_then_the_ends_then_stopped() {
    with_timeout(WAIT, || {
        // SAFETY: live handles from this test, each used by this thread only.
        unsafe {
            let mut engine = null_mut();
            ok(ztick_engine_new(0, &mut engine));
            let (p, s) = pair(engine, "poll", &["eur", "usd"], None, null_mut());
            for i in 0..100u32 {
                let body = format!("px{i}");
                ok(ztick_publisher_try_publish(p, (i % 2) as usize, body.as_ptr(), body.len()));
            }
            let mut ps = PublisherStats::default();
            ok(ztick_publisher_finish(p, 100, &mut ps));
            assert_eq!(ps.published, 100);
            let mut ev = std::mem::zeroed::<Event>();
            let (mut ticks, mut ends, mut epochs) = (0u32, 0, 0);
            loop {
                let rc = ztick_subscriber_poll(s, WAIT.as_millis() as u32, &mut ev);
                if rc == STOPPED {
                    break;
                }
                ok(rc);
                if ev.kind == KIND_EPOCH {
                    assert!(ev.topic.is_null() && ev.epoch != 0, "an epoch has no topic: {ev:?}");
                    epochs += 1;
                    continue;
                }
                let topic = CStr::from_ptr(ev.topic).to_str().unwrap();
                match ev.kind {
                    KIND_TICK => {
                        let body = std::slice::from_raw_parts(ev.payload, ev.payload_len);
                        let i = (ev.seq as u32 - 1) * 2 + ev.topic_index as u32;
                        assert_eq!(body, format!("px{i}").as_bytes(), "{topic} #{}", ev.seq);
                        assert_eq!(topic, ["eur", "usd"][ev.topic_index]);
                        assert!(ev.intended_ns <= ev.sent_ns && ev.sent_ns <= ev.received_ns);
                        ticks += 1;
                    }
                    KIND_END => {
                        assert_eq!((ev.seq, ev.last), (50, 50));
                        ends += 1;
                    }
                    k => panic!("unexpected event kind {k}: {ev:?}"),
                }
            }
            assert_eq!((ticks, ends, epochs), (100, 2, 1));
            let mut st = SubscriberStats::default();
            let mut lat = null_mut();
            ok(ztick_subscriber_finish(s, WAIT.as_millis() as u32, &mut st, &mut lat));
            assert_eq!((st.received, st.missing, st.gaps, st.complete), (100, 0, 0, true));
            assert_eq!(ztick_recorder_count(lat), 100, "a latency per tick, from the hand-off");
            expect(ztick_subscriber_poll(s, 0, &mut ev), STOPPED, &["finished"]);
            ztick_recorder_free(lat);
            ztick_subscriber_free(s);
            ztick_publisher_free(p);
            ztick_engine_free(engine);
        }
    });
}

/// What the callback saw: (kind, seq, payload) per event.
type Seen = Mutex<Vec<(u32, u64, Vec<u8>)>>;

unsafe extern "C" fn collect(user: *mut c_void, ev: *const Event) {
    // SAFETY: `user` is the Mutex the test passed and outlives the subscriber; `ev` and its
    // pointers are valid during the call.
    unsafe {
        let seen = &*(user as *const Seen);
        let ev = &*ev;
        let body = match ev.payload.is_null() {
            true => Vec::new(),
            false => std::slice::from_raw_parts(ev.payload, ev.payload_len).to_vec(),
        };
        seen.lock().unwrap().push((ev.kind, ev.seq, body));
    }
}

#[test]
fn callback_subscriber_is_called_on_the_worker_with_each_event() {
    with_timeout(WAIT, || {
        let seen: Box<Seen> = Box::default();
        let user = &*seen as *const Seen as *mut c_void;
        // SAFETY: live handles; `seen` outlives the subscriber (freed before it drops).
        unsafe {
            let mut engine = null_mut();
            ok(ztick_engine_new(0, &mut engine));
            let (p, s) = pair(engine, "callback", &["only"], Some(collect), user);
            for i in 0..50u64 {
                ok(ztick_publisher_publish(p, 0, i.to_le_bytes().as_ptr(), 8));
            }
            ok(ztick_publisher_finish(p, 100, null_mut()));
            let mut st = SubscriberStats::default();
            ok(ztick_subscriber_finish(s, WAIT.as_millis() as u32, &mut st, null_mut()));
            assert!(st.complete && st.received == 50);
            let mut ev = std::mem::zeroed::<Event>();
            expect(ztick_subscriber_poll(s, 0, &mut ev), STOPPED, &[]);
            ztick_subscriber_free(s);
            ztick_publisher_free(p);
            ztick_engine_free(engine);
        }
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 52);
        assert_eq!(seen[0].0, KIND_EPOCH, "the publisher's epoch begins first");
        for (i, (kind, seq, body)) in seen[1..51].iter().enumerate() {
            assert_eq!(
                (*kind, *seq, body.as_slice()),
                (KIND_TICK, i as u64 + 1, &(i as u64).to_le_bytes()[..])
            );
        }
        assert_eq!(seen[51].0, KIND_END);
    });
}

#[test]
fn a_callers_context_is_shared_in_the_system_build_and_refused_in_the_vendored_one() {
    with_timeout(WAIT, || {
        if !system_build() {
            // The pointer is never touched: the vendored build refuses before using it.
            let mut engine = null_mut();
            let not_ours = 0x1000 as *mut c_void;
            // SAFETY: the vendored build refuses without dereferencing the context.
            let rc = unsafe { ztick_engine_new_shared(not_ours, &mut engine) };
            expect(rc, UNSUPPORTED, &["sharing a libzmq context", "system build"]);
            assert!(engine.is_null());
            return;
        }
        // SAFETY: a context of the process's (system) libzmq that outlives every ztick handle
        // and raw socket below; each socket is used by this thread only.
        unsafe {
            let ctx = zmq_sys::zmq_ctx_new();
            let mut engine = null_mut();
            ok(ztick_engine_new_shared(ctx, &mut engine));
            assert_eq!(ztick_engine_io_threads(engine), 1, "the context's own setting");
            let ep = CString::new(format!("inproc://capi-shared-{}", std::process::id())).unwrap();
            let topic = CString::new("t").unwrap();
            let topics = [topic.as_ptr()];
            let mut p = null_mut();
            ok(ztick_publisher_new(engine, ep.as_ptr(), topics.as_ptr(), 1, null(), &mut p));
            // Our own SUB in our own context: inproc reaches ztick's XPUB only if they share it.
            let sub = zmq_sys::zmq_socket(ctx, zmq_sys::ZMQ_SUB as c_int);
            assert!(!sub.is_null());
            let hello = b"\0ztick-hello/raw";
            assert_eq!(
                zmq_sys::zmq_setsockopt(sub, zmq_sys::ZMQ_SUBSCRIBE as c_int, b"".as_ptr().cast(), 0),
                0
            );
            assert_eq!(
                zmq_sys::zmq_setsockopt(
                    sub,
                    zmq_sys::ZMQ_SUBSCRIBE as c_int,
                    hello.as_ptr().cast(),
                    hello.len()
                ),
                0
            );
            assert_eq!(zmq_sys::zmq_connect(sub, ep.as_ptr()), 0);
            ok(ztick_publisher_wait_subscribers(p, 1, WAIT.as_millis() as u32));
            ok(ztick_publisher_publish(p, 0, b"hi".as_ptr(), 2));
            let timeout: c_int = WAIT.as_millis() as c_int;
            zmq_sys::zmq_setsockopt(
                sub,
                zmq_sys::ZMQ_RCVTIMEO as c_int,
                (&timeout as *const c_int).cast(),
                4,
            );
            let mut buf = [0u8; 256];
            let n = zmq_sys::zmq_recv(sub, buf.as_mut_ptr().cast(), buf.len(), 0);
            assert_eq!(&buf[..n as usize], b"g0.", "the group frame");
            let n = zmq_sys::zmq_recv(sub, buf.as_mut_ptr().cast(), buf.len(), 0);
            let d = ztick::fanout::wire::decode(&buf[..n as usize]).unwrap();
            let tick = d.records().next().unwrap().unwrap();
            assert_eq!((tick.topic, tick.seq, tick.payload), (&b"t"[..], 1, &b"hi"[..]));
            let linger: c_int = 0;
            zmq_sys::zmq_setsockopt(sub, zmq_sys::ZMQ_LINGER as c_int, (&linger as *const c_int).cast(), 4);
            zmq_sys::zmq_close(sub);
            ok(ztick_publisher_finish(p, 0, null_mut()));
            ztick_publisher_free(p);
            ztick_engine_free(engine);
            // Every ztick socket is closed: terminating our context does not wait.
            assert_eq!(zmq_sys::zmq_ctx_term(ctx), 0);
        }
    });
}

/// The cost of a call through the C ABI against the same call from Rust, side by side in
/// one run (BENCHMARKS.md, "The C ABI"); examples/c/abi_cost.c makes the same calls from C.
/// Each round times both ways, alternating which goes first; a publisher's worker is let
/// drain before the next loop starts, so the two never compete for the cores.
/// A measurement, not a test:
///   scripts/capi.sh bench
/// or cargo test --release --features capi --test capi -- --ignored --nocapture abi_cost
#[test]
#[ignore = "a measurement: scripts/capi.sh bench"]
fn abi_cost() {
    use std::time::{Duration, Instant};
    use ztick::fanout::{PublisherConfig, TickPublisher};

    const CALLS: u64 = 10_000_000;
    const PUBLISHES: u64 = 50_000;
    const ROUNDS: usize = 9;
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let mut rust = ztick::metrics::LatencyRecorder::new();
    let mut c = null_mut();
    // SAFETY: a fresh recorder, used by this thread only, freed at the end.
    unsafe { ok(ztick_recorder_new(&mut c)) };
    let engine = ztick::Engine::builder().io_threads(0).build().unwrap();
    let cfg = PublisherConfig { topics: vec!["t0".into()], capacity: 1 << 16, ..Default::default() };
    let rust_pub =
        TickPublisher::start(&engine, ztick::Endpoint::unique_inproc("abi-rust"), None, cfg).unwrap();
    let (mut c_engine, mut c_pub) = (null_mut(), null_mut());
    let name = CString::new(format!("inproc://abi-c-{}", std::process::id())).unwrap();
    let t0 = CString::new("t0").unwrap();
    let topics = [t0.as_ptr()];
    let mut o = std::mem::MaybeUninit::<PublisherOptions>::uninit();
    // SAFETY: fresh handles, freed at the end; the options are initialised before use.
    unsafe {
        ok(ztick_publisher_options_init(o.as_mut_ptr()));
        let mut o = o.assume_init();
        o.capacity = 1 << 16;
        ok(ztick_engine_new(0, &mut c_engine));
        ok(ztick_publisher_new(c_engine, name.as_ptr(), topics.as_ptr(), 1, &o, &mut c_pub));
    }
    let tick = [0u8; 16];
    // Waits (sleeping, not spinning) until a worker has taken every tick handed to it.
    let drained = |published: &dyn Fn() -> u64, want: u64| {
        let deadline = Instant::now() + WAIT;
        while published() < want {
            assert!(Instant::now() < deadline, "the publisher's worker did not drain");
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    let time = |n: u64, f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        t.elapsed().as_nanos() as f64 / n as f64
    };
    let (mut r_rec, mut c_rec, mut r_pub, mut c_pubs) = (vec![], vec![], vec![], vec![]);
    for round in 0..ROUNDS {
        let mut rust_record = || {
            r_rec.push(time(CALLS, &mut || {
                for i in 0..CALLS {
                    rust.record((i & 0xffff) + 1);
                }
            }))
        };
        let mut c_record = || {
            c_rec.push(time(CALLS, &mut || {
                for i in 0..CALLS {
                    // SAFETY: a live recorder used by this thread only.
                    if unsafe { ztick_recorder_record(c, (i & 0xffff) + 1) } != OK {
                        std::process::abort();
                    }
                }
            }))
        };
        if round % 2 == 0 {
            rust_record();
            c_record();
        } else {
            c_record();
            rust_record();
        }
        let done = (round as u64 + 1) * PUBLISHES;
        let mut rust_publish = || {
            r_pub.push(time(PUBLISHES, &mut || {
                for _ in 0..PUBLISHES {
                    rust_pub.publish(0, &tick).unwrap();
                }
            }));
            drained(&|| rust_pub.published(), done);
        };
        let mut c_publish = || {
            c_pubs.push(time(PUBLISHES, &mut || {
                for _ in 0..PUBLISHES {
                    // SAFETY: a live publisher; the tick is readable for its length.
                    if unsafe { ztick_publisher_publish(c_pub, 0, tick.as_ptr(), tick.len()) } != OK {
                        std::process::abort();
                    }
                }
            }));
            // SAFETY: a live publisher.
            drained(&|| unsafe { ztick_publisher_published(c_pub) }, done);
        };
        if round % 2 == 0 {
            rust_publish();
            c_publish();
        } else {
            c_publish();
            rust_publish();
        }
    }
    // SAFETY: live handles, freed once.
    unsafe {
        assert_eq!(ztick_recorder_count(c), rust.len());
        ztick_recorder_free(c);
        ok(ztick_publisher_finish(c_pub, 0, null_mut()));
        ztick_publisher_free(c_pub);
        ztick_engine_free(c_engine);
    }
    rust_pub.finish(Duration::ZERO).unwrap();
    let (rr, cr, rp, cp) = (median(r_rec), median(c_rec), median(r_pub), median(c_pubs));
    println!("Rust LatencyRecorder::record          {rr:7.2} ns/call (median of {ROUNDS} rounds of {CALLS})");
    println!("Rust ztick_recorder_record (C ABI)    {cr:7.2} ns/call ({:+.2} ns)", cr - rr);
    println!(
        "Rust TickPublisher::publish           {rp:7.2} ns/call (median of {ROUNDS} rounds of {PUBLISHES})"
    );
    println!("Rust ztick_publisher_publish (C ABI)  {cp:7.2} ns/call ({:+.2} ns)", cp - rp);
}
