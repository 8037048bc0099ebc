//! Simulated Cloudflare v4 API: Pages projects, direct upload, deployments, custom domains,
//! zones and DNS records, plus a static host serving the deployed sites.
//!
//! It follows the vendor's OpenAPI document (2024-08-06 snapshot, vendored subset in
//! `tests/specs/cloudflare/`) and, where the spec is silent (the `/pages/assets/*` endpoints and
//! `upload-token`), wrangler's direct-upload protocol, so that `wrangler pages deploy` works
//! against it through `CLOUDFLARE_API_BASE_URL`.
//!
//! # Interface for the simulator core
//!
//! ```text
//! pub struct CloudflareConfig { account_ids, zone_names, tokens: Vec<ApiToken>,
//!     taken_project_names, domain_activation_delay, deployment_delay, rate_limit_scale,
//!     rate_limit_requests, state_dir, max_projects_per_account (100),
//!     max_domains_per_project (100), max_file_count_allowed, jwt_expiry }     // + Default
//! pub struct ApiToken { value, read_only }
//! CloudflareSim::new(CloudflareConfig) -> Result<CloudflareSim, CloudflareSimError>
//! pub fn router(sim: Arc<CloudflareSim>) -> axum::Router        // nest at "/client/v4"
//! pub fn sites_router(sim: Arc<CloudflareSim>) -> axum::Router  // "/__sites/{project}/..."
//! pub async fn serve_host(sim: &CloudflareSim, host: &str, path: &str) -> Option<Response>
//! CloudflareSim::stats(&self) -> serde_json::Value
//! CloudflareSim::dump(&self) -> serde_json::Value               // no secrets, no asset bytes
//! CloudflareSim::flush(&self) -> Result<(), CloudflareSimError> // write the state file now
//! pub fn asset_key(content: &[u8], extension: &str) -> String   // wrangler's asset hash
//! ```
//!
//! `router` includes Cloudflare's own rate limiter (1200 requests per 5 minutes per token; a
//! breach blocks the token for 5 minutes; both durations × `rate_limit_scale`) and sets a body
//! limit large enough for wrangler's upload batches (40 MiB raw ≈ 53 MiB of base64 JSON).
//! `serve_host` answers for `Host: <custom domain>` (once the domain is active) and
//! `<subdomain>.pages.dev` / `<short_id>.<subdomain>` / `<branch>.<subdomain>`, each also with a
//! `.localhost` suffix (browsers resolve `*.localhost` to loopback); the core calls it before
//! routing and falls through on `None`. Pass the query string in `path` if there is one (pretty-URL
//! redirects keep it).
//!
//! Routes (relative to `/client/v4`; all answer in the v4 envelope, unknown routes 404/7003):
//!
//! ```text
//! GET|POST          /accounts/{a}/pages/projects                      (list: page, per_page)
//! GET|PATCH|DELETE  /accounts/{a}/pages/projects/{p}
//! GET               /accounts/{a}/pages/projects/{p}/upload-token     → {jwt} (HS256, exp, max_file_count_allowed)
//! GET|POST          /accounts/{a}/pages/projects/{p}/deployments      (list: env, page, per_page; create: multipart)
//! GET|DELETE        /accounts/{a}/pages/projects/{p}/deployments/{id} (DELETE: ?force=true for aliased)
//! POST              /accounts/{a}/pages/projects/{p}/deployments/{id}/rollback | /retry
//! GET               /accounts/{a}/pages/projects/{p}/deployments/{id}/history/logs
//! GET|POST          /accounts/{a}/pages/projects/{p}/domains
//! GET|PATCH|DELETE  /accounts/{a}/pages/projects/{p}/domains/{name}
//! POST              /pages/assets/check-missing | /pages/assets/upload | /pages/assets/upsert-hashes  (upload JWT)
//! GET               /user/tokens/verify
//! GET               /zones (name with operators, account.id, page, per_page) · /zones/{z}
//! GET|POST          /zones/{z}/dns_records (name[.exact|.contains|.startswith|.endswith], type, content,
//!                   proxied, comment[...|.present|.absent], tag[...], search, match, order, direction, page, per_page)
//! GET|PATCH|PUT|DELETE /zones/{z}/dns_records/{id}
//! POST              /zones/{z}/dns_records/batch  {deletes, patches, puts, posts}: in order, all or nothing
//! ```
//!
//! Error codes are listed (with where each comes from) in [`envelope::codes`].
//!
//! With `state_dir` set, everything (projects, deployments, domains, zones, DNS records and the
//! asset bytes) is kept under that directory and survives a restart; give it a directory of its
//! own (e.g. `.intelli/sandbox/cloudflare`). Asset bytes are written before the request returns;
//! the state document is written by a background thread within ~100 ms of a change, and by
//! `flush()` / on drop.

