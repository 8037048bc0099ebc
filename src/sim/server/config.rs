//! Simulator settings: what `intelli sim serve --config sim.yaml` reads and what tests build.
//!
//! Durations are whole milliseconds so a YAML file stays readable (`provisioning_delay_ms: 3000`).
//! Every field has a default, and unknown fields are errors (a typo must not silently turn a
//! realism knob off).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Which simulated vendor a request belongs to. Used for latency, faults, stats and error
/// envelopes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Vendor {
    /// Supabase Management API (`/v1/...`).
    Supabase,
    /// Supabase per-project Storage API (`/__projects/{ref}/storage/v1/...`).
    Storage,
    /// Cloudflare v4 API (`/client/v4/...`) and the sites it serves.
    Cloudflare,
}

impl Vendor {
    pub fn as_str(self) -> &'static str {
        match self {
            Vendor::Supabase => "supabase",
            Vendor::Storage => "storage",
            Vendor::Cloudflare => "cloudflare",
        }
    }
}

/// Everything the simulator can be told at start.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    /// Address to bind. Port 0 picks a free port (the default, so tests run in parallel).
    pub listen: SocketAddr,
    /// Seed of the RNG behind latency jitter and faults: the same seed and the same request
    /// sequence give the same faults. `None` picks one from the clock (printed in the stats).
    pub seed: Option<u64>,
    /// PostgreSQL server that holds one database per simulated project. `None` means
    /// `pg::server_url()` (`DATABASE_URL` or the local default).
    pub database_url: Option<String>,
    /// Directory where the Supabase side's state is saved as JSON and reloaded at start. Without
    /// it state lives in memory and the project databases are dropped at shutdown.
    pub state_dir: Option<PathBuf>,
    /// Per-project base URL template with `{ref}`, and optionally `{base}` (this server's base
    /// URL) and `{port}` (its port). Default `{base}/__projects/{ref}`, where the simulated
    /// Storage API lives. `http://{ref}.localhost:{port}` works too: a request whose `Host`
    /// starts with a project's ref is routed to that project.
    pub project_url_template: Option<String>,
    /// Supabase-side knobs.
    pub supabase: SupabaseConfig,
    /// Cloudflare-side knobs (accounts, zones, tokens, delays).
    pub cloudflare: CloudflareSettings,
    /// Latency added before handling, per vendor.
    pub latency: BTreeMap<Vendor, Latency>,
    /// Multiplies every vendor rate-limit *window* (and so `X-RateLimit-Reset`): 1.0 is the
    /// vendor's real minute, 0.05 makes it 3 s so tests can see a window reset. Request counts
    /// stay the vendor's.
    pub rate_limit_scale: f64,
    /// The wait an injected `429` fault announces (`Retry-After` on Cloudflare,
    /// `X-RateLimit-Reset` on Supabase), in ms. `None` (the default): the vendor's whole window
    /// scaled by `rate_limit_scale` (Supabase 60 s, Cloudflare 300 s), as when a quota is
    /// spent. A short wait models a throttle that refuses a request now and then while the
    /// real quotas keep their real windows (the fault benchmark: 5% of Cloudflare requests
    /// each blocking the whole user for 5 minutes would be hours).
    pub fault_retry_after_ms: Option<u64>,
    /// Fault rules, checked in order; the first rule whose route, method and vendor match and
    /// whose dice roll hits decides.
    pub faults: Vec<FaultRule>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            seed: None,
            database_url: None,
            state_dir: None,
            project_url_template: None,
            supabase: SupabaseConfig::default(),
            cloudflare: CloudflareSettings::default(),
            latency: BTreeMap::new(),
            rate_limit_scale: 1.0,
            fault_retry_after_ms: None,
            faults: Vec::new(),
        }
    }
}

impl SimConfig {
    /// Settings for an in-process sandbox (`--sandbox`): state kept under `dir` so a second
    /// command sees what the first made, and delays short enough for interactive use.
    pub fn sandbox(dir: &std::path::Path) -> SimConfig {
        let mut c = SimConfig {
            state_dir: Some(dir.to_path_buf()),
            ..SimConfig::default()
        };
        c.supabase.provisioning_delay_ms = 500;
        c.supabase.going_down_ms = 500;
        c.cloudflare.domain_activation_delay_ms = 500;
        c
    }

    /// Parse a YAML settings file (the `--config` of `intelli sim serve`).
    pub fn from_yaml(text: &str) -> anyhow::Result<SimConfig> {
        serde_saphyr::from_str(text).map_err(|e| anyhow::anyhow!("invalid simulator config: {e}"))
    }
}

