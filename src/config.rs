//! Configuration: socket kinds, options and what to do at the high-water mark; the cores
//! threads are pinned to and the scheduling of libzmq's I/O threads. Pure data.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::curve::{Curve, CurveKey};
use crate::error::Error;

/// The ZeroMQ socket kinds ztick drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SocketKind {
    /// Exclusive pair.
    Pair,
    /// Publisher (fan-out, drops at the HWM unless told otherwise).
    Pub,
    /// Subscriber with topic-prefix filters.
    Sub,
    /// Strict request side of request/reply.
    Req,
    /// Strict reply side of request/reply.
    Rep,
    /// Asynchronous request side.
    Dealer,
    /// Asynchronous, identity-routed reply side.
    Router,
    /// Pipeline receiver.
    Pull,
    /// Pipeline sender.
    Push,
    /// Publisher that sees subscriptions.
    XPub,
    /// Subscriber that sends subscriptions as messages.
    XSub,
}

impl SocketKind {
    /// libzmq's upper-case name, as in error messages and the ZMTP handshake.
    pub fn as_str(self) -> &'static str {
        match self {
            SocketKind::Pair => "PAIR",
            SocketKind::Pub => "PUB",
            SocketKind::Sub => "SUB",
            SocketKind::Req => "REQ",
            SocketKind::Rep => "REP",
            SocketKind::Dealer => "DEALER",
            SocketKind::Router => "ROUTER",
            SocketKind::Pull => "PULL",
            SocketKind::Push => "PUSH",
            SocketKind::XPub => "XPUB",
            SocketKind::XSub => "XSUB",
        }
    }
}

impl SocketKind {
    /// False for the send-only kinds (PUSH, PUB), which libzmq refuses to receive on.
    pub fn can_receive(self) -> bool {
        !matches!(self, SocketKind::Push | SocketKind::Pub)
    }
}

impl fmt::Display for SocketKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SocketKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let kind = match s.to_ascii_uppercase().as_str() {
            "PAIR" => SocketKind::Pair,
            "PUB" => SocketKind::Pub,
            "SUB" => SocketKind::Sub,
            "REQ" => SocketKind::Req,
            "REP" => SocketKind::Rep,
            "DEALER" => SocketKind::Dealer,
            "ROUTER" => SocketKind::Router,
            "PULL" => SocketKind::Pull,
            "PUSH" => SocketKind::Push,
            "XPUB" => SocketKind::XPub,
            "XSUB" => SocketKind::XSub,
            _ => {
                return Err(Error::config(
                    "socket kind",
                    s,
                    "one of pair, pub, sub, req, rep, dealer, router, pull, push, xpub, xsub",
                ))
            }
        };
        Ok(kind)
    }
}

/// What a worker does when a send finds the socket at its high-water mark (EAGAIN).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FullPolicy {
    /// Keep the message and retry when the socket becomes writable; the hand-off channel
    /// fills up behind it, which pushes back on the application. Nothing is lost.
    #[default]
    Block,
    /// Discard the message and count it in the worker's `dropped` counter.
    Drop,
    /// Discard it, count it, and report the first such failure as an error when the worker stops.
    Error,
}

impl FromStr for FullPolicy {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "block" => Ok(FullPolicy::Block),
            "drop" => Ok(FullPolicy::Drop),
            "error" => Ok(FullPolicy::Error),
            _ => Err(Error::config("full policy", s, "one of block, drop, error")),
        }
    }
}

