//! The plan: a value that says, per client, exactly what `apply` would do and why.
//!
//! It can be printed, saved as JSON (`--out plan.json`, schema in `schema/plan.schema.json`),
//! reviewed, and applied later. Nothing in it is secret.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::fleet::ClientState;
use crate::observe::OrphanProject;

/// Bumped whenever the JSON shape changes incompatibly.
pub const FORMAT_VERSION: u32 = 1;

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
    pub orphans: Vec<OrphanProject>,
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
}

impl ClientPlan {
    pub fn has_changes(&self) -> bool {
        !self.actions.is_empty()
    }
}

/// One step of a client's plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// Create the Supabase project, then wait until it is `ACTIVE_HEALTHY`.
    CreateProject {
        name: String,
        organization_slug: String,
        region: String,
        instance_size: Option<String>,
    },
    /// Wait for a project that is provisioning or restoring; what follows is planned again
    /// once it is healthy.
    WaitUntilHealthy {
        status: String,
    },
    /// Restore a paused project; the rest of its changes are planned once it is healthy.
    RestoreProject,
    PauseProject,
    /// Delete the project and everything in it. Only with `state: deleted` and `--allow-delete`.
    DeleteProject {
        project_ref: String,
    },
    UpdateAuthConfig {
        site_url: Change<String>,
        redirect_urls: Change<Vec<String>>,
    },
    CreateBucket {
        bucket: BucketSpec,
    },
    UpdateBucket {
        before: BucketSpec,
        after: BucketSpec,
    },
    /// Apply these migration versions, in order, each in its own transaction with its history row.
    ApplyMigrations {
        versions: Vec<String>,
    },
    /// Run the per-client seed once and record it.
    ApplySeed {
        path: String,
        sha256: String,
    },
    /// Create the client's Cloudflare Pages project.
    CreatePagesProject {
        name: String,
        production_branch: String,
    },
    /// Bring an existing Pages project's production branch back to the fleet's.
    UpdatePagesProject {
        name: String,
        production_branch: Change<String>,
    },
    /// Build the frontend with the client's values and deploy it (uploading only new files).
    Deploy {
        project: String,
        /// The build fingerprint (deployment `commit_hash`); `null` until the Supabase project
        /// exists (its URL and key are part of the build).
        fingerprint: Option<String>,
        reason: String,
    },
    /// Attach the client's domain to its Pages project.
    AddDomain {
        project: String,
        domain: String,
    },
    /// Create or fix the proxied CNAME `name` → the project's `*.pages.dev` subdomain.
    UpsertDnsRecord {
        name: String,
        /// `null` until the Pages project exists (its subdomain may get a random suffix).
        target: Option<String>,
        before: Option<String>,
    },
    /// Delete the client's Pages project (its deployments and custom domain go with it) and
    /// the DNS record intelli made for it. Only with `state: deleted` and `--allow-delete`.
    DeleteSite {
        project: String,
        dns_record: Option<String>,
    },
    /// Wait until the custom domain is active (validation and TLS), then check the site.
    WaitForDomain {
        domain: String,
        status: Option<String>,
    },
}

impl Action {
    /// Whether the action belongs to the Cloudflare side (run after the Supabase side).
    pub fn is_site(&self) -> bool {
        matches!(
            self,
            Action::CreatePagesProject { .. }
                | Action::UpdatePagesProject { .. }
                | Action::Deploy { .. }
                | Action::AddDomain { .. }
                | Action::UpsertDnsRecord { .. }
                | Action::WaitForDomain { .. }
                | Action::DeleteSite { .. }
        )
    }

    /// Terraform-style symbol: `+` create, `~` change, `-` destroy, `>` run.
    pub fn symbol(&self) -> char {
        match self {
            Action::CreateProject { .. }
            | Action::CreateBucket { .. }
            | Action::CreatePagesProject { .. }
            | Action::AddDomain { .. } => '+',
            Action::DeleteProject { .. } | Action::DeleteSite { .. } => '-',
            Action::ApplyMigrations { .. }
            | Action::ApplySeed { .. }
            | Action::WaitUntilHealthy { .. }
            | Action::Deploy { .. }
            | Action::WaitForDomain { .. } => '>',
            _ => '~',
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
