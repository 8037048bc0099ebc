//! `intelli plan` / `intelli apply` on the Supabase side, end to end: the real binary, talking
//! HTTP to the simulator, whose projects are real PostgreSQL databases.

mod common;

use intelli::sim::server::{FaultKind, FaultRule, Vendor};

use common::world::World;

fn count(stdout: &str, needle: &str) -> usize {
    stdout.matches(needle).count()
}

#[tokio::test(flavor = "multi_thread")]
async fn example_fleet_from_empty_then_a_new_migration_rolls_out() {
    let mut w = World::new().await;
    let out = w.run_ok(&["apply", "--yes"]);
    assert!(out.contains("Apply complete: 3 client(s)"), "{out}");
    assert!(out.contains("0 failed"), "{out}");

    for (project, slug, domain, extra_bucket) in [
        ("intelli-acme", "acme", "acme.intelliservice.io", None),
        (
            "intelli-globex",
            "globex",
            "globex.intelliservice.io",
            Some("site-surveys"),
        ),
        (
            "intelli-initech",
            "initech",
            "service.initech.intelliservice.io",
            None,
        ),
    ] {
        let db = w.db(project).await;
        let applied: i64 = db
            .query_one("select count(*) from supabase_migrations.schema_migrations where statements is not null and name <> ''", &[])
            .await
            .expect("history")
            .get(0);
        assert_eq!(
            applied, 7,
            "{project}: every migration recorded the CLI's way"
        );
        let row = db
            .query_one("select c.slug, s.domain, s.site_url from companies c join company_settings s on s.company_id = c.id", &[])
            .await
            .expect("seeded company");
        assert_eq!(row.get::<_, String>(0), slug);
        assert_eq!(row.get::<_, String>(1), domain);
        assert_eq!(row.get::<_, String>(2), format!("https://{domain}"));
        let seeds: i64 = db
            .query_one("select count(*) from supabase_migrations.seed_files where path = 'migrations/seed/client.sql'", &[])
            .await
            .expect("seed row")
            .get(0);
        assert_eq!(seeds, 1);
        let buckets: Vec<(String, bool, Option<i64>)> = db
            .query(
                "select id, public, file_size_limit from storage.buckets order by id",
                &[],
            )
            .await
            .expect("buckets")
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let mut want = vec!["estimate-documents", "ticket-photos"];
        want.extend(extra_bucket);
        want.sort();
        assert_eq!(
            buckets.iter().map(|b| b.0.as_str()).collect::<Vec<_>>(),
            want,
            "{project}"
        );
        let photos = buckets
            .iter()
            .find(|b| b.0 == "ticket-photos")
            .expect("photos bucket");
        assert_eq!(
            photos.2,
            Some(10 * 1024 * 1024),
            "fleet settings win over the migration's insert"
        );
        let auth = w
            .sim
            .supabase()
            .project(&w.project_ref(project))
            .expect("project")
            .auth_config;
        assert_eq!(auth["site_url"], format!("https://{domain}"));
        assert!(
            auth["uri_allow_list"]
                .as_str()
                .unwrap_or("")
                .contains(&format!("https://{domain}/**")),
            "{auth:?}"
        );
    }

    let clean = w.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(
        clean.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&clean.stdout)
    );
    assert!(String::from_utf8_lossy(&clean.stdout).contains("No changes"));

    // A new migration in the master mold reaches every client.
    std::fs::write(
        w.root().join("migrations/20250401120000_ticket_priority_index.sql"),
        "create index if not exists tickets_priority_idx on public.tickets (company_id, priority);\n",
    )
    .expect("new migration");
    let planned = w.run(&["plan", "--detailed-exitcode"]);
    let text = String::from_utf8_lossy(&planned.stdout).into_owned();
    assert_eq!(planned.status.code(), Some(2), "{text}");
    // The rollout reads as one change: one section for the three clients, not three.
    assert!(
        text.contains("~ 3 clients: apply 1 migration `20250401120000`"),
        "{text}"
    );
    assert!(text.contains("clients: acme globex initech"), "{text}");
    assert_eq!(
        count(&text, "apply 1 migration"),
        2,
        "title and action: {text}"
    );
    w.run_ok(&["apply", "--yes"]);
    let clean = w.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(
        clean.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&clean.stdout)
    );

    w.assert_no_secrets(&[]);
    w.sim.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn drift_in_one_client_does_not_stop_the_others() {
    let mut w = World::new().await;
    w.run_ok(&["apply", "--yes", "--only", "acme"]);
    // Edit a migration acme has applied; globex and initech have applied nothing yet.
    let file = w.root().join("migrations/20250122143000_tickets.sql");
    let mut sql = std::fs::read_to_string(&file).expect("read");
    sql.push_str("\ncomment on table public.tickets is 'edited after the fact';\n");
    std::fs::write(&file, sql).expect("edit");

    let out = w.run(&["plan"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "errors make plan fail:\n{stdout}"
    );
    assert!(
        stdout.contains("migration 20250122143000 was applied, but")
            && stdout.contains("20250122143000_tickets.sql has changed"),
        "{stdout}"
    );
    assert!(stdout.contains("! acme"), "acme is in error:\n{stdout}");
    assert!(
        stdout.contains("~ globex") && stdout.contains("~ initech"),
        "the others still plan:\n{stdout}"
    );
    assert!(stdout.contains("1 client with errors"), "{stdout}");
    w.sim.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn history_written_by_the_supabase_cli_is_recognised() {
    let mut w = World::new().await;
    w.run_ok(&["apply", "--yes", "--only", "initech"]);
    let db = w.db("intelli-initech").await;
    // Rewrite the history as another tool might have: same SQL, split differently (one element
    // holding the whole file with its comments), inserted with the CLI's own statement.
    let files = intelli::migrate::discover(&w.root().join("migrations")).expect("files");
    db.batch_execute("delete from supabase_migrations.schema_migrations")
        .await
        .expect("clear");
    for f in &files {
        db.execute(
            "INSERT INTO supabase_migrations.schema_migrations(version, name, statements) VALUES($1, $2, $3)",
            &[&f.version, &f.name, &vec![f.sql.clone()]],
        )
        .await
        .expect("cli-style insert");
    }
    let out = w.run(&["plan", "--only", "initech", "--detailed-exitcode"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "a database migrated by the CLI is current:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    w.sim.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_create_answer_never_makes_a_second_project_and_faults_converge() {
    let mut w = World::new().await;
    w.sim.set_faults(vec![
        // Every create commits, then the connection is reset before the answer.
        FaultRule {
            vendor: Some(Vendor::Supabase),
            method: Some("POST".into()),
            path: "/v1/projects".into(),
            probability: 1.0,
            kind: FaultKind::CommitThenDrop,
            times: Some(3),
        },
        FaultRule {
            vendor: Some(Vendor::Supabase),
            method: Some("GET".into()),
            path: "/v1/projects/*".into(),
            probability: 0.3,
            kind: FaultKind::Status(503),
            times: Some(10),
        },
        FaultRule {
            vendor: Some(Vendor::Supabase),
            method: Some("GET".into()),
            path: "/v1/organizations/*".into(),
            probability: 0.3,
            kind: FaultKind::RateLimited,
            times: Some(5),
        },
        FaultRule {
            vendor: Some(Vendor::Storage),
            method: None,
            path: "*".into(),
            probability: 0.2,
            kind: FaultKind::Status(502),
            times: Some(3),
        },
    ]);
    let out = w.run(&["apply", "--yes"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    // Whatever the faults did to this run, a second one converges and nothing is duplicated.
    w.sim.set_faults(Vec::new());
    w.run_ok(&["apply", "--yes"]);
    for name in ["intelli-acme", "intelli-globex", "intelli-initech"] {
        let _ = w.project_ref(name); // asserts exactly one
    }
    assert!(
        stderr.contains("looking it up before trying again"),
        "the lost answers were noticed and handled by looking up:\n{stderr}"
    );
    let stats = w.sim.stats();
    assert_eq!(
        stats.faults_injected.get("commit_then_drop").copied(),
        Some(3),
        "{:?}",
        stats.faults_injected
    );
    let clean = w.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(
        clean.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&clean.stdout)
    );
    w.assert_no_secrets(&[]);
    w.sim.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_saved_plan_is_applied_exactly_or_refused_when_stale() {
    let mut w = World::new().await;
    let plan_file = w.root().join("plan.json");
    let plan_arg = plan_file.to_string_lossy().into_owned();
    w.run_ok(&["plan", "--only", "acme", "--out", &plan_arg]);
    // Someone brings acme to the plan's target meanwhile (a rollout applied part of a plan):
    // the saved plan is accepted with nothing left to do, never a second project.
    w.run_ok(&["apply", "--yes", "--only", "acme"]);
    let out = w.run_ok(&["apply", &plan_arg, "--yes"]);
    assert!(out.contains("Nothing to apply."), "{out}");
    assert_eq!(
        w.sim
            .supabase()
            .projects()
            .iter()
            .filter(|p| p.name == "intelli-acme")
            .count(),
        1
    );
    // The world changes otherwise behind our back: the saved plan is stale.
    let db = w.db("intelli-acme").await;
    db.batch_execute("delete from supabase_migrations.seed_files")
        .await
        .expect("forget the seed");
    w.run_ok(&["plan", "--only", "acme", "--out", &plan_arg]);
    db.batch_execute(
        "delete from supabase_migrations.schema_migrations where version = '20250301100000'",
    )
    .await
    .expect("forget a migration");
    let out = w.run(&["apply", &plan_arg, "--yes"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the saved plan is stale") && stderr.contains("acme:"),
        "{stderr}"
    );

    // A fresh saved plan applies; a change to the fleet files makes it stale too.
    w.run_ok(&["plan", "--only", "globex", "--out", &plan_arg]);
    let fleet_file = w.root().join("fleet/globex.yaml");
    let text = std::fs::read_to_string(&fleet_file).expect("read");
    std::fs::write(
        &fleet_file,
        text.replace("Globex Facilities", "Globex Facilities Ltd"),
    )
    .expect("write");
    let out = w.run(&["apply", &plan_arg, "--yes"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("fleet files, migrations or seed changed")
    );
    std::fs::write(&fleet_file, text).expect("restore");
    let out = w.run_ok(&["apply", &plan_arg, "--yes"]);
    assert!(out.contains("Apply complete: 1 client(s)"), "{out}");
    w.assert_no_secrets(&[plan_file]);
    w.sim.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn pending_migrations_go_in_one_transaction_and_a_failing_one_is_found_file_by_file() {
    let mut w = World::new().await;
    // A new client's whole history (7 files) in one request.
    let first = w.run(&["apply", "--yes", "--only", "acme"]);
    let log = String::from_utf8_lossy(&first.stderr).into_owned();
    assert!(first.status.success(), "{log}");
    assert_eq!(count(&log, "(7 in one transaction, "), 7, "{log}");
    assert_eq!(count(&log, "one by one"), 0, "{log}");
    // The new project's first look asks which history tables exist: no query fails.
    let failed_queries: u64 = w
        .sim
        .stats()
        .requests
        .iter()
        .filter(|r| r.route.ends_with("/database/query") && r.status >= 400)
        .map(|r| r.count)
        .sum();
    assert_eq!(failed_queries, 0, "{log}");

    let dir = w.root().join("migrations");
    let write = |name: &str, sql: &str| std::fs::write(dir.join(name), sql).expect("migration");
    write(
        "20250401090000_a.sql",
        "create table public.batch_a (id int);\n",
    );
    // Fails when it runs: division by zero (SQLSTATE 22012).
    write("20250401100000_b.sql", "select 1 / 0;\n");
    write(
        "20250401110000_c.sql",
        "create table public.batch_c (id int);\n",
    );
    let failed = w.run(&["apply", "--yes", "--only", "acme"]);
    let log = String::from_utf8_lossy(&failed.stderr).into_owned();
    assert_eq!(failed.status.code(), Some(1), "{log}");
    assert!(
        log.contains(
            "3 migrations in one transaction did not apply (22012); applying them one by one"
        ),
        "{log}"
    );
    assert!(
        log.contains("migration 20250401090000_a applied ("),
        "{log}"
    );
    assert!(
        log.contains("20250401100000_b.sql"),
        "the failing file is named: {log}"
    );
    let db = w.db("intelli-acme").await;
    let versions: Vec<String> = db
        .query(
            "select version from supabase_migrations.schema_migrations where version > '20250401' order by version",
            &[],
        )
        .await
        .expect("history")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        versions,
        ["20250401090000"],
        "a applied, b failed, c not run"
    );
    let c_exists: bool = db
        .query_one("select to_regclass('public.batch_c') is not null", &[])
        .await
        .expect("regclass")
        .get(0);
    assert!(!c_exists, "nothing of the failed transaction stayed");

    // Fixed (b was never applied, so editing it is allowed): b and c go together.
    write("20250401100000_b.sql", "select 1;\n");
    let fixed = w.run(&["apply", "--yes", "--only", "acme"]);
    let log = String::from_utf8_lossy(&fixed.stderr).into_owned();
    assert!(fixed.status.success(), "{log}");
    assert_eq!(count(&log, "(2 in one transaction, "), 2, "{log}");
    let clean = w.run(&["plan", "--only", "acme", "--detailed-exitcode"]);
    assert_eq!(
        clean.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&clean.stdout)
    );
    w.sim.shutdown().await.expect("shutdown");
}

/// A client whose request waits out a vendor's 429 lends its work slot meanwhile: with one slot
/// and two clients, the other client's step runs during the wait instead of after it.
#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limit_wait_lends_the_work_slot_to_another_client() {
    let mut w = World::configured(|c| c.fault_retry_after_ms = Some(3_000)).await;
    w.run_ok(&["apply", "--yes", "--only", "acme,globex"]);
    // A bucket setting every client must update (one Storage request each).
    let fleet = w.root().join("fleet/fleet.yaml");
    let text = std::fs::read_to_string(&fleet).expect("fleet.yaml");
    std::fs::write(
        &fleet,
        text.replacen("file_size_limit: 10485760", "file_size_limit: 12582912", 1),
    )
    .expect("fleet.yaml");
    // The first bucket update (whoever sends it) is refused with a 3 s wait.
    w.sim.set_faults(vec![FaultRule {
        vendor: Some(Vendor::Storage),
        method: Some("PUT".into()),
        path: "*/storage/v1/bucket/*".into(),
        probability: 1.0,
        kind: FaultKind::RateLimited,
        times: Some(1),
    }]);
    let out = w.run(&[
        "apply",
        "--yes",
        "--only",
        "acme,globex",
        "--parallelism",
        "1",
        "--log-format",
        "json",
    ]);
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{log}");
    let events: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    // Each client's bucket update: how long it took, and the order the clients finished in.
    let update = |client: &str| {
        events
            .iter()
            .find(|e| {
                e["client"] == client
                    && e["phase"] == "done"
                    && e["action"]
                        .as_str()
                        .is_some_and(|a| a.starts_with("update bucket"))
            })
            .and_then(|e| e["duration_ms"].as_u64())
            .unwrap_or_else(|| panic!("{client} updated its bucket: {log}"))
    };
    let finished: Vec<&str> = events
        .iter()
        .filter(|e| e["phase"] == "client")
        .filter_map(|e| e["client"].as_str())
        .collect();
    let (waited, other) = if update("acme") >= 3_000 {
        ("acme", "globex")
    } else {
        ("globex", "acme")
    };
    assert!(
        update(waited) >= 3_000,
        "one client waited out the 429: {log}"
    );
    assert!(update(other) < 3_000, "{log}");
    assert_eq!(
        finished,
        [other, waited],
        "the other client worked while the first one waited: {log}"
    );
    w.sim.shutdown().await.expect("shutdown");
}
