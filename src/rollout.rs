//! Apply by waves (`rollout:` in fleet.yaml): the wave loop and its gates.
//!
//! The waves come from the plan (`Plan::rollout`, computed from the fleet files on every run;
//! nothing is stored). Each wave is one [`Engine::apply`] of its clients; before the next wave
//! starts, the wave's failures are compared with its budget: failed actions, clients whose
//! plan has errors, clients still parked on a vendor's wait (deferred) and failed health checks
//! all count. When failures exceed the budget the rollout halts and no client of a later wave is
//! touched. The wave itself halts as soon as its budget is exceeded ([`WaveStop`]): steps in
//! flight finish, and no client of the wave starts another one (those clients are reported
//! stopped, not failed). A wave with `gate: manual` is not started unless `--through` names it
//! or a later wave. Clients of a wave that are already converged have nothing to do, which is
//! how the next apply resumes where the fleet is.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, bail};
use schemars::JsonSchema;
use serde::Serialize;

use crate::apply::{ApplyReport, StepError};
use crate::engine::Engine;
use crate::fleet::Gate;
use crate::fleet::rollout::{Budget, Wave};
use crate::plan::{ClientPlan, Plan};

/// `--through` and `--wave` of `apply`.
#[derive(Debug, Clone, Default)]
pub struct RolloutOptions {
    /// Approve the manual gates of the waves up to and including this one.
    pub through: Option<String>,
    /// Apply this wave only (refused unless every earlier wave is converged).
    pub wave: Option<String>,
}

/// A wave's stop while it applies: its clients count their failures here, and once the
/// failures exceed the wave's budget no client of the wave starts another step (steps in flight
/// finish). Apply checks it next to the fleet's lease, but it is not the lease's stop: that one
/// ends the whole run, while a halted wave leaves the lease held (and renewed) until apply
/// releases it as usual.
#[derive(Debug)]
pub struct WaveStop {
    budget: Budget,
    /// The wave's clients in this run's selection (what a percentage is of).
    clients: usize,
    failed: AtomicUsize,
}

impl WaveStop {
    pub fn new(budget: Budget, clients: usize) -> WaveStop {
        WaveStop {
            budget,
            clients,
            failed: AtomicUsize::new(0),
        }
    }

    /// One client of the wave failed (a step, or its plan). Called once per failed client,
    /// before it gives its work slot back, so the client that takes the slot next sees the halt.
    pub fn client_failed(&self) {
        self.failed.fetch_add(1, Ordering::SeqCst);
    }

    /// The wave's failures so far exceed its budget: no new step starts. Failures only grow, so
    /// once halted a wave stays halted, and the budget check after the wave agrees.
    pub fn halted(&self) -> bool {
        self.budget
            .exceeded(self.failed.load(Ordering::SeqCst), self.clients)
    }
}

/// Why a rollout stopped before its last wave. Serialised in `apply --summary-json` as
/// `rollout.halt`, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Halt {
    /// The wave failed more clients than its budget allows.
    Budget {
        wave: String,
        failed: Vec<String>,
        /// Clients of the wave that had not finished when it halted and started no further
        /// step: not failures; the next apply resumes them.
        stopped: Vec<String>,
        clients: usize,
        #[serde(rename = "max_failures")]
        budget: Budget,
    },
    /// The next wave's gate is manual and was not approved (`--through`).
    ManualGate { wave: String },
    /// With `--shard`: an earlier wave's clients in the other shards were still not converged
    /// and healthy, more than its budget, when this shard's wait for them ran out.
    OtherShards {
        /// The wave that could not start.
        next: String,
        /// The earlier wave that holds it back.
        wave: String,
        /// Its clients in other shards that are behind (changes pending, errors, or a failed
        /// health gate).
        behind: Vec<String>,
    },
}

impl Halt {
    /// The halt as one paragraph: plain text for the terminal, or markdown (`md`: the lead in
    /// bold, names and the command as code).
    fn describe(&self, md: bool) -> String {
        let names = |list: &[String]| {
            if md { code_list(list) } else { list.join(", ") }
        };
        let lead = |text: &str, plain_prefix: &str| {
            if md {
                format!("**{text}**")
            } else {
                format!("{plain_prefix}{}{}", text[..1].to_lowercase(), &text[1..])
            }
        };
        match self {
            Halt::Budget {
                wave,
                failed,
                stopped,
                clients,
                budget,
            } => format!(
                "{}: {} of {clients} client(s) failed, more than its budget (max_failures {budget}): \
                 {}.{} Later waves were not touched.",
                lead(&format!("Halted in wave `{wave}`"), "Rollout "),
                failed.len(),
                names(failed),
                stopped_sentence(stopped, names)
            ),
            Halt::ManualGate { wave } => {
                let command = format!("intelli apply --through {wave}");
                format!(
                    "{} (gate: manual). To continue: {}",
                    lead(&format!("Stopped before wave `{wave}`"), "Rollout "),
                    if md { format!("`{command}`") } else { command }
                )
            }
            Halt::OtherShards { next, wave, behind } => format!(
                "{}: wave `{wave}` is behind in other shards: {}. Apply their shards, then run \
                 this one again.",
                lead(&format!("Halted before wave `{next}`"), "Rollout "),
                names(behind)
            ),
        }
    }
}

