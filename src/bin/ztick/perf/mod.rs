//! The latency and throughput tools behind `ztick lat|thr` and the libzmq-compatible
//! `local-lat`/`remote-lat`/`local-thr`/`remote-thr`.
//!
//! Wire behaviour matches libzmq's perf tools: latency is REQ (timing) against REP (echo),
//! throughput is PUSH (sending) against PULL (counting, timed from the first message), so
//! either side can face libzmq's own programs. Both sides run on engine workers, through
//! ztick's public API only.

mod lat;
mod thr;

/// Bytes a perf tool's receiving socket accepts beyond the message size it was given:
/// room for the ZMTP handshake's commands (READY, CURVE's HELLO and INITIATE, a few hundred
/// bytes) and CURVE's 33 bytes per message, which libzmq's `ZMQ_MAXMSGSIZE` also counts.
pub(crate) const FRAME_MARGIN_BYTES: u64 = 1024;

/// The `ZMQ_MAXMSGSIZE` of a perf tool receiving messages of `size` bytes: a peer that
/// sends a larger frame is disconnected before libzmq buffers it.
pub(crate) fn frame_limit(size: usize) -> u64 {
    u64::try_from(size).unwrap_or(u64::MAX).saturating_add(FRAME_MARGIN_BYTES)
}

/// Traces a message a perf tool refused (the first ten, then one in a thousand, so a
/// hostile peer cannot flood the log).
fn trace_refused(tool: &str, refused: u64, detail: &dyn std::fmt::Display) {
    if refused <= 10 || refused.is_multiple_of(1000) {
        tracing::warn!(tool, refused, %detail, "message refused: not counted, not answered");
    }
}

pub(crate) use lat::{measure_round_trips, run_lat, serve_echo, LatOptions, LatReport, LatSide};
pub(crate) use thr::{count_incoming, run_thr, send_burst, ThrOptions, ThrSide};
