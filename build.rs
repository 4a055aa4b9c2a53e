//! Records how libzmq is linked, for `ztick info`; with the `capi` feature, generates the C
//! header from `src/ffi/` with cbindgen.
//!
//! In the default (vendored) build, zmq-sys's build script compiles libzmq 4.3.4 and
//! publishes its paths as `DEP_ZMQ_*` metadata (ztick depends on zmq-sys, which has
//! `links = "zmq"`). Under Cargo's links override for the system library (DESIGN decision 1)
//! that script does not run, so no such metadata exists: that tells the two builds apart.

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_ZMQ_LIB");
    println!("cargo:rerun-if-env-changed=CXXFLAGS_x86_64_unknown_linux_gnu");
    println!("cargo:rerun-if-env-changed=CXXFLAGS");
    let mode = match std::env::var("DEP_ZMQ_LIB") {
        Ok(lib) => {
            println!("cargo:rustc-env=ZTICK_LIBZMQ_LIB_DIR={lib}");
            "vendored"
        }
        Err(_) => {
            println!("cargo:rustc-env=ZTICK_LIBZMQ_LIB_DIR=");
            "system"
        }
    };
    println!("cargo:rustc-env=ZTICK_LIBZMQ_LINK={mode}");
    // The flags only mean something when this build compiled libzmq.
    let flags = match mode {
        "vendored" => std::env::var("CXXFLAGS_x86_64_unknown_linux_gnu")
            .or_else(|_| std::env::var("CXXFLAGS"))
            .unwrap_or_default(),
        _ => String::new(),
    };
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
