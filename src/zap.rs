//! ZAP (ZeroMQ RFC 27) authentication: a handler on an engine worker that answers libzmq's
//! questions about connecting clients, allowing or refusing each by its CURVE public key
//! and its source address, and counting and tracing every decision.
//!
//! libzmq asks the handler bound at `inproc://zeromq.zap.01` in the server socket's own
//! context, so spawn the handler on the same [`Engine`] as the CURVE server, before
//! clients connect. Give the server socket a ZAP domain
//! ([`SocketOptions::zap_domain`](crate::SocketOptions::zap_domain), e.g. [`DOMAIN`]) and
//! the policy the same one: libzmq then enforces it (`ZMQ_ZAP_ENFORCE_DOMAIN`), so while no
//! handler runs, every client is refused. Without a domain, libzmq's default is to fail
//! open: a CURVE server with no handler accepts any client that knows its public key.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::config::SocketKind;
use crate::curve::CurveKey;
use crate::endpoint::Endpoint;
use crate::engine::{Engine, SocketSpec, Worker};
use crate::error::Result;

/// Where libzmq sends ZAP requests (fixed by the RFC).
pub const ZAP_ENDPOINT: &str = "inproc://zeromq.zap.01";

/// The ZAP domain the `ztick` command gives its CURVE servers with an allow-list.
pub const DOMAIN: &str = "ztick";

/// Who may connect. Each list, when set, must match; `None` allows anyone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZapPolicy {
    /// The ZAP domain requests must name (the server socket's
    /// [`zap_domain`](crate::SocketOptions::zap_domain)); a request for another is refused.
    pub domain: Option<String>,
    /// CURVE client public keys allowed; with a list, NULL and PLAIN clients are refused.
    pub keys: Option<HashSet<CurveKey>>,
    /// Source IP addresses allowed (as libzmq reports them, e.g. `127.0.0.1`).
    pub addresses: Option<HashSet<String>>,
}

impl ZapPolicy {
    /// Allows only these client public keys (e.g. from [`crate::curve::load_public_keys`]).
    pub fn allow_keys(mut self, keys: impl IntoIterator<Item = CurveKey>) -> Self {
        self.keys.get_or_insert_with(HashSet::new).extend(keys);
        self
    }

    /// Answers only for servers of this ZAP domain.
    pub fn domain(mut self, domain: &str) -> Self {
        self.domain = Some(domain.to_owned());
        self
    }

    /// Allows only clients from these source addresses.
    pub fn allow_addresses(mut self, addresses: impl IntoIterator<Item = String>) -> Self {
        self.addresses.get_or_insert_with(HashSet::new).extend(addresses);
        self
    }

    /// Decides on one request: `Ok(user id)` or `Err(reason)`.
    fn decide(
        &self,
        domain: &str,
        address: &str,
        mechanism: &[u8],
        credentials: &[&[u8]],
    ) -> std::result::Result<String, String> {
        if let Some(want) = &self.domain {
            if domain != want {
                return Err(format!("ZAP domain {domain:?} is not this handler's {want:?}"));
            }
        }
        if let Some(allowed) = &self.addresses {
            if !allowed.contains(address) {
                return Err(format!("address {address} is not on the allow-list"));
            }
        }
        match (mechanism, &self.keys) {
            (b"CURVE", keys) => {
                let key = credentials
                    .first()
                    .and_then(|c| CurveKey::from_slice(c))
                    .ok_or_else(|| "CURVE request without a 32-byte public key".to_string())?;
                match keys {
                    Some(k) if !k.contains(&key) => Err(format!("key {key} is not on the allow-list")),
                    _ => Ok(key.to_string()),
                }
            }
            (_, Some(_)) => {
                Err(format!("mechanism {} carries no allowed key", String::from_utf8_lossy(mechanism)))
            }
            (_, None) => Ok(String::new()),
        }
    }
}

/// What a [`ZapHandler`] decided so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ZapStats {
    /// Clients allowed.
    pub allowed: u64,
    /// Clients refused.
    pub denied: u64,
    /// Requests that did not follow ZAP 1.0 (answered with status 500).
    pub malformed: u64,
}

#[derive(Debug, Default)]
struct Counters {
    allowed: AtomicU64,
    denied: AtomicU64,
    malformed: AtomicU64,
}

/// A running ZAP handler; from [`ZapHandler::spawn`].
#[derive(Debug)]
pub struct ZapHandler {
    worker: Worker,
    counters: Arc<Counters>,
}

impl ZapHandler {
    /// Binds [`ZAP_ENDPOINT`] in `engine`'s context and starts answering by `policy`.
    ///
    /// # Errors
    /// A bind error (address in use) when this engine already has a ZAP handler.
    pub fn spawn(engine: &Engine, policy: ZapPolicy) -> Result<ZapHandler> {
        let counters = Arc::new(Counters::default());
        let c = Arc::clone(&counters);
        let endpoint: Endpoint = ZAP_ENDPOINT.parse()?;
        let mut b = engine.worker("zap");
        b.socket(SocketSpec::bind(SocketKind::Rep, endpoint));
        let worker = b
            .on_message(move |ctx, socket, msg| {
                let frames: Vec<&[u8]> = msg.iter().collect();
                let reply = answer(&policy, &frames, &c);
                let parts: Vec<&[u8]> = reply.iter().map(Vec::as_slice).collect();
                ctx.send_parts(socket, &parts)
            })
            .spawn()?;
        Ok(ZapHandler { worker, counters })
    }

