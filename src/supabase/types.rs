//! Typed requests and responses of the Supabase Management API, named as in the vendor's
//! OpenAPI document (`V1CreateProjectBody`, `V1ProjectResponse`, ...).

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// A project's lifecycle state (`V1ProjectResponse.status`). Values the spec does not list
/// (the vendor adds some over time) are kept in [`ProjectStatus::Unknown`] rather than failing
/// the whole response.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ProjectStatus {
    /// Paused.
    Inactive,
    ActiveHealthy,
    ActiveUnhealthy,
    ComingUp,
    /// The vendor's own `UNKNOWN` value.
    UnknownStatus,
    GoingDown,
    InitFailed,
    Removed,
    Restoring,
    Upgrading,
    Pausing,
    RestoreFailed,
    Restarting,
    PauseFailed,
    Resizing,
    /// A value this version does not know.
    Unknown(String),
}

impl ProjectStatus {
    const TABLE: &'static [(&'static str, ProjectStatus)] = &[
        ("INACTIVE", ProjectStatus::Inactive),
        ("ACTIVE_HEALTHY", ProjectStatus::ActiveHealthy),
        ("ACTIVE_UNHEALTHY", ProjectStatus::ActiveUnhealthy),
        ("COMING_UP", ProjectStatus::ComingUp),
        ("UNKNOWN", ProjectStatus::UnknownStatus),
        ("GOING_DOWN", ProjectStatus::GoingDown),
        ("INIT_FAILED", ProjectStatus::InitFailed),
        ("REMOVED", ProjectStatus::Removed),
        ("RESTORING", ProjectStatus::Restoring),
        ("UPGRADING", ProjectStatus::Upgrading),
        ("PAUSING", ProjectStatus::Pausing),
        ("RESTORE_FAILED", ProjectStatus::RestoreFailed),
        ("RESTARTING", ProjectStatus::Restarting),
        ("PAUSE_FAILED", ProjectStatus::PauseFailed),
        ("RESIZING", ProjectStatus::Resizing),
    ];

    pub fn parse(s: &str) -> ProjectStatus {
        Self::TABLE
            .iter()
            .find(|(name, _)| *name == s)
            .map(|(_, st)| st.clone())
            .unwrap_or_else(|| ProjectStatus::Unknown(s.to_owned()))
    }

    /// The vendor's spelling.
    pub fn as_str(&self) -> &str {
        match self {
            ProjectStatus::Unknown(s) => s,
            known => Self::TABLE
                .iter()
                .find(|(_, st)| st == known)
                .map_or("UNKNOWN", |(name, _)| name),
        }
    }

    /// Ready to be configured.
    pub fn is_healthy(&self) -> bool {
        *self == ProjectStatus::ActiveHealthy
    }

    /// Which of the few situations intelli tells apart this status is in.
    pub fn phase(&self) -> ProjectPhase {
        match self {
            ProjectStatus::ActiveHealthy => ProjectPhase::Healthy,
            ProjectStatus::Inactive | ProjectStatus::Pausing => ProjectPhase::Paused,
            ProjectStatus::InitFailed | ProjectStatus::RestoreFailed | ProjectStatus::PauseFailed => {
                ProjectPhase::Failed
            }
            ProjectStatus::Removed | ProjectStatus::GoingDown => ProjectPhase::Gone,
            ProjectStatus::ActiveUnhealthy
            | ProjectStatus::ComingUp
            | ProjectStatus::UnknownStatus
            | ProjectStatus::Restoring
            | ProjectStatus::Upgrading
            | ProjectStatus::Restarting
            | ProjectStatus::Resizing
            // A status this version does not know is waited on, like the vendor's own UNKNOWN.
            | ProjectStatus::Unknown(_) => ProjectPhase::Starting,
        }
    }

    /// Removed or being removed: such a project is no longer any client's.
    pub fn is_gone(&self) -> bool {
        self.phase() == ProjectPhase::Gone
    }

    /// Paused, or pausing.
    pub fn is_paused(&self) -> bool {
        self.phase() == ProjectPhase::Paused
    }

    /// A state that ends without us doing anything (the terraform provider keeps polling
    /// through these). Paused (`INACTIVE`) and the failures are not transitional.
    pub fn is_transitional(&self) -> bool {
        matches!(
            self,
            ProjectStatus::ActiveUnhealthy
                | ProjectStatus::ComingUp
                | ProjectStatus::UnknownStatus
                | ProjectStatus::Restoring
                | ProjectStatus::Upgrading
                | ProjectStatus::Pausing
                | ProjectStatus::Restarting
                | ProjectStatus::Resizing
        )
    }
}

