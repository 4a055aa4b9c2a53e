//! libzmq's CURVE key functions (they need libsodium, so a vendored build returns ENOTSUP).

use std::ffi::{c_char, c_int};

extern "C" {
    // In libzmq since 4.2.1 but not re-exported by zmq-sys 0.12.
    fn zmq_curve_public(z85_public_key: *mut c_char, z85_secret_key: *const c_char) -> c_int;
}

/// Decodes a 40-character Z85 buffer (NUL-terminated) into 32 bytes.
fn z85_to_bytes(z85: &[u8; 41]) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    // SAFETY: `z85` is NUL-terminated with 40 characters; `out` has room for 40 * 4 / 5 bytes.
    let r = unsafe { zmq_sys::zmq_z85_decode(out.as_mut_ptr(), z85.as_ptr() as *const c_char) };
    (!r.is_null()).then_some(out)
}

/// A new key pair, (public, secret); `None` without CURVE support.
pub(crate) fn curve_keypair() -> Option<([u8; 32], [u8; 32])> {
    let (mut public, mut secret) = ([0u8; 41], [0u8; 41]);
    // SAFETY: both buffers hold 41 bytes, as zmq_curve_keypair requires.
    let rc = unsafe {
        zmq_sys::zmq_curve_keypair(public.as_mut_ptr() as *mut c_char, secret.as_mut_ptr() as *mut c_char)
    };
    if rc != 0 {
        return None;
    }
    Some((z85_to_bytes(&public)?, z85_to_bytes(&secret)?))
}

/// The public key of `secret`; `None` without CURVE support.
pub(crate) fn curve_public(secret: &[u8; 32]) -> Option<[u8; 32]> {
    let (mut secret_z85, mut public) = ([0u8; 41], [0u8; 41]);
    // SAFETY: `secret_z85` has room for 32 * 5 / 4 characters and the NUL; `secret` is 32
    // bytes, a multiple of 4 as zmq_z85_encode requires.
    let enc = unsafe { zmq_sys::zmq_z85_encode(secret_z85.as_mut_ptr() as *mut c_char, secret.as_ptr(), 32) };
    if enc.is_null() {
        return None;
    }
    // SAFETY: both buffers are 41 bytes; `secret_z85` is NUL-terminated Z85.
    let rc =
        unsafe { zmq_curve_public(public.as_mut_ptr() as *mut c_char, secret_z85.as_ptr() as *const c_char) };
    if rc != 0 {
        return None;
    }
    z85_to_bytes(&public)
}
