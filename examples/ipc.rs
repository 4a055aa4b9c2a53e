//! The ipc transport next to tcp (and inproc), round trips measured side by side.
//!
//! ```text
//! cargo run --example ipc
//! cargo run --release --example ipc   # representative numbers
//! ```
//!
//! The guide calls ipc "zero-copy" and "5-10x faster than TCP". It is neither by nature:
//! `ipc://` is a Unix-domain stream socket, and the kernel copies every byte through it just
//! as through a loopback TCP socket; it skips the TCP/IP stack, no more. (ztick's
//! zero-copy is elsewhere: pooled buffers handed to libzmq without a copy, on any
//! transport.) So measure: one thread echoes over a PAIR, the other times round trips,
//! the transports interleaved in rounds. Whatever the ratio prints, it is this run's.

use std::time::{Duration, Instant};

use ztick::metrics::LatencyRecorder;
use ztick::patterns::{pair, PairEnd};
use ztick::{Endpoint, Engine, SocketOptions, Transport};

const ROUND_TRIPS: usize = 2_000;
const WARM_UP: usize = 200;
const ROUNDS: usize = 3;
const SIZE: usize = 64;
const WAIT: Duration = Duration::from_secs(5);

/// Times `n` round trips of a `SIZE`-byte message through an echo thread.
fn measure(engine: &Engine, t: Transport, rec: &mut LatencyRecorder) -> ztick::Result<()> {
    let (mut here, there) = pair(engine, &Endpoint::local(t, "ipc-example"), &SocketOptions::default())?;
    let echo = std::thread::spawn(move || -> ztick::Result<()> {
        let mut there: PairEnd = there;
        let mut frames = Vec::new();
        for _ in 0..WARM_UP + ROUND_TRIPS {
            if !there.socket().recv_into(&mut frames, WAIT)? {
                break;
            }
            there.send(&[&frames[0]])?;
        }
        Ok(())
    });
    let msg = vec![7u8; SIZE];
    let mut frames = Vec::new();
    for i in 0..WARM_UP + ROUND_TRIPS {
        let t0 = Instant::now();
        here.send(&[&msg])?;
        here.socket().recv_into(&mut frames, WAIT)?;
        if i >= WARM_UP {
            rec.record(t0.elapsed().as_nanos() as u64);
        }
    }
    let _ = echo.join();
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let engine = Engine::new()?;
    let transports = [Transport::Tcp, Transport::Ipc, Transport::Inproc];
    let mut recs: Vec<LatencyRecorder> = transports.iter().map(|_| LatencyRecorder::new()).collect();
    for _ in 0..ROUNDS {
        for (t, rec) in transports.iter().zip(recs.iter_mut()) {
            measure(&engine, *t, rec)?;
        }
    }
    println!(
        "PAIR round trips, {SIZE}-byte messages, {} per transport in {ROUNDS} interleaved rounds ({} build)",
        ROUND_TRIPS * ROUNDS,
        if cfg!(debug_assertions) { "debug" } else { "release" }
    );
    println!("{:<8} {:>10} {:>10} {:>10} {:>10}", "", "p50 us", "p90 us", "p99 us", "mean us");
    let us = |ns: u64| ns as f64 / 1e3;
    for (t, rec) in transports.iter().zip(&recs) {
        let s = rec.summary();
        println!(
            "{:<8} {:>10.1} {:>10.1} {:>10.1} {:>10.1}",
            t.as_str(),
            us(s.p50),
            us(s.p90),
            us(s.p99),
            s.mean / 1e3
        );
    }
    let (tcp, ipc) = (recs[0].summary(), recs[1].summary());
    println!(
        "measured here: ipc's median round trip is {:.2}x tcp's (below 1 is faster)",
        ipc.p50 as f64 / tcp.p50.max(1) as f64
    );
    Ok(())
}
