//! Multipart messages: several frames sent and received as one atomic unit.
//!
//! ```text
//! cargo run --example multipart
//! ```
//!
//! libzmq delivers all frames of a message or none, never interleaved with another
//! message, whoever sends concurrently. Here two application threads hand three-frame
//! messages (one frame a pooled buffer sent without copying) and one-frame messages to the
//! same PUSH worker at once, and the receiver checks every message arrives whole.

use std::time::Duration;

use ztick::{BufferPool, Endpoint, Engine, Frame, Outbound, SocketKind, SocketSpec};

const PER_THREAD: u32 = 5_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let engine = Engine::new()?;
    let (tx, rx) = crossbeam_channel::unbounded();
    let mut b = engine.worker("pull");
    let pull = b.socket(SocketSpec::bind(SocketKind::Pull, Endpoint::tcp_loopback_any()));
    let puller = b.forward_to(tx).spawn()?;
    let ep: Endpoint = puller.endpoint(pull).unwrap_or_default().parse()?;
    let mut b = engine.worker("push");
    let push = b.socket(SocketSpec::connect(SocketKind::Push, ep.clone()));
    let pusher = b.spawn()?;
    println!("PUSH worker -> PULL worker over {ep}");

    let pool = BufferPool::new(1024, 1024);
    let producers: Vec<_> = (0..2u8)
        .map(|who| {
            let h = pusher.handle();
            let pool = pool.clone();
            std::thread::spawn(move || {
                for i in 0..PER_THREAD {
                    let msg = if i % 2 == 0 {
                        let mut body = pool.get();
                        let text = format!("body of message {i} from thread {who}");
                        body.extend_from_slice(text.as_bytes()).expect("fits in 1 KiB");
                        Outbound::multipart([
                            Frame::bytes(format!("header {who}/{i}")),
                            Frame::bytes(Vec::new()), // an empty delimiter frame, as ROUTER envelopes use
                            Frame::pooled(body),
                        ])
                        .expect("three frames")
                    } else {
                        Outbound::from(format!("single {who}/{i}").into_bytes())
                    };
                    if h.send(push, msg).is_err() {
                        return;
                    }
                }
            })
        })
        .collect();

    let (mut whole, mut singles, mut shown) = (0u32, 0u32, 0);
    for _ in 0..2 * PER_THREAD {
        let m = rx.recv_timeout(Duration::from_secs(5))?.frames;
        match m.len() {
            3 => {
                let header = String::from_utf8_lossy(&m[0]);
                let body = String::from_utf8_lossy(&m[2]);
                let (who, i) = header.trim_start_matches("header ").split_once('/').unwrap_or(("?", "?"));
                if !m[1].is_empty() || body != format!("body of message {i} from thread {who}") {
                    return Err(format!("torn message: {m:?}").into());
                }
                if shown < 3 {
                    println!("  received 3 frames: [{header}] [] [{body}]");
                    shown += 1;
                }
                whole += 1;
            }
            1 => singles += 1,
            n => return Err(format!("a message of {n} frames: frames were mixed").into()),
        }
    }
    for p in producers {
        p.join().map_err(|_| "producer panicked")?;
    }
    let sent = pusher.stop()?.stats.sent;
    println!(
        "{whole} three-frame messages arrived whole, {singles} single-frame ones; {sent} sent, none torn"
    );
    let s = pool.stats();
    println!(
        "buffer pool: {} buffers reused, {} allocated while more than 1024 were in flight; \
         either way libzmq took the body frames without copying them",
        s.hits, s.misses
    );
    Ok(())
}
