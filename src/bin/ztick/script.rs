//! The scripting verbs' line protocol: one socket between standard input/output and any
//! ZMTP peer (libzmq, pyzmq, czmq), for shell pipelines and interop tests. `ztick pub|sub|
//! req|rep|push|pull|router|dealer` (`verbs.rs`) are thin flag mappers onto [`Script`]; it
//! uses only ztick's public API (a caller-thread [`Socket`] and its [`PeerMonitor`]).
//!
//! **Input.** Senders read standard input one line at a time (bytes, so not only UTF-8);
//! each line, without its `\n` or `\r\n`, is one single-frame message (after the topic frame
//! for [`Verb::Pub`] with a topic). `req` and `dealer` may instead take the frames of one
//! message as arguments.
//!
//! **Output.** Receivers print one line per message. [`Format::Text`]: frames separated by a
//! space, each as text when it is UTF-8 without control characters (so a message stays on
//! one line) and as `0x…` lower-case hex otherwise (an empty frame prints as nothing).
//! [`Format::Json`]: one object per message, `{"frames": [...]}`, each frame a JSON string
//! when it is UTF-8 and `{"hex": "…"}` otherwise; JSON is the lossless form. ROUTER shows the
//! peer's identity frame first, always in hex (`"identity": "0x…"` in JSON), so a reply can
//! be addressed to it.
//!
//! **Ends.** Senders stop at the end of their input, receivers after `count` messages (or
//! never). A script whose last act was a send (pub, push, rep, an echoing router, a dealer
//! expecting no reply) then keeps its socket open until every peer has hung up, for at most
//! the linger (ztick's default 1 s, or `ZMQ_LINGER_MS`): libzmq 4.3.4 can lose messages sent
//! right before a close whatever the linger (libzmq issues #1264, #3774, #4660; measured
//! here: about 1 reply in 30 between two processes on a busy machine), and a peer that hangs
//! up has received everything. A peer that stays connected costs the full linger at exit. A wait longer than `timeout` is an
//! [`Error::Timeout`] that says how far the script got and, for a connecting socket whose
//! peer is absent, whether the endpoint refused the connection.
//!
//! Connecting senders (REQ, PUSH, DEALER) set `ZMQ_IMMEDIATE` unless told otherwise, so a
//! send waits for a live connection (and times out when nobody is there) instead of
//! queueing into the void.
//!
//! **Hostile peers.** Frames are limited by the socket options' `ZMQ_MAXMSGSIZE`, messages
//! of more than [`SocketOptions::MAX_FRAMES`] frames are discarded and counted
//! ([`Outcome::refused`]), and the peer monitor is read while the script waits, not only at
//! the end, so peers that connect and hang up in a loop cannot grow its queue.
//!
//! (`tests::a_pull_prints_what_a_push_reads`, below, runs one such pair in-process.)

use std::fmt::Write as _;
use std::io::{BufRead, ErrorKind, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use ztick::patterns::{PeerMonitor, Socket, Subscriptions};
use ztick::{
    Endpoint, Engine, Error, Operation, Result, SocketKind, SocketOptions, SocketSpec, Subscription,
    Transport,
};

use crate::settings::Attach;

/// What a script does with its socket; each is one `ztick` verb.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verb {
    /// PUB: publishes each input line, after `topic` as its own first frame when given.
    Pub {
        /// The topic frame sent before each line (none: single-frame messages).
        topic: Option<Vec<u8>>,
        /// Subscriptions to wait for before the first send (0: none, the socket is a PUB).
        ///
        /// With N > 0 the socket is an XPUB with `ZMQ_XPUB_VERBOSE`, which hands over every
        /// subscribe message, one per subscriber and prefix; the script waits for N of those
        /// that match what it sends (a prefix of `topic`, or any prefix without a topic). A
        /// subscriber with one matching `--topic` is thus one subscriber; one with two
        /// matching prefixes counts twice. Once a subscription has been received the
        /// publisher's filter holds it, so nothing sent afterwards is lost to the slow joiner.
        wait_subscribers: usize,
    },
    /// SUB: prints each message whose first frame starts with one of `topics`.
    Sub {
        /// Topic prefixes; none subscribes to everything.
        topics: Vec<Vec<u8>>,
    },
    /// REQ: sends `frames` as one request and prints the reply.
    Req {
        /// The request's frames.
        frames: Vec<Vec<u8>>,
    },
    /// REP: prints each request and sends it back unchanged.
    Rep,
    /// PUSH: sends each input line.
    Push,
    /// PULL: prints each message.
    Pull,
    /// ROUTER: prints each message with its sender's identity; with `echo`, sends it back to
    /// that sender (which serves REQ and DEALER clients alike).
    Router {
        /// Send every message back to its sender.
        echo: bool,
    },
    /// DEALER: sends `frames` as one message (or, when empty, each input line), then prints
    /// `count` replies (default: one per message sent). To talk to a REP, begin with an empty
    /// frame, as a REQ would.
    Dealer {
        /// One message's frames; empty to read input lines instead.
        frames: Vec<Vec<u8>>,
    },
}

