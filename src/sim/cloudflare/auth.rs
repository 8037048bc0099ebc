//! Bearer authentication, the Pages upload JWT and Cloudflare's global API rate limiter.
//!
//! Tokens and JWTs are never logged or stored in the state; the rate limiter keys buckets by a
//! short BLAKE3 fingerprint of the token instead of the token itself.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::CloudflareSim;
use super::envelope::{ApiError, codes};

/// The bearer value of `Authorization`, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

/// Short, non-reversible identifier for a token (rate-limit key, JWT claim).
pub fn fingerprint(token: &str) -> String {
    blake3::hash(token.as_bytes()).to_hex()[..16].to_owned()
}

/// Claims of the upload JWT. wrangler decodes (without verifying) `exp` and
/// `max_file_count_allowed`; the rest is what the simulator needs to authorise asset calls.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadClaims {
    pub sub: String,
    pub account_id: String,
    pub project_name: String,
    pub max_file_count_allowed: u64,
    pub iat: i64,
    pub exp: i64,
    /// Fingerprint of the API token that obtained this JWT: asset calls count against that
    /// token's rate-limit budget, as they do against the user's on the real API.
    pub tkf: String,
}

pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl JwtKeys {
    pub fn from_secret(secret: &[u8]) -> Self {
        JwtKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }

    pub fn issue(&self, claims: &UploadClaims) -> Result<String, ApiError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding).map_err(|_| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                codes::PAGES_UNKNOWN,
                "could not sign the upload token",
            )
        })
    }

    /// Verifies the signature; expiry is checked separately so that an expired token gets the
    /// vendor's "Expired JWT" answer rather than a generic one.
    pub fn verify(&self, jwt: &str) -> Option<UploadClaims> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.validate_exp = false;
        validation.leeway = 0;
        jsonwebtoken::decode::<UploadClaims>(jwt, &self.decoding, &validation)
            .ok()
            .map(|data| data.claims)
    }
}

impl CloudflareSim {
    /// Checks the API token; `write` calls need a token that is not read-only.
    pub(crate) fn authenticate(&self, headers: &HeaderMap, write: bool) -> Result<(), ApiError> {
        let token = bearer(headers).ok_or_else(ApiError::unauthenticated)?;
        let found = self
            .config
            .tokens
            .iter()
            .find(|t| constant_time_eq(t.value.as_bytes(), token.as_bytes()))
            .ok_or_else(ApiError::unauthenticated)?;
        if write && found.read_only {
            return Err(ApiError::forbidden());
        }
        Ok(())
    }

    /// Checks the account id in the path is one the simulator serves (the tokens are valid for
    /// all of them). A token can't see another user's account: the API answers 403.
    pub(crate) fn check_account(&self, account_id: &str) -> Result<(), ApiError> {
        if self.config.account_ids.iter().any(|a| a == account_id) {
            Ok(())
        } else {
            Err(ApiError::forbidden())
        }
    }

    /// `authenticate`, then `check_account`: what every account-scoped route checks first.
    pub(crate) fn authorize_account(
        &self,
        headers: &HeaderMap,
        account_id: &str,
        write: bool,
    ) -> Result<(), ApiError> {
        self.authenticate(headers, write)?;
        self.check_account(account_id)
    }

