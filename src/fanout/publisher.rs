//! The tick publisher: a worker handler that paces, sequences, coalesces and announces.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::wire::{self, BodyWriter, Kind, SnapshotEntry};
use super::FeedConfig;
use crate::batch::Batcher;
use crate::engine::{Handler, SocketId, WorkerCtx};
use crate::error::{Error, Result};
use crate::message::Inbound;
use crate::sys::now_ns;

/// How far behind its schedule the publisher may fall before a pass counts as a stall.
pub const STALL_THRESHOLD: Duration = Duration::from_millis(1);
/// Most ticks generated in one pass, so a publisher far behind still serves its sockets.
const MAX_TICKS_PER_PASS: u64 = 4096;

/// What a publisher did, reported when it stops.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PublisherReport {
    /// Ticks published (sequenced and sent).
    pub published: u64,
    /// Each topic's final sequence.
    pub last_seq: Vec<(String, u64)>,
    /// From the first tick to the last, in nanoseconds.
    pub elapsed_ns: u64,
    /// Ticks per second achieved.
    pub rate_per_s: f64,
    /// Messages (batches) sent.
    pub batches: u64,
    /// Batch sizes: `batch_sizes[k]` counts batches of 2^k to 2^(k+1)-1 ticks.
    pub batch_sizes: Vec<u64>,
    /// Passes that found the publisher more than [`STALL_THRESHOLD`] behind schedule.
    pub stalls: u64,
    /// The furthest behind schedule it fell, in nanoseconds.
    pub max_lag_ns: u64,
    /// Subscribers that acknowledged the end of the stream.
    pub acks: usize,
}

/// Counters the publisher updates as it goes, for live progress.
#[derive(Debug, Default)]
pub struct PublisherLive {
    /// Ticks published so far.
    pub published: AtomicU64,
    /// Subscribers seen (their hello subscriptions).
    pub subscribers: AtomicU64,
}

enum Phase {
    /// Waiting for `wait_subscribers` hellos, until the deadline.
    Waiting {
        deadline: Instant,
    },
    Publishing,
    /// Repeating the end markers until `until` (or every subscriber acknowledged).
    Ending {
        next_eos: Instant,
        until: Instant,
    },
}

struct Topic {
    name: Vec<u8>,
    /// The last sequence given out; every sequence up to it has been sent once its
    /// group's open batch is flushed.
    seq: u64,
    group: usize,
    last_value: Vec<u8>,
}

/// A group: the unit of coalescing, and the frame SUB sockets filter on.
struct Group {
    name: Vec<u8>,
    body: BodyWriter,
    batcher: Batcher,
    /// Indices of its topics.
    topics: Vec<usize>,
}

/// What every publisher shares, whoever supplies its ticks: the topics and their sequences,
/// the groups' open batches, the subscribers seen through the XPUB, the snapshot service and
/// the end acknowledgements. Owned by the publisher's worker.
pub(super) struct Stream {
    xpub: SocketId,
    snapshot: Option<SocketId>,
    single_frame: bool,
    topics: Vec<Topic>,
    groups: Vec<Group>,
    /// Reused body for heartbeats and end markers.
    control: BodyWriter,
    /// Reused single-frame buffer (`topic 0x00 body`) for conflated feeds.
    single: Vec<u8>,
    snap_buf: Vec<u8>,
    hellos: HashSet<Vec<u8>>,
    /// Group subscriptions seen (single-frame feeds count subscribers by these).
    group_subscriptions: usize,
    /// Snapshot requests whose hello has not arrived yet: (routing id, hello id).
    deferred: Vec<(Vec<u8>, Vec<u8>)>,
    acks: HashSet<Vec<u8>>,
    /// Counts as they go (`published`, batches); the rest is filled in at the end.
    report: PublisherReport,
    live: Arc<PublisherLive>,
    /// Told of every change in the number of subscribers, for threads that wait for them.
    watch: Option<Arc<SubscriberWatch>>,
}

