//! Access control: Vault's ACL policies (HCL or JSON) parsed into rules ([`parse`]), merged per
//! token into an [`Acl`] that decides each request, and the built-in `root` and `default`
//! policies. Policies are stored (encrypted, replicated) by the core under `core/policy/`.

pub mod acl;
pub mod capability;
pub mod list_filter;
pub mod parse;

pub use acl::Acl;
pub use capability::Capabilities;
pub use list_filter::list_filter;
pub use parse::Policy;
pub use parse::PolicyError;

/// Vault's built-in `default` policy: lets every token look itself up, renew and revoke itself,
/// and ask for its own capabilities. Written at init; may be edited, never deleted.
pub const DEFAULT_POLICY: &str = r#"
# Allow tokens to look up their own properties
path "auth/token/lookup-self" {
    capabilities = ["read"]
}

# Allow tokens to renew themselves
path "auth/token/renew-self" {
    capabilities = ["update"]
}

# Allow tokens to revoke themselves
path "auth/token/revoke-self" {
    capabilities = ["update"]
}

# Allow a token to look up its own capabilities on a path
path "sys/capabilities-self" {
    capabilities = ["update"]
}
"#;
