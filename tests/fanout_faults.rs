//! The fan-out under faults, as real processes: a publisher killed with SIGKILL, killed
//! and restarted on the same endpoint, a subscriber killed, a link stalled and cut through
//! a fault-injecting relay, and (as root) a link set down between network namespaces.
//!
//! Every wait is bounded and every step waits for what the processes say they did (the
//! publisher's "publishing" line, a subscriber's "epoch … begins" line, ticks counted by an
//! observer in this process) instead of sleeping. The only sleeps are the faults'
//! durations themselves.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::process::{
    describe, fanout_publisher as publisher, json, wait_group, Finished, Proc, TestEndpoint, DEADLINE,
};
use common::relay::Relay;
use common::WAIT;
use serde_json::Value;
use ztick::fanout::{Event, Outcome, SubscriberConfig, TickSubscriber};
use ztick::Engine;

/// One fault scenario at a time: each runs a 100,000 ticks/s publisher and its subscribers
/// as processes and times its fault (a 2 s stall, a kill) against them. Eight of them at
/// once on a 2-core machine made the publisher itself fall behind, so that a stall that
/// should overflow the HWM did not (seen under load); serialised, the fault is what the
/// test says it is.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An in-process subscriber that says when it has seen `n` ticks: the handshake that the
/// stream is under way.
struct Observer {
    sub: TickSubscriber,
    seen: Arc<AtomicU64>,
}

impl Observer {
    /// An observer of the publisher at `feed`, introduced on its side channel `side` (a
    /// publisher with a side channel counts only subscribers that introduce themselves).
    fn start(engine: &Engine, feed: &str, side: &str, follow: bool) -> Observer {
        let seen = Arc::new(AtomicU64::new(0));
        let count = Arc::clone(&seen);
        let cfg = SubscriberConfig {
            name: "observer".into(),
            repair: false,
            follow,
            liveness: if follow { Duration::from_secs(60) } else { Duration::from_secs(1) },
            ..SubscriberConfig::default()
        };
        let side = Some(side.parse().unwrap());
        let sub = TickSubscriber::with_callback(engine, feed.parse().unwrap(), side, cfg, move |ev| {
            if let Event::Tick(_) = ev {
                count.fetch_add(1, Ordering::Relaxed);
            }
        })
        .unwrap();
        Observer { sub, seen }
    }

    /// Waits (yielding, bounded) until it has seen `n` ticks in all.
    fn wait_ticks(&self, n: u64) {
        let deadline = Instant::now() + WAIT;
        while self.seen.load(Ordering::Relaxed) < n {
            assert!(
                Instant::now() < deadline,
                "the observer saw only {} ticks",
                self.seen.load(Ordering::Relaxed)
            );
            std::thread::yield_now();
        }
    }
}

fn subscriber(feed: &str, side: &str, extra: &[&str]) -> Proc {
    let mut args = vec!["fanout", "--role", "sub", "--connect", feed, "--snapshot", side, "--json"];
    args.extend_from_slice(extra);
    Proc::spawn(&args)
}

fn the_subscriber(f: &Finished) -> Value {
    let v = json(f);
    assert_eq!(v["accounting_closes"], true, "{}", describe(f));
    v["subscribers"][0].clone()
}

/// Each epoch's counts add up: received + repaired + missing + from_snapshot = published.
fn epochs_close(s: &Value) {
    for e in s["epochs"].as_array().unwrap() {
        let n = |k: &str| e[k].as_u64().unwrap();
        assert_eq!(n("received") + n("repaired") + n("missing") + n("from_snapshot"), n("published"), "{e}");
    }
}

