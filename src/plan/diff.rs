//! Desired + observed → plan. Pure: no I/O, no clock, no randomness, so the same inputs always
//! give the same plan (which is what lets a saved plan be checked against a fresh one).

use std::collections::BTreeSet;

use crate::fleet::{ClientSpec, ClientState, Fleet};
use crate::migrate::MigrationFile;
use crate::migrate::history;
use crate::observe::{
    BucketRow, ObservedClient, ObservedDatabase, ObservedFleet, ObservedProject, ObservedSite,
};

use super::model::{
    Action, BucketSpec, Change, ClientPlan, DeploymentRef, DnsRecordValue, FORMAT_VERSION, Orphan,
    Plan, PreviousDeployment, Reason,
};
use super::ownership;
use crate::cloudflare::types::DomainStatus;
use crate::frontend::Staleness;
use crate::supabase::types::ProjectStatus;

/// Everything desired, read from the repository.
pub struct Desired<'a> {
    pub fleet: &'a Fleet,
    pub migrations: &'a [MigrationFile],
    /// Repository-relative path of the seed file and the hex SHA-256 of its bytes.
    pub seed_path: String,
    pub seed_sha256: String,
    /// Digest of all of the above, recorded in the plan.
    pub digest: String,
    /// The Cloudflare side, when it is planned (`None` with `--skip-frontend`).
    pub frontend: Option<FrontendDesired>,
}

/// What the frontend side needs to know to decide, without building.
#[derive(Debug, Clone)]
pub struct FrontendDesired {
    /// [`crate::frontend::source_digest`] of the master-mold frontend.
    pub source_digest: String,
    /// Per-project URL template (`https://{ref}.supabase.co`): the site's `VITE_SUPABASE_URL`.
    pub project_url_template: String,
    /// Extra build-time values per client, `${env:…}` resolved (or why they could not be).
    pub client_env: std::collections::BTreeMap<
        String,
        Result<std::collections::BTreeMap<String, String>, String>,
    >,
    /// The Cloudflare account of each client's site ([`crate::fleet::placement`]).
    pub accounts: crate::fleet::placement::Placement,
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
        orphans: observed
            .orphans
            .iter()
            .map(|o| Orphan {
                name: o.name.clone(),
                project_ref: o.project_ref.clone(),
            })
            .collect(),
        shard: None,
        rollout: crate::fleet::rollout::waves(
            &desired.fleet.settings,
            clients.iter().map(|c| (c.slug.as_str(), &c.labels)),
        ),
        checks: desired.fleet.settings.checks.clone(),
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
        cloudflare_account: None,
    };
    if let Some(e) = &obs.error {
        p.errors.push(format!("could not observe: {e}"));
        return p;
    }
    for d in &obs.dying {
        p.notes.push(format!(
            "project {} ({}) is {}: it is being deleted and is not this client's",
            spec.resource_name, d.project_ref, d.status
        ));
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
        plan_without_project(desired, spec, obs, opts, &mut p);
        return p;
    };

    match spec.state {
        ClientState::Deleted => plan_deletion(desired, spec, obs, project, opts, &mut p),
        ClientState::Paused => {
            if !project.is_paused() {
                p.actions.push(Action::PauseProject {
                    reason: Reason::DeclaredPaused,
                });
            }
        }
        ClientState::Active => {
            if project.is_paused() {
                p.actions.push(Action::RestoreProject {
                    reason: Reason::DeclaredActive,
                });
                p.notes.push(
                    "the project's other settings are planned once it has been restored".into(),
                );
            } else if project.status == ProjectStatus::InitFailed {
                p.errors.push(format!(
                    "project {} ({}) failed to initialise (INIT_FAILED); delete it in the Supabase dashboard \
                     (or pin another project with project_ref) and apply again",
                    project.name, project.project_ref
                ));
            } else if !project.is_healthy() {
                p.actions.push(Action::WaitUntilHealthy {
                    status: project.status.clone(),
                    reason: Reason::ProjectNotReady,
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
                super::keys::plan_keys(obs, &mut p);
                converge_healthy(desired, spec, obs.auth.as_ref(), db, opts, &mut p);
            }
            if p.errors.is_empty() {
                plan_site(desired, spec, obs, &mut p);
            }
            if p.errors.is_empty() {
                super::keys::plan_legacy_keys(desired, spec, obs, &mut p);
            }
        }
    }
    p
}

/// A client declared deleted whose project exists.
fn plan_deletion(
    desired: &Desired<'_>,
    spec: &ClientSpec,
    obs: &ObservedClient,
    project: &ObservedProject,
    opts: PlanOptions,
    p: &mut ClientPlan,
) {
    if opts.allow_delete {
        p.actions.push(Action::DeleteProject {
            project_ref: project.project_ref.clone(),
            reason: Reason::DeclaredDeleted,
        });
        delete_site(desired, spec, obs, p);
    } else {
        p.errors.push(format!(
            "declared `state: deleted`: applying would permanently delete project {} ({}) with its \
             database, auth users and stored files{}; re-run with --allow-delete to do it",
            project.name,
            project.project_ref,
            if obs.site.pages.is_some() {
                format!(", and the site {} on {}", spec.pages_project, spec.domain)
            } else {
                String::new()
            }
        ));
    }
}

/// A client whose project does not exist (or is not visible).
fn plan_without_project(
    desired: &Desired<'_>,
    spec: &ClientSpec,
    obs: &ObservedClient,
    opts: PlanOptions,
    p: &mut ClientPlan,
) {
    match (spec.state, &spec.project_ref) {
        (ClientState::Deleted, _) => {
            p.notes
                .push("declared deleted and no Supabase project exists".into());
            // A site left behind by an interrupted offboarding is finished off too.
            if opts.allow_delete {
                delete_site(desired, spec, obs, p);
            } else if obs.site.pages.is_some() {
                p.errors.push(format!(
                    "declared `state: deleted`: applying would delete Pages project {}; re-run with --allow-delete to do it",
                    spec.pages_project
                ));
            }
        }
        (_, Some(r)) => match obs.dying.iter().find(|d| &d.project_ref == r) {
            Some(d) => p.errors.push(format!(
                "project_ref `{r}` is pinned in {} but that project is {} (being deleted); \
                 pin another project or remove project_ref to have a new one created",
                spec.file.display(),
                d.status
            )),
            None => p.errors.push(format!(
                "project_ref `{r}` is pinned in {} but no such project is visible to this token",
                spec.file.display()
            )),
        },
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
                reason: Reason::Missing,
            });
            // A new project is empty: everything after creation is known now.
            converge_healthy(desired, spec, None, &ObservedDatabase::default(), opts, p);
            if p.errors.is_empty() {
                plan_site(desired, spec, obs, p);
            }
        }
    }
}

