//! ROUTER envelopes (`ztick::patterns`): where the body starts in arbitrary frames, the reply
//! built behind an envelope, the body checks serving patterns make, and routing ids as
//! traces print them.
//!
//! Beyond "no panic" it asserts: the body starts right after the first empty frame past the
//! routing id, and there is no start without one; a reply is the envelope then the reply's
//! frames, never bodiless; a body is refused as empty exactly when it has no bytes and as
//! too large exactly when it has more than the limit; a routing id prints as `0x` and two
//! lower-case hex digits per byte, which read back as the id.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use ztick::fuzz_hooks::{body_start, check_body, peer_id, reply_parts};
use ztick::patterns::Malformed;

#[derive(Arbitrary, Debug)]
struct Input {
    frames: Vec<Vec<u8>>,
    reply: Vec<Vec<u8>>,
    max_bytes: u16,
}

fuzz_target!(|input: Input| {
    let frames: Vec<&[u8]> = input.frames.iter().map(Vec::as_slice).collect();
    let first_empty = frames.iter().skip(1).position(|f| f.is_empty()).map(|p| p + 1);
    match body_start(&frames) {
        Some(start) => {
            assert_eq!(Some(start - 1), first_empty, "the body starts after the first delimiter");
            assert!((2..=frames.len()).contains(&start));
            let (envelope, body) = frames.split_at(start);
            let parts = reply_parts(envelope, &input.reply);
            assert_eq!(&parts[..envelope.len()], envelope, "the envelope leads the reply");
            let rest = &parts[envelope.len()..];
            if input.reply.is_empty() {
                assert_eq!(rest, [&[][..]], "an empty reply is one empty body frame");
            } else {
                assert!(rest.iter().copied().eq(input.reply.iter().map(Vec::as_slice)));
            }
            check(body, usize::from(input.max_bytes));
        }
        None => assert_eq!(first_empty, None, "a delimiter was there"),
    }
    check(&frames, usize::from(input.max_bytes));

    for id in frames.iter().take(4) {
        let shown = peer_id(id);
        assert_eq!(shown.len(), 2 + 2 * id.len());
        let hex = shown.strip_prefix("0x").expect("0x prefix");
        assert!(hex.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
        let back: Vec<u8> =
            (0..id.len()).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex")).collect();
        assert_eq!(&back, id);
    }
});

fn check(body: &[&[u8]], max_bytes: usize) {
    let size: usize = body.iter().map(|f| f.len()).sum();
    match check_body(body, max_bytes) {
        Some((Malformed::Empty, why)) => assert!(size == 0 && !why.is_empty()),
        Some((Malformed::TooLarge, why)) => assert!(size > max_bytes && size > 0 && !why.is_empty()),
        Some((other, _)) => panic!("{other:?} from a size check"),
        None => assert!(size > 0 && size <= max_bytes),
    }
}
