//! The plan: a value that says, per client, exactly what `apply` would do and why.
//!
//! It can be printed, saved as JSON (`--out plan.json`, schema in `schema/plan.schema.json`),
//! reviewed, and applied later. Nothing in it is secret.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use std::fmt;

use crate::cloudflare::types::DomainStatus;
use crate::fleet::ClientState;
use crate::supabase::types::{NewKeyKind, ProjectStatus};

/// Bumped whenever the JSON shape changes incompatibly. 2: every action carries a typed
/// `reason`; `upsert_dns_record.before` is a record, not text.
pub const FORMAT_VERSION: u32 = 2;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Plan {
    pub format_version: u32,
    /// The intelli version that made the plan.
    pub intelli_version: String,
    /// Digest of the desired state (fleet files, migrations, seed) the plan was made from; a
    /// saved plan is refused when it no longer matches.
    pub desired_digest: String,
    /// One entry per selected client, ordered by slug.
    pub clients: Vec<ClientPlan>,
    /// Projects with the fleet's name prefix that no client file claims. Never deleted.
    pub orphans: Vec<Orphan>,
    /// `K/N` when the plan covers one shard of the fleet (`--shard`, see `shard`); absent for
    /// the whole fleet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// The rollout, when fleet.yaml has `rollout:`: the waves in the order apply runs them,
    /// each with the selected clients it holds (`rest`, marked `implicit`, holds the clients no
    /// wave selects). Absent: apply runs the selection as one wave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Vec<crate::fleet::rollout::Wave>>,
    /// The fleet's health checks (`checks:`), which apply runs on each client it changes and on
    /// the clients of a wave that gates a later one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<crate::fleet::CheckSpec>,
}

/// A project named with the fleet's prefix that no client file claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Orphan {
    pub name: String,
    pub project_ref: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ClientPlan {
    pub client: String,
    pub state: ClientState,
    /// The Supabase project's name.
    pub project_name: String,
    /// The project's ref; `null` when the project does not exist yet (known after apply).
    pub project_ref: Option<String>,
    /// In execution order.
    pub actions: Vec<Action>,
    /// Problems that stop this client (and only this client) from being applied.
    pub errors: Vec<String>,
    /// Things worth knowing that change nothing (unmanaged buckets, a changed seed, …).
    pub notes: Vec<String>,
    /// The Cloudflare account holding the client's Pages project, or chosen for it when it is
    /// created; absent when the Cloudflare side is not planned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloudflare_account: Option<String>,
}

impl ClientPlan {
    pub fn has_changes(&self) -> bool {
        !self.actions.is_empty()
    }

    /// A client's plan as the unit tests of rendering and grouping write it: project named as
    /// the planner names it, no errors, notes or Cloudflare account.
    #[cfg(test)]
    pub(crate) fn for_test(
        slug: &str,
        state: ClientState,
        project_ref: Option<&str>,
        actions: Vec<Action>,
    ) -> Self {
        ClientPlan {
            client: slug.into(),
            state,
            project_name: format!("intelli-{slug}"),
            project_ref: project_ref.map(Into::into),
            actions,
            errors: vec![],
            notes: vec![],
            cloudflare_account: None,
        }
    }
}

