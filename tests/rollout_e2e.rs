//! Apply by waves end to end: the real binary against the simulator (real PostgreSQL per
//! project): a canary that fails halts the rollout with every other client untouched, a wave
//! whose budget is exceeded starts no further step of its own clients, a manual gate stops apply
//! until `--through`, `--wave` refuses to skip a wave that is behind; the summary files carry
//! the halt.

mod common;

use common::world::World;
use intelli::sim::server::{FaultKind, FaultRule, Vendor};

/// Twelve clients: c01 is the canary (by label), c02–c04 are `early` (by name, budget 1), the
/// other eight are the implicit `rest`.
const SLUGS: [&str; 12] = [
    "c01", "c02", "c03", "c04", "c05", "c06", "c07", "c08", "c09", "c10", "c11", "c12",
];

fn write_fleet(w: &World, early_gate: &str) {
    write_fleet_with(
        w,
        &SLUGS,
        &format!(
            "  - name: canary\n    labels: {{tier: canary}}\n  - name: early\n    clients: [c02, c03, c04]\n    max_failures: 1\n    gate: {early_gate}\n"
        ),
    );
}

/// The example fleet with the clients `slugs` (c01 labelled canary, the others standard) and
/// the waves `rollout` (YAML list items, indented by two).
fn write_fleet_with(w: &World, slugs: &[&str], rollout: &str) {
    let fleet = w.root().join("fleet");
    for old in ["acme", "globex", "initech"] {
        let _ = std::fs::remove_file(fleet.join(format!("{old}.yaml")));
    }
    for &slug in slugs {
        let labels = if slug == "c01" {
            "labels: {tier: canary}\n"
        } else {
            "labels: {tier: standard}\n"
        };
        std::fs::write(
            fleet.join(format!("{slug}.yaml")),
            format!("client: {slug}\n{labels}"),
        )
        .expect("client file");
    }
    let base = std::fs::read_to_string(common::repo_root().join("fleet/fleet.yaml"))
        .expect("example fleet.yaml");
    // The example fleet's own rollout (if any) is replaced by this test's.
    let base = base.split("\nrollout:").next().unwrap_or(&base).to_string();
    std::fs::write(
        fleet.join("fleet.yaml"),
        format!("{base}\nrollout:\n{rollout}"),
    )
    .expect("fleet.yaml");
}

const PROBE_VERSION: &str = "20260601000000";

/// Add the probe migration (it creates `public.wave_probe`), made to fail on `slug` alone: that
/// client's database has the table already.
async fn add_probe_failing_on(w: &World, slug: &str) {
    w.db(&format!("intelli-{slug}"))
        .await
        .batch_execute("create table public.wave_probe (id int)")
        .await
        .expect("prepare the failing client");
    std::fs::write(
        w.root()
            .join(format!("migrations/{PROBE_VERSION}_wave_probe.sql")),
        "create table public.wave_probe (id int);\n",
    )
    .expect("migration");
}

/// Whether `slug`'s database recorded the probe migration.
async fn has_probe(w: &World, slug: &str) -> bool {
    let db = w.db(&format!("intelli-{slug}")).await;
    let n: i64 = db
        .query_one(
            "select count(*) from supabase_migrations.schema_migrations where version = $1",
            &[&PROBE_VERSION],
        )
        .await
        .expect("history")
        .get(0);
    n == 1
}

/// `apply --yes` writing both summary files; its output and their paths (markdown, JSON).
fn apply_with_summaries(
    w: &mut World,
) -> (std::process::Output, std::path::PathBuf, std::path::PathBuf) {
    let (md, json) = (w.root().join("summary.md"), w.root().join("summary.json"));
    let out = w.run(&[
        "apply",
        "--yes",
        "--summary-markdown",
        md.to_str().expect("path"),
        "--summary-json",
        json.to_str().expect("path"),
    ]);
    (out, md, json)
}

/// The summary `apply --summary-json` wrote to `path`, checked against the committed
/// `schema/summary.schema.json`.
fn summary_json(path: &std::path::Path) -> serde_json::Value {
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("summary json"))
            .expect("summary json parses");
    assert_matches_summary_schema(&summary);
    summary
}

