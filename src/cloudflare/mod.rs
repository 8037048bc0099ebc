//! Typed client of the Cloudflare v4 API subset intelli needs: Pages projects, deployments and
//! custom domains, zones and DNS records, and wrangler-compatible direct upload
//! ([`CloudflareClient::deploy_directory`], in [`upload`]). Shapes and numbers follow
//! reference/cloudflare-api.md (wrangler 4.x and the vendor's spec).
//!
//! Everything goes through [`crate::http`]: one reqwest client, bearer token, **one** rate
//! limiter shared by every call of this client and its clones (Cloudflare counts 1200 requests
//! per 5 minutes per user across everything, and a breach blocks the user for 5 minutes),
//! `Retry-After` honoured (a 429 blocks every call of the client until it ends), re-sends
//! decided by what each call is ([`Repeat`]), typed and redacted errors.
//!
//! Creating calls (`create_project`, `add_domain`, `create_dns_record`, the deployment) are
//! [`Repeat::LookBeforeCreate`]: never blindly repeated. When their outcome is unknown the
//! client re-observes (looks the thing up by its unique name) and returns what it finds; only
//! when it is still absent is the create sent again, a bounded number of times
//! ([`MAX_CREATE_SENDS`]).

pub mod types;
pub mod upload;

use std::collections::HashSet;
use std::time::Duration;

use reqwest::Method;
use secrecy::SecretString;
use serde::de::DeserializeOwned;
use url::Url;

use crate::http::{
    Error, ErrorKind, HttpClient, HttpConfig, Keying, RateLimit, Repeat, Request, Response,
    RetryConfig, Vendor, endpoint, parse_vendor_error,
};
pub use types::{
    DeployMeta, DeployOutcome, Deployment, DeploymentTrigger, DnsFilters, DnsRecord,
    DnsRecordInput, DnsRecordPatch, DomainStatus, PagesDomain, PagesProject, Stage, StageName,
    StageStatus, TriggerMetadata, ValidationData, VerificationData, Zone, ZoneAccount,
};
pub use upload::{DeployError, UploadLimits, UploadToken, asset_key, asset_key_of_file};

/// The vendor's API (wrangler's default).
pub const DEFAULT_API_BASE: &str = "https://api.cloudflare.com/client/v4";
/// Cloudflare's global quota: 1200 requests per 5 minutes per user.
pub const DEFAULT_RATE_LIMIT_REQUESTS: u32 = 1200;
pub const DEFAULT_RATE_LIMIT_WINDOW: Duration = Duration::from_secs(300);

/// Sends of one look-before-create call, the first included: after an unknown outcome the
/// thing is looked up, and created again only while it is still absent. As many as an
/// idempotent request gets (`RetryConfig::max_attempts`): with 3, one create in about 800
/// failed under 10% 5xx (the fault benchmark lost 2 of 100 clients that way).
pub const MAX_CREATE_SENDS: u32 = 5;

/// Pause before a look-before-create call is sent again (doubled each time): the look in
/// between is not a backoff, and a vendor answering 5xx may be overloaded.
const CREATE_RESEND_DELAY: Duration = Duration::from_millis(250);

/// `per_page` maximum of `GET /zones/{zone_id}/dns_records` (dns-records_per_page).
pub const MAX_DNS_PAGE_SIZE: u32 = 5_000_000;

/// Error codes the client branches on.
pub mod codes {
    /// Pages "unknown error": wrangler retries deployment creation on it.
    pub const PAGES_UNKNOWN: &str = "8000000";
    /// Pages project not found (wrangler pages/deploy.ts).
    pub const PAGES_PROJECT_NOT_FOUND: &str = "8000007";
    /// Upload JWT expired or invalid: get a new one (wrangler pages/errors.ts).
    pub const PAGES_JWT: &str = "8000013";
    /// "No route for the URI": a wrong base URL or id, never "the thing does not exist".
    pub const NO_ROUTE: &str = "7003";
    /// DNS: "Record already exists." (an identical record: same type, name and content).
    pub const DNS_RECORD_EXISTS: &str = "81057";
    /// DNS: "An A, AAAA, or CNAME record with that host already exists." (also what an
    /// identical CNAME gets).
    pub const DNS_CNAME_CONFLICT: &str = "81053";
}

