//! The libzmq context: its I/O threads and their placement.

use std::ffi::c_void;
use std::ptr::NonNull;

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

    /// A context the caller created and will terminate itself: never terminated here.
    ///
    /// # Safety
    ///
    /// `ptr` must come from `zmq_ctx_new` of the libzmq this process links (not a second,
    /// private copy), and must stay live, not terminated, while this value and every socket
    /// created from it exist.
    #[cfg_attr(not(feature = "capi"), allow(dead_code))]
    pub(crate) unsafe fn borrowed(ptr: NonNull<c_void>) -> Self {
        RawContext { ptr: ptr.as_ptr(), owned: false }
    }

    /// Reads a context option (`ZMQ_IO_THREADS`, ...). libzmq checks the context's tag
    /// first, so a pointer to something else that is readable fails with EFAULT.
    #[cfg_attr(not(feature = "capi"), allow(dead_code))]
    pub(crate) fn get(&self, option: u32) -> Result<i32, ZmqErrno> {
        // SAFETY: `ptr` is a live context (the contract of `new` and `borrowed`).
        retry_eintr(|| unsafe { zmq_sys::zmq_ctx_get(self.ptr, option as i32) })
    }

    /// Sets a context option (`ZMQ_IO_THREADS`, `ZMQ_THREAD_AFFINITY_CPU_ADD`, ...).
    /// Thread options only take effect before the first socket is created.
    pub(crate) fn set(&self, option: u32, value: i32) -> Result<(), ZmqErrno> {
        // SAFETY: `ptr` is a live context; zmq_ctx_set validates `option` itself.
        retry_eintr(|| unsafe { zmq_sys::zmq_ctx_set(self.ptr, option as i32, value) }).map(drop)
    }

    /// Starts libzmq's I/O and reaper threads now, from the calling thread, by opening and
    /// closing a socket (libzmq starts them with its first socket). They inherit the
    /// creating thread's scheduling policy and CPU mask: started here, they get the
    /// engine builder's, not those of whichever worker happens to open the first socket
    /// (a real-time or pinned one).
    pub(crate) fn start_threads(&self) -> Result<(), ZmqErrno> {
        // SAFETY: `ptr` is a live context; a null socket means failure (errno says why).
        let socket = unsafe { zmq_sys::zmq_socket(self.ptr, zmq_sys::ZMQ_PAIR as i32) };
        if socket.is_null() {
            return Err(last_errno());
        }
        // SAFETY: `socket` was just created, is used by no one else, and is closed once.
        unsafe { zmq_sys::zmq_close(socket) };
        Ok(())
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
