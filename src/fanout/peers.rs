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
//! routing id) takes the binding over: saying the id is the proof. With a side channel,
//! only bound hellos count as subscribers, so a rogue SUB subscribing to hello prefixes
//! alone cannot fill `wait_subscribers`. (Without authentication a peer can still open one
//! connection per fake subscriber: CURVE and a ZAP allow-list decide who may connect at
//! all.)
//!
//! A subscriber acknowledges the end and then closes, and its unsubscription can reach the
//! publisher first: an acknowledgement still counts from the connection, with the key, that
//! was bound to the hello when it left (the last [`MAX_DEPARTED`] departures, for
//! [`DEPARTED_TTL_NS`]).
//!
//! With CURVE each message carries the client's public key (the ZAP handler's user id,
//! libzmq's `User-Id` property): a hello is then bound to the key that subscribed with it
//! too, and a side-channel connection with another key never speaks for it, even if it
//! learned the id.

use std::collections::{HashMap, HashSet, VecDeque};

/// Most hellos (subscribers) a publisher keeps; more are refused.
pub(crate) const MAX_HELLOS: usize = 4096;
/// Most side-channel introductions waiting for their subscription to arrive.
const MAX_INTROS: usize = 1024;
/// How long an introduction may wait for its subscription, in ns.
const INTRO_TTL_NS: u64 = 10_000_000_000;
/// Longest hello id or routing id kept, in bytes (ZMTP routing ids are at most 255).
pub(crate) const MAX_ID_BYTES: usize = 256;
/// Most departed hellos kept for a late end acknowledgement.
const MAX_DEPARTED: usize = 1024;
/// How long a departed hello may still acknowledge, in ns (an acknowledgement overtaken by
/// its unsubscription is microseconds behind it; the end's linger is a second by default).
const DEPARTED_TTL_NS: u64 = INTRO_TTL_NS;

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
    key: Option<Box<str>>,
    at: u64,
    wants_snapshot: bool,
}

/// A bound hello that left: who may still acknowledge for it.
#[derive(Debug, Clone)]
struct Departed {
    id: Vec<u8>,
    rid: Vec<u8>,
    key: Option<Box<str>>,
    at: u64,
}

/// A hello seen on the XPUB.
#[derive(Debug, Clone, Default)]
struct Hello {
    /// The side-channel connection bound to it, once introduced.
    rid: Option<Vec<u8>>,
    /// The CURVE key (ZAP user id) it subscribed with; `None` without authentication.
    key: Option<Box<str>>,
}

/// A ZAP user id as the bookkeeping keeps it: libzmq gives an empty one without a handler.
fn key_of(user_id: Option<&str>) -> Option<Box<str>> {
    user_id.filter(|k| !k.is_empty() && k.len() <= MAX_ID_BYTES).map(Box::from)
}

/// The publisher's subscribers.
#[derive(Debug, Default)]
pub(crate) struct Peers {
    /// Hellos seen on the XPUB, each with the connection bound to it once introduced.
    hellos: HashMap<Vec<u8>, Hello>,
    /// Connections bound to a hello.
    bound: HashSet<Vec<u8>>,
    waiting: VecDeque<Pending>,
    /// Hellos that acknowledged the end (kept after they leave, at most [`MAX_HELLOS`]).
    acked: HashSet<Vec<u8>>,
    /// Bound hellos whose subscription was withdrawn, newest last, at most
    /// [`MAX_DEPARTED`]: a subscriber acknowledges the end and then closes, and its
    /// unsubscription (on the XPUB) can overtake the acknowledgement (on the side channel).
    departed: VecDeque<Departed>,
    /// Peer state refused or dropped at a cap, or expired: counted, traced.
    pub(crate) evicted: u64,
}

impl Peers {
    /// Subscribers: bound hellos when `verified` (a side channel exists), else every hello.
    pub(crate) fn count(&self, verified: bool) -> usize {
        if verified {
            self.hellos.values().filter(|h| h.rid.is_some()).count()
        } else {
            self.hellos.len()
        }
    }

