//! Bounded waits, so no test can hang. Also compiled into the `ztick` binary's own unit
//! tests (`#[path]` from src/bin/ztick), so it uses nothing but std, crossbeam and ztick.
#![allow(dead_code)]

use std::time::Duration;

use crossbeam_channel::Receiver;

/// The longest any single wait in these tests may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(20);

/// Runs `f` on its own thread and fails the test if it has not finished within `limit`.
pub fn with_timeout<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let t = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    let deadline = std::time::Instant::now() + limit;
    loop {
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(v) => {
                let _ = t.join();
                return v;
            }
            Err(_) if t.is_finished() => {
                // The closure panicked: surface its message.
                if let Err(p) = t.join() {
                    std::panic::resume_unwind(p);
                }
                panic!("test thread ended without a result");
            }
            Err(_) if std::time::Instant::now() >= deadline => panic!("test did not finish within {limit:?}"),
            Err(_) => {}
        }
    }
}

/// Receives one value or fails the test after [`WAIT`].
pub fn recv<T>(rx: &Receiver<T>, what: &str) -> T {
    rx.recv_timeout(WAIT).unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Polls `done` every millisecond until it holds, and fails the test with `what()` if it
/// still does not after [`WAIT`]: for a counter another thread moves, where the test has
/// no message to wait for.
pub fn wait_until(mut done: impl FnMut() -> bool, what: impl Fn() -> String) {
    let deadline = std::time::Instant::now() + WAIT;
    while !done() {
        assert!(std::time::Instant::now() < deadline, "{}", what());
        std::thread::sleep(Duration::from_millis(1)); // polling a counter, bounded by WAIT
    }
}

/// Retries `open` (a bind of an endpoint that a stopped server just released) until it
/// succeeds or [`WAIT`] passes: libzmq closes a listening socket on its I/O thread, shortly
/// after `zmq_close` returns, so an immediate rebind of the same tcp port can meet EADDRINUSE.
pub fn rebind<T>(mut open: impl FnMut() -> ztick::Result<T>) -> T {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        match open() {
            Ok(v) => return v,
            Err(e) if std::time::Instant::now() < deadline => {
                eprintln!("rebind: {e}; retrying");
                std::thread::sleep(Duration::from_millis(10)); // bounded by WAIT
            }
            Err(e) => panic!("could not bind again within {WAIT:?}: {e}"),
        }
    }
}
