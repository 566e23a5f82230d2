//! Password hashing for userpass: Argon2id (v19) with OWASP's parameters (19 MiB, 2 passes,
//! 1 lane), a fresh 16-byte random salt per hash, stored as a PHC string
//! (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`). Verification reads the parameters from the
//! stored string, so hashes made with older parameters still verify and are upgraded at the next
//! successful login. Unknown users are checked against a dummy hash with the same parameters, so
//! timing does not tell which usernames exist.

use argon2::Algorithm;
use argon2::Argon2;
use argon2::Params;
use argon2::PasswordHasher;
use argon2::PasswordVerifier;
use argon2::Version;
use argon2::password_hash;

use crate::logical::LogicalError;
use crate::logical::StorageError;

/// Memory cost in KiB (OWASP's Argon2id minimum: 19 MiB).
const M_COST: u32 = 19_456;
/// Passes over memory.
const T_COST: u32 = 2;
/// Lanes.
const P_COST: u32 = 1;
const OUTPUT_LEN: usize = 32;
const SALT_LEN: usize = 16;

/// The PHC prefix of hashes made with the current parameters.
const CURRENT_PREFIX: &str = "$argon2id$v=19$m=19456,t=2,p=1$";

/// A well-formed hash with the current parameters and a made-up output no known password
/// produces, verified against when the user does not exist.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c3Ryb25ncm9vbWR1bW15$zNkzY6r0e5XnJ0cYzX5QH3rL8r7y2o0m6kq4nQfQ2xU";

fn internal(what: &str) -> LogicalError {
    LogicalError::Storage(StorageError::Backend(format!(
        "password hashing failed: {what}"
    )))
}

fn hasher() -> Result<Argon2<'static>, LogicalError> {
    let params = Params::new(M_COST, T_COST, P_COST, Some(OUTPUT_LEN))
        .map_err(|_| internal("invalid Argon2 parameters"))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// A new PHC string for `password` with a fresh random salt.
pub fn hash(password: &str) -> Result<String, LogicalError> {
    let salt = crate::crypto::random_bytes::<SALT_LEN>();
    hasher()?
        .hash_password_with_salt(password.as_bytes(), salt.as_slice())
        .map(|hash| hash.to_string())
        .map_err(|_| internal("hashing"))
}

/// Whether `password` matches the stored PHC string (the comparison inside is constant-time).
/// A stored value that does not parse is reported as corrupt storage.
pub fn verify(password: &str, stored: &str) -> Result<bool, LogicalError> {
    match Argon2::default().verify_password(password.as_bytes(), stored) {
        Ok(()) => Ok(true),
        Err(password_hash::Error::PasswordInvalid) => Ok(false),
        Err(_) => Err(LogicalError::Storage(StorageError::Corrupt(
            "userpass password hash".to_string(),
        ))),
    }
}

/// Spends the time of one verification without a user: verifies against [`DUMMY_HASH`].
pub fn verify_dummy(password: &str) {
    let _ = Argon2::default().verify_password(password.as_bytes(), DUMMY_HASH);
}

/// Whether a stored hash was made with other parameters than the current ones.
pub fn needs_rehash(stored: &str) -> bool {
    !stored.starts_with(CURRENT_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_are_salted() {
        let first = hash("correct horse").unwrap();
        let second = hash("correct horse").unwrap();
        assert_ne!(first, second, "a fresh salt per hash");
        assert!(first.starts_with(CURRENT_PREFIX));
        assert!(!needs_rehash(&first));
        assert!(verify("correct horse", &first).unwrap());
        assert!(!verify("correct horsf", &first).unwrap());
        assert!(!first.contains("correct horse"));
        assert!(verify("x", "not a phc string").is_err());
    }

    #[test]
    fn the_dummy_hash_costs_what_a_real_one_does() {
        assert!(!needs_rehash(DUMMY_HASH));
        assert!(
            !verify("anything", DUMMY_HASH).unwrap(),
            "it parses and matches nothing"
        );
        verify_dummy("anything");
    }

    #[test]
    fn old_parameters_still_verify_and_ask_for_a_rehash() {
        let params = Params::new(8, 1, 1, Some(32)).unwrap();
        let weak = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_with_salt(b"pw", b"0123456789abcdef")
            .unwrap()
            .to_string();
        assert!(needs_rehash(&weak));
        assert!(verify("pw", &weak).unwrap());
    }
}
