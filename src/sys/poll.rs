//! Poll sets: libzmq's (`zmq_poll` over sockets and fds, millisecond timeouts) and the
//! kernel's (`ppoll` over raw fds, nanosecond timeouts), each filled in place by its owner
//! so that waiting never allocates.

use std::ffi::c_void;
use std::os::fd::RawFd;
use std::time::Duration;

use super::retry_eintr;
use crate::error::ZmqErrno;

/// One entry of a poll set: a socket or a file descriptor, and the events wanted.
#[repr(transparent)]
pub(crate) struct PollItem(zmq_sys::zmq_pollitem_t);

impl std::fmt::Debug for PollItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PollItem").field("fd", &self.0.fd).field("revents", &self.0.revents).finish()
    }
}

// SAFETY: the pointer is a libzmq socket handle that only `zmq_poll` reads, and only while
// its owner holds the socket (a worker's poll set is cleared and refilled before every
// poll); moving the set to another thread with its sockets is what libzmq allows for a
// socket itself (a full barrier, which a thread hand-off is).
unsafe impl Send for PollItem {}

impl PollItem {
    pub(super) fn new(socket: *mut c_void, fd: RawFd, readable: bool, writable: bool) -> Self {
        let mut events = 0;
        if readable {
            events |= zmq_sys::ZMQ_POLLIN as i16;
        }
        if writable {
            events |= zmq_sys::ZMQ_POLLOUT as i16;
        }
        PollItem(zmq_sys::zmq_pollitem_t { socket, fd, events, revents: 0 })
    }

    /// True when the last poll found it readable.
    pub(crate) fn is_readable(&self) -> bool {
        self.0.revents & zmq_sys::ZMQ_POLLIN as i16 != 0
    }
}

/// Waits until an item is ready or `timeout_ms` passes (-1: forever); returns how many are ready.
/// The items must refer to sockets that outlive the call, which `RawSocket::poll_item`'s callers
/// ensure by building the set from sockets they hold.
pub(crate) fn poll(items: &mut [PollItem], timeout_ms: i64) -> Result<usize, ZmqErrno> {
    // SAFETY: `PollItem` is a transparent zmq_pollitem_t; every socket in it is live (above).
    retry_eintr(|| unsafe {
        zmq_sys::zmq_poll(
            items.as_mut_ptr() as *mut zmq_sys::zmq_pollitem_t,
            items.len() as i32,
            timeout_ms as _,
        )
    })
    .map(|n| n as usize)
}

/// File descriptors to wait on for readability with nanosecond timeouts (`ppoll`), where
/// `zmq_poll` only has milliseconds: a worker's sub-millisecond parks.
///
/// The owner keeps one set and refills it in place (`clear`, then `push_readable`) for every
/// wait, so a park makes no allocation once the set has grown to its largest size. The fds
/// are not owned: whoever pushes one keeps it open until the wait returns.
#[derive(Default)]
pub(crate) struct FdPollSet {
    fds: Vec<libc::pollfd>,
}

impl std::fmt::Debug for FdPollSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.fds.iter().map(|p| (p.fd, p.revents))).finish()
    }
}

impl FdPollSet {
    /// An empty set with room for `n` fds before it allocates.
    pub(crate) fn with_capacity(n: usize) -> Self {
        FdPollSet { fds: Vec::with_capacity(n) }
    }

    /// Empties the set, keeping its memory.
    pub(crate) fn clear(&mut self) {
        self.fds.clear();
    }

    /// Adds `fd`, to be waited on for readability; returns its index for [`FdPollSet::fired`].
    pub(crate) fn push_readable(&mut self, fd: RawFd) -> usize {
        self.fds.push(libc::pollfd { fd, events: libc::POLLIN, revents: 0 });
        self.fds.len() - 1
    }

    /// Waits until an fd is readable (or in error) or `timeout` passes; returns how many
    /// fired. An interrupted wait (`EINTR`) returns 0, as if it had timed out: the caller
    /// re-checks its state and parks again.
    pub(crate) fn wait(&mut self, timeout: Duration) -> std::io::Result<usize> {
        ppoll(&mut self.fds, timeout)
    }

    /// True when the last [`FdPollSet::wait`] saw entry `i` fire (readable, hung up or in
    /// error); false for an index not in the set.
    pub(crate) fn fired(&self, i: usize) -> bool {
        self.fds.get(i).is_some_and(|p| p.revents != 0)
    }
}

/// Waits at most `timeout` for `fd` to become readable (one fd: no set needed).
pub(super) fn wait_readable(fd: RawFd, timeout: Duration) -> std::io::Result<usize> {
    ppoll(&mut [libc::pollfd { fd, events: libc::POLLIN, revents: 0 }], timeout)
}

/// `ppoll` on `fds` with no signal mask; `EINTR` counts as a timeout (returns 0).
fn ppoll(fds: &mut [libc::pollfd], timeout: Duration) -> std::io::Result<usize> {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `fds` is a valid, writable array of its length; `ts` is a valid timespec; no sigmask.
    let rc = unsafe { libc::ppoll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, &ts, std::ptr::null()) };
    if rc < 0 {
        let e = std::io::Error::last_os_error();
        return if e.kind() == std::io::ErrorKind::Interrupted { Ok(0) } else { Err(e) };
    }
    Ok(rc as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::Wakeup;

    #[test]
    fn an_fd_poll_set_says_which_entry_fired_and_refills_in_place() {
        let quiet = Wakeup::new().unwrap();
        let loud = Wakeup::new().unwrap();
        let mut set = FdPollSet::with_capacity(2);
        for round in 0..2 {
            set.clear();
            let q = set.push_readable(quiet.fd());
            let l = set.push_readable(loud.fd());
            assert_eq!((q, l), (0, 1), "round {round}: indices restart after clear");
            loud.signal();
            assert_eq!(set.wait(Duration::from_secs(5)).unwrap(), 1);
            assert!(!set.fired(q) && set.fired(l) && !set.fired(2));
            loud.drain();
        }
        set.clear();
        set.push_readable(quiet.fd());
        assert_eq!(set.wait(Duration::from_micros(50)).unwrap(), 0, "nothing signalled: a timeout");
        assert!(!set.fired(0));
    }
}
