use super::*;
use crate::tests::{assert_golden, testdata, FANOUT_JSON};

fn line(stack: &str, bench: &str, rate: u64) -> ZmqrsLine {
    ZmqrsLine {
        stack: stack.into(),
        bench: bench.into(),
        transport: "ipc".into(),
        subscribers: 2,
        round: 1,
        rate,
        pass: false,
        result: None,
        p99_bound_us: None,
        error: None,
    }
}

#[test]
fn zmqrs_tables_golden() {
    let lines: Vec<ZmqrsLine> = read_lines(&testdata("zmqrs/results.jsonl")).unwrap();
    assert_golden(&render(&lines), "zmqrs/table.md");
}

#[test]
fn a_run_passes_when_nothing_is_missed_at_the_pace_asked() {
    let (l, note) = record(line("ztick", "lat", 20_000), FANOUT_JSON, 0.0);
    // 19,781 of 20,000 ticks/s: 98.9 %, within the 97 % kept.
    assert!(l.pass, "{note}");
    assert!(l.p99_bound_us.is_none());
    assert!(
        note.starts_with("  ztick  ipc x2 rate    20000: achieved     19781/s, missing 0, worst p50 364.0"),
        "{note}"
    );
    let (l, _) = record(line("ztick", "lat", 30_000), FANOUT_JSON, 0.0);
    assert!(!l.pass, "19,781 is not 97 % of 30,000");
}

#[test]
fn a_max_step_fails_past_its_p99_bound() {
    // The worst corrected p99 of the fixture is 4,042,751 ns.
    let (l, note) = record(line("ztick", "max", 20_000), FANOUT_JSON, 4_000.0);
    assert!(!l.pass && note.ends_with("[FAIL]"), "{note}");
    assert_eq!(l.p99_bound_us, Some(4_000.0));
    let (l, _) = record(line("ztick", "max", 20_000), FANOUT_JSON, 5_000.0);
    assert!(l.pass);
    let (l, _) = record(line("ztick", "lat", 20_000), FANOUT_JSON, 4_000.0);
    assert!(l.pass && l.p99_bound_us.is_none(), "the bound is for max steps only");
}

#[test]
fn an_unreadable_record_is_a_failed_run() {
    let (l, note) = record(line("zmq.rs", "lat", 20_000), FANOUT_JSON, 0.0);
    assert!(!l.pass && l.result.is_none(), "ztick's record is not zmq.rs's");
    assert!(l.error.as_deref().is_some_and(|e| e.contains("not zmq.rs's record")), "{note}");
    let (l, _) = record(line("ztick", "lat", 20_000), "not json", 0.0);
    assert!(l.error.is_some());
}

#[test]
fn the_line_is_compact_and_says_pass_as_the_script_greps_it() {
    let (l, _) = record(line("ztick", "lat", 20_000), FANOUT_JSON, 0.0);
    let text = crate::schema::to_line(&l);
    assert!(text.starts_with(r#"{"stack":"ztick","bench":"lat","transport":"ipc","subscribers":2,"round":1,"rate":20000,"pass":true,"result":{"#));
    let back: ZmqrsLine = serde_json::from_str(&text).unwrap();
    assert_eq!(back, l);
}
