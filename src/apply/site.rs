//! The Cloudflare side of a client's apply: build, Pages project, deploy, domain, DNS, wait,
//! health check.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use secrecy::SecretString;

use super::ClientRun;
use super::error::StepError;
use crate::cloudflare::types::DomainStatus;
use crate::cloudflare::{DeployMeta, DnsFilters, DnsRecordInput, DnsRecordPatch};
use crate::frontend::{self, Fingerprint};
use crate::http::{ErrorKind, Policy};
use crate::plan::PreviousDeployment;
use crate::plan::ownership::{active_comment, owned_by, owner_comment};

/// What the site steps need beyond the Supabase side.
pub struct SiteContext<'a> {
    pub cloudflare: &'a crate::cloudflare::CloudflareClient,
    /// Source digest of the frontend (the same the plan used).
    pub source_digest: String,
    /// Builds at once (CPU count): builds are CPU-bound.
    pub builds: &'a tokio::sync::Semaphore,
    /// The frontend's dependency install, shared by every build of the apply.
    pub install: &'a crate::frontend::install::Installer,
    /// Where a site is fetched for the health check: `None` → `https://<domain>/`; `Some(base)`
    /// → `base` with a `Host: <domain>` header (the simulator serves sites that way).
    pub probe_base: Option<String>,
}

impl<'r, 'a> ClientRun<'r, 'a> {
    pub(super) fn site(&self) -> Result<&'r SiteContext<'a>, StepError> {
        self.ctx.site.as_ref().ok_or_else(|| {
            StepError::ask_user("the Cloudflare side is not configured (CLOUDFLARE_API_TOKEN)")
        })
    }

    /// The Cloudflare client for this client's account (same token and limiter for all).
    pub(super) fn cf(&self) -> Result<crate::cloudflare::CloudflareClient, StepError> {
        let cf = self.site()?.cloudflare;
        Ok(match &self.cloudflare_account {
            Some(account) if account != cf.account_id() => cf.for_account(account.clone()),
            Some(_) | None => cf.clone(),
        })
    }

    pub(super) async fn create_pages_project(
        &self,
        name: &str,
        production_branch: &str,
        account_id: &str,
    ) -> Result<(), StepError> {
        let created = self
            .site()?
            .cloudflare
            .for_account(account_id.to_string())
            .create_project(name, production_branch)
            .await;
        there_now(created)
    }

    pub(super) async fn update_pages_project(
        &self,
        name: &str,
        production_branch: &str,
    ) -> Result<(), StepError> {
        let cf = self.cf()?;
        Ok(cf.patch_project(name, production_branch).await.map(drop)?)
    }

    pub(super) async fn add_domain(&self, project: &str, domain: &str) -> Result<(), StepError> {
        there_now(self.cf()?.add_domain(project, domain).await)
    }

    /// The DNS record intelli owns (if named), then the Pages project.
    pub(super) async fn delete_site(
        &self,
        project: &str,
        dns_record: Option<&str>,
    ) -> Result<(), StepError> {
        let cf = self.cf()?;
        if let Some(name) = dns_record {
            let zone_id = self.zone_id().await?;
            let filters = DnsFilters {
                name: Some(name.to_string()),
                ..DnsFilters::default()
            };
            let records = cf.list_dns_records(&zone_id, &filters).await?;
            for rec in records
                .iter()
                .filter(|r| owned_by(r.comment.as_deref(), &self.spec.slug))
            {
                cf.delete_dns_record(&zone_id, &rec.id).await?;
            }
        }
        Ok(cf.delete_project(project).await?)
    }

