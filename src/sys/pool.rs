//! Buffers lent to libzmq without copying, and given back by libzmq's free callback.
//!
//! A [`PooledBuf`] becomes a libzmq message through `zmq_msg_init_data`, with the buffer's own
//! slot as the callback hint. libzmq calls the callback once the last reference to the message
//! is gone (often on its I/O thread), and the callback pushes the slot back on the pool's free
//! list: a lock-free bounded queue (crossbeam's array channel), so the hot path takes no lock
//! and, once the pool is warm, makes no Rust allocation.
//!
//! libzmq itself still mallocs a small control block (`content_t`) for every zero-copy
//! message, so zero-copy only pays above a size; messages of [`INLINE_MAX`] bytes or less are
//! copied into the `zmq_msg_t` instead, which costs no allocation at all.

use std::ffi::c_void;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};

use super::msg::Msg;

/// Messages up to this size live inside `zmq_msg_t` (libzmq's "very small message").
pub(crate) const INLINE_MAX: usize = 33;

struct Slot {
    buf: Box<[u8]>,
    /// Bytes of `buf` in use; `len <= buf.len()`.
    len: usize,
    /// The pool this slot returns to. Valid while the slot is out of the pool, because the
    /// holder of an out-of-pool slot owns one strong count of the pool's `Arc`.
    pool: *const PoolInner,
}

/// A slot pointer on the free list. Only one owner at a time: the free list, a `PooledBuf`, or
/// a libzmq message.
struct SlotPtr(NonNull<Slot>);

// SAFETY: a `SlotPtr` is a unique owner of a heap `Slot` (see above); moving it between threads
// moves that ownership, and `Slot`'s fields are plain data plus a pointer to a `Sync` pool.
unsafe impl Send for SlotPtr {}

struct PoolInner {
    free_tx: Sender<SlotPtr>,
    free_rx: Receiver<SlotPtr>,
    buf_bytes: usize,
    /// `get` calls served from the free list.
    hits: AtomicU64,
    /// `get` calls that had to allocate a new buffer.
    misses: AtomicU64,
}

impl PoolInner {
    fn give_back(&self, slot: SlotPtr) {
        if let Err(e) = self.free_tx.try_send(slot) {
            // The free list is full (extra buffers made on misses): free this one.
            let SlotPtr(p) = e.into_inner();
            // SAFETY: we own the slot uniquely; it was made by `Box::into_raw` in `new_slot`.
            drop(unsafe { Box::from_raw(p.as_ptr()) });
        }
    }
}

impl Drop for PoolInner {
    fn drop(&mut self) {
        while let Ok(SlotPtr(p)) = self.free_rx.try_recv() {
            // SAFETY: slots on the free list are owned by it and came from `Box::into_raw`.
            drop(unsafe { Box::from_raw(p.as_ptr()) });
        }
    }
}

/// A pool of equal-sized send buffers, shared by any number of threads.
///
/// Cloning is cheap and shares the pool. Buffers out on loan keep the pool alive.
#[derive(Clone)]
pub struct BufferPool {
    inner: Arc<PoolInner>,
}

impl std::fmt::Debug for BufferPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BufferPool")
            .field("buf_bytes", &self.inner.buf_bytes)
            .field("stats", &self.stats())
            .finish()
    }
}

/// Counters of a [`BufferPool`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStats {
    /// Buffers served from the free list.
    pub hits: u64,
    /// Buffers that had to be allocated because the free list was empty.
    pub misses: u64,
    /// Buffers on the free list right now.
    pub available: usize,
}

impl BufferPool {
    /// A pool of `count` buffers of `buf_bytes` bytes each, all allocated now.
    ///
    /// When more than `count` buffers are out at once, `get` allocates extra ones (counted as
    /// misses); the free list keeps at most `count`, so the extras are freed on return.
    pub fn new(buf_bytes: usize, count: usize) -> Self {
        let (free_tx, free_rx) = crossbeam_channel::bounded(count.max(1));
        let inner = Arc::new(PoolInner {
            free_tx,
            free_rx,
            buf_bytes,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        });
        let pool_ptr = Arc::as_ptr(&inner);
        for _ in 0..count {
            inner.give_back(new_slot(buf_bytes, pool_ptr));
        }
        BufferPool { inner }
    }

