//! The Paranoid Pirate's timers as pure state machines on a caller-supplied clock: the
//! queue's list of ready workers (least recently used first, each with the time it
//! expires) and its heartbeat timer, and a worker's view of its queue (heartbeat timer,
//! liveness countdown, reconnect back-off). They own no socket and never read the clock:
//! the socket-driving code in `mod.rs` feeds them what arrived and the time, and does what
//! they decide.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::Heartbeat;

/// What the queue must do now about heartbeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum QueueBeat {
    /// Heartbeats are off (Simple Pirate): no timer at all.
    Off,
    /// Nothing before `until`.
    Wait {
        /// When the next heartbeat is due.
        until: Instant,
    },
    /// Heartbeat every worker still ready, then wait until `next`. `expired` are the
    /// workers just dropped for missing their heartbeats, oldest first.
    Beat {
        /// Routing ids of the workers dropped, least recently heard first.
        expired: Vec<Vec<u8>>,
        /// When the next heartbeat is due.
        next: Instant,
    },
}

/// The queue's ready workers, least recently used first, and its heartbeat timer.
#[derive(Debug)]
pub(super) struct ReadyWorkers {
    heartbeat: Option<Heartbeat>,
    /// Routing id and the time the worker expires (`None`: never, heartbeats are off). A
    /// worker appears at most once.
    ready: VecDeque<(Vec<u8>, Option<Instant>)>,
    /// The most workers `ready` holds (at least 1).
    max: usize,
    /// When the next heartbeat is due; the first is due at once.
    next_beat: Instant,
}

impl ReadyWorkers {
    /// No worker ready yet, room for `max`; with heartbeats on, the first heartbeat pass
    /// is due at `now`.
    pub(super) fn new(heartbeat: Option<Heartbeat>, max: usize, now: Instant) -> Self {
        ReadyWorkers { heartbeat, ready: VecDeque::new(), max: max.max(1), next_beat: now }
    }

    /// Records that worker `id` was heard from at `now` (ready, a heartbeat or a reply):
    /// it goes to the back of the list, its expiry renewed. A new worker when the list is
    /// full evicts the least recently used one, whose id is returned.
    pub(super) fn heard(&mut self, id: &[u8], now: Instant) -> Option<Vec<u8>> {
        self.ready.retain(|(w, _)| w.as_slice() != id);
        let evicted =
            if self.ready.len() >= self.max { self.ready.pop_front().map(|(w, _)| w) } else { None };
        let expiry = self.heartbeat.map(|h| now + h.expiry());
        self.ready.push_back((id.to_vec(), expiry));
        evicted
    }

    /// Takes the least recently used ready worker, to hand it a request.
    pub(super) fn take(&mut self) -> Option<Vec<u8>> {
        self.ready.pop_front().map(|(id, _)| id)
    }

    /// Workers ready now.
    pub(super) fn len(&self) -> usize {
        self.ready.len()
    }

    /// True when no worker is ready.
    pub(super) fn is_empty(&self) -> bool {
        self.ready.is_empty()
    }

    /// The ready workers' routing ids, least recently used first.
    pub(super) fn ids(&self) -> impl Iterator<Item = &[u8]> {
        self.ready.iter().map(|(id, _)| id.as_slice())
    }

    /// What is due at `now`. A heartbeat pass drops every worker whose expiry has come
    /// (it missed `liveness` heartbeats) and counts the next interval from `now`.
    pub(super) fn poll(&mut self, now: Instant) -> QueueBeat {
        let Some(hb) = self.heartbeat else { return QueueBeat::Off };
        if now < self.next_beat {
            return QueueBeat::Wait { until: self.next_beat };
        }
        let mut expired = Vec::new();
        self.ready.retain_mut(|(id, expiry)| {
            let alive = expiry.is_none_or(|e| e > now);
            if !alive {
                expired.push(std::mem::take(id));
            }
            alive
        });
        self.next_beat = now + hb.interval;
        QueueBeat::Beat { expired, next: self.next_beat }
    }
}

/// A worker's view of its queue under heartbeats: when to heartbeat, how many intervals of
/// silence are left before the queue is taken for dead, and how long to wait before
/// reconnecting (doubling on each reconnect without traffic in between, up to a cap).
#[derive(Debug)]
pub(super) struct QueueLiveness {
    interval: Duration,
    /// Intervals of silence allowed (at least 1).
    liveness_max: u32,
    /// Intervals of silence left; at 0 the queue is taken for dead.
    liveness: u32,
    next_beat: Instant,
    /// When the next interval of silence is counted.
    next_check: Instant,
    reconnect_first: Duration,
    reconnect_max: Duration,
    /// The wait before the next reconnect.
    backoff: Duration,
}

