//! The local simulator of the Supabase and Cloudflare APIs intelli uses (DESIGN.md §8).
//!
//! A product feature, not a test mock: `intelli sim serve` and `--sandbox` run it, and the
//! tests and benchmarks exercise intelli's real HTTP clients against it.

pub mod cloudflare;
pub mod supabase;
