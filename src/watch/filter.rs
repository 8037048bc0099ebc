//! Which changed paths matter to a plan: fleet files, migration files (and the seed), and the
//! frontend's sources as its fingerprint sees them (gitignore-aware, like
//! [`crate::frontend::source_digest`]'s walk). Everything else (editor swap files, build
//! output, `node_modules`, the sandbox's own state) is not a reason to plan again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};

/// Directory names never worth a re-plan, wherever they are: git's own, npm's, and intelli's
/// sandbox state (written by the sandbox itself during a plan or apply).
const SKIPPED_DIRS: [&str; 3] = [".git", "node_modules", ".intelli"];

/// The places a plan is made from, as absolute paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roots {
    /// The repository root: the gitignore files between it and a frontend file count.
    pub repo: PathBuf,
    pub fleet: PathBuf,
    pub migrations: Option<PathBuf>,
    pub seed: Option<PathBuf>,
    pub frontend: Option<PathBuf>,
}

impl Roots {
    /// The directories to watch (recursively), without duplicates or missing ones.
    pub fn dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = Vec::new();
        let seed_dir = self
            .seed
            .as_ref()
            .and_then(|s| s.parent().map(Path::to_path_buf));
        for d in [
            Some(self.fleet.clone()),
            self.migrations.clone(),
            seed_dir,
            self.frontend.clone(),
        ]
        .into_iter()
        .flatten()
        {
            if d.is_dir() && !dirs.iter().any(|w| d.starts_with(w)) {
                dirs.retain(|w| !w.starts_with(&d));
                dirs.push(d);
            }
        }
        dirs.sort();
        dirs
    }

    /// Whether a change at `path` can change the plan; gitignore files are read from disk
    /// (cached in `ignores` for one batch of events).
    pub fn matters(&self, path: &Path, ignores: &mut IgnoreCache) -> bool {
        if path
            .components()
            .any(|c| SKIPPED_DIRS.iter().any(|s| c.as_os_str() == *s))
        {
            return false;
        }
        if self.seed.as_deref() == Some(path) {
            return true;
        }
        let ext = path.extension().and_then(|e| e.to_str());
        // Only what `Fleet::load` and `migrate::discover` read: editors' swap and backup
        // files next to them are not.
        if path.parent() == Some(self.fleet.as_path()) && matches!(ext, Some("yaml" | "yml")) {
            return true;
        }
        if let Some(m) = &self.migrations
            && path.starts_with(m)
            && ext == Some("sql")
        {
            return true;
        }
        match &self.frontend {
            Some(f) if path.starts_with(f) => !ignores.ignored(&self.repo, path),
            _ => false,
        }
    }
}

/// Parsed `.gitignore` files by directory.
#[derive(Default)]
pub struct IgnoreCache {
    by_dir: HashMap<PathBuf, Option<Gitignore>>,
}

impl IgnoreCache {
    /// Whether git would ignore `path`: the `.gitignore` files of its directory and of every
    /// directory above it up to `repo` are asked, nearest first, and the first that has a
    /// rule for it (ignore or `!` whitelist) decides, as in git.
    pub fn ignored(&mut self, repo: &Path, path: &Path) -> bool {
        let is_dir = path.is_dir();
        let mut dir = path.parent();
        while let Some(d) = dir {
            if !d.starts_with(repo) {
                break;
            }
            let gi = self
                .by_dir
                .entry(d.to_path_buf())
                .or_insert_with(|| load(d));
            if let Some(gi) = gi {
                match gi.matched_path_or_any_parents(path, is_dir) {
                    Match::Ignore(_) => return true,
                    Match::Whitelist(_) => return false,
                    Match::None => {}
                }
            }
            dir = d.parent();
        }
        false
    }
}

/// The `.gitignore` of `dir`, if it has one that parses. A broken pattern in it ignores that
/// pattern only (the builder keeps the others), like git.
fn load(dir: &Path) -> Option<Gitignore> {
    let file = dir.join(".gitignore");
    if !file.is_file() {
        return None;
    }
    let mut b = GitignoreBuilder::new(dir);
    // A line that does not parse is reported by git too and otherwise skipped.
    let _ = b.add(&file);
    b.build().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roots(repo: &Path) -> Roots {
        Roots {
            repo: repo.to_path_buf(),
            fleet: repo.join("fleet"),
            migrations: Some(repo.join("migrations")),
            seed: Some(repo.join("migrations/seed/client.sql")),
            frontend: Some(repo.join("web")),
        }
    }

    #[test]
    fn what_counts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = dir.path();
        for d in ["fleet", "migrations/seed", "web/src", "web/dist"] {
            std::fs::create_dir_all(repo.join(d)).expect("mkdir");
        }
        std::fs::write(repo.join(".gitignore"), "*.log\n").expect("write");
        std::fs::write(repo.join("web/.gitignore"), "dist/\n*.tmp\n!keep.tmp\n").expect("write");
        let r = roots(repo);
        let mut cache = IgnoreCache::default();
        let yes = [
            "fleet/acme.yaml",
            "fleet/fleet.yml",
            "migrations/20990101000000_x.sql",
            "migrations/seed/client.sql",
            "web/src/App.jsx",
            "web/package-lock.json",
            "web/keep.tmp",
        ];
        let no = [
            "fleet/.acme.yaml.swp",
            "fleet/acme.yaml~",
            "fleet/sub/x.yaml",
            "migrations/README.md",
            "web/dist/index.html",
            "web/src/x.tmp",
            "web/debug.log",
            "web/node_modules/react/index.js",
            ".intelli/sandbox/state.json",
            "README.md",
        ];
        for p in yes {
            assert!(r.matters(&repo.join(p), &mut cache), "{p} matters");
        }
        for p in no {
            assert!(!r.matters(&repo.join(p), &mut cache), "{p} does not matter");
        }
    }

    #[test]
    fn watched_dirs_are_not_nested() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = dir.path();
        for d in ["fleet", "migrations/seed", "web"] {
            std::fs::create_dir_all(repo.join(d)).expect("mkdir");
        }
        let mut r = roots(repo);
        assert_eq!(
            r.dirs(),
            vec![
                repo.join("fleet"),
                repo.join("migrations"),
                repo.join("web")
            ]
        );
        // A frontend at the repository root covers everything else.
        r.frontend = Some(repo.to_path_buf());
        assert_eq!(r.dirs(), vec![repo.to_path_buf()]);
    }
}
