//! Benchmark: the frontend (Cloudflare Pages) side at fleet scale (issue 5).
//!
//! Three measurements, printed as figures and ratios:
//!
//! 1. **No-op plan, Cloudflare requests.** For each fleet size N (default 10 and 100; pass
//!    others after `--`): a scratch repository with N clients and the real example frontend,
//!    converged once (setup: no latency, rate limits lifted, through the library), then the
//!    simulator is restarted on the same state and port with 50 ms latency on every request and
//!    the vendors' limits (Cloudflare 1,200 requests per 5 minutes per user, Supabase 120 per
//!    minute per scope and endpoint), and `intelli plan --detailed-exitcode` runs end to end
//!    (must exit 0). Cloudflare requests by route, total and per client.
//! 2. **Redeploy after a one-file change.** Same fleet and simulator: one source file of the
//!    frontend is edited (a visible string in `src/Tickets.jsx`), and `intelli apply --yes` runs end
//!    to end. Wall time, builds run, files and bytes uploaded against the build output that
//!    changed (per client: files of the new deployment whose content the previous deployment
//!    did not have), upload requests, Cloudflare requests and the client rate limiter's bound.
//!    Builds are real `npm run build` runs unless `fake` is passed, which sets a shell build
//!    command that writes a deterministic site (with the client's `VITE_SUPABASE_URL`).
//!    Then **the change is reverted** and `intelli apply --yes` runs again: the plan must
//!    propose only rollbacks (each project's previous deployment is the desired build), and the
//!    apply's wall time, builds (target 0), upload sessions, rollbacks, and Cloudflare requests
//!    per client beyond the no-op plan's (target 1: the rollback) are printed against the
//!    redeploy's.
//! 3. **Fresh deploy of a 2,000-file site** (~100 MB, mixed sizes) with
//!    `CloudflareClient::deploy_directory`, 50 ms latency, vendor limits; and of a site four
//!    times larger (8,000 files, ~400 MB) to show memory does not grow with the site. Each
//!    deploy runs in a child process (this binary again) so its peak RSS (`VmHWM`) is the
//!    client's alone; the simulator, in this process, keeps asset bytes on disk.
//!
//! Run with `cargo bench --bench frontend` (needs PostgreSQL like the tests, and npm). Choose
//! parts with `-- plan` (1 and 2) or `-- upload` (3); sizes with numbers (`-- 10`), fake builds
//! with `-- fake`. Not part of `cargo test`: without `--bench` (which only `cargo bench`
//! passes) it prints how to run it and exits. Every project database it made is dropped.

#[path = "common/mod.rs"]
mod common;

use common::{DropDatabases, copy_dir};

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use intelli::apply::Waits;
use intelli::cloudflare::{CloudflareClient, CloudflareConfig, DeployMeta};
use intelli::engine::Engine;
use intelli::migrate::exec::SqlExecutor;
use intelli::sim::server::{Latency, SimConfig, SimHandle, Stats, Vendor};
use intelli::supabase::{SupabaseClient, SupabaseConfig};
use intelli::workspace::{Connections, Workspace};
use secrecy::SecretString;

const LATENCY: Duration = Duration::from_millis(50);
const ACCOUNT: &str = "0123456789abcdef0123456789abcdef";
const ZONE: &str = "intelliservice.io";
/// Cloudflare's quota (per user, every call together) and its window.
const CF_QUOTA: f64 = 1200.0;
const CF_WINDOW_S: f64 = 300.0;
/// Set in the child process that runs one deploy (part 3).
const CHILD_VAR: &str = "INTELLI_BENCH_DEPLOY_CHILD";
const CHILD_TOKEN_VAR: &str = "INTELLI_BENCH_CF_TOKEN";
/// Fresh deploys per site size (part 3); the summary gives each and the median.
const UPLOAD_RUNS: usize = 3;

/// The one-file change: a visible string of the example app.
const EDIT_FILE: &str = "src/Tickets.jsx";
const EDIT_FROM: &str = "No tickets yet.";
const EDIT_TO: &str = "No tickets yet: add one to get started.";

/// A build that needs no npm: deterministic, with the client's values, sources concatenated
/// (so the one-file change changes `app.js`), and a stylesheet shared by every client.
const FAKE_BUILD: &str = "mkdir -p {out_dir}/assets && cp src/styles.css {out_dir}/assets/app.css && { cat src/*.jsx src/*.js; printf 'window.__SUPABASE_URL__=%s;\\n' \"$VITE_SUPABASE_URL\"; } > {out_dir}/assets/app.js && printf '<!doctype html><title>%s</title><link rel=stylesheet href=/assets/app.css><script src=/assets/app.js></script>\\n' \"$VITE_CLIENT_NAME\" > {out_dir}/index.html";