impl Verb {
    /// The verb's name on the command line.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Verb::Pub { .. } => "pub",
            Verb::Sub { .. } => "sub",
            Verb::Req { .. } => "req",
            Verb::Rep => "rep",
            Verb::Push => "push",
            Verb::Pull => "pull",
            Verb::Router { .. } => "router",
            Verb::Dealer { .. } => "dealer",
        }
    }

    /// The socket kind the verb opens (XPUB for a publisher that waits for subscribers).
    pub(crate) fn kind(&self) -> SocketKind {
        match self {
            Verb::Pub { wait_subscribers: 0, .. } => SocketKind::Pub,
            Verb::Pub { .. } => SocketKind::XPub,
            Verb::Sub { .. } => SocketKind::Sub,
            Verb::Req { .. } => SocketKind::Req,
            Verb::Rep => SocketKind::Rep,
            Verb::Push => SocketKind::Push,
            Verb::Pull => SocketKind::Pull,
            Verb::Router { .. } => SocketKind::Router,
            Verb::Dealer { .. } => SocketKind::Dealer,
        }
    }

    /// True for the server side of each pattern (pub, rep, pull, router), which binds when
    /// the settings do not say otherwise (see [`crate::settings::Settings::attach`]).
    pub(crate) fn binds_by_default(&self) -> bool {
        matches!(self, Verb::Pub { .. } | Verb::Rep | Verb::Pull | Verb::Router { .. })
    }

    /// The verbs there are, by name, for messages that list them.
    pub(crate) const NAMES: &'static str = "pub, sub, req, rep, push, pull, router, dealer";

    /// True for the verbs that start by sending and so wait for a live connection.
    fn sends_first(&self) -> bool {
        matches!(self, Verb::Req { .. } | Verb::Push | Verb::Dealer { .. })
    }
}

/// How received messages are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Format {
    /// One line per message, frames separated by a space, text or `0x…` hex.
    #[default]
    Text,
    /// One JSON object per message.
    Json,
}

impl Format {
    /// One message as one line (without the newline); `identity` is a ROUTER's sender.
    pub(crate) fn line(self, identity: Option<&[u8]>, frames: &[Vec<u8>]) -> String {
        match self {
            Format::Text => {
                let mut line = String::new();
                for (i, f) in identity.into_iter().chain(frames.iter().map(Vec::as_slice)).enumerate() {
                    if i > 0 {
                        line.push(' ');
                    }
                    match std::str::from_utf8(f) {
                        Ok(s) if i > 0 || identity.is_none() => {
                            if s.chars().any(char::is_control) {
                                push_hex(&mut line, f, true);
                            } else {
                                line.push_str(s);
                            }
                        }
                        _ => push_hex(&mut line, f, true),
                    }
                }
                line
            }
            Format::Json => {
                let frames: Vec<serde_json::Value> = frames
                    .iter()
                    .map(|f| match std::str::from_utf8(f) {
                        Ok(s) => serde_json::Value::from(s),
                        Err(_) => serde_json::json!({ "hex": hex(f, false) }),
                    })
                    .collect();
                match identity {
                    Some(id) => serde_json::json!({ "identity": hex(id, true), "frames": frames }),
                    None => serde_json::json!({ "frames": frames }),
                }
                .to_string()
            }
        }
    }
}

fn push_hex(out: &mut String, bytes: &[u8], prefix: bool) {
    if prefix {
        out.push_str("0x");
    }
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
}

fn hex(bytes: &[u8], prefix: bool) -> String {
    let mut s = String::with_capacity(2 + 2 * bytes.len());
    push_hex(&mut s, bytes, prefix);
    s
}

