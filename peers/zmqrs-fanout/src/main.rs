//! zmqrs-fanout: the tick fan-out of the tick fan-out issue, written the seed guide's way
//! (§4.2 PUB/SUB) on zmq.rs, the pure-Rust `zeromq` crate, with tokio: one PUB that binds,
//! N SUBs that connect and subscribe by topic prefix, one zmq message per tick made of a
//! topic frame and a payload frame. It runs beside `ztick fanout` (same flags, same JSON
//! keys) so the two stacks can be compared on the highest zero-loss rate and on latency.
//!
//! What it adds to the guide's code: the slow-joiner defect is closed (the publisher sends
//! "hello" ticks on every topic until every SUB has seen one on every topic, bounded by
//! 10 s), and the end is explicit (an end-of-stream tick per topic carrying the topic's
//! tick count, repeated 5 times 10 ms apart), so every subscriber can account for each tick:
//! received + missing == published.
//!
//! Payload of every tick (inside `--size`, minimum 24 bytes):
//!   [0..8)  seq u64 LE: the per-topic sequence number (0, 1, 2, ...), or a control marker
//!   [8..16) sent_ns u64 LE: monotonic clock when the tick was handed to the PUB socket
//!   [16..24) intended_ns u64 LE: when the tick was due (start + i/R); = sent_ns at --rate 0
//!   [24..size) filler
//! Control ticks use seq = HELLO (u64::MAX) or EOS (u64::MAX - 1); an EOS carries the
//! topic's tick count in [8..16) and its last seq (u64::MAX when none) in [16..24).
//!
//! The clock is CLOCK_MONOTONIC itself (one clock for every process of the host), so
//! latency is exact across processes too.
//!
//! Roles (`--role`): `in-process` (default: the publisher and its subscribers as tasks of
//! one tokio runtime), or one side per process for a cross-process run, one runtime per
//! process: `pub` binds `--bind` and a PULL socket on `--ready-bind`; each `sub` connects to
//! `--connect`, and once it has a hello on every topic says `ready` over a PUSH to
//! `--ready`, so the publisher starts only when every subscriber is in place; after the end
//! it says `done`, and the publisher closes once all have (or after a 5 s grace).
//!
//! `--idle-gaps-us 100,1000,...` replaces the paced feed: one lead-in tick, then for every
//! gap G, `--idle-samples` times: wait G after the previous tick's intended time, send one
//! tick. Subscribers given the same flag group each tick's latency by the gap before it
//! (the intended-time delta to the previous tick, matched exactly).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use tokio::sync::{mpsc, oneshot};
use zeromq::{PubSocket, PullSocket, PushSocket, Socket, SocketRecv, SocketSend, SubSocket, ZmqMessage};

mod report;

use report::{IdleGap, Latency, ZmqrsGap, ZmqrsPubRun, ZmqrsRun, ZmqrsSubRun, ZmqrsSubscriber};

const HELLO: u64 = u64::MAX;
const EOS: u64 = u64::MAX - 1;
const HEADER: usize = 24;
/// zmq.rs 0.7 has no HWM option: its PUB keeps a fixed 100,000-message fan-out queue and a
/// fixed 100,000-message queue per subscriber (`PUB_SEND_QUEUE_CAPACITY` in src/pub.rs),
/// and drops ticks silently when either is full.
const ZMQRS_FIXED_QUEUE: u64 = 100_000;
const HELLO_INTERVAL: Duration = Duration::from_millis(10);
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
const EOS_REPEATS: usize = 5;
const EOS_INTERVAL: Duration = Duration::from_millis(10);
const GRACE: Duration = Duration::from_secs(5);
/// How long a `--role sub` process stays up after queueing its `done`.
const DONE_LINGER: Duration = Duration::from_millis(50);
const MAX_GAPS_REPORTED: usize = 20;
/// A tick this far behind its schedule is late; the first late one of a run of them is a
/// stall.
const STALL_NS: u64 = 1_000_000;

