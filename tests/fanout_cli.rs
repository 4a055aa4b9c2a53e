//! `ztick fanout` as real processes: the embedded main job, publisher and subscriber in
//! separate processes over ipc and tcp, and the errors bad flags give.

mod common;

use common::process::*;
use serde_json::Value;

fn u(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("`{key}` missing in {v}"))
}

/// For every subscriber: received + missing + from_snapshot = expected, and the listed
/// gaps add up to missing (when none were left unlisted).
fn check_accounting(v: &Value, published: u64) {
    let subs = v["subscribers"].as_array().expect("subscribers");
    assert!(!subs.is_empty());
    for s in subs {
        assert_eq!(u(s, "received") + u(s, "missing") + u(s, "from_snapshot"), published, "{s}");
        let listed: u64 =
            s["gaps"].as_array().unwrap().iter().map(|g| u(g, "last") - u(g, "first") + 1).sum();
        if u(s, "gap_ranges") <= 20 {
            assert_eq!(listed, u(s, "missing"), "{s}");
        }
        let l = &s["latency_ns"];
        assert!(u(l, "p50") <= u(l, "p99") && u(l, "p99") <= u(l, "max"), "{l}");
    }
    assert_eq!(v["accounting_closes"], Value::Bool(true));
}

#[test]
fn embedded_fanout_json_closes_its_accounting() {
    let f = run(&argv("fanout --duration 0.3 --rate 20000 --json"));
    expect_success(&f);
    let v = json(&f);
    let published = u(&v, "published");
    assert_eq!(published, 6000, "20,000/s for 0.3 s");
    assert_eq!(v["subscribers"].as_array().unwrap().len(), 2);
    check_accounting(&v, published);
}

#[test]
fn the_feed_on_the_main_thread_loses_nothing_handed_off_or_owning_the_socket() {
    // The same feed on the main thread: each tick handed to the publisher's worker
    // (`handoff`), or sent on the XPUB that thread owns, with no worker (`caller`).
    for feed in ["handoff", "caller"] {
        let f = run(&argv(&format!("fanout --feed {feed} --duration 0.3 --rate 20000 --json")));
        expect_success(&f);
        let v = json(&f);
        assert_eq!(u(&v, "published"), 6000, "{feed}: 20,000/s for 0.3 s");
        check_accounting(&v, 6000);
        for s in v["subscribers"].as_array().unwrap() {
            assert_eq!(u(s, "missing"), 0, "{feed}: {s}");
            assert!(u(&s["latency_ns"], "p50") > 0, "{feed}: latency from the intended times: {s}");
        }
    }
}

#[test]
fn subscribers_sharing_one_worker_lose_nothing() {
    for transport in ["inproc", "ipc"] {
        let line = format!(
            "fanout --share-worker --subscribers 3 --transport {transport} --duration 1 --rate 6000 --json"
        );
        let mut p = Proc::spawn(&argv(&line));
        // The subscribers' workers start before the feed: one thread serves all three.
        let deadline = std::time::Instant::now() + DEADLINE;
        let mut names = p.thread_names();
        while !names.iter().any(|n| n == "ztick-subs")
            && p.poll().is_none()
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(2));
            names = p.thread_names();
        }
        assert!(names.iter().any(|n| n == "ztick-subs"), "{transport}: no shared worker among {names:?}");
        assert!(
            !names.iter().any(|n| n.starts_with("ztick-sub") && n != "ztick-subs"),
            "{transport}: {names:?}"
        );
        let f = wait_group(vec![p], DEADLINE).pop().unwrap();
        expect_success(&f);
        let v = json(&f);
        check_accounting(&v, 6000);
        let subs = v["subscribers"].as_array().unwrap();
        assert_eq!(subs.len(), 3, "{transport}");
        for s in subs {
            assert_eq!((u(s, "received"), u(s, "missing")), (6000, 0), "{transport}: {s}");
        }
    }
}

#[test]
fn every_profile_runs_and_says_what_it_chose() {
    for profile in ["latency", "balanced", "throughput"] {
        let f = run(&argv(&format!("fanout --profile {profile} --duration 0.2 --rate 10000 --json")));
        expect_success(&f);
        assert!(f.stderr.contains(&format!("ztick: profile {profile}: idle")), "{}", f.stderr);
        assert!(f.stderr.contains("I/O sched"), "the I/O threads' policy is named: {}", f.stderr);
        let v = json(&f);
        check_accounting(&v, 2000);
        assert_eq!(u(&v["merged"], "missing"), 0, "{profile}: {v}");
    }
}

