//! PAIR: one exclusive, two-way connection, the guide's way to join two threads.
//!
//! Each [`PairEnd`] is a libzmq PAIR socket owned by the thread that uses it (`Send`, not
//! `Sync`): make both ends with [`pair`], move one into the other thread, and talk. Over
//! inproc nothing touches the kernel; ipc and tcp work the same between processes.
//!
//! ```
//! use std::time::Duration;
//! use ztick::{Endpoint, Engine, SocketOptions};
//! use ztick::patterns::pair;
//!
//! let engine = Engine::new()?;
//! let (mut main_end, mut thread_end) =
//!     pair(&engine, &Endpoint::unique_inproc("pair-doc"), &SocketOptions::default())?;
//! let t = std::thread::spawn(move || -> ztick::Result<()> {
//!     let n: u32 = thread_end.recv_value(Duration::from_secs(5))?;
//!     thread_end.send_value(&(n + 1))
//! });
//! main_end.send_value(&41u32)?;
//! assert_eq!(main_end.recv_value::<u32>(Duration::from_secs(5))?, 42);
//! t.join().unwrap()?;
//! # Ok::<(), ztick::Error>(())
//! ```

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::socket::Socket;
use crate::config::{SocketKind, SocketOptions};
use crate::endpoint::Endpoint;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::message::codec;

/// One end of a PAIR connection.
///
/// Sends block while the peer's queue is at the HWM (PAIR never drops); every send is one
/// atomic message of one or more frames.
#[derive(Debug)]
pub struct PairEnd {
    socket: Socket,
}

/// Makes both ends of a PAIR connection: the first binds `endpoint`, the second connects
/// to the endpoint libzmq resolved (for tcp, the real port). `options` apply to both,
/// before bind and connect.
///
/// # Errors
/// A socket could not be created, configured, bound or connected.
pub fn pair(engine: &Engine, endpoint: &Endpoint, options: &SocketOptions) -> Result<(PairEnd, PairEnd)> {
    let a = PairEnd::bind(engine, endpoint, options)?;
    let resolved: Endpoint = a.endpoint().parse()?;
    let b = PairEnd::connect(engine, &resolved, options)?;
    Ok((a, b))
}

impl PairEnd {
    /// An end bound to `endpoint` (the peer connects).
    ///
    /// # Errors
    /// The socket could not be created, configured or bound.
    pub fn bind(engine: &Engine, endpoint: &Endpoint, options: &SocketOptions) -> Result<PairEnd> {
        Ok(PairEnd { socket: Socket::bind(engine, SocketKind::Pair, endpoint, options)? })
    }

    /// An end connected to `endpoint` (libzmq connects in the background; messages queue
    /// meanwhile, up to the HWM).
    ///
    /// # Errors
    /// The socket could not be created, configured or connected.
    pub fn connect(engine: &Engine, endpoint: &Endpoint, options: &SocketOptions) -> Result<PairEnd> {
        Ok(PairEnd { socket: Socket::connect(engine, SocketKind::Pair, endpoint, options)? })
    }

    /// The endpoint: for a bound end, the one libzmq resolved.
    pub fn endpoint(&self) -> &str {
        self.socket.endpoint()
    }

    /// Sends `frames` as one message, waiting while the peer's queue is full.
    ///
    /// # Errors
    /// A libzmq error (`ETERM` when the engine is shutting down).
    pub fn send(&mut self, frames: &[&[u8]]) -> Result<()> {
        self.socket.send(frames)
    }

    /// Sends `frames` as one message, waiting at most `timeout` for room.
    ///
    /// # Errors
    /// [`Error::Timeout`] when the peer did not take it in time (nothing was sent).
    pub fn send_timeout(&mut self, frames: &[&[u8]], timeout: Duration) -> Result<()> {
        self.socket.send_timeout(frames, timeout)
    }

    /// Receives one whole message, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`Error::Timeout`] when nothing arrived in time.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Vec<Vec<u8>>> {
        self.socket.recv_timeout(timeout)
    }

    /// Sends `value` as one bincode frame ([`codec::encode`]).
    ///
    /// # Errors
    /// [`Error::Decode`] if serde refuses the value; a libzmq error.
    pub fn send_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        let bytes = codec::encode(value)?;
        self.socket.send(&[&bytes])
    }

    /// Receives one message and decodes it as a `T`, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`Error::Timeout`]; [`Error::Decode`] (the message is consumed, the end stays
    /// usable) when the peer sent something other than one frame holding a `T`.
    pub fn recv_value<T: DeserializeOwned>(&mut self, timeout: Duration) -> Result<T> {
        let frames = self.socket.recv_timeout(timeout)?;
        let from = format!("PAIR {}", self.socket.endpoint());
        match frames.as_slice() {
            [one] => codec::decode(one, &from),
            _ => Err(Error::Decode {
                context: from,
                reason: format!("{} frames; a value travels as 1", frames.len()),
            }),
        }
    }

    /// The socket underneath, for everything else (`try_send`, `recv_into`, `readable`).
    pub fn socket(&mut self) -> &mut Socket {
        &mut self.socket
    }

    /// Gives up the wrapper.
    pub fn into_socket(self) -> Socket {
        self.socket
    }
}
