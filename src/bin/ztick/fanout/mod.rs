//! `ztick fanout`: maps flags onto the library's fan-out configs and the synthetic feed,
//! runs one role (embedded, publisher, subscriber) and prints the report.

mod feed;
mod harness;
mod idle;
mod report;
#[cfg(test)]
mod tests;

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use ztick::fanout::{
    groups_of, Event, InlineTickPublisher, Outcome, PublisherConfig, PublisherReport, SubscriberConfig,
    TickPublisher, TickSubscriber,
};
use ztick::metrics::{LatencyRecorder, MessagingAttributes, OperationType};
use ztick::{Endpoint, Engine, Error, IdleStrategy, Operation};

use self::feed::{FeedSpec, FeedStats, SyntheticFeed};
use self::harness::{EmbeddedRun, Progress};
use self::idle::IdleGaps;
use self::report::{FanoutReport, FeedShape};
use super::{FanoutArgs, FeedPath, Role};
use crate::observe::{Observer, Telemetry, Totals};
use crate::plot::{percentile_svg, PlotSeries};
use crate::settings::{Key, Settings, Source};
use crate::signals::Signals;

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
    if a.heartbeat_ms == 0 {
        return Err(Error::config("--heartbeat-ms", 0, "a positive interval, e.g. 100"));
    }
    let gaps = idle::gaps_ns(&a.idle_gaps_us, a.idle_samples)?;
    let spec = FeedSpec {
        rate_per_s: a.rate,
        schedule: (!gaps.is_empty()).then(|| idle::schedule(&gaps, a.idle_samples)),
        duration: Duration::from_secs_f64(a.duration),
        max_ticks: None,
        payload_bytes: a.size,
        max_batch: a.max_batch.unwrap_or(64),
        max_delay: Duration::from_micros(a.max_delay_us.unwrap_or(20)),
        wait_subscribers: 0,
    };
    let p = PublisherConfig {
        topics: topics(a),
        max_batch: a.max_batch.unwrap_or(64),
        groups: a.groups,
        hwm_msgs: a.hwm,
        single_frame: a.conflate,
        idle: a.pub_idle.unwrap_or_else(|| idle(a)),
        sched: a.sched,
        heartbeat: Duration::from_millis(a.heartbeat_ms),
        retransmit_ring_bytes: a.ring_bytes,
        ..PublisherConfig::default()
    };
    p.validate()?;
    Ok((spec, p))
}

/// The subscribers' settings the flags ask for (their name, topics and groups aside).
fn subscriber_defaults(a: &FanoutArgs) -> Result<SubscriberConfig, Error> {
    if a.liveness_ms == 0 {
        return Err(Error::config("--liveness-ms", 0, "a positive timeout, e.g. 1000"));
    }
    Ok(SubscriberConfig {
        hwm_msgs: a.hwm,
        conflate: a.conflate,
        keep_last_values: a.conflate,
        snapshot_join: a.snapshot_join,
        idle: a.sub_idle.unwrap_or_else(|| idle(a)),
        sched: a.sched,
        liveness: Duration::from_millis(a.liveness_ms),
        follow: a.follow,
        repair: !a.no_repair,
        ..SubscriberConfig::default()
    })
}

fn idle(a: &FanoutArgs) -> IdleStrategy {
    a.idle.unwrap_or_else(|| IdleStrategy::recommended(ztick::info::BuildInfo::current().cores.len()))
}

/// Fills what `--profile` decides and the flags left open, and says what it chose.
fn apply_profile(mut a: FanoutArgs) -> FanoutArgs {
    let Some(profile) = a.profile else { return a };
    let (workers, io_threads) = match a.role {
        Role::Embedded => {
            let subscriber_workers = if a.share_worker { 1 } else { a.subscribers };
            (1 + subscriber_workers, usize::from(a.transport != ztick::Transport::Inproc))
        }
        Role::Pub | Role::Sub => (1, 1),
    };
    let plan = profile.plan(&ztick::info::BuildInfo::current().cores, workers, io_threads);
    eprintln!("ztick: profile {plan}");
    a.idle = a.idle.or(Some(plan.idle));
    a.sched = plan.sched;
    a.io_sched = plan.io_sched;
    if a.pin.is_empty() {
        a.pin = plan.worker_cores;
    }
    if a.io_cores.is_empty() {
        a.io_cores = plan.io_cores;
    }
    a.max_batch = a.max_batch.or(Some(plan.max_batch));
    a.max_delay_us = a.max_delay_us.or(Some(u64::try_from(plan.max_delay.as_micros()).unwrap_or(u64::MAX)));
    a
}