/// How to reach Cloudflare.
#[derive(Clone, Debug)]
pub struct CloudflareConfig {
    /// Base of the v4 API (`CLOUDFLARE_API_BASE_URL`, wrangler's name).
    pub api_base: Url,
    /// API token (`CLOUDFLARE_API_TOKEN`): Pages edit on the account, DNS edit on the zones.
    pub token: SecretString,
    /// `CLOUDFLARE_ACCOUNT_ID` or fleet.yaml.
    pub account_id: String,
    /// Client-side budget for every call together. 0 disables the limiter.
    pub rate_limit_requests: u32,
    /// The vendor's window is 5 minutes; tests scale it down.
    pub rate_limit_window: Duration,
    pub retry: RetryConfig,
    pub connect_timeout: Duration,
    /// Whole request including the body: an upload batch is up to ~53 MiB of JSON.
    pub request_timeout: Duration,
    /// Page size of the Pages project list (wrangler asks for 10).
    pub projects_page_size: u32,
    /// Page size of the DNS record list: the spec's maximum (5,000,000) by default, so a
    /// zone is usually one request.
    pub dns_page_size: u32,
    /// Direct-upload limits (wrangler's numbers by default).
    pub upload: UploadLimits,
    /// First wait between deployment status polls (doubles, capped at 10 s).
    pub deploy_poll_interval: Duration,
    /// Longest wait for a deployment to go live.
    pub deploy_timeout: Duration,
}

impl CloudflareConfig {
    /// Vendor defaults for this token and account.
    pub fn new(token: SecretString, account_id: impl Into<String>) -> CloudflareConfig {
        CloudflareConfig {
            // A literal, not input: it parses, which the unit test below checks.
            api_base: Url::parse(DEFAULT_API_BASE).expect("DEFAULT_API_BASE is a valid URL"),
            token,
            account_id: account_id.into(),
            rate_limit_requests: DEFAULT_RATE_LIMIT_REQUESTS,
            rate_limit_window: DEFAULT_RATE_LIMIT_WINDOW,
            retry: RetryConfig {
                // A breach blocks every call for 5 minutes; waiting it out beats failing each
                // client's action (they would all wait for the same block anyway).
                max_wait: Duration::from_secs(310),
                ..RetryConfig::default()
            },
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(180),
            projects_page_size: 100,
            dns_page_size: MAX_DNS_PAGE_SIZE,
            upload: UploadLimits::default(),
            deploy_poll_interval: Duration::from_secs(1),
            deploy_timeout: Duration::from_secs(300),
        }
    }

    /// From the environment, with wrangler's names: `CLOUDFLARE_API_TOKEN` (required),
    /// `CLOUDFLARE_ACCOUNT_ID` (else `account_id`, e.g. from fleet.yaml), and
    /// `CLOUDFLARE_API_BASE_URL` (or its deprecated alias `CF_API_BASE_URL`). The token is
    /// wrapped as a secret the moment it is read.
    pub fn from_env(account_id: Option<&str>) -> Result<CloudflareConfig, Error> {
        Self::from_lookup(|name| std::env::var(name).ok(), account_id)
    }

    /// [`CloudflareConfig::from_env`] over any variable source (testable without touching
    /// the process environment).
    fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
        account_id: Option<&str>,
    ) -> Result<CloudflareConfig, Error> {
        let var = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let token = var("CLOUDFLARE_API_TOKEN")
            .ok_or_else(|| config_error("CLOUDFLARE_API_TOKEN is not set"))?;
        let account = var("CLOUDFLARE_ACCOUNT_ID")
            .or_else(|| account_id.map(str::to_owned).filter(|a| !a.is_empty()))
            .ok_or_else(|| {
                config_error(
                    "no Cloudflare account: set CLOUDFLARE_ACCOUNT_ID or the fleet's account id",
                )
            })?;
        let mut c = CloudflareConfig::new(SecretString::from(token), account);
        if let Some((name, url)) = var("CLOUDFLARE_API_BASE_URL")
            .map(|u| ("CLOUDFLARE_API_BASE_URL", u))
            .or_else(|| var("CF_API_BASE_URL").map(|u| ("CF_API_BASE_URL", u)))
        {
            // The value is a URL, not a secret, but a typo could hold one: say only why.
            c.api_base =
                Url::parse(&url).map_err(|e| config_error(format!("{name} is not a URL: {e}")))?;
        }
        Ok(c)
    }
}

