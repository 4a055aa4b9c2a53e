//! Batched sends through the engine, with and without pooled zero-copy buffers, measured.
//!
//! ```text
//! cargo run --example batch_send
//! cargo run --release --example batch_send   # representative numbers
//! ```
//!
//! The guide's batch example calls `msg.clone()` for every message, copying it. Here the
//! application hands messages to a PUSH worker over a channel and the worker sends up to
//! `batch_max` of them per wake-up with `ZMQ_DONTWAIT`. Payloads either travel as a `Vec`
//! (allocated per message, then copied by libzmq) or as a pooled buffer that libzmq takes
//! without copying and gives back to the pool when sent.
//!
//! The numbers are what this run measured on this machine, in interleaved rounds side by
//! side; a debug build (`cargo run` without `--release`) measures unoptimised code.

use std::time::{Duration, Instant};

use ztick::{BufferPool, Endpoint, Engine, Frame, Outbound, SocketKind, SocketSpec};

const MESSAGES: u64 = 20_000;
const ROUNDS: usize = 3;

struct Config {
    batch_max: usize,
    size: usize,
    pooled: bool,
}

/// One run: returns (messages per second, mean messages per worker wake-up).
fn run(engine: &Engine, pool: &BufferPool, c: &Config) -> Result<(f64, f64), Box<dyn std::error::Error>> {
    let (done_tx, done_rx) = crossbeam_channel::bounded(1);
    let mut b = engine.worker("sink");
    let pull = b.socket(SocketSpec::bind(SocketKind::Pull, Endpoint::tcp_loopback_any()));
    let mut seen = 0u64;
    let sink = b
        .on_message(move |_, _, _| {
            seen += 1;
            if seen == MESSAGES {
                let _ = done_tx.send(Instant::now());
            }
            Ok(())
        })
        .spawn()?;
    let ep: Endpoint = sink.endpoint(pull).unwrap_or_default().parse()?;
    let mut b = engine.worker("sender").batch_max(c.batch_max);
    let push = b.socket(SocketSpec::connect(SocketKind::Push, ep));
    let sender = b.spawn()?;
    let h = sender.handle();
    let payload = vec![0x5Au8; c.size];

    let start = Instant::now();
    for _ in 0..MESSAGES {
        let msg = if c.pooled {
            let mut buf = pool.get();
            buf.extend_from_slice(&payload)?;
            Outbound::new(Frame::pooled(buf))
        } else {
            Outbound::from(payload.clone())
        };
        h.send(push, msg).map_err(|e| e.to_string())?;
    }
    let end = done_rx.recv_timeout(Duration::from_secs(30))?;
    let rate = MESSAGES as f64 / (end - start).as_secs_f64();
    let stats = sender.stop()?.stats;
    sink.stop()?;
    Ok((rate, stats.sent as f64 / stats.batches.max(1) as f64))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let engine = Engine::new()?;
    let pool = BufferPool::new(4096, 8192);
    let configs = [
        Config { batch_max: 1, size: 256, pooled: false },
        Config { batch_max: 64, size: 256, pooled: false },
        Config { batch_max: 1, size: 4096, pooled: false },
        Config { batch_max: 64, size: 4096, pooled: false },
        Config { batch_max: 64, size: 4096, pooled: true },
    ];
    let mut results: Vec<Vec<(f64, f64)>> = vec![Vec::new(); configs.len()];
    for _ in 0..ROUNDS {
        for (c, r) in configs.iter().zip(results.iter_mut()) {
            r.push(run(&engine, &pool, c)?);
        }
    }
    println!(
        "{MESSAGES} messages per run over tcp loopback, application thread -> PUSH worker -> PULL worker, \
         {ROUNDS} interleaved rounds ({} build)",
        if cfg!(debug_assertions) { "debug" } else { "release" }
    );
    println!(
        "{:<10} {:>7} {:>8} {:>14} {:>22} {:>11}",
        "batch_max", "size", "payload", "median msg/s", "range msg/s", "mean batch"
    );
    for (c, r) in configs.iter().zip(&results) {
        let mut rates: Vec<f64> = r.iter().map(|x| x.0).collect();
        rates.sort_by(f64::total_cmp);
        let mean_batch = r.iter().map(|x| x.1).sum::<f64>() / r.len() as f64;
        println!(
            "{:<10} {:>6}B {:>8} {:>14.0} {:>10.0} - {:>9.0} {:>11.1}",
            c.batch_max,
            c.size,
            if c.pooled { "pooled" } else { "Vec" },
            rates[rates.len() / 2],
            rates[0],
            rates[rates.len() - 1],
            mean_batch
        );
    }
    let s = pool.stats();
    println!("pool: {} buffers reused, {} allocated beyond the pool", s.hits, s.misses);
    Ok(())
}
