//! The messages an XPUB socket receives from its subscribers.

/// One subscription message, as an XPUB socket receives it from a SUB (or XSUB) peer:
/// libzmq's byte `1` then a topic prefix to subscribe, byte `0` then a prefix to leave.
///
/// With `ZMQ_XPUB_VERBOSE` every subscribe arrives, duplicates included, so counting them
/// tells how many subscribers hold a prefix (see `patterns::Subscriptions`); an unsubscribe
/// arrives only when the last holder of a prefix leaves or disconnects.
///
/// ```
/// use ztick::Subscription;
/// assert_eq!(Subscription::parse(b"\x01quote."), Some(Subscription::Subscribe(b"quote.")));
/// assert_eq!(Subscription::parse(b"\x00"), Some(Subscription::Unsubscribe(b"")));
/// assert_eq!(Subscription::parse(b"\x07junk"), None, "an XSUB peer may send anything");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subscription<'a> {
    /// The peer now takes messages whose first frame starts with this prefix (an empty
    /// prefix takes everything).
    Subscribe(&'a [u8]),
    /// The peer no longer takes messages for this prefix.
    Unsubscribe(&'a [u8]),
}

impl<'a> Subscription<'a> {
    /// Reads one received frame; `None` when it is empty or its first byte is neither 0
    /// nor 1 (not a subscription: an XSUB peer can send any message upstream).
    pub fn parse(frame: &'a [u8]) -> Option<Self> {
        match frame.split_first()? {
            (1, prefix) => Some(Subscription::Subscribe(prefix)),
            (0, prefix) => Some(Subscription::Unsubscribe(prefix)),
            _ => None,
        }
    }

    /// The topic prefix.
    pub fn prefix(&self) -> &'a [u8] {
        match *self {
            Subscription::Subscribe(p) | Subscription::Unsubscribe(p) => p,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_0_and_1_start_a_subscription() {
        assert_eq!(Subscription::parse(b"\x01"), Some(Subscription::Subscribe(b"")));
        assert_eq!(Subscription::parse(b"\x00ab").map(|s| s.prefix()), Some(&b"ab"[..]));
        assert_eq!(Subscription::parse(b""), None);
        for op in 2..=255u8 {
            assert_eq!(Subscription::parse(&[op, b'x']), None, "{op}");
        }
    }
}
