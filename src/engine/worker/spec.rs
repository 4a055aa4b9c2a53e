//! What a worker's socket is: the [`SocketSpec`] a user describes it with, and the open
//! socket ([`Sock`]) the worker thread makes from it and holds until it ends.

use crate::config::{FullPolicy, SocketKind, SocketOptions};
use crate::endpoint::Endpoint;
use crate::error::{Error, Operation, Result, ZmqErrno};
use crate::sys::{RawContext, RawSocket};

/// One socket a worker will own: its kind, where it binds or connects, and its options.
#[derive(Debug, Clone)]
pub struct SocketSpec {
    /// The socket kind.
    pub kind: SocketKind,
    /// Where to bind or connect.
    pub endpoint: Endpoint,
    /// Bind (true) or connect (false).
    pub bind: bool,
    /// Options applied before bind/connect.
    pub options: SocketOptions,
    /// What a send does at the HWM.
    pub on_full: FullPolicy,
    /// Topic prefixes for a SUB socket (none: the socket receives nothing until told).
    pub subscriptions: Vec<Vec<u8>>,
    /// For PUB/XPUB: return EAGAIN at the HWM instead of dropping (`ZMQ_XPUB_NODROP`), so
    /// `on_full` decides; costs the publisher's pace when a subscriber is slow.
    pub xpub_nodrop: bool,
    /// For XPUB: pass on every subscription, duplicates included (`ZMQ_XPUB_VERBOSE`), so
    /// each subscriber's arrival is seen even when another subscribed to the same prefix.
    pub xpub_verbose: bool,
}

impl SocketSpec {
    /// A socket that binds `endpoint`.
    pub fn bind(kind: SocketKind, endpoint: Endpoint) -> Self {
        SocketSpec::new(kind, endpoint, true)
    }

    /// A socket that connects to `endpoint`.
    pub fn connect(kind: SocketKind, endpoint: Endpoint) -> Self {
        SocketSpec::new(kind, endpoint, false)
    }

    fn new(kind: SocketKind, endpoint: Endpoint, bind: bool) -> Self {
        SocketSpec {
            kind,
            endpoint,
            bind,
            options: SocketOptions::default(),
            on_full: FullPolicy::default(),
            subscriptions: Vec::new(),
            xpub_nodrop: false,
            xpub_verbose: false,
        }
    }

    /// Replaces the options.
    pub fn options(mut self, options: SocketOptions) -> Self {
        self.options = options;
        self
    }

    /// Sets the HWM policy.
    pub fn on_full(mut self, policy: FullPolicy) -> Self {
        self.on_full = policy;
        self
    }

    /// Adds a topic-prefix subscription (SUB sockets).
    pub fn subscribe(mut self, prefix: impl Into<Vec<u8>>) -> Self {
        self.subscriptions.push(prefix.into());
        self
    }

    /// Turns `ZMQ_XPUB_VERBOSE` on (XPUB sockets).
    pub fn xpub_verbose(mut self, on: bool) -> Self {
        self.xpub_verbose = on;
        self
    }

    /// Turns `ZMQ_XPUB_NODROP` on (PUB/XPUB sockets).
    pub fn xpub_nodrop(mut self, on: bool) -> Self {
        self.xpub_nodrop = on;
        self
    }
}

/// A socket as its worker holds it.
pub(super) struct Sock {
    pub(super) raw: RawSocket,
    /// `ZMQ_FD`, for sub-millisecond parks.
    pub(super) fd: std::os::fd::RawFd,
    pub(super) endpoint: String,
    pub(super) on_full: FullPolicy,
}

/// A libzmq failure of `op` on `sock`, with the socket's kind and endpoint.
pub(super) fn zmq_err(op: Operation, sock: &Sock, source: ZmqErrno) -> Error {
    Error::Zmq { op, kind: sock.raw.kind().as_str(), endpoint: Some(sock.endpoint.clone()), source }
}

/// Creates, configures and binds/connects every socket, in order.
pub(super) fn open_sockets(ctx: &RawContext, specs: &[SocketSpec]) -> Result<Vec<Sock>> {
    let mut socks = Vec::with_capacity(specs.len());
    for spec in specs {
        let (raw, endpoint) = open_socket(ctx, spec)?;
        let fd = raw.fd().map_err(|e| Error::Zmq {
            op: Operation::GetOption,
            kind: spec.kind.as_str(),
            endpoint: Some(endpoint.clone()),
            source: e,
        })?;
        socks.push(Sock { raw, fd, endpoint, on_full: spec.on_full });
    }
    Ok(socks)
}

/// Creates one socket as `spec` says: options first (libzmq applies most of them only to
/// connections made afterwards), with ztick's defaults for the linger and the frame size
/// limit (`ZMQ_MAXMSGSIZE`: no socket receives unbounded frames), then bind or connect.
/// Returns the socket and its endpoint (for a bind, the one libzmq resolved, with the real
/// tcp port).
pub(crate) fn open_socket(ctx: &RawContext, spec: &SocketSpec) -> Result<(RawSocket, String)> {
    let kind = spec.kind.as_str();
    let ep = spec.endpoint.to_string();
    let err = |op, source| Error::Zmq { op, kind, endpoint: Some(ep.clone()), source };
    if spec.options.curve.is_some() {
        crate::curve::require()?;
    }
    let raw = RawSocket::new(ctx, spec.kind).map_err(|e| err(Operation::Socket, e))?;
    let mut opts = spec.options.clone();
    if opts.linger.is_none() {
        opts.linger = Some(Some(SocketOptions::DEFAULT_LINGER));
    }
    opts.max_msg_bytes = Some(opts.effective_max_msg_bytes(spec.kind));
    raw.apply(&opts).map_err(|(name, e)| {
        if name == crate::sys::ZAP_ENFORCE_DOMAIN_OPTION && e.errno == libc::EINVAL {
            return Error::Unsupported {
                feature: format!("ZMQ_ZAP_ENFORCE_DOMAIN (a {kind} socket at {ep} with a ZAP domain)"),
                hint: "this libzmq has no DRAFT API, so a ZAP domain cannot be made to fail closed; build \
                       against the system libzmq (scripts/system-libzmq.sh), or opt out with \
                       SocketOptions::zap_enforce_domain(false) and accept that clients are admitted \
                       while no ZAP handler runs"
                    .into(),
            };
        }
        Error::Zmq {
            op: Operation::SetOption,
            kind,
            endpoint: Some(format!("{ep} (option {name})")),
            source: e,
        }
    })?;
    if spec.xpub_verbose {
        raw.set_xpub_verbose(true).map_err(|e| err(Operation::SetOption, e))?;
    }
    if spec.xpub_nodrop {
        raw.set_xpub_nodrop(true).map_err(|e| err(Operation::SetOption, e))?;
    }
    for prefix in &spec.subscriptions {
        raw.subscribe(prefix).map_err(|e| err(Operation::SetOption, e))?;
    }
    let endpoint = if spec.bind {
        raw.bind(&ep).map_err(|e| err(Operation::Bind, e))?
    } else {
        raw.connect(&ep).map_err(|e| err(Operation::Connect, e))?;
        ep.clone()
    };
    Ok((raw, endpoint))
}
