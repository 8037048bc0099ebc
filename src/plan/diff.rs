//! Desired + observed → plan. Pure: no I/O, no clock, no randomness, so the same inputs always
//! give the same plan (which is what lets a saved plan be checked against a fresh one).

use std::collections::BTreeSet;

use crate::fleet::{ClientSpec, ClientState, Fleet};
use crate::migrate::MigrationFile;
use crate::migrate::history;
use crate::observe::{BucketRow, ObservedClient, ObservedDatabase, ObservedFleet};

use super::model::{Action, BucketSpec, Change, ClientPlan, FORMAT_VERSION, Plan};

/// Everything desired, read from the repository.
pub struct Desired<'a> {
    pub fleet: &'a Fleet,
    pub migrations: &'a [MigrationFile],
    /// Repository-relative path of the seed file and the hex SHA-256 of its bytes.
    pub seed_path: String,
    pub seed_sha256: String,
    /// Digest of all of the above, recorded in the plan.
    pub digest: String,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct PlanOptions {
    /// Apply migration files older than the newest applied one (the CLI's `--include-all`).
    pub include_all: bool,
    /// Allow `DeleteProject` for clients declared `state: deleted`.
    pub allow_delete: bool,
}

/// The plan for `clients` (already selected by `--only`/`--exclude`).
pub fn plan(
    desired: &Desired<'_>,
    clients: &[&ClientSpec],
    observed: &ObservedFleet,
    opts: PlanOptions,
) -> Plan {
    let empty = ObservedClient::default();
    Plan {
        format_version: FORMAT_VERSION,
        intelli_version: env!("CARGO_PKG_VERSION").to_string(),
        desired_digest: desired.digest.clone(),
        clients: clients
            .iter()
            .map(|c| {
                plan_client(
                    desired,
                    c,
                    observed.clients.get(&c.slug).unwrap_or(&empty),
                    opts,
                )
            })
            .collect(),
        orphans: observed.orphans.clone(),
    }
}

pub fn plan_client(
    desired: &Desired<'_>,
    spec: &ClientSpec,
    obs: &ObservedClient,
    opts: PlanOptions,
) -> ClientPlan {
    let mut p = ClientPlan {
        client: spec.slug.clone(),
        state: spec.state,
        project_name: spec.resource_name.clone(),
        project_ref: obs.project.as_ref().map(|p| p.project_ref.clone()),
        actions: Vec::new(),
        errors: Vec::new(),
        notes: Vec::new(),
    };
    if let Some(e) = &obs.error {
        p.errors.push(format!("could not observe: {e}"));
        return p;
    }
    if !obs.duplicates.is_empty() {
        p.errors.push(format!(
            "{} projects are named `{}` ({}); intelli will not guess which one is this client's — \
             pin it with `project_ref:` in {}",
            obs.duplicates.len(),
            spec.resource_name,
            obs.duplicates.join(", "),
            spec.file.display()
        ));
        return p;
    }

    let Some(project) = &obs.project else {
        match (spec.state, &spec.project_ref) {
            (ClientState::Deleted, _) => p
                .notes
                .push("declared deleted and no project exists".into()),
            (_, Some(r)) => p.errors.push(format!(
                "project_ref `{r}` is pinned in {} but no such project is visible to this token",
                spec.file.display()
            )),
            (ClientState::Paused, None) => {
                p.notes
                    .push("declared paused and no project exists: nothing to create".into());
            }
            (ClientState::Active, None) => {
                p.actions.push(Action::CreateProject {
                    name: spec.resource_name.clone(),
                    organization_slug: desired.fleet.settings.supabase.organization_slug.clone(),
                    region: spec.region.clone(),
                    instance_size: spec.instance_size.clone(),
                });
                // A new project is empty: everything after creation is known now.
                converge_healthy(
                    desired,
                    spec,
                    None,
                    &ObservedDatabase::default(),
                    opts,
                    &mut p,
                );
            }
        }
        return p;
    };

    match spec.state {
        ClientState::Deleted => {
            if opts.allow_delete {
                p.actions.push(Action::DeleteProject {
                    project_ref: project.project_ref.clone(),
                });
            } else {
                p.errors.push(format!(
                    "declared `state: deleted`: applying would permanently delete project {} ({}) with its \
                     database, auth users and stored files; re-run with --allow-delete to do it",
                    project.name, project.project_ref
                ));
            }
        }
        ClientState::Paused => {
            if !project.is_paused() {
                p.actions.push(Action::PauseProject);
            }
        }
        ClientState::Active => {
            if project.is_paused() {
                p.actions.push(Action::RestoreProject);
                p.notes.push(
                    "the project's other settings are planned once it has been restored".into(),
                );
            } else if !project.is_healthy() {
                p.actions.push(Action::WaitUntilHealthy {
                    status: project.status.clone(),
                });
                p.notes.push(
                    "the project's other settings are planned once it is ACTIVE_HEALTHY".into(),
                );
            } else {
                let Some(db) = &obs.database else {
                    p.errors
                        .push("the project's database could not be read".into());
                    return p;
                };
                converge_healthy(desired, spec, obs.auth.as_ref(), db, opts, &mut p);
            }
        }
    }
    p
}

