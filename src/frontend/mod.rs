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

// The longest commit message intelli writes: what wrangler keeps (it cuts the rest).
use crate::cloudflare::upload::MAX_COMMIT_MESSAGE_BYTES;

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

    /// [`Fingerprint::commit_message`] that also names the deployments a later plan can roll
    /// back to without listing the project's deployments ([`deployment_chain`]): `chain` is
    /// newest first, `(deployment id, fingerprint)` (its `commit_hash`), starting with the
    /// deployment this one replaces (the one live when it was made). The first becomes
    /// `previous=<id>@<fp>` (what intelli wrote before chains, still read as a chain of one);
    /// the next, up to [`CHAIN_LEN`] in all, `earlier=<id>@<fp>,<id>@<fp>`. Malformed entries
    /// are left out, and entries are dropped from the end until the message fits
    /// [`MAX_COMMIT_MESSAGE_BYTES`] (wrangler cuts longer messages, which would leave a broken
    /// last entry).
    pub fn commit_message_after(&self, chain: &[(&str, &str)]) -> String {
        let base = self.commit_message();
        let mut entries: Vec<String> = chain
            .iter()
            .filter(|(id, fp)| valid_previous(id, fp))
            .take(CHAIN_LEN)
            .map(|(id, fp)| format!("{id}@{fp}"))
            .collect();
        loop {
            let mut m = base.clone();
            if let Some((first, rest)) = entries.split_first() {
                m.push_str(&format!(" previous={first}"));
                if !rest.is_empty() {
                    m.push_str(&format!(" earlier={}", rest.join(",")));
                }
            }
            if m.len() <= MAX_COMMIT_MESSAGE_BYTES || entries.pop().is_none() {
                return m;
            }
        }
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

/// The deployments a deployment made by intelli recorded as the ones before it, newest first
/// (`previous=`, then `earlier=`, as [`Fingerprint::commit_message_after`] writes them):
/// `(deployment id, fingerprint)`, at most [`CHAIN_LEN`]. Empty for a message intelli did not
/// write; an entry that is not a deployment id and a fingerprint is skipped (the message may
/// have been written by hand), never an error.
pub fn deployment_chain(commit_message: &str) -> Vec<(String, String)> {
    let Some(rest) = commit_message.strip_prefix(&format!("intelli deploy {FORMAT} ")) else {
        return Vec::new();
    };
    let word = |key: &str| {
        rest.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .unwrap_or("")
    };
    std::iter::once(word("previous="))
        .chain(word("earlier=").split(','))
        .filter_map(|entry| entry.split_once('@'))
        .filter(|(id, fp)| valid_previous(id, fp))
        .take(CHAIN_LEN)
        .map(|(id, fp)| (id.to_string(), fp.to_string()))
        .collect()
}

/// How many earlier deployments a deployment records (the one it replaces and that one's own
/// two): a revert up to this many deployments back is a rollback found without a list read.
pub const CHAIN_LEN: usize = 3;

/// A deployment id (Cloudflare's are UUIDs) and a 40-hex fingerprint: nothing that could
/// break the message's `key=value` words or the `<id>@<fp>,<id>@<fp>` list (no space, `@` or
/// `,`), or be mistaken for another deployment.
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

    fn fp() -> Fingerprint {
        Fingerprint {
            sources: "a".repeat(64),
            env: "b".repeat(64),
        }
    }

    fn owned(chain: &[(&str, &str)]) -> Vec<(String, String)> {
        chain
            .iter()
            .map(|(id, fp)| (id.to_string(), fp.to_string()))
            .collect()
    }

    #[test]
    fn the_chain_rides_in_the_message() {
        let fp = fp();
        let (c, d, e) = ("c".repeat(40), "d".repeat(40), "e".repeat(40));
        let chain = [
            ("0b5a3e2c-1f0d-4c1e-9a7b-3f2e1d0c9b8a", c.as_str()),
            ("1b5a3e2c-1f0d-4c1e-9a7b-3f2e1d0c9b8a", d.as_str()),
            ("2b5a3e2c-1f0d-4c1e-9a7b-3f2e1d0c9b8a", e.as_str()),
        ];
        for n in 0..=3 {
            let m = fp.commit_message_after(&chain[..n]);
            assert_eq!(deployment_chain(&m), owned(&chain[..n]), "{m}");
            // The fingerprint itself still reads the same.
            assert_eq!(
                Fingerprint::parse(&m),
                Fingerprint::parse(&fp.commit_message())
            );
        }
        let m = fp.commit_message_after(&chain);
        assert!(
            m.ends_with(&format!(
                " previous={}@{c} earlier={}@{d},{}@{e}",
                chain[0].0, chain[1].0, chain[2].0
            )),
            "{m}"
        );
        assert_eq!(fp.commit_message_after(&[]), fp.commit_message());
        // A fourth entry is never written: the chain is [`CHAIN_LEN`] long.
        let f = "f".repeat(40);
        let longer = [chain[0], chain[1], chain[2], ("3b5a3e2c", f.as_str())];
        assert_eq!(
            deployment_chain(&fp.commit_message_after(&longer)),
            owned(&chain)
        );
    }

    #[test]
    fn a_message_from_before_chains_is_a_chain_of_one() {
        // Exactly what intelli wrote before chains (previous only).
        let id = "0b5a3e2c-1f0d-4c1e-9a7b-3f2e1d0c9b8a";
        let prev = "c".repeat(40);
        let old = format!(
            "intelli deploy intelli-fp-1 sources={} env={} previous={id}@{prev}",
            "a".repeat(16),
            "b".repeat(16)
        );
        assert_eq!(deployment_chain(&old), owned(&[(id, prev.as_str())]));
        assert!(deployment_chain(&fp().commit_message()).is_empty());
    }

    #[test]
    fn the_message_stays_within_what_wrangler_keeps() {
        let fp = fp();
        let (c, d, e) = ("c".repeat(40), "d".repeat(40), "e".repeat(40));
        // Cloudflare's ids are UUIDs (36 characters): the whole chain fits.
        let uuid = |n: char| format!("{n}b5a3e2c-1f0d-4c1e-9a7b-3f2e1d0c9b8a");
        let (u1, u2, u3) = (uuid('0'), uuid('1'), uuid('2'));
        let chain = [
            (u1.as_str(), c.as_str()),
            (u2.as_str(), d.as_str()),
            (u3.as_str(), e.as_str()),
        ];
        let m = fp.commit_message_after(&chain);
        assert!(
            m.len() <= MAX_COMMIT_MESSAGE_BYTES,
            "{} bytes: {m}",
            m.len()
        );
        assert_eq!(deployment_chain(&m).len(), 3);
        // The longest ids accepted (64 characters): the last entry goes, never the bound.
        let long = |n: char| n.to_string().repeat(64);
        let (l1, l2, l3) = (long('1'), long('2'), long('3'));
        let chain = [
            (l1.as_str(), c.as_str()),
            (l2.as_str(), d.as_str()),
            (l3.as_str(), e.as_str()),
        ];
        let m = fp.commit_message_after(&chain);
        assert!(
            m.len() <= MAX_COMMIT_MESSAGE_BYTES,
            "{} bytes: {m}",
            m.len()
        );
        assert_eq!(deployment_chain(&m), owned(&chain[..2]));
        assert_eq!(MAX_COMMIT_MESSAGE_BYTES, 384);
    }

    #[test]
    fn malformed_entries_are_ignored() {
        let fp = fp();
        let id = "0b5a3e2c-1f0d-4c1e-9a7b-3f2e1d0c9b8a";
        let prev = "c".repeat(40);
        // Nothing malformed is written …
        assert_eq!(
            fp.commit_message_after(&[("a b", &prev)]),
            fp.commit_message()
        );
        assert_eq!(fp.commit_message_after(&[(id, "xyz")]), fp.commit_message());
        assert_eq!(
            deployment_chain(&fp.commit_message_after(&[("a,b", &prev), (id, &prev)])),
            owned(&[(id, prev.as_str())])
        );
        // … or read back: someone else's words are skipped, the valid entries kept in order.
        let head = fp.commit_message();
        for (message, want) in [
            (format!("manual previous={id}@{prev}"), vec![]),
            (
                format!("{head} previous={id}@{prev} earlier=junk"),
                vec![(id, prev.as_str())],
            ),
            (
                format!("{head} previous=x@y earlier={id}@{prev}"),
                vec![(id, prev.as_str())],
            ),
            (
                format!(
                    "{head} previous={id} earlier=,{id}@{prev},@,{id}@{}",
                    "g".repeat(40)
                ),
                vec![(id, prev.as_str())],
            ),
            (format!("{head} earlier={id}@{prev}@{prev}"), vec![]),
            (format!("{head} previous={}@{prev}", "i".repeat(65)), vec![]),
        ] {
            assert_eq!(deployment_chain(&message), owned(&want), "{message}");
        }
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