    /// Authorises an asset call with the upload JWT.
    pub(crate) fn authenticate_jwt(&self, headers: &HeaderMap) -> Result<UploadClaims, ApiError> {
        let jwt = bearer(headers).ok_or_else(ApiError::unauthenticated)?;
        let claims = self.jwt.verify(jwt).ok_or_else(|| {
            ApiError::new(StatusCode::UNAUTHORIZED, codes::PAGES_JWT, "Invalid token")
        })?;
        // Same comparison as wrangler's `isJwtExpired` (`exp <= now`). Users report the real
        // API answering 403 "Expired JWT"; wrangler refreshes on code 8000013.
        if claims.exp <= Utc::now().timestamp() {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                codes::PAGES_JWT,
                "Expired JWT",
            ));
        }
        Ok(claims)
    }

    /// The rate-limit key of a request: the token's fingerprint, or the fingerprint of the
    /// token that obtained an upload JWT. `None` for unknown credentials (they fail auth anyway).
    fn rate_limit_key(&self, headers: &HeaderMap) -> Option<String> {
        let token = bearer(headers)?;
        if self
            .config
            .tokens
            .iter()
            .any(|t| constant_time_eq(t.value.as_bytes(), token.as_bytes()))
        {
            return Some(fingerprint(token));
        }
        self.jwt.verify(token).map(|c| c.tkf)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `GET /user/tokens/verify`: whether the bearer token is valid (what `intelli plan` can use to
/// check credentials without touching anything).
pub async fn verify_token(
    State(sim): State<std::sync::Arc<CloudflareSim>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    sim.authenticate(&headers, false)?;
    let token = bearer(&headers).unwrap_or_default();
    // A stable id per token that reveals nothing about it.
    let id = blake3::hash(format!("token-id:{token}").as_bytes()).to_hex()[..32].to_owned();
    Ok(super::envelope::ok(serde_json::json!({
        "id": id,
        "status": "active",
    })))
}

/// Fixed-window limiter per token: `limit` requests per `window`; the request that breaches it
/// blocks the token for `block` (Cloudflare: 1200 / 5 min, blocked for the next 5 min).
pub struct RateLimiter {
    limit: u32,
    window: Duration,
    block: Duration,
    buckets: Mutex<HashMap<String, Bucket>>,
}

struct Bucket {
    window_start: Instant,
    count: u32,
    blocked_until: Option<Instant>,
}

pub enum Verdict {
    Allowed { remaining: u32 },
    Blocked { retry_after: Duration },
}

impl RateLimiter {
    pub fn new(limit: u32, window: Duration, block: Duration) -> Self {
        RateLimiter {
            limit,
            window,
            block,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    pub fn check(&self, key: &str, now: Instant) -> Verdict {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            window_start: now,
            count: 0,
            blocked_until: None,
        });
        if let Some(until) = bucket.blocked_until {
            if now < until {
                return Verdict::Blocked {
                    retry_after: until - now,
                };
            }
            bucket.blocked_until = None;
            bucket.window_start = now;
            bucket.count = 0;
        }
        if now.duration_since(bucket.window_start) >= self.window {
            bucket.window_start = now;
            bucket.count = 0;
        }
        if bucket.count >= self.limit {
            bucket.blocked_until = Some(now + self.block);
            return Verdict::Blocked {
                retry_after: self.block,
            };
        }
        bucket.count += 1;
        Verdict::Allowed {
            remaining: self.limit - bucket.count,
        }
    }
}

/// axum middleware applying the limiter to every authenticated v4 call.
pub async fn rate_limit(
    State(sim): State<std::sync::Arc<CloudflareSim>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(key) = sim.rate_limit_key(request.headers()) else {
        return next.run(request).await;
    };
    let limit = sim.limiter.limit();
    match sim.limiter.check(&key, Instant::now()) {
        Verdict::Allowed { remaining } => {
            let mut response = next.run(request).await;
            let headers = response.headers_mut();
            headers.insert("x-ratelimit-limit", HeaderValue::from(limit));
            headers.insert("x-ratelimit-remaining", HeaderValue::from(remaining));
            response
        }
        Verdict::Blocked { retry_after } => {
            sim.stats.bump(|s| s.rate_limited += 1);
            // Retry-After is whole seconds, rounded up (never 0: that would invite a hot loop).
            let seconds = retry_after.as_secs_f64().ceil().max(1.0) as u64;
            let mut error = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                codes::RATE_LIMITED,
                "Please wait and consider throttling your request speed",
            );
            error.retry_after = Some(seconds);
            let mut response = error.into_response();
            let reset = super::later(Utc::now(), retry_after);
            let headers = response.headers_mut();
            headers.insert("x-ratelimit-limit", HeaderValue::from(limit));
            headers.insert("x-ratelimit-remaining", HeaderValue::from(0u32));
            if let Ok(v) =
                HeaderValue::from_str(&reset.format("%a, %d %b %Y %H:%M:%S GMT").to_string())
            {
                headers.insert("x-ratelimit-reset", v);
            }
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_blocks_on_breach_then_recovers() {
        let limiter = RateLimiter::new(3, Duration::from_secs(10), Duration::from_secs(20));
        let t0 = Instant::now();
        for expected in [2, 1, 0] {
            assert!(
                matches!(limiter.check("a", t0), Verdict::Allowed { remaining } if remaining == expected)
            );
        }
        // The 4th request in the window breaches: blocked for the block duration…
        assert!(
            matches!(limiter.check("a", t0), Verdict::Blocked { retry_after } if retry_after == Duration::from_secs(20))
        );
        // …even after the window would have rolled over, and for every call of that key;
        let t1 = t0 + Duration::from_secs(15);
        assert!(
            matches!(limiter.check("a", t1), Verdict::Blocked { retry_after } if retry_after == Duration::from_secs(5))
        );
        // other keys have their own budget.
        assert!(matches!(limiter.check("b", t1), Verdict::Allowed { .. }));
        // After the block: a fresh window.
        let t2 = t0 + Duration::from_secs(20);
        assert!(matches!(
            limiter.check("a", t2),
            Verdict::Allowed { remaining: 2 }
        ));
    }

    #[test]
    fn window_rolls_over_without_breach() {
        let limiter = RateLimiter::new(2, Duration::from_secs(10), Duration::from_secs(10));
        let t0 = Instant::now();
        limiter.check("a", t0);
        limiter.check("a", t0);
        let t1 = t0 + Duration::from_secs(10);
        assert!(matches!(
            limiter.check("a", t1),
            Verdict::Allowed { remaining: 1 }
        ));
    }

    #[test]
    fn bearer_parsing() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer  xyz "),
        );
        assert_eq!(bearer(&h), Some("xyz"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer(&h), None);
    }
}
