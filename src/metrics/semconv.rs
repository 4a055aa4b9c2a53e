//! The names ztick's telemetry goes by, from the OpenTelemetry messaging semantic
//! conventions (DESIGN.md decision 9), and [`MessagingAttributes`]: what one measured stream
//! is, in those terms. Spans ([`LatencySummary::emit_messaging`]), interval logs and the OTLP
//! export (feature `otlp`) all take their names from here.
//!
//! [`LatencySummary::emit_messaging`]: super::LatencySummary::emit_messaging

use crate::endpoint::{Endpoint, Transport};

/// `messaging.system`: always [`SYSTEM_ZEROMQ`].
pub const MESSAGING_SYSTEM: &str = "messaging.system";
/// The value of `messaging.system` for every ztick stream.
pub const SYSTEM_ZEROMQ: &str = "zeromq";
/// `messaging.operation.name`: the system's own name for the operation (`send`, `receive`).
pub const OPERATION_NAME: &str = "messaging.operation.name";
/// `messaging.operation.type`: [`OperationType`].
pub const OPERATION_TYPE: &str = "messaging.operation.type";
/// `messaging.destination.name`: the topic, group or endpoint a stream goes to.
pub const DESTINATION_NAME: &str = "messaging.destination.name";
/// `messaging.batch.message_count`: messages in one batch (one reporting interval here).
pub const BATCH_MESSAGE_COUNT: &str = "messaging.batch.message_count";
/// `messaging.message.body.size`: payload bytes of one message.
pub const MESSAGE_BODY_SIZE: &str = "messaging.message.body.size";
/// `network.transport`: `tcp`, `unix` (ipc) or `inproc`.
pub const NETWORK_TRANSPORT: &str = "network.transport";
/// `server.address`: the host of a tcp endpoint.
pub const SERVER_ADDRESS: &str = "server.address";
/// `server.port`: the port of a tcp endpoint.
pub const SERVER_PORT: &str = "server.port";
/// `error.type`: why an operation failed (here `gap` or `dropped` on an interval that lost
/// messages).
pub const ERROR_TYPE: &str = "error.type";

/// Histogram of operation durations, in seconds, with microsecond-scale buckets
/// ([`DURATION_BUCKETS_S`]): a latency interval's every value.
pub const OPERATION_DURATION: &str = "messaging.client.operation.duration";
/// Counter of messages a producer sent.
pub const SENT_MESSAGES: &str = "messaging.client.sent.messages";
/// Counter of messages a consumer received.
pub const CONSUMED_MESSAGES: &str = "messaging.client.consumed.messages";
/// ztick's counter of messages found missing (sequence gaps), repaired or not.
pub const ZTICK_GAPS: &str = "ztick.messages.gaps";
/// ztick's counter of messages delivered through repair.
pub const ZTICK_REPAIRED: &str = "ztick.messages.repaired";
/// ztick's counter of messages lost for good (missing, not repaired).
pub const ZTICK_UNRECOVERABLE: &str = "ztick.messages.unrecoverable";
/// ztick's counter of messages dropped at a high-water mark or at a stop.
pub const ZTICK_DROPPED: &str = "ztick.messages.dropped";
/// ztick's counter of interval histograms that could not be handed to the exporter in time
/// (its queue was full): their values are missing from [`OPERATION_DURATION`].
pub const ZTICK_INTERVALS_LOST: &str = "ztick.intervals.lost";

/// Bucket boundaries of [`OPERATION_DURATION`], in seconds: 1, 2, 5 steps from 1 µs to 10 s.
/// The conventions' advised default starts at 5 ms, which would put every ztick latency in
/// its first bucket.
pub const DURATION_BUCKETS_S: [f64; 22] = [
    1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 0.1, 0.2, 0.5,
    1.0, 2.0, 5.0, 10.0,
];