/// The actions that bring a healthy (or about to be created) project to the desired settings.
fn converge_healthy(
    desired: &Desired<'_>,
    spec: &ClientSpec,
    auth: Option<&crate::observe::ObservedAuth>,
    db: &ObservedDatabase,
    opts: PlanOptions,
    p: &mut ClientPlan,
) {
    // Auth: only the fields intelli manages; masked secret fields are never compared.
    let want_urls = spec.redirect_urls.clone();
    let site_same = auth.and_then(|a| a.site_url.as_deref()) == Some(spec.site_url.as_str());
    let urls_same = auth.is_some_and(|a| {
        a.redirect_urls.iter().collect::<BTreeSet<_>>() == want_urls.iter().collect::<BTreeSet<_>>()
    });
    if !(site_same && urls_same) {
        p.actions.push(Action::UpdateAuthConfig {
            site_url: Change {
                before: auth.and_then(|a| a.site_url.clone()),
                after: spec.site_url.clone(),
            },
            redirect_urls: Change {
                before: auth.map(|a| a.redirect_urls.clone()),
                after: want_urls,
            },
        });
    }

    // Buckets before migrations: a migration may reference a bucket, and the fleet's settings
    // (not a migration's insert) decide how a bucket is configured.
    for (name, b) in &spec.buckets {
        let want = BucketSpec {
            name: name.clone(),
            public: b.public,
            file_size_limit: b.file_size_limit,
            allowed_mime_types: b.allowed_mime_types.clone(),
        };
        match db.buckets.iter().find(|r| &r.id == name) {
            None => p.actions.push(Action::CreateBucket { bucket: want }),
            Some(row) => {
                let have = bucket_of(row);
                if have != want {
                    p.actions.push(Action::UpdateBucket {
                        before: have,
                        after: want,
                    });
                }
            }
        }
    }
    for row in &db.buckets {
        if !spec.buckets.contains_key(&row.id) {
            p.notes.push(format!(
                "bucket `{}` exists but is not in the fleet files; intelli leaves it alone",
                row.id
            ));
        }
    }

    match history::pending(desired.migrations, &db.migrations, opts.include_all) {
        Ok(versions) if versions.is_empty() => {}
        Ok(versions) => p.actions.push(Action::ApplyMigrations { versions }),
        Err(problems) => {
            p.errors.extend(problems.iter().map(ToString::to_string));
            p.actions.clear();
            return;
        }
    }

    match db.seeds.iter().find(|s| s.path == desired.seed_path) {
        None => p.actions.push(Action::ApplySeed {
            path: desired.seed_path.clone(),
            sha256: desired.seed_sha256.clone(),
        }),
        Some(s) if s.hash != desired.seed_sha256 => p.notes.push(format!(
            "{} changed since it was applied; a seed runs once per client and is not re-run \
             (put data changes for existing clients in a migration)",
            desired.seed_path
        )),
        Some(_) => {}
    }
}

fn bucket_of(row: &BucketRow) -> BucketSpec {
    BucketSpec {
        name: row.id.clone(),
        public: row.public,
        file_size_limit: row.file_size_limit,
        allowed_mime_types: row.allowed_mime_types.clone().unwrap_or_default(),
    }
}
