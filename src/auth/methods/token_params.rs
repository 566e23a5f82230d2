//! Vault's common token settings of a role or user (`token_policies`, `token_ttl`,
//! `token_max_ttl`, `token_explicit_max_ttl`, `token_period`, `token_num_uses`,
//! `token_bound_cidrs`, `token_no_default_policy`, `token_type`), with each method's deprecated
//! aliases (`policies`, `period`, `ttl`, ...): parsed from a request onto existing values, rendered
//! in read responses, and turned into the [`Auth`] grant of a login.
//!
//! Only service tokens exist here: `token_type` accepts `default` and `service`, and refuses
//! `batch` with a 400.

use serde::Deserialize;
use serde::Serialize;
use serde_json::Map;
use serde_json::Value;
use serde_json::json;

use super::cidr;
use super::fields;
use crate::logical::Auth;
use crate::logical::LogicalError;
use crate::logical::Request;

/// The token settings stored with a role or user.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TokenParams {
    /// Policies of issued tokens (normalized; never `root`).
    pub policies: Vec<String>,
    /// Initial TTL in seconds (0: the mount's/system default).
    pub ttl: u64,
    /// Maximum TTL in seconds (0: the mount's/system maximum).
    pub max_ttl: u64,
    /// Hard lifetime cap in seconds (0: none).
    pub explicit_max_ttl: u64,
    /// Period of periodic tokens in seconds (0: not periodic).
    pub period: u64,
    /// Uses per token (0: unlimited).
    pub num_uses: u32,
    /// CIDR blocks tokens may be used from (empty: anywhere).
    pub bound_cidrs: Vec<String>,
    /// Leave out the `default` policy.
    pub no_default_policy: bool,
    /// `default` or `service` (an empty string reads as `default`).
    pub token_type: String,
}

/// A deprecated field name and the `token_*` field it stands for. The `token_*` field wins when
/// both are sent.
pub type Alias = (&'static str, &'static str);

fn field(
    request: &Request,
    name: &'static str,
    aliases: &[Alias],
) -> Option<(Value, &'static str)> {
    request.field(name).map(|value| (value, name)).or_else(|| {
        aliases
            .iter()
            .filter(|(_, canonical)| *canonical == name)
            .find_map(|(old, _)| request.field(old).map(|value| (value, *old)))
    })
}

impl TokenParams {
    /// Applies the token fields present in `request` (or their `aliases`) and validates the
    /// result. On error `self` may be partly changed: callers work on a copy.
    pub fn update(&mut self, request: &Request, aliases: &[Alias]) -> Result<(), LogicalError> {
        if let Some((value, name)) = field(request, "token_policies", aliases) {
            self.policies = fields::policies(&value, name)?;
        }
        if let Some((value, name)) = field(request, "token_ttl", aliases) {
            self.ttl = fields::seconds(&value, name)?;
        }
        if let Some((value, name)) = field(request, "token_max_ttl", aliases) {
            self.max_ttl = fields::seconds(&value, name)?;
        }
        if let Some((value, name)) = field(request, "token_explicit_max_ttl", aliases) {
            self.explicit_max_ttl = fields::seconds(&value, name)?;
        }
        if let Some((value, name)) = field(request, "token_period", aliases) {
            self.period = fields::seconds(&value, name)?;
        }
        if let Some((value, name)) = field(request, "token_num_uses", aliases) {
            self.num_uses = u32::try_from(fields::uint(&value, name)?)
                .map_err(|_| LogicalError::invalid(format!("{name} is too large")))?;
        }
        if let Some((value, name)) = field(request, "token_bound_cidrs", aliases) {
            self.bound_cidrs = cidr::parse_list(&fields::string_list(&value, name)?, name)?;
        }
        if let Some((value, name)) = field(request, "token_no_default_policy", aliases) {
            self.no_default_policy = fields::boolean(&value, name)?;
        }
        if let Some((value, name)) = field(request, "token_type", aliases) {
            self.token_type = match &value {
                Value::String(text) => text.trim().to_ascii_lowercase(),
                _ => return Err(LogicalError::invalid(format!("{name} must be a string"))),
            };
        }
        self.validate()
    }

