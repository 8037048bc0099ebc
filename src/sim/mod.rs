//! The local simulator of the Supabase and Cloudflare APIs intelli uses (DESIGN.md §8).
//!
//! A product feature, not a test mock: `intelli sim serve` and `--sandbox` run it, and the
//! tests and benchmarks exercise intelli's real HTTP clients against it.
//!
//! Entry point: [`start`] with a [`SimConfig`] gives a [`SimHandle`] (URLs, stats, faults,
//! shutdown). `server` is the vendor-neutral core (one port, admin endpoints, latency, faults,
//! counters); `supabase` and `cloudflare` are the vendors.

pub mod cloudflare;
pub mod serve;
pub mod server;
pub mod supabase;

pub use server::{
    CloudflareSettings, FaultKind, FaultRule, Latency, OrgConfig, SimConfig, SimHandle, Stats,
    SupabaseConfig, Vendor, start,
};
