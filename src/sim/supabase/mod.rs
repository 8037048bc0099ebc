//! Simulated Supabase Management API and per-project Storage API.
//!
//! Follows the vendor's OpenAPI document (vendored subset in
//! `tests/specs/supabase/management-v1-subset.json`) for paths, bodies and status codes, and
//! the vendor's observed behaviour where the document is silent (error bodies
//! `{"message": ...}`, 404 for unknown refs, rate-limit headers on every response).
//! Each project is a real PostgreSQL database, `sim_<ref>`, on the simulator's server.
//!
//! Routes: `GET /v1/organizations`; `GET|POST /v1/projects`;
//! `GET /v1/organizations/{slug}/projects`; `GET|PATCH|DELETE /v1/projects/{ref}`;
//! `POST /v1/projects/{ref}/pause|restore`; `GET /v1/projects/{ref}/health`;
//! `GET|POST /v1/projects/{ref}/api-keys`; `DELETE /v1/projects/{ref}/api-keys/{id}`;
//! `GET|PUT /v1/projects/{ref}/api-keys/legacy`; `POST /v1/projects/{ref}/database/query`;
//! `GET|PATCH /v1/projects/{ref}/config/auth`; `GET /v1/projects/{ref}/storage/buckets`; and the
//! Storage API `POST|GET /__projects/{ref}/storage/v1/bucket`,
//! `GET|PUT|DELETE /__projects/{ref}/storage/v1/bucket/{id}`.
//!
//! API keys and deletion, what the vendor documents (spec, migration guide, CLI sources):
//! - keys are listed with `type` `legacy | publishable | secret`; secret keys carry a
//!   `secret_jwt_template` (`{"role": "service_role"}` for the default one) and are masked
//!   unless `reveal=true`; create takes `{type, name (^[a-z_][a-z0-9_]+$, 4–64), description?,
//!   secret_jwt_template?}` and answers 201;
//! - the legacy `anon` / `service_role` JWTs are switched off and on together
//!   (`PUT …/api-keys/legacy?enabled=`), and a disabled legacy key is refused with 401;
//! - `sb_` keys go in the `apikey` header; a Bearer token that is not a JWT must equal
//!   `apikey`, else 401 (a user's JWT as Bearer is normal);
//! - a deleted project passes through `GOING_DOWN` to `REMOVED`, and removed projects are
//!   still listed for a while.
//!
//! Where the vendor's behaviour is not documented, the simulator picks (and tests) this:
//! - new projects get one publishable and one secret key named `default`; legacy keys are on
//!   only with `supabase.legacy_api_keys: true` (default off, as the deprecation goes); while
//!   off, the legacy keys are left out of the key list (`GET …/api-keys/legacy` says
//!   `enabled: false`), and switching them on lists the same two JWTs again;
//! - a key name is unique per type in a project: creating one again is 409 `{"message"}`
//!   (what makes intelli's create safe to repeat); the list is oldest first;
//! - the gateway's 401 bodies are `{"message": "Invalid API key" | "Legacy API keys are
//!   disabled", "hint": ...}`; a Bearer `sb_` key without `apikey` is refused the same way;
//! - `GOING_DOWN` lasts `supabase.going_down_ms` (default 2 s), then the database is dropped
//!   and the project is `REMOVED`, still listed and readable by ref for
//!   `supabase.removed_listed_ms` (default 60 s), then forgotten (404). A second delete of a
//!   dying project is 404; SQL is 400 and Storage is `TenantNotFound` once deletion starts;
//! - secret auth settings that are set read back as `******`; sending that back keeps the
//!   secret;
//! - an unknown organization is 404 `{"message":"Organization not found"}`;
//! - SQL on a project that is not `ACTIVE_HEALTHY` is 400 (the database is not reachable);
//! - pause and restore take a quarter of the provisioning delay;
//! - `database/query` values are rendered by Postgres' `json_agg` (int8 and numeric as JSON
//!   numbers); a multi-statement query is split like the Supabase CLI splits migrations and
//!   run in one transaction, returning the last statement's rows;
//! - Storage: a missing or foreign JWT is `InvalidJWT`, the anon or publishable key
//!   `AccessDenied` (both HTTP 400 with the real code in `statusCode`, like every Storage 4xx).

