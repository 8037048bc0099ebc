//! The simulator's state (projects, deployments, domains, zones, DNS records, asset index) and
//! its persistence: one JSON document plus content-addressed asset files under the state dir.
//!
//! Times are stored as UTC timestamps and derived values (deployment stages, the canonical
//! deployment, domain status) are computed from them on read, so a restarted simulator picks up
//! timelines where they were.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Everything the simulator knows, serialisable as is (no secrets live here).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    /// Key: `"{account_id}/{project_name}"`.
    pub projects: BTreeMap<String, Project>,
    /// Key: deployment id.
    pub deployments: BTreeMap<String, Deployment>,
    /// Key: `"{account_id}/{project_name}/{domain}"`.
    pub domains: BTreeMap<String, Domain>,
    /// Key: zone id.
    pub zones: BTreeMap<String, Zone>,
    /// Key: record id.
    pub dns_records: BTreeMap<String, DnsRecord>,
    /// Uploaded assets by key (content lives in the blob store).
    pub assets: BTreeMap<String, AssetMeta>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Project {
    pub id: String,
    pub account_id: String,
    pub name: String,
    /// e.g. `acme.pages.dev` or `acme-x7k.pages.dev` when the name was taken.
    pub subdomain: String,
    pub production_branch: String,
    pub created_on: DateTime<Utc>,
    pub deployment_configs: Value,
    pub build_config: Value,
    /// Newest deployment of any environment.
    pub latest_deployment_id: Option<String>,
    /// Each production deployment and each rollback appends `(deployment id, live from)`; the
    /// canonical deployment is the entry that went live last (of equal times, the later
    /// entry). This models "production goes live when its deploy stage succeeds", "a rollback
    /// pins an older deployment at once", and a deployment still building when a rollback is
    /// made going live after it.
    pub production_history: Vec<(String, DateTime<Utc>)>,
}