/// CLOCK_MONOTONIC in nanoseconds: the clock of every process on this host.
#[inline]
fn now_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux, so
    // the call cannot fail (and `ts` stays zero if it ever did).
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Transport {
    Ipc,
    Tcp,
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Transport::Ipc => "ipc",
            Transport::Tcp => "tcp",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Role {
    /// Publisher and subscribers as tasks of one runtime in this process
    InProcess,
    /// Only the publisher: binds --bind and --ready-bind, waits for --subscribers
    Pub,
    /// Only one subscriber: connects to --connect and --ready
    Sub,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Runtime {
    /// tokio multi-thread runtime with 2 worker threads (the machine has 2 cores)
    Multi,
    /// tokio current-thread runtime: publisher, subscribers and zmq.rs's tasks on one thread
    Current,
}

/// The tick fan-out on zmq.rs (pure-Rust `zeromq` crate): one PUB, N SUBs, one message per tick.
#[derive(Parser, Debug)]
#[command(name = "zmqrs-fanout", version)]
struct Args {
    /// Which side(s) to run in this process
    #[arg(long, value_enum, default_value = "in-process")]
    role: Role,
    /// pub role: the endpoint to publish on, e.g. tcp://127.0.0.1:5556 or ipc:///tmp/f.ipc
    #[arg(long)]
    bind: Option<String>,
    /// pub role: where subscribers say ready and done (a PULL socket)
    #[arg(long)]
    ready_bind: Option<String>,
    /// sub role: the publisher's endpoint
    #[arg(long)]
    connect: Option<String>,
    /// sub role: the publisher's --ready-bind endpoint
    #[arg(long)]
    ready: Option<String>,
    /// sub role: give up after this many seconds without every end-of-stream tick (exit 4)
    #[arg(long, default_value_t = 60.0)]
    timeout_s: f64,
    /// Idle-gap feed instead of the paced one: gaps in microseconds, comma-separated
    /// (subscribers: group latency by these gaps)
    #[arg(long, value_delimiter = ',')]
    idle_gaps_us: Vec<u64>,
    /// Ticks after each idle gap
    #[arg(long, default_value_t = 20)]
    idle_samples: u64,
    /// Transport between PUB and SUBs (zmq.rs has no inproc). ipc uses a socket under /tmp,
    /// tcp uses 127.0.0.1 on a port the kernel picks.
    #[arg(long, value_enum, default_value = "ipc")]
    transport: Transport,
    /// Number of SUB sockets, each on its own tokio task, each subscribed to every topic
    #[arg(long, default_value_t = 2)]
    subscribers: usize,
    /// Total ticks per second over all topics (0 = as fast as possible)
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Seconds of publishing
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Payload bytes per tick, the 24-byte header included (minimum 24)
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Number of topics t0..t{T-1}, published round-robin
    #[arg(long, default_value_t = 8)]
    topics: usize,
    /// High-water mark. zmq.rs 0.7 has no HWM option: its PUB queues are fixed at 100,000
    /// messages; the value is accepted for flag compatibility with `ztick fanout`, reported,
    /// and otherwise ignored (with a warning).
    #[arg(long)]
    hwm: Option<u64>,
    /// tokio runtime flavour. Default: current (one thread), which measured better than
    /// multi (2 workers) for zmq.rs on this 2-core machine (see the comment in main()).
    #[arg(long, value_enum, default_value = "current")]
    runtime: Runtime,
    /// Print one JSON object instead of the human-readable report
    #[arg(long)]
    json: bool,
}

/// What one subscriber saw.
struct SubResult {
    received: u64,
    /// next expected per-topic seq (= highest seq received + 1)
    next: Vec<u64>,
    /// gaps found inside the stream (topic, first, last)
    gaps: Vec<(usize, u64, u64)>,
    gap_count: u64,
    missing_inside: u64,
    /// ticks whose seq was below the expected one (duplicates or reordering; never seen
    /// on one zmq connection, counted so the accounting cannot silently break)
    out_of_order: u64,
    /// messages that were not well-formed ticks (wrong frame count, size or topic)
    malformed: u64,
    eos_seen: usize,
    /// tick counts per topic as announced by the EOS ticks (None: no EOS reached us)
    eos_counts: Vec<Option<u64>>,
    stopped_by_grace: bool,
    lat: Histogram<u64>,
    lat_raw: Histogram<u64>,
    /// Per `--idle-gaps-us` gap: (gap ns, corrected, raw)
    idle: Vec<(u64, Histogram<u64>, Histogram<u64>)>,
    idle_unmatched: u64,
}

fn new_hist() -> Histogram<u64> {
    // 1 ns .. 100 s, 3 significant digits
    Histogram::<u64>::new_with_bounds(1, 100_000_000_000, 3).expect("histogram bounds")
}

fn topic_index(frame: &[u8], topics: usize) -> Option<usize> {
    if frame.len() < 2 || frame[0] != b't' {
        return None;
    }
    let mut k: usize = 0;
    for &b in &frame[1..] {
        if !b.is_ascii_digit() {
            return None;
        }
        k = k.checked_mul(10)?.checked_add((b - b'0') as usize)?;
    }
    (k < topics).then_some(k)
}

#[inline]
fn u64_at(p: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(p[at..at + 8].try_into().unwrap())
}

#[allow(clippy::too_many_arguments)]
async fn subscriber(
    id: usize,
    endpoint: String,
    topics: usize,
    size: usize,
    gaps_ns: Arc<Vec<u64>>,
    ready: mpsc::UnboundedSender<usize>,
    mut stop: oneshot::Receiver<()>,
) -> Result<SubResult, String> {
    let mut sock = SubSocket::new();
    sock.connect(&endpoint).await.map_err(|e| format!("subscriber {id}: connect {endpoint}: {e}"))?;
    // Subscribe by topic prefix, one subscription per topic, as the guide does.
    for k in 0..topics {
        sock.subscribe(&format!("t{k}"))
            .await
            .map_err(|e| format!("subscriber {id}: subscribe t{k}: {e}"))?;
    }

    let mut r = SubResult {
        received: 0,
        next: vec![0; topics],
        gaps: Vec::new(),
        gap_count: 0,
        missing_inside: 0,
        out_of_order: 0,
        malformed: 0,
        eos_seen: 0,
        eos_counts: vec![None; topics],
        stopped_by_grace: false,
        lat: new_hist(),
        lat_raw: new_hist(),
        idle: gaps_ns.iter().map(|&g| (g, new_hist(), new_hist())).collect(),
        idle_unmatched: 0,
    };
    let mut prev_intended: Option<u64> = None;
    let mut hello_seen = vec![false; topics];
    let mut hello_left = topics;

    loop {
        let msg = tokio::select! {
            biased;
            m = sock.recv() => m,
            _ = &mut stop => { r.stopped_by_grace = true; break; }
        };
        let recv_ns = now_ns();
        let msg = match msg {
            Ok(m) => m,
            Err(e) => return Err(format!("subscriber {id}: recv: {e}")),
        };
        if msg.len() != 2 {
            r.malformed += 1;
            continue;
        }
        let (Some(topic), Some(p)) = (msg.get(0), msg.get(1)) else {
            r.malformed += 1;
            continue;
        };
        let Some(k) = topic_index(topic, topics) else {
            r.malformed += 1;
            continue;
        };
        if p.len() != size {
            r.malformed += 1;
            continue;
        }
        let seq = u64_at(p, 0);
        if seq < EOS {
            let sent = u64_at(p, 8);
            let intended = u64_at(p, 16);
            let lat = recv_ns.saturating_sub(intended).max(1);
            let raw = recv_ns.saturating_sub(sent).max(1);
            r.lat.saturating_record(lat);
            r.lat_raw.saturating_record(raw);
            r.received += 1;
            let next = r.next[k];
            if !r.idle.is_empty() && seq >= next {
                let gap = prev_intended.and_then(|p| intended.checked_sub(p));
                match r.idle.iter_mut().find(|(g, _, _)| Some(*g) == gap) {
                    Some((_, l, w)) => {
                        l.saturating_record(lat);
                        w.saturating_record(raw);
                    }
                    None => r.idle_unmatched += 1,
                }
                prev_intended = Some(intended);
            }
            if seq == next {
                r.next[k] = seq + 1;
            } else if seq > next {
                r.gap_count += 1;
                r.missing_inside += seq - next;
                if r.gaps.len() < MAX_GAPS_REPORTED {
                    r.gaps.push((k, next, seq - 1));
                }
                r.next[k] = seq + 1;
            } else {
                r.out_of_order += 1;
                r.received -= 1; // not a new tick: keep received + missing == published
            }
        } else if seq == HELLO {
            if hello_left > 0 && !hello_seen[k] {
                hello_seen[k] = true;
                hello_left -= 1;
                if hello_left == 0 {
                    let _ = ready.send(id);
                }
            }
        } else {
            // EOS
            if r.eos_counts[k].is_none() {
                r.eos_counts[k] = Some(u64_at(p, 8));
                r.eos_seen += 1;
                if r.eos_seen == topics {
                    break;
                }
            }
        }
    }
    drop(sock);
    Ok(r)
}

fn make_tick(topic_frames: &[Bytes], k: usize, size: usize, seq: u64, a: u64, b: u64) -> ZmqMessage {
    let mut p = BytesMut::with_capacity(size);
    p.put_u64_le(seq);
    p.put_u64_le(a);
    p.put_u64_le(b);
    p.resize(size, 0xA5);
    let mut m = ZmqMessage::from(topic_frames[k].clone());
    m.push_back(p.freeze());
    m
}

struct PubResult {
    published: u64,
    per_topic: Vec<u64>,
    elapsed_ns: u64,
    behind_max_ns: u64,
    stalls: u64,
    late_ticks: u64,
}

/// The idle feed's schedule: tick i is due `offsets[i]` after the start (a lead-in tick at
/// 0, then `samples` ticks per gap, each `gap` after the one before).
fn idle_offsets(gaps_us: &[u64], samples: u64) -> Vec<u64> {
    let mut offsets = vec![0u64];
    for &g in gaps_us {
        for _ in 0..samples {
            let last = offsets[offsets.len() - 1];
            offsets.push(last + g * 1000);
        }
    }
    offsets
}

async fn publisher(
    mut sock: PubSocket,
    args: Arc<Args>,
    mut ready: mpsc::UnboundedReceiver<usize>,
) -> Result<(PubResult, PubSocket), String> {
    let topics = args.topics;
    let size = args.size;
    let topic_frames: Vec<Bytes> = (0..topics).map(|k| Bytes::from(format!("t{k}"))).collect();

    // Slow-joiner safety: hello on every topic every 10 ms until every SUB has seen one on
    // every topic (which proves its connection and all its subscriptions are in place).
    let hello_deadline = Instant::now() + HELLO_TIMEOUT;
    let mut joined = vec![false; args.subscribers];
    let mut joined_n = 0;
    while joined_n < args.subscribers {
        if Instant::now() >= hello_deadline {
            return Err(format!(
                "only {joined_n} of {} subscribers joined within {:?}",
                args.subscribers, HELLO_TIMEOUT
            ));
        }
        for k in 0..topics {
            let m = make_tick(&topic_frames, k, size, HELLO, now_ns(), 0);
            sock.send(m).await.map_err(|e| format!("publish hello: {e}"))?;
        }
        let wait = tokio::time::sleep(HELLO_INTERVAL);
        tokio::pin!(wait);
        loop {
            tokio::select! {
                _ = &mut wait => break,
                id = ready.recv() => match id {
                    Some(id) => {
                        if id < joined.len() && !joined[id] { joined[id] = true; joined_n += 1; }
                        if joined_n == args.subscribers { break; }
                    }
                    None => return Err("a subscriber ended before joining".into()),
                },
            }
        }
    }

    eprintln!("zmqrs-fanout: {} subscribers connected", args.subscribers);

    let mut per_topic = vec![0u64; topics];
    let duration_ns = (args.duration * 1e9) as u64;
    let t0 = now_ns();
    let end_ns = t0 + duration_ns;
    let mut behind_max_ns = 0u64;
    let (mut stalls, mut late_ticks, mut in_stall) = (0u64, 0u64, false);
    let mut i: u64 = 0;
    let idle = (!args.idle_gaps_us.is_empty()).then(|| idle_offsets(&args.idle_gaps_us, args.idle_samples));
    if args.rate > 0 || idle.is_some() {
        let total = match &idle {
            Some(o) => o.len() as u64,
            None => (args.rate as f64 * args.duration).round() as u64,
        };
        let interval = if args.rate > 0 { 1e9 / args.rate as f64 } else { 0.0 };
        while i < total {
            let intended = match &idle {
                Some(o) => t0 + o[i as usize],
                None => t0 + (i as f64 * interval) as u64,
            };
            // tokio's timer has 1 ms granularity: sleep while more than 2 ms early, then
            // yield (which also lets the SUB tasks and zmq.rs's writer tasks run) until due.
            // The wait is bounded by the ~2 ms left.
            let mut now = now_ns();
            while now < intended {
                let ahead = intended - now;
                if ahead > 2_000_000 {
                    tokio::time::sleep(Duration::from_nanos(ahead - 1_000_000)).await;
                } else {
                    tokio::task::yield_now().await;
                }
                now = now_ns();
            }
            let lag = now - intended;
            behind_max_ns = behind_max_ns.max(lag);
            if lag > STALL_NS {
                late_ticks += 1;
                stalls += u64::from(!in_stall);
                in_stall = true;
            } else {
                in_stall = false;
            }
            let k = (i % topics as u64) as usize;
            let seq = i / topics as u64;
            let m = make_tick(&topic_frames, k, size, seq, now, intended);
            sock.send(m).await.map_err(|e| format!("publish: {e}"))?;
            per_topic[k] += 1;
            i += 1;
        }
    } else {
        loop {
            if i.is_multiple_of(64) {
                if now_ns() >= end_ns {
                    break;
                }
                // zmq.rs's PUB send only enqueues; give its fan-out and writer tasks a turn.
                tokio::task::yield_now().await;
            }
            let k = (i % topics as u64) as usize;
            let seq = i / topics as u64;
            let now = now_ns();
            let m = make_tick(&topic_frames, k, size, seq, now, now);
            sock.send(m).await.map_err(|e| format!("publish: {e}"))?;
            per_topic[k] += 1;
            i += 1;
        }
    }
    let elapsed_ns = now_ns() - t0;

    // End of stream: per topic, the tick count, repeated so a late queue still gets one.
    for _ in 0..EOS_REPEATS {
        for (k, &count) in per_topic.iter().enumerate() {
            let last = count.checked_sub(1).unwrap_or(u64::MAX);
            let m = make_tick(&topic_frames, k, size, EOS, count, last);
            sock.send(m).await.map_err(|e| format!("publish eos: {e}"))?;
        }
        tokio::time::sleep(EOS_INTERVAL).await;
    }
    // The PUB goes back to the caller, which keeps it open until every subscriber is done:
    // dropping it clears its subscriber table at once and would cut off queued EOS ticks.
    Ok((PubResult { published: i, per_topic, elapsed_ns, behind_max_ns, stalls, late_ticks }, sock))
}

/// The histogram's headline numbers; all zero (count 0) when it is empty.
fn pct(h: &Histogram<u64>) -> Latency {
    if h.is_empty() {
        return Latency::default();
    }
    Latency {
        count: h.len(),
        min: h.min(),
        p50: h.value_at_quantile(0.50),
        p90: h.value_at_quantile(0.90),
        p99: h.value_at_quantile(0.99),
        p99_9: h.value_at_quantile(0.999),
        p99_99: h.value_at_quantile(0.9999),
        max: h.max(),
        mean: h.mean().round(),
    }
}

fn us(v: u64) -> String {
    format!("{:.1}", v as f64 / 1000.0)
}

async fn run(args: Arc<Args>) -> Result<ZmqrsRun, String> {
    let (bind_ep, ipc_path) = match args.transport {
        Transport::Tcp => ("tcp://127.0.0.1:0".to_string(), None),
        Transport::Ipc => {
            let nonce = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let path = format!("/tmp/zmqrs-fanout-{}-{nonce}.sock", std::process::id());
            (format!("ipc://{path}"), Some(path))
        }
    };
    let mut pub_sock = PubSocket::new();
    let endpoint = pub_sock.bind(&bind_ep).await.map_err(|e| format!("bind {bind_ep}: {e}"))?.to_string();

    let (ready_tx, ready_rx) = mpsc::unbounded_channel();
    let mut subs = Vec::new();
    let mut stops = Vec::new();
    let gaps_ns = Arc::new(idle_gaps_ns(&args));
    for id in 0..args.subscribers {
        let (stop_tx, stop_rx) = oneshot::channel();
        stops.push(Some(stop_tx));
        subs.push(tokio::spawn(subscriber(
            id,
            endpoint.clone(),
            args.topics,
            args.size,
            Arc::clone(&gaps_ns),
            ready_tx.clone(),
            stop_rx,
        )));
    }
    drop(ready_tx);

    // The publisher runs as a task too (not on the block_on thread), so that with the
    // multi-thread runtime exactly two threads (the workers) do all the work.
    let pub_res = tokio::spawn(publisher(pub_sock, args.clone(), ready_rx))
        .await
        .map_err(|e| format!("publisher task: {e}"))?;
    let (pubr, pub_sock) = match pub_res {
        Ok(p) => p,
        Err(e) => {
            for s in stops.iter_mut().filter_map(Option::take) {
                let _ = s.send(());
            }
            if let Some(p) = ipc_path {
                let _ = std::fs::remove_file(p);
            }
            return Err(e);
        }
    };

    // Subscribers stop on EOS for every topic, or after a 5 s grace.
    let grace_end = tokio::time::Instant::now() + GRACE;
    let mut results = Vec::new();
    for (id, mut h) in subs.into_iter().enumerate() {
        let res = match tokio::time::timeout_at(grace_end, &mut h).await {
            Ok(r) => r,
            Err(_) => {
                if let Some(s) = stops[id].take() {
                    let _ = s.send(());
                }
                h.await
            }
        };
        results.push(res.map_err(|e| format!("subscriber task {id}: {e}"))??);
    }
    drop(pub_sock);
    if let Some(p) = ipc_path {
        let _ = std::fs::remove_file(p);
    }

    let published = pubr.published;
    let mut subs_json = Vec::new();
    for (id, r) in results.iter().enumerate() {
        // The publisher's own counts are the truth; the EOS ticks announce the same.
        let counts: Vec<Option<u64>> = pubr.per_topic.iter().map(|&c| Some(c)).collect();
        let s = subscriber_record(r, &counts);
        if s.received + s.missing != published {
            eprintln!(
                "zmqrs-fanout: subscriber {id}: received {} + missing {} != published {published}",
                s.received, s.missing
            );
        }
        subs_json.push(s);
    }
    let rate_per_s = if pubr.elapsed_ns > 0 { published as f64 * 1e9 / pubr.elapsed_ns as f64 } else { 0.0 };
    Ok(ZmqrsRun {
        stack: "zmq.rs".into(),
        zeromq_crate: "0.7".into(),
        runtime: runtime_name(&args).into(),
        transport: args.transport.name().into(),
        rate: args.rate,
        size: args.size as u64,
        topics: args.topics as u64,
        duration_s: args.duration,
        hwm: args.hwm,
        hwm_effective: ZMQRS_FIXED_QUEUE,
        published,
        rate_per_s: rate_per_s.round() as u64,
        publisher_behind_max_ns: pubr.behind_max_ns,
        stalls: Some(pubr.stalls),
        late_ticks: Some(pubr.late_ticks),
        subscribers: subs_json,
    })
}

/// `--idle-gaps-us` in nanoseconds (empty: no grouping).
fn idle_gaps_ns(args: &Args) -> Vec<u64> {
    args.idle_gaps_us.iter().map(|g| g * 1000).collect()
}

/// What subscriber `r` saw, with the tail up to `counts` (each topic's tick count; `None`
/// where it is not known, so no tail can be counted there).
fn subscriber_record(r: &SubResult, counts: &[Option<u64>]) -> ZmqrsSubscriber {
    let mut gaps: Vec<ZmqrsGap> =
        r.gaps.iter().map(|&(k, first, last)| ZmqrsGap { topic: format!("t{k}"), first, last }).collect();
    let mut gap_count = r.gap_count;
    let mut missing = r.missing_inside;
    let mut eos_mismatch = 0u64;
    for (k, count) in counts.iter().enumerate() {
        let Some(count) = *count else { continue };
        if let Some(c) = r.eos_counts[k] {
            if c != count {
                eos_mismatch += 1;
            }
        }
        if r.next[k] < count {
            gap_count += 1;
            missing += count - r.next[k];
            if gaps.len() < MAX_GAPS_REPORTED {
                gaps.push(ZmqrsGap { topic: format!("t{k}"), first: r.next[k], last: count - 1 });
            }
        }
    }
    ZmqrsSubscriber {
        received: r.received,
        missing,
        gap_count,
        gaps,
        eos_topics: r.eos_seen as u64,
        eos_mismatch,
        stopped_by_grace: r.stopped_by_grace,
        out_of_order: r.out_of_order,
        malformed: r.malformed,
        latency_ns: pct(&r.lat),
        latency_raw_ns: pct(&r.lat_raw),
        idle_gaps: r
            .idle
            .iter()
            .map(|(gap_ns, l, w)| IdleGap {
                gap_ns: *gap_ns,
                count: l.len(),
                latency_ns: pct(l),
                latency_raw_ns: pct(w),
            })
            .collect(),
        idle_unmatched: r.idle_unmatched,
    }
}

/// The transport an endpoint names.
fn transport_of(endpoint: &str) -> &'static str {
    if endpoint.starts_with("ipc://") {
        "ipc"
    } else {
        "tcp"
    }
}

fn runtime_name(args: &Args) -> &'static str {
    match args.runtime {
        Runtime::Multi => "tokio-multi-thread-2",
        Runtime::Current => "tokio-current-thread",
    }
}

