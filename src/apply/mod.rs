//! Executing a plan: ordering inside a client, concurrency across clients, progress, summary.
//!
//! Owns: calling the vendors' mutating endpoints. Every step either completes or leaves a state
//! from which the next `plan` converges: project creation looks before it leaps, migrations
//! and the seed record themselves in the same transaction as their SQL, and after any step
//! that makes a project's state knowable (create, restore, wait) the client is observed and
//! planned again before going on.

pub mod error;
mod keys;
pub mod progress;
pub mod report;
pub mod site;

use std::time::{Duration, Instant};

use secrecy::SecretString;
use std::sync::Arc;

use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::fleet::{ClientSpec, Fleet};
use crate::http::slot::{self, WorkSlot};
use crate::http::{Policy, RetryBudget};
use crate::migrate::exec::SqlExecutor;
use crate::migrate::{MigrationFile, sql};
use crate::observe::supabase as observe_sb;
use crate::plan::{Action, BucketSpec, ClientPlan, Desired, PlanOptions, describe, plan_client};
use crate::supabase::storage::Bucket;
use crate::supabase::types::ProjectPhase;
use crate::supabase::{ApiKeys, CreateProjectRequest, Project, ProjectStatus, SupabaseClient};
pub use error::StepError;
pub use report::{ApplyReport, ClientOutcome, Failure};

/// How long to wait for slow vendor operations.
#[derive(Debug, Clone, Copy)]
pub struct Waits {
    pub poll: Duration,
    pub healthy_timeout: Duration,
    /// How long to wait for a custom domain before reporting it pending (not failed).
    pub domain_timeout: Duration,
    /// How long to keep looking for a project whose create answer was lost
    /// (`INTELLI_CREATE_LOOKUP_SECS`). A create that committed is listed at once, so this is
    /// short; a create that did not commit is left for the next apply, never sent twice.
    pub ambiguous_lookup: Duration,
    /// How long, in total, one client may stay parked on the vendors' long 429 waits before
    /// it is reported as deferred (`INTELLI_PARK_LIMIT_SECS`).
    pub park_limit: Duration,
    /// With `--shard`, how long a wave waits for the earlier waves' clients in the other shards
    /// to converge and pass their health gate before the rollout halts
    /// (`INTELLI_SHARD_WAIT_SECS`).
    pub other_shards: Duration,
}

impl Default for Waits {
    fn default() -> Self {
        Waits {
            poll: Duration::from_secs(5),
            healthy_timeout: Duration::from_secs(15 * 60),
            domain_timeout: Duration::from_secs(10 * 60),
            ambiguous_lookup: Duration::from_secs(30),
            park_limit: Duration::from_secs(15 * 60),
            other_shards: Duration::from_secs(15 * 60),
        }
    }
}

/// Everything apply needs besides the plan.
pub struct Context<'a> {
    pub supabase: &'a SupabaseClient,
    pub sql: &'a SqlExecutor,
    pub fleet: &'a Fleet,
    pub desired: &'a Desired<'a>,
    pub migrations: &'a [MigrationFile],
    pub seed_sql: &'a str,
    pub options: PlanOptions,
    pub waits: Waits,
    /// Work slots: a client holds one while it does something and gives it back while it
    /// waits (see `engine`).
    pub slots: &'a Arc<Semaphore>,
    /// Apply's events go here (`progress`: plain lines, the live display or JSON lines).
    pub progress: &'a dyn progress::Progress,
    /// The fleet's lease, checked before every step: a holder that cannot renew it stops
    /// writing. `None` under `--no-lock`.
    pub lease: Option<crate::lease::LeaseGuard>,
    /// The wave's stop when these clients are one wave of a rollout that may halt on their
    /// failures (`rollout`): each failed client is counted there, and once it halts no client
    /// starts another step. `None` outside waves, and for a wave whose failures halt nothing.
    pub wave: Option<&'a crate::rollout::WaveStop>,
    /// The Cloudflare side; `None` when only the Supabase side is applied.
    pub site: Option<site::SiteContext<'a>>,
}

