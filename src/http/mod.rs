//! Shared HTTP plumbing for every vendor client (DESIGN.md §7): one reqwest client per vendor,
//! timeouts, retries with backoff and jitter decided by what a request *is* ([`Repeat`]), a
//! rate limiter keyed by scope, the vendors' 429 waits, vendor error envelopes turned into
//! typed errors, and redaction.
//!
//! The rules that shape [`HttpClient::send`] (ARCHITECTURE.md, "Retry by meaning"):
//! - A 429 means the vendor refused the request without handling it, so **every** request is
//!   sent again after the vendor's wait (`Retry-After`, `X-RateLimit-Reset`). While a scope is
//!   blocked, the other requests of that scope wait too instead of earning more 429s
//!   (Cloudflare blocks the whole user for 5 minutes). A wait longer than
//!   [`RetryConfig::max_wait`] is not made here: the error is [`ErrorKind::Deferred`] and the
//!   caller parks that piece of work without holding a worker. A shorter wait is made in
//!   place through [`slot::pause`], which lends the caller's work slot to others meanwhile.
//! - A transport error or a 5xx is sent again only when the request says repeating it is safe:
//!   [`Repeat::Idempotent`] and [`Repeat::Guarded`] (the latter within the caller's
//!   [`RetryBudget`]). A [`Repeat::LookBeforeCreate`] or [`Repeat::NotRepeatable`] request is
//!   sent exactly once: its outcome is [`ErrorKind::Ambiguous`] and the caller re-observes
//!   before deciding anything (Supabase has no idempotency key, so a blind repeat can create a
//!   duplicate paid project).

pub mod counters;
pub mod error;
pub mod ratelimit;
pub mod redact;
pub mod slot;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use backon::{BackoffBuilder, ExponentialBuilder};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;
use url::Url;

pub use error::{Error, ErrorKind, Policy, Vendor, VendorError, parse_vendor_error};
pub use ratelimit::{Keying, RateLimit, ScopedLimiter};
pub use redact::{REDACTED, redact};

/// `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("intelli/", env!("CARGO_PKG_VERSION"));

/// How a request is made safe to send more than once. Decides the retries, not the HTTP
/// method: a POST of guarded SQL may be re-sent, a PATCH that toggles something may not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Repeat {
    /// Reads, and writes of absolute values (PUT/PATCH settings, DELETE, bucket upsert):
    /// sending it twice leaves the same state as once.
    Idempotent,
    /// Guards itself on the vendor's side: migration and seed SQL take an advisory lock and
    /// check the history table in the same transaction, so a re-send after a lost answer is
    /// skipped by the guard when the first one committed. Re-sent within the request's
    /// [`RetryBudget`].
    Guarded,
    /// Creates something with a unique name (Pages project, custom domain, DNS record,
    /// deployment). Sent once here; on an unknown outcome the caller looks for it, and
    /// creates again only if it is still absent.
    LookBeforeCreate,
    /// No idempotency key and no unique name (a Supabase project: names may repeat). Sent
    /// once; after an unknown outcome it is never sent again in the same run.
    NotRepeatable,
}

impl Repeat {
    /// What a method means when the caller says nothing: reads and PUT/DELETE are
    /// idempotent; POST and PATCH are assumed not repeatable until declared otherwise.
    pub fn of_method(method: &Method) -> Repeat {
        if matches!(
            *method,
            Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE
        ) {
            Repeat::Idempotent
        } else {
            Repeat::NotRepeatable
        }
    }

    /// Whether a transport error or a 5xx may be answered by sending again here.
    fn resend_on_failure(self) -> bool {
        match self {
            Repeat::Idempotent | Repeat::Guarded => true,
            Repeat::LookBeforeCreate | Repeat::NotRepeatable => false,
        }
    }
}

/// A bound on re-sends shared by every request that carries it: one per client and apply run,
/// so a vendor that keeps failing costs a client a known number of extra requests, not
/// `max_attempts` per request. Clones share the count.
#[derive(Clone, Debug)]
pub struct RetryBudget(Arc<std::sync::atomic::AtomicU32>);

impl RetryBudget {
    pub fn new(resends: u32) -> RetryBudget {
        RetryBudget(Arc::new(std::sync::atomic::AtomicU32::new(resends)))
    }

