//! Every emitter's record parses through its type and says the same thing serialized
//! again; the fixtures are real lines from each program (benches/tables/testdata/).

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use ztick::metrics::LatencySummary;

use crate::record::BenchRecord;
use crate::schema::fanout::FanoutJson;
use crate::schema::{LatJson, ThrJson};
use crate::zmqrs_report::{Latency, ZmqrsRun};

/// `ztick fanout --json`, 2 subscribers, 4 topics, 20,000 ticks/s for 0.2 s, as ztick 0.1
/// printed it before epochs and repair (older result files look like this).
pub(crate) const FANOUT_JSON: &str = include_str!("testdata/fanout.json");
/// The same run as ztick prints it now (`ztick fanout --transport ipc --rate 20000
/// --duration 0.2 --topics 4 --json`), with epochs, outcomes and repair counts.
pub(crate) const FANOUT_V2_JSON: &str = include_str!("testdata/fanout-v2.json");
/// `zmqrs-fanout --json`, the same run on zmq.rs.
const ZMQRS_JSON: &str = include_str!("testdata/zmqrs-fanout.json");
/// scripts/c's `zlat ipc 64 2000` (vendored libzmq).
const ZLAT_JSON: &str = include_str!("testdata/zlat.json");
/// scripts/c's `floor ipc 64 2000`.
const FLOOR_JSON: &str = include_str!("testdata/floor.json");
/// scripts/c's `zthr ipc 64 100000` (Debian's libzmq).
const ZTHR_JSON: &str = include_str!("testdata/zthr.json");
/// `ztick lat --transport ipc --size 64 --count 2000 --json`.
const ZTICK_LAT_JSON: &str = include_str!("testdata/ztick-lat.json");
/// `ztick thr --transport ipc --size 64 --count 100000 --json`.
const ZTICK_THR_JSON: &str = include_str!("testdata/ztick-thr.json");

/// `text` parsed as `T`, and `T` written back: the same JSON value, no key lost or renamed.
fn round_trip<T: DeserializeOwned + Serialize>(text: &str) -> T {
    let record: T = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let again = serde_json::to_value(&record).unwrap();
    let original: Value = serde_json::from_str(text).unwrap();
    assert_eq!(again, original, "a key or value changed on the way through the type");
    record
}

#[test]
fn ztick_fanout_record_parses_whole() {
    let r: FanoutJson = round_trip(FANOUT_V2_JSON);
    assert_eq!(r.subscribers.len(), 2);
    assert_eq!(r.merged.received, r.subscribers.iter().map(|s| s.received).sum::<u64>());
    assert!(r.accounting_closes);
    for s in &r.subscribers {
        assert_eq!((s.outcome.as_str(), s.epochs.len()), ("complete", 1));
        assert_eq!(s.epochs[0].epoch, r.publisher.epoch);
    }
}

#[test]
fn a_record_from_before_epochs_still_reads() {
    let r: FanoutJson = serde_json::from_str(FANOUT_JSON).unwrap();
    assert!(r.accounting_closes && r.subscribers.len() == 2);
    for s in &r.subscribers {
        assert_eq!(
            (s.outcome.as_str(), s.repaired, s.epochs.len()),
            ("", 0, 0),
            "the new fields at their defaults"
        );
    }
}

#[test]
fn zmqrs_peer_record_parses_whole() {
    let r: ZmqrsRun = round_trip(ZMQRS_JSON);
    assert_eq!(r.stack, "zmq.rs");
    assert_eq!(r.subscribers.len(), 2);
    assert!(r.subscribers.iter().all(|s| s.received + s.missing == r.published));
}

#[test]
fn latency_lines_of_ztick_and_the_c_programs_share_one_type() {
    for text in [ZLAT_JSON, FLOOR_JSON, ZTICK_LAT_JSON] {
        let l: LatJson = round_trip(text);
        assert_eq!(l.latency_ns.count, l.count, "{text}");
        assert!(l.latency_ns.min <= l.latency_ns.p50 && l.latency_ns.p99_9 <= l.latency_ns.max, "{text}");
    }
    for text in [ZTHR_JSON, ZTICK_THR_JSON] {
        let t: ThrJson = round_trip(text);
        assert_eq!(t.count, 100_000, "{text}");
    }
}

#[test]
fn bench_lines_are_measured_or_skipped() {
    let measured = r#"{"id":"latency/ipc/block/msg_64B/engine","what":"round_trip","count":10,"min":1,"p50":2,"p90":3,"p99":4,"p99_9":5,"p99_99":6,"max":7,"mean":2.5}"#;
    let skipped = r#"{"id":"latency/tcp/spin/msg_64B/engine","skipped":"core budget exceeded"}"#;
    match round_trip::<BenchRecord>(measured) {
        BenchRecord::Measured { id, what, latency } => {
            assert_eq!(
                (id.as_str(), what.as_str(), latency.p99_9),
                ("latency/ipc/block/msg_64B/engine", "round_trip", 5)
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(round_trip::<BenchRecord>(skipped), BenchRecord::Skipped { .. }));
}

#[test]
fn the_peers_latency_has_the_keys_of_latency_summary() {
    let s =
        LatencySummary { count: 9, min: 1, p50: 2, p90: 3, p99: 4, p99_9: 5, p99_99: 6, max: 7, mean: 2.5 };
    let as_peer: Latency = serde_json::from_value(serde_json::to_value(s).unwrap()).unwrap();
    assert_eq!(serde_json::to_value(as_peer).unwrap(), serde_json::to_value(s).unwrap());
    assert_eq!(LatencySummary::from(as_peer), s);
}

#[test]
fn every_emitter_spells_the_quantities_one_way() {
    for text in [
        FANOUT_JSON,
        FANOUT_V2_JSON,
        ZMQRS_JSON,
        ZLAT_JSON,
        FLOOR_JSON,
        ZTHR_JSON,
        ZTICK_LAT_JSON,
        ZTICK_THR_JSON,
    ] {
        assert!(!text.contains("p99.9") && !text.contains("p999"), "{text}");
    }
    assert!(
        FANOUT_JSON.contains("\"p99_9\"")
            && ZMQRS_JSON.contains("\"p99_9\"")
            && ZLAT_JSON.contains("\"p99_9\"")
    );
}

/// A file under benches/tables/testdata/.
pub(crate) fn testdata(rel: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/tables/testdata").join(rel)
}

/// `got` must equal the golden file `rel`. `ZTICK_TABLES_BLESS=1 cargo test --bin
/// ztick-tables` rewrites the golden files instead, for a change meant to alter the tables
/// (review the diff).
pub(crate) fn assert_golden(got: &str, rel: &str) {
    let path = testdata(rel);
    if std::env::var_os("ZTICK_TABLES_BLESS").is_some() {
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for (n, (g, w)) in got.lines().zip(want.lines()).enumerate() {
        assert_eq!(g, w, "line {} of {} differs", n + 1, path.display());
    }
    assert_eq!(got, want, "{} differs in length", path.display());
}
