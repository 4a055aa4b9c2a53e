//! `ztick`: the command-line face of the library (feature `cli`). Parses flags into library
//! configs and holds the machinery only the command needs, on ztick's public API alone:
//!
//! - `verbs.rs`, `script.rs`, `settings.rs`: the scripting verbs, their stdin/stdout line
//!   protocol, and settings from flags > environment > TOML file;
//! - `perf/`: the latency and throughput tools (`lat`, `thr`, `local-`/`remote-lat|thr`);
//! - `fanout.rs`: `ztick fanout`'s flags and report; `plot.rs`: its `--plot` SVG;
//! - `schema.rs` (with `fanout/schema.rs`): the `--json` records, typed, which the table
//!   renderer `ztick-tables` (benches/tables/) compiles too;
//! - `security.rs`: the CURVE key flags, ZAP and `keygen`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use ztick::info::BuildInfo;
use ztick::metrics::{MessagingAttributes, OperationType};
use ztick::profile::Profile;
use ztick::{CoreId, Endpoint, Engine, Error, IdleStrategy, SchedPolicy, Transport};

use crate::observe::Totals;

use crate::perf::{LatOptions, LatReport, LatSide, ThrOptions, ThrSide};

/// ztick: a low-latency messaging engine on libzmq, and its measuring tools.
#[derive(Parser, Debug)]
#[command(
    name = "ztick",
    version,
    about,
    long_about = None,
    after_help = "Exit codes: 0 success; 1 a failure at run time; 2 a bad argument; 3 the fan-out \
                  publisher was lost; 4 a timeout; 128+N stopped by signal N (reports are printed first)."
)]
struct Cli {
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Subcommand, Debug)]
enum Verb {
    /// Show the libzmq version, how it is linked, its capabilities, the cores seen, and the
    /// idle strategy recommended here.
    Info {
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Round-trip latency with both ends in this process, each on its own worker
    /// (REQ timing against REP echo, as libzmq's perf tools do).
    Lat(LatArgs),
    /// Throughput with both ends in this process (PUSH sending, PULL counting).
    Thr(ThrArgs),
    /// libzmq's `local_lat`: echoes ROUNDTRIPS requests of SIZE bytes to REQ peers (on a
    /// ROUTER socket, which they cannot tell from libzmq's REP, so that requests of another
    /// size are left unanswered and counted). Pair it with `ztick remote-lat` or libzmq's
    /// `remote_lat`.
    LocalLat(TwoProcLat),
    /// libzmq's `remote_lat`: a REQ socket that times ROUNDTRIPS echoes and prints libzmq's
    /// lines followed by HDR percentiles of the round trip.
    RemoteLat(TwoProcLat),
    /// libzmq's `local_thr`: a PULL socket that counts COUNT messages of SIZE bytes and prints
    /// the throughput from the first message on. When every sender has hung up before
    /// COUNT, it waits 1 s for more, then reports "received N of COUNT" and exits 1.
    LocalThr(TwoProcThr),
    /// libzmq's `remote_thr`: a PUSH socket that sends COUNT messages of SIZE bytes, then
    /// exits once the receiver has hung up (libzmq's and our local-thr do after the last
    /// message), which confirms delivery; --timeout-ms bounds the wait.
    RemoteThr(TwoProcThr),
    /// Tick fan-out, the main job: one paced publisher, N subscribers, every lost tick found
    /// (exact missing ranges per topic) and every tick's latency counted. With no arguments:
    /// one process, 1 publisher and 2 subscribers over ipc, 100,000 ticks/s for 5 s, 64-byte
    /// payloads, 8 topics. `--role pub|sub` runs one side, for several processes or hosts.
    Fanout(Box<FanoutArgs>),
    /// Make a CURVE key pair: writes the secret key to --secret-out (mode 0600) and prints
    /// the public key in Z85. Needs the system libzmq build (the vendored one has no CURVE).
    Keygen(security::KeygenArgs),
    /// Scripting verbs that talk to any ZMTP peer (libzmq, pyzmq, czmq) from the shell.
    #[command(flatten)]
    Script(verbs::ScriptVerb),
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// Publisher and subscribers in this process.
    Embedded,
    /// Only the publisher: binds --bind (and --snapshot-bind), waits for --subscribers.
    Pub,
    /// Only one subscriber: connects to --connect (and --snapshot).
    Sub,
}

/// Where `ztick fanout`'s synthetic feed runs.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum FeedPath {
    /// On the publisher's worker, the thread that owns its socket: no hand-off.
    Source,
    /// On the main thread, pacing with absolute sleeps and handing every tick to the
    /// worker, as an application thread publishes: the difference is the hop.
    Handoff,
    /// On the main thread, which owns the publisher's sockets (`InlineTickPublisher`): no
    /// worker and no hand-off; it serves the stream while it waits for the next tick.
    Caller,
}

