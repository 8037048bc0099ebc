//! Typed requests and responses of the Cloudflare v4 API subset intelli uses, named after the
//! vendor's schemas (`pages_projects`, `pages_deployments`, `pages_stage`, `dns-records_*`).
//!
//! Responses are read leniently: the API returns `null` for many fields the spec marks as
//! present (a project without deployments has `canonical_deployment: null`, `aliases` may be
//! `null`), and adds fields over time, so every field has a default and unknown fields are
//! ignored. Enumerations keep values this version does not know instead of failing a whole
//! list.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// `null` (or absent) becomes the type's default: the API sends `null` for empty lists.
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// An empty string is "not set": the API reports a deployment made without a commit hash as
/// `"commit_hash": ""`.
fn empty_none<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.filter(|s| !s.is_empty()))
}

/// Accepts a boolean or its string spelling (`commit_dirty` is sent as form text).
fn loose_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::Bool(b)) => Some(b),
        Some(Value::String(s)) => match s.as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        _ => None,
    })
}

/// Declares a string enumeration that keeps unknown values.
macro_rules! open_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A value this version does not know.
            Unknown(String),
        }

        impl $name {
            pub fn parse(s: &str) -> $name {
                match s {
                    $($text => $name::$variant,)+
                    other => $name::Unknown(other.to_owned()),
                }
            }

            /// The vendor's spelling.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)+
                    $name::Unknown(s) => s,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Ok($name::parse(&String::deserialize(d)?))
            }
        }
    };
}

open_enum!(
    /// `pages_stage.name`.
    StageName {
        Queued = "queued",
        Initialize = "initialize",
        CloneRepo = "clone_repo",
        Build = "build",
        Deploy = "deploy",
    }
);

open_enum!(
    /// `pages_stage.status`.
    StageStatus {
        Success = "success",
        Idle = "idle",
        Active = "active",
        Failure = "failure",
        Canceled = "canceled",
    }
);

open_enum!(
    /// Status of a Pages custom domain (and of its `validation_data` / `verification_data`).
    DomainStatus {
        Initializing = "initializing",
        Pending = "pending",
        Active = "active",
        Deactivated = "deactivated",
        Blocked = "blocked",
        Error = "error",
    }
);

/// One stage of a deployment (`pages_stage`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage {
    pub name: StageName,
    pub status: StageStatus,
    #[serde(default)]
    pub started_on: Option<String>,
    #[serde(default)]
    pub ended_on: Option<String>,
}

impl Stage {
    /// The deployment is live: its `deploy` stage succeeded.
    pub fn is_deployed(&self) -> bool {
        self.name == StageName::Deploy && self.status == StageStatus::Success
    }

    /// The deployment stopped without going live.
    pub fn is_failed(&self) -> bool {
        matches!(self.status, StageStatus::Failure | StageStatus::Canceled)
    }
}

/// What a deployment was made from (`deployment_trigger.metadata`). intelli puts its build
/// fingerprint in `commit_hash` / `commit_message` and reads it back here.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerMetadata {
    #[serde(default, deserialize_with = "empty_none")]
    pub branch: Option<String>,
    #[serde(default, deserialize_with = "empty_none")]
    pub commit_hash: Option<String>,
    #[serde(default, deserialize_with = "empty_none")]
    pub commit_message: Option<String>,
    #[serde(default, deserialize_with = "loose_bool")]
    pub commit_dirty: Option<bool>,
}

/// `deployment_trigger`: `ad_hoc` for direct uploads.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentTrigger {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub metadata: TriggerMetadata,
}

/// A Pages deployment (`pages_deployments`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    pub id: String,
    #[serde(default)]
    pub short_id: Option<String>,
    #[serde(default)]
    pub project_id: Option<String>,
    #[serde(default)]
    pub project_name: Option<String>,
    /// `production` or `preview`.
    #[serde(default)]
    pub environment: Option<String>,
    /// The deployment's own URL (`https://<short_id>.<subdomain>`).
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub created_on: Option<String>,
    #[serde(default)]
    pub modified_on: Option<String>,
    #[serde(default)]
    pub latest_stage: Option<Stage>,
    #[serde(default, deserialize_with = "null_default")]
    pub stages: Vec<Stage>,
    #[serde(default, deserialize_with = "null_default")]
    pub deployment_trigger: DeploymentTrigger,
    #[serde(default)]
    pub is_skipped: Option<bool>,
}

impl Deployment {
    /// The trigger metadata (branch, commit hash and message, dirty flag).
    pub fn metadata(&self) -> &TriggerMetadata {
        &self.deployment_trigger.metadata
    }

