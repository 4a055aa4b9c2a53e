//! Throughput: a PUSH worker sends as fast as the HWM lets it; a PULL worker counts.

use std::time::{Duration, Instant};

use ztick::curve::Curve;
use ztick::{
    now_ns, BufferPool, ConnectedPeers, CoreId, Endpoint, Engine, Error, Handler, IdleStrategy, Inbound,
    Operation, PeerEvent, Result, SocketId, SocketKind, SocketOptions, SocketSpec, Transport, Worker,
    WorkerCtx,
};

use super::lat::{lingering, wait, with_curve};
use super::{frame_limit, trace_refused};

/// How long a receiver whose every sender has hung up waits for more before it reports
/// what it got and fails: messages still in flight arrive within it, and a sender that
/// reconnects within it lets the run go on.
pub(crate) const SENDER_GONE_GRACE: Duration = Duration::from_secs(1);
use crate::schema::{to_line, ThrJson};

/// Settings shared by the throughput tools.
#[derive(Debug, Clone)]
pub(crate) struct ThrSide {
    /// Message size in bytes.
    pub(crate) size: usize,
    /// Messages to move.
    pub(crate) count: u64,
    /// The worker's idle strategy.
    pub(crate) idle: IdleStrategy,
    /// Core to pin the worker to.
    pub(crate) pin: Option<CoreId>,
    /// Messages sent per pass of the sender's loop.
    pub(crate) batch: usize,
    /// Send from pooled buffers without copying (above 33 bytes).
    pub(crate) pooled: bool,
    /// Give up when the run has not finished after this long (`None`: never).
    pub(crate) timeout: Option<Duration>,
    /// This side's CURVE role (the system libzmq build only).
    pub(crate) curve: Option<Curve>,
    /// A CURVE server's ZAP domain, set with an allow-list so that it fails closed.
    pub(crate) zap_domain: Option<&'static str>,
}

impl ThrSide {
    /// `count` messages of `size` bytes, blocking idle, batches of 256, copying sends.
    pub(crate) fn new(size: usize, count: u64) -> Self {
        ThrSide {
            size,
            count,
            idle: IdleStrategy::BLOCK,
            pin: None,
            batch: 256,
            pooled: false,
            timeout: None,
            curve: None,
            zap_domain: None,
        }
    }
}

/// Settings for `ztick thr`: both ends in one process.
#[derive(Debug, Clone)]
pub(crate) struct ThrOptions {
    /// The transport.
    pub(crate) transport: Transport,
    /// The sender's settings (the receiver uses the same size, count and idle strategy).
    pub(crate) side: ThrSide,
    /// Core for the receiver.
    pub(crate) recv_pin: Option<CoreId>,
    /// Let spinning workers exceed the core budget.
    pub(crate) force: bool,
    /// Cores for libzmq's I/O thread; empty: unpinned.
    pub(crate) io_cores: Vec<CoreId>,
    /// The receiver's CURVE role; `side.curve` is the sender's.
    pub(crate) recv_curve: Option<Curve>,
}

/// The result of a throughput run, as libzmq's `local_thr` reports it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ThrReport {
    /// Message size in bytes.
    pub(crate) size: usize,
    /// Messages received.
    pub(crate) count: u64,
    /// From the first message received to the last, in nanoseconds.
    pub(crate) elapsed_ns: u64,
}

impl ThrReport {
    /// Messages per second (libzmq: count / elapsed).
    pub(crate) fn msgs_per_s(&self) -> f64 {
        if self.elapsed_ns == 0 {
            return 0.0;
        }
        self.count as f64 * 1e9 / self.elapsed_ns as f64
    }

    /// Megabits per second of payload (libzmq: msgs/s x size x 8 / 1e6).
    pub(crate) fn mbit_per_s(&self) -> f64 {
        self.msgs_per_s() * self.size as f64 * 8.0 / 1e6
    }

    /// The four lines libzmq's `local_thr` prints.
    pub(crate) fn to_text(self) -> String {
        format!(
            "message size: {} [B]\nmessage count: {}\nmean throughput: {} [msg/s]\nmean throughput: {:.3} [Mb/s]\n",
            self.size,
            self.count,
            self.msgs_per_s() as u64,
            self.mbit_per_s()
        )
    }

