//! The fence: the only code that names `zmq::`, `zmq_sys::`, `core_affinity::`, libc poll
//! sets, clocks or other syscalls.
//!
//! Contract: every function here either succeeds or returns a [`ZmqErrno`] taken right after
//! the failing call; `EINTR` is retried here and never escapes; nothing here panics on a
//! libzmq error (closing a socket or terminating a context in `Drop` only warns). Each
//! `unsafe` block names the invariant that makes it sound in a `// SAFETY:` line.

mod context;
mod msg;
mod poll;
mod pool;
mod socket;

mod curve;
pub(crate) use context::{opt as ctx_opt, RawContext};
pub(crate) use curve::{curve_keypair, curve_public};
pub(crate) use msg::Msg;
pub(crate) use poll::{poll, FdPollSet, PollItem};
pub use pool::{BufferPool, PoolStats, PooledBuf};
pub(crate) use socket::{RawSocket, Wakeup, ZAP_ENFORCE_DOMAIN_OPTION};

use crate::config::{CoreId, SchedPolicy};
use crate::error::ZmqErrno;

/// libzmq's ETERM: the context is being terminated (ZMQ_HAUSNUMERO + 53).
pub(crate) const ETERM: i32 = 156_384_712 + 53;

/// EAGAIN: a send found the HWM reached, or a receive found nothing (libzmq passes the OS value on).
pub(crate) const EAGAIN: i32 = libc::EAGAIN;

/// libzmq's EFSM: out of order for the socket's state machine (ZMQ_HAUSNUMERO + 51).
pub(crate) const EFSM: i32 = 156_384_712 + 51;

/// Decodes a monitor message's first frame: the event (u16) and its value (u32), native order.
pub(crate) fn monitor_event(frame: &[u8]) -> Option<u16> {
    frame.get(..2).map(|b| u16::from_ne_bytes([b[0], b[1]]))
}

