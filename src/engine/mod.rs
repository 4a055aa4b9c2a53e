//! The engine: one libzmq context, its I/O threads, and pinned workers that own sockets;
//! and the two ways back from a worker to application threads that the patterns and the
//! fan-out share: `Delivery` of what it received (callback or channel), and a
//! `Watch` of state it updates (subscribers seen, a stream ended).

mod budget;
mod deliver;
mod handle;
mod idle;
pub(crate) mod monitor;
mod peer;
mod watch;
mod worker;

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

pub(crate) use deliver::{Delivery, Outbox};
pub use handle::{Handle, SendError, SendTimeoutError, TrySendError, WorkerStats};
pub use idle::IdleStrategy;
pub use monitor::{HandshakeFailure, MonitorEvent, MonitorStats, SocketEvent, SocketMonitor};
pub use peer::{ConnectedPeers, PeerEvent};
pub(crate) use watch::Watch;
pub(crate) use worker::open_socket;
pub use worker::{
    Handler, HandlerGroup, InlineWorker, MessageHandler, Received, SocketSpec, TickHandler, Worker,
    WorkerBuilder, WorkerCtx, WorkerReport,
};

use crate::config::{CoreId, SchedPolicy};
use crate::error::{Error, Operation, Result};
use crate::sys::{self, ctx_opt, RawContext};

/// How this build links libzmq: `vendored` (a private static copy) or `system` (the shared
/// library, which a C program's own contexts also come from). Set by `build.rs`.
#[cfg_attr(not(feature = "capi"), allow(dead_code))]
pub(crate) const LIBZMQ_LINK: &str = env!("ZTICK_LIBZMQ_LINK");

/// Names one socket of a worker, in the order the sockets were added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SocketId(pub(crate) usize);

impl SocketId {
    /// The socket's position among its worker's sockets.
    pub fn index(self) -> usize {
        self.0
    }
}

/// Configures an [`Engine`]; every field has a documented default.
///
/// # Examples
///
/// ```
/// use ztick::Engine;
///
/// // One libzmq I/O thread (the default), named for `top -H`.
/// let engine = Engine::builder().io_threads(1).io_thread_name_prefix(7).build()?;
/// assert_eq!(engine.io_threads(), 1);
/// assert!(!engine.cores().is_empty());
/// # Ok::<(), ztick::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct EngineBuilder {
    io_threads: usize,
    io_cores: Vec<CoreId>,
    io_thread_name_prefix: Option<u16>,
    io_sched: Option<SchedPolicy>,
    force: bool,
}

impl Default for EngineBuilder {
    fn default() -> Self {
        EngineBuilder {
            io_threads: 1,
            io_cores: Vec::new(),
            io_thread_name_prefix: None,
            io_sched: None,
            force: false,
        }
    }
}

impl EngineBuilder {
    /// libzmq I/O threads. Default 1. Zero is allowed for inproc-only engines, where no
    /// I/O thread is on the data path and a spinning worker may then have every core.
    pub fn io_threads(mut self, n: usize) -> Self {
        self.io_threads = n;
        self
    }

    /// Pins libzmq's I/O threads to these cores (`ZMQ_THREAD_AFFINITY_CPU_ADD`), each one
    /// of [`Engine::cores`]. Default: unpinned.
    pub fn io_cores(mut self, cores: &[CoreId]) -> Self {
        self.io_cores = cores.to_vec();
        self
    }

    /// Names the I/O threads `ZMQbg/<prefix>/…` (`ZMQ_THREAD_NAME_PREFIX`), to find them in `top -H`.
    pub fn io_thread_name_prefix(mut self, prefix: u16) -> Self {
        self.io_thread_name_prefix = Some(prefix);
        self
    }

    /// Runs the I/O threads under `policy` (`ZMQ_THREAD_SCHED_POLICY`, and for the real-time
    /// policies `ZMQ_THREAD_PRIORITY`), e.g. `SchedPolicy::Fifo { priority: 50 }` so that
    /// tcp and ipc traffic is not delayed by other threads. Default: the OS's (`Other`).
    ///
    /// The real-time policies need privileges: [`build`](Self::build) tries the policy on a
    /// thread of its own first and fails with [`Error::Io`] when the OS refuses it, where
    /// libzmq would abort the process as its I/O thread starts.
    pub fn io_sched(mut self, policy: SchedPolicy) -> Self {
        self.io_sched = Some(policy);
        self
    }

    /// Lets spinning workers exceed the core budget, with a warning instead of an error.
    pub fn force_core_budget(mut self, force: bool) -> Self {
        self.force = force;
        self
    }

