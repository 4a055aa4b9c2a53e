//! libzmq sockets, and the eventfd that wakes a polling worker.

use std::ffi::{c_void, CString};
use std::os::fd::RawFd;

use super::context::RawContext;
use super::msg::Msg;
use super::poll::{poll, wait_readable, PollItem};
use super::{last_errno, retry_eintr};
use crate::config::{SocketKind, SocketOptions};
use crate::curve::Curve;
use crate::error::ZmqErrno;

/// An owned libzmq socket. `Send` but not `Sync`: libzmq sockets are not thread-safe, so a
/// socket is used by one thread at a time (DESIGN decision 2).
pub(crate) struct RawSocket {
    /// Never null while `self` lives; closed only in `Drop`.
    ptr: *mut c_void,
    kind: SocketKind,
    /// Whether a monitor was started on this socket: `Drop` stops it before closing.
    monitored: std::cell::Cell<bool>,
}

// SAFETY: a libzmq socket may migrate between threads given a full memory barrier, which the
// channel or thread spawn that moves it provides; `!Sync` keeps it to one thread at a time.
unsafe impl Send for RawSocket {}

impl std::fmt::Debug for RawSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawSocket").field("kind", &self.kind).finish()
    }
}

fn kind_to_raw(kind: SocketKind) -> i32 {
    let raw = match kind {
        SocketKind::Pair => zmq_sys::ZMQ_PAIR,
        SocketKind::Pub => zmq_sys::ZMQ_PUB,
        SocketKind::Sub => zmq_sys::ZMQ_SUB,
        SocketKind::Req => zmq_sys::ZMQ_REQ,
        SocketKind::Rep => zmq_sys::ZMQ_REP,
        SocketKind::Dealer => zmq_sys::ZMQ_DEALER,
        SocketKind::Router => zmq_sys::ZMQ_ROUTER,
        SocketKind::Pull => zmq_sys::ZMQ_PULL,
        SocketKind::Push => zmq_sys::ZMQ_PUSH,
        SocketKind::XPub => zmq_sys::ZMQ_XPUB,
        SocketKind::XSub => zmq_sys::ZMQ_XSUB,
    };
    raw as i32
}

fn c_string(s: &str) -> Result<CString, ZmqErrno> {
    CString::new(s).map_err(|_| super::errno_of(libc::EINVAL))
}

impl RawSocket {
    /// Creates a socket of `kind` in `ctx`.
    pub(crate) fn new(ctx: &RawContext, kind: SocketKind) -> Result<Self, ZmqErrno> {
        // SAFETY: `ctx` is a live context; null means failure, with errno set.
        let ptr = unsafe { zmq_sys::zmq_socket(ctx.as_ptr(), kind_to_raw(kind)) };
        if ptr.is_null() {
            return Err(last_errno());
        }
        Ok(RawSocket { ptr, kind, monitored: std::cell::Cell::new(false) })
    }

    /// The socket's kind.
    pub(crate) fn kind(&self) -> SocketKind {
        self.kind
    }

    /// Sets an integer option.
    pub(crate) fn set_i32(&self, option: u32, value: i32) -> Result<(), ZmqErrno> {
        // SAFETY: `ptr` is live; the value points at a 4-byte int as libzmq expects for int options.
        retry_eintr(|| unsafe {
            zmq_sys::zmq_setsockopt(
                self.ptr,
                option as i32,
                &value as *const i32 as *const c_void,
                std::mem::size_of::<i32>(),
            )
        })
        .map(drop)
    }

    /// Sets a 64-bit integer option (`ZMQ_MAXMSGSIZE`).
    pub(crate) fn set_i64(&self, option: u32, value: i64) -> Result<(), ZmqErrno> {
        // SAFETY: as `set_i32`, with an 8-byte value for 64-bit options.
        retry_eintr(|| unsafe {
            zmq_sys::zmq_setsockopt(
                self.ptr,
                option as i32,
                &value as *const i64 as *const c_void,
                std::mem::size_of::<i64>(),
            )
        })
        .map(drop)
    }

    /// Sets a binary option (subscriptions, routing id).
    pub(crate) fn set_bytes(&self, option: u32, value: &[u8]) -> Result<(), ZmqErrno> {
        // SAFETY: `ptr` is live; `value` is readable for its length.
        retry_eintr(|| unsafe {
            zmq_sys::zmq_setsockopt(self.ptr, option as i32, value.as_ptr() as *const c_void, value.len())
        })
        .map(drop)
    }

