//! What CURVE costs: round-trip latency and PUSH/PULL throughput over tcp, encrypted vs
//! plain, 64 B and 1 KiB, on the same sockets and the same libzmq.
//!
//! CURVE needs the system libzmq: `scripts/system-libzmq.sh cargo bench --bench curve`.
//! In the vendored build only the plain cases run, and the output says why.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ztick::curve::KeyPair;
use ztick::info::BuildInfo;
use ztick::metrics::LatencyRecorder;
use ztick::patterns::Socket;
use ztick::{now_ns, Endpoint, Engine, SocketKind, SocketOptions};

const SIZES: [(usize, &str); 2] = [(64, "64B"), (1024, "1KiB")];
const WAIT: Duration = Duration::from_secs(30);

/// Server and client options for one mode: plain, or CURVE with fresh keys.
fn options(curve: bool) -> (SocketOptions, SocketOptions) {
    let (mut server, mut client) = (SocketOptions::default(), SocketOptions::default());
    if curve {
        let (s, c) = (KeyPair::generate().expect("keys"), KeyPair::generate().expect("keys"));
        server = server.curve_server(s.secret);
        client = client.curve_client(c.secret, s.public);
    }
    (server.hwm_msgs(0), client.hwm_msgs(0))
}

/// A thread that runs `serve` on a bound socket until `stop` is set.
fn spawn_peer(
    engine: &Engine,
    kind: SocketKind,
    opts: &SocketOptions,
    mut serve: impl FnMut(&mut Socket, &[Vec<u8>]) + Send + 'static,
) -> (Endpoint, Arc<AtomicBool>, JoinHandle<()>) {
    let mut sock = Socket::bind(engine, kind, &Endpoint::tcp_loopback_any(), opts).expect("bind");
    let ep: Endpoint = sock.endpoint().parse().expect("endpoint");
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    let t = std::thread::spawn(move || {
        let mut frames = Vec::new();
        while !stop2.load(Ordering::Relaxed) {
            if sock.recv_into(&mut frames, Duration::from_millis(50)).unwrap_or(false) {
                serve(&mut sock, &frames);
            }
        }
    });
    (ep, stop, t)
}

fn modes() -> Vec<(&'static str, bool)> {
    if BuildInfo::current().curve {
        vec![("plain", false), ("curve", true)]
    } else {
        println!("curve: this libzmq has no CURVE (vendored build); only the plain cases run. Use scripts/system-libzmq.sh cargo bench --bench curve");
        vec![("plain", false)]
    }
}

fn roundtrip(c: &mut Criterion) {
    let engine = Engine::new().expect("engine");
    for (size, size_name) in SIZES {
        let mut group = c.benchmark_group(format!("curve/tcp/msg_{size_name}/roundtrip"));
        group
            .sample_size(20)
            .measurement_time(Duration::from_secs(3))
            .warm_up_time(Duration::from_millis(500));
        for (mode, curve) in modes() {
            let (server_opts, client_opts) = options(curve);
            let (ep, stop, t) = spawn_peer(&engine, SocketKind::Rep, &server_opts, |s, frames| {
                let parts: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
                let _ = s.send(&parts);
            });
            let mut req = Socket::connect(&engine, SocketKind::Req, &ep, &client_opts).expect("connect");
            let payload = vec![7u8; size];
            let mut rec = LatencyRecorder::new();
            group.bench_function(BenchmarkId::from_parameter(mode), |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let t0 = now_ns();
                        req.send(&[&payload]).expect("send");
                        req.recv_timeout(WAIT).expect("reply");
                        rec.record(now_ns() - t0);
                    }
                    start.elapsed()
                })
            });
            let s = rec.summary();
            println!(
                "curve/tcp/msg_{size_name}/roundtrip/{mode}: HDR over {} round trips: p50 {:.1} us  p99 {:.1} us  p99.9 {:.1} us  max {:.1} us",
                s.count,
                s.p50 as f64 / 1e3,
                s.p99 as f64 / 1e3,
                s.p99_9 as f64 / 1e3,
                s.max as f64 / 1e3
            );
            drop(req);
            stop.store(true, Ordering::Relaxed);
            let _ = t.join();
        }
        group.finish();
    }
}

fn throughput(c: &mut Criterion) {
    let engine = Engine::new().expect("engine");
    for (size, size_name) in SIZES {
        let mut group = c.benchmark_group(format!("curve/tcp/msg_{size_name}/push_pull"));
        group
            .sample_size(10)
            .measurement_time(Duration::from_secs(3))
            .warm_up_time(Duration::from_millis(500));
        for (mode, curve) in modes() {
            let (server_opts, client_opts) = options(curve);
            let (done_tx, done_rx) = crossbeam_channel::unbounded::<()>();
            // The last message of a measured burst carries a 1 in its first byte; the puller
            // acknowledges it, so the pusher knows the whole burst arrived.
            let (ep, stop, t) = spawn_peer(&engine, SocketKind::Pull, &server_opts, move |_, frames| {
                if frames.first().is_some_and(|f| f.first() == Some(&1)) {
                    let _ = done_tx.send(());
                }
            });
            let mut push = Socket::connect(&engine, SocketKind::Push, &ep, &client_opts).expect("connect");
            let mut payload = vec![0u8; size];
            group.throughput(Throughput::Elements(1));
            group.bench_function(BenchmarkId::from_parameter(mode), |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    for i in 0..iters {
                        payload[0] = u8::from(i + 1 == iters);
                        push.send(&[&payload]).expect("send");
                    }
                    done_rx.recv_timeout(WAIT).expect("burst arrived");
                    start.elapsed()
                })
            });
            drop(push);
            stop.store(true, Ordering::Relaxed);
            let _ = t.join();
        }
        group.finish();
    }
}

criterion_group!(benches, roundtrip, throughput);
criterion_main!(benches);
