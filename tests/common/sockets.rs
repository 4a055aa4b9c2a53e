//! Endpoints and caller-thread sockets for tests: every transport, resolved endpoints,
//! loopback tcp ports nobody holds, and sockets with default options.

use std::net::TcpListener;

use ztick::patterns::Socket;
use ztick::{Endpoint, Engine, SocketKind, SocketOptions, Transport};

/// Every transport, in the order the tests run them.
pub const TRANSPORTS: [Transport; 3] = [Transport::Inproc, Transport::Ipc, Transport::Tcp];

/// A fresh engine.
pub fn engine() -> Engine {
    Engine::new().expect("engine")
}

/// An endpoint a socket reported (resolved by libzmq, so it always parses).
pub fn ep(s: &str) -> Endpoint {
    s.parse().expect("resolved endpoints parse")
}

/// A loopback port the OS just handed out and that nobody holds now (another process may
/// take it before the test binds it: `run_pair` in tests/perf_tools.rs retries a lost race).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// A fresh loopback endpoint that nobody is bound to (tcp: a port the OS just handed out),
/// for a socket that connects before its peer binds.
pub fn unbound(t: Transport, prefix: &str) -> Endpoint {
    match t {
        Transport::Tcp => ep(&format!("tcp://127.0.0.1:{}", free_port())),
        _ => Endpoint::local(t, prefix),
    }
}

/// A caller-thread socket of `kind` connected to `endpoint`, with default options.
pub fn connect(engine: &Engine, kind: SocketKind, endpoint: &Endpoint) -> Socket {
    Socket::connect(engine, kind, endpoint, &SocketOptions::default())
        .unwrap_or_else(|e| panic!("connecting a {kind} socket to {endpoint}: {e}"))
}

/// A caller-thread socket of `kind` bound to `endpoint`, with default options.
pub fn bind(engine: &Engine, kind: SocketKind, endpoint: &Endpoint) -> Socket {
    Socket::bind(engine, kind, endpoint, &SocketOptions::default())
        .unwrap_or_else(|e| panic!("binding a {kind} socket to {endpoint}: {e}"))
}
