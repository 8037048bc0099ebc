//! Grouping clients whose plans are the same apart from their own names and refs, so a
//! fleet-wide rollout (one migration for 1,000 clients) reads as one change instead of 1,000
//! identical sections. Text and markdown use it; JSON stays per client.
//!
//! # What "the same apart from their own names and refs" means
//!
//! Two clients with changes and no errors are grouped when the lines their plan section would
//! print — every action's symbol, headline and detail lines (from [`describe`]) and every
//! note — are equal after each of the client's **own identifiers** is replaced by a
//! placeholder. The identifiers, and their placeholders, are exactly:
//!
//! | placeholder | the client's own … | taken from |
//! | --- | --- | --- |
//! | `{client}` | slug | `ClientPlan::client` |
//! | `{project}` | Supabase project name | `ClientPlan::project_name`, `CreateProject.name` |
//! | `{ref}` | Supabase project ref | `ClientPlan::project_ref`, `DeleteProject.project_ref` |
//! | `{site}` | Pages project name | `project`/`name` of the site actions |
//! | `{domain}` | custom domain / DNS record name | `AddDomain.domain`, `WaitForDomain.domain`, `UpsertDnsRecord.name`, `DeleteSite.dns_record` |
//! | `{target}` | Pages subdomain the CNAME points at | `UpsertDnsRecord.target` |
//! | `{fingerprint}` | build fingerprint (it hashes the client's build values) | `Deploy.fingerprint`, `RollbackDeployment.fingerprint` |
//! | `{deployment}` | Pages deployment id | `RollbackDeployment.deployment_id` |
//!
//! A value is replaced only where it stands as a whole token: the characters on either side
//! are not ASCII letters, digits, `-` or `_` (so the slug `acme` is replaced in
//! `https://acme.example.io` but not in `acme-eu.example.io`). Longer values are replaced
//! first, so a target `intelli-acme.pages.dev` becomes `{target}`, not `{project}.pages.dev`;
//! when two kinds share a value (a Pages project named like the Supabase project) the earlier
//! row of the table wins. Anything else — regions, sizes, organizations, Cloudflare accounts,
//! branches, bucket settings, migration versions, seed digests, reasons, URLs that do not
//! contain an identifier as a token, notes — must be equal. The rule errs on the side of
//! keeping clients apart: a difference it does not recognise as a name or ref shows the
//! clients separately, never hides a difference. Because the comparison is on the printed
//! lines, a group section shows exactly what each member's own section would have shown, with
//! placeholders for the identifiers.
//!
//! Clients with errors are never grouped, and clients without changes are listed as before
//! (by the renderers).

use std::collections::BTreeMap;

use super::describe::{Description, describe};
use super::model::{Action, ActionKind, ClientPlan};

/// One printed line of a client's section, with identifiers replaced by placeholders.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TemplateAction {
    pub kind: ActionKindKey,
    pub headline: String,
    pub details: Vec<String>,
}

/// [`ActionKind`] as an orderable key (the renderers pick the symbol from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ActionKindKey {
    Create,
    Update,
    Delete,
    Run,
    Wait,
}

impl ActionKindKey {
    fn of(k: ActionKind) -> Self {
        match k {
            ActionKind::Create => ActionKindKey::Create,
            ActionKind::Update => ActionKindKey::Update,
            ActionKind::Delete => ActionKindKey::Delete,
            ActionKind::Run => ActionKindKey::Run,
            ActionKind::Wait => ActionKindKey::Wait,
        }
    }

    pub fn kind(self) -> ActionKind {
        match self {
            ActionKindKey::Create => ActionKind::Create,
            ActionKindKey::Update => ActionKind::Update,
            ActionKindKey::Delete => ActionKind::Delete,
            ActionKindKey::Run => ActionKind::Run,
            ActionKindKey::Wait => ActionKind::Wait,
        }
    }
}

/// A client's section with its own identifiers replaced: the grouping key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Template {
    pub actions: Vec<TemplateAction>,
    pub notes: Vec<String>,
}

