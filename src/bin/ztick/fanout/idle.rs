//! Latency after idle (`ztick fanout --idle-gaps-us`): the feed's schedule of gaps, and
//! each subscriber's latency grouped by the gap before the tick, the way the fair
//! benchmark's other stacks (raw libzmq from C, zmq.rs) group theirs.
//!
//! The schedule is one lead-in tick, then for each gap G, `samples` ticks each G after the
//! one before. A subscriber finds a tick's gap as the difference between its intended send
//! time and the previous in-order tick's, matched exactly against the gaps it was given, so
//! publisher and subscribers in different processes need only the same `--idle-gaps-us`.

use std::sync::{Arc, Mutex, PoisonError};

use ztick::fanout::Delivered;
use ztick::metrics::LatencyRecorder;
use ztick::Error;

use crate::schema::fanout::IdleGapJson;

/// Most gaps in one run.
pub(crate) const MAX_GAPS: usize = 64;
/// The longest gap, in microseconds (a minute).
pub(crate) const MAX_GAP_US: u64 = 60_000_000;
/// Most ticks after each gap.
pub(crate) const MAX_SAMPLES: u64 = 10_000;

/// Checks `--idle-gaps-us` and `--idle-samples`; the gaps in nanoseconds.
pub(crate) fn gaps_ns(gaps_us: &[u64], samples: u64) -> Result<Vec<u64>, Error> {
    if gaps_us.len() > MAX_GAPS {
        return Err(Error::config("--idle-gaps-us", gaps_us.len(), format!("at most {MAX_GAPS} gaps")));
    }
    if let Some(g) = gaps_us.iter().find(|&&g| g == 0 || g > MAX_GAP_US) {
        return Err(Error::config("--idle-gaps-us", g, format!("gaps of 1 to {MAX_GAP_US} microseconds")));
    }
    if samples == 0 || samples > MAX_SAMPLES {
        return Err(Error::config("--idle-samples", samples, format!("1 to {MAX_SAMPLES} ticks per gap")));
    }
    Ok(gaps_us.iter().map(|g| g * 1_000).collect())
}

/// The feed's schedule: tick `i` is due `schedule[i]` ns after the start.
pub(crate) fn schedule(gaps_ns: &[u64], samples: u64) -> Arc<[u64]> {
    let mut at = 0u64;
    let mut s = Vec::with_capacity(1 + gaps_ns.len() * samples as usize);
    s.push(at);
    for &g in gaps_ns {
        for _ in 0..samples {
            at = at.saturating_add(g);
            s.push(at);
        }
    }
    s.into()
}

/// One gap's ticks: corrected (from intended send) and raw (from send) latency.
#[derive(Debug)]
struct GapLatency {
    gap_ns: u64,
    corrected: LatencyRecorder,
    raw: LatencyRecorder,
}

/// A subscriber's latency per gap, fed from its event callback on its worker and read by
/// the command once the subscriber has finished.
#[derive(Debug)]
pub(crate) struct IdleGaps {
    gaps: Vec<GapLatency>,
    prev_intended: Option<u64>,
    /// In-order ticks whose gap matched none (the lead-in tick, a tick after a loss).
    unmatched: u64,
}

/// An [`IdleGaps`] shared between a subscriber's callback and the command.
pub(crate) type SharedIdleGaps = Arc<Mutex<IdleGaps>>;

impl IdleGaps {
    /// An empty recorder for these gaps (ns).
    pub(crate) fn new(gaps_ns: &[u64]) -> Self {
        let gaps = gaps_ns
            .iter()
            .map(|&gap_ns| GapLatency {
                gap_ns,
                corrected: LatencyRecorder::new(),
                raw: LatencyRecorder::new(),
            })
            .collect();
        IdleGaps { gaps, prev_intended: None, unmatched: 0 }
    }

    /// A recorder to share with a subscriber's callback.
    pub(crate) fn shared(gaps_ns: &[u64]) -> SharedIdleGaps {
        Arc::new(Mutex::new(Self::new(gaps_ns)))
    }

