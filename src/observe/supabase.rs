//! Observing the Supabase side of the fleet with as few requests as the API allows.
//!
//! One paged listing of the organization's projects finds every client's project; then, per
//! healthy project and concurrently, one auth-config read and one SQL query that returns the
//! migration history, seeds and buckets together. A no-op plan therefore costs about two
//! requests per client plus the list pages.
//!
//! The project's API keys (`GET …/api-keys?reveal=true`, a third request at the same time)
//! are read only when something in the plan depends on them: the site is planned (the browser
//! key is part of its fingerprint, and plan proposes creating a missing key), or the fleet says
//! `supabase.legacy_keys: disable`. Then, and only while the listing still holds legacy keys,
//! `GET …/api-keys/legacy` says whether they are on (a fourth request, gone once they are off).
//! Under `--skip-frontend` with `legacy_keys: keep` the keys are not read, so that plan costs
//! what it did and proposes no key.

use std::collections::{BTreeMap, BTreeSet};

use futures::StreamExt;

use super::model::{
    DyingProject, ObservedAuth, ObservedClient, ObservedDatabase, ObservedFleet, ObservedKeys,
    ObservedProject, OrphanProject,
};
use crate::fleet::{ClientSpec, Fleet, LegacyKeys};
use crate::migrate::exec::{SqlExecutor, json_column};
use crate::migrate::history::{self, AppliedMigration};
use crate::migrate::{MigrationFile, sql};
use crate::supabase::{Project, SupabaseClient};

/// Which API-key reads a client's observation makes (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyReads {
    /// `GET …/api-keys?reveal=true`.
    pub keys: bool,
    /// `GET …/api-keys/legacy` when the listing holds legacy keys.
    pub legacy_switch: bool,
}

impl KeyReads {
    /// What a plan of `fleet` needs: the keys when the site is planned or the legacy keys are
    /// to be switched off.
    pub fn for_fleet(fleet: &Fleet, site_planned: bool) -> KeyReads {
        let disable = fleet.settings.supabase.legacy_keys == LegacyKeys::Disable;
        KeyReads {
            keys: site_planned || disable,
            legacy_switch: disable,
        }
    }
}

/// Observe `selected` clients; orphans are judged against every client of the fleet. The
/// keys are read as [`KeyReads::for_fleet`] says (`site_planned`: the Cloudflare side is
/// planned too).
pub async fn observe(
    client: &SupabaseClient,
    executor: &SqlExecutor,
    fleet: &Fleet,
    selected: &[&ClientSpec],
    migrations: &[MigrationFile],
    parallelism: usize,
    site_planned: bool,
) -> Result<ObservedFleet, crate::http::Error> {
    let reads = KeyReads::for_fleet(fleet, site_planned);
    let org = &fleet.settings.supabase.organization_slug;
    let projects = client.list_org_projects(org).await?;

    // A project being deleted (or deleted and still listed) is nobody's: it is neither matched
    // to a client nor reported as an orphan, only mentioned in the client's notes.
    let (dying, projects): (Vec<Project>, Vec<Project>) =
        projects.into_iter().partition(|p| p.status.is_gone());
    let mut by_name: BTreeMap<&str, Vec<&Project>> = BTreeMap::new();
    for p in &projects {
        by_name.entry(p.name.as_str()).or_default().push(p);
    }
    let claimed: BTreeSet<&str> = fleet
        .clients
        .values()
        .flat_map(|c| [Some(c.resource_name.as_str()), c.project_ref.as_deref()])
        .flatten()
        .collect();
    let orphans = projects
        .iter()
        .filter(|p| p.name.starts_with(&fleet.settings.name_prefix))
        .filter(|p| !claimed.contains(p.name.as_str()) && !claimed.contains(p.project_ref.as_str()))
        .map(|p| OrphanProject {
            name: p.name.clone(),
            project_ref: p.project_ref.clone(),
        })
        .collect();

    let results = futures::stream::iter(selected.iter().map(|spec| {
        let found = find_project(spec, &projects, &by_name);
        let going = dying_of(spec, &dying);
        async move {
            let mut observed = observe_client(
                client,
                executor,
                spec,
                found,
                migrations,
                reads,
                HistoryHint::Unknown,
            )
            .await;
            check_seed(executor, &fleet.settings.migrations, spec, &mut observed).await;
            observed.dying = going;
            (spec.slug.clone(), observed)
        }
    }))
    .buffer_unordered(parallelism.max(1))
    .collect::<Vec<_>>()
    .await;

    Ok(ObservedFleet {
        clients: results.into_iter().collect(),
        orphans,
    })
}