/// For a client declared deleted (with `--allow-delete`): its Pages project and the DNS record
/// intelli owns for it.
fn delete_site(desired: &Desired<'_>, spec: &ClientSpec, obs: &ObservedClient, p: &mut ClientPlan) {
    let Some(front) = &desired.frontend else {
        return;
    };
    // The account the project is in (placement keeps a deleted client's existing site).
    p.cloudflare_account = front.accounts.get(&spec.slug).cloned();
    let owned_dns = obs
        .site
        .dns
        .as_ref()
        .filter(|d| ownership::owned_by(d.comment.as_deref(), &spec.slug))
        .map(|_| spec.domain.clone());
    if obs.site.pages.is_some() || owned_dns.is_some() {
        p.actions.push(Action::DeleteSite {
            project: spec.pages_project.clone(),
            dns_record: owned_dns,
            reason: Reason::DeclaredDeleted,
        });
    }
}

/// The Cloudflare side of an active client: Pages project, deployment, domain, DNS.
fn plan_site(desired: &Desired<'_>, spec: &ClientSpec, obs: &ObservedClient, p: &mut ClientPlan) {
    let Some(front) = &desired.frontend else {
        return;
    };
    let site = &obs.site;
    if let Some(e) = &site.error {
        p.errors.push(format!("could not observe the site: {e}"));
        return;
    }
    let Some(account) = front.accounts.get(&spec.slug) else {
        p.errors
            .push("no Cloudflare account was chosen for the site (internal)".into());
        return;
    };
    p.cloudflare_account = Some(account.clone());
    let branch = &desired.fleet.settings.cloudflare.production_branch;
    match &site.pages {
        None => p.actions.push(Action::CreatePagesProject {
            name: spec.pages_project.clone(),
            production_branch: branch.clone(),
            reason: Reason::Missing,
            account_id: account.clone(),
        }),
        Some(pages) if &pages.production_branch != branch => {
            p.actions.push(Action::UpdatePagesProject {
                name: spec.pages_project.clone(),
                production_branch: Change {
                    before: Some(pages.production_branch.clone()),
                    after: branch.clone(),
                },
                reason: Reason::Drifted,
            })
        }
        Some(_) => {}
    }

    if !plan_deploy(front, spec, obs, p) {
        return;
    }

    let attached = site
        .pages
        .as_ref()
        .is_some_and(|pg| pg.domains.contains(&spec.domain));
    if !attached {
        p.actions.push(Action::AddDomain {
            project: spec.pages_project.clone(),
            domain: spec.domain.clone(),
            reason: Reason::Missing,
        });
    }
    if !plan_dns(spec, site, p) {
        return;
    }
    if site.domain_status != Some(DomainStatus::Active) {
        p.actions.push(Action::WaitForDomain {
            domain: spec.domain.clone(),
            status: site.domain_status.clone(),
            reason: Reason::DomainNotActive,
        });
    }
}

