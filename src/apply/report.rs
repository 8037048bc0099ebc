//! What an apply did, per client, for the closing summary table.

use std::fmt::Write as _;
use std::time::Duration;

use super::error::{StepError, advice};
use schemars::JsonSchema;
use serde::Serialize;

use crate::http::Policy;

/// The step that failed, why, and what should happen next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub step: String,
    /// The error with its causes, on one line.
    pub error: String,
    pub policy: Policy,
}

#[derive(Debug, Clone)]
pub struct ClientOutcome {
    pub client: String,
    pub done: Vec<String>,
    /// The step that failed and why; `None` when every step completed.
    pub failed: Option<Failure>,
    /// States worth reporting that are not failures (a domain still validating).
    pub notes: Vec<String>,
    /// The step this client did not start, and why: its wave halted (`rollout::WaveStop`: the
    /// wave's failures exceeded its budget) or a signal stopped the run
    /// (`lease::LeaseGuard::stop`). Not a failure: the client is left as its last finished
    /// step left it, and the next apply resumes it.
    pub stopped: Option<Stopped>,
    /// The client's project as apply left it (created by this run, or the plan's); `None`
    /// when it has none.
    pub project_ref: Option<String>,
    pub elapsed: Duration,
}

impl ClientOutcome {
    pub fn new(client: &str) -> Self {
        ClientOutcome {
            client: client.to_string(),
            done: Vec::new(),
            failed: None,
            notes: Vec::new(),
            stopped: None,
            project_ref: None,
            elapsed: Duration::ZERO,
        }
    }
    pub fn fail(&mut self, step: &str, error: &StepError) {
        self.failed = Some(Failure {
            step: step.to_string(),
            error: error.chain(),
            policy: error.policy(),
        });
    }
}

#[derive(Debug, Clone, Default)]
pub struct ApplyReport {
    pub outcomes: Vec<ClientOutcome>,
}

