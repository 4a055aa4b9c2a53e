//! The queue's requests waiting for a worker, bounded in count and in bytes, each
//! forgotten once it has waited longer than a client would (its retry has gone out by
//! then). Pure: it owns no socket and reads no clock; the caller passes `now`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The limits of a [`Waiting`] list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct WaitingLimits {
    /// The most requests held.
    pub(super) max_msgs: usize,
    /// The most bytes held, frames and envelopes counted.
    pub(super) max_bytes: usize,
    /// How long a request may wait.
    pub(super) expiry: Duration,
}

/// What [`Waiting::push`] did with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pushed {
    /// Held until a worker is ready.
    Held,
    /// Not held: the list was at its count or byte limit (or the request alone is over
    /// the byte limit).
    Full,
}

/// Client requests (frames as the frontend received them) in arrival order, with the time
/// each arrived.
#[derive(Debug)]
pub(super) struct Waiting {
    limits: WaitingLimits,
    requests: VecDeque<(Vec<Vec<u8>>, Instant)>,
    /// The sum of the held requests' frame lengths; at most `limits.max_bytes`.
    bytes: usize,
    /// Requests forgotten for waiting longer than `limits.expiry`, so far.
    stale: u64,
}

fn size(frames: &[Vec<u8>]) -> usize {
    frames.iter().map(Vec::len).fold(0, usize::saturating_add)
}

impl Waiting {
    /// An empty list under `limits`.
    pub(super) fn new(limits: WaitingLimits) -> Self {
        Waiting { limits, requests: VecDeque::new(), bytes: 0, stale: 0 }
    }

    /// Forgets the requests that have waited too long at `now`; returns how many.
    pub(super) fn expire(&mut self, now: Instant) -> u64 {
        let mut gone = 0;
        while let Some((frames, since)) = self.requests.front() {
            if now.saturating_duration_since(*since) < self.limits.expiry {
                break;
            }
            self.bytes -= size(frames);
            self.requests.pop_front();
            gone += 1;
        }
        self.stale += gone;
        gone
    }

    /// Holds `frames`, which arrived at `now`, if there is room once the stale are gone.
    pub(super) fn push(&mut self, frames: Vec<Vec<u8>>, now: Instant) -> Pushed {
        self.expire(now);
        let n = size(&frames);
        if self.requests.len() >= self.limits.max_msgs || n > self.limits.max_bytes - self.bytes {
            return Pushed::Full;
        }
        self.bytes += n;
        self.requests.push_back((frames, now));
        Pushed::Held
    }

    /// The oldest request still fresh at `now`.
    pub(super) fn pop(&mut self, now: Instant) -> Option<Vec<Vec<u8>>> {
        self.expire(now);
        let (frames, _) = self.requests.pop_front()?;
        self.bytes -= size(&frames);
        Some(frames)
    }

    /// Requests held.
    pub(super) fn len(&self) -> usize {
        self.requests.len()
    }

    /// Bytes held.
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Requests forgotten for waiting too long, so far.
    pub(super) fn stale(&self) -> u64 {
        self.stale
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: WaitingLimits =
        WaitingLimits { max_msgs: 3, max_bytes: 100, expiry: Duration::from_secs(5) };

    fn req(n: usize) -> Vec<Vec<u8>> {
        vec![b"id".to_vec(), Vec::new(), vec![7; n.saturating_sub(2)]]
    }

    #[test]
    fn count_and_bytes_both_bound_the_list() {
        let t0 = Instant::now();
        let mut w = Waiting::new(LIMITS);
        assert_eq!(w.push(req(101), t0), Pushed::Full, "over the byte limit alone");
        assert_eq!(w.push(req(60), t0), Pushed::Held);
        assert_eq!(w.push(req(50), t0), Pushed::Full, "60 + 50 > 100");
        assert_eq!(w.push(req(40), t0), Pushed::Held);
        assert_eq!((w.len(), w.bytes()), (2, 100));
        assert!(w.pop(t0).is_some());
        assert_eq!(w.push(req(10), t0), Pushed::Held);
        assert_eq!(w.push(req(10), t0), Pushed::Held);
        assert_eq!(w.push(req(1), t0), Pushed::Full, "three held");
        assert_eq!((w.len(), w.bytes()), (3, 60));
    }

    #[test]
    fn a_request_older_than_the_expiry_is_forgotten_and_counted() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut w = Waiting::new(LIMITS);
        w.push(req(10), t0);
        w.push(req(20), t0 + s(2));
        w.push(req(30), t0 + s(4));
        // At 6 s the first has waited 6 s: gone, and room made for a new one.
        assert_eq!(w.push(req(40), t0 + s(6)), Pushed::Held);
        assert_eq!((w.len(), w.bytes(), w.stale()), (3, 90, 1));
        // At 8 s the second has gone too; the third is handed out.
        assert_eq!(w.pop(t0 + s(8)).map(|f| size(&f)), Some(30));
        assert_eq!((w.len(), w.bytes(), w.stale()), (1, 40, 2));
        assert_eq!(w.expire(t0 + s(60)), 1);
        assert!(w.pop(t0 + s(60)).is_none());
        assert_eq!((w.len(), w.bytes(), w.stale()), (0, 0, 3));
    }
}
