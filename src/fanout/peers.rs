//! The publisher's view of its subscribers, and who may speak for them: pure bookkeeping,
//! bounded in count and bytes, with the time as a parameter.
//!
//! A subscriber announces itself twice: its SUB subscribes to a hello prefix that carries
//! a random 128-bit id (only the publisher's XPUB sees subscriptions), and its side-channel
//! DEALER sends the same id (`HELLO`, `SNAPSHOT`). The id is a secret of the two: a peer
//! that can say it on the side channel is the one that subscribed with it. Once both have
//! arrived the hello is *bound* to that side-channel connection (its routing id), one hello
//! per connection; end acknowledgements and repair requests count only from the bound
//! connection. A connection that says the id later (a side channel reconnected, with a new
//! routing id) takes the binding over: saying the id is the proof. With a side channel, only bound hellos count as subscribers, so a rogue SUB
//! subscribing to hello prefixes alone cannot fill `wait_subscribers`. (Without
//! authentication a peer can still open one connection per fake subscriber: CURVE and a ZAP
//! allow-list decide who may connect at all.)

use std::collections::{HashMap, HashSet, VecDeque};

/// Most hellos (subscribers) a publisher keeps; more are refused.
pub(crate) const MAX_HELLOS: usize = 4096;
/// Most side-channel introductions waiting for their subscription to arrive.
const MAX_INTROS: usize = 1024;
/// How long an introduction may wait for its subscription, in ns.
const INTRO_TTL_NS: u64 = 10_000_000_000;
/// Longest hello id or routing id kept, in bytes (ZMTP routing ids are at most 255).
pub(crate) const MAX_ID_BYTES: usize = 256;

/// What an introduction on the side channel led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Intro {
    /// The hello is bound to this connection (now, or already).
    Bound,
    /// Its subscription has not arrived: it waits (at most [`INTRO_TTL_NS`]).
    Waiting,
    /// Refused: the hello is bound to another connection, the connection to another hello,
    /// an id is too long, or too many introductions wait.
    Refused(&'static str),
}

/// A side-channel introduction waiting for its subscription.
#[derive(Debug, Clone)]
struct Pending {
    rid: Vec<u8>,
    id: Vec<u8>,
    at: u64,
    wants_snapshot: bool,
}

/// The publisher's subscribers.
#[derive(Debug, Default)]
pub(crate) struct Peers {
    /// Hellos seen on the XPUB, each with the connection bound to it once introduced.
    hellos: HashMap<Vec<u8>, Option<Vec<u8>>>,
    /// Connections bound to a hello.
    bound: HashSet<Vec<u8>>,
    waiting: VecDeque<Pending>,
    /// Hellos that acknowledged the end (kept after they leave, at most [`MAX_HELLOS`]).
    acked: HashSet<Vec<u8>>,
    /// Peer state refused or dropped at a cap, or expired: counted, traced.
    pub(crate) evicted: u64,
}

impl Peers {
    /// Subscribers: bound hellos when `verified` (a side channel exists), else every hello.
    pub(crate) fn count(&self, verified: bool) -> usize {
        if verified {
            self.hellos.values().filter(|r| r.is_some()).count()
        } else {
            self.hellos.len()
        }
    }

    fn evict(&mut self, what: &'static str) {
        self.evicted += 1;
        if self.evicted <= 10 || self.evicted % 1000 == 0 {
            tracing::warn!(evicted = self.evicted, "fan-out publisher: {what}");
        }
    }

    /// A hello subscription arrived at `now`. Returns the connection it was just bound to
    /// and whether that connection asked for a snapshot meanwhile.
    pub(crate) fn subscribed(&mut self, id: &[u8], now: u64) -> Option<(Vec<u8>, bool)> {
        self.expire(now);
        if id.len() > MAX_ID_BYTES || (!self.hellos.contains_key(id) && self.hellos.len() >= MAX_HELLOS) {
            self.evict("hello refused (too long, or too many subscribers)");
            return None;
        }
        self.hellos.entry(id.to_vec()).or_insert(None);
        let i = self.waiting.iter().position(|p| p.id == id)?;
        let p = self.waiting.remove(i)?;
        match self.bind(&p.rid, id) {
            Intro::Bound => Some((p.rid, p.wants_snapshot)),
            _ => None,
        }
    }

