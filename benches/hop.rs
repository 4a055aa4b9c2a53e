//! The engine's hop: what handing a message from an application thread to a worker costs,
//! over the worker sending it on its socket directly.
//!
//! Each sample is timed from a stamp taken before the hand-off (`handoff_*`) or right before
//! the send on the worker (`direct`) to the moment `zmq_send` returns on the worker, so the
//! difference between the two is the hop. The receiving PULL worker blocks and is the same in
//! every case. `handoff_*` goes through `Handle::run`, which boxes its closure: the figure
//! includes that allocation, so it is an upper bound on the hop of `Handle::send`.
//!
//! `cargo bench --bench hop` prints criterion's estimate and, beside it, HDR percentiles of
//! every sample.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use ztick::metrics::LatencyRecorder;
use ztick::{now_ns, Endpoint, Engine, IdleStrategy, SocketKind, SocketOptions, SocketSpec};

const SIZE: usize = 64;

fn print_hdr(name: &str, rec: &LatencyRecorder) {
    let s = rec.summary();
    println!(
        "{name}: HDR over {} samples: p50 {} ns  p99 {} ns  p99.9 {} ns  max {} ns",
        s.count, s.p50, s.p99, s.p99_9, s.max
    );
}

fn hop(c: &mut Criterion) {
    let mut group = c.benchmark_group("hop/inproc/msg_64B");
    group.sample_size(20).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_millis(500));
    for (label, idle) in [("spin", IdleStrategy::BusySpin), ("block", IdleStrategy::BLOCK)] {
        // inproc needs no I/O thread, so a spinning worker plus this (spinning) thread fit on 2 cores.
        let engine = Engine::builder().io_threads(0).build().expect("engine");
        let ep = Endpoint::unique_inproc("hop");
        let unlimited = SocketOptions::default().hwm_msgs(0);
        let mut b = engine.worker("sink");
        b.socket(SocketSpec::bind(SocketKind::Pull, ep.clone()).options(unlimited.clone()));
        let _sink = b.spawn().expect("sink");
        let mut b = engine.worker("sender").idle(idle);
        let push = b.socket(SocketSpec::connect(SocketKind::Push, ep).options(unlimited));
        let sender = b.spawn().expect("sender");
        let handle = sender.handle();

        if label == "spin" {
            let mut direct = LatencyRecorder::new();
            group.bench_function(BenchmarkId::new("direct", label), |bench| {
                bench.iter_custom(|iters| {
                    let (tx, rx) = crossbeam_channel::bounded(1);
                    handle.run(move |ctx| {
                        let payload = [0u8; SIZE];
                        let mut rec = LatencyRecorder::new();
                        let mut total = 0u64;
                        for _ in 0..iters {
                            let t0 = now_ns();
                            let _ = ctx.send(push, &payload);
                            let dt = now_ns() - t0;
                            rec.record(dt);
                            total += dt;
                        }
                        let _ = tx.send((total, rec));
                    });
                    let (total, rec) =
                        rx.recv_timeout(Duration::from_secs(60)).expect("direct sends finished");
                    direct.merge(&rec);
                    Duration::from_nanos(total)
                })
            });
            print_hdr("hop/inproc/msg_64B/direct/spin", &direct);
        }

        let mut handoff = LatencyRecorder::new();
        group.bench_function(BenchmarkId::new("handoff", label), |bench| {
            bench.iter_custom(|iters| {
                let (tx, rx) = crossbeam_channel::bounded::<u64>(1);
                let mut total = 0u64;
                for _ in 0..iters {
                    let tx = tx.clone();
                    let t0 = now_ns();
                    handle.run(move |ctx| {
                        let _ = ctx.send(push, &[0u8; SIZE]);
                        let _ = tx.send(now_ns() - t0);
                    });
                    let dt = wait_spinning(&rx);
                    handoff.record(dt);
                    total += dt;
                }
                Duration::from_nanos(total)
            })
        });
        print_hdr(&format!("hop/inproc/msg_64B/handoff/{label}"), &handoff);
    }
    group.finish();
}

/// Waits for the worker's answer without sleeping (so the measured worker never waits for
/// this thread to be scheduled), bounded at 10 s.
fn wait_spinning(rx: &crossbeam_channel::Receiver<u64>) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(v) = rx.try_recv() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("worker did not answer within 10 s");
        }
        std::hint::spin_loop();
    }
}

criterion_group!(benches, hop);
criterion_main!(benches);
