//! The per-request machinery every simulated vendor gets: request and byte counting, latency,
//! and fault injection. Generic over the vendor so the Cloudflare router gets exactly the
//! same behaviour as the Supabase one (mount it with [`instrument`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::json;
use tokio::sync::Notify;

use super::config::{FaultKind, FaultRule, Latency, Vendor};

/// A small, fast, seedable generator (SplitMix64). Kept in-tree rather than taken from a
/// crate so that a seed replays the same faults whatever crate versions are in the lock file.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One row of the request counters.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct RequestCount {
    pub vendor: Vendor,
    pub method: String,
    /// Route template (`/v1/projects/{ref}`), or `<unmatched>`.
    pub route: String,
    /// Status sent; 0 when the connection was dropped instead (reset, commit-then-drop).
    pub status: u16,
    pub count: u64,
}

/// A snapshot of what the simulator has seen (`GET /__sim/stats`, `SimHandle::stats`).
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
pub struct Stats {
    /// The RNG seed in use, to replay a run.
    pub seed: u64,
    pub requests: Vec<RequestCount>,
    /// Request body bytes received, per vendor.
    pub bytes_received: BTreeMap<Vendor, u64>,
    /// Requests refused by a simulated vendor rate limit (not counting injected 429 faults).
    pub rate_limited: BTreeMap<Vendor, u64>,
    /// Injected faults by kind (`500`, `reset`, `commit_then_drop`, ...).
    pub faults_injected: BTreeMap<String, u64>,
    /// The Cloudflare side's own counters (uploads, hashes checked, deployments...).
    #[serde(default)]
    pub cloudflare: serde_json::Value,
}

impl Stats {
    /// Requests to `route` with `method` (any status).
    pub fn count(&self, vendor: Vendor, method: &str, route: &str) -> u64 {
        self.requests
            .iter()
            .filter(|r| r.vendor == vendor && r.method == method && r.route == route)
            .map(|r| r.count)
            .sum()
    }
    /// Requests to `route` with `method` answered with `status` (0 = dropped).
    pub fn count_status(&self, vendor: Vendor, method: &str, route: &str, status: u16) -> u64 {
        self.requests
            .iter()
            .filter(|r| {
                r.vendor == vendor && r.method == method && r.route == route && r.status == status
            })
            .map(|r| r.count)
            .sum()
    }
    /// All requests of a vendor.
    pub fn total(&self, vendor: Vendor) -> u64 {
        self.requests
            .iter()
            .filter(|r| r.vendor == vendor)
            .map(|r| r.count)
            .sum()
    }
}

#[derive(Default)]
struct Counters {
    requests: BTreeMap<(Vendor, String, String, u16), u64>,
    bytes: BTreeMap<Vendor, u64>,
    rate_limited: BTreeMap<Vendor, u64>,
    faults: BTreeMap<String, u64>,
}

struct ActiveRule {
    rule: FaultRule,
    injected: u64,
}

/// Shared state of the instrumentation: knobs that can change at run time, and counters.
pub struct Instruments {
    seed: u64,
    /// The shared rate-limit scale, so an injected 429 announces a window as long as the
    /// simulated vendor's real one would be.
    rate_limit_scale: f64,
    /// What an injected 429 announces instead of the scaled window (`fault_retry_after_ms`).
    fault_retry_after: Option<Duration>,
    rng: Mutex<SplitMix64>,
    faults: Mutex<Vec<ActiveRule>>,
    latency: Mutex<BTreeMap<Vendor, Latency>>,
    counters: Mutex<Counters>,
}

