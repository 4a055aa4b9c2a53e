//! The embedded run and the synthetic feed end to end: exact gaps under forced drops, late
//! joiners through the snapshot, conflation, and the accounting closing every time.

#[path = "../../../../tests/common/wait.rs"]
mod wait;

use std::sync::Arc;
use std::time::{Duration, Instant};

use wait::{with_timeout, WAIT};
use ztick::fanout::{groups_of, PublisherConfig, SubscriberConfig, TickPublisher, TickSubscriber};
use ztick::{Endpoint, Engine, Transport};

use super::feed::{FeedSpec, FeedStats, SyntheticFeed};
use super::harness::{self, EmbeddedRun};
use super::report::FanoutReport;

fn signals() -> crate::signals::Signals {
    crate::signals::Signals::register().unwrap()
}

fn small_run(rate: u64, ms: u64) -> EmbeddedRun {
    let mut r = EmbeddedRun::default();
    r.feed.rate_per_s = rate;
    r.feed.duration = Duration::from_millis(ms);
    r.publisher.topics = (0..4).map(|i| format!("t{i}")).collect();
    r.publisher.eos_linger = Duration::from_millis(300);
    r
}

fn check_accounting(r: &FanoutReport) {
    assert!(r.accounting_closes(), "accounting: {}", r.to_json());
    for s in &r.subscribers {
        let listed: u64 = s.gaps().iter().map(|g| g.last - g.first + 1).sum();
        let all_listed = s.epochs.iter().flat_map(|e| &e.topics).all(|(_, t)| t.gaps_unlisted() == 0);
        if all_listed {
            assert_eq!(listed, s.missing(), "gap ranges add up to missing");
        } else {
            assert!(listed < s.missing(), "unlisted ranges hold the rest");
        }
        assert_eq!(s.received() + s.repaired() + s.missing() + s.from_snapshot(), r.publisher.published);
    }
}

#[test]
fn lossless_run_on_every_transport() {
    for t in [Transport::Inproc, Transport::Ipc, Transport::Tcp] {
        with_timeout(WAIT, move || {
            let cfg = EmbeddedRun { transport: t, ..small_run(20_000, 300) };
            let r = harness::run(&cfg, None, &signals()).unwrap();
            check_accounting(&r);
            assert!(r.publisher.published >= 5_000, "{t}: {}", r.publisher.published);
            for s in &r.subscribers {
                assert_eq!(s.missing(), 0, "{t}: {}", r.to_json());
                assert!(s.complete(), "{t}: every end marker arrives");
                assert_eq!(s.latency.len(), s.received());
            }
        });
    }
}

