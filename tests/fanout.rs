//! The fan-out subscriber against a hostile publisher: garbage from a peer is counted and
//! the subscriber keeps serving. (The embedded run's end-to-end tests, with the synthetic
//! feed, are the `ztick` binary's own: src/bin/ztick/fanout/tests.rs.)

mod common;

use common::{with_timeout, WAIT};
use ztick::fanout::{SubscriberConfig, TickSubscriber};
use ztick::{Endpoint, Engine, SocketKind, SocketSpec};

#[test]
fn garbage_from_a_peer_is_counted_and_the_subscriber_keeps_serving() {
    with_timeout(WAIT, || {
        let engine = Engine::new().unwrap();
        // A rogue XPUB: it tells us when the victim's subscription is in, so nothing it
        // sends afterwards can be lost to the slow-joiner race.
        let (subscribed_tx, subscribed_rx) = crossbeam_channel::bounded(4);
        let mut b = engine.worker("rogue");
        let rogue_sock = b.socket(SocketSpec::bind(SocketKind::XPub, Endpoint::unique_inproc("rogue")));
        let rogue = b
            .on_message(move |_, _, m| {
                if m.last().first() == Some(&1) {
                    let _ = subscribed_tx.try_send(());
                }
                Ok(())
            })
            .spawn()
            .unwrap();
        let cfg = SubscriberConfig {
            name: "victim".into(),
            groups: vec!["g0".into()],
            ..SubscriberConfig::for_topics(&["t0"])
        };
        let connect = rogue.endpoint(rogue_sock).unwrap().parse().unwrap();
        let victim = TickSubscriber::start(&engine, connect, None, cfg).unwrap();
        subscribed_rx.recv_timeout(WAIT).expect("victim subscribed");
        const E: [u8; 8] = [7; 8]; // an epoch
        let five_ticks_one_broken = [&[2, 0, 5, 0][..], &E, &[2, b't', b'0']].concat();
        let unknown_kind = [&[2, 9, 0, 0][..], &E].concat();
        let garbage: [&[&[u8]]; 7] = [
            &[b"g0"],                         // one frame, no NUL
            &[b"g0", b""],                    // empty body
            &[b"g0", &five_ticks_one_broken], // claims 5 ticks, holds a broken one
            &[b"g0", &[9; 12]],               // unknown version
            &[b"g0", &[1; 12]],               // version 1: no epochs
            &[b"g0", &unknown_kind],          // unknown kind
            &[b"g0", b"x", b"y"],             // three frames
        ];
        let h = rogue.handle();
        let send = |frames: Vec<Vec<u8>>| {
            let frames = frames.into_iter().map(ztick::Frame::bytes);
            h.send(rogue_sock, ztick::Outbound::multipart(frames).unwrap()).unwrap();
        };
        for _ in 0..20 {
            for g in garbage {
                send(g.iter().map(|f| f.to_vec()).collect());
            }
        }
        // Then one valid tick and the end marker: a victim still serving completes.
        let epoch = u64::from_le_bytes(E);
        let mut data = ztick::fanout::wire::BodyWriter::new(ztick::fanout::wire::Kind::Data, epoch);
        data.push(b"t0", 1, 0, b"ok");
        send(vec![b"g0".to_vec(), data.as_bytes().to_vec()]);
        let mut end = ztick::fanout::wire::BodyWriter::new(ztick::fanout::wire::Kind::End, epoch);
        end.push_last(b"t0", 1, b"ok");
        send(vec![b"g0".to_vec(), end.as_bytes().to_vec()]);
        let r = victim.finish(WAIT).unwrap();
        assert!(r.complete(), "the end marker after the garbage was handled");
        assert_eq!((r.received(), r.missing()), (1, 0));
        assert_eq!(r.decode_errors, 20 * garbage.len() as u64, "each bad message counted once");
        drop(rogue);
    });
}
