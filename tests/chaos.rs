//! Chaos: `intelli apply` killed with SIGKILL at seeded random moments while work is pending
//! (new clients, a new migration and a changed build value arriving between runs), then one
//! apply; the same fleet under the fault matrix on every vendor route (2% answers lost after the
//! commit, 5% 429, 10% 5xx), then one apply; and two applies started together. After each:
//! exactly one project per client, every migration recorded and run once, the seed run once,
//! the declared buckets, every site serving its fingerprinted build, a clean plan.
//!
//! Only intelli's own process is killed (`kill -9 <pid>`), not its process group: what it
//! started (the install and build commands) must not outlive it, and a half-done install must
//! not break the next apply.
//!
//! The seed is printed; `INTELLI_CHAOS_SEED=<n>` replays a run's choices (kill moments and
//! fault dice; a concurrent apply sends its requests in a varying order, so the same dice may
//! fall on other requests).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::world::World;
use intelli::sim::server::{FaultKind, FaultRule, Vendor};

/// The progress line of the frontend's dependency install (`npm ci` in the example fleet).
const INSTALL_LINE: &str = "frontend: npm ci";

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
    /// Uniform in `lo..hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
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
        })
        | 1
}

/// Add client `slug` (default domain `<slug>.intelliservice.io`, default buckets).
fn add_client(w: &World, slug: &str) {
    std::fs::write(
        w.root().join(format!("fleet/{slug}.yaml")),
        format!("client: {slug}\ndisplay_name: Chaos {slug}\n"),
    )
    .expect("client file");
}

/// Give `slug` a build-time value, so its site must be built and deployed again.
fn change_brand(w: &World, slug: &str, color: u64) {
    std::fs::write(
        w.root().join(format!("fleet/{slug}.yaml")),
        format!(
            "client: {slug}\ndisplay_name: Chaos {slug}\nfrontend:\n  env:\n    VITE_BRAND_COLOR: \"#{:06x}\"\n",
            color & 0xff_ffff
        ),
    )
    .expect("client file");
}

/// A migration whose effect counts its runs: applied twice, the count says 2.
fn add_counting_migration(w: &World, version: &str) {
    std::fs::write(
        w.root()
            .join(format!("migrations/{version}_chaos_{version}.sql")),
        format!(
            "create table if not exists public.chaos_runs (what text not null);\n\
             insert into public.chaos_runs (what) values ('{version}');\n"
        ),
    )
    .expect("migration");
}

/// The seed, made to count its runs too (its own inserts are `on conflict do nothing`).
fn count_seed_runs(w: &World) {
    let path = w.root().join("migrations/seed/client.sql");
    let mut seed = std::fs::read_to_string(&path).expect("seed");
    seed.push_str(
        "\ncreate table if not exists public.chaos_runs (what text not null);\n\
         insert into public.chaos_runs (what) values ('seed');\n",
    );
    std::fs::write(&path, seed).expect("seed");
}

/// `intelli apply --yes` with this test's lease settings, spawned, its stderr lines streamed.
struct Run {
    child: Child,
    lines: mpsc::Receiver<String>,
    readers: Vec<std::thread::JoinHandle<String>>,
}

fn spawn_apply(w: &World, ttl_secs: u64, extra: &[&str]) -> Run {
    let mut c = w.command();
    c.args(["apply", "--yes"])
        .args(extra)
        .env("INTELLI_LEASE_TTL_SECS", ttl_secs.to_string())
        .env("INTELLI_CREATE_LOOKUP_SECS", "5")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn intelli");
    let (tx, lines) = mpsc::channel();
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let err = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line.clone());
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    Run {
        child,
        lines,
        readers: vec![out, err],
    }
}

impl Run {
    /// Wait for the end; `(success, everything printed)`.
    fn finish(mut self) -> (bool, String) {
        let status = self.child.wait().expect("wait");
        let text: Vec<String> = self
            .readers
            .into_iter()
            .map(|r| r.join().unwrap_or_default())
            .collect();
        (status.success(), text.join("\n"))
    }

    /// SIGKILL intelli once it has printed `lines` progress lines on stderr (or, with
    /// `containing`, a line that contains it) and `delay` more has passed, unless it finishes
    /// first. True when it was killed.
    fn kill_after(&mut self, lines: u64, containing: Option<&str>, delay: Duration) -> bool {
        let mut seen = 0;
        let limit = Instant::now() + Duration::from_secs(180);
        loop {
            match self.lines.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    seen += 1;
                    let hit = match containing {
                        Some(text) => line.contains(text),
                        None => seen >= lines,
                    };
                    if hit {
                        break;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < limit => {
                    if self.child.try_wait().expect("try_wait").is_some() {
                        return false;
                    }
                }
                Err(_) => return false,
            }
        }
        std::thread::sleep(delay);
        if self.child.try_wait().expect("try_wait").is_some() {
            return false;
        }
        // `Child::kill` is SIGKILL on Unix: intelli alone, as `kill -9 <pid>` does.
        self.child.kill().expect("kill -9");
        true
    }
}