fn main() {
    if std::env::var_os(CHILD_VAR).is_some() {
        child_deploy();
        return;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("frontend is a benchmark: run it with `cargo bench --bench frontend`");
        return;
    }
    let fake = args.iter().any(|a| a == "fake");
    let want_plan = args.iter().any(|a| a == "plan");
    let want_upload = args.iter().any(|a| a == "upload");
    let (want_plan, want_upload) = if want_plan || want_upload {
        (want_plan, want_upload)
    } else {
        (true, true)
    };
    let mut sizes: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    if sizes.is_empty() {
        sizes = vec![10, 100];
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut rows = Vec::new();
    if want_plan {
        for &n in &sizes {
            rows.push(rt.block_on(fleet_run(n, fake)));
        }
    }
    let mut uploads = Vec::new();
    if want_upload {
        uploads = rt.block_on(upload_run());
    }

    println!(
        "\n== summary ({} ms per request on every vendor call, vendor rate limits; builds: {})",
        LATENCY.as_millis(),
        if fake {
            "fake shell command"
        } else {
            "real `npm run build`"
        }
    );
    if !rows.is_empty() {
        println!("no-op plan (`intelli plan --detailed-exitcode`):");
        println!(
            "{:>6} {:>9} {:>12} {:>12} {:>9}",
            "N", "CF req", "CF req/cli", "all req/cli", "wall"
        );
        for r in &rows {
            println!(
                "{:>6} {:>9} {:>12.3} {:>12.2} {:>8.2}s",
                r.n,
                r.plan_cf,
                r.plan_cf as f64 / r.n as f64,
                r.plan_all as f64 / r.n as f64,
                r.plan_wall.as_secs_f64()
            );
        }
        println!("redeploy after a one-file change (`intelli apply --yes`):");
        println!(
            "{:>6} {:>9} {:>7} {:>7} {:>13} {:>13} {:>8} {:>9} {:>8} {:>10} {:>8}",
            "N",
            "wall",
            "builds",
            "files",
            "bytes up",
            "bytes chg",
            "up/chg",
            "uploads",
            "CF req",
            "rl bound",
            "wall/rl"
        );
        for r in &rows {
            println!(
                "{:>6} {:>8.1}s {:>7} {:>7} {:>13} {:>13} {:>8.3} {:>9} {:>8} {:>9.1}s {:>8}",
                r.n,
                r.redeploy_wall.as_secs_f64(),
                r.builds,
                r.files_uploaded,
                r.bytes_uploaded,
                r.bytes_changed,
                r.bytes_uploaded as f64 / r.bytes_changed.max(1) as f64,
                r.upload_requests,
                r.redeploy_cf,
                r.rate_bound.as_secs_f64(),
                ratio(r.redeploy_wall, r.rate_bound)
            );
        }
    }
    if !rows.is_empty() {
        println!("revert of that change (`intelli apply --yes`) against the redeploy:");
        println!(
            "{:>6} {:>9} {:>10} {:>9} {:>7} {:>9} {:>8} {:>8} {:>16} {:>9}",
            "N",
            "wall",
            "/redeploy",
            "rollbacks",
            "builds",
            "uploads",
            "CF req",
            "CF/cli",
            "beyond noop/cli",
            "served A"
        );
        for r in &rows {
            println!(
                "{:>6} {:>8.1}s {:>10} {:>9} {:>7} {:>9} {:>8} {:>8.2} {:>16.2} {:>9}",
                r.n,
                r.revert_wall.as_secs_f64(),
                ratio(r.revert_wall, r.redeploy_wall),
                r.rollbacks,
                r.revert_builds,
                r.revert_uploads,
                r.revert_cf,
                r.revert_cf as f64 / r.n as f64,
                r.revert_cf.saturating_sub(r.plan_cf) as f64 / r.n as f64,
                r.served_before
            );
        }
    }
    if !uploads.is_empty() {
        println!("fresh deploy with deploy_directory:");
        println!(
            "{:>7} {:>9} {:>8} {:>8} {:>9} {:>8} {:>8} {:>10} {:>9} {:>7}",
            "files",
            "MB",
            "wall",
            "files/s",
            "MB/s",
            "uploads",
            "CF req",
            "peak RSS",
            "RSS/site",
            "run"
        );
        for u in uploads.iter().chain(&medians(&uploads)) {
            println!(
                "{:>7} {:>9.1} {:>7.2}s {:>8.0} {:>9.1} {:>8} {:>8} {:>7.0} MB {:>9.2} {:>7}",
                u.files,
                mb(u.bytes),
                u.wall,
                u.files as f64 / u.wall,
                mb(u.bytes_uploaded) / u.wall,
                u.upload_requests,
                u.cf_requests,
                u.vm_hwm_kb as f64 / 1024.0,
                (u.vm_hwm_kb * 1024) as f64 / u.bytes as f64,
                if u.median { "median" } else { "" }
            );
        }
    }
}

/// Per site size, a row of the medians of its runs (each column on its own).
fn medians(rows: &[UploadRow]) -> Vec<UploadRow> {
    let mut sizes: Vec<u64> = rows.iter().map(|r| r.files).collect();
    sizes.dedup();
    sizes
        .into_iter()
        .map(|files| {
            let runs: Vec<&UploadRow> = rows.iter().filter(|r| r.files == files).collect();
            let median = |f: &dyn Fn(&UploadRow) -> f64| {
                let mut v: Vec<f64> = runs.iter().map(|r| f(r)).collect();
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            };
            UploadRow {
                files,
                bytes: median(&|r| r.bytes as f64) as u64,
                wall: median(&|r| r.wall),
                bytes_uploaded: median(&|r| r.bytes_uploaded as f64) as u64,
                upload_requests: median(&|r| r.upload_requests as f64) as u64,
                cf_requests: median(&|r| r.cf_requests as f64) as u64,
                vm_hwm_kb: median(&|r| r.vm_hwm_kb as f64) as u64,
                median: true,
            }
        })
        .collect()
}

/// `a / b` to two places, or `-` when `b` is zero.
fn ratio(a: Duration, b: Duration) -> String {
    if b.is_zero() {
        "-".into()
    } else {
        format!("{:.2}", a.as_secs_f64() / b.as_secs_f64())
    }
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1_000_000.0
}

struct FleetRow {
    n: usize,
    plan_cf: u64,
    plan_all: u64,
    plan_wall: Duration,
    redeploy_wall: Duration,
    builds: usize,
    files_uploaded: u64,
    bytes_uploaded: u64,
    bytes_changed: u64,
    upload_requests: u64,
    redeploy_cf: u64,
    rate_bound: Duration,
    revert_wall: Duration,
    revert_builds: usize,
    revert_cf: u64,
    rollbacks: u64,
    /// Upload sessions (upload tokens) the revert opened.
    revert_uploads: u64,
    /// Projects whose live deployment is again the one live before the redeploy.
    served_before: usize,
}

// ------------------------------------------------------------------------------------------
// Parts 1 and 2: a converged fleet.

async fn fleet_run(n: usize, fake: bool) -> FleetRow {
    println!("\n=== N = {n} clients");
    let dir = tempfile::Builder::new()
        .prefix("intelli-bench-frontend-")
        .tempdir()
        .expect("tempdir");
    let root = dir.path().to_path_buf();
    let state = root.join("sim-state");
    // Declared first so it is dropped last: whatever happens, the project databases go.
    let _cleanup = DropDatabases(state.clone());
    write_repository(&root, n, fake);
    let ws = Workspace::load(&root.join("fleet")).expect("the generated fleet loads");

    // Setup: converge once, fast (no latency, limits lifted), through the library.
    let t = Instant::now();
    let sim = start_sim(&state, None).await;
    let addr = sim.addr();
    let front = &ws.fleet.settings.frontend;
    let install = converge(&ws, &sim).await;
    sim.shutdown().await.expect("simulator shutdown");
    println!(
        "setup: {n} projects and sites converged in {:.1}s (`{}` took {:.1}s)",
        t.elapsed().as_secs_f64(),
        front.install_command,
        install.as_secs_f64()
    );

    // Measured: the same state and port (sites were built with URLs holding the port), 50 ms
    // on every request, the vendors' limits.
    let sim = start_sim(&state, Some(addr)).await;

    // 1. A no-op plan.
    sim.reset_stats();
    let (out, plan_wall) = run_bin(&root, &sim, &["plan", "--detailed-exitcode"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "intelli plan after converging is not a no-op:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stats = sim.stats();
    let plan_cf = vendor_total(&stats, Vendor::Cloudflare);
    let plan_all = total(&stats);
    println!(
        "no-op plan (`intelli plan --detailed-exitcode`, exit 0): {:.2}s",
        plan_wall.as_secs_f64()
    );
    println!(
        "  Cloudflare requests  {plan_cf} ({:.3} per client); all vendors {plan_all} ({:.2} per client)",
        plan_cf as f64 / n as f64,
        plan_all as f64 / n as f64
    );
    print_routes(&stats, Some(Vendor::Cloudflare));

    // 2. Redeploy after a one-file change.
    let before = cf_snapshot(&sim);
    let web = root.join("examples/web");
    let src = std::fs::read_to_string(web.join(EDIT_FILE)).expect("read the edited file");
    assert!(
        src.contains(EDIT_FROM),
        "{EDIT_FILE} no longer contains {EDIT_FROM:?}: update the bench's edit"
    );
    std::fs::write(web.join(EDIT_FILE), src.replacen(EDIT_FROM, EDIT_TO, 1)).expect("edit");
    // The simulator's own Cloudflare counters are not reset: differences are taken.
    let counters_before = sim.stats();
    sim.reset_stats();
    let (out, redeploy_wall) = run_bin(&root, &sim, &["apply", "--yes"]);
    let stderr = common::succeeded(&out, "intelli apply after the edit");
    let stats = sim.stats();
    let after = cf_snapshot(&sim);
    let changed = changed_output(&before, &after);
    let builds: Vec<f64> = stderr
        .lines()
        .filter_map(|l| {
            l.split_once("  built in ")?
                .1
                .strip_suffix('s')?
                .parse()
                .ok()
        })
        .collect();
    let deploys = stderr.lines().filter(|l| l.contains("  deployed ")).count();
    let cf = |k: &str| cf_counter(&stats, k) - cf_counter(&counters_before, k);
    let redeploy_cf = vendor_total(&stats, Vendor::Cloudflare);
    // The client's limiter (`http::ratelimit`): the whole quota at once, then the next
    // request when the oldest leaves the window (counted 5 % longer than the vendor's).
    let windows = ((redeploy_cf.max(1) - 1) as f64 / CF_QUOTA).floor();
    let rate_bound = Duration::from_secs_f64(windows * CF_WINDOW_S * 1.05);
    let build_cpu: f64 = builds.iter().sum();
    let slots = std::thread::available_parallelism().map_or(2, |n| n.get());
    println!(
        "redeploy after editing {EDIT_FILE} (`intelli apply --yes`): {:.1}s",
        redeploy_wall.as_secs_f64()
    );
    println!(
        "  builds run           {} (sum of build times {:.1}s, {slots} at a time: >= {:.1}s of wall); deploys {deploys}",
        builds.len(),
        build_cpu,
        build_cpu / slots as f64
    );
    println!(
        "  changed build output {} files, {} bytes over {} clients ({} distinct files, {} bytes)",
        changed.files,
        changed.bytes,
        changed.clients,
        changed.distinct_files,
        changed.distinct_bytes
    );
    println!(
        "  uploaded             {} files, {} bytes in {} upload requests; uploaded / changed = {:.3} (bytes), {:.3} (files)",
        cf("asset_files_uploaded"),
        cf("asset_bytes_uploaded"),
        cf("upload_requests"),
        cf("asset_bytes_uploaded") as f64 / changed.bytes.max(1) as f64,
        cf("asset_files_uploaded") as f64 / changed.files.max(1) as f64,
    );
    println!(
        "  Cloudflare requests  {redeploy_cf} ({:.2} per client); client rate-limit bound ({CF_QUOTA:.0} per {CF_WINDOW_S:.0} s) {:.1}s; wall / bound {}; refused by the simulated limit: {}",
        redeploy_cf as f64 / n as f64,
        rate_bound.as_secs_f64(),
        ratio(redeploy_wall, rate_bound),
        cf("rate_limited")
    );
    print_routes(&stats, Some(Vendor::Cloudflare));

    // Converged again: a plan is a no-op.
    let (out, _) = run_bin(&root, &sim, &["plan", "--detailed-exitcode"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the plan after the redeploy is not a no-op:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // The redeploy's own counts, before `cf` counts from the revert on.
    let (files_uploaded, bytes_uploaded, upload_requests) = (
        cf("asset_files_uploaded"),
        cf("asset_bytes_uploaded"),
        cf("upload_requests"),
    );

    // 3. Revert the change (git revert): every project still has the deployment made before
    // the redeploy, so apply rolls back to it.
    std::fs::write(web.join(EDIT_FILE), &src).expect("revert the edit");
    let (out, _) = run_bin(&root, &sim, &["plan"]);
    let plan_text = String::from_utf8_lossy(&out.stdout).into_owned();
    let planned_rollbacks = plan_text
        .lines()
        .find_map(|l| {
            l.strip_prefix("~ ")?
                .split_once(" clients: roll back ")?
                .0
                .parse::<usize>()
                .ok()
        })
        .unwrap_or(0);
    assert!(
        out.status.success() && !plan_text.contains("build and deploy"),
        "the plan of the revert builds:\n{plan_text}"
    );
    let counters_before = sim.stats();
    sim.reset_stats();
    let (out, revert_wall) = run_bin(&root, &sim, &["apply", "--yes"]);
    let stderr = common::succeeded(&out, "intelli apply of the revert");
    let stats = sim.stats();
    let cf = |k: &str| cf_counter(&stats, k) - cf_counter(&counters_before, k);
    let revert_cf = vendor_total(&stats, Vendor::Cloudflare);
    let revert_builds = stderr.lines().filter(|l| l.contains("  built in ")).count();
    let reverted = cf_snapshot(&sim);
    let served_before = before
        .live
        .iter()
        .filter(|(p, m)| reverted.live.get(*p) == Some(m))
        .count();
    println!(
        "revert of that change (`intelli apply --yes`; the plan proposed {planned_rollbacks} rollbacks): {:.1}s = {} of the redeploy's {:.1}s",
        revert_wall.as_secs_f64(),
        ratio(revert_wall, redeploy_wall),
        redeploy_wall.as_secs_f64()
    );
    println!(
        "  builds run           {revert_builds}; deployments created {}; upload sessions {}; files uploaded {}; rollbacks {}",
        cf("deployments_created"),
        cf("upload_tokens_issued"),
        cf("asset_files_uploaded"),
        cf("rollbacks")
    );
    println!(
        "  Cloudflare requests  {revert_cf} ({:.2} per client); beyond the no-op plan's {plan_cf}: {} ({:.2} per client; the redeploy: {:.2})",
        revert_cf as f64 / n as f64,
        revert_cf.saturating_sub(plan_cf),
        revert_cf.saturating_sub(plan_cf) as f64 / n as f64,
        redeploy_cf.saturating_sub(plan_cf) as f64 / n as f64,
    );
    println!(
        "  sites serving the deployment live before the redeploy again: {served_before} of {n}"
    );
    print_routes(&stats, Some(Vendor::Cloudflare));
    let (out, _) = run_bin(&root, &sim, &["plan", "--detailed-exitcode"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the plan after the revert is not a no-op:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    sim.shutdown().await.expect("simulator shutdown");
    FleetRow {
        revert_wall,
        revert_builds,
        revert_cf,
        rollbacks: cf("rollbacks"),
        revert_uploads: cf("upload_tokens_issued"),
        served_before,
        n,
        plan_cf,
        plan_all,
        plan_wall,
        redeploy_wall,
        builds: builds.len(),
        files_uploaded,
        bytes_uploaded,
        bytes_changed: changed.bytes,
        upload_requests,
        redeploy_cf,
        rate_bound,
    }
}

/// A scratch repository like `tests/common/world.rs` makes, with `n` minimal clients and the
/// example frontend's sources (without node_modules and build output).
fn write_repository(root: &Path, n: usize, fake: bool) {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let fleet = root.join("fleet");
    std::fs::create_dir_all(&fleet).expect("fleet dir");
    let mut fleet_yaml =
        std::fs::read_to_string(repo.join("fleet/fleet.yaml")).expect("fleet.yaml");
    // Without the example's waves (its canary, acme, is not in this fleet).
    if let Some(i) = fleet_yaml.find("\nrollout:") {
        fleet_yaml.truncate(i + 1);
    }
    if fake {
        let lines: Vec<String> = fleet_yaml
            .lines()
            .map(|l| {
                if l.starts_with("  install_command:") {
                    "  install_command: \"true\"".to_string()
                } else if l.starts_with("  build_command:") {
                    format!("  build_command: {}", yaml_quote(FAKE_BUILD))
                } else {
                    l.to_string()
                }
            })
            .collect();
        fleet_yaml = lines.join("\n") + "\n";
    }
    std::fs::write(fleet.join("fleet.yaml"), fleet_yaml).expect("write fleet.yaml");
    copy_dir(&repo.join("migrations"), &root.join("migrations"), &[]);
    copy_dir(
        &repo.join("examples/web"),
        &root.join("examples/web"),
        &["node_modules", "dist"],
    );
    for i in 1..=n {
        let slug = format!("bench-{i:04}");
        std::fs::write(
            fleet.join(format!("{slug}.yaml")),
            format!("client: {slug}\n"),
        )
        .expect("client file");
    }
}

fn yaml_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A simulator keeping its state in `state`. `measured: None` is the setup (no latency, limits
/// lifted, instant provisioning, any port); `Some(addr)`: that address, 50 ms latency on every
/// vendor and the vendors' limits.
async fn start_sim(state: &Path, measured: Option<std::net::SocketAddr>) -> SimHandle {
    let mut config = common::sim_config(7);
    config.state_dir = Some(state.to_path_buf());
    config.cloudflare.account_ids = vec![ACCOUNT.into()];
    config.cloudflare.zone_names = vec![ZONE.into()];
    config.cloudflare.domain_activation_delay_ms = 100;
    match measured {
        None => {
            config.supabase.provisioning_delay_ms = 0;
            config.supabase.rate_limit_requests = u32::MAX;
            config.cloudflare.rate_limit_requests = u32::MAX;
        }
        Some(addr) => {
            config.listen = addr;
            config.latency = measured_latency();
            // The vendors' numbers (the defaults, stated for the reader).
            config.supabase.rate_limit_requests = 120;
            config.supabase.rate_limit_window_ms = 60_000;
            config.cloudflare.rate_limit_requests = CF_QUOTA as u32;
            config.rate_limit_scale = 1.0;
        }
    }
    common::start_sim(config).await
}

/// 50 ms on every request of every vendor.
fn measured_latency() -> BTreeMap<Vendor, Latency> {
    let l = Latency {
        fixed_ms: LATENCY.as_millis() as u64,
        jitter_ms: 0,
    };
    BTreeMap::from([
        (Vendor::Supabase, l),
        (Vendor::Storage, l),
        (Vendor::Cloudflare, l),
    ])
}

fn supabase_client(sim: &SimHandle) -> SupabaseClient {
    let mut c = SupabaseConfig::new(SecretString::from(sim.supabase_token()));
    c.api_url = url::Url::parse(&sim.supabase_api_url()).expect("simulator URL");
    c.project_url_template = sim.project_url_template().to_string();
    c.rate_limit_per_minute = 0;
    SupabaseClient::new(c).expect("Supabase client")
}

/// A Cloudflare client for the simulator; `vendor_limits: false` lifts the client's limiter.
fn cloudflare_client(sim: &SimHandle, vendor_limits: bool) -> CloudflareClient {
    let mut c = CloudflareConfig::new(SecretString::from(sim.cloudflare_token()), ACCOUNT);
    c.api_base = url::Url::parse(&sim.cloudflare_api_url()).expect("simulator URL");
    if !vendor_limits {
        c.rate_limit_requests = 0;
        c.deploy_poll_interval = Duration::from_millis(100);
    }
    CloudflareClient::new(c).expect("Cloudflare client")
}

/// Install the frontend's dependencies, then plan and apply both sides until nothing is left
/// to do (what `intelli apply` does), through the engine. Returns how long the install took.
async fn converge(ws: &Workspace, sim: &SimHandle) -> Duration {
    let sb = supabase_client(sim);
    let conns = Connections::new(
        sb.clone(),
        SqlExecutor::ManagementApi(sb),
        Some(cloudflare_client(sim, false)),
        Some(sim.base_url()),
    );
    let engine = Engine::new(ws, &conns)
        .with_waits(Waits {
            poll: Duration::from_millis(100),
            healthy_timeout: Duration::from_secs(600),
            domain_timeout: Duration::from_secs(120),
            ..Waits::default()
        })
        .with_parallelism(16)
        .with_progress(|_| {});
    let t = Instant::now();
    engine
        .install()
        .await
        .unwrap_or_else(|e| panic!("installing the frontend's dependencies: {e:#}"));
    let install = t.elapsed();
    for round in 0..4 {
        let p = engine.plan(&[], &[]).await.expect("plan during setup");
        if !p.has_changes() {
            return install;
        }
        let report = engine.apply(&p.clients).await.expect("apply during setup");
        if report.failed() > 0 {
            eprintln!(
                "setup round {round}: {} client(s) failed\n{}",
                report.failed(),
                report.table()
            );
        }
    }
    panic!("the fleet did not converge in four rounds");
}

/// The binary against the simulator, as an operator would run it against the vendors.
fn run_bin(root: &Path, sim: &SimHandle, args: &[&str]) -> (Output, Duration) {
    let t = Instant::now();
    let out = common::intelli(root, sim, common::Cloudflare::Sites)
        .args(args)
        .output()
        .expect("run intelli");
    (out, t.elapsed())
}

/// Per Pages project: its live deployment's manifest (path → asset key); and every asset's size.
struct CfSnapshot {
    live: BTreeMap<String, BTreeMap<String, String>>,
    sizes: BTreeMap<String, u64>,
}

fn cf_snapshot(sim: &SimHandle) -> CfSnapshot {
    let dump = sim.cloudflare().dump();
    let mut live = BTreeMap::new();
    for p in dump["projects"].as_array().into_iter().flatten() {
        let name = p["name"].as_str().unwrap_or_default().to_string();
        let Some(id) = p["canonical_deployment"]["id"].as_str() else {
            continue;
        };
        let manifest = p["deployments"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|d| d["id"].as_str() == Some(id))
            .and_then(|d| d["manifest"].as_object())
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        live.insert(name, manifest);
    }
    let sizes = dump["assets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| Some((a["key"].as_str()?.to_string(), a["size"].as_u64()?)))
        .collect();
    CfSnapshot { live, sizes }
}

struct Changed {
    clients: usize,
    files: u64,
    bytes: u64,
    distinct_files: u64,
    distinct_bytes: u64,
}

/// The build output that changed: per client, the files of the new live deployment whose
/// content (asset key) the previous one did not have.
fn changed_output(before: &CfSnapshot, after: &CfSnapshot) -> Changed {
    let mut c = Changed {
        clients: 0,
        files: 0,
        bytes: 0,
        distinct_files: 0,
        distinct_bytes: 0,
    };
    let mut distinct = BTreeSet::new();
    for (project, manifest) in &after.live {
        let old: BTreeSet<&String> = before
            .live
            .get(project)
            .map(|m| m.values().collect())
            .unwrap_or_default();
        let mut any = false;
        for key in manifest.values() {
            if !old.contains(key) {
                any = true;
                c.files += 1;
                c.bytes += after.sizes.get(key).copied().unwrap_or(0);
                distinct.insert(key.clone());
            }
        }
        c.clients += usize::from(any);
    }
    c.distinct_files = distinct.len() as u64;
    c.distinct_bytes = distinct
        .iter()
        .map(|k| after.sizes.get(k).copied().unwrap_or(0))
        .sum();
    c
}

/// One of the simulated Cloudflare's own counters (uploads, bytes, …), since it started.
fn cf_counter(s: &Stats, key: &str) -> u64 {
    s.cloudflare.get(key).and_then(|v| v.as_u64()).unwrap_or(0)
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

fn print_routes(s: &Stats, only: Option<Vendor>) {
    let mut by_route: BTreeMap<(String, String, u16), u64> = BTreeMap::new();
    for r in s
        .requests
        .iter()
        .filter(|r| only.is_none_or(|v| r.vendor == v))
    {
        *by_route
            .entry((r.route.clone(), r.method.clone(), r.status))
            .or_default() += r.count;
    }
    for ((route, method, status), count) in by_route {
        println!("    {count:>6}  {method} {route} -> {status}");
    }
}

// ------------------------------------------------------------------------------------------
// Part 3: one large fresh deploy.

struct UploadRow {
    files: u64,
    bytes: u64,
    wall: f64,
    bytes_uploaded: u64,
    upload_requests: u64,
    cf_requests: u64,
    vm_hwm_kb: u64,
    /// A row of medians (see [`medians`]).
    median: bool,
}

async fn upload_run() -> Vec<UploadRow> {
    println!("\n=== fresh deploy of a large site (deploy_directory)");
    let dir = tempfile::Builder::new()
        .prefix("intelli-bench-upload-")
        .tempdir()
        .expect("tempdir");
    let state = dir.path().join("sim-state");
    let _cleanup = DropDatabases(state.clone());
    // Asset bytes on disk (state dir), so this process's memory is not what is measured, and
    // the deploy itself runs in a child process.
    let mut config = SimConfig {
        state_dir: Some(state),
        seed: Some(7),
        ..SimConfig::default()
    };
    config.cloudflare.account_ids = vec![ACCOUNT.into()];
    config.cloudflare.zone_names = vec![ZONE.into()];
    config.cloudflare.rate_limit_requests = CF_QUOTA as u32;
    config.rate_limit_scale = 1.0;
    config.latency = measured_latency();
    let sim = common::start_sim(config).await;
    let setup = cloudflare_client(&sim, false);
    let sites: [(u64, u64); 2] = [(2_000, 100_000_000), (8_000, 400_000_000)];
    let mut rows = Vec::new();
    for (seed, (files, bytes)) in sites
        .iter()
        .flat_map(|&s| std::iter::repeat_n(s, UPLOAD_RUNS))
        .enumerate()
    {
        // A new seed per run: every run is a fresh deploy of content Cloudflare never saw.
        let seed = seed as u64 + 1;
        let site = dir.path().join(format!("site-{seed}"));
        let t = Instant::now();
        let written = generate_site(&site, files, bytes, seed);
        println!(
            "site {seed}: {files} files, {written} bytes (sizes {}), generated in {:.1}s",
            describe_sizes(&site),
            t.elapsed().as_secs_f64()
        );
        let project = format!("bench-upload-{seed}");
        setup
            .create_project(&project, "main")
            .await
            .expect("create the Pages project");
        // The simulator's own Cloudflare counters are not reset: differences are taken.
        let counters_before = sim.stats();
        sim.reset_stats();
        let out = Command::new(std::env::current_exe().expect("this binary"))
            .env(CHILD_VAR, "1")
            .env(CHILD_TOKEN_VAR, sim.cloudflare_token())
            .args([
                sim.cloudflare_api_url(),
                project.clone(),
                site.to_string_lossy().into_owned(),
            ])
            .output()
            .expect("run the deploying child");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "the deploy failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let result: serde_json::Value = stdout
            .lines()
            .find_map(|l| l.strip_prefix("RESULT "))
            .and_then(|l| serde_json::from_str(l).ok())
            .expect("the child's RESULT line");
        let stats = sim.stats();
        let cf = |k: &str| cf_counter(&stats, k) - cf_counter(&counters_before, k);
        let row = UploadRow {
            files: result["files_total"].as_u64().unwrap_or(0),
            bytes: written,
            wall: result["wall_s"].as_f64().unwrap_or(f64::NAN),
            bytes_uploaded: result["bytes_uploaded"].as_u64().unwrap_or(0),
            upload_requests: cf("upload_requests"),
            cf_requests: vendor_total(&stats, Vendor::Cloudflare),
            vm_hwm_kb: result["vm_hwm_kb"].as_u64().unwrap_or(0),
            median: false,
        };
        println!(
            "  deploy_directory     {:.2}s: {} files, {} uploaded, {} bytes; {:.0} files/s, {:.1} MB/s",
            row.wall,
            row.files,
            result["files_uploaded"],
            row.bytes_uploaded,
            row.files as f64 / row.wall,
            mb(row.bytes_uploaded) / row.wall
        );
        println!(
            "  peak RSS (VmHWM) of the deploying process {:.0} MB (before the deploy {:.0} MB); {:.2} x the site's size",
            row.vm_hwm_kb as f64 / 1024.0,
            result["vm_hwm_before_kb"].as_u64().unwrap_or(0) as f64 / 1024.0,
            (row.vm_hwm_kb * 1024) as f64 / row.bytes as f64
        );
        println!(
            "  {} upload requests, {} Cloudflare requests; refused by the simulated limit: {}",
            row.upload_requests,
            row.cf_requests,
            cf("rate_limited")
        );
        print_routes(&stats, Some(Vendor::Cloudflare));
        let _ = std::fs::remove_dir_all(&site);
        rows.push(row);
    }
    sim.shutdown().await.expect("simulator shutdown");
    rows
}

/// Writes `files` files totalling about `bytes` (log-uniform sizes, scaled) under `dir`;
/// returns the bytes written. Content is pseudo-random (no two files alike), so every file
/// is uploaded.
fn generate_site(dir: &Path, files: u64, bytes: u64, seed: u64) -> u64 {
    let mut rng = SplitMix(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xB5AD_4ECE_DA1C_E2A9);
    let raw: Vec<f64> = (0..files)
        .map(|_| 256.0 * 2f64.powf(rng.unit() * 14.0))
        .collect();
    let scale = bytes as f64 / raw.iter().sum::<f64>();
    const EXT: [&str; 6] = ["js", "css", "html", "png", "woff2", "json"];
    let mut written = 0;
    for (i, r) in raw.iter().enumerate() {
        let size = ((r * scale) as u64).clamp(1, 20 * 1024 * 1024);
        let rel = if i == 0 {
            PathBuf::from("index.html")
        } else {
            PathBuf::from(format!(
                "assets/d{:02}/f{i:05}.{}",
                i % 40,
                EXT[i % EXT.len()]
            ))
        };
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).expect("create file"));
        let mut left = size;
        while left > 0 {
            let word = rng.next().to_le_bytes();
            let take = left.min(8) as usize;
            f.write_all(&word[..take]).expect("write");
            left -= take as u64;
        }
        f.flush().expect("flush");
        written += size;
    }
    written
}

fn describe_sizes(dir: &Path) -> String {
    let mut sizes = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir").flatten() {
            let m = e.metadata().expect("metadata");
            if m.is_dir() {
                stack.push(e.path());
            } else {
                sizes.push(m.len());
            }
        }
    }
    sizes.sort_unstable();
    let q = |p: f64| sizes[((sizes.len() - 1) as f64 * p) as usize];
    format!(
        "min {} B, median {} B, p99 {} B, max {} B",
        q(0.0),
        q(0.5),
        q(0.99),
        q(1.0)
    )
}

struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The child process of part 3: deploy one directory with the client's vendor defaults
/// (1,200 requests per 5 minutes, wrangler's batches) and report, with this process's peak RSS.
fn child_deploy() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [api, project, dir] = args.as_slice() else {
        eprintln!("usage: {CHILD_VAR}=1 frontend <api base> <project> <dir>");
        std::process::exit(2);
    };
    let token = std::env::var(CHILD_TOKEN_VAR).expect("token variable");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let before = vm_hwm_kb();
    let mut c = CloudflareConfig::new(SecretString::from(token), ACCOUNT);
    c.api_base = url::Url::parse(api).expect("API base");
    let client = CloudflareClient::new(c).expect("Cloudflare client");
    let t = Instant::now();
    let outcome = rt
        .block_on(client.deploy_directory(
            project,
            Path::new(dir),
            DeployMeta::new("main", "0".repeat(40), "bench"),
        ))
        .unwrap_or_else(|e| panic!("deploy_directory: {e}"));
    let wall = t.elapsed();
    println!(
        "RESULT {}",
        serde_json::json!({
            "files_total": outcome.files_total,
            "files_uploaded": outcome.files_uploaded,
            "bytes_uploaded": outcome.bytes_uploaded,
            "wall_s": wall.as_secs_f64(),
            "vm_hwm_kb": vm_hwm_kb(),
            "vm_hwm_before_kb": before,
        })
    );
}

/// Peak resident set size of this process (`VmHWM` in /proc/self/status), in KiB.
fn vm_hwm_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
