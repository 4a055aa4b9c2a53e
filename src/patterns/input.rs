//! Counting what serving patterns receive, malformed input included.

use std::sync::atomic::{AtomicU64, Ordering};

/// Why a received message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Malformed {
    /// The message had no content at all (one empty frame, or an empty body).
    Empty,
    /// The message had the wrong number of frames, or a missing routing envelope.
    Frames,
    /// The message was larger than the pattern's limit.
    TooLarge,
    /// A typed payload did not decode (bincode).
    Undecodable,
}

impl Malformed {
    /// A short name for traces and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Malformed::Empty => "empty",
            Malformed::Frames => "wrong frame count",
            Malformed::TooLarge => "too large",
            Malformed::Undecodable => "undecodable",
        }
    }
}

/// The `ZMQ_MAXMSGSIZE` a serving pattern gives its socket for an application limit of
/// `app_bytes`, unless the socket options set one: twice the limit, and at least 64 KiB
/// above it. A message somewhat over the limit is then refused and counted with the
/// connection kept; a frame over this one drops the connection before libzmq buffers it.
pub(crate) fn wire_limit(app_bytes: usize) -> u64 {
    let app = u64::try_from(app_bytes).unwrap_or(u64::MAX);
    app.saturating_mul(2).max(app.saturating_add(64 << 10))
}

/// Why a message body must be refused, if it must: no content at all, or more than
/// `max_bytes` in total.
pub(crate) fn check_body(body: &[&[u8]], max_bytes: usize) -> Option<(Malformed, String)> {
    let size: usize = body.iter().map(|f| f.len()).sum();
    if size == 0 {
        Some((Malformed::Empty, format!("{} empty body frame(s)", body.len())))
    } else if size > max_bytes {
        Some((Malformed::TooLarge, format!("{size} bytes > limit {max_bytes}")))
    } else {
        None
    }
}

/// What a serving pattern did with its input so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InputStats {
    /// Messages accepted and handled.
    pub handled: u64,
    /// Refused: no content.
    pub empty: u64,
    /// Refused: wrong number of frames or no envelope.
    pub bad_frames: u64,
    /// Refused: over the size limit.
    pub too_large: u64,
    /// Refused: the typed payload did not decode.
    pub undecodable: u64,
}

impl InputStats {
    /// All refused messages, whatever the reason.
    pub fn malformed(&self) -> u64 {
        self.empty + self.bad_frames + self.too_large + self.undecodable
    }
}

/// Shared counters behind [`InputStats`]: written by the serving worker, read by anyone.
#[derive(Debug, Default)]
pub struct InputCounters {
    handled: AtomicU64,
    empty: AtomicU64,
    bad_frames: AtomicU64,
    too_large: AtomicU64,
    undecodable: AtomicU64,
}

impl InputCounters {
    /// Counts one handled message.
    pub fn handled(&self) {
        self.handled.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one refused message and traces it with `peer` (endpoint, socket kind, routing id).
    pub fn refuse(&self, why: Malformed, peer: &dyn std::fmt::Display, detail: &dyn std::fmt::Display) {
        let c = match why {
            Malformed::Empty => &self.empty,
            Malformed::Frames => &self.bad_frames,
            Malformed::TooLarge => &self.too_large,
            Malformed::Undecodable => &self.undecodable,
        };
        c.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(reason = why.as_str(), peer = %peer, %detail, "malformed message refused; serving on");
    }

    /// The counts so far.
    pub fn snapshot(&self) -> InputStats {
        InputStats {
            handled: self.handled.load(Ordering::Relaxed),
            empty: self.empty.load(Ordering::Relaxed),
            bad_frames: self.bad_frames.load(Ordering::Relaxed),
            too_large: self.too_large.load(Ordering::Relaxed),
            undecodable: self.undecodable.load(Ordering::Relaxed),
        }
    }
}
