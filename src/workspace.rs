//! Wiring for the commands: everything desired read from the repository, and connections to
//! the vendors (real ones from the environment, or an in-process simulator with `--sandbox`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
#[cfg(feature = "sim")]
use secrecy::SecretString;
use sha2::{Digest, Sha256};

use crate::fleet::{ClientSpec, Fleet};
use crate::migrate::exec::SqlExecutor;
use crate::migrate::{self, MigrationFile};
use crate::plan::Desired;
#[cfg(feature = "sim")]
use crate::sim::server::{SimConfig, SimHandle};
use crate::supabase::{SupabaseClient, SupabaseConfig};

/// The desired state, read once per command.
pub struct Workspace {
    pub fleet: Fleet,
    pub migrations: Vec<MigrationFile>,
    pub seed_sql: String,
    /// Repository-relative, as recorded in `supabase_migrations.seed_files`.
    pub seed_path: String,
    pub seed_sha256: String,
    /// Digest over the fleet files, the migrations and the seed.
    pub digest: String,
    /// Digest of the frontend sources and build commands (see `frontend::source_digest`).
    pub frontend_digest: String,
}

impl Workspace {
    /// Load and validate; a validation failure is returned as the diagnostics' text.
    pub fn load(fleet_dir: &Path) -> Result<Workspace> {
        // The diagnostics name their files and fields: no context to add.
        let fleet = Fleet::load(fleet_dir)?;
        let migrations = migrate::discover(&fleet.root.join(&fleet.settings.migrations.dir))?;
        let seed_path = fleet.settings.migrations.seed.clone();
        let seed_bytes = std::fs::read(fleet.root.join(&seed_path))
            .with_context(|| format!("reading the seed {seed_path}"))?;
        let seed_sql = String::from_utf8(seed_bytes.clone())
            .with_context(|| format!("{seed_path} is not UTF-8"))?;
        let seed_sha256 = hex::encode(Sha256::digest(&seed_bytes));

        let mut h = Sha256::new();
        let mut fleet_files: Vec<PathBuf> = std::fs::read_dir(fleet_dir)?
            .flatten()
            .map(|e| e.path())
            .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
            .collect();
        fleet_files.sort();
        for f in &fleet_files {
            h.update(
                f.file_name()
                    .map(|n| n.as_encoded_bytes())
                    .unwrap_or_default(),
            );
            h.update(std::fs::read(f)?);
        }
        for m in &migrations {
            h.update(m.version.as_bytes());
            h.update(m.sql.as_bytes());
        }
        h.update(&seed_bytes);
        let front = &fleet.settings.frontend;
        let frontend_digest = crate::frontend::source_digest(
            &fleet.root.join(&front.dir),
            &front.install_command,
            &front.build_command,
        )?;
        h.update(frontend_digest.as_bytes());
        Ok(Workspace {
            frontend_digest,
            fleet,
            migrations,
            seed_sql,
            seed_path,
            seed_sha256,
            digest: hex::encode(h.finalize()),
        })
    }

    /// The desired state for planning; `project_url_template` is `None` when only the Supabase
    /// side is planned.
    pub fn desired(&self, project_url_template: Option<&str>) -> Desired<'_> {
        Desired {
            fleet: &self.fleet,
            migrations: &self.migrations,
            seed_path: self.seed_path.clone(),
            seed_sha256: self.seed_sha256.clone(),
            digest: self.digest.clone(),
            frontend: project_url_template.map(|t| crate::plan::FrontendDesired {
                source_digest: self.frontend_digest.clone(),
                project_url_template: t.to_string(),
                client_env: self
                    .fleet
                    .clients
                    .values()
                    .map(|c| {
                        let resolved = self
                            .fleet
                            .resolve_env(c, |n| std::env::var(n).ok())
                            .map_err(|d| d.to_string());
                        (c.slug.clone(), resolved)
                    })
                    .collect(),
                accounts: Default::default(),
            }),
        }
    }

    /// The clients named by `--only` (all when empty) minus `--exclude`; unknown names are errors.
    pub fn select(&self, only: &[String], exclude: &[String]) -> Result<Vec<&ClientSpec>> {
        for name in only.iter().chain(exclude) {
            if !self.fleet.clients.contains_key(name) {
                bail!("no client named `{name}` in {}", self.fleet.dir.display());
            }
        }
        Ok(self
            .fleet
            .clients
            .values()
            .filter(|c| only.is_empty() || only.contains(&c.slug))
            .filter(|c| !exclude.contains(&c.slug))
            .collect())
    }
}