/// What an apply by waves did.
#[derive(Debug, Clone, Default)]
pub struct RolloutReport {
    /// Every client of the waves that ran, in wave order.
    pub report: ApplyReport,
    /// Whether the plan had waves (`rollout:`); without them the summaries say nothing about
    /// waves.
    pub waves: bool,
    /// Set when the rollout stopped before its last wave.
    pub halt: Option<Halt>,
    /// The waves not started (after a halt) with their selected clients.
    pub not_started: Vec<Wave>,
    /// The names of the waves that ran, in order.
    pub ran: Vec<String>,
}

/// `rollout` in `apply --summary-json` (`null` without waves).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RolloutSummary {
    /// Why the rollout stopped before its last wave, if it did.
    pub halt: Option<Halt>,
    /// The waves that ran, in order.
    pub waves_ran: Vec<String>,
    /// Each as the plan's JSON has it (name, clients, max_failures, gate, implicit).
    pub waves_not_started: Vec<Wave>,
}

impl RolloutReport {
    /// Failed clients, deferred ones included: either is a non-zero exit.
    pub fn failed(&self) -> usize {
        self.report.failed() + self.report.deferred()
    }

    /// Exit status: 1 when anything failed or the budget halted the rollout; a stop at a
    /// manual gate is not a failure.
    pub fn success(&self) -> bool {
        let halted = match &self.halt {
            None | Some(Halt::ManualGate { .. }) => false,
            Some(Halt::Budget { .. } | Halt::OtherShards { .. }) => true,
        };
        // A stopped client (a signal) means the run did not finish either.
        self.failed() == 0 && self.report.stopped() == 0 && !halted
    }

    /// What follows the summary table: the halt, the waves not started with their clients, and
    /// the command that continues.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        if let Some(halt) = &self.halt {
            let _ = writeln!(out, "{}", halt.describe(false));
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

    /// `--summary-markdown`: the apply summary, then (with waves) a section with the same facts
    /// as [`RolloutReport::summary`].
    pub fn markdown(&self) -> String {
        let mut out = self.report.markdown();
        if !self.waves {
            return out;
        }
        let _ = writeln!(out, "\n#### Rollout\n");
        let ran = if self.ran.is_empty() {
            "none".to_string()
        } else {
            code_list(&self.ran)
        };
        let _ = writeln!(out, "Waves run: {ran}.\n");
        if let Some(halt) = &self.halt {
            let _ = writeln!(out, "{}\n", halt.describe(true));
        }
        if !self.not_started.is_empty() {
            let _ = writeln!(out, "| wave not started | clients |");
            let _ = writeln!(out, "| --- | --- |");
            for w in &self.not_started {
                let _ = writeln!(
                    out,
                    "| `{}` | {}: {} |",
                    w.name,
                    w.clients.len(),
                    code_list(&w.clients)
                );
            }
        }
        out
    }

    /// `--summary-json`: the apply summary with `rollout` (the halt, the waves run and those not
    /// started with their clients), `null` without waves.
    pub fn json(&self) -> String {
        let rollout = self.waves.then(|| RolloutSummary {
            halt: self.halt.clone(),
            waves_ran: self.ran.clone(),
            waves_not_started: self.not_started.clone(),
        });
        self.report.summary(rollout).to_json()
    }
}

/// The clients a halted wave stopped, as a sentence of the halt's text (empty when none),
/// their names written by `list`.
fn stopped_sentence(stopped: &[String], list: impl Fn(&[String]) -> String) -> String {
    if stopped.is_empty() {
        return String::new();
    }
    format!(
        " Stopped when the wave halted (no further step started; the next apply resumes them): {}.",
        list(stopped)
    )
}

