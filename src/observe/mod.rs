//! Actual state: what exists, read from the vendor APIs. Read-only by construction: nothing
//! here calls a mutating endpoint.

pub mod cloudflare;
pub mod model;
pub mod supabase;

pub use model::*;
