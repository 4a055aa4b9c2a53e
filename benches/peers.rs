//! ztick against zmq.rs (the pure-Rust `zeromq` crate on tokio, the seed's choice), side by
//! side in one group per cell so every run shows the ratio.
//!
//! - `peers/round_trip/<ipc|tcp>/msg_<size>/<stack>`: REQ to REP and back, each round trip
//!   timed and recorded in an HdrHistogram (printed after each benchmark; appended to
//!   `target/ztick-bench/peers.jsonl` under `cargo bench`).
//!   - `ztick`: two engine workers, blocking when idle, pinned to the first and last core
//!     (as in `benches/latency.rs`);
//!   - `zmqrs`: both sockets on one tokio current-thread runtime, on one pinned thread (the
//!     seed's way: zmq.rs does its I/O on the thread that awaits, so a round trip crosses
//!     no thread at all);
//!   - `zmqrs_2rt`: each socket on its own current-thread runtime and pinned thread, the
//!     same placement as ztick's two workers.
//! - `peers/push_pull/<ipc|tcp>/msg_<size>/<stack>`: messages per second, as in
//!   `benches/throughput.rs` at batch 256: `ztick` produces them in the sending worker's
//!   handler with copying sends, `ztick_pooled` the same with pooled (zero-copy) sends,
//!   `ztick_handoff` hands each over from the bench thread (copying). The tables compare
//!   zmq.rs with the best of the three. `zmqrs` sends clones of one `Bytes` (no copy) from
//!   one task and receives in another, on one current-thread runtime.
//!
//! zmq.rs has no inproc transport. `cargo bench --bench peers -- 'round_trip/tcp/'`

mod common;

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use crossbeam_channel::{Receiver, Sender};
use tokio::runtime::Runtime;
use zeromq::{PullSocket, PushSocket, RepSocket, ReqSocket, Socket, SocketRecv, SocketSend, ZmqMessage};
use ztick::metrics::LatencyRecorder;
use ztick::{now_ns, IdleStrategy, Transport};

use common::flow::{bench_flow, flow_warmup, Flow, FlowCase, FlowPair, Pattern, Sends, Source};
use common::rtt::{bench_round_trip, warmup, EnginePair, Outcome, RoundTrip};
use common::{pair_cores, pin_current, remove_ipc, size_label, SIZES, STALL};

const SUITE: &str = "peers";

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime")
}

/// A bind address zmq.rs accepts, unique per call.
fn zmqrs_endpoint(transport: Transport, name: &str) -> String {
    match transport {
        Transport::Tcp => "tcp://127.0.0.1:0".into(),
        Transport::Ipc => {
            let e = ztick::Endpoint::unique_ipc(name);
            format!("ipc://{}", e.address())
        }
        Transport::Inproc => unreachable!("zmq.rs has no inproc transport"),
    }
}

fn payload(size: usize) -> Bytes {
    Bytes::from(vec![0xA5u8; size])
}

// ---------------------------------------------------------------------------- round trip

struct ZmqrsPair {
    jobs: Option<Sender<u64>>,
    results: Receiver<Outcome>,
    /// Ends the echo (on its own thread in `zmqrs_2rt`).
    stop_echo: Option<tokio::sync::oneshot::Sender<()>>,
    threads: Vec<JoinHandle<()>>,
    endpoint: String,
}

async fn echo(mut rep: RepSocket, mut stop: tokio::sync::oneshot::Receiver<()>) {
    loop {
        tokio::select! {
            _ = &mut stop => return,
            m = rep.recv() => match m {
                Ok(m) => {
                    if let Err(e) = rep.send(m).await {
                        eprintln!("zmq.rs echo: {e}");
                        return;
                    }
                }
                Err(e) => {
                    eprintln!("zmq.rs echo: {e}");
                    return;
                }
            },
        }
    }
}

async fn round_trips(req: &mut ReqSocket, payload: &Bytes, n: u64) -> Outcome {
    let mut rec = LatencyRecorder::new();
    let mut total = 0u64;
    for _ in 0..n {
        let t0 = now_ns();
        req.send(ZmqMessage::from(payload.clone())).await.map_err(|e| e.to_string())?;
        let m = req.recv().await.map_err(|e| e.to_string())?;
        let rtt = now_ns() - t0;
        let len: usize = m.iter().map(|f| f.len()).sum();
        if len != payload.len() {
            return Err(format!("reply of {len} bytes to {}", payload.len()));
        }
        rec.record(rtt);
        total += rtt;
    }
    Ok((total, rec))
}