/// `a`, `b`, `c` for markdown.
fn code_list(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
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
    let mut out = RolloutReport {
        waves: true,
        ..RolloutReport::default()
    };
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
        if work && let Some(halt) = wait_for_other_shards(engine, wave).await? {
            out.halt = Some(halt);
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
            // Only a wave whose failures would halt the rollout halts early (the budget check
            // below, same condition).
            let stop = gates_later.then(|| WaveStop::new(wave.max_failures, plans.len()));
            engine
                .apply_wave(&plans, wave.parallel.map(|p| p as usize), stop.as_ref())
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
        // A wave whose health gates nothing later halts nothing.
        let halt = if gates_later {
            budget_halt(engine, wave, &report.outcomes, plans.len())
        } else {
            None
        };
        out.report.outcomes.extend(report.outcomes);
        out.ran.push(wave.name.clone());
        if halt.is_some() {
            out.halt = halt;
            out.not_started = waves[i + 1..].to_vec();
            break;
        }
    }
    Ok(out)
}

/// With `--shard`, the waves before `next` as the whole fleet has them: their clients in the
/// other shards must be converged (a clean plan) and pass the health gate, within each wave's
/// budget, before this shard starts `next` (DESIGN §13: a canary in one shard holds the others
/// back). The shards of a layout run side by side, so a wave still being applied elsewhere is
/// waited for, re-read every [`OTHER_SHARDS_POLL`] without holding a work slot, up to
/// `waits.other_shards`; then the rollout halts. `None`: go on.
async fn wait_for_other_shards(engine: &Engine<'_>, next: &Wave) -> Result<Option<Halt>> {
    let shard = engine.shard();
    if shard.is_whole() {
        return Ok(None);
    }
    let fleet = &engine.workspace().fleet;
    let active: Vec<&crate::fleet::ClientSpec> = fleet
        .clients
        .values()
        .filter(|c| c.state == crate::fleet::ClientState::Active)
        .collect();
    let Some(all_waves) = crate::fleet::rollout::waves(
        &fleet.settings,
        active.iter().map(|c| (c.slug.as_str(), &c.labels)),
    ) else {
        return Ok(None);
    };
    // Earlier waves with their clients in other shards.
    let earlier: Vec<(Wave, Vec<String>)> = all_waves
        .iter()
        .take_while(|w| w.name != next.name)
        .map(|w| {
            let others = w
                .clients
                .iter()
                .filter(|c| !shard.contains(c))
                .cloned()
                .collect();
            (w.clone(), others)
        })
        .filter(|(_, others): &(Wave, Vec<String>)| !others.is_empty())
        .collect();
    if earlier.is_empty() {
        return Ok(None);
    }
    let specs: Vec<&crate::fleet::ClientSpec> = active
        .iter()
        .copied()
        .filter(|c| earlier.iter().any(|(_, others)| others.contains(&c.slug)))
        .collect();
    let deadline = tokio::time::Instant::now() + engine.waits().other_shards;
    loop {
        let theirs = engine.plan_of(&specs).await?;
        let mut outcomes: Vec<crate::apply::ClientOutcome> = Vec::new();
        for c in &theirs.clients {
            let mut o = crate::apply::ClientOutcome::new(&c.client);
            if has_work(c) {
                o.fail(
                    "other shard",
                    &StepError::retry("not converged: its shard has changes to apply"),
                );
            }
            outcomes.push(o);
        }
        // The plan's checks are the fleet's; `theirs` has them too.
        gate(engine, &theirs, &mut outcomes, true, true).await?;
        let blocking = earlier.iter().find_map(|(w, others)| {
            let behind: Vec<String> = outcomes
                .iter()
                .filter(|o| o.failed.is_some() && others.contains(&o.client))
                .map(|o| o.client.clone())
                .collect();
            w.max_failures
                .exceeded(behind.len(), w.clients.len())
                .then(|| (w.name.clone(), behind))
        });
        let Some((wave, behind)) = blocking else {
            engine.say(&format!(
                "Wave {}: the earlier waves are converged and healthy in the other shards",
                next.name
            ));
            return Ok(None);
        };
        let now = tokio::time::Instant::now();
        if now >= deadline {
            engine.say(&format!(
                "Wave {}: wave {wave} is still behind in other shards ({}): the rollout halts",
                next.name,
                behind.join(", ")
            ));
            return Ok(Some(Halt::OtherShards {
                next: next.name.clone(),
                wave,
                behind,
            }));
        }
        engine.say(&format!(
            "Wave {}: waiting for wave {wave} in other shards ({} behind: {})",
            next.name,
            behind.len(),
            behind.join(", ")
        ));
        tokio::time::sleep(OTHER_SHARDS_POLL.min(deadline - now)).await;
    }
}