/// `apply --summary-json` validates against the committed `schema/summary.schema.json`.
fn assert_matches_summary_schema(summary: &serde_json::Value) {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::repo_root().join("schema/summary.schema.json"))
            .expect("committed schema"),
    )
    .expect("schema json");
    let validator = jsonschema::validator_for(&schema).expect("valid schema");
    let errors: Vec<String> = validator
        .iter_errors(summary)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}\n{summary:#}");
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_canary_halts_and_a_manual_gate_waits_for_through() {
    let mut w = World::new().await;
    write_fleet(&w, "auto");

    // The plan names every wave in order, with the implicit rest.
    let plan = w.run_ok(&["plan"]);
    let canary = plan.find("Wave 1/3 canary: 1 client").expect("canary wave");
    let early = plan
        .find("Wave 2/3 early: 3 clients · max failures 1")
        .expect("early wave");
    let rest = plan
        .find("Wave 3/3 rest (implicit): 8 clients")
        .expect("rest wave");
    assert!(canary < early && early < rest, "{plan}");

    let out = w.run_ok(&["apply", "--yes"]);
    assert!(
        out.contains("Apply complete: 12 client(s)") && out.contains("0 failed"),
        "{out}"
    );
    // The organization was listed by the two plans (the `plan` above, apply's) and once per
    // create (look before create); the gates of `canary` and `early` know the refs apply
    // created without listing it again.
    let listings: u64 = w
        .sim
        .stats()
        .requests
        .iter()
        .filter(|r| r.route == "/v1/organizations/{slug}/projects")
        .map(|r| r.count)
        .sum();
    assert_eq!(listings, 2 + 12, "{out}");

    // A migration that fails on the canary only.
    add_probe_failing_on(&w, "c01").await;
    let failed = w.run(&["apply", "--yes"]);
    let all = text(&failed);
    assert_eq!(failed.status.code(), Some(1), "{all}");
    assert!(
        all.contains("Rollout halted in wave `canary`: 1 of 1 client(s) failed"),
        "{all}"
    );
    assert!(
        all.contains("early (3 clients): c02, c03, c04")
            && all.contains("rest (8 clients): c05, c06, c07, c08, c09, c10, c11, c12"),
        "the waves not started and their clients:\n{all}"
    );
    // Untouched: no client but the canary was even tried, and none recorded the migration.
    for slug in &SLUGS[1..] {
        assert!(
            !all.contains(&format!("{slug}: apply 1 migration …")),
            "{slug} was started:\n{all}"
        );
        assert!(!has_probe(&w, slug).await, "{slug} got the migration");
    }
    assert!(
        !has_probe(&w, "c01").await,
        "the failed migration left no history row"
    );

    // --wave refuses to skip a wave that is behind.
    let skip = w.run(&["apply", "--yes", "--wave", "rest"]);
    assert_eq!(skip.status.code(), Some(1), "{}", text(&skip));
    assert!(
        text(&skip).contains("the earlier waves are not converged: c01 (canary)"),
        "{}",
        text(&skip)
    );

    // The canary is fixed; `early` now has a manual gate: apply stops before it, exit 0.
    w.db("intelli-c01")
        .await
        .batch_execute("drop table public.wave_probe")
        .await
        .expect("fix the canary");
    write_fleet(&w, "manual");
    let (gated, md, json) = apply_with_summaries(&mut w);
    assert!(gated.status.success(), "{}", text(&gated));
    let gated = String::from_utf8_lossy(&gated.stdout).into_owned();
    assert!(
        gated.contains("Rollout stopped before wave `early` (gate: manual). To continue: intelli apply --through early"),
        "{gated}"
    );
    // The summary files say it too.
    let md = std::fs::read_to_string(&md).expect("summary markdown");
    assert!(
        md.contains("Waves run: `canary`.")
            && md.contains("**Stopped before wave `early`** (gate: manual). To continue: `intelli apply --through early`")
            && md.contains("| `early` | 3: `c02`, `c03`, `c04` |"),
        "{md}"
    );
    let json = summary_json(&json);
    assert_eq!(
        json["rollout"]["halt"],
        serde_json::json!({"kind": "manual_gate", "wave": "early"}),
        "{json:#}"
    );
    assert_eq!(json["rollout"]["waves_ran"], serde_json::json!(["canary"]));
    let not_started: Vec<&str> = json["rollout"]["waves_not_started"]
        .as_array()
        .map(|ws| ws.iter().filter_map(|w| w["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(not_started, ["early", "rest"], "{json:#}");
    assert!(has_probe(&w, "c01").await, "the canary converged");
    for slug in &SLUGS[1..] {
        assert!(!has_probe(&w, slug).await, "{slug} passed the manual gate");
    }

    // --through early approves the gate; the rest follows (its gate is auto).
    let through = w.run_ok(&["apply", "--yes", "--through", "early"]);
    assert!(
        through.contains("Apply complete: 11 client(s)") && through.contains("0 failed"),
        "{through}"
    );
    for slug in SLUGS {
        assert!(has_probe(&w, slug).await, "{slug} converged");
    }
    let clean = w.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(clean.status.code(), Some(0), "{}", text(&clean));

    // The gate reads the project's health: services that do not answer fail the canary.
    std::fs::write(
        w.root().join("migrations/20260602000000_after_probe.sql"),
        "create table public.after_probe (id int);\n",
    )
    .expect("migration");
    w.sim.set_faults(vec![FaultRule {
        vendor: Some(Vendor::Supabase),
        method: None,
        path: "/v1/projects/*/health".into(),
        probability: 1.0,
        kind: FaultKind::Status(503),
        times: None,
    }]);
    let unhealthy = w.run(&["apply", "--yes"]);
    w.sim.set_faults(Vec::new());
    let all = text(&unhealthy);
    assert_eq!(unhealthy.status.code(), Some(1), "{all}");
    let row = all.lines().find(|l| l.starts_with("c01 ")).unwrap_or("");
    assert!(
        row.contains("FAILED") && row.contains("health gate"),
        "{row}\n{all}"
    );
    assert!(all.contains("Rollout halted in wave `canary`"), "{all}");
    w.assert_no_secrets(&[]);
}

/// A wave whose failures exceed its budget halts at once: with `parallel: 1` its clients run
/// one after another, the first fails, and the two behind it start no step (they are reported
/// stopped, not failed); the summary files carry the halt. The next apply resumes them.
#[tokio::test(flavor = "multi_thread")]
async fn a_wave_starts_no_new_step_once_its_budget_is_exceeded() {
    let mut w = World::new().await;
    let slugs = ["c01", "c02", "c03", "c04"];
    write_fleet_with(
        &w,
        &slugs,
        "  - {name: first, clients: [c01, c02, c03], max_failures: 0, parallel: 1}\n",
    );
    let out = w.run_ok(&["apply", "--yes"]);
    assert!(out.contains("0 failed"), "{out}");

    // The probe migration fails on c01, the first of `first` to take its one work slot.
    add_probe_failing_on(&w, "c01").await;
    let (halted, md, json) = apply_with_summaries(&mut w);
    let all = text(&halted);
    assert_eq!(
        halted.status.code(),
        Some(1),
        "a budget halt exits 1:\n{all}"
    );
    assert!(
        all.contains(
            "Rollout halted in wave `first`: 1 of 3 client(s) failed, more than its budget (max_failures 0): c01. \
             Stopped when the wave halted (no further step started; the next apply resumes them): c02, c03."
        ) && all.contains("rest (1 client): c04"),
        "{all}"
    );
    assert!(
        all.contains(
            "Apply complete: 3 client(s), 0 action(s) done, 1 failed, 0 deferred, 2 stopped."
        ),
        "{all}"
    );
    for slug in ["c02", "c03"] {
        let row = all
            .lines()
            .find(|l| l.starts_with(&format!("{slug} ")))
            .unwrap_or_else(|| panic!("{slug}'s row:\n{all}"));
        assert!(
            row.contains("STOPPED")
                && row.contains("apply 1 migration: not started: the wave halted"),
            "{row}"
        );
        assert!(
            all.contains(&format!("{slug}: apply 1 migration STOPPED")),
            "{all}"
        );
        assert!(
            !all.contains(&format!("{slug}: apply 1 migration done")),
            "{all}"
        );
    }
    // From the databases: no client but c01 got as far as the migration (c01's failed and left
    // no history row).
    for slug in slugs {
        assert!(!has_probe(&w, slug).await, "{slug} recorded the migration");
    }
    let wave_probe = |slug: &'static str| {
        let w = &w;
        async move {
            let n: i64 = w
                .db(&format!("intelli-{slug}"))
                .await
                .query_one(
                    "select count(*) from pg_tables where schemaname = 'public' and tablename = 'wave_probe'",
                    &[],
                )
                .await
                .expect("tables")
                .get(0);
            n
        }
    };
    assert_eq!(wave_probe("c02").await, 0, "c02 ran the migration");
    assert_eq!(wave_probe("c03").await, 0, "c03 ran the migration");

    // The summary files carry the halt; stopped clients are not failures.
    let md = std::fs::read_to_string(&md).expect("summary markdown");
    assert!(
        md.contains("**Halted in wave `first`**: 1 of 3 client(s) failed")
            && md.contains("resumes them): `c02`, `c03`.")
            && md.contains("| `rest` | 1: `c04` |")
            && md.contains("| `c02` | **STOPPED** | 0 |"),
        "{md}"
    );
    let json = summary_json(&json);
    assert_eq!(
        (&json["failed"], &json["stopped"]),
        (&1.into(), &2.into()),
        "{json:#}"
    );
    assert_eq!(
        json["rollout"]["halt"],
        serde_json::json!({
            "kind": "budget",
            "wave": "first",
            "failed": ["c01"],
            "stopped": ["c02", "c03"],
            "clients": 3,
            "max_failures": {"count": 0},
        }),
        "{json:#}"
    );
    assert_eq!(json["rollout"]["waves_ran"], serde_json::json!(["first"]));
    assert_eq!(
        json["rollout"]["waves_not_started"][0]["clients"],
        serde_json::json!(["c04"])
    );
    let results: Vec<(&str, &str)> = json["outcomes"]
        .as_array()
        .map(|os| {
            os.iter()
                .filter_map(|o| Some((o["client"].as_str()?, o["result"].as_str()?)))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        results,
        [("c01", "failed"), ("c02", "stopped"), ("c03", "stopped")]
    );

    // c01 fixed: the next apply resumes every client.
    w.db("intelli-c01")
        .await
        .batch_execute("drop table public.wave_probe")
        .await
        .expect("fix c01");
    let out = w.run_ok(&["apply", "--yes"]);
    assert!(
        out.contains("0 failed") && !out.contains("Rollout halted"),
        "{out}"
    );
    for slug in slugs {
        assert!(has_probe(&w, slug).await, "{slug} converged");
    }
    w.assert_no_secrets(&[]);
}

/// Deployments of each Pages project, by project name.
fn deployments(w: &World) -> std::collections::BTreeMap<String, usize> {
    let dump = w.sim.cloudflare().dump();
    dump["projects"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    (
                        p["name"].as_str().unwrap_or("").to_string(),
                        p["deployments"].as_array().map_or(0, Vec::len),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Fetch `path` of the site served for `domain` (the simulator serves by `Host`).
async fn fetch(w: &World, domain: &str, path: &str) -> (u16, String) {
    let resp = reqwest::Client::new()
        .get(format!("{}{path}", w.sim.base_url()))
        .header("host", domain)
        .send()
        .await
        .expect("fetch site");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

/// Six clients with sites: canary w01, early w02–w04 (budget 1), rest w05–w06; an HTTP check
/// that each site serves `/health-<slug>.txt` saying `ok <slug>`, and an SQL check that the
/// seed ran. The frontend's `public/` has the file of every client but those in `missing`.
fn write_sites_fleet(w: &World, missing: &[&str]) {
    let fleet = w.root().join("fleet");
    for old in ["acme", "globex", "initech"] {
        let _ = std::fs::remove_file(fleet.join(format!("{old}.yaml")));
    }
    let public = w.root().join("examples/web/public");
    for n in 1..=6 {
        let slug = format!("w0{n}");
        std::fs::write(
            fleet.join(format!("{slug}.yaml")),
            format!("client: {slug}\n"),
        )
        .expect("client file");
        let file = public.join(format!("health-{slug}.txt"));
        if missing.contains(&slug.as_str()) {
            let _ = std::fs::remove_file(&file);
        } else {
            std::fs::write(&file, format!("ok {slug}\n")).expect("health file");
        }
    }
    let base = std::fs::read_to_string(common::repo_root().join("fleet/fleet.yaml"))
        .expect("example fleet.yaml");
    let base = base.split("\nrollout:").next().unwrap_or(&base).to_string();
    std::fs::write(
        fleet.join("fleet.yaml"),
        format!(
            "{base}\nrollout:\n  - {{name: canary, clients: [w01]}}\n  - {{name: early, clients: [w02, w03, w04], max_failures: 1}}\n\
             checks:\n  - name: health\n    http: {{path: '/health-{{client}}.txt', body_contains: 'ok {{client}}'}}\n\
             \x20 - name: seeded\n    sql: {{query: 'select exists (select 1 from companies)'}}\n"
        ),
    )
    .expect("fleet.yaml");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_check_counts_against_the_wave_budget() {
    let mut w = World::with_frontend().await;
    write_sites_fleet(&w, &["w03"]);
    let plan = w.run_ok(&["plan"]);
    assert!(
        plan.contains("health: GET https://<domain>/health-{client}.txt → 200")
            && plan.contains("seeded: SQL (read-only) returns true"),
        "plan lists the checks:\n{plan}"
    );

    // One failing check in `early` (budget 1): the wave passes and `rest` goes on.
    let out = w.run(&["apply", "--yes"]);
    let all = text(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed check is a failure:\n{all}"
    );
    assert!(!all.contains("Rollout halted"), "{all}");
    let row = all
        .lines()
        .find(|l| l.starts_with("w03 "))
        .unwrap_or_else(|| panic!("w03's row:\n{all}"));
    assert!(
        row.contains("FAILED")
            && row.contains("check health")
            && row.contains("the body")
            && row.contains("does not contain \"ok w03\""),
        "the check's name and what it observed: {row}"
    );
    for slug in ["w01", "w02", "w04", "w05", "w06"] {
        let row = all
            .lines()
            .find(|l| l.starts_with(&format!("{slug} ")))
            .unwrap_or("");
        assert!(row.contains(" ok "), "{slug}: {row}\n{all}");
        let (status, body) = fetch(
            &w,
            &format!("{slug}.intelliservice.io"),
            &format!("/health-{slug}.txt"),
        )
        .await;
        assert_eq!((status, body.trim()), (200, format!("ok {slug}").as_str()));
    }

    // Two failing in `early`: the rollout halts there and `rest` keeps its old deployment.
    write_sites_fleet(&w, &["w02", "w03"]);
    let before = deployments(&w);
    let out = w.run(&["apply", "--yes"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("Rollout halted in wave `early`: 2 of 3 client(s) failed")
            && all.contains("rest (2 clients): w05, w06"),
        "{all}"
    );
    let after = deployments(&w);
    for p in ["intelli-w05", "intelli-w06"] {
        assert_eq!(
            after.get(p),
            before.get(p),
            "{p} was deployed after the halt"
        );
    }
    assert_eq!(
        after.get("intelli-w01").copied(),
        before.get("intelli-w01").map(|n| n + 1),
        "the canary got the new build"
    );
    // w05 still serves the old build, which had w02's file.
    let (_, body) = fetch(&w, "w05.intelliservice.io", "/health-w02.txt").await;
    assert_eq!(body.trim(), "ok w02");
    w.assert_no_secrets(&[]);
}

/// SQL checks on a real database, the direct-connection way: one row of one `true` passes;
/// anything else fails with what was seen, and the query cannot write.
#[tokio::test(flavor = "multi_thread")]
async fn sql_checks_pass_only_on_one_true_and_cannot_write() {
    use intelli::fleet::model::{CheckSpec, SqlCheck};
    let db = common::TempDb::new("intelli_checks").await;
    let sql = intelli::migrate::exec::SqlExecutor::Direct {
        url_template: db.url.clone(),
    };
    let probe = intelli::checks::Probe::new(&sql, false, None).expect("probe");
    let fleet = intelli::fleet::Fleet::load(&common::repo_root().join("fleet")).expect("fleet");
    let client = &fleet.clients["acme"];
    let check = |query: &str| CheckSpec {
        name: "q".into(),
        http: None,
        sql: Some(SqlCheck {
            query: query.into(),
        }),
    };
    let run = |query: &'static str| {
        let checks = vec![check(query)];
        let probe = &probe;
        async move {
            intelli::checks::run(probe, &checks, client, Some("ignored"))
                .await
                .map_err(|f| f.observed)
        }
    };
    assert_eq!(run("select true").await, Ok(()));
    assert_eq!(
        run("select 1 = 2").await,
        Err("returned f (expected true)".into())
    );
    assert_eq!(
        run("select true where false").await,
        Err("0 rows (expected one row with true)".into())
    );
    assert_eq!(
        run("select true as a, true as b").await,
        Err("2 columns (expected one column with true)".into())
    );
    let write = run("create table public.written (id int); select true").await;
    assert!(
        write
            .as_ref()
            .is_err_and(|e| e.contains("read-only transaction")),
        "{write:?}"
    );
    let n: i64 = db
        .connect()
        .await
        .query_one(
            "select count(*) from pg_tables where tablename = 'written'",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(n, 0, "a check wrote to the database");
    // An HTTP check is not run when the site side is not part of the run.
    let http = CheckSpec {
        name: "home".into(),
        http: Some(intelli::fleet::model::HttpCheck {
            path: "/".into(),
            status: 200,
            body_contains: None,
            timeout_secs: 1,
        }),
        sql: None,
    };
    assert_eq!(
        intelli::checks::run(&probe, &[http], client, None).await,
        Ok(())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_shards_a_canary_in_one_shard_holds_the_others_back() {
    let mut w = World::new().await;
    let slugs = ["c01", "c02", "c03", "c04", "c05", "c06"];
    write_fleet_with(&w, &slugs, "  - name: canary\n    labels: {tier: canary}\n");
    let canary_shard = intelli::shard::shard_of("c01", 2);
    let other_shard = 3 - canary_shard;
    let others: Vec<&str> = slugs
        .iter()
        .copied()
        .filter(|s| intelli::shard::shard_of(s, 2) == other_shard)
        .collect();
    assert!(
        !others.is_empty(),
        "the test needs clients outside the canary's shard"
    );
    let run = |w: &World, shard: u32, wait_secs: &str| {
        w.command()
            .env("INTELLI_SHARD_WAIT_SECS", wait_secs)
            .args(["apply", "--yes", "--shard", &format!("{shard}/2")])
            .output()
            .expect("run intelli")
    };

    // The other shard first: the canary (in the canary's shard) has not rolled out, so its
    // `rest` does not start.
    let held = run(&w, other_shard, "0");
    let log = text(&held);
    assert_eq!(held.status.code(), Some(1), "{log}");
    assert!(
        log.contains(
            "Rollout halted before wave `rest`: wave `canary` is behind in other shards: c01."
        ),
        "{log}"
    );
    let names: Vec<String> = w
        .sim
        .supabase()
        .projects()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert!(names.is_empty(), "nothing was created: {names:?}");

    // The canary's shard rolls out its own waves; then the other shard goes on.
    let canary = run(&w, canary_shard, "0");
    assert!(canary.status.success(), "{}", text(&canary));
    let released = run(&w, other_shard, "60");
    let log = text(&released);
    assert!(released.status.success(), "{log}");
    assert!(
        log.contains("Wave rest: the earlier waves are converged and healthy in the other shards"),
        "{log}"
    );
    for slug in others {
        w.project_ref(&format!("intelli-{slug}"));
    }
    let clean = w.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(clean.status.code(), Some(0), "{}", text(&clean));
    w.sim.shutdown().await.expect("shutdown");
}
