//! `run`: one run of `scripts/fair-fanout.sh`. It starts the variant's processes (a
//! publisher and N subscribers, or one process holding both), waits for them with a bound
//! (killing every one left at the timeout), samples each thread's CPU share mid-run from
//! /proc, reaps every process with its resource usage and prints one [`FairRun`] line.
//!
//! Resource usage comes from `wait4` through GNU time (`/usr/bin/time -f ... -o FILE`),
//! which reaps the program and writes its rusage: user and system seconds, voluntary and
//! involuntary context switches, peak RSS. The one extra process costs nothing while the
//! program runs (it blocks in `wait4`), and keeps this tool free of `unsafe`.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use ztick::metrics::LatencySummary;

use crate::fair::{worst_of, CpuCost, FairRun, IdleGapRow, ProcessUsage, ThreadShare};
use crate::schema::fanout::FanoutJson;
use crate::zmqrs_report::{IdleGap, ZmqrsPubRun, ZmqrsRun, ZmqrsSubRun};

/// The format asked of GNU time: elapsed, user, system, voluntary and involuntary context
/// switches, peak RSS (KiB).
const TIME_FORMAT: &str = "%e %U %S %w %c %M";
/// USER_HZ: the unit of /proc's `utime` and `stime` (100 on every Linux ABI in use).
const CLOCK_TICKS_PER_S: f64 = 100.0;
/// A thread that used this share of a core between the samples is counted as spinning.
const SPIN_SHARE: f64 = 0.8;
/// How long a publisher may take to say it is bound.
const BIND_WAIT: Duration = Duration::from_secs(10);
/// How often the publisher's stderr is read for its "bound" line while starting (never
/// during the measured part of the run).
const BIND_POLL: Duration = Duration::from_millis(5);

/// What to run: the variant, the cell, and where the programs are.
#[derive(Debug, Clone)]
pub(crate) struct RunSpec {
    /// `ztick-in`, `ztick-x`, `c-x`, `c-coalesced-x`, `zmqrs-x` or `zmqrs-in`.
    pub(crate) stack: String,
    /// The strategy label, tabled as its own row.
    pub(crate) label: Option<String>,
    /// `ipc` or `tcp`.
    pub(crate) transport: String,
    /// Subscribers.
    pub(crate) subscribers: u64,
    /// The round, from 1.
    pub(crate) round: u64,
    /// Ticks per second.
    pub(crate) rate: u64,
    /// Payload bytes per tick.
    pub(crate) size: u64,
    /// Topics.
    pub(crate) topics: u64,
    /// Seconds of publishing.
    pub(crate) duration_s: f64,
    /// Idle feed instead of the paced one: the gaps, in microseconds.
    pub(crate) idle_gaps_us: Vec<u64>,
    /// Ticks after each idle gap.
    pub(crate) idle_samples: u64,
    /// Coalescing window of `c-coalesced-x`, in microseconds.
    pub(crate) coalesce_us: u64,
    /// Kill every process still running after this many seconds.
    pub(crate) timeout_s: f64,
    /// The `ztick` binary.
    pub(crate) ztick: PathBuf,
    /// The `zmqrs-fanout` binary.
    pub(crate) zmqrs: PathBuf,
    /// The directory of `fanout_pub` and `fanout_sub`.
    pub(crate) c_dir: PathBuf,
    /// Extra flags for the publisher (or the one process of an in-process run).
    pub(crate) pub_args: Vec<String>,
    /// Extra flags for every subscriber process.
    pub(crate) sub_args: Vec<String>,
    /// Where each process's stdout, stderr and rusage go (one directory per run).
    pub(crate) work_dir: PathBuf,
}

impl RunSpec {
    fn in_process(&self) -> bool {
        self.stack.ends_with("-in")
    }

    fn idle(&self) -> bool {
        !self.idle_gaps_us.is_empty()
    }

    fn gaps_flag(&self) -> String {
        self.idle_gaps_us.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
    }
}

/// One started process.
struct Proc {
    /// GNU time, running the program; taken by its reaper thread in `wait_all`.
    child: Option<std::process::Child>,
    role: String,
    command: Vec<String>,
    pid: u32,
    out: PathBuf,
    err: PathBuf,
    usage: PathBuf,
    started: Instant,
}