/// `--role pub`: the publisher alone; subscribers in other processes say ready and done
/// over a PULL socket.
async fn run_pub(args: Arc<Args>) -> Result<ZmqrsPubRun, String> {
    let bind = args.bind.clone().ok_or("--role pub needs --bind (e.g. tcp://127.0.0.1:5556)")?;
    let ready_bind =
        args.ready_bind.clone().ok_or("--role pub needs --ready-bind (e.g. tcp://127.0.0.1:5557)")?;
    // The ready socket first: a subscriber started once --bind accepts finds it in place.
    let mut pull = PullSocket::new();
    pull.bind(&ready_bind).await.map_err(|e| format!("bind PULL {ready_bind}: {e}"))?;
    let mut pub_sock = PubSocket::new();
    pub_sock.bind(&bind).await.map_err(|e| format!("bind PUB {bind}: {e}"))?;
    eprintln!("zmqrs-fanout: bound {bind}");
    let (ready_tx, ready_rx) = mpsc::unbounded_channel();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<()>();
    // Each subscriber process says `ready` once and `done` once; ids in arrival order.
    let forward = tokio::spawn(async move {
        let mut next_id = 0usize;
        while let Ok(m) = pull.recv().await {
            match m.get(0).map(|f| f.as_ref()) {
                Some(b"ready") => {
                    let _ = ready_tx.send(next_id);
                    next_id += 1;
                }
                Some(b"done") => {
                    let _ = done_tx.send(());
                }
                _ => {}
            }
        }
    });
    let (pubr, pub_sock) = publisher(pub_sock, Arc::clone(&args), ready_rx).await?;
    let grace_end = tokio::time::Instant::now() + GRACE;
    let mut done = 0u64;
    while done < args.subscribers as u64 {
        match tokio::time::timeout_at(grace_end, done_rx.recv()).await {
            Ok(Some(())) => done += 1,
            _ => break,
        }
    }
    drop(pub_sock);
    forward.abort();
    Ok(ZmqrsPubRun {
        stack: "zmq.rs".into(),
        role: "pub".into(),
        zeromq_crate: "0.7".into(),
        runtime: runtime_name(&args).into(),
        transport: transport_of(&bind).into(),
        rate: args.rate,
        size: args.size as u64,
        topics: args.topics as u64,
        duration_s: args.duration,
        subscribers: args.subscribers as u64,
        published: pubr.published,
        rate_per_s: if pubr.elapsed_ns > 0 {
            (pubr.published as f64 * 1e9 / pubr.elapsed_ns as f64).round() as u64
        } else {
            0
        },
        elapsed_ns: pubr.elapsed_ns,
        publisher_behind_max_ns: pubr.behind_max_ns,
        stalls: pubr.stalls,
        late_ticks: pubr.late_ticks,
        done,
    })
}

