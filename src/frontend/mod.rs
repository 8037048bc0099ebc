//! The master-mold frontend: what a client's site is built from (the fingerprint) and building it.
//!
//! Owns: the build fingerprint, running the install and build commands. Must not: talk to a
//! vendor, or write the client's values to disk (they travel in the child's environment only).
//!
//! The fingerprint is what lets `plan` know, without building, whether a client's live site is
//! current: it is written into the deployment's `commit_hash` / `commit_message` at deploy time
//! and read back from the Pages project's `canonical_deployment`.

pub mod build;
pub mod install;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// Bumped when what goes into a fingerprint changes, so every site redeploys once.
const FORMAT: &str = "intelli-fp-1";

/// Digest of the frontend sources (gitignore-aware walk of the frontend directory, which
/// includes the lockfile) and of the install and build commands. Computed once per run.
pub fn source_digest(dir: &Path, install_command: &str, build_command: &str) -> Result<String> {
    let mut files = Vec::new();
    let walker = ignore::WalkBuilder::new(dir)
        .hidden(false)
        .git_ignore(true)
        .git_exclude(false)
        .git_global(false)
        .require_git(false)
        .filter_entry(|e| e.file_name() != ".git" && e.file_name() != "node_modules")
        .build();
    for entry in walker {
        let entry = entry.with_context(|| format!("walking {}", dir.display()))?;
        if entry.file_type().is_some_and(|t| t.is_file()) {
            files.push(entry.into_path());
        }
    }
    files.sort();
    let mut h = Sha256::new();
    h.update(FORMAT.as_bytes());
    h.update([0]);
    h.update(install_command.as_bytes());
    h.update([0]);
    h.update(build_command.as_bytes());
    h.update([0]);
    for f in &files {
        let rel = f.strip_prefix(dir).unwrap_or(f);
        h.update(rel.to_string_lossy().as_bytes());
        h.update([0]);
        h.update(file_sha256(f)?);
    }
    Ok(hex::encode(h.finalize()))
}

/// SHA-256 of a file, read in chunks so memory does not grow with its size.
fn file_sha256(path: &Path) -> Result<[u8; 32]> {
    use std::io::Read;
    let mut file =
        std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().into())
}

/// Digest of a client's build-time values (names and values, sorted). Values may be secret-ish
/// (the anon key): only the digest ever leaves this function.
pub fn env_digest(env: &BTreeMap<String, SecretString>) -> String {
    let mut h = Sha256::new();
    for (k, v) in env {
        h.update(k.as_bytes());
        h.update([0]);
        h.update(v.expose_secret().as_bytes());
        h.update([0]);
    }
    hex::encode(h.finalize())
}

/// The names the browser key is given to the build under: `VITE_SUPABASE_ANON_KEY` (what the
/// mold reads; supabase-js takes a publishable key there) and `VITE_SUPABASE_PUBLISHABLE_KEY`.
pub const BROWSER_KEY_VARS: [&str; 2] = ["VITE_SUPABASE_ANON_KEY", "VITE_SUPABASE_PUBLISHABLE_KEY"];

/// The build-time values intelli provides plus the client's extras, with the browser key
/// given by its SHA-256 (plan never holds the key; apply hashes the real key the same way).
pub fn build_values(
    supabase_url: &str,
    browser_key_sha256: &str,
    client_name: &str,
    extras: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut v = extras.clone();
    v.insert("VITE_SUPABASE_URL".into(), supabase_url.to_string());
    for name in BROWSER_KEY_VARS {
        v.insert(name.into(), format!("sha256:{browser_key_sha256}"));
    }
    v.insert("VITE_CLIENT_NAME".into(), client_name.to_string());
    v
}

/// [`env_digest`] of plain values (see [`build_values`]).
pub fn env_digest_plain(values: &BTreeMap<String, String>) -> String {
    let wrapped: BTreeMap<String, SecretString> = values
        .iter()
        .map(|(k, v)| (k.clone(), SecretString::from(v.clone())))
        .collect();
    env_digest(&wrapped)
}

/// SHA-256 of a secret, hex: how the anon key enters fingerprints.
pub fn secret_sha256(s: &SecretString) -> String {
    hex::encode(Sha256::digest(s.expose_secret().as_bytes()))
}

/// What a deployment carries so that plan can tell whether a site is current, and why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    pub sources: String,
    pub env: String,
}