#[test]
fn forced_drops_are_found_exactly() {
    with_timeout(WAIT, || {
        // A tiny HWM and a consumer spending 50 us per tick against 40,000 ticks/s: the
        // publisher's XPUB must drop, and without repair every drop must show up as an
        // exact range.
        let mut cfg = small_run(40_000, 400);
        cfg.subscriber.repair = false;
        cfg.feed.max_batch = 1;
        cfg.publisher.max_batch = 1;
        cfg.publisher.hwm_msgs = Some(4);
        cfg.subscriber.hwm_msgs = Some(4);
        cfg.transport = Transport::Ipc;
        cfg.subscribers = 1;
        cfg.consumer_work = Duration::from_micros(50);
        let r = harness::run(&cfg, None, &signals()).unwrap();
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
fn forced_drops_are_repaired_from_the_ring() {
    with_timeout(WAIT, || {
        // The same drops, with repair: what the HWM dropped comes back from the ring.
        let mut cfg = small_run(40_000, 400);
        cfg.feed.max_batch = 1;
        cfg.publisher.max_batch = 1;
        cfg.publisher.hwm_msgs = Some(4);
        cfg.subscriber.hwm_msgs = Some(4);
        cfg.transport = Transport::Ipc;
        cfg.subscribers = 1;
        cfg.consumer_work = Duration::from_micros(20);
        let r = harness::run(&cfg, None, &signals()).unwrap();
        check_accounting(&r);
        let s = &r.subscribers[0];
        assert!(s.repaired() > 0, "drops repaired: {}", r.to_json());
        assert_eq!(s.repair_latency.len(), s.repaired(), "a repair latency per repaired tick");
        assert!(s.naks_sent > 0 && r.publisher.naks > 0 && r.publisher.retransmitted >= s.repaired());
    });
}

#[test]
fn a_late_joiner_gets_snapshot_then_updates_without_gap_or_duplicate() {
    with_timeout(WAIT, || {
        let engine = Engine::new().unwrap();
        let run = small_run(20_000, 600);
        let spec = FeedSpec { wait_subscribers: 1, ..run.feed.clone() };
        let pcfg = run.publisher.clone();
        let publisher = TickPublisher::start_with_source(
            &engine,
            Endpoint::unique_ipc("late"),
            Some(Endpoint::unique_ipc("late-snap")),
            pcfg.clone(),
            SyntheticFeed::new(spec, Arc::new(FeedStats::default())),
        )
        .unwrap();
        let sub_cfg = |name: &str, snapshot_join: bool| SubscriberConfig {
            name: name.into(),
            snapshot_join,
            groups: groups_of(&pcfg.topics, &pcfg.topics, pcfg.groups),
            ..SubscriberConfig::for_topics(&pcfg.topics)
        };
        let start = |name: &str, join: bool| {
            let side = publisher.side_endpoint().cloned();
            TickSubscriber::start(&engine, publisher.endpoint().clone(), side, sub_cfg(name, join)).unwrap()
        };
        let early = start("early", false);
        assert!(publisher.wait_subscribers(1, WAIT));
        // Join once the feed is well under way.
        let deadline = Instant::now() + WAIT;
        while publisher.published() < 2_000 {
            assert!(Instant::now() < deadline, "publisher stalled");
            std::thread::yield_now();
        }
        let late = start("late", true);
        assert!(publisher.wait_ended(WAIT));
        let late = late.finish(WAIT).unwrap();
        let early = early.finish(WAIT).unwrap();
        let p = publisher.finish(WAIT).unwrap();
        assert!(late.complete() && early.complete());
        assert!(late.from_snapshot() >= 2_000, "joined late: {}", late.from_snapshot());
        assert_eq!(late.missing(), 0, "no gap: {:?}", late.gaps());
        assert_eq!(late.from_snapshot() + late.received(), p.published, "no duplicate, nothing lost");
        assert_eq!(early.received(), p.published);
    });
}

#[test]
fn conflated_subscribers_end_with_the_latest_value() {
    with_timeout(WAIT, || {
        let mut cfg = small_run(50_000, 300);
        cfg.publisher.topics = vec!["only".into()];
        cfg.transport = Transport::Ipc;
        cfg.subscribers = 1;
        cfg.subscriber.conflate = true;
        cfg.subscriber.keep_last_values = true;
        cfg.consumer_work = Duration::from_micros(100);
        let r = harness::run(&cfg, None, &signals()).unwrap();
        check_accounting(&r);
        let s = &r.subscribers[0];
        let (_, last_seq, _) = &s.last_values[0];
        assert!(s.missing() > 0, "a slow conflated subscriber skips: {}", r.to_json());
        assert_eq!(*last_seq, r.publisher.published, "the final value is the last published tick");
    });
}

#[test]
fn the_publishers_defaults_are_the_commands() {
    // `ztick fanout` with no flags publishes the library's default topics, so a bare
    // `--role sub` follows a bare `--role pub` and any default TickPublisher.
    let r = EmbeddedRun::default();
    assert_eq!(r.publisher.topics, PublisherConfig::default().topics);
    assert_eq!(SubscriberConfig::default().topics, r.publisher.topics);
}

/// `ztick fanout ARGS`'s flags, as the command line parses them.
fn fanout_args(argv: &[&str]) -> crate::FanoutArgs {
    use clap::Parser;
    let line = ["ztick", "fanout"].iter().chain(argv).copied();
    match crate::Cli::try_parse_from(line).expect("the flags parse").verb {
        crate::Verb::Fanout(a) => *a,
        other => panic!("not the fanout verb: {other:?}"),
    }
}

#[test]
fn the_roles_take_endpoints_and_hwm_from_flags_then_environment_then_file() {
    use crate::settings::Settings;
    let file = "hwm = 1\nbind_address = \"tcp://*:1\"\nconnect_address = \"tcp://file:1\"\n";
    let env = [("ZMQ_HWM", "2"), ("ZMQ_CONNECT_ADDRESS", "tcp://env:2")];
    let load = |_: Option<&std::path::Path>, flags: Settings| {
        let file = Settings::from_toml(file, std::path::Path::new("ztick.toml"))?;
        let env = Settings::from_env(|k| env.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).into()))?;
        Ok(file.overlay(env).overlay(flags))
    };
    let a = super::with_settings(fanout_args(&["--role", "sub"]), load).unwrap();
    assert_eq!(a.hwm, Some(2), "the environment beats the file");
    assert_eq!(a.connect.map(|e| e.to_string()).as_deref(), Some("tcp://env:2"));
    assert_eq!(a.bind.map(|e| e.to_string()).as_deref(), Some("tcp://*:1"), "the file fills the rest");
    let a = super::with_settings(
        fanout_args(&["--role", "sub", "--hwm", "3", "--connect", "tcp://flag:3"]),
        load,
    )
    .unwrap();
    assert_eq!(
        (a.hwm, a.connect.map(|e| e.to_string())),
        (Some(3), Some("tcp://flag:3".into())),
        "flags win"
    );
    let bad = super::with_settings(fanout_args(&["--role", "sub"]), |_, flags: Settings| {
        Ok(Settings::from_env(|k| (k == "ZMQ_HWM").then(|| "lots".into()))?.overlay(flags))
    });
    assert!(bad.unwrap_err().to_string().contains("ZMQ_HWM"));
}