    /// Take one re-send; false when the budget is spent.
    pub fn take(&self) -> bool {
        use std::sync::atomic::Ordering;
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok()
    }

    pub fn remaining(&self) -> u32 {
        self.0.load(std::sync::atomic::Ordering::Acquire)
    }
}

/// Retry settings (see the module comment for which requests are re-sent).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryConfig {
    /// Sends in total after transport errors and 5xx, the first included. 1 disables them.
    pub max_attempts: u32,
    /// How many 429s one request waits out before it is [`ErrorKind::Deferred`]: a vendor
    /// that keeps refusing is a reason to park, not to spin.
    pub max_rate_limited: u32,
    /// First backoff delay; doubles each time.
    pub min_delay: Duration,
    /// Longest backoff delay.
    pub max_delay: Duration,
    /// Longest wait a vendor may ask for (`Retry-After`, `X-RateLimit-Reset`) and still be
    /// waited out here; beyond it the error is [`ErrorKind::Deferred`] with
    /// [`Error::retry_after`] set, so a long block does not hold a worker silently.
    pub max_wait: Duration,
    /// Randomise delays so many clients that failed together do not retry together.
    pub jitter: bool,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: 5,
            max_rate_limited: 10,
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            // Supabase blocks until its minute ends: waiting up to that is cheaper than
            // failing a client's whole apply.
            max_wait: Duration::from_secs(65),
            jitter: true,
        }
    }
}

impl RetryConfig {
    /// The wait before re-sending after the `n`th 429 when the vendor did not say how long.
    fn rate_limit_backoff(&self, n: u32) -> Duration {
        let factor = 1u32 << n.saturating_sub(1).min(16);
        self.min_delay.saturating_mul(factor).min(self.max_delay)
    }

    fn backoff(&self) -> impl Iterator<Item = Duration> + use<> {
        let b = ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_attempts.saturating_sub(1) as usize);
        let b = if self.jitter { b.with_jitter() } else { b };
        b.build()
    }
}

/// Settings of one vendor's client.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    pub vendor: Vendor,
    pub connect_timeout: Duration,
    /// Whole request, answer body included.
    pub request_timeout: Duration,
    pub retry: RetryConfig,
    /// `None`: no client-side limit (the vendor's 429s are still honoured).
    pub rate_limit: Option<RateLimit>,
}

impl HttpConfig {
    pub fn new(vendor: Vendor) -> HttpConfig {
        HttpConfig {
            vendor,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            retry: RetryConfig::default(),
            rate_limit: None,
        }
    }
}

/// A body that can be sent again on a retry.
#[derive(Clone)]
pub enum Body {
    /// Shared bytes: each attempt hands reqwest a reference, not a copy (an upload batch is
    /// up to ~53 MiB of JSON, three in flight).
    Json(bytes::Bytes),
    Bytes {
        content_type: &'static str,
        data: Vec<u8>,
    },
    /// Multipart forms are single-use in reqwest, so the request holds a recipe.
    Multipart(Arc<dyn Fn() -> reqwest::multipart::Form + Send + Sync>),
}

/// One request, described well enough to send, retry, rate-limit and report it.
pub struct Request {
    method: Method,
    url: Url,
    template: Cow<'static, str>,
    scope: String,
    repeat: Repeat,
    budget: Option<RetryBudget>,
    headers: HeaderMap,
    body: Option<Body>,
    secrets: Vec<SecretString>,
    /// A problem found while building (bad header value, unserialisable body).
    invalid: Option<String>,
}

impl Request {
    /// A request to `url`, reported and rate-limited as `template`. GET, HEAD, PUT and DELETE
    /// are idempotent by default; POST and PATCH are not repeatable until declared with
    /// [`Request::repeat`].
    pub fn new(method: Method, url: Url, template: impl Into<Cow<'static, str>>) -> Request {
        let repeat = Repeat::of_method(&method);
        Request {
            method,
            url,
            template: template.into(),
            scope: "user".to_owned(),
            repeat,
            budget: None,
            headers: HeaderMap::new(),
            body: None,
            secrets: Vec::new(),
            invalid: None,
        }
    }

