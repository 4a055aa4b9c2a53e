//! Profiles: how a fan-out's threads wait, where they run and how much the publisher
//! coalesces, chosen for the cores this process may use, so nobody has to remember which
//! combination starves libzmq's I/O thread on a small machine.
//!
//! Three rules decide, each measured on this project's 2-core machine (BENCHMARKS.md):
//!
//! - A spinning thread owns a core: spinning workers plus libzmq's I/O thread on 2 cores
//!   took a tcp round trip from 35 µs to 4 ms, so a thread spins only when every spinning
//!   worker, the I/O thread and one core for everything else fit.
//! - A thread that sleeps pays the kernel's wake-up (40 µs at p50, 0.7 ms at p99 for a
//!   100 µs timer here), once per message: coalescing the ticks due within 20 µs into one
//!   message cut p99 from 1.2 ms to 0.3 ms at 100,000 ticks/s.
//! - A sleeping worker under a real-time policy takes its core back when it wakes, ahead
//!   of time-shared threads; the OS may refuse it, and the worker then says so and runs on.
//!   libzmq's I/O threads then need the same policy: left time-shared beside real-time
//!   workers on 2 cores they starved, and the cross-process p99 at 100,000 ticks/s with 2
//!   subscribers went to 42-63 ms; with them under SCHED_FIFO too it was 0.8-1.5 ms, 0.2-1.4x
//!   raw libzmq's. With 1 subscriber it was 2.9-3.0 ms, above the balanced
//!   profile's, and at 1 M ticks/s the real-time threads are busy most of the time and
//!   hold their cores in turn: p99 27-63 ms against 8-9 ms. So `latency` is for moderate
//!   rates and several processes on a small machine (BENCHMARKS.md, sections 17.3, 17.5).
//!
//! [`Profile::plan`] applies them and returns a [`Plan`] that says what it chose and why.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::config::{CoreId, SchedPolicy};
use crate::engine::IdleStrategy;
use crate::error::Error;

/// What a fan-out is tuned for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Profile {
    /// The lowest tail: spin on dedicated cores where they exist, else sleep under a
    /// real-time policy with a short coalescing window.
    Latency,
    /// The engine's defaults: the idle strategy recommended for the cores present and a
    /// 20 µs coalescing window.
    #[default]
    Balanced,
    /// The least CPU and the fewest wake-ups per tick: sleep, and coalesce for 100 µs into
    /// messages of up to 256 ticks.
    Throughput,
}

impl Profile {
    /// Every profile, in the order `ztick info` prints them.
    pub const ALL: [Profile; 3] = [Profile::Latency, Profile::Balanced, Profile::Throughput];

    /// The plan for a process running `workers` fan-out workers (a publisher and/or
    /// subscribers) on `cores`, with `io_threads` libzmq I/O threads (0 for inproc only).
    pub fn plan(self, cores: &[CoreId], workers: usize, io_threads: usize) -> Plan {
        let coalesced = Plan {
            profile: self,
            idle: IdleStrategy::recommended(cores.len()),
            sched: SchedPolicy::Other,
            io_sched: None,
            worker_cores: Vec::new(),
            io_cores: Vec::new(),
            max_delay: Duration::from_micros(20),
            max_batch: 64,
            why: String::new(),
        };
        match self {
            Profile::Balanced => Plan {
                why: format!(
                    "the defaults for {} cores: {} idle, 20 µs coalescing",
                    cores.len(),
                    coalesced.idle
                ),
                ..coalesced
            },
            Profile::Throughput => Plan {
                idle: IdleStrategy::BLOCK,
                max_delay: Duration::from_micros(100),
                max_batch: 256,
                why: "sleeping workers, 100 µs coalescing into messages of up to 256 ticks".into(),
                ..coalesced
            },
            Profile::Latency => {
                // Every spinning worker and I/O thread on a core of its own, and one core left
                // for the rest of the system.
                let needed = workers + io_threads + 1;
                if workers > 0 && cores.len() >= needed {
                    let (io, rest) = cores[1..].split_at(io_threads.min(cores.len() - 1));
                    Plan {
                        idle: IdleStrategy::BusySpin,
                        worker_cores: rest[..workers].to_vec(),
                        io_cores: io.to_vec(),
                        max_delay: Duration::ZERO,
                        why: format!(
                            "{} cores fit {workers} spinning workers, {io_threads} I/O thread(s) and one spare: \
                             spin pinned, no coalescing window",
                            cores.len()
                        ),
                        ..coalesced
                    }
                } else {
                    Plan {
                        idle: IdleStrategy::BLOCK,
                        sched: SchedPolicy::Fifo { priority: 1 },
                        io_sched: (io_threads > 0).then_some(SchedPolicy::Fifo { priority: 1 }),
                        why: format!(
                            "{} cores cannot spin {workers} workers beside {io_threads} I/O thread(s) and a spare \
                             ({needed} needed): sleeping workers and I/O threads under SCHED_FIFO, 20 µs coalescing",
                            cores.len()
                        ),
                        ..coalesced
                    }
                }
            }
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Profile::Latency => "latency",
            Profile::Balanced => "balanced",
            Profile::Throughput => "throughput",
        })
    }
}