#[derive(Args, Debug)]
struct FanoutArgs {
    /// Which side(s) to run.
    #[arg(long, value_enum, default_value = "embedded")]
    role: Role,
    /// Transport for the embedded role: inproc, ipc or tcp (loopback).
    #[arg(long, default_value = "ipc")]
    transport: Transport,
    /// Subscribers (embedded), or subscribers to wait for before publishing (pub).
    #[arg(long, default_value_t = 2)]
    subscribers: usize,
    /// Ticks per second over all topics; 0 = as fast as possible.
    #[arg(long, default_value_t = 100_000)]
    rate: u64,
    /// Seconds to publish (fractions allowed).
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Latency after idle instead of a paced feed: one lead-in tick, then for each gap
    /// (microseconds, comma-separated, e.g. 100,1000,10000,100000,1000000) --idle-samples
    /// ticks, each that long after the one before. Every subscriber reports its latency per
    /// gap; one in another process needs the same list. libzmq's first message after an
    /// idle spell is slow (libzmq #4673): this measures by how much.
    #[arg(long, value_delimiter = ',', value_name = "US,...", conflicts_with_all = ["rate", "duration"])]
    idle_gaps_us: Vec<u64>,
    /// With --idle-gaps-us: ticks after each gap.
    #[arg(long, default_value_t = 5)]
    idle_samples: u64,
    /// Payload bytes per tick.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Where the feed runs: `source` (default) on the publisher's worker, which owns the
    /// socket; `handoff` on the main thread, handing each tick over
    /// (`TickPublisher::publish_at`); `caller` on the main thread owning the socket itself
    /// (`InlineTickPublisher`, no worker). Measures the hop between threads.
    #[arg(long, value_enum, default_value = "source")]
    feed: FeedPath,
    /// Number of topics (t0, t1, ...), published round-robin.
    #[arg(long, default_value_t = 8)]
    topics: usize,
    /// Groups the topics are coalesced in: a message carries ticks of one group, and SUB
    /// sockets filter on it. 1 (default) batches best; --groups = --topics filters per topic.
    #[arg(long, default_value_t = 1)]
    groups: usize,
    /// Tune for latency, balanced (the default) or throughput: chooses the idle strategy,
    /// scheduling policy, pinning, coalescing window and batch for the cores present and
    /// prints what it chose (`ztick info` shows all three here). Explicit flags win.
    #[arg(long)]
    profile: Option<Profile>,
    /// The workers' scheduling policy, from --profile (latency may ask for SCHED_FIFO; a
    /// refusal by the OS leaves SCHED_OTHER, with a warning).
    #[arg(skip = SchedPolicy::Other)]
    sched: SchedPolicy,
    /// libzmq's I/O threads' policy, from --profile (latency gives them the workers'
    /// SCHED_FIFO, so real-time workers cannot starve them; refused: the OS's default).
    #[arg(skip)]
    io_sched: Option<SchedPolicy>,
    /// Idle strategy of every worker: busy-spin, yield, backoff, block, or
    /// spin-to-deadline[:US] (block, but sleep only until US µs, default 50, before a timer
    /// and spin the rest; counted against the core budget). Default: from --profile
    /// (balanced: what `ztick info` recommends here).
    #[arg(long)]
    idle: Option<IdleStrategy>,
    /// Idle strategy of the publisher only (overrides --idle).
    #[arg(long)]
    pub_idle: Option<IdleStrategy>,
    /// Idle strategy of the subscribers only (overrides --idle).
    #[arg(long)]
    sub_idle: Option<IdleStrategy>,
    /// Cores, comma-separated: the publisher's first, then one per subscriber.
    #[arg(long, value_delimiter = ',')]
    pin: Vec<CoreId>,
    /// Send and receive HWM in messages (libzmq's default: 1000). A tiny HWM plus a slow
    /// consumer shows drops being found.
    #[arg(long)]
    hwm: Option<u32>,
    /// Subscribers keep only the latest message (ZMQ_CONFLATE); ticks travel one per message.
    #[arg(long)]
    conflate: bool,
    /// Most ticks coalesced into one ZeroMQ message (default: from --profile; balanced 64).
    #[arg(long)]
    max_batch: Option<usize>,
    /// Coalescing window of a paced feed, in microseconds: the publisher wakes when a tick
    /// is due plus this long and sends everything due in one message per group, so a tick
    /// leaves at most this late (0: wake for every tick; see BENCHMARKS.md for the trade).
    /// Default: from --profile; balanced 20.
    #[arg(long)]
    max_delay_us: Option<u64>,
    /// Busy work per tick in each subscriber, in nanoseconds, to play a slow consumer.
    #[arg(long, default_value_t = 0)]
    consumer_work_ns: u64,
    /// Embedded role: every subscriber on one worker thread (a `HandlerGroup`) instead of
    /// one thread each, so fewer threads queue for the cores; pinned to the second --pin.
    #[arg(long)]
    share_worker: bool,
    /// Subscribers join through the snapshot service (late joiners without gaps).
    #[arg(long)]
    snapshot_join: bool,
    /// pub role: the endpoint to publish on, e.g. tcp://*:5556.
    #[arg(long)]
    bind: Option<Endpoint>,
    /// pub role: the snapshot/acknowledgement endpoint (default: a free loopback tcp port).
    #[arg(long)]
    snapshot_bind: Option<Endpoint>,
    /// sub role: the publisher's endpoint.
    #[arg(long)]
    connect: Option<Endpoint>,
    /// sub role: the publisher's snapshot endpoint (enables end acknowledgements, and
    /// snapshot joins with --snapshot-join).
    #[arg(long)]
    snapshot: Option<Endpoint>,
    /// sub role: give up after this many milliseconds without the end of the stream
    /// (exit code 4; the report is printed).
    #[arg(long, default_value_t = 60_000)]
    timeout_ms: u64,
    /// pub role: give up after this many milliseconds without --subscribers connected and
    /// introduced (exit code 4; the report is printed).
    #[arg(long, default_value_t = 10_000)]
    wait_ms: u64,
    /// Subscribers: declare the publisher lost after this many milliseconds without a tick
    /// or heartbeat (outcome publisher_lost, exit code 3, the report is printed).
    #[arg(long, default_value_t = 1000)]
    liveness_ms: u64,
    /// Subscribers: after a lost publisher, wait for it (the same epoch back, or a new one
    /// after a restart on the same endpoint) instead of ending.
    #[arg(long)]
    follow: bool,
    /// Subscribers: do not ask the side channel for missing ticks (gaps are lost at once).
    #[arg(long)]
    no_repair: bool,
    /// Publisher: bytes of the retransmit ring that repairs subscribers' gaps (28 B plus
    /// the payload per tick: the default holds the last 729,444 ticks of 64 B); 0 turns
    /// repair off.
    #[arg(long, default_value_t = 64 << 20)]
    ring_bytes: usize,
    /// Publisher: interval of the heartbeats that carry each topic's last sequence.
    #[arg(long, default_value_t = 100)]
    heartbeat_ms: u64,
    /// Subscribers: write every lost range to FILE, one JSON object per line (the report
    /// lists the first 20).
    #[arg(long, value_name = "FILE")]
    gaps_out: Option<PathBuf>,
    /// Write the merged latency's percentile distribution (.hgrm, microseconds) to FILE.
    #[arg(long, value_name = "FILE")]
    hgrm: Option<PathBuf>,
    /// Write HdrHistogram's interval log to FILE: each subscriber's latency histogram of
    /// every one-second window (tagged with its name, values in ns), for HdrHistogram's
    /// HistogramLogProcessor and friends.
    #[arg(long, value_name = "FILE")]
    hlog: Option<PathBuf>,
    /// Export the latency windows, message counters and spans over OTLP/HTTP (feature
    /// `otlp`) to URL's /v1/traces and /v1/metrics, or without URL as the standard
    /// OTEL_EXPORTER_OTLP_* variables say (default http://localhost:4318).
    #[arg(long, value_name = "URL", num_args = 0..=1, default_missing_value = "", require_equals = true)]
    otlp: Option<String>,
    /// Read --bind, --connect and --hwm from this TOML file (bind_address, connect_address,
    /// hwm) when neither the flag nor ZMQ_BIND_ADDRESS, ZMQ_CONNECT_ADDRESS, ZMQ_HWM is set.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Draw the latency percentile distributions (corrected and raw) to an SVG file.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Run spinning workers even past the core budget (with a warning).
    #[arg(long)]
    force: bool,
    /// Core(s) for libzmq's I/O thread, comma-separated (ZMQ_THREAD_AFFINITY_CPU_ADD).
    #[arg(long, value_delimiter = ',')]
    io_cores: Vec<CoreId>,
    /// Encrypt the embedded run with CURVE, fresh keys for publisher and subscribers (the
    /// system libzmq build only). Across processes give the key flags instead: the
    /// publisher --curve-server-secret (and --zap-allow), each subscriber
    /// --curve-client-secret and --curve-server-public.
    #[arg(long)]
    curve: bool,
    #[command(flatten)]
    curve_keys: security::CurveFlags,
}