    /// A hello subscription was withdrawn (the subscriber closed, crashed, or its
    /// connection died); true if it was a subscriber.
    pub(crate) fn unsubscribed(&mut self, id: &[u8]) -> bool {
        match self.hellos.remove(id) {
            Some(rid) => {
                if let Some(rid) = rid {
                    self.bound.remove(&rid);
                }
                true
            }
            None => false,
        }
    }

    fn bind(&mut self, rid: &[u8], id: &[u8]) -> Intro {
        let Some(slot) = self.hellos.get_mut(id) else { return Intro::Waiting };
        match slot {
            Some(r) if r == rid => Intro::Bound,
            _ if self.bound.contains(rid) => Intro::Refused("the connection speaks for another hello"),
            _ => {
                // Bound anew, or moved from a side-channel connection that reconnected.
                if let Some(old) = slot.replace(rid.to_vec()) {
                    self.bound.remove(&old);
                }
                self.bound.insert(rid.to_vec());
                Intro::Bound
            }
        }
    }

    /// A subscriber introduced itself on the side channel (`HELLO`, or a `SNAPSHOT`
    /// request when `wants_snapshot`) from connection `rid` at `now`.
    pub(crate) fn introduce(&mut self, rid: &[u8], id: &[u8], wants_snapshot: bool, now: u64) -> Intro {
        self.expire(now);
        if rid.len() > MAX_ID_BYTES || id.len() > MAX_ID_BYTES {
            self.evict("introduction refused: an id longer than 256 bytes");
            return Intro::Refused("an id longer than 256 bytes");
        }
        match self.bind(rid, id) {
            Intro::Waiting => {}
            other => return other,
        }
        if let Some(p) = self.waiting.iter_mut().find(|p| p.id == id && p.rid == rid) {
            p.wants_snapshot |= wants_snapshot;
            return Intro::Waiting;
        }
        if self.waiting.len() >= MAX_INTROS {
            self.waiting.pop_front();
            self.evict("oldest waiting introduction dropped (too many)");
        }
        self.waiting.push_back(Pending { rid: rid.to_vec(), id: id.to_vec(), at: now, wants_snapshot });
        Intro::Waiting
    }

    /// Drops introductions that waited longer than [`INTRO_TTL_NS`].
    fn expire(&mut self, now: u64) {
        while self.waiting.front().is_some_and(|p| now.saturating_sub(p.at) > INTRO_TTL_NS) {
            self.waiting.pop_front();
            self.evict("introduction expired: its subscription never arrived");
        }
    }

    /// Whether connection `rid` speaks for hello `id` (binding it, when the hello is
    /// known: a request carrying the id introduces its connection too).
    pub(crate) fn speaks_for(&mut self, rid: &[u8], id: &[u8]) -> bool {
        rid.len() <= MAX_ID_BYTES && self.bind(rid, id) == Intro::Bound
    }

    /// Takes an end acknowledgement; false when `rid` does not speak for `id`.
    pub(crate) fn ack(&mut self, rid: &[u8], id: &[u8]) -> bool {
        if !self.speaks_for(rid, id) {
            return false;
        }
        if self.acked.len() < MAX_HELLOS || self.acked.contains(id) {
            self.acked.insert(id.to_vec());
        }
        true
    }

    /// Subscribers that acknowledged the end.
    pub(crate) fn acks(&self) -> usize {
        self.acked.len()
    }

    /// True once at least one subscriber has acknowledged the end and every subscriber
    /// still counted has.
    pub(crate) fn all_acknowledged(&self, verified: bool) -> bool {
        !self.acked.is_empty()
            && self
                .hellos
                .iter()
                .filter(|(_, r)| !verified || r.is_some())
                .all(|(id, _)| self.acked.contains(id))
    }
}