    /// Creates the context and applies the thread options (before any socket exists, as
    /// libzmq requires).
    ///
    /// # Errors
    /// An I/O core that does not exist, a real-time priority outside the OS's range, a
    /// real-time `io_sched` the OS refuses this process ([`Error::Io`]), or an option
    /// libzmq refuses.
    pub fn build(self) -> Result<Engine> {
        let cores = sys::available_cores();
        let sched = self.io_sched.map(sys::sched_params);
        if let (Some(policy), Some((raw, Some(priority)))) = (self.io_sched, sched) {
            let range = sys::sched_priority_range(raw);
            if !range.contains(&priority) {
                let expected = format!("a priority from {} to {}", range.start(), range.end());
                return Err(Error::config("io_sched priority", format!("{policy:?}"), expected));
            }
        }
        if let (Some(policy), Some((_, Some(_)))) = (self.io_sched, sched) {
            // libzmq aborts the process when the OS refuses its I/O threads' policy: ask first.
            sys::sched_permitted(policy).map_err(|source| Error::Io {
                context: format!(
                    "the OS refuses {policy:?} for libzmq's I/O threads (grant CAP_SYS_NICE, or raise \
                     RLIMIT_RTPRIO with ulimit -r; or leave io_sched unset)"
                ),
                source,
            })?;
        }
        for &c in &self.io_cores {
            if !cores.contains(&c) {
                return Err(Error::Core { core: c, available: cores });
            }
        }
        let ctx_err = |source| Error::Zmq { op: Operation::Context, kind: "context", endpoint: None, source };
        let ctx = RawContext::new().map_err(ctx_err)?;
        let io = i32::try_from(self.io_threads)
            .map_err(|_| Error::config("io_threads", self.io_threads, "a small number, usually 1"))?;
        ctx.set(ctx_opt::IO_THREADS, io).map_err(ctx_err)?;
        for &c in &self.io_cores {
            let cpu =
                i32::try_from(c.index()).map_err(|_| Error::Core { core: c, available: cores.clone() })?;
            ctx.set(ctx_opt::THREAD_AFFINITY_CPU_ADD, cpu).map_err(ctx_err)?;
        }
        if let Some(p) = self.io_thread_name_prefix {
            ctx.set(ctx_opt::THREAD_NAME_PREFIX, i32::from(p)).map_err(ctx_err)?;
        }
        if let Some((policy, priority)) = sched {
            ctx.set(ctx_opt::THREAD_SCHED_POLICY, policy).map_err(ctx_err)?;
            if let Some(priority) = priority {
                ctx.set(ctx_opt::THREAD_PRIORITY, priority).map_err(ctx_err)?;
            }
        }
        // Now, from this thread: not from the first worker, whose policy and core they would
        // inherit.
        ctx.start_threads().map_err(ctx_err)?;
        Ok(Engine {
            ctx: Arc::new(ctx),
            io_threads: self.io_threads,
            cores,
            force: self.force,
            spinning: Arc::new(AtomicUsize::new(0)),
        })
    }
}

/// Owns the libzmq context (and so its I/O threads) that every worker's sockets live in.
///
/// The context is terminated when the engine and every worker are gone: workers hold it.
///
/// ```
/// use ztick::{Engine, Endpoint, SocketKind, SocketSpec};
/// let engine = Engine::new()?;
/// let mut b = engine.worker("echo");
/// let rep = b.socket(SocketSpec::bind(SocketKind::Rep, Endpoint::unique_inproc("doc")));
/// let worker = b.on_message(move |ctx, id, msg| ctx.send(id, msg.last())).spawn()?;
/// assert!(worker.endpoint(rep).unwrap().starts_with("inproc://doc-"));
/// worker.stop()?;
/// # Ok::<(), ztick::Error>(())
/// ```
#[derive(Debug)]
pub struct Engine {
    ctx: Arc<RawContext>,
    io_threads: usize,
    /// Cores this process may run on, sorted.
    cores: Vec<CoreId>,
    force: bool,
    /// Workers currently running a spinning idle strategy.
    spinning: Arc<AtomicUsize>,
}

impl Engine {
    /// An engine with the defaults of [`EngineBuilder`].
    pub fn new() -> Result<Engine> {
        EngineBuilder::default().build()
    }

