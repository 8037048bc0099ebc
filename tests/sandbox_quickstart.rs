//! The README's quick start: on a fresh checkout, `intelli --sandbox apply --yes` converges the
//! example fleet against the in-process simulator, and a second `plan` shows no changes.
//!
//! Runs the sandbox's own PostgreSQL (INTELLI_PG=throwaway: a private cluster under
//! .intelli/sandbox/postgres, started with the system's initdb/pg_ctl) so that it also covers a
//! machine where PostgreSQL is installed but not running, and leaves nothing on a shared server.

mod common;

use std::os::unix::fs::PermissionsExt;

use assert_cmd::Command;
use common::{copy_dir, repo_root};

fn intelli(root: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::cargo_bin("intelli")
        .expect("binary")
        .current_dir(root)
        .env("INTELLI_PG", "throwaway")
        .env_remove("SUPABASE_ACCESS_TOKEN")
        .env("NO_COLOR", "1")
        .args(args)
        .output()
        .expect("run intelli")
}

/// The frontend's sources without node_modules or build output (the install command runs).
fn copy_frontend(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read frontend").flatten() {
        let name = entry.file_name();
        if name == "node_modules" || name == "dist" {
            continue;
        }
        if entry.path().is_dir() {
            copy_frontend(&entry.path(), &to.join(&name));
        } else {
            std::fs::copy(entry.path(), to.join(&name)).expect("copy");
        }
    }
}

#[test]
fn sandbox_apply_then_plan_is_clean() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    // The postgres system user runs the private cluster and must be able to reach it.
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    copy_dir(&repo_root().join("fleet"), &root.join("fleet"));
    copy_dir(&repo_root().join("migrations"), &root.join("migrations"));
    copy_frontend(
        &repo_root().join("examples/web"),
        &root.join("examples/web"),
    );

    let apply = intelli(root, &["--sandbox", "apply", "--yes"]);
    let out = String::from_utf8_lossy(&apply.stdout);
    assert!(
        apply.status.success(),
        "sandbox apply failed:\n{out}\n{}",
        String::from_utf8_lossy(&apply.stderr)
    );
    assert!(
        out.contains("Apply complete: 3 client(s)") && out.contains("0 failed"),
        "{out}"
    );
    // The example fleet's canary wave goes first.
    let canary = out
        .find("Wave 1/2 canary: 1 client")
        .expect("the canary wave in the plan");
    let rest = out
        .find("Wave 2/2 rest (implicit): 2 clients")
        .expect("the rest wave");
    assert!(canary < rest, "{out}");

    let plan = intelli(root, &["--sandbox", "plan", "--detailed-exitcode"]);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "second plan must be clean:\n{}\n{}",
        String::from_utf8_lossy(&plan.stdout),
        String::from_utf8_lossy(&plan.stderr)
    );
    assert!(
        root.join(".intelli/sandbox/supabase.json").exists(),
        "state kept for the next command"
    );
}