#[test]
fn a_publisher_killed_mid_stream_is_reported_within_the_liveness_timeout() {
    let _serial = one_at_a_time();
    let (feed, side) = (TestEndpoint::new("tcp"), TestEndpoint::new("tcp"));
    let mut publisher = publisher(&feed.url, &side.url, 2, &["--duration", "60"]);
    let sub = subscriber(&feed.url, &side.url, &["--liveness-ms", "500"]);
    let engine = Engine::new().unwrap();
    let observer = Observer::start(&engine, &feed.url, &side.url, false);
    observer.wait_ticks(5_000);
    publisher.kill();
    let killed = Instant::now();
    let done = wait_group(vec![sub], DEADLINE);
    let reported = killed.elapsed();
    let f = &done[0];
    assert_eq!(f.status.code(), Some(3), "the publisher-lost exit code: {}", describe(f));
    assert!(reported < Duration::from_millis(500 + 1_000), "reported after {reported:?}");
    let s = the_subscriber(f);
    assert_eq!(s["outcome"], "publisher_lost");
    assert!(s["received"].as_u64().unwrap() >= 1, "{s}");
    let epochs = s["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 1);
    assert_eq!(epochs[0]["outcome"], "publisher_lost");
    epochs_close(&s);
    // The observer, in this process, saw the same loss.
    let r = observer.sub.finish(WAIT).unwrap();
    assert_eq!(r.outcome, Outcome::PublisherLost);
}

#[test]
fn a_restarted_publisher_is_a_new_epoch_and_a_following_subscriber_loses_none_of_it() {
    let _serial = one_at_a_time();
    let (feed, side) = (TestEndpoint::new("tcp"), TestEndpoint::new("tcp"));
    let mut first = publisher(&feed.url, &side.url, 2, &["--duration", "60"]);
    let sub = subscriber(&feed.url, &side.url, &["--follow"]);
    let engine = Engine::new().unwrap();
    let observer = Observer::start(&engine, &feed.url, &side.url, true);
    observer.wait_ticks(5_000);
    first.kill();
    // The same endpoints; the subscriber and the observer reconnect by themselves.
    let second = publisher(&feed.url, &side.url, 2, &["--duration", "0.5"]);
    let done = wait_group(vec![second, sub], DEADLINE);
    let (p, f) = (json(&done[0]), &done[1]);
    assert_eq!(f.status.code(), Some(0), "{}", describe(f));
    let s = the_subscriber(f);
    assert_eq!(s["outcome"], "complete");
    let epochs = s["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 2, "{s}");
    assert_eq!(epochs[0]["outcome"], "publisher_lost");
    assert_eq!(epochs[1]["outcome"], "complete");
    assert_eq!(epochs[1]["epoch"], p["publisher"]["epoch"], "the second epoch is the new publisher's");
    let published = p["published"].as_u64().unwrap();
    assert_eq!(epochs[1]["published"].as_u64(), Some(published));
    assert_eq!(epochs[1]["missing"], 0, "nothing of the new epoch lost: {s}");
    assert_eq!(
        epochs[1]["received"].as_u64().unwrap() + epochs[1]["repaired"].as_u64().unwrap(),
        published,
        "every tick of the new epoch delivered, none taken for an old one"
    );
    epochs_close(&s);
    assert!(f.stderr.matches("begins").count() >= 2, "each epoch announced: {}", f.stderr);
    drop(observer);
}

#[test]
fn a_killed_subscriber_leaves_the_others_and_the_publisher_going() {
    let _serial = one_at_a_time();
    let (feed, side) = (TestEndpoint::new("tcp"), TestEndpoint::new("tcp"));
    let publisher = publisher(&feed.url, &side.url, 3, &["--duration", "1.5"]);
    let mut victim = subscriber(&feed.url, &side.url, &[]);
    let survivor = subscriber(&feed.url, &side.url, &[]);
    let engine = Engine::new().unwrap();
    let observer = Observer::start(&engine, &feed.url, &side.url, false);
    observer.wait_ticks(5_000);
    victim.kill();
    let done = wait_group(vec![publisher, survivor], DEADLINE);
    let p = json(&done[0]);
    assert!(p["publisher"]["departures"].as_u64().unwrap() >= 1, "the departure is reported: {p}");
    let s = the_subscriber(&done[1]);
    assert_eq!((s["outcome"].as_str(), s["missing"].as_u64()), (Some("complete"), Some(0)), "{s}");
    assert_eq!(
        s["received"].as_u64().unwrap() + s["repaired"].as_u64().unwrap(),
        p["published"].as_u64().unwrap()
    );
    drop(observer);
}

/// A subscriber behind relays (feed and side channel), the link stalled for 2 s mid-stream:
/// the publisher drops at its HWM meanwhile, and the subscriber asks for the gap after.
fn stalled_for_two_seconds(ring_bytes: &str, gaps_out: &std::path::Path) -> (Value, Value) {
    let (feed, side) = (TestEndpoint::new("tcp"), TestEndpoint::new("tcp"));
    let publisher = publisher(&feed.url, &side.url, 2, &["--duration", "4", "--ring-bytes", ring_bytes]);
    let addr = |url: &str| url.trim_start_matches("tcp://").parse().unwrap();
    let (feed_relay, side_relay) = (Relay::start(addr(&feed.url)), Relay::start(addr(&side.url)));
    let gaps = gaps_out.to_str().unwrap();
    // Silent for 2 s is not lost: the liveness timeout is longer than the stall.
    let sub =
        subscriber(&feed_relay.url(), &side_relay.url(), &["--liveness-ms", "5000", "--gaps-out", gaps]);
    let engine = Engine::new().unwrap();
    let observer = Observer::start(&engine, &feed.url, &side.url, false);
    observer.wait_ticks(5_000);
    feed_relay.stall();
    side_relay.stall();
    std::thread::sleep(Duration::from_secs(2)); // the fault's duration, not a synchronisation
    feed_relay.resume();
    side_relay.resume();
    let done = wait_group(vec![publisher, sub], DEADLINE);
    assert_eq!(done[1].status.code(), Some(0), "{}", describe(&done[1]));
    drop(observer);
    (json(&done[0]), the_subscriber(&done[1]))
}

fn listed_gaps(path: &std::path::Path) -> u64 {
    let text = std::fs::read_to_string(path).unwrap();
    let mut ranges: Vec<(String, u64, u64)> = text
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["topic"].as_str().unwrap().to_owned(),
                v["first"].as_u64().unwrap(),
                v["last"].as_u64().unwrap(),
            )
        })
        .collect();
    ranges.sort();
    for w in ranges.windows(2) {
        assert!(w[0].0 != w[1].0 || w[0].2 < w[1].1, "ranges overlap: {w:?}");
    }
    ranges.iter().map(|(_, a, b)| b - a + 1).sum()
}