/// The value of an `Ok`, or the handler answers with the `Err`'s response (handlers start by
/// authorizing the caller and reading the body).
macro_rules! or_answer {
    ($result:expr) => {
        match $result {
            Ok(x) => x,
            Err(response) => return response,
        }
    };
}

mod auth_config;
mod db;
pub mod keys;
mod management;
pub mod model;
mod ratelimit;
mod storage;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Router;
use axum::response::Response;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::pg;
use crate::sim::server::middleware::lock;
use crate::sim::server::{Instruments, OrgConfig, SimConfig, SupabaseConfig, Vendor, instrument};
use model::{Project, Saved, status};

pub use storage::not_found_route as storage_not_found_route;

/// The Supabase side of a running simulator.
pub struct SupabaseSim {
    cfg: SupabaseConfig,
    db_server: String,
    state_dir: Option<PathBuf>,
    project_url_template: String,
    inst: Arc<Instruments>,
    limiter: ratelimit::Limiter,
    inner: Mutex<Inner>,
    /// Background work (database creation, status transitions) to finish at shutdown.
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Serialises saves so two writers cannot interleave their temp files.
    save_lock: Mutex<()>,
    /// Set by every change; the background writer saves and clears it. Writing the whole
    /// file per request would make a 1,000-project sandbox quadratic.
    dirty: std::sync::atomic::AtomicBool,
    wake_writer: tokio::sync::Notify,
    /// Bounds connections to project databases: PostgreSQL's default `max_connections` is
    /// 100, and a 1,000-client apply must queue here rather than fail there.
    query_slots: tokio::sync::Semaphore,
    /// Bounds concurrent CREATE/DROP DATABASE and bootstraps (each is heavy and holds locks).
    admin_slots: tokio::sync::Semaphore,
    /// Bounds concurrent DROP DATABASE. Each forces a checkpoint; concurrent ones share it,
    /// so drops are much faster many at a time than one by one.
    drop_slots: tokio::sync::Semaphore,
}

struct Inner {
    next_id: u64,
    projects: BTreeMap<String, Project>,
}

/// A project as the state dump shows it: no secrets, a redacted connection string.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ProjectSummary {
    #[serde(rename = "ref")]
    pub project_ref: String,
    pub name: String,
    pub organization_slug: String,
    pub region: String,
    pub status: String,
    pub db_name: String,
    pub db_ready: bool,
    pub project_url: String,
    pub database_url: String,
}

impl SupabaseSim {
    /// Load saved state (if any), and resume interrupted provisioning.
    pub async fn start(
        config: &SimConfig,
        inst: Arc<Instruments>,
        project_url_template: String,
    ) -> Result<Arc<SupabaseSim>> {
        let db_server = config.database_url.clone().unwrap_or_else(pg::server_url);
        // Fail at start, with the message that says how to get a server, rather than on the
        // first project.
        drop(pg::connect(&db_server).await?);
        let saved = match &config.state_dir {
            Some(dir) => model::load(dir)?,
            None => Saved {
                version: model::SAVED_VERSION,
                next_id: 1,
                projects: BTreeMap::new(),
            },
        };
        let window = Duration::from_secs_f64(
            (config.supabase.rate_limit_window_ms as f64 / 1000.0)
                * config.rate_limit_scale.max(0.0),
        );
        let sim = Arc::new(SupabaseSim {
            cfg: config.supabase.clone(),
            db_server,
            state_dir: config.state_dir.clone(),
            project_url_template,
            limiter: ratelimit::Limiter::new(config.supabase.rate_limit_requests, window),
            inst,
            inner: Mutex::new(Inner {
                next_id: saved.next_id.max(1),
                projects: saved.projects,
            }),
            tasks: Mutex::new(Vec::new()),
            save_lock: Mutex::new(()),
            dirty: std::sync::atomic::AtomicBool::new(false),
            wake_writer: tokio::sync::Notify::new(),
            query_slots: tokio::sync::Semaphore::new(config.supabase.max_db_connections.max(1)),
            admin_slots: tokio::sync::Semaphore::new(ADMIN_CONCURRENCY),
            drop_slots: tokio::sync::Semaphore::new(DROP_CONCURRENCY),
        });
        if sim.state_dir.is_some() {
            spawn_writer(Arc::downgrade(&sim));
        }
        sim.recover_missing_databases().await?;
        // Finish what a previous run left half done.
        let pending: Vec<(String, String)> = lock(&sim.inner)
            .projects
            .values()
            .map(|p| (p.project_ref.clone(), p.status.clone()))
            .collect();
        for (r, st) in pending {
            match st.as_str() {
                status::COMING_UP => sim.spawn_provisioning(r),
                status::PAUSING => sim.set_status(&r, status::INACTIVE),
                status::RESTORING => sim.set_status(&r, status::ACTIVE_HEALTHY),
                // A teardown interrupted by a restart finishes now (its database may still
                // exist); the listing window starts again.
                status::GOING_DOWN | status::REMOVED => {
                    sim.spawn_teardown(r, Duration::ZERO);
                }
                _ => {}
            }
        }
        Ok(sim)
    }

