//! DEALER/ROUTER: an asynchronous server for many clients. Requests and replies are not
//! paired: a handler may answer at once, later (from any thread), several times, or never,
//! and ztick keeps each client's routing envelope so answers reach the right one.

use std::sync::Arc;

use super::envelope::{PeerContext, PeerId};
use super::input::{check_body, wire_limit, InputCounters, InputStats, Malformed};
use crate::config::{SocketKind, SocketOptions};
use crate::endpoint::Endpoint;
use crate::engine::{Engine, Handle, Handler, SocketId, SocketSpec, Worker, WorkerCtx};
use crate::error::{Error, Result};
use crate::message::{Frame, Inbound, Outbound};

/// A client as a ROUTER sees it: its routing id and, for REQ clients, the rest of the
/// envelope up to the empty delimiter. Keep it to answer later with [`Router::send_to`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Peer {
    /// The envelope frames, routing id first.
    envelope: Vec<Vec<u8>>,
}

impl Peer {
    /// The client's routing id (libzmq's generated 5 bytes, or the one it set).
    pub fn id(&self) -> &[u8] {
        self.envelope.first().map(Vec::as_slice).unwrap_or(&[])
    }

    fn parts<'a>(&'a self, body: &[&'a [u8]]) -> Vec<&'a [u8]> {
        let mut parts: Vec<&[u8]> = self.envelope.iter().map(Vec::as_slice).collect();
        parts.extend_from_slice(body);
        parts
    }
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        PeerId(self.id()).fmt(f)
    }
}

/// Where a [`Router`] handler sends its answers: to the client that asked or to any other.
#[derive(Debug)]
pub struct Replies<'c, 'w> {
    ctx: &'c mut WorkerCtx<'w>,
    socket: SocketId,
}

impl Replies<'_, '_> {
    /// Sends `body` to `peer` as one message, its envelope put in front.
    ///
    /// A client that has gone away is skipped silently (a ROUTER drops messages for
    /// unknown peers), as the guide's asynchronous server expects.
    pub fn send(&mut self, peer: &Peer, body: &[&[u8]]) -> Result<()> {
        self.ctx.send_parts(self.socket, &peer.parts(body))
    }
}

/// Configures a [`Router`]; from [`Router::builder`].
#[derive(Debug, Clone)]
pub struct RouterBuilder {
    spec: SocketSpec,
    name: String,
    max_request_bytes: usize,
}

/// An asynchronous server on a ROUTER socket owned by an engine worker.
///
/// DEALER clients may send plain `[body...]`; REQ clients (and DEALERs that imitate them)
/// send `[""][body...]`; both are answered with the envelope they came with. Malformed input
/// (nothing after the envelope, an empty body, over the size limit) is counted in
/// [`Router::input_stats`] and traced with the peer's id; other clients go on being served.
///
/// ```
/// use std::time::Duration;
/// use ztick::{Engine, Endpoint, SocketKind, SocketOptions};
/// use ztick::patterns::{Router, Socket};
///
/// let engine = Engine::new()?;
/// // Answers every request twice: an acknowledgement, then the result.
/// let router = Router::builder(Endpoint::unique_inproc("router-doc")).spawn(&engine, |out, peer, body| {
///     out.send(peer, &[b"ack"])?;
///     out.send(peer, &[&body[0].repeat(2)])
/// })?;
/// let ep: Endpoint = router.endpoint().parse()?;
/// let mut dealer = Socket::connect(&engine, SocketKind::Dealer, &ep, &SocketOptions::default())?;
/// dealer.send(&[b"ab"])?;
/// assert_eq!(dealer.recv_timeout(Duration::from_secs(5))?, vec![b"ack".to_vec()]);
/// assert_eq!(dealer.recv_timeout(Duration::from_secs(5))?, vec![b"abab".to_vec()]);
/// router.stop()?;
/// # Ok::<(), ztick::Error>(())
/// ```
#[derive(Debug)]
pub struct Router {
    worker: Worker,
    socket: SocketId,
    endpoint: String,
    counters: Arc<InputCounters>,
}

impl Router {
    /// A router that binds `endpoint`.
    pub fn builder(endpoint: Endpoint) -> RouterBuilder {
        RouterBuilder {
            spec: SocketSpec::bind(SocketKind::Router, endpoint),
            name: "router".into(),
            max_request_bytes: RouterBuilder::DEFAULT_MAX_REQUEST_BYTES,
        }
    }

    /// The endpoint it serves (a tcp `*` port resolved to the real one).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Sends `body` to `peer` from any thread (through the worker's queue).
    pub fn send_to(&self, peer: &Peer, body: &[&[u8]]) -> Result<()> {
        self.sender().send_to(peer, body)
    }

