//! The one error type of ztick, carrying the context a reader needs to act on it.

use std::fmt;

use crate::config::CoreId;

/// What ztick was doing when an error occurred, for messages that say where it went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operation {
    /// Creating a libzmq socket.
    Socket,
    /// Setting a socket or context option.
    SetOption,
    /// Reading a socket option.
    GetOption,
    /// Binding a socket to an endpoint.
    Bind,
    /// Connecting a socket to an endpoint.
    Connect,
    /// Sending a message.
    Send,
    /// Receiving a message.
    Recv,
    /// Polling sockets.
    Poll,
    /// Creating or configuring the libzmq context.
    Context,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Operation::Socket => "create socket",
            Operation::SetOption => "set option",
            Operation::GetOption => "get option",
            Operation::Bind => "bind",
            Operation::Connect => "connect",
            Operation::Send => "send",
            Operation::Recv => "receive",
            Operation::Poll => "poll",
            Operation::Context => "configure context",
        };
        f.write_str(s)
    }
}

/// Every failure ztick reports, each with the context needed to fix it.
///
/// # Examples
///
/// ```
/// use ztick::{Endpoint, Error};
///
/// let err = "tcp://127.0.0.1".parse::<Endpoint>().unwrap_err();
/// assert!(matches!(err, Error::Endpoint { .. }));
/// // The message names the input and what is wrong with it.
/// assert!(err.to_string().contains("tcp://127.0.0.1"), "{err}");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An endpoint string could not be parsed.
    #[error("invalid endpoint {input:?}: {reason}; accepted forms: tcp://HOST:PORT, tcp://*:PORT, tcp://127.0.0.1:*, ipc://PATH, inproc://NAME")]
    Endpoint {
        /// The text that was given.
        input: String,
        /// Which part is wrong.
        reason: String,
    },
    /// A configuration value was out of range or malformed.
    #[error("invalid {name} {value:?}: {expected}")]
    Config {
        /// The option, flag, variable or key at fault.
        name: String,
        /// The value that was given.
        value: String,
        /// What is accepted instead.
        expected: String,
    },
    /// libzmq returned an error for an operation on a socket.
    #[error("{op} on {kind} socket{at}: {source}", at = fmt_endpoint(endpoint))]
    Zmq {
        /// What was being done.
        op: Operation,
        /// The socket kind, e.g. `PUSH`.
        kind: &'static str,
        /// The endpoint involved, when there is one.
        endpoint: Option<String>,
        /// libzmq's error.
        source: ZmqErrno,
    },
    /// A core that does not exist, or that cannot be pinned to, was requested.
    #[error("core {core} is not available: this machine has cores {available}; pick one of those", available = fmt_cores(available))]
    Core {
        /// The core asked for.
        core: CoreId,
        /// The cores the OS reports for this process.
        available: Vec<CoreId>,
    },
    /// More threads would spin than there are cores to give them.
    #[error("core budget exceeded: {spinning} spinning worker(s) + {io_threads} libzmq I/O thread(s) need {needed} cores but only {available} are available; use a non-spinning idle strategy (Backoff or Block), fewer workers, or force it")]
    CoreBudget {
        /// Workers whose idle strategy spins.
        spinning: usize,
        /// libzmq I/O threads.
        io_threads: usize,
        /// Cores needed.
        needed: usize,
        /// Cores available to this process.
        available: usize,
    },
    /// The engine was stopped, or a worker is gone.
    #[error("engine stopped: {0}")]
    Stopped(String),
    /// A worker thread panicked; the payload's message is kept.
    #[error("worker {worker} panicked: {message}")]
    WorkerPanicked {
        /// The worker's name.
        worker: String,
        /// The panic message.
        message: String,
    },
    /// A peer sent bytes that could not be decoded.
    #[error("cannot decode message from {context}: {reason}")]
    Decode {
        /// Where the message came from (endpoint, socket kind).
        context: String,
        /// What was wrong.
        reason: String,
    },
    /// An operation timed out.
    #[error("timed out after {ms} ms while trying to {op} on {endpoint}; is the peer running?")]
    Timeout {
        /// What was being done.
        op: Operation,
        /// The endpoint involved.
        endpoint: String,
        /// How long it waited.
        ms: u64,
    },
    /// A request got no answer after every try.
    #[error("no reply from {endpoint} after {tries} tries of {each_ms} ms each; is the server running and reachable?")]
    NoReply {
        /// The server's endpoint.
        endpoint: String,
        /// How many times the request was sent.
        tries: u32,
        /// How long each try waited.
        each_ms: u64,
    },
    /// A run ended before it was complete: its peers hung up, say, with messages missing.
    #[error("{endpoint}: received {received} of {expected} message(s): {reason}")]
    Incomplete {
        /// The socket kind and endpoint that was receiving.
        endpoint: String,
        /// Messages received.
        received: u64,
        /// Messages the run was for.
        expected: u64,
        /// Why it ended, and what to do.
        reason: String,
    },
    /// A secret key file others can read, or another user owns, or an allow-list others can
    /// write to or that is reached through a symlink: refused as ssh refuses such key files,
    /// since whoever can read the secret can be the server, and whoever can write the list
    /// can let themselves in.
    #[error("{what} {path} {problem} (mode {mode:04o}, owner uid {uid}); {fix}")]
    Insecure {
        /// What the file is for ("secret key file", "allow-list directory", ...).
        what: &'static str,
        /// The file or directory.
        path: std::path::PathBuf,
        /// What is wrong with it.
        problem: String,
        /// Its permission bits.
        mode: u32,
        /// Its owner.
        uid: u32,
        /// What to do about it.
        fix: String,
    },
    /// A feature is not available in this libzmq build.
    #[error("{feature} is not available: {hint}")]
    Unsupported {
        /// The missing feature.
        feature: String,
        /// What to do instead.
        hint: String,
    },
    /// An I/O error on a file or the terminal.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, and on which path.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// `[0, 1, 2]`: the cores by index, as a list of numbers.
