//! `intelli sim serve` works as printed: a new user copies the `export` lines of its banner into
//! a shell, and `intelli plan` and `intelli apply` then work end to end against it (site health
//! check included), with nothing else in the environment.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::{copy_dir, repo_root};

/// The simulator process, stopped with SIGTERM (a graceful stop drops its project databases)
/// however the test ends.
struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

/// The frontend's sources without node_modules or build output (the install command runs).
fn copy_frontend(from: &Path, to: &Path) {
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

/// Run `intelli ARGS` in `root` with only PATH, HOME and the banner's exports (sourced by sh,
/// as a user pasting them would).
fn intelli_with_exports(root: &Path, args: &str) -> (bool, String) {
    let bin = assert_cmd::cargo::cargo_bin("intelli");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(". ./exports.sh && exec '{}' {args}", bin.display()))
        .current_dir(root)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", std::env::var_os("HOME").unwrap_or_default())
        .env("NO_COLOR", "1")
        .output()
        .expect("run intelli through sh");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn the_banner_exports_are_enough_for_plan_and_apply() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    // The example fleet with one client (the others would only add build time).
    std::fs::create_dir_all(root.join("fleet")).expect("fleet dir");
    for f in ["fleet.yaml", "acme.yaml"] {
        std::fs::copy(
            repo_root().join("fleet").join(f),
            root.join("fleet").join(f),
        )
        .expect("copy fleet file");
    }
    copy_dir(&repo_root().join("migrations"), &root.join("migrations"));
    copy_frontend(
        &repo_root().join("examples/web"),
        &root.join("examples/web"),
    );

    let mut child = Command::new(assert_cmd::cargo::cargo_bin("intelli"))
        .args(["sim", "serve"])
        .current_dir(root)
        .env("DATABASE_URL", intelli::pg::server_url())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start intelli sim serve");
    let stdout = child.stdout.take().expect("stdout");
    let _served = Served(child);
    let mut banner = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("banner line");
        let done = line.starts_with("Press Ctrl-C");
        banner.push(line);
        if done {
            break;
        }
    }
    let exports: Vec<&String> = banner.iter().filter(|l| l.starts_with("export ")).collect();
    let names: Vec<&str> = exports
        .iter()
        .filter_map(|l| l.trim_start_matches("export ").split('=').next())
        .collect();
    for needed in [
        "SUPABASE_API_URL",
        "SUPABASE_ACCESS_TOKEN",
        "CLOUDFLARE_API_TOKEN",
        "INTELLI_SITE_PROBE_URL",
    ] {
        assert!(
            names.contains(&needed),
            "{needed} missing from:\n{}",
            banner.join("\n")
        );
    }
    // The fleet's own account is served: no account override is needed (or printed).
    assert!(
        !names.contains(&"CLOUDFLARE_ACCOUNT_ID"),
        "{}",
        banner.join("\n")
    );
    let script: String = exports.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(root.join("exports.sh"), script).expect("write exports");

    let (ok, out) = intelli_with_exports(root, "plan");
    assert!(ok, "plan with the banner's exports failed:\n{out}");
    assert!(out.contains("create Pages project intelli-acme"), "{out}");

    let (ok, out) = intelli_with_exports(root, "apply --yes");
    assert!(ok, "apply with the banner's exports failed:\n{out}");
    assert!(
        out.contains("acme.intelliservice.io serves the site"),
        "{out}"
    );

    let (ok, out) = intelli_with_exports(root, "plan --detailed-exitcode");
    assert!(ok, "a plan after apply must be clean:\n{out}");
}
