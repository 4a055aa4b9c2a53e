//! Tick fan-out end to end: exact gaps under forced drops, late joiners through the
//! snapshot, conflation, garbage from peers, and the accounting closing every time.

mod common;

use std::time::{Duration, Instant};

use common::{with_timeout, WAIT};
use ztick::fanout::{self, FanoutConfig, FeedConfig, PublisherRun, SubscriberConfig, SubscriberRun};
use ztick::{Endpoint, Engine, IdleStrategy, SocketKind, SocketSpec, Transport};

fn small_feed(rate: u64, ms: u64) -> FeedConfig {
    FeedConfig {
        topics: (0..4).map(|i| format!("t{i}")).collect(),
        rate_per_s: rate,
        duration: Duration::from_millis(ms),
        eos_linger: Duration::from_millis(300),
        ..FeedConfig::default()
    }
}

fn check_accounting(r: &fanout::FanoutReport) {
    assert!(r.accounting_closes(), "accounting: {}", r.to_json());
    for s in &r.subscribers {
        let listed: u64 = s.gaps().iter().map(|g| g.last - g.first + 1).sum();
        let all_listed = s.topics.iter().all(|(_, t)| t.gaps_unlisted() == 0);
        if all_listed {
            assert_eq!(listed, s.missing(), "gap ranges add up to missing");
        } else {
            assert!(listed < s.missing(), "unlisted ranges hold the rest");
        }
        assert_eq!(s.received() + s.missing() + s.from_snapshot(), r.publisher.published);
    }
}

#[test]
fn lossless_run_on_every_transport() {
    for t in [Transport::Inproc, Transport::Ipc, Transport::Tcp] {
        with_timeout(WAIT, move || {
            let cfg = FanoutConfig { feed: small_feed(20_000, 300), transport: t, ..FanoutConfig::default() };
            let r = fanout::run(&cfg, None).unwrap();
            check_accounting(&r);
            assert!(r.publisher.published >= 5_000, "{t}: {}", r.publisher.published);
            for s in &r.subscribers {
                assert_eq!(s.missing(), 0, "{t}: {}", r.to_json());
                assert!(s.complete, "{t}: every end marker arrives");
                assert_eq!(s.latency.len(), s.received());
            }
        });
    }
}

#[test]
fn forced_drops_are_found_exactly() {
    with_timeout(WAIT, || {
        // A tiny HWM and a consumer spending 50 us per tick against 40,000 ticks/s: the
        // publisher's XPUB must drop, and every drop must show up as an exact range.
        let mut feed = small_feed(40_000, 400);
        feed.max_batch = 1;
        let cfg = FanoutConfig {
            feed,
            transport: Transport::Ipc,
            subscribers: 1,
            hwm: Some(4),
            consumer_work: Duration::from_micros(50),
            ..FanoutConfig::default()
        };
        let r = fanout::run(&cfg, None).unwrap();
        check_accounting(&r);
        let s = &r.subscribers[0];
        assert!(s.missing() > 0, "drops expected: {}", r.to_json());
        assert!(s.received() > 0);
        assert!(s.slow, "a subscriber losing this much says it is too slow");
        for g in s.gaps() {
            assert!(g.first <= g.last && g.first >= 1);
        }
    });
}

