//! Beyond Vault: which entries of a LIST a token may see. Vault does not filter LIST answers (the
//! ACL check on the listed folder decides all or nothing); a recursive LIST reaches into
//! subfolders, so each entry below the listed folder is kept only if the token may `list` the
//! folder holding it. Entries directly in the listed folder pass without a check: the request's
//! own ACL check already allowed that folder.

use std::sync::Arc;

use serde_json::Map;

use super::Acl;
use crate::logical::ListFilter;
use crate::logical::Operation;

/// The filter for a LIST of `folder` (the full request path with its trailing `/`, as the ACL
/// check saw it) under `acl`.
pub fn list_filter(acl: Arc<Acl>, folder: String) -> ListFilter {
    ListFilter::new(move |entry: &str| {
        if acl.is_root() {
            return true;
        }
        // A folder entry (`y/`) is judged by the folder it sits in, like a key.
        let entry = entry.strip_suffix('/').unwrap_or(entry);
        match entry.rfind('/') {
            None => true,
            Some(slash) => acl.allows(
                Operation::List,
                &format!("{folder}{}", &entry[..=slash]),
                &Map::new(),
                false,
            ),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::parse::parse;

    fn filter(policy: &str, folder: &str) -> ListFilter {
        let acl = Acl::new(&[parse("test", policy).unwrap()]);
        list_filter(Arc::new(acl), folder.to_string())
    }

    #[test]
    fn entries_in_folders_the_token_cannot_list_are_hidden() {
        let policy = r#"
            path "secret/metadata/team/*" { capabilities = ["list", "read"] }
            path "secret/metadata/team/private/*" { capabilities = ["deny"] }
            path "secret/metadata/team/private/open/*" { capabilities = ["list"] }
            path "secret/metadata/team/readonly/*" { capabilities = ["read"] }
        "#;
        let keep = filter(policy, "secret/metadata/team/");
        for visible in ["a", "sub/", "sub/b", "sub/deeper/c", "private/open/x"] {
            assert!(keep.keeps(visible), "{visible} must be listed");
        }
        for hidden in ["private/x", "private/inner/y", "readonly/z"] {
            assert!(!keep.keeps(hidden), "{hidden} must be hidden");
        }
    }

    #[test]
    fn root_sees_everything_and_nothing_is_granted_by_default() {
        let root = list_filter(Arc::new(Acl::root()), "secret/metadata/".into());
        assert!(root.keeps("any/where/at/all"));
        let none = filter(
            r#"path "other/*" { capabilities = ["list"] }"#,
            "secret/metadata/",
        );
        assert!(
            none.keeps("top-level"),
            "the listed folder itself was checked already"
        );
        assert!(!none.keeps("nested/key"));
    }
}