/// One verb with its socket settings; [`Script::run`] runs it.
#[derive(Debug, Clone)]
pub(crate) struct Script {
    /// What to do.
    pub(crate) verb: Verb,
    /// Where the socket binds or connects.
    pub(crate) attach: Attach,
    /// Socket options (HWM, linger, ...), applied before bind or connect.
    pub(crate) options: SocketOptions,
    /// Messages to receive before stopping (receivers; dealer: replies); `None`: no limit
    /// (dealer: one per message sent).
    pub(crate) count: Option<u64>,
    /// Longest wait for one send, one receive or the subscribers; `None`: forever.
    pub(crate) timeout: Option<Duration>,
    /// How messages are printed.
    pub(crate) format: Format,
}

/// What a finished script did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// The endpoint, as libzmq resolved it for a bind.
    pub(crate) endpoint: String,
    /// Messages sent (echoes included).
    pub(crate) sent: u64,
    /// Messages received (subscriptions excluded).
    pub(crate) received: u64,
    /// Messages discarded for having more than [`SocketOptions::MAX_FRAMES`] frames.
    pub(crate) refused: u64,
}

impl Script {
    /// `verb` on a socket attached as `attach`, with default options, no count, no
    /// timeout, text output.
    pub(crate) fn new(verb: Verb, attach: Attach) -> Script {
        Script {
            verb,
            attach,
            options: SocketOptions::default(),
            count: None,
            timeout: None,
            format: Format::Text,
        }
    }

    /// Sets the socket options.
    pub(crate) fn options(mut self, options: SocketOptions) -> Self {
        self.options = options;
        self
    }

    /// Sets how many messages to receive.
    pub(crate) fn count(mut self, count: Option<u64>) -> Self {
        self.count = count;
        self
    }

    /// Sets the longest single wait.
    pub(crate) fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the output format.
    pub(crate) fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// Opens the socket in `engine`'s context and runs the verb, reading lines from `input`
    /// and printing messages to `output` (flushed after every message). A closed `output`
    /// (`EPIPE`, as when piped into `head`) ends the script without error.
    ///
    /// # Errors
    /// [`Error::Zmq`] when the socket cannot be opened, bound or connected;
    /// [`Error::Timeout`] when a wait exceeds the timeout; [`Error::Io`] when the input
    /// cannot be read or the output written.
    pub(crate) fn run(
        &self,
        engine: &Engine,
        input: &mut dyn BufRead,
        output: &mut dyn Write,
    ) -> Result<Outcome> {
        let kind = self.verb.kind();
        let mut spec = match &self.attach {
            Attach::Bind(e) => SocketSpec::bind(kind, e.clone()),
            Attach::Connect(e) => SocketSpec::connect(kind, e.clone()),
        }
        .options(self.options.clone());
        // The command line never sets ZMQ_IMMEDIATE itself: a connecting sender waits for a
        // live peer instead of queueing into the void.
        if !self.attach.is_bind() && self.verb.sends_first() {
            spec.options = spec.options.immediate(true);
        }
        match &self.verb {
            Verb::Pub { .. } => spec = spec.xpub_verbose(kind == SocketKind::XPub),
            Verb::Sub { topics } if topics.is_empty() => spec = spec.subscribe(Vec::new()),
            Verb::Sub { topics } => spec.subscriptions.clone_from(topics),
            _ => {}
        }
        let mut sock = Socket::open(engine, &spec)?;
        let may_end_sending = !matches!(self.verb, Verb::Sub { .. } | Verb::Pull | Verb::Req { .. });
        let peers = if may_end_sending { Some(sock.monitor_peers()?) } else { None };
        let mut run = Run {
            script: self,
            outcome: Outcome { endpoint: sock.endpoint().to_owned(), sent: 0, received: 0, refused: 0 },
            sock,
            peers,
            output,
            closed: false,
            last_was_send: false,
            frames: Vec::new(),
        };
        run.verb(input)?;
        if run.last_was_send {
            if let Some(peers) = &mut run.peers {
                let linger = self.options.effective_linger();
                wait_gone(peers, linger)?;
            }
        }
        run.outcome.refused = run.sock.refused();
        Ok(run.outcome)
    }
}