/// One process after it ended.
struct Ended {
    usage: ProcessUsage,
    stdout: String,
    stderr: String,
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

/// A loopback TCP port free right now (the kernel's pick; the run binds it moments later).
fn free_port() -> Result<u16, String> {
    let l =
        std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot find a free port: {e}"))?;
    l.local_addr().map(|a| a.port()).map_err(|e| format!("cannot find a free port: {e}"))
}

/// A fresh endpoint of `transport`: an ipc socket in `dir`, or a free loopback port.
fn endpoint(transport: &str, dir: &Path, name: &str) -> Result<String, String> {
    match transport {
        "ipc" => Ok(format!("ipc://{}", dir.join(format!("{name}.ipc")).display())),
        "tcp" => Ok(format!("tcp://127.0.0.1:{}", free_port()?)),
        other => Err(format!("transport {other}: expected ipc or tcp")),
    }
}

/// Starts `command` under GNU time in its own process group, output into `dir`.
fn spawn(role: &str, command: Vec<String>, dir: &Path) -> Result<Proc, String> {
    let out = dir.join(format!("{role}.out"));
    let err = dir.join(format!("{role}.err"));
    let usage = dir.join(format!("{role}.rusage"));
    let file = |p: &Path| File::create(p).map_err(|e| format!("cannot create {}: {e}", p.display()));
    let child = Command::new("/usr/bin/time")
        .arg("-f")
        .arg(TIME_FORMAT)
        .arg("-o")
        .arg(&usage)
        .args(&command)
        .stdin(Stdio::null())
        .stdout(file(&out)?)
        .stderr(file(&err)?)
        .process_group(0)
        .spawn()
        .map_err(|e| {
            format!("cannot start {} under /usr/bin/time (apt-get install time): {e}", command.join(" "))
        })?;
    let pid = child.id();
    Ok(Proc {
        child: Some(child),
        role: role.to_owned(),
        command,
        pid,
        out,
        err,
        usage,
        started: Instant::now(),
    })
}

/// Waits until `proc`'s stderr holds `marker` (its "bound" line), at most [`BIND_WAIT`].
fn wait_for_marker(proc: &Proc, marker: &str) -> Result<(), String> {
    let deadline = Instant::now() + BIND_WAIT;
    loop {
        if std::fs::read_to_string(&proc.err).is_ok_and(|t| t.contains(marker)) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{} did not say '{marker}' within {BIND_WAIT:?} ({})",
                proc.role,
                proc.command.join(" ")
            ));
        }
        std::thread::sleep(BIND_POLL);
    }
}

/// CPU ticks (utime + stime) and name of every thread of the program `time_pid` runs.
fn thread_ticks(time_pid: u32) -> Vec<(u32, String, u64)> {
    let children =
        std::fs::read_to_string(format!("/proc/{time_pid}/task/{time_pid}/children")).unwrap_or_default();
    let Some(pid) = children.split_whitespace().next() else { return Vec::new() };
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    let mut out = Vec::new();
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else { continue };
        // "tid (comm) state ppid ...": comm may hold spaces, so split at the last ')'.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
        let name = stat[open + 1..close].to_owned();
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        // After the comm: state is field 3 of the line, utime 14 and stime 15.
        let tick = |i: usize| fields.get(i - 3).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        let tid = task.file_name().to_string_lossy().parse().unwrap_or(0);
        out.push((tid, name, tick(14) + tick(15)));
    }
    out
}

/// Each thread's share of a core between two samples `wall` apart.
fn shares(
    role: &str,
    a: &[(u32, String, u64)],
    b: &[(u32, String, u64)],
    wall: Duration,
) -> Vec<ThreadShare> {
    let secs = wall.as_secs_f64();
    b.iter()
        .filter_map(|(tid, name, t1)| {
            let t0 = a.iter().find(|(t, _, _)| t == tid).map(|(_, _, t)| *t)?;
            Some(ThreadShare {
                process: role.to_owned(),
                name: name.clone(),
                cpu_share: if secs > 0.0 {
                    t1.saturating_sub(t0) as f64 / CLOCK_TICKS_PER_S / secs
                } else {
                    0.0
                },
            })
        })
        .collect()
}

/// Kills `proc`'s process group (GNU time and the program under it).
fn kill_group(pid: u32) {
    let _ = Command::new("kill").args(["-KILL", "--", &format!("-{pid}")]).stderr(Stdio::null()).status();
}

/// The rusage line GNU time wrote (the last line: a killed program's file starts with
/// "Command terminated by signal N").
fn parse_usage(text: &str) -> Option<(f64, f64, f64, u64, u64, u64)> {
    let line = text.lines().rev().find(|l| !l.trim().is_empty())?;
    let v: Vec<&str> = line.split_whitespace().collect();
    if v.len() != 6 {
        return None;
    }
    Some((
        v[0].parse().ok()?,
        v[1].parse().ok()?,
        v[2].parse().ok()?,
        v[3].parse().ok()?,
        v[4].parse().ok()?,
        v[5].parse().ok()?,
    ))
}