/// libzmq socket options, applied before bind or connect (libzmq applies HWMs and most
/// others only to connections made afterwards). An option never set leaves libzmq's
/// default, except the linger (ztick's default is [`SocketOptions::DEFAULT_LINGER`]).
///
/// Set by chained, consuming setters:
///
/// ```
/// use std::time::Duration;
/// use ztick::{Endpoint, SocketKind, SocketOptions, SocketSpec};
/// let o = SocketOptions::default()
///     .send_hwm_msgs(10_000)
///     .linger(Some(Duration::from_millis(500)))
///     .immediate(true);
/// let spec = SocketSpec::connect(SocketKind::Push, Endpoint::unique_inproc("opts")).options(o);
/// # let _ = spec;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SocketOptions {
    /// Messages queued per peer on send before EAGAIN or drops (`ZMQ_SNDHWM`; libzmq: 1000, 0 = unlimited).
    pub(crate) send_hwm_msgs: Option<u32>,
    /// Messages queued per peer on receive (`ZMQ_RCVHWM`; libzmq: 1000, 0 = unlimited).
    pub(crate) recv_hwm_msgs: Option<u32>,
    /// How long close waits to flush queued messages (`ZMQ_LINGER`); `Some(None)` waits forever.
    /// ztick's own default is 1 s so that shutdown always ends; libzmq's is forever.
    pub(crate) linger: Option<Option<Duration>>,
    /// Keep only the last message (`ZMQ_CONFLATE`; single-frame messages only).
    pub(crate) conflate: Option<bool>,
    /// Queue only on completed connections (`ZMQ_IMMEDIATE`).
    pub(crate) immediate: Option<bool>,
    /// First reconnect delay (`ZMQ_RECONNECT_IVL`; libzmq: 100 ms).
    pub(crate) reconnect_interval: Option<Duration>,
    /// Reconnect back-off cap (`ZMQ_RECONNECT_IVL_MAX`; libzmq: 0 = no back-off).
    pub(crate) reconnect_interval_max: Option<Duration>,
    /// ZMTP heartbeat PING interval (`ZMQ_HEARTBEAT_IVL`; libzmq: off).
    pub(crate) heartbeat_interval: Option<Duration>,
    /// How long to wait for a PONG before closing (`ZMQ_HEARTBEAT_TIMEOUT`).
    pub(crate) heartbeat_timeout: Option<Duration>,
    /// How long the peer should wait for our traffic (`ZMQ_HEARTBEAT_TTL`, 100 ms resolution).
    pub(crate) heartbeat_ttl: Option<Duration>,
    /// TCP keepalive: idle time before the first probe, time between probes, probes
    /// unanswered before the kernel drops the connection (`ZMQ_TCP_KEEPALIVE*`; whole
    /// seconds).
    pub(crate) tcp_keepalive: Option<(Duration, Duration, u32)>,
    /// How long sent data may go unacknowledged before the kernel drops the connection
    /// (`ZMQ_TCP_MAXRT`, Linux's `TCP_USER_TIMEOUT`).
    pub(crate) tcp_max_retransmit: Option<Duration>,
    /// Largest inbound message in bytes; bigger ones drop the connection (`ZMQ_MAXMSGSIZE`).
    pub(crate) max_msg_bytes: Option<u64>,
    /// This socket's identity as seen by a ROUTER peer (`ZMQ_ROUTING_ID`, 1-255 bytes).
    pub(crate) routing_id: Option<Vec<u8>>,
    /// CURVE encryption and authentication (`ZMQ_CURVE_*`); needs a libzmq with CURVE.
    pub(crate) curve: Option<Curve>,
    /// The ZAP domain a server asks its authentication handler about (`ZMQ_ZAP_DOMAIN`).
    pub(crate) zap_domain: Option<String>,
}

impl SocketOptions {
    /// Sets the send high-water mark (`ZMQ_SNDHWM`), in messages per peer; 0 is unlimited.
    /// libzmq's default: 1000.
    pub fn send_hwm_msgs(mut self, msgs: u32) -> Self {
        self.send_hwm_msgs = Some(msgs);
        self
    }

    /// Sets the receive high-water mark (`ZMQ_RCVHWM`), in messages per peer; 0 is
    /// unlimited. libzmq's default: 1000.
    pub fn recv_hwm_msgs(mut self, msgs: u32) -> Self {
        self.recv_hwm_msgs = Some(msgs);
        self
    }

    /// Sets both high-water marks, in messages per peer.
    pub fn hwm_msgs(self, msgs: u32) -> Self {
        self.send_hwm_msgs(msgs).recv_hwm_msgs(msgs)
    }

    /// Sets how long closing waits to flush queued messages (`ZMQ_LINGER`); `None` waits
    /// forever. ztick's default: [`SocketOptions::DEFAULT_LINGER`].
    pub fn linger(mut self, linger: Option<Duration>) -> Self {
        self.linger = Some(linger);
        self
    }

    /// The linger these options give a socket: the one set, or ztick's default
    /// ([`SocketOptions::DEFAULT_LINGER`]); `None` is forever.
    pub fn effective_linger(&self) -> Option<Duration> {
        self.linger.unwrap_or(Some(Self::DEFAULT_LINGER))
    }

    /// Turns conflation on or off (`ZMQ_CONFLATE`: keep only the last message; single-frame
    /// messages only).
    pub fn conflate(mut self, on: bool) -> Self {
        self.conflate = Some(on);
        self
    }

    /// Turns `ZMQ_IMMEDIATE` on or off: queue only on completed connections.
    pub fn immediate(mut self, on: bool) -> Self {
        self.immediate = Some(on);
        self
    }

