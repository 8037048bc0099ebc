//! Typed client of the Supabase Management API (`https://api.supabase.com/v1/...`) and of each
//! project's Storage API. Names follow the vendor's OpenAPI document; see
//! reference/supabase-api.md for the behaviour the document does not state.
//!
//! Everything goes through [`crate::http`]: bearer token, `User-Agent`, per-(scope, endpoint)
//! rate limiting (the vendor counts 120/min per project or organisation and endpoint),
//! 429s waited out, re-sends decided by what each call is ([`Repeat`]), typed and redacted
//! errors.

pub mod storage;
pub mod types;

use std::time::Duration;

use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use url::Url;

use crate::http::{
    Error, ErrorKind, HttpClient, HttpConfig, Keying, RateLimit, Repeat, Request, RetryBudget,
    RetryConfig, Vendor, endpoint,
};
pub use storage::{Bucket, StorageClient};
pub use types::{
    ApiKeys, AuthConfig, AuthConfigPatch, BrowserKeyKind, BucketSummary, CreateProjectRequest,
    NewKeyKind, Project, ProjectStatus, ServerKeyKind, ServiceHealth, run_query_wire_json,
    split_allow_list,
};

/// The vendor's API.
pub const DEFAULT_API_URL: &str = "https://api.supabase.com";
/// Where each project lives; `{ref}` is replaced by the project ref.
pub const DEFAULT_PROJECT_URL_TEMPLATE: &str = "https://{ref}.supabase.co";
/// The vendor's documented quota per user, scope and endpoint.
pub const DEFAULT_RATE_LIMIT_PER_MINUTE: u32 = 120;
/// The largest page the organisation project list serves.
pub const MAX_PAGE_SIZE: u32 = 100;
/// Sends of one API-key create at most, when each answer is lost and the key is not listed
/// (see [`SupabaseClient::create_api_key`]).
pub const MAX_KEY_CREATE_SENDS: u32 = 3;

/// How to reach Supabase.
#[derive(Clone, Debug)]
pub struct SupabaseConfig {
    /// Base of the Management API (`SUPABASE_API_URL`).
    pub api_url: Url,
    /// Personal access token (`SUPABASE_ACCESS_TOKEN`).
    pub access_token: SecretString,
    /// Per-project base URL with `{ref}` (the Storage API is at `<it>/storage/v1`).
    pub project_url_template: String,
    /// Client-side budget per (project or organisation, endpoint). 0 disables the limiter.
    pub rate_limit_per_minute: u32,
    /// What "minute" means: the vendor's is 60 s; tests and the simulator scale it down.
    pub rate_limit_window: Duration,
    /// Page size of the organisation project list (1..=100).
    pub page_size: u32,
    pub retry: RetryConfig,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
}

impl SupabaseConfig {
    /// Vendor defaults with this token.
    pub fn new(access_token: SecretString) -> SupabaseConfig {
        SupabaseConfig {
            // A literal, not input: it parses, which the unit test below checks.
            api_url: Url::parse(DEFAULT_API_URL).expect("DEFAULT_API_URL is a valid URL"),
            access_token,
            project_url_template: DEFAULT_PROJECT_URL_TEMPLATE.to_owned(),
            rate_limit_per_minute: DEFAULT_RATE_LIMIT_PER_MINUTE,
            rate_limit_window: Duration::from_secs(60),
            page_size: MAX_PAGE_SIZE,
            retry: RetryConfig::default(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
        }
    }

    /// From the environment: `SUPABASE_ACCESS_TOKEN` (required), `SUPABASE_API_URL`
    /// (optional). The token is wrapped as a secret the moment it is read.
    pub fn from_env() -> Result<SupabaseConfig, Error> {
        let token = std::env::var("SUPABASE_ACCESS_TOKEN")
            .ok()
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| {
                config_error("SUPABASE_ACCESS_TOKEN is not set (a personal access token, sbp_…)")
            })?;
        let mut c = SupabaseConfig::new(SecretString::from(token));
        if let Ok(url) = std::env::var("SUPABASE_API_URL")
            && !url.trim().is_empty()
        {
            c.api_url = Url::parse(url.trim())
                .map_err(|e| config_error(format!("SUPABASE_API_URL is not a URL: {e}")))?;
        }
        Ok(c)
    }
}