/// What the fuzz target checks after every step.
#[cfg(fuzzing)]
impl Peers {
    /// Everything a peer can make this hold, as (what, length now, cap).
    pub(crate) fn holdings(&self) -> [(&'static str, usize, usize); 5] {
        let ids = self.hellos.iter().flat_map(|(id, rid)| [Some(id), rid.as_ref()]).flatten();
        let ids = ids.chain(self.waiting.iter().flat_map(|p| [&p.rid, &p.id])).chain(&self.acked);
        [
            ("hellos", self.hellos.len(), MAX_HELLOS),
            ("bound connections", self.bound.len(), MAX_HELLOS),
            ("introductions waiting", self.waiting.len(), MAX_INTROS),
            ("acknowledged hellos", self.acked.len(), MAX_HELLOS),
            ("longest id kept, in bytes", ids.map(Vec::len).max().unwrap_or(0), MAX_ID_BYTES),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hello_counts_once_its_subscription_and_its_introduction_meet() {
        let mut p = Peers::default();
        assert_eq!(p.introduce(b"r1", b"h1", true, 0), Intro::Waiting, "before the subscription");
        assert_eq!(p.count(true), 0);
        assert_eq!(p.subscribed(b"h1", 1), Some((b"r1".to_vec(), true)), "bound; it asked for a snapshot");
        assert_eq!((p.count(true), p.count(false)), (1, 1));
        // The other order.
        assert_eq!(p.subscribed(b"h2", 2), None);
        assert_eq!((p.count(true), p.count(false)), (1, 2), "a bare subscription is not a subscriber");
        assert_eq!(p.introduce(b"r2", b"h2", false, 3), Intro::Bound);
        assert_eq!(p.count(true), 2);
        assert!(p.unsubscribed(b"h1") && !p.unsubscribed(b"h1"));
        assert_eq!(p.count(true), 1);
    }

    #[test]
    fn only_the_bound_connection_speaks_for_a_hello() {
        let mut p = Peers::default();
        p.subscribed(b"h1", 0);
        p.subscribed(b"h2", 0);
        assert_eq!(p.introduce(b"r1", b"h1", false, 0), Intro::Bound);
        assert!(matches!(p.introduce(b"r1", b"h2", false, 0), Intro::Refused(_)), "one hello per connection");
        assert!(!p.ack(b"stranger", b"h9") && !p.all_acknowledged(true), "an unknown hello");
        assert!(p.ack(b"r1", b"h1"));
        assert!(p.all_acknowledged(true), "h2 never introduced itself: it is not counted");
        assert!(!p.all_acknowledged(false), "without a side channel every hello counts");
    }

    #[test]
    fn a_reconnected_side_channel_takes_its_hello_over() {
        let mut p = Peers::default();
        p.subscribed(b"h1", 0);
        assert_eq!(p.introduce(b"old", b"h1", false, 0), Intro::Bound);
        assert!(p.speaks_for(b"new", b"h1"), "it says the id: it is the subscriber");
        assert_eq!(p.count(true), 1, "still one subscriber");
        // The old routing id is free again; the new one speaks for h1 only.
        p.subscribed(b"h2", 0);
        assert!(matches!(p.introduce(b"new", b"h2", false, 0), Intro::Refused(_)));
    }

    #[test]
    fn introductions_are_bounded_and_expire() {
        let mut p = Peers::default();
        for i in 0..(MAX_INTROS + 10) {
            p.introduce(format!("r{i}").as_bytes(), format!("h{i}").as_bytes(), true, 0);
        }
        assert_eq!(p.waiting.len(), MAX_INTROS);
        assert_eq!(p.evicted, 10);
        assert_eq!(p.subscribed(b"h0", 1), None, "the oldest was dropped");
        assert!(p.subscribed(format!("h{}", MAX_INTROS + 9).as_bytes(), 1).is_some());
        p.subscribed(b"late", INTRO_TTL_NS + 10);
        assert!(p.waiting.is_empty(), "expired");
        assert!(matches!(p.introduce(&[0; 300], b"h", false, 0), Intro::Refused(_)));
    }

    #[test]
    fn hellos_are_capped() {
        let mut p = Peers::default();
        for i in 0..(MAX_HELLOS + 5) {
            p.subscribed(format!("h{i}").as_bytes(), 0);
        }
        assert_eq!(p.count(false), MAX_HELLOS);
        assert_eq!(p.evicted, 5);
        p.subscribed(&[b'x'; MAX_ID_BYTES + 1], 0);
        assert_eq!(p.evicted, 6);
    }
}
