//! `ztick fanout`: maps flags onto `ztick::fanout` configs and prints the report.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use ztick::fanout::{self, FanoutConfig, FanoutReport, FeedConfig, Progress, SubscriberConfig};
use ztick::metrics::LatencyRecorder;
use ztick::zap::ZapPolicy;
use ztick::{Endpoint, Error, IdleStrategy};

use super::{FanoutArgs, Role};
use crate::plot::{percentile_svg, PlotSeries};

fn feed(a: &FanoutArgs) -> Result<FeedConfig, Error> {
    if !(a.duration.is_finite() && a.duration > 0.0 && a.duration <= 86_400.0) {
        return Err(Error::config("--duration", a.duration, "seconds, more than 0 and at most 86400"));
    }
    if a.topics == 0 || a.topics > 10_000 {
        return Err(Error::config("--topics", a.topics, "1 to 10000"));
    }
    let f = FeedConfig {
        topics: (0..a.topics).map(|i| format!("t{i}")).collect(),
        rate_per_s: a.rate,
        duration: Duration::from_secs_f64(a.duration),
        payload_size: a.size,
        max_batch: a.max_batch,
        groups: a.groups,
        max_delay: Duration::from_micros(a.max_delay_us),
        ..FeedConfig::default()
    };
    f.validate()?;
    Ok(f)
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
    let mut cfg = FanoutConfig {
        feed: feed(a)?,
        transport: a.transport,
        subscribers: a.subscribers,
        hwm: a.hwm,
        publisher_idle: a.pub_idle.unwrap_or_else(|| idle(a)),
        subscriber_idle: a.sub_idle.unwrap_or_else(|| idle(a)),
        pins: a.pin.clone(),
        conflate: a.conflate,
        consumer_work: Duration::from_nanos(a.consumer_work_ns),
        snapshot: a.snapshot_join,
        force: a.force,
        io_cores: a.io_cores.clone(),
        ..FanoutConfig::default()
    };
    let (server, client) = super::security::in_process_roles(a.curve, &a.curve_keys)?;
    cfg.feed.curve = server;
    cfg.subscriber_curve = client;
    let live = !a.json && std::io::stdout().is_terminal();
    let mut show = |p: &Progress| show_progress(p);
    let report = fanout::run(&cfg, if live { Some(&mut show) } else { None })?;
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

fn publisher(a: &FanoutArgs) -> Result<(), Error> {
    let bind = a.bind.clone().ok_or_else(|| {
        Error::config("--bind", "(missing)", "an endpoint for --role pub, e.g. tcp://*:5556")
    })?;
    let snap = match &a.snapshot_bind {
        Some(e) => e.clone(),
        None => Endpoint::tcp_loopback_any(),
    };
    let mut f = feed(a)?;
    f.wait_subscribers = a.subscribers;
    f.single_frame = a.conflate;
    let keys = a.curve_keys.config();
    if keys.client_secret.is_some() {
        return Err(Error::config(
            "--curve-client-secret",
            "given to --role pub",
            "a subscriber's flag; the publisher takes --curve-server-secret (and --zap-allow)",
        ));
    }
    f.curve = keys.server()?;
    f.zap = keys.allowed_keys()?.map(|k| ZapPolicy::default().allow_keys(k));
    let r = fanout::run_publisher(
        bind,
        snap,
        f,
        a.hwm,
        a.pub_idle.unwrap_or_else(|| idle(a)),
        a.pin.first().copied(),
    )?;
    if a.json {
        println!(
            "{}",
            serde_json::json!({"published": r.published, "rate_per_s": r.rate_per_s.round(), "publisher": r})
        );
    } else {
        println!(
            "published {} ticks at {:.0}/s in {} messages; {} stalls; {} subscribers acknowledged",
            r.published, r.rate_per_s, r.batches, r.stalls, r.acks
        );
    }
    Ok(())
}

fn subscriber(a: &FanoutArgs) -> Result<(), Error> {
    let connect = a
        .connect
        .clone()
        .ok_or_else(|| Error::config("--connect", "(missing)", "the publisher's endpoint for --role sub"))?;
    let topics: Vec<String> = (0..a.topics).map(|i| format!("t{i}")).collect();
    let cfg = SubscriberConfig {
        name: "sub".into(),
        connect,
        snapshot_endpoint: a.snapshot.clone(),
        snapshot: a.snapshot_join,
        groups: fanout::groups_of(&topics, &topics, a.groups),
        topics: topics.clone(),
        hwm: a.hwm,
        conflate: a.conflate,
        consumer_work: Duration::from_nanos(a.consumer_work_ns),
        idle: a.sub_idle.unwrap_or_else(|| idle(a)),
        pin: a.pin.first().copied(),
        curve: a.curve_keys.config().client()?,
    };
    if a.curve_keys.curve_server_secret.is_some() || a.curve_keys.zap_allow.is_some() {
        return Err(Error::config(
            "--curve-server-secret / --zap-allow",
            "given to --role sub",
            "the publisher's flags; a subscriber takes --curve-client-secret and --curve-server-public",
        ));
    }
    let r = fanout::run_subscriber(&cfg, Duration::from_millis(a.timeout_ms))?;
    if !r.complete {
        return Err(Error::Timeout {
            op: ztick::Operation::Recv,
            endpoint: format!("{} (end of stream not seen on every topic)", cfg.connect),
            ms: a.timeout_ms,
        });
    }
    let published: u64 = r.topics.iter().filter_map(|(_, t)| t.ended_at()).sum();
    let feed = FeedConfig { topics, payload_size: a.size, rate_per_s: a.rate, ..FeedConfig::default() };
    let pubr = ztick::fanout::PublisherReport {
        published,
        last_seq: r.topics.iter().map(|(n, t)| (n.clone(), t.ended_at().unwrap_or(0))).collect(),
        ..Default::default()
    };
    let report = FanoutReport::new(cfg.connect.transport(), feed, pubr, vec![r]);
    print_report(a, &report)
}