/// `migrations.seed_check`, asked only when the client's seed is not recorded (so a converged
/// fleet's plan costs nothing more). A database without the seed's tables has no seed; any
/// other failure is the client's error (the query is the fleet's, and wrong).
async fn check_seed(
    executor: &SqlExecutor,
    settings: &crate::fleet::model::FleetMigrations,
    spec: &ClientSpec,
    observed: &mut ObservedClient,
) {
    let Some(check) = settings.seed_check.as_deref() else {
        return;
    };
    let Some(project_ref) = observed.project.as_ref().map(|p| p.project_ref.clone()) else {
        return;
    };
    let Some(db) = observed.database.as_mut() else {
        return;
    };
    if db.seeds.iter().any(|s| s.path == settings.seed) {
        return;
    }
    let text = sql::seed_check(check, &crate::migrate::seed_settings(spec));
    match executor.run_read_only(&project_ref, &text).await {
        Ok(rows) => {
            let v = rows.first().and_then(|r| r.get("present"));
            db.seed_present = Some(v.is_some_and(|v| {
                v.as_bool() == Some(true) || v.as_str() == Some("t") || v.as_str() == Some("true")
            }));
        }
        Err(e) if e.missing_relation() => db.seed_present = Some(false),
        Err(e) => {
            observed.error = Some(format!(
                "migrations.seed_check failed (fix the query in fleet.yaml): {e}"
            ))
        }
    }
}

/// Dying projects that carry the client's name or its pinned ref.
fn dying_of(spec: &ClientSpec, dying: &[Project]) -> Vec<DyingProject> {
    dying
        .iter()
        .filter(|p| match &spec.project_ref {
            Some(r) => &p.project_ref == r,
            None => p.name == spec.resource_name,
        })
        .map(|p| DyingProject {
            project_ref: p.project_ref.clone(),
            status: p.status.as_str().to_owned(),
        })
        .collect()
}

/// The client's project: the pinned ref, else every project carrying its derived name.
fn find_project<'a>(
    spec: &ClientSpec,
    projects: &'a [Project],
    by_name: &BTreeMap<&str, Vec<&'a Project>>,
) -> Vec<&'a Project> {
    match &spec.project_ref {
        Some(r) => projects.iter().filter(|p| &p.project_ref == r).collect(),
        None => by_name
            .get(spec.resource_name.as_str())
            .cloned()
            .unwrap_or_default(),
    }
}

/// Everything about one client; failures are recorded on the client, never propagated, so
/// one client's trouble does not hide the others.
pub async fn observe_client(
    client: &SupabaseClient,
    executor: &SqlExecutor,
    spec: &ClientSpec,
    found: Vec<&Project>,
    migrations: &[MigrationFile],
    reads: KeyReads,
    history: HistoryHint,
) -> ObservedClient {
    let mut out = ObservedClient::default();
    match found.as_slice() {
        [] => return out,
        [p] => out.project = Some(project_of(p)),
        many => {
            out.duplicates = many.iter().map(|p| p.project_ref.clone()).collect();
            return out;
        }
    }
    let Some(project) = out.project.clone() else {
        return out;
    };
    if !project.is_healthy() {
        return out;
    }
    let keys = async {
        if reads.keys {
            Some(observe_keys(client, &project.project_ref, reads).await)
        } else {
            None
        }
    };
    let (auth, db, keys) = tokio::join!(
        client.auth_config(&project.project_ref),
        observe_database(executor, &project.project_ref, migrations, history),
        keys
    );
    match keys {
        Some(Ok((observed, browser_sha256))) => {
            out.anon_key_sha256 = browser_sha256;
            out.keys = Some(observed);
        }
        Some(Err(e)) => {
            out.error = Some(format!(
                "reading the API keys of {}: {e}",
                spec.resource_name
            ))
        }
        None => {}
    }
    match auth {
        Ok(a) => {
            out.auth = Some(ObservedAuth {
                site_url: a.site_url,
                redirect_urls: a.uri_allow_list,
            })
        }
        Err(e) => {
            out.error = Some(format!(
                "reading auth settings of {}: {e}",
                spec.resource_name
            ))
        }
    }
    match db {
        Ok(d) => out.database = Some(d),
        Err(e) => {
            out.error.get_or_insert(format!(
                "reading the database of {}: {e}",
                spec.resource_name
            ));
        }
    }
    out
}

