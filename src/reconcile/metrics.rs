//! What `intelli reconcile --listen` serves at `/metrics`, in the Prometheus text exposition
//! format (version 0.0.4): written by hand, since it is a dozen lines of `# HELP`, `# TYPE`
//! and samples, and no crate is needed for that.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::apply::ApplyReport;
use crate::http::Policy;
use crate::plan::{ClientPlan, Plan};

/// The content type Prometheus expects for the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunResult {
    /// Planned (and applied when there was something to do) with no client failing.
    Ok,
    /// The run could not plan, or some client failed.
    Failed,
    /// A signal stopped it before it finished.
    Stopped,
}

impl RunResult {
    pub fn as_str(self) -> &'static str {
        match self {
            RunResult::Ok => "ok",
            RunResult::Failed => "failed",
            RunResult::Stopped => "stopped",
        }
    }
}

/// Counters and gauges across the runs of one `intelli reconcile` process.
#[derive(Default)]
pub struct Metrics {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Clients by state as the last run's plan found them (before its apply).
    converged: u64,
    drifting: u64,
    failing: u64,
    /// Actions applied, by the action's `type` in a saved plan (`update_auth_config`, …).
    actions: BTreeMap<String, u64>,
    /// Clients whose apply failed, by what the failure asks for (the step's policy).
    failures: BTreeMap<&'static str, u64>,
    runs: BTreeMap<&'static str, u64>,
    last_run: Option<(SystemTime, Duration)>,
}

/// The failure kinds, all listed on the page from the start (a counter that later appears
/// would hide its first increments from `rate()`).
const FAILURE_KINDS: [&str; 5] = ["retry", "give_up", "ask_user", "park", "run"];

fn policy_kind(policy: Policy) -> &'static str {
    match policy {
        Policy::Retry => "retry",
        Policy::GiveUp => "give_up",
        Policy::AskUser => "ask_user",
        Policy::Park => "park",
    }
}

/// An action's name as a saved plan spells it (`{"type": "update_auth_config", …}`).
fn action_type(action: &crate::plan::Action) -> String {
    serde_json::to_value(action)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_string))
        .unwrap_or_else(|| "unknown".to_string())
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The clients' states from a run's plan.
    pub fn planned(&self, plan: &Plan) {
        let mut s = self.lock();
        s.converged = 0;
        s.drifting = 0;
        s.failing = 0;
        for c in &plan.clients {
            if !c.errors.is_empty() {
                s.failing += 1;
            } else if c.has_changes() {
                s.drifting += 1;
            } else {
                s.converged += 1;
            }
        }
    }

    /// What an apply of `plans` did. Actions are counted from the plan: every action of a
    /// client that finished, and as many as it completed of one that failed or was stopped
    /// (a halted wave, a signal; a stopped client is not a failure).
    pub fn applied(&self, plans: &[ClientPlan], report: &ApplyReport) {
        let mut s = self.lock();
        for outcome in &report.outcomes {
            let Some(plan) = plans.iter().find(|p| p.client == outcome.client) else {
                continue;
            };
            let done = match &outcome.failed {
                None if outcome.stopped.is_some() => outcome.done.len().min(plan.actions.len()),
                None => plan.actions.len(),
                Some(f) => {
                    *s.failures.entry(policy_kind(f.policy)).or_default() += 1;
                    outcome.done.len().min(plan.actions.len())
                }
            };
            for action in &plan.actions[..done] {
                *s.actions.entry(action_type(action)).or_default() += 1;
            }
        }
    }

    /// A run ended at `end` after `took`.
    pub fn finished(&self, result: RunResult, end: SystemTime, took: Duration) {
        let mut s = self.lock();
        *s.runs.entry(result.as_str()).or_default() += 1;
        s.last_run = Some((end, took));
    }

    /// A run that failed before its apply (fleet files, observation, the lease).
    pub fn run_failed(&self) {
        *self.lock().failures.entry("run").or_default() += 1;
    }

    /// The page.
    pub fn render(&self) -> String {
        let s = self.lock();
        let mut out = String::new();
        family(
            &mut out,
            "intelli_clients",
            "gauge",
            "Clients by state, as the last run's plan found them.",
        );
        for (state, n) in [
            ("converged", s.converged),
            ("drifting", s.drifting),
            ("failing", s.failing),
        ] {
            let _ = writeln!(out, "intelli_clients{{state=\"{state}\"}} {n}");
        }
        family(
            &mut out,
            "intelli_drift_clients",
            "gauge",
            "Clients the last run's plan found with changes to make.",
        );
        let _ = writeln!(out, "intelli_drift_clients {}", s.drifting);
        family(
            &mut out,
            "intelli_actions_applied_total",
            "counter",
            "Actions applied, by kind (the action's type in a saved plan).",
        );
        for (kind, n) in &s.actions {
            let _ = writeln!(out, "intelli_actions_applied_total{{kind=\"{kind}\"}} {n}");
        }
        family(
            &mut out,
            "intelli_failures_total",
            "counter",
            "Client failures in apply by kind (what the failure asks for), and runs that failed before applying (kind=\"run\").",
        );
        for kind in FAILURE_KINDS {
            let n = s.failures.get(kind).copied().unwrap_or(0);
            let _ = writeln!(out, "intelli_failures_total{{kind=\"{kind}\"}} {n}");
        }
        family(
            &mut out,
            "intelli_runs_total",
            "counter",
            "Runs, by result.",
        );
        for result in [RunResult::Ok, RunResult::Failed, RunResult::Stopped] {
            let r = result.as_str();
            let n = s.runs.get(r).copied().unwrap_or(0);
            let _ = writeln!(out, "intelli_runs_total{{result=\"{r}\"}} {n}");
        }
        if let Some((end, took)) = s.last_run {
            let unix = end
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64();
            family(
                &mut out,
                "intelli_last_run_timestamp_seconds",
                "gauge",
                "When the last run ended (Unix time).",
            );
            let _ = writeln!(out, "intelli_last_run_timestamp_seconds {unix:.3}");
            family(
                &mut out,
                "intelli_last_run_duration_seconds",
                "gauge",
                "How long the last run took.",
            );
            let _ = writeln!(
                out,
                "intelli_last_run_duration_seconds {:.3}",
                took.as_secs_f64()
            );
        }
        drop(s);
        vendor_counts(&mut out);
        out
    }
}

fn vendor_counts(out: &mut String) {
    let counts = crate::http::counters::snapshot();
    family(
        out,
        "intelli_vendor_requests_total",
        "counter",
        "Requests sent to each vendor API (every attempt).",
    );
    for c in &counts {
        let v = c.vendor.name().replace(' ', "_");
        let _ = writeln!(
            out,
            "intelli_vendor_requests_total{{vendor=\"{v}\"}} {}",
            c.requests
        );
    }
    family(
        out,
        "intelli_vendor_rate_limited_total",
        "counter",
        "Answers that were 429 (rate limited), by vendor.",
    );
    for c in &counts {
        let v = c.vendor.name().replace(' ', "_");
        let _ = writeln!(
            out,
            "intelli_vendor_rate_limited_total{{vendor=\"{v}\"}} {}",
            c.rate_limited
        );
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}
