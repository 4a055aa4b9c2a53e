//! Request/reply: a [`Replier`] that serves many clients on an engine worker, and a
//! [`Requester`] that asks from the calling thread, optionally retrying (the guide's Lazy
//! Pirate).

use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::envelope::{body_start, reply_parts, PeerContext};
use super::input::{check_body, wire_limit, InputCounters, InputStats, Malformed};
use super::socket::Socket;
use crate::config::{SocketKind, SocketOptions};
use crate::endpoint::Endpoint;
use crate::engine::{Engine, Handler, SocketId, SocketSpec, Worker, WorkerCtx};
use crate::error::{Error, Result};
use crate::message::codec;
use crate::message::Inbound;

/// What a serving closure returns: the reply frames, or why the request is refused.
pub(crate) type Served = std::result::Result<Vec<Vec<u8>>, (Malformed, String)>;

/// Configures a [`Replier`]; from [`Replier::builder`].
#[derive(Debug, Clone)]
pub struct ReplierBuilder {
    spec: SocketSpec,
    name: String,
    max_request_bytes: usize,
}

/// Serves requests from REQ, DEALER or Lazy Pirate clients, on a ROUTER socket owned by an
/// engine worker.
///
/// The routing envelope (everything up to the empty delimiter) is kept and put back on the
/// reply, so REQ clients, DEALER clients that send `[request id][""][body]`, and brokers in
/// between are all answered correctly. A malformed request (no envelope, empty, too large,
/// undecodable) is counted in [`Replier::input_stats`], traced with the peer's routing id,
/// and dropped without an answer; every other client goes on being served.
///
/// ```
/// use std::time::Duration;
/// use ztick::{Engine, Endpoint};
/// use ztick::patterns::{Replier, Requester};
///
/// let engine = Engine::new()?;
/// let replier = Replier::builder(Endpoint::unique_inproc("rr-doc"))
///     .spawn_typed(&engine, |(a, b): (u32, u32)| a + b)?;
/// let ep: Endpoint = replier.endpoint().parse()?;
/// let mut client = Requester::builder(ep).connect(&engine)?;
/// let sum: u32 = client.call(&(2u32, 3u32))?;
/// assert_eq!(sum, 5);
/// replier.stop()?;
/// # Ok::<(), ztick::Error>(())
/// ```
#[derive(Debug)]
pub struct Replier {
    worker: Worker,
    endpoint: String,
    counters: Arc<InputCounters>,
}

impl Replier {
    /// A replier that binds `endpoint` (use [`ReplierBuilder::connect`] to connect instead).
    pub fn builder(endpoint: Endpoint) -> ReplierBuilder {
        ReplierBuilder {
            spec: SocketSpec::bind(SocketKind::Router, endpoint),
            name: "replier".into(),
            max_request_bytes: ReplierBuilder::DEFAULT_MAX_REQUEST_BYTES,
        }
    }

    /// The endpoint it serves (a tcp `*` port resolved to the real one).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Requests handled and refused so far.
    pub fn input_stats(&self) -> InputStats {
        self.counters.snapshot()
    }

    /// Stops serving and closes the socket; returns the final counts.
    pub fn stop(self) -> Result<InputStats> {
        self.worker.stop()?;
        Ok(self.counters.snapshot())
    }
}

impl ReplierBuilder {
    /// The default request size limit: 1 MiB.
    pub const DEFAULT_MAX_REQUEST_BYTES: usize = 1 << 20;

    /// Connects to the endpoint instead of binding it (to serve behind a broker).
    pub fn connect(mut self) -> Self {
        self.spec.bind = false;
        self
    }

    /// Socket options (HWM, linger, ...), applied before bind or connect.
    pub fn options(mut self, options: SocketOptions) -> Self {
        self.spec.options = options;
        self
    }

