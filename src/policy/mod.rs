//! Access control: turns a token's policies into a decision for an operation on a path.
//!
//! Today only the built-in `root` policy exists (everything allowed, including `sudo` paths); any
//! other token is denied everything. Vault's HCL policies, globs and parameters come with the
//! identity-and-access issue; callers already go through [`Acl`], so that change stays here.

use crate::logical::Operation;

/// What a set of policies allows.
#[derive(Debug, Clone)]
pub struct Acl {
    root: bool,
}

impl Acl {
    /// The ACL of a token holding `policies`.
    pub fn for_policies(policies: &[String]) -> Self {
        Acl {
            root: policies.iter().any(|policy| policy == "root"),
        }
    }

    /// Whether `operation` on `path` (full path after `/v1/`) is allowed; `sudo` paths also need
    /// the sudo capability.
    pub fn allows(&self, _operation: Operation, _path: &str, needs_sudo: bool) -> bool {
        let _ = needs_sudo;
        self.root
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_allows_everything_and_others_nothing() {
        let root = Acl::for_policies(&["root".to_string()]);
        assert!(root.allows(Operation::Update, "secret/data/x", false));
        assert!(root.allows(Operation::Update, "sys/seal", true));
        let other = Acl::for_policies(&["default".to_string()]);
        assert!(!other.allows(Operation::Read, "secret/data/x", false));
    }
}
