//! Keeping secrets out of fleet files, and resolving `${env:NAME}` references.
//!
//! Fleet files are reviewed in pull requests and live in git forever, so a value that looks like
//! a credential is refused wherever it appears. The message never repeats the value.

/// Why `value` (found under a key named `key`) looks like a secret, if it does.
pub fn looks_like_secret(key: &str, value: &str) -> Option<&'static str> {
    let v = value.trim();
    if env_ref(v).is_some() {
        return None;
    }
    if is_jwt(v) {
        return Some("a JWT (such as a Supabase anon or service_role key)");
    }
    if v.starts_with("sbp_") && v.len() >= 20 {
        return Some("a Supabase access token (sbp_…)");
    }
    if v.starts_with("sb_secret_") {
        return Some("a Supabase secret key (sb_secret_…)");
    }
    if v.contains("-----BEGIN") && v.contains("PRIVATE KEY") {
        return Some("a private key");
    }
    let k = key.to_ascii_uppercase();
    let secret_name = [
        "SECRET",
        "PASSWORD",
        "PASSWD",
        "PRIVATE_KEY",
        "SERVICE_ROLE",
        "API_TOKEN",
    ]
    .iter()
    .any(|w| k.contains(w));
    if secret_name && !v.is_empty() {
        return Some("a value under a secret-sounding name");
    }
    None
}

fn is_jwt(v: &str) -> bool {
    let parts: Vec<&str> = v.split('.').collect();
    parts.len() == 3
        && parts[0].starts_with("eyJ")
        && parts[..2].iter().all(|p| p.len() >= 4)
        && parts.iter().all(|p| {
            p.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// Environment variables that hold intelli's own credentials: never a source for a build-time
/// value (those are published in the site's JavaScript).
pub fn is_credential_variable(name: &str) -> bool {
    matches!(
        name,
        "SUPABASE_ACCESS_TOKEN"
            | "SUPABASE_DB_PASSWORD"
            | "CLOUDFLARE_API_TOKEN"
            | "CLOUDFLARE_API_KEY"
            | "CF_API_TOKEN"
            | "INTELLI_DATABASE_URL_TEMPLATE"
            | "DATABASE_URL"
    )
}

/// `Some(NAME)` when `value` is exactly `${env:NAME}`.
pub fn env_ref(value: &str) -> Option<&str> {
    let name = value.strip_prefix("${env:")?.strip_suffix('}')?;
    valid_env_name(name).then_some(name)
}

/// Whether `value` tries to be an env reference but is malformed (`${env:}`, `${ENV:x}`, `a${env:X}`).
pub fn malformed_env_ref(value: &str) -> bool {
    value.contains("${") && env_ref(value).is_none()
}

fn valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_credentials() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYW5vbiJ9.c2lnbmF0dXJlX2hlcmU";
        assert!(looks_like_secret("VITE_X", jwt).is_some());
        assert!(looks_like_secret("x", "sbp_0123456789abcdef0123456789abcdef01234567").is_some());
        assert!(looks_like_secret("x", "sb_secret_abc").is_some());
        assert!(looks_like_secret("x", "-----BEGIN RSA PRIVATE KEY-----\nabc").is_some());
        assert!(looks_like_secret("VITE_STRIPE_SECRET", "abc").is_some());
        assert!(looks_like_secret("VITE_STRIPE_SECRET", "${env:STRIPE}").is_none());
        assert!(looks_like_secret("VITE_BRAND_COLOR", "#d9480f").is_none());
        assert!(looks_like_secret("domain", "acme.example.com").is_none());
    }

    #[test]
    fn env_references() {
        assert_eq!(env_ref("${env:MY_VAR}"), Some("MY_VAR"));
        assert_eq!(env_ref("${env:}"), None);
        assert!(malformed_env_ref("${env:}"));
        assert!(malformed_env_ref("x-${env:A}"));
        assert!(malformed_env_ref("${ENV:A}"));
        assert!(!malformed_env_ref("plain"));
    }
}