/// Waits for every process (each reaped by its own thread, so nothing polls), samples
/// the threads' CPU at a third and two thirds of the feed, kills whatever is left at
/// `timeout`, and returns what each left behind, with the threads' shares.
fn wait_all(mut procs: Vec<Proc>, spec: &RunSpec) -> (Vec<Ended>, Vec<ThreadShare>) {
    let (tx, rx) = mpsc::channel::<(usize, Option<i32>)>();
    for (i, p) in procs.iter_mut().enumerate() {
        let Some(mut child) = p.child.take() else { continue };
        let tx = tx.clone();
        std::thread::spawn(move || {
            let code = child.wait().ok().map(|s| {
                use std::os::unix::process::ExitStatusExt;
                s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0))
            });
            let _ = tx.send((i, code));
        });
    }
    drop(tx);
    let start = procs.iter().map(|p| p.started).min().unwrap_or_else(Instant::now);
    let feed = if spec.idle() {
        Duration::from_micros(spec.idle_gaps_us.iter().sum::<u64>() * spec.idle_samples)
    } else {
        Duration::from_secs_f64(spec.duration_s)
    };
    // The feed starts once every subscriber has joined (a few hundred ms at most here).
    let lead_in = Duration::from_millis(300);
    let samples = [start + lead_in + feed / 3, start + lead_in + feed * 2 / 3];
    let deadline = start + Duration::from_secs_f64(spec.timeout_s);
    // After the kill, how long the reapers get before the run gives up on them.
    let mut give_up: Option<Instant> = None;
    let mut codes: Vec<Option<Option<i32>>> = vec![None; procs.len()];
    let mut ended_at: Vec<Option<Instant>> = vec![None; procs.len()];
    let mut killed = vec![false; procs.len()];
    let (mut taken, mut before, mut t_before) = (0usize, Vec::new(), start);
    let mut threads = Vec::new();
    let mut left = procs.len();
    while left > 0 {
        let now = Instant::now();
        if taken < samples.len() && now >= samples[taken] {
            let ticks: Vec<_> = procs.iter().map(|p| thread_ticks(p.pid)).collect();
            if taken == 0 {
                (before, t_before) = (ticks, now);
            } else {
                for (i, p) in procs.iter().enumerate() {
                    threads.extend(shares(&p.role, &before[i], &ticks[i], now - t_before));
                }
            }
            taken += 1;
            continue;
        }
        if now >= deadline && give_up.is_none() {
            for (i, p) in procs.iter().enumerate() {
                if codes[i].is_none() {
                    killed[i] = true;
                    kill_group(p.pid);
                }
            }
            give_up = Some(now + Duration::from_secs(5));
        }
        let until = match give_up {
            Some(g) => g,
            None if taken < samples.len() => samples[taken].min(deadline),
            None => deadline,
        };
        if give_up.is_some() && now >= until {
            break;
        }
        match rx.recv_timeout(until.saturating_duration_since(now)) {
            Ok((i, code)) => {
                codes[i] = Some(code);
                ended_at[i] = Some(Instant::now());
                left -= 1;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let ended = procs
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let read = |f: &Path| std::fs::read_to_string(f).unwrap_or_default();
            let (wall, user, sys, vcsw, ivcsw, rss) = parse_usage(&read(&p.usage)).unwrap_or_default();
            let wall_s = ended_at[i].map_or(wall, |e| (e - p.started).as_secs_f64());
            Ended {
                usage: ProcessUsage {
                    role: p.role,
                    command: p.command,
                    exit: codes[i].flatten(),
                    killed: killed[i],
                    wall_s,
                    user_s: user,
                    sys_s: sys,
                    vcsw,
                    ivcsw,
                    max_rss_kb: rss,
                },
                stdout: read(&p.out),
                stderr: read(&p.err),
            }
        })
        .collect();
    (ended, threads)
}

/// What a publisher reported.
#[derive(Debug, Default)]
struct PubOut {
    published: u64,
    rate_per_s: f64,
    stalls: Option<u64>,
    late_ticks: Option<u64>,
    max_lag_ns: Option<u64>,
    libzmq: Option<String>,
}

/// What one subscriber reported.
#[derive(Debug, Default)]
struct SubOut {
    expected: u64,
    received: u64,
    missing: u64,
    latency: Option<LatencySummary>,
    raw: Option<LatencySummary>,
    idle: Vec<IdleGapRow>,
}