    /// Takes a buffer (empty, with `buf_bytes` capacity) from the pool.
    pub fn get(&self) -> PooledBuf {
        let slot = match self.inner.free_rx.try_recv() {
            Ok(s) => {
                self.inner.hits.fetch_add(1, Ordering::Relaxed);
                s
            }
            Err(_) => {
                self.inner.misses.fetch_add(1, Ordering::Relaxed);
                new_slot(self.inner.buf_bytes, Arc::as_ptr(&self.inner))
            }
        };
        // The loan holds one strong count; it is released when the slot comes back.
        std::mem::forget(Arc::clone(&self.inner));
        PooledBuf { slot: slot.0 }
    }

    /// The capacity of each buffer, in bytes.
    pub fn buf_bytes(&self) -> usize {
        self.inner.buf_bytes
    }

    /// Hits, misses and the free list's length.
    pub fn stats(&self) -> PoolStats {
        PoolStats {
            hits: self.inner.hits.load(Ordering::Relaxed),
            misses: self.inner.misses.load(Ordering::Relaxed),
            available: self.inner.free_rx.len(),
        }
    }
}

fn new_slot(buf_bytes: usize, pool: *const PoolInner) -> SlotPtr {
    let slot = Box::new(Slot { buf: vec![0u8; buf_bytes].into_boxed_slice(), len: 0, pool });
    // SAFETY: Box::into_raw never returns null.
    SlotPtr(unsafe { NonNull::new_unchecked(Box::into_raw(slot)) })
}

/// Returns a slot to its pool and releases the loan's strong count on the pool.
///
/// # Safety
/// `slot` must be an out-of-pool slot uniquely owned by the caller.
unsafe fn return_slot(slot: NonNull<Slot>) {
    // SAFETY: the caller owns the slot; its `pool` pointer is kept alive by the loan's count.
    unsafe {
        let pool = (*slot.as_ptr()).pool;
        (*slot.as_ptr()).len = 0;
        (*pool).give_back(SlotPtr(slot));
        // Release the loan's count last: the pool must outlive `give_back`.
        Arc::decrement_strong_count(pool);
    }
}

unsafe extern "C" fn free_to_pool(_data: *mut c_void, hint: *mut c_void) {
    // SAFETY: `hint` is the slot handed to zmq_msg_init_data in `into_msg`, which gave libzmq
    // unique ownership of it; libzmq calls this exactly once per message.
    unsafe { return_slot(NonNull::new_unchecked(hint as *mut Slot)) };
}

/// A send buffer on loan from a [`BufferPool`]; dropping it unsent returns it.
pub struct PooledBuf {
    /// Uniquely owned out-of-pool slot (see `Slot::pool`).
    slot: NonNull<Slot>,
}

// SAFETY: `PooledBuf` uniquely owns its slot; the pool it points to is `Sync`.
unsafe impl Send for PooledBuf {}

impl std::fmt::Debug for PooledBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PooledBuf").field("len", &self.len()).field("capacity", &self.capacity()).finish()
    }
}

impl PooledBuf {
    fn slot(&self) -> &Slot {
        // SAFETY: the slot is uniquely owned by `self` and valid until returned.
        unsafe { self.slot.as_ref() }
    }

    fn slot_mut(&mut self) -> &mut Slot {
        // SAFETY: as in `slot`, and `&mut self` makes this the only reference.
        unsafe { self.slot.as_mut() }
    }

    /// Bytes in use.
    pub fn len(&self) -> usize {
        self.slot().len
    }

    /// True when no bytes are in use.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The buffer's fixed capacity.
    pub fn capacity(&self) -> usize {
        self.slot().buf.len()
    }

    /// Forgets the content.
    pub fn clear(&mut self) {
        self.slot_mut().len = 0;
    }

