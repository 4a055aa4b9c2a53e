//! A fault-injecting TCP relay for the fault tests: it forwards every connection it
//! accepts on loopback to one upstream address, and can stall (stop forwarding, both ways,
//! so the kernel's buffers fill and the sender backs up, as on a partitioned link) or cut
//! (close every connection) on command.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

const FORWARD: u8 = 0;
const STALL: u8 = 1;

/// How often a pump looks at the relay's mode while it waits for bytes or for a stall to end.
const TICK: Duration = Duration::from_millis(20);

/// A running relay; stops (closing everything) on drop.
pub struct Relay {
    /// Where to connect instead of upstream.
    pub addr: SocketAddr,
    mode: Arc<AtomicU8>,
    /// Bumped by each cut: connections accepted before it close.
    cuts: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Relay {
    /// A relay on 127.0.0.1 (a port the OS picks) to `upstream`.
    pub fn start(upstream: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the relay");
        listener.set_nonblocking(true).expect("a non-blocking listener");
        let addr = listener.local_addr().expect("the relay's address");
        let mode = Arc::new(AtomicU8::new(FORWARD));
        let stop = Arc::new(AtomicBool::new(false));
        let cuts = Arc::new(AtomicU64::new(0));
        let (m, s, c) = (Arc::clone(&mode), Arc::clone(&stop), Arc::clone(&cuts));
        let accept = std::thread::spawn(move || {
            let mut pumps = Vec::new();
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((down, _)) => {
                        let Ok(up) = TcpStream::connect(upstream) else { continue };
                        let generation = c.load(Ordering::Relaxed);
                        for (from, to) in [(&down, &up), (&up, &down)] {
                            let (from, to) =
                                (from.try_clone().expect("clone"), to.try_clone().expect("clone"));
                            let (m, s, c) = (Arc::clone(&m), Arc::clone(&s), Arc::clone(&c));
                            pumps.push(std::thread::spawn(move || pump(from, to, &m, &s, &c, generation)));
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(TICK), // polling accept
                    Err(_) => break,
                }
            }
            for p in pumps {
                let _ = p.join();
            }
        });
        Relay { addr, mode, cuts, stop, accept: Some(accept) }
    }

    /// The relay as a `tcp://` endpoint.
    pub fn url(&self) -> String {
        format!("tcp://{}", self.addr)
    }

    /// Stops forwarding, both ways, until [`resume`](Self::resume).
    pub fn stall(&self) {
        self.mode.store(STALL, Ordering::Relaxed);
    }

    /// Forwards again, what waited first.
    pub fn resume(&self) {
        self.mode.store(FORWARD, Ordering::Relaxed);
    }

    /// Closes every connection now; new ones are forwarded again.
    pub fn cut(&self) {
        self.cuts.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(a) = self.accept.take() {
            let _ = a.join();
        }
    }
}

/// Copies `from` to `to` while the relay forwards; waits while it stalls; closes both on a
/// cut since `generation`, an error, or the relay's stop.
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    mode: &AtomicU8,
    stop: &AtomicBool,
    cuts: &AtomicU64,
    generation: u64,
) {
    let _ = from.set_read_timeout(Some(TICK));
    let mut buf = vec![0u8; 64 << 10];
    while !stop.load(Ordering::Relaxed) && cuts.load(Ordering::Relaxed) == generation {
        if mode.load(Ordering::Relaxed) == STALL {
            std::thread::sleep(TICK); // stalled: the bytes wait in the kernel's buffers
            continue;
        }
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
