//! Peer arrivals and departures of a caller-thread [`Socket`], from libzmq's socket monitor
//! (`zmq_socket_monitor`): what a program needs to know that its peers have connected
//! before it sends, or have all hung up (and so received everything) before it closes.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::engine::monitor::{MonitorEvent, MonitorState, MonitorStats};
use crate::engine::ConnectedPeers;
pub use crate::engine::PeerEvent;
use crate::error::Result;
use crate::patterns::Socket;

/// The peer events of one [`Socket`], made by [`Socket::monitor_peers`].
///
/// libzmq sends monitor events with a blocking send from its I/O thread, so a monitor must
/// be read as events come: one left unread until its queue ([`PeerMonitor::HWM_MSGS`]
/// events) is full holds up every connection of the context. [`PeerMonitor::pump`] takes
/// every event libzmq holds into two bounded places: the set of connected peers
/// ([`PeerMonitor::connected`]), and a queue of the last [`PeerMonitor::QUEUE_EVENTS`]
/// events for [`PeerMonitor::next_event`]; older ones are dropped from that queue and
/// counted ([`PeerMonitor::dropped`]), never from the set. [`Socket::recv_into_watching`]
/// pumps while it waits for a message.
///
/// Each event is also traced and counted by the same code that serves workers' monitors
/// ([`SocketSpec::monitor`](crate::SocketSpec::monitor)): see [`stats`](Self::stats).
/// Events that happened before the monitor started are not reported. Like a [`Socket`],
/// it belongs to one thread at a time.
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
/// assert_eq!(peers.connected(), 1);
/// drop(client);
/// assert_eq!(peers.next_event(Duration::from_secs(10))?, Some(PeerEvent::Disconnected));
/// assert_eq!(peers.connected(), 0);
/// # Ok::<(), ztick::Error>(())
/// ```
#[derive(Debug)]
pub struct PeerMonitor {
    /// The PAIR socket connected to the monitored socket's monitor endpoint.
    pub(super) events: Socket,
    /// The last monitor message, its buffers reused.
    frames: Vec<Vec<u8>>,
    /// The decoder, tracer and counters shared with workers' monitors.
    state: MonitorState,
    /// Open, handshaken connections, from every event taken so far.
    peers: ConnectedPeers,
    /// Events taken from libzmq and not yet returned; at most `QUEUE_EVENTS`.
    queue: VecDeque<PeerEvent>,
    /// Events dropped from the front of a full `queue`.
    dropped: u64,
}

impl PeerMonitor {
    /// The most events held for [`PeerMonitor::next_event`]; when more come before they
    /// are taken, the oldest are dropped (and counted). The set of connected peers is kept
    /// from every event regardless.
    pub const QUEUE_EVENTS: usize = 1024;

    /// Receive HWM of the reading PAIR, in events: bounded, so an unread monitor cannot
    /// grow without limit (about 16 MiB at most), and large, so a churn of connections
    /// between two pumps does not reach it.
    pub const HWM_MSGS: u32 = 65_536;

    pub(super) fn new(events: Socket, state: MonitorState) -> PeerMonitor {
        PeerMonitor {
            events,
            frames: Vec::new(),
            state,
            peers: ConnectedPeers::default(),
            queue: VecDeque::new(),
            dropped: 0,
        }
    }

    /// Takes every event libzmq has queued for this monitor now, without waiting, into
    /// the set of connected peers and the bounded event queue; returns how many it took.
    ///
    /// # Errors
    /// [`Error::Zmq`](crate::Error::Zmq) when receiving on the monitor's socket fails.
    pub fn pump(&mut self) -> Result<usize> {
        let mut n = 0;
        while self.take(Duration::ZERO)? {
            n += 1;
        }
        Ok(n)
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
            if let Some(event) = self.queue.pop_front() {
                return Ok(Some(event));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if !self.take(left)? {
                return Ok(None);
            }
        }
    }

    /// Peers connected now (handshake done, connection open), by the events taken so far:
    /// call [`PeerMonitor::pump`] first for an up-to-date count. Connections that close
    /// before their handshake never count.
    pub fn connected(&self) -> usize {
        self.peers.len()
    }

    /// Events dropped from the queue because more than [`PeerMonitor::QUEUE_EVENTS`] came
    /// before they were taken.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The counts of every event taken so far (connections, handshakes and their
    /// failures, disconnections).
    pub fn stats(&self) -> MonitorStats {
        self.state.stats()
    }

    /// Receives one monitor message, waiting at most `timeout`, and applies it; false when
    /// none came.
    fn take(&mut self, timeout: Duration) -> Result<bool> {
        if !self.events.recv_into(&mut self.frames, timeout)? {
            return Ok(false);
        }
        let Some(first) = self.frames.first() else { return Ok(true) };
        // Not an event: libzmq sends only events, but a stray message is skipped.
        let Some((event, fd)) = MonitorEvent::decode(first) else { return Ok(true) };
        let address = self.frames.get(1).map_or(&[][..], Vec::as_slice);
        self.state.on_event(event, fd, address);
        let Some(event) = self.peers.apply_event(event, fd) else { return Ok(true) };
        if self.queue.len() == Self::QUEUE_EVENTS {
            self.queue.pop_front();
            self.dropped += 1;
        }
        self.queue.push_back(event);
        Ok(true)
    }
}
