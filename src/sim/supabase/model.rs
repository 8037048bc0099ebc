//! Simulated Supabase state: projects with their keys and auth settings, and how it is saved.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::keys::ProjectKeys;

/// Project statuses used by the simulator (the vendor's enum has more).
pub mod status {
    pub const COMING_UP: &str = "COMING_UP";
    pub const ACTIVE_HEALTHY: &str = "ACTIVE_HEALTHY";
    pub const INIT_FAILED: &str = "INIT_FAILED";
    pub const PAUSING: &str = "PAUSING";
    pub const INACTIVE: &str = "INACTIVE";
    pub const RESTORING: &str = "RESTORING";
    pub const GOING_DOWN: &str = "GOING_DOWN";
    pub const REMOVED: &str = "REMOVED";

    /// Deleted, or being deleted.
    pub fn is_dying(status: &str) -> bool {
        matches!(status, GOING_DOWN | REMOVED)
    }
}

/// One simulated project. Saved as is (secrets included) when a state directory is used: the
/// file is the simulator's equivalent of the vendor's own database and is written 0600.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Project {
    #[serde(rename = "ref")]
    pub project_ref: String,
    /// Numeric id, returned by delete/rename (`V1ProjectRefResponse.id`).
    pub id: u64,
    pub name: String,
    pub organization_slug: String,
    pub region: String,
    pub instance_size: String,
    pub created_at: String,
    pub status: String,
    pub keys: ProjectKeys,
    /// Auth settings in clear; secret fields are masked on the way out. Saved as the
    /// differences from the defaults (most of its 237 fields never change).
    #[serde(
        serialize_with = "super::auth_config::serialize_overrides",
        deserialize_with = "super::auth_config::deserialize_overrides"
    )]
    pub auth_config: Map<String, Value>,
    /// Database on the simulator's PostgreSQL server (`sim_<ref>`).
    pub db_name: String,
    /// The database exists and is bootstrapped.
    pub db_ready: bool,
}

impl Project {
    /// `V1ProjectResponse` (create).
    pub fn to_v1(&self) -> Value {
        json!({
            "id": self.project_ref,
            "ref": self.project_ref,
            "organization_id": self.organization_slug,
            "organization_slug": self.organization_slug,
            "name": self.name,
            "region": self.region,
            "created_at": self.created_at,
            "status": self.status,
        })
    }

    /// `V1ProjectWithDatabaseResponse` (get, list).
    pub fn to_v1_with_database(&self) -> Value {
        let mut v = self.to_v1();
        v["database"] = json!({
            "host": format!("db.{}.supabase.co", self.project_ref),
            "version": "15.8.1.093",
            "postgres_engine": "15",
            "release_channel": "ga",
        });
        v
    }

    /// An item of `OrganizationProjectsResponse.projects`.
    pub fn to_org_item(&self) -> Value {
        // The per-database enum has no INACTIVE/PAUSING: a paused project's database is down.
        let db_status = match self.status.as_str() {
            status::ACTIVE_HEALTHY
            | status::COMING_UP
            | status::RESTORING
            | status::INIT_FAILED
            | status::GOING_DOWN
            | status::REMOVED => self.status.as_str(),
            status::PAUSING => "GOING_DOWN",
            status::INACTIVE => "REMOVED",
            _ => "UNKNOWN",
        };
        json!({
            "ref": self.project_ref,
            "name": self.name,
            "cloud_provider": "AWS",
            "region": self.region,
            "is_branch": false,
            "status": self.status,
            "inserted_at": self.created_at,
            "databases": [{
                "infra_compute_size": self.instance_size,
                "region": self.region,
                "status": db_status,
                "cloud_provider": "AWS",
                "identifier": self.project_ref,
                "type": "PRIMARY",
            }],
        })
    }

    /// `V1ProjectRefResponse` (delete, rename).
    pub fn to_ref_response(&self) -> Value {
        json!({ "id": self.id, "ref": self.project_ref, "name": self.name })
    }
}

/// What is saved under the state directory.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Saved {
    /// Format version of this file.
    pub version: u32,
    pub next_id: u64,
    pub projects: BTreeMap<String, Project>,
}

pub const SAVED_VERSION: u32 = 1;

pub fn state_file(dir: &Path) -> PathBuf {
    dir.join("supabase.json")
}

/// Read the saved state; a missing file is an empty state.
pub fn load(dir: &Path) -> Result<Saved> {
    let file = state_file(dir);
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Saved {
                version: SAVED_VERSION,
                next_id: 1,
                projects: BTreeMap::new(),
            });
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
    };
    let saved: Saved =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", file.display()))?;
    if saved.version != SAVED_VERSION {
        anyhow::bail!(
            "{} has format version {}, this intelli reads {}",
            file.display(),
            saved.version,
            SAVED_VERSION
        );
    }
    Ok(saved)
}

/// Write the state atomically (temp file + rename) so a crash never leaves half a file.
pub fn save(dir: &Path, saved: &Saved) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let file = state_file(dir);
    let tmp = dir.join("supabase.json.tmp");
    let text = serde_json::to_vec_pretty(saved).context("serializing simulator state")?;
    write_private(&tmp, &text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &file).with_context(|| format!("replacing {}", file.display()))?;
    Ok(())
}

/// The file holds project secrets: owner-only permissions where the platform has them.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}