    /// Appends `data`; fails, changing nothing, when it would not fit.
    pub fn extend_from_slice(&mut self, data: &[u8]) -> Result<(), crate::Error> {
        let s = self.slot_mut();
        let end = s.len + data.len();
        if end > s.buf.len() {
            return Err(crate::Error::config(
                "pooled buffer length",
                end,
                format!("at most the pool's buffer size, {} bytes", s.buf.len()),
            ));
        }
        s.buf[s.len..end].copy_from_slice(data);
        s.len = end;
        Ok(())
    }

    /// Sets the length to `len` bytes, exposing the buffer's previous bytes up to there (they
    /// are always initialised); fails when `len` exceeds the capacity.
    pub fn set_len(&mut self, len: usize) -> Result<(), crate::Error> {
        let cap = self.capacity();
        if len > cap {
            return Err(crate::Error::config(
                "pooled buffer length",
                len,
                format!("at most the pool's buffer size, {cap} bytes"),
            ));
        }
        self.slot_mut().len = len;
        Ok(())
    }

    /// The bytes in use.
    pub fn as_slice(&self) -> &[u8] {
        let s = self.slot();
        &s.buf[..s.len]
    }

    /// The bytes in use, writable.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        let s = self.slot_mut();
        &mut s.buf[..s.len]
    }

    /// Hands the buffer to libzmq as a message: zero-copy above [`INLINE_MAX`] bytes, copied
    /// (and returned to the pool at once) at or below it.
    pub(crate) fn into_msg(self) -> Msg {
        let len = self.len();
        if len <= INLINE_MAX {
            return Msg::copy_from(self.as_slice());
        }
        let slot = self.slot;
        let data = self.slot().buf.as_ptr() as *mut u8;
        std::mem::forget(self);
        // SAFETY: the slot (and so `data`) is owned by the message until `free_to_pool` runs;
        // `free_to_pool` only touches the lock-free free list and atomics, so any thread may
        // call it.
        match unsafe { Msg::from_raw_parts(data, len, free_to_pool, slot.as_ptr() as *mut c_void) } {
            Ok(m) => m,
            Err(()) => {
                // libzmq could not allocate its control block: copy instead, give the slot back.
                // SAFETY: the slot's bytes are still ours, since init_data failed.
                let m = Msg::copy_from(unsafe { &(&(*slot.as_ptr()).buf)[..len] });
                // SAFETY: we still own the slot uniquely.
                unsafe { return_slot(slot) };
                m
            }
        }
    }
}

impl Drop for PooledBuf {
    fn drop(&mut self) {
        // SAFETY: `self` owns the slot uniquely and is being dropped.
        unsafe { return_slot(self.slot) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_reused_after_return() {
        let pool = BufferPool::new(64, 2);
        for _ in 0..10 {
            let mut b = pool.get();
            b.extend_from_slice(&[7; 40]).unwrap();
            drop(b.into_msg()); // closing the message runs the free callback
        }
        let s = pool.stats();
        assert_eq!((s.hits, s.misses, s.available), (10, 0, 2));
    }

    #[test]
    fn extra_buffers_are_counted_and_freed() {
        let pool = BufferPool::new(64, 1);
        let a = pool.get();
        let b = pool.get();
        assert_eq!(pool.stats().misses, 1);
        drop(a);
        drop(b);
        assert_eq!(pool.stats().available, 1);
    }

    #[test]
    fn overfilling_is_an_error_not_a_panic() {
        let pool = BufferPool::new(8, 1);
        let mut b = pool.get();
        assert!(b.extend_from_slice(&[0; 9]).is_err());
        assert!(b.set_len(9).is_err());
        assert_eq!(b.len(), 0);
    }

    #[test]
    fn pool_outlives_its_handle_while_buffers_are_out() {
        let pool = BufferPool::new(64, 1);
        let mut b = pool.get();
        drop(pool);
        b.extend_from_slice(&[1; 50]).unwrap();
        let m = b.into_msg();
        assert_eq!(m.as_bytes(), &[1; 50][..]);
        drop(m); // frees into the pool, then frees the pool itself
    }
}
