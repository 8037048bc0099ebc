//! The frontend's install never blocks the schema (issue 8, part 5): it runs beside the
//! Supabase side, once per apply, is skipped when `node_modules` matches the lockfile, fails
//! only the site actions when it fails, dies with intelli, and a crash during it does not break
//! the next apply. A small frontend with shell install/build commands keeps these fast; the
//! real npm install is covered by the site tests.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::world::World;

const INSTALL: &str = "#!/bin/sh\n\
    echo run >> ../install.count\n\
    if [ -e ../hang ]; then mkdir -p node_modules/half; sleep 600 & echo $! > ../install.pid; wait; fi\n\
    mkdir -p node_modules/ok\n";

/// A world whose frontend is one page, installed by `install` and built by copying it.
async fn world(install: &str) -> World {
    let mut w = World::new().await;
    w.frontend = true;
    let web = w.root().join("examples/web");
    std::fs::write(web.join("index.html"), "<p>version A</p>\n").expect("index.html");
    std::fs::write(web.join("package-lock.json"), "{\"lockfileVersion\": 3}\n").expect("lock");
    std::fs::write(web.join("install.sh"), INSTALL).expect("install.sh");
    let fleet = w.root().join("fleet/fleet.yaml");
    let text = std::fs::read_to_string(&fleet).expect("fleet.yaml");
    let text = text
        .lines()
        .map(|l| {
            if l.starts_with("  install_command:") {
                format!("  install_command: {install:?}")
            } else if l.starts_with("  build_command:") {
                "  build_command: \"mkdir -p {out_dir} && cp index.html {out_dir}/\"".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&fleet, text).expect("fleet.yaml");
    w
}

fn web(w: &World) -> PathBuf {
    w.root().join("examples/web")
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn install_runs(w: &World) -> usize {
    std::fs::read_to_string(w.root().join("examples/install.count"))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

/// Whether a process is gone (or a zombie nobody reaped yet).
fn dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

fn wait_for(path: &Path, limit: Duration) -> String {
    let t = Instant::now();
    loop {
        if let Ok(s) = std::fs::read_to_string(path)
            && !s.trim().is_empty()
        {
            return s;
        }
        assert!(t.elapsed() < limit, "{} did not appear", path.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_install_fails_the_sites_and_every_migration_still_runs() {
    let mut w = world("false").await;
    let out = w.run(&["apply", "--yes", "--no-lock"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    let migrations = std::fs::read_dir(common::repo_root().join("migrations"))
        .expect("migrations")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".sql"))
        .count() as i64;
    for project in ["intelli-acme", "intelli-globex", "intelli-initech"] {
        let db = w.db(project).await;
        let applied: i64 = db
            .query_one(
                "select count(*) from supabase_migrations.schema_migrations",
                &[],
            )
            .await
            .expect("history")
            .get(0);
        assert_eq!(applied, migrations, "{project}: every migration applied");
    }
    // Each client's site fails at its build, with the install's error (its progress line; the
    // summary table repeats it); no site was deployed.
    let failed: Vec<&str> = all
        .lines()
        .filter(|l| {
            l.contains(" FAILED (")
                && l.contains("installing the frontend's dependencies failed: `false` failed")
        })
        .collect();
    assert_eq!(failed.len(), 3, "{all}");
    assert_eq!(
        all.matches("frontend: false …").count(),
        1,
        "installed once:\n{all}"
    );
    let dump = w.sim.cloudflare().dump();
    let deployments = dump["projects"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| p["deployments"].as_array().map_or(0, Vec::len))
                .sum::<usize>()
        })
        .unwrap_or(0);
    assert_eq!(deployments, 0, "no deployment made: {dump}");
    w.assert_no_secrets(&[]);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_install_dies_with_intelli_and_the_next_apply_converges() {
    let mut w = world("sh install.sh").await;
    std::fs::write(w.root().join("examples/hang"), "").expect("hang");
    let mut child = w
        .command()
        .args(["apply", "--yes", "--no-lock"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start intelli");
    let pid: u32 = wait_for(
        &w.root().join("examples/install.pid"),
        Duration::from_secs(60),
    )
    .trim()
    .parse()
    .expect("pid");
    child.kill().expect("kill -9 intelli");
    let _ = child.wait();
    let t = Instant::now();
    while !dead(pid) {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the install's child {pid} outlived intelli"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        web(&w).join("node_modules/half").exists(),
        "a partial install is left"
    );
    std::fs::remove_file(w.root().join("examples/hang")).expect("no more hanging");

    let out = w.run(&["apply", "--yes", "--no-lock"]);
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(all.contains("has no install marker"), "{all}");
    assert!(
        !web(&w).join("node_modules/half").exists(),
        "the partial tree is gone"
    );
    assert!(web(&w).join("node_modules/ok").exists());
    assert_eq!(install_runs(&w), 2, "installed again, once");
    let clean = w.run(&["plan", "--detailed-exitcode"]);
    assert_eq!(clean.status.code(), Some(0), "{}", text(&clean));
}

#[tokio::test(flavor = "multi_thread")]
async fn node_modules_matching_the_lockfile_is_not_installed_again() {
    let mut w = world("sh install.sh").await;
    let first = w.run_ok(&["apply", "--yes", "--no-lock"]);
    assert_eq!(install_runs(&w), 1, "{first}");
    // A new build for one client, nothing new for the lockfile.
    let acme = w.root().join("fleet/acme.yaml");
    let text_before = std::fs::read_to_string(&acme).expect("acme");
    std::fs::write(&acme, text_before.replace("#d9480f", "#000000")).expect("acme");
    let out = w.run(&["apply", "--yes", "--no-lock"]);
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(all.contains("deploy"), "a build ran:\n{all}");
    assert!(all.contains("install skipped"), "{all}");
    assert_eq!(install_runs(&w), 1, "no second install:\n{all}");
    // A changed lockfile installs again.
    std::fs::write(
        web(&w).join("package-lock.json"),
        "{\"lockfileVersion\": 4}\n",
    )
    .expect("lock");
    std::fs::write(&acme, text_before).expect("acme");
    w.run_ok(&["apply", "--yes", "--no-lock"]);
    assert_eq!(install_runs(&w), 2);
}
