//! The pipeline (the guide's ventilator, workers and sink) on the engine: a [`Ventilator`]
//! PUSHes typed tasks, [`PipelineWorker`]s PULL them, compute, and PUSH typed results to a
//! [`Sink`], which counts every task id and proves that none was lost or repeated.
//!
//! **No sleeping for workers.** Each worker announces itself to the sink
//! ([`ToSink::Ready`]) as soon as its sockets are connected, and [`Sink::wait_ready`] waits
//! for the number expected: only then should the ventilator start. (libzmq attaches a
//! connecting peer's pipe asynchronously, so a worker that joins late may get fewer tasks;
//! no correctness property depends on the spread, only on the sink's count.)
//!
//! **One wire format end to end.** Tasks travel as [`Task<T>`], results as [`ToSink<R>`],
//! both bincode 2 (see [`crate::codec`]), one frame each; the sink decodes exactly what the
//! workers encode.
//!
//! ```
//! use std::time::Duration;
//! use ztick::{Endpoint, Engine};
//! use ztick::patterns::{PipelineWorker, Sink, StageConfig, Ventilator};
//!
//! let engine = Engine::new()?;
//! let cfg = StageConfig::default();
//! let sink = Sink::<u64>::bind(&engine, &Endpoint::unique_inproc("sink"), &cfg, |_| {})?;
//! let mut vent = Ventilator::<u64>::bind(&engine, &Endpoint::unique_inproc("vent"), &cfg)?;
//! let workers = (0..2)
//!     .map(|i| {
//!         let cfg = StageConfig { name: format!("square-{i}"), ..StageConfig::default() };
//!         PipelineWorker::spawn(&engine, vent.endpoint(), sink.endpoint(), &cfg, |x: u64| x * x)
//!     })
//!     .collect::<Result<Vec<_>, _>>()?;
//! sink.wait_ready(2, Duration::from_secs(5))?;
//! for x in 0..100u64 {
//!     vent.send(&x)?;
//! }
//! let report = sink.wait_results(100, Duration::from_secs(5));
//! assert!(report.is_complete(), "{report:?}");
//! # drop(workers);
//! # Ok::<(), ztick::Error>(())
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::marker::PhantomData;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::input::{wire_limit, InputCounters, InputStats, Malformed};
use super::ledger::{IdLedger, Recorded};
use super::pubsub::{check_shape, resolved, DEFAULT_MAX_MSG_BYTES};
use crate::config::{SocketKind, SocketOptions};
use crate::endpoint::Endpoint;
use crate::engine::{Engine, Handle, Handler, SocketId, SocketSpec, Worker, WorkerCtx, WorkerStats};
use crate::error::{Error, Operation, Result};
use crate::message::{codec, Inbound};

/// A task on the wire, ventilator to worker: one bincode frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task<T> {
    /// Its id: the ventilator numbers tasks 0, 1, 2… in the order it sends them.
    pub id: u64,
    /// The work.
    pub value: T,
}

/// A result on the wire, worker to sink: one bincode frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToSink<R> {
    /// A worker's announcement that it is connected and ready for tasks.
    Ready {
        /// The worker's name.
        worker: String,
    },
    /// A finished task.
    Done(Done<R>),
}

/// One finished task, as the sink receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done<R> {
    /// The task's id.
    pub id: u64,
    /// The worker that did it.
    pub worker: String,
    /// The result.
    pub value: R,
}

/// Settings of one pipeline stage. Plain data: fill in what you need, `..Default::default()`.
#[derive(Debug, Clone)]
pub struct StageConfig {
    /// The stage's worker name, for traces and for [`SinkReport::per_worker`]. Default `stage`.
    pub name: String,
    /// Options of the stage's sockets (HWMs, linger…), applied before bind/connect.
    /// Default: libzmq's, with ztick's 1 s linger.
    pub options: SocketOptions,
    /// The largest task or result accepted, in bytes; bigger ones are refused and counted
    /// as [`Malformed::TooLarge`]. Default [`DEFAULT_MAX_MSG_BYTES`] (1 MiB). The PULL
    /// sockets' `ZMQ_MAXMSGSIZE`, unless `options` sets one, is twice this (at least 64 KiB
    /// more): a larger frame drops the peer's connection instead.
    pub max_msg_bytes: usize,
    /// Sink: the most worker names it keeps (announcements in [`SinkReport::ready`],
    /// results in [`SinkReport::per_worker`]), each at most [`MAX_WORKER_NAME_BYTES`].
    /// A new name beyond it evicts the least recently heard one, counted in
    /// [`SinkReport::evicted`] and traced. Default 1024.
    pub max_workers: usize,
    /// Sink: a worker name not heard from for this long is forgotten (counted as evicted)
    /// when room is needed for a new one. Default 5 minutes.
    pub worker_expiry: Duration,
    /// Sink: the most ranges of consecutive ids its ledger holds. A run from one
    /// ventilator is one range however long; ids a peer makes up each take one, and a
    /// result that would need one more is not recorded, counted in
    /// [`SinkReport::unrecorded`] and traced. Default 65,536 (about 3 MB).
    pub max_id_ranges: usize,
}

