//! Client-side rate limiting keyed by scope, so we stay under vendor quotas before the vendor
//! has to refuse us.
//!
//! Supabase counts 120 requests per minute per user, per scope (project or organization) and
//! per endpoint: calls for different projects must not wait for each other, so the key is
//! (scope, method + path template). Cloudflare counts one budget per user for everything, so
//! its client uses [`Keying::Shared`].

use std::num::NonZeroU32;
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// How requests are grouped into budgets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keying {
    /// One budget per (scope, endpoint): Supabase.
    PerScopeAndEndpoint,
    /// One budget for every request: Cloudflare.
    Shared,
}

/// A vendor quota: `requests` per `window`, of which up to `burst` may go at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub requests: u32,
    pub window: Duration,
    pub burst: u32,
    pub keying: Keying,
}

impl RateLimit {
    /// `requests` per `window`, a quarter of it as burst.
    pub fn new(requests: u32, window: Duration, keying: Keying) -> RateLimit {
        RateLimit {
            requests,
            window,
            burst: (requests / 4).max(1),
            keying,
        }
    }

    pub fn with_burst(mut self, burst: u32) -> RateLimit {
        self.burst = burst;
        self
    }

    /// The GCRA quota that never exceeds `requests` in any `window`.
    ///
    /// A token bucket of size `burst` refilled at rate r admits `burst + r·window` requests
    /// in a window. Vendors count fixed windows, so refilling at `requests / window` would let
    /// almost twice the quota through in the first window and earn 429s. Refilling at
    /// `(requests − burst) / window` keeps every window at or under `requests`.
    fn quota(&self) -> Option<Quota> {
        let requests = self.requests.max(1);
        let burst = self.burst.clamp(1, requests);
        let sustained = (requests - burst).max(1);
        let period = self.window.checked_div(sustained)?;
        let burst = NonZeroU32::new(burst)?;
        Some(Quota::with_period(period.max(Duration::from_nanos(1)))?.allow_burst(burst))
    }
}

/// Keyed limiter; see the module comment for the keys.
pub struct ScopedLimiter {
    keying: Keying,
    limiter: DefaultKeyedRateLimiter<String>,
}

/// Keys kept before idle ones are dropped (memory stays bounded over a long `watch`).
const MAX_KEYS: usize = 10_000;

impl ScopedLimiter {
    /// `None` when the quota is degenerate (zero window).
    pub fn new(limit: RateLimit) -> Option<ScopedLimiter> {
        Some(ScopedLimiter {
            keying: limit.keying,
            limiter: RateLimiter::keyed(limit.quota()?),
        })
    }

    /// The key a request is counted under.
    pub fn key(&self, scope: &str, method: &str, template: &str) -> String {
        match self.keying {
            Keying::PerScopeAndEndpoint => format!("{scope}\u{0}{method} {template}"),
            Keying::Shared => String::new(),
        }
    }

    /// Wait until the request's budget allows one more.
    pub async fn acquire(&self, key: &str) {
        if self.limiter.len() > MAX_KEYS {
            self.limiter.retain_recent();
        }
        self.limiter.until_key_ready(&key.to_owned()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_never_exceeds_the_window() {
        let q = RateLimit::new(120, Duration::from_secs(60), Keying::Shared)
            .quota()
            .unwrap();
        // burst 30, refilled at 90 per minute: 30 + 90 = 120 in any minute.
        assert_eq!(q.burst_size().get(), 30);
        assert_eq!(q.replenish_interval(), Duration::from_secs(60) / 90);
    }
}
