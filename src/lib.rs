//! intelli: a GitOps reconciler for a fleet of isolated client stacks
//! (one Supabase project and one Cloudflare Pages site per client).
//!
//! See ARCHITECTURE.md for the code map and the invariants each module keeps.

pub mod apply;
pub mod checks;
pub mod cli;
pub mod cloudflare;
pub mod commands;
pub mod completions;
pub mod diag;
pub mod engine;
pub mod fleet;
pub mod frontend;
pub mod http;
pub mod import;
pub mod lease;
pub mod migrate;
pub mod observe;
pub mod pg;
pub mod plan;
pub mod reconcile;
pub mod rollout;
pub mod schema;
pub mod shard;
#[cfg(feature = "sim")]
pub mod sim;
pub mod status;
pub mod supabase;
pub mod watch;
pub mod workspace;

/// What a build without the simulator (cargo feature `sim`, on by default) says when asked for
/// `--sandbox` or `intelli sim`.
#[cfg(not(feature = "sim"))]
pub const NO_SIM: &str = "this intelli was built without the simulator (cargo feature `sim`), \
so it has no --sandbox and no `intelli sim`; build one with it: `cargo build --release` (the \
default features) or `cargo install --path . --features sim`";
