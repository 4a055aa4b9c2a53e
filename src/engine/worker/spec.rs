//! What a worker's socket is: the [`SocketSpec`] a user describes it with, and the open
//! socket ([`Sock`]) the worker thread makes from it and holds until it ends.

use std::cell::RefCell;

use crate::config::{FullPolicy, SocketKind, SocketOptions};
use crate::curve::Curve;
use crate::endpoint::Endpoint;
use crate::engine::monitor::{MonitorState, MonitorStats, SocketMonitor, MONITOR_HWM_MSGS};
use crate::error::{Error, Operation, Result, ZmqErrno};
use crate::sys::{self, Msg, RawContext, RawSocket};

/// One socket a worker will own: its kind, where it binds or connects, and its options.
///
/// # Examples
///
/// ```
/// use ztick::{FullPolicy, SocketKind, SocketOptions, SocketSpec};
///
/// let spec = SocketSpec::connect(SocketKind::Sub, "tcp://127.0.0.1:5556".parse()?)
///     .subscribe("ticks.")
///     .options(SocketOptions::default().recv_hwm_msgs(10_000))
///     .on_full(FullPolicy::default())
///     .monitor(true);
/// assert!(!spec.bind && spec.monitor);
/// assert_eq!(spec.subscriptions, [b"ticks.".to_vec()]);
/// # Ok::<(), ztick::Error>(())
/// ```
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
    /// Turn libzmq's socket monitor on: the worker reads its events on every pass and turns
    /// each into a `tracing` event (target `ztick::monitor`: endpoint, peer, socket kind,
    /// the reason of a failed handshake) and a count, read with
    /// [`Worker::monitor`](crate::Worker::monitor) or
    /// [`WorkerCtx::monitor_stats`](crate::WorkerCtx::monitor_stats). Costs one more
    /// non-blocking receive per pass and an inproc PAIR socket. Default off.
    pub monitor: bool,
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
            monitor: false,
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

    /// Turns the socket monitor on or off (see [`SocketSpec::monitor`](#structfield.monitor)).
    pub fn monitor(mut self, on: bool) -> Self {
        self.monitor = on;
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
    /// The socket's monitor, when its spec asked for one.
    pub(super) monitor: Option<MonitorSock>,
}

/// The reading end of a socket's monitor, on the worker that owns the socket.
pub(super) struct MonitorSock {
    /// PAIR connected to the monitor's inproc endpoint, receive HWM [`MONITOR_HWM_MSGS`].
    pub(super) raw: RawSocket,
    /// Its `ZMQ_FD`, for sub-millisecond parks.
    pub(super) fd: std::os::fd::RawFd,
    /// The decoder and its reused frames; a `RefCell` because the loop lends its sockets
    /// out shared (this never leaves the worker thread).
    reader: RefCell<MonitorReader>,
}

struct MonitorReader {
    state: MonitorState,
    event: Msg,
    address: Msg,
}

impl MonitorSock {
    /// Reads, traces and counts the events waiting, at most `max`; how many were read.
    pub(super) fn drain(&self, max: usize) -> usize {
        let mut r = self.reader.borrow_mut();
        let r = &mut *r;
        let mut n = 0;
        while n < max {
            match self.raw.recv_msg(&mut r.event, true) {
                Ok(()) => {}
                Err(e) if e.is_again() || e.is_term() => break,
                Err(e) => {
                    tracing::warn!(target: "ztick::monitor", error = %e.message, "reading a socket monitor failed");
                    break;
                }
            }
            n += 1;
            // The address frame follows at once: libzmq delivers messages whole.
            let has_address = r.event.more() && self.raw.recv_msg(&mut r.address, false).is_ok();
            let address = if has_address { r.address.as_bytes() } else { &[][..] };
            r.state.on_message(r.event.as_bytes(), address);
            // A malformed message's further frames (none from libzmq) are skipped.
            while r.address.more() && self.raw.recv_msg(&mut r.address, false).is_ok() {}
        }
        n
    }

    /// The counts so far.
    pub(super) fn stats(&self) -> MonitorStats {
        self.reader.borrow().state.stats()
    }

    /// A handle on the counts, for other threads.
    pub(super) fn handle(&self) -> SocketMonitor {
        self.reader.borrow().state.handle()
    }
}

