//! `plan` and `apply`: wiring observe → plan → render / apply, and the exit codes.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use crate::engine::Engine;
use crate::lease::{Lease, LeaseConfig, LeaseGuard};
use crate::plan::{self, ClientPlan, Plan, PlanOptions, render};
use crate::workspace::{Connections, Workspace};

/// Options shared by `plan` and `apply`.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub only: Vec<String>,
    pub exclude: Vec<String>,
    pub include_all: bool,
    pub allow_delete: bool,
    /// Plan and apply the Supabase side only.
    pub skip_frontend: bool,
    /// `--shard K/N`: this shard of the fleet only (`None`: the whole fleet).
    pub shard: Option<crate::shard::Shard>,
    /// `apply --through` / `--wave` (waves, see `rollout`).
    pub rollout: crate::rollout::RolloutOptions,
}

/// How `apply` takes the fleet's lease (see `lease`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Locking {
    /// Wait this long for a live holder; zero fails at once.
    pub timeout: std::time::Duration,
    /// `--no-lock`: take no lease at all.
    pub disabled: bool,
}

pub(crate) async fn connect(ws: &Workspace, sandbox: bool, sel: &Selection) -> Result<Connections> {
    if sandbox {
        Connections::sandbox(&ws.fleet, !sel.skip_frontend).await
    } else {
        Connections::from_env(&ws.fleet, !sel.skip_frontend)
    }
}

/// The engine for one command.
pub(crate) fn engine<'w>(ws: &'w Workspace, conns: &'w Connections, sel: &Selection) -> Engine<'w> {
    Engine::new(ws, conns)
        .with_options(PlanOptions {
            include_all: sel.include_all,
            allow_delete: sel.allow_delete,
        })
        .with_shard(sel.shard.unwrap_or(crate::shard::Shard::WHOLE))
}

/// `--color`: whether output is coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColorChoice {
    /// On a terminal, unless `NO_COLOR` is set.
    #[default]
    Auto,
    Always,
    Never,
}

static COLOR: std::sync::OnceLock<ColorChoice> = std::sync::OnceLock::new();

/// Set `--color` for the process (once, by the CLI).
pub fn set_color(choice: ColorChoice) {
    let _ = COLOR.set(choice);
}

/// Whether output to a stream is coloured, given whether that stream is a terminal.
pub fn color(terminal: bool) -> bool {
    match COLOR.get().copied().unwrap_or_default() {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => terminal && std::env::var_os("NO_COLOR").is_none(),
    }
}

fn style() -> render::Style {
    render::Style {
        color: color(std::io::stdout().is_terminal()),
    }
}

/// `apply` / `reconcile --log-format`: how events are printed on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// The live display on a terminal, else one plain line per event.
    #[default]
    Text,
    /// One JSON object per event.
    Json,
}

/// Where apply's events go: JSON lines when asked; the live display when both stdout and
/// stderr are terminals (and `TERM` is not `dumb`); else the plain line-per-event log.
pub(crate) fn reporter(format: LogFormat) -> Box<dyn crate::apply::progress::Progress> {
    use crate::apply::progress::{JsonLines, Lines, Live};
    let terminal = std::io::stderr().is_terminal()
        && std::io::stdout().is_terminal()
        && std::env::var("TERM").map_or(true, |t| t != "dumb");
    match format {
        LogFormat::Json => Box::new(JsonLines),
        LogFormat::Text if terminal => Box::new(Live::new(color(true))),
        LogFormat::Text => Box::new(Lines(|line: &str| eprintln!("{line}"))),
    }
}

/// What `plan` writes besides its exit code.
#[derive(Debug, Clone)]
pub struct PlanOutput {
    /// The rendering printed on stdout.
    pub format: render::Format,
    /// `--out`: the JSON plan saved here.
    pub out: Option<PathBuf>,
    pub detailed_exitcode: bool,
    /// `--comment-dir`: the markdown plan as pull-request comments.
    pub comments: Option<Comments>,
}

/// `--comment-dir DIR --max-comment-bytes N` (see `plan::comment`).
#[derive(Debug, Clone)]
pub struct Comments {
    pub dir: PathBuf,
    pub max_bytes: usize,
}