#[test]
fn a_two_second_stall_is_repaired_from_the_ring() {
    let _serial = one_at_a_time();
    let dir = common::process::TempDir::new();
    let gaps = dir.0.join("gaps.jsonl");
    let (p, s) = stalled_for_two_seconds(&(64 << 20).to_string(), &gaps);
    assert_eq!(s["outcome"], "complete", "{s}");
    assert!(
        s["repaired"].as_u64().unwrap() > 0,
        "the stall made the publisher drop, and it was repaired: {s}"
    );
    assert_eq!(s["missing"], 0, "the ring held all of it: {s}");
    assert_eq!(
        s["received"].as_u64().unwrap() + s["repaired"].as_u64().unwrap(),
        p["published"].as_u64().unwrap()
    );
    assert!(s["repair_latency_ns"]["count"].as_u64().unwrap() > 0);
    assert_eq!(listed_gaps(&gaps), 0);
    epochs_close(&s);
}

#[test]
fn a_stall_longer_than_the_ring_reports_the_unrecoverable_ranges_exactly() {
    let _serial = one_at_a_time();
    let dir = common::process::TempDir::new();
    let gaps = dir.0.join("gaps.jsonl");
    // About 700 ticks of 64 B: far less than 2 s at 100,000 ticks/s.
    let (p, s) = stalled_for_two_seconds("65536", &gaps);
    let unrecoverable = s["unrecoverable"].as_u64().unwrap();
    assert!(unrecoverable > 0, "the ring could not hold the stall: {s}");
    assert_eq!(listed_gaps(&gaps), unrecoverable, "--gaps-out lists every lost tick exactly once");
    assert_eq!(
        s["received"].as_u64().unwrap() + s["repaired"].as_u64().unwrap() + unrecoverable,
        p["published"].as_u64().unwrap()
    );
    assert!(p["publisher"]["gone"].as_u64().unwrap() > 0, "the publisher said what it no longer had");
    epochs_close(&s);
}