impl QueueLiveness {
    /// Just connected at `now`: full liveness, the first heartbeat and the first check one
    /// interval later, the back-off at `reconnect_first`.
    pub(super) fn new(
        heartbeat: Heartbeat,
        reconnect_first: Duration,
        reconnect_max: Duration,
        now: Instant,
    ) -> Self {
        let liveness_max = heartbeat.liveness.max(1);
        QueueLiveness {
            interval: heartbeat.interval,
            liveness_max,
            liveness: liveness_max,
            next_beat: now + heartbeat.interval,
            next_check: now + heartbeat.interval,
            reconnect_first,
            reconnect_max,
            backoff: reconnect_first,
        }
    }

    /// Something arrived from the queue at `now`: it is alive, so liveness is full again,
    /// the silence is counted from `now`, and the back-off starts over.
    pub(super) fn on_traffic(&mut self, now: Instant) {
        self.liveness = self.liveness_max;
        self.backoff = self.reconnect_first;
        self.next_check = now + self.interval;
    }

    /// Whether a heartbeat is due at `now`; if so the next is due one interval later.
    pub(super) fn heartbeat_due(&mut self, now: Instant) -> bool {
        if now < self.next_beat {
            return false;
        }
        self.next_beat = now + self.interval;
        true
    }

    /// Counts an interval of silence if one has passed at `now`. When the last is used
    /// up, returns the back-off to wait before reconnecting (and doubles the next one, up
    /// to the cap); the caller then reconnects and calls [`QueueLiveness::reconnected`].
    pub(super) fn silence(&mut self, now: Instant) -> Option<Duration> {
        if now < self.next_check {
            return None;
        }
        self.next_check = now + self.interval;
        self.liveness -= 1;
        if self.liveness > 0 {
            return None;
        }
        let wait = self.backoff;
        self.backoff = (self.backoff * 2).min(self.reconnect_max);
        Some(wait)
    }

