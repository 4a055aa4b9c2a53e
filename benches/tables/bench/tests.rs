use super::*;
use crate::tests::{assert_golden, testdata};

fn fixture() -> Data {
    Data::load(&testdata("bench/criterion"), &testdata("bench/hdr"), 0.0).unwrap()
}

fn meta() -> BenchMeta {
    read_json(&testdata("bench/meta.json")).unwrap()
}

#[test]
fn criterion_results_and_hdr_lines_load() {
    let d = fixture();
    let record = d.means["metrics/record"];
    assert!(record.lo <= record.mean && record.mean <= record.hi, "{record:?}");
    let rt = &d.hdr[&("latency/ipc/block/msg_64B/engine".to_owned(), "round_trip".to_owned())];
    assert!(rt.p50 <= rt.p99 && rt.p99 <= rt.p99_9);
    assert!(d.skipped["latency/tcp/spin/msg_64B/engine"].contains("core budget"));
}

#[test]
fn results_older_than_the_run_do_not_count() {
    // Every fixture was written before now, so none is this run's.
    let now = std::time::SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
    let d = Data::load(&testdata("bench/criterion"), &testdata("bench/hdr"), now + 60.0).unwrap();
    assert!(d.means.is_empty());
    assert!(!d.hdr.is_empty(), "HDR lines are cleared by bench.sh, not dated");
}

#[test]
fn section_nine_golden() {
    let compare = read_text(&testdata("bench/compare.md")).unwrap();
    assert_golden(&section(&fixture(), Some(&meta()), Some(Some(&compare))), "bench/section.md");
}

#[test]
fn a_failed_comparison_and_no_meta_say_so() {
    let s = section(&Data::default(), None, Some(None));
    assert!(s.contains("Measured ? on ?, ? cores"), "{s}");
    assert!(s.contains("### Raw libzmq from C\n\nNot run in this pass"), "{s}");
    assert!(s.contains("Not measured in this run."), "{s}");
    assert!(!section(&Data::default(), None, None).contains("Raw libzmq"));
}

#[test]
fn sizes_read_as_people_write_them() {
    assert_eq!(pretty_size("msg_1B"), "1 B");
    assert_eq!(pretty_size("msg_64KiB"), "64 KiB");
}

#[test]
fn the_section_goes_between_the_markers() {
    let md = format!("# T\n\nbefore\n{BEGIN}\nold\n{END}\nafter\n");
    assert_eq!(splice(&md, "new\n\n").unwrap(), format!("# T\n\nbefore\n{BEGIN}\nnew\n{END}\nafter\n"));
    assert_eq!(splice("# T\n\n", "new").unwrap(), format!("# T\n\n{BEGIN}\nnew\n{END}\n"));
    assert!(splice(&format!("{END}\n{BEGIN}\n"), "x").is_err());
}

#[test]
fn meta_is_written_as_it_is_read() {
    let m = BenchMeta::collect(true, "0.10 0.20".into(), vec!["cargo bench".into()]);
    assert_eq!(m.commands, ["scripts/bench.sh --quick", "# which runs:", "cargo bench"]);
    let again: BenchMeta = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
    assert_eq!(again, m);
}