/// Options every measuring verb takes.
#[derive(Args, Debug, Clone)]
struct Common {
    /// Idle strategy of the workers: block, backoff, yield or busy-spin. Spinning strategies
    /// need a free core each (plus one per libzmq I/O thread) or are refused.
    #[arg(long, default_value = "block")]
    idle: IdleStrategy,
    /// Core(s) to pin the workers to, comma-separated: the first for the timing/sending side,
    /// the second for the echo/receiving side.
    #[arg(long, value_delimiter = ',')]
    pin: Vec<CoreId>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Write HdrHistogram's percentile distribution (microseconds) to FILE.
    #[arg(long, value_name = "FILE")]
    hgrm: Option<PathBuf>,
    /// Write HdrHistogram's interval log to FILE (lat, remote-lat): the round trips' histogram
    /// of every second, values in ns.
    #[arg(long, value_name = "FILE")]
    hlog: Option<PathBuf>,
    /// Export over OTLP/HTTP (feature `otlp`): to URL's /v1/traces and /v1/metrics, or
    /// without URL as the OTEL_EXPORTER_OTLP_* variables say. The latency tools export their
    /// one-second histograms, every tool its message counts.
    #[arg(long, value_name = "URL", num_args = 0..=1, default_missing_value = "", require_equals = true)]
    otlp: Option<String>,
    /// Give up after this many milliseconds without completion (default: wait forever,
    /// like libzmq's tools; `lat`/`thr` stop after 10 minutes).
    #[arg(long, value_name = "MS")]
    timeout_ms: Option<u64>,
    /// Run spinning workers even past the core budget (with a warning).
    #[arg(long)]
    force: bool,
    /// Core(s) for libzmq's I/O thread, comma-separated (ZMQ_THREAD_AFFINITY_CPU_ADD).
    #[arg(long, value_delimiter = ',')]
    io_cores: Vec<CoreId>,
    #[command(flatten)]
    curve: security::CurveFlags,
}

