//! CURVE keys: 32-byte Curve25519 keys, their Z85 text form, and the files they are kept
//! in (a bare Z85 line, or czmq's `zcert` certificate text that `zmakecert` and `zauth` use).
//!
//! Pure: no libzmq here. Generating a key pair and deriving a public key need libzmq's
//! CURVE support (libsodium); see [`KeyPair::generate`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::error::{Error, Result};

const Z85_CHARS: &[u8; 85] =
    b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

/// A Curve25519 key (public or secret), 32 bytes; 40 characters in Z85.
///
/// `Debug` shows only the first characters, so secrets do not end up in logs whole.
///
/// ```
/// let k: ztick::curve::CurveKey = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7".parse()?;
/// assert_eq!(k.to_string(), "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7");
/// # Ok::<(), ztick::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CurveKey([u8; 32]);

impl CurveKey {
    /// The key's 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        CurveKey(bytes)
    }

    /// A key from a 32-byte slice, e.g. the credentials frame of a ZAP request.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(CurveKey)
    }
}

impl fmt::Display for CurveKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&z85_encode(&self.0))
    }
}

impl fmt::Debug for CurveKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CurveKey({}…)", &z85_encode(&self.0)[..5])
    }
}

impl FromStr for CurveKey {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bytes = z85_decode(s.trim()).ok_or_else(|| {
            Error::config("CURVE key", abbreviate(s), "40 characters of Z85 (a 32-byte Curve25519 key)")
        })?;
        CurveKey::from_slice(&bytes).ok_or_else(|| {
            Error::config("CURVE key", abbreviate(s), "40 characters of Z85 (32 bytes), not another length")
        })
    }
}

/// Keeps a secret out of error messages: only its start is shown.
fn abbreviate(s: &str) -> String {
    let head: String = s.chars().take(5).collect();
    format!("{head}… ({} characters)", s.chars().count())
}

/// A socket's CURVE role (set through [`crate::SocketOptions::curve`]).
#[derive(Clone, PartialEq, Eq)]
pub enum Curve {
    /// Accepts only CURVE clients, encrypting everything; holds the server's secret key.
    Server {
        /// The server's secret key.
        secret: CurveKey,
    },
    /// Talks CURVE to a server whose public key it knows; its own public key is derived
    /// from `secret`.
    Client {
        /// The client's secret key.
        secret: CurveKey,
        /// The server's public key.
        server: CurveKey,
    },
}

impl fmt::Debug for Curve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Curve::Server { .. } => f.write_str("Curve::Server { secret: <redacted> }"),
            Curve::Client { server, .. } => {
                write!(f, "Curve::Client {{ secret: <redacted>, server: {server:?} }}")
            }
        }
    }
}

/// A public key and its secret key.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyPair {
    /// Give this to peers.
    pub public: CurveKey,
    /// Keep this to yourself (files with mode 0600).
    pub secret: CurveKey,
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair").field("public", &self.public).field("secret", &"<redacted>").finish()
    }
}

impl KeyPair {
    /// A new random key pair from libzmq (`zmq_curve_keypair`).
    ///
    /// # Errors
    /// [`Error::Unsupported`] in a build without CURVE (the vendored libzmq).
    pub fn generate() -> Result<KeyPair> {
        let (public, secret) = crate::sys::curve_keypair().ok_or_else(unsupported)?;
        Ok(KeyPair { public: CurveKey(public), secret: CurveKey(secret) })
    }

    /// The pair of a secret key: its public key derived by libzmq (`zmq_curve_public`).
    ///
    /// # Errors
    /// [`Error::Unsupported`] in a build without CURVE.
    pub fn from_secret(secret: CurveKey) -> Result<KeyPair> {
        let public = crate::sys::curve_public(&secret.0).ok_or_else(unsupported)?;
        Ok(KeyPair { public: CurveKey(public), secret })
    }