    /// Live: the latest stage is `deploy` with status `success`.
    pub fn is_deployed(&self) -> bool {
        self.latest_stage.as_ref().is_some_and(Stage::is_deployed)
    }

    /// Stopped without going live (any stage failed or was canceled).
    pub fn failed_stage(&self) -> Option<&Stage> {
        self.latest_stage
            .as_ref()
            .filter(|s| s.is_failed())
            .or_else(|| self.stages.iter().find(|s| s.is_failed()))
    }
}

/// A Pages project (`pages_projects`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PagesProject {
    #[serde(default)]
    pub id: Option<String>,
    pub name: String,
    /// `<name>.pages.dev`, or with a random suffix when the name was taken: the CNAME target
    /// of the custom domain. Never derive it from the name.
    #[serde(default)]
    pub subdomain: String,
    /// Custom domains attached to the project.
    #[serde(default, deserialize_with = "null_default")]
    pub domains: Vec<String>,
    #[serde(default)]
    pub production_branch: String,
    #[serde(default)]
    pub created_on: Option<String>,
    /// The live production deployment (what the subdomain and the custom domains serve).
    #[serde(default)]
    pub canonical_deployment: Option<Deployment>,
    /// The newest deployment of any environment (may be a preview).
    #[serde(default)]
    pub latest_deployment: Option<Deployment>,
    /// Git source; absent for direct-upload projects.
    #[serde(default)]
    pub source: Option<Value>,
}

impl PagesProject {
    /// The live production deployment's latest stage.
    pub fn latest_stage(&self) -> Option<&Stage> {
        self.canonical_deployment
            .as_ref()
            .and_then(|d| d.latest_stage.as_ref())
    }
}

/// Certificate (DCV) validation of a custom domain.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationData {
    /// `http` or `txt`.
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub status: Option<DomainStatus>,
    #[serde(default)]
    pub error_message: Option<String>,
    #[serde(default)]
    pub txt_name: Option<String>,
    #[serde(default)]
    pub txt_value: Option<String>,
}

/// Hostname-ownership verification of a custom domain.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationData {
    #[serde(default)]
    pub status: Option<DomainStatus>,
    #[serde(default)]
    pub error_message: Option<String>,
}

/// A Pages custom domain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PagesDomain {
    #[serde(default)]
    pub id: Option<String>,
    pub name: String,
    pub status: DomainStatus,
    #[serde(default, deserialize_with = "null_default")]
    pub validation_data: ValidationData,
    #[serde(default, deserialize_with = "null_default")]
    pub verification_data: VerificationData,
    #[serde(default)]
    pub zone_tag: Option<String>,
    #[serde(default)]
    pub certificate_authority: Option<String>,
    #[serde(default)]
    pub created_on: Option<String>,
}

impl PagesDomain {
    pub fn is_active(&self) -> bool {
        self.status == DomainStatus::Active
    }
}

/// The account a zone belongs to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneAccount {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

/// A zone (`GET /zones`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Zone {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub account: ZoneAccount,
}

/// A DNS record as the API returns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsRecord {
    pub id: String,
    #[serde(rename = "type")]
    pub record_type: String,
    pub name: String,
    pub content: String,
    #[serde(default)]
    pub proxied: bool,
    #[serde(default)]
    pub proxiable: bool,
    /// 1 = automatic (always 1 for proxied records, whatever was sent).
    #[serde(default)]
    pub ttl: u32,
    /// intelli marks the records it owns here (`managed by intelli: <client>`).
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub tags: Vec<String>,
    #[serde(default)]
    pub created_on: Option<String>,
    #[serde(default)]
    pub modified_on: Option<String>,
}

/// A DNS record to create, or to write over an existing one (PUT).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsRecordInput {
    #[serde(rename = "type")]
    pub record_type: String,
    /// Full name (`acme.intelliservice.io`).
    pub name: String,
    pub content: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxied: Option<bool>,
    /// 1 = automatic.
    pub ttl: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
}

impl DnsRecordInput {
    /// A proxied CNAME with an automatic TTL: what a Pages custom domain needs.
    pub fn proxied_cname(
        name: impl Into<String>,
        target: impl Into<String>,
        comment: Option<String>,
    ) -> DnsRecordInput {
        DnsRecordInput {
            record_type: "CNAME".to_owned(),
            name: name.into(),
            content: target.into(),
            proxied: Some(true),
            ttl: 1,
            comment,
            tags: None,
        }
    }
}

/// A partial change of a DNS record (PATCH): only the fields set are sent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsRecordPatch {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub record_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxied: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
}

