//! Benchmark: a no-op `plan` at fleet scale (issue 4, item 7).
//!
//! For each fleet size N (default 10, 100 and 1,000; pass others after `--`):
//!
//! 1. write a scratch repository with N client files (`bench-0001` …), `fleet.yaml` and
//!    `migrations/` copied from this repository;
//! 2. converge it once against a simulator with no latency and rate limits lifted (setup only:
//!    the library's `observe` → `plan` → `apply`), keeping the simulator's state on disk;
//! 3. restart the simulator on that state with 50 ms latency per request and the vendor's real
//!    rate limits (120 requests per minute per scope and endpoint, one-minute windows), and
//!    time a no-op plan twice: the library path the `plan` command runs (`observe` + `plan`,
//!    same parallelism rule), then the binary (`intelli plan --detailed-exitcode
//!    --skip-frontend`, end to end: process start, fleet load, observe, plan, render). The
//!    Supabase side only: the targets are about it, and the frontend side has its own calls;
//! 4. print wall time, requests, requests per client and the ratio to the lower bound; drop
//!    every project database.
//!
//! Run with `cargo bench --bench noop_plan` (needs PostgreSQL like the tests). Not part of
//! `cargo test`: without `--bench` (which only `cargo bench` passes) it prints how to run it and
//! exits.

#[path = "common/mod.rs"]
mod common;

use common::DropDatabases;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use intelli::apply::Waits;
use intelli::engine::Engine;
use intelli::migrate::exec::SqlExecutor;
use intelli::observe;
use intelli::plan::{self, PlanOptions};
use intelli::sim::server::{Latency, SimHandle, Stats, Vendor};
use intelli::supabase::{SupabaseClient, SupabaseConfig};
use intelli::workspace::{Connections, Workspace};
use secrecy::SecretString;

const LATENCY: Duration = Duration::from_millis(50);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("noop_plan is a benchmark: run it with `cargo bench --bench noop_plan`");
        return;
    }
    let mut sizes: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    // `shards=4`: also time `intelli plan --shard k/4` for every k (issue 12: one CI job per
    // shard of a big fleet).
    let shards: Option<u32> = args
        .iter()
        .find_map(|a| a.strip_prefix("shards=").and_then(|v| v.parse().ok()));
    if sizes.is_empty() {
        sizes = vec![10, 100, 1_000];
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut rows = Vec::new();
    for n in sizes {
        rows.push(rt.block_on(run(n, shards)));
    }
    println!(
        "\n== no-op plan, {} ms per request, vendor rate limits",
        LATENCY.as_millis()
    );
    println!(
        "{:>6} {:>10} {:>9} {:>9} {:>10} {:>10} {:>7} {:>11} {:>8}",
        "N",
        "wall",
        "requests",
        "req/cli",
        "sb req/cli",
        "bound",
        "ratio",
        "binary wall",
        "bin/bnd"
    );
    for r in &rows {
        println!(
            "{:>6} {:>9.2}s {:>9} {:>9.2} {:>10.2} {:>9.2}s {:>7.2} {:>10.2}s {:>8.2} {:>9.2}s",
            r.n,
            r.wall.as_secs_f64(),
            r.requests,
            r.requests as f64 / r.n as f64,
            r.supabase_per_client,
            r.bound.as_secs_f64(),
            r.wall.as_secs_f64() / r.bound.as_secs_f64(),
            r.binary_wall.as_secs_f64(),
            r.binary_wall.as_secs_f64() / r.bound.as_secs_f64(),
            r.unloaded.as_secs_f64(),
        );
    }
    println!(
        "targets: Supabase requests per client <= 3; wall time <= 1.5 x bound at 1,000 clients"
    );
}

struct Row {
    n: usize,
    wall: Duration,
    requests: u64,
    supabase_per_client: f64,
    bound: Duration,
    binary_wall: Duration,
    unloaded: Duration,
}