/// How often a shard re-reads the other shards' earlier waves while it waits for them: each
/// look is a plan of those clients (a no-op plan's requests).
const OTHER_SHARDS_POLL: std::time::Duration = std::time::Duration::from_secs(10);

/// The halt of `wave` when the failures among its `outcomes` (of `clients` selected) exceed its
/// budget, said on the way.
fn budget_halt(
    engine: &Engine<'_>,
    wave: &Wave,
    outcomes: &[crate::apply::ClientOutcome],
    clients: usize,
) -> Option<Halt> {
    let names = |pick: fn(&crate::apply::ClientOutcome) -> bool| -> Vec<String> {
        outcomes
            .iter()
            .filter(|o| pick(o))
            .map(|o| o.client.clone())
            .collect()
    };
    let failed = names(|o| o.failed.is_some());
    if !wave.max_failures.exceeded(failed.len(), clients) {
        return None;
    }
    let stopped = names(|o| o.stopped.is_some());
    engine.say(&format!(
        "Wave {} failed {} of {clients} client(s), more than max_failures {}: the rollout halts{}",
        wave.name,
        failed.len(),
        wave.max_failures,
        if stopped.is_empty() {
            String::new()
        } else {
            format!(" ({} client(s) of the wave stopped early)", stopped.len())
        }
    ));
    Some(Halt::Budget {
        wave: wave.name.clone(),
        failed,
        stopped,
        clients,
        budget: wave.max_failures,
    })
}

