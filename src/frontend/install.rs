//! The frontend's dependency install: once per apply, only when a site will be built, and not at
//! all when `node_modules` already matches the lockfile.
//!
//! A successful install leaves a marker, `node_modules/.intelli-install`, holding the digest of
//! the lockfile and the install command (like npm's own `node_modules/.package-lock.json`). When
//! the marker is there and matches, the install is skipped. When it is missing or differs while
//! `node_modules` exists, that `node_modules` is from another lockfile or from an install that
//! did not finish (a crash, a `kill -9`): it is removed and the install runs once, from scratch.
//!
//! The outcome is shared: every client that builds awaits the same install (a
//! [`tokio::sync::OnceCell`]), and a failed install fails each of their builds with the same
//! error and output tail, while their Supabase sides go on.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use super::build::{self, CommandError};

/// The marker file inside `node_modules`.
pub const MARKER: &str = ".intelli-install";

/// Lockfiles, in the order they are looked for.
const LOCKFILES: [&str; 5] = [
    "package-lock.json",
    "npm-shrinkwrap.json",
    "pnpm-lock.yaml",
    "yarn.lock",
    "bun.lock",
];

/// Why the install failed. Cloned to every client whose build needed it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum InstallError {
    #[error("installing the frontend's dependencies failed: {0}")]
    Command(#[source] CommandError),
    #[error("installing the frontend's dependencies: {context}: {message}")]
    Io { context: String, message: String },
}

/// What [`Installer::ensure`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Installed {
    /// `node_modules` matched the lockfile: nothing ran.
    Skipped,
    /// The install command ran and succeeded.
    Ran,
}

/// The install step of one apply.
pub struct Installer {
    dir: PathBuf,
    command: String,
    outcome: OnceCell<Result<Installed, InstallError>>,
    runs: AtomicUsize,
}

impl Installer {
    /// The install of the frontend in `dir` with `command`.
    pub fn new(dir: PathBuf, command: String) -> Installer {
        Installer {
            dir,
            command,
            outcome: OnceCell::new(),
            runs: AtomicUsize::new(0),
        }
    }

    /// How many times the install command was started by this installer (0 or 1).
    pub fn runs(&self) -> usize {
        self.runs.load(Ordering::Relaxed)
    }

    /// Make `node_modules` match the lockfile, once: the first caller does it, every other
    /// caller awaits the same outcome.
    pub async fn ensure(
        &self,
        progress: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<Installed, InstallError> {
        self.outcome
            .get_or_init(|| async {
                let outcome = self.install(progress).await;
                if let Err(e) = &outcome {
                    progress(&format!("frontend: {e}"));
                }
                outcome
            })
            .await
            .clone()
    }

    async fn install(
        &self,
        progress: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<Installed, InstallError> {
        let modules = self.dir.join("node_modules");
        let digest = lock_digest(&self.dir, &self.command)?;
        if let Some(digest) = &digest {
            match read_marker(&modules) {
                Some(found) if &found == digest => {
                    progress("frontend: node_modules matches the lockfile; install skipped");
                    return Ok(Installed::Skipped);
                }
                found => {
                    if modules.exists() {
                        progress(&format!(
                            "frontend: node_modules {}; removing it before installing",
                            if found.is_some() {
                                "was installed from another lockfile or command"
                            } else {
                                "has no install marker (an install that did not finish, or not made by intelli)"
                            }
                        ));
                        remove_dir(&modules).await?;
                    }
                }
            }
        }
        progress(&format!("frontend: {} …", self.command));
        self.runs.fetch_add(1, Ordering::Relaxed);
        build::run(&self.dir, &self.command, &Default::default())
            .await
            .map_err(InstallError::Command)?;
        if let Some(digest) = &digest {
            write_marker(&modules, digest)?;
        }
        progress("frontend: dependencies installed");
        Ok(Installed::Ran)
    }
}

/// SHA-256 of the install command and the first lockfile found; `None` without a lockfile (then
/// nothing says what `node_modules` should be, and the install always runs).
pub fn lock_digest(dir: &Path, command: &str) -> Result<Option<String>, InstallError> {
    for name in LOCKFILES {
        let path = dir.join(name);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let mut h = Sha256::new();
                h.update(command.as_bytes());
                h.update([0]);
                h.update(name.as_bytes());
                h.update([0]);
                h.update(&bytes);
                return Ok(Some(hex::encode(h.finalize())));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(InstallError::Io {
                    context: format!("reading {}", path.display()),
                    message: e.to_string(),
                });
            }
        }
    }
    Ok(None)
}