    fn validate(&self) -> Result<(), LogicalError> {
        if self.max_ttl > 0 && self.ttl > self.max_ttl {
            return Err(LogicalError::invalid(
                "'token_ttl' cannot be greater than 'token_max_ttl'",
            ));
        }
        match self.token_type.as_str() {
            "" | "default" | "service" | "default-service" => Ok(()),
            "batch" | "default-batch" => Err(LogicalError::invalid(
                "token_type: batch tokens are not supported; use \"service\"",
            )),
            _ => Err(LogicalError::invalid(
                "token_type must be \"default\" or \"service\"",
            )),
        }
    }

    /// The `token_*` fields as Vault's read responses show them (durations in seconds).
    pub fn write_json(&self, map: &mut Map<String, Value>) {
        let token_type = if self.token_type.is_empty() {
            "default"
        } else {
            self.token_type.as_str()
        };
        map.insert("token_bound_cidrs".into(), json!(self.bound_cidrs));
        map.insert(
            "token_explicit_max_ttl".into(),
            json!(self.explicit_max_ttl),
        );
        map.insert("token_max_ttl".into(), json!(self.max_ttl));
        map.insert(
            "token_no_default_policy".into(),
            json!(self.no_default_policy),
        );
        map.insert("token_num_uses".into(), json!(self.num_uses));
        map.insert("token_period".into(), json!(self.period));
        map.insert("token_policies".into(), json!(self.policies));
        map.insert("token_ttl".into(), json!(self.ttl));
        map.insert("token_type".into(), json!(token_type));
    }

    /// The login grant for a token with these settings (renewable, as Vault's login tokens).
    pub fn to_auth(&self) -> Auth {
        Auth {
            policies: self.policies.clone(),
            ttl: self.ttl,
            max_ttl: self.max_ttl,
            explicit_max_ttl: self.explicit_max_ttl,
            period: self.period,
            num_uses: self.num_uses,
            renewable: true,
            bound_cidrs: self.bound_cidrs.clone(),
            no_default_policy: self.no_default_policy,
            ..Auth::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: Value) -> Request {
        let mut request = Request::default();
        if let Value::Object(map) = body {
            request.data = map;
        }
        request
    }

    #[test]
    fn parses_fields_and_aliases() {
        let mut params = TokenParams::default();
        params
            .update(
                &request(
                    json!({"policies": "b,a", "token_ttl": "1m", "token_max_ttl": 120,
                    "period": "1h", "token_num_uses": "3", "token_bound_cidrs": "10.0.0.1",
                    "token_no_default_policy": "true", "token_type": "service"}),
                ),
                &[("policies", "token_policies"), ("period", "token_period")],
            )
            .unwrap();
        assert_eq!(params.policies, ["a", "b"]);
        assert_eq!((params.ttl, params.max_ttl, params.period), (60, 120, 3600));
        assert_eq!(params.num_uses, 3);
        assert_eq!(params.bound_cidrs, ["10.0.0.1/32"]);
        assert!(params.no_default_policy);
        let auth = params.to_auth();
        assert!(auth.renewable);
        assert_eq!(auth.period, 3600);
    }

    #[test]
    fn canonical_name_wins_over_alias() {
        let mut params = TokenParams::default();
        params
            .update(
                &request(json!({"policies": "old", "token_policies": "new"})),
                &[("policies", "token_policies")],
            )
            .unwrap();
        assert_eq!(params.policies, ["new"]);
    }

    #[test]
    fn refuses_bad_values() {
        for body in [
            json!({"token_ttl": 10, "token_max_ttl": 5}),
            json!({"token_type": "batch"}),
            json!({"token_type": "weird"}),
            json!({"token_num_uses": -1}),
            json!({"token_num_uses": 5_000_000_000u64}),
            json!({"token_bound_cidrs": "300.0.0.0/8"}),
            json!({"token_policies": ["root"]}),
            json!({"token_ttl": "forever"}),
        ] {
            let mut params = TokenParams::default();
            assert!(
                params.update(&request(body.clone()), &[]).is_err(),
                "{body}"
            );
        }
    }

    #[test]
    fn renders_vaults_read_shape() {
        let mut map = Map::new();
        TokenParams::default().write_json(&mut map);
        assert_eq!(map["token_type"], "default");
        assert_eq!(map["token_policies"], json!([]));
        assert_eq!(map["token_ttl"], 0);
    }
}
