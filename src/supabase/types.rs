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
#[derive(Deserialize)]
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

/// A project's legacy JWT keys, for the frontend (`anon`) and for the Storage API
/// (`service_role`).
#[derive(Clone, Debug)]
pub struct ApiKeys {
    pub anon: SecretString,
    pub service_role: SecretString,
}

/// An item of `GET /v1/projects/{ref}/api-keys` (`ApiKeyResponse`).
#[derive(Deserialize)]
pub(crate) struct ApiKeyItem {
    pub name: String,
    #[serde(default)]
    pub api_key: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
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