fn config_error(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Config, Vendor::Cloudflare, "-", "-").with_message(message)
}

/// Whether a vendor error carries `code` (the layer joins several codes with `; `).
pub fn has_code(e: &Error, code: &str) -> bool {
    e.code()
        .is_some_and(|c| c.split(';').any(|c| c.trim() == code))
}

/// A refusal that may mean "it exists already": a 409 (Pages project, domain) or the DNS
/// API's identical-record and same-host codes (sent with a 400). Only a look decides: the
/// look-up matches what was asked for exactly.
fn is_already_there(e: &Error) -> bool {
    e.kind() == ErrorKind::AlreadyExists
        || has_code(e, codes::DNS_RECORD_EXISTS)
        || has_code(e, codes::DNS_CNAME_CONFLICT)
}

/// A 404 that means "this does not exist" (not a 404 for a path the API does not route,
/// which would make a wrong base URL look like an empty account).
fn is_absent(e: &Error) -> bool {
    e.is_not_found() && !has_code(e, codes::NO_ROUTE)
}

/// The Cloudflare client. Cheap to clone; clones share the connection pool and the limiter.
#[derive(Clone)]
pub struct CloudflareClient {
    http: HttpClient,
    api_base: Url,
    token: SecretString,
    account_id: String,
    projects_page_size: u32,
    dns_page_size: u32,
    upload: UploadLimits,
    deploy_poll_interval: Duration,
    deploy_timeout: Duration,
    /// Longest `Retry-After` waited out where this module retries itself.
    max_wait: Duration,
}

impl std::fmt::Debug for CloudflareClient {
    // Hand-written: the token must never be printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudflareClient")
            .field("api_base", &self.api_base.as_str())
            .field("account_id", &self.account_id)
            .finish_non_exhaustive()
    }
}

impl CloudflareClient {
    pub fn new(config: CloudflareConfig) -> Result<CloudflareClient, Error> {
        if config.account_id.trim().is_empty() {
            return Err(config_error("the Cloudflare account id is empty"));
        }
        let rate_limit = (config.rate_limit_requests > 0).then(|| {
            RateLimit::new(
                config.rate_limit_requests,
                config.rate_limit_window,
                Keying::Shared,
            )
        });
        let http = HttpClient::new(&HttpConfig {
            vendor: Vendor::Cloudflare,
            connect_timeout: config.connect_timeout,
            request_timeout: config.request_timeout,
            retry: config.retry,
            rate_limit,
        })?;
        Ok(CloudflareClient {
            http,
            api_base: config.api_base,
            token: config.token,
            account_id: config.account_id,
            projects_page_size: config.projects_page_size.max(1),
            dns_page_size: config.dns_page_size.max(1),
            upload: config.upload,
            deploy_poll_interval: config.deploy_poll_interval,
            deploy_timeout: config.deploy_timeout,
            max_wait: config.retry.max_wait,
        })
    }

    /// The same client (same limiter: Cloudflare's quota is per user) for another account
    /// the token can use, when a fleet spans accounts.
    pub fn for_account(&self, account_id: impl Into<String>) -> CloudflareClient {
        CloudflareClient {
            account_id: account_id.into(),
            ..self.clone()
        }
    }

    pub fn account_id(&self) -> &str {
        &self.account_id
    }

    /// A request to `<api_base>/<segments…>` with the API token.
    fn request(
        &self,
        method: Method,
        segments: &[&str],
        template: &'static str,
    ) -> Result<Request, Error> {
        Ok(self
            .bare_request(method, segments, template)?
            .bearer(&self.token))
    }

    /// Like [`Self::request`] without credentials (asset calls use the upload JWT).
    fn bare_request(
        &self,
        method: Method,
        segments: &[&str],
        template: &'static str,
    ) -> Result<Request, Error> {
        let url = endpoint(&self.api_base, segments).map_err(|e| {
            config_error(format!(
                "CLOUDFLARE_API_BASE_URL cannot hold {template}: {}",
                e.message().unwrap_or("invalid")
            ))
        })?;
        Ok(Request::new(method, url, template))
    }

