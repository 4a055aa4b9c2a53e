//! Socket configuration: kinds, options and what to do at the high-water mark. Pure data.

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
/// others only to connections made afterwards). `None` leaves libzmq's default.
///
/// ```
/// use std::time::Duration;
/// let mut o = ztick::SocketOptions::default();
/// o.send_hwm(10_000).linger(Some(Duration::from_millis(500))).immediate(true);
/// assert_eq!(o.send_hwm, Some(10_000));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SocketOptions {
    /// Messages queued per peer on send before EAGAIN or drops (`ZMQ_SNDHWM`; libzmq: 1000, 0 = unlimited).
    pub send_hwm: Option<u32>,
    /// Messages queued per peer on receive (`ZMQ_RCVHWM`; libzmq: 1000, 0 = unlimited).
    pub recv_hwm: Option<u32>,
    /// How long close waits to flush queued messages (`ZMQ_LINGER`); `Some(None)` waits forever.
    /// ztick's own default is 1 s so that shutdown always ends; libzmq's is forever.
    pub linger: Option<Option<Duration>>,
    /// Keep only the last message (`ZMQ_CONFLATE`; single-frame messages only).
    pub conflate: Option<bool>,
    /// Queue only on completed connections (`ZMQ_IMMEDIATE`).
    pub immediate: Option<bool>,
    /// First reconnect delay (`ZMQ_RECONNECT_IVL`; libzmq: 100 ms).
    pub reconnect_interval: Option<Duration>,
    /// Reconnect back-off cap (`ZMQ_RECONNECT_IVL_MAX`; libzmq: 0 = no back-off).
    pub reconnect_interval_max: Option<Duration>,
    /// ZMTP heartbeat PING interval (`ZMQ_HEARTBEAT_IVL`; libzmq: off).
    pub heartbeat_interval: Option<Duration>,
    /// How long to wait for a PONG before closing (`ZMQ_HEARTBEAT_TIMEOUT`).
    pub heartbeat_timeout: Option<Duration>,
    /// How long the peer should wait for our traffic (`ZMQ_HEARTBEAT_TTL`, 100 ms resolution).
    pub heartbeat_ttl: Option<Duration>,
    /// Largest inbound message in bytes; bigger ones drop the connection (`ZMQ_MAXMSGSIZE`).
    pub max_msg_size: Option<u64>,
    /// This socket's identity as seen by a ROUTER peer (`ZMQ_ROUTING_ID`, 1-255 bytes).
    pub routing_id: Option<Vec<u8>>,
    /// CURVE encryption and authentication (`ZMQ_CURVE_*`); needs the system libzmq build.
    pub curve: Option<Curve>,
    /// The ZAP domain a server asks its authentication handler about (`ZMQ_ZAP_DOMAIN`).
    pub zap_domain: Option<String>,
}

impl SocketOptions {
    /// Sets the send high-water mark, in messages.
    pub fn send_hwm(&mut self, msgs: u32) -> &mut Self {
        self.send_hwm = Some(msgs);
        self
    }
    /// Sets the receive high-water mark, in messages.
    pub fn recv_hwm(&mut self, msgs: u32) -> &mut Self {
        self.recv_hwm = Some(msgs);
        self
    }
    /// Sets both high-water marks.
    pub fn hwm(&mut self, msgs: u32) -> &mut Self {
        self.send_hwm(msgs).recv_hwm(msgs)
    }
    /// Sets the linger; `None` waits forever.
    pub fn linger(&mut self, linger: Option<Duration>) -> &mut Self {
        self.linger = Some(linger);
        self
    }
    /// Turns conflation on or off.
    pub fn conflate(&mut self, on: bool) -> &mut Self {
        self.conflate = Some(on);
        self
    }
    /// Turns `ZMQ_IMMEDIATE` on or off.
    pub fn immediate(&mut self, on: bool) -> &mut Self {
        self.immediate = Some(on);
        self
    }
    /// Sets the first reconnect delay and the back-off cap.
    pub fn reconnect(&mut self, first: Duration, max: Duration) -> &mut Self {
        self.reconnect_interval = Some(first);
        self.reconnect_interval_max = Some(max);
        self
    }
    /// Turns on ZMTP heartbeats: PING every `interval`, drop the peer after `timeout`
    /// without a reply, and ask the peer to drop us after `ttl` of silence.
    pub fn heartbeat(&mut self, interval: Duration, timeout: Duration, ttl: Duration) -> &mut Self {
        self.heartbeat_interval = Some(interval);
        self.heartbeat_timeout = Some(timeout);
        self.heartbeat_ttl = Some(ttl);
        self
    }
    /// Sets the largest inbound message, in bytes.
    pub fn max_msg_size(&mut self, bytes: u64) -> &mut Self {
        self.max_msg_size = Some(bytes);
        self
    }
    /// Sets the routing id; it must be 1 to 255 bytes and must not start with a zero byte
    /// (libzmq reserves those for generated ids).
    pub fn routing_id(&mut self, id: &[u8]) -> Result<&mut Self, Error> {
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

    /// Makes the socket a CURVE server with `secret` (the system libzmq build only; the
    /// vendored build has no CURVE and opening such a socket fails with a clear error).
    pub fn curve_server(&mut self, secret: CurveKey) -> &mut Self {
        self.curve = Some(Curve::Server { secret });
        self
    }

    /// Makes the socket a CURVE client with its own `secret` key, for the server whose
    /// public key is `server`.
    pub fn curve_client(&mut self, secret: CurveKey, server: CurveKey) -> &mut Self {
        self.curve = Some(Curve::Client { secret, server });
        self
    }

    /// Sets the ZAP domain (`ZMQ_ZAP_DOMAIN`).
    pub fn zap_domain(&mut self, domain: &str) -> &mut Self {
        self.zap_domain = Some(domain.to_owned());
        self
    }

    /// The linger ztick applies when none is set: 1 s, so that closing never hangs.
    pub const DEFAULT_LINGER: Duration = Duration::from_secs(1);
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
        let mut o = SocketOptions::default();
        assert!(o.routing_id(b"").is_err());
        assert!(o.routing_id(&[0, 1]).is_err());
        assert!(o.routing_id(&[1; 256]).is_err());
        assert!(o.routing_id(b"client-1").is_ok());
        assert_eq!(o.routing_id.as_deref(), Some(&b"client-1"[..]));
    }

    #[test]
    fn full_policy_parses() {
        assert_eq!("drop".parse::<FullPolicy>().unwrap(), FullPolicy::Drop);
        assert!("lose".parse::<FullPolicy>().is_err());
    }
}
