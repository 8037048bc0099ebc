//! Apply by waves (`rollout:` in fleet.yaml): the wave loop and its gates.
//!
//! The waves come from the plan (`Plan::rollout`, computed from the fleet files on every run;
//! nothing is stored). Each wave is one [`Engine::apply`] of its clients; before the next wave
//! starts, the wave's failures are compared with its budget: failed actions, clients whose
//! plan has errors, clients still parked on a vendor's wait (deferred) and failed health checks
//! all count. When failures exceed the budget the rollout halts and no client of a later wave is
//! touched. A wave with `gate: manual` is not started unless `--through` names it or a later
//! wave. Clients of a wave that are already converged have nothing to do, which is how the
//! next apply resumes where the fleet is.

use std::fmt::Write as _;

use anyhow::{Context, Result, bail};

use crate::apply::{ApplyReport, StepError};
use crate::engine::Engine;
use crate::fleet::Gate;
use crate::fleet::rollout::Wave;
use crate::plan::{ClientPlan, Plan};

/// `--through` and `--wave` of `apply`.
#[derive(Debug, Clone, Default)]
pub struct RolloutOptions {
    /// Approve the manual gates of the waves up to and including this one.
    pub through: Option<String>,
    /// Apply this wave only (refused unless every earlier wave is converged).
    pub wave: Option<String>,
}

/// Why a rollout stopped before its last wave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Halt {
    /// The wave failed more clients than its budget allows.
    Budget {
        wave: String,
        failed: Vec<String>,
        clients: usize,
        budget: crate::fleet::rollout::Budget,
    },
    /// The next wave's gate is manual and was not approved (`--through`).
    ManualGate { wave: String },
}

/// What an apply by waves did.
#[derive(Debug, Clone, Default)]
pub struct RolloutReport {
    /// Every client of the waves that ran, in wave order.
    pub report: ApplyReport,
    /// Set when the rollout stopped before its last wave.
    pub halt: Option<Halt>,
    /// The waves not started (after a halt) with their selected clients.
    pub not_started: Vec<Wave>,
    /// The names of the waves that ran, in order.
    pub ran: Vec<String>,
}

impl RolloutReport {
    /// Failed clients, deferred ones included: either is a non-zero exit.
    pub fn failed(&self) -> usize {
        self.report.failed() + self.report.deferred()
    }

    /// Exit status: 1 when anything failed or the budget halted the rollout; a stop at a
    /// manual gate is not a failure.
    pub fn success(&self) -> bool {
        self.failed() == 0 && !matches!(self.halt, Some(Halt::Budget { .. }))
    }

    /// What follows the summary table: the halt, the waves not started with their clients, and
    /// the command that continues.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        match &self.halt {
            None => {}
            Some(Halt::Budget {
                wave,
                failed,
                clients,
                budget,
            }) => {
                let _ = writeln!(
                    out,
                    "Rollout halted in wave `{wave}`: {} of {clients} client(s) failed, more than its budget \
                     (max_failures {budget}): {}. Later waves were not touched.",
                    failed.len(),
                    failed.join(", ")
                );
            }
            Some(Halt::ManualGate { wave }) => {
                let _ = writeln!(
                    out,
                    "Rollout stopped before wave `{wave}` (gate: manual). To continue: intelli apply --through {wave}"
                );
            }
        }
        if !self.not_started.is_empty() {
            let _ = writeln!(out, "Waves not started:");
            for w in &self.not_started {
                let _ = writeln!(
                    out,
                    "  {} ({} client{}): {}",
                    w.name,
                    w.clients.len(),
                    if w.clients.len() == 1 { "" } else { "s" },
                    w.clients.join(", ")
                );
            }
        }
        out
    }
}

/// A client plan that asks apply to do something (changes), or that apply reports as failed
/// (errors).
fn has_work(c: &ClientPlan) -> bool {
    c.has_changes() || !c.errors.is_empty()
}

/// The clients of `wave` in `plan`.
fn wave_plans(plan: &Plan, wave: &Wave) -> Vec<ClientPlan> {
    plan.clients
        .iter()
        .filter(|c| wave.clients.binary_search(&c.client).is_ok())
        .cloned()
        .collect()
}