/// One step of a client's plan. Every variant carries the [`Reason`] it was planned for.
///
/// The meaning of a variant lives in three places only: [`Action::kind`] (what sort of change
/// it is), [`super::describe`] (how people see it) and `apply` (how it is done). All three match
/// exhaustively, so a new variant cannot compile until each says what it means.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// Create the Supabase project, then wait until it is `ACTIVE_HEALTHY`.
    CreateProject {
        name: String,
        organization_slug: String,
        region: String,
        instance_size: Option<String>,
        reason: Reason,
    },
    /// Wait for a project that is provisioning or restoring; what follows is planned again
    /// once it is healthy.
    WaitUntilHealthy {
        #[schemars(with = "String")]
        status: ProjectStatus,
        reason: Reason,
    },
    /// Restore a paused project; the rest of its changes are planned once it is healthy.
    RestoreProject {
        reason: Reason,
    },
    PauseProject {
        reason: Reason,
    },
    /// Delete the project and everything in it. Only with `state: deleted` and `--allow-delete`.
    DeleteProject {
        project_ref: String,
        reason: Reason,
    },
    UpdateAuthConfig {
        site_url: Change<String>,
        redirect_urls: Change<Vec<String>>,
        reason: Reason,
    },
    /// Create a Storage bucket. If it turns out to exist already (a concurrent run, or the
    /// answer to an earlier create was lost), apply sets its settings to these instead: the
    /// documented follow-up of this action.
    CreateBucket {
        bucket: BucketSpec,
        reason: Reason,
    },
    UpdateBucket {
        before: BucketSpec,
        after: BucketSpec,
        reason: Reason,
    },
    /// Apply these migration versions, in order, each in its own transaction with its history row.
    ApplyMigrations {
        versions: Vec<String>,
        reason: Reason,
    },
    /// Run the per-client seed once and record it.
    ApplySeed {
        path: String,
        sha256: String,
        reason: Reason,
    },
    /// Record the seed as applied without running it: its rows are present (the fleet's
    /// `migrations.seed_check` said so), put there before intelli managed the client. Safe to
    /// repeat: guarded like a seed (advisory lock, "already recorded" check and the history row
    /// in one transaction), so a re-send records nothing twice.
    RecordSeed {
        path: String,
        sha256: String,
        reason: Reason,
    },
    /// Create the client's Cloudflare Pages project in the account placement chose.
    CreatePagesProject {
        name: String,
        production_branch: String,
        reason: Reason,
        account_id: String,
    },
    /// Bring an existing Pages project's production branch back to the fleet's.
    UpdatePagesProject {
        name: String,
        production_branch: Change<String>,
        reason: Reason,
    },
    /// Build the frontend with the client's values and deploy it (uploading only new files).
    Deploy {
        project: String,
        /// The build fingerprint (deployment `commit_hash`); `null` until the Supabase project
        /// exists (its URL and key are part of the build).
        fingerprint: Option<String>,
        /// The live deployment this one replaces, when it carries a fingerprint, with the ones
        /// it replaced in turn (`earlier`): recorded in the new deployment's commit message,
        /// so that reverting to any of them later is a `rollback_deployment` found without
        /// listing the project's deployments.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        previous: Option<PreviousDeployment>,
        reason: Reason,
    },
    /// Make an existing production deployment that was built with exactly the desired
    /// fingerprint the live one again (`POST …/deployments/{id}/rollback`): no build, no
    /// upload, one request. Safe to repeat: rolling back to the same deployment again leaves
    /// the same deployment live.
    RollbackDeployment {
        project: String,
        deployment_id: String,
        /// The target's fingerprint (its `commit_hash`), equal to the desired build's.
        fingerprint: String,
        reason: Reason,
    },
    /// Attach the client's domain to its Pages project.
    AddDomain {
        project: String,
        domain: String,
        reason: Reason,
    },
    /// Create or fix the proxied CNAME `name` → the project's `*.pages.dev` subdomain, with
    /// intelli's ownership comment (see [`super::ownership`]).
    UpsertDnsRecord {
        name: String,
        /// `null` until the Pages project exists (its subdomain may get a random suffix).
        target: Option<String>,
        /// The record as it is now; `null` when there is none.
        before: Option<DnsRecordValue>,
        reason: Reason,
    },
    /// Take over a DNS record made by hand that already points at the site (a CNAME to the
    /// Pages project's subdomain): mark it with intelli's ownership comment and make it
    /// proxied. No `take_over_dns` is needed, since nothing it serves changes. Safe to repeat: a
    /// PATCH by record id of absolute values; apply re-reads the record first and stops if it
    /// no longer points at the site.
    AdoptDnsRecord {
        name: String,
        target: String,
        /// Whether the record is proxied now (apply makes it proxied).
        proxied: bool,
        reason: Reason,
    },
    /// Delete the client's Pages project (its deployments and custom domain go with it) and
    /// the DNS record intelli made for it. Only with `state: deleted` and `--allow-delete`.
    DeleteSite {
        project: String,
        dns_record: Option<String>,
        reason: Reason,
    },
    /// Wait until the custom domain is active (validation and TLS), then check the site.
    /// Follow-ups: validation is restarted once if the domain is stuck in an error state, and
    /// once active, the DNS record's comment is marked `domain active` (so later plans need
    /// not read the domain).
    WaitForDomain {
        domain: String,
        #[schemars(with = "Option<String>")]
        status: Option<DomainStatus>,
        reason: Reason,
    },
    /// Create an API key the project lacks (`POST /v1/projects/{ref}/api-keys`): a publishable
    /// key for the site's browser code, or a secret key acting as `service_role` for Storage.
    /// Safe to repeat by looking before creating: after a lost answer (or a refusal because
    /// the name is taken) the keys are listed, and a key of this type and name counts as done.
    CreateApiKey {
        key_type: NewKeyKind,
        /// Valid under the vendor's `^[a-z_][a-z0-9_]+$` (4 to 64 characters).
        name: String,
        reason: Reason,
    },
    /// Switch both legacy JWT keys (`anon`, `service_role`) off
    /// (`PUT /v1/projects/{ref}/api-keys/legacy?enabled=false`). Planned only with
    /// `supabase.legacy_keys: disable`, once the site serves a build made with the publishable
    /// key and the project has a secret key for Storage.
    DisableLegacyKeys {
        reason: Reason,
    },
}

