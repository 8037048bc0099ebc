//! API keys of a simulated project: legacy `anon` / `service_role` HS256 JWTs signed with the
//! project's own JWT secret (as the vendor's are), which can be switched off together, and the
//! newer `sb_publishable_…` / `sb_secret_…` keys, of which a project may have several.

use anyhow::{Context, Result};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Ten years, like the vendor's legacy keys (they are long-lived by design).
const LEGACY_KEY_LIFETIME_SECS: i64 = 10 * 365 * 24 * 3600;

/// Characters of a secret key shown when it is not revealed (after `sb_secret_`).
const SECRET_VISIBLE: usize = 4;

/// `type` of a new-style key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    Publishable,
    Secret,
}

impl KeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Publishable => "publishable",
            KeyKind::Secret => "secret",
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            KeyKind::Publishable => "sb_publishable_",
            KeyKind::Secret => "sb_secret_",
        }
    }
}

/// One `sb_publishable_…` or `sb_secret_…` key.
#[derive(Clone, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub kind: KeyKind,
    pub api_key: String,
    pub description: Option<String>,
    /// For secret keys, the claims the gateway mints for requests made with it (the vendor's
    /// default is `{"role": "service_role"}`).
    pub secret_jwt_template: Option<Value>,
    pub inserted_at: String,
    pub updated_at: String,
}

impl ApiKey {
    pub fn new(
        kind: KeyKind,
        name: &str,
        description: Option<String>,
        secret_jwt_template: Option<Value>,
        now: &str,
    ) -> ApiKey {
        let template = match kind {
            KeyKind::Publishable => None,
            KeyKind::Secret => {
                Some(secret_jwt_template.unwrap_or_else(|| json!({ "role": "service_role" })))
            }
        };
        ApiKey {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.to_owned(),
            kind,
            api_key: format!("{}{}", kind.prefix(), random_token(32)),
            description,
            secret_jwt_template: template,
            inserted_at: now.to_owned(),
            updated_at: now.to_owned(),
        }
    }

    /// The Postgres role a request made with this key runs as.
    fn role(&self) -> String {
        match self.kind {
            KeyKind::Publishable => "anon".into(),
            KeyKind::Secret => self
                .secret_jwt_template
                .as_ref()
                .and_then(|t| t.get("role"))
                .and_then(Value::as_str)
                .unwrap_or("service_role")
                .to_owned(),
        }
    }

    /// `ApiKeyResponse`. Without `reveal` a secret key shows only its prefix.
    pub fn to_response(&self, reveal: bool) -> Value {
        let (shown, prefix) = match self.kind {
            KeyKind::Publishable => (self.api_key.clone(), Value::Null),
            KeyKind::Secret => {
                let visible: String = self
                    .api_key
                    .chars()
                    .take(KeyKind::Secret.prefix().len() + SECRET_VISIBLE)
                    .collect();
                let shown = if reveal {
                    self.api_key.clone()
                } else {
                    format!("{visible}{}", "·".repeat(28))
                };
                (shown, json!(visible))
            }
        };
        json!({
            "name": self.name, "api_key": shown, "id": self.id, "type": self.kind.as_str(),
            "prefix": prefix, "description": self.description, "hash": null,
            "secret_jwt_template": self.secret_jwt_template,
            "inserted_at": self.inserted_at, "updated_at": self.updated_at,
        })
    }
}

/// Every key of a project.
#[derive(Clone, Serialize, Deserialize)]
#[serde(from = "KeysOnDisk")]
pub struct ProjectKeys {
    pub jwt_secret: String,
    /// The legacy keys always exist (they are signed with the project's JWT secret); whether
    /// the platform accepts them is `legacy_enabled`.
    pub anon: String,
    pub service_role: String,
    pub legacy_enabled: bool,
    /// Publishable and secret keys, oldest first.
    pub keys: Vec<ApiKey>,
}