#[derive(Args, Debug)]
struct LatArgs {
    /// Transport between the two workers: inproc, ipc or tcp (loopback).
    #[arg(long, default_value = "inproc")]
    transport: Transport,
    /// Message size in bytes.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Timed round trips.
    #[arg(long, default_value_t = 100_000)]
    count: u64,
    /// Untimed round trips first.
    #[arg(long, default_value_t = 1000)]
    warmup: u64,
    /// Encrypt with CURVE, fresh keys for both ends (or give the --curve-* key flags: the
    /// echo side is the server, the timing side the client).
    #[arg(long)]
    curve: bool,
    #[command(flatten)]
    common: Common,
}

#[derive(Args, Debug)]
struct ThrArgs {
    /// Transport between the two workers: inproc, ipc or tcp (loopback).
    #[arg(long, default_value = "inproc")]
    transport: Transport,
    /// Message size in bytes.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Messages to send.
    #[arg(long, default_value_t = 1_000_000)]
    count: u64,
    /// Messages the sender writes per pass of its loop (and the receiver reads).
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Send from pooled buffers without copying (pays above 33 bytes; see BENCHMARKS.md).
    #[arg(long)]
    pooled: bool,
    /// Encrypt with CURVE, fresh keys for both ends (or give the --curve-* key flags: the
    /// receiver is the server, the sender the client).
    #[arg(long)]
    curve: bool,
    #[command(flatten)]
    common: Common,
}

