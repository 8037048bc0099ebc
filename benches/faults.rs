//! Benchmark: faults are normal (issue 13).
//!
//! Two measurements, printed as figures and ratios:
//!
//! 1. **One apply under the fault matrix** (`-- faults`). A scratch repository with N clients
//!    (default 100) and both sides (Supabase project, migrations, seed, buckets, auth; a Pages
//!    site built by a fake shell build, its domain and DNS record), a migration and a seed line
//!    that count their own runs. The simulator keeps the vendors' real rate-limit windows
//!    (Supabase 120 requests per minute per scope and endpoint, Cloudflare 1,200 per 5 minutes
//!    per user; `rate_limit_scale` 1.0). First a fault-free `intelli apply --yes` of the same
//!    fleet on a fresh simulator, for the request count without faults; then a fresh simulator
//!    with faults on every vendor route (Management API, Storage API, Cloudflare v4): 2% of
//!    answers lost after the change committed, 5% 429, 10% 503, and ONE `intelli apply --yes`.
//!    Injected 429s ask for a short wait (`fault_retry_after_ms`, 2 s; `retry=<ms>` changes
//!    it): a 5% chance of Cloudflare's real 5-minute user-wide block per request would make
//!    the run last hours, and parking on long waits has its own tests. Printed: clients
//!    converged after that one apply, clients left as "create outcome unknown" (the only
//!    failure allowed), other failures, duplicate projects (projects per client), migrations
//!    and seeds that ran twice (by their own counters), and the extra requests per injected
//!    fault (requests with faults minus requests without, over faults injected; target <= 3).
//!    Then a second apply, to show the unknown creates converge, and a clean plan.
//! 2. **Two applies started together** (`-- race`): a 20-client fleet (Supabase side; the lease
//!    is on Cloudflare), 20 repetitions on a fresh simulator each. Odd repetitions: both with
//!    the default `--lock-timeout 0` (one acts, the other refuses naming the holder); even ones:
//!    both with `--lock-timeout 300s` (the other waits, then finds nothing to do). Printed: how
//!    many acted, refused, waited, and the duplicate projects (must be 0).
//!
//! Run with `cargo bench --bench faults` (needs PostgreSQL like the tests). Choose a part with
//! `-- faults` or `-- race`, the fleet size with a number (`-- faults 20`), the seed with
//! `seed=<n>` (or `INTELLI_BENCH_SEED`). The seed decides every dice roll of the fault rules;
//! a concurrent apply sends requests in a varying order, so a replay draws the same sequence
//! but not always for the same requests. Not part of `cargo test`: without `--bench` it prints
//! how to run it and exits. Every project database it made is dropped with its simulator.

#[path = "common/mod.rs"]
mod common;

use common::copy_dir;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use intelli::sim::server::{FaultKind, FaultRule, SimHandle, Stats, Vendor};

const ACCOUNT: &str = "0123456789abcdef0123456789abcdef";
const ZONE: &str = "intelliservice.io";
/// The fault matrix: share of requests per kind, on every vendor route.
const LOST: f64 = 0.02;
const LIMITED: f64 = 0.05;
const FAILED_5XX: f64 = 0.10;
/// The wait an injected 429 announces, unless `retry=<ms>` says otherwise.
const FAULT_RETRY_AFTER_MS: u64 = 2_000;
/// The race: fleet size and repetitions.
const RACE_CLIENTS: usize = 20;
const RACE_REPS: usize = 20;
/// The migration and seed line that count their runs.
const COUNTING_MIGRATION: &str = "20990101000000_bench_runs";

