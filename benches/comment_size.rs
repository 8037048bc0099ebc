//! Figures: where a markdown plan comment splits (issue 12). Not a timing: sizes.
//!
//! For three typical plans — onboarding new clients (project, auth, two buckets, eight
//! migrations, seed, Pages project, deploy, domain, DNS, wait), a fleet-wide migration (one
//! version for every client) and a frontend rollout (a redeploy of every site) — it renders the
//! markdown plan of N clients twice: as `intelli plan` does (clients alike apart from their own
//! names and refs grouped, `plan::group`) and with every client in its own section (as without
//! grouping, or when every client differs), cuts it with `plan::comment::split` at the default
//! limit, and prints the largest N that is still one comment, the bytes per client, and the
//! parts for 1,000 clients. Slugs are 12 characters (`client-00001`).
//!
//! Run with `cargo bench --bench comment_size` (no PostgreSQL, no simulator, a second or two).
//! Without `--bench` (as under `cargo test`) it prints how to run it and exits.

use intelli::fleet::ClientState;
use intelli::plan::comment::{DEFAULT_MAX_COMMENT_BYTES, split};
use intelli::plan::render::{markdown_blocks, markdown_section_blocks};
use intelli::plan::{Action, BucketSpec, Change, ClientPlan, FORMAT_VERSION, Plan, Reason};

#[derive(Clone, Copy)]
enum Case {
    Onboarding,
    Migration,
    Frontend,
}

impl Case {
    fn name(self) -> &'static str {
        match self {
            Case::Onboarding => "onboarding (11 actions each)",
            Case::Migration => "one migration for every client",
            Case::Frontend => "redeploy of every site",
        }
    }
}

fn slug(i: usize) -> String {
    format!("client-{i:05}")
}

fn client(case: Case, i: usize) -> ClientPlan {
    let s = slug(i);
    let project = format!("intelli-{s}");
    let domain = format!("{s}.intelliservice.io");
    let bucket = |name: &str, mb: u64, types: &[&str]| BucketSpec {
        name: name.into(),
        public: false,
        file_size_limit: Some(mb * 1024 * 1024),
        allowed_mime_types: types.iter().map(|t| t.to_string()).collect(),
    };
    let (project_ref, actions) = match case {
        Case::Onboarding => (
            None,
            vec![
                Action::CreateProject {
                    name: project.clone(),
                    organization_slug: "intelliservice".into(),
                    region: "eu-west-2".into(),
                    instance_size: Some("micro".into()),
                    reason: Reason::Missing,
                },
                Action::UpdateAuthConfig {
                    site_url: Change {
                        before: None,
                        after: format!("https://{domain}"),
                    },
                    redirect_urls: Change {
                        before: None,
                        after: vec![
                            format!("https://{domain}/**"),
                            "http://localhost:5173/**".into(),
                        ],
                    },
                    reason: Reason::Drifted,
                },
                Action::CreateBucket {
                    bucket: bucket(
                        "ticket-photos",
                        10,
                        &["image/jpeg", "image/png", "image/webp", "image/heic"],
                    ),
                    reason: Reason::Missing,
                },
                Action::CreateBucket {
                    bucket: bucket("estimate-documents", 25, &["application/pdf"]),
                    reason: Reason::Missing,
                },
                Action::ApplyMigrations {
                    versions: (0..8).map(|m| format!("2025010{}090000", m + 1)).collect(),
                    reason: Reason::MigrationsPending,
                },
                Action::ApplySeed {
                    path: "migrations/seed/client.sql".into(),
                    sha256: "ab".repeat(32),
                    reason: Reason::SeedNotApplied,
                },
                Action::CreatePagesProject {
                    name: project.clone(),
                    production_branch: "main".into(),
                    account_id: "0123456789abcdef0123456789abcdef".into(),
                    reason: Reason::Missing,
                },
                Action::Deploy {
                    project: project.clone(),
                    fingerprint: None,
                    previous: None,
                    reason: Reason::ProjectBeingCreated,
                },
                Action::AddDomain {
                    project: project.clone(),
                    domain: domain.clone(),
                    reason: Reason::Missing,
                },
                Action::UpsertDnsRecord {
                    name: domain.clone(),
                    target: None,
                    before: None,
                    reason: Reason::Missing,
                },
                Action::WaitForDomain {
                    domain: domain.clone(),
                    status: None,
                    reason: Reason::DomainNotActive,
                },
            ],
        ),
        Case::Migration => (
            Some(format!("{:0>20}", i)),
            vec![Action::ApplyMigrations {
                versions: vec!["20260101000000".into()],
                reason: Reason::MigrationsPending,
            }],
        ),
        Case::Frontend => (
            Some(format!("{:0>20}", i)),
            vec![Action::Deploy {
                project: project.clone(),
                fingerprint: Some(format!("{:0>40x}", i * 7919)),
                previous: None,
                reason: Reason::FrontendSourcesChanged,
            }],
        ),
    };
    ClientPlan {
        client: s,
        state: ClientState::Active,
        project_name: project,
        project_ref,
        actions,
        errors: vec![],
        notes: vec![],
        cloudflare_account: None,
    }
}

fn plan(case: Case, n: usize) -> Plan {
    Plan {
        format_version: FORMAT_VERSION,
        intelli_version: env!("CARGO_PKG_VERSION").into(),
        desired_digest: "d".repeat(64),
        clients: (0..n).map(|i| client(case, i)).collect(),
        orphans: vec![],
        shard: None,
        rollout: None,
        checks: vec![],
    }
}

/// The markdown blocks of a plan of `n` clients, grouped as `intelli plan` does or one section
/// per client.
fn blocks(case: Case, n: usize, grouped: bool) -> Vec<String> {
    let p = plan(case, n);
    if grouped {
        return markdown_blocks(&p);
    }
    let mut out = vec![
        markdown_blocks(&Plan {
            clients: vec![],
            ..p.clone()
        })[0]
            .clone(),
    ];
    for c in &p.clients {
        out.extend(markdown_section_blocks(std::slice::from_ref(c)));
    }
    out
}

fn parts(case: Case, n: usize, grouped: bool) -> usize {
    split(&blocks(case, n, grouped), DEFAULT_MAX_COMMENT_BYTES, None)
        .expect("default limit")
        .len()
}

/// The largest N whose plan is one comment (searched up to 100,000).
fn one_comment(case: Case, grouped: bool) -> usize {
    let (mut lo, mut hi) = (1, 2);
    while parts(case, hi, grouped) == 1 {
        lo = hi;
        hi *= 2;
        if hi > 100_000 {
            return lo;
        }
    }
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if parts(case, mid, grouped) == 1 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("comment_size prints figures: run it with `cargo bench --bench comment_size`");
        return;
    }
    println!(
        "== markdown plan comments, limit {DEFAULT_MAX_COMMENT_BYTES} bytes per part (GitHub: 65,536 characters)"
    );
    println!(
        "{:<32}  {:<9}  {:>13}  {:>16}  {:>20}",
        "plan", "grouping", "bytes/client", "one comment up to", "parts for 1,000"
    );
    for case in [Case::Onboarding, Case::Migration, Case::Frontend] {
        for grouped in [true, false] {
            let per_client = (blocks(case, 1_000, grouped).concat().len()
                - blocks(case, 0, grouped).concat().len()) as f64
                / 1_000.0;
            println!(
                "{:<32}  {:<9}  {:>13.0}  {:>10} clients  {:>20}",
                case.name(),
                if grouped { "grouped" } else { "none" },
                per_client,
                one_comment(case, grouped),
                parts(case, 1_000, grouped)
            );
        }
    }
}