fn position(waves: &[Wave], name: &str, flag: &str) -> Result<usize> {
    match waves.iter().position(|w| w.name == name) {
        Some(i) => Ok(i),
        None => bail!(
            "{flag} {name}: no such wave (the waves are {})",
            waves
                .iter()
                .map(|w| w.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Apply `plan` wave by wave (one wave without `rollout:`).
pub async fn run(engine: &Engine<'_>, plan: &Plan, opts: &RolloutOptions) -> Result<RolloutReport> {
    let Some(waves) = &plan.rollout else {
        if opts.through.is_some() || opts.wave.is_some() {
            bail!("--through and --wave need waves: fleet.yaml has no `rollout:`");
        }
        let mut report = engine.apply(&plan.clients).await?;
        gate(engine, plan, &mut report.outcomes, false, false).await?;
        return Ok(RolloutReport {
            report,
            ..RolloutReport::default()
        });
    };
    let through = match &opts.through {
        Some(name) => Some(position(waves, name, "--through")?),
        None => None,
    };
    let only = match &opts.wave {
        Some(name) => Some(position(waves, name, "--wave")?),
        None => None,
    };
    if let Some(i) = only {
        refuse_unless_converged(plan, &waves[..i], &waves[i].name)?;
    }
    let checks = !plan.checks.is_empty();
    let mut out = RolloutReport::default();
    for (i, wave) in waves.iter().enumerate() {
        if only.is_some_and(|o| o != i) {
            continue;
        }
        let plans = wave_plans(plan, wave);
        let work = plans.iter().any(has_work);
        // This wave's health gates a later wave with something to do.
        let gates_later = only.is_none()
            && waves[i + 1..]
                .iter()
                .any(|w| wave_plans(plan, w).iter().any(has_work));
        // A manual gate holds back this wave and every later one, unless approved: by
        // `--through` at or after it, or by naming it with `--wave`. Nothing to do from here
        // on means nothing to hold back.
        let approved = through.is_some_and(|t| t >= i) || only == Some(i);
        if wave.gate == Gate::Manual && !approved && (work || gates_later) {
            out.halt = Some(Halt::ManualGate {
                wave: wave.name.clone(),
            });
            out.not_started = waves[i..].to_vec();
            break;
        }
        let title = format!("Wave {}/{} {}", i + 1, waves.len(), wave.name);
        let mut report = if work {
            engine.say(&format!(
                "{title}: {} client(s), {} with changes (max failures {})",
                plans.len(),
                plans.iter().filter(|c| c.has_changes()).count(),
                wave.max_failures
            ));
            engine
                .apply_wave(&plans, wave.parallel.map(|p| p as usize))
                .await?
        } else if gates_later && checks {
            engine.say(&format!(
                "{title}: {} client(s), nothing to do; checking their health",
                plans.len()
            ));
            ApplyReport {
                outcomes: plans
                    .iter()
                    .map(|c| crate::apply::ClientOutcome::new(&c.client))
                    .collect(),
            }
        } else {
            engine.say(&format!(
                "{title}: {} client(s), nothing to do",
                plans.len()
            ));
            out.ran.push(wave.name.clone());
            continue;
        };
        gate(engine, plan, &mut report.outcomes, gates_later, true).await?;
        let failed: Vec<String> = report
            .outcomes
            .iter()
            .filter(|o| o.failed.is_some())
            .map(|o| o.client.clone())
            .collect();
        out.report.outcomes.extend(report.outcomes);
        out.ran.push(wave.name.clone());
        if wave.max_failures.exceeded(failed.len(), plans.len()) && gates_later {
            engine.say(&format!(
                "Wave {} failed {} of {} client(s), more than max_failures {}: the rollout halts",
                wave.name,
                failed.len(),
                plans.len(),
                wave.max_failures
            ));
            out.halt = Some(Halt::Budget {
                wave: wave.name.clone(),
                failed,
                clients: plans.len(),
                budget: wave.max_failures,
            });
            out.not_started = waves[i + 1..].to_vec();
            break;
        }
    }
    Ok(out)
}

/// The health gate of the clients in `outcomes` that did not fail: those apply changed, or all
/// of them when `all` (a wave that gates a later one). With waves (`waves`), a domain still
/// pending after its wait fails the gate (the site check has not passed), and in a wave that
/// gates a later one an active client's project must be `ACTIVE_HEALTHY` with its services up;
/// then the fleet's checks run.
async fn gate(
    engine: &Engine<'_>,
    plan: &Plan,
    outcomes: &mut [crate::apply::ClientOutcome],
    all: bool,
    waves: bool,
) -> Result<()> {
    use futures::StreamExt;
    if waves {
        for o in outcomes.iter_mut().filter(|o| o.failed.is_none()) {
            if let Some(note) = o
                .notes
                .iter()
                .find(|n| n.contains(crate::apply::site::DOMAIN_PENDING))
            {
                let msg = format!("health gate not passed: {note}");
                o.fail("health gate", &StepError::retry(msg));
            }
        }
    }
    if plan.checks.is_empty() && !waves {
        return Ok(());
    }
    let ws = engine.workspace();
    let conns = engine.connections();
    let probe = crate::checks::Probe::new(
        &conns.sql,
        conns.cloudflare.is_some(),
        conns.probe_base.as_deref(),
    )
    .context("building the HTTP client of the health checks")?;
    let todo: Vec<usize> = outcomes
        .iter()
        .enumerate()
        .filter(|(_, o)| o.failed.is_none() && (all || !o.done.is_empty()))
        .map(|(i, _)| i)
        .collect();
    let probe = &probe;
    let results: Vec<(usize, Result<(), GateFailure>)> =
        futures::stream::iter(todo.into_iter().map(|i| {
            let slug = outcomes[i].client.clone();
            async move {
                let Some(spec) = ws.fleet.clients.get(&slug) else {
                    return (i, Ok(()));
                };
                if spec.state != crate::fleet::ClientState::Active {
                    return (i, Ok(()));
                }
                let known = plan
                    .clients
                    .iter()
                    .find(|c| c.client == slug)
                    .and_then(|c| c.project_ref.clone());
                let project_ref = match known {
                    Some(r) => Some(r),
                    None => created_ref(engine, spec).await,
                };
                engine.say(&format!("{slug}: health gate …"));
                // The project is read again only where the answer decides whether the rollout
                // goes on (two reads per client); after the last wave the next plan observes it.
                if waves
                    && all
                    && let Err(e) = project_healthy(engine, project_ref.as_deref()).await
                {
                    return (i, Err(("health gate".to_string(), e)));
                }
                let result =
                    crate::checks::run(probe, &plan.checks, spec, project_ref.as_deref()).await;
                (
                    i,
                    result.map_err(|f| {
                        (
                            format!("check {}", f.check),
                            StepError::ask_user(f.observed),
                        )
                    }),
                )
            }
        }))
        .buffer_unordered(engine.parallelism())
        .collect()
        .await;
    for (i, result) in results {
        if let Err((step, e)) = result {
            engine.say(&format!("{}: {step}: {}", outcomes[i].client, e.chain()));
            outcomes[i].fail(&step, &e);
        }
    }
    Ok(())
}

/// The step a client failed its gate in (`health gate`, `check <name>`), and why.
type GateFailure = (String, StepError);

/// The project is `ACTIVE_HEALTHY` and the services the fleet uses report healthy.
async fn project_healthy(engine: &Engine<'_>, project_ref: Option<&str>) -> Result<(), StepError> {
    let Some(r) = project_ref else {
        return Err(StepError::retry("the client has no project"));
    };
    let sb = &engine.connections().supabase;
    let project = sb
        .get_project(r)
        .await?
        .ok_or_else(|| StepError::give_up(format!("project {r} disappeared")))?;
    if project.status.phase() != crate::supabase::types::ProjectPhase::Healthy {
        return Err(StepError::retry(format!(
            "project {r} is {}",
            project.status
        )));
    }
    let services = sb
        .project_health(r, &["auth", "db", "rest", "storage"])
        .await?;
    let down: Vec<String> = services
        .iter()
        .filter(|s| !s.is_healthy())
        .map(|s| format!("{} {}", s.name, s.status))
        .collect();
    if services.is_empty() || !down.is_empty() {
        return Err(StepError::retry(format!(
            "project {r}: services not healthy: {}",
            if down.is_empty() {
                "none reported".to_string()
            } else {
                down.join(", ")
            }
        )));
    }
    Ok(())
}

/// The ref of a project this run created (the plan did not know it): looked up by name.
async fn created_ref(engine: &Engine<'_>, spec: &crate::fleet::ClientSpec) -> Option<String> {
    let org = &engine.workspace().fleet.settings.supabase.organization_slug;
    let found = engine
        .connections()
        .supabase
        .find_projects_by_name(org, &spec.resource_name)
        .await
        .ok()?;
    found
        .into_iter()
        .find(|p| !p.status.is_gone())
        .map(|p| p.project_ref)
}

/// `--wave X` runs X only when every earlier wave's selected clients are converged (no changes,
/// no errors in this plan).
fn refuse_unless_converged(plan: &Plan, earlier: &[Wave], name: &str) -> Result<()> {
    let behind: Vec<String> = earlier
        .iter()
        .flat_map(|w| {
            wave_plans(plan, w)
                .into_iter()
                .filter(has_work)
                .map(move |c| format!("{} ({})", c.client, w.name))
        })
        .collect();
    if !behind.is_empty() {
        bail!(
            "--wave {name}: the earlier waves are not converged: {}; apply them first (or drop --wave)",
            behind.join(", ")
        );
    }
    Ok(())
}