fn fmt_cores(cores: &[CoreId]) -> String {
    let indices: Vec<usize> = cores.iter().map(|c| c.index()).collect();
    format!("{indices:?}")
}

fn fmt_endpoint(endpoint: &Option<String>) -> String {
    match endpoint {
        Some(e) => format!(" at {e}"),
        None => String::new(),
    }
}

/// A libzmq errno with its message, so that ztick's errors need no `zmq::` type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZmqErrno {
    /// The raw errno value.
    pub errno: i32,
    /// libzmq's text for it (`zmq_strerror`).
    pub message: &'static str,
}

impl fmt::Display for ZmqErrno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (errno {})", self.message, self.errno)
    }
}

impl std::error::Error for ZmqErrno {}

impl ZmqErrno {
    /// True when the call would have blocked: a full HWM on send, nothing to read on receive.
    pub fn is_again(&self) -> bool {
        self.errno == crate::sys::EAGAIN
    }

    /// True for EFSM: the operation is out of order for the socket's state machine (a REQ
    /// receiving before it sent, for one).
    pub fn is_fsm(&self) -> bool {
        self.errno == crate::sys::EFSM
    }

    /// True when the context is shutting down.
    pub fn is_term(&self) -> bool {
        self.errno == crate::sys::ETERM
    }
}

impl Error {
    /// A [`Error::Config`] for `name` = `value`, which should have been `expected`.
    pub fn config(name: impl Into<String>, value: impl fmt::Display, expected: impl Into<String>) -> Self {
        Error::Config { name: name.into(), value: value.to_string(), expected: expected.into() }
    }

    /// True when this is libzmq's EAGAIN (full or timed out).
    pub fn is_again(&self) -> bool {
        matches!(self, Error::Zmq { source, .. } if source.is_again())
    }
}

/// ztick's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