/// The longest worker name a sink accepts (in an announcement or a result); longer ones
/// are refused as [`Malformed::TooLarge`].
pub const MAX_WORKER_NAME_BYTES: usize = 255;

impl StageConfig {
    /// The options of a receiving (PULL) socket: `options`, with a frame size limit derived
    /// from `max_msg_bytes` unless they set one.
    fn pull_options(&self) -> SocketOptions {
        self.options.clone().max_msg_bytes_or(wire_limit(self.max_msg_bytes))
    }
}

impl Default for StageConfig {
    fn default() -> Self {
        StageConfig {
            name: "stage".to_owned(),
            options: SocketOptions::default(),
            max_msg_bytes: DEFAULT_MAX_MSG_BYTES,
            max_workers: 1024,
            worker_expiry: Duration::from_secs(300),
            max_id_ranges: 1 << 16,
        }
    }
}

/// The first stage: an engine worker owning a bound PUSH socket that spreads tasks over the
/// connected workers, round robin. At the HWM it waits (nothing is dropped), so a slow
/// pipeline pushes back on [`Ventilator::send`].
pub struct Ventilator<T> {
    handle: Handle,
    sock: SocketId,
    endpoint: Endpoint,
    /// The id the next task gets; ids below it have been handed to the worker, so the
    /// sink's ledger expects exactly `0..next_id`.
    next_id: u64,
    worker: Worker,
    _task: PhantomData<fn(&T)>,
}

impl<T> std::fmt::Debug for Ventilator<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ventilator")
            .field("endpoint", &self.endpoint.to_string())
            .field("sent", &self.next_id)
            .finish()
    }
}

impl<T: Serialize> Ventilator<T> {
    /// A ventilator bound to `endpoint`.
    ///
    /// # Errors
    /// The socket could not be created, configured or bound.
    pub fn bind(engine: &Engine, endpoint: &Endpoint, cfg: &StageConfig) -> Result<Self> {
        let mut b = engine.worker(&cfg.name);
        let sock =
            b.socket(SocketSpec::bind(SocketKind::Push, endpoint.clone()).options(cfg.options.clone()));
        let worker = b.spawn()?;
        let endpoint = resolved(&worker, sock)?;
        Ok(Ventilator { handle: worker.handle(), sock, endpoint, next_id: 0, worker, _task: PhantomData })
    }

    /// The endpoint workers connect to (for tcp, with the real port).
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Sends one task; returns its id. Waits while the hand-off channel is full. An id is
    /// used up only by a task handed over, so ids stay contiguous whatever fails.
    ///
    /// # Errors
    /// [`Error::Decode`] if serde refuses the value; [`Error::Stopped`] if the worker stopped.
    pub fn send(&mut self, value: &T) -> Result<u64> {
        let id = self.next_id;
        let bytes = codec::encode(&Task { id, value })?;
        self.handle.send(self.sock, bytes).map_err(|e| Error::Stopped(format!("ventilator: {e}")))?;
        self.next_id += 1;
        Ok(id)
    }

    /// Tasks handed over so far (ids `0..sent()`).
    pub fn sent(&self) -> u64 {
        self.next_id
    }

    /// Stops after every task handed over has gone to libzmq (up to the drain timeout);
    /// the worker's counters: `sent` tasks, `dropped` if the drain gave up.
    ///
    /// # Errors
    /// The worker panicked, or a socket error ended its loop.
    pub fn stop(self) -> Result<WorkerStats> {
        Ok(self.worker.stop()?.stats)
    }
}

/// The middle stage: an engine worker that PULLs tasks from a ventilator, runs a function on
/// each, and PUSHes the result to a sink.
///
/// Malformed tasks (empty, not one frame, over [`StageConfig::max_msg_bytes`], not a
/// bincode [`Task<T>`]) are refused, counted in [`PipelineWorker::input_stats`] and traced
/// with the ventilator's endpoint; the worker serves on.
pub struct PipelineWorker {
    input: Arc<InputCounters>,
    worker: Worker,
}