    /// One JSON object: `size`, `count`, `msgs_per_s`, `mbit_per_s`.
    pub(crate) fn to_json(self) -> String {
        let j = ThrJson {
            size: self.size as u64,
            count: self.count,
            msgs_per_s: self.msgs_per_s().round() as u64,
            mbit_per_s: (self.mbit_per_s() * 1000.0).round() / 1000.0,
        };
        to_line(&j)
    }
}

/// How a count ended.
#[derive(Debug, Clone, Copy)]
enum CountEnd {
    /// Every message arrived: the time from the first to the last, and the refused.
    Done { elapsed_ns: u64, refused: u64 },
    /// Every sender hung up and nothing more came for [`SENDER_GONE_GRACE`].
    SendersGone { received: u64, refused: u64 },
}

/// A PULL worker counting messages; started before the sender so its endpoint is known.
struct Counter {
    worker: Worker,
    done_rx: crossbeam_channel::Receiver<CountEnd>,
    endpoint: String,
    side: ThrSide,
}

impl Counter {
    fn start(engine: &Engine, endpoint: Endpoint, bind: bool, side: &ThrSide) -> Result<Counter> {
        let (done_tx, done_rx) = crossbeam_channel::bounded(1);
        let spec = if bind {
            SocketSpec::bind(SocketKind::Pull, endpoint)
        } else {
            SocketSpec::connect(SocketKind::Pull, endpoint)
        };
        let mut b = engine.worker("pull").idle(side.idle).pin(side.pin).batch_max(side.batch);
        let opts = SocketOptions::default().max_msg_bytes(frame_limit(side.size));
        let pull = b.socket(spec.options(with_curve(opts, &side.curve, side.zap_domain)));
        let monitor_ep = Endpoint::unique_inproc("ztick-thr-peers");
        let monitor = b.socket(SocketSpec::connect(SocketKind::Pair, monitor_ep.clone()));
        let count = Count {
            pull,
            monitor,
            monitor_ep,
            size: side.size,
            count: side.count,
            got: 0,
            refused: 0,
            first_ns: 0,
            peers: ConnectedPeers::default(),
            gone_at: None,
            done: done_tx,
        };
        let worker = b.handler(count).spawn()?;
        let endpoint = worker.endpoint(pull).unwrap_or_default().to_owned();
        Ok(Counter { worker, done_rx, endpoint, side: side.clone() })
    }

    fn wait(self) -> Result<ThrReport> {
        let Counter { worker, done_rx, endpoint, side } = self;
        let res = wait(&done_rx, side.timeout, &endpoint, Operation::Recv);
        worker.stop()?;
        match res? {
            CountEnd::Done { elapsed_ns, refused } => {
                if refused > 0 {
                    eprintln!(
                        "local-thr: refused {refused} message(s) that were not one frame of {} bytes",
                        side.size
                    );
                }
                Ok(ThrReport { size: side.size, count: side.count, elapsed_ns })
            }
            CountEnd::SendersGone { received, refused } => Err(Error::Incomplete {
                endpoint: format!("PULL socket at {endpoint}"),
                received,
                expected: side.count,
                reason: format!(
                    "every sender hung up and nothing more came for {} ms ({refused} message(s) of another \
                     size refused); a sender that closes right after its last send can lose the tail of \
                     an ipc stream (libzmq issue #4660): ztick remote-thr waits for this side instead",
                    SENDER_GONE_GRACE.as_millis()
                ),
            }),
        }
    }
}

/// The receiving side: counts messages of exactly `size` bytes (others are refused:
/// counted, traced, no progress), and watches its peers, so that a run whose senders have
/// all hung up ends with what it got instead of waiting forever.
struct Count {
    pull: SocketId,
    /// The PAIR socket the PULL's monitor reports peer events on.
    monitor: SocketId,
    monitor_ep: Endpoint,
    size: usize,
    count: u64,
    got: u64,
    refused: u64,
    first_ns: u64,
    peers: ConnectedPeers,
    /// When the run ends unless a message or a sender comes first: set while no sender is
    /// connected after messages have arrived.
    gone_at: Option<Instant>,
    done: crossbeam_channel::Sender<CountEnd>,
}

impl Count {
    fn finish(&mut self, ctx: &mut WorkerCtx<'_>, end: CountEnd) {
        let _ = self.done.try_send(end);
        ctx.stop();
    }
}