/// One running script: its socket, output and counters.
struct Run<'a> {
    script: &'a Script,
    sock: Socket,
    /// The socket's peers, for the verbs that may end with a send; read while waiting.
    peers: Option<PeerMonitor>,
    output: &'a mut dyn Write,
    /// The output was closed by its reader: stop quietly.
    closed: bool,
    /// The last operation was a send, which the peers may not have received yet.
    last_was_send: bool,
    /// The last message received, its buffers reused.
    frames: Vec<Vec<u8>>,
    outcome: Outcome,
}

impl Run<'_> {
    fn verb(&mut self, input: &mut dyn BufRead) -> Result<()> {
        let count = self.script.count;
        match &self.script.verb {
            Verb::Pub { topic, wait_subscribers } => {
                if *wait_subscribers > 0 {
                    self.wait_subscribers(topic.as_deref(), *wait_subscribers)?;
                }
                self.send_lines(input, topic.as_deref())
            }
            Verb::Push => self.send_lines(input, None),
            Verb::Sub { .. } | Verb::Pull | Verb::Rep | Verb::Router { .. } => {
                let echo = matches!(self.script.verb, Verb::Rep | Verb::Router { echo: true });
                let routed = matches!(self.script.verb, Verb::Router { .. });
                while !self.closed && count.is_none_or(|n| self.outcome.received < n) {
                    self.recv()?;
                    self.print(routed)?;
                    if echo {
                        let frames = std::mem::take(&mut self.frames);
                        let sent = self.send(&frames);
                        self.frames = frames;
                        sent?;
                    }
                }
                Ok(())
            }
            Verb::Req { frames } => {
                self.send(frames)?;
                self.recv()?;
                self.print(false)
            }
            Verb::Dealer { frames } => {
                if frames.is_empty() {
                    self.send_lines(input, None)?;
                } else {
                    self.send(frames)?;
                }
                let replies = count.unwrap_or(self.outcome.sent);
                while !self.closed && self.outcome.received < replies {
                    self.recv()?;
                    self.print(false)?;
                }
                Ok(())
            }
        }
    }

    /// Sends each line of `input` as a message, after `topic` when given.
    fn send_lines(&mut self, input: &mut dyn BufRead, topic: Option<&[u8]>) -> Result<()> {
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = input.read_until(b'\n', &mut line).map_err(|e| Error::Io {
                context: format!("reading standard input for `ztick {}`", self.script.verb.name()),
                source: e,
            })?;
            if n == 0 {
                return Ok(());
            }
            if line.last() == Some(&b'\n') {
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
            }
            match topic {
                Some(t) => self.send(&[t, line.as_slice()])?,
                None => self.send(&[line.as_slice()])?,
            }
        }
    }

    fn send<F: AsRef<[u8]>>(&mut self, frames: &[F]) -> Result<()> {
        let frames: Vec<&[u8]> = frames.iter().map(AsRef::as_ref).collect();
        let r = match (&mut self.peers, self.script.timeout) {
            (Some(peers), t) => send_watching(&mut self.sock, &frames, t, peers),
            (None, Some(t)) => self.sock.send_timeout(&frames, t),
            (None, None) => self.sock.send(&frames),
        };
        let progress = match self.outcome.sent {
            0 => "nothing sent yet".to_owned(),
            n => format!("{n} message(s) sent before this one"),
        };
        r.map_err(|e| self.explain(e, progress))?;
        self.outcome.sent += 1;
        self.last_was_send = true;
        Ok(())
    }

    fn recv(&mut self) -> Result<()> {
        let r = match self.recv_within(self.script.timeout) {
            Ok(true) => Ok(()),
            Ok(false) => Err(Error::Timeout {
                op: Operation::Recv,
                endpoint: format!("{} {}", self.sock.kind(), self.sock.endpoint()),
                ms: self.script.timeout.map_or(0, millis),
            }),
            Err(e) => Err(e),
        };
        let progress = match self.script.count {
            Some(n) => format!("{} of {n} message(s) received", self.outcome.received),
            None => format!("{} message(s) received", self.outcome.received),
        };
        r.map_err(|e| self.explain(e, progress))?;
        self.outcome.received += 1;
        self.last_was_send = false;
        Ok(())
    }

    /// Receives one message into `frames`, waiting at most `timeout` (`None`: for as long
    /// as it takes) and reading the peer monitor meanwhile; false when nothing came in time.
    fn recv_within(&mut self, timeout: Option<Duration>) -> Result<bool> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let left = deadline.map_or(WAIT_SLICE, |d| d.saturating_duration_since(Instant::now()));
            let got = match &mut self.peers {
                Some(peers) => self.sock.recv_into_watching(&mut self.frames, left, peers)?,
                None => self.sock.recv_into(&mut self.frames, left)?,
            };
            if got || deadline.is_some() {
                return Ok(got);
            }
        }
    }

    /// Prints the last message received; `routed`: its first frame is a ROUTER's identity.
    fn print(&mut self, routed: bool) -> Result<()> {
        let line = match (routed, self.frames.split_first()) {
            (true, Some((id, rest))) => self.script.format.line(Some(id), rest),
            _ => self.script.format.line(None, &self.frames),
        };
        let written = writeln!(self.output, "{line}").and_then(|()| self.output.flush());
        match written {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            Err(e) => Err(Error::Io { context: "writing a message to standard output".into(), source: e }),
        }
    }

    /// Receives subscribe messages on the XPUB until `n` of them match `topic` (any, without
    /// one). Only subscribes count: a subscriber that leaves during the wait still counts.
    fn wait_subscribers(&mut self, topic: Option<&[u8]>, n: usize) -> Result<()> {
        let deadline = self.script.timeout.map(|t| Instant::now() + t);
        let mut subs = Subscriptions::default();
        let seen = |subs: &Subscriptions| topic.map_or(subs.total(), |t| subs.matching(t));
        while seen(&subs) < n {
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            let got = !left.is_some_and(|l| l.is_zero()) && self.recv_within(left)?;
            if !got {
                let err = Error::Timeout {
                    op: Operation::Recv,
                    endpoint: format!("{} {}", self.sock.kind(), self.sock.endpoint()),
                    ms: self.script.timeout.map_or(0, millis),
                };
                return Err(self.explain(err, format!("{} of {n} subscriber(s) arrived", seen(&subs))));
            }
            let message = self.frames.first().and_then(|f| Subscription::parse(f));
            if let Some(subscribe @ Subscription::Subscribe(_)) = message {
                subs.apply(subscribe);
            }
        }
        Ok(())
    }

    /// Adds to a timeout what the script had done and, for a connecting socket, whether
    /// anybody listens at the endpoint; other errors pass unchanged.
    fn explain(&self, err: Error, progress: String) -> Error {
        match err {
            Error::Timeout { op, endpoint, ms } => {
                let hint = match &self.script.attach {
                    Attach::Connect(e) => probe(e).map(|h| format!("{h}; ")).unwrap_or_default(),
                    Attach::Bind(_) => "no peer connected or none answered; ".to_owned(),
                };
                Error::Timeout { op, endpoint: format!("{endpoint} ({hint}{progress})"), ms }
            }
            other => other,
        }
    }
}