impl std::fmt::Debug for PipelineWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelineWorker").field("name", &self.worker.name()).finish()
    }
}

impl PipelineWorker {
    /// Starts a worker named `cfg.name` that connects to the ventilator at `tasks` and the
    /// sink at `results`, announces itself to the sink, then runs `f` on every task.
    ///
    /// # Errors
    /// A socket could not be created, configured or connected.
    pub fn spawn<T, R, F>(
        engine: &Engine,
        tasks: &Endpoint,
        results: &Endpoint,
        cfg: &StageConfig,
        f: F,
    ) -> Result<PipelineWorker>
    where
        T: DeserializeOwned + Send + 'static,
        R: Serialize + Send + 'static,
        F: FnMut(T) -> R + Send + 'static,
    {
        let input = Arc::new(InputCounters::default());
        let mut b = engine.worker(&cfg.name);
        let pull = b.socket(SocketSpec::connect(SocketKind::Pull, tasks.clone()).options(cfg.pull_options()));
        let push =
            b.socket(SocketSpec::connect(SocketKind::Push, results.clone()).options(cfg.options.clone()));
        let handler = WorkerHandler {
            name: cfg.name.clone(),
            pull,
            push,
            max_bytes: cfg.max_msg_bytes,
            input: Arc::clone(&input),
            f,
            _types: PhantomData,
        };
        let worker = b.handler(handler).spawn()?;
        Ok(PipelineWorker { input, worker })
    }

    /// The worker's name.
    pub fn name(&self) -> &str {
        self.worker.name()
    }

    /// Tasks done and each kind of malformed task refused so far.
    pub fn input_stats(&self) -> InputStats {
        self.input.snapshot()
    }

    /// Stops the worker after it has sent the results it holds; returns its input counts.
    ///
    /// # Errors
    /// The worker panicked, or a socket error ended its loop.
    pub fn stop(self) -> Result<InputStats> {
        self.worker.stop()?;
        Ok(self.input.snapshot())
    }
}

struct WorkerHandler<T, R, F> {
    name: String,
    pull: SocketId,
    push: SocketId,
    max_bytes: usize,
    input: Arc<InputCounters>,
    f: F,
    _types: PhantomData<fn(T) -> R>,
}

impl<T, R, F> Handler for WorkerHandler<T, R, F>
where
    T: DeserializeOwned + Send,
    R: Serialize + Send,
    F: FnMut(T) -> R + Send,
{
    fn on_start(&mut self, ctx: &mut WorkerCtx<'_>) -> Result<()> {
        // The ready handshake: the connect-side PUSH queues this until the sink is reached.
        let hello = codec::encode(&ToSink::<R>::Ready { worker: self.name.clone() })?;
        ctx.send(self.push, &hello)
    }

    fn on_message(&mut self, ctx: &mut WorkerCtx<'_>, socket: SocketId, msg: &Inbound<'_>) -> Result<()> {
        if socket != self.pull {
            return Ok(()); // PUSH never receives
        }
        let peer =
            || format!("pipeline worker {} PULL from {}", self.name, ctx.endpoint(socket).unwrap_or("?"));
        if let Err((why, detail)) = check_shape(msg, 1, "a task", self.max_bytes) {
            self.input.refuse(why, &peer(), &detail);
            return Ok(());
        }
        let task: Task<T> = match codec::decode(msg.last(), "ventilator") {
            Ok(t) => t,
            Err(e) => {
                self.input.refuse(Malformed::Undecodable, &peer(), &e);
                return Ok(());
            }
        };
        let value = (self.f)(task.value);
        let done: ToSink<R> = ToSink::Done(Done { id: task.id, worker: self.name.clone(), value });
        ctx.send(self.push, &codec::encode(&done)?)?;
        self.input.handled();
        Ok(())
    }
}