impl ZmqrsPair {
    /// `two_threads`: the echo on its own runtime and thread; else beside the timer.
    fn start(transport: Transport, size: usize, two_threads: bool) -> ZmqrsPair {
        let (timer_core, echo_core) = pair_cores();
        let bind = zmqrs_endpoint(transport, "ztick-bench-zmqrs");
        let mut threads = Vec::new();
        // The echo runs until this is sent or dropped (when the pair is dropped).
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let mut stop_rx = Some(stop_rx);
        let (ep_tx, ep_rx) = crossbeam_channel::bounded::<Result<String, String>>(1);
        if two_threads {
            let bind = bind.clone();
            let stop_rx = stop_rx.take().expect("not taken yet");
            threads.push(
                std::thread::Builder::new()
                    .name("zmqrs-echo".into())
                    .spawn(move || {
                        pin_current(echo_core);
                        let rt = runtime();
                        rt.block_on(async move {
                            let mut rep = RepSocket::new();
                            match rep.bind(&bind).await {
                                Ok(ep) => {
                                    let _ = ep_tx.send(Ok(ep.to_string()));
                                    echo(rep, stop_rx).await;
                                }
                                Err(e) => {
                                    let _ = ep_tx.send(Err(e.to_string()));
                                }
                            }
                        });
                    })
                    .expect("spawn zmq.rs echo"),
            );
        }
        let (jobs_tx, jobs) = crossbeam_channel::bounded::<u64>(1);
        let (results_tx, results) = crossbeam_channel::bounded::<Outcome>(1);
        let (started_tx, started) = crossbeam_channel::bounded::<Result<String, String>>(1);
        threads.push(
            std::thread::Builder::new()
                .name("zmqrs-timer".into())
                .spawn(move || {
                    pin_current(timer_core);
                    let rt = runtime();
                    let setup = rt.block_on(async {
                        let endpoint = if two_threads {
                            ep_rx.recv_timeout(STALL).map_err(|e| e.to_string())??
                        } else {
                            let mut rep = RepSocket::new();
                            let ep = rep.bind(&bind).await.map_err(|e| e.to_string())?.to_string();
                            tokio::spawn(echo(rep, stop_rx.expect("one-thread echo's stop")));
                            ep
                        };
                        let mut req = ReqSocket::new();
                        req.connect(&endpoint).await.map_err(|e| e.to_string())?;
                        Ok::<_, String>((req, endpoint))
                    });
                    let (mut req, endpoint) = match setup {
                        Ok(s) => s,
                        Err(e) => {
                            let _ = started_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = started_tx.send(Ok(endpoint));
                    let payload = payload(size);
                    while let Ok(n) = jobs.recv() {
                        let out = rt.block_on(round_trips(&mut req, &payload, n));
                        let _ = results_tx.send(out);
                    }
                    // Sockets and tasks end with the runtime, inside its context.
                    let _guard = rt.enter();
                    drop(req);
                })
                .expect("spawn zmq.rs timer"),
        );
        let endpoint = match started.recv_timeout(STALL) {
            Ok(Ok(ep)) => ep,
            Ok(Err(e)) => panic!("zmq.rs pair: {e}"),
            Err(_) => panic!("zmq.rs pair did not start within {STALL:?}"),
        };
        let mut pair =
            ZmqrsPair { jobs: Some(jobs_tx), results, stop_echo: Some(stop_tx), threads, endpoint };
        pair.run(warmup(size));
        pair
    }
}

impl RoundTrip for ZmqrsPair {
    fn run(&mut self, iters: u64) -> (u64, LatencyRecorder) {
        self.jobs.as_ref().expect("running").send(iters).expect("zmq.rs timer running");
        match self.results.recv_timeout(STALL) {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => panic!("zmq.rs round trips: {e}"),
            Err(_) => panic!("zmq.rs round trips: no result within {STALL:?}"),
        }
    }
}

impl Drop for ZmqrsPair {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(s) = self.stop_echo.take() {
            let _ = s.send(());
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        remove_ipc(&self.endpoint);
    }
}

// ---------------------------------------------------------------------------- throughput

struct ZmqrsFlow {
    jobs: Option<Sender<u64>>,
    results: Receiver<Result<Duration, String>>,
    thread: Option<JoinHandle<()>>,
    endpoint: String,
}

async fn push_pull(
    push: &mut PushSocket,
    pull: &mut PullSocket,
    payload: &Bytes,
    n: u64,
) -> Result<Duration, String> {
    let start = Instant::now();
    let send = async {
        for _ in 0..n {
            push.send(ZmqMessage::from(payload.clone())).await.map_err(|e| e.to_string())?;
        }
        Ok::<_, String>(())
    };
    let recv = async {
        for _ in 0..n {
            let m = pull.recv().await.map_err(|e| e.to_string())?;
            let len: usize = m.iter().map(|f| f.len()).sum();
            if len != payload.len() {
                return Err(format!("message of {len} bytes, sent {}", payload.len()));
            }
        }
        Ok(())
    };
    let (s, r) = tokio::join!(send, recv);
    s.and(r)?;
    Ok(start.elapsed())
}

impl ZmqrsFlow {
    fn start(transport: Transport, size: usize) -> ZmqrsFlow {
        let (core, _) = pair_cores();
        let bind = zmqrs_endpoint(transport, "ztick-bench-zmqrs-flow");
        let (jobs_tx, jobs) = crossbeam_channel::bounded::<u64>(1);
        let (results_tx, results) = crossbeam_channel::bounded(1);
        let (started_tx, started) = crossbeam_channel::bounded::<Result<String, String>>(1);
        let thread = std::thread::Builder::new()
            .name("zmqrs-flow".into())
            .spawn(move || {
                pin_current(core);
                let rt = runtime();
                let setup = rt.block_on(async {
                    let mut pull = PullSocket::new();
                    let ep = pull.bind(&bind).await.map_err(|e| e.to_string())?.to_string();
                    let mut push = PushSocket::new();
                    push.connect(&ep).await.map_err(|e| e.to_string())?;
                    Ok::<_, String>((push, pull, ep))
                });
                let (mut push, mut pull, ep) = match setup {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = started_tx.send(Err(e));
                        return;
                    }
                };
                let _ = started_tx.send(Ok(ep));
                let payload = payload(size);
                while let Ok(n) = jobs.recv() {
                    let _ = results_tx.send(rt.block_on(push_pull(&mut push, &mut pull, &payload, n)));
                }
                let _guard = rt.enter();
                drop(push);
                drop(pull);
            })
            .expect("spawn zmq.rs flow");
        let endpoint = match started.recv_timeout(STALL) {
            Ok(Ok(ep)) => ep,
            Ok(Err(e)) => panic!("zmq.rs flow: {e}"),
            Err(_) => panic!("zmq.rs flow did not start within {STALL:?}"),
        };
        let mut f = ZmqrsFlow { jobs: Some(jobs_tx), results, thread: Some(thread), endpoint };
        f.run(flow_warmup(size));
        f
    }
}

impl Flow for ZmqrsFlow {
    fn run(&mut self, n: u64) -> Duration {
        self.jobs.as_ref().expect("running").send(n).expect("zmq.rs flow running");
        match self.results.recv_timeout(STALL) {
            Ok(Ok(d)) => d,
            Ok(Err(e)) => panic!("zmq.rs push/pull: {e}"),
            Err(_) => panic!("zmq.rs push/pull: no result within {STALL:?}"),
        }
    }
}

impl Drop for ZmqrsFlow {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        remove_ipc(&self.endpoint);
    }
}

