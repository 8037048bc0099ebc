//! `plan` and `apply`: wiring observe → plan → render / apply, and the exit codes.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use crate::apply::{self, Waits};
use crate::observe;
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Markdown,
}

async fn connect(ws: &Workspace, sandbox: bool, sel: &Selection) -> Result<Connections> {
    if sandbox {
        Connections::sandbox(&ws.fleet, !sel.skip_frontend).await
    } else {
        Connections::from_env(&ws.fleet, !sel.skip_frontend)
    }
}

/// The desired state as `conns` can plan it (with the frontend side when Cloudflare is there).
fn desired<'w>(ws: &'w Workspace, conns: &Connections) -> crate::plan::Desired<'w> {
    let template = conns
        .cloudflare
        .as_ref()
        .map(|_| conns.supabase.project_url("{ref}"));
    ws.desired(template.as_deref())
}

async fn make_plan(ws: &Workspace, conns: &Connections, sel: &Selection) -> Result<Plan> {
    let selected = ws.select(&sel.only, &sel.exclude)?;
    let parallelism = (ws.fleet.settings.parallelism as usize).max(8);
    let supabase = observe::supabase::observe(
        &conns.supabase,
        &conns.sql,
        &ws.fleet,
        &selected,
        &ws.migrations,
        parallelism,
        conns.cloudflare.is_some(),
    );
    let sites = async {
        match &conns.cloudflare {
            Some(cf) => observe::cloudflare::observe(cf, &ws.fleet, &selected, parallelism)
                .await
                .map(Some),
            None => Ok(None),
        }
    };
    let (observed, sites) = tokio::join!(supabase, sites);
    let mut observed = observed.context("observing Supabase")?;
    if let Some(sites) = sites.context("observing Cloudflare")? {
        for (slug, site) in sites {
            observed.clients.entry(slug).or_default().site = site;
        }
    }
    let options = PlanOptions {
        include_all: sel.include_all,
        allow_delete: sel.allow_delete,
    };
    Ok(plan::plan(
        &desired(ws, conns),
        &selected,
        &observed,
        options,
    ))
}

fn style() -> render::Style {
    render::Style {
        color: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    }
}