/// A build that needs no npm: deterministic, with the client's values.
const FAKE_BUILD: &str = "mkdir -p {out_dir}/assets && cp src/styles.css {out_dir}/assets/app.css && { cat src/*.jsx src/*.js; printf 'window.__SUPABASE_URL__=%s;\\n' \"$VITE_SUPABASE_URL\"; } > {out_dir}/assets/app.js && printf '<!doctype html><title>%s</title><link rel=stylesheet href=/assets/app.css><script src=/assets/app.js></script>\\n' \"$VITE_CLIENT_NAME\" > {out_dir}/index.html";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("faults is a benchmark: run it with `cargo bench --bench faults`");
        return;
    }
    let want_faults = args.iter().any(|a| a == "faults");
    let want_race = args.iter().any(|a| a == "race");
    let (want_faults, want_race) = if want_faults || want_race {
        (want_faults, want_race)
    } else {
        (true, true)
    };
    let n = args
        .iter()
        .find_map(|a| a.parse::<usize>().ok())
        .unwrap_or(100);
    let seed = args
        .iter()
        .find_map(|a| a.strip_prefix("seed=")?.parse::<u64>().ok())
        .or_else(|| std::env::var("INTELLI_BENCH_SEED").ok()?.parse().ok())
        .unwrap_or_else(clock_seed);
    let retry_ms = args
        .iter()
        .find_map(|a| a.strip_prefix("retry=")?.parse::<u64>().ok())
        .unwrap_or(FAULT_RETRY_AFTER_MS);
    println!("seed {seed} (replay with `cargo bench --bench faults -- seed={seed}`)");
    // The binary runs in child processes waited for on runtime threads: enough of them that
    // the simulator keeps its own.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(8)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let faults = want_faults.then(|| rt.block_on(fault_run(n, seed, retry_ms)));
    let race = want_race.then(|| rt.block_on(race_run(seed)));
    println!("\n== summary (seed {seed})");
    if let Some(f) = &faults {
        f.print(retry_ms);
    }
    if let Some(r) = &race {
        r.print();
    }
}

fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
}

// ------------------------------------------------------------------------------------------
// Part 1: one apply under the fault matrix.

struct FaultRow {
    n: usize,
    /// Writes (every method but GET): their count does not depend on how long polls ran.
    /// The faulty figures cover the apply with faults and the next apply (without) that
    /// converges what the first left.
    baseline_writes: u64,
    faulty_writes: u64,
    /// Writes answered with a fault (lost, 429, 503) in the faulty run, less the baseline's
    /// (the simulated quotas' own 429s).
    write_faults: u64,
    baseline_requests: u64,
    baseline_wall: Duration,
    faulty_requests: u64,
    faulty_wall: Duration,
    injected: BTreeMap<String, u64>,
    outcome: Outcome,
    check: Check,
    second: Option<Outcome>,
    clean_plan: bool,
}

