//! Benchmark: what waves cost (issue 8).
//!
//! A scratch repository with N clients (default 100; Supabase side), converged once against the
//! simulator (no latency: setup only). Then, with 50 ms latency per request and the vendors'
//! real rate-limit windows, a new migration is rolled out to the whole fleet by `intelli apply
//! --yes`, alternately as ONE wave (no `rollout:`) and in FOUR waves (canary 1, early 9, mid 30,
//! the implicit rest 60: labels in the client files), `reps` times each (default 2). No
//! failures, no checks (a check adds its own requests per client and wave). Printed: each
//! run's wall time, the mean of each, and the ratio four waves / one wave (target <= 1.15).
//!
//! Run with `cargo bench --bench waves` (needs PostgreSQL like the tests); `-- 40` for another
//! fleet size, `reps=3` for more repetitions. Not part of `cargo test`: without `--bench` it
//! prints how to run it and exits. Every project database it made is dropped with its simulator.

#[path = "common/mod.rs"]
mod common;

use common::copy_dir;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use intelli::sim::server::{Latency, SimHandle, Vendor};

const LATENCY: Duration = Duration::from_millis(50);
/// The four waves: the first client, the next 9, the next 30, then the implicit rest.
const ROLLOUT: &str = "rollout:\n  - name: canary\n    labels: {tier: canary}\n  - name: early\n    labels: {tier: early}\n  - name: mid\n    labels: {tier: mid}\n";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("waves is a benchmark: run it with `cargo bench --bench waves`");
        return;
    }
    let n = args
        .iter()
        .find_map(|a| a.parse::<usize>().ok())
        .unwrap_or(100);
    // The waves are fixed (canary 1, early 9, mid 30): a smaller fleet leaves `mid` or `rest`
    // empty, which `validate` refuses.
    if n < 41 {
        println!("waves needs at least 41 clients (canary 1, early 9, mid 30, then the rest)");
        return;
    }
    let reps = args
        .iter()
        .find_map(|a| a.strip_prefix("reps=")?.parse::<usize>().ok())
        .unwrap_or(2);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(run(n, reps));
}

async fn run(n: usize, reps: usize) {
    let dir = tempfile::Builder::new()
        .prefix("intelli-bench-waves-")
        .tempdir()
        .expect("tempdir");
    let root = dir.path().to_path_buf();
    let base = write_repository(&root, n);
    let sim = start_sim().await;
    write_fleet_yaml(&root, &base, false);
    let t = Instant::now();
    let (out, _) = run_bin(&root, &sim, &["apply", "--yes"]);
    assert_converged(&out, n, "setup");
    println!(
        "setup: {n} clients converged in {:.1}s (no latency)",
        t.elapsed().as_secs_f64()
    );

    sim.set_latency(BTreeMap::from([(
        Vendor::Supabase,
        Latency {
            fixed_ms: LATENCY.as_millis() as u64,
            jitter_ms: 0,
        },
    )]));
    let mut one = Vec::new();
    let mut four = Vec::new();
    for rep in 0..reps {
        for waves in [false, true] {
            write_fleet_yaml(&root, &base, waves);
            let version = format!("2099010100{:02}{}0", rep, u8::from(waves));
            std::fs::write(
                root.join(format!("migrations/{version}_bench_wave.sql")),
                format!("create table public.bench_wave_{version} (id int);\n"),
            )
            .expect("migration");
            let (out, wall) = run_bin(&root, &sim, &["apply", "--yes", "--log-format", "json"]);
            assert_converged(&out, n, if waves { "four waves" } else { "one wave" });
            if waves {
                assert!(
                    text(&out).contains("Wave 4/4 rest"),
                    "the rollout ran in four waves:\n{}",
                    text(&out)
                );
            }
            println!(
                "rep {}: {:<10} {:.2}s",
                rep + 1,
                if waves { "four waves" } else { "one wave" },
                wall.as_secs_f64()
            );
            if waves {
                let gates = gate_time(&out);
                println!(
                    "        of which the health gates between waves {:.2}s",
                    gates.as_secs_f64()
                );
                four.push((wall, gates));
            } else {
                one.push(wall);
            }
        }
    }
    let mean = |v: &[Duration]| v.iter().map(Duration::as_secs_f64).sum::<f64>() / v.len() as f64;
    let walls: Vec<Duration> = four.iter().map(|(w, _)| *w).collect();
    let gates: Vec<Duration> = four.iter().map(|(_, g)| *g).collect();
    let (m1, m4, mg) = (mean(&one), mean(&walls), mean(&gates));
    println!(
        "\n== a migration to {n} clients (Supabase side, {} ms latency, real rate-limit windows), mean of {reps}:",
        LATENCY.as_millis()
    );
    println!("  one wave                       {m1:.2}s");
    println!("  four waves (1 / 9 / 30 / {})   {m4:.2}s", n - 40);
    println!("  of which health gates          {mg:.2}s");
    println!(
        "  ratio four / one               {:.2}; without the gates {:.2} (target <= 1.15 plus the health-gate waits)",
        m4 / m1,
        (m4 - mg) / m1
    );
    sim.shutdown().await.expect("simulator shutdown");
}

