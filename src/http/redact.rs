//! Redaction of secrets from text that may reach a log, an error message or a terminal.
//!
//! Two layers, because neither alone is enough:
//! - exact values we know are secret (the access token, a service-role key, a `db_pass` we sent)
//!   are replaced wherever they appear, whatever surrounds them;
//! - shapes that are secret whatever their value (`Bearer …`, JWTs, `sbp_…` / `sb_secret_…`
//!   tokens, `"db_pass": "…"` and other password-like fields) catch what a vendor echoes back
//!   that we did not know about (e.g. a message quoting a header).
//!
//! Written by hand rather than with `regex`: the rules are few and simple, and the crate
//! is not otherwise a dependency.

/// What a redacted value is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// Field names whose value is a secret when they appear as `name: value`, `name=value` or
/// `"name": "value"`. Compared case-insensitively, as whole words.
const SECRET_FIELDS: &[&str] = &[
    "db_pass",
    "password",
    "passwd",
    "secret",
    "token",
    "access_token",
    "refresh_token",
    "apikey",
    "api_key",
    "service_role_key",
    "authorization",
    "smtp_pass",
];

/// Token prefixes that are credentials whatever follows (Supabase personal access tokens and
/// secret keys).
const SECRET_PREFIXES: &[&str] = &["sbp_", "sb_secret_"];

/// Exact secret values shorter than this are not scrubbed by value: replacing every `a` in a
/// message would destroy it, and such short values are not real credentials anyway.
const MIN_SECRET_LEN: usize = 6;

/// Remove every known secret value and every secret-shaped token from `text`.
pub fn redact(text: &str, known: &[&str]) -> String {
    let mut out = text.to_owned();
    // Longest first, so a secret that contains another is removed whole.
    let mut known: Vec<&str> = known
        .iter()
        .copied()
        .filter(|s| s.len() >= MIN_SECRET_LEN)
        .collect();
    known.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for secret in known {
        if out.contains(secret) {
            out = out.replace(secret, REDACTED);
        }
    }
    let out = redact_bearer(&out);
    let out = redact_fields(&out);
    redact_tokens(&out)
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// `Bearer <anything up to whitespace or a quote>` → `Bearer [REDACTED]`.
fn redact_bearer(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while let Some(pos) = lower[i..].find("bearer ") {
        let start = i + pos + "bearer ".len();
        out.push_str(&text[i..start]);
        let rest = &text[start..];
        let end = rest
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | ';'))
            .unwrap_or(rest.len());
        if end > 0 && &rest[..end] != REDACTED {
            out.push_str(REDACTED);
        } else {
            out.push_str(&rest[..end]);
        }
        i = start + end;
    }
    out.push_str(&text[i..]);
    out
}

/// `name: value`, `name=value`, `"name": "value"` for the names in [`SECRET_FIELDS`].
fn redact_fields(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < text.len() {
        let hit = SECRET_FIELDS.iter().find(|f| {
            lower[i..].starts_with(**f)
                // Whole word: not preceded or followed by an identifier character.
                && (i == 0 || !is_ident(bytes[i - 1]))
                && bytes.get(i + f.len()).is_none_or(|b| !is_ident(*b))
        });
        let Some(field) = hit else {
            i += text[i..].chars().next().map_or(1, char::len_utf8);
            continue;
        };
        let mut j = i + field.len();
        // Optional closing quote of a JSON key, then spaces, then `:` or `=`.
        if matches!(bytes.get(j), Some(b'"' | b'\'')) {
            j += 1;
        }
        while matches!(bytes.get(j), Some(b' ' | b'\t')) {
            j += 1;
        }
        if !matches!(bytes.get(j), Some(b':' | b'=')) {
            i += field.len();
            continue;
        }
        j += 1;
        while matches!(bytes.get(j), Some(b' ' | b'\t')) {
            j += 1;
        }
        let (value_start, value_end) = match bytes.get(j) {
            Some(q @ (b'"' | b'\'')) => {
                // Quoted: up to the matching unescaped quote.
                let mut k = j + 1;
                while k < bytes.len() && bytes[k] != *q {
                    k += if bytes[k] == b'\\' { 2 } else { 1 };
                }
                (j + 1, k.min(bytes.len()))
            }
            Some(_) => {
                let rest = &text[j..];
                let end = rest
                    .find(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | '&' | '}' | ')'))
                    .unwrap_or(rest.len());
                (j, j + end)
            }
            None => (j, j),
        };
        // Nothing to hide (an empty value, `null`, or already redacted).
        let value = &text[value_start..value_end];
        if value.is_empty() || value == "null" || value == REDACTED {
            i = value_end.max(i + 1);
            continue;
        }
        out.push_str(&text[copied..value_start]);
        out.push_str(REDACTED);
        copied = value_end;
        i = value_end;
    }
    out.push_str(&text[copied..]);
    out
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Whole tokens that are credentials by their shape: JWTs and known secret prefixes.
fn redact_tokens(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let start = rest.find(is_token_char).unwrap_or(rest.len());
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let end = rest.find(|c: char| !is_token_char(c)).unwrap_or(rest.len());
        let token = &rest[..end];
        if looks_secret(token) {
            out.push_str(REDACTED);
        } else {
            out.push_str(token);
        }
        rest = &rest[end..];
    }
    out
}

fn looks_secret(token: &str) -> bool {
    if SECRET_PREFIXES
        .iter()
        .any(|p| token.starts_with(p) && token.len() > p.len() + 4)
    {
        return true;
    }
    // A JWT: three base64url parts, the first a JSON header (`eyJ` = `{"`).
    token.starts_with("eyJ") && token.split('.').filter(|p| !p.is_empty()).count() >= 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_and_shapes_are_removed() {
        let t = redact(
            r#"Authorization: Bearer abc.def and {"db_pass":"hunter22x","name":"n"} key=eyJhbGciOi.eyJyb2xl.sig sbp_0123456789abcdef"#,
            &["hunter22x"],
        );
        assert!(!t.contains("abc.def"), "{t}");
        assert!(!t.contains("hunter22x"), "{t}");
        assert!(!t.contains("eyJhbGciOi"), "{t}");
        assert!(!t.contains("sbp_0123"), "{t}");
        assert!(t.contains(r#""name":"n""#), "{t}");
    }

    #[test]
    fn plain_text_is_untouched() {
        let s = "relation \"tokens\" does not exist; password reset is off";
        assert_eq!(redact(s, &["zz"]), s);
    }

    #[test]
    fn field_forms() {
        assert_eq!(redact("password=abc123 x", &[]), "password=[REDACTED] x");
        assert_eq!(
            redact("'apikey': 'k-1'", &[]),
            format!("'apikey': '{REDACTED}'")
        );
        assert_eq!(redact("db_pass: null", &[]), "db_pass: null");
    }
}
