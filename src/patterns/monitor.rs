//! Peer arrivals and departures of a caller-thread [`Socket`], from libzmq's socket monitor
//! (`zmq_socket_monitor`): what a program needs to know that its peers have connected
//! before it sends, or have all hung up (and so received everything) before it closes.

use std::time::{Duration, Instant};

use crate::engine::monitor::{MonitorEvent, MonitorState, MonitorStats};
use crate::error::Result;
use crate::patterns::Socket;

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
    /// completed; a connecting socket then reconnects by itself. Connections whose
    /// handshake failed (a refused CURVE client) were never peers and are not reported.
    Disconnected,
}

impl PeerEvent {
    /// The peer event a decoded monitor event is, or `None` for one this type does not
    /// describe.
    fn of(event: MonitorEvent) -> Option<PeerEvent> {
        match event {
            MonitorEvent::HandshakeSucceeded => Some(PeerEvent::Connected),
            MonitorEvent::Disconnected => Some(PeerEvent::Disconnected),
            _ => None,
        }
    }
}

/// The peer events of one [`Socket`], made by [`Socket::monitor_peers`].
///
/// Events queue until taken, up to 10,000 (they are rare: one per connection and one per
/// disconnection), so a monitor that is read late loses none; past that libzmq's I/O
/// thread waits for the reader, so read it now and then. Events that happened before
/// the monitor started are not reported. Each event is also traced and counted by the same
/// code that serves workers' monitors ([`SocketSpec::monitor`](crate::SocketSpec::monitor)),
/// as it is read: see [`stats`](Self::stats). Like a [`Socket`], it belongs to one thread
/// at a time.
///
/// ```
/// use std::time::Duration;
/// use ztick::{Endpoint, Engine, SocketKind, SocketOptions};
/// use ztick::patterns::{PeerEvent, Socket};
///
/// let engine = Engine::new()?;
/// let opts = SocketOptions::default();
/// let mut server = Socket::bind(&engine, SocketKind::Pull, &Endpoint::tcp_loopback_any(), &opts)?;
/// let mut peers = server.monitor_peers()?;
/// let client = Socket::connect(&engine, SocketKind::Push, &server.endpoint().parse()?, &opts)?;
/// assert_eq!(peers.next_event(Duration::from_secs(10))?, Some(PeerEvent::Connected));
/// drop(client);
/// assert_eq!(peers.next_event(Duration::from_secs(10))?, Some(PeerEvent::Disconnected));
/// # Ok::<(), ztick::Error>(())
/// ```
#[derive(Debug)]
pub struct PeerMonitor {
    /// The PAIR socket connected to the monitored socket's monitor endpoint.
    events: Socket,
    /// The last monitor message, its buffers reused.
    frames: Vec<Vec<u8>>,
    /// The decoder, tracer and counters shared with workers' monitors.
    state: MonitorState,
    /// Handshakes that failed and whose connection's disconnection has not been seen yet:
    /// libzmq reports that disconnection too, but it was never a peer.
    failed_pending: u64,
}

impl PeerMonitor {
    /// Receive HWM of the reading PAIR, in events.
    pub(super) const HWM_MSGS: u32 = 10_000;

    pub(super) fn new(events: Socket, state: MonitorState) -> PeerMonitor {
        PeerMonitor { events, frames: Vec::new(), state, failed_pending: 0 }
    }

    /// The counts of the events read so far.
    pub fn stats(&self) -> MonitorStats {
        self.state.stats()
    }

    /// Takes the next event, waiting at most `timeout` (zero: only one already queued);
    /// `Ok(None)` when none came in time.
    ///
    /// # Errors
    /// [`Error::Zmq`](crate::Error::Zmq) when receiving on the monitor's socket fails (the
    /// context is terminating, for one).
    pub fn next_event(&mut self, timeout: Duration) -> Result<Option<PeerEvent>> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if !self.events.recv_into(&mut self.frames, left)? {
                return Ok(None);
            }
            let address = self.frames.get(1).map_or(&[][..], Vec::as_slice);
            let decoded = self.frames.first().and_then(|f| self.state.on_message(f, address));
            match decoded.as_ref().map(|e| &e.event) {
                Some(MonitorEvent::HandshakeFailed(_)) => {
                    self.failed_pending = self.failed_pending.saturating_add(1);
                    continue;
                }
                // libzmq reports a failed handshake before its connection's disconnection:
                // that one is no peer leaving. (Should two fail and a real peer leave in
                // between, the counts agree again after the last disconnection.)
                Some(MonitorEvent::Disconnected) if self.failed_pending > 0 => {
                    self.failed_pending -= 1;
                    continue;
                }
                _ => {}
            }
            if let Some(event) = decoded.and_then(|e| PeerEvent::of(e.event)) {
                return Ok(Some(event));
            }
            // Not an event we asked for: libzmq sends only those, but a stray one is skipped.
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys;

    fn frame(event: u32) -> Vec<u8> {
        let mut f = u16::try_from(event).unwrap().to_ne_bytes().to_vec();
        f.extend_from_slice(&7u32.to_ne_bytes());
        f
    }

    fn decode(frame: &[u8]) -> Option<PeerEvent> {
        MonitorEvent::decode(frame).and_then(|(e, _)| PeerEvent::of(e))
    }

    #[test]
    fn decodes_the_two_peer_events_and_nothing_else() {
        assert_eq!(decode(&frame(sys::EVENT_HANDSHAKE_SUCCEEDED)), Some(PeerEvent::Connected));
        assert_eq!(decode(&frame(sys::EVENT_DISCONNECTED)), Some(PeerEvent::Disconnected));
        assert_eq!(decode(&frame(0x0001)), None, "ZMQ_EVENT_CONNECTED is not a peer event here");
        assert_eq!(decode(&[0x01]), None, "a short frame");
    }
}