impl Project {
    pub fn canonical_deployment_id(&self, now: DateTime<Utc>) -> Option<&str> {
        self.production_history
            .iter()
            .enumerate()
            .filter(|(_, (_, live_from))| *live_from <= now)
            .max_by_key(|(i, (_, live_from))| (*live_from, *i))
            .map(|(_, (id, _))| id.as_str())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Deployment {
    pub id: String,
    pub short_id: String,
    pub account_id: String,
    pub project_id: String,
    pub project_name: String,
    pub environment: String,
    pub branch: String,
    pub commit_hash: Option<String>,
    pub commit_message: Option<String>,
    pub commit_dirty: Option<bool>,
    /// `"/path"` → asset key.
    pub manifest: BTreeMap<String, String>,
    pub headers_file: Option<String>,
    pub redirects_file: Option<String>,
    pub uses_functions: bool,
    pub created_on: DateTime<Utc>,
    /// When the deploy stage succeeds (created_on + the configured deployment delay).
    pub live_from: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Domain {
    pub id: String,
    pub account_id: String,
    pub project_name: String,
    pub name: String,
    pub created_on: DateTime<Utc>,
    /// Start of the current validation attempt (creation, or the last PATCH).
    pub validation_started: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Zone {
    pub id: String,
    pub name: String,
    pub account_id: String,
    pub created_on: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DnsRecord {
    pub id: String,
    pub zone_id: String,
    pub zone_name: String,
    pub name: String,
    #[serde(rename = "type")]
    pub record_type: String,
    pub content: String,
    pub proxied: bool,
    pub ttl: u32,
    pub comment: Option<String>,
    pub tags: Vec<String>,
    pub priority: Option<u16>,
    pub created_on: DateTime<Utc>,
    pub modified_on: DateTime<Utc>,
    /// When where the record points last changed (name, type, content, proxied). A custom
    /// domain's validation waits for this, not for `modified_on`: editing a record's comment
    /// or TTL does not disturb an active domain on the real service.
    #[serde(default)]
    pub routed_on: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AssetMeta {
    pub content_type: String,
    pub size: u64,
    pub uploaded_on: DateTime<Utc>,
    /// Set by `upsert-hashes`: the client told us it relies on this key.
    pub upserted: bool,
}

/// Where asset bytes live: memory (no state dir) or one file per key under `<state dir>/assets`.
#[derive(Debug)]
pub enum BlobStore {
    Memory(std::sync::Mutex<std::collections::HashMap<String, axum::body::Bytes>>),
    Dir(PathBuf),
}

impl BlobStore {
    pub fn put(&self, key: &str, content: axum::body::Bytes) -> std::io::Result<()> {
        match self {
            BlobStore::Memory(map) => {
                map.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(key.to_owned(), content);
                Ok(())
            }
            BlobStore::Dir(dir) => {
                // Keys are validated as 32 hex chars before they get here, so they are safe as
                // file names. Write then rename so a crash never leaves a torn asset.
                let path = dir.join(key);
                let tmp = dir.join(format!(".{key}.{}.tmp", uuid::Uuid::new_v4().simple()));
                std::fs::write(&tmp, &content)?;
                std::fs::rename(&tmp, &path)
            }
        }
    }

    pub fn get(&self, key: &str) -> Option<axum::body::Bytes> {
        match self {
            BlobStore::Memory(map) => map
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(key)
                .cloned(),
            BlobStore::Dir(dir) => std::fs::read(dir.join(key))
                .ok()
                .map(axum::body::Bytes::from),
        }
    }
}

/// Loads `state.json` from `dir` (absent → empty state).
pub fn load(dir: &Path) -> Result<State, super::CloudflareSimError> {
    let path = dir.join("state.json");
    match std::fs::read(&path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).map_err(|e| super::CloudflareSimError::CorruptState {
                path: path.clone(),
                message: e.to_string(),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
        Err(e) => Err(super::CloudflareSimError::Io { path, source: e }),
    }
}

/// Writes `state.json` atomically (temp file + rename).
pub fn save(dir: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(".state.json.tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, dir.join("state.json"))
}

/// Writes the state file in the background, coalescing bursts: a mutation only marks the state
/// dirty, and a writer thread saves a snapshot at most every [`Persister::COALESCE`]. Writing
/// the whole document on every request would cost O(state) per call, which a 1,000-client
/// sandbox cannot afford. `flush` (and dropping the simulator) writes synchronously.
pub struct Persister {
    shared: std::sync::Arc<PersistShared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

pub struct PersistShared {
    dir: PathBuf,
    state: std::sync::Arc<std::sync::Mutex<State>>,
    flags: std::sync::Mutex<Flags>,
    wake: std::sync::Condvar,
    /// Held from snapshot to rename, so snapshots reach the disk in the order they were taken.
    write_order: std::sync::Mutex<()>,
    pub errors: std::sync::atomic::AtomicU64,
}

#[derive(Default)]
struct Flags {
    dirty: bool,
    stop: bool,
}

impl PersistShared {
    fn write_snapshot(&self) -> std::io::Result<()> {
        let _order = self.write_order.lock().unwrap_or_else(|p| p.into_inner());
        let bytes = {
            let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            serde_json::to_vec(&*state).map_err(std::io::Error::other)?
        };
        save(&self.dir, &bytes).inspect_err(|_| {
            self.errors
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        })
    }
}

impl Persister {
    pub const COALESCE: std::time::Duration = std::time::Duration::from_millis(100);

    pub fn start(
        dir: PathBuf,
        state: std::sync::Arc<std::sync::Mutex<State>>,
    ) -> std::io::Result<Self> {
        let shared = std::sync::Arc::new(PersistShared {
            dir,
            state,
            flags: std::sync::Mutex::new(Flags::default()),
            wake: std::sync::Condvar::new(),
            write_order: std::sync::Mutex::new(()),
            errors: std::sync::atomic::AtomicU64::new(0),
        });
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name("cf-sim-persist".into())
            .spawn(move || {
                loop {
                    let stopping = {
                        let mut flags = worker.flags.lock().unwrap_or_else(|p| p.into_inner());
                        while !flags.dirty && !flags.stop {
                            flags = worker.wake.wait(flags).unwrap_or_else(|p| p.into_inner());
                        }
                        if !flags.dirty {
                            return;
                        }
                        flags.stop
                    };
                    if !stopping {
                        std::thread::sleep(Self::COALESCE);
                    }
                    worker.flags.lock().unwrap_or_else(|p| p.into_inner()).dirty = false;
                    // Errors are counted in `errors` (surfaced by `stats()`); the next
                    // mutation retries.
                    let _ = worker.write_snapshot();
                    if stopping {
                        return;
                    }
                }
            })?;
        Ok(Persister {
            shared,
            thread: Some(thread),
        })
    }

    pub fn mark_dirty(&self) {
        self.shared
            .flags
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .dirty = true;
        self.shared.wake.notify_one();
    }

    pub fn flush(&self) -> std::io::Result<()> {
        self.shared
            .flags
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .dirty = false;
        self.shared.write_snapshot()
    }

    pub fn errors(&self) -> u64 {
        self.shared
            .errors
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for Persister {
    fn drop(&mut self) {
        self.shared
            .flags
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .stop = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deployment_that_went_live_last_is_canonical() {
        let t0 = Utc::now();
        let at = |s: i64| t0 + chrono::Duration::seconds(s);
        let mut p = Project {
            id: "p".into(),
            account_id: "a".into(),
            name: "n".into(),
            subdomain: "n.pages.dev".into(),
            production_branch: "main".into(),
            created_on: t0,
            deployment_configs: Value::Null,
            build_config: Value::Null,
            latest_deployment_id: None,
            // A live, B still building (live at +5), then a rollback to A at +1.
            production_history: vec![
                ("A".into(), at(0)),
                ("B".into(), at(5)),
                ("A".into(), at(1)),
            ],
        };
        assert_eq!(p.canonical_deployment_id(at(2)), Some("A"));
        // B finished after the rollback: it is the live one then, as on Pages.
        assert_eq!(p.canonical_deployment_id(at(6)), Some("B"));
        // A rollback at the same instant as a deployment going live wins (it came later).
        p.production_history.push(("A".into(), at(6)));
        assert_eq!(p.canonical_deployment_id(at(6)), Some("A"));
        assert_eq!(p.canonical_deployment_id(at(-1)), None);
    }
}