/// What a sink has received, against the tasks expected (ids `0..expected`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SinkReport {
    /// Tasks expected: ids `0..expected`.
    pub expected: u64,
    /// Distinct expected ids received.
    pub received: u64,
    /// Expected ids never received.
    pub missing: u64,
    /// The first missing ids (at most 32), for the error message.
    pub first_missing: Vec<u64>,
    /// Results received for an id already received.
    pub duplicates: u64,
    /// Results with an id outside `0..expected`.
    pub unexpected: u64,
    /// Workers that announced themselves, in order of arrival.
    pub ready: Vec<String>,
    /// Results per worker name (the spread of the work), for the names kept (see
    /// [`StageConfig::max_workers`]).
    pub per_worker: BTreeMap<String, u64>,
    /// Worker names forgotten to make room for new ones: expired, or the least recently
    /// heard when all were fresh.
    pub evicted: u64,
    /// Results whose id the ledger had no room for ([`StageConfig::max_id_ranges`]).
    pub unrecorded: u64,
    /// The sink's input: results and announcements handled, malformed messages refused.
    pub input: InputStats,
}

impl SinkReport {
    /// True when every expected id arrived exactly once and nothing else did.
    pub fn is_complete(&self) -> bool {
        self.received == self.expected
            && self.missing == 0
            && self.duplicates == 0
            && self.unexpected == 0
            && self.unrecorded == 0
    }
}

/// One worker name a sink keeps.
#[derive(Debug)]
struct WorkerEntry {
    /// Results from it.
    results: u64,
    /// When it was last heard from (announcement or result).
    heard: Instant,
    /// Its key in `SinkState::lru`.
    seq: u64,
}

#[derive(Debug)]
struct SinkState {
    /// Announcements, in order of arrival; at most `max_workers`.
    ready: VecDeque<String>,
    ids: IdLedger,
    duplicates: u64,
    unrecorded: u64,
    /// At most `max_workers` names.
    workers: BTreeMap<String, WorkerEntry>,
    /// The same names by when they were last heard, least recently first (a counter, so
    /// equal clock readings keep their order): evicting costs O(log n), not a scan, so a
    /// stranger's stream of new names costs the sink no more per name at the cap than below.
    lru: BTreeMap<u64, String>,
    /// The next `seq`.
    next_seq: u64,
    evicted: u64,
    max_workers: usize,
    worker_expiry: Duration,
}

impl SinkState {
    fn new(cfg: &StageConfig) -> Self {
        SinkState {
            ready: VecDeque::new(),
            ids: IdLedger::new(cfg.max_id_ranges),
            duplicates: 0,
            unrecorded: 0,
            workers: BTreeMap::new(),
            lru: BTreeMap::new(),
            next_seq: 0,
            evicted: 0,
            max_workers: cfg.max_workers.max(1),
            worker_expiry: cfg.worker_expiry,
        }
    }

    /// Notes that `name` was heard from at `now`; the entry, made room for if it is new:
    /// expired names go first, then the least recently heard. Every eviction is counted
    /// and traced (the first few, then one in a thousand).
    fn heard(&mut self, name: &str, now: Instant) -> &mut WorkerEntry {
        let seq = self.next_seq;
        self.next_seq += 1;
        if let Some(old) = self.workers.get(name).map(|w| w.seq) {
            self.lru.remove(&old);
        } else if self.workers.len() >= self.max_workers {
            // Least recently heard first: every expired one goes, and the oldest if none has.
            while let Some((&oldest, key)) = self.lru.first_key_value() {
                let expired = self
                    .workers
                    .get(key)
                    .is_none_or(|w| now.saturating_duration_since(w.heard) >= self.worker_expiry);
                if !expired && self.workers.len() < self.max_workers {
                    break;
                }
                if let Some(key) = self.lru.remove(&oldest) {
                    self.workers.remove(&key);
                }
                self.evicted += 1;
                if self.evicted <= 10 || self.evicted.is_multiple_of(1000) {
                    tracing::warn!(evicted = self.evicted, max = self.max_workers, new = %name, "sink: worker names at their cap; the oldest forgotten");
                }
            }
        }
        self.lru.insert(seq, name.to_owned());
        let entry =
            self.workers.entry(name.to_owned()).or_insert(WorkerEntry { results: 0, heard: now, seq });
        entry.heard = now;
        entry.seq = seq;
        entry
    }

    /// Records an announcement; the list keeps the last `max_workers`.
    fn announce(&mut self, name: String, now: Instant) {
        self.heard(&name, now);
        if self.ready.len() >= self.max_workers {
            self.ready.pop_front();
        }
        self.ready.push_back(name);
    }
}

#[derive(Debug)]
struct SinkShared {
    state: Mutex<SinkState>,
    changed: Condvar,
}