impl Template {
    /// The placeholders its lines use, in [`PLACEHOLDERS`] order (the renderers say what they
    /// stand for).
    pub fn placeholders(&self) -> Vec<&'static str> {
        let lines: Vec<&String> = self
            .actions
            .iter()
            .flat_map(|a| std::iter::once(&a.headline).chain(&a.details))
            .chain(&self.notes)
            .collect();
        PLACEHOLDERS
            .into_iter()
            .filter(|p| lines.iter().any(|l| l.contains(p)))
            .collect()
    }

    /// A sentence saying what the placeholders stand for, when there are any.
    pub fn placeholder_note(&self) -> Option<String> {
        let used = self.placeholders();
        let (last, rest) = used.split_last()?;
        let names = if rest.is_empty() {
            format!("{last} stands")
        } else {
            format!("{} and {last} stand", rest.join(", "))
        };
        Some(format!("{names} for each client's own"))
    }

    /// A one-line summary for a group's title: the headlines joined by `; `, a migration
    /// headline followed by its versions (up to three, in backticks).
    pub fn summary(&self) -> String {
        self.actions
            .iter()
            .map(|a| {
                let is_migration =
                    a.headline.starts_with("apply ") && a.headline.contains("migration");
                if is_migration && !a.details.is_empty() && a.details.len() <= 3 {
                    let versions: Vec<String> =
                        a.details.iter().map(|v| format!("`{v}`")).collect();
                    format!("{} {}", a.headline, versions.join(", "))
                } else {
                    a.headline.clone()
                }
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Every placeholder [`template`] may write.
pub const PLACEHOLDERS: [&str; 8] = [
    "{client}",
    "{project}",
    "{ref}",
    "{site}",
    "{domain}",
    "{target}",
    "{fingerprint}",
    "{deployment}",
];

/// A part of a rendered plan: several clients shown once, or one client on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Section<'a> {
    /// Two or more clients whose sections are the same apart from their own identifiers.
    Alike {
        template: Template,
        /// In slug order.
        clients: Vec<&'a ClientPlan>,
    },
    /// A client with changes or errors that is like no other.
    Single(&'a ClientPlan),
}

/// The sections for `clients` (those with changes or errors; the others are left to the
/// caller): groups first, largest first (ties by first slug), then the clients that differ,
/// in the order given. Takes a slice so a caller can group within a part of the plan (a wave).
pub fn sections(clients: &[ClientPlan]) -> Vec<Section<'_>> {
    let mut by_template: BTreeMap<Template, Vec<&ClientPlan>> = BTreeMap::new();
    let mut order: Vec<Template> = Vec::new();
    let mut with_errors: Vec<&ClientPlan> = Vec::new();
    for c in clients {
        if !c.errors.is_empty() {
            with_errors.push(c);
        } else if c.has_changes() {
            let t = template(c);
            let members = by_template.entry(t.clone()).or_default();
            if members.is_empty() {
                order.push(t);
            }
            members.push(c);
        }
    }
    let mut groups: Vec<Section<'_>> = Vec::new();
    let mut singles: Vec<&ClientPlan> = with_errors;
    for t in order {
        let mut members = by_template.remove(&t).unwrap_or_default();
        if members.len() >= 2 {
            members.sort_by(|a, b| a.client.cmp(&b.client));
            groups.push(Section::Alike {
                template: t,
                clients: members,
            });
        } else {
            singles.extend(members);
        }
    }
    groups.sort_by(|a, b| size_then_slug(a).cmp(&size_then_slug(b)));
    // Singles keep the plan's order (by slug): position in the input.
    let position = |c: &ClientPlan| clients.iter().position(|x| std::ptr::eq(x, c));
    singles.sort_by_key(|c| position(c));
    groups
        .into_iter()
        .chain(singles.into_iter().map(Section::Single))
        .collect()
}

fn size_then_slug<'a>(s: &Section<'a>) -> (std::cmp::Reverse<usize>, &'a str) {
    match s {
        Section::Alike { clients, .. } => (
            std::cmp::Reverse(clients.len()),
            clients.first().map(|c| c.client.as_str()).unwrap_or(""),
        ),
        Section::Single(c) => (std::cmp::Reverse(1), c.client.as_str()),
    }
}

/// The client's own identifiers, in the table's order (earlier rows win a shared value).
fn identifiers(c: &ClientPlan) -> Vec<(&str, &'static str)> {
    let mut ids: Vec<(&str, &'static str)> =
        vec![(&c.client, "{client}"), (&c.project_name, "{project}")];
    if let Some(r) = &c.project_ref {
        ids.push((r, "{ref}"));
    }
    for a in &c.actions {
        match a {
            Action::CreateProject { name, .. } => ids.push((name, "{project}")),
            Action::DeleteProject { project_ref, .. } => ids.push((project_ref, "{ref}")),
            Action::CreatePagesProject { name, .. } | Action::UpdatePagesProject { name, .. } => {
                ids.push((name, "{site}"))
            }
            Action::Deploy {
                project,
                fingerprint,
                ..
            } => {
                ids.push((project, "{site}"));
                if let Some(f) = fingerprint {
                    ids.push((f, "{fingerprint}"));
                }
            }
            Action::RollbackDeployment {
                project,
                deployment_id,
                fingerprint,
                ..
            } => {
                ids.push((project, "{site}"));
                ids.push((fingerprint, "{fingerprint}"));
                ids.push((deployment_id, "{deployment}"));
            }
            Action::AddDomain {
                project, domain, ..
            } => {
                ids.push((project, "{site}"));
                ids.push((domain, "{domain}"));
            }
            Action::UpsertDnsRecord { name, target, .. } => {
                ids.push((name, "{domain}"));
                if let Some(t) = target {
                    ids.push((t, "{target}"));
                }
            }
            Action::AdoptDnsRecord { name, target, .. } => {
                ids.push((name, "{domain}"));
                ids.push((target, "{target}"));
            }
            Action::DeleteSite {
                project,
                dns_record,
                ..
            } => {
                ids.push((project, "{site}"));
                if let Some(d) = dns_record {
                    ids.push((d, "{domain}"));
                }
            }
            Action::WaitForDomain { domain, .. } => ids.push((domain, "{domain}")),
            Action::WaitUntilHealthy { .. }
            | Action::RestoreProject { .. }
            | Action::PauseProject { .. }
            | Action::UpdateAuthConfig { .. }
            | Action::CreateBucket { .. }
            | Action::UpdateBucket { .. }
            | Action::ApplyMigrations { .. }
            | Action::ApplySeed { .. }
            | Action::RecordSeed { .. }
            | Action::CreateApiKey { .. }
            | Action::DisableLegacyKeys { .. } => {}
        }
    }
    // An empty value would match everywhere; the first kind named for a value wins.
    let mut seen = std::collections::HashSet::new();
    ids.retain(|(v, _)| !v.is_empty() && seen.insert(*v));
    // Longest first, so a value containing another is replaced whole; stable for equal lengths.
    ids.sort_by_key(|(v, _)| std::cmp::Reverse(v.len()));
    ids
}

/// `c`'s section with its own identifiers replaced: see the module documentation.
pub fn template(c: &ClientPlan) -> Template {
    let ids = identifiers(c);
    let sub = |s: &str| replace_identifiers(s, &ids);
    Template {
        actions: c
            .actions
            .iter()
            .map(|a| {
                let Description { headline, details } = describe(a);
                TemplateAction {
                    kind: ActionKindKey::of(a.kind()),
                    headline: sub(&headline),
                    details: details.iter().map(|d| sub(d)).collect(),
                }
            })
            .collect(),
        notes: c.notes.iter().map(|n| sub(n)).collect(),
    }
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// `s` with every whole-token occurrence of each identifier replaced by its placeholder, in
/// the order given (longest first). Placeholders contain `{`, which no identifier does, so a
/// replacement is never matched again.
fn replace_identifiers(s: &str, ids: &[(&str, &'static str)]) -> String {
    let mut out = s.to_string();
    for (value, placeholder) in ids {
        out = replace_tokens(&out, value, placeholder);
    }
    out
}

fn replace_tokens(s: &str, value: &str, placeholder: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    let mut prev: Option<char> = None;
    while let Some(at) = rest.find(value) {
        let before = rest[..at].chars().next_back().or(prev);
        let after = rest[at + value.len()..].chars().next();
        let whole = !before.is_some_and(is_token_char) && !after.is_some_and(is_token_char);
        if whole {
            out.push_str(&rest[..at]);
            out.push_str(placeholder);
            prev = placeholder.chars().next_back();
            rest = &rest[at + value.len()..];
        } else {
            // Keep one character and look again after it.
            let step = at + rest[at..].chars().next().map_or(1, char::len_utf8);
            out.push_str(&rest[..step]);
            prev = rest[..step].chars().next_back();
            rest = &rest[step..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::ClientState;
    use crate::plan::model::{Change, Reason};

    fn client(slug: &str, project_ref: Option<&str>, actions: Vec<Action>) -> ClientPlan {
        ClientPlan::for_test(slug, ClientState::Active, project_ref, actions)
    }

    fn migrate(v: &str) -> Action {
        Action::ApplyMigrations {
            versions: vec![v.into()],
            reason: Reason::MigrationsPending,
        }
    }

    fn deploy(slug: &str, fingerprint: &str) -> Action {
        Action::Deploy {
            project: format!("intelli-{slug}"),
            fingerprint: Some(fingerprint.into()),
            previous: None,
            reason: Reason::FrontendSourcesChanged,
        }
    }

    fn slugs(s: &Section<'_>) -> Vec<String> {
        match s {
            Section::Alike { clients, .. } => clients.iter().map(|c| c.client.clone()).collect(),
            Section::Single(c) => vec![format!("single:{}", c.client)],
        }
    }

    #[test]
    fn a_migration_for_all_is_one_group_and_the_different_stand_alone() {
        let mut clients: Vec<ClientPlan> = ["a", "b", "c", "d"]
            .iter()
            .map(|s| {
                client(
                    s,
                    Some(&format!("ref{s}ref{s}")),
                    vec![migrate("20260101000000")],
                )
            })
            .collect();
        clients.push(client("e", Some("refe"), vec![migrate("20260202000000")]));
        let mut broken = client("f", Some("reff"), vec![migrate("20260101000000")]);
        broken.errors.push("bad".into());
        clients.push(broken);
        clients.push(client("g", Some("refg"), vec![]));
        let got: Vec<Vec<String>> = sections(&clients).iter().map(slugs).collect();
        assert_eq!(
            got,
            vec![
                vec!["a".to_string(), "b".into(), "c".into(), "d".into()],
                vec!["single:e".to_string()],
                vec!["single:f".to_string()],
            ]
        );
        let Section::Alike { template, .. } = &sections(&clients)[0] else {
            panic!("a group first");
        };
        assert_eq!(template.summary(), "apply 1 migration `20260101000000`");
        assert_eq!(template.placeholder_note(), None);
    }

    #[test]
    fn own_names_refs_and_fingerprints_do_not_separate_clients() {
        let a = client(
            "acme",
            Some("aaaaaaaaaaaaaaaaaaaa"),
            vec![
                deploy("acme", &"1".repeat(40)),
                Action::WaitForDomain {
                    domain: "acme.example.io".into(),
                    status: None,
                    reason: Reason::DomainNotActive,
                },
            ],
        );
        let b = client(
            "globex",
            Some("bbbbbbbbbbbbbbbbbbbb"),
            vec![
                deploy("globex", &"2".repeat(40)),
                Action::WaitForDomain {
                    domain: "shop.globex.com".into(),
                    status: None,
                    reason: Reason::DomainNotActive,
                },
            ],
        );
        assert_eq!(template(&a), template(&b));
        let t = template(&a);
        assert_eq!(
            t.actions[0].headline,
            "build and deploy the site to {project}"
        );
        assert_eq!(t.actions[0].details[1], "fingerprint: {fingerprint}");
        assert_eq!(
            t.actions[1].headline,
            "wait until {domain} is active and check the site"
        );
        assert_eq!(
            t.placeholder_note().as_deref(),
            Some("{project}, {domain} and {fingerprint} stand for each client's own")
        );
    }

    #[test]
    fn a_fleet_wide_revert_is_one_group() {
        // Each client rolls back to its own deployment with its own fingerprint.
        let rollback = |slug: &str, id: &str, fingerprint: &str| Action::RollbackDeployment {
            project: format!("intelli-{slug}"),
            deployment_id: id.into(),
            fingerprint: fingerprint.into(),
            reason: Reason::FrontendSourcesChanged,
        };
        let plans = [
            client(
                "acme",
                Some("aaaaaaaaaaaaaaaaaaaa"),
                vec![rollback(
                    "acme",
                    "0b5a3e2c-1f0d-4c1e-9a7b-3f2e1d0c9b8a",
                    &"1".repeat(40),
                )],
            ),
            client(
                "globex",
                Some("bbbbbbbbbbbbbbbbbbbb"),
                vec![rollback(
                    "globex",
                    "7c6d5e4f-3a2b-4c1d-8e9f-0a1b2c3d4e5f",
                    &"2".repeat(40),
                )],
            ),
        ];
        let t = template(&plans[0]);
        assert_eq!(t, template(&plans[1]));
        assert_eq!(
            t.actions[0].headline,
            "roll back {project} to deployment {deployment}"
        );
        assert_eq!(sections(&plans).len(), 1);
        // A different reason is a real difference.
        let mut values = plans[1].clone();
        values.actions[0] = rollback(
            "globex",
            "7c6d5e4f-3a2b-4c1d-8e9f-0a1b2c3d4e5f",
            &"2".repeat(40),
        );
        if let Action::RollbackDeployment { reason, .. } = &mut values.actions[0] {
            *reason = Reason::BuildValuesChanged;
        }
        assert_ne!(t, template(&values));
    }

    #[test]
    fn anything_else_that_differs_keeps_clients_apart() {
        let auth = |slug: &str, extra: &str| {
            client(
                slug,
                Some("r"),
                vec![Action::UpdateAuthConfig {
                    site_url: Change {
                        before: None,
                        after: format!("https://{slug}.example.io"),
                    },
                    redirect_urls: Change {
                        before: None,
                        after: vec![format!("https://{slug}.example.io/{extra}")],
                    },
                    reason: Reason::Drifted,
                }],
            )
        };
        // The slug as a token in a URL is the client's own name …
        assert_eq!(
            template(&auth("acme", "**")),
            template(&auth("globex", "**"))
        );
        // … but a different path, a different reason, or a note are real differences.
        assert_ne!(
            template(&auth("acme", "**")),
            template(&auth("globex", "app/**"))
        );
        let mut noted = auth("globex", "**");
        noted.notes.push("bucket `x` is not managed".into());
        assert_ne!(template(&auth("acme", "**")), template(&noted));
        let reason = |r| {
            client(
                "a",
                None,
                vec![Action::Deploy {
                    project: "intelli-a".into(),
                    fingerprint: None,
                    previous: None,
                    reason: r,
                }],
            )
        };
        assert_ne!(
            template(&reason(Reason::BuildValuesChanged)),
            template(&reason(Reason::FrontendSourcesChanged))
        );
        // A region is not a name.
        let create = |slug: &str, region: &str| {
            client(
                slug,
                None,
                vec![Action::CreateProject {
                    name: format!("intelli-{slug}"),
                    organization_slug: "org".into(),
                    region: region.into(),
                    instance_size: None,
                    reason: Reason::Missing,
                }],
            )
        };
        assert_eq!(
            template(&create("a", "eu-west-2")),
            template(&create("b", "eu-west-2"))
        );
        assert_ne!(
            template(&create("a", "eu-west-2")),
            template(&create("b", "us-east-1"))
        );
    }

    #[test]
    fn identifiers_are_replaced_only_as_whole_tokens_longest_first() {
        let ids = [
            ("intelli-acme.pages.dev", "{target}"),
            ("intelli-acme", "{project}"),
            ("acme", "{client}"),
        ];
        let r = |s: &str| replace_identifiers(s, &ids);
        assert_eq!(r("CNAME → intelli-acme.pages.dev"), "CNAME → {target}");
        assert_eq!(
            r("https://acme.example.io/**"),
            "https://{client}.example.io/**"
        );
        assert_eq!(
            r("acme-eu.example.io acmecorp acme_x xacme"),
            "acme-eu.example.io acmecorp acme_x xacme"
        );
        assert_eq!(r("acme acme,acme"), "{client} {client},{client}");
        assert_eq!(r("é acme é"), "é {client} é");
    }

    #[test]
    fn groups_come_largest_first_then_singles_in_plan_order() {
        let clients: Vec<ClientPlan> = vec![
            client("a", None, vec![migrate("2")]),
            client("b", None, vec![migrate("1")]),
            client("c", None, vec![migrate("2")]),
            client("d", None, vec![migrate("1")]),
            client("e", None, vec![migrate("1")]),
            client("f", None, vec![migrate("3")]),
        ];
        let got: Vec<Vec<String>> = sections(&clients).iter().map(slugs).collect();
        assert_eq!(
            got,
            vec![
                vec!["b".to_string(), "d".into(), "e".into()],
                vec!["a".to_string(), "c".into()],
                vec!["single:f".to_string()],
            ]
        );
    }
}