impl Fingerprint {
    /// 40 hex characters, the shape of a git commit hash (what Pages shows in its dashboard).
    pub fn commit_hash(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.sources.as_bytes());
        h.update(self.env.as_bytes());
        hex::encode(h.finalize())[..40].to_string()
    }

    /// The deployment's commit message: human-readable, and parsed back by [`Fingerprint::parse`].
    pub fn commit_message(&self) -> String {
        format!(
            "intelli deploy {FORMAT} sources={} env={}",
            &self.sources[..16.min(self.sources.len())],
            &self.env[..16.min(self.env.len())]
        )
    }

    /// [`Fingerprint::commit_message`] that also names the deployment it replaces (the one
    /// live when it was made) and that deployment's fingerprint (its `commit_hash`), so a later
    /// plan can propose a rollback to it without listing the project's deployments
    /// ([`previous_deployment`]).
    pub fn commit_message_after(&self, previous: Option<(&str, &str)>) -> String {
        let mut m = self.commit_message();
        if let Some((id, fingerprint)) = previous
            && valid_previous(id, fingerprint)
        {
            m.push_str(&format!(" previous={id}@{fingerprint}"));
        }
        m
    }

    /// The fingerprint recorded in a deployment made by intelli, if it was.
    pub fn parse(commit_message: &str) -> Option<(String, String)> {
        let rest = commit_message.strip_prefix(&format!("intelli deploy {FORMAT} "))?;
        let mut sources = None;
        let mut env = None;
        for part in rest.split_whitespace() {
            if let Some(v) = part.strip_prefix("sources=") {
                sources = Some(v.to_string());
            } else if let Some(v) = part.strip_prefix("env=") {
                env = Some(v.to_string());
            }
        }
        Some((sources?, env?))
    }

    /// Why a live deployment recorded as `(sources, env)` is not this fingerprint, if it is not.
    pub fn stale_reason(&self, live: Option<&(String, String)>) -> Option<Staleness> {
        let short = |s: &str| s[..16.min(s.len())].to_string();
        let Some((src, env)) = live else {
            return Some(Staleness::NoFingerprint);
        };
        let src_changed = *src != short(&self.sources);
        let env_changed = *env != short(&self.env);
        match (src_changed, env_changed) {
            (false, false) => None,
            (true, false) => Some(Staleness::Sources),
            (false, true) => Some(Staleness::Values),
            (true, true) => Some(Staleness::SourcesAndValues),
        }
    }
}

/// The deployment a deployment made by intelli replaced, as recorded in its commit message by
/// [`Fingerprint::commit_message_after`]: `(deployment id, fingerprint)`.
pub fn previous_deployment(commit_message: &str) -> Option<(String, String)> {
    commit_message.strip_prefix(&format!("intelli deploy {FORMAT} "))?;
    let (id, fingerprint) = commit_message
        .split_whitespace()
        .find_map(|part| part.strip_prefix("previous="))?
        .split_once('@')?;
    valid_previous(id, fingerprint).then(|| (id.to_string(), fingerprint.to_string()))
}

/// A deployment id (Cloudflare's are UUIDs) and a 40-hex fingerprint: nothing that could
/// break the message's `key=value` words, or be mistaken for another deployment.
fn valid_previous(id: &str, fingerprint: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && fingerprint.len() == 40
        && fingerprint.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Why a live deployment is not the current build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Staleness {
    /// The live deployment was not made by intelli, or carries no fingerprint.
    NoFingerprint,
    Sources,
    Values,
    SourcesAndValues,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_round_trip_and_reasons() {
        let fp = Fingerprint {
            sources: "a".repeat(64),
            env: "b".repeat(64),
        };
        let live = Fingerprint::parse(&fp.commit_message()).expect("parses");
        assert_eq!(fp.stale_reason(Some(&live)), None);
        let changed = Fingerprint {
            sources: "c".repeat(64),
            env: "b".repeat(64),
        };
        assert_eq!(changed.stale_reason(Some(&live)), Some(Staleness::Sources));
        assert!(Fingerprint::parse("manual deploy from laptop").is_none());
        assert_eq!(fp.commit_hash().len(), 40);
    }

    #[test]
    fn the_previous_deployment_rides_in_the_message() {
        let fp = Fingerprint {
            sources: "a".repeat(64),
            env: "b".repeat(64),
        };
        let id = "0b5a3e2c-1f0d-4c1e-9a7b-3f2e1d0c9b8a";
        let prev = "c".repeat(40);
        let m = fp.commit_message_after(Some((id, &prev)));
        assert_eq!(
            previous_deployment(&m),
            Some((id.to_string(), prev.clone()))
        );
        // The fingerprint itself still reads the same.
        assert_eq!(
            Fingerprint::parse(&m),
            Fingerprint::parse(&fp.commit_message())
        );
        assert_eq!(previous_deployment(&fp.commit_message()), None);
        // Nothing malformed is written or read back.
        assert_eq!(
            fp.commit_message_after(Some(("a b", &prev))),
            fp.commit_message()
        );
        assert_eq!(
            fp.commit_message_after(Some((id, "xyz"))),
            fp.commit_message()
        );
        assert_eq!(
            previous_deployment(&format!("manual previous={id}@{prev}")),
            None
        );
    }

    #[test]
    fn source_digest_follows_content_and_gitignore() {
        let d = tempfile::tempdir().expect("tempdir");
        std::fs::write(d.path().join(".gitignore"), "dist\n").expect("write");
        std::fs::write(d.path().join("a.js"), "1").expect("write");
        std::fs::create_dir_all(d.path().join("dist")).expect("mkdir");
        let before = source_digest(d.path(), "i", "b").expect("digest");
        std::fs::write(d.path().join("dist/out.js"), "ignored").expect("write");
        assert_eq!(
            before,
            source_digest(d.path(), "i", "b").expect("digest"),
            "ignored files do not count"
        );
        std::fs::write(d.path().join("a.js"), "2").expect("write");
        assert_ne!(before, source_digest(d.path(), "i", "b").expect("digest"));
        assert_ne!(
            before,
            source_digest(d.path(), "i", "b2").expect("digest"),
            "the build command counts"
        );
    }
}
