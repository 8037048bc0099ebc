//! `intelli sim serve`: run the simulator in the foreground until Ctrl-C, and print what to
//! export so intelli (or the vendors' own tools) talk to it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};

use super::server::{OrgConfig, SimConfig, SimHandle, start};
use crate::fleet::Fleet;
use crate::pg;

/// Shown by `intelli sim serve --help`: every knob of the `--config` file, with defaults.
const CONFIG_EXAMPLE: &str = "\
Example --config file (every field optional; defaults shown or described):

  listen: 127.0.0.1:8787           # default 127.0.0.1:0 (a free port)
  seed: 42                         # replay the same faults and jitter
  project_url_template: '{base}/__projects/{ref}'   # or 'http://{ref}.localhost:{port}'
  rate_limit_scale: 1.0            # multiplies rate-limit windows (0.05: 1 minute -> 3 s)
  fault_retry_after_ms: 2000       # the wait an injected 429 announces (default: the scaled window)
  supabase:
    provisioning_delay_ms: 2000    # COMING_UP -> ACTIVE_HEALTHY
    tokens: []                     # empty: any sbp_... token
    organizations: [{slug: intelli-sim, name: Intelli Simulated Org}]
    rate_limit_requests: 120       # per token, scope and endpoint, per window
    rate_limit_window_ms: 60000
    max_db_connections: 40
    legacy_api_keys: false         # new projects also get legacy anon/service_role keys
    going_down_ms: 2000            # delete: GOING_DOWN -> REMOVED
    removed_listed_ms: 60000       # REMOVED projects stay listed this long
  cloudflare:
    account_ids: [5a11ce0000000000000000000000c0de]
    zone_names: [intelliservice.io]
    tokens: [sim-cloudflare-token]
    domain_activation_delay_ms: 5000
    rate_limit_requests: 1200      # per 5 minutes (scaled)
    max_projects_per_account: 100  # Pages projects per account (Cloudflare's default limit)
  latency:                         # per vendor: supabase, storage, cloudflare
    supabase: {fixed_ms: 80, jitter_ms: 40}
  faults:                          # first matching rule whose dice roll hits applies
    - {path: /v1/projects, method: POST, kind: commit_then_drop, probability: 0.2}
    - {vendor: cloudflare, path: '*/deployments', kind: '503', probability: 0.1, times: 3}
    # kinds: '500' '502' '503' '524' '429' reset commit_then_drop

Admin endpoints: GET /__sim/stats, POST /__sim/stats/reset, GET /__sim/state,
GET|PUT /__sim/faults, GET|PUT /__sim/latency (same shapes as the file).";

#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// Serve the simulated Supabase and Cloudflare APIs on one local port until Ctrl-C.
    ///
    /// Prints the base URLs and the environment variables to export. Each simulated Supabase
    /// project is a real database on the PostgreSQL server (DATABASE_URL or the local default).
    /// Without --state everything is in memory and the project databases are dropped on exit.
    #[command(after_long_help = CONFIG_EXAMPLE)]
    Serve(ServeArgs),
    /// Delete a kept simulator state: drop the project databases it lists and remove its files.
    ///
    /// For a state directory made with `serve --state` (or `--sandbox`) that is no longer
    /// wanted. Stop the simulator using it first.
    Reset {
        /// The state directory.
        #[arg(long, value_name = "DIR")]
        state: PathBuf,
        /// PostgreSQL server holding the project databases.
        #[arg(long, value_name = "URL", env = "DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (default 127.0.0.1:0, a free port; overrides the config file).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Keep simulator state (projects, keys, settings) in this directory across restarts.
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// PostgreSQL server holding one database per simulated project.
    #[arg(long, value_name = "URL", env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// YAML file with realism knobs: provisioning delay, latency, rate-limit scale, faults, seed.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Seed for latency jitter and faults (overrides the config file), to replay a run.
    #[arg(long)]
    pub seed: Option<u64>,
}

