//! The libzmq context: its I/O threads and their placement.

use std::ffi::c_void;

use super::{last_errno, retry_eintr};
use crate::error::ZmqErrno;

/// An owned (or borrowed) libzmq context.
///
/// libzmq contexts are thread-safe, so this is `Send + Sync`; sockets created from it must be
/// closed before it is dropped, because `zmq_ctx_term` waits for them.
#[derive(Debug)]
pub(crate) struct RawContext {
    /// Never null while `self` lives.
    ptr: *mut c_void,
    /// False for a context lent by the caller, which then stays theirs to terminate.
    owned: bool,
}

// SAFETY: a libzmq context is documented thread-safe; the pointer is only passed to libzmq.
unsafe impl Send for RawContext {}
// SAFETY: as above, every libzmq context function may be called from any thread at once.
unsafe impl Sync for RawContext {}

impl RawContext {
    /// A new context, owned by this value.
    pub(crate) fn new() -> Result<Self, ZmqErrno> {
        // SAFETY: zmq_ctx_new has no preconditions; null means failure.
        let ptr = unsafe { zmq_sys::zmq_ctx_new() };
        if ptr.is_null() {
            return Err(last_errno());
        }
        Ok(RawContext { ptr, owned: true })
    }

    /// Sets a context option (`ZMQ_IO_THREADS`, `ZMQ_THREAD_AFFINITY_CPU_ADD`, ...).
    /// Thread options only take effect before the first socket is created.
    pub(crate) fn set(&self, option: u32, value: i32) -> Result<(), ZmqErrno> {
        // SAFETY: `ptr` is a live context; zmq_ctx_set validates `option` itself.
        retry_eintr(|| unsafe { zmq_sys::zmq_ctx_set(self.ptr, option as i32, value) }).map(drop)
    }

    /// The raw pointer, for creating sockets in this module.
    pub(super) fn as_ptr(&self) -> *mut c_void {
        self.ptr
    }
}

impl Drop for RawContext {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        // SAFETY: `ptr` is a live context we own; this is the only place that terminates it.
        if let Err(e) = retry_eintr(|| unsafe { zmq_sys::zmq_ctx_term(self.ptr) }) {
            tracing::warn!(error = %e, "zmq_ctx_term failed");
        }
    }
}

/// The libzmq context option numbers the engine sets, named here so `zmq_sys` stays fenced.
pub(crate) mod opt {
    pub(crate) const IO_THREADS: u32 = zmq_sys::ZMQ_IO_THREADS;
    pub(crate) const THREAD_AFFINITY_CPU_ADD: u32 = zmq_sys::ZMQ_THREAD_AFFINITY_CPU_ADD;
    pub(crate) const THREAD_NAME_PREFIX: u32 = zmq_sys::ZMQ_THREAD_NAME_PREFIX;
    pub(crate) const THREAD_SCHED_POLICY: u32 = zmq_sys::ZMQ_THREAD_SCHED_POLICY;
    pub(crate) const THREAD_PRIORITY: u32 = zmq_sys::ZMQ_THREAD_PRIORITY;
}
