//! Which peers a socket has, from libzmq's socket monitor: the events of a connection's
//! life ([`PeerEvent`]) and the set of connections open now ([`ConnectedPeers`]), kept
//! from the events alone, so a program reading a monitor as events come holds a set as
//! large as its open connections and no more.

use std::collections::{BTreeMap, HashMap};

use super::monitor::MonitorEvent;

/// A change in the set of a socket's connected peers.
///
/// Only tcp and ipc connections report events: inproc has no handshake and no connection
/// to lose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PeerEvent {
    /// A peer completed the ZMTP handshake (`ZMQ_EVENT_HANDSHAKE_SUCCEEDED`): messages can
    /// flow to and from it now.
    Connected,
    /// A peer's connection closed (`ZMQ_EVENT_DISCONNECTED`) after its handshake had
    /// completed; a connecting socket then reconnects by itself. Connections that close
    /// before their handshake completes (a port scanner, a refused CURVE client) were never
    /// peers and are not reported.
    Disconnected,
}

/// The connections of one socket that completed the ZMTP handshake and have not closed,
/// kept from its monitor's events ([`WorkerCtx::monitor_peers`](crate::WorkerCtx::monitor_peers),
/// [`Socket::monitor_peers`](crate::patterns::Socket::monitor_peers)).
///
/// libzmq names a connection by its file descriptor when it opens (accepted or connected)
/// and when it closes, but not when its handshake succeeds; that event goes to the oldest
/// connection still shaking hands, which is the one it belongs to unless a stranger holds a
/// connection open without ever handshaking. So a connection that closes before its
/// handshake (a port scanner, a raw TCP connect and close, in a loop if it likes) is not
/// counted, and cannot make a connected peer look gone. Memory is one entry per open
/// connection.
///
/// ```
/// use ztick::ConnectedPeers;
/// let peers = ConnectedPeers::default();
/// assert!(peers.is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectedPeers {
    /// Open connections by fd: the order each opened in, and whether its handshake is done.
    open: HashMap<u32, (u64, bool)>,
    /// The open connections still shaking hands, by the order they opened in (oldest first).
    pending: BTreeMap<u64, u32>,
    /// How many connections have opened so far: the order of the next one.
    opened: u64,
    /// Handshaken connections in `open`.
    handshaken: usize,
    /// Handshakes of connections that opened before the monitor started (no fd known):
    /// the next closes of unknown connections are taken to be theirs.
    orphans: usize,
}

impl ConnectedPeers {
    /// Applies one monitor message, given by its first frame (libzmq's event code and
    /// value); returns the peer event it reported, if it was one (the opening of a
    /// connection is tracked, not reported). Frames that are not events are ignored.
    pub fn apply(&mut self, frame: &[u8]) -> Option<PeerEvent> {
        let (event, value) = MonitorEvent::decode(frame)?;
        self.apply_event(event, value)
    }

    /// [`apply`](Self::apply) for an event already decoded, with its value (the fd of a
    /// connection opening or closing).
    pub(crate) fn apply_event(&mut self, event: MonitorEvent, fd: u32) -> Option<PeerEvent> {
        match event {
            MonitorEvent::Accepted | MonitorEvent::Connected => {
                self.close(fd); // a reused fd whose close was missed
                self.opened += 1;
                self.open.insert(fd, (self.opened, false));
                self.pending.insert(self.opened, fd);
                None
            }
            // libzmq names no fd with a handshake's outcome: it goes to the oldest connection
            // still shaking hands. A failed one stays open, never handshaken, until it closes.
            MonitorEvent::HandshakeSucceeded => {
                match self.pending.pop_first() {
                    Some((_, fd)) => {
                        if let Some(entry) = self.open.get_mut(&fd) {
                            entry.1 = true;
                            self.handshaken += 1;
                        }
                    }
                    None => self.orphans += 1,
                }
                Some(PeerEvent::Connected)
            }
            MonitorEvent::HandshakeFailed(_) => {
                self.pending.pop_first();
                None
            }
            MonitorEvent::Disconnected => match self.close(fd) {
                Some(true) => Some(PeerEvent::Disconnected),
                Some(false) => None,
                None if self.orphans > 0 => {
                    self.orphans -= 1;
                    Some(PeerEvent::Disconnected)
                }
                None => None,
            },
            _ => None,
        }
    }