impl SinkShared {
    fn lock(&self) -> MutexGuard<'_, SinkState> {
        // Counters only: a panic elsewhere leaves them usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The last stage: an engine worker owning a bound PULL socket that collects results,
/// hands each to a callback, and keeps the ledger behind [`SinkReport`].
///
/// Malformed messages (empty, not one frame, too large, not a bincode [`ToSink<R>`]) are
/// refused, counted and traced; the sink serves on.
pub struct Sink<R> {
    endpoint: Endpoint,
    shared: Arc<SinkShared>,
    input: Arc<InputCounters>,
    worker: Worker,
    _result: PhantomData<fn() -> R>,
}

impl<R> std::fmt::Debug for Sink<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink").field("endpoint", &self.endpoint.to_string()).finish()
    }
}

impl<R: DeserializeOwned + Send + 'static> Sink<R> {
    /// A sink bound to `endpoint` that calls `on_result` (on its worker thread) for every
    /// result, duplicates included.
    ///
    /// # Errors
    /// The socket could not be created, configured or bound.
    pub fn bind(
        engine: &Engine,
        endpoint: &Endpoint,
        cfg: &StageConfig,
        on_result: impl FnMut(Done<R>) + Send + 'static,
    ) -> Result<Self> {
        let shared = Arc::new(SinkShared { state: Mutex::new(SinkState::new(cfg)), changed: Condvar::new() });
        let input = Arc::new(InputCounters::default());
        let mut b = engine.worker(&cfg.name);
        let sock = b.socket(SocketSpec::bind(SocketKind::Pull, endpoint.clone()).options(cfg.pull_options()));
        let handler = SinkHandler {
            shared: Arc::clone(&shared),
            input: Arc::clone(&input),
            max_bytes: cfg.max_msg_bytes,
            on_result,
            _result: PhantomData,
        };
        let worker = b.handler(handler).spawn()?;
        let endpoint = resolved(&worker, sock)?;
        Ok(Sink { endpoint, shared, input, worker, _result: PhantomData })
    }
}