/// What a state file may hold: the current shape, or the first one (one publishable and one
/// secret key in fixed fields, legacy keys always on).
#[derive(Deserialize)]
#[serde(untagged)]
enum KeysOnDisk {
    Current {
        jwt_secret: String,
        anon: String,
        service_role: String,
        legacy_enabled: bool,
        keys: Vec<ApiKey>,
    },
    First {
        jwt_secret: String,
        anon: String,
        service_role: String,
        publishable: String,
        secret: String,
        publishable_id: String,
        secret_id: String,
        created_at: String,
    },
}

impl From<KeysOnDisk> for ProjectKeys {
    fn from(k: KeysOnDisk) -> ProjectKeys {
        match k {
            KeysOnDisk::Current {
                jwt_secret,
                anon,
                service_role,
                legacy_enabled,
                keys,
            } => ProjectKeys {
                jwt_secret,
                anon,
                service_role,
                legacy_enabled,
                keys,
            },
            KeysOnDisk::First {
                jwt_secret,
                anon,
                service_role,
                publishable,
                secret,
                publishable_id,
                secret_id,
                created_at,
            } => {
                let key = |id: String, kind: KeyKind, api_key: String, desc: &str| ApiKey {
                    id,
                    name: "default".into(),
                    kind,
                    api_key,
                    description: Some(desc.into()),
                    secret_jwt_template: (kind == KeyKind::Secret)
                        .then(|| json!({ "role": "service_role" })),
                    inserted_at: created_at.clone(),
                    updated_at: created_at.clone(),
                };
                ProjectKeys {
                    jwt_secret,
                    anon,
                    service_role,
                    legacy_enabled: true,
                    keys: vec![
                        key(
                            publishable_id,
                            KeyKind::Publishable,
                            publishable,
                            "Default publishable key",
                        ),
                        key(secret_id, KeyKind::Secret, secret, "Default secret key"),
                    ],
                }
            }
        }
    }
}

// Secrets must never reach logs through a stray `{:?}`.
impl std::fmt::Debug for ProjectKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProjectKeys { .. }")
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ApiKey {{ name: {:?}, kind: {:?}, .. }}",
            self.name, self.kind
        )
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

/// What the platform's gateway makes of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyCheck {
    /// A key of this project, acting as this role.
    Role(String),
    /// A legacy key of this project while legacy keys are switched off.
    LegacyDisabled,
    /// Not a key of this project.
    Unknown,
}

fn random_token(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Whether a token has the shape of a JWT (three dot-separated parts).
pub fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3 && !token.starts_with("sb_")
}

