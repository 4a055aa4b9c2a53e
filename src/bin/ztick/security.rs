//! `ztick keygen` and the CURVE flags shared by the verbs and the perf tools.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use ztick::curve::{Curve, CurveConfig, KeyPair};
use ztick::zap::{self, ZapHandler, ZapPolicy};
use ztick::{Engine, Error};

/// CURVE encryption and ZAP authentication (the system libzmq build only; the vendored
/// build refuses them with a clear error).
#[derive(Args, Debug, Default, Clone)]
pub(crate) struct CurveFlags {
    /// Be a CURVE server with the secret key in FILE (a Z85 line from `ztick keygen`, or a
    /// czmq secret certificate).
    #[arg(long, value_name = "FILE")]
    pub(crate) curve_server_secret: Option<PathBuf>,
    /// Be a CURVE client with the secret key in FILE; needs --curve-server-public.
    #[arg(long, value_name = "FILE")]
    pub(crate) curve_client_secret: Option<PathBuf>,
    /// The server's public key: 40 characters of Z85, or a file holding it.
    // A Z85 key may begin with '-' (1 key in 85): it is a value, not a flag.
    #[arg(long, value_name = "KEY", allow_hyphen_values = true)]
    pub(crate) curve_server_public: Option<String>,
    /// Allow only these clients: a file of Z85 public keys, one per line (# comments), or a
    /// directory of czmq public certificates. Needs --curve-server-secret.
    #[arg(long, value_name = "FILE|DIR")]
    pub(crate) zap_allow: Option<PathBuf>,
}

impl CurveFlags {
    pub(crate) fn config(&self) -> CurveConfig {
        CurveConfig {
            server_secret: self.curve_server_secret.clone(),
            client_secret: self.curve_client_secret.clone(),
            server_public: self.curve_server_public.clone(),
            zap_allow: self.zap_allow.clone(),
        }
    }

    /// The ZAP domain of a server with an allow-list: set on its socket, it makes libzmq
    /// enforce ZAP, so clients are refused whenever the handler is not running.
    pub(crate) fn zap_domain(&self) -> Option<&'static str> {
        self.zap_allow.as_ref().map(|_| zap::DOMAIN)
    }

    /// Starts a ZAP handler on `engine` when an allow-list was given; keep it while serving.
    /// It answers for [`zap::DOMAIN`], the domain [`CurveFlags::zap_domain`] gives the socket.
    pub(crate) fn zap(&self, engine: &Engine) -> Result<Option<ZapHandler>, Error> {
        match self.config().allowed_keys()? {
            Some(keys) => {
                eprintln!("zap: {} client key(s) allowed", keys.len());
                let policy = ZapPolicy::default().domain(zap::DOMAIN).allow_keys(keys);
                Ok(Some(ZapHandler::spawn(engine, policy)?))
            }
            None => Ok(None),
        }
    }
}

/// Reports a ZAP handler's decisions on standard error when the command ends.
pub(crate) fn report_zap(zap: Option<ZapHandler>) {
    if let Some(z) = zap {
        if let Ok(s) = z.stop() {
            eprintln!("zap: {} allowed, {} refused, {} malformed", s.allowed, s.denied, s.malformed);
        }
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum KeyFormat {
    /// One Z85 line: the secret key.
    #[default]
    Z85,
    /// czmq's certificate files, as `zmakecert` writes them: the public certificate at FILE
    /// and the secret one at FILE_secret.
    Zcert,
}

/// `ztick keygen`.
#[derive(Args, Debug)]
pub(crate) struct KeygenArgs {
    /// Where to write the secret key (created with mode 0600; an existing file is never
    /// overwritten). With --format zcert: the public certificate, the secret one going to
    /// FILE_secret.
    #[arg(long, value_name = "FILE")]
    secret_out: PathBuf,
    /// File format.
    #[arg(long, value_enum, default_value = "z85")]
    format: KeyFormat,
}

/// Writes a new key pair and prints its public key in Z85.
pub(crate) fn keygen(a: &KeygenArgs) -> Result<(), Error> {
    let pair = KeyPair::generate()?;
    match a.format {
        KeyFormat::Z85 => pair.save_secret(&a.secret_out)?,
        KeyFormat::Zcert => pair.save_zcert(&a.secret_out)?,
    }
    println!("{}", pair.public);
    Ok(())
}

/// The (server, client) CURVE roles of an in-process run: fresh keys with `--curve`, else
/// from the key flags (both must then be given), else none.
pub(crate) fn in_process_roles(
    fresh: bool,
    flags: &CurveFlags,
) -> Result<(Option<Curve>, Option<Curve>), Error> {
    if flags.zap_allow.is_some() {
        return Err(Error::config(
            "--zap-allow",
            "given to an in-process run",
            "use it where clients come from elsewhere: local-lat, local-thr, fanout --role pub or a verb",
        ));
    }
    if fresh {
        let (server, client) = (KeyPair::generate()?, KeyPair::generate()?);
        return Ok((
            Some(Curve::Server { secret: server.secret }),
            Some(Curve::Client { secret: client.secret, server: server.public }),
        ));
    }
    let cfg = flags.config();
    let (server, client) = (cfg.server()?, cfg.client()?);
    if server.is_some() != client.is_some() {
        return Err(Error::config(
            "--curve-server-secret / --curve-client-secret",
            "only one side given",
            "both sides for an in-process run (plus --curve-server-public), or just --curve for fresh keys",
        ));
    }
    Ok((server, client))
}
