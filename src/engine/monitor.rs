//! libzmq's socket monitor (`zmq_socket_monitor`), decoded, traced and counted in one place
//! for every socket that asks for it: a worker's ([`SocketSpec::monitor`], read by the worker
//! on every pass of its loop) and a caller-thread [`Socket`]'s
//! ([`Socket::monitor_peers`]).
//!
//! Each event becomes a `tracing` event (target `ztick::monitor`: connections and
//! disconnections at INFO, handshake failures at WARN, the rest at DEBUG) with the socket's
//! kind, its endpoint, the peer's address where known and, for a failed handshake, the
//! reason; and a count in the socket's [`MonitorStats`].
//!
//! libzmq writes monitor events to an inproc PAIR with a blocking send from its I/O thread,
//! so a monitor that is never read would stall that thread once the PAIR is full, and one
//! without a high-water mark would grow without bound: the reading PAIR has a bounded
//! receive HWM ([`MONITOR_HWM_MSGS`]) and is drained as it fills.
//!
//! [`SocketSpec::monitor`]: crate::SocketSpec::monitor
//! [`Socket`]: crate::patterns::Socket
//! [`Socket::monitor_peers`]: crate::patterns::Socket::monitor_peers

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::config::SocketKind;
use crate::sys::{self, monitor_codes as code};

/// Receive HWM of the PAIR socket that reads a monitor, in events (libzmq's sending side
/// holds as many again). Events are a few per connection, so this many unread means a
/// reader that has stopped reading.
pub(crate) const MONITOR_HWM_MSGS: u32 = 1000;

/// How many connection fds a monitor remembers the peer address of, to name the peer when
/// the connection closes. Past this the oldest is forgotten: a peer that churns
/// connections cannot grow the map.
const PEERS_REMEMBERED: usize = 256;

/// Why a ZMTP handshake failed, as libzmq's monitor reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HandshakeFailure {
    /// The connection closed during the handshake without a protocol error on this side
    /// (`ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL`), with the errno libzmq saw (often 0). On a
    /// CURVE client this is how a server that cannot open our HELLO (a wrong server public
    /// key) or refuses us looks: it hangs up.
    NoDetail {
        /// The errno at the failure.
        errno: i32,
    },
    /// A ZMTP, security-mechanism or ZAP protocol error (`ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL`),
    /// one of libzmq's `ZMQ_PROTOCOL_ERROR_*` codes.
    Protocol {
        /// The protocol error code.
        code: u32,
    },
    /// The ZAP handler refused the peer (`ZMQ_EVENT_HANDSHAKE_FAILED_AUTH`) with this status
    /// code (300 temporary, 400 denied, 500 internal).
    Auth {
        /// The ZAP status code.
        status_code: u32,
    },
}

impl HandshakeFailure {
    /// True for a failure of authentication rather than of the connection or the protocol:
    /// a ZAP refusal, a CURVE box that did not open, a mechanism mismatch, a ZAP protocol
    /// error; and, on a CURVE client (`curve_client`), a server hanging up mid-handshake.
    pub fn is_authentication(&self, curve_client: bool) -> bool {
        match *self {
            HandshakeFailure::Auth { .. } => true,
            HandshakeFailure::Protocol { code } => {
                code == code::PROTOCOL_CRYPTOGRAPHIC
                    || code == code::PROTOCOL_MECHANISM_MISMATCH
                    || (code & 0xf000_0000) == code::PROTOCOL_ZAP_FIRST
            }
            HandshakeFailure::NoDetail { .. } => curve_client,
        }
    }

