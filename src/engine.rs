//! The engine: observe → plan → apply as a small API, used by the commands, the integration
//! tests and the benches alike.
//!
//! It owns what every caller would otherwise rebuild: the desired state as the connections can
//! plan it, the frontend's install step (run once per engine, before the first build), the
//! build slots, the work slots and the waits.
//!
//! **Slots bound work, not waiting.** Every client of an apply runs at once; a client holds one
//! of `parallelism` work slots only while it does something (vendor requests, a build, a
//! re-plan), and gives it back while it waits (project provisioning and health, domain
//! activation, the site's health probe, a lost create answer being looked up). So a fleet of
//! new projects that each wait minutes for provisioning does not hold back clients with work to
//! do. Builds additionally take one of the build slots (CPU-bound, see [`build_slots`]).
//!
//! [`Engine::apply`] takes any set of client plans and returns their outcomes, and may be
//! called more than once on one engine (the install runs once): a caller that orders clients
//! in waves calls it once per wave, checking its gate in between.

use std::time::Duration;

use anyhow::{Context, Result};
use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::apply::{self, ApplyReport, Waits};
use crate::fleet::ClientSpec;
use crate::fleet::placement::Placement;
use crate::observe::{self, ObservedFleet};
use crate::plan::{self, ClientPlan, Desired, Plan, PlanOptions};
use crate::workspace::{Connections, Workspace};

/// Observation runs at least this many clients at once: it only reads, and the HTTP layer's
/// rate limiter paces it.
const MIN_OBSERVE_PARALLELISM: usize = 8;

/// Observe, plan and apply one workspace through one set of connections.
pub struct Engine<'w> {
    ws: &'w Workspace,
    conns: &'w Connections,
    options: PlanOptions,
    waits: Waits,
    /// Clients observed at once (the fleet's `parallelism`, at least 8).
    observe_parallelism: usize,
    slots: Arc<Semaphore>,
    /// The number of work slots.
    parallelism: usize,
    builds: Semaphore,
    /// The frontend's dependency install, run at most once per engine.
    installer: crate::frontend::install::Installer,
    /// Where apply's events go (`apply::progress`).
    progress: Box<dyn apply::progress::Progress + 'w>,
    /// The fleet's lease, checked before every step of apply (`None`: `--no-lock`, or a
    /// caller that holds no lease, like the tests and benches).
    lease: Option<crate::lease::LeaseGuard>,
    /// `--shard K/N`: plan only this shard's clients (placement stays fleet-wide).
    shard: crate::shard::Shard,
}