    /// Run SQL on a project database, waiting for a connection slot first.
    pub(crate) async fn query(
        &self,
        url: &str,
        sql: &str,
        params: &[Value],
        read_only: bool,
    ) -> std::result::Result<Value, db::QueryError> {
        let _permit = self
            .query_slots
            .acquire()
            .await
            .map_err(|_| db::QueryError {
                message: "Failed to run sql query: the simulator is shutting down".into(),
            })?;
        db::run_query(url, sql, params, read_only).await
    }

    /// Kept state may outlive its databases (a throwaway PostgreSQL cluster, a server reset).
    /// Such projects are provisioned again, empty, as if just created, so the reconciler
    /// sees a fresh database and re-applies what it needs instead of failing on every query.
    async fn recover_missing_databases(&self) -> Result<()> {
        let names: Vec<String> = lock(&self.inner)
            .projects
            .values()
            .filter(|p| p.db_ready && !status::is_dying(&p.status))
            .map(|p| p.db_name.clone())
            .collect();
        if names.is_empty() {
            return Ok(());
        }
        let admin = pg::connect(&self.db_server).await?;
        let rows = admin
            .query(
                "SELECT datname FROM pg_database WHERE datname = ANY($1)",
                &[&names],
            )
            .await
            .context("listing the project databases")?;
        let present: std::collections::HashSet<String> =
            rows.iter().filter_map(|r| r.try_get(0).ok()).collect();
        let mut inner = lock(&self.inner);
        for p in inner.projects.values_mut() {
            if p.db_ready && !status::is_dying(&p.status) && !present.contains(&p.db_name) {
                eprintln!(
                    "intelli sim: project {} ({}) lost its database {}; provisioning it again, empty",
                    p.project_ref, p.name, p.db_name
                );
                p.db_ready = false;
                p.status = status::COMING_UP.into();
            }
        }
        Ok(())
    }

    /// A token this simulator accepts (for printing and for tests).
    pub fn example_token(&self) -> String {
        self.cfg
            .tokens
            .first()
            .cloned()
            .unwrap_or_else(|| "sbp_intelli_sim_0000000000000000000000000000".to_string())
    }

    fn token_ok(&self, token: &str) -> bool {
        if self.cfg.tokens.is_empty() {
            token.starts_with("sbp_") && token.len() > 4
        } else {
            self.cfg.tokens.iter().any(|t| t == token)
        }
    }

    fn orgs(&self) -> &[OrgConfig] {
        &self.cfg.organizations
    }

    /// The per-project base URL (`VITE_SUPABASE_URL`).
    pub fn project_url(&self, project_ref: &str) -> String {
        self.project_url_template.replace("{ref}", project_ref)
    }

    /// Direct connection string of a project's database (with the server's credentials).
    pub fn database_url(&self, project_ref: &str) -> Option<String> {
        let name = lock(&self.inner).projects.get(project_ref)?.db_name.clone();
        pg::with_database(&self.db_server, &name).ok()
    }

