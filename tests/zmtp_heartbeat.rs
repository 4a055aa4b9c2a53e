//! A peer that resets the connection of a reader that fell behind aborts libzmq 4.3.4 and
//! 4.3.5 when the socket has ZMTP heartbeats: the stopped connection is marked broken
//! (`_io_error`) but keeps its heartbeat timer, and the next PING fails the assertion
//! `!_io_error` in `stream_engine_base.cpp`. One raw TCP connection does it. These tests pin
//! down the libzmq fact (in a child process, which aborts) and that ztick's fan-out, which
//! notices dead peers with TCP keepalive instead, survives the same attack. Loopback only;
//! every wait bounded.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use common::{with_timeout, WAIT};
use ztick::patterns::Socket;
use ztick::{Endpoint, Engine, SocketKind, SocketOptions};

/// The child test's name, run by [`libzmq_aborts_on_a_reset_of_a_stalled_sub_with_heartbeats`].
const CHILD: &str = "child_a_stalled_sub_with_heartbeats_meets_a_reset";

/// How long writes to the victim must be refused before it counts as stalled.
const STALLED: Duration = Duration::from_millis(300);

/// A raw ZMTP 3.0 peer: NULL mechanism, `socket_type`, handshake done on `s`.
fn zmtp_handshake(s: &mut TcpStream, socket_type: &str) {
    let mut greeting = vec![0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0x7F, 3, 0];
    greeting.extend_from_slice(b"NULL");
    greeting.resize(64, 0);
    s.write_all(&greeting).unwrap();
    let mut theirs = [0u8; 64];
    s.read_exact(&mut theirs).unwrap();
    let mut ready = b"\x05READY\x0bSocket-Type".to_vec();
    ready.extend_from_slice(&u32::try_from(socket_type.len()).unwrap().to_be_bytes());
    ready.extend_from_slice(socket_type.as_bytes());
    s.write_all(&[0x04, u8::try_from(ready.len()).unwrap()]).unwrap();
    s.write_all(&ready).unwrap();
}

/// Resets `s` (RST, not FIN): SO_LINGER on with a zero timeout, then close.
fn reset(s: TcpStream) {
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
    assert_eq!(rc, 0, "SO_LINGER");
    drop(s);
}

/// Sends `next()`'s bytes to `s` until the peer has refused more for [`STALLED`] (its
/// reader stopped and the kernel's buffers are full), at most [`WAIT`]; the bytes sent.
fn flood_until_stalled(s: &mut TcpStream, mut next: impl FnMut(&mut Vec<u8>) -> bool) -> usize {
    s.set_nonblocking(true).unwrap();
    let (start, mut sent, mut refused_since) = (Instant::now(), 0, None::<Instant>);
    let mut chunk = Vec::new();
    let mut at = 0;
    while start.elapsed() < WAIT {
        if at == chunk.len() {
            chunk.clear();
            at = 0;
            if !next(&mut chunk) {
                std::thread::sleep(Duration::from_millis(1)); // nothing to forward yet
                continue;
            }
        }
        match s.write(&chunk[at..]) {
            Ok(n) => {
                (sent, at, refused_since) = (sent + n, at + n, None);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                let since = *refused_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= STALLED {
                    return sent;
                }
                std::thread::sleep(Duration::from_millis(5)); // the victim is not reading
            }
            Err(e) => panic!("the victim's connection failed before it stalled: {e}"),
        }
    }
    panic!("the victim never stopped reading ({sent} bytes in {WAIT:?})");
}

/// Connects a SUB with `opts` that does not read to a raw PUB, floods it until its input
/// stops, resets the connection and waits past several heartbeat intervals; then reads
/// what the SUB holds (libzmq tears the broken connection down once its input restarts)
/// and says whether the SUB connected again.
fn stalled_sub_meets_a_reset(opts: SocketOptions) -> bool {
    let engine = Engine::new().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url: Endpoint = format!("tcp://{}", listener.local_addr().unwrap()).parse().unwrap();
    let opts = opts.recv_hwm_msgs(10).reconnect(Duration::from_millis(50), Duration::from_millis(50));
    let mut sub = Socket::connect(&engine, SocketKind::Sub, &url, &opts).unwrap();
    sub.subscribe(b"").unwrap();
    let (mut s, _) = listener.accept().unwrap();
    zmtp_handshake(&mut s, "PUB");
    let mut frame = vec![0x00, 200];
    frame.resize(202, b'x');
    let sent = flood_until_stalled(&mut s, |c| {
        c.extend_from_slice(&frame);
        true
    });
    assert!(sent > 0);
    reset(s);
    std::thread::sleep(Duration::from_millis(500)); // fault duration: heartbeats fire in it
    let mut frames = Vec::new();
    let mut read = 0;
    while read < 1_000_000 && sub.recv_into(&mut frames, Duration::from_millis(200)).unwrap() {
        read += 1;
    }
    assert!(read > 0, "the SUB held nothing");
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        match listener.accept() {
            Ok(_) => return true,
            Err(_) => std::thread::sleep(Duration::from_millis(10)), // bounded poll for the reconnect
        }
    }
    false
}

/// Run only by its parent test, in a child process: libzmq aborts it.
#[test]
#[ignore = "run as a child process by libzmq_aborts_on_a_reset_of_a_stalled_sub_with_heartbeats (it aborts)"]
fn child_a_stalled_sub_with_heartbeats_meets_a_reset() {
    let hb = Duration::from_millis(100);
    stalled_sub_meets_a_reset(SocketOptions::default().heartbeat(
        hb,
        Duration::from_secs(30),
        Duration::from_secs(30),
    ));
}

/// The libzmq bug itself, so that a libzmq that fixes it is noticed (then the fan-out may
/// have ZMTP heartbeats back).
#[test]
fn libzmq_aborts_on_a_reset_of_a_stalled_sub_with_heartbeats() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", CHILD, "--test-threads", "1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "libzmq no longer aborts here ({:?}): ZMTP heartbeats may be safe now; stderr: {stderr}",
        out.status
    );
    assert!(stderr.contains("!_io_error"), "{stderr}");
}

/// The same attack against a SUB that notices dead peers as the fan-out does (TCP keepalive
/// and TCP_USER_TIMEOUT, no ZMTP heartbeats): it survives and connects again.
#[test]
fn a_stalled_sub_with_tcp_keepalive_survives_a_reset_and_reconnects() {
    with_timeout(WAIT * 2, || {
        let opts = SocketOptions::default()
            .tcp_keepalive(Duration::from_secs(1), Duration::from_secs(1), 2)
            .tcp_max_retransmit(Duration::from_secs(3));
        assert!(stalled_sub_meets_a_reset(opts), "the SUB did not connect again");
    });
}
