//! `status --format html`: one self-contained page (no network, no CDN): a summary, a table
//! sortable by any column (inline script), and an inline SVG chart of the migration versions
//! the fleet's databases are at.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{ClientStatus, StatusReport, Sync};

/// Escape text for HTML content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}\
h1{font-size:1.4em}.cards{display:flex;gap:1em;margin:1em 0}\
.card{border:1px solid #ccc;border-radius:6px;padding:.6em 1.2em;min-width:7em}\
.card b{display:block;font-size:1.8em}table{border-collapse:collapse;width:100%}\
th,td{border-bottom:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top}\
th{cursor:pointer;background:#f4f4f4;user-select:none}th:hover{background:#e8e8e8}\
.converged{color:#1a7f37}.drifting{color:#9a6700}.failing{color:#cf222e;font-weight:bold}\
.detail{font-size:.9em;color:#555}svg text{font:12px system-ui,sans-serif}";

const SCRIPT: &str = "document.querySelectorAll('th').forEach(function(th,i){\
th.addEventListener('click',function(){var tb=th.closest('table').tBodies[0];\
var rows=Array.from(tb.rows);var asc=th.dataset.dir!=='asc';th.dataset.dir=asc?'asc':'desc';\
rows.sort(function(a,b){var x=a.cells[i].dataset.v||a.cells[i].textContent;\
var y=b.cells[i].dataset.v||b.cells[i].textContent;\
var n=parseFloat(x)-parseFloat(y);var c=isNaN(n)?x.localeCompare(y):n;return asc?c:-c;});\
rows.forEach(function(r){tb.appendChild(r);});});});";

/// The page.
pub fn html(report: &StatusReport) -> String {
    let s = &report.summary;
    let mut out = String::from("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    let _ = write!(
        out,
        "<title>intelli fleet status</title><style>{STYLE}</style></head><body>\
         <h1>Fleet status</h1><p>intelli {} · {} client(s)</p><div class=\"cards\">",
        esc(&report.intelli_version),
        s.clients
    );
    for (label, n, class) in [
        ("converged", s.converged, "converged"),
        ("drifting", s.drifting, "drifting"),
        ("failing", s.failing, "failing"),
    ] {
        let _ = write!(
            out,
            "<div class=\"card\"><b class=\"{class}\">{n}</b>{label}</div>"
        );
    }
    out.push_str("</div>");
    out.push_str(&chart(report));
    out.push_str(&table(report));
    if !report.orphans.is_empty() {
        out.push_str("<h2>Orphan projects</h2><ul>");
        for o in &report.orphans {
            let _ = write!(out, "<li>{} ({})</li>", esc(&o.name), esc(&o.project_ref));
        }
        out.push_str("</ul>");
    }
    let _ = writeln!(out, "<script>{SCRIPT}</script></body></html>");
    out
}

fn table(report: &StatusReport) -> String {
    let mut out = String::from(
        "<h2>Clients</h2><table><thead><tr><th>Client</th><th>Sync</th><th>State</th>\
         <th>Project</th><th>Status</th><th>Region / size</th><th>Migrations</th>\
         <th>Pending</th><th>Seed</th><th>Buckets</th><th>Site</th><th>Deployed</th>\
         <th>Domain</th><th>Details</th></tr></thead><tbody>",
    );
    for c in &report.clients {
        out.push_str(&row(c));
    }
    out.push_str("</tbody></table>");
    out
}

fn row(c: &ClientStatus) -> String {
    let class = match c.sync {
        Sync::Converged => "converged",
        Sync::Drifting => "drifting",
        Sync::Failing => "failing",
    };
    let m = &c.migrations;
    let site = c.site.as_ref();
    let mut details: Vec<String> = c.errors.iter().map(|e| format!("error: {e}")).collect();
    details.extend(m.problems.iter().cloned());
    details.extend(c.pending_actions.iter().cloned());
    details.extend(c.notes.iter().cloned());
    let details: Vec<String> = details.iter().map(|d| esc(d)).collect();
    let size = c.project.instance_size.as_deref().unwrap_or("default");
    format!(
        "<tr><td>{}</td><td class=\"{class}\">{}</td><td>{:?}</td><td>{}</td><td>{}</td>\
         <td>{} / {}</td><td data-v=\"{}\">{}</td><td data-v=\"{}\">{}</td><td>{}</td>\
         <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"detail\">{}</td></tr>",
        esc(&c.client),
        c.sync.as_str(),
        c.state,
        esc(c.project.project_ref.as_deref().unwrap_or("-")),
        esc(c.project.status.as_deref().unwrap_or("-")),
        esc(&c.project.region),
        esc(size),
        esc(m.latest_applied.as_deref().unwrap_or("0")),
        esc(m.latest_applied.as_deref().unwrap_or("-")),
        m.pending.len(),
        m.pending.len(),
        c.seed.as_str(),
        c.buckets
            .as_declared
            .map_or("-".to_string(), |n| format!("{n}/{}", c.buckets.declared)),
        site.map_or("-", |s| s.state.as_str()),
        esc(site.and_then(|s| s.deployed_on.as_deref()).unwrap_or("-")),
        esc(&site.map_or("-".to_string(), |s| format!(
            "{} {}",
            s.domain,
            s.domain_status.as_deref().unwrap_or("")
        ))),
        details.join("<br>"),
    )
}

/// A bar per migration version (the newest each client's database has applied), as tall as
/// the number of clients at it; clients whose database was not read count as "unknown".
fn chart(report: &StatusReport) -> String {
    let mut at: BTreeMap<String, usize> = BTreeMap::new();
    for c in &report.clients {
        let key = match (&c.migrations.applied, &c.migrations.latest_applied) {
            (None, _) => "unknown".to_string(),
            (Some(_), None) => "none".to_string(),
            (Some(_), Some(v)) => v.clone(),
        };
        *at.entry(key).or_default() += 1;
    }
    let max = at.values().copied().max().unwrap_or(1).max(1);
    let (bar, gap, height) = (104usize, 16usize, 160usize);
    let width = at.len() * (bar + gap) + gap;
    let mut svg = format!(
        "<h2>Migration versions across the fleet</h2><svg xmlns=\"http://www.w3.org/2000/svg\" \
         width=\"{width}\" height=\"{}\" role=\"img\" aria-label=\"clients per migration version\">",
        height + 60
    );
    for (i, (version, n)) in at.iter().enumerate() {
        let h = n * height / max;
        let x = gap + i * (bar + gap);
        let y = height - h + 20;
        let _ = write!(
            svg,
            "<rect x=\"{x}\" y=\"{y}\" width=\"{bar}\" height=\"{h}\" fill=\"#4f7cc4\">\
             <title>{}: {n} client(s)</title></rect>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{n}</text>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            esc(version),
            x + bar / 2,
            y - 4,
            x + bar / 2,
            height + 40,
            esc(version),
        );
    }
    svg.push_str("</svg>");
    svg
}
