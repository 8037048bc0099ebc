//! `intelli status` as a command: observe and plan once (no request beyond a plan's), build the
//! report, render it, and the exit code.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::commands::{Selection, connect, engine};
use crate::workspace::Workspace;

/// The renderings of a status report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A table for a terminal (100 columns; coloured on a terminal without `NO_COLOR`).
    Text,
    /// For machines (`schema/status.schema.json`).
    Json,
    /// For pull-request comments and issues.
    Markdown,
    /// One self-contained page.
    Html,
}

/// The report in `format`; `color` applies to text only.
pub fn render(report: &super::StatusReport, format: Format, color: bool) -> String {
    match format {
        Format::Text => super::text(report, color),
        Format::Json => report.json(),
        Format::Markdown => super::markdown(report),
        Format::Html => super::html(report),
    }
}

/// `intelli status`: exit 0 when every client is converged, 2 when some drift or have pending
/// changes, 1 when some have errors. With `out`, the report goes to that file instead of stdout.
pub async fn status_cmd(
    fleet_dir: &Path,
    sandbox: bool,
    sel: &Selection,
    format: Format,
    out: Option<PathBuf>,
) -> Result<ExitCode> {
    let ws = Workspace::load(fleet_dir)?;
    let conns = connect(&ws, sandbox, sel).await?;
    let report = {
        let eng = engine(&ws, &conns, sel);
        let observed = eng.observe_and_plan(&sel.only, &sel.exclude).await;
        let options = crate::plan::PlanOptions {
            include_all: sel.include_all,
            allow_delete: sel.allow_delete,
        };
        observed.and_then(|(observed, plan)| {
            let selected = ws.select(&sel.only, &sel.exclude)?;
            Ok(super::build(
                &eng.desired(),
                &selected,
                &observed,
                &plan,
                options,
            ))
        })
    };
    conns.close().await?;
    let report = report?;
    match out {
        Some(path) => {
            std::fs::write(&path, render(&report, format, false))
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "Wrote the status of {} client(s) to {}",
                report.summary.clients,
                path.display()
            );
        }
        None => {
            let color = crate::commands::color(std::io::stdout().is_terminal());
            print!("{}", render(&report, format, color));
        }
    }
    Ok(ExitCode::from(report.exit_code()))
}
