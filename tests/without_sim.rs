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

/// `GET path` over a plain socket, the whole answer as text.
fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect to the listener");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("read");
    answer
}

#[test]
fn reconcile_serves_metrics_and_a_failed_run_does_not_stop_it() {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_intelli"))
        .current_dir(common::repo_root())
        .env_remove("SUPABASE_ACCESS_TOKEN")
        .env_remove("CLOUDFLARE_API_TOKEN")
        .args(["reconcile", "--interval", "1h", "--listen", "127.0.0.1:0"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn intelli reconcile");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut next = || lines.next().expect("a line").expect("utf-8");
    let serving = next();
    let addr = serving
        .strip_prefix("serving /healthz and /metrics on http://")
        .unwrap_or_else(|| panic!("{serving}"))
        .to_string();
    // Without credentials the run fails; the loop logs it and waits for the next one.
    let failed = std::iter::repeat_with(&mut next)
        .find(|l| l.contains("reconcile run 1 failed"))
        .expect("run 1's summary");
    assert!(failed.contains("SUPABASE_ACCESS_TOKEN"), "{failed}");
    assert!(next().starts_with("next run in "));
    assert!(http_get(&addr, "/healthz").ends_with("\r\n\r\nok\n"));
    let page = http_get(&addr, "/metrics");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(
        page.contains("\nintelli_runs_total{result=\"failed\"} 1\n"),
        "{page}"
    );
    assert!(
        page.contains("\nintelli_failures_total{kind=\"run\"} 1\n"),
        "{page}"
    );
    let pid = libc::pid_t::try_from(child.id()).expect("pid");
    // SAFETY: kill(2) on our own child's pid; no memory is involved.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    assert_eq!(child.wait().expect("wait").code(), Some(0));
}