impl ApplyReport {
    /// Clients that failed (a client parked on a long 429 when the run ended is deferred,
    /// not failed).
    pub fn failed(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|o| o.failed.as_ref().is_some_and(|f| f.policy != Policy::Park))
            .count()
    }

    /// Clients still parked on a vendor's long 429 wait when the run ended: nothing of the
    /// parked step happened; the next apply resumes them.
    pub fn deferred(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|o| o.failed.as_ref().is_some_and(|f| f.policy == Policy::Park))
            .count()
    }

    /// Clients stopped before their next step (a halted wave, a signal): neither failed nor
    /// converged.
    pub fn stopped(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|o| o.failed.is_none() && o.stopped.is_some())
            .count()
    }

    /// A client's result word and the detail column of the summary.
    fn row(o: &ClientOutcome) -> (&'static str, String) {
        match &o.failed {
            None => match &o.stopped {
                Some(stop) => ("STOPPED", format!("{}: {}", stop.step, stop.cause)),
                None if o.done.is_empty() => ("ok", "no changes".to_string()),
                None => ("ok", o.notes.join("; ")),
            },
            Some(f) => (
                match f.policy {
                    Policy::Park => "DEFERRED",
                    Policy::Retry | Policy::GiveUp | Policy::AskUser => "FAILED",
                },
                format!("{}: {} [{}]", f.step, f.error, advice(f.policy)),
            ),
        }
    }

    fn closing_line(&self) -> String {
        // Stopped clients exist only when a wave halted; the line reads as before otherwise.
        let stopped = match self.stopped() {
            0 => String::new(),
            n => format!(", {n} stopped"),
        };
        format!(
            "Apply complete: {} client(s), {} action(s) done, {} failed, {} deferred{stopped}.",
            self.outcomes.len(),
            self.actions_done(),
            self.failed(),
            self.deferred()
        )
    }

    /// Actions completed over every client.
    pub fn actions_done(&self) -> usize {
        self.outcomes.iter().map(|o| o.done.len()).sum()
    }

    /// The summary as markdown (`apply --summary-markdown`, e.g. a CI job summary): the totals,
    /// then one row per client, failures first.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "### intelli apply\n");
        let _ = writeln!(out, "{}\n", self.closing_line());
        let _ = writeln!(out, "| client | result | actions | time | detail |");
        let _ = writeln!(out, "| --- | --- | ---: | ---: | --- |");
        let mut rows: Vec<&ClientOutcome> = self.outcomes.iter().collect();
        // Failed and deferred first, then stopped: they are what a reader of a long summary
        // looks for.
        rows.sort_by_key(|o| (o.failed.is_none(), o.stopped.is_none()));
        for o in rows {
            let (result, detail) = Self::row(o);
            let result = match result {
                "ok" => "ok".to_string(),
                other => format!("**{other}**"),
            };
            let _ = writeln!(
                out,
                "| `{}` | {result} | {} | {:.1}s | {} |",
                o.client,
                o.done.len(),
                o.elapsed.as_secs_f64(),
                markdown_cell(&detail)
            );
        }
        out
    }

    /// The summary as JSON (`apply --summary-json` without waves): totals and one object per
    /// client with the actions done, the failure (step, error, policy) and notes.
    pub fn json(&self) -> String {
        self.summary(None).to_json()
    }

    /// The summary as data (`schema/summary.schema.json`), with the rollout's part when apply
    /// ran by waves.
    pub fn summary(&self, rollout: Option<crate::rollout::RolloutSummary>) -> ApplySummary {
        let outcomes = self
            .outcomes
            .iter()
            .map(|o| ClientSummary {
                client: o.client.clone(),
                result: match &o.failed {
                    None if o.stopped.is_some() => ClientResult::Stopped,
                    None => ClientResult::Ok,
                    Some(f) => match f.policy {
                        Policy::Park => ClientResult::Deferred,
                        Policy::Retry | Policy::GiveUp | Policy::AskUser => ClientResult::Failed,
                    },
                },
                actions_done: o.done.clone(),
                failed: o.failed.as_ref().map(|f| FailureSummary {
                    step: f.step.clone(),
                    error: f.error.clone(),
                    policy: f.policy,
                    advice: advice(f.policy).to_string(),
                }),
                notes: o.notes.clone(),
                stopped_before: o.stopped.as_ref().map(|s| s.step.clone()),
                stopped_by: o.stopped.as_ref().map(|s| s.cause.kind()),
                elapsed_secs: (o.elapsed.as_secs_f64() * 10.0).round() / 10.0,
            })
            .collect();
        ApplySummary {
            clients: self.outcomes.len(),
            actions_done: self.actions_done(),
            failed: self.failed(),
            deferred: self.deferred(),
            stopped: self.stopped(),
            outcomes,
            rollout,
        }
    }

    /// The summary table: one row per client.
    pub fn table(&self) -> String {
        let width = self
            .outcomes
            .iter()
            .map(|o| o.client.len())
            .max()
            .unwrap_or(6)
            .max(6);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<width$}  {:<8}  {:>7}  {:>7}  detail",
            "client", "result", "actions", "time"
        );
        for o in &self.outcomes {
            let (result, detail) = Self::row(o);
            let _ = writeln!(
                out,
                "{:<width$}  {:<8}  {:>7}  {:>6.1}s  {detail}",
                o.client,
                result,
                o.done.len(),
                o.elapsed.as_secs_f64()
            );
        }
        let _ = writeln!(out, "\n{}", self.closing_line());
        out
    }
}

/// A step a client did not start, though nothing of it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stopped {
    /// The step, as plan describes it.
    pub step: String,
    pub cause: StopCause,
}

/// Why a client stopped before a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopCause {
    /// Its wave's failures exceeded `max_failures`.
    WaveHalted,
    /// The run was stopped (a signal to `reconcile` or `watch`), with the reason it was given.
    Signal(String),
}

impl StopCause {
    /// The summary JSON's word for it.
    fn kind(&self) -> StopKind {
        match self {
            StopCause::WaveHalted => StopKind::WaveHalted,
            StopCause::Signal(_) => StopKind::Signal,
        }
    }
}

impl std::fmt::Display for StopCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopCause::WaveHalted => f.write_str(
                "not started: the wave halted (its failures exceeded max_failures); the next apply resumes it",
            ),
            StopCause::Signal(why) => {
                write!(f, "not started: the run was stopped ({why}); the next run resumes it")
            }
        }
    }
}

/// [`StopCause`] in the summary JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StopKind {
    WaveHalted,
    Signal,
}

