//! High-water marks: per-socket queue bounds, and what a publisher does when one is reached.
//!
//! ```text
//! cargo run --example hwm
//! ```
//!
//! HWMs (like most options) apply to connections made *after* they are set: ztick sets a
//! socket's options before it binds or connects, so they always take effect. Part 1 counts
//! what a PUSH queues toward a PULL that never reads. Part 2 runs the three
//! slow-subscriber choices of a publisher against a subscriber that has stalled.

use std::time::Duration;

use ztick::patterns::{Publisher, SlowSubscriber, Socket};
use ztick::{Endpoint, Engine, SocketKind, SocketOptions};

const WAIT: Duration = Duration::from_secs(5);

/// Messages a PUSH takes before its (never-read) PULL peer's queue is full.
fn queued(engine: &Engine, send_hwm: Option<u32>, recv_hwm: Option<u32>) -> ztick::Result<usize> {
    let mut o = SocketOptions::default();
    if let Some(h) = recv_hwm {
        o = o.recv_hwm_msgs(h);
    }
    let pull = Socket::bind(engine, SocketKind::Pull, &Endpoint::unique_inproc("hwm"), &o)?;
    let mut o = SocketOptions::default();
    if let Some(h) = send_hwm {
        o = o.send_hwm_msgs(h);
    }
    let mut push = Socket::connect(engine, SocketKind::Push, &pull.endpoint().parse()?, &o)?;
    let mut n = 0;
    while push.try_send(&[b"x"])? {
        n += 1;
    }
    Ok(n)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let engine = Engine::new()?;
    println!("1. PUSH -> PULL over inproc, nobody reading: messages taken before the queue is full");
    println!("   libzmq defaults (1000 / 1000):   {}", queued(&engine, None, None)?);
    println!("   send_hwm 5, recv_hwm 7:          {}", queued(&engine, Some(5), Some(7))?);
    println!("   (inproc joins both queues into one pipe; over tcp and ipc the kernel's buffers hold more)");

    println!(
        "\n2. publisher (send_hwm 10) -> stalled subscriber (recv_hwm 10), 300 publications of 64 KiB, tcp"
    );
    println!("   {:<8} {:>10} {:>10} {:>10}  what it costs", "choice", "published", "refused", "received");
    for choice in [SlowSubscriber::Drop, SlowSubscriber::Refuse, SlowSubscriber::Block] {
        let publisher = Publisher::bind(Endpoint::tcp_loopback_any())
            .send_hwm_msgs(10)
            .on_slow_subscriber(choice)
            .spawn(&engine)?;
        let o = SocketOptions::default().recv_hwm_msgs(10);
        let mut sub = Socket::connect(&engine, SocketKind::Sub, publisher.endpoint(), &o)?;
        sub.subscribe(b"")?;
        publisher.wait_subscribers(1, WAIT)?;
        for i in 0..300u32 {
            let mut body = vec![0u8; 64 * 1024];
            body[..4].copy_from_slice(&i.to_le_bytes());
            publisher.publish(b"t", body)?;
        }
        // Block holds the publisher until the subscriber reads, so flush only the others now.
        if choice != SlowSubscriber::Block {
            publisher.flush(WAIT)?;
        }
        // The subscriber wakes up and reads whatever reached it; 300 ms of quiet means the end.
        let mut received = 0;
        let mut frames = Vec::new();
        while sub.recv_into(&mut frames, Duration::from_millis(300))? {
            received += 1;
        }
        publisher.flush(WAIT)?;
        let s = publisher.stats();
        let cost = match choice {
            SlowSubscriber::Drop => "lost silently: the publisher cannot count them",
            SlowSubscriber::Refuse => "refused for all subscribers, every one counted",
            SlowSubscriber::Block => "nothing lost; the publisher waited for the slow reader",
        };
        println!(
            "   {:<8} {:>10} {:>10} {:>10}  {cost}",
            format!("{choice:?}"),
            s.published,
            s.refused,
            received
        );
        publisher.stop()?;
    }
    Ok(())
}