    /// Sets the first reconnect delay (`ZMQ_RECONNECT_IVL`; libzmq: 100 ms) and the back-off
    /// cap (`ZMQ_RECONNECT_IVL_MAX`; libzmq: none).
    pub fn reconnect(mut self, first: Duration, max: Duration) -> Self {
        self.reconnect_interval = Some(first);
        self.reconnect_interval_max = Some(max);
        self
    }

    /// Turns on ZMTP heartbeats: PING every `interval`, drop the peer after `timeout`
    /// without a reply, and ask the peer to drop us after `ttl` of silence.
    ///
    /// **A peer can abort the process** of a socket with heartbeats in libzmq 4.3.4 and
    /// 4.3.5: when a connection's input is stopped (its receive queue is full because the
    /// application reads slower than the peer sends) and the peer resets it, libzmq marks
    /// the connection broken but keeps its heartbeat timer, whose next PING fails the
    /// assertion `!_io_error` in `stream_engine_base.cpp` (tests/zmtp_heartbeat.rs does it
    /// with one raw TCP connection). Where peers may be hostile or the reader slow, notice
    /// dead peers with [`SocketOptions::tcp_keepalive`] and
    /// [`SocketOptions::tcp_max_retransmit`] instead, as the fan-out does.
    pub fn heartbeat(mut self, interval: Duration, timeout: Duration, ttl: Duration) -> Self {
        self.heartbeat_interval = Some(interval);
        self.heartbeat_timeout = Some(timeout);
        self.heartbeat_ttl = Some(ttl);
        self
    }

    /// Turns on TCP keepalive (`ZMQ_TCP_KEEPALIVE`, `_IDLE`, `_INTVL`, `_CNT`): after `idle`
    /// without traffic the kernel probes the peer every `interval` and drops the connection
    /// after `probes` unanswered ones, so a peer whose host died or whose network went away
    /// is noticed by an idle connection. Whole seconds (at least 1); tcp only.
    pub fn tcp_keepalive(mut self, idle: Duration, interval: Duration, probes: u32) -> Self {
        self.tcp_keepalive = Some((idle, interval, probes));
        self
    }

    /// Sets how long sent data may go unacknowledged before the kernel drops the
    /// connection (`ZMQ_TCP_MAXRT`, Linux's `TCP_USER_TIMEOUT`): the dead-peer check of a
    /// connection that is sending, where keepalive (which probes only idle ones) says
    /// nothing. Milliseconds; tcp only.
    pub fn tcp_max_retransmit(mut self, timeout: Duration) -> Self {
        self.tcp_max_retransmit = Some(timeout);
        self
    }

    /// Sets the largest inbound message, in bytes (`ZMQ_MAXMSGSIZE`): a peer that sends a
    /// bigger one is disconnected. libzmq's default: no limit.
    pub fn max_msg_bytes(mut self, bytes: u64) -> Self {
        self.max_msg_bytes = Some(bytes);
        self
    }

    /// Sets the routing id; it must be 1 to 255 bytes and must not start with a zero byte
    /// (libzmq reserves those for generated ids).
    ///
    /// # Errors
    /// [`Error::Config`] for an id outside those bounds.
    pub fn routing_id(mut self, id: &[u8]) -> Result<Self, Error> {
        if id.is_empty() || id.len() > 255 || id[0] == 0 {
            return Err(Error::config(
                "routing_id",
                format!("{id:?}"),
                "1 to 255 bytes, not starting with a zero byte",
            ));
        }
        self.routing_id = Some(id.to_vec());
        Ok(self)
    }

    /// Sets the socket's CURVE role, or none (plaintext). Opening a socket with a role fails
    /// with a clear error where libzmq has no CURVE.
    pub fn curve(mut self, curve: Option<Curve>) -> Self {
        self.curve = curve;
        self
    }

    /// Makes the socket a CURVE server with `secret` (see [`SocketOptions::curve`]).
    pub fn curve_server(self, secret: CurveKey) -> Self {
        self.curve(Some(Curve::Server { secret }))
    }

    /// Makes the socket a CURVE client with its own `secret` key, for the server whose
    /// public key is `server` (see [`SocketOptions::curve`]).
    pub fn curve_client(self, secret: CurveKey, server: CurveKey) -> Self {
        self.curve(Some(Curve::Client { secret, server }))
    }