mod assets;
mod auth;
mod dns;
mod domains;
pub mod envelope;
mod pages;
mod sites;
mod state;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use serde::Serialize;
use serde_json::{Value, json};

pub use envelope::ApiError;
pub use sites::serve_host;

/// Largest file wrangler (and the API) accepts as one Pages asset: 25 MiB.
pub const MAX_ASSET_SIZE: u64 = 25 * 1024 * 1024;
/// Largest upload request body the simulator accepts. wrangler packs at most 40 MiB of raw
/// bytes per request (≈ 53.4 MiB once base64-encoded in JSON); leave room above that.
pub const MAX_UPLOAD_BODY: usize = 64 * 1024 * 1024;
/// Files per upload request (wrangler's `MAX_BUCKET_FILE_COUNT`).
pub const MAX_UPLOAD_FILES: usize = 2000;
/// Raw bytes per upload request. wrangler's buckets hold 40 MiB; its code comment (and the
/// service's historical limit) says 50 MiB, which the simulator enforces.
pub const MAX_UPLOAD_BYTES: u64 = 50 * 1024 * 1024;

/// The Pages asset key wrangler computes (first 32 hex characters of BLAKE3(base64(content) ++
/// extension)): the client's function, so that both sides agree by construction.
pub use crate::cloudflare::asset_key;

/// An API token the simulator accepts.
#[derive(Clone)]
pub struct ApiToken {
    pub value: String,
    /// Read-only tokens may call GET endpoints only (403 code 10000 otherwise).
    pub read_only: bool,
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiToken")
            .field("value", &"<redacted>")
            .field("read_only", &self.read_only)
            .finish()
    }
}

/// How the simulated Cloudflare behaves.
#[derive(Debug, Clone)]
pub struct CloudflareConfig {
    /// Accounts served (32-hex ids). Every token may use every account.
    pub account_ids: Vec<String>,
    /// Zones that exist (owned by the first account), e.g. `intelliservice.io`.
    pub zone_names: Vec<String>,
    pub tokens: Vec<ApiToken>,
    /// Names "taken elsewhere" on pages.dev: a project created with one of these names gets a
    /// subdomain with a random suffix, like the real service.
    pub taken_project_names: Vec<String>,
    /// A custom domain goes `initializing → pending → active`; it becomes active this long after
    /// both (a) its validation started and (b) the proxied CNAME to the project appeared.
    pub domain_activation_delay: Duration,
    /// Time between creating a deployment and its deploy stage succeeding.
    pub deployment_delay: Duration,
    /// Multiplies the rate limiter's window and block durations (0.01 → 3 s); 1.0 = real.
    pub rate_limit_scale: f64,
    /// Requests per window (Cloudflare: 1200).
    pub rate_limit_requests: u32,
    pub state_dir: Option<PathBuf>,
    /// Pages projects per account (Cloudflare's soft limit: 100; a fleet beyond that spans
    /// accounts or asks for a raise). Creation past it fails.
    pub max_projects_per_account: usize,
    /// Custom domains per Pages project (Free plan: 100).
    pub max_domains_per_project: usize,
    /// `max_file_count_allowed` claim of upload JWTs (Cloudflare: 20,000 free, 100,000 paid).
    pub max_file_count_allowed: u64,
    /// Lifetime of upload JWTs.
    pub jwt_expiry: Duration,
}

