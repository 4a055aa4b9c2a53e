//! Messages going out (owned frames, pooled or copied) and coming in (borrowed, reused
//! frames), and the subscription messages an XPUB socket reads.

pub mod codec;
mod subscription;

use crate::sys::Msg;
pub use crate::sys::{BufferPool, PoolStats, PooledBuf};
pub use subscription::Subscription;

/// One outgoing frame: bytes libzmq copies, or a pooled buffer it takes without copying.
#[derive(Debug)]
pub struct Frame(pub(crate) FrameRepr);

#[derive(Debug)]
pub(crate) enum FrameRepr {
    /// Copied by libzmq at send time (cheap for small frames).
    Bytes(Vec<u8>),
    /// Handed to libzmq without copying when sent.
    Pooled(PooledBuf),
    /// Already a libzmq message: a zero-copy frame that met a full HWM keeps this form, so a
    /// retry neither copies nor loses it.
    Msg(Msg),
}

impl Frame {
    /// A frame whose bytes libzmq copies when it is sent.
    pub fn bytes(data: impl Into<Vec<u8>>) -> Self {
        Frame(FrameRepr::Bytes(data.into()))
    }

    /// A frame sent without copying (see [`BufferPool`]).
    pub fn pooled(buf: PooledBuf) -> Self {
        Frame(FrameRepr::Pooled(buf))
    }

    /// The frame's bytes.
    pub fn as_slice(&self) -> &[u8] {
        match &self.0 {
            FrameRepr::Bytes(v) => v,
            FrameRepr::Pooled(b) => b.as_slice(),
            FrameRepr::Msg(m) => m.as_bytes(),
        }
    }
}

/// A message handed to a worker for sending: one or more frames, sent as one atomic unit.
///
/// Single-frame messages make no allocation beyond their frame (`rest` stays empty).
#[derive(Debug)]
pub struct Outbound {
    pub(crate) first: Frame,
    pub(crate) rest: Vec<Frame>,
}

impl Outbound {
    /// A one-frame message.
    pub fn new(frame: Frame) -> Self {
        Outbound { first: frame, rest: Vec::new() }
    }

    /// A multipart message; `None` when `frames` is empty (a message has at least one frame).
    pub fn multipart(frames: impl IntoIterator<Item = Frame>) -> Option<Self> {
        let mut it = frames.into_iter();
        let first = it.next()?;
        Some(Outbound { first, rest: it.collect() })
    }

    /// Number of frames.
    pub fn len(&self) -> usize {
        1 + self.rest.len()
    }

    /// Always false: a message has at least one frame.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The frames in order.
    pub fn frames(&self) -> impl Iterator<Item = &Frame> {
        std::iter::once(&self.first).chain(self.rest.iter())
    }

    /// Total payload bytes.
    pub fn size_bytes(&self) -> usize {
        self.frames().map(|f| f.as_slice().len()).sum()
    }
}

impl From<Vec<u8>> for Outbound {
    fn from(v: Vec<u8>) -> Self {
        Outbound::new(Frame::bytes(v))
    }
}

impl From<&[u8]> for Outbound {
    fn from(v: &[u8]) -> Self {
        Outbound::new(Frame::bytes(v.to_vec()))
    }
}

impl From<PooledBuf> for Outbound {
    fn from(b: PooledBuf) -> Self {
        Outbound::new(Frame::pooled(b))
    }
}

/// A received message, borrowed from the worker's reusable frame slots for the duration of
/// a handler call: read it, copy what you keep.
pub struct Inbound<'a> {
    pub(crate) frames: &'a [Msg],
}

impl std::fmt::Debug for Inbound<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter().map(|b| b.len())).finish()
    }
}

impl<'a> Inbound<'a> {
    /// Number of frames (at least one).
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Always false for a received message.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Frame `i`, or `None` past the end: peers choose the frame count, so check it.
    pub fn frame(&self, i: usize) -> Option<&'a [u8]> {
        self.frames.get(i).map(Msg::as_bytes)
    }

    /// The last frame (the payload in most patterns).
    pub fn last(&self) -> &'a [u8] {
        self.frames.last().map(Msg::as_bytes).unwrap_or(&[])
    }

    /// All frames in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.frames.iter().map(Msg::as_bytes)
    }

    /// The peer's user id as the ZAP handler named it (with ztick's
    /// [`ZapHandler`](crate::zap::ZapHandler), the client's CURVE public key in Z85), or
    /// `None` without authentication.
    pub fn user_id(&self) -> Option<&'a str> {
        // The last frame: a ROUTER's first (the routing id) is made by libzmq and carries none.
        self.frames.last().and_then(|m| m.property(c"User-Id")).filter(|id| !id.is_empty())
    }

    /// Total payload bytes.
    pub fn size_bytes(&self) -> usize {
        self.iter().map(<[u8]>::len).sum()
    }

    /// Copies the frames out.
    pub fn to_vec(&self) -> Vec<Vec<u8>> {
        self.iter().map(<[u8]>::to_vec).collect()
    }
}
