//! `ztick keygen` and the CURVE flags of the verbs, as real processes: they encrypt and
//! authenticate in every build this repository makes (default and system). Without CURVE
//! the same library calls refuse in one clear line: scripts/downstream.sh checks that.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::process::*;
use ztick::info::BuildInfo;

const SECRET: &str = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6";

/// Every build of this repository has CURVE: fail, do not skip, when one lost it.
fn require_curve() {
    let info = BuildInfo::current();
    assert!(info.curve, "this build of libzmq has no CURVE: {} ({})", info.libzmq_version, info.built_with);
}

/// `ztick keygen` writing the secret key to `dir/name`; the public key it printed.
fn keygen_into(dir: &TempDir, name: &str) -> String {
    let f = run(&["keygen", "--secret-out", &dir.0.join(name).to_string_lossy()]);
    expect_success(&f);
    f.stdout.trim().to_owned()
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

#[test]
fn keygen_writes_a_private_key_and_prints_the_public_one() {
    let dir = TempDir::new();
    let key = dir.0.join("server");
    require_curve();
    let f = run(&["keygen", "--secret-out", key.to_str().unwrap()]);
    expect_success(&f);
    let public = f.stdout.trim();
    assert_eq!(public.len(), 40, "a Z85 public key: {public:?}");
    assert_eq!(mode(&key), 0o600);
    assert_eq!(std::fs::read_to_string(&key).unwrap().trim().len(), 40);
    // An existing key is never overwritten.
    let again = run(&["keygen", "--secret-out", key.to_str().unwrap()]);
    expect_failure_mentioning(&again, &["exists"]);

    let cert = dir.0.join("alice.key");
    let f = run(&["keygen", "--secret-out", cert.to_str().unwrap(), "--format", "zcert"]);
    expect_success(&f);
    let public_cert = std::fs::read_to_string(&cert).unwrap();
    assert!(public_cert.contains(&format!("public-key = \"{}\"", f.stdout.trim())), "{public_cert}");
    assert!(!public_cert.contains("secret-key"));
    let secret_cert = dir.0.join("alice.key_secret");
    assert_eq!(mode(&secret_cert), 0o600);
    assert!(std::fs::read_to_string(&secret_cert).unwrap().contains("secret-key = \""));
}

#[test]
fn half_given_curve_flags_are_one_clear_error() {
    let dir = TempDir::new();
    let key = dir.0.join("client");
    std::fs::write(&key, format!("{SECRET}\n")).unwrap();
    let ep = TestEndpoint::new("ipc");
    let f = run(&["req", "--connect", &ep.url, "--curve-client-secret", key.to_str().unwrap(), "hi"]);
    expect_failure_mentioning(&f, &["--curve-client-secret", "--curve-server-public"]);
    let f = run(&["rep", "--bind", &ep.url, "--zap-allow", key.to_str().unwrap()]);
    expect_failure_mentioning(&f, &["--zap-allow", "--curve-server-secret"]);
}

#[test]
fn verbs_talk_curve_and_the_allow_list_refuses_strangers() {
    let dir = TempDir::new();
    let path = |name: &str| dir.0.join(name).to_string_lossy().into_owned();
    require_curve();
    let keygen = |name: &str| keygen_into(&dir, name);
    let server = keygen("server");
    let alice = keygen("alice");
    keygen("mallory");
    std::fs::write(path("allow"), format!("# who may connect\n{alice}  # alice\n")).unwrap();

    let ep = TestEndpoint::new("tcp");
    let rep = Proc::spawn(&[
        "rep",
        "--bind",
        &ep.url,
        "--count",
        "1",
        "--timeout-ms",
        "20000",
        "--curve-server-secret",
        &path("server"),
        "--zap-allow",
        &path("allow"),
    ]);
    // Mallory knows the server's key but is not on the list: no answer.
    let refused = run_for(
        &[
            "req",
            "--connect",
            &ep.url,
            "--timeout-ms",
            "1000",
            "--curve-client-secret",
            &path("mallory"),
            "--curve-server-public",
            &server,
            "intruder",
        ],
        Duration::from_secs(20),
    );
    expect_failure_mentioning(&refused, &["timed out"]);
    let ok = run_for(
        &[
            "req",
            "--connect",
            &ep.url,
            "--timeout-ms",
            "10000",
            "--curve-client-secret",
            &path("alice"),
            "--curve-server-public",
            &server,
            "secret",
            "order",
        ],
        Duration::from_secs(20),
    );
    let served = wait_group(vec![rep], Duration::from_secs(20)).remove(0);
    assert!(ok.status.success(), "{}\nthe server: {}", describe(&ok), describe(&served));
    assert_eq!(ok.stdout.trim(), "secret order");
    expect_success(&served);
    assert!(served.stderr.contains("1 allowed, 1 refused"), "{}", describe(&served));
}

/// A server secret key others can read stops the verb before it binds: exit 2 (a bad
/// argument), one line naming the file, its mode and the fix.
#[test]
fn a_secret_key_others_can_read_stops_the_verb_with_its_name_and_mode() {
    let dir = TempDir::new();
    let key = dir.0.join("server");
    std::fs::write(&key, format!("{SECRET}\n")).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let ep = TestEndpoint::new("ipc");
    let f = run(&["rep", "--bind", &ep.url, "--count", "1", "--curve-server-secret", key.to_str().unwrap()]);
    require_curve();
    expect_failure_mentioning(&f, &[key.to_str().unwrap(), "0644", "chmod 600"]);
    assert_eq!(f.status.code(), Some(2), "{}", describe(&f));
}

/// `fanout --role pub --zap-allow` admits the listed subscriber (its sockets ask the
/// handler for `zap::DOMAIN`, which makes the publisher fail closed) and the stream
/// completes with every tick accounted for.
#[test]
fn fanout_with_an_allow_list_serves_the_listed_subscriber() {
    let dir = TempDir::new();
    let path = |name: &str| dir.0.join(name).to_string_lossy().into_owned();
    require_curve();
    let keygen = |name: &str| keygen_into(&dir, name);
    let server = keygen("server");
    let alice = keygen("alice");
    std::fs::write(path("allow"), format!("{alice}\n")).unwrap();
    let (feed, side) = (TestEndpoint::new("tcp"), TestEndpoint::new("tcp"));
    let curve = ["--curve-server-secret", &path("server"), "--zap-allow", &path("allow")];
    let publisher = fanout_publisher(
        &feed.url,
        &side.url,
        1,
        &[&["--rate", "20000", "--duration", "1"][..], &curve[..]].concat(),
    );
    let sub = Proc::spawn(&[
        "fanout",
        "--role",
        "sub",
        "--connect",
        &feed.url,
        "--snapshot",
        &side.url,
        "--json",
        "--curve-client-secret",
        &path("alice"),
        "--curve-server-public",
        &server,
    ]);
    let done = wait_group(vec![publisher, sub], Duration::from_secs(60));
    expect_success(&done[0]);
    expect_success(&done[1]);
    let p = json(&done[0]);
    let s = json(&done[1]);
    let s = &s["subscribers"][0];
    assert_eq!(s["outcome"], "complete", "{s}");
    assert_eq!(s["missing"], 0, "{s}");
    assert_eq!(s["received"], p["published"], "{s}");
    // Two connections, feed and side channel, each asked about.
    assert!(done[0].stderr.contains("zap: 2 allowed, 0 refused"), "{}", describe(&done[0]));
}
