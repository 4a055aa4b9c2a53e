//! cargo run --example paranoid_pirate
//!
//! Paranoid Pirate (guide §6.2): a load-balancing queue, workers that heartbeat and
//! reconnect with back-off, and a retrying client. One worker crashes mid-stream; the
//! client's retry goes to the other, and every request gets exactly one answer.

use std::time::Duration;

use ztick::patterns::{Heartbeat, PirateQueue, PirateWorker, Requester};
use ztick::{Endpoint, Engine};

fn main() -> ztick::Result<()> {
    // The crash below is simulated with a panic: print it as one line, not a backtrace.
    std::panic::set_hook(Box::new(|info| eprintln!("(simulated) {info}")));
    let engine = Engine::new()?;
    let hb = Heartbeat { interval: Duration::from_millis(100), liveness: 3 };
    let queue = PirateQueue::builder(Endpoint::unique_ipc("pp-front"), Endpoint::unique_ipc("pp-back"))
        .heartbeat(Some(hb))
        .spawn(&engine)?;
    println!("queue: clients on {}, workers on {}", queue.frontend(), queue.backend());

    let backend: Endpoint = queue.backend().parse()?;
    let worker = |name: &'static str, crash_at: Option<u32>| {
        let mut n = 0;
        move |body: &[&[u8]]| {
            n += 1;
            if Some(n) == crash_at {
                // Dies like a crashed process: the request in hand is never answered.
                panic!("{name} crashed on its request {n}");
            }
            vec![format!("{} by {name}", String::from_utf8_lossy(body[0])).into_bytes()]
        }
    };
    let fragile = PirateWorker::builder(backend.clone())
        .heartbeat(Some(hb))
        .name("fragile")
        .spawn(&engine, worker("fragile", Some(3)))?;
    let sturdy = PirateWorker::builder(backend)
        .heartbeat(Some(hb))
        .name("sturdy")
        .spawn(&engine, worker("sturdy", None))?;

    let mut client = Requester::builder(queue.frontend().parse()?)
        .timeout(Duration::from_millis(500))
        .retries(3)
        .connect(&engine)?;
    for i in 0..8 {
        let reply = client.request(&[format!("job{i}").as_bytes()])?;
        println!("job{i} -> {}", String::from_utf8_lossy(&reply[0]));
    }
    match fragile.join() {
        Err(e) => println!("fragile worker: {e}"),
        Ok(s) => println!("fragile worker ended normally after {} requests", s.served),
    }
    let s = client.stats();
    println!(
        "client: {} requests, {} answered, {} retries, {} failed",
        s.requests, s.answered, s.retries, s.failed
    );
    println!("sturdy worker served {}", sturdy.stop()?.served);
    let q = queue.stop()?;
    println!("queue: {} dispatched, {} replied, {} workers expired", q.dispatched, q.replied, q.expired);
    Ok(())
}