    /// Whether a project with this ref exists.
    pub fn has_project(&self, project_ref: &str) -> bool {
        lock(&self.inner).projects.contains_key(project_ref)
    }

    /// A copy of one project's record.
    pub fn project(&self, project_ref: &str) -> Option<Project> {
        lock(&self.inner).projects.get(project_ref).cloned()
    }

    /// Every project, without secrets.
    pub fn projects(&self) -> Vec<ProjectSummary> {
        let inner = lock(&self.inner);
        inner
            .projects
            .values()
            .map(|p| ProjectSummary {
                project_ref: p.project_ref.clone(),
                name: p.name.clone(),
                organization_slug: p.organization_slug.clone(),
                region: p.region.clone(),
                status: p.status.clone(),
                db_name: p.db_name.clone(),
                db_ready: p.db_ready,
                project_url: self.project_url(&p.project_ref),
                database_url: pg::with_database(&self.db_server, &p.db_name)
                    .map(|u| pg::redact(&u))
                    .unwrap_or_default(),
            })
            .collect()
    }

    /// The state dump (`/__sim/state`): organizations and projects, secrets left out.
    pub fn dump(&self) -> Value {
        json!({
            "organizations": self.orgs(),
            "projects": self.projects(),
            "database_server": pg::redact(&self.db_server),
            "state_dir": self.state_dir,
        })
    }

    fn set_status(&self, project_ref: &str, new: &str) {
        {
            let mut inner = lock(&self.inner);
            match inner.projects.get_mut(project_ref) {
                Some(p) => p.status = new.to_string(),
                None => return,
            }
        }
        self.persist();
    }

    /// Note a change to save. The background writer coalesces bursts; `shutdown` flushes.
    fn persist(&self) {
        if self.state_dir.is_some() {
            self.dirty.store(true, std::sync::atomic::Ordering::SeqCst);
            self.wake_writer.notify_one();
        }
    }

    /// Save the state now if a state directory is configured. A failed save is reported on
    /// stderr and the simulator keeps serving: losing a rehearsal's persistence must not take
    /// the API down mid-run.
    fn save_now(&self) {
        let Some(dir) = &self.state_dir else { return };
        self.dirty.store(false, std::sync::atomic::Ordering::SeqCst);
        let _guard = lock(&self.save_lock);
        let saved = {
            let inner = lock(&self.inner);
            Saved {
                version: model::SAVED_VERSION,
                next_id: inner.next_id,
                projects: inner.projects.clone(),
            }
        };
        if let Err(e) = model::save(dir, &saved) {
            eprintln!("intelli sim: could not save state: {e:#}");
        }
    }

    fn track(&self, task: JoinHandle<()>) {
        let mut tasks = lock(&self.tasks);
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }

    /// Create and bootstrap the project's database, wait out the provisioning delay, then
    /// mark the project `ACTIVE_HEALTHY` (or `INIT_FAILED` if the database could not be made).
    fn spawn_provisioning(self: &Arc<Self>, project_ref: String) {
        let sim = self.clone();
        let delay = self.cfg.provisioning_delay();
        let task = tokio::spawn(async move {
            let Some(db_name) = sim.project(&project_ref).map(|p| p.db_name) else {
                return;
            };
            let started = tokio::time::Instant::now();
            let made = {
                let _permit = sim.admin_slots.acquire().await;
                db::ensure_database(&sim.db_server, &db_name).await
            };
            {
                let mut inner = lock(&sim.inner);
                if let Some(p) = inner.projects.get_mut(&project_ref) {
                    match &made {
                        Ok(_) => p.db_ready = true,
                        Err(e) => {
                            eprintln!(
                                "intelli sim: provisioning {project_ref} failed: {}",
                                pg::redact(&format!("{e:#}"))
                            );
                            p.status = status::INIT_FAILED.into();
                        }
                    }
                }
            }
            sim.persist();
            if made.is_err() {
                return;
            }
            tokio::time::sleep_until(started + delay).await;
            let removed = {
                let mut inner = lock(&sim.inner);
                match inner.projects.get_mut(&project_ref) {
                    Some(p) => {
                        if p.status == status::COMING_UP {
                            p.status = status::ACTIVE_HEALTHY.into();
                        }
                        p.status == status::REMOVED
                    }
                    None => true,
                }
            };
            if removed {
                // Deleted while provisioning, and the teardown already ran: it could not drop
                // a database that did not exist yet, so do it now. (While the project is
                // still GOING_DOWN the teardown drops it.)
                let _permit = sim.drop_slots.acquire().await;
                let _ = pg::drop_database(&sim.db_server, &db_name).await;
            }
            sim.persist();
        });
        self.track(task);
    }