impl Default for CloudflareConfig {
    fn default() -> Self {
        CloudflareConfig {
            account_ids: vec!["5a11ce0000000000000000000000c0de".to_owned()],
            zone_names: vec!["intelliservice.io".to_owned()],
            tokens: vec![ApiToken {
                value: "sim-cloudflare-token".to_owned(),
                read_only: false,
            }],
            taken_project_names: Vec::new(),
            domain_activation_delay: Duration::from_secs(5),
            deployment_delay: Duration::ZERO,
            rate_limit_scale: 1.0,
            rate_limit_requests: 1200,
            state_dir: None,
            max_projects_per_account: 100,
            max_domains_per_project: 100,
            max_file_count_allowed: 20_000,
            jwt_expiry: Duration::from_secs(600),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CloudflareSimError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: corrupt simulator state: {message}")]
    CorruptState { path: PathBuf, message: String },
    #[error("invalid Cloudflare simulator config: {0}")]
    Config(String),
}

/// Counters for tests and benchmarks.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CloudflareStats {
    pub upload_tokens_issued: u64,
    pub check_missing_calls: u64,
    pub hashes_checked: u64,
    pub hashes_missing: u64,
    pub upload_requests: u64,
    pub asset_files_uploaded: u64,
    pub asset_bytes_uploaded: u64,
    pub upsert_calls: u64,
    pub hashes_upserted: u64,
    pub deployments_created: u64,
    /// `POST …/deployments/{id}/rollback` answered 200.
    pub rollbacks: u64,
    pub projects_created: u64,
    pub domains_added: u64,
    pub dns_records_created: u64,
    pub rate_limited: u64,
    pub expired_jwt_rejections: u64,
    pub site_requests: u64,
}

#[derive(Default)]
pub(crate) struct StatsCell(Mutex<CloudflareStats>);

impl StatsCell {
    pub(crate) fn bump(&self, f: impl FnOnce(&mut CloudflareStats)) {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()));
    }
}

/// The simulated Cloudflare: configuration, state, assets and counters.
pub struct CloudflareSim {
    pub(crate) config: CloudflareConfig,
    pub(crate) state: Arc<Mutex<state::State>>,
    pub(crate) blobs: state::BlobStore,
    pub(crate) jwt: auth::JwtKeys,
    pub(crate) limiter: auth::RateLimiter,
    pub(crate) stats: StatsCell,
    /// Background writer of the state file (with a state dir only).
    persister: Option<state::Persister>,
}

