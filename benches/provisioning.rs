//! Benchmark: provisioning N new clients against one (issue 8, "waiting is not working").
//!
//! The Supabase side only, as an operator runs it: `intelli apply --yes --skip-frontend
//! --no-lock` end to end against a fresh simulator whose projects take 5 s to provision, with
//! 50 ms latency on every request and the vendor's rate limits (120 requests per minute per
//! scope and endpoint, real one-minute windows), the fleet's default `parallelism` (8).
//!
//! For each N (default 100; pass others after `--`):
//!
//! 1. **The simulator's own cost of making N databases.** Each simulated project is a real
//!    PostgreSQL database, created and bootstrapped by the simulator (a few at a time) before
//!    the project can turn healthy. Measured alone: N project creates sent at once to a
//!    simulator with no provisioning delay, no latency and no limits, timed until every project
//!    is `ACTIVE_HEALTHY`. This is work of the stand-in vendor, not of intelli.
//! 2. **One new client**: the wall time of the apply (`T1`).
//! 3. **N new clients**: the wall time of the apply (`TN`), then a plan that must be clean.
//!
//! 4. **This machine's cost of N clients' work** (`WN`): the same N-client apply against a
//!    simulator with no provisioning delay, no latency and no limits. Every request the
//!    simulator serves here is real work on this machine (its PostgreSQL runs each migration,
//!    opens a connection per query, commits to disk), shared by two cores with intelli itself;
//!    against the vendor, each project has its own machine.
//!
//! Printed: `T1`, `TN`, `TN / T1` (target ≤ 1.5 at N = 100), the simulator's cost `DN`, this
//! machine's cost `WN`, and the bound that states them: the larger of `T1 + max(0, DN − 5 s)` —
//! one client's apply, with the provisioning wait stretched to the time the simulator needs to
//! make N databases when that is longer — and `WN` — no apply of N clients here can take less
//! than the same work with every wait removed; and `TN` over that bound. Also the Supabase
//! requests by route of the N-client apply.
//!
//! Run with `cargo bench --bench provisioning` (needs PostgreSQL like the tests). Not part of
//! `cargo test`: without `--bench` it prints how to run it and exits. Every project database it
//! made is dropped.

#[path = "common/mod.rs"]
mod common;

use common::DropDatabases;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use intelli::sim::server::{Latency, SimHandle, Stats, Vendor};
use intelli::supabase::{CreateProjectRequest, SupabaseClient, SupabaseConfig};
use secrecy::SecretString;

const LATENCY: Duration = Duration::from_millis(50);
const PROVISIONING: Duration = Duration::from_secs(5);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("provisioning is a benchmark: run it with `cargo bench --bench provisioning`");
        return;
    }
    let mut sizes: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    if sizes.is_empty() {
        sizes = vec![100];
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    println!("\n=== one new client");
    let (t1, _) = rt.block_on(apply_new(1, true));
    let mut rows = Vec::new();
    for n in sizes {
        println!("\n=== the simulator making {n} project databases");
        let dn = rt.block_on(simulator_cost(n));
        println!("  {n} databases made in {:.1}s", dn.as_secs_f64());
        println!("\n=== {n} new clients, no provisioning delay, no latency, no limits");
        let (wn, _) = rt.block_on(apply_new(n, false));
        println!("\n=== {n} new clients");
        let (tn, requests) = rt.block_on(apply_new(n, true));
        rows.push((n, dn, wn, tn, requests));
    }
    println!(
        "\n== new clients, Supabase side: {} s provisioning, {} ms per request, vendor rate limits, parallelism 8",
        PROVISIONING.as_secs(),
        LATENCY.as_millis()
    );
    println!("one client: {:.1}s", t1.as_secs_f64());
    println!(
        "{:>6} {:>9} {:>8} {:>12} {:>13} {:>10} {:>9} {:>9}",
        "N", "wall", "/ one", "sim DB cost", "machine cost", "bound", "/ bound", "req/cli"
    );
    for (n, dn, wn, tn, requests) in rows {
        let bound = (t1 + dn.saturating_sub(PROVISIONING)).max(wn);
        println!(
            "{:>6} {:>8.1}s {:>8.2} {:>11.1}s {:>12.1}s {:>9.1}s {:>9.2} {:>9.2}",
            n,
            tn.as_secs_f64(),
            tn.as_secs_f64() / t1.as_secs_f64(),
            dn.as_secs_f64(),
            wn.as_secs_f64(),
            bound.as_secs_f64(),
            tn.as_secs_f64() / bound.as_secs_f64(),
            requests as f64 / n as f64
        );
    }
    println!(
        "(target: wall / one ≤ 1.5 at N = 100; bound = max(one client's wall + (sim DB cost − {} s) when the simulator needs longer than the provisioning to make the databases, machine cost: the same apply with no delay, latency or limits))",
        PROVISIONING.as_secs()
    );
}

