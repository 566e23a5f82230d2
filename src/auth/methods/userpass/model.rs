//! What userpass stores in its mount's view:
//!
//! - `user/<name>` -> [`UserEntry`] (names are lowercased and follow Vault's generic name rule)
//!
//! The password is kept only as an Argon2id PHC string; values are encoded with the project codec.

use std::fmt;

use serde::Deserialize;
use serde::Serialize;
use serde_json::Map;
use serde_json::Value;
use serde_json::json;

use crate::auth::methods::store::load;
use crate::auth::methods::store::validate_name;
use crate::auth::methods::token_params::TokenParams;
use crate::logical::LogicalError;
use crate::logical::Storage;

/// Storage prefix of users.
pub const USER_PREFIX: &str = "user/";

/// One user.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct UserEntry {
    /// Argon2id PHC string of the password.
    pub password_hash: String,
    /// Settings of the tokens logins get.
    pub token: TokenParams,
}

impl fmt::Debug for UserEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserEntry")
            .field("password_hash", &"<redacted>")
            .field("token", &self.token)
            .finish()
    }
}

impl UserEntry {
    /// Vault's read-user response (never the password hash).
    pub fn to_json(&self) -> Map<String, Value> {
        let mut map = Map::new();
        self.token.write_json(&mut map);
        map.insert("policies".into(), json!(self.token.policies));
        map
    }
}

/// Storage key of a user.
pub fn user_key(name: &str) -> String {
    format!("{USER_PREFIX}{name}")
}

/// A username from a path: lowercased (Vault's userpass is case-insensitive) and validated.
pub fn username(raw: &str) -> Result<String, LogicalError> {
    let name = raw.to_lowercase();
    validate_name(&name, "username")?;
    Ok(name)
}

/// Loads a user.
pub fn load_user(storage: &mut dyn Storage, name: &str) -> Result<Option<UserEntry>, LogicalError> {
    load(storage, &user_key(name))
}