#[derive(Args, Debug)]
struct TwoProcLat {
    /// Endpoint to bind (local-lat) or connect to (remote-lat), e.g. tcp://127.0.0.1:5555.
    endpoint: Endpoint,
    /// Message size in bytes. local-lat echoes only requests of exactly this size (others
    /// are refused and counted, not echoed); a peer frame larger than SIZE + 1024 bytes
    /// drops its connection (ZMQ_MAXMSGSIZE).
    size: usize,
    /// Round trips.
    roundtrips: u64,
    #[command(flatten)]
    common: Common,
}

#[derive(Args, Debug)]
struct TwoProcThr {
    /// Endpoint to bind (local-thr) or connect to (remote-thr).
    endpoint: Endpoint,
    /// Message size in bytes. local-thr counts only messages of exactly this size (others
    /// are refused and counted); a peer frame larger than SIZE + 1024 bytes drops its
    /// connection (ZMQ_MAXMSGSIZE).
    size: usize,
    /// Messages.
    count: u64,
    #[command(flatten)]
    common: Common,
}

/// Exit codes: 0 success; 1 a failure at run time; 2 a bad argument; 3 the publisher was
/// lost (`ztick fanout --role sub`); 4 a timeout; 128 + N stopped by signal N (the report
/// is printed first).
fn exit_code(e: &Error) -> u8 {
    match e {
        Error::Config { .. } | Error::Endpoint { .. } | Error::Insecure { .. } => 2,
        Error::Timeout { .. } => 4,
        _ => 1,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let telemetry = match observe::Telemetry::from_flag(otlp_flag(&cli.verb)) {
        Ok(t) => t,
        Err(e) => {
            init_logs(&cli.verb, &observe::Telemetry::default());
            eprintln!("ztick: {e}");
            return ExitCode::from(exit_code(&e));
        }
    };
    init_logs(&cli.verb, &telemetry);
    let result = run(cli.verb, &telemetry);
    telemetry.shutdown();
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("ztick: {e}");
            ExitCode::from(exit_code(&e))
        }
    }
}

