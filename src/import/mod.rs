//! `intelli import`: adopt clients set up by hand before intelli, without touching them.
//!
//! For each client (one from the command line, or every entry of the old `clients.json`
//! registry: [`registry`]) it reads the live state (read-only: the organization's project list,
//! the project's auth settings, one SQL read of its history and buckets, and the Pages project
//! when one is named), writes `fleet/<slug>.yaml` with the project ref pinned and only what is
//! observed and differs from the fleet's defaults (region, buckets, redirect URLs; the Pages
//! project name and the domain when they are not the derived ones), then prints the plan for
//! the imported clients, which shows only real differences.
//!
//! **It never writes to a vendor**, and never overwrites a file: a client whose file exists is
//! refused, and when the written files do not validate they are removed again. What the plan
//! then proposes (recording a seed found by `migrations.seed_check`, adopting a DNS record that
//! already points at the site, a first deploy that uploads nothing new) is done by `apply`.

pub mod registry;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use crate::commands::Selection;
use crate::fleet::Fleet;
use crate::fleet::model::BucketSettings;
use crate::observe::BucketRow;
use crate::plan::render;
use crate::workspace::{Connections, Workspace};
pub use registry::Entry;

/// What was read about one client before its file is written.
struct Observed {
    region: String,
    redirect_urls: Vec<String>,
    buckets: Vec<BucketRow>,
}

pub async fn import_cmd(
    fleet_dir: &Path,
    sandbox: bool,
    sel: &Selection,
    entries: Vec<Entry>,
) -> Result<ExitCode> {
    let ws = Workspace::load(fleet_dir)?;
    for e in &entries {
        let file = ws.fleet.dir.join(format!("{}.yaml", e.slug));
        if ws.fleet.clients.contains_key(&e.slug) || file.exists() {
            bail!(
                "client `{}` exists already ({}); import never overwrites a client file",
                e.slug,
                file.display()
            );
        }
    }
    let conns = crate::commands::connect(&ws, sandbox, sel).await?;
    let result = import_with(&ws, &conns, sel, &entries, sandbox).await;
    conns.close().await?;
    result
}