    /// The rate-limit scope (`project:<ref>`, `org:<slug>`; default `user`).
    pub fn scope(mut self, scope: impl Into<String>) -> Request {
        self.scope = scope.into();
        self
    }

    /// Declare how the request is made safe to repeat (every vendor write says it).
    pub fn repeat(mut self, repeat: Repeat) -> Request {
        self.repeat = repeat;
        self
    }

    /// Count this request's re-sends after transport errors and 5xx against `budget` (one per
    /// client run). 429 waits are not counted: the vendor did not handle the request.
    pub fn budget(mut self, budget: Option<&RetryBudget>) -> Request {
        self.budget = budget.cloned();
        self
    }

    /// Add query parameters.
    pub fn query(mut self, pairs: &[(&str, &str)]) -> Request {
        {
            let mut q = self.url.query_pairs_mut();
            for (k, v) in pairs {
                q.append_pair(k, v);
            }
        }
        self
    }

    /// Add a header whose value is a secret: it is marked sensitive (never printed by the
    /// HTTP stack) and scrubbed from anything this request's errors say. An invalid value is
    /// reported by [`HttpClient::send`] as [`ErrorKind::Config`].
    pub fn secret_header(mut self, name: HeaderName, value: &SecretString) -> Request {
        match HeaderValue::from_str(value.expose_secret()) {
            Ok(mut v) => {
                v.set_sensitive(true);
                self.headers.insert(name, v);
            }
            Err(_) => {
                self.invalid.get_or_insert_with(|| {
                    format!("the value for header {name} is not a valid header value")
                });
            }
        }
        self.secrets.push(value.clone());
        self
    }

    /// `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &SecretString) -> Request {
        let value = SecretString::from(format!("Bearer {}", token.expose_secret()));
        self.secret_header(reqwest::header::AUTHORIZATION, &value)
            .secret(token)
    }

    /// A JSON body. Declare secret values inside it with [`Request::secret`].
    pub fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Request {
        match serde_json::to_vec(body) {
            Ok(bytes) => self.body = Some(Body::Json(bytes.into())),
            Err(e) => {
                self.invalid
                    .get_or_insert_with(|| format!("request body could not be serialised: {e}"));
            }
        }
        self
    }

    /// Any other body.
    pub fn body(mut self, body: Body) -> Request {
        self.body = Some(body);
        self
    }

    /// Declare a secret value this request carries (in its body, say), to be scrubbed.
    pub fn secret(mut self, value: &SecretString) -> Request {
        self.secrets.push(value.clone());
        self
    }

    pub fn method(&self) -> &Method {
        &self.method
    }
    pub fn template(&self) -> &str {
        &self.template
    }
    pub fn url(&self) -> &Url {
        &self.url
    }
    pub fn repeat_kind(&self) -> Repeat {
        self.repeat
    }

    fn redact(&self, text: &str) -> String {
        let known: Vec<&str> = self.secrets.iter().map(|s| s.expose_secret()).collect();
        redact(text, &known)
    }
}

/// A successful answer, body read in full.
pub struct Response {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
    ctx: ErrCtx,
}

/// What an error about this response needs to say.
#[derive(Clone)]
struct ErrCtx {
    vendor: Vendor,
    method: String,
    template: String,
    scope: String,
    repeat: Repeat,
    attempts: u32,
}

impl ErrCtx {
    fn error(&self, kind: ErrorKind) -> Error {
        Error::new(kind, self.vendor, &self.method, &self.template)
            .with_scope(Some(&self.scope))
            .with_attempts(self.attempts)
    }
}

impl Response {
    pub fn status(&self) -> StatusCode {
        self.status
    }
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }
    pub fn bytes(&self) -> &[u8] {
        &self.body
    }

    /// Decode the JSON body. If the request was a write that is not idempotent, it has taken
    /// effect even though we cannot read what it made, so the error is
    /// [`ErrorKind::Ambiguous`] (the caller must re-observe to learn the result).
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body).map_err(|e| self.decode_error(e.to_string()))
    }

    /// A decode error about this response (for shape checks beyond serde's).
    pub fn decode_error(&self, what: impl AsRef<str>) -> Error {
        let kind = match self.ctx.repeat {
            Repeat::Idempotent => ErrorKind::Decode,
            Repeat::Guarded | Repeat::LookBeforeCreate | Repeat::NotRepeatable => {
                ErrorKind::Ambiguous
            }
        };
        // serde's message can quote the offending value, which could be a key: redact it.
        self.ctx
            .error(kind)
            .with_status(self.status.as_u16())
            .with_message(format!(
                "could not read the response: {}",
                redact(what.as_ref(), &[])
            ))
    }
}