/// The time the four-wave apply spent in health gates: from each wave's first `health gate`
/// line to the start of the next wave (or the apply's last event), read from the JSON events'
/// timestamps (`--log-format json` on stderr).
fn gate_time(out: &Output) -> Duration {
    let events: Vec<(chrono::DateTime<chrono::Utc>, String)> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| {
            let ts = v["ts"].as_str()?.parse().ok()?;
            Some((ts, v["message"].as_str().unwrap_or("").to_string()))
        })
        .collect();
    let mut total = chrono::TimeDelta::zero();
    let mut gate_started = None;
    for (ts, message) in &events {
        let wave_starts = message.starts_with("Wave ") && message.contains(" client(s)");
        if wave_starts && let Some(start) = gate_started.take() {
            total += *ts - start;
        }
        if gate_started.is_none() && message.ends_with(": health gate …") {
            gate_started = Some(*ts);
        }
    }
    if let (Some(start), Some((last, _))) = (gate_started, events.last()) {
        total += *last - start;
    }
    total.to_std().unwrap_or_default()
}

fn assert_converged(out: &Output, n: usize, what: &str) {
    let t = text(out);
    assert!(
        out.status.success()
            && t.contains(&format!("Apply complete: {n} client(s)"))
            && t.contains(" 0 failed"),
        "{what}: the apply did not converge every client:\n{t}"
    );
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A scratch repository with `n` minimal clients labelled by wave; returns fleet.yaml without
/// a rollout.
fn write_repository(root: &Path, n: usize) -> String {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let fleet = root.join("fleet");
    std::fs::create_dir_all(&fleet).expect("fleet dir");
    let fleet_yaml = std::fs::read_to_string(repo.join("fleet/fleet.yaml")).expect("fleet.yaml");
    // The example fleet's own rollout goes: each run writes the one it measures.
    let base = fleet_yaml
        .split("\nrollout:")
        .next()
        .unwrap_or(&fleet_yaml)
        .to_string();
    copy_dir(&repo.join("migrations"), &root.join("migrations"), &[]);
    std::fs::create_dir_all(root.join("examples/web")).expect("frontend dir");
    for i in 1..=n {
        let tier = match i {
            1 => "canary",
            2..=10 => "early",
            11..=40 => "mid",
            _ => "rest",
        };
        std::fs::write(
            fleet.join(format!("bench-{i:04}.yaml")),
            format!("client: bench-{i:04}\nlabels: {{tier: {tier}}}\n"),
        )
        .expect("client file");
    }
    base
}

fn write_fleet_yaml(root: &Path, base: &str, waves: bool) {
    let text = if waves {
        format!("{base}\n{ROLLOUT}")
    } else {
        base.to_string()
    };
    std::fs::write(root.join("fleet/fleet.yaml"), text).expect("fleet.yaml");
}

/// A simulator with the vendors' real quotas and windows.
async fn start_sim() -> SimHandle {
    let mut config = common::sim_config(8);
    config.rate_limit_scale = 1.0;
    config.supabase.provisioning_delay_ms = 1_000;
    config.supabase.rate_limit_requests = 120;
    config.supabase.rate_limit_window_ms = 60_000;
    config.cloudflare.account_ids = vec!["0123456789abcdef0123456789abcdef".into()];
    config.cloudflare.zone_names = vec!["intelliservice.io".into()];
    common::start_sim(config).await
}

/// The binary against the simulator (Supabase side), as an operator would run it.
fn run_bin(root: &Path, sim: &SimHandle, args: &[&str]) -> (Output, Duration) {
    let t = Instant::now();
    let out = common::intelli(root, sim, common::Cloudflare::Lease)
        .args(args)
        .output()
        .expect("run intelli");
    (out, t.elapsed())
}
