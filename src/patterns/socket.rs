//! A libzmq socket driven from the calling thread: the client side of the patterns, where
//! a call waits for its answer and a hop to a worker thread would only add latency.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{SocketKind, SocketOptions};
use crate::endpoint::Endpoint;
use crate::engine::monitor::MonitorState;
use crate::engine::{open_socket, Engine, SocketSpec};
use crate::error::{Error, Operation, Result, ZmqErrno};
use crate::patterns::PeerMonitor;
use crate::sys::{self, Msg, RawContext, RawSocket};

/// How long a send refused by a PUB/XPUB at the HWM waits before trying again (see
/// `RawSocket::wait_room`).
const PUB_RETRY: Duration = Duration::from_micros(200);

/// A libzmq socket owned by one thread at a time: `Send`, not `Sync`, like libzmq's own.
///
/// Every receive returns whole messages (libzmq delivers the frames of one message together
/// or not at all) and every send is one atomic multipart message.
///
/// A peer cannot make a receive hold more than [`SocketOptions::MAX_FRAMES`] frames: a
/// message with more is discarded frame by frame, counted in [`Socket::refused`] and
/// traced, and the receive goes on waiting for the next message. Frames are limited in
/// size by the socket's `ZMQ_MAXMSGSIZE` ([`SocketOptions::max_msg_bytes`]).
///
/// ```
/// use ztick::{Engine, Endpoint, SocketKind, SocketOptions};
/// use ztick::patterns::Socket;
///
/// let engine = Engine::new()?;
/// let ep = Endpoint::unique_inproc("socket-doc");
/// let mut a = Socket::bind(&engine, SocketKind::Pair, &ep, &SocketOptions::default())?;
/// let mut b = Socket::connect(&engine, SocketKind::Pair, &ep, &SocketOptions::default())?;
/// a.send(&[b"topic", b"body"])?;
/// assert_eq!(b.recv()?, vec![b"topic".to_vec(), b"body".to_vec()]);
/// # Ok::<(), ztick::Error>(())
/// ```
///
/// # Threads
///
/// A socket may move to another thread, which then owns it:
///
/// ```
/// use ztick::{Engine, Endpoint, SocketKind, SocketOptions};
/// use ztick::patterns::Socket;
///
/// let engine = Engine::new()?;
/// let ep = Endpoint::unique_inproc("socket-moved");
/// let socket = Socket::bind(&engine, SocketKind::Pair, &ep, &SocketOptions::default())?;
/// let kind = std::thread::spawn(move || socket.kind()).join().unwrap();
/// assert_eq!(kind, SocketKind::Pair);
/// # Ok::<(), ztick::Error>(())
/// ```
///
/// but two threads can never use one at once: libzmq sockets are not thread-safe, so a
/// `Socket` is not `Sync` and the compiler refuses to share it (this would compile if it
/// were):
///
/// ```compile_fail,E0277
/// use ztick::{Engine, Endpoint, SocketKind, SocketOptions};
/// use ztick::patterns::Socket;
///
/// let engine = Engine::new()?;
/// let ep = Endpoint::unique_inproc("socket-shared");
/// let socket = Socket::bind(&engine, SocketKind::Pair, &ep, &SocketOptions::default())?;
/// std::thread::scope(|s| {
///     // Both threads hold `&Socket`: that needs `Socket: Sync`.
///     s.spawn(|| socket.endpoint().len());
///     s.spawn(|| socket.endpoint().len());
/// });
/// # Ok::<(), ztick::Error>(())
/// ```
///
/// The types built on one ([`PairEnd`](super::PairEnd), [`Requester`](super::Requester),
/// [`PeerMonitor`]) follow the same rules.
pub struct Socket {
    /// Declared before `ctx`, so the socket closes before the context can terminate.
    raw: RawSocket,
    endpoint: String,
    /// Reused for every frame received.
    msg: Msg,
    /// How it was opened, for [`Socket::reopen`].
    spec: SocketSpec,
    /// Messages discarded for having more than `MAX_FRAMES` frames.
    refused: u64,
    ctx: Arc<RawContext>,
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket").field("kind", &self.raw.kind()).field("endpoint", &self.endpoint).finish()
    }
}