    /// Reads a secret key file: a Z85 line, or a czmq secret certificate (its
    /// `secret-key`). The public key is derived from the secret; a certificate whose
    /// `public-key` is not that one is refused.
    ///
    /// # Errors
    /// [`Error::Unsupported`] in a build without CURVE; [`Error::Insecure`] when the file
    /// is not the caller's own or group or others may read or write it (as ssh refuses a
    /// private key: whoever reads it can be the server); [`Error::Config`] for a file that
    /// holds no secret key, or a certificate whose halves do not match.
    pub fn load(path: &Path) -> Result<KeyPair> {
        require()?;
        check_private(path)?;
        let text = read(path)?;
        let at = |what: &str| format!("{} ({what})", path.display());
        if let Some(cert) = Zcert::parse(&text) {
            let secret = cert.secret.ok_or_else(|| {
                Error::config(
                    at("zcert"),
                    "a public certificate",
                    "a secret certificate with a secret-key line (czmq writes it as NAME_secret)",
                )
            })?;
            let pair = KeyPair::from_secret(secret)?;
            if pair.public != cert.public {
                return Err(Error::config(
                    at("zcert public-key"),
                    cert.public,
                    format!(
                        "the public key of its secret-key, {}: the certificate was edited or mixes two \
                         key pairs; make a new one (`ztick keygen --format zcert` or czmq's zmakecert)",
                        pair.public
                    ),
                ));
            }
            return Ok(pair);
        }
        let line =
            first_line(&text).ok_or_else(|| Error::config(at("secret key"), "no key", "one Z85 line"))?;
        let secret = line.parse::<CurveKey>().map_err(|_| {
            Error::config(at("secret key"), abbreviate(line), "40 characters of Z85, or a czmq certificate")
        })?;
        KeyPair::from_secret(secret)
    }

    /// Writes the secret key as one Z85 line, to a new file only its owner can read (0600).
    pub fn save_secret(&self, path: &Path) -> Result<()> {
        write_private(path, &format!("{}\n", self.secret))
    }

    /// Writes czmq's two certificate files: the public one at `path` and the secret one
    /// (mode 0600) at `path` + `_secret`, as `zmakecert` does.
    pub fn save_zcert(&self, path: &Path) -> Result<()> {
        let mut secret_path = path.as_os_str().to_owned();
        secret_path.push("_secret");
        write_private(Path::new(&secret_path), &Zcert::render(self, true))?;
        std::fs::write(path, Zcert::render(self, false))
            .map_err(|e| Error::Io { context: format!("writing {}", path.display()), source: e })
    }
}

fn unsupported() -> Error {
    Error::Unsupported {
        feature: "CURVE".into(),
        hint: "this libzmq was built without libsodium (crates.io's zmq-sys 0.12 builds libzmq 4.3.4 so); \
               build with ztick's zmq-sys, which has CURVE (add ztick's `[patch.crates-io]` line for \
               vendor/zmq-sys), or against the system libzmq: scripts/system-libzmq.sh (README: \
               \"Vendored or system libzmq\")"
            .into(),
    }
}

/// Checks that this libzmq has CURVE.
pub(crate) fn require() -> Result<()> {
    if crate::sys::zmq_has("curve") {
        Ok(())
    } else {
        Err(unsupported())
    }
}

/// The CURVE settings of a command line: key files, the server's public key and an
/// allow-list, checked together so a half-given setup is an error, not plaintext.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CurveConfig {
    /// A secret key file (Z85 line or czmq secret certificate): be a CURVE server.
    pub server_secret: Option<PathBuf>,
    /// A secret key file: be a CURVE client (with `server_public`).
    pub client_secret: Option<PathBuf>,
    /// The server's public key: Z85 text, or a file holding it (Z85 line or czmq certificate).
    pub server_public: Option<String>,
    /// Client public keys allowed by a server (see [`load_public_keys`]).
    pub zap_allow: Option<PathBuf>,
}

impl CurveConfig {
    /// True when no CURVE setting was given.
    pub fn is_empty(&self) -> bool {
        *self == CurveConfig::default()
    }

    /// The server role, when a server secret key was given.
    pub fn server(&self) -> Result<Option<Curve>> {
        self.check()?;
        let Some(path) = &self.server_secret else { return Ok(None) };
        Ok(Some(Curve::Server { secret: KeyPair::load(path)?.secret }))
    }

    /// The client role, when a client secret key (and so the server's public key) was given.
    pub fn client(&self) -> Result<Option<Curve>> {
        self.check()?;
        let (Some(path), Some(server)) = (&self.client_secret, &self.server_public) else { return Ok(None) };
        let secret = KeyPair::load(path)?.secret;
        Ok(Some(Curve::Client { secret, server: parse_public(server)? }))
    }