    /// Subscribes a SUB socket to a topic prefix (empty: everything).
    pub(crate) fn subscribe(&self, prefix: &[u8]) -> Result<(), ZmqErrno> {
        self.set_bytes(zmq_sys::ZMQ_SUBSCRIBE, prefix)
    }

    /// Removes a subscription.
    pub(crate) fn unsubscribe(&self, prefix: &[u8]) -> Result<(), ZmqErrno> {
        self.set_bytes(zmq_sys::ZMQ_UNSUBSCRIBE, prefix)
    }

    /// Sets `ZMQ_XPUB_NODROP`: an XPUB/PUB at its HWM returns EAGAIN instead of dropping.
    pub(crate) fn set_xpub_nodrop(&self, on: bool) -> Result<(), ZmqErrno> {
        self.set_i32(zmq_sys::ZMQ_XPUB_NODROP, on as i32)
    }

    /// Sets `ZMQ_XPUB_VERBOSE`: an XPUB passes on every subscription, duplicates included.
    pub(crate) fn set_xpub_verbose(&self, on: bool) -> Result<(), ZmqErrno> {
        self.set_i32(zmq_sys::ZMQ_XPUB_VERBOSE, on as i32)
    }

    /// Applies every option that is set in `opts`. Call before bind/connect: libzmq applies
    /// HWMs and most other options only to pipes created afterwards.
    pub(crate) fn apply(&self, opts: &SocketOptions) -> Result<(), (&'static str, ZmqErrno)> {
        let ms = |d: std::time::Duration| i32::try_from(d.as_millis()).unwrap_or(i32::MAX);
        let int = |name, opt, v: Option<i32>| match v {
            Some(v) => self.set_i32(opt, v).map_err(|e| (name, e)),
            None => Ok(()),
        };
        int("send_hwm_msgs", zmq_sys::ZMQ_SNDHWM, opts.send_hwm_msgs.map(clamp_i32))?;
        int("recv_hwm_msgs", zmq_sys::ZMQ_RCVHWM, opts.recv_hwm_msgs.map(clamp_i32))?;
        int("linger", zmq_sys::ZMQ_LINGER, opts.linger.map(|l| l.map_or(-1, ms)))?;
        int("conflate", zmq_sys::ZMQ_CONFLATE, opts.conflate.map(i32::from))?;
        int("immediate", zmq_sys::ZMQ_IMMEDIATE, opts.immediate.map(i32::from))?;
        int("reconnect_ivl", zmq_sys::ZMQ_RECONNECT_IVL, opts.reconnect_interval.map(ms))?;
        int("reconnect_ivl_max", zmq_sys::ZMQ_RECONNECT_IVL_MAX, opts.reconnect_interval_max.map(ms))?;
        int("heartbeat_ivl", zmq_sys::ZMQ_HEARTBEAT_IVL, opts.heartbeat_interval.map(ms))?;
        int("heartbeat_timeout", zmq_sys::ZMQ_HEARTBEAT_TIMEOUT, opts.heartbeat_timeout.map(ms))?;
        // ZMQ_HEARTBEAT_TTL is in milliseconds but libzmq stores it in deciseconds.
        int("heartbeat_ttl", zmq_sys::ZMQ_HEARTBEAT_TTL, opts.heartbeat_ttl.map(ms))?;
        if let Some((idle, interval, probes)) = opts.tcp_keepalive {
            let secs = |d: std::time::Duration| i32::try_from(d.as_secs().max(1)).unwrap_or(i32::MAX);
            int("tcp_keepalive", zmq_sys::ZMQ_TCP_KEEPALIVE, Some(1))?;
            int("tcp_keepalive_idle", zmq_sys::ZMQ_TCP_KEEPALIVE_IDLE, Some(secs(idle)))?;
            int("tcp_keepalive_intvl", zmq_sys::ZMQ_TCP_KEEPALIVE_INTVL, Some(secs(interval)))?;
            int("tcp_keepalive_cnt", zmq_sys::ZMQ_TCP_KEEPALIVE_CNT, Some(clamp_i32(probes.max(1))))?;
        }
        int("tcp_max_retransmit", zmq_sys::ZMQ_TCP_MAXRT, opts.tcp_max_retransmit.map(ms))?;
        if let Some(max) = opts.max_msg_bytes {
            let v = i64::try_from(max).unwrap_or(i64::MAX);
            self.set_i64(zmq_sys::ZMQ_MAXMSGSIZE, v).map_err(|e| ("max_msg_bytes", e))?;
        }
        if let Some(id) = &opts.routing_id {
            self.set_bytes(zmq_sys::ZMQ_ROUTING_ID, id).map_err(|e| ("routing_id", e))?;
        }
        if let Some(domain) = &opts.zap_domain {
            self.set_bytes(zmq_sys::ZMQ_ZAP_DOMAIN, domain.as_bytes()).map_err(|e| ("zap_domain", e))?;
        }
        match &opts.curve {
            None => {}
            Some(Curve::Server { secret }) => {
                self.set_i32(zmq_sys::ZMQ_CURVE_SERVER, 1).map_err(|e| ("curve_server", e))?;
                self.set_bytes(zmq_sys::ZMQ_CURVE_SECRETKEY, secret.as_bytes())
                    .map_err(|e| ("curve_secretkey", e))?;
            }
            Some(Curve::Client { secret, server }) => {
                let public = super::curve_public(secret.as_bytes())
                    .ok_or(("curve_publickey", super::errno_of(libc::ENOTSUP)))?;
                self.set_bytes(zmq_sys::ZMQ_CURVE_SERVERKEY, server.as_bytes())
                    .map_err(|e| ("curve_serverkey", e))?;
                self.set_bytes(zmq_sys::ZMQ_CURVE_PUBLICKEY, &public).map_err(|e| ("curve_publickey", e))?;
                self.set_bytes(zmq_sys::ZMQ_CURVE_SECRETKEY, secret.as_bytes())
                    .map_err(|e| ("curve_secretkey", e))?;
            }
        }
        Ok(())
    }