/// What sort of change an action is; it gives the Terraform-style symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    Create,
    Update,
    Delete,
    /// Runs something (migrations, a seed, a build) without a resource of its own.
    Run,
    /// Waits for the vendor to finish something.
    Wait,
}

impl ActionKind {
    /// `+` create, `~` change, `-` destroy, `>` run or wait.
    pub fn symbol(self) -> char {
        match self {
            ActionKind::Create => '+',
            ActionKind::Update => '~',
            ActionKind::Delete => '-',
            ActionKind::Run | ActionKind::Wait => '>',
        }
    }
}

/// Why an action is in the plan. Shown in the plan (for deployments), saved in its JSON, and
/// recorded on apply's tracing span for the action (like kube-rs's `ReconcileReason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The resource does not exist yet.
    Missing,
    /// The resource exists but differs from the fleet files.
    Drifted,
    /// A DNS record intelli does not own, replaced because the client says `take_over_dns`.
    TakeOver,
    /// Declared `state: active`, but the project is paused.
    DeclaredActive,
    /// Declared `state: paused`.
    DeclaredPaused,
    /// Declared `state: deleted`, with `--allow-delete`.
    DeclaredDeleted,
    /// The project is provisioning, restoring or otherwise on its way to healthy.
    ProjectNotReady,
    /// Migration files not recorded in the project's history.
    MigrationsPending,
    /// The seed has not run on this project.
    SeedNotApplied,
    /// The site has no deployment yet.
    NeverDeployed,
    /// The live deployment was not made by intelli, or carries no fingerprint.
    NoFingerprint,
    FrontendSourcesChanged,
    BuildValuesChanged,
    FrontendSourcesAndBuildValuesChanged,
    /// The Supabase project is being created; the build needs its URL and key.
    ProjectBeingCreated,
    /// The custom domain is not active yet (validation or TLS pending).
    DomainNotActive,
    /// The seed's rows are present (`migrations.seed_check`) but the seed is not recorded.
    SeedPresent,
    /// A record intelli does not own already points at the site.
    PointsAtSite,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reason::Missing => "it does not exist yet",
            Reason::Drifted => "it differs from the fleet files",
            Reason::TakeOver => "the record is not intelli's and take_over_dns is set",
            Reason::DeclaredActive => "declared active, but the project is paused",
            Reason::DeclaredPaused => "declared paused",
            Reason::DeclaredDeleted => "declared deleted, and --allow-delete was given",
            Reason::ProjectNotReady => "the project is not healthy yet",
            Reason::MigrationsPending => "migration files are not in the project's history",
            Reason::SeedNotApplied => "the seed has not run on this project",
            Reason::NeverDeployed => "never deployed",
            Reason::NoFingerprint => {
                "the live deployment was not made by intelli (or has no fingerprint)"
            }
            Reason::FrontendSourcesChanged => "frontend sources changed",
            Reason::BuildValuesChanged => "build-time values changed",
            Reason::FrontendSourcesAndBuildValuesChanged => {
                "frontend sources and build-time values changed"
            }
            Reason::ProjectBeingCreated => {
                "the Supabase project is being set up; the build uses its URL and key"
            }
            Reason::DomainNotActive => "the domain is not active yet",
            Reason::SeedPresent => {
                "the seed's rows are present (migrations.seed_check) but it was never recorded"
            }
            Reason::PointsAtSite => "the record already points at the site; intelli adopts it",
        })
    }
}

