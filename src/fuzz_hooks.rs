//! The fuzz targets' way in (`fuzz/`): thin wrappers over private parsers and the fan-out's
//! sans-IO cores, with no logic of their own. Compiled only under `--cfg fuzzing`, which
//! cargo-fuzz passes to every crate it builds, so normal builds, `cargo doc` and the public
//! API never see it.

use std::fmt;
use std::sync::Arc;

use crate::curve::{CurveKey, KeyPair, Zcert};
use crate::error::{Error, Result};
use crate::fanout::wire::Kind;
use crate::fanout::{
    Event, Ledger, Outcome, PublisherConfig, PublisherReport, SeqTracker, Stream, SubscriberConfig,
    SubscriberReport,
};
use crate::patterns::Malformed;
use crate::zap::{ZapPolicy, ZapStats};

/// Z85-encodes `data` (its length a multiple of 4).
pub fn z85_encode(data: &[u8]) -> String {
    crate::curve::z85_encode(data)
}

/// Decodes Z85 text; `None` for text that is not Z85.
pub fn z85_decode(text: &str) -> Option<Vec<u8>> {
    crate::curve::z85_decode(text)
}

/// Parses czmq certificate text: its public key and, in a secret certificate, its secret key.
pub fn zcert_parse(text: &str) -> Option<(CurveKey, Option<CurveKey>)> {
    Zcert::parse(text).map(|c| (c.public, c.secret))
}

/// Renders czmq certificate text for `pair`, the secret one when `secret`.
pub fn zcert_render(pair: &KeyPair, secret: bool) -> String {
    Zcert::render(pair, secret)
}

/// Answers one ZAP request as the handler does; returns the reply and what it counted.
pub fn zap_answer(policy: &ZapPolicy, frames: &[&[u8]]) -> (Vec<Vec<u8>>, ZapStats) {
    crate::zap::answer_counted(policy, frames)
}

/// Where the body of a message a ROUTER received starts (after the envelope's delimiter).
pub fn body_start(frames: &[&[u8]]) -> Option<usize> {
    crate::patterns::body_start(frames)
}

/// The frames of a reply behind `envelope`.
pub fn reply_parts<'a>(envelope: &[&'a [u8]], reply: &'a [Vec<u8>]) -> Vec<&'a [u8]> {
    crate::patterns::reply_parts(envelope, reply)
}

/// Why a serving pattern refuses `body`, if it does.
pub fn check_body(body: &[&[u8]], max_bytes: usize) -> Option<(Malformed, String)> {
    crate::patterns::check_body(body, max_bytes)
}

/// A routing id as traces show it.
pub fn peer_id(id: &[u8]) -> String {
    crate::patterns::PeerId(id).to_string()
}

/// A subscriber's ledger (`fanout::ledger`), driven as its worker drives it.
pub struct Subscriber(Ledger);

impl fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscriber").finish_non_exhaustive()
    }
}