/// A vendor's HTTP client. Cheap to clone (the connection pool and the limiter are shared).
#[derive(Clone)]
pub struct HttpClient {
    inner: Arc<Shared>,
}

struct Shared {
    client: reqwest::Client,
    vendor: Vendor,
    retry: RetryConfig,
    limiter: Option<ScopedLimiter>,
    /// Budgets the vendor has blocked with a 429, and until when. Every request counted in a
    /// blocked budget waits for its end (or is deferred at once when that is too far), so one
    /// 429 costs one refused request, not one per worker.
    blocked: std::sync::Mutex<HashMap<String, Instant>>,
}

/// How one attempt failed, and what to do next.
struct Failure {
    error: Error,
    next: Next,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Next {
    /// Hand the error to the caller.
    Stop,
    /// The vendor refused without handling it (429): wait as it asks, send again.
    WaitOut,
    /// Transient and safe to repeat for this request: send again after a backoff.
    Resend,
}

/// Blocked budgets kept before expired ones are swept (a long `watch` touches many scopes).
const MAX_BLOCKED_KEYS: usize = 1_000;

impl HttpClient {
    pub fn new(config: &HttpConfig) -> Result<HttpClient, Error> {
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .build()
            .map_err(|e| {
                Error::new(ErrorKind::Config, config.vendor, "-", "-")
                    .with_message(format!("cannot build the HTTP client: {}", chain(&e)))
            })?;
        Ok(Self::with_client(client, config))
    }

    /// Another vendor's client on the same connection pool (Storage beside the Management
    /// API), with its own error parser, retries and limiter.
    pub fn sibling(&self, config: &HttpConfig) -> HttpClient {
        Self::with_client(self.inner.client.clone(), config)
    }

