//! The latency and throughput tools behind `ztick lat|thr` and the libzmq-compatible
//! `local-lat`/`remote-lat`/`local-thr`/`remote-thr`.
//!
//! Wire behaviour matches libzmq's perf tools: latency is REQ (timing) against REP (echo),
//! throughput is PUSH (sending) against PULL (counting, timed from the first message), so
//! either side can face libzmq's own programs. Both sides run on engine workers, through
//! ztick's public API only.

mod lat;
mod thr;

pub(crate) use lat::{measure_round_trips, run_lat, serve_echo, LatOptions, LatReport, LatSide};
pub(crate) use thr::{count_incoming, run_thr, send_burst, ThrOptions, ThrSide};