impl std::fmt::Debug for CloudflareSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudflareSim")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl CloudflareSim {
    pub fn new(config: CloudflareConfig) -> Result<Self, CloudflareSimError> {
        if config.account_ids.is_empty() {
            return Err(CloudflareSimError::Config("no account id".into()));
        }
        if !(config.rate_limit_scale > 0.0 && config.rate_limit_scale.is_finite()) {
            return Err(CloudflareSimError::Config(
                "rate_limit_scale must be a positive number".into(),
            ));
        }
        let (mut state, blobs, secret) = match &config.state_dir {
            Some(dir) => {
                let assets = dir.join("assets");
                std::fs::create_dir_all(&assets).map_err(|source| CloudflareSimError::Io {
                    path: assets.clone(),
                    source,
                })?;
                let state = state::load(dir)?;
                let secret = load_or_create_secret(&dir.join("jwt-secret"))?;
                (state, state::BlobStore::Dir(assets), secret)
            }
            None => (
                state::State::default(),
                state::BlobStore::Memory(Mutex::default()),
                random_secret(),
            ),
        };
        // Zones named in the config exist from the start (kept with their ids across restarts).
        let owner = config.account_ids[0].clone();
        for name in &config.zone_names {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if !state.zones.values().any(|z| z.name == name) {
                let id = new_id();
                state.zones.insert(
                    id.clone(),
                    state::Zone {
                        id,
                        name,
                        account_id: owner.clone(),
                        created_on: Utc::now(),
                    },
                );
            }
        }
        let window = Duration::try_from_secs_f64(300.0 * config.rate_limit_scale)
            .map_err(|e| CloudflareSimError::Config(format!("rate_limit_scale: {e}")))?;
        let limiter = auth::RateLimiter::new(config.rate_limit_requests, window, window);
        let state = Arc::new(Mutex::new(state));
        let persister = match &config.state_dir {
            Some(dir) => Some(state::Persister::start(dir.clone(), state.clone()).map_err(
                |source| CloudflareSimError::Io {
                    path: dir.clone(),
                    source,
                },
            )?),
            None => None,
        };
        let sim = CloudflareSim {
            jwt: auth::JwtKeys::from_secret(&secret),
            limiter,
            state,
            blobs,
            stats: StatsCell::default(),
            persister,
            config,
        };
        // Write the initial state (config zones) so the directory is complete from the start.
        sim.flush()?;
        Ok(sim)
    }

    pub fn config(&self) -> &CloudflareConfig {
        &self.config
    }

    /// Counters since start (not persisted).
    pub fn stats(&self) -> Value {
        let stats = self
            .stats
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let state = self.lock();
        let mut value = serde_json::to_value(stats).unwrap_or(Value::Null);
        let persist_errors = self.persister.as_ref().map_or(0, |p| p.errors());
        if let Value::Object(map) = &mut value {
            map.insert("projects".into(), json!(state.projects.len()));
            map.insert("deployments".into(), json!(state.deployments.len()));
            map.insert("assets_stored".into(), json!(state.assets.len()));
            map.insert(
                "asset_bytes_stored".into(),
                json!(state.assets.values().map(|a| a.size).sum::<u64>()),
            );
            map.insert("domains".into(), json!(state.domains.len()));
            map.insert("persist_errors".into(), json!(persist_errors));
            map.insert("dns_records".into(), json!(state.dns_records.len()));
        }
        value
    }

    /// The whole state as the API shows it (projects with their deployments, domains with
    /// their current status, zones, records), without tokens, secrets or asset bytes.
    pub fn dump(&self) -> Value {
        let now = Utc::now();
        let state = self.lock();
        let projects: Vec<Value> = state
            .projects
            .values()
            .map(|p| {
                let mut project = pages::project_json(&state, p, now);
                let deployments: Vec<Value> = state
                    .deployments
                    .values()
                    .filter(|d| d.project_id == p.id)
                    .map(|d| {
                        let mut v = pages::deployment_json(&state, p, d, now);
                        if let Value::Object(m) = &mut v {
                            m.insert("manifest".into(), json!(d.manifest));
                        }
                        v
                    })
                    .collect();
                if let Value::Object(m) = &mut project {
                    m.insert("account_id".into(), json!(p.account_id));
                    m.insert("deployments".into(), json!(deployments));
                }
                project
            })
            .collect();
        let domains: Vec<Value> = state
            .domains
            .values()
            .map(|d| domains::domain_json(&state, d, now, self.config.domain_activation_delay))
            .collect();
        let zones: Vec<Value> = state.zones.values().map(dns::zone_json).collect();
        let records: Vec<Value> = state.dns_records.values().map(dns::record_json).collect();
        let assets: Vec<Value> = state
            .assets
            .iter()
            .map(|(k, a)| json!({"key": k, "content_type": a.content_type, "size": a.size, "upserted": a.upserted}))
            .collect();
        json!({
            "accounts": self.config.account_ids,
            "projects": projects,
            "domains": domains,
            "zones": zones,
            "dns_records": records,
            "assets": assets,
        })
    }

    /// Writes the state file now (no-op without a state dir). Dropping the simulator flushes
    /// too; call this on a graceful shutdown when other references may outlive it.
    pub fn flush(&self) -> Result<(), CloudflareSimError> {
        match (&self.persister, &self.config.state_dir) {
            (Some(p), Some(dir)) => p.flush().map_err(|source| CloudflareSimError::Io {
                path: dir.join("state.json"),
                source,
            }),
            _ => Ok(()),
        }
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, state::State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs a state change; on success the state is marked for the background writer.
    pub(crate) fn mutate<R>(
        &self,
        f: impl FnOnce(&mut state::State) -> Result<R, ApiError>,
    ) -> Result<R, ApiError> {
        let result = f(&mut self.lock())?;
        if let Some(p) = &self.persister {
            p.mark_dirty();
        }
        Ok(result)
    }
}

fn random_secret() -> Vec<u8> {
    let mut secret = vec![0u8; 32];
    rand::fill(&mut secret[..]);
    secret
}

/// The JWT signing secret is kept in the state dir so upload tokens stay valid across restarts.
fn load_or_create_secret(path: &std::path::Path) -> Result<Vec<u8>, CloudflareSimError> {
    match std::fs::read(path) {
        Ok(secret) if secret.len() >= 32 => Ok(secret),
        Ok(_) | Err(_) => {
            let secret = random_secret();
            std::fs::write(path, &secret).map_err(|source| CloudflareSimError::Io {
                path: path.to_owned(),
                source,
            })?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
            }
            Ok(secret)
        }
    }
}

