//! The `ztick` binary's measuring verbs, run as real processes: the libzmq-compatible pairs
//! (`local-lat`/`remote-lat`, `local-thr`/`remote-thr`) over tcp and ipc, the one-process
//! `lat`/`thr` on every transport, `--hgrm`, and the errors users see for bad arguments.
//!
//! Nothing here can hang: every child gets `--timeout-ms` and also runs under a wall-clock
//! deadline after which it is killed and the test fails with its stderr. Tests run in
//! parallel: tcp ports come from the OS (bind `127.0.0.1:0`, read, drop; a bind that loses
//! the race is retried once on a fresh port), ipc paths carry the pid and a counter and are
//! removed afterwards. The only address used is 127.0.0.1.
//!
//! `cargo test --release --test perf_tools`.

mod common;

use std::time::{Duration, Instant};

use common::free_port;
use common::process::*;
use serde_json::Value;

/// Runs `ztick LOCAL ENDPOINT SIZE COUNT` (binding) and then `ztick REMOTE ENDPOINT SIZE
/// COUNT` (connecting; libzmq reconnects, so it may start first), each with `--timeout-ms`
/// and its `extra` flags. Returns (local, remote). A tcp bind that loses the race for its
/// port is retried once on another port.
fn run_pair(
    transport: &str,
    (local, local_extra): (&str, &[&str]),
    (remote, remote_extra): (&str, &[&str]),
    size: u64,
    count: u64,
) -> (Finished, Finished) {
    let (size, count) = (size.to_string(), count.to_string());
    for attempt in 0..2 {
        let endpoint = TestEndpoint::new(transport);
        let args = |verb: &str, extra: &[&str]| -> Vec<String> {
            [verb, endpoint.url.as_str(), size.as_str(), count.as_str(), "--timeout-ms", TIMEOUT_MS]
                .iter()
                .chain(extra)
                .map(|s| s.to_string())
                .collect()
        };
        let local_proc = Proc::spawn(&args(local, local_extra));
        let remote_proc = Proc::spawn(&args(remote, remote_extra));
        let mut done = wait_group(vec![local_proc, remote_proc], DEADLINE);
        let remote_done = done.pop().expect("remote result");
        let local_done = done.pop().expect("local result");
        let lost_port = transport == "tcp"
            && !local_done.status.success()
            && local_done.stderr.contains("Address already in use");
        if lost_port && attempt == 0 {
            continue;
        }
        return (local_done, remote_done);
    }
    unreachable!("the second attempt returns")
}

/// The value after `prefix` and before `suffix` on `line`, which must have both.
fn between<'a>(line: &'a str, prefix: &str, suffix: &str) -> &'a str {
    line.strip_prefix(prefix)
        .and_then(|rest| rest.strip_suffix(suffix))
        .unwrap_or_else(|| panic!("expected `{prefix}…{suffix}`, got `{line}`"))
}

fn parse_f64(text: &str) -> f64 {
    text.parse().unwrap_or_else(|e| panic!("`{text}` is not a number: {e}"))
}

/// A decimal printed with `%.3f`: exactly three digits after the point.
fn three_decimals(text: &str) -> f64 {
    let fraction = text.split_once('.').map(|(_, f)| f.len());
    assert_eq!(fraction, Some(3), "`{text}` is not printed with three decimals");
    parse_f64(text)
}

fn num(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("`{key}` missing or not a number in {v}"))
}

fn uint(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("`{key}` missing or not an unsigned integer in {v}"))
}

/// Checks a latency object: `size`, `count`, `avg_latency_us` and the round-trip
/// distribution in `latency_ns`, ordered and positive.
fn check_lat_json(v: &Value, size: u64, count: u64) {
    assert_eq!(uint(v, "size"), size, "{v}");
    assert_eq!(uint(v, "count"), count, "{v}");
    assert!(num(v, "avg_latency_us") > 0.0, "{v}");
    let l = &v["latency_ns"];
    assert!(l.is_object(), "no `latency_ns` object in {v}");
    assert_eq!(uint(l, "count"), count, "every timed round trip is in the histogram: {v}");
    let ticks = ["min", "p50", "p90", "p99", "p99_9", "p99_99", "max"].map(|k| (k, num(l, k)));
    for (key, value) in ticks {
        assert!(value > 0.0, "`latency_ns.{key}` is not positive in {v}");
    }
    for pair in ticks.windows(2) {
        assert!(pair[0].1 <= pair[1].1, "{} > {} in {v}", pair[0].0, pair[1].0);
    }
    let mean = num(l, "mean");
    assert!(num(l, "min") <= mean && mean <= num(l, "max"), "mean outside [min, max] in {v}");
}

