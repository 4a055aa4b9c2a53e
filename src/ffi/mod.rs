//! The C ABI, behind the `capi` feature; `include/ztick.h` is generated from this module by
//! cbindgen (`scripts/capi.sh header`) and committed.
//!
//! After rustls-ffi: every `extern "C"` function runs its body inside [`guard`] (or
//! [`guard_or`]), a `catch_unwind` boundary, so no panic crosses into C; failures come back
//! as a [`ztick_result`] and the message is kept for [`ztick_last_error`]; handles are
//! opaque boxes with a `_new` and a `_free`; every pointer argument is checked for NULL; no
//! Rust type crosses the boundary except `#[repr(C)]` ones.
//!
//! Thread rules, as the header says them: a `const` handle may be used from several
//! threads at once (publishing, reading a recorder); a non-`const` one by one thread at a
//! time (polling, finishing, recording, freeing). Callbacks run on ztick's worker threads.

#![allow(non_camel_case_types)]
// C type names: ztick_engine, ztick_result, ...
// `pub` here means exported to C (cbindgen reads it, the linker keeps it), not Rust API.
#![allow(unreachable_pub)]

mod engine;
mod publisher;
mod recorder;
mod subscriber;

use std::cell::RefCell;
use std::ffi::{c_char, c_int, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::Error;

/// What a call did. `ZTICK_RESULT_OK` is 0; for any other value, `ztick_last_error()` has
/// the message.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ztick_result {
    /// Success.
    Ok = 0,
    /// A required pointer argument was NULL.
    NullParameter = 1,
    /// An argument or option was out of range or malformed (bad UTF-8, endpoint, topic).
    InvalidArgument = 2,
    /// Not available in this build (sharing a context in the vendored build, CURVE).
    Unsupported = 3,
    /// libzmq refused an operation (bind, connect, socket option).
    Zmq = 4,
    /// The wait ended before what was waited for happened.
    Timeout = 5,
    /// The hand-off channel is full (`try_` calls only).
    Full = 6,
    /// The publisher or subscriber has finished or stopped.
    Stopped = 7,
    /// A file or operating-system error (writing a `.hgrm`, spawning a thread).
    Io = 8,
    /// Any other failure; see `ztick_last_error()`.
    Failed = 9,
    /// ztick panicked inside the call (a bug): the handle involved should only be freed.
    Panic = 10,
}

/// Bit of `ztick_capabilities()`: linked with the system's shared libzmq.
pub const ZTICK_CAP_SYSTEM_LIBZMQ: u32 = 1;
/// Bit of `ztick_capabilities()`: an engine can run on the caller's libzmq context
/// (`ztick_engine_new_shared`); true exactly in the system build.
pub const ZTICK_CAP_SHARED_CONTEXT: u32 = 2;
/// Bit of `ztick_capabilities()`: the libzmq has CURVE security.
pub const ZTICK_CAP_CURVE: u32 = 4;
/// Bit of `ztick_capabilities()`: the libzmq has the ipc transport.
pub const ZTICK_CAP_IPC: u32 = 8;
/// Bit of `ztick_capabilities()`: the libzmq has its draft API.
pub const ZTICK_CAP_DRAFT: u32 = 16;

/// A failure on its way to C: the code and the message for `ztick_last_error`.
pub(crate) struct Failure {
    code: ztick_result,
    message: String,
}

impl Failure {
    pub(crate) fn new(code: ztick_result, message: impl Into<String>) -> Self {
        Failure { code, message: message.into() }
    }

    /// A NULL where `what` was required.
    pub(crate) fn null(what: &str) -> Self {
        Failure::new(ztick_result::NullParameter, format!("{what} is NULL"))
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Failure::new(ztick_result::InvalidArgument, message)
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let code = match &e {
            Error::Endpoint { .. }
            | Error::Config { .. }
            | Error::Insecure { .. }
            | Error::Core { .. }
            | Error::CoreBudget { .. } => ztick_result::InvalidArgument,
            Error::Unsupported { .. } => ztick_result::Unsupported,
            Error::Zmq { .. } => ztick_result::Zmq,
            Error::Timeout { .. } | Error::NoReply { .. } => ztick_result::Timeout,
            Error::Stopped(_) | Error::WorkerPanicked { .. } => ztick_result::Stopped,
            Error::Io { .. } => ztick_result::Io,
            _ => ztick_result::Failed,
        };
        Failure { code, message: e.to_string() }
    }
}

