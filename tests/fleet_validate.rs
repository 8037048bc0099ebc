//! The fleet spec end to end: the example fleet, the bad-fleet corpus, the schema, the CLI.

mod common;

use std::path::Path;

use assert_cmd::Command;
use intelli::fleet::{ClientState, Fleet};
use intelli::schema;

use common::{copy_dir, repo_root};

#[test]
fn example_fleet_is_valid_and_defaults_merge_as_documented() {
    let fleet = Fleet::load(&repo_root().join("fleet"))
        .unwrap_or_else(|d| panic!("example fleet invalid:\n{d}"));
    let slugs: Vec<&str> = fleet.clients.keys().map(String::as_str).collect();
    assert_eq!(slugs, ["acme", "globex", "initech"]);

    let acme = &fleet.clients["acme"];
    assert_eq!(
        acme.region, "us-east-1",
        "client region overrides the default"
    );
    assert_eq!(acme.instance_size.as_deref(), Some("small"));
    assert_eq!(
        acme.domain, "acme.intelliservice.io",
        "default domain is <client>.<base_domain>"
    );
    assert_eq!(acme.resource_name, "intelli-acme");
    assert_eq!(acme.pages_project, "intelli-acme");
    assert_eq!(acme.state, ClientState::Active);
    let env: Vec<&str> = acme.frontend_env.keys().map(String::as_str).collect();
    assert_eq!(env, ["VITE_BRAND_COLOR", "VITE_SUPPORT_PHONE"]);
    assert_eq!(
        acme.frontend_env["VITE_BRAND_COLOR"].value,
        intelli::fleet::EnvSource::Literal("#d9480f".into()),
        "client env value wins over the default"
    );

    // The example rolls out to acme first (its label), then the rest.
    let waves = intelli::fleet::rollout::waves(
        &fleet.settings,
        fleet.clients.values().map(|c| (c.slug.as_str(), &c.labels)),
    )
    .expect("the example fleet has a rollout");
    let waves: Vec<(&str, Vec<&str>, bool)> = waves
        .iter()
        .map(|w| {
            (
                w.name.as_str(),
                w.clients.iter().map(String::as_str).collect(),
                w.implicit,
            )
        })
        .collect();
    assert_eq!(
        waves,
        [
            ("canary", vec!["acme"], false),
            ("rest", vec!["globex", "initech"], true)
        ]
    );

    let globex = &fleet.clients["globex"];
    assert_eq!(globex.region, "eu-west-2", "region inherited from defaults");
    let buckets: Vec<&str> = globex.buckets.keys().map(String::as_str).collect();
    assert_eq!(
        buckets,
        ["estimate-documents", "site-surveys", "ticket-photos"],
        "extra bucket added, defaults kept"
    );
    assert_eq!(
        globex.buckets["ticket-photos"].file_size_limit,
        Some(10 * 1024 * 1024)
    );
    assert_eq!(
        globex.redirect_urls,
        [
            "https://globex.intelliservice.io/**",
            "https://portal.globex.intelliservice.io/**"
        ],
        "client redirect list replaces the default list; the site's own URL always comes first"
    );
    assert_eq!(
        globex.frontend_env["VITE_BRAND_COLOR"].value,
        intelli::fleet::EnvSource::Literal("#1c7ed6".into()),
        "default env value inherited"
    );

    let initech = &fleet.clients["initech"];
    assert_eq!(
        initech.domain, "service.initech.intelliservice.io",
        "pinned domain"
    );
    assert_eq!(
        initech.site_url,
        "https://service.initech.intelliservice.io"
    );
    assert_eq!(
        initech.redirect_urls,
        [
            "https://service.initech.intelliservice.io/**",
            "http://localhost:5173/**"
        ]
    );
}

