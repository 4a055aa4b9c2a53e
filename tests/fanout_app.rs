//! The app-driven fan-out API: the application's own ticks through `TickPublisher`, handed
//! back by `TickSubscriber` (callback and channel), exact gaps under forced drops, and a
//! `ztick fanout --role sub` process as the subscriber.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::process::{expect_success, json, wait_group, Proc, TestEndpoint, DEADLINE, TIMEOUT_MS};
use common::{with_timeout, WAIT};
use crossbeam_channel::RecvTimeoutError;
use ztick::fanout::{Event, PublishError, PublisherConfig, SubscriberConfig, TickPublisher, TickSubscriber};
use ztick::{Endpoint, Engine};

fn topics(names: &[&str]) -> PublisherConfig {
    PublisherConfig { topics: names.iter().map(|t| (*t).to_owned()).collect(), ..Default::default() }
}

#[test]
fn callback_subscriber_gets_every_tick_in_order_then_the_ends() {
    with_timeout(WAIT, || {
        let engine = Engine::new().unwrap();
        let publisher =
            TickPublisher::start(&engine, Endpoint::unique_inproc("app-cb"), None, topics(&["a", "b", "c"]))
                .unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = Arc::clone(&seen);
        let cfg = SubscriberConfig::for_topics(&["a", "b", "c"]);
        let sub =
            TickSubscriber::with_callback(&engine, publisher.endpoint().clone(), None, cfg, move |ev| {
                let rec = match ev {
                    Event::Tick(t) => {
                        assert!(
                            t.intended_ns > 0 && t.intended_ns <= t.sent_ns && t.sent_ns <= t.received_ns
                        );
                        format!("{}#{}={}", t.topic, t.seq, String::from_utf8_lossy(t.payload))
                    }
                    Event::Gap { topic, first, last, .. } => format!("gap {topic} {first}-{last}"),
                    Event::End { topic, last_seq, .. } => format!("end {topic} {last_seq}"),
                    Event::Epoch { .. } => return,
                    other => format!("unexpected {other:?}"),
                };
                seen2.lock().unwrap().push(rec);
            })
            .unwrap();
        assert!(publisher.wait_subscribers(1, WAIT), "the subscriber's hello arrives");
        assert_eq!(publisher.topic_index("b"), Some(1));
        for i in 0..300u32 {
            publisher.publish((i % 3) as usize, format!("v{i}").as_bytes()).unwrap();
        }
        let p = publisher.finish(Duration::from_millis(200)).unwrap();
        assert_eq!(p.published, 300);
        assert_eq!(p.last_seq, vec![("a".into(), 100), ("b".into(), 100), ("c".into(), 100)]);
        let r = sub.finish(WAIT).unwrap();
        assert!(r.complete(), "every end marker arrived");
        assert_eq!((r.received(), r.missing()), (300, 0));
        assert_eq!(r.latency.len(), 300, "latency from the hand-off, per tick");
        let seen = seen.lock().unwrap();
        let ticks: Vec<_> = seen.iter().filter(|s| !s.starts_with("end")).collect();
        assert_eq!(ticks.len(), 300, "no gap event: {seen:?}");
        for (n, name) in ["a", "b", "c"].iter().enumerate() {
            let mine: Vec<_> = ticks.iter().filter(|s| s.starts_with(&format!("{name}#"))).collect();
            let want: Vec<_> = (0..100).map(|j| format!("{name}#{}=v{}", j + 1, 3 * j + n as u32)).collect();
            assert_eq!(mine.iter().map(|s| s.as_str()).collect::<Vec<_>>(), want);
        }
        let ends: Vec<_> = seen.iter().filter(|s| s.starts_with("end")).cloned().collect();
        assert_eq!(ends, vec!["end a 100", "end b 100", "end c 100"], "after the last tick");
        assert!(seen[seen.len() - 3..].iter().all(|s| s.starts_with("end")));
    });
}

