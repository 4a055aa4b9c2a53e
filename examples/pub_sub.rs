//! Publish/subscribe with topic prefixes, typed payloads and runtime (un)subscription.
//!
//! ```text
//! cargo run --example pub_sub
//! ```
//!
//! The guide's version sleeps and hopes the subscriber has joined; a message published
//! before its subscription reaches the publisher is silently lost ("slow joiner"). Here the
//! publisher sees subscriptions arrive (XPUB, verbose) and waits for them instead.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use ztick::patterns::{Publisher, Subscriber};
use ztick::{Endpoint, Engine};

#[derive(Debug, Serialize, Deserialize)]
struct Quote {
    bid: f64,
    ask: f64,
}

const WAIT: Duration = Duration::from_secs(5);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let engine = Engine::new()?;
    let publisher = Publisher::bind(Endpoint::tcp_loopback_any()).spawn(&engine)?;
    let ep = publisher.endpoint().clone();
    println!("publisher bound at {ep}");

    let all_quotes = Subscriber::builder().name("all-quotes").connect(ep.clone()).topic("quote.");
    let all_quotes = all_quotes.spawn_typed::<Quote>(&engine)?;
    let eur_only = Subscriber::builder()
        .name("eur-only")
        .connect(ep.clone())
        .topic("quote.EUR")
        .topic("quote.XAU")
        .spawn_typed::<Quote>(&engine)?;
    println!("subscribers: all-quotes [quote.], eur-only [quote.EUR, quote.XAU]");

    // The handshake: both subscriptions matching quote.EURUSD have reached the publisher.
    publisher.wait_topic(b"quote.EURUSD", 2, WAIT)?;
    publisher.wait_topic(b"quote.XAUUSD", 2, WAIT)?;
    let mut prefixes: Vec<String> = publisher
        .subscriptions()
        .prefixes()
        .map(|(p, n)| format!("{}x{n}", String::from_utf8_lossy(p)))
        .collect();
    prefixes.sort();
    println!("publisher sees subscriptions: {}", prefixes.join(", "));

    let ticks = [
        ("quote.EURUSD", 1.0842, 1.0844),
        ("quote.GBPUSD", 1.2710, 1.2713),
        ("quote.XAUUSD", 2331.5, 2332.1),
    ];
    for (topic, bid, ask) in ticks {
        publisher.publish_value(topic.as_bytes(), &Quote { bid, ask })?;
        println!("published {topic} {bid}/{ask}");
    }
    publisher.publish(b"news.fed", b"rates unchanged".to_vec())?; // nobody subscribed: not sent

    for _ in 0..3 {
        let p = all_quotes.recv_timeout(WAIT)?;
        println!("  all-quotes got {} {:?}", String::from_utf8_lossy(&p.topic), p.value);
    }
    for _ in 0..2 {
        let p = eur_only.recv_timeout(WAIT)?;
        println!("  eur-only   got {} {:?}", String::from_utf8_lossy(&p.topic), p.value);
    }

    // Unsubscribe at runtime, and wait until the publisher knows.
    eur_only.unsubscribe(b"quote.XAU")?;
    publisher.wait_subscriptions(WAIT, |s| s.holders(b"quote.XAU") == 0)?;
    println!("eur-only unsubscribed from quote.XAU; the publisher has seen it");
    publisher.publish_value(b"quote.XAUUSD", &Quote { bid: 2333.0, ask: 2333.4 })?;
    publisher.publish_value(b"quote.EURUSD", &Quote { bid: 1.0845, ask: 1.0846 })?;
    let p = eur_only.recv_timeout(WAIT)?;
    println!(
        "  eur-only   got {} next (quote.XAUUSD was filtered at the publisher)",
        String::from_utf8_lossy(&p.topic)
    );
    for _ in 0..2 {
        let p = all_quotes.recv_timeout(WAIT)?;
        println!("  all-quotes got {}", String::from_utf8_lossy(&p.topic));
    }

    // Subscribers first: closing them sends nothing the publisher must still read.
    for (name, s) in [("all-quotes", all_quotes.stop()?), ("eur-only", eur_only.stop()?)] {
        println!("{name}: {} delivered, {} malformed", s.handled, s.malformed());
    }
    let stats = publisher.stop()?;
    println!(
        "publisher: {} published (news.fed reached nobody: no subscription matched it), {} refused",
        stats.published, stats.refused
    );
    Ok(())
}
