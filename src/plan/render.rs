//! Printing a plan for people (text, optionally coloured), for pull requests (markdown) and for
//! machines (JSON, see `schema/plan.schema.json`).

use std::fmt::Write as _;

use super::model::{Action, BucketSpec, Change, ClientPlan, Plan};

/// ANSI styling, off unless asked for (the caller decides from the terminal and `NO_COLOR`).
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn sym(&self, c: char) -> String {
        let code = match c {
            '+' => "32",
            '-' => "31",
            '~' => "33",
            '!' => "1;31",
            _ => "36",
        };
        self.paint(code, &c.to_string())
    }
}

/// One line per action, with indented detail lines, in the text format.
fn action_lines(a: &Action) -> (String, Vec<String>) {
    match a {
        Action::CreateProject {
            name,
            organization_slug,
            region,
            instance_size,
        } => (
            format!(
                "create project {name} in {region} ({}, organization {organization_slug})",
                instance_size.as_deref().unwrap_or("default size")
            ),
            vec![],
        ),
        Action::WaitUntilHealthy { status } => (
            format!("wait until the project is healthy (now {status})"),
            vec![],
        ),
        Action::RestoreProject => ("restore the paused project".into(), vec![]),
        Action::PauseProject => ("pause the project".into(), vec![]),
        Action::DeleteProject { project_ref } => (
            format!("DELETE project {project_ref} with its database, users and files"),
            vec![],
        ),
        Action::UpdateAuthConfig {
            site_url,
            redirect_urls,
        } => {
            let mut d = Vec::new();
            if site_url.before.as_ref() != Some(&site_url.after) {
                d.push(format!(
                    "site_url: {} → {}",
                    before(&site_url.before),
                    site_url.after
                ));
            }
            if redirect_urls.before.as_ref() != Some(&redirect_urls.after) {
                d.push("redirect_urls:".into());
                d.extend(
                    list_diff(redirect_urls)
                        .into_iter()
                        .map(|l| format!("  {l}")),
                );
            }
            ("update auth settings".into(), d)
        }
        Action::CreateBucket { bucket } => {
            (format!("create bucket {}", bucket_summary(bucket)), vec![])
        }
        Action::UpdateBucket { before, after } => {
            let mut d = Vec::new();
            if before.public != after.public {
                d.push(format!("public: {} → {}", before.public, after.public));
            }
            if before.file_size_limit != after.file_size_limit {
                d.push(format!(
                    "file_size_limit: {} → {}",
                    size(before.file_size_limit),
                    size(after.file_size_limit)
                ));
            }
            if before.allowed_mime_types != after.allowed_mime_types {
                d.push("allowed_mime_types:".into());
                d.extend(
                    list_diff(&Change {
                        before: Some(before.allowed_mime_types.clone()),
                        after: after.allowed_mime_types.clone(),
                    })
                    .into_iter()
                    .map(|l| format!("  {l}")),
                );
            }
            (format!("update bucket {}", after.name), d)
        }
        Action::ApplyMigrations { versions } => (
            format!(
                "apply {} migration{}",
                versions.len(),
                if versions.len() == 1 { "" } else { "s" }
            ),
            versions.clone(),
        ),
        Action::ApplySeed { path, sha256 } => (
            format!(
                "run seed {path} (sha256 {})",
                &sha256[..12.min(sha256.len())]
            ),
            vec![],
        ),
        Action::CreatePagesProject {
            name,
            production_branch,
        } => (
            format!("create Pages project {name} (production branch {production_branch})"),
            vec![],
        ),
        Action::UpdatePagesProject {
            name,
            production_branch,
        } => (
            format!("update Pages project {name}"),
            vec![format!(
                "production_branch: {} → {}",
                before(&production_branch.before),
                production_branch.after
            )],
        ),
        Action::Deploy {
            project,
            fingerprint,
            reason,
        } => (
            format!("build and deploy the site to {project}"),
            vec![
                format!("reason: {reason}"),
                format!(
                    "fingerprint: {}",
                    fingerprint.as_deref().unwrap_or("(known after apply)")
                ),
            ],
        ),
        Action::AddDomain { project, domain } => {
            (format!("attach domain {domain} to {project}"), vec![])
        }
        Action::UpsertDnsRecord {
            name,
            target,
            before: b,
        } => (
            match b {
                None => format!("create DNS record {name}"),
                Some(_) => format!("fix DNS record {name}"),
            },
            vec![format!(
                "{}CNAME → {} (proxied)",
                b.as_ref().map(|b| format!("{b} → ")).unwrap_or_default(),
                target
                    .as_deref()
                    .unwrap_or("(Pages subdomain, known after apply)")
            )],
        ),
        Action::DeleteSite {
            project,
            dns_record,
        } => (
            format!(
                "DELETE Pages project {project}{}",
                dns_record
                    .as_ref()
                    .map(|d| format!(" and DNS record {d}"))
                    .unwrap_or_default()
            ),
            vec![],
        ),
        Action::WaitForDomain { domain, status } => (
            format!(
                "wait until {domain} is active{} and check the site",
                status
                    .as_ref()
                    .map(|s| format!(" (now {s})"))
                    .unwrap_or_default()
            ),
            vec![],
        ),
    }
}

