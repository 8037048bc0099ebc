//! intelli: a GitOps reconciler for a fleet of isolated client stacks
//! (one Supabase project and one Cloudflare Pages site per client).
//!
//! See ARCHITECTURE.md for the code map and the invariants each module keeps.

pub mod apply;
pub mod cli;
pub mod cloudflare;
pub mod commands;
pub mod diag;
pub mod engine;
pub mod fleet;
pub mod frontend;
pub mod http;
pub mod lease;
pub mod migrate;
pub mod observe;
pub mod pg;
pub mod plan;
pub mod schema;
pub mod sim;
pub mod supabase;
pub mod workspace;