// ---------------------------------------------------------------------------- suites

const PEER_TRANSPORTS: [Transport; 2] = [Transport::Ipc, Transport::Tcp];

fn round_trip(c: &mut Criterion) {
    for transport in PEER_TRANSPORTS {
        for size in SIZES {
            let group = format!("peers/round_trip/{transport}/{}", size_label(size));
            let mut g = c.benchmark_group(&group);
            bench_round_trip(&mut g, SUITE, &group, "ztick", || {
                EnginePair::start(transport, size, IdleStrategy::BLOCK).expect("engine pair")
            });
            bench_round_trip(&mut g, SUITE, &group, "zmqrs", || ZmqrsPair::start(transport, size, false));
            bench_round_trip(&mut g, SUITE, &group, "zmqrs_2rt", || ZmqrsPair::start(transport, size, true));
            g.finish();
        }
    }
}

fn throughput(c: &mut Criterion) {
    for transport in PEER_TRANSPORTS {
        for size in SIZES {
            let group = format!("peers/push_pull/{transport}/{}", size_label(size));
            let mut g = c.benchmark_group(&group);
            g.throughput(Throughput::Elements(1)).sampling_mode(SamplingMode::Flat);
            for (name, source, sends) in [
                ("ztick", Source::Worker, Sends::Copy),
                ("ztick_pooled", Source::Worker, Sends::Pooled),
                ("ztick_handoff", Source::Handoff, Sends::Copy),
            ] {
                let case =
                    FlowCase { pattern: Pattern::PushPull, transport, size, batch: 256, sends, source };
                bench_flow(&mut g, name, || FlowPair::start(case).expect("flow pair"), |_| {});
            }
            bench_flow(&mut g, "zmqrs", || ZmqrsFlow::start(transport, size), |_| {});
            g.finish();
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    targets = round_trip, throughput
}
criterion_main!(benches);