/// Supabase-side settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SupabaseConfig {
    /// How long a new project stays `COMING_UP` (at least as long as creating its database
    /// takes). The vendor takes minutes; the default keeps rehearsals quick but visible.
    pub provisioning_delay_ms: u64,
    /// Accepted access tokens. Empty: any token that starts with `sbp_` (like a personal
    /// access token) is accepted.
    pub tokens: Vec<String>,
    /// Organizations that exist. Default: one, `intelli-sim`.
    pub organizations: Vec<OrgConfig>,
    /// Requests allowed per window, per token, scope (project or org) and endpoint.
    pub rate_limit_requests: u32,
    /// Length of a rate-limit window before `rate_limit_scale`, in ms (vendor: one minute).
    pub rate_limit_window_ms: u64,
    /// Most connections open at once to project databases (queries and Storage calls wait
    /// for a slot). Keep it under the PostgreSQL server's `max_connections`.
    pub max_db_connections: usize,
    /// Whether new projects also get the legacy `anon` / `service_role` JWT keys switched on.
    /// Default off: the vendor deprecates them by the end of 2026, and newer projects have only
    /// `sb_publishable_…` / `sb_secret_…` keys.
    pub legacy_api_keys: bool,
    /// How long a deleted project stays `GOING_DOWN` before it is `REMOVED` (its database is
    /// dropped then).
    pub going_down_ms: u64,
    /// How long a `REMOVED` project is still listed (and readable by ref) before it is
    /// forgotten, as the vendor keeps showing removed projects for a while.
    pub removed_listed_ms: u64,
}

impl Default for SupabaseConfig {
    fn default() -> Self {
        SupabaseConfig {
            provisioning_delay_ms: 2_000,
            tokens: Vec::new(),
            organizations: vec![OrgConfig::default()],
            rate_limit_requests: 120,
            rate_limit_window_ms: 60_000,
            max_db_connections: 40,
            legacy_api_keys: false,
            going_down_ms: 2_000,
            removed_listed_ms: 60_000,
        }
    }
}

impl SupabaseConfig {
    pub fn provisioning_delay(&self) -> Duration {
        Duration::from_millis(self.provisioning_delay_ms)
    }

    pub fn going_down(&self) -> Duration {
        Duration::from_millis(self.going_down_ms)
    }

    pub fn removed_listed(&self) -> Duration {
        Duration::from_millis(self.removed_listed_ms)
    }
}

/// Cloudflare-side settings, the serialisable face of
/// [`crate::sim::cloudflare::CloudflareConfig`] (defaults are that type's defaults).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CloudflareSettings {
    /// Accounts served (32 hex characters each).
    pub account_ids: Vec<String>,
    /// Zones that exist, e.g. `intelliservice.io`.
    pub zone_names: Vec<String>,
    /// Accepted API tokens (full access).
    pub tokens: Vec<String>,
    /// Accepted read-only API tokens (GET only).
    pub read_only_tokens: Vec<String>,
    /// Names taken elsewhere on pages.dev: such a project gets a suffixed subdomain.
    pub taken_project_names: Vec<String>,
    /// How long a custom domain takes to become `active` once its CNAME exists.
    pub domain_activation_delay_ms: u64,
    /// Time between creating a deployment and its success.
    pub deployment_delay_ms: u64,
    /// Requests per rate-limit window (vendor: 1200 per 5 minutes; the window is scaled by
    /// `rate_limit_scale`).
    pub rate_limit_requests: u32,
    /// `max_file_count_allowed` of upload JWTs.
    pub max_file_count_allowed: u64,
    /// Pages projects each account may hold (Cloudflare's documented default soft limit: 100);
    /// one more is refused with HTTP 400, code 8000027 (the code is the simulator's choice).
    pub max_projects_per_account: usize,
}

impl Default for CloudflareSettings {
    fn default() -> Self {
        let d = crate::sim::cloudflare::CloudflareConfig::default();
        CloudflareSettings {
            account_ids: d.account_ids,
            zone_names: d.zone_names,
            tokens: d
                .tokens
                .iter()
                .filter(|t| !t.read_only)
                .map(|t| t.value.clone())
                .collect(),
            read_only_tokens: d
                .tokens
                .iter()
                .filter(|t| t.read_only)
                .map(|t| t.value.clone())
                .collect(),
            taken_project_names: d.taken_project_names,
            domain_activation_delay_ms: d.domain_activation_delay.as_millis() as u64,
            deployment_delay_ms: d.deployment_delay.as_millis() as u64,
            rate_limit_requests: d.rate_limit_requests,
            max_file_count_allowed: d.max_file_count_allowed,
            max_projects_per_account: d.max_projects_per_account,
        }
    }
}