/// The health gate of the clients in `outcomes` that did not fail and were not stopped: those
/// apply changed, or all of them when `all` (a wave that gates a later one). With waves
/// (`waves`), a domain still pending after its wait fails the gate (the site check has not
/// passed), and in a wave that gates a later one an active client's project must be
/// `ACTIVE_HEALTHY` with its services up; then the fleet's checks run.
async fn gate(
    engine: &Engine<'_>,
    plan: &Plan,
    outcomes: &mut [crate::apply::ClientOutcome],
    all: bool,
    waves: bool,
) -> Result<()> {
    use futures::StreamExt;
    // A client the wave's halt stopped has not converged and goes no further this run: its
    // health decides nothing.
    let finished = |o: &crate::apply::ClientOutcome| o.failed.is_none() && o.stopped.is_none();
    if waves {
        for o in outcomes.iter_mut().filter(|o| finished(o)) {
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
        .filter(|(_, o)| finished(o) && (all || !o.done.is_empty()))
        .map(|(i, _)| i)
        .collect();
    let probe = &probe;
    let results: Vec<(usize, Result<(), GateFailure>)> =
        futures::stream::iter(todo.into_iter().map(|i| {
            let slug = outcomes[i].client.clone();
            let applied_ref = outcomes[i].project_ref.clone();
            async move {
                let Some(spec) = ws.fleet.clients.get(&slug) else {
                    return (i, Ok(()));
                };
                if spec.state != crate::fleet::ClientState::Active {
                    return (i, Ok(()));
                }
                // The ref apply worked on (it created the project, or the plan knew it), else
                // the plan's; a lookup by name only when neither knows (no org listing per new
                // client of an onboarding wave).
                let known = applied_ref.or_else(|| {
                    plan.clients
                        .iter()
                        .find(|c| c.client == slug)
                        .and_then(|c| c.project_ref.clone())
                });
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
    // Both reads at once: the gate waits for one round trip per client, not two.
    let (project, services) = tokio::join!(
        sb.get_project(r),
        sb.project_health(r, &["auth", "db", "rest", "storage"])
    );
    let project = project?.ok_or_else(|| StepError::give_up(format!("project {r} disappeared")))?;
    if project.status.phase() != crate::supabase::types::ProjectPhase::Healthy {
        return Err(StepError::retry(format!(
            "project {r} is {}",
            project.status
        )));
    }
    let services = services?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::ClientOutcome;

    fn wave(name: &str, clients: &[&str]) -> Wave {
        Wave {
            name: name.into(),
            clients: clients.iter().map(|c| c.to_string()).collect(),
            parallel: None,
            max_failures: Budget::Count(0),
            gate: Gate::Auto,
            implicit: name == crate::fleet::rollout::REST,
        }
    }

    /// `early` halted on c02 with c03 stopped; `rest` was not started.
    fn halted() -> RolloutReport {
        let mut failed = ClientOutcome::new("c02");
        failed.fail("apply 1 migration", &StepError::give_up("relation exists"));
        let mut stopped = ClientOutcome::new("c03");
        stopped.stopped = Some(crate::apply::report::Stopped {
            step: "apply 1 migration".into(),
            cause: crate::apply::report::StopCause::WaveHalted,
        });
        RolloutReport {
            report: ApplyReport {
                outcomes: vec![ClientOutcome::new("c01"), failed, stopped],
            },
            waves: true,
            halt: Some(Halt::Budget {
                wave: "early".into(),
                failed: vec!["c02".into()],
                stopped: vec!["c03".into()],
                clients: 2,
                budget: Budget::Count(0),
            }),
            not_started: vec![wave("rest", &["c04", "c05"])],
            ran: vec!["canary".into(), "early".into()],
        }
    }

    #[test]
    fn a_wave_stop_halts_once_its_failures_exceed_the_budget() {
        let stop = WaveStop::new(Budget::Count(1), 4);
        assert!(!stop.halted());
        stop.client_failed();
        assert!(!stop.halted(), "1 failure is within max_failures 1");
        stop.client_failed();
        assert!(stop.halted());
        // 25 % of 4 clients: one failure is 25 %, not more.
        let pct = WaveStop::new(Budget::Percent(25), 4);
        pct.client_failed();
        assert!(!pct.halted());
        pct.client_failed();
        assert!(pct.halted());
    }

    #[test]
    fn the_summary_json_has_the_halt_and_the_waves_not_started() {
        let v: serde_json::Value = serde_json::from_str(&halted().json()).expect("json");
        assert_eq!(v["clients"], 3);
        assert_eq!(v["failed"], 1);
        assert_eq!(v["stopped"], 1, "a stopped client is not a failure");
        assert_eq!(v["outcomes"][2]["result"], "stopped");
        assert_eq!(v["outcomes"][2]["stopped_before"], "apply 1 migration");
        assert_eq!(v["outcomes"][2]["stopped_by"], "wave_halted");
        assert_eq!(
            v["rollout"],
            serde_json::json!({
                "halt": {
                    "kind": "budget",
                    "wave": "early",
                    "failed": ["c02"],
                    "stopped": ["c03"],
                    "clients": 2,
                    "max_failures": {"count": 0},
                },
                "waves_ran": ["canary", "early"],
                "waves_not_started": [{
                    "name": "rest",
                    "clients": ["c04", "c05"],
                    "max_failures": {"count": 0},
                    "gate": "auto",
                    "implicit": true,
                }],
            })
        );

        let mut gated = halted();
        gated.halt = Some(Halt::ManualGate {
            wave: "rest".into(),
        });
        let v: serde_json::Value = serde_json::from_str(&gated.json()).expect("json");
        assert_eq!(
            v["rollout"]["halt"],
            serde_json::json!({"kind": "manual_gate", "wave": "rest"})
        );

        // Without waves the key is there, null.
        let plain = RolloutReport {
            report: halted().report,
            ..RolloutReport::default()
        };
        let v: serde_json::Value = serde_json::from_str(&plain.json()).expect("json");
        assert!(v.get("rollout").is_some_and(serde_json::Value::is_null));
    }

    #[test]
    fn the_summary_markdown_has_a_rollout_section_after_the_table() {
        let md = halted().markdown();
        let table = md.find("| `c02` | **FAILED**").expect("the failed row");
        let stopped = md.find("| `c03` | **STOPPED**").expect("the stopped row");
        let section = md.find("#### Rollout").expect("the rollout section");
        assert!(table < stopped && stopped < section, "{md}");
        assert!(
            md.contains(
                "Apply complete: 3 client(s), 0 action(s) done, 1 failed, 0 deferred, 1 stopped."
            ),
            "{md}"
        );
        assert!(md.contains("Waves run: `canary`, `early`."), "{md}");
        assert!(
            md.contains(
                "**Halted in wave `early`**: 1 of 2 client(s) failed, more than its budget \
                 (max_failures 0): `c02`. Stopped when the wave halted"
            ) && md.contains("resumes them): `c03`."),
            "{md}"
        );
        assert!(md.contains("| `rest` | 2: `c04`, `c05` |"), "{md}");
        // The text after the table says the same.
        let text = halted().summary();
        assert!(
            text.contains("Rollout halted in wave `early`: 1 of 2 client(s) failed")
                && text.contains("resumes them): c03.")
                && text.contains("rest (2 clients): c04, c05"),
            "{text}"
        );

        let mut gated = halted();
        gated.halt = Some(Halt::ManualGate {
            wave: "rest".into(),
        });
        assert!(
            gated
                .markdown()
                .contains("**Stopped before wave `rest`** (gate: manual). To continue: `intelli apply --through rest`"),
        );
        let plain = RolloutReport {
            report: halted().report,
            ..RolloutReport::default()
        };
        assert!(!plain.markdown().contains("Rollout"));
    }
}
