//! `intelli reconcile`: plan then apply every interval (with jitter), at start too, like a
//! GitOps controller; `--once` for cron.
//!
//! Each run loads the fleet files afresh (a `git pull` between runs is picked up), takes the
//! fleet's lease, plans, applies what the plan shows, and releases the lease, so an operator's
//! `intelli apply` can run between two runs. A run that fails is logged and counted; the loop
//! goes on.
//!
//! **Stopping.** SIGTERM or Ctrl-C stops the run through the lease guard apply already checks
//! before every step ([`crate::lease::LeaseGuard::stop`]): the steps in flight finish, no new
//! step starts, the lease is released, and the process exits 0. Every step leaves its client
//! in a state the next plan reads (that is what makes apply restartable after a crash), so the
//! next run picks up where this one stopped. A second signal exits at once (status 130).

pub mod metrics;
pub mod serve;

use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use tokio::sync::watch;

use crate::commands::{Locking, Selection};
use crate::lease::LeaseGuard;
use crate::plan::Plan;
use crate::workspace::Workspace;
use metrics::{Metrics, RunResult};

/// `intelli reconcile`'s options besides the selection.
#[derive(Debug, Clone)]
pub struct Options {
    pub interval: Duration,
    /// Each wait is the interval times a random factor in `1 ± jitter`, so that reconcilers
    /// of several fleets started together do not hit the vendors together.
    pub jitter: f64,
    pub once: bool,
    pub listen: Option<SocketAddr>,
    pub parallelism: Option<usize>,
    pub locking: Locking,
    /// How each run's apply reports its events (`--log-format`).
    pub log_format: crate::commands::LogFormat,
}

/// How a signal reaches the run in flight.
#[derive(Clone)]
struct Stop {
    requested: watch::Sender<Option<String>>,
    /// The guard of the apply in flight, if any.
    current: Arc<Mutex<Option<LeaseGuard>>>,
}

impl Stop {
    fn new() -> Stop {
        Stop {
            requested: watch::Sender::new(None),
            current: Arc::new(Mutex::new(None)),
        }
    }

    fn request(&self, why: &str) {
        self.requested.send_if_modified(|r| {
            let first = r.is_none();
            if first {
                *r = Some(why.to_string());
            }
            first
        });
        if let Some(guard) = self
            .current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            guard.stop(why);
        }
    }

    fn requested(&self) -> bool {
        self.requested.borrow().is_some()
    }

    /// Hand `guard` to the signal handler for this run (stopped at once if a signal came
    /// already).
    fn watch(&self, guard: &LeaseGuard) {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(why) = self.requested.borrow().as_ref() {
            guard.stop(why);
        }
        *current = Some(guard.clone());
    }

    fn unwatch(&self) {
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    async fn wait(&self) {
        let mut rx = self.requested.subscribe();
        // Only fails when the sender is gone, which outlives every waiter.
        let _ = rx.wait_for(Option::is_some).await;
    }
}

/// Where reconcile's own lines go: plain on stderr, or as `log` events with
/// `--log-format json`, so that a log shipper reads them like the apply's events.
#[derive(Clone, Copy)]
struct Say(crate::commands::LogFormat);

impl Say {
    fn line(self, text: &str) {
        use crate::apply::progress::{Event, Phase};
        match self.0 {
            crate::commands::LogFormat::Text => eprintln!("{text}"),
            crate::commands::LogFormat::Json => {
                eprintln!("{}", Event::new(Phase::Log).message(text).json());
            }
        }
    }
}

/// First signal: stop cleanly; second: exit at once.
fn handle_signals(stop: Stop, say: Say) {
    tokio::spawn(async move {
        let mut count = 0;
        loop {
            let why = next_signal().await;
            count += 1;
            if count > 1 {
                say.line(&format!(
                    "{why} again: exiting now, without waiting for the steps in flight"
                ));
                std::process::exit(130);
            }
            say.line(&format!(
                "{why}: finishing the steps in flight, then stopping (send it again to exit at once)"
            ));
            stop.request(why);
        }
    });
}

/// The next SIGTERM or Ctrl-C (also `intelli watch`'s).
#[cfg(unix)]
pub(crate) async fn next_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = tokio::signal::ctrl_c() => "interrupted",
        },
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            "interrupted"
        }
    }
}

#[cfg(not(unix))]
pub(crate) async fn next_signal() -> &'static str {
    let _ = tokio::signal::ctrl_c().await;
    "interrupted"
}