/// Apply every client's plan. All clients run at once; `ctx.slots` bounds how many do work
/// at a time. One client's failure never stops another.
pub async fn apply(ctx: &Context<'_>, plans: &[ClientPlan]) -> ApplyReport {
    let mut outcomes = futures::future::join_all(plans.iter().map(|p| {
        // Every vendor request below is traced inside this span (with `INTELLI_LOG=debug`).
        let span = tracing::info_span!("client", client = %p.client);
        apply_client(ctx, p).instrument(span)
    }))
    .await;
    outcomes.sort_by(|a, b| a.client.cmp(&b.client));
    ApplyReport { outcomes }
}

async fn apply_client(ctx: &Context<'_>, plan: &ClientPlan) -> ClientOutcome {
    let started = Instant::now();
    let mut outcome = run_client(ctx, plan, started).await;
    outcome.elapsed = started.elapsed();
    let (result, message) = match &outcome.failed {
        None => match &outcome.stopped {
            Some(stop) => (
                progress::Outcome::Stopped,
                Some(format!("{}: {}", stop.step, stop.cause)),
            ),
            None => (progress::Outcome::Ok, None),
        },
        Some(f) => (
            if f.policy == Policy::Park {
                progress::Outcome::Deferred
            } else {
                progress::Outcome::Failed
            },
            Some(format!("{}: {}", f.step, f.error)),
        ),
    };
    let mut event = progress::Event::new(progress::Phase::Client)
        .client(&plan.client)
        .duration(outcome.elapsed)
        .outcome(result);
    event.message = message;
    ctx.progress.event(&event);
    outcome
}

async fn run_client(ctx: &Context<'_>, plan: &ClientPlan, started: Instant) -> ClientOutcome {
    let mut outcome = ClientOutcome::new(&plan.client);
    let refuse = |outcome: &mut ClientOutcome, why: String| {
        let e = StepError::ask_user(why);
        ctx.progress.event(
            &progress::Event::new(progress::Phase::Failed)
                .client(&plan.client)
                .action("plan")
                .duration(started.elapsed())
                .outcome(progress::Outcome::Failed)
                .message(e.chain()),
        );
        outcome.fail("plan", &e);
        if let Some(wave) = ctx.wave {
            wave.client_failed();
        }
    };
    let Some(spec) = ctx.fleet.clients.get(&plan.client) else {
        refuse(
            &mut outcome,
            "the client is no longer in the fleet files".into(),
        );
        return outcome;
    };
    if !plan.errors.is_empty() {
        refuse(&mut outcome, plan.errors.join("; "));
        return outcome;
    }
    let mut run = ClientRun {
        ctx,
        spec,
        project_ref: plan.project_ref.clone(),
        cloudflare_account: plan.cloudflare_account.clone(),
        keys: None,
        built_index: None,
        slot: WorkSlot::new(ctx.slots.clone()),
        created: false,
        budget: RetryBudget::new(RESEND_BUDGET),
        outcome: &mut outcome,
    };
    // Waits inside a request (rate limits) lend this client's slot to others meanwhile.
    let result = slot::holding(run.slot.clone(), run.execute(plan.actions.clone())).await;
    // Counted while the work slot is still held, so the client that takes it next already
    // sees the wave halt.
    if let (Err(_), Some(wave)) = (&result, ctx.wave) {
        wave.client_failed();
    }
    let project_ref = run.project_ref.take();
    // Gives the work slot back.
    run.idle();
    drop(run);
    outcome.project_ref = project_ref;
    if let Err((step, e)) = result {
        outcome.fail(&step, &e);
    }
    outcome
}

struct ClientRun<'r, 'a> {
    ctx: &'r Context<'a>,
    spec: &'r ClientSpec,
    project_ref: Option<String>,
    /// The Cloudflare account of the client's site, as the plan placed it.
    cloudflare_account: Option<String>,
    keys: Option<ApiKeys>,
    /// index.html of the build this run deployed, for the health check.
    built_index: Option<Vec<u8>>,
    /// The work slot this client holds, when it holds one.
    slot: Arc<WorkSlot>,
    /// This run created the client's project (so its database has no history yet).
    created: bool,
    /// Re-sends of guarded writes this client may still make in this run.
    budget: RetryBudget,
    outcome: &'r mut ClientOutcome,
}

