//! What the measuring verbs export besides their reports, as real processes: `--hlog`
//! interval logs that parse back and add up to the run's counts; `ztick fanout --role
//! pub|sub` configured by the guide's variables and a settings file (flags > environment >
//! file); a fan-out subscriber with the wrong CURVE server key saying "handshake failed:
//! authentication"; and, with the `otlp` feature, an export to an OTLP/HTTP collector run
//! by this test on loopback.

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::process::*;
use ztick::info::BuildInfo;
use ztick::metrics::parse_hlog;

/// Per tag, the total count of an interval log's histograms.
fn hlog_counts(path: &std::path::Path) -> BTreeMap<String, u64> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut counts = BTreeMap::new();
    for iv in parse_hlog(&bytes).expect("the log parses with IntervalLogIterator") {
        *counts.entry(iv.tag.unwrap_or_default()).or_insert(0) += iv.histogram.len();
    }
    counts
}

#[test]
fn lat_writes_an_interval_log_whose_counts_add_up_to_the_run() {
    let dir = TempDir::new();
    let log = dir.0.join("lat.hlog");
    let f = run(&["lat", "--count", "3000", "--warmup", "100", "--json", "--hlog", log.to_str().unwrap()]);
    expect_success(&f);
    let v = json(&f);
    let counts = hlog_counts(&log);
    assert_eq!(counts.keys().collect::<Vec<_>>(), ["req"], "{counts:?}");
    assert_eq!(counts["req"], v["latency_ns"]["count"].as_u64().unwrap(), "{}", describe(&f));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.starts_with("#") && text.contains("#[Histogram log format version 1.3]"), "{text}");
}

#[test]
fn hlog_is_refused_where_there_is_no_latency_histogram() {
    let f = run(&["thr", "--count", "10", "--hlog", "/dev/null"]);
    expect_failure_mentioning(&f, &["--hlog", "lat, remote-lat or fanout"]);
}

#[test]
fn fanout_writes_each_subscribers_windows_to_the_interval_log() {
    let dir = TempDir::new();
    let log = dir.0.join("fanout.hlog");
    let f =
        run(&["fanout", "--duration", "1.5", "--rate", "20000", "--json", "--hlog", log.to_str().unwrap()]);
    expect_success(&f);
    let v = json(&f);
    let counts = hlog_counts(&log);
    let subs = v["subscribers"].as_array().unwrap();
    assert_eq!(counts.len(), subs.len(), "{counts:?}");
    for s in subs {
        let name = s["name"].as_str().unwrap();
        assert_eq!(Some(&s["latency_ns"]["count"].as_u64().unwrap()), counts.get(name), "{name}: {counts:?}");
    }
}

/// Runs `ztick ARGS` with `env` added to (and RUST_LOG removed from) the environment.
fn spawn_with_env(args: &[&str], env: &[(&str, &str)]) -> Proc {
    let mut cmd = Command::new(ZTICK);
    cmd.args(args).env_remove("RUST_LOG").stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let line = format!(
        "{} ztick {}",
        env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" "),
        args.join(" ")
    );
    Proc::adopt(line, cmd.spawn().expect("spawning ztick"))
}

#[test]
fn fanout_roles_read_the_guides_variables_and_the_settings_file() {
    let dir = TempDir::new();
    let (feed, side) = (TestEndpoint::new("tcp"), TestEndpoint::new("tcp"));
    // The publisher's address from the environment, its HWM from the file; the subscriber's
    // address from the file, overridden by nothing.
    let pub_conf = dir.0.join("pub.toml");
    std::fs::write(&pub_conf, "hwm = 5000\nbind_address = \"tcp://127.0.0.1:1\"\n").unwrap();
    let sub_conf = dir.0.join("sub.toml");
    std::fs::write(&sub_conf, format!("connect_address = \"{}\"\n", feed.url)).unwrap();
    let publisher = spawn_with_env(
        &[
            "fanout",
            "--role",
            "pub",
            "--config",
            pub_conf.to_str().unwrap(),
            "--snapshot-bind",
            &side.url,
            "--subscribers",
            "1",
            "--duration",
            "0.5",
            "--rate",
            "10000",
            "--json",
        ],
        &[("ZMQ_BIND_ADDRESS", &feed.url)],
    );
    let subscriber = spawn_with_env(
        &[
            "fanout",
            "--role",
            "sub",
            "--config",
            sub_conf.to_str().unwrap(),
            "--snapshot",
            &side.url,
            "--json",
        ],
        // A bind address means nothing to a subscriber; a bad HWM would be refused.
        &[("ZMQ_BIND_ADDRESS", "tcp://127.0.0.1:9"), ("ZMQ_HWM", "2000")],
    );
    let done = wait_group(vec![publisher, subscriber], DEADLINE);
    for f in &done {
        expect_success(f);
    }
    let p = json(&done[0]);
    let s = json(&done[1]);
    assert_eq!(s["accounting_closes"], true, "{}", describe(&done[1]));
    let sub = &s["subscribers"][0];
    assert_eq!(sub["received"].as_u64(), p["published"].as_u64(), "{}", describe(&done[1]));
    assert!(sub["latency_ns"]["count"].as_u64().unwrap() > 0);
    // The subscriber's connection was seen on the publisher's monitor.
    assert_eq!(p["publisher"]["connections"].as_u64(), Some(1), "{}", describe(&done[0]));
    assert!(
        done[0].stderr.contains("peer connection"),
        "the publisher logs arrivals: {}",
        describe(&done[0])
    );

    // A flag beats the environment, which beats the file: a bad variable is named.
    let f = run_with_env(
        &["fanout", "--role", "sub", "--config", sub_conf.to_str().unwrap()],
        &[("ZMQ_HWM", "lots")],
    );
    expect_failure_mentioning(&f, &["ZMQ_HWM", "lots"]);
}

