//! The simulator as the integration tests start it: the whole simulator ([`start`]), or a
//! vendor's routers on a local server ([`serve`], [`cloudflare`]) where a test needs what
//! `SimConfig` does not offer (a short upload-JWT lifetime, a recorder of request bodies, an
//! answer the simulator would never give).

use std::sync::Arc;

use intelli::sim::cloudflare::{CloudflareConfig, CloudflareSim};
use intelli::sim::server::{SimConfig, SimHandle};
use serde_json::Value;

/// A simulator config whose faults and jitter replay (`seed`).
pub fn seeded(seed: u64) -> SimConfig {
    SimConfig {
        seed: Some(seed),
        ..SimConfig::default()
    }
}

/// The whole simulator on a free port; fails the test with what to do when PostgreSQL (which
/// holds one database per simulated project) is missing.
pub async fn start(config: SimConfig) -> SimHandle {
    intelli::sim::server::start(config)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "could not start the simulator: {e:#}\n(it needs PostgreSQL: install and start it \
             (Debian: apt-get install postgresql), or set DATABASE_URL; scripts/test does this)"
            )
        })
}

/// A router served on 127.0.0.1 (a free port) until dropped.
pub struct Served {
    /// `http://127.0.0.1:<port>`
    pub base: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn serve(app: axum::Router) -> Served {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Served {
        base: format!("http://{addr}"),
        task,
    }
}

/// The simulated Cloudflare alone, and its v4 API router mounted at `/client/v4` as the
/// simulator's core mounts it (without the core's instruments and fault injection).
pub fn cloudflare(config: CloudflareConfig) -> (Arc<CloudflareSim>, axum::Router) {
    let sim = Arc::new(CloudflareSim::new(config).expect("the Cloudflare simulator starts"));
    let api = axum::Router::new().nest("/client/v4", intelli::sim::cloudflare::router(sim.clone()));
    (sim, api)
}

/// The claims of a JWT (not verified: the tests check what the simulator put in).
pub fn jwt_claims(jwt: &str) -> Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).expect("a JWT has 3 parts");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("JWT payload is base64url");
    serde_json::from_slice(&bytes).expect("JWT payload is JSON")
}
