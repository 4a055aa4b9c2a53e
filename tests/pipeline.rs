//! The pipeline end to end on every transport: a ready handshake instead of a sleep, typed
//! results that really reach the sink, a ledger proving each task id arrived exactly once,
//! and malformed tasks and results counted while the pipeline keeps going.

mod common;

use std::collections::BTreeSet;

use common::{bind, connect, engine, with_timeout, TRANSPORTS, WAIT};
use ztick::patterns::{
    Done, PipelineWorker, Sink, Socket, StageConfig, Task, ToSink, Ventilator, MAX_WORKER_NAME_BYTES,
};
use ztick::{codec, Endpoint, SocketKind};

fn stage(name: &str) -> StageConfig {
    StageConfig { name: name.to_owned(), ..StageConfig::default() }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Job {
    n: u64,
    label: String,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Answer {
    square: u64,
    label_len: usize,
}

fn work(j: Job) -> Answer {
    Answer { square: j.n * j.n, label_len: j.label.len() }
}

#[test]
fn every_task_reaches_the_sink_exactly_once_on_every_transport() {
    const WORKERS: usize = 3;
    const TASKS: u64 = 600;
    for t in TRANSPORTS {
        with_timeout(WAIT, move || {
            let engine = engine();
            let (tx, rx) = crossbeam_channel::unbounded::<Done<Answer>>();
            let sink = Sink::bind(&engine, &Endpoint::local(t, "pl-sink"), &stage("sink"), move |d| {
                let _ = tx.send(d);
            })
            .unwrap();
            let mut vent =
                Ventilator::<Job>::bind(&engine, &Endpoint::local(t, "pl-vent"), &stage("vent")).unwrap();
            let workers: Vec<_> = (0..WORKERS)
                .map(|i| {
                    PipelineWorker::spawn(
                        &engine,
                        vent.endpoint(),
                        sink.endpoint(),
                        &stage(&format!("w{i}")),
                        work,
                    )
                    .unwrap()
                })
                .collect();
            // The handshake the guide's sleep should have been.
            let ready: BTreeSet<String> = sink.wait_ready(WORKERS, WAIT).unwrap().into_iter().collect();
            assert_eq!(ready, ["w0", "w1", "w2"].map(String::from).into(), "{t}");

            for n in 0..TASKS {
                let id = vent.send(&Job { n, label: format!("job-{n}") }).unwrap();
                assert_eq!(id, n);
            }
            let report = sink.wait_results(TASKS, WAIT);
            assert!(report.is_complete(), "{t}: {report:?}");
            assert_eq!(report.per_worker.values().sum::<u64>(), TASKS, "{t}");
            assert_eq!(report.input.handled, TASKS + WORKERS as u64, "{t}: results plus hellos");

            // The results are the typed values the workers computed, one per id.
            let mut got: Vec<Done<Answer>> = rx.try_iter().collect();
            got.sort_by_key(|d| d.id);
            assert_eq!(got.len() as u64, TASKS, "{t}");
            for (i, d) in got.iter().enumerate() {
                let n = i as u64;
                assert_eq!(d.id, n);
                assert_eq!(d.value, Answer { square: n * n, label_len: format!("job-{n}").len() }, "{t}");
            }

            let done: u64 = workers.into_iter().map(|w| w.stop().unwrap().handled).sum();
            assert_eq!(done, TASKS, "{t}");
            assert_eq!(vent.stop().unwrap().sent, TASKS, "{t}");
            let last = sink.stop(TASKS).unwrap();
            assert!(last.is_complete() && last.input.malformed() == 0, "{t}: {last:?}");
        });
    }
}

#[test]
fn the_ledger_names_missing_duplicate_and_unexpected_ids() {
    with_timeout(WAIT, || {
        let engine = engine();
        let sink = Sink::<u32>::bind(&engine, &Endpoint::unique_inproc("pl-ledger"), &stage("sink"), |_| {})
            .unwrap();
        // A raw PUSH plays the workers, so the test chooses exactly what the sink sees.
        let mut push = connect(&engine, SocketKind::Push, sink.endpoint());
        let send = |push: &mut Socket, m: &ToSink<u32>| push.send(&[&codec::encode(m).unwrap()]).unwrap();
        for id in [0, 1, 1, 3, 9] {
            send(&mut push, &ToSink::Done(Done { id, worker: "raw".into(), value: 7 }));
        }
        // Sent last on the same connection: once the sink has it, it has the rest.
        send(&mut push, &ToSink::Ready { worker: "raw".into() });
        sink.wait_ready(1, WAIT).unwrap();
        // Ids 0..5 expected: 2 and 4 never came.
        let r = sink.report(5);
        assert!(!r.is_complete());
        assert_eq!((r.received, r.missing, r.duplicates, r.unexpected), (3, 2, 1, 1), "{r:?}");
        assert_eq!(r.first_missing, vec![2, 4]);
        assert_eq!(r.per_worker.get("raw"), Some(&5));
    });
}

#[test]
fn a_peer_inventing_workers_and_ids_is_held_to_the_caps_and_every_eviction_is_counted() {
    with_timeout(WAIT, || {
        let engine = engine();
        let cfg = StageConfig { max_workers: 16, max_id_ranges: 101, ..stage("sink") };
        let sink = Sink::<u32>::bind(&engine, &Endpoint::unique_inproc("pl-caps"), &cfg, |_| {}).unwrap();
        let mut push = connect(&engine, SocketKind::Push, sink.endpoint());
        let send = |push: &mut Socket, m: &ToSink<u32>| push.send(&[&codec::encode(m).unwrap()]).unwrap();
        // 10,000 invented workers: 16 names are kept, every other one evicts the oldest.
        for i in 0..10_000 {
            send(&mut push, &ToSink::Ready { worker: format!("fake-{i}") });
        }
        // A name over the limit is refused, not kept.
        send(&mut push, &ToSink::Ready { worker: "n".repeat(MAX_WORKER_NAME_BYTES + 1) });
        // The real run starts its range; 200 scattered ids want 200 more, 100 fit.
        send(&mut push, &ToSink::Done(Done { id: 0, worker: "raw".into(), value: 7 }));
        for i in 0..200u64 {
            send(&mut push, &ToSink::Done(Done { id: 1_000_000 + 2 * i, worker: "raw".into(), value: 7 }));
        }
        // The rest of the real run extends its range, which needs no new one.
        for id in 1..10 {
            send(&mut push, &ToSink::Done(Done { id, worker: "raw".into(), value: 7 }));
        }
        let r = sink.wait_results(10, WAIT);
        assert_eq!((r.received, r.missing, r.duplicates), (10, 0, 0), "{r:?}");
        assert_eq!((r.unexpected, r.unrecorded), (100, 100), "{r:?}");
        assert!(!r.is_complete(), "an unrecorded result leaves the run unproven");
        assert_eq!(r.ready.len(), 16);
        assert_eq!(r.per_worker.len(), 16);
        // 10,000 + "raw" names, 16 kept.
        assert_eq!(r.evicted, 10_001 - 16);
        assert_eq!(r.per_worker.get("raw"), Some(&210));
        assert_eq!(r.input.too_large, 1, "{:?}", r.input);
        assert_eq!(r.ready.last().map(String::as_str), Some("fake-9999"));
    });
}

#[test]
fn malformed_results_are_counted_and_the_pipeline_still_completes() {
    for t in TRANSPORTS {
        with_timeout(WAIT, move || {
            let engine = engine();
            let cfg = StageConfig { max_msg_bytes: 4096, ..stage("sink") };
            let sink =
                Sink::<Answer>::bind(&engine, &Endpoint::local(t, "pl-badsink"), &cfg, |_| {}).unwrap();
            let mut vent =
                Ventilator::<Job>::bind(&engine, &Endpoint::local(t, "pl-vent"), &stage("vent")).unwrap();

            // Garbage first, from a raw PUSH: one of each kind.
            let mut bad = connect(&engine, SocketKind::Push, sink.endpoint());
            bad.send(&[b""]).unwrap(); // empty
            bad.send(&[b"a", b"b"]).unwrap(); // two frames
            bad.send(&[&vec![1u8; 5000]]).unwrap(); // too large
            bad.send(&[&[0xde, 0xad, 0xbe, 0xef]]).unwrap(); // undecodable
                                                             // A valid announcement behind them on the same connection: once it is in, so are they.
            bad.send(&[&codec::encode(&ToSink::<Answer>::Ready { worker: "raw".into() }).unwrap()]).unwrap();
            sink.wait_ready(1, WAIT).unwrap();
            let s = sink.input_stats();
            assert_eq!((s.empty, s.bad_frames, s.too_large, s.undecodable), (1, 1, 1, 1), "{t}: {s:?}");

            // The real pipeline is served as if nothing happened.
            let _w =
                PipelineWorker::spawn(&engine, vent.endpoint(), sink.endpoint(), &stage("w"), work).unwrap();
            sink.wait_ready(2, WAIT).unwrap();
            for n in 0..50 {
                vent.send(&Job { n, label: String::new() }).unwrap();
            }
            let r = sink.wait_results(50, WAIT);
            assert!(r.is_complete(), "{t}: {r:?}");
            assert_eq!(r.input.malformed(), 4, "{t}");
        });
    }
}

#[test]
fn malformed_tasks_are_counted_by_the_worker_which_serves_on() {
    for t in TRANSPORTS {
        with_timeout(WAIT, move || {
            let engine = engine();
            let sink =
                Sink::<Answer>::bind(&engine, &Endpoint::local(t, "pl-s"), &stage("sink"), |_| {}).unwrap();
            // A raw PUSH plays the ventilator.
            let mut vent = bind(&engine, SocketKind::Push, &Endpoint::local(t, "pl-rawvent"));
            let vent_ep: Endpoint = vent.endpoint().parse().unwrap();
            let cfg = StageConfig { max_msg_bytes: 1024, ..stage("w") };
            let worker = PipelineWorker::spawn(&engine, &vent_ep, sink.endpoint(), &cfg, work).unwrap();
            sink.wait_ready(1, WAIT).unwrap();

            let task = |id, n| codec::encode(&Task { id, value: Job { n, label: "ok".into() } }).unwrap();
            vent.send(&[&task(0, 2)]).unwrap();
            vent.send(&[b""]).unwrap(); // empty
            vent.send(&[&task(1, 3), b"extra frame"]).unwrap(); // frames
            vent.send(&[&vec![9u8; 2048]]).unwrap(); // too large
            vent.send(&[&codec::encode(&Task { id: 5, value: "a string, not a Job" }).unwrap()]).unwrap();
            vent.send(&[&task(1, 3)]).unwrap();
            let r = sink.wait_results(2, WAIT);
            assert!(r.is_complete(), "{t}: both valid tasks answered: {r:?}");
            let s = worker.stop().unwrap();
            assert_eq!(
                (s.handled, s.empty, s.bad_frames, s.too_large, s.undecodable),
                (2, 1, 1, 1, 1),
                "{t}: {s:?}"
            );
        });
    }
}
