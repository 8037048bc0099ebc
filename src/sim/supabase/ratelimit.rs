//! Bearer-token check and the Management API rate limit.
//!
//! Vendor rule (reference/supabase-api.md §3): 120 requests per minute, counted per user, per
//! scope (the project or organization in the request) and per endpoint; once exceeded, 429
//! until the window ends. `X-RateLimit-Limit`, `-Remaining` and `-Reset` (seconds left) are on
//! every response. `POST /v1/projects` counts against the organization named in its body.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use super::SupabaseSim;
use crate::sim::server::Vendor;
use crate::sim::server::middleware::{lock, rate_limited_response};

/// Bodies larger than this are not inspected for the organization scope (they are refused by
/// the handler anyway).
const MAX_SCOPE_BODY: usize = 1 << 20;

pub struct Limiter {
    limit: u32,
    window: Duration,
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

pub struct Decision {
    pub allowed: bool,
    pub remaining: u32,
    pub reset_secs: u64,
    pub limit: u32,
}

impl Limiter {
    pub fn new(limit: u32, window: Duration) -> Self {
        Limiter {
            limit,
            window,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Count one request against `key` (fixed window starting at the key's first request).
    pub fn check(&self, key: String) -> Decision {
        let now = Instant::now();
        let mut w = lock(&self.windows);
        if w.len() > 100_000 {
            // Bound memory on long runs: expired windows carry no information.
            let window = self.window;
            w.retain(|_, (start, _)| now.duration_since(*start) < window);
        }
        let entry = w.entry(key).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        let left = self.window.saturating_sub(now.duration_since(entry.0));
        // Round up: "0 seconds left" while still refused would make clients spin.
        let reset_secs = left.as_millis().div_ceil(1000) as u64;
        if entry.1 >= self.limit {
            return Decision {
                allowed: false,
                remaining: 0,
                reset_secs,
                limit: self.limit,
            };
        }
        entry.1 += 1;
        Decision {
            allowed: true,
            remaining: self.limit - entry.1,
            reset_secs,
            limit: self.limit,
        }
    }
}

/// Put the token check and the limiter in front of every Management API route.
pub fn layer(sim: Arc<SupabaseSim>, router: Router) -> Router {
    router.route_layer(axum::middleware::from_fn_with_state(sim, guard))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

async fn guard(State(sim): State<Arc<SupabaseSim>>, req: Request, next: Next) -> Response {
    let token = match bearer(req.headers()) {
        Some(t) if sim.token_ok(t) => t.to_owned(),
        _ => return super::error(StatusCode::UNAUTHORIZED, "Unauthorized"),
    };
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_default();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path.split('/').collect();
    // /v1/projects/{ref}/... and /v1/organizations/{slug}/...: the scope is segment 3.
    let (scope, req) = if route.starts_with("/v1/projects/{ref}") {
        (format!("project:{}", segments.get(3).unwrap_or(&"")), req)
    } else if route.starts_with("/v1/organizations/{slug}") {
        (format!("org:{}", segments.get(3).unwrap_or(&"")), req)
    } else if route == "/v1/projects" && method == axum::http::Method::POST {
        let (parts, body) = req.into_parts();
        let bytes = axum::body::to_bytes(body, MAX_SCOPE_BODY)
            .await
            .unwrap_or_else(|_| Bytes::new());
        let org = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get("organization_slug")?.as_str().map(str::to_owned))
            .unwrap_or_default();
        (
            format!("org:{org}"),
            Request::from_parts(parts, Body::from(bytes)),
        )
    } else {
        ("user".to_owned(), req)
    };
    // Identity: the token stands for the user (one user, one budget, in the simulator).
    let key = format!("{token}\u{0}{scope}\u{0}{method} {route}");
    let d = sim.limiter.check(key);
    let mut resp = if d.allowed {
        next.run(req).await
    } else {
        sim.inst.record_rate_limited(Vendor::Supabase);
        rate_limited_response(Vendor::Supabase, d.reset_secs)
    };
    let h = resp.headers_mut();
    h.insert("x-ratelimit-limit", HeaderValue::from(d.limit));
    h.insert("x-ratelimit-remaining", HeaderValue::from(d.remaining));
    h.insert("x-ratelimit-reset", HeaderValue::from(d.reset_secs));
    resp
}