    /// What went wrong, in a few words, for a log line or an error message.
    pub fn reason(&self, curve_client: bool) -> String {
        match *self {
            HandshakeFailure::Auth { status_code } => {
                format!("the ZAP handler refused the peer (status {status_code})")
            }
            HandshakeFailure::Protocol { code } if code == code::PROTOCOL_CRYPTOGRAPHIC => {
                "a CURVE message did not decrypt: the client has the wrong server public key".into()
            }
            HandshakeFailure::Protocol { code } if code == code::PROTOCOL_MECHANISM_MISMATCH => {
                "security mechanisms differ: one side uses CURVE and the other does not".into()
            }
            HandshakeFailure::Protocol { code } if (code & 0xf000_0000) == code::PROTOCOL_ZAP_FIRST => {
                format!("the ZAP handler's reply was malformed (protocol error {code:#x})")
            }
            HandshakeFailure::Protocol { code } if (code & 0xf000_0000) == code::PROTOCOL_ZMTP_FIRST => {
                format!("the peer broke the ZMTP protocol (protocol error {code:#x})")
            }
            HandshakeFailure::Protocol { code } => format!("protocol error {code:#x}"),
            HandshakeFailure::NoDetail { errno } if curve_client => format!(
                "the server closed the connection during the CURVE handshake (errno {errno}): check \
                 the server public key this client was given, and that the server allows this client"
            ),
            HandshakeFailure::NoDetail { errno } => {
                format!("the connection closed during the handshake (errno {errno})")
            }
        }
    }
}

/// One event of libzmq's socket monitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MonitorEvent {
    /// A connecting socket's connection is up (`ZMQ_EVENT_CONNECTED`); the handshake follows.
    Connected,
    /// A connect is in progress asynchronously (`ZMQ_EVENT_CONNECT_DELAYED`).
    ConnectDelayed,
    /// A connect failed and will be retried after this many milliseconds
    /// (`ZMQ_EVENT_CONNECT_RETRIED`).
    ConnectRetried {
        /// The reconnection interval, in ms.
        interval_ms: u32,
    },
    /// A bind is listening (`ZMQ_EVENT_LISTENING`).
    Listening,
    /// A bind failed (`ZMQ_EVENT_BIND_FAILED`) with this errno.
    BindFailed {
        /// The errno.
        errno: i32,
    },
    /// A bound socket accepted a connection (`ZMQ_EVENT_ACCEPTED`); the handshake follows.
    Accepted,
    /// Accepting a connection failed (`ZMQ_EVENT_ACCEPT_FAILED`) with this errno.
    AcceptFailed {
        /// The errno.
        errno: i32,
    },
    /// A connection or listener closed (`ZMQ_EVENT_CLOSED`).
    Closed,
    /// Closing failed (`ZMQ_EVENT_CLOSE_FAILED`) with this errno.
    CloseFailed {
        /// The errno.
        errno: i32,
    },
    /// A peer's connection closed (`ZMQ_EVENT_DISCONNECTED`), after a handshake or during one.
    Disconnected,
    /// The ZMTP handshake completed (`ZMQ_EVENT_HANDSHAKE_SUCCEEDED`): messages flow now.
    HandshakeSucceeded,
    /// The ZMTP handshake failed; libzmq closes the connection (and a connecting socket
    /// tries again after its reconnection interval).
    HandshakeFailed(HandshakeFailure),
    /// The monitor stopped (`ZMQ_EVENT_MONITOR_STOPPED`).
    MonitorStopped,
}

impl MonitorEvent {
    /// The event a monitor message's first frame reports (a native-order u16 event code,
    /// then its u32 value), or `None` for a short frame or an unknown code.
    pub(crate) fn decode(frame: &[u8]) -> Option<(MonitorEvent, u32)> {
        let event = u32::from(sys::monitor_event(frame)?);
        let value = sys::monitor_value(frame)?;
        let errno = value as i32;
        let ev = match event {
            code::CONNECTED => MonitorEvent::Connected,
            code::CONNECT_DELAYED => MonitorEvent::ConnectDelayed,
            code::CONNECT_RETRIED => MonitorEvent::ConnectRetried { interval_ms: value },
            code::LISTENING => MonitorEvent::Listening,
            code::BIND_FAILED => MonitorEvent::BindFailed { errno },
            code::ACCEPTED => MonitorEvent::Accepted,
            code::ACCEPT_FAILED => MonitorEvent::AcceptFailed { errno },
            code::CLOSED => MonitorEvent::Closed,
            code::CLOSE_FAILED => MonitorEvent::CloseFailed { errno },
            code::DISCONNECTED => MonitorEvent::Disconnected,
            code::MONITOR_STOPPED => MonitorEvent::MonitorStopped,
            code::HANDSHAKE_SUCCEEDED => MonitorEvent::HandshakeSucceeded,
            code::HANDSHAKE_FAILED_NO_DETAIL => {
                MonitorEvent::HandshakeFailed(HandshakeFailure::NoDetail { errno })
            }
            code::HANDSHAKE_FAILED_PROTOCOL => {
                MonitorEvent::HandshakeFailed(HandshakeFailure::Protocol { code: value })
            }
            code::HANDSHAKE_FAILED_AUTH => {
                MonitorEvent::HandshakeFailed(HandshakeFailure::Auth { status_code: value })
            }
            _ => return None,
        };
        Some((ev, value))
    }

