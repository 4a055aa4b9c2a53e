//! Engine workers for tests: a collector that hands every message it receives to the
//! test, and a sender that sends what the test hands it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_channel::Receiver;
use ztick::{Endpoint, Inbound, SocketId, SocketSpec, Worker, WorkerBuilder};

/// A worker whose one socket receives; what `keep` takes of each message waits in `rx`.
#[derive(Debug)]
pub struct Collector<T> {
    /// The worker (stop it to read its counters).
    pub worker: Worker,
    /// Its socket, to send on as well (a REQ client, say).
    pub socket: SocketId,
    /// What `keep` took of each message, in arrival order (unbounded: the test reads at
    /// its own pace).
    pub rx: Receiver<T>,
    /// Messages received so far, counted before each is handed over.
    pub got: Arc<AtomicU64>,
}

impl<T> Collector<T> {
    /// Where its socket bound or connected, as libzmq resolved it (the real tcp port).
    pub fn endpoint(&self) -> Endpoint {
        let text = self.worker.endpoint(self.socket).expect("the collector's socket");
        text.parse().expect("resolved endpoints parse")
    }

    /// Messages received so far.
    pub fn received(&self) -> u64 {
        self.got.load(Ordering::SeqCst)
    }
}

/// Starts `builder` with a socket of `spec` that collects `keep(message)` for every
/// message it receives.
pub fn collector<T: Send + 'static>(
    mut builder: WorkerBuilder,
    spec: SocketSpec,
    keep: fn(&Inbound<'_>) -> T,
) -> Collector<T> {
    let (tx, rx) = crossbeam_channel::unbounded();
    let got = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&got);
    let socket = builder.socket(spec);
    let worker = builder
        .on_message(move |_, _, m| {
            counted.fetch_add(1, Ordering::SeqCst);
            let _ = tx.send(keep(m));
            Ok(())
        })
        .spawn()
        .expect("the collector starts");
    Collector { worker, socket, rx, got }
}

/// For [`collector`]: a message's last frame.
pub fn last_frame(m: &Inbound<'_>) -> Vec<u8> {
    m.last().to_vec()
}

/// For [`collector`]: all of a message's frames.
pub fn all_frames(m: &Inbound<'_>) -> Vec<Vec<u8>> {
    m.to_vec()
}

/// For [`collector`]: nothing but the count.
pub fn count_only(_: &Inbound<'_>) {}

/// Starts `builder` with one socket of `spec` and no handler: it sends what its handle is
/// given. Returns the worker and the socket's id.
pub fn sender(mut builder: WorkerBuilder, spec: SocketSpec) -> (Worker, SocketId) {
    let socket = builder.socket(spec);
    (builder.spawn().expect("the sender starts"), socket)
}