/// A random factor in `1 ± jitter` (std's per-process random hash keys: no crate needed for
/// spreading waits).
fn jittered(interval: Duration, jitter: f64) -> Duration {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    let unit = (h.finish() >> 11) as f64 / (1u64 << 53) as f64;
    interval.mul_f64(1.0 + jitter.clamp(0.0, 1.0) * (2.0 * unit - 1.0))
}

pub async fn reconcile_cmd(
    fleet_dir: &Path,
    sandbox: bool,
    sel: &Selection,
    opts: &Options,
) -> Result<ExitCode> {
    let metrics = Arc::new(Metrics::default());
    let say = Say(opts.log_format);
    if let Some(addr) = opts.listen {
        let bound = serve::start(addr, metrics.clone()).await?;
        say.line(&format!("serving /healthz and /metrics on http://{bound}"));
    }
    let stop = Stop::new();
    handle_signals(stop.clone(), say);
    let reconciler = Reconciler {
        fleet_dir,
        sandbox,
        sel,
        opts,
        stop: &stop,
        metrics: &metrics,
    };
    let mut number = 0u64;
    loop {
        number += 1;
        let result = reconciler.run(number).await;
        if opts.once || stop.requested() {
            return Ok(match result {
                RunResult::Ok | RunResult::Stopped => ExitCode::SUCCESS,
                RunResult::Failed if opts.once => ExitCode::from(1),
                // Stopped while a failed run ended: the stop is what the caller asked for.
                RunResult::Failed => ExitCode::SUCCESS,
            });
        }
        let wait = jittered(opts.interval, opts.jitter);
        say.line(&format!("next run in {:.0}s", wait.as_secs_f64()));
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = stop.wait() => return Ok(ExitCode::SUCCESS),
        }
    }
}

/// What one run found and did.
#[derive(Debug, Default)]
struct Summary {
    clients: usize,
    drifting: usize,
    failing: usize,
    actions: usize,
    applied_clients: usize,
    failed: usize,
    /// Clients whose next step the stop refused: left for the next run.
    interrupted: usize,
    stopped: bool,
}

impl Summary {
    fn line(&self) -> String {
        let mut line = format!(
            "{} client(s): {} converged, {} drifting, {} with plan errors",
            self.clients,
            self.clients - self.drifting - self.failing,
            self.drifting,
            self.failing
        );
        if self.applied_clients > 0 {
            line.push_str(&format!(
                "; applied {} action(s) to {} client(s), {} failed",
                self.actions, self.applied_clients, self.failed
            ));
        }
        if self.stopped {
            line.push_str(&format!(
                "; stopped by a signal, {} client(s) left for the next run",
                self.interrupted
            ));
        }
        line
    }
}

/// What every run of one `intelli reconcile` shares.
struct Reconciler<'a> {
    fleet_dir: &'a Path,
    sandbox: bool,
    sel: &'a Selection,
    opts: &'a Options,
    stop: &'a Stop,
    metrics: &'a Metrics,
}

impl Reconciler<'_> {
    /// One run, logged and counted.
    async fn run(&self, number: u64) -> RunResult {
        let metrics = self.metrics;
        let started = Instant::now();
        let say = Say(self.opts.log_format);
        say.line(&format!(
            "{} reconcile run {number} starts",
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ));
        let outcome = self.run_once().await;
        let took = started.elapsed();
        let (result, summary) = match outcome {
            Ok(summary) => {
                let result = if summary.stopped {
                    RunResult::Stopped
                } else if summary.failed > 0 || summary.failing > 0 {
                    RunResult::Failed
                } else {
                    RunResult::Ok
                };
                (result, summary.line())
            }
            Err(e) => {
                metrics.run_failed();
                (RunResult::Failed, format!("failed: {e:#}"))
            }
        };
        metrics.finished(result, SystemTime::now(), took);
        say.line(&format!(
            "{} reconcile run {number} {}: {summary} ({:.1}s)",
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            result.as_str(),
            took.as_secs_f64()
        ));
        result
    }

    async fn run_once(&self) -> Result<Summary> {
        let Reconciler {
            fleet_dir,
            sandbox,
            sel,
            opts,
            stop,
            metrics,
        } = *self;
        let ws = Workspace::load(fleet_dir)?;
        let conns = crate::commands::connect(&ws, sandbox, sel).await?;
        let shard = sel.shard.unwrap_or(crate::shard::Shard::WHOLE);
        let result = match crate::commands::take_lease(&ws, &conns, sandbox, opts.locking, shard)
            .await
        {
            Ok(lease) => {
                let guard = lease
                    .as_ref()
                    .map_or_else(LeaseGuard::unleased, |l| l.guard());
                stop.watch(&guard);
                let result = plan_and_apply(&ws, &conns, sel, opts, &guard, stop, metrics).await;
                stop.unwatch();
                let released = match lease {
                    Some(l) => l.release().await.context("releasing the fleet's lease"),
                    None => Ok(()),
                };
                result.and_then(|s| released.map(|()| s))
            }
            Err(e) => Err(e),
        };
        let closed = conns.close().await;
        let summary = result?;
        closed?;
        Ok(summary)
    }
}