pub async fn plan_cmd(
    fleet_dir: &Path,
    sandbox: bool,
    sel: &Selection,
    output: PlanOutput,
) -> Result<ExitCode> {
    let PlanOutput {
        format,
        out,
        detailed_exitcode,
        comments,
    } = output;
    let ws = Workspace::load(fleet_dir)?;
    let conns = connect(&ws, sandbox, sel).await?;
    let result = engine(&ws, &conns, sel).plan(&sel.only, &sel.exclude).await;
    conns.close().await?;
    let plan = result?;
    let text = render::render(&plan, format, style());
    print!("{text}");
    if let Some(c) = comments {
        let parts = plan::comment::split(
            &render::markdown_blocks(&plan),
            c.max_bytes,
            plan.shard.as_deref(),
        )?;
        let written = plan::comment::write_parts(&c.dir, &parts)?;
        eprintln!(
            "Wrote the plan as {} comment part{} in {} (plan-1.md …).",
            written.len(),
            if written.len() == 1 { "" } else { "s" },
            c.dir.display()
        );
    }
    if let Some(path) = out {
        std::fs::write(&path, render::json(&plan))
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!(
            "Saved the plan to {}; apply exactly it with `intelli apply {}`.",
            path.display(),
            path.display()
        );
    }
    let t = plan.totals();
    Ok(if t.with_errors > 0 {
        ExitCode::from(1)
    } else if detailed_exitcode && plan.has_changes() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// `apply`'s flags besides the selection and the saved plan.
#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    /// `--yes`: no confirmation.
    pub yes: bool,
    pub parallelism: Option<usize>,
    pub locking: Locking,
    /// `--summary-markdown FILE`.
    pub summary_markdown: Option<PathBuf>,
    /// `--summary-json FILE`.
    pub summary_json: Option<PathBuf>,
    /// `--log-format`.
    pub log_format: LogFormat,
}

pub async fn apply_cmd(
    fleet_dir: &Path,
    sandbox: bool,
    sel: &Selection,
    saved: Option<PathBuf>,
    options: ApplyOptions,
) -> Result<ExitCode> {
    let locking = options.locking;
    let ws = Workspace::load(fleet_dir)?;
    let sel = &crate::shard::for_saved_plan(sel, saved.as_deref(), load_saved)?;
    let conns = connect(&ws, sandbox, sel).await?;
    let shard = sel.shard.unwrap_or(crate::shard::Shard::WHOLE);
    let result = match take_lease(&ws, &conns, sandbox, locking, shard).await {
        Ok(lease) => {
            let guard = lease.as_ref().map(Lease::guard);
            let result = apply_with(&ws, &conns, sel, saved, &options, guard).await;
            let released = match lease {
                Some(l) => l.release().await.context("releasing the fleet's lease"),
                None => Ok(()),
            };
            result.and_then(|code| released.map(|()| code))
        }
        Err(e) => Err(e),
    };
    let closed = conns.close().await;
    let code = result?;
    closed?;
    Ok(code)
}

/// Take the fleet's lease on Cloudflare (README, "Reliability"), unless `--no-lock`.
pub(crate) async fn take_lease(
    ws: &Workspace,
    conns: &Connections,
    sandbox: bool,
    locking: Locking,
    shard: crate::shard::Shard,
) -> Result<Option<Lease>> {
    if locking.disabled {
        eprintln!(
            "WARNING: --no-lock: this apply takes no fleet lease, so nothing stops another apply from \
             acting on the same clients at the same time (two could create one client's project twice). \
             Use it only when you are sure no other apply runs."
        );
        return Ok(None);
    }
    let cf = match &conns.cloudflare {
        Some(cf) => cf.clone(),
        None if sandbox => {
            // The sandbox's Cloudflare is skipped with --skip-frontend; its state belongs to
            // this machine alone.
            return Ok(None);
        }
        None => lease_client(ws)?,
    };
    let cf_settings = &ws.fleet.settings.cloudflare;
    let mut config = LeaseConfig::new(
        &cf_settings.zone,
        &ws.fleet.settings.name_prefix,
        locking.timeout,
    );
    config.shard = shard;
    let lease = Lease::acquire(&cf, &config, &|line| eprintln!("{line}")).await?;
    eprintln!(
        "Took the fleet's lease ({} in {}, shard {}, TTL {}s).",
        config.record_name(),
        config.zone,
        config.shard,
        config.ttl.as_secs()
    );
    Ok(Some(lease))
}

/// A Cloudflare client for the lease alone (the Supabase-only case, `--skip-frontend`).
fn lease_client(ws: &Workspace) -> Result<crate::cloudflare::CloudflareClient> {
    // The lease is a DNS record in the fleet's zone: any of the fleet's accounts will do.
    let accounts = ws.fleet.cloudflare_accounts();
    let config =
        crate::cloudflare::CloudflareConfig::from_env(accounts.first().map(|a| a.id.as_str()))
            .map_err(|_| {
                anyhow::anyhow!(
                    "apply takes the fleet's lease on Cloudflare (a DNS record in {}) so that two applies \
                     never act at once, and CLOUDFLARE_API_TOKEN is not set: set it, or pass --no-lock \
                     if you are sure no other apply runs (README, \"Reliability\")",
                    ws.fleet.settings.cloudflare.zone
                )
            })?;
    crate::cloudflare::CloudflareClient::new(config).context("configuring the Cloudflare API")
}

async fn apply_with(
    ws: &Workspace,
    conns: &Connections,
    sel: &Selection,
    saved: Option<PathBuf>,
    options: &ApplyOptions,
    lease: Option<LeaseGuard>,
) -> Result<ExitCode> {
    let mut engine = engine(ws, conns, sel).with_reporter(reporter(options.log_format));
    if let Some(n) = options.parallelism {
        engine = engine.with_parallelism(n);
    }
    if let Some(guard) = lease {
        engine = engine.with_lease(guard);
    }
    let plan = match &saved {
        Some(path) => {
            let saved = load_saved(path)?;
            check_saved(&saved, ws, &engine).await?
        }
        None => engine.plan(&sel.only, &sel.exclude).await?,
    };
    if saved.is_none() {
        print!("{}", render::text(&plan, style()));
    }
    if !plan.has_changes() {
        // The summaries exist whatever happened, so a CI step that publishes them finds them.
        write_summaries(&crate::rollout::RolloutReport::default(), options)?;
        let failed = plan.totals().with_errors;
        if failed > 0 {
            eprintln!("Nothing applied: {failed} client(s) have errors (see above).");
            return Ok(ExitCode::from(1));
        }
        println!("Nothing to apply.");
        return Ok(ExitCode::SUCCESS);
    }
    if !options.yes && !confirm()? {
        eprintln!("Apply cancelled.");
        return Ok(ExitCode::from(1));
    }

    let rollout = engine.rollout(&plan, &sel.rollout).await?;
    println!("\n{}", rollout.report.table());
    write_summaries(&rollout, options)?;
    print!("{}", rollout.summary());
    Ok(if rollout.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `--summary-markdown` / `--summary-json`: the summary table's facts, and the rollout's (its
/// halt, the waves run and not started) when apply ran by waves.
fn write_summaries(report: &crate::rollout::RolloutReport, options: &ApplyOptions) -> Result<()> {
    if let Some(path) = &options.summary_markdown {
        std::fs::write(path, report.markdown())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &options.summary_json {
        std::fs::write(path, report.json())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn confirm() -> Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!("refusing to apply without confirmation: pass --yes (stdin is not a terminal)");
    }
    print!("\nDo you want to apply these changes? Only 'yes' will be accepted: ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(answer.trim() == "yes")
}

fn load_saved(path: &Path) -> Result<Plan> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let plan: Plan = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a plan saved by `intelli plan --out`",
            path.display()
        )
    })?;
    if plan.format_version != plan::FORMAT_VERSION {
        bail!(
            "{} has plan format {}, this intelli reads format {}",
            path.display(),
            plan.format_version,
            plan::FORMAT_VERSION
        );
    }
    Ok(plan)
}

/// Refuse a saved plan when the desired state or the world changed since it was made. A client
/// already at the plan's target (a rollout applied part of the plan meanwhile: its fresh plan
/// has nothing to do) is accepted, with nothing left to do; the plan returned says so.
async fn check_saved(saved: &Plan, ws: &Workspace, engine: &Engine<'_>) -> Result<Plan> {
    if saved.desired_digest != ws.digest {
        bail!(
            "the saved plan is stale: the fleet files, migrations or seed changed since it was made; run `intelli plan` again"
        );
    }
    let only: Vec<String> = saved.clients.iter().map(|c| c.client.clone()).collect();
    let fresh = engine.plan(&only, &[]).await?;
    let mut diffs = Vec::new();
    let mut plan = saved.clone();
    for old in &mut plan.clients {
        match fresh.clients.iter().find(|c| c.client == old.client) {
            None => diffs.push(format!("{}: no longer selected", old.client)),
            Some(new) if !new.has_changes() && new.errors.is_empty() => *old = new.clone(),
            Some(new) if !same_intent(old, new) => diffs.push(format!(
                "{}: planned {} action(s) [{}], the world now needs {} [{}]",
                old.client,
                old.actions.len(),
                old.actions
                    .iter()
                    .map(|a| plan::describe(a).headline)
                    .collect::<Vec<_>>()
                    .join(", "),
                new.actions.len(),
                new.actions
                    .iter()
                    .map(|a| plan::describe(a).headline)
                    .collect::<Vec<_>>()
                    .join(", "),
            )),
            Some(_) => {}
        }
    }
    if !diffs.is_empty() {
        bail!(
            "the saved plan is stale: the world changed since it was made\n  {}\nrun `intelli plan` again",
            diffs.join("\n  ")
        );
    }
    Ok(plan)
}

fn same_intent(a: &ClientPlan, b: &ClientPlan) -> bool {
    a.actions == b.actions && a.errors == b.errors && a.project_ref == b.project_ref
}
