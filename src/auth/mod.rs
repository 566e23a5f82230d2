//! Authentication: the token store ([`token`]) and the auth methods mounted under `auth/`
//! ([`methods`]: AppRole and userpass).
//!
//! Like engines, this module works through a storage view (`core/token/`) and never touches the
//! barrier or raft; the core hands it the keyed hash of a token, never the token itself.

pub mod methods;
pub mod token;
