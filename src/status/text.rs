//! `status` as a table for a terminal (fits [`WIDTH`] columns, like `flux get`) and as markdown.

use std::fmt::Write as _;

use super::{ClientStatus, StatusReport, Sync};

/// The terminal width the text table fits.
pub const WIDTH: usize = 100;

const HEADERS: [&str; 10] = [
    "CLIENT",
    "SYNC",
    "PROJECT",
    "STATUS",
    "REGION",
    "MIGRATIONS",
    "SEED",
    "BUCKETS",
    "SITE",
    "DOMAIN",
];

/// Longest a cell may be, per column (the project ref is 20 characters).
const CAPS: [usize; 10] = [18, 9, 20, 10, 14, 11, 7, 7, 7, 9];

/// The cells of one row, in [`HEADERS`] order.
fn cells(c: &ClientStatus) -> [String; 10] {
    let m = &c.migrations;
    let migrations = match m.applied {
        None => "-".to_string(),
        Some(_) if !m.problems.is_empty() => "drift".to_string(),
        Some(n) if m.pending.is_empty() => format!("{n}/{}", m.files),
        Some(n) => format!("{n}/{} +{}", m.files, m.pending.len()),
    };
    let buckets = match c.buckets.as_declared {
        Some(n) => format!("{n}/{}", c.buckets.declared),
        None => "-".to_string(),
    };
    let (site, domain) = match &c.site {
        Some(s) => (
            s.state.as_str().to_string(),
            s.domain_status.clone().unwrap_or_else(|| "-".into()),
        ),
        None => ("-".to_string(), "-".to_string()),
    };
    [
        c.client.clone(),
        c.sync.as_str().to_string(),
        c.project.project_ref.clone().unwrap_or_else(|| "-".into()),
        short_status(c.project.status.as_deref()),
        c.project.region.clone(),
        migrations,
        c.seed.as_str().to_string(),
        buckets,
        site,
        domain,
    ]
}

fn short_status(status: Option<&str>) -> String {
    match status {
        None => "-".into(),
        Some("ACTIVE_HEALTHY") => "healthy".into(),
        Some("INACTIVE") => "paused".into(),
        Some(other) => other.to_ascii_lowercase(),
    }
}

/// Cut `s` to `n` characters, marking the cut with `…`.
fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(n.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

fn paint(color: bool, sync: Sync, s: &str) -> String {
    if !color {
        return s.to_string();
    }
    let code = match sync {
        Sync::Converged => "32",
        Sync::Drifting => "33",
        Sync::Failing => "1;31",
    };
    format!("\x1b[{code}m{s}\x1b[0m")
}

/// The table, then one line per error and a line of pending actions per drifting client,
/// then the summary. Every line fits [`WIDTH`] columns; `color` paints the SYNC column.
pub fn text(report: &StatusReport, color: bool) -> String {
    let rows: Vec<[String; 10]> = report
        .clients
        .iter()
        .map(|c| {
            let mut r = cells(c);
            for (cell, cap) in r.iter_mut().zip(CAPS) {
                *cell = cut(cell, cap);
            }
            r
        })
        .collect();
    let mut widths = HEADERS.map(str::len);
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    // Cut to the width first, then paint the SYNC cell (always within the first 30 columns).
    let line = |r: &[String; 10], sync: Option<Sync>| {
        let mut s = String::new();
        for (cell, w) in r.iter().zip(widths) {
            let _ = write!(s, "{cell:<w$} ");
        }
        let plain = cut(s.trim_end(), WIDTH);
        match sync {
            Some(sync) if color => {
                let start = widths[0] + 1;
                let chars: Vec<char> = plain.chars().collect();
                let end = (start + widths[1]).min(chars.len());
                let head: String = chars[..start.min(chars.len())].iter().collect();
                let cell: String = chars[start.min(chars.len())..end].iter().collect();
                let tail: String = chars[end..].iter().collect();
                format!("{head}{}{tail}", paint(true, sync, &cell))
            }
            _ => plain,
        }
    };
    let mut out = String::new();
    let _ = writeln!(out, "{}", line(&HEADERS.map(String::from), None));
    for (c, r) in report.clients.iter().zip(&rows) {
        let _ = writeln!(out, "{}", line(r, Some(c.sync)));
        for e in &c.errors {
            let _ = writeln!(out, "{}", cut(&format!("  ! {e}"), WIDTH));
        }
        if c.sync == Sync::Drifting {
            let pending = c.pending_actions.join("; ");
            let _ = writeln!(out, "{}", cut(&format!("  {pending}"), WIDTH));
        }
    }
    let s = &report.summary;
    let _ = writeln!(
        out,
        "\n{} client(s): {} converged, {} drifting, {} failing",
        s.clients, s.converged, s.drifting, s.failing
    );
    if !report.orphans.is_empty() {
        let names: Vec<&str> = report.orphans.iter().map(|o| o.name.as_str()).collect();
        let _ = writeln!(
            out,
            "{}",
            cut(&format!("Orphan projects: {}", names.join(", ")), WIDTH)
        );
    }
    out
}

/// Escape what markdown tables treat specially.
fn md(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// A markdown table (pull-request comments, issues) with the details below it.
pub fn markdown(report: &StatusReport) -> String {
    let s = &report.summary;
    let mut out = format!(
        "### Fleet status\n\n{} client(s): **{} converged**, **{} drifting**, **{} failing**\n\n",
        s.clients, s.converged, s.drifting, s.failing
    );
    let _ = writeln!(out, "| {} |", HEADERS.join(" | "));
    let _ = writeln!(out, "|{}", " --- |".repeat(HEADERS.len()));
    for c in &report.clients {
        let r = cells(c).map(|x| md(&x));
        let _ = writeln!(out, "| {} |", r.join(" | "));
    }
    let details: Vec<&ClientStatus> = report
        .clients
        .iter()
        .filter(|c| c.sync != Sync::Converged)
        .collect();
    if !details.is_empty() {
        out.push('\n');
    }
    for c in details {
        let _ = writeln!(out, "- **{}** ({})", md(&c.client), c.sync.as_str());
        for e in &c.errors {
            let _ = writeln!(out, "  - error: {}", md(e));
        }
        for a in &c.pending_actions {
            let _ = writeln!(out, "  - `{}`", a.replace('`', "'"));
        }
    }
    out
}