/// Re-sends of guarded writes (migrations, seed) one client may make per apply after
/// transport errors and 5xx: enough for a bad minute, bounded so a broken vendor costs a
/// known number of extra requests.
const RESEND_BUDGET: u32 = 8;

/// SQL text one request may carry when several migrations go in one transaction. The vendor
/// documents no limit for `database/query`; a few hundred KiB stays far from the body limits
/// of common proxies, and one file larger than this still goes, alone.
const MIGRATION_BATCH_BYTES: usize = 256 * 1024;

/// What became of an action [`ClientRun::step_parked`] was given.
enum Ran {
    /// It ran; `replan`: the client must be observed and planned again.
    Done { replan: bool },
    /// It was not started: the client's wave halted ([`Context::wave`]), or the run was
    /// stopped ([`crate::lease::LeaseGuard::stop`]).
    Stopped(report::StopCause),
}

impl<'r, 'a> ClientRun<'r, 'a> {
    /// Something a step says on the way (a wait, a skip): a note event of this client.
    fn say(&self, msg: &str) {
        self.ctx.progress.event(
            &progress::Event::new(progress::Phase::Note)
                .client(&self.spec.slug)
                .message(msg),
        );
    }

    /// An action's start, end or failure.
    fn report(&self, phase: progress::Phase, label: &str, t: Option<Instant>) -> progress::Event {
        let mut e = progress::Event::new(phase)
            .client(&self.spec.slug)
            .action(label);
        if let Some(t) = t {
            e = e.duration(t.elapsed());
        }
        e
    }

    /// Take a work slot (if not holding one already) before doing something.
    async fn busy(&mut self) -> Result<(), StepError> {
        self.slot
            .take()
            .await
            .map_err(|e| StepError::local("waiting for a work slot", Policy::GiveUp, e))
    }

    /// Give the work slot back before waiting.
    fn idle(&mut self) {
        self.slot.give_back();
    }

    /// Run the actions in order; a failure names the step it happened in.
    async fn execute(&mut self, mut actions: Vec<Action>) -> Result<(), (String, StepError)> {
        // Re-planning happens at most once per project-level step; a bound keeps a
        // misbehaving vendor from looping us forever.
        let mut replans = 0;
        let mut parked = Duration::ZERO;
        let mut queue: std::collections::VecDeque<Action> = actions.drain(..).collect();
        while let Some(action) = queue.pop_front() {
            let label = describe(&action).headline;
            let t = Instant::now();
            self.ctx
                .progress
                .event(&self.report(progress::Phase::Start, &label, None));
            let span = tracing::info_span!("action", action = %label, reason = %action.reason());
            let replan = match self
                .step_parked(&action, &mut parked)
                .instrument(span)
                .await
            {
                Ok(Ran::Done { replan }) => replan,
                Ok(Ran::Stopped(cause)) => {
                    self.ctx.progress.event(
                        &self
                            .report(progress::Phase::Stopped, &label, None)
                            .message(cause.to_string()),
                    );
                    self.outcome.stopped = Some(report::Stopped { step: label, cause });
                    return Ok(());
                }
                Err(e) => {
                    let outcome = if e.policy() == Policy::Park {
                        progress::Outcome::Deferred
                    } else {
                        progress::Outcome::Failed
                    };
                    self.ctx.progress.event(
                        &self
                            .report(progress::Phase::Failed, &label, Some(t))
                            .outcome(outcome)
                            .message(e.chain()),
                    );
                    return Err((label, e));
                }
            };
            self.ctx.progress.event(
                &self
                    .report(progress::Phase::Done, &label, Some(t))
                    .outcome(progress::Outcome::Ok),
            );
            self.outcome.done.push(label);
            if replan {
                replans += 1;
                if replans > 3 {
                    return Err((
                        "re-plan".into(),
                        StepError::retry("the project kept changing state; run apply again"),
                    ));
                }
                // The Supabase side is planned again from what now exists; the site's steps
                // were planned to run after it and work out their values when they run.
                let site_rest: Vec<Action> = queue.drain(..).filter(Action::is_site).collect();
                let mut next: Vec<Action> = self
                    .replan()
                    .await
                    .map_err(|e| ("observe after the project step".to_string(), e))?
                    .into_iter()
                    .filter(|a| !a.is_site())
                    .collect();
                next.extend(site_rest);
                queue = next.into();
            }
        }
        Ok(())
    }