/// The number of subscribers a publisher sees, for application threads to wait on.
#[derive(Debug, Default)]
pub(super) struct SubscriberWatch {
    count: Mutex<usize>,
    changed: Condvar,
}

impl SubscriberWatch {
    fn set(&self, n: usize) {
        let mut c = self.count.lock().unwrap_or_else(PoisonError::into_inner);
        *c = n;
        self.changed.notify_all();
    }

    /// Subscribers now.
    pub(super) fn get(&self) -> usize {
        *self.count.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until at least `n` subscribers are there, at most `timeout`; true if they are.
    pub(super) fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        let c = self.count.lock().unwrap_or_else(PoisonError::into_inner);
        let (c, _) =
            self.changed.wait_timeout_while(c, timeout, |c| *c < n).unwrap_or_else(PoisonError::into_inner);
        *c >= n
    }
}

impl Stream {
    /// `topics` are checked by the caller (1 to 65,535 names of 1 to 255 bytes, no NUL);
    /// a group's open batch is sent at `max_batch` ticks or once its oldest tick is
    /// `max_delay_ns` old (`u64::MAX`: only when the owner flushes).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        topics: &[String],
        groups: usize,
        max_batch: usize,
        max_delay_ns: u64,
        single_frame: bool,
        xpub: SocketId,
        snapshot: Option<SocketId>,
        live: Arc<PublisherLive>,
    ) -> Self {
        let ngroups = groups.clamp(1, topics.len().max(1));
        Stream {
            xpub,
            snapshot,
            single_frame,
            topics: topics
                .iter()
                .enumerate()
                .map(|(i, t)| Topic {
                    name: t.as_bytes().to_vec(),
                    seq: 0,
                    group: i % ngroups,
                    last_value: Vec::new(),
                })
                .collect(),
            groups: (0..ngroups)
                .map(|g| Group {
                    name: super::group_name(g).into_bytes(),
                    body: BodyWriter::new(Kind::Data),
                    batcher: Batcher::new(max_batch, usize::MAX, max_delay_ns),
                    topics: (g..topics.len()).step_by(ngroups).collect(),
                })
                .collect(),
            control: BodyWriter::new(Kind::Heartbeat),
            single: Vec::new(),
            snap_buf: Vec::new(),
            hellos: HashSet::new(),
            group_subscriptions: 0,
            deferred: Vec::new(),
            acks: HashSet::new(),
            report: PublisherReport { batch_sizes: vec![0; 17], ..Default::default() },
            live,
            watch: None,
        }
    }

    /// Also tells `watch` whenever the number of subscribers changes.
    pub(super) fn watched_by(mut self, watch: Arc<SubscriberWatch>) -> Self {
        self.watch = Some(watch);
        self
    }

    /// Number of topics.
    pub(super) fn topic_count(&self) -> usize {
        self.topics.len()
    }

    /// Gives topic `k` its next sequence and adds the tick to its group's open batch, which
    /// is sent when full (or at once in a single-frame feed).
    pub(super) fn push(
        &mut self,
        ctx: &mut WorkerCtx<'_>,
        k: usize,
        intended_ns: u64,
        payload: &[u8],
        now: u64,
    ) -> Result<()> {
        let t = &mut self.topics[k];
        t.seq += 1;
        // Snapshots and control records carry it.
        t.last_value.clear();
        t.last_value.extend_from_slice(payload);
        let g = t.group;
        let grp = &mut self.groups[g];
        grp.body.push(&t.name, t.seq, intended_ns, payload);
        let full = grp.batcher.push(now, payload.len()).is_some();
        self.report.published += 1;
        if full || self.single_frame {
            self.flush(ctx, g)?;
        }
        Ok(())
    }

    /// Sends the open batches whose oldest tick has waited out the coalescing window, and
    /// returns when the next one falls due (`None`: no batch open).
    pub(super) fn flush_due(&mut self, ctx: &mut WorkerCtx<'_>, now: u64) -> Result<Option<u64>> {
        let mut next: Option<u64> = None;
        for g in 0..self.groups.len() {
            if self.groups[g].batcher.poll(now).is_some() {
                self.flush(ctx, g)?;
            } else if let Some(d) = self.groups[g].batcher.deadline_ns() {
                next = Some(next.map_or(d, |n| n.min(d)));
            }
        }
        Ok(next)
    }

    /// Sends group `g`'s open batch, if any.
    pub(super) fn flush(&mut self, ctx: &mut WorkerCtx<'_>, g: usize) -> Result<()> {
        let grp = &mut self.groups[g];
        let n = grp.body.count();
        if n == 0 {
            return Ok(());
        }
        grp.body.stamp_sent(now_ns());
        let res =
            send_body(ctx, self.xpub, self.single_frame, &mut self.single, &grp.name, grp.body.as_bytes());
        grp.body.clear();
        grp.batcher.reset();
        self.report.batches += 1;
        let bucket = (15 - (n.leading_zeros() as usize)).min(16);
        self.report.batch_sizes[bucket] += 1;
        res
    }

    /// Sends every open batch.
    pub(super) fn flush_all(&mut self, ctx: &mut WorkerCtx<'_>) -> Result<()> {
        for g in 0..self.groups.len() {
            self.flush(ctx, g)?;
        }
        Ok(())
    }

    /// Sends each group's topics' last sequences. Open batches go first, so a heartbeat
    /// never announces a sequence that is still waiting to be sent.
    pub(super) fn send_control(&mut self, ctx: &mut WorkerCtx<'_>, kind: Kind) -> Result<()> {
        self.flush_all(ctx)?;
        for g in 0..self.groups.len() {
            self.control.start(kind);
            for &k in &self.groups[g].topics {
                let t = &self.topics[k];
                self.control.push_last(&t.name, t.seq, &t.last_value);
            }
            let name = &self.groups[g].name;
            send_body(ctx, self.xpub, self.single_frame, &mut self.single, name, self.control.as_bytes())?;
        }
        Ok(())
    }

    /// Subscribers connected: by hello, or by group subscription in a single-frame feed.
    pub(super) fn subscribers(&self) -> usize {
        if self.single_frame {
            self.group_subscriptions
        } else {
            self.hellos.len()
        }
    }

    /// Subscribers that acknowledged the end of the stream.
    pub(super) fn acks(&self) -> usize {
        self.acks.len()
    }

    /// True when at least one subscriber is connected and each one connected has
    /// acknowledged the end (which needs the snapshot endpoint: subscribers without it
    /// cannot acknowledge).
    pub(super) fn all_acknowledged(&self) -> bool {
        self.snapshot.is_some()
            && !self.hellos.is_empty()
            && self.hellos.iter().all(|h| self.acks.contains(h))
    }

    fn subscribers_changed(&self) {
        let n = self.subscribers();
        self.live.subscribers.store(n as u64, Ordering::Relaxed);
        if let Some(w) = &self.watch {
            w.set(n);
        }
    }

    fn answer_snapshot(&mut self, ctx: &mut WorkerCtx<'_>, routing_id: &[u8]) -> Result<()> {
        let Some(sock) = self.snapshot else { return Ok(()) };
        // The snapshot must not claim sequences still in an open batch: send those first.
        self.flush_all(ctx)?;
        let entries: Vec<SnapshotEntry> = self
            .topics
            .iter()
            .map(|t| SnapshotEntry {
                topic: t.name.clone(),
                last_seq: t.seq,
                last_value: t.last_value.clone(),
            })
            .collect();
        wire::encode_snapshot(&entries, &mut self.snap_buf);
        ctx.send_parts(sock, &[routing_id, &self.snap_buf])
    }

    /// Handles what arrives on the XPUB (subscriptions) and the snapshot ROUTER (snapshot
    /// requests, end acknowledgements).
    pub(super) fn on_message(
        &mut self,
        ctx: &mut WorkerCtx<'_>,
        socket: SocketId,
        msg: &Inbound<'_>,
    ) -> Result<()> {
        if socket == self.xpub {
            // XPUB delivers subscriptions: 1 + prefix to subscribe, 0 + prefix to leave.
            let f = msg.last();
            let (Some(&op), Some(prefix)) = (f.first(), f.get(1..)) else { return Ok(()) };
            if self.single_frame && self.groups.iter().any(|g| g.name == prefix) {
                if op == 1 {
                    self.group_subscriptions += 1;
                } else {
                    self.group_subscriptions = self.group_subscriptions.saturating_sub(1);
                }
                self.subscribers_changed();
            }
            if let Some(id) = prefix.strip_prefix(wire::HELLO_PREFIX) {
                if op == 1 {
                    self.hellos.insert(id.to_vec());
                    let ready: Vec<_> =
                        self.deferred.iter().filter(|(_, h)| h == id).map(|(r, _)| r.clone()).collect();
                    self.deferred.retain(|(_, h)| h != id);
                    for r in ready {
                        self.answer_snapshot(ctx, &r)?;
                    }
                } else {
                    self.hellos.remove(id);
                }
                self.subscribers_changed();
            }
            return Ok(());
        }
        // The snapshot ROUTER: [routing id][verb][hello id].
        let (Some(rid), Some(verb), Some(hello)) = (msg.frame(0), msg.frame(1), msg.frame(2)) else {
            return Err(Error::Decode {
                context: "fan-out snapshot ROUTER".into(),
                reason: format!("{} frames; a request has 3 (routing id, verb, hello id)", msg.len()),
            });
        };
        match verb {
            wire::SNAPSHOT_REQUEST if self.hellos.contains(hello) => self.answer_snapshot(ctx, rid),
            // Its subscription has not reached us yet: answering now could miss updates.
            wire::SNAPSHOT_REQUEST => {
                self.deferred.push((rid.to_vec(), hello.to_vec()));
                Ok(())
            }
            // Only a subscriber the publisher has seen can acknowledge (a stray peer must not
            // end the end markers' repetition early).
            wire::DONE_ACK if self.hellos.contains(hello) => {
                self.acks.insert(hello.to_vec());
                Ok(())
            }
            wire::DONE_ACK => Err(Error::Decode {
                context: "fan-out snapshot ROUTER".into(),
                reason: "end acknowledgement from an unknown subscriber".into(),
            }),
            other => Err(Error::Decode {
                context: "fan-out snapshot ROUTER".into(),
                reason: format!("unknown request {:?}", String::from_utf8_lossy(other)),
            }),
        }
    }

    /// The final report: the counts so far, each topic's last sequence and the acks.
    pub(super) fn take_report(&mut self) -> PublisherReport {
        let mut r = std::mem::take(&mut self.report);
        r.last_seq =
            self.topics.iter().map(|t| (String::from_utf8_lossy(&t.name).into_owned(), t.seq)).collect();
        r.rate_per_s = if r.elapsed_ns > 0 { r.published as f64 * 1e9 / r.elapsed_ns as f64 } else { 0.0 };
        r.acks = self.acks.len();
        r
    }

    /// Publishes the count of ticks published for live progress.
    pub(super) fn publish_live(&self) {
        self.live.published.store(self.report.published, Ordering::Relaxed);
    }

    /// Sets the time from the first tick to the last.
    pub(super) fn set_elapsed(&mut self, ns: u64) {
        self.report.elapsed_ns = ns;
    }
}

