//! Chaos: the binary killed with SIGKILL at seeded random moments while work is pending (new
//! clients and a new migration arriving between runs), then one apply; the same fleet under
//! the fault matrix on every vendor route (2% answers lost after the commit, 5% 429, 10% 5xx);
//! and two applies started together. Afterwards: one project per client, every migration
//! recorded and run once, the seed once, the declared buckets, every site serving its build, a
//! clean plan.
//!
//! The seed is printed; `INTELLI_CHAOS_SEED=<n>` replays a run.

mod common;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::world::World;
use intelli::sim::server::{FaultKind, FaultRule, Vendor};

/// A small deterministic generator (xorshift64*): the seed alone decides every kill moment.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn millis(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

fn seed() -> u64 {
    std::env::var("INTELLI_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        })
}

/// Add client `slug` (default domain `<slug>.intelliservice.io`).
fn add_client(w: &World, slug: &str) {
    std::fs::write(
        w.root().join(format!("fleet/{slug}.yaml")),
        format!("client: {slug}\ndisplay_name: Chaos {slug}\n"),
    )
    .expect("client file");
}

/// A migration whose effect counts its runs: applied twice, the count says 2.
fn add_counting_migration(w: &World, version: &str) {
    std::fs::write(
        w.root()
            .join(format!("migrations/{version}_chaos_{version}.sql")),
        format!(
            "create table if not exists public.chaos_runs (version text not null);\n\
             insert into public.chaos_runs (version) values ('{version}');\n"
        ),
    )
    .expect("migration");
}

/// `intelli apply --yes` with the lease settings of this test, spawned.
fn spawn_apply(w: &World, ttl_secs: u64, extra: &[&str]) -> Child {
    let mut c = w.command();
    c.args(["apply", "--yes"])
        .args(extra)
        .env("INTELLI_LEASE_TTL_SECS", ttl_secs.to_string())
        .env("INTELLI_CREATE_LOOKUP_SECS", "5")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Its own process group, so a kill takes its build children with it, as a CI runner or
    // a lost machine does (a SIGKILLed process's children live on otherwise).
    std::os::unix::process::CommandExt::process_group(&mut c, 0);
    c.spawn().expect("spawn intelli")
}

/// SIGKILL the apply and every process it started.
fn kill_group(child: &Child) {
    let status = std::process::Command::new("kill")
        .args(["-KILL", &format!("-{}", child.id())])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -KILL -{}", child.id());
}

fn finish(child: Child) -> (bool, String) {
    let out = child.wait_with_output().expect("wait");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The failures an apply's summary lists, by client.
fn failures(out: &str) -> Vec<String> {
    out.lines()
        .filter(|l| l.contains("  FAILED  ") || l.contains("  DEFERRED  "))
        .map(str::to_owned)
        .collect()
}

fn fault_matrix() -> Vec<FaultRule> {
    let mut rules = Vec::new();
    for (vendor, path) in [
        (Vendor::Supabase, "/v1/*"),
        (Vendor::Storage, "*/storage/v1/*"),
        (Vendor::Cloudflare, "/client/v4/*"),
    ] {
        for (kind, probability) in [
            (FaultKind::CommitThenDrop, 0.02),
            (FaultKind::RateLimited, 0.05),
            (FaultKind::Status(503), 0.10),
        ] {
            rules.push(FaultRule {
                vendor: Some(vendor),
                method: None,
                path: path.into(),
                probability,
                kind,
                times: None,
            });
        }
    }
    rules
}

/// Every invariant of a converged fleet.
async fn assert_converged(w: &mut World, clients: &[String], migrations: &[&str]) {
    for slug in clients {
        let project = format!("intelli-{slug}");
        // Exactly one project per client (project_ref asserts it).
        w.project_ref(&project);
        let db = w.db(&project).await;
        for v in migrations {
            let rows = db
                .query(
                    "select (select count(*) from supabase_migrations.schema_migrations where version = $1), \
                            (select count(*) from public.chaos_runs where version = $1)",
                    &[v],
                )
                .await
                .expect("history");
            let (recorded, ran): (i64, i64) = (rows[0].get(0), rows[0].get(1));
            assert_eq!((recorded, ran), (1, 1), "{slug}: migration {v}");
        }
        let seeds: i64 = db
            .query_one("select count(*) from supabase_migrations.seed_files", &[])
            .await
            .expect("seed files")
            .get(0);
        assert_eq!(seeds, 1, "{slug}: seed recorded once");
        let companies: i64 = db
            .query_one(
                "select count(*) from public.companies where slug = $1",
                &[slug],
            )
            .await
            .expect("companies")
            .get(0);
        assert_eq!(companies, 1, "{slug}: seeded once");
        let buckets: Vec<String> = db
            .query("select id from storage.buckets order by id", &[])
            .await
            .expect("buckets")
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(
            buckets,
            ["estimate-documents", "ticket-photos"],
            "{slug}: declared buckets"
        );
        let resp = reqwest::Client::new()
            .get(w.sim.base_url())
            .header("host", format!("{slug}.intelliservice.io"))
            .send()
            .await
            .expect("fetch site");
        assert_eq!(resp.status().as_u16(), 200, "{slug}: site served");
    }
    // The live deployments carry the desired fingerprints, the settings are as declared:
    // nothing left to do.
    let plan = w.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "plan is clean:\n{}",
        String::from_utf8_lossy(&plan.stdout)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kills_then_faults_then_racing_applies_converge_without_duplicates() {
    let seed = seed();
    println!("chaos seed: {seed} (replay with INTELLI_CHAOS_SEED={seed})");
    eprintln!("chaos seed: {seed} (replay with INTELLI_CHAOS_SEED={seed})");
    let mut rng = Rng(seed);
    let mut w = World::with_frontend_configured(|c| {
        c.seed = Some(seed);
        // Vendor windows scaled so injected 429s ask for seconds: Cloudflare 3 s.
        c.rate_limit_scale = 0.01;
    })
    .await;
    // acme from the example fleet plus clients arriving over time, all with the default
    // domain and buckets (globex adds a bucket, initech pins another domain).
    for fixture in ["globex", "initech"] {
        std::fs::remove_file(w.root().join(format!("fleet/{fixture}.yaml"))).expect("rm");
    }
    let mut clients: Vec<String> = vec!["acme".into()];
    for i in 1..=4 {
        let slug = format!("chaos{i}");
        add_client(&w, &slug);
        clients.push(slug);
    }
    let mut migrations: Vec<&str> = Vec::new();

    // Phase 1: SIGKILLs at seeded moments, new work arriving between runs. The lease TTL is
    // short so the next run waits out a dead holder's lease.
    let mut kills = 0;
    let started = Instant::now();
    for run in 0..14 {
        if kills >= 10 {
            break;
        }
        match run {
            3 => {
                for slug in ["chaos5", "chaos6"] {
                    add_client(&w, slug);
                    clients.push(slug.into());
                }
            }
            6 => {
                add_counting_migration(&w, "20260101000000");
                migrations.push("20260101000000");
            }
            _ => {}
        }
        let mut child = spawn_apply(&w, 3, &["--lock-timeout", "60s"]);
        // The previous run's lease lapses after ~3 s, so most moments fall inside the work.
        let at = Duration::from_millis(rng.millis(3_500, 12_000));
        let deadline = Instant::now() + at;
        let mut exited = false;
        while Instant::now() < deadline {
            if child.try_wait().expect("try_wait").is_some() {
                exited = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if !exited {
            kill_group(&child);
            kills += 1;
        }
        let (_, out) = finish(child);
        w.outputs.push(out);
        println!("run {run}: killed after {at:?}: {}", !exited);
    }
    assert!(kills >= 10, "only {kills} runs were killed while working");
    let (ok, out) = finish(spawn_apply(&w, 3, &["--lock-timeout", "60s"]));
    assert!(
        ok && failures(&out).is_empty(),
        "one apply converges:\n{out}"
    );
    println!(
        "phase 1: {kills} kills, then one apply: {:?}",
        started.elapsed()
    );
    w.outputs.push(out);
    assert_converged(&mut w, &clients, &migrations).await;

    // Phase 2: the fault matrix on every vendor route; a new client and a new migration.
    add_client(&w, "chaos7");
    add_client(&w, "chaos8");
    clients.extend(["chaos7".to_string(), "chaos8".to_string()]);
    add_counting_migration(&w, "20260102000000");
    migrations.push("20260102000000");
    let before = w.sim.stats();
    w.sim.set_faults(fault_matrix());
    let (_, out) = finish(spawn_apply(&w, 60, &["--lock-timeout", "60s"]));
    w.sim.set_faults(Vec::new());
    let after = w.sim.stats();
    let injected: u64 =
        after.faults_injected.values().sum::<u64>() - before.faults_injected.values().sum::<u64>();
    // Only a create whose answer was lost and that never materialised may remain.
    let left = failures(&out);
    for line in &left {
        assert!(
            line.contains("create outcome unknown"),
            "only an unknown create outcome may remain after one apply under faults:\n{out}"
        );
    }
    println!(
        "phase 2: {injected} faults injected, {} client(s) left with an unknown create outcome",
        left.len()
    );
    w.outputs.push(out);
    if !left.is_empty() {
        let (ok, out) = finish(spawn_apply(&w, 60, &[]));
        assert!(ok, "the next apply converges them:\n{out}");
        w.outputs.push(out);
    }
    assert_converged(&mut w, &clients, &migrations).await;

    // Phase 3: two applies started together: one acts, the other refuses (naming the holder)
    // or finds nothing left to do; never a duplicate.
    for round in 0..2 {
        let slug = format!("race{round}");
        add_client(&w, &slug);
        clients.push(slug);
        let a = spawn_apply(&w, 60, &[]);
        let b = spawn_apply(&w, 60, &[]);
        let ((ok_a, out_a), (ok_b, out_b)) = (finish(a), finish(b));
        assert!(ok_a || ok_b, "one of them acts:\n{out_a}\n---\n{out_b}");
        for (ok, out) in [(ok_a, &out_a), (ok_b, &out_b)] {
            assert!(
                ok || out.contains("another apply holds the fleet's lease"),
                "the other refuses because of the lease:\n{out}"
            );
        }
        w.outputs.extend([out_a, out_b]);
        let (ok, out) = finish(spawn_apply(&w, 60, &[]));
        assert!(ok, "{out}");
        w.outputs.push(out);
    }
    assert_converged(&mut w, &clients, &migrations).await;
    w.assert_no_secrets(&[]);
    println!("chaos seed: {seed}; total {:?}", started.elapsed());
}

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
