//! The Z85 codec and czmq certificate parser (`ztick::curve`) over arbitrary text and bytes.
//!
//! Beyond "no panic" it asserts: Z85 is a bijection on what it accepts (text that decodes
//! re-encodes to itself; bytes of a length divisible by 4 decode back from their encoding,
//! five characters per four bytes); a key parses from text exactly when that text, trimmed,
//! is Z85 of 32 bytes, and its error never shows more than the first five characters of a
//! rejected secret; a certificate that parses renders and parses back to the same keys, and
//! a rendered certificate of arbitrary keys parses back to them.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use ztick::curve::{CurveKey, KeyPair};
use ztick::fuzz_hooks::{z85_decode, z85_encode, zcert_parse, zcert_render};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    text: &'a str,
    bytes: &'a [u8],
    public: [u8; 32],
    secret: [u8; 32],
}

fuzz_target!(|input: Input<'_>| {
    let text = input.text;
    if let Some(bytes) = z85_decode(text) {
        assert_eq!(bytes.len() * 5, text.len() * 4);
        assert_eq!(z85_encode(&bytes), text, "Z85 text re-encodes to itself");
    }
    let whole = &input.bytes[..input.bytes.len() / 4 * 4];
    let encoded = z85_encode(whole);
    assert_eq!(encoded.len(), whole.len() / 4 * 5);
    assert_eq!(z85_decode(&encoded).as_deref(), Some(whole), "bytes decode back from Z85");

    match text.parse::<CurveKey>() {
        Ok(key) => {
            assert_eq!(z85_decode(text.trim()).as_deref(), Some(&key.as_bytes()[..]));
            assert_eq!(key.to_string(), text.trim());
        }
        Err(e) => {
            let decoded = z85_decode(text.trim());
            assert!(decoded.is_none_or(|b| b.len() != 32), "a 32-byte Z85 key refused");
            let msg = e.to_string();
            if text.chars().count() > 12 && text.chars().all(|c| c.is_ascii_alphanumeric()) {
                assert!(!msg.contains(text), "the error shows the whole rejected key: {msg}");
            }
        }
    }

    if let Some((public, secret)) = zcert_parse(text) {
        let pair =
            KeyPair { public: public.clone(), secret: secret.clone().unwrap_or_else(|| public.clone()) };
        let (p, s) =
            zcert_parse(&zcert_render(&pair, secret.is_some())).expect("a rendered certificate parses");
        assert_eq!((p, s), (public, secret), "a certificate renders and parses back");
    }
    let pair =
        KeyPair { public: CurveKey::from_bytes(input.public), secret: CurveKey::from_bytes(input.secret) };
    for secret in [false, true] {
        let (p, s) = zcert_parse(&zcert_render(&pair, secret)).expect("a rendered certificate parses");
        assert_eq!(p, pair.public);
        assert_eq!(s, secret.then(|| pair.secret.clone()));
    }
});