/// The `--otlp` flag of the verbs that take one.
fn otlp_flag(verb: &Verb) -> &observe::OtlpFlag {
    static NONE: observe::OtlpFlag = None;
    match verb {
        Verb::Lat(a) => &a.common.otlp,
        Verb::Thr(a) => &a.common.otlp,
        Verb::LocalLat(a) | Verb::RemoteLat(a) => &a.common.otlp,
        Verb::LocalThr(a) | Verb::RemoteThr(a) => &a.common.otlp,
        Verb::Fanout(a) => &a.otlp,
        _ => &NONE,
    }
}

/// Logs on stderr (RUST_LOG, default `warn`; a fan-out publisher also logs its
/// subscribers' connections and departures), and with `--otlp` ztick's spans to the
/// exporter too.
fn init_logs(verb: &Verb, telemetry: &observe::Telemetry) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let default = match verb {
        Verb::Fanout(a) if a.role == Role::Pub => "warn,ztick::monitor=info",
        _ => "warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal, never in a file or a pipe.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_filter(filter);
    let registry = tracing_subscriber::registry().with(fmt);
    #[cfg(feature = "otlp")]
    {
        // Only ztick's own spans (the interval `latency` spans, monitor events within them).
        let targets = tracing_subscriber::filter::Targets::new().with_target("ztick", tracing::Level::INFO);
        let otel = telemetry.exporter.as_ref().map(|e| e.tracing_layer().with_filter(targets));
        registry.with(otel).init();
    }
    #[cfg(not(feature = "otlp"))]
    {
        let _ = telemetry;
        registry.init();
    }
}