    fn project_request(
        &self,
        method: Method,
        project: &str,
        rest: &[&str],
        template: &'static str,
    ) -> Result<Request, Error> {
        let mut segments = vec!["accounts", &self.account_id, "pages", "projects", project];
        segments.extend_from_slice(rest);
        self.request(method, &segments, template)
    }

    /// Send and unwrap the envelope's `result`.
    async fn call<T: DeserializeOwned>(&self, req: Request) -> Result<T, Error> {
        let (method, template) = (req.method().to_string(), req.template().to_owned());
        let resp = self.http.send(req).await?;
        let env: types::Envelope<T> = envelope(&resp, &method, &template)?;
        env.result
            .ok_or_else(|| resp.decode_error("the answer has no result"))
    }

    /// Every page of a page-paginated list. Items already seen (by `key`) are skipped: an
    /// item created while paging shifts others onto the next page.
    async fn paged<T: DeserializeOwned>(
        &self,
        build: impl Fn() -> Result<Request, Error>,
        per_page: u32,
        key: impl Fn(&T) -> String,
    ) -> Result<Vec<T>, Error> {
        // Far beyond any real list; only stops a server whose paging never ends.
        const MAX_PAGES: u64 = 100_000;
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let per_page_s = per_page.to_string();
        for page in 1..=MAX_PAGES {
            let page_s = page.to_string();
            let req = build()?.query(&[("page", &page_s), ("per_page", &per_page_s)]);
            let (method, template) = (req.method().to_string(), req.template().to_owned());
            let resp = self.http.send(req).await?;
            let env: types::Envelope<Vec<T>> = envelope(&resp, &method, &template)?;
            let items = env.result.unwrap_or_default();
            let got = items.len() as u64;
            for item in items {
                if seen.insert(key(&item)) {
                    out.push(item);
                }
            }
            let info = env.result_info.unwrap_or_default();
            // The server may clamp per_page: judge "short page" by what it says it used.
            let effective = info.per_page.unwrap_or(u64::from(per_page)).max(1);
            let last = match info.total_pages {
                Some(total) => page >= total,
                None => got < effective,
            };
            if got == 0 || last {
                break;
            }
        }
        Ok(out)
    }

    // ---------------------------------------------------------------------------------------
    // Pages projects

    /// Every Pages project of the account (all pages), each with its `subdomain`, `domains`
    /// and `canonical_deployment`: one list observes every client's frontend.
    pub async fn list_projects(&self) -> Result<Vec<PagesProject>, Error> {
        self.paged(
            || {
                self.request(
                    Method::GET,
                    &["accounts", &self.account_id, "pages", "projects"],
                    "/accounts/{account_id}/pages/projects",
                )
            },
            self.projects_page_size,
            |p: &PagesProject| p.name.clone(),
        )
        .await
    }