    /// Run one action with a work slot, checking the lease first and, once the slot is held,
    /// the wave's stop (a client that queued for the slot before its wave halted must not
    /// start after it). When the vendor asks for a wait longer than the HTTP layer makes in
    /// place ([`Policy::Park`]), the client parks: it gives its slot back, sleeps the wait,
    /// and runs the action again (every action is safe to start again: nothing was handled),
    /// until `waits.park_limit` is spent; then the error stands and the summary reports the
    /// client as deferred.
    async fn step_parked(
        &mut self,
        action: &Action,
        parked: &mut Duration,
    ) -> Result<Ran, StepError> {
        loop {
            // Both checks come after the slot is taken: a client queued for a slot when the
            // lease stopped (a signal, a lost renewal) or its wave halted must not start.
            self.busy().await?;
            if let Some(lease) = &self.ctx.lease {
                match lease.check() {
                    Ok(()) => {}
                    // A clean stop (a signal): not this client's failure.
                    Err(crate::lease::LeaseError::Stopping(why)) => {
                        return Ok(Ran::Stopped(report::StopCause::Signal(why)));
                    }
                    Err(e) => {
                        return Err(StepError::local("the fleet's lease", Policy::Retry, e));
                    }
                }
            }
            if self.ctx.wave.is_some_and(crate::rollout::WaveStop::halted) {
                return Ok(Ran::Stopped(report::StopCause::WaveHalted));
            }
            let err = match self.step(action).await {
                Ok(replan) => return Ok(Ran::Done { replan }),
                Err(e) => e,
            };
            let wait = match (err.policy(), err.retry_after()) {
                (Policy::Park, Some(wait)) => wait,
                (Policy::Park, None) => self.ctx.waits.poll,
                (Policy::Retry | Policy::GiveUp | Policy::AskUser, _) => {
                    return Err(err);
                }
            };
            if *parked + wait > self.ctx.waits.park_limit {
                return Err(err);
            }
            *parked += wait;
            self.say(&format!(
                "  parked for {:.0}s: the vendor asked to wait (rate limited)",
                wait.as_secs_f64().ceil()
            ));
            self.idle();
            tokio::time::sleep(wait).await;
        }
    }

    fn project_ref(&self) -> Result<&str, StepError> {
        self.project_ref.as_deref().ok_or_else(|| {
            StepError::give_up("no project ref (internal: a step ran before the project existed)")
        })
    }

