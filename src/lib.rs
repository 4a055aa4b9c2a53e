//! ztick: a low-latency messaging engine on libzmq.
//!
//! Synchronous worker threads, pinned to cores, own libzmq sockets over tcp, ipc and
//! inproc; application threads reach them through bounded channels; sends are batched and
//! can hand pooled buffers to libzmq without copying; latencies land in HdrHistograms.
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
//! # Features
//!
//! - `cli` (default): the `ztick` command, whose flags, settings files, scripting verbs,
//!   perf tools and plots live in the binary, not here. A program that links ztick needs
//!   none of it: `ztick = { version = "0.1", default-features = false }`.
//! - `capi`: the C ABI (`include/ztick.h`).
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
// The C ABI: nothing in Rust uses it; its items are exported symbols and include/ztick.h.
#[cfg(feature = "capi")]
#[allow(unsafe_code)]
mod ffi;
pub mod info;
mod message;
pub mod metrics;
pub mod patterns;
#[allow(unsafe_code)]
mod sys;
pub mod zap;

pub use batch::{Batcher, FlushReason};
pub use config::{CoreId, FullPolicy, SchedPolicy, SocketKind, SocketOptions};
pub use endpoint::{Endpoint, Transport};
pub use engine::{
    Engine, EngineBuilder, Handle, Handler, IdleStrategy, MessageHandler, Received, SendError,
    SendTimeoutError, SocketId, SocketSpec, TickHandler, TrySendError, Worker, WorkerBuilder, WorkerCtx,
    WorkerReport, WorkerStats,
};
pub use error::{Error, Operation, Result, ZmqErrno};
pub use message::codec;
pub use message::{BufferPool, Frame, Inbound, Outbound, PoolStats, PooledBuf, Subscription};
pub use sys::now_ns;
