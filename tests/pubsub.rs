//! Publish/subscribe end to end on every transport: topic prefixes, runtime (un)subscribe,
//! typed payloads, the three slow-subscriber choices measured against a stalled
//! subscriber, and malformed publications that are counted while service goes on.
//!
//! Every test synchronises on subscriptions the publisher has seen (`wait_topic`), never
//! on a sleep: that is the cure for the slow joiner.

mod common;

use std::time::Duration;

use common::{connect, engine, with_timeout, TRANSPORTS, WAIT};
use ztick::patterns::{Malformed, Publisher, SlowSubscriber, Socket, Subscriber};
use ztick::{Endpoint, Engine, SocketKind, SocketOptions, Transport};

/// Receives one publication as `(topic, payload)` strings.
fn next(sub: &Subscriber<Vec<u8>>) -> (String, String) {
    let p = sub.recv_timeout(WAIT).expect("publication");
    (String::from_utf8_lossy(&p.topic).into_owned(), String::from_utf8_lossy(&p.value).into_owned())
}

fn pair(topic: &str, payload: &str) -> (String, String) {
    (topic.to_owned(), payload.to_owned())
}

#[test]
fn topic_prefixes_route_each_publication_to_its_subscribers_on_every_transport() {
    for t in TRANSPORTS {
        with_timeout(WAIT, move || {
            let engine = engine();
            let publisher = Publisher::bind(Endpoint::local(t, "ps-topics")).spawn(&engine).unwrap();
            let ep = publisher.endpoint().clone();
            let quotes = Subscriber::builder().connect(ep.clone()).topic("quote.").spawn(&engine).unwrap();
            let both = Subscriber::builder()
                .connect(ep.clone())
                .topic("quote.EUR")
                .topic("trade.")
                .spawn(&engine)
                .unwrap();
            let all = Subscriber::builder().connect(ep).topic("").spawn(&engine).unwrap();
            publisher.wait_topic(b"quote.EURUSD", 3, WAIT).unwrap();
            publisher.wait_topic(b"trade.X", 2, WAIT).unwrap();
            assert_eq!(publisher.subscriptions().total(), 4, "{t}");

            for (topic, body) in
                [("quote.EURUSD", "1"), ("quote.GBPUSD", "2"), ("trade.EURUSD", "3"), ("news.x", "4")]
            {
                publisher.publish(topic.as_bytes(), body.as_bytes().to_vec()).unwrap();
            }
            // One publisher, so each subscriber sees its publications in publishing order.
            assert_eq!(next(&quotes), pair("quote.EURUSD", "1"), "{t}");
            assert_eq!(next(&quotes), pair("quote.GBPUSD", "2"), "{t}");
            assert_eq!(next(&both), pair("quote.EURUSD", "1"), "{t}");
            assert_eq!(next(&both), pair("trade.EURUSD", "3"), "{t}");
            for want in [("quote.EURUSD", "1"), ("quote.GBPUSD", "2"), ("trade.EURUSD", "3"), ("news.x", "4")]
            {
                assert_eq!(next(&all), pair(want.0, want.1), "{t}");
            }
            // A marker on every subscribed prefix proves nothing else was delivered before it.
            publisher.publish(b"quote.END", b"end".to_vec()).unwrap();
            publisher.publish(b"trade.END", b"end".to_vec()).unwrap();
            assert_eq!(next(&quotes), pair("quote.END", "end"), "{t}: nothing unsubscribed reached it");
            assert_eq!(next(&both), pair("trade.END", "end"), "{t}");
            assert!(quotes.try_recv().is_none() && both.try_recv().is_none());

            let stats = publisher.stop().unwrap();
            assert_eq!((stats.published, stats.refused), (6, 0), "{t}");
            assert_eq!(stats.input.malformed(), 0, "{t}");
            assert_eq!(quotes.stop().unwrap().handled, 3, "{t}");
        });
    }
}

