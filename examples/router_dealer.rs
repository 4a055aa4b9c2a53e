//! cargo run --example router_dealer
//!
//! DEALER/ROUTER (guide §4.4): an asynchronous server for many clients. Each request gets
//! an immediate acknowledgement and, later, a result sent from another thread; ztick keeps
//! every client's routing envelope, so answers find their way back.

use std::time::Duration;

use ztick::patterns::{Peer, Router, Socket};
use ztick::{Endpoint, Engine, SocketKind, SocketOptions};

fn main() -> ztick::Result<()> {
    let engine = Engine::new()?;
    let (jobs_tx, jobs_rx) = crossbeam_channel::unbounded::<(Peer, Vec<u8>)>();
    let router =
        Router::builder(Endpoint::unique_ipc("router-dealer")).spawn(&engine, move |out, peer, body| {
            out.send(peer, &[b"ack", body[0]])?;
            let _ = jobs_tx.send((peer.clone(), body[0].to_vec()));
            Ok(())
        })?;
    println!("router on {}", router.endpoint());

    // A back-office thread computes results and answers through the router's sender.
    let sender = router.sender();
    let back_office = std::thread::spawn(move || {
        for (peer, job) in jobs_rx.iter().take(6) {
            let result = format!("{}:done", String::from_utf8_lossy(&job));
            if let Err(e) = sender.send_to(&peer, &[result.as_bytes()]) {
                eprintln!("answer to {peer} failed: {e}");
            }
        }
    });

    let endpoint: Endpoint = router.endpoint().parse()?;
    let mut clients = Vec::new();
    for c in 0..3 {
        let mut s = Socket::connect(&engine, SocketKind::Dealer, &endpoint, &SocketOptions::default())?;
        // Two requests in flight per client, without waiting for answers.
        for j in 0..2 {
            s.send(&[format!("client{c}-job{j}").as_bytes()])?;
        }
        clients.push(s);
    }
    for (c, s) in clients.iter_mut().enumerate() {
        for _ in 0..4 {
            let frames = s.recv_timeout(Duration::from_secs(5))?;
            let text: Vec<String> = frames.iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect();
            println!("client{c} got {text:?}");
        }
    }
    let _ = back_office.join();
    let stats = router.stop()?;
    println!("router handled {} requests, refused {}", stats.handled, stats.malformed());
    Ok(())
}
