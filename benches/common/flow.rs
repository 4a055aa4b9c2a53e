//! Throughput through the engine: a sending worker puts messages on a PUSH or PUB socket, a
//! receiving worker (PULL or SUB, at most `batch` messages per pass of its loop) counts
//! them. The messages come from one of two sources ([`Source`]): the bench thread handing
//! them over (`Handle::send`; the worker drains at most `batch` hand-offs per pass), or the
//! sending worker's own handler (`batch` sends per pass, no hand-off). A sample is the time
//! from the job's start until the receiver has counted its last message.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::BenchmarkGroup;
use crossbeam_channel::{Receiver, Sender};
use ztick::{
    BufferPool, Endpoint, Engine, FullPolicy, Handle, Handler, IdleStrategy, Inbound, Outbound, PoolStats,
    SocketId, SocketKind, SocketSpec, Transport, Worker, WorkerCtx,
};

use super::{engine, pair_cores, remove_ipc, warm, STALL};

/// The socket pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// PUSH to PULL.
    PushPull,
    /// PUB (with `ZMQ_XPUB_NODROP`, so nothing is dropped at the HWM) to one SUB.
    PubSub,
}

impl Pattern {
    /// The label in group names.
    pub fn label(self) -> &'static str {
        match self {
            Pattern::PushPull => "push_pull",
            Pattern::PubSub => "pub_sub",
        }
    }
}

/// Where the messages come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The bench thread hands each message to the sending worker (`Handle::send`): what an
    /// application thread does.
    Handoff,
    /// The sending worker's handler produces them, `batch` per pass of its loop: what a
    /// handler-driven publisher does, with no hand-off.
    Worker,
}

impl Source {
    /// The label in group names.
    pub fn label(self) -> &'static str {
        match self {
            Source::Handoff => "handoff",
            Source::Worker => "worker",
        }
    }
}

/// How each message is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sends {
    /// Copied by libzmq on send: from a fresh `Vec<u8>` per message when handed over, from
    /// the handler's buffer on the worker.
    Copy,
    /// A `PooledBuf`, filled, that libzmq takes without copying and gives back to the pool.
    Pooled,
}

impl Sends {
    /// The label in group names.
    pub fn label(self) -> &'static str {
        match self {
            Sends::Copy => "copy",
            Sends::Pooled => "pooled",
        }
    }
}

/// Something that moves N messages and says how long it took.
pub trait Flow {
    /// Moves `n` messages from sender to receiver.
    fn run(&mut self, n: u64) -> Duration;
}

/// Registers one throughput benchmark `name` in `group` (one iteration = one message; set
/// `Throughput::Elements(1)` on the group). The pair starts on the first call; `after` sees
/// it once the case is done, to print what it counted.
pub fn bench_flow<F: Flow>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    start: impl FnOnce() -> F,
    after: impl FnOnce(&F),
) {
    let mut start = Some(start);
    let mut pair: Option<F> = None;
    g.bench_function(name, |b| {
        b.iter_custom(|n| {
            if pair.is_none() {
                pair = Some(start.take().expect("a pair is started once")());
            }
            pair.as_mut().expect("started above").run(n)
        })
    });
    if let Some(p) = &pair {
        after(p);
    }
}

/// A sending and a receiving worker of one engine.
pub struct FlowPair {
    source: Source,
    handle: Handle,
    sock: SocketId,
    /// Jobs for the producing handler ([`Source::Worker`]).
    jobs: Sender<u64>,
    /// The receiver signals when its count reaches this.
    target: Arc<AtomicU64>,
    /// Messages the receiver has counted.
    received: Arc<AtomicU64>,
    /// Messages whose size was not the one sent.
    wrong: Arc<AtomicU64>,
    done: Receiver<()>,
    /// Messages counted before the current job.
    base: u64,
    payload: Vec<u8>,
    /// Shared with the producing handler for [`Source::Worker`].
    pool: Option<BufferPool>,
    sender: Option<Worker>,
    receiver: Option<Worker>,
    endpoint: String,
    _engine: Engine,
}

/// Untimed messages moved after start-up.
pub fn flow_warmup(size: usize) -> u64 {
    warm(if size >= 16 * 1024 { 200 } else { 2000 })
}