    fn evict(&mut self, what: &'static str) {
        self.evicted += 1;
        if self.evicted <= 10 || self.evicted.is_multiple_of(1000) {
            tracing::warn!(evicted = self.evicted, "fan-out publisher: {what}");
        }
    }

    /// A hello subscription arrived at `now` from a connection with CURVE key `key`.
    /// Returns the connection it was just bound to and whether that connection asked for a
    /// snapshot meanwhile.
    pub(crate) fn subscribed(&mut self, id: &[u8], key: Option<&str>, now: u64) -> Option<(Vec<u8>, bool)> {
        self.expire(now);
        if id.len() > MAX_ID_BYTES || (!self.hellos.contains_key(id) && self.hellos.len() >= MAX_HELLOS) {
            self.evict("hello refused (too long, or too many subscribers)");
            return None;
        }
        let key = key_of(key);
        match self.hellos.get(id) {
            // The same hello subscribed from another key: a peer that learned the id.
            Some(h) if h.key != key => {
                self.evict("hello refused: already subscribed with another CURVE key");
                return None;
            }
            Some(_) => {}
            None => {
                // Back (its SUB reconnected): it speaks through a binding again. Only the
                // same key's entry goes: a peer that merely learned the id cannot clear it.
                self.departed.retain(|d| d.id != id || d.key != key);
                self.hellos.insert(id.to_vec(), Hello { rid: None, key });
            }
        }
        let i = self.waiting.iter().position(|p| p.id == id)?;
        let p = self.waiting.remove(i)?;
        match self.bind(&p.rid, id, p.key.as_deref()) {
            Intro::Bound => Some((p.rid, p.wants_snapshot)),
            _ => None,
        }
    }

    /// A hello subscription was withdrawn (the subscriber closed, crashed, or its
    /// connection died); true if it was a subscriber.
    pub(crate) fn unsubscribed(&mut self, id: &[u8], now: u64) -> bool {
        self.expire(now);
        match self.hellos.remove(id) {
            Some(h) => {
                if let Some(rid) = h.rid {
                    self.bound.remove(&rid);
                    if self.departed.len() >= MAX_DEPARTED {
                        self.departed.pop_front();
                        self.evict("oldest departed hello forgotten (too many)");
                    }
                    self.departed.push_back(Departed { id: id.to_vec(), rid, key: h.key, at: now });
                }
                true
            }
            None => false,
        }
    }

    fn bind(&mut self, rid: &[u8], id: &[u8], key: Option<&str>) -> Intro {
        let Some(hello) = self.hellos.get_mut(id) else { return Intro::Waiting };
        if hello.key.as_deref() != key_of(key).as_deref() {
            return Intro::Refused("the connection's CURVE key is not the one that subscribed");
        }
        match &hello.rid {
            Some(r) if r == rid => Intro::Bound,
            _ if self.bound.contains(rid) => Intro::Refused("the connection speaks for another hello"),
            _ => {
                // Bound anew, or moved from a side-channel connection that reconnected.
                if let Some(old) = hello.rid.replace(rid.to_vec()) {
                    self.bound.remove(&old);
                }
                self.bound.insert(rid.to_vec());
                Intro::Bound
            }
        }
    }