/// The synthetic feed's state, owned by its worker: a schedule on top of a [`Stream`].
pub(super) struct Publisher {
    cfg: FeedConfig,
    stream: Stream,
    payload: Vec<u8>,
    phase: Phase,
    start_ns: u64,
    /// Ticks generated so far; tick `i` is intended to leave at `start + i / rate`.
    generated: u64,
    /// Ticks to publish in all (paced, or `max_ticks`); `None`: until the duration ends.
    total: Option<u64>,
    end_ns: u64,
    last_heartbeat: u64,
    started: crossbeam_channel::Sender<()>,
    finished: crossbeam_channel::Sender<()>,
    reports: crossbeam_channel::Sender<PublisherReport>,
}

impl Publisher {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        cfg: FeedConfig,
        xpub: SocketId,
        snapshot: Option<SocketId>,
        live: Arc<PublisherLive>,
        started: crossbeam_channel::Sender<()>,
        finished: crossbeam_channel::Sender<()>,
        reports: crossbeam_channel::Sender<PublisherReport>,
    ) -> Self {
        // Only the size limit: the time limit is the publisher's wake-up (see `on_tick`).
        let stream = Stream::new(
            &cfg.topics,
            cfg.groups,
            cfg.max_batch,
            u64::MAX,
            cfg.single_frame,
            xpub,
            snapshot,
            live,
        );
        let payload = vec![0xA5; cfg.payload_size];
        let deadline = Instant::now() + cfg.wait_timeout;
        Publisher {
            stream,
            payload,
            phase: Phase::Waiting { deadline },
            start_ns: 0,
            generated: 0,
            total: None,
            end_ns: 0,
            last_heartbeat: 0,
            started,
            finished,
            reports,
            cfg,
        }
    }

    fn start(&mut self, now: u64) {
        self.start_ns = now;
        self.last_heartbeat = now;
        let dur = u64::try_from(self.cfg.duration.as_nanos()).unwrap_or(u64::MAX);
        self.end_ns = now.saturating_add(dur);
        self.total = match (self.cfg.max_ticks, self.cfg.rate_per_s) {
            (Some(n), _) => Some(n),
            (None, 0) => None,
            (None, r) => Some((u128::from(r) * u128::from(dur) / 1_000_000_000) as u64),
        };
        self.phase = Phase::Publishing;
        let _ = self.started.send(());
    }

    /// When tick `i` should leave under the schedule; 0 when unpaced.
    fn intended_ns(&self, i: u64) -> u64 {
        match self.cfg.rate_per_s {
            0 => 0,
            r => self.start_ns + (u128::from(i) * 1_000_000_000 / u128::from(r)) as u64,
        }
    }

    /// Generates the ticks due by `now`, coalescing them per topic.
    fn publish_due(&mut self, ctx: &mut WorkerCtx<'_>, now: u64) -> Result<u64> {
        let ntopics = self.stream.topic_count();
        let due = match (self.cfg.rate_per_s, self.total) {
            (0, total) => {
                let burst = self.generated + (self.cfg.max_batch * ntopics) as u64;
                total.map_or(burst, |t| t.min(burst))
            }
            (_, _)
                if now
                    < self
                        .intended_ns(self.generated)
                        .saturating_add(self.cfg.max_delay.as_nanos() as u64) =>
            {
                // The oldest due tick has not yet waited out the coalescing window: let more
                // ticks fall due so they leave together.
                return Ok(0);
            }
            (r, total) => {
                let elapsed = now.saturating_sub(self.start_ns);
                let by_clock = (u128::from(elapsed) * u128::from(r) / 1_000_000_000) as u64 + 1;
                total.map_or(by_clock, |t| t.min(by_clock))
            }
        };
        let due = due.min(self.generated + MAX_TICKS_PER_PASS);
        if self.cfg.rate_per_s > 0 && due > self.generated {
            let lag = now.saturating_sub(self.intended_ns(self.generated));
            let r = &mut self.stream.report;
            r.max_lag_ns = r.max_lag_ns.max(lag);
            if lag > STALL_THRESHOLD.as_nanos() as u64 {
                r.stalls += 1;
            }
        }
        let mut n = 0;
        while self.generated < due {
            let i = self.generated;
            let intended = self.intended_ns(i);
            let k = (i % ntopics as u64) as usize;
            self.stream.push(ctx, k, intended, &self.payload, now)?;
            self.generated += 1;
            n += 1;
        }
        // Everything due now leaves now: the coalescing window is spent asleep (see the wake
        // time in `on_tick`), never holding a tick that could go.
        self.stream.flush_all(ctx)?;
        self.stream.publish_live();
        Ok(n)
    }

    fn finish_publishing(&mut self, ctx: &mut WorkerCtx<'_>, now: u64) -> Result<()> {
        self.stream.flush_all(ctx)?;
        self.stream.set_elapsed(now.saturating_sub(self.start_ns));
        self.stream.send_control(ctx, Kind::End)?;
        let _ = self.finished.send(());
        let at = Instant::now();
        self.phase = Phase::Ending { next_eos: at + self.cfg.eos_repeat, until: at + self.cfg.eos_linger };
        Ok(())
    }
}