/// Runs the role the flags ask for; the exit code on success (see `exit_code` in main).
pub(crate) fn run(a: FanoutArgs, telemetry: &Telemetry) -> Result<u8, Error> {
    if a.share_worker && a.role != Role::Embedded {
        return Err(Error::config(
            "--share-worker",
            "with --role pub or sub",
            "the embedded role (a --role sub process runs one subscriber)",
        ));
    }
    let mut a = apply_profile(with_settings(a, Settings::load)?);
    if !a.idle_gaps_us.is_empty() {
        // The idle feed keeps its own time: no rate (the record says 0, as for the other
        // stacks' idle runs).
        a.rate = 0;
    }
    let observer = Observer::start(a.hlog.as_deref(), telemetry, &crate::command_line())?;
    let code = match a.role {
        Role::Embedded => embedded(&a, observer.as_ref(), telemetry),
        Role::Pub => publisher(&a, telemetry),
        Role::Sub => subscriber(&a, observer.as_ref(), telemetry),
    };
    crate::finish_observer(observer)?;
    code
}

/// The flags with `--bind`, `--connect` and `--hwm` filled in, where not given, from the
/// guide's variables (`ZMQ_BIND_ADDRESS`, `ZMQ_CONNECT_ADDRESS`, `ZMQ_HWM`) and then the
/// `--config` file: flags > environment > file, through the scripting verbs' settings.
/// `load` stacks the sources (`Settings::load`; tests give their own environment).
fn with_settings(
    mut a: FanoutArgs,
    load: impl FnOnce(Option<&std::path::Path>, Settings) -> Result<Settings, Error>,
) -> Result<FanoutArgs, Error> {
    let mut flags = Settings::default();
    let given = [
        (Key::BindAddress, a.bind.as_ref().map(Endpoint::to_string)),
        (Key::ConnectAddress, a.connect.as_ref().map(Endpoint::to_string)),
        (Key::Hwm, a.hwm.map(|h| h.to_string())),
    ];
    for (key, value) in given {
        if let Some(v) = value {
            flags.set(key, &v, Source::Flag(key.flag()))?;
        }
    }
    let s = load(a.config.as_deref(), flags)?;
    a.bind = s.bind_address.map(|v| v.value);
    a.connect = s.connect_address.map(|v| v.value);
    a.hwm = s.hwm_msgs.map(|v| v.value);
    Ok(a)
}

/// The messaging attributes of a subscriber's stream: `receive` on its groups.
fn sub_attributes(a: &FanoutArgs, groups: &[String]) -> MessagingAttributes {
    MessagingAttributes::new("receive", OperationType::Receive, &groups.join(","))
        .body_size_bytes(a.size as u64)
}

