//! Shared by the bench suites: parameter labels, HDR reporting (printed, and appended as JSON
//! lines for `scripts/bench.sh`), thread pinning, the core-budget probe, and the measured
//! pairs in [`rtt`] (round trips) and [`flow`] (throughput).
//!
//! Each suite includes this module and uses part of it. `ZTICK_BENCH_PIN=0` turns thread
//! pinning off (to compare placements; the default pins, see [`pair_cores`]).
#![allow(dead_code)]

pub mod flow;
pub mod record;
pub mod rtt;

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ztick::metrics::LatencyRecorder;
use ztick::{CoreId, Endpoint, Engine, IdleStrategy, Transport};

use self::record::BenchRecord;

/// The message sizes of the latency and throughput suites.
pub const SIZES: [usize; 4] = [1, 64, 1024, 64 * 1024];

/// The transports, in the order the tables list them.
pub const TRANSPORTS: [Transport; 3] = [Transport::Inproc, Transport::Ipc, Transport::Tcp];

/// The idle strategies measured, with their labels in group names.
pub const IDLES: [(&str, IdleStrategy); 3] =
    [("block", IdleStrategy::BLOCK), ("backoff", IdleStrategy::BACKOFF), ("spin", IdleStrategy::BusySpin)];

/// `msg_1B`, `msg_64B`, `msg_1KiB`, `msg_64KiB`: a size as it appears in group names. Prefix
/// free, so that `-- msg_64B` does not also select `msg_64KiB`.
pub fn size_label(size: usize) -> String {
    if size >= 1024 && size.is_multiple_of(1024) {
        format!("msg_{}KiB", size / 1024)
    } else {
        format!("msg_{size}B")
    }
}

/// libzmq I/O threads an engine for `transport` needs: inproc needs none (and then two
/// spinning workers fit in two cores).
pub fn io_threads(transport: Transport) -> usize {
    if transport == Transport::Inproc {
        0
    } else {
        1
    }
}

/// An engine for one measured pair.
pub fn engine(transport: Transport) -> Engine {
    Engine::builder().io_threads(io_threads(transport)).build().expect("engine")
}

/// True under `cargo bench` (criterion's measuring mode); false under `cargo test --benches`,
/// where criterion runs each benchmark once and nothing is written for the tables.
pub fn measuring() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// Untimed warm-up work before a case is measured: `n` when measuring, a token amount under
/// `cargo test --benches` (where only whether the case runs matters).
pub fn warm(n: u64) -> u64 {
    if measuring() {
        n
    } else {
        n.min(4)
    }
}

/// Where the JSON lines go: `$ZTICK_BENCH_OUT`, or `target/ztick-bench`.
fn out_dir() -> PathBuf {
    std::env::var_os("ZTICK_BENCH_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/ztick-bench"))
}

/// Appends one record to `<out>/<suite>.jsonl` when measuring.
pub fn append_json(suite: &str, record: &BenchRecord) {
    if !measuring() {
        return;
    }
    let dir = out_dir();
    let written = std::fs::create_dir_all(&dir).and_then(|()| {
        let line = serde_json::to_string(record)?;
        let mut f = OpenOptions::new().create(true).append(true).open(dir.join(format!("{suite}.jsonl")))?;
        writeln!(f, "{line}")
    });
    if let Err(e) = written {
        eprintln!("warning: could not write {}: {e}", dir.display());
    }
}

/// The criterion filter, if one was given: the first free argument. Only used to decide
/// whether to print a skipped case's reason, so a substring test is close enough.
fn filter() -> Option<String> {
    const WITH_VALUE: [&str; 14] = [
        "--warm-up-time",
        "--measurement-time",
        "--sample-size",
        "--save-baseline",
        "--baseline",
        "--baseline-lenient",
        "--load-baseline",
        "--output-format",
        "--color",
        "--profile-time",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
        "--nresamples",
    ];
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if WITH_VALUE.contains(&a.as_str()) {
            args.next();
        } else if !a.starts_with('-') {
            return Some(a);
        }
    }
    None
}

