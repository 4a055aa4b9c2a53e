//! Steady-state sends of pooled messages make no Rust allocation, on the application thread
//! or on the worker. libzmq's own mallocs (its per-message control block above 33 bytes) go
//! through C's allocator and are not counted here; the docs of `BufferPool` say so.
//!
//! Allocations are counted per thread (the application thread and both workers), so the
//! test harness's own threads cannot disturb the count.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use common::{with_timeout, WAIT};
use ztick::{BufferPool, Endpoint, Engine, SocketKind, SocketSpec};

struct Counting;

thread_local! {
    /// Allocations made by this thread. `const`-initialised with no destructor, so touching
    /// it from inside the allocator never allocates.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: during thread teardown the slot may be gone; those frees are not ours.
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

fn allocations_here() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

// SAFETY: defers every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
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
                assert_eq!(m.size_bytes(), 256);
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
                // try_send: a blocking send on a full channel grows crossbeam-channel's list of
                // waiting senders the first time it happens (once per channel, not per
                // message), which this test is not about.
                let mut msg = ztick::Outbound::from(buf);
                let deadline = std::time::Instant::now() + WAIT;
                loop {
                    match handle.try_send(push, msg) {
                        Ok(()) => break,
                        Err(ztick::TrySendError::Full(m)) => {
                            assert!(std::time::Instant::now() < deadline, "worker stalled");
                            msg = m;
                            std::thread::yield_now();
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
            }
        };
        let wait_for = |n: u64| {
            let deadline = std::time::Instant::now() + WAIT;
            while got.load(Ordering::Acquire) < n {
                assert!(std::time::Instant::now() < deadline, "receiver stalled");
                std::thread::yield_now();
            }
        };
        // Each worker's own count, read on its thread.
        let on_worker = |h: &ztick::Handle| {
            let (tx, rx) = crossbeam_channel::bounded(1);
            assert!(h.run(move |_| {
                let _ = tx.send(allocations_here());
            }));
            rx.recv_timeout(WAIT).expect("worker answers")
        };
        send_all(WARMUP);
        wait_for(WARMUP);
        let misses_before = pool.stats().misses;
        let workers_before = on_worker(&handle) + on_worker(&puller.handle());
        let app_before = allocations_here();
        send_all(MEASURED);
        wait_for(WARMUP + MEASURED);
        let app = allocations_here() - app_before;
        let workers = on_worker(&handle) + on_worker(&puller.handle()) - workers_before;
        let stats = pool.stats();
        assert_eq!(stats.misses, misses_before, "pool ran dry: {stats:?}");
        assert_eq!(app, 0, "{app} Rust allocations on the sending thread for {MEASURED} pooled sends");
        assert_eq!(workers, 0, "{workers} Rust allocations on the workers for {MEASURED} pooled sends");
        assert_eq!(pusher.stop().unwrap().stats.sent, WARMUP + MEASURED);
        puller.stop().unwrap();
    });
}