/// Which keys the project has, and the SHA-256 of the browser key (the key itself is not
/// kept). The legacy switch is read only when asked and the listing holds legacy keys.
async fn observe_keys(
    client: &SupabaseClient,
    project_ref: &str,
    reads: KeyReads,
) -> Result<(ObservedKeys, Option<String>), crate::http::Error> {
    let k = client.api_keys(project_ref).await?;
    let legacy_enabled = if reads.legacy_switch && k.has_legacy {
        client.legacy_keys_enabled(project_ref).await?
    } else {
        None
    };
    let observed = ObservedKeys {
        publishable: k.has_publishable,
        service_secret: k.has_service_secret,
        legacy_listed: k.has_legacy,
        legacy_enabled,
        browser: k.browser.as_ref().map(|(kind, _)| *kind),
    };
    let sha = k
        .browser
        .as_ref()
        .map(|(_, key)| crate::frontend::secret_sha256(key));
    Ok((observed, sha))
}

fn project_of(p: &Project) -> ObservedProject {
    ObservedProject {
        project_ref: p.project_ref.clone(),
        name: p.name.clone(),
        status: p.status.clone(),
        region: p.region.clone(),
    }
}

/// What is known of a database's history tables before it is observed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HistoryHint {
    /// Nothing: read them, and ask which exist only when that fails (one query on a database
    /// intelli has migrated, three on one it never touched).
    Unknown,
    /// This run just created the project: ask which tables exist first (two queries, and no
    /// failed one in the vendor's logs for every new client). Still correct if they exist.
    JustCreated,
}

/// History, seeds and buckets in one query (two or three on a database intelli never touched,
/// see [`HistoryHint`]).
pub async fn observe_database(
    executor: &SqlExecutor,
    project_ref: &str,
    migrations: &[MigrationFile],
    history: HistoryHint,
) -> Result<ObservedDatabase, String> {
    let first = match history {
        HistoryHint::Unknown => Some(
            executor
                .run_read_only(project_ref, &sql::observe(true, true))
                .await,
        ),
        HistoryHint::JustCreated => None,
    };
    let rows = match first {
        Some(Ok(rows)) => rows,
        Some(Err(e)) if !e.missing_relation() => return Err(e.to_string()),
        // A missing history table (the one failure expected), or nothing read yet: ask which
        // tables exist and read around them.
        failed => {
            let failed = failed.and_then(Result::err);
            let tables = executor
                .run_read_only(project_ref, sql::HISTORY_TABLES)
                .await
                .map_err(|e| e.to_string())?;
            let flag = |name: &str| {
                tables.first().and_then(|r| r.get(name)).is_some_and(|v| {
                    v.as_bool() == Some(true)
                        || v.as_str() == Some("t")
                        || v.as_str() == Some("true")
                })
            };
            let (m, s) = (flag("migrations"), flag("seeds"));
            if let (true, true, Some(e)) = (m, s, &failed) {
                // Both tables exist, so the failure was about something else: report it.
                return Err(e.to_string());
            }
            executor
                .run_read_only(project_ref, &sql::observe(m, s))
                .await
                .map_err(|e| e.to_string())?
        }
    };
    let state = rows
        .first()
        .and_then(|r| json_column(r, "state"))
        .ok_or("the observation query returned no state")?;
    let mut db: ObservedDatabase =
        serde_json::from_value(state).map_err(|e| format!("unexpected observation result: {e}"))?;

    // Rows whose digest differs from the file's: fetch their statements so that a different
    // split of the same SQL (e.g. by an older CLI) is not reported as drift.
    let suspicious: Vec<String> = db
        .migrations
        .iter()
        .filter(|row| {
            migrations.iter().any(|f| {
                f.version == row.version
                    && row.statements_sha256.as_ref().is_some_and(|d| {
                        *d != history::statements_digest(&history::statements_of(f))
                    })
            })
        })
        .map(|r| r.version.clone())
        .collect();
    if !suspicious.is_empty() {
        let rows = executor
            .run_read_only(project_ref, &sql::fetch_statements(&suspicious))
            .await
            .map_err(|e| e.to_string())?;
        for row in rows {
            let version = row
                .get("version")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string();
            let statements: Option<Vec<String>> =
                json_column(&row, "statements").and_then(|v| serde_json::from_value(v).ok());
            if let Some(m) = db
                .migrations
                .iter_mut()
                .find(|m: &&mut AppliedMigration| m.version == version)
            {
                m.statements = statements;
            }
        }
    }
    Ok(db)
}
