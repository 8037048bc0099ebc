//! A build without the simulator (`--no-default-features`): `--sandbox` and `intelli sim` say
//! that the simulator is missing and how to get it, before reading anything. Run by
//! scripts/test as `cargo test --no-default-features --test without_sim`; empty in the default
//! build, where both work (tests/sandbox_quickstart.rs).
#![cfg(not(feature = "sim"))]

mod common;

use assert_cmd::Command;

fn intelli(args: &[&str]) -> std::process::Output {
    let dir = tempfile::tempdir().expect("tempdir");
    Command::cargo_bin("intelli")
        .expect("binary")
        .current_dir(dir.path())
        .args(args)
        .output()
        .expect("run intelli")
}

fn assert_explains(args: &[&str]) {
    let out = intelli(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
    assert!(
        stderr.contains("built without the simulator (cargo feature `sim`)")
            && stderr.contains("--features sim"),
        "{args:?} should say how to get the simulator, said: {stderr}"
    );
    assert!(out.stdout.is_empty(), "{args:?} printed on stdout");
}

#[test]
fn sandbox_says_how_to_get_the_simulator() {
    // No fleet directory exists: the answer comes before anything is read.
    assert_explains(&["--sandbox", "plan"]);
    assert_explains(&["--sandbox", "apply", "--yes"]);
}

#[test]
fn sim_says_how_to_get_the_simulator() {
    assert_explains(&["sim", "serve", "--listen", "127.0.0.1:0"]);
    assert_explains(&["sim"]);
}

#[test]
fn validate_works_without_the_simulator() {
    let out = Command::cargo_bin("intelli")
        .expect("binary")
        .current_dir(common::repo_root())
        .arg("validate")
        .output()
        .expect("run intelli");
    assert!(
        out.status.success(),
        "validate of the example fleet: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
