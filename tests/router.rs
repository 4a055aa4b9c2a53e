//! The asynchronous DEALER/ROUTER server: many clients at once, answers later and from
//! other threads, envelopes kept for REQ clients, and bad input counted.

mod common;

use std::collections::HashMap;

use common::{connect, ep, with_timeout, TRANSPORTS, WAIT};
use ztick::patterns::{Peer, Router, Socket};
use ztick::{Endpoint, Engine, SocketKind};

#[test]
fn many_dealers_get_their_own_answers_over_every_transport() {
    with_timeout(WAIT, || {
        let engine = Engine::new().unwrap();
        for t in TRANSPORTS {
            // Two answers per request: an immediate ack, and the doubled body.
            let router = Router::builder(Endpoint::local(t, "router-many"))
                .spawn(&engine, |out, peer, body| {
                    out.send(peer, &[b"ack", body[0]])?;
                    out.send(peer, &[&body[0].repeat(2)])
                })
                .unwrap();
            let target = ep(router.endpoint());
            let mut clients: Vec<Socket> =
                (0..4).map(|_| connect(&engine, SocketKind::Dealer, &target)).collect();
            // All clients send all their requests before reading: the server is asynchronous.
            for (c, s) in clients.iter_mut().enumerate() {
                for i in 0..10 {
                    s.send(&[format!("c{c}r{i}").as_bytes()]).unwrap();
                }
            }
            for (c, s) in clients.iter_mut().enumerate() {
                for i in 0..10 {
                    let body = format!("c{c}r{i}").into_bytes();
                    assert_eq!(s.recv_timeout(WAIT).unwrap(), vec![b"ack".to_vec(), body.clone()], "{t:?}");
                    assert_eq!(s.recv_timeout(WAIT).unwrap(), vec![body.repeat(2)], "{t:?}");
                }
            }
            let stats = router.stop().unwrap();
            assert_eq!((stats.handled, stats.malformed()), (40, 0), "{t:?}");
        }
    });
}

#[test]
fn answers_can_come_later_from_another_thread() {
    with_timeout(WAIT, || {
        let engine = Engine::new().unwrap();
        let (tx, rx) = crossbeam_channel::unbounded::<(Peer, Vec<u8>)>();
        let router = Router::builder(Endpoint::unique_inproc("router-later"))
            .spawn(&engine, move |_, peer, body| {
                let _ = tx.send((peer.clone(), body[0].to_vec()));
                Ok(())
            })
            .unwrap();
        let target = ep(router.endpoint());
        let mut a = connect(&engine, SocketKind::Dealer, &target);
        let mut b = connect(&engine, SocketKind::Req, &target);
        a.send(&[b"from-a"]).unwrap();
        b.send(&[b"from-b"]).unwrap();
        let mut peers = HashMap::new();
        for _ in 0..2 {
            let (peer, body) = common::recv(&rx, "a request");
            peers.insert(body, peer);
        }
        // Answer in the opposite order, from this thread.
        let sender = router.sender();
        std::thread::spawn(move || {
            sender.send_to(&peers[&b"from-b".to_vec()], &[b"to-b"]).unwrap();
            sender.send_to(&peers[&b"from-a".to_vec()], &[b"to-a"]).unwrap();
        })
        .join()
        .unwrap();
        // The REQ client's envelope (its delimiter) was kept, so its socket accepts the answer.
        assert_eq!(b.recv_timeout(WAIT).unwrap(), vec![b"to-b".to_vec()]);
        assert_eq!(a.recv_timeout(WAIT).unwrap(), vec![b"to-a".to_vec()]);
        router.stop().unwrap();
    });
}

#[test]
fn bad_input_is_counted_and_others_are_still_served() {
    with_timeout(WAIT, || {
        let engine = Engine::new().unwrap();
        for t in TRANSPORTS {
            let router = Router::builder(Endpoint::local(t, "router-bad"))
                .max_request_bytes(100)
                .spawn(&engine, |out, peer, body| out.send(peer, body))
                .unwrap();
            let target = ep(router.endpoint());
            let mut bad = connect(&engine, SocketKind::Dealer, &target);
            bad.send(&[b""]).unwrap(); // empty
            bad.send(&[b"", b"", b""]).unwrap(); // only delimiters, no content
            bad.send(&[&[1u8; 101]]).unwrap(); // too large
            let mut good = connect(&engine, SocketKind::Dealer, &target);
            good.send(&[b"ok"]).unwrap();
            assert_eq!(good.recv_timeout(WAIT).unwrap(), vec![b"ok".to_vec()], "{t:?}");
            bad.send(&[b"me too"]).unwrap();
            assert_eq!(bad.recv_timeout(WAIT).unwrap(), vec![b"me too".to_vec()], "{t:?}");
            let s = router.stop().unwrap();
            assert_eq!((s.handled, s.empty, s.too_large), (2, 2, 1), "{t:?}: {s:?}");
        }
    });
}