impl Socket {
    /// Opens a socket as `spec` says (options, then bind or connect) in `engine`'s context.
    pub fn open(engine: &Engine, spec: &SocketSpec) -> Result<Socket> {
        Socket::open_in(engine.context(), spec)
    }

    fn open_in(ctx: &Arc<RawContext>, spec: &SocketSpec) -> Result<Socket> {
        let (raw, endpoint) = open_socket(ctx, spec)?;
        Ok(Socket { raw, endpoint, msg: Msg::new(), spec: spec.clone(), refused: 0, ctx: Arc::clone(ctx) })
    }

    /// Closes the socket and opens a fresh one the same way: what a client does after a
    /// timeout, since a REQ socket that sent and got no answer cannot send again (EFSM),
    /// and a new socket also drops anything queued for the old connection. The old socket
    /// closes with its linger, so a short one (or zero) makes this quick. Meant for
    /// connecting sockets: a bound one would bind its endpoint again.
    pub fn reopen(&mut self) -> Result<()> {
        let (raw, endpoint) = open_socket(&self.ctx, &self.spec)?;
        // The assignment drops (closes) the old socket.
        self.raw = raw;
        self.endpoint = endpoint;
        Ok(())
    }

    /// A socket of `kind` bound to `endpoint`.
    pub fn bind(
        engine: &Engine,
        kind: SocketKind,
        endpoint: &Endpoint,
        options: &SocketOptions,
    ) -> Result<Socket> {
        Socket::open(engine, &SocketSpec::bind(kind, endpoint.clone()).options(options.clone()))
    }

    /// A socket of `kind` connected to `endpoint` (libzmq connects in the background and
    /// reconnects by itself; messages queue meanwhile, up to the HWM).
    pub fn connect(
        engine: &Engine,
        kind: SocketKind,
        endpoint: &Endpoint,
        options: &SocketOptions,
    ) -> Result<Socket> {
        Socket::open(engine, &SocketSpec::connect(kind, endpoint.clone()).options(options.clone()))
    }

    /// The socket's kind.
    pub fn kind(&self) -> SocketKind {
        self.raw.kind()
    }

    /// The endpoint: for a bind, the one libzmq resolved (a tcp `*` port becomes the real one).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Sends `frames` as one message, blocking while the HWM is reached (libzmq's behaviour
    /// for PUSH, DEALER, REQ and PAIR; PUB drops instead).
    pub fn send(&mut self, frames: &[&[u8]]) -> Result<()> {
        self.send_frames(frames, false).map_err(|e| self.err(Operation::Send, e))
    }