thread_local! {
    /// The message of the last call on this thread that failed.
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(message: String) {
    // A message with a NUL inside is cut there rather than lost.
    let mut bytes = message.into_bytes();
    if let Some(nul) = bytes.iter().position(|&b| b == 0) {
        bytes.truncate(nul);
    }
    let c = CString::new(bytes).unwrap_or_default();
    LAST_ERROR.with(|slot| *slot.borrow_mut() = c);
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    match (payload.downcast_ref::<&str>(), payload.downcast_ref::<String>()) {
        (Some(s), _) => format!("ztick panicked (a bug): {s}"),
        (_, Some(s)) => format!("ztick panicked (a bug): {s}"),
        _ => "ztick panicked (a bug)".to_owned(),
    }
}

/// Runs `body` inside the panic boundary: its failure or panic becomes a result code and
/// the message for `ztick_last_error`.
pub(crate) fn guard(body: impl FnOnce() -> Result<(), Failure>) -> ztick_result {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => ztick_result::Ok,
        Ok(Err(f)) => {
            set_last_error(f.message);
            f.code
        }
        Err(p) => {
            set_last_error(panic_text(p.as_ref()));
            ztick_result::Panic
        }
    }
}

/// Runs `body` inside the panic boundary for calls that return a value: `fallback` when it
/// panics (the message is kept for `ztick_last_error`).
pub(crate) fn guard_or<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(v) => v,
        Err(p) => {
            set_last_error(panic_text(p.as_ref()));
            fallback
        }
    }
}

/// A shared reference from a pointer argument, or a NULL-parameter failure naming it.
///
/// # Safety
///
/// `ptr` is NULL or points to a live `T` that nothing mutates for `'a`.
pub(crate) unsafe fn arg<'a, T>(ptr: *const T, what: &str) -> Result<&'a T, Failure> {
    // SAFETY: the caller's contract: NULL or a live, shared `T`.
    unsafe { ptr.as_ref() }.ok_or_else(|| Failure::null(what))
}

/// An exclusive reference from a pointer argument, or a NULL-parameter failure naming it.
///
/// # Safety
///
/// `ptr` is NULL or points to a live `T` that nothing else uses for `'a`.
pub(crate) unsafe fn arg_mut<'a, T>(ptr: *mut T, what: &str) -> Result<&'a mut T, Failure> {
    // SAFETY: the caller's contract: NULL or a live `T` used by this call only.
    unsafe { ptr.as_mut() }.ok_or_else(|| Failure::null(what))
}

/// A UTF-8 string from a C string argument.
///
/// # Safety
///
/// `ptr` is NULL or a NUL-terminated string that stays valid for `'a`.
pub(crate) unsafe fn arg_str<'a>(ptr: *const c_char, what: &str) -> Result<&'a str, Failure> {
    if ptr.is_null() {
        return Err(Failure::null(what));
    }
    // SAFETY: not NULL, and NUL-terminated and live for 'a by the caller's contract.
    let c = unsafe { CStr::from_ptr(ptr) };
    c.to_str().map_err(|_| Failure::invalid(format!("{what} is not UTF-8")))
}

/// The strings of a C array of `count` C strings (`what` names it in errors).
///
/// # Safety
///
/// `ptr` is NULL or points to `count` pointers, each NULL or a NUL-terminated string, all
/// valid for the call.
pub(crate) unsafe fn arg_strs(
    ptr: *const *const c_char,
    count: usize,
    what: &str,
) -> Result<Vec<String>, Failure> {
    if count == 0 {
        return Ok(Vec::new());
    }
    if ptr.is_null() {
        return Err(Failure::null(what));
    }
    // SAFETY: not NULL, and `count` readable pointers by the caller's contract.
    let ptrs = unsafe { std::slice::from_raw_parts(ptr, count) };
    ptrs.iter()
        .enumerate()
        // SAFETY: each entry is NULL or a live C string by the caller's contract.
        .map(|(i, &p)| unsafe { arg_str(p, &format!("{what}[{i}]")) }.map(str::to_owned))
        .collect()
}