/// Each directory under tests/bad-fleets overlays its files on `_base` and lists the
/// diagnostics it must produce in `expect`: `file:line:col: field: message fragment`, one per
/// line (a line starting with `resolve <client> ` is checked after loading, when `${env:…}`
/// references are resolved). A case fails when an expected diagnostic is missing and when one
/// is produced that no line expects.
#[test]
fn bad_fleet_corpus() {
    let corpus = repo_root().join("tests/bad-fleets");
    let mut cases: Vec<_> = std::fs::read_dir(&corpus)
        .expect("corpus dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && !p.ends_with("_base"))
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 25,
        "the corpus should keep at least 25 cases, found {}",
        cases.len()
    );

    let mut failures = Vec::new();
    for case in &cases {
        if let Err(msg) = run_case(&corpus, case) {
            failures.push(format!(
                "{}: {msg}",
                case.file_name().unwrap_or_default().to_string_lossy()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

fn run_case(corpus: &Path, case: &Path) -> Result<(), String> {
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let root = tmp.path();
    copy_dir(&corpus.join("_base"), root);
    std::fs::create_dir_all(root.join("web")).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(root.join("migrations/seed")).map_err(|e| e.to_string())?;
    std::fs::write(root.join("migrations/seed/client.sql"), "select 1;")
        .map_err(|e| e.to_string())?;
    for entry in std::fs::read_dir(case)
        .map_err(|e| e.to_string())?
        .flatten()
    {
        if entry.file_name() != "expect" {
            std::fs::copy(entry.path(), root.join("fleet").join(entry.file_name()))
                .map_err(|e| e.to_string())?;
        }
    }
    let expect = std::fs::read_to_string(case.join("expect")).map_err(|e| e.to_string())?;
    let expected: Vec<&str> = expect
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let fleet_dir = root.join("fleet");
    let got = produced(
        &fleet_dir,
        expected.iter().any(|l| l.starts_with("resolve ")),
    )?;
    // Both ways: every expected line is produced, and nothing is produced that is not expected.
    let missing: Vec<&str> = expected
        .iter()
        .copied()
        .filter(|want| !got.iter().any(|g| g.starts_with(want)))
        .collect();
    let unexpected: Vec<&str> = got
        .iter()
        .map(String::as_str)
        .filter(|g| !expected.iter().any(|want| g.starts_with(want)))
        .collect();
    if missing.is_empty() && unexpected.is_empty() {
        return Ok(());
    }
    Err(format!(
        "missing (expected a diagnostic starting with):\n  {}\nunexpected:\n  {}\nall produced:\n  {}",
        missing.join("\n  "),
        unexpected.join("\n  "),
        got.join("\n  ")
    ))
}

/// Every diagnostic the fleet in `fleet_dir` produces, relative to it: loading it, or (for a
/// `resolve` case, which must load) resolving every client's `${env:…}` references, each line
/// then prefixed `resolve <client> `.
fn produced(fleet_dir: &Path, resolve: bool) -> Result<Vec<String>, String> {
    let prefix = format!("{}/", fleet_dir.display());
    let line = |d: &intelli::diag::Diagnostic| d.to_string().replace(&prefix, "");
    match Fleet::load(fleet_dir) {
        Err(d) if resolve => Err(format!("expected the fleet to load, got:\n{d}")),
        Err(d) => Ok(d.iter().map(line).collect()),
        Ok(_) if !resolve => Err("expected the fleet to be rejected, but it loaded".into()),
        Ok(fleet) => Ok(fleet
            .clients
            .iter()
            .filter_map(|(slug, spec)| {
                let d = fleet
                    .resolve_env(spec, |name| std::env::var(name).ok())
                    .err()?;
                Some(
                    d.iter()
                        .map(|d| format!("resolve {slug} {}", line(d)))
                        .collect::<Vec<_>>(),
                )
            })
            .flatten()
            .collect()),
    }
}

#[test]
fn committed_schema_is_current_and_fleet_files_point_at_it() {
    for (kind, file) in schema::KINDS {
        let committed = std::fs::read_to_string(repo_root().join("schema").join(file))
            .expect("committed schema");
        let generated = schema::render(kind).expect("render schema");
        assert!(
            committed == generated,
            "schema/{file} is stale: run `cargo run -- schema --out-dir schema` and commit the result"
        );
    }
    for entry in std::fs::read_dir(repo_root().join("fleet"))
        .expect("fleet dir")
        .flatten()
    {
        let text = std::fs::read_to_string(entry.path()).expect("fleet file");
        let kind = if entry.file_name() == "fleet.yaml" {
            "fleet"
        } else {
            "client"
        };
        let first = text.lines().next().unwrap_or("");
        assert_eq!(
            first,
            format!("# yaml-language-server: $schema=../schema/{kind}.schema.json"),
            "{} must start with the schema line",
            entry.path().display()
        );
    }
}

#[test]
fn validate_command_exit_codes_and_output() {
    Command::cargo_bin("intelli")
        .expect("binary")
        .current_dir(repo_root())
        .arg("validate")
        .assert()
        .success()
        .stdout(predicates::str::contains(
            "3 clients (acme, globex, initech)",
        ));

    let tmp = tempfile::tempdir().expect("tempdir");
    copy_dir(&repo_root().join("tests/bad-fleets/_base"), tmp.path());
    std::fs::create_dir_all(tmp.path().join("web")).expect("mkdir");
    std::fs::create_dir_all(tmp.path().join("migrations/seed")).expect("mkdir");
    std::fs::write(tmp.path().join("migrations/seed/client.sql"), "").expect("write");
    // Two broken files: both are reported in one run.
    std::fs::write(
        tmp.path().join("fleet/a.yaml"),
        "client: a\nsupabase:\n  regoin: x\n",
    )
    .expect("write");
    std::fs::write(
        tmp.path().join("fleet/b.yaml"),
        "client: b\ndomain: b.elsewhere.com\n",
    )
    .expect("write");
    Command::cargo_bin("intelli")
        .expect("binary")
        .current_dir(tmp.path())
        .arg("validate")
        .assert()
        .code(1)
        .stderr(predicates::str::contains(
            "fleet/a.yaml:3:3: supabase.regoin: unknown field",
        ))
        .stderr(predicates::str::contains("fleet/b.yaml:2:9: domain:"))
        .stderr(predicates::str::contains("2 errors in 2 files"));
}

#[test]
fn schema_command_prints_json_schema() {
    let out = Command::cargo_bin("intelli")
        .expect("binary")
        .args(["schema", "client"])
        .output()
        .expect("run");
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("schema is JSON");
    assert_eq!(v["title"], "ClientFile");
    assert_eq!(
        v["additionalProperties"], false,
        "unknown fields are rejected by the schema too"
    );
    assert_eq!(v["required"], serde_json::json!(["client"]));
}
