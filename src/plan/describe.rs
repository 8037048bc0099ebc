//! The one place that says what an action does, in words for people: the plan's text and
//! markdown renderings and apply's progress lines all use it.

use std::fmt;

use super::model::{Action, BucketSpec, Change, DnsRecordValue, Reason};
use crate::supabase::NewKeyKind;

/// An action as people read it: a headline (also apply's progress label) and detail lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description {
    pub headline: String,
    /// Indented under the headline in a plan; `+ `/`- ` prefixes mark list diffs.
    pub details: Vec<String>,
}

impl fmt::Display for Description {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.headline)
    }
}

/// What `a` does, for people.
pub fn describe(a: &Action) -> Description {
    let (headline, details) = match a {
        Action::CreateProject {
            name,
            organization_slug,
            region,
            instance_size,
            ..
        } => (
            create_project_line(name, region, instance_size.as_deref(), organization_slug),
            vec![],
        ),
        Action::WaitUntilHealthy { status, .. } => (
            format!("wait until the project is healthy (now {status})"),
            vec![],
        ),
        Action::RestoreProject { .. } => ("restore the paused project".into(), vec![]),
        Action::PauseProject { .. } => ("pause the project".into(), vec![]),
        Action::DeleteProject { project_ref, .. } => (
            format!("DELETE project {project_ref} with its database, users and files"),
            vec![],
        ),
        Action::UpdateAuthConfig {
            site_url,
            redirect_urls,
            ..
        } => (
            "update auth settings".into(),
            auth_details(site_url, redirect_urls),
        ),
        Action::CreateBucket { bucket, .. } => {
            (format!("create bucket {}", bucket_summary(bucket)), vec![])
        }
        Action::UpdateBucket { before, after, .. } => (
            format!("update bucket {}", after.name),
            bucket_details(before, after),
        ),
        Action::ApplyMigrations { versions, .. } => {
            let s = if versions.len() == 1 { "" } else { "s" };
            (
                format!("apply {} migration{s}", versions.len()),
                versions.clone(),
            )
        }
        Action::ApplySeed { path, sha256, .. } => {
            let short = &sha256[..12.min(sha256.len())];
            (format!("run seed {path} (sha256 {short})"), vec![])
        }
        Action::RecordSeed { path, sha256, .. } => {
            let short = &sha256[..12.min(sha256.len())];
            (
                format!("record seed {path} (sha256 {short}) as applied"),
                vec![
                    "its rows are present (migrations.seed_check): the seed is not run".to_string(),
                ],
            )
        }
        Action::CreatePagesProject {
            name,
            production_branch,
            account_id,
            ..
        } => (
            format!(
                "create Pages project {name} (production branch {production_branch}, account {account_id})"
            ),
            vec![],
        ),
        Action::UpdatePagesProject {
            name,
            production_branch: branch,
            ..
        } => (
            format!("update Pages project {name}"),
            vec![format!(
                "production_branch: {} → {}",
                before(&branch.before),
                branch.after
            )],
        ),
        Action::Deploy {
            project,
            fingerprint,
            reason,
            previous: _,
        } => deploy_lines(project, fingerprint.as_deref(), *reason),
        Action::RollbackDeployment {
            project,
            deployment_id,
            fingerprint,
            reason,
        } => (
            format!("roll back {project} to deployment {deployment_id}"),
            vec![
                format!("reason: {reason}"),
                format!("fingerprint: {fingerprint} (built before: no build, no upload)"),
            ],
        ),
        Action::AddDomain {
            project, domain, ..
        } => (format!("attach domain {domain} to {project}"), vec![]),
        Action::UpsertDnsRecord {
            name,
            target,
            before,
            ..
        } => dns_lines(name, target.as_deref(), before.as_ref()),
        Action::AdoptDnsRecord {
            name,
            target,
            proxied,
            ..
        } => (
            format!("adopt DNS record {name}"),
            vec![if *proxied {
                format!("CNAME → {target} already points at the site; marked as intelli's")
            } else {
                format!(
                    "CNAME → {target} already points at the site; marked as intelli's and proxied"
                )
            }],
        ),
        Action::DeleteSite {
            project,
            dns_record,
            ..
        } => (delete_site_line(project, dns_record.as_deref()), vec![]),
        Action::WaitForDomain { domain, status, .. } => {
            let now = status.as_ref().map(|s| format!(" (now {s})"));
            let now = now.unwrap_or_default();
            (
                format!("wait until {domain} is active{now} and check the site"),
                vec![],
            )
        }
        Action::CreateApiKey { key_type, name, .. } => (
            format!("create {} API key {name}", key_type.as_str()),
            vec![match key_type {
                NewKeyKind::Publishable => {
                    "for the site's browser code (the site is rebuilt with it)".to_string()
                }
                NewKeyKind::Secret => "acting as service_role, for Storage".to_string(),
            }],
        ),
        Action::DisableLegacyKeys { .. } => (
            "switch off the legacy API keys (anon, service_role)".into(),
            vec!["the site serves a build made with the publishable key".into()],
        ),
    };
    Description { headline, details }
}

fn create_project_line(name: &str, region: &str, size: Option<&str>, org: &str) -> String {
    let size = size.unwrap_or("default size");
    format!("create project {name} in {region} ({size}, organization {org})")
}

fn delete_site_line(project: &str, dns_record: Option<&str>) -> String {
    let dns = dns_record.map(|d| format!(" and DNS record {d}"));
    format!("DELETE Pages project {project}{}", dns.unwrap_or_default())
}

fn deploy_lines(project: &str, fingerprint: Option<&str>, reason: Reason) -> (String, Vec<String>) {
    (
        format!("build and deploy the site to {project}"),
        vec![
            format!("reason: {reason}"),
            format!(
                "fingerprint: {}",
                fingerprint.unwrap_or("(known after apply)")
            ),
        ],
    )
}

fn auth_details(site_url: &Change<String>, redirect_urls: &Change<Vec<String>>) -> Vec<String> {
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
    d
}

fn bucket_details(before: &BucketSpec, after: &BucketSpec) -> Vec<String> {
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
    d
}

fn dns_lines(
    name: &str,
    target: Option<&str>,
    before: Option<&DnsRecordValue>,
) -> (String, Vec<String>) {
    let headline = match before {
        None => format!("create DNS record {name}"),
        Some(_) => format!("fix DNS record {name}"),
    };
    let detail = format!(
        "{}CNAME → {} (proxied)",
        before
            .map(|b| format!("{} → ", dns_value(b)))
            .unwrap_or_default(),
        target.unwrap_or("(Pages subdomain, known after apply)")
    );
    (headline, vec![detail])
}

fn dns_value(v: &DnsRecordValue) -> String {
    format!(
        "{} {}{}",
        v.record_type,
        v.content,
        if v.proxied { " (proxied)" } else { "" }
    )
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