/// `fanout_pub`'s JSON line.
#[derive(Debug, Deserialize)]
struct CPub {
    libzmq: String,
    published: u64,
    rate_per_s: f64,
    stalls: u64,
    late_ticks: u64,
    max_lag_ns: u64,
}

/// `fanout_sub`'s JSON line.
#[derive(Debug, Deserialize)]
struct CSub {
    published: u64,
    received: u64,
    missing: u64,
    latency_ns: LatencySummary,
    latency_raw_ns: LatencySummary,
    #[serde(default)]
    idle_gaps: Vec<IdleGapRow>,
}

/// `ztick fanout --role pub --json`.
#[derive(Debug, Deserialize)]
struct ZtickPub {
    published: u64,
    rate_per_s: f64,
    publisher: ZtickPubFigures,
}

/// The publisher's figures in `ztick fanout --role pub --json`.
#[derive(Debug, Deserialize)]
struct ZtickPubFigures {
    stalls: u64,
    max_lag_ns: u64,
}

fn seen(s: LatencySummary) -> Option<LatencySummary> {
    (s.count > 0).then_some(s)
}

fn idle_rows(gaps: &[IdleGap]) -> Vec<IdleGapRow> {
    gaps.iter()
        .map(|g| IdleGapRow {
            gap_ns: g.gap_ns,
            count: g.count,
            latency_ns: g.latency_ns.into(),
            latency_raw_ns: g.latency_raw_ns.into(),
        })
        .collect()
}

/// The last line of `stdout` that parses as `T`.
fn last_json<T: serde::de::DeserializeOwned>(stdout: &str, what: &str) -> Result<T, String> {
    let mut last_err = format!("{what} printed no JSON line");
    for line in stdout.lines().rev().filter(|l| l.trim_start().starts_with('{')) {
        match serde_json::from_str(line) {
            Ok(v) => return Ok(v),
            Err(e) => last_err = format!("{what}: not the JSON expected: {e}"),
        }
    }
    Err(last_err)
}

fn ztick_subs(j: &FanoutJson) -> Vec<SubOut> {
    j.subscribers
        .iter()
        .map(|s| SubOut {
            expected: s.expected,
            received: s.received,
            missing: s.missing,
            latency: seen(s.latency_ns),
            raw: seen(s.latency_raw_ns),
            idle: s.idle_gaps.clone(),
        })
        .collect()
}

/// A process to start: its role and its command line.
type RoleCommand = (String, Vec<String>);