impl Handler for Publisher {
    fn on_message(&mut self, ctx: &mut WorkerCtx<'_>, socket: SocketId, msg: &Inbound<'_>) -> Result<()> {
        self.stream.on_message(ctx, socket, msg)
    }

    fn on_tick(&mut self, ctx: &mut WorkerCtx<'_>) -> Result<bool> {
        let now = now_ns();
        match self.phase {
            Phase::Waiting { deadline } => {
                if self.stream.subscribers() >= self.cfg.wait_subscribers {
                    self.start(now);
                    return Ok(true);
                }
                if Instant::now() >= deadline {
                    ctx.stop();
                    return Err(Error::Timeout {
                        op: crate::error::Operation::Recv,
                        endpoint: format!(
                            "the publisher's socket ({} of {} subscribers connected)",
                            self.stream.subscribers(),
                            self.cfg.wait_subscribers
                        ),
                        ms: self.cfg.wait_timeout.as_millis() as u64,
                    });
                }
                ctx.wake_at(Instant::now() + Duration::from_millis(1));
                Ok(false)
            }
            Phase::Publishing => {
                let n = self.publish_due(ctx, now)?;
                let hb_ns = self.cfg.heartbeat.as_nanos() as u64;
                if now.saturating_sub(self.last_heartbeat) >= hb_ns {
                    self.last_heartbeat = now;
                    self.stream.send_control(ctx, Kind::Heartbeat)?;
                }
                let done = match self.total {
                    Some(t) => self.generated >= t,
                    None => now >= self.end_ns,
                };
                if done {
                    self.finish_publishing(ctx, now)?;
                    return Ok(true);
                }
                if self.cfg.rate_per_s > 0 {
                    // Sleep until the next tick is due plus the coalescing window: the ticks
                    // that fall due meanwhile leave together, each at most `max_delay` late
                    // (which the latency from intended send times shows).
                    let window = self.cfg.max_delay.as_nanos() as u64;
                    let wake = self.intended_ns(self.generated).saturating_add(window);
                    ctx.wake_at(Instant::now() + Duration::from_nanos(wake.saturating_sub(now_ns())));
                }
                Ok(n > 0)
            }
            Phase::Ending { next_eos, until } => {
                let at = Instant::now();
                if at >= until
                    || (self.cfg.wait_subscribers > 0 && self.stream.acks() >= self.cfg.wait_subscribers)
                {
                    ctx.stop();
                    return Ok(false);
                }
                if at >= next_eos {
                    self.stream.send_control(ctx, Kind::End)?;
                    self.phase = Phase::Ending { next_eos: at + self.cfg.eos_repeat, until };
                }
                ctx.wake_at(next_eos.min(until));
                Ok(false)
            }
        }
    }

    fn on_stop(&mut self, _ctx: &mut WorkerCtx<'_>) {
        let _ = self.reports.send(self.stream.take_report());
    }
}

/// Sends `body` under `group`: two frames, or one `group 0x00 body` frame for conflating
/// subscribers (built in the reusable `single`).
fn send_body(
    ctx: &mut WorkerCtx<'_>,
    sock: SocketId,
    single_frame: bool,
    single: &mut Vec<u8>,
    group: &[u8],
    body: &[u8],
) -> Result<()> {
    if single_frame {
        single.clear();
        single.extend_from_slice(group);
        single.push(0);
        single.extend_from_slice(body);
        ctx.send(sock, single)
    } else {
        ctx.send_parts(sock, &[group, body])
    }
}
