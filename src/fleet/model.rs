//! The two file kinds of `fleet/`, exactly as written by people.
//!
//! These types are the contract with users: every field is documented here (the docs become the
//! JSON Schema descriptions), unknown fields are rejected, and nothing here knows about defaults —
//! merging lives in `merge.rs`, checks in `validate.rs`.

use std::collections::BTreeMap;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// `fleet/fleet.yaml`: settings shared by the whole fleet, and the defaults every client inherits.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FleetFile {
    /// Prefix of every resource name intelli derives from a client slug (Supabase project name,
    /// Pages project name). It is also how intelli recognises what it owns.
    #[serde(default = "default_prefix")]
    pub name_prefix: String,
    /// DNS zone that client domains live in by default: a client's domain is `<client>.<base_domain>`.
    pub base_domain: String,
    pub supabase: FleetSupabase,
    pub cloudflare: FleetCloudflare,
    #[serde(default)]
    pub frontend: FleetFrontend,
    #[serde(default)]
    pub migrations: FleetMigrations,
    /// How many clients `apply` works on at once.
    #[serde(default = "default_parallelism")]
    pub parallelism: u32,
    /// Values every client inherits unless its own file sets them (maps merge key by key, lists replace).
    #[serde(default)]
    pub defaults: ClientSettings,
    /// Roll changes out in waves, in this order: a wave starts only when the one before it
    /// converged and passed its health gate, or failed no more than its `max_failures`. A
    /// client in several waves belongs to the first; clients in none form an implicit last
    /// wave named `rest`. Without `rollout:`, the whole selection is one wave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Vec<WaveSpec>>,
    /// Health checks apply runs on each client after its changes (and on the clients of a wave
    /// that gates a later one): a failed check fails that client.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckSpec>,
}

/// One wave of `rollout:` in fleet.yaml.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaveSpec {
    /// The wave's name (lowercase letters, digits, hyphens), as `--wave` and `--through` take
    /// it. `rest` is the implicit last wave's.
    pub name: String,
    /// Clients of this wave by slug. With `labels` as well, a client must match both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clients: Option<Vec<String>>,
    /// Clients whose `labels:` hold every one of these pairs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// How many of the wave's clients do work at once (default: the fleet's `parallelism`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel: Option<u32>,
    /// Failures the wave may have and the rollout still go on: a count (`2`) or a percentage
    /// of the wave's clients (`"10%"`). Default 0. The rollout halts when failures are greater.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_failures: Option<MaxFailures>,
    /// `auto` (default): the wave starts as soon as the one before passed. `manual`: apply
    /// stops before it until run with `--through <this wave>`.
    #[serde(default)]
    pub gate: Gate,
}

/// A wave's failure budget: a count, or a percentage of the wave's clients written `"N%"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum MaxFailures {
    Count(u32),
    /// `"10%"`: the wave halts when failed × 100 > 10 × its clients.
    Percent(String),
}

/// A wave's gate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Gate {
    /// Start once the previous wave passed.
    #[default]
    Auto,
    /// Stop before this wave until `intelli apply --through <wave>`.
    Manual,
}

/// One of the fleet's health checks (`checks:`): exactly one of `http` or `sql`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckSpec {
    /// The check's name, shown when it fails.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<SqlCheck>,
}

/// A GET of a path on the client's domain.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpCheck {
    /// Path on the client's domain, starting with `/`; `{client}` is replaced by the slug.
    pub path: String,
    /// The status the answer must have.
    #[serde(default = "default_check_status")]
    pub status: u16,
    /// Text the body must contain; `{client}` is replaced by the slug.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
    /// Seconds to wait for the answer.
    #[serde(default = "default_check_timeout")]
    pub timeout_secs: u32,
}

/// A read-only query on the client's database that must return one row whose one column is
/// `true` (e.g. "every table in public has row-level security enabled").
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlCheck {
    /// One SELECT, run in a read-only transaction, the way migrations reach the database.
    pub query: String,
}

fn default_check_status() -> u16 {
    200
}
fn default_check_timeout() -> u32 {
    10
}