fn before<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref()
        .map_or_else(|| "(none)".to_string(), ToString::to_string)
}

fn size(v: Option<u64>) -> String {
    match v {
        None => "no limit".into(),
        Some(b) if b % (1024 * 1024) == 0 => format!("{} MiB", b / (1024 * 1024)),
        Some(b) => format!("{b} bytes"),
    }
}

fn bucket_summary(b: &BucketSpec) -> String {
    let types = if b.allowed_mime_types.is_empty() {
        "any type".to_string()
    } else {
        b.allowed_mime_types.join(", ")
    };
    format!(
        "{} ({}, {}, {types})",
        b.name,
        if b.public { "public" } else { "private" },
        size(b.file_size_limit)
    )
}

/// A line diff of two lists (`+`/`-`/` ` prefixes), via `similar`.
fn list_diff(c: &Change<Vec<String>>) -> Vec<String> {
    let old = c.before.clone().unwrap_or_default();
    let diff = similar::capture_diff_slices(similar::Algorithm::Myers, &old, &c.after);
    let mut out = Vec::new();
    for op in diff {
        for change in op.iter_changes(&old, &c.after) {
            let sign = match change.tag() {
                similar::ChangeTag::Delete => '-',
                similar::ChangeTag::Insert => '+',
                similar::ChangeTag::Equal => ' ',
            };
            out.push(format!("{sign} {}", change.value()));
        }
    }
    out
}

fn client_header(c: &ClientPlan) -> String {
    let project = match &c.project_ref {
        Some(r) => format!("{} ({r})", c.project_name),
        None => format!("{} (ref known after apply)", c.project_name),
    };
    format!("{}: {project}", c.client)
}