impl<R> Sink<R> {
    /// The endpoint workers connect to (for tcp, with the real port).
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Waits until `n` workers have announced themselves; returns their names.
    ///
    /// # Errors
    /// [`Error::Timeout`], naming the workers seen.
    pub fn wait_ready(&self, n: usize, timeout: Duration) -> Result<Vec<String>> {
        let deadline = Instant::now() + timeout;
        let mut st = self.shared.lock();
        loop {
            if st.ready.len() >= n {
                return Ok(st.ready.iter().cloned().collect());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Timeout {
                    op: Operation::Recv,
                    endpoint: format!(
                        "sink PULL {} waiting for {n} workers (ready: {:?})",
                        self.endpoint, st.ready
                    ),
                    ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
                });
            }
            st = self.shared.changed.wait_timeout(st, left).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// Waits until every id in `0..expected` has arrived, at most `timeout`, and reports.
    /// A timeout is not an error here: the report says what is missing.
    pub fn wait_results(&self, expected: u64, timeout: Duration) -> SinkReport {
        let deadline = Instant::now() + timeout;
        let mut st = self.shared.lock();
        loop {
            let done = st.ids.len() >= expected && st.ids.count_below(expected) >= expected;
            let left = deadline.saturating_duration_since(Instant::now());
            if done || left.is_zero() {
                return report_of(&st, &self.input, expected);
            }
            st = self.shared.changed.wait_timeout(st, left).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// The ledger now, against ids `0..expected`.
    pub fn report(&self, expected: u64) -> SinkReport {
        let st = self.shared.lock();
        report_of(&st, &self.input, expected)
    }

    /// Results, announcements and malformed messages counted so far.
    pub fn input_stats(&self) -> InputStats {
        self.input.snapshot()
    }

    /// Stops the sink; returns the final ledger against ids `0..expected`.
    ///
    /// # Errors
    /// The worker panicked, or a socket error ended its loop.
    pub fn stop(self, expected: u64) -> Result<SinkReport> {
        let Sink { shared, input, worker, .. } = self;
        worker.stop()?;
        let st = shared.lock();
        Ok(report_of(&st, &input, expected))
    }
}

fn report_of(st: &SinkState, input: &InputCounters, expected: u64) -> SinkReport {
    let received = st.ids.count_below(expected);
    let mut first_missing = Vec::new();
    if received < expected {
        first_missing = st.ids.missing_below(expected, 32);
    }
    SinkReport {
        expected,
        received,
        missing: expected - received,
        first_missing,
        duplicates: st.duplicates,
        unexpected: st.ids.len() - received,
        ready: st.ready.iter().cloned().collect(),
        per_worker: st.workers.iter().map(|(k, w)| (k.clone(), w.results)).collect(),
        evicted: st.evicted,
        unrecorded: st.unrecorded,
        input: input.snapshot(),
    }
}

struct SinkHandler<R, F> {
    shared: Arc<SinkShared>,
    input: Arc<InputCounters>,
    max_bytes: usize,
    on_result: F,
    _result: PhantomData<fn() -> R>,
}

impl<R, F> Handler for SinkHandler<R, F>
where
    R: DeserializeOwned,
    F: FnMut(Done<R>) + Send,
{
    fn on_message(&mut self, ctx: &mut WorkerCtx<'_>, socket: SocketId, msg: &Inbound<'_>) -> Result<()> {
        let peer = || format!("sink PULL {}", ctx.endpoint(socket).unwrap_or("?"));
        if let Err((why, detail)) = check_shape(msg, 1, "a result", self.max_bytes) {
            self.input.refuse(why, &peer(), &detail);
            return Ok(());
        }
        let done = match codec::decode::<ToSink<R>>(msg.last(), "pipeline worker") {
            Ok(ToSink::Ready { worker }) | Ok(ToSink::Done(Done { worker, .. }))
                if worker.len() > MAX_WORKER_NAME_BYTES =>
            {
                let detail =
                    format!("a worker name of {} bytes; at most {MAX_WORKER_NAME_BYTES}", worker.len());
                self.input.refuse(Malformed::TooLarge, &peer(), &detail);
                return Ok(());
            }
            Ok(ToSink::Done(d)) => d,
            Ok(ToSink::Ready { worker }) => {
                self.input.handled();
                self.shared.lock().announce(worker, Instant::now());
                self.shared.changed.notify_all();
                return Ok(());
            }
            Err(e) => {
                self.input.refuse(Malformed::Undecodable, &peer(), &e);
                return Ok(());
            }
        };
        // Counted and handed on before the ledger moves, so whoever waits on the ledger
        // finds both done.
        self.input.handled();
        let (id, worker) = (done.id, done.worker.clone());
        (self.on_result)(done);
        {
            let mut st = self.shared.lock();
            match st.ids.insert(id) {
                Recorded::New => {}
                Recorded::Duplicate => {
                    st.duplicates += 1;
                    if st.duplicates <= 10 || st.duplicates.is_multiple_of(1000) {
                        tracing::warn!(peer = %peer(), id, %worker, duplicates = st.duplicates, "duplicate result");
                    }
                }
                Recorded::Full => {
                    st.unrecorded += 1;
                    if st.unrecorded <= 10 || st.unrecorded.is_multiple_of(1000) {
                        tracing::warn!(peer = %peer(), id, %worker, unrecorded = st.unrecorded, "sink ledger at its cap of id ranges; result not recorded");
                    }
                }
            }
            st.heard(&worker, Instant::now()).results += 1;
        }
        self.shared.changed.notify_all();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(max_workers: usize, expiry: Duration) -> SinkState {
        SinkState::new(&StageConfig { max_workers, worker_expiry: expiry, ..StageConfig::default() })
    }

    #[test]
    fn expired_names_go_first_then_the_least_recently_heard() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut st = state(3, s(10));
        st.heard("a", t0).results += 1;
        st.heard("b", t0 + s(1));
        st.heard("c", t0 + s(2));
        // "a" heard again, so "b" is the least recently heard.
        st.heard("a", t0 + s(3));
        st.heard("d", t0 + s(4));
        assert_eq!(st.workers.keys().collect::<Vec<_>>(), ["a", "c", "d"]);
        assert_eq!(st.workers["a"].results, 1, "a kept name keeps its count");
        assert_eq!(st.evicted, 1);
        // Much later all three have expired: making room for "e" forgets them all.
        st.heard("e", t0 + s(60));
        assert_eq!(st.workers.keys().collect::<Vec<_>>(), ["e"]);
        assert_eq!(st.evicted, 4);
        // A known name never evicts.
        st.heard("e", t0 + s(61));
        assert_eq!(st.evicted, 4);
        assert_eq!(st.lru.values().collect::<Vec<_>>(), ["e"], "the index follows the names");
    }

    #[test]
    fn announcements_keep_the_last_max_workers() {
        let t0 = Instant::now();
        let mut st = state(2, Duration::from_secs(300));
        for n in ["a", "b", "c"] {
            st.announce(n.to_owned(), t0);
        }
        assert_eq!(st.ready, ["b", "c"]);
        assert!(st.workers.len() <= 2);
    }
}
