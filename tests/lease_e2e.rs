//! Applying a fleet end to end with the lease: without Cloudflare credentials there is no
//! lease primitive, so apply needs an explicit, loud `--no-lock`. (The lease itself, including
//! many appliers started together, is tested in tests/lease.rs.)

mod common;

use common::world::World;

/// Without Cloudflare credentials there is no lease primitive: apply refuses unless told
/// `--no-lock`, and says so loudly when it is.
#[tokio::test(flavor = "multi_thread")]
async fn apply_without_cloudflare_credentials_needs_no_lock() {
    let w = World::new().await;
    let out = w
        .command()
        .env_remove("CLOUDFLARE_API_TOKEN")
        .args(["apply", "--yes", "--only", "acme"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--no-lock"), "{err}");
    assert!(w.sim.supabase().projects().is_empty(), "nothing was done");
    let out = w
        .command()
        .env_remove("CLOUDFLARE_API_TOKEN")
        .args(["apply", "--yes", "--only", "acme", "--no-lock"])
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("WARNING: --no-lock"), "{err}");
}