/// The human format: every client with changes or errors in full, one line for the others,
/// and a fleet total.
pub fn text(plan: &Plan, style: Style) -> String {
    let mut out = String::new();
    for c in &plan.clients {
        if !c.errors.is_empty() {
            let _ = writeln!(out, "{} {}", style.sym('!'), client_header(c));
            for e in &c.errors {
                let _ = writeln!(out, "    error: {e}");
            }
        } else if c.has_changes() {
            let _ = writeln!(out, "{} {}", style.sym('~'), client_header(c));
            for a in &c.actions {
                let (line, details) = action_lines(a);
                let _ = writeln!(out, "    {} {line}", style.sym(a.symbol()));
                for d in details {
                    let colored = match d.trim_start().chars().next() {
                        Some('+') if d.trim_start().starts_with("+ ") => style.paint("32", &d),
                        Some('-') if d.trim_start().starts_with("- ") => style.paint("31", &d),
                        _ => d,
                    };
                    let _ = writeln!(out, "        {colored}");
                }
            }
        } else {
            let _ = writeln!(out, "{} {}: no changes", style.paint("2", "="), c.client);
        }
        for n in &c.notes {
            let _ = writeln!(out, "    note: {n}");
        }
    }
    for o in &plan.orphans {
        let _ = writeln!(
            out,
            "{} orphan: project {} ({}) has no client file; it is left alone (declare `state: deleted` to remove it)",
            style.sym('?'),
            o.name,
            o.project_ref
        );
    }
    let t = plan.totals();
    let _ = writeln!(
        out,
        "\nPlan: {} action{} for {} of {} client{}; {} client{} with errors.",
        t.actions,
        if t.actions == 1 { "" } else { "s" },
        t.with_changes,
        t.clients,
        if t.clients == 1 { "" } else { "s" },
        t.with_errors,
        if t.with_errors == 1 { "" } else { "s" },
    );
    if t.actions == 0 && t.with_errors == 0 {
        let _ = writeln!(out, "No changes. The fleet matches the configuration.");
    }
    out
}

