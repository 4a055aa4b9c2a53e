//! A worker: one pinned OS thread that owns its libzmq sockets and runs a synchronous loop.
//!
//! One file per concern: [`spec`] (what a socket is, and opening it), [`handler`] (the code
//! a worker runs), [`builder`] (configuring, spawning and stopping a worker), [`ctx`] (what a
//! handler can do, sends under the HWM policy), [`event_loop`] (the loop itself),
//! [`inline`] (the same loop on the caller's thread) and [`group`] (several handlers on one
//! worker).

mod builder;
mod ctx;
mod event_loop;
mod group;
mod handler;
mod inline;
mod spec;

pub use builder::{Worker, WorkerBuilder, WorkerReport};
pub use ctx::WorkerCtx;
pub use group::HandlerGroup;
pub use handler::{Handler, MessageHandler, Received, TickHandler};
pub use inline::InlineWorker;
pub(crate) use spec::open_socket;
pub use spec::SocketSpec;
