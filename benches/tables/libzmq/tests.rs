use super::*;
use crate::tests::{assert_golden, testdata};

#[test]
fn libzmq_tables_golden() {
    let lines: Vec<LibzmqLine> = read_lines(&testdata("libzmq/results.jsonl")).unwrap();
    let meta: LibzmqMeta = read_json(&testdata("libzmq/meta.json")).unwrap();
    assert_golden(&render(&lines, Some(&meta)), "libzmq/table.md");
}

#[test]
fn the_preamble_lists_the_settings_in_the_files_order() {
    let meta: LibzmqMeta = read_json(&testdata("libzmq/meta.json")).unwrap();
    let json = serde_json::to_string(&meta).unwrap();
    let keys = ["date", "host", "rounds", "round trips", "thr count", "C vendored", "C debian", "ztick"];
    let at =
        |text: &str, pattern: String| text.find(&pattern).unwrap_or_else(|| panic!("{pattern} in {text}"));
    let summary = meta.summary();
    for pair in keys.windows(2) {
        assert!(at(&json, format!("\"{}\":", pair[0])) < at(&json, format!("\"{}\":", pair[1])), "{json}");
        assert!(at(&summary, format!("{}: ", pair[0])) < at(&summary, format!("{}: ", pair[1])), "{summary}");
    }
    let pinned = LibzmqMeta { pinned: Some("0 (busy row unpinned)".into()), ..meta };
    assert!(pinned.summary().ends_with("; pinned to CPUs: 0 (busy row unpinned)."));
    assert!(serde_json::to_string(&pinned).unwrap().contains("\"pinned to CPUs\":"));
}

#[test]
fn no_runs_and_failures_are_reported() {
    let line = |error: Option<&str>| LibzmqLine {
        stack: "ztick".into(),
        bench: "lat".into(),
        transport: "ipc".into(),
        size: 64,
        round: 1,
        result: None,
        error: error.map(str::to_owned),
    };
    let text = render(&[line(Some("exit 1"))], None);
    assert!(text.contains("(no successful runs)"), "{text}");
    assert!(text.contains("Failed runs: 1\n\n- ztick lat ipc 64 B round 1: exit 1"), "{text}");
}