    /// The worker's thread name (`ztick-NAME`).
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.to_owned();
        self
    }

    /// Requests whose body is larger than this are refused and counted (default 1 MiB).
    /// The socket's `ZMQ_MAXMSGSIZE`, unless its options set one, is twice this (at least
    /// 64 KiB more): a larger frame drops the client's connection instead.
    pub fn max_request_bytes(mut self, bytes: usize) -> Self {
        self.max_request_bytes = bytes;
        self
    }

    /// Starts serving raw frames: `serve` gets the request's body frames (envelope removed)
    /// and returns the reply's frames (none sends one empty frame).
    pub fn spawn<F>(self, engine: &Engine, mut serve: F) -> Result<Replier>
    where
        F: FnMut(&[&[u8]]) -> Vec<Vec<u8>> + Send + 'static,
    {
        self.spawn_with(engine, move |body: &[&[u8]]| Ok(serve(body)))
    }

    /// Starts serving typed requests: each body must be one frame holding a bincode-encoded
    /// `Req`; the `Resp` goes back the same way (see [`crate::codec`]).
    pub fn spawn_typed<Req, Resp, F>(self, engine: &Engine, mut serve: F) -> Result<Replier>
    where
        Req: DeserializeOwned,
        Resp: Serialize,
        F: FnMut(Req) -> Resp + Send + 'static,
    {
        self.spawn_with(engine, move |body: &[&[u8]]| {
            let [frame] = body else {
                return Err((Malformed::Frames, format!("{} body frames, expected 1", body.len())));
            };
            let req: Req =
                codec::decode(frame, "request").map_err(|e| (Malformed::Undecodable, e.to_string()))?;
            let resp = codec::encode(&serve(req)).map_err(|e| (Malformed::Undecodable, e.to_string()))?;
            Ok(vec![resp])
        })
    }

    pub(crate) fn spawn_with<F>(self, engine: &Engine, serve: F) -> Result<Replier>
    where
        F: FnMut(&[&[u8]]) -> Served + Send + 'static,
    {
        let counters = Arc::new(InputCounters::default());
        let mut b = engine.worker(&self.name);
        let mut spec = self.spec;
        spec.options = spec.options.max_msg_bytes_or(wire_limit(self.max_request_bytes));
        let socket = b.socket(spec);
        let handler = Serve {
            serve,
            socket,
            counters: Arc::clone(&counters),
            max_bytes: self.max_request_bytes,
            endpoint: String::new(),
        };
        let worker = b.handler(handler).spawn()?;
        let endpoint = worker.endpoint(socket).unwrap_or_default().to_owned();
        Ok(Replier { worker, endpoint, counters })
    }
}

/// The replier's worker code.
struct Serve<F> {
    serve: F,
    socket: SocketId,
    counters: Arc<InputCounters>,
    max_bytes: usize,
    /// Filled in at start, for traces.
    endpoint: String,
}

impl<F: FnMut(&[&[u8]]) -> Served + Send> Handler for Serve<F> {
    fn on_start(&mut self, ctx: &mut WorkerCtx<'_>) -> Result<()> {
        self.endpoint = ctx.endpoint(self.socket).unwrap_or_default().to_owned();
        Ok(())
    }

    fn on_message(&mut self, ctx: &mut WorkerCtx<'_>, socket: SocketId, msg: &Inbound<'_>) -> Result<()> {
        let frames: Vec<&[u8]> = msg.iter().collect();
        let peer = PeerContext { kind: "ROUTER", endpoint: &self.endpoint, id: frames.first().copied() };
        let Some(start) = body_start(&frames) else {
            self.counters.refuse(
                Malformed::Frames,
                &peer,
                &format_args!("{} frames, no envelope delimiter", frames.len()),
            );
            return Ok(());
        };
        let body = &frames[start..];
        if let Some((why, detail)) = check_body(body, self.max_bytes) {
            self.counters.refuse(why, &peer, &detail);
            return Ok(());
        }
        match (self.serve)(body) {
            Ok(reply) => {
                ctx.send_parts(socket, &reply_parts(&frames[..start], &reply))?;
                self.counters.handled();
            }
            Err((why, detail)) => self.counters.refuse(why, &peer, &detail),
        }
        Ok(())
    }
}

/// Configures a [`Requester`]; from [`Requester::builder`].
#[derive(Debug, Clone)]
pub struct RequesterBuilder {
    spec: SocketSpec,
    timeout: Duration,
    retries: u32,
}

impl RequesterBuilder {
    /// How long each try waits for its reply (default 2.5 s, the guide's figure).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How many times a request is sent again after a timeout (default 0). With retries
    /// this is the guide's Lazy Pirate: each retry closes and reopens the socket.
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// Socket options, applied before connecting. A short linger (ztick sets 0 here unless
    /// told otherwise) keeps a reopen from waiting on requests nobody will take.
    pub fn options(mut self, options: SocketOptions) -> Self {
        self.spec.options = options;
        self
    }

    /// Connects; the server need not be up yet (libzmq connects in the background).
    pub fn connect(mut self, engine: &Engine) -> Result<Requester> {
        if self.spec.options.linger.is_none() {
            self.spec.options.linger = Some(Some(Duration::ZERO));
        }
        let socket = Socket::open(engine, &self.spec)?;
        // Ids start at a clock reading, so a client that reuses a routing id after a restart
        // does not accept an answer meant for its previous life.
        let next_id = crate::sys::now_ns();
        Ok(Requester {
            socket,
            timeout: self.timeout,
            retries: self.retries,
            next_id,
            stats: RequesterStats::default(),
            frames: Vec::new(),
        })
    }
}

/// What a [`Requester`] has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequesterStats {
    /// Requests asked (not counting retries).
    pub requests: u64,
    /// Requests that got their answer.
    pub answered: u64,
    /// Tries sent again after a timeout.
    pub retries: u64,
    /// Requests that got no answer after every try.
    pub failed: u64,
    /// Replies thrown away: for an earlier try, or malformed.
    pub discarded: u64,
}