/// Starts `raw`'s monitor on a fresh inproc endpoint and connects the PAIR that reads it,
/// before `raw` binds or connects so that no event is missed (and none waits for a reader:
/// libzmq's monitor sends block until the PAIR is connected).
fn open_monitor(ctx: &RawContext, raw: &RawSocket, spec: &SocketSpec) -> Result<MonitorSock> {
    let kind = spec.kind.as_str();
    let ep = Endpoint::unique_inproc("ztick-monitor").to_string();
    let err =
        |op, source| Error::Zmq { op, kind, endpoint: Some(format!("{} (monitor)", spec.endpoint)), source };
    raw.monitor(&ep, sys::monitor_codes::ALL).map_err(|e| err(Operation::SetOption, e))?;
    let pair = RawSocket::new(ctx, SocketKind::Pair).map_err(|e| err(Operation::Socket, e))?;
    let opts =
        SocketOptions::default().recv_hwm_msgs(MONITOR_HWM_MSGS).linger(Some(std::time::Duration::ZERO));
    pair.apply(&opts).map_err(|(_, e)| err(Operation::SetOption, e))?;
    pair.connect(&ep).map_err(|e| err(Operation::Connect, e))?;
    let fd = pair.fd().map_err(|e| err(Operation::GetOption, e))?;
    let curve_client = matches!(spec.options.curve, Some(Curve::Client { .. }));
    let state = MonitorState::new(spec.kind, &spec.endpoint.to_string(), curve_client);
    let reader = RefCell::new(MonitorReader { state, event: Msg::new(), address: Msg::new() });
    Ok(MonitorSock { raw: pair, fd, reader })
}

/// A libzmq failure of `op` on `sock`, with the socket's kind and endpoint.
pub(super) fn zmq_err(op: Operation, sock: &Sock, source: ZmqErrno) -> Error {
    Error::Zmq { op, kind: sock.raw.kind().as_str(), endpoint: Some(sock.endpoint.clone()), source }
}

/// Creates, configures and binds/connects every socket, in order.
pub(super) fn open_sockets(ctx: &RawContext, specs: &[SocketSpec]) -> Result<Vec<Sock>> {
    let mut socks = Vec::with_capacity(specs.len());
    for spec in specs {
        let raw = create_socket(ctx, spec)?;
        let mut monitor = if spec.monitor { Some(open_monitor(ctx, &raw, spec)?) } else { None };
        let endpoint = attach(&raw, spec)?;
        if let Some(m) = monitor.as_mut() {
            m.reader.get_mut().state.set_endpoint(&endpoint);
        }
        let fd = raw.fd().map_err(|e| Error::Zmq {
            op: Operation::GetOption,
            kind: spec.kind.as_str(),
            endpoint: Some(endpoint.clone()),
            source: e,
        })?;
        socks.push(Sock { raw, fd, endpoint, on_full: spec.on_full, monitor });
    }
    Ok(socks)
}

/// Creates one socket as `spec` says: options first (libzmq applies most of them only to
/// connections made afterwards), with ztick's defaults for the linger and the frame size
/// limit (`ZMQ_MAXMSGSIZE`: no socket receives unbounded frames), then bind or connect.
/// Returns the socket and its endpoint (for a bind, the one libzmq resolved, with the real
/// tcp port).
pub(crate) fn open_socket(ctx: &RawContext, spec: &SocketSpec) -> Result<(RawSocket, String)> {
    let raw = create_socket(ctx, spec)?;
    let endpoint = attach(&raw, spec)?;
    Ok((raw, endpoint))
}

/// Creates and configures one socket as `spec` says, without binding or connecting it.
fn create_socket(ctx: &RawContext, spec: &SocketSpec) -> Result<RawSocket> {
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
    Ok(raw)
}

/// Binds or connects a socket made by [`create_socket`]; the endpoint (for a bind, the one
/// libzmq resolved).
fn attach(raw: &RawSocket, spec: &SocketSpec) -> Result<String> {
    let ep = spec.endpoint.to_string();
    let err = |op, source| Error::Zmq { op, kind: spec.kind.as_str(), endpoint: Some(ep.clone()), source };
    if spec.bind {
        raw.bind(&ep).map_err(|e| err(Operation::Bind, e))
    } else {
        raw.connect(&ep).map_err(|e| err(Operation::Connect, e))?;
        Ok(ep.clone())
    }
}