/// Pool buffers: enough for the hand-off channel and both HWMs at small sizes, at most
/// 64 MiB at large ones (more buffers out at once are allocated and counted as misses).
fn pool_count(size: usize) -> usize {
    ((64 << 20) / size.max(1)).clamp(256, 8192)
}

/// The sending worker's handler for [`Source::Worker`]: `batch` sends per pass while a job
/// lasts.
struct Producer {
    sock: SocketId,
    payload: Vec<u8>,
    pool: Option<BufferPool>,
    batch: usize,
    jobs: Receiver<u64>,
    left: u64,
}

impl Handler for Producer {
    fn on_message(&mut self, _: &mut WorkerCtx<'_>, _: SocketId, _: &Inbound<'_>) -> ztick::Result<()> {
        Ok(())
    }

    fn on_tick(&mut self, ctx: &mut WorkerCtx<'_>) -> ztick::Result<bool> {
        if self.left == 0 {
            match self.jobs.try_recv() {
                Ok(n) => self.left = n,
                Err(_) => return Ok(false),
            }
        }
        let k = (self.batch as u64).min(self.left);
        for _ in 0..k {
            match &self.pool {
                Some(pool) => {
                    let mut buf = pool.get();
                    buf.extend_from_slice(&self.payload)?;
                    ctx.send_outbound(self.sock, buf.into())?;
                }
                // Under `FullPolicy::Block` a send at the HWM waits for room here.
                None => ctx.send(self.sock, &self.payload)?,
            }
        }
        self.left -= k;
        Ok(true)
    }
}

/// What one throughput case measures.
#[derive(Debug, Clone, Copy)]
pub struct FlowCase {
    /// The socket pattern.
    pub pattern: Pattern,
    /// The transport.
    pub transport: Transport,
    /// Message size in bytes.
    pub size: usize,
    /// Messages per pass, on both workers.
    pub batch: usize,
    /// Copying or pooled sends.
    pub sends: Sends,
    /// Who produces the messages.
    pub source: Source,
}