    /// `GET …/pages/projects/{name}`; an unknown project (8000007) is `None`.
    pub async fn get_project(&self, name: &str) -> Result<Option<PagesProject>, Error> {
        let req = self.project_request(
            Method::GET,
            name,
            &[],
            "/accounts/{account_id}/pages/projects/{project_name}",
        )?;
        match self.call(req).await {
            Ok(p) => Ok(Some(p)),
            Err(e) if is_absent(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `POST …/pages/projects` with `{name, production_branch}` (what wrangler sends for a
    /// direct-upload project). [`Repeat::LookBeforeCreate`]: the name is unique in the
    /// account, so after a lost answer (or a refusal because it exists) the project is looked
    /// up by name and returned when it exists, and created again only while it does not.
    pub async fn create_project(
        &self,
        name: &str,
        production_branch: &str,
    ) -> Result<PagesProject, Error> {
        let body = serde_json::json!({
            "name": name,
            "production_branch": production_branch,
        });
        self.create_or_find(
            || {
                Ok(self
                    .request(
                        Method::POST,
                        &["accounts", &self.account_id, "pages", "projects"],
                        "/accounts/{account_id}/pages/projects",
                    )?
                    .repeat(Repeat::LookBeforeCreate)
                    .json(&body))
            },
            async || self.get_project(name).await,
        )
        .await
    }

    /// The look-before-create loop of every [`Repeat::LookBeforeCreate`] call: send; on an
    /// unknown outcome (or "already exists", or no connection) look; found ⇒ done; absent
    /// after an unknown outcome ⇒ send again, up to [`MAX_CREATE_SENDS`]. A definite refusal
    /// is returned as it is.
    async fn create_or_find<T: DeserializeOwned>(
        &self,
        make: impl Fn() -> Result<Request, Error>,
        look: impl AsyncFn() -> Result<Option<T>, Error>,
    ) -> Result<T, Error> {
        let mut sends = 0;
        loop {
            sends += 1;
            let error = match self.call(make()?).await {
                Ok(t) => return Ok(t),
                Err(e) => e,
            };
            let unknown = error.is_ambiguous() || error.kind() == ErrorKind::Connect;
            if !unknown && !is_already_there(&error) {
                return Err(error);
            }
            match look().await {
                Ok(Some(found)) => return Ok(found),
                Ok(None) if unknown && sends < MAX_CREATE_SENDS => {
                    tracing::warn!(error = %error, sends, "create outcome unknown and not found; sending again");
                    tokio::time::sleep(CREATE_RESEND_DELAY * (1 << (sends - 1))).await;
                }
                Ok(None) | Err(_) => return Err(error),
            }
        }
    }

    /// `PATCH …/pages/projects/{name}` setting `production_branch` (an absolute value, so
    /// safe to retry).
    pub async fn patch_project(
        &self,
        name: &str,
        production_branch: &str,
    ) -> Result<PagesProject, Error> {
        let req = self
            .project_request(
                Method::PATCH,
                name,
                &[],
                "/accounts/{account_id}/pages/projects/{project_name}",
            )?
            .repeat(Repeat::Idempotent)
            .json(&serde_json::json!({ "production_branch": production_branch }));
        self.call(req).await
    }

    // ---------------------------------------------------------------------------------------
    // Deployments (direct upload is in `upload`)

    /// `GET …/deployments/{id}`; unknown is `None`.
    pub async fn get_deployment(
        &self,
        project: &str,
        id: &str,
    ) -> Result<Option<Deployment>, Error> {
        let req = self.project_request(
            Method::GET,
            project,
            &["deployments", id],
            "/accounts/{account_id}/pages/projects/{project_name}/deployments/{deployment_id}",
        )?;
        match self.call(req).await {
            Ok(d) => Ok(Some(d)),
            Err(e) if is_absent(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `POST …/deployments/{id}/rollback`: make a production deployment that succeeded
    /// before the live one again (no build, no upload). [`Repeat::Idempotent`]: rolling back
    /// to the same deployment twice leaves the same deployment live, so a lost answer or a 5xx
    /// is sent again. An unknown deployment (deleted since) is `None`.
    pub async fn rollback_deployment(
        &self,
        project: &str,
        id: &str,
    ) -> Result<Option<Deployment>, Error> {
        let req = self
            .project_request(
                Method::POST,
                project,
                &["deployments", id, "rollback"],
                "/accounts/{account_id}/pages/projects/{project_name}/deployments/{deployment_id}/rollback",
            )?
            .repeat(Repeat::Idempotent)
            // The spec requires a JSON body and gives it no fields.
            .json(&serde_json::json!({}));
        match self.call(req).await {
            Ok(d) => Ok(Some(d)),
            Err(e) if is_absent(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The newest deployments of a project (first page, newest first).
    pub async fn recent_deployments(&self, project: &str) -> Result<Vec<Deployment>, Error> {
        let req = self.project_request(
            Method::GET,
            project,
            &["deployments"],
            "/accounts/{account_id}/pages/projects/{project_name}/deployments",
        )?;
        self.call(req).await
    }

    /// The last lines of a deployment's log (best effort: for error messages).
    async fn deployment_log_tail(&self, project: &str, id: &str) -> Option<String> {
        let req = self
            .project_request(
                Method::GET,
                project,
                &["deployments", id, "history", "logs"],
                "/accounts/{account_id}/pages/projects/{project_name}/deployments/{deployment_id}/history/logs",
            )
            .ok()?;
        let logs: types::DeploymentLogs = self.call(req).await.ok()?;
        let lines: Vec<&str> = logs
            .data
            .iter()
            .map(|l| l.line.trim())
            .filter(|l| !l.is_empty())
            .collect();
        let tail = lines[lines.len().saturating_sub(3)..].join(" | ");
        (!tail.is_empty()).then_some(tail)
    }

    // ---------------------------------------------------------------------------------------
    // Custom domains

    /// Custom domains of a project (the API serves them on one page).
    pub async fn list_domains(&self, project: &str) -> Result<Vec<PagesDomain>, Error> {
        let req = self.project_request(
            Method::GET,
            project,
            &["domains"],
            "/accounts/{account_id}/pages/projects/{project_name}/domains",
        )?;
        self.call(req).await
    }

    /// `GET …/domains/{name}`; not on the project (or no such project) is `None`.
    pub async fn get_domain(
        &self,
        project: &str,
        name: &str,
    ) -> Result<Option<PagesDomain>, Error> {
        let req = self.project_request(
            Method::GET,
            project,
            &["domains", name],
            "/accounts/{account_id}/pages/projects/{project_name}/domains/{domain_name}",
        )?;
        match self.call(req).await {
            Ok(d) => Ok(Some(d)),
            Err(e) if is_absent(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `POST …/domains {name}` ([`Repeat::LookBeforeCreate`]). Adding creates no DNS record
    /// (make the proxied CNAME to `project.subdomain` next). When the answer is lost, or the
    /// API says the domain exists, the domain is looked up on this project and returned if it
    /// is there; after a lost answer it is added again only while it is absent.
    pub async fn add_domain(&self, project: &str, name: &str) -> Result<PagesDomain, Error> {
        let body = serde_json::json!({ "name": name });
        self.create_or_find(
            || {
                Ok(self
                    .project_request(
                        Method::POST,
                        project,
                        &["domains"],
                        "/accounts/{account_id}/pages/projects/{project_name}/domains",
                    )?
                    .repeat(Repeat::LookBeforeCreate)
                    .json(&body))
            },
            async || self.get_domain(project, name).await,
        )
        .await
    }

    /// `PATCH …/domains/{name}` (no body): retry validation of a domain stuck in
    /// `pending`/`error`. Repeating it only restarts validation again, so it is retried.
    pub async fn retry_domain(&self, project: &str, name: &str) -> Result<PagesDomain, Error> {
        let req = self
            .project_request(
                Method::PATCH,
                project,
                &["domains", name],
                "/accounts/{account_id}/pages/projects/{project_name}/domains/{domain_name}",
            )?
            .repeat(Repeat::Idempotent);
        self.call(req).await
    }

    // ---------------------------------------------------------------------------------------
    // Zones and DNS

    /// The zone named `name` (`GET /zones?name=`), if the token can see it.
    pub async fn find_zone(&self, name: &str) -> Result<Option<Zone>, Error> {
        let want = name.trim().trim_end_matches('.').to_ascii_lowercase();
        let req = self
            .request(Method::GET, &["zones"], "/zones")?
            .query(&[("name", want.as_str())]);
        let zones: Vec<Zone> = self.call(req).await?;
        Ok(zones
            .into_iter()
            .find(|z| z.name.eq_ignore_ascii_case(&want)))
    }

    /// Every DNS record of a zone matching `filters` (all pages).
    pub async fn list_dns_records(
        &self,
        zone_id: &str,
        filters: &DnsFilters,
    ) -> Result<Vec<DnsRecord>, Error> {
        let query = filters.query();
        self.paged(
            || {
                Ok(self
                    .request(
                        Method::GET,
                        &["zones", zone_id, "dns_records"],
                        "/zones/{zone_id}/dns_records",
                    )?
                    .query(&query))
            },
            self.dns_page_size,
            |r: &DnsRecord| r.id.clone(),
        )
        .await
    }

    /// The first page (up to 100) of a zone's DNS records matching `filters`, with the time
    /// on Cloudflare's clock when it answered (its `Date` header). The lease judges expiry by
    /// Cloudflare's `modified_on` against this, never against a local clock.
    pub async fn dns_records_at_vendor_time(
        &self,
        zone_id: &str,
        filters: &DnsFilters,
    ) -> Result<(Vec<DnsRecord>, Option<std::time::SystemTime>), Error> {
        let req = self
            .request(
                Method::GET,
                &["zones", zone_id, "dns_records"],
                "/zones/{zone_id}/dns_records",
            )?
            .query(&filters.query())
            .query(&[("per_page", "100")]);
        let (method, template) = (req.method().to_string(), req.template().to_owned());
        let resp = self.http.send(req).await?;
        let now = resp
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok());
        let env: types::Envelope<Vec<DnsRecord>> = envelope(&resp, &method, &template)?;
        Ok((env.result.unwrap_or_default(), now))
    }

    /// `POST /zones/{zone_id}/dns_records` ([`Repeat::LookBeforeCreate`]: Cloudflare refuses
    /// an identical second record). If the answer is lost, a record with the same type, name
    /// and content is looked for and returned when found, and the create is sent again only
    /// while there is none.
    pub async fn create_dns_record(
        &self,
        zone_id: &str,
        record: &DnsRecordInput,
    ) -> Result<DnsRecord, Error> {
        let filters = DnsFilters {
            record_type: Some(record.record_type.clone()),
            name: Some(record.name.clone()),
            content: Some(record.content.clone()),
            ..DnsFilters::default()
        };
        self.create_or_find(
            || self.create_dns_record_request(zone_id, record),
            async || {
                let mut found = self.list_dns_records(zone_id, &filters).await?;
                Ok((found.len() == 1).then(|| found.remove(0)))
            },
        )
        .await
    }

    /// `POST /zones/{zone_id}/dns_records`, sent once and never looked for: an identical
    /// record that exists already is refused with [`codes::DNS_RECORD_EXISTS`] (the lease
    /// relies on that refusal, so it must see it, not a look-up's result).
    pub async fn create_dns_record_once(
        &self,
        zone_id: &str,
        record: &DnsRecordInput,
    ) -> Result<DnsRecord, Error> {
        self.call(self.create_dns_record_request(zone_id, record)?)
            .await
    }

    fn create_dns_record_request(
        &self,
        zone_id: &str,
        record: &DnsRecordInput,
    ) -> Result<Request, Error> {
        Ok(self
            .request(
                Method::POST,
                &["zones", zone_id, "dns_records"],
                "/zones/{zone_id}/dns_records",
            )?
            .repeat(Repeat::LookBeforeCreate)
            .json(record))
    }

    /// `PUT /zones/{zone_id}/dns_records/{id}`: overwrite the record (comment and tags
    /// included, so pass the `managed by intelli` comment again).
    pub async fn update_dns_record(
        &self,
        zone_id: &str,
        record_id: &str,
        record: &DnsRecordInput,
    ) -> Result<DnsRecord, Error> {
        let req = self
            .request(
                Method::PUT,
                &["zones", zone_id, "dns_records", record_id],
                "/zones/{zone_id}/dns_records/{dns_record_id}",
            )?
            .json(record);
        self.call(req).await
    }

    /// `PATCH /zones/{zone_id}/dns_records/{id}`: change only the fields set (absolute
    /// values, so retried like a read). Fields left out, the comment among them, are kept.
    pub async fn patch_dns_record(
        &self,
        zone_id: &str,
        record_id: &str,
        patch: &DnsRecordPatch,
    ) -> Result<DnsRecord, Error> {
        let req = self
            .request(
                Method::PATCH,
                &["zones", zone_id, "dns_records", record_id],
                "/zones/{zone_id}/dns_records/{dns_record_id}",
            )?
            .repeat(Repeat::Idempotent)
            .json(patch);
        self.call(req).await
    }

    /// `DELETE …/pages/projects/{name}`, with its deployments. Already gone counts as done (a
    /// retried delete whose first answer was lost sees 404).
    pub async fn delete_project(&self, name: &str) -> Result<(), Error> {
        let req = self
            .project_request(
                Method::DELETE,
                name,
                &[],
                "/accounts/{account_id}/pages/projects/{project_name}",
            )?
            .repeat(Repeat::Idempotent);
        match self.http.send(req).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `DELETE /zones/{zone_id}/dns_records/{id}`; already gone counts as done.
    pub async fn delete_dns_record(&self, zone_id: &str, record_id: &str) -> Result<(), Error> {
        let req = self
            .request(
                Method::DELETE,
                &["zones", zone_id, "dns_records", record_id],
                "/zones/{zone_id}/dns_records/{dns_record_id}",
            )?
            .repeat(Repeat::Idempotent);
        match self.http.send(req).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `GET /user/tokens/verify`: whether the token is valid (`active`), touching nothing.
    pub async fn verify_token(&self) -> Result<bool, Error> {
        #[derive(serde::Deserialize)]
        struct Verify {
            #[serde(default)]
            status: Option<String>,
        }
        let req = self.request(
            Method::GET,
            &["user", "tokens", "verify"],
            "/user/tokens/verify",
        )?;
        let v: Verify = self.call(req).await?;
        Ok(v.status.as_deref() == Some("active"))
    }
}

/// Read the v4 envelope. A 2xx answer with `success: false` is still an error (the vendor's
/// codes and message kept).
fn envelope<T: DeserializeOwned>(
    resp: &Response,
    method: &str,
    template: &str,
) -> Result<types::Envelope<T>, Error> {
    let env: types::Envelope<T> = resp.json()?;
    if env.success == Some(false) {
        let parsed = parse_vendor_error(Vendor::Cloudflare, resp.bytes());
        let mut e = Error::new(ErrorKind::Api, Vendor::Cloudflare, method, template)
            .with_status(resp.status().as_u16())
            .with_code(parsed.code);
        if let Some(m) = parsed.message {
            e = e.with_message(crate::http::redact(&m, &[]));
        }
        return Err(e);
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c = CloudflareConfig::new(SecretString::from("t0ken-value".to_owned()), "acc");
        assert_eq!(c.api_base.as_str(), "https://api.cloudflare.com/client/v4");
        let client = CloudflareClient::new(c).unwrap();
        let dbg = format!("{client:?}");
        assert!(!dbg.contains("t0ken-value"), "{dbg}");
        let u = endpoint(&client.api_base, &["accounts", "a", "pages"]).unwrap();
        assert_eq!(
            u.as_str(),
            "https://api.cloudflare.com/client/v4/accounts/a/pages"
        );
    }

    #[test]
    fn config_from_variables() {
        use secrecy::ExposeSecret;
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let c = CloudflareConfig::from_lookup(
            vars(&[
                ("CLOUDFLARE_API_TOKEN", " tok "),
                ("CF_API_BASE_URL", "http://127.0.0.1:9/client/v4"),
            ]),
            Some("from-fleet"),
        )
        .unwrap();
        assert_eq!(c.token.expose_secret(), "tok");
        assert_eq!(c.account_id, "from-fleet");
        assert_eq!(c.api_base.as_str(), "http://127.0.0.1:9/client/v4");
        let c = CloudflareConfig::from_lookup(
            vars(&[
                ("CLOUDFLARE_API_TOKEN", "tok"),
                ("CLOUDFLARE_ACCOUNT_ID", "from-env"),
                ("CLOUDFLARE_API_BASE_URL", "http://a/client/v4"),
                ("CF_API_BASE_URL", "http://b/client/v4"),
            ]),
            Some("from-fleet"),
        )
        .unwrap();
        assert_eq!(c.account_id, "from-env");
        assert_eq!(c.api_base.host_str(), Some("a"));
        assert!(CloudflareConfig::from_lookup(vars(&[]), Some("a")).is_err());
        let e = CloudflareConfig::from_lookup(vars(&[("CLOUDFLARE_API_TOKEN", "t")]), None)
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
    }

    #[test]
    fn codes_are_split() {
        let e = Error::new(ErrorKind::NotFound, Vendor::Cloudflare, "GET", "/x")
            .with_code(Some("8000007; 7003".into()));
        assert!(has_code(&e, "8000007"));
        assert!(has_code(&e, "7003"));
        assert!(!has_code(&e, "800000"));
        assert!(!is_absent(&e));
    }
}
