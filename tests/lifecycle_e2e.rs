//! Client lifecycle through the binary: pause and restore, declared deletion, orphans, the
//! direct-PostgreSQL path, and two appliers racing on one database.

mod common;

use common::world::World;

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn set_state(w: &World, client: &str, state: &str) {
    let path = w.root().join(format!("fleet/{client}.yaml"));
    let text = std::fs::read_to_string(&path).expect("read client file");
    let kept: Vec<&str> = text.lines().filter(|l| !l.starts_with("state:")).collect();
    std::fs::write(&path, format!("{}\nstate: {state}\n", kept.join("\n")))
        .expect("write client file");
}

#[tokio::test(flavor = "multi_thread")]
async fn pause_restore_delete_and_orphans() {
    let mut w = World::new().await;
    w.run_ok(&["apply", "--yes", "--only", "acme,globex"]);
    let acme = w.project_ref("intelli-acme");

    set_state(&w, "acme", "paused");
    let plan = w.run_ok(&["plan", "--only", "acme"]);
    assert!(plan.contains("pause the project"), "{plan}");
    w.run_ok(&["apply", "--yes", "--only", "acme"]);
    let status = w.sim.supabase().project(&acme).expect("project").status;
    assert!(
        matches!(status.as_str(), "INACTIVE" | "PAUSING"),
        "paused, got {status}"
    );
    let clean = w.run(&["plan", "--only", "acme", "--detailed-exitcode"]);
    assert_eq!(clean.status.code(), Some(0), "{}", stdout(&clean));

    set_state(&w, "acme", "active");
    let plan = w.run_ok(&["plan", "--only", "acme"]);
    assert!(plan.contains("restore the paused project"), "{plan}");
    w.run_ok(&["apply", "--yes", "--only", "acme"]);
    assert_eq!(
        w.sim.supabase().project(&acme).expect("project").status,
        "ACTIVE_HEALTHY"
    );
    let clean = w.run(&["plan", "--only", "acme", "--detailed-exitcode"]);
    assert_eq!(clean.status.code(), Some(0), "{}", stdout(&clean));

    // Declared deletion needs the flag; without it nothing is destroyed and the plan says what would be.
    set_state(&w, "globex", "deleted");
    let refused = w.run(&["plan", "--only", "globex"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stdout(&refused).contains("re-run with --allow-delete"),
        "{}",
        stdout(&refused)
    );
    let refused = w.run(&["apply", "--yes", "--only", "globex"]);
    assert_eq!(refused.status.code(), Some(1));
    assert_eq!(
        w.sim
            .supabase()
            .projects()
            .iter()
            .filter(|p| p.name == "intelli-globex")
            .count(),
        1
    );
    let plan = w.run_ok(&["plan", "--only", "globex", "--allow-delete"]);
    assert!(plan.contains("DELETE project"), "{plan}");
    w.run_ok(&["apply", "--yes", "--only", "globex", "--allow-delete"]);
    // The project is on its way out (the vendor's GOING_DOWN, then REMOVED): none is live.
    assert_eq!(
        w.sim
            .supabase()
            .projects()
            .iter()
            .filter(|p| p.name == "intelli-globex")
            .filter(|p| !matches!(p.status.as_str(), "GOING_DOWN" | "REMOVED"))
            .count(),
        0
    );
    // While it goes down, the plan is clean and says so; nothing is created for it.
    let plan = w.run_ok(&["plan", "--only", "globex"]);
    assert!(
        plan.contains("is being deleted and is not this client's"),
        "{plan}"
    );
    assert!(!plan.contains("create project"), "{plan}");

    // The client comes back while its old project is still listed as dying: plan proposes one
    // new project (the dying one is not the client's), apply makes exactly one, and the plan
    // is clean afterwards, still noting the old one.
    set_state(&w, "globex", "active");
    let plan = w.run_ok(&["plan", "--only", "globex"]);
    assert!(plan.contains("create project intelli-globex"), "{plan}");
    assert!(
        plan.contains("is being deleted and is not this client's"),
        "{plan}"
    );
    w.run_ok(&["apply", "--yes", "--only", "globex"]);
    let live = |w: &World| {
        w.sim
            .supabase()
            .projects()
            .into_iter()
            .filter(|p| p.name == "intelli-globex")
            .filter(|p| !matches!(p.status.as_str(), "GOING_DOWN" | "REMOVED"))
            .count()
    };
    assert_eq!(live(&w), 1);
    let clean = w.run(&["plan", "--only", "globex", "--detailed-exitcode"]);
    assert_eq!(clean.status.code(), Some(0), "{}", stdout(&clean));
    w.run_ok(&["apply", "--yes", "--only", "globex"]);
    assert_eq!(live(&w), 1, "a second apply creates nothing");

    // Removing a client file never deletes anything: the project shows up as an orphan.
    std::fs::remove_file(w.root().join("fleet/acme.yaml")).expect("remove client file");
    let plan = w.run_ok(&["plan"]);
    assert!(
        plan.contains(&format!("orphan: project intelli-acme ({acme})")),
        "{plan}"
    );
    let md = w.run_ok(&["plan", "--format", "markdown"]);
    assert!(md.contains("Orphan: `intelli-acme`"), "{md}");
    // A dying project is never an orphan.
    assert_eq!(plan.matches("orphan: project").count(), 1, "{plan}");
    assert!(
        w.sim.supabase().project(&acme).is_some(),
        "the orphan still exists"
    );
    w.sim.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn direct_postgres_path_converges_like_the_api_path() {
    let mut w = World::new().await;
    // Create the project (the direct path needs it to exist to reach its database)...
    w.run_ok(&["apply", "--yes", "--only", "initech"]);
    // ...then add a migration and apply it over a direct connection instead of database/query.
    std::fs::write(
        w.root().join("migrations/20250501000000_direct.sql"),
        "create table public.direct_path_probe (id int primary key);\nalter table public.direct_path_probe enable row level security;\n",
    )
    .expect("migration");
    let r = w.project_ref("intelli-initech");
    let db_url = w.sim.supabase().database_url(&r).expect("db url");
    let template = db_url.replace(&r, "{ref}");
    let before = w.sim.stats();
    let out = assert_cmd::Command::cargo_bin("intelli")
        .expect("binary")
        .current_dir(w.root())
        .env("SUPABASE_ACCESS_TOKEN", w.sim.supabase_token())
        .env("SUPABASE_API_URL", w.sim.supabase_api_url())
        .env(
            "SUPABASE_PROJECT_URL_TEMPLATE",
            w.sim.project_url_template(),
        )
        .env("INTELLI_DATABASE_URL_TEMPLATE", &template)
        .env("INTELLI_SKIP_FRONTEND", "true")
        .env_remove("CLOUDFLARE_API_TOKEN")
        // No Cloudflare credentials, so no lease primitive: the documented way is --no-lock.
        .args(["apply", "--yes", "--only", "initech", "--no-lock"])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = w.sim.stats();
    let queries = |s: &intelli::sim::server::Stats| {
        s.requests
            .iter()
            .filter(|r| r.route.ends_with("/database/query"))
            .map(|r| r.count)
            .sum::<u64>()
    };
    assert_eq!(
        queries(&before),
        queries(&after),
        "no SQL went through the Management API"
    );
    let db = w.db("intelli-initech").await;
    let n: i64 = db
        .query_one("select count(*) from supabase_migrations.schema_migrations where version = '20250501000000'", &[])
        .await
        .expect("history")
        .get(0);
    assert_eq!(n, 1);
    let clean = w.run(&["plan", "--only", "initech", "--detailed-exitcode"]);
    assert_eq!(clean.status.code(), Some(0), "{}", stdout(&clean));
    w.sim.shutdown().await.expect("shutdown");
}

/// Two appliers racing on one database: the advisory lock and the in-transaction check make
/// every migration run exactly once, whichever wins.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_appliers_never_apply_a_migration_twice() {
    use intelli::migrate::exec::SqlExecutor;
    use intelli::migrate::{MigrationFile, sql};

    let db = common::TempDb::new("race").await;
    let mut client = db.connect().await;
    intelli::migrate::run_in_transaction(&mut client, intelli::pg::SUPABASE_BOOTSTRAP)
        .await
        .expect("bootstrap");
    // A migration that fails if it ever runs twice.
    let file = MigrationFile {
        version: "20250101000000".into(),
        name: "counter".into(),
        path: "migrations/20250101000000_counter.sql".into(),
        sql: "create table public.ran_once (x int); insert into public.ran_once values (1); select pg_sleep(0.2);".into(),
    };
    let exec = SqlExecutor::Direct {
        url_template: db.url.clone(),
    };
    let text = sql::apply_migration(&file);
    let runs = (0..4).map(|_| {
        let exec = exec.clone();
        let text = text.clone();
        tokio::spawn(async move { exec.run("unused", &text).await })
    });
    let results = futures::future::join_all(runs).await;
    let mut ok = 0;
    let mut skipped = 0;
    for r in results {
        match r.expect("task") {
            Ok(_) => ok += 1,
            Err(e) if e.already_applied() => skipped += 1,
            Err(e) => panic!("unexpected failure: {e}"),
        }
    }
    assert_eq!((ok, skipped), (1, 3));
    let rows: i64 = client
        .query_one("select count(*) from public.ran_once", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(rows, 1);
}
