//! cargo run --example req_rep
//!
//! Request/reply (guide §4.1): a typed server and client over tcp, with serde + bincode
//! payloads. A malformed request from a raw peer is counted and skipped; the server keeps
//! answering everyone else.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use ztick::patterns::{Replier, Requester, Socket};
use ztick::{Endpoint, Engine, SocketKind, SocketOptions};

#[derive(Debug, Serialize, Deserialize)]
struct Quote {
    symbol: String,
    qty: u32,
}

#[derive(Debug, Serialize, Deserialize)]
struct Fill {
    symbol: String,
    price_cents: u64,
}

fn main() -> ztick::Result<()> {
    let engine = Engine::new()?;
    let server = Replier::builder(Endpoint::tcp_loopback_any()).spawn_typed(&engine, |q: Quote| Fill {
        price_cents: 10_000 + u64::from(q.qty) * 3,
        symbol: q.symbol,
    })?;
    println!("server listening on {}", server.endpoint());
    let endpoint: Endpoint = server.endpoint().parse()?;

    let mut client = Requester::builder(endpoint.clone()).timeout(Duration::from_secs(2)).connect(&engine)?;
    for qty in [1, 10, 100] {
        let fill: Fill = client.call(&Quote { symbol: "EURUSD".into(), qty })?;
        println!("request qty {qty:>3} -> {fill:?}");
    }

    // A peer sending garbage: a DEALER with a request that is not a bincode `Quote`.
    let mut rogue = Socket::connect(&engine, SocketKind::Dealer, &endpoint, &SocketOptions::default())?;
    rogue.send(&[b"", b"\xff\xff not bincode"])?;
    let fill: Fill = client.call(&Quote { symbol: "USDJPY".into(), qty: 5 })?;
    println!("after the garbage, still served: {fill:?}");

    let stats = server.stop()?;
    println!(
        "server handled {} requests, refused {} malformed ({} undecodable)",
        stats.handled,
        stats.malformed(),
        stats.undecodable
    );
    Ok(())
}