fn embedded(a: &FanoutArgs, observer: Option<&Observer>, telemetry: &Telemetry) -> Result<u8, Error> {
    if a.subscribers == 0 || a.subscribers > 256 {
        return Err(Error::config("--subscribers", a.subscribers, "1 to 256"));
    }
    let (feed, mut publisher) = feed(a)?;
    let (server, client) = super::security::in_process_roles(a.curve, &a.curve_keys)?;
    publisher.curve = server;
    let mut attrs = sub_attributes(a, &groups_of(&publisher.topics, &publisher.topics, publisher.groups));
    attrs.transport = Some(a.transport);
    // Each subscriber's windows go to the metrics thread under its own name (harness.rs).
    let intervals = observer.map(|o| o.sender("sub", attrs.clone()));
    let cfg = EmbeddedRun {
        feed,
        publisher,
        transport: a.transport,
        subscribers: a.subscribers,
        subscriber: SubscriberConfig { curve: client, intervals, ..subscriber_defaults(a)? },
        pins: a.pin.clone(),
        consumer_work: Duration::from_nanos(a.consumer_work_ns),
        force: a.force,
        io_cores: a.io_cores.clone(),
        idle_gaps_ns: idle::gaps_ns(&a.idle_gaps_us, a.idle_samples)?,
        feed_path: a.feed,
        io_sched: a.io_sched,
        share_worker: a.share_worker,
        ..EmbeddedRun::default()
    };
    let signals = Signals::register()?;
    let live = !a.json && std::io::stdout().is_terminal();
    let mut show = |p: &Progress| show_progress(p);
    let report = harness::run(&cfg, if live { Some(&mut show) } else { None }, &signals)?;
    if live {
        eprintln!();
    }
    add_totals(telemetry, a, &report, &attrs);
    print_report(a, &report)?;
    Ok(signals.exit_code(0))
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
            "the tick accounting does not close: received + repaired + missing != published (a bug)".into(),
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
        let paced = a.rate > 0 || !a.idle_gaps_us.is_empty();
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

/// The run's end totals for `--otlp`: the publisher's sends, each subscriber's repairs and
/// losses (their receipts and gaps went with their windows).
fn add_totals(telemetry: &Telemetry, a: &FanoutArgs, report: &FanoutReport, sub_attrs: &MessagingAttributes) {
    if !telemetry.is_on() {
        return;
    }
    if report.authoritative {
        let mut pub_attrs = MessagingAttributes::new("publish", OperationType::Send, &sub_attrs.destination)
            .body_size_bytes(a.size as u64);
        pub_attrs.transport = sub_attrs.transport;
        telemetry.add_totals(&pub_attrs, Totals { sent: report.publisher.published, ..Totals::default() });
    }
    for s in &report.subscribers {
        let t = Totals { repaired: s.repaired(), unrecoverable: s.missing(), ..Totals::default() };
        telemetry.add_totals(sub_attrs, t);
    }
}

/// The engine of a `--role pub|sub` process: one I/O thread, on `--io-cores` when given and
/// under the profile's policy, and `--force` lets a spinning worker past the core budget,
/// as in the embedded run.
fn role_engine(a: &FanoutArgs) -> Result<Engine, Error> {
    harness::build_engine(Engine::builder().force_core_budget(a.force).io_cores(&a.io_cores), a.io_sched)
}

fn publisher(a: &FanoutArgs, telemetry: &Telemetry) -> Result<u8, Error> {
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
    // With an allow-list the publisher fails closed: no handler, nobody admitted.
    pcfg.zap_domain = a.curve_keys.zap_domain().map(str::to_owned);
    let signals = Signals::register()?;
    let engine = role_engine(a)?;
    // Before the sockets: libzmq asks the handler about every CURVE client from the start.
    let zap = a.curve_keys.zap(&engine)?;
    let stats = Arc::new(FeedStats::default());
    let wait = Duration::from_millis(a.wait_ms);
    let linger = pcfg.eos_linger;
    let limit = std::time::Instant::now()
        + spec.duration.max(Duration::from_secs(1)) * 4
        + wait
        + Duration::from_secs(30);
    let synthetic = SyntheticFeed::new(spec, Arc::clone(&stats));
    let run = PubRun { subscribers: a.subscribers, wait, limit, signals: &signals };
    let served = match a.feed {
        FeedPath::Caller => {
            let p = InlineTickPublisher::bind(&engine, bind, Some(side), pcfg)?;
            run.inline(p, synthetic, linger)
        }
        FeedPath::Handoff => {
            run.worker(TickPublisher::start(&engine, bind, Some(side), pcfg)?, Some(synthetic), linger)
        }
        FeedPath::Source => run.worker(
            TickPublisher::start_with_source(&engine, bind, Some(side), pcfg, synthetic)?,
            None,
            linger,
        ),
    };
    crate::security::report_zap(zap);
    // The report is printed however the run ended (a wait that timed out included): what
    // the publisher saw and refused is what the operator needs then.
    let (report, p_endpoint, outcome) = served;
    let r = report?;
    let stalls = stats.stalls.load(std::sync::atomic::Ordering::Relaxed);
    let max_lag_ns = stats.max_lag_ns.load(std::sync::atomic::Ordering::Relaxed);
    let groups = groups_of(&topics(a), &topics(a), a.groups);
    let pub_attrs = MessagingAttributes::new("publish", OperationType::Send, &groups.join(","))
        .endpoint(&p_endpoint)
        .body_size_bytes(a.size as u64);
    telemetry.add_totals(&pub_attrs, Totals { sent: r.published, ..Totals::default() });
    if a.json {
        let publisher = PublisherJson { report: &r, stalls, max_lag_ns };
        println!(
            "{}",
            serde_json::json!({"published": r.published, "rate_per_s": r.rate_per_s.round(), "publisher": publisher})
        );
    } else {
        println!(
            "published {} ticks at {:.0}/s in {} messages; {} stalls; {} subscribers acknowledged, {} left; \
             {} repair requests, {} ticks sent again, {} gone from the ring; \
             {} connections, {} disconnections, {} failed handshakes",
            r.published,
            r.rate_per_s,
            r.batches,
            stalls,
            r.acks,
            r.departures,
            r.naks,
            r.retransmitted,
            r.gone,
            r.connections,
            r.disconnections,
            r.handshake_failures
        );
    }
    outcome?;
    Ok(signals.exit_code(0))
}

/// Calls `wait` in slices of at most 100 ms until it returns true, `total` has passed, or a
/// signal arrives; whether it returned true.
fn wait_or_signal(signals: &Signals, total: Duration, mut wait: impl FnMut(Duration) -> bool) -> bool {
    let deadline = std::time::Instant::now() + total;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if wait(left.min(Duration::from_millis(100))) {
            return true;
        }
        if left.is_zero() || signals.caught().is_some() {
            return false;
        }
    }
}

