//! `intelli watch`: the dev loop of the people editing the master mold and the fleet.
//!
//! It watches the fleet directory, the migrations (and the seed) and the frontend directory
//! (gitignore-aware: [`filter`]), and on each change loads and validates the files again and
//! plans again (read-only, against the real vendors or `--sandbox`), printing only what changed
//! in the plan since the previous one ([`diff`]), or the validation errors.
//!
//! **One re-plan per burst.** Events come debounced by `notify-debouncer-full`; after the
//! first relevant one, more are gathered until none has come for the debounce time, so a
//! burst of saves (an editor writing several files, a `git checkout`) gives one re-plan. A
//! change made while a plan runs gives one more re-plan after it.
//!
//! **`--apply` only with `--sandbox`**: save → converged sandbox. Against the real vendors the
//! loop never writes. Each apply takes and releases the fleet's lease like `intelli apply`.
//!
//! **Stopping.** Ctrl-C (or SIGTERM) ends the wait at once; during an apply it stops it through
//! the lease guard (steps in flight finish, no new one starts), then the sandbox's state is
//! saved and the process exits 0. A second signal exits at once (130).

pub mod diff;
pub mod filter;

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use notify_debouncer_full::notify::RecursiveMode;
use notify_debouncer_full::notify::event::{EventKind, ModifyKind};
use notify_debouncer_full::{DebounceEventResult, new_debouncer};
use tokio::sync::{mpsc, watch};

use crate::commands::{Locking, Selection};
use crate::lease::LeaseGuard;
use crate::plan::{Plan, render};
use crate::workspace::{Connections, Workspace};
use filter::{IgnoreCache, Roots};

/// `intelli watch`'s options besides the selection.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Apply each plan with changes (only with `--sandbox`).
    pub apply: bool,
    /// Quiet time that ends a burst of changes.
    pub debounce: Duration,
}

/// Why `--apply` is refused against the real vendors.
pub const APPLY_NEEDS_SANDBOX: &str = "watch --apply works only with --sandbox: the watch loop \
applies every save, which is a dev loop for the simulator, never for the real vendors (use \
`intelli apply` or `intelli reconcile` there)";

pub async fn watch_cmd(
    fleet_dir: &Path,
    sandbox: bool,
    sel: &Selection,
    opts: Options,
) -> Result<ExitCode> {
    if opts.apply && !sandbox {
        bail!(APPLY_NEEDS_SANDBOX);
    }
    let (tx, mut events) = mpsc::unbounded_channel::<DebounceEventResult>();
    let mut debouncer = new_debouncer(opts.debounce, None, move |r: DebounceEventResult| {
        // Fails only once the loop below has ended.
        let _ = tx.send(r);
    })
    .context("starting the file watcher")?;
    let stop = Stop::new();
    handle_signals(stop.clone());

    let mut session = Session {
        fleet_dir: fleet_dir.to_path_buf(),
        sandbox,
        sel: sel.clone(),
        opts,
        previous: None,
        conns: None,
        number: 0,
        color: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        watched: BTreeSet::new(),
        roots: None,
    };
    session.round(&mut debouncer, &[], &stop).await;
    while !stop.requested() {
        let mut changed: BTreeSet<PathBuf> = BTreeSet::new();
        let mut ignores = IgnoreCache::default();
        tokio::select! {
            batch = events.recv() => match batch {
                Some(batch) => session.collect(batch, &mut changed, &mut ignores),
                None => break,
            },
            () = stop.wait() => break,
        }
        if changed.is_empty() {
            continue;
        }
        // Gather the rest of the burst: until nothing relevant arrives for the debounce time.
        loop {
            tokio::select! {
                batch = events.recv() => match batch {
                    Some(batch) => session.collect(batch, &mut changed, &mut ignores),
                    None => break,
                },
                () = tokio::time::sleep(opts.debounce) => break,
                () = stop.wait() => break,
            }
        }
        if stop.requested() {
            break;
        }
        let changed: Vec<PathBuf> = changed.into_iter().collect();
        session.round(&mut debouncer, &changed, &stop).await;
    }
    debouncer.stop();
    eprintln!("watch stopped");
    if let Some(conns) = session.conns.take() {
        conns.close().await?;
    }
    Ok(ExitCode::SUCCESS)
}

type Debouncer = notify_debouncer_full::Debouncer<
    notify_debouncer_full::notify::RecommendedWatcher,
    notify_debouncer_full::RecommendedCache,
>;

/// The loop's state between rounds.
struct Session {
    fleet_dir: PathBuf,
    sandbox: bool,
    sel: Selection,
    opts: Options,
    /// The last plan's text (no colour), what the next one is compared with.
    previous: Option<String>,
    /// Kept between rounds (a sandbox keeps its simulator running); made again when
    /// fleet.yaml changes, since the connections are configured from it.
    conns: Option<Connections>,
    number: u64,
    color: bool,
    watched: BTreeSet<PathBuf>,
    roots: Option<Roots>,
}

