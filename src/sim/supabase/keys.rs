//! API keys of a simulated project: legacy `anon` / `service_role` HS256 JWTs signed with the
//! project's own JWT secret (as the vendor's are), and the newer `sb_publishable_…` /
//! `sb_secret_…` keys.

use anyhow::{Context, Result};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Ten years, like the vendor's legacy keys (they are long-lived by design).
const LEGACY_KEY_LIFETIME_SECS: i64 = 10 * 365 * 24 * 3600;

#[derive(Clone, Serialize, Deserialize)]
pub struct ProjectKeys {
    pub jwt_secret: String,
    pub anon: String,
    pub service_role: String,
    pub publishable: String,
    pub secret: String,
    pub publishable_id: String,
    pub secret_id: String,
    pub created_at: String,
}

// Secrets must never reach logs through a stray `{:?}`.
impl std::fmt::Debug for ProjectKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProjectKeys { .. }")
    }
}

/// Claims of a legacy key, as in the vendor's.
#[derive(Debug, Serialize, Deserialize)]
pub struct LegacyClaims {
    pub iss: String,
    #[serde(rename = "ref")]
    pub project_ref: String,
    pub role: String,
    pub iat: i64,
    pub exp: i64,
}

fn random_token(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect()
}

impl ProjectKeys {
    pub fn generate(project_ref: &str, now: &str) -> Result<ProjectKeys> {
        let jwt_secret = random_token(40);
        let iat = chrono::Utc::now().timestamp();
        let sign = |role: &str| -> Result<String> {
            let claims = LegacyClaims {
                iss: "supabase".into(),
                project_ref: project_ref.into(),
                role: role.into(),
                iat,
                exp: iat + LEGACY_KEY_LIFETIME_SECS,
            };
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &claims,
                &EncodingKey::from_secret(jwt_secret.as_bytes()),
            )
            .context("signing a project API key")
        };
        Ok(ProjectKeys {
            anon: sign("anon")?,
            service_role: sign("service_role")?,
            publishable: format!("sb_publishable_{}", random_token(22)),
            secret: format!("sb_secret_{}", random_token(22)),
            publishable_id: uuid::Uuid::new_v4().to_string(),
            secret_id: uuid::Uuid::new_v4().to_string(),
            created_at: now.into(),
            jwt_secret,
        })
    }

    /// The role a key grants on this project's Storage API, if it is one of its keys.
    pub fn role_of(&self, key: &str) -> Option<String> {
        if key.starts_with("sb_") {
            return if key == self.secret {
                Some("service_role".into())
            } else if key == self.publishable {
                Some("anon".into())
            } else {
                None
            };
        }
        let mut v = Validation::new(Algorithm::HS256);
        v.set_required_spec_claims(&["exp"]);
        let data = jsonwebtoken::decode::<LegacyClaims>(
            key,
            &DecodingKey::from_secret(self.jwt_secret.as_bytes()),
            &v,
        )
        .ok()?;
        Some(data.claims.role)
    }

    /// `ApiKeyResponse[]` as the vendor lists them. Without `reveal` the new secret key is
    /// shown only by its prefix (the legacy JWTs are always returned whole, like the vendor).
    pub fn to_api_key_responses(&self, reveal: bool) -> Vec<Value> {
        let secret_shown = if reveal {
            self.secret.clone()
        } else {
            let visible: String = self.secret.chars().take("sb_secret_".len() + 4).collect();
            format!("{visible}{}", "·".repeat(28))
        };
        let legacy = |name: &str, key: &str, desc: &str| {
            json!({
                "name": name, "api_key": key, "id": name, "type": "legacy", "prefix": null,
                "description": desc, "hash": null, "secret_jwt_template": null,
                "inserted_at": null, "updated_at": null,
            })
        };
        vec![
            legacy(
                "anon",
                &self.anon,
                "Legacy anon API key: safe to use in a browser if you have enabled Row Level Security.",
            ),
            legacy(
                "service_role",
                &self.service_role,
                "Legacy service_role API key: has the ability to bypass Row Level Security.",
            ),
            json!({
                "name": "default", "api_key": self.publishable, "id": self.publishable_id,
                "type": "publishable", "prefix": null, "description": "Default publishable key",
                "hash": null, "secret_jwt_template": null,
                "inserted_at": self.created_at, "updated_at": self.created_at,
            }),
            json!({
                "name": "default", "api_key": secret_shown, "id": self.secret_id,
                "type": "secret", "prefix": self.secret.chars().take("sb_secret_".len() + 4).collect::<String>(),
                "description": "Default secret key", "hash": null,
                "secret_jwt_template": { "role": "service_role" },
                "inserted_at": self.created_at, "updated_at": self.created_at,
            }),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_verify_with_their_own_secret_only() {
        let k = ProjectKeys::generate("abcdefghijklmnopqrst", "2026-01-01T00:00:00Z").unwrap();
        assert_eq!(k.role_of(&k.anon).as_deref(), Some("anon"));
        assert_eq!(k.role_of(&k.service_role).as_deref(), Some("service_role"));
        assert_eq!(k.role_of(&k.secret).as_deref(), Some("service_role"));
        let other = ProjectKeys::generate("abcdefghijklmnopqrst", "2026-01-01T00:00:00Z").unwrap();
        assert_eq!(k.role_of(&other.service_role), None);
        assert!(!format!("{k:?}").contains(&k.jwt_secret));
        let masked = k.to_api_key_responses(false);
        assert!(!masked.iter().any(|v| v["api_key"] == k.secret.as_str()));
    }
}