/// Sends requests and waits for their replies, from the calling thread, on a DEALER socket.
///
/// Each try carries a fresh request id in its routing envelope (`[id][""][body...]`), which
/// any ROUTER or REP server sends back untouched; a reply whose id is not the current try's
/// (a late answer to an earlier try) is discarded, never returned. After a timeout the
/// socket is closed and reopened before the next try, as the guide's Lazy Pirate does.
///
/// # Examples
///
/// ```
/// use ztick::patterns::{Replier, Requester};
/// use ztick::{Endpoint, Engine};
///
/// let engine = Engine::new()?;
/// let server = Replier::builder(Endpoint::unique_inproc("doc-upper"))
///     .spawn_typed(&engine, |word: String| word.to_uppercase())?;
/// let mut client = Requester::builder(server.endpoint().parse()?).connect(&engine)?;
/// let loud: String = client.call(&"tick".to_string())?;
/// assert_eq!((loud.as_str(), client.stats().answered), ("TICK", 1));
/// server.stop()?;
/// # Ok::<(), ztick::Error>(())
/// ```
#[derive(Debug)]
pub struct Requester {
    socket: Socket,
    timeout: Duration,
    retries: u32,
    next_id: u64,
    stats: RequesterStats,
    /// Reused receive buffers.
    frames: Vec<Vec<u8>>,
}

impl Requester {
    /// A requester for the server at `endpoint`.
    pub fn builder(endpoint: Endpoint) -> RequesterBuilder {
        RequesterBuilder {
            spec: SocketSpec::connect(SocketKind::Dealer, endpoint),
            timeout: Duration::from_millis(2500),
            retries: 0,
        }
    }

    /// Sends `body` as one request and returns the reply's frames.
    ///
    /// # Errors
    /// [`Error::NoReply`] when no try was answered in time; socket errors otherwise.
    pub fn request(&mut self, body: &[&[u8]]) -> Result<Vec<Vec<u8>>> {
        self.stats.requests += 1;
        for attempt in 0..=self.retries {
            if attempt > 0 {
                self.stats.retries += 1;
                self.socket.reopen()?;
                tracing::info!(endpoint = %self.socket.endpoint(), attempt, "no reply; retrying on a new socket");
            }
            let id = self.next_id.to_le_bytes();
            self.next_id = self.next_id.wrapping_add(1);
            let mut parts: Vec<&[u8]> = Vec::with_capacity(body.len() + 2);
            parts.extend([&id[..], &[][..]]);
            parts.extend_from_slice(body);
            match self.socket.send_timeout(&parts, self.timeout) {
                Ok(()) => {}
                Err(Error::Timeout { .. }) => continue,
                Err(e) => return Err(e),
            }
            if let Some(reply) = self.await_reply(&id)? {
                self.stats.answered += 1;
                return Ok(reply);
            }
        }
        self.stats.failed += 1;
        // Leave the socket fresh for the next request.
        self.socket.reopen()?;
        Err(Error::NoReply {
            endpoint: self.socket.endpoint().to_owned(),
            tries: self.retries + 1,
            each_ms: u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX),
        })
    }

    /// Sends a typed request (one bincode frame) and decodes the typed reply.
    ///
    /// # Errors
    /// As [`Requester::request`], plus [`Error::Decode`] when the reply is not a `Resp`.
    pub fn call<Req: Serialize, Resp: DeserializeOwned>(&mut self, req: &Req) -> Result<Resp> {
        let bytes = codec::encode(req)?;
        let reply = self.request(&[&bytes])?;
        let from = format!("reply from {}", self.socket.endpoint());
        match reply.as_slice() {
            [frame] => codec::decode(frame, &from),
            _ => Err(Error::Decode { context: from, reason: format!("{} frames, expected 1", reply.len()) }),
        }
    }

    /// What it has done so far.
    pub fn stats(&self) -> RequesterStats {
        self.stats
    }

    /// The server's endpoint.
    pub fn endpoint(&self) -> &str {
        self.socket.endpoint()
    }

    /// Waits up to the timeout for the reply to the try `id`, discarding others.
    fn await_reply(&mut self, id: &[u8]) -> Result<Option<Vec<Vec<u8>>>> {
        let deadline = std::time::Instant::now() + self.timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() || !self.socket.recv_into(&mut self.frames, left)? {
                return Ok(None);
            }
            match self.frames.as_slice() {
                [got, delim, ..] if got.as_slice() == id && delim.is_empty() => {
                    return Ok(Some(self.frames.split_off(2)));
                }
                _ => {
                    self.stats.discarded += 1;
                    tracing::debug!(endpoint = %self.socket.endpoint(), "discarded a reply that is not the current try's");
                }
            }
        }
    }
}