    /// Decisions so far.
    pub fn stats(&self) -> ZapStats {
        ZapStats {
            allowed: self.counters.allowed.load(Ordering::Relaxed),
            denied: self.counters.denied.load(Ordering::Relaxed),
            malformed: self.counters.malformed.load(Ordering::Relaxed),
        }
    }

    /// Stops answering (new CURVE clients then fail to authenticate); returns the counts.
    pub fn stop(self) -> Result<ZapStats> {
        let stats = self.stats();
        self.worker.stop()?;
        Ok(stats)
    }
}

/// The reply to one ZAP request:
/// `[version][request id][domain][address][identity][mechanism][credentials...]` in,
/// `[version][request id][status code][status text][user id][metadata]` out.
fn answer(policy: &ZapPolicy, frames: &[&[u8]], counters: &Counters) -> Vec<Vec<u8>> {
    let reply = |id: &[u8], code: &str, text: &str, user: &str| {
        vec![b"1.0".to_vec(), id.to_vec(), code.into(), text.into(), user.into(), Vec::new()]
    };
    let [version, id, domain, address, _identity, mechanism, credentials @ ..] = frames else {
        counters.malformed.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(frames = frames.len(), "malformed ZAP request");
        return reply(frames.get(1).copied().unwrap_or(&[]), "500", "malformed request", "");
    };
    if *version != b"1.0" {
        counters.malformed.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(version = %String::from_utf8_lossy(version), "unsupported ZAP version");
        return reply(id, "500", "unsupported ZAP version", "");
    }
    let address = String::from_utf8_lossy(address);
    let domain = String::from_utf8_lossy(domain);
    let mech = String::from_utf8_lossy(mechanism);
    match policy.decide(&domain, &address, mechanism, credentials) {
        Ok(user) => {
            counters.allowed.fetch_add(1, Ordering::Relaxed);
            tracing::info!(%address, %domain, mechanism = %mech, user = %user, "ZAP: client allowed");
            reply(id, "200", "OK", &user)
        }
        Err(reason) => {
            counters.denied.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%address, %domain, mechanism = %mech, %reason, "ZAP: client refused");
            reply(id, "400", &reason, "")
        }
    }
}

/// One request answered as the handler answers it, with what it counted (`crate::fuzz_hooks`).
#[cfg(fuzzing)]
pub(crate) fn answer_counted(policy: &ZapPolicy, frames: &[&[u8]]) -> (Vec<Vec<u8>>, ZapStats) {
    let c = Counters::default();
    let reply = answer(policy, frames, &c);
    let n = |a: AtomicU64| a.into_inner();
    (reply, ZapStats { allowed: n(c.allowed), denied: n(c.denied), malformed: n(c.malformed) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> CurveKey {
        CurveKey::from_bytes([b; 32])
    }

    #[test]
    fn the_policy_checks_keys_and_addresses() {
        let any = ZapPolicy::default();
        assert!(any.decide("", "10.0.0.1", b"NULL", &[]).is_ok());
        let keys = ZapPolicy::default().allow_keys([key(1)]);
        assert_eq!(keys.decide("", "127.0.0.1", b"CURVE", &[&[1; 32]]), Ok(key(1).to_string()));
        assert!(keys
            .decide("", "127.0.0.1", b"CURVE", &[&[2; 32]])
            .unwrap_err()
            .contains("not on the allow-list"));
        assert!(keys.decide("", "127.0.0.1", b"CURVE", &[&[1; 31]]).is_err());
        assert!(keys.decide("", "127.0.0.1", b"NULL", &[]).is_err());
        let addr = ZapPolicy::default().allow_addresses(["127.0.0.1".to_string()]);
        assert!(addr.decide("", "127.0.0.1", b"CURVE", &[&[9; 32]]).is_ok());
        assert!(addr.decide("", "127.0.0.2", b"CURVE", &[&[9; 32]]).unwrap_err().contains("address"));
        let dom = ZapPolicy::default().domain(DOMAIN);
        assert!(dom.decide(DOMAIN, "127.0.0.1", b"CURVE", &[&[9; 32]]).is_ok());
        assert!(dom.decide("", "127.0.0.1", b"CURVE", &[&[9; 32]]).unwrap_err().contains("domain"));
        assert!(dom.decide("other", "127.0.0.1", b"NULL", &[]).is_err());
    }

    #[test]
    fn replies_follow_zap_1_0_and_count_every_decision() {
        let c = Counters::default();
        let policy = ZapPolicy::default().allow_keys([key(1)]);
        let ok = answer(&policy, &[b"1.0", b"7", b"", b"127.0.0.1", b"", b"CURVE", &[1; 32]], &c);
        assert_eq!(ok[..4], [b"1.0".to_vec(), b"7".to_vec(), b"200".to_vec(), b"OK".to_vec()]);
        let no = answer(&policy, &[b"1.0", b"8", b"", b"127.0.0.1", b"", b"CURVE", &[2; 32]], &c);
        assert_eq!(no[2], b"400");
        let bad = answer(&policy, &[b"1.0", b"9"], &c);
        assert_eq!((bad.len(), bad[1].as_slice(), bad[2].as_slice()), (6, &b"9"[..], &b"500"[..]));
        let v2 = answer(&policy, &[b"2.0", b"10", b"", b"", b"", b"NULL"], &c);
        assert_eq!(v2[2], b"500");
        assert_eq!(
            (
                c.allowed.load(Ordering::Relaxed),
                c.denied.load(Ordering::Relaxed),
                c.malformed.load(Ordering::Relaxed)
            ),
            (1, 1, 2)
        );
    }
}
