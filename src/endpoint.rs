//! Parsed ZeroMQ endpoints: `tcp://`, `ipc://` and `inproc://`, checked before libzmq sees them.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// The transport of an [`Endpoint`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// TCP, on loopback or any interface.
    Tcp,
    /// Unix-domain stream sockets (`ipc://path`).
    Ipc,
    /// In-process, between sockets of one libzmq context.
    Inproc,
}

impl Transport {
    /// The URL scheme: `tcp`, `ipc` or `inproc`.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Ipc => "ipc",
            Transport::Inproc => "inproc",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Transport {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "tcp" => Ok(Transport::Tcp),
            "ipc" => Ok(Transport::Ipc),
            "inproc" => Ok(Transport::Inproc),
            _ => Err(Error::config("transport", s, "one of inproc, ipc, tcp")),
        }
    }
}

/// The largest ipc path libzmq can bind: `sun_path` holds 108 bytes with the NUL.
const IPC_PATH_MAX: usize = 107;

/// A validated endpoint, printed back exactly as libzmq expects it.
///
/// ```
/// use ztick::Endpoint;
/// let e: Endpoint = "tcp://127.0.0.1:*".parse().unwrap();
/// assert_eq!(e.transport(), ztick::Transport::Tcp);
/// assert!("tcp://127.0.0.1".parse::<Endpoint>().is_err()); // no port
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    transport: Transport,
    /// Everything after `://`.
    address: String,
}

impl Endpoint {
    /// The transport.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// The part after `://`: `host:port`, a path, or a name.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// A unique inproc endpoint: `inproc://PREFIX-PID-N`, for tests and one-process tools.
    pub fn unique_inproc(prefix: &str) -> Endpoint {
        Endpoint { transport: Transport::Inproc, address: format!("{prefix}-{}", unique_suffix()) }
    }

    /// A unique ipc endpoint in the temporary directory: `ipc:///tmp/PREFIX-PID-N.ipc`.
    pub fn unique_ipc(prefix: &str) -> Endpoint {
        let dir = std::env::temp_dir();
        let path = dir.join(format!("{prefix}-{}.ipc", unique_suffix()));
        Endpoint { transport: Transport::Ipc, address: path.to_string_lossy().into_owned() }
    }

    /// Loopback TCP with a port the OS picks at bind time: `tcp://127.0.0.1:*`.
    pub fn tcp_loopback_any() -> Endpoint {
        Endpoint { transport: Transport::Tcp, address: "127.0.0.1:*".to_owned() }
    }

    /// A fresh endpoint of `transport` suitable for binding on this host.
    pub fn local(transport: Transport, prefix: &str) -> Endpoint {
        match transport {
            Transport::Tcp => Endpoint::tcp_loopback_any(),
            Transport::Ipc => Endpoint::unique_ipc(prefix),
            Transport::Inproc => Endpoint::unique_inproc(prefix),
        }
    }

    /// For `ipc://`, the socket file's path.
    pub fn ipc_path(&self) -> Option<&std::path::Path> {
        (self.transport == Transport::Ipc).then(|| std::path::Path::new(&self.address))
    }

    /// Removes the socket file of a bound `ipc://` endpoint, which libzmq leaves behind
    /// when the socket closes; does nothing for other transports or a file already gone.
    pub fn remove_ipc_file(&self) {
        if let Some(p) = self.ipc_path() {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.transport, self.address)
    }
}

impl FromStr for Endpoint {
    type Err = Error;

    fn from_str(input: &str) -> Result<Self, Error> {
        let bad = |reason: &str| Error::Endpoint { input: input.to_owned(), reason: reason.to_owned() };
        let (scheme, rest) =
            input.split_once("://").ok_or_else(|| bad("missing '://' after the transport"))?;
        let transport = match scheme {
            "tcp" => Transport::Tcp,
            "ipc" => Transport::Ipc,
            "inproc" => Transport::Inproc,
            "" => return Err(bad("missing transport before '://'")),
            _ => return Err(bad(&format!("unknown transport '{scheme}'"))),
        };
        if rest.is_empty() {
            return Err(bad("nothing after '://'"));
        }
        if rest.chars().any(|c| c.is_whitespace() || c == '\0') {
            return Err(bad("whitespace or NUL in the address"));
        }
        match transport {
            Transport::Tcp => check_tcp(rest).map_err(|r| bad(&r))?,
            Transport::Ipc if rest.len() > IPC_PATH_MAX => {
                return Err(bad(&format!("ipc path is {} bytes, the limit is {IPC_PATH_MAX}", rest.len())))
            }
            _ => {}
        }
        Ok(Endpoint { transport, address: rest.to_owned() })
    }
}

fn check_tcp(rest: &str) -> Result<(), String> {
    let (host, port) = rest.rsplit_once(':').ok_or("tcp address has no ':PORT'")?;
    if host.is_empty() {
        return Err("tcp address has no host (use '*' for every interface)".into());
    }
    if host.starts_with('[') != host.ends_with(']') {
        return Err(format!("unbalanced brackets in IPv6 host '{host}'"));
    }
    if host.contains(':') && !host.starts_with('[') {
        return Err(format!("IPv6 host '{host}' must be in brackets, e.g. [::1]"));
    }
    match port {
        "*" => Ok(()),
        "" => Err("empty port (give a number 0-65535 or '*')".into()),
        p => p.parse::<u16>().map(drop).map_err(|_| format!("port '{p}' is not a number 0-65535 or '*'")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_documented_form() {
        for ok in [
            "tcp://127.0.0.1:5555",
            "tcp://*:5555",
            "tcp://127.0.0.1:*",
            "tcp://localhost:0",
            "tcp://[::1]:7000",
            "ipc:///tmp/feed.ipc",
            "ipc://@abstract",
            "inproc://ticks",
        ] {
            let e: Endpoint = ok.parse().unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert_eq!(e.to_string(), ok);
        }
    }

    #[test]
    fn rejects_bad_input_naming_the_part() {
        let cases = [
            ("127.0.0.1:5555", "missing '://'"),
            ("udp://1.2.3.4:5", "unknown transport 'udp'"),
            ("tcp://", "nothing after"),
            ("tcp://127.0.0.1", "no ':PORT'"),
            ("tcp://:5555", "no host"),
            ("tcp://127.0.0.1:99999", "port '99999'"),
            ("tcp://127.0.0.1:", "empty port"),
            ("tcp://::1:5", "must be in brackets"),
            ("inproc://a b", "whitespace"),
            ("://x", "missing transport"),
        ];
        for (input, needle) in cases {
            let msg = input.parse::<Endpoint>().unwrap_err().to_string();
            assert!(msg.contains(needle), "{input}: {msg}");
            assert!(msg.contains("accepted forms"), "{input}: {msg}");
        }
    }

    #[test]
    fn rejects_overlong_ipc_path() {
        let long = format!("ipc:///{}", "x".repeat(200));
        assert!(long.parse::<Endpoint>().unwrap_err().to_string().contains("limit is 107"));
    }

    #[test]
    fn unique_endpoints_differ() {
        assert_ne!(Endpoint::unique_inproc("t"), Endpoint::unique_inproc("t"));
        assert_ne!(Endpoint::unique_ipc("t"), Endpoint::unique_ipc("t"));
    }
}