/// The value a monitor message's first frame carries after its event code (an fd, an errno,
/// a protocol error or a ZAP status code, by event), native order.
pub(crate) fn monitor_value(frame: &[u8]) -> Option<u32> {
    frame.get(2..6).map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

/// libzmq's monitor event codes and protocol error codes, by name, for the decoder in
/// `engine::monitor` (which names no `zmq_sys::` itself).
pub(crate) mod monitor_codes {
    /// Every event but MONITOR_STOPPED: libzmq sends that one, with a blocking send, from
    /// the thread that stops the monitor (`RawSocket`'s `Drop`), where a full reader would
    /// hold it up.
    pub(crate) const ALL: u32 = zmq_sys::ZMQ_EVENT_ALL & !zmq_sys::ZMQ_EVENT_MONITOR_STOPPED;
    /// What a peer monitor asks for: connections opening, handshakes done or failed, closes
    /// (a failed handshake's close is no peer leaving).
    pub(crate) const PEER_EVENTS: u32 = ACCEPTED
        | CONNECTED
        | HANDSHAKE_SUCCEEDED
        | HANDSHAKE_FAILED_NO_DETAIL
        | HANDSHAKE_FAILED_PROTOCOL
        | HANDSHAKE_FAILED_AUTH
        | DISCONNECTED;
    pub(crate) const CONNECTED: u32 = zmq_sys::ZMQ_EVENT_CONNECTED;
    pub(crate) const CONNECT_DELAYED: u32 = zmq_sys::ZMQ_EVENT_CONNECT_DELAYED;
    pub(crate) const CONNECT_RETRIED: u32 = zmq_sys::ZMQ_EVENT_CONNECT_RETRIED;
    pub(crate) const LISTENING: u32 = zmq_sys::ZMQ_EVENT_LISTENING;
    pub(crate) const BIND_FAILED: u32 = zmq_sys::ZMQ_EVENT_BIND_FAILED;
    pub(crate) const ACCEPTED: u32 = zmq_sys::ZMQ_EVENT_ACCEPTED;
    pub(crate) const ACCEPT_FAILED: u32 = zmq_sys::ZMQ_EVENT_ACCEPT_FAILED;
    pub(crate) const CLOSED: u32 = zmq_sys::ZMQ_EVENT_CLOSED;
    pub(crate) const CLOSE_FAILED: u32 = zmq_sys::ZMQ_EVENT_CLOSE_FAILED;
    pub(crate) const DISCONNECTED: u32 = zmq_sys::ZMQ_EVENT_DISCONNECTED;
    pub(crate) const MONITOR_STOPPED: u32 = zmq_sys::ZMQ_EVENT_MONITOR_STOPPED;
    pub(crate) const HANDSHAKE_FAILED_NO_DETAIL: u32 = zmq_sys::ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL;
    pub(crate) const HANDSHAKE_SUCCEEDED: u32 = zmq_sys::ZMQ_EVENT_HANDSHAKE_SUCCEEDED;
    pub(crate) const HANDSHAKE_FAILED_PROTOCOL: u32 = zmq_sys::ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL;
    pub(crate) const HANDSHAKE_FAILED_AUTH: u32 = zmq_sys::ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
    /// `ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC`: a CURVE box that did not open (wrong keys).
    pub(crate) const PROTOCOL_CRYPTOGRAPHIC: u32 = zmq_sys::ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC;
    /// `ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH`: one side CURVE, the other not.
    pub(crate) const PROTOCOL_MECHANISM_MISMATCH: u32 = zmq_sys::ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH;
    /// The first of the `ZMQ_PROTOCOL_ERROR_ZAP_*` codes (the ZAP handler's replies).
    pub(crate) const PROTOCOL_ZAP_FIRST: u32 = zmq_sys::ZMQ_PROTOCOL_ERROR_ZAP_UNSPECIFIED;
    /// The first of the `ZMQ_PROTOCOL_ERROR_ZMTP_*` codes.
    pub(crate) const PROTOCOL_ZMTP_FIRST: u32 = zmq_sys::ZMQ_PROTOCOL_ERROR_ZMTP_UNSPECIFIED;
}

/// The address of the peer at the other end of socket `fd` (`getpeername`), for a tcp
/// connection: `10.0.0.2:41234`; `None` for a Unix-domain peer (ipc peers are unnamed), a
/// closed fd or any failure. libzmq's monitor reports the fd of each accepted or connected
/// connection; this reads it as the kernel sees it when called.
pub(crate) fn peer_address(fd: i32) -> Option<String> {
    // SAFETY: sockaddr_storage is plain data for which all zeroes is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `storage` is writable for `len` bytes and outlives the call; an fd that is not
    // (or no longer) a socket makes getpeername fail with EBADF or ENOTSOCK, nothing worse.
    let rc = unsafe { libc::getpeername(fd, (&mut storage as *mut libc::sockaddr_storage).cast(), &mut len) };
    if rc != 0 {
        return None;
    }
    match i32::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the kernel wrote a sockaddr_in, which fits in storage.
            let a: libc::sockaddr_in =
                unsafe { std::ptr::read((&storage as *const libc::sockaddr_storage).cast()) };
            let ip = std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(std::net::SocketAddrV4::new(ip, u16::from_be(a.sin_port)).to_string())
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the kernel wrote a sockaddr_in6, which fits in storage.
            let a: libc::sockaddr_in6 =
                unsafe { std::ptr::read((&storage as *const libc::sockaddr_storage).cast()) };
            let ip = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(std::net::SocketAddrV6::new(ip, u16::from_be(a.sin6_port), 0, a.sin6_scope_id).to_string())
        }
        _ => None,
    }
}

/// The errno of the last failed libzmq call on this thread, with libzmq's text for it.
pub(crate) fn last_errno() -> ZmqErrno {
    // SAFETY: zmq_errno only reads this thread's errno.
    let errno = unsafe { zmq_sys::zmq_errno() };
    errno_of(errno)
}