/// A Pages deployment and the fingerprint it was built with (its `commit_hash`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DeploymentRef {
    pub deployment_id: String,
    pub fingerprint: String,
}

/// The deployment a `Deploy` replaces and the ones before it, as its commit message recorded
/// them: what the new deployment records (see `frontend::Fingerprint::commit_message_after`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PreviousDeployment {
    pub deployment_id: String,
    /// Its fingerprint (its `commit_hash`).
    pub fingerprint: String,
    /// The deployments it replaced, newest first (at most two: the new deployment records
    /// three in all). Absent from plans saved before chains were recorded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier: Vec<DeploymentRef>,
}

impl PreviousDeployment {
    /// The chain the new deployment records, newest first: this one, then `earlier`.
    pub fn chain(&self) -> Vec<(&str, &str)> {
        std::iter::once((self.deployment_id.as_str(), self.fingerprint.as_str()))
            .chain(
                self.earlier
                    .iter()
                    .map(|d| (d.deployment_id.as_str(), d.fingerprint.as_str())),
            )
            .collect()
    }
}

/// A DNS record's values, as a plan shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DnsRecordValue {
    pub record_type: String,
    pub content: String,
    pub proxied: bool,
}

impl Action {
    /// What sort of change this is.
    pub fn kind(&self) -> ActionKind {
        match self {
            Action::CreateProject { .. }
            | Action::CreateBucket { .. }
            | Action::CreatePagesProject { .. }
            | Action::AddDomain { .. }
            | Action::CreateApiKey { .. } => ActionKind::Create,
            Action::RestoreProject { .. }
            | Action::PauseProject { .. }
            | Action::UpdateAuthConfig { .. }
            | Action::UpdateBucket { .. }
            | Action::UpdatePagesProject { .. }
            | Action::UpsertDnsRecord { .. }
            | Action::AdoptDnsRecord { .. }
            | Action::RecordSeed { .. }
            | Action::RollbackDeployment { .. }
            | Action::DisableLegacyKeys { .. } => ActionKind::Update,
            Action::DeleteProject { .. } | Action::DeleteSite { .. } => ActionKind::Delete,
            Action::ApplyMigrations { .. } | Action::ApplySeed { .. } | Action::Deploy { .. } => {
                ActionKind::Run
            }
            Action::WaitUntilHealthy { .. } | Action::WaitForDomain { .. } => ActionKind::Wait,
        }
    }

    /// Terraform-style symbol, from [`Action::kind`].
    pub fn symbol(&self) -> char {
        self.kind().symbol()
    }

    /// Why the action was planned.
    pub fn reason(&self) -> Reason {
        match self {
            Action::CreateProject { reason, .. }
            | Action::WaitUntilHealthy { reason, .. }
            | Action::RestoreProject { reason }
            | Action::PauseProject { reason }
            | Action::DeleteProject { reason, .. }
            | Action::UpdateAuthConfig { reason, .. }
            | Action::CreateBucket { reason, .. }
            | Action::UpdateBucket { reason, .. }
            | Action::ApplyMigrations { reason, .. }
            | Action::ApplySeed { reason, .. }
            | Action::RecordSeed { reason, .. }
            | Action::AdoptDnsRecord { reason, .. }
            | Action::CreatePagesProject { reason, .. }
            | Action::UpdatePagesProject { reason, .. }
            | Action::Deploy { reason, .. }
            | Action::RollbackDeployment { reason, .. }
            | Action::AddDomain { reason, .. }
            | Action::UpsertDnsRecord { reason, .. }
            | Action::DeleteSite { reason, .. }
            | Action::WaitForDomain { reason, .. }
            | Action::CreateApiKey { reason, .. }
            | Action::DisableLegacyKeys { reason } => *reason,
        }
    }

    /// Whether apply builds the frontend for it (so the install step must run first): the
    /// site side's only action that runs something is its deployment (a rollback is an
    /// update of which deployment is live, and builds nothing).
    pub fn builds_site(&self) -> bool {
        self.is_site() && self.kind() == ActionKind::Run
    }