/// The situations of a project that intelli treats differently (see [`ProjectStatus::phase`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProjectPhase {
    /// Ready to be configured.
    Healthy,
    /// On its way to healthy (or another settled state) without anyone acting.
    Starting,
    /// Paused or pausing: only a restore brings it back.
    Paused,
    /// A failure that waiting will not end.
    Failed,
    /// Removed or being removed.
    Gone,
}

impl fmt::Display for ProjectStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ProjectStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ProjectStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(ProjectStatus::parse(&String::deserialize(d)?))
    }
}

/// A project, from create (`V1ProjectResponse`), get (`V1ProjectWithDatabaseResponse`) or the
/// organization list (whose items have no `id`, no `organization_slug` and `inserted_at` in
/// place of `created_at`; the client fills those in).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    /// Deprecated by the vendor in favour of `ref`, and equal to it.
    #[serde(default)]
    pub id: String,
    #[serde(rename = "ref")]
    pub project_ref: String,
    pub name: String,
    #[serde(default)]
    pub organization_slug: Option<String>,
    pub region: String,
    pub status: ProjectStatus,
    #[serde(default, alias = "inserted_at")]
    pub created_at: Option<String>,
}

/// An item of `OrganizationProjectsResponse.projects`.
#[derive(Debug, Deserialize)]
pub(crate) struct OrgProjectItem {
    #[serde(rename = "ref")]
    pub project_ref: String,
    pub name: String,
    pub region: String,
    pub status: ProjectStatus,
    #[serde(default)]
    pub inserted_at: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct OrgProjectsPage {
    pub projects: Vec<OrgProjectItem>,
    pub pagination: Pagination,
}

#[derive(Deserialize)]
pub(crate) struct Pagination {
    pub count: u64,
}

/// What to create (`V1CreateProjectBody`). The password is a secret from the moment it is
/// made; Debug shows it as redacted.
#[derive(Clone, Debug)]
pub struct CreateProjectRequest {
    pub name: String,
    pub organization_slug: String,
    pub db_pass: SecretString,
    /// A specific region code (`eu-west-2`), sent as `region_selection: {type: specific}`.
    pub region: String,
    /// `nano`, `micro`, `small`, ...; the vendor's smallest when absent.
    pub desired_instance_size: Option<String>,
}

/// The wire form of [`CreateProjectRequest`]; only built at send time.
#[derive(Serialize)]
pub(crate) struct CreateProjectBody<'a> {
    pub name: &'a str,
    pub organization_slug: &'a str,
    pub db_pass: &'a str,
    pub region_selection: RegionSelection<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub desired_instance_size: Option<&'a str>,
}

#[derive(Serialize)]
pub(crate) struct RegionSelection<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub code: &'a str,
}

impl CreateProjectRequest {
    pub(crate) fn body(&self) -> CreateProjectBody<'_> {
        CreateProjectBody {
            name: &self.name,
            organization_slug: &self.organization_slug,
            db_pass: self.db_pass.expose_secret(),
            region_selection: RegionSelection {
                kind: "specific",
                code: &self.region,
            },
            desired_instance_size: self.desired_instance_size.as_deref(),
        }
    }

    /// The JSON body as sent (for contract tests). Contains the password: do not print it.
    pub fn to_wire_json(&self) -> Value {
        serde_json::to_value(self.body()).unwrap_or(Value::Null)
    }
}

