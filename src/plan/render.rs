//! Printing a plan for people (text, optionally coloured), for pull requests (markdown) and for
//! machines (JSON, see `schema/plan.schema.json`).

use std::fmt::Write as _;

use super::describe::{Description, describe};
use super::group::{self, Section, Template};
use super::model::{ActionKind, ClientPlan, Plan};
use crate::fleet::Gate;
use crate::fleet::rollout::Wave;

/// The renderings of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// For people, optionally coloured.
    Text,
    /// For machines (`schema/plan.schema.json`).
    Json,
    /// For pull-request comments.
    Markdown,
}

/// `plan` in `format`.
pub fn render(plan: &Plan, format: Format, style: Style) -> String {
    match format {
        Format::Text => text(plan, style),
        Format::Json => json(plan),
        Format::Markdown => markdown(plan),
    }
}

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

fn client_header(c: &ClientPlan) -> String {
    let project = match &c.project_ref {
        Some(r) => format!("{} ({r})", c.project_name),
        None => format!("{} (ref known after apply)", c.project_name),
    };
    format!("{}: {project}", c.client)
}

/// What a shard's plan says first (`--shard`, see `crate::shard`).
fn shard_header(shard: &str) -> String {
    format!(
        "Shard {shard} of the fleet: the clients whose slug hashes to it (placement over Cloudflare \
         accounts is the whole fleet's)."
    )
}

