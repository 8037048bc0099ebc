//! `plan` and `apply`: wiring observe → plan → render / apply, and the exit codes.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use crate::engine::Engine;
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

async fn connect(ws: &Workspace, sandbox: bool, sel: &Selection) -> Result<Connections> {
    if sandbox {
        Connections::sandbox(&ws.fleet, !sel.skip_frontend).await
    } else {
        Connections::from_env(&ws.fleet, !sel.skip_frontend)
    }
}

/// The engine for one command.
fn engine<'w>(ws: &'w Workspace, conns: &'w Connections, sel: &Selection) -> Engine<'w> {
    Engine::new(ws, conns).with_options(PlanOptions {
        include_all: sel.include_all,
        allow_delete: sel.allow_delete,
    })
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
    format: render::Format,
    out: Option<PathBuf>,
    detailed_exitcode: bool,
) -> Result<ExitCode> {
    let ws = Workspace::load(fleet_dir)?;
    let conns = connect(&ws, sandbox, sel).await?;
    let result = engine(&ws, &conns, sel).plan(&sel.only, &sel.exclude).await;
    conns.close().await?;
    let plan = result?;
    let text = render::render(&plan, format, style());
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
    let mut engine = engine(ws, conns, sel);
    if let Some(n) = parallelism {
        engine = engine.with_parallelism(n);
    }
    let plan = match &saved {
        Some(path) => {
            let saved = load_saved(path)?;
            check_saved(&saved, ws, &engine).await?;
            saved
        }
        None => engine.plan(&sel.only, &sel.exclude).await?,
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

    let report = engine.apply(&plan.clients).await?;
    println!("\n{}", report.table());
    Ok(if report.failed() > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
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
async fn check_saved(saved: &Plan, ws: &Workspace, engine: &Engine<'_>) -> Result<()> {
    if saved.desired_digest != ws.digest {
        bail!(
            "the saved plan is stale: the fleet files, migrations or seed changed since it was made; run `intelli plan` again"
        );
    }
    let only: Vec<String> = saved.clients.iter().map(|c| c.client.clone()).collect();
    let fresh = engine.plan(&only, &[]).await?;
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