/// Which key the site's browser code gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BrowserKeyKind {
    /// An `sb_publishable_…` key.
    Publishable,
    /// The legacy `anon` JWT.
    LegacyAnon,
}

/// Which key server calls (Storage) use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ServerKeyKind {
    /// An `sb_secret_…` key whose `secret_jwt_template.role` is `service_role`.
    Secret,
    /// The legacy `service_role` JWT.
    LegacyServiceRole,
}

/// A project's keys as intelli picks them, like the Supabase CLI: the publishable key for the
/// browser (else the legacy `anon` key), a secret key acting as `service_role` for server
/// calls (else the legacy `service_role` key). The values stay secrets; `Debug` hides them.
#[derive(Clone, Debug)]
pub struct ApiKeys {
    pub browser: Option<(BrowserKeyKind, SecretString)>,
    pub server: Option<(ServerKeyKind, SecretString)>,
    /// The project has a publishable key.
    pub has_publishable: bool,
    /// The project has a secret key acting as `service_role`.
    pub has_service_secret: bool,
    /// The listing holds legacy keys (a project whose legacy keys are off may list none).
    pub has_legacy: bool,
}

impl ApiKeys {
    /// Pick from `GET …/api-keys?reveal=true`. Among several keys of a kind the first listed
    /// wins (the vendor lists oldest first), so the choice is stable across runs.
    pub(crate) fn pick(items: &[ApiKeyItem]) -> ApiKeys {
        let value = |k: &ApiKeyItem| {
            k.api_key
                .as_deref()
                // A secret key read without `reveal` is masked: never use that as a key.
                .filter(|v| !v.is_empty() && !v.contains('\u{b7}'))
                .map(|v| SecretString::from(v.to_owned()))
        };
        fn kind(k: &ApiKeyItem) -> Option<&str> {
            k.kind.as_deref()
        }
        let publishable = items
            .iter()
            .filter(|k| kind(k) == Some("publishable"))
            .find_map(value);
        let secret = items
            .iter()
            .filter(|k| kind(k) == Some("secret") && k.acts_as_service_role())
            .find_map(value);
        // Legacy keys by name; `type` is absent on older answers, so only an explicit
        // non-legacy type is rejected.
        let legacy = |name: &str| {
            items
                .iter()
                .filter(|k| k.name == name && kind(k).is_none_or(|t| t == "legacy"))
                .find_map(value)
        };
        let (anon, service_role) = (legacy("anon"), legacy("service_role"));
        ApiKeys {
            has_publishable: publishable.is_some(),
            has_service_secret: secret.is_some(),
            has_legacy: anon.is_some() || service_role.is_some(),
            browser: publishable
                .map(|k| (BrowserKeyKind::Publishable, k))
                .or(anon.map(|k| (BrowserKeyKind::LegacyAnon, k))),
            server: secret
                .map(|k| (ServerKeyKind::Secret, k))
                .or(service_role.map(|k| (ServerKeyKind::LegacyServiceRole, k))),
        }
    }
}

impl ApiKeys {
    /// The browser key, or why there is none.
    pub fn browser_key(&self) -> Result<&SecretString, &'static str> {
        self.browser.as_ref().map(|(_, k)| k).ok_or(
            "the project has no publishable key and no legacy anon key (plan proposes creating a publishable key)",
        )
    }

    /// The key for server calls, or why there is none.
    pub fn server_key(&self) -> Result<&SecretString, &'static str> {
        self.server.as_ref().map(|(_, k)| k).ok_or(
            "the project has no secret key acting as service_role and no legacy service_role key \
             (a plan without --skip-frontend proposes creating a secret key)",
        )
    }
}

/// An item of `GET /v1/projects/{ref}/api-keys` (`ApiKeyResponse`).
#[derive(Deserialize)]
pub(crate) struct ApiKeyItem {
    pub name: String,
    #[serde(default)]
    pub api_key: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub secret_jwt_template: Option<Value>,
}

impl ApiKeyItem {
    fn acts_as_service_role(&self) -> bool {
        self.secret_jwt_template
            .as_ref()
            .and_then(|t| t.get("role"))
            .and_then(Value::as_str)
            == Some("service_role")
    }
}