/// The commands of the run: (role, command) pairs, publisher first, and the stderr marker
/// that says the publisher is bound (`None`: the subscribers may start at once).
fn commands(spec: &RunSpec, dir: &Path) -> Result<(Vec<RoleCommand>, Option<&'static str>), String> {
    let n = spec.subscribers.to_string();
    let cell = |size: u64| {
        let mut v =
            vec!["--topics".to_owned(), spec.topics.to_string(), "--size".to_owned(), size.to_string()];
        if spec.idle() {
            v.extend(["--idle-gaps-us".to_owned(), spec.gaps_flag()]);
            v.extend(["--idle-samples".to_owned(), spec.idle_samples.to_string()]);
        } else {
            v.extend(["--rate".to_owned(), spec.rate.to_string()]);
            v.extend(["--duration".to_owned(), spec.duration_s.to_string()]);
        }
        v
    };
    let gaps_sub =
        || if spec.idle() { vec!["--idle-gaps-us".to_owned(), spec.gaps_flag()] } else { Vec::new() };
    let timeout_s = spec.timeout_s.ceil() as u64;
    let ztick = spec.ztick.display().to_string();
    let zmqrs = spec.zmqrs.display().to_string();
    // zmq.rs's --size counts its 24-byte header: give it the same payload as the others.
    let zmqrs_size = spec.size.max(1) + 24;
    let subs = |make: &dyn Fn() -> Vec<String>| -> Vec<(String, Vec<String>)> {
        (1..=spec.subscribers)
            .map(|i| {
                let mut c = make();
                c.extend(spec.sub_args.iter().cloned());
                (format!("sub{i}"), c)
            })
            .collect()
    };
    let with_pub_args = |mut c: Vec<String>| {
        c.extend(spec.pub_args.iter().cloned());
        c
    };
    let mut out = Vec::new();
    let marker = match spec.stack.as_str() {
        "ztick-in" => {
            let mut c =
                strings(&[&ztick, "fanout", "--transport", &spec.transport, "--subscribers", &n, "--json"]);
            c.extend(cell(spec.size));
            out.push(("embedded".to_owned(), with_pub_args(c)));
            None
        }
        "zmqrs-in" => {
            let mut c = strings(&[&zmqrs, "--transport", &spec.transport, "--subscribers", &n, "--json"]);
            c.extend(cell(zmqrs_size));
            out.push(("embedded".to_owned(), with_pub_args(c)));
            None
        }
        "ztick-x" => {
            let feed = endpoint(&spec.transport, dir, "feed")?;
            let side = format!("tcp://127.0.0.1:{}", free_port()?);
            let mut c =
                strings(&[&ztick, "fanout", "--role", "pub", "--bind", &feed, "--snapshot-bind", &side]);
            c.extend(strings(&["--subscribers", &n, "--json"]));
            c.extend(cell(spec.size));
            out.push(("pub".to_owned(), with_pub_args(c)));
            let timeout_ms = (timeout_s * 1000).to_string();
            out.extend(subs(&|| {
                let mut c =
                    strings(&[&ztick, "fanout", "--role", "sub", "--connect", &feed, "--snapshot", &side]);
                c.extend(strings(&["--timeout-ms", &timeout_ms, "--json"]));
                c.extend(gaps_sub());
                c
            }));
            None
        }
        "c-x" | "c-coalesced-x" => {
            let coalesced = spec.stack == "c-coalesced-x";
            let feed = endpoint(&spec.transport, dir, "feed")?;
            let bin = |p: &str| spec.c_dir.join(p).display().to_string();
            let mut c = strings(&[&bin("fanout_pub"), "--bind", &feed, "--subscribers", &n]);
            c.extend(cell(spec.size));
            if coalesced {
                c.extend(["--coalesce-us".to_owned(), spec.coalesce_us.to_string()]);
            }
            out.push(("pub".to_owned(), with_pub_args(c)));
            out.extend(subs(&|| {
                let mut c =
                    strings(&[&bin("fanout_sub"), "--connect", &feed, "--topics", &spec.topics.to_string()]);
                c.extend(strings(&["--size", &spec.size.to_string(), "--timeout-s", &timeout_s.to_string()]));
                if coalesced {
                    c.push("--coalesced".to_owned());
                }
                c.extend(gaps_sub());
                c
            }));
            Some("bound")
        }
        "zmqrs-x" => {
            let feed = endpoint(&spec.transport, dir, "feed")?;
            let ready = endpoint(&spec.transport, dir, "ready")?;
            let mut c = strings(&[&zmqrs, "--role", "pub", "--bind", &feed, "--ready-bind", &ready]);
            c.extend(strings(&["--subscribers", &n]));
            c.extend(cell(zmqrs_size));
            out.push(("pub".to_owned(), with_pub_args(c)));
            out.extend(subs(&|| {
                let mut c = strings(&[&zmqrs, "--role", "sub", "--connect", &feed, "--ready", &ready]);
                c.extend(strings(&["--topics", &spec.topics.to_string(), "--size", &zmqrs_size.to_string()]));
                c.extend(strings(&["--timeout-s", &timeout_s.to_string()]));
                c.extend(gaps_sub());
                c
            }));
            Some("bound")
        }
        other => {
            return Err(format!(
                "unknown stack {other}: expected ztick-in, ztick-x, c-x, c-coalesced-x, zmqrs-x or zmqrs-in"
            ))
        }
    };
    Ok((out, marker))
}

/// What each stack's threads are, for the table's note; the measured shares follow.
fn stack_note(stack: &str) -> &'static str {
    match stack {
        "ztick-in" => "one process: the publisher's worker, one worker per subscriber and libzmq's I/O thread; idle strategies as `ztick info` recommends",
        "ztick-x" => "one publisher process (its worker, libzmq's I/O thread) and one process per subscriber (a worker, libzmq's I/O thread)",
        "c-x" => "fanout_pub: one thread sleeping to absolute deadlines plus libzmq's I/O thread; each fanout_sub: one thread blocked in zmq_msg_recv plus libzmq's I/O thread",
        "c-coalesced-x" => "as c-x, the publisher waking once per coalescing window",
        "zmqrs-x" => "one tokio current-thread runtime per process (publisher: yields instead of sleeping in the last 2 ms before each tick)",
        "zmqrs-in" => "one tokio current-thread runtime for the publisher and every subscriber (it yields instead of sleeping in the last 2 ms before each tick)",
        _ => "",
    }
}