/// The longest single wait of a script without a timeout: it then waits again, so a wait
/// without end is a loop of bounded ones.
const WAIT_SLICE: Duration = Duration::from_secs(3600);

/// How long one attempt of a watched send waits for room before the monitor is read again.
const SEND_SLICE: Duration = Duration::from_millis(100);

/// Sends `frames` as one message, waiting at most `timeout` (`None`: for as long as it
/// takes) and reading `peers` every [`SEND_SLICE`] meanwhile.
fn send_watching(
    sock: &mut Socket,
    frames: &[&[u8]],
    timeout: Option<Duration>,
    peers: &mut PeerMonitor,
) -> Result<()> {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let left = deadline.map_or(SEND_SLICE, |d| d.saturating_duration_since(Instant::now()));
        match sock.send_timeout(frames, left.min(SEND_SLICE)) {
            Err(Error::Timeout { op, endpoint, .. }) => {
                peers.pump()?;
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Err(Error::Timeout { op, endpoint, ms: timeout.map_or(0, millis) });
                }
            }
            other => return other,
        }
    }
}

/// Waits until no peer is connected, at most `limit` (`None`: for as long as it takes).
fn wait_gone(peers: &mut PeerMonitor, limit: Option<Duration>) -> Result<()> {
    let deadline = limit.map(|l| Instant::now() + l);
    loop {
        peers.pump()?;
        if peers.connected() == 0 {
            return Ok(());
        }
        let left = deadline.map_or(WAIT_SLICE, |d| d.saturating_duration_since(Instant::now()));
        if left.is_zero() {
            return Ok(());
        }
        peers.next_event(left)?;
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Why nobody may have answered at `endpoint`, found by trying it once outside libzmq: a tcp
/// port that refuses connections, an ipc path with no socket file or no listener.
fn probe(endpoint: &Endpoint) -> Option<String> {
    match endpoint.transport() {
        Transport::Tcp => {
            let (host, port) = endpoint.address().rsplit_once(':')?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let addr = (host, port.parse::<u16>().ok()?).to_socket_addrs().ok()?.next()?;
            match TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                    Some("connection refused: nothing listens there".to_owned())
                }
                _ => None,
            }
        }
        Transport::Ipc => {
            let path = endpoint.ipc_path()?;
            if endpoint.address().starts_with('@') {
                return None; // Linux abstract namespace: no file to look at.
            }
            if !path.exists() {
                return Some(format!("no socket file at {}: nothing is bound there", path.display()));
            }
            match std::os::unix::net::UnixStream::connect(path) {
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                    Some(format!("nothing listens on {} (a stale socket file?)", path.display()))
                }
                _ => None,
            }
        }
        Transport::Inproc => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pull_prints_what_a_push_reads() -> Result<()> {
        use std::io::Cursor;

        let engine = Engine::new()?;
        let ep = Endpoint::unique_inproc("script-doc");
        let pull = Script::new(Verb::Pull, Attach::Bind(ep.clone())).count(Some(2));
        let push = Script::new(Verb::Push, Attach::Connect(ep));

        let puller = std::thread::scope(|s| {
            let puller = s.spawn(|| {
                let mut out = Vec::new();
                pull.run(&engine, &mut std::io::empty(), &mut out).map(|_| out)
            });
            push.run(&engine, &mut Cursor::new("hello\nworld\n"), &mut std::io::sink())?;
            puller.join().expect("the puller thread")
        })?;
        assert_eq!(String::from_utf8_lossy(&puller), "hello\nworld\n");
        Ok(())
    }

    #[test]
    fn a_line_per_message_in_text_or_json() {
        let frames = vec![b"topic".to_vec(), vec![0, 255]];
        assert_eq!(Format::Text.line(None, &frames), "topic 0x00ff");
        assert_eq!(
            Format::Json.line(Some(&[0, 1][..]), &frames),
            r#"{"frames":["topic",{"hex":"00ff"}],"identity":"0x0001"}"#
        );
    }

    #[test]
    fn text_shows_utf8_as_text_and_the_rest_as_hex() {
        let frames =
            vec![b"A".to_vec(), b"hello world".to_vec(), vec![0xff, 0x00], Vec::new(), b"a\nb".to_vec()];
        assert_eq!(Format::Text.line(None, &frames), "A hello world 0xff00  0x610a62");
        assert_eq!(Format::Text.line(Some(b"id"), &frames[..1]), "0x6964 A", "identity is always hex");
        assert_eq!(Format::Text.line(None, &[]), "");
    }

    #[test]
    fn json_is_lossless() {
        let frames = vec![b"a\nb".to_vec(), vec![0xff], Vec::new()];
        let v: serde_json::Value = serde_json::from_str(&Format::Json.line(None, &frames)).unwrap();
        assert_eq!(v, serde_json::json!({ "frames": ["a\nb", { "hex": "ff" }, ""] }));
    }

    #[test]
    fn verbs_name_their_kind_and_side() {
        assert_eq!(Verb::Pub { topic: None, wait_subscribers: 0 }.kind(), SocketKind::Pub);
        assert_eq!(Verb::Pub { topic: None, wait_subscribers: 2 }.kind(), SocketKind::XPub);
        assert!(Verb::Rep.binds_by_default() && !Verb::Req { frames: vec![] }.binds_by_default());
        for v in [Verb::Push, Verb::Pull, Verb::Rep, Verb::Router { echo: false }] {
            assert!(Verb::NAMES.contains(v.name()));
        }
    }

    #[test]
    fn probe_finds_a_refused_tcp_port_and_a_missing_ipc_file() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        // The listener is dropped: nothing listens on `port` now (barring a race we accept
        // here, since the assertion below only reads the hint).
        let e: Endpoint = format!("tcp://127.0.0.1:{port}").parse().unwrap();
        let hint = probe(&e);
        assert!(hint.as_deref().is_none_or(|h| h.contains("refused")), "{hint:?}");
        let e = Endpoint::unique_ipc("ztick-probe");
        assert!(probe(&e).unwrap().contains("no socket file"));
    }
}
