//! Authentication: the token store. (Auth methods such as AppRole and userpass come later.)
//!
//! Like engines, this module works through a storage view (`core/token/`) and never touches the
//! barrier or raft; the core hands it the keyed hash of a token, never the token itself.

pub mod token;
