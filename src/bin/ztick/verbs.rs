//! The scripting verbs (`pub`, `sub`, `req`, `rep`, `push`, `pull`, `router`, `dealer`),
//! `run` and `config`: their flags, mapped onto [`Settings`] (`settings.rs`) and
//! [`Script`] (`script.rs`).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use ztick::{Engine, Error, SocketKind};

use crate::script::{Format, Script, Verb};
use crate::security::{report_zap, CurveFlags};
use crate::settings::{Key, Settings, Source};

const SETTINGS_HELP: &str = "\
Settings: the endpoint, high-water mark and linger come from, highest first: the flags, the
environment (ZMQ_BIND_ADDRESS, ZMQ_CONNECT_ADDRESS, ZMQ_HWM, ZMQ_LINGER_MS), the --config
TOML file (bind_address, connect_address, hwm, linger_ms), then the defaults. Without
--bind or --connect a server verb (pub, rep, pull, router) binds ZMQ_BIND_ADDRESS and a
client verb (sub, req, push, dealer) connects to ZMQ_CONNECT_ADDRESS, each falling back to
the other when only that one is set. `ztick config` shows what is in force.

Output: one line per message, frames separated by a space, each as text when it is UTF-8
without control characters and as 0x... hex otherwise; --json prints one object per
message instead: {\"frames\": [\"text\", {\"hex\": \"00ff\"}]}.";

/// The scripting verbs' default frame size limit: 1 MiB, a line no terminal wants to see.
const MAX_MSG_BYTES: u64 = 1 << 20;

/// The scripting verbs, flattened into `ztick`'s own list.
#[derive(Subcommand, Debug)]
pub(crate) enum ScriptVerb {
    /// Publish each line of standard input as one message (PUB socket, binds by default).
    ///
    /// With --topic T, each message is two frames: T, then the line. With
    /// --wait-subscribers N the socket is an XPUB that first waits for N subscriptions
    /// matching what it sends (a prefix of T, or any without --topic), so no line is lost to
    /// a subscriber still joining; a subscriber counts once per matching --topic it gave.
    /// At the end of input the socket closes with the linger (default 1000 ms), which gives
    /// queued messages that long to leave. Like any PUB, it drops messages for a subscriber
    /// that is HWM messages behind.
    #[command(after_help = SETTINGS_HELP)]
    Pub(PubArgs),
    /// Print each published message (SUB socket, connects by default).
    #[command(after_help = SETTINGS_HELP)]
    Sub(SubArgs),
    /// Send one request made of the FRAME arguments and print the reply (REQ socket,
    /// connects by default). Waits at most --timeout-ms for the peer (default 5000).
    #[command(after_help = SETTINGS_HELP)]
    Req(ReqArgs),
    /// Print each request and send it back unchanged (REP socket, binds by default).
    #[command(after_help = SETTINGS_HELP)]
    Rep(RecvArgs),
    /// Send each line of standard input as one message (PUSH socket, connects by default).
    /// At the end of input the socket closes with the linger (default 1000 ms).
    #[command(after_help = SETTINGS_HELP)]
    Push(PushArgs),
    /// Print each message (PULL socket, binds by default).
    #[command(after_help = SETTINGS_HELP)]
    Pull(RecvArgs),
    /// Print each message with its sender's identity frame first, in hex (ROUTER socket,
    /// binds by default); --echo sends each message back to its sender, which serves REQ
    /// and DEALER clients.
    #[command(after_help = SETTINGS_HELP)]
    Router(RouterArgs),
    /// Send the FRAME arguments as one message, or each line of standard input when there
    /// are none, then print --count replies, by default one per message sent (DEALER
    /// socket, connects by default). Begin with an empty frame '' to talk to a REP.
    #[command(after_help = SETTINGS_HELP)]
    Dealer(DealerArgs),
    /// Run the verb named by the pattern setting (--pattern, ZMQ_PATTERN or `pattern` in the
    /// --config file), with ARGS as that verb's flags: `ZMQ_PATTERN=rep ztick run --count 1`
    /// is `ztick rep --count 1`. The pattern is a socket kind with a verb: pub, sub, req,
    /// rep, push, pull, router or dealer.
    Run(RunArgs),
    /// Print the settings in force (after flags, environment and --config file) and where
    /// each came from.
    Config(ConfigArgs),
}

/// Where the socket attaches and with which options; every flag overrides its variable.
#[derive(Args, Debug)]
pub(crate) struct Conn {
    /// Bind ENDPOINT (tcp://*:5555, tcp://127.0.0.1:5555, ipc:///tmp/z.ipc); overrides
    /// ZMQ_BIND_ADDRESS and bind_address.
    #[arg(long, value_name = "ENDPOINT", conflicts_with = "connect")]
    bind: Option<String>,
    /// Connect to ENDPOINT (tcp://127.0.0.1:5555, ipc:///tmp/z.ipc); overrides
    /// ZMQ_CONNECT_ADDRESS and connect_address.
    #[arg(long, value_name = "ENDPOINT")]
    connect: Option<String>,
    /// Send and receive high-water mark in messages (0 = no limit; libzmq's default 1000);
    /// overrides ZMQ_HWM and hwm.
    #[arg(long, value_name = "MSGS")]
    hwm: Option<String>,
    /// How long closing waits to flush queued messages, in ms (-1 = forever; default 1000);
    /// overrides ZMQ_LINGER_MS and linger_ms.
    #[arg(long, value_name = "MS", allow_hyphen_values = true)]
    linger_ms: Option<String>,
    /// Read settings from this TOML file: bind_address, connect_address, pattern (strings),
    /// hwm, linger_ms (integers). The environment and the flags override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Largest frame a peer may send, in bytes (ZMQ_MAXMSGSIZE): a peer that sends a larger
    /// one is disconnected before libzmq buffers it. A message of more than 1024 frames is
    /// discarded and counted (on standard error at the end).
    #[arg(long, value_name = "BYTES", default_value_t = MAX_MSG_BYTES)]
    max_msg_bytes: u64,
    #[command(flatten)]
    curve: CurveFlags,
}

/// Flags of the verbs that print what they receive.
#[derive(Args, Debug)]
pub(crate) struct Receiving {
    /// Stop after N messages (default: never).
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Fail if a message takes longer than MS to arrive (default, or 0: wait forever).
    #[arg(long, value_name = "MS")]
    timeout_ms: Option<u64>,
    /// Print one JSON object per message.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub(crate) struct PubArgs {
    #[command(flatten)]
    conn: Conn,
    /// Send T as the first frame of every message (subscribers filter on its prefix).
    #[arg(long, value_name = "T")]
    topic: Option<String>,
    /// Wait until N matching subscriptions have arrived before reading input.
    #[arg(long, value_name = "N", default_value_t = 0)]
    wait_subscribers: usize,
    /// Fail if the subscribers, or room to send, take longer than MS (default, or 0: forever).
    #[arg(long, value_name = "MS")]
    timeout_ms: Option<u64>,
}

#[derive(Args, Debug)]
pub(crate) struct SubArgs {
    #[command(flatten)]
    conn: Conn,
    /// Receive messages whose first frame starts with T; repeat for several (default:
    /// everything).
    #[arg(long, value_name = "T")]
    topic: Vec<String>,
    #[command(flatten)]
    recv: Receiving,
}

#[derive(Args, Debug)]
pub(crate) struct ReqArgs {
    #[command(flatten)]
    conn: Conn,
    /// Fail if the peer takes longer than MS to take the request or to reply (0: forever).
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    timeout_ms: u64,
    /// Print the reply as one JSON object.
    #[arg(long)]
    json: bool,
    /// The request's frames, in order ('' for an empty frame).
    #[arg(value_name = "FRAME", required = true)]
    frames: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct RecvArgs {
    #[command(flatten)]
    conn: Conn,
    #[command(flatten)]
    recv: Receiving,
}

#[derive(Args, Debug)]
pub(crate) struct PushArgs {
    #[command(flatten)]
    conn: Conn,
    /// Fail if a message cannot be handed to a peer within MS (default, or 0: forever).
    #[arg(long, value_name = "MS")]
    timeout_ms: Option<u64>,
}

#[derive(Args, Debug)]
pub(crate) struct RouterArgs {
    #[command(flatten)]
    conn: Conn,
    /// Send every message back to its sender.
    #[arg(long)]
    echo: bool,
    #[command(flatten)]
    recv: Receiving,
}

#[derive(Args, Debug)]
pub(crate) struct DealerArgs {
    #[command(flatten)]
    conn: Conn,
    /// This socket's identity as its ROUTER peer sees it (1-255 bytes).
    #[arg(long, value_name = "ID")]
    routing_id: Option<String>,
    #[command(flatten)]
    recv: Receiving,
    /// One message's frames ('' for an empty frame); none: send standard input's lines.
    #[arg(value_name = "FRAME")]
    frames: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct RunArgs {
    /// The verb to run; overrides ZMQ_PATTERN and the --config file's `pattern`.
    #[arg(long, value_name = "KIND")]
    pattern: Option<String>,
    /// The verb's own flags and arguments (--config FILE among them is read here too).
    #[arg(value_name = "ARGS", trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct ConfigArgs {
    #[command(flatten)]
    conn: Conn,
    /// The pattern (socket kind); overrides ZMQ_PATTERN and `pattern`.
    #[arg(long, value_name = "KIND")]
    pattern: Option<String>,
    /// Print one JSON object: {"hwm": {"value": 1000, "source": null}, ...}.
    #[arg(long)]
    json: bool,
}

/// `ztick run`'s second parse: the pattern's verb with the remaining arguments.
#[derive(Parser, Debug)]
#[command(name = "ztick")]
struct RunCli {
    #[command(subcommand)]
    verb: ScriptVerb,
}

pub(crate) fn run(verb: ScriptVerb) -> Result<(), Error> {
    match verb {
        ScriptVerb::Pub(a) => {
            let topic = a.topic.map(String::into_bytes);
            let verb = Verb::Pub { topic, wait_subscribers: a.wait_subscribers };
            script(verb, &a.conn, None, a.timeout_ms, false, None)
        }
        ScriptVerb::Sub(a) => {
            let topics = a.topic.into_iter().map(String::into_bytes).collect();
            receive(Verb::Sub { topics }, &a.conn, &a.recv)
        }
        ScriptVerb::Req(a) => {
            let frames = a.frames.into_iter().map(String::into_bytes).collect();
            script(Verb::Req { frames }, &a.conn, None, Some(a.timeout_ms), a.json, None)
        }
        ScriptVerb::Rep(a) => receive(Verb::Rep, &a.conn, &a.recv),
        ScriptVerb::Push(a) => script(Verb::Push, &a.conn, None, a.timeout_ms, false, None),
        ScriptVerb::Pull(a) => receive(Verb::Pull, &a.conn, &a.recv),
        ScriptVerb::Router(a) => receive(Verb::Router { echo: a.echo }, &a.conn, &a.recv),
        ScriptVerb::Dealer(a) => {
            let frames = a.frames.into_iter().map(String::into_bytes).collect();
            let r = &a.recv;
            script(Verb::Dealer { frames }, &a.conn, r.count, r.timeout_ms, r.json, a.routing_id.as_deref())
        }
        ScriptVerb::Run(a) => run_pattern(a),
        ScriptVerb::Config(a) => {
            let s = settings(&a.conn, a.pattern.as_deref())?;
            if a.json {
                println!("{}", s.to_json());
            } else {
                print!("{}", s.to_text());
            }
            Ok(())
        }
    }
}

fn receive(verb: Verb, conn: &Conn, r: &Receiving) -> Result<(), Error> {
    script(verb, conn, r.count, r.timeout_ms, r.json, None)
}

/// The flags as the top layer over the environment and the --config file.
fn settings(c: &Conn, pattern: Option<&str>) -> Result<Settings, Error> {
    let mut flags = Settings::default();
    let given = [
        (Key::BindAddress, c.bind.as_deref()),
        (Key::ConnectAddress, c.connect.as_deref()),
        (Key::Hwm, c.hwm.as_deref()),
        (Key::LingerMs, c.linger_ms.as_deref()),
        (Key::Pattern, pattern),
    ];
    for (key, value) in given {
        if let Some(v) = value {
            flags.set(key, v, Source::Flag(key.flag()))?;
        }
    }
    Settings::load(c.config.as_deref(), flags)
}

fn script(
    verb: Verb,
    conn: &Conn,
    count: Option<u64>,
    timeout_ms: Option<u64>,
    json: bool,
    routing_id: Option<&str>,
) -> Result<(), Error> {
    let s = settings(conn, None)?;
    let attach = s.attach(verb.binds_by_default())?;
    let mut options = s.socket_options();
    if let Some(id) = routing_id {
        options = options.routing_id(id.as_bytes()).map_err(|_| {
            Error::config("--routing-id", id, "1 to 255 bytes, not starting with a zero byte")
        })?;
    }
    let mut options = options.curve(conn.curve.config().role()?).max_msg_bytes(conn.max_msg_bytes);
    if let Some(domain) = conn.curve.zap_domain() {
        options = options.zap_domain(domain);
    }
    let script = Script::new(verb, attach)
        .options(options)
        .count(count)
        .timeout(timeout_ms.filter(|&ms| ms > 0).map(Duration::from_millis))
        .format(if json { Format::Json } else { Format::Text });
    let engine = Engine::new()?;
    let zap = conn.curve.zap(&engine)?;
    let outcome = script.run(&engine, &mut std::io::stdin().lock(), &mut std::io::stdout().lock());
    report_zap(zap);
    let outcome = outcome?;
    if outcome.refused > 0 {
        eprintln!(
            "ztick: refused {} message(s) of more than {} frames",
            outcome.refused,
            ztick::SocketOptions::MAX_FRAMES
        );
    }
    Ok(())
}

/// `ztick run`: finds the pattern, then parses `ztick PATTERN ARGS...` as that verb.
fn run_pattern(a: RunArgs) -> Result<(), Error> {
    let config = config_in(&a.args);
    let mut flags = Settings::default();
    if let Some(p) = &a.pattern {
        flags.set(Key::Pattern, p, Source::Flag("--pattern"))?;
    }
    let s = Settings::load(config.as_deref(), flags)?;
    let Some(pattern) = s.pattern else {
        return Err(Error::config(
            "pattern",
            "(unset)",
            format!(
                "`ztick run` needs ZMQ_PATTERN, `pattern` in the --config file, or --pattern, set to one of {}",
                Verb::NAMES
            ),
        ));
    };
    let name = match pattern.value {
        SocketKind::Pub => "pub",
        SocketKind::Sub => "sub",
        SocketKind::Req => "req",
        SocketKind::Rep => "rep",
        SocketKind::Push => "push",
        SocketKind::Pull => "pull",
        SocketKind::Router => "router",
        SocketKind::Dealer => "dealer",
        other => {
            return Err(Error::config(
                pattern.source.to_string(),
                other.as_str().to_ascii_lowercase(),
                format!("a socket kind that `ztick run` has a verb for: {}", Verb::NAMES),
            ))
        }
    };
    let argv = ["ztick", name].into_iter().map(str::to_owned).chain(a.args);
    match RunCli::try_parse_from(argv) {
        Ok(cli) => run(cli.verb),
        Err(e) => e.exit(),
    }
}

/// The value of `--config FILE` or `--config=FILE` among a verb's arguments.
fn config_in(args: &[String]) -> Option<PathBuf> {
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if arg == "--config" {
            return it.next().map(PathBuf::from);
        }
        if let Some(v) = arg.strip_prefix("--config=") {
            return Some(PathBuf::from(v));
        }
    }
    None
}