/// Locks a mutex even if a panicking thread poisoned it: every critical section here leaves
/// the data consistent, so the poison flag carries no information.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Instruments {
    pub fn new(seed: u64, faults: Vec<FaultRule>, latency: BTreeMap<Vendor, Latency>) -> Self {
        Instruments {
            seed,
            rate_limit_scale: 1.0,
            fault_retry_after: None,
            rng: Mutex::new(SplitMix64::new(seed)),
            faults: Mutex::new(
                faults
                    .into_iter()
                    .map(|rule| ActiveRule { rule, injected: 0 })
                    .collect(),
            ),
            latency: Mutex::new(latency),
            counters: Mutex::new(Counters::default()),
        }
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Set the rate-limit scale used for injected 429s (builder style, at construction).
    pub fn with_rate_limit_scale(mut self, scale: f64) -> Self {
        if scale.is_finite() && scale > 0.0 {
            self.rate_limit_scale = scale;
        }
        self
    }

    /// Make injected 429s announce `wait` instead of the vendor's scaled window (builder
    /// style, at construction; `None` keeps the window).
    pub fn with_fault_retry_after(mut self, wait: Option<Duration>) -> Self {
        self.fault_retry_after = wait;
        self
    }

    /// Seconds an injected 429 tells the client to wait: the configured wait, else the
    /// vendor's window, scaled (whole seconds, at least 1: the headers carry seconds).
    fn fault_reset_secs(&self, vendor: Vendor) -> u64 {
        if let Some(wait) = self.fault_retry_after {
            return wait.as_secs_f64().ceil().max(1.0) as u64;
        }
        let window = match vendor {
            Vendor::Cloudflare => 300.0,
            Vendor::Supabase | Vendor::Storage => 60.0,
        };
        (window * self.rate_limit_scale).ceil().max(1.0) as u64
    }

    /// Replace the fault rules (their injection counts restart from zero).
    pub fn set_faults(&self, rules: Vec<FaultRule>) {
        *lock(&self.faults) = rules
            .into_iter()
            .map(|rule| ActiveRule { rule, injected: 0 })
            .collect();
    }

    pub fn faults(&self) -> Vec<FaultRule> {
        lock(&self.faults).iter().map(|a| a.rule.clone()).collect()
    }

    pub fn set_latency(&self, latency: BTreeMap<Vendor, Latency>) {
        *lock(&self.latency) = latency;
    }

    pub fn latency(&self) -> BTreeMap<Vendor, Latency> {
        lock(&self.latency).clone()
    }

    /// A uniform draw in [0, 1) from the seeded generator.
    pub fn roll(&self) -> f64 {
        lock(&self.rng).next_f64()
    }

    fn delay_for(&self, vendor: Vendor) -> Option<Duration> {
        let l = lock(&self.latency).get(&vendor).copied()?;
        if l.fixed_ms == 0 && l.jitter_ms == 0 {
            return None;
        }
        let jitter = if l.jitter_ms > 0 {
            (self.roll() * (l.jitter_ms + 1) as f64) as u64
        } else {
            0
        };
        Some(Duration::from_millis(l.fixed_ms + jitter))
    }

    /// The fault to inject for this request, if any. Rules are tried in order; a rule only
    /// consumes a dice roll when it matches, so unrelated traffic does not shift the sequence
    /// of a replayed scenario more than necessary.
    fn pick_fault(
        &self,
        vendor: Vendor,
        method: &Method,
        route: &str,
        path: &str,
    ) -> Option<FaultKind> {
        let mut rules = lock(&self.faults);
        for active in rules.iter_mut() {
            let r = &active.rule;
            if r.vendor.is_some_and(|v| v != vendor) {
                continue;
            }
            if r.method
                .as_deref()
                .is_some_and(|m| !m.eq_ignore_ascii_case(method.as_str()))
            {
                continue;
            }
            if !(glob_match(&r.path, route) || glob_match(&r.path, path)) {
                continue;
            }
            if r.times.is_some_and(|t| active.injected >= t) {
                continue;
            }
            let hit = r.probability >= 1.0 || lock(&self.rng).next_f64() < r.probability;
            if hit {
                active.injected += 1;
                return Some(r.kind);
            }
        }
        None
    }

    /// Count a request handled outside an instrumented router (e.g. a site served by `Host`).
    pub fn record_request(&self, vendor: Vendor, method: &Method, route: &str, status: u16) {
        self.record(vendor, method, route, status)
    }

    fn record(&self, vendor: Vendor, method: &Method, route: &str, status: u16) {
        *lock(&self.counters)
            .requests
            .entry((vendor, method.as_str().to_owned(), route.to_owned(), status))
            .or_default() += 1;
    }

    fn record_fault(&self, kind: FaultKind) {
        *lock(&self.counters)
            .faults
            .entry(String::from(kind))
            .or_default() += 1;
    }

    pub fn record_bytes(&self, vendor: Vendor, n: u64) {
        *lock(&self.counters).bytes.entry(vendor).or_default() += n;
    }

    /// Count a request refused by a vendor rate limit (called by the vendor's limiter).
    pub fn record_rate_limited(&self, vendor: Vendor) {
        *lock(&self.counters).rate_limited.entry(vendor).or_default() += 1;
    }

    pub fn stats(&self) -> Stats {
        let c = lock(&self.counters);
        Stats {
            seed: self.seed,
            requests: c
                .requests
                .iter()
                .map(|((vendor, method, route, status), count)| RequestCount {
                    vendor: *vendor,
                    method: method.clone(),
                    route: route.clone(),
                    status: *status,
                    count: *count,
                })
                .collect(),
            bytes_received: c.bytes.clone(),
            rate_limited: c.rate_limited.clone(),
            faults_injected: c.faults.clone(),
            cloudflare: serde_json::Value::Null,
        }
    }

    pub fn reset_stats(&self) {
        *lock(&self.counters) = Counters::default();
    }
}

