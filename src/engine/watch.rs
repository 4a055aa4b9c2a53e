//! A value that a worker updates and application threads wait on (a mutex and a condvar):
//! "wait until N subscribers are there", "wait until the stream has ended".

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// A value behind a mutex whose every change wakes its waiters. A panic while it was held
/// leaves it usable: each update leaves the value consistent, so poisoning is ignored.
#[derive(Debug, Default)]
pub(crate) struct Watch<T> {
    value: Mutex<T>,
    changed: Condvar,
}

impl<T> Watch<T> {
    fn lock(&self) -> MutexGuard<'_, T> {
        self.value.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes the value and wakes every waiter; returns what `f` returns.
    pub(crate) fn update<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let r = f(&mut self.lock());
        self.changed.notify_all();
        r
    }

    /// Reads the value now.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        f(&self.lock())
    }

    /// Waits until `ready` holds for the value, at most `timeout` (spurious wake-ups
    /// included). Returns the value, still locked, and whether `ready` holds for it, so a
    /// caller that timed out can say what it saw.
    pub(crate) fn wait_until(
        &self,
        timeout: Duration,
        mut ready: impl FnMut(&T) -> bool,
    ) -> (MutexGuard<'_, T>, bool) {
        let (value, _) = self
            .changed
            .wait_timeout_while(self.lock(), timeout, |v| !ready(v))
            .unwrap_or_else(PoisonError::into_inner);
        let done = ready(&value);
        (value, done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_waiter_wakes_when_an_update_makes_it_ready_and_times_out_otherwise() {
        let w = Arc::new(Watch::<usize>::default());
        let (seen, ready) = w.wait_until(Duration::ZERO, |n| *n >= 1);
        assert_eq!((*seen, ready), (0, false), "not ready: says what it saw");
        drop(seen);
        let updater = {
            let w = Arc::clone(&w);
            std::thread::spawn(move || {
                for _ in 0..3 {
                    w.update(|n| *n += 1);
                }
            })
        };
        let (seen, ready) = w.wait_until(Duration::from_secs(20), |n| *n >= 3);
        assert!(ready && *seen >= 3);
        drop(seen);
        updater.join().unwrap();
        assert_eq!(w.read(|n| *n), 3);
    }
}
