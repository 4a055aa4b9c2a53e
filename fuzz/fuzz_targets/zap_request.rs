//! The ZAP handler's answer (`ztick::zap`) to arbitrary requests: any number of frames of any
//! bytes, under a policy with or without a key list and an address list built from the input.
//!
//! Beyond "no panic" it asserts what fail-closed means: every reply is six frames of ZAP 1.0
//! echoing the request id; exactly one counter moves per request and matches the status
//! (200 allowed, 400 denied, 500 malformed); a malformed request is never allowed; with a key
//! list only a CURVE request whose first credential is a listed 32-byte key is allowed, and
//! its user id is that key in Z85; with an address list, only a listed address is allowed.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use ztick::curve::CurveKey;
use ztick::fuzz_hooks::zap_answer;
use ztick::zap::{ZapPolicy, ZapStats};

#[derive(Arbitrary, Debug)]
struct Input {
    frames: Vec<Vec<u8>>,
    /// Keys on the allow-list (a list only when `Some`).
    keys: Option<Vec<[u8; 32]>>,
    /// Also list the request's own credential (so allowed requests are reachable).
    list_own_key: bool,
    addresses: Option<Vec<String>>,
    list_own_address: bool,
}

fuzz_target!(|input: Input| {
    let frames: Vec<&[u8]> = input.frames.iter().map(Vec::as_slice).collect();
    let mut policy = ZapPolicy::default();
    if let Some(keys) = &input.keys {
        let own = frames.get(6).and_then(|c| CurveKey::from_slice(c)).filter(|_| input.list_own_key);
        policy = policy.allow_keys(keys.iter().map(|k| CurveKey::from_bytes(*k)).chain(own));
    }
    if let Some(addresses) = &input.addresses {
        let own =
            frames.get(3).filter(|_| input.list_own_address).map(|a| String::from_utf8_lossy(a).into_owned());
        policy = policy.allow_addresses(addresses.iter().cloned().chain(own));
    }

    let (reply, stats) = zap_answer(&policy, &frames);
    assert_eq!(reply.len(), 6, "a ZAP reply is six frames");
    assert_eq!(reply[0], b"1.0");
    assert_eq!(reply[1], frames.get(1).copied().unwrap_or(&[]), "the request id is echoed");
    assert!(reply[5].is_empty(), "no metadata");
    let (allowed, denied, malformed) = (
        ZapStats { allowed: 1, ..ZapStats::default() },
        ZapStats { denied: 1, ..ZapStats::default() },
        ZapStats { malformed: 1, ..ZapStats::default() },
    );
    let code = reply[2].as_slice();
    match code {
        b"200" => assert_eq!(stats, allowed),
        b"400" => assert_eq!(stats, denied),
        b"500" => assert_eq!(stats, malformed),
        other => panic!("status {:?}", String::from_utf8_lossy(other)),
    }
    assert!(!reply[3].is_empty(), "every status has a text");

    let well_formed = frames.len() >= 6 && frames[0] == b"1.0";
    if !well_formed {
        assert_eq!(code, b"500", "a malformed request is answered 500");
        return;
    }
    assert_ne!(code, b"500", "a well-formed request is decided");
    if code != b"200" {
        assert!(reply[4].is_empty(), "a refusal names no user");
        return;
    }
    // Allowed: check that the policy really allows it.
    if let Some(allowed) = &policy.addresses {
        assert!(allowed.contains(String::from_utf8_lossy(frames[3]).as_ref()), "address not listed, allowed");
    }
    let mechanism = frames[5];
    let key = frames.get(6).and_then(|c| CurveKey::from_slice(c));
    match (&policy.keys, mechanism) {
        (_, b"CURVE") => {
            let key = key.expect("a CURVE request without a 32-byte key was allowed");
            assert_eq!(reply[4], key.to_string().into_bytes(), "the user id is the client's key");
            if let Some(keys) = &policy.keys {
                assert!(keys.contains(&key), "key not listed, allowed");
            }
        }
        (Some(_), m) => panic!("mechanism {:?} allowed with a key list", String::from_utf8_lossy(m)),
        (None, _) => assert!(reply[4].is_empty()),
    }
});
