//! Shared test helpers: bounded waits, processes of the built `ztick`.
#![allow(dead_code)]

// Runs the `ztick` binary, which only a build with the `cli` feature has.
#[cfg(feature = "cli")]
pub mod process;
mod wait;

#[allow(unused_imports)] // not every test file waits
pub use wait::*;