impl Subscriber {
    /// A ledger for `cfg`, with a side channel or not, events to `sink`.
    pub fn new(cfg: &SubscriberConfig, side: bool, sink: Option<Box<dyn FnMut(&Event<'_>) + Send>>) -> Self {
        Subscriber(Ledger::new(cfg, side, Arc::default(), sink))
    }

    /// A feed message of one or two frames.
    pub fn on_feed(&mut self, frames: &[&[u8]], now: u64) -> Result<()> {
        self.0.on_feed(frames, now)
    }

    /// A feed message the worker refuses before the ledger sees it (too many frames).
    pub fn refuse(&mut self, reason: String) -> Error {
        self.0.refuse(reason)
    }

    /// A reply on the side channel.
    pub fn on_side(&mut self, body: &[u8], now: u64) -> Result<()> {
        self.0.on_side(body, now)
    }

    /// The timer.
    pub fn on_timer(&mut self, now: u64) {
        self.0.on_timer(now)
    }

    /// Whether a new epoch began since the last call.
    pub fn take_new_epoch(&mut self) -> bool {
        self.0.take_new_epoch()
    }

    /// Whether a snapshot request is due.
    pub fn take_snapshot_request(&mut self, now: u64) -> bool {
        self.0.take_snapshot_request(now)
    }

    /// The clock request due, if any.
    pub fn take_clock_request(&mut self, now: u64) -> Option<u64> {
        self.0.take_clock_request(now)
    }

    /// The repair request due, if any.
    pub fn take_nak(&mut self, now: u64) -> Option<Vec<u8>> {
        self.0.take_nak(now).map(<[u8]>::to_vec)
    }

    /// Why the worker should stop, if it should.
    pub fn stop_reason(&self) -> Option<Outcome> {
        self.0.stop_reason()
    }

    /// When the ledger next wants the timer.
    pub fn next_deadline(&self) -> u64 {
        self.0.next_deadline()
    }

    /// Closes the books.
    pub fn finish(&mut self, now: u64, outcome: Outcome) -> SubscriberReport {
        self.0.finish(now, outcome)
    }

    /// The current epoch and its books.
    pub fn current_books(&self) -> Option<(u64, &[SeqTracker])> {
        self.0.current_books()
    }

    /// What a peer can make the ledger hold: (what, length, cap).
    pub fn holdings(&self) -> [(&'static str, usize, usize); 6] {
        self.0.holdings()
    }

    /// Decode errors, implausible claims, repair requests sent.
    pub fn counters(&self) -> [u64; 3] {
        self.0.counters()
    }
}

pub use crate::fanout::Sent;

/// A publisher's stream (`fanout::stream`), its messages recorded in [`Sent`].
pub struct Publisher(Stream);

impl fmt::Debug for Publisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Publisher").finish_non_exhaustive()
    }
}

impl Publisher {
    /// A stream for `cfg` (valid), with a side channel or not.
    pub fn new(cfg: &PublisherConfig, side: bool) -> Self {
        Publisher(Stream::new(cfg, side, Arc::default()))
    }

    /// Its epoch.
    pub fn epoch(&self) -> u64 {
        self.0.epoch()
    }

    /// Publishes one tick of topic `k` (in range, payload at most `MAX_PAYLOAD`).
    pub fn push(
        &mut self,
        out: &mut Sent,
        k: usize,
        intended_ns: u64,
        payload: &[u8],
        now: u64,
    ) -> Result<()> {
        self.0.push(out, k, intended_ns, payload, now)
    }

    /// Sends every open batch.
    pub fn flush_all(&mut self, out: &mut Sent) -> Result<()> {
        self.0.flush_all(out)
    }

    /// Sends heartbeats or end markers.
    pub fn send_control(&mut self, out: &mut Sent, kind: Kind) -> Result<()> {
        self.0.send_control(out, kind)
    }

    /// A message from the XPUB (a subscription).
    pub fn on_subscription(&mut self, out: &mut Sent, frame: &[u8], now: u64) -> Result<()> {
        self.0.on_subscription(out, frame, None, now)
    }

    /// A request on the side channel, routing id first.
    pub fn on_side_request(&mut self, out: &mut Sent, frames: &[&[u8]], now: u64) -> Result<()> {
        self.0.on_side_request(out, frames, None, now)
    }

    /// Serves queued repairs; returns the ticks served.
    pub fn serve_repairs(&mut self, out: &mut Sent) -> Result<usize> {
        self.0.serve_repairs(out)
    }

    /// Subscribers counted.
    pub fn subscribers(&self) -> usize {
        self.0.subscribers()
    }

    /// Whether every counted subscriber acknowledged the end.
    pub fn all_acknowledged(&self) -> bool {
        self.0.all_acknowledged()
    }

    /// The report so far.
    pub fn take_report(&mut self) -> PublisherReport {
        self.0.take_report()
    }

    /// What a peer can make the stream hold: (what, length, cap).
    pub fn holdings(&self) -> Vec<(&'static str, usize, usize)> {
        self.0.holdings()
    }
}