/// Checks a throughput object: `size`, `count`, and rates that agree with each other.
fn check_thr_json(v: &Value, size: u64, count: u64) {
    assert_eq!(uint(v, "size"), size, "{v}");
    assert_eq!(uint(v, "count"), count, "{v}");
    let msgs = num(v, "msgs_per_s");
    let mbit = num(v, "mbit_per_s");
    assert!(msgs > 0.0 && mbit > 0.0, "{v}");
    let expected = msgs * size as f64 * 8.0 / 1e6;
    assert!(
        (mbit - expected).abs() <= expected * 1e-3 + 0.001,
        "mbit_per_s disagrees with msgs_per_s x size: {v}"
    );
}

/// Checks `remote-lat`'s text: libzmq's three lines, then HDR percentiles of the round trip.
fn check_lat_text(f: &Finished, size: u64, count: u64) {
    let lines: Vec<&str> = f.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "expected 4 lines: {}", describe(f));
    assert_eq!(lines[0], format!("message size: {size} [B]"));
    assert_eq!(lines[1], format!("roundtrip count: {count}"));
    assert!(three_decimals(between(lines[2], "average latency: ", " [us]")) > 0.0, "{}", lines[2]);
    let fields: Vec<&str> = between(lines[3], "round trip [us]: ", "").split_whitespace().collect();
    let names: Vec<&str> = fields.iter().step_by(2).copied().collect();
    assert_eq!(names, ["p50", "p90", "p99", "p99.9", "p99.99", "max", "mean"], "{}", lines[3]);
    let values: Vec<f64> = fields.iter().skip(1).step_by(2).map(|v| three_decimals(v)).collect();
    assert!(values.iter().all(|v| *v > 0.0), "{}", lines[3]);
    assert!(values[..6].windows(2).all(|w| w[0] <= w[1]), "percentiles out of order: {}", lines[3]);
}

/// Checks `local-thr`'s text: libzmq's four lines.
fn check_thr_text(f: &Finished, size: u64, count: u64) {
    let lines: Vec<&str> = f.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "expected 4 lines: {}", describe(f));
    assert_eq!(lines[0], format!("message size: {size} [B]"));
    assert_eq!(lines[1], format!("message count: {count}"));
    let msgs: u64 = between(lines[2], "mean throughput: ", " [msg/s]")
        .parse()
        .unwrap_or_else(|e| panic!("msg/s is not an integer ({e}): {}", lines[2]));
    let mbit = three_decimals(between(lines[3], "mean throughput: ", " [Mb/s]"));
    assert!(msgs > 0 && mbit > 0.0, "{}", f.stdout);
}

/// The cores `ztick info` sees (what the core budget counts).
fn cores() -> usize {
    let f = run(&["info", "--json"]);
    expect_success(&f);
    json(&f)["cores"].as_array().map(Vec::len).expect("`cores` in `ztick info --json`")
}

// ---------------------------------------------------------------------------------------
// 1. local-lat against remote-lat, two processes.
// ---------------------------------------------------------------------------------------

const LAT_SIZE: u64 = 64;
const LAT_ROUNDTRIPS: u64 = 2000;

fn two_process_lat(transport: &str) {
    // Text: libzmq's lines on the remote side, nothing on the local side.
    let (local, remote) =
        run_pair(transport, ("local-lat", &[]), ("remote-lat", &[]), LAT_SIZE, LAT_ROUNDTRIPS);
    expect_success(&remote);
    expect_success(&local);
    check_lat_text(&remote, LAT_SIZE, LAT_ROUNDTRIPS);
    assert!(local.stdout.is_empty(), "local-lat prints nothing, like libzmq's: {}", describe(&local));

    let (local, remote) =
        run_pair(transport, ("local-lat", &[]), ("remote-lat", &["--json"]), LAT_SIZE, LAT_ROUNDTRIPS);
    expect_success(&remote);
    expect_success(&local);
    check_lat_json(&json(&remote), LAT_SIZE, LAT_ROUNDTRIPS);
}

#[test]
fn local_lat_remote_lat_tcp() {
    two_process_lat("tcp");
}

#[test]
fn local_lat_remote_lat_ipc() {
    two_process_lat("ipc");
}

// ---------------------------------------------------------------------------------------
// 2. local-thr against remote-thr, two processes.
// ---------------------------------------------------------------------------------------

const THR_SIZE: u64 = 64;
const THR_COUNT: u64 = 100_000;

