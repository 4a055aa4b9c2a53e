//! The publisher's timers, as a pure state machine on a caller-supplied clock: heartbeats
//! while the stream is live, then the end markers' repetition until every subscriber has
//! acknowledged or the linger is over.

use std::time::Duration;

/// What the publisher must do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Due {
    /// Nothing until [`Schedule::next_deadline`].
    Nothing,
    /// Send a heartbeat (each topic's last sequence).
    Heartbeat,
    /// Send the end markers again.
    RepeatEnd,
    /// The end is over (acknowledged, or the linger passed): stop.
    Finished,
}

/// Where the stream is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Publishing; the next heartbeat is due at this time.
    Live { next_heartbeat: u64 },
    /// The end markers went out; repeat them at `next_eos` until `until`.
    Ending { next_eos: u64, until: u64 },
    /// Done: nothing more to send.
    Finished,
}

/// The publisher's timers. All times are CLOCK_MONOTONIC nanoseconds.
#[derive(Debug, Clone)]
pub(crate) struct Schedule {
    heartbeat_ns: u64,
    eos_repeat_ns: u64,
    eos_linger_ns: u64,
    phase: Phase,
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Schedule {
    /// A live stream started at `now`, with its first heartbeat one interval later.
    pub(crate) fn new(heartbeat: Duration, eos_repeat: Duration, eos_linger: Duration, now: u64) -> Self {
        let heartbeat_ns = ns(heartbeat).max(1);
        Schedule {
            heartbeat_ns,
            eos_repeat_ns: ns(eos_repeat).max(1),
            eos_linger_ns: ns(eos_linger),
            phase: Phase::Live { next_heartbeat: now.saturating_add(heartbeat_ns) },
        }
    }

    /// Whether the end markers have gone out.
    pub(crate) fn is_ending(&self) -> bool {
        !matches!(self.phase, Phase::Live { .. })
    }

    /// Records that the first end markers went out at `now` (idempotent).
    pub(crate) fn end(&mut self, now: u64) {
        if let Phase::Live { .. } = self.phase {
            self.phase = Phase::Ending {
                next_eos: now.saturating_add(self.eos_repeat_ns),
                until: now.saturating_add(self.eos_linger_ns),
            };
        }
    }

    /// What is due at `now`; `all_acknowledged` ends the repetition early. Each call
    /// returns at most one action and moves the timer on past it.
    pub(crate) fn poll(&mut self, now: u64, all_acknowledged: bool) -> Due {
        match self.phase {
            Phase::Live { next_heartbeat } if now >= next_heartbeat => {
                self.phase = Phase::Live { next_heartbeat: now.saturating_add(self.heartbeat_ns) };
                Due::Heartbeat
            }
            Phase::Live { .. } => Due::Nothing,
            Phase::Ending { until, .. } if now >= until || all_acknowledged => {
                self.phase = Phase::Finished;
                Due::Finished
            }
            Phase::Ending { next_eos, until } if now >= next_eos => {
                self.phase = Phase::Ending { next_eos: now.saturating_add(self.eos_repeat_ns), until };
                Due::RepeatEnd
            }
            Phase::Ending { .. } => Due::Nothing,
            Phase::Finished => Due::Finished,
        }
    }

    /// When the next action falls due (`u64::MAX`: never).
    pub(crate) fn next_deadline(&self) -> u64 {
        match self.phase {
            Phase::Live { next_heartbeat } => next_heartbeat,
            Phase::Ending { next_eos, until } => next_eos.min(until),
            Phase::Finished => u64::MAX,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn schedule(now: u64) -> Schedule {
        Schedule::new(Duration::from_millis(100), Duration::from_millis(10), Duration::from_millis(35), now)
    }

    #[test]
    fn heartbeats_come_one_interval_apart_while_live() {
        let mut s = schedule(0);
        assert_eq!(s.next_deadline(), 100 * MS);
        assert_eq!(s.poll(99 * MS, false), Due::Nothing);
        assert_eq!(s.poll(100 * MS, false), Due::Heartbeat);
        assert_eq!(s.poll(100 * MS, false), Due::Nothing, "one heartbeat per interval");
        // A late pass sends one heartbeat and counts the next interval from it.
        assert_eq!(s.poll(350 * MS, false), Due::Heartbeat);
        assert_eq!(s.next_deadline(), 450 * MS);
        assert!(!s.is_ending());
    }

    #[test]
    fn the_end_repeats_until_the_linger_then_finishes() {
        let mut s = schedule(0);
        s.end(1_000 * MS);
        assert!(s.is_ending());
        assert_eq!(s.poll(1_005 * MS, false), Due::Nothing);
        assert_eq!(s.next_deadline(), 1_010 * MS);
        assert_eq!(s.poll(1_010 * MS, false), Due::RepeatEnd);
        assert_eq!(s.poll(1_020 * MS, false), Due::RepeatEnd);
        assert_eq!(s.poll(1_030 * MS, false), Due::RepeatEnd);
        assert_eq!(s.next_deadline(), 1_035 * MS, "the linger ends before the next repeat");
        assert_eq!(s.poll(1_035 * MS, false), Due::Finished);
        assert_eq!(s.next_deadline(), u64::MAX);
        // Ending twice changes nothing.
        s.end(2_000 * MS);
        assert_eq!(s.poll(2_000 * MS, false), Due::Finished);
    }

    #[test]
    fn acknowledgements_cut_the_repetition_short() {
        let mut s = schedule(0);
        s.end(0);
        assert_eq!(s.poll(MS, true), Due::Finished);
        assert_eq!(s.poll(2 * MS, false), Due::Finished);
    }
}