    /// Binds; returns the endpoint libzmq actually bound (the port chosen for `:*` or `:0`).
    pub(crate) fn bind(&self, endpoint: &str) -> Result<String, ZmqErrno> {
        let c = c_string(endpoint)?;
        // SAFETY: `ptr` is live; `c` is NUL-terminated.
        retry_eintr(|| unsafe { zmq_sys::zmq_bind(self.ptr, c.as_ptr()) })?;
        Ok(self.last_endpoint().unwrap_or_else(|_| endpoint.to_owned()))
    }

    /// Connects (asynchronously: libzmq reconnects in the background).
    pub(crate) fn connect(&self, endpoint: &str) -> Result<(), ZmqErrno> {
        let c = c_string(endpoint)?;
        // SAFETY: `ptr` is live; `c` is NUL-terminated.
        retry_eintr(|| unsafe { zmq_sys::zmq_connect(self.ptr, c.as_ptr()) }).map(drop)
    }

    fn last_endpoint(&self) -> Result<String, ZmqErrno> {
        let mut buf = [0u8; 1024];
        let mut len = buf.len();
        // SAFETY: `buf` is writable for `len` bytes; libzmq writes a NUL-terminated string.
        retry_eintr(|| unsafe {
            zmq_sys::zmq_getsockopt(
                self.ptr,
                zmq_sys::ZMQ_LAST_ENDPOINT as i32,
                buf.as_mut_ptr() as *mut c_void,
                &mut len,
            )
        })?;
        let end = buf.iter().position(|&b| b == 0).unwrap_or(len.min(buf.len()));
        Ok(String::from_utf8_lossy(&buf[..end]).into_owned())
    }

    /// Sends `msg` (a frame). On success libzmq owns the content and `msg` is left empty; on
    /// failure (EAGAIN with `dont_wait` at the HWM, for one) `msg` is unchanged, so nothing is lost.
    #[inline]
    pub(crate) fn send_msg(&self, msg: &mut Msg, more: bool, dont_wait: bool) -> Result<(), ZmqErrno> {
        let flags = flags(more, dont_wait);
        // SAFETY: `ptr` is live; `msg` is an initialised message we own.
        retry_eintr(|| unsafe { zmq_sys::zmq_msg_send(msg.as_mut_ptr(), self.ptr, flags) }).map(drop)
    }