    /// A short name for logs: `connected`, `accepted`, `handshake_failed`, ...
    pub fn name(&self) -> &'static str {
        match self {
            MonitorEvent::Connected => "connected",
            MonitorEvent::ConnectDelayed => "connect_delayed",
            MonitorEvent::ConnectRetried { .. } => "connect_retried",
            MonitorEvent::Listening => "listening",
            MonitorEvent::BindFailed { .. } => "bind_failed",
            MonitorEvent::Accepted => "accepted",
            MonitorEvent::AcceptFailed { .. } => "accept_failed",
            MonitorEvent::Closed => "closed",
            MonitorEvent::CloseFailed { .. } => "close_failed",
            MonitorEvent::Disconnected => "disconnected",
            MonitorEvent::HandshakeSucceeded => "handshake_succeeded",
            MonitorEvent::HandshakeFailed(_) => "handshake_failed",
            MonitorEvent::MonitorStopped => "monitor_stopped",
        }
    }
}

/// A monitor event with where it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketEvent {
    /// What happened.
    pub event: MonitorEvent,
    /// The endpoint libzmq names with it: for a connecting socket the peer's endpoint, for
    /// a bound one the endpoint it bound.
    pub endpoint: String,
    /// The peer's address (`10.0.0.2:41234`), where it can be known: a tcp connection's
    /// other end on `Connected`/`Accepted`, and on `Disconnected` of a connection whose
    /// arrival this monitor saw. libzmq's monitor does not name the peer of a handshake
    /// event on a bound socket; on a connecting socket the peer is `endpoint`.
    pub peer: Option<String>,
    /// The monitored socket's kind.
    pub kind: SocketKind,
}

impl fmt::Display for SocketEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} on the {} socket at {}", self.event.name(), self.kind, self.endpoint)?;
        if let Some(p) = &self.peer {
            write!(f, " (peer {p})")?;
        }
        Ok(())
    }
}

/// What a monitored socket's connections did, counted from its monitor's events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MonitorStats {
    /// Connections a connecting socket made (`Connected`).
    pub connected: u64,
    /// Connections a bound socket accepted (`Accepted`).
    pub accepted: u64,
    /// Connections closed (`Disconnected`), including those whose handshake failed.
    pub disconnected: u64,
    /// ZMTP handshakes completed: peers that messages flowed with.
    pub handshakes_succeeded: u64,
    /// ZMTP handshakes that failed, for any reason.
    pub handshakes_failed: u64,
    /// Of those, failures of authentication ([`HandshakeFailure::is_authentication`]).
    pub auth_failed: u64,
    /// Connect attempts that failed and are retried (`ConnectRetried`).
    pub connect_retries: u64,
    /// Binds, accepts and closes that failed.
    pub other_failures: u64,
}

impl MonitorStats {
    /// Connections open now: made or accepted, minus closed (0 if more closed than this
    /// monitor saw open, which happens for connections older than the monitor).
    pub fn open_connections(&self) -> u64 {
        (self.connected + self.accepted).saturating_sub(self.disconnected)
    }
}

/// The counters behind [`MonitorStats`], written by the thread that reads the monitor.
#[derive(Debug, Default)]
pub(crate) struct MonitorCounters {
    connected: AtomicU64,
    accepted: AtomicU64,
    disconnected: AtomicU64,
    handshakes_succeeded: AtomicU64,
    handshakes_failed: AtomicU64,
    auth_failed: AtomicU64,
    connect_retries: AtomicU64,
    other_failures: AtomicU64,
}