/// The note with the measured spinners.
fn threads_note(stack: &str, threads: &[ThreadShare]) -> String {
    let spinning: Vec<String> = threads
        .iter()
        .filter(|t| t.cpu_share >= SPIN_SHARE)
        .map(|t| format!("{}/{} {:.0} %", t.process, t.name, t.cpu_share * 100.0))
        .collect();
    let measured = if threads.is_empty() {
        "threads not sampled".to_owned()
    } else if spinning.is_empty() {
        "no thread used 80 % of a core mid-run".to_owned()
    } else {
        format!("busy (80 % of a core or more) mid-run: {}", spinning.join(", "))
    };
    format!("{}; {measured}", stack_note(stack))
}

/// Runs `spec` once and returns its record (a failed run is a record with `error` set).
pub(crate) fn run(spec: &RunSpec) -> FairRun {
    let t0 = Instant::now();
    let mut record = FairRun {
        bench: if spec.idle() { "idle" } else { "rate" }.to_owned(),
        stack: spec.stack.clone(),
        label: spec.label.clone(),
        placement: if spec.in_process() { "in-process" } else { "cross-process" }.to_owned(),
        transport: spec.transport.clone(),
        subscribers: spec.subscribers,
        round: spec.round,
        rate: if spec.idle() { 0 } else { spec.rate },
        size: spec.size,
        topics: spec.topics,
        duration_s: spec.duration_s,
        published: 0,
        rate_per_s: 0.0,
        expected: 0,
        missing: 0,
        latency_ns: None,
        latency_raw_ns: None,
        subscriber_latency_ns: Vec::new(),
        stalls: None,
        late_ticks: None,
        max_lag_ns: None,
        cpu: CpuCost::default(),
        processes: Vec::new(),
        threads: Vec::new(),
        threads_note: stack_note(&spec.stack).to_owned(),
        idle_gaps: Vec::new(),
        wall_s: 0.0,
        libzmq: None,
        error: None,
    };
    if let Err(e) = std::fs::create_dir_all(&spec.work_dir) {
        record.error = Some(format!("cannot create {}: {e}", spec.work_dir.display()));
        return record;
    }
    let (cmds, marker) = match commands(spec, &spec.work_dir) {
        Ok(c) => c,
        Err(e) => {
            record.error = Some(e);
            return record;
        }
    };
    let mut procs = Vec::new();
    let mut error = None;
    for (i, (role, cmd)) in cmds.into_iter().enumerate() {
        match spawn(&role, cmd, &spec.work_dir) {
            Ok(p) => {
                if i == 0 {
                    if let Some(m) = marker {
                        if let Err(e) = wait_for_marker(&p, m) {
                            error = Some(e);
                            procs.push(p);
                            break;
                        }
                    }
                }
                procs.push(p);
            }
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    if error.is_some() {
        for p in &procs {
            kill_group(p.pid);
        }
    }
    let (ended, threads) = wait_all(procs, spec);
    record.wall_s = t0.elapsed().as_secs_f64();
    record.threads_note = threads_note(&spec.stack, &threads);
    record.threads = threads;
    let outcome = parse_outputs(spec, &ended);
    record.processes = ended.into_iter().map(|e| e.usage).collect();
    match outcome {
        Ok((p, subs)) => {
            let n = spec.subscribers as usize;
            record.published = p.published;
            record.rate_per_s = p.rate_per_s;
            record.stalls = p.stalls;
            record.late_ticks = p.late_ticks;
            record.max_lag_ns = p.max_lag_ns;
            record.libzmq = p.libzmq;
            // A subscriber that reported nothing owes every tick published.
            let silent = n.saturating_sub(subs.len()) as u64;
            record.expected = subs.iter().map(|s| s.expected).sum::<u64>() + silent * p.published;
            record.missing = subs.iter().map(|s| s.missing).sum::<u64>() + silent * p.published;
            let lat: Vec<LatencySummary> = subs.iter().filter_map(|s| s.latency).collect();
            let raw: Vec<LatencySummary> = subs.iter().filter_map(|s| s.raw).collect();
            record.latency_ns = worst_of(&lat);
            record.latency_raw_ns = worst_of(&raw);
            record.subscriber_latency_ns = lat;
            record.idle_gaps = worst_gaps(&subs);
            let received: u64 = subs.iter().map(|s| s.received).sum();
            if error.is_none() && silent > 0 {
                error = Some(format!(
                    "{silent} of {n} subscribers reported nothing (received {received} in all)"
                ));
            }
        }
        Err(e) => {
            error = error.or(Some(e));
        }
    }
    record.cpu = CpuCost::of(&record.processes, record.published);
    if error.is_none() {
        if let Some(p) = record.processes.iter().find(|p| p.killed) {
            error = Some(format!("{} killed after the {} s timeout", p.role, spec.timeout_s));
        }
    }
    record.error = error;
    let _ = std::fs::remove_file(spec.work_dir.join("feed.ipc"));
    let _ = std::fs::remove_file(spec.work_dir.join("ready.ipc"));
    record
}

/// Per gap, the worst subscriber's figures.
fn worst_gaps(subs: &[SubOut]) -> Vec<IdleGapRow> {
    let Some(first) = subs.iter().find(|s| !s.idle.is_empty()) else { return Vec::new() };
    first
        .idle
        .iter()
        .map(|g| {
            let same: Vec<&IdleGapRow> =
                subs.iter().flat_map(|s| s.idle.iter()).filter(|o| o.gap_ns == g.gap_ns).collect();
            let lat: Vec<LatencySummary> = same.iter().map(|o| o.latency_ns).collect();
            let raw: Vec<LatencySummary> = same.iter().map(|o| o.latency_raw_ns).collect();
            IdleGapRow {
                gap_ns: g.gap_ns,
                count: same.iter().map(|o| o.count).min().unwrap_or(0),
                latency_ns: worst_of(&lat).unwrap_or_default(),
                latency_raw_ns: worst_of(&raw).unwrap_or_default(),
            }
        })
        .collect()
}

/// The publisher's and the subscribers' reports, from the processes' stdout. A subscriber
/// that printed nothing usable is left out (the caller counts what it owed as missing).
fn parse_outputs(spec: &RunSpec, ended: &[Ended]) -> Result<(PubOut, Vec<SubOut>), String> {
    let first = ended.first().ok_or("no process started")?;
    let why = |e: &Ended, err: String| {
        let tail: String = e.stderr.lines().rev().take(3).collect::<Vec<_>>().join(" / ");
        format!("{}: {err}; stderr: {tail}", e.usage.role)
    };
    let subs_of = |parse: &dyn Fn(&str) -> Result<SubOut, String>| -> Vec<SubOut> {
        ended[1..]
            .iter()
            .filter_map(|e| match parse(&e.stdout) {
                Ok(s) => Some(s),
                Err(err) => {
                    eprintln!("ztick-tables run: {}", why(e, err));
                    None
                }
            })
            .collect()
    };
    match spec.stack.as_str() {
        "ztick-in" => {
            let j: FanoutJson = last_json(&first.stdout, "ztick fanout").map_err(|e| why(first, e))?;
            let p = PubOut {
                published: j.published,
                rate_per_s: j.rate_per_s,
                stalls: Some(j.publisher.stalls),
                late_ticks: None,
                max_lag_ns: Some(j.publisher.max_lag_ns),
                libzmq: None,
            };
            Ok((p, ztick_subs(&j)))
        }
        "zmqrs-in" => {
            let j: ZmqrsRun = last_json(&first.stdout, "zmqrs-fanout").map_err(|e| why(first, e))?;
            let p = PubOut {
                published: j.published,
                rate_per_s: j.rate_per_s as f64,
                stalls: j.stalls,
                late_ticks: j.late_ticks,
                max_lag_ns: Some(j.publisher_behind_max_ns),
                libzmq: None,
            };
            let subs = j
                .subscribers
                .iter()
                .map(|s| SubOut {
                    expected: j.published,
                    received: s.received,
                    missing: s.missing,
                    latency: seen(s.latency_ns.into()),
                    raw: seen(s.latency_raw_ns.into()),
                    idle: idle_rows(&s.idle_gaps),
                })
                .collect();
            Ok((p, subs))
        }
        "ztick-x" => {
            let j: ZtickPub =
                last_json(&first.stdout, "ztick fanout --role pub").map_err(|e| why(first, e))?;
            let p = PubOut {
                published: j.published,
                rate_per_s: j.rate_per_s,
                stalls: Some(j.publisher.stalls),
                late_ticks: None,
                max_lag_ns: Some(j.publisher.max_lag_ns),
                libzmq: None,
            };
            let subs = subs_of(&|out| {
                let j: FanoutJson = last_json(out, "ztick fanout --role sub")?;
                ztick_subs(&j).into_iter().next().ok_or_else(|| "no subscriber in the record".to_owned())
            });
            Ok((p, subs))
        }
        "c-x" | "c-coalesced-x" => {
            let j: CPub = last_json(&first.stdout, "fanout_pub").map_err(|e| why(first, e))?;
            let p = PubOut {
                published: j.published,
                rate_per_s: j.rate_per_s,
                stalls: Some(j.stalls),
                late_ticks: Some(j.late_ticks),
                max_lag_ns: Some(j.max_lag_ns),
                libzmq: Some(j.libzmq),
            };
            let published = p.published;
            let subs = subs_of(&|out| {
                let s: CSub = last_json(out, "fanout_sub")?;
                // A subscriber whose end records did not all arrive owes the rest too.
                let expected = s.published.max(published);
                Ok(SubOut {
                    expected,
                    received: s.received,
                    missing: s.missing + expected.saturating_sub(s.received + s.missing),
                    latency: seen(s.latency_ns),
                    raw: seen(s.latency_raw_ns),
                    idle: s.idle_gaps,
                })
            });
            Ok((p, subs))
        }
        "zmqrs-x" => {
            let j: ZmqrsPubRun =
                last_json(&first.stdout, "zmqrs-fanout --role pub").map_err(|e| why(first, e))?;
            let p = PubOut {
                published: j.published,
                rate_per_s: j.rate_per_s as f64,
                stalls: Some(j.stalls),
                late_ticks: Some(j.late_ticks),
                max_lag_ns: Some(j.publisher_behind_max_ns),
                libzmq: None,
            };
            let published = p.published;
            let subs = subs_of(&|out| {
                let s: ZmqrsSubRun = last_json(out, "zmqrs-fanout --role sub")?;
                let r = &s.subscriber;
                let expected = s.published.max(published);
                Ok(SubOut {
                    expected,
                    received: r.received,
                    missing: r.missing + expected.saturating_sub(r.received + r.missing),
                    latency: seen(r.latency_ns.into()),
                    raw: seen(r.latency_raw_ns.into()),
                    idle: idle_rows(&r.idle_gaps),
                })
            });
            Ok((p, subs))
        }
        other => Err(format!("unknown stack {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gnu_time_lines_parse_and_a_killed_programs_note_is_skipped() {
        assert_eq!(
            parse_usage("1.52 0.13 0.87 48555 17138 7040\n"),
            Some((1.52, 0.13, 0.87, 48555, 17138, 7040))
        );
        let killed = "Command terminated by signal 9\n3.00 0.01 0.02 5 6 2048\n";
        assert_eq!(parse_usage(killed), Some((3.0, 0.01, 0.02, 5, 6, 2048)));
        assert_eq!(parse_usage(""), None);
        assert_eq!(parse_usage("Command terminated by signal 9\n"), None);
    }

    #[test]
    fn a_threads_share_is_its_ticks_over_the_wall_time_between_samples() {
        let a = vec![(10, "pub".to_owned(), 100), (11, "io".to_owned(), 0)];
        let b = vec![(10, "pub".to_owned(), 150), (11, "io".to_owned(), 10), (12, "new".to_owned(), 5)];
        let s = shares("pub", &a, &b, Duration::from_millis(500));
        assert_eq!(s.len(), 2, "a thread born between the samples has no share");
        assert!((s[0].cpu_share - 1.0).abs() < 1e-9);
        assert!((s[1].cpu_share - 0.2).abs() < 1e-9);
    }

    #[test]
    fn every_variant_has_its_commands_and_an_unknown_one_is_an_error() {
        let spec = |stack: &str| RunSpec {
            stack: stack.to_owned(),
            label: None,
            transport: "ipc".into(),
            subscribers: 2,
            round: 1,
            rate: 10_000,
            size: 64,
            topics: 8,
            duration_s: 1.0,
            idle_gaps_us: Vec::new(),
            idle_samples: 20,
            coalesce_us: 20,
            timeout_s: 30.0,
            ztick: "ztick".into(),
            zmqrs: "zmqrs-fanout".into(),
            c_dir: "c".into(),
            pub_args: vec!["--extra".into()],
            sub_args: Vec::new(),
            work_dir: "/tmp/none".into(),
        };
        for (stack, processes) in [
            ("ztick-in", 1),
            ("zmqrs-in", 1),
            ("ztick-x", 3),
            ("c-x", 3),
            ("c-coalesced-x", 3),
            ("zmqrs-x", 3),
        ] {
            let (cmds, _) = commands(&spec(stack), Path::new("/tmp/none")).unwrap();
            assert_eq!(cmds.len(), processes, "{stack}");
            assert!(cmds[0].1.iter().any(|a| a == "--extra"), "{stack}: the publisher's extra flags");
        }
        let (zmqrs, _) = commands(&spec("zmqrs-x"), Path::new("/tmp/none")).unwrap();
        assert!(
            zmqrs[0].1.windows(2).any(|w| w[0] == "--size" && w[1] == "88"),
            "zmq.rs's size has its header"
        );
        assert!(commands(&spec("nope"), Path::new("/tmp/none")).is_err());
    }
}