/// A C string for the header's `const char *` returns (the text has no NUL: endpoints,
/// topics and versions cannot hold one; should one ever, the text is cut there).
pub(crate) fn c_string(s: &str) -> CString {
    let end = s.find('\0').unwrap_or(s.len());
    CString::new(&s[..end]).unwrap_or_default()
}

/// The message of the last call on this thread that failed (returned anything but
/// `ZTICK_RESULT_OK`); an empty string if none has. Never NULL. Valid until the next call
/// into ztick on this thread; copy it to keep it.
#[no_mangle]
pub extern "C" fn ztick_last_error() -> *const c_char {
    guard_or(c"ztick panicked (a bug) while reading the last error".as_ptr(), || {
        // The pointer stays valid while the thread-local string is not replaced, i.e.
        // until the next failing call on this thread.
        LAST_ERROR.with(|slot| slot.borrow().as_ptr())
    })
}

/// ztick's version, e.g. `"0.1.0"`. Static: never NULL, never freed.
#[no_mangle]
pub extern "C" fn ztick_version() -> *const c_char {
    guard_or(std::ptr::null(), || VERSION.as_ptr())
}

const VERSION: &CStr = match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
    Ok(v) => v,
    Err(_) => c"unknown",
};

/// What this build can do: a bit set of `ZTICK_CAP_*`.
#[no_mangle]
pub extern "C" fn ztick_capabilities() -> u32 {
    guard_or(0, || {
        let info = crate::info::BuildInfo::current();
        let mut caps = 0;
        if info.link_mode == "system" {
            caps |= ZTICK_CAP_SYSTEM_LIBZMQ | ZTICK_CAP_SHARED_CONTEXT;
        }
        for (on, bit) in
            [(info.curve, ZTICK_CAP_CURVE), (info.ipc, ZTICK_CAP_IPC), (info.draft, ZTICK_CAP_DRAFT)]
        {
            if on {
                caps |= bit;
            }
        }
        caps
    })
}

/// The version of the libzmq ztick runs on; each pointer may be NULL.
///
/// # Safety
///
/// Each non-NULL pointer must be valid for writing an `int`.
#[no_mangle]
pub unsafe extern "C" fn ztick_libzmq_version(major: *mut c_int, minor: *mut c_int, patch: *mut c_int) {
    guard_or((), || {
        let (a, b, c) = crate::sys::zmq_version();
        for (out, v) in [(major, a), (minor, b), (patch, c)] {
            // SAFETY: NULL or writable by the caller's contract.
            if let Some(o) = unsafe { out.as_mut() } {
                *o = v;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last() -> String {
        // SAFETY: never NULL, valid until the next ztick call on this thread.
        unsafe { CStr::from_ptr(ztick_last_error()) }.to_string_lossy().into_owned()
    }

    #[test]
    fn a_panic_stops_at_the_boundary_as_a_result_code() {
        let rc = guard(|| panic!("boom {}", 42));
        assert_eq!((rc, last().as_str()), (ztick_result::Panic, "ztick panicked (a bug): boom 42"));
        assert_eq!(guard_or(7u32, || panic!("static boom")), 7);
        assert!(last().ends_with("static boom"));
    }

    #[test]
    fn failures_keep_their_message_per_thread() {
        assert_eq!(guard(|| Err(Failure::invalid("bad\0cut here"))), ztick_result::InvalidArgument);
        assert_eq!(last(), "bad", "a NUL ends the message instead of losing it");
        let other = std::thread::spawn(last).join().unwrap();
        assert_eq!(other, "", "another thread has its own last error");
        assert_eq!(guard(|| Ok(())), ztick_result::Ok);
        assert_eq!(last(), "bad", "a success leaves the last failure's message");
        let e: Failure = Error::Stopped("gone".into()).into();
        assert_eq!((e.code, e.message.as_str()), (ztick_result::Stopped, "engine stopped: gone"));
    }
}