impl Session {
    /// Add the relevant paths of `batch` to `changed`.
    fn collect(
        &self,
        batch: DebounceEventResult,
        changed: &mut BTreeSet<PathBuf>,
        ignores: &mut IgnoreCache,
    ) {
        match batch {
            Ok(events) => {
                for ev in events {
                    // Reading the files (every plan does) is not a change; nor is a new
                    // access time or mode.
                    if matches!(
                        ev.kind,
                        EventKind::Access(_) | EventKind::Modify(ModifyKind::Metadata(_))
                    ) {
                        continue;
                    }
                    if ev.need_rescan() {
                        // The OS dropped events: something may have changed anywhere.
                        changed.insert(self.fleet_dir.clone());
                    }
                    for p in &ev.paths {
                        let matters = match &self.roots {
                            Some(r) => r.matters(p, ignores),
                            // No valid fleet yet: any fleet file may fix it.
                            None => p.extension().is_some_and(|e| e == "yaml" || e == "yml"),
                        };
                        if matters {
                            changed.insert(p.clone());
                        }
                    }
                }
            }
            Err(errors) => {
                for e in errors {
                    eprintln!("warning: file watcher: {e}");
                }
            }
        }
    }

    /// Load, validate, plan (and apply with `--apply`), print what changed.
    async fn round(&mut self, debouncer: &mut Debouncer, changed: &[PathBuf], stop: &Stop) {
        self.number += 1;
        let n = self.number;
        let stamp = chrono::Local::now().format("%H:%M:%S");
        let cause = if changed.is_empty() {
            String::new()
        } else {
            format!(" after changes to {}", self.shown(changed))
        };
        let ws = match Workspace::load(&self.fleet_dir) {
            Ok(ws) => ws,
            Err(e) => {
                println!("[{stamp}] plan {n}{cause}: the files are not valid:\n{e:#}");
                if self.roots.is_none() {
                    // Watch at least the fleet directory, so that fixing it is seen.
                    self.rewatch(debouncer, vec![absolute(&self.fleet_dir)]);
                }
                return;
            }
        };
        let roots = roots_of(&ws);
        let dirs = roots.dirs();
        self.roots = Some(roots);
        self.rewatch(debouncer, dirs);
        let settings_changed = changed
            .iter()
            .any(|p| p.file_name().is_some_and(|f| f == crate::fleet::FLEET_FILE));
        if settings_changed
            && let Some(old) = self.conns.take()
            && let Err(e) = old.close().await
        {
            eprintln!("warning: closing the previous connections: {e:#}");
        }
        if self.conns.is_none() {
            match crate::commands::connect(&ws, self.sandbox, &self.sel).await {
                Ok(c) => self.conns = Some(c),
                Err(e) => {
                    println!("[{stamp}] plan {n}{cause}: cannot connect: {e:#}");
                    return;
                }
            }
        }
        let Some(conns) = self.conns.take() else {
            return;
        };
        let planned = crate::commands::engine(&ws, &conns, &self.sel)
            .plan(&self.sel.only, &self.sel.exclude)
            .await;
        match planned {
            Ok(plan) => {
                self.show(&format!("[{stamp}] plan {n}{cause}"), &plan);
                if self.opts.apply && plan.has_changes() && !stop.requested() {
                    self.apply(&ws, &conns, &plan, stop).await;
                }
            }
            Err(e) => println!("[{stamp}] plan {n}{cause}: planning failed: {e:#}"),
        }
        self.conns = Some(conns);
    }

    /// Print `plan` whole the first time, then only its changes.
    fn show(&mut self, heading: &str, plan: &Plan) {
        let text = render::text(plan, render::Style { color: false });
        match &self.previous {
            None => println!("{heading}:\n{text}"),
            Some(old) => {
                let d = diff::changes(old, &text, self.color);
                if d.is_empty() {
                    println!("{heading}: no change in the plan");
                } else {
                    println!("{heading}:\n{d}");
                }
            }
        }
        self.previous = Some(text);
    }