    /// The role of a socket that is either a server or a client; both at once is an error.
    pub fn role(&self) -> Result<Option<Curve>> {
        if self.server_secret.is_some() && self.client_secret.is_some() {
            return Err(Error::config(
                "--curve-client-secret",
                "given with --curve-server-secret",
                "one of the two: this socket is either the CURVE server or a client",
            ));
        }
        Ok(self.server()?.or(self.client()?))
    }

    /// The allowed client keys, when an allow-list was given.
    pub fn allowed_keys(&self) -> Result<Option<Vec<CurveKey>>> {
        self.check()?;
        self.zap_allow.as_deref().map(load_public_keys).transpose()
    }

    fn check(&self) -> Result<()> {
        if self.client_secret.is_some() && self.server_public.is_none() {
            return Err(Error::config(
                "--curve-client-secret",
                "given alone",
                "also --curve-server-public KEY (the server's public key, Z85 or a certificate file)",
            ));
        }
        if self.server_public.is_some() && self.client_secret.is_none() {
            return Err(Error::config(
                "--curve-server-public",
                "given alone",
                "also --curve-client-secret FILE (this client's secret key; `ztick keygen` makes one)",
            ));
        }
        if self.zap_allow.is_some() && self.server_secret.is_none() {
            return Err(Error::config(
                "--zap-allow",
                "given without --curve-server-secret",
                "an allow-list of client keys applies to a CURVE server: add --curve-server-secret FILE",
            ));
        }
        Ok(())
    }
}

/// A public key given as Z85 text or as a file holding one (a Z85 line or a czmq
/// certificate).
pub fn parse_public(text: &str) -> Result<CurveKey> {
    if let Ok(key) = text.parse::<CurveKey>() {
        return Ok(key);
    }
    let path = Path::new(text);
    if !path.is_file() {
        return Err(Error::config(
            "CURVE public key",
            abbreviate(text),
            "40 characters of Z85, or a file holding one (Z85 line or czmq certificate)",
        ));
    }
    let file = read(path)?;
    if let Some(cert) = Zcert::parse(&file) {
        return Ok(cert.public);
    }
    first_line(&file).and_then(|l| l.parse().ok()).ok_or_else(|| {
        Error::config(format!("{}", path.display()), "no public key", "one Z85 line or a czmq certificate")
    })
}

/// Reads public keys, for an allow-list: a file with one Z85 key per line (`#` starts a
/// comment), or a directory of czmq public certificates (every regular file in it that
/// parses as one; secret certificates are read for their public key).
///
/// Symlinks are not followed: a list or directory given as one is refused, and one inside
/// a directory is skipped with a warning, so nobody can point the list elsewhere.
///
/// # Errors
/// [`Error::Insecure`] when the list, the directory or a file in it can be written by
/// group or others (whoever can write it can let themselves in), or the path is a symlink;
/// [`Error::Io`] when it cannot be read; [`Error::Config`] for a line that is not a key.
pub fn load_public_keys(path: &Path) -> Result<Vec<CurveKey>> {
    let meta = std::fs::symlink_metadata(path)
        .map_err(|e| Error::Io { context: format!("reading allow-list {}", path.display()), source: e })?;
    check_not_writable_by_others(
        if meta.is_dir() { "allow-list directory" } else { "allow-list" },
        path,
        &meta,
    )?;
    if meta.is_dir() {
        let mut keys = Vec::new();
        let entries = std::fs::read_dir(path)
            .map_err(|e| Error::Io { context: format!("listing {}", path.display()), source: e })?;
        let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for p in paths {
            let meta = std::fs::symlink_metadata(&p)
                .map_err(|e| Error::Io { context: format!("reading {}", p.display()), source: e })?;
            if meta.file_type().is_symlink() {
                tracing::warn!(file = %p.display(), "a symlink in an allow-list directory; not followed, skipped");
                continue;
            }
            if !meta.is_file() {
                continue;
            }
            check_not_writable_by_others("certificate in an allow-list directory", &p, &meta)?;
            match Zcert::parse(&read(&p)?) {
                Some(cert) => keys.push(cert.public),
                None => tracing::warn!(file = %p.display(), "not a czmq certificate; skipped"),
            }
        }
        return Ok(keys);
    }
    let text = read(path)?;
    let mut keys = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let Some(line) = key_token(raw) else { continue };
        let key = line.parse::<CurveKey>().map_err(|_| {
            Error::config(
                format!("{} line {}", path.display(), n + 1),
                abbreviate(line),
                "one Z85 public key (40 characters) per line; # starts a comment",
            )
        })?;
        keys.push(key);
    }
    Ok(keys)
}