fn default_prefix() -> String {
    "intelli-".into()
}
fn default_parallelism() -> u32 {
    8
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FleetSupabase {
    /// Slug of the Supabase organization that owns every client project.
    pub organization_slug: String,
    /// The projects' legacy JWT API keys (`anon`, `service_role`), which Supabase deprecates:
    /// `keep` (default) leaves them as they are; `disable` switches them off, per project, once
    /// its site serves a build made with the publishable key (never before).
    #[serde(default)]
    pub legacy_keys: LegacyKeys,
}

/// `supabase.legacy_keys` in `fleet.yaml`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LegacyKeys {
    /// Leave the legacy keys as they are.
    #[default]
    Keep,
    /// Switch them off once the site serves a build made with the publishable key.
    Disable,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FleetCloudflare {
    /// The one Cloudflare account that holds the Pages projects (not a secret; the API token is
    /// read from `CLOUDFLARE_API_TOKEN`). It may hold 100 projects, Cloudflare's default limit;
    /// use `accounts` for more. Give either `account_id` or `accounts`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// Several Cloudflare accounts, for a fleet of more Pages projects than one account may
    /// hold. New clients go to the first account with room, in this order; an existing site is
    /// never moved; a client file may pin its account with `cloudflare.account_id`. One API
    /// token is used for all of them. Give either `account_id` or `accounts`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<CloudflareAccount>,
    /// Name of the Cloudflare DNS zone in which client domains get their CNAME records.
    pub zone: String,
    /// Production branch of every Pages project.
    #[serde(default = "default_branch")]
    pub production_branch: String,
}

fn default_branch() -> String {
    "main".into()
}

/// One entry of `cloudflare.accounts`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CloudflareAccount {
    /// The account id: 32 hexadecimal characters.
    pub id: String,
    /// How many Pages projects the account may hold, counting projects intelli does not manage.
    /// Cloudflare's default limit is 100; raise this only after Cloudflare raised the account's.
    #[serde(default = "default_max_projects")]
    pub max_projects: u32,
}

fn default_max_projects() -> u32 {
    crate::fleet::placement::DEFAULT_MAX_PROJECTS
}

/// `cloudflare:` in a client file.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientCloudflare {
    /// Pin the client's Pages project to this account of the fleet's `cloudflare.accounts`
    /// (default: the first account with room when the site is created; an existing site stays
    /// where it is).
    pub account_id: Option<String>,
}

/// How the master-mold frontend is built. Paths are relative to the repository root (the parent
/// of `fleet/`).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct FleetFrontend {
    /// The master-mold frontend, relative to the repository root.
    pub dir: String,
    /// Run once per apply (per lockfile) before the builds, in `dir`.
    pub install_command: String,
    /// Run once per client, in `dir`, with the client's `VITE_*` values in its environment.
    /// `{out_dir}` is replaced by a private output directory per client, which lets builds run
    /// concurrently; without it builds run one at a time and `output_dir` is collected.
    pub build_command: String,
    /// Build output directory, relative to `dir`, used when `build_command` has no `{out_dir}`.
    pub output_dir: String,
}

impl Default for FleetFrontend {
    fn default() -> Self {
        FleetFrontend {
            dir: "examples/web".into(),
            install_command: "npm ci".into(),
            build_command: "npm run build -- --outDir {out_dir} --emptyOutDir".into(),
            output_dir: "dist".into(),
        }
    }
}

/// Where the master-mold SQL lives, relative to the repository root.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct FleetMigrations {
    /// Directory of `<version>_<name>.sql` files, applied in version order.
    pub dir: String,
    /// The per-client seed, applied once after the migrations.
    pub seed: String,
    /// A read-only query returning one boolean: true when the client's seed is present in its
    /// database although intelli never recorded it (a client set up by hand, then imported).
    /// It runs with the seed's settings (`current_setting('intelli.client_slug')`, …), only for
    /// a client whose seed is not recorded; true plans `record_seed` instead of running it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed_check: Option<String>,
}

impl Default for FleetMigrations {
    fn default() -> Self {
        FleetMigrations {
            dir: "migrations".into(),
            seed: "migrations/seed/client.sql".into(),
            seed_check: None,
        }
    }
}