    /// Whether the action belongs to the Cloudflare side (run after the Supabase side).
    pub fn is_site(&self) -> bool {
        match self {
            Action::CreatePagesProject { .. }
            | Action::UpdatePagesProject { .. }
            | Action::Deploy { .. }
            | Action::RollbackDeployment { .. }
            | Action::AddDomain { .. }
            | Action::UpsertDnsRecord { .. }
            | Action::AdoptDnsRecord { .. }
            | Action::WaitForDomain { .. }
            | Action::DeleteSite { .. } => true,
            Action::CreateProject { .. }
            | Action::WaitUntilHealthy { .. }
            | Action::RestoreProject { .. }
            | Action::PauseProject { .. }
            | Action::DeleteProject { .. }
            | Action::UpdateAuthConfig { .. }
            | Action::CreateBucket { .. }
            | Action::UpdateBucket { .. }
            | Action::ApplyMigrations { .. }
            | Action::ApplySeed { .. }
            | Action::RecordSeed { .. }
            | Action::CreateApiKey { .. }
            | Action::DisableLegacyKeys { .. } => false,
        }
    }
}

/// A value before and after. `before: null` means absent now, or not knowable until an earlier
/// action has run (a new project's settings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Change<T> {
    pub before: Option<T>,
    pub after: T,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BucketSpec {
    pub name: String,
    pub public: bool,
    pub file_size_limit: Option<u64>,
    pub allowed_mime_types: Vec<String>,
}

/// Fleet-wide counts for the summary line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub clients: usize,
    pub with_changes: usize,
    pub with_errors: usize,
    pub actions: usize,
}

impl Plan {
    pub fn totals(&self) -> Totals {
        let mut t = Totals {
            clients: self.clients.len(),
            ..Totals::default()
        };
        for c in &self.clients {
            t.actions += c.actions.len();
            if c.has_changes() {
                t.with_changes += 1;
            }
            if !c.errors.is_empty() {
                t.with_errors += 1;
            }
        }
        t
    }

    pub fn has_changes(&self) -> bool {
        self.clients.iter().any(ClientPlan::has_changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_deployment_builds_and_kinds_give_the_symbols() {
        let deploy = Action::Deploy {
            project: "p".into(),
            fingerprint: None,
            previous: None,
            reason: Reason::NeverDeployed,
        };
        let rollback = Action::RollbackDeployment {
            project: "p".into(),
            deployment_id: "d".into(),
            fingerprint: "f".repeat(40),
            reason: Reason::FrontendSourcesChanged,
        };
        assert!(!rollback.builds_site() && rollback.is_site());
        assert_eq!(rollback.symbol(), '~');
        let migrate = Action::ApplyMigrations {
            versions: vec!["1".into()],
            reason: Reason::MigrationsPending,
        };
        let wait = Action::WaitForDomain {
            domain: "d".into(),
            status: None,
            reason: Reason::DomainNotActive,
        };
        let delete = Action::DeleteSite {
            project: "p".into(),
            dns_record: None,
            reason: Reason::DeclaredDeleted,
        };
        assert!(deploy.builds_site());
        assert!(!migrate.builds_site() && !wait.builds_site() && !delete.builds_site());
        assert_eq!(
            [&deploy, &migrate, &wait, &delete].map(Action::symbol),
            ['>', '>', '>', '-']
        );
        assert_eq!(deploy.reason().to_string(), "never deployed");
    }

    #[test]
    fn a_deploy_saved_before_chains_still_loads() {
        let id = "0b5a3e2c-1f0d-4c1e-9a7b-3f2e1d0c9b8a";
        let fp = "c".repeat(40);
        let before = serde_json::json!({
            "type": "deploy",
            "project": "intelli-acme",
            "fingerprint": "d".repeat(40),
            "previous": {"deployment_id": id, "fingerprint": fp},
            "reason": "frontend_sources_changed",
        });
        let a: Action = serde_json::from_value(before.clone()).expect("loads");
        let Action::Deploy {
            previous: Some(previous),
            ..
        } = &a
        else {
            panic!("a deploy with its previous deployment: {a:?}");
        };
        assert!(previous.earlier.is_empty());
        assert_eq!(previous.chain(), [(id, fp.as_str())]);
        // … and a deploy with no earlier deployments is written as before.
        assert_eq!(serde_json::to_value(&a).expect("json"), before);
    }
}
