//! Request/reply over every transport, typed and raw; bad input from raw peers; and the
//! Lazy Pirate client's retries against a dead, restarted or confused server.

mod common;

use std::time::Duration;

use common::{bind, connect, ep, with_timeout, TRANSPORTS, WAIT};
use ztick::patterns::{Replier, Requester};
use ztick::{codec, Endpoint, Engine, Error, SocketKind};

#[test]
fn raw_request_reply_over_every_transport() {
    with_timeout(WAIT, || {
        let engine = Engine::new().unwrap();
        for t in TRANSPORTS {
            let replier = Replier::builder(Endpoint::local(t, "rr-raw"))
                .spawn(&engine, |body| body.iter().rev().map(|f| f.to_vec()).collect())
                .unwrap();
            let mut client =
                Requester::builder(ep(replier.endpoint())).timeout(WAIT).connect(&engine).unwrap();
            for i in 0..50u32 {
                let n = i.to_le_bytes();
                let reply = client.request(&[b"first", &n]).unwrap();
                assert_eq!(reply, vec![n.to_vec(), b"first".to_vec()], "{t:?} request {i}");
            }
            assert_eq!(client.stats().answered, 50);
            let stats = replier.stop().unwrap();
            assert_eq!((stats.handled, stats.malformed()), (50, 0), "{t:?}");
        }
    });
}

#[test]
fn typed_request_reply_over_every_transport() {
    with_timeout(WAIT, || {
        let engine = Engine::new().unwrap();
        for t in TRANSPORTS {
            let replier = Replier::builder(Endpoint::local(t, "rr-typed"))
                .spawn_typed(&engine, |(sym, qty): (String, u64)| format!("{sym}:{}", qty * 2))
                .unwrap();
            let mut client =
                Requester::builder(ep(replier.endpoint())).timeout(WAIT).connect(&engine).unwrap();
            for qty in 0..20u64 {
                let r: String = client.call(&("EURUSD".to_string(), qty)).unwrap();
                assert_eq!(r, format!("EURUSD:{}", qty * 2), "{t:?}");
            }
            replier.stop().unwrap();
        }
    });
}

#[test]
fn a_plain_req_socket_is_answered_too() {
    with_timeout(WAIT, || {
        let engine = Engine::new().unwrap();
        let replier = Replier::builder(Endpoint::tcp_loopback_any())
            .spawn(&engine, |body| vec![[body[0], b"!"].concat()])
            .unwrap();
        let mut req = connect(&engine, SocketKind::Req, &ep(replier.endpoint()));
        for _ in 0..3 {
            req.send(&[b"hi"]).unwrap();
            assert_eq!(req.recv_timeout(WAIT).unwrap(), vec![b"hi!".to_vec()]);
        }
        replier.stop().unwrap();
    });
}

/// Every kind of garbage from a raw DEALER is refused and counted, and a valid request
/// from another client is still answered afterwards.
#[test]
fn malformed_requests_are_counted_and_service_goes_on() {
    with_timeout(WAIT, || {
        let engine = Engine::new().unwrap();
        for t in TRANSPORTS {
            let replier = Replier::builder(Endpoint::local(t, "rr-bad"))
                .max_request_bytes(1024)
                .spawn_typed(&engine, |x: u64| x + 1)
                .unwrap();
            let target = ep(replier.endpoint());
            let mut raw = connect(&engine, SocketKind::Dealer, &target);
            raw.send(&[b"no delimiter"]).unwrap(); // wrong frames: no envelope
            raw.send(&[b""]).unwrap(); // empty: delimiter, no body
            raw.send(&[b"", b""]).unwrap(); // empty body frame
            raw.send(&[b"", &[7u8; 2048]]).unwrap(); // too large
            raw.send(&[b"", &[0xff, 0xff, 0xff]]).unwrap(); // not a bincode u64
            raw.send(&[b"", b"\x01", b"\x02"]).unwrap(); // typed body must be one frame
            let good = codec::encode(&41u64).unwrap();
            raw.send(&[b"", &good]).unwrap(); // valid, from the same peer
            let reply = raw.recv_timeout(WAIT).unwrap();
            assert_eq!(reply.len(), 2, "{t:?}: {reply:?}");
            assert_eq!(codec::decode::<u64>(&reply[1], "test").unwrap(), 42);

            let mut client = Requester::builder(target).timeout(WAIT).connect(&engine).unwrap();
            assert_eq!(client.call::<u64, u64>(&1).unwrap(), 2, "{t:?}: another client still served");
            let s = replier.stop().unwrap();
            assert_eq!(s.handled, 2, "{t:?}: {s:?}");
            assert_eq!((s.bad_frames, s.empty, s.too_large, s.undecodable), (2, 2, 1, 1), "{t:?}: {s:?}");
        }
    });
}