/// Entry point from the CLI (synchronous: builds its own runtime). `fleet_dir` is the global
/// `--fleet` (default `fleet`): when it holds a fleet.yaml, `serve` simulates that fleet's
/// organization, Cloudflare accounts and zone.
pub fn run(cmd: SimCommand, fleet_dir: &std::path::Path) -> Result<ExitCode> {
    match cmd {
        SimCommand::Serve(args) => {
            let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            rt.block_on(serve(args, fleet_dir))?;
            Ok(ExitCode::SUCCESS)
        }
        SimCommand::Reset {
            state,
            database_url,
        } => {
            let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            let db = database_url.unwrap_or_else(pg::server_url);
            let n = rt.block_on(crate::sim::supabase::destroy_saved_state(&state, &db))?;
            println!(
                "removed the simulator state in {} ({n} project database{} dropped)",
                state.display(),
                if n == 1 { "" } else { "s" }
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Combine the config file and the flags (flags win).
pub fn config_from(args: &ServeArgs) -> Result<SimConfig> {
    let mut config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            SimConfig::from_yaml(&text).with_context(|| format!("in {}", path.display()))?
        }
        None => SimConfig::default(),
    };
    if let Some(l) = args.listen {
        config.listen = l;
    }
    if let Some(s) = &args.state {
        config.state_dir = Some(s.clone());
    }
    if let Some(u) = &args.database_url {
        config.database_url = Some(u.clone());
    }
    if let Some(s) = args.seed {
        config.seed = Some(s);
    }
    Ok(config)
}

async fn serve(args: ServeArgs, fleet_dir: &std::path::Path) -> Result<()> {
    let mut config = config_from(&args)?;
    let fleet = fleet_to_serve(fleet_dir);
    if let Some(f) = &fleet {
        serve_fleet(&mut config, f);
    }
    let state = config.state_dir.clone();
    let db = config.database_url.clone().unwrap_or_else(pg::server_url);
    let sim = start(config).await?;
    print_banner(&sim, state.as_deref(), &db, fleet.as_ref());
    wait_for_stop_signal().await?;
    eprintln!("intelli sim: shutting down");
    sim.shutdown().await
}

/// The fleet in `dir`, when there is one; one that does not load is reported and ignored (the
/// simulator still starts, with its defaults).
fn fleet_to_serve(dir: &std::path::Path) -> Option<Fleet> {
    if !dir.join(crate::fleet::FLEET_FILE).is_file() {
        return None;
    }
    match Fleet::load(dir) {
        Ok(f) => Some(f),
        Err(d) => {
            eprintln!(
                "intelli sim: not simulating the fleet in {} (it does not load):\n{d}",
                dir.display()
            );
            None
        }
    }
}

/// Make `fleet`'s organization, Cloudflare accounts and zone exist in the simulator (added to
/// what the config file says), so that the banner's exports are all `plan` and `apply` need.
pub fn serve_fleet(config: &mut SimConfig, fleet: &Fleet) {
    let org = &fleet.settings.supabase.organization_slug;
    if !config.supabase.organizations.iter().any(|o| &o.slug == org) {
        config.supabase.organizations.push(OrgConfig {
            slug: org.clone(),
            name: org.clone(),
        });
    }
    let cf = &mut config.cloudflare;
    for account in fleet.cloudflare_accounts() {
        if !cf.account_ids.contains(&account.id) {
            cf.account_ids.push(account.id);
        }
    }
    let zone = &fleet.settings.cloudflare.zone;
    if !cf.zone_names.contains(zone) {
        cf.zone_names.push(zone.clone());
    }
}

/// The URLs and the exports. Access tokens printed here are the simulator's own, not real
/// credentials; database passwords are redacted. With a `fleet`, its accounts are served and
/// no `CLOUDFLARE_ACCOUNT_ID` is needed.
pub fn print_banner(
    sim: &SimHandle,
    state: Option<&std::path::Path>,
    db: &str,
    fleet: Option<&Fleet>,
) {
    let base = sim.base_url();
    println!(
        "intelli sim listening on {base}  (seed {})",
        sim.stats().seed
    );
    println!("  Supabase Management API  {}/v1", sim.supabase_api_url());
    println!("  Supabase project URL     {}", sim.project_url_template());
    println!("  Cloudflare API           {}", sim.cloudflare_api_url());
    println!("  deployed sites           {base}/__sites/<project>/  (or by Host header)");
    println!("  admin                    {base}/__sim/stats  {base}/__sim/state");
    println!("  PostgreSQL               {}", pg::redact(db));
    match fleet {
        Some(f) => println!(
            "  fleet                    {} (its organization, Cloudflare accounts and zone exist here)",
            f.dir.display()
        ),
        None => println!(
            "  fleet                    none found (the simulator's default organization and account)"
        ),
    }
    match state {
        Some(dir) => println!("  state                    {}", dir.display()),
        None => {
            println!("  state                    memory only (project databases dropped on exit)")
        }
    }
    println!();
    println!("export SUPABASE_API_URL={}", sim.supabase_api_url());
    println!("export SUPABASE_ACCESS_TOKEN={}", sim.supabase_token());
    println!(
        "export SUPABASE_PROJECT_URL_TEMPLATE='{}'",
        sim.project_url_template()
    );
    println!(
        "export CLOUDFLARE_API_BASE_URL={}",
        sim.cloudflare_api_url()
    );
    println!("export CLOUDFLARE_API_TOKEN={}", sim.cloudflare_token());
    if fleet.is_none() {
        println!(
            "export CLOUDFLARE_ACCOUNT_ID={}",
            sim.cloudflare_account_id()
        );
    }
    // Sites are served here by Host header; without it the health check would fetch
    // https://<domain>/, which does not exist.
    println!(
        "export INTELLI_SITE_PROBE_URL={}   # health checks fetch the sites here",
        sim.base_url()
    );
    // The direct-to-Postgres path (optional): printed only when the server URL carries no
    // password, which must never reach a terminal or a log.
    match direct_template(db) {
        Some(t) => println!(
            "export INTELLI_DATABASE_URL_TEMPLATE='{t}'   # optional: SQL over a direct connection"
        ),
        None => println!(
            "# INTELLI_DATABASE_URL_TEMPLATE: your server URL with database sim_{{ref}} (not printed: it has a password)"
        ),
    }
    println!();
    println!("Press Ctrl-C to stop.");
}

/// `db` with its database name replaced by `sim_{ref}`, unless it holds a password.
fn direct_template(db: &str) -> Option<String> {
    let u = url::Url::parse(db).ok()?;
    if u.password().is_some() {
        return None;
    }
    // Built by hand: `Url::set_path` would percent-encode the braces of the placeholder.
    let marker = "intelli_sim_ref_placeholder";
    let with = pg::with_database(db, &format!("sim_{marker}")).ok()?;
    Some(with.replace(marker, "{ref}"))
}

/// Ctrl-C, or SIGTERM (what `docker stop`, systemd and CI runners send) on Unix.
async fn wait_for_stop_signal() -> Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C"),
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")
    }
}