impl SimConfig {
    /// The Cloudflare simulator's own config: these settings, the shared rate-limit scale,
    /// and `<state_dir>/cloudflare` when state is kept.
    pub fn cloudflare_config(&self) -> crate::sim::cloudflare::CloudflareConfig {
        use crate::sim::cloudflare::{ApiToken, CloudflareConfig};
        let c = &self.cloudflare;
        let tokens = c
            .tokens
            .iter()
            .map(|t| ApiToken {
                value: t.clone(),
                read_only: false,
            })
            .chain(c.read_only_tokens.iter().map(|t| ApiToken {
                value: t.clone(),
                read_only: true,
            }))
            .collect();
        CloudflareConfig {
            account_ids: c.account_ids.clone(),
            zone_names: c.zone_names.clone(),
            tokens,
            taken_project_names: c.taken_project_names.clone(),
            domain_activation_delay: Duration::from_millis(c.domain_activation_delay_ms),
            deployment_delay: Duration::from_millis(c.deployment_delay_ms),
            rate_limit_scale: self.rate_limit_scale,
            rate_limit_requests: c.rate_limit_requests,
            state_dir: self.state_dir.as_ref().map(|d| d.join("cloudflare")),
            max_file_count_allowed: c.max_file_count_allowed,
            max_projects_per_account: c.max_projects_per_account,
            ..CloudflareConfig::default()
        }
    }
}

/// One simulated organization.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OrgConfig {
    pub slug: String,
    pub name: String,
}

impl Default for OrgConfig {
    fn default() -> Self {
        OrgConfig {
            slug: "intelli-sim".into(),
            name: "Intelli Simulated Org".into(),
        }
    }
}

/// Latency added to every request of a vendor: `fixed_ms` plus a uniform `0..=jitter_ms`.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Latency {
    pub fixed_ms: u64,
    pub jitter_ms: u64,
}

/// One fault rule.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// Only this vendor's requests (any when absent).
    #[serde(default)]
    pub vendor: Option<Vendor>,
    /// HTTP method, e.g. `POST` (any when absent).
    #[serde(default)]
    pub method: Option<String>,
    /// Glob over the route: `*` matches any run of characters. Matched against both the
    /// route template (`/v1/projects/{ref}/database/query`) and the concrete path.
    pub path: String,
    /// Chance in [0, 1] that a matching request gets the fault.
    #[serde(default = "one")]
    pub probability: f64,
    /// What happens.
    pub kind: FaultKind,
    /// Stop after injecting this many times (unbounded when absent).
    #[serde(default)]
    pub times: Option<u64>,
}

fn one() -> f64 {
    1.0
}

/// What a fault does to the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum FaultKind {
    /// Answer with this status (500, 502, 503, 524) and the vendor's error body; the request
    /// is not handled.
    Status(u16),
    /// Answer 429 with the vendor's rate-limit headers; not handled.
    RateLimited,
    /// Close the connection with a TCP reset before handling.
    Reset,
    /// Handle the request (a mutation commits), then reset the connection instead of
    /// answering: the client cannot tell whether it happened. Only applies to methods other
    /// than GET/HEAD/OPTIONS; on those it acts like `reset`.
    CommitThenDrop,
}

impl TryFrom<String> for FaultKind {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        match s.trim() {
            "500" => Ok(FaultKind::Status(500)),
            "502" => Ok(FaultKind::Status(502)),
            "503" => Ok(FaultKind::Status(503)),
            "524" => Ok(FaultKind::Status(524)),
            "429" | "rate_limited" => Ok(FaultKind::RateLimited),
            "reset" => Ok(FaultKind::Reset),
            "commit_then_drop" => Ok(FaultKind::CommitThenDrop),
            other => Err(format!(
                "unknown fault kind {other:?}: expected 500, 502, 503, 524, 429, reset or commit_then_drop"
            )),
        }
    }
}

impl From<FaultKind> for String {
    fn from(k: FaultKind) -> String {
        match k {
            FaultKind::Status(c) => c.to_string(),
            FaultKind::RateLimited => "429".into(),
            FaultKind::Reset => "reset".into(),
            FaultKind::CommitThenDrop => "commit_then_drop".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_config_parses_and_rejects_typos() {
        let c = SimConfig::from_yaml(
            "seed: 7\nsupabase:\n  provisioning_delay_ms: 10\nlatency:\n  supabase: {fixed_ms: 5, jitter_ms: 2}\n\
             faults:\n  - {path: '/v1/projects', method: POST, kind: commit_then_drop, probability: 0.5}\n",
        )
        .unwrap();
        assert_eq!(c.seed, Some(7));
        assert_eq!(c.faults[0].kind, FaultKind::CommitThenDrop);
        assert_eq!(c.latency[&Vendor::Supabase].fixed_ms, 5);
        assert!(SimConfig::from_yaml("sed: 7\n").is_err());
        assert!(SimConfig::from_yaml("faults: [{path: '/x', kind: 418}]\n").is_err());
    }
}
