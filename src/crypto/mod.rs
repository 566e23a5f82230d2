//! Stateless cryptographic primitives shared by `barrier` and `seal`: randomness from the
//! operating system, authenticated encryption ([`aead`]), the generate-root OTP encoding
//! ([`otp`]) and OpenPGP encryption to key holders ([`pgp`]).
//!
//! This module holds no key material of its own: callers pass keys in and own their lifetime.

pub mod aead;
pub mod otp;
pub mod pgp;

use rand::TryRng;
use rand::rngs::SysRng;
use zeroize::Zeroizing;

/// `N` bytes from the operating system's CSPRNG, in a buffer that is wiped when dropped.
///
/// # Panics
///
/// If the operating system cannot provide randomness. Nothing secure can be done without it, so
/// this is treated as a broken invariant rather than an error to handle.
pub fn random_bytes<const N: usize>() -> Zeroizing<[u8; N]> {
    let mut bytes = Zeroizing::new([0u8; N]);
    fill_random(bytes.as_mut_slice());
    bytes
}

/// A random UUID v4 (122 random bits), for request ids, nonces and other non-secret identifiers.
pub fn random_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Fills `dst` from the operating system's CSPRNG.
fn fill_random(dst: &mut [u8]) {
    if let Err(err) = SysRng.try_fill_bytes(dst) {
        panic!("the operating system's random number generator failed: {err}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_bytes_differ_between_calls() {
        let a = random_bytes::<32>();
        let b = random_bytes::<32>();
        assert_ne!(*a, *b);
        assert_ne!(*a, [0u8; 32]);
    }

    #[test]
    fn random_id_is_a_uuid_v4() {
        let id = random_id();
        let parsed = uuid::Uuid::parse_str(&id).unwrap();
        assert_eq!(parsed.get_version_num(), 4);
        assert_ne!(id, random_id());
    }
}
