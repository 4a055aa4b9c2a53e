//! Simple and Paranoid Pirate: a queue, workers with heartbeats, and Lazy Pirate clients.
//! Workers die in the middle of a stream and the queue restarts; every request still gets
//! exactly one answer, the right one.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{connect, wait_until, with_timeout, WAIT};
use ztick::patterns::{Heartbeat, PirateQueue, PirateWorker, Requester};
use ztick::{Endpoint, Engine, Error, SocketKind};

const HB: Heartbeat = Heartbeat { interval: Duration::from_millis(50), liveness: 3 };

fn ep(s: &str) -> Endpoint {
    s.parse().expect("resolved endpoints parse")
}

/// Serves `who:body`; the worker named `crash_at` panics on that request number instead,
/// dying with the request as a crashed process would.
fn serving(
    who: &'static str,
    crash_at: Option<u32>,
) -> impl FnMut(&[&[u8]]) -> Vec<Vec<u8>> + Send + 'static {
    let mut n = 0u32;
    move |body| {
        n += 1;
        if Some(n) == crash_at {
            panic!("{who} simulates a crash on request {n}");
        }
        vec![body[0].to_vec(), who.as_bytes().to_vec()]
    }
}

fn run_clients(engine: &Engine, frontend: &Endpoint, requests: u32) -> Vec<(u32, Vec<Vec<u8>>)> {
    let mut client = Requester::builder(frontend.clone())
        .timeout(Duration::from_millis(250))
        .retries(10)
        .connect(engine)
        .unwrap();
    let mut got = Vec::new();
    for i in 0..requests {
        let body = format!("job-{i}");
        let reply = client.request(&[body.as_bytes()]).unwrap_or_else(|e| panic!("request {i}: {e}"));
        assert_eq!(reply[0], body.as_bytes(), "request {i} got another request's answer");
        got.push((i, reply));
    }
    let s = client.stats();
    assert_eq!((s.requests, s.answered, s.failed), (u64::from(requests), u64::from(requests), 0));
    got
}

fn crash_test(heartbeat: Option<Heartbeat>) {
    let engine = Engine::new().unwrap();
    let (front_ep, back_ep) = (Endpoint::unique_ipc("pq-front"), Endpoint::unique_ipc("pq-back"));
    let queue =
        PirateQueue::builder(front_ep.clone(), back_ep.clone()).heartbeat(heartbeat).spawn(&engine).unwrap();
    let backend = ep(queue.backend());
    let doomed = PirateWorker::builder(backend.clone())
        .heartbeat(heartbeat)
        .name("doomed")
        .spawn(&engine, serving("doomed", Some(3)))
        .unwrap();
    let steady = PirateWorker::builder(backend)
        .heartbeat(heartbeat)
        .name("steady")
        .spawn(&engine, serving("steady", None))
        .unwrap();
    let answers = run_clients(&engine, &ep(queue.frontend()), 30);
    let ids: HashSet<u32> = answers.iter().map(|(i, _)| *i).collect();
    assert_eq!(ids.len(), 30, "each request answered once");
    let err = doomed.join().unwrap_err();
    assert!(
        matches!(&err, Error::WorkerPanicked { message, .. } if message.contains("simulates a crash")),
        "{err}"
    );
    let steady_stats = steady.stop().unwrap();
    let by_steady = answers.iter().filter(|(_, r)| r[1] == b"steady").count() as u64;
    // It may have served more: a retried request's first answer can arrive too late.
    assert!(steady_stats.served >= by_steady, "{steady_stats:?} vs {by_steady}");
    assert!(by_steady >= 28, "the survivor answered the rest: {by_steady}");
    let q = queue.stop().unwrap();
    assert!(q.replied >= 30, "{q:?}");
    for ep in [front_ep, back_ep] {
        if let Some(p) = ep.ipc_path() {
            let _ = std::fs::remove_file(p);
        }
    }
}

#[test]
fn paranoid_pirate_loses_no_request_when_a_worker_dies() {
    with_timeout(Duration::from_secs(60), || crash_test(Some(HB)));
}

#[test]
fn simple_pirate_loses_no_request_when_a_worker_dies() {
    with_timeout(Duration::from_secs(60), || crash_test(None));
}

/// A silent worker is dropped from the queue after its missed heartbeats.
#[test]
fn the_queue_expires_a_worker_that_stops_heartbeating() {
    with_timeout(WAIT, || {
        let engine = Engine::new().unwrap();
        let queue = PirateQueue::builder(Endpoint::unique_inproc("pq-f"), Endpoint::unique_inproc("pq-b"))
            .heartbeat(Some(HB))
            .spawn(&engine)
            .unwrap();
        // This worker says READY but never heartbeats (heartbeats off on its side).
        let mute = PirateWorker::builder(ep(queue.backend()))
            .heartbeat(None)
            .spawn(&engine, serving("mute", None))
            .unwrap();
        let deadline = std::time::Instant::now() + WAIT;
        while queue.stats().ready_workers == 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5)); // polling a counter, bounded by WAIT
        }
        while queue.stats().expired == 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let s = queue.stats();
        assert_eq!((s.expired, s.ready_workers), (1, 0), "{s:?}");
        mute.stop().unwrap();
        queue.stop().unwrap();
    });
}