    /// `--apply` (sandbox only): apply the plan's clients with changes, print the summary, and
    /// plan again so that the next change is compared with the converged state.
    async fn apply(&mut self, ws: &Workspace, conns: &Connections, plan: &Plan, stop: &Stop) {
        let shard = self.sel.shard.unwrap_or(crate::shard::Shard::WHOLE);
        let lease =
            match crate::commands::take_lease(ws, conns, self.sandbox, Locking::default(), shard)
                .await
            {
                Ok(l) => l,
                Err(e) => {
                    println!("apply skipped: {e:#}");
                    return;
                }
            };
        let guard = lease
            .as_ref()
            .map_or_else(LeaseGuard::unleased, crate::lease::Lease::guard);
        stop.watch(&guard);
        let engine = crate::commands::engine(ws, conns, &self.sel).with_lease(guard);
        let clients: Vec<_> = plan
            .clients
            .iter()
            .filter(|c| c.has_changes() && c.errors.is_empty())
            .cloned()
            .collect();
        let report = engine.apply(&clients).await;
        stop.unwatch();
        if let Some(l) = lease
            && let Err(e) = l.release().await
        {
            eprintln!("warning: releasing the fleet's lease: {e:#}");
        }
        match report {
            Ok(r) => println!("{}", r.table()),
            Err(e) => println!("apply failed: {e:#}"),
        }
        if stop.requested() {
            return;
        }
        match engine.plan(&self.sel.only, &self.sel.exclude).await {
            Ok(after) => self.show("after apply", &after),
            Err(e) => println!("planning after apply failed: {e:#}"),
        }
    }

    /// Watch exactly `dirs` (recursively).
    fn rewatch(&mut self, debouncer: &mut Debouncer, dirs: Vec<PathBuf>) {
        let wanted: BTreeSet<PathBuf> = dirs.into_iter().collect();
        for gone in self.watched.difference(&wanted) {
            // A directory removed from disk is no longer watched anyway.
            let _ = debouncer.unwatch(gone);
        }
        for new in wanted.difference(&self.watched) {
            if let Err(e) = debouncer.watch(new, RecursiveMode::Recursive) {
                eprintln!("warning: cannot watch {}: {e}", new.display());
            }
        }
        if wanted != self.watched {
            let shown: Vec<String> = wanted.iter().map(|d| self.rel(d)).collect();
            eprintln!("watching {} (Ctrl-C stops)", shown.join(", "));
        }
        self.watched = wanted;
    }

    /// The changed paths as people read them (relative to the repository), at most a few.
    fn shown(&self, changed: &[PathBuf]) -> String {
        const MAX: usize = 4;
        let mut names: Vec<String> = changed.iter().take(MAX).map(|p| self.rel(p)).collect();
        if changed.len() > MAX {
            names.push(format!("{} more", changed.len() - MAX));
        }
        names.join(", ")
    }

    fn rel(&self, p: &Path) -> String {
        let repo = self.roots.as_ref().map(|r| r.repo.clone());
        repo.and_then(|r| p.strip_prefix(r).ok().map(|q| q.display().to_string()))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| p.display().to_string())
    }
}

/// What the workspace's plan is made from, as absolute paths.
fn roots_of(ws: &Workspace) -> Roots {
    let repo = absolute(&ws.fleet.root);
    let s = &ws.fleet.settings;
    Roots {
        fleet: absolute(&ws.fleet.dir),
        migrations: Some(repo.join(&s.migrations.dir)),
        seed: Some(repo.join(&ws.seed_path)),
        frontend: Some(repo.join(&s.frontend.dir)),
        repo,
    }
}

/// `p` made absolute and without symlinks when it exists (the watcher reports real paths).
fn absolute(p: &Path) -> PathBuf {
    p.canonicalize()
        .or_else(|_| std::path::absolute(p))
        .unwrap_or_else(|_| p.to_path_buf())
}

/// How a signal reaches the loop and the apply in flight.
#[derive(Clone)]
struct Stop {
    requested: watch::Sender<bool>,
    current: Arc<Mutex<Option<LeaseGuard>>>,
}

impl Stop {
    fn new() -> Stop {
        Stop {
            requested: watch::Sender::new(false),
            current: Arc::new(Mutex::new(None)),
        }
    }

    fn request(&self, why: &str) {
        self.requested.send_replace(true);
        if let Some(g) = self
            .current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            g.stop(why);
        }
    }

    fn requested(&self) -> bool {
        *self.requested.borrow()
    }

    fn watch(&self, guard: &LeaseGuard) {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if self.requested() {
            guard.stop("stopping");
        }
        *current = Some(guard.clone());
    }

    fn unwatch(&self) {
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    async fn wait(&self) {
        let mut rx = self.requested.subscribe();
        // Fails only when the sender is gone, which outlives every waiter.
        let _ = rx.wait_for(|r| *r).await;
    }
}

/// First signal: stop cleanly; second: exit at once.
fn handle_signals(stop: Stop) {
    tokio::spawn(async move {
        let mut count = 0;
        loop {
            let why = crate::reconcile::next_signal().await;
            count += 1;
            if count > 1 {
                eprintln!("{why} again: exiting now");
                std::process::exit(130);
            }
            eprintln!("{why}: stopping the watch (send it again to exit at once)");
            stop.request(why);
        }
    });
}
