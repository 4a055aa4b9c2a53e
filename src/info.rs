//! What this build and machine offer: libzmq's version, how it is linked, its capabilities.

use serde::Serialize;

use crate::config::CoreId;
use crate::engine::IdleStrategy;
use crate::sys;

/// A description of the libzmq in use and of this machine, as `ztick info` prints it.
///
/// # Examples
///
/// ```
/// use ztick::info::BuildInfo;
///
/// let info = BuildInfo::current();
/// assert!(info.libzmq_version.starts_with("4."));
/// assert!(["vendored", "system"].contains(&info.link_mode));
/// if !info.curve {
///     eprintln!("this libzmq has no CURVE: encrypted sockets will be refused");
/// }
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct BuildInfo {
    /// libzmq's version, e.g. `4.3.5`.
    pub libzmq_version: String,
    /// `vendored` (built from source by the `zmq-sys` crate's build script, statically
    /// linked) or `system` (the shared library, through Cargo's links override).
    pub link_mode: &'static str,
    /// How libzmq was built, e.g. `zeromq-src 0.3 (libzmq 4.3.5), cc, static, CURVE with
    /// libsodium 1.0.22` (ztick's default build) or crates.io zmq-sys's build without CURVE
    /// (a crate that depends on ztick without its `[patch]`; README, "Vendored or system
    /// libzmq").
    pub built_with: &'static str,
    /// Where the vendored static library was built, when vendored.
    pub vendored_lib_dir: Option<&'static str>,
    /// Extra C++ flags the vendored build was compiled with (the eventfd and thread defines).
    pub vendored_cxxflags: &'static str,
    /// CURVE security (libzmq built with libsodium: ztick's default and system builds).
    pub curve: bool,
    /// The ipc transport.
    pub ipc: bool,
    /// libzmq's draft API.
    pub draft: bool,
    /// Cores this process may run on.
    pub cores: Vec<CoreId>,
    /// The idle strategy ztick recommends here.
    pub recommended_idle: String,
}

impl BuildInfo {
    /// Reads everything from the linked libzmq and the OS.
    pub fn current() -> Self {
        let (a, b, c) = sys::zmq_version();
        let lib_dir = env!("ZTICK_LIBZMQ_LIB_DIR");
        let cores = sys::available_cores();
        BuildInfo {
            libzmq_version: format!("{a}.{b}.{c}"),
            link_mode: env!("ZTICK_LIBZMQ_LINK"),
            built_with: env!("ZTICK_LIBZMQ_BUILT_WITH"),
            vendored_lib_dir: (!lib_dir.is_empty()).then_some(lib_dir),
            vendored_cxxflags: env!("ZTICK_LIBZMQ_CXXFLAGS"),
            curve: sys::zmq_has("curve"),
            ipc: sys::zmq_has("ipc"),
            draft: sys::zmq_has("draft"),
            recommended_idle: IdleStrategy::recommended(cores.len()).to_string(),
            cores,
        }
    }
}
