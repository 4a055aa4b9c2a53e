//! Linger: what happens to queued messages when a socket closes.
//!
//! ```text
//! cargo run --example linger
//! ```
//!
//! A PUSH connects to an address where nobody listens yet and queues 1000 messages, then
//! closes. Its engine ends (terminating the libzmq context, which waits for closed sockets
//! up to their linger). A PULL then binds the address and counts what arrives: with
//! linger 0 the queue was discarded at close; with a linger, the closed socket kept
//! reconnecting and delivered everything, and the context's end waited for that (and no
//! longer: it returns as soon as the queue is empty, however long the linger).

use std::time::{Duration, Instant};

use ztick::patterns::Socket;
use ztick::{Endpoint, Engine, SocketKind, SocketOptions};

const MESSAGES: u32 = 1000;

fn run(linger: Duration) -> Result<(u32, Duration), Box<dyn std::error::Error>> {
    let ep = Endpoint::unique_ipc("linger-example");
    let push_engine = Engine::new()?;
    let o = SocketOptions::default()
        .linger(Some(linger))
        .reconnect(Duration::from_millis(20), Duration::from_millis(20));
    let mut push = Socket::connect(&push_engine, SocketKind::Push, &ep, &o)?;
    for i in 0..MESSAGES {
        push.send_timeout(&[&i.to_le_bytes()], Duration::from_secs(5))?;
    }
    drop(push);
    let started = Instant::now();
    let closer = std::thread::spawn(move || {
        drop(push_engine); // zmq_ctx_term: returns when the closed socket is done lingering
        started.elapsed()
    });
    let mut closer = Some(closer);
    let mut closed_in = Duration::ZERO;
    if linger.is_zero() {
        // Close is asynchronous; once the context is gone, nothing more can leave.
        closed_in = closer.take().map(|c| c.join().unwrap_or_default()).unwrap_or_default();
    }
    let engine = Engine::new()?;
    let mut pull = Socket::bind(&engine, SocketKind::Pull, &ep, &SocketOptions::default())?;
    let mut got = 0;
    let mut frames = Vec::new();
    while pull.recv_into(&mut frames, Duration::from_millis(300))? {
        got += 1;
    }
    if let Some(c) = closer {
        closed_in = c.join().unwrap_or_default();
    }
    ep.remove_ipc_file();
    Ok((got, closed_in))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("{MESSAGES} messages queued on a PUSH whose peer is not there yet, then the PUSH closes:");
    for linger in [Duration::ZERO, Duration::from_millis(2000)] {
        let (got, closed_in) = run(linger)?;
        println!(
            "  linger {:>5} ms: {got:>4} of {MESSAGES} delivered; ending the engine took {:.1} ms",
            linger.as_millis(),
            closed_in.as_secs_f64() * 1e3
        );
    }
    println!("ztick's default linger is 1 s (libzmq's is forever, which can hang shutdown).");
    Ok(())
}