fn read_marker(modules: &Path) -> Option<String> {
    std::fs::read_to_string(modules.join(MARKER))
        .ok()
        .map(|s| s.trim().to_string())
}

/// Written last, through a rename, so a marker exists only after a complete install.
fn write_marker(modules: &Path, digest: &str) -> Result<(), InstallError> {
    let io = |context: String| {
        move |e: std::io::Error| InstallError::Io {
            context,
            message: e.to_string(),
        }
    };
    std::fs::create_dir_all(modules).map_err(io(format!("creating {}", modules.display())))?;
    let tmp = modules.join(format!("{MARKER}.tmp"));
    std::fs::write(&tmp, format!("{digest}\n"))
        .map_err(io(format!("writing {}", tmp.display())))?;
    let marker = modules.join(MARKER);
    std::fs::rename(&tmp, &marker).map_err(io(format!("writing {}", marker.display())))
}

async fn remove_dir(dir: &Path) -> Result<(), InstallError> {
    let owned = dir.to_path_buf();
    let removed = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&owned)).await;
    let context = format!("removing {}", dir.display());
    match removed {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Ok(Err(e)) => Err(InstallError::Io {
            context,
            message: e.to_string(),
        }),
        Err(e) => Err(InstallError::Io {
            context,
            message: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiet(_: &str) {}

    #[tokio::test]
    async fn marker_skips_and_a_partial_install_is_replaced() {
        let d = tempfile::tempdir().expect("tempdir");
        std::fs::write(d.path().join("package-lock.json"), "{}").expect("lockfile");
        let cmd = "mkdir -p node_modules/pkg && echo x >> node_modules/pkg/runs";
        // A partial install left by a crash: node_modules without a marker.
        std::fs::create_dir_all(d.path().join("node_modules/stale")).expect("partial");
        let first = Installer::new(d.path().to_path_buf(), cmd.into());
        assert_eq!(
            first.ensure(&quiet).await.expect("installs"),
            Installed::Ran
        );
        assert_eq!(first.ensure(&quiet).await.expect("once"), Installed::Ran);
        assert_eq!(first.runs(), 1, "once per installer");
        assert!(
            !d.path().join("node_modules/stale").exists(),
            "partial tree removed"
        );
        let second = Installer::new(d.path().to_path_buf(), cmd.into());
        assert_eq!(second.ensure(&quiet).await.expect("ok"), Installed::Skipped);
        assert_eq!(second.runs(), 0);
        // A new lockfile makes the marker stale.
        std::fs::write(d.path().join("package-lock.json"), "{\"v\":2}").expect("lockfile");
        let third = Installer::new(d.path().to_path_buf(), cmd.into());
        assert_eq!(third.ensure(&quiet).await.expect("ok"), Installed::Ran);
        let runs = std::fs::read_to_string(d.path().join("node_modules/pkg/runs")).expect("runs");
        assert_eq!(
            runs.lines().count(),
            1,
            "a fresh tree after the lockfile changed"
        );
    }

    #[tokio::test]
    async fn a_failed_install_is_shared_and_leaves_no_marker() {
        let d = tempfile::tempdir().expect("tempdir");
        std::fs::write(d.path().join("package-lock.json"), "{}").expect("lockfile");
        let inst = Installer::new(
            d.path().to_path_buf(),
            "mkdir -p node_modules; echo 'npm ERR! no network' >&2; false".into(),
        );
        let (a, b) = tokio::join!(inst.ensure(&quiet), inst.ensure(&quiet));
        let (a, b) = (a.expect_err("fails"), b.expect_err("fails"));
        assert_eq!(a.to_string(), b.to_string());
        assert!(a.to_string().contains("npm ERR! no network"), "{a}");
        assert_eq!(inst.runs(), 1);
        assert!(!d.path().join("node_modules").join(MARKER).exists());
    }
}
