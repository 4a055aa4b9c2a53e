//! `ztick`'s settings from the environment, a TOML file and the command line (the guide's
//! §10.1): what the scripting verbs, `ztick run` and `ztick config` read. The library takes
//! plain structs ([`SocketOptions`], [`Endpoint`]); this module maps the sources onto them.
//!
//! Five settings, each from one of three sources; a higher source overrides a lower one:
//!
//! | setting | flag | environment | TOML key | accepted form |
//! |---|---|---|---|---|
//! | bind address | `--bind` | `ZMQ_BIND_ADDRESS` | `bind_address` | an endpoint: `tcp://HOST:PORT`, `ipc://PATH`, `inproc://NAME` |
//! | connect address | `--connect` | `ZMQ_CONNECT_ADDRESS` | `connect_address` | an endpoint with a real port |
//! | pattern | `--pattern` | `ZMQ_PATTERN` | `pattern` | a socket kind: `pub`, `sub`, `req`, `rep`, `push`, `pull`, `router`, `dealer`, ... |
//! | high-water mark | `--hwm` | `ZMQ_HWM` | `hwm` | messages, 0 to 4294967295 (0 = no limit) |
//! | linger | `--linger-ms` | `ZMQ_LINGER_MS` | `linger_ms` | milliseconds, 0 to 2147483647, or -1 to wait forever |
//!
//! Precedence: **flags > environment > file > defaults** (the defaults are libzmq's, except
//! ztick's 1 s linger). Every value is checked when it is read, and a bad one is an
//! [`Error::Config`] naming the flag, variable or key (with its file), the value, and the
//! accepted form. An environment variable that is set but empty counts as unset; a file key
//! ztick does not know is an error, so a typo cannot go unnoticed.
//!
//! Everything here is pure except [`Settings::from_file`] and [`Settings::from_process_env`]:
//! tests hand [`Settings::from_env`] a lookup function and [`Settings::from_toml`] a string.
//!
//! (`tests::file_then_environment_then_flags`, below, stacks the three.)

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ztick::{Endpoint, Error, Result, SocketKind, SocketOptions, Transport};

/// One of the settings, with its names in each source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    /// The endpoint to bind.
    BindAddress,
    /// The endpoint to connect to.
    ConnectAddress,
    /// The socket kind, which names the verb `ztick run` runs.
    Pattern,
    /// Send and receive high-water mark, in messages.
    Hwm,
    /// How long closing waits to flush queued messages, in milliseconds.
    LingerMs,
}

impl Key {
    /// Every key, in the order they are documented.
    pub(crate) const ALL: [Key; 5] =
        [Key::BindAddress, Key::ConnectAddress, Key::Pattern, Key::Hwm, Key::LingerMs];

    /// The environment variable, e.g. `ZMQ_HWM`.
    pub(crate) fn env_var(self) -> &'static str {
        match self {
            Key::BindAddress => "ZMQ_BIND_ADDRESS",
            Key::ConnectAddress => "ZMQ_CONNECT_ADDRESS",
            Key::Pattern => "ZMQ_PATTERN",
            Key::Hwm => "ZMQ_HWM",
            Key::LingerMs => "ZMQ_LINGER_MS",
        }
    }

    /// The key in a TOML file, e.g. `hwm`.
    pub(crate) fn toml_key(self) -> &'static str {
        match self {
            Key::BindAddress => "bind_address",
            Key::ConnectAddress => "connect_address",
            Key::Pattern => "pattern",
            Key::Hwm => "hwm",
            Key::LingerMs => "linger_ms",
        }
    }

    /// The command-line flag of the `ztick` verbs, e.g. `--hwm`.
    pub(crate) fn flag(self) -> &'static str {
        match self {
            Key::BindAddress => "--bind",
            Key::ConnectAddress => "--connect",
            Key::Pattern => "--pattern",
            Key::Hwm => "--hwm",
            Key::LingerMs => "--linger-ms",
        }
    }

    /// What a value must look like, for error messages.
    pub(crate) fn accepted(self) -> &'static str {
        match self {
            Key::BindAddress => {
                "an endpoint to bind: tcp://HOST:PORT, tcp://*:PORT, tcp://127.0.0.1:*, ipc://PATH or inproc://NAME"
            }
            Key::ConnectAddress => {
                "an endpoint to connect to: tcp://HOST:PORT (a real port, not '*'), ipc://PATH or inproc://NAME"
            }
            Key::Pattern => "a socket kind: pub, sub, req, rep, push, pull, router, dealer, pair, xpub or xsub",
            Key::Hwm => "a whole number of messages from 0 to 4294967295 (0 = no limit)",
            Key::LingerMs => "a whole number of milliseconds from 0 to 2147483647, or -1 to wait forever",
        }
    }
}