/// `fleet/<client>.yaml`: one client. Every field but `client` has a fleet default.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientFile {
    /// The client's slug: lowercase letters, digits and hyphens; must equal the file name.
    pub client: String,
    /// Human name, shown in the app and passed to the seed. Default: the slug.
    pub display_name: Option<String>,
    /// The site's domain. Default: `<client>.<base_domain>`. Must be inside the fleet's zone.
    pub domain: Option<String>,
    /// `active` (default), `paused` (pause the Supabase project) or `deleted` (offboard; needs
    /// `--allow-delete` on the command line as well).
    pub state: Option<ClientState>,
    /// Adopt an existing Supabase project instead of creating `<prefix><client>`.
    pub project_ref: Option<String>,
    /// Adopt an existing Pages project instead of creating `<prefix><client>`.
    pub pages_project: Option<String>,
    /// Let intelli replace an existing DNS record for the domain that it did not create.
    pub take_over_dns: Option<bool>,
    pub supabase: Option<SupabaseSettings>,
    pub auth: Option<AuthSettings>,
    pub frontend: Option<FrontendSettings>,
    pub cloudflare: Option<ClientCloudflare>,
    /// Free-form labels (`tier: canary`, `plan: enterprise`), which `rollout:` waves select by.
    pub labels: Option<BTreeMap<String, String>>,
}

/// The mergeable part of a client: `defaults:` in fleet.yaml, overridden by the client file.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientSettings {
    pub supabase: Option<SupabaseSettings>,
    pub auth: Option<AuthSettings>,
    pub frontend: Option<FrontendSettings>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ClientState {
    Active,
    Paused,
    Deleted,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SupabaseSettings {
    /// Supabase region code, e.g. `eu-west-2`.
    #[schemars(schema_with = "region_schema")]
    pub region: Option<String>,
    /// Compute size, e.g. `micro` or `small`.
    #[schemars(schema_with = "instance_size_schema")]
    pub instance_size: Option<String>,
    /// Storage buckets by name. A client adds a bucket by adding a key, or changes one field of
    /// a default bucket by naming only that field.
    pub buckets: Option<BTreeMap<String, BucketSettings>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BucketSettings {
    /// Whether objects are readable without a token. Default false.
    pub public: Option<bool>,
    /// Largest object in bytes; unset means the project's global limit.
    pub file_size_limit: Option<u64>,
    /// MIME types accepted, e.g. `image/*`; unset or empty accepts any.
    pub allowed_mime_types: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// Redirect URLs allowed besides `https://<domain>/**` (which intelli always adds).
    pub additional_redirect_urls: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FrontendSettings {
    /// Extra build-time variables; names must start with `VITE_`. A value may be `${env:NAME}`,
    /// read from the environment at apply time. Values end up in public JavaScript: never put a
    /// secret here.
    pub env: Option<BTreeMap<String, String>>,
}

/// Region codes accepted by `POST /v1/projects` (`region_selection.code` of type `specific`),
/// from the Supabase Management API spec.
pub const REGIONS: &[&str] = &[
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ap-east-1",
    "ap-southeast-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-southeast-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-north-1",
    "eu-central-1",
    "eu-central-2",
    "ca-central-1",
    "ap-south-1",
    "sa-east-1",
];

/// `desired_instance_size` values of `POST /v1/projects`, from the same spec.
pub const INSTANCE_SIZES: &[&str] = &[
    "nano",
    "micro",
    "small",
    "medium",
    "large",
    "xlarge",
    "2xlarge",
    "4xlarge",
    "8xlarge",
    "12xlarge",
    "16xlarge",
    "24xlarge",
    "24xlarge_optimized_memory",
    "24xlarge_optimized_cpu",
    "24xlarge_high_memory",
    "48xlarge",
    "48xlarge_optimized_memory",
    "48xlarge_optimized_cpu",
    "48xlarge_high_memory",
];

fn region_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": ["string", "null"], "enum": REGIONS.iter().map(|s| Some(*s)).chain([None]).collect::<Vec<_>>() })
}

fn instance_size_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": ["string", "null"], "enum": INSTANCE_SIZES.iter().map(|s| Some(*s)).chain([None]).collect::<Vec<_>>() })
}