/// Reports a case that is not run, with its reason, unless a filter leaves it out anyway.
pub fn skip(suite: &str, id: &str, reason: &str) {
    if filter().is_some_and(|f| !id.contains(&f)) {
        return;
    }
    println!("{id}: skipped: {reason}");
    append_json(suite, &BenchRecord::Skipped { id: id.to_owned(), skipped: reason.to_owned() });
}

/// Prints the HDR percentiles of `rec` beside criterion's estimate and appends them for the
/// tables; `what` names the quantity (`round_trip`, `one_way`, ...). Nothing if empty (the
/// case was filtered out).
pub fn report_hdr(suite: &str, id: &str, what: &str, rec: &LatencyRecorder) {
    if rec.is_empty() {
        return;
    }
    let s = rec.summary();
    let us = |ns: u64| ns as f64 / 1000.0;
    println!(
        "{id}: HDR {what} over {} samples (µs): p50 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
        s.count,
        us(s.p50),
        us(s.p99),
        us(s.p99_9),
        us(s.max)
    );
    append_json(suite, &BenchRecord::Measured { id: id.to_owned(), what: what.to_owned(), latency: s });
}

/// The cores this process may use, sorted.
pub fn cores() -> Vec<CoreId> {
    let mut c: Vec<CoreId> =
        core_affinity::get_core_ids().unwrap_or_default().into_iter().map(|c| CoreId::new(c.id)).collect();
    c.sort_unstable();
    c
}

/// Whether bench threads are pinned: yes unless `ZTICK_BENCH_PIN=0`.
pub fn pinning() -> bool {
    std::env::var("ZTICK_BENCH_PIN").map_or(true, |v| v != "0")
}

/// The two cores the ends of a pair are pinned to: the first and the last (the same one on
/// a single-core machine), or none with `ZTICK_BENCH_PIN=0`. Both stacks of a comparison
/// get the same placement.
pub fn pair_cores() -> (Option<CoreId>, Option<CoreId>) {
    if !pinning() {
        return (None, None);
    }
    let c = cores();
    (c.first().copied(), c.last().copied())
}

/// Pins the calling thread (benches only; the library pins its workers itself).
pub fn pin_current(core: Option<CoreId>) {
    if let Some(core) = core {
        let id = core.index();
        if !core_affinity::set_for_current(core_affinity::CoreId { id }) {
            eprintln!("warning: could not pin a bench thread to core {id}");
        }
    }
}

/// Whether two busy-spinning ends fit beside `transport`'s I/O threads, asked of the engine
/// itself: it starts two spinning workers and reports the engine's refusal, if any.
pub fn spin_allowed(transport: Transport) -> Result<(), String> {
    let engine = engine(transport);
    let a = engine.worker("spin-probe-a").idle(IdleStrategy::BusySpin).spawn().map_err(|e| e.to_string())?;
    let b = engine.worker("spin-probe-b").idle(IdleStrategy::BusySpin).spawn();
    let _ = a.stop();
    match b {
        Ok(w) => {
            let _ = w.stop();
            Ok(())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// How long any one wait for a measured pair may take before the bench fails loudly.
pub const STALL: Duration = Duration::from_secs(60);

/// Spins until `ready` returns something, giving up after [`STALL`]: a bounded busy wait for
/// the spinning cases, where a sleep would measure the scheduler instead.
pub fn spin_until<T>(mut ready: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + STALL;
    let mut n = 0u32;
    loop {
        if let Some(v) = ready() {
            return v;
        }
        n = n.wrapping_add(1);
        if n.is_multiple_of(1024) && Instant::now() > deadline {
            panic!("no progress within {STALL:?}");
        }
        std::hint::spin_loop();
    }
}

/// Removes an ipc endpoint's socket file, if `endpoint` is one (see
/// [`Endpoint::remove_ipc_file`]); the zmq.rs peers name their endpoints as strings.
pub fn remove_ipc(endpoint: &str) {
    if let Ok(ep) = endpoint.parse::<Endpoint>() {
        ep.remove_ipc_file();
    }
}