    /// Sends a copy of `data` as one frame (libzmq copies it; no message to manage).
    #[inline]
    pub(crate) fn send_bytes(&self, data: &[u8], more: bool, dont_wait: bool) -> Result<(), ZmqErrno> {
        let flags = flags(more, dont_wait);
        // SAFETY: `ptr` is live; `data` is readable for its length, and zmq_send copies it.
        retry_eintr(|| unsafe {
            zmq_sys::zmq_send(self.ptr, data.as_ptr() as *const c_void, data.len(), flags)
        })
        .map(drop)
    }

    /// Sends copies of `parts` as one multipart message; an empty `parts` sends nothing.
    ///
    /// Only the first frame can meet the HWM (libzmq counts whole messages and queues the
    /// rest of a message once its first frame is in), so only it gets `dont_wait`: on
    /// EAGAIN nothing was sent and the caller may retry the whole message.
    pub(crate) fn send_parts(&self, parts: &[&[u8]], dont_wait: bool) -> Result<(), ZmqErrno> {
        let last = parts.len().saturating_sub(1);
        for (i, part) in parts.iter().enumerate() {
            self.send_bytes(part, i < last, dont_wait && i == 0)?;
        }
        Ok(())
    }

    /// Receives one frame into `msg`, replacing (and releasing) its previous content.
    #[inline]
    pub(crate) fn recv_msg(&self, msg: &mut Msg, dont_wait: bool) -> Result<(), ZmqErrno> {
        let flags = if dont_wait { zmq_sys::ZMQ_DONTWAIT as i32 } else { 0 };
        // SAFETY: `ptr` is live; `msg` is an initialised message we own.
        retry_eintr(|| unsafe { zmq_sys::zmq_msg_recv(msg.as_mut_ptr(), self.ptr, flags) }).map(drop)
    }

    /// The socket's signalling fd (`ZMQ_FD`): readable when its state may have changed.
    /// Edge-like: check [`RawSocket::events`] before sleeping on it, as `zmq_poll` does.
    pub(crate) fn fd(&self) -> Result<RawFd, ZmqErrno> {
        let mut fd: RawFd = -1;
        let mut len = std::mem::size_of::<RawFd>();
        // SAFETY: `ptr` is live; `fd` is a writable int of `len` bytes, as ZMQ_FD wants on Unix.
        retry_eintr(|| unsafe {
            zmq_sys::zmq_getsockopt(
                self.ptr,
                zmq_sys::ZMQ_FD as i32,
                &mut fd as *mut RawFd as *mut c_void,
                &mut len,
            )
        })?;
        Ok(fd)
    }

    /// Whether a message can be received / sent now (`ZMQ_EVENTS`); also processes the
    /// socket's pending commands, which re-arms its fd.
    pub(crate) fn events(&self) -> Result<(bool, bool), ZmqErrno> {
        let mut ev: i32 = 0;
        let mut len = std::mem::size_of::<i32>();
        // SAFETY: `ptr` is live; `ev` is a writable int of `len` bytes.
        retry_eintr(|| unsafe {
            zmq_sys::zmq_getsockopt(
                self.ptr,
                zmq_sys::ZMQ_EVENTS as i32,
                &mut ev as *mut i32 as *mut c_void,
                &mut len,
            )
        })?;
        Ok((ev & zmq_sys::ZMQ_POLLIN as i32 != 0, ev & zmq_sys::ZMQ_POLLOUT as i32 != 0))
    }

    /// Publishes this socket's connection events on an inproc PAIR endpoint
    /// (`zmq_socket_monitor`); `events` is a mask of libzmq's `ZMQ_EVENT_*` values.
    pub(crate) fn monitor(&self, endpoint: &str, events: u32) -> Result<(), ZmqErrno> {
        let c = c_string(endpoint)?;
        // SAFETY: `ptr` is live; `c` is NUL-terminated.
        retry_eintr(|| unsafe { zmq_sys::zmq_socket_monitor(self.ptr, c.as_ptr(), events as i32) })?;
        self.monitored.set(true);
        Ok(())
    }

