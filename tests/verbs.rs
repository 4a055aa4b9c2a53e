//! The scripting verbs as real processes against each other: REQ/REP, PUB/SUB, PUSH/PULL
//! (both directions), ROUTER/DEALER, `run`, settings from a file, the environment and flags,
//! and the one-line errors of timeouts, refused endpoints and bad values.
//!
//! No test sleeps to synchronise: connecting senders wait for the connection
//! (`ZMQ_IMMEDIATE`), and publishers wait for their subscribers (`--wait-subscribers`).

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::free_port;
use common::process::*;
use serde_json::Value;

/// Every `ZMQ_*` variable the binary reads, cleared in each child unless a test sets it.
const ZMQ_VARS: [&str; 5] =
    ["ZMQ_BIND_ADDRESS", "ZMQ_CONNECT_ADDRESS", "ZMQ_PATTERN", "ZMQ_HWM", "ZMQ_LINGER_MS"];

/// Spawns `ztick args` with `env` set (and no other `ZMQ_*`), writing `stdin` to it and
/// closing it (no `stdin`: an empty one).
fn spawn(args: &[&str], env: &[(&str, &str)], stdin: &[u8]) -> Proc {
    let line = std::iter::once("ztick").chain(args.iter().copied()).collect::<Vec<_>>().join(" ");
    let mut cmd = Command::new(ZTICK);
    cmd.args(args).env_remove("RUST_LOG");
    for var in ZMQ_VARS {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied()).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawning `{line}`: {e}"));
    let mut input = child.stdin.take().expect("piped stdin");
    let data = stdin.to_vec();
    // A thread, so that a child that reads nothing cannot block the test on a full pipe.
    std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    Proc::adopt(line, child)
}

fn run_with(args: &[&str], env: &[(&str, &str)]) -> Finished {
    wait_group(vec![spawn(args, env, b"")], DEADLINE).pop().expect("one result")
}

/// Runs the processes together until all have exited, and checks that each succeeded.
fn all_succeed(procs: Vec<Proc>) -> Vec<Finished> {
    let done = wait_group(procs, DEADLINE);
    for f in &done {
        expect_success(f);
    }
    done
}

fn lines(f: &Finished) -> Vec<&str> {
    f.stdout.lines().collect()
}

fn req_rep(transport: &str) {
    let ep = TestEndpoint::new(transport);
    let done = all_succeed(vec![
        spawn(&["rep", "--bind", &ep.url, "--count", "2", "--timeout-ms", TIMEOUT_MS], &[], b""),
        spawn(&["req", "--connect", &ep.url, "--timeout-ms", TIMEOUT_MS, "hello", "world"], &[], b""),
        spawn(&["req", "--connect", &ep.url, "--timeout-ms", TIMEOUT_MS, "--json", "", "x"], &[], b""),
    ]);
    assert_eq!(lines(&done[1]), ["hello world"]);
    let reply: Value = serde_json::from_str(done[2].stdout.trim()).expect("one JSON reply");
    assert_eq!(reply, serde_json::json!({ "frames": ["", "x"] }));
    let mut served = lines(&done[0]);
    served.sort_unstable();
    assert_eq!(served, [" x", "hello world"], "rep prints each request");
}

#[test]
fn req_rep_over_tcp() {
    req_rep("tcp");
}

#[test]
fn req_rep_over_ipc() {
    req_rep("ipc");
}