    fn with_client(client: reqwest::Client, config: &HttpConfig) -> HttpClient {
        HttpClient {
            inner: Arc::new(Shared {
                client,
                vendor: config.vendor,
                retry: config.retry,
                limiter: config.rate_limit.and_then(ScopedLimiter::new),
                blocked: std::sync::Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn vendor(&self) -> Vendor {
        self.inner.vendor
    }

    /// Send with rate limiting, 429s waited out, and re-sends when the request's [`Repeat`]
    /// allows them. Any answer with a status below 400 is returned; everything else is a
    /// typed [`Error`].
    pub async fn send(&self, req: Request) -> Result<Response, Error> {
        let span = tracing::debug_span!(
            "http",
            vendor = self.inner.vendor.name(),
            method = %req.method,
            path = %req.template,
            scope = %req.scope,
        );
        self.send_traced(req).instrument(span).await
    }

    /// The budget a vendor blocks as a whole on a 429: Cloudflare blocks the user (every
    /// call), Supabase counts per scope and endpoint.
    fn block_key(&self, req: &Request) -> String {
        match self.inner.vendor {
            Vendor::Cloudflare => String::new(),
            Vendor::Supabase | Vendor::SupabaseStorage => {
                format!("{}\u{0}{} {}", req.scope, req.method, req.template)
            }
        }
    }

    /// How much longer the budget `key` is blocked, if it is.
    fn blocked_for(&self, key: &str) -> Option<Duration> {
        let mut blocked = self.inner.blocked.lock().unwrap_or_else(|p| p.into_inner());
        let until = *blocked.get(key)?;
        let left = until.checked_duration_since(Instant::now());
        if left.is_none() {
            blocked.remove(key);
        }
        left.filter(|d| !d.is_zero())
    }

    /// Record that the vendor blocked `key` for `wait`.
    fn block(&self, key: &str, wait: Duration) {
        let until = Instant::now() + wait;
        let mut blocked = self.inner.blocked.lock().unwrap_or_else(|p| p.into_inner());
        if blocked.len() >= MAX_BLOCKED_KEYS {
            let now = Instant::now();
            blocked.retain(|_, t| *t > now);
        }
        let entry = blocked.entry(key.to_owned()).or_insert(until);
        *entry = (*entry).max(until);
    }

    async fn send_traced(&self, req: Request) -> Result<Response, Error> {
        if let Some(problem) = &req.invalid {
            return Err(Error::new(
                ErrorKind::Config,
                self.inner.vendor,
                req.method.as_str(),
                &req.template,
            )
            .with_scope(Some(&req.scope))
            .with_message(req.redact(problem)));
        }
        let retry = self.inner.retry;
        let mut backoff = retry.backoff();
        let key = self
            .inner
            .limiter
            .as_ref()
            .map(|l| l.key(&req.scope, req.method.as_str(), &req.template));
        let block_key = self.block_key(&req);
        let mut attempts: u32 = 0;
        let mut limited: u32 = 0;
        loop {
            // A budget the vendor has blocked: wait with the other requests counted in it, or
            // defer without spending a request when the block outlasts what we wait in place.
            if let Some(left) = self.blocked_for(&block_key) {
                if left > retry.max_wait {
                    return Err(self.deferred(&req, attempts, left));
                }
                slot::pause(left).await;
            }
            attempts += 1;
            if let (Some(l), Some(k)) = (&self.inner.limiter, &key) {
                l.acquire(k).await;
            }
            let failure = match self.attempt(&req, attempts).await {
                Ok(resp) => {
                    tracing::debug!(status = resp.status.as_u16(), attempts, "done");
                    return Ok(resp);
                }
                Err(f) => f,
            };
            let error = failure.error.with_attempts(attempts);
            let wait = match failure.next {
                Next::Stop => return Err(error),
                Next::WaitOut => {
                    limited += 1;
                    let wait = error
                        .retry_after()
                        .unwrap_or_else(|| retry.rate_limit_backoff(limited));
                    self.block(&block_key, wait);
                    if wait > retry.max_wait || limited > retry.max_rate_limited {
                        return Err(error
                            .with_kind(ErrorKind::Deferred)
                            .with_retry_after(Some(wait)));
                    }
                    // The wait itself happens at the top of the loop, shared with the scope.
                    Duration::ZERO
                }
                Next::Resend => {
                    let Some(delay) = backoff.next() else {
                        return Err(error);
                    };
                    if req.budget.as_ref().is_some_and(|b| !b.take()) {
                        return Err(error);
                    }
                    match error.retry_after() {
                        // A 503 asking for a long pause: not ours to sit through.
                        Some(asked) if asked > retry.max_wait => return Err(error),
                        Some(asked) => asked.max(delay),
                        None => delay,
                    }
                }
            };
            tracing::warn!(
                status = error.status(),
                kind = ?error.kind(),
                attempt = attempts,
                wait_ms = wait.as_millis() as u64,
                "retrying"
            );
            slot::pause(wait).await;
        }
    }

    /// The error for a request not sent because its budget is blocked for `left`.
    fn deferred(&self, req: &Request, attempts: u32, left: Duration) -> Error {
        Error::new(
            ErrorKind::Deferred,
            self.inner.vendor,
            req.method.as_str(),
            &req.template,
        )
        .with_scope(Some(&req.scope))
        .with_status(429)
        .with_attempts(attempts.max(1))
        .with_retry_after(Some(left))
    }

    async fn attempt(&self, req: &Request, attempts: u32) -> Result<Response, Failure> {
        let ctx = ErrCtx {
            vendor: self.inner.vendor,
            method: req.method.as_str().to_owned(),
            template: req.template.to_string(),
            scope: req.scope.clone(),
            repeat: req.repeat,
            attempts,
        };
        let mut rb = self
            .inner
            .client
            .request(req.method.clone(), req.url.clone())
            .headers(req.headers.clone());
        rb = match &req.body {
            None => rb,
            Some(Body::Json(bytes)) => rb
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(bytes.clone()),
            Some(Body::Bytes { content_type, data }) => rb
                .header(reqwest::header::CONTENT_TYPE, *content_type)
                .body(data.clone()),
            Some(Body::Multipart(make)) => rb.multipart(make()),
        };
        counters::sent(self.inner.vendor);
        let resp = match rb.send().await {
            Ok(r) => r,
            Err(e) => return Err(transport_failure(&ctx, req, &e)),
        };
        let status = resp.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            counters::rate_limited(self.inner.vendor);
        }
        let headers = resp.headers().clone();
        let body = match resp.bytes().await {
            Ok(b) => b.to_vec(),
            // The answer started but did not arrive whole: for a mutation, we know it was
            // received but not whether it succeeded.
            Err(e) => return Err(transport_failure(&ctx, req, &e)),
        };
        if status.as_u16() < 400 {
            return Ok(Response {
                status,
                headers,
                body,
                ctx,
            });
        }
        Err(status_failure(&ctx, req, status, &headers, &body))
    }
}

/// Classify a failure before a complete answer.
fn transport_failure(ctx: &ErrCtx, req: &Request, e: &reqwest::Error) -> Failure {
    let detail = req.redact(&chain(e));
    let resend = ctx.repeat.resend_on_failure();
    let kind = if e.is_connect() {
        // Nothing reached the server. Still not repeated for a create: the caller decides,
        // and a proxy in between could blur "not connected" anyway.
        ErrorKind::Connect
    } else if !resend {
        ErrorKind::Ambiguous
    } else if e.is_timeout() {
        ErrorKind::Timeout
    } else {
        // Reset, closed before the answer, a broken body: transient for a safe request.
        ErrorKind::Unavailable
    };
    Failure {
        error: ctx.error(kind).with_message(detail),
        next: if resend { Next::Resend } else { Next::Stop },
    }
}

/// Classify an error status.
fn status_failure(
    ctx: &ErrCtx,
    req: &Request,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Failure {
    let parsed = parse_vendor_error(ctx.vendor, body);
    // The Storage API wraps every 4xx in a 400 and says the real one in the body.
    let effective = match parsed.status {
        Some(s) if (400..600).contains(&s) => s,
        _ => status.as_u16(),
    };
    let server_error = effective >= 500 || status.as_u16() >= 500;
    let mut kind = error::kind_for_status(effective, parsed.code.as_deref());
    if status.as_u16() >= 500 && kind != ErrorKind::Unavailable {
        kind = ErrorKind::Unavailable;
    }
    let resend = ctx.repeat.resend_on_failure();
    if !resend && kind == ErrorKind::Unavailable {
        // A 5xx says nothing about whether the mutation was applied before the failure.
        kind = ErrorKind::Ambiguous;
    }
    let mut error = ctx
        .error(kind)
        .with_status(effective)
        .with_code(parsed.code.map(|c| req.redact(&c)))
        .with_retry_after(retry_after(headers, effective));
    if let Some(m) = parsed.message {
        error = error.with_message(req.redact(&m));
    }
    let next = if effective == 429 {
        // Refused before it was handled, whatever the request is.
        Next::WaitOut
    } else if server_error && resend {
        Next::Resend
    } else {
        Next::Stop
    };
    Failure { error, next }
}

/// How long the vendor asks us to wait: `Retry-After` (seconds or an HTTP date), else on a 429
/// the rate-limit reset headers (`X-RateLimit-Reset`, `RateLimit-Reset`: seconds until the
/// window resets, a Unix time when the number is that large, or an HTTP date as Cloudflare
/// sends it).
pub fn retry_after(headers: &HeaderMap, status: u16) -> Option<Duration> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(v) = get("retry-after") {
        if let Ok(secs) = v.parse::<u64>() {
            return Some(Duration::from_secs(secs));
        }
        if let Ok(secs) = v.parse::<f64>()
            && secs.is_finite()
            && secs >= 0.0
        {
            return Some(Duration::from_secs_f64(secs));
        }
        if let Ok(when) = httpdate::parse_http_date(v) {
            return Some(
                when.duration_since(SystemTime::now())
                    .unwrap_or(Duration::ZERO),
            );
        }
    }
    if status != 429 {
        return None;
    }
    for name in ["x-ratelimit-reset", "ratelimit-reset"] {
        let Some(v) = get(name) else { continue };
        // Cloudflare sends the reset as an RFC 1123 date.
        if let Ok(when) = httpdate::parse_http_date(v) {
            return Some(
                when.duration_since(SystemTime::now())
                    .unwrap_or(Duration::ZERO),
            );
        }
        let Ok(n) = v.parse::<u64>() else { continue };
        // Seconds-until is small; an epoch timestamp is huge (GitHub-style headers).
        const EPOCH_THRESHOLD: u64 = 1_000_000_000;
        if n >= EPOCH_THRESHOLD {
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            return Some(Duration::from_secs(n.saturating_sub(now)));
        }
        return Some(Duration::from_secs(n));
    }
    None
}

/// An error and its sources, one line. The URL is left out (reqwest puts it first; it is in
/// the path template already, and a query string could carry something we do not want
/// printed).
fn chain(e: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    let head = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "connection failed".to_owned()
    } else if e.is_body() || e.is_decode() {
        "reading the response body failed".to_owned()
    } else {
        "request failed".to_owned()
    };
    parts.push(head);
    while let Some(s) = src {
        let text = s.to_string();
        if parts.last().is_none_or(|p| p != &text) {
            parts.push(text);
        }
        src = s.source();
    }
    parts.join(": ")
}

/// `base` with `segments` appended as path segments (each percent-encoded, so a value can
/// never add a segment or a query), keeping any path `base` already has (`…/client/v4`).
pub fn endpoint(base: &Url, segments: &[&str]) -> Result<Url, Error> {
    let mut url = base.clone();
    {
        let mut path = url.path_segments_mut().map_err(|_| {
            Error::new(ErrorKind::Config, Vendor::Supabase, "-", "-")
                .with_message(format!("{base} cannot be a base URL"))
        })?;
        path.pop_if_empty();
        for s in segments {
            path.push(s);
        }
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("3"));
        assert_eq!(retry_after(&h, 503), Some(Duration::from_secs(3)));
        let later = SystemTime::now() + Duration::from_secs(30);
        h.insert(
            "retry-after",
            HeaderValue::from_str(&httpdate::fmt_http_date(later)).unwrap(),
        );
        let d = retry_after(&h, 429).unwrap();
        assert!(
            d > Duration::from_secs(27) && d <= Duration::from_secs(30),
            "{d:?}"
        );
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-reset", HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h, 429), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(&h, 200), None);
        // Cloudflare's reset is an RFC 1123 date.
        let mut h = HeaderMap::new();
        h.insert(
            "x-ratelimit-reset",
            HeaderValue::from_str(&httpdate::fmt_http_date(later)).unwrap(),
        );
        let d = retry_after(&h, 429).unwrap();
        assert!(d > Duration::from_secs(27) && d <= Duration::from_secs(30));
    }

    #[test]
    fn repeat_follows_meaning_and_budget_is_shared() {
        assert_eq!(Repeat::of_method(&Method::PUT), Repeat::Idempotent);
        assert_eq!(Repeat::of_method(&Method::POST), Repeat::NotRepeatable);
        assert!(Repeat::Guarded.resend_on_failure());
        assert!(!Repeat::LookBeforeCreate.resend_on_failure());
        assert!(!Repeat::NotRepeatable.resend_on_failure());
        let b = RetryBudget::new(2);
        let clone = b.clone();
        assert!(b.take());
        assert!(clone.take());
        assert!(!b.take());
        assert_eq!(clone.remaining(), 0);
        let rc = RetryConfig::default();
        assert_eq!(rc.rate_limit_backoff(1), rc.min_delay);
        assert_eq!(rc.rate_limit_backoff(40), rc.max_delay);
    }

    #[test]
    fn endpoint_keeps_base_path_and_encodes() {
        let base = Url::parse("http://x/client/v4/").unwrap();
        let u = endpoint(&base, &["accounts", "a/b?c"]).unwrap();
        assert_eq!(u.as_str(), "http://x/client/v4/accounts/a%2Fb%3Fc");
        let base = Url::parse("https://api.supabase.com").unwrap();
        let u = endpoint(&base, &["v1", "projects"]).unwrap();
        assert_eq!(u.as_str(), "https://api.supabase.com/v1/projects");
    }
}