/// Where a setting's value came from, named the way a user would look for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// A command-line flag, e.g. `--bind`.
    Flag(&'static str),
    /// An environment variable, e.g. `ZMQ_HWM`.
    Env(&'static str),
    /// A key in a TOML file.
    File {
        /// The file.
        path: PathBuf,
        /// The key, e.g. `hwm`.
        key: &'static str,
    },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag(flag) => f.write_str(flag),
            Source::Env(var) => f.write_str(var),
            Source::File { path, key } => write!(f, "{key} in {}", path.display()),
        }
    }
}

/// A value together with the place it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sourced<T> {
    /// The checked value.
    pub(crate) value: T,
    /// Where it was set.
    pub(crate) source: Source,
}

/// How a socket attaches to its endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Attach {
    /// Bind the endpoint and wait for peers.
    Bind(Endpoint),
    /// Connect to a peer's endpoint (libzmq connects in the background and reconnects).
    Connect(Endpoint),
}

impl Attach {
    /// True for [`Attach::Bind`].
    pub(crate) fn is_bind(&self) -> bool {
        matches!(self, Attach::Bind(_))
    }
}

impl fmt::Display for Attach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Attach::Bind(e) => write!(f, "bind {e}"),
            Attach::Connect(e) => write!(f, "connect {e}"),
        }
    }
}

/// Resolved settings: each is `None` when no source set it (the default then applies).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Settings {
    /// The endpoint to bind (`ZMQ_BIND_ADDRESS`); default: none.
    pub(crate) bind_address: Option<Sourced<Endpoint>>,
    /// The endpoint to connect to (`ZMQ_CONNECT_ADDRESS`); default: none.
    pub(crate) connect_address: Option<Sourced<Endpoint>>,
    /// The socket kind (`ZMQ_PATTERN`); default: none (a verb's own kind).
    pub(crate) pattern: Option<Sourced<SocketKind>>,
    /// Send and receive HWM in messages (`ZMQ_HWM`); default: libzmq's 1000.
    pub(crate) hwm_msgs: Option<Sourced<u32>>,
    /// Linger (`ZMQ_LINGER_MS`), `None` inside meaning forever; default:
    /// [`SocketOptions::DEFAULT_LINGER`] (1 s).
    pub(crate) linger: Option<Sourced<Option<Duration>>>,
}

impl Settings {
    /// Reads the `ZMQ_*` variables through `lookup` (which returns a variable's value, or
    /// `None` when it is unset). Set-but-empty variables count as unset.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first variable whose value is bad or not UTF-8.
    pub(crate) fn from_env(lookup: impl Fn(&str) -> Option<OsString>) -> Result<Settings> {
        let mut s = Settings::default();
        for key in Key::ALL {
            let var = key.env_var();
            let Some(raw) = lookup(var) else { continue };
            let text = raw.into_string().map_err(|raw| {
                Error::config(var, raw.to_string_lossy(), format!("valid UTF-8 text, {}", key.accepted()))
            })?;
            if text.trim().is_empty() {
                continue;
            }
            s.set(key, &text, Source::Env(var))?;
        }
        Ok(s)
    }

    /// Reads the `ZMQ_*` variables of this process.
    pub(crate) fn from_process_env() -> Result<Settings> {
        Settings::from_env(|var| std::env::var_os(var))
    }