/// `--role sub`: one subscriber; says ready (hello seen on every topic) and done over a
/// PUSH to the publisher's --ready-bind.
async fn run_sub(args: Arc<Args>) -> Result<(ZmqrsSubRun, bool), String> {
    let connect = args.connect.clone().ok_or("--role sub needs --connect (the publisher's --bind)")?;
    let ready_ep = args.ready.clone().ok_or("--role sub needs --ready (the publisher's --ready-bind)")?;
    if !(args.timeout_s.is_finite() && args.timeout_s > 0.0) {
        return Err("--timeout-s must be a positive number of seconds".into());
    }
    let mut push = PushSocket::new();
    push.connect(&ready_ep).await.map_err(|e| format!("connect PUSH {ready_ep}: {e}"))?;
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = oneshot::channel();
    let gaps_ns = Arc::new(idle_gaps_ns(&args));
    let mut sub =
        tokio::spawn(subscriber(0, connect.clone(), args.topics, args.size, gaps_ns, ready_tx, stop_rx));
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(args.timeout_s);
    let mut said_ready = false;
    let res = loop {
        tokio::select! {
            r = &mut sub => break r,
            id = ready_rx.recv(), if !said_ready => {
                if id.is_some() {
                    said_ready = true;
                    push.send(ZmqMessage::from("ready")).await.map_err(|e| format!("send ready to {ready_ep}: {e}"))?;
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                let _ = stop_tx.send(());
                break (&mut sub).await;
            }
        }
    };
    let r = res.map_err(|e| format!("subscriber task: {e}"))??;
    let _ = push.send(ZmqMessage::from("done")).await;
    // zmq.rs 0.7's send only queues the message for a writer task: give that task a bounded
    // moment to write it before the runtime shuts down, or the publisher waits out its grace.
    tokio::time::sleep(DONE_LINGER).await;
    let counts = r.eos_counts.clone();
    let complete = counts.iter().all(Option::is_some);
    let published = counts.iter().flatten().sum();
    let s = subscriber_record(&r, &counts);
    if !complete {
        eprintln!(
            "zmqrs-fanout: timed out after {} s: end-of-stream ticks for {} of {} topics from {connect}; is the publisher running?",
            args.timeout_s, s.eos_topics, args.topics
        );
    }
    let run = ZmqrsSubRun {
        stack: "zmq.rs".into(),
        role: "sub".into(),
        zeromq_crate: "0.7".into(),
        runtime: runtime_name(&args).into(),
        transport: transport_of(&connect).into(),
        topics: args.topics as u64,
        published,
        complete,
        subscriber: s,
    };
    Ok((run, complete))
}

fn human(v: &ZmqrsRun) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "zmq.rs fan-out ({}): {} -> {} subscribers, {} topics, {} B, rate {} (achieved {}/s), {} s",
        v.runtime,
        v.transport,
        v.subscribers.len(),
        v.topics,
        v.size,
        if v.rate == 0 { "max".to_string() } else { format!("{}/s", v.rate) },
        v.rate_per_s,
        v.duration_s,
    );
    let _ = writeln!(
        o,
        "published {} ticks; publisher at most {} us behind schedule",
        v.published,
        us(v.publisher_behind_max_ns)
    );
    let _ = writeln!(
        o,
        "sub  received    missing  lat us p50 / p90 / p99 / p99.9 / max (corrected; raw p50 / p99)"
    );
    for (i, s) in v.subscribers.iter().enumerate() {
        let (l, r) = (&s.latency_ns, &s.latency_raw_ns);
        let f = |x: u64| if l.count == 0 { "-".into() } else { us(x) };
        let _ = writeln!(
            o,
            "{i:>3} {:>9} {:>10}  {} / {} / {} / {} / {}  (raw {} / {})",
            s.received,
            s.missing,
            f(l.p50),
            f(l.p90),
            f(l.p99),
            f(l.p99_9),
            f(l.max),
            f(r.p50),
            f(r.p99),
        );
        for gap in s.gaps.iter().take(5) {
            let _ = writeln!(o, "      gap {} {}..{}", gap.topic, gap.first, gap.last);
        }
        if s.stopped_by_grace {
            let _ =
                writeln!(o, "      (no EOS on every topic: stopped after the {} s grace)", GRACE.as_secs());
        }
    }
    o.truncate(o.trim_end().len());
    o
}