fn config_error(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Config, Vendor::Supabase, "-", "-").with_message(message)
}

/// The Management API client. Cheap to clone.
#[derive(Clone)]
pub struct SupabaseClient {
    http: HttpClient,
    storage_http: HttpClient,
    api_url: Url,
    token: SecretString,
    project_url_template: String,
    page_size: u32,
}

impl SupabaseClient {
    pub fn new(config: SupabaseConfig) -> Result<SupabaseClient, Error> {
        if !config.project_url_template.contains("{ref}") {
            return Err(config_error(
                "the project URL template must contain {ref} (e.g. https://{ref}.supabase.co)",
            ));
        }
        let rate_limit = (config.rate_limit_per_minute > 0).then(|| {
            RateLimit::new(
                config.rate_limit_per_minute,
                config.rate_limit_window,
                Keying::PerScopeAndEndpoint,
            )
        });
        let http_config = |vendor| HttpConfig {
            vendor,
            connect_timeout: config.connect_timeout,
            request_timeout: config.request_timeout,
            retry: config.retry,
            rate_limit,
        };
        let http = HttpClient::new(&http_config(Vendor::Supabase))?;
        let storage_http = http.sibling(&http_config(Vendor::SupabaseStorage));
        Ok(SupabaseClient {
            http,
            storage_http,
            api_url: config.api_url,
            token: config.access_token,
            project_url_template: config.project_url_template,
            page_size: config.page_size.clamp(1, MAX_PAGE_SIZE),
        })
    }

    /// The project's base URL (`VITE_SUPABASE_URL`), from the template.
    pub fn project_url(&self, project_ref: &str) -> String {
        self.project_url_template.replace("{ref}", project_ref)
    }

    fn request(
        &self,
        method: Method,
        segments: &[&str],
        template: &'static str,
        scope: String,
    ) -> Result<Request, Error> {
        let url = endpoint(&self.api_url, segments).map_err(|e| {
            config_error(format!(
                "SUPABASE_API_URL cannot hold {template}: {}",
                e.message().unwrap_or("invalid")
            ))
        })?;
        Ok(Request::new(method, url, template)
            .scope(scope)
            .bearer(&self.token))
    }

    fn project_request(
        &self,
        method: Method,
        project_ref: &str,
        rest: &[&str],
        template: &'static str,
    ) -> Result<Request, Error> {
        let mut segments = vec!["v1", "projects", project_ref];
        segments.extend_from_slice(rest);
        self.request(
            method,
            &segments,
            template,
            format!("project:{project_ref}"),
        )
    }

    /// Every project of an organisation (`GET /v1/organizations/{slug}/projects`), all pages.
    pub async fn list_org_projects(&self, org_slug: &str) -> Result<Vec<Project>, Error> {
        self.org_projects(org_slug, None).await
    }

    /// Projects of an organisation whose name is exactly `name`: how a project is found again
    /// after an ambiguous create (the vendor has no idempotency key and no unique names, so
    /// there may be more than one).
    pub async fn find_projects_by_name(
        &self,
        org_slug: &str,
        name: &str,
    ) -> Result<Vec<Project>, Error> {
        let mut found = self.org_projects(org_slug, Some(name)).await?;
        // `search` is a substring match on the vendor side.
        found.retain(|p| p.name == name);
        Ok(found)
    }