/// `*` matches any run of characters (including `/`); everything else literally.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Classic two-pointer wildcard match with backtracking to the last star.
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] != '*' && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// Per-connection handle that lets a handler make the server drop the TCP connection with a
/// reset instead of answering. Put into every request's extensions by the accept loop.
#[derive(Clone, Default)]
pub struct ConnControl {
    kill: Arc<Notify>,
}

impl ConnControl {
    pub fn kill(&self) {
        self.kill.notify_one();
    }
    pub async fn killed(&self) {
        self.kill.notified().await
    }
}

#[derive(Clone)]
struct VendorCtx {
    inst: Arc<Instruments>,
    vendor: Vendor,
}

/// Wrap every route of `router` with counting, latency and faults for `vendor`. Use
/// `route_layer` semantics so the route template (`MatchedPath`) is known.
pub fn instrument<S>(inst: &Arc<Instruments>, vendor: Vendor, router: Router<S>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    router.route_layer(axum::middleware::from_fn_with_state(
        VendorCtx {
            inst: inst.clone(),
            vendor,
        },
        sim_layer,
    ))
}

async fn sim_layer(State(ctx): State<VendorCtx>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "<unmatched>".to_owned());
    let path = req.uri().path().to_owned();
    let conn = req.extensions().get::<ConnControl>().cloned();
    let req = count_body(req, ctx.inst.clone(), ctx.vendor);

    if let Some(d) = ctx.inst.delay_for(ctx.vendor) {
        tokio::time::sleep(d).await;
    }

    let fault = ctx.inst.pick_fault(ctx.vendor, &method, &route, &path);
    let response = match fault {
        None => next.run(req).await,
        Some(kind) => {
            ctx.inst.record_fault(kind);
            match kind {
                FaultKind::Status(code) => fault_response(ctx.vendor, code),
                FaultKind::RateLimited => {
                    rate_limited_response(ctx.vendor, ctx.inst.fault_reset_secs(ctx.vendor))
                }
                FaultKind::Reset | FaultKind::CommitThenDrop => {
                    let mutation = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
                    if kind == FaultKind::CommitThenDrop && mutation {
                        // Let the change happen, then lose the answer.
                        let _ = next.run(req).await;
                    }
                    ctx.inst.record(ctx.vendor, &method, &route, 0);
                    match conn {
                        Some(c) => {
                            c.kill();
                            // The connection task drops the socket; this future is dropped
                            // with it.
                            std::future::pending::<()>().await;
                        }
                        // Not served through our accept loop (no way to reset): the closest
                        // thing is an edge error.
                        None => return fault_response(ctx.vendor, 502),
                    }
                    return fault_response(ctx.vendor, 502);
                }
            }
        }
    };
    ctx.inst
        .record(ctx.vendor, &method, &route, response.status().as_u16());
    response
}