/// The queue dies and comes back on the same endpoint: the worker notices the silence,
/// reconnects with back-off, and serves again.
#[test]
fn a_worker_reconnects_after_the_queue_restarts() {
    with_timeout(Duration::from_secs(60), || {
        let engine = Engine::new().unwrap();
        let first = PirateQueue::builder(Endpoint::tcp_loopback_any(), Endpoint::tcp_loopback_any())
            .heartbeat(Some(HB))
            .spawn(&engine)
            .unwrap();
        let (front, back) = (ep(first.frontend()), ep(first.backend()));
        let worker = PirateWorker::builder(back.clone())
            .heartbeat(Some(HB))
            .reconnect(Duration::from_millis(20), Duration::from_millis(200))
            .spawn(&engine, serving("w", None))
            .unwrap();
        run_clients(&engine, &front, 5);
        first.stop().unwrap();
        // Stay down until the worker has given up on the silent queue and reconnected.
        let deadline = std::time::Instant::now() + WAIT;
        while worker.stats().reconnects == 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5)); // polling a counter, bounded by WAIT
        }
        let second = common::rebind(|| {
            PirateQueue::builder(front.clone(), back.clone()).heartbeat(Some(HB)).spawn(&engine)
        });
        run_clients(&engine, &front, 5);
        let stats = worker.stop().unwrap();
        assert_eq!(stats.served, 10);
        assert!(stats.reconnects >= 1, "{stats:?}");
        second.stop().unwrap();
    });
}

/// A stranger floods a queue with no worker ready: the waiting list stops at its byte
/// limit, the rest is counted, and a real worker that turns up serves what was held.
#[test]
fn a_flood_while_no_worker_is_ready_is_held_to_the_byte_limit() {
    with_timeout(WAIT, || {
        let engine = Engine::new().unwrap();
        let limit = 1usize << 20;
        let queue = PirateQueue::builder(Endpoint::unique_inproc("pq-ff"), Endpoint::unique_inproc("pq-fb"))
            .heartbeat(None)
            .max_waiting_bytes(limit)
            .spawn(&engine)
            .unwrap();
        let mut stranger = connect(&engine, SocketKind::Dealer, &ep(queue.frontend()));
        let body = vec![7u8; 64 << 10];
        for _ in 0..200 {
            stranger.send(&[b"", &body]).unwrap();
        }
        wait_until(
            || queue.stats().waiting + queue.stats().overflowed == 200,
            || format!("{:?}", queue.stats()),
        );
        let s = queue.stats();
        // Each held request is its body and the stranger's routing id: 15 of them fill 1 MiB.
        assert!(s.waiting_bytes <= limit as u64, "{s:?}");
        assert!(s.waiting_bytes + body.len() as u64 > limit as u64, "held until full: {s:?}");
        assert_eq!((s.waiting, s.overflowed), (15, 185), "{s:?}");

        let worker = PirateWorker::builder(ep(queue.backend()))
            .heartbeat(None)
            .spawn(&engine, |b| vec![b[0][..1].to_vec()])
            .unwrap();
        wait_until(|| queue.stats().replied == 15, || format!("{:?}", queue.stats()));
        let s = queue.stats();
        assert_eq!((s.dispatched, s.waiting, s.waiting_bytes, s.stale), (15, 0, 0, 0), "{s:?}");
        worker.stop().unwrap();
        queue.stop().unwrap();
    });
}

/// Requests that waited longer than the expiry are dropped and counted, never handed to a
/// worker after their clients have retried them.
#[test]
fn requests_older_than_the_waiting_expiry_are_dropped_and_counted() {
    with_timeout(WAIT, || {
        let engine = Engine::new().unwrap();
        let expiry = Duration::from_millis(100);
        let queue = PirateQueue::builder(Endpoint::unique_inproc("pq-sf"), Endpoint::unique_inproc("pq-sb"))
            .heartbeat(None)
            .waiting_expiry(expiry)
            .spawn(&engine)
            .unwrap();
        let mut client = connect(&engine, SocketKind::Dealer, &ep(queue.frontend()));
        for _ in 0..3 {
            client.send(&[b"", b"old"]).unwrap();
        }
        wait_until(|| queue.stats().waiting == 3, || format!("{:?}", queue.stats()));
        std::thread::sleep(expiry + Duration::from_millis(20)); // the passing of the expiry is what is tested
        client.send(&[b"", b"new"]).unwrap();
        wait_until(|| queue.stats().stale == 3, || format!("{:?}", queue.stats()));
        assert_eq!(queue.stats().waiting, 1);
        let worker = PirateWorker::builder(ep(queue.backend()))
            .heartbeat(None)
            .spawn(&engine, |b| vec![b[0].to_vec()])
            .unwrap();
        wait_until(|| queue.stats().replied == 1, || format!("{:?}", queue.stats()));
        let frames = client.recv_timeout(WAIT).unwrap();
        assert_eq!(frames.last().map(Vec::as_slice), Some(&b"new"[..]));
        assert_eq!(queue.stats().dispatched, 1);
        worker.stop().unwrap();
        queue.stop().unwrap();
    });
}

/// READYs from many connections (a stranger's, or workers that came and went with
/// heartbeats off) keep at most `max_workers`, each eviction counted.
#[test]
fn ready_workers_beyond_the_cap_evict_the_least_recently_used() {
    with_timeout(WAIT, || {
        let engine = Engine::new().unwrap();
        let queue = PirateQueue::builder(Endpoint::unique_inproc("pq-wf"), Endpoint::unique_inproc("pq-wb"))
            .heartbeat(None)
            .max_workers(8)
            .spawn(&engine)
            .unwrap();
        let mut fakes = Vec::new();
        for _ in 0..50 {
            let mut s = connect(&engine, SocketKind::Dealer, &ep(queue.backend()));
            s.send(&[ztick::patterns::READY]).unwrap();
            fakes.push(s);
        }
        wait_until(|| queue.stats().evicted_workers == 42, || format!("{:?}", queue.stats()));
        assert_eq!(queue.stats().ready_workers, 8);
        queue.stop().unwrap();
    });
}
