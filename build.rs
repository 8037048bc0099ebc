//! Build script: the git commit for `intelli --version` when built from a checkout.
//!
//! Sets `INTELLI_VERSION` to `0.1.0 (commit abcdef123456)` in a git checkout whose top level is
//! this crate, and to the plain package version anywhere else (a release tarball, `cargo
//! install` from crates.io, or a copy inside someone else's repository). Never fails the build:
//! a missing `git` just means no commit.

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

/// The files whose change means HEAD may point elsewhere (re-run the script then).
fn watch(dir: &Path) {
    let mut paths = vec!["HEAD".to_string(), "packed-refs".to_string()];
    if let Some(reference) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        paths.push(reference);
    }
    for p in paths {
        if let Some(path) = git(dir, &["rev-parse", "--git-path", &p]) {
            let path = PathBuf::from(path);
            let path = if path.is_absolute() {
                path
            } else {
                dir.join(path)
            };
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
}

fn main() {
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=INTELLI_GIT_COMMIT");
    // A packager may say which commit a tarball came from.
    let commit = std::env::var("INTELLI_GIT_COMMIT").ok().or_else(|| {
        // Only this crate's own checkout counts, not a repository the sources were copied into.
        let top = git(&dir, &["rev-parse", "--show-toplevel"])?;
        let same = std::fs::canonicalize(&top).ok()? == std::fs::canonicalize(&dir).ok()?;
        if !same {
            return None;
        }
        watch(&dir);
        git(&dir, &["rev-parse", "--short=12", "HEAD"])
    });
    let full = match commit {
        Some(c) => format!("{version} (commit {c})"),
        None => version,
    };
    println!("cargo:rustc-env=INTELLI_VERSION={full}");
}