#[test]
fn a_missing_server_is_a_clear_failure_after_the_retries() {
    with_timeout(WAIT, || {
        let engine = Engine::new().unwrap();
        let nobody = Endpoint::unique_ipc("rr-nobody");
        let mut client = Requester::builder(nobody.clone())
            .timeout(Duration::from_millis(50))
            .retries(2)
            .connect(&engine)
            .unwrap();
        let err = client.request(&[b"anyone?"]).unwrap_err();
        assert!(matches!(err, Error::NoReply { tries: 3, .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains(&nobody.to_string()) && text.contains("3 tries"), "{text}");
        let s = client.stats();
        assert_eq!((s.requests, s.retries, s.failed, s.answered), (1, 2, 1, 0));
    });
}

/// A server that answers try 2 first with try 1's id (a late reply) and then correctly:
/// the late reply is discarded, never returned as try 2's answer.
#[test]
fn a_late_reply_to_an_earlier_try_is_discarded() {
    with_timeout(WAIT, || {
        let engine = Engine::new().unwrap();
        let mut server = bind(&engine, SocketKind::Router, &Endpoint::tcp_loopback_any());
        let target = ep(server.endpoint());
        let client = std::thread::spawn({
            let engine = Engine::new().unwrap();
            move || {
                let mut c = Requester::builder(target)
                    .timeout(Duration::from_millis(300))
                    .retries(3)
                    .connect(&engine)
                    .unwrap();
                let reply = c.request(&[b"price?"]);
                (reply, c.stats())
            }
        });
        // Try 1: [identity][request id 1][""][body]; not answered.
        let try1 = server.recv_timeout(WAIT).unwrap();
        assert_eq!(try1.len(), 4, "{try1:?}");
        // Try 2 comes from a reopened socket, so a new identity and a new request id.
        let try2 = server.recv_timeout(WAIT).unwrap();
        assert_ne!(try1[1], try2[1], "each try has its own id");
        server.send(&[&try2[0], &try1[1], b"", b"stale"]).unwrap();
        server.send(&[&try2[0], &try2[1], b"", b"fresh"]).unwrap();
        let (reply, stats) = client.join().unwrap();
        assert_eq!(reply.unwrap(), vec![b"fresh".to_vec()]);
        assert_eq!((stats.retries, stats.discarded, stats.answered), (1, 1, 1));
    });
}

/// The server dies in the middle of a stream and a new one takes its endpoint: every
/// request gets exactly one answer, the right one, thanks to the retries.
#[test]
fn lazy_pirate_survives_a_server_restart() {
    with_timeout(Duration::from_secs(60), || {
        let engine = Engine::new().unwrap();
        let serve = |body: &[&[u8]]| vec![[b"re:", body[0]].concat()];
        let first = Replier::builder(Endpoint::tcp_loopback_any()).spawn(&engine, serve).unwrap();
        let target = ep(first.endpoint());
        let (progress_tx, progress_rx) = crossbeam_channel::unbounded::<u32>();
        let client = std::thread::spawn({
            let engine = Engine::new().unwrap();
            let target = target.clone();
            move || {
                let mut c = Requester::builder(target)
                    .timeout(Duration::from_millis(200))
                    .retries(20)
                    .connect(&engine)
                    .unwrap();
                let mut answers = Vec::new();
                for i in 0..40u32 {
                    let body = format!("q{i}");
                    let reply = c.request(&[body.as_bytes()]).map_err(|e| e.to_string());
                    answers.push((i, reply));
                    let _ = progress_tx.send(i);
                }
                (answers, c.stats())
            }
        });
        // Kill the server after 10 answers; the next requests go unanswered until the new
        // server binds the same endpoint.
        for _ in 0..10 {
            common::recv(&progress_rx, "client progress");
        }
        let served_before = first.stop().unwrap().handled;
        let second = common::rebind(|| Replier::builder(target.clone()).spawn(&engine, serve));
        let (answers, stats) = client.join().unwrap();
        assert_eq!(answers.len(), 40);
        for (i, reply) in &answers {
            let want = format!("re:q{i}").into_bytes();
            assert_eq!(reply.as_ref().unwrap(), &vec![want], "request {i}");
        }
        assert_eq!((stats.requests, stats.answered, stats.failed), (40, 40, 0));
        let served_after = second.stop().unwrap().handled;
        assert!(
            served_before >= 10 && served_before + served_after >= 40,
            "{served_before} + {served_after}"
        );
    });
}