async fn import_with(
    ws: &Workspace,
    conns: &Connections,
    sel: &Selection,
    entries: &[Entry],
    sandbox: bool,
) -> Result<ExitCode> {
    let org = &ws.fleet.settings.supabase.organization_slug;
    let projects = conns
        .supabase
        .list_org_projects(org)
        .await
        .with_context(|| format!("listing the projects of organization {org}"))?;
    let mut texts = Vec::new();
    for e in entries {
        let Some(project) = projects
            .iter()
            .find(|p| p.project_ref == e.project_ref && !p.status.is_gone())
        else {
            bail!(
                "{}: no live project with ref {} in organization {org}",
                e.slug,
                e.project_ref
            );
        };
        if !project.status.is_healthy() {
            bail!(
                "{}: project {} is {}; import reads its settings, so it must be healthy",
                e.slug,
                e.project_ref,
                project.status.as_str()
            );
        }
        if let (Some(cf), Some(name)) = (&conns.cloudflare, &e.pages_project) {
            cf.get_project(name)
                .await
                .with_context(|| format!("{}: reading Pages project {name}", e.slug))?
                .with_context(|| format!("{}: there is no Pages project named {name}", e.slug))?;
        }
        let auth = conns
            .supabase
            .auth_config(&e.project_ref)
            .await
            .with_context(|| format!("{}: reading the auth settings", e.slug))?;
        let db = crate::observe::supabase::observe_database(
            &conns.sql,
            &e.project_ref,
            &ws.migrations,
            crate::observe::supabase::HistoryHint::Unknown,
        )
        .await
        .map_err(|m| anyhow::anyhow!("{}: reading the database: {m}", e.slug))?;
        let observed = Observed {
            region: project.region.clone(),
            redirect_urls: auth.uri_allow_list,
            buckets: db.buckets,
        };
        texts.push((e.slug.clone(), client_file(&ws.fleet, e, &observed)));
    }
    let mut written: Vec<PathBuf> = Vec::new();
    for (slug, text) in &texts {
        let path = ws.fleet.dir.join(format!("{slug}.yaml"));
        // create_new: a file that appeared meanwhile is never overwritten.
        let write = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()));
        if let Err(e) = write {
            remove(&written);
            return Err(e).with_context(|| format!("writing {}", path.display()));
        }
        written.push(path);
    }
    let fresh = match Workspace::load(&ws.fleet.dir) {
        Ok(ws) => ws,
        Err(e) => {
            remove(&written);
            return Err(e.context("the imported client files do not validate; none was kept"));
        }
    };
    for p in &written {
        eprintln!("wrote {}", p.display());
    }
    let only: Vec<String> = entries.iter().map(|e| e.slug.clone()).collect();
    let plan = crate::commands::engine(&fresh, conns, sel)
        .plan(&only, &[])
        .await?;
    let style = render::Style {
        color: std::io::IsTerminal::is_terminal(&std::io::stdout())
            && std::env::var_os("NO_COLOR").is_none(),
    };
    print!("{}", render::text(&plan, style));
    if plan.has_changes() {
        let sandbox = if sandbox { " --sandbox" } else { "" };
        eprintln!(
            "Review the files, commit them, and run `intelli apply{sandbox} --only {}` to take the clients over.",
            only.join(",")
        );
    }
    Ok(if plan.totals().with_errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn remove(paths: &[PathBuf]) {
    for p in paths {
        // Our own file, just written; nothing else to do if it is already gone.
        let _ = std::fs::remove_file(p);
    }
}

/// The client file: the pinned ref and only what differs from the fleet's defaults.
fn client_file(fleet: &Fleet, e: &Entry, o: &Observed) -> String {
    let s = &fleet.settings;
    let defaults = crate::fleet::merge::merge(&s.defaults, &Default::default());
    let derived_domain = format!("{}.{}", e.slug, s.base_domain);
    let domain = e.domain.clone().unwrap_or_else(|| derived_domain.clone());
    let mut out = String::new();
    out.push_str("# yaml-language-server: $schema=../schema/client.schema.json\n");
    let _ = writeln!(
        out,
        "# Imported by `intelli import` from project {} (what differs from fleet.yaml's defaults).",
        e.project_ref
    );
    let _ = writeln!(out, "client: {}", e.slug);
    if let Some(name) = e.name.as_ref().filter(|n| **n != e.slug) {
        let _ = writeln!(out, "display_name: {}", quoted(name));
    }
    if domain != derived_domain {
        let _ = writeln!(out, "domain: {}", quoted(&domain));
    }
    let _ = writeln!(out, "project_ref: {}", e.project_ref);
    let derived_pages = format!("{}{}", s.name_prefix, e.slug);
    if let Some(p) = e.pages_project.as_ref().filter(|p| **p != derived_pages) {
        let _ = writeln!(out, "pages_project: {}", quoted(p));
    }
    let mut supabase = String::new();
    if defaults.region.as_deref() != Some(o.region.as_str()) {
        let _ = writeln!(supabase, "  region: {}", quoted(&o.region));
    }
    let mut buckets = String::new();
    for row in &o.buckets {
        let seen = BucketSettings {
            public: Some(row.public),
            file_size_limit: row.file_size_limit,
            allowed_mime_types: Some(row.allowed_mime_types.clone().unwrap_or_default()),
        };
        let same = defaults.buckets.get(&row.id).is_some_and(|d| {
            d.public.unwrap_or(false) == row.public
                && d.file_size_limit == row.file_size_limit
                && sorted(d.allowed_mime_types.clone().unwrap_or_default())
                    == sorted(row.allowed_mime_types.clone().unwrap_or_default())
        });
        if same {
            continue;
        }
        let _ = writeln!(buckets, "    {}:", quoted(&row.id));
        let _ = writeln!(buckets, "      public: {}", seen.public.unwrap_or(false));
        if let Some(limit) = seen.file_size_limit {
            let _ = writeln!(buckets, "      file_size_limit: {limit}");
        }
        let mimes: Vec<String> = seen
            .allowed_mime_types
            .unwrap_or_default()
            .iter()
            .map(|m| quoted(m))
            .collect();
        let _ = writeln!(buckets, "      allowed_mime_types: [{}]", mimes.join(", "));
    }
    if !buckets.is_empty() {
        supabase.push_str("  buckets:\n");
        supabase.push_str(&buckets);
    }
    if !supabase.is_empty() {
        out.push_str("supabase:\n");
        out.push_str(&supabase);
    }
    // The domain's own URL is always allowed; the rest is the fleet's default list unless the
    // project allows others.
    let own = format!("https://{domain}/**");
    let extra: Vec<&String> = o.redirect_urls.iter().filter(|u| **u != own).collect();
    let default_extra: Vec<&String> = defaults.additional_redirect_urls.iter().collect();
    if !o.redirect_urls.is_empty() && sorted_refs(&extra) != sorted_refs(&default_extra) {
        out.push_str("auth:\n  additional_redirect_urls:\n");
        for u in extra {
            let _ = writeln!(out, "    - {}", quoted(u));
        }
    }
    out
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn sorted_refs<'a>(v: &[&'a String]) -> Vec<&'a String> {
    let mut v = v.to_vec();
    v.sort();
    v
}

/// A YAML double-quoted scalar (JSON string syntax is valid YAML).
fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
}

/// The entries from the command line or the registry file; the registry's problems are
/// diagnostics (printed like `validate`'s), anything else an error.
pub fn entries(
    slug: Option<String>,
    project_ref: Option<String>,
    pages_project: Option<String>,
    domain: Option<String>,
    from: Option<PathBuf>,
) -> Result<Result<Vec<Entry>, crate::diag::Diagnostics>> {
    match (from, slug) {
        (Some(file), None) => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            Ok(registry::parse(&file, &text))
        }
        (None, Some(slug)) => {
            let project_ref = project_ref.context("--project-ref REF is needed with a slug")?;
            Ok(Ok(vec![Entry {
                slug,
                name: None,
                project_ref,
                domain,
                pages_project,
            }]))
        }
        (Some(_), Some(_)) => bail!("give a slug or --from FILE, not both"),
        (None, None) => bail!("give a slug (with --project-ref) or --from clients.json"),
    }
}