    /// Run one action; `Ok(true)` when the client must be observed and planned again.
    async fn step(&mut self, action: &Action) -> Result<bool, StepError> {
        let sb = self.ctx.supabase;
        match action {
            Action::CreateProject {
                name,
                organization_slug,
                region,
                instance_size,
                reason: _,
            } => {
                let project = self
                    .create_project_once(name, organization_slug, region, instance_size.clone())
                    .await?;
                self.project_ref = Some(project.project_ref.clone());
                self.wait_healthy().await?;
                Ok(true)
            }
            Action::WaitUntilHealthy { .. } => {
                self.wait_healthy().await?;
                Ok(true)
            }
            Action::RestoreProject { .. } => {
                sb.restore_project(self.project_ref()?).await?;
                self.wait_healthy().await?;
                Ok(true)
            }
            Action::PauseProject { .. } => {
                sb.pause_project(self.project_ref()?).await?;
                Ok(false)
            }
            Action::DeleteProject { project_ref, .. } => {
                sb.delete_project(project_ref).await?;
                Ok(false)
            }
            Action::UpdateAuthConfig {
                site_url,
                redirect_urls,
                reason: _,
            } => {
                let patch = crate::supabase::AuthConfigPatch {
                    site_url: Some(site_url.after.clone()),
                    uri_allow_list: Some(redirect_urls.after.clone()),
                };
                sb.patch_auth_config(self.project_ref()?, &patch).await?;
                Ok(false)
            }
            Action::CreateBucket { bucket, .. } => self.create_bucket(bucket).await.map(|()| false),
            Action::UpdateBucket { after, .. } => {
                let storage = self.storage().await?;
                storage.update_bucket(&to_bucket(after)).await?;
                Ok(false)
            }
            Action::ApplyMigrations { versions, .. } => {
                self.apply_migrations(versions).await.map(|()| false)
            }
            Action::ApplySeed { path, sha256, .. } => {
                self.apply_seed(path, sha256).await.map(|()| false)
            }
            Action::RecordSeed { path, sha256, .. } => {
                self.record_seed(path, sha256).await.map(|()| false)
            }
            Action::CreatePagesProject {
                name,
                production_branch,
                account_id,
                ..
            } => self
                .create_pages_project(name, production_branch, account_id)
                .await
                .map(|()| false),
            Action::UpdatePagesProject {
                name,
                production_branch,
                ..
            } => self
                .update_pages_project(name, &production_branch.after)
                .await
                .map(|()| false),
            Action::Deploy {
                project,
                fingerprint,
                previous,
                ..
            } => self
                .build_and_deploy(project, fingerprint.as_deref(), previous.as_ref())
                .await
                .map(|()| false),
            Action::RollbackDeployment {
                project,
                deployment_id,
                fingerprint,
                ..
            } => self
                .rollback(project, deployment_id, fingerprint)
                .await
                .map(|()| false),
            Action::AddDomain {
                project, domain, ..
            } => self.add_domain(project, domain).await.map(|()| false),
            Action::UpsertDnsRecord { name, .. } => self.upsert_dns(name).await.map(|()| false),
            Action::AdoptDnsRecord { name, target, .. } => {
                self.adopt_dns(name, target).await.map(|()| false)
            }
            Action::WaitForDomain { domain, .. } => {
                self.wait_for_domain(domain).await.map(|()| false)
            }
            Action::DeleteSite {
                project,
                dns_record,
                ..
            } => self
                .delete_site(project, dns_record.as_deref())
                .await
                .map(|()| false),
            Action::CreateApiKey { key_type, name, .. } => {
                self.create_api_key(*key_type, name).await.map(|()| false)
            }
            Action::DisableLegacyKeys { .. } => self.disable_legacy_keys().await.map(|()| false),
        }
    }

