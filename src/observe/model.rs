//! What intelli saw: the observed state of each client, as plain data.
//!
//! Produced by `observe` (the only part that reads vendor APIs for planning), consumed by
//! `plan` (pure). No secrets are kept here: keys are fetched by `apply` when it needs them.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cloudflare::types::DomainStatus;
use crate::migrate::history::AppliedMigration;
use crate::supabase::types::ProjectStatus;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ObservedFleet {
    /// By client slug; a client with no entry was not observed (e.g. excluded by `--only`).
    pub clients: BTreeMap<String, ObservedClient>,
    /// Projects named with the fleet prefix that no client file claims.
    pub orphans: Vec<OrphanProject>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DyingProject {
    pub project_ref: String,
    /// `GOING_DOWN` or `REMOVED`.
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OrphanProject {
    pub name: String,
    pub project_ref: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ObservedClient {
    /// The client's project, when exactly one was found.
    pub project: Option<ObservedProject>,
    /// Refs of every project carrying the client's name when there is more than one: intelli
    /// refuses to guess which one is the client's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub duplicates: Vec<String>,
    pub auth: Option<ObservedAuth>,
    pub database: Option<ObservedDatabase>,
    /// Projects carrying the client's name (or its pinned ref) that are being deleted or were
    /// deleted (`GOING_DOWN`, `REMOVED`): never the client's, reported in the plan's notes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dying: Vec<DyingProject>,
    /// Why observation of this client stopped early, if it did.
    pub error: Option<String>,
    /// SHA-256 of the project's anon key: it goes into the site's build, so a new key means a
    /// rebuild, but the key itself is never kept in observed state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anon_key_sha256: Option<String>,
    /// The client's site on Cloudflare Pages.
    #[serde(default)]
    pub site: ObservedSite,
    /// Which API keys the project has (never their values); `None` when they were not read
    /// (see `observe::supabase` for when they are).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<ObservedKeys>,
}

/// The kinds of API key a project has, as `supabase::ApiKeys::pick` sees them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ObservedKeys {
    /// An `sb_publishable_…` key exists.
    pub publishable: bool,
    /// An `sb_secret_…` key acting as `service_role` exists.
    pub service_secret: bool,
    /// The listing holds the legacy `anon` / `service_role` keys.
    pub legacy_listed: bool,
    /// `GET …/api-keys/legacy`: read only when `supabase.legacy_keys: disable` and the listing
    /// holds legacy keys (`None` otherwise, or when the endpoint is gone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legacy_enabled: Option<bool>,
    /// Which key the site is built with.
    pub browser: Option<crate::supabase::BrowserKeyKind>,
}

/// The Cloudflare side of one client.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ObservedSite {
    pub pages: Option<ObservedPages>,
    /// The CNAME for the client's domain in the fleet's zone, if any record has that name.
    pub dns: Option<ObservedDns>,
    /// The custom domain's status, when it is attached and was read (see `observe::cloudflare`).
    #[schemars(with = "Option<String>")]
    pub domain_status: Option<DomainStatus>,
    /// Why the site could not be observed, if it could not.
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ObservedPages {
    pub name: String,
    /// `<name>[-suffix].pages.dev`: the CNAME target.
    pub subdomain: String,
    pub production_branch: String,
    pub domains: Vec<String>,
    /// `commit_message` of the live production deployment (it carries intelli's fingerprint).
    pub live_commit_message: Option<String>,
    /// `id` of the live production deployment: a deploy records it as the deployment it
    /// replaces, so a later revert can roll back to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live_deployment_id: Option<String>,
    /// `commit_hash` of the live production deployment (intelli's fingerprint, 40 hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live_commit_hash: Option<String>,
    /// `created_on` of the live production deployment (shown by `intelli status`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live_deployed_on: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ObservedDns {
    pub id: String,
    pub record_type: String,
    pub content: String,
    pub proxied: bool,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ObservedProject {
    pub project_ref: String,
    pub name: String,
    #[schemars(with = "String")]
    pub status: ProjectStatus,
    pub region: String,
}

impl ObservedProject {
    pub fn is_healthy(&self) -> bool {
        self.status.is_healthy()
    }
    pub fn is_paused(&self) -> bool {
        self.status.is_paused()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ObservedAuth {
    pub site_url: Option<String>,
    /// `uri_allow_list` split on commas, as the Supabase CLI does.
    pub redirect_urls: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ObservedDatabase {
    #[schemars(with = "Vec<serde_json::Value>")]
    pub migrations: Vec<AppliedMigration>,
    pub seeds: Vec<SeedRow>,
    pub buckets: Vec<BucketRow>,
    /// What `migrations.seed_check` answered, asked only when the seed is not recorded (`None`:
    /// not asked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed_present: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SeedRow {
    pub path: String,
    pub hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BucketRow {
    pub id: String,
    pub public: bool,
    pub file_size_limit: Option<u64>,
    pub allowed_mime_types: Option<Vec<String>>,
}
