//! Builds libzmq 4.3.5 with CURVE and links it statically into this crate.
//!
//! This replaces zmq-sys 0.12.0's build script, which calls `zeromq-src` 0.2 (libzmq 4.3.4)
//! with `with_libsodium(None)` and so leaves CURVE out. Here `zeromq-src` 0.3 compiles
//! libzmq 4.3.5 with `cc` against the libsodium that `libsodium-sys-stable` built from the
//! source archive it ships (its `links = "sodium"` metadata says where). Nothing is
//! downloaded: both sources come with the crates.
//!
//! Under Cargo's build-script override for the `zmq` links key (the system-libzmq build,
//! `scripts/system-libzmq.sh`) this script does not run at all.
//!
//! The metadata printed at the end reaches the build script of every crate that depends on
//! this one as `DEP_ZMQ_*`: ztick's build.rs reads it to say, in `ztick info`, how libzmq
//! was built.

use std::env;
use std::path::PathBuf;

/// Platform features that libzmq's own CMake build finds on glibc Linux but that
/// `zeromq-src`'s `cc` build does not define, each one something ztick relies on:
/// eventfd mailboxes instead of a socketpair per mailbox (busy-polled inproc round trips
/// 5.8 -> 3.2 us one way, BENCHMARKS.md section 2), and the I/O threads' CPU affinity and
/// names (`EngineBuilder::io_cores`, `io_thread_name_prefix`: without these two defines
/// libzmq accepts the options and ignores them).
const LINUX_DEFINES: &[&str] = &[
    "ZMQ_HAVE_EVENTFD",
    "ZMQ_HAVE_EVENTFD_CLOEXEC",
    "ZMQ_HAVE_PTHREAD_SET_AFFINITY",
    "ZMQ_HAVE_PTHREAD_SETNAME_2",
];

fn main() {
    println!("cargo:rerun-if-changed=build/main.rs");
    println!("cargo:rerun-if-env-changed=PROFILE");

    let sodium_lib = env::var_os("DEP_SODIUM_LIB").map(PathBuf::from);
    let sodium_include = env::var_os("DEP_SODIUM_INCLUDE").map(PathBuf::from);
    let (Some(sodium_lib), Some(sodium_include)) = (sodium_lib, sodium_include) else {
        fail(
            "libsodium-sys-stable gave no DEP_SODIUM_LIB / DEP_SODIUM_INCLUDE: is its build \
             script overridden? Override the `zmq` links key too (system libzmq), or neither",
        )
    };
    let sodium_version = sodium_version(&sodium_include);

    let target = env::var("TARGET").unwrap_or_default();
    let mut defines = String::new();
    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        // zeromq-src builds with a `cc::Build` of its own, which takes extra flags from the
        // environment only; the most specific variable is the one `cc` reads first.
        let var = format!("CXXFLAGS_{target}");
        let mut flags = env::var(&var).unwrap_or_default();
        for d in LINUX_DEFINES {
            defines.push_str(&format!(" -D{d}=1"));
        }
        flags.push_str(&defines);
        env::set_var(&var, flags.trim());
    }

    zeromq_src::Build::new()
        .with_libsodium(Some(zeromq_src::LibLocation::new(sodium_lib, &sodium_include)))
        .build();

    println!("cargo:builder=zeromq-src 0.3 (libzmq 4.3.5), cc, static, CURVE with libsodium {sodium_version}");
    println!("cargo:curve=1");
    println!("cargo:sodium_version={sodium_version}");
    println!("cargo:defines={}", defines.trim());
}

/// libsodium's version from the header its configure step wrote, or `unknown`.
fn sodium_version(include: &std::path::Path) -> String {
    let header = include.join("sodium/version.h");
    let text = std::fs::read_to_string(&header).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("#define SODIUM_VERSION_STRING "))
        .map(|v| v.trim().trim_matches('"').to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn fail(what: &str) -> ! {
    eprintln!("zmq-sys (ztick's build): {what}");
    std::process::exit(1)
}