/// The site's deployment: `false` when the client's build-time values are in error (the
/// client's actions are cleared).
fn plan_deploy(
    front: &FrontendDesired,
    spec: &ClientSpec,
    obs: &ObservedClient,
    p: &mut ClientPlan,
) -> bool {
    let site = &obs.site;
    // The build's values include the Supabase project's URL and anon key: known only once the
    // project exists and is healthy.
    // A publishable key this plan creates replaces the browser key: the build's values are
    // known once it exists.
    let key_pending = super::keys::publishable_pending(p);
    let fingerprint = match desired_fingerprint(front, spec, obs) {
        Err(e) => {
            p.errors.push(e.clone());
            p.actions.clear();
            return false;
        }
        Ok(_) if key_pending => None,
        Ok(fp) => fp,
    };
    let live = site
        .pages
        .as_ref()
        .and_then(|pg| pg.live_commit_message.as_deref())
        .and_then(crate::frontend::Fingerprint::parse);
    let reason = match (&site.pages, &fingerprint) {
        (None, _) => Some(Reason::NeverDeployed),
        (Some(pg), _) if pg.live_commit_message.is_none() => Some(Reason::NeverDeployed),
        // A new project: the site is built once it exists.
        (_, None) if obs.project.is_none() => Some(Reason::ProjectBeingCreated),
        (_, None) if key_pending => Some(Reason::BuildValuesChanged),
        // An existing project that is not healthy now (paused, restarting): its values cannot
        // be read, so the site is left as it is and checked on the next plan.
        (_, None) => {
            p.notes
                .push("the site is checked once the Supabase project is healthy".to_string());
            None
        }
        (_, Some(fp)) => fp.stale_reason(live.as_ref()).map(|s| match s {
            Staleness::NoFingerprint => Reason::NoFingerprint,
            Staleness::Sources => Reason::FrontendSourcesChanged,
            Staleness::Values => Reason::BuildValuesChanged,
            Staleness::SourcesAndValues => Reason::FrontendSourcesAndBuildValuesChanged,
        }),
    };
    let Some(reason) = reason else {
        return true;
    };
    let fingerprint = fingerprint
        .as_ref()
        .map(crate::frontend::Fingerprint::commit_hash);
    let pages = site.pages.as_ref();
    // The deployments live before this one, newest first, as the live one recorded them: when
    // one is the desired build (a revert), making it live again costs one request instead of a
    // build (the newest such, should two share the fingerprint).
    let chain = pages
        .and_then(|pg| pg.live_commit_message.as_deref())
        .map(crate::frontend::deployment_chain)
        .unwrap_or_default();
    let target = fingerprint
        .as_ref()
        .and_then(|want| chain.iter().find(|(_, fp)| fp == want));
    match target {
        Some((deployment_id, fp)) => {
            p.actions.push(Action::RollbackDeployment {
                project: spec.pages_project.clone(),
                deployment_id: deployment_id.clone(),
                fingerprint: fp.clone(),
                reason,
            });
        }
        None => p.actions.push(Action::Deploy {
            project: spec.pages_project.clone(),
            fingerprint,
            // Recorded in the new deployment, for a later revert to the live one (only one
            // intelli made: its `commit_hash` is a fingerprint) or to those before it (the
            // new deployment's chain is the live one and the first of the live one's chain).
            previous: pages.filter(|_| live.is_some()).and_then(|pg| {
                Some(PreviousDeployment {
                    deployment_id: pg.live_deployment_id.clone()?,
                    fingerprint: pg.live_commit_hash.clone()?,
                    earlier: chain
                        .into_iter()
                        .take(crate::frontend::CHAIN_LEN - 1)
                        .map(|(deployment_id, fingerprint)| DeploymentRef {
                            deployment_id,
                            fingerprint,
                        })
                        .collect(),
                })
            }),
            reason,
        }),
    }
    true
}