#[test]
fn subscribe_and_unsubscribe_at_runtime_on_every_transport() {
    for t in TRANSPORTS {
        with_timeout(WAIT, move || {
            let engine = engine();
            let publisher = Publisher::bind(Endpoint::local(t, "ps-runtime")).spawn(&engine).unwrap();
            let sub = Subscriber::builder().connect(publisher.endpoint().clone()).spawn(&engine).unwrap();
            // No topic yet: nothing to wait for, nothing delivered.
            sub.subscribe(b"a.").unwrap();
            sub.subscribe(b"b.").unwrap();
            publisher.wait_subscriptions(WAIT, |s| s.holders(b"a.") == 1 && s.holders(b"b.") == 1).unwrap();
            publisher.publish(b"a.1", b"x".to_vec()).unwrap();
            publisher.publish(b"b.1", b"y".to_vec()).unwrap();
            assert_eq!(next(&sub), pair("a.1", "x"), "{t}");
            assert_eq!(next(&sub), pair("b.1", "y"), "{t}");

            sub.unsubscribe(b"b.").unwrap();
            // The publisher hears of it (the last holder left) and stops sending b.* at all.
            publisher.wait_subscriptions(WAIT, |s| s.holders(b"b.") == 0).unwrap();
            assert_eq!(publisher.subscriptions().total(), 1, "{t}");
            publisher.publish(b"b.2", b"gone".to_vec()).unwrap();
            publisher.publish(b"a.2", b"kept".to_vec()).unwrap();
            assert_eq!(next(&sub), pair("a.2", "kept"), "{t}: b.2 was filtered out");
            publisher.flush(WAIT).unwrap();
            assert_eq!(publisher.stats().published, 4, "{t}");
        });
    }
}

#[test]
fn typed_publications_decode_and_garbage_is_counted_while_service_goes_on() {
    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Quote {
        bid: u64,
        ask: u64,
        venue: String,
    }
    for t in TRANSPORTS {
        with_timeout(WAIT, move || {
            let engine = engine();
            // The subscriber binds; the real publisher and a raw "bad" one both connect.
            let sub = Subscriber::builder()
                .bind(Endpoint::local(t, "ps-typed"))
                .topic("")
                .max_msg_bytes(1024)
                .spawn_typed::<Quote>(&engine)
                .unwrap();
            let ep = sub.endpoints()[0].clone();
            let publisher = Publisher::connect(ep.clone()).spawn(&engine).unwrap();
            // An XPUB rather than a PUB, only so that the test sees the subscription arrive.
            let mut bad = connect(&engine, SocketKind::XPub, &ep);
            assert_eq!(bad.recv_timeout(WAIT).unwrap(), vec![vec![1u8]], "{t}: subscription to everything");
            publisher.wait_subscribers(1, WAIT).unwrap();

            let big = vec![7u8; 2000];
            bad.send(&[b""]).unwrap(); // empty
            bad.send(&[b"q.only-one-frame"]).unwrap(); // frames
            bad.send(&[b"q", b"x", b"three"]).unwrap(); // frames
            bad.send(&[b"q.big", &big]).unwrap(); // too large
            bad.send(&[b"q.junk", &[0xff, 0xff, 0xff, 0xff, 0xff]]).unwrap(); // undecodable
            bad.send(&[b"q.trailing", &[0, 0, 0, 0, 9]]).unwrap(); // a value plus trailing bytes
                                                                   // A valid message after the garbage, on the same connection (so it is counted first)…
            let q = Quote { bid: 1, ask: 2, venue: "raw".into() };
            let bytes = ztick::codec::encode(&q).unwrap();
            bad.send(&[b"q.raw", &bytes]).unwrap();
            let p = sub.recv_timeout(WAIT).unwrap();
            assert_eq!((p.topic.as_slice(), &p.value), (&b"q.raw"[..], &q), "{t}");
            let s = sub.input_stats();
            assert_eq!((s.empty, s.bad_frames, s.too_large, s.undecodable), (1, 2, 1, 2), "{t}: {s:?}");
            assert_eq!(s.handled, 1, "{t}");

            // …and the other publisher is still served.
            let q2 = Quote { bid: 100, ask: 101, venue: "XLON".into() };
            publisher.publish_value(b"q.EURUSD", &q2).unwrap();
            assert_eq!(sub.recv_timeout(WAIT).unwrap().value, q2, "{t}");
            let s = sub.stop().unwrap();
            assert_eq!((s.handled, s.malformed()), (2, 6), "{t}");
            assert_eq!(Malformed::TooLarge.as_str(), "too large");
        });
    }
}

#[test]
fn publisher_counts_malformed_control_messages_from_xsub_peers() {
    with_timeout(WAIT, || {
        let engine = engine();
        let publisher = Publisher::bind(Endpoint::tcp_loopback_any()).spawn(&engine).unwrap();
        let ep = publisher.endpoint().clone();
        let mut xsub = connect(&engine, SocketKind::XSub, &ep);
        xsub.send(&[&[7u8, b'x']]).unwrap(); // neither subscribe (1) nor unsubscribe (0)
        xsub.send(&[b""]).unwrap(); // empty
        xsub.send(&[&[1u8, b'o', b'k']]).unwrap(); // a real subscription, last
        publisher.wait_topic(b"ok", 1, WAIT).unwrap();
        publisher.publish(b"ok", b"served".to_vec()).unwrap();
        assert_eq!(xsub.recv_timeout(WAIT).unwrap(), vec![b"ok".to_vec(), b"served".to_vec()]);
        let s = publisher.stats().input;
        assert_eq!((s.handled, s.undecodable, s.empty), (1, 1, 1), "{s:?}");
    });
}