/// The human format: groups of clients alike apart from their own names and refs (see
/// [`super::group`]), then every other client with changes or errors in full, one line for
/// each client without changes, and a fleet total.
pub fn text(plan: &Plan, style: Style) -> String {
    let mut out = String::new();
    if let Some(shard) = &plan.shard {
        let _ = writeln!(out, "{}", shard_header(shard));
    }
    match &plan.rollout {
        None => text_clients(&mut out, &plan.clients, style),
        Some(waves) => {
            let _ = writeln!(out, "{}", rollout_header(waves));
            for (i, w) in waves.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "\n{}",
                    style.paint("1", &wave_title(i, waves.len(), w))
                );
                let clients = wave_clients(plan, w);
                if clients.is_empty() {
                    let _ = writeln!(out, "    (no client of this wave is selected)");
                }
                text_clients(&mut out, &clients, style);
            }
            let _ = writeln!(out);
        }
    }
    if !plan.checks.is_empty() {
        let _ = writeln!(out, "{CHECKS_HEADER}:");
        for c in &plan.checks {
            let _ = writeln!(out, "    {}", c.summary());
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

/// `clients` (a whole plan or a wave): the sections of those with changes or errors, then one
/// line for each without changes.
fn text_clients(out: &mut String, clients: &[ClientPlan], style: Style) {
    out.push_str(&text_sections(clients, style));
    for c in clients
        .iter()
        .filter(|c| c.errors.is_empty() && !c.has_changes())
    {
        let _ = writeln!(out, "{} {}: no changes", style.paint("2", "="), c.client);
        for n in &c.notes {
            let _ = writeln!(out, "    note: {n}");
        }
    }
}

/// What the plan says before its waves.
fn rollout_header(waves: &[Wave]) -> String {
    let rest = if waves.iter().any(|w| w.implicit) {
        format!(
            "; `{}` is the implicit last wave of the clients no wave selects",
            crate::fleet::rollout::REST
        )
    } else {
        String::new()
    };
    format!(
        "Rollout in {} wave{} (fleet.yaml `rollout:`): a wave starts once every client of the one \
         before converged and passed its health checks, or failed no more than its budget{rest}.",
        waves.len(),
        if waves.len() == 1 { "" } else { "s" },
    )
}

/// `Wave 2/3 early: 3 clients · max failures 1 · gate auto`.
fn wave_title(i: usize, n: usize, w: &Wave) -> String {
    let count = w.clients.len();
    let mut title = format!(
        "Wave {}/{n} {}{}: {count} client{} · max failures {} · gate {}",
        i + 1,
        w.name,
        if w.implicit { " (implicit)" } else { "" },
        if count == 1 { "" } else { "s" },
        w.max_failures,
        w.gate,
    );
    if let Some(p) = w.parallel {
        let _ = write!(title, " · parallel {p}");
    }
    if w.gate == Gate::Manual {
        let _ = write!(
            title,
            " (apply stops before it; continue with `intelli apply --through {}`)",
            w.name
        );
    }
    title
}

/// The clients of `w` in the plan, in slug order.
fn wave_clients(plan: &Plan, w: &Wave) -> Vec<ClientPlan> {
    plan.clients
        .iter()
        .filter(|c| w.clients.binary_search(&c.client).is_ok())
        .cloned()
        .collect()
}

const CHECKS_HEADER: &str = "Health checks apply runs on each client it changes (and on every client of a wave that gates a later one)";

/// The text sections of `clients` with changes or errors (a whole plan, or a part of it).
pub fn text_sections(clients: &[ClientPlan], style: Style) -> String {
    let mut out = String::new();
    for section in group::sections(clients) {
        match section {
            Section::Alike { template, clients } => {
                text_group(&mut out, &template, &clients, style)
            }
            Section::Single(c) => text_client(&mut out, c, style),
        }
    }
    out
}

fn text_action_lines(
    out: &mut String,
    sym: char,
    headline: &str,
    details: &[String],
    style: Style,
) {
    let _ = writeln!(out, "    {} {headline}", style.sym(sym));
    for d in details {
        let colored = match d.trim_start().chars().next() {
            Some('+') if d.trim_start().starts_with("+ ") => style.paint("32", d),
            Some('-') if d.trim_start().starts_with("- ") => style.paint("31", d),
            _ => d.clone(),
        };
        let _ = writeln!(out, "        {colored}");
    }
}

fn text_client(out: &mut String, c: &ClientPlan, style: Style) {
    if !c.errors.is_empty() {
        let _ = writeln!(out, "{} {}", style.sym('!'), client_header(c));
        for e in &c.errors {
            let _ = writeln!(out, "    error: {e}");
        }
    } else {
        let _ = writeln!(out, "{} {}", style.sym('~'), client_header(c));
        for a in &c.actions {
            let Description { headline, details } = describe(a);
            text_action_lines(out, a.symbol(), &headline, &details, style);
        }
    }
    for n in &c.notes {
        let _ = writeln!(out, "    note: {n}");
    }
}

fn text_group(out: &mut String, t: &Template, clients: &[&ClientPlan], style: Style) {
    let _ = writeln!(
        out,
        "{} {} clients: {}",
        style.sym('~'),
        clients.len(),
        t.summary()
    );
    // Slugs wrapped near 100 columns, so 1,000 of them stay a paragraph.
    let mut line = String::from("    clients:");
    for c in clients {
        if line.len() + c.client.len() + 2 > 100 {
            let _ = writeln!(out, "{line}");
            line = String::from("     ");
        }
        let _ = write!(line, " {}", c.client);
    }
    let _ = writeln!(out, "{line}");
    for a in &t.actions {
        text_action_lines(out, a.kind.kind().symbol(), &a.headline, &a.details, style);
    }
    for n in &t.notes {
        let _ = writeln!(out, "    note: {n}");
    }
    if let Some(note) = t.placeholder_note() {
        let _ = writeln!(out, "    ({note})");
    }
}

/// Slugs per collapsed list in a markdown group: a list is one unit when a comment is split
/// (`--comment-dir`), so it must stay far below a comment's size (400 slugs of 40 characters
/// are about 18 KB).
const SLUGS_PER_LIST: usize = 400;

/// For pull-request comments: a summary table, then groups of alike clients and one collapsed
/// section per other client that has something to say. Clients without changes are listed on
/// one line, so 200 clients stay readable.
pub fn markdown(plan: &Plan) -> String {
    markdown_blocks(plan).concat()
}

/// The markdown rendering as blocks that may each start a new comment when a plan is split
/// (`--comment-dir`): the header, then each section. No block leaves a code fence or a
/// `<details>` open.
pub fn markdown_blocks(plan: &Plan) -> Vec<String> {
    let t = plan.totals();
    let mut head = String::new();
    match &plan.shard {
        Some(shard) => {
            let _ = writeln!(head, "### intelli plan — shard {shard}\n");
            let _ = writeln!(head, "{}\n", shard_header(shard));
        }
        None => {
            let _ = writeln!(head, "### intelli plan\n");
        }
    }
    let _ = writeln!(head, "| clients | with changes | actions | with errors |");
    let _ = writeln!(head, "| ---: | ---: | ---: | ---: |");
    let _ = writeln!(
        head,
        "| {} | {} | {} | {} |\n",
        t.clients, t.with_changes, t.actions, t.with_errors
    );
    let mut blocks = vec![head];
    match &plan.rollout {
        None => blocks.extend(markdown_client_blocks(&plan.clients)),
        Some(waves) => {
            blocks.push(format!("{}\n\n", rollout_header(waves)));
            for (i, w) in waves.iter().enumerate() {
                let clients = wave_clients(plan, w);
                let mut title = format!("#### {}\n\n", wave_title(i, waves.len(), w));
                if clients.is_empty() {
                    title.push_str("No client of this wave is selected.\n\n");
                }
                blocks.push(title);
                blocks.extend(markdown_client_blocks(&clients));
            }
        }
    }
    if !plan.checks.is_empty() {
        let mut out = format!("{CHECKS_HEADER}:\n\n");
        for c in &plan.checks {
            let _ = writeln!(out, "- `{}`", c.summary());
        }
        out.push('\n');
        blocks.push(out);
    }
    for o in &plan.orphans {
        blocks.push(format!(
            "Orphan: `{}` ({}) has no client file and is left alone.\n\n",
            o.name, o.project_ref
        ));
    }
    blocks
}

/// `clients` (a whole plan or a wave): the blocks of those with changes or errors, then the
/// ones without changes on one line.
fn markdown_client_blocks(clients: &[ClientPlan]) -> Vec<String> {
    let mut blocks = markdown_section_blocks(clients);
    let unchanged: Vec<&str> = clients
        .iter()
        .filter(|c| c.errors.is_empty() && !c.has_changes())
        .map(|c| c.client.as_str())
        .collect();
    for chunk in unchanged.chunks(SLUGS_PER_LIST * 2) {
        blocks.push(format!(
            "No changes: {}\n\n",
            chunk
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    blocks
}

/// The markdown blocks of `clients` with changes or errors (a whole plan, or a part of it).
pub fn markdown_section_blocks(clients: &[ClientPlan]) -> Vec<String> {
    let mut blocks = Vec::new();
    for section in group::sections(clients) {
        match section {
            Section::Alike { template, clients } => {
                markdown_group(&mut blocks, &template, &clients)
            }
            Section::Single(c) => blocks.push(markdown_client(c)),
        }
    }
    blocks
}

/// `!` for what runs or waits: in a `diff` block it is highlighted like a change, `>` is not.
fn diff_symbol(k: ActionKind) -> char {
    match k {
        ActionKind::Run | ActionKind::Wait => '!',
        k @ (ActionKind::Create | ActionKind::Update | ActionKind::Delete) => k.symbol(),
    }
}

fn markdown_client(c: &ClientPlan) -> String {
    let mut out = String::new();
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
        let Description { headline, details } = describe(a);
        let _ = writeln!(out, "{} {headline}", diff_symbol(a.kind()));
        for d in details {
            let _ = writeln!(out, "    {d}");
        }
    }
    for n in &c.notes {
        let _ = writeln!(out, "# note: {n}");
    }
    let _ = writeln!(out, "```\n\n</details>\n");
    out
}

/// A group: its title and actions visible (the change the fleet gets), its slugs collapsed.
fn markdown_group(blocks: &mut Vec<String>, t: &Template, clients: &[&ClientPlan]) {
    let mut out = String::new();
    let _ = writeln!(out, "**{} clients**: {}\n", clients.len(), t.summary());
    let _ = writeln!(out, "```diff");
    for a in &t.actions {
        let _ = writeln!(out, "{} {}", diff_symbol(a.kind.kind()), a.headline);
        for d in &a.details {
            let _ = writeln!(out, "    {d}");
        }
    }
    for n in &t.notes {
        let _ = writeln!(out, "# note: {n}");
    }
    if let Some(note) = t.placeholder_note() {
        let _ = writeln!(out, "# {note}");
    }
    let _ = writeln!(out, "```\n");
    let chunks: Vec<&[&ClientPlan]> = clients.chunks(SLUGS_PER_LIST).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let which = if chunks.len() == 1 {
            format!("the {} clients", clients.len())
        } else {
            let first = i * SLUGS_PER_LIST + 1;
            format!(
                "clients {first}–{} of {}",
                first + chunk.len() - 1,
                clients.len()
            )
        };
        let _ = writeln!(out, "<details><summary>{which}</summary>\n");
        let slugs: Vec<String> = chunk.iter().map(|c| format!("`{}`", c.client)).collect();
        let _ = writeln!(out, "{}\n\n</details>\n", slugs.join(", "));
        blocks.push(std::mem::take(&mut out));
    }
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
    use crate::cloudflare::types::DomainStatus;
    use crate::fleet::ClientState;
    use crate::plan::model::{
        Action, BucketSpec, Change, ClientPlan, DnsRecordValue, FORMAT_VERSION, Orphan, Reason,
    };
    use crate::supabase::types::ProjectStatus;

    fn client(
        slug: &str,
        state: ClientState,
        project_ref: Option<&str>,
        actions: Vec<Action>,
    ) -> ClientPlan {
        ClientPlan::for_test(slug, state, project_ref, actions)
    }

    /// A plan with one of each situation and every action kind, built by hand so the snapshot
    /// is deterministic.
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
                            reason: Reason::Missing,
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
                            reason: Reason::Drifted,
                        },
                        Action::CreateBucket {
                            bucket: bucket(false),
                            reason: Reason::Missing,
                        },
                        Action::ApplyMigrations {
                            versions: vec!["20250101090000".into(), "20250108120000".into()],
                            reason: Reason::MigrationsPending,
                        },
                        Action::ApplySeed {
                            path: "migrations/seed/client.sql".into(),
                            sha256: "ab".repeat(32),
                            reason: Reason::SeedNotApplied,
                        },
                    ],
                    errors: vec![],
                    notes: vec![],
                    cloudflare_account: None,
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
                            reason: Reason::Drifted,
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
                            reason: Reason::Drifted,
                        },
                    ],
                    errors: vec![],
                    notes: vec!["bucket `legacy` exists but is not in the fleet files; intelli leaves it alone".into()],
                    cloudflare_account: None,
                },
                ClientPlan {
                    client: "hooli".into(),
                    state: ClientState::Active,
                    project_name: "intelli-hooli".into(),
                    project_ref: Some("bcdefghijklmnopqrstu".into()),
                    actions: vec![],
                    errors: vec!["migration 20250101090000 was applied, but migrations/x.sql has changed since".into()],
                    notes: vec![],
                    cloudflare_account: None,
                },
                ClientPlan {
                    client: "initech".into(),
                    state: ClientState::Active,
                    project_name: "intelli-initech".into(),
                    project_ref: Some("cdefghijklmnopqrstuv".into()),
                    actions: vec![],
                    errors: vec![],
                    notes: vec![],
                    cloudflare_account: None,
                },
                client("umbrella", ClientState::Active, None, vec![
                    Action::CreatePagesProject {
                        name: "intelli-umbrella".into(),
                        production_branch: "main".into(),
                        account_id: "0123456789abcdef0123456789abcdef".into(),
                        reason: Reason::Missing,
                    },
                    Action::Deploy {
                        project: "intelli-umbrella".into(),
                        fingerprint: None,
                        previous: None,
                        reason: Reason::ProjectBeingCreated,
                    },
                    Action::AddDomain {
                        project: "intelli-umbrella".into(),
                        domain: "umbrella.example.io".into(),
                        reason: Reason::Missing,
                    },
                    Action::UpsertDnsRecord {
                        name: "umbrella.example.io".into(),
                        target: None,
                        before: None,
                        reason: Reason::Missing,
                    },
                    Action::WaitForDomain {
                        domain: "umbrella.example.io".into(),
                        status: None,
                        reason: Reason::DomainNotActive,
                    },
                ]),
                client("vandelay", ClientState::Active, Some("efghijklmnopqrstuvwx"), vec![
                    Action::WaitUntilHealthy {
                        status: ProjectStatus::ComingUp,
                        reason: Reason::ProjectNotReady,
                    },
                    Action::UpdatePagesProject {
                        name: "intelli-vandelay".into(),
                        production_branch: Change {
                            before: Some("develop".into()),
                            after: "main".into(),
                        },
                        reason: Reason::Drifted,
                    },
                    Action::Deploy {
                        project: "intelli-vandelay".into(),
                        fingerprint: Some("f".repeat(40)),
                        previous: None,
                        reason: Reason::BuildValuesChanged,
                    },
                    Action::UpsertDnsRecord {
                        name: "vandelay.example.io".into(),
                        target: Some("intelli-vandelay.pages.dev".into()),
                        before: Some(DnsRecordValue {
                            record_type: "A".into(),
                            content: "192.0.2.1".into(),
                            proxied: false,
                        }),
                        reason: Reason::TakeOver,
                    },
                    Action::WaitForDomain {
                        domain: "vandelay.example.io".into(),
                        status: Some(DomainStatus::Pending),
                        reason: Reason::DomainNotActive,
                    },
                ]),
                client("vought", ClientState::Active, Some("fedcbazyxwvutsrqponm"), vec![
                    Action::RollbackDeployment {
                        project: "intelli-vought".into(),
                        deployment_id: "0b5a3e2c-1f0d-4c1e-9a7b-3f2e1d0c9b8a".into(),
                        fingerprint: "e".repeat(40),
                        reason: Reason::FrontendSourcesChanged,
                    },
                ]),
                client("wonka", ClientState::Active, Some("fghijklmnopqrstuvwxy"), vec![
                    Action::RestoreProject { reason: Reason::DeclaredActive },
                ]),
                client("xanadu", ClientState::Paused, Some("ghijklmnopqrstuvwxyz"), vec![
                    Action::PauseProject { reason: Reason::DeclaredPaused },
                ]),
                client("yoyodyne", ClientState::Deleted, Some("hijklmnopqrstuvwxyza"), vec![
                    Action::DeleteProject {
                        project_ref: "hijklmnopqrstuvwxyza".into(),
                        reason: Reason::DeclaredDeleted,
                    },
                    Action::DeleteSite {
                        project: "intelli-yoyodyne".into(),
                        dns_record: Some("yoyodyne.example.io".into()),
                        reason: Reason::DeclaredDeleted,
                    },
                ]),
                ClientPlan {
                    notes: vec!["legacy API keys stay on (legacy_keys: disable) until the project has a publishable key and the site serves a build made with it".into()],
                    ..client("zenith", ClientState::Active, Some("ijklmnopqrstuvwxyzab"), vec![
                        Action::CreateApiKey {
                            key_type: crate::supabase::NewKeyKind::Publishable,
                            name: "intelli_publishable".into(),
                            reason: Reason::Missing,
                        },
                        Action::CreateApiKey {
                            key_type: crate::supabase::NewKeyKind::Secret,
                            name: "intelli_secret".into(),
                            reason: Reason::Missing,
                        },
                        Action::Deploy {
                            project: "intelli-zenith".into(),
                            fingerprint: None,
                            previous: None,
                            reason: Reason::BuildValuesChanged,
                        },
                    ])
                },
                client("zork", ClientState::Active, Some("jklmnopqrstuvwxyzabc"), vec![
                    Action::DisableLegacyKeys { reason: Reason::Drifted },
                ]),
                // Imported: set up by hand, seed present, a hand-made CNAME to the site.
                client("zulu", ClientState::Active, Some("klmnopqrstuvwxyzabcd"), vec![
                    Action::RecordSeed {
                        path: "migrations/seed/client.sql".into(),
                        sha256: "ab".repeat(32),
                        reason: Reason::SeedPresent,
                    },
                    Action::Deploy {
                        project: "zulu-portal".into(),
                        fingerprint: Some("e".repeat(40)),
                        previous: None,
                        reason: Reason::NoFingerprint,
                    },
                    Action::AdoptDnsRecord {
                        name: "zulu.example.io".into(),
                        target: "zulu-portal.pages.dev".into(),
                        proxied: false,
                        reason: Reason::PointsAtSite,
                    },
                ]),
            ],
            orphans: vec![Orphan {
                name: "intelli-oldco".into(),
                project_ref: "defghijklmnopqrstuvw".into(),
            }],
            shard: None,
            rollout: None,
            checks: vec![],
        }
    }

    #[test]
    fn the_sample_has_every_action_kind() {
        let sample = sample();
        let (kinds, _) =
            crate::plan::coverage::missing(sample.clients.iter().flat_map(|c| &c.actions));
        assert!(kinds.is_empty(), "the snapshot sample lacks {kinds:?}");
    }

    /// A fleet-wide rollout: a migration and a new frontend for four clients (their own
    /// names, refs, domains and fingerprints differ), one client also behind on its seed.
    fn rollout() -> Plan {
        let slugs = ["acme", "globex", "hooli", "initech", "umbrella"];
        let clients = slugs
            .iter()
            .enumerate()
            .map(|(i, slug)| {
                let mut actions = vec![
                    Action::ApplyMigrations {
                        versions: vec!["20260101000000".into()],
                        reason: Reason::MigrationsPending,
                    },
                    Action::Deploy {
                        project: format!("intelli-{slug}"),
                        fingerprint: Some(format!("{i}").repeat(40)),
                        previous: None,
                        reason: Reason::FrontendSourcesChanged,
                    },
                ];
                if *slug == "hooli" {
                    actions.push(Action::ApplySeed {
                        path: "migrations/seed/client.sql".into(),
                        sha256: "ab".repeat(32),
                        reason: Reason::SeedNotApplied,
                    });
                }
                client(
                    slug,
                    ClientState::Active,
                    Some(&format!("{slug}{i}").repeat(3)),
                    actions,
                )
            })
            .collect();
        Plan {
            clients,
            orphans: vec![],
            ..sample()
        }
    }

    #[test]
    fn a_rollout_reads_as_one_change_in_text_and_markdown() {
        insta::assert_snapshot!("rollout_text", text(&rollout(), Style { color: false }));
        insta::assert_snapshot!("rollout_markdown", markdown(&rollout()));
        let md = markdown(&rollout());
        assert!(md.contains("**4 clients**: apply 1 migration `20260101000000`; build and deploy"));
        assert_eq!(
            md.matches("<details>").count(),
            md.matches("</details>").count()
        );
    }

    /// The rollout of [`rollout`] in waves: a canary, an early wave with a budget and a
    /// manual gate, the implicit `rest`; and the fleet's checks.
    fn in_waves() -> Plan {
        use crate::fleet::model::{CheckSpec, HttpCheck, SqlCheck};
        use crate::fleet::rollout::{Budget, Wave};
        let wave = |name: &str, clients: &[&str], max_failures, gate, implicit| Wave {
            name: name.into(),
            clients: clients.iter().map(|c| c.to_string()).collect(),
            parallel: None,
            max_failures,
            gate,
            implicit,
        };
        let mut plan = rollout();
        plan.rollout = Some(vec![
            wave("canary", &["hooli"], Budget::Count(0), Gate::Auto, false),
            Wave {
                parallel: Some(2),
                ..wave(
                    "early",
                    &["acme", "globex", "initech"],
                    Budget::Percent(34),
                    Gate::Manual,
                    false,
                )
            },
            wave("rest", &["umbrella"], Budget::Count(0), Gate::Auto, true),
        ]);
        plan.checks = vec![
            CheckSpec {
                name: "home".into(),
                http: Some(HttpCheck {
                    path: "/".into(),
                    status: 200,
                    body_contains: Some("<div id=\"root\">".into()),
                    timeout_secs: 10,
                }),
                sql: None,
            },
            CheckSpec {
                name: "rls".into(),
                http: None,
                sql: Some(SqlCheck {
                    query:
                        "select bool_and(rowsecurity)\n  from pg_tables where schemaname = 'public'"
                            .into(),
                }),
            },
        ];
        plan
    }

    #[test]
    fn waves_group_the_plan_in_order_with_budgets_gates_and_checks() {
        let text = text(&in_waves(), Style { color: false });
        insta::assert_snapshot!("waves_text", text);
        let md = markdown(&in_waves());
        insta::assert_snapshot!("waves_markdown", md);
        for out in [&text, &md] {
            let canary = out.find("Wave 1/3 canary: 1 client").expect("canary first");
            let early = out.find("Wave 2/3 early: 3 clients").expect("early second");
            let rest = out
                .find("Wave 3/3 rest (implicit): 1 client")
                .expect("rest last");
            assert!(canary < early && early < rest, "{out}");
            // Each client is printed in its wave only.
            assert!(
                out[canary..early].contains("hooli") && !out[canary..early].contains("umbrella")
            );
            assert!(out[rest..].contains("umbrella") && !out[rest..].contains("globex"));
            assert!(out.contains("max failures 34% · gate manual · parallel 2"));
            assert!(out.contains("intelli apply --through early"));
            assert!(out.contains(
                "rls: SQL (read-only) returns true: select bool_and(rowsecurity) from pg_tables"
            ));
        }
        let plan = in_waves();
        let value: serde_json::Value = serde_json::from_str(&json(&plan)).expect("json");
        assert_eq!(
            value["rollout"][1]["max_failures"],
            serde_json::json!({"percent": 34})
        );
        assert_eq!(value["rollout"][1]["gate"], "manual");
        assert_eq!(value["rollout"][2]["implicit"], true);
        assert_eq!(value["checks"][1]["name"], "rls");
        // Without `rollout:` nothing changes: no wave is printed.
        assert!(!super::text(&rollout(), Style { color: false }).contains("Wave "));
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
        for plan in [sample(), in_waves()] {
            json_round_trip(plan);
        }
    }

    fn json_round_trip(plan: Plan) {
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
