//! Fan-out latency, one publisher to 1, 2 and 4 subscribers, all engine workers (blocking
//! when idle, pinned round-robin over the cores, the publisher first).
//!
//! Closed loop: the publisher's handler stamps a 64 B message (sequence, send time) and
//! publishes it; each subscriber's handler takes its one-way latency (the same monotonic
//! clock on both threads) and acknowledges over PUSH to the publisher's PULL; when every
//! subscriber has acknowledged, the publisher publishes the next. One iteration is one
//! message delivered to all: criterion's time is the one-way latency to the *last*
//! subscriber. Two HdrHistograms are printed after each benchmark: `one_way` (every
//! delivery) and `to_last` (per message, the slowest subscriber), and under `cargo bench`
//! appended to `target/ztick-bench/fanout.jsonl`.
//!
//! Groups `fanout/<transport>/msg_64B`, benchmarks `subs_1`, `subs_2`, `subs_4`:
//! `cargo bench --bench fanout -- 'ipc/'`.

mod common;

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use crossbeam_channel::{Receiver, Sender};
use ztick::metrics::LatencyRecorder;
use ztick::{
    now_ns, Endpoint, Engine, Handle, Handler, IdleStrategy, Inbound, SocketId, SocketKind, SocketOptions,
    SocketSpec, Transport, Worker, WorkerCtx,
};

use common::{cores, engine, pinning, remove_ipc, report_hdr, size_label, warm, STALL, TRANSPORTS};

const SUITE: &str = "fanout";
const SIZE: usize = 64;
const SUBSCRIBERS: [usize; 3] = [1, 2, 4];
/// A message not acknowledged by every subscriber within this is published again (the SUBs'
/// subscriptions arrive some time after they connect; PUB drops until then).
const RESEND: Duration = Duration::from_millis(50);

struct JobResult {
    total_ns: u64,
    one_way: LatencyRecorder,
    to_last: LatencyRecorder,
    resends: u64,
}

struct Publisher {
    publ: SocketId,
    acks: SocketId,
    /// Bit `i` is subscriber `i`'s; all of them acknowledged = `all`.
    all: u64,
    payload: Vec<u8>,
    jobs: Receiver<u64>,
    results: Sender<Result<JobResult, String>>,
    left: u64,
    seq: u64,
    sent_at: u64,
    acked: u64,
    worst: u64,
    total: u64,
    resends: u64,
    one_way: LatencyRecorder,
    to_last: LatencyRecorder,
}

impl Publisher {
    fn publish(&mut self, ctx: &mut WorkerCtx<'_>) -> ztick::Result<()> {
        self.payload[..8].copy_from_slice(&self.seq.to_le_bytes());
        self.sent_at = now_ns();
        self.payload[8..16].copy_from_slice(&self.sent_at.to_le_bytes());
        ctx.send(self.publ, &self.payload)?;
        self.acked = 0;
        self.worst = 0;
        ctx.wake_at(Instant::now() + RESEND);
        Ok(())
    }
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 8).map(|s| u64::from_le_bytes(s.try_into().expect("8 bytes")))
}

impl Handler for Publisher {
    fn on_message(
        &mut self,
        ctx: &mut WorkerCtx<'_>,
        socket: SocketId,
        msg: &Inbound<'_>,
    ) -> ztick::Result<()> {
        if socket != self.acks || self.left == 0 {
            return Ok(());
        }
        let ack = msg.last();
        let (Some(seq), Some(lat), Some(id)) = (u64_at(ack, 0), u64_at(ack, 8), u64_at(ack, 16)) else {
            return Err(ztick::Error::Decode {
                context: "ack".into(),
                reason: format!("{} bytes", ack.len()),
            });
        };
        let bit = 1u64 << id.min(63);
        if seq != self.seq || self.acked & bit != 0 {
            return Ok(()); // a late or repeated acknowledgement
        }
        self.acked |= bit;
        self.one_way.record(lat);
        self.worst = self.worst.max(lat);
        if self.acked != self.all {
            return Ok(());
        }
        self.to_last.record(self.worst);
        self.total += self.worst;
        self.left -= 1;
        self.seq += 1;
        if self.left == 0 {
            let r = JobResult {
                total_ns: self.total,
                one_way: std::mem::take(&mut self.one_way),
                to_last: std::mem::take(&mut self.to_last),
                resends: self.resends,
            };
            let _ = self.results.send(Ok(r));
            return Ok(());
        }
        self.publish(ctx)
    }

    fn on_tick(&mut self, ctx: &mut WorkerCtx<'_>) -> ztick::Result<bool> {
        if self.left > 0 {
            if now_ns().saturating_sub(self.sent_at) > RESEND.as_nanos() as u64 {
                self.resends += 1;
                self.publish(ctx)?;
                return Ok(true);
            }
            return Ok(false);
        }
        let Ok(n) = self.jobs.try_recv() else { return Ok(false) };
        self.left = n;
        self.total = 0;
        self.resends = 0;
        if n == 0 {
            let r = JobResult {
                total_ns: 0,
                one_way: LatencyRecorder::new(),
                to_last: LatencyRecorder::new(),
                resends: 0,
            };
            let _ = self.results.send(Ok(r));
            return Ok(true);
        }
        self.publish(ctx)?;
        Ok(true)
    }
}

struct Fanout {
    jobs: Sender<u64>,
    results: Receiver<Result<JobResult, String>>,
    wake: Handle,
    workers: Vec<Worker>,
    endpoints: Vec<String>,
    _engine: Engine,
}

