//! The `ztick` command line's settings parser (src/bin/ztick/settings.rs, compiled here as
//! it is): arbitrary TOML text, arbitrary environment values (not always UTF-8), and the
//! three stacked.
//!
//! Beyond "no panic" it asserts: an error is a configuration error that names its source
//! and says what is accepted; every value read shows in the text and JSON renderings
//! (the JSON parses, one object per key) and, shown, reads back as the same value; a
//! higher source overrides a lower one key by key.
#![no_main]

#[allow(dead_code, unreachable_pub)]
#[path = "../../src/bin/ztick/settings.rs"]
mod settings;

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use settings::{Key, Settings, Source};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    toml: &'a str,
    env: [Option<Vec<u8>>; 5],
    flag: Option<(u8, &'a str)>,
}

fuzz_target!(|input: Input<'_>| {
    let path = Path::new("/etc/ztick.toml");
    let file = match Settings::from_toml(input.toml, path) {
        Ok(s) => {
            check(&s);
            s
        }
        Err(e) => {
            assert!(matches!(e, ztick::Error::Config { .. }), "{e:?}");
            assert!(e.to_string().contains("/etc/ztick.toml"), "the error names the file: {e}");
            Settings::default()
        }
    };
    let env = Settings::from_env(|var| {
        let i = Key::ALL.iter().position(|k| k.env_var() == var).expect("a known variable");
        input.env[i].clone().map(OsString::from_vec)
    });
    let env = match env {
        Ok(s) => {
            check(&s);
            s
        }
        Err(e) => {
            assert!(matches!(e, ztick::Error::Config { .. }), "{e:?}");
            assert!(e.to_string().contains("ZMQ_"), "the error names the variable: {e}");
            Settings::default()
        }
    };
    let mut flags = Settings::default();
    if let Some((k, text)) = input.flag {
        let key = Key::ALL[usize::from(k) % Key::ALL.len()];
        if let Err(e) = flags.set(key, text, Source::Flag(key.flag())) {
            assert!(e.to_string().contains(key.flag()), "the error names the flag: {e}");
        }
    }
    let all = file.clone().overlay(env.clone()).overlay(flags.clone());
    check(&all);
    assert_eq!(all.hwm_msgs, flags.hwm_msgs.or(env.hwm_msgs).or(file.hwm_msgs));
    assert_eq!(all.bind_address, flags.bind_address.or(env.bind_address).or(file.bind_address));
    let _ = all.attach(true);
    let _ = all.attach(false);
    let _ = all.socket_options();
});

/// Renders `s` and reads each shown value back.
fn check(s: &Settings) {
    let text = s.to_text();
    assert_eq!(text.lines().count(), Key::ALL.len());
    let json: serde_json::Value = serde_json::from_str(&s.to_json()).expect("to_json is JSON");
    let map = json.as_object().expect("an object");
    assert_eq!(map.len(), Key::ALL.len());
    for (key, line) in Key::ALL.into_iter().zip(text.lines()) {
        assert!(line.starts_with(&format!("{} = ", key.toml_key())));
        assert!(map[key.toml_key()].get("source").is_some());
        let shown = line[key.toml_key().len() + 3..].split("  # ").next().expect("a value");
        let mut back = Settings::default();
        let source = Source::Flag(key.flag());
        let set = match key {
            Key::BindAddress => s.bind_address.is_some(),
            Key::ConnectAddress => s.connect_address.is_some(),
            Key::Pattern => s.pattern.is_some(),
            Key::Hwm => s.hwm_msgs.is_some(),
            Key::LingerMs => s.linger.is_some(),
        };
        if !set {
            assert!(line.ends_with("# default"));
            continue;
        }
        back.set(key, shown, source)
            .unwrap_or_else(|e| panic!("{shown:?} shown for {key:?} does not read back: {e}"));
        let same = match key {
            Key::BindAddress => {
                back.bind_address.map(|v| v.value) == s.bind_address.as_ref().map(|v| v.value.clone())
            }
            Key::ConnectAddress => {
                back.connect_address.map(|v| v.value) == s.connect_address.as_ref().map(|v| v.value.clone())
            }
            Key::Pattern => back.pattern.map(|v| v.value) == s.pattern.as_ref().map(|v| v.value),
            Key::Hwm => back.hwm_msgs.map(|v| v.value) == s.hwm_msgs.as_ref().map(|v| v.value),
            Key::LingerMs => back.linger.map(|v| v.value) == s.linger.as_ref().map(|v| v.value),
        };
        assert!(same, "{key:?} shown as {shown:?} reads back as another value");
    }
}