    /// Sets the ZAP domain (`ZMQ_ZAP_DOMAIN`).
    pub fn zap_domain(mut self, domain: &str) -> Self {
        self.zap_domain = Some(domain.to_owned());
        self
    }

    /// The linger ztick applies when none is set: 1 s, so that closing never hangs.
    pub const DEFAULT_LINGER: Duration = Duration::from_secs(1);
}

/// A CPU core, by the index the OS gives it (what `taskset -c` and `/proc/cpuinfo` call a
/// processor). The cores this process may use are [`Engine::cores`](crate::Engine::cores);
/// asking for another is [`Error::Core`].
///
/// ```
/// use ztick::CoreId;
/// let core: CoreId = "3".parse()?;
/// assert_eq!(core, CoreId::new(3));
/// assert_eq!((core.index(), core.to_string()), (3, "3".to_owned()));
/// # Ok::<(), ztick::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct CoreId(usize);

impl CoreId {
    /// The core with OS index `index`.
    pub const fn new(index: usize) -> Self {
        CoreId(index)
    }

    /// The OS index of this core.
    pub const fn index(self) -> usize {
        self.0
    }
}

impl fmt::Display for CoreId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl FromStr for CoreId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        s.trim().parse().map(CoreId).map_err(|_| {
            Error::config("core", s, "a core index such as 0 or 3 (`ztick info` lists this machine's)")
        })
    }
}

/// How the OS schedules libzmq's I/O threads (`ZMQ_THREAD_SCHED_POLICY`, with
/// `ZMQ_THREAD_PRIORITY` for the real-time policies); see
/// [`EngineBuilder::io_sched`](crate::EngineBuilder::io_sched).
///
/// libzmq applies it in each I/O thread as the thread starts (`pthread_setschedparam`),
/// and **aborts the process** if the OS refuses. The real-time policies need privileges:
/// `CAP_SYS_NICE`, or an `RLIMIT_RTPRIO` (`ulimit -r`) at least the priority asked for.
/// Real-time I/O threads take the CPU from everything at a lower priority whenever they
/// have work, so pin them ([`EngineBuilder::io_cores`](crate::EngineBuilder::io_cores)) to
/// cores the workers do not spin on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SchedPolicy {
    /// The normal time-sharing scheduler (`SCHED_OTHER`), as a thread has by default.
    Other,
    /// Real-time first-in, first-out (`SCHED_FIFO`): runs until it blocks or a higher
    /// priority thread is runnable.
    Fifo {
        /// Real-time priority, 1 (lowest) to 99 on Linux.
        priority: u8,
    },
    /// Real-time round-robin (`SCHED_RR`): as `Fifo`, but threads of equal priority take
    /// turns in time slices.
    RoundRobin {
        /// Real-time priority, 1 (lowest) to 99 on Linux.
        priority: u8,
    },
}

impl SchedPolicy {
    /// The real-time priority, for the policies that have one.
    pub fn priority(self) -> Option<u8> {
        match self {
            SchedPolicy::Other => None,
            SchedPolicy::Fifo { priority } | SchedPolicy::RoundRobin { priority } => Some(priority),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_case_insensitively_and_reject_others() {
        assert_eq!("push".parse::<SocketKind>().unwrap(), SocketKind::Push);
        assert_eq!("ROUTER".parse::<SocketKind>().unwrap(), SocketKind::Router);
        let e = "stream".parse::<SocketKind>().unwrap_err().to_string();
        assert!(e.contains("stream") && e.contains("one of"), "{e}");
    }

    #[test]
    fn routing_id_bounds_are_checked() {
        let o = SocketOptions::default;
        assert!(o().routing_id(b"").is_err());
        assert!(o().routing_id(&[0, 1]).is_err());
        assert!(o().routing_id(&[1; 256]).is_err());
        let set = o().routing_id(b"client-1");
        assert!(set.is_ok());
        assert_eq!(set.unwrap().routing_id.as_deref(), Some(&b"client-1"[..]));
    }

    #[test]
    fn cores_parse_from_their_index_and_reject_others() {
        assert_eq!(" 7 ".parse::<CoreId>().unwrap(), CoreId::new(7));
        let e = "seven".parse::<CoreId>().unwrap_err().to_string();
        assert!(e.contains("seven") && e.contains("core index"), "{e}");
        assert!("-1".parse::<CoreId>().is_err());
    }

    #[test]
    fn full_policy_parses() {
        assert_eq!("drop".parse::<FullPolicy>().unwrap(), FullPolicy::Drop);
        assert!("lose".parse::<FullPolicy>().is_err());
    }
}
