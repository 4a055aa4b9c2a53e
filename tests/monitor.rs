//! libzmq's socket monitor made public: a worker socket with `SocketSpec::monitor` counts
//! its peers' connections, handshakes and departures, and logs them (target
//! `ztick::monitor`); a CURVE client given the wrong server key logs "handshake failed:
//! authentication" instead of waiting in silence. Loopback only; every wait bounded.

mod common;

use std::sync::{Arc, Mutex};

use common::{wait_until, with_timeout, WAIT};
use tracing_subscriber::layer::SubscriberExt;
use ztick::curve::KeyPair;
use ztick::info::BuildInfo;
use ztick::patterns::{PeerEvent, Socket};
use ztick::{Endpoint, Engine, SocketKind, SocketOptions, SocketSpec};

/// Every `ztick::monitor` log line of this test binary, as text (a global subscriber: the
/// lines come from worker threads).
fn log_lines() -> Arc<Mutex<Vec<String>>> {
    static LINES: std::sync::OnceLock<Arc<Mutex<Vec<String>>>> = std::sync::OnceLock::new();
    LINES
        .get_or_init(|| {
            let lines = Arc::new(Mutex::new(Vec::new()));
            let sink = Arc::clone(&lines);
            let subscriber = tracing_subscriber::registry().with(Capture(sink));
            tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
            lines
        })
        .clone()
}

struct Capture(Arc<Mutex<Vec<String>>>);

struct Text(String);

impl tracing::field::Visit for Text {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={value:?}", field.name()));
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.push_str(&format!(" {}={value}", field.name()));
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if event.metadata().target() == "ztick::monitor" {
            let mut t = Text(event.metadata().level().to_string());
            event.record(&mut t);
            self.0.lock().unwrap().push(t.0);
        }
    }
}

fn has_line(lines: &Arc<Mutex<Vec<String>>>, needles: &[&str]) -> bool {
    lines.lock().unwrap().iter().any(|l| needles.iter().all(|n| l.contains(n)))
}

#[test]
fn a_monitored_worker_socket_counts_and_logs_a_peer_arriving_and_leaving() {
    let lines = log_lines();
    with_timeout(WAIT * 2, move || {
        let engine = Engine::new().unwrap();
        let mut b = engine.worker("monitored-pull");
        let pull = b.socket(SocketSpec::bind(SocketKind::Pull, Endpoint::tcp_loopback_any()).monitor(true));
        let plain = b.socket(SocketSpec::bind(SocketKind::Pull, Endpoint::unique_inproc("unmonitored")));
        let worker = b.spawn().unwrap();
        assert!(worker.monitor(plain).is_none(), "no monitor unless asked");
        let monitor = worker.monitor(pull).expect("the spec asked for a monitor");
        let endpoint: Endpoint = worker.endpoint(pull).unwrap().parse().unwrap();
        assert_eq!((monitor.kind(), monitor.endpoint()), (SocketKind::Pull, endpoint.to_string().as_str()));

        let mut client =
            Socket::connect(&engine, SocketKind::Push, &endpoint, &SocketOptions::default()).unwrap();
        client.send(&[b"hello"]).unwrap();
        wait_until(|| worker.stats().received == 1, || format!("received {:?}", worker.stats()));
        wait_until(
            || monitor.stats().handshakes_succeeded == 1,
            || format!("no handshake seen: {:?}", monitor.stats()),
        );
        let s = monitor.stats();
        assert_eq!((s.accepted, s.open_connections(), s.handshakes_failed), (1, 1, 0), "{s:?}");
        drop(client);
        wait_until(
            || monitor.stats().disconnected == 1,
            || format!("no departure seen: {:?}", monitor.stats()),
        );
        assert_eq!(monitor.stats().open_connections(), 0);
        let report = worker.stop().unwrap();
        assert_eq!(report.stats.received, 1);
        // The arrival names the peer's address (the client's ephemeral port on 127.0.0.1).
        assert!(
            has_line(&lines, &["peer connection", "kind=PULL", "peer=127.0.0.1:", "event=accepted"]),
            "{:?}",
            lines.lock().unwrap()
        );
        assert!(has_line(&lines, &["peer disconnected", "peer=127.0.0.1:"]), "{:?}", lines.lock().unwrap());
    });
}

#[test]
fn a_caller_thread_monitor_shares_the_decoder_and_counts_what_it_read() {
    with_timeout(WAIT, || {
        let engine = Engine::new().unwrap();
        let opts = SocketOptions::default();
        let mut server =
            Socket::bind(&engine, SocketKind::Pull, &Endpoint::tcp_loopback_any(), &opts).unwrap();
        let mut peers = server.monitor_peers().unwrap();
        let client =
            Socket::connect(&engine, SocketKind::Push, &server.endpoint().parse().unwrap(), &opts).unwrap();
        assert_eq!(peers.next_event(WAIT).unwrap(), Some(PeerEvent::Connected));
        drop(client);
        assert_eq!(peers.next_event(WAIT).unwrap(), Some(PeerEvent::Disconnected));
        let s = peers.stats();
        assert_eq!((s.handshakes_succeeded, s.disconnected), (1, 1), "{s:?}");
    });
}

#[test]
fn a_curve_client_with_the_wrong_server_key_logs_an_authentication_failure() {
    if !BuildInfo::current().curve {
        eprintln!(
            "SKIPPED a_curve_client_with_the_wrong_server_key…: this libzmq has no CURVE (the vendored \
             4.3.4 build); scripts/system-libzmq.sh test runs it"
        );
        return;
    }
    let lines = log_lines();
    with_timeout(WAIT * 2, move || {
        let engine = Engine::new().unwrap();
        let server = KeyPair::generate().unwrap();
        let me = KeyPair::generate().unwrap();
        let impostor = KeyPair::generate().unwrap();
        let opts = SocketOptions::default().curve_server(server.secret);
        let mut b = engine.worker("curve-server");
        let xpub = b.socket(
            SocketSpec::bind(SocketKind::XPub, Endpoint::tcp_loopback_any()).options(opts).monitor(true),
        );
        let server_worker = b.spawn().unwrap();
        let endpoint: Endpoint = server_worker.endpoint(xpub).unwrap().parse().unwrap();

        // The client believes the server's public key is the impostor's.
        let wrong = SocketOptions::default().curve_client(me.secret, impostor.public);
        let mut b = engine.worker("curve-client");
        let sub = b.socket(
            SocketSpec::connect(SocketKind::Sub, endpoint.clone()).options(wrong).subscribe("").monitor(true),
        );
        let client = b.spawn().unwrap();
        let client_mon = client.monitor(sub).unwrap();
        let server_mon = server_worker.monitor(xpub).unwrap();
        wait_until(
            || client_mon.stats().auth_failed >= 1 && server_mon.stats().auth_failed >= 1,
            || format!("client {:?}, server {:?}", client_mon.stats(), server_mon.stats()),
        );
        assert_eq!(client_mon.stats().handshakes_succeeded, 0);
        wait_until(
            || has_line(&lines, &["handshake failed: authentication", "kind=SUB", &endpoint.to_string()]),
            || format!("no client log line: {:?}", lines.lock().unwrap()),
        );
        // The server says why: the client's HELLO did not decrypt.
        assert!(has_line(
            &lines,
            &["handshake failed: authentication", "kind=XPUB", "wrong server public key"]
        ));
        client.stop().unwrap();
        server_worker.stop().unwrap();
    });
}