#[test]
fn a_cut_connection_reconnects_and_its_gap_is_repaired() {
    let _serial = one_at_a_time();
    let (feed, side) = (TestEndpoint::new("tcp"), TestEndpoint::new("tcp"));
    let publisher = publisher(&feed.url, &side.url, 2, &["--duration", "2"]);
    let addr = |url: &str| url.trim_start_matches("tcp://").parse().unwrap();
    let feed_relay = Relay::start(addr(&feed.url));
    let sub = subscriber(&feed_relay.url(), &side.url, &[]);
    let engine = Engine::new().unwrap();
    let observer = Observer::start(&engine, &feed.url, &side.url, false);
    observer.wait_ticks(5_000);
    feed_relay.cut();
    let done = wait_group(vec![publisher, sub], DEADLINE);
    let p = json(&done[0]);
    let s = the_subscriber(&done[1]);
    assert_eq!(s["outcome"], "complete", "{s}");
    assert_eq!(
        s["received"].as_u64().unwrap() + s["repaired"].as_u64().unwrap() + s["missing"].as_u64().unwrap(),
        p["published"].as_u64().unwrap()
    );
    assert!(s["repaired"].as_u64().unwrap() > 0, "the cut lost ticks while libzmq reconnected: {s}");
    assert_eq!(s["missing"], 0, "what the cut lost came back from the ring: {s}");
    epochs_close(&s);
    drop(observer);
}

/// Network namespaces of this test (a publisher host, two subscriber hosts, and a switch
/// holding the bridge), removed on drop.
struct Hosts {
    names: Vec<String>,
}

