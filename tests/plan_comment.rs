//! `intelli plan --comment-dir DIR --max-comment-bytes N` (README "Use it in GitHub"): the
//! binary against a simulator, plan only (no databases are made). 40 clients that each differ
//! (their own redirect URL), so the markdown plan has 40 sections; with a small limit it is
//! written as several parts, each under the limit, each with its marker, whole sections in
//! order; a later run with fewer parts removes the parts it no longer needs.

use std::path::Path;

use assert_cmd::Command;
use intelli::sim::server::{OrgConfig, SimConfig, SimHandle};

const CLIENTS: usize = 40;

fn write_fleet(root: &Path) {
    let fleet = root.join("fleet");
    std::fs::create_dir_all(&fleet).expect("fleet dir");
    std::fs::create_dir_all(root.join("migrations/seed")).expect("migrations dir");
    std::fs::write(root.join("migrations/seed/client.sql"), "select 1;\n").expect("seed");
    std::fs::create_dir_all(root.join("web")).expect("frontend dir");
    std::fs::write(
        fleet.join("fleet.yaml"),
        "name_prefix: intelli-\n\
         base_domain: example.io\n\
         supabase:\n  organization_slug: test-org\n\
         cloudflare:\n  zone: example.io\n  account_id: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n\
         frontend:\n  dir: web\n\
         defaults:\n  supabase:\n    region: eu-west-2\n",
    )
    .expect("fleet.yaml");
    for i in 0..CLIENTS {
        std::fs::write(
            fleet.join(format!("c{i:03}.yaml")),
            format!(
                "client: c{i:03}\nauth:\n  additional_redirect_urls: ['http://localhost:{}/**']\n",
                5000 + i
            ),
        )
        .expect("client file");
    }
}

fn plan(root: &Path, sim: &SimHandle, args: &[&str]) -> std::process::Output {
    Command::cargo_bin("intelli")
        .expect("binary")
        .current_dir(root)
        .env("SUPABASE_ACCESS_TOKEN", sim.supabase_token())
        .env("SUPABASE_API_URL", sim.supabase_api_url())
        .env("SUPABASE_PROJECT_URL_TEMPLATE", sim.project_url_template())
        .env_remove("INTELLI_DATABASE_URL_TEMPLATE")
        .env("NO_COLOR", "1")
        .args(["plan", "--skip-frontend", "--format", "markdown"])
        .args(args)
        .output()
        .expect("run plan")
}

/// The parts in `dir`, in order.
fn parts(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("comment dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort_by_key(|n| {
        n.trim_start_matches("plan-")
            .trim_end_matches(".md")
            .parse::<usize>()
            .expect("only plan-<n>.md files")
    });
    for (i, n) in names.iter().enumerate() {
        assert_eq!(n, &format!("plan-{}.md", i + 1));
    }
    names
        .iter()
        .map(|n| std::fs::read_to_string(dir.join(n)).expect("part"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_writes_comment_parts_under_the_limit() {
    let mut config = SimConfig::default();
    config.supabase.organizations = vec![OrgConfig {
        slug: "test-org".into(),
        name: "Test".into(),
    }];
    let sim = intelli::sim::server::start(config)
        .await
        .unwrap_or_else(|e| panic!("starting the simulator (needs PostgreSQL): {e:#}"));
    let root = tempfile::tempdir().expect("tempdir");
    write_fleet(root.path());
    let dir = root.path().join("comments");

    let max = 3_000;
    let out = plan(
        root.path(),
        &sim,
        &[
            "--comment-dir",
            "comments",
            "--max-comment-bytes",
            &max.to_string(),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let written = parts(&dir);
    let n = written.len();
    assert!(n >= 4, "{n} parts");
    assert!(
        stderr.contains(&format!("Wrote the plan as {n} comment parts")),
        "{stderr}"
    );
    let mut content = String::new();
    for (i, p) in written.iter().enumerate() {
        let k = i + 1;
        assert!(p.len() <= max, "part {k}: {} bytes", p.len());
        let mut lines = p.split_inclusive('\n');
        assert_eq!(
            lines.next(),
            Some(format!("<!-- intelli-plan part {k}/{n} -->\n").as_str())
        );
        assert_eq!(
            lines.next(),
            Some(format!("_intelli plan, part {k} of {n}._\n").as_str())
        );
        assert_eq!(lines.next(), Some("\n"));
        let mut rest: Vec<&str> = lines.collect();
        if k < n {
            assert_eq!(
                rest.pop(),
                Some(format!("_Continued in part {} of {n}._\n", k + 1).as_str())
            );
            assert_eq!(rest.pop(), Some("\n"));
        }
        // Whole sections: every part opens as many <details> and fences as it closes.
        let body = rest.concat();
        assert_eq!(
            body.matches("<details>").count(),
            body.matches("</details>").count(),
            "part {k}"
        );
        assert_eq!(body.matches("```").count() % 2, 0, "part {k}");
        content.push_str(&body);
    }
    // The parts are the printed markdown plan, cut between sections.
    assert_eq!(content, stdout);
    for i in 0..CLIENTS {
        assert_eq!(
            stdout.matches(&format!("<code>c{i:03}</code>")).count(),
            1,
            "c{i:03}"
        );
    }

    // Again with the default limit: one part, and the old parts are gone.
    let out = plan(root.path(), &sim, &["--comment-dir", "comments"]);
    assert_eq!(out.status.code(), Some(0));
    let written = parts(&dir);
    assert_eq!(written.len(), 1);
    assert!(written[0].starts_with("<!-- intelli-plan part 1/1 -->\n"));
    assert!(written[0].len() < 65_536);

    // The limit only means something with a directory, and must leave room.
    let out = plan(root.path(), &sim, &["--max-comment-bytes", "3000"]);
    assert_eq!(out.status.code(), Some(2), "clap usage error");
    let out = plan(
        root.path(),
        &sim,
        &["--comment-dir", "comments", "--max-comment-bytes", "10"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("too small"));
}
