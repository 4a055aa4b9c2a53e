//! `ztick_engine`: the libzmq context ztick's workers put their sockets in.

use std::ffi::c_void;
use std::ptr::NonNull;

use super::{arg, guard, guard_or, ztick_result, Failure};
use crate::engine::Engine;
use crate::sys::RawContext;

/// An engine: a libzmq context (ztick's own, or the caller's) and the workers started on it.
pub struct ztick_engine {
    pub(crate) inner: Engine,
}

/// Starts an engine on a new libzmq context with `io_threads` I/O threads (1 is usual; 0
/// for an inproc-only engine). Free it with `ztick_engine_free`.
///
/// # Safety
///
/// `engine_out` must be valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn ztick_engine_new(
    io_threads: u32,
    engine_out: *mut *mut ztick_engine,
) -> ztick_result {
    guard(|| {
        if engine_out.is_null() {
            return Err(Failure::null("engine_out"));
        }
        let b = Engine::builder().io_threads(io_threads as usize);
        let engine = Box::new(ztick_engine { inner: b.build()? });
        // SAFETY: checked not NULL; writable by the caller's contract.
        unsafe { *engine_out = Box::into_raw(engine) };
        Ok(())
    })
}

/// Starts an engine on the caller's libzmq context (from `zmq_ctx_new`), so ztick's sockets
/// live in it and share its inproc endpoints. The context stays the caller's: ztick never
/// terminates it, and does not change its options.
///
/// Needs the system build of ztick (one libzmq in the process); the vendored build
/// returns `ZTICK_RESULT_UNSUPPORTED`. See `ztick_capabilities()` and `ZTICK_CAP_SHARED_CONTEXT`.
///
/// # Safety
///
/// `zmq_context` must be a live context of the libzmq this program links, and stay live
/// (not terminated) until this engine and every publisher and subscriber started on it are
/// freed: `zmq_ctx_term` waits for their sockets. `engine_out` must be valid for writing a
/// pointer.
#[no_mangle]
pub unsafe extern "C" fn ztick_engine_new_shared(
    zmq_context: *mut c_void,
    engine_out: *mut *mut ztick_engine,
) -> ztick_result {
    guard(|| {
        if engine_out.is_null() {
            return Err(Failure::null("engine_out"));
        }
        let ptr = NonNull::new(zmq_context).ok_or_else(|| Failure::null("zmq_context"))?;
        // SAFETY: a live context of this process's libzmq, outliving the engine and its
        // workers, by the caller's contract; `from_context` refuses it in the vendored build
        // before touching it.
        let ctx = unsafe { RawContext::borrowed(ptr) };
        let engine = Box::new(ztick_engine { inner: Engine::from_context(ctx)? });
        // SAFETY: checked not NULL; writable by the caller's contract.
        unsafe { *engine_out = Box::into_raw(engine) };
        Ok(())
    })
}

/// libzmq I/O threads of the engine's context; 0 for NULL.
///
/// # Safety
///
/// `engine` must be NULL or a live engine.
#[no_mangle]
pub unsafe extern "C" fn ztick_engine_io_threads(engine: *const ztick_engine) -> u32 {
    guard_or(0, || {
        // SAFETY: NULL or a live engine, by the caller's contract.
        match unsafe { arg(engine, "engine") } {
            Ok(e) => u32::try_from(e.inner.io_threads()).unwrap_or(u32::MAX),
            Err(_) => 0,
        }
    })
}

/// Stops the engine. Publishers and subscribers started on it keep running until they
/// are freed; an engine's own context is terminated once all of them are. NULL is ignored.
///
/// # Safety
///
/// `engine` must be NULL or an engine from `ztick_engine_new*` not yet freed, and no other
/// call may use it during or after this one.
#[no_mangle]
pub unsafe extern "C" fn ztick_engine_free(engine: *mut ztick_engine) {
    guard_or((), || {
        if !engine.is_null() {
            // SAFETY: from Box::into_raw in ztick_engine_new*, freed once, by the contract.
            drop(unsafe { Box::from_raw(engine) });
        }
    })
}