#[test]
fn channel_subscriber_sees_exact_gaps_when_it_falls_behind() {
    with_timeout(WAIT, || {
        let engine = Engine::builder().io_threads(0).build().unwrap();
        let mut pcfg = topics(&["x", "y"]);
        pcfg.max_batch = 1;
        pcfg.hwm_msgs = Some(4);
        pcfg.eos_linger = Duration::from_secs(10);
        let publisher = TickPublisher::start(
            &engine,
            Endpoint::unique_inproc("app-gap"),
            Some(Endpoint::unique_inproc("app-gap-snap")),
            pcfg,
        )
        .unwrap();
        // Without repair: every gap is final, and exact.
        let cfg = SubscriberConfig {
            hwm_msgs: Some(4),
            repair: false,
            ..SubscriberConfig::for_topics(&["x", "y"])
        };
        // A one-event channel nobody reads yet: the subscriber stalls, its HWM fills, and the
        // publisher's XPUB must drop.
        let (connect, side) = (publisher.endpoint().clone(), publisher.side_endpoint().cloned());
        let p_epoch = publisher.epoch();
        let sub = TickSubscriber::with_channel(&engine, connect, side, cfg, 1).unwrap();
        assert!(publisher.wait_subscribers(1, WAIT));
        const N: u64 = 20_000;
        let payload = [7u8; 256];
        for i in 0..N {
            publisher.publish((i % 2) as usize, &payload).unwrap();
        }
        // The end markers repeat until the subscriber acknowledges: read meanwhile.
        let finisher = std::thread::spawn(move || publisher.finish(WAIT).unwrap());
        let mut next = [1u64; 2];
        let (mut ticks, mut lost, mut ends) = (0u64, 0u64, 0);
        loop {
            let ev = match sub.recv_timeout(WAIT) {
                Ok(ev) => ev,
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!("no event within {WAIT:?}"),
            };
            match ev.as_event() {
                Event::Tick(t) => {
                    assert_eq!(t.seq, next[t.topic_index], "in order, after any gap");
                    assert_eq!(t.payload, &payload[..]);
                    next[t.topic_index] += 1;
                    ticks += 1;
                }
                Event::Gap { topic_index, first, last, .. } => {
                    assert_eq!(first, next[topic_index], "a gap starts where the stream stopped");
                    next[topic_index] = last + 1;
                    lost += last - first + 1;
                }
                Event::End { topic_index, last_seq, .. } => {
                    assert_eq!(last_seq, N / 2);
                    assert_eq!(next[topic_index], last_seq + 1, "everything accounted for at the end");
                    ends += 1;
                }
                Event::Epoch { epoch } => assert_eq!(epoch, p_epoch),
                other => panic!("unexpected without repair: {other:?}"),
            }
            sub.recycle(ev);
        }
        let p = finisher.join().unwrap();
        assert_eq!(p.acks, 1, "the subscriber acknowledged the end");
        let r = sub.finish(WAIT).unwrap();
        assert_eq!(ends, 2);
        assert!(lost > 0, "the stalled subscriber lost ticks");
        assert_eq!((r.received(), r.missing()), (ticks, lost), "the events match the accounting");
        assert_eq!(ticks + lost, N);
    });
}

#[test]
fn bad_arguments_are_refused_with_what_to_fix() {
    with_timeout(WAIT, || {
        let engine = Engine::new().unwrap();
        for (cfg, needle) in [
            (topics(&[]), "topics"),
            (topics(&["has\0nul"]), "topic"),
            (PublisherConfig { groups: 3, ..topics(&["a"]) }, "groups"),
            (PublisherConfig { max_batch: 0, ..topics(&["a"]) }, "max_batch"),
            (PublisherConfig { capacity: 0, ..topics(&["a"]) }, "capacity"),
        ] {
            let e = TickPublisher::start(&engine, Endpoint::unique_inproc("bad"), None, cfg).unwrap_err();
            assert!(e.to_string().contains(needle), "{e}");
        }
        let publisher =
            TickPublisher::start(&engine, Endpoint::unique_inproc("app-args"), None, topics(&["a"])).unwrap();
        assert_eq!(publisher.publish(1, b"x"), Err(PublishError::NoSuchTopic { topic: 1, topics: 1 }));
        let big = vec![0u8; ztick::fanout::MAX_PAYLOAD + 1];
        assert_eq!(publisher.try_publish(0, &big), Err(PublishError::TooLarge { len: big.len() }));
        assert!(PublishError::NoSuchTopic { topic: 1, topics: 1 }.to_string().contains("topics 0 to 0"));
        let ep = publisher.endpoint().clone();
        let mut cfg = SubscriberConfig::for_topics(&["a"]);
        cfg.snapshot_join = true;
        // A snapshot join needs the side channel to ask.
        let e = TickSubscriber::with_channel(&engine, ep.clone(), None, cfg.clone(), 8).unwrap_err();
        assert!(e.to_string().contains("snapshot"), "{e}");
        cfg.snapshot_join = false;
        let e = TickSubscriber::with_channel(&engine, ep, None, cfg, 0).unwrap_err();
        assert!(e.to_string().contains("capacity"), "{e}");
        // Nobody subscribed: the end goes out to no one and finish returns after the linger.
        assert_eq!(publisher.finish(WAIT).unwrap().published, 0);
    });
}