    async fn org_projects(
        &self,
        org_slug: &str,
        search: Option<&str>,
    ) -> Result<Vec<Project>, Error> {
        let limit = self.page_size.to_string();
        let fetch = |offset: u64| {
            let limit = limit.clone();
            async move {
                let offset_s = offset.to_string();
                // Oldest first: a project created while we page lands on the last page
                // instead of shifting every later page (as it would sorted by name).
                let mut query = vec![
                    ("offset", offset_s.as_str()),
                    ("limit", limit.as_str()),
                    ("sort", "created_asc"),
                ];
                if let Some(s) = search {
                    query.push(("search", s));
                }
                let req = self
                    .request(
                        Method::GET,
                        &["v1", "organizations", org_slug, "projects"],
                        "/v1/organizations/{slug}/projects",
                        format!("org:{org_slug}"),
                    )?
                    .query(&query);
                let page: types::OrgProjectsPage = self.http.send(req).await?.json()?;
                Ok(page)
            }
        };
        let items = list_all_pages(fetch).await?;
        Ok(items
            .into_iter()
            .map(|item| Project {
                id: item.project_ref.clone(),
                project_ref: item.project_ref,
                name: item.name,
                organization_slug: Some(org_slug.to_owned()),
                region: item.region,
                status: item.status,
                created_at: item.inserted_at,
            })
            .collect())
    }

