//! cargo run --example config
//! ZMQ_HWM=500 ZMQ_LINGER_MS=250 cargo run --example config   # the real environment counts too
//!
//! Configuration (guide §10.1): the guide's `ZMQ_*` variables, a TOML file and flags, in
//! that order of precedence; every value says where it came from, and a bad one names the
//! variable or key, the value and the accepted form. The settings then drive a real
//! REQ/REP exchange.

use std::path::PathBuf;
use std::time::Duration;

use ztick::patterns::{Replier, Requester};
use ztick::settings::{Key, Settings, Source};
use ztick::{Endpoint, Engine};

fn main() -> ztick::Result<()> {
    // A config file, as `ztick rep --config FILE` would read it.
    let path = std::env::temp_dir().join(format!("ztick-config-example-{}.toml", std::process::id()));
    let ipc = Endpoint::unique_ipc("config-example");
    std::fs::write(
        &path,
        format!("bind_address = \"{ipc}\"\nconnect_address = \"{ipc}\"\nhwm = 1000\nlinger_ms = 0\n"),
    )
    .map_err(|e| ztick::Error::Io { context: format!("writing {}", path.display()), source: e })?;
    let _cleanup = Cleanup(path.clone());
    let _socket_file = ipc.ipc_path().map(|p| Cleanup(p.to_path_buf()));

    // A flag beats both the file and the environment.
    let mut flags = Settings::default();
    flags.set(Key::Hwm, "2000", Source::Flag("--hwm"))?;
    let settings = Settings::load(Some(&path), flags)?;
    print!("settings in force:\n{}", settings.to_text());

    // Bad values are errors that say what to write instead.
    let mut bad = Settings::default();
    for (key, text, source) in [
        (Key::Hwm, "lots", Source::Env("ZMQ_HWM")),
        (Key::LingerMs, "-5", Source::File { path: PathBuf::from("ztick.toml"), key: "linger_ms" }),
        (Key::BindAddress, "tcp//127.0.0.1:5555", Source::Flag("--bind")),
    ] {
        if let Err(e) = bad.set(key, text, source) {
            println!("rejected: {e}");
        }
    }

    // Use them: a server on the bind address, a client on the connect address.
    let engine = Engine::new()?;
    let options = settings.socket_options();
    let server = Replier::builder(settings.attach(true)?.endpoint().clone())
        .options(options.clone())
        .spawn(&engine, |body| vec![[b"ok:", body[0]].concat()])?;
    let mut client = Requester::builder(settings.attach(false)?.endpoint().clone())
        .options(options)
        .timeout(Duration::from_secs(2))
        .connect(&engine)?;
    let reply = client.request(&[b"configured"])?;
    println!("{} answered: {}", server.endpoint(), String::from_utf8_lossy(&reply[0]));
    server.stop()?;
    Ok(())
}

/// Removes a file the example made when main ends, however it ends.
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