#[test]
fn dropping_an_unread_channel_subscriber_does_not_hang() {
    with_timeout(WAIT, || {
        let engine = Engine::new().unwrap();
        let publisher =
            TickPublisher::start(&engine, Endpoint::unique_inproc("app-drop"), None, topics(&["a"])).unwrap();
        let cfg = SubscriberConfig::for_topics(&["a"]);
        let sub = TickSubscriber::with_channel(&engine, publisher.endpoint().clone(), None, cfg, 1).unwrap();
        assert!(publisher.wait_subscribers(1, WAIT));
        for _ in 0..100 {
            publisher.publish(0, b"tick").unwrap();
        }
        // Its worker is blocked on the full channel; dropping must release it.
        drop(sub);
        drop(publisher);
    });
}

#[test]
fn a_channel_subscriber_joins_late_through_the_snapshot() {
    with_timeout(WAIT, || {
        let engine = Engine::new().unwrap();
        // Room for the whole stream in every queue: nothing may be dropped, so any gap or
        // duplicate is the join's fault.
        let pcfg = PublisherConfig { hwm_msgs: Some(1 << 20), ..topics(&["a", "b"]) };
        let publisher = TickPublisher::start(
            &engine,
            Endpoint::unique_ipc("app-join"),
            Some(Endpoint::unique_ipc("app-join-side")),
            pcfg,
        )
        .unwrap();
        let (connect, side) = (publisher.endpoint().clone(), publisher.side_endpoint().cloned());
        let base = SubscriberConfig { hwm_msgs: Some(1 << 20), ..SubscriberConfig::for_topics(&["a", "b"]) };
        let early = TickSubscriber::start(&engine, connect.clone(), side.clone(), base.clone()).unwrap();
        assert!(publisher.wait_subscribers(1, WAIT));
        for i in 0..2_000u64 {
            publisher.publish((i % 2) as usize, &i.to_le_bytes()).unwrap();
        }
        let late_cfg = SubscriberConfig { name: "late".into(), snapshot_join: true, ..base };
        let late = TickSubscriber::with_channel(&engine, connect, side, late_cfg, 1 << 16).unwrap();
        // Keep publishing while it joins: updates in flight must neither be lost nor doubled.
        for i in 2_000..4_000u64 {
            publisher.publish((i % 2) as usize, &i.to_le_bytes()).unwrap();
        }
        assert!(publisher.wait_subscribers(2, WAIT));
        let p = publisher.finish(WAIT).unwrap();
        let mut next = [0u64; 2];
        loop {
            match late.recv_timeout(WAIT) {
                Ok(ev) => match ev.as_event() {
                    Event::Tick(t) => {
                        let i = u64::from_le_bytes(t.payload.try_into().unwrap());
                        assert_eq!(t.seq, i / 2 + 1, "the payload travels with its tick");
                        if next[t.topic_index] != 0 {
                            assert_eq!(t.seq, next[t.topic_index], "in order, no duplicate");
                        }
                        next[t.topic_index] = t.seq + 1;
                    }
                    Event::End { .. } | Event::Epoch { .. } => {}
                    _ => panic!("a gap in a lossless join: {ev:?}"),
                },
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!("no event within {WAIT:?}"),
            }
        }
        let late = late.finish(WAIT).unwrap();
        let early = early.finish(WAIT).unwrap();
        assert!(late.complete() && early.complete());
        assert_eq!(late.missing(), 0, "no gap: {:?}", late.gaps());
        assert_eq!(late.from_snapshot() + late.received(), p.published, "no duplicate, nothing lost");
        assert_eq!(early.received(), p.published);
    });
}