/// The failures an apply's summary lists.
fn failures(out: &str) -> Vec<String> {
    out.lines()
        .filter(|l| l.contains("  FAILED  ") || l.contains("  DEFERRED  "))
        .map(str::to_owned)
        .collect()
}

/// 2% lost answers, 5% 429, 10% 503 on every route of every vendor (the first matching rule
/// whose roll hits decides, so the later rules' chances are raised to keep their shares).
fn fault_matrix() -> Vec<FaultRule> {
    let mut rules = Vec::new();
    for (vendor, path) in [
        (Vendor::Supabase, "/v1/*"),
        (Vendor::Storage, "*/storage/v1/*"),
        (Vendor::Cloudflare, "/client/v4/*"),
    ] {
        let mut left = 1.0;
        for (kind, share) in [
            (FaultKind::CommitThenDrop, 0.02),
            (FaultKind::RateLimited, 0.05),
            (FaultKind::Status(503), 0.10),
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

/// Every invariant of a converged fleet.
async fn assert_converged(w: &mut World, clients: &[String], migrations: &[String]) {
    let http = reqwest::Client::new();
    for slug in clients {
        let project = format!("intelli-{slug}");
        // Exactly one project per client (project_ref asserts it).
        w.project_ref(&project);
        let db = w.db(&project).await;
        for v in migrations {
            let row = db
                .query_one(
                    "select (select count(*) from supabase_migrations.schema_migrations where version = $1), \
                            (select count(*) from public.chaos_runs where what = $1)",
                    &[v],
                )
                .await
                .expect("history");
            let (recorded, ran): (i64, i64) = (row.get(0), row.get(1));
            assert_eq!(
                (recorded, ran),
                (1, 1),
                "{slug}: migration {v} recorded, run"
            );
        }
        let row = db
            .query_one(
                "select (select count(*) from supabase_migrations.seed_files), \
                        (select count(*) from public.chaos_runs where what = 'seed'), \
                        (select count(*) from public.companies where slug = $1)",
                &[slug],
            )
            .await
            .expect("seed");
        let (recorded, ran, companies): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
        assert_eq!((recorded, ran, companies), (1, 1, 1), "{slug}: seed once");
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
        let resp = http
            .get(w.sim.base_url())
            .header("host", format!("{slug}.intelliservice.io"))
            .send()
            .await
            .expect("fetch site");
        assert_eq!(resp.status().as_u16(), 200, "{slug}: site served");
        let body = resp.text().await.expect("site body");
        assert!(
            body.contains("id=\"root\""),
            "{slug}: the built app: {body}"
        );
    }
    // The live deployments carry the desired fingerprints and everything else is as declared:
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
    let started = Instant::now();
    let mut rng = Rng(seed);
    let mut w = World::with_frontend_configured(|c| {
        c.seed = Some(seed);
        // Vendor windows scaled so a 429 (injected or earned) asks for seconds: Supabase
        // 1 s, Cloudflare 3 s.
        c.rate_limit_scale = 0.01;
    })
    .await;
    // acme from the example fleet plus clients with the default domain and buckets (globex
    // adds a bucket, initech pins another domain: not needed here).
    for fixture in ["globex", "initech"] {
        std::fs::remove_file(w.root().join(format!("fleet/{fixture}.yaml"))).expect("rm");
    }
    count_seed_runs(&w);
    let mut clients: Vec<String> = vec!["acme".into()];
    for i in 1..=7 {
        let slug = format!("chaos{i}");
        add_client(&w, &slug);
        clients.push(slug);
    }
    let mut migrations: Vec<String> = Vec::new();
    let kills = kill_phase(&mut w, &mut rng, &mut clients, &mut migrations);
    let (ok, out) = spawn_apply(&w, 3, &["--lock-timeout", "60s"]).finish();
    assert!(
        ok && failures(&out).is_empty(),
        "one apply after {kills} kills converges:\n{out}"
    );
    w.outputs.push(out);
    assert_converged(&mut w, &clients, &migrations).await;
    println!(
        "phase 1: {kills} kills, then one apply: {:.0}s",
        started.elapsed().as_secs_f64()
    );

    fault_phase(&mut w, &mut clients, &mut migrations).await;
    println!(
        "phase 2 (faults) done: {:.0}s",
        started.elapsed().as_secs_f64()
    );

    race_phase(&mut w, &mut clients, &migrations).await;
    w.assert_no_secrets(&[]);
    println!(
        "chaos seed {seed}: {} clients, {kills} kills, total {:.0}s",
        clients.len(),
        started.elapsed().as_secs_f64()
    );
}

/// SIGKILLs at seeded moments (after a seeded number of progress lines, plus up to a second)
/// with new work arriving between runs. The lease TTL is short so the next run waits out a
/// dead holder's lease. Returns the number of kills.
fn kill_phase(
    w: &mut World,
    rng: &mut Rng,
    clients: &mut Vec<String>,
    migrations: &mut Vec<String>,
) -> u32 {
    let mut kills = 0;
    // Enough runs that ten of them die working even when the fleet converges early and each
    // later run only has the few build-value changes below to do.
    for run in 0..40 {
        if kills >= 10 {
            break;
        }
        match run {
            3 => {
                for slug in ["chaos8", "chaos9"] {
                    add_client(w, slug);
                    clients.push(slug.into());
                }
            }
            6 => {
                add_counting_migration(w, "20260101000000");
                migrations.push("20260101000000".into());
            }
            _ => {}
        }
        let mut child = spawn_apply(w, 3, &["--lock-timeout", "60s"]);
        // The first run installs the frontend's dependencies: it dies in the middle of that
        // (a half-written node_modules, an install command whose parent is gone). The others
        // die after a seeded number of progress lines.
        let (lines, containing, delay) = if run == 0 {
            (0, Some(INSTALL_LINE), rng.range(1_000, 6_000))
        } else {
            (rng.range(1, 25), None, rng.range(0, 1_000))
        };
        let delay = Duration::from_millis(delay);
        let killed = child.kill_after(lines, containing, delay);
        let (ok, out) = child.finish();
        println!(
            "run {run}: killed after {} + {delay:?}: {killed}",
            containing.map_or_else(|| format!("{lines} lines"), |t| format!("{t:?}"))
        );
        if !killed {
            // It finished: nothing was pending any more. Give three clients a new build value,
            // so the next run has enough progress lines to die in (one site's rebuild alone
            // often finished before its kill line: 9 kills in 24 runs with seed
            // 1796214169369450053).
            assert!(
                ok || out.contains("create outcome unknown"),
                "an apply that was not killed fails:\n{out}"
            );
            for _ in 0..3 {
                let slug = &clients[rng.range(0, clients.len() as u64) as usize];
                change_brand(w, slug, rng.next());
            }
        }
        kills += u32::from(killed);
        w.outputs.push(out);
    }
    assert!(kills >= 10, "only {kills} runs were killed while working");
    kills
}

/// The fault matrix on every vendor route, two new clients and a new migration: one apply.
/// Only a create whose answer was lost and never showed up may remain; the next apply (no
/// faults) converges it.
async fn fault_phase(w: &mut World, clients: &mut Vec<String>, migrations: &mut Vec<String>) {
    for slug in ["chaos10", "chaos11"] {
        add_client(w, slug);
        clients.push(slug.into());
    }
    add_counting_migration(w, "20260102000000");
    migrations.push("20260102000000".into());
    let before = w.sim.stats();
    w.sim.set_faults(fault_matrix());
    let (_, out) = spawn_apply(w, 60, &[]).finish();
    w.sim.set_faults(Vec::new());
    let after = w.sim.stats();
    let injected: u64 =
        after.faults_injected.values().sum::<u64>() - before.faults_injected.values().sum::<u64>();
    assert!(
        out.contains("Apply complete:"),
        "the apply under faults ran to its summary:\n{out}"
    );
    let left = failures(&out);
    for line in &left {
        assert!(
            line.contains("create outcome unknown"),
            "only an unknown create outcome may remain after one apply under faults:\n{out}"
        );
    }
    println!(
        "phase 2: {injected} faults injected ({:?}), {} client(s) left with an unknown create outcome",
        after.faults_injected,
        left.len()
    );
    w.outputs.push(out);
    if !left.is_empty() {
        let (ok, out) = spawn_apply(w, 60, &[]).finish();
        assert!(ok, "the next apply converges them:\n{out}");
        w.outputs.push(out);
    }
    assert_converged(w, clients, migrations).await;
}

/// Two applies started together with a new client: one acts, the other refuses naming the
/// holder (or, started after the first released the lease, finds nothing to do).
async fn race_phase(w: &mut World, clients: &mut Vec<String>, migrations: &[String]) {
    add_client(w, "race1");
    clients.push("race1".into());
    let a = spawn_apply(w, 60, &[]);
    let b = spawn_apply(w, 60, &[]);
    let ((ok_a, out_a), (ok_b, out_b)) = (a.finish(), b.finish());
    assert!(ok_a || ok_b, "one of them acts:\n{out_a}\n---\n{out_b}");
    for (ok, out) in [(ok_a, &out_a), (ok_b, &out_b)] {
        assert!(
            ok || out.contains("another apply holds the fleet's lease"),
            "the other refuses because of the lease:\n{out}"
        );
    }
    w.outputs.extend([out_a, out_b]);
    assert_converged(w, clients, migrations).await;
}