/// Runs one verb; the exit code on success (the fan-out tells outcomes apart).
fn run(verb: Verb, telemetry: &observe::Telemetry) -> Result<u8, Error> {
    if let Some(path) = hlog_of_verbs_without_latency(&verb) {
        return Err(Error::config(
            "--hlog",
            path.display(),
            "lat, remote-lat or fanout: the verbs that keep a latency histogram",
        ));
    }
    match verb {
        Verb::Info { json } => info(json),
        Verb::Lat(a) => {
            let mut side = lat_side(a.size, a.count, &a.common, Some(a.warmup));
            let (server, client) = security::in_process_roles(a.curve, &a.common.curve)?;
            side.curve = client;
            let observer = observe::Observer::start(a.common.hlog.as_deref(), telemetry, &command_line())?;
            let mut attrs = MessagingAttributes::new("request", OperationType::Send, "ztick-lat")
                .body_size_bytes(a.size as u64);
            attrs.transport = Some(a.transport);
            side.intervals = observer.as_ref().map(|o| o.sender("req", attrs));
            let opts = LatOptions {
                transport: a.transport,
                side,
                echo_pin: a.common.pin.get(1).copied(),
                force: a.common.force,
                io_cores: a.common.io_cores.clone(),
                echo_curve: server,
            };
            let report = perf::run_lat(&opts);
            finish_observer(observer)?;
            print_lat(&report?, &a.common)
        }
        Verb::Thr(a) => {
            let mut side = thr_side(a.size, a.count, &a.common);
            side.batch = a.batch.max(1);
            side.pooled = a.pooled;
            let (server, client) = security::in_process_roles(a.curve, &a.common.curve)?;
            side.curve = client;
            let opts = ThrOptions {
                transport: a.transport,
                side,
                recv_pin: a.common.pin.get(1).copied(),
                force: a.common.force,
                io_cores: a.common.io_cores.clone(),
                recv_curve: server,
            };
            let report = perf::run_thr(&opts)?;
            let attrs = |op, ty| {
                let mut m = MessagingAttributes::new(op, ty, "ztick-thr").body_size_bytes(a.size as u64);
                m.transport = Some(a.transport);
                m
            };
            telemetry.add_totals(
                &attrs("send", OperationType::Send),
                Totals { sent: a.count, ..Totals::default() },
            );
            let received = Totals { consumed: report.count, ..Totals::default() };
            telemetry.add_totals(&attrs("receive", OperationType::Receive), received);
            print_out(&report.to_text(), &report.to_json(), a.common.json);
            Ok(())
        }
        Verb::LocalLat(a) => {
            // libzmq's tools do no warm-up: every round trip counts, on both sides.
            let mut side = lat_side(a.size, a.roundtrips, &a.common, Some(0));
            side.curve = a.common.curve.config().role()?;
            side.zap_domain = a.common.curve.zap_domain();
            let engine = engine(&a.common)?;
            let zap = a.common.curve.zap(&engine)?;
            let attrs = two_proc_attrs("reply", OperationType::Receive, &a.endpoint, a.size);
            let r = perf::serve_echo(&engine, a.endpoint, true, &side);
            security::report_zap(zap);
            let refused = r?;
            if refused > 0 {
                eprintln!(
                    "local-lat: refused {refused} request(s) that were not one frame of {} bytes",
                    side.size
                );
            }
            telemetry.add_totals(
                &attrs,
                Totals { consumed: a.roundtrips, sent: a.roundtrips, ..Totals::default() },
            );
            Ok(())
        }
        Verb::RemoteLat(a) => {
            let mut side = lat_side(a.size, a.roundtrips, &a.common, Some(0));
            side.curve = a.common.curve.config().role()?;
            let observer = observe::Observer::start(a.common.hlog.as_deref(), telemetry, &command_line())?;
            let attrs = two_proc_attrs("request", OperationType::Send, &a.endpoint, a.size);
            side.intervals = observer.as_ref().map(|o| o.sender("req", attrs));
            let report = perf::measure_round_trips(&engine(&a.common)?, a.endpoint, &side);
            finish_observer(observer)?;
            print_lat(&report?, &a.common)
        }
        Verb::LocalThr(a) => {
            let mut side = thr_side(a.size, a.count, &a.common);
            side.curve = a.common.curve.config().role()?;
            side.zap_domain = a.common.curve.zap_domain();
            let engine = engine(&a.common)?;
            let zap = a.common.curve.zap(&engine)?;
            let attrs = two_proc_attrs("receive", OperationType::Receive, &a.endpoint, a.size);
            let report = perf::count_incoming(&engine, a.endpoint, true, &side);
            security::report_zap(zap);
            let report = report?;
            telemetry.add_totals(&attrs, Totals { consumed: report.count, ..Totals::default() });
            print_out(&report.to_text(), &report.to_json(), a.common.json);
            Ok(())
        }
        Verb::Fanout(a) => return fanout::run(*a, telemetry),
        Verb::Keygen(a) => security::keygen(&a),
        Verb::Script(v) => verbs::run(v),
        Verb::RemoteThr(a) => {
            let mut side = thr_side(a.size, a.count, &a.common);
            side.curve = a.common.curve.config().role()?;
            let attrs = two_proc_attrs("send", OperationType::Send, &a.endpoint, a.size);
            perf::send_burst(&engine(&a.common)?, a.endpoint, false, &side)?;
            telemetry.add_totals(&attrs, Totals { sent: a.count, ..Totals::default() });
            Ok(())
        }
    }
    .map(|()| 0)
}

/// The verbs without a latency histogram that were given `--hlog`: the path, to refuse.
fn hlog_of_verbs_without_latency(verb: &Verb) -> Option<&PathBuf> {
    match verb {
        Verb::Thr(a) => a.common.hlog.as_ref(),
        Verb::LocalLat(a) => a.common.hlog.as_ref(),
        Verb::LocalThr(a) | Verb::RemoteThr(a) => a.common.hlog.as_ref(),
        _ => None,
    }
}

/// The messaging attributes of a two-process perf tool's stream on `endpoint`.
fn two_proc_attrs(op: &str, ty: OperationType, endpoint: &Endpoint, size: usize) -> MessagingAttributes {
    MessagingAttributes::new(op, ty, &endpoint.to_string()).endpoint(endpoint).body_size_bytes(size as u64)
}

/// The command line, for the head of an interval log.
pub(crate) fn command_line() -> String {
    std::env::args().collect::<Vec<_>>().join(" ")
}