/// A `--role pub` process's run of its publisher: wait for the subscribers, feed, end.
struct PubRun<'a> {
    subscribers: usize,
    /// How long to wait for them.
    wait: Duration,
    /// When a publisher that has not finished its feed by then gives up.
    limit: std::time::Instant,
    signals: &'a Signals,
}

/// What a publisher's run hands back: its report, its endpoint, and how the run went.
type Served = (Result<PublisherReport, Error>, Endpoint, Result<(), Error>);

impl PubRun<'_> {
    /// The line scripts (and the fault tests) wait for: the stream is under way.
    fn announce(&self, subscribers: usize, epoch: u64, endpoint: &Endpoint) {
        eprintln!("ztick: {subscribers} subscribers connected; publishing epoch {epoch:016x} on {endpoint}");
    }

    fn not_connected(&self, endpoint: &Endpoint, connected: usize) -> Error {
        Error::Timeout {
            op: Operation::Recv,
            endpoint: format!("{endpoint} ({connected} of {} subscribers connected)", self.subscribers),
            ms: self.wait.as_millis() as u64,
        }
    }

    /// A publisher on its worker; `handed` is the feed when it runs on this thread.
    fn worker(&self, p: TickPublisher, handed: Option<SyntheticFeed>, linger: Duration) -> Served {
        let signals = self.signals;
        let limit = self.limit;
        let p_endpoint = p.endpoint().clone();
        let waited = wait_or_signal(signals, self.wait, |t| p.wait_subscribers(self.subscribers, t));
        if waited {
            self.announce(p.subscribers(), p.epoch(), p.endpoint());
        }
        let handed_off = match handed {
            Some(f) if waited => feed::run_handed_off(f, &p, || signals.caught().is_some()),
            _ => Ok(()),
        };
        let outcome = if signals.caught().is_some() {
            Ok(())
        } else if let Err(e) = handed_off {
            Err(e)
        } else if !waited {
            Err(self.not_connected(p.endpoint(), p.subscribers()))
        } else if !wait_or_signal(signals, limit.saturating_duration_since(std::time::Instant::now()), |t| {
            p.wait_ended(t)
        }) && signals.caught().is_none()
        {
            Err(Error::Stopped("the publisher did not finish in time".into()))
        } else {
            Ok(())
        };
        // After the end markers the publisher stops once every subscriber has acknowledged
        // (or the linger has passed). A signal ends the stream where it is.
        (p.finish(linger + Duration::from_secs(2)), p_endpoint, outcome)
    }

    /// A publisher on this thread, which runs the feed and serves the stream.
    fn inline(&self, mut p: InlineTickPublisher, feed: SyntheticFeed, linger: Duration) -> Served {
        let signals = self.signals;
        let p_endpoint = p.endpoint().clone();
        let mut failed = None;
        let waited = wait_or_signal(signals, self.wait, |t| {
            p.wait_subscribers(self.subscribers, t).unwrap_or_else(|e| failed.replace(e).is_none())
        });
        let outcome = match failed {
            Some(e) => Err(e),
            None if signals.caught().is_some() => Ok(()),
            None if !waited => Err(self.not_connected(p.endpoint(), p.subscribers())),
            None => {
                self.announce(p.subscribers(), p.epoch(), p.endpoint());
                feed::run_inline(feed, &mut p, || signals.caught().is_some())
            }
        };
        // Served until every subscriber has acknowledged the end (or the linger passed).
        (p.finish(linger + Duration::from_secs(2)), p_endpoint, outcome)
    }
}