    /// The worker reconnected at `now`: full liveness, silence counted from `now`. The
    /// back-off stays doubled until the queue is heard from again.
    pub(super) fn reconnected(&mut self, now: Instant) {
        self.liveness = self.liveness_max;
        self.next_check = now + self.interval;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HB: Heartbeat = Heartbeat { interval: Duration::from_millis(100), liveness: 3 };

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A queue started at the returned time, with `ids` heard from then, in that order.
    fn queue_with(ids: &[&[u8]]) -> (Instant, ReadyWorkers) {
        let t0 = Instant::now();
        let mut q = ReadyWorkers::new(Some(HB), 100, t0);
        for id in ids {
            q.heard(id, t0);
        }
        (t0, q)
    }

    #[test]
    fn the_queue_heartbeats_at_once_then_one_interval_apart() {
        let (t0, mut q) = queue_with(&[]);
        assert_eq!(q.poll(t0), QueueBeat::Beat { expired: vec![], next: t0 + ms(100) });
        assert_eq!(q.poll(t0 + ms(99)), QueueBeat::Wait { until: t0 + ms(100) });
        assert_eq!(q.poll(t0 + ms(100)), QueueBeat::Beat { expired: vec![], next: t0 + ms(200) });
        // A late pass beats once and counts the next interval from itself.
        assert_eq!(q.poll(t0 + ms(350)), QueueBeat::Beat { expired: vec![], next: t0 + ms(450) });
        assert_eq!(q.poll(t0 + ms(350)), QueueBeat::Wait { until: t0 + ms(450) });
    }

    #[test]
    fn the_queue_drops_a_worker_silent_for_liveness_intervals() {
        let (t0, mut q) = queue_with(&[b"mute", b"chatty"]);
        for beat in 1..3 {
            let now = t0 + ms(100) * beat;
            q.heard(b"chatty", now);
            assert!(matches!(q.poll(now), QueueBeat::Beat { expired, .. } if expired.is_empty()));
        }
        assert_eq!(q.len(), 2);
        // 3 intervals after it was last heard, the mute worker is gone; the other stays.
        q.heard(b"chatty", t0 + ms(300));
        let QueueBeat::Beat { expired, .. } = q.poll(t0 + ms(300)) else { panic!("a beat is due") };
        assert_eq!(expired, vec![b"mute".to_vec()]);
        assert_eq!(q.ids().collect::<Vec<_>>(), vec![&b"chatty"[..]]);
    }

    #[test]
    fn requests_go_to_the_least_recently_used_worker() {
        let (t0, mut q) = queue_with(&[b"a", b"b"]);
        q.heard(b"a", t0 + ms(1)); // heard again: to the back, never twice
        assert_eq!(q.len(), 2);
        assert_eq!(q.take(), Some(b"b".to_vec()));
        assert_eq!(q.take(), Some(b"a".to_vec()));
        assert_eq!(q.take(), None);
        assert!(q.is_empty());
    }

    #[test]
    fn without_heartbeats_the_queue_has_no_timer_and_never_expires_anyone() {
        let t0 = Instant::now();
        let mut q = ReadyWorkers::new(None, 100, t0);
        q.heard(b"w", t0);
        assert_eq!(q.poll(t0 + Duration::from_secs(86_400 * 365 * 10)), QueueBeat::Off);
        assert_eq!(q.take(), Some(b"w".to_vec()));
    }

    #[test]
    fn a_worker_heartbeats_one_interval_apart() {
        let t0 = Instant::now();
        let mut w = QueueLiveness::new(HB, ms(10), ms(80), t0);
        assert!(!w.heartbeat_due(t0));
        assert!(!w.heartbeat_due(t0 + ms(99)));
        assert!(w.heartbeat_due(t0 + ms(100)));
        assert!(!w.heartbeat_due(t0 + ms(150)), "one heartbeat per interval");
        assert!(w.heartbeat_due(t0 + ms(230)));
        assert!(!w.heartbeat_due(t0 + ms(329)));
        assert!(w.heartbeat_due(t0 + ms(330)), "counted from the last one sent");
    }

    #[test]
    fn liveness_counts_down_one_per_silent_interval() {
        let t0 = Instant::now();
        let mut w = QueueLiveness::new(HB, ms(10), ms(80), t0);
        assert_eq!(w.silence(t0 + ms(99)), None);
        assert_eq!(w.silence(t0 + ms(100)), None, "2 left");
        assert_eq!(w.silence(t0 + ms(150)), None, "not another interval yet");
        assert_eq!(w.silence(t0 + ms(200)), None, "1 left");
        assert_eq!(w.silence(t0 + ms(300)), Some(ms(10)), "the queue is taken for dead");
    }

    #[test]
    fn the_back_off_doubles_up_to_its_cap() {
        let t0 = Instant::now();
        let mut w = QueueLiveness::new(HB, ms(10), ms(35), t0);
        let mut now = t0;
        let mut waits = Vec::new();
        for _ in 0..5 {
            let wait = loop {
                now += ms(100);
                if let Some(wait) = w.silence(now) {
                    break wait;
                }
            };
            waits.push(wait);
            now += wait;
            w.reconnected(now);
        }
        assert_eq!(waits, vec![ms(10), ms(20), ms(35), ms(35), ms(35)]);
    }

    #[test]
    fn traffic_restores_liveness_and_resets_the_back_off() {
        let t0 = Instant::now();
        let mut w = QueueLiveness::new(HB, ms(10), ms(80), t0);
        // Die once, so the back-off has doubled.
        for i in 1..3 {
            assert_eq!(w.silence(t0 + ms(100) * i), None);
        }
        assert_eq!(w.silence(t0 + ms(300)), Some(ms(10)));
        w.reconnected(t0 + ms(310));
        // Two silent intervals, then the queue speaks: the count starts over from then.
        assert_eq!(w.silence(t0 + ms(410)), None);
        assert_eq!(w.silence(t0 + ms(510)), None);
        w.on_traffic(t0 + ms(550));
        assert_eq!(w.silence(t0 + ms(610)), None, "silence counts from the traffic");
        assert_eq!(w.silence(t0 + ms(650)), None, "2 left: a full liveness again");
        assert_eq!(w.silence(t0 + ms(750)), None, "1 left");
        assert_eq!(w.silence(t0 + ms(850)), Some(ms(10)), "the back-off started over");
    }

    #[test]
    fn a_full_list_evicts_the_least_recently_used_worker() {
        let t0 = Instant::now();
        let mut q = ReadyWorkers::new(None, 2, t0);
        assert_eq!(q.heard(b"a", t0), None);
        assert_eq!(q.heard(b"b", t0), None);
        assert_eq!(q.heard(b"a", t0), None, "a known worker evicts nobody");
        assert_eq!(q.heard(b"c", t0), Some(b"b".to_vec()));
        assert_eq!(q.ids().collect::<Vec<_>>(), vec![&b"a"[..], &b"c"[..]]);
    }
}