async fn run(n: usize, shards: Option<u32>) -> Row {
    println!("\n=== N = {n}");
    let dir = tempfile::Builder::new()
        .prefix("intelli-bench-")
        .tempdir()
        .expect("tempdir");
    let root = dir.path().to_path_buf();
    let state = root.join("sim-state");
    // Declared first so it is dropped last: whatever happens, the project databases go.
    let _cleanup = DropDatabases(state.clone());
    write_repository(&root, n);
    let fleet_dir = root.join("fleet");
    let ws = Workspace::load(&fleet_dir).expect("the generated fleet loads");

    // Setup: converge once, fast.
    let t = Instant::now();
    let sim = start_sim(&state, true).await;
    converge(&ws, &sim).await;
    sim.shutdown().await.expect("simulator shutdown");
    println!(
        "setup (create and converge {n} projects): {:.1}s",
        t.elapsed().as_secs_f64()
    );

    // Measurement: 50 ms per request, the vendor's limits on both sides.
    let sim = start_sim(&state, false).await;
    let client = client_for(&sim, true);
    let sql = SqlExecutor::ManagementApi(client.clone());
    let selected = ws.select(&[], &[]).expect("select all");
    // What `commands::make_plan` uses.
    let parallelism = (ws.fleet.settings.parallelism as usize).max(8);
    sim.reset_stats();
    let t = Instant::now();
    let observed = observe::supabase::observe(
        &client,
        &sql,
        &ws.fleet,
        &selected,
        &ws.migrations,
        parallelism,
        false,
    )
    .await
    .expect("observe");
    let p = plan::plan(
        &ws.desired(None),
        &selected,
        &observed,
        PlanOptions::default(),
    );
    let wall = t.elapsed();
    let stats = sim.stats();
    assert!(
        !p.has_changes() && p.totals().with_errors == 0,
        "the plan after converging is not a no-op: {}",
        plan::render::text(&p, plan::render::Style { color: false })
    );

    let bound = Bound::new(n, parallelism, &client_limits());
    let requests = total(&stats);
    let supabase = vendor_total(&stats, Vendor::Supabase);
    println!("library path (observe + plan), parallelism {parallelism}:");
    println!("  wall time            {:.3}s", wall.as_secs_f64());
    print_requests(&stats, n);
    println!(
        "  effective concurrency {:.1} requests in flight on average (requests x latency / wall)",
        requests as f64 * LATENCY.as_secs_f64() / wall.as_secs_f64()
    );
    bound.print(requests);
    println!(
        "  ratio wall / bound   {:.2}",
        wall.as_secs_f64() / bound.total.as_secs_f64()
    );

    // Diagnosis: the same plan without the added latency costs what the simulator and the
    // client do themselves (SQL on the project databases, JSON, HTTP) at this parallelism.
    sim.set_latency(BTreeMap::new());
    let t = Instant::now();
    let again = observe::supabase::observe(
        &client,
        &sql,
        &ws.fleet,
        &selected,
        &ws.migrations,
        parallelism,
        false,
    )
    .await
    .expect("observe without latency");
    let _ = plan::plan(&ws.desired(None), &selected, &again, PlanOptions::default());
    let unloaded = t.elapsed();
    sim.set_latency(measured_latency());
    println!(
        "  same plan, no latency {:.3}s (the simulator's and the client's own work)",
        unloaded.as_secs_f64()
    );

    sim.reset_stats();
    let binary_wall = time_binary_plan(&root, &sim, None);
    let bstats = sim.stats();
    println!("binary (`intelli plan --detailed-exitcode --skip-frontend`, end to end):");
    println!(
        "  wall time            {:.3}s (ratio to bound {:.2}), {} requests",
        binary_wall.as_secs_f64(),
        binary_wall.as_secs_f64() / bound.total.as_secs_f64(),
        total(&bstats)
    );
    if let Some(count) = shards {
        println!("binary, one shard at a time (`intelli plan --shard k/{count} ...`):");
        for k in 1..=count {
            sim.reset_stats();
            let wall = time_binary_plan(&root, &sim, Some((k, count)));
            println!(
                "  shard {k}/{count}         {:.3}s ({:.2} x the whole fleet's), {} requests",
                wall.as_secs_f64(),
                wall.as_secs_f64() / binary_wall.as_secs_f64(),
                total(&sim.stats())
            );
        }
    }
    sim.shutdown().await.expect("simulator shutdown");
    Row {
        n,
        wall,
        requests,
        supabase_per_client: supabase as f64 / n as f64,
        bound: bound.total,
        binary_wall,
        unloaded,
    }
}