impl MonitorCounters {
    fn snapshot(&self) -> MonitorStats {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        MonitorStats {
            connected: l(&self.connected),
            accepted: l(&self.accepted),
            disconnected: l(&self.disconnected),
            handshakes_succeeded: l(&self.handshakes_succeeded),
            handshakes_failed: l(&self.handshakes_failed),
            auth_failed: l(&self.auth_failed),
            connect_retries: l(&self.connect_retries),
            other_failures: l(&self.other_failures),
        }
    }
}

/// A monitored socket's counters, readable from any thread (from
/// [`Worker::monitor`](crate::Worker::monitor) or [`PeerMonitor::stats`]); cheap to clone.
///
/// [`PeerMonitor::stats`]: crate::patterns::PeerMonitor::stats
///
/// # Examples
///
/// A worker's PULL socket sees a caller-thread PUSH connect:
///
/// ```
/// use std::time::{Duration, Instant};
/// use ztick::patterns::Socket;
/// use ztick::{Endpoint, Engine, SocketKind, SocketOptions, SocketSpec};
///
/// let engine = Engine::new()?;
/// let mut b = engine.worker("server");
/// let pull = b.socket(SocketSpec::bind(SocketKind::Pull, Endpoint::tcp_loopback_any()).monitor(true));
/// let server = b.spawn()?;
/// let monitor = server.monitor(pull).expect("the spec turned the monitor on");
/// let endpoint: Endpoint = server.endpoint(pull).expect("bound").parse()?;
///
/// let client = Socket::connect(&engine, SocketKind::Push, &endpoint, &SocketOptions::default())?;
/// let deadline = Instant::now() + Duration::from_secs(10);
/// while monitor.stats().accepted == 0 && Instant::now() < deadline {
///     std::thread::sleep(Duration::from_millis(1));
/// }
/// assert_eq!((monitor.kind(), monitor.stats().open_connections()), (SocketKind::Pull, 1));
/// drop(client);
/// server.stop()?;
/// # Ok::<(), ztick::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct SocketMonitor {
    counters: Arc<MonitorCounters>,
    kind: SocketKind,
    endpoint: String,
}

impl SocketMonitor {
    /// The counts so far.
    pub fn stats(&self) -> MonitorStats {
        self.counters.snapshot()
    }

    /// The monitored socket's kind.
    pub fn kind(&self) -> SocketKind {
        self.kind
    }

    /// The monitored socket's endpoint (as bound or connected).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

/// The decoding, tracing and counting of one socket's monitor, for whichever thread reads
/// its PAIR (the worker's loop, or a caller-thread `PeerMonitor`).
#[derive(Debug)]
pub(crate) struct MonitorState {
    counters: Arc<MonitorCounters>,
    kind: SocketKind,
    endpoint: String,
    /// The socket is a CURVE client: a hang-up mid-handshake is then an authentication
    /// failure (the server could not open our HELLO, or refused us).
    curve_client: bool,
    /// (fd, peer address) of connections seen arriving, newest last, at most
    /// [`PEERS_REMEMBERED`].
    peers: Vec<(u32, String)>,
    /// Handshake failures logged so far (the first few in full, then one in a hundred).
    failures: u64,
}

impl MonitorState {
    pub(crate) fn new(kind: SocketKind, endpoint: &str, curve_client: bool) -> MonitorState {
        MonitorState {
            counters: Arc::default(),
            kind,
            endpoint: endpoint.to_owned(),
            curve_client,
            peers: Vec::new(),
            failures: 0,
        }
    }

    /// Sets the endpoint the socket really bound (`tcp://127.0.0.1:*` resolved) for
    /// [`SocketMonitor::endpoint`].
    pub(crate) fn set_endpoint(&mut self, endpoint: &str) {
        endpoint.clone_into(&mut self.endpoint);
    }

    /// A handle on this monitor's counters.
    pub(crate) fn handle(&self) -> SocketMonitor {
        SocketMonitor {
            counters: Arc::clone(&self.counters),
            kind: self.kind,
            endpoint: self.endpoint.clone(),
        }
    }

    /// The counts so far.
    pub(crate) fn stats(&self) -> MonitorStats {
        self.counters.snapshot()
    }

