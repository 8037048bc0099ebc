//! Process-wide counts of vendor requests and of the 429s among them, for `intelli reconcile
//! --listen`'s `/metrics`. Counted per attempt (a request waited out after a 429 and sent
//! again counts twice: the vendor saw it twice), whatever client or command sent it.
//!
//! Plain atomics rather than a metrics registry: three vendors and two counters, read only by
//! the metrics page.

use std::sync::atomic::{AtomicU64, Ordering};

use super::Vendor;

const VENDORS: [Vendor; 3] = [
    Vendor::Supabase,
    Vendor::SupabaseStorage,
    Vendor::Cloudflare,
];

static REQUESTS: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];
static RATE_LIMITED: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];

fn index(vendor: Vendor) -> usize {
    match vendor {
        Vendor::Supabase => 0,
        Vendor::SupabaseStorage => 1,
        Vendor::Cloudflare => 2,
    }
}

/// One attempt sent to `vendor` (answered or not).
pub(crate) fn sent(vendor: Vendor) {
    REQUESTS[index(vendor)].fetch_add(1, Ordering::Relaxed);
}

/// One answer that was a 429.
pub(crate) fn rate_limited(vendor: Vendor) {
    RATE_LIMITED[index(vendor)].fetch_add(1, Ordering::Relaxed);
}

/// Requests and 429s per vendor so far in this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VendorCount {
    pub vendor: Vendor,
    pub requests: u64,
    pub rate_limited: u64,
}

pub fn snapshot() -> Vec<VendorCount> {
    VENDORS
        .iter()
        .map(|&vendor| VendorCount {
            vendor,
            requests: REQUESTS[index(vendor)].load(Ordering::Relaxed),
            rate_limited: RATE_LIMITED[index(vendor)].load(Ordering::Relaxed),
        })
        .collect()
}