fn two_process_thr(transport: &str) {
    // Text: libzmq's four lines on the local side, nothing on the remote side.
    let (local, remote) = run_pair(transport, ("local-thr", &[]), ("remote-thr", &[]), THR_SIZE, THR_COUNT);
    expect_success(&local);
    expect_success(&remote);
    check_thr_text(&local, THR_SIZE, THR_COUNT);
    assert!(remote.stdout.is_empty(), "remote-thr prints nothing, like libzmq's: {}", describe(&remote));

    let (local, remote) =
        run_pair(transport, ("local-thr", &["--json"]), ("remote-thr", &[]), THR_SIZE, THR_COUNT);
    expect_success(&local);
    expect_success(&remote);
    check_thr_json(&json(&local), THR_SIZE, THR_COUNT);
}

#[test]
fn local_thr_remote_thr_tcp() {
    two_process_thr("tcp");
}

#[test]
fn local_thr_remote_thr_ipc() {
    two_process_thr("ipc");
}

// ---------------------------------------------------------------------------------------
// 3. --hgrm
// ---------------------------------------------------------------------------------------

#[test]
fn lat_hgrm_file_parses_and_counts_every_round_trip() {
    let dir = TempDir::new();
    let path = dir.0.join("lat.hgrm");
    let path_arg = path.to_str().expect("utf-8 temp path");
    let mut args = argv(&format!(
        "lat --transport inproc --count 1000 --warmup 100 --json --timeout-ms {TIMEOUT_MS} --hgrm"
    ));
    args.push(path_arg.to_owned());
    let f = run(&args);
    expect_success(&f);
    let report = json(&f);
    check_lat_json(&report, 64, 1000);

    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    assert!(text.contains("Value     Percentile TotalCount 1/(1-Percentile)"), "no header:\n{text}");
    assert!(text.contains("#[Max ") && text.contains("Total count    =         1000]"), "footer:\n{text}");
    let rows = ztick::metrics::parse_hgrm(&text).unwrap_or_else(|e| panic!("{e}:\n{text}"));
    let last = rows.last().unwrap_or_else(|| panic!("no rows:\n{text}"));
    assert_eq!(last.total_count, 1000, "{text}");
    assert_eq!(last.percentile, 1.0, "{text}");
    assert!(
        rows.windows(2).all(|w| w[0].value <= w[1].value && w[0].total_count <= w[1].total_count),
        "{text}"
    );
    // Microseconds in the file, nanoseconds in the JSON: the same maximum.
    let max_ns = num(&report["latency_ns"], "max");
    assert!((last.value * 1000.0 - max_ns).abs() <= 1.0, "file max {} us, JSON max {max_ns} ns", last.value);
}

// ---------------------------------------------------------------------------------------
// 4. lat and thr in one process, every transport.
// ---------------------------------------------------------------------------------------

/// Runs `lat` or `thr` and checks that it left no ipc socket file of its own behind.
fn run_one_process(args: &[String]) -> Finished {
    let ipc_files = || -> std::collections::HashSet<String> {
        std::fs::read_dir(std::env::temp_dir())
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .filter(|n| n.ends_with(".ipc"))
                    .collect()
            })
            .unwrap_or_default()
    };
    // Files left by earlier runs may carry the same (reused) pid: only new ones count.
    let before = ipc_files();
    let proc = Proc::spawn(args);
    let pid = proc.child.id();
    let f = wait_group(vec![proc], DEADLINE).pop().expect("one result");
    let marker = format!("-{pid}-");
    let leftovers: Vec<String> =
        ipc_files().into_iter().filter(|n| n.contains(&marker) && !before.contains(n)).collect();
    assert!(leftovers.is_empty(), "`{}` left {leftovers:?} in the temp dir", f.line);
    f
}

fn one_process_lat(transport: &str) {
    let f = run_one_process(&argv(&format!(
        "lat --transport {transport} --count 1000 --warmup 100 --json --timeout-ms {TIMEOUT_MS}"
    )));
    expect_success(&f);
    check_lat_json(&json(&f), 64, 1000);
}

fn one_process_thr(transport: &str) {
    let f = run_one_process(&argv(&format!(
        "thr --transport {transport} --count 100000 --json --timeout-ms {TIMEOUT_MS}"
    )));
    expect_success(&f);
    check_thr_json(&json(&f), 64, 100_000);
}

#[test]
fn lat_inproc_json() {
    one_process_lat("inproc");
}

#[test]
fn lat_ipc_json() {
    one_process_lat("ipc");
}

#[test]
fn lat_tcp_json() {
    one_process_lat("tcp");
}

