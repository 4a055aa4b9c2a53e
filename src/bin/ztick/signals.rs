//! SIGINT and SIGTERM noticed, not obeyed at once: a long-running verb polls
//! [`Signals::caught`], ends cleanly, prints its report, and exits with 128 + the signal.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use ztick::Error;

/// The signals this process has received (the last one), registered once.
#[derive(Debug, Clone)]
pub(crate) struct Signals {
    caught: Arc<AtomicUsize>,
}

impl Signals {
    /// Starts noticing SIGINT and SIGTERM (instead of dying of them).
    pub(crate) fn register() -> Result<Signals, Error> {
        let caught = Arc::new(AtomicUsize::new(0));
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register_usize(sig, Arc::clone(&caught), sig as usize).map_err(|e| {
                Error::Io { context: format!("installing a handler for signal {sig}"), source: e }
            })?;
        }
        Ok(Signals { caught })
    }

    /// The signal received, if any.
    pub(crate) fn caught(&self) -> Option<i32> {
        match self.caught.load(Ordering::Relaxed) {
            0 => None,
            n => i32::try_from(n).ok(),
        }
    }

    /// The exit code for a run that ended normally (`code`) or was stopped by a signal.
    pub(crate) fn exit_code(&self, code: u8) -> u8 {
        match self.caught() {
            Some(sig) => u8::try_from(128 + sig).unwrap_or(1),
            None => code,
        }
    }
}