impl<'w> Engine<'w> {
    /// An engine with the fleet's parallelism, [`waits_from_env`], default plan options and
    /// progress lines on stderr.
    pub fn new(ws: &'w Workspace, conns: &'w Connections) -> Engine<'w> {
        let parallelism = (ws.fleet.settings.parallelism as usize).max(1);
        Engine {
            ws,
            conns,
            options: PlanOptions::default(),
            waits: waits_from_env(),
            observe_parallelism: parallelism.max(MIN_OBSERVE_PARALLELISM),
            slots: Arc::new(Semaphore::new(parallelism)),
            parallelism,
            builds: Semaphore::new(build_slots(&ws.fleet.settings.frontend.build_command)),
            installer: crate::frontend::install::Installer::new(
                ws.fleet.root.join(&ws.fleet.settings.frontend.dir),
                ws.fleet.settings.frontend.install_command.clone(),
            ),
            progress: Box::new(apply::progress::Lines(|line: &str| eprintln!("{line}"))),
            lease: None,
            shard: crate::shard::Shard::WHOLE,
        }
    }

    /// Plan only `shard`'s clients (`--shard K/N`, see [`crate::shard`]).
    pub fn with_shard(mut self, shard: crate::shard::Shard) -> Self {
        self.shard = shard;
        self
    }

    /// Check `lease` before every step of apply: once it cannot be renewed, nothing new
    /// starts.
    pub fn with_lease(mut self, lease: crate::lease::LeaseGuard) -> Self {
        self.lease = Some(lease);
        self
    }

    pub fn with_options(mut self, options: PlanOptions) -> Self {
        self.options = options;
        self
    }

    pub fn with_waits(mut self, waits: Waits) -> Self {
        self.waits = waits;
        self
    }

    /// How many clients may do work at once during apply (`--parallelism`).
    pub fn with_parallelism(mut self, parallelism: usize) -> Self {
        self.slots = Arc::new(Semaphore::new(parallelism.max(1)));
        self.parallelism = parallelism.max(1);
        self
    }

    /// Where apply's progress lines go (one plain line per event).
    pub fn with_progress(mut self, progress: impl Fn(&str) + Send + Sync + 'w) -> Self {
        self.progress = Box::new(apply::progress::Lines(progress));
        self
    }

    /// Where apply's events go: plain lines, the live display or JSON lines
    /// (`apply::progress`).
    pub fn with_reporter(mut self, progress: Box<dyn apply::progress::Progress + 'w>) -> Self {
        self.progress = progress;
        self
    }

    /// The desired state as these connections can plan it (the frontend side only when
    /// Cloudflare is connected).
    pub fn desired(&self) -> Desired<'w> {
        let template = self
            .conns
            .cloudflare
            .as_ref()
            .map(|_| self.conns.supabase.project_url("{ref}"));
        self.ws.desired(template.as_deref())
    }

    /// The fleet's Cloudflare accounts, as the connections have them.
    fn cloudflare_accounts(&self) -> Vec<crate::fleet::placement::Account> {
        self.conns
            .cloudflare_accounts
            .clone()
            .unwrap_or_else(|| self.ws.fleet.cloudflare_accounts())
    }

    /// The observed state of `selected` (both sides, at once).
    pub async fn observe(&self, selected: &[&ClientSpec]) -> Result<ObservedFleet> {
        self.observe_placed(selected)
            .await
            .map(|(observed, _)| observed)
    }

    /// [`Engine::observe`], and the Cloudflare account of every client's site over the whole
    /// fleet ([`crate::fleet::placement`]; `None` without Cloudflare). A fleet that does not fit
    /// its accounts is an error here, before anything is changed.
    pub async fn observe_placed(
        &self,
        selected: &[&ClientSpec],
    ) -> Result<(ObservedFleet, Option<Placement>)> {
        let conns = self.conns;
        let ws = self.ws;
        let parallelism = self.observe_parallelism;
        let supabase = observe::supabase::observe(
            &conns.supabase,
            &conns.sql,
            &ws.fleet,
            selected,
            &ws.migrations,
            parallelism,
            conns.cloudflare.is_some(),
        );
        let sites = async {
            match &conns.cloudflare {
                Some(cf) => observe::cloudflare::observe(
                    cf,
                    &ws.fleet,
                    &self.cloudflare_accounts(),
                    selected,
                    parallelism,
                )
                .await
                .map(Some),
                None => Ok(None),
            }
        };
        let (observed, sites) = tokio::join!(supabase, sites);
        let mut observed = observed.context("observing Supabase")?;
        let accounts = self.cloudflare_accounts();
        let mut placement = None;
        if let Some((sites, inventory)) = sites.context("observing Cloudflare")? {
            let placed = crate::fleet::placement::place(&ws.fleet, &accounts, &inventory)
                .map_err(|d| anyhow::anyhow!("{d}"))?;
            placement = Some(placed);
            for (slug, site) in sites {
                observed.clients.entry(slug).or_default().site = site;
            }
        }
        Ok((observed, placement))
    }

    /// The plan for the clients named by `only` (all when empty) minus `exclude`, within the
    /// engine's shard.
    pub async fn plan(&self, only: &[String], exclude: &[String]) -> Result<Plan> {
        self.observe_and_plan(only, exclude)
            .await
            .map(|(_, plan)| plan)
    }

    /// [`Engine::plan`], and the observed state it was made from (what `intelli status` shows:
    /// the same requests as a plan, no more).
    pub async fn observe_and_plan(
        &self,
        only: &[String],
        exclude: &[String],
    ) -> Result<(ObservedFleet, Plan)> {
        let selected = crate::shard::select(self.shard, self.ws.select(only, exclude)?);
        let (observed, placement) = self.observe_placed(&selected).await?;
        let mut desired = self.desired();
        if let (Some(front), Some(placed)) = (desired.frontend.as_mut(), placement) {
            front.accounts = placed;
        }
        let mut plan = plan::plan(&desired, &selected, &observed, self.options);
        crate::shard::mark(&mut plan, self.shard);
        Ok((observed, plan))
    }

    /// The plan of exactly `selected`, whatever the engine's shard (the rollout's look at the
    /// earlier waves in other shards).
    pub async fn plan_of(&self, selected: &[&ClientSpec]) -> Result<Plan> {
        let (observed, placement) = self.observe_placed(selected).await?;
        let mut desired = self.desired();
        if let (Some(front), Some(placed)) = (desired.frontend.as_mut(), placement) {
            front.accounts = placed;
        }
        Ok(plan::plan(&desired, selected, &observed, self.options))
    }

    /// The shard this engine plans (`--shard K/N`; the whole fleet by default).
    pub fn shard(&self) -> crate::shard::Shard {
        self.shard
    }

    /// How long this engine waits for slow things (see [`Waits`]).
    pub fn waits(&self) -> Waits {
        self.waits
    }

    /// Install the frontend's dependencies, once per engine (skipped when `node_modules`
    /// matches the lockfile: [`crate::frontend::install`]).
    pub async fn install(
        &self,
    ) -> Result<crate::frontend::install::Installed, crate::frontend::install::InstallError> {
        let progress = &*self.progress;
        self.installer.ensure(&|line| progress.log(line)).await
    }

    /// How many times this engine started the install command (0 or 1).
    pub fn install_runs(&self) -> usize {
        self.installer.runs()
    }

    /// Apply `plans` (all at once, work bounded by the slots); one client's failure never
    /// stops another. When a plan builds a site, the frontend's install starts at once,
    /// beside the Supabase side; builds wait for it, and a failed install fails each build
    /// with its error while the Supabase side goes on.
    pub async fn apply(&self, plans: &[ClientPlan]) -> Result<ApplyReport> {
        self.apply_in(plans, &self.slots, None).await
    }

    /// [`Engine::apply`] of one wave: with `parallel` work slots of its own when the wave sets
    /// `parallel`, else the engine's; with `stop`, the wave halts as soon as its failures
    /// exceed its budget (see [`crate::rollout`]).
    pub async fn apply_wave(
        &self,
        plans: &[ClientPlan],
        parallel: Option<usize>,
        stop: Option<&crate::rollout::WaveStop>,
    ) -> Result<ApplyReport> {
        match parallel {
            Some(n) => {
                self.apply_in(plans, &Arc::new(Semaphore::new(n.max(1))), stop)
                    .await
            }
            None => self.apply_in(plans, &self.slots, stop).await,
        }
    }

    /// Apply `plan` wave by wave ([`crate::rollout`]; one wave without `rollout:`).
    pub async fn rollout(
        &self,
        plan: &Plan,
        opts: &crate::rollout::RolloutOptions,
    ) -> Result<crate::rollout::RolloutReport> {
        crate::rollout::run(self, plan, opts).await
    }

    /// The workspace this engine plans.
    pub fn workspace(&self) -> &'w Workspace {
        self.ws
    }

    /// The vendor connections this engine uses.
    pub fn connections(&self) -> &'w Connections {
        self.conns
    }

    /// How many clients do work at once when a wave does not say (checks use it too).
    pub fn parallelism(&self) -> usize {
        self.parallelism
    }

    /// A progress line, where apply's go.
    pub fn say(&self, line: &str) {
        self.progress.log(line);
    }

    async fn apply_in(
        &self,
        plans: &[ClientPlan],
        slots: &Arc<Semaphore>,
        wave: Option<&crate::rollout::WaveStop>,
    ) -> Result<ApplyReport> {
        let builds_a_site = plans
            .iter()
            .any(|c| c.errors.is_empty() && c.actions.iter().any(plan::Action::builds_site));
        let mut desired = self.desired();
        if let Some(front) = desired.frontend.as_mut() {
            // Where the plan put each site: re-planning during apply must agree with it.
            front.accounts = plans
                .iter()
                .filter_map(|c| Some((c.client.clone(), c.cloudflare_account.clone()?)))
                .collect();
        }
        let conns = self.conns;
        let ctx = apply::Context {
            supabase: &conns.supabase,
            sql: &conns.sql,
            fleet: &self.ws.fleet,
            desired: &desired,
            migrations: &self.ws.migrations,
            seed_sql: &self.ws.seed_sql,
            options: self.options,
            waits: self.waits,
            slots,
            progress: &*self.progress,
            lease: self.lease.clone(),
            wave,
            site: conns
                .cloudflare
                .as_ref()
                .map(|cf| apply::site::SiteContext {
                    cloudflare: cf,
                    source_digest: self.ws.frontend_digest.clone(),
                    builds: &self.builds,
                    install: &self.installer,
                    probe_base: conns.probe_base.clone(),
                }),
        };
        let install = async {
            if builds_a_site {
                // The outcome reaches each build through the installer; a failure is reported
                // there, per client.
                let _ = self.install().await;
            }
        };
        self.progress.begin(
            plans.len(),
            plans
                .iter()
                .filter(|c| c.errors.is_empty())
                .map(|c| c.actions.len())
                .sum(),
        );
        let ((), report) = tokio::join!(install, apply::apply(&ctx, plans));
        self.progress.finish();
        Ok(report)
    }
}

