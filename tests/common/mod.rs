//! Shared test helpers, one of each: bounded waits ([`wait`]), endpoints and caller-thread
//! sockets on loopback ([`sockets`]), engine workers that collect what they receive or
//! send what they are handed ([`workers`]), and processes of the built `ztick` ([`process`]).
#![allow(dead_code)]

// Runs the `ztick` binary, which only a build with the `cli` feature has.
#[cfg(feature = "cli")]
pub mod process;
pub mod relay;
pub mod sockets;
mod wait;
pub mod workers;
pub mod zmtp;

#[allow(unused_imports)] // each test file uses part of them
pub use sockets::*;
#[allow(unused_imports)]
pub use wait::*;
#[allow(unused_imports)]
pub use workers::*;