impl Handler for Count {
    fn on_start(&mut self, ctx: &mut WorkerCtx<'_>) -> Result<()> {
        ctx.monitor_peers(self.pull, &self.monitor_ep)
    }

    fn on_message(&mut self, ctx: &mut WorkerCtx<'_>, socket: SocketId, msg: &Inbound<'_>) -> Result<()> {
        if socket == self.monitor {
            let event = msg.frame(0).and_then(|f| self.peers.apply(f));
            // Strangers that connect and close before anything arrived cannot end the run.
            self.gone_at = match event {
                Some(PeerEvent::Disconnected) if self.peers.is_empty() && self.got > 0 => {
                    Some(Instant::now() + SENDER_GONE_GRACE)
                }
                Some(PeerEvent::Connected) => None,
                _ => self.gone_at,
            };
            if let Some(at) = self.gone_at {
                ctx.wake_at(at);
            }
            return Ok(());
        }
        if msg.len() != 1 || msg.size_bytes() != self.size {
            self.refused += 1;
            let detail = format!(
                "{} frame(s) of {} bytes; expected one of {}",
                msg.len(),
                msg.size_bytes(),
                self.size
            );
            trace_refused("local-thr", self.refused, &detail);
            return Ok(());
        }
        if self.got == 0 {
            self.first_ns = now_ns();
        }
        self.got += 1;
        if let Some(at) = self.gone_at.as_mut() {
            // The departed sender's last messages are still coming in: wait for the rest.
            *at = Instant::now() + SENDER_GONE_GRACE;
        }
        if self.got == self.count {
            let end = CountEnd::Done { elapsed_ns: now_ns() - self.first_ns, refused: self.refused };
            self.finish(ctx, end);
        }
        Ok(())
    }

    fn on_tick(&mut self, ctx: &mut WorkerCtx<'_>) -> Result<bool> {
        match self.gone_at {
            Some(at) if Instant::now() >= at => {
                let end = CountEnd::SendersGone { received: self.got, refused: self.refused };
                self.finish(ctx, end);
                Ok(true)
            }
            Some(at) => {
                ctx.wake_at(at);
                Ok(false)
            }
            None => Ok(false),
        }
    }
}

/// Receives `count` messages on a PULL socket (`local-thr`); times from the first.
pub(crate) fn count_incoming(
    engine: &Engine,
    endpoint: Endpoint,
    bind: bool,
    side: &ThrSide,
) -> Result<ThrReport> {
    if side.count == 0 {
        return Ok(ThrReport { size: side.size, count: 0, elapsed_ns: 0 });
    }
    Counter::start(engine, endpoint, bind, side)?.wait()
}

/// Sends `count` messages on a PUSH socket (`remote-thr`), then closes with an infinite linger.
///
/// The worker sends from its own loop, `batch` messages per pass; with `pooled`, from a
/// buffer pool without copying.
pub(crate) fn send_burst(engine: &Engine, endpoint: Endpoint, bind: bool, side: &ThrSide) -> Result<()> {
    if side.count == 0 {
        return Ok(());
    }
    let (worker, done_rx) = start_burst(engine, endpoint.clone(), bind, side)?;
    let res = wait(&done_rx, side.timeout, &endpoint.to_string(), Operation::Send);
    worker.stop()?;
    res
}

/// Starts the sending worker; the channel fires once every message is handed to libzmq.
fn start_burst(
    engine: &Engine,
    endpoint: Endpoint,
    bind: bool,
    side: &ThrSide,
) -> Result<(Worker, crossbeam_channel::Receiver<()>)> {
    let (done_tx, done_rx) = crossbeam_channel::bounded(1);
    let spec = if bind {
        SocketSpec::bind(SocketKind::Push, endpoint.clone())
    } else {
        SocketSpec::connect(SocketKind::Push, endpoint.clone())
    };
    let mut b = engine.worker("push").idle(side.idle).pin(side.pin);
    // IMMEDIATE: queue only on a completed connection, so a missing peer shows as a
    // timeout instead of messages queued for nobody (libzmq's remote_thr would hang).
    let opts = with_curve(lingering(side.timeout), &side.curve, None).immediate(true);
    let push = b.socket(spec.options(opts));
    // The receiver closes once it has every message; its disconnection is the delivery
    // confirmation (see `Burst`).
    let monitor_ep = Endpoint::unique_inproc("ztick-thr-monitor");
    let monitor = b.socket(SocketSpec::connect(SocketKind::Pair, monitor_ep.clone()));
    let burst = Burst {
        push,
        monitor,
        monitor_ep,
        payload: vec![0u8; side.size],
        pool: side.pooled.then(|| BufferPool::new(side.size, 1024)),
        count: side.count,
        batch: side.batch.max(1),
        sent: 0,
        peer_gone: false,
        done: done_tx,
    };
    let worker = b.handler(burst).spawn()?;
    Ok((worker, done_rx))
}