/// `INTELLI_DATABASE_URL_TEMPLATE` checked before any request: its TLS settings must make
/// sense (see [`crate::pg::tls`]). `INTELLI_ALLOW_PLAINTEXT_DB`, which allowed plaintext to other
/// hosts before TLS existed, is refused with what replaces it rather than silently ignored: a
/// script that set it would otherwise start asking for TLS from a server that may not offer it.
fn check_database_url_template(template: &str) -> Result<String> {
    if std::env::var_os("INTELLI_ALLOW_PLAINTEXT_DB").is_some() {
        bail!(
            "INTELLI_ALLOW_PLAINTEXT_DB is no longer supported: direct connections use TLS; on a trusted \
             network write sslmode=disable in INTELLI_DATABASE_URL_TEMPLATE instead, and unset it"
        );
    }
    crate::pg::tls::parse(&template.replace("{ref}", "project-ref"))
        .context("INTELLI_DATABASE_URL_TEMPLATE")?;
    Ok(template.to_string())
}

/// Clients for the vendors, and the simulator behind them in sandbox mode.
pub struct Connections {
    pub supabase: SupabaseClient,
    pub sql: SqlExecutor,
    /// The Cloudflare side; `None` when it is skipped.
    pub cloudflare: Option<crate::cloudflare::CloudflareClient>,
    /// The fleet's Cloudflare accounts, in order, when the environment changed them
    /// (`CLOUDFLARE_ACCOUNT_ID` replaces a single one); `None`: as fleet.yaml says.
    pub cloudflare_accounts: Option<Vec<crate::fleet::placement::Account>>,
    /// Where sites are fetched for health checks (see `apply::site::SiteContext::probe_base`).
    pub probe_base: Option<String>,
    #[cfg(feature = "sim")]
    sim: Option<SimHandle>,
    local_pg: Option<crate::pg::LocalServer>,
}

impl Connections {
    /// Connections to clients the caller made (tests and benches with their own settings).
    pub fn new(
        supabase: SupabaseClient,
        sql: SqlExecutor,
        cloudflare: Option<crate::cloudflare::CloudflareClient>,
        probe_base: Option<String>,
    ) -> Connections {
        Connections {
            supabase,
            sql,
            cloudflare,
            cloudflare_accounts: None,
            probe_base,
            #[cfg(feature = "sim")]
            sim: None,
            local_pg: None,
        }
    }

    /// Real vendors, configured from the environment (`SUPABASE_ACCESS_TOKEN`, `SUPABASE_API_URL`,
    /// `SUPABASE_PROJECT_URL_TEMPLATE`, `INTELLI_DATABASE_URL_TEMPLATE` for the direct path).
    pub fn from_env(fleet: &Fleet, with_cloudflare: bool) -> Result<Connections> {
        let mut config = SupabaseConfig::from_env().context("configuring the Supabase API")?;
        if let Ok(t) = std::env::var("SUPABASE_PROJECT_URL_TEMPLATE")
            && !t.trim().is_empty()
        {
            config.project_url_template = t;
        }
        let supabase = SupabaseClient::new(config).context("configuring the Supabase API")?;
        let sql = match std::env::var("INTELLI_DATABASE_URL_TEMPLATE") {
            Ok(t) if !t.trim().is_empty() => SqlExecutor::Direct {
                url_template: check_database_url_template(&t)?,
            },
            _ => SqlExecutor::ManagementApi(supabase.clone()),
        };
        let mut cloudflare_accounts = fleet.cloudflare_accounts();
        let cloudflare = if with_cloudflare {
            if let Ok(id) = std::env::var("CLOUDFLARE_ACCOUNT_ID")
                && !id.trim().is_empty()
            {
                match cloudflare_accounts.as_mut_slice() {
                    [only] => only.id = id.trim().to_string(),
                    several => bail!(
                        "CLOUDFLARE_ACCOUNT_ID is set, but fleet.yaml lists {} accounts in \
                         cloudflare.accounts: it may only replace a single account; unset it",
                        several.len()
                    ),
                }
            }
            let first = cloudflare_accounts.first().map(|a| a.id.as_str());
            let config = crate::cloudflare::CloudflareConfig::from_env(first).context(
                "configuring the Cloudflare API (or pass --skip-frontend to work on the Supabase side only)",
            )?;
            Some(
                crate::cloudflare::CloudflareClient::new(config)
                    .context("configuring the Cloudflare API")?,
            )
        } else {
            None
        };
        Ok(Connections {
            supabase,
            sql,
            cloudflare,
            cloudflare_accounts: Some(cloudflare_accounts),
            probe_base: std::env::var("INTELLI_SITE_PROBE_URL")
                .ok()
                .filter(|s| !s.is_empty()),
            #[cfg(feature = "sim")]
            sim: None,
            local_pg: None,
        })
    }