impl FaultRow {
    fn print(&self, retry_ms: u64) {
        let injected: u64 = self.injected.values().sum();
        let extra = self.faulty_requests as f64 - self.baseline_requests as f64;
        println!(
            "one apply of {} clients (both sides) under {:.0}% lost answers, {:.0}% 429 (asking {} ms), {:.0}% 503 on every vendor route, real rate-limit windows:",
            self.n,
            LOST * 100.0,
            LIMITED * 100.0,
            retry_ms,
            FAILED_5XX * 100.0
        );
        println!(
            "  converged after ONE apply      {} / {}",
            self.outcome.ok, self.n
        );
        println!(
            "  create outcome unknown         {}",
            self.outcome.unknown_create
        );
        println!(
            "  other failures / deferred      {} / {}",
            self.outcome.failed, self.outcome.deferred
        );
        println!(
            "  duplicate projects             {} (projects per client: max {})",
            self.check.duplicate_projects, self.check.max_projects
        );
        println!(
            "  migrations applied twice       {}",
            self.check.migrations_twice
        );
        println!(
            "  seeds run twice                {}",
            self.check.seeds_twice
        );
        println!(
            "  faults injected                {injected} ({})",
            self.injected
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        println!(
            "  requests                       {} with faults (+ the next apply; first apply {:.1}s), {} without ({:.1}s)",
            self.faulty_requests,
            self.faulty_wall.as_secs_f64(),
            self.baseline_requests,
            self.baseline_wall.as_secs_f64()
        );
        println!(
            "  extra requests per fault       {:.2} (target <= 3; all requests, polls included)",
            extra / injected.max(1) as f64
        );
        println!(
            "  extra writes per write fault   {:.2} ({} writes with faults, {} without, {} write faults)",
            (self.faulty_writes as f64 - self.baseline_writes as f64)
                / self.write_faults.max(1) as f64,
            self.faulty_writes,
            self.baseline_writes,
            self.write_faults
        );
        if let Some(second) = &self.second {
            println!(
                "  second apply (no faults)       {} ok, {} failed",
                second.ok,
                second.failed + second.unknown_create + second.deferred
            );
        }
        println!("  clean plan afterwards          {}", self.clean_plan);
    }
}

async fn fault_run(n: usize, seed: u64, retry_ms: u64) -> FaultRow {
    println!("\n=== faults: {n} clients");
    let dir = tempfile::Builder::new()
        .prefix("intelli-bench-faults-")
        .tempdir()
        .expect("tempdir");
    let root = dir.path().to_path_buf();
    write_repository(&root, n, true);
    let slugs = slugs(n);

    // Without faults: the requests the fleet costs.
    let sim = start_sim(seed, retry_ms, 1.0).await;
    let (out, baseline_wall) = run_bin(&root, &sim, &["apply", "--yes"], true);
    let baseline = outcome(&out, &slugs);
    assert_eq!(
        baseline.ok,
        n,
        "the fault-free apply did not converge every client:\n{}",
        text(&out)
    );
    let baseline_stats = sim.stats();
    let baseline_requests = total(&baseline_stats);
    println!(
        "without faults: {baseline_requests} requests, {:.1}s",
        baseline_wall.as_secs_f64()
    );
    sim.shutdown().await.expect("simulator shutdown");

    // With faults, on a fresh simulator: ONE apply.
    let sim = start_sim(seed, retry_ms, 1.0).await;
    sim.set_faults(fault_matrix());
    let (out, faulty_wall) = run_bin(&root, &sim, &["apply", "--yes"], true);
    sim.set_faults(Vec::new());
    let stats = sim.stats();
    let result = outcome(&out, &slugs);
    if verbose() || result.failed > 0 {
        println!("{}", text(&out));
    }
    let check = check_fleet(&sim, &slugs).await;
    println!(
        "with faults: {} requests, {:.1}s; {} ok, {} create outcome unknown, {} failed",
        total(&stats),
        faulty_wall.as_secs_f64(),
        result.ok,
        result.unknown_create,
        result.failed
    );
    // The clients left (a create outcome unknown) converge in the next apply: what that costs
    // is part of what the faults cost, so the counts below include it.
    let second = (result.ok < n).then(|| {
        let (out, _) = run_bin(&root, &sim, &["apply", "--yes"], true);
        outcome(&out, &slugs)
    });
    let both = sim.stats();
    let (plan, _) = run_bin(&root, &sim, &["plan", "--detailed-exitcode"], true);
    let row = FaultRow {
        n,
        baseline_writes: writes(&baseline_stats),
        faulty_writes: writes(&both),
        write_faults: write_faults(&stats).saturating_sub(write_faults(&baseline_stats)),
        baseline_requests,
        baseline_wall,
        faulty_requests: total(&both),
        faulty_wall,
        injected: stats.faults_injected.clone(),
        outcome: result,
        check: check_fleet(&sim, &slugs).await.max(check),
        second,
        clean_plan: plan.status.code() == Some(0),
    };
    sim.shutdown().await.expect("simulator shutdown");
    row
}

/// 2% lost answers (the change commits, the answer is lost), 5% 429, 10% 503 on every route
/// of every vendor. The first matching rule whose roll hits decides, so each later rule's
/// chance is raised to keep its share of all requests.
fn fault_matrix() -> Vec<FaultRule> {
    let mut rules = Vec::new();
    for (vendor, path) in [
        (Vendor::Supabase, "/v1/*"),
        (Vendor::Storage, "*/storage/v1/*"),
        (Vendor::Cloudflare, "/client/v4/*"),
    ] {
        let mut left = 1.0;
        for (kind, share) in [
            (FaultKind::CommitThenDrop, LOST),
            (FaultKind::RateLimited, LIMITED),
            (FaultKind::Status(503), FAILED_5XX),
        ] {
            rules.push(FaultRule {
                vendor: Some(vendor),
                method: None,
                path: path.into(),
                probability: share / left,
                kind,
                times: None,
            });
            left -= share;
        }
    }
    rules
}

/// What one apply's summary table says, by client.
#[derive(Default, Debug)]
struct Outcome {
    ok: usize,
    unknown_create: usize,
    failed: usize,
    deferred: usize,
}

fn outcome(out: &Output, slugs: &[String]) -> Outcome {
    let mut o = Outcome::default();
    let text = text(out);
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let (Some(client), Some(result)) = (words.next(), words.next()) else {
            continue;
        };
        if !slugs.iter().any(|s| s == client) {
            continue;
        }
        match result {
            "ok" => o.ok += 1,
            "DEFERRED" => o.deferred += 1,
            "FAILED" if line.contains("create outcome unknown") => o.unknown_create += 1,
            "FAILED" => o.failed += 1,
            _ => {}
        }
    }
    o
}

/// The invariants, counted: projects per client, and the runs the counting migration and
/// seed line recorded in each client's database.
#[derive(Default, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Check {
    duplicate_projects: usize,
    max_projects: usize,
    migrations_twice: usize,
    seeds_twice: usize,
}

