//! Desired state: the fleet files, their defaults, their validation and their JSON Schema.
//!
//! Owns: reading `fleet/*.yaml`, merging defaults, every check that can be made offline.
//! Must not: talk to the network or to a database; that is `observe`'s and `apply`'s job.

pub mod merge;
pub mod model;
pub mod placement;
pub mod rollout;
pub mod secrets;
pub mod source;
mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::diag::{Diagnostic, Diagnostics};
use merge::Origin;
pub use model::{
    BucketSettings, CheckSpec, ClientFile, ClientState, FleetFile, Gate, LegacyKeys, MaxFailures,
    WaveSpec,
};
use source::SourceMap;

/// The fleet settings file inside a fleet directory.
pub const FLEET_FILE: &str = "fleet.yaml";

/// A loaded, merged and validated fleet.
#[derive(Debug, Clone)]
pub struct Fleet {
    pub dir: PathBuf,
    /// The repository root: paths in fleet.yaml are relative to it.
    pub root: PathBuf,
    pub settings: FleetFile,
    /// Clients by slug.
    pub clients: BTreeMap<String, ClientSpec>,
    maps: BTreeMap<PathBuf, SourceMap>,
}

/// One client with every default applied: what the rest of intelli works from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSpec {
    pub slug: String,
    pub file: PathBuf,
    pub display_name: String,
    pub domain: String,
    pub state: ClientState,
    /// `<prefix><slug>`: the Supabase project name and, unless pinned, the Pages project name.
    pub resource_name: String,
    pub project_ref: Option<String>,
    pub pages_project: String,
    /// Replace an existing DNS record for the domain that intelli does not own.
    pub take_over_dns: bool,
    pub region: String,
    pub instance_size: Option<String>,
    pub buckets: BTreeMap<String, Bucket>,
    pub site_url: String,
    /// Every redirect URL the auth config must allow, the client's domain first.
    pub redirect_urls: Vec<String>,
    /// Build-time variables beyond the ones intelli provides.
    pub frontend_env: BTreeMap<String, EnvValue>,
    /// The Cloudflare account the client file pins its site to, if it does.
    pub cloudflare_account: Option<String>,
    /// The client file's `labels:` (what `rollout:` waves select by).
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    pub public: bool,
    pub file_size_limit: Option<u64>,
    pub allowed_mime_types: Vec<String>,
}

/// A build-time value: written in the file, or read from the environment at apply time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvValue {
    pub value: EnvSource,
    /// The file and field the value was written in, for error messages.
    pub file: PathBuf,
    pub field: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvSource {
    Literal(String),
    FromEnv(String),
}

impl Fleet {
    /// Read `dir/fleet.yaml` and every `dir/*.yaml` client file; report every problem at once.
    pub fn load(dir: &Path) -> Result<Fleet, Diagnostics> {
        validate::load(dir)
    }

    /// Clients whose slug is in `only` (all when `only` is empty).
    pub fn select<'a>(&'a self, only: &'a [String]) -> impl Iterator<Item = &'a ClientSpec> + 'a {
        self.clients
            .values()
            .filter(move |c| only.is_empty() || only.contains(&c.slug))
    }

    /// The client's build-time values with `${env:NAME}` resolved through `lookup`.
    /// An unset variable is an error that names the file and line of the reference.
    pub fn resolve_env(
        &self,
        client: &ClientSpec,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<BTreeMap<String, String>, Diagnostics> {
        let mut out = BTreeMap::new();
        let mut diags = Diagnostics::default();
        for (k, v) in &client.frontend_env {
            match &v.value {
                EnvSource::Literal(s) => {
                    out.insert(k.clone(), s.clone());
                }
                EnvSource::FromEnv(name) if secrets::is_credential_variable(name) => diags.push(self.diag_at(
                    &v.file,
                    &v.field,
                    format!("`{name}` holds one of intelli's own credentials and would be published in the site"),
                )),
                EnvSource::FromEnv(name) => match lookup(name) {
                    Some(s) if secrets::looks_like_secret(k, &s).is_some() => diags.push(self.diag_at(
                        &v.file,
                        &v.field,
                        format!(
                            "the value of `{name}` looks like {}; build-time values end up in public JavaScript",
                            secrets::looks_like_secret(k, &s).unwrap_or("a secret")
                        ),
                    )),
                    Some(s) => {
                        out.insert(k.clone(), s);
                    }
                    None => diags.push(self.diag_at(
                        &v.file,
                        &v.field,
                        format!("environment variable `{name}` is not set (referenced as ${{env:{name}}})"),
                    )),
                },
            }
        }
        if diags.is_empty() {
            Ok(out)
        } else {
            Err(diags)
        }
    }

    /// The Cloudflare accounts of the fleet, in order (`cloudflare.account_id` is a list of one
    /// with Cloudflare's default limit).
    pub fn cloudflare_accounts(&self) -> Vec<placement::Account> {
        let cf = &self.settings.cloudflare;
        match &cf.account_id {
            Some(id) => vec![placement::Account {
                id: id.clone(),
                max_projects: placement::DEFAULT_MAX_PROJECTS,
                field: "cloudflare.account_id".into(),
            }],
            None => cf
                .accounts
                .iter()
                .enumerate()
                .map(|(i, a)| placement::Account {
                    id: a.id.clone(),
                    max_projects: a.max_projects,
                    field: format!("cloudflare.accounts[{i}]"),
                })
                .collect(),
        }
    }

    pub(crate) fn diag_at(&self, file: &Path, field: &str, msg: String) -> Diagnostic {
        match self.maps.get(file) {
            Some(m) => m.diag(field, msg),
            None => Diagnostic::new(file, None, field, msg),
        }
    }
}

fn env_value(
    raw: &str,
    origin: Origin,
    key: &str,
    fleet_file: &Path,
    client_file: &Path,
) -> EnvValue {
    let (file, field) = match origin {
        Origin::Defaults => (fleet_file, format!("defaults.frontend.env.{key}")),
        Origin::Client => (client_file, format!("frontend.env.{key}")),
    };
    EnvValue {
        value: match secrets::env_ref(raw) {
            Some(name) => EnvSource::FromEnv(name.to_string()),
            None => EnvSource::Literal(raw.to_string()),
        },
        file: file.to_path_buf(),
        field,
    }
}
