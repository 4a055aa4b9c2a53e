//! `ztick fanout`: maps flags onto the library's fan-out configs and the synthetic feed,
//! runs one role (embedded, publisher, subscriber) and prints the report.

mod feed;
mod harness;
mod report;
#[cfg(test)]
mod tests;

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use ztick::fanout::{
    groups_of, PublisherConfig, PublisherReport, SubscriberConfig, TickPublisher, TickSubscriber,
};
use ztick::metrics::LatencyRecorder;
use ztick::zap::{ZapHandler, ZapPolicy};
use ztick::{Endpoint, Engine, Error, IdleStrategy, Operation};

use self::feed::{FeedSpec, FeedStats, SyntheticFeed};
use self::harness::{EmbeddedRun, Progress};
use self::report::{FanoutReport, FeedShape};
use super::{FanoutArgs, Role};
use crate::plot::{percentile_svg, PlotSeries};

fn topics(a: &FanoutArgs) -> Vec<String> {
    (0..a.topics).map(|i| format!("t{i}")).collect()
}

/// The feed and the publisher's stream settings the flags ask for.
fn feed(a: &FanoutArgs) -> Result<(FeedSpec, PublisherConfig), Error> {
    if !(a.duration.is_finite() && a.duration > 0.0 && a.duration <= 86_400.0) {
        return Err(Error::config("--duration", a.duration, "seconds, more than 0 and at most 86400"));
    }
    if a.topics == 0 || a.topics > 10_000 {
        return Err(Error::config("--topics", a.topics, "1 to 10000"));
    }
    if a.size > ztick::fanout::MAX_PAYLOAD {
        return Err(Error::config("--size", a.size, "at most 65535 bytes"));
    }
    let spec = FeedSpec {
        rate_per_s: a.rate,
        duration: Duration::from_secs_f64(a.duration),
        max_ticks: None,
        payload_bytes: a.size,
        max_batch: a.max_batch,
        max_delay: Duration::from_micros(a.max_delay_us),
        wait_subscribers: 0,
    };
    let p = PublisherConfig {
        topics: topics(a),
        max_batch: a.max_batch,
        groups: a.groups,
        hwm_msgs: a.hwm,
        single_frame: a.conflate,
        idle: a.pub_idle.unwrap_or_else(|| idle(a)),
        ..PublisherConfig::default()
    };
    p.validate()?;
    Ok((spec, p))
}
fn idle(a: &FanoutArgs) -> IdleStrategy {
    a.idle.unwrap_or_else(|| IdleStrategy::recommended(ztick::info::BuildInfo::current().cores.len()))
}

pub(crate) fn run(a: FanoutArgs) -> Result<(), Error> {
    match a.role {
        Role::Embedded => embedded(&a),
        Role::Pub => publisher(&a),
        Role::Sub => subscriber(&a),
    }
}

fn embedded(a: &FanoutArgs) -> Result<(), Error> {
    if a.subscribers == 0 || a.subscribers > 256 {
        return Err(Error::config("--subscribers", a.subscribers, "1 to 256"));
    }
    let (feed, mut publisher) = feed(a)?;
    let (server, client) = super::security::in_process_roles(a.curve, &a.curve_keys)?;
    publisher.curve = server;
    let cfg = EmbeddedRun {
        feed,
        publisher,
        transport: a.transport,
        subscribers: a.subscribers,
        subscriber_hwm_msgs: a.hwm,
        subscriber_idle: a.sub_idle.unwrap_or_else(|| idle(a)),
        pins: a.pin.clone(),
        conflate: a.conflate,
        consumer_work: Duration::from_nanos(a.consumer_work_ns),
        snapshot_join: a.snapshot_join,
        force: a.force,
        io_cores: a.io_cores.clone(),
        subscriber_curve: client,
        ..EmbeddedRun::default()
    };
    let live = !a.json && std::io::stdout().is_terminal();
    let mut show = |p: &Progress| show_progress(p);
    let report = harness::run(&cfg, if live { Some(&mut show) } else { None })?;
    if live {
        eprintln!();
    }
    print_report(a, &report)
}

