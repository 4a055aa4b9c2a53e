//! Handing what a worker received to the application: to a callback on the worker thread
//! (no hop, nothing copied), or as an owned value through a bounded channel that waits
//! for room and gives up once the application stops or lets go. Patterns and the fan-out
//! subscribers offer both; this is the one place that decides how the channel waits.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{SendTimeoutError, Sender};

/// How often a delivery waiting for room in a full channel checks for a stop.
const STOP_CHECK: Duration = Duration::from_millis(50);

/// Where a worker hands what it receives, as its builder was told.
pub(crate) enum Delivery<C, T> {
    /// Called on the worker thread with what arrived, borrowed.
    Callback(C),
    /// An owned `T` for the application, through a bounded channel.
    Channel(Outbox<T>),
}

/// The worker's end of a bounded channel to the application.
///
/// A full channel makes the worker wait, which pushes back on its sockets' HWMs (and, for
/// a subscriber, makes its publisher apply its slow-subscriber choice).
#[derive(Debug)]
pub(crate) struct Outbox<T> {
    tx: Sender<T>,
    /// Set by the application when it stops: a worker waiting for room gives up instead
    /// of holding the stop back.
    stopping: Arc<AtomicBool>,
}

impl<T> Outbox<T> {
    /// An outbox sending on `tx` that gives up waiting once `stopping` is set.
    pub(crate) fn new(tx: Sender<T>, stopping: Arc<AtomicBool>) -> Self {
        Outbox { tx, stopping }
    }

    /// Hands `value` to the application, waiting while the channel is full. Returns false,
    /// dropping `value`, when the application has let go of the channel or is stopping.
    pub(crate) fn send(&self, mut value: T) -> bool {
        loop {
            match self.tx.send_timeout(value, STOP_CHECK) {
                Ok(()) => return true,
                Err(SendTimeoutError::Timeout(back)) if !self.stopping.load(Ordering::Acquire) => {
                    value = back
                }
                Err(_) => return false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outbox_waits_for_room_and_gives_up_on_a_stop_or_a_closed_channel() {
        let stopping = Arc::new(AtomicBool::new(false));
        let (tx, rx) = crossbeam_channel::bounded(1);
        let out = Outbox::new(tx, Arc::clone(&stopping));
        assert!(out.send(1));
        // Full: the send waits until the application makes room.
        let reader = std::thread::spawn(move || {
            let first = rx.recv().unwrap();
            (first, rx)
        });
        assert!(out.send(2));
        let (first, rx) = reader.join().unwrap();
        assert_eq!((first, rx.recv().unwrap()), (1, 2));
        // Full and stopping: it gives up.
        assert!(out.send(3));
        stopping.store(true, Ordering::Release);
        assert!(!out.send(4));
        // The application let go: nothing can be delivered.
        drop(rx);
        stopping.store(false, Ordering::Release);
        assert!(!out.send(5));
    }
}
