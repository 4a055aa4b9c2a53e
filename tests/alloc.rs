//! Steady-state sends of pooled messages make no Rust allocation, on the application thread
//! or on the worker. libzmq's own mallocs (its per-message control block above 33 bytes) go
//! through C's allocator and are not counted here; the docs of `BufferPool` say so.
//!
//! This file is its own test binary with one test, so no other test allocates meanwhile.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use common::{with_timeout, WAIT};
use ztick::{BufferPool, Endpoint, Engine, SocketKind, SocketSpec};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: defers every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn steady_state_pooled_sends_make_no_rust_allocation() {
    with_timeout(WAIT * 2, || {
        const WARMUP: u64 = 5_000;
        const MEASURED: u64 = 50_000;
        let engine = Engine::new().unwrap();
        let ep = Endpoint::unique_inproc("alloc");
        let got = Arc::new(AtomicU64::new(0));
        let got2 = Arc::clone(&got);
        let mut b = engine.worker("pull").batch_max(256);
        b.socket(SocketSpec::bind(SocketKind::Pull, ep.clone()));
        let puller = b
            .on_message(move |_, _, m| {
                assert_eq!(m.size(), 256);
                got2.fetch_add(1, Ordering::Release);
                Ok(())
            })
            .spawn()
            .unwrap();
        let mut b = engine.worker("push").inbox_capacity(256);
        let push = b.socket(SocketSpec::connect(SocketKind::Push, ep));
        let pusher = b.spawn().unwrap();
        let handle = pusher.handle();
        // Enough buffers for everything that can be in flight: the hand-off channel (256),
        // both HWMs (1000 + 1000) and a receive batch.
        let pool = BufferPool::new(256, 4096);
        let payload = [7u8; 256];
        let send_all = |n: u64| {
            for _ in 0..n {
                let mut buf = pool.get();
                buf.extend_from_slice(&payload).unwrap();
                handle.send(push, buf).unwrap();
            }
        };
        let wait_for = |n: u64| {
            let deadline = std::time::Instant::now() + WAIT;
            while got.load(Ordering::Acquire) < n {
                assert!(std::time::Instant::now() < deadline, "receiver stalled");
                std::thread::yield_now();
            }
        };
        send_all(WARMUP);
        wait_for(WARMUP);
        let misses_before = pool.stats().misses;
        let before = ALLOCATIONS.load(Ordering::SeqCst);
        send_all(MEASURED);
        wait_for(WARMUP + MEASURED);
        let allocations = ALLOCATIONS.load(Ordering::SeqCst) - before;
        let stats = pool.stats();
        assert_eq!(stats.misses, misses_before, "pool ran dry: {stats:?}");
        assert_eq!(allocations, 0, "{allocations} Rust allocations for {MEASURED} pooled sends");
        assert_eq!(pusher.stop().unwrap().stats.sent, WARMUP + MEASURED);
        puller.stop().unwrap();
    });
}
