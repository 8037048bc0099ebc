use super::*;

fn row(slug: &str, sync: Sync, latest: Option<&str>) -> ClientStatus {
    ClientStatus {
        client: slug.into(),
        state: ClientState::Active,
        sync,
        project: ProjectRow {
            name: format!("intelli-{slug}"),
            project_ref: Some("abcdefghijklmnopqrst".into()),
            status: Some("ACTIVE_HEALTHY".into()),
            region: "ap-southeast-1".into(),
            instance_size: Some("small".into()),
        },
        migrations: MigrationRow {
            files: 12,
            applied: Some(11),
            latest_applied: latest.map(String::from),
            pending: vec!["20260101000000".into()],
            problems: vec![],
        },
        seed: SeedState::Changed,
        buckets: BucketRow {
            declared: 3,
            as_declared: Some(2),
        },
        site: Some(SiteRow {
            pages_project: format!("intelli-{slug}"),
            state: SiteState::NeverDeployed,
            reason: Some("never deployed".into()),
            deployed_on: None,
            domain: format!("{slug}.intelliservice.io"),
            domain_status: Some("initializing".into()),
            dns: DnsState::Missing,
        }),
        pending_actions: vec!["> apply 1 migration(s): 20260101000000 ".repeat(5)],
        errors: if sync == Sync::Failing {
            vec!["x".repeat(300)]
        } else {
            vec![]
        },
        notes: vec![],
    }
}

fn report(clients: Vec<ClientStatus>) -> StatusReport {
    let summary = Summary::of(&clients);
    StatusReport {
        format_version: FORMAT_VERSION,
        intelli_version: "0.0.0".into(),
        summary,
        clients,
        orphans: vec![],
    }
}

#[test]
fn exit_codes_follow_the_worst_client() {
    let ok = report(vec![row("a", Sync::Converged, Some("1"))]);
    assert_eq!(ok.exit_code(), 0);
    let drift = report(vec![
        row("a", Sync::Converged, Some("1")),
        row("b", Sync::Drifting, Some("1")),
    ]);
    assert_eq!(drift.exit_code(), 2);
    let failing = report(vec![
        row("a", Sync::Failing, Some("1")),
        row("b", Sync::Drifting, Some("1")),
    ]);
    assert_eq!(failing.exit_code(), 1);
}

#[test]
fn text_fits_100_columns_and_is_plain_unless_coloured() {
    let r = report(vec![
        row("a-very-long-client-slug-that-goes-on", Sync::Failing, None),
        row("b", Sync::Drifting, Some("20250101000000")),
        row("c", Sync::Converged, Some("20250101000000")),
    ]);
    let plain = text(&r, false);
    for line in plain.lines() {
        assert!(line.chars().count() <= text::WIDTH, "too wide: {line}");
    }
    assert!(!plain.contains('\x1b'), "{plain}");
    assert!(
        plain.contains("Failing") && plain.contains("11/12 +1"),
        "{plain}"
    );
    let coloured = text(&r, true);
    assert!(coloured.contains("\x1b[1;31mFailing"), "{coloured}");
    // Colour codes aside, the same text.
    let stripped = coloured
        .replace("\x1b[1;31m", "")
        .replace("\x1b[33m", "")
        .replace("\x1b[32m", "")
        .replace("\x1b[0m", "");
    assert_eq!(stripped, plain);
}

#[test]
fn html_escapes_and_charts_every_version() {
    let mut evil = row("c", Sync::Failing, Some("20250101000000"));
    evil.errors = vec!["<script>alert(1)</script>".into()];
    let r = report(vec![
        row("a", Sync::Converged, Some("20250101000000")),
        row("b", Sync::Converged, Some("20240101000000")),
        evil,
    ]);
    let page = html(&r);
    assert!(!page.contains("<script>alert"), "not escaped");
    assert!(page.contains("&lt;script&gt;alert(1)"));
    assert_eq!(
        page.matches("<script>").count(),
        1,
        "only the sorting script"
    );
    assert!(
        !page.contains("http://") || page.matches("http://").count() == 1,
        "svg ns only"
    );
    assert!(!page.contains("https://"), "no network");
    // Two bars: 2 clients at 2025…, 1 at 2024….
    assert_eq!(page.matches("<rect").count(), 2);
    assert!(page.contains("20250101000000: 2 client(s)"));
    for slug in ["a", "b", "c"] {
        assert!(page.contains(&format!("<tr><td>{slug}</td>")));
    }
}

#[test]
fn markdown_lists_what_is_not_converged() {
    let r = report(vec![
        row("a", Sync::Converged, Some("1")),
        row("b|x", Sync::Drifting, Some("1")),
    ]);
    let md = markdown(&r);
    assert!(md.contains("| b\\|x |"), "{md}");
    assert!(md.contains("- **b\\|x** (Drifting)"), "{md}");
    assert!(!md.contains("- **a**"), "{md}");
}