    /// A status change that takes a moment (pause, restore).
    fn spawn_transition(
        self: &Arc<Self>,
        project_ref: String,
        from: &'static str,
        to: &'static str,
    ) {
        let sim = self.clone();
        let delay = self.cfg.provisioning_delay() / 4;
        let task = tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            {
                let mut inner = lock(&sim.inner);
                if let Some(p) = inner.projects.get_mut(&project_ref)
                    && p.status == from
                {
                    p.status = to.into();
                }
            }
            sim.persist();
        });
        self.track(task);
    }

    /// A deleted project's way out: `GOING_DOWN` for `going_down`, then `REMOVED` (the database
    /// is dropped), still listed for `removed_listed_ms`, then forgotten.
    fn spawn_teardown(self: &Arc<Self>, project_ref: String, going_down: Duration) {
        let sim = self.clone();
        let listed = self.cfg.removed_listed();
        let task = tokio::spawn(async move {
            tokio::time::sleep(going_down).await;
            let db_name = {
                let mut inner = lock(&sim.inner);
                match inner.projects.get_mut(&project_ref) {
                    Some(p) => {
                        p.status = status::REMOVED.into();
                        p.db_ready = false;
                        p.db_name.clone()
                    }
                    None => return,
                }
            };
            sim.persist();
            {
                let _permit = sim.drop_slots.acquire().await;
                let _ = pg::drop_database(&sim.db_server, &db_name).await;
            }
            tokio::time::sleep(listed).await;
            lock(&sim.inner).projects.remove(&project_ref);
            sim.persist();
        });
        self.track(task);
    }

    /// Start deleting a project; `None` when it is unknown or already being deleted.
    pub(crate) fn begin_delete(self: &Arc<Self>, project_ref: &str) -> Option<Project> {
        let p = {
            let mut inner = lock(&self.inner);
            let p = inner.projects.get_mut(project_ref)?;
            if status::is_dying(&p.status) {
                return None;
            }
            p.status = status::GOING_DOWN.into();
            p.clone()
        };
        self.persist();
        self.spawn_teardown(project_ref.to_owned(), self.cfg.going_down());
        Some(p)
    }

    /// Best-effort synchronous cleanup for a simulator dropped without `shutdown`: in
    /// memory-only mode, drop the project databases from a helper thread with its own runtime
    /// (the caller may be inside an async context, where blocking on a future is not allowed).
    pub fn drop_databases_blocking(&self) {
        if self.state_dir.is_some() {
            // Kept state: make sure the last changes are on disk instead.
            self.save_now();
            return;
        }
        for t in std::mem::take(&mut *lock(&self.tasks)) {
            t.abort();
        }
        let names: Vec<String> = lock(&self.inner)
            .projects
            .values()
            .map(|p| p.db_name.clone())
            .collect();
        if names.is_empty() {
            return;
        }
        let server = self.db_server.clone();
        let worker = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                for chunk in names.chunks(DROP_CONCURRENCY) {
                    futures_util::future::join_all(
                        chunk.iter().map(|n| pg::drop_database(&server, n)),
                    )
                    .await;
                }
            });
        });
        let _ = worker.join();
    }

    /// Finish background work; without a state directory, drop every project database.
    pub async fn shutdown(&self) -> Result<()> {
        let tasks: Vec<JoinHandle<()>> = std::mem::take(&mut *lock(&self.tasks));
        for t in tasks {
            // Status timers may still be sleeping; database creation must be allowed to end
            // before the database can be dropped, so give each task a bounded wait.
            let _ = tokio::time::timeout(Duration::from_secs(30), t).await;
        }
        if self.state_dir.is_some() {
            self.save_now();
            return Ok(());
        }
        // Taken out of the map so a later drop of the handle has nothing left to do.
        let names: Vec<String> = std::mem::take(&mut lock(&self.inner).projects)
            .into_values()
            .map(|p| p.db_name)
            .collect();
        // Many at a time: each DROP DATABASE forces a checkpoint and concurrent ones share it
        // (8 drops: ~13 s one by one, ~0.6 s together here); bounded so the server's
        // connections are not exhausted.
        let slots = Arc::new(tokio::sync::Semaphore::new(DROP_CONCURRENCY));
        let mut drops = tokio::task::JoinSet::new();
        for n in names {
            let server = self.db_server.clone();
            let slots = slots.clone();
            drops.spawn(async move {
                let _permit = slots.acquire_owned().await;
                pg::drop_database(&server, &n).await
            });
        }
        let mut first_err = None;
        while let Some(joined) = drops.join_next().await {
            match joined {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(e) => {
                    first_err.get_or_insert(anyhow::anyhow!("dropping a project database: {e}"));
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Delete what a kept simulator state under `dir` holds: every project database it lists (on
/// `db_server`) and the state files of both vendors. Returns how many databases were dropped.
/// Used by `intelli sim reset`; the simulator must not be running on `dir`.
pub async fn destroy_saved_state(dir: &std::path::Path, db_server: &str) -> Result<usize> {
    let saved = model::load(dir)?;
    let mut dropped = 0;
    for p in saved.projects.values() {
        pg::drop_database(db_server, &p.db_name).await?;
        dropped += 1;
    }
    let file = model::state_file(dir);
    match std::fs::remove_file(&file) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing {}", file.display())),
    }
    let cf = dir.join("cloudflare");
    if cf.exists() {
        std::fs::remove_dir_all(&cf).with_context(|| format!("removing {}", cf.display()))?;
    }
    Ok(dropped)
}

/// Saves the state shortly after changes, off the request path. Holds only a weak reference
/// so it ends with the simulator.
fn spawn_writer(sim: std::sync::Weak<SupabaseSim>) {
    tokio::spawn(async move {
        loop {
            let Some(s) = sim.upgrade() else { return };
            if !s.dirty.load(std::sync::atomic::Ordering::SeqCst) {
                // `notify_one` leaves a permit when nobody waits, so a change made between
                // the check and this wait is not missed. The timeout lets the loop notice the
                // simulator is gone.
                let _ =
                    tokio::time::timeout(Duration::from_secs(1), s.wake_writer.notified()).await;
                continue;
            }
            drop(s);
            // Let a burst of changes land in one write.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let Some(s) = sim.upgrade() else { return };
            let _ = tokio::task::spawn_blocking(move || s.save_now()).await;
        }
    });
}

/// Concurrent database creations/drops.
const ADMIN_CONCURRENCY: usize = 4;

/// Concurrent database drops.
const DROP_CONCURRENCY: usize = 16;

/// The Supabase routes: Management API under `/v1`, Storage API under
/// `/__projects/{ref}/storage/v1`, each instrumented (counting, latency, faults).
pub fn router(sim: Arc<SupabaseSim>, inst: &Arc<Instruments>) -> Router {
    let management = management::routes(sim.clone());
    let management = ratelimit::layer(sim.clone(), management);
    let storage = storage::routes(sim);
    Router::new()
        .merge(instrument(inst, Vendor::Supabase, management))
        .merge(instrument(inst, Vendor::Storage, storage))
}

/// A vendor-shaped `{"message": ...}` error.
pub(crate) fn error(status: axum::http::StatusCode, message: impl Into<String>) -> Response {
    use axum::response::IntoResponse;
    (status, axum::Json(json!({ "message": message.into() }))).into_response()
}

/// 20 random lowercase letters, the vendor's ref format.
fn new_ref() -> String {
    (0..20)
        .map(|_| (b'a' + rand::random_range(0..26u8)) as char)
        .collect()
}