fn run_with_env(args: &[&str], env: &[(&str, &str)]) -> Finished {
    wait_group(vec![spawn_with_env(args, env)], DEADLINE).remove(0)
}

#[test]
fn a_subscriber_with_the_wrong_server_key_says_handshake_failed_authentication() {
    if !BuildInfo::current().curve {
        eprintln!(
            "SKIPPED a_subscriber_with_the_wrong_server_key…: this libzmq has no CURVE (the vendored \
             4.3.4 build); scripts/system-libzmq.sh test runs it"
        );
        return;
    }
    let dir = TempDir::new();
    let path = |name: &str| dir.0.join(name).to_string_lossy().into_owned();
    let keygen = |name: &str| {
        let f = run(&["keygen", "--secret-out", &path(name)]);
        expect_success(&f);
        f.stdout.trim().to_owned()
    };
    keygen("server");
    let impostor = keygen("impostor");
    keygen("client");
    let feed = TestEndpoint::new("tcp");
    let publisher = Proc::spawn(&[
        "fanout",
        "--role",
        "pub",
        "--bind",
        &feed.url,
        "--subscribers",
        "1",
        "--duration",
        "0.2",
        "--curve-server-secret",
        &path("server"),
    ]);
    let sub = Proc::spawn(&[
        "fanout",
        "--role",
        "sub",
        "--connect",
        &feed.url,
        "--timeout-ms",
        "3000",
        "--curve-client-secret",
        &path("client"),
        "--curve-server-public",
        &impostor,
    ]);
    assert!(
        sub.wait_line("handshake failed: authentication", Duration::from_secs(20)),
        "the subscriber said nothing about the refused handshake"
    );
    let done = wait_group(vec![sub, publisher], DEADLINE);
    assert_eq!(done[0].status.code(), Some(4), "the subscriber times out: {}", describe(&done[0]));
    assert!(done[0].stderr.contains("server public key"), "it says what to check: {}", describe(&done[0]));
    assert!(done[1].stderr.contains("handshake failed: authentication"), "{}", describe(&done[1]));
}

#[cfg(not(feature = "otlp"))]
#[test]
fn otlp_without_the_feature_is_a_clear_error() {
    let f = run(&["lat", "--count", "10", "--otlp"]);
    expect_failure_mentioning(&f, &["--otlp", "--features otlp"]);
}

/// A tiny OTLP/HTTP collector on loopback: answers every POST with 200 and an empty
/// protobuf body, and hands each request's path and body to the test.
#[cfg(feature = "otlp")]
mod collector {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;

    pub struct Collector {
        pub url: String,
        pub requests: crossbeam_channel::Receiver<(String, Vec<u8>)>,
    }

    pub fn start() -> Collector {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, requests) = crossbeam_channel::unbounded();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(10_000) {
                let Ok(mut stream) = stream else { continue };
                let tx = tx.clone();
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(10)));
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    // Keep-alive: serve requests until the client closes.
                    for _ in 0..1000 {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
                        let mut len = 0usize;
                        loop {
                            let mut h = String::new();
                            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                                return;
                            }
                            let h = h.trim_end();
                            if h.is_empty() {
                                break;
                            }
                            if let Some((k, v)) = h.split_once(':') {
                                if k.eq_ignore_ascii_case("content-length") {
                                    len = v.trim().parse().unwrap_or(0);
                                }
                            }
                        }
                        let mut body = vec![0; len.min(64 << 20)];
                        if reader.read_exact(&mut body).is_err() {
                            return;
                        }
                        let _ = tx.send((path, body));
                        let reply = "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
                        if stream.write_all(reply.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Collector { url, requests }
    }
}

#[cfg(feature = "otlp")]
#[test]
fn otlp_export_reaches_a_collector_with_the_semantic_convention_names() {
    let c = collector::start();
    let flag = format!("--otlp={}", c.url);
    let lat = run(&["lat", "--count", "2000", "--json", &flag]);
    expect_success(&lat);
    let fan = run(&["fanout", "--duration", "1.2", "--rate", "10000", "--json", &flag]);
    expect_success(&fan);
    let mut metrics = Vec::new();
    let mut traces = Vec::new();
    while let Ok((path, body)) = c.requests.recv_timeout(Duration::from_millis(500)) {
        match path.as_str() {
            "/v1/metrics" => metrics.extend(body),
            "/v1/traces" => traces.extend(body),
            other => panic!("unexpected path {other}"),
        }
    }
    // Protobuf keeps strings as they are: the names can be found in the bytes.
    let has = |bytes: &[u8], s: &str| bytes.windows(s.len()).any(|w| w == s.as_bytes());
    for name in [
        "messaging.client.operation.duration",
        "messaging.client.sent.messages",
        "messaging.client.consumed.messages",
        "ztick.messages.gaps",
        "messaging.system",
        "zeromq",
        "messaging.operation.name",
        "messaging.operation.type",
        "messaging.destination.name",
        "network.transport",
    ] {
        assert!(has(&metrics, name), "metric export lacks {name:?} ({} bytes)", metrics.len());
    }
    for name in
        ["latency", "messaging.batch.message_count", "messaging.destination.name", "fanout subscriber"]
    {
        assert!(has(&traces, name), "span export lacks {name:?} ({} bytes)", traces.len());
    }
}