/// The PUSH side: sends `count` messages from its worker's loop, `batch` per pass, then
/// reports done once the receiver has disconnected (or at once, if `wait_for_peer` is off).
///
/// libzmq 4.3.4 can lose the tail of an ipc stream when the sending socket closes right
/// after sending, whatever the linger (measured here: 0.1-1.7 % of 1 M messages; libzmq
/// issue #4660). libzmq's `local_thr`, and ours, close only after receiving everything, so
/// waiting for that disconnection confirms delivery without changing the wire protocol.
struct Burst {
    push: SocketId,
    monitor: SocketId,
    monitor_ep: Endpoint,
    payload: Vec<u8>,
    pool: Option<BufferPool>,
    count: u64,
    batch: usize,
    sent: u64,
    peer_gone: bool,
    done: crossbeam_channel::Sender<()>,
}

impl Handler for Burst {
    fn on_start(&mut self, ctx: &mut WorkerCtx<'_>) -> Result<()> {
        ctx.monitor_disconnects(self.push, &self.monitor_ep)
    }

    fn on_message(&mut self, _ctx: &mut WorkerCtx<'_>, socket: SocketId, msg: &Inbound<'_>) -> Result<()> {
        if socket == self.monitor && WorkerCtx::is_disconnect_event(msg) {
            self.peer_gone = true;
        }
        Ok(())
    }

    fn on_tick(&mut self, ctx: &mut WorkerCtx<'_>) -> Result<bool> {
        if self.sent >= self.count {
            if self.peer_gone {
                let _ = self.done.try_send(());
            }
            return Ok(false);
        }
        let n = self.batch.min((self.count - self.sent) as usize);
        for _ in 0..n {
            match &self.pool {
                Some(p) => {
                    let mut buf = p.get();
                    buf.extend_from_slice(&self.payload)?;
                    ctx.send_outbound(self.push, buf.into())?;
                }
                None => ctx.send(self.push, &self.payload)?,
            }
            self.sent += 1;
        }
        Ok(true)
    }
}

/// `ztick thr`: PULL counter and PUSH sender on two workers of one engine.
pub(crate) fn run_thr(opts: &ThrOptions) -> Result<ThrReport> {
    if opts.side.count == 0 {
        return Ok(ThrReport { size: opts.side.size, count: 0, elapsed_ns: 0 });
    }
    let eb = Engine::builder()
        .io_threads(if opts.transport == Transport::Inproc { 0 } else { 1 })
        .force_core_budget(opts.force)
        .io_cores(&opts.io_cores);
    let engine = eb.build()?;
    let ep = Endpoint::local(opts.transport, "ztick-thr");
    let mut recv_side = opts.side.clone();
    recv_side.pin = opts.recv_pin;
    recv_side.curve.clone_from(&opts.recv_curve);
    if recv_side.timeout.is_none() {
        recv_side.timeout = Some(Duration::from_secs(600));
    }
    let counter = Counter::start(&engine, ep.clone(), true, &recv_side)?;
    let bound: Endpoint = counter.endpoint.parse()?;
    // The sender stays open until the receiver has counted everything: libzmq 4.3.4 can
    // lose the tail of an ipc stream when the sending socket closes right after sending
    // (libzmq issue #4660), and here both ends are ours, so delivery is confirmed instead.
    let received = match start_burst(&engine, bound, false, &opts.side) {
        Ok((sender, _)) => {
            let r = counter.wait();
            sender.stop().and(r)
        }
        // Nothing more will come: report the sender's failure now, not after the timeout.
        Err(e) => Err(e),
    };
    ep.remove_ipc_file();
    received
}