/// `intelli apply` of `n` new clients on a fresh simulator (`measured`: see [`start_sim`]): its
/// wall time and Supabase requests; a plan afterwards must be clean.
async fn apply_new(n: usize, measured: bool) -> (Duration, u64) {
    let dir = tempfile::Builder::new()
        .prefix("intelli-bench-provisioning-")
        .tempdir()
        .expect("tempdir");
    let root = dir.path().to_path_buf();
    let state = root.join("sim-state");
    // Declared first so it is dropped last: whatever happens, the project databases go.
    let _cleanup = DropDatabases(state.clone());
    write_repository(&root, n);
    let sim = start_sim(&state, measured).await;
    let (out, wall) = run_bin(&root, &sim, &["apply", "--yes", "--no-lock"]);
    common::succeeded(&out, &format!("intelli apply of {n} new clients"));
    let stats = sim.stats();
    let requests = supabase_total(&stats);
    println!(
        "  apply: {:.1}s, {requests} Supabase requests ({:.2} per client)",
        wall.as_secs_f64(),
        requests as f64 / n as f64
    );
    print_routes(&stats);
    let (out, _) = run_bin(&root, &sim, &["plan", "--detailed-exitcode"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the plan after applying {n} new clients is not clean:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    sim.shutdown().await.expect("simulator shutdown");
    (wall, requests)
}

/// How long the simulator takes to make `n` project databases (creates sent at once, no
/// provisioning delay, no latency, no limits), until every project is healthy.
async fn simulator_cost(n: usize) -> Duration {
    let dir = tempfile::Builder::new()
        .prefix("intelli-bench-simdb-")
        .tempdir()
        .expect("tempdir");
    let state = dir.path().join("sim-state");
    let _cleanup = DropDatabases(state.clone());
    let sim = start_sim(&state, false).await;
    let mut c = SupabaseConfig::new(SecretString::from(sim.supabase_token()));
    c.api_url = url::Url::parse(&sim.supabase_api_url()).expect("simulator URL");
    c.project_url_template = sim.project_url_template().to_string();
    c.rate_limit_per_minute = 0;
    let client = SupabaseClient::new(c).expect("Supabase client");
    let t = Instant::now();
    let creates = (1..=n).map(|i| {
        let client = client.clone();
        async move {
            let req = CreateProjectRequest {
                name: format!("intelli-simdb-{i:04}"),
                organization_slug: common::ORG.into(),
                db_pass: SecretString::from(format!("{}", uuid::Uuid::new_v4().simple())),
                region: "eu-west-2".into(),
                desired_instance_size: None,
            };
            client.create_project(&req).await.expect("create project")
        }
    });
    futures::future::join_all(creates).await;
    loop {
        let projects = sim.supabase().projects();
        if projects.len() == n && projects.iter().all(|p| p.status == "ACTIVE_HEALTHY") {
            break;
        }
        assert!(
            !projects.iter().any(|p| p.status == "INIT_FAILED"),
            "the simulator could not make a database"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let made = t.elapsed();
    sim.shutdown().await.expect("simulator shutdown");
    made
}

/// A scratch repository with `n` minimal clients, in one wave as the issue measures it.
fn write_repository(root: &Path, n: usize) {
    common::write_minimal_repository(root, &common::example_fleet_yaml(), n);
}

/// A simulator keeping its state in `state`. `measured`: 5 s provisioning, 50 ms per request
/// and the vendor's limits; otherwise instant provisioning, no latency, no limits.
async fn start_sim(state: &Path, measured: bool) -> SimHandle {
    let mut config = common::sim_config(7);
    config.state_dir = Some(state.to_path_buf());
    if measured {
        config.supabase.provisioning_delay_ms = PROVISIONING.as_millis() as u64;
        let l = Latency {
            fixed_ms: LATENCY.as_millis() as u64,
            jitter_ms: 0,
        };
        config.latency = BTreeMap::from([(Vendor::Supabase, l), (Vendor::Storage, l)]);
        // The vendor's: 120 per one-minute window (the defaults, stated for the reader).
        config.supabase.rate_limit_requests = 120;
        config.supabase.rate_limit_window_ms = 60_000;
        config.rate_limit_scale = 1.0;
    } else {
        config.supabase.provisioning_delay_ms = 0;
        config.supabase.rate_limit_requests = u32::MAX;
    }
    common::start_sim(config).await
}

/// The binary against the simulator, as an operator would run it against the vendor.
fn run_bin(root: &Path, sim: &SimHandle, args: &[&str]) -> (Output, Duration) {
    let t = Instant::now();
    let out = common::intelli(root, sim, common::Cloudflare::Off)
        .args(args)
        .output()
        .expect("run intelli");
    (out, t.elapsed())
}

fn supabase_total(s: &Stats) -> u64 {
    s.requests
        .iter()
        .filter(|r| r.vendor != Vendor::Cloudflare)
        .map(|r| r.count)
        .sum()
}

fn print_routes(s: &Stats) {
    let mut by_route: BTreeMap<(String, String, u16), u64> = BTreeMap::new();
    for r in s.requests.iter().filter(|r| r.vendor != Vendor::Cloudflare) {
        *by_route
            .entry((r.route.clone(), r.method.clone(), r.status))
            .or_default() += r.count;
    }
    for ((route, method, status), count) in by_route {
        println!("    {count:>6}  {method} {route} -> {status}");
    }
}