async fn check_fleet(sim: &SimHandle, slugs: &[String]) -> Check {
    let mut c = Check::default();
    let projects = sim.supabase().projects();
    for slug in slugs {
        let name = format!("intelli-{slug}");
        let mine: Vec<_> = projects.iter().filter(|p| p.name == name).collect();
        c.max_projects = c.max_projects.max(mine.len());
        c.duplicate_projects += mine.len().saturating_sub(1);
        for p in mine {
            let Some(url) = sim.supabase().database_url(&p.project_ref) else {
                continue;
            };
            let db = intelli::pg::connect(&url).await.expect("project database");
            let runs = db
                .query(
                    "select what, count(*) from public.bench_runs group by what",
                    &[],
                )
                .await
                .map(|rows| {
                    rows.iter()
                        .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1)))
                        .collect::<BTreeMap<_, _>>()
                })
                .unwrap_or_default();
            c.migrations_twice += usize::from(runs.get("migration").is_some_and(|k| *k > 1));
            c.seeds_twice += usize::from(runs.get("seed").is_some_and(|k| *k > 1));
        }
    }
    c
}

// ------------------------------------------------------------------------------------------
// Part 2: two applies started together.

#[derive(Default)]
struct RaceRow {
    reps: usize,
    both_acted: usize,
    refused: usize,
    waited: usize,
    neither: usize,
    duplicates: usize,
    walls: Vec<Duration>,
}

impl RaceRow {
    fn print(&self) {
        println!(
            "two applies started together on a {RACE_CLIENTS}-client fleet, {} repetitions:",
            self.reps
        );
        println!(
            "  one acted, the other refused   {} (--lock-timeout 0)",
            self.refused
        );
        println!(
            "  one acted, the other waited    {} (--lock-timeout 300s, then nothing to do)",
            self.waited
        );
        println!("  both acted on the fleet        {}", self.both_acted);
        println!("  neither finished               {}", self.neither);
        println!(
            "  duplicate projects             {} (target 0)",
            self.duplicates
        );
        let mean = self.walls.iter().map(Duration::as_secs_f64).sum::<f64>()
            / self.walls.len().max(1) as f64;
        println!("  mean wall per repetition       {mean:.1}s");
    }
}

async fn race_run(seed: u64) -> RaceRow {
    println!("\n=== race: {RACE_CLIENTS} clients, {RACE_REPS} repetitions");
    let dir = tempfile::Builder::new()
        .prefix("intelli-bench-race-")
        .tempdir()
        .expect("tempdir");
    let root = dir.path().to_path_buf();
    write_repository(&root, RACE_CLIENTS, false);
    let slugs = slugs(RACE_CLIENTS);
    let mut row = RaceRow::default();
    for rep in 0..RACE_REPS {
        let waiting = rep % 2 == 1;
        let sim = start_sim(seed.wrapping_add(rep as u64), FAULT_RETRY_AFTER_MS, 0.05).await;
        let args: &[&str] = if waiting {
            &["apply", "--yes", "--lock-timeout", "300s"]
        } else {
            &["apply", "--yes"]
        };
        let t = Instant::now();
        let a = spawn_bin(&root, &sim, args, false);
        let b = spawn_bin(&root, &sim, args, false);
        let (a, b) = (a.wait_with_output(), b.wait_with_output());
        row.walls.push(t.elapsed());
        let (a, b) = (a.expect("wait for apply"), b.expect("wait for apply"));
        let outs = [&a, &b];
        let refused = outs
            .iter()
            .filter(|o| !o.status.success() && text(o).contains("another apply holds"))
            .count();
        let acted = outs
            .iter()
            .filter(|o| o.status.success() && outcome(o, &slugs).ok > 0)
            .count();
        let waited = outs
            .iter()
            .filter(|o| o.status.success() && text(o).contains("waiting for the fleet's lease"))
            .count();
        match (acted, refused, waited) {
            (1, 1, _) => row.refused += 1,
            (1, 0, 1) => row.waited += 1,
            (2, _, _) => row.both_acted += 1,
            _ => {
                row.neither += 1;
                println!("rep {rep}: unexpected:\n{}\n---\n{}", text(&a), text(&b));
            }
        }
        let check = check_fleet(&sim, &slugs).await;
        row.duplicates += check.duplicate_projects;
        println!(
            "rep {rep}: acted {acted}, refused {refused}, waited {waited}, duplicates {}, {:.1}s",
            check.duplicate_projects,
            t.elapsed().as_secs_f64()
        );
        row.reps += 1;
        sim.shutdown().await.expect("simulator shutdown");
    }
    row
}

// ------------------------------------------------------------------------------------------
// Shared.

