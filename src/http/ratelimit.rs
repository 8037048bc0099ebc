//! Client-side rate limiting keyed by scope, so we stay under vendor quotas before the vendor
//! has to refuse us.
//!
//! Supabase counts 120 requests per minute per user, per scope (project or organization) and
//! per endpoint: calls for different projects must not wait for each other, so the key is
//! (scope, method + path template). Cloudflare counts one budget per user for everything, so
//! its client uses [`Keying::Shared`].
//!
//! The limiter is a sliding window over send times, not a token bucket (`governor`'s GCRA):
//! vendors count "N per window", and a bucket that never exceeds N in any window must hold back
//! most of the quota as a steady rate (a burst B, then `N − B` per window). Onboarding 100
//! clients sends 100 creates to one organization endpoint at once: with a quarter of the quota
//! as burst they trickled out over 47 s, where the vendor takes all 100 in its first window.
//! The log of send times allows exactly what the vendor allows, at once, and never more in any
//! window.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// How requests are grouped into budgets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keying {
    /// One budget per (scope, endpoint): Supabase.
    PerScopeAndEndpoint,
    /// One budget for every request: Cloudflare.
    Shared,
}

/// A vendor quota: at most `requests` per `window`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub requests: u32,
    pub window: Duration,
    pub keying: Keying,
}

impl RateLimit {
    pub fn new(requests: u32, window: Duration, keying: Keying) -> RateLimit {
        RateLimit {
            requests,
            window,
            keying,
        }
    }

    /// The window the limiter counts over: the vendor's plus a twentieth. Vendors count
    /// arrivals and we count sends; the margin absorbs latency that differs between two
    /// requests a window apart, so that they never land in one of the vendor's windows.
    fn counted_window(&self) -> Duration {
        self.window + self.window / 20
    }
}

/// Keyed sliding-window limiter: a request goes when fewer than `requests` of its key went in
/// the last window, else it waits until the oldest of them leaves the window.
pub struct ScopedLimiter {
    keying: Keying,
    requests: usize,
    window: Duration,
    /// Send times within the last window, oldest first, per key.
    sent: Mutex<HashMap<String, VecDeque<Instant>>>,
}

/// Keys kept before idle ones are dropped (memory stays bounded over a long `watch`).
const MAX_KEYS: usize = 10_000;

impl ScopedLimiter {
    /// `None` when the quota is degenerate (no request or a zero window).
    pub fn new(limit: RateLimit) -> Option<ScopedLimiter> {
        if limit.requests == 0 || limit.window.is_zero() {
            return None;
        }
        Some(ScopedLimiter {
            keying: limit.keying,
            requests: limit.requests as usize,
            window: limit.counted_window(),
            sent: Mutex::new(HashMap::new()),
        })
    }

    /// The key a request is counted under.
    pub fn key(&self, scope: &str, method: &str, template: &str) -> String {
        match self.keying {
            Keying::PerScopeAndEndpoint => format!("{scope}\u{0}{method} {template}"),
            Keying::Shared => String::new(),
        }
    }

    /// Wait until the request's budget allows one more, and count it.
    pub async fn acquire(&self, key: &str) {
        while let Err(wait) = self.try_acquire(key, Instant::now()) {
            super::slot::pause(wait).await;
        }
    }

    /// Count a request sent at `now` if its budget allows; else how long until it does.
    fn try_acquire(&self, key: &str, now: Instant) -> Result<(), Duration> {
        // Never held across an await. A poisoned lock only means a panic elsewhere while
        // counting; the counts are still usable.
        let mut sent = self
            .sent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let window = self.window;
        let recent = |t: &Instant| now.saturating_duration_since(*t) < window;
        if sent.len() > MAX_KEYS {
            sent.retain(|_, times| times.back().is_some_and(recent));
        }
        let times = sent.entry(key.to_owned()).or_default();
        while times.front().is_some_and(|t| !recent(t)) {
            times.pop_front();
        }
        if times.len() < self.requests {
            times.push_back(now);
            return Ok(());
        }
        let oldest = times.front().copied().unwrap_or(now);
        Err(window.saturating_sub(now.saturating_duration_since(oldest)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(requests: u32) -> ScopedLimiter {
        ScopedLimiter::new(RateLimit::new(
            requests,
            Duration::from_secs(60),
            Keying::PerScopeAndEndpoint,
        ))
        .expect("a quota")
    }

    #[test]
    fn the_whole_quota_goes_at_once_and_never_more_in_any_window() {
        let l = limiter(120);
        let t0 = Instant::now();
        let t30 = t0 + Duration::from_secs(30);
        for i in 0..60 {
            assert_eq!(l.try_acquire("k", t0), Ok(()), "request {i}");
        }
        for i in 60..120 {
            assert_eq!(l.try_acquire("k", t30), Ok(()), "request {i}");
        }
        // The 121st waits until the first ones leave the counted window (60 s + 3 s).
        assert_eq!(l.try_acquire("k", t30), Err(Duration::from_secs(33)));
        let t63 = t0 + Duration::from_secs(63);
        for i in 0..60 {
            assert_eq!(
                l.try_acquire("k", t63),
                Ok(()),
                "request {i} after the window"
            );
        }
        // The 60 sent at 30 s are still counted until 93 s.
        assert_eq!(l.try_acquire("k", t63), Err(Duration::from_secs(30)));
    }

    #[test]
    fn keys_count_apart_and_shared_keying_counts_everything_together() {
        let l = limiter(1);
        let now = Instant::now();
        let (a, b) = (l.key("p1", "GET", "/x"), l.key("p2", "GET", "/x"));
        assert_eq!(l.try_acquire(&a, now), Ok(()));
        assert_eq!(l.try_acquire(&b, now), Ok(()));
        assert!(l.try_acquire(&a, now).is_err());

        let shared =
            ScopedLimiter::new(RateLimit::new(1, Duration::from_secs(1), Keying::Shared)).unwrap();
        let (a, b) = (
            shared.key("p1", "GET", "/x"),
            shared.key("p2", "POST", "/y"),
        );
        assert_eq!(shared.try_acquire(&a, now), Ok(()));
        assert!(shared.try_acquire(&b, now).is_err());
    }

    #[test]
    fn a_degenerate_quota_has_no_limiter() {
        assert!(
            ScopedLimiter::new(RateLimit::new(0, Duration::from_secs(1), Keying::Shared)).is_none()
        );
        assert!(ScopedLimiter::new(RateLimit::new(5, Duration::ZERO, Keying::Shared)).is_none());
    }
}