    /// Parses the TOML text of the file at `path` (named in errors only). Keys are the
    /// lower-case variable names without `ZMQ_`: `bind_address`, `connect_address`,
    /// `pattern`, `hwm`, `linger_ms`; numbers are TOML integers, the rest strings.
    ///
    /// # Errors
    /// [`Error::Config`] for a syntax error (with its line), an unknown key, or a bad value.
    pub(crate) fn from_toml(text: &str, path: &Path) -> Result<Settings> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let line = e.span().map_or(1, |span| line_of(text, span.start));
            let snippet = text.lines().nth(line - 1).unwrap_or("").trim();
            Error::config(
                format!("TOML in {} line {line}", path.display()),
                snippet,
                format!("{}; the file holds `key = value` lines", e.message().trim().replace('\n', ", ")),
            )
        })?;
        let mut s = Settings::default();
        for (name, value) in &table {
            let Some(key) = Key::ALL.into_iter().find(|k| k.toml_key() == name) else {
                let known: Vec<&str> = Key::ALL.iter().map(|k| k.toml_key()).collect();
                return Err(Error::config(
                    format!("key in {}", path.display()),
                    name,
                    format!("the keys ztick knows are {}", known.join(", ")),
                ));
            };
            let source = Source::File { path: path.to_owned(), key: key.toml_key() };
            let text = match (key, value) {
                (Key::Hwm | Key::LingerMs, toml::Value::Integer(n)) => n.to_string(),
                (Key::BindAddress | Key::ConnectAddress | Key::Pattern, toml::Value::String(v)) => v.clone(),
                _ => {
                    let form = match key {
                        Key::Hwm | Key::LingerMs => "a TOML integer (no quotes)",
                        _ => "a TOML string (in quotes)",
                    };
                    return Err(Error::config(
                        source.to_string(),
                        show_toml(value),
                        format!("{form}: {}", key.accepted()),
                    ));
                }
            };
            s.set(key, &text, source)?;
        }
        Ok(s)
    }

    /// Reads and parses a TOML settings file (see [`Settings::from_toml`]).
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be read, else as [`Settings::from_toml`].
    pub(crate) fn from_file(path: &Path) -> Result<Settings> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
            context: format!("reading the config file {} (given with --config)", path.display()),
            source: e,
        })?;
        Settings::from_toml(&text, path)
    }

    /// The usual stack: `file` (if any) < this process's environment < `flags`.
    pub(crate) fn load(file: Option<&Path>, flags: Settings) -> Result<Settings> {
        let base = match file {
            Some(path) => Settings::from_file(path)?,
            None => Settings::default(),
        };
        Ok(base.overlay(Settings::from_process_env()?).overlay(flags))
    }

    /// Checks `text` as a value of `key` and stores it, remembering `source`.
    ///
    /// # Errors
    /// [`Error::Config`] naming `source`, `text` and the accepted form.
    pub(crate) fn set(&mut self, key: Key, text: &str, source: Source) -> Result<&mut Self> {
        let bad = |why: Option<String>| {
            let accepted = match why {
                Some(why) => format!("{why}; expected {}", key.accepted()),
                None => format!("expected {}", key.accepted()),
            };
            Error::config(source.to_string(), text, accepted)
        };
        let t = text.trim();
        match key {
            Key::BindAddress | Key::ConnectAddress => {
                let endpoint: Endpoint = t.parse().map_err(|e| match e {
                    Error::Endpoint { reason, .. } => bad(Some(reason)),
                    other => other,
                })?;
                if key == Key::ConnectAddress
                    && endpoint.transport() == Transport::Tcp
                    && endpoint.address().ends_with(":*")
                {
                    return Err(bad(Some("a connect address needs a real port".into())));
                }
                let v = Some(Sourced { value: endpoint, source });
                match key {
                    Key::BindAddress => self.bind_address = v,
                    _ => self.connect_address = v,
                }
            }
            Key::Pattern => {
                let kind: SocketKind = t.parse().map_err(|_| bad(None))?;
                self.pattern = Some(Sourced { value: kind, source });
            }
            Key::Hwm => {
                let msgs: u32 = t.parse().map_err(|_| bad(None))?;
                self.hwm_msgs = Some(Sourced { value: msgs, source });
            }
            Key::LingerMs => {
                let ms: i64 = t.parse().map_err(|_| bad(None))?;
                let linger = match ms {
                    -1 => None,
                    0..=0x7fff_ffff => Some(Duration::from_millis(ms.unsigned_abs())),
                    _ => return Err(bad(None)),
                };
                self.linger = Some(Sourced { value: linger, source });
            }
        }
        Ok(self)
    }

    /// These settings with every value that `higher` sets replaced by `higher`'s.
    #[must_use]
    pub(crate) fn overlay(self, higher: Settings) -> Settings {
        Settings {
            bind_address: higher.bind_address.or(self.bind_address),
            connect_address: higher.connect_address.or(self.connect_address),
            pattern: higher.pattern.or(self.pattern),
            hwm_msgs: higher.hwm_msgs.or(self.hwm_msgs),
            linger: higher.linger.or(self.linger),
        }
    }

    /// Where a socket should attach, for a verb that binds when `binds_by_default` (a
    /// server: rep, pub, pull, router) and connects otherwise.
    ///
    /// An address given by a flag wins. Otherwise the verb's own side is used when it is
    /// set and the other side when only that one is, so one environment can hold both
    /// `ZMQ_BIND_ADDRESS` (for the server) and `ZMQ_CONNECT_ADDRESS` (for the client).
    ///
    /// # Errors
    /// [`Error::Config`] when no address is set anywhere.
    pub(crate) fn attach(&self, binds_by_default: bool) -> Result<Attach> {
        let is_flag =
            |v: &Option<Sourced<Endpoint>>| matches!(v, Some(Sourced { source: Source::Flag(_), .. }));
        let bind = || self.bind_address.as_ref().map(|v| Attach::Bind(v.value.clone()));
        let connect = || self.connect_address.as_ref().map(|v| Attach::Connect(v.value.clone()));
        let chosen = if is_flag(&self.bind_address) && !is_flag(&self.connect_address) {
            bind()
        } else if is_flag(&self.connect_address) && !is_flag(&self.bind_address) {
            connect()
        } else if binds_by_default {
            bind().or_else(connect)
        } else {
            connect().or_else(bind)
        };
        chosen.ok_or_else(|| {
            Error::config(
                "endpoint",
                "(none given)",
                "give --bind ENDPOINT or --connect ENDPOINT, or set ZMQ_BIND_ADDRESS or ZMQ_CONNECT_ADDRESS, \
                 or bind_address or connect_address in the --config file",
            )
        })
    }

    /// The socket options these settings ask for: both HWMs and the linger.
    pub(crate) fn socket_options(&self) -> SocketOptions {
        let mut o = SocketOptions::default();
        if let Some(h) = &self.hwm_msgs {
            o = o.hwm_msgs(h.value);
        }
        if let Some(l) = &self.linger {
            o = o.linger(l.value);
        }
        o
    }

    /// The settings as lines of `key = value  # from SOURCE`, unset ones with their default.
    pub(crate) fn to_text(&self) -> String {
        self.rows()
            .into_iter()
            .map(|(key, value, source)| match source {
                Some(src) => format!("{key} = {value}  # from {src}\n"),
                None => format!("{key} = {value}  # default\n"),
            })
            .collect()
    }

    /// The settings as one JSON object: `{"hwm": {"value": 100, "source": "ZMQ_HWM"}, ...}`,
    /// with `"source": null` for defaults.
    pub(crate) fn to_json(&self) -> String {
        let mut map = serde_json::Map::new();
        for (key, value, source) in self.rows() {
            let value = match value.parse::<i64>() {
                Ok(n) => serde_json::Value::from(n),
                Err(_) if value == "(none)" => serde_json::Value::Null,
                Err(_) => serde_json::Value::from(value),
            };
            let source = source.map_or(serde_json::Value::Null, serde_json::Value::from);
            map.insert(key.to_owned(), serde_json::json!({ "value": value, "source": source }));
        }
        serde_json::Value::Object(map).to_string()
    }

    fn rows(&self) -> Vec<(&'static str, String, Option<String>)> {
        fn row<T>(
            key: Key,
            v: &Option<Sourced<T>>,
            show: impl Fn(&T) -> String,
            default: &str,
        ) -> (&'static str, String, Option<String>) {
            match v {
                Some(s) => (key.toml_key(), show(&s.value), Some(s.source.to_string())),
                None => (key.toml_key(), default.to_owned(), None),
            }
        }
        let linger_ms = |l: &Option<Duration>| l.map_or("-1".to_owned(), |d| d.as_millis().to_string());
        vec![
            row(Key::BindAddress, &self.bind_address, Endpoint::to_string, "(none)"),
            row(Key::ConnectAddress, &self.connect_address, Endpoint::to_string, "(none)"),
            row(Key::Pattern, &self.pattern, |k| k.as_str().to_ascii_lowercase(), "(none)"),
            row(Key::Hwm, &self.hwm_msgs, u32::to_string, "1000"),
            row(
                Key::LingerMs,
                &self.linger,
                linger_ms,
                &SocketOptions::DEFAULT_LINGER.as_millis().to_string(),
            ),
        ]
    }
}

