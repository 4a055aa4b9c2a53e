//! The publisher's sans-IO core: its epoch, topics and their sequences, the groups' open
//! batches, the retransmit ring and the repairs it serves, the subscribers seen through the
//! XPUB, the snapshot service and the end acknowledgements.
//!
//! It owns no socket: every message leaves through an [`Outlet`] (the worker's sockets,
//! or a recording fake in the unit tests), and every decision takes the time as a
//! parameter.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::config::PublisherConfig;
use super::peers::{Intro, Peers};
use super::report::PublisherReport;
use super::ring::Ring;
use super::wire::{self, BodyWriter, Kind};
use crate::batch::Batcher;
use crate::engine::Watch;
use crate::error::{Error, Result};
use crate::message::Subscription;

/// Where the stream's messages go.
pub(crate) trait Outlet {
    /// Sends a message on the feed (the XPUB).
    fn feed(&mut self, parts: &[&[u8]]) -> Result<()>;
    /// Sends a message on the side channel (the ROUTER); `parts[0]` is the peer's routing id.
    fn side(&mut self, parts: &[&[u8]]) -> Result<()>;
    /// CLOCK_MONOTONIC ns, read just before a batch leaves to stamp its send time.
    fn now_ns(&self) -> u64;
}

/// What threads watching a publisher wait for.
#[derive(Debug, Default)]
struct Watched {
    subscribers: usize,
    ended: bool,
}

/// Counters the publisher updates as it goes, for threads that watch it.
#[derive(Debug, Default)]
pub(crate) struct PublisherLive {
    /// Ticks sequenced so far.
    pub(crate) published: AtomicU64,
    state: Watch<Watched>,
}

impl PublisherLive {
    /// Records that the stream has ended (its end markers are out, or its worker stopped).
    pub(crate) fn set_ended(&self) {
        self.state.update(|w| w.ended = true);
    }

    /// Subscribers now.
    pub(crate) fn subscribers(&self) -> usize {
        self.state.read(|w| w.subscribers)
    }

    /// Waits until at least `n` subscribers are there, at most `timeout`; true if they are.
    pub(crate) fn wait_subscribers(&self, n: usize, timeout: Duration) -> bool {
        self.state.wait_until(timeout, |w| w.subscribers >= n).1
    }

    /// Waits until the stream has ended, at most `timeout`; true if it has.
    pub(crate) fn wait_ended(&self, timeout: Duration) -> bool {
        self.state.wait_until(timeout, |w| w.ended).1
    }
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
    /// The topic of each record in `body`, in order (for the ring).
    ks: Vec<u16>,
    batcher: Batcher,
    /// Indices of its topics.
    topics: Vec<usize>,
}

/// Most repair jobs (one range of one subscriber each) queued at once, and per subscriber;
/// a request beyond is dropped (counted), and the subscriber asks again later.
const MAX_REPAIR_JOBS: usize = 4096;
const MAX_JOBS_PER_PEER: usize = 64;
/// Most ticks retransmitted per pass of the worker, so repairs never hold the live stream
/// back for long.
const REPAIR_TICKS_PER_PASS: usize = 1024;
/// Most ticks (and payload bytes) in one repair message.
const REPAIR_TICKS_PER_MESSAGE: usize = 64;
const REPAIR_BYTES_PER_MESSAGE: usize = 32 << 10;

/// One range a subscriber asked for, served a message at a time.
struct Job {
    routing_id: Vec<u8>,
    topic: usize,
    next: u64,
    last: u64,
}

/// The publisher's state, owned by whoever drives it (its worker).
pub(crate) struct Stream {
    epoch: u64,
    single_frame: bool,
    has_side: bool,
    topics: Vec<Topic>,
    groups: Vec<Group>,
    /// Reused body for heartbeats and end markers.
    control: BodyWriter,
    /// Reused single-frame buffer (`group 0x00 body`) for conflated feeds.
    single: Vec<u8>,
    /// Topic name to index, for repair requests.
    index: HashMap<Vec<u8>, usize>,
    /// The subscribers, and who may speak for them.
    peers: Peers,
    /// Group subscriptions seen (single-frame feeds count subscribers by these).
    group_subscriptions: usize,
    /// The ticks kept for repair; `None`: repair is off.
    ring: Option<Ring>,
    /// Repairs asked for and not yet served, oldest first.
    jobs: VecDeque<Job>,
    /// Reused body for repair replies.
    repair: BodyWriter,
    /// Reused body for "gone" replies.
    gone: BodyWriter,
    /// This host's clock id, and a reused buffer for clock replies.
    clock_id: Vec<u8>,
    clock_buf: Vec<u8>,
    /// When the first and the latest tick were pushed.
    first_ns: Option<u64>,
    last_ns: u64,
    /// Counts as they go (`published`, batches); the rest is filled in at the end.
    report: PublisherReport,
    live: Arc<PublisherLive>,
}

