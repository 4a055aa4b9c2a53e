//! CURVE encryption and ZAP authentication, in every build this repository makes: the
//! default one (libzmq 4.3.5 with libsodium, vendor/zmq-sys) and the system one
//! (`scripts/system-libzmq.sh test`). A libzmq without CURVE (crates.io's zmq-sys, what a
//! crate depending on ztick gets without its `[patch]`) is refused with a clear error:
//! `scripts/downstream.sh` checks that, in the one build that lacks it.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{with_timeout, WAIT};
use ztick::curve::KeyPair;
use ztick::info::BuildInfo;
use ztick::patterns::{Replier, Requester};
use ztick::zap::{ZapHandler, ZapPolicy};
use ztick::{Endpoint, Engine, Error, SocketOptions};

/// Every build of this repository has CURVE: fail, do not skip, when one lost it.
fn require_curve() {
    let info = BuildInfo::current();
    assert!(info.curve, "this build of libzmq has no CURVE: {} ({})", info.libzmq_version, info.built_with);
}

struct Fixture {
    engine: Engine,
    server: KeyPair,
    replier: Replier,
    endpoint: Endpoint,
}

fn curve_server(zap: Option<(&Engine, ZapPolicy)>) -> (Fixture, Option<ZapHandler>) {
    let engine = Engine::new().unwrap();
    let zap = zap.map(|(_, p)| ZapHandler::spawn(&engine, p).unwrap());
    let server = KeyPair::generate().unwrap();
    let opts = SocketOptions::default().curve_server(server.secret);
    let replier = Replier::builder(Endpoint::tcp_loopback_any())
        .options(opts)
        .spawn(&engine, |body| vec![[b"secure:", body[0]].concat()])
        .unwrap();
    let endpoint: Endpoint = replier.endpoint().parse().unwrap();
    (Fixture { engine, server, replier, endpoint }, zap)
}

fn client(engine: &Engine, endpoint: &Endpoint, curve: Option<(&KeyPair, &KeyPair)>) -> Requester {
    let mut opts = SocketOptions::default();
    if let Some((me, server)) = curve {
        opts = opts.curve_client(me.secret, server.public);
    }
    Requester::builder(endpoint.clone())
        .options(opts)
        .timeout(Duration::from_millis(500))
        .connect(engine)
        .unwrap()
}

#[test]
fn an_encrypted_request_is_answered() {
    with_timeout(WAIT, || {
        require_curve();
        let (f, _) = curve_server(None);
        let me = KeyPair::generate().unwrap();
        let mut c = client(&f.engine, &f.endpoint, Some((&me, &f.server)));
        assert_eq!(c.request(&[b"hello"]).unwrap(), vec![b"secure:hello".to_vec()]);
        f.replier.stop().unwrap();
    });
}

#[test]
fn a_client_off_the_allow_list_gets_nothing_and_is_counted() {
    with_timeout(WAIT, || {
        require_curve();
        let alice = KeyPair::generate().unwrap();
        let mallory = KeyPair::generate().unwrap();
        let dummy = Engine::new().unwrap();
        let (f, zap) = curve_server(Some((&dummy, ZapPolicy::default().allow_keys([alice.public]))));
        let zap = zap.unwrap();
        let mut m = client(&f.engine, &f.endpoint, Some((&mallory, &f.server)));
        let err = m.request(&[b"let me in"]).unwrap_err();
        assert!(matches!(err, Error::NoReply { .. }), "{err}");
        let mut a = client(&f.engine, &f.endpoint, Some((&alice, &f.server)));
        assert_eq!(a.request(&[b"hi"]).unwrap(), vec![b"secure:hi".to_vec()]);
        let s = zap.stop().unwrap();
        assert!(s.denied >= 1 && s.allowed >= 1, "{s:?}");
        f.replier.stop().unwrap();
    });
}

#[test]
fn a_plaintext_client_gets_nothing_from_a_curve_server() {
    with_timeout(WAIT, || {
        require_curve();
        let (f, _) = curve_server(None);
        let mut plain = client(&f.engine, &f.endpoint, None);
        let err = plain.request(&[b"hello?"]).unwrap_err();
        assert!(matches!(err, Error::NoReply { .. }), "{err}");
        assert_eq!(f.replier.stop().unwrap().handled, 0);
    });
}