impl Hosts {
    fn ip(args: &[&str]) -> Result<(), String> {
        let out = std::process::Command::new("ip").args(args).output().map_err(|e| format!("ip: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
        }
    }

    /// Creates `pub`, `a`, `b` on 10.231.N.0/24 (N from the process id), each joined to the
    /// switch by a veth pair; only these addresses are used.
    fn create() -> Result<(Hosts, u8), String> {
        let id = std::process::id();
        let net = (id % 200) as u8 + 20;
        let tag = format!("{:x}", id);
        let sw = format!("zt{tag}sw");
        let mut hosts = Hosts { names: vec![sw.clone()] };
        Hosts::ip(&["netns", "add", &sw])?;
        Hosts::ip(&["-n", &sw, "link", "add", "br0", "type", "bridge"])?;
        Hosts::ip(&["-n", &sw, "link", "set", "br0", "up"])?;
        for (i, host) in ["pub", "a", "b"].iter().enumerate() {
            let ns = format!("zt{tag}{host}");
            Hosts::ip(&["netns", "add", &ns])?;
            hosts.names.push(ns.clone());
            let (inner, outer) = (format!("e{host}"), format!("s{host}"));
            Hosts::ip(&[
                "-n", &ns, "link", "add", &inner, "type", "veth", "peer", "name", &outer, "netns", &sw,
            ])?;
            Hosts::ip(&["-n", &sw, "link", "set", &outer, "master", "br0"])?;
            Hosts::ip(&["-n", &sw, "link", "set", &outer, "up"])?;
            Hosts::ip(&["-n", &ns, "addr", "add", &format!("10.231.{net}.{}/24", i + 1), "dev", &inner])?;
            Hosts::ip(&["-n", &ns, "link", "set", &inner, "up"])?;
            Hosts::ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok((hosts, net))
    }

    fn ns(&self, host: &str) -> &str {
        let name = format!("zt{:x}{host}", std::process::id());
        self.names.iter().find(|n| **n == name).map_or("", String::as_str)
    }

    fn switch(&self) -> &str {
        &self.names[0]
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for n in self.names.iter().rev() {
            let _ = Hosts::ip(&["netns", "del", n]);
        }
    }
}

#[test]
fn across_three_hosts_a_link_down_for_two_seconds_is_repaired_or_reported_exactly() {
    let _serial = one_at_a_time();
    let (hosts, net) = match Hosts::create() {
        Ok(h) => h,
        Err(why) => {
            // Not root, or no iproute2: say so, as the test cannot run here.
            eprintln!("SKIPPED across_three_hosts…: cannot create network namespaces ({why}); run as root with iproute2");
            return;
        }
    };
    let feed = format!("tcp://10.231.{net}.1:5556");
    let side = format!("tcp://10.231.{net}.1:5557");
    let under = |host: &str| vec!["ip", "netns", "exec", hosts.ns(host)];
    let publisher = Proc::spawn_under(
        &under("pub"),
        &[
            "fanout",
            "--role",
            "pub",
            "--bind",
            &feed,
            "--snapshot-bind",
            &side,
            "--subscribers",
            "2",
            "--duration",
            "5",
            "--json",
        ],
    );
    let sub = |host: &str| {
        Proc::spawn_under(
            &under(host),
            &["fanout", "--role", "sub", "--connect", &feed, "--snapshot", &side, "--follow", "--json"],
        )
    };
    let (a, b) = (sub("a"), sub("b"));
    assert!(publisher.wait_line("publishing", WAIT), "the publisher never started: {}", publisher.line);
    assert!(a.wait_line("begins", WAIT), "host a never saw a tick");
    // Host a's link goes down for 2 s, mid-stream; host b's stays up.
    Hosts::ip(&["-n", hosts.switch(), "link", "set", "sa", "down"]).unwrap();
    std::thread::sleep(Duration::from_secs(2)); // the fault's duration, not a synchronisation
    Hosts::ip(&["-n", hosts.switch(), "link", "set", "sa", "up"]).unwrap();
    let done = wait_group(vec![publisher, a, b], DEADLINE);
    let p = json(&done[0]);
    let published = p["published"].as_u64().unwrap();
    let (sa, sb) = (the_subscriber(&done[1]), the_subscriber(&done[2]));
    for s in [&sa, &sb] {
        epochs_close(s);
        // Network namespaces of one kernel share CLOCK_MONOTONIC, and the subscribers say so.
        assert_eq!(s["clock"]["kind"], "same_host", "{s}");
        let n = |k: &str| s[k].as_u64().unwrap();
        assert_eq!(n("received") + n("repaired") + n("missing"), published, "{s}");
    }
    assert_eq!(
        (sb["outcome"].as_str(), sb["missing"].as_u64(), sb["repaired"].as_u64()),
        (Some("complete"), Some(0), Some(0)),
        "host b unaffected: {sb}"
    );
    assert!(
        sa["repaired"].as_u64().unwrap() + sa["missing"].as_u64().unwrap() > 0,
        "host a lost ticks to the outage: {sa}"
    );
    drop(hosts);
}

#[test]
fn a_subscriber_stopped_by_sigterm_still_prints_its_report() {
    let _serial = one_at_a_time();
    let (feed, side) = (TestEndpoint::new("ipc"), TestEndpoint::new("ipc"));
    let publisher = publisher(&feed.url, &side.url, 1, &["--duration", "60"]);
    let sub = subscriber(&feed.url, &side.url, &[]);
    assert!(sub.wait_line("begins", WAIT), "the stream never reached the subscriber");
    let pid = sub.child.id().to_string();
    let killed = std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let done = wait_group(vec![sub], DEADLINE);
    let f = &done[0];
    assert_eq!(f.status.code(), Some(128 + 15), "128 + SIGTERM: {}", describe(f));
    let v = json(f);
    let s = &v["subscribers"][0];
    assert_eq!(s["outcome"], "stopped", "{s}");
    assert!(s["received"].as_u64().unwrap() > 0);
    assert_eq!(v["accounting_closes"], true, "{v}");
    drop(publisher);
}
