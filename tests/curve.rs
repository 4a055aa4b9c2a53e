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

/// A CURVE server with a ZAP domain fails closed: once its handler stops, a client whose
/// key is on the allow-list is refused. Without a domain (libzmq's default), the same
/// stopped handler lets her in, which is what the domain is there to prevent.
#[test]
fn a_stopped_zap_handler_admits_nobody_when_the_server_has_a_domain() {
    with_timeout(WAIT, || {
        require_curve();
        let alice = KeyPair::generate().unwrap();
        for domain in [Some(ztick::zap::DOMAIN), None] {
            let engine = Engine::new().unwrap();
            let mut policy = ZapPolicy::default().allow_keys([alice.public]);
            let mut opts = SocketOptions::default();
            if let Some(d) = domain {
                policy = policy.domain(d);
                opts = opts.zap_domain(d);
            }
            let zap = ZapHandler::spawn(&engine, policy).unwrap();
            let server = KeyPair::generate().unwrap();
            let replier = Replier::builder(Endpoint::tcp_loopback_any())
                .options(opts.curve_server(server.secret))
                .spawn(&engine, |body| vec![[b"secure:", body[0]].concat()])
                .unwrap();
            let endpoint: Endpoint = replier.endpoint().parse().unwrap();
            let mut before = client(&engine, &endpoint, Some((&alice, &server)));
            assert_eq!(before.request(&[b"hi"]).unwrap(), vec![b"secure:hi".to_vec()], "{domain:?}");
            assert_eq!(zap.stop().unwrap().allowed, 1);

            let mut after = client(&engine, &endpoint, Some((&alice, &server)));
            let outcome = after.request(&[b"again"]);
            match domain {
                Some(_) => {
                    let err = outcome.unwrap_err();
                    assert!(matches!(err, Error::NoReply { .. }), "{err}");
                    assert_eq!(replier.stop().unwrap().handled, 1, "only the request made while ZAP ran");
                }
                None => {
                    assert_eq!(outcome.unwrap(), vec![b"secure:again".to_vec()], "fails open");
                    replier.stop().unwrap();
                }
            }
        }
    });
}

/// A ZAP handler for one domain refuses requests for another.
#[test]
fn a_handler_refuses_servers_of_another_domain() {
    with_timeout(WAIT, || {
        require_curve();
        let alice = KeyPair::generate().unwrap();
        let engine = Engine::new().unwrap();
        let zap =
            ZapHandler::spawn(&engine, ZapPolicy::default().domain("trading").allow_keys([alice.public]))
                .unwrap();
        let server = KeyPair::generate().unwrap();
        let replier = Replier::builder(Endpoint::tcp_loopback_any())
            .options(SocketOptions::default().zap_domain("other").curve_server(server.secret))
            .spawn(&engine, |body| vec![body[0].to_vec()])
            .unwrap();
        let endpoint: Endpoint = replier.endpoint().parse().unwrap();
        let err = client(&engine, &endpoint, Some((&alice, &server))).request(&[b"hi"]).unwrap_err();
        assert!(matches!(err, Error::NoReply { .. }), "{err}");
        let s = zap.stop().unwrap();
        assert!(s.denied >= 1 && s.allowed == 0, "{s:?}");
        replier.stop().unwrap();
    });
}

/// A directory of its own under the system temp dir, removed on drop.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("ztick-keys-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        set_mode(&dir, 0o700);
        Scratch(dir)
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// `path`'s text in an error that must name it, with the mode.
fn names(err: &Error, path: &std::path::Path, mode: &str) {
    let text = err.to_string();
    assert!(matches!(err, Error::Insecure { .. }), "{err:?}");
    assert!(text.contains(&path.display().to_string()) && text.contains(mode), "{text}");
}

/// As ssh refuses a private key others can read: group or other bits refuse the file with
/// an error naming it and its mode; 0600 loads.
#[test]
fn a_secret_key_others_can_read_is_refused_with_its_name_and_mode() {
    require_curve();
    let dir = Scratch::new("mode");
    let key = dir.path("server.key");
    let pair = KeyPair::generate().unwrap();
    std::fs::write(&key, format!("{}\n", pair.secret)).unwrap();
    for (mode, text) in [(0o644, "0644"), (0o640, "0640"), (0o604, "0604"), (0o620, "0620")] {
        set_mode(&key, mode);
        let err = KeyPair::load(&key).unwrap_err();
        names(&err, &key, text);
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }
    set_mode(&key, 0o600);
    assert_eq!(KeyPair::load(&key).unwrap(), pair);
    // A symlink to a private key is followed, as ssh does, and the key it reaches checked.
    let link = dir.path("link.key");
    std::os::unix::fs::symlink(&key, &link).unwrap();
    assert_eq!(KeyPair::load(&link).unwrap(), pair);
    set_mode(&key, 0o644);
    names(&KeyPair::load(&link).unwrap_err(), &link, "0644");
}