    /// Forgets connection `fd`: whether it had completed its handshake, `None` when it was
    /// not known.
    fn close(&mut self, fd: u32) -> Option<bool> {
        let (order, handshaken) = self.open.remove(&fd)?;
        if handshaken {
            self.handshaken -= 1;
        } else {
            self.pending.remove(&order);
        }
        Some(handshaken)
    }

    /// Connections open now that completed their handshake, as far as the events applied
    /// tell.
    pub fn len(&self) -> usize {
        self.handshaken + self.orphans
    }

    /// True when no handshaken connection is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::monitor_codes as code;

    fn frame(event: u32, fd: u32) -> Vec<u8> {
        let mut f = u16::try_from(event).unwrap().to_ne_bytes().to_vec();
        f.extend_from_slice(&fd.to_ne_bytes());
        f
    }

    fn accepted(fd: u32) -> Vec<u8> {
        frame(code::ACCEPTED, fd)
    }

    fn handshake() -> Vec<u8> {
        frame(code::HANDSHAKE_SUCCEEDED, 0) // libzmq's value for it is 0, not the fd
    }

    fn closed(fd: u32) -> Vec<u8> {
        frame(code::DISCONNECTED, fd)
    }

    #[test]
    fn reports_the_two_peer_events_and_nothing_else() {
        let mut peers = ConnectedPeers::default();
        assert_eq!(peers.apply(&accepted(7)), None, "an opening is not a peer event");
        assert_eq!(peers.apply(&handshake()), Some(PeerEvent::Connected));
        assert_eq!(peers.apply(&closed(7)), Some(PeerEvent::Disconnected));
        assert_eq!(peers.apply(&[0x01]), None, "a short frame");
    }

    #[test]
    fn only_handshaken_connections_count_and_strangers_cannot_take_them_away() {
        let mut peers = ConnectedPeers::default();
        assert_eq!(peers.apply(&accepted(10)), None);
        assert_eq!(peers.apply(&handshake()), Some(PeerEvent::Connected));
        // A thousand connect-and-close cycles that never handshake, on reused fds.
        for i in 0..1000 {
            peers.apply(&accepted(11 + i % 3));
            assert_eq!(peers.apply(&closed(11 + i % 3)), None, "a stranger never was a peer");
        }
        assert_eq!(peers.len(), 1, "the real peer is still there");
        assert_eq!((peers.open.len(), peers.pending.len()), (1, 0), "nothing kept for the strangers");
        assert_eq!(peers.apply(&frame(0x0008, 12)), None, "ZMQ_EVENT_LISTENING is ignored");
        peers.apply(&closed(10));
        assert!(peers.is_empty());
    }

    #[test]
    fn a_handshake_goes_to_the_oldest_connection_still_shaking_hands() {
        let mut peers = ConnectedPeers::default();
        peers.apply(&accepted(5));
        peers.apply(&accepted(6)); // a stranger, opened later
        peers.apply(&handshake());
        peers.apply(&closed(6));
        assert_eq!(peers.len(), 1, "the stranger's close does not count");
        peers.apply(&closed(5));
        assert!(peers.is_empty());
    }

    #[test]
    fn peers_that_arrived_before_the_monitor_are_counted_until_an_unknown_close() {
        let mut peers = ConnectedPeers::default();
        peers.apply(&handshake());
        assert_eq!(peers.len(), 1);
        peers.apply(&closed(42));
        assert!(peers.is_empty());
        peers.apply(&closed(43));
        assert!(peers.is_empty(), "never below zero");
    }

    #[test]
    fn a_failed_handshake_is_no_peer_and_its_close_no_departure() {
        let mut peers = ConnectedPeers::default();
        peers.apply(&accepted(5)); // a client the server refuses
        peers.apply(&accepted(6)); // a real one
        let refused = frame(code::HANDSHAKE_FAILED_AUTH, 400); // its value: a ZAP status
        assert_eq!(peers.apply(&refused), None);
        assert_eq!(peers.apply(&closed(5)), None, "the refused client's close");
        assert!(peers.is_empty());
        assert_eq!(peers.apply(&handshake()), Some(PeerEvent::Connected));
        assert_eq!(peers.len(), 1);
        assert_eq!(peers.apply(&closed(6)), Some(PeerEvent::Disconnected));
        assert!(peers.is_empty());
    }
}