/// Writes --hgrm/--plot, prints the report, and fails if its accounting does not close.
fn print_report(a: &FanoutArgs, report: &FanoutReport) -> Result<(), Error> {
    write_outputs(a, &report.merged_latency(), &report.merged_latency_raw())?;
    if a.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    closing_check(report)
}

fn closing_check(report: &FanoutReport) -> Result<(), Error> {
    if report.accounting_closes() {
        Ok(())
    } else {
        Err(Error::Stopped(
            "the tick accounting does not close: received + missing != published (a bug)".into(),
        ))
    }
}

fn show_progress(p: &Progress) {
    let secs = p.elapsed.as_secs_f64().max(1e-9);
    let mut line =
        format!("\r[{:5.1}s] published {:>10} ({:>8.0}/s)", secs, p.published, p.published as f64 / secs);
    for (i, (rcvd, missing, p99)) in p.subscribers.iter().enumerate() {
        line.push_str(&format!(" | sub{i} {rcvd} rcvd {missing} missing p99 {:.1}us", *p99 as f64 / 1000.0));
    }
    let mut e = std::io::stderr();
    let _ = e.write_all(line.as_bytes());
    let _ = e.flush();
}

fn write_outputs(a: &FanoutArgs, corrected: &LatencyRecorder, raw: &LatencyRecorder) -> Result<(), Error> {
    let io = |path: &std::path::Path| {
        let p = path.display().to_string();
        move |e| Error::Io { context: format!("writing {p}"), source: e }
    };
    if let Some(path) = &a.hgrm {
        let mut f = std::fs::File::create(path).map_err(io(path))?;
        corrected.write_hgrm(&mut f, 1000.0).map_err(io(path))?;
    }
    if let Some(path) = &a.plot {
        let paced = a.rate > 0;
        let series = [
            PlotSeries {
                name: if paced { "corrected (from intended send)" } else { "latency" },
                recorder: corrected,
            },
            PlotSeries { name: "raw (from actual send)", recorder: raw },
        ];
        let title = format!("ztick fanout: {} ticks/s, {} B, {} subscribers", a.rate, a.size, a.subscribers);
        std::fs::write(path, percentile_svg(&title, &series[..if paced { 2 } else { 1 }]))
            .map_err(io(path))?;
    }
    Ok(())
}

/// The publisher's report with the feed's own figures, as `--role pub --json` prints it.
#[derive(serde::Serialize)]
struct PublisherJson<'a> {
    #[serde(flatten)]
    report: &'a PublisherReport,
    stalls: u64,
    max_lag_ns: u64,
}

fn publisher(a: &FanoutArgs) -> Result<(), Error> {
    let bind = a.bind.clone().ok_or_else(|| {
        Error::config("--bind", "(missing)", "an endpoint for --role pub, e.g. tcp://*:5556")
    })?;
    let side = match &a.snapshot_bind {
        Some(e) => e.clone(),
        None => Endpoint::tcp_loopback_any(),
    };
    let (mut spec, mut pcfg) = feed(a)?;
    spec.wait_subscribers = a.subscribers;
    pcfg.pin = a.pin.first().copied();
    let keys = a.curve_keys.config();
    if keys.client_secret.is_some() {
        return Err(Error::config(
            "--curve-client-secret",
            "given to --role pub",
            "a subscriber's flag; the publisher takes --curve-server-secret (and --zap-allow)",
        ));
    }
    pcfg.curve = keys.server()?;
    let zap_policy = keys.allowed_keys()?.map(|k| ZapPolicy::default().allow_keys(k));
    let engine = Engine::new()?;
    // Before the sockets: libzmq asks the handler about every CURVE client from the start.
    let zap = zap_policy.map(|policy| ZapHandler::spawn(&engine, policy)).transpose()?;
    let stats = Arc::new(FeedStats::default());
    let wait = Duration::from_secs(10);
    let linger = pcfg.eos_linger;
    let duration = spec.duration;
    let p = TickPublisher::start_with_source(
        &engine,
        bind,
        Some(side),
        pcfg,
        SyntheticFeed::new(spec, Arc::clone(&stats)),
    )?;
    let outcome = if !p.wait_subscribers(a.subscribers, wait + Duration::from_secs(1)) {
        Err(Error::Timeout {
            op: Operation::Recv,
            endpoint: format!(
                "{} ({} of {} subscribers connected)",
                p.endpoint(),
                p.subscribers(),
                a.subscribers
            ),
            ms: (wait + Duration::from_secs(1)).as_millis() as u64,
        })
    } else if !p.wait_ended(duration.max(Duration::from_secs(1)) * 4 + Duration::from_secs(30)) {
        Err(Error::Stopped("the publisher did not finish in time".into()))
    } else {
        Ok(())
    };
    // After the end markers the publisher stops once every subscriber has acknowledged
    // (or the linger has passed).
    let report = p.finish(linger + Duration::from_secs(2));
    if let Some(z) = zap {
        let s = z.stop()?;
        tracing::info!(allowed = s.allowed, refused = s.denied, "ZAP decisions of the publisher");
    }
    outcome?;
    let r = report?;
    let stalls = stats.stalls.load(std::sync::atomic::Ordering::Relaxed);
    let max_lag_ns = stats.max_lag_ns.load(std::sync::atomic::Ordering::Relaxed);
    if a.json {
        let publisher = PublisherJson { report: &r, stalls, max_lag_ns };
        println!(
            "{}",
            serde_json::json!({"published": r.published, "rate_per_s": r.rate_per_s.round(), "publisher": publisher})
        );
    } else {
        println!(
            "published {} ticks at {:.0}/s in {} messages; {} stalls; {} subscribers acknowledged",
            r.published, r.rate_per_s, r.batches, stalls, r.acks
        );
    }
    Ok(())
}