impl Stream {
    /// A stream for `cfg` (validated by the caller); `has_side` says whether a side channel
    /// exists to answer snapshots and take acknowledgements.
    pub(crate) fn new(cfg: &PublisherConfig, has_side: bool, live: Arc<PublisherLive>) -> Self {
        let topics = &cfg.topics;
        let ngroups = cfg.groups.clamp(1, topics.len().max(1));
        let max_delay_ns = u64::try_from(cfg.max_delay.as_nanos()).unwrap_or(u64::MAX);
        // Never 0, so a zeroed body can never pass for this stream.
        let epoch = crate::sys::random_u64().max(1);
        let ring = (has_side && cfg.retransmit_ring_bytes > 0)
            .then(|| Ring::new(cfg.retransmit_ring_bytes, topics.len()));
        Stream {
            epoch,
            single_frame: cfg.single_frame,
            has_side,
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
                    body: BodyWriter::new(Kind::Data, epoch),
                    ks: Vec::new(),
                    batcher: Batcher::new(cfg.max_batch, usize::MAX, max_delay_ns),
                    topics: (g..topics.len()).step_by(ngroups).collect(),
                })
                .collect(),
            control: BodyWriter::new(Kind::Heartbeat, epoch),
            single: Vec::new(),
            index: topics.iter().enumerate().map(|(i, t)| (t.as_bytes().to_vec(), i)).collect(),
            peers: Peers::default(),
            group_subscriptions: 0,
            ring,
            jobs: VecDeque::new(),
            repair: BodyWriter::new(Kind::Repair, epoch),
            gone: BodyWriter::new(Kind::Gone, epoch),
            clock_id: crate::sys::monotonic_clock_id(),
            clock_buf: Vec::new(),
            first_ns: None,
            last_ns: 0,
            report: PublisherReport { epoch, batch_sizes: vec![0; 17], ..Default::default() },
            live,
        }
    }

    /// Number of topics.
    pub(crate) fn topic_count(&self) -> usize {
        self.topics.len()
    }

    /// The epoch this stream publishes under.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Gives topic `k` (in range: checked by the caller) its next sequence and adds the
    /// tick to its group's open batch, which is sent when full (or at once in a
    /// single-frame feed).
    pub(crate) fn push(
        &mut self,
        out: &mut dyn Outlet,
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
        grp.ks.push(k as u16);
        let full = grp.batcher.push(now, payload.len()).is_some();
        self.report.published += 1;
        self.first_ns.get_or_insert(now);
        self.last_ns = now;
        if full || self.single_frame {
            self.flush(out, g)?;
        }
        Ok(())
    }

    /// Sends the open batches whose oldest tick has waited out the coalescing window, and
    /// returns when the next one falls due (`None`: no batch open).
    pub(crate) fn flush_due(&mut self, out: &mut dyn Outlet, now: u64) -> Result<Option<u64>> {
        let mut next: Option<u64> = None;
        for g in 0..self.groups.len() {
            if self.groups[g].batcher.poll(now).is_some() {
                self.flush(out, g)?;
            } else if let Some(d) = self.groups[g].batcher.deadline_ns() {
                next = Some(next.map_or(d, |n| n.min(d)));
            }
        }
        Ok(next)
    }

    /// Sends group `g`'s open batch, if any, stamped with the outlet's clock.
    fn flush(&mut self, out: &mut dyn Outlet, g: usize) -> Result<()> {
        let grp = &mut self.groups[g];
        let n = grp.body.count();
        if n == 0 {
            return Ok(());
        }
        let sent_ns = out.now_ns();
        grp.body.stamp_sent(sent_ns);
        let res = send_body(out, self.single_frame, &mut self.single, &grp.name, grp.body.as_bytes());
        if let Some(ring) = self.ring.as_mut() {
            // The body was built here: it decodes, its records in `ks` order.
            if let Ok(d) = wire::decode(grp.body.as_bytes()) {
                for (rec, &k) in d.records().zip(&grp.ks) {
                    if let Ok(t) = rec {
                        ring.push(usize::from(k), t.seq, sent_ns, t.intended_ns, t.payload);
                    }
                }
            }
        }
        grp.ks.clear();
        grp.body.clear();
        grp.batcher.reset();
        self.report.batches += 1;
        let bucket = (15 - (n.leading_zeros() as usize)).min(16);
        self.report.batch_sizes[bucket] += 1;
        res
    }

    /// Sends every open batch.
    pub(crate) fn flush_all(&mut self, out: &mut dyn Outlet) -> Result<()> {
        for g in 0..self.groups.len() {
            self.flush(out, g)?;
        }
        Ok(())
    }

    /// Sends each group's topics' last sequences (a heartbeat or the end markers). Open
    /// batches go first, so a control record never announces a sequence not yet sent.
    pub(crate) fn send_control(&mut self, out: &mut dyn Outlet, kind: Kind) -> Result<()> {
        self.flush_all(out)?;
        for g in 0..self.groups.len() {
            self.control.start(kind);
            for &k in &self.groups[g].topics {
                let t = &self.topics[k];
                self.control.push_last(&t.name, t.seq, &t.last_value);
            }
            let name = &self.groups[g].name;
            send_body(out, self.single_frame, &mut self.single, name, self.control.as_bytes())?;
        }
        Ok(())
    }

    /// Subscribers connected: by hello (with a side channel, only those that introduced
    /// themselves on it), or by group subscription in a single-frame feed.
    pub(crate) fn subscribers(&self) -> usize {
        if self.single_frame {
            self.group_subscriptions
        } else {
            self.peers.count(self.has_side)
        }
    }

    /// True once at least one subscriber has acknowledged the end and every subscriber
    /// still counted has (subscribers acknowledge on the side channel, so a publisher
    /// without one always repeats its end markers for the whole linger).
    pub(crate) fn all_acknowledged(&self) -> bool {
        self.has_side && self.peers.all_acknowledged(true)
    }

    fn subscribers_changed(&self) {
        let n = self.subscribers();
        self.live.state.update(|w| w.subscribers = n);
    }

    fn answer_snapshot(&mut self, out: &mut dyn Outlet, routing_id: &[u8]) -> Result<()> {
        if !self.has_side {
            return Ok(());
        }
        // The snapshot must not claim sequences still in an open batch: send those first.
        self.flush_all(out)?;
        self.control.start(Kind::Snapshot);
        for t in &self.topics {
            self.control.push_last(&t.name, t.seq, &t.last_value);
        }
        out.side(&[routing_id, self.control.as_bytes()])
    }

    /// Handles a message from the XPUB: `1 + prefix` subscribes, `0 + prefix` leaves.
    pub(crate) fn on_subscription(
        &mut self,
        out: &mut dyn Outlet,
        frame: &[u8],
        key: Option<&str>,
        now: u64,
    ) -> Result<()> {
        let Some(sub) = Subscription::parse(frame) else { return Ok(()) };
        let (subscribes, prefix) = (matches!(sub, Subscription::Subscribe(_)), sub.prefix());
        if self.single_frame && self.groups.iter().any(|g| g.name == prefix) {
            if subscribes {
                self.group_subscriptions += 1;
            } else {
                self.group_subscriptions = self.group_subscriptions.saturating_sub(1);
            }
            self.subscribers_changed();
        }
        if let Some(id) = prefix.strip_prefix(wire::HELLO_PREFIX) {
            if subscribes {
                if let Some((rid, true)) = self.peers.subscribed(id, key, now) {
                    self.answer_snapshot(out, &rid)?;
                }
            } else if self.peers.unsubscribed(id, now) {
                self.report.departures += 1;
                tracing::info!(subscribers = self.subscribers(), "a fan-out subscriber left");
            }
            self.subscribers_changed();
        }
        Ok(())
    }

    /// Handles a request on the side channel at `now`: `[routing id][verb][hello id]`
    /// (`HELLO`, `SNAPSHOT`, `DONE`), `[routing id][NAK][hello id][nak body]` or
    /// `[routing id][CLOCK][hello id][t1]`. Only the connection a hello is bound to speaks
    /// for it (see [`Peers`]).
    pub(crate) fn on_side_request(
        &mut self,
        out: &mut dyn Outlet,
        frames: &[&[u8]],
        key: Option<&str>,
        now: u64,
    ) -> Result<()> {
        let bad = |reason: String| Error::Decode { context: "fan-out side channel (ROUTER)".into(), reason };
        let (rid, verb, hello, rest) = match *frames {
            [rid, verb, hello] => (rid, verb, hello, None),
            [rid, verb, hello, body] if verb == wire::NAK_REQUEST || verb == wire::CLOCK_REQUEST => {
                (rid, verb, hello, Some(body))
            }
            _ => {
                return Err(bad(format!(
                    "{} frames; a request has 3 (routing id, verb, hello id), a NAK 4",
                    frames.len()
                )))
            }
        };
        let refused = |why: &str| bad(format!("{} refused: {why}", String::from_utf8_lossy(verb)));
        match (verb, rest) {
            (wire::HELLO_REQUEST | wire::SNAPSHOT_REQUEST, _) => {
                let wants = verb == wire::SNAPSHOT_REQUEST;
                let intro = self.peers.introduce(rid, hello, key, wants, now);
                self.subscribers_changed();
                match intro {
                    Intro::Bound if wants => self.answer_snapshot(out, rid),
                    // Its subscription has not reached us yet: a snapshot now could miss
                    // updates; it is answered when the subscription arrives.
                    Intro::Bound | Intro::Waiting => Ok(()),
                    Intro::Refused(why) => Err(refused(why)),
                }
            }
            // Only the subscriber itself can acknowledge: a stray peer must not end the end
            // markers' repetition early.
            (wire::DONE_ACK, _) if self.peers.ack(rid, hello, key, now) => Ok(()),
            (wire::DONE_ACK, _) => Err(refused("from a connection that does not speak for that hello")),
            (wire::NAK_REQUEST, Some(body)) if self.peers.speaks_for(rid, hello, key) => {
                self.on_nak(out, rid, body)
            }
            (wire::NAK_REQUEST, _) => Err(refused("from a connection that does not speak for that hello")),
            (wire::CLOCK_REQUEST, Some(t1)) if self.peers.speaks_for(rid, hello, key) => {
                let t1 = <[u8; 8]>::try_from(t1).map_err(|_| refused("a time of other than 8 bytes"))?;
                let clock =
                    wire::Clock { t1: u64::from_le_bytes(t1), t2: out.now_ns(), clock_id: &self.clock_id };
                wire::encode_clock(self.epoch, &clock, &mut self.clock_buf);
                out.side(&[rid, &self.clock_buf])
            }
            (wire::CLOCK_REQUEST, _) => Err(refused("from a connection that does not speak for that hello")),
            (other, _) => Err(bad(format!("unknown request {:?}", String::from_utf8_lossy(other)))),
        }
    }

    /// Queues the ranges a subscriber asked for. Ranges of another epoch (a predecessor's)
    /// are answered gone in that epoch; a request past the queue's caps is dropped, and the
    /// subscriber asks again.
    fn on_nak(&mut self, out: &mut dyn Outlet, rid: &[u8], body: &[u8]) -> Result<()> {
        self.report.naks += 1;
        let d = wire::decode(body)?;
        if d.kind != Kind::Nak {
            return Err(Error::Decode {
                context: "fan-out side channel (ROUTER)".into(),
                reason: format!("a NAK carrying a {:?} body", d.kind),
            });
        }
        let ours = d.epoch == self.epoch;
        let peer_jobs = self.jobs.iter().filter(|j| j.routing_id == rid).count();
        if ours
            && self.ring.is_some()
            && (self.jobs.len() >= MAX_REPAIR_JOBS || peer_jobs >= MAX_JOBS_PER_PEER)
        {
            self.report.naks_dropped += 1;
            return Ok(());
        }
        self.gone.start_in(Kind::Gone, d.epoch);
        let mut added = 0;
        for r in d.ranges() {
            let r = r?;
            if !ours {
                // Not ours to clip: everything asked for in that epoch is gone.
                self.gone.push_range(r.topic, r.first, r.last);
                continue;
            }
            let Some(&k) = self.index.get(r.topic) else { continue };
            // Never beyond what was published: a peer's range is not believed.
            let last = r.last.min(self.topics[k].seq);
            if r.first > last {
                continue;
            }
            if self.ring.is_none() {
                self.gone.push_range(r.topic, r.first, last);
                self.report.gone = self.report.gone.saturating_add(last - r.first + 1);
                continue;
            }
            // A request again for what is queued already only widens that job.
            if let Some(j) = self
                .jobs
                .iter_mut()
                .find(|j| j.routing_id == rid && j.topic == k && r.first <= j.last + 1 && j.next <= last + 1)
            {
                j.next = j.next.min(r.first);
                j.last = j.last.max(last);
                continue;
            }
            if peer_jobs + added >= MAX_JOBS_PER_PEER || self.jobs.len() >= MAX_REPAIR_JOBS {
                self.report.naks_dropped += 1;
                break;
            }
            self.jobs.push_back(Job { routing_id: rid.to_vec(), topic: k, next: r.first, last });
            added += 1;
        }
        if !self.gone.is_empty() {
            out.side(&[rid, self.gone.as_bytes()])?;
        }
        Ok(())
    }

    /// Serves queued repairs, at most [`REPAIR_TICKS_PER_PASS`] ticks per call: the ticks
    /// the ring still holds as repair messages, the rest as gone. Returns the ticks served.
    pub(crate) fn serve_repairs(&mut self, out: &mut dyn Outlet) -> Result<usize> {
        let mut served = 0;
        while served < REPAIR_TICKS_PER_PASS {
            let Some(job) = self.jobs.front_mut() else { break };
            let Some(ring) = self.ring.as_ref() else {
                self.jobs.clear();
                break;
            };
            let name = &self.topics[job.topic].name;
            // What the ring dropped already is gone.
            let oldest = ring.oldest(job.topic).unwrap_or(u64::MAX);
            if job.next < oldest {
                let hi = job.last.min(oldest.saturating_sub(1));
                self.gone.start(Kind::Gone);
                self.gone.push_range(name, job.next, hi);
                self.report.gone = self.report.gone.saturating_add(hi - job.next + 1);
                out.side(&[&job.routing_id, self.gone.as_bytes()])?;
                served += 1;
                job.next = hi + 1;
            } else {
                self.repair.start(Kind::Repair);
                while job.next <= job.last
                    && usize::from(self.repair.count()) < REPAIR_TICKS_PER_MESSAGE
                    && self.repair.len() < REPAIR_BYTES_PER_MESSAGE
                {
                    let Some(t) = ring.get(job.topic, job.next) else { break };
                    self.repair.push_sent(name, t.seq, t.sent_ns, t.intended_ns, t.payload);
                    job.next += 1;
                }
                let n = usize::from(self.repair.count());
                if n > 0 {
                    out.side(&[&job.routing_id, self.repair.as_bytes()])?;
                    self.report.retransmitted += n as u64;
                    served += n;
                } else {
                    // Not in the ring (evicted meanwhile): the rest is gone.
                    job.next = job.next.min(job.last + 1);
                    self.gone.start(Kind::Gone);
                    self.gone.push_range(name, job.next, job.last);
                    self.report.gone = self.report.gone.saturating_add(job.last - job.next + 1);
                    out.side(&[&job.routing_id, self.gone.as_bytes()])?;
                    served += 1;
                    job.next = job.last + 1;
                }
            }
            // Round robin: one message per job, then the next subscriber's.
            let job = self.jobs.pop_front();
            if let Some(job) = job.filter(|j| j.next <= j.last) {
                self.jobs.push_back(job);
            }
        }
        Ok(served)
    }

    /// The final report: the counts so far, each topic's last sequence and the acks.
    pub(crate) fn take_report(&mut self) -> PublisherReport {
        let mut r = std::mem::take(&mut self.report);
        r.last_seq =
            self.topics.iter().map(|t| (String::from_utf8_lossy(&t.name).into_owned(), t.seq)).collect();
        r.elapsed_ns = self.first_ns.map_or(0, |f| self.last_ns.saturating_sub(f));
        r.rate_per_s = if r.elapsed_ns > 0 { r.published as f64 * 1e9 / r.elapsed_ns as f64 } else { 0.0 };
        r.acks = self.peers.acks();
        r.peers_evicted = self.peers.evicted;
        r.ring_evicted = self.ring.as_ref().map_or(0, Ring::evicted);
        r.ring_held = self.ring.as_ref().map_or(0, |r| r.held() as u64);
        r
    }

    /// Publishes the count of ticks published for watching threads.
    pub(crate) fn publish_live(&self) {
        self.live.published.store(self.report.published, Ordering::Relaxed);
    }
}