#[test]
fn embedded_fanout_text_and_outputs() {
    let dir = TempDir::new();
    let hgrm = dir.0.join("f.hgrm");
    let svg = dir.0.join("f.svg");
    let f = run(&[
        "fanout",
        "--duration",
        "0.2",
        "--rate",
        "10000",
        "--subscribers",
        "1",
        "--transport",
        "inproc",
        "--hgrm",
        hgrm.to_str().unwrap(),
        "--plot",
        svg.to_str().unwrap(),
    ]);
    expect_success(&f);
    assert!(f.stdout.contains("complete; received 2000 of 2000, repaired 0, missing 0"), "{}", f.stdout);
    let rows = ztick::metrics::parse_hgrm(&std::fs::read_to_string(&hgrm).unwrap()).unwrap();
    assert_eq!(rows.last().unwrap().total_count, 2000);
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("<polyline"));
}

fn two_process(transport: &str, feed: &str) {
    for attempt in 0..2 {
        let data = TestEndpoint::new(transport);
        let snap = TestEndpoint::new(transport);
        let publisher = Proc::spawn(&[
            "fanout",
            "--role",
            "pub",
            "--bind",
            &data.url,
            "--snapshot-bind",
            &snap.url,
            "--subscribers",
            "1",
            "--duration",
            "0.5",
            "--rate",
            "20000",
            "--feed",
            feed,
            "--json",
        ]);
        let subscriber = Proc::spawn(&[
            "fanout",
            "--role",
            "sub",
            "--connect",
            &data.url,
            "--snapshot",
            &snap.url,
            "--timeout-ms",
            "20000",
            "--json",
        ]);
        let mut done = wait_group(vec![publisher, subscriber], DEADLINE);
        let sub = done.pop().unwrap();
        let publ = done.pop().unwrap();
        if attempt == 0 && transport == "tcp" && publ.stderr.contains("Address already in use") {
            continue;
        }
        expect_success(&publ);
        expect_success(&sub);
        let p = json(&publ);
        let s = json(&sub);
        assert_eq!(u(&p, "published"), 10_000);
        assert_eq!(u(&s, "published"), 10_000, "the subscriber learns the total from the end markers");
        check_accounting(&s, 10_000);
        assert_eq!(u(&s["subscribers"][0], "missing"), 0);
        assert_eq!(u(&p["publisher"], "acks"), 1, "the subscriber acknowledged the end");
        return;
    }
}

#[test]
fn publisher_and_subscriber_processes_over_ipc() {
    two_process("ipc", "source");
}

#[test]
fn a_publisher_process_with_the_feed_handed_off() {
    two_process("ipc", "handoff");
}

#[test]
fn a_publisher_process_that_owns_its_socket_on_the_main_thread() {
    two_process("tcp", "caller");
}

#[test]
fn publisher_and_subscriber_processes_over_tcp() {
    two_process("tcp", "source");
}

/// The rows of one subscriber's `idle_gaps`: (gap in ns, ticks), and its unmatched ticks.
fn idle_rows(s: &Value) -> (Vec<(u64, u64)>, u64) {
    let rows = s["idle_gaps"].as_array().unwrap_or_else(|| panic!("idle_gaps missing in {s}"));
    for r in rows {
        let l = &r["latency_ns"];
        assert!(u(l, "p50") > 0 && u(l, "p50") <= u(l, "max"), "{r}");
        assert!(u(&r["latency_raw_ns"], "max") <= u(l, "max") + 1_000, "raw is from the later send: {r}");
    }
    (rows.iter().map(|r| (u(r, "gap_ns"), u(r, "count"))).collect(), u(s, "idle_unmatched"))
}

#[test]
fn the_idle_feed_groups_latency_by_the_gap_before_each_tick() {
    // One lead-in tick, then 3 ticks after each gap: 7 in all, each gap's 3 grouped.
    let f = run(&argv("fanout --idle-gaps-us 200,3000 --idle-samples 3 --subscribers 1 --json"));
    expect_success(&f);
    let v = json(&f);
    assert_eq!((u(&v, "published"), u(&v, "rate")), (7, 0));
    check_accounting(&v, 7);
    let (rows, unmatched) = idle_rows(&v["subscribers"][0]);
    assert_eq!(rows, [(200_000, 3), (3_000_000, 3)]);
    assert_eq!(unmatched, 1, "the lead-in tick follows no gap");
    let text = run(&argv("fanout --idle-gaps-us 200,3000 --idle-samples 3 --subscribers 1"));
    expect_success(&text);
    assert!(text.stdout.contains("ticks after idle gaps of 200us, 3ms"), "{}", text.stdout);
    assert!(text.stdout.contains("after 3ms"), "{}", text.stdout);
}