/// Count request body bytes as they stream through (uploads can be large; never buffer).
fn count_body(req: Request, inst: Arc<Instruments>, vendor: Vendor) -> Request {
    let (parts, body) = req.into_parts();
    let stream = body.into_data_stream().map(move |chunk| {
        if let Ok(bytes) = &chunk {
            inst.record_bytes(vendor, bytes.len() as u64);
        }
        chunk
    });
    Request::from_parts(parts, Body::from_stream(stream))
}

/// The error a vendor's edge or origin gives for an injected status.
pub fn fault_response(vendor: Vendor, code: u16) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    // 502 and 524 come from Cloudflare's edge in front of both vendors: an HTML page, not
    // the API's JSON. Clients must cope with that.
    if code == 502 || code == 524 {
        let html = format!(
            "<!DOCTYPE html><html><head><title>{code} error</title></head><body><h1>Error {code}</h1>\
             <p>{}</p><p>(intelli sim: injected fault)</p></body></html>",
            if code == 524 {
                "A timeout occurred"
            } else {
                "Bad gateway"
            }
        );
        let mut r = (status, html).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=UTF-8"),
        );
        return r;
    }
    let message = match code {
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    };
    let body = match vendor {
        Vendor::Supabase => json!({ "message": message }),
        Vendor::Storage => json!({
            "statusCode": code.to_string(),
            "code": "InternalError",
            "error": "internal",
            "message": message,
        }),
        Vendor::Cloudflare => json!({
            "success": false,
            "errors": [{ "code": 10000 + u32::from(code % 100), "message": message }],
            "messages": [],
            "result": null,
        }),
    };
    (status, axum::Json(body)).into_response()
}

/// A 429 as the vendor sends it. `reset_secs` is the time left in the window.
pub fn rate_limited_response(vendor: Vendor, reset_secs: u64) -> Response {
    let mut r = match vendor {
        Vendor::Supabase => (
            StatusCode::TOO_MANY_REQUESTS,
            axum::Json(json!({ "message": "Too many requests" })),
        )
            .into_response(),
        Vendor::Storage => (
            StatusCode::TOO_MANY_REQUESTS,
            axum::Json(json!({
                "statusCode": "429", "code": "SlowDown", "error": "Too Many Requests",
                "message": "Too many requests, please slow down",
            })),
        )
            .into_response(),
        Vendor::Cloudflare => (
            StatusCode::TOO_MANY_REQUESTS,
            axum::Json(json!({
                "success": false,
                "errors": [{ "code": 971, "message": "Please wait and consider throttling your request speed" }],
                "messages": [],
                "result": null,
            })),
        )
            .into_response(),
    };
    let h = r.headers_mut();
    match vendor {
        Vendor::Cloudflare => {
            h.insert(header::RETRY_AFTER, HeaderValue::from(reset_secs));
        }
        _ => {
            h.insert("x-ratelimit-limit", HeaderValue::from(120u32));
            h.insert("x-ratelimit-remaining", HeaderValue::from(0u32));
            h.insert("x-ratelimit-reset", HeaderValue::from(reset_secs));
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob() {
        assert!(glob_match("/v1/projects", "/v1/projects"));
        assert!(!glob_match("/v1/projects", "/v1/projects/x"));
        assert!(glob_match(
            "/v1/projects/*/database/query",
            "/v1/projects/abc/database/query"
        ));
        assert!(glob_match("*", "/anything"));
        assert!(glob_match("/v1/*", "/v1/projects/{ref}"));
        assert!(!glob_match("/v2/*", "/v1/projects"));
    }

    #[test]
    fn rng_replays() {
        let mut a = SplitMix64::new(42);
        let mut b = SplitMix64::new(42);
        for _ in 0..10 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        let x = SplitMix64::new(1).next_f64();
        assert!((0.0..1.0).contains(&x));
    }
}