    /// In a build without the simulator (cargo feature `sim`): an error saying how to get it.
    #[cfg(not(feature = "sim"))]
    pub async fn sandbox(_fleet: &Fleet, _with_cloudflare: bool) -> Result<Connections> {
        bail!(crate::NO_SIM)
    }

    /// An in-process simulator with its state under `<root>/.intelli/sandbox/`, so successive
    /// commands see the same simulated fleet.
    #[cfg(feature = "sim")]
    pub async fn sandbox(fleet: &Fleet, with_cloudflare: bool) -> Result<Connections> {
        let state = fleet.root.join(".intelli/sandbox");
        std::fs::create_dir_all(&state).with_context(|| format!("creating {}", state.display()))?;
        let (database_url, local_pg) = crate::pg::find_or_start(&state.join("postgres")).await?;
        let mut config = SimConfig {
            state_dir: Some(state),
            database_url: Some(database_url),
            ..SimConfig::default()
        };
        config.supabase.organizations = vec![crate::sim::server::config::OrgConfig {
            slug: fleet.settings.supabase.organization_slug.clone(),
            name: fleet.settings.supabase.organization_slug.clone(),
        }];
        config.supabase.provisioning_delay_ms = 1_500;
        config.cloudflare.account_ids = fleet
            .cloudflare_accounts()
            .into_iter()
            .map(|a| a.id)
            .collect();
        config.cloudflare.zone_names = vec![fleet.settings.cloudflare.zone.clone()];
        config.cloudflare.domain_activation_delay_ms = 500;
        // Sites are built with the simulator's per-project URL, which contains its port: keep
        // the port across runs, or every run would redeploy every site.
        let port_file = fleet.root.join(".intelli/sandbox/port");
        let saved_port: Option<u16> = std::fs::read_to_string(&port_file)
            .ok()
            .and_then(|p| p.trim().parse().ok());
        let pinned = saved_port.map(|port| {
            let mut c = config.clone();
            c.listen = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            c
        });
        let sim = match pinned {
            Some(c) => match crate::sim::server::start(c).await {
                Ok(sim) => sim,
                // Port taken by something else: a new port (sites redeploy once).
                Err(_) => crate::sim::server::start(config)
                    .await
                    .context("starting the sandbox simulator")?,
            },
            None => crate::sim::server::start(config)
                .await
                .context("starting the sandbox simulator")?,
        };
        let _ = std::fs::write(&port_file, sim.addr().port().to_string());
        let mut sb = SupabaseConfig::new(SecretString::from(sim.supabase_token()));
        sb.api_url = url::Url::parse(&sim.supabase_api_url())?;
        sb.project_url_template = sim.project_url_template().to_string();
        let supabase = SupabaseClient::new(sb).context("configuring the sandbox's Supabase API")?;
        let cloudflare = if with_cloudflare {
            let mut cf = crate::cloudflare::CloudflareConfig::new(
                SecretString::from(sim.cloudflare_token()),
                sim.cloudflare_account_id(),
            );
            cf.api_base = url::Url::parse(&sim.cloudflare_api_url())?;
            Some(
                crate::cloudflare::CloudflareClient::new(cf)
                    .context("configuring the sandbox's Cloudflare API")?,
            )
        } else {
            None
        };
        Ok(Connections {
            sql: SqlExecutor::ManagementApi(supabase.clone()),
            supabase,
            cloudflare,
            cloudflare_accounts: None,
            probe_base: Some(sim.base_url()),
            sim: Some(sim),
            local_pg,
        })
    }

    /// Stop the sandbox simulator, if any, saving its state.
    pub async fn close(self) -> Result<()> {
        #[cfg(feature = "sim")]
        let result = match self.sim {
            Some(sim) => sim.shutdown().await,
            None => Ok(()),
        };
        #[cfg(not(feature = "sim"))]
        let result = Ok(());
        if let Some(pg) = self.local_pg {
            pg.stop();
        }
        result
    }
}
