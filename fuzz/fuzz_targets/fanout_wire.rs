//! The fan-out's wire decoder: `ztick::fanout::wire::{split_frames, decode}` over arbitrary
//! bytes, taken as a body, as a one-frame feed message (`group 0x00 body`) and as two and
//! three frames, and every iterator and accessor of what decodes (records, ranges, clock).
//!
//! Beyond "no panic" it asserts: a body shorter than its header never decodes; the header
//! fields are the bytes they come from; every slice a record borrows lies inside the body;
//! an iterator yields at most the header's count and nothing after its first error; ranges
//! are never empty nor start at 0; control records carry no times; a body whose records
//! all decode is re-encoded byte for byte by `BodyWriter` (or `encode_clock`), up to the
//! trailing bytes the decoder ignores; a one-frame message splits at its first NUL.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ztick::fanout::wire::{self, BodyWriter, Kind, BODY_HEADER, VERSION};

fuzz_target!(|data: &[u8]| {
    check_body(data);
    check_split(&[data]);
    if let Some((&at, rest)) = data.split_first() {
        let at = usize::from(at).min(rest.len());
        check_split(&[&rest[..at], &rest[at..]]);
        check_split(&[&rest[..at], &rest[at..], b""]);
        if let Some(nul) = data.iter().position(|&b| b == 0) {
            check_body(&data[nul + 1..]);
        }
    }
});

/// Whether `inner` lies within `outer` (a borrowed slice, not a copy).
fn within(outer: &[u8], inner: &[u8]) -> bool {
    let (o, i) = (outer.as_ptr() as usize, inner.as_ptr() as usize);
    inner.is_empty() || (i >= o && i + inner.len() <= o + outer.len())
}

fn check_split(frames: &[&[u8]]) {
    match (frames, wire::split_frames(frames)) {
        ([group, body], Ok((g, b))) => assert!(g == *group && b == *body),
        ([single], Ok((g, b))) => {
            assert!(!g.contains(&0), "the group ends at the first NUL");
            assert_eq!(g.len() + 1 + b.len(), single.len());
            assert_eq!(single[g.len()], 0);
            check_body(b);
        }
        ([single], Err(_)) => assert!(!single.contains(&0), "a NUL splits"),
        ([_, _], Err(e)) => panic!("two frames always split: {e}"),
        (_, Ok(_)) => panic!("{} frames split", frames.len()),
        (_, Err(_)) => {}
    }
}

fn check_body(body: &[u8]) {
    let d = match wire::decode(body) {
        Ok(d) => d,
        Err(e) => {
            let msg = e.to_string();
            assert!(!msg.is_empty());
            return;
        }
    };
    assert!(body.len() >= BODY_HEADER, "a {}-byte body decoded", body.len());
    assert_eq!(body[0], VERSION);
    assert_eq!(d.count, u16::from_le_bytes([body[2], body[3]]));
    assert_eq!(d.epoch, u64::from_le_bytes(body[4..12].try_into().unwrap()));

    let control = matches!(d.kind, Kind::Heartbeat | Kind::End | Kind::Snapshot);
    let mut rebuilt = BodyWriter::new(d.kind, d.epoch);
    let (mut n, mut whole) = (0usize, true);
    let mut records = d.records();
    for r in records.by_ref() {
        n += 1;
        match r {
            Ok(t) => {
                assert!(!t.topic.is_empty() && t.topic.len() <= 255);
                assert!(within(body, t.topic) && within(body, t.payload));
                if control {
                    assert_eq!((t.sent_ns, t.intended_ns), (0, 0), "control records carry no times");
                    rebuilt.push_last(t.topic, t.seq, t.payload);
                } else {
                    rebuilt.push_sent(t.topic, t.seq, t.sent_ns, t.intended_ns, t.payload);
                }
            }
            Err(_) => whole = false,
        }
    }
    assert!(records.next().is_none(), "nothing after the end or an error");
    assert!(n <= usize::from(d.count));
    let range_kind = matches!(d.kind, Kind::Gone | Kind::Nak | Kind::Clock);
    if range_kind {
        assert_eq!(n, 0, "a {:?} body has no tick records", d.kind);
    }

    let mut m = 0usize;
    let mut ranges = d.ranges();
    for r in ranges.by_ref() {
        m += 1;
        match r {
            Ok(r) => {
                assert!(r.first >= 1 && r.first <= r.last, "range {}..={}", r.first, r.last);
                assert!(!r.topic.is_empty() && within(body, r.topic));
                rebuilt.push_range(r.topic, r.first, r.last);
            }
            Err(_) => whole = false,
        }
    }
    assert!(ranges.next().is_none());
    assert!(m <= usize::from(d.count));
    if !matches!(d.kind, Kind::Gone | Kind::Nak) {
        assert_eq!(m, 0, "a {:?} body has no ranges", d.kind);
    }

    match d.clock() {
        Ok(c) => {
            assert_eq!(d.kind, Kind::Clock);
            assert!(within(body, c.clock_id));
            let mut b = Vec::new();
            wire::encode_clock(d.epoch, &c, &mut b);
            // A clock body's header count is not read: compare around it.
            assert_eq!((&b[..2], &b[4..]), (&body[..2], &body[4..b.len()]));
        }
        Err(_) if d.kind == Kind::Clock => {
            let r = &body[BODY_HEADER..];
            assert!(r.len() < 17 || r.len() < 17 + usize::from(r[16]), "a whole clock body refused");
        }
        Err(_) => {}
    }

    if whole && d.kind != Kind::Clock {
        let b = rebuilt.as_bytes();
        assert_eq!(rebuilt.count(), d.count, "every record counted");
        assert!(b.len() <= body.len());
        assert_eq!(b, &body[..b.len()], "re-encoded byte for byte");
    }
}