#[test]
fn a_ztick_subscriber_process_receives_the_applications_ticks() {
    let data = TestEndpoint::new("ipc");
    let snap = TestEndpoint::new("ipc");
    let engine = Engine::new().unwrap();
    let publisher = TickPublisher::start(
        &engine,
        data.url.parse().unwrap(),
        Some(snap.url.parse().unwrap()),
        PublisherConfig::default(),
    )
    .unwrap();
    let sub = Proc::spawn(&[
        "fanout",
        "--role",
        "sub",
        "--connect",
        &data.url,
        "--snapshot",
        &snap.url,
        "--timeout-ms",
        TIMEOUT_MS,
        "--json",
    ]);
    assert!(publisher.wait_subscribers(1, DEADLINE), "the ztick subscriber process connects");
    for i in 0..8_000u64 {
        publisher.publish((i % 8) as usize, &i.to_le_bytes()).unwrap();
    }
    let p = publisher.finish(DEADLINE).unwrap();
    assert_eq!((p.published, p.acks), (8_000, 1));
    let done = wait_group(vec![sub], DEADLINE);
    expect_success(&done[0]);
    let v = json(&done[0]);
    let s = &v["subscribers"][0];
    assert_eq!(v["published"].as_u64(), Some(8_000), "learnt from the end markers");
    assert_eq!((s["received"].as_u64(), s["missing"].as_u64()), (Some(8_000), Some(0)), "{v}");
}

#[test]
fn an_inline_publisher_delivers_every_tick_and_serves_the_end_acknowledgements() {
    with_timeout(WAIT, || {
        let engine = Engine::new().unwrap();
        let mut publisher = ztick::fanout::InlineTickPublisher::bind(
            &engine,
            Endpoint::unique_inproc("app-inline"),
            Some(Endpoint::unique_inproc("app-inline-side")),
            topics(&["a", "b", "c"]),
        )
        .unwrap();
        let subs: Vec<_> = (0..2)
            .map(|i| {
                let cfg = SubscriberConfig {
                    name: format!("s{i}"),
                    ..SubscriberConfig::for_topics(&["a", "b", "c"])
                };
                let side = publisher.side_endpoint().cloned();
                TickSubscriber::start(&engine, publisher.endpoint().clone(), side, cfg).unwrap()
            })
            .collect();
        // Nothing serves the stream but this thread: the hellos are read while it waits.
        assert!(publisher.wait_subscribers(2, WAIT).unwrap(), "both hellos arrive");
        for i in 0..900u32 {
            publisher.publish_at((i % 3) as usize, ztick::now_ns(), format!("v{i}").as_bytes()).unwrap();
            if i % 10 == 9 {
                publisher.serve().unwrap();
            }
        }
        // The end markers go out, and finish serves the side channel until both acknowledge.
        let p = publisher.finish(WAIT).unwrap();
        assert_eq!(p.published, 900);
        assert_eq!(p.last_seq, vec![("a".into(), 300), ("b".into(), 300), ("c".into(), 300)]);
        assert_eq!(p.acks, 2, "both subscribers acknowledged the end to the inline publisher");
        for s in subs {
            let r = s.finish(WAIT).unwrap();
            assert!(r.complete(), "every end marker arrived");
            assert_eq!((r.received(), r.missing()), (900, 0));
        }
    });
}