    /// A subscriber introduced itself on the side channel (`HELLO`, or a `SNAPSHOT`
    /// request when `wants_snapshot`) from connection `rid` with CURVE key `key` at `now`.
    pub(crate) fn introduce(
        &mut self,
        rid: &[u8],
        id: &[u8],
        key: Option<&str>,
        wants_snapshot: bool,
        now: u64,
    ) -> Intro {
        self.expire(now);
        if rid.len() > MAX_ID_BYTES || id.len() > MAX_ID_BYTES {
            self.evict("introduction refused: an id longer than 256 bytes");
            return Intro::Refused("an id longer than 256 bytes");
        }
        match self.bind(rid, id, key) {
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
        self.waiting.push_back(Pending {
            rid: rid.to_vec(),
            id: id.to_vec(),
            key: key_of(key),
            at: now,
            wants_snapshot,
        });
        Intro::Waiting
    }

    /// Drops introductions that waited longer than [`INTRO_TTL_NS`] (counted: a peer may
    /// be behind them), and departures older than [`DEPARTED_TTL_NS`] (not counted).
    fn expire(&mut self, now: u64) {
        while self.waiting.front().is_some_and(|p| now.saturating_sub(p.at) > INTRO_TTL_NS) {
            self.waiting.pop_front();
            self.evict("introduction expired: its subscription never arrived");
        }
        // Routine: a departure's acknowledgement is late by microseconds, not seconds.
        while self.departed.front().is_some_and(|d| now.saturating_sub(d.at) > DEPARTED_TTL_NS) {
            self.departed.pop_front();
        }
    }

    /// Whether connection `rid` with CURVE key `key` speaks for hello `id` (binding it,
    /// when the hello is known: a request carrying the id introduces its connection too).
    pub(crate) fn speaks_for(&mut self, rid: &[u8], id: &[u8], key: Option<&str>) -> bool {
        rid.len() <= MAX_ID_BYTES && self.bind(rid, id, key) == Intro::Bound
    }

    /// Takes an end acknowledgement at `now`; false when `rid` does not speak for `id`, now
    /// or (for a hello that just left) when its subscription was withdrawn.
    pub(crate) fn ack(&mut self, rid: &[u8], id: &[u8], key: Option<&str>, now: u64) -> bool {
        self.expire(now);
        if !self.speaks_for(rid, id, key) && !self.spoke_for(rid, id, key) {
            return false;
        }
        if self.acked.len() < MAX_HELLOS || self.acked.contains(id) {
            self.acked.insert(id.to_vec());
        }
        true
    }

    /// Whether connection `rid` with key `key` was bound to hello `id` when it left.
    fn spoke_for(&self, rid: &[u8], id: &[u8], key: Option<&str>) -> bool {
        let key = key_of(key);
        self.departed.iter().any(|d| d.id == id && d.rid == rid && d.key == key)
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
                .filter(|(_, h)| !verified || h.rid.is_some())
                .all(|(id, _)| self.acked.contains(id))
    }
}

/// What the fuzz target checks after every step.
#[cfg(fuzzing)]
impl Peers {
    /// Everything a peer can make this hold, as (what, length now, cap).
    pub(crate) fn holdings(&self) -> [(&'static str, usize, usize); 6] {
        let ids = self.hellos.iter().flat_map(|(id, h)| [Some(id), h.rid.as_ref()]).flatten();
        let ids = ids.chain(self.waiting.iter().flat_map(|p| [&p.rid, &p.id])).chain(&self.acked);
        let ids = ids.chain(self.departed.iter().flat_map(|d| [&d.rid, &d.id]));
        [
            ("hellos", self.hellos.len(), MAX_HELLOS),
            ("bound connections", self.bound.len(), MAX_HELLOS),
            ("introductions waiting", self.waiting.len(), MAX_INTROS),
            ("acknowledged hellos", self.acked.len(), MAX_HELLOS),
            ("departed hellos", self.departed.len(), MAX_DEPARTED),
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
        assert_eq!(p.introduce(b"r1", b"h1", None, true, 0), Intro::Waiting, "before the subscription");
        assert_eq!(p.count(true), 0);
        assert_eq!(
            p.subscribed(b"h1", None, 1),
            Some((b"r1".to_vec(), true)),
            "bound; it asked for a snapshot"
        );
        assert_eq!((p.count(true), p.count(false)), (1, 1));
        // The other order.
        assert_eq!(p.subscribed(b"h2", None, 2), None);
        assert_eq!((p.count(true), p.count(false)), (1, 2), "a bare subscription is not a subscriber");
        assert_eq!(p.introduce(b"r2", b"h2", None, false, 3), Intro::Bound);
        assert_eq!(p.count(true), 2);
        assert!(p.unsubscribed(b"h1", 0) && !p.unsubscribed(b"h1", 0));
        assert_eq!(p.count(true), 1);
    }

    #[test]
    fn only_the_bound_connection_speaks_for_a_hello() {
        let mut p = Peers::default();
        p.subscribed(b"h1", None, 0);
        p.subscribed(b"h2", None, 0);
        assert_eq!(p.introduce(b"r1", b"h1", None, false, 0), Intro::Bound);
        assert!(
            matches!(p.introduce(b"r1", b"h2", None, false, 0), Intro::Refused(_)),
            "one hello per connection"
        );
        assert!(!p.ack(b"stranger", b"h9", None, 0) && !p.all_acknowledged(true), "an unknown hello");
        assert!(p.ack(b"r1", b"h1", None, 0));
        assert!(p.all_acknowledged(true), "h2 never introduced itself: it is not counted");
        assert!(!p.all_acknowledged(false), "without a side channel every hello counts");
    }

    #[test]
    fn an_acknowledgement_overtaken_by_its_unsubscription_still_counts() {
        let mut p = Peers::default();
        p.subscribed(b"h1", Some("KEY-A"), 0);
        assert_eq!(p.introduce(b"r1", b"h1", Some("KEY-A"), false, 0), Intro::Bound);
        assert!(p.unsubscribed(b"h1", 0), "the subscriber closed; its SUB's goodbye came first");
        assert!(!p.ack(b"r2", b"h1", Some("KEY-A"), 0), "another connection never spoke for it");
        assert!(!p.ack(b"r1", b"h1", Some("KEY-B"), 0), "nor another key");
        assert!(!p.ack(b"r1", b"h2", Some("KEY-A"), 0), "nor for another hello");
        assert_eq!(p.acks(), 0);
        assert!(p.ack(b"r1", b"h1", Some("KEY-A"), 0), "the connection bound to it when it left");
        assert!(p.all_acknowledged(true) && p.acks() == 1);
        // A hello that never bound leaves nothing to acknowledge with.
        p.subscribed(b"h3", None, 0);
        assert!(p.unsubscribed(b"h3", 0) && !p.ack(b"r3", b"h3", None, 0));
        // A hello that comes back (its SUB reconnected) speaks through a binding again.
        p.subscribed(b"h1", Some("KEY-A"), 1);
        assert!(p.departed.is_empty());
        // Another key subscribing with a learned id does not clear a departure.
        assert_eq!(p.introduce(b"r4", b"h1", Some("KEY-A"), false, 1), Intro::Bound);
        assert!(p.unsubscribed(b"h1", 1));
        assert_eq!(p.subscribed(b"h1", Some("KEY-B"), 2), None);
        assert_eq!(p.departed.len(), 1, "the rogue's subscription left it in place");
        // Departures age out without counting as evictions.
        let evicted = p.evicted;
        assert!(!p.ack(b"r4", b"h1", Some("KEY-A"), 1 + DEPARTED_TTL_NS + 1), "too late");
        assert!(p.departed.is_empty() && p.evicted == evicted);
    }

    #[test]
    fn departed_hellos_are_capped() {
        let mut p = Peers::default();
        for i in 0..(MAX_DEPARTED + 3) {
            let (id, rid) = (format!("h{i}"), format!("r{i}"));
            p.subscribed(id.as_bytes(), None, 0);
            p.introduce(rid.as_bytes(), id.as_bytes(), None, false, 0);
            assert!(p.unsubscribed(id.as_bytes(), 0));
        }
        assert_eq!((p.departed.len(), p.evicted), (MAX_DEPARTED, 3));
        assert!(!p.ack(b"r0", b"h0", None, 0), "the oldest was forgotten");
        assert!(p.ack(b"r3", b"h3", None, 0));
    }

    #[test]
    fn a_reconnected_side_channel_takes_its_hello_over() {
        let mut p = Peers::default();
        p.subscribed(b"h1", None, 0);
        assert_eq!(p.introduce(b"old", b"h1", None, false, 0), Intro::Bound);
        assert!(p.speaks_for(b"new", b"h1", None), "it says the id: it is the subscriber");
        assert_eq!(p.count(true), 1, "still one subscriber");
        // The old routing id is free again; the new one speaks for h1 only.
        p.subscribed(b"h2", None, 0);
        assert!(matches!(p.introduce(b"new", b"h2", None, false, 0), Intro::Refused(_)));
    }

    #[test]
    fn introductions_are_bounded_and_expire() {
        let mut p = Peers::default();
        for i in 0..(MAX_INTROS + 10) {
            p.introduce(format!("r{i}").as_bytes(), format!("h{i}").as_bytes(), None, true, 0);
        }
        assert_eq!(p.waiting.len(), MAX_INTROS);
        assert_eq!(p.evicted, 10);
        assert_eq!(p.subscribed(b"h0", None, 1), None, "the oldest was dropped");
        assert!(p.subscribed(format!("h{}", MAX_INTROS + 9).as_bytes(), None, 1).is_some());
        p.subscribed(b"late", None, INTRO_TTL_NS + 10);
        assert!(p.waiting.is_empty(), "expired");
        assert!(matches!(p.introduce(&[0; 300], b"h", None, false, 0), Intro::Refused(_)));
    }

    #[test]
    fn hellos_are_capped() {
        let mut p = Peers::default();
        for i in 0..(MAX_HELLOS + 5) {
            p.subscribed(format!("h{i}").as_bytes(), None, 0);
        }
        assert_eq!(p.count(false), MAX_HELLOS);
        assert_eq!(p.evicted, 5);
        p.subscribed(&[b'x'; MAX_ID_BYTES + 1], None, 0);
        assert_eq!(p.evicted, 6);
    }

    #[test]
    fn with_curve_a_hello_is_bound_to_the_key_that_subscribed() {
        let mut p = Peers::default();
        p.subscribed(b"h1", Some("KEY-A"), 0);
        // Another allowed client that learned the id cannot speak for it.
        assert!(matches!(p.introduce(b"rogue", b"h1", Some("KEY-B"), false, 0), Intro::Refused(_)));
        assert!(matches!(p.introduce(b"anon", b"h1", None, false, 0), Intro::Refused(_)));
        assert!(!p.ack(b"rogue", b"h1", Some("KEY-B"), 0) && p.acks() == 0);
        assert_eq!(p.count(true), 0, "no connection speaks for h1 yet");
        assert_eq!(p.introduce(b"real", b"h1", Some("KEY-A"), false, 0), Intro::Bound);
        assert!(p.ack(b"real", b"h1", Some("KEY-A"), 0));
        // Nor can it subscribe with the same id from its own key, nor take the binding over.
        assert_eq!(p.subscribed(b"h1", Some("KEY-B"), 1), None);
        assert!(!p.speaks_for(b"rogue2", b"h1", Some("KEY-B")));
        assert_eq!(p.evicted, 1, "the second subscription is counted");
        // An introduction waiting for its subscription keeps its key.
        assert_eq!(p.introduce(b"r2", b"h2", Some("KEY-B"), true, 2), Intro::Waiting);
        assert_eq!(p.subscribed(b"h2", Some("KEY-A"), 3), None, "introduced by another key");
        assert_eq!(p.count(true), 1);
        // An empty user id (no ZAP handler) is no key.
        p.subscribed(b"h3", Some(""), 4);
        assert_eq!(p.introduce(b"r3", b"h3", None, false, 4), Intro::Bound);
    }
}
