//! What several benchmarks share: copying the repository's fixtures into a scratch
//! repository, running the binary against the simulator, and dropping the project databases a
//! kept simulator state made. Each bench is
//! its own crate and includes this file with `#[path = "common/mod.rs"] mod common;`.
#![allow(dead_code)] // each bench uses a part

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use intelli::sim::server::{OrgConfig, SimConfig, SimHandle};

/// The organization every bench's fleet lives in (the example fleet's).
pub const ORG: &str = "intelliservice";

/// A simulator configuration with the example fleet's organization and this `seed`; the
/// bench sets the rest.
pub fn sim_config(seed: u64) -> SimConfig {
    let mut config = SimConfig {
        seed: Some(seed),
        ..SimConfig::default()
    };
    config.supabase.organizations = vec![OrgConfig {
        slug: ORG.into(),
        name: "IntelliService".into(),
    }];
    config
}

/// Start a simulator, or say that it needs PostgreSQL.
pub async fn start_sim(config: SimConfig) -> SimHandle {
    intelli::sim::server::start(config)
        .await
        .unwrap_or_else(|e| panic!("starting the simulator (needs PostgreSQL): {e:#}"))
}

use futures::StreamExt;

/// Copies the tree `from` into `to`, leaving out entries named in `skip` at any depth
/// (`node_modules`, `dist`).
pub fn copy_dir(from: &Path, to: &Path, skip: &[&str]) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        if skip.iter().any(|s| entry.file_name() == *s) {
            continue;
        }
        let dest = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &dest, skip);
        } else {
            std::fs::copy(entry.path(), &dest).expect("copy file");
        }
    }
}

/// The example fleet's `fleet.yaml` without its `rollout:` (its canary, acme, is not in a
/// bench's generated fleet).
pub fn example_fleet_yaml() -> String {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(repo.join("fleet/fleet.yaml")).expect("fleet.yaml");
    match text.find("\nrollout:") {
        Some(i) => text[..=i].to_string(),
        None => text,
    }
}

/// A scratch repository like `tests/common/world.rs` makes: `fleet_yaml`, the repository's
/// migrations, an empty frontend directory, and `n` minimal clients `bench-0001`….
pub fn write_minimal_repository(root: &Path, fleet_yaml: &str, n: usize) {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let fleet = root.join("fleet");
    std::fs::create_dir_all(&fleet).expect("fleet dir");
    std::fs::write(fleet.join("fleet.yaml"), fleet_yaml).expect("write fleet.yaml");
    copy_dir(&repo.join("migrations"), &root.join("migrations"), &[]);
    std::fs::create_dir_all(root.join("examples/web")).expect("frontend dir");
    for i in 1..=n {
        let slug = format!("bench-{i:04}");
        std::fs::write(
            fleet.join(format!("{slug}.yaml")),
            format!("client: {slug}\n"),
        )
        .expect("client file");
    }
}

/// `out` of an `intelli` run that must have succeeded (`what` names it in the panic); its
/// stderr. With `INTELLI_BENCH_VERBOSE` set, both outputs are printed.
pub fn succeeded(out: &std::process::Output, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    if std::env::var_os("INTELLI_BENCH_VERBOSE").is_some() {
        println!("{}\n{stderr}", String::from_utf8_lossy(&out.stdout));
    }
    stderr
}

/// What of Cloudflare a bench's `intelli` run sees.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Cloudflare {
    /// Nothing: the Supabase side alone, no lease (`--no-lock` or a plan).
    Off,
    /// Its token and address, for the fleet's lease; the Supabase side only.
    Lease,
    /// Everything: the sites too, fetched through the simulator for their health check.
    Sites,
}

/// The binary against the simulator, as an operator would run it against the vendors: the
/// simulator's addresses and tokens in its environment, and none of the caller's that would
/// change what it does (a database URL template, an account id).
pub fn intelli(root: &Path, sim: &SimHandle, cloudflare: Cloudflare) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_intelli"));
    c.current_dir(root)
        .env("SUPABASE_ACCESS_TOKEN", sim.supabase_token())
        .env("SUPABASE_API_URL", sim.supabase_api_url())
        .env("SUPABASE_PROJECT_URL_TEMPLATE", sim.project_url_template())
        .env(
            "INTELLI_SKIP_FRONTEND",
            if cloudflare == Cloudflare::Sites {
                "false"
            } else {
                "true"
            },
        )
        .env_remove("CLOUDFLARE_ACCOUNT_ID")
        .env_remove("INTELLI_DATABASE_URL_TEMPLATE")
        .env("NO_COLOR", "1");
    match cloudflare {
        Cloudflare::Off => {
            c.env_remove("CLOUDFLARE_API_TOKEN");
        }
        Cloudflare::Lease | Cloudflare::Sites => {
            c.env("CLOUDFLARE_API_TOKEN", sim.cloudflare_token())
                .env("CLOUDFLARE_API_BASE_URL", sim.cloudflare_api_url())
                .env("INTELLI_SITE_PROBE_URL", sim.base_url());
        }
    }
    c
}

/// Drops every project database a kept simulator state lists, and the state itself, when it
/// goes out of scope (also when the bench panics).
pub struct DropDatabases(pub PathBuf);

impl Drop for DropDatabases {
    fn drop(&mut self) {
        if !self.0.exists() {
            return;
        }
        let dir = self.0.clone();
        let t = Instant::now();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let server = intelli::pg::server_url();
            rt.block_on(async {
                // A few at a time: after a large setup each DROP DATABASE waits for a
                // checkpoint, and concurrent drops share them (one by one, 1,000 take ~10 min).
                if let Ok(saved) = intelli::sim::supabase::model::load(&dir) {
                    futures::stream::iter(saved.projects.values().map(|p| {
                        let server = server.clone();
                        async move {
                            if let Err(e) = intelli::pg::drop_database(&server, &p.db_name).await {
                                eprintln!("dropping {}: {e:#}", p.db_name);
                            }
                        }
                    }))
                    .buffer_unordered(4)
                    .collect::<Vec<()>>()
                    .await;
                }
                // Then the state files (and anything the above missed).
                match intelli::sim::supabase::destroy_saved_state(&dir, &server).await {
                    Ok(k) => println!(
                        "dropped {k} project databases in {:.1}s",
                        t.elapsed().as_secs_f64()
                    ),
                    Err(e) => eprintln!("dropping the project databases: {e:#}"),
                }
            })
        })
        .join();
    }
}