#[test]
fn thr_inproc_json() {
    one_process_thr("inproc");
}

#[test]
fn thr_ipc_json() {
    one_process_thr("ipc");
}

#[test]
fn thr_tcp_json() {
    one_process_thr("tcp");
}

/// `lat` without `--json` prints what `remote-lat` prints.
#[test]
fn lat_inproc_text() {
    let f = run_one_process(&argv(&format!(
        "lat --transport inproc --count 1000 --warmup 100 --timeout-ms {TIMEOUT_MS}"
    )));
    expect_success(&f);
    check_lat_text(&f, 64, 1000);
}

/// `thr` without `--json` prints what `local-thr` prints.
#[test]
fn thr_inproc_text() {
    let f =
        run_one_process(&argv(&format!("thr --transport inproc --count 100000 --timeout-ms {TIMEOUT_MS}")));
    expect_success(&f);
    check_thr_text(&f, 64, 100_000);
}

// ---------------------------------------------------------------------------------------
// 5. Bad arguments: non-zero exit and a stderr line that says what is wrong.
// ---------------------------------------------------------------------------------------

#[test]
fn endpoint_without_port_is_refused() {
    let f = run(&argv(&format!("remote-lat tcp://127.0.0.1 64 10 --timeout-ms {TIMEOUT_MS}")));
    expect_failure_mentioning(&f, &["tcp://127.0.0.1", "port", "accepted forms"]);
}

#[test]
fn unknown_transport_is_refused() {
    let f = run(&argv(&format!("lat --transport udp --count 10 --timeout-ms {TIMEOUT_MS}")));
    expect_failure_mentioning(&f, &["udp", "transport", "inproc"]);
}

#[test]
fn unknown_idle_strategy_is_refused() {
    let f = run(&argv(&format!("lat --idle sleepy --count 10 --timeout-ms {TIMEOUT_MS}")));
    expect_failure_mentioning(&f, &["sleepy", "idle strategy", "busy-spin"]);
}

#[test]
fn missing_core_is_refused() {
    let f = run(&argv(&format!("lat --pin 999 --count 10 --timeout-ms {TIMEOUT_MS}")));
    expect_failure_mentioning(&f, &["core 999"]);
}

#[test]
fn spinning_lat_over_the_core_budget_is_refused() {
    let cores = cores();
    if cores >= 3 {
        eprintln!("skipped: {cores} cores fit 2 spinning workers + 1 I/O thread");
        return;
    }
    let f =
        run(&argv(&format!("lat --transport tcp --idle busy-spin --count 100 --timeout-ms {TIMEOUT_MS}")));
    expect_failure_mentioning(&f, &["core budget"]);
}

#[test]
fn spinning_thr_over_the_core_budget_is_refused_at_once() {
    let cores = cores();
    if cores >= 3 {
        eprintln!("skipped: {cores} cores fit 2 spinning workers + 1 I/O thread");
        return;
    }
    let started = Instant::now();
    let f =
        run(&argv(&format!("thr --transport ipc --idle busy-spin --count 100 --timeout-ms {TIMEOUT_MS}")));
    expect_failure_mentioning(&f, &["core budget"]);
    assert!(started.elapsed() < Duration::from_secs(5), "the refusal took {:?}", started.elapsed());
}

#[test]
fn spinning_lat_over_inproc_fits_two_cores() {
    let cores = cores();
    if cores < 2 {
        eprintln!("skipped: {cores} core cannot hold 2 spinning workers");
        return;
    }
    // inproc needs no libzmq I/O thread: two spinning workers are within the budget.
    let f = run(&argv(&format!(
        "lat --transport inproc --idle busy-spin --count 1000 --warmup 100 --json --timeout-ms {TIMEOUT_MS}"
    )));
    expect_success(&f);
    check_lat_json(&json(&f), 64, 1000);
}

#[test]
fn remote_lat_without_peer_times_out() {
    let endpoint = format!("tcp://127.0.0.1:{}", free_port());
    let started = Instant::now();
    let f = run(&["remote-lat", &endpoint, "64", "10", "--timeout-ms", "500"]);
    expect_failure_mentioning(&f, &["timed out", &endpoint]);
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
}

#[test]
fn remote_thr_without_peer_times_out() {
    let endpoint = format!("tcp://127.0.0.1:{}", free_port());
    let f = run_for(&["remote-thr", &endpoint, "64", "10", "--timeout-ms", "500"], Duration::from_secs(10));
    expect_failure_mentioning(&f, &["timed out", &endpoint]);
}