fn subscriber(a: &FanoutArgs) -> Result<(), Error> {
    let connect = a
        .connect
        .clone()
        .ok_or_else(|| Error::config("--connect", "(missing)", "the publisher's endpoint for --role sub"))?;
    let topics = topics(a);
    if a.curve_keys.curve_server_secret.is_some() || a.curve_keys.zap_allow.is_some() {
        return Err(Error::config(
            "--curve-server-secret / --zap-allow",
            "given to --role sub",
            "the publisher's flags; a subscriber takes --curve-client-secret and --curve-server-public",
        ));
    }
    let cfg = SubscriberConfig {
        name: "sub".into(),
        groups: groups_of(&topics, &topics, a.groups),
        topics: topics.clone(),
        snapshot_join: a.snapshot_join,
        hwm_msgs: a.hwm,
        conflate: a.conflate,
        keep_last_values: a.conflate,
        idle: a.sub_idle.unwrap_or_else(|| idle(a)),
        pin: a.pin.first().copied(),
        curve: a.curve_keys.config().client()?,
    };
    let engine = Engine::new()?;
    let transport = connect.transport();
    let work_ns = a.consumer_work_ns;
    let sub = match work_ns {
        0 => TickSubscriber::start(&engine, connect.clone(), a.snapshot.clone(), cfg)?,
        ns => TickSubscriber::with_callback(&engine, connect.clone(), a.snapshot.clone(), cfg, move |ev| {
            if let ztick::fanout::Event::Tick(_) = ev {
                let until = ztick::now_ns() + ns;
                while ztick::now_ns() < until {
                    std::hint::spin_loop();
                }
            }
        })?,
    };
    let r = sub.finish(Duration::from_millis(a.timeout_ms))?;
    if !r.complete {
        return Err(Error::Timeout {
            op: Operation::Recv,
            endpoint: format!("{connect} (end of stream not seen on every topic)"),
            ms: a.timeout_ms,
        });
    }
    let published: u64 = r.topics.iter().filter_map(|(_, t)| t.ended_at()).sum();
    let publisher = PublisherReport {
        published,
        last_seq: r.topics.iter().map(|(n, t)| (n.clone(), t.ended_at().unwrap_or(0))).collect(),
        ..Default::default()
    };
    let report = FanoutReport {
        transport,
        feed: FeedShape { topics: topics.len(), payload_bytes: a.size, rate_per_s: a.rate },
        publisher,
        stalls: 0,
        max_lag_ns: 0,
        subscribers: vec![r],
    };
    print_report(a, &report)
}