/// `LegacyApiKeysResponse`.
#[derive(Deserialize)]
pub(crate) struct LegacyApiKeys {
    pub enabled: bool,
}

/// `type` of a key intelli creates (`CreateApiKeyBody.type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NewKeyKind {
    Publishable,
    Secret,
}

impl NewKeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NewKeyKind::Publishable => "publishable",
            NewKeyKind::Secret => "secret",
        }
    }

    /// The name intelli gives the key it creates (valid under the spec's
    /// `^[a-z_][a-z0-9_]+$`, 4 to 64 characters).
    pub fn intelli_name(self) -> &'static str {
        match self {
            NewKeyKind::Publishable => "intelli_publishable",
            NewKeyKind::Secret => "intelli_secret",
        }
    }
}

/// `CreateApiKeyBody`. A secret key is created acting as `service_role`, the role intelli's
/// Storage calls need.
pub fn create_api_key_body(kind: NewKeyKind, name: &str) -> Value {
    let mut body = serde_json::json!({
        "type": kind.as_str(),
        "name": name,
        "description": "Created by intelli",
    });
    if kind == NewKeyKind::Secret {
        body["secret_jwt_template"] = serde_json::json!({ "role": "service_role" });
    }
    body
}

/// Auth settings we manage, plus everything the vendor returned (`AuthConfigResponse`, with
/// secrets masked by the vendor: never diff those).
#[derive(Clone, Debug, PartialEq)]
pub struct AuthConfig {
    pub site_url: Option<String>,
    /// `uri_allow_list`, which the API holds as one comma-joined string.
    pub uri_allow_list: Vec<String>,
    pub raw: Value,
}

impl AuthConfig {
    pub(crate) fn from_raw(raw: Value) -> AuthConfig {
        let site_url = raw
            .get("site_url")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        let uri_allow_list = raw
            .get("uri_allow_list")
            .and_then(Value::as_str)
            .map(split_allow_list)
            .unwrap_or_default();
        AuthConfig {
            site_url,
            uri_allow_list,
            raw,
        }
    }
}

/// Split the vendor's comma-joined list (the Supabase CLI does the same on pull).
pub fn split_allow_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The auth settings to change (`UpdateAuthConfigBody`); `None` leaves a field alone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthConfigPatch {
    pub site_url: Option<String>,
    pub uri_allow_list: Option<Vec<String>>,
}

#[derive(Serialize)]
pub(crate) struct AuthConfigPatchBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri_allow_list: Option<String>,
}

impl AuthConfigPatch {
    pub(crate) fn body(&self) -> AuthConfigPatchBody {
        AuthConfigPatchBody {
            site_url: self.site_url.clone(),
            uri_allow_list: self.uri_allow_list.as_ref().map(|l| l.join(",")),
        }
    }

    /// The JSON body as sent (for contract tests).
    pub fn to_wire_json(&self) -> Value {
        serde_json::to_value(self.body()).unwrap_or(Value::Null)
    }
}

/// `V1RunQueryBody`.
#[derive(Serialize)]
pub(crate) struct RunQueryBody<'a> {
    pub query: &'a str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
}

/// The wire body of a query (for contract tests).
pub fn run_query_wire_json(sql: &str, read_only: bool) -> Value {
    serde_json::to_value(RunQueryBody {
        query: sql,
        read_only,
    })
    .unwrap_or(Value::Null)
}

/// A bucket as the Management API lists it (`V1StorageBucketResponse`: no size or MIME
/// settings; read those from the Storage API).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketSummary {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub owner: Option<String>,
    pub public: bool,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
}

/// One service's health (`V1ServiceHealthResponse`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceHealth {
    pub name: String,
    /// `COMING_UP`, `ACTIVE_HEALTHY` or `UNHEALTHY`.
    pub status: String,
    #[serde(default)]
    pub error: Option<String>,
}

impl ServiceHealth {
    pub fn is_healthy(&self) -> bool {
        self.status == "ACTIVE_HEALTHY"
    }
}
