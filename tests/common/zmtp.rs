//! A hostile ZMTP 3.0 peer on a raw TCP connection: it speaks just enough of the protocol
//! (greeting, NULL handshake) to be taken for a real peer, then sends what no libzmq peer
//! would, streamed from a small buffer so the test itself holds no big message.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

/// A raw connection that has completed the NULL handshake as a socket of some kind.
pub struct RawPeer {
    pub stream: TcpStream,
}

impl RawPeer {
    /// Connects to `127.0.0.1:port` and handshakes as a `socket_type` (e.g. `PUSH`),
    /// retrying the connection for up to 10 s while nothing listens there yet.
    pub fn connect_when_up(port: u16, socket_type: &str) -> RawPeer {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match RawPeer::connect(port, socket_type) {
                Ok(p) => return p,
                Err(e) if std::time::Instant::now() >= deadline => panic!("no ZMTP peer on port {port}: {e}"),
                // Polling for a child process to bind; it does not depend on this delay.
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }

    /// Connects to `127.0.0.1:port` and handshakes as a `socket_type` (e.g. `PUSH`).
    pub fn connect(port: u16, socket_type: &str) -> io::Result<RawPeer> {
        RawPeer::handshake(TcpStream::connect(("127.0.0.1", port))?, socket_type)
    }

    /// Takes the next connection on `listener` (a libzmq socket connecting to us) and
    /// handshakes on it as a `socket_type` (e.g. `PUB`).
    pub fn accept(listener: &TcpListener, socket_type: &str) -> io::Result<RawPeer> {
        RawPeer::handshake(listener.accept()?.0, socket_type)
    }

    fn handshake(mut stream: TcpStream, socket_type: &str) -> io::Result<RawPeer> {
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.set_write_timeout(Some(Duration::from_secs(10)))?;
        // Greeting: signature, version 3.0, mechanism NULL, as-server 0, filler.
        let mut greeting = vec![0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, 0];
        greeting.extend_from_slice(b"NULL");
        greeting.resize(64, 0);
        stream.write_all(&greeting)?;
        let mut theirs = [0u8; 64];
        stream.read_exact(&mut theirs)?;
        // READY with the socket type; then read the peer's READY (a short command).
        let mut body = b"\x05READY\x0bSocket-Type".to_vec();
        body.extend_from_slice(&(socket_type.len() as u32).to_be_bytes());
        body.extend_from_slice(socket_type.as_bytes());
        stream.write_all(&[0x04, body.len() as u8])?;
        stream.write_all(&body)?;
        let mut flags = [0u8; 1];
        stream.read_exact(&mut flags)?;
        let len = if flags[0] & 0x02 != 0 {
            let mut l = [0u8; 8];
            stream.read_exact(&mut l)?;
            u64::from_be_bytes(l)
        } else {
            let mut l = [0u8; 1];
            stream.read_exact(&mut l)?;
            u64::from(l[0])
        };
        io::copy(&mut (&mut stream).take(len), &mut io::sink())?;
        Ok(RawPeer { stream })
    }

    /// Sends one frame's header (`more`: another frame follows) announcing `len` bytes.
    pub fn frame_header(&mut self, len: u64, more: bool) -> io::Result<()> {
        let more = u8::from(more);
        if len < 256 {
            self.stream.write_all(&[more, len as u8])
        } else {
            self.stream.write_all(&[0x02 | more])?;
            self.stream.write_all(&len.to_be_bytes())
        }
    }

    /// Sends a frame of `len` zero bytes, from a 64 KiB buffer; the bytes written before
    /// the peer hung up, and whether it did.
    pub fn zeros(&mut self, len: u64, more: bool) -> (u64, bool) {
        if self.frame_header(len, more).is_err() {
            return (0, true);
        }
        let buf = vec![0u8; 64 << 10];
        let mut sent = 0;
        while sent < len {
            let n = (len - sent).min(buf.len() as u64) as usize;
            if self.stream.write_all(&buf[..n]).is_err() {
                return (sent, true);
            }
            sent += n as u64;
        }
        (sent, false)
    }

    /// Sends one message of `frames` one-byte frames.
    pub fn many_frames(&mut self, frames: usize) -> io::Result<()> {
        let mut chunk = Vec::with_capacity(3 * 4096);
        for i in 0..frames {
            let more = u8::from(i + 1 < frames);
            chunk.extend_from_slice(&[more, 1, b'x']);
            if chunk.len() >= 3 * 4096 {
                self.stream.write_all(&chunk)?;
                chunk.clear();
            }
        }
        self.stream.write_all(&chunk)
    }

    /// Sends one single-frame message.
    pub fn message(&mut self, body: &[u8]) -> io::Result<()> {
        self.frame_header(body.len() as u64, false)?;
        self.stream.write_all(body)
    }
}

/// A process's resident memory now, in KiB (`VmRSS` in /proc/PID/status).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("reading /proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"))
}

/// Closes `s` with a reset (RST, not FIN): SO_LINGER on with a zero timeout, then close.
/// The closing side keeps no TIME_WAIT, so a loop of connect-and-reset never runs out of
/// ephemeral ports.
pub fn reset(s: TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: `s` is an open socket; the option value is a valid `linger` of its size.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_LINGER: {}", io::Error::last_os_error());
    drop(s);
}