#[test]
fn a_late_joiner_gets_snapshot_then_updates_without_gap_or_duplicate() {
    with_timeout(WAIT, || {
        let engine = Engine::new().unwrap();
        let mut feed = small_feed(20_000, 600);
        feed.wait_subscribers = 1;
        let publisher = PublisherRun::start(
            &engine,
            Endpoint::unique_ipc("late"),
            Endpoint::unique_ipc("late-snap"),
            feed.clone(),
            None,
            IdleStrategy::BLOCK,
            None,
        )
        .unwrap();
        let sub_cfg = |name: &str, snapshot: bool| SubscriberConfig {
            name: name.into(),
            connect: publisher.endpoint().clone(),
            snapshot_endpoint: Some(publisher.snapshot_endpoint().clone()),
            snapshot,
            groups: fanout::groups_of(&feed.topics, &feed.topics, feed.groups),
            topics: feed.topics.clone(),
            hwm: None,
            conflate: false,
            consumer_work: Duration::ZERO,
            idle: IdleStrategy::BLOCK,
            pin: None,
            curve: None,
        };
        let early = SubscriberRun::start(&engine, &sub_cfg("early", false)).unwrap();
        assert!(publisher.wait_started(WAIT));
        // Join once the feed is well under way.
        let deadline = Instant::now() + WAIT;
        while publisher.published() < 2_000 {
            assert!(Instant::now() < deadline, "publisher stalled");
            std::thread::yield_now();
        }
        let late = SubscriberRun::start(&engine, &sub_cfg("late", true)).unwrap();
        assert!(publisher.wait_finished(WAIT));
        let late = late.finish(WAIT).unwrap();
        let early = early.finish(WAIT).unwrap();
        let p = publisher.finish(WAIT).unwrap();
        assert!(late.complete && early.complete);
        assert!(late.from_snapshot() >= 2_000, "joined late: {}", late.from_snapshot());
        assert_eq!(late.missing(), 0, "no gap: {:?}", late.gaps());
        assert_eq!(late.from_snapshot() + late.received(), p.published, "no duplicate, nothing lost");
        assert_eq!(early.received(), p.published);
    });
}

#[test]
fn conflated_subscribers_end_with_the_latest_value() {
    with_timeout(WAIT, || {
        let mut feed = small_feed(50_000, 300);
        feed.topics = vec!["only".into()];
        let cfg = FanoutConfig {
            feed,
            transport: Transport::Ipc,
            subscribers: 1,
            conflate: true,
            consumer_work: Duration::from_micros(100),
            ..FanoutConfig::default()
        };
        let r = fanout::run(&cfg, None).unwrap();
        check_accounting(&r);
        let s = &r.subscribers[0];
        let (_, last_seq, _) = &s.last_values[0];
        assert!(s.missing() > 0, "a slow conflated subscriber skips: {}", r.to_json());
        assert_eq!(*last_seq, r.publisher.published, "the final value is the last published tick");
    });
}

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
            connect: rogue.endpoint(rogue_sock).unwrap().parse().unwrap(),
            snapshot_endpoint: None,
            snapshot: false,
            groups: vec!["g0".into()],
            topics: vec!["t0".into()],
            hwm: None,
            conflate: false,
            consumer_work: Duration::ZERO,
            idle: IdleStrategy::BLOCK,
            pin: None,
            curve: None,
        };
        let victim = SubscriberRun::start(&engine, &cfg).unwrap();
        subscribed_rx.recv_timeout(WAIT).expect("victim subscribed");
        let garbage: [&[&[u8]]; 6] = [
            &[b"g0"],                               // one frame, no NUL
            &[b"g0", b""],                          // empty body
            &[b"g0", &[1, 0, 5, 0, 2, b't', b'0']], // claims 5 ticks, holds a broken one
            &[b"g0", &[9, 9, 9, 9]],                // unknown version
            &[b"g0", &[1, 7, 0, 0]],                // unknown kind
            &[b"g0", b"x", b"y"],                   // three frames
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
        let mut data = ztick::fanout::wire::BodyWriter::new(ztick::fanout::wire::Kind::Data);
        data.push(b"t0", 1, 0, b"ok");
        send(vec![b"g0".to_vec(), data.as_bytes().to_vec()]);
        let mut end = ztick::fanout::wire::BodyWriter::new(ztick::fanout::wire::Kind::End);
        end.push_last(b"t0", 1, b"ok");
        send(vec![b"g0".to_vec(), end.as_bytes().to_vec()]);
        let r = victim.finish(WAIT).unwrap();
        assert!(r.complete, "the end marker after the garbage was handled");
        assert_eq!((r.received(), r.missing()), (1, 0));
        assert_eq!(r.decode_errors, 20 * garbage.len() as u64, "each bad message counted once");
        drop(rogue);
    });
}
