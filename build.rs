//! Records how libzmq is linked, for `ztick info`.
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
}
