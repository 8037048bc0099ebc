//! `intelli status`: one row per client, from the same observation a no-op plan makes.
//!
//! Pure: [`build`] takes the desired state, the observed state and the plan made from them
//! (`engine::Engine::observe_and_plan`) and returns a [`StatusReport`], a value rendered as text
//! (`text`), markdown (`text::markdown`), JSON (`schema/status.schema.json`) or one
//! self-contained HTML page (`html`). Nothing here makes a request: status costs exactly what
//! a plan costs.
//!
//! There is no state file, so "health" is what observation gives: the project's status, the
//! domain's status, and whether the live deployment carries the desired fingerprint.

pub mod command;
mod html;
mod text;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::fleet::{ClientSpec, ClientState};
use crate::migrate::history;
use crate::observe::{ObservedClient, ObservedFleet, ObservedSite};
use crate::plan::{self, Action, ClientPlan, Desired, Plan, PlanOptions, Reason, ownership};

pub use html::html;
pub use text::{markdown, text};

/// Bumped whenever the JSON shape changes incompatibly.
pub const FORMAT_VERSION: u32 = 1;

/// The fleet's status (`intelli status --format json`, `schema/status.schema.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StatusReport {
    pub format_version: u32,
    /// The intelli version that made the report.
    pub intelli_version: String,
    pub summary: Summary,
    /// One row per selected client, ordered by slug.
    pub clients: Vec<ClientStatus>,
    /// Projects with the fleet's name prefix that no client file claims.
    pub orphans: Vec<plan::Orphan>,
}

/// Clients by sync state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Summary {
    pub clients: usize,
    pub converged: usize,
    pub drifting: usize,
    pub failing: usize,
}

impl Summary {
    /// Counts `clients` by sync state.
    pub fn of(clients: &[ClientStatus]) -> Self {
        let mut summary = Summary {
            clients: clients.len(),
            ..Summary::default()
        };
        for c in clients {
            match c.sync {
                Sync::Converged => summary.converged += 1,
                Sync::Drifting => summary.drifting += 1,
                Sync::Failing => summary.failing += 1,
            }
        }
        summary
    }
}

/// Where a client stands against its fleet files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Sync {
    /// Nothing to do: a plan for it is empty.
    Converged,
    /// Apply would change something (pending migrations, a stale site, drifted settings…).
    Drifting,
    /// Something stops it from being applied (see `errors`).
    Failing,
}

impl Sync {
    pub fn as_str(self) -> &'static str {
        match self {
            Sync::Converged => "Converged",
            Sync::Drifting => "Drifting",
            Sync::Failing => "Failing",
        }
    }
}

