//! Records how libzmq is linked, for `ztick info`; with the `capi` feature, generates the C
//! header from `src/ffi/` with cbindgen.
//!
//! ztick depends on zmq-sys, which has `links = "zmq"`, so what zmq-sys's build script
//! prints as `cargo:KEY=VALUE` arrives here as `DEP_ZMQ_KEY`. Three builds are told apart:
//! - ztick's default build: its `[patch.crates-io]` zmq-sys (vendor/zmq-sys) compiles
//!   libzmq 4.3.5 with CURVE and says so in `DEP_ZMQ_BUILDER` and `DEP_ZMQ_DEFINES`;
//! - a crate that depends on ztick without that patch: crates.io's zmq-sys 0.12 compiles
//!   libzmq 4.3.4 without CURVE and sets `DEP_ZMQ_LIB` only;
//! - the system build: Cargo's links override replaces zmq-sys's build script (DESIGN
//!   decision 1), which then prints nothing, so no `DEP_ZMQ_LIB` exists.

/// What crates.io's zmq-sys 0.12 builds (its build script calls `with_libsodium(None)`).
const CRATES_IO_ZMQ_SYS: &str =
    "zmq-sys 0.12 from crates.io: zeromq-src 0.2 (libzmq 4.3.4), cc, static, no CURVE (no libsodium)";

fn main() {
    for var in
        ["DEP_ZMQ_LIB", "DEP_ZMQ_BUILDER", "DEP_ZMQ_DEFINES", "CXXFLAGS_x86_64_unknown_linux_gnu", "CXXFLAGS"]
    {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let (mode, lib_dir, built_with, flags) = match var("DEP_ZMQ_LIB") {
        Some(lib) => match var("DEP_ZMQ_BUILDER") {
            Some(builder) => ("vendored", lib, builder, var("DEP_ZMQ_DEFINES").unwrap_or_default()),
            // crates.io's zmq-sys: the only flags it takes are those in the environment.
            None => {
                let flags = var("CXXFLAGS_x86_64_unknown_linux_gnu").or_else(|| var("CXXFLAGS"));
                ("vendored", lib, CRATES_IO_ZMQ_SYS.to_string(), flags.unwrap_or_default())
            }
        },
        None => (
            "system",
            String::new(),
            "Cargo's build-script override of the `zmq` links key: the system's shared libzmq".to_string(),
            String::new(),
        ),
    };
    println!("cargo:rustc-env=ZTICK_LIBZMQ_LINK={mode}");
    println!("cargo:rustc-env=ZTICK_LIBZMQ_LIB_DIR={lib_dir}");
    println!("cargo:rustc-env=ZTICK_LIBZMQ_BUILT_WITH={built_with}");
    println!("cargo:rustc-env=ZTICK_LIBZMQ_CXXFLAGS={flags}");
    #[cfg(feature = "capi")]
    header();
}

/// Writes the header to `$OUT_DIR/ztick.h` (tests/capi.rs compares it with the committed
/// `include/ztick.h`, so a stale header fails the tests) and, when `ZTICK_WRITE_HEADER=1`,
/// over `include/ztick.h` itself.
#[cfg(feature = "capi")]
fn header() {
    use std::path::PathBuf;

    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=include/ztick.h");
    println!("cargo:rerun-if-env-changed=ZTICK_WRITE_HEADER");
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into()));
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into()));
    let fail = |what: &str, e: &dyn std::fmt::Display| -> ! {
        eprintln!("ztick build.rs: {what}: {e}");
        std::process::exit(1)
    };
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml"))
        .unwrap_or_else(|e| fail("reading cbindgen.toml", &e));
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(root.join("src/ffi/mod.rs"))
        .generate()
        .unwrap_or_else(|e| fail("generating the C header from src/ffi/", &e));
    bindings.write_to_file(out.join("ztick.h"));
    let committed = root.join("include/ztick.h");
    if std::env::var("ZTICK_WRITE_HEADER").as_deref() == Ok("1") {
        bindings.write_to_file(&committed);
    } else if std::fs::read(&committed).ok() != std::fs::read(out.join("ztick.h")).ok() {
        println!("cargo:warning=include/ztick.h is stale: run scripts/capi.sh header and commit it");
    }
}