/// `messaging.operation.type`: what kind of operation a measured stream times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum OperationType {
    /// A producer sending (and, for a request, its reply's round trip).
    Send,
    /// A consumer receiving.
    #[default]
    Receive,
    /// A consumer processing what it received.
    Process,
}

impl OperationType {
    /// The conventions' value: `send`, `receive`, `process`.
    pub fn as_str(self) -> &'static str {
        match self {
            OperationType::Send => "send",
            OperationType::Receive => "receive",
            OperationType::Process => "process",
        }
    }
}

/// What one measured stream is, by the messaging conventions: the attributes its spans,
/// interval logs and metrics carry.
///
/// ```
/// use ztick::metrics::{MessagingAttributes, OperationType};
///
/// let a = MessagingAttributes::new("receive", OperationType::Receive, "ticks")
///     .endpoint(&"tcp://10.0.0.1:5556".parse()?)
///     .body_size_bytes(64);
/// assert_eq!(a.network_transport(), Some("tcp"));
/// assert_eq!((a.server_address.as_deref(), a.server_port), (Some("10.0.0.1"), Some(5556)));
/// # Ok::<(), ztick::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct MessagingAttributes {
    /// `messaging.operation.name`, e.g. `receive`, `send`, `request`.
    pub operation_name: String,
    /// `messaging.operation.type`.
    pub operation_type: OperationType,
    /// `messaging.destination.name`: the topic or group (or endpoint) of the stream.
    pub destination: String,
    /// `network.transport`, from the endpoint; `None` when unknown.
    pub transport: Option<Transport>,
    /// `server.address`: the host of a tcp endpoint.
    pub server_address: Option<String>,
    /// `server.port`: the port of a tcp endpoint.
    pub server_port: Option<u16>,
    /// `messaging.message.body.size`: payload bytes per message, when fixed.
    pub body_size_bytes: Option<u64>,
}

impl MessagingAttributes {
    /// A stream doing `operation_name` (of `operation_type`) on `destination`.
    pub fn new(operation_name: &str, operation_type: OperationType, destination: &str) -> Self {
        MessagingAttributes {
            operation_name: operation_name.to_owned(),
            operation_type,
            destination: destination.to_owned(),
            ..MessagingAttributes::default()
        }
    }

    /// Sets the transport, and for tcp the server's address and port, from `endpoint`.
    pub fn endpoint(mut self, endpoint: &Endpoint) -> Self {
        self.transport = Some(endpoint.transport());
        if endpoint.transport() == Transport::Tcp {
            if let Some((host, port)) = endpoint.address().rsplit_once(':') {
                let host = host.trim_start_matches('[').trim_end_matches(']');
                self.server_address = Some(host.to_owned());
                self.server_port = port.parse().ok();
            }
        }
        self
    }

    /// Sets the payload size of each message.
    pub fn body_size_bytes(mut self, bytes: u64) -> Self {
        self.body_size_bytes = Some(bytes);
        self
    }

    /// The `network.transport` value: `tcp`, `unix` for ipc (a Unix-domain socket), `inproc`.
    pub fn network_transport(&self) -> Option<&'static str> {
        self.transport.map(|t| match t {
            Transport::Tcp => "tcp",
            Transport::Ipc => "unix",
            Transport::Inproc => "inproc",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_fill_transport_and_server() {
        let a = MessagingAttributes::new("send", OperationType::Send, "t0")
            .endpoint(&"tcp://[::1]:7000".parse().unwrap());
        assert_eq!((a.server_address.as_deref(), a.server_port), (Some("::1"), Some(7000)));
        let ipc = MessagingAttributes::default().endpoint(&"ipc:///tmp/x.ipc".parse().unwrap());
        assert_eq!((ipc.network_transport(), ipc.server_address), (Some("unix"), None));
        assert_eq!(OperationType::Process.as_str(), "process");
        assert!(DURATION_BUCKETS_S.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(DURATION_BUCKETS_S[0], 1e-6, "microsecond scale");
    }
}
