//! What latency recording costs: one `LatencyRecorder::record`, a coordinated-omission
//! corrected record, and merging two recorders (what a report does per thread).
//!
//! `cargo bench --bench metrics`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ztick::metrics::LatencyRecorder;

fn metrics(c: &mut Criterion) {
    let mut g = c.benchmark_group("metrics");
    g.throughput(Throughput::Elements(1));
    // Values spread like real latencies (20 us to 2 ms), cycled so the branch predictor
    // cannot learn one bucket.
    let values: Vec<u64> = (0..4096u64).map(|i| 20_000 + (i * 7919) % 2_000_000).collect();
    let mut rec = LatencyRecorder::new();
    let mut i = 0;
    g.bench_function("record", |b| {
        b.iter(|| {
            rec.record(black_box(values[i & 4095]));
            i += 1;
        })
    });
    let mut corrected = LatencyRecorder::new();
    g.bench_function("record_corrected_10us", |b| {
        b.iter(|| {
            // Mostly below the interval, as in a healthy paced feed: no synthetic samples.
            corrected.record_corrected(black_box(values[i & 4095] / 200), 10_000);
            i += 1;
        })
    });
    let mut a = LatencyRecorder::new();
    for &v in &values {
        a.record(v);
    }
    g.bench_function("merge", |b| {
        b.iter(|| {
            let mut total = LatencyRecorder::new();
            total.merge(black_box(&a));
            total
        })
    });
    g.finish();
}

criterion_group!(benches, metrics);
criterion_main!(benches);