/// What the fuzz target checks after every step.
#[cfg(fuzzing)]
impl Stream {
    /// Everything a peer can make this hold, as (what, length now, cap).
    pub(crate) fn holdings(&self) -> Vec<(&'static str, usize, usize)> {
        let mut per_peer: HashMap<&[u8], usize> = HashMap::new();
        for j in &self.jobs {
            *per_peer.entry(&j.routing_id).or_default() += 1;
        }
        let most = per_peer.values().copied().max().unwrap_or(0);
        let beyond = self.jobs.iter().filter(|j| j.next == 0 || j.last > self.topics[j.topic].seq).count();
        let mut h = vec![
            ("repair jobs", self.jobs.len(), MAX_REPAIR_JOBS),
            ("repair jobs of one subscriber", most, MAX_JOBS_PER_PEER),
            ("repair jobs from 0 or past what was published", beyond, 0),
        ];
        h.extend(self.peers.holdings());
        h
    }
}

/// Sends `body` under `group`: two frames, or one `group 0x00 body` frame for conflating
/// subscribers (built in the reusable `single`).
fn send_body(
    out: &mut dyn Outlet,
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
        out.feed(&[single])
    } else {
        out.feed(&[group, body])
    }
}

/// What a stream sent, and the clock it stamps with: the [`Outlet`] of the unit tests and
/// the fuzz targets (`fuzz_hooks`).
#[cfg(any(test, fuzzing))]
#[derive(Debug, Default)]
// Public to the fuzz targets (through `fuzz_hooks`); the unit tests see it in the crate.
#[cfg_attr(not(fuzzing), allow(unreachable_pub))]
pub struct Sent {
    /// Messages on the feed (the XPUB), frame by frame.
    pub feed: Vec<Vec<Vec<u8>>>,
    /// Messages on the side channel (the ROUTER), routing id first.
    pub side: Vec<Vec<Vec<u8>>>,
    /// What `now_ns` answers.
    pub now_ns: u64,
}