/// 32-hex identifier, the shape of Cloudflare zone and record ids.
pub(crate) fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// `t + d` saturating at the far future: a configured delay can be arbitrarily large and chrono's
/// `+` panics on overflow.
pub(crate) fn later(t: chrono::DateTime<Utc>, d: Duration) -> chrono::DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(chrono::DateTime::<Utc>::MAX_UTC)
}

/// RFC 3339 with microseconds and `Z`, as the API prints times.
pub(crate) fn ts(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// The v4 API, to be nested at `/client/v4`.
pub fn router(sim: Arc<CloudflareSim>) -> Router {
    let projects = "/accounts/{account_id}/pages/projects";
    Router::new()
        .route(
            projects,
            get(pages::list_projects).post(pages::create_project),
        )
        .route(
            &format!("{projects}/{{project_name}}"),
            get(pages::get_project)
                .patch(pages::patch_project)
                .delete(pages::delete_project),
        )
        .route(
            &format!("{projects}/{{project_name}}/upload-token"),
            get(assets::upload_token),
        )
        .route(
            &format!("{projects}/{{project_name}}/deployments"),
            get(pages::list_deployments).post(pages::create_deployment),
        )
        .route(
            &format!("{projects}/{{project_name}}/deployments/{{deployment_id}}"),
            get(pages::get_deployment).delete(pages::delete_deployment),
        )
        .route(
            &format!("{projects}/{{project_name}}/deployments/{{deployment_id}}/rollback"),
            post(pages::rollback_deployment),
        )
        .route(
            &format!("{projects}/{{project_name}}/deployments/{{deployment_id}}/retry"),
            post(pages::retry_deployment),
        )
        .route(
            &format!("{projects}/{{project_name}}/deployments/{{deployment_id}}/history/logs"),
            get(pages::deployment_logs),
        )
        .route(
            &format!("{projects}/{{project_name}}/domains"),
            get(domains::list_domains).post(domains::add_domain),
        )
        .route(
            &format!("{projects}/{{project_name}}/domains/{{domain_name}}"),
            get(domains::get_domain)
                .patch(domains::patch_domain)
                .delete(domains::delete_domain),
        )
        .route("/pages/assets/check-missing", post(assets::check_missing))
        .route("/pages/assets/upload", post(assets::upload))
        .route("/pages/assets/upsert-hashes", post(assets::upsert_hashes))
        .route("/user/tokens/verify", get(auth::verify_token))
        .route("/zones", get(dns::list_zones))
        .route("/zones/{zone_id}", get(dns::get_zone))
        .route(
            "/zones/{zone_id}/dns_records",
            get(dns::list_records).post(dns::create_record),
        )
        .route(
            "/zones/{zone_id}/dns_records/batch",
            post(dns::batch_records),
        )
        .route(
            "/zones/{zone_id}/dns_records/{record_id}",
            get(dns::get_record)
                .patch(dns::update_record)
                .put(dns::update_record)
                .delete(dns::delete_record),
        )
        .fallback(no_route)
        .method_not_allowed_fallback(no_route)
        .layer(axum::middleware::from_fn_with_state(
            sim.clone(),
            auth::rate_limit,
        ))
        .layer(DefaultBodyLimit::max(MAX_UPLOAD_BODY))
        .layer(axum::middleware::from_fn(reject_oversized))
        .with_state(sim)
}

/// Refuses a request whose announced `Content-Length` is over the limit before reading it (the
/// body limit alone only trips once that many bytes have arrived), in the v4 envelope.
async fn reject_oversized(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let announced = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > MAX_UPLOAD_BODY as u64) {
        return ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            envelope::codes::PAGES_ASSET_TOO_LARGE,
            "Request body too large.",
        )
        .into_response();
    }
    next.run(request).await
}

async fn no_route() -> Response {
    ApiError::no_route().into_response()
}

/// Deployed sites by project name: `/__sites/{project}/…` serves the production deployment.
pub fn sites_router(sim: Arc<CloudflareSim>) -> Router {
    Router::new()
        .route("/__sites/{project}", get(sites::site_root))
        .route("/__sites/{project}/", get(sites::site_root))
        .route("/__sites/{project}/{*path}", get(sites::site_path))
        .with_state(sim)
}
