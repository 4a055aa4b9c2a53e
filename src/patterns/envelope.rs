//! ZeroMQ routing envelopes: the frames a ROUTER (or a REP) keeps so a reply finds its way
//! back, ending at the first empty frame (the delimiter).

use std::fmt;

/// Where the body starts in a message a ROUTER received: the index after the delimiter.
/// `None` when there is no routing id or no delimiter (a raw DEALER that left it out).
pub(crate) fn body_start(frames: &[&[u8]]) -> Option<usize> {
    // Frame 0 is the routing id ROUTER prepends; the envelope ends at the first empty frame.
    let delim = frames.iter().skip(1).position(|f| f.is_empty())? + 1;
    Some(delim + 1)
}

/// The frames of a reply to a request that came with `envelope` (its frames up to and
/// including the empty delimiter): the envelope, then `reply`'s frames, or one empty body
/// frame for an empty reply, so the peer (a REQ, say) still gets a whole reply.
pub(crate) fn reply_parts<'a>(envelope: &[&'a [u8]], reply: &'a [Vec<u8>]) -> Vec<&'a [u8]> {
    let mut parts = Vec::with_capacity(envelope.len() + reply.len().max(1));
    parts.extend_from_slice(envelope);
    parts.extend(reply.iter().map(Vec::as_slice));
    if reply.is_empty() {
        parts.push(&[]);
    }
    parts
}

/// A peer's routing id, shown as hex for traces and the CLI.
pub(crate) struct PeerId<'a>(pub(crate) &'a [u8]);

impl fmt::Display for PeerId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("0x")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Names a peer for traces: socket kind, endpoint and routing id.
pub(crate) struct PeerContext<'a> {
    pub(crate) kind: &'static str,
    pub(crate) endpoint: &'a str,
    pub(crate) id: Option<&'a [u8]>,
}

impl fmt::Display for PeerContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.endpoint)?;
        if let Some(id) = self.id {
            write!(f, " peer {}", PeerId(id))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_end_at_the_first_empty_frame_after_the_id() {
        assert_eq!(body_start(&[b"id", b"", b"body"]), Some(2));
        assert_eq!(body_start(&[b"id", b"req-7", b"", b"body"]), Some(3));
        // The routing id itself is never the delimiter, even if empty-looking frames follow.
        assert_eq!(body_start(&[b"id", b"", b""]), Some(2));
        assert_eq!(body_start(&[b"id", b"body"]), None);
        assert_eq!(body_start(&[b"id"]), None);
        assert_eq!(body_start(&[]), None);
    }

    #[test]
    fn replies_travel_behind_the_envelope_and_are_never_bodiless() {
        let envelope: [&[u8]; 3] = [b"id", b"req-7", b""];
        let reply = vec![b"a".to_vec(), b"b".to_vec()];
        assert_eq!(reply_parts(&envelope, &reply), [&b"id"[..], b"req-7", b"", b"a", b"b"]);
        assert_eq!(reply_parts(&envelope, &[]), [&b"id"[..], b"req-7", b"", b""]);
    }

    #[test]
    fn peers_print_as_hex() {
        let ctx = PeerContext { kind: "ROUTER", endpoint: "tcp://127.0.0.1:5555", id: Some(&[0, 0x80, 1]) };
        assert_eq!(ctx.to_string(), "ROUTER tcp://127.0.0.1:5555 peer 0x008001");
    }
}