#[cfg(any(test, fuzzing))]
impl Outlet for Sent {
    fn feed(&mut self, parts: &[&[u8]]) -> Result<()> {
        self.feed.push(parts.iter().map(|p| p.to_vec()).collect());
        Ok(())
    }

    fn side(&mut self, parts: &[&[u8]]) -> Result<()> {
        self.side.push(parts.iter().map(|p| p.to_vec()).collect());
        Ok(())
    }

    fn now_ns(&self) -> u64 {
        self.now_ns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(id: &[u8], on: bool) -> Vec<u8> {
        let mut f = vec![u8::from(on)];
        f.extend_from_slice(wire::HELLO_PREFIX);
        f.extend_from_slice(id);
        f
    }

    fn stream(cfg: PublisherConfig) -> Stream {
        Stream::new(&cfg, true, Arc::default())
    }

    #[test]
    fn batches_leave_when_full_and_control_flushes_first() {
        let cfg =
            PublisherConfig { topics: vec!["a".into(), "b".into()], max_batch: 3, ..Default::default() };
        let mut s = stream(cfg);
        let mut out = Sent { now_ns: 77, ..Default::default() };
        s.push(&mut out, 0, 1, b"x", 10).unwrap();
        s.push(&mut out, 1, 2, b"y", 11).unwrap();
        assert!(out.feed.is_empty(), "batch still open");
        s.push(&mut out, 0, 3, b"z", 12).unwrap();
        assert_eq!(out.feed.len(), 1, "full batch sent");
        let d = wire::decode(&out.feed[0][1]).unwrap();
        let seqs: Vec<_> = d.records().map(|r| r.unwrap()).map(|t| (t.topic, t.seq, t.sent_ns)).collect();
        assert_eq!(seqs, vec![(&b"a"[..], 1, 77), (&b"b"[..], 1, 77), (&b"a"[..], 2, 77)]);
        s.push(&mut out, 1, 4, b"w", 13).unwrap();
        s.send_control(&mut out, Kind::Heartbeat).unwrap();
        assert_eq!(out.feed.len(), 3, "the open batch, then the heartbeat");
        let hb = wire::decode(&out.feed[2][1]).unwrap();
        assert_eq!(hb.kind, Kind::Heartbeat);
        let last: Vec<_> = hb.records().map(|r| r.unwrap()).map(|t| (t.topic, t.seq)).collect();
        assert_eq!(last, vec![(&b"a"[..], 2), (&b"b"[..], 2)]);
        let r = s.take_report();
        assert_eq!((r.published, r.batches, r.elapsed_ns), (4, 2, 3));
    }

    #[test]
    fn the_coalescing_window_is_kept_on_the_callers_clock() {
        let cfg = PublisherConfig { max_delay: Duration::from_nanos(100), ..Default::default() };
        let mut s = stream(cfg);
        let mut out = Sent::default();
        s.push(&mut out, 0, 0, b"x", 1_000).unwrap();
        assert_eq!(s.flush_due(&mut out, 1_050).unwrap(), Some(1_100));
        assert!(out.feed.is_empty());
        assert_eq!(s.flush_due(&mut out, 1_100).unwrap(), None);
        assert_eq!(out.feed.len(), 1);
    }

    /// A subscriber that subscribed with hello `id` and introduced itself from `rid`.
    fn join(s: &mut Stream, out: &mut Sent, rid: &[u8], id: &[u8]) {
        s.on_subscription(out, &hello(id, true), None, 0).unwrap();
        s.on_side_request(out, &[rid, wire::HELLO_REQUEST, id], None, 0).unwrap();
    }

    #[test]
    fn snapshots_wait_for_the_askers_subscription_and_acks_need_the_bound_connection() {
        let mut s = stream(PublisherConfig::default());
        let mut out = Sent::default();
        s.push(&mut out, 0, 0, b"v1", 1).unwrap();
        s.on_side_request(&mut out, &[b"rid", wire::SNAPSHOT_REQUEST, b"h1"], None, 0).unwrap();
        assert!(out.side.is_empty(), "deferred until its hello arrives");
        assert_eq!(s.subscribers(), 0);
        s.on_subscription(&mut out, &hello(b"h1", true), None, 1).unwrap();
        assert_eq!(s.subscribers(), 1, "subscribed and introduced");
        assert_eq!(out.feed.len(), 1, "the open batch went before the snapshot");
        assert_eq!(out.side.len(), 1);
        let snap = wire::decode(&out.side[0][1]).unwrap();
        assert_eq!((snap.kind, snap.epoch), (Kind::Snapshot, s.epoch()));
        let t0 = snap.records().next().unwrap().unwrap();
        assert_eq!((t0.seq, t0.payload), (1, &b"v1"[..]));

        assert!(s.on_side_request(&mut out, &[b"rid", wire::DONE_ACK, b"stranger"], None, 2).is_err());
        assert!(
            s.on_side_request(&mut out, &[b"r2", wire::DONE_ACK, b"unknown"], None, 2).is_err(),
            "a hello nobody subscribed with"
        );
        assert!(!s.all_acknowledged());
        s.on_side_request(&mut out, &[b"rid", wire::DONE_ACK, b"h1"], None, 2).unwrap();
        assert!(s.all_acknowledged());
        // It may leave after acknowledging; a newcomer that has not acknowledged holds it.
        s.on_subscription(&mut out, &hello(b"h1", false), None, 3).unwrap();
        assert!(s.all_acknowledged());
        join(&mut s, &mut out, b"r2", b"h2");
        assert!(!s.all_acknowledged());
        assert!(s.on_side_request(&mut out, &[b"only two", b"frames"], None, 4).is_err());
        assert_eq!(s.take_report().departures, 1, "h1 left");
    }

    #[test]
    fn an_acknowledgement_that_arrives_after_its_subscribers_goodbye_ends_the_linger() {
        // The subscriber acknowledges on its DEALER, then closes its SUB: the two travel on
        // different connections, and the XPUB's unsubscription can be handled first.
        let mut s = stream(PublisherConfig::default());
        let mut out = Sent::default();
        join(&mut s, &mut out, b"r1", b"h1");
        s.on_subscription(&mut out, &hello(b"h1", false), None, 1).unwrap();
        assert_eq!(s.subscribers(), 0);
        s.on_side_request(&mut out, &[b"r1", wire::DONE_ACK, b"h1"], None, 2).unwrap();
        assert!(s.all_acknowledged(), "the end markers need not repeat for the whole linger");
        let r = s.take_report();
        assert_eq!((r.acks, r.departures), (1, 1));
    }

    #[test]
    fn bare_hello_subscriptions_do_not_count_as_subscribers() {
        // One rogue SUB subscribing to three hello prefixes is not three subscribers.
        let mut s = stream(PublisherConfig::default());
        let mut out = Sent::default();
        for id in [&b"x1"[..], b"x2", b"x3"] {
            s.on_subscription(&mut out, &hello(id, true), None, 0).unwrap();
        }
        assert_eq!(s.subscribers(), 0);
        // Nor is one side-channel connection speaking for all three.
        s.on_side_request(&mut out, &[b"r", wire::HELLO_REQUEST, b"x1"], None, 0).unwrap();
        assert!(s.on_side_request(&mut out, &[b"r", wire::HELLO_REQUEST, b"x2"], None, 0).is_err());
        assert_eq!(s.subscribers(), 1);
        // Without a side channel there is nobody to ask: every hello counts.
        let mut bare = Stream::new(&PublisherConfig::default(), false, Arc::default());
        bare.on_subscription(&mut out, &hello(b"x1", true), None, 0).unwrap();
        assert_eq!(bare.subscribers(), 1);
    }

    fn nak(epoch: u64, ranges: &[(&[u8], u64, u64)]) -> Vec<u8> {
        let mut w = BodyWriter::new(Kind::Nak, epoch);
        for (t, a, b) in ranges {
            w.push_range(t, *a, *b);
        }
        w.as_bytes().to_vec()
    }

    #[test]
    fn repairs_come_from_the_ring_and_what_it_dropped_is_gone() {
        // A ring of about 40 ticks of 8 B: the oldest of 100 are evicted.
        let cfg = PublisherConfig {
            topics: vec!["a".into()],
            max_batch: 1,
            retransmit_ring_bytes: 40 * (28 + 8),
            ..Default::default()
        };
        let mut s = stream(cfg);
        let mut out = Sent { now_ns: 5, ..Default::default() };
        for i in 1..=100u64 {
            s.push(&mut out, 0, i, &i.to_le_bytes(), i).unwrap();
        }
        join(&mut s, &mut out, b"rid", b"h");
        let epoch = s.epoch();
        let req = |s: &mut Stream, out: &mut Sent, rid: &[u8], body: Vec<u8>| {
            s.on_side_request(out, &[rid, wire::NAK_REQUEST, b"h", &body], None, 1)
        };
        assert!(
            s.on_side_request(
                &mut out,
                &[b"rogue", wire::NAK_REQUEST, b"unknown", &nak(epoch, &[(b"a", 1, 9)])],
                None,
                1
            )
            .is_err(),
            "a hello nobody subscribed with"
        );
        req(&mut s, &mut out, b"rid", nak(epoch, &[(b"a", 1, 100)])).unwrap();
        req(&mut s, &mut out, b"rid", nak(epoch, &[(b"a", 50, 100)])).unwrap(); // asked again: merged
        while s.serve_repairs(&mut out).unwrap() > 0 {}
        let (mut repaired, mut gone) = (Vec::new(), Vec::new());
        for m in &out.side {
            let d = wire::decode(&m[1]).unwrap();
            assert_eq!((&m[0][..], d.epoch), (&b"rid"[..], epoch));
            match d.kind {
                Kind::Repair => repaired.extend(d.records().map(|r| r.unwrap().seq)),
                Kind::Gone => gone.extend(d.ranges().map(|r| r.unwrap()).map(|r| (r.first, r.last))),
                k => panic!("{k:?}"),
            }
        }
        let first = *repaired.first().unwrap();
        assert!(first > 1 && repaired.len() >= 30, "the newest are held: {repaired:?}");
        assert_eq!(repaired, (first..=100).collect::<Vec<_>>(), "in order, each once");
        assert_eq!(gone, vec![(1, first - 1)], "exactly what was evicted");
        // A range past what was published is not believed; another epoch's is all gone, in
        // that epoch, as asked.
        out.side.clear();
        req(&mut s, &mut out, b"rid", nak(epoch ^ 1, &[(b"a", 99, 500)])).unwrap();
        let d = wire::decode(&out.side[0][1]).unwrap();
        let r = d.ranges().next().unwrap().unwrap();
        assert_eq!((d.kind, d.epoch, r.first, r.last), (Kind::Gone, epoch ^ 1, 99, 500));
        let report = s.take_report();
        assert_eq!((report.naks, report.retransmitted, report.gone), (3, repaired.len() as u64, first - 1));
    }

    #[test]
    fn the_repair_queue_is_bounded_per_subscriber_and_served_in_turn() {
        let cfg =
            PublisherConfig { topics: vec!["a".into(), "b".into()], max_batch: 1, ..Default::default() };
        let mut s = stream(cfg);
        let mut out = Sent::default();
        for i in 0..2_000u64 {
            s.push(&mut out, (i % 2) as usize, i, b"p", i).unwrap();
        }
        join(&mut s, &mut out, b"r1", b"h1");
        join(&mut s, &mut out, b"r2", b"h2");
        let epoch = s.epoch();
        // Subscriber 1 asks for a thousand single ticks in 16 requests; 2 for one range.
        for m in 0..16u64 {
            let ranges: Vec<(&[u8], u64, u64)> =
                (0..64).map(|i| (&b"a"[..], 2 * (64 * m + i) + 1, 2 * (64 * m + i) + 1)).collect();
            s.on_side_request(&mut out, &[b"r1", wire::NAK_REQUEST, b"h1", &nak(epoch, &ranges)], None, 1)
                .unwrap();
        }
        s.on_side_request(
            &mut out,
            &[b"r2", wire::NAK_REQUEST, b"h2", &nak(epoch, &[(b"b", 1, 1_000)])],
            None,
            1,
        )
        .unwrap();
        assert!(s.jobs.iter().filter(|j| j.routing_id == b"r1").count() <= MAX_JOBS_PER_PEER);
        assert!(s.report.naks_dropped > 0, "the rest of subscriber 1's requests were dropped");
        out.side.clear();
        s.serve_repairs(&mut out).unwrap();
        assert!(out.side.iter().any(|m| m[0] == b"r2"), "subscriber 2 is served in the first pass");
    }

    /// Found by the fuzz target `fanout_publisher_side`: the total cap was checked only
    /// before a request, so one request could take the queue up to 63 jobs past it.
    #[test]
    fn the_repair_queue_never_passes_its_total_cap() {
        let cfg = PublisherConfig { topics: vec!["a".into()], max_batch: 1, ..Default::default() };
        let mut s = stream(cfg);
        let mut out = Sent::default();
        for i in 0..200u64 {
            s.push(&mut out, 0, i, b"p", i).unwrap();
        }
        let epoch = s.epoch();
        let singles: Vec<(&[u8], u64, u64)> = (0..64).map(|i| (&b"a"[..], 2 * i + 1, 2 * i + 1)).collect();
        // 63 subscribers fill 64 jobs each and one 63: the queue is one short of its cap.
        for p in 0..=MAX_REPAIR_JOBS / MAX_JOBS_PER_PEER {
            let (rid, id) = (format!("r{p}"), format!("h{p}"));
            join(&mut s, &mut out, rid.as_bytes(), id.as_bytes());
            let n = if p == MAX_REPAIR_JOBS / MAX_JOBS_PER_PEER - 1 { 63 } else { 64 };
            let req = [rid.as_bytes(), wire::NAK_REQUEST, id.as_bytes(), &nak(epoch, &singles[..n])];
            s.on_side_request(&mut out, &req, None, 1).unwrap();
            assert!(s.jobs.len() <= MAX_REPAIR_JOBS, "{} jobs after subscriber {p}", s.jobs.len());
        }
        assert_eq!(s.jobs.len(), MAX_REPAIR_JOBS);
        assert!(s.report.naks_dropped > 0, "the last request was cut short, and counted");
    }

    #[test]
    fn a_publisher_without_a_ring_answers_gone() {
        let cfg = PublisherConfig { retransmit_ring_bytes: 0, max_batch: 1, ..Default::default() };
        let mut s = stream(cfg);
        let mut out = Sent::default();
        s.push(&mut out, 0, 1, b"x", 1).unwrap();
        join(&mut s, &mut out, b"r", b"h");
        s.on_side_request(
            &mut out,
            &[b"r", wire::NAK_REQUEST, b"h", &nak(s.epoch(), &[(b"t0", 1, 1)])],
            None,
            1,
        )
        .unwrap();
        assert_eq!(wire::decode(&out.side[0][1]).unwrap().kind, Kind::Gone);
        assert_eq!(s.serve_repairs(&mut out).unwrap(), 0);
    }
}