    /// Waits at most `timeout` for room to send after EAGAIN at the HWM.
    ///
    /// PUB/XPUB need care: libzmq reports them as always writable (`ZMQ_POLLOUT` set even
    /// when `ZMQ_XPUB_NODROP` refuses a send), so polling for writability would return at
    /// once and spin. Room comes back with a command from the subscriber's pipe
    /// (activate_write), which the socket's `ZMQ_FD` signals: wait for that, at most
    /// `pub_retry`, then let `ZMQ_EVENTS` process it so the next send sees the room.
    pub(crate) fn wait_room(
        &self,
        timeout: std::time::Duration,
        pub_retry: std::time::Duration,
    ) -> Result<(), ZmqErrno> {
        if !matches!(self.kind, SocketKind::Pub | SocketKind::XPub) {
            let ms = i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX).max(1);
            return poll(&mut [self.poll_item(false, true)], ms).map(drop);
        }
        wait_readable(self.fd()?, timeout.min(pub_retry))
            .map_err(|e| super::errno_of(e.raw_os_error().unwrap_or(libc::EIO)))?;
        self.events().map(drop)
    }

    /// A poll item for this socket.
    pub(crate) fn poll_item(&self, readable: bool, writable: bool) -> PollItem {
        PollItem::new(self.ptr, 0, readable, writable)
    }
}

#[inline]
fn flags(more: bool, dont_wait: bool) -> i32 {
    let mut f = 0;
    if more {
        f |= zmq_sys::ZMQ_SNDMORE as i32;
    }
    if dont_wait {
        f |= zmq_sys::ZMQ_DONTWAIT as i32;
    }
    f
}

fn clamp_i32(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

impl Drop for RawSocket {
    fn drop(&mut self) {
        if self.monitored.get() {
            // Stop the monitor before closing: libzmq tears a closed socket's listeners and
            // connections down later, on its I/O thread, and reports each to the monitor.
            // Should the context be terminating by then, the monitor's send fails and
            // libzmq leaks the event's address frame (valgrind found 82 bytes of a CLOSED
            // event, `ipc://...` address, after a C program freed its publisher and ended).
            // Stopped, the monitor sends nothing: ztick's masks leave out MONITOR_STOPPED,
            // whose blocking send could wait on a full reader.
            // SAFETY: `ptr` is live; a null endpoint stops the monitor (libzmq's API).
            if unsafe { zmq_sys::zmq_socket_monitor(self.ptr, std::ptr::null(), 0) } != 0 {
                tracing::warn!(error = %last_errno(), kind = ?self.kind, "stopping a socket monitor failed");
            }
        }
        // SAFETY: `ptr` is a live socket we own, closed only here.
        if unsafe { zmq_sys::zmq_close(self.ptr) } != 0 {
            tracing::warn!(error = %last_errno(), kind = ?self.kind, "zmq_close failed");
        }
    }
}

/// An eventfd that application threads write to wake a worker blocked in `poll`.
#[derive(Debug)]
pub(crate) struct Wakeup {
    fd: RawFd,
}

impl Wakeup {
    /// A new, unsignalled eventfd.
    pub(crate) fn new() -> std::io::Result<Self> {
        // SAFETY: eventfd has no memory preconditions; -1 means failure.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Wakeup { fd })
    }

    /// Wakes the poller. Cheap enough to call per hand-off, but callers skip it while the
    /// worker is known to be awake.
    pub(crate) fn signal(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 readable bytes to an fd we own; a full counter (EAGAIN) still wakes.
        unsafe { libc::write(self.fd, &one as *const u64 as *const c_void, 8) };
    }

    /// Clears the signal.
    pub(crate) fn drain(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into `v`; EAGAIN when unsignalled is fine (non-blocking fd).
        unsafe { libc::read(self.fd, &mut v as *mut u64 as *mut c_void, 8) };
    }

    /// The eventfd itself, for an [`FdPollSet`](super::FdPollSet).
    pub(crate) fn fd(&self) -> RawFd {
        self.fd
    }

    /// A poll item that becomes readable when signalled.
    pub(crate) fn poll_item(&self) -> PollItem {
        PollItem::new(std::ptr::null_mut(), self.fd, true, false)
    }
}

impl Drop for Wakeup {
    fn drop(&mut self) {
        // SAFETY: `fd` is ours and closed only here.
        unsafe { libc::close(self.fd) };
    }
}