/// Refuses a secret key file that is not the caller's own, or that group or others may
/// read or write (any of the bits 0077): ssh's rule for private keys. Symlinks are
/// followed (a key is often linked into place); the file they reach is checked.
fn check_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).map_err(|e| Error::Io {
        context: format!("reading secret key file {}", path.display()),
        source: e,
    })?;
    let (mode, uid, me) = (meta.mode() & 0o7777, meta.uid(), crate::sys::euid());
    let insecure = |problem: String, fix: String| Error::Insecure {
        what: "secret key file",
        path: path.to_path_buf(),
        problem,
        mode,
        uid,
        fix,
    };
    if uid != me {
        return Err(insecure(
            format!("is owned by another user; you are uid {me}"),
            "use a key file of your own: copy it, then chmod 600 the copy".into(),
        ));
    }
    if mode & 0o077 != 0 {
        return Err(insecure(
            "can be read or written by group or others".into(),
            format!("it must be private to you: chmod 600 {}", path.display()),
        ));
    }
    Ok(())
}

/// Refuses a symlink (not followed) or anything group or others may write (bits 0022).
fn check_not_writable_by_others(what: &'static str, path: &Path, meta: &std::fs::Metadata) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let (mode, uid) = (meta.mode() & 0o7777, meta.uid());
    let insecure = |problem: &str, fix: String| {
        Err(Error::Insecure { what, path: path.to_path_buf(), problem: problem.into(), mode, uid, fix })
    };
    if meta.file_type().is_symlink() {
        return insecure(
            "is a symlink, which allow-lists do not follow",
            "give the path it points to".into(),
        );
    }
    if mode & 0o022 != 0 {
        return insecure(
            "can be written by group or others, who could add their own keys",
            format!("chmod go-w {}", path.display()),
        );
    }
    Ok(())
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| Error::Io { context: format!("reading {}", path.display()), source: e })
}

fn first_line(text: &str) -> Option<&str> {
    text.lines().find_map(key_token)
}

/// The key on a line of a key file: its first word, unless the line is blank or a
/// comment. `#` is a Z85 character, so a comment starts only at the beginning of a word.
fn key_token(line: &str) -> Option<&str> {
    line.split_whitespace().next().filter(|w| !w.starts_with('#'))
}

/// Creates `path` with mode 0600 (failing if it exists, so a key is never silently
/// replaced) and writes `text`.
fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |e| Error::Io { context: format!("writing secret key {}", path.display()), source: e };
    let mut f =
        std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)
}

/// czmq's certificate text (ZPL): `metadata` and `curve` sections, `curve` holding
/// `public-key = "..."` and, in a secret certificate, `secret-key = "..."`.
pub(crate) struct Zcert {
    pub(crate) public: CurveKey,
    pub(crate) secret: Option<CurveKey>,
}

impl Zcert {
    pub(crate) fn parse(text: &str) -> Option<Zcert> {
        let mut in_curve = false;
        let (mut public, mut secret) = (None, None);
        for content in text.lines() {
            // Comments are whole lines; values are quoted and may contain `#` (Z85).
            if content.trim().is_empty() || content.trim_start().starts_with('#') {
                continue;
            }
            if !content.starts_with(' ') && !content.starts_with('\t') {
                in_curve = content.trim() == "curve";
                continue;
            }
            if !in_curve {
                continue;
            }
            let Some((name, value)) = content.split_once('=') else { continue };
            let value = value.trim().trim_matches('"');
            match name.trim() {
                "public-key" => public = value.parse().ok(),
                "secret-key" => secret = value.parse().ok(),
                _ => {}
            }
        }
        Some(Zcert { public: public?, secret })
    }

    pub(crate) fn render(pair: &KeyPair, secret: bool) -> String {
        let (kind, advice) = if secret {
            (
                "**Secret** Certificate",
                "#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.",
            )
        } else {
            (
                "Public Certificate",
                "#   Exchange securely, or use a secure mechanism to verify the contents\n#   of this file after exchange. Store public certificates in your home\n#   directory, in the .curve subdirectory.",
            )
        };
        let mut s = format!(
            "#   ****  Generated by ztick {}  ****\n#   ZeroMQ CURVE {kind}\n{advice}\n\nmetadata\ncurve\n    public-key = \"{}\"\n",
            env!("CARGO_PKG_VERSION"),
            pair.public
        );
        if secret {
            s.push_str(&format!("    secret-key = \"{}\"\n", pair.secret));
        }
        s
    }
}