/// One client's row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ClientStatus {
    pub client: String,
    /// Declared in the client file.
    pub state: ClientState,
    pub sync: Sync,
    pub project: ProjectRow,
    pub migrations: MigrationRow,
    pub seed: SeedState,
    pub buckets: BucketRow,
    /// `null` when the Cloudflare side was not observed (`--skip-frontend`).
    pub site: Option<SiteRow>,
    /// What apply would do, one line per action (as the plan words it).
    pub pending_actions: Vec<String>,
    pub errors: Vec<String>,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProjectRow {
    pub name: String,
    /// `null` when no project exists yet.
    pub project_ref: Option<String>,
    /// The vendor's status (`ACTIVE_HEALTHY`, `INACTIVE`, …); `null` when no project exists.
    pub status: Option<String>,
    /// Observed when the project exists, else declared.
    pub region: String,
    /// Declared (the Management API's project list does not give it).
    pub instance_size: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MigrationRow {
    /// Files in the migrations directory.
    pub files: usize,
    /// Versions recorded in the project's history; `null` when the database was not read.
    pub applied: Option<usize>,
    /// The newest recorded version.
    pub latest_applied: Option<String>,
    pub pending: Vec<String>,
    /// Drift and history problems (an applied file changed, a row with no file, …).
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SeedState {
    Applied,
    /// Applied, but the seed file changed since (it is not re-run).
    Changed,
    Pending,
    /// The database was not read (no healthy project).
    Unknown,
}

impl SeedState {
    pub fn as_str(self) -> &'static str {
        match self {
            SeedState::Applied => "yes",
            SeedState::Changed => "changed",
            SeedState::Pending => "no",
            SeedState::Unknown => "-",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BucketRow {
    pub declared: usize,
    /// Declared buckets that exist with the declared settings; `null` when not read.
    pub as_declared: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SiteRow {
    pub pages_project: String,
    pub state: SiteState,
    /// Why the site is not current, as the plan says it.
    pub reason: Option<String>,
    /// When the live deployment was made (the vendor's `created_on`).
    pub deployed_on: Option<String>,
    pub domain: String,
    /// The custom domain's status (`active`, `pending`, …), when known.
    pub domain_status: Option<String>,
    pub dns: DnsState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SiteState {
    /// The live deployment carries the desired fingerprint.
    Current,
    /// A deploy is planned (sources or values changed, or not deployed by intelli).
    Stale,
    NeverDeployed,
    /// Not decided now (the project is not healthy, or the site could not be read).
    Unknown,
}

impl SiteState {
    pub fn as_str(self) -> &'static str {
        match self {
            SiteState::Current => "current",
            SiteState::Stale => "stale",
            SiteState::NeverDeployed => "none",
            SiteState::Unknown => "-",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DnsState {
    /// intelli's record, pointing at the site.
    Ok,
    Missing,
    /// intelli's record, pointing elsewhere or not proxied.
    Drifted,
    /// A record intelli does not own.
    NotOwned,
}

/// The report for `plan`'s clients, from what `observed` saw.
pub fn build(
    desired: &Desired<'_>,
    selected: &[&ClientSpec],
    observed: &ObservedFleet,
    plan: &Plan,
    options: PlanOptions,
) -> StatusReport {
    let empty = ObservedClient::default();
    let clients: Vec<ClientStatus> = plan
        .clients
        .iter()
        .filter_map(|cp| {
            let spec = selected.iter().find(|s| s.slug == cp.client)?;
            let obs = observed.clients.get(&cp.client).unwrap_or(&empty);
            Some(client_status(desired, spec, obs, cp, options))
        })
        .collect();
    let summary = Summary::of(&clients);
    StatusReport {
        format_version: FORMAT_VERSION,
        intelli_version: env!("CARGO_PKG_VERSION").to_string(),
        summary,
        clients,
        orphans: plan.orphans.clone(),
    }
}

impl StatusReport {
    /// 0 all converged, 2 some drift or pending, 1 errors (like `plan --detailed-exitcode`).
    pub fn exit_code(&self) -> u8 {
        if self.summary.failing > 0 {
            1
        } else if self.summary.drifting > 0 {
            2
        } else {
            0
        }
    }

    /// Pretty JSON, newline-terminated.
    pub fn json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }
}

fn client_status(
    desired: &Desired<'_>,
    spec: &ClientSpec,
    obs: &ObservedClient,
    cp: &ClientPlan,
    options: PlanOptions,
) -> ClientStatus {
    let sync = if !cp.errors.is_empty() {
        Sync::Failing
    } else if cp.has_changes() {
        Sync::Drifting
    } else {
        Sync::Converged
    };
    let project = ProjectRow {
        name: cp.project_name.clone(),
        project_ref: cp.project_ref.clone(),
        status: obs.project.as_ref().map(|p| p.status.as_str().to_string()),
        region: obs
            .project
            .as_ref()
            .map_or_else(|| spec.region.clone(), |p| p.region.clone()),
        instance_size: spec.instance_size.clone(),
    };
    ClientStatus {
        client: cp.client.clone(),
        state: spec.state,
        sync,
        project,
        migrations: migrations(desired, obs, options),
        seed: seed(desired, obs),
        buckets: buckets(spec, obs),
        site: desired.frontend.as_ref().map(|_| site(spec, obs, cp)),
        pending_actions: cp
            .actions
            .iter()
            .map(|a| format!("{} {}", a.symbol(), plan::describe(a).headline))
            .collect(),
        errors: cp.errors.clone(),
        notes: cp.notes.clone(),
    }
}

fn migrations(desired: &Desired<'_>, obs: &ObservedClient, options: PlanOptions) -> MigrationRow {
    let mut row = MigrationRow {
        files: desired.migrations.len(),
        applied: None,
        latest_applied: None,
        pending: Vec::new(),
        problems: Vec::new(),
    };
    let Some(db) = &obs.database else {
        return row;
    };
    row.applied = Some(db.migrations.len());
    row.latest_applied = db.migrations.iter().map(|m| m.version.clone()).max();
    match history::pending(desired.migrations, &db.migrations, options.include_all) {
        Ok(pending) => row.pending = pending,
        Err(problems) => row.problems = problems.iter().map(ToString::to_string).collect(),
    }
    row
}

fn seed(desired: &Desired<'_>, obs: &ObservedClient) -> SeedState {
    let Some(db) = &obs.database else {
        return SeedState::Unknown;
    };
    match db.seeds.iter().find(|s| s.path == desired.seed_path) {
        None => SeedState::Pending,
        Some(s) if s.hash != desired.seed_sha256 => SeedState::Changed,
        Some(_) => SeedState::Applied,
    }
}

fn buckets(spec: &ClientSpec, obs: &ObservedClient) -> BucketRow {
    let as_declared = obs.database.as_ref().map(|db| {
        spec.buckets
            .iter()
            .filter(|(name, b)| {
                db.buckets.iter().any(|r| {
                    &r.id == *name
                        && r.public == b.public
                        && r.file_size_limit == b.file_size_limit
                        && r.allowed_mime_types.clone().unwrap_or_default() == b.allowed_mime_types
                })
            })
            .count()
    });
    BucketRow {
        declared: spec.buckets.len(),
        as_declared,
    }
}

fn site(spec: &ClientSpec, obs: &ObservedClient, cp: &ClientPlan) -> SiteRow {
    let site: &ObservedSite = &obs.site;
    let healthy = obs.project.as_ref().is_some_and(|p| p.is_healthy());
    // A planned rollback means the live site is stale just as a planned deploy does.
    let deploy = cp.actions.iter().find_map(|a| {
        if let Action::Deploy { reason, .. } | Action::RollbackDeployment { reason, .. } = a {
            Some(*reason)
        } else {
            None
        }
    });
    let live = site
        .pages
        .as_ref()
        .and_then(|p| p.live_commit_message.as_deref());
    let state = match deploy {
        Some(Reason::NeverDeployed) => SiteState::NeverDeployed,
        Some(_) => SiteState::Stale,
        None if site.error.is_some() || live.is_none() || !healthy => SiteState::Unknown,
        None => SiteState::Current,
    };
    let domain_status = match (&site.domain_status, &site.dns) {
        (Some(s), _) => Some(s.as_str().to_string()),
        (None, Some(rec)) if ownership::marked_active(rec.comment.as_deref(), &spec.slug) => {
            Some("active".to_string())
        }
        (None, _) => None,
    };
    let dns = match &site.dns {
        None => DnsState::Missing,
        Some(rec) if !ownership::owned_by(rec.comment.as_deref(), &spec.slug) => DnsState::NotOwned,
        Some(rec) => {
            let target = site.pages.as_ref().map(|p| p.subdomain.as_str());
            if rec.record_type == "CNAME" && rec.proxied && Some(rec.content.as_str()) == target {
                DnsState::Ok
            } else {
                DnsState::Drifted
            }
        }
    };
    SiteRow {
        pages_project: spec.pages_project.clone(),
        state,
        reason: deploy.map(|r| r.to_string()),
        deployed_on: site.pages.as_ref().and_then(|p| p.live_deployed_on.clone()),
        domain: spec.domain.clone(),
        domain_status,
        dns,
    }
}

impl DnsState {
    pub fn as_str(self) -> &'static str {
        match self {
            DnsState::Ok => "ok",
            DnsState::Missing => "missing",
            DnsState::Drifted => "drifted",
            DnsState::NotOwned => "not intelli's",
        }
    }
}

#[cfg(test)]
mod tests;