/// The 1-based line holding byte `offset` of `text`.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
}

/// A TOML value as the user wrote it, near enough for an error message.
fn show_toml(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(n) => n.to_string(),
        toml::Value::Float(x) => x.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Datetime(d) => d.to_string(),
        toml::Value::Array(_) => "an array".to_owned(),
        toml::Value::Table(_) => "a table".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Result<Settings> {
        let map: HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_env(|k| map.get(k).map(OsString::from))
    }

    fn toml(text: &str) -> Result<Settings> {
        Settings::from_toml(text, Path::new("/etc/ztick.toml"))
    }

    fn err(r: Result<Settings>) -> String {
        r.expect_err("should fail").to_string()
    }

    #[test]
    fn file_then_environment_then_flags() -> Result<()> {
        let file = Settings::from_toml("hwm = 100\nbind_address = \"tcp://*:5555\"", Path::new("z.toml"))?;
        let env: HashMap<&str, &str> = [("ZMQ_HWM", "200")].into();
        let env = Settings::from_env(|k| env.get(k).map(Into::into))?;
        let mut flags = Settings::default();
        flags.set(Key::LingerMs, "0", Source::Flag("--linger-ms"))?;

        let s = file.overlay(env).overlay(flags);
        assert_eq!(s.hwm_msgs.as_ref().map(|v| v.value), Some(200)); // the environment beat the file
        assert_eq!(s.bind_address.as_ref().map(|v| v.value.to_string()).as_deref(), Some("tcp://*:5555"));
        Ok(())
    }

    #[test]
    fn every_variable_is_read_with_its_source() {
        let s = env(&[
            ("ZMQ_BIND_ADDRESS", "tcp://*:5555"),
            ("ZMQ_CONNECT_ADDRESS", "tcp://127.0.0.1:5555"),
            ("ZMQ_PATTERN", "REP"),
            ("ZMQ_HWM", " 250 "),
            ("ZMQ_LINGER_MS", "-1"),
            ("OTHER", "ignored"),
        ])
        .unwrap();
        let bind = s.bind_address.as_ref().unwrap();
        assert_eq!(bind.value.to_string(), "tcp://*:5555");
        assert_eq!(bind.source, Source::Env("ZMQ_BIND_ADDRESS"));
        assert_eq!(s.connect_address.as_ref().unwrap().value.to_string(), "tcp://127.0.0.1:5555");
        assert_eq!(s.pattern.as_ref().unwrap().value, SocketKind::Rep);
        assert_eq!(s.hwm_msgs.as_ref().unwrap().value, 250);
        assert_eq!(s.linger.as_ref().unwrap().value, None, "-1 waits forever");
        let o = s.socket_options();
        assert_eq!(o, SocketOptions::default().hwm_msgs(250).linger(None));
    }

    #[test]
    fn empty_variables_count_as_unset() {
        assert_eq!(env(&[("ZMQ_HWM", ""), ("ZMQ_PATTERN", "  ")]).unwrap(), Settings::default());
    }

    #[test]
    fn bad_variables_name_the_variable_the_value_and_the_form() {
        let cases = [
            ("ZMQ_HWM", "lots", "whole number of messages"),
            ("ZMQ_HWM", "-5", "0 to 4294967295"),
            ("ZMQ_LINGER_MS", "-2", "-1 to wait forever"),
            ("ZMQ_LINGER_MS", "3000000000", "0 to 2147483647"),
            ("ZMQ_PATTERN", "stream", "pub, sub, req, rep"),
            ("ZMQ_BIND_ADDRESS", "localhost:5555", "missing '://'"),
            ("ZMQ_CONNECT_ADDRESS", "tcp://127.0.0.1:*", "needs a real port"),
        ];
        for (var, value, form) in cases {
            let msg = err(env(&[(var, value)]));
            assert!(msg.contains(var) && msg.contains(value) && msg.contains(form), "{var}={value}: {msg}");
        }
    }

    #[test]
    fn non_utf8_variables_are_named() {
        use std::os::unix::ffi::OsStringExt;
        let r = Settings::from_env(|k| (k == "ZMQ_PATTERN").then(|| OsString::from_vec(vec![0xff, b'x'])));
        let msg = err(r);
        assert!(msg.contains("ZMQ_PATTERN") && msg.contains("UTF-8"), "{msg}");
    }

    #[test]
    fn toml_keys_are_read_with_file_and_key() {
        let s = toml(
            "# ztick settings\nbind_address = \"ipc:///tmp/z.ipc\"\npattern = \"pull\"\nhwm = 10\nlinger_ms = 0\n",
        )
        .unwrap();
        assert_eq!(s.pattern.as_ref().unwrap().value, SocketKind::Pull);
        assert_eq!(s.linger.as_ref().unwrap().value, Some(Duration::ZERO));
        let src = &s.hwm_msgs.as_ref().unwrap().source;
        assert_eq!(src.to_string(), "hwm in /etc/ztick.toml");
    }

    #[test]
    fn bad_toml_names_the_key_the_file_and_the_form() {
        let cases = [
            ("hwm = \"10\"", &["hwm in /etc/ztick.toml", "\"10\"", "TOML integer"][..]),
            ("hwm = 99999999999", &["hwm in /etc/ztick.toml", "99999999999", "0 to 4294967295"]),
            ("pattern = 3", &["pattern in /etc/ztick.toml", "TOML string"]),
            ("bind_address = \"tcp://x\"", &["bind_address in /etc/ztick.toml", "tcp://x", "no ':PORT'"]),
            ("hmw = 5", &["key in /etc/ztick.toml", "hmw", "bind_address, connect_address"]),
            ("\n\nhwm = = 5", &["TOML in /etc/ztick.toml line 3", "hwm = = 5"]),
        ];
        for (text, needles) in cases {
            let msg = err(toml(text));
            assert!(!msg.contains('\n'), "one line: {msg}");
            for n in needles {
                assert!(msg.contains(n), "{text:?}: {n:?} not in {msg}");
            }
        }
    }

    #[test]
    fn flags_beat_env_beat_file() {
        let file = toml("hwm = 1\nlinger_ms = 1\npattern = \"push\"\nbind_address = \"tcp://*:1\"").unwrap();
        let env = env(&[("ZMQ_HWM", "2"), ("ZMQ_LINGER_MS", "2")]).unwrap();
        let mut flags = Settings::default();
        flags.set(Key::Hwm, "3", Source::Flag("--hwm")).unwrap();
        let s = file.overlay(env).overlay(flags);
        assert_eq!(s.hwm_msgs.as_ref().unwrap().value, 3);
        assert_eq!(s.hwm_msgs.as_ref().unwrap().source, Source::Flag("--hwm"));
        assert_eq!(s.linger.as_ref().unwrap().value, Some(Duration::from_millis(2)));
        assert_eq!(s.pattern.as_ref().unwrap().value, SocketKind::Push);
        assert!(s.to_text().contains("hwm = 3  # from --hwm\n"), "{}", s.to_text());
        let j: serde_json::Value = serde_json::from_str(&s.to_json()).unwrap();
        assert_eq!(j["linger_ms"]["value"], 2);
        assert_eq!(j["linger_ms"]["source"], "ZMQ_LINGER_MS");
        assert_eq!(j["connect_address"]["value"], serde_json::Value::Null);
    }

    #[test]
    fn attach_prefers_flags_then_the_verbs_own_side() {
        let mut s =
            env(&[("ZMQ_BIND_ADDRESS", "tcp://*:7000"), ("ZMQ_CONNECT_ADDRESS", "tcp://127.0.0.1:7000")])
                .unwrap();
        assert_eq!(s.attach(true).unwrap().to_string(), "bind tcp://*:7000");
        assert_eq!(s.attach(false).unwrap().to_string(), "connect tcp://127.0.0.1:7000");

        let only_bind = env(&[("ZMQ_BIND_ADDRESS", "tcp://*:7000")]).unwrap();
        assert_eq!(only_bind.attach(false).unwrap().to_string(), "bind tcp://*:7000");

        s.set(Key::ConnectAddress, "ipc:///tmp/x", Source::Flag("--connect")).unwrap();
        assert_eq!(s.attach(true).unwrap().to_string(), "connect ipc:///tmp/x", "a flag wins");

        let msg = Settings::default().attach(true).unwrap_err().to_string();
        assert!(msg.contains("--bind") && msg.contains("ZMQ_CONNECT_ADDRESS"), "{msg}");
    }
}