#[test]
fn pub_sub_waits_for_its_subscribers_and_loses_nothing() {
    let ep = TestEndpoint::new("ipc");
    let input = b"one\ntwo words\r\n\xff\xfe\nlast".to_vec();
    let done = all_succeed(vec![
        spawn(
            &["sub", "--connect", &ep.url, "--topic", "tick", "--count", "4", "--timeout-ms", TIMEOUT_MS],
            &[],
            b"",
        ),
        spawn(&["sub", "--connect", &ep.url, "--count", "4", "--json", "--timeout-ms", TIMEOUT_MS], &[], b""),
        spawn(
            &[
                "pub",
                "--bind",
                &ep.url,
                "--topic",
                "tick",
                "--wait-subscribers",
                "2",
                "--timeout-ms",
                TIMEOUT_MS,
            ],
            &[],
            &input,
        ),
    ]);
    assert_eq!(lines(&done[0]), ["tick one", "tick two words", "tick 0xfffe", "tick last"]);
    let json: Vec<Value> = done[1].stdout.lines().map(|l| serde_json::from_str(l).expect("JSON")).collect();
    assert_eq!(json[2], serde_json::json!({ "frames": ["tick", { "hex": "fffe" }] }));
    assert_eq!(json[3], serde_json::json!({ "frames": ["tick", "last"] }));
}

#[test]
fn pub_times_out_waiting_for_subscribers() {
    let ep = TestEndpoint::new("ipc");
    let f = run_with(&["pub", "--bind", &ep.url, "--wait-subscribers", "1", "--timeout-ms", "200"], &[]);
    expect_failure_mentioning(&f, &["timed out after 200 ms", "0 of 1 subscriber"]);
}

fn push_pull(pull_binds: bool) {
    let ep = TestEndpoint::new("tcp");
    let (pull_side, push_side) = if pull_binds { ("--bind", "--connect") } else { ("--connect", "--bind") };
    let done = all_succeed(vec![
        spawn(&["pull", pull_side, &ep.url, "--count", "3", "--timeout-ms", TIMEOUT_MS], &[], b""),
        spawn(&["push", push_side, &ep.url, "--timeout-ms", TIMEOUT_MS], &[], b"1\n2\n3\n"),
    ]);
    assert_eq!(lines(&done[0]), ["1", "2", "3"]);
}

#[test]
fn push_connects_to_a_binding_pull() {
    push_pull(true);
}

#[test]
fn push_binds_for_a_connecting_pull() {
    push_pull(false);
}

#[test]
fn router_echoes_to_dealer_and_req_with_their_identities() {
    let ep = TestEndpoint::new("ipc");
    let done = all_succeed(vec![
        spawn(&["router", "--bind", &ep.url, "--echo", "--count", "3", "--timeout-ms", TIMEOUT_MS], &[], b""),
        spawn(
            &[
                "dealer",
                "--connect",
                &ep.url,
                "--routing-id",
                "client-1",
                "--timeout-ms",
                TIMEOUT_MS,
                "a",
                "b",
            ],
            &[],
            b"",
        ),
        spawn(
            &["dealer", "--connect", &ep.url, "--routing-id", "lines", "--timeout-ms", TIMEOUT_MS],
            &[],
            b"x\n",
        ),
        spawn(&["req", "--connect", &ep.url, "--timeout-ms", TIMEOUT_MS, "q"], &[], b""),
    ]);
    assert_eq!(lines(&done[1]), ["a b"]);
    assert_eq!(lines(&done[2]), ["x"]);
    assert_eq!(lines(&done[3]), ["q"]);
    let seen = lines(&done[0]);
    assert_eq!(seen.len(), 3, "{seen:?}");
    // "client-1" and "lines" in hex; the REQ's identity is libzmq's generated one (a zero
    // byte, then four), followed by REQ's empty delimiter frame.
    assert!(seen.contains(&"0x636c69656e742d31 a b"), "{seen:?}");
    assert!(seen.contains(&"0x6c696e6573 x"), "{seen:?}");
    assert!(seen.iter().any(|l| l.starts_with("0x00") && l.ends_with("  q")), "{seen:?}");
}

#[test]
fn req_to_a_port_nobody_listens_on_fails_in_one_line() {
    let url = format!("tcp://127.0.0.1:{}", free_port());
    let f = run_with(&["req", "--connect", &url, "--timeout-ms", "300", "ping"], &[]);
    expect_failure_mentioning(&f, &["timed out after 300 ms", "REQ", &url]);
    assert_eq!(f.stderr.trim().lines().count(), 1, "one line: {}", describe(&f));
    // The port was free a moment ago; unless another process took it since, the probe says
    // why nobody answered.
    if !f.stderr.contains("refused") {
        eprintln!("note: the probe found a listener on {url}: {}", f.stderr);
    }
}

