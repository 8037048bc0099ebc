//! Apply by waves end to end: the real binary against the simulator (real PostgreSQL per
//! project): a canary that fails halts the rollout with every other client untouched, a manual
//! gate stops apply until `--through`, `--wave` refuses to skip a wave that is behind.

mod common;

use common::world::World;

/// Twelve clients: c01 is the canary (by label), c02–c04 are `early` (by name, budget 1), the
/// other eight are the implicit `rest`.
const SLUGS: [&str; 12] = [
    "c01", "c02", "c03", "c04", "c05", "c06", "c07", "c08", "c09", "c10", "c11", "c12",
];

fn write_fleet(w: &World, early_gate: &str) {
    let fleet = w.root().join("fleet");
    for old in ["acme", "globex", "initech"] {
        let _ = std::fs::remove_file(fleet.join(format!("{old}.yaml")));
    }
    for slug in SLUGS {
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
        format!(
            "{base}\nrollout:\n  - name: canary\n    labels: {{tier: canary}}\n  - name: early\n    clients: [c02, c03, c04]\n    max_failures: 1\n    gate: {early_gate}\n"
        ),
    )
    .expect("fleet.yaml");
}

const PROBE_VERSION: &str = "20260601000000";

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

    // A migration that fails on the canary only: its database already has the table.
    w.db("intelli-c01")
        .await
        .batch_execute("create table public.wave_probe (id int)")
        .await
        .expect("prepare the canary");
    std::fs::write(
        w.root()
            .join(format!("migrations/{PROBE_VERSION}_wave_probe.sql")),
        "create table public.wave_probe (id int);\n",
    )
    .expect("migration");
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
    let gated = w.run_ok(&["apply", "--yes"]);
    assert!(
        gated.contains("Rollout stopped before wave `early` (gate: manual). To continue: intelli apply --through early"),
        "{gated}"
    );
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
    w.assert_no_secrets(&[]);
}