impl FlowPair {
    /// Starts the pair and moves a warm-up load through it.
    pub fn start(case: FlowCase) -> ztick::Result<FlowPair> {
        let FlowCase { pattern, transport, size, batch, sends, source } = case;
        let engine = engine(transport);
        let (send_core, recv_core) = pair_cores();
        let ep = Endpoint::local(transport, "ztick-bench-flow");
        let target = Arc::new(AtomicU64::new(u64::MAX));
        let received = Arc::new(AtomicU64::new(0));
        let wrong = Arc::new(AtomicU64::new(0));
        let (done_tx, done) = crossbeam_channel::bounded(1);
        let counter = {
            let (target, received, wrong) = (Arc::clone(&target), Arc::clone(&received), Arc::clone(&wrong));
            let mut count = 0u64;
            move |_: &mut WorkerCtx<'_>, _: SocketId, msg: &Inbound<'_>| {
                count += 1;
                if msg.size_bytes() != size {
                    wrong.fetch_add(1, Ordering::Relaxed);
                }
                received.store(count, Ordering::Release);
                if count == target.load(Ordering::Acquire) {
                    let _ = done_tx.try_send(());
                }
                Ok(())
            }
        };
        fn receiver_builder(
            engine: &Engine,
            spec: SocketSpec,
            core: Option<ztick::CoreId>,
            batch: usize,
        ) -> (ztick::WorkerBuilder<'_>, SocketId) {
            let mut b = engine.worker("flow-recv").idle(IdleStrategy::BLOCK).pin(core).batch_max(batch);
            let id = b.socket(spec);
            (b, id)
        }
        let pool = (sends == Sends::Pooled).then(|| BufferPool::new(size, pool_count(size)));
        let payload = vec![0x5A; size];
        let (jobs, jobs_rx) = crossbeam_channel::bounded(1);
        let spawn_sender = |b: ztick::WorkerBuilder<'_>, sock: SocketId| match source {
            Source::Handoff => b.spawn(),
            Source::Worker => b
                .handler(Producer {
                    sock,
                    payload: payload.clone(),
                    pool: pool.clone(),
                    batch,
                    jobs: jobs_rx.clone(),
                    left: 0,
                })
                .spawn(),
        };
        let (sender, receiver, sock, endpoint) = match pattern {
            Pattern::PushPull => {
                let (b, pull) =
                    receiver_builder(&engine, SocketSpec::bind(SocketKind::Pull, ep), recv_core, batch);
                let receiver = b.on_message(counter).spawn()?;
                let endpoint = receiver.endpoint(pull).unwrap_or_default().to_owned();
                let mut b =
                    engine.worker("flow-send").idle(IdleStrategy::BLOCK).pin(send_core).batch_max(batch);
                let push = b.socket(SocketSpec::connect(SocketKind::Push, endpoint.parse()?));
                (spawn_sender(b, push)?, receiver, push, endpoint)
            }
            Pattern::PubSub => {
                let mut b =
                    engine.worker("flow-send").idle(IdleStrategy::BLOCK).pin(send_core).batch_max(batch);
                let publ = b.socket(
                    SocketSpec::bind(SocketKind::Pub, ep).xpub_nodrop(true).on_full(FullPolicy::Block),
                );
                let sender = spawn_sender(b, publ)?;
                let endpoint = sender.endpoint(publ).unwrap_or_default().to_owned();
                let spec = SocketSpec::connect(SocketKind::Sub, endpoint.parse()?).subscribe(Vec::new());
                let (b, _) = receiver_builder(&engine, spec, recv_core, batch);
                (sender, b.on_message(counter).spawn()?, publ, endpoint)
            }
        };
        let mut pair = FlowPair {
            source,
            handle: sender.handle(),
            sock,
            jobs,
            target,
            received,
            wrong,
            done,
            base: 0,
            payload,
            pool,
            sender: Some(sender),
            receiver: Some(receiver),
            endpoint,
            _engine: engine,
        };
        if pattern == Pattern::PubSub {
            pair.await_subscription();
        }
        pair.run(flow_warmup(size));
        Ok(pair)
    }

    /// PUB drops everything until the SUB's subscription has arrived: send single probes
    /// until one gets through, then let the stragglers land before counting from there.
    fn await_subscription(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.received.load(Ordering::Acquire) == 0 {
            assert!(Instant::now() < deadline, "the SUB did not receive anything within 10 s");
            let msg = self.message();
            self.handle.send(self.sock, msg).expect("sender running");
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(50));
        self.base = self.received.load(Ordering::Acquire);
    }

    fn message(&self) -> Outbound {
        match &self.pool {
            Some(pool) => {
                let mut buf = pool.get();
                buf.extend_from_slice(&self.payload).expect("a pool buffer holds the payload");
                buf.into()
            }
            None => self.payload.clone().into(),
        }
    }

    /// The buffer pool's counters (pooled sends only).
    pub fn pool_stats(&self) -> Option<PoolStats> {
        self.pool.as_ref().map(BufferPool::stats)
    }

    /// Messages counted with the wrong size (should be 0).
    pub fn wrong_sizes(&self) -> u64 {
        self.wrong.load(Ordering::Relaxed)
    }

    /// The sender's mean messages per pass (sent / passes that sent).
    pub fn mean_batch(&self) -> f64 {
        let s = self.handle.stats();
        if s.batches == 0 {
            0.0
        } else {
            s.sent as f64 / s.batches as f64
        }
    }
}

impl Flow for FlowPair {
    fn run(&mut self, n: u64) -> Duration {
        if n == 0 {
            return Duration::ZERO;
        }
        let end = self.base + n;
        self.target.store(end, Ordering::Release);
        let start = Instant::now();
        match self.source {
            Source::Handoff => {
                for _ in 0..n {
                    let msg = self.message();
                    self.handle.send(self.sock, msg).expect("sender running");
                }
            }
            Source::Worker => {
                self.jobs.send(n).expect("sender running");
                // An empty closure wakes the parked worker; its handler then finds the job.
                self.handle.run(|_| {});
            }
        }
        if self.done.recv_timeout(STALL).is_err() {
            panic!(
                "{} of {n} messages arrived within {STALL:?}",
                self.received.load(Ordering::Acquire).saturating_sub(self.base)
            );
        }
        let elapsed = start.elapsed();
        self.base = end;
        elapsed
    }
}

impl Drop for FlowPair {
    fn drop(&mut self) {
        for w in [self.sender.take(), self.receiver.take()].into_iter().flatten() {
            if let Err(e) = w.stop() {
                eprintln!("warning: stopping a throughput worker: {e}");
            }
        }
        remove_ipc(&self.endpoint);
    }
}