    /// A cloneable sender for answering from other threads.
    pub fn sender(&self) -> RouterSender {
        RouterSender { handle: self.worker.handle(), socket: self.socket }
    }

    /// Messages handled and refused so far.
    pub fn input_stats(&self) -> InputStats {
        self.counters.snapshot()
    }

    /// Stops serving (queued answers are flushed first, within the drain time); returns the
    /// final counts.
    pub fn stop(self) -> Result<InputStats> {
        self.worker.stop()?;
        Ok(self.counters.snapshot())
    }
}

/// Sends answers to a [`Router`]'s clients from any thread; from [`Router::sender`].
#[derive(Debug, Clone)]
pub struct RouterSender {
    handle: Handle,
    socket: SocketId,
}

impl RouterSender {
    /// Sends `body` to `peer`, blocking while the worker's queue is full.
    pub fn send_to(&self, peer: &Peer, body: &[&[u8]]) -> Result<()> {
        let frames = peer.parts(body).into_iter().map(|f| Frame::bytes(f.to_vec()));
        let msg =
            Outbound::multipart(frames).ok_or_else(|| Error::config("body", "[]", "at least one frame"))?;
        self.handle.send(self.socket, msg).map_err(|e| Error::Stopped(format!("router: {e}")))
    }
}

impl RouterBuilder {
    /// The default message size limit: 1 MiB.
    pub const DEFAULT_MAX_REQUEST_BYTES: usize = 1 << 20;

    /// Socket options (HWM, linger, ...), applied before binding.
    pub fn options(mut self, options: SocketOptions) -> Self {
        self.spec.options = options;
        self
    }

    /// The worker's thread name (`ztick-NAME`).
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.to_owned();
        self
    }

    /// Messages whose body is larger than this are refused and counted (default 1 MiB).
    /// The socket's `ZMQ_MAXMSGSIZE`, unless its options set one, is twice this (at least
    /// 64 KiB more): a larger frame drops the client's connection instead.
    pub fn max_request_bytes(mut self, bytes: usize) -> Self {
        self.max_request_bytes = bytes;
        self
    }

    /// Starts serving: `handle` runs on the worker for every well-formed message, with the
    /// sender and the body frames (envelope removed). An error it returns is counted and
    /// traced by the worker, and serving goes on.
    pub fn spawn<F>(self, engine: &Engine, handle: F) -> Result<Router>
    where
        F: FnMut(&mut Replies<'_, '_>, &Peer, &[&[u8]]) -> Result<()> + Send + 'static,
    {
        let counters = Arc::new(InputCounters::default());
        let mut b = engine.worker(&self.name);
        let mut spec = self.spec;
        spec.options = spec.options.max_msg_bytes_or(wire_limit(self.max_request_bytes));
        let socket = b.socket(spec);
        let handler = Serve {
            handle,
            socket,
            counters: Arc::clone(&counters),
            max_bytes: self.max_request_bytes,
            endpoint: String::new(),
        };
        let worker = b.handler(handler).spawn()?;
        let endpoint = worker.endpoint(socket).unwrap_or_default().to_owned();
        Ok(Router { worker, socket, endpoint, counters })
    }
}

struct Serve<F> {
    handle: F,
    socket: SocketId,
    counters: Arc<InputCounters>,
    max_bytes: usize,
    endpoint: String,
}

impl<F> Handler for Serve<F>
where
    F: FnMut(&mut Replies<'_, '_>, &Peer, &[&[u8]]) -> Result<()> + Send,
{
    fn on_start(&mut self, ctx: &mut WorkerCtx<'_>) -> Result<()> {
        self.endpoint = ctx.endpoint(self.socket).unwrap_or_default().to_owned();
        Ok(())
    }

    fn on_message(&mut self, ctx: &mut WorkerCtx<'_>, socket: SocketId, msg: &Inbound<'_>) -> Result<()> {
        let frames: Vec<&[u8]> = msg.iter().collect();
        let peer_ctx = PeerContext { kind: "ROUTER", endpoint: &self.endpoint, id: frames.first().copied() };
        // REQ-style clients end their envelope with an empty frame; plain DEALERs have none.
        let start = match frames.iter().skip(1).position(|f| f.is_empty()) {
            Some(i) => i + 2,
            None => 1,
        };
        let body = frames.get(start..).unwrap_or(&[]);
        let refused = if frames.len() < 2 {
            Some((Malformed::Frames, format!("{} frame(s), no body after the routing id", frames.len())))
        } else {
            check_body(body, self.max_bytes)
        };
        if let Some((why, detail)) = refused {
            self.counters.refuse(why, &peer_ctx, &detail);
            return Ok(());
        }
        let peer = Peer { envelope: frames[..start].iter().map(|f| f.to_vec()).collect() };
        self.counters.handled();
        (self.handle)(&mut Replies { ctx, socket }, &peer, body)
    }
}