impl Fanout {
    fn start(transport: Transport, subs: usize) -> ztick::Result<Fanout> {
        assert!(subs <= 64, "acknowledgements are tracked in a 64-bit mask");
        let engine = engine(transport);
        let cores = if pinning() { cores() } else { Vec::new() };
        let core = |i: usize| (!cores.is_empty()).then(|| cores[i % cores.len()]);
        let (jobs_tx, jobs) = crossbeam_channel::bounded(1);
        let (results_tx, results) = crossbeam_channel::bounded(1);
        let mut b = engine.worker("fan-pub").idle(IdleStrategy::BLOCK).pin(core(0));
        // A late duplicate acknowledgement (after a resend) must not hold the closing sockets
        // for libzmq's linger.
        let opts = SocketOptions::default().linger(Some(Duration::ZERO));
        let publ = b.socket(
            SocketSpec::bind(SocketKind::Pub, Endpoint::local(transport, "ztick-bench-fan"))
                .options(opts.clone()),
        );
        let acks = b.socket(
            SocketSpec::bind(SocketKind::Pull, Endpoint::local(transport, "ztick-bench-ack"))
                .options(opts.clone()),
        );
        let publisher = Publisher {
            publ,
            acks,
            all: if subs == 64 { u64::MAX } else { (1u64 << subs) - 1 },
            payload: vec![0x3C; SIZE],
            jobs,
            results: results_tx,
            left: 0,
            seq: 0,
            sent_at: 0,
            acked: 0,
            worst: 0,
            total: 0,
            resends: 0,
            one_way: LatencyRecorder::new(),
            to_last: LatencyRecorder::new(),
        };
        let publisher = b.handler(publisher).spawn()?;
        let pub_ep: Endpoint = publisher.endpoint(publ).unwrap_or_default().parse()?;
        let ack_ep: Endpoint = publisher.endpoint(acks).unwrap_or_default().parse()?;
        let mut workers = vec![publisher];
        for i in 0..subs {
            let mut b = engine.worker(&format!("fan-sub-{i}")).idle(IdleStrategy::BLOCK).pin(core(i + 1));
            let sub = b.socket(
                SocketSpec::connect(SocketKind::Sub, pub_ep.clone())
                    .options(opts.clone())
                    .subscribe(Vec::new()),
            );
            let push = b.socket(SocketSpec::connect(SocketKind::Push, ack_ep.clone()).options(opts.clone()));
            let mut ack = [0u8; 24];
            ack[16..].copy_from_slice(&(i as u64).to_le_bytes());
            let w = b
                .on_message(move |ctx, id, msg| {
                    let now = now_ns();
                    if id != sub {
                        return Ok(());
                    }
                    let body = msg.last();
                    let (Some(seq), Some(sent)) = (u64_at(body, 0), u64_at(body, 8)) else {
                        return Err(ztick::Error::Decode {
                            context: "tick".into(),
                            reason: format!("{} bytes", body.len()),
                        });
                    };
                    ack[..8].copy_from_slice(&seq.to_le_bytes());
                    ack[8..16].copy_from_slice(&now.saturating_sub(sent).to_le_bytes());
                    ctx.send(push, &ack)
                })
                .spawn()?;
            workers.push(w);
        }
        let mut f = Fanout {
            jobs: jobs_tx,
            results,
            wake: workers[0].handle(),
            workers,
            endpoints: vec![pub_ep.to_string(), ack_ep.to_string()],
            _engine: engine,
        };
        f.run(warm(200));
        Ok(f)
    }

    fn run(&mut self, n: u64) -> JobResult {
        self.jobs.send(n).expect("publisher running");
        self.wake.run(|_| {});
        match self.results.recv_timeout(STALL) {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => panic!("fan-out: {e}"),
            Err(_) => panic!("fan-out: no result within {STALL:?}"),
        }
    }
}

impl Drop for Fanout {
    fn drop(&mut self) {
        // Subscribers first, while the publisher still reads their acknowledgements.
        for w in self.workers.drain(..).rev() {
            if let Err(e) = w.stop() {
                eprintln!("warning: stopping a fan-out worker: {e}");
            }
        }
        for e in &self.endpoints {
            remove_ipc(e);
        }
    }
}

fn fanout(c: &mut Criterion) {
    for transport in TRANSPORTS {
        let group = format!("fanout/{transport}/{}", size_label(SIZE));
        let mut g = c.benchmark_group(&group);
        for subs in SUBSCRIBERS {
            let name = format!("subs_{subs}");
            let mut fan: Option<Fanout> = None;
            let mut one_way = LatencyRecorder::new();
            let mut to_last = LatencyRecorder::new();
            let mut resends = 0;
            g.bench_function(&name, |b| {
                b.iter_custom(|n| {
                    let f = fan.get_or_insert_with(|| Fanout::start(transport, subs).expect("fan-out"));
                    let r = f.run(n);
                    one_way.merge(&r.one_way);
                    to_last.merge(&r.to_last);
                    resends += r.resends;
                    Duration::from_nanos(r.total_ns)
                })
            });
            drop(fan);
            if resends > 0 {
                println!(
                    "{group}/{name}: {resends} messages published again after {RESEND:?} without every ack"
                );
            }
            report_hdr(SUITE, &format!("{group}/{name}"), "one_way", &one_way);
            report_hdr(SUITE, &format!("{group}/{name}"), "to_last", &to_last);
        }
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    targets = fanout
}
criterion_main!(benches);