/// Filters of `GET /zones/{zone_id}/dns_records` (all combine with AND).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DnsFilters {
    /// `type=CNAME`.
    pub record_type: Option<String>,
    /// Exact full name (`name=`, the exact-match filter in both the 2024 and current spec).
    pub name: Option<String>,
    /// Exact content.
    pub content: Option<String>,
    /// Exact comment (`comment.exact`, case-insensitive on the vendor side).
    pub comment: Option<String>,
    /// Comment substring (`comment.contains`): find every record intelli manages.
    pub comment_contains: Option<String>,
}

impl DnsFilters {
    pub(crate) fn query(&self) -> Vec<(&'static str, &str)> {
        let mut q = Vec::new();
        let pairs = [
            ("type", &self.record_type),
            ("name", &self.name),
            ("content", &self.content),
            ("comment.exact", &self.comment),
            ("comment.contains", &self.comment_contains),
        ];
        for (k, v) in pairs {
            if let Some(v) = v {
                q.push((k, v.as_str()));
            }
        }
        q
    }
}

/// What to put in a deployment's trigger metadata.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeployMeta {
    /// The production branch for a production deployment; anything else is a preview.
    pub branch: String,
    /// intelli's build fingerprint (read back from `canonical_deployment` by plan).
    pub commit_hash: String,
    /// Truncated to 384 UTF-8 bytes like wrangler does.
    pub commit_message: String,
    /// Sent as `"true"` / `"false"`.
    pub commit_dirty: bool,
}

impl DeployMeta {
    pub fn new(
        branch: impl Into<String>,
        commit_hash: impl Into<String>,
        commit_message: impl Into<String>,
    ) -> DeployMeta {
        DeployMeta {
            branch: branch.into(),
            commit_hash: commit_hash.into(),
            commit_message: commit_message.into(),
            commit_dirty: false,
        }
    }
}

/// The result of [`super::CloudflareClient::deploy_directory`].
#[derive(Clone, Debug, PartialEq)]
pub struct DeployOutcome {
    /// The deployment, live (`deploy` stage `success`).
    pub deployment: Deployment,
    /// Files in the manifest.
    pub files_total: usize,
    /// Files sent (the rest were already stored by Cloudflare).
    pub files_uploaded: usize,
    /// Raw (pre-base64) bytes of the files sent.
    pub bytes_uploaded: u64,
    /// Non-fatal problems (a failed `upsert-hashes`: the next deploy may re-send files).
    pub warnings: Vec<String>,
}

// ------------------------------------------------------------------------------------------
// Wire shapes.

/// The v4 envelope.
#[derive(Deserialize)]
pub(crate) struct Envelope<T> {
    #[serde(default)]
    pub success: Option<bool>,
    #[serde(default = "Option::default")]
    pub result: Option<T>,
    #[serde(default)]
    pub result_info: Option<ResultInfo>,
}

/// `result_info` of a page-paginated list.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
pub(crate) struct ResultInfo {
    #[serde(default)]
    pub per_page: Option<u64>,
    #[serde(default)]
    pub total_pages: Option<u64>,
}

#[derive(Deserialize)]
pub(crate) struct UploadTokenResult {
    pub jwt: String,
}

/// `history/logs`.
#[derive(Deserialize, Default)]
pub(crate) struct DeploymentLogs {
    #[serde(default, deserialize_with = "null_default")]
    pub data: Vec<LogLine>,
}

#[derive(Deserialize, Default)]
pub(crate) struct LogLine {
    #[serde(default)]
    pub line: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lenient_deployment() {
        let d: Deployment = serde_json::from_value(json!({
            "id": "x", "aliases": null,
            "latest_stage": {"name": "deploy", "status": "success"},
            "deployment_trigger": {"type": "ad_hoc", "metadata": {
                "branch": "main", "commit_hash": "", "commit_message": "m", "commit_dirty": "false"}},
            "future_field": 1
        }))
        .unwrap();
        assert!(d.is_deployed());
        assert!(d.aliases.is_empty());
        assert_eq!(d.metadata().commit_hash, None);
        assert_eq!(d.metadata().commit_message.as_deref(), Some("m"));
        assert_eq!(d.metadata().commit_dirty, Some(false));
        let s: Stage = serde_json::from_value(json!({"name": "warp", "status": "bent"})).unwrap();
        assert_eq!(s.name, StageName::Unknown("warp".into()));
        assert!(!s.is_failed());
    }

    #[test]
    fn filters_to_query() {
        let f = DnsFilters {
            record_type: Some("CNAME".into()),
            comment_contains: Some("managed by intelli".into()),
            ..DnsFilters::default()
        };
        assert_eq!(
            f.query(),
            vec![
                ("type", "CNAME"),
                ("comment.contains", "managed by intelli")
            ]
        );
    }
}