impl FromStr for Profile {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.to_ascii_lowercase().as_str() {
            "latency" => Ok(Profile::Latency),
            "balanced" => Ok(Profile::Balanced),
            "throughput" => Ok(Profile::Throughput),
            _ => Err(Error::config("profile", s, "latency, balanced or throughput")),
        }
    }
}

/// What a [`Profile`] chose for one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The profile it came from.
    pub profile: Profile,
    /// Every worker's idle strategy.
    pub idle: IdleStrategy,
    /// Every worker's scheduling policy.
    pub sched: SchedPolicy,
    /// libzmq's I/O threads' policy (`None`: the OS's default). Real-time workers take a
    /// core from time-shared threads whenever they wake, so beside them the I/O threads
    /// need the same policy or they starve (measured: BENCHMARKS.md, section 17).
    pub io_sched: Option<SchedPolicy>,
    /// One core per worker, in order (the publisher's first); empty: not pinned.
    pub worker_cores: Vec<CoreId>,
    /// Cores for libzmq's I/O threads; empty: not pinned.
    pub io_cores: Vec<CoreId>,
    /// The publisher's coalescing window.
    pub max_delay: Duration,
    /// Most ticks per message.
    pub max_batch: usize,
    /// Why, in a sentence, for the user to read.
    pub why: String,
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cores = |c: &[CoreId]| {
            if c.is_empty() {
                "any".to_string()
            } else {
                c.iter().map(|c| c.index().to_string()).collect::<Vec<_>>().join(",")
            }
        };
        write!(
            f,
            "{}: idle {}, sched {:?}, I/O sched {}, worker cores {}, I/O cores {}, coalescing {} µs, batch {} ({})",
            self.profile,
            self.idle,
            self.sched,
            self.io_sched.map_or("default".to_string(), |p| format!("{p:?}")),
            cores(&self.worker_cores),
            cores(&self.io_cores),
            self.max_delay.as_micros(),
            self.max_batch,
            self.why
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cores(n: usize) -> Vec<CoreId> {
        (0..n).map(CoreId::new).collect()
    }

    #[test]
    fn on_two_cores_no_profile_spins() {
        for p in Profile::ALL {
            let plan = p.plan(&cores(2), 3, 1);
            assert!(!plan.idle.spins(), "{plan}");
            assert!(plan.worker_cores.is_empty() && plan.io_cores.is_empty(), "{plan}");
        }
        let latency = Profile::Latency.plan(&cores(2), 3, 1);
        assert_eq!(latency.sched, SchedPolicy::Fifo { priority: 1 });
        assert_eq!(latency.io_sched, Some(latency.sched), "the I/O thread is not left to starve");
        assert_eq!(Profile::Latency.plan(&cores(2), 3, 0).io_sched, None, "inproc: no I/O thread");
        assert_eq!(Profile::Balanced.plan(&cores(2), 3, 1).io_sched, None);
        assert!(latency.why.contains("5 needed"), "{}", latency.why);
    }

    #[test]
    fn latency_spins_pinned_where_every_thread_has_a_core() {
        let plan = Profile::Latency.plan(&cores(8), 3, 1);
        assert_eq!(plan.idle, IdleStrategy::BusySpin);
        assert_eq!(plan.sched, SchedPolicy::Other, "a spinning real-time thread would starve its core");
        assert_eq!(plan.io_cores, vec![CoreId::new(1)]);
        assert_eq!(plan.worker_cores, vec![CoreId::new(2), CoreId::new(3), CoreId::new(4)]);
        assert_eq!(plan.max_delay, Duration::ZERO);
        // One core short: sleep instead.
        assert!(!Profile::Latency.plan(&cores(4), 3, 1).idle.spins());
        assert!(Profile::Latency.plan(&cores(4), 3, 0).idle.spins(), "inproc needs no I/O thread");
    }

    #[test]
    fn throughput_coalesces_more_and_names_parse() {
        let t = Profile::Throughput.plan(&cores(2), 3, 1);
        assert!(t.max_delay > Profile::Balanced.plan(&cores(2), 3, 1).max_delay && t.max_batch == 256);
        for p in Profile::ALL {
            assert_eq!(p.to_string().parse::<Profile>().unwrap(), p);
        }
        let e = "fastest".parse::<Profile>().unwrap_err().to_string();
        assert!(e.contains("latency, balanced or throughput"), "{e}");
    }
}
