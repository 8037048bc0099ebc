//! How intelli marks the Cloudflare DNS records it owns: the record's comment says
//! `managed by intelli: <client>`, and `managed by intelli: <client>; domain active` once the
//! custom domain has been seen active (so a no-op plan need not read the domain again).
//!
//! Here rather than in `observe` because three parts rely on it: `observe` reads the "domain
//! active" mark, `plan` decides which records it may change or delete, and `apply` writes the
//! comments.

/// The comment intelli puts on the DNS records it owns.
pub fn owner_comment(client: &str) -> String {
    format!("managed by intelli: {client}")
}

/// The comment once the custom domain has been seen active.
pub fn active_comment(client: &str) -> String {
    format!("managed by intelli: {client}; domain active")
}

/// Whether `comment` marks a record as intelli's for `client`.
pub fn owned_by(comment: Option<&str>, client: &str) -> bool {
    comment.is_some_and(|c| c == owner_comment(client) || c == active_comment(client))
}

/// Whether `comment` says the client's domain was seen active.
pub fn marked_active(comment: Option<&str>, client: &str) -> bool {
    comment == Some(active_comment(client).as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ownership_is_per_client() {
        assert!(owned_by(Some(&owner_comment("acme")), "acme"));
        assert!(owned_by(Some(&active_comment("acme")), "acme"));
        assert!(!owned_by(Some(&owner_comment("acme")), "globex"));
        assert!(!owned_by(Some("managed by someone else"), "acme"));
        assert!(!owned_by(None, "acme"));
        assert!(marked_active(Some(&active_comment("acme")), "acme"));
        assert!(!marked_active(Some(&owner_comment("acme")), "acme"));
    }
}