/// Builds that may run at once: one per CPU when each client builds into its own directory,
/// else one (they would share the frontend's output directory).
pub fn build_slots(build_command: &str) -> usize {
    if crate::frontend::build::supports_parallel_builds(build_command) {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        1
    }
}

/// Poll interval and timeouts for slow vendor operations (`INTELLI_POLL_MS`,
/// `INTELLI_HEALTHY_TIMEOUT_SECS`, `INTELLI_DOMAIN_TIMEOUT_SECS`, `INTELLI_CREATE_LOOKUP_SECS`,
/// `INTELLI_PARK_LIMIT_SECS`);
/// the defaults suit the real vendors.
pub fn waits_from_env() -> Waits {
    let num = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let mut w = Waits {
        // Short enough for the simulator's provisioning, polite enough for the real API (one
        // GET per client every half second is far under the per-project limit).
        poll: Duration::from_millis(num("INTELLI_POLL_MS").unwrap_or(500)),
        ..Waits::default()
    };
    if let Some(s) = num("INTELLI_HEALTHY_TIMEOUT_SECS") {
        w.healthy_timeout = Duration::from_secs(s);
    }
    if let Some(s) = num("INTELLI_DOMAIN_TIMEOUT_SECS") {
        w.domain_timeout = Duration::from_secs(s);
    }
    if let Some(s) = num("INTELLI_CREATE_LOOKUP_SECS") {
        w.ambiguous_lookup = Duration::from_secs(s);
    }
    if let Some(s) = num("INTELLI_PARK_LIMIT_SECS") {
        w.park_limit = Duration::from_secs(s);
    }
    if let Some(s) = num("INTELLI_SHARD_WAIT_SECS") {
        w.other_shards = Duration::from_secs(s);
    }
    w
}
