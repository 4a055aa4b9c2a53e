//! Encoding and decoding one typical tick: ztick's fixed record layout (`fanout::wire`)
//! against serde + bincode 2 for the same fields.
//!
//! `cargo bench --bench codec`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde::{Deserialize, Serialize};
use ztick::fanout::wire::{decode, BodyWriter, Kind};

#[derive(Serialize, Deserialize)]
struct Tick {
    topic: String,
    seq: u64,
    sent_ns: u64,
    intended_ns: u64,
    payload: Vec<u8>,
}

fn codec(c: &mut Criterion) {
    let mut g = c.benchmark_group("codec/tick_64B");
    g.throughput(Throughput::Elements(1));
    let payload = [0xA5u8; 64];
    let mut w = BodyWriter::new(Kind::Data, 0x5eed);
    g.bench_function("wire/encode", |b| {
        b.iter(|| {
            w.clear();
            w.push(black_box(b"t3"), black_box(42), black_box(7), &payload);
            w.stamp_sent(black_box(9));
            w.as_bytes().len()
        })
    });
    w.clear();
    w.push(b"t3", 42, 7, &payload);
    let body = w.as_bytes().to_vec();
    g.bench_function("wire/decode", |b| {
        b.iter(|| {
            let d = decode(black_box(&body)).expect("valid body");
            d.records().map(|r| r.map(|t| t.seq).unwrap_or(0)).sum::<u64>()
        })
    });
    let config = bincode::config::standard().with_fixed_int_encoding();
    let tick = Tick { topic: "t3".into(), seq: 42, sent_ns: 9, intended_ns: 7, payload: payload.to_vec() };
    let mut buf = Vec::with_capacity(256);
    g.bench_function("bincode/encode", |b| {
        b.iter(|| {
            buf.clear();
            bincode::serde::encode_into_std_write(black_box(&tick), &mut buf, config).expect("encodes");
            buf.len()
        })
    });
    let bytes = bincode::serde::encode_to_vec(&tick, config).expect("encodes");
    g.bench_function("bincode/decode", |b| {
        b.iter(|| {
            let (t, _): (Tick, usize) =
                bincode::serde::decode_from_slice(black_box(&bytes), config).expect("decodes");
            t.seq
        })
    });
    g.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
