//! Why a step of apply failed, and what should happen next.
//!
//! The policy comes from the model of [`crate::http::Error`]: a vendor error keeps the policy
//! the HTTP layer gave it, and every other failure says its own. The summary table shows it.

use crate::http::Policy;
use crate::migrate::exec::SqlError;

/// A failed step. `Display` is the top line; the cause is kept as the error's `source`.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// A vendor request failed (after the HTTP layer's own retries).
    #[error(transparent)]
    Vendor(#[from] crate::http::Error),
    /// SQL failed on the client's database.
    #[error("{context}")]
    Sql {
        context: String,
        #[source]
        source: SqlError,
    },
    /// Something on this machine failed: a build, a build directory, the client's values.
    #[error("{context}")]
    Local {
        context: String,
        policy: Policy,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A situation rather than an error value: a timeout, a file changed since the plan, a
    /// project that disappeared.
    #[error("{message}")]
    State { message: String, policy: Policy },
    /// Deploying a built site failed. Kept typed (not `Local`) so that a 429 Cloudflare asked
    /// to wait out for long parks the client for that wait, like every other step.
    #[error("deploy failed")]
    Deploy {
        #[source]
        source: crate::cloudflare::DeployError,
    },
}

impl StepError {
    /// Transient: the same apply later may well succeed.
    pub fn retry(message: impl Into<String>) -> StepError {
        StepError::State {
            message: message.into(),
            policy: Policy::Retry,
        }
    }

    /// Permanent as things stand: a new plan (or a fix) is needed.
    pub fn give_up(message: impl Into<String>) -> StepError {
        StepError::State {
            message: message.into(),
            policy: Policy::GiveUp,
        }
    }

    /// Needs a person: configuration, credentials, or a choice intelli will not make.
    pub fn ask_user(message: impl Into<String>) -> StepError {
        StepError::State {
            message: message.into(),
            policy: Policy::AskUser,
        }
    }

    pub fn sql(context: impl Into<String>, source: SqlError) -> StepError {
        StepError::Sql {
            context: context.into(),
            source,
        }
    }

    pub fn local(
        context: impl Into<String>,
        policy: Policy,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> StepError {
        StepError::Local {
            context: context.into(),
            policy,
            source: Box::new(source),
        }
    }

    /// What should happen next.
    pub fn policy(&self) -> Policy {
        match self {
            StepError::Vendor(e) => e.policy(),
            StepError::Sql { source, .. } => source.policy(),
            StepError::Local { policy, .. } | StepError::State { policy, .. } => *policy,
            StepError::Deploy { source } => source.policy(),
        }
    }

    /// How long the vendor asked to wait (a [`Policy::Park`] error), when it said.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            StepError::Vendor(e) => e.retry_after(),
            StepError::Sql { source, .. } => source.retry_after,
            StepError::Local { .. } | StepError::State { .. } => None,
            StepError::Deploy { source } => source.retry_after(),
        }
    }

    /// The message and its causes on one line, each cause once (some messages already
    /// include their cause).
    pub fn chain(&self) -> String {
        let mut out = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(e) = cause {
            let text = e.to_string();
            if !out.contains(&text) {
                out.push_str(": ");
                out.push_str(&text);
            }
            cause = e.source();
        }
        out
    }
}

/// Words for a policy, as the summary table shows it.
pub fn advice(policy: Policy) -> &'static str {
    match policy {
        Policy::Retry => "transient: run apply again",
        Policy::GiveUp => "fix the cause, then plan again",
        Policy::AskUser => "needs you: credentials, permissions or configuration",
        Policy::Park => "deferred: the vendor asked for a long wait; the next apply resumes it",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("disk full")]
    struct Root;

    #[derive(Debug, thiserror::Error)]
    #[error("writing out: disk full")]
    struct Repeats(#[source] Root);

    #[test]
    fn chain_names_each_cause_once_and_keeps_the_policy() {
        let e = StepError::local("build failed", Policy::Retry, Repeats(Root));
        assert_eq!(e.chain(), "build failed: writing out: disk full");
        assert_eq!(e.policy(), Policy::Retry);
        let e = StepError::ask_user("zone x is not visible to this token");
        assert_eq!(e.chain(), "zone x is not visible to this token");
        assert_eq!(e.policy(), Policy::AskUser);
    }

    /// A 429 Cloudflare asked to wait out for long, met while deploying, parks the client for
    /// that wait (not for a poll interval, rebuilding each time).
    #[test]
    fn a_deferred_deploy_parks_for_the_vendors_wait() {
        use crate::http::{Error, ErrorKind, Vendor};
        let wait = std::time::Duration::from_secs(240);
        let api = Error::new(
            ErrorKind::Deferred,
            Vendor::Cloudflare,
            "POST",
            "/accounts/{account_id}/pages/projects/{project}/deployments",
        )
        .with_status(429)
        .with_retry_after(Some(wait));
        let e = StepError::Deploy {
            source: crate::cloudflare::DeployError::Api(api),
        };
        assert_eq!(e.policy(), Policy::Park);
        assert_eq!(e.retry_after(), Some(wait));
        assert!(e.chain().starts_with("deploy failed: "), "{}", e.chain());
    }
}