    async fn create_bucket(&mut self, bucket: &BucketSpec) -> Result<(), StepError> {
        let storage = self.storage().await?;
        match storage.create_bucket(&to_bucket(bucket)).await {
            Ok(()) => Ok(()),
            // The documented follow-up of `CreateBucket`: created by a concurrent run or a lost
            // answer, so its settings are made the planned ones.
            Err(e) if e.kind() == crate::http::ErrorKind::AlreadyExists => {
                self.say(&format!(
                    "  bucket {} exists already; setting it as planned",
                    bucket.name
                ));
                Ok(storage.update_bucket(&to_bucket(bucket)).await?)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The pending versions with their history rows: up to [`MIGRATION_BATCH_BYTES`] of them in
    /// one transaction (one request), so a new client's whole history costs one request, not
    /// one per file. When a batch of several fails, nothing of it stayed (one transaction), and
    /// its files run again one by one, each in its own transaction: the failing file is named
    /// with its own error, the ones before it are applied, and one recorded meanwhile (another
    /// run, or a batch whose answer was lost after it committed) is skipped.
    async fn apply_migrations(&self, versions: &[String]) -> Result<(), StepError> {
        let project_ref = self.project_ref()?.to_string();
        let files = versions
            .iter()
            .map(|v| {
                self.ctx
                    .migrations
                    .iter()
                    .find(|f| &f.version == v)
                    .ok_or_else(|| {
                        StepError::give_up(format!(
                            "migration {v} is in the plan but its file is gone"
                        ))
                    })
            })
            .collect::<Result<Vec<&MigrationFile>, StepError>>()?;
        for batch in sql::batches(&files, MIGRATION_BATCH_BYTES) {
            if let [_, _, ..] = batch.as_slice() {
                let t = Instant::now();
                match self
                    .ctx
                    .sql
                    .run_guarded(&project_ref, &sql::apply_migrations(&batch), Some(&self.budget))
                    .await
                {
                    Ok(_) => {
                        let secs = t.elapsed().as_secs_f64();
                        for file in &batch {
                            self.say(&format!(
                                "  migration {}_{} applied ({} in one transaction, {secs:.1}s)",
                                file.version,
                                file.name,
                                batch.len()
                            ));
                        }
                        continue;
                    }
                    // A long 429: the client parks and runs the action again later.
                    Err(e) if e.policy() == Policy::Park => {
                        return Err(StepError::sql(
                            format!("{} migrations in one transaction", batch.len()),
                            e,
                        ));
                    }
                    Err(e) => self.say(&format!(
                        "  {} migrations in one transaction did not apply ({}); applying them one by one",
                        batch.len(),
                        e.code
                            .as_ref()
                            .map_or("not a database error", |c| c.code())
                    )),
                }
            }
            for file in batch {
                self.apply_migration(&project_ref, file).await?;
            }
        }
        Ok(())
    }

    /// One version in its own transaction with its history row; one recorded by a concurrent
    /// run meanwhile is skipped.
    async fn apply_migration(
        &self,
        project_ref: &str,
        file: &MigrationFile,
    ) -> Result<(), StepError> {
        let t = Instant::now();
        match self
            .ctx
            .sql
            .run_guarded(project_ref, &sql::apply_migration(file), Some(&self.budget))
            .await
        {
            Ok(_) => self.say(&format!(
                "  migration {}_{} applied ({:.1}s)",
                file.version,
                file.name,
                t.elapsed().as_secs_f64()
            )),
            Err(e) if e.already_applied() => self.say(&format!(
                "  migration {} is recorded already (another run, or a re-send after a lost answer); skipped",
                file.version
            )),
            Err(e) => {
                return Err(StepError::sql(
                    format!("migration {}", file.path.display()),
                    e,
                ));
            }
        }
        Ok(())
    }

    /// The seed once, with the client's settings bound, recorded in the same transaction.
    async fn apply_seed(&self, path: &str, sha256: &str) -> Result<(), StepError> {
        let settings = crate::migrate::seed_settings(self.spec);
        let text = sql::apply_seed(self.ctx.seed_sql, path, sha256, &settings);
        self.run_seed_sql(path, sha256, text, "seed", "; skipped")
            .await
    }

    /// `RecordSeed`: the history row alone, guarded like the seed itself.
    async fn record_seed(&self, path: &str, sha256: &str) -> Result<(), StepError> {
        let text = sql::record_seed(path, sha256);
        self.run_seed_sql(path, sha256, text, "recording seed", "")
            .await
    }

    /// Runs the seed's guarded SQL (the seed, or its history row alone): refused when the seed
    /// file changed since the plan, a no-op when the history already has it (another run, or a
    /// re-send after a lost answer).
    async fn run_seed_sql(
        &self,
        path: &str,
        sha256: &str,
        text: sql::GuardedSql,
        what: &str,
        skipped: &str,
    ) -> Result<(), StepError> {
        let project_ref = self.project_ref()?.to_string();
        if sha256 != self.ctx.desired.seed_sha256 {
            return Err(StepError::give_up(format!(
                "{path} changed since the plan was made; plan again"
            )));
        }
        match self
            .ctx
            .sql
            .run_guarded(&project_ref, &text, Some(&self.budget))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.already_applied() => {
                self.say(&format!(
                    "  seed is recorded already (another run, or a re-send after a lost answer){skipped}"
                ));
                Ok(())
            }
            Err(e) => Err(StepError::sql(format!("{what} {path}"), e)),
        }
    }

    /// Create the project at most once. The vendor has no idempotency key and allows duplicate
    /// names, so look by name before creating; after an ambiguous failure (the answer was lost:
    /// the request may still be in flight or already done) never send it again in this run —
    /// keep looking for the project instead, and give up as "run apply again" if it does not
    /// show up.
    async fn create_project_once(
        &mut self,
        name: &str,
        org: &str,
        region: &str,
        instance_size: Option<String>,
    ) -> Result<Project, StepError> {
        let sb = self.ctx.supabase;
        if let Some(p) = only_live(name, sb.find_projects_by_name(org, name).await?)? {
            return Ok(p);
        }
        let req = CreateProjectRequest {
            name: name.to_string(),
            organization_slug: org.to_string(),
            db_pass: new_db_password(),
            region: region.to_string(),
            desired_instance_size: instance_size,
        };
        match sb.create_project(&req).await {
            Ok(p) => {
                self.created = true;
                return Ok(p);
            }
            Err(e) if e.is_ambiguous() => {
                self.say(&format!(
                    "  create {name}: {e}; looking it up before trying again"
                ));
            }
            Err(e) => return Err(e.into()),
        }
        // Looking the project up is waiting for it to appear: no work slot is held.
        self.idle();
        let found = self.look_for_lost_create(name, org).await;
        self.busy().await?;
        // Found after a lost answer: this run's create made it.
        self.created = found.is_ok();
        found
    }

    /// After a create whose answer was lost: look the project up until it appears or
    /// `waits.ambiguous_lookup` has passed. Never sends the create again.
    async fn look_for_lost_create(&self, name: &str, org: &str) -> Result<Project, StepError> {
        let sb = self.ctx.supabase;
        let deadline = Instant::now() + self.ctx.waits.ambiguous_lookup;
        loop {
            match sb.find_projects_by_name(org, name).await {
                Ok(found) => {
                    if let Some(p) = only_live(name, found)? {
                        self.say(&format!(
                            "  project {name} was created despite the lost answer; using it"
                        ));
                        return Ok(p);
                    }
                }
                Err(e) if e.policy() == Policy::Retry => {}
                Err(e) => return Err(e.into()),
            }
            if Instant::now() >= deadline {
                return Err(StepError::retry(format!(
                    "create outcome unknown — the next apply will look again (the answer to creating {name} \
                     was lost and the project was not listed within {}s; nothing was sent twice)",
                    self.ctx.waits.ambiguous_lookup.as_secs()
                )));
            }
            tokio::time::sleep(self.ctx.waits.poll).await;
        }
    }

    /// Wait (without a work slot) until the project and its services are healthy.
    async fn wait_healthy(&mut self) -> Result<(), StepError> {
        self.idle();
        let waited = self.poll_healthy().await;
        self.busy().await?;
        waited
    }

    async fn poll_healthy(&self) -> Result<(), StepError> {
        let project_ref = self.project_ref()?.to_string();
        let deadline = Instant::now() + self.ctx.waits.healthy_timeout;
        let mut last: Option<ProjectStatus> = None;
        loop {
            match self.ctx.supabase.get_project(&project_ref).await {
                Ok(Some(p)) => {
                    // The project's status turns healthy before each service is ready; the
                    // vendor's platform guide says to wait for the services used next.
                    match p.status.phase() {
                        ProjectPhase::Healthy => {
                            if self.services_ready(&project_ref).await {
                                return Ok(());
                            }
                        }
                        ProjectPhase::Failed | ProjectPhase::Gone => {
                            return Err(StepError::ask_user(format!(
                                "project {project_ref} is {}",
                                p.status
                            )));
                        }
                        ProjectPhase::Starting | ProjectPhase::Paused => {}
                    }
                    if last.as_ref() != Some(&p.status) {
                        self.say(&format!("  project {project_ref} is {}; waiting", p.status));
                        last = Some(p.status);
                    }
                }
                Ok(None) => {
                    return Err(StepError::give_up(format!(
                        "project {project_ref} disappeared"
                    )));
                }
                Err(e) if e.policy() == Policy::Retry => {}
                Err(e) => return Err(e.into()),
            }
            if Instant::now() >= deadline {
                return Err(StepError::retry(format!(
                    "project {project_ref} was not ACTIVE_HEALTHY after {}s (last status {}); run apply again later",
                    self.ctx.waits.healthy_timeout.as_secs(),
                    last.as_ref().map_or("unknown", ProjectStatus::as_str)
                )));
            }
            tokio::time::sleep(self.ctx.waits.poll).await;
        }
    }

    /// Whether the services the next steps use (auth settings, SQL, Storage) all report
    /// `ACTIVE_HEALTHY`. A failing health call counts as "not yet".
    async fn services_ready(&self, project_ref: &str) -> bool {
        match self
            .ctx
            .supabase
            .project_health(project_ref, &["auth", "db", "rest", "storage"])
            .await
        {
            Ok(services) => !services.is_empty() && services.iter().all(|s| s.is_healthy()),
            Err(_) => false,
        }
    }

    async fn replan(&mut self) -> Result<Vec<Action>, StepError> {
        let project_ref = self.project_ref()?.to_string();
        let project = self
            .ctx
            .supabase
            .get_project(&project_ref)
            .await?
            .ok_or_else(|| StepError::give_up(format!("project {project_ref} disappeared")))?;
        let observed = observe_sb::observe_client(
            self.ctx.supabase,
            self.ctx.sql,
            self.spec,
            vec![&project],
            self.ctx.migrations,
            observe_sb::KeyReads::for_fleet(self.ctx.fleet, self.ctx.site.is_some()),
            if self.created {
                observe_sb::HistoryHint::JustCreated
            } else {
                observe_sb::HistoryHint::Unknown
            },
        )
        .await;
        let plan = plan_client(self.ctx.desired, self.spec, &observed, self.ctx.options);
        if !plan.errors.is_empty() {
            return Err(StepError::ask_user(plan.errors.join("; ")));
        }
        Ok(plan.actions)
    }

    /// The project's API keys, read once per client run.
    async fn keys(&mut self) -> Result<ApiKeys, StepError> {
        if let Some(keys) = &self.keys {
            return Ok(keys.clone());
        }
        let project_ref = self.project_ref()?.to_string();
        let keys = self.ctx.supabase.api_keys(&project_ref).await?;
        self.keys = Some(keys.clone());
        Ok(keys)
    }

    async fn storage(&mut self) -> Result<crate::supabase::storage::StorageClient, StepError> {
        let project_ref = self.project_ref()?.to_string();
        let keys = self.keys().await?;
        Ok(self
            .ctx
            .supabase
            .storage(&project_ref, keys.server_key().map_err(StepError::give_up)?)?)
    }
}

/// The one project named `name` that is not gone, if any; more than one is for a person to
/// sort out.
fn only_live(name: &str, found: Vec<Project>) -> Result<Option<Project>, StepError> {
    let mut live: Vec<Project> = found.into_iter().filter(|p| !p.status.is_gone()).collect();
    match live.len() {
        0 => Ok(None),
        1 => Ok(live.pop()),
        n => Err(StepError::ask_user(format!(
            "{n} projects are named {name}; pin the right one with project_ref"
        ))),
    }
}

fn to_bucket(b: &BucketSpec) -> Bucket {
    let mut bucket = Bucket::new(b.name.clone());
    bucket.public = b.public;
    bucket.file_size_limit = b.file_size_limit;
    bucket.allowed_mime_types = Some(b.allowed_mime_types.clone());
    bucket
}

/// A strong random database password. It is sent once, in the create request, and never
/// printed, logged or stored: an operator who needs it resets it in the Supabase dashboard.
fn new_db_password() -> SecretString {
    SecretString::from(format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    ))
}
