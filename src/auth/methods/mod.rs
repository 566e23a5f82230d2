//! Auth methods mounted under `auth/<path>/` by `sys/auth`: [`approle`] (machine credentials:
//! a role ID plus a secret ID) and [`userpass`] (username and Argon2id-hashed password).
//!
//! Each method is a [`crate::logical::Backend`] that sees only its mount's storage view, like a
//! secrets engine. A successful login returns [`crate::logical::Response::login`] with an
//! [`crate::logical::Auth`] grant; the core creates the token and renders Vault's `auth` block.
//! Credentials (secret IDs, passwords) are never stored, logged or echoed in errors: secret IDs are
//! kept as HMAC-SHA256 under a per-mount random key, passwords as Argon2id PHC strings.
//!
//! Shared pieces: request field parsing ([`fields`]), CIDR blocks ([`cidr`]), Vault's common
//! `token_*` role settings ([`token_params`]) and codec storage helpers ([`store`]).

pub mod approle;
pub mod cidr;
pub mod fields;
pub mod store;
pub mod token_params;
pub mod userpass;