    /// Decodes one monitor message (`frame`: event and value; `address`: the endpoint
    /// libzmq names), counts and traces it; `None` for a message that is not an event.
    pub(crate) fn on_message(&mut self, frame: &[u8], address: &[u8]) -> Option<SocketEvent> {
        let (event, value) = MonitorEvent::decode(frame)?;
        Some(self.on_event(event, value, address))
    }

    /// [`on_message`](Self::on_message) for an event already decoded, with its value.
    pub(crate) fn on_event(&mut self, event: MonitorEvent, value: u32, address: &[u8]) -> SocketEvent {
        let endpoint = String::from_utf8_lossy(address).into_owned();
        let peer = match event {
            MonitorEvent::Connected | MonitorEvent::Accepted => {
                let peer = sys::peer_address(value as i32);
                if let Some(p) = &peer {
                    if self.peers.len() == PEERS_REMEMBERED {
                        self.peers.remove(0);
                    }
                    self.peers.push((value, p.clone()));
                }
                peer
            }
            MonitorEvent::Disconnected => {
                self.peers.iter().position(|(fd, _)| *fd == value).map(|i| self.peers.remove(i).1)
            }
            _ => None,
        };
        let ev = SocketEvent { event, endpoint, peer, kind: self.kind };
        self.count_and_trace(&ev);
        ev
    }