/// `apply --summary-json` (`schema/summary.schema.json`): what apply did, for CI and scripts.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ApplySummary {
    /// Clients apply ran (in waves: those of the waves that ran).
    pub clients: usize,
    /// Actions completed, over all clients.
    pub actions_done: usize,
    /// Clients that failed (not counting deferred ones).
    pub failed: usize,
    /// Clients still parked on a vendor's wait when the run ended: nothing failed, the next
    /// apply goes on.
    pub deferred: usize,
    /// Clients stopped before a step by a halted wave or a signal (not failures).
    pub stopped: usize,
    pub outcomes: Vec<ClientSummary>,
    /// With `rollout:` in fleet.yaml: the waves run and not started, and the halt; `null`
    /// otherwise.
    pub rollout: Option<crate::rollout::RolloutSummary>,
}

impl ApplySummary {
    /// Pretty JSON, newline-terminated.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }
}

/// One client in [`ApplySummary`].
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ClientSummary {
    pub client: String,
    pub result: ClientResult,
    /// The actions completed, as plan describes them.
    pub actions_done: Vec<String>,
    pub failed: Option<FailureSummary>,
    pub notes: Vec<String>,
    /// The step it did not start (a halted wave, a signal).
    pub stopped_before: Option<String>,
    /// Why it stopped there.
    pub stopped_by: Option<StopKind>,
    pub elapsed_secs: f64,
}

/// How a client's apply ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClientResult {
    Ok,
    /// Its wave halted before its next step.
    Stopped,
    /// Parked on a vendor's wait when the run ended.
    Deferred,
    Failed,
}

/// The step a client failed in, the error with its causes, and what to do about it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct FailureSummary {
    pub step: String,
    pub error: String,
    pub policy: Policy,
    /// The policy in words for a person.
    pub advice: String,
}

/// Text for one table cell: pipes escaped, one line.
fn markdown_cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> ApplyReport {
        let mut ok = ClientOutcome::new("acme");
        ok.done = vec!["apply 1 migration".into(), "deploy".into()];
        ok.elapsed = Duration::from_millis(1_300);
        let mut failed = ClientOutcome::new("globex");
        failed.done = vec!["update auth".into()];
        failed.failed = Some(Failure {
            step: "deploy".into(),
            error: "HTTP 500 | upstream".into(),
            policy: Policy::Retry,
        });
        let mut parked = ClientOutcome::new("initech");
        parked.failed = Some(Failure {
            step: "create bucket".into(),
            error: "rate limited".into(),
            policy: Policy::Park,
        });
        ApplyReport {
            outcomes: vec![ok, failed, parked, ClientOutcome::new("umbrella")],
        }
    }

    #[test]
    fn markdown_summary_puts_failures_first_and_escapes_cells() {
        let md = report().markdown();
        assert!(
            md.contains("Apply complete: 4 client(s), 3 action(s) done, 1 failed, 1 deferred.")
        );
        let rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| `")).collect();
        assert_eq!(rows.len(), 4);
        assert!(
            rows[0].starts_with("| `globex` | **FAILED** | 1 |"),
            "{}",
            rows[0]
        );
        assert!(rows[0].contains("HTTP 500 \\| upstream"), "{}", rows[0]);
        assert!(
            rows[1].starts_with("| `initech` | **DEFERRED** | 0 |"),
            "{}",
            rows[1]
        );
        assert!(
            rows[2].starts_with("| `acme` | ok | 2 | 1.3s |"),
            "{}",
            rows[2]
        );
        assert!(rows[3].contains("no changes"));
    }

    #[test]
    fn json_summary_has_every_client_and_action() {
        let v: serde_json::Value = serde_json::from_str(&report().json()).expect("json");
        assert_eq!(v["clients"], 4);
        assert_eq!(v["actions_done"], 3);
        assert_eq!(v["failed"], 1);
        assert_eq!(v["deferred"], 1);
        let o = v["outcomes"].as_array().expect("outcomes");
        assert_eq!(o[0]["client"], "acme");
        assert_eq!(o[0]["actions_done"][1], "deploy");
        assert_eq!(o[0]["elapsed_secs"], 1.3);
        assert_eq!(o[1]["result"], "failed");
        assert_eq!(o[1]["failed"]["policy"], "retry");
        assert_eq!(o[2]["result"], "deferred");
        assert!(o[3]["failed"].is_null());
    }
}
