//! Typed payloads: serde values as bincode 2 bytes, with a size limit on decode so a peer's
//! length prefix cannot make us allocate without bound.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};

/// The largest value [`decode`] accepts, in bytes (16 MiB).
pub const MAX_DECODED_BYTES: usize = 16 << 20;

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_DECODED_BYTES>()
}

/// Encodes `value` with bincode 2's standard configuration (varint integers).
///
/// # Errors
/// [`Error::Decode`] (in the encoding direction) when serde refuses the value, e.g. a map
/// with a non-string key that the type's `Serialize` cannot express.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    bincode::serde::encode_to_vec(value, config())
        .map_err(|e| Error::Decode { context: "encoding a typed value".into(), reason: e.to_string() })
}

/// Decodes a whole frame as a `T`; trailing bytes are an error, as is anything over
/// [`MAX_DECODED_BYTES`]. `from` names the peer for the error (endpoint, socket kind).
///
/// ```
/// let bytes = ztick::codec::encode(&(7u32, "tick".to_string()))?;
/// let v: (u32, String) = ztick::codec::decode(&bytes, "doc")?;
/// assert_eq!(v, (7, "tick".to_string()));
/// assert!(ztick::codec::decode::<(u32, String)>(&bytes[..2], "doc").is_err());
/// # Ok::<(), ztick::Error>(())
/// ```
pub fn decode<T: DeserializeOwned>(bytes: &[u8], from: &str) -> Result<T> {
    let (value, used) = bincode::serde::decode_from_slice::<T, _>(bytes, config())
        .map_err(|e| Error::Decode { context: from.to_string(), reason: e.to_string() })?;
    if used != bytes.len() {
        return Err(Error::Decode {
            context: from.to_string(),
            reason: format!("{} trailing bytes after a {}-byte value", bytes.len() - used, used),
        });
    }
    Ok(value)
}