#[test]
fn an_inline_publisher_refuses_bad_ticks_and_ticks_after_its_end() {
    fn assert_send<T: Send>() {}
    assert_send::<ztick::fanout::InlineTickPublisher>();
    let engine = Engine::new().unwrap();
    let mut publisher = ztick::fanout::InlineTickPublisher::bind(
        &engine,
        Endpoint::unique_inproc("app-inline-bad"),
        None,
        topics(&["a"]),
    )
    .unwrap();
    assert_eq!(publisher.topic_index("a"), Some(0));
    let bad_topic = publisher.publish_at(1, 0, b"x").unwrap_err();
    assert!(matches!(bad_topic, ztick::Error::Config { .. }), "{bad_topic}");
    assert!(bad_topic.to_string().contains("no topic 1"), "{bad_topic}");
    let big = vec![0u8; ztick::fanout::MAX_PAYLOAD + 1];
    let too_big = publisher.publish_at(0, 0, &big).unwrap_err();
    assert!(too_big.to_string().contains("larger than"), "{too_big}");
    publisher.publish_at(0, 0, b"ok").unwrap();
    publisher.end_stream().unwrap();
    let after = publisher.publish_at(0, 0, b"late").unwrap_err();
    assert!(matches!(after, ztick::Error::Stopped(_)), "{after}");
    let p = publisher.finish(Duration::from_millis(100)).unwrap();
    assert_eq!(p.published, 1, "the tick before the end, not the refused ones");
}

#[test]
fn subscribers_sharing_one_worker_each_keep_their_accounting_and_end_alone() {
    with_timeout(WAIT, || {
        use ztick::fanout::SubscriberSpec;
        let engine = Engine::new().unwrap();
        let (feed, side) =
            (Endpoint::unique_inproc("app-shared"), Endpoint::unique_inproc("app-shared-side"));
        let names = ["a", "b", "c"];
        let publisher =
            TickPublisher::start(&engine, feed.clone(), Some(side.clone()), topics(&names)).unwrap();
        let spec = |name: &str| {
            let cfg = SubscriberConfig { name: name.into(), ..SubscriberConfig::for_topics(&names) };
            SubscriberSpec::new(feed.clone(), Some(side.clone()), cfg)
        };
        let ticks = Arc::new(Mutex::new(0u64));
        let counted = Arc::clone(&ticks);
        let members = vec![
            spec("kept"),
            spec("queued").channel(4096),
            spec("called").callback(move |ev| {
                if let Event::Tick(_) = ev {
                    *counted.lock().unwrap() += 1;
                }
            }),
            spec("stopped"),
            spec("dropped"),
        ];
        let mut subs = TickSubscriber::start_shared(&engine, "shared", members).unwrap();
        assert!(publisher.wait_subscribers(5, WAIT), "five hellos from one worker");
        for i in 0..300u32 {
            publisher.publish((i % 3) as usize, format!("v{i}").as_bytes()).unwrap();
        }
        // One ends early, one is dropped: the others go on, on the same worker.
        let dropped = subs.pop().unwrap();
        drop(dropped);
        let early = subs.pop().unwrap().stop().unwrap();
        assert_eq!(early.outcome, ztick::fanout::Outcome::Stopped);
        assert!(early.received() + early.missing() <= 300, "{early:?}");
        // Their SUBs stay open on the shared worker, unsubscribed: the publisher sees both go.
        common::wait_until(
            || publisher.subscribers() == 3,
            || format!("{} subscribers", publisher.subscribers()),
        );
        for i in 300..600u32 {
            publisher.publish((i % 3) as usize, format!("v{i}").as_bytes()).unwrap();
        }
        let p = publisher.finish(WAIT).unwrap();
        assert_eq!(p.published, 600);
        assert_eq!(p.acks, 3, "the three still running acknowledged the end");
        assert!(p.departures >= 2, "the stopped and the dropped one left: {p:?}");
        // The channel closes when its subscriber ends, although the worker serves others.
        let queued = &subs[1];
        let mut events = 0;
        loop {
            match queued.recv_timeout(WAIT) {
                Ok(ev) => {
                    events += u64::from(matches!(ev, ztick::fanout::OwnedEvent::Tick(_)));
                    queued.recycle(ev);
                }
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!("the queued subscriber's channel never closed"),
            }
        }
        assert_eq!(events, 600);
        for s in subs {
            let r = s.finish(WAIT).unwrap();
            assert!(r.complete(), "{r:?}");
            assert_eq!((r.received(), r.missing()), (600, 0), "{}", r.name);
        }
        assert_eq!(*ticks.lock().unwrap(), 600, "the callback saw every tick");
        assert!(TickSubscriber::start_shared(&engine, "none", Vec::new()).is_err(), "no member");
    });
}