/// A TCP relay that forwards one connection both ways and keeps every byte it saw.
fn relay(upstream: std::net::SocketAddr) -> (Endpoint, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let ep: Endpoint = format!("tcp://{}", listener.local_addr().unwrap()).parse().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = Arc::clone(&seen);
    std::thread::spawn(move || {
        let Ok((down, _)) = listener.accept() else { return };
        let Ok(up) = TcpStream::connect(upstream) else { return };
        let pump = |mut from: TcpStream, mut to: TcpStream, seen: Arc<Mutex<Vec<u8>>>| {
            std::thread::spawn(move || {
                let _ = from.set_read_timeout(Some(WAIT));
                let mut buf = [0u8; 4096];
                while let Ok(n) = from.read(&mut buf) {
                    if n == 0 || to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    seen.lock().unwrap().extend_from_slice(&buf[..n]);
                }
                let _ = to.shutdown(std::net::Shutdown::Both);
            })
        };
        pump(down.try_clone().unwrap(), up.try_clone().unwrap(), Arc::clone(&seen2));
        pump(up, down, seen2);
    });
    (ep, seen)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn the_plaintext_never_crosses_the_wire() {
    with_timeout(WAIT, || {
        require_curve();
        const MARKER: &[u8] = b"PLAINTEXT-MARKER-5c1d";
        let addr = |ep: &Endpoint| ep.address().parse::<std::net::SocketAddr>().unwrap();
        // Control: without CURVE the relay does see the marker, so it records what passes.
        let engine = Engine::new().unwrap();
        let plain =
            Replier::builder(Endpoint::tcp_loopback_any()).spawn(&engine, |b| vec![b[0].to_vec()]).unwrap();
        let (via, seen) = relay(addr(&plain.endpoint().parse().unwrap()));
        let mut c = client(&engine, &via, None);
        assert_eq!(c.request(&[MARKER]).unwrap(), vec![MARKER.to_vec()]);
        assert!(contains(&seen.lock().unwrap(), MARKER), "the relay records plaintext traffic");
        plain.stop().unwrap();

        let (f, _) = curve_server(None);
        let (via, seen) = relay(addr(&f.endpoint));
        let me = KeyPair::generate().unwrap();
        let mut c = client(&f.engine, &via, Some((&me, &f.server)));
        let reply = c.request(&[MARKER]).unwrap();
        assert_eq!(reply, vec![[b"secure:", MARKER].concat()]);
        let wire = seen.lock().unwrap();
        assert!(wire.len() > 100, "the relay carried the handshake and the request: {} bytes", wire.len());
        assert!(!contains(&wire, MARKER), "the marker crossed the wire in plaintext");
        f.replier.stop().unwrap();
    });
}

/// The fan-out over CURVE: every subscriber gets every tick, encrypted (without CURVE the
/// publisher is refused up front: scripts/downstream.sh).
#[test]
fn a_fanout_over_curve_loses_nothing() {
    with_timeout(WAIT, || {
        use ztick::curve::Curve;
        use ztick::fanout::{PublisherConfig, SubscriberConfig, TickPublisher, TickSubscriber};
        let engine = ztick::Engine::new().unwrap();
        let bind = || ztick::Endpoint::tcp_loopback_any();
        let mut pcfg = PublisherConfig { hwm_msgs: Some(1 << 20), ..PublisherConfig::default() };
        require_curve();
        let (server, client) = (KeyPair::generate().unwrap(), KeyPair::generate().unwrap());
        pcfg.curve = Some(Curve::Server { secret: server.secret });
        let publisher = TickPublisher::start(&engine, bind(), Some(bind()), pcfg).unwrap();
        let scfg = SubscriberConfig {
            hwm_msgs: Some(1 << 20),
            curve: Some(Curve::Client { secret: client.secret, server: server.public }),
            ..SubscriberConfig::default()
        };
        let subs: Vec<_> = (0..2)
            .map(|i| {
                let cfg = SubscriberConfig { name: format!("sub{i}"), ..scfg.clone() };
                let side = publisher.side_endpoint().cloned();
                TickSubscriber::start(&engine, publisher.endpoint().clone(), side, cfg).unwrap()
            })
            .collect();
        assert!(publisher.wait_subscribers(2, WAIT), "both CURVE handshakes complete");
        for i in 0..6_000u64 {
            publisher.publish((i % 8) as usize, &i.to_le_bytes()).unwrap();
        }
        let p = publisher.finish(WAIT).unwrap();
        assert_eq!(p.published, 6_000);
        for s in subs {
            let r = s.finish(WAIT).unwrap();
            assert!(r.complete(), "{}: every end marker arrives", r.name);
            assert_eq!((r.received(), r.missing()), (p.published, 0), "{}", r.name);
        }
    });
}
