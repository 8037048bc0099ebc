//! What an apply did, per client, for the closing summary table.

use std::fmt::Write as _;
use std::time::Duration;

use super::error::{StepError, advice};
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
    pub elapsed: Duration,
}

impl ClientOutcome {
    pub fn new(client: &str) -> Self {
        ClientOutcome {
            client: client.to_string(),
            done: Vec::new(),
            failed: None,
            notes: Vec::new(),
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
            let (result, detail) = match &o.failed {
                None if o.done.is_empty() => ("ok", "no changes".to_string()),
                None => ("ok", o.notes.join("; ")),
                Some(f) => (
                    match f.policy {
                        Policy::Park => "DEFERRED",
                        Policy::Retry | Policy::GiveUp | Policy::AskUser => "FAILED",
                    },
                    format!("{}: {} [{}]", f.step, f.error, advice(f.policy)),
                ),
            };
            let _ = writeln!(
                out,
                "{:<width$}  {:<8}  {:>7}  {:>6.1}s  {detail}",
                o.client,
                result,
                o.done.len(),
                o.elapsed.as_secs_f64()
            );
        }
        let _ = writeln!(
            out,
            "\nApply complete: {} client(s), {} action(s) done, {} failed, {} deferred.",
            self.outcomes.len(),
            self.outcomes.iter().map(|o| o.done.len()).sum::<usize>(),
            self.failed(),
            self.deferred()
        );
        out
    }
}