/// A stalled subscriber: a raw SUB socket that reads nothing until told to.
fn stalled_sub(engine: &Engine, ep: &Endpoint) -> Socket {
    let o = SocketOptions::default().recv_hwm_msgs(10);
    let mut s = Socket::connect(engine, SocketKind::Sub, ep, &o).unwrap();
    s.subscribe(b"").unwrap();
    s
}

/// Enough bytes to overflow any kernel socket buffers between the two ends.
const PAYLOAD: usize = 64 * 1024;
const COUNT: u64 = 400;

fn slow_publisher(engine: &Engine, t: Transport, choice: SlowSubscriber) -> Publisher {
    Publisher::bind(Endpoint::local(t, "ps-slow"))
        .send_hwm_msgs(10)
        .on_slow_subscriber(choice)
        .spawn(engine)
        .unwrap()
}

/// Publishes [`COUNT`] payloads of [`PAYLOAD`] bytes on `t`, each starting with its number.
fn publish_numbered(publisher: &Publisher) {
    for i in 0..COUNT {
        let mut body = vec![0u8; PAYLOAD];
        body[..8].copy_from_slice(&i.to_le_bytes());
        publisher.publish(b"t", body).unwrap();
    }
}

#[test]
fn refuse_counts_every_publication_a_slow_subscriber_could_not_take() {
    for t in TRANSPORTS {
        with_timeout(WAIT, move || {
            let engine = engine();
            let publisher = slow_publisher(&engine, t, SlowSubscriber::Refuse);
            let mut sub = stalled_sub(&engine, publisher.endpoint());
            publisher.wait_subscribers(1, WAIT).unwrap();
            publish_numbered(&publisher);
            publisher.flush(WAIT).unwrap();
            let s = publisher.stats();
            assert_eq!(s.published + s.refused, COUNT, "{t}: every publication accounted for: {s:?}");
            assert!(s.refused > 0, "{t}: the stalled subscriber forced refusals: {s:?}");
            // Everything accepted arrives, in order: refused ones are the only loss.
            let mut last = None;
            for _ in 0..s.published {
                let m = sub.recv_timeout(WAIT).unwrap();
                let i = u64::from_le_bytes(m[1][..8].try_into().unwrap());
                assert!(last.is_none_or(|l| i > l), "{t}: in order");
                last = Some(i);
            }
        });
    }
}

#[test]
fn block_delivers_everything_at_the_slow_subscribers_pace() {
    for t in TRANSPORTS {
        with_timeout(WAIT, move || {
            let engine = engine();
            let publisher = slow_publisher(&engine, t, SlowSubscriber::Block);
            let mut sub = stalled_sub(&engine, publisher.endpoint());
            publisher.wait_subscribers(1, WAIT).unwrap();
            publish_numbered(&publisher); // the hand-off channel holds them all
                                          // The publisher is stuck at the HWM now; reading lets it go on.
            for i in 0..COUNT {
                let m = sub.recv_timeout(WAIT).unwrap();
                assert_eq!(u64::from_le_bytes(m[1][..8].try_into().unwrap()), i, "{t}: none lost");
            }
            publisher.flush(WAIT).unwrap();
            let s = publisher.stats();
            assert_eq!((s.published, s.refused), (COUNT, 0), "{t}");
        });
    }
}

#[test]
fn drop_loses_silently_what_a_slow_subscriber_could_not_take() {
    for t in TRANSPORTS {
        with_timeout(WAIT, move || {
            let engine = engine();
            let publisher = slow_publisher(&engine, t, SlowSubscriber::Drop);
            let mut sub = stalled_sub(&engine, publisher.endpoint());
            publisher.wait_subscribers(1, WAIT).unwrap();
            publish_numbered(&publisher);
            publisher.flush(WAIT).unwrap();
            let s = publisher.stats();
            // libzmq took every one and the publisher cannot know which never arrived.
            assert_eq!((s.published, s.refused), (COUNT, 0), "{t}");
            let mut got = 0u64;
            let mut frames = Vec::new();
            // Drain: what is queued arrives at once; a quiet half second means the queue is empty.
            while sub.recv_into(&mut frames, Duration::from_millis(500)).unwrap() {
                got += 1;
            }
            assert!(got > 0 && got < COUNT, "{t}: {got} of {COUNT} arrived: the rest was dropped silently");
        });
    }
}