fn slugs(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("bench-{i:04}")).collect()
}

fn verbose() -> bool {
    std::env::var_os("INTELLI_BENCH_VERBOSE").is_some()
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A scratch repository with `n` minimal clients, the example frontend's sources with a fake
/// build (`site`), and a migration and seed line that count their runs.
fn write_repository(root: &Path, n: usize, site: bool) {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let fleet = root.join("fleet");
    std::fs::create_dir_all(&fleet).expect("fleet dir");
    let fleet_yaml = std::fs::read_to_string(repo.join("fleet/fleet.yaml")).expect("fleet.yaml");
    // Without the example's waves (its canary, acme, is not in this fleet).
    let fleet_yaml = fleet_yaml.split("\nrollout:").next().unwrap_or(&fleet_yaml);
    let lines: Vec<String> = fleet_yaml
        .lines()
        .map(|l| {
            if l.starts_with("  install_command:") {
                "  install_command: \"true\"".to_string()
            } else if l.starts_with("  build_command:") {
                format!("  build_command: '{}'", FAKE_BUILD.replace('\'', "''"))
            } else {
                l.to_string()
            }
        })
        .collect();
    std::fs::write(fleet.join("fleet.yaml"), lines.join("\n") + "\n").expect("fleet.yaml");
    copy_dir(&repo.join("migrations"), &root.join("migrations"), &[]);
    std::fs::write(
        root.join(format!("migrations/{COUNTING_MIGRATION}.sql")),
        "create table if not exists public.bench_runs (what text not null);\n\
         insert into public.bench_runs (what) values ('migration');\n",
    )
    .expect("counting migration");
    let seed_path = root.join("migrations/seed/client.sql");
    let mut seed = std::fs::read_to_string(&seed_path).expect("seed");
    seed.push_str("\ninsert into public.bench_runs (what) values ('seed');\n");
    std::fs::write(&seed_path, seed).expect("counting seed");
    let web = root.join("examples/web");
    if site {
        copy_dir(&repo.join("examples/web"), &web, &["node_modules", "dist"]);
    } else {
        std::fs::create_dir_all(&web).expect("frontend dir");
    }
    for slug in slugs(n) {
        std::fs::write(
            fleet.join(format!("{slug}.yaml")),
            format!("client: {slug}\n"),
        )
        .expect("client file");
    }
}

/// A fresh simulator (state in memory: its project databases go with it) with the vendors'
/// quotas, their windows times `scale`, and injected 429s asking for `retry_ms`.
async fn start_sim(seed: u64, retry_ms: u64, scale: f64) -> SimHandle {
    let mut config = common::sim_config(seed);
    config.rate_limit_scale = scale;
    config.fault_retry_after_ms = Some(retry_ms);
    config.supabase.provisioning_delay_ms = 1_000;
    config.supabase.rate_limit_requests = 120;
    config.supabase.rate_limit_window_ms = 60_000;
    config.cloudflare.account_ids = vec![ACCOUNT.into()];
    config.cloudflare.zone_names = vec![ZONE.into()];
    config.cloudflare.domain_activation_delay_ms = 500;
    config.cloudflare.rate_limit_requests = 1_200;
    common::start_sim(config).await
}

/// The binary against the simulator, as an operator would run it against the vendors.
fn command(root: &Path, sim: &SimHandle, args: &[&str], site: bool) -> Command {
    let sides = if site {
        common::Cloudflare::Sites
    } else {
        common::Cloudflare::Lease
    };
    let mut c = common::intelli(root, sim, sides);
    c.args(args);
    c
}

fn run_bin(root: &Path, sim: &SimHandle, args: &[&str], site: bool) -> (Output, Duration) {
    let t = Instant::now();
    let out = command(root, sim, args, site)
        .output()
        .expect("run intelli");
    (out, t.elapsed())
}

fn spawn_bin(root: &Path, sim: &SimHandle, args: &[&str], site: bool) -> std::process::Child {
    command(root, sim, args, site)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn intelli")
}

fn total(s: &Stats) -> u64 {
    s.requests.iter().map(|r| r.count).sum()
}

fn writes(s: &Stats) -> u64 {
    s.requests
        .iter()
        .filter(|r| r.method != "GET")
        .map(|r| r.count)
        .sum()
}

/// Writes answered by a fault: dropped (0), 429 or 503.
fn write_faults(s: &Stats) -> u64 {
    s.requests
        .iter()
        .filter(|r| r.method != "GET" && matches!(r.status, 0 | 429 | 503))
        .map(|r| r.count)
        .sum()
}
