//! What a worker does when a pass over its inbox and sockets found nothing to do.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::error::Error;

/// How an idle worker waits, named after Aeron's idle strategies.
///
/// Spinning strategies own a whole core: on a machine with few cores they starve libzmq's
/// I/O threads (measured here: a busy-polled tcp REQ/REP pair on 2 cores took 4 ms per round
/// trip against 35 µs blocking), so the engine checks a core budget before it lets them run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleStrategy {
    /// Poll without pause. Lowest latency, one full core.
    BusySpin,
    /// Poll, calling `sched_yield` between passes. Still a full core when nothing else runs.
    Yield,
    /// Spin `spins` passes, then yield `yields` passes, then park in `zmq_poll` for at most
    /// `max_park` (woken at once by a message or a hand-off).
    Backoff {
        /// Passes spent spinning before yielding.
        spins: u32,
        /// Passes spent yielding before parking.
        yields: u32,
        /// The longest park; a hand-off or a socket event ends it sooner.
        max_park: Duration,
    },
    /// Park in `zmq_poll` until a socket or the hand-off channel is ready; `timeout` bounds
    /// each wait so that timers and stop requests are seen.
    Block {
        /// The longest single wait.
        timeout: Duration,
    },
    /// `Block`, except for the handler's own timers ([`WorkerCtx::wake_at`]): it sleeps until
    /// `spin` before the time asked for, then spins to it, so a paced publisher's tick leaves
    /// on time instead of a wake-up late (40 µs at p50 on the 2-core VM of BENCHMARKS.md).
    /// While it spins, hand-offs are seen at once and sockets are read on the next pass.
    /// At a tick rate whose interval is under `spin` it spins all the time, so the engine
    /// counts it against the core budget like the spinning strategies.
    ///
    /// [`WorkerCtx::wake_at`]: crate::WorkerCtx::wake_at
    SpinToDeadline {
        /// The longest single wait, as `Block`'s.
        timeout: Duration,
        /// How long before a timer the worker stops sleeping and spins.
        spin: Duration,
    },
}

impl IdleStrategy {
    /// `Backoff` with the defaults: 100 spins, 10 yields, parks of at most 1 ms.
    pub const BACKOFF: IdleStrategy =
        IdleStrategy::Backoff { spins: 100, yields: 10, max_park: Duration::from_millis(1) };
    /// `Block` with a 100 ms bound per wait.
    pub const BLOCK: IdleStrategy = IdleStrategy::Block { timeout: Duration::from_millis(100) };
    /// `SpinToDeadline` with `Block`'s bound and a 50 µs spin: this VM's timers fire up to
    /// 41 µs late at p50 (BENCHMARKS.md 17.1).
    pub const SPIN_TO_DEADLINE: IdleStrategy =
        IdleStrategy::SpinToDeadline { timeout: Duration::from_millis(100), spin: Duration::from_micros(50) };

    /// True for strategies that may keep a core busy (counted against the core budget).
    pub fn spins(&self) -> bool {
        matches!(self, IdleStrategy::BusySpin | IdleStrategy::Yield | IdleStrategy::SpinToDeadline { .. })
    }

    /// The strategy to use when nothing was asked for: spinning only pays where a core is
    /// free for it, and on a 2-core machine none is, so the default blocks.
    pub fn recommended(cores: usize) -> IdleStrategy {
        if cores >= 4 {
            IdleStrategy::BACKOFF
        } else {
            IdleStrategy::BLOCK
        }
    }
}

impl Default for IdleStrategy {
    fn default() -> Self {
        IdleStrategy::BLOCK
    }
}

impl fmt::Display for IdleStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdleStrategy::BusySpin => "busy-spin",
            IdleStrategy::Yield => "yield",
            IdleStrategy::Backoff { .. } => "backoff",
            IdleStrategy::Block { .. } => "block",
            // As it parses back.
            IdleStrategy::SpinToDeadline { spin, .. } => {
                return write!(f, "spin-to-deadline:{}", spin.as_micros());
            }
        })
    }
}