    /// Records a delivered tick. Repaired ticks come out of order and after a loss: they
    /// are left out, and so is the first in-order tick after them (its gap is not known).
    pub(crate) fn on_tick(&mut self, t: &Delivered<'_>) {
        if t.repaired || t.intended_ns == 0 {
            self.prev_intended = None;
            return;
        }
        let gap = self.prev_intended.and_then(|p| t.intended_ns.checked_sub(p));
        self.prev_intended = Some(t.intended_ns);
        match self.gaps.iter_mut().find(|g| Some(g.gap_ns) == gap) {
            Some(g) => {
                g.corrected.record(t.received_ns.saturating_sub(t.intended_ns).max(1));
                g.raw.record(t.received_ns.saturating_sub(t.sent_ns).max(1));
            }
            None => self.unmatched += 1,
        }
    }

    /// Records a tick through a shared recorder (a poisoned lock still records: the data
    /// is counts, and a panic elsewhere does not make them wrong).
    pub(crate) fn record(shared: &SharedIdleGaps, t: &Delivered<'_>) {
        shared.lock().unwrap_or_else(PoisonError::into_inner).on_tick(t);
    }

    /// In-order ticks that matched no gap.
    pub(crate) fn unmatched(&self) -> u64 {
        self.unmatched
    }

    /// The record's rows, one per gap in the order given.
    pub(crate) fn to_json(&self) -> Vec<IdleGapJson> {
        self.gaps
            .iter()
            .map(|g| IdleGapJson {
                gap_ns: g.gap_ns,
                count: g.corrected.len(),
                latency_ns: g.corrected.summary(),
                latency_raw_ns: g.raw.summary(),
            })
            .collect()
    }

    /// The rows of a shared recorder.
    pub(crate) fn snapshot(shared: &SharedIdleGaps) -> (Vec<IdleGapJson>, u64) {
        let g = shared.lock().unwrap_or_else(PoisonError::into_inner);
        (g.to_json(), g.unmatched())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tick(intended_ns: u64, repaired: bool) -> Delivered<'static> {
        Delivered {
            topic: "t0",
            topic_index: 0,
            epoch: 1,
            seq: 1,
            sent_ns: intended_ns + 5_000,
            intended_ns,
            received_ns: intended_ns + 7_000,
            repaired,
            payload: &[],
        }
    }

    #[test]
    fn the_schedule_is_a_lead_in_then_samples_per_gap() {
        let gaps = gaps_ns(&[100, 1_000], 2).unwrap();
        assert_eq!(&*schedule(&gaps, 2), &[0, 100_000, 200_000, 1_200_000, 2_200_000]);
        for (gaps, samples, what) in [
            (vec![0], 1, "1 to 60000000"),
            (vec![MAX_GAP_US + 1], 1, "1 to 60000000"),
            (vec![1; MAX_GAPS + 1], 1, "at most 64 gaps"),
            (vec![10], 0, "ticks per gap"),
        ] {
            let e = gaps_ns(&gaps, samples).unwrap_err().to_string();
            assert!(e.contains(what), "{e}");
        }
    }

    #[test]
    fn ticks_are_grouped_by_the_gap_before_them() {
        let gaps = gaps_ns(&[100, 1_000], 2).unwrap();
        let mut g = IdleGaps::new(&gaps);
        for &at in schedule(&gaps, 2).iter() {
            g.on_tick(&tick(1_000_000 + at, false));
        }
        let rows = g.to_json();
        assert_eq!(
            rows.iter().map(|r| (r.gap_ns, r.count)).collect::<Vec<_>>(),
            [(100_000, 2), (1_000_000, 2)]
        );
        assert_eq!(g.unmatched(), 1, "the lead-in tick has no gap");
        let us = |ns: u64| ns / 1_000;
        assert_eq!(us(rows[0].latency_ns.p50), 7, "corrected: from the intended time");
        assert_eq!(us(rows[0].latency_raw_ns.p50), 2, "raw: from the send");
    }

    #[test]
    fn a_repair_breaks_the_chain_of_gaps() {
        let mut g = IdleGaps::new(&[100_000]);
        g.on_tick(&tick(1_000_000, false));
        g.on_tick(&tick(1_100_000, true));
        // The gap to the tick before the repair would be 200 µs: unknown, not matched.
        g.on_tick(&tick(1_200_000, false));
        g.on_tick(&tick(1_300_000, false));
        assert_eq!(g.to_json()[0].count, 1);
        assert_eq!(g.unmatched(), 2);
        // A tick without an intended time (0) is not grouped either.
        g.on_tick(&tick(0, false));
        g.on_tick(&tick(100_000, false));
        assert_eq!((g.to_json()[0].count, g.unmatched()), (1, 3));
    }
}