/// Wraps a raw errno value with libzmq's static description.
pub(crate) fn errno_of(errno: i32) -> ZmqErrno {
    // SAFETY: zmq_strerror returns a pointer to a static, NUL-terminated string for any value.
    let text = unsafe { std::ffi::CStr::from_ptr(zmq_sys::zmq_strerror(errno)) };
    ZmqErrno { errno, message: text.to_str().unwrap_or("unknown libzmq error") }
}

/// Turns a libzmq return code into a result, retrying on EINTR.
///
/// `call` is re-run while it fails with EINTR, so interrupted system calls never escape.
#[inline]
pub(crate) fn retry_eintr(mut call: impl FnMut() -> i32) -> Result<i32, ZmqErrno> {
    loop {
        let rc = call();
        if rc >= 0 {
            return Ok(rc);
        }
        let err = last_errno();
        if err.errno != libc::EINTR {
            return Err(err);
        }
    }
}

/// CLOCK_MONOTONIC in nanoseconds: one clock shared by every process of this host, so a
/// send time stamped in one process can be compared with a receive time in another.
#[inline]
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64).wrapping_mul(1_000_000_000).wrapping_add(ts.tv_nsec as u64)
}

/// Sleeps until CLOCK_MONOTONIC reads `deadline_ns` (an absolute deadline, so a paced loop
/// does not drift by its own work, and an interrupted sleep resumes to the same instant);
/// returns at once for a deadline already past. How late it wakes is the kernel's timer
/// slack plus this machine's wake-up latency (BENCHMARKS.md: about 20 µs at p50 here).
pub fn sleep_until_ns(deadline_ns: u64) {
    let ts = libc::timespec {
        tv_sec: (deadline_ns / 1_000_000_000).min(i64::MAX as u64) as libc::time_t,
        tv_nsec: (deadline_ns % 1_000_000_000) as libc::c_long,
    };
    loop {
        // SAFETY: `ts` is a valid timespec; the remainder pointer may be null with TIMER_ABSTIME.
        let rc = unsafe {
            libc::clock_nanosleep(libc::CLOCK_MONOTONIC, libc::TIMER_ABSTIME, &ts, std::ptr::null_mut())
        };
        // clock_nanosleep returns the error number itself; only EINTR is worth a retry.
        if rc != libc::EINTR {
            return;
        }
    }
}

/// 64 random bits from the kernel (`getrandom`), for ids peers must not guess: publisher
/// epochs, subscriber hellos. Falls back to a hash of the clock and the process id if the
/// call fails (a kernel without `getrandom`), which is unique but guessable.
pub(crate) fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    // SAFETY: `b` is writable for 8 bytes; flags 0 blocks only until the pool is seeded.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n == 8 {
        return u64::from_le_bytes(b);
    }
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(now_ns());
    h.write_u32(std::process::id());
    h.finish()
}

/// The cores this process may run on, as the OS reports them (its affinity mask), sorted.
pub(crate) fn available_cores() -> Vec<CoreId> {
    let mut ids: Vec<CoreId> =
        core_affinity::get_core_ids().unwrap_or_default().into_iter().map(|c| CoreId::new(c.id)).collect();
    ids.sort_unstable();
    ids
}

/// Pins the calling thread to `core`; false when the OS refused.
pub(crate) fn pin_current_thread(core: CoreId) -> bool {
    core_affinity::set_for_current(core_affinity::CoreId { id: core.index() })
}

/// The OS's numbers for `policy`: its `SCHED_*` constant, and the priority to set with it
/// (none for `Other`: libzmq would then call `nice(-20)` and abort without the privilege).
pub(crate) fn sched_params(policy: SchedPolicy) -> (i32, Option<i32>) {
    match policy {
        SchedPolicy::Other => (libc::SCHED_OTHER, None),
        SchedPolicy::Fifo { priority } => (libc::SCHED_FIFO, Some(i32::from(priority))),
        SchedPolicy::RoundRobin { priority } => (libc::SCHED_RR, Some(i32::from(priority))),
    }
}