/// Z85 (ZeroMQ RFC 32) encoding of a length divisible by 4.
pub(crate) fn z85_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len() * 5 / 4);
    for chunk in data.chunks(4) {
        let mut v = chunk.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
        let mut digits = [0u8; 5];
        for d in digits.iter_mut().rev() {
            *d = Z85_CHARS[(v % 85) as usize];
            v /= 85;
        }
        out.extend(digits.iter().map(|&c| c as char));
    }
    out
}

/// Z85 decoding; `None` for a length not divisible by 5, a character outside the alphabet,
/// or a group that overflows 32 bits.
pub(crate) fn z85_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(5) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() * 4 / 5);
    for chunk in bytes.chunks(5) {
        let mut v: u64 = 0;
        for &c in chunk {
            let d = Z85_CHARS.iter().position(|&z| z == c)?;
            v = v * 85 + d as u64;
        }
        let v = u32::try_from(v).ok()?;
        out.extend_from_slice(&v.to_be_bytes());
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn z85_matches_the_rfc_test_vector() {
        let data = [0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B];
        assert_eq!(z85_encode(&data), "HelloWorld");
        assert_eq!(z85_decode("HelloWorld").unwrap(), data);
        assert!(z85_decode("Hello").is_some());
        assert!(z85_decode("Hell").is_none(), "length not a multiple of 5");
        assert!(z85_decode("Hell\"").is_none(), "outside the alphabet");
        assert!(z85_decode("#####").is_none(), "overflows 32 bits");
    }

    #[test]
    fn keys_parse_and_errors_name_the_expected_form_without_the_secret() {
        let k: CurveKey = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7".parse().unwrap();
        assert_eq!(k.to_string(), "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7");
        assert_eq!(format!("{k:?}"), "CurveKey(rq:rM…)");
        let e = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh".parse::<CurveKey>().unwrap_err().to_string();
        assert!(e.contains("40 characters of Z85") && !e.contains("wK0E"), "{e}");
    }

    #[test]
    fn zcert_text_round_trips() {
        let pair = KeyPair {
            public: "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7".parse().unwrap(),
            secret: "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6".parse().unwrap(),
        };
        let secret = Zcert::parse(&Zcert::render(&pair, true)).unwrap();
        assert_eq!((secret.public, secret.secret), (pair.public, Some(pair.secret)));
        let public = Zcert::parse(&Zcert::render(&pair, false)).unwrap();
        assert_eq!((public.public, public.secret), (pair.public, None));
        // czmq's own layout, as zmakecert writes it.
        let czmq = "#   ****  Generated on 2026-01-01 00:00:00 by CZMQ  ****\n#   ZeroMQ CURVE Public Certificate\n\nmetadata\n    name = \"alice\"\ncurve\n    public-key = \"rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7\"\n";
        assert_eq!(Zcert::parse(czmq).unwrap().public, pair.public);
        assert!(Zcert::parse("metadata\n    name = \"x\"\n").is_none());
    }

    #[test]
    fn keys_containing_hash_survive_comments() {
        // 84 is the index of `#` in the Z85 alphabet.
        let key = CurveKey::from_bytes(std::array::from_fn(|i| if i % 4 == 3 { 84 } else { 0 }));
        let text = key.to_string();
        assert!(text.contains('#'), "{text}");
        assert_eq!(key_token(&format!("{text}  # a comment")), Some(text.as_str()));
        assert_eq!(key_token("   # only a comment"), None);
        let pair = KeyPair { public: key, secret: key };
        assert_eq!(Zcert::parse(&Zcert::render(&pair, true)).unwrap().secret, Some(key));
    }

    #[test]
    fn allow_lists_skip_comments_and_name_bad_lines() {
        let dir = std::env::temp_dir().join(format!("ztick-curve-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let list = dir.join("allow.txt");
        std::fs::write(&list, "# traders\nrq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7  # alice\n\n").unwrap();
        assert_eq!(load_public_keys(&list).unwrap().len(), 1);
        std::fs::write(&list, "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7\nnot-a-key\n").unwrap();
        let e = load_public_keys(&list).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("Z85"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