    /// `GET /v1/projects/{ref}`; an unknown ref is `None`.
    pub async fn get_project(&self, project_ref: &str) -> Result<Option<Project>, Error> {
        let req = self.project_request(Method::GET, project_ref, &[], "/v1/projects/{ref}")?;
        match self.http.send(req).await {
            Ok(resp) => resp.json().map(Some),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Service health (`GET /v1/projects/{ref}/health?services=…`). The vendor advises
    /// waiting for every needed service to be `ACTIVE_HEALTHY` before configuring a new
    /// project, beyond the project status itself.
    pub async fn project_health(
        &self,
        project_ref: &str,
        services: &[&str],
    ) -> Result<Vec<ServiceHealth>, Error> {
        let list = services.join(",");
        let req = self
            .project_request(
                Method::GET,
                project_ref,
                &["health"],
                "/v1/projects/{ref}/health",
            )?
            .query(&[("services", list.as_str())]);
        self.http.send(req).await?.json()
    }

    /// `POST /v1/projects`. [`Repeat::NotRepeatable`]: the vendor has no idempotency key and
    /// names may repeat, so it is sent exactly once. On a timeout, a lost connection or a 5xx
    /// the error is [`ErrorKind::Ambiguous`]; look the name up with
    /// [`SupabaseClient::find_projects_by_name`], and never send it again in the same run. A
    /// 429 is waited out (the vendor refused it unhandled).
    pub async fn create_project(&self, req: &CreateProjectRequest) -> Result<Project, Error> {
        let http_req = self
            .request(
                Method::POST,
                &["v1", "projects"],
                "/v1/projects",
                // The vendor counts this call against the organisation in the body.
                format!("org:{}", req.organization_slug),
            )?
            .repeat(Repeat::NotRepeatable)
            .secret(&req.db_pass)
            .json(&req.body());
        let resp = self.http.send(http_req).await?;
        let mut project: Project = resp.json()?;
        if project.organization_slug.is_none() {
            project.organization_slug = Some(req.organization_slug.clone());
        }
        Ok(project)
    }

    /// `POST /v1/projects/{ref}/pause`. Pausing twice is refused by the vendor, not
    /// duplicated, so it is [`Repeat::Idempotent`].
    pub async fn pause_project(&self, project_ref: &str) -> Result<(), Error> {
        self.project_switch(project_ref, "pause", "/v1/projects/{ref}/pause")
            .await
    }

    /// `POST /v1/projects/{ref}/restore` (unpause); safe to retry like pause.
    pub async fn restore_project(&self, project_ref: &str) -> Result<(), Error> {
        self.project_switch(project_ref, "restore", "/v1/projects/{ref}/restore")
            .await
    }

    /// `POST /v1/projects/{ref}/<verb>` with no body, for the pause and restore switches.
    async fn project_switch(
        &self,
        project_ref: &str,
        verb: &str,
        template: &'static str,
    ) -> Result<(), Error> {
        let req = self
            .project_request(Method::POST, project_ref, &[verb], template)?
            .repeat(Repeat::Idempotent);
        self.http.send(req).await.map(drop)
    }

    /// `DELETE /v1/projects/{ref}`. Already gone counts as done (a retried delete whose first
    /// answer was lost sees 404).
    pub async fn delete_project(&self, project_ref: &str) -> Result<(), Error> {
        let req = self.project_request(Method::DELETE, project_ref, &[], "/v1/projects/{ref}")?;
        match self.http.send(req).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Every key of the project (`GET …/api-keys?reveal=true`), picked as the Supabase CLI
    /// picks them (see [`ApiKeys`]).
    pub async fn api_keys(&self, project_ref: &str) -> Result<ApiKeys, Error> {
        let req = self
            .project_request(
                Method::GET,
                project_ref,
                &["api-keys"],
                "/v1/projects/{ref}/api-keys",
            )?
            .query(&[("reveal", "true")]);
        let resp = self.http.send(req).await?;
        let items: Vec<types::ApiKeyItem> = resp.json()?;
        Ok(ApiKeys::pick(&items))
    }

    /// `POST …/api-keys`: a publishable or secret key named `name` (a secret key acts as
    /// `service_role`). The key is not revealed in the answer (the next read of the keys does
    /// that). [`Repeat::LookBeforeCreate`]: whether the vendor refuses a second key of one
    /// name is not documented, so a create is never repeated blindly. After an unknown
    /// outcome (lost answer, reset, 5xx, no connection) or a refusal because the name is
    /// taken, the keys are listed: a key of this type and name counts as done; absent after an
    /// unknown outcome, it is sent again, up to [`MAX_KEY_CREATE_SENDS`] sends.
    pub async fn create_api_key(
        &self,
        project_ref: &str,
        kind: NewKeyKind,
        name: &str,
    ) -> Result<(), Error> {
        let body = types::create_api_key_body(kind, name);
        let mut sends = 0;
        loop {
            sends += 1;
            let req = self
                .project_request(
                    Method::POST,
                    project_ref,
                    &["api-keys"],
                    "/v1/projects/{ref}/api-keys",
                )?
                .repeat(Repeat::LookBeforeCreate)
                .json(&body);
            let error = match self.http.send(req).await {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            let unknown = error.is_ambiguous() || error.kind() == ErrorKind::Connect;
            if !unknown && error.kind() != ErrorKind::AlreadyExists {
                return Err(error);
            }
            match self.has_api_key(project_ref, kind, name).await {
                Ok(true) => return Ok(()),
                Ok(false) if unknown && sends < MAX_KEY_CREATE_SENDS => {
                    tracing::warn!(error = %error, sends, "key create outcome unknown and not found; sending again");
                }
                Ok(false) | Err(_) => return Err(error),
            }
        }
    }

    /// Whether the project has a key of this type and name (`GET …/api-keys`, not revealed:
    /// no secret is read for the look).
    pub async fn has_api_key(
        &self,
        project_ref: &str,
        kind: NewKeyKind,
        name: &str,
    ) -> Result<bool, Error> {
        let req = self.project_request(
            Method::GET,
            project_ref,
            &["api-keys"],
            "/v1/projects/{ref}/api-keys",
        )?;
        let items: Vec<types::ApiKeyItem> = self.http.send(req).await?.json()?;
        Ok(items
            .iter()
            .any(|k| k.name == name && k.kind.as_deref() == Some(kind.as_str())))
    }

    /// Whether the legacy JWT keys are on (`GET …/api-keys/legacy`). `None` when the endpoint
    /// is gone (the vendor says it will be removed and to expect 404): then there are no
    /// legacy keys to switch off.
    pub async fn legacy_keys_enabled(&self, project_ref: &str) -> Result<Option<bool>, Error> {
        let req = self.project_request(
            Method::GET,
            project_ref,
            &["api-keys", "legacy"],
            "/v1/projects/{ref}/api-keys/legacy",
        )?;
        match self.http.send(req).await {
            Ok(resp) => resp.json::<types::LegacyApiKeys>().map(|l| Some(l.enabled)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Switch both legacy JWT keys on or off together (`PUT …/api-keys/legacy?enabled=`).
    /// Absolute, so safe to repeat.
    pub async fn set_legacy_keys(&self, project_ref: &str, enabled: bool) -> Result<(), Error> {
        let req = self
            .project_request(
                Method::PUT,
                project_ref,
                &["api-keys", "legacy"],
                "/v1/projects/{ref}/api-keys/legacy",
            )?
            .query(&[("enabled", if enabled { "true" } else { "false" })]);
        self.http.send(req).await.map(drop)
    }

    /// Run SQL (`POST …/database/query`); rows as JSON objects. [`Repeat::NotRepeatable`]:
    /// the SQL may write, so it is sent once. A statement Postgres rejects is
    /// [`ErrorKind::Sql`].
    pub async fn query(&self, project_ref: &str, sql: &str) -> Result<Vec<Value>, Error> {
        self.run_query(project_ref, sql, Repeat::NotRepeatable, None)
            .await
    }

    /// Run SQL that guards itself ([`Repeat::Guarded`]): it takes an advisory lock and checks
    /// a history table in the same transaction, so a re-send after a lost answer or a 5xx
    /// cannot apply it twice (the guard raises instead). Re-sent within `budget`. Only pass
    /// SQL built by `migrate::sql` (see `migrate::sql::GuardedSql`).
    pub async fn query_guarded(
        &self,
        project_ref: &str,
        sql: &str,
        budget: Option<&RetryBudget>,
    ) -> Result<Vec<Value>, Error> {
        self.run_query(project_ref, sql, Repeat::Guarded, budget)
            .await
    }

    /// Run read-only SQL (`read_only: true`, which the vendor enforces). Idempotent, so
    /// retried like any read.
    pub async fn query_read_only(&self, project_ref: &str, sql: &str) -> Result<Vec<Value>, Error> {
        self.run_query(project_ref, sql, Repeat::Idempotent, None)
            .await
    }

    async fn run_query(
        &self,
        project_ref: &str,
        sql: &str,
        repeat: Repeat,
        budget: Option<&RetryBudget>,
    ) -> Result<Vec<Value>, Error> {
        let read_only = match repeat {
            Repeat::Idempotent => true,
            Repeat::Guarded | Repeat::LookBeforeCreate | Repeat::NotRepeatable => false,
        };
        let req = self
            .project_request(
                Method::POST,
                project_ref,
                &["database", "query"],
                "/v1/projects/{ref}/database/query",
            )?
            .repeat(repeat)
            .budget(budget)
            .json(&types::RunQueryBody {
                query: sql,
                read_only,
            });
        let resp = match self.http.send(req).await {
            Ok(r) => r,
            // The vendor reports a rejected statement as a 4xx carrying Postgres' message.
            Err(e) if is_sql_error(&e) => return Err(e.with_kind(ErrorKind::Sql)),
            Err(e) => return Err(e),
        };
        if resp.bytes().iter().all(u8::is_ascii_whitespace) {
            return Ok(Vec::new());
        }
        match resp.json::<Value>()? {
            Value::Array(rows) => Ok(rows),
            Value::Null => Ok(Vec::new()),
            _ => Err(resp.decode_error("expected an array of rows")),
        }
    }

    /// `GET …/config/auth`.
    pub async fn auth_config(&self, project_ref: &str) -> Result<AuthConfig, Error> {
        let req = self.project_request(
            Method::GET,
            project_ref,
            &["config", "auth"],
            "/v1/projects/{ref}/config/auth",
        )?;
        let raw: Value = self.http.send(req).await?.json()?;
        Ok(AuthConfig::from_raw(raw))
    }

    /// `PATCH …/config/auth` with absolute values (so retried like a read); returns the
    /// settings after the change.
    pub async fn patch_auth_config(
        &self,
        project_ref: &str,
        patch: &AuthConfigPatch,
    ) -> Result<AuthConfig, Error> {
        let req = self
            .project_request(
                Method::PATCH,
                project_ref,
                &["config", "auth"],
                "/v1/projects/{ref}/config/auth",
            )?
            .repeat(Repeat::Idempotent)
            .json(&patch.body());
        let resp = self.http.send(req).await?;
        let raw: Value = if resp.bytes().is_empty() {
            Value::Null
        } else {
            resp.json()?
        };
        Ok(AuthConfig::from_raw(raw))
    }

    /// Buckets as the Management API lists them (read-only; no sizes or MIME types).
    pub async fn list_buckets(&self, project_ref: &str) -> Result<Vec<BucketSummary>, Error> {
        let req = self.project_request(
            Method::GET,
            project_ref,
            &["storage", "buckets"],
            "/v1/projects/{ref}/storage/buckets",
        )?;
        self.http.send(req).await?.json()
    }

    /// The project's Storage API, authenticated with a key acting as `service_role` (an
    /// `sb_secret_…` key or the legacy JWT; see [`StorageClient`] for the headers each gets).
    pub fn storage(
        &self,
        project_ref: &str,
        service_role_key: &SecretString,
    ) -> Result<StorageClient, Error> {
        let project_url = self.project_url(project_ref);
        let base = Url::parse(&project_url)
            .map_err(|e| config_error(format!("project URL {project_url:?} is not a URL: {e}")))?;
        let base = endpoint(&base, &["storage", "v1"])?;
        Ok(StorageClient::new(
            self.storage_http.clone(),
            base,
            project_ref,
            SecretString::from(service_role_key.expose_secret().to_owned()),
        ))
    }
}

/// How many times the organization listing is read from the start when its total changes
/// mid-way. Our own creates change it too (during apply), so this is a bound, not an error
/// path one expects: a listing of a few pages completes between two creates.
const MAX_LISTINGS: usize = 5;

/// Every item of a paged listing. A total (`pagination.count`) that changes between pages
/// means a project was created or deleted while we read: a deletion shifts items back onto a
/// page already read (one would be missed), a creation may shift one forward (seen twice), so
/// the listing starts again from offset 0, up to [`MAX_LISTINGS`] times.
async fn list_all_pages<F, Fut>(mut fetch: F) -> Result<Vec<types::OrgProjectItem>, Error>
where
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = Result<types::OrgProjectsPage, Error>>,
{
    'listing: for _ in 0..MAX_LISTINGS {
        let mut out: Vec<types::OrgProjectItem> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut total: Option<u64> = None;
        let mut offset: u64 = 0;
        loop {
            let page = fetch(offset).await?;
            match total {
                None => total = Some(page.pagination.count),
                Some(t) if t != page.pagination.count => continue 'listing,
                Some(_) => {}
            }
            let got = page.projects.len() as u64;
            for item in page.projects {
                // Belt and braces: a ref is kept once even if the vendor repeats it.
                if seen.insert(item.project_ref.clone()) {
                    out.push(item);
                }
            }
            offset += got;
            // Stop on the reported total, and on an empty page whatever the total says (a
            // count that is off must not make us loop forever).
            if got == 0 || offset >= page.pagination.count {
                return Ok(out);
            }
        }
    }
    Err(Error::new(
        ErrorKind::Unavailable,
        Vendor::Supabase,
        "GET",
        "/v1/organizations/{slug}/projects",
    )
    .with_message(format!(
        "the organization's project list changed while being read, {MAX_LISTINGS} times in a row; run again"
    )))
}

/// A 4xx from the query endpoint that is about the SQL, not about access or existence.
fn is_sql_error(e: &Error) -> bool {
    e.kind() == ErrorKind::Api && e.status().is_some_and(|s| (400..500).contains(&s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(r: &str) -> types::OrgProjectItem {
        types::OrgProjectItem {
            project_ref: r.into(),
            name: format!("p-{r}"),
            region: "eu-west-2".into(),
            status: ProjectStatus::ActiveHealthy,
            inserted_at: None,
        }
    }

    /// A listing of `refs`, `limit` per page, at one moment.
    fn page(refs: &[&str], offset: u64, limit: usize) -> types::OrgProjectsPage {
        types::OrgProjectsPage {
            projects: refs
                .iter()
                .skip(offset as usize)
                .take(limit)
                .map(|r| item(r))
                .collect(),
            pagination: types::Pagination {
                count: refs.len() as u64,
            },
        }
    }

    fn refs(items: &[types::OrgProjectItem]) -> Vec<String> {
        items.iter().map(|i| i.project_ref.clone()).collect()
    }

    /// List in pages of 2 from a world that is `before` for the first request and `after` from
    /// then on; the refs listed and the number of requests made.
    async fn list_changing_after_first_page(before: &[&str], after: &[&str]) -> (Vec<String>, u32) {
        let calls = std::cell::Cell::new(0);
        let got = list_all_pages(|offset| {
            calls.set(calls.get() + 1);
            let world = if calls.get() == 1 { before } else { after };
            let p = page(world, offset, 2);
            async move { Ok(p) }
        })
        .await
        .unwrap();
        (refs(&got), calls.get())
    }

    #[tokio::test]
    async fn a_deletion_between_pages_starts_the_listing_again() {
        // Page 1 is read with a..e; then `a` is deleted, so what was `c` moves to offset 1.
        // Without re-listing, `c` would be missed.
        let (got, calls) =
            list_changing_after_first_page(&["a", "b", "c", "d", "e"], &["b", "c", "d", "e"]).await;
        assert_eq!(got, ["b", "c", "d", "e"]);
        // The first page, the page whose total gave the change away, then the whole second
        // listing (2 pages).
        assert_eq!(calls, 4);
    }

    #[tokio::test]
    async fn a_creation_between_pages_starts_the_listing_again() {
        let (got, _) =
            list_changing_after_first_page(&["a", "b", "c"], &["a", "b", "c", "d"]).await;
        assert_eq!(got, ["a", "b", "c", "d"]);
    }

    #[tokio::test]
    async fn a_listing_that_never_settles_is_an_error_after_the_bound() {
        let calls = std::cell::Cell::new(0u64);
        let err = list_all_pages(|offset| {
            calls.set(calls.get() + 1);
            // Every read sees one more project than the one before.
            let n = calls.get() as usize + 2;
            let names: Vec<String> = (0..n).map(|i| format!("r{i}")).collect();
            let world: Vec<&str> = names.iter().map(String::as_str).collect();
            let p = page(&world, offset, 2);
            async move { Ok(p) }
        })
        .await
        .unwrap_err();
        assert!(
            err.to_string().contains("changed while being read"),
            "{err}"
        );
        assert_eq!(calls.get(), 2 * MAX_LISTINGS as u64);
    }

    #[test]
    fn defaults() {
        let c = SupabaseConfig::new(SecretString::from("sbp_x".to_owned()));
        assert_eq!(c.api_url.as_str(), "https://api.supabase.com/");
        let client = SupabaseClient::new(c).unwrap();
        assert_eq!(
            client.project_url("abcdefghijklmnopqrst"),
            "https://abcdefghijklmnopqrst.supabase.co"
        );
    }
}