    fn count_and_trace(&mut self, ev: &SocketEvent) {
        let c = &self.counters;
        let add = |a: &AtomicU64| {
            a.fetch_add(1, Ordering::Relaxed);
        };
        let kind = ev.kind.as_str();
        let endpoint = ev.endpoint.as_str();
        let peer = ev.peer.as_deref().unwrap_or("");
        match ev.event {
            MonitorEvent::Connected | MonitorEvent::Accepted => {
                add(if ev.event == MonitorEvent::Connected { &c.connected } else { &c.accepted });
                tracing::info!(target: "ztick::monitor", kind, endpoint, peer, event = ev.event.name(), "peer connection");
            }
            MonitorEvent::Disconnected => {
                add(&c.disconnected);
                tracing::info!(target: "ztick::monitor", kind, endpoint, peer, "peer disconnected");
            }
            MonitorEvent::HandshakeSucceeded => {
                add(&c.handshakes_succeeded);
                tracing::debug!(target: "ztick::monitor", kind, endpoint, "handshake succeeded");
            }
            MonitorEvent::HandshakeFailed(why) => {
                add(&c.handshakes_failed);
                let auth = why.is_authentication(self.curve_client);
                if auth {
                    add(&c.auth_failed);
                }
                self.failures += 1;
                let n = self.failures;
                // A client retries every reconnection interval: the first few in full,
                // then one in a hundred, so a refused peer cannot flood the log.
                if n <= 5 || n.is_multiple_of(100) {
                    let what = if auth { "authentication" } else { "protocol" };
                    tracing::warn!(
                        target: "ztick::monitor",
                        kind,
                        endpoint,
                        peer,
                        count = n,
                        "handshake failed: {what}: {}",
                        why.reason(self.curve_client)
                    );
                }
            }
            MonitorEvent::ConnectRetried { interval_ms } => {
                add(&c.connect_retries);
                tracing::debug!(target: "ztick::monitor", kind, endpoint, interval_ms, "connect retried");
            }
            MonitorEvent::BindFailed { errno }
            | MonitorEvent::AcceptFailed { errno }
            | MonitorEvent::CloseFailed { errno } => {
                add(&c.other_failures);
                let e = sys::errno_of(errno);
                tracing::warn!(target: "ztick::monitor", kind, endpoint, event = ev.event.name(), error = %e.message, "socket failure");
            }
            MonitorEvent::ConnectDelayed
            | MonitorEvent::Listening
            | MonitorEvent::Closed
            | MonitorEvent::MonitorStopped => {
                tracing::debug!(target: "ztick::monitor", kind, endpoint, event = ev.event.name(), "socket event");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(event: u32, value: u32) -> Vec<u8> {
        let mut f = u16::try_from(event).unwrap().to_ne_bytes().to_vec();
        f.extend_from_slice(&value.to_ne_bytes());
        f
    }

    #[test]
    fn decodes_every_event_and_refuses_short_or_unknown_frames() {
        let cases = [
            (code::CONNECTED, 7, MonitorEvent::Connected),
            (code::CONNECT_RETRIED, 100, MonitorEvent::ConnectRetried { interval_ms: 100 }),
            (code::ACCEPTED, 9, MonitorEvent::Accepted),
            (code::DISCONNECTED, 9, MonitorEvent::Disconnected),
            (code::HANDSHAKE_SUCCEEDED, 0, MonitorEvent::HandshakeSucceeded),
            (
                code::HANDSHAKE_FAILED_AUTH,
                400,
                MonitorEvent::HandshakeFailed(HandshakeFailure::Auth { status_code: 400 }),
            ),
            (
                code::HANDSHAKE_FAILED_PROTOCOL,
                code::PROTOCOL_CRYPTOGRAPHIC,
                MonitorEvent::HandshakeFailed(HandshakeFailure::Protocol {
                    code: code::PROTOCOL_CRYPTOGRAPHIC,
                }),
            ),
            (
                code::HANDSHAKE_FAILED_NO_DETAIL,
                104,
                MonitorEvent::HandshakeFailed(HandshakeFailure::NoDetail { errno: 104 }),
            ),
        ];
        for (event, value, want) in cases {
            assert_eq!(MonitorEvent::decode(&frame(event, value)).map(|d| d.0), Some(want), "{event:#x}");
        }
        assert_eq!(MonitorEvent::decode(&frame(code::CONNECTED, 1)[..5]), None, "short frame");
        assert_eq!(MonitorEvent::decode(&frame(0x8000, 1)), None, "unknown code");
    }

    #[test]
    fn authentication_failures_are_told_from_others() {
        let crypto = HandshakeFailure::Protocol { code: code::PROTOCOL_CRYPTOGRAPHIC };
        assert!(crypto.is_authentication(false));
        assert!(crypto.reason(false).contains("wrong server public key"));
        assert!(HandshakeFailure::Auth { status_code: 400 }.is_authentication(false));
        let hangup = HandshakeFailure::NoDetail { errno: 0 };
        assert!(hangup.is_authentication(true), "a CURVE client's server hung up on it");
        assert!(!hangup.is_authentication(false));
        assert!(hangup.reason(true).contains("server public key"));
        let zmtp = HandshakeFailure::Protocol { code: code::PROTOCOL_ZMTP_FIRST + 1 };
        assert!(!zmtp.is_authentication(true));
        assert!(zmtp.reason(false).contains("ZMTP"));
    }

    #[test]
    fn counts_events_and_names_the_peer_of_a_closed_connection() {
        let mut m = MonitorState::new(SocketKind::XPub, "tcp://127.0.0.1:5556", false);
        let ep = b"tcp://127.0.0.1:5556";
        // fd 987654 is no socket here: no peer address, nothing remembered.
        let ev = m.on_message(&frame(code::ACCEPTED, 987_654), ep).unwrap();
        assert_eq!((ev.event, ev.peer.as_deref(), ev.kind), (MonitorEvent::Accepted, None, SocketKind::XPub));
        m.on_message(&frame(code::HANDSHAKE_SUCCEEDED, 0), ep).unwrap();
        m.on_message(&frame(code::HANDSHAKE_FAILED_AUTH, 400), ep).unwrap();
        m.on_message(&frame(code::DISCONNECTED, 987_654), ep).unwrap();
        assert!(m.on_message(&[1, 2], ep).is_none());
        let s = m.handle().stats();
        assert_eq!((s.accepted, s.handshakes_succeeded, s.handshakes_failed, s.auth_failed), (1, 1, 1, 1));
        assert_eq!((s.disconnected, s.open_connections()), (1, 0));

        // A real tcp connection's fd names its peer, remembered until it closes.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&client) as u32;
        let want = listener.local_addr().unwrap().to_string();
        let ev = m.on_message(&frame(code::CONNECTED, fd), ep).unwrap();
        assert_eq!(ev.peer.as_deref(), Some(want.as_str()));
        let ev = m.on_message(&frame(code::DISCONNECTED, fd), ep).unwrap();
        assert_eq!(ev.peer.as_deref(), Some(want.as_str()));
        assert_eq!(
            ev.to_string(),
            format!("disconnected on the XPUB socket at tcp://127.0.0.1:5556 (peer {want})")
        );
    }
}