impl FromStr for IdleStrategy {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "busy-spin" | "busyspin" | "spin" => Ok(IdleStrategy::BusySpin),
            "yield" => Ok(IdleStrategy::Yield),
            "backoff" => Ok(IdleStrategy::BACKOFF),
            "block" => Ok(IdleStrategy::BLOCK),
            "spin-to-deadline" => Ok(IdleStrategy::SPIN_TO_DEADLINE),
            _ => match s.strip_prefix("spin-to-deadline:").map(str::parse::<u64>) {
                Some(Ok(us)) if (1..=10_000).contains(&us) => Ok(IdleStrategy::SpinToDeadline {
                    timeout: Duration::from_millis(100),
                    spin: Duration::from_micros(us),
                }),
                _ => Err(Error::config(
                    "idle strategy",
                    s,
                    "one of busy-spin, yield, backoff, block, spin-to-deadline[:MICROSECONDS 1-10000]",
                )),
            },
        }
    }
}

/// The next step of an idle worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdleAction {
    /// Go round again at once (with a spin hint).
    Spin,
    /// Yield the core, then go round again.
    Yield,
    /// Wait in `zmq_poll` for at most this long.
    Park(Duration),
}

/// The state machine behind a strategy; pure, so its sequence is unit-tested.
#[derive(Debug)]
pub(crate) struct Idler {
    strategy: IdleStrategy,
    /// Consecutive idle passes since the last useful one.
    idle_passes: u32,
}

impl Idler {
    pub(crate) fn new(strategy: IdleStrategy) -> Self {
        Idler { strategy, idle_passes: 0 }
    }

    /// Called after every pass: `did_work` resets the back-off.
    pub(crate) fn next(&mut self, did_work: bool) -> IdleAction {
        if did_work {
            self.idle_passes = 0;
            return IdleAction::Spin;
        }
        self.idle_passes = self.idle_passes.saturating_add(1);
        match self.strategy {
            IdleStrategy::BusySpin => IdleAction::Spin,
            IdleStrategy::Yield => IdleAction::Yield,
            IdleStrategy::Block { timeout } | IdleStrategy::SpinToDeadline { timeout, .. } => {
                IdleAction::Park(timeout)
            }
            IdleStrategy::Backoff { spins, yields, max_park } => {
                if self.idle_passes <= spins {
                    IdleAction::Spin
                } else if self.idle_passes <= spins.saturating_add(yields) {
                    IdleAction::Yield
                } else {
                    IdleAction::Park(max_park)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_spins_then_yields_then_parks_and_resets_on_work() {
        let park = Duration::from_millis(1);
        let mut i = Idler::new(IdleStrategy::Backoff { spins: 2, yields: 1, max_park: park });
        let seq: Vec<_> = (0..5).map(|_| i.next(false)).collect();
        use IdleAction::*;
        assert_eq!(seq, [Spin, Spin, Yield, Park(park), Park(park)]);
        assert_eq!(i.next(true), Spin);
        assert_eq!(i.next(false), Spin);
    }

    #[test]
    fn parse_and_recommend() {
        assert_eq!("busy-spin".parse::<IdleStrategy>().unwrap(), IdleStrategy::BusySpin);
        assert!("nap".parse::<IdleStrategy>().unwrap_err().to_string().contains("busy-spin"));
        assert!(!IdleStrategy::recommended(2).spins());
        assert!(IdleStrategy::BusySpin.spins() && IdleStrategy::Yield.spins());
        assert!(!IdleStrategy::BACKOFF.spins());
        assert!(IdleStrategy::SPIN_TO_DEADLINE.spins(), "counted against the core budget");
        assert_eq!(
            "spin-to-deadline:20".parse::<IdleStrategy>().unwrap(),
            IdleStrategy::SpinToDeadline {
                timeout: Duration::from_millis(100),
                spin: Duration::from_micros(20)
            }
        );
        assert_eq!(IdleStrategy::SPIN_TO_DEADLINE.to_string(), "spin-to-deadline:50");
        for bad in ["spin-to-deadline:0", "spin-to-deadline:x", "spin-to-deadline:20000"] {
            assert!(bad.parse::<IdleStrategy>().unwrap_err().to_string().contains("MICROSECONDS"), "{bad}");
        }
    }
}
