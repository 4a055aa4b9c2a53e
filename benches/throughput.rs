//! Messages per second through the engine: a sending worker puts messages on its socket, a
//! receiving worker counts them; a sample runs from the job's start until the last message
//! has been counted. Both workers block when idle. The messages come either from the bench
//! thread (`handoff`: `Handle::send` per message, the worker draining at most `batch`
//! hand-offs per pass of its loop) or from the sending worker's handler (`worker`: `batch`
//! sends per pass, no hand-off). The receiver takes at most `batch` messages per pass.
//!
//! - `throughput/<push_pull|pub_sub>/<transport>/msg_<size>/<handoff|worker>/batch_<1|16|256>`:
//!   copying sends; the batching gain is `batch_256` over `batch_1`. PUB uses
//!   `ZMQ_XPUB_NODROP`, so nothing is dropped at the HWM and every message is counted. NB:
//!   libzmq 4.3.4 reports a PUB socket as always writable (`dist_t::has_out` returns true),
//!   so a worker that waits for room at the HWM cannot sleep until there is room: it
//!   retries every 200 µs (see `PUB_BLOCKED_RETRY` in the engine), which the PUB/SUB
//!   figures include.
//! - `throughput/zero_copy/<inproc|tcp>/msg_<size>/<handoff|worker>/<copy|pooled>`:
//!   PUSH/PULL at batch 256, copied sends (from a `Vec` per hand-off, or from the handler's
//!   buffer) against pooled ones (a `PooledBuf` filled and lent to libzmq, which gives it
//!   back to the pool), 64 B to 64 KiB: where zero-copy starts to pay.
//!
//! Criterion reports elements (messages) per second. `cargo bench --bench throughput --
//! 'push_pull/tcp/'` selects a slice.

mod common;

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};

use common::flow::{bench_flow, FlowCase, FlowPair, Pattern, Sends, Source};
use common::{size_label, SIZES, TRANSPORTS};
use ztick::Transport;

const BATCHES: [usize; 3] = [1, 16, 256];
const ZERO_COPY_SIZES: [usize; 6] = [64, 256, 1024, 4096, 16 * 1024, 64 * 1024];

fn after(id: &str, p: &FlowPair) {
    let mut line = format!("{id}: mean sender batch {:.1}", p.mean_batch());
    if let Some(s) = p.pool_stats() {
        line += &format!(", pool hits {} misses {}", s.hits, s.misses);
    }
    if p.wrong_sizes() > 0 {
        line += &format!(", {} messages of the wrong size", p.wrong_sizes());
    }
    println!("{line}");
}

fn group<'a>(
    c: &'a mut Criterion,
    name: &str,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(1));
    // Few long samples: each starts by waking two parked workers, which must not weigh.
    g.sampling_mode(SamplingMode::Flat);
    g
}

const SOURCES: [Source; 2] = [Source::Handoff, Source::Worker];

fn batching(c: &mut Criterion) {
    for pattern in [Pattern::PushPull, Pattern::PubSub] {
        for transport in TRANSPORTS {
            for size in SIZES {
                for source in SOURCES {
                    let name = format!(
                        "throughput/{}/{transport}/{}/{}",
                        pattern.label(),
                        size_label(size),
                        source.label()
                    );
                    let mut g = group(c, &name);
                    for batch in BATCHES {
                        let id = format!("batch_{batch}");
                        let case = FlowCase { pattern, transport, size, batch, sends: Sends::Copy, source };
                        bench_flow(
                            &mut g,
                            &id,
                            || FlowPair::start(case).expect("flow pair"),
                            |p| after(&format!("{name}/{id}"), p),
                        );
                    }
                    g.finish();
                }
            }
        }
    }
}

fn zero_copy(c: &mut Criterion) {
    for transport in [Transport::Inproc, Transport::Tcp] {
        for size in ZERO_COPY_SIZES {
            for source in SOURCES {
                let name =
                    format!("throughput/zero_copy/{transport}/{}/{}", size_label(size), source.label());
                let mut g = group(c, &name);
                for sends in [Sends::Copy, Sends::Pooled] {
                    let case =
                        FlowCase { pattern: Pattern::PushPull, transport, size, batch: 256, sends, source };
                    bench_flow(
                        &mut g,
                        sends.label(),
                        || FlowPair::start(case).expect("flow pair"),
                        |p| after(&format!("{name}/{}", sends.label()), p),
                    );
                }
                g.finish();
            }
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(10);
    targets = batching, zero_copy
}
criterion_main!(benches);
