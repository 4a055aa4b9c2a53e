//! ztick: a low-latency messaging engine on libzmq.
//!
//! Synchronous worker threads, pinned to cores, own libzmq sockets over tcp, ipc and
//! inproc; application threads reach them through bounded channels; sends are batched and
//! can hand pooled buffers to libzmq without copying; latencies land in HdrHistograms.
//!
//! # Three ways in
//!
//! **Tick fan-out** ([`fanout`]): one publisher, many subscribers, every tick delivered or
//! reported missing by exact range, gaps repaired from the publisher's ring, a restarted
//! publisher seen as a new epoch, a silent one declared lost.
//!
//! ```
//! use std::time::Duration;
//! use ztick::fanout::{PublisherConfig, SubscriberConfig, TickPublisher, TickSubscriber};
//! use ztick::{Endpoint, Engine};
//!
//! let engine = Engine::new()?;
//! let feed = Endpoint::unique_inproc("lib-feed");
//! let publisher = TickPublisher::start(&engine, feed, None, PublisherConfig::default())?;
//! let subscriber =
//!     TickSubscriber::start(&engine, publisher.endpoint().clone(), None, SubscriberConfig::default())?;
//! assert!(publisher.wait_subscribers(1, Duration::from_secs(10)));
//! for i in 0..100 {
//!     publisher.publish(i % 8, b"1.0842").unwrap();
//! }
//! let published = publisher.finish(Duration::from_secs(5))?.published;
//! let seen = subscriber.finish(Duration::from_secs(5))?;
//! assert_eq!(seen.received() + seen.repaired() + seen.missing(), published);
//! # Ok::<(), ztick::Error>(())
//! ```
//!
//! **The guide's patterns** ([`patterns`]): request/reply (typed with serde + bincode),
//! publish/subscribe, pipeline, DEALER/ROUTER, PAIR and the reliable Pirates, each refusing
//! and counting a peer's bad input instead of stopping.
//!
//! ```
//! use ztick::patterns::{Replier, Requester};
//! use ztick::{Endpoint, Engine};
//!
//! let engine = Engine::new()?;
//! let server = Replier::builder(Endpoint::unique_inproc("lib-add"))
//!     .spawn_typed(&engine, |(a, b): (u32, u32)| a + b)?;
//! let mut client = Requester::builder(server.endpoint().parse()?).connect(&engine)?;
//! let sum: u32 = client.call(&(2u32, 3u32))?;
//! assert_eq!(sum, 5);
//! server.stop()?;
//! # Ok::<(), ztick::Error>(())
//! ```
//!
//! **The engine itself**: workers that own sockets, handlers on the worker thread, hand-offs
//! from any thread.
//!
//! ```
//! use ztick::{Engine, Endpoint, SocketKind, SocketSpec};
//!
//! let engine = Engine::new()?;
//! let ep = Endpoint::unique_inproc("hello");
//! let (tx, rx) = crossbeam_channel::bounded(1);
//!
//! let mut b = engine.worker("pull");
//! b.socket(SocketSpec::bind(SocketKind::Pull, ep.clone()));
//! let pull = b.on_message(move |_, _, msg| { let _ = tx.send(msg.last().to_vec()); Ok(()) }).spawn()?;
//!
//! let mut b = engine.worker("push");
//! let push_sock = b.socket(SocketSpec::connect(SocketKind::Push, ep));
//! let push = b.spawn()?;
//! push.handle().send(push_sock, b"tick".to_vec()).unwrap();
//!
//! assert_eq!(rx.recv().unwrap(), b"tick");
//! push.stop()?;
//! pull.stop()?;
//! # Ok::<(), ztick::Error>(())
//! ```
//!
//! A thread that would rather own its sockets than hand off to a worker builds the same
//! worker [`inline`](WorkerBuilder::inline): an [`InlineWorker`] runs the worker's loop a
//! pass at a time when its caller asks, so a send from that thread goes straight onto the
//! socket. The fan-out's [`fanout::InlineTickPublisher`] is built on it. The loop owns its
//! sockets for this; a spawned worker runs the same loop to the end on its own thread.
//! The other way round, one worker can run several handlers: a [`HandlerGroup`] gives each
//! member its own sockets and its own stop, so several subscribers share one thread
//! ([`fanout::TickSubscriber::start_shared`]) where cores are few.
//!
//! **From C** (feature `capi`): the engine, the tick publisher and subscriber, the latency
//! recorder, behind opaque handles and a committed header, `include/ztick.h`; see the
//! README's "Using ztick from C" for the link line and a 20-line publisher.
//!
//! # Layers
//!
//! Each uses only those below it:
//!
//! - [`fanout`] (tick publisher and subscriber on sans-IO cores: the stream, its timers,
//!   the retransmit ring, the subscriber's ledger; the versioned wire format), [`patterns`],
//!   and security ([`curve`]: keys and certificates; [`zap`]: who may connect);
//! - the engine: [`Engine`], workers ([`WorkerBuilder`], [`WorkerCtx`], [`Handler`], spawned
//!   [`Worker`] or caller-driven [`InlineWorker`], several handlers on one worker with
//!   [`HandlerGroup`]), idle strategies and the core budget,
//!   [`Handle`];
//! - messages ([`Frame`], [`Outbound`], [`BufferPool`], [`codec`]), [`Batcher`] (pure: the
//!   clock is a parameter), [`metrics`] (HDR recorders, `.hgrm`, `tracing` spans), [`info`]
//!   (what this build of libzmq is);
//! - the fence: a private `sys` module, the only code that names libzmq, libc or core
//!   affinity (`unsafe` lives there and in the C ABI only, each block with its reason);
//! - [`Error`], [`SocketOptions`], [`Endpoint`]: plain data.
//!
//! The `ztick` command (feature `cli`) sits on top and holds everything only a command
//! line needs: flags, settings files, the scripting verbs, the perf tools, the synthetic
//! feed, reports, JSON, plots.
//!
//! # Features
//!
//! - `cli` (default): the `ztick` command, whose flags, settings files, scripting verbs,
//!   perf tools and plots live in the binary, not here. A program that links ztick needs
//!   none of it: `ztick = { version = "0.1", default-features = false }`.
//! - `capi`: the C ABI (`include/ztick.h`).
//! - `otlp`: OpenTelemetry export over OTLP/HTTP (`metrics::otlp`): each latency
//!   interval's histogram, message counters and spans, named by the messaging semantic
//!   conventions ([`metrics::semconv`]), configured by the `OTEL_EXPORTER_OTLP_*` variables.
//!   Off by default: it brings the OpenTelemetry SDK and an HTTP client.
//!
//! # How libzmq is built
//!
//! ztick talks to libzmq through the `zmq` crate (0.10) and its `zmq-sys` (0.12); which
//! libzmq that is, is a build choice ([`info::BuildInfo`] says which one a program got):
//!
//! - **ztick's own build** (`cargo build`, `cargo test` in this repository): libzmq
//!   **4.3.5 with CURVE**, compiled from source and linked statically. Its `Cargo.toml`
//!   replaces crates.io's zmq-sys through `[patch.crates-io]` with `vendor/zmq-sys`:
//!   zmq-sys 0.12.0's bindings unchanged, with a build script that compiles the
//!   `zeromq-src` 0.3 crate's libzmq against the libsodium that `libsodium-sys-stable`
//!   builds from the source it ships, with eventfd and the I/O threads' affinity and names
//!   on. Nothing is downloaded at build time; it needs a C/C++ compiler and `make`.
//! - **A crate that depends on ztick** gets crates.io's zmq-sys, because Cargo applies a
//!   `[patch]` only in the workspace that declares it: libzmq 4.3.4, static, **without
//!   CURVE** (its build script turns libsodium off: rust-zmq issues #357 and #401), where
//!   asking for CURVE is a clear [`Error::Unsupported`]. The same one line,
//!   `zmq-sys = { path = ".../vendor/zmq-sys" }` under `[patch.crates-io]`, gives it
//!   ztick's build.
//! - **The system libzmq** (Debian's `libzmq3-dev`, shared, with CURVE): Cargo's
//!   build-script override for the `zmq` links key, `rustc-link-lib = ["zmq"]`
//!   (`scripts/system-libzmq.sh`), which C programs that share libzmq with ztick need.
//!
//! Why a patched zmq-sys rather than the two ways that keep crates.io's: a links override
//! cannot build anything, only name a library that already exists, so a fresh `cargo run`
//! could not produce it; and a libzmq built by ztick's own build script would land in
//! ztick's rlib, above the `zmq` crate that calls it. Linkers that resolve archives in
//! order (GNU ld; Rust before 1.90 used it by default) then leave `zmq`'s calls
//! unresolved, and crates.io's zmq-sys would still build and link its own 4.3.4. In
//! zmq-sys's place, the library sits exactly where the `zmq` crate expects it.
//!
//! # libzmq faults, and what ztick does about them
//!
//! Each was found here and is pinned down by a test:
//!
//! - **ZMTP heartbeats can abort the process** (4.3.4 and 4.3.5): a connection whose input
//!   is stopped (its reader fell behind) and whose peer resets it is marked broken but keeps
//!   its heartbeat timer, and the next PING fails `assert (!_io_error)`. One raw TCP
//!   connection does it (`tests/zmtp_heartbeat.rs`, which also notices a libzmq that fixes
//!   it). The fan-out notices dead peers with TCP keepalive and `TCP_USER_TIMEOUT` instead
//!   ([`fanout::PublisherConfig::dead_peer_timeout`]); [`SocketOptions::heartbeat`] says so.
//! - **A monitor event can leak** when a monitored socket closes while its context
//!   terminates: the closed socket's listener is reported later, from the I/O thread, and a
//!   send that fails then loses the event's frame. Every monitored socket stops its monitor
//!   before it closes (valgrind, `scripts/capi.sh valgrind`, found 82 bytes per run).
//! - **No reconnection after a protocol error**: a peer that sends an oversized frame
//!   (`ZMQ_MAXMSGSIZE`) or breaks ZMTP ends that connect endpoint for good: a subscriber
//!   attacked so reports the publisher lost at its liveness deadline (or, having never
//!   heard from it, times out) with the accounting it has (`tests/fanout_hostile.rs`).
//! - **A refused real-time policy aborts the process**: libzmq applies
//!   `ZMQ_THREAD_SCHED_POLICY` as its I/O thread starts and asserts when the OS says no.
//!   [`EngineBuilder::build`] tries the policy on a thread of its own first and returns an
//!   error instead (its unit test).
//! - **Real-time workers starve a time-shared I/O thread**: every tcp or ipc message
//!   crosses libzmq's I/O thread, so workers under SCHED_FIFO beside it took the
//!   cross-process p99 from 3.8-5.3 ms to 42-63 ms on 2 cores.
//!   [`profile::Profile::Latency`] gives both the same policy ([`profile::Plan::io_sched`],
//!   held by the profile's unit test; measured in BENCHMARKS.md 17.3).
//! - **Two connections keep no order between them**: a subscriber acknowledges the end on
//!   its side-channel DEALER and then closes its SUB, and the XPUB's unsubscription can
//!   reach the publisher's worker first (CI saw it: a publisher that counted no
//!   acknowledgement and lingered its full second). The publisher keeps the last bindings of
//!   departed subscribers, bounded, so the late acknowledgement still counts (the stream's
//!   unit test plays that order).
//!
//! Where the fan-out's milliseconds go on a small virtual machine (the hypervisor's late
//! timers, an idle vCPU not woken, threads queueing for cores) is traced, delay by delay,
//! by `scripts/stall-trace.sh` (BENCHMARKS.md 17.1). The queueing that is ztick's own,
//! subscriber workers waiting for each other, goes when they share one worker
//! ([`fanout::TickSubscriber::start_shared`], BENCHMARKS.md 17.7).
#![deny(missing_docs, missing_debug_implementations, unsafe_op_in_unsafe_fn)]
#![deny(unsafe_code)] // allowed again on `mod sys` and `mod ffi` only
#![warn(unreachable_pub, clippy::undocumented_unsafe_blocks)]

