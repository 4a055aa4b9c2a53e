//! cargo run --example tick_fanout
//!
//! The headline API: one `TickPublisher` and two `TickSubscriber`s over ipc, one taking
//! its ticks through a channel on an application thread, the other by a callback on its
//! worker. Each subscriber's accounting closes: every tick published was received (in the
//! stream, or repaired from the publisher's ring) or is known missing, by exact sequence
//! ranges (`received + repaired + missing = published`).

use std::error::Error;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::RecvTimeoutError;
use ztick::fanout::{
    Event, OwnedEvent, PublisherConfig, SubscriberConfig, SubscriberReport, TickPublisher, TickSubscriber,
};
use ztick::{Endpoint, Engine};

const TICKS: u64 = 5_000;
const WAIT: Duration = Duration::from_secs(10);

fn main() -> Result<(), Box<dyn Error>> {
    let engine = Engine::new()?;
    // The feed, and the side channel the subscribers acknowledge the end on.
    let (feed, side) = (Endpoint::unique_ipc("tick-fanout"), Endpoint::unique_ipc("tick-fanout-side"));
    let publisher = TickPublisher::start(&engine, feed, Some(side), PublisherConfig::default())?;
    let (feed, side) = (publisher.endpoint().clone(), publisher.side_endpoint().cloned());
    let topics = publisher.topics().len();
    println!("publishing {TICKS} ticks on {topics} topics at {feed}");

    // By channel: an application thread drains the events until the subscriber stops
    // (every topic ended), handing each tick's buffer back for reuse.
    let cfg = SubscriberConfig { name: "by-channel".into(), ..SubscriberConfig::default() };
    let by_channel = TickSubscriber::with_channel(&engine, feed.clone(), side.clone(), cfg, 1024)?;
    let drain = std::thread::spawn(move || -> ztick::Result<(u64, SubscriberReport)> {
        let mut ticks = 0;
        loop {
            match by_channel.recv_timeout(WAIT) {
                Ok(event) => {
                    ticks += u64::from(matches!(event, OwnedEvent::Tick(_)));
                    by_channel.recycle(event);
                }
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    return Err(ztick::Error::Stopped(format!("no event within {WAIT:?}")))
                }
            }
        }
        Ok((ticks, by_channel.finish(WAIT)?))
    });

    // By callback: on the subscriber's worker thread, no hop; keep it short.
    let seen = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&seen);
    let cfg = SubscriberConfig { name: "by-callback".into(), ..SubscriberConfig::default() };
    let by_callback = TickSubscriber::with_callback(&engine, feed, side, cfg, move |event| {
        if let Event::Tick(_) = event {
            counted.fetch_add(1, Ordering::Relaxed);
        }
    })?;

    // Both subscriptions are in: nothing published from here is lost to a slow joiner.
    if !publisher.wait_subscribers(2, WAIT) {
        return Err(
            format!("only {} of 2 subscribers arrived within {WAIT:?}", publisher.subscribers()).into()
        );
    }
    for i in 0..TICKS {
        publisher.publish(i as usize % topics, &i.to_le_bytes())?;
    }
    let published = publisher.finish(WAIT)?.published;

    let (channel_ticks, channel) = drain.join().map_err(|_| "the channel's reader panicked")??;
    let callback = by_callback.finish(WAIT)?;
    let mut closes = true;
    for (report, handed) in [(&channel, channel_ticks), (&callback, seen.load(Ordering::Relaxed))] {
        let (received, repaired, missing) = (report.received(), report.repaired(), report.missing());
        println!(
            "{}: received {received} + repaired {repaired} + missing {missing} = published {published}; \
             {handed} ticks handed over",
            report.name
        );
        closes &=
            report.complete() && received + repaired + missing == published && handed == received + repaired;
    }
    if !closes {
        return Err("the accounting did not close".into());
    }
    Ok(())
}
