//! The fan-out against hostile peers, as real `ztick fanout` processes attacked with plain
//! ZeroMQ sockets on loopback: a rogue publisher that lies about sequences and snapshots,
//! strangers flooding a publisher's side channel, fake subscribers and forged
//! acknowledgements. Each test asserts the bound (counts, exit codes, resident memory),
//! not only that nothing crashed; the binaries are debug builds, so any arithmetic on
//! peer input that could overflow would panic here.
//!
//! Every wait is bounded and waits for what the other side did (a subscription seen, a
//! line printed, a process ended); nothing sleeps.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::process::{describe, json, wait_group, Finished, Proc, TestEndpoint, DEADLINE};
use common::WAIT;
use serde_json::Value;
use ztick::fanout::wire::{BodyWriter, Kind, DONE_ACK, HELLO_PREFIX, HELLO_REQUEST, SNAPSHOT_REQUEST};

/// The epoch the rogue publisher claims.
const EPOCH: u64 = 0xBAD_5EED;

/// Resident and peak memory of a process in KiB, from `/proc/PID/status`.
fn memory_kb(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status.lines().find_map(|l| l.strip_prefix(name)?.split_whitespace().next()?.parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Samples a process's peak memory every few milliseconds until it exits (or the sampler
/// is dropped): the last peak read is the process's peak to within one sample.
struct PeakSampler {
    peak_kb: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PeakSampler {
    fn start(pid: u32) -> PeakSampler {
        let (peak_kb, stop) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
        let (peak, halt) = (Arc::clone(&peak_kb), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + DEADLINE;
            while !halt.load(Ordering::Relaxed) && Instant::now() < deadline {
                match memory_kb(pid) {
                    Some((_, hwm)) => peak.fetch_max(hwm, Ordering::Relaxed),
                    None => break,
                };
                std::thread::sleep(Duration::from_millis(5)); // a sampling period, not a wait
            }
        });
        PeakSampler { peak_kb, stop, thread: Some(thread) }
    }

    fn peak_kb(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.peak_kb.load(Ordering::Relaxed)
    }
}

/// A publisher process waiting for `subscribers`, with a small retransmit ring (so memory
/// figures show the attack, not the ring filling).
fn publisher(feed: &str, side: &str, subscribers: usize, extra: &[&str]) -> Proc {
    let args = [&["--ring-bytes", "1048576"], extra].concat();
    common::process::fanout_publisher(feed, side, subscribers, &args)
}

/// A subscriber process of `topics` topics.
fn subscriber(feed: &str, side: Option<&str>, topics: usize, extra: &[&str]) -> Proc {
    let n = topics.to_string();
    let mut args = vec!["fanout", "--role", "sub", "--connect", feed, "--topics", &n, "--json"];
    if let Some(side) = side {
        args.extend_from_slice(&["--snapshot", side]);
    }
    args.extend_from_slice(extra);
    Proc::spawn(&args)
}

fn finish(p: Proc) -> Finished {
    wait_group(vec![p], DEADLINE).pop().expect("one process")
}

fn n(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("no {key} in {v}"))
}

fn socket(ctx: &zmq::Context, kind: zmq::SocketType) -> zmq::Socket {
    let s = ctx.socket(kind).unwrap();
    s.set_linger(0).unwrap();
    s.set_rcvtimeo(WAIT.as_millis() as i32).unwrap();
    s.set_sndtimeo(WAIT.as_millis() as i32).unwrap();
    s
}

/// A rogue publisher: an XPUB bound where the victim connects, which knows when the
/// victim's subscriptions are in (so nothing it sends is lost to the slow-joiner race).
struct RoguePublisher {
    xpub: zmq::Socket,
    body: BodyWriter,
}

impl RoguePublisher {
    fn bind(ctx: &zmq::Context, feed: &str) -> RoguePublisher {
        let xpub = socket(ctx, zmq::XPUB);
        xpub.bind(feed).unwrap();
        RoguePublisher { xpub, body: BodyWriter::new(Kind::Data, EPOCH) }
    }

    /// Waits (bounded by the receive timeout) for the victim's group subscription.
    fn wait_subscribed(&self) {
        loop {
            let m = self.xpub.recv_bytes(0).expect("the victim subscribed within the wait");
            if m.first() == Some(&1) && !m[1..].starts_with(HELLO_PREFIX) {
                return;
            }
        }
    }

    fn send(&self) {
        self.xpub.send_multipart([&b"g0."[..], self.body.as_bytes()], 0).unwrap();
    }

    /// Sends one data body of `(topic, seq)` ticks.
    fn ticks(&mut self, ticks: impl IntoIterator<Item = (usize, u64)>) {
        self.body.start(Kind::Data);
        for (topic, seq) in ticks {
            self.body.push(format!("t{topic}").as_bytes(), seq, ztick::now_ns(), b"forged");
        }
        self.body.stamp_sent(ztick::now_ns());
        self.send();
    }

    /// Sends end markers claiming each topic's last sequence.
    fn end(&mut self, last: &[u64]) {
        self.body.start(Kind::End);
        for (topic, &seq) in last.iter().enumerate() {
            self.body.push_last(format!("t{topic}").as_bytes(), seq, b"");
        }
        self.send();
    }
}

#[test]
fn a_forged_sequence_near_u64_max_is_counted_and_not_believed() {
    let feed = TestEndpoint::new("ipc");
    let ctx = zmq::Context::new();
    let mut rogue = RoguePublisher::bind(&ctx, &feed.url);
    let sub = subscriber(&feed.url, None, 2, &["--timeout-ms", "20000"]);
    rogue.wait_subscribed();
    for seq in 1..=50 {
        rogue.ticks([(0, seq), (1, seq)]);
    }
    // Before: missing = 18446744073709551603 and every later real tick "stale".
    rogue.ticks([(0, u64::MAX - 1)]);
    for seq in 51..=100 {
        rogue.ticks([(0, seq), (1, seq)]);
    }
    rogue.end(&[100, 100]);
    let f = finish(sub);
    assert_eq!(f.status.code(), Some(0), "{}", describe(&f));
    let v = json(&f);
    let s = &v["subscribers"][0];
    assert_eq!((n(s, "received"), n(s, "missing")), (200, 0), "{s}");
    assert_eq!(n(s, "implausible"), 1, "the forged sequence is counted: {s}");
    assert_eq!(v["accounting_closes"], true, "{v}");
}

#[test]
fn end_markers_claiming_u64_max_neither_wrap_the_totals_nor_end_the_stream() {
    let feed = TestEndpoint::new("ipc");
    let ctx = zmq::Context::new();
    let mut rogue = RoguePublisher::bind(&ctx, &feed.url);
    let sub = subscriber(&feed.url, None, 2, &["--timeout-ms", "20000", "--liveness-ms", "500"]);
    rogue.wait_subscribed();
    for seq in 1..=10 {
        rogue.ticks([(0, seq), (1, seq)]);
    }
    // Before: `published` and `missing` wrapped (and a debug build panicked).
    rogue.end(&[u64::MAX, u64::MAX]);
    // The ends were not believed, so the stream is still open until the rogue goes quiet:
    // the subscriber reports the publisher lost, with only what it really saw.
    let f = finish(sub);
    assert_eq!(f.status.code(), Some(3), "publisher lost: {}", describe(&f));
    let v = json(&f);
    let s = &v["subscribers"][0];
    assert_eq!(s["outcome"], "publisher_lost", "{s}");
    assert_eq!((n(s, "received"), n(s, "missing")), (20, 0), "{s}");
    assert_eq!(n(s, "implausible"), 2, "{s}");
    assert_eq!(n(&v, "published"), 20, "{v}");
}

#[test]
fn a_snapshot_nobody_asked_for_is_refused_and_counted() {
    let (feed, side) = (TestEndpoint::new("ipc"), TestEndpoint::new("ipc"));
    let ctx = zmq::Context::new();
    let mut rogue = RoguePublisher::bind(&ctx, &feed.url);
    let router = socket(&ctx, zmq::ROUTER);
    router.bind(&side.url).unwrap();
    let sub = subscriber(&feed.url, Some(&side.url), 2, &["--timeout-ms", "20000", "--no-repair"]);
    rogue.wait_subscribed();
    // The victim introduces itself on the side channel; answer with a snapshot it did not
    // ask for (no --snapshot-join), claiming each topic is at 2^64 - 2.
    let rid = loop {
        let frames = router.recv_multipart(0).expect("the victim's introduction");
        if frames.get(1).map(Vec::as_slice) == Some(HELLO_REQUEST) {
            break frames[0].clone();
        }
    };
    let mut snapshot = BodyWriter::new(Kind::Snapshot, EPOCH);
    snapshot.push_last(b"t0", u64::MAX - 1, b"");
    snapshot.push_last(b"t1", u64::MAX - 1, b"");
    router.send_multipart([rid.as_slice(), snapshot.as_bytes()], 0).unwrap();
    for seq in 1..=100 {
        rogue.ticks([(0, seq), (1, seq)]);
    }
    rogue.end(&[100, 100]);
    let f = finish(sub);
    // Before: 0 received, 0 missing, 100 published.
    let v = json(&f);
    let s = &v["subscribers"][0];
    assert_eq!((n(s, "received"), n(s, "missing")), (200, 0), "{}", describe(&f));
    assert!(n(s, "decode_errors") >= 1, "the unasked snapshot is counted: {s}");
    assert_eq!(v["accounting_closes"], true, "{v}");
}

/// Sends `count` snapshot requests with `id_bytes`-byte hello ids nobody subscribed with,
/// from one DEALER; returns once they are all sent.
fn flood_snapshot_requests(ctx: &zmq::Context, side: &str, count: usize, id_bytes: usize) {
    let dealer = socket(ctx, zmq::DEALER);
    // Closing must not discard what is still queued: the whole flood reaches the publisher.
    dealer.set_linger(WAIT.as_millis() as i32).unwrap();
    dealer.connect(side).unwrap();
    let mut id = vec![b'x'; id_bytes];
    for i in 0..count {
        id[..8].copy_from_slice(&(i as u64).to_le_bytes());
        dealer.send_multipart([SNAPSHOT_REQUEST, id.as_slice()], 0).expect("the publisher takes requests");
    }
}

#[test]
fn a_snapshot_flood_from_strangers_leaves_the_publishers_memory_bounded() {
    let (feed, side) = (TestEndpoint::new("ipc"), TestEndpoint::new("ipc"));
    let publisher = publisher(&feed.url, &side.url, 1, &["--duration", "0.5"]);
    let ctx = zmq::Context::new();
    // A subscriber of the feed to know the publisher is up (its subscription reaches it).
    let (rss_before_kb, _) = {
        let probe = socket(&ctx, zmq::SUB);
        probe.set_subscribe(b"").unwrap();
        probe.connect(&feed.url).unwrap();
        common::wait_until(
            || memory_kb(publisher.child.id()).is_some_and(|(rss, _)| rss > 0) && side_is_bound(&side.url),
            || "the publisher never bound its side channel".into(),
        );
        memory_kb(publisher.child.id()).expect("the publisher runs")
    };
    let sampler = PeakSampler::start(publisher.child.id());
    // Before: 20,000 requests of 16 KiB took a publisher from 7 MB to 344 MB, for good.
    flood_snapshot_requests(&ctx, &side.url, 10_000, 16 << 10);
    flood_snapshot_requests(&ctx, &side.url, 10_000, 200);
    // The publisher logs its evictions by the thousand: wait until it has taken the flood.
    assert!(publisher.wait_line("evicted=18000", WAIT), "the publisher never took the flood");
    let sub = subscriber(&feed.url, Some(&side.url), 8, &["--timeout-ms", "20000"]);
    let done = wait_group(vec![publisher, sub], DEADLINE);
    let peak_kb = sampler.peak_kb();
    let (p, s) = (json(&done[0]), json(&done[1]));
    assert_eq!(done[0].status.code(), Some(0), "{}", describe(&done[0]));
    assert_eq!(s["accounting_closes"], true, "the real subscriber is served: {s}");
    // Every long id refused at once, and all but the newest 1,024 short ones dropped: each
    // counted, once. (More than 18,976 when the real subscriber's request, parked until its
    // hello shows up on the feed, pushes out one more stranger or strangers' requests expire.)
    let evicted = n(&p["publisher"], "peers_evicted");
    assert!((10_000 + 10_000 - 1024..=20_000).contains(&evicted), "{evicted} evicted: {p}");
    let growth_mb = peak_kb.saturating_sub(rss_before_kb) / 1024;
    eprintln!(
        "snapshot flood: publisher RSS {rss_before_kb} KiB before, peak {peak_kb} KiB (+{growth_mb} MB)"
    );
    assert!(growth_mb < 48, "the flood grew the publisher by {growth_mb} MB (peak {peak_kb} KiB)");
}

/// Whether something accepts connections on the ipc endpoint `url`.
fn side_is_bound(url: &str) -> bool {
    let path = url.trim_start_matches("ipc://");
    std::os::unix::net::UnixStream::connect(path).is_ok()
}

#[test]
fn fake_subscribers_and_forged_acknowledgements_count_for_nothing() {
    let (feed, side) = (TestEndpoint::new("ipc"), TestEndpoint::new("ipc"));
    let publisher = publisher(&feed.url, &side.url, 3, &["--duration", "0.2", "--wait-ms", "3000"]);
    let ctx = zmq::Context::new();
    // One rogue SUB subscribes with 5,000 hellos, and one rogue DEALER says all of them.
    // Before: its hellos alone satisfied --subscribers 3 and it acknowledged for all.
    let sub = socket(&ctx, zmq::SUB);
    sub.connect(&feed.url).unwrap();
    let dealer = socket(&ctx, zmq::DEALER);
    dealer.connect(&side.url).unwrap();
    for i in 0..5_000u32 {
        let id = format!("rogue-{i:08}");
        sub.set_subscribe(&[HELLO_PREFIX, id.as_bytes()].concat()).unwrap();
        dealer.send_multipart([HELLO_REQUEST, id.as_bytes()], 0).unwrap();
        dealer.send_multipart([DONE_ACK, id.as_bytes()], 0).unwrap();
    }
    let f = finish(publisher);
    // One connection speaks for one hello: at most one of the rogue's counts, so the
    // publisher gives up waiting for three.
    assert_eq!(f.status.code(), Some(4), "timed out waiting: {}", describe(&f));
    assert!(f.stderr.contains("of 3 subscribers connected"), "{}", describe(&f));
    assert!(!f.stderr.contains("3 subscribers connected;"), "{}", describe(&f));
    let v = json(&f);
    // Its one bound connection is one subscriber and may acknowledge for itself; none of
    // its other 4,999 acknowledgements counts.
    assert!(n(&v["publisher"], "acks") <= 1, "forged acknowledgements: {v}");
    assert!(n(&v["publisher"], "peers_evicted") > 0, "the hellos past the cap are counted: {v}");
}

/// With CURVE and a ZAP allow-list, a hello is bound to the key that subscribed with it:
/// another allowed client that learned the id can neither take the hello over, nor ask
/// for its repairs or clock, nor acknowledge the end for it.
#[test]
fn with_curve_an_allowed_client_cannot_speak_for_another_clients_hello() {
    use ztick::curve::{Curve, KeyPair};
    use ztick::fanout::wire::{self, CLOCK_REQUEST};
    use ztick::fanout::{PublisherConfig, TickPublisher};
    use ztick::zap::{ZapHandler, ZapPolicy};
    if !ztick::info::BuildInfo::current().curve {
        // tests/curve.rs checks that this build refuses CURVE with a clear error.
        eprintln!("no CURVE in this build: scripts/system-libzmq.sh test runs this test");
        return;
    }
    let engine = ztick::Engine::new().unwrap();
    let (server, a, b) =
        (KeyPair::generate().unwrap(), KeyPair::generate().unwrap(), KeyPair::generate().unwrap());
    let zap = ZapHandler::spawn(&engine, ZapPolicy::default().allow_keys([a.public, b.public])).unwrap();
    let cfg = PublisherConfig {
        curve: Some(Curve::Server { secret: server.secret }),
        ..PublisherConfig::default()
    };
    let any = ztick::Endpoint::tcp_loopback_any;
    let publisher = TickPublisher::start(&engine, any(), Some(any()), cfg).unwrap();
    let (feed, side) = (publisher.endpoint().to_string(), publisher.side_endpoint().unwrap().to_string());
    let ctx = zmq::Context::new();
    let client = |kind, me: &KeyPair, url: &str| {
        let s = socket(&ctx, kind);
        s.set_curve_serverkey(server.public.as_bytes()).unwrap();
        s.set_curve_publickey(me.public.as_bytes()).unwrap();
        s.set_curve_secretkey(me.secret.as_bytes()).unwrap();
        s.set_rcvtimeo(WAIT.as_millis() as i32).unwrap();
        s.connect(url).unwrap();
        s
    };
    let hello = |id: &str| [HELLO_PREFIX, id.as_bytes()].concat();
    let clock = |dealer: &zmq::Socket, id: &str, t1: u64| {
        dealer.send_multipart([CLOCK_REQUEST, id.as_bytes(), &t1.to_le_bytes()], 0).unwrap();
    };
    let answered_t1 = |dealer: &zmq::Socket| {
        let body = dealer.recv_bytes(0).expect("a clock reply within the wait");
        wire::decode(&body).and_then(|d| d.clock()).expect("a clock body").t1
    };
    // The victim, with key A: subscribed, introduced, answered.
    let sub_a = client(zmq::SUB, &a, &feed);
    sub_a.set_subscribe(&hello("victim")).unwrap();
    let dealer_a = client(zmq::DEALER, &a, &side);
    dealer_a.send_multipart([HELLO_REQUEST, b"victim"], 0).unwrap();
    assert!(publisher.wait_subscribers(1, WAIT), "the victim is a subscriber");
    clock(&dealer_a, "victim", 333);
    assert_eq!(answered_t1(&dealer_a), 333);
    // The rogue, with key B, has two hellos of its own (subscribed in this order, so once
    // the second counts the first has arrived too).
    let sub_b = client(zmq::SUB, &b, &feed);
    sub_b.set_subscribe(&hello("rogue-2")).unwrap();
    sub_b.set_subscribe(&hello("rogue-1")).unwrap();
    let dealer_b1 = client(zmq::DEALER, &b, &side);
    dealer_b1.send_multipart([HELLO_REQUEST, b"rogue-1"], 0).unwrap();
    assert!(publisher.wait_subscribers(2, WAIT), "the rogue's own hello counts");
    // From a fresh connection it says the victim's id: without the key binding this
    // takes the hello over (as a reconnected side channel may) and all three are served.
    let dealer_b2 = client(zmq::DEALER, &b, &side);
    dealer_b2.send_multipart([HELLO_REQUEST, b"victim"], 0).unwrap();
    dealer_b2.send_multipart([DONE_ACK, b"victim"], 0).unwrap();
    clock(&dealer_b2, "victim", 111);
    // Then, on the same connection, its own second hello: its answer shows the three
    // before it were handled.
    dealer_b2.send_multipart([HELLO_REQUEST, b"rogue-2"], 0).unwrap();
    clock(&dealer_b2, "rogue-2", 222);
    assert_eq!(answered_t1(&dealer_b2), 222, "the victim's clock was not answered to the rogue");
    assert_eq!(publisher.subscribers(), 3);
    // The victim's binding stands.
    clock(&dealer_a, "victim", 444);
    assert_eq!(answered_t1(&dealer_a), 444);
    let report = publisher.finish(Duration::ZERO).unwrap();
    assert_eq!(report.acks, 0, "the forged acknowledgement did not count");
    let decided = zap.stop().unwrap();
    assert_eq!((decided.allowed, decided.denied), (5, 0), "five CURVE connections, all allowed");
}

/// A "publisher" that announces a 1 GiB frame is dropped when libzmq reads the frame's
/// size (the SUB's `ZMQ_MAXMSGSIZE`, 16 MiB by default), before the subscriber buffers it:
/// the subscriber stays small and ends with its report when its wait is over. (libzmq
/// takes an oversized frame for a protocol error and does not reconnect to that endpoint.)
#[test]
fn a_publisher_announcing_a_huge_frame_is_dropped_before_the_subscriber_buffers_it() {
    use common::zmtp::{rss_kib, RawPeer};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("tcp://{}", listener.local_addr().unwrap());
    let sub = subscriber(&url, None, 2, &["--timeout-ms", "3000"]);
    let pid = sub.child.id();
    let mut rogue = RawPeer::accept(&listener, "PUB").unwrap();
    let before = rss_kib(pid);
    let (sent, hung_up) = rogue.zeros(1 << 30, false);
    assert!(hung_up, "the subscriber took all of a 1 GiB frame");
    let grew_mb = rss_kib(pid).saturating_sub(before) as f64 / 1024.0;
    assert!(sent < 64 << 20, "{sent} bytes went in before the subscriber hung up");
    assert!(grew_mb < 32.0, "the subscriber grew {grew_mb:.1} MB");
    let f = finish(sub);
    assert_eq!(f.status.code(), Some(4), "a timeout, reported: {}", describe(&f));
    let s = &json(&f)["subscribers"][0];
    assert_eq!((n(s, "received"), s["outcome"].as_str()), (0, Some("timeout")), "{s}");
}