/// Times `intelli plan --detailed-exitcode --skip-frontend` (of one shard when given) end to
/// end; it must report a no-op.
fn time_binary_plan(root: &Path, sim: &SimHandle, shard: Option<(u32, u32)>) -> Duration {
    let mut args = vec![
        "plan".to_owned(),
        "--detailed-exitcode".to_owned(),
        "--skip-frontend".to_owned(),
    ];
    if let Some((k, n)) = shard {
        args.push("--shard".to_owned());
        args.push(format!("{k}/{n}"));
    }
    let t = Instant::now();
    let out = common::intelli(root, sim, common::Cloudflare::Off)
        .args(&args)
        .output()
        .expect("run intelli plan");
    let wall = t.elapsed();
    assert_eq!(
        out.status.code(),
        Some(0),
        "intelli {} did not report a no-op:\n{}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    wall
}

/// A scratch repository with `n` minimal clients.
fn write_repository(root: &Path, n: usize) {
    // The plan is timed with --skip-frontend, but placement is checked on load: one account
    // whose Pages limit was raised holds every client's (never created) site.
    let fleet_yaml = common::example_fleet_yaml().replace(
        "  account_id: 0123456789abcdef0123456789abcdef\n",
        "  accounts:\n    - id: 0123456789abcdef0123456789abcdef\n      max_projects: 100000\n",
    );
    common::write_minimal_repository(root, &fleet_yaml, n);
}

/// A simulator keeping its state in `state`. `setup`: no latency, no rate limits, instant
/// provisioning; otherwise 50 ms per request and the vendor's limits.
async fn start_sim(state: &Path, setup: bool) -> SimHandle {
    let mut config = common::sim_config(7);
    config.state_dir = Some(state.to_path_buf());
    if setup {
        config.supabase.provisioning_delay_ms = 0;
        config.supabase.rate_limit_requests = u32::MAX;
    } else {
        config.latency = measured_latency();
        // The vendor's: 120 per one-minute window (the defaults, stated for the reader).
        config.supabase.rate_limit_requests = 120;
        config.supabase.rate_limit_window_ms = 60_000;
        config.rate_limit_scale = 1.0;
    }
    common::start_sim(config).await
}

/// 50 ms on every Supabase request (Management and Storage APIs).
fn measured_latency() -> BTreeMap<Vendor, Latency> {
    let l = Latency {
        fixed_ms: LATENCY.as_millis() as u64,
        jitter_ms: 0,
    };
    BTreeMap::from([(Vendor::Supabase, l), (Vendor::Storage, l)])
}

/// The client-side limiter of the measured run: the client's defaults.
fn client_limits() -> SupabaseConfig {
    SupabaseConfig::new(SecretString::from("sbp_unused".to_owned()))
}

fn client_for(sim: &SimHandle, vendor_limits: bool) -> SupabaseClient {
    let mut c = SupabaseConfig::new(SecretString::from(sim.supabase_token()));
    c.api_url = url::Url::parse(&sim.supabase_api_url()).expect("simulator URL");
    c.project_url_template = sim.project_url_template().to_string();
    if !vendor_limits {
        c.rate_limit_per_minute = 0;
    }
    SupabaseClient::new(c).expect("Supabase client")
}

/// Plan and apply until nothing is left to do, through the engine.
async fn converge(ws: &Workspace, sim: &SimHandle) {
    let client = client_for(sim, false);
    let conns = Connections::new(
        client.clone(),
        SqlExecutor::ManagementApi(client),
        None,
        None,
    );
    let engine = Engine::new(ws, &conns)
        .with_waits(Waits {
            domain_timeout: Duration::from_secs(60),
            ambiguous_lookup: Duration::from_secs(60),
            poll: Duration::from_millis(100),
            healthy_timeout: Duration::from_secs(600),
            ..Waits::default()
        })
        .with_parallelism(16)
        .with_progress(|_| {});
    for round in 0..3 {
        let p = engine.plan(&[], &[]).await.expect("plan during setup");
        if !p.has_changes() {
            return;
        }
        let report = engine.apply(&p.clients).await.expect("apply during setup");
        if report.failed() > 0 {
            eprintln!("setup round {round}: {} client(s) failed", report.failed());
        }
    }
    panic!("the fleet did not converge in three rounds");
}

fn total(s: &Stats) -> u64 {
    s.requests.iter().map(|r| r.count).sum()
}

fn vendor_total(s: &Stats, v: Vendor) -> u64 {
    s.requests
        .iter()
        .filter(|r| r.vendor == v)
        .map(|r| r.count)
        .sum()
}

fn print_requests(s: &Stats, n: usize) {
    let mut by_route: BTreeMap<(String, String, u16), u64> = BTreeMap::new();
    for r in &s.requests {
        *by_route
            .entry((r.method.clone(), r.route.clone(), r.status))
            .or_default() += r.count;
    }
    let t = total(s);
    println!(
        "  requests             {t} ({:.2} per client; Supabase {:.2} per client)",
        t as f64 / n as f64,
        vendor_total(s, Vendor::Supabase) as f64 / n as f64
    );
    for ((method, route, status), count) in by_route {
        println!("    {count:>6}  {method} {route} -> {status}");
    }
    let limited: u64 = s.rate_limited.values().sum();
    println!("  refused by the simulated rate limit: {limited}");
}

/// The lower bound on a no-op plan's wall time.
struct Bound {
    pages: u64,
    per_client: u64,
    concurrency: u64,
    pages_time: Duration,
    clients_time: Duration,
    rate_time: Duration,
    total: Duration,
}

impl Bound {
    /// - The organisation's project list is read page by page (100 per page), each page
    ///   after the previous one: `pages x L`.
    /// - Then per client, two requests (auth settings and the observation query) that run at
    ///   once, `parallelism` clients at a time: `ceil(2N / (2 x parallelism)) x L`.
    /// - Rate limits: every per-client request has its own (project, endpoint) budget, so only
    ///   the list endpoint, one (org, endpoint) budget, can be held back: by the client's
    ///   limiter and the vendor's window alike (120 per minute; the client counts 63 s to
    ///   stay clear of the vendor's edge). Pages beyond the first window's cost
    ///   `floor((pages - 1) / 120) x 63 s`; when above the latency bound, that is the bound.
    fn new(n: usize, parallelism: usize, limits: &SupabaseConfig) -> Bound {
        let n = n as u64;
        let pages = n.div_ceil(limits.page_size as u64).max(1);
        let per_client = 2;
        let concurrency = per_client * parallelism as u64;
        let pages_time = LATENCY * pages as u32;
        let clients_time = LATENCY * (n * per_client).div_ceil(concurrency) as u32;
        let quota = (limits.rate_limit_per_minute as u64).max(1);
        let window = limits.rate_limit_window.as_secs_f64() * 1.05;
        let windows = ((pages - 1) / quota) as f64 * window;
        let rate_time = Duration::from_secs_f64(windows);
        let total = (pages_time + clients_time).max(rate_time + LATENCY);
        Bound {
            pages,
            per_client,
            concurrency,
            pages_time,
            clients_time,
            rate_time,
            total,
        }
    }

    fn print(&self, requests: u64) {
        let l = LATENCY.as_millis();
        println!(
            "  lower bound          {:.3}s = max(latency bound, rate-limit bound + L)",
            self.total.as_secs_f64()
        );
        println!(
            "    latency bound      pages x L + ceil(N x {} / concurrency {}) x L = {} x {l} ms + {:.3}s = {:.3}s",
            self.per_client,
            self.concurrency,
            self.pages,
            self.clients_time.as_secs_f64(),
            (self.pages_time + self.clients_time).as_secs_f64()
        );
        println!(
            "    (overlapping the list with the per-client reads, which this design does not do, \
             could at best reach max(pages, 1 + ceil(2N / concurrency)) x L = {:.3}s)",
            self.pages_time
                .max(LATENCY + self.clients_time)
                .as_secs_f64()
        );
        println!(
            "    rate-limit bound   {:.3}s (list pages over the org budget; per-project endpoints get one request each)",
            self.rate_time.as_secs_f64()
        );
        println!(
            "    (requests counted: {requests}; the bound assumes {} list pages + {} per client)",
            self.pages, self.per_client
        );
    }
}
