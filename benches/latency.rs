//! Round-trip latency, REQ to REP and back, per transport × size × idle strategy: through the
//! engine (two pinned workers, the timing one driving the round trips from its handler) and
//! through bare `patterns::Socket`s on two pinned plain threads (the same libzmq, no engine),
//! the baseline that isolates the engine's own cost.
//!
//! Groups are `latency/<transport>/<idle>/msg_<size>`, benchmarks `engine` and `bare`, so
//! `cargo bench --bench latency -- 'tcp/'` or `-- msg_64B` selects a slice. `spin` runs only
//! where the engine's core budget allows two spinning ends beside libzmq's I/O threads (on 2
//! cores: inproc only); elsewhere the engine's refusal is printed as the reason. `backoff` has
//! no bare counterpart. After each benchmark, the HDR percentiles of every round trip
//! (criterion's warm-up included) are printed and, under `cargo bench`, appended to
//! `target/ztick-bench/latency.jsonl`.
//!
//! `cargo bench --bench latency -- --warm-up-time 0.5 --measurement-time 1 'inproc/'`

mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use std::time::Duration;
use ztick::IdleStrategy;

use common::rtt::{bench_round_trip, BarePair, EnginePair};
use common::{size_label, skip, spin_allowed, IDLES, SIZES, TRANSPORTS};

const SUITE: &str = "latency";

fn latency(c: &mut Criterion) {
    for transport in TRANSPORTS {
        let spin = spin_allowed(transport);
        for size in SIZES {
            for (idle_label, idle) in IDLES {
                let group = format!("latency/{transport}/{idle_label}/{}", size_label(size));
                let spinning = idle == IdleStrategy::BusySpin;
                if let (true, Err(reason)) = (spinning, &spin) {
                    skip(SUITE, &format!("{group}/engine"), reason);
                    skip(
                        SUITE,
                        &format!("{group}/bare"),
                        &format!("the engine's core budget, applied to the bare ends too: {reason}"),
                    );
                    continue;
                }
                let mut g = c.benchmark_group(&group);
                bench_round_trip(&mut g, SUITE, &group, "engine", || {
                    EnginePair::start(transport, size, idle).expect("engine pair")
                });
                if idle_label != "backoff" {
                    bench_round_trip(&mut g, SUITE, &group, "bare", || {
                        BarePair::start(transport, size, spinning).expect("bare pair")
                    });
                }
                g.finish();
            }
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    targets = latency
}
criterion_main!(benches);