    /// A builder for an engine with other I/O-thread settings.
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }

    /// Starts configuring a worker named `name`.
    pub fn worker(&self, name: &str) -> WorkerBuilder<'_> {
        WorkerBuilder::new(self, name)
    }

    /// The cores this process may use (its affinity mask), sorted: the ones to pin to.
    pub fn cores(&self) -> &[CoreId] {
        &self.cores
    }

    /// libzmq I/O threads in this engine's context.
    pub fn io_threads(&self) -> usize {
        self.io_threads
    }

    /// An engine whose sockets live in `ctx`, a context the caller owns (for the C ABI: a C
    /// program's own context, so its inproc endpoints and ztick's are one namespace). The
    /// context is not configured (its I/O threads are the caller's) and never terminated here.
    ///
    /// # Errors
    /// [`Error::Unsupported`] in the vendored build, whose libzmq is a private copy that
    /// cannot use another copy's context; a pointer libzmq does not take for a context.
    #[cfg_attr(not(feature = "capi"), allow(dead_code))]
    pub(crate) fn from_context(ctx: RawContext) -> Result<Engine> {
        if LIBZMQ_LINK != "system" {
            return Err(Error::Unsupported {
                feature: "sharing a libzmq context".into(),
                hint: "it needs the system build of ztick, linked with the libzmq that made the \
                       context (scripts/capi.sh build; README, \"Using ztick from C\"); this \
                       vendored build carries a private copy of libzmq, whose contexts are not \
                       the program's"
                    .into(),
            });
        }
        let io = ctx.get(ctx_opt::IO_THREADS).map_err(|source| Error::Zmq {
            op: Operation::Context,
            kind: "context",
            endpoint: Some("the caller's context (is it a live libzmq context?)".into()),
            source,
        })?;
        Ok(Engine {
            ctx: Arc::new(ctx),
            io_threads: usize::try_from(io).unwrap_or(0),
            cores: sys::available_cores(),
            force: false,
            spinning: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// The libzmq context, for sockets that live on an application thread (`patterns`).
    pub(crate) fn context(&self) -> &Arc<RawContext> {
        &self.ctx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_time_priority_outside_the_os_range_is_refused_before_libzmq_sees_it() {
        // libzmq would abort the process in its I/O thread; the builder says why instead.
        for policy in [SchedPolicy::Fifo { priority: 0 }, SchedPolicy::RoundRobin { priority: 200 }] {
            match Engine::builder().io_sched(policy).build() {
                Err(Error::Config { name, expected, .. }) => {
                    assert_eq!(name, "io_sched priority");
                    assert!(expected.contains("from 1 to 99"), "{expected}");
                }
                other => panic!("{policy:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_real_time_policy_the_os_refuses_is_an_error_not_an_abort() {
        // Root (CAP_SYS_NICE) gets the policy and a working engine; anyone else gets the
        // error the probe found, before libzmq's I/O thread would abort the process.
        let policy = SchedPolicy::Fifo { priority: 1 };
        match (sys::sched_permitted(policy), Engine::builder().io_sched(policy).build()) {
            (Ok(()), Ok(engine)) => assert_eq!(engine.io_threads(), 1),
            (Err(_), Err(Error::Io { context, .. })) => {
                assert!(context.contains("RLIMIT_RTPRIO"), "{context}")
            }
            (probe, built) => panic!("probe {probe:?} but build {:?}", built.map(|_| "an engine")),
        }
    }

    #[test]
    fn a_callers_context_needs_the_system_build() {
        // A context made here stands in for the caller's (owned, so it is terminated after).
        let ctx = RawContext::new().unwrap();
        match (Engine::from_context(ctx), LIBZMQ_LINK) {
            (Err(Error::Unsupported { feature, hint }), "vendored") => {
                assert_eq!(feature, "sharing a libzmq context");
                assert!(hint.contains("system build"), "{hint}");
            }
            (Ok(engine), "system") => assert_eq!(engine.io_threads(), 1, "the context's own setting"),
            (other, link) => panic!("{link} build: {other:?}"),
        }
    }

    /// The scheduling policy of the thread whose name (`comm`) is `name`, from
    /// `/proc/self/task/*/stat` (field 41).
    fn thread_policy(name: &str) -> Option<i32> {
        std::fs::read_dir("/proc/self/task").ok()?.flatten().find_map(|t| {
            let comm = std::fs::read_to_string(t.path().join("comm")).ok()?;
            if comm.trim_end() != name {
                return None;
            }
            let stat = std::fs::read_to_string(t.path().join("stat")).ok()?;
            // Fields after the parenthesised name, which may hold spaces: state is field 3.
            stat.rsplit_once(") ")?.1.split_whitespace().nth(41 - 3)?.parse().ok()
        })
    }

    #[test]
    fn a_worker_runs_under_the_policy_it_reports() {
        let engine = Engine::new().unwrap();
        let asked = SchedPolicy::Fifo { priority: 1 };
        let w = engine.worker("rt-check").sched(asked).spawn().unwrap();
        // Granted (root, CAP_SYS_NICE, or RLIMIT_RTPRIO >= 1) or refused with a warning.
        let raw = crate::sys::sched_params(w.sched()).0;
        assert!(w.sched() == asked || w.sched() == SchedPolicy::Other, "{:?}", w.sched());
        assert_eq!(thread_policy("ztick-rt-check"), Some(raw), "the thread runs under {:?}", w.sched());
        w.stop().unwrap();
        let plain = engine.worker("ts-check").spawn().unwrap();
        assert_eq!(plain.sched(), SchedPolicy::Other);
        assert_eq!(thread_policy("ztick-ts-check"), Some(libc::SCHED_OTHER));
        let err = engine.worker("bad").sched(SchedPolicy::Fifo { priority: 0 }).spawn().unwrap_err();
        assert!(err.to_string().contains("scheduling priority"), "{err}");
    }
}
