//! The pipeline: a ventilator spreads tasks over workers, which send results to a sink.
//!
//! ```text
//! cargo run --example pipeline
//! ```
//!
//! Unlike the guide's version: no `sleep(1s)` "to wait for workers" (each worker announces
//! itself to the sink and the ventilator starts when all have), the sink decodes exactly the
//! type the workers send, and its ledger proves that every task id arrived exactly once.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use ztick::patterns::{PipelineWorker, Sink, StageConfig, Ventilator};
use ztick::{Endpoint, Engine};

/// A task: count the primes below `limit`.
#[derive(Debug, Serialize, Deserialize)]
struct Count {
    limit: u32,
}

/// Its result.
#[derive(Debug, Serialize, Deserialize)]
struct Primes {
    limit: u32,
    primes: u32,
}

fn count_primes(t: Count) -> Primes {
    let primes = (2..t.limit).filter(|&n| (2..).take_while(|d| d * d <= n).all(|d| n % d != 0)).count();
    Primes { limit: t.limit, primes: primes as u32 }
}

const WORKERS: usize = 4;
const TASKS: u64 = 400;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let engine = Engine::new()?;
    let stage = |name: &str| StageConfig { name: name.to_owned(), ..StageConfig::default() };
    let (tx, rx) = crossbeam_channel::unbounded();
    let sink = Sink::<Primes>::bind(&engine, &Endpoint::tcp_loopback_any(), &stage("sink"), move |d| {
        let _ = tx.send(d);
    })?;
    let mut vent = Ventilator::<Count>::bind(&engine, &Endpoint::tcp_loopback_any(), &stage("ventilator"))?;
    println!("ventilator at {}, sink at {}", vent.endpoint(), sink.endpoint());

    let workers = (0..WORKERS)
        .map(|i| {
            PipelineWorker::spawn(
                &engine,
                vent.endpoint(),
                sink.endpoint(),
                &stage(&format!("worker-{i}")),
                count_primes,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let ready = sink.wait_ready(WORKERS, Duration::from_secs(5))?;
    println!("ready handshake: {} workers announced themselves: {}", ready.len(), ready.join(", "));

    let started = Instant::now();
    for i in 0..TASKS {
        vent.send(&Count { limit: 1_000 + (i as u32 % 50) * 100 })?;
    }
    println!("ventilator sent {} tasks", vent.sent());
    let report = sink.wait_results(TASKS, Duration::from_secs(10));
    let elapsed = started.elapsed();

    let sample = rx
        .try_iter()
        .take(3)
        .map(|d| format!("#{} primes<{}={} ({})", d.id, d.value.limit, d.value.primes, d.worker));
    println!("first results: {}", sample.collect::<Vec<_>>().join(", "));
    for (w, n) in &report.per_worker {
        println!("  {w}: {n} tasks");
    }
    println!(
        "sink: {} of {} task ids received, {} missing, {} duplicates, {} malformed, in {:.1} ms",
        report.received,
        report.expected,
        report.missing,
        report.duplicates,
        report.input.malformed(),
        elapsed.as_secs_f64() * 1e3
    );
    println!("nothing lost: {}", if report.is_complete() { "yes" } else { "NO" });

    for w in workers {
        w.stop()?;
    }
    vent.stop()?;
    sink.stop(TASKS)?;
    if !report.is_complete() {
        return Err(format!("incomplete: {report:?}").into());
    }
    Ok(())
}