async fn plan_and_apply(
    ws: &Workspace,
    conns: &crate::workspace::Connections,
    sel: &Selection,
    opts: &Options,
    guard: &LeaseGuard,
    stop: &Stop,
    metrics: &Metrics,
) -> Result<Summary> {
    let mut engine = crate::commands::engine(ws, conns, sel)
        .with_lease(guard.clone())
        .with_reporter(crate::commands::reporter(opts.log_format));
    if let Some(n) = opts.parallelism {
        engine = engine.with_parallelism(n);
    }
    let plan = engine.plan(&sel.only, &sel.exclude).await?;
    metrics.planned(&plan);
    let mut summary = Summary {
        clients: plan.clients.len(),
        drifting: plan
            .clients
            .iter()
            .filter(|c| c.errors.is_empty() && c.has_changes())
            .count(),
        failing: plan.clients.iter().filter(|c| !c.errors.is_empty()).count(),
        ..Summary::default()
    };
    let say = Say(opts.log_format);
    for c in plan.clients.iter().filter(|c| !c.errors.is_empty()) {
        say.line(&format!(
            "{}: not applied: {}",
            c.client,
            c.errors.join("; ")
        ));
    }
    let todo: Vec<_> = plan
        .clients
        .iter()
        .filter(|c| c.errors.is_empty() && c.has_changes())
        .cloned()
        .collect();
    if todo.is_empty() || stop.requested() {
        summary.stopped = stop.requested();
        return Ok(summary);
    }
    // By waves when fleet.yaml has `rollout:` (a manual gate or a halt ends this run's apply
    // there; the next run starts again from what the fleet is).
    let in_waves = Plan {
        clients: todo.clone(),
        ..plan
    };
    let rollout = engine
        .rollout(&in_waves, &crate::rollout::RolloutOptions::default())
        .await?;
    let halted = rollout.summary();
    let report = rollout.report;
    summary.stopped = stop.requested();
    metrics.applied(&todo, &report);
    summary.applied_clients = report.outcomes.len();
    summary.actions = report.outcomes.iter().map(|o| o.done.len()).sum();
    summary.interrupted = report
        .outcomes
        .iter()
        .filter(|o| {
            o.stopped
                .as_ref()
                .is_some_and(|s| matches!(s.cause, crate::apply::report::StopCause::Signal(_)))
        })
        .count();
    summary.failed = report.failed() + report.deferred();
    // In JSON the clients' own events carry what the table says.
    if opts.log_format == crate::commands::LogFormat::Text {
        eprintln!("{}", report.table());
    }
    if !halted.is_empty() {
        say.line(halted.trim_end());
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_its_bounds() {
        let base = Duration::from_secs(600);
        for _ in 0..200 {
            let w = jittered(base, 0.1);
            assert!(
                w >= Duration::from_secs(540) && w <= Duration::from_secs(660),
                "{w:?}"
            );
        }
        assert_eq!(jittered(base, 0.0), base);
    }

    #[test]
    fn a_signal_stops_the_guard_of_the_run_in_flight_and_the_next_one() {
        let stop = Stop::new();
        let first = LeaseGuard::unleased();
        stop.watch(&first);
        assert!(first.check().is_ok());
        stop.request("SIGTERM");
        assert!(first.check().is_err());
        stop.unwatch();
        let next = LeaseGuard::unleased();
        stop.watch(&next);
        assert!(
            next.check().is_err(),
            "a run that starts after the signal does nothing"
        );
        assert!(stop.requested());
    }
}