    /// Build with the client's values in the child's environment, then deploy with wrangler's
    /// protocol; the fingerprint goes into the deployment's metadata. When the plan knew the
    /// fingerprint (`planned`), the build must be that one: anything else means the sources or
    /// values changed since the plan.
    pub(super) async fn build_and_deploy(
        &mut self,
        project: &str,
        planned: Option<&str>,
        previous: Option<&PreviousDeployment>,
    ) -> Result<(), StepError> {
        let branch = self.ctx.fleet.settings.cloudflare.production_branch.clone();
        let project_ref = self.project_ref()?.to_string();
        let keys = self.keys().await?;
        let anon = keys.browser_key().map_err(StepError::give_up)?.clone();
        let extras = self
            .ctx
            .fleet
            .resolve_env(self.spec, |n| std::env::var(n).ok())
            .map_err(|d| StepError::local("the client's build-time values", Policy::AskUser, d))?;
        let url = self.ctx.supabase.project_url(&project_ref);
        let fingerprint = Fingerprint {
            sources: self.site()?.source_digest.clone(),
            env: frontend::env_digest_plain(&frontend::build_values(
                &url,
                &frontend::secret_sha256(&anon),
                &self.spec.display_name,
                &extras,
            )),
        };
        if let Some(planned) = planned
            && planned != fingerprint.commit_hash()
        {
            return Err(StepError::give_up(format!(
                "the frontend sources or build-time values changed since the plan was made (planned fingerprint {planned}); plan again"
            )));
        }
        let mut env: BTreeMap<String, SecretString> = extras
            .into_iter()
            .map(|(k, v)| (k, SecretString::from(v)))
            .collect();
        env.insert("VITE_SUPABASE_URL".into(), SecretString::from(url));
        for name in frontend::BROWSER_KEY_VARS {
            env.insert(name.into(), anon.clone());
        }
        env.insert(
            "VITE_CLIENT_NAME".into(),
            SecretString::from(self.spec.display_name.clone()),
        );

        let settings = &self.ctx.fleet.settings.frontend;
        let frontend_dir = self.ctx.fleet.root.join(&settings.dir);
        let out = tempfile::Builder::new()
            .prefix(&format!("intelli-build-{}-", self.spec.slug))
            .tempdir()
            .map_err(|e| StepError::local("creating a build directory", Policy::Retry, e))?;
        let out_dir = out.path().join("site");
        {
            let site = self.site()?;
            // Waiting for the install (started beside the Supabase side) is waiting too.
            self.idle();
            let progress = self.ctx.progress;
            let installed = site.install.ensure(&|line| progress.log(line)).await;
            installed.map_err(|e| StepError::local("build not started", Policy::GiveUp, e))?;
            // Waiting for a build slot is waiting: the work slot goes back meanwhile.
            self.idle();
            let _permit = site
                .builds
                .acquire()
                .await
                .map_err(|e| StepError::local("waiting for a build slot", Policy::GiveUp, e))?;
            self.busy().await?;
            let t = Instant::now();
            frontend::build::build_client(
                &frontend_dir,
                &settings.build_command,
                &settings.output_dir,
                &env,
                &out_dir,
            )
            .await
            .map_err(|e| StepError::local("build failed", Policy::GiveUp, e))?;
            self.say(&format!("  built in {:.1}s", t.elapsed().as_secs_f64()));
        }
        self.built_index = std::fs::read(out_dir.join("index.html")).ok();
        let meta = DeployMeta::new(
            &branch,
            fingerprint.commit_hash(),
            fingerprint
                .commit_message_after(&previous.map(PreviousDeployment::chain).unwrap_or_default()),
        );
        let outcome = self
            .cf()?
            .deploy_directory(project, &out_dir, meta)
            .await
            .map_err(|source| StepError::Deploy { source })?;
        self.say(&format!(
            "  deployed {}: {} file(s), {} uploaded ({} bytes)",
            outcome.deployment.id,
            outcome.files_total,
            outcome.files_uploaded,
            outcome.bytes_uploaded
        ));
        for w in &outcome.warnings {
            self.say(&format!("  warning: {w}"));
        }
        Ok(())
    }

    /// Make the planned earlier deployment live again (`RollbackDeployment`): one request.
    /// The answer is that deployment; its fingerprint must be the planned one (deployments
    /// never change, so anything else is a bug worth stopping on). The documented follow-up: a
    /// target deleted since the plan is built and deployed instead, since the next plan would
    /// propose the same rollback again.
    pub(super) async fn rollback(
        &mut self,
        project: &str,
        deployment_id: &str,
        fingerprint: &str,
    ) -> Result<(), StepError> {
        let Some(d) = self
            .cf()?
            .rollback_deployment(project, deployment_id)
            .await?
        else {
            self.say(&format!(
                "  deployment {deployment_id} no longer exists; building and deploying instead"
            ));
            return self
                .build_and_deploy(project, Some(fingerprint), None)
                .await;
        };
        let live = d.metadata().commit_hash.clone();
        if live.as_deref() != Some(fingerprint) {
            return Err(StepError::give_up(format!(
                "rolled back to deployment {deployment_id}, which carries fingerprint {} instead of the planned {fingerprint}; plan again",
                live.as_deref().unwrap_or("(none)")
            )));
        }
        self.say(&format!(
            "  deployment {deployment_id} is live again (no build, no upload)"
        ));
        Ok(())
    }