/// For pull-request comments: a summary table, then one collapsed section per client that has
/// something to say. Clients without changes are listed on one line, so 200 clients stay readable.
pub fn markdown(plan: &Plan) -> String {
    let t = plan.totals();
    let mut out = String::new();
    let _ = writeln!(out, "### intelli plan\n");
    let _ = writeln!(out, "| clients | with changes | actions | with errors |");
    let _ = writeln!(out, "| ---: | ---: | ---: | ---: |");
    let _ = writeln!(
        out,
        "| {} | {} | {} | {} |\n",
        t.clients, t.with_changes, t.actions, t.with_errors
    );
    for c in plan
        .clients
        .iter()
        .filter(|c| !c.errors.is_empty() || c.has_changes())
    {
        let what = if c.errors.is_empty() {
            format!(
                "{} change{}",
                c.actions.len(),
                if c.actions.len() == 1 { "" } else { "s" }
            )
        } else {
            "**error**".to_string()
        };
        let _ = writeln!(
            out,
            "<details><summary><code>{}</code> — {what}</summary>\n",
            c.client
        );
        let _ = writeln!(out, "```diff");
        let _ = writeln!(out, "# {}", client_header(c));
        for e in &c.errors {
            let _ = writeln!(out, "! error: {e}");
        }
        for a in &c.actions {
            let (line, details) = action_lines(a);
            let sym = match a.symbol() {
                '>' => '!',
                s => s,
            };
            let _ = writeln!(out, "{sym} {line}");
            for d in details {
                let _ = writeln!(out, "    {d}");
            }
        }
        for n in &c.notes {
            let _ = writeln!(out, "# note: {n}");
        }
        let _ = writeln!(out, "```\n\n</details>\n");
    }
    let unchanged: Vec<&str> = plan
        .clients
        .iter()
        .filter(|c| c.errors.is_empty() && !c.has_changes())
        .map(|c| c.client.as_str())
        .collect();
    if !unchanged.is_empty() {
        let _ = writeln!(
            out,
            "No changes: {}\n",
            unchanged
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    for o in &plan.orphans {
        let _ = writeln!(
            out,
            "Orphan: `{}` ({}) has no client file and is left alone.\n",
            o.name, o.project_ref
        );
    }
    out
}

/// Stable, pretty JSON (field order is the struct order; clients are sorted by slug).
pub fn json(plan: &Plan) -> String {
    let mut s =
        serde_json::to_string_pretty(plan).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::ClientState;
    use crate::observe::OrphanProject;
    use crate::plan::model::{BucketSpec, ClientPlan, FORMAT_VERSION};

    /// A plan with one of each situation, built by hand so the snapshot is deterministic.
    fn sample() -> Plan {
        let bucket = |public| BucketSpec {
            name: "ticket-photos".into(),
            public,
            file_size_limit: Some(10 * 1024 * 1024),
            allowed_mime_types: vec!["image/png".into(), "image/jpeg".into()],
        };
        Plan {
            format_version: FORMAT_VERSION,
            intelli_version: "0.0.0-test".into(),
            desired_digest: "d".repeat(64),
            clients: vec![
                ClientPlan {
                    client: "acme".into(),
                    state: ClientState::Active,
                    project_name: "intelli-acme".into(),
                    project_ref: None,
                    actions: vec![
                        Action::CreateProject {
                            name: "intelli-acme".into(),
                            organization_slug: "org".into(),
                            region: "eu-west-2".into(),
                            instance_size: Some("small".into()),
                        },
                        Action::UpdateAuthConfig {
                            site_url: Change {
                                before: None,
                                after: "https://acme.example.io".into(),
                            },
                            redirect_urls: Change {
                                before: None,
                                after: vec!["https://acme.example.io/**".into()],
                            },
                        },
                        Action::CreateBucket { bucket: bucket(false) },
                        Action::ApplyMigrations {
                            versions: vec!["20250101090000".into(), "20250108120000".into()],
                        },
                        Action::ApplySeed {
                            path: "migrations/seed/client.sql".into(),
                            sha256: "ab".repeat(32),
                        },
                    ],
                    errors: vec![],
                    notes: vec![],
                },
                ClientPlan {
                    client: "globex".into(),
                    state: ClientState::Active,
                    project_name: "intelli-globex".into(),
                    project_ref: Some("abcdefghijklmnopqrst".into()),
                    actions: vec![
                        Action::UpdateBucket {
                            before: bucket(false),
                            after: bucket(true),
                        },
                        Action::UpdateAuthConfig {
                            site_url: Change {
                                before: Some("https://globex.example.io".into()),
                                after: "https://globex.example.io".into(),
                            },
                            redirect_urls: Change {
                                before: Some(vec!["https://globex.example.io/**".into(), "http://old/**".into()]),
                                after: vec!["https://globex.example.io/**".into(), "http://new/**".into()],
                            },
                        },
                    ],
                    errors: vec![],
                    notes: vec!["bucket `legacy` exists but is not in the fleet files; intelli leaves it alone".into()],
                },
                ClientPlan {
                    client: "hooli".into(),
                    state: ClientState::Active,
                    project_name: "intelli-hooli".into(),
                    project_ref: Some("bcdefghijklmnopqrstu".into()),
                    actions: vec![],
                    errors: vec!["migration 20250101090000 was applied, but migrations/x.sql has changed since".into()],
                    notes: vec![],
                },
                ClientPlan {
                    client: "initech".into(),
                    state: ClientState::Active,
                    project_name: "intelli-initech".into(),
                    project_ref: Some("cdefghijklmnopqrstuv".into()),
                    actions: vec![],
                    errors: vec![],
                    notes: vec![],
                },
            ],
            orphans: vec![OrphanProject {
                name: "intelli-oldco".into(),
                project_ref: "defghijklmnopqrstuvw".into(),
            }],
        }
    }

    #[test]
    fn markdown_snapshot() {
        insta::assert_snapshot!(markdown(&sample()));
    }

    #[test]
    fn text_snapshot() {
        insta::assert_snapshot!(text(&sample(), Style { color: false }));
    }

    #[test]
    fn json_matches_the_published_schema_and_round_trips() {
        let plan = sample();
        let value: serde_json::Value = serde_json::from_str(&json(&plan)).expect("json");
        let schema: serde_json::Value =
            serde_json::from_str(&crate::schema::render("plan").expect("schema"))
                .expect("schema json");
        let validator = jsonschema::validator_for(&schema).expect("valid schema");
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{errors:#?}");
        let back: Plan = serde_json::from_value(value).expect("round trip");
        assert_eq!(back, plan);
    }
}