/// Writes each lost range as a JSON line, from the subscriber's worker.
struct GapWriter {
    out: std::io::BufWriter<std::fs::File>,
    failed: bool,
}

impl GapWriter {
    fn on_event(&mut self, ev: &Event<'_>) {
        match *ev {
            Event::Gap { topic, epoch, first, last, .. } if !self.failed => {
                let line = serde_json::json!({"epoch": format!("{epoch:016x}"), "topic": topic, "first": first, "last": last});
                if writeln!(self.out, "{line}").is_err() {
                    self.failed = true;
                    tracing::warn!("--gaps-out: write failed; no more ranges are written");
                }
            }
            _ => {}
        }
    }
}

fn subscriber(a: &FanoutArgs, observer: Option<&Observer>, telemetry: &Telemetry) -> Result<u8, Error> {
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
    let groups = groups_of(&topics, &topics, a.groups);
    let attrs = sub_attributes(a, &groups).endpoint(&connect);
    let cfg = SubscriberConfig {
        name: "sub".into(),
        intervals: observer.map(|o| o.sender("sub", attrs.clone())),
        groups,
        topics: topics.clone(),
        pin: a.pin.first().copied(),
        curve: a.curve_keys.config().client()?,
        ..subscriber_defaults(a)?
    };
    let mut gaps = match &a.gaps_out {
        Some(path) => Some(GapWriter {
            out: std::io::BufWriter::new(std::fs::File::create(path).map_err(|e| Error::Io {
                context: format!("creating --gaps-out {}", path.display()),
                source: e,
            })?),
            failed: false,
        }),
        None => None,
    };
    let signals = Signals::register()?;
    let engine = role_engine(a)?;
    let transport = connect.transport();
    let work_ns = a.consumer_work_ns;
    let side = a.snapshot.clone();
    let gaps_ns = idle::gaps_ns(&a.idle_gaps_us, a.idle_samples)?;
    let idle_gaps = (!gaps_ns.is_empty()).then(|| IdleGaps::shared(&gaps_ns));
    let recorder = idle_gaps.clone();
    let mut sub = TickSubscriber::with_callback(&engine, connect.clone(), side, cfg, move |ev| {
        if let Some(g) = gaps.as_mut() {
            g.on_event(ev);
        }
        match ev {
            // A line scripts (and the fault tests) can wait for; a restart shows as a new one.
            Event::Epoch { epoch } => eprintln!("ztick: publisher epoch {epoch:016x} begins"),
            Event::Tick(t) => {
                if let Some(g) = &recorder {
                    IdleGaps::record(g, t);
                }
                if work_ns > 0 {
                    let until = ztick::now_ns() + work_ns;
                    while ztick::now_ns() < until {
                        std::hint::spin_loop();
                    }
                }
            }
            _ => {}
        }
    })?;
    let ended = wait_or_signal(&signals, Duration::from_millis(a.timeout_ms), |t| sub.wait_ended(t));
    let r = match (ended, signals.caught()) {
        (false, Some(_)) => sub.stop()?,
        _ => sub.finish(Duration::ZERO)?,
    };
    let publisher = PublisherReport {
        published: r.epochs.iter().fold(0, |a, e| a.saturating_add(e.published())),
        last_seq: r
            .latest()
            .map(|e| e.topics.iter().map(|(n, t)| (n.clone(), t.accounted_up_to())).collect())
            .unwrap_or_default(),
        epoch: r.latest().map_or(0, |e| e.epoch),
        ..Default::default()
    };
    let code = match r.outcome {
        Outcome::Complete => 0,
        Outcome::PublisherLost => 3,
        Outcome::Timeout => 4,
        Outcome::Stopped => 1,
    };
    let outcome = r.outcome;
    telemetry.add_totals(
        &attrs,
        Totals { repaired: r.repaired(), unrecoverable: r.missing(), ..Totals::default() },
    );
    let report = FanoutReport {
        transport,
        feed: FeedShape { topics: topics.len(), payload_bytes: a.size, rate_per_s: a.rate },
        publisher,
        authoritative: false,
        stalls: 0,
        max_lag_ns: 0,
        subscribers: vec![r],
        idle: idle_gaps.iter().map(IdleGaps::snapshot).collect(),
    };
    print_report(a, &report)?;
    if outcome == Outcome::Timeout {
        eprintln!(
            "ztick: timed out after {} ms: {connect} sent no end of stream on every topic; is the publisher running?",
            a.timeout_ms
        );
    }
    Ok(signals.exit_code(code))
}