#[test]
fn the_idle_feed_across_processes() {
    let data = TestEndpoint::new("ipc");
    let snap = TestEndpoint::new("ipc");
    let gaps = ["--idle-gaps-us", "500,2000"];
    let mut pub_args = vec!["fanout", "--role", "pub", "--bind", &data.url, "--snapshot-bind", &snap.url];
    pub_args.extend(["--subscribers", "1", "--idle-samples", "4", "--json"]);
    pub_args.extend(gaps);
    let mut sub_args = vec!["fanout", "--role", "sub", "--connect", &data.url, "--snapshot", &snap.url];
    sub_args.extend(["--timeout-ms", "20000", "--json"]);
    // The subscriber needs the gaps only, not how many ticks follow each.
    sub_args.extend(gaps);
    let mut done = wait_group(vec![Proc::spawn(&pub_args), Proc::spawn(&sub_args)], DEADLINE);
    let sub = done.pop().unwrap();
    let publ = done.pop().unwrap();
    expect_success(&publ);
    expect_success(&sub);
    assert_eq!(u(&json(&publ), "published"), 9);
    let s = json(&sub);
    check_accounting(&s, 9);
    assert_eq!(idle_rows(&s["subscribers"][0]), (vec![(500_000, 4), (2_000_000, 4)], 1));
}

#[test]
fn bad_flags_say_what_to_fix() {
    let cases: &[(&str, &[&str])] = &[
        ("fanout --topics 0", &["topics", "1 to 10000"]),
        ("fanout --duration 0", &["duration"]),
        ("fanout --duration nan", &["duration"]),
        ("fanout --groups 9", &["groups", "number of topics"]),
        ("fanout --size 70000", &["size", "65535"]),
        ("fanout --max-batch 0", &["max_batch"]),
        ("fanout --subscribers 0", &["subscribers"]),
        ("fanout --transport udp", &["udp"]),
        ("fanout --role pub", &["--bind"]),
        ("fanout --role sub", &["--connect"]),
        ("fanout --role sub --connect tcp://127.0.0.1 ", &["port"]),
        ("fanout --rate=-5", &["rate"]),
        ("fanout --idle-gaps-us 0", &["--idle-gaps-us", "1 to 60000000"]),
        ("fanout --idle-gaps-us 100 --idle-samples 0", &["--idle-samples"]),
        ("fanout --idle-gaps-us 100 --rate 10", &["--rate", "cannot be used"]),
        (
            "fanout --share-worker --role sub --connect ipc:///tmp/ztick-never",
            &["--share-worker", "embedded"],
        ),
    ];
    for (line, needles) in cases {
        let f = run(&argv(line));
        expect_failure_mentioning(&f, needles);
    }
}

#[test]
fn the_roles_take_the_engine_flags() {
    // --io-cores reaches a --role process's engine: a core that does not exist is refused.
    let ep = TestEndpoint::new("ipc");
    for role in [&["--role", "sub", "--connect", &ep.url][..], &["--role", "pub", "--bind", &ep.url]] {
        let mut argv = vec!["fanout", "--io-cores", "4095", "--timeout-ms", "200", "--wait-ms", "200"];
        argv.extend(role);
        expect_failure_mentioning(&run(&argv), &["4095"]);
    }
}

#[test]
fn a_subscriber_without_a_publisher_times_out_clearly() {
    // The report is printed whatever the outcome; the exit code says it timed out.
    let ep = TestEndpoint::new("ipc");
    let f = run(&["fanout", "--role", "sub", "--connect", &ep.url, "--timeout-ms", "300", "--json"]);
    assert_eq!(f.status.code(), Some(4), "the timeout exit code: {}", describe(&f));
    assert!(
        f.stderr.to_lowercase().contains("timed out") && f.stderr.contains("end of stream"),
        "{}",
        describe(&f)
    );
    let v = json(&f);
    assert_eq!(v["subscribers"][0]["outcome"], "timeout", "{v}");
    assert_eq!(v["subscribers"][0]["received"], 0);
}