/// A secret key owned by another user is refused even at 0600 (needs root to make one).
#[test]
fn a_secret_key_owned_by_another_user_is_refused() {
    require_curve();
    let dir = Scratch::new("owner");
    let key = dir.path("theirs.key");
    std::fs::write(&key, format!("{}\n", KeyPair::generate().unwrap().secret)).unwrap();
    set_mode(&key, 0o600);
    if std::os::unix::fs::chown(&key, Some(65534), Some(65534)).is_err() {
        eprintln!("not root: cannot give a file to another user; skipped");
        return;
    }
    let err = KeyPair::load(&key).unwrap_err();
    names(&err, &key, "0600");
    assert!(err.to_string().contains("owned by another user") && err.to_string().contains("65534"), "{err}");
}

/// A zcert whose public-key is not its secret-key's is refused, naming both.
#[test]
fn a_zcert_whose_halves_do_not_match_is_refused() {
    require_curve();
    let dir = Scratch::new("zcert");
    let (a, b) = (KeyPair::generate().unwrap(), KeyPair::generate().unwrap());
    a.save_zcert(&dir.path("a.cert")).unwrap();
    let secret = dir.path("a.cert_secret");
    let good = std::fs::read_to_string(&secret).unwrap();
    assert_eq!(KeyPair::load(&secret).unwrap(), a);
    let forged = dir.path("forged_secret");
    std::fs::write(&forged, good.replace(&a.public.to_string(), &b.public.to_string())).unwrap();
    set_mode(&forged, 0o600);
    let err = KeyPair::load(&forged).unwrap_err().to_string();
    assert!(err.contains("public-key") && err.contains(&b.public.to_string()), "{err}");
    assert!(err.contains(&a.public.to_string()), "names the key it should be: {err}");
}

/// Certificates written by czmq's own `zcert_save` (tests/data/czmq) keep loading: the
/// secret one as a key pair, the public one in an allow-list directory.
#[test]
fn czmq_certificates_keep_loading() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/czmq");
    let public: ztick::curve::CurveKey = "kyPVu6({O5l]a3O@v{QfQqmt[P[lX8!0ipsrMmBp".parse().unwrap();
    let dir = Scratch::new("czmq");
    let certs = dir.path("certs");
    std::fs::create_dir(&certs).unwrap();
    set_mode(&certs, 0o755);
    for (name, mode) in [("alice.cert", 0o644), ("alice.cert_secret", 0o600)] {
        std::fs::copy(fixtures.join(name), certs.join(name)).unwrap();
        set_mode(&certs.join(name), mode);
    }
    // Both files hold alice's public key.
    assert_eq!(ztick::curve::load_public_keys(&certs).unwrap(), vec![public, public]);
    require_curve();
    assert_eq!(KeyPair::load(&certs.join("alice.cert_secret")).unwrap().public, public);
}

/// An allow-list others can write, or a symlink, is refused; a symlink inside an allow-list
/// directory is not followed.
#[test]
fn allow_lists_others_can_write_or_reached_through_symlinks_are_refused() {
    let dir = Scratch::new("allow");
    let (k1, k2) = (ztick::curve::CurveKey::from_bytes([1; 32]), ztick::curve::CurveKey::from_bytes([2; 32]));
    let cert = |k: ztick::curve::CurveKey| format!("metadata\ncurve\n    public-key = \"{k}\"\n");
    let certs = dir.path("certs");
    std::fs::create_dir(&certs).unwrap();
    std::fs::write(certs.join("one.cert"), cert(k1)).unwrap();
    set_mode(&certs.join("one.cert"), 0o644);
    set_mode(&certs, 0o755);
    let load = ztick::curve::load_public_keys;
    assert_eq!(load(&certs).unwrap(), vec![k1]);

    for (mode, text) in [(0o775, "0775"), (0o757, "0757"), (0o1777, "1777")] {
        set_mode(&certs, mode);
        names(&load(&certs).unwrap_err(), &certs, text);
    }
    set_mode(&certs, 0o755);

    // A certificate others can change inside a good directory refuses the list too.
    set_mode(&certs.join("one.cert"), 0o666);
    names(&load(&certs).unwrap_err(), &certs.join("one.cert"), "0666");
    set_mode(&certs.join("one.cert"), 0o644);

    // A symlink inside, to a certificate elsewhere: skipped, not followed.
    let elsewhere = dir.path("two.cert");
    std::fs::write(&elsewhere, cert(k2)).unwrap();
    std::os::unix::fs::symlink(&elsewhere, certs.join("two.cert")).unwrap();
    assert_eq!(load(&certs).unwrap(), vec![k1], "the symlinked key is not allowed");

    // The directory itself given as a symlink.
    let link = dir.path("certs-link");
    std::os::unix::fs::symlink(&certs, &link).unwrap();
    let err = load(&link).unwrap_err();
    assert!(matches!(err, Error::Insecure { .. }) && err.to_string().contains("symlink"), "{err}");

    // A file allow-list follows the same rules.
    let list = dir.path("allow.txt");
    std::fs::write(&list, format!("{k1}\n")).unwrap();
    set_mode(&list, 0o644);
    assert_eq!(load(&list).unwrap(), vec![k1]);
    set_mode(&list, 0o664);
    names(&load(&list).unwrap_err(), &list, "0664");
}