/// The fingerprint the site's build must carry, `Ok(None)` while the project's URL or browser
/// key is not known (no healthy project, or its keys were not read); `Err` when the client's
/// build-time values are in error.
pub(super) fn desired_fingerprint<'a>(
    front: &'a FrontendDesired,
    spec: &ClientSpec,
    obs: &ObservedClient,
) -> Result<Option<crate::frontend::Fingerprint>, &'a String> {
    let project = obs.project.as_ref().filter(|pr| pr.is_healthy());
    match (
        project,
        &obs.anon_key_sha256,
        front.client_env.get(&spec.slug),
    ) {
        (_, _, Some(Err(e))) => Err(e),
        (Some(project), Some(anon), Some(Ok(extras))) => Ok(Some(crate::frontend::Fingerprint {
            sources: front.source_digest.clone(),
            env: crate::frontend::env_digest_plain(&crate::frontend::build_values(
                &front
                    .project_url_template
                    .replace("{ref}", &project.project_ref),
                anon,
                &spec.display_name,
                extras,
            )),
        })),
        _ => Ok(None),
    }
}

/// The CNAME for the client's domain: `false` when a record intelli does not own is in the way
/// (the site's actions are dropped).
fn plan_dns(spec: &ClientSpec, site: &ObservedSite, p: &mut ClientPlan) -> bool {
    let target = site.pages.as_ref().map(|pg| pg.subdomain.clone());
    match &site.dns {
        None => p.actions.push(Action::UpsertDnsRecord {
            name: spec.domain.clone(),
            target,
            before: None,
            reason: Reason::Missing,
        }),
        Some(rec) => {
            let correct =
                rec.record_type == "CNAME" && rec.proxied && Some(&rec.content) == target.as_ref();
            let ours = ownership::owned_by(rec.comment.as_deref(), &spec.slug);
            let points_at_site =
                rec.record_type == "CNAME" && Some(&rec.content) == target.as_ref();
            if !ours && points_at_site {
                // Made by hand for this very site: adopted, nothing it serves changes.
                if let Some(target) = target {
                    p.actions.push(Action::AdoptDnsRecord {
                        name: spec.domain.clone(),
                        target,
                        proxied: rec.proxied,
                        reason: Reason::PointsAtSite,
                    });
                }
            } else if !correct || !ours {
                if ours || spec.take_over_dns {
                    p.actions.push(Action::UpsertDnsRecord {
                        name: spec.domain.clone(),
                        target,
                        before: Some(DnsRecordValue {
                            record_type: rec.record_type.clone(),
                            content: rec.content.clone(),
                            proxied: rec.proxied,
                        }),
                        reason: if ours {
                            Reason::Drifted
                        } else {
                            Reason::TakeOver
                        },
                    });
                } else {
                    p.errors.push(format!(
                        "a DNS record for {} already exists ({} {}), points elsewhere than the \
                         site, and intelli does not own it; remove it, or set `take_over_dns: true` \
                         in {} to let intelli replace it",
                        spec.domain,
                        rec.record_type,
                        rec.content,
                        spec.file.display()
                    ));
                    p.actions.retain(|a| !a.is_site());
                    return false;
                }
            }
        }
    }
    true
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
            reason: if auth.is_some() {
                Reason::Drifted
            } else {
                Reason::Missing
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
            None => p.actions.push(Action::CreateBucket {
                bucket: want,
                reason: Reason::Missing,
            }),
            Some(row) => {
                let have = bucket_of(row);
                if have != want {
                    p.actions.push(Action::UpdateBucket {
                        before: have,
                        after: want,
                        reason: Reason::Drifted,
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
        Ok(versions) => p.actions.push(Action::ApplyMigrations {
            versions,
            reason: Reason::MigrationsPending,
        }),
        Err(problems) => {
            p.errors.extend(problems.iter().map(ToString::to_string));
            p.actions.clear();
            return;
        }
    }

    match db.seeds.iter().find(|s| s.path == desired.seed_path) {
        // Put there by hand before intelli managed the client: recorded, never run again.
        None if db.seed_present == Some(true) => p.actions.push(Action::RecordSeed {
            path: desired.seed_path.clone(),
            sha256: desired.seed_sha256.clone(),
            reason: Reason::SeedPresent,
        }),
        None => p.actions.push(Action::ApplySeed {
            path: desired.seed_path.clone(),
            sha256: desired.seed_sha256.clone(),
            reason: Reason::SeedNotApplied,
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

#[cfg(test)]
mod tests;