    /// Sends `frames` as one message, waiting at most `timeout` for room.
    ///
    /// # Errors
    /// [`Error::Timeout`] when the peer did not take it in time (nothing was sent).
    pub fn send_timeout(&mut self, frames: &[&[u8]], timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.send_frames(frames, true) {
                Ok(()) => return Ok(()),
                Err(e) if e.is_again() => {}
                Err(e) => return Err(self.err(Operation::Send, e)),
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.timeout(Operation::Send, timeout));
            }
            self.raw.wait_room(left, PUB_RETRY).map_err(|e| self.err(Operation::Poll, e))?;
        }
    }

    /// Sends `frames` as one message if there is room now; `Ok(false)` when the HWM is reached.
    pub fn try_send(&mut self, frames: &[&[u8]]) -> Result<bool> {
        match self.send_frames(frames, true) {
            Ok(()) => Ok(true),
            Err(e) if e.is_again() => Ok(false),
            Err(e) => Err(self.err(Operation::Send, e)),
        }
    }

    /// Receives one whole message, waiting for as long as it takes.
    pub fn recv(&mut self) -> Result<Vec<Vec<u8>>> {
        let mut frames = Vec::new();
        while !self.recv_frames(&mut frames, false).map_err(|e| self.err(Operation::Recv, e))? {}
        Ok(frames)
    }

    /// Messages received and discarded so far for having more than
    /// [`SocketOptions::MAX_FRAMES`] frames (each also traced).
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// Receives one whole message, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`Error::Timeout`] when nothing arrived in time.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Vec<Vec<u8>>> {
        let mut frames = Vec::new();
        if self.recv_into(&mut frames, timeout)? {
            Ok(frames)
        } else {
            Err(self.timeout(Operation::Recv, timeout))
        }
    }

    /// Receives one whole message into `frames` (cleared first, its buffers reused), waiting
    /// at most `timeout`; `Ok(false)` when nothing arrived in time.
    pub fn recv_into(&mut self, frames: &mut Vec<Vec<u8>>, timeout: Duration) -> Result<bool> {
        self.recv_watching(frames, timeout, None)
    }

    /// As [`Socket::recv_into`], while taking `peers`' events as they come
    /// ([`PeerMonitor::pump`]): the way to wait on a monitored socket, so that peers that
    /// connect and hang up in a loop cannot grow the monitor's queue while nothing else
    /// arrives.
    ///
    /// # Errors
    /// As [`Socket::recv_into`], and a failure to read the monitor.
    pub fn recv_into_watching(
        &mut self,
        frames: &mut Vec<Vec<u8>>,
        timeout: Duration,
        peers: &mut PeerMonitor,
    ) -> Result<bool> {
        self.recv_watching(frames, timeout, Some(peers))
    }

    fn recv_watching(
        &mut self,
        frames: &mut Vec<Vec<u8>>,
        timeout: Duration,
        mut peers: Option<&mut PeerMonitor>,
    ) -> Result<bool> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(p) = peers.as_deref_mut() {
                p.pump()?;
            }
            match self.recv_frames(frames, true) {
                Ok(true) => return Ok(true),
                // Discarded: the next message may be here already.
                Ok(false) => continue,
                Err(e) if e.is_again() => {}
                Err(e) => return Err(self.err(Operation::Recv, e)),
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            self.wait_readable(left, peers.as_deref_mut())?;
        }
    }

    /// Adds a topic prefix to a SUB socket's filter (an empty prefix takes everything).
    pub fn subscribe(&mut self, prefix: &[u8]) -> Result<()> {
        self.raw.subscribe(prefix).map_err(|e| self.err(Operation::SetOption, e))
    }

    /// Removes a prefix added by [`Socket::subscribe`].
    pub fn unsubscribe(&mut self, prefix: &[u8]) -> Result<()> {
        self.raw.unsubscribe(prefix).map_err(|e| self.err(Operation::SetOption, e))
    }

    /// Makes a PUB/XPUB socket return EAGAIN at the HWM instead of dropping (`ZMQ_XPUB_NODROP`).
    pub fn set_xpub_nodrop(&mut self, on: bool) -> Result<()> {
        self.raw.set_xpub_nodrop(on).map_err(|e| self.err(Operation::SetOption, e))
    }

    /// Makes an XPUB socket pass on duplicate subscriptions (`ZMQ_XPUB_VERBOSE`).
    pub fn set_xpub_verbose(&mut self, on: bool) -> Result<()> {
        self.raw.set_xpub_verbose(on).map_err(|e| self.err(Operation::SetOption, e))
    }

    /// Starts reporting this socket's peer arrivals (ZMTP handshake done) and departures
    /// (libzmq's socket monitor), to be read from the returned [`PeerMonitor`].
    ///
    /// One monitor per socket: a second call replaces the first, whose monitor then sees
    /// nothing more, and so does [`Socket::reopen`] (the new socket is not monitored).
    ///
    /// # Errors
    /// [`Error::Zmq`] when libzmq refuses to start the monitor or its socket cannot open.
    pub fn monitor_peers(&mut self) -> Result<PeerMonitor> {
        let endpoint = Endpoint::unique_inproc("ztick-peer-monitor");
        self.raw
            .monitor(&endpoint.to_string(), sys::monitor_codes::PEER_EVENTS)
            .map_err(|e| self.err(Operation::SetOption, e))?;
        // A bounded HWM, never 0: an unread monitor must not grow without limit (see
        // PeerMonitor: read it as events come, as recv_into_watching does).
        let options = SocketOptions::default().recv_hwm_msgs(PeerMonitor::HWM_MSGS);
        let spec = SocketSpec::connect(SocketKind::Pair, endpoint).options(options);
        let curve_client = matches!(self.spec.options.curve, Some(crate::curve::Curve::Client { .. }));
        let state = MonitorState::new(self.raw.kind(), &self.endpoint, curve_client);
        Ok(PeerMonitor::new(Socket::open_in(&self.ctx, &spec)?, state))
    }

    /// Waits until a message can be received, at most `timeout`; whether one can.
    pub fn readable(&mut self, timeout: Duration) -> Result<bool> {
        self.wait_readable(timeout, None)
    }

    fn send_frames(&mut self, frames: &[&[u8]], dont_wait: bool) -> std::result::Result<(), ZmqErrno> {
        // A message has at least one frame; send an empty one rather than nothing.
        let frames = if frames.is_empty() { &[&[][..]][..] } else { frames };
        self.raw.send_parts(frames, dont_wait)
    }

    /// Receives one message into `frames`; false when it had more than `MAX_FRAMES` frames
    /// and was discarded (counted and traced) instead.
    fn recv_frames(
        &mut self,
        frames: &mut Vec<Vec<u8>>,
        dont_wait: bool,
    ) -> std::result::Result<bool, ZmqErrno> {
        let mut n = 0;
        loop {
            // Later frames of a message are already here: libzmq delivers them together.
            self.raw.recv_msg(&mut self.msg, dont_wait && n == 0)?;
            if n == SocketOptions::MAX_FRAMES {
                self.raw.discard_rest(&mut self.msg)?;
                frames.clear();
                self.refused += 1;
                // The first few in full, then one in a thousand: a peer cannot flood the log.
                if self.refused <= 10 || self.refused.is_multiple_of(1000) {
                    tracing::warn!(
                        kind = %self.raw.kind(), endpoint = %self.endpoint, refused = self.refused,
                        "message of more than {} frames discarded", SocketOptions::MAX_FRAMES
                    );
                }
                return Ok(false);
            }
            if n < frames.len() {
                frames[n].clear();
                frames[n].extend_from_slice(self.msg.as_bytes());
            } else {
                frames.push(self.msg.as_bytes().to_vec());
            }
            n += 1;
            if !self.msg.more() {
                frames.truncate(n);
                return Ok(true);
            }
        }
    }

    /// Waits until a message can be received, at most `timeout`, or until `peers` has
    /// events (which the caller then takes); whether a message can be received.
    fn wait_readable(&mut self, timeout: Duration, peers: Option<&mut PeerMonitor>) -> Result<bool> {
        let ms = i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX).max(1);
        let me = self.raw.poll_item(true, false);
        let res = match peers {
            None => sys::poll(&mut [me], ms).map(|n| n > 0),
            Some(p) => {
                let mut items = [me, p.events.raw.poll_item(true, false)];
                sys::poll(&mut items, ms).map(|_| items[0].is_readable())
            }
        };
        res.map_err(|e| self.err(Operation::Poll, e))
    }

    fn err(&self, op: Operation, source: ZmqErrno) -> Error {
        Error::Zmq { op, kind: self.raw.kind().as_str(), endpoint: Some(self.endpoint.clone()), source }
    }

    fn timeout(&self, op: Operation, after: Duration) -> Error {
        Error::Timeout {
            op,
            endpoint: format!("{} {}", self.raw.kind().as_str(), self.endpoint),
            ms: u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
        }
    }
}