    async fn zone_id(&self) -> Result<String, StepError> {
        let zone = &self.ctx.fleet.settings.cloudflare.zone;
        self.site()?
            .cloudflare
            .find_zone(zone)
            .await?
            .map(|z| z.id)
            .ok_or_else(|| StepError::ask_user(format!("zone {zone} is not visible to this token")))
    }

    pub(super) async fn upsert_dns(&self, name: &str) -> Result<(), StepError> {
        let cf = self.cf()?;
        let target = cf
            .get_project(&self.spec.pages_project)
            .await?
            .map(|p| p.subdomain)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                StepError::retry(format!(
                    "Pages project {} has no subdomain yet",
                    self.spec.pages_project
                ))
            })?;
        let zone_id = self.zone_id().await?;
        let filters = DnsFilters {
            name: Some(name.to_string()),
            ..DnsFilters::default()
        };
        let existing = cf.list_dns_records(&zone_id, &filters).await?;
        match existing.first() {
            None => Ok(cf
                .create_dns_record(
                    &zone_id,
                    &DnsRecordInput::proxied_cname(
                        name,
                        target,
                        Some(owner_comment(&self.spec.slug)),
                    ),
                )
                .await
                .map(drop)?),
            Some(rec) => {
                if !owned_by(rec.comment.as_deref(), &self.spec.slug) && !self.spec.take_over_dns {
                    return Err(StepError::ask_user(format!(
                        "DNS record {name} exists and intelli does not own it (set take_over_dns: true to replace it)"
                    )));
                }
                let patch = DnsRecordPatch {
                    record_type: Some("CNAME".into()),
                    content: Some(target),
                    proxied: Some(true),
                    comment: Some(owner_comment(&self.spec.slug)),
                    ..DnsRecordPatch::default()
                };
                Ok(cf
                    .patch_dns_record(&zone_id, &rec.id, &patch)
                    .await
                    .map(drop)?)
            }
        }
    }

    /// `AdoptDnsRecord`: re-read the record; when it still points at the site, mark it as
    /// intelli's and make it proxied (absolute values by id: a repeat changes nothing).
    pub(super) async fn adopt_dns(&self, name: &str, target: &str) -> Result<(), StepError> {
        let cf = self.cf()?;
        let zone_id = self.zone_id().await?;
        let filters = DnsFilters {
            name: Some(name.to_string()),
            ..DnsFilters::default()
        };
        let existing = cf.list_dns_records(&zone_id, &filters).await?;
        let Some(rec) = existing.first() else {
            return Err(StepError::give_up(format!(
                "DNS record {name} is gone since the plan was made; plan again"
            )));
        };
        let points_at_site = rec.record_type == "CNAME" && rec.content == target;
        if !points_at_site && !owned_by(rec.comment.as_deref(), &self.spec.slug) {
            return Err(StepError::ask_user(format!(
                "DNS record {name} changed since the plan was made ({} {}); plan again",
                rec.record_type, rec.content
            )));
        }
        let patch = DnsRecordPatch {
            proxied: Some(true),
            comment: Some(owner_comment(&self.spec.slug)),
            ..DnsRecordPatch::default()
        };
        Ok(cf
            .patch_dns_record(&zone_id, &rec.id, &patch)
            .await
            .map(drop)?)
    }

    /// Wait (without a work slot) until the domain is active and the site serves this run's
    /// build, then mark the DNS record (a follow-up of `WaitForDomain`).
    pub(super) async fn wait_for_domain(&mut self, domain: &str) -> Result<(), StepError> {
        self.idle();
        let active = self.poll_domain(domain).await;
        self.busy().await?;
        if active? {
            self.mark_domain_active(domain).await;
        }
        Ok(())
    }

    /// Poll until active, re-triggering validation once when it is stuck (a follow-up of
    /// `WaitForDomain`), then check the site. A timeout is reported as a state (validation/TLS
    /// pending), not a failure: the next plan picks it up. `Ok(false)`: still pending.
    async fn poll_domain(&mut self, domain: &str) -> Result<bool, StepError> {
        let cf = self.cf()?;
        let timeout = self.ctx.waits.domain_timeout;
        let project = self.spec.pages_project.clone();
        let deadline = Instant::now() + timeout;
        let mut last = String::new();
        let mut retriggered = false;
        loop {
            let d = cf.get_domain(&project, domain).await?;
            let status = d
                .as_ref()
                .map(|d| d.status.as_str().to_string())
                .unwrap_or_else(|| "missing".into());
            if d.as_ref().is_some_and(|d| d.is_active()) {
                break;
            }
            if status != last {
                self.say(&format!("  domain {domain} is {status}"));
                last = status.clone();
            }
            if Instant::now() >= deadline {
                self.outcome.notes.push(format!(
                    "{domain} is still {status}: {DOMAIN_PENDING}; the next plan checks again"
                ));
                return Ok(false);
            }
            // A domain stuck in an error state gets its validation restarted once. If that
            // fails, waiting goes on and the timeout reports the domain as pending.
            if !retriggered && d.as_ref().is_some_and(|d| stuck(&d.status)) {
                if let Err(e) = cf.retry_domain(&project, domain).await {
                    self.say(&format!("  restarting validation of {domain}: {e}"));
                } else {
                    self.say(&format!("  restarted validation of {domain}"));
                }
                retriggered = true;
            }
            tokio::time::sleep(self.ctx.waits.poll).await;
        }
        self.health_check(domain).await?;
        Ok(true)
    }

    /// Record in the world that the domain is active, so a no-op plan need not read it again.
    /// Only an optimisation of later plans: a failure is reported and changes nothing else.
    async fn mark_domain_active(&self, domain: &str) {
        let marked = async {
            let cf = self.cf()?;
            let zone_id = self.zone_id().await?;
            let filters = DnsFilters {
                name: Some(domain.to_string()),
                ..DnsFilters::default()
            };
            let records = cf.list_dns_records(&zone_id, &filters).await?;
            if let Some(rec) = records.first()
                && owned_by(rec.comment.as_deref(), &self.spec.slug)
            {
                let patch = DnsRecordPatch {
                    comment: Some(active_comment(&self.spec.slug)),
                    ..DnsRecordPatch::default()
                };
                cf.patch_dns_record(&zone_id, &rec.id, &patch).await?;
            }
            Ok::<(), StepError>(())
        };
        if let Err(e) = marked.await {
            self.say(&format!(
                "  marking {domain} active in its DNS record: {}; the next plan reads the domain instead",
                e.chain()
            ));
        }
    }

    /// Fetch the site and compare its index.html with what this run built.
    async fn health_check(&self, domain: &str) -> Result<(), StepError> {
        let site = self.site()?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .map_err(|e| StepError::local("health check client", Policy::GiveUp, e))?;
        let req = match &site.probe_base {
            Some(base) => client
                .get(format!("{}/", base.trim_end_matches('/')))
                .header("host", domain),
            None => client.get(format!("https://{domain}/")),
        };
        let what = || format!("health check of {domain}");
        let resp = req
            .send()
            .await
            .map_err(|e| StepError::local(what(), Policy::Retry, e))?;
        if !resp.status().is_success() {
            return Err(StepError::retry(format!(
                "{}: HTTP {}",
                what(),
                resp.status()
            )));
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| StepError::local(what(), Policy::Retry, e))?;
        if let Some(built) = &self.built_index
            && built.as_slice() != body.as_ref()
        {
            return Err(StepError::retry(format!(
                "{}: the served index.html is not the one just deployed",
                what()
            )));
        }
        self.say(&format!("  {domain} serves the site"));
        Ok(())
    }
}

/// In the note of a domain still pending when its wait ended; with waves it fails the client's
/// health gate (`rollout`).
pub const DOMAIN_PENDING: &str = "validation or TLS pending";

/// A domain state that waiting alone will not end: its validation is restarted once.
fn stuck(status: &DomainStatus) -> bool {
    match status {
        DomainStatus::Error | DomainStatus::Blocked | DomainStatus::Deactivated => true,
        DomainStatus::Initializing
        | DomainStatus::Pending
        | DomainStatus::Active
        | DomainStatus::Unknown(_) => false,
    }
}

/// A create's outcome where "already exists" is success: made by a concurrent run or by our own
/// earlier send whose answer was lost, it is there, which is the goal.
fn there_now<T>(created: Result<T, crate::http::Error>) -> Result<(), StepError> {
    match created {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e.into()),
    }
}
