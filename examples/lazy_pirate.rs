//! cargo run --example lazy_pirate
//!
//! Lazy Pirate (guide §6.1): a client that retries on timeout, closing and reopening its
//! socket each time (a REQ socket cannot send twice: EFSM), and tags each try with a
//! request id so a late answer to an earlier try is never taken for a later one's.
//! The server goes away mid-stream: the client fails clearly after its retries, then
//! succeeds once a new server takes the endpoint.

use std::time::Duration;

use ztick::patterns::{Replier, Requester};
use ztick::{Endpoint, Engine};

fn main() -> ztick::Result<()> {
    let engine = Engine::new()?;
    let echo = |body: &[&[u8]]| vec![[b"echo:", body[0]].concat()];
    let server = Replier::builder(Endpoint::tcp_loopback_any()).spawn(&engine, echo)?;
    let endpoint: Endpoint = server.endpoint().parse()?;
    println!("server on {endpoint}");

    let mut client = Requester::builder(endpoint.clone())
        .timeout(Duration::from_millis(300))
        .retries(2)
        .connect(&engine)?;
    for i in 0..3 {
        let reply = client.request(&[format!("req{i}").as_bytes()])?;
        println!("req{i} -> {}", String::from_utf8_lossy(&reply[0]));
    }

    server.stop()?;
    println!("server stopped");
    match client.request(&[b"req3"]) {
        Ok(_) => println!("req3 answered by nobody?"),
        Err(e) => println!("req3 failed as it should: {e}"),
    }

    // libzmq releases the old listening port on its I/O thread just after the close, so a
    // restart on the same port may need a moment: retry for up to a second.
    let mut tries = 0;
    let server = loop {
        match Replier::builder(endpoint.clone()).spawn(&engine, echo) {
            Ok(s) => break s,
            Err(e) if tries < 100 => {
                tries += 1;
                tracing::debug!("rebind: {e}");
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e),
        }
    };
    println!("new server on {}", server.endpoint());
    let reply = client.request(&[b"req4"])?;
    println!("req4 -> {}", String::from_utf8_lossy(&reply[0]));

    let s = client.stats();
    println!(
        "client: {} requests, {} answered, {} retries, {} failed, {} stale replies discarded",
        s.requests, s.answered, s.retries, s.failed, s.discarded
    );
    server.stop()?;
    Ok(())
}