pub async fn plan_cmd(
    fleet_dir: &Path,
    sandbox: bool,
    sel: &Selection,
    format: Format,
    out: Option<PathBuf>,
    detailed_exitcode: bool,
) -> Result<ExitCode> {
    let ws = Workspace::load(fleet_dir)?;
    let conns = connect(&ws, sandbox, sel).await?;
    let result = make_plan(&ws, &conns, sel).await;
    conns.close().await?;
    let plan = result?;
    let text = match format {
        Format::Text => render::text(&plan, style()),
        Format::Json => render::json(&plan),
        Format::Markdown => render::markdown(&plan),
    };
    print!("{text}");
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

pub async fn apply_cmd(
    fleet_dir: &Path,
    sandbox: bool,
    sel: &Selection,
    saved: Option<PathBuf>,
    yes: bool,
    parallelism: Option<usize>,
) -> Result<ExitCode> {
    let ws = Workspace::load(fleet_dir)?;
    let conns = connect(&ws, sandbox, sel).await?;
    let result = apply_with(&ws, &conns, sel, saved, yes, parallelism).await;
    let closed = conns.close().await;
    let code = result?;
    closed?;
    Ok(code)
}

async fn apply_with(
    ws: &Workspace,
    conns: &Connections,
    sel: &Selection,
    saved: Option<PathBuf>,
    yes: bool,
    parallelism: Option<usize>,
) -> Result<ExitCode> {
    let plan = match &saved {
        Some(path) => {
            let saved = load_saved(path)?;
            check_saved(&saved, ws, conns, sel).await?;
            saved
        }
        None => make_plan(ws, conns, sel).await?,
    };
    if saved.is_none() {
        print!("{}", render::text(&plan, style()));
    }
    if !plan.has_changes() {
        let failed = plan.totals().with_errors;
        if failed > 0 {
            eprintln!("Nothing applied: {failed} client(s) have errors (see above).");
            return Ok(ExitCode::from(1));
        }
        println!("Nothing to apply.");
        return Ok(ExitCode::SUCCESS);
    }
    if !yes && !confirm()? {
        eprintln!("Apply cancelled.");
        return Ok(ExitCode::from(1));
    }

    let progress = |line: &str| eprintln!("{line}");
    let desired = desired(ws, conns);
    let builds =
        tokio::sync::Semaphore::new(build_slots(&ws.fleet.settings.frontend.build_command));
    let needs_build = plan.clients.iter().any(|c| {
        c.errors.is_empty()
            && c.actions
                .iter()
                .any(|a| matches!(a, crate::plan::Action::Deploy { .. }))
    });
    if needs_build {
        let front = &ws.fleet.settings.frontend;
        eprintln!("frontend: {} …", front.install_command);
        crate::frontend::build::run(
            &ws.fleet.root.join(&front.dir),
            &front.install_command,
            &Default::default(),
        )
        .await
        .context("installing the frontend's dependencies")?;
    }
    let waits = waits_from_env();
    let ctx = apply::Context {
        supabase: &conns.supabase,
        sql: &conns.sql,
        fleet: &ws.fleet,
        desired: &desired,
        migrations: &ws.migrations,
        seed_sql: &ws.seed_sql,
        options: PlanOptions {
            include_all: sel.include_all,
            allow_delete: sel.allow_delete,
        },
        waits,
        progress: &progress,
        site: conns
            .cloudflare
            .as_ref()
            .map(|cf| apply::site::SiteContext {
                cloudflare: cf,
                source_digest: ws.frontend_digest.clone(),
                builds: &builds,
                probe_base: conns.probe_base.clone(),
                domain_timeout: waits.domain_timeout,
            }),
    };
    let parallelism = parallelism.unwrap_or(ws.fleet.settings.parallelism as usize);
    let report = apply::apply(&ctx, &plan.clients, parallelism).await;
    println!("\n{}", report.table());
    Ok(if report.failed() > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Builds that may run at once: one per CPU when each client builds into its own directory,
/// else one (they would share the frontend's output directory).
fn build_slots(build_command: &str) -> usize {
    if crate::frontend::build::supports_parallel_builds(build_command) {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        1
    }
}

/// Poll interval and timeout for slow vendor operations (`INTELLI_POLL_MS`,
/// `INTELLI_HEALTHY_TIMEOUT_SECS`); the defaults suit the real vendors.
fn waits_from_env() -> Waits {
    let num = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let mut w = Waits {
        // Short enough for the simulator's provisioning, polite enough for the real API (one
        // GET per client every half second is far under the per-project limit).
        poll: std::time::Duration::from_millis(num("INTELLI_POLL_MS").unwrap_or(500)),
        ..Waits::default()
    };
    if let Some(s) = num("INTELLI_HEALTHY_TIMEOUT_SECS") {
        w.healthy_timeout = std::time::Duration::from_secs(s);
    }
    if let Some(s) = num("INTELLI_DOMAIN_TIMEOUT_SECS") {
        w.domain_timeout = std::time::Duration::from_secs(s);
    }
    if let Some(s) = num("INTELLI_CREATE_LOOKUP_SECS") {
        w.ambiguous_lookup = std::time::Duration::from_secs(s);
    }
    w
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

/// Refuse a saved plan when the desired state or the world changed since it was made.
async fn check_saved(
    saved: &Plan,
    ws: &Workspace,
    conns: &Connections,
    sel: &Selection,
) -> Result<()> {
    if saved.desired_digest != ws.digest {
        bail!(
            "the saved plan is stale: the fleet files, migrations or seed changed since it was made; run `intelli plan` again"
        );
    }
    let scope = Selection {
        only: saved.clients.iter().map(|c| c.client.clone()).collect(),
        exclude: Vec::new(),
        ..sel.clone()
    };
    let fresh = make_plan(ws, conns, &scope).await?;
    let mut diffs = Vec::new();
    for old in &saved.clients {
        match fresh.clients.iter().find(|c| c.client == old.client) {
            None => diffs.push(format!("{}: no longer selected", old.client)),
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
    Ok(())
}

fn same_intent(a: &ClientPlan, b: &ClientPlan) -> bool {
    a.actions == b.actions && a.errors == b.errors && a.project_ref == b.project_ref
}