fn main() {
    let args = Args::parse();
    if args.size < HEADER {
        eprintln!("zmqrs-fanout: --size must be at least {HEADER} (the tick header)");
        std::process::exit(2);
    }
    if args.subscribers == 0 || args.topics == 0 || args.duration.is_nan() || args.duration <= 0.0 {
        eprintln!("zmqrs-fanout: --subscribers, --topics and --duration must be positive");
        std::process::exit(2);
    }
    if let Some(h) = args.hwm {
        eprintln!(
            "zmqrs-fanout: zmq.rs 0.7 has no HWM option; --hwm {h} ignored (its PUB queues are fixed at {ZMQRS_FIXED_QUEUE} messages)"
        );
    }
    // Runtime: zmq.rs does its I/O in tokio tasks (a fan-out task and a writer task per
    // subscriber on the PUB side; each SUB reads its connections inside recv()). Default:
    // the current-thread runtime. Measured here at 100k ticks/s, 64 B, 8 topics, idle
    // machine, it gave p99 30-170 us (1-4 SUBs, ipc and tcp) where the multi-thread runtime
    // with 2 workers gave 1-5 ms: the pacing publisher keeps one worker spinning, so both
    // cores are busy and any other thread (kernel work, the other worker) preempts one of
    // them for a scheduler tick, while current-thread leaves the second core to the kernel's
    // loopback work. `--runtime multi` is kept for comparison.
    let rt = match args.runtime {
        Runtime::Multi => tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build(),
        Runtime::Current => tokio::runtime::Builder::new_current_thread().enable_all().build(),
    }
    .expect("tokio runtime");
    if args.idle_gaps_us.iter().any(|&g| g == 0 || g > 60_000_000) || args.idle_gaps_us.len() > 64 {
        eprintln!("zmqrs-fanout: --idle-gaps-us takes up to 64 gaps of 1 to 60,000,000 us");
        std::process::exit(2);
    }
    let args = Arc::new(args);
    let json_out = args.json;
    let role = args.role;
    let res: Result<(String, u8), String> = rt.block_on(async move {
        match role {
            Role::InProcess => run(args).await.map(|v| {
                let text = if json_out { to_json(&v) } else { human(&v) };
                (text, 0)
            }),
            Role::Pub => run_pub(args).await.map(|v| (to_json(&v), 0)),
            Role::Sub => run_sub(args).await.map(|(v, complete)| (to_json(&v), if complete { 0 } else { 4 })),
        }
    });
    // Do not wait for zmq.rs's background tasks (reconnect loops, accept loops).
    rt.shutdown_timeout(Duration::from_millis(100));
    match res {
        Ok((text, code)) => {
            println!("{text}");
            std::process::exit(i32::from(code));
        }
        Err(e) => {
            eprintln!("zmqrs-fanout: {e}");
            std::process::exit(1);
        }
    }
}

/// One line of JSON; the records hold no map, so this cannot fail (if it did, the line
/// says why).
fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v)
        .unwrap_or_else(|e| format!("{{\"error\":\"cannot write the JSON record: {e}\"}}"))
}