#[test]
fn sub_times_out_on_a_missing_ipc_file() {
    let ep = TestEndpoint::new("ipc");
    let f = run_with(&["sub", "--connect", &ep.url, "--count", "2", "--timeout-ms", "200"], &[]);
    expect_failure_mentioning(&f, &["timed out after 200 ms", "no socket file", "0 of 2"]);
}

#[test]
fn bad_arguments_fail_with_a_clear_line() {
    let cases: [(&[&str], &[&str]); 6] = [
        (&["req", "--connect", "tcp://127.0.0.1:5"], &["required arguments were not provided"]),
        (&["rep", "--bind", "127.0.0.1:5555"], &["invalid --bind", "127.0.0.1:5555", "missing '://'"]),
        (
            &["rep", "--bind", "tcp://127.0.0.1:*", "--hwm", "lots"],
            &["invalid --hwm", "lots", "whole number"],
        ),
        (&["sub", "--count", "1"], &["endpoint", "--connect", "ZMQ_CONNECT_ADDRESS"]),
        (&["push", "--connect", "tcp://127.0.0.1:*"], &["invalid --connect", "needs a real port"]),
        (
            &["dealer", "--connect", "tcp://127.0.0.1:5", "--routing-id", ""],
            &["--routing-id", "1 to 255 bytes"],
        ),
    ];
    for (args, needles) in cases {
        expect_failure_mentioning(&run_with(args, &[]), needles);
    }
}

#[test]
fn bad_environment_values_name_the_variable() {
    let cases = [
        ("ZMQ_LINGER_MS", "-5", "-1 to wait forever"),
        ("ZMQ_HWM", "1e3", "whole number of messages"),
        ("ZMQ_BIND_ADDRESS", "tcp://127.0.0.1:http", "port 'http'"),
        ("ZMQ_PATTERN", "fanout", "pub, sub, req, rep"),
    ];
    for (var, value, form) in cases {
        let f = run_with(&["rep", "--count", "1"], &[(var, value)]);
        expect_failure_mentioning(&f, &[var, value, form]);
    }
}

#[test]
fn flags_beat_environment_beat_file() {
    let dir = TempDir::new();
    let file = dir.0.join("ztick.toml");
    let from_file = TestEndpoint::new("ipc");
    let from_env = TestEndpoint::new("ipc");
    std::fs::write(&file, format!("bind_address = \"{}\"\nhwm = 1\nlinger_ms = 1\n", from_file.url)).unwrap();
    let config = file.to_str().unwrap();

    let f = run_with(&["config", "--config", config, "--json", "--linger-ms", "3"], &[("ZMQ_HWM", "2")]);
    expect_success(&f);
    let v = json(&f);
    assert_eq!(v["bind_address"]["value"], from_file.url.as_str());
    assert_eq!(v["bind_address"]["source"], format!("bind_address in {config}"));
    assert_eq!(v["hwm"], serde_json::json!({ "value": 2, "source": "ZMQ_HWM" }));
    assert_eq!(v["linger_ms"], serde_json::json!({ "value": 3, "source": "--linger-ms" }));

    // A rep with no --bind binds the environment's address, not the file's.
    let env = [("ZMQ_BIND_ADDRESS", from_env.url.as_str())];
    let done = all_succeed(vec![
        spawn(&["rep", "--config", config, "--count", "1", "--timeout-ms", TIMEOUT_MS], &env, b""),
        spawn(&["req", "--connect", &from_env.url, "--timeout-ms", TIMEOUT_MS, "via-env"], &[], b""),
    ]);
    assert_eq!(lines(&done[1]), ["via-env"]);
}

