//! Shared test helpers: bounded waits, processes of the built `ztick`.
#![allow(dead_code)]

pub mod process;
mod wait;

#[allow(unused_imports)] // not every test file waits
pub use wait::*;