impl ProjectKeys {
    /// Keys of a new project: one publishable and one secret key named `default`, and legacy
    /// keys that are on only when `legacy_enabled`.
    pub fn generate(project_ref: &str, now: &str, legacy_enabled: bool) -> Result<ProjectKeys> {
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
            legacy_enabled,
            keys: vec![
                ApiKey::new(
                    KeyKind::Publishable,
                    "default",
                    Some("Default publishable key".into()),
                    None,
                    now,
                ),
                ApiKey::new(
                    KeyKind::Secret,
                    "default",
                    Some("Default secret key".into()),
                    None,
                    now,
                ),
            ],
            jwt_secret,
        })
    }

    /// Every secret value (for the secret scans of tests).
    pub fn all_secrets(&self) -> Vec<String> {
        let mut out = vec![
            self.jwt_secret.clone(),
            self.anon.clone(),
            self.service_role.clone(),
        ];
        out.extend(
            self.keys
                .iter()
                .filter(|k| k.kind == KeyKind::Secret)
                .map(|k| k.api_key.clone()),
        );
        out
    }

    /// The first key of a kind (tests use it to reach a project's APIs).
    pub fn first(&self, kind: KeyKind) -> Option<&ApiKey> {
        self.keys.iter().find(|k| k.kind == kind)
    }

    /// What the gateway makes of `key`.
    pub fn check(&self, key: &str) -> KeyCheck {
        if key.starts_with("sb_") {
            return match self.keys.iter().find(|k| k.api_key == key) {
                Some(k) => KeyCheck::Role(k.role()),
                None => KeyCheck::Unknown,
            };
        }
        if (key == self.anon || key == self.service_role) && !self.legacy_enabled {
            return KeyCheck::LegacyDisabled;
        }
        let mut v = Validation::new(Algorithm::HS256);
        v.set_required_spec_claims(&["exp"]);
        match jsonwebtoken::decode::<LegacyClaims>(
            key,
            &DecodingKey::from_secret(self.jwt_secret.as_bytes()),
            &v,
        ) {
            Ok(data) => KeyCheck::Role(data.claims.role),
            Err(_) => KeyCheck::Unknown,
        }
    }

    /// `ApiKeyResponse[]` as the vendor lists them: the legacy keys first while they are on
    /// (always whole, like the vendor's), then the others.
    pub fn to_api_key_responses(&self, reveal: bool) -> Vec<Value> {
        let legacy = |name: &str, key: &str, desc: &str| {
            json!({
                "name": name, "api_key": key, "id": name, "type": "legacy", "prefix": null,
                "description": desc, "hash": null, "secret_jwt_template": null,
                "inserted_at": null, "updated_at": null,
            })
        };
        let mut out = Vec::new();
        if self.legacy_enabled {
            out.push(legacy(
                "anon",
                &self.anon,
                "Legacy anon API key: safe to use in a browser if you have enabled Row Level Security.",
            ));
            out.push(legacy(
                "service_role",
                &self.service_role,
                "Legacy service_role API key: has the ability to bypass Row Level Security.",
            ));
        }
        out.extend(self.keys.iter().map(|k| k.to_response(reveal)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_verify_with_their_own_secret_only() {
        let k =
            ProjectKeys::generate("abcdefghijklmnopqrst", "2026-01-01T00:00:00Z", true).unwrap();
        let role = |s: &str| KeyCheck::Role(s.into());
        assert_eq!(k.check(&k.anon), role("anon"));
        assert_eq!(k.check(&k.service_role), role("service_role"));
        let secret = k.first(KeyKind::Secret).unwrap().api_key.clone();
        let publishable = k.first(KeyKind::Publishable).unwrap().api_key.clone();
        assert_eq!(k.check(&secret), role("service_role"));
        assert_eq!(k.check(&publishable), role("anon"));
        let other =
            ProjectKeys::generate("abcdefghijklmnopqrst", "2026-01-01T00:00:00Z", true).unwrap();
        assert_eq!(k.check(&other.service_role), KeyCheck::Unknown);
        assert_eq!(
            k.check(&other.first(KeyKind::Secret).unwrap().api_key),
            KeyCheck::Unknown
        );
        assert!(!format!("{k:?}").contains(&k.jwt_secret));
        let masked = k.to_api_key_responses(false);
        assert!(!masked.iter().any(|v| v["api_key"] == secret.as_str()));
        assert!(masked.iter().any(|v| v["api_key"] == publishable.as_str()));
    }

    #[test]
    fn disabled_legacy_keys_are_refused_and_not_listed() {
        let k =
            ProjectKeys::generate("abcdefghijklmnopqrst", "2026-01-01T00:00:00Z", false).unwrap();
        assert_eq!(k.check(&k.anon), KeyCheck::LegacyDisabled);
        assert_eq!(k.check(&k.service_role), KeyCheck::LegacyDisabled);
        let listed = k.to_api_key_responses(true);
        assert_eq!(listed.len(), 2);
        assert!(listed.iter().all(|v| v["type"] != "legacy"));
    }

    #[test]
    fn the_first_state_format_still_loads() {
        let old = json!({
            "jwt_secret": "s", "anon": "a", "service_role": "r",
            "publishable": "sb_publishable_x", "secret": "sb_secret_y",
            "publishable_id": "p-id", "secret_id": "s-id", "created_at": "2026-01-01T00:00:00Z",
        });
        let k: ProjectKeys = serde_json::from_value(old).unwrap();
        assert!(k.legacy_enabled);
        assert_eq!(k.keys.len(), 2);
        assert_eq!(k.first(KeyKind::Secret).unwrap().api_key, "sb_secret_y");
        let again: ProjectKeys = serde_json::from_value(serde_json::to_value(&k).unwrap()).unwrap();
        assert_eq!(again.keys.len(), 2);
    }
}