#[test]
fn run_starts_the_verb_the_pattern_names() {
    let dir = TempDir::new();
    let file = dir.0.join("server.toml");
    let ep = TestEndpoint::new("ipc");
    std::fs::write(&file, format!("pattern = \"rep\"\nbind_address = \"{}\"\n", ep.url)).unwrap();
    let config = file.to_str().unwrap();
    // The client reads the same variable names: ZMQ_PATTERN picks req, and the connect
    // address comes from the environment.
    let client_env = [("ZMQ_PATTERN", "req"), ("ZMQ_CONNECT_ADDRESS", ep.url.as_str())];
    let done = all_succeed(vec![
        spawn(&["run", "--count", "1", "--config", config, "--timeout-ms", TIMEOUT_MS], &[], b""),
        spawn(&["run", "--timeout-ms", TIMEOUT_MS, "ping"], &client_env, b""),
    ]);
    assert_eq!(lines(&done[0]), ["ping"]);
    assert_eq!(lines(&done[1]), ["ping"]);

    let f = run_with(&["run"], &[("ZMQ_PATTERN", "pair")]);
    expect_failure_mentioning(&f, &["ZMQ_PATTERN", "pair", "has a verb for"]);
}

#[test]
fn bad_config_files_name_the_file_and_key() {
    let dir = TempDir::new();
    let file = dir.0.join("bad.toml");
    let config = file.to_str().unwrap();
    std::fs::write(&file, "hmw = 5\n").unwrap();
    expect_failure_mentioning(&run_with(&["pull", "--config", config], &[]), &["key in", config, "hmw"]);
    std::fs::write(&file, "hwm = \"5\"\n").unwrap();
    expect_failure_mentioning(&run_with(&["pull", "--config", config], &[]), &["hwm in", "TOML integer"]);
    let missing = dir.0.join("missing.toml");
    let f = run_with(&["pull", "--config", missing.to_str().unwrap()], &[]);
    expect_failure_mentioning(&f, &["config file", "missing.toml"]);
}

#[test]
fn one_config_file_serves_a_server_and_its_client_and_config_shows_where_each_value_came_from() {
    let dir = TempDir::new();
    let file = dir.0.join("ztick.toml");
    let ep = TestEndpoint::new("ipc");
    let text =
        format!("bind_address = \"{0}\"\nconnect_address = \"{0}\"\nhwm = 1000\nlinger_ms = 5000\n", ep.url);
    std::fs::write(&file, text).unwrap();
    let config = file.to_str().unwrap();

    // A flag beats the file; what no source sets shows its default.
    let f = run_with(&["config", "--config", config, "--hwm", "2000"], &[]);
    expect_success(&f);
    assert_eq!(
        lines(&f),
        [
            format!("bind_address = {}  # from bind_address in {config}", ep.url),
            format!("connect_address = {}  # from connect_address in {config}", ep.url),
            "pattern = (none)  # default".to_owned(),
            "hwm = 2000  # from --hwm".to_owned(),
            format!("linger_ms = 5000  # from linger_ms in {config}"),
        ]
    );

    // The server binds bind_address, the client connects to connect_address: one file.
    // (The linger lets the reply leave before the server closes; it waits for the client
    // to hang up, so it does not cost the full 5 s.)
    let done = all_succeed(vec![
        spawn(&["rep", "--config", config, "--count", "1", "--timeout-ms", TIMEOUT_MS], &[], b""),
        spawn(&["req", "--config", config, "--timeout-ms", TIMEOUT_MS, "configured"], &[], b""),
    ]);
    assert_eq!(lines(&done[0]), ["configured"]);
    assert_eq!(lines(&done[1]), ["configured"]);

    // A bad value in the file names the key, the file, the value and the accepted form.
    std::fs::write(&file, "linger_ms = -5\n").unwrap();
    let f = run_with(&["config", "--config", config], &[]);
    expect_failure_mentioning(&f, &["linger_ms in", config, "-5", "-1 to wait forever"]);
}
