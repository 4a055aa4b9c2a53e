//! PAIR between threads over inproc: a three-step relay, each step signalling the next.
//!
//! ```text
//! cargo run --example pair
//! ```
//!
//! The guide draws PAIR but never shows it. Each thread owns its end (a libzmq socket
//! lives on one thread at a time); inproc never touches the kernel.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use ztick::patterns::pair;
use ztick::{Endpoint, Engine, SocketOptions};

#[derive(Debug, Serialize, Deserialize)]
struct Ready {
    step: u8,
    note: String,
}

const WAIT: Duration = Duration::from_secs(5);
const ROUND_TRIPS: u32 = 10_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let engine = Engine::new()?;
    let opts = SocketOptions::default();
    // step 1 -> step 2 -> main, one PAIR per hop.
    let (mut main_end, mut step2_out) = pair(&engine, &Endpoint::unique_inproc("step3"), &opts)?;
    let (mut step2_in, mut step1_out) = pair(&engine, &Endpoint::unique_inproc("step2"), &opts)?;

    let step1 = std::thread::spawn(move || -> ztick::Result<()> {
        println!("step 1: ready, signalling step 2");
        step1_out.send_value(&Ready { step: 1, note: "step 1 done".into() })
    });
    let step2 = std::thread::spawn(move || -> ztick::Result<()> {
        let r: Ready = step2_in.recv_value(WAIT)?;
        println!("step 2: got {r:?}, signalling main");
        step2_out.send_value(&Ready { step: 2, note: format!("after '{}'", r.note) })?;
        // Then serve as an echo for a small round-trip measurement.
        for _ in 0..ROUND_TRIPS {
            let m = step2_out.recv_timeout(WAIT)?;
            let frames: Vec<&[u8]> = m.iter().map(Vec::as_slice).collect();
            step2_out.send(&frames)?;
        }
        Ok(())
    });
    let r: Ready = main_end.recv_value(WAIT)?;
    println!("main: got {r:?}: the relay is complete");

    let start = Instant::now();
    for i in 0..ROUND_TRIPS {
        main_end.send(&[&i.to_le_bytes()])?;
        let back = main_end.recv_timeout(WAIT)?;
        assert_eq!(back, vec![i.to_le_bytes().to_vec()]);
    }
    let per = start.elapsed() / ROUND_TRIPS;
    println!("main: {ROUND_TRIPS} inproc PAIR round trips with step 2, {per:?} each on average (this build, this machine)");

    step1.join().map_err(|_| "step 1 panicked")??;
    step2.join().map_err(|_| "step 2 panicked")??;
    Ok(())
}
