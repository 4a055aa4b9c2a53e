//! `zmq_msg_t`, owned and reused.

use std::ffi::c_void;

/// One libzmq message, initialised on creation and closed on drop.
///
/// A receive loop keeps one `Msg` per frame slot and reuses it: `zmq_msg_recv` closes the old
/// content before it stores the new one, so steady-state receives make no Rust allocation.
#[repr(C, align(8))]
pub(crate) struct Msg {
    /// libzmq wants 8-byte alignment; zmq-sys 0.12 declares it, and `align(8)` here keeps
    /// that true should a future binding drop it.
    raw: zmq_sys::zmq_msg_t,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Msg").field("len", &self.len()).finish()
    }
}

impl Msg {
    /// An empty message.
    pub(crate) fn new() -> Self {
        let mut m = Msg { raw: zmq_sys::zmq_msg_t { __: [0; 64] } };
        // SAFETY: `m.raw` is writable, aligned storage; zmq_msg_init cannot fail.
        unsafe { zmq_sys::zmq_msg_init(&mut m.raw) };
        m
    }

    /// A message holding a copy of `data` (libzmq stores up to 33 bytes inline, no malloc).
    pub(crate) fn copy_from(data: &[u8]) -> Self {
        let mut m = Msg { raw: zmq_sys::zmq_msg_t { __: [0; 64] } };
        // SAFETY: storage as above; on failure (ENOMEM) we fall back to an empty message,
        // which the caller sees as a zero-length frame rather than a crash.
        let rc = unsafe { zmq_sys::zmq_msg_init_size(&mut m.raw, data.len()) };
        if rc != 0 {
            // SAFETY: as in `new`.
            unsafe { zmq_sys::zmq_msg_init(&mut m.raw) };
            return m;
        }
        // SAFETY: init_size gave `data.len()` writable bytes at zmq_msg_data.
        unsafe {
            std::ptr::copy_nonoverlapping(
                data.as_ptr(),
                zmq_sys::zmq_msg_data(&mut m.raw) as *mut u8,
                data.len(),
            )
        };
        m
    }

    /// A message whose content is `len` bytes at `data`, released by `free(data, hint)`.
    ///
    /// # Safety
    /// `data` must stay valid and unchanged until libzmq calls `free`, which it may do from its
    /// I/O thread; `free` must be safe to call from any thread.
    pub(super) unsafe fn from_raw_parts(
        data: *mut u8,
        len: usize,
        free: unsafe extern "C" fn(*mut c_void, *mut c_void),
        hint: *mut c_void,
    ) -> Result<Self, ()> {
        let mut m = Msg { raw: zmq_sys::zmq_msg_t { __: [0; 64] } };
        // SAFETY: the caller guarantees `data`'s lifetime and `free`'s thread safety.
        let rc =
            unsafe { zmq_sys::zmq_msg_init_data(&mut m.raw, data as *mut c_void, len, Some(free), hint) };
        if rc != 0 {
            return Err(());
        }
        Ok(m)
    }

    /// The content's length in bytes.
    pub(crate) fn len(&self) -> usize {
        // SAFETY: `raw` is initialised; zmq_msg_size only reads it (the cast drops no write).
        unsafe { zmq_sys::zmq_msg_size(&self.raw as *const _ as *mut _) }
    }

    /// The content.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        let len = self.len();
        if len == 0 {
            return &[];
        }
        // SAFETY: `raw` is initialised; zmq_msg_data points at `len` readable bytes that live
        // as long as the message is neither closed nor re-received, which `&self` prevents.
        unsafe {
            let p = zmq_sys::zmq_msg_data(&self.raw as *const _ as *mut _) as *const u8;
            std::slice::from_raw_parts(p, len)
        }
    }

    /// True when another frame of the same message follows.
    pub(crate) fn more(&self) -> bool {
        // SAFETY: `raw` is initialised; zmq_msg_more only reads it.
        unsafe { zmq_sys::zmq_msg_more(&self.raw as *const _ as *mut _) != 0 }
    }

    /// A metadata property of a received message (`User-Id`, `Peer-Address`, a ZMTP
    /// property), or `None` when libzmq has none or it is not UTF-8.
    pub(crate) fn property(&self, name: &std::ffi::CStr) -> Option<&str> {
        // SAFETY: `raw` is initialised and `name` is NUL-terminated; zmq_msg_gets only reads
        // both (its pointer is const in C) and returns NULL or a NUL-terminated string owned
        // by the message's metadata, which lives as long as the message is neither closed nor
        // re-received, which `&self` prevents.
        let value = unsafe { zmq_sys::zmq_msg_gets(&self.raw as *const _ as *mut _, name.as_ptr()) };
        if value.is_null() {
            return None;
        }
        // SAFETY: non-null: a NUL-terminated string that lives as long as `self` (above).
        unsafe { std::ffi::CStr::from_ptr(value) }.to_str().ok()
    }

    pub(super) fn as_mut_ptr(&mut self) -> *mut zmq_sys::zmq_msg_t {
        &mut self.raw
    }
}

impl Drop for Msg {
    fn drop(&mut self) {
        // SAFETY: `raw` is initialised (every constructor initialises it) and closed only here.
        unsafe { zmq_sys::zmq_msg_close(&mut self.raw) };
    }
}

// SAFETY: a zmq_msg_t is plain data owned by this value; libzmq allows a message to be moved
// between threads as long as only one uses it at a time, which ownership guarantees.
unsafe impl Send for Msg {}