/// Puts the calling thread under `policy` (`sched_setscheduler` on thread id 0).
pub(crate) fn set_current_thread_sched(policy: SchedPolicy) -> std::io::Result<()> {
    let (raw, priority) = sched_params(policy);
    let param = libc::sched_param { sched_priority: priority.unwrap_or(0) };
    // SAFETY: id 0 names the calling thread; `param` is a valid sched_param for the call.
    if unsafe { libc::sched_setscheduler(0, raw, &param) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Whether the OS lets this process run a thread under `policy`: tried on a short-lived
/// thread of its own, so the caller's policy is untouched.
pub(crate) fn sched_permitted(policy: SchedPolicy) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("ztick-sched-probe".into())
        .spawn(move || set_current_thread_sched(policy))?
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("the scheduling probe thread panicked")))
}

/// The priorities the OS accepts for the scheduling policy `raw` (a `SCHED_*` constant).
pub(crate) fn sched_priority_range(raw: i32) -> std::ops::RangeInclusive<i32> {
    // SAFETY: both calls only read a constant table of the kernel; an unknown policy gives -1.
    let (min, max) = unsafe { (libc::sched_get_priority_min(raw), libc::sched_get_priority_max(raw)) };
    min..=max
}

/// libzmq's version as (major, minor, patch).
pub(crate) fn zmq_version() -> (i32, i32, i32) {
    zmq::version()
}

/// The effective user id of this process, to check who owns a secret key file.
pub(crate) fn euid() -> u32 {
    // SAFETY: geteuid takes nothing, cannot fail and touches no memory of ours.
    unsafe { libc::geteuid() }
}

/// Whether this libzmq build has a capability (`"curve"`, `"ipc"`, `"draft"`, ...).
pub(crate) fn zmq_has(capability: &str) -> bool {
    zmq::has(capability).unwrap_or(false)
}

/// Gives memory that was freed back to the OS (`malloc_trim`), after a hostile message has
/// been discarded: libzmq holds every frame of a message until it is whole (64 bytes each,
/// in blocks allocated on its I/O thread), and glibc keeps such small freed blocks in that
/// thread's arena, so half a million one-byte frames would otherwise leave 32 MB resident
/// after they are gone. Elsewhere than glibc, nothing.
pub(crate) fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; any pad is valid.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// What names this host's CLOCK_MONOTONIC: the kernel's boot id. Two processes with the
/// same one (any network namespaces of one kernel) compare [`now_ns`] stamps exactly;
/// empty when the kernel does not say.
pub(crate) fn monotonic_clock_id() -> Vec<u8> {
    std::fs::read("/proc/sys/kernel/random/boot_id")
        .map(|mut b| {
            b.retain(|c| !c.is_ascii_whitespace());
            b.truncate(64);
            b
        })
        .unwrap_or_default()
}

/// Sets how late the kernel may wake the calling thread from a timed sleep
/// (`PR_SET_TIMERSLACK`; 0 restores the thread's default). Linux's default, 50 µs, would
/// swamp the microsecond timers of a paced publisher: ztick's workers run with 1 µs, and an
/// application thread that paces ticks itself ([`sleep_until_ns`], or an
/// [`InlineTickPublisher`](crate::fanout::InlineTickPublisher)) wants the same.
pub fn set_timer_slack_ns(ns: u64) {
    // SAFETY: PR_SET_TIMERSLACK takes one unsigned long and affects only the calling thread.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, ns as libc::c_ulong, 0, 0, 0) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleep_until_wakes_no_earlier_than_its_absolute_deadline() {
        for ahead_ns in [0u64, 50_000, 2_000_000] {
            let deadline = now_ns() + ahead_ns;
            sleep_until_ns(deadline);
            assert!(now_ns() >= deadline, "woke before a deadline {ahead_ns} ns ahead");
        }
        // A deadline already past returns (and does not sleep forever).
        sleep_until_ns(now_ns().saturating_sub(1_000_000_000));
        sleep_until_ns(0);
    }
}