/// Ends the metrics thread (the last intervals written), if there is one.
pub(crate) fn finish_observer(observer: Option<observe::Observer>) -> Result<(), Error> {
    observer.map_or(Ok(()), observe::Observer::finish)
}

mod fanout;
mod observe;
mod perf;
mod plot;
mod schema;
mod script;
mod security;
mod settings;
mod signals;
mod verbs;

fn engine(c: &Common) -> Result<Engine, Error> {
    Engine::builder().force_core_budget(c.force).io_cores(&c.io_cores).build()
}

fn timeout(c: &Common) -> Option<Duration> {
    c.timeout_ms.map(Duration::from_millis)
}

fn lat_side(size: usize, count: u64, c: &Common, warmup: Option<u64>) -> LatSide {
    let mut s = LatSide::new(size, count);
    s.idle = c.idle;
    s.pin = c.pin.first().copied();
    s.timeout = timeout(c);
    if let Some(w) = warmup {
        s.warmup = w;
    }
    s
}

fn thr_side(size: usize, count: u64, c: &Common) -> ThrSide {
    let mut s = ThrSide::new(size, count);
    s.idle = c.idle;
    s.pin = c.pin.first().copied();
    s.timeout = timeout(c);
    s
}

fn print_lat(report: &LatReport, c: &Common) -> Result<(), Error> {
    if let Some(path) = &c.hgrm {
        let io_err = |e| Error::Io { context: format!("writing {}", path.display()), source: e };
        let mut f = std::fs::File::create(path).map_err(io_err)?;
        report.round_trips.write_hgrm(&mut f, 1000.0).map_err(io_err)?;
    }
    print_out(&report.to_text(), &report.to_json(), c.json);
    Ok(())
}

fn print_out(text: &str, json: &str, as_json: bool) {
    if as_json {
        println!("{json}");
    } else {
        print!("{text}");
    }
}

fn info(json: bool) -> Result<(), Error> {
    let i = BuildInfo::current();
    if json {
        println!("{}", serde_json::to_string(&i).unwrap_or_default());
        return Ok(());
    }
    println!("libzmq version:   {}", i.libzmq_version);
    match i.vendored_lib_dir {
        Some(dir) => {
            println!("link mode:        vendored (static libzmq built from source in {dir})")
        }
        None => println!("link mode:        system (shared libzmq through Cargo's links override)"),
    }
    println!("built with:       {}", i.built_with);
    if !i.vendored_cxxflags.is_empty() {
        println!("vendored flags:   {}", i.vendored_cxxflags);
    }
    println!("capabilities:     curve={} ipc={} draft={}", i.curve, i.ipc, i.draft);
    let indices: Vec<usize> = i.cores.iter().map(|c| c.index()).collect();
    println!("cores seen:       {} {indices:?}", i.cores.len());
    println!("recommended idle: {}", i.recommended_idle);
    println!("fan-out profiles (ztick fanout --profile, a publisher and 2 subscribers over ipc):");
    for p in Profile::ALL {
        println!("  {}", p.plan(&i.cores, 3, 1));
    }
    if !i.curve {
        println!(
            "note:             no CURVE in this libzmq: ztick's own zmq-sys (vendor/zmq-sys, its [patch]) \
             or the system libzmq has it (README: \"Vendored or system libzmq\")"
        );
    }
    Ok(())
}

#[cfg(test)]
mod cli_tests {
    use clap::Parser;

    use super::Cli;

    #[test]
    fn a_server_key_that_begins_with_a_hyphen_is_a_value() {
        // Before: "error: unexpected argument '-}' found" (a key from keygen, 1 in 85).
        let key = "-}VRi@<%?xInL7PyZt&v32]Y.jpTtuHld:#1N>qW";
        let args = ["ztick", "req", "--connect", "tcp://127.0.0.1:1", "--curve-server-public", key, "x"];
        let cli = Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{e}"));
        assert!(format!("{cli:?}").contains(key), "{cli:?}");
    }
}
