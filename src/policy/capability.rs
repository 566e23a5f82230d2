//! Capabilities: what a policy rule grants on a path, as a small bit set.

use std::fmt;

use crate::logical::Operation;

/// A set of Vault capabilities.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Capabilities(u16);

impl Capabilities {
    /// No capability.
    pub const NONE: Capabilities = Capabilities(0);
    /// `create`.
    pub const CREATE: Capabilities = Capabilities(1);
    /// `read`.
    pub const READ: Capabilities = Capabilities(1 << 1);
    /// `update`.
    pub const UPDATE: Capabilities = Capabilities(1 << 2);
    /// `patch`.
    pub const PATCH: Capabilities = Capabilities(1 << 3);
    /// `delete`.
    pub const DELETE: Capabilities = Capabilities(1 << 4);
    /// `list`.
    pub const LIST: Capabilities = Capabilities(1 << 5);
    /// `sudo`: needed on root-protected paths.
    pub const SUDO: Capabilities = Capabilities(1 << 6);
    /// `deny`: overrides everything else on the rule.
    pub const DENY: Capabilities = Capabilities(1 << 7);

    const NAMES: [(&'static str, Capabilities); 8] = [
        ("create", Capabilities::CREATE),
        ("read", Capabilities::READ),
        ("update", Capabilities::UPDATE),
        ("patch", Capabilities::PATCH),
        ("delete", Capabilities::DELETE),
        ("list", Capabilities::LIST),
        ("sudo", Capabilities::SUDO),
        ("deny", Capabilities::DENY),
    ];

    /// Parses one capability name (`read`, ...).
    pub fn parse(name: &str) -> Option<Capabilities> {
        Capabilities::NAMES
            .iter()
            .find(|(candidate, _)| *candidate == name)
            .map(|(_, cap)| *cap)
    }

    /// The capability an operation needs.
    pub fn for_operation(operation: Operation) -> Capabilities {
        match operation {
            Operation::Read => Capabilities::READ,
            Operation::List => Capabilities::LIST,
            Operation::Create => Capabilities::CREATE,
            Operation::Update => Capabilities::UPDATE,
            Operation::Patch => Capabilities::PATCH,
            Operation::Delete => Capabilities::DELETE,
        }
    }

    /// The union of two sets.
    pub fn union(self, other: Capabilities) -> Capabilities {
        Capabilities(self.0 | other.0)
    }

    /// Whether every capability of `other` is in this set.
    pub fn contains(self, other: Capabilities) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The names in the set, in Vault's order (`["deny"]` alone when denied).
    pub fn names(self) -> Vec<&'static str> {
        if self.contains(Capabilities::DENY) {
            return vec!["deny"];
        }
        Capabilities::NAMES
            .iter()
            .filter(|(_, cap)| self.contains(*cap))
            .map(|(name, _)| *name)
            .collect()
    }
}

impl fmt::Debug for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_unions_and_names() {
        let read_list = Capabilities::parse("read")
            .unwrap()
            .union(Capabilities::parse("list").unwrap());
        assert!(read_list.contains(Capabilities::READ));
        assert!(!read_list.contains(Capabilities::UPDATE));
        assert_eq!(read_list.names(), vec!["read", "list"]);
        assert_eq!(read_list.union(Capabilities::DENY).names(), vec!["deny"]);
        assert!(Capabilities::parse("admin").is_none());
    }
}