mod batch;
mod config;
pub mod curve;
mod endpoint;
mod engine;
mod error;
pub mod fanout;
// The fuzz targets' way to private parsers and sans-IO cores (fuzz/): only under
// `--cfg fuzzing`, which cargo-fuzz sets, so normal builds and the docs never have it.
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzz_hooks;
// The subscriber's accounting against a model publisher (proptest), in `cargo test`.
#[cfg(test)]
mod accounting_props;
// The C ABI: nothing in Rust uses it; its items are exported symbols and include/ztick.h.
#[cfg(feature = "capi")]
#[allow(unsafe_code)]
mod ffi;
pub mod info;
mod message;
pub mod metrics;
pub mod patterns;
pub mod profile;
#[allow(unsafe_code)]
mod sys;
pub mod zap;

pub use batch::{Batcher, FlushReason};
pub use config::{CoreId, FullPolicy, SchedPolicy, SocketKind, SocketOptions};
pub use endpoint::{Endpoint, Transport};
pub use engine::{
    ConnectedPeers, Engine, EngineBuilder, Handle, Handler, HandlerGroup, HandshakeFailure, IdleStrategy,
    InlineWorker, MessageHandler, MonitorEvent, MonitorStats, PeerEvent, Received, SendError,
    SendTimeoutError, SocketEvent, SocketId, SocketMonitor, SocketSpec, TickHandler, TrySendError, Worker,
    WorkerBuilder, WorkerCtx, WorkerReport, WorkerStats,
};
pub use error::{Error, Operation, Result, ZmqErrno};
pub use message::codec;
pub use message::{BufferPool, Frame, Inbound, Outbound, PoolStats, PooledBuf, Subscription};
pub use sys::{now_ns, set_timer_slack_ns, sleep_until_ns};
